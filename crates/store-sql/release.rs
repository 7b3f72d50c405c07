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
use super::mail::{customer_name, enqueue_mail};
use super::rows::NumberRow;
use super::webhooks::emit;
use super::{push_list, save_moves, step, Db, DialectStore, Result, INSERT_CHUNK};
use domain::machine::StateMachine;
use domain::mail::{key as mail_key, MailFacts, MailKind, NewMail};
use domain::onboarding::JobState;
use domain::release::{
    blocked_message, cut_release_jobs, plan_stale_lines, plan_unfinished_release,
    release_job_ended, stale_number_states, ApproveRefused, CarrierRelease, LineEvent, LineState,
    OpenLine, Release, ReleaseKind, ReleaseLine, RemoveResult, StartRefused, UNBIND_MESSAGE,
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

/// Due dates are kept, and compared, in whole seconds: SQLite compares timestamps as RFC 3339 text,
/// where `…00Z` sorts after `…00.5Z`, so a due time without a fraction would not be reached by a
/// clock reading with one.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn kind(s: &str) -> Result<ReleaseKind> {
    ReleaseKind::parse(s).ok_or_else(|| bad("release kind", s))
}

struct ReleaseRow {
    id: Uuid,
    customer_id: Uuid,
    kind: String,
    due_at: Option<OffsetDateTime>,
    gaining_carrier: Option<String>,
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
    fn into_release(self) -> Result<Release> {
        Ok(Release {
            id: self.id,
            customer_id: CustomerId::from_uuid(self.customer_id),
            kind: kind(&self.kind)?,
            due_at: self.due_at,
            gaining_carrier: self.gaining_carrier,
            reason: self.reason,
            started_by: self.started_by,
            started_at: self.started_at,
            waiting: self.waiting,
            releasing: self.releasing,
            released: self.released,
            refused: self.refused,
            withdrawn: self.withdrawn,
        })
    }
}

struct LineRow {
    release_id: Uuid,
    number_id: Uuid,
    e164: String,
    state: String,
    kind: String,
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
            kind: kind(&self.kind)?,
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
            "SELECT l.release_id AS \"release_id!: Uuid\", l.number_id AS \"number_id!: Uuid\", l.e164 AS \"e164!\", l.state AS \"state!\", r.kind AS \"kind!\", r.reason AS \"release_reason!\", l.message AS \"message?\", \
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
        self.start_any_release(customer, e164s, reason, None, by, now).await
    }

    /// Starts a release without the customer's approval (`carrier`: port-out, contract end,
    /// returned): like [`Self::start_release`], and from `carrier.due_at` the periodic scan
    /// ([`Self::take_due_releases`]) removes the numbers from Zoom.
    pub async fn start_carrier_release(
        &self,
        customer: CustomerId,
        e164s: &[PhoneNumber],
        reason: &str,
        carrier: &CarrierRelease,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Release, StartRefused>> {
        self.start_any_release(customer, e164s, reason, Some(carrier), by, now).await
    }

    async fn start_any_release(
        &self,
        customer: CustomerId,
        e164s: &[PhoneNumber],
        reason: &str,
        carrier: Option<&CarrierRelease>,
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
        let mut busy = Vec::new();
        let mut moves: Vec<(Number, NumberEvent)> = Vec::with_capacity(wanted.len());
        for e164 in &wanted {
            match found.remove(*e164) {
                None => problems.push(format!("{e164} is not in the inventory")),
                Some(n) if n.customer_id != Some(customer) => {
                    problems.push(format!("{e164} is not this customer's number"))
                }
                Some(n) if n.state != NumberState::Active => {
                    busy.push(format!("{e164} is {}; only active numbers can be released", n.state))
                }
                Some(n) => match n.start_release(reason, by, now) {
                    Ok(m) => moves.push(m),
                    Err(e) => problems.push(e.to_string()),
                },
            }
        }
        let only_busy = problems.is_empty() && !busy.is_empty();
        problems.append(&mut busy);
        if !problems.is_empty() {
            let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
            problems.truncate(PROBLEMS_SHOWN);
            if more > 0 {
                problems.push(format!("and {more} more"));
            }
            return Ok(Err(if only_busy {
                StartRefused::Busy(problems)
            } else {
                StartRefused::Numbers(problems)
            }));
        }
        let moved = save_moves(&mut tx, &moves).await?;
        if !moved.is_empty() {
            // Another request moved them since they were read: nothing is saved.
            let changed = moves
                .iter()
                .filter(|(n, _)| moved.contains(&n.id))
                .map(|(n, _)| format!("{} changed meanwhile; try again", n.e164))
                .collect();
            return Ok(Err(StartRefused::Busy(changed)));
        }
        let id = Uuid::now_v7();
        let c = customer.as_uuid();
        let started_by = by.to_string();
        let release_kind = carrier.map_or(ReleaseKind::Approval, |r| r.kind);
        let kind_str = release_kind.as_str();
        let due_at = carrier.map(|r| whole_seconds(r.due_at));
        let gaining_carrier = carrier.and_then(|r| r.gaining_carrier.clone());
        sqlx::query!("INSERT INTO releases (id, customer_id, reason, started_by, started_at, kind, due_at, gaining_carrier) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", id, c, reason, started_by, now, kind_str, due_at, gaining_carrier).execute(&mut *tx).await?;
        let start = LineState::START.as_str();
        for (n, _) in &moves {
            let nid = n.id.as_uuid();
            let e164 = n.e164.as_str();
            sqlx::query!("INSERT INTO release_numbers (release_id, number_id, e164, state, updated_at) VALUES ($1, $2, $3, $4, $5)", id, nid, e164, start, now)
                .execute(&mut *tx)
                .await?;
        }
        // Only a release that waits for the customer asks the customer's admins to approve it.
        if release_kind == ReleaseKind::Approval {
            let mail = NewMail {
                key: mail_key::release_waiting(id),
                kind: MailKind::ReleaseWaiting,
                customer_id: customer,
                facts: MailFacts {
                    customer_name: customer_name(&mut tx, c).await?,
                    numbers: moves.iter().map(|(n, _)| n.e164.to_string()).collect(),
                    reason: Some(reason.to_owned()),
                    release_id: Some(id),
                    order_id: None,
                    started_at: Some(now),
                    deadline: None,
                },
            };
            enqueue_mail(&mut tx, &mail, now).await?;
        }
        let numbers: Vec<&str> = moves.iter().map(|(n, _)| n.e164.as_str()).collect();
        let data = serde_json::json!({ "release_id": id, "customer_id": c, "numbers": numbers, "reason": reason, "actor": started_by, "kind": kind_str, "due_at": due_at.map(|d| d.unix_timestamp()), "gaining_carrier": gaining_carrier });
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
            kind: release_kind,
            due_at,
            gaining_carrier,
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
            // A number Zoom kept after a release without approval came due no longer routes and
            // stays in its release until Zoom lets it go: its line is not withdrawn.
            sqlx::query!("UPDATE release_numbers SET state = $1, updated_at = $2 WHERE release_id = $3 AND state = $4 AND number_id NOT IN (SELECT id FROM numbers WHERE state = 'releasing')", to, now, id, from).execute(&mut *tx).await?;
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
            r#"SELECT r.id AS "id!: Uuid", r.customer_id AS "customer_id!: Uuid", r.kind AS "kind!", r.due_at AS "due_at?: OffsetDateTime", r.gaining_carrier AS "gaining_carrier?", r.reason AS "reason!", r.started_by AS "started_by!", r.started_at AS "started_at!: OffsetDateTime",
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
        rows.into_iter().map(ReleaseRow::into_release).collect()
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
            "WHERE r.customer_id = $1 AND ((l.state IN ('waiting', 'refused') AND n.state = 'release_pending') OR (l.state = 'refused' AND n.state = 'releasing') OR l.state = 'releasing' OR (l.state = 'released' AND l.updated_at >= $2)) ORDER BY l.e164, l.updated_at DESC",
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
            // Lines of releases without approval run on their due date, not on the customer's word.
            let lines = sqlx::query_scalar!(
                r#"SELECT l.state AS "state!" FROM release_numbers l JOIN releases r ON r.id = l.release_id WHERE l.number_id = $1 AND r.kind = 'approval'"#,
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
            let release_kind = match sqlx::query_scalar!(
                r#"SELECT r.kind AS "kind!" FROM release_numbers l JOIN releases r ON r.id = l.release_id WHERE l.number_id = $1 AND l.state = 'releasing'"#,
                nid
            )
            .fetch_optional(&mut *tx)
            .await?
            {
                Some(k) => kind(&k)?,
                None => ReleaseKind::Approval,
            };
            let blocked;
            let (moved, message) = match result {
                RemoveResult::Removed => (n.zoom_removed(until, by, now), None),
                RemoveResult::Refused(m) if release_kind.needs_approval() => {
                    (n.zoom_refused_release(m, by, now), Some(m.as_str()))
                }
                // Released without approval: it stays out of routing and is tried again.
                RemoveResult::Refused(m) => {
                    blocked = blocked_message(m);
                    (n.removal_blocked(&blocked, by, now), Some(blocked.as_str()))
                }
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
            "SELECT l.number_id, j.state, j.last_error, r.kind FROM release_numbers l JOIN releases r ON r.id = l.release_id LEFT JOIN jobs j ON j.id = l.job_id WHERE l.state = ",
        );
        q.push_bind(LineState::Releasing.as_str()).push(" AND (j.id IS NULL OR j.state IN ");
        push_list(&mut q, JobState::ALL.into_iter().filter(|s| s.ended()).map(JobState::as_str));
        q.push(")");
        let stuck: Vec<(Uuid, Option<String>, Option<String>, String)> =
            q.build_query_as().fetch_all(&mut *tx).await?;
        let mut count = 0;
        for (number_id, job_state, last_error, release_kind) in stuck {
            let release_kind = kind(&release_kind)?;
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
                release_kind,
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

    /// Takes the lines of releases without approval that are due: numbers waiting whose release is
    /// due by `now` go `releasing` (they stop routing), and numbers Zoom refused to remove before
    /// `retry_before` are tried again; jobs carry them to Zoom, in one transaction. With `only`, an
    /// operator forces that release now: all its waiting and refused lines, due or not.
    ///
    /// Each line moves by compare-and-set on its state, and each number on its state and version, so
    /// of two scans (two instances, or a scan and a forcing operator) racing for a line, one takes it
    /// and the other passes it over. Lines of customers without a live Zoom link wait. Returns how
    /// many lines were taken.
    pub async fn take_due_releases(
        &self,
        only: Option<Uuid>,
        retry_before: OffsetDateTime,
        limit: u32,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut tx = self.writer().begin().await?;
        let limit = i64::from(limit);
        let forced = only.is_some();
        let due_by = whole_seconds(now);
        let rows = sqlx::query!(
            r#"SELECT l.release_id AS "release_id!: Uuid", l.number_id AS "number_id!: Uuid", l.state AS "state!", r.customer_id AS "customer_id!: Uuid", r.reason AS "reason!", z.zoom_account_id AS "zoom_account_id!"
               FROM release_numbers l JOIN releases r ON r.id = l.release_id JOIN numbers n ON n.id = l.number_id
                    JOIN zoom_links z ON z.customer_id = r.customer_id AND z.state = 'linked'
               WHERE r.kind <> 'approval' AND r.id = COALESCE($1, r.id)
                 AND ((l.state = 'waiting' AND n.state = 'release_pending' AND (r.due_at <= $2 OR $3))
                   OR (l.state = 'refused' AND n.state = 'releasing' AND (l.updated_at <= $4 OR $3)))
               ORDER BY l.number_id LIMIT $5"#,
            only,
            due_by,
            forced,
            retry_before,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        let taken_by = by.to_string();
        let mut taken: HashMap<(Uuid, String), Vec<(Uuid, Number)>> = HashMap::new();
        for row in rows {
            let from = LineState::parse(&row.state)
                .ok_or_else(|| bad("release line state", &row.state))?;
            let line = step(from, LineEvent::Approve)?;
            let (to, from_str) = (line.to.as_str(), line.from.as_str());
            // Each line in a savepoint: a number that moved meanwhile leaves its line as it was.
            let mut sp = sqlx::Acquire::begin(&mut tx).await?;
            // The line first: of two racing scans, the second waits here and then finds it moved.
            let won = sqlx::query!(
                "UPDATE release_numbers SET state = $1, message = NULL, approved_by = $2, approved_at = $3, updated_at = $4 WHERE release_id = $5 AND number_id = $6 AND state = $7",
                to,
                taken_by,
                now,
                now,
                row.release_id,
                row.number_id,
                from_str
            )
            .execute(&mut *sp)
            .await?
            .rows_affected();
            if won != 1 {
                sp.rollback().await?;
                continue;
            }
            let number = if from == LineState::Waiting {
                let Some(n) =
                    select_numbers!("WHERE id = $1 AND state = 'release_pending'", row.number_id)
                        .fetch_optional(&mut *sp)
                        .await?
                else {
                    // Moved since it was read (withdrawn, suspended): not taken.
                    sp.rollback().await?;
                    continue;
                };
                let why = if forced {
                    format!("{} (forced now by {taken_by})", row.reason)
                } else {
                    format!("{} (due)", row.reason)
                };
                let m = n
                    .into_number()?
                    .release_due(&why, by, now)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                if !save_moves(&mut sp, std::slice::from_ref(&m)).await?.is_empty() {
                    sp.rollback().await?;
                    continue;
                }
                m.0
            } else {
                let Some(n) =
                    select_numbers!("WHERE id = $1 AND state = 'releasing'", row.number_id)
                        .fetch_optional(&mut *sp)
                        .await?
                else {
                    sp.rollback().await?;
                    continue;
                };
                n.into_number()?
            };
            sp.commit().await?;
            taken
                .entry((row.customer_id, row.zoom_account_id))
                .or_default()
                .push((row.release_id, number));
        }
        let mut count = 0;
        for ((customer, account), lines) in taken {
            let numbers: Vec<Number> = lines.iter().map(|(_, n)| n.clone()).collect();
            let release_of: HashMap<NumberId, Uuid> =
                lines.iter().map(|(r, n)| (n.id, *r)).collect();
            for (job, ids) in cut_release_jobs(
                CustomerId::from_uuid(customer),
                &ZoomAccountId::from_trusted(account.clone()),
                &numbers,
                now,
            ) {
                insert_job(&mut tx, &job).await?;
                for id in ids {
                    let nid = id.as_uuid();
                    let rid = release_of.get(&id).copied().unwrap_or_default();
                    sqlx::query!(
                        "UPDATE release_numbers SET job_id = $1 WHERE release_id = $2 AND number_id = $3 AND state = 'releasing'",
                        job.id,
                        rid,
                        nid
                    )
                    .execute(&mut *tx)
                    .await?;
                    count += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// Customers whose contract ended (a contract-end release due by `now`, with numbers released
    /// and none still open) and whose Zoom link, made before that date, is still live: (customer,
    /// Zoom account). Their link ends.
    pub async fn contract_ends_done(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(CustomerId, ZoomAccountId)>> {
        let now = whole_seconds(now);
        let rows = sqlx::query!(
            r#"SELECT DISTINCT r.customer_id AS "customer_id!: Uuid", z.zoom_account_id AS "zoom_account_id!"
               FROM releases r JOIN zoom_links z ON z.customer_id = r.customer_id AND z.state = 'linked' AND z.linked_at <= r.due_at
               WHERE r.kind = 'contract_end' AND r.due_at <= $1
                 AND EXISTS (SELECT 1 FROM release_numbers l WHERE l.release_id = r.id AND l.state = 'released')
                 AND NOT EXISTS (SELECT 1 FROM release_numbers l WHERE l.release_id = r.id AND l.state IN ('waiting', 'releasing', 'refused'))"#,
            now
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    CustomerId::from_uuid(r.customer_id),
                    ZoomAccountId::from_trusted(r.zoom_account_id),
                )
            })
            .collect())
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
