//! What Zoom says about customers' numbers: emergency addresses and caller ID names from Zoom's
//! events (every event kept, the newest per number current), and capabilities from Zoom's listings.
//!
//! Both guarantees are the database's, not a read's: an event is recorded once per number by the
//! unique key `number_zoom_events_once`, and a current value is replaced only by a newer event in
//! the upsert's own `WHERE`, so two instances taking the same or crossing events agree.

use super::webhooks::emit;
use super::{Db, DialectStore, Result, INSERT_CHUNK};
use domain::webhook::{EventType, OutboundEvent};
use domain::zoom_facts::{
    Cnam, EmergencyAddress, FactChange, FactOutcome, FactRecord, NumberFacts, ZoomListing,
};
use domain::{CustomerId, NumberId, PhoneNumber};
use sqlx::{FromRow, QueryBuilder};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Zoom's `event_ts` (milliseconds) as a time; one out of range reads as the epoch.
fn millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[derive(FromRow)]
struct FactsRow {
    number_id: Uuid,
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    zip: Option<String>,
    state_code: Option<String>,
    country: Option<String>,
    address_event_ts: Option<i64>,
    cnam: Option<String>,
    cnam_event_ts: Option<i64>,
    number_type: Option<String>,
    voice_direction: Option<String>,
    voice_msg_capacity: Option<String>,
    message_capability: Option<String>,
    outbound_dialer_not_supported: Option<bool>,
    outbound_cli_share_not_supported: Option<bool>,
    listed_at: Option<OffsetDateTime>,
}

impl FactsRow {
    const SELECT: &'static str = "SELECT f.number_id, f.address_line1, f.address_line2, f.city, f.zip, f.state_code, f.country, \
         f.address_event_ts, f.cnam, f.cnam_event_ts, f.number_type, f.voice_direction, f.voice_msg_capacity, \
         f.message_capability, f.outbound_dialer_not_supported, f.outbound_cli_share_not_supported, f.listed_at \
         FROM number_zoom_facts f JOIN numbers n ON n.id = f.number_id AND n.customer_id = f.customer_id";

    fn into_facts(self) -> (NumberId, NumberFacts) {
        let emergency_address = self.address_line1.map(|line1| {
            EmergencyAddress::from_trusted(
                line1,
                self.address_line2,
                self.city,
                self.zip,
                self.state_code,
                self.country,
            )
        });
        let listing = self.listed_at.map(|_| ZoomListing {
            number_type: self.number_type,
            voice_direction: self.voice_direction,
            voice_msg_capacity: self.voice_msg_capacity,
            message_capability: self.message_capability,
            outbound_dialer_not_supported: self.outbound_dialer_not_supported,
            outbound_cli_share_not_supported: self.outbound_cli_share_not_supported,
        });
        let facts = NumberFacts {
            emergency_address_changed_at: emergency_address
                .as_ref()
                .and(self.address_event_ts)
                .map(millis),
            emergency_address,
            cnam_changed_at: self.cnam.as_ref().and(self.cnam_event_ts).map(millis),
            cnam: self.cnam.map(Cnam::from_trusted),
            listing,
            listed_at: self.listed_at,
        };
        (NumberId::from_uuid(self.number_id), facts)
    }
}

struct HistoryRow {
    e164: String,
    customer_id: Uuid,
    zoom_account_id: String,
    zoom_event_id: String,
    event_ts: i64,
    received_at: OffsetDateTime,
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    zip: Option<String>,
    state_code: Option<String>,
    country: Option<String>,
    cnam: Option<String>,
}

impl HistoryRow {
    fn into_record(self) -> FactRecord {
        let change = match (self.address_line1, self.cnam) {
            (Some(line1), _) => FactChange::EmergencyAddress {
                address: EmergencyAddress::from_trusted(
                    line1,
                    self.address_line2,
                    self.city,
                    self.zip,
                    self.state_code,
                    self.country,
                ),
            },
            // The table's CHECKs hold one or the other.
            (None, cnam) => FactChange::Cnam { cnam: Cnam::from_trusted(cnam.unwrap_or_default()) },
        };
        FactRecord {
            number: PhoneNumber::from_trusted(self.e164),
            customer_id: CustomerId::from_uuid(self.customer_id),
            zoom_account: self.zoom_account_id,
            event_id: self.zoom_event_id,
            changed_at: millis(self.event_ts),
            received_at: self.received_at,
            change,
        }
    }
}

/// The numbers the carrier flags: active, starting with one of `prefixes` (any when empty), with no
/// emergency address from their current customer.
pub(crate) fn push_missing_address_filter(q: &mut QueryBuilder<'_, Db>, prefixes: &[String]) {
    q.push(" AND state = 'active' AND NOT EXISTS (SELECT 1 FROM number_zoom_facts f WHERE f.number_id = numbers.id AND f.customer_id = numbers.customer_id AND f.address_line1 IS NOT NULL)");
    if !prefixes.is_empty() {
        q.push(" AND (");
        for (i, p) in prefixes.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push("(e164 >= ")
                .push_bind(p.clone())
                .push(" AND e164 < ")
                .push_bind(domain::search::NumberQuery::prefix_upper(p))
                .push(")");
        }
        q.push(")");
    }
}

impl DialectStore {
    /// Records one Zoom event for each of `numbers` that is `customer`'s now (the customer whose
    /// Zoom account sent it), in one transaction; the answer says, per number, what happened.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_number_fact(
        &self,
        customer: CustomerId,
        account: &str,
        event_id: &str,
        event_ts: i64,
        change: &FactChange,
        numbers: &[&str],
        now: OffsetDateTime,
    ) -> Result<Vec<FactOutcome>> {
        let customer = customer.as_uuid();
        let kind = change.kind();
        let (address, cnam) = match change {
            FactChange::EmergencyAddress { address } => (Some(address), None),
            FactChange::Cnam { cnam } => (None, Some(cnam.as_str())),
        };
        let part = |f: fn(&EmergencyAddress) -> Option<&str>| address.and_then(f);
        let (line1, line2, city, zip, state_code, country) = (
            address.map(EmergencyAddress::line1),
            part(EmergencyAddress::line2),
            part(EmergencyAddress::city),
            part(EmergencyAddress::zip),
            part(EmergencyAddress::state_code),
            part(EmergencyAddress::country),
        );
        let mut tx = self.writer().begin().await?;
        let mut out = Vec::with_capacity(numbers.len());
        for &e164 in numbers {
            // An UPDATE that changes nothing rather than a SELECT: it locks the number's row, so a
            // release of the number running at the same time either waits for this event (and then
            // forgets what it recorded) or goes first (and this finds the number no longer the
            // customer's). A plain read could record a fact just after the release forgot them.
            let id = sqlx::query_scalar!(
                r#"UPDATE numbers SET version = version WHERE e164 = $1 AND customer_id = $2 RETURNING id AS "id!: Uuid""#,
                e164,
                customer
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                out.push(FactOutcome::NotTheCustomers);
                continue;
            };
            let kept = sqlx::query!(
                "INSERT INTO number_zoom_events (number_id, customer_id, e164, zoom_account_id, kind, zoom_event_id, event_ts, received_at, \
                 address_line1, address_line2, city, zip, state_code, country, cnam) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (zoom_event_id, number_id) DO NOTHING",
                id, customer, e164, account, kind, event_id, event_ts, now,
                line1, line2, city, zip, state_code, country, cnam
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !kept {
                out.push(FactOutcome::AlreadyRecorded);
                continue;
            }
            let changed = if address.is_some() {
                sqlx::query!(
                    "INSERT INTO number_zoom_facts (number_id, customer_id, address_line1, address_line2, city, zip, state_code, country, \
                     address_event_ts, address_event_id, address_received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (number_id, customer_id) DO UPDATE SET address_line1 = excluded.address_line1, \
                     address_line2 = excluded.address_line2, city = excluded.city, zip = excluded.zip, \
                     state_code = excluded.state_code, country = excluded.country, address_event_ts = excluded.address_event_ts, \
                     address_event_id = excluded.address_event_id, address_received_at = excluded.address_received_at \
                     WHERE number_zoom_facts.address_event_ts IS NULL \
                     OR number_zoom_facts.address_event_ts < excluded.address_event_ts \
                     OR (number_zoom_facts.address_event_ts = excluded.address_event_ts AND number_zoom_facts.address_event_id < excluded.address_event_id)",
                    id, customer, line1, line2, city, zip, state_code, country, event_ts, event_id, now
                )
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query!(
                    "INSERT INTO number_zoom_facts (number_id, customer_id, cnam, cnam_event_ts, cnam_event_id, cnam_received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (number_id, customer_id) DO UPDATE SET cnam = excluded.cnam, cnam_event_ts = excluded.cnam_event_ts, \
                     cnam_event_id = excluded.cnam_event_id, cnam_received_at = excluded.cnam_received_at \
                     WHERE number_zoom_facts.cnam_event_ts IS NULL \
                     OR number_zoom_facts.cnam_event_ts < excluded.cnam_event_ts \
                     OR (number_zoom_facts.cnam_event_ts = excluded.cnam_event_ts AND number_zoom_facts.cnam_event_id < excluded.cnam_event_id)",
                    id, customer, cnam, event_ts, event_id, now
                )
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            // A newer value than the one held is told to the carrier's systems (a late, older
            // event is kept in the history only).
            if changed == 1 {
                let (t, value) = match change {
                    FactChange::EmergencyAddress { .. } => (
                        EventType::NumberEmergencyAddressChanged,
                        serde_json::json!({ "address": { "line1": line1, "line2": line2, "city": city, "zip": zip, "state_code": state_code, "country": country } }),
                    ),
                    FactChange::Cnam { .. } => {
                        (EventType::NumberCnamChanged, serde_json::json!({ "cnam": cnam }))
                    }
                };
                let mut data = serde_json::json!({ "number_id": id, "e164": e164, "customer_id": customer, "zoom_account_id": account });
                if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), value) {
                    d.extend(more);
                }
                emit(&mut tx, &[OutboundEvent::new(t, e164, now, data)]).await?;
            }
            out.push(FactOutcome::Recorded);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Keeps what Zoom's listing of `customer`'s account says of each number that is the
    /// customer's; numbers that are not are left alone.
    pub async fn record_zoom_listing(
        &self,
        customer: CustomerId,
        listed: &[(PhoneNumber, ZoomListing)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let customer = customer.as_uuid();
        let mut tx = self.writer().begin().await?;
        let held: HashMap<String, Uuid> = sqlx::query!(
            r#"SELECT id AS "id!: Uuid", e164 AS "e164!" FROM numbers WHERE customer_id = $1"#,
            customer
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.e164, r.id))
        .collect();
        // One row per number (a listing names each once; a repeat would be one row written twice).
        let rows: HashMap<Uuid, &ZoomListing> = listed
            .iter()
            .filter_map(|(e164, l)| held.get(e164.as_str()).map(|id| (*id, l)))
            .collect();
        // In the order of the rows' keys, so two listings written at once lock rows in the same order.
        let mut rows: Vec<(Uuid, &ZoomListing)> = rows.into_iter().collect();
        rows.sort_unstable_by_key(|(id, _)| *id);
        // Many rows a statement: an account's listing can hold tens of thousands of numbers.
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO number_zoom_facts (number_id, customer_id, number_type, voice_direction, voice_msg_capacity, \
                 message_capability, outbound_dialer_not_supported, outbound_cli_share_not_supported, listed_at) ",
            );
            q.push_values(chunk, |mut row, (id, l)| {
                row.push_bind(*id)
                    .push_bind(customer)
                    .push_bind(l.number_type.clone())
                    .push_bind(l.voice_direction.clone())
                    .push_bind(l.voice_msg_capacity.clone())
                    .push_bind(l.message_capability.clone())
                    .push_bind(l.outbound_dialer_not_supported)
                    .push_bind(l.outbound_cli_share_not_supported)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (number_id, customer_id) DO UPDATE SET number_type = excluded.number_type, \
                 voice_direction = excluded.voice_direction, voice_msg_capacity = excluded.voice_msg_capacity, \
                 message_capability = excluded.message_capability, \
                 outbound_dialer_not_supported = excluded.outbound_dialer_not_supported, \
                 outbound_cli_share_not_supported = excluded.outbound_cli_share_not_supported, listed_at = excluded.listed_at",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What is held now for each of `ids` that has anything from its current customer's Zoom.
    pub async fn number_facts(&self, ids: &[NumberId]) -> Result<Vec<(NumberId, NumberFacts)>> {
        let mut out = Vec::with_capacity(ids.len());
        // Bounded lists: SQLite and PostgreSQL both cap the bind parameters of one statement.
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::<Db>::new(FactsRow::SELECT);
            q.push(" WHERE f.number_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.as_uuid());
            }
            q.push(")");
            let rows: Vec<FactsRow> = q.build_query_as().fetch_all(self.reader()).await?;
            out.extend(rows.into_iter().map(FactsRow::into_facts));
        }
        Ok(out)
    }

    /// Every emergency-address and CNAM event recorded for the number, newest change first.
    pub async fn number_fact_history(&self, id: NumberId) -> Result<Vec<FactRecord>> {
        let id = id.as_uuid();
        let rows = sqlx::query_as!(
            HistoryRow,
            r#"SELECT e164 AS "e164!", customer_id AS "customer_id!: Uuid", zoom_account_id AS "zoom_account_id!",
                      zoom_event_id AS "zoom_event_id!", event_ts AS "event_ts!: i64", received_at AS "received_at!: OffsetDateTime",
                      address_line1 AS "address_line1?", address_line2 AS "address_line2?", city AS "city?", zip AS "zip?",
                      state_code AS "state_code?", country AS "country?", cnam AS "cnam?"
               FROM number_zoom_events WHERE number_id = $1 ORDER BY event_ts DESC, id DESC"#,
            id
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(HistoryRow::into_record).collect())
    }

    /// How many numbers the carrier flags (see [`push_missing_address_filter`]).
    pub async fn count_missing_emergency_address(&self, prefixes: &[String]) -> Result<i64> {
        let mut q = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM numbers WHERE 1 = 1");
        push_missing_address_filter(&mut q, prefixes);
        let n: i64 = q.build_query_scalar().fetch_one(self.reader()).await?;
        Ok(n)
    }
}
