//! Findings as peerex keeps them: each disagreement the reconciler observed ([`crate::reconcile`]),
//! from when it was first seen until it was no longer seen or was repaired, with the repair peerex
//! proposes and who carried it out.

use crate::ids::CustomerId;
use crate::reconcile::{FindingKind, Observation, Repair};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who closes a finding the reconciler no longer observes.
pub const NO_LONGER_SEEN: &str = "reconciler: no longer seen";

/// Where a finding's repair stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairState {
    /// Proposed; nothing done yet.
    Proposed,
    /// A job carrying the repair is in the outbox.
    Queued,
    /// The repair ran.
    Repaired,
    /// Never automatic: a person decides (see [`Repair::automatic`]).
    Manual,
}

impl RepairState {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairState::Proposed => "proposed",
            RepairState::Queued => "queued",
            RepairState::Repaired => "repaired",
            RepairState::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RepairState::Proposed, RepairState::Queued, RepairState::Repaired, RepairState::Manual]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Where a new finding's repair starts.
    pub fn initial(repair: Repair) -> Self {
        if repair.automatic() {
            RepairState::Proposed
        } else {
            RepairState::Manual
        }
    }
}

/// One disagreement as a cycle observed it, ready to be recorded: `subject` is the phone number, or
/// the routing instance for [`FindingKind::RoutingBehind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: FindingKind,
    pub subject: String,
    pub customer: Option<CustomerId>,
    pub detail: String,
}

impl From<Observation> for Seen {
    fn from(o: Observation) -> Self {
        Seen {
            kind: o.kind,
            subject: o.e164.as_str().to_owned(),
            customer: o.customer,
            detail: o.detail,
        }
    }
}

/// What a repair job does in Zoom to the numbers it carries (only numbers peerex still holds, for the
/// customer whose account the job is for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoomFix {
    /// Add them again on the customer's trunk, active ([`Repair::PushAgain`]).
    Add,
    /// Set them on the customer's trunk, active ([`Repair::SetTrunk`], [`Repair::Activate`]).
    Update,
    /// Remove them from the account ([`Repair::RemoveFromZoom`]): only numbers peerex holds
    /// unsold, and only when an operator confirms.
    Remove,
}

impl ZoomFix {
    /// The fix a repair makes in Zoom, if it is one made in Zoom by a repair job.
    pub fn of(repair: Repair) -> Option<ZoomFix> {
        match repair {
            Repair::PushAgain => Some(ZoomFix::Add),
            Repair::SetTrunk | Repair::Activate => Some(ZoomFix::Update),
            Repair::RemoveFromZoom => Some(ZoomFix::Remove),
            _ => None,
        }
    }
}

/// A repair carried by the outbox: what to do, and who asked for it (the audit trail).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoomRepair {
    pub fix: ZoomFix,
    pub by: String,
}

/// A finding as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: Uuid,
    pub kind: FindingKind,
    /// The phone number, or the routing instance.
    pub subject: String,
    pub customer: Option<CustomerId>,
    /// The Zoom account whose listing showed it.
    pub zoom_account: Option<String>,
    pub detail: String,
    pub repair: Repair,
    pub repair_state: RepairState,
    pub repaired_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub resolved_by: Option<String>,
}

impl Finding {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// Which findings to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingQuery {
    pub kind: Option<FindingKind>,
    pub customer: Option<CustomerId>,
    /// Only open ones (`Some(true)`), only closed ones (`Some(false)`), or both.
    pub open: Option<bool>,
    /// At most this many, newest first (0: a default of 500).
    pub limit: u32,
}

/// What recording one cycle's findings changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Findings seen for the first time.
    pub opened: u64,
    /// Open findings seen again.
    pub still_open: u64,
    /// Open findings of the scope the cycle no longer observed.
    pub closed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_states_read_back_and_manual_ones_are_never_automatic() {
        for s in
            [RepairState::Proposed, RepairState::Queued, RepairState::Repaired, RepairState::Manual]
        {
            assert_eq!(RepairState::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            RepairState::initial(FindingKind::UnknownToPeerex.repair()),
            RepairState::Manual
        );
        assert_eq!(RepairState::initial(FindingKind::GoneFromZoom.repair()), RepairState::Proposed);
    }
}
