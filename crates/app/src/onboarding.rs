//! Onboarding from the Zoom Marketplace (DESIGN.md §2): the install's code is exchanged, the Zoom
//! account is linked to the signed-in customer, and the customer's waiting numbers are pushed; ordering
//! more with a link; app removal (`app_deauthorized`) suspends, a re-install resumes.
//!
//! Zoom is called only here and in [`crate::jobs`], never inside a database transaction.

use crate::token_keys::{KeyError, TokenKeys};
use crate::{App, AppError, Result};
use domain::customer::{Order, OrderPick};
use domain::link::{plan_link, LinkFacts};
use domain::onboarding::{
    BudgetUse, LinkRefused, LinkState, PendingInstall, RetryPolicy, StoredTokens, Unlinked,
    ZoomLink,
};
use domain::{Actor, CustomerId, Number, ZoomAccountId};
use std::time::Duration;
use time::OffsetDateTime;
use zoom::webhook::{self, Event, WebhookError};

/// How the platform talks to Zoom; `None` on [`App`] when Zoom is not configured.
pub struct ZoomSetup {
    pub client: zoom::Client,
    pub keys: TokenKeys,
    /// The Zoom app's webhook secret token (signature of `app_deauthorized`).
    pub webhook_secret: String,
    /// How often each linked account's peering numbers are listed to learn `assigned`.
    pub poll_every: Duration,
    pub retry: RetryPolicy,
    /// How old a webhook may be.
    pub webhook_window: Duration,
    /// How long an exchanged install waits for a customer admin to sign in and confirm it.
    pub install_ttl: Duration,
    /// Calls per second per Zoom account, shared by every worker of every instance on the database
    /// (Zoom's LIGHT limit by plan); 0 for no pacing. Zoom's 429s move the account's budget and
    /// `not_before` on top of this.
    pub requests_per_second: f64,
    /// Job workers `spawn_workers` starts.
    pub workers: usize,
    /// How long a claimed job is its worker's without a heartbeat: the worker renews it every third
    /// of it while the job runs, so a job outlives any call, and a dead instance's job is taken again
    /// this long after its last heartbeat.
    pub lease: Duration,
    /// The carrier's name, in refusals the customer reads.
    pub carrier_name: String,
    /// What pushes to Zoom did in this process (for `peerex bench push` and logs).
    pub stats: PushStats,
    /// How the reconciler compares Zoom with peerex (through the same request budget).
    pub reconcile: crate::reconcile::ReconcileSettings,
    /// The carrier's own Server-to-Server app, for the carrier-wide comparison; none: only each
    /// linked account is compared.
    pub carrier: Option<crate::reconcile::CarrierApp>,
}

impl ZoomSetup {
    pub fn new(client: zoom::Client, keys: TokenKeys, webhook_secret: String) -> ZoomSetup {
        ZoomSetup {
            client,
            keys,
            webhook_secret,
            poll_every: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            webhook_window: webhook::DEFAULT_WINDOW,
            install_ttl: Duration::from_secs(15 * 60),
            requests_per_second: 20.0,
            workers: 4,
            lease: Duration::from_secs(15),
            carrier_name: "the carrier".into(),
            stats: PushStats::default(),
            reconcile: crate::reconcile::ReconcileSettings::default(),
            carrier: None,
        }
    }
}

/// Counters of the pushes this process made. `already_done` counts numbers Zoom already had: a
/// number pushed twice shows up there, so it measures duplicate pushes.
#[derive(Default, Debug)]
pub struct PushStats {
    /// POSTs of peering numbers sent (whatever Zoom answered).
    pub calls: std::sync::atomic::AtomicU64,
    /// Calls Zoom answered 429.
    pub rate_limited: std::sync::atomic::AtomicU64,
    pub added: std::sync::atomic::AtomicU64,
    pub already_done: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
}

/// Why the platform cannot talk to Zoom for a link right now.
#[derive(Debug, thiserror::Error)]
pub enum ZoomCallError {
    #[error("Zoom is not configured")]
    NotConfigured,
    #[error("the customer's Zoom link is gone")]
    NoLink,
    /// Zoom refused the link's refresh token (`invalid_grant`): nothing reaches Zoom for this
    /// account until the app is authorized again (a new install of the same account renews it).
    #[error("Zoom no longer accepts the authorization of Zoom account {account} ({reason}): the customer must add the app again in Zoom")]
    NeedsReauth { account: ZoomAccountId, reason: String },
    #[error(transparent)]
    Zoom(#[from] zoom::ZoomError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] store::DbError),
    /// The account's shared request budget is spent until then (by the other workers and instances,
    /// or by Zoom's 429): the call was not made.
    #[error("the Zoom account's request budget is used up until {}", crate::jobs::hms(*.0))]
    Budget(OffsetDateTime),
}

/// What the OAuth callback made of an install.
pub struct InstallStarted {
    /// The value of the browser's install cookie, which finds the waiting install again.
    pub cookie: String,
    /// The account's live link, whose tokens were renewed, when it has one already.
    pub renewed: Option<ZoomLink>,
    pub pending: PendingInstall,
}

/// What confirming a waiting install would do for a customer.
#[derive(Debug, PartialEq, Eq)]
pub enum InstallCheck {
    /// Ask the admin to confirm the link.
    Confirm,
    /// The account is this customer's link already (its tokens were renewed): nothing to ask.
    AlreadyLinked,
    /// Refused, with what to tell the admin; recorded for operators.
    Refused(String),
}

/// What a webhook did.
#[derive(Debug)]
pub enum WebhookAnswer {
    /// The body to answer `endpoint.url_validation` with.
    UrlValidation(serde_json::Value),
    /// The app was removed: the link is removed and `suspended` numbers suspended.
    AppRemoved { customer: CustomerId, suspended: usize },
    /// An emergency-address or CNAM event, recorded for the numbers that are the customer's.
    NumberFacts(crate::number_facts::FactsRecorded),
    /// An event peerex does not act on.
    Ignored(String),
}

/// Why a webhook was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefused {
    #[error("Zoom is not configured")]
    NotConfigured,
    #[error(transparent)]
    Invalid(#[from] WebhookError),
    #[error("this delivery was seen already")]
    Replayed,
    #[error("no customer is linked to Zoom account {0}")]
    UnknownAccount(String),
    /// Only the Zoom account a number's customer is linked to may speak for the number.
    #[error("not numbers of the customer linked to this Zoom account: {}", .0.join(", "))]
    NotTheAccountsNumbers(Vec<String>),
}

pub const REMOVED_REASON: &str = "app removed in Zoom";

/// Tries `step` up to four times, 0.2, 0.4 and 0.8 s apart, for a step after one that cannot be
/// undone (a code exchanged, a token rotated): what it leaves is lost if the step fails for a
/// moment (Zoom's 5xx or 429, a database failing over).
async fn again<
    T,
    E: std::fmt::Display,
    F: std::future::Future<Output = std::result::Result<T, E>>,
>(
    mut step: impl FnMut() -> F,
) -> std::result::Result<T, E> {
    let mut wait = Duration::from_millis(200);
    for _ in 0..3 {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(error = %e, "a step after an exchange with Zoom failed; trying again")
            }
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    step().await
}

/// How long a refreshed token pair the database refuses is tried again (a failover, a lost
/// connection) before it is given up; the refresh lease covers it.
const STORE_REFRESHED_FOR: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

impl App {
    pub fn zoom(&self) -> Result<&ZoomSetup> {
        self.zoom
            .as_deref()
            .ok_or_else(|| AppError::Refused("Zoom is not configured on this platform".into()))
    }

    /// The first half of a Marketplace install, at the OAuth callback: the code is exchanged and
    /// `users/me` says which Zoom account authorized. Nothing is linked: the install waits, sealed in
    /// the database under a cookie of the browser that opened the callback, for a signed-in
    /// customer admin to confirm it ([`App::confirm_install`]) — a code in a URL proves nothing
    /// about who opened it.
    ///
    /// When the account is already linked to a customer, its new tokens replace that link's at
    /// once: Zoom revoked the old ones when it authorized the app again, and these belong to the
    /// same account. (`renewed` says so; whoever confirms later is checked as usual.)
    pub async fn begin_install(&self, code: &str) -> Result<InstallStarted> {
        self.zoom()?;
        let code = code.trim();
        if code.is_empty() || code.len() > 2048 {
            return Err(AppError::invalid("code", "is missing or too long"));
        }
        // Once Zoom has the code it spends it and, for an account authorized before, revokes the
        // link's old tokens: from then on the new pair exists only here. So the exchange and what
        // follows run on a task of their own (the browser hanging up does not cut them short; a
        // stop waits for them), each step after the exchange tried again when it fails.
        let app = self.clone();
        let code = code.to_owned();
        self.unfinished
            .run(async move { app.install_with(&code).await })
            .await
            .unwrap_or_else(|| Err(AppError::Refused("peerex is stopping: add the app again from the Zoom App Marketplace in a minute.".into())))
    }

    /// [`App::begin_install`]'s exchange of `code` and what follows.
    async fn install_with(&self, code: &str) -> Result<InstallStarted> {
        let z = self.zoom()?;
        let tokens = z
            .client
            .exchange_code(code, None)
            .await
            .map_err(|e| zoom_refusal("exchange the authorization code with Zoom", e))?;
        let me = again(|| z.client.me(&tokens.access_token))
            .await
            .map_err(|e| zoom_refusal("read the Zoom account (users/me)", e))?;
        let account = ZoomAccountId::parse(&me.account_id).map_err(|e| {
            tracing::warn!(zoom_account = ?me.account_id, error = %e, "install: users/me named an unusable account id");
            AppError::Refused(format!("Zoom named an account id that cannot be linked ({e}); nothing was changed. Add the app again from the Zoom App Marketplace."))
        })?;
        let sealed = StoredTokens {
            access_token: z.keys.seal("access", &tokens.access_token),
            refresh_token: z.keys.seal("refresh", &tokens.refresh_token),
            expires_at: tokens.expires_at,
            generation: 0,
        };
        let now = self.now();
        let renewed =
            again(|| self.store.renew_link_tokens(&account, &me.user_id, &sealed, now)).await?;
        if let Some(link) = &renewed {
            tracing::info!(customer = %link.customer_id, zoom_account = %account, "app authorized again: the link's tokens renewed");
        }
        let ttl = time::Duration::try_from(z.install_ttl).unwrap_or(time::Duration::minutes(15));
        let pending = PendingInstall {
            zoom_account_id: account,
            zoom_user_id: me.user_id,
            zoom_email: me.email,
            zoom_name: me.name,
            zoom_account_number: me.account_number,
            tokens: sealed,
            created_at: now,
            valid_until: now + ttl,
        };
        let cookie = crate::auth::random_secret();
        let digest = crate::auth::digest(&cookie);
        again(|| self.store.insert_pending_install(&digest, &pending)).await?;
        Ok(InstallStarted { cookie, renewed, pending })
    }

    /// The install waiting for the browser holding `cookie`, if any (and not expired).
    pub async fn pending_install(&self, cookie: &str) -> Result<Option<PendingInstall>> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        Ok(self.store.pending_install(&crate::auth::digest(cookie), self.now()).await?)
    }

    /// What confirming `pending` would do for `customer`, before asking: link it, nothing (it is
    /// the customer's link already, renewed at the callback), or a refusal. Refusals and the
    /// already-linked case end the install; refusals are recorded for operators.
    pub async fn check_install(
        &self,
        customer: CustomerId,
        cookie: &str,
        pending: &PendingInstall,
    ) -> Result<InstallCheck> {
        let carrier = self.zoom()?.carrier_name.clone();
        let account = &pending.zoom_account_id;
        let live_for_account = self.store.live_link_by_account(account).await?;
        if live_for_account.as_ref().is_some_and(|l| l.customer_id == customer) {
            self.cancel_install(cookie).await?;
            return Ok(InstallCheck::AlreadyLinked);
        }
        let live_for_customer =
            self.store.zoom_link(customer).await?.filter(|l| l.state == LinkState::Linked);
        let facts = LinkFacts {
            customer,
            account: account.as_str(),
            contract: self.customer(customer).await?.contract_state,
            live_for_account: live_for_account.as_ref(),
            live_for_customer: live_for_customer.as_ref(),
            earlier: None,
        };
        // The same rules the confirming transaction applies (`link_zoom_account`), asked early so
        // the admin is not asked to confirm what would be refused.
        let refused = plan_link(facts, &carrier).err();
        match refused {
            None => Ok(InstallCheck::Confirm),
            Some(r) => {
                tracing::warn!(customer = %customer, zoom_account = %account, reason = %r, "Zoom link refused");
                self.store
                    .record_link_refusal(Some(customer), account, &r.to_string(), self.now())
                    .await?;
                self.cancel_install(cookie).await?;
                Ok(InstallCheck::Refused(r.to_string()))
            }
        }
    }

    /// The customer admin confirmed linking the Zoom account `account` (as the confirmation page
    /// named it) to `customer`: the install waiting under `cookie` is taken (once) and linked, and
    /// the customer's waiting numbers are queued for Zoom. A refusal (either side linked elsewhere,
    /// an account other than the one confirmed) changes nothing and is recorded for operators.
    pub async fn confirm_install(
        &self,
        customer: CustomerId,
        cookie: &str,
        account: &str,
        by: &Actor,
    ) -> Result<(ZoomLink, usize)> {
        // The waiting install (its tokens the only copy) is taken, then linked: on a task of its
        // own, so that the browser hanging up between the two does not lose it.
        let (app, cookie, account, by) =
            (self.clone(), cookie.to_owned(), account.to_owned(), by.clone());
        self.unfinished
            .run(async move { app.take_and_link(customer, &cookie, &account, &by).await })
            .await
            .unwrap_or_else(|| {
                Err(AppError::Refused("peerex is stopping: confirm again in a minute.".into()))
            })
    }

    async fn take_and_link(
        &self,
        customer: CustomerId,
        cookie: &str,
        account: &str,
        by: &Actor,
    ) -> Result<(ZoomLink, usize)> {
        let z = self.zoom()?;
        let digest = crate::auth::digest(cookie);
        let taken = if cookie.is_empty() || cookie.len() > 128 {
            None
        } else {
            self.store.take_pending_install(&digest, self.now()).await?
        };
        let Some(p) = taken else {
            return Err(AppError::Refused("No Zoom install is waiting for this browser (it was confirmed already, or waited too long). Add the app again from the Zoom App Marketplace.".into()));
        };
        if ZoomAccountId::parse(account).ok().as_ref() != Some(&p.zoom_account_id) {
            return Err(AppError::Refused(format!("The Zoom install waiting here is for Zoom account {}, not the one you confirmed; nothing was linked. Add the app again from the Zoom App Marketplace.", p.zoom_account_id)));
        }
        let account = &p.zoom_account_id;
        let carrier = z.carrier_name.clone();
        let now = self.now();
        let stored = StoredTokens { generation: 0, ..p.tokens.clone() };
        match self
            .store
            .link_zoom_account(customer, account, &p.zoom_user_id, &stored, &carrier, by, now)
            .await
        {
            Ok(Ok(done)) => {
                // The first poll of the account's numbers: a minute on, or sooner when polls are frequent.
                let first = now
                    + time::Duration::try_from(z.poll_every.min(Duration::from_secs(60)))
                        .unwrap_or(time::Duration::minutes(1));
                self.store.poll_now(customer, first).await?;
                // The carrier-wide listing names the account by its number.
                if !p.zoom_account_number.trim().is_empty() {
                    self.store
                        .set_link_account_number(account, p.zoom_account_number.trim())
                        .await?;
                }
                tracing::info!(customer = %customer, zoom_account = %account, queued = done.1, by = %by, "Zoom account linked");
                Ok(done)
            }
            Ok(Err(refused)) => {
                tracing::warn!(customer = %customer, zoom_account = %account, reason = %refused, "Zoom link refused");
                self.store
                    .record_link_refusal(Some(customer), account, &refused.to_string(), now)
                    .await?;
                Err(AppError::Refused(refused.to_string()))
            }
            // Two installs racing for one account: the database's unique index decided.
            Err(store::DbError::Conflict { constraint })
                if constraint.starts_with("zoom_links_") =>
            {
                let refused = LinkRefused::AccountTaken { carrier };
                self.store
                    .record_link_refusal(Some(customer), account, &refused.to_string(), now)
                    .await?;
                Err(AppError::Refused(refused.to_string()))
            }
            Err(e) => {
                // Linked after all (the commit landed, its answer was lost)? Then it is not put back.
                if let Ok(Some(link)) = self.store.live_link_by_account(account).await {
                    if link.customer_id == customer {
                        tracing::warn!(customer = %customer, zoom_account = %account, error = %e, "Zoom account linked, though the database's answer was lost");
                        return Err(e.into());
                    }
                }
                // Nothing was linked: the install waits again, for the admin to confirm again.
                if let Err(back) = again(|| self.store.insert_pending_install(&digest, &p)).await {
                    tracing::error!(customer = %customer, zoom_account = %account, error = %back, "a Zoom install taken but not linked could not be put back: the customer must add the app again");
                }
                Err(e.into())
            }
        }
    }

    /// Forgets the install waiting under `cookie` (the admin said no, or it was refused). Its
    /// tokens are not revoked: when the account is linked already they are that link's now.
    pub async fn cancel_install(&self, cookie: &str) -> Result<()> {
        if !cookie.is_empty() && cookie.len() <= 128 {
            self.store.take_pending_install(&crate::auth::digest(cookie), self.now()).await?;
        }
        Ok(())
    }

    /// Places an order and, when the customer's Zoom account is linked, pushes it at once. A customer
    /// who removed the app cannot order; one who never installed it gets a pending order (onboarding).
    pub async fn order_numbers(
        &self,
        customer: CustomerId,
        pick: OrderPick,
        explicit: &[String],
        by: &Actor,
    ) -> Result<(Order, Vec<Number>)> {
        let link = self.store.zoom_link(customer).await?;
        if let Some(l) = link.as_ref().filter(|l| l.state == LinkState::Removed) {
            return Err(AppError::Refused(format!(
                "no order can be placed: the app was removed from Zoom account {} — install it again from the Zoom App Marketplace first",
                l.zoom_account_id
            )));
        }
        let (order, numbers) =
            self.place_order(customer, pick, explicit, link.is_some(), by).await?;
        if link.is_some() {
            // Applied with it: read again, as it is now.
            let (order, numbers) = self.order(order.id, Some(customer)).await?;
            return Ok((order, numbers));
        }
        Ok((order, numbers))
    }

    /// A customer's own order from the portal: only with a live link.
    pub async fn order_more(
        &self,
        customer: CustomerId,
        pick: OrderPick,
        by: &Actor,
    ) -> Result<(Order, Vec<Number>)> {
        match self.store.zoom_link(customer).await? {
            Some(l) if l.state == LinkState::Linked => self.order_numbers(customer, pick, &[], by).await,
            Some(l) => Err(AppError::Refused(format!(
                "no order can be placed: the app was removed from Zoom account {} — install it again from the Zoom App Marketplace first",
                l.zoom_account_id
            ))),
            None => Err(AppError::Refused("no order can be placed yet: your Zoom account is not linked — add the app from the Zoom App Marketplace first".into())),
        }
    }

    /// A webhook from Zoom: signature and timestamp first, then the event. Refusals change nothing.
    pub async fn zoom_webhook(
        &self,
        timestamp: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<std::result::Result<WebhookAnswer, WebhookRefused>> {
        let Some(z) = self.zoom.as_deref() else { return Ok(Err(WebhookRefused::NotConfigured)) };
        let now = self.now();
        if let Err(e) =
            webhook::verify(&z.webhook_secret, timestamp, signature, body, now, z.webhook_window)
        {
            return Ok(Err(e.into()));
        }
        let event = match webhook::parse(body) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e.into())),
        };
        if let Event::UrlValidation { plain_token } = &event {
            return Ok(Ok(WebhookAnswer::UrlValidation(webhook::url_validation_response(
                &z.webhook_secret,
                plain_token,
            ))));
        }
        // A delivery seen within the window is a replay, whichever instance saw it and however its
        // signature header is written: the memory is in the database, keyed on the signed content.
        let window =
            time::Duration::try_from(z.webhook_window).unwrap_or(time::Duration::minutes(5));
        let sent = timestamp
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(now);
        let digest = webhook::content_digest(timestamp, body);
        let keep_until = sent.max(now) + window + time::Duration::seconds(1);
        if !self.store.remember_webhook(&digest, now, keep_until).await? {
            return Ok(Err(WebhookRefused::Replayed));
        }
        // Remembered, so acted on whatever becomes of this request (Zoom hanging up, a stop); if
        // acting fails, forgotten again, so that Zoom's retry is taken.
        let app = self.clone();
        let body = body.to_vec();
        let acted = self.unfinished.run(async move {
            let acted = app.act_on_webhook(event, &body, sent).await;
            if acted.is_err() {
                if let Err(e) = app.store.forget_webhook(&digest).await {
                    tracing::warn!(error = %e, "a Zoom webhook not acted on could not be forgotten: a retry of it with the same signature will be refused as a replay");
                }
            }
            acted
        });
        acted
            .await
            .unwrap_or_else(|| Err(AppError::Refused("peerex is stopping: send it again".into())))
    }

    /// What a verified, first-seen webhook from Zoom does.
    async fn act_on_webhook(
        &self,
        event: Event,
        body: &[u8],
        sent: OffsetDateTime,
    ) -> Result<std::result::Result<WebhookAnswer, WebhookRefused>> {
        let now = self.now();
        match event {
            Event::AppDeauthorized { account_id, .. } => {
                // An id no link can have is no link's.
                let Ok(account) = ZoomAccountId::parse(&account_id) else {
                    return Ok(Err(WebhookRefused::UnknownAccount(account_id)));
                };
                let by = Actor::System("zoom:app_deauthorized".into());
                // Zoom re-sends a delivery it thinks failed, signed afresh: what decides is when the
                // app was removed, not when this copy was sent.
                let removed_at = webhook::event_time(body).unwrap_or(sent);
                match self
                    .store
                    .unlink_zoom_account_removed_at(&account, REMOVED_REASON, removed_at, &by, now)
                    .await?
                {
                    Unlinked::Removed { link, suspended } => {
                        tracing::info!(customer = %link.customer_id, zoom_account = %account_id, suspended, "app removed in Zoom");
                        // The account's numbers stay in Zoom, in an account no customer links now:
                        // only the carrier-wide listing sees them, so its cycle comes forward.
                        self.reconcile_soon(crate::reconcile::CARRIER).await;
                        Ok(Ok(WebhookAnswer::AppRemoved { customer: link.customer_id, suspended }))
                    }
                    Unlinked::Newer(link) => {
                        tracing::info!(customer = %link.customer_id, zoom_account = %account_id, %removed_at, linked_at = %link.linked_at, "app_deauthorized older than the current install; ignored");
                        Ok(Ok(WebhookAnswer::Ignored(
                            "app_deauthorized: the app was installed again after this removal"
                                .into(),
                        )))
                    }
                    Unlinked::NoLink => Ok(Err(WebhookRefused::UnknownAccount(account_id))),
                }
            }
            Event::NumberChanged(e) => self.on_number_event(e).await,
            Event::Other { event } => Ok(Ok(WebhookAnswer::Ignored(event))),
            Event::UrlValidation { .. } => unreachable!("answered above"),
        }
    }

    /// A usable access token for `link`: the stored one while it has a minute left, else a refresh.
    /// A refresh is a compare-and-swap on the token row: exactly one worker spends the refresh token,
    /// the others wait for its result. `stale` (after a 401) forces a refresh unless another worker
    /// already refreshed since `stale` was read.
    pub async fn access_token(
        &self,
        link: &ZoomLink,
        stale: Option<&str>,
    ) -> std::result::Result<String, ZoomCallError> {
        let z = self.zoom.as_deref().ok_or(ZoomCallError::NotConfigured)?;
        if let Some(reason) = link.reauth_needed_at.and(link.reauth_reason.clone()) {
            return Err(ZoomCallError::NeedsReauth {
                account: link.zoom_account_id.clone(),
                reason,
            });
        }
        let owner = uuid::Uuid::now_v7().to_string();
        // The refresh lease outlives the refresh call, whatever the configured timeout, and the
        // store's tries after it: while it is held no other worker spends the same rotating
        // refresh token (which Zoom may have rotated away already).
        let call = z.client.timeout() + Duration::from_secs(1);
        let lease = time::Duration::try_from(call + Duration::from_secs(30) + STORE_REFRESHED_FOR)
            .unwrap_or(time::Duration::minutes(10));
        // Another worker's refresh is waited for as long as its lease may last.
        let wait_until = std::time::Instant::now() + lease.unsigned_abs();
        let mut pause = Duration::from_millis(50);
        loop {
            let Some(t) = self.store.zoom_tokens(link.id).await? else {
                return Err(ZoomCallError::NoLink);
            };
            let now = self.now();
            let access = z.keys.open("access", &t.access_token)?;
            let fresh = t.expires_at > now + time::Duration::seconds(60);
            if fresh && stale.is_none_or(|s| s != access) {
                return Ok(access);
            }
            if self
                .store
                .begin_token_refresh(link.id, t.generation, &owner, now + lease, now)
                .await?
            {
                // Zoom's refresh tokens are spent once: from the moment the refresh is sent, its
                // answer must reach the database whatever becomes of this caller (a job dropped
                // when its lease is lost, a stop that aborts the workers). So the exchange and the
                // store run on a task of their own, which the caller only waits for and a stop
                // waits for too.
                let app = self.clone();
                let (link, owner) = (link.clone(), owner.clone());
                let refreshing = self
                    .unfinished
                    .run(async move { app.refresh_and_store(&link, t, &owner, call, lease).await });
                match refreshing.await {
                    Some(Ok(Some(access))) => return Ok(access),
                    // Another worker took the refresh over: the row says what happened.
                    Some(Ok(None)) => {}
                    Some(Err(e)) => return Err(e),
                    // The runtime is stopping.
                    None => return Err(ZoomCallError::Zoom(zoom::ZoomError::Timeout)),
                }
            } else if std::time::Instant::now() < wait_until {
                // Another worker is refreshing; its result lands in the row.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            } else {
                return Err(ZoomCallError::Zoom(zoom::ZoomError::Timeout));
            }
        }
    }

    /// Spends `t`'s refresh token (the caller holds its lease as `owner`) and stores the new pair:
    /// the new access token, or `None` when another worker took the refresh over before the store.
    /// A store that fails is tried again while the lease lasts (it covers [`STORE_REFRESHED_FOR`]
    /// of tries): the new pair exists nowhere else, and once it is lost the link needs the customer
    /// to authorize the app again. (Past the lease another worker may spend the old refresh token.)
    async fn refresh_and_store(
        &self,
        link: &ZoomLink,
        t: StoredTokens,
        owner: &str,
        call: Duration,
        lease: time::Duration,
    ) -> std::result::Result<Option<String>, ZoomCallError> {
        let z = self.zoom.as_deref().ok_or(ZoomCallError::NotConfigured)?;
        // A little inside the lease, which the database measures from a moment earlier.
        let until = std::time::Instant::now() + lease.unsigned_abs().saturating_sub(SECOND * 5);
        let refresh = z.keys.open("refresh", &t.refresh_token)?;
        let answer = tokio::time::timeout(call, z.client.refresh(&refresh))
            .await
            .unwrap_or(Err(zoom::ZoomError::Timeout));
        let new = match answer {
            Ok(new) => new,
            Err(zoom::ZoomError::InvalidGrant { message }) => {
                // Zoom will not take this refresh token again (the app was authorized again, or
                // the grant revoked): say so where operators and the customer look, instead of
                // failing job after job behind a healthy-looking link.
                self.store.abandon_token_refresh(link.id, owner).await?;
                if self.store.mark_link_reauth(link.id, t.generation, &message, self.now()).await? {
                    tracing::warn!(customer = %link.customer_id, zoom_account = %link.zoom_account_id, %message, "Zoom refused the link's refresh token: it needs the app authorized again");
                }
                return Err(ZoomCallError::NeedsReauth {
                    account: link.zoom_account_id.clone(),
                    reason: message,
                });
            }
            Err(e) => {
                self.store.abandon_token_refresh(link.id, owner).await?;
                return Err(e.into());
            }
        };
        // Stored before use: once the new pair is used the old refresh token is dead.
        let sealed = StoredTokens {
            access_token: z.keys.seal("access", &new.access_token),
            refresh_token: z.keys.seal("refresh", &new.refresh_token),
            expires_at: new.expires_at,
            generation: t.generation + 1,
        };
        let mut wait = Duration::from_millis(50);
        loop {
            match self
                .store
                .finish_token_refresh(link.id, t.generation, owner, &sealed, self.now())
                .await
            {
                Ok(true) => return Ok(Some(new.access_token)),
                Ok(false) => return Ok(None),
                Err(e) if std::time::Instant::now() + wait < until => {
                    tracing::warn!(customer = %link.customer_id, zoom_account = %link.zoom_account_id, error = %e, "storing refreshed Zoom tokens failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(customer = %link.customer_id, zoom_account = %link.zoom_account_id, error = %e, "refreshed Zoom tokens could not be stored: they are lost");
                    return Err(e.into());
                }
            }
        }
    }
}

impl App {
    /// Waits for a slot of the account's request budget before a call to Zoom. The budget is in the
    /// database, shared by every worker of every instance, so together they stay under
    /// `requests_per_second`; a 429 from Zoom moves it on. A slot further off than a few seconds is
    /// not waited for: `Budget` says until when (a job is retried then).
    pub(crate) async fn zoom_slot(
        &self,
        z: &ZoomSetup,
        account: &ZoomAccountId,
    ) -> std::result::Result<(), ZoomCallError> {
        self.zoom_slot_at(account, z.requests_per_second, false).await
    }

    /// As [`App::zoom_slot`], for a budget of `requests_per_second` (the carrier's own account's);
    /// a `listing` (a reconciliation's page) gives way to the account's other calls while one has
    /// a slot planned, a gap at a time, up to [`LISTING_GIVES_WAY`] gaps in a row: a push keeps
    /// nearly all of the budget beside a reconciliation, which still moves on.
    pub(crate) async fn zoom_slot_at(
        &self,
        account: &ZoomAccountId,
        requests_per_second: f64,
        listing: bool,
    ) -> std::result::Result<(), ZoomCallError> {
        const LONGEST_WAIT: Duration = Duration::from_secs(5);
        let gap_us = if requests_per_second > 0.0 {
            (1_000_000.0 / requests_per_second).ceil() as i64
        } else {
            0
        };
        let mut gave_way = 0;
        let slot = loop {
            let by = match (listing, gave_way < LISTING_GIVES_WAY) {
                (false, _) => BudgetUse::Call,
                (true, true) => BudgetUse::Listing,
                (true, false) => BudgetUse::OverdueListing,
            };
            let now_us = micros(self.now());
            if let Some(slot) = self.store.take_zoom_slot(account, now_us, gap_us, by).await? {
                break slot;
            }
            gave_way += 1;
            // At least a millisecond: an unpaced budget (no rate) still waits between two tries.
            tokio::time::sleep(Duration::from_micros(gap_us.unsigned_abs().max(1000))).await;
        };
        let now = self.now();
        let wait = Duration::from_micros(u64::try_from(slot - micros(now)).unwrap_or(0));
        if wait > LONGEST_WAIT {
            let until = now + time::Duration::try_from(wait).unwrap_or(time::Duration::minutes(1));
            return Err(ZoomCallError::Budget(until));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// How many of the account's slots in a row a reconciliation's listing leaves to its other calls
/// before it takes one anyway: beside a push, the listing gets at most one slot in twenty.
pub(crate) const LISTING_GIVES_WAY: u32 = 19;

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// A Zoom failure during an install, as the admin reads it.
fn zoom_refusal(what: &str, e: zoom::ZoomError) -> AppError {
    tracing::warn!(error = %e, "install: could not {what}");
    match e {
        zoom::ZoomError::InvalidGrant { .. } => {
            AppError::Refused("Zoom did not accept this install's code (it was used already or has expired). Add the app again from the Zoom App Marketplace.".into())
        }
        e if e.is_retryable() => AppError::Refused(format!("Zoom could not be reached to {what}; try the install again in a minute.")),
        e => AppError::Refused(format!("Zoom refused to {what}: {e}")),
    }
}
