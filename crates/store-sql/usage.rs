//! Usage records for billing: one per customer and day, taken once, and read back for export.

use super::{DialectStore, Result};
use domain::usage::UsageRecord;
use domain::CustomerId;
use time::OffsetDateTime;
use uuid::Uuid;

struct UsageRow {
    customer_id: Uuid,
    customer_name: String,
    day: String,
    billing_ref: Option<String>,
    reserved: i64,
    provisioning: i64,
    active: i64,
    release_pending: i64,
    releasing: i64,
    suspended: i64,
    porting: i64,
    zoom_assigned: i64,
    port_ins: i64,
    releases: i64,
    taken_at: OffsetDateTime,
}

impl UsageRow {
    fn into_record(self) -> UsageRecord {
        UsageRecord {
            customer_id: CustomerId::from_uuid(self.customer_id),
            customer_name: self.customer_name,
            day: self.day,
            billing_ref: self.billing_ref,
            reserved: self.reserved,
            provisioning: self.provisioning,
            active: self.active,
            release_pending: self.release_pending,
            releasing: self.releasing,
            suspended: self.suspended,
            porting: self.porting,
            zoom_assigned: self.zoom_assigned,
            port_ins: self.port_ins,
            releases: self.releases,
            taken_at: self.taken_at,
        }
    }
}

macro_rules! select_usage {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            UsageRow,
            "SELECT u.customer_id AS \"customer_id!: Uuid\", c.name AS \"customer_name!\", u.day AS \"day!\", u.billing_ref AS \"billing_ref?\", \
             u.reserved AS \"reserved!: i64\", u.provisioning AS \"provisioning!: i64\", u.active AS \"active!: i64\", \
             u.release_pending AS \"release_pending!: i64\", u.releasing AS \"releasing!: i64\", u.suspended AS \"suspended!: i64\", u.porting AS \"porting!: i64\", \
             u.zoom_assigned AS \"zoom_assigned!: i64\", u.port_ins AS \"port_ins!: i64\", u.releases AS \"releases!: i64\", \
             u.taken_at AS \"taken_at!: OffsetDateTime\" FROM usage_records u JOIN customers c ON c.id = u.customer_id " + $rest $(, $arg)*
        )
    };
}

impl DialectStore {
    /// Takes every customer's record for `day` (`YYYY-MM-DD`; its releases counted between
    /// `day_start` and `day_end`) unless it was taken already: one statement, so every count is read
    /// from the same state of the inventory and two takers at once make one record. Returns how
    /// many records were made.
    pub async fn take_usage(
        &self,
        day: &str,
        day_start: OffsetDateTime,
        day_end: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        // `WHERE true` lets SQLite read the ON CONFLICT as the insert's, not the join's.
        let done = sqlx::query!(
            "INSERT INTO usage_records (customer_id, day, billing_ref, reserved, provisioning, active, release_pending, releasing, suspended, porting, zoom_assigned, port_ins, releases, taken_at) \
             SELECT c.id, $1, c.billing_ref, \
               COALESCE(SUM(CASE WHEN n.state = 'reserved' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'provisioning' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'active' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'release_pending' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'releasing' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'suspended' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state = 'porting' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN n.state IN ('active', 'release_pending', 'releasing') AND n.zoom_assigned THEN 1 ELSE 0 END), 0), \
               (SELECT COUNT(*) FROM port_in_numbers pn JOIN port_ins p ON p.id = pn.port_in_id \
                WHERE p.customer_id = c.id AND p.state = 'active' AND p.updated_at >= $2 AND p.updated_at < $3), \
               (SELECT COUNT(*) FROM release_numbers l JOIN releases r ON r.id = l.release_id \
                WHERE r.customer_id = c.id AND l.state = 'released' AND l.updated_at >= $2 AND l.updated_at < $3), \
               $4 \
             FROM customers c LEFT JOIN numbers n ON n.customer_id = c.id \
             WHERE true GROUP BY c.id, c.billing_ref \
             ON CONFLICT (customer_id, day) DO NOTHING",
            day,
            day_start,
            day_end,
            now
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// The records of days `from` to `to` (inclusive, `YYYY-MM-DD`), of one customer or all, by day
    /// and customer.
    pub async fn usage_records(
        &self,
        from: &str,
        to: &str,
        customer: Option<CustomerId>,
    ) -> Result<Vec<UsageRecord>> {
        let rows = match customer {
            Some(c) => {
                let c = c.as_uuid();
                select_usage!(
                    "WHERE u.day >= $1 AND u.day <= $2 AND u.customer_id = $3 ORDER BY u.day, c.name, u.customer_id",
                    from,
                    to,
                    c
                )
                .fetch_all(self.reader())
                .await?
            }
            None => {
                select_usage!(
                    "WHERE u.day >= $1 AND u.day <= $2 ORDER BY u.day, c.name, u.customer_id",
                    from,
                    to
                )
                .fetch_all(self.reader())
                .await?
            }
        };
        Ok(rows.into_iter().map(UsageRow::into_record).collect())
    }
}
