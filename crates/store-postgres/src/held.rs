//! The reconciler's read of a customer's numbers (SQLite's is read below sqlx, its `held.rs`); the
//! query and the row's meaning are the shared dialect code's (`findings.rs`, `HeldRow`).

use crate::shared::findings::HeldRow;
use crate::{PgStore, Result};
use domain::reconcile::Held;
use uuid::Uuid;

impl PgStore {
    /// Every number `customer` holds, as the reconciler compares it.
    pub async fn held_by_customer(&self, customer: Uuid) -> Result<Vec<Held>> {
        let sql = HeldRow::by_customer("$1");
        let rows: Vec<HeldRow> =
            sqlx::query_as(&sql).bind(customer).fetch_all(self.reader()).await?;
        rows.into_iter().map(HeldRow::into_held).collect()
    }
}
