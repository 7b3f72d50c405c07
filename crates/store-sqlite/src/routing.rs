//! The `routing_changes` feed the routing snapshot follows, which triggers fill (the numbers' and
//! customers' routing facts are shared: `store-sql/routing_facts.rs`). On SQLite, a commit that
//! added to the feed also wakes the snapshot in this process (see [`install_wake_hooks`]).

use crate::bulk::{from_rusqlite, on_reader, uuid_at};
use crate::shared::routing_facts::FactsRow;
use crate::{Result, SqliteStore};
use domain::routing::{FeedRead, Heartbeat, NumberFacts};
use domain::PhoneNumber;
use sqlx::SqliteConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Counts commits that added to `routing_changes` in this process; the routing snapshot waits on it.
pub fn routing_wake() -> tokio::sync::watch::Receiver<u64> {
    wake_sender().subscribe()
}

fn wake_sender() -> &'static tokio::sync::watch::Sender<u64> {
    static WAKE: OnceLock<tokio::sync::watch::Sender<u64>> = OnceLock::new();
    WAKE.get_or_init(|| tokio::sync::watch::channel(0).0)
}

/// Installed on the writer connection: SQLite's update hook sees the triggers' inserts into
/// `routing_changes`; the pool's release hook (after the transaction ended) then wakes listeners.
pub(crate) async fn install_wake_hooks(
    conn: &mut SqliteConnection,
    dirty: Arc<AtomicBool>,
) -> std::result::Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    handle.set_update_hook(move |change| {
        if change.table == "routing_changes" {
            dirty.store(true, Ordering::Release);
        }
    });
    Ok(())
}

pub(crate) fn wake_if_dirty(dirty: &AtomicBool) {
    if dirty.swap(false, Ordering::AcqRel) {
        wake_sender().send_modify(|n| *n += 1);
    }
}

impl SqliteStore {
    /// Where the feed stands (no changes read). Nothing is ever open: one writer at a time.
    pub async fn routing_feed_head(&self) -> Result<FeedRead> {
        let r = sqlx::query!(r#"SELECT COALESCE(MIN(id), 0) AS "low!: i64", COALESCE(MAX(id), 0) AS "high!: i64" FROM routing_changes"#).fetch_one(&self.reader).await?;
        Ok(FeedRead { low: r.low, high: r.high, ..FeedRead::default() })
    }

    /// The routing heartbeat. A SQLite file is never a replica: every read is current.
    pub async fn routing_heartbeat(&self) -> Result<Heartbeat> {
        let beat = sqlx::query_scalar!(
            r#"SELECT beat_ms AS "beat_ms!: i64" FROM routing_heartbeat WHERE id = 1"#
        )
        .fetch_optional(&self.reader)
        .await?;
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        };
        Ok(Heartbeat {
            replica: false,
            beat_at: beat.and_then(at),
            now: time::OffsetDateTime::now_utc(),
        })
    }

    /// Moves the heartbeat to now unless a beat younger than `min_gap_ms` is there already; true
    /// when this call wrote.
    pub async fn beat_routing_heartbeat(&self, min_gap_ms: i64) -> Result<bool> {
        let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let r = sqlx::query!(
            "UPDATE routing_heartbeat SET beat_ms = ?1 WHERE id = 1 AND (beat_ms <= ?1 - ?2 OR beat_ms > ?1)",
            now,
            min_gap_ms
        )
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The changes after `after`, at most `limit`, oldest first. SQLite's one writer commits change
    /// ids in order, so no transaction is ever watched and `watched` is empty.
    pub async fn routing_feed(&self, after: i64, limit: i64, _watched: &[i64]) -> Result<FeedRead> {
        // A read transaction: the bounds and the changes from one snapshot.
        let mut tx = self.reader.begin().await?;
        let r = sqlx::query!(r#"SELECT COALESCE(MIN(id), 0) AS "low!: i64", COALESCE(MAX(id), 0) AS "high!: i64" FROM routing_changes"#).fetch_one(&mut *tx).await?;
        let rows = sqlx::query!(r#"SELECT id AS "id!: i64", e164 FROM routing_changes WHERE id > ? ORDER BY id LIMIT ?"#, after, limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let changes: Vec<(i64, Option<PhoneNumber>)> =
            rows.into_iter().map(|r| (r.id, r.e164.map(PhoneNumber::from_trusted))).collect();
        Ok(FeedRead {
            newer: changes.len(),
            changes,
            low: r.low,
            high: r.high,
            ..FeedRead::default()
        })
    }

    /// Forgets changes up to `upto`; a snapshot further behind rebuilds from the numbers.
    /// (`horizon` is PostgreSQL's: nothing commits late here.)
    pub async fn prune_routing_changes(&self, upto: i64, _horizon: Option<i64>) -> Result<u64> {
        Ok(sqlx::query!("DELETE FROM routing_changes WHERE id <= ?", upto)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}

/// The writer pool's options with the routing wake hooks installed.
pub(crate) fn with_wake_hooks(
    options: sqlx::sqlite::SqlitePoolOptions,
) -> sqlx::sqlite::SqlitePoolOptions {
    let dirty = Arc::new(AtomicBool::new(false));
    let on_release = dirty.clone();
    options
        .after_connect(move |conn, _| {
            let dirty = dirty.clone();
            Box::pin(async move { install_wake_hooks(conn, dirty).await })
        })
        .after_release(move |_, _| {
            wake_if_dirty(&on_release);
            Box::pin(async { Ok(true) })
        })
}

impl SqliteStore {
    /// Every number that is not `available` (those decide like unknown ones), in E.164 order after
    /// `after` (from the first when `None`), at most `limit`.
    ///
    /// Stepped through SQLite's C API on a reader connection's own handle (`bulk::on_reader`): through
    /// sqlx, every row crossed from its connection's worker thread to the caller as an owned row of
    /// copied values, which cost 4.2 s of the 4.3 s a routing instance took to load 1,000,000
    /// numbers on this 2-core machine.
    async fn routing_numbers(
        &self,
        after: Option<&PhoneNumber>,
        limit: i64,
    ) -> Result<Vec<NumberFacts>> {
        let after = after.map_or("", PhoneNumber::as_str);
        let rows = on_reader(self, |db| {
            let mut stmt = db
                .prepare(
                    "SELECT e164, state, customer_id, reason FROM numbers WHERE state <> 'available' AND e164 > ?1 ORDER BY e164 LIMIT ?2",
                )
                .map_err(from_rusqlite)?;
            let mut rows = stmt.query(rusqlite::params![after, limit]).map_err(from_rusqlite)?;
            let mut out = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(100_000));
            while let Some(r) = rows.next().map_err(from_rusqlite)? {
                out.push(FactsRow {
                    e164: r.get(0).map_err(from_rusqlite)?,
                    state: r.get(1).map_err(from_rusqlite)?,
                    customer_id: uuid_at(r, 2)?,
                    reason: r.get(3).map_err(from_rusqlite)?,
                });
            }
            Ok(out)
        })
        .await?;
        rows.into_iter().map(FactsRow::into_facts).collect()
    }

    /// Every number that is not `available`, handed to `sink` a page at a time; returns how many.
    pub async fn routing_numbers_each(
        &self,
        sink: &mut (dyn FnMut(&[NumberFacts]) + Send),
    ) -> Result<u64> {
        const PAGE: i64 = 50_000;
        let (mut after, mut total) = (None::<PhoneNumber>, 0);
        loop {
            let page = self.routing_numbers(after.as_ref(), PAGE).await?;
            total += page.len() as u64;
            sink(&page);
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = Some(last.e164.clone()),
                _ => return Ok(total),
            }
        }
    }
}
