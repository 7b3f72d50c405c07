//! The job outbox's rules: the life of a job (claimed with a lease, finished, retried, handed back,
//! cancelled), and the one payload every job carries, written by the store and read by the runner
//! and the portals.

use crate::ids::CustomerId;
use crate::machine::StateMachine;
use crate::onboarding::{Job, JobEnd, JobKind, JobState};
use crate::phone::PhoneNumber;
use crate::zoom_account::ZoomAccountId;
use serde::{Deserialize, Deserializer, Serialize};

/// What happens to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// A worker takes a due job under a lease.
    Claim,
    /// A worker takes a job whose previous worker's lease ran out (it died).
    Reclaim,
    /// Zoom answered; the answer is recorded.
    Done,
    /// A transient failure: tried again later.
    Retry,
    /// Given up after repeated or permanent failures; left for an operator.
    GiveUp,
    /// A worker stopping cleanly hands its job back for another to take now.
    HandBack,
    /// A recurring job (the poll) ran and waits for its next turn.
    Reschedule,
    /// An operator tries a failed job again.
    OperatorRetry,
    /// Superseded (a new link) or pointless (the app was removed): closed without running.
    Cancel,
}

impl JobEvent {
    pub const ALL: [JobEvent; 9] = [
        JobEvent::Claim,
        JobEvent::Reclaim,
        JobEvent::Done,
        JobEvent::Retry,
        JobEvent::GiveUp,
        JobEvent::HandBack,
        JobEvent::Reschedule,
        JobEvent::OperatorRetry,
        JobEvent::Cancel,
    ];
}

impl JobEnd {
    /// The event a worker's end of a job is.
    pub fn event(&self) -> JobEvent {
        match self {
            JobEnd::Done => JobEvent::Done,
            JobEnd::Retry { .. } => JobEvent::Retry,
            JobEnd::Failed { .. } => JobEvent::GiveUp,
        }
    }
}

/// A job's life: `pending` until a worker claims it (`running`, under a lease); a running job ends
/// `done`, goes back to `pending` (retry, hand-back, next turn) or is `failed` for an operator, who
/// may make it `pending` again. Only a running job's worker ends it; anyone may cancel a job that
/// has not ended.
impl StateMachine for JobState {
    type Event = JobEvent;
    const STATES: &'static [Self] = &JobState::ALL;
    const WHAT: &'static str = "job";

    fn next(self, event: JobEvent) -> Option<Self> {
        use JobEvent as E;
        use JobState as S;
        match (self, event) {
            (S::Pending, E::Claim) => Some(S::Running),
            (S::Running, E::Reclaim) => Some(S::Running),
            (S::Running, E::Done) => Some(S::Done),
            (S::Running, E::Retry | E::HandBack | E::Reschedule) => Some(S::Pending),
            (S::Running, E::GiveUp) => Some(S::Failed),
            (S::Failed, E::OperatorRetry) => Some(S::Pending),
            (S::Pending | S::Running, E::Cancel) => Some(S::Done),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl JobState {
    /// Whether no worker will run the job any more: done, or failed until an operator retries it.
    pub fn ended(self) -> bool {
        self.next(JobEvent::Claim).is_none() && self.next(JobEvent::Reclaim).is_none()
    }
}

/// How long after a link its first poll of Zoom runs: until the pushes land there is nothing in
/// Zoom to learn, and a poll would spend the account's rate limit that the pushes need.
pub const FIRST_POLL_AFTER: time::Duration = time::Duration::minutes(1);

/// The recurring poll of a linked account's numbers, one per account: a new poll job, unless one of
/// the account's poll jobs (`existing`: their states) has not ended.
pub fn plan_poll(
    customer: CustomerId,
    account: &ZoomAccountId,
    existing: &[JobState],
    now: time::OffsetDateTime,
) -> Option<Job> {
    if existing.iter().any(|s| !s.ended()) {
        return None;
    }
    let mut job = Job::new(
        JobKind::PollNumbers,
        JobPayload::default(),
        Some(customer),
        None,
        Some(account.clone()),
        now,
    );
    job.run_after = now + FIRST_POLL_AFTER;
    Some(job)
}

/// What a job carries. Push and release jobs carry the numbers they move (at most
/// [`crate::onboarding::ZOOM_BATCH`]); a poll carries nothing. Stored as JSON
/// (`{"numbers": ["+1…", …]}`, `{}` when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPayload {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "stored_numbers")]
    pub numbers: Vec<PhoneNumber>,
    /// A push that repairs drift the reconciler found, rather than one of an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<crate::findings::ZoomRepair>,
    /// A job of a port-in: which, and what it does in Zoom (push inactive, activate, remove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_in: Option<crate::port_in::PortInJob>,
}

impl JobPayload {
    pub fn numbers(numbers: Vec<PhoneNumber>) -> Self {
        JobPayload { numbers, repair: None, port_in: None }
    }

    /// Whether the job carries `number`.
    pub fn carries(&self, number: &PhoneNumber) -> bool {
        self.numbers.contains(number)
    }
}

/// Numbers in a payload were [`PhoneNumber`]s when the store wrote them; only their shape is
/// checked again (a full parse of every number on every jobs page would cost more than it proves).
fn stored_numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PhoneNumber>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.into_iter()
        .map(|s| {
            PhoneNumber::listed(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an E.164 number")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::assert_table;
    use JobEvent::{Cancel, Claim, GiveUp, HandBack, OperatorRetry, Reclaim, Reschedule, Retry};
    use JobState::{Failed, Pending, Running};

    #[test]
    fn job_moves_exactly_as_the_table_says() {
        assert_table(
            &JobEvent::ALL,
            &[
                (Pending, Claim, Running),
                (Running, Reclaim, Running),
                (Running, JobEvent::Done, JobState::Done),
                (Running, Retry, Pending),
                (Running, GiveUp, Failed),
                (Running, HandBack, Pending),
                (Running, Reschedule, Pending),
                (Failed, OperatorRetry, Pending),
                (Pending, Cancel, JobState::Done),
                (Running, Cancel, JobState::Done),
            ],
            &[JobState::Done],
        );
    }

    #[test]
    fn a_workers_end_is_the_matching_event() {
        let at = time::macros::datetime!(2026-11-23 10:00 UTC);
        assert_eq!(Running.on(JobEnd::Done.event()).unwrap().to, JobState::Done);
        let retry = JobEnd::Retry { at, error: "503".into() };
        assert_eq!(Running.on(retry.event()).unwrap().to, Pending);
        let failed = JobEnd::Failed { error: "400".into() };
        assert_eq!(Running.on(failed.event()).unwrap().to, Failed);
        assert!(Pending.on(JobEnd::Done.event()).is_err(), "only a running job is finished");
    }

    #[test]
    fn a_job_has_ended_when_no_worker_may_take_it() {
        let ended: Vec<_> = JobState::ALL.into_iter().filter(|s| s.ended()).collect();
        assert_eq!(ended, [JobState::Done, Failed]);
    }

    #[test]
    fn an_account_gets_one_poll_a_minute_after_linking_unless_one_is_live() {
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        let (c, a) = (CustomerId::new(), ZoomAccountId::parse("acct").unwrap());
        let job = plan_poll(c, &a, &[JobState::Done, Failed], now).expect("none live");
        assert_eq!(
            (job.kind, job.state, job.customer_id, job.zoom_account.as_ref(), job.run_after),
            (JobKind::PollNumbers, Pending, Some(c), Some(&a), now + FIRST_POLL_AFTER)
        );
        assert!(job.payload.numbers.is_empty());
        assert!(plan_poll(c, &a, &[], now).is_some());
        for live in [Pending, Running] {
            assert!(plan_poll(c, &a, &[JobState::Done, live], now).is_none(), "{live:?}");
        }
    }

    #[test]
    fn payload_is_plain_json_and_round_trips() {
        let a = PhoneNumber::parse("+15550100001").unwrap();
        let b = PhoneNumber::parse("+4930123456").unwrap();
        let p = JobPayload::numbers(vec![a.clone(), b.clone()]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"numbers":["+15550100001","+4930123456"]}"#);
        assert_eq!(serde_json::from_str::<JobPayload>(&json).unwrap(), p);
        assert!(p.carries(&a) && p.carries(&b));
        assert!(!p.carries(&PhoneNumber::parse("+15550100002").unwrap()));
        // A poll carries nothing, stored as `{}` (the rows written before this type read the same).
        assert_eq!(serde_json::to_string(&JobPayload::default()).unwrap(), "{}");
        assert_eq!(serde_json::from_str::<JobPayload>("{}").unwrap(), JobPayload::default());
        assert!(!JobPayload::default().carries(&a));
    }

    #[test]
    fn payload_with_something_other_than_numbers_is_refused() {
        for bad in
            [r#"{"numbers":["15550100001"]}"#, r#"{"numbers":["+1555x"]}"#, r#"{"numbers":7}"#]
        {
            assert!(serde_json::from_str::<JobPayload>(bad).is_err(), "{bad}");
        }
    }
}
