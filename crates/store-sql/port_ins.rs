//! Port-ins: recording one (its numbers enter the inventory or leave `available` for `porting`, and
//! the jobs that push them to Zoom inactive are queued in the same transaction: the outbox), moving
//! it (complete, cancel, reschedule: each a compare-and-set on the state it was read in, so of two
//! racing requests one wins and the other learns the port-in moved), and recording Zoom's answers to
//! its jobs.
//!
//! A port-in's numbers change state only through [`save_moves`] (their audit trail); the port-in's
//! own history is kept in `port_in_events`. Each line (`port_in_numbers.in_zoom`) remembers what Zoom
//! holds of its number, so a port-in of several jobs moves on once every number got there.

use super::jobs::insert_job;
use super::rows::NumberRow;
use super::{save_moves, step, Db, DialectStore, Result, INSERT_CHUNK};
use domain::job::JobPayload;
use domain::machine::StateMachine;
use domain::onboarding::{Job, JobEnd, JobKind, ZOOM_BATCH};
use domain::port_in::{
    port_in_refusal, PortIn, PortInEvent, PortInHistory, PortInJob, PortInMove, PortInNumber,
    PortInOutcome, PortInRefused, PortInRequest, PortInState, PortInStep,
};
use domain::webhook::{EventType, OutboundEvent};
use domain::{Actor, CustomerId, Number, NumberEvent, NumberState, PhoneNumber, ZoomAccountId};
use sqlx::{QueryBuilder, Transaction};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Problems listed in a refusal before "and N more".
const PROBLEMS_SHOWN: usize = 20;

struct PortInRow {
    id: Uuid,
    customer_id: Uuid,
    losing_carrier: String,
    requested_date: Date,
    state: String,
    created_by: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn port_in_state(s: &str) -> Result<PortInState> {
    PortInState::parse(s).ok_or_else(|| super::rows::bad("port-in state", s))
}

macro_rules! select_port_ins {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            PortInRow,
            "SELECT id AS \"id!: Uuid\", customer_id AS \"customer_id!: Uuid\", losing_carrier AS \"losing_carrier!\", requested_date AS \"requested_date!: Date\", \
             state AS \"state!\", created_by AS \"created_by!\", created_at AS \"created_at!: OffsetDateTime\", updated_at AS \"updated_at!: OffsetDateTime\" FROM port_ins " + $rest $(, $arg)*
        )
    };
}

async fn live_account(
    tx: &mut Transaction<'_, Db>,
    customer: Uuid,
) -> Result<Option<ZoomAccountId>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT zoom_account_id AS "zoom_account_id!" FROM zoom_links WHERE customer_id = $1 AND state = 'linked'"#,
        customer
    )
    .fetch_optional(&mut **tx)
    .await?
    .map(ZoomAccountId::from_trusted))
}

async fn record(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    from: Option<PortInState>,
    to: PortInState,
    note: Option<&str>,
    by: &Actor,
    now: OffsetDateTime,
) -> Result<()> {
    let (from, to, actor) = (from.map(PortInState::as_str), to.as_str(), by.to_string());
    sqlx::query!(
        "INSERT INTO port_in_events (port_in_id, at, actor, from_state, to_state, note) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        now,
        actor,
        from,
        to,
        note
    )
    .execute(&mut **tx)
    .await?;
    // Each step is told to the carrier's systems, in order per port-in.
    let data = serde_json::json!({ "port_in_id": id, "from": from, "to": to, "note": note, "actor": actor });
    let event = OutboundEvent::new(EventType::PortInChanged, format!("port_in:{id}"), now, data);
    super::webhooks::emit(tx, &[event]).await
}

/// Moves the port-in by `event` from whichever state allows it, by compare-and-set: the state it
/// was in, or `None` when it is in none of them (moved by someone else first).
async fn move_port_in(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    event: PortInEvent,
    now: OffsetDateTime,
) -> Result<Option<(PortInState, PortInState)>> {
    for s in PortInState::steps(event) {
        let (to, from) = (s.to.as_str(), s.from.as_str());
        let done = sqlx::query!(
            "UPDATE port_ins SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
            to,
            now,
            id,
            from
        )
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Some((s.from, s.to)));
        }
    }
    Ok(None)
}

/// Queues the jobs that carry `step` for the port-in's numbers still needing it (one per batch Zoom
/// takes), and links them to the port-in. Nothing without a live link (the periodic scan queues them
/// once the customer links its Zoom account).
async fn queue_step(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    customer: Uuid,
    step: PortInStep,
    now: OffsetDateTime,
) -> Result<usize> {
    let Some(account) = live_account(tx, customer).await? else { return Ok(0) };
    let (want_state, want_zoom) = match step {
        PortInStep::PushInactive => ("porting", None::<&str>),
        PortInStep::Activate => ("porting", Some("inactive")),
        PortInStep::Remove => ("porting", Some("inactive")),
    };
    let rows = sqlx::query!(
        r#"SELECT l.e164 AS "e164!", l.in_zoom AS "in_zoom?" FROM port_in_numbers l JOIN numbers n ON n.id = l.number_id
           WHERE l.port_in_id = $1 AND n.state = $2 AND n.customer_id = $3 ORDER BY l.e164"#,
        id,
        want_state,
        customer
    )
    .fetch_all(&mut **tx)
    .await?;
    let numbers: Vec<PhoneNumber> = rows
        .into_iter()
        .filter(|r| match step {
            PortInStep::PushInactive => r.in_zoom.is_none(),
            // Activation and removal also take numbers whose push answer was lost: both converge.
            PortInStep::Activate | PortInStep::Remove => {
                r.in_zoom.as_deref() == want_zoom || r.in_zoom.is_none()
            }
        })
        .filter_map(|r| PhoneNumber::listed(&r.e164))
        .collect();
    let kind = match step {
        PortInStep::Remove => JobKind::ReleaseNumbers,
        PortInStep::PushInactive | PortInStep::Activate => JobKind::PushNumbers,
    };
    let step_name = step_name(step);
    let mut queued = 0;
    for batch in numbers.chunks(ZOOM_BATCH) {
        let mut payload = JobPayload::numbers(batch.to_vec());
        payload.port_in = Some(PortInJob { id, step });
        let job = Job::new(
            kind,
            payload,
            Some(CustomerId::from_uuid(customer)),
            None,
            Some(account.clone()),
            now,
        );
        insert_job(tx, &job).await?;
        sqlx::query!(
            "INSERT INTO port_in_jobs (port_in_id, job_id, step) VALUES ($1, $2, $3)",
            id,
            job.id,
            step_name
        )
        .execute(&mut **tx)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

fn step_name(step: PortInStep) -> &'static str {
    match step {
        PortInStep::PushInactive => "push_inactive",
        PortInStep::Activate => "activate",
        PortInStep::Remove => "remove",
    }
}

/// Whether a job of the port-in's `step` is pending, running or failed (an operator retries it).
async fn step_open(tx: &mut Transaction<'_, Db>, id: Uuid, step: &str) -> Result<bool> {
    let n = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM port_in_jobs pj JOIN jobs j ON j.id = pj.job_id WHERE pj.port_in_id = $1 AND pj.step = $2 AND j.state IN ('pending', 'running', 'failed')"#,
        id,
        step
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

/// Ends a job inside the caller's transaction, only if `owner` still holds it.
async fn end_held_job(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    owner: &str,
    end: &JobEnd,
    now: OffsetDateTime,
) -> Result<bool> {
    let moved = step(domain::onboarding::JobState::Running, end.event())?;
    let (to, from) = (moved.to.as_str(), moved.from.as_str());
    let (run_after, error) = match end {
        JobEnd::Done => (None, None),
        JobEnd::Retry { at, error } => (Some(*at), Some(error.as_str())),
        JobEnd::Failed { error } => (None, Some(error.as_str())),
    };
    let done = sqlx::query!(
        "UPDATE jobs SET state = $1, run_after = COALESCE($2, run_after), lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5 AND lease_owner = $6 AND state = $7",
        to,
        run_after,
        error,
        now,
        id,
        owner,
        from
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl DialectStore {
    /// Records a port-in: every number must be unknown to the inventory (it is added, `porting`) or
    /// `available` (it goes `porting`), all for the customer; the push jobs are queued when the
    /// customer's Zoom account is linked. All or nothing: every refusal named, nothing saved.
    pub async fn create_port_in(
        &self,
        req: &PortInRequest,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Uuid, PortInRefused>> {
        let mut tx = self.writer().begin().await?;
        let c = req.customer_id.as_uuid();
        // Read by writing the customer's row (it does not change), as an order does: concurrent
        // port-ins and orders for one customer take their turn on it, so each counts against the
        // number limit what the others took, and none passes a contract ending meanwhile.
        let Some(customer) = sqlx::query!(
            r#"UPDATE customers SET number_limit = number_limit WHERE id = $1 RETURNING contract_state AS "contract_state!", number_limit AS "number_limit?: i64""#,
            c
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(PortInRefused::UnknownCustomer));
        };
        if customer.contract_state != "active" {
            return Ok(Err(PortInRefused::invalid(
                "customer_id",
                "the customer's contract has ended; no new numbers",
            )));
        }
        // A ported number counts against the customer's number limit like an ordered one.
        let limit = customer.number_limit.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
        let held = super::customers::numbers_held(&mut *tx, c).await?;
        let wanted = u32::try_from(req.numbers.len()).unwrap_or(u32::MAX);
        if let Err(e) = domain::customer::check_number_limit(limit, held, wanted) {
            return Ok(Err(PortInRefused::Taken(vec![e.to_string()])));
        }
        let mut found = std::collections::HashMap::with_capacity(req.numbers.len());
        for chunk in req.numbers.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
            q.push(" WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(")");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            for r in rows {
                let n = r.into_number()?;
                found.insert(n.e164.clone(), n);
            }
        }
        let mut problems = Vec::new();
        let mut added: Vec<(Number, NumberEvent)> = Vec::new();
        let mut moves: Vec<(Number, NumberEvent)> = Vec::new();
        for e164 in &req.numbers {
            match found.remove(e164) {
                None => added.push(Number::ported_in(
                    e164.clone(),
                    req.customer_id,
                    &req.losing_carrier,
                    by,
                    now,
                )),
                Some(n) => match port_in_refusal(e164, n.state, n.customer_id, req.customer_id) {
                    Some(p) => problems.push(p),
                    None => match n.start_port_in(req.customer_id, &req.losing_carrier, by, now) {
                        Ok(m) => moves.push(m),
                        Err(e) => problems.push(e.to_string()),
                    },
                },
            }
        }
        if !problems.is_empty() {
            return Ok(Err(PortInRefused::Taken(shown(problems))));
        }
        let moved = save_moves(&mut tx, &moves).await?;
        if !moved.is_empty() {
            let changed = moves
                .iter()
                .filter(|(n, _)| moved.contains(&n.id))
                .map(|(n, _)| format!("{} changed meanwhile; try again", n.e164))
                .collect();
            return Ok(Err(PortInRefused::Taken(shown(changed))));
        }
        for (n, _) in &added {
            let (nid, e164, state) = (n.id.as_uuid(), n.e164.as_str(), n.state.as_str());
            sqlx::query!(
                "INSERT INTO numbers (id, e164, state, customer_id, tags, updated_at, version) VALUES ($1, $2, $3, $4, '', $5, 0)",
                nid,
                e164,
                state,
                c,
                now
            )
            .execute(&mut *tx)
            .await?;
        }
        for chunk in added.chunks(INSERT_CHUNK) {
            super::moves::insert_events(&mut tx, chunk.iter().map(|(n, e)| (n, e))).await?;
        }
        let id = Uuid::now_v7();
        let (created_by, state) = (by.to_string(), PortInState::Requested.as_str());
        sqlx::query!(
            "INSERT INTO port_ins (id, customer_id, losing_carrier, requested_date, state, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            id,
            c,
            req.losing_carrier,
            req.requested_date,
            state,
            created_by,
            now,
            now
        )
        .execute(&mut *tx)
        .await?;
        for (n, _) in added.iter().chain(moves.iter()) {
            let (nid, e164) = (n.id.as_uuid(), n.e164.as_str());
            sqlx::query!(
                "INSERT INTO port_in_numbers (port_in_id, number_id, e164) VALUES ($1, $2, $3)",
                id,
                nid,
                e164
            )
            .execute(&mut *tx)
            .await?;
        }
        let note = format!(
            "{} numbers from {} for {}",
            req.numbers.len(),
            req.losing_carrier,
            req.requested_date
        );
        record(&mut tx, id, None, PortInState::Requested, Some(&note), by, now).await?;
        queue_step(&mut tx, id, c, PortInStep::PushInactive, now).await?;
        tx.commit().await?;
        Ok(Ok(id))
    }

    /// Port-ins newest first: one (`id`), a customer's, or all, each with its numbers and history.
    pub async fn list_port_ins(
        &self,
        id: Option<Uuid>,
        customer: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<PortIn>> {
        let c = customer.map(|c| c.as_uuid());
        let limit = i64::from(limit);
        let rows = select_port_ins!(
            "WHERE id = COALESCE($1, id) AND customer_id = COALESCE($2, customer_id) ORDER BY created_at DESC, id DESC LIMIT $3",
            id,
            c,
            limit
        )
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let numbers = sqlx::query!(
                r#"SELECT n.e164 AS "e164!", n.state AS "state!", n.reason AS "reason?" FROM port_in_numbers l JOIN numbers n ON n.id = l.number_id WHERE l.port_in_id = $1 ORDER BY l.e164"#,
                r.id
            )
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(|n| {
                Ok(PortInNumber {
                    e164: PhoneNumber::listed(&n.e164)
                        .ok_or_else(|| super::rows::bad("phone number", &n.e164))?,
                    state: NumberState::parse(&n.state)
                        .ok_or_else(|| super::rows::bad("number state", &n.state))?,
                    reason: n.reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            let events = sqlx::query!(
                r#"SELECT at AS "at!: OffsetDateTime", actor AS "actor!", from_state AS "from_state?", to_state AS "to_state!", note AS "note?" FROM port_in_events WHERE port_in_id = $1 ORDER BY id"#,
                r.id
            )
            .fetch_all(self.reader())
            .await?
            .into_iter()
            .map(|e| {
                Ok(PortInHistory {
                    at: e.at,
                    actor: e.actor,
                    from: e.from_state.as_deref().map(port_in_state).transpose()?,
                    to: port_in_state(&e.to_state)?,
                    note: e.note,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            out.push(PortIn {
                id: r.id,
                customer_id: CustomerId::from_uuid(r.customer_id),
                losing_carrier: r.losing_carrier,
                requested_date: r.requested_date,
                state: port_in_state(&r.state)?,
                created_by: r.created_by,
                created_at: r.created_at,
                updated_at: r.updated_at,
                numbers,
                events,
            });
        }
        Ok(out)
    }

    /// Marks the port-in complete: `pushed_inactive` → `activating`, and the jobs that activate its
    /// numbers in Zoom are queued, in one transaction. Of two at once, one wins.
    pub async fn complete_port_in(
        &self,
        id: Uuid,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<PortInMove> {
        let mut tx = self.writer().begin().await?;
        let (customer, from, to) =
            match self.operator_move(&mut tx, id, PortInEvent::Complete, "complete", now).await? {
                Ok(moved) => moved,
                Err(refused) => return Ok(refused),
            };
        record(&mut tx, id, Some(from), to, Some("marked complete"), by, now).await?;
        queue_step(&mut tx, id, customer, PortInStep::Activate, now).await?;
        tx.commit().await?;
        Ok(PortInMove::Done(to))
    }

    /// Cancels the port-in before it completes. Its numbers Zoom may hold are removed by jobs queued
    /// here; those Zoom cannot hold (no live link) leave the customer at once.
    pub async fn cancel_port_in(
        &self,
        id: Uuid,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<PortInMove> {
        let mut tx = self.writer().begin().await?;
        let (customer, from, to) =
            match self.operator_move(&mut tx, id, PortInEvent::Cancel, "cancel", now).await? {
                Ok(moved) => moved,
                Err(refused) => return Ok(refused),
            };
        record(&mut tx, id, Some(from), to, Some("cancelled"), by, now).await?;
        self.queue_removal(&mut tx, id, customer, by, now).await?;
        tx.commit().await?;
        Ok(PortInMove::Done(to))
    }

    /// Moves the port-in to `date` (it is activated on it), while it has not completed.
    pub async fn reschedule_port_in(
        &self,
        id: Uuid,
        date: Date,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<PortInMove> {
        let mut tx = self.writer().begin().await?;
        let Some((_, state)) = self.port_in_head(&mut tx, id).await? else {
            return Ok(PortInMove::NotFound);
        };
        let old = sqlx::query_scalar!(
            r#"SELECT requested_date AS "requested_date!: Date" FROM port_ins WHERE id = $1"#,
            id
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut moved = None;
        for s in PortInState::steps(PortInEvent::Reschedule) {
            let from = s.from.as_str();
            let done = sqlx::query!(
                "UPDATE port_ins SET requested_date = $1, updated_at = $2 WHERE id = $3 AND state = $4",
                date,
                now,
                id,
                from
            )
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                moved = Some(s);
                break;
            }
        }
        let Some(s) = moved else {
            let state = self.port_in_head(&mut tx, id).await?.map_or(state, |h| h.1);
            return Ok(PortInMove::Conflict(refusal(state, "move to another date")));
        };
        let note = format!("moved from {old} to {date}");
        record(&mut tx, id, Some(s.from), s.to, Some(&note), by, now).await?;
        tx.commit().await?;
        Ok(PortInMove::Done(s.to))
    }

    /// The port-in's state as a job about to call Zoom must see it: read through a write on its
    /// row, so a cancel being committed is waited for (and a cancel committed after sees the job
    /// running, and leaves the removal to the job's end).
    pub async fn port_in_state_for_job(&self, id: Uuid) -> Result<Option<PortInState>> {
        let mut tx = self.writer().begin().await?;
        let state = sqlx::query_scalar!(
            r#"UPDATE port_ins SET updated_at = updated_at WHERE id = $1 RETURNING state AS "state!""#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        state.map(|s| port_in_state(&s)).transpose()
    }

    /// Port-ins waiting in Zoom whose date has come (`requested_date` ≤ `today`).
    pub async fn due_port_ins(&self, today: Date) -> Result<Vec<Uuid>> {
        let state = PortInState::PushedInactive.as_str();
        sqlx::query_scalar!(
            r#"SELECT id AS "id!: Uuid" FROM port_ins WHERE state = $1 AND requested_date <= $2 ORDER BY requested_date, id"#,
            state,
            today
        )
        .fetch_all(self.reader())
        .await
    }

    /// Queues the jobs a port-in still needs and has none open for (no pending, running or failed
    /// job of that step): pushes of a port-in recorded before the customer linked its Zoom account,
    /// activations and removals whose jobs ended without moving every number. Returns how many.
    pub async fn queue_missing_port_in_jobs(&self, now: OffsetDateTime) -> Result<usize> {
        let open = sqlx::query!(
            r#"SELECT p.id AS "id!: Uuid", p.customer_id AS "customer_id!: Uuid", p.state AS "state!" FROM port_ins p
               WHERE p.state IN ('requested', 'activating', 'cancelled')
                 AND EXISTS (SELECT 1 FROM port_in_numbers l JOIN numbers n ON n.id = l.number_id WHERE l.port_in_id = p.id AND n.state = 'porting')"#
        )
        .fetch_all(self.reader())
        .await?;
        let mut queued = 0;
        for p in open {
            let step = match port_in_state(&p.state)? {
                PortInState::Requested => PortInStep::PushInactive,
                PortInState::Activating => PortInStep::Activate,
                _ => PortInStep::Remove,
            };
            let step_name = step_name(step);
            let mut tx = self.writer().begin().await?;
            // A write on the port-in's row first: on PostgreSQL a second instance's scan waits here
            // for this one to commit, then sees its jobs, so the two never queue the same step twice.
            // It also skips a port-in whose state moved since the list was read.
            let held = sqlx::query!(
                "UPDATE port_ins SET updated_at = updated_at WHERE id = $1 AND state = $2",
                p.id,
                p.state
            )
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() != 1 {
                continue;
            }
            if step == PortInStep::Remove {
                let by = Actor::System("port-in-scan".into());
                queued += self.queue_removal(&mut tx, p.id, p.customer_id, &by, now).await?;
                tx.commit().await?;
                continue;
            }
            if step_open(&mut tx, p.id, step_name).await? {
                continue;
            }
            queued += queue_step(&mut tx, p.id, p.customer_id, step, now).await?;
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Zoom's answers to a port-in job, with the job's `end`, in one transaction: each number Zoom
    /// took (`accepted`) moves on (pushed inactive: remembered; activated: `active`; removed: back in
    /// the inventory, leaving the customer), and the port-in moves on once every number has. False
    /// if `owner` lost the lease (nothing recorded; the retaken job converges).
    pub async fn complete_port_in_job(
        &self,
        job_id: Uuid,
        owner: &str,
        outcome: &PortInOutcome,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let PortInOutcome { job, accepted, end } = outcome;
        let mut tx = self.writer().begin().await?;
        if !end_held_job(&mut tx, job_id, owner, end, now).await? {
            return Ok(false);
        }
        let id = job.id;
        match job.step {
            PortInStep::PushInactive => {
                for e164 in accepted {
                    let e164 = e164.as_str();
                    sqlx::query!("UPDATE port_in_numbers SET in_zoom = 'inactive' WHERE port_in_id = $1 AND e164 = $2 AND in_zoom IS NULL", id, e164)
                        .execute(&mut *tx)
                        .await?;
                }
                let missing = sqlx::query_scalar!(
                    r#"SELECT COUNT(*) AS "n!: i64" FROM port_in_numbers WHERE port_in_id = $1 AND in_zoom IS NULL"#,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                // Read through a write on the row: a cancel being committed on another instance
                // is waited for, so of the two one sees the other and queues the removal.
                let head = sqlx::query!(
                    r#"UPDATE port_ins SET updated_at = updated_at WHERE id = $1 RETURNING state AS "state!", customer_id AS "customer_id!: Uuid""#,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                if head.state == PortInState::Cancelled.as_str() {
                    // Cancelled while this push was under way: what it added is removed now.
                    self.queue_removal(&mut tx, id, head.customer_id, by, now).await?;
                } else if missing == 0 {
                    if let Some((from, to)) =
                        move_port_in(&mut tx, id, PortInEvent::Pushed, now).await?
                    {
                        record(&mut tx, id, Some(from), to, Some("in Zoom, inactive"), by, now)
                            .await?;
                    }
                }
            }
            PortInStep::Activate => {
                let mut moves = Vec::new();
                for e164 in accepted {
                    let e = e164.as_str();
                    if let Some(row) = select_numbers!("WHERE e164 = $1 AND state = 'porting'", e)
                        .fetch_optional(&mut *tx)
                        .await?
                    {
                        moves.extend(row.into_number()?.port_completed(by, now).ok());
                    }
                    sqlx::query!("UPDATE port_in_numbers SET in_zoom = 'active' WHERE port_in_id = $1 AND e164 = $2", id, e)
                        .execute(&mut *tx)
                        .await?;
                }
                save_moves(&mut tx, &moves).await?;
                let porting = sqlx::query_scalar!(
                    r#"SELECT COUNT(*) AS "n!: i64" FROM port_in_numbers l JOIN numbers n ON n.id = l.number_id WHERE l.port_in_id = $1 AND n.state = 'porting'"#,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                if porting == 0 {
                    if let Some((from, to)) =
                        move_port_in(&mut tx, id, PortInEvent::Activated, now).await?
                    {
                        record(&mut tx, id, Some(from), to, Some("active in Zoom"), by, now)
                            .await?;
                    }
                }
            }
            PortInStep::Remove => {
                self.free_port_in_numbers(&mut tx, id, Some(accepted), by, now).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Queues the removal from Zoom of a cancelled port-in's numbers, unless a push of it is still
    /// under way (it may add numbers after a removal ran: its end queues the removal instead) or a
    /// removal is already open. With nothing to remove from Zoom (no live link, nothing porting)
    /// the numbers leave the customer at once. Returns how many jobs were queued.
    async fn queue_removal(
        &self,
        tx: &mut Transaction<'_, Db>,
        id: Uuid,
        customer: Uuid,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let pushing = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM port_in_jobs pj JOIN jobs j ON j.id = pj.job_id WHERE pj.port_in_id = $1 AND pj.step <> 'remove' AND j.state = 'running'"#,
            id
        )
        .fetch_one(&mut **tx)
        .await?;
        if pushing > 0 || step_open(tx, id, step_name(PortInStep::Remove)).await? {
            return Ok(0);
        }
        let queued = queue_step(tx, id, customer, PortInStep::Remove, now).await?;
        if queued == 0 {
            self.free_port_in_numbers(tx, id, None, by, now).await?;
        }
        Ok(queued)
    }

    /// The port-in's numbers still `porting` (all, or those in `only`) leave the customer for the
    /// inventory: the port-in was cancelled and Zoom does not hold them.
    async fn free_port_in_numbers(
        &self,
        tx: &mut Transaction<'_, Db>,
        id: Uuid,
        only: Option<&[PhoneNumber]>,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<()> {
        let rows = select_numbers!(
            "WHERE state = 'porting' AND id IN (SELECT number_id FROM port_in_numbers WHERE port_in_id = $1)",
            id
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut moves = Vec::new();
        for r in rows {
            let n = r.into_number()?;
            if only.is_some_and(|o| !o.contains(&n.e164)) {
                continue;
            }
            moves.extend(n.port_cancelled(by, now).ok());
        }
        save_moves(tx, &moves).await?;
        for (n, _) in &moves {
            let e = n.e164.as_str();
            sqlx::query!("UPDATE port_in_numbers SET in_zoom = 'removed' WHERE port_in_id = $1 AND e164 = $2", id, e)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// An operator's move of the port-in by `event` (to `action` it), by compare-and-set in `tx`:
    /// its customer and the states it went from and to, or the answer when it is unknown or not in
    /// a state the move starts from (named in the refusal, as it is now).
    async fn operator_move(
        &self,
        tx: &mut Transaction<'_, Db>,
        id: Uuid,
        event: PortInEvent,
        action: &str,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<(Uuid, PortInState, PortInState), PortInMove>> {
        let Some((customer, state)) = self.port_in_head(tx, id).await? else {
            return Ok(Err(PortInMove::NotFound));
        };
        let Some((from, to)) = move_port_in(tx, id, event, now).await? else {
            let now_in = self.port_in_head(tx, id).await?.map_or(state, |h| h.1);
            return Ok(Err(PortInMove::Conflict(refusal(now_in, action))));
        };
        Ok(Ok((customer, from, to)))
    }

    /// The port-in's customer and state, read in the writer's transaction.
    async fn port_in_head(
        &self,
        tx: &mut Transaction<'_, Db>,
        id: Uuid,
    ) -> Result<Option<(Uuid, PortInState)>> {
        let Some(r) = sqlx::query!(
            r#"SELECT customer_id AS "customer_id!: Uuid", state AS "state!" FROM port_ins WHERE id = $1"#,
            id
        )
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some((r.customer_id, port_in_state(&r.state)?)))
    }
}

fn refusal(state: PortInState, action: &str) -> String {
    format!("the port-in is {}; it cannot {action} now", state.as_str())
}

fn shown(mut problems: Vec<String>) -> Vec<String> {
    let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
    problems.truncate(PROBLEMS_SHOWN);
    if more > 0 {
        problems.push(format!("and {more} more"));
    }
    problems
}
