//! Signed webhooks to the carrier's systems (Standard Webhooks): operators manage endpoints, and
//! dispatchers deliver the outbox's events to them. The change path only writes events (see the
//! store's outbox); everything here runs beside it.
//!
//! A delivery is `POST <url>` with `{"type", "timestamp", "data"}` and the headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one
//! per secret that signs, space-separated). Receivers are not trusted: redirects are not followed,
//! answers are read to a few KB at most, every attempt has a deadline, and an endpoint's host is
//! resolved and checked at each attempt, connecting only to the addresses that passed.

use crate::token_keys::TokenKeys;
use crate::{App, AppError, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use domain::webhook::{
    check_url, forbidden_address, next_attempt, AttemptOutcome, Delivery, DeliveryState, Endpoint,
    EventType, LeasedDelivery,
};
use domain::Actor;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What the sealed secrets are bound to (see `TokenKeys`).
const SECRET_PURPOSE: &str = "webhook";
/// How often each dispatcher removes old history (`WebhookSettings::keep`).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How much of an answer is read (the rest is dropped with the connection).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024;

/// How webhooks are delivered (`[webhooks]` in the configuration).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Endpoints may point at private, loopback and link-local addresses (tests, the demo).
    pub allow_private_targets: bool,
    /// Pauses between failed attempts; after the last the delivery is given up.
    pub retry_schedule: Vec<time::Duration>,
    /// An endpoint failing this many attempts in a row ...
    pub disable_after_failures: i64,
    /// ... over at least this long is disabled.
    pub disable_after: time::Duration,
    /// Deadline of one attempt (connecting, sending, the answer).
    pub timeout: Duration,
    /// Deliveries one dispatcher sends at once.
    pub concurrency: usize,
    /// How long the secret before a rotation keeps signing, unless the rotation says otherwise.
    pub rotation_overlap: time::Duration,
    /// Pause of an idle dispatcher before it looks for new events again.
    pub poll: Duration,
    /// How long events and their ended deliveries are kept (`None`: for ever).
    pub keep: Option<time::Duration>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_schedule: domain::webhook::default_retry_schedule(),
            disable_after_failures: 20,
            disable_after: time::Duration::days(5),
            timeout: Duration::from_secs(15),
            concurrency: 32,
            rotation_overlap: time::Duration::hours(24),
            poll: Duration::from_millis(500),
            keep: Some(time::Duration::days(30)),
        }
    }
}

/// What an operator gives for a new endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    /// Type names; empty for all.
    pub event_types: Vec<String>,
}

/// What an operator may change; `None` leaves it as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A new random secret as receivers configure it: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 32]>()))
}

/// The `webhook-signature` entry one secret gives: `v1,<base64 HMAC-SHA256("id.timestamp.body")>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The body of a delivery: `{"type", "timestamp", "data"}` (`data` as the outbox stores it).
pub fn body(event_type: &str, at: time::OffsetDateTime, data: &str) -> String {
    let ts = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string());
    format!(
        "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
        serde_json::Value::from(event_type),
        serde_json::Value::from(ts),
        data
    )
}

fn parse_types(names: &[String]) -> Result<Vec<EventType>> {
    let mut types = Vec::new();
    for n in names {
        let t = EventType::parse(n.trim()).ok_or_else(|| {
            AppError::invalid("event_types", format!("{n:?} is not an event type"))
        })?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.sort();
    Ok(types)
}

impl App {
    /// The keys that seal endpoint secrets: the webhook keys when configured, else Zoom's.
    fn webhook_keys(&self) -> Result<&TokenKeys> {
        self.webhook_keys
            .as_deref()
            .or(self.zoom.as_deref().map(|z| &z.keys))
            .ok_or_else(|| {
                AppError::Refused(
                    "webhooks need a key to seal their secrets: set webhooks.secret_key (or zoom.token_key)".into(),
                )
            })
    }

    /// Refuses a URL that is malformed, or whose host is (or resolves to) an address of the
    /// carrier's own network unless private targets are allowed.
    async fn check_endpoint_url(&self, url: &str) -> Result<String> {
        let url = url.trim();
        let (host, port) = check_url(url).map_err(|m| AppError::invalid("url", m))?;
        if self.settings.webhooks.allow_private_targets {
            return Ok(url.to_owned());
        }
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            // An unresolvable host is accepted: it is checked again at each delivery.
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        if let Some((ip, why)) = addrs.iter().find_map(|ip| forbidden_address(*ip).map(|w| (ip, w)))
        {
            // A name's address is not told: that would map the carrier's internal names for
            // whoever holds a token.
            let what = if host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok() {
                format!("{host} is {ip}, a {why} address")
            } else {
                format!("{host} resolves to an address that is not public")
            };
            return Err(AppError::invalid(
                "url",
                format!("{what}; webhooks go only to public addresses (see webhooks.allow_private_targets)"),
            ));
        }
        Ok(url.to_owned())
    }

    /// Adds an endpoint. Returns it and its secret, which is shown only now.
    pub async fn create_webhook_endpoint(
        &self,
        by: &Actor,
        input: EndpointInput,
    ) -> Result<(Endpoint, String)> {
        let url = self.check_endpoint_url(&input.url).await?;
        let event_types = parse_types(&input.event_types)?;
        if input.description.len() > 500 {
            return Err(AppError::invalid("description", "is longer than 500 characters"));
        }
        let keys = self.webhook_keys()?;
        let secret = new_secret();
        let now = self.now();
        let e = Endpoint {
            id: Uuid::now_v7(),
            url,
            description: input.description.trim().to_owned(),
            event_types,
            enabled: true,
            disabled_reason: None,
            failures: 0,
            previous_secret_until: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&e, &keys.seal(SECRET_PURPOSE, &secret)).await?;
        tracing::info!(endpoint = %e.id, url = %e.url, by = %by, "webhook endpoint added");
        Ok((e, secret))
    }

    pub async fn webhook_endpoints(&self) -> Result<Vec<Endpoint>> {
        Ok(self.store.webhook_endpoints().await?)
    }

    pub async fn webhook_endpoint(&self, id: Uuid) -> Result<Endpoint> {
        self.store.webhook_endpoint(id).await?.ok_or(AppError::NotFound)
    }

    pub async fn update_webhook_endpoint(
        &self,
        by: &Actor,
        id: Uuid,
        change: EndpointChange,
    ) -> Result<Endpoint> {
        let mut e = self.webhook_endpoint(id).await?;
        if let Some(url) = change.url {
            e.url = self.check_endpoint_url(&url).await?;
        }
        if let Some(d) = change.description {
            if d.len() > 500 {
                return Err(AppError::invalid("description", "is longer than 500 characters"));
            }
            e.description = d.trim().to_owned();
        }
        if let Some(t) = change.event_types {
            e.event_types = parse_types(&t)?;
        }
        if let Some(on) = change.enabled {
            if on != e.enabled {
                e.disabled_reason = (!on).then(|| format!("disabled by {by}"));
                if on {
                    e.failures = 0;
                }
            }
            e.enabled = on;
        }
        e.updated_at = self.now();
        if !self.store.update_webhook_endpoint(&e).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(endpoint = %e.id, enabled = e.enabled, by = %by, "webhook endpoint changed");
        Ok(e)
    }

    /// Gives an endpoint a new secret (returned, shown only now); the old one keeps signing beside
    /// it for `overlap` (the configured overlap when `None`), so receivers can switch without a gap.
    pub async fn rotate_webhook_secret(
        &self,
        by: &Actor,
        id: Uuid,
        overlap: Option<time::Duration>,
    ) -> Result<(Endpoint, String)> {
        let keys = self.webhook_keys()?;
        let overlap = overlap.unwrap_or(self.settings.webhooks.rotation_overlap);
        if overlap.is_negative() || overlap > time::Duration::days(30) {
            return Err(AppError::invalid("overlap_seconds", "must be between 0 and 30 days"));
        }
        let secret = new_secret();
        let now = self.now();
        let sealed = keys.seal(SECRET_PURPOSE, &secret);
        if !self.store.rotate_webhook_secret(id, &sealed, now + overlap, now).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(endpoint = %id, by = %by, "webhook secret rotated");
        Ok((self.webhook_endpoint(id).await?, secret))
    }

    pub async fn delete_webhook_endpoint(&self, by: &Actor, id: Uuid) -> Result<()> {
        if !self.store.delete_webhook_endpoint(id).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(endpoint = %id, by = %by, "webhook endpoint removed");
        Ok(())
    }

    pub async fn webhook_deliveries(
        &self,
        id: Uuid,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.webhook_endpoint(id).await?;
        Ok(self.store.webhook_deliveries(id, state, limit.clamp(1, 1_000)).await?)
    }

    /// Sends an event to an endpoint again, at once (in order after any earlier event of its key
    /// still waiting).
    pub async fn replay_webhook_delivery(&self, by: &Actor, id: Uuid, event: Uuid) -> Result<()> {
        if !self.store.replay_delivery(id, event, self.now()).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(endpoint = %id, event = %event, by = %by, "webhook delivery replayed");
        Ok(())
    }

    /// The latest events in the outbox, newest first.
    pub async fn outbound_events(&self, limit: i64) -> Result<Vec<domain::webhook::OutboundEvent>> {
        Ok(self.store.outbound_events(limit.clamp(1, 1_000)).await?)
    }

    /// Deliveries waiting and endpoints disabled (metrics, the operators' banner).
    pub async fn webhook_backlog(&self) -> Result<(i64, i64)> {
        Ok(self.store.webhook_backlog().await?)
    }

    /// Removes events older than `webhooks.keep` whose deliveries have all ended, with those
    /// deliveries, in batches; returns how many events. Any instance may run it at any time.
    pub async fn prune_webhook_history(&self) -> Result<u64> {
        let Some(keep) = self.settings.webhooks.keep else { return Ok(0) };
        let before = self.now() - keep;
        let mut removed = 0;
        loop {
            let n = self.store.prune_webhook_history(before, 500).await?;
            removed += n;
            if n == 0 {
                return Ok(removed);
            }
        }
    }

    /// A dispatcher named `owner` (its name in the deliveries it leases).
    pub fn webhook_dispatcher(&self, owner: &str) -> Dispatcher {
        Dispatcher::new(self.clone(), owner)
    }

    /// Starts a dispatcher in the background; `shutdown` on what it returns hands back what it holds.
    pub fn spawn_webhook_dispatcher(&self) -> DispatcherHandle {
        let instance = Uuid::now_v7().simple().to_string();
        let dispatcher = Arc::new(self.webhook_dispatcher(&format!("hooks-{}", &instance[20..])));
        let d = dispatcher.clone();
        let poll = self.settings.webhooks.poll;
        let app = self.clone();
        let task = tokio::spawn(async move {
            let mut pruned_at: Option<tokio::time::Instant> = None;
            loop {
                if pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    pruned_at = Some(tokio::time::Instant::now());
                    match app.prune_webhook_history().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(events = n, "webhooks: old events removed"),
                        Err(e) => tracing::warn!(error = %e, "webhooks: cannot remove old events"),
                    }
                }
                match d.run_once().await {
                    Ok(0) => tokio::time::sleep(poll).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "webhook dispatcher: database error; pausing");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        DispatcherHandle { task, dispatcher }
    }
}

/// A running background dispatcher.
pub struct DispatcherHandle {
    task: tokio::task::JoinHandle<()>,
    dispatcher: Arc<Dispatcher>,
}

impl DispatcherHandle {
    /// A clean stop: attempts under way are abandoned and their deliveries handed back at once.
    pub async fn shutdown(self) -> u64 {
        self.task.abort();
        let _ = self.task.await;
        let d = &self.dispatcher;
        d.app.store.hand_back_deliveries(&d.owner, d.app.now()).await.unwrap_or(0)
    }
}

/// Resolves endpoint hosts for the HTTP client, keeping only the addresses webhooks may go to:
/// the client connects to what this returns, so a host that resolves elsewhere by the time of the
/// attempt (DNS rebinding) is still refused.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allow_private || forbidden_address(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = all
                    .first()
                    .map(|a| {
                        format!(
                            "{host} resolves to {}, a {} address",
                            a.ip(),
                            forbidden_address(a.ip()).unwrap_or("forbidden")
                        )
                    })
                    .unwrap_or_else(|| format!("{host} resolves to no address"));
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Delivers the outbox's events: fans new events out to endpoints, leases due deliveries, sends
/// them (several at once, never two of one ordering key), and records each outcome.
pub struct Dispatcher {
    app: App,
    owner: String,
    client: reqwest::Client,
}

impl Dispatcher {
    pub fn new(app: App, owner: &str) -> Self {
        let s = &app.settings.webhooks;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(s.timeout)
            .connect_timeout(s.timeout)
            .no_proxy()
            .user_agent(concat!("peerex-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver { allow_private: s.allow_private_targets }))
            .build()
            // Never a default client in its place: that one follows redirects, proxies and
            // resolves without the address checks. Building fails only if TLS cannot start.
            .expect("the webhook HTTP client (TLS) cannot be built");
        Self { app, owner: owner.to_owned(), client }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lasts: well past an attempt's deadline, so only a dead dispatcher loses one.
    fn lease_span(&self) -> time::Duration {
        time::Duration::try_from(self.app.settings.webhooks.timeout * 4)
            .unwrap_or(time::Duration::minutes(1))
    }

    /// Leases the deliveries due now without sending them (tests: a dispatcher that dies holding them).
    pub async fn lease(&self, limit: i64) -> Result<Vec<LeasedDelivery>> {
        let now = self.app.now();
        self.app.store.fan_out_events(500, now).await?;
        Ok(self
            .app
            .store
            .lease_deliveries(&self.owner, now + self.lease_span(), limit, now)
            .await?)
    }

    /// One round: fans out new events, then sends what is due. Returns how many events were fanned
    /// plus how many deliveries were attempted (0: nothing to do).
    pub async fn run_once(&self) -> Result<usize> {
        let now = self.app.now();
        let fanned = self.app.store.fan_out_events(500, now).await?;
        let limit = self.app.settings.webhooks.concurrency.max(1) as i64;
        let leased = self
            .app
            .store
            .lease_deliveries(&self.owner, now + self.lease_span(), limit, now)
            .await?;
        let n = leased.len();
        let results = futures_util::future::join_all(leased.iter().map(|d| self.attempt(d))).await;
        self.record(leased.into_iter().zip(results).collect()).await?;
        Ok(fanned + n)
    }

    /// Records a round's attempts in one transaction, and tells what they did.
    async fn record(&self, attempts: Vec<(LeasedDelivery, AttemptOutcome)>) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let s = &self.app.settings.webhooks;
        let now = self.app.now();
        let attempts: Vec<(LeasedDelivery, AttemptOutcome, Option<time::OffsetDateTime>)> =
            attempts
                .into_iter()
                .map(|(d, outcome)| {
                    let retry_at = match outcome {
                        AttemptOutcome::Delivered { .. } => None,
                        AttemptOutcome::Failed { .. } => {
                            next_attempt(&s.retry_schedule, d.attempts, now)
                        }
                    };
                    (d, outcome, retry_at)
                })
                .collect();
        let finished = self
            .app
            .store
            .finish_deliveries(
                &attempts,
                &self.owner,
                s.disable_after_failures,
                s.disable_after,
                now,
            )
            .await?;
        for ((d, outcome, retry_at), done) in attempts.iter().zip(finished) {
            let label = match outcome {
                AttemptOutcome::Delivered { .. } => "delivered",
                AttemptOutcome::Failed { .. } if retry_at.is_some() => "retry",
                AttemptOutcome::Failed { .. } => "given_up",
            };
            metrics::counter!("peerex_webhook_attempts_total", "outcome" => label).increment(1);
            if !done.held {
                tracing::warn!(event = %d.event_id, endpoint = %d.endpoint_id, "webhook lease lost before the outcome was recorded");
            }
            if done.disabled {
                tracing::error!(endpoint = %d.endpoint_id, url = %d.url, "webhook endpoint disabled: it kept failing; an operator must enable it again");
            }
            if let AttemptOutcome::Failed { error, .. } = outcome {
                tracing::warn!(event = %d.event_id, endpoint = %d.endpoint_id, attempts = d.attempts, %error, "webhook delivery failed");
            }
        }
        Ok(())
    }

    /// One attempt: sign, send, read at most a few KB of the answer.
    pub async fn attempt(&self, d: &LeasedDelivery) -> AttemptOutcome {
        let failed = |status: Option<u16>, error: String| AttemptOutcome::Failed { status, error };
        let allow_private = self.app.settings.webhooks.allow_private_targets;
        let url = match reqwest::Url::parse(&d.url) {
            Ok(u) => u,
            Err(e) => return failed(None, format!("bad URL: {e}")),
        };
        // An address typed in the URL is not resolved: it is checked here.
        let literal = url
            .host_str()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok());
        if let Some(ip) = literal.filter(|_| !allow_private) {
            if let Some(why) = forbidden_address(ip) {
                return failed(None, format!("refused: {ip} is a {why} address"));
            }
        }
        let keys = match self.app.webhook_keys() {
            Ok(k) => k,
            Err(e) => return failed(None, e.to_string()),
        };
        let id = d.event_id.to_string();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = body(&d.event_type, d.at, &d.data);
        let mut signatures = Vec::with_capacity(d.secrets.len());
        for sealed in &d.secrets {
            match keys.open(SECRET_PURPOSE, sealed).ok().and_then(|s| sign(&s, &id, ts, &body)) {
                Some(sig) => signatures.push(sig),
                None => return failed(None, "the endpoint's secret cannot be opened".into()),
            }
        }
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body)
            .send()
            .await;
        let mut answer = match sent {
            Ok(a) => a,
            Err(e) => return failed(None, describe(&e)),
        };
        let status = answer.status();
        let mut excerpt = Vec::new();
        while excerpt.len() < MAX_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status decides; an answer cut short after it is still an answer.
                Err(_) => break,
            }
        }
        drop(answer);
        if status.is_success() {
            AttemptOutcome::Delivered { status: status.as_u16() }
        } else {
            excerpt.truncate(200);
            let text: String = String::from_utf8_lossy(&excerpt)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let what = if status.is_redirection() {
                "redirect (not followed)".to_owned()
            } else {
                format!("HTTP {}", status.as_u16())
            };
            failed(Some(status.as_u16()), format!("{what}: {}", text.trim()))
        }
    }
}

/// Why a request got no answer, in words for operators.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "no answer".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg.truncate(500);
    msg
}
