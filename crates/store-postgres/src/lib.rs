//! peerex's PostgreSQL dialect: for several `peerex serve` instances sharing one database.
//!
//! The queries both dialects share live in `crates/store-sql/`, compiled here against PostgreSQL's
//! schema (and checked against its offline data, `.sqlx/`). This crate holds what is PostgreSQL's
//! own: connecting and migrating, imports streamed through `COPY`, job claiming with
//! `FOR UPDATE SKIP LOCKED`, and the routing feed's LISTEN/NOTIFY. Only `store` should use this crate.

mod bulk;
mod copy;
mod held;
mod routing;

use domain::{Number, NumberEvent};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// The database the shared query modules (`crates/store-sql/`) are compiled for in this crate.
pub type Db = sqlx::Postgres;
/// The function that finds a substring (1-based position, 0 when absent), for tag filters.
const SUBSTRING_POSITION: &str = "strpos";
/// The store the shared query modules add their methods to.
pub(crate) type DialectStore = PgStore;

/// What leasing webhook deliveries adds to the query that picks them: dispatchers on several
/// instances pass over the rows others are leasing.
const DELIVERY_CLAIM_LOCK: &str = "FOR UPDATE OF d SKIP LOCKED";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What claiming a job adds to the query that picks it (see `claim_job_with!`): workers on several
/// instances pass over the job rows others are claiming, so two never take the same job and none
/// waits for another's row lock.
macro_rules! job_claim_lock {
    ($define:ident) => {
        $define!("FOR UPDATE SKIP LOCKED");
    };
}
#[macro_use]
#[path = "../../store-sql/shared.rs"]
mod shared;

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// A pool that connects when a query needs it, waiting at most `acquire` for a connection.
    pub fn connect_lazy(url: &str, acquire: Duration) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(acquire)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// Where writes go (one pool serves writes and reads on PostgreSQL).
    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Where reads that need no transaction go.
    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&self.pool).await.map(|_| ())
    }

    // ---- the import ---------------------------------------------------------------------------

    /// Which of `e164s` are already in the inventory.
    pub async fn existing_numbers(&self, e164s: &[&str]) -> Result<HashSet<String>> {
        // One array parameter per call instead of a bind per number: a million-row import checks
        // its numbers in a hundred round trips of index probes.
        let rows: Vec<String> = sqlx::query_scalar("SELECT e164 FROM numbers WHERE e164 = ANY($1)")
            .bind(e164s)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Adds numbers and their creation events in one transaction: all or nothing. Streams both
    /// tables through binary `COPY` (see `bulk`), the fastest way into PostgreSQL.
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        bulk::insert_numbers(&mut tx, numbers, progress).await?;
        tx.commit().await
    }
}
