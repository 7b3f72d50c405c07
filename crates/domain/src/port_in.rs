//! Port-in: a customer brings its own numbers from another carrier (the losing carrier). The
//! operator records the port-in (numbers, losing carrier, requested date); the numbers are pushed to
//! the customer's Zoom account inactive (`status` false, Zoom shows them pending) so the customer can
//! prepare, and do not route; on the port date (or when an operator marks it complete) they are
//! activated in Zoom and route. A port-in can be moved to another date or cancelled before it
//! completes (its numbers are removed from Zoom and leave the customer).
//!
//! The port-in's own life is a [`StateMachine`] applied by the store as a compare-and-set, so two
//! completes (or a complete and a cancel) racing from two requests or instances cannot both win.

use crate::ids::CustomerId;
use crate::machine::StateMachine;
use crate::number::NumberState;
use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Most numbers one port-in brings.
pub const MAX_PORT_IN: usize = 10_000;

/// Where a port-in is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortInState {
    /// Recorded; the numbers wait to be pushed to Zoom inactive.
    Requested,
    /// Zoom has every number, inactive (pending): the customer can prepare; calls do not route.
    PushedInactive,
    /// Complete (the port date came, or an operator said so): the numbers are being activated in Zoom.
    Activating,
    /// Every number is active in Zoom and routes.
    Active,
    /// Cancelled before it completed: the numbers are removed from Zoom and leave the customer.
    Cancelled,
}

impl PortInState {
    pub const ALL: [PortInState; 5] = [
        PortInState::Requested,
        PortInState::PushedInactive,
        PortInState::Activating,
        PortInState::Active,
        PortInState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PortInState::Requested => "requested",
            PortInState::PushedInactive => "pushed_inactive",
            PortInState::Activating => "activating",
            PortInState::Active => "active",
            PortInState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// What a person reads for the state.
    pub fn label(self) -> &'static str {
        match self {
            PortInState::Requested => "Requested: being pushed to Zoom (inactive)",
            PortInState::PushedInactive => "In Zoom, pending: waiting for the port date",
            PortInState::Activating => "Completing: being activated in Zoom",
            PortInState::Active => "Ported: active",
            PortInState::Cancelled => "Cancelled",
        }
    }
}

/// What happens to a port-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortInEvent {
    /// Zoom has every number, inactive.
    Pushed,
    /// The port date came, or an operator marked it complete.
    Complete,
    /// Zoom activated every number.
    Activated,
    /// An operator cancelled it.
    Cancel,
    /// An operator moved it to another date.
    Reschedule,
}

impl PortInEvent {
    pub const ALL: [PortInEvent; 5] = [
        PortInEvent::Pushed,
        PortInEvent::Complete,
        PortInEvent::Activated,
        PortInEvent::Cancel,
        PortInEvent::Reschedule,
    ];
}

/// requested → pushed_inactive → activating → active; requested or pushed_inactive → cancelled, or
/// moved to another date (staying where it is). A port-in is completed only once Zoom holds its
/// numbers: activating a number Zoom does not have would fail.
impl StateMachine for PortInState {
    type Event = PortInEvent;
    const STATES: &'static [Self] = &PortInState::ALL;
    const WHAT: &'static str = "port-in";

    fn next(self, event: PortInEvent) -> Option<Self> {
        use PortInEvent as E;
        use PortInState as S;
        match (self, event) {
            (S::Requested, E::Pushed) => Some(S::PushedInactive),
            (S::PushedInactive, E::Complete) => Some(S::Activating),
            (S::Activating, E::Activated) => Some(S::Active),
            (S::Requested | S::PushedInactive, E::Cancel) => Some(S::Cancelled),
            (s @ (S::Requested | S::PushedInactive), E::Reschedule) => Some(s),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// How a move of a port-in (complete, cancel, reschedule) went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortInMove {
    /// Moved; the state it is in now.
    Done(PortInState),
    NotFound,
    /// Not in a state that allows the move (another request or instance moved it first): why.
    Conflict(String),
}

/// A port-in as operators and the customer see it.
#[derive(Clone, Debug, Serialize)]
pub struct PortIn {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub losing_carrier: String,
    /// The day the numbers move to this carrier (UTC); they are activated on it.
    pub requested_date: Date,
    pub state: PortInState,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Its numbers, in E.164 order.
    pub numbers: Vec<PortInNumber>,
    /// Its history: state changes and moved dates, oldest first.
    pub events: Vec<PortInHistory>,
}

/// One number of a port-in with the state it is in now.
#[derive(Clone, Debug, Serialize)]
pub struct PortInNumber {
    pub e164: PhoneNumber,
    pub state: NumberState,
    /// Zoom's refusal, when it refused the number.
    pub reason: Option<String>,
}

/// One line of a port-in's history.
#[derive(Clone, Debug, Serialize)]
pub struct PortInHistory {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub from: Option<PortInState>,
    pub to: PortInState,
    /// What happened, e.g. "moved from 2026-12-10 to 2026-12-14".
    pub note: Option<String>,
}

/// What a job of a port-in does in Zoom. Carried in the job's payload beside its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortInStep {
    /// Add the numbers inactive (`status` false).
    PushInactive,
    /// Set them active (`status` true).
    Activate,
    /// Remove them: the port-in was cancelled.
    Remove,
}

/// The port-in a job works for and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInJob {
    pub id: Uuid,
    pub step: PortInStep,
}

/// What a port-in job learned from Zoom: the numbers Zoom took, and how the job ends (failed with
/// Zoom's reasons when it refused some).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInOutcome {
    pub job: PortInJob,
    pub accepted: Vec<PhoneNumber>,
    pub end: crate::onboarding::JobEnd,
}

/// Why a port-in cannot be recorded (nothing is saved). Each names the field (or row) at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortInRefused {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Numbers held by another customer, or busy with something else.
    #[error("numbers: {}", .0.join("; "))]
    Taken(Vec<String>),
    #[error("customer_id: no such customer")]
    UnknownCustomer,
}

impl PortInRefused {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        PortInRefused::Invalid { field: field.into(), message: message.into() }
    }
}

/// A port-in request as an operator writes it, checked: numbers in E.164 (each bad one named by
/// its row), a losing carrier, and a date not in the past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInRequest {
    pub customer_id: CustomerId,
    pub numbers: Vec<PhoneNumber>,
    pub losing_carrier: String,
    pub requested_date: Date,
}

impl PortInRequest {
    pub fn parse(
        customer_id: CustomerId,
        numbers: &[String],
        losing_carrier: &str,
        requested_date: &str,
        today: Date,
    ) -> Result<Self, PortInRefused> {
        let losing_carrier = losing_carrier.trim();
        if losing_carrier.is_empty() {
            return Err(PortInRefused::invalid("losing_carrier", "is required"));
        }
        if losing_carrier.chars().count() > 200 {
            return Err(PortInRefused::invalid("losing_carrier", "is longer than 200 characters"));
        }
        let requested_date = parse_date(requested_date)?;
        if requested_date < today {
            return Err(PortInRefused::invalid(
                "requested_date",
                format!("{requested_date} is in the past (today is {today})"),
            ));
        }
        let mut parsed = Vec::with_capacity(numbers.len());
        for (i, raw) in numbers.iter().enumerate() {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            match PhoneNumber::parse(raw) {
                Ok(n) => parsed.push(n),
                Err(e) => {
                    return Err(PortInRefused::invalid(
                        format!("numbers[{i}]"),
                        format!("{raw:?} is not an E.164 number: {e}"),
                    ))
                }
            }
        }
        parsed.sort();
        parsed.dedup();
        if parsed.is_empty() {
            return Err(PortInRefused::invalid("numbers", "at least one number is required"));
        }
        if parsed.len() > MAX_PORT_IN {
            return Err(PortInRefused::invalid(
                "numbers",
                format!("at most {MAX_PORT_IN} numbers per port-in"),
            ));
        }
        Ok(PortInRequest {
            customer_id,
            numbers: parsed,
            losing_carrier: losing_carrier.to_owned(),
            requested_date,
        })
    }
}

/// A date as `YYYY-MM-DD`, the field named when it is not one.
pub fn parse_date(raw: &str) -> Result<Date, PortInRefused> {
    Date::parse(raw.trim(), time::macros::format_description!("[year]-[month]-[day]")).map_err(
        |_| {
            PortInRefused::invalid(
                "requested_date",
                format!("{:?} is not a date (YYYY-MM-DD)", raw.trim()),
            )
        },
    )
}

/// Whether a number in `state`, held by `holder`, can be ported in for `customer`; the refusal names
/// the number. A number not in the inventory is added by the port-in.
pub fn port_in_refusal(
    e164: &PhoneNumber,
    state: NumberState,
    holder: Option<CustomerId>,
    customer: CustomerId,
) -> Option<String> {
    match (state, holder) {
        (NumberState::Available, _) => None,
        (_, Some(h)) if h != customer => {
            Some(format!("{e164} belongs to another customer ({state}); it cannot be ported in"))
        }
        (_, Some(_)) => Some(format!("{e164} is already this customer's ({state})")),
        (_, None) => {
            Some(format!("{e164} is {state} in the inventory; it cannot be ported in now"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::assert_table;
    use PortInEvent::*;
    use PortInState::*;

    #[test]
    fn port_in_moves_exactly_as_the_table_says() {
        assert_table(
            &PortInEvent::ALL,
            &[
                (Requested, Pushed, PushedInactive),
                (PushedInactive, Complete, Activating),
                (Activating, Activated, Active),
                (Requested, Cancel, Cancelled),
                (PushedInactive, Cancel, Cancelled),
                (Requested, Reschedule, Requested),
                (PushedInactive, Reschedule, PushedInactive),
            ],
            &[Active, Cancelled],
        );
    }

    fn today() -> Date {
        time::macros::date!(2026 - 12 - 03)
    }

    fn parse(numbers: &[&str], carrier: &str, date: &str) -> Result<PortInRequest, PortInRefused> {
        let numbers: Vec<String> = numbers.iter().map(|s| (*s).to_owned()).collect();
        PortInRequest::parse(CustomerId::new(), &numbers, carrier, date, today())
    }

    #[test]
    fn a_request_is_checked_field_by_field_naming_the_bad_row() {
        let ok =
            parse(&["+15550109001", " +15550109000", "+15550109001"], " Old Tel ", "2026-12-03")
                .unwrap();
        assert_eq!(ok.numbers.len(), 2, "sorted, repeats dropped");
        assert_eq!(ok.numbers[0].as_str(), "+15550109000");
        assert_eq!(ok.losing_carrier, "Old Tel");
        let field = |r: Result<PortInRequest, PortInRefused>| match r.unwrap_err() {
            PortInRefused::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(parse(&["+15550109000", "555-0100"], "X", "2026-12-10")), "numbers[1]");
        assert_eq!(field(parse(&[], "X", "2026-12-10")), "numbers");
        assert_eq!(field(parse(&["+15550109000"], " ", "2026-12-10")), "losing_carrier");
        assert_eq!(field(parse(&["+15550109000"], "X", "2026-12-02")), "requested_date");
        assert_eq!(field(parse(&["+15550109000"], "X", "12/10/2026")), "requested_date");
    }

    #[test]
    fn only_available_or_unknown_numbers_can_be_ported_in() {
        let n = PhoneNumber::parse("+15550109000").unwrap();
        let (me, other) = (CustomerId::new(), CustomerId::new());
        assert_eq!(port_in_refusal(&n, NumberState::Available, None, me), None);
        let theirs = port_in_refusal(&n, NumberState::Active, Some(other), me).unwrap();
        assert!(theirs.contains("another customer") && theirs.contains("+15550109000"), "{theirs}");
        assert!(port_in_refusal(&n, NumberState::Active, Some(me), me).is_some());
        assert!(port_in_refusal(&n, NumberState::Aging, None, me).is_some());
    }
}
