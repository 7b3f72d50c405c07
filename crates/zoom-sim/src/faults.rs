//! Injected faults, set through `POST /_sim/faults` and kept with the state (they survive a restart):
//! - the next `count` calls to a route answer an error status (429 with `Retry-After`, 500, ...) and/or
//!   are delayed first;
//! - an error rate: a fraction of the calls to a route fail, chosen by a seeded generator, so the same
//!   seed and the same sequence of calls fail the same calls;
//! - timeouts: the call is held past the client's patience, then the connection is closed with no answer
//!   (the call is not served);
//! - late answers: the call is served at once and its answer held, so a client that gives up meanwhile
//!   never learns what Zoom did (a refreshed token, a number added);
//! - partial `1000` failures: a POST, PATCH or DELETE of peering numbers is served, except that the
//!   chosen numbers fail with a per-number reason, in each generation's own shape;
//! - dropped webhooks: the next `count` deliveries of an event never reach the app and are not retried.

use crate::error::ApiError;
use crate::Simulator;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The per-number reason of an injected partial failure when the fault names none [assume]: Zoom
/// publishes no text for a failure on its side.
pub(crate) const DEFAULT_NUMBER_REASON: &str = "Internal error";

/// A fault as `POST /_sim/faults` takes it and `GET /_sim/faults` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A request path (`/v2/number_management/peering_numbers`) or a route pattern
    /// (`/v2/phone/users/{userId}/phone_numbers`). Absent for a webhook fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only this method; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// How many calls (or webhooks) it affects: 1 when absent, except that an `error_rate` lasts until
    /// cleared (with a count, it ends after that many injected errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Answer this status instead of serving the call (500 by default with `error_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With `status`: the `Retry-After` header, in seconds (429 defaults to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Wait this long first; then serve the call, or answer `status` if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Fail this fraction (0 < rate <= 1) of the matching calls, drawn from `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// The seed of `error_rate`'s draws (0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Hold the call this long (set it past the client's timeout), then close the connection without
    /// an answer. The call is not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Serve the call at once, then hold its answer this long: a client that gives up meanwhile has
    /// had the call served without learning its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_delay_ms: Option<u64>,
    /// Serve the call, but fail these numbers with `reason` (peering-number POST, PATCH, DELETE):
    /// `400 {"code":1000,...,"errors":[...]}` in the new generation, `unprocessed_numbers` in the legacy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_numbers: Vec<String>,
    /// The per-number reason for `fail_numbers` ("Internal error" when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Drop webhooks of this event (`app_deauthorized`, ..., or `*` for any): logged as `dropped`,
    /// never delivered, never retried. Takes no `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Matching calls seen so far: the index of `error_rate`'s next draw (kept so a restart goes on
    /// with the same sequence).
    #[serde(default)]
    pub seen: u64,
}

/// Numbers a served call must fail, put on the request by [`inject`] for the peering handlers.
#[derive(Clone, Debug, Default)]
pub(crate) struct InjectedFailures {
    /// E.164 → reason.
    pub numbers: HashMap<String, String>,
}

impl InjectedFailures {
    pub fn reason(&self, e164: &str) -> Option<&str> {
        self.numbers.get(e164).map(String::as_str)
    }
}

impl Fault {
    /// A fault that does something; why not, otherwise. Normalizes `fail_numbers` to E.164.
    pub fn check(&mut self) -> Result<(), String> {
        if self.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        if let Some(event) = &self.webhook {
            if event.trim().is_empty() {
                return Err("webhook must name an event, or * for any".into());
            }
            let http_only = self.path.is_some()
                || self.method.is_some()
                || self.status.is_some()
                || self.delay_ms.is_some()
                || self.error_rate.is_some()
                || self.timeout_ms.is_some()
                || self.answer_delay_ms.is_some()
                || !self.fail_numbers.is_empty();
            if http_only {
                return Err("a webhook fault takes only webhook and count".into());
            }
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Err("give a path (a call to affect) or a webhook (an event to drop)".into());
        };
        if !path.starts_with('/') {
            return Err("path must start with /".into());
        }
        if path.starts_with("/_sim") {
            return Err("faults cannot be injected into the test-control API".into());
        }
        if self.status.is_none()
            && self.delay_ms.is_none()
            && self.error_rate.is_none()
            && self.timeout_ms.is_none()
            && self.answer_delay_ms.is_none()
            && self.fail_numbers.is_empty()
        {
            return Err(
                "give a status, delay_ms, error_rate, timeout_ms, answer_delay_ms or fail_numbers"
                    .into(),
            );
        }
        if let Some(s) = self.status {
            if !(400..=599).contains(&s) {
                return Err("status must be an error status (400-599)".into());
            }
        }
        if let Some(rate) = self.error_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err("error_rate must be more than 0 and at most 1".into());
            }
        }
        if self.timeout_ms.is_some() && (self.status.is_some() || !self.fail_numbers.is_empty()) {
            return Err("a timeout gives no answer: it takes no status or fail_numbers".into());
        }
        if self.answer_delay_ms.is_some()
            && (self.status.is_some() || self.error_rate.is_some() || self.timeout_ms.is_some())
        {
            return Err(
                "answer_delay_ms serves the call: it takes no status, error_rate or timeout_ms"
                    .into(),
            );
        }
        if !self.fail_numbers.is_empty() && (self.status.is_some() || self.error_rate.is_some()) {
            return Err("fail_numbers serves the call: it takes no status or error_rate".into());
        }
        if self.method.as_deref().is_some_and(|m| {
            !self.fail_numbers.is_empty()
                && !["POST", "PATCH", "DELETE"].iter().any(|x| x.eq_ignore_ascii_case(m))
        }) {
            return Err("fail_numbers applies to POST, PATCH or DELETE".into());
        }
        for (i, n) in self.fail_numbers.iter_mut().enumerate() {
            *n = crate::e164::normalize(n)
                .ok_or_else(|| format!("fail_numbers[{i}]: not an E.164 number"))?;
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str, pattern: Option<&str>) -> bool {
        let Some(p) = &self.path else { return false };
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && (p == path || Some(p.as_str()) == pattern)
    }

    /// Whether this fault drops a webhook of `event`.
    fn drops(&self, event: &str) -> bool {
        self.webhook.as_deref().is_some_and(|w| w == "*" || w == event)
    }
}

/// The `n`th draw of `seed`, uniform in [0, 1): SplitMix64, so a seed means the same sequence everywhere.
fn draw(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Counts one use of `faults[i]` and drops it once its count is spent.
fn spend(faults: &mut Vec<Fault>, i: usize, default_count: Option<u32>) {
    match faults[i].count.or(default_count) {
        Some(n) if n <= 1 => {
            faults.remove(i);
        }
        Some(n) => faults[i].count = Some(n - 1),
        None => {}
    }
}

/// Whether a delivery of `event` is to be dropped; spends the fault that drops it.
pub(crate) fn take_webhook_drop(faults: &mut Vec<Fault>, event: &str) -> bool {
    let Some(i) = faults.iter().position(|f| f.drops(event)) else { return false };
    spend(faults, i, Some(1));
    true
}

/// What one call gets from the faults: decided under the state lock, applied outside it.
fn take(faults: &mut Vec<Fault>, method: &str, path: &str, pattern: Option<&str>) -> Option<Fault> {
    for i in 0..faults.len() {
        if !faults[i].matches(method, path, pattern) {
            continue;
        }
        let fault = &mut faults[i];
        if let Some(rate) = fault.error_rate {
            let n = fault.seen;
            fault.seen += 1;
            if draw(fault.seed.unwrap_or(0), n) >= rate {
                // This call is spared; later faults for the same route still get their turn.
                continue;
            }
            let fired = fault.clone();
            spend(faults, i, None);
            return Some(fired);
        }
        let fired = fault.clone();
        spend(faults, i, Some(1));
        return Some(fired);
    }
    None
}

pub(crate) async fn inject(
    State(sim): State<Simulator>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let (method, path) = (request.method().as_str().to_owned(), request.uri().path().to_owned());
    let pattern = matched.as_ref().map(MatchedPath::as_str);
    let has_faults = sim.read(|s| s.faults.iter().any(|f| f.path.is_some()));
    if !has_faults {
        return next.run(request).await;
    }
    let Some(fault) = sim.write(|s| take(&mut s.faults, &method, &path, pattern)).await else {
        return next.run(request).await;
    };
    tracing::info!(%method, %path, ?fault, "zoom-sim injecting a fault");
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(ms) = fault.timeout_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        return Response::new(Body::new(Hangup));
    }
    if !fault.fail_numbers.is_empty() {
        let reason = fault.reason.clone().unwrap_or_else(|| DEFAULT_NUMBER_REASON.to_owned());
        let numbers = fault.fail_numbers.iter().map(|n| (n.clone(), reason.clone())).collect();
        request.extensions_mut().insert(InjectedFailures { numbers });
    }
    if let Some(ms) = fault.answer_delay_ms {
        let answer = next.run(request).await;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        return answer;
    }
    // `fail_numbers` takes no status: served below.
    let status = fault.status.or(fault.error_rate.map(|_| 500));
    match status.and_then(|s| StatusCode::from_u16(s).ok()) {
        Some(StatusCode::TOO_MANY_REQUESTS) => {
            ApiError::rate_limited(fault.retry_after.unwrap_or(1)).into_response()
        }
        Some(status) => ApiError::injected(status, fault.retry_after).into_response(),
        None => next.run(request).await,
    }
}

/// A body that fails before its first byte: hyper then closes the connection without sending the
/// response, which is what a client sees when a server gives up on a call (a timeout, then a reset).
struct Hangup;

impl http_body::Body for Hangup {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "zoom-sim: injected timeout",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_fault(rate: f64, seed: u64) -> Fault {
        let mut f: Fault = serde_json::from_value(
            serde_json::json!({ "path": "/x", "error_rate": rate, "seed": seed }),
        )
        .expect("fault");
        f.check().expect("valid");
        f
    }

    fn failed(faults: &mut Vec<Fault>, calls: usize) -> usize {
        (0..calls).filter(|_| take(faults, "GET", "/x", None).is_some()).count()
    }

    #[test]
    fn an_error_rate_fails_about_that_share_of_calls_and_the_same_calls_for_the_same_seed() {
        let fired = |seed| {
            let mut faults = vec![rate_fault(0.25, seed)];
            (0..1000).map(|_| take(&mut faults, "GET", "/x", None).is_some()).collect::<Vec<bool>>()
        };
        let a = fired(7);
        assert_eq!(a, fired(7), "same seed, same calls fail");
        assert_ne!(a, fired(8), "another seed, other calls");
        let share = a.iter().filter(|f| **f).count();
        assert!((200..300).contains(&share), "about a quarter of 1000 calls fail: {share}");
        // The fault stays until cleared.
        let mut faults = vec![rate_fault(1.0, 0)];
        assert_eq!(failed(&mut faults, 5), 5);
        assert_eq!(faults.len(), 1);
    }

    #[test]
    fn a_counted_error_rate_ends_after_that_many_errors() {
        let mut f = rate_fault(1.0, 3);
        f.count = Some(2);
        let mut faults = vec![f];
        assert_eq!(failed(&mut faults, 5), 2);
        assert!(faults.is_empty());
    }
}
