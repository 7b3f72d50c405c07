//! Zoom's per-account rate limits (REFERENCE §5, `openapi/rate-limits.yml`): every app installed on an
//! account draws from one quota per rate-limit label, sized by the account's plan. Every operation the
//! simulator serves is labelled LIGHT [doc], so LIGHT is the only label counted.

use crate::error::ApiError;
use crate::world::Plan;
use crate::Simulator;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// How many LIGHT requests per second an account may make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateLimit {
    /// Zoom Phone's table: 20/s on Pro (and Free), 40/s on Business and up [doc].
    #[default]
    ByPlan,
    /// The same limit for every account.
    PerSecond(u32),
    /// No limit (benchmarks of the platform itself).
    Off,
}

impl RateLimit {
    fn light(self, plan: Plan) -> Option<u32> {
        match (self, plan) {
            (RateLimit::Off, _) => None,
            (RateLimit::PerSecond(n), _) => Some(n),
            (RateLimit::ByPlan, Plan::Free | Plan::Pro) => Some(20),
            (RateLimit::ByPlan, Plan::Business | Plan::Enterprise) => Some(40),
        }
    }
}

/// Requests counted in the current one-second window, per account. Not persisted: a restart forgets
/// a second's worth of counting, as a Zoom failover would.
#[derive(Default)]
pub(crate) struct Windows(HashMap<String, (i64, u32)>);

pub(crate) struct Limited {
    limit: u32,
}

impl IntoResponse for Limited {
    /// 429 with Zoom's body and the headers third parties have seen (REFERENCE §5 [seen]); the window
    /// is a second, so `Retry-After: 1`.
    fn into_response(self) -> Response {
        let mut r = ApiError::rate_limited(1).into_response();
        let h = r.headers_mut();
        h.insert("x-ratelimit-category", HeaderValue::from_static("Light"));
        h.insert("x-ratelimit-type", HeaderValue::from_static("QPS"));
        h.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(0));
        r
    }
}

impl Simulator {
    /// Counts one LIGHT request of `account_id`; refused once the account's second is used up.
    pub(crate) fn take_light(&self, account_id: &str) -> Result<(), Limited> {
        let Some(plan) = self.world().account(account_id).map(|a| a.plan) else { return Ok(()) };
        let Some(limit) = self.options().rate_limit.light(plan) else { return Ok(()) };
        let second = self.clock().unix();
        let mut windows = self.inner.rate_windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (window, count) = windows.0.entry(account_id.to_owned()).or_insert((second, 0));
        if *window != second {
            (*window, *count) = (second, 0);
        }
        if *count >= limit {
            return Err(Limited { limit });
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_get_zoom_phones_light_limits() {
        assert_eq!(RateLimit::ByPlan.light(Plan::Pro), Some(20));
        assert_eq!(RateLimit::ByPlan.light(Plan::Business), Some(40));
        assert_eq!(RateLimit::PerSecond(5).light(Plan::Pro), Some(5));
        assert_eq!(RateLimit::Off.light(Plan::Enterprise), None);
    }
}
