//! Signed webhooks' tables: the outbox of events (written by the transactions that make the
//! changes, through [`emit`]), the endpoints operators manage, and the deliveries dispatchers lease.
//!
//! Dispatchers first fan new events out to the endpoints that want them (one delivery row per event
//! and endpoint, idempotent), then lease due deliveries like jobs: a compare-and-set to `running`
//! with a lease that runs out, so a dispatcher killed mid-delivery leaves its deliveries to another,
//! and two never hold one at once. A delivery is due only when no earlier delivery of the same
//! endpoint and ordering key is still pending or running: events of one number arrive in order.

use super::{Db, DialectStore, Result, INSERT_CHUNK, SUBSTRING_POSITION};
use crate::DELIVERY_CLAIM_LOCK;
use domain::webhook::{
    AttemptOutcome, Delivery, DeliveryState, Endpoint, EventType, Finished, LeasedDelivery,
    OutboundEvent,
};
use domain::{Number, NumberEvent};
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// Writes events to the outbox inside the caller's transaction: the one place every change that
/// tells the carrier's systems something goes through.
pub(crate) async fn emit(tx: &mut Transaction<'_, Db>, events: &[OutboundEvent]) -> Result<()> {
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::<Db>::new(
            "INSERT INTO outbound_events (id, event_type, ordering_key, at, data) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(e.id)
                .push_bind(e.event_type.as_str())
                .push_bind(e.ordering_key.clone())
                .push_bind(e.at)
                .push_bind(e.data.to_string());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// `number.state_changed` for number events just written (`moves::insert_events`), with the
/// number's E.164 and customer as they are after the change.
pub(crate) async fn emit_state_changes(
    tx: &mut Transaction<'_, Db>,
    changes: &[(&Number, &NumberEvent)],
) -> Result<()> {
    let out: Vec<OutboundEvent> = changes
        .iter()
        .map(|(n, e)| {
            let e164 = n.e164.as_str();
            OutboundEvent::new(
                EventType::NumberStateChanged,
                e164.to_owned(),
                e.at,
                serde_json::json!({
                    "number_id": e.number_id.as_uuid(),
                    "e164": e164,
                    "from": e.from.map(|s| s.as_str()),
                    "to": e.to.as_str(),
                    "reason": e.reason,
                    "customer_id": n.customer_id.map(|c| c.as_uuid()),
                    "actor": e.actor,
                }),
            )
        })
        .collect();
    emit(tx, &out).await
}

type EndpointRow = (
    Uuid,
    String,
    String,
    String,
    bool,
    Option<String>,
    i64,
    Option<OffsetDateTime>,
    OffsetDateTime,
    OffsetDateTime,
);

const ENDPOINT_COLUMNS: &str = "SELECT id, url, description, event_types, enabled, disabled_reason, failures, previous_until, created_at, updated_at FROM webhook_endpoints";

fn endpoint(r: EndpointRow) -> Endpoint {
    Endpoint {
        id: r.0,
        url: r.1,
        description: r.2,
        event_types: Endpoint::decode_types(&r.3),
        enabled: r.4,
        disabled_reason: r.5,
        failures: r.6,
        previous_secret_until: r.7,
        created_at: r.8,
        updated_at: r.9,
    }
}

type DeliveryRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    i64,
    OffsetDateTime,
    Option<i64>,
    Option<String>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    OffsetDateTime,
);

impl DialectStore {
    /// Adds an endpoint; it hears the events written from now on.
    pub async fn insert_webhook_endpoint(&self, e: &Endpoint, sealed_secret: &str) -> Result<()> {
        sqlx::query::<Db>(
            "INSERT INTO webhook_endpoints (id, url, description, event_types, enabled, disabled_reason, secret, failures, from_seq, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, (SELECT COALESCE(MAX(seq), 0) FROM outbound_events), $8, $9)",
        )
        .bind(e.id)
        .bind(&e.url)
        .bind(&e.description)
        .bind(Endpoint::encode_types(&e.event_types))
        .bind(e.enabled)
        .bind(&e.disabled_reason)
        .bind(sealed_secret)
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn webhook_endpoints(&self) -> Result<Vec<Endpoint>> {
        let rows: Vec<EndpointRow> =
            sqlx::query_as(&format!("{ENDPOINT_COLUMNS} ORDER BY created_at, id"))
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(endpoint).collect())
    }

    pub async fn webhook_endpoint(&self, id: Uuid) -> Result<Option<Endpoint>> {
        let row: Option<EndpointRow> = sqlx::query_as(&format!("{ENDPOINT_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(endpoint))
    }

    /// Saves what an operator may change (URL, description, types, enabled). Enabling starts the
    /// failure count afresh. False when there is no such endpoint.
    pub async fn update_webhook_endpoint(&self, e: &Endpoint) -> Result<bool> {
        let done = sqlx::query::<Db>(
            "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4, disabled_reason = $5, \
             failures = CASE WHEN $4 AND NOT enabled THEN 0 ELSE failures END, \
             failing_since = CASE WHEN $4 AND NOT enabled THEN NULL ELSE failing_since END, updated_at = $6 WHERE id = $7",
        )
        .bind(&e.url)
        .bind(&e.description)
        .bind(Endpoint::encode_types(&e.event_types))
        .bind(e.enabled)
        .bind(&e.disabled_reason)
        .bind(e.updated_at)
        .bind(e.id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the secret; the one it replaces keeps signing until `previous_until`.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        sealed_secret: &str,
        previous_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query::<Db>(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $1, secret = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(previous_until)
        .bind(sealed_secret)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes an endpoint and its deliveries.
    pub async fn delete_webhook_endpoint(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        sqlx::query::<Db>("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query::<Db>("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fans up to `limit` events not yet fanned out to the enabled endpoints that want them.
    /// Idempotent: two dispatchers fanning the same events make one delivery each. Returns how many
    /// events were fanned.
    pub async fn fan_out_events(&self, limit: i64, now: OffsetDateTime) -> Result<usize> {
        let mut tx = self.writer().begin().await?;
        let seqs: Vec<i64> = sqlx::query_scalar::<Db, i64>(
            "SELECT seq FROM outbound_events WHERE NOT fanned ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let mut q = QueryBuilder::<Db>::new(
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, ordering_key, state, attempts, run_after, created_at) \
             SELECT w.id, e.seq, e.ordering_key, 'pending', 0, ",
        );
        q.push_bind(now).push(", ").push_bind(now).push(format!(
            " FROM outbound_events e JOIN webhook_endpoints w ON w.enabled AND e.seq > w.from_seq \
               AND (w.event_types = '' OR {SUBSTRING_POSITION}(w.event_types, ' ' || e.event_type || ' ') > 0) \
             WHERE e.seq IN ("
        ));
        let mut sep = q.separated(", ");
        for s in &seqs {
            sep.push_bind(*s);
        }
        q.push(") ORDER BY e.seq, w.id ON CONFLICT (endpoint_id, event_seq) DO NOTHING");
        q.build().execute(&mut *tx).await?;
        let mut q =
            QueryBuilder::<Db>::new("UPDATE outbound_events SET fanned = TRUE WHERE seq IN (");
        let mut sep = q.separated(", ");
        for s in &seqs {
            sep.push_bind(*s);
        }
        q.push(")");
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(seqs.len())
    }

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`: pending ones whose time
    /// has come, and running ones whose dispatcher's lease ran out, of enabled endpoints, each the
    /// earliest unfinished one of its endpoint and ordering key.
    pub async fn lease_deliveries(
        &self,
        owner: &str,
        lease_until: OffsetDateTime,
        limit: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<LeasedDelivery>> {
        let mut tx = self.writer().begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar::<Db, i64>(&format!(
            "UPDATE webhook_deliveries SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, last_attempt_at = $3 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                          WHERE w.enabled AND ((d.state = 'pending' AND d.run_after <= $3) OR (d.state = 'running' AND d.lease_until <= $3)) \
                            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key \
                                            AND p.event_seq < d.event_seq AND p.state IN ('pending', 'running')) \
                          ORDER BY d.run_after, d.id LIMIT $4 {DELIVERY_CLAIM_LOCK}) \
               AND (state = 'pending' OR (state = 'running' AND lease_until <= $3)) \
             RETURNING id"
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Db>::new(
            "SELECT d.id, d.endpoint_id, w.url, w.secret, w.previous_secret, w.previous_until, e.id, e.event_type, e.at, e.data, d.attempts \
             FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN outbound_events e ON e.seq = d.event_seq WHERE d.id IN (",
        );
        let mut sep = q.separated(", ");
        for id in &ids {
            sep.push_bind(*id);
        }
        q.push(") ORDER BY d.id");
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            i64,
            Uuid,
            String,
            String,
            Option<String>,
            Option<OffsetDateTime>,
            Uuid,
            String,
            OffsetDateTime,
            String,
            i64,
        )> = q.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut secrets = vec![r.3];
                if let (Some(prev), Some(until)) = (r.4, r.5) {
                    if until > now {
                        secrets.push(prev);
                    }
                }
                LeasedDelivery {
                    id: r.0,
                    endpoint_id: r.1,
                    url: r.2,
                    secrets,
                    event_id: r.6,
                    event_type: r.7,
                    at: r.8,
                    data: r.9,
                    attempts: r.10,
                }
            })
            .collect())
    }

    /// Records how attempts ended, in one transaction, for those whose lease `owner` still holds
    /// (the answer says, per attempt, whether it did). A failure is retried at its `retry_at`, or
    /// given up when that is `None`; an endpoint is disabled once it has failed `disable_after`
    /// times in a row over at least `disable_span`. Endpoints are written in id order, so two
    /// dispatchers finishing at once never wait on each other in a cycle.
    pub async fn finish_deliveries(
        &self,
        attempts: &[(LeasedDelivery, AttemptOutcome, Option<OffsetDateTime>)],
        owner: &str,
        disable_after: i64,
        disable_span: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<Finished>> {
        let mut order: Vec<usize> = (0..attempts.len()).collect();
        order.sort_by_key(|&i| (attempts[i].0.endpoint_id, attempts[i].0.id));
        let mut out = vec![Finished::default(); attempts.len()];
        let mut tx = self.writer().begin().await?;
        for i in order {
            let (d, outcome, retry_at) = &attempts[i];
            out[i] =
                finish_one(&mut tx, d, owner, outcome, *retry_at, disable_after, disable_span, now)
                    .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Hands back the deliveries `owner` holds (a clean stop): pending again at once, the attempt
    /// not counted.
    pub async fn hand_back_deliveries(&self, owner: &str, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query::<Db>(
            "UPDATE webhook_deliveries SET state = 'pending', run_after = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             lease_owner = NULL, lease_until = NULL WHERE lease_owner = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(owner)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// An endpoint's deliveries, newest event first.
    pub async fn webhook_deliveries(
        &self,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT d.endpoint_id, e.id, e.event_type, d.ordering_key, d.state, d.attempts, d.run_after, d.last_status, d.last_error, \
             d.last_attempt_at, d.delivered_at, d.created_at FROM webhook_deliveries d JOIN outbound_events e ON e.seq = d.event_seq WHERE d.endpoint_id = ",
        );
        q.push_bind(endpoint);
        if let Some(s) = state {
            q.push(" AND d.state = ").push_bind(s.as_str());
        }
        q.push(" ORDER BY d.event_seq DESC LIMIT ").push_bind(limit);
        let rows: Vec<DeliveryRow> = q.build_query_as().fetch_all(self.reader()).await?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                endpoint_id: r.0,
                event_id: r.1,
                event_type: r.2,
                ordering_key: r.3,
                state: DeliveryState::parse(&r.4).unwrap_or(DeliveryState::Pending),
                attempts: r.5,
                next_attempt_at: r.6,
                last_status: r.7,
                last_error: r.8,
                last_attempt_at: r.9,
                delivered_at: r.10,
                created_at: r.11,
            })
            .collect())
    }

    /// Sends an event to an endpoint again (a finished delivery starts over; one the endpoint never
    /// had is made). False when there is no such event or endpoint.
    pub async fn replay_delivery(
        &self,
        endpoint: Uuid,
        event: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let reset = sqlx::query::<Db>(
            "UPDATE webhook_deliveries SET state = 'pending', run_after = $1, attempts = 0, lease_owner = NULL, lease_until = NULL \
             WHERE endpoint_id = $2 AND event_seq = (SELECT seq FROM outbound_events WHERE id = $3) AND state IN ('delivered', 'failed')",
        )
        .bind(now)
        .bind(endpoint)
        .bind(event)
        .execute(&mut *tx)
        .await?;
        let found = if reset.rows_affected() == 1 {
            true
        } else {
            sqlx::query::<Db>(
                "INSERT INTO webhook_deliveries (endpoint_id, event_seq, ordering_key, state, attempts, run_after, created_at) \
                 SELECT w.id, e.seq, e.ordering_key, 'pending', 0, $1, $1 FROM outbound_events e JOIN webhook_endpoints w ON w.id = $2 WHERE e.id = $3 \
                 ON CONFLICT (endpoint_id, event_seq) DO NOTHING",
            )
            .bind(now)
            .bind(endpoint)
            .bind(event)
            .execute(&mut *tx)
            .await?;
            sqlx::query_scalar::<Db, i64>(
                "SELECT COUNT(*) FROM webhook_deliveries d JOIN outbound_events e ON e.seq = d.event_seq WHERE d.endpoint_id = $1 AND e.id = $2",
            )
            .bind(endpoint)
            .bind(event)
            .fetch_one(&mut *tx)
            .await?
                == 1
        };
        tx.commit().await?;
        Ok(found)
    }

    /// The latest events written, newest first (operators' view and tests).
    pub async fn outbound_events(&self, limit: i64) -> Result<Vec<OutboundEvent>> {
        let rows: Vec<(Uuid, String, String, OffsetDateTime, String)> = sqlx::query_as(
            "SELECT id, event_type, ordering_key, at, data FROM outbound_events ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, t, key, at, data)| {
                Some(OutboundEvent {
                    id,
                    event_type: EventType::parse(&t)?,
                    ordering_key: key,
                    at,
                    data: serde_json::from_str(&data).ok()?,
                })
            })
            .collect())
    }

    /// Removes up to `limit` events written before `before` whose deliveries have all ended
    /// (delivered or given up), with those deliveries; returns how many events. An event with a
    /// delivery still waiting (an endpoint disabled for a while) is kept until it ends.
    pub async fn prune_webhook_history(&self, before: OffsetDateTime, limit: i64) -> Result<u64> {
        let mut tx = self.writer().begin().await?;
        let seqs: Vec<i64> = sqlx::query_scalar::<Db, i64>(
            "SELECT e.seq FROM outbound_events e WHERE e.fanned AND e.at < $1 \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = e.seq \
                                AND d.state IN ('pending', 'running')) \
             ORDER BY e.seq LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if seqs.is_empty() {
            return Ok(0);
        }
        // A delivery replayed meanwhile is waiting again: it and its event stay.
        let mut removed = 0;
        for (sql, end) in [
            (
                "DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed') AND event_seq IN (",
                ")",
            ),
            (
                "DELETE FROM outbound_events WHERE seq IN (",
                ") AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = outbound_events.seq)",
            ),
        ] {
            let mut q = QueryBuilder::<Db>::new(sql);
            let mut sep = q.separated(", ");
            for s in &seqs {
                sep.push_bind(*s);
            }
            q.push(end);
            removed = q.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Deliveries waiting (pending or running) and endpoints disabled, for the metrics.
    pub async fn webhook_backlog(&self) -> Result<(i64, i64)> {
        let waiting: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE state IN ('pending', 'running')",
        )
        .fetch_one(self.reader())
        .await?;
        let disabled: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE NOT enabled",
        )
        .fetch_one(self.reader())
        .await?;
        Ok((waiting, disabled))
    }
}

/// Records one attempt (see `finish_deliveries`).
#[allow(clippy::too_many_arguments)]
async fn finish_one(
    tx: &mut Transaction<'_, Db>,
    d: &LeasedDelivery,
    owner: &str,
    outcome: &AttemptOutcome,
    retry_at: Option<OffsetDateTime>,
    disable_after: i64,
    disable_span: time::Duration,
    now: OffsetDateTime,
) -> Result<Finished> {
    let (state, status, error) = match outcome {
        AttemptOutcome::Delivered { status } => ("delivered", Some(i64::from(*status)), None),
        AttemptOutcome::Failed { status, error } => (
            if retry_at.is_some() { "pending" } else { "failed" },
            status.map(i64::from),
            Some(error.as_str()),
        ),
    };
    let delivered = matches!(outcome, AttemptOutcome::Delivered { .. });
    let done = sqlx::query::<Db>(
        "UPDATE webhook_deliveries SET state = $1, run_after = $2, lease_owner = NULL, lease_until = NULL, last_status = $3, last_error = $4, \
         delivered_at = CASE WHEN $5 THEN $6 ELSE delivered_at END WHERE id = $7 AND lease_owner = $8 AND state = 'running'",
    )
    .bind(state)
    .bind(retry_at.unwrap_or(now))
    .bind(status)
    .bind(error)
    .bind(delivered)
    .bind(now)
    .bind(d.id)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(Finished::default());
    }
    let mut disabled = false;
    if delivered {
        sqlx::query::<Db>(
            "UPDATE webhook_endpoints SET failures = 0, failing_since = NULL WHERE id = $1 AND failures <> 0",
        )
        .bind(d.endpoint_id)
        .execute(&mut **tx)
        .await?;
    } else {
        sqlx::query::<Db>(
            "UPDATE webhook_endpoints SET failures = failures + 1, failing_since = COALESCE(failing_since, $1) WHERE id = $2",
        )
        .bind(now)
        .bind(d.endpoint_id)
        .execute(&mut **tx)
        .await?;
        let off = sqlx::query::<Db>(
            "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
             WHERE id = $3 AND enabled AND failures >= $4 AND failing_since <= $5",
        )
        .bind(format!(
            "disabled by peerex after {disable_after} failed attempts in a row; last: {}",
            error.unwrap_or_default()
        ))
        .bind(now)
        .bind(d.endpoint_id)
        .bind(disable_after)
        .bind(now - disable_span)
        .execute(&mut **tx)
        .await?;
        disabled = off.rows_affected() == 1;
    }
    Ok(Finished { held: true, disabled })
}
