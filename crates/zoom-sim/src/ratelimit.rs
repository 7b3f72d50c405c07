//! Zoom's per-account rate limits (REFERENCE §5, `openapi/rate-limits.yml`): every app installed on an
//! account draws from one quota per rate-limit label, sized by the account's plan. The label of each
//! operation is the one Zoom's OpenAPI files publish: every peering-number operation (both generations)
//! and the admin's assign/unassign are LIGHT; listing the account's phone numbers (`GET /phone/numbers`)
//! and phone users (`GET /phone/users`) are MEDIUM [doc]. No served operation is HEAVY or
//! RESOURCE-INTENSIVE, so the daily caps (which only those carry) are not simulated.

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

/// A rate-limit label, as Zoom publishes one per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Label {
    Light,
    Medium,
}

impl Label {
    /// The label of the operation `method route` (the route as matched, e.g. `/v2/phone/numbers`).
    pub fn of(method: &str, route: &str) -> Label {
        match (method, route) {
            ("GET", "/v2/phone/numbers" | "/v2/phone/users") => Label::Medium,
            _ => Label::Light,
        }
    }

    fn header(self) -> &'static str {
        match self {
            Label::Light => "Light",
            Label::Medium => "Medium",
        }
    }
}

impl RateLimit {
    /// Requests per second for `label` on `plan`: Zoom Phone's table [doc]; with a fixed LIGHT limit,
    /// MEDIUM gets half of it, as in Zoom's table.
    fn limit(self, plan: Plan, label: Label) -> Option<u32> {
        let light = self.light(plan)?;
        Some(match label {
            Label::Light => light,
            Label::Medium => (light / 2).max(1),
        })
    }

    fn light(self, plan: Plan) -> Option<u32> {
        match (self, plan) {
            (RateLimit::Off, _) => None,
            (RateLimit::PerSecond(n), _) => Some(n),
            (RateLimit::ByPlan, Plan::Free | Plan::Pro) => Some(20),
            (RateLimit::ByPlan, Plan::Business | Plan::Enterprise) => Some(40),
        }
    }
}

/// Requests counted in the current one-second window, per account, and a tally of every window so
/// far. Not persisted: a restart forgets a second's worth of counting, as a Zoom failover would.
#[derive(Default)]
pub(crate) struct Windows {
    current: HashMap<(String, Label), (i64, u32)>,
    tally: HashMap<(String, Label), Tally>,
}

/// What a test checks of an account's use of a quota: the most requests that arrived in one second
/// (refused ones included), and how many were refused with 429.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub busiest_second: u32,
    pub refused: u64,
}

pub(crate) struct Limited {
    limit: u32,
    label: Label,
}

impl IntoResponse for Limited {
    /// 429 with Zoom's body and the headers third parties have seen (REFERENCE §5 [seen]); the window
    /// is a second, so `Retry-After: 1`.
    fn into_response(self) -> Response {
        let mut r = ApiError::rate_limited(1).into_response();
        let h = r.headers_mut();
        h.insert("x-ratelimit-category", HeaderValue::from_static(self.label.header()));
        h.insert("x-ratelimit-type", HeaderValue::from_static("QPS"));
        h.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(0));
        r
    }
}

impl Simulator {
    /// Counts one request of `account_id` against its `label` quota; refused once the account's second
    /// is used up.
    pub(crate) fn take_quota(&self, account_id: &str, label: Label) -> Result<(), Limited> {
        let Some(plan) = self.world().account(account_id).map(|a| a.plan) else { return Ok(()) };
        let Some(limit) = self.options().rate_limit.limit(plan, label) else { return Ok(()) };
        let second = self.clock().unix();
        let mut windows =
            self.inner.rate_windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (account_id.to_owned(), label);
        let (window, count) = windows.current.entry(key.clone()).or_insert((second, 0));
        if *window != second {
            (*window, *count) = (second, 0);
        }
        // Refused requests count towards the busiest second too: it says how hard the account was
        // pushed, not how much got through.
        *count += 1;
        let arrived = *count;
        let tally = windows.tally.entry(key).or_default();
        tally.busiest_second = tally.busiest_second.max(arrived);
        if arrived > limit {
            tally.refused += 1;
            return Err(Limited { limit, label });
        }
        Ok(())
    }

    /// The account's LIGHT and MEDIUM quotas: (label, limit per second, tally) for each.
    pub(crate) fn rate_tally(&self, account_id: &str) -> Vec<(&'static str, Option<u32>, Tally)> {
        let plan = self.world().account(account_id).map(|a| a.plan);
        let windows =
            self.inner.rate_windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        [(Label::Light, "light"), (Label::Medium, "medium")]
            .into_iter()
            .map(|(label, name)| {
                let limit = plan.and_then(|p| self.options().rate_limit.limit(p, label));
                let tally =
                    windows.tally.get(&(account_id.to_owned(), label)).copied().unwrap_or_default();
                (name, limit, tally)
            })
            .collect()
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
        assert_eq!(RateLimit::ByPlan.limit(Plan::Pro, Label::Medium), Some(10));
        assert_eq!(RateLimit::ByPlan.limit(Plan::Business, Label::Medium), Some(20));
    }

    #[test]
    fn labels_are_zoom_phones() {
        assert_eq!(Label::of("GET", "/v2/phone/numbers"), Label::Medium);
        assert_eq!(Label::of("GET", "/v2/phone/users"), Label::Medium);
        assert_eq!(Label::of("POST", "/v2/phone/users/{userId}/phone_numbers"), Label::Light);
        assert_eq!(Label::of("GET", "/v2/number_management/peering_numbers"), Label::Light);
        assert_eq!(Label::of("DELETE", "/v2/phone/peering/numbers"), Label::Light);
    }
}
