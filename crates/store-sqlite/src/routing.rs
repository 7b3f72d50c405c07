//! What the routing snapshot reads (issue 7): numbers' routing facts, customers' trunks, and the
//! `routing_changes` feed that triggers fill. On SQLite, a commit that added to the feed also wakes
//! the snapshot in this process (see [`install_wake_hooks`]).

use crate::{Result, SqliteStore};
use domain::routing::{FeedRead, NumberFacts, RoutingCustomer};
use domain::{CustomerId, NumberState, PhoneNumber};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

struct FactsRow {
    e164: String,
    state: String,
    customer_id: Option<Uuid>,
    reason: Option<String>,
}

impl FactsRow {
    fn into_facts(self) -> Result<NumberFacts> {
        let state = NumberState::parse(&self.state).ok_or_else(|| {
            sqlx::Error::Decode(format!("unexpected number state {:?}", self.state).into())
        })?;
        Ok(NumberFacts {
            e164: PhoneNumber::from_trusted(self.e164),
            state,
            customer: self.customer_id.map(CustomerId::from_uuid),
            reason: self.reason,
        })
    }
}

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
    /// Every number that is not `available` (those decide like unknown ones), in E.164 order after
    /// `after`, at most `limit`.
    pub async fn routing_numbers(&self, after: &str, limit: i64) -> Result<Vec<NumberFacts>> {
        let rows = sqlx::query_as!(
            FactsRow,
            r#"SELECT e164, state, customer_id AS "customer_id: Uuid", reason FROM numbers WHERE state <> 'available' AND e164 > ? ORDER BY e164 LIMIT ?"#,
            after,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(FactsRow::into_facts).collect()
    }

    /// The routing facts of these numbers (those not in the inventory are absent).
    pub async fn routing_numbers_by_e164(&self, e164s: &[String]) -> Result<Vec<NumberFacts>> {
        let mut out = Vec::with_capacity(e164s.len());
        for chunk in e164s.chunks(crate::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT e164, state, customer_id, reason FROM numbers WHERE e164 IN (",
            );
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(")");
            let rows: Vec<(String, String, Option<Uuid>, Option<String>)> =
                q.build_query_as().fetch_all(&self.reader).await?;
            for (e164, state, customer_id, reason) in rows {
                out.push(FactsRow { e164, state, customer_id, reason }.into_facts()?);
            }
        }
        Ok(out)
    }

    /// Every customer with its trunk and whether it removed the app in Zoom (a removed link and no
    /// live one).
    pub async fn routing_customers(&self) -> Result<Vec<RoutingCustomer>> {
        let rows = sqlx::query!(
            r#"SELECT c.id AS "id!: Uuid", c.zoom_trunk,
                   (EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'removed')
                    AND NOT EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'linked')) AS "app_removed!: bool"
               FROM customers c"#
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RoutingCustomer {
                id: CustomerId::from_uuid(r.id),
                trunk: r.zoom_trunk,
                app_removed: r.app_removed,
            })
            .collect())
    }

    /// Where the feed stands (no changes read). Nothing is ever open: one writer at a time.
    pub async fn routing_feed_head(&self) -> Result<FeedRead> {
        let r = sqlx::query!(r#"SELECT COALESCE(MIN(id), 0) AS "low!: i64", COALESCE(MAX(id), 0) AS "high!: i64" FROM routing_changes"#).fetch_one(&self.reader).await?;
        Ok(FeedRead { low: r.low, high: r.high, ..FeedRead::default() })
    }

    /// The changes after `after`, at most `limit`, oldest first. SQLite's one writer commits change
    /// ids in order, so no transaction is ever watched and `watched` is empty.
    pub async fn routing_feed(&self, after: i64, limit: i64, _watched: &[i64]) -> Result<FeedRead> {
        // A read transaction: the bounds and the changes from one snapshot.
        let mut tx = self.reader.begin().await?;
        let r = sqlx::query!(r#"SELECT COALESCE(MIN(id), 0) AS "low!: i64", COALESCE(MAX(id), 0) AS "high!: i64" FROM routing_changes"#).fetch_one(&mut *tx).await?;
        let rows = sqlx::query!(r#"SELECT id AS "id!: i64", e164 FROM routing_changes WHERE id > ? ORDER BY id LIMIT ?"#, after, limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let changes: Vec<(i64, Option<String>)> =
            rows.into_iter().map(|r| (r.id, r.e164)).collect();
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

    /// Test and benchmark support: sets a number's state and customer directly, bypassing the
    /// state machine and the audit trail (the routing triggers still see it, as they see any write).
    pub async fn force_number_state(
        &self,
        e164: &str,
        state: &str,
        customer: Option<Uuid>,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE numbers SET state = ?, customer_id = ? WHERE e164 = ?",
            state,
            customer,
            e164
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
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
