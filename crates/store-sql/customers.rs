//! Customers: the carrier's contracts and their number limits.

use super::rows::CustomerRow;
use super::{Db, DialectStore, Result};
use domain::customer::{ContractState, Customer};
use domain::CustomerId;
use time::OffsetDateTime;
use uuid::Uuid;

impl DialectStore {
    pub async fn insert_customer(&self, c: &Customer) -> Result<()> {
        let db_id = c.id.as_uuid();
        let db_contract_state = c.contract_state.as_str();
        let limit = c.number_limit.map(i64::from);
        sqlx::query!("INSERT INTO customers (id, name, contract_ref, contract_state, created_at, number_limit, billing_ref) VALUES ($1, $2, $3, $4, $5, $6, $7)", db_id, c.name, c.contract_ref, db_contract_state, c.created_at, limit, c.billing_ref)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    /// Sets (or, with `None`, lifts) the most numbers the customer may hold. False for an unknown id.
    pub async fn set_number_limit(&self, id: CustomerId, limit: Option<u32>) -> Result<bool> {
        let db_id = id.as_uuid();
        let limit = limit.map(i64::from);
        let done =
            sqlx::query!("UPDATE customers SET number_limit = $1 WHERE id = $2", limit, db_id)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets (or, with `None`, clears) the customer's billing reference. False for an unknown id.
    pub async fn set_billing_ref(&self, id: CustomerId, billing_ref: Option<&str>) -> Result<bool> {
        let db_id = id.as_uuid();
        let done =
            sqlx::query!("UPDATE customers SET billing_ref = $1 WHERE id = $2", billing_ref, db_id)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many numbers the customer holds: what its number limit counts.
    pub async fn numbers_held(&self, id: CustomerId) -> Result<u32> {
        numbers_held(self.reader(), id.as_uuid()).await
    }

    pub async fn list_customers(&self) -> Result<Vec<Customer>> {
        let rows = select_customers!("ORDER BY name, id").fetch_all(self.reader()).await?;
        rows.into_iter().map(CustomerRow::into_customer).collect()
    }

    pub async fn get_customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        let id = id.as_uuid();
        let row = select_customers!("WHERE id = $1", id).fetch_optional(self.reader()).await?;
        row.map(CustomerRow::into_customer).transpose()
    }

    pub async fn set_contract_state(&self, id: CustomerId, state: ContractState) -> Result<bool> {
        let db_state = state.as_str();
        let db_id = id.as_uuid();
        let done =
            sqlx::query!("UPDATE customers SET contract_state = $1 WHERE id = $2", db_state, db_id)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The numbers a customer holds (every state but `available` and `aging`): what its number limit
/// counts.
pub(crate) async fn numbers_held<'e>(
    e: impl sqlx::Executor<'e, Database = Db>,
    customer: Uuid,
) -> Result<u32> {
    let held = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM numbers WHERE customer_id = $1 AND state NOT IN ('available', 'aging')"#,
        customer
    )
    .fetch_one(e)
    .await?;
    Ok(u32::try_from(held).unwrap_or(u32::MAX))
}
