//! peerex's SQLite dialect: the embedded default database.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one connection (they queue in
//! peerex instead of failing with SQLITE_BUSY) and reads use a separate pool. WAL lets readers run
//! beside the writer. Only `store` should use this crate; it depends on nothing but `domain` and sqlx.
//!
//! The queries both dialects share live in `crates/store-sql/`, compiled here against SQLite's
//! schema (and checked against its offline data, `.sqlx/`). This crate holds what is SQLite's own:
//! connecting and migrating, the import's multi-row inserts, and the routing feed's wake hooks.

mod bulk;
mod held;
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
/// What leasing webhook deliveries adds to the query that picks them: nothing, SQLite's single writer
/// connection runs one lease at a time.
const DELIVERY_CLAIM_LOCK: &str = "";
#[macro_use]
#[path = "../../store-sql/shared.rs"]
mod shared;
use shared::INSERT_CHUNK;

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

    /// A store whose connections open when a query needs one, waiting at most `acquire` for one.
    pub fn connect_lazy(url: &str, acquire: Duration) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = routing::with_wake_hooks(SqlitePoolOptions::new())
            .max_connections(1)
            .acquire_timeout(acquire)
            .connect_lazy_with(options.clone());
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(acquire)
            .connect_lazy_with(options);
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
    ///
    /// Looked up a thousand at a time in E.164 order: when the numbers between a thousand's first
    /// and last are few in the inventory (always so for a block being imported), one range read
    /// returns them all and they are matched here; otherwise the thousand are probed by value. So
    /// no lookup reads more than twice its count of rows, and an import of new blocks reads almost
    /// nothing instead of binding every number.
    pub async fn existing_numbers(&self, e164s: &[&str]) -> Result<HashSet<String>> {
        let mut sorted = e164s.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found = HashSet::new();
        for chunk in sorted.chunks(INSERT_CHUNK) {
            let (first, last) = (chunk[0], chunk[chunk.len() - 1]);
            let limit = 2 * chunk.len() as i64;
            let in_span = sqlx::query_scalar!(
                "SELECT e164 FROM numbers WHERE e164 >= ? AND e164 <= ? ORDER BY e164 LIMIT ?",
                first,
                last,
                limit
            )
            .fetch_all(&self.reader)
            .await?;
            if (in_span.len() as i64) < limit {
                found.extend(
                    in_span.into_iter().filter(|n| chunk.binary_search(&n.as_str()).is_ok()),
                );
                continue;
            }
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

    /// Adds numbers and their creation events in one transaction: all or nothing. The rows go
    /// through SQLite's C API on the writer's own connection (see `bulk`).
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        bulk::insert_numbers(&mut tx, numbers, progress).await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::NumberId;
    use uuid::Uuid;

    /// Migration 0012 rebuilds `number_events`: every event written before it must remain, with its
    /// id, and the table must still take new events.
    #[tokio::test]
    async fn rebuilding_number_events_keeps_every_event() {
        let dir = std::env::temp_dir().join(format!("peerex-0012-{}", std::process::id()));
        let before = dir.join("migrations");
        std::fs::create_dir_all(&before).unwrap();
        let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for f in std::fs::read_dir(&all).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().as_ref() < "0012" {
                std::fs::copy(f.path(), before.join(f.file_name())).unwrap();
            }
        }
        let store = SqliteStore::open_file(&dir.join("peerex.db")).await.unwrap();
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .unwrap()
            .run(&store.writer)
            .await
            .unwrap();
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO numbers (id, e164, state, tags, updated_at) VALUES (?, '+15550100000', 'available', '', '2026-01-01T00:00:00Z')")
            .bind(id)
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("INSERT INTO number_events (id, number_id, at, actor, to_state, reason) VALUES (41, ?, '2026-01-01T00:00:00Z', 'system:test', 'available', 'imported')")
            .bind(id)
            .execute(&store.writer)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let events = store.number_events(NumberId::from_uuid(id)).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].actor.as_str(), events[0].reason.as_deref()),
            ("system:test", Some("imported"))
        );
        let next: i64 = sqlx::query_scalar("INSERT INTO number_events (number_id, at, actor, to_state) VALUES (?, '2026-01-02T00:00:00Z', 'system:test', 'aging') RETURNING id")
            .bind(id)
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(next, 42);
        assert_eq!(store.number_events(NumberId::from_uuid(id)).await.unwrap().len(), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
