//! What the routing snapshot reads of numbers and customers: each number's routing facts and each
//! customer's trunk. The full load is each dialect's own (`routing_numbers_each`: one binary COPY on
//! PostgreSQL, pages read below sqlx on SQLite). The `routing_changes` feed that tells the snapshot
//! what changed, and how a commit wakes it, are each dialect's own (its `routing.rs`).

use super::{Db, DialectStore, Result, INSERT_CHUNK};
use domain::routing::{NumberFacts, RoutingCustomer};
use domain::{CustomerId, NumberState, PhoneNumber};
use sqlx::QueryBuilder;
use uuid::Uuid;

pub(crate) struct FactsRow {
    pub(crate) e164: String,
    pub(crate) state: String,
    pub(crate) customer_id: Option<Uuid>,
    pub(crate) reason: Option<String>,
}

impl FactsRow {
    pub(crate) fn into_facts(self) -> Result<NumberFacts> {
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

impl DialectStore {
    /// The routing facts of these numbers (those not in the inventory are absent).
    pub async fn routing_numbers_by_e164(&self, e164s: &[PhoneNumber]) -> Result<Vec<NumberFacts>> {
        let mut out = Vec::with_capacity(e164s.len());
        for chunk in e164s.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT e164, state, customer_id, reason FROM numbers WHERE e164 IN (",
            );
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(")");
            let rows: Vec<(String, String, Option<Uuid>, Option<String>)> =
                q.build_query_as().fetch_all(self.reader()).await?;
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
            r#"SELECT c.id AS "id!: Uuid", c.zoom_trunk AS "zoom_trunk?",
                   (EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'removed')
                    AND NOT EXISTS (SELECT 1 FROM zoom_links l WHERE l.customer_id = c.id AND l.state = 'linked')) AS "app_removed!: bool"
               FROM customers c"#
        )
        .fetch_all(self.reader())
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

    /// Test and benchmark support: sets a number's state and customer directly, bypassing the
    /// state machine and the audit trail (the routing triggers still see it, as they see any write).
    pub async fn force_number_state(
        &self,
        e164: &PhoneNumber,
        state: NumberState,
        customer: Option<CustomerId>,
    ) -> Result<bool> {
        let (e164, state) = (e164.as_str(), state.as_str());
        let customer = customer.map(|c| c.as_uuid());
        let done = sqlx::query!(
            "UPDATE numbers SET state = $1, customer_id = $2, version = version + 1 WHERE e164 = $3",
            state,
            customer,
            e164
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
