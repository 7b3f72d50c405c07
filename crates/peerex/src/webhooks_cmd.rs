//! `[webhooks]` in the configuration and `peerex webhooks ...`: where peerex sends signed events.

use app::token_keys::TokenKeys;
use app::webhooks::{EndpointChange, EndpointInput, WebhookSettings};
use app::App;
use clap::Subcommand;
use domain::Actor;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Endpoints may point at private, loopback and link-local addresses (tests, the demo).
    pub allow_private_targets: bool,
    /// Key sealing endpoints' secrets (`ID:BASE64` of 32 bytes); empty: zoom.token_key.
    pub secret_key: String,
    /// Earlier keys, which still open what they sealed.
    pub old_secret_keys: Vec<String>,
    /// Seconds between failed attempts; after the last the delivery is given up.
    pub retry_seconds: Vec<i64>,
    /// An endpoint failing this many attempts in a row over at least `disable_after_hours` is disabled.
    pub disable_after_failures: i64,
    pub disable_after_hours: i64,
    /// Deadline of one attempt.
    pub timeout_seconds: u64,
    /// Deliveries sent at once by each instance.
    pub concurrency: usize,
    /// Hours a rotated secret keeps signing beside the new one.
    pub rotation_overlap_hours: i64,
    /// Days events and their ended deliveries are kept for operators to read; 0: for ever.
    pub keep_days: i64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let s = WebhookSettings::default();
        Self {
            allow_private_targets: false,
            secret_key: String::new(),
            old_secret_keys: Vec::new(),
            retry_seconds: s.retry_schedule.iter().map(|d| d.whole_seconds()).collect(),
            disable_after_failures: s.disable_after_failures,
            disable_after_hours: s.disable_after.whole_hours(),
            timeout_seconds: s.timeout.as_secs(),
            concurrency: s.concurrency,
            rotation_overlap_hours: s.rotation_overlap.whole_hours(),
            keep_days: s.keep.map_or(0, |k| k.whole_days()),
        }
    }
}

/// The sealing keys never appear in logs or `peerex config`.
impl std::fmt::Debug for WebhooksConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhooksConfig")
            .field("allow_private_targets", &self.allow_private_targets)
            .field("secret_key", &if self.secret_key.is_empty() { "" } else { "***" })
            .field(
                "old_secret_keys",
                &self.old_secret_keys.iter().map(|_| "***").collect::<Vec<_>>(),
            )
            .field("retry_seconds", &self.retry_seconds)
            .field("disable_after_failures", &self.disable_after_failures)
            .field("disable_after_hours", &self.disable_after_hours)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("concurrency", &self.concurrency)
            .field("rotation_overlap_hours", &self.rotation_overlap_hours)
            .field("keep_days", &self.keep_days)
            .finish()
    }
}

pub const EXAMPLE: &str = r#"
# Signed webhooks to the carrier's systems (see README, "Webhooks"). Endpoints are added with
# `peerex webhooks add`, the API or the operator portal.
[webhooks]
# Endpoints may point at private, loopback, link-local or CGNAT addresses. Off in production: an
# endpoint could otherwise reach the carrier's own network.
allow_private_targets = false
# Key sealing endpoint secrets, "ID:BASE64" of 32 bytes; empty: zoom.token_key is used.
secret_key = ""
old_secret_keys = []
# Seconds between failed attempts (about four days in all); then the delivery is given up.
retry_seconds = [5, 300, 1800, 7200, 18000, 36000, 36000, 86400, 86400]
# An endpoint failing this many attempts in a row, for at least this many hours, is disabled.
disable_after_failures = 20
disable_after_hours = 120
# Deadline of one attempt, and deliveries one instance sends at once.
timeout_seconds = 15
concurrency = 32
# Hours a rotated secret keeps signing beside the new one.
rotation_overlap_hours = 24
# Days events and their ended deliveries (delivered or given up) are kept; 0: for ever. An event
# with a delivery still waiting is kept until it ends.
keep_days = 30
"#;

impl WebhooksConfig {
    pub fn settings(&self) -> anyhow::Result<WebhookSettings> {
        anyhow::ensure!(
            !self.retry_seconds.is_empty()
                && self.retry_seconds.iter().all(|s| (0..=7 * 86_400).contains(s)),
            "configuration: webhooks.retry_seconds must list 0 to 604800 seconds, at least one"
        );
        anyhow::ensure!(
            (1..=300).contains(&self.timeout_seconds),
            "configuration: webhooks.timeout_seconds must be 1 to 300"
        );
        anyhow::ensure!(
            (1..=1024).contains(&self.concurrency),
            "configuration: webhooks.concurrency must be 1 to 1024"
        );
        anyhow::ensure!(
            self.disable_after_failures >= 1 && self.disable_after_hours >= 0,
            "configuration: webhooks.disable_after_failures must be at least 1, disable_after_hours at least 0"
        );
        anyhow::ensure!(
            (0..=24 * 30).contains(&self.rotation_overlap_hours),
            "configuration: webhooks.rotation_overlap_hours must be 0 to 720"
        );
        anyhow::ensure!(
            (0..=3650).contains(&self.keep_days),
            "configuration: webhooks.keep_days must be 0 to 3650"
        );
        Ok(WebhookSettings {
            keep: (self.keep_days > 0).then(|| time::Duration::days(self.keep_days)),
            allow_private_targets: self.allow_private_targets,
            retry_schedule: self
                .retry_seconds
                .iter()
                .map(|s| time::Duration::seconds(*s))
                .collect(),
            disable_after_failures: self.disable_after_failures,
            disable_after: time::Duration::hours(self.disable_after_hours),
            timeout: std::time::Duration::from_secs(self.timeout_seconds),
            concurrency: self.concurrency,
            rotation_overlap: time::Duration::hours(self.rotation_overlap_hours),
            ..WebhookSettings::default()
        })
    }

    /// The keys sealing endpoint secrets, when configured here.
    pub fn keys(&self) -> anyhow::Result<Option<TokenKeys>> {
        if self.secret_key.trim().is_empty() {
            return Ok(None);
        }
        TokenKeys::new(&self.secret_key, &self.old_secret_keys)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("configuration: webhooks: {e}"))
    }
}

#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// Add an endpoint; prints its secret (shown only now).
    Add {
        url: String,
        #[arg(long, default_value = "")]
        description: String,
        /// An event type it hears (repeat for several); none for all.
        #[arg(long = "event")]
        events: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the endpoints.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Enable an endpoint (after it was disabled for failing): its waiting deliveries go.
    Enable { id: String },
    /// Disable an endpoint: its deliveries wait.
    Disable { id: String },
    /// Give an endpoint a new secret; the old one signs beside it for the overlap.
    RotateSecret {
        id: String,
        /// Hours the old secret keeps signing (default: webhooks.rotation_overlap_hours).
        #[arg(long)]
        overlap_hours: Option<i64>,
    },
    /// Remove an endpoint and its deliveries.
    Remove { id: String },
    /// An endpoint's deliveries, newest event first.
    Deliveries {
        id: String,
        /// pending, running, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send an event to an endpoint again.
    Replay { id: String, event_id: String },
    /// The event types.
    Events,
}

fn id(raw: &str) -> anyhow::Result<Uuid> {
    raw.parse().map_err(|_| anyhow::anyhow!("{raw:?} is not an id (see `peerex webhooks list`)"))
}

pub async fn run(app: &App, by: &Actor, cmd: WebhooksCmd) -> anyhow::Result<()> {
    let e = |e: app::AppError| anyhow::anyhow!("{e}");
    match cmd {
        WebhooksCmd::Add { url, description, events, json } => {
            let input = EndpointInput { url, description, event_types: events };
            let (ep, secret) = app.create_webhook_endpoint(by, input).await.map_err(e)?;
            if json {
                println!("{}", serde_json::json!({ "endpoint": ep, "secret": secret }));
            } else {
                println!("endpoint {} added for {}", ep.id, ep.url);
                println!("secret (shown only now): {secret}");
            }
        }
        WebhooksCmd::List { json } => {
            let list = app.webhook_endpoints().await.map_err(e)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for ep in list {
                    let types: Vec<&str> = ep.event_types.iter().map(|t| t.as_str()).collect();
                    println!(
                        "{}  {}  {}  {}{}",
                        ep.id,
                        if ep.enabled { "enabled " } else { "DISABLED" },
                        ep.url,
                        if types.is_empty() { "all events".to_owned() } else { types.join(",") },
                        ep.disabled_reason.map(|r| format!("  ({r})")).unwrap_or_default()
                    );
                }
            }
        }
        WebhooksCmd::Enable { id: raw } | WebhooksCmd::Disable { id: raw } => {
            let on = app.webhook_endpoint(id(&raw)?).await.map_err(e)?.enabled;
            let change = EndpointChange { enabled: Some(!on), ..EndpointChange::default() };
            let ep = app.update_webhook_endpoint(by, id(&raw)?, change).await.map_err(e)?;
            println!("endpoint {} {}", ep.id, if ep.enabled { "enabled" } else { "disabled" });
        }
        WebhooksCmd::RotateSecret { id: raw, overlap_hours } => {
            let overlap = overlap_hours.map(time::Duration::hours);
            let (ep, secret) =
                app.rotate_webhook_secret(by, id(&raw)?, overlap).await.map_err(e)?;
            println!("new secret (shown only now): {secret}");
            if let Some(until) = ep.previous_secret_until {
                println!("the old secret signs beside it until {until}");
            }
        }
        WebhooksCmd::Remove { id: raw } => {
            app.delete_webhook_endpoint(by, id(&raw)?).await.map_err(e)?;
            println!("endpoint {raw} removed");
        }
        WebhooksCmd::Deliveries { id: raw, state, limit, json } => {
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(domain::webhook::DeliveryState::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("--state must be pending, running, delivered or failed")
                })?),
            };
            let list = app.webhook_deliveries(id(&raw)?, state, limit).await.map_err(e)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for d in list {
                    println!(
                        "{}  {:<32}  {:<9}  attempts {}  {}",
                        d.event_id,
                        d.event_type,
                        d.state.as_str(),
                        d.attempts,
                        d.last_error.unwrap_or_default()
                    );
                }
            }
        }
        WebhooksCmd::Replay { id: raw, event_id } => {
            app.replay_webhook_delivery(by, id(&raw)?, id(&event_id)?).await.map_err(e)?;
            println!("event {event_id} queued again for endpoint {raw}");
        }
        WebhooksCmd::Events => {
            for t in domain::webhook::EventType::ALL {
                println!("{:<34} {}", t.as_str(), t.description());
            }
        }
    }
    Ok(())
}
