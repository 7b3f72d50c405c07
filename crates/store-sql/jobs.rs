//! The job outbox: jobs written in the transaction whose change they carry to Zoom, leased by workers
//! (claiming is the dialects' own: `claim_job`), and finished with Zoom's answers. Every finish is a
//! compare-and-set on the worker's lease (`... AND lease_owner = $owner AND state = 'running'`), and
//! the numbers an answer moves move only from the state they were read in, so a job retaken after
//! its lease ran out, or an app removed meanwhile, can never be overwritten by a late answer.

use super::rows::{bad, NumberRow};
use super::{
    push_list, save_pushed_moves, save_state_moves, step, Db, DialectStore, Result, INSERT_CHUNK,
};
use domain::job::{plan_poll, JobEvent};
use domain::link::plan_restore_releases;
use domain::machine::StateMachine;
use domain::onboarding::{Job, JobEnd, JobKind, JobState, PushResult};
use domain::push::plan_push_answers;
use domain::release::{LineEvent, LineState};
use domain::{
    Actor, CustomerId, Number, NumberId, NumberState, OrderId, PhoneNumber, ZoomAccountId,
};
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

struct JobRow {
    id: Uuid,
    kind: String,
    payload: String,
    customer_id: Option<Uuid>,
    order_id: Option<Uuid>,
    zoom_account: Option<String>,
    state: String,
    attempts: i64,
    run_after: OffsetDateTime,
    lease_owner: Option<String>,
    lease_until: Option<OffsetDateTime>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl JobRow {
    fn into_job(self) -> Result<Job> {
        Ok(Job {
            id: self.id,
            kind: JobKind::parse(&self.kind).ok_or_else(|| bad("job kind", &self.kind))?,
            payload: serde_json::from_str(&self.payload)
                .map_err(|_| bad("job payload", &self.payload))?,
            customer_id: self.customer_id.map(CustomerId::from_uuid),
            order_id: self.order_id.map(OrderId::from_uuid),
            zoom_account: self.zoom_account.map(ZoomAccountId::from_trusted),
            state: JobState::parse(&self.state).ok_or_else(|| bad("job state", &self.state))?,
            attempts: self.attempts,
            run_after: self.run_after,
            lease_owner: self.lease_owner,
            lease_until: self.lease_until,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

macro_rules! select_jobs {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            "SELECT id AS \"id!: Uuid\", kind AS \"kind!\", CAST(payload AS TEXT) AS \"payload!: String\", customer_id AS \"customer_id?: Uuid\", order_id AS \"order_id?: Uuid\", \
             zoom_account AS \"zoom_account?\", state AS \"state!\", attempts AS \"attempts!: i64\", \
             run_after AS \"run_after!: OffsetDateTime\", lease_owner AS \"lease_owner?\", lease_until AS \"lease_until?: OffsetDateTime\", last_error AS \"last_error?\", \
             created_at AS \"created_at!: OffsetDateTime\", updated_at AS \"updated_at!: OffsetDateTime\" FROM jobs " + $rest $(, $arg)*
        )
    };
}

/// Defines `claim_job`. Claiming is where the dialects differ: PostgreSQL's workers on several
/// instances pass over the job rows others are claiming (`FOR UPDATE SKIP LOCKED`), while SQLite's
/// single writer connection runs one claim at a time. The dialect's `job_claim_lock!` calls this with
/// its own `$lock`.
macro_rules! claim_job_with {
    ($lock:tt) => {
        impl DialectStore {
            /// Claims the next due job for `owner` until `lease_until`: a pending job whose time has come,
            /// or a running one whose worker's lease ran out (it died). Jobs of an account that Zoom asked us
            /// to leave alone (`not_before`) wait.
            ///
            /// `$lock` is what the dialect adds to the query that picks the job (its `job_claim_lock!`).
            pub async fn claim_job(
                &self,
                owner: &str,
                lease_until: OffsetDateTime,
                now: OffsetDateTime,
            ) -> Result<Option<Job>> {
                let claim = step(JobState::Pending, JobEvent::Claim)?;
                let reclaim = step(JobState::Running, JobEvent::Reclaim)?;
                debug_assert_eq!(claim.to, reclaim.to);
                let (to, due, expired) =
                    (claim.to.as_str(), claim.from.as_str(), reclaim.from.as_str());
                let row = sqlx::query!(
                    r#"UPDATE jobs SET state = $4, lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                       WHERE id = (SELECT j.id FROM jobs j
                                   WHERE ((j.state = $5 AND j.run_after <= $3) OR (j.state = $6 AND j.lease_until <= $3))
                                     AND NOT EXISTS (SELECT 1 FROM zoom_links l WHERE l.zoom_account_id = j.zoom_account AND l.state = 'linked' AND l.not_before > $3)
                                   ORDER BY j.run_after, j.id LIMIT 1 "# + $lock + r#")
                       RETURNING id AS "id!: Uuid""#,
                    owner,
                    lease_until,
                    now,
                    to,
                    due,
                    expired
                )
                .fetch_optional(self.writer())
                .await?;
                match row {
                    None => Ok(None),
                    Some(r) => select_jobs!("WHERE id = $1", r.id)
                        .fetch_one(self.writer())
                        .await?
                        .into_job()
                        .map(Some),
                }
            }
        }
    };
}

job_claim_lock!(claim_job_with);

impl DialectStore {
    pub async fn insert_job(&self, job: &Job) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        insert_job(&mut tx, job).await?;
        tx.commit().await
    }

    /// Records how a job ended, if `owner` still holds its lease (a worker whose lease ran out and
    /// whose job was retaken must not overwrite the new worker's outcome).
    pub async fn finish_job(
        &self,
        id: Uuid,
        owner: &str,
        end: &JobEnd,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let moved = step(JobState::Running, end.event())?;
        let (to, from) = (moved.to.as_str(), moved.from.as_str());
        let done = match end {
            JobEnd::Done => {
                sqlx::query!("UPDATE jobs SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = $5", to, now, id, owner, from)
                    .execute(self.writer())
                    .await?
            }
            JobEnd::Retry { at, error } => {
                sqlx::query!("UPDATE jobs SET state = $1, run_after = $2, lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5 AND lease_owner = $6 AND state = $7", to, at, error, now, id, owner, from)
                    .execute(self.writer())
                    .await?
            }
            JobEnd::Failed { error } => {
                sqlx::query!("UPDATE jobs SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = $6", to, error, now, id, owner, from)
                    .execute(self.writer())
                    .await?
            }
        };
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease `owner` holds on a running job (its heartbeat). False when the lease is gone:
    /// the job ended, or another worker took it after the lease ran out.
    pub async fn extend_job_lease(
        &self,
        id: Uuid,
        owner: &str,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            lease_until,
            id,
            owner
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Hands the running jobs of `owner` back (a clean stop): pending again at once, the attempt not
    /// counted. Returns how many.
    pub async fn hand_back_job(&self, owner: &str, now: OffsetDateTime) -> Result<u64> {
        let back = step(JobState::Running, JobEvent::HandBack)?;
        let (to, from) = (back.to.as_str(), back.from.as_str());
        let done = sqlx::query!(
            "UPDATE jobs SET state = $1, run_after = $2, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, lease_owner = NULL, lease_until = NULL, updated_at = $3 WHERE lease_owner = $4 AND state = $5",
            to,
            now,
            now,
            owner,
            from
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Zoom's answers for a push job: accepted numbers go `active`, refused ones back to `reserved`
    /// with Zoom's reason, and the job is done, in one transaction. Numbers no longer `provisioning`
    /// are left alone (a retaken job's answers converge). False if `owner` lost the lease.
    pub async fn complete_push(
        &self,
        job_id: Uuid,
        owner: &str,
        results: &[(PhoneNumber, PushResult)],
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        if !finish_held_job(&mut tx, job_id, owner, now).await? {
            return Ok(false);
        }
        let mut numbers = Vec::with_capacity(results.len());
        for chunk in results.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
            q.push(" WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for (e164, _) in chunk {
                sep.push_bind(e164.as_str());
            }
            q.push(")");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            for row in rows {
                numbers.push(row.into_number()?);
            }
        }
        let moves = plan_push_answers(numbers, results, by, now);
        // Just added: Zoom lists it Unassigned until the customer assigns it.
        let moved = save_pushed_moves(&mut tx, &moves, now).await?;
        let accepted: Vec<Uuid> = moves
            .iter()
            .filter(|(n, _)| n.state == NumberState::Active && moved.contains(&n.id.as_uuid()))
            .map(|(n, _)| n.id.as_uuid())
            .collect();
        resume_releases(&mut tx, &moves, &accepted, by, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What a poll of the account's peering numbers found: `seen` is (number, assigned) for every
    /// number Zoom listed. The poll job goes back to pending for `next_poll`. False if `owner` lost it.
    pub async fn complete_poll(
        &self,
        job_id: Uuid,
        owner: &str,
        customer: CustomerId,
        seen: &[(PhoneNumber, bool)],
        now: OffsetDateTime,
        next_poll: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let again = step(JobState::Running, JobEvent::Reschedule)?;
        let (to, from) = (again.to.as_str(), again.from.as_str());
        let held = sqlx::query!(
            "UPDATE jobs SET state = $1, run_after = $2, attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = $6",
            to,
            next_poll,
            now,
            job_id,
            owner,
            from
        )
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let c = customer.as_uuid();
        for flag in [true, false] {
            let numbers: Vec<&str> =
                seen.iter().filter(|(_, a)| *a == flag).map(|(n, _)| n.as_str()).collect();
            for chunk in numbers.chunks(INSERT_CHUNK) {
                let mut q = QueryBuilder::<Db>::new("UPDATE numbers SET zoom_assigned = ");
                q.push_bind(flag)
                    .push(", zoom_seen_at = ")
                    .push_bind(now)
                    .push(" WHERE customer_id = ")
                    .push_bind(c)
                    .push(" AND e164 IN (");
                let mut sep = q.separated(", ");
                for n in chunk {
                    sep.push_bind(*n);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
        }
        sqlx::query!(
            "UPDATE zoom_links SET last_polled_at = $1 WHERE customer_id = $2 AND state = 'linked'",
            now,
            c
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>> {
        let limit = i64::from(limit);
        let rows = match state.map(JobState::as_str) {
            Some(s) => {
                select_jobs!(
                    "WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
                    s,
                    limit
                )
                .fetch_all(self.reader())
                .await?
            }
            None => {
                select_jobs!("ORDER BY updated_at DESC, id DESC LIMIT $1", limit)
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.into_iter().map(JobRow::into_job).collect()
    }

    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        let rows = sqlx::query!(r#"SELECT state, COUNT(*) AS "n!: i64" FROM jobs GROUP BY state"#)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter()
            .map(|r| {
                JobState::parse(&r.state)
                    .map(|s| (s, r.n))
                    .ok_or_else(|| bad("job state", &r.state))
            })
            .collect()
    }

    /// Jobs still waiting or running that should have reached Zoom before `cutoff`: due before it
    /// and not run since, or (all but the customer's recurring poll) written before it and retried
    /// ever since. An outbox that no longer drains.
    pub async fn stuck_job_count(&self, cutoff: OffsetDateTime) -> Result<i64> {
        let (pending, running) = (JobState::Pending.as_str(), JobState::Running.as_str());
        let poll = JobKind::PollNumbers.as_str();
        sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM jobs WHERE state IN ($1, $2) AND (run_after < $3 OR (kind <> $4 AND created_at < $3))"#,
            pending,
            running,
            cutoff,
            poll
        )
        .fetch_one(self.reader())
        .await
    }

    pub async fn order_jobs(&self, order: OrderId) -> Result<Vec<Job>> {
        let o = order.as_uuid();
        let rows =
            select_jobs!("WHERE order_id = $1 ORDER BY id", o).fetch_all(self.reader()).await?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    /// A failed job is tried again now, from a fresh count of attempts.
    pub async fn retry_job(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let again = step(JobState::Failed, JobEvent::OperatorRetry)?;
        let (to, from) = (again.to.as_str(), again.from.as_str());
        let done = sqlx::query!("UPDATE jobs SET state = $1, attempts = 0, run_after = $2, updated_at = $3 WHERE id = $4 AND state = $5", to, now, now, id, from)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Brings the customer's next poll of Zoom forward to `now` (an operator's "refresh from Zoom").
    pub async fn poll_now(&self, customer: CustomerId, now: OffsetDateTime) -> Result<bool> {
        let c = customer.as_uuid();
        let (kind, waiting) = (JobKind::PollNumbers.as_str(), JobState::Pending.as_str());
        let done = sqlx::query!(
            "UPDATE jobs SET run_after = $1 WHERE customer_id = $2 AND kind = $3 AND state = $4",
            now,
            c,
            kind,
            waiting
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The numbers among `e164s` in the inventory, in any state.
    pub async fn numbers_in(&self, e164s: &[PhoneNumber]) -> Result<Vec<Number>> {
        let mut found = Vec::with_capacity(e164s.len());
        for chunk in e164s.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
            q.push(" WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.as_str());
            }
            q.push(") ORDER BY e164");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(self.reader()).await?;
            for r in rows {
                found.push(r.into_number()?);
            }
        }
        Ok(found)
    }

    /// What Zoom last said of the customer's numbers: (number, assigned to a user, when seen).
    pub async fn zoom_presence(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<(PhoneNumber, Option<bool>, Option<OffsetDateTime>)>> {
        let c = customer.as_uuid();
        let rows = sqlx::query!(
            r#"SELECT e164, zoom_assigned AS "zoom_assigned: bool", zoom_seen_at AS "zoom_seen_at: OffsetDateTime" FROM numbers WHERE customer_id = $1 AND zoom_seen_at IS NOT NULL ORDER BY e164"#,
            c
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (PhoneNumber::from_trusted(r.e164), r.zoom_assigned, r.zoom_seen_at))
            .collect())
    }
}

/// Also used by the release module: a release job is written like any other outbox job.
pub(crate) async fn insert_job(tx: &mut Transaction<'_, Db>, job: &Job) -> Result<()> {
    let kind = job.kind.as_str();
    let state = job.state.as_str();
    let c = job.customer_id.map(|c| c.as_uuid());
    let o = job.order_id.map(|o| o.as_uuid());
    let account = job.zoom_account.as_ref().map(ZoomAccountId::as_str);
    // Bound as JSON: PostgreSQL's column is `jsonb`, SQLite's text.
    let payload =
        serde_json::to_value(&job.payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query!(
        "INSERT INTO jobs (id, kind, payload, customer_id, order_id, zoom_account, state, attempts, run_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        job.id,
        kind,
        payload,
        c,
        o,
        account,
        state,
        job.attempts,
        job.run_after,
        job.created_at,
        job.updated_at
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

pub(crate) async fn cancel_account_jobs(
    tx: &mut Transaction<'_, Db>,
    account: &str,
    why: &str,
    now: OffsetDateTime,
) -> Result<()> {
    for cancel in JobState::steps(JobEvent::Cancel) {
        let (to, from) = (cancel.to.as_str(), cancel.from.as_str());
        sqlx::query!("UPDATE jobs SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3 WHERE zoom_account = $4 AND state = $5", to, why, now, account, from)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Ends a job with Zoom's answer recorded, if `owner` still holds its lease (the compare-and-set a
/// retaken job's late answer fails). Also used by the release module.
pub(crate) async fn finish_held_job(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    owner: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = step(JobState::Running, JobEvent::Done)?;
    let (to, from) = (done.to.as_str(), done.from.as_str());
    let held = sqlx::query!("UPDATE jobs SET state = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = $5", to, now, id, owner, from)
        .execute(&mut **tx)
        .await?;
    Ok(held.rows_affected() == 1)
}

/// Numbers just accepted by Zoom that a release still waits for (they were suspended when the app
/// was removed, and came back with its re-install) wait for the customer's approval again:
/// `release_pending` with the release's reason, their lines waiting without the on-hold message.
async fn resume_releases(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, domain::NumberEvent)],
    accepted: &[Uuid],
    by: &Actor,
    now: OffsetDateTime,
) -> Result<()> {
    let mut reasons: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    for chunk in accepted.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT l.number_id, r.reason FROM release_numbers l JOIN releases r ON r.id = l.release_id WHERE l.state IN ",
        );
        push_list(&mut q, LineState::approvable_states().into_iter().map(LineState::as_str));
        q.push(" AND l.number_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        let rows: Vec<(Uuid, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        reasons.extend(rows);
    }
    if reasons.is_empty() {
        return Ok(());
    }
    let activated: Vec<Number> = moves.iter().map(|(n, _)| n.clone()).collect();
    let open: std::collections::HashMap<NumberId, String> =
        reasons.into_iter().map(|(id, reason)| (NumberId::from_uuid(id), reason)).collect();
    let again = plan_restore_releases(&activated, &open, by, now);
    let waiting: Vec<Uuid> = save_state_moves(tx, &again).await?.into_iter().collect();
    for resume in LineState::steps(LineEvent::Resume) {
        for chunk in waiting.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("UPDATE release_numbers SET state = ");
            q.push_bind(resume.to.as_str())
                .push(", message = NULL, updated_at = ")
                .push_bind(now)
                .push(" WHERE state = ")
                .push_bind(resume.from.as_str())
                .push(" AND number_id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// The account's recurring poll job, as [`plan_poll`] decides it from the states of the account's
/// poll jobs (one per link it ever had: few).
pub(crate) async fn enqueue_poll(
    tx: &mut Transaction<'_, Db>,
    customer: CustomerId,
    account: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let kind = JobKind::PollNumbers.as_str();
    let states = sqlx::query_scalar!(
        r#"SELECT state AS "state!" FROM jobs WHERE zoom_account = $1 AND kind = $2"#,
        account,
        kind
    )
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|s| JobState::parse(s).ok_or_else(|| bad("job state", s)))
    .collect::<Result<Vec<_>>>()?;
    let account = ZoomAccountId::from_trusted(account.to_owned());
    if let Some(job) = plan_poll(customer, &account, &states, now) {
        insert_job(tx, &job).await?;
    }
    Ok(())
}
