//! Reconciliation: peerex, Zoom and the routing instances compared, and what disagrees recorded as
//! findings an operator reads (DESIGN.md §7).
//!
//! One cycle per linked Zoom account: every page of the account's peering numbers is read through the
//! account's request budget (the one pushes use, shared by every instance), then the listing is
//! compared with what peerex holds ([`domain::reconcile::compare`]). One more, carrier-wide, when the
//! carrier's Server-to-Server app is configured: every number the carrier pushed, in every account,
//! through the carrier account's own request budget, finds what no account's listing shows: numbers
//! in Zoom accounts no customer linked, numbers peerex has nowhere, numbers in a customer's account
//! that peerex holds for another customer. A listing is compared only
//! when every page of it was read: a cycle that Zoom interrupts (429s past the budget's patience, 5xx,
//! timeouts, page tokens that keep expiring) records nothing and is run again on the next schedule, so
//! a missing page never looks like numbers gone from Zoom. One more cycle compares every routing
//! instance's position with the database's.
//!
//! Each scope's cycle runs under a lease in the database, so two instances never run the same
//! account's cycle at once, and the schedule is shared: a scope is due `every` after its last
//! complete cycle, whichever instance ran it.

use crate::onboarding::{ZoomCallError, ZoomSetup};
use crate::{App, AppError, Result};
use domain::findings::{Finding, FindingQuery, Recorded, RepairState, Seen, ZoomFix, ZoomRepair};
use domain::job::JobPayload;
use domain::onboarding::{Job, JobEnd, JobKind, ZoomLink};
use domain::reconcile::{compare, routing_behind, FindingKind, Listed, Repair, Scope, Thresholds};
use domain::{Actor, CustomerId, NumberState, PhoneNumber, ZoomAccountId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tracing::Instrument;
use zoom::ZoomError;

/// How reconciliation runs.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// How often each scope is compared (0: never on a schedule; `peerex reconcile` still runs).
    pub every: Duration,
    /// How long a cycle's lease lasts: a cycle that dies is run by another instance after it.
    pub lease: Duration,
    pub thresholds: Thresholds,
    /// How long a routing instance may be behind a generation the database reached before it is a
    /// finding (a follower is always a moment behind a commit).
    pub routing_grace: time::Duration,
    /// A routing instance silent for longer has stopped; it is forgotten rather than reported.
    pub routing_silent: time::Duration,
    /// Failed calls to Zoom in a row (429, 5xx, timeouts) after which a cycle gives up until the next.
    pub max_failures: u32,
    /// Queue the automatic repairs of what each cycle finds (by "reconciler"); off, an operator
    /// asks for them.
    pub auto_repair: bool,
    /// Accounts listed at once (each within its own request budget), and the carrier-wide
    /// listing beside them.
    pub parallel: usize,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15 * 60),
            lease: Duration::from_secs(10 * 60),
            thresholds: Thresholds::default(),
            routing_grace: time::Duration::minutes(1),
            routing_silent: time::Duration::minutes(10),
            max_failures: 5,
            auto_repair: false,
            parallel: 4,
        }
    }
}

/// The carrier's own Server-to-Server app (Zoom App Marketplace > Develop > Server-to-Server OAuth,
/// made in the carrier's own Zoom account): its token lists every number the carrier pushed, in
/// every customer's account, each with the account's number.
pub struct CarrierApp {
    /// A client with the Server-to-Server app's credentials.
    pub client: zoom::Client,
    /// The carrier's own Zoom account, which owns the app: its tokens act on it, and its request
    /// budget is kept in the database under it, shared by every instance like a linked account's.
    pub account: ZoomAccountId,
    /// Calls per second to the carrier-wide listing; 0: no pacing (Zoom's 429s still move it on).
    pub requests_per_second: f64,
    token: tokio::sync::Mutex<Option<zoom::AccountToken>>,
}

impl std::fmt::Debug for CarrierApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierApp")
            .field("account", &self.account)
            .field("requests_per_second", &self.requests_per_second)
            .finish_non_exhaustive()
    }
}

impl CarrierApp {
    pub fn new(client: zoom::Client, account: ZoomAccountId, requests_per_second: f64) -> Self {
        Self { client, account, requests_per_second, token: tokio::sync::Mutex::new(None) }
    }

    /// The app's access token, asked again once it nears its end or Zoom refused it (`stale`).
    async fn token(
        &self,
        stale: Option<&str>,
        now: time::OffsetDateTime,
    ) -> std::result::Result<String, ZoomError> {
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref() {
            if Some(t.access_token.as_str()) != stale
                && t.expires_at - time::Duration::minutes(1) > now
            {
                return Ok(t.access_token.clone());
            }
        }
        let fresh = self.client.account_token(self.account.as_str()).await?;
        let token = fresh.access_token.clone();
        *held = Some(fresh);
        Ok(token)
    }
}

/// What to reconcile.
#[derive(Clone, Debug, Default)]
pub struct ReconcileRequest {
    /// Only this customer's account (and not the routing instances).
    pub customer: Option<CustomerId>,
    /// Compute the findings without writing anything.
    pub dry_run: bool,
}

/// How one scope's cycle ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// Every page read and compared; the findings recorded (unless a dry run).
    Complete,
    /// Not run: another instance runs it, or it is not due.
    Skipped(String),
    /// Zoom interrupted the listing: nothing was compared or recorded.
    Incomplete(String),
}

/// One scope's cycle.
#[derive(Clone, Debug, Serialize)]
pub struct Cycle {
    /// `account:<Zoom account id>`, `carrier` or `routing`.
    pub scope: String,
    pub customer: Option<CustomerId>,
    pub zoom_account: Option<ZoomAccountId>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Pages of Zoom's listing read, and numbers it listed.
    pub pages: u32,
    pub listed: usize,
    /// What the comparison found (empty unless complete).
    pub findings: Vec<SeenOut>,
    /// What recording them changed (`None` in a dry run or when not complete).
    pub recorded: Option<Recorded>,
    /// What the cycle could not look at, though complete (a linked account whose numbers the
    /// carrier-wide listing could not attribute).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Customers whose numbers the cycle could not judge: their open findings stay open.
    #[serde(skip)]
    pub spared: Vec<CustomerId>,
}

/// A finding as one cycle saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenOut {
    pub kind: FindingKind,
    pub subject: String,
    pub customer: Option<CustomerId>,
    pub detail: String,
    pub repair: domain::reconcile::Repair,
}

impl From<&Seen> for SeenOut {
    fn from(s: &Seen) -> Self {
        SeenOut {
            kind: s.kind,
            subject: s.subject.clone(),
            customer: s.customer,
            detail: s.detail.clone(),
            repair: s.kind.repair(),
        }
    }
}

/// Every cycle a run made.
#[derive(Clone, Debug, Serialize)]
pub struct ReconcileReport {
    pub dry_run: bool,
    pub cycles: Vec<Cycle>,
}

impl ReconcileReport {
    pub fn findings(&self) -> impl Iterator<Item = &SeenOut> {
        self.cycles.iter().flat_map(|c| c.findings.iter())
    }
}

/// A listing Zoom did not let the cycle finish.
struct Interrupted(String);

const LEASE_LOST: &str =
    "another instance took the cycle over (this one's lease ran out): nothing recorded";

fn lease_length(z: &ZoomSetup) -> time::Duration {
    time::Duration::try_from(z.reconcile.lease).unwrap_or(time::Duration::minutes(10))
}

/// The lease a recording cycle holds on its scope.
#[derive(Clone, Copy)]
struct Lease<'a> {
    scope: &'a str,
    owner: &'a str,
}

/// A webhook brings a scope's full cycle forward at most this often (a customer editing caller ID
/// names all day would otherwise spend the account's request budget, which pushes share, on listings).
const SOON_AT_MOST_EVERY: time::Duration = time::Duration::minutes(5);
const ROUTING_SCOPE: &str = "routing";
const CARRIER_SCOPE: &str = "carrier";

/// Whose listing a cycle reads.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A linked account's, with its customer's token.
    Account(&'a ZoomLink),
    /// Every account's, with the carrier's Server-to-Server token.
    Carrier(&'a CarrierApp),
}

/// What a cycle compares: one linked account, or every number the carrier pushed.
#[derive(Clone, Copy)]
enum Compared<'a> {
    Account(CustomerId, &'a ZoomAccountId),
    Carrier(&'a CarrierApp),
}

pub(crate) const CARRIER: &str = CARRIER_SCOPE;

pub(crate) fn account_scope(account: &ZoomAccountId) -> String {
    format!("account:{account}")
}

impl App {
    /// Runs a cycle now for every linked account (or `customer`'s) and the routing instances,
    /// whenever they last ran; a scope another instance is running now is skipped.
    pub async fn reconcile(&self, req: &ReconcileRequest) -> Result<ReconcileReport> {
        self.reconcile_due(req, None).await
    }

    /// Runs the carrier-wide cycle alone now; `None` without the carrier's Server-to-Server app.
    pub async fn reconcile_carrier(&self, dry_run: bool) -> Result<Option<Cycle>> {
        let z = self.zoom()?;
        match &z.carrier {
            Some(c) => {
                Ok(Some(self.reconcile_scope(z, Compared::Carrier(c), dry_run, None, None).await?))
            }
            None => Ok(None),
        }
    }

    /// The scheduled run: the scopes whose last complete cycle is at least `every` old.
    pub async fn reconcile_scheduled(&self) -> Result<ReconcileReport> {
        let every = self.zoom.as_deref().map(|z| z.reconcile.every).unwrap_or_default();
        self.reconcile_due(&ReconcileRequest::default(), Some(every)).await
    }

    async fn reconcile_due(
        &self,
        req: &ReconcileRequest,
        every: Option<Duration>,
    ) -> Result<ReconcileReport> {
        use futures_util::stream::{self, StreamExt};
        let z = self.zoom()?;
        let mut links = self.store.live_links().await?;
        links.retain(|(customer, _)| req.customer.is_none_or(|c| c == *customer));
        // Each account within its own budget, each its own task (so on every core), the
        // carrier-wide listing (its own budget too) beside them. `parallel` accounts are listed at
        // once; an account whose listing is read gives its turn to the next at once, and is
        // compared and recorded beside the next ones' listings (so twice `parallel` in hand at most).
        let (dry_run, parallel) = (req.dry_run, z.reconcile.parallel.max(1));
        let listing = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
        let accounts = stream::iter(links)
            .map(|(customer, account)| {
                let (app, listing) = (self.clone(), listing.clone());
                StopWithCaller(tokio::spawn(
                    async move {
                        let z = app.zoom()?;
                        let what = Compared::Account(customer, &account);
                        app.reconcile_scope(z, what, dry_run, every, Some(&listing)).await
                    }
                    .in_current_span(),
                ))
            })
            .buffer_unordered(2 * parallel)
            .map(|joined| match joined {
                Ok(cycle) => cycle,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(AppError::Refused("the reconciler is shutting down".into())),
            })
            .collect::<Vec<Result<Cycle>>>();
        let carrier = async {
            match (&z.carrier, req.customer) {
                (Some(c), None) => Some(
                    self.reconcile_scope(z, Compared::Carrier(c), req.dry_run, every, None).await,
                ),
                _ => None,
            }
        };
        let (accounts, carrier) = tokio::join!(accounts, carrier);
        let mut cycles = accounts.into_iter().collect::<Result<Vec<_>>>()?;
        cycles.sort_by(|a, b| a.scope.cmp(&b.scope));
        if let Some(c) = carrier {
            cycles.push(c?);
        }
        match req.customer {
            None => cycles.push(self.reconcile_routing(z, req.dry_run, every).await?),
            // Asked for one customer and nothing was compared: say why rather than "no drift".
            Some(c) if cycles.is_empty() => {
                return Err(match self.store.get_customer(c).await? {
                    None => AppError::invalid("customer", format!("no customer has the id {c}")),
                    Some(_) => AppError::Refused(format!(
                        "customer {c} has no Zoom account linked: there is nothing in Zoom to compare"
                    )),
                });
            }
            Some(_) => {}
        }
        Ok(ReconcileReport { dry_run: req.dry_run, cycles })
    }

    /// Takes `scope`'s lease for this cycle (a dry run takes none: it writes nothing).
    async fn take_scope(
        &self,
        z: &ZoomSetup,
        scope: &str,
        owner: &str,
        every: Option<Duration>,
    ) -> Result<Option<String>> {
        let now = self.now();
        let lease = lease_length(z);
        let due_before = match every {
            Some(e) => now - time::Duration::try_from(e).unwrap_or(time::Duration::minutes(15)),
            None => now,
        };
        if self.store.take_reconcile_lease(scope, owner, now, now + lease, due_before).await? {
            Ok(None)
        } else if every.is_some() {
            Ok(Some("not due, or another instance is running it".into()))
        } else {
            Ok(Some("another instance is running it now".into()))
        }
    }

    /// One cycle of an account or of the carrier-wide listing: under the scope's lease (none in a
    /// dry run), compared only once every page was read, recorded unless a dry run.
    /// Moves the cycle's lease on by a full lease, if it is still the cycle's.
    async fn renew_lease(&self, z: &ZoomSetup, l: Lease<'_>) -> store::Result<bool> {
        let until = self.now() + lease_length(z);
        let kept = self.store.renew_reconcile_lease(l.scope, l.owner, until).await?;
        if !kept {
            tracing::warn!(
                scope = l.scope,
                "reconciliation lease lost to another instance; stopping"
            );
        }
        Ok(kept)
    }

    /// Makes `scope`'s next scheduled cycle due now, on whichever instance looks first (after a
    /// webhook that says something changed in Zoom).
    pub(crate) async fn reconcile_soon(&self, scope: &str) {
        let unless_since = self.now() - SOON_AT_MOST_EVERY;
        if let Err(e) = self.store.reconcile_soon(scope, unless_since).await {
            tracing::warn!(scope, error = %e, "cannot bring the reconciliation forward");
        }
    }

    async fn reconcile_scope(
        &self,
        z: &ZoomSetup,
        what: Compared<'_>,
        dry_run: bool,
        every: Option<Duration>,
        listing: Option<&tokio::sync::Semaphore>,
    ) -> Result<Cycle> {
        let (scope, customer, account) = match what {
            Compared::Account(customer, account) => {
                (account_scope(account), Some(customer), Some(account))
            }
            Compared::Carrier(_) => (CARRIER_SCOPE.to_owned(), None, None),
        };
        let mut cycle = Cycle {
            scope: scope.clone(),
            customer,
            zoom_account: account.cloned(),
            outcome: Outcome::Complete,
            pages: 0,
            listed: 0,
            findings: Vec::new(),
            recorded: None,
            notes: Vec::new(),
            spared: Vec::new(),
        };
        // A turn to list (taken before the lease, so waiting for one holds no lease).
        let turn = match listing {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|_| AppError::Refused("the reconciler is shutting down".into()))?,
            ),
            None => None,
        };
        let owner = uuid::Uuid::now_v7().to_string();
        if !dry_run {
            if let Some(why) = self.take_scope(z, &scope, &owner, every).await? {
                cycle.outcome = Outcome::Skipped(why);
                return Ok(cycle);
            }
        }
        let lease = (!dry_run).then_some(Lease { scope: &scope, owner: &owner });
        let result = match what {
            Compared::Account(customer, account) => {
                let span = tracing::info_span!("reconcile", %account, %customer);
                self.compare_account(z, customer, account, lease, &mut cycle, turn)
                    .instrument(span)
                    .await
            }
            Compared::Carrier(c) => {
                let span = tracing::info_span!("reconcile", scope = CARRIER_SCOPE);
                self.compare_carrier(z, c, lease, &mut cycle).instrument(span).await
            }
        };
        // Recorded only while the lease is still this cycle's, renewed for the writing.
        let result = match (result, lease) {
            (Ok(Ok(seen)), Some(l)) => match self.renew_lease(z, l).await {
                Ok(true) => Ok(Ok(seen)),
                Ok(false) => Ok(Err(Interrupted(LEASE_LOST.into()))),
                Err(e) => Err(e.into()),
            },
            (other, _) => other,
        };
        let completed = match result {
            Ok(Ok(seen)) => {
                cycle.findings = seen.iter().map(SeenOut::from).collect();
                if !dry_run {
                    let (id, now) = (uuid::Uuid::now_v7(), self.now());
                    let recorded = self
                        .store
                        .record_findings(&scope, account, &seen, &cycle.spared, id, now)
                        .await;
                    match recorded {
                        Ok(r) => {
                            cycle.recorded = Some(r);
                            if let (true, Some(customer)) = (z.reconcile.auto_repair, customer) {
                                let which = RepairWhich::Automatic { customer: Some(customer) };
                                let by = Actor::System("reconciler".into());
                                if let Err(e) = self.repair_findings(&which, &by).await {
                                    tracing::warn!(error = %e, "reconciliation: cannot queue repairs");
                                }
                            }
                        }
                        Err(e) => {
                            self.store.release_reconcile_lease(&scope, &owner, None).await?;
                            return Err(e.into());
                        }
                    }
                }
                true
            }
            Ok(Err(Interrupted(why))) => {
                tracing::info!(reason = %why, "reconciliation interrupted; nothing compared");
                cycle.outcome = Outcome::Incomplete(why);
                false
            }
            Err(e) => {
                if !dry_run {
                    self.store.release_reconcile_lease(&scope, &owner, None).await?;
                }
                return Err(e);
            }
        };
        if !dry_run {
            let at = completed.then(|| self.now());
            self.store.release_reconcile_lease(&scope, &owner, at).await?;
        }
        Ok(cycle)
    }

    /// Lists the account in full and compares it with what peerex holds.
    async fn compare_account(
        &self,
        z: &ZoomSetup,
        customer: CustomerId,
        account: &ZoomAccountId,
        lease: Option<Lease<'_>>,
        cycle: &mut Cycle,
        turn: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Result<std::result::Result<Vec<Seen>, Interrupted>> {
        let Some(link) = self.store.zoom_link(customer).await? else {
            return Ok(Err(Interrupted("the account's link is gone".into())));
        };
        let keep = |n| Some(Zoomed::from(n));
        let listed = self.list_pages(z, Source::Account(&link), lease, cycle, keep).await;
        // Read (or given up): the next account's listing may start.
        drop(turn);
        let listed = match listed {
            Ok(l) => l,
            Err(ZoomCallError::Db(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(Interrupted(e.to_string()))),
        };
        let listed = match listed {
            Ok(l) => l,
            Err(i) => return Ok(Err(i)),
        };
        // Reading peerex's side and comparing is CPU work of tens of milliseconds for an account
        // of ten thousand numbers: done on the runtime's workers it held up the other accounts'
        // listings, each paced to Zoom's budget to the millisecond (measured: one page in a
        // hundred started 60 ms or more after its slot). On a thread of the blocking pool the
        // operating system shares the cores instead.
        let (app, account, thresholds) = (self.clone(), account.clone(), z.reconcile.thresholds);
        let compared = off_the_workers(async move {
            app.compare_listed(customer, &account, listed, thresholds).await
        });
        let (seen, count) = compared.await?;
        cycle.listed = count;
        Ok(Ok(seen))
    }

    /// Compares what an account's listing showed with what peerex holds: the findings, and how
    /// many numbers the listing held.
    async fn compare_listed(
        &self,
        customer: CustomerId,
        account: &ZoomAccountId,
        listed: Vec<Zoomed>,
        thresholds: Thresholds,
    ) -> Result<(Vec<Seen>, usize)> {
        // The customer's own numbers first: those Zoom lists are E.164 already (checked when they
        // came into peerex), so only the rest are parsed, and looked up whoever holds them.
        let mut held = self.store.held_by_customer(customer).await?;
        let own: HashSet<&str> = held.iter().map(|h| h.e164.as_str()).collect();
        let listed: Vec<Listed> = listed
            .into_iter()
            .filter_map(|n| {
                let held = own.contains(n.phone_number.as_str());
                checked(account.as_str().to_owned(), n, held)
            })
            .collect();
        let count = listed.len();
        let others: Vec<PhoneNumber> = listed
            .iter()
            .filter(|l| !own.contains(l.e164.as_str()))
            .map(|l| l.e164.clone())
            .collect();
        drop(own);
        held.extend(self.store.held_among(&others).await?);
        let known: HashSet<&PhoneNumber> = held.iter().map(|h| &h.e164).collect();
        let observations = compare(
            Scope::Account(account.as_str()),
            &held,
            &listed,
            |p| known.contains(p),
            thresholds,
            self.now(),
        );
        Ok((observations.into_iter().map(Seen::from).collect(), count))
    }

    /// Every page of a listing (an account's, or the carrier's), each call through the request budget
    /// of the account it is made with, each number kept as `keep` makes it. A 429 moves the budget on
    /// for every instance and the page is asked again when it allows; a 5xx or timeout is retried
    /// with backoff; an expired page token starts the listing over. More than `max_failures` in a
    /// row, or a budget spent for longer than a call may wait, interrupts.
    async fn list_pages<T>(
        &self,
        z: &ZoomSetup,
        source: Source<'_>,
        lease: Option<Lease<'_>>,
        cycle: &mut Cycle,
        mut keep: impl FnMut(zoom::PeeringNumber) -> Option<T>,
    ) -> std::result::Result<std::result::Result<Vec<T>, Interrupted>, ZoomCallError> {
        let mut renewed = self.now();
        let (budget, rate) = match source {
            Source::Account(link) => (&link.zoom_account_id, z.requests_per_second),
            Source::Carrier(c) => (&c.account, c.requests_per_second),
        };
        let mut token = self.source_token(source, None).await?;
        let (mut all, mut next) = (Vec::new(), None::<String>);
        let (mut refreshed, mut restarts, mut failures) = (false, 0u32, 0u32);
        loop {
            // A long listing keeps its lease: renewed every third of it, so no other instance takes
            // the scope over while this one still reads; one that lost it stops here.
            if let Some(l) = lease {
                if self.now() - renewed >= lease_length(z) / 3 {
                    if !self.renew_lease(z, l).await? {
                        return Ok(Err(Interrupted(LEASE_LOST.into())));
                    }
                    renewed = self.now();
                }
            }
            match self.zoom_slot_at(budget, rate, true).await {
                Ok(()) => {}
                Err(ZoomCallError::Budget(at)) => {
                    return Ok(Err(Interrupted(format!(
                        "the account's request budget is used up until {}",
                        crate::jobs::hms(at)
                    ))))
                }
                Err(e) => return Err(e),
            }
            let page = match source {
                Source::Account(_) => z.client.list_peering_numbers(&token, next.as_deref()).await,
                Source::Carrier(c) => {
                    c.client.list_carrier_peering_numbers(&token, next.as_deref(), None).await
                }
            };
            match page {
                Ok(page) => {
                    cycle.pages += 1;
                    failures = 0;
                    all.extend(page.numbers.into_iter().filter_map(&mut keep));
                    match page.next_page_token {
                        Some(t) => next = Some(t),
                        None => return Ok(Ok(all)),
                    }
                }
                Err(ZoomError::Unauthorized { .. }) if !refreshed => {
                    refreshed = true;
                    token = self.source_token(source, Some(&token)).await?;
                }
                Err(ZoomError::Refused { status: 400, code: 300, .. })
                    if next.is_some() && restarts < 2 =>
                {
                    tracing::info!(
                        "Zoom's page token expired mid-listing; listing again from the start"
                    );
                    restarts += 1;
                    (all, next) = (Vec::new(), None);
                }
                Err(ZoomError::RateLimited { retry_after })
                    if failures < z.reconcile.max_failures =>
                {
                    failures += 1;
                    let until = self.now()
                        + time::Duration::try_from(retry_after)
                            .unwrap_or(time::Duration::seconds(1));
                    self.store.set_not_before(budget, until).await?;
                }
                Err(e) if e.is_retryable() && failures < z.reconcile.max_failures => {
                    failures += 1;
                    let wait = z.retry.backoff(i64::from(failures), rand::random::<f64>(), None);
                    tracing::info!(error = %e, ?wait, "listing for reconciliation failed; retrying the page");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Ok(Err(Interrupted(format!("Zoom: {e}")))),
            }
        }
    }

    /// The token a listing is read with: the customer's, or the carrier app's.
    async fn source_token(
        &self,
        source: Source<'_>,
        stale: Option<&str>,
    ) -> std::result::Result<String, ZoomCallError> {
        match source {
            Source::Account(link) => self.access_token(link, stale).await,
            Source::Carrier(c) => Ok(c.token(stale, self.now()).await?),
        }
    }

    /// Lists every number the carrier pushed and compares what only this listing can show: numbers
    /// in Zoom accounts no customer linked (known to peerex or not at all), and numbers in a linked
    /// account that peerex holds for another customer, or for nobody. What a linked account's own
    /// listing shows of its customer's numbers (gone, trunk, status, Returned) is its cycle's.
    async fn compare_carrier(
        &self,
        z: &ZoomSetup,
        c: &CarrierApp,
        lease: Option<Lease<'_>>,
        cycle: &mut Cycle,
    ) -> Result<std::result::Result<Vec<Seen>, Interrupted>> {
        // Which linked account each account number names. A link whose number cannot be learned
        // now (Zoom refuses its token, or fails) does not hold up the rest: its customer's numbers
        // are left to its own cycle, as Zoom's carrier listing cannot tell which account is its.
        let mut by_number: HashMap<String, (CustomerId, ZoomAccountId)> = HashMap::new();
        for (customer, account, number) in self.store.live_link_numbers().await? {
            let number = match number.filter(|n| !n.trim().is_empty()) {
                Some(n) => n,
                None => match self.learn_account_number(z, customer).await {
                    Ok(Some(n)) => n,
                    Ok(None) => continue,
                    Err(ZoomCallError::Db(e)) => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(%account, error = %e, "the number of a linked Zoom account is not known; its numbers are left to its own cycle");
                        cycle.notes.push(format!(
                            "the number of linked Zoom account {account} is not known yet ({e}): its customer's numbers were left to the account's own cycle"
                        ));
                        cycle.spared.push(customer);
                        continue;
                    }
                },
            };
            by_number.insert(number, (customer, account));
        }
        let unattributed: HashSet<CustomerId> = cycle.spared.iter().copied().collect();
        let keep = |n: zoom::PeeringNumber| {
            let label = match n.customer_account_number.as_deref() {
                Some(a) => match by_number.get(a) {
                    Some((_, account)) => account.as_str().to_owned(),
                    None if unattributed.is_empty() => format!("no. {a} (not linked)"),
                    None => format!("no. {a} (not a linked account whose number is known)"),
                },
                None => "(no account number)".to_owned(),
            };
            Some((label, Zoomed::from(n)))
        };
        let listed = match self.list_pages(z, Source::Carrier(c), lease, cycle, keep).await {
            Ok(Ok(l)) => l,
            Ok(Err(i)) => return Ok(Err(i)),
            Err(ZoomCallError::Db(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(Interrupted(e.to_string()))),
        };
        let holders = self.store.number_holders().await?;
        // A number sold to a customer is E.164 already (checked when it came into peerex).
        let listed: Vec<Listed> = listed
            .into_iter()
            .filter_map(|(label, n)| {
                let held = holders.contains_key(n.phone_number.as_str());
                checked(label, n, held)
            })
            .collect();
        cycle.listed = listed.len();
        let customer_of: HashMap<&str, CustomerId> =
            by_number.values().map(|(c, a)| (a.as_str(), *c)).collect();
        // In a linked account and held for its customer: the account's own cycle compares it.
        let odd: Vec<Listed> = listed
            .into_iter()
            .filter(|l| {
                let holder = holders.get(l.e164.as_str());
                match customer_of.get(l.account.as_str()) {
                    Some(c) => holder != Some(c),
                    // In an account no known number names, held for a customer whose account's
                    // number is not known: most likely in that account; not judged here.
                    None => holder.is_none_or(|h| !unattributed.contains(h)),
                }
            })
            .collect();
        let numbers: Vec<PhoneNumber> = odd.iter().map(|l| l.e164.clone()).collect();
        let held = self.store.held_among(&numbers).await?;
        let known: HashSet<&PhoneNumber> = held.iter().map(|h| &h.e164).collect();
        let observations = compare(
            Scope::Carrier,
            &held,
            &odd,
            |p| known.contains(p),
            z.reconcile.thresholds,
            self.now(),
        );
        Ok(Ok(observations
            .into_iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    FindingKind::UnknownToPeerex
                        | FindingKind::NotSoldButInZoom
                        | FindingKind::OtherAccount
                )
            })
            .map(Seen::from)
            .collect()))
    }

    /// Asks Zoom, with the customer's own token, for the number of the account the customer linked,
    /// and keeps it on the link (links made before it was kept at the install). None: no link now.
    async fn learn_account_number(
        &self,
        z: &ZoomSetup,
        customer: CustomerId,
    ) -> std::result::Result<Option<String>, ZoomCallError> {
        let Some(link) = self.store.zoom_link(customer).await? else {
            return Ok(None);
        };
        let account = &link.zoom_account_id;
        let mut token = self.access_token(&link, None).await?;
        let mut refreshed = false;
        let me = loop {
            self.zoom_slot(z, account).await?;
            match z.client.me(&token).await {
                Err(ZoomError::Unauthorized { .. }) if !refreshed => {
                    refreshed = true;
                    token = self.access_token(&link, Some(&token)).await?;
                }
                other => break other?,
            }
        };
        if me.account_id != account.as_str() || me.account_number.trim().is_empty() {
            return Err(ZoomCallError::Zoom(ZoomError::Invalid(format!(
                "users/me answered account {} with account number {:?}",
                me.account_id, me.account_number
            ))));
        }
        let number = me.account_number.trim().to_owned();
        self.store.set_link_account_number(account, &number).await?;
        Ok(Some(number))
    }

    /// Compares every routing instance's position with the generation the database had
    /// `routing_grace` ago.
    async fn reconcile_routing(
        &self,
        z: &ZoomSetup,
        dry_run: bool,
        every: Option<Duration>,
    ) -> Result<Cycle> {
        let mut cycle = Cycle {
            scope: ROUTING_SCOPE.into(),
            customer: None,
            zoom_account: None,
            outcome: Outcome::Complete,
            pages: 0,
            listed: 0,
            findings: Vec::new(),
            recorded: None,
            notes: Vec::new(),
            spared: Vec::new(),
        };
        if dry_run {
            cycle.outcome = Outcome::Skipped(
                "routing positions are sampled only by a cycle that records".into(),
            );
            return Ok(cycle);
        }
        let owner = uuid::Uuid::now_v7().to_string();
        if let Some(why) = self.take_scope(z, ROUTING_SCOPE, &owner, every).await? {
            cycle.outcome = Outcome::Skipped(why);
            return Ok(cycle);
        }
        let r = &z.reconcile;
        let result = async {
            let head = self.store.routing_feed_head().await?.high;
            let now = self.now();
            let grace = r.routing_grace;
            let sample = self
                .store
                .sample_routing_generation(head, now, now - grace * 10, now - grace)
                .await?;
            let instances = self.store.routing_instances(now - r.routing_silent).await?;
            cycle.listed = instances.len();
            let behind = match sample {
                Some((generation, at)) => routing_behind(&instances, generation, at, grace, now),
                None => Vec::new(),
            };
            let seen: Vec<Seen> = behind
                .into_iter()
                .map(|(instance, detail)| Seen {
                    kind: FindingKind::RoutingBehind,
                    subject: instance,
                    customer: None,
                    detail,
                })
                .collect();
            cycle.findings = seen.iter().map(SeenOut::from).collect();
            let recorded = self
                .store
                .record_findings(ROUTING_SCOPE, None, &seen, &[], uuid::Uuid::now_v7(), now)
                .await?;
            cycle.recorded = Some(recorded);
            Ok::<_, store::DbError>(())
        }
        .await;
        let at = result.is_ok().then(|| self.now());
        self.store.release_reconcile_lease(ROUTING_SCOPE, &owner, at).await?;
        result?;
        Ok(cycle)
    }

    /// Findings, newest sighting first.
    pub async fn findings(&self, q: &FindingQuery) -> Result<Vec<Finding>> {
        Ok(self.store.list_findings(q).await?)
    }

    /// Open findings per kind, every kind included.
    pub async fn open_finding_counts(&self) -> Result<Vec<(FindingKind, i64)>> {
        Ok(self.store.open_finding_counts().await?)
    }

    /// Runs [`App::reconcile_scheduled`] every `tick` until the returned handle is dropped; each scope
    /// runs when due (`every` after its last complete cycle, on any instance).
    pub fn spawn_reconciler(&self, tick: Duration) -> Reconciler {
        let app = self.clone();
        let handle = tokio::spawn(async move {
            let mut t = tokio::time::interval(tick);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                match app.reconcile_scheduled().await {
                    Ok(report) => {
                        let found = report.findings().count();
                        let ran = report
                            .cycles
                            .iter()
                            .filter(|c| !matches!(c.outcome, Outcome::Skipped(_)))
                            .count();
                        if ran > 0 {
                            tracing::info!(cycles = ran, findings = found, "reconciliation ran");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "reconciliation: error"),
                }
            }
        });
        Reconciler { handle }
    }
}

/// The scheduled reconciliation; dropping it stops it.
pub struct Reconciler {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A spawned task that stops when whoever awaits it goes away (a cycle is stopped by dropping the
/// reconciler, or the request that asked for it), as a future polled in the caller's task would.
struct StopWithCaller<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for StopWithCaller<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for StopWithCaller<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the comparison reads of a number Zoom lists, kept as each page is read: an account's
/// listing is held whole until it is compared, and Zoom's other fields (its capabilities among
/// them) made it four times the size, and growing it by copying took a quarter of a cycle's CPU.
struct Zoomed {
    /// With its `+`, which Zoom may drop (REFERENCE §6), as peerex holds numbers.
    phone_number: String,
    trunk: Option<String>,
    active: bool,
    returned: bool,
}

impl From<zoom::PeeringNumber> for Zoomed {
    fn from(n: zoom::PeeringNumber) -> Self {
        let raw = n.phone_number.trim();
        let phone_number = if raw.len() == n.phone_number.len() && raw.starts_with('+') {
            n.phone_number
        } else if raw.starts_with('+') {
            raw.to_owned()
        } else {
            format!("+{raw}")
        };
        Self { phone_number, trunk: n.sip_trunk_name, active: n.active, returned: n.returned }
    }
}

/// Runs `work` to its end on a thread of the runtime's blocking pool (its database calls still
/// driven by the runtime), for CPU work that would otherwise hold a worker for many milliseconds.
async fn off_the_workers<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let runtime = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || runtime.block_on(work)).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(AppError::Refused("the reconciler is shutting down".into())),
    }
}

/// One number of Zoom's listing, as the comparison reads it in `account`: as it is when peerex
/// holds a number written exactly so (`held`: E.164 already, checked when it came into peerex),
/// parsed otherwise; a number that is not E.164 is left out (and logged): peerex holds only E.164
/// numbers.
fn checked(account: String, n: Zoomed, held: bool) -> Option<Listed> {
    let e164 = match held {
        true => PhoneNumber::from_trusted(n.phone_number),
        false => match PhoneNumber::parse(&n.phone_number) {
            Ok(e164) => e164,
            Err(e) => {
                tracing::warn!(number = %n.phone_number, error = %e, "Zoom listed a number that is not E.164");
                return None;
            }
        },
    };
    Some(Listed { e164, account, trunk: n.trunk, active: n.active, returned: n.returned })
}

/// Which findings to repair.
#[derive(Clone, Debug)]
pub enum RepairWhich {
    /// These, one by one: each that cannot be repaired automatically is refused with why.
    Ids(Vec<uuid::Uuid>),
    /// Every open finding (of this customer) whose repair is automatic and not queued yet.
    Automatic { customer: Option<CustomerId> },
}

/// What asking for repairs did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Repairs {
    /// Findings whose repair is now in the outbox.
    pub queued: Vec<uuid::Uuid>,
    /// Jobs written to carry them.
    pub jobs: usize,
    /// Findings not repaired, and why.
    pub refused: Vec<(uuid::Uuid, String)>,
}

impl App {
    /// Queues the repairs of findings through the outbox, like every change carried to Zoom
    /// (retried, rate-limited, audited with `by`). On their own (`Automatic`) only the repairs that
    /// bring Zoom back to what peerex recorded run. Asked for by id, a person also confirms the
    /// removal from Zoom of a number peerex holds unsold (in an account a customer linked), and the
    /// release of a number its customer marked Returned (a carrier-started release). A number
    /// peerex does not know, or one in another account, is never moved: a person looks. A finding
    /// already queued is not queued again, whoever asks.
    pub async fn repair_findings(&self, which: &RepairWhich, by: &Actor) -> Result<Repairs> {
        let open = FindingQuery { open: Some(true), limit: 100_000, ..Default::default() };
        let mut open = self.store.list_findings(&open).await?;
        let mut out = Repairs::default();
        match which {
            RepairWhich::Ids(ids) => {
                for id in ids {
                    if !open.iter().any(|f| f.id == *id) {
                        out.refused.push((*id, "not an open finding".into()));
                    }
                }
                open.retain(|f| ids.contains(&f.id));
            }
            RepairWhich::Automatic { customer } => open.retain(|f| {
                f.repair.automatic()
                    && f.repair_state == RepairState::Proposed
                    && customer.is_none_or(|c| f.customer == Some(c))
            }),
        }
        type Key = (CustomerId, ZoomAccountId, Option<ZoomFix>);
        let mut groups: BTreeMap<Key, Vec<PhoneNumber>> = BTreeMap::new();
        let mut returned: BTreeMap<CustomerId, Vec<(uuid::Uuid, PhoneNumber)>> = BTreeMap::new();
        let mut ids = Vec::new();
        for f in open {
            // A person asked for this one by its id: the repairs a person confirms go too.
            let confirmed = matches!(which, RepairWhich::Ids(_))
                && f.repair_state == RepairState::Manual
                && f.repair.confirmable();
            if f.repair_state != RepairState::Proposed && !confirmed {
                let why = match f.repair_state {
                    RepairState::Manual => {
                        format!("not automatic ({}): a person decides", f.repair.as_str())
                    }
                    s => format!("its repair is {} already", s.as_str()),
                };
                out.refused.push((f.id, why));
                continue;
            }
            // A number nobody bought is removed with the token of the customer who linked the
            // account it sits in; an account no customer linked is Zoom's Provider Portal's to fix.
            let customer = match (f.customer, f.repair, f.zoom_account.as_deref()) {
                (None, Repair::RemoveFromZoom, Some(account)) => self
                    .store
                    .live_link_by_account(&ZoomAccountId::from_trusted(account.to_owned()))
                    .await?
                    .map(|l| l.customer_id),
                (c, _, _) => c,
            };
            let (Some(customer), Some(account), Ok(number)) =
                (customer, f.zoom_account.clone(), PhoneNumber::parse(&f.subject))
            else {
                let why = if f.repair == Repair::RemoveFromZoom {
                    "no customer linked that Zoom account: remove the number in Zoom's Provider Portal"
                } else {
                    "no customer's number to repair"
                };
                out.refused.push((f.id, why.into()));
                continue;
            };
            if f.repair == Repair::StartRelease {
                returned.entry(customer).or_default().push((f.id, number));
                continue;
            }
            let fix = match (ZoomFix::of(f.repair), f.repair) {
                (Some(fix), _) => Some(fix),
                // Zoom has it, or the push never ran: the push job converges either way.
                (None, Repair::MarkActive | Repair::RunJobAgain) => {
                    let held = self.store.get_number_by_e164(&number).await?;
                    if held.is_none_or(|n| n.state != NumberState::Provisioning) {
                        out.refused.push((
                            f.id,
                            "only a provisioning number's push is queued again".into(),
                        ));
                        continue;
                    }
                    None
                }
                _ => {
                    out.refused.push((f.id, format!("not automatic ({})", f.repair.as_str())));
                    continue;
                }
            };
            groups
                .entry((customer, ZoomAccountId::from_trusted(account.clone()), fix))
                .or_default()
                .push(number);
            ids.push(f.id);
        }
        // Numbers the customer marked Returned in Zoom are taken back by a carrier-started release
        // (the one the poll of Zoom starts on its own), before their findings are marked queued.
        for (customer, found) in returned {
            let numbers: Vec<PhoneNumber> = found.iter().map(|(_, n)| n.clone()).collect();
            let held = self.store.numbers_in(&numbers).await?;
            let (active, gone): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, e164)| {
                held.iter().any(|n| {
                    n.e164 == *e164
                        && n.state == NumberState::Active
                        && n.customer_id == Some(customer)
                })
            });
            let not_active = "not active for its customer any more: nothing to release";
            out.refused.extend(gone.into_iter().map(|(id, _)| (id, not_active.into())));
            if active.is_empty() {
                continue;
            }
            let numbers = active.iter().map(|(_, n)| n.clone()).collect();
            match self.take_back_returned(customer, numbers).await? {
                Some(_) => ids.extend(active.into_iter().map(|(id, _)| id)),
                None => out.refused.extend(
                    active.into_iter().map(|(id, _)| (id, "changed meanwhile: look again".into())),
                ),
            }
        }
        let now = self.now();
        let mut jobs = Vec::new();
        for ((customer, account, fix), numbers) in groups {
            for chunk in numbers.chunks(domain::onboarding::ZOOM_BATCH) {
                let mut payload = JobPayload::numbers(chunk.to_vec());
                payload.repair = fix.map(|fix| ZoomRepair { fix, by: by.to_string() });
                jobs.push(Job::new(
                    JobKind::PushNumbers,
                    payload,
                    Some(customer),
                    None,
                    Some(account.clone()),
                    now,
                ));
            }
        }
        if ids.is_empty() {
            return Ok(out);
        }
        if !self.store.queue_repairs(&ids, &jobs, &by.to_string()).await? {
            return Err(AppError::Refused(
                "some of these findings were queued by someone else, or closed, meanwhile: nothing was queued; look again".into(),
            ));
        }
        tracing::info!(findings = ids.len(), jobs = jobs.len(), %by, "repairs queued");
        out.queued = ids;
        out.jobs = jobs.len();
        Ok(out)
    }

    /// Runs a repair job: the fix in Zoom for the numbers peerex still holds for the account's
    /// customer (never any other), with Zoom's answer per number.
    pub(crate) async fn run_repair(
        &self,
        z: &ZoomSetup,
        job: &Job,
    ) -> std::result::Result<Option<JobEnd>, ZoomCallError> {
        let (Some(repair), Some(account)) = (&job.payload.repair, job.zoom_account.as_ref()) else {
            return Ok(Some(JobEnd::Failed {
                error: "repair job without a repair or account".into(),
            }));
        };
        let Some(link) = self.store.live_link_by_account(account).await? else {
            return Err(ZoomCallError::NoLink);
        };
        let removing = repair.fix == ZoomFix::Remove;
        let numbers: Vec<String> = self
            .store
            .numbers_in(&job.payload.numbers)
            .await?
            .into_iter()
            .filter(|n| match removing {
                // Still nobody's, as the operator saw it: sold meanwhile, it stays in Zoom.
                true => {
                    n.customer_id.is_none()
                        && matches!(n.state, NumberState::Available | NumberState::Aging)
                }
                false => {
                    n.customer_id == Some(link.customer_id)
                        && matches!(n.state, NumberState::Active | NumberState::ReleasePending)
                }
            })
            .map(|n| n.e164.to_string())
            .collect();
        if numbers.is_empty() {
            return Ok(Some(JobEnd::Done));
        }
        let customer = self.store.get_customer(link.customer_id).await?;
        let trunk = match customer {
            _ if removing => String::new(),
            Some(c) => match c.zoom_trunk {
                Some(t) => t.as_str().to_owned(),
                None => return Ok(Some(JobEnd::Failed { error: crate::jobs::NO_TRUNK.into() })),
            },
            None => return Err(ZoomCallError::NoLink),
        };
        let updates: Vec<zoom::NumberUpdate> = numbers
            .iter()
            .map(|n| zoom::NumberUpdate {
                phone_number: n.clone(),
                sip_trunk_name: Some(trunk.clone()),
                status: Some(true),
                billing_ref_id: None,
                service_info: None,
            })
            .collect();
        let mut token = self.access_token(&link, None).await?;
        let mut refreshed = false;
        let results = loop {
            self.zoom_slot(z, account).await?;
            let answer = match repair.fix {
                ZoomFix::Add => z.client.add_peering_numbers(&token, &trunk, &numbers).await,
                ZoomFix::Update => z.client.update_peering_numbers(&token, &updates).await,
                ZoomFix::Remove => z.client.remove_peering_numbers(&token, &numbers).await,
            };
            match answer {
                Err(ZoomError::Unauthorized { .. }) if !refreshed => {
                    refreshed = true;
                    token = self.access_token(&link, Some(&token)).await?;
                }
                other => break other?,
            }
        };
        // What Zoom's answer confirms as fixed, and what it refused.
        let (mut accepted, mut refused) = (Vec::new(), Vec::new());
        for r in results {
            match r.outcome {
                zoom::Outcome::Done => accepted.push(r.phone_number),
                // Gone from the account already: what the removal wanted.
                zoom::Outcome::AlreadyDone if removing => accepted.push(r.phone_number),
                zoom::Outcome::Refused { message, .. } => refused.push((r.phone_number, message)),
                // Zoom says "already exists" for a number in any account: added again only if it is
                // in this one; one in another account is not peerex's to move.
                zoom::Outcome::AlreadyDone if repair.fix == ZoomFix::Add => {
                    self.zoom_slot(z, account).await?;
                    if z.client.find_peering_number(&token, &r.phone_number).await?.is_some() {
                        accepted.push(r.phone_number);
                    } else {
                        refused.push((
                            r.phone_number,
                            "Zoom has it in another account; move it back there, or correct peerex"
                                .into(),
                        ));
                    }
                }
                _ => {}
            }
        }
        tracing::info!(by = %repair.by, fix = ?repair.fix, numbers = numbers.len(), refused = refused.len(), "repair carried to Zoom");
        // The check after the job: what Zoom accepted is repaired now, not at the next full cycle
        // (which still compares everything, and reopens what drifts again).
        self.store.close_repaired_findings(account, &accepted, self.now()).await?;
        Ok(Some(if refused.is_empty() {
            JobEnd::Done
        } else {
            let why: Vec<String> = refused.iter().map(|(n, m)| format!("{n}: {m}")).collect();
            JobEnd::Failed { error: format!("Zoom refused the repair of {}", why.join("; ")) }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoom_lists(phone_number: &str) -> zoom::PeeringNumber {
        zoom::PeeringNumber {
            phone_number: phone_number.into(),
            sip_trunk_name: Some("trunk".into()),
            assigned: false,
            active: true,
            returned: false,
            customer_account_number: None,
            capabilities: zoom::Capabilities::default(),
        }
    }

    fn read(phone_number: &str, held: Option<&str>) -> Option<String> {
        let n = Zoomed::from(zoom_lists(phone_number));
        let held = held == Some(n.phone_number.as_str());
        checked("acct".into(), n, held).map(|l| l.e164.as_str().to_owned())
    }

    #[test]
    fn a_listed_number_is_read_as_e164_whether_peerex_holds_it_or_not() {
        // Not held: parsed, with the `+` Zoom may drop put back and spaces trimmed.
        assert_eq!(read(" 15550100123 ", None).as_deref(), Some("+15550100123"));
        assert_eq!(read("+15550100123", None).as_deref(), Some("+15550100123"));
        assert_eq!(read(" +15550100123\t", None).as_deref(), Some("+15550100123"));
        // Not E.164: left out, whatever else is listed.
        assert_eq!(read("+1555", None), None);
        assert_eq!(read("call me", None), None);
        // Held by peerex: the number it holds, not parsed again.
        assert_eq!(read("+15550100123", Some("+15550100123")).as_deref(), Some("+15550100123"));
    }
}
