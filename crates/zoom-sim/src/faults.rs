//! Injected faults: the next N calls to a route answer an error status (429 with `Retry-After`, 500,
//! ...) or are delayed first. Set through `POST /_sim/faults`; they survive a restart with the state.

use crate::error::ApiError;
use crate::Simulator;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// A fault as `POST /_sim/faults` takes it and `GET /_sim/faults` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A request path (`/v2/number_management/peering_numbers`) or a route pattern
    /// (`/v2/phone/users/{userId}/phone_numbers`).
    pub path: String,
    /// Only this method; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// How many matching calls it affects.
    #[serde(default = "one")]
    pub count: u32,
    /// Answer this status instead of serving the call.
    #[serde(default)]
    pub status: Option<u16>,
    /// With `status`: the `Retry-After` header, in seconds (429 defaults to 1).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long first; then serve the call, or answer `status` if set.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault that does something to a route; why not, otherwise.
    pub fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err("path must start with /".into());
        }
        if self.path.starts_with("/_sim") {
            return Err("faults cannot be injected into the test-control API".into());
        }
        match self.status {
            None if self.delay_ms.is_none() => Err("give a status, a delay_ms, or both".into()),
            Some(s) if !(400..=599).contains(&s) => Err("status must be an error status (400-599)".into()),
            _ if self.count == 0 => Err("count must be at least 1".into()),
            _ => Ok(()),
        }
    }

    fn matches(&self, method: &str, path: &str, pattern: Option<&str>) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)) && (self.path == path || Some(self.path.as_str()) == pattern)
    }
}

pub(crate) async fn inject(State(sim): State<Simulator>, matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().as_str().to_owned(), request.uri().path().to_owned());
    let pattern = matched.as_ref().map(MatchedPath::as_str);
    let has_faults = sim.read(|s| !s.faults.is_empty());
    if !has_faults {
        return next.run(request).await;
    }
    let fault = sim
        .write(|s| {
            let i = s.faults.iter().position(|f| f.matches(&method, &path, pattern))?;
            let fault = s.faults[i].clone();
            s.faults[i].count -= 1;
            if s.faults[i].count == 0 {
                s.faults.remove(i);
            }
            Some(fault)
        })
        .await;
    let Some(fault) = fault else { return next.run(request).await };
    tracing::info!(%method, %path, ?fault, "zoom-sim injecting a fault");
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    match fault.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(StatusCode::TOO_MANY_REQUESTS) => ApiError::rate_limited(fault.retry_after.unwrap_or(1)).into_response(),
        Some(status) => ApiError::injected(status, fault.retry_after).into_response(),
        None => next.run(request).await,
    }
}
