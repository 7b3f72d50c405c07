//! peerex's use-cases, each reading like the journey it serves: import numbers, place an order,
//! sign in, link a Zoom account. The only crate that combines `domain`, `store` and `zoom`. HTTP and
//! the CLI call these functions and only translate their errors.

pub mod auth;
pub mod customers;
pub mod inventory;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod number_facts;
pub mod onboarding;
pub mod orders;
pub mod port_in;
pub mod reconcile;
pub mod release; // issue 6
pub mod token_keys;
pub mod trunks;
pub mod unfinished;
pub mod usage;
pub mod webhooks;

use domain::Clock;
use std::sync::Arc;
use store::{DbError, Store};

/// Settings the use-cases need (the rest of the configuration lives with the binary).
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a browser session lasts without being used again.
    pub session_ttl: time::Duration,
    /// How many passwords may be tried, from where (`domain::sign_in`).
    pub sign_in: domain::sign_in::SignInPolicy,
    /// Password checks running at once (each takes a core for tens of milliseconds) ...
    pub hash_concurrency: usize,
    /// ... and waiting; beyond that a sign-in is answered "busy" at once.
    pub hash_queue: usize,
    /// How long a number released from Zoom rests (`aging`) before it can be sold again.
    pub release_quarantine: time::Duration,
    /// How often a number released without approval that Zoom keeps (assigned to a user there)
    /// is tried again by the release sweep.
    pub blocked_retry_every: time::Duration,
    /// Which active numbers must have an emergency address in Zoom (flagged when they have none).
    pub e911_required: domain::zoom_facts::E911Required,
    /// How webhooks are delivered.
    pub webhooks: webhooks::WebhookSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_ttl: time::Duration::hours(12),
            sign_in: domain::sign_in::SignInPolicy::default(),
            // Half the cores: the other half keeps answering everything else.
            hash_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            hash_queue: 64,
            release_quarantine: domain::release::DEFAULT_QUARANTINE,
            blocked_retry_every: time::Duration::minutes(15),
            e911_required: domain::zoom_facts::E911Required::default(),
            webhooks: webhooks::WebhookSettings::default(),
        }
    }
}

#[derive(Clone)]
pub struct App {
    /// Only the use-cases reach the database: web and the CLI call them (and the narrow accessors
    /// below for routing and health checks).
    pub(crate) store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// How to reach Zoom; `None` when not configured (onboarding is then refused).
    pub zoom: Option<Arc<onboarding::ZoomSetup>>,
    /// Password checks in flight and what they share; clones share it.
    pub hashing: Arc<auth::Hashing>,
    /// How to send mail; `None` when no SMTP host is configured: mails are then kept in the
    /// outbox, unsent, and no reminder is written.
    pub mail: Option<Arc<mail::Mailer>>,
    /// Seals webhook endpoints' secrets; Zoom's token keys when `None`.
    pub webhook_keys: Option<Arc<token_keys::TokenKeys>>,
    /// Work that outlives its caller; a stop waits for it ([`App::finish_unfinished`]).
    pub(crate) unfinished: Arc<unfinished::Unfinished>,
}

impl App {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let hashing = Arc::new(auth::Hashing::new(settings.hash_concurrency, settings.hash_queue));
        Self {
            store,
            clock,
            settings,
            zoom: None,
            hashing,
            mail: None,
            webhook_keys: None,
            unfinished: Default::default(),
        }
    }

    /// At a stop, once nothing starts new work: waits up to `most` for the work that outlives its
    /// caller (a Zoom token refresh under way, whose new pair exists nowhere else until stored).
    /// Whether it all ended.
    pub async fn finish_unfinished(&self, most: std::time::Duration) -> bool {
        let running = self.unfinished.running();
        if running == 0 {
            return true;
        }
        tracing::info!(running, "stopping: waiting for work that must not be cut short");
        let done = self.unfinished.wait(most).await;
        if !done {
            tracing::warn!(
                running = self.unfinished.running(),
                "stopping: work still running was cut short"
            );
        }
        done
    }

    pub fn with_zoom(mut self, zoom: onboarding::ZoomSetup) -> Self {
        self.zoom = Some(Arc::new(zoom));
        self
    }

    pub fn with_webhook_keys(mut self, keys: token_keys::TokenKeys) -> Self {
        self.webhook_keys = Some(Arc::new(keys));
        self
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// What the routing snapshot follows: its reads and change feed, which live with the store.
    pub fn routing_source(&self) -> Store {
        self.store.clone()
    }

    /// Which database this is (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the database answers; its kind when it does (health checks).
    pub async fn health(&self) -> Result<&'static str> {
        self.store.ping().await?;
        Ok(self.store.backend())
    }
}

/// What a use-case can refuse. Each variant maps to one HTTP status and one CLI message.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Unknown id, or an object of another customer (never says which).
    #[error("not found")]
    NotFound,
    /// The request clashes with what exists (same e-mail, same contract reference).
    #[error("{field}: {message}")]
    Conflict { field: &'static str, message: String },
    /// The request is well-formed but the state of things refuses it (not enough numbers...).
    #[error("{0}")]
    Refused(String),
    #[error("wrong e-mail or password")]
    BadCredentials,
    /// Too many failed sign-ins from here; minutes to wait.
    #[error("Too many failed sign-ins from here: try again in {0} minutes.")]
    Locked(i64),
    /// Too much at once (password checks, a slowed-down account); seconds to wait.
    #[error("Too many sign-ins at once: try again in a few seconds.")]
    Busy(i64),
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AppError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid { field, message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, AppError>;

/// Maps a unique-constraint clash to the field a user typed.
fn conflict(e: DbError, field: &'static str, message: &str) -> AppError {
    match e {
        DbError::Conflict { .. } => AppError::Conflict { field, message: message.to_owned() },
        other => AppError::Db(other),
    }
}
