//! A number's life (DESIGN.md §3). Every transition is one function here: it checks the move is
//! legal, returns the changed number and the event to record, and never touches storage. The store
//! writes the new state and the event in one transaction.

use crate::actor::Actor;
use crate::ids::{CustomerId, NumberId, OrderId};
use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberState {
    Available,
    Reserved,
    Provisioning,
    Active,
    ReleasePending,
    Releasing,
    Aging,
    Suspended,
    /// Being ported in from another carrier: the customer's, in Zoom inactive (pending), not routing.
    Porting,
}

impl NumberState {
    pub const ALL: [NumberState; 9] = [
        NumberState::Available,
        NumberState::Reserved,
        NumberState::Provisioning,
        NumberState::Active,
        NumberState::ReleasePending,
        NumberState::Releasing,
        NumberState::Aging,
        NumberState::Suspended,
        NumberState::Porting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NumberState::Available => "available",
            NumberState::Reserved => "reserved",
            NumberState::Provisioning => "provisioning",
            NumberState::Active => "active",
            NumberState::ReleasePending => "release_pending",
            NumberState::Releasing => "releasing",
            NumberState::Aging => "aging",
            NumberState::Suspended => "suspended",
            NumberState::Porting => "porting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the number belongs to a customer in this state.
    pub fn is_held_by_customer(self) -> bool {
        !matches!(self, NumberState::Available | NumberState::Aging)
    }
}

impl fmt::Display for NumberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number in the inventory as the domain sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Number {
    pub id: NumberId,
    pub e164: PhoneNumber,
    pub state: NumberState,
    pub customer_id: Option<CustomerId>,
    pub order_id: Option<OrderId>,
    pub tags: Vec<String>,
    pub billing_ref: Option<String>,
    pub region: Option<String>,
    pub note: Option<String>,
    /// Why the number is where it is when that is not obvious (Zoom's refusal, a release reason).
    pub reason: Option<String>,
    /// When an `aging` number may be sold again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub aging_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// How many state changes the number has been through. A transition counts one more, and the
    /// store saves it only over the count it read: a number that left its state and came back
    /// since it was read is then refused like one still elsewhere, not mistaken for one that stayed.
    #[serde(skip)]
    pub version: i64,
}

/// One line of a number's audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct NumberEvent {
    pub number_id: NumberId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    /// `None` when the number came into the inventory.
    pub from: Option<NumberState>,
    pub to: NumberState,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number {number} is {from}; it cannot be {action}")]
pub struct TransitionError {
    pub number: String,
    pub from: NumberState,
    pub action: &'static str,
}

/// The attributes an operator gives a number when it enters the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberAttrs {
    pub tags: Vec<String>,
    pub billing_ref: Option<String>,
    pub region: Option<String>,
    pub note: Option<String>,
}

type Moved = Result<(Number, NumberEvent), TransitionError>;

impl Number {
    /// A number entering the inventory: `available`, with its creation event.
    pub fn imported(
        e164: PhoneNumber,
        attrs: NumberAttrs,
        by: &Actor,
        now: OffsetDateTime,
    ) -> (Number, NumberEvent) {
        let number = Number {
            id: NumberId::new(),
            e164,
            state: NumberState::Available,
            customer_id: None,
            order_id: None,
            tags: attrs.tags,
            billing_ref: attrs.billing_ref,
            region: attrs.region,
            note: attrs.note,
            reason: None,
            aging_until: None,
            updated_at: now,
            version: 0,
        };
        let event = NumberEvent {
            number_id: number.id,
            at: now,
            actor: by.to_string(),
            from: None,
            to: NumberState::Available,
            reason: Some("imported".into()),
        };
        (number, event)
    }

    /// A number the inventory did not have, entering it with a port-in: `porting`, the customer's.
    pub fn ported_in(
        e164: PhoneNumber,
        customer: CustomerId,
        losing_carrier: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> (Number, NumberEvent) {
        let (mut n, _) = Number::imported(e164, NumberAttrs::default(), by, now);
        n.state = NumberState::Porting;
        n.customer_id = Some(customer);
        let event = NumberEvent {
            number_id: n.id,
            at: now,
            actor: by.to_string(),
            from: None,
            to: NumberState::Porting,
            reason: Some(format!("port-in from {losing_carrier}")),
        };
        (n, event)
    }

    /// available → porting: a port-in brings a number the inventory already had to a customer.
    pub fn start_port_in(
        self,
        customer: CustomerId,
        losing_carrier: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Moved {
        self.require(&[NumberState::Available], "ported in")?;
        let mut n = self;
        n.customer_id = Some(customer);
        n.order_id = None;
        n.reason = None;
        Ok(n.moved(NumberState::Porting, by, now, Some(format!("port-in from {losing_carrier}"))))
    }

    /// porting → active: the port completed and Zoom activated the number; it routes.
    pub fn port_completed(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Porting], "activated")?;
        let mut n = self;
        n.reason = None;
        Ok(n.moved(NumberState::Active, by, now, Some("port-in complete; active in Zoom".into())))
    }

    /// porting → available: the port-in was cancelled and Zoom no longer has the number; it leaves
    /// the customer.
    pub fn port_cancelled(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Porting], "returned to inventory")?;
        let mut n = self;
        n.customer_id = None;
        n.order_id = None;
        n.reason = None;
        Ok(n.moved(
            NumberState::Available,
            by,
            now,
            Some("port-in cancelled; removed from Zoom".into()),
        ))
    }

    /// available → reserved: an order picks the number for a customer.
    pub fn reserve(
        self,
        customer: CustomerId,
        order: OrderId,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Moved {
        self.require(&[NumberState::Available], "reserved")?;
        let mut n = self;
        n.customer_id = Some(customer);
        n.order_id = Some(order);
        n.reason = None;
        Ok(n.moved(NumberState::Reserved, by, now, Some(format!("order {order}"))))
    }

    /// reserved → available: the order is cancelled before it was applied.
    pub fn cancel_reservation(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Reserved], "returned to inventory")?;
        let mut n = self;
        n.customer_id = None;
        n.order_id = None;
        n.reason = None;
        Ok(n.moved(NumberState::Available, by, now, Some("order cancelled".into())))
    }

    /// reserved → provisioning: the customer's Zoom account is linked and the order is applied.
    pub fn start_provisioning(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Reserved], "pushed to Zoom")?;
        let mut n = self;
        n.reason = None;
        Ok(n.moved(NumberState::Provisioning, by, now, None))
    }

    /// provisioning → active: Zoom accepted the number.
    pub fn zoom_accepted(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Provisioning], "activated")?;
        let mut n = self;
        n.reason = None;
        Ok(n.moved(NumberState::Active, by, now, Some("accepted by Zoom".into())))
    }

    /// provisioning → reserved: Zoom refused the number; the reason is kept and the push retried.
    pub fn zoom_refused_provisioning(self, reason: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Provisioning], "marked refused by Zoom")?;
        let mut n = self;
        n.reason = Some(reason.to_owned());
        Ok(n.moved(NumberState::Reserved, by, now, Some(reason.to_owned())))
    }

    /// active → release_pending: the carrier starts a release; the customer must approve it.
    pub fn start_release(self, reason: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Active], "put up for release")?;
        let mut n = self;
        n.reason = Some(reason.to_owned());
        Ok(n.moved(NumberState::ReleasePending, by, now, Some(reason.to_owned())))
    }

    /// release_pending → active: the release is withdrawn (or declined).
    pub fn withdraw_release(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::ReleasePending], "withdrawn from release")?;
        let mut n = self;
        n.reason = None;
        Ok(n.moved(NumberState::Active, by, now, Some("release withdrawn".into())))
    }

    /// release_pending → releasing: the customer approved; removal from Zoom follows.
    pub fn approve_release(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::ReleasePending], "released")?;
        Ok(self.moved(NumberState::Releasing, by, now, Some("release approved".into())))
    }

    /// release_pending → releasing without the customer: a release the carrier started without
    /// approval (port-out, contract end, returned in Zoom) is due; the number stops routing and is
    /// removed from Zoom. It keeps the release's reason; the event says why it moved now.
    pub fn release_due(self, why: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::ReleasePending], "released without approval")?;
        Ok(self.moved(NumberState::Releasing, by, now, Some(why.to_owned())))
    }

    /// releasing → releasing: Zoom refused to remove a number released without approval (e.g. it is
    /// still assigned to a user there). It does not route again: it stays `releasing`, keeping the
    /// release's reason, and its removal is tried again; the event records what blocks it.
    pub fn removal_blocked(self, why: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Releasing], "kept releasing")?;
        Ok(self.moved(NumberState::Releasing, by, now, Some(why.to_owned())))
    }

    /// releasing → aging: Zoom removed the number; it rests until `until` before resale.
    pub fn zoom_removed(self, until: OffsetDateTime, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Releasing], "aged")?;
        let mut n = self;
        n.customer_id = None;
        n.order_id = None;
        n.reason = None;
        n.aging_until = Some(until);
        Ok(n.moved(NumberState::Aging, by, now, Some("removed from Zoom".into())))
    }

    /// releasing → release_pending: Zoom refused (e.g. still assigned to a user); the reason is kept.
    pub fn zoom_refused_release(self, reason: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Releasing], "marked refused by Zoom")?;
        let mut n = self;
        n.reason = Some(reason.to_owned());
        Ok(n.moved(NumberState::ReleasePending, by, now, Some(reason.to_owned())))
    }

    /// aging → available: the quarantine is over.
    pub fn quarantine_over(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Aging], "returned to inventory")?;
        if let Some(until) = self.aging_until {
            if now < until {
                return Err(self.refuse("returned to inventory before its quarantine ends"));
            }
        }
        let mut n = self;
        n.aging_until = None;
        Ok(n.moved(NumberState::Available, by, now, Some("quarantine over".into())))
    }

    /// active / release_pending → suspended: the customer removed the app in Zoom.
    pub fn suspend(self, reason: &str, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Active, NumberState::ReleasePending], "suspended")?;
        let mut n = self;
        n.reason = Some(reason.to_owned());
        Ok(n.moved(NumberState::Suspended, by, now, Some(reason.to_owned())))
    }

    /// suspended → provisioning: the app was installed again; the number is pushed again.
    pub fn resume(self, by: &Actor, now: OffsetDateTime) -> Moved {
        self.require(&[NumberState::Suspended], "resumed")?;
        let mut n = self;
        n.reason = None;
        Ok(n.moved(NumberState::Provisioning, by, now, Some("app installed again".into())))
    }

    fn require(&self, from: &[NumberState], action: &'static str) -> Result<(), TransitionError> {
        if from.contains(&self.state) {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError { number: self.e164.to_string(), from: self.state, action }
    }

    fn moved(
        mut self,
        to: NumberState,
        by: &Actor,
        now: OffsetDateTime,
        reason: Option<String>,
    ) -> (Number, NumberEvent) {
        let event = NumberEvent {
            number_id: self.id,
            at: now,
            actor: by.to_string(),
            from: Some(self.state),
            to,
            reason,
        };
        self.state = to;
        self.updated_at = now;
        self.version += 1;
        (self, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumberState::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    fn number_in(state: NumberState) -> Number {
        let (mut n, _) = Number::imported(
            PhoneNumber::parse("+15550100000").unwrap(),
            NumberAttrs::default(),
            &Actor::System("test".into()),
            now(),
        );
        n.state = state;
        if state.is_held_by_customer() {
            n.customer_id = Some(CustomerId::new());
            n.order_id = Some(OrderId::new());
        }
        if state == Aging {
            n.aging_until = Some(now());
        }
        n
    }

    /// One transition under test: its name and the function that performs it.
    type Transition = (&'static str, fn(Number) -> Moved);

    /// Every transition, by name, with the one function that performs it.
    fn transitions() -> Vec<Transition> {
        vec![
            ("reserve", |n| {
                n.reserve(CustomerId::new(), OrderId::new(), &Actor::System("t".into()), now())
            }),
            ("cancel_reservation", |n| n.cancel_reservation(&Actor::System("t".into()), now())),
            ("start_provisioning", |n| n.start_provisioning(&Actor::System("t".into()), now())),
            ("zoom_accepted", |n| n.zoom_accepted(&Actor::System("t".into()), now())),
            ("zoom_refused_provisioning", |n| {
                n.zoom_refused_provisioning("Invalid sip trunk", &Actor::System("t".into()), now())
            }),
            ("start_release", |n| {
                n.start_release("contract change", &Actor::System("t".into()), now())
            }),
            ("withdraw_release", |n| n.withdraw_release(&Actor::System("t".into()), now())),
            ("approve_release", |n| n.approve_release(&Actor::System("t".into()), now())),
            ("release_due", |n| {
                n.release_due("ported out to B on 2026-12-01", &Actor::System("t".into()), now())
            }),
            ("removal_blocked", |n| {
                n.removal_blocked("assigned in Zoom", &Actor::System("t".into()), now())
            }),
            ("zoom_removed", |n| {
                n.zoom_removed(now() + time::Duration::days(90), &Actor::System("t".into()), now())
            }),
            ("zoom_refused_release", |n| {
                n.zoom_refused_release(
                    "Phone number is assigned",
                    &Actor::System("t".into()),
                    now(),
                )
            }),
            ("quarantine_over", |n| n.quarantine_over(&Actor::System("t".into()), now())),
            ("suspend", |n| n.suspend("app removed in Zoom", &Actor::System("t".into()), now())),
            ("resume", |n| n.resume(&Actor::System("t".into()), now())),
            ("start_port_in", |n| {
                n.start_port_in(CustomerId::new(), "Old Tel", &Actor::System("t".into()), now())
            }),
            ("port_completed", |n| n.port_completed(&Actor::System("t".into()), now())),
            ("port_cancelled", |n| n.port_cancelled(&Actor::System("t".into()), now())),
        ]
    }

    /// The whole table of DESIGN.md §3: (transition, from) → to. Anything not listed must be refused.
    const LEGAL: &[(&str, NumberState, NumberState)] = &[
        ("reserve", Available, Reserved),
        ("cancel_reservation", Reserved, Available),
        ("start_provisioning", Reserved, Provisioning),
        ("zoom_accepted", Provisioning, Active),
        ("zoom_refused_provisioning", Provisioning, Reserved),
        ("start_release", Active, ReleasePending),
        ("withdraw_release", ReleasePending, Active),
        ("approve_release", ReleasePending, Releasing),
        ("release_due", ReleasePending, Releasing),
        ("removal_blocked", Releasing, Releasing),
        ("zoom_removed", Releasing, Aging),
        ("zoom_refused_release", Releasing, ReleasePending),
        ("quarantine_over", Aging, Available),
        ("suspend", Active, Suspended),
        ("suspend", ReleasePending, Suspended),
        ("resume", Suspended, Provisioning),
        ("start_port_in", Available, Porting),
        ("port_completed", Porting, Active),
        ("port_cancelled", Porting, Available),
    ];

    #[test]
    fn every_transition_from_every_state_is_legal_exactly_as_the_table_says() {
        let mut checked = 0;
        for (name, run) in transitions() {
            for from in NumberState::ALL {
                let expected =
                    LEGAL.iter().find(|(n, f, _)| *n == name && *f == from).map(|(_, _, to)| *to);
                let mut before = number_in(from);
                before.version = 7;
                let id = before.id;
                match (run(before), expected) {
                    (Ok((after, event)), Some(to)) => {
                        assert_eq!(after.state, to, "{name} from {from}");
                        assert_eq!(after.version, 8, "{name} from {from} counts one change");
                        assert_eq!(event.from, Some(from));
                        assert_eq!(event.to, to);
                        assert_eq!(event.number_id, id);
                        assert_eq!(event.at, now());
                        assert!(!event.actor.is_empty());
                    }
                    (Err(err), None) => {
                        assert_eq!(err.from, from);
                        assert!(err.to_string().contains("+15550100000"), "{err}");
                    }
                    (Ok((after, _)), None) => {
                        panic!("{name} from {from} must be refused, went to {}", after.state)
                    }
                    (Err(err), Some(to)) => {
                        panic!("{name} from {from} must go to {to}, refused: {err}")
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 18 * 9);
        // Every state can be reached and left.
        for state in NumberState::ALL {
            assert!(LEGAL.iter().any(|(_, f, _)| *f == state), "{state} has no way out");
            assert!(LEGAL.iter().any(|(_, _, t)| *t == state), "{state} has no way in");
        }
    }

    #[test]
    fn reservation_binds_customer_and_order_and_cancel_frees_them() {
        let customer = CustomerId::new();
        let order = OrderId::new();
        let by = Actor::Operator("ops@example.net".into());
        let (n, ev) = number_in(Available).reserve(customer, order, &by, now()).unwrap();
        assert_eq!(n.customer_id, Some(customer));
        assert_eq!(n.order_id, Some(order));
        assert_eq!(ev.actor, "operator:ops@example.net");
        let (n, _) = n.cancel_reservation(&by, now()).unwrap();
        assert_eq!((n.state, n.customer_id, n.order_id), (Available, None, None));
    }

    #[test]
    fn refusals_keep_zoom_reason_and_release_frees_the_customer() {
        let by = Actor::System("worker".into());
        let (n, ev) = number_in(Provisioning)
            .zoom_refused_provisioning("Invalid sip trunk", &by, now())
            .unwrap();
        assert_eq!(n.reason.as_deref(), Some("Invalid sip trunk"));
        assert_eq!(ev.reason.as_deref(), Some("Invalid sip trunk"));
        let until = now() + time::Duration::days(90);
        let (n, _) = number_in(Releasing).zoom_removed(until, &by, now()).unwrap();
        assert_eq!((n.customer_id, n.aging_until), (None, Some(until)));
    }

    #[test]
    fn quarantine_cannot_end_early() {
        let mut n = number_in(Aging);
        n.aging_until = Some(now() + time::Duration::days(1));
        let err = n.quarantine_over(&Actor::System("scheduler".into()), now()).unwrap_err();
        assert_eq!(err.from, Aging);
    }

    #[test]
    fn a_port_in_binds_the_customer_and_its_cancel_frees_it() {
        let by = Actor::Operator("ops@example.net".into());
        let c = CustomerId::new();
        let (n, ev) = Number::ported_in(
            PhoneNumber::parse("+15550109000").unwrap(),
            c,
            "Old Tel",
            &by,
            now(),
        );
        assert_eq!((n.state, n.customer_id, ev.from, ev.to), (Porting, Some(c), None, Porting));
        assert_eq!(ev.reason.as_deref(), Some("port-in from Old Tel"));
        let (n, _) = n.port_cancelled(&by, now()).unwrap();
        assert_eq!((n.state, n.customer_id), (Available, None));
    }

    #[test]
    fn imported_numbers_are_available_with_a_creation_event() {
        let (n, ev) = Number::imported(
            PhoneNumber::parse("+4930123456").unwrap(),
            NumberAttrs::default(),
            &Actor::Operator("a@b.c".into()),
            now(),
        );
        assert_eq!(n.state, Available);
        assert_eq!((ev.from, ev.to), (None, Available));
    }
}
