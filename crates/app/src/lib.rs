//! peerex's use-cases, each reading like the journey it serves: import numbers, place an order,
//! sign in, link a Zoom account. The only crate that combines `domain`, `store` and `zoom`. HTTP and
//! the CLI call these functions and only translate their errors.

pub mod auth;
pub mod customers;
pub mod inventory;
pub mod jobs;
pub mod onboarding;
pub mod orders;
pub mod release; // issue 6
pub mod token_keys;
pub mod trunks;

use domain::Clock;
use std::sync::Arc;
use store::{DbError, Store};

/// Settings the use-cases need (the rest of the configuration lives with the binary).
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a browser session lasts without being used again.
    pub session_ttl: time::Duration,
    /// Failed sign-ins in a row before an account is locked for `lockout`.
    pub max_failed_logins: i64,
    pub lockout: time::Duration,
    /// How long a number released from Zoom rests (`aging`) before it can be sold again.
    pub release_quarantine: time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_ttl: time::Duration::hours(12),
            max_failed_logins: 5,
            lockout: time::Duration::minutes(15),
            release_quarantine: domain::release::DEFAULT_QUARANTINE,
        }
    }
}

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// How to reach Zoom; `None` when not configured (onboarding is then refused).
    pub zoom: Option<Arc<onboarding::ZoomSetup>>,
}

impl App {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        Self { store, clock, settings, zoom: None }
    }

    pub fn with_zoom(mut self, zoom: onboarding::ZoomSetup) -> Self {
        self.zoom = Some(Arc::new(zoom));
        self
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
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
    #[error("too many failed sign-ins; try again after {0} minutes")]
    Locked(i64),
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
