//! Onboarding from the Zoom Marketplace (DESIGN.md §2): a customer's link to a Zoom account, the jobs
//! that carry number changes to Zoom, and the retry policy those jobs follow.

use crate::ids::{CustomerId, OrderId};
use crate::job::JobPayload;
use crate::zoom_account::ZoomAccountId;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Most numbers Zoom takes in one POST or DELETE of peering numbers.
pub const ZOOM_BATCH: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Linked,
    /// The customer removed the app in Zoom; tokens are gone, numbers suspended.
    Removed,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Linked => "linked",
            LinkState::Removed => "removed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "linked" => Some(LinkState::Linked),
            "removed" => Some(LinkState::Removed),
            _ => None,
        }
    }
}

/// A customer's link to a Zoom account.
#[derive(Clone, Debug, Serialize)]
pub struct ZoomLink {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub zoom_account_id: ZoomAccountId,
    pub zoom_user_id: String,
    pub state: LinkState,
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub removed_at: Option<OffsetDateTime>,
    /// Zoom's rate limit for this account: no call before this.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_polled_at: Option<OffsetDateTime>,
    /// Since when Zoom refuses the link's refresh token (`invalid_grant`): nothing reaches Zoom for
    /// this customer until the app is authorized again for the account.
    #[serde(with = "time::serde::rfc3339::option")]
    pub reauth_needed_at: Option<OffsetDateTime>,
    /// What Zoom said when it refused.
    pub reauth_reason: Option<String>,
}

/// A Marketplace install whose code was exchanged at the callback, waiting for a signed-in customer
/// admin to confirm which customer the Zoom account is linked to. Who authorized and in which
/// account is what Zoom's `users/me` said with the install's own token.
#[derive(Clone, Debug)]
pub struct PendingInstall {
    pub zoom_account_id: ZoomAccountId,
    pub zoom_user_id: String,
    pub zoom_email: String,
    pub zoom_name: String,
    pub zoom_account_number: String,
    /// Sealed; `generation` is unused here.
    pub tokens: StoredTokens,
    pub created_at: OffsetDateTime,
    pub valid_until: OffsetDateTime,
}

/// One line of a customer's link history, refusals included.
#[derive(Clone, Debug, Serialize)]
pub struct LinkEvent {
    pub customer_id: Option<CustomerId>,
    pub zoom_account_id: ZoomAccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `linked`, `relinked`, `refused`, `removed`.
    pub kind: String,
    pub message: String,
}

/// Why a link was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("this Zoom account is already linked to another customer of {carrier}; sign in as that customer, or ask {carrier} to help")]
    AccountTaken { carrier: String },
    #[error("your account is already linked to another Zoom account ({0}); remove the app from that Zoom account first")]
    CustomerLinkedElsewhere(ZoomAccountId),
    #[error("the customer's contract has ended")]
    ContractEnded,
}

/// What an `app_deauthorized` did to the account's link.
#[derive(Clone, Debug)]
pub enum Unlinked {
    /// The live link is removed and `suspended` numbers suspended.
    Removed { link: ZoomLink, suspended: usize },
    /// The live link was made after the removal the event reports (the app was installed again
    /// since): it is left alone.
    Newer(ZoomLink),
    /// No live link has this Zoom account.
    NoLink,
}

/// Who takes a slot of an account's shared request budget (Zoom's per-account rate limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetUse {
    /// A call made for someone (a push, a release, an install): takes the next slot, and marks the
    /// budget busy until a gap after it.
    Call,
    /// A page of a reconciliation's listing: gives way (takes nothing) while the budget is busy
    /// with a call's slot, so a reconciliation never slows a customer's push much.
    Listing,
    /// A page of a listing that has given way long enough: takes the next slot as a call would,
    /// without marking the budget busy (so a listing is never starved either).
    OverdueListing,
}

/// Encrypted tokens as stored: each token is `"<key id>:<base64>"`, opaque to the store.
#[derive(Clone, Debug)]
pub struct StoredTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: OffsetDateTime,
    /// Bumped by every refresh; a refresh is a compare-and-swap on it.
    pub generation: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Push some provisioning numbers (at most [`ZOOM_BATCH`]) to the account.
    PushNumbers,
    /// List the account's peering numbers to learn which are assigned to users.
    PollNumbers,
    /// Remove some releasing numbers (at most [`ZOOM_BATCH`]) from the account (issue 6).
    ReleaseNumbers,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::PushNumbers => "push_numbers",
            JobKind::PollNumbers => "poll_numbers",
            JobKind::ReleaseNumbers => "release_numbers",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "push_numbers" => Some(JobKind::PushNumbers),
            "poll_numbers" => Some(JobKind::PollNumbers),
            "release_numbers" => Some(JobKind::ReleaseNumbers),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 4] =
        [JobState::Pending, JobState::Running, JobState::Done, JobState::Failed];
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A job of the outbox.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    /// The numbers it carries (none for a poll).
    pub payload: JobPayload,
    pub customer_id: Option<CustomerId>,
    pub order_id: Option<OrderId>,
    pub zoom_account: Option<ZoomAccountId>,
    pub state: JobState,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub run_after: OffsetDateTime,
    pub lease_owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Job {
    pub fn new(
        kind: JobKind,
        payload: JobPayload,
        customer: Option<CustomerId>,
        order: Option<OrderId>,
        account: Option<ZoomAccountId>,
        now: OffsetDateTime,
    ) -> Job {
        Job {
            id: Uuid::now_v7(),
            kind,
            payload,
            customer_id: customer,
            order_id: order,
            zoom_account: account,
            state: JobState::Pending,
            attempts: 0,
            run_after: now,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// How a claimed job ended, recorded by the worker that holds its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
    Done,
    /// Try again at `at` (a transient failure: 429, 5xx, timeout).
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Given up; an operator can retry it from the Jobs page.
    Failed {
        error: String,
    },
}

/// What Zoom answered for one pushed number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushResult {
    /// Zoom has the number now (added, or it already had it: converged).
    Accepted,
    /// Zoom refused it; the reason is kept on the number.
    Refused(String),
}

/// Retries with exponential backoff and full jitter: attempt `n` (1-based) waits a random time up to
/// `base * 2^(n-1)`, capped, so workers that failed together do not retry together.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts before a job is failed and left for an operator.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_secs(2), cap: Duration::from_secs(600), max_attempts: 12 }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, given `jitter` in [0, 1). Never less than `floor`
    /// (Zoom's Retry-After), never more than the cap unless Zoom asks for longer.
    pub fn backoff(&self, attempts: i64, jitter: f64, floor: Option<Duration>) -> Duration {
        let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let ceiling = self.base.saturating_mul(2u32.saturating_pow(exp)).min(self.cap);
        // Half fixed, half random: a retry never comes immediately, and retries still spread out.
        let wait = ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        floor.map_or(wait, |f| wait.max(f))
    }

    pub fn gives_up(&self, attempts: i64) -> bool {
        attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 5,
        };
        assert_eq!(p.backoff(1, 1.0, None), Duration::from_secs(1));
        assert_eq!(p.backoff(3, 1.0, None), Duration::from_secs(4));
        assert_eq!(p.backoff(3, 0.0, None), Duration::from_secs(2));
        assert_eq!(p.backoff(20, 1.0, None), Duration::from_secs(60));
        assert_eq!(p.backoff(1, 0.0, Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert!(!p.gives_up(4));
        assert!(p.gives_up(5));
    }

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        for k in [JobKind::PushNumbers, JobKind::PollNumbers] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(LinkState::parse("removed"), Some(LinkState::Removed));
    }
}
