//! peerex's SQLite dialect: the embedded default database.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one connection (they queue in
//! peerex instead of failing with SQLITE_BUSY) and reads use a separate pool. WAL lets readers run
//! beside the writer. Only `store` should use this crate; it depends on nothing but `domain` and sqlx.
//!
//! The queries both dialects share live in `crates/store-sql/`, compiled here against SQLite's
//! schema (and checked against its offline data, `.sqlx/`). This crate holds what is SQLite's own:
//! connecting and migrating, the import's multi-row inserts, and the routing feed's wake hooks.

mod routing;
pub use routing::routing_wake;

use domain::{Number, NumberEvent};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// The database the shared query modules (`crates/store-sql/`) are compiled for in this crate.
pub type Db = sqlx::Sqlite;
/// The function that finds a substring (1-based position, 0 when absent), for tag filters.
const SUBSTRING_POSITION: &str = "instr";
/// The store the shared query modules add their methods to.
pub(crate) type DialectStore = SqliteStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What claiming a job adds to the query that picks it (see `claim_job_with!`): nothing, SQLite's
/// single writer connection runs one claim at a time.
macro_rules! job_claim_lock {
    ($define:ident) => {
        $define!("");
    };
}
#[macro_use]
#[path = "../../store-sql/shared.rs"]
mod shared;
use shared::moves::insert_events;
use shared::{encode_tags, INSERT_CHUNK};

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let memory = url.contains(":memory:");
        // An in-memory database exists per connection; it gets one connection for everything.
        let writer = routing::with_wake_hooks(SqlitePoolOptions::new())
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new().max_connections(8).connect_with(options).await?
        };
        Ok(Self { writer, reader })
    }

    /// Where writes go: the single writer connection.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Where reads that need no transaction go.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub async fn open_file(path: &Path) -> Result<Self> {
        Self::connect(&format!("sqlite://{}", path.display())).await
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&self.reader).await.map(|_| ())
    }

    // ---- the import ---------------------------------------------------------------------------

    /// Which of `e164s` are already in the inventory.
    pub async fn existing_numbers(&self, e164s: &[&str]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in e164s.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT e164 FROM numbers WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            q.push(")");
            let rows: Vec<(String,)> = q.build_query_as().fetch_all(&self.reader).await?;
            found.extend(rows.into_iter().map(|(n,)| n));
        }
        Ok(found)
    }

    /// Adds numbers and their creation events in one transaction: all or nothing.
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for chunk in numbers.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO numbers (id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at) ",
            );
            q.push_values(chunk, |mut b, (n, _)| {
                b.push_bind(n.id.as_uuid())
                    .push_bind(n.e164.as_str())
                    .push_bind(n.state.as_str())
                    .push_bind(n.customer_id.map(|c| c.as_uuid()))
                    .push_bind(n.order_id.map(|o| o.as_uuid()))
                    .push_bind(encode_tags(&n.tags))
                    .push_bind(n.billing_ref.as_deref())
                    .push_bind(n.region.as_deref())
                    .push_bind(n.note.as_deref())
                    .push_bind(n.reason.as_deref())
                    .push_bind(n.aging_until)
                    .push_bind(n.updated_at);
            });
            q.build().execute(&mut *tx).await?;
            insert_events(&mut tx, chunk.iter().map(|(_, e)| e)).await?;
            progress(chunk.len());
        }
        tx.commit().await
    }
}
