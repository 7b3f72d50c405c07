//! What can go wrong talking to Zoom, sorted by what the caller should do about it.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoomError {
    /// 429: wait at least `retry_after` (from `Retry-After`, else Zoom's rate-limit headers, else 1 s).
    #[error("Zoom rate limit reached; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// 401, an invalid or revoked token: refresh, or ask the customer to link again.
    #[error("Zoom refused the access token: {message}")]
    Unauthorized { message: String },
    /// The token endpoint refused a code or refresh token (bad, used, expired, revoked).
    #[error("Zoom refused the grant: {message}")]
    InvalidGrant { message: String },
    /// 5xx: retry with backoff.
    #[error("Zoom answered {status}: {message}")]
    Server { status: u16, message: String },
    /// No answer within the configured timeout: retry with backoff.
    #[error("Zoom did not answer in time")]
    Timeout,
    /// Connection refused, reset, TLS failure...: retry with backoff.
    #[error("cannot reach Zoom: {0}")]
    Transport(String),
    /// Any other 4xx for the whole call. Not success, not retryable as is.
    #[error("Zoom refused the request ({status}, code {code}): {message}")]
    Refused { status: u16, code: i64, message: String },
    /// A caller error caught before anything was sent.
    #[error("invalid request to Zoom: {0}")]
    Invalid(String),
    /// A body we could not understand. Never taken as success.
    #[error("cannot understand Zoom's answer: {0}")]
    Decode(String),
}

impl ZoomError {
    /// Whether the same call may succeed later without anything changing on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ZoomError::RateLimited { .. }
                | ZoomError::Server { .. }
                | ZoomError::Timeout
                | ZoomError::Transport(_)
        )
    }

    /// The wait Zoom asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ZoomError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}
