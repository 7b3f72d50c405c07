//! Reconciliation: what peerex holds, what Zoom lists and what the routing instances serve, compared
//! number by number. Pure: the reconciler loads one account's (or the carrier's) view of each side,
//! asks [`compare`] for the disagreements, and records them as findings; each kind names the repair
//! peerex proposes and whether it may run without an operator.
//!
//! The comparison is only as good as the listing it is given: the caller passes a listing only when
//! every page of it was read, so a page lost to a 429 or an expired page token can never look like
//! numbers gone from Zoom.

use crate::ids::CustomerId;
use crate::number::NumberState;
use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use time::{Duration, OffsetDateTime};

/// A disagreement between two sides, named so that an operator knows what it means and what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Zoom lists a number peerex's inventory does not have at all.
    UnknownToPeerex,
    /// Zoom lists a number that peerex has not sold (available, reserved or in quarantine).
    NotSoldButInZoom,
    /// Zoom lists the number in a Zoom account other than the one its customer linked.
    OtherAccount,
    /// peerex has the number active (or awaiting release) but Zoom does not list it.
    GoneFromZoom,
    /// Zoom lists the number on a SIP trunk other than its customer's.
    WrongTrunk,
    /// Zoom lists the number as inactive (`status` false) while peerex has it active.
    InactiveInZoom,
    /// The customer marked the number Returned in Zoom.
    ReturnedByCustomer,
    /// Still `provisioning` or `releasing` long after any job for it ended.
    Stuck,
    /// Zoom already lists a `provisioning` number under the right account: the push's answer was lost.
    PushAnswerLost,
    /// A routing instance's snapshot is behind the database.
    RoutingBehind,
}

impl FindingKind {
    pub const ALL: [FindingKind; 10] = [
        FindingKind::UnknownToPeerex,
        FindingKind::NotSoldButInZoom,
        FindingKind::OtherAccount,
        FindingKind::GoneFromZoom,
        FindingKind::WrongTrunk,
        FindingKind::InactiveInZoom,
        FindingKind::ReturnedByCustomer,
        FindingKind::Stuck,
        FindingKind::PushAnswerLost,
        FindingKind::RoutingBehind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnknownToPeerex => "unknown_to_peerex",
            FindingKind::NotSoldButInZoom => "not_sold_but_in_zoom",
            FindingKind::OtherAccount => "other_account",
            FindingKind::GoneFromZoom => "gone_from_zoom",
            FindingKind::WrongTrunk => "wrong_trunk",
            FindingKind::InactiveInZoom => "inactive_in_zoom",
            FindingKind::ReturnedByCustomer => "returned_by_customer",
            FindingKind::Stuck => "stuck",
            FindingKind::PushAnswerLost => "push_answer_lost",
            FindingKind::RoutingBehind => "routing_behind",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What peerex proposes for a finding of this kind.
    pub fn repair(self) -> Repair {
        match self {
            FindingKind::UnknownToPeerex
            | FindingKind::OtherAccount
            | FindingKind::RoutingBehind => Repair::Investigate,
            FindingKind::NotSoldButInZoom => Repair::RemoveFromZoom,
            FindingKind::GoneFromZoom => Repair::PushAgain,
            FindingKind::WrongTrunk => Repair::SetTrunk,
            FindingKind::InactiveInZoom => Repair::Activate,
            FindingKind::ReturnedByCustomer => Repair::StartRelease,
            FindingKind::Stuck => Repair::RunJobAgain,
            FindingKind::PushAnswerLost => Repair::MarkActive,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repair peerex proposes. Every one that calls Zoom goes through the job outbox like any push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// Nothing peerex can do by itself: a person looks (peerex never deletes from Zoom, or moves
    /// between accounts, a number it does not hold for that account).
    Investigate,
    /// Remove the number from Zoom: it is the carrier's but nobody bought it. An operator confirms.
    RemoveFromZoom,
    /// Add the number to its customer's account again, on the customer's trunk.
    PushAgain,
    /// Set the number's SIP trunk in Zoom back to its customer's.
    SetTrunk,
    /// Set the number active in Zoom.
    Activate,
    /// Start a release of the number (the customer still approves it in Wait for Release).
    StartRelease,
    /// Queue the push or removal the number is waiting for again.
    RunJobAgain,
    /// Record what Zoom shows: the number is active.
    MarkActive,
}

impl Repair {
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Investigate => "investigate",
            Repair::RemoveFromZoom => "remove_from_zoom",
            Repair::PushAgain => "push_again",
            Repair::SetTrunk => "set_trunk",
            Repair::Activate => "activate",
            Repair::StartRelease => "start_release",
            Repair::RunJobAgain => "run_job_again",
            Repair::MarkActive => "mark_active",
        }
    }

    /// Whether the reconciler may apply it on its own. Only repairs that bring Zoom or peerex back to
    /// what peerex already recorded for the customer are automatic; anything that takes a number away
    /// from someone, or decides whose it is, waits for an operator.
    pub fn automatic(self) -> bool {
        matches!(
            self,
            Repair::PushAgain
                | Repair::SetTrunk
                | Repair::Activate
                | Repair::RunJobAgain
                | Repair::MarkActive
        )
    }

    /// Whether an operator may have peerex carry it out: the automatic ones, and the two a person
    /// confirms (removing from Zoom a number peerex holds unsold; releasing a Returned one).
    pub fn confirmable(self) -> bool {
        self.automatic() || matches!(self, Repair::RemoveFromZoom | Repair::StartRelease)
    }

    /// Whether the repair does anything at all (as opposed to asking a person to look).
    pub fn acts(self) -> bool {
        self != Repair::Investigate
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One number as peerex holds it, with what Zoom should show for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub e164: PhoneNumber,
    pub state: NumberState,
    pub customer: Option<CustomerId>,
    /// The Zoom account the customer linked, if linked.
    pub account: Option<String>,
    /// The SIP trunk the customer's numbers go to in Zoom, if the customer has one.
    pub trunk: Option<String>,
    /// When the number entered its state.
    pub since: OffsetDateTime,
    /// Whether a push or removal job for the number is still queued or running.
    pub job_open: bool,
}

/// One number as Zoom lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub e164: PhoneNumber,
    /// The Zoom account it is in.
    pub account: String,
    pub trunk: Option<String>,
    /// Zoom's `status`: false while inactive.
    pub active: bool,
    /// The customer marked it Returned.
    pub returned: bool,
}

/// One disagreement found in one comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub kind: FindingKind,
    pub e164: PhoneNumber,
    pub customer: Option<CustomerId>,
    /// What was seen, in words an operator reads (the account or trunk Zoom shows, the state and age).
    pub detail: String,
}

/// How long a number may sit in `provisioning` or `releasing` with no job working on it before it is
/// reported stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub stuck_after: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { stuck_after: Duration::minutes(30) }
    }
}

/// Which of peerex's numbers a listing covers: one linked account's listing shows only that account,
/// the carrier-wide listing shows every account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    Account(&'a str),
    Carrier,
}

impl Scope<'_> {
    fn covers(&self, account: Option<&str>) -> bool {
        match self {
            Scope::Carrier => true,
            Scope::Account(a) => account == Some(*a),
        }
    }
}

/// Compares peerex's numbers with a complete Zoom listing of `scope`. `held` are the numbers of
/// peerex's inventory that Zoom's listing could contain (for an account: its customer's numbers and
/// any number the listing names), `known` answers whether a number listed by Zoom is in the inventory
/// at all. Each number yields at most one observation: the one whose repair comes first.
pub fn compare(
    scope: Scope<'_>,
    held: &[Held],
    listed: &[Listed],
    known: impl Fn(&PhoneNumber) -> bool,
    thresholds: Thresholds,
    now: OffsetDateTime,
) -> Vec<Observation> {
    let by_number: HashMap<&PhoneNumber, &Held> = held.iter().map(|h| (&h.e164, h)).collect();
    let mut out = Vec::new();
    let seen: HashSet<&PhoneNumber> = listed.iter().map(|l| &l.e164).collect();
    for l in listed {
        match by_number.get(&l.e164) {
            Some(h) => {
                if let Some(o) = compare_listed(h, l) {
                    out.push(o);
                }
            }
            None if !known(&l.e164) => out.push(Observation {
                kind: FindingKind::UnknownToPeerex,
                e164: l.e164.clone(),
                customer: None,
                detail: format!("listed in Zoom account {}", l.account),
            }),
            // Known to peerex but not among the numbers the caller loaded for this scope: the caller
            // loads every number of the scope, so this is a number held for nobody in it.
            None => out.push(Observation {
                kind: FindingKind::NotSoldButInZoom,
                e164: l.e164.clone(),
                customer: None,
                detail: format!("listed in Zoom account {}", l.account),
            }),
        }
    }
    for h in held {
        if seen.contains(&h.e164) {
            continue;
        }
        if let Some(o) = compare_unlisted(scope, h, thresholds, now) {
            out.push(o);
        }
    }
    out
}

/// A number peerex holds that Zoom lists.
fn compare_listed(h: &Held, l: &Listed) -> Option<Observation> {
    let obs = |kind, detail: String| {
        Some(Observation { kind, e164: h.e164.clone(), customer: h.customer, detail })
    };
    match h.state {
        NumberState::Available | NumberState::Reserved | NumberState::Aging => {
            return obs(
                FindingKind::NotSoldButInZoom,
                format!("{} in peerex, listed in Zoom account {}", h.state, l.account),
            );
        }
        // Suspended numbers' account unlinked the app: Zoom may keep or drop them, either is fine.
        NumberState::Suspended => return None,
        // A number being ported in is in Zoom inactive until its port date; its port-in's jobs
        // carry it there and activate it.
        NumberState::Porting => return None,
        NumberState::Provisioning
        | NumberState::Active
        | NumberState::ReleasePending
        | NumberState::Releasing => {}
    }
    if h.account.as_deref() != Some(l.account.as_str()) {
        let linked = h.account.as_deref().unwrap_or("no linked account");
        return obs(
            FindingKind::OtherAccount,
            format!("listed in Zoom account {}; the customer's is {linked}", l.account),
        );
    }
    if l.returned && h.state != NumberState::Releasing {
        return obs(FindingKind::ReturnedByCustomer, "marked Returned in Zoom".into());
    }
    if h.state == NumberState::Provisioning {
        if h.job_open {
            return None;
        }
        return obs(
            FindingKind::PushAnswerLost,
            "provisioning in peerex, already in the customer's Zoom account".into(),
        );
    }
    if h.state == NumberState::Releasing {
        return None;
    }
    if let Some(trunk) = &h.trunk {
        if l.trunk.as_deref() != Some(trunk.as_str()) {
            let shown = l.trunk.as_deref().unwrap_or("no trunk");
            return obs(
                FindingKind::WrongTrunk,
                format!("on {shown} in Zoom; the customer's trunk is {trunk}"),
            );
        }
    }
    if !l.active {
        return obs(
            FindingKind::InactiveInZoom,
            format!("{} in peerex, inactive in Zoom", h.state),
        );
    }
    None
}

/// A number peerex holds that the listing of `scope` does not show.
fn compare_unlisted(
    scope: Scope<'_>,
    h: &Held,
    thresholds: Thresholds,
    now: OffsetDateTime,
) -> Option<Observation> {
    let stuck = || {
        (!h.job_open && now - h.since >= thresholds.stuck_after).then(|| Observation {
            kind: FindingKind::Stuck,
            e164: h.e164.clone(),
            customer: h.customer,
            detail: format!("{} since {} with no job working on it", h.state, h.since.date()),
        })
    };
    match h.state {
        NumberState::Active | NumberState::ReleasePending if scope.covers(h.account.as_deref()) => {
            Some(Observation {
                kind: FindingKind::GoneFromZoom,
                e164: h.e164.clone(),
                customer: h.customer,
                detail: format!("{} in peerex, not in Zoom", h.state),
            })
        }
        NumberState::Provisioning => stuck(),
        // Gone from Zoom is where a release ends; only the missing answer leaves it releasing.
        NumberState::Releasing => stuck(),
        _ => None,
    }
}

/// A routing instance's position against the database's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSeen {
    pub instance: String,
    /// The change generation its snapshot has applied.
    pub generation: i64,
    /// When it last reported.
    pub reported_at: OffsetDateTime,
}

/// Routing instances whose snapshot is behind the database's generation, and have been for longer
/// than `grace` (a follower is always a few milliseconds behind a commit).
pub fn routing_behind(
    instances: &[InstanceSeen],
    database_generation: i64,
    generation_since: OffsetDateTime,
    grace: Duration,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    instances
        .iter()
        .filter(|i| i.generation < database_generation && now - generation_since >= grace)
        .map(|i| {
            let detail = format!(
                "serves generation {} of {}, last reported {}",
                i.generation, database_generation, i.reported_at
            );
            (i.instance.clone(), detail)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn held(e164: &str, state: NumberState) -> Held {
        Held {
            e164: n(e164),
            state,
            customer: Some(CustomerId::from_uuid(uuid::Uuid::nil())),
            account: Some("acct-a".into()),
            trunk: Some("trunk-a".into()),
            since: t0(),
            job_open: false,
        }
    }

    fn listed(e164: &str) -> Listed {
        Listed {
            e164: n(e164),
            account: "acct-a".into(),
            trunk: Some("trunk-a".into()),
            active: true,
            returned: false,
        }
    }

    fn kinds(held: &[Held], listed: &[Listed], now: OffsetDateTime) -> Vec<(FindingKind, String)> {
        let known =
            |p: &PhoneNumber| held.iter().any(|h| &h.e164 == p) || p.as_str().starts_with("+1555");
        let mut out: Vec<_> =
            compare(Scope::Account("acct-a"), held, listed, known, Thresholds::default(), now)
                .into_iter()
                .map(|o| (o.kind, o.e164.as_str().to_string()))
                .collect();
        out.sort();
        out
    }

    #[test]
    fn converged_sides_have_nothing_to_say() {
        let h = vec![
            held("+15550100001", NumberState::Active),
            held("+15550100002", NumberState::ReleasePending),
        ];
        let l = vec![listed("+15550100001"), listed("+15550100002")];
        assert!(kinds(&h, &l, t0() + Duration::days(1)).is_empty());
    }

    #[test]
    fn each_drift_is_named_once() {
        let mut wrong_trunk = listed("+15550100003");
        wrong_trunk.trunk = Some("trunk-b".into());
        let mut inactive = listed("+15550100004");
        inactive.active = false;
        let mut returned = listed("+15550100005");
        returned.returned = true;
        returned.trunk = Some("trunk-b".into()); // Returned outranks the trunk
        let mut other = listed("+15550100006");
        other.account = "acct-b".into();
        let h = vec![
            held("+15550100001", NumberState::Active), // gone from Zoom
            held("+15550100002", NumberState::Available), // not sold, listed
            held("+15550100003", NumberState::Active), // wrong trunk
            held("+15550100004", NumberState::Active), // inactive
            held("+15550100005", NumberState::Active), // returned
            held("+15550100006", NumberState::Active), // other account
            held("+15550100007", NumberState::Provisioning), // push answer lost
            held("+15550100008", NumberState::Provisioning), // stuck (not listed, no job)
            held("+15550100009", NumberState::Releasing), // stuck
        ];
        let l = vec![
            listed("+15550100002"),
            wrong_trunk,
            inactive,
            returned,
            other,
            listed("+15550100007"),
            listed("+447700900123"), // unknown to peerex
        ];
        use FindingKind::*;
        let mut expected: Vec<(FindingKind, String)> = [
            (NotSoldButInZoom, "+15550100002"),
            (GoneFromZoom, "+15550100001"),
            (WrongTrunk, "+15550100003"),
            (InactiveInZoom, "+15550100004"),
            (ReturnedByCustomer, "+15550100005"),
            (Stuck, "+15550100008"),
            (Stuck, "+15550100009"),
            (PushAnswerLost, "+15550100007"),
            (OtherAccount, "+15550100006"),
            (UnknownToPeerex, "+447700900123"),
        ]
        .into_iter()
        .map(|(k, s)| (k, s.to_string()))
        .collect();
        expected.sort();
        assert_eq!(kinds(&h, &l, t0() + Duration::hours(1)), expected);
    }

    #[test]
    fn work_in_progress_is_not_drift() {
        // A push or removal still queued, or just finished, is not stuck; a suspended number may be
        // in Zoom or not; a releasing number's removal may already have happened.
        let mut p = held("+15550100001", NumberState::Provisioning);
        p.job_open = true;
        let mut r = held("+15550100002", NumberState::Releasing);
        r.job_open = true;
        let young = held("+15550100003", NumberState::Provisioning);
        let s1 = held("+15550100004", NumberState::Suspended);
        let s2 = held("+15550100005", NumberState::Suspended);
        let rel = held("+15550100006", NumberState::Releasing);
        let mut listed_p = listed("+15550100001");
        listed_p.active = false;
        let l = vec![listed_p, listed("+15550100004"), listed("+15550100006")];
        assert!(kinds(&[p, r, young, s1, s2, rel], &l, t0() + Duration::minutes(29)).is_empty());
    }

    #[test]
    fn an_account_listing_says_nothing_of_other_accounts_numbers() {
        let mut elsewhere = held("+15550100001", NumberState::Active);
        elsewhere.account = Some("acct-b".into());
        let mut unlinked = held("+15550100002", NumberState::Active);
        unlinked.account = None;
        assert!(kinds(&[elsewhere.clone(), unlinked.clone()], &[], t0()).is_empty());
        // The carrier-wide listing covers them all.
        let found = compare(
            Scope::Carrier,
            &[elsewhere, unlinked],
            &[],
            |_| true,
            Thresholds::default(),
            t0(),
        );
        assert_eq!(found.iter().filter(|o| o.kind == FindingKind::GoneFromZoom).count(), 2);
    }

    #[test]
    fn only_repairs_that_restore_what_peerex_recorded_are_automatic() {
        for k in FindingKind::ALL {
            assert_eq!(FindingKind::parse(k.as_str()), Some(k));
            let r = k.repair();
            let expected = matches!(
                k,
                FindingKind::GoneFromZoom
                    | FindingKind::WrongTrunk
                    | FindingKind::InactiveInZoom
                    | FindingKind::Stuck
                    | FindingKind::PushAnswerLost
            );
            assert_eq!(r.automatic(), expected, "{k}");
        }
        assert!(!FindingKind::UnknownToPeerex.repair().acts());
        assert!(!FindingKind::NotSoldButInZoom.repair().automatic());
    }

    #[test]
    fn routing_instances_behind_past_the_grace() {
        let i = |name: &str, g| InstanceSeen {
            instance: name.into(),
            generation: g,
            reported_at: t0(),
        };
        let all = [i("a", 10), i("b", 9)];
        assert!(routing_behind(&all, 10, t0(), Duration::seconds(5), t0() + Duration::seconds(1))
            .is_empty());
        let behind =
            routing_behind(&all, 10, t0(), Duration::seconds(5), t0() + Duration::seconds(6));
        assert_eq!(behind.len(), 1);
        assert_eq!(behind[0].0, "b");
    }
}
