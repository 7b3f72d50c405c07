//! Releases: starting and withdrawing a release, the customer's approval with the jobs that carry it
//! to Zoom (one transaction: the outbox), Zoom's per-number answers, and the sweeps that end
//! quarantines and converge releases whose job ended without an answer.
//!
//! No row is locked. Each number moves by compare-and-set on the state it was read in
//! ([`save_moves`]) and each release line by `... AND state IN (<expected>)` with the rows counted, so
//! a withdrawal and an approval of the same number (from two requests or two instances) cannot both
//! win: the one that comes second finds the number moved and refuses (approval) or passes it over
//! (withdrawal, sweeps).

use super::jobs::{finish_held_job, insert_job};
use super::rows::NumberRow;
use super::webhooks::emit;
use super::{push_list, save_moves, step, Db, DialectStore, Result, INSERT_CHUNK};
use domain::machine::StateMachine;
use domain::onboarding::JobState;
use domain::release::{
    cut_release_jobs, plan_stale_lines, plan_unfinished_release, release_job_ended,
    stale_number_states, ApproveRefused, LineEvent, LineState, OpenLine, Release, ReleaseLine,
    RemoveResult, StartRefused, UNBIND_MESSAGE,
};
use domain::webhook::{EventType, OutboundEvent};
use domain::{
    Actor, CustomerId, Number, NumberEvent, NumberId, NumberState, PhoneNumber, ZoomAccountId,
};
use sqlx::{QueryBuilder, Transaction};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

fn bad(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into())
}

/// Problems listed in a refusal before "and N more".
const PROBLEMS_SHOWN: usize = 20;

struct ReleaseRow {
    id: Uuid,
    customer_id: Uuid,
    reason: String,
    started_by: String,
    started_at: OffsetDateTime,
    waiting: i64,
    releasing: i64,
    released: i64,
    refused: i64,
    withdrawn: i64,
}

impl ReleaseRow {
    fn into_release(self) -> Release {
        Release {
            id: self.id,
            customer_id: CustomerId::from_uuid(self.customer_id),
            reason: self.reason,
            started_by: self.started_by,
            started_at: self.started_at,
            waiting: self.waiting,
            releasing: self.releasing,
            released: self.released,
            refused: self.refused,
            withdrawn: self.withdrawn,
        }
    }
}

struct LineRow {
    release_id: Uuid,
    number_id: Uuid,
    e164: String,
    state: String,
    release_reason: String,
    message: Option<String>,
    updated_at: OffsetDateTime,
    zoom_assigned: Option<bool>,
    zoom_seen_at: Option<OffsetDateTime>,
}

impl LineRow {
    fn into_line(self) -> Result<ReleaseLine> {
        Ok(ReleaseLine {
            release_id: self.release_id,
            number_id: NumberId::from_uuid(self.number_id),
            e164: PhoneNumber::from_trusted(self.e164),
            state: LineState::parse(&self.state)
                .ok_or_else(|| bad("release line state", &self.state))?,
            release_reason: self.release_reason,
            message: self.message,
            updated_at: self.updated_at,
            zoom_assigned: self.zoom_assigned,
            zoom_seen_at: self.zoom_seen_at,
        })
    }
}

macro_rules! select_lines {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            LineRow,
            "SELECT l.release_id AS \"release_id!: Uuid\", l.number_id AS \"number_id!: Uuid\", l.e164 AS \"e164!\", l.state AS \"state!\", r.reason AS \"release_reason!\", l.message AS \"message?\", \
             l.updated_at AS \"updated_at!: OffsetDateTime\", n.zoom_assigned AS \"zoom_assigned?: bool\", n.zoom_seen_at AS \"zoom_seen_at?: OffsetDateTime\" \
             FROM release_numbers l JOIN releases r ON r.id = l.release_id JOIN numbers n ON n.id = l.number_id " + $rest $(, $arg)*
        )
    };
}

impl DialectStore {
    /// Starts the release of `customer`'s `e164s` (all active, all the customer's) with `reason`: the
    /// numbers go `release_pending` and a release records them, in one transaction. Refused with
    /// every number at fault named, changing nothing.
    pub async fn start_release(
        &self,
        customer: CustomerId,
        e164s: &[PhoneNumber],
        reason: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Release, StartRefused>> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Ok(Err(StartRefused::NoReason));
        }
        let mut wanted: Vec<&str> = e164s.iter().map(PhoneNumber::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(Err(StartRefused::Empty));
        }
        let mut tx = self.writer().begin().await?;
        let mut found: HashMap<String, Number> = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
            q.push(" WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            q.push(")");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            for r in rows {
                let n = r.into_number()?;
                found.insert(n.e164.to_string(), n);
            }
        }
        let mut problems = Vec::new();
        let mut moves: Vec<(Number, NumberEvent)> = Vec::with_capacity(wanted.len());
        for e164 in &wanted {
            match found.remove(*e164) {
                None => problems.push(format!("{e164} is not in the inventory")),
                Some(n) if n.customer_id != Some(customer) => {
                    problems.push(format!("{e164} is not this customer's number"))
                }
                Some(n) if n.state != NumberState::Active => problems
                    .push(format!("{e164} is {}; only active numbers can be released", n.state)),
                Some(n) => match n.start_release(reason, by, now) {
                    Ok(m) => moves.push(m),
                    Err(e) => problems.push(e.to_string()),
                },
            }
        }
        if !problems.is_empty() {
            let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
            problems.truncate(PROBLEMS_SHOWN);
            if more > 0 {
                problems.push(format!("and {more} more"));
            }
            return Ok(Err(StartRefused::Numbers(problems)));
        }
        let moved = save_moves(&mut tx, &moves).await?;
        if !moved.is_empty() {
            // Another request moved them since they were read: nothing is saved.
            let changed = moves
                .iter()
                .filter(|(n, _)| moved.contains(&n.id))
                .map(|(n, _)| format!("{} changed meanwhile; try again", n.e164))
                .collect();
            return Ok(Err(StartRefused::Numbers(changed)));
        }
        let id = Uuid::now_v7();
        let c = customer.as_uuid();
        let started_by = by.to_string();
        sqlx::query!("INSERT INTO releases (id, customer_id, reason, started_by, started_at) VALUES ($1, $2, $3, $4, $5)", id, c, reason, started_by, now).execute(&mut *tx).await?;
        let start = LineState::START.as_str();
        for (n, _) in &moves {
            let nid = n.id.as_uuid();
            let e164 = n.e164.as_str();
            sqlx::query!("INSERT INTO release_numbers (release_id, number_id, e164, state, updated_at) VALUES ($1, $2, $3, $4, $5)", id, nid, e164, start, now)
                .execute(&mut *tx)
                .await?;
        }
        let numbers: Vec<&str> = moves.iter().map(|(n, _)| n.e164.as_str()).collect();
        let data = serde_json::json!({ "release_id": id, "customer_id": c, "numbers": numbers, "reason": reason, "actor": started_by });
        emit(
            &mut tx,
            &[OutboundEvent::new(EventType::ReleaseStarted, format!("release:{id}"), now, data)],
        )
        .await?;
        tx.commit().await?;
        let waiting = i64::try_from(moves.len()).unwrap_or(i64::MAX);
        Ok(Ok(Release {
            id,
            customer_id: customer,
            reason: reason.to_owned(),
            started_by,
            started_at: now,
            waiting,
            releasing: 0,
            released: 0,
            refused: 0,
            withdrawn: 0,
        }))
    }

    /// Withdraws what is still waiting in a release (waiting or refused numbers go back to `active`);
    /// numbers already approved go on. `None` for an unknown release; else how many were withdrawn.
    pub async fn withdraw_release(
        &self,
        id: Uuid,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<usize>> {
        let mut tx = self.writer().begin().await?;
        if sqlx::query_scalar!(r#"SELECT id AS "id!: Uuid" FROM releases WHERE id = $1"#, id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let withdraw = LineState::steps(LineEvent::Withdraw);
        let mut ids = Vec::new();
        for line in &withdraw {
            let from = line.from.as_str();
            ids.extend(sqlx::query_scalar!(r#"SELECT number_id AS "number_id!: Uuid" FROM release_numbers WHERE release_id = $1 AND state = $2"#, id, from)
                .fetch_all(&mut *tx)
                .await?);
        }
        // In id order, the order an approval writes them in: on PostgreSQL the two then queue on
        // the first number they share instead of each holding one the other waits for.
        ids.sort_unstable();
        let mut moves = Vec::with_capacity(ids.len());
        for nid in ids {
            if let Some(row) = select_numbers!("WHERE id = $1 AND state = 'release_pending'", nid)
                .fetch_optional(&mut *tx)
                .await?
            {
                if let Ok(m) = row.into_number()?.withdraw_release(by, now) {
                    moves.push(m);
                }
            }
        }
        // A number approved (or otherwise moved) since it was read goes on; its line, no longer
        // waiting, is not withdrawn either.
        let moved = save_moves(&mut tx, &moves).await?;
        for line in withdraw {
            let (to, from) = (line.to.as_str(), line.from.as_str());
            sqlx::query!("UPDATE release_numbers SET state = $1, updated_at = $2 WHERE release_id = $3 AND state = $4", to, now, id, from).execute(&mut *tx).await?;
        }
        let by_text = by.to_string();
        for (n, _) in moves.iter().filter(|(n, _)| !moved.contains(&n.id)) {
            line_finished(
                &mut tx,
                n.id.as_uuid(),
                Some(id),
                LineState::Withdrawn,
                None,
                &by_text,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(moves.len() - moved.len()))
    }

    /// Releases, newest first: one (`id`), a customer's, or all.
    pub async fn list_releases(
        &self,
        id: Option<Uuid>,
        customer: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<Release>> {
        let c = customer.map(|c| c.as_uuid());
        let limit = i64::from(limit);
        let rows = sqlx::query_as!(
            ReleaseRow,
            r#"SELECT r.id AS "id!: Uuid", r.customer_id AS "customer_id!: Uuid", r.reason AS "reason!", r.started_by AS "started_by!", r.started_at AS "started_at!: OffsetDateTime",
                      COUNT(CASE WHEN l.state = 'waiting' THEN 1 END) AS "waiting!: i64",
                      COUNT(CASE WHEN l.state = 'releasing' THEN 1 END) AS "releasing!: i64",
                      COUNT(CASE WHEN l.state = 'released' THEN 1 END) AS "released!: i64",
                      COUNT(CASE WHEN l.state = 'refused' THEN 1 END) AS "refused!: i64",
                      COUNT(CASE WHEN l.state = 'withdrawn' THEN 1 END) AS "withdrawn!: i64"
               FROM releases r LEFT JOIN release_numbers l ON l.release_id = r.id
               WHERE r.id = COALESCE($1, r.id) AND r.customer_id = COALESCE($2, r.customer_id)
               GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC LIMIT $3"#,
            id,
            c,
            limit
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(ReleaseRow::into_release).collect())
    }

    /// Every number of one release.
    pub async fn release_lines(&self, id: Uuid) -> Result<Vec<ReleaseLine>> {
        let rows = select_lines!("WHERE l.release_id = $1 ORDER BY l.e164", id)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(LineRow::into_line).collect()
    }

    /// What the customer's "Wait for Release" tab lists: numbers waiting or refused (while still
    /// `release_pending`: not those suspended since), releasing, and those released since `released_since`.
    pub async fn customer_release_lines(
        &self,
        customer: CustomerId,
        released_since: OffsetDateTime,
    ) -> Result<Vec<ReleaseLine>> {
        let c = customer.as_uuid();
        let rows = select_lines!(
            "WHERE r.customer_id = $1 AND ((l.state IN ('waiting', 'refused') AND n.state = 'release_pending') OR l.state = 'releasing' OR (l.state = 'released' AND l.updated_at >= $2)) ORDER BY l.e164, l.updated_at DESC",
            c,
            released_since
        )
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(LineRow::into_line).collect()
    }

    /// The customer approves the release of `numbers`: each must be one of the customer's numbers
    /// waiting for release, else nothing changes (`NotFound`, never saying whose). They go
    /// `releasing` and jobs of at most 200 carry them to Zoom, in one transaction. Returns how many.
    pub async fn approve_release(
        &self,
        customer: CustomerId,
        numbers: &[NumberId],
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<usize, ApproveRefused>> {
        let mut ids: Vec<Uuid> = numbers.iter().map(|n| n.as_uuid()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Err(ApproveRefused::Empty));
        }
        let mut tx = self.writer().begin().await?;
        let c = customer.as_uuid();
        let account = sqlx::query_scalar!(
            r#"SELECT zoom_account_id AS "zoom_account_id!" FROM zoom_links WHERE customer_id = $1 AND state = 'linked'"#,
            c
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut moves = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(row) = select_numbers!(
                "WHERE id = $1 AND customer_id = $2 AND state = 'release_pending'",
                id,
                c
            )
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(Err(ApproveRefused::NotFound));
            };
            let lines = sqlx::query_scalar!(
                r#"SELECT state AS "state!" FROM release_numbers WHERE number_id = $1"#,
                id
            )
            .fetch_all(&mut *tx)
            .await?;
            if !lines.iter().any(|s| LineState::parse(s).is_some_and(LineState::approvable)) {
                return Ok(Err(ApproveRefused::NotFound));
            }
            match row.into_number()?.approve_release(by, now) {
                Ok(m) => moves.push(m),
                Err(_) => return Ok(Err(ApproveRefused::NotFound)),
            }
        }
        // Another customer's number is a 404 even for a customer without a link.
        let Some(account) = account else { return Ok(Err(ApproveRefused::NoLink)) };
        if !save_moves(&mut tx, &moves).await?.is_empty() {
            // Withdrawn (or otherwise moved) since it was read: nothing is saved.
            return Ok(Err(ApproveRefused::NotFound));
        }
        let approved: Vec<Number> = moves.into_iter().map(|(n, _)| n).collect();
        let approved_by = by.to_string();
        let approve = LineState::steps(LineEvent::Approve);
        for (job, ids) in
            cut_release_jobs(customer, &ZoomAccountId::from_trusted(account), &approved, now)
        {
            insert_job(&mut tx, &job).await?;
            for id in ids {
                let nid = id.as_uuid();
                let mut moved = 0;
                for line in &approve {
                    let (to, from) = (line.to.as_str(), line.from.as_str());
                    moved += sqlx::query!(
                        "UPDATE release_numbers SET state = $1, message = NULL, job_id = $2, approved_by = $3, approved_at = $4, updated_at = $5 WHERE number_id = $6 AND state = $7",
                        to,
                        job.id,
                        approved_by,
                        now,
                        now,
                        nid,
                        from
                    )
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                if moved != 1 {
                    // Its line was withdrawn since it was read: nothing is saved.
                    return Ok(Err(ApproveRefused::NotFound));
                }
            }
        }
        let numbers: Vec<&str> = approved.iter().map(|n| n.e164.as_str()).collect();
        let data =
            serde_json::json!({ "customer_id": c, "numbers": numbers, "actor": approved_by });
        emit(
            &mut tx,
            &[OutboundEvent::new(EventType::ReleaseApproved, format!("customer:{c}"), now, data)],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(approved.len()))
    }

    /// Zoom's answers for a release job: removed numbers go `aging` until `until`, refused ones back to
    /// `release_pending` with the message, and the job is done, in one transaction. Numbers no longer
    /// `releasing` are left alone (a retaken job converges). False if `owner` lost the lease.
    pub async fn complete_release(
        &self,
        job_id: Uuid,
        owner: &str,
        results: &[(PhoneNumber, RemoveResult)],
        until: OffsetDateTime,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        if !finish_held_job(&mut tx, job_id, owner, now).await? {
            return Ok(false);
        }
        for (e164, result) in results {
            let e164 = e164.as_str();
            let Some(row) = select_numbers!("WHERE e164 = $1 AND state = 'releasing'", e164)
                .fetch_optional(&mut *tx)
                .await?
            else {
                continue;
            };
            let n = row.into_number()?;
            let nid = n.id.as_uuid();
            let (moved, message) = match result {
                RemoveResult::Removed => (n.zoom_removed(until, by, now), None),
                RemoveResult::Refused(m) => (n.zoom_refused_release(m, by, now), Some(m.as_str())),
            };
            let Ok(m) = moved else { continue };
            if !save_moves(&mut tx, std::slice::from_ref(&m)).await?.is_empty() {
                continue;
            }
            let line = step(LineState::Releasing, result.line_event())?;
            let (to, from) = (line.to.as_str(), line.from.as_str());
            sqlx::query!("UPDATE release_numbers SET state = $1, message = $2, updated_at = $3 WHERE number_id = $4 AND state = $5", to, message, now, nid, from)
                .execute(&mut *tx)
                .await?;
            line_finished(&mut tx, nid, None, line.to, message, &by.to_string(), now).await?;
            match result {
                // Gone from Zoom: nothing to say of it there any more.
                RemoveResult::Removed => {
                    sqlx::query!(
                        "UPDATE numbers SET zoom_assigned = NULL, zoom_seen_at = NULL WHERE id = $1",
                        nid
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                // Zoom just told us it is assigned.
                RemoveResult::Refused(m) if m == UNBIND_MESSAGE => {
                    sqlx::query!(
                        "UPDATE numbers SET zoom_assigned = true, zoom_seen_at = $1 WHERE id = $2",
                        now,
                        nid
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                RemoveResult::Refused(_) => {}
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Numbers left `releasing` by a job that ended without answering for them (failed, or cancelled
    /// with its link) go back to `release_pending` with `message` and the job's last error, as
    /// [`plan_unfinished_release`] says. Returns how many.
    ///
    /// Only lines whose job has ended (by [`JobState::ended`]) are read, not every line in flight:
    /// a large approval under way would otherwise be read whole at every sweep.
    pub async fn converge_stuck_releases(
        &self,
        message: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut tx = self.writer().begin().await?;
        let mut q = QueryBuilder::<Db>::new(
            "SELECT l.number_id, j.state, j.last_error FROM release_numbers l LEFT JOIN jobs j ON j.id = l.job_id WHERE l.state = ",
        );
        q.push_bind(LineState::Releasing.as_str()).push(" AND (j.id IS NULL OR j.state IN ");
        push_list(&mut q, JobState::ALL.into_iter().filter(|s| s.ended()).map(JobState::as_str));
        q.push(")");
        let stuck: Vec<(Uuid, Option<String>, Option<String>)> =
            q.build_query_as().fetch_all(&mut *tx).await?;
        let mut count = 0;
        for (number_id, job_state, last_error) in stuck {
            let job = match job_state {
                Some(s) => Some(JobState::parse(&s).ok_or_else(|| bad("job state", &s))?),
                None => None,
            };
            if !release_job_ended(job) {
                continue;
            }
            let Some(row) = select_numbers!("WHERE id = $1 AND state = 'releasing'", number_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                continue;
            };
            let Some((n, event, line, why)) = plan_unfinished_release(
                row.into_number()?,
                message,
                last_error.as_deref(),
                by,
                now,
            ) else {
                continue;
            };
            if !save_moves(&mut tx, &[(n, event)]).await?.is_empty() {
                continue;
            }
            let (to, from) = (line.to.as_str(), line.from.as_str());
            sqlx::query!("UPDATE release_numbers SET state = $1, message = $2, updated_at = $3 WHERE number_id = $4 AND state = $5", to, why, now, number_id, from)
                .execute(&mut *tx)
                .await?;
            line_finished(&mut tx, number_id, None, line.to, Some(&why), &by.to_string(), now)
                .await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Lines the customer has not approved whose number left `release_pending` another way are
    /// closed as withdrawn, saying why ([`plan_stale_lines`]). Not those of numbers suspended with
    /// the app's removal (or being pushed again after its re-install): they are on hold and wait
    /// again. Only lines whose number is in one of [`stale_number_states`] are read: the sweep
    /// finds none most of the time. Returns how many.
    pub async fn close_stale_release_lines(&self, now: OffsetDateTime) -> Result<usize> {
        let mut tx = self.writer().begin().await?;
        let mut q = QueryBuilder::<Db>::new(
            "SELECT l.release_id, l.number_id, l.state, n.state FROM release_numbers l JOIN numbers n ON n.id = l.number_id WHERE l.state IN ",
        );
        push_list(&mut q, LineState::approvable_states().into_iter().map(LineState::as_str));
        q.push(" AND n.state IN ");
        push_list(&mut q, stale_number_states().into_iter().map(NumberState::as_str));
        let rows: Vec<(Uuid, Uuid, String, String)> =
            q.build_query_as().fetch_all(&mut *tx).await?;
        let mut lines = Vec::with_capacity(rows.len());
        for (release_id, number_id, line, number) in rows {
            lines.push(OpenLine {
                release_id,
                number_id: NumberId::from_uuid(number_id),
                state: LineState::parse(&line).ok_or_else(|| bad("release line state", &line))?,
                number: NumberState::parse(&number).ok_or_else(|| bad("number state", &number))?,
            });
        }
        let mut closed = 0;
        for close in plan_stale_lines(&lines) {
            let (to, from) = (close.step.to.as_str(), close.step.from.as_str());
            let nid = close.number_id.as_uuid();
            let done = sqlx::query!(
                "UPDATE release_numbers SET state = $1, message = $2, updated_at = $3 WHERE release_id = $4 AND number_id = $5 AND state = $6",
                to,
                close.message,
                now,
                close.release_id,
                nid,
                from
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                let why = close.message.as_str();
                line_finished(
                    &mut tx,
                    nid,
                    Some(close.release_id),
                    close.step.to,
                    Some(why),
                    "system:release-sweep",
                    now,
                )
                .await?;
            }
            closed += done;
        }
        tx.commit().await?;
        Ok(usize::try_from(closed).unwrap_or(usize::MAX))
    }

    /// `aging` numbers whose quarantine ended by `now` go back to `available` (at most `limit`).
    pub async fn expire_quarantine(
        &self,
        limit: u32,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut tx = self.writer().begin().await?;
        let limit = i64::from(limit);
        let rows = select_numbers!(
            "WHERE state = 'aging' AND aging_until <= $1 ORDER BY aging_until LIMIT $2",
            now,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut moves = Vec::with_capacity(rows.len());
        for row in rows {
            if let Ok(m) = row.into_number()?.quarantine_over(by, now) {
                moves.push(m);
            }
        }
        // Another instance's sweep may have taken some of these first.
        let moved = save_moves(&mut tx, &moves).await?;
        tx.commit().await?;
        Ok(moves.len() - moved.len())
    }

    /// What Zoom listed just now for the customer: (number, assigned to a user).
    pub async fn record_zoom_presence(
        &self,
        customer: CustomerId,
        seen: &[(PhoneNumber, bool)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let c = customer.as_uuid();
        let mut tx = self.writer().begin().await?;
        for (e164, assigned) in seen {
            let e164 = e164.as_str();
            sqlx::query!("UPDATE numbers SET zoom_assigned = $1, zoom_seen_at = $2 WHERE e164 = $3 AND customer_id = $4", assigned, now, e164, c).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

/// `release.number_finished` for a number whose line in a release (`release`, else its latest)
/// just reached `outcome`.
async fn line_finished(
    tx: &mut Transaction<'_, Db>,
    number: Uuid,
    release: Option<Uuid>,
    outcome: LineState,
    message: Option<&str>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let mut q = QueryBuilder::<Db>::new(
        "SELECT l.release_id, r.customer_id, l.e164 FROM release_numbers l JOIN releases r ON r.id = l.release_id WHERE l.number_id = ",
    );
    q.push_bind(number);
    if let Some(r) = release {
        q.push(" AND l.release_id = ").push_bind(r);
    }
    q.push(" ORDER BY r.started_at DESC LIMIT 1");
    let Some((release_id, customer, e164)): Option<(Uuid, Uuid, String)> =
        q.build_query_as().fetch_optional(&mut **tx).await?
    else {
        return Ok(());
    };
    let data = serde_json::json!({
        "release_id": release_id, "number_id": number, "e164": e164, "customer_id": customer,
        "outcome": outcome.as_str(), "message": message, "actor": actor,
    });
    emit(tx, &[OutboundEvent::new(EventType::ReleaseNumberFinished, e164, now, data)]).await
}
