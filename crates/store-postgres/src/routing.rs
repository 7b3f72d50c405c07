//! What the routing snapshot reads (issue 7): numbers' routing facts, customers' trunks, and the
//! `routing_changes` feed that triggers fill. Its triggers `NOTIFY peerex_routing` at commit, which
//! every instance's snapshot LISTENs to.

use crate::{PgStore, Result};
use domain::routing::{FeedRead, NumberFacts, RoutingCustomer};
use domain::{CustomerId, NumberState, PhoneNumber};
use sqlx::{Postgres, QueryBuilder};
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
    /// Every number that is not `available` (those decide like unknown ones), in E.164 order after
    /// `after`, at most `limit`.
    pub async fn routing_numbers(&self, after: &str, limit: i64) -> Result<Vec<NumberFacts>> {
        let rows = sqlx::query_as!(
            FactsRow,
            r#"SELECT e164, state, customer_id , reason FROM numbers WHERE state <> 'available' AND e164 > $1 ORDER BY e164 LIMIT $2"#,
            after,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(FactsRow::into_facts).collect()
    }

    /// The routing facts of these numbers (those not in the inventory are absent).
    pub async fn routing_numbers_by_e164(&self, e164s: &[String]) -> Result<Vec<NumberFacts>> {
        let mut out = Vec::with_capacity(e164s.len());
        for chunk in e164s.chunks(crate::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(
                "SELECT e164, state, customer_id, reason FROM numbers WHERE e164 IN (",
            );
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(")");
            let rows: Vec<(String, String, Option<Uuid>, Option<String>)> =
                q.build_query_as().fetch_all(&self.pool).await?;
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
            r#"SELECT c.id AS "id!", c.zoom_trunk,
                   (EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'removed')
                    AND NOT EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'linked')) AS "app_removed!"
               FROM customers c"#
        )
        .fetch_all(&self.pool)
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

    /// Where the feed stands (no changes read), in one statement and so one snapshot: the
    /// transactions open now may still commit changes with ids at or below `high`.
    pub async fn routing_feed_head(&self) -> Result<FeedRead> {
        head(&mut *self.pool.acquire().await?).await
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
        .map(|r| (r.id, r.e164))
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
            read.changes.extend(late.into_iter().map(|r| (r.id, r.e164)));
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

    /// Test and benchmark support: sets a number's state and customer directly, bypassing the
    /// state machine and the audit trail (the routing triggers still see it, as they see any write).
    pub async fn force_number_state(
        &self,
        e164: &str,
        state: &str,
        customer: Option<Uuid>,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE numbers SET state = $1, customer_id = $2 WHERE e164 = $3",
            state,
            customer,
            e164
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
