//! Reconciliation: the findings each cycle records, the routing instances' positions, and the lease
//! that keeps two instances from running the same scope's cycle at once.
//!
//! Every write is a compare-and-set: a finding is opened only where no open one of its kind and
//! subject exists (the `findings_open` unique index, met with an upsert), closed only while still
//! open and not seen by the cycle closing it; a lease is taken only once free.

use super::jobs::insert_job;
use super::rows::bad;
use super::webhooks::emit;
use super::{Db, DialectStore, Result, INSERT_CHUNK};
use domain::findings::{Finding, FindingQuery, Recorded, RepairState, Seen, NO_LONGER_SEEN};
use domain::onboarding::Job;
use domain::reconcile::{FindingKind, InstanceSeen};
use domain::webhook::{EventType, OutboundEvent};
use domain::{CustomerId, NumberState};
use sqlx::{FromRow, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(FromRow)]
struct FindingRow {
    id: Uuid,
    kind: String,
    subject: String,
    customer_id: Option<Uuid>,
    zoom_account: Option<String>,
    detail: String,
    repair_state: String,
    repaired_by: Option<String>,
    first_seen: OffsetDateTime,
    last_seen: OffsetDateTime,
    resolved_at: Option<OffsetDateTime>,
    resolved_by: Option<String>,
}

impl FindingRow {
    const SELECT: &'static str = "SELECT id, kind, subject, customer_id, zoom_account, detail, repair_state, repaired_by, first_seen, last_seen, resolved_at, resolved_by FROM findings";

    fn into_finding(self) -> Result<Finding> {
        let kind = FindingKind::parse(&self.kind).ok_or_else(|| bad("finding kind", &self.kind))?;
        Ok(Finding {
            id: self.id,
            kind,
            subject: self.subject,
            customer: self.customer_id.map(CustomerId::from_uuid),
            zoom_account: self.zoom_account,
            detail: self.detail,
            repair: kind.repair(),
            repair_state: RepairState::parse(&self.repair_state)
                .ok_or_else(|| bad("repair state", &self.repair_state))?,
            repaired_by: self.repaired_by,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
        })
    }
}

/// One number as the reconciler compares it: its state and customer, the customer's trunk and live
/// Zoom account, and whether a push or release job of the customer is still waiting or running.
#[derive(FromRow)]
pub(crate) struct HeldRow {
    pub(crate) e164: String,
    pub(crate) state: String,
    pub(crate) customer_id: Option<Uuid>,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) zoom_trunk: Option<String>,
    pub(crate) zoom_account: Option<String>,
    pub(crate) job_open: bool,
}

impl HeldRow {
    pub(crate) const SELECT: &'static str = "SELECT n.e164, n.state, n.customer_id, n.updated_at, c.zoom_trunk, l.zoom_account_id AS zoom_account, EXISTS (SELECT 1 FROM jobs j WHERE j.customer_id = n.customer_id AND j.state IN ('pending', 'running') AND j.kind <> 'poll_numbers') AS job_open FROM numbers n LEFT JOIN customers c ON c.id = n.customer_id LEFT JOIN zoom_links l ON l.customer_id = n.customer_id AND l.state = 'linked'";

    /// [`HeldRow::SELECT`] for one customer's numbers, in one statement: the customer's facts (its
    /// trunk, its live link's account, whether a job is open) read once, not joined and looked up
    /// again for every number (which was most of the read for a customer with many numbers). `p` is
    /// the dialect's placeholder for the customer's id.
    pub(crate) fn by_customer(p: &str) -> String {
        format!(
            "WITH c AS MATERIALIZED (SELECT (SELECT zoom_trunk FROM customers WHERE id = {p}) AS zoom_trunk, (SELECT zoom_account_id FROM zoom_links WHERE customer_id = {p} AND state = 'linked') AS zoom_account, EXISTS (SELECT 1 FROM jobs j WHERE j.customer_id = {p} AND j.state IN ('pending', 'running') AND j.kind <> 'poll_numbers') AS job_open) SELECT n.e164, n.state, n.customer_id, n.updated_at, c.zoom_trunk, c.zoom_account, c.job_open FROM c CROSS JOIN numbers n WHERE n.customer_id = {p}"
        )
    }

    pub(crate) fn into_held(self) -> Result<domain::reconcile::Held> {
        Ok(domain::reconcile::Held {
            state: NumberState::parse(&self.state)
                .ok_or_else(|| bad("number state", &self.state))?,
            e164: domain::PhoneNumber::from_trusted(self.e164),
            customer: self.customer_id.map(CustomerId::from_uuid),
            account: self.zoom_account,
            trunk: self.zoom_trunk,
            since: self.updated_at,
            job_open: self.job_open,
        })
    }
}

impl DialectStore {
    /// Records what one cycle of `scope` observed, in one transaction: findings not open yet are
    /// opened, open ones seen again have their last sighting and detail brought up to date, and the
    /// scope's open findings this cycle did not observe are closed as no longer seen.
    pub async fn record_findings(
        &self,
        scope: &str,
        zoom_account: Option<&str>,
        seen: &[Seen],
        spared: &[Uuid],
        cycle: Uuid,
        now: OffsetDateTime,
    ) -> Result<Recorded> {
        // One order for every writer: two cycles upserting the same findings never wait on each
        // other in a cycle.
        let mut seen: Vec<&Seen> = seen.iter().collect();
        seen.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
        seen.dedup_by(|a, b| a.kind == b.kind && a.subject == b.subject);
        let mut out = Recorded::default();
        let mut tx = self.writer().begin().await?;
        let mut opened = Vec::new();
        for s in seen {
            let id = Uuid::now_v7();
            let (kind, repair) = (s.kind.as_str(), s.kind.repair());
            let (repair_s, state) = (repair.as_str(), RepairState::initial(repair).as_str());
            let customer = s.customer.map(|c| c.as_uuid());
            let kept = sqlx::query_scalar!(
                r#"INSERT INTO findings (id, kind, subject, scope, customer_id, zoom_account, detail, repair, repair_state, first_seen, last_seen, seen_in)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE SET
                       last_seen = excluded.last_seen, seen_in = excluded.seen_in, detail = excluded.detail,
                       scope = excluded.scope, customer_id = excluded.customer_id,
                       zoom_account = excluded.zoom_account, version = findings.version + 1
                   RETURNING id AS "id!: Uuid""#,
                id,
                kind,
                s.subject,
                scope,
                customer,
                zoom_account,
                s.detail,
                repair_s,
                state,
                now,
                now,
                cycle
            )
            .fetch_one(&mut *tx)
            .await?;
            if kept == id {
                out.opened += 1;
                let data = serde_json::json!({ "finding_id": id, "kind": kind, "subject": s.subject, "scope": scope, "customer_id": customer, "detail": s.detail, "repair": repair_s });
                opened.push(OutboundEvent::new(
                    EventType::FindingOpened,
                    s.subject.clone(),
                    now,
                    data,
                ));
            } else {
                out.still_open += 1;
            }
        }
        // One whose repair was queued is gone because of it: it says who repaired it.
        // id, kind, subject, customer, who closed it.
        type Closed = (Uuid, String, String, Option<Uuid>, Option<String>);
        // Findings of the `spared` customers' numbers were not judged this cycle: they stay as they are.
        let mut close = QueryBuilder::<Db>::new("UPDATE findings SET resolved_at = ");
        close
            .push_bind(now)
            .push(", resolved_by = CASE WHEN repair_state = 'queued' THEN 'repaired by ' || repaired_by ELSE ")
            .push_bind(NO_LONGER_SEEN)
            .push(" END, repair_state = CASE WHEN repair_state = 'queued' THEN 'repaired' ELSE repair_state END, version = version + 1 WHERE scope = ")
            .push_bind(scope)
            .push(" AND resolved_at IS NULL AND seen_in <> ")
            .push_bind(cycle);
        if !spared.is_empty() {
            close.push(" AND (customer_id IS NULL OR customer_id NOT IN (");
            let mut sep = close.separated(", ");
            for c in spared {
                sep.push_bind(*c);
            }
            close.push("))");
        }
        close.push(" RETURNING id, kind, subject, customer_id, resolved_by");
        let closed: Vec<Closed> = close.build_query_as().fetch_all(&mut *tx).await?;
        out.closed = closed.len() as u64;
        // Opened and closed findings are told to the carrier's systems.
        for (id, kind, subject, customer, by) in closed {
            let data = serde_json::json!({ "finding_id": id, "kind": kind, "subject": subject, "scope": scope, "customer_id": customer, "by": by });
            opened.push(OutboundEvent::new(EventType::FindingClosed, subject, now, data));
        }
        emit(&mut tx, &opened).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn list_findings(&self, q: &FindingQuery) -> Result<Vec<Finding>> {
        let mut b = QueryBuilder::<Db>::new(FindingRow::SELECT);
        b.push(" WHERE 1 = 1");
        if let Some(k) = q.kind {
            b.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(c) = q.customer {
            b.push(" AND customer_id = ").push_bind(c.as_uuid());
        }
        match q.open {
            Some(true) => {
                b.push(" AND resolved_at IS NULL");
            }
            Some(false) => {
                b.push(" AND resolved_at IS NOT NULL");
            }
            None => {}
        }
        let limit = if q.limit == 0 { 500 } else { i64::from(q.limit) };
        b.push(" ORDER BY last_seen DESC, kind, subject LIMIT ").push_bind(limit);
        let rows: Vec<FindingRow> = b.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(FindingRow::into_finding).collect()
    }

    /// How many findings of each kind are open (kinds with none are left out).
    pub async fn open_finding_counts(&self) -> Result<Vec<(FindingKind, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT kind, COUNT(*) AS "n!: i64" FROM findings WHERE resolved_at IS NULL GROUP BY kind"#
        )
        .fetch_all(self.reader())
        .await?;
        rows.into_iter()
            .map(|r| {
                FindingKind::parse(&r.kind)
                    .map(|k| (k, r.n))
                    .ok_or_else(|| bad("finding kind", &r.kind))
            })
            .collect()
    }

    /// Queues repairs: the `findings` (each still open with its repair proposed, or waiting for a
    /// person who has now confirmed it) are marked queued by `by`, and the `jobs` that carry the
    /// repairs are written, in one transaction. False, with nothing written, if any of them is no
    /// longer open and unqueued (queued by someone else first, or closed meanwhile): a repair is
    /// never queued twice.
    pub async fn queue_repairs(&self, findings: &[Uuid], jobs: &[Job], by: &str) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        for id in findings {
            let done = sqlx::query!(
                "UPDATE findings SET repair_state = 'queued', repaired_by = $1, version = version + 1 WHERE id = $2 AND repair_state IN ('proposed', 'manual') AND resolved_at IS NULL",
                by,
                id
            )
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
        }
        for job in jobs {
            insert_job(&mut tx, job).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Closes the queued repairs of `account`'s findings on `subjects` as repaired, when Zoom has
    /// confirmed the fix (the check after a repair job, before the next cycle's full comparison).
    /// Returns how many closed.
    pub async fn close_repaired_findings(
        &self,
        account: &str,
        subjects: &[String],
        now: OffsetDateTime,
    ) -> Result<u64> {
        type Closed = (Uuid, String, String, Option<Uuid>, Option<String>, String);
        let mut closed: Vec<Closed> = Vec::new();
        let mut tx = self.writer().begin().await?;
        for chunk in subjects.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("UPDATE findings SET resolved_at = ");
            q.push_bind(now)
                .push(", resolved_by = 'repaired by ' || repaired_by || ', confirmed by Zoom', repair_state = 'repaired', version = version + 1 WHERE resolved_at IS NULL AND repair_state = 'queued' AND zoom_account = ")
                .push_bind(account.to_owned())
                .push(" AND subject IN (");
            let mut sep = q.separated(", ");
            for s in chunk {
                sep.push_bind(s.clone());
            }
            q.push(") RETURNING id, kind, subject, customer_id, resolved_by, scope");
            closed.extend(q.build_query_as::<Closed>().fetch_all(&mut *tx).await?);
        }
        // Told to the carrier's systems like a finding a cycle closes.
        let events: Vec<OutboundEvent> = closed
            .iter()
            .map(|(id, kind, subject, customer, by, scope)| {
                let data = serde_json::json!({ "finding_id": id, "kind": kind, "subject": subject, "scope": scope, "customer_id": customer, "by": by });
                OutboundEvent::new(EventType::FindingClosed, subject.clone(), now, data)
            })
            .collect();
        emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(closed.len() as u64)
    }

    /// Every live link: (customer, Zoom account), by account.
    pub async fn live_links(&self) -> Result<Vec<(Uuid, String)>> {
        let rows = sqlx::query!(
            r#"SELECT customer_id AS "customer_id!: Uuid", zoom_account_id FROM zoom_links WHERE state = 'linked' ORDER BY zoom_account_id"#
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| (r.customer_id, r.zoom_account_id)).collect())
    }

    /// peerex's numbers among `e164s`, whoever holds them.
    pub async fn held_among(&self, e164s: &[String]) -> Result<Vec<domain::reconcile::Held>> {
        let mut rows: Vec<HeldRow> = Vec::new();
        for chunk in e164s.chunks(INSERT_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(HeldRow::SELECT);
            b.push(" WHERE n.e164 IN (");
            let mut sep = b.separated(", ");
            for e in chunk {
                sep.push_bind(e.clone());
            }
            b.push(")");
            rows.extend(b.build_query_as::<HeldRow>().fetch_all(self.reader()).await?);
        }
        rows.into_iter().map(HeldRow::into_held).collect()
    }

    /// Every live link with its Zoom account's number when known: (customer, account id, number).
    pub async fn live_link_numbers(&self) -> Result<Vec<(Uuid, String, Option<String>)>> {
        sqlx::query_as(
            "SELECT customer_id, zoom_account_id, zoom_account_number FROM zoom_links WHERE state = 'linked' ORDER BY zoom_account_id",
        )
        .fetch_all(self.reader())
        .await
    }

    /// Remembers the live link of `account`'s Zoom account number.
    pub async fn set_link_account_number(&self, account: &str, number: &str) -> Result<()> {
        sqlx::query(
            "UPDATE zoom_links SET zoom_account_number = $1 WHERE zoom_account_id = $2 AND state = 'linked'",
        )
        .bind(number)
        .bind(account)
        .execute(self.writer())
        .await
        .map(|_| ())
    }

    /// Every number sold to a customer, with the customer: (e164, customer).
    pub async fn number_holders(&self) -> Result<Vec<(String, Uuid)>> {
        sqlx::query_as("SELECT e164, customer_id FROM numbers WHERE customer_id IS NOT NULL")
            .fetch_all(self.reader())
            .await
    }

    /// A routing follower's position: the generation it has applied, as of `now`. A report older than
    /// the one stored is ignored.
    pub async fn report_routing_instance(
        &self,
        instance: &str,
        generation: i64,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO routing_instances (instance, generation, reported_at) VALUES ($1, $2, $3) ON CONFLICT (instance) DO UPDATE SET generation = excluded.generation, reported_at = excluded.reported_at WHERE routing_instances.reported_at <= excluded.reported_at",
            instance,
            generation,
            now
        )
        .execute(self.writer())
        .await
        .map(|_| ())
    }

    /// The routing instances that reported since `since`; those silent for longer are forgotten (an
    /// instance that stopped is not one that is behind).
    pub async fn routing_instances(&self, since: OffsetDateTime) -> Result<Vec<InstanceSeen>> {
        sqlx::query!("DELETE FROM routing_instances WHERE reported_at < $1", since)
            .execute(self.writer())
            .await?;
        let rows = sqlx::query!(
            r#"SELECT instance AS "instance!", generation AS "generation!: i64", reported_at AS "reported_at!: OffsetDateTime" FROM routing_instances ORDER BY instance"#
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| InstanceSeen {
                instance: r.instance,
                generation: r.generation,
                reported_at: r.reported_at,
            })
            .collect())
    }

    /// Keeps a sample of the database's routing generation, forgets those before `keep_since`, and
    /// answers the newest sample taken at or before `as_of`: the generation the database had by then.
    pub async fn sample_routing_generation(
        &self,
        generation: i64,
        now: OffsetDateTime,
        keep_since: OffsetDateTime,
        as_of: OffsetDateTime,
    ) -> Result<Option<(i64, OffsetDateTime)>> {
        let mut tx = self.writer().begin().await?;
        sqlx::query!(
            "INSERT INTO routing_generation_samples (sampled_at, generation) VALUES ($1, $2)",
            now,
            generation
        )
        .execute(&mut *tx)
        .await?;
        // The newest sample before `keep_since` stays: it may be the one `as_of` needs.
        sqlx::query!(
            "DELETE FROM routing_generation_samples WHERE sampled_at < $1 AND sampled_at < (SELECT MAX(sampled_at) FROM routing_generation_samples WHERE sampled_at <= $2)",
            keep_since,
            as_of
        )
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query!(
            r#"SELECT generation AS "generation!: i64", sampled_at AS "sampled_at!: OffsetDateTime" FROM routing_generation_samples WHERE sampled_at <= $1 ORDER BY sampled_at DESC LIMIT 1"#,
            as_of
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(|r| (r.generation, r.sampled_at)))
    }

    /// Takes the lease on `scope`'s reconciliation for `owner` until `until`, if nobody holds it and
    /// its last cycle completed at or before `due_before`. False otherwise: nothing changed.
    pub async fn take_reconcile_lease(
        &self,
        scope: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        due_before: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "INSERT INTO reconcile_leases (scope, owner, lease_until) VALUES ($1, $2, $3) ON CONFLICT (scope) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until WHERE (reconcile_leases.lease_until IS NULL OR reconcile_leases.lease_until <= $4) AND (reconcile_leases.completed_at IS NULL OR reconcile_leases.completed_at <= $5)",
            scope,
            owner,
            until,
            now,
            due_before
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves `owner`'s lease on `scope` on to `until`, compare-and-set on the owner: false when the
    /// lease is no longer `owner`'s (it ran out and another instance took it).
    pub async fn renew_reconcile_lease(
        &self,
        scope: &str,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE reconcile_leases SET lease_until = $1 WHERE scope = $2 AND owner = $3",
        )
        .bind(until)
        .bind(scope)
        .bind(owner)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes `scope`'s next scheduled cycle due at once (a scope never run is due already), unless
    /// its last cycle completed after `unless_since`: events coming thick and fast bring at most
    /// one full listing forward per gap.
    pub async fn reconcile_soon(&self, scope: &str, unless_since: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "UPDATE reconcile_leases SET completed_at = NULL WHERE scope = $1 AND completed_at < $2",
        )
        .bind(scope)
        .bind(unless_since)
        .execute(self.writer())
        .await
        .map(|_| ())
    }

    /// Gives the lease back; `completed` records the cycle as complete (the schedule counts from it).
    pub async fn release_reconcile_lease(
        &self,
        scope: &str,
        owner: &str,
        completed: Option<OffsetDateTime>,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE reconcile_leases SET owner = NULL, lease_until = NULL, completed_at = COALESCE($1, completed_at) WHERE scope = $2 AND owner = $3",
            completed,
            scope,
            owner
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
