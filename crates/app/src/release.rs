//! Releases approved by the customer (DESIGN.md §2 "Release", issue 6): the carrier starts the
//! release of some of a customer's active numbers (`start_release`), the customer sees them in the
//! portal's "Wait for Release" tab with what Zoom says of each (`wait_for_release`), approves some
//! (`approve_release`), and a job removes them from Zoom (`run_release` → `on_zoom_result`): removed
//! numbers rest in quarantine (`aging`), refused ones wait again with the reason. A periodic sweep
//! (`release_tick`) ends quarantines and converges releases whose job ended without an answer.
//!
//! Zoom is called with no transaction open; the approval and its jobs are one transaction (outbox).

use crate::onboarding::{ZoomCallError, ZoomSetup};
use crate::{App, AppError, Result};
use domain::onboarding::{Job, JobEnd, LinkState};
use domain::release::{
    refusal_message, ApproveRefused, CarrierRelease, Release, ReleaseKind, ReleaseLine,
    RemoveResult, StartRefused, RETURNED_REASON,
};
use domain::search::NumberQuery;
use domain::{Actor, CustomerId, NumberId, NumberState, PhoneNumber};
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;
use zoom::{Outcome, ZoomError};

/// Most numbers one release takes.
pub const MAX_RELEASE: usize = 100_000;

/// What a number left `releasing` by a job that ended without Zoom's answer says to the customer.
pub const UNFINISHED: &str = "The removal from Zoom did not finish; release it again";

/// Why a Zoom link ended with the customer's contract.
pub const CONTRACT_ENDED: &str = "contract ended";

/// How long the "Wait for Release" tab keeps showing released numbers.
const RESULTS_SHOWN_FOR: time::Duration = time::Duration::days(7);

/// How long the tab waits for Zoom before showing the last known answer.
const ZOOM_LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Which of a customer's numbers an operator releases.
#[derive(Clone, Debug)]
pub enum Selection {
    /// Numbers in E.164.
    List(Vec<String>),
    /// The customer's active numbers matching a filter.
    Filter { prefix: Option<String>, tag: Option<String>, region: Option<String> },
    /// A CSV: a column named `e164` or `number` when there is a header, else the first column.
    Csv(String),
}

/// What Zoom says of the numbers on the "Wait for Release" tab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoomLook {
    /// Asked just now; numbers Zoom did not list are not in the customer's Zoom account.
    Fresh { at: OffsetDateTime, listed: HashMap<PhoneNumber, bool> },
    /// Zoom could not be asked; each line shows what was last seen.
    Unreachable { error: String },
    /// Nothing is waiting, or the account is not linked: Zoom was not asked.
    NotAsked,
}

/// The customer's "Wait for Release" tab.
#[derive(Clone, Debug)]
pub struct WaitForRelease {
    pub lines: Vec<ReleaseLine>,
    pub zoom: ZoomLook,
}

impl WaitForRelease {
    /// Whether a removal is under way (the page refreshes itself until it ends).
    pub fn running(&self) -> bool {
        self.lines.iter().any(|l| l.state == domain::release::LineState::Releasing)
    }
}

impl App {
    /// Starts the release of some of `customer`'s active numbers with `reason`: they go
    /// `release_pending` (calls still route) and wait for the customer's approval.
    pub async fn start_release(
        &self,
        customer: CustomerId,
        selection: Selection,
        reason: &str,
        by: &Actor,
    ) -> Result<Release> {
        self.customer(customer).await?;
        domain::release::check_reason(reason).map_err(|e| AppError::invalid("reason", e))?;
        let e164s = match selection {
            Selection::List(raw) => parse_numbers(
                "numbers",
                raw.iter().map(String::as_str).enumerate().map(|(i, s)| (i + 1, s)),
            )?,
            Selection::Csv(text) => {
                parse_numbers("csv", csv_numbers(&text)?.iter().map(|(row, s)| (*row, s.as_str())))?
            }
            Selection::Filter { prefix, tag, region } => {
                self.active_matching(customer, prefix, tag, region).await?
            }
        };
        if e164s.is_empty() {
            return Err(AppError::invalid(
                "numbers",
                "no number to release: give at least one of the customer's active numbers",
            ));
        }
        if e164s.len() > MAX_RELEASE {
            return Err(AppError::invalid(
                "numbers",
                format!("{} numbers; one release takes at most {MAX_RELEASE}", e164s.len()),
            ));
        }
        match self.store.start_release(customer, &e164s, reason, by, self.now()).await? {
            Ok(r) => {
                tracing::info!(release = %r.id, customer = %customer, numbers = r.waiting, by = %by, "release started; waiting for the customer");
                Ok(r)
            }
            Err(StartRefused::Empty) => {
                Err(AppError::invalid("numbers", "give at least one number to release"))
            }
            Err(StartRefused::NoReason) => {
                Err(AppError::invalid("reason", "say why the numbers are released"))
            }
            Err(StartRefused::Numbers(problems) | StartRefused::Busy(problems)) => {
                Err(AppError::invalid("numbers", problems.join("; ")))
            }
        }
    }

    /// Another carrier won `numbers` of `customer`: they wait (still routing) until `due`, then
    /// stop routing and are removed from Zoom without the customer's approval. The customer sees
    /// why ("Ported out to <carrier> on <date>").
    pub async fn start_port_out(
        &self,
        customer: CustomerId,
        numbers: &[String],
        gaining_carrier: &str,
        due: time::Date,
        by: &Actor,
    ) -> Result<Release> {
        self.customer(customer).await?;
        domain::release::check_carrier(gaining_carrier)
            .map_err(|e| AppError::invalid("gaining_carrier", e))?;
        let e164s = parse_numbers(
            "numbers",
            numbers.iter().map(String::as_str).enumerate().map(|(i, s)| (i + 1, s)),
        )?;
        let reason = domain::release::port_out_reason(gaining_carrier, due);
        let carrier = CarrierRelease {
            kind: ReleaseKind::PortOut,
            due_at: due.midnight().assume_utc(),
            gaining_carrier: Some(gaining_carrier.trim().to_owned()),
        };
        self.start_without_approval(customer, e164s, &reason, carrier, by).await
    }

    /// The customer's contract ends on `due`: all its active numbers wait (still routing) until
    /// then, stop routing and leave Zoom; once they are all out, its Zoom link ends.
    pub async fn start_contract_end(
        &self,
        customer: CustomerId,
        due: time::Date,
        by: &Actor,
    ) -> Result<Release> {
        self.customer(customer).await?;
        let e164s = self.active_matching(customer, None, None, None).await?;
        let reason = domain::release::contract_end_reason(due);
        let carrier = CarrierRelease {
            kind: ReleaseKind::ContractEnd,
            due_at: due.midnight().assume_utc(),
            gaining_carrier: None,
        };
        self.start_without_approval(customer, e164s, &reason, carrier, by).await
    }

    /// The customer gave `numbers` back in Zoom ("Returned"): those still active are taken back now
    /// through the same path (removed from Zoom, then quarantine). Returns the release, if any.
    pub async fn take_back_returned(
        &self,
        customer: CustomerId,
        numbers: Vec<PhoneNumber>,
    ) -> Result<Option<Release>> {
        let by = Actor::System("zoom-returned".into());
        let mut active = Vec::new();
        for n in self.store.numbers_in(&numbers).await? {
            if n.state == NumberState::Active && n.customer_id == Some(customer) {
                active.push(n.e164);
            }
        }
        if active.is_empty() {
            return Ok(None);
        }
        let carrier = CarrierRelease {
            kind: ReleaseKind::Returned,
            due_at: self.now(),
            gaining_carrier: None,
        };
        let now = self.now();
        match self
            .store
            .start_carrier_release(customer, &active, RETURNED_REASON, &carrier, &by, now)
            .await?
        {
            Ok(r) => {
                tracing::info!(release = %r.id, customer = %customer, numbers = r.waiting, "numbers returned in Zoom: taken back");
                self.store.take_due_releases(Some(r.id), now, 10_000, &by, now).await?;
                Ok(Some(r))
            }
            // Moved meanwhile: the next poll sees them again.
            Err(e) => {
                tracing::info!(customer = %customer, refused = %e, "returned numbers not taken back this time");
                Ok(None)
            }
        }
    }

    async fn start_without_approval(
        &self,
        customer: CustomerId,
        e164s: Vec<PhoneNumber>,
        reason: &str,
        carrier: CarrierRelease,
        by: &Actor,
    ) -> Result<Release> {
        if e164s.is_empty() {
            return Err(AppError::invalid(
                "numbers",
                "no number to release: give at least one of the customer's active numbers",
            ));
        }
        if e164s.len() > MAX_RELEASE {
            return Err(AppError::invalid(
                "numbers",
                format!("{} numbers; one release takes at most {MAX_RELEASE}", e164s.len()),
            ));
        }
        let now = self.now();
        match self.store.start_carrier_release(customer, &e164s, reason, &carrier, by, now).await? {
            Ok(r) => {
                tracing::info!(release = %r.id, kind = %r.kind, customer = %customer, numbers = r.waiting, due = %carrier.due_at, by = %by, "release without approval started");
                if carrier.due_at <= now {
                    self.store.take_due_releases(Some(r.id), now, 10_000, by, now).await?;
                }
                Ok(r)
            }
            Err(StartRefused::Empty) => {
                Err(AppError::invalid("numbers", "give at least one number to release"))
            }
            Err(StartRefused::NoReason) => Err(AppError::invalid("reason", "say why")),
            Err(StartRefused::Numbers(problems)) => {
                Err(AppError::invalid("numbers", problems.join("; ")))
            }
            Err(StartRefused::Busy(problems)) => {
                Err(AppError::Conflict { field: "numbers", message: problems.join("; ") })
            }
        }
    }

    /// An operator forces a release without approval now: its numbers still waiting stop routing
    /// and are removed from Zoom, and those Zoom refused are tried again at once. Returns how many
    /// numbers were sent to Zoom.
    pub async fn force_release(&self, id: Uuid, by: &Actor) -> Result<usize> {
        let (r, _) = self.release(id).await?;
        if r.kind.needs_approval() {
            return Err(AppError::Conflict {
                field: "kind",
                message: "this release waits for the customer's approval; it cannot be forced"
                    .into(),
            });
        }
        let now = self.now();
        let n = self.store.take_due_releases(Some(id), now, 10_000, by, now).await?;
        tracing::info!(release = %id, numbers = n, by = %by, "release forced now");
        Ok(n)
    }

    async fn active_matching(
        &self,
        customer: CustomerId,
        prefix: Option<String>,
        tag: Option<String>,
        region: Option<String>,
    ) -> Result<Vec<PhoneNumber>> {
        let prefix = match prefix.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p)
                if p.starts_with('+')
                    && p.len() > 1
                    && p[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(p.to_owned())
            }
            Some(p) => {
                return Err(AppError::invalid(
                    "prefix",
                    format!("{p:?} is not an E.164 prefix like +1555"),
                ))
            }
            None => None,
        };
        let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut query = NumberQuery {
            prefix,
            state: Some(NumberState::Active),
            customer_id: Some(customer),
            tag: clean(tag),
            region: clean(region),
            after: None,
            limit: 1000,
            ..NumberQuery::default()
        };
        let mut found = Vec::new();
        loop {
            let page = self.store.search_numbers(&query).await?;
            let last = page.last().map(|n| n.e164.to_string());
            let full = page.len() >= query.limit as usize;
            found.extend(page.into_iter().map(|n| n.e164));
            match last {
                Some(last) if full && found.len() <= MAX_RELEASE => query.after = Some(last),
                _ => return Ok(found),
            }
        }
    }

    /// Withdraws a release: its numbers still waiting (or refused) go back to `active`. Returns how many.
    pub async fn withdraw_release(&self, id: Uuid, by: &Actor) -> Result<usize> {
        let n = self.store.withdraw_release(id, by, self.now()).await?.ok_or(AppError::NotFound)?;
        tracing::info!(release = %id, withdrawn = n, by = %by, "release withdrawn");
        Ok(n)
    }

    /// Releases newest first, a customer's or everyone's.
    pub async fn releases(&self, customer: Option<CustomerId>, limit: u32) -> Result<Vec<Release>> {
        Ok(self.store.list_releases(None, customer, limit).await?)
    }

    /// One release and its numbers.
    pub async fn release(&self, id: Uuid) -> Result<(Release, Vec<ReleaseLine>)> {
        let r = self
            .store
            .list_releases(Some(id), None, 1)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)?;
        let lines = self.store.release_lines(id).await?;
        Ok((r, lines))
    }

    /// The lines of the customer's "Wait for Release" tab as last recorded, without asking Zoom.
    pub async fn release_lines_shown(&self, customer: CustomerId) -> Result<Vec<ReleaseLine>> {
        Ok(self.store.customer_release_lines(customer, self.now() - RESULTS_SHOWN_FOR).await?)
    }

    /// The customer's "Wait for Release" tab: its numbers waiting (with what Zoom says of each, asked
    /// now), being released, refused, and released lately.
    pub async fn wait_for_release(&self, customer: CustomerId) -> Result<WaitForRelease> {
        let now = self.now();
        let lines = self.store.customer_release_lines(customer, now - RESULTS_SHOWN_FOR).await?;
        let waiting = lines.iter().any(|l| l.state.approvable());
        let zoom = if waiting { self.look_in_zoom(customer).await? } else { ZoomLook::NotAsked };
        // What was just recorded shows on the lines too.
        let lines = if matches!(zoom, ZoomLook::Fresh { .. }) {
            self.store.customer_release_lines(customer, now - RESULTS_SHOWN_FOR).await?
        } else {
            lines
        };
        Ok(WaitForRelease { lines, zoom })
    }

    /// Lists the customer's numbers in Zoom now to learn which are assigned to users, and records it.
    async fn look_in_zoom(&self, customer: CustomerId) -> Result<ZoomLook> {
        let Some(z) = self.zoom.as_deref() else { return Ok(ZoomLook::NotAsked) };
        let Some(link) =
            self.store.zoom_link(customer).await?.filter(|l| l.state == LinkState::Linked)
        else {
            return Ok(ZoomLook::NotAsked);
        };
        // Page by page, each call taking a slot of the account's shared budget.
        let ask = async {
            let mut token = self.access_token(&link, None).await?;
            let (mut all, mut next, mut refreshed, mut restarted) =
                (Vec::new(), None::<String>, false, false);
            loop {
                self.zoom_slot(z, &link.zoom_account_id).await?;
                match z.client.list_peering_numbers(&token, next.as_deref()).await {
                    Ok(page) => {
                        all.extend(page.numbers);
                        match page.next_page_token {
                            Some(t) => next = Some(t),
                            None => return Ok::<_, ZoomCallError>(all),
                        }
                    }
                    Err(ZoomError::Unauthorized { .. }) if !refreshed => {
                        refreshed = true;
                        token = self.access_token(&link, Some(&token)).await?;
                    }
                    // The page token expired on the way: list again from the start, once.
                    Err(ZoomError::Refused { status: 400, code: 300, .. })
                        if next.is_some() && !restarted =>
                    {
                        (all, next, restarted) = (Vec::new(), None, true);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let listed = match tokio::time::timeout(ZOOM_LOOK_TIMEOUT, ask).await {
            Ok(Ok(listed)) => listed,
            Ok(Err(ZoomCallError::Db(e))) => return Err(e.into()),
            Ok(Err(e)) => {
                tracing::warn!(customer = %customer, error = %e, "Wait for Release: cannot ask Zoom; showing the last known answer");
                return Ok(ZoomLook::Unreachable { error: e.to_string() });
            }
            Err(_) => return Ok(ZoomLook::Unreachable { error: ZoomError::Timeout.to_string() }),
        };
        let now = self.now();
        let listed: Vec<_> = listed
            .into_iter()
            .filter_map(|n| Some((PhoneNumber::listed(&n.phone_number)?, n)))
            .collect();
        let capabilities: Vec<_> = listed
            .iter()
            .map(|(number, n)| (number.clone(), crate::number_facts::listing(&n.capabilities)))
            .collect();
        let seen: Vec<(PhoneNumber, bool)> =
            listed.into_iter().map(|(number, n)| (number, n.assigned)).collect();
        self.store.record_zoom_presence(customer, &seen, now).await?;
        // Shown, never acted on: a failure to keep them does not cost the customer the page.
        if let Err(e) = self.store.record_zoom_listing(customer, &capabilities, now).await {
            tracing::warn!(customer = %customer, error = %e, "Zoom's capability fields not kept");
        }
        Ok(ZoomLook::Fresh { at: now, listed: seen.into_iter().collect() })
    }

    /// The customer approves the release of `numbers` (ids of its numbers waiting for release): they
    /// go `releasing` and jobs remove them from Zoom. An id that is not one of them is `NotFound` and
    /// nothing changes. Returns how many were approved.
    pub async fn approve_release(
        &self,
        customer: CustomerId,
        numbers: &[NumberId],
        by: &Actor,
    ) -> Result<usize> {
        match self.store.approve_release(customer, numbers, by, self.now()).await? {
            Ok(n) => {
                tracing::info!(customer = %customer, numbers = n, by = %by, "release approved by the customer");
                Ok(n)
            }
            Err(ApproveRefused::NotFound) => Err(AppError::NotFound),
            Err(e @ (ApproveRefused::Empty | ApproveRefused::NoLink)) => {
                Err(AppError::Refused(e.to_string()))
            }
        }
    }

    /// When a removed number may be sold again.
    fn quarantine_until(&self, now: OffsetDateTime) -> OffsetDateTime {
        now + self.settings.release_quarantine
    }

    /// Removes a release job's numbers (those still `releasing`) from Zoom and records each answer.
    /// Transient failures retry with backoff; when Zoom cannot be reached for good, or refuses the
    /// whole call, every number goes back to waiting with the reason: none is left `releasing`.
    pub(crate) async fn run_release(
        &self,
        z: &ZoomSetup,
        job: &Job,
        worker: &str,
    ) -> std::result::Result<Option<JobEnd>, ZoomCallError> {
        let by = Actor::System("zoom-release".into());
        let Some(customer) = job.customer_id else {
            return Ok(Some(JobEnd::Failed { error: "release job without a customer".into() }));
        };
        let numbers: Vec<PhoneNumber> = self
            .store
            .numbers_in(&job.payload.numbers)
            .await?
            .into_iter()
            .filter(|n| n.state == NumberState::Releasing && n.customer_id == Some(customer))
            .map(|n| n.e164)
            .collect();
        if numbers.is_empty() {
            self.on_zoom_result(job, worker, &[], &by).await?;
            return Ok(None);
        }
        let link = match job.zoom_account.as_ref() {
            Some(account) => self
                .store
                .live_link_by_account(account)
                .await?
                .filter(|l| l.customer_id == customer),
            None => None,
        };
        let Some(link) = link else {
            let why = "Your Zoom account is not linked any more, so the number could not be removed from Zoom; add the app in Zoom, then release it again";
            let all: Vec<_> =
                numbers.iter().map(|n| (n.clone(), RemoveResult::Refused(why.into()))).collect();
            self.on_zoom_result(job, worker, &all, &by).await?;
            return Ok(None);
        };
        let written: Vec<String> = numbers.iter().map(PhoneNumber::to_string).collect();
        let answer = async {
            let mut token = self.access_token(&link, None).await?;
            self.zoom_slot(z, &link.zoom_account_id).await?;
            let mut answer = z.client.remove_peering_numbers(&token, &written).await;
            if let Err(ZoomError::Unauthorized { .. }) = &answer {
                token = self.access_token(&link, Some(&token)).await?;
                self.zoom_slot(z, &link.zoom_account_id).await?;
                answer = z.client.remove_peering_numbers(&token, &written).await;
            }
            Ok::<_, ZoomCallError>(answer?)
        }
        .await;
        let results: Vec<(PhoneNumber, RemoveResult)> = match answer {
            Ok(results) => {
                let mut by_number: HashMap<String, RemoveResult> = results
                    .into_iter()
                    .map(|r| {
                        let result = match r.outcome {
                            Outcome::Done | Outcome::AlreadyDone => RemoveResult::Removed,
                            Outcome::Refused { message, .. } => {
                                RemoveResult::Refused(refusal_message(&message))
                            }
                        };
                        (r.phone_number, result)
                    })
                    .collect();
                numbers
                    .iter()
                    .map(|n| {
                        (
                            n.clone(),
                            by_number.remove(n.as_str()).unwrap_or_else(|| {
                                RemoveResult::Refused(
                                    "Zoom gave no answer for this number; release it again".into(),
                                )
                            }),
                        )
                    })
                    .collect()
            }
            Err(ZoomCallError::Db(e)) => return Err(ZoomCallError::Db(e)),
            // Zoom asked us to wait: not a failed attempt (the runner moves the account's not_before).
            Err(e @ ZoomCallError::Zoom(ZoomError::RateLimited { .. })) => return Err(e),
            Err(e @ ZoomCallError::Budget(_)) => return Err(e),
            Err(ZoomCallError::Zoom(e)) if e.is_retryable() && !z.retry.gives_up(job.attempts) => {
                return Err(ZoomCallError::Zoom(e))
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "release: giving up on Zoom; the numbers wait for the customer again");
                let why = format!("Zoom could not remove it ({e}); release it again");
                numbers.iter().map(|n| (n.clone(), RemoveResult::Refused(why.clone()))).collect()
            }
        };
        self.on_zoom_result(job, worker, &results, &by).await?;
        Ok(None)
    }

    /// Records Zoom's answers for a release job with the job's end, in one transaction.
    async fn on_zoom_result(
        &self,
        job: &Job,
        worker: &str,
        results: &[(PhoneNumber, RemoveResult)],
        by: &Actor,
    ) -> std::result::Result<(), ZoomCallError> {
        let now = self.now();
        if !self
            .store
            .complete_release(job.id, worker, results, self.quarantine_until(now), by, now)
            .await?
        {
            tracing::warn!(job = %job.id, "lease lost before Zoom's answer was recorded; the job will be retaken and converge");
        } else {
            let released = results.iter().filter(|(_, r)| *r == RemoveResult::Removed).count();
            tracing::info!(job = %job.id, released, refused = results.len() - released, "release job done");
        }
        Ok(())
    }

    /// The periodic sweep: `aging` numbers whose quarantine is over return to `available`, numbers
    /// left `releasing` by a job that ended without an answer wait for the customer again, and lines of
    /// numbers that left `release_pending` another way than the app's removal are closed. Returns
    /// (back in stock, converged).
    pub async fn release_tick(&self) -> Result<(usize, usize)> {
        let by = Actor::System("release-sweep".into());
        let mut expired = 0;
        loop {
            let n = self.store.expire_quarantine(1000, &by, self.now()).await?;
            expired += n;
            if n < 1000 {
                break;
            }
        }
        let converged = self.store.converge_stuck_releases(UNFINISHED, &by, self.now()).await?;
        // Releases without approval that came due stop routing and leave Zoom; numbers Zoom
        // refused (assigned there) are tried again every so often until it lets them go.
        let now = self.now();
        let due_by = Actor::System("release-due".into());
        let retry_before = now - self.settings.blocked_retry_every;
        let due = self.store.take_due_releases(None, retry_before, 10_000, &due_by, now).await?;
        // Contracts that ended with every number out: the Zoom link ends.
        for (customer, account) in self.store.contract_ends_done(now).await? {
            let ended = self
                .store
                .unlink_zoom_account(&account, CONTRACT_ENDED, &due_by, now)
                .await?
                .is_some();
            tracing::info!(customer = %customer, account = %account, ended, "contract ended: Zoom link ended");
        }
        // Numbers that left their release another way than the app's removal: their lines say so.
        let closed = self.store.close_stale_release_lines(self.now()).await?;
        if expired > 0 || converged > 0 || closed > 0 || due > 0 {
            tracing::info!(expired, converged, closed, due, "release sweep");
        }
        Ok((expired, converged))
    }

    /// Runs [`App::release_tick`] every `every` until the returned handle is dropped.
    pub fn spawn_release_sweep(&self, every: Duration) -> Sweep {
        let app = self.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = app.release_tick().await {
                    tracing::error!(error = %e, "release sweep: database error");
                }
            }
        });
        Sweep { handle }
    }
}

/// The periodic release sweep; dropping it stops it.
pub struct Sweep {
    handle: tokio::task::JoinHandle<()>,
}

impl Sweep {
    /// Runs `task` until the sweep is dropped.
    pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self { handle: tokio::spawn(task) }
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Parses numbers as typed, naming `field` and the row of each one that is not a phone number.
fn parse_numbers<'a>(
    field: &'static str,
    raw: impl Iterator<Item = (usize, &'a str)>,
) -> Result<Vec<PhoneNumber>> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (row, s) in raw {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        match PhoneNumber::parse(s) {
            Ok(n) => out.push(n),
            Err(e) => bad.push(format!("row {row}: {s:?}: {e}")),
        }
    }
    if !bad.is_empty() {
        let more = bad.len().saturating_sub(20);
        bad.truncate(20);
        if more > 0 {
            bad.push(format!("and {more} more"));
        }
        return Err(AppError::invalid(field, bad.join("; ")));
    }
    Ok(out)
}

fn csv_numbers(text: &str) -> Result<Vec<(usize, String)>> {
    domain::release::csv_numbers(text).map_err(|e| AppError::invalid("csv", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_takes_the_e164_column_or_the_first_and_names_bad_rows() {
        let with_header =
            csv_numbers("name,e164\nsales,+15550100001\nsupport, +15550100002 \n").unwrap();
        assert_eq!(
            with_header,
            vec![(2, "+15550100001".to_owned()), (3, "+15550100002".to_owned())]
        );
        let bare = csv_numbers("+15550100001\n+15550100002,extra\n").unwrap();
        assert_eq!(bare.len(), 2);
        let e = csv_numbers("name,owner\nx,y\n").unwrap_err().to_string();
        assert!(e.contains("csv") && e.contains("e164"), "{e}");
        let e = parse_numbers("csv", [(2usize, "+15550100001"), (3, "nope")].into_iter())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("csv: row 3: \"nope\""), "{e}");
    }
}
