//! peerex's PostgreSQL dialect: for several `peerex serve` instances sharing one database.
//!
//! The queries both dialects share live in `crates/store-sql/`, compiled here against PostgreSQL's
//! schema (and checked against its offline data, `.sqlx/`). This crate holds what is PostgreSQL's
//! own: connecting and migrating, imports streamed through `COPY`, job claiming with
//! `FOR UPDATE SKIP LOCKED`, and the routing feed's LISTEN/NOTIFY. Only `store` should use this crate.

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
use shared::{encode_tags, INSERT_CHUNK};

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
    /// tables through `COPY`, the fastest way into PostgreSQL.
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut copy = tx
            .copy_in_raw("COPY numbers (id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at) FROM STDIN (FORMAT csv)")
            .await?;
        let mut buf = String::with_capacity(256 * INSERT_CHUNK);
        for chunk in numbers.chunks(INSERT_CHUNK * 10) {
            buf.clear();
            for (n, _) in chunk {
                copy_csv::number(&mut buf, n);
            }
            copy.send(buf.as_bytes()).await?;
        }
        copy.finish().await?;
        let mut copy = tx.copy_in_raw("COPY number_events (number_id, at, actor, from_state, to_state, reason) FROM STDIN (FORMAT csv)").await?;
        for chunk in numbers.chunks(INSERT_CHUNK * 10) {
            buf.clear();
            for (_, e) in chunk {
                copy_csv::event(&mut buf, e);
            }
            copy.send(buf.as_bytes()).await?;
            progress(chunk.len());
        }
        copy.finish().await?;
        tx.commit().await
    }
}

/// Rows in the CSV form `COPY ... (FORMAT csv)` reads: every text field quoted, an absent value empty.
mod copy_csv {
    use domain::{Number, NumberEvent};
    use std::fmt::Write;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    fn text(buf: &mut String, v: &str) {
        buf.push('"');
        for c in v.chars() {
            if c == '"' {
                buf.push('"');
            }
            buf.push(c);
        }
        buf.push('"');
    }

    fn opt(buf: &mut String, v: Option<&str>) {
        if let Some(v) = v {
            text(buf, v);
        }
    }

    fn at(buf: &mut String, t: OffsetDateTime) {
        buf.push_str(&t.format(&Rfc3339).unwrap_or_default());
    }

    pub fn number(buf: &mut String, n: &Number) {
        let _ = write!(buf, "{},", n.id);
        text(buf, n.e164.as_str());
        let _ = write!(buf, ",{},", n.state.as_str());
        if let Some(c) = n.customer_id {
            let _ = write!(buf, "{c}");
        }
        buf.push(',');
        if let Some(o) = n.order_id {
            let _ = write!(buf, "{o}");
        }
        buf.push(',');
        text(buf, &crate::encode_tags(&n.tags));
        for v in [&n.billing_ref, &n.region, &n.note, &n.reason] {
            buf.push(',');
            opt(buf, v.as_deref());
        }
        buf.push(',');
        if let Some(t) = n.aging_until {
            at(buf, t);
        }
        buf.push(',');
        at(buf, n.updated_at);
        buf.push('\n');
    }

    pub fn event(buf: &mut String, e: &NumberEvent) {
        let _ = write!(buf, "{},", e.number_id);
        at(buf, e.at);
        buf.push(',');
        text(buf, &e.actor);
        buf.push(',');
        opt(buf, e.from.map(|s| s.as_str()));
        let _ = write!(buf, ",{},", e.to.as_str());
        opt(buf, e.reason.as_deref());
        buf.push('\n');
    }
}
