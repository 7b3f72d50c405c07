//! Releases (DESIGN.md §2 "Release"): the carrier starts the release of some of a customer's active
//! numbers, the customer approves it ("Wait for Release" → "Release numbers"), and each number is
//! removed from Zoom unless Zoom refuses (still assigned to a user there). The number's own moves are
//! in [`crate::number`]; this module holds what a release is and how Zoom's answers read.

use crate::ids::{CustomerId, NumberId};
use crate::job::JobPayload;
use crate::machine::{StateMachine, Step};
use crate::number::Number;
use crate::number::{NumberEvent, NumberState};
use crate::onboarding::JobState;
use crate::onboarding::{Job, JobKind, ZOOM_BATCH};
use crate::phone::PhoneNumber;
use crate::zoom_account::ZoomAccountId;
use crate::Actor;
use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// What the customer reads when Zoom refuses to remove a number still assigned to a user.
pub const UNBIND_MESSAGE: &str = "Unassign (Unbind) this number in Zoom, then release it again";

/// What a number waiting for release says while the app is removed from the customer's Zoom account
/// (the number is suspended); once the app is installed again it waits for approval again.
pub const ON_HOLD_MESSAGE: &str = "On hold: the app was removed in Zoom; waits for approval again once the app is installed again";

/// Zoom's reason for refusing to remove a number that is assigned (REFERENCE: DELETE peering numbers).
pub const ZOOM_ASSIGNED: &str = "Phone number is assigned";

/// How long a released number rests before it can be sold again, unless configured otherwise.
pub const DEFAULT_QUARANTINE: time::Duration = time::Duration::days(90);

/// Where one number of a release is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// `release_pending`, waiting for the customer's approval.
    Waiting,
    /// Approved; being removed from Zoom.
    Releasing,
    /// Removed from Zoom; the number is `aging`.
    Released,
    /// Zoom refused; back to `release_pending` with the reason.
    Refused,
    /// The carrier withdrew the release; the number is `active` again.
    Withdrawn,
}

impl LineState {
    pub const ALL: [LineState; 5] = [
        LineState::Waiting,
        LineState::Releasing,
        LineState::Released,
        LineState::Refused,
        LineState::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Waiting => "waiting",
            LineState::Releasing => "releasing",
            LineState::Released => "released",
            LineState::Refused => "refused",
            LineState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Where a number starts when a release takes it.
    pub const START: LineState = LineState::Waiting;

    /// Whether the customer can (still, or again) approve this number.
    pub fn approvable(self) -> bool {
        self.next(LineEvent::Approve).is_some()
    }

    /// The states the customer can approve a number in: the lines a release still waits for.
    pub fn approvable_states() -> Vec<LineState> {
        Self::ALL.into_iter().filter(|s| s.approvable()).collect()
    }
}

/// What happens to one number of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// The customer approves it: a job removes it from Zoom.
    Approve,
    /// Zoom no longer has it.
    ZoomRemoved,
    /// Zoom refused to remove it, or its job ended without an answer: it waits for the customer
    /// again.
    ZoomRefused,
    /// The carrier withdrew the release, or the number left it another way (see
    /// [`plan_stale_lines`]).
    Withdraw,
    /// The app was installed again and Zoom has the number once more: it waits for approval again,
    /// without the message of the time it was on hold or refused.
    Resume,
}

impl LineEvent {
    pub const ALL: [LineEvent; 5] = [
        LineEvent::Approve,
        LineEvent::ZoomRemoved,
        LineEvent::ZoomRefused,
        LineEvent::Withdraw,
        LineEvent::Resume,
    ];
}

/// A release line's life: `waiting` for the customer, who approves it (`releasing`); Zoom removes
/// it (`released`) or refuses (`refused`, which the customer may approve again). A line the
/// customer has not approved (waiting or refused) may be `withdrawn`. Released and withdrawn lines
/// are history.
impl StateMachine for LineState {
    type Event = LineEvent;
    const STATES: &'static [Self] = &LineState::ALL;
    const WHAT: &'static str = "release line";

    fn next(self, event: LineEvent) -> Option<Self> {
        use LineEvent as E;
        use LineState as S;
        match (self, event) {
            (S::Waiting | S::Refused, E::Approve) => Some(S::Releasing),
            (S::Releasing, E::ZoomRemoved) => Some(S::Released),
            (S::Releasing, E::ZoomRefused) => Some(S::Refused),
            (S::Waiting | S::Refused, E::Withdraw) => Some(S::Withdrawn),
            (S::Waiting | S::Refused, E::Resume) => Some(S::Waiting),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for LineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a release happens, which says whether the customer approves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// The carrier asks, the customer approves ("Wait for Release").
    Approval,
    /// Another carrier won the numbers: from the due date they stop routing and leave Zoom.
    PortOut,
    /// The customer's contract ends: all its numbers, on a date; the Zoom link ends afterwards.
    ContractEnd,
    /// The customer gave the number back in Zoom ("Returned"): taken back now.
    Returned,
}

impl ReleaseKind {
    pub const ALL: [ReleaseKind; 4] = [
        ReleaseKind::Approval,
        ReleaseKind::PortOut,
        ReleaseKind::ContractEnd,
        ReleaseKind::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Approval => "approval",
            ReleaseKind::PortOut => "port_out",
            ReleaseKind::ContractEnd => "contract_end",
            ReleaseKind::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the customer approves the release; the others run on their due date.
    pub fn needs_approval(self) -> bool {
        self == ReleaseKind::Approval
    }

    /// The kinds that run on their due date without the customer.
    pub fn carrier_started() -> Vec<ReleaseKind> {
        Self::ALL.into_iter().filter(|k| !k.needs_approval()).collect()
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason a port-out carries (what the customer and the audit trail read).
pub fn port_out_reason(gaining_carrier: &str, due: time::Date) -> String {
    format!("Ported out to {} on {due}", gaining_carrier.trim())
}

/// The reason a contract end carries.
pub fn contract_end_reason(due: time::Date) -> String {
    format!("Contract ended on {due}")
}

/// The reason a number the customer gave back in Zoom carries.
pub const RETURNED_REASON: &str = "Returned by the customer in Zoom";

/// What a number released without approval says while Zoom keeps it because it is assigned to a user
/// there: it no longer routes, and its removal is tried again until Zoom lets it go.
pub const BLOCKED_ASSIGNED: &str =
    "Assigned to a user in Zoom: unassign it (Unbind) in Zoom; peerex removes it then";

/// What the line of a number released without approval says of Zoom's refusal.
pub fn blocked_message(zoom_refusal: &str) -> String {
    if zoom_refusal == UNBIND_MESSAGE {
        BLOCKED_ASSIGNED.to_owned()
    } else {
        zoom_refusal.to_owned()
    }
}

/// Checks the carrier that wins a port-out: named, at most 100 characters.
pub fn check_carrier(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("name the carrier that wins the numbers");
    }
    if name.trim().chars().count() > 100 {
        return Err("is longer than 100 characters");
    }
    Ok(())
}

/// What a release started without the customer's approval carries besides its reason.
#[derive(Clone, Debug)]
pub struct CarrierRelease {
    pub kind: ReleaseKind,
    /// From when the numbers stop routing and leave Zoom.
    pub due_at: OffsetDateTime,
    /// The carrier that wins the numbers (port-out).
    pub gaining_carrier: Option<String>,
}

/// A release the carrier started, with how many of its numbers are where.
#[derive(Clone, Debug, Serialize)]
pub struct Release {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub kind: ReleaseKind,
    /// When the numbers stop routing and leave Zoom (releases without approval).
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    /// The carrier that wins the numbers (port-out).
    pub gaining_carrier: Option<String>,
    pub reason: String,
    pub started_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub waiting: i64,
    pub releasing: i64,
    pub released: i64,
    pub refused: i64,
    pub withdrawn: i64,
}

impl Release {
    /// Numbers that still need something from the customer or from Zoom.
    pub fn open(&self) -> i64 {
        self.waiting + self.releasing + self.refused
    }
}

/// One number of a release, with what Zoom last said of it.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseLine {
    pub release_id: Uuid,
    pub number_id: NumberId,
    pub e164: PhoneNumber,
    pub state: LineState,
    pub kind: ReleaseKind,
    /// Why the release was started.
    pub release_reason: String,
    /// Zoom's refusal, or what to do about it.
    pub message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Assigned to a user in Zoom, as last seen; `None` when Zoom has not been asked.
    pub zoom_assigned: Option<bool>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub zoom_seen_at: Option<OffsetDateTime>,
}

/// What Zoom answered for one number of a removal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveResult {
    /// Zoom no longer has the number (removed now, or it was gone already: converged).
    Removed,
    /// Zoom kept it; the message is what the customer reads.
    Refused(String),
}

/// The longest reason a release may carry, in characters (what the portals and the API promise).
pub const REASON_MAX_CHARS: usize = 500;

/// Checks a release's reason: said (not blank) and at most [`REASON_MAX_CHARS`] characters —
/// characters, not bytes, so a reason in Japanese or with accents gets the same room as one in English.
pub fn check_reason(reason: &str) -> Result<(), &'static str> {
    if reason.trim().is_empty() {
        return Err("say why the numbers are released");
    }
    if reason.chars().count() > REASON_MAX_CHARS {
        return Err("is longer than 500 characters");
    }
    Ok(())
}

/// What the customer reads for Zoom's refusal to remove a number.
pub fn refusal_message(zoom_message: &str) -> String {
    if zoom_message.trim().trim_end_matches('.').eq_ignore_ascii_case(ZOOM_ASSIGNED) {
        UNBIND_MESSAGE.to_owned()
    } else {
        format!("Zoom refused to remove it: {}", zoom_message.trim())
    }
}

/// The numbers of a CSV with their row numbers: the `e164` (or `number`) column when the first row
/// is a header naming one, else the first column of every row. Errors name the row.
pub fn csv_numbers(text: &str) -> Result<Vec<(usize, String)>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        rows.push(rec.map_err(|e| format!("row {}: {e}", i + 1))?);
    }
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let header = first.iter().position(|h| {
        matches!(h.to_ascii_lowercase().as_str(), "e164" | "number" | "phone_number")
    });
    let looks_like_header = first.iter().all(|h| !h.chars().any(|c| c.is_ascii_digit()));
    let (column, skip) = match header {
        Some(col) => (col, 1),
        None if looks_like_header => {
            return Err("row 1: the header has no e164 (or number) column".into())
        }
        None => (0, 0),
    };
    Ok(rows
        .iter()
        .enumerate()
        .skip(skip)
        .filter_map(|(i, r)| r.get(column).filter(|v| !v.is_empty()).map(|v| (i + 1, v.to_owned())))
        .collect())
}

/// Why a release could not be started; nothing changed. Each problem names the number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartRefused {
    #[error("numbers: give at least one number to release")]
    Empty,
    #[error("reason: say why the numbers are released")]
    NoReason,
    #[error("numbers: {}", .0.join("; "))]
    Numbers(Vec<String>),
    /// Every number is the customer's, but some are not active (already in a release, or moved by
    /// a request that came first): a conflict with what is under way.
    #[error("numbers: {}", .0.join("; "))]
    Busy(Vec<String>),
}

/// Why an approval was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApproveRefused {
    #[error("tick at least one number to release")]
    Empty,
    /// An id that is not one of the customer's numbers waiting for release (never says whose).
    #[error("not found")]
    NotFound,
    #[error("your Zoom account is not linked, so the numbers cannot be removed from Zoom; add the app in Zoom first")]
    NoLink,
}

impl RemoveResult {
    /// What Zoom's answer does to the number's release line.
    pub fn line_event(&self) -> LineEvent {
        match self {
            RemoveResult::Removed => LineEvent::ZoomRemoved,
            RemoveResult::Refused(_) => LineEvent::ZoomRefused,
        }
    }
}

/// Whether a line the customer has not approved yet stays open while its number is in `state`: the
/// number waits for approval (`release_pending`), or is on hold while the app is removed in Zoom
/// (`suspended`) or being pushed again after its re-install (`provisioning`). In any other state
/// the number left the release another way, and its line is closed.
/// A number kept `releasing` because Zoom refused to remove it after a release without approval
/// came due stays open too: its removal is tried again.
pub fn line_stays_open(number: NumberState) -> bool {
    matches!(
        number,
        NumberState::ReleasePending
            | NumberState::Suspended
            | NumberState::Provisioning
            | NumberState::Releasing
    )
}

/// The number states whose open lines [`plan_stale_lines`] closes: what the sweep looks for.
pub fn stale_number_states() -> Vec<NumberState> {
    NumberState::ALL.into_iter().filter(|&s| !line_stays_open(s)).collect()
}

/// A release line as the sweep reads it, with its number's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenLine {
    pub release_id: Uuid,
    pub number_id: NumberId,
    pub state: LineState,
    pub number: NumberState,
}

/// A line to close, the compare-and-set that closes it, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseLine {
    pub release_id: Uuid,
    pub number_id: NumberId,
    pub step: Step<LineState>,
    pub message: String,
}

/// Which lines a release no longer waits for: those not approved yet whose number left
/// `release_pending` another way (see [`line_stays_open`]), closed as withdrawn, saying why.
pub fn plan_stale_lines(lines: &[OpenLine]) -> Vec<CloseLine> {
    lines
        .iter()
        .filter(|l| !line_stays_open(l.number))
        .filter_map(|l| {
            let step = l.state.on(LineEvent::Withdraw).ok()?;
            Some(CloseLine {
                release_id: l.release_id,
                number_id: l.number_id,
                step,
                message: format!("left the release: the number is {}", l.number),
            })
        })
        .collect()
}

/// Whether a number `releasing` under a job in state `job` (`None`: the job is gone) will never get
/// Zoom's answer: no worker runs its job any more.
pub fn release_job_ended(job: Option<JobState>) -> bool {
    job.is_none_or(JobState::ended)
}

/// What a number left `releasing` by a job that ended without answering for it becomes: back to
/// `release_pending`, its line refused with `message` and the job's last error, so the customer
/// can approve it again. A number released without approval (`kind`) stays `releasing` (it does not
/// route again) and its removal is tried again. `None` when the number is no longer `releasing`
/// (it moved meanwhile).
pub fn plan_unfinished_release(
    number: Number,
    kind: ReleaseKind,
    message: &str,
    last_error: Option<&str>,
    by: &Actor,
    now: OffsetDateTime,
) -> Option<(Number, NumberEvent, Step<LineState>, String)> {
    let why = match last_error {
        Some(e) if !e.is_empty() => format!("{message} ({e})"),
        _ => message.to_owned(),
    };
    let (n, e) = if kind.needs_approval() {
        number.zoom_refused_release(&why, by, now).ok()?
    } else {
        number.removal_blocked(&why, by, now).ok()?
    };
    let step = LineState::Releasing.on(LineEvent::ZoomRefused).ok()?;
    Some((n, e, step, why))
}

/// Cuts the removal of approved numbers into release jobs for the customer's Zoom `account`: at
/// most [`ZOOM_BATCH`] numbers each (Zoom's limit for one call), in E.164 order. Each job comes with
/// the numbers whose release lines it carries.
pub fn cut_release_jobs(
    customer: CustomerId,
    account: &ZoomAccountId,
    numbers: &[Number],
    now: OffsetDateTime,
) -> Vec<(Job, Vec<NumberId>)> {
    let mut sorted: Vec<&Number> = numbers.iter().collect();
    sorted.sort_by(|a, b| a.e164.cmp(&b.e164));
    sorted.dedup_by_key(|n| n.id);
    sorted
        .chunks(ZOOM_BATCH)
        .map(|batch| {
            let job = Job::new(
                JobKind::ReleaseNumbers,
                JobPayload::numbers(batch.iter().map(|n| n.e164.clone()).collect()),
                Some(customer),
                None,
                Some(account.clone()),
                now,
            );
            (job, batch.iter().map(|n| n.id).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    fn acct() -> crate::ZoomAccountId {
        crate::ZoomAccountId::parse("acct").unwrap()
    }

    #[test]
    fn a_reason_is_said_and_counted_in_characters() {
        assert!(super::check_reason("  ").is_err());
        assert!(super::check_reason("contract ended").is_ok());
        assert!(super::check_reason(&"é".repeat(500)).is_ok(), "500 characters, 1000 bytes");
        assert!(super::check_reason(&"契".repeat(500)).is_ok());
        assert_eq!(super::check_reason(&"a".repeat(501)), Err("is longer than 500 characters"));
    }

    use super::*;
    use crate::number::NumberAttrs;

    #[test]
    fn release_line_moves_exactly_as_the_table_says() {
        use LineEvent::*;
        use LineState::*;
        crate::machine::assert_table(
            &LineEvent::ALL,
            &[
                (Waiting, Approve, Releasing),
                (Refused, Approve, Releasing),
                (Releasing, ZoomRemoved, Released),
                (Releasing, ZoomRefused, Refused),
                (Waiting, Withdraw, Withdrawn),
                (Refused, Withdraw, Withdrawn),
                (Waiting, Resume, Waiting),
                (Refused, Resume, Waiting),
            ],
            &[Released, Withdrawn],
        );
        assert_eq!(LineState::START, Waiting);
        assert_eq!(RemoveResult::Removed.line_event(), ZoomRemoved);
        assert_eq!(RemoveResult::Refused("no".into()).line_event(), ZoomRefused);
    }

    #[test]
    fn a_line_not_approved_is_closed_once_its_number_left_the_release_another_way() {
        let line = |state, number| OpenLine {
            release_id: Uuid::now_v7(),
            number_id: NumberId::new(),
            state,
            number,
        };
        let mut lines = Vec::new();
        for number in NumberState::ALL {
            for state in LineState::ALL {
                lines.push(line(state, number));
            }
        }
        let closed = plan_stale_lines(&lines);
        for l in &lines {
            let close = closed.iter().find(|c| c.number_id == l.number_id);
            let stays = l.number == NumberState::ReleasePending
                || l.number == NumberState::Releasing
                || l.number == NumberState::Suspended
                || l.number == NumberState::Provisioning
                || !l.state.approvable();
            assert_eq!(close.is_none(), stays, "{l:?}");
            if let Some(c) = close {
                assert_eq!(
                    (c.release_id, c.step.from, c.step.to),
                    (l.release_id, l.state, LineState::Withdrawn)
                );
                assert_eq!(
                    c.message,
                    format!("left the release: the number is {}", l.number.as_str())
                );
            }
        }
        let stale = stale_number_states();
        assert!(stale.contains(&NumberState::Active) && stale.contains(&NumberState::Aging));
        assert!(!stale.contains(&NumberState::ReleasePending));
        assert!(lines
            .iter()
            .filter(|l| !stale.contains(&l.number))
            .all(|l| !closed.iter().any(|c| c.number_id == l.number_id)));
    }

    #[test]
    fn a_release_whose_job_ended_unanswered_waits_for_the_customer_with_the_jobs_error() {
        use crate::onboarding::JobState;
        assert!(release_job_ended(None), "the job is gone");
        assert!(
            release_job_ended(Some(JobState::Done)) && release_job_ended(Some(JobState::Failed))
        );
        assert!(
            !release_job_ended(Some(JobState::Pending))
                && !release_job_ended(Some(JobState::Running))
        );

        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        let by = Actor::System("release-sweep".into());
        let (mut n, _) = Number::imported(
            PhoneNumber::parse("+15550100001").unwrap(),
            NumberAttrs::default(),
            &by,
            now,
        );
        n.state = NumberState::Releasing;
        let (moved, event, step, why) = plan_unfinished_release(
            n.clone(),
            ReleaseKind::Approval,
            "unfinished",
            Some("503"),
            &by,
            now,
        )
        .unwrap();
        assert_eq!(
            (moved.state, event.to, why.as_str()),
            (NumberState::ReleasePending, NumberState::ReleasePending, "unfinished (503)")
        );
        assert_eq!((step.from, step.to), (LineState::Releasing, LineState::Refused));
        for none in [None, Some("")] {
            let (.., why) = plan_unfinished_release(
                n.clone(),
                ReleaseKind::Approval,
                "unfinished",
                none,
                &by,
                now,
            )
            .unwrap();
            assert_eq!(why, "unfinished");
        }
        let (kept, event, step, _) =
            plan_unfinished_release(n.clone(), ReleaseKind::PortOut, "unfinished", None, &by, now)
                .unwrap();
        assert_eq!(
            (kept.state, event.to, step.to),
            (NumberState::Releasing, NumberState::Releasing, LineState::Refused),
            "a port-out does not route again"
        );
        n.state = NumberState::Aging;
        assert!(
            plan_unfinished_release(n, ReleaseKind::Approval, "unfinished", None, &by, now)
                .is_none(),
            "moved meanwhile"
        );
    }

    #[test]
    fn carrier_started_kinds_run_without_approval_and_say_why() {
        for k in ReleaseKind::ALL {
            assert_eq!(ReleaseKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(
            ReleaseKind::carrier_started(),
            vec![ReleaseKind::PortOut, ReleaseKind::ContractEnd, ReleaseKind::Returned]
        );
        let d = time::macros::date!(2026 - 12 - 01);
        assert_eq!(port_out_reason(" Other Telco ", d), "Ported out to Other Telco on 2026-12-01");
        assert_eq!(contract_end_reason(d), "Contract ended on 2026-12-01");
        assert_eq!(blocked_message(UNBIND_MESSAGE), BLOCKED_ASSIGNED);
        assert_eq!(blocked_message("Zoom refused to remove it: x"), "Zoom refused to remove it: x");
        assert!(check_carrier(" ").is_err() && check_carrier(&"a".repeat(101)).is_err());
        assert!(check_carrier("Other Telco").is_ok());
    }

    #[test]
    fn an_assigned_number_reads_as_unbind_and_other_refusals_keep_zooms_words() {
        assert_eq!(refusal_message("Phone number is assigned"), UNBIND_MESSAGE);
        assert_eq!(refusal_message("phone number is assigned."), UNBIND_MESSAGE);
        assert_eq!(refusal_message("Internal error"), "Zoom refused to remove it: Internal error");
    }

    #[test]
    fn line_states_round_trip_and_only_waiting_or_refused_can_be_approved() {
        for s in LineState::ALL {
            assert_eq!(LineState::parse(s.as_str()), Some(s));
        }
        let approvable: Vec<_> = LineState::ALL.into_iter().filter(|s| s.approvable()).collect();
        assert_eq!(approvable, vec![LineState::Waiting, LineState::Refused]);
    }

    /// The whole release of one number, refused once because it is assigned in Zoom, then released:
    /// every move is an event, the reason travels with the number, the customer lets go at the end,
    /// and the quarantine ends it back in stock.
    #[test]
    fn release_refused_then_released_then_back_in_stock_after_quarantine() {
        let t0 = time::macros::datetime!(2026-11-23 10:00 UTC);
        let op = Actor::Operator("ops@carrier.example".into());
        let admin = Actor::CustomerAdmin("admin@acme.example".into());
        let worker = Actor::System("zoom-release".into());
        let (mut n, _) = Number::imported(
            PhoneNumber::parse("+15550100001").unwrap(),
            NumberAttrs::default(),
            &op,
            t0,
        );
        n.state = NumberState::Active;
        n.customer_id = Some(CustomerId::new());
        let mut trail = Vec::new();
        let mut step = |r: Result<(Number, crate::NumberEvent), crate::TransitionError>| {
            let (n, e) = r.unwrap();
            trail.push((e.from.unwrap(), e.to, e.reason.clone().unwrap_or_default()));
            n
        };
        let n = step(n.start_release("contract ends", &op, t0));
        assert_eq!(n.reason.as_deref(), Some("contract ends"));
        let n = step(n.approve_release(&admin, t0));
        let n = step(n.zoom_refused_release(&refusal_message(ZOOM_ASSIGNED), &worker, t0));
        assert_eq!(
            (n.state, n.reason.as_deref()),
            (NumberState::ReleasePending, Some(UNBIND_MESSAGE))
        );
        let n = step(n.approve_release(&admin, t0));
        let until = t0 + DEFAULT_QUARANTINE;
        let n = step(n.zoom_removed(until, &worker, t0));
        assert_eq!(
            (n.state, n.customer_id, n.aging_until),
            (NumberState::Aging, None, Some(until))
        );
        assert!(
            n.clone().quarantine_over(&worker, t0 + time::Duration::days(89)).is_err(),
            "not before the quarantine ends"
        );
        let n = step(n.quarantine_over(&worker, until));
        assert_eq!((n.state, n.aging_until), (NumberState::Available, None));
        use NumberState::*;
        let moves: Vec<_> = trail.iter().map(|(f, t, _)| (*f, *t)).collect();
        assert_eq!(
            moves,
            vec![
                (Active, ReleasePending),
                (ReleasePending, Releasing),
                (Releasing, ReleasePending),
                (ReleasePending, Releasing),
                (Releasing, Aging),
                (Aging, Available)
            ]
        );
        assert_eq!(trail[2].2, UNBIND_MESSAGE);
    }

    #[test]
    fn withdrawn_release_returns_the_number_active_without_a_reason() {
        let t0 = time::macros::datetime!(2026-11-23 10:00 UTC);
        let op = Actor::Operator("ops@carrier.example".into());
        let (mut n, _) = Number::imported(
            PhoneNumber::parse("+15550100002").unwrap(),
            NumberAttrs::default(),
            &op,
            t0,
        );
        n.state = NumberState::Active;
        let (n, _) = n.start_release("mistake", &op, t0).unwrap();
        let (n, e) = n.withdraw_release(&op, t0).unwrap();
        assert_eq!(
            (n.state, n.reason, e.reason.as_deref()),
            (NumberState::Active, None, Some("release withdrawn"))
        );
    }

    #[test]
    fn approved_numbers_are_removed_in_batches_of_zoom_size_in_e164_order() {
        use crate::number::NumberAttrs;
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        let by = crate::Actor::System("t".into());
        let numbers: Vec<Number> = (0..ZOOM_BATCH + 3)
            .rev()
            .map(|i| {
                let e164 = crate::PhoneNumber::parse(&format!("+1555{i:07}")).unwrap();
                Number::imported(e164, NumberAttrs::default(), &by, now).0
            })
            .collect();
        let c = CustomerId::new();
        let jobs = cut_release_jobs(c, &acct(), &numbers, now);
        let sizes: Vec<usize> = jobs
            .iter()
            .map(|(j, ids)| {
                assert_eq!(j.payload.numbers.len(), ids.len());
                ids.len()
            })
            .collect();
        assert_eq!(sizes, [ZOOM_BATCH, 3]);
        let (first, ids) = &jobs[0];
        assert_eq!(first.kind, JobKind::ReleaseNumbers);
        assert_eq!(
            (first.customer_id, first.order_id, first.zoom_account.as_ref().map(|a| a.as_str())),
            (Some(c), None, Some("acct"))
        );
        assert_eq!(first.payload.numbers[0].as_str(), "+15550000000");
        assert!(first.payload.numbers.windows(2).all(|w| w[0] < w[1]));
        let by_id: std::collections::HashMap<_, _> =
            numbers.iter().map(|n| (n.id, &n.e164)).collect();
        let carried: Vec<_> = ids.iter().map(|id| by_id[id].clone()).collect();
        assert_eq!(carried, first.payload.numbers, "each job's lines are its numbers");
        assert!(cut_release_jobs(c, &acct(), &[], now).is_empty());
    }
}
