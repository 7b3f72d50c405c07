//! The `routing_changes` feed the routing snapshot follows, which triggers fill (the numbers' and
//! customers' routing facts are shared: `store-sql/routing_facts.rs`). Its triggers
//! `NOTIFY peerex_routing` at commit, which every instance's snapshot LISTENs to.

use crate::copy::{BinaryCopy, CopyError, Field};
use crate::shared::routing_facts::FactsRow;
use crate::{PgStore, Result};
use domain::routing::{FeedRead, Heartbeat, NumberFacts};
use domain::PhoneNumber;
use uuid::Uuid;

/// Listens for `NOTIFY peerex_routing`, which the `routing_changes` triggers send at commit.
pub const ROUTING_CHANNEL: &str = "peerex_routing";

/// The feed's bounds and open transactions, in the snapshot of the statement (or the transaction,
/// under REPEATABLE READ) that runs this.
async fn head(conn: &mut sqlx::PgConnection) -> Result<FeedRead> {
    let r = sqlx::query!(
        r#"SELECT COALESCE(MIN(id), 0) AS "low!", COALESCE(MAX(id), 0) AS "high!",
                  ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) x) AS "open!",
                  pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS "horizon!"
           FROM routing_changes"#
    )
    .fetch_one(conn)
    .await?;
    Ok(FeedRead {
        open: r.open,
        low: r.low,
        high: r.high,
        horizon: Some(r.horizon),
        ..FeedRead::default()
    })
}

impl PgStore {
    /// Where the feed stands (no changes read), in one statement and so one snapshot: the
    /// transactions open now may still commit changes with ids at or below `high`.
    pub async fn routing_feed_head(&self) -> Result<FeedRead> {
        head(&mut *self.pool.acquire().await?).await
    }

    /// Whether this database is a replica, the routing heartbeat as it has reached it, and its
    /// clock, in one statement.
    pub async fn routing_heartbeat(&self) -> Result<Heartbeat> {
        let r = sqlx::query!(
            r#"SELECT pg_is_in_recovery() AS "replica!", now() AS "now!",
                      (SELECT beat_at FROM routing_heartbeat WHERE id = 1) AS beat_at"#
        )
        .fetch_one(self.reader())
        .await?;
        Ok(Heartbeat { replica: r.replica, beat_at: r.beat_at, now: r.now })
    }

    /// Moves the heartbeat to the primary's now() unless a beat younger than `min_gap_ms` is
    /// there already (another instance beat first); true when this call wrote. One clock for
    /// every writer: a beat from the future (the primary's clock stepped back) is replaced too.
    pub async fn beat_routing_heartbeat(&self, min_gap_ms: i64) -> Result<bool> {
        let r = sqlx::query!(
            "UPDATE routing_heartbeat SET beat_at = now()
             WHERE id = 1 AND (beat_at <= now() - $1 * interval '1 millisecond' OR beat_at > now())",
            min_gap_ms as f64
        )
        .execute(self.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The changes after `after` (at most `limit`) and those of the `watched` transactions at or
    /// below it, with the transactions still open, all from one snapshot (see [`FeedRead`]).
    pub async fn routing_feed(&self, after: i64, limit: i64, watched: &[i64]) -> Result<FeedRead> {
        let mut tx = self.pool.begin().await?;
        // One snapshot for every statement below: what is open and what is visible must agree, or a
        // transaction could commit between them and be neither read nor watched.
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let mut read = head(&mut tx).await?;
        read.changes = sqlx::query!(
            r#"SELECT id AS "id!", e164 FROM routing_changes WHERE id > $1 ORDER BY id LIMIT $2"#,
            after,
            limit
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.e164.map(PhoneNumber::from_trusted)))
        .collect();
        read.newer = read.changes.len();
        if !watched.is_empty() {
            let late = sqlx::query!(
                r#"SELECT id AS "id!", e164 FROM routing_changes WHERE xid = ANY($1) AND id <= $2 ORDER BY id"#,
                watched,
                after
            )
            .fetch_all(&mut *tx)
            .await?;
            read.changes
                .extend(late.into_iter().map(|r| (r.id, r.e164.map(PhoneNumber::from_trusted))));
        }
        tx.commit().await?;
        Ok(read)
    }

    /// A connection LISTENing to the routing feed's notifications.
    pub async fn routing_listener(&self) -> Result<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(ROUTING_CHANNEL).await?;
        Ok(listener)
    }

    /// Forgets changes up to `upto`, sparing those of transactions at or after `horizon` (a
    /// [`FeedRead::horizon`] taken a while ago): a reader may be about to read them as late changes.
    /// A snapshot further behind rebuilds from the numbers.
    pub async fn prune_routing_changes(&self, upto: i64, horizon: Option<i64>) -> Result<u64> {
        Ok(sqlx::query!(
            "DELETE FROM routing_changes WHERE id <= $1 AND (xid IS NULL OR xid < $2)",
            upto,
            horizon.unwrap_or(0)
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Every number that is not `available`, from one snapshot, handed to `sink` in chunks as
    /// PostgreSQL sends them; returns how many. One `COPY ... TO STDOUT (FORMAT binary)`: the server
    /// scans and sends while this side parses (see `copy.rs`), where the pages it replaced (`LIMIT`
    /// after the last E.164 read) left each side waiting for the other.
    pub async fn routing_numbers_each(
        &self,
        sink: &mut (dyn FnMut(&[NumberFacts]) + Send),
    ) -> Result<u64> {
        let mut conn = self.reader().acquire().await?;
        // Closed after, never pooled: a load stopped mid-COPY (its caller timed out and dropped
        // this future, or an error) would leave the COPY's own answers for the connection's next
        // user. A full load is rare; one connection made again costs nothing.
        conn.close_on_drop();
        copy_facts(&mut conn, sink).await
    }
}

/// How many numbers the full load hands its sink at a time.
const FACTS_CHUNK: usize = 16_384;

async fn copy_facts(
    conn: &mut sqlx::PgConnection,
    sink: &mut (dyn FnMut(&[NumberFacts]) + Send),
) -> Result<u64> {
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT e164, state, customer_id, reason FROM numbers WHERE state <> 'available') TO STDOUT (FORMAT binary)",
        )
        .await?;
    let mut copy = BinaryCopy::<4>::default();
    let mut batch = Vec::with_capacity(FACTS_CHUNK);
    let mut total = 0u64;
    while let Some(bytes) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        copy.feed(&bytes?, &mut |f: &[Field<'_>; 4]| -> Result<()> {
            batch.push(facts(f)?);
            Ok(())
        })?;
        if batch.len() >= FACTS_CHUNK {
            total += batch.len() as u64;
            sink(&batch);
            batch.clear();
        }
    }
    copy.finish()?;
    total += batch.len() as u64;
    sink(&batch);
    Ok(total)
}

impl From<CopyError> for sqlx::Error {
    fn from(e: CopyError) -> Self {
        sqlx::Error::Decode(Box::new(e))
    }
}

/// One row of the full load's COPY: e164, state, customer_id (a uuid's 16 bytes), reason.
fn facts(f: &[Field<'_>; 4]) -> Result<NumberFacts> {
    let text = |i: usize, name: &str| -> Result<Option<String>> {
        f[i].map(|b| {
            String::from_utf8(b.to_vec())
                .map_err(|_| sqlx::Error::from(CopyError(format!("{name} is not UTF-8"))))
        })
        .transpose()
    };
    let missing = |name: &str| sqlx::Error::from(CopyError(format!("{name} is NULL")));
    let customer_id = f[2]
        .map(|b| {
            Uuid::from_slice(b)
                .map_err(|_| sqlx::Error::from(CopyError("customer_id is not a uuid".into())))
        })
        .transpose()?;
    FactsRow {
        e164: text(0, "e164")?.ok_or_else(|| missing("e164"))?,
        state: text(1, "state")?.ok_or_else(|| missing("state"))?,
        customer_id,
        reason: text(3, "reason")?,
    }
    .into_facts()
}
