//! The job runner: workers drain the outbox that carries number changes to Zoom.
//!
//! A worker claims a job with a short lease and commits; calls Zoom with no transaction or lock held;
//! then records the answer in a new transaction, only if it still holds the lease. While the job runs
//! a heartbeat renews the lease, so a slow call never loses it; a worker that dies stops renewing and
//! its job is taken again once the lease runs out (seconds, not minutes), and a clean stop hands its
//! jobs back at once ([`Workers::shutdown`]). Handlers are idempotent (a number Zoom already has
//! converges). Every call to Zoom first takes a slot of the account's request budget, shared in the
//! database by every worker of every instance; transient failures retry with backoff and jitter
//! ([`RetryPolicy`]); Zoom's 429 moves the account's budget and `not_before` so every worker on every
//! instance waits.
//!
//! [`RetryPolicy`]: domain::onboarding::RetryPolicy

use crate::onboarding::{ZoomCallError, ZoomSetup};
use crate::{App, AppError, Result};
use domain::onboarding::{Job, JobEnd, JobKind, JobState, PushResult};
use domain::reconcile::Thresholds;
use domain::{Actor, NumberState, PhoneNumber, ZoomAccountId};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;
use zoom::{Outcome, ZoomError};

/// How long a job of a link Zoom no longer accepts waits before it looks again.
const REAUTH_RECHECK: time::Duration = time::Duration::hours(1);

/// How a job run ended, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub job: uuid::Uuid,
    pub kind: JobKind,
    pub end: JobEnd,
}

/// What an operator reads on a push job for a customer without a Zoom trunk.
pub const NO_TRUNK: &str = "the customer has no Zoom trunk, so its numbers cannot be pushed to Zoom: bind it to one (its page in the operator portal, or `peerex customers set-trunk`), then retry this job";

/// Background workers; dropping this stops them at once (a job cut short is retaken when its lease
/// runs out); [`Workers::shutdown`] also hands their jobs back.
pub struct Workers {
    handles: Vec<tokio::task::JoinHandle<()>>,
    names: Vec<String>,
    app: Option<App>,
}

impl Workers {
    pub fn stop(self) {}

    /// The workers' names: a job a worker has claimed names it as its lease owner.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A clean stop: the workers stop where they are (a Zoom call under way is abandoned; handlers
    /// converge when the job runs again) and the jobs they held are handed back, pending again at
    /// once, so another instance takes them now rather than when the lease would have run out.
    /// Returns how many jobs were handed back.
    pub async fn shutdown(mut self) -> u64 {
        for h in &self.handles {
            h.abort();
        }
        for h in self.handles.drain(..) {
            let _ = h.await;
        }
        let Some(app) = self.app.take() else { return 0 };
        let mut handed = 0;
        for name in &self.names {
            match app.store.hand_back_job(name, app.now()).await {
                Ok(n) => handed += n,
                Err(e) => {
                    tracing::warn!(worker = %name, error = %e, "cannot hand its job back; it is retaken when its lease runs out")
                }
            }
        }
        if handed > 0 {
            tracing::info!(jobs = handed, "jobs handed back for another instance to take");
        }
        handed
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

impl App {
    /// Claims one due job as `worker`, runs it and records the outcome. `None` when nothing is due.
    pub async fn run_one_job(&self, worker: &str) -> Result<Option<JobRun>> {
        let Some(z) = self.zoom.as_deref() else { return Ok(None) };
        let now = self.now();
        let lease = time::Duration::try_from(z.lease).unwrap_or(time::Duration::seconds(15));
        let Some(job) = self.store.claim_job(worker, now + lease, now).await? else {
            return Ok(None);
        };
        let span = tracing::info_span!("job", id = %job.id, kind = job.kind.as_str(), attempt = job.attempts, account = job.zoom_account.as_ref().map_or("", ZoomAccountId::as_str));
        let work = async {
            let end = match job.kind {
                // A push that repairs drift the reconciler found (see `reconcile`).
                JobKind::PushNumbers if job.payload.repair.is_some() => {
                    self.run_repair(z, &job).await
                }
                JobKind::PushNumbers => self.run_push(z, &job, worker).await,
                JobKind::PollNumbers => self.run_poll(z, &job, worker).await,
                JobKind::ReleaseNumbers => self.run_release(z, &job, worker).await,
            };
            match end {
                Ok(Some(end)) => {
                    self.record_end(z, &job, worker, &end).await?;
                    Ok::<_, crate::AppError>(end)
                }
                // The handler recorded its outcome with its results.
                Ok(None) => Ok(JobEnd::Done),
                Err(e) => {
                    let end = self.failure(z, &job, e).await?;
                    self.record_end(z, &job, worker, &end).await?;
                    Ok(end)
                }
            }
        }
        .instrument(span);
        let end = tokio::select! {
            biased;
            end = work => end?,
            () = self.heartbeat(z, &job, worker) => {
                tracing::warn!(job = %job.id, "lease lost (another worker has taken the job); this run stops");
                JobEnd::Retry { at: self.now(), error: "lease lost to another worker".into() }
            }
        };
        if let JobEnd::Failed { error } = &end {
            tracing::warn!(job = %job.id, %error, "job failed; an operator can retry it");
        }
        Ok(Some(JobRun { job: job.id, kind: job.kind, end }))
    }

    /// Runs every job that is due now, one after another, until none is left (jobs scheduled for
    /// later, like retries and the next poll, stay). For deterministic tests.
    pub async fn run_pending_jobs(&self) -> Result<Vec<JobRun>> {
        let mut runs = Vec::new();
        while let Some(run) = self.run_one_job("inline").await? {
            runs.push(run);
            if runs.len() > 100_000 {
                break;
            }
        }
        Ok(runs)
    }

    /// Renews `worker`'s lease on `job` every third of the lease until the lease is lost (the job
    /// ended, or another worker took it); never returns while the lease is held.
    async fn heartbeat(&self, z: &ZoomSetup, job: &Job, worker: &str) {
        let every = (z.lease / 3).max(Duration::from_millis(50));
        let lease = time::Duration::try_from(z.lease).unwrap_or(time::Duration::seconds(15));
        loop {
            tokio::time::sleep(every).await;
            match self.store.extend_job_lease(job.id, worker, self.now() + lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "job heartbeat: database error; trying again")
                }
            }
        }
    }

    /// Starts the configured number of background workers (none without Zoom).
    pub fn spawn_workers(&self) -> Workers {
        let count = self.zoom.as_deref().map_or(0, |z| z.workers);
        let instance = uuid::Uuid::now_v7().simple().to_string();
        let names: Vec<String> = (0..count).map(|i| format!("{}-{i}", &instance[20..])).collect();
        let handles = names
            .iter()
            .map(|worker| {
                let app = self.clone();
                let worker = worker.clone();
                tokio::spawn(async move {
                    loop {
                        match app.run_one_job(&worker).await {
                            Ok(Some(_)) => continue,
                            Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
                            Err(e) => {
                                tracing::error!(error = %e, "job worker: database error; pausing");
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Workers { handles, names, app: Some(self.clone()) }
    }

    async fn record_end(
        &self,
        _z: &ZoomSetup,
        job: &Job,
        worker: &str,
        end: &JobEnd,
    ) -> Result<()> {
        if !self.store.finish_job(job.id, worker, end, self.now()).await? {
            tracing::warn!(job = %job.id, "lease lost before the outcome was recorded; another worker has the job");
        }
        Ok(())
    }

    /// What a failed call means for the job: wait for Zoom's rate limit, retry with backoff, or give up.
    async fn failure(&self, z: &ZoomSetup, job: &Job, e: ZoomCallError) -> Result<JobEnd> {
        let now = self.now();
        Ok(match e {
            ZoomCallError::NoLink | ZoomCallError::NotConfigured => JobEnd::Done,
            // Nothing can reach Zoom for this account until the app is authorized again; a new
            // install of the account brings waiting jobs forward (`renew_link_tokens`).
            e @ ZoomCallError::NeedsReauth { .. } => {
                JobEnd::Retry { at: now + REAUTH_RECHECK, error: e.to_string() }
            }
            ZoomCallError::Zoom(ZoomError::RateLimited { retry_after }) => {
                let at = now
                    + time::Duration::try_from(retry_after.max(Duration::from_millis(200)))
                        .unwrap_or(time::Duration::seconds(1));
                if let Some(account) = &job.zoom_account {
                    self.store.set_not_before(account, at).await?;
                }
                // Not an attempt that failed: Zoom asked us to wait.
                JobEnd::Retry { at, error: format!("Zoom's rate limit: waiting until {}", hms(at)) }
            }
            ZoomCallError::Zoom(e) if e.is_retryable() && !z.retry.gives_up(job.attempts) => {
                let wait = z.retry.backoff(job.attempts, rand::random::<f64>(), e.retry_after());
                let at = now + time::Duration::try_from(wait).unwrap_or(time::Duration::seconds(1));
                JobEnd::Retry { at, error: format!("{e}; retrying at {}", hms(at)) }
            }
            ZoomCallError::Zoom(e) => JobEnd::Failed { error: e.to_string() },
            ZoomCallError::Budget(at) => {
                if let Some(account) = &job.zoom_account {
                    self.store.set_not_before(account, at).await?;
                }
                JobEnd::Retry { at, error: format!("Zoom's rate limit: waiting until {}", hms(at)) }
            }
            ZoomCallError::Keys(e) => JobEnd::Failed { error: e.to_string() },
            ZoomCallError::Db(e) => return Err(e.into()),
        })
    }

    /// Pushes the job's numbers that are still `provisioning`; Zoom's per-number answers are recorded
    /// with the job's end in one transaction.
    async fn run_push(
        &self,
        z: &ZoomSetup,
        job: &Job,
        worker: &str,
    ) -> std::result::Result<Option<JobEnd>, ZoomCallError> {
        let Some(account) = job.zoom_account.as_ref() else {
            return Ok(Some(JobEnd::Failed { error: "push job without a Zoom account".into() }));
        };
        let Some(link) = self.store.live_link_by_account(account).await? else {
            return Err(ZoomCallError::NoLink);
        };
        let pushed: Vec<PhoneNumber> = self
            .store
            .numbers_in(&job.payload.numbers)
            .await?
            .into_iter()
            .filter(|n| {
                n.state == NumberState::Provisioning && n.customer_id == Some(link.customer_id)
            })
            .map(|n| n.e164)
            .collect();
        let numbers: Vec<String> = pushed.iter().map(PhoneNumber::to_string).collect();
        let by = Actor::System("zoom-push".into());
        if numbers.is_empty() {
            self.store.complete_push(job.id, worker, &[], &by, self.now()).await?;
            return Ok(None);
        }
        // Zoom would put the numbers on whatever trunk it is told: without the customer's own there
        // is no right one, and the operator has to choose.
        let trunk = match self.store.get_customer(link.customer_id).await? {
            Some(c) => match c.zoom_trunk {
                Some(t) => t,
                None => return Ok(Some(JobEnd::Failed { error: NO_TRUNK.into() })),
            },
            None => return Err(ZoomCallError::NoLink),
        };
        let mut token = self.access_token(&link, None).await?;
        self.zoom_slot(z, account).await?;
        let mut answer = z.client.add_peering_numbers(&token, trunk.as_str(), &numbers).await;
        if let Err(ZoomError::Unauthorized { .. }) = &answer {
            token = self.access_token(&link, Some(&token)).await?;
            self.zoom_slot(z, account).await?;
            answer = z.client.add_peering_numbers(&token, trunk.as_str(), &numbers).await;
        }
        let stats = &z.stats;
        let count =
            |c: &std::sync::atomic::AtomicU64| c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        count(&stats.calls);
        if matches!(answer, Err(ZoomError::RateLimited { .. })) {
            count(&stats.rate_limited);
        }
        let sent: std::collections::HashMap<&str, &PhoneNumber> =
            pushed.iter().map(|n| (n.as_str(), n)).collect();
        let results: Vec<(PhoneNumber, PushResult)> = answer?
            .into_iter()
            .filter_map(|r| {
                let result = match r.outcome {
                    Outcome::Done => {
                        count(&stats.added);
                        PushResult::Accepted
                    }
                    Outcome::AlreadyDone => {
                        count(&stats.already_done);
                        PushResult::Accepted
                    }
                    Outcome::Refused { message, .. } => {
                        count(&stats.refused);
                        PushResult::Refused(format!("Zoom: {message}"))
                    }
                };
                // Zoom answers for the numbers it was sent, as they were written.
                Some(((*sent.get(r.phone_number.as_str())?).clone(), result))
            })
            .collect();
        if !self.store.complete_push(job.id, worker, &results, &by, self.now()).await? {
            tracing::warn!(job = %job.id, "lease lost before Zoom's answer was recorded; the job will be retaken and converge");
        }
        Ok(None)
    }

    /// Lists the account's peering numbers (every page) to learn which are assigned to users.
    async fn run_poll(
        &self,
        z: &ZoomSetup,
        job: &Job,
        worker: &str,
    ) -> std::result::Result<Option<JobEnd>, ZoomCallError> {
        let Some(account) = job.zoom_account.as_ref() else {
            return Ok(Some(JobEnd::Failed { error: "poll job without a Zoom account".into() }));
        };
        let Some(link) = self.store.live_link_by_account(account).await? else {
            return Err(ZoomCallError::NoLink);
        };
        let mut token = self.access_token(&link, None).await?;
        let mut seen = Vec::new();
        let mut listed = Vec::new();
        let mut page_token: Option<String> = None;
        let mut refreshed = false;
        loop {
            self.zoom_slot(z, account).await?;
            let page = match z.client.list_peering_numbers(&token, page_token.as_deref()).await {
                Err(ZoomError::Unauthorized { .. }) if !refreshed => {
                    refreshed = true;
                    token = self.access_token(&link, Some(&token)).await?;
                    continue;
                }
                other => other?,
            };
            for n in page.numbers {
                let Some(number) = PhoneNumber::listed(&n.phone_number) else { continue };
                listed.push((number.clone(), crate::number_facts::listing(&n.capabilities)));
                seen.push((number, n.assigned));
            }
            match page.next_page_token {
                Some(t) => page_token = Some(t),
                None => break,
            }
        }
        let now = self.now();
        let next =
            now + time::Duration::try_from(z.poll_every).unwrap_or(time::Duration::minutes(5));
        self.store.complete_poll(job.id, worker, link.customer_id, &seen, now, next).await?;
        // What the numbers can do is shown, never acted on: the poll is done (and rescheduled)
        // whether or not it is kept this time; the next poll keeps it.
        if let Err(e) = self.store.record_zoom_listing(link.customer_id, &listed, now).await {
            tracing::warn!(customer = %link.customer_id, error = %e, "Zoom's capability fields not kept this poll");
        }
        Ok(None)
    }
}

pub(crate) fn hms(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!("[hour]:[minute]:[second] UTC")).unwrap_or_default()
}

/// The outbox as operators watch it.
impl App {
    /// How many jobs are in each state (states with none are left out).
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        Ok(self.store.job_counts().await?)
    }

    /// How many jobs are still waiting or running past the threshold after which a number is
    /// reported stuck (`zoom.reconcile_stuck_minutes`): the alarm for an outbox that no longer drains.
    pub async fn stuck_jobs(&self) -> Result<i64> {
        let after = self.zoom.as_deref().map_or_else(
            || Thresholds::default().stuck_after,
            |z| z.reconcile.thresholds.stuck_after,
        );
        Ok(self.store.stuck_job_count(self.now() - after).await?)
    }

    /// Jobs newest first (at most `limit`), all or those in `state`.
    pub async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>> {
        Ok(self.store.list_jobs(state, limit).await?)
    }

    /// Runs a failed job again from its first attempt; refused for a job that is not failed (any
    /// more, or at all).
    pub async fn retry_job(&self, id: uuid::Uuid, by: &Actor) -> Result<()> {
        if !self.store.retry_job(id, self.now()).await? {
            return Err(AppError::Refused(
                "only a failed job can be retried; this one is not failed (any more)".into(),
            ));
        }
        tracing::info!(job = %id, by = %by, "job retried");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onboarding::ZoomCallError;
    use domain::onboarding::ZoomLink;

    /// Workers run in spawned tasks: every future they await must be `Send` (checked when compiled).
    #[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
    fn worker_futures_are_send(
        app: &App,
        z: &'static ZoomSetup,
        job: &'static Job,
        e: ZoomCallError,
        link: &'static ZoomLink,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(app.run_one_job("w"));
        is_send(app.run_push(z, job, "w"));
        is_send(app.run_poll(z, job, "w"));
        is_send(app.failure(z, job, e));
        is_send(app.access_token(link, None));
        is_send(app.confirm_install(
            domain::CustomerId::new(),
            "cookie",
            "account",
            &Actor::System("t".into()),
        ));
        is_send(app.begin_install("code"));
    }

    #[test]
    fn hms_reads_as_utc() {
        assert_eq!(hms(time::macros::datetime!(2026-11-23 10:04:05 UTC)), "10:04:05 UTC");
    }
}
