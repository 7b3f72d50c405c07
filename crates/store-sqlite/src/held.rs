//! The reconciler's read of a customer's numbers, stepped below sqlx (`bulk::on_reader`): a full
//! cycle reads every number of every linked account, and through sqlx each row crossed threads as a
//! copied row (the read the reconciler spent most on, after Zoom's pages). The query and the row's
//! meaning are the shared dialect code's (`findings.rs`, `HeldRow`).

use crate::bulk::{from_rusqlite, on_reader, uuid_at};
use crate::shared::findings::HeldRow;
use crate::{Result, SqliteStore};
use domain::reconcile::Held;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

impl SqliteStore {
    /// Every number `customer` holds, as the reconciler compares it.
    pub async fn held_by_customer(&self, customer: Uuid) -> Result<Vec<Held>> {
        let sql = HeldRow::by_customer("?1");
        let rows = on_reader(self, |db| {
            let mut stmt = db.prepare(&sql).map_err(from_rusqlite)?;
            let mut rows = stmt.query([customer.as_bytes().as_slice()]).map_err(from_rusqlite)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(from_rusqlite)? {
                let updated_at: String = r.get(3).map_err(from_rusqlite)?;
                out.push(HeldRow {
                    e164: r.get(0).map_err(from_rusqlite)?,
                    state: r.get(1).map_err(from_rusqlite)?,
                    customer_id: uuid_at(r, 2)?,
                    // As sqlx writes times on SQLite (and the bulk import too): RFC 3339 text.
                    updated_at: OffsetDateTime::parse(&updated_at, &Rfc3339)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    zoom_trunk: r.get(4).map_err(from_rusqlite)?,
                    zoom_account: r.get(5).map_err(from_rusqlite)?,
                    job_open: r.get(6).map_err(from_rusqlite)?,
                });
            }
            Ok(out)
        })
        .await?;
        rows.into_iter().map(HeldRow::into_held).collect()
    }
}
