//! A customer's link to a Zoom account: its life (installed, removed, installed again), and what the
//! removal of the app in Zoom does to the customer's numbers.

use crate::machine::{StateMachine, Step};
use crate::number::{Number, NumberEvent};
use crate::onboarding::{LinkState, ZoomLink};
use crate::{Actor, CustomerId};
use time::OffsetDateTime;

/// What happens to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMove {
    /// The app is installed (again) for the link's Zoom account and confirmed by the customer.
    Install,
    /// The app is removed in Zoom (`app_deauthorized`).
    AppRemoved,
}

/// A link's life: `linked` when the app is installed, `removed` when it is removed in Zoom, and
/// `linked` again when it is installed again for the same customer and account (a fresh install
/// over a live link keeps it linked with new tokens).
impl StateMachine for LinkState {
    type Event = LinkMove;
    const STATES: &'static [Self] = &[LinkState::Linked, LinkState::Removed];
    const WHAT: &'static str = "Zoom link";

    fn next(self, event: LinkMove) -> Option<Self> {
        match (self, event) {
            (LinkState::Linked | LinkState::Removed, LinkMove::Install) => Some(LinkState::Linked),
            (LinkState::Linked, LinkMove::AppRemoved) => Some(LinkState::Removed),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// Why removing the app changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepLink {
    /// The link was made after the removal Zoom reports (the app was installed again since): a late
    /// or re-sent `app_deauthorized` must not undo the re-install.
    Newer,
    /// The link is not live.
    NotLive,
}

/// Decides whether the app's removal, reported by Zoom as done at `removed_at`, removes `link`: the
/// step to apply (a compare-and-set that also checks the link is still no newer than the removal).
pub fn plan_app_removal(
    link: &ZoomLink,
    removed_at: OffsetDateTime,
) -> Result<Step<LinkState>, KeepLink> {
    let step = link.state.on(LinkMove::AppRemoved).map_err(|_| KeepLink::NotLive)?;
    if link.linked_at > removed_at {
        return Err(KeepLink::Newer);
    }
    Ok(step)
}

/// The customer's numbers a removal of the app suspends: those that carry calls (`active`,
/// `release_pending`), so calls stop. The contract and every other number are left as they are.
pub fn plan_suspension(
    customer: CustomerId,
    numbers: Vec<Number>,
    reason: &str,
    by: &Actor,
    now: OffsetDateTime,
) -> Vec<(Number, NumberEvent)> {
    numbers
        .into_iter()
        .filter(|n| n.customer_id == Some(customer))
        .filter_map(|n| n.suspend(reason, by, now).ok())
        .collect()
}

/// The line the link's history keeps for a removal.
pub fn removal_message(reason: &str, suspended: usize) -> String {
    format!("{reason}; {suspended} numbers suspended")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::assert_table;
    use crate::number::{NumberAttrs, NumberState};
    use crate::{OrderId, PhoneNumber};
    use LinkMove::*;
    use LinkState::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    #[test]
    fn link_moves_exactly_as_the_table_says() {
        assert_table(
            &[Install, AppRemoved],
            &[(Linked, Install, Linked), (Linked, AppRemoved, Removed), (Removed, Install, Linked)],
            &[],
        );
    }

    fn link(customer: CustomerId, state: LinkState, linked_at: OffsetDateTime) -> ZoomLink {
        ZoomLink {
            id: uuid::Uuid::now_v7(),
            customer_id: customer,
            zoom_account_id: "acct".into(),
            zoom_user_id: "u".into(),
            state,
            linked_at,
            removed_at: None,
            not_before: None,
            last_polled_at: None,
            reauth_needed_at: None,
            reauth_reason: None,
        }
    }

    fn numbers(customer: CustomerId) -> Vec<Number> {
        NumberState::ALL
            .iter()
            .enumerate()
            .map(|(i, &state)| {
                let e164 = PhoneNumber::parse(&format!("+1555010000{i}")).unwrap();
                let (mut n, _) = Number::imported(
                    e164,
                    NumberAttrs::default(),
                    &Actor::System("t".into()),
                    now(),
                );
                n.state = state;
                if state.is_held_by_customer() {
                    n.customer_id = Some(customer);
                    n.order_id = Some(OrderId::new());
                }
                n
            })
            .collect()
    }

    #[test]
    fn removal_suspends_only_the_numbers_that_carry_calls() {
        let c = CustomerId::new();
        let by = Actor::System("zoom-webhook".into());
        let l = link(c, Linked, now() - time::Duration::hours(1));
        assert_eq!(plan_app_removal(&l, now()), Ok(Step { from: Linked, to: Removed }));
        let suspend = plan_suspension(c, numbers(c), "app removed in Zoom", &by, now());
        let from: Vec<Option<NumberState>> = suspend.iter().map(|(_, e)| e.from).collect();
        assert_eq!(from, [Some(NumberState::Active), Some(NumberState::ReleasePending)]);
        assert!(suspend.iter().all(|(n, _)| n.state == NumberState::Suspended));
        assert!(suspend.iter().all(|(n, _)| n.reason.as_deref() == Some("app removed in Zoom")));
        assert_eq!(
            removal_message("app removed in Zoom", 2),
            "app removed in Zoom; 2 numbers suspended"
        );
    }

    #[test]
    fn another_customers_numbers_are_never_suspended() {
        let by = Actor::System("zoom-webhook".into());
        let suspend =
            plan_suspension(CustomerId::new(), numbers(CustomerId::new()), "removed", &by, now());
        assert!(suspend.is_empty());
    }

    #[test]
    fn a_removal_older_than_the_link_or_of_a_removed_link_changes_nothing() {
        let c = CustomerId::new();
        let reinstalled = link(c, Linked, now());
        let before = now() - time::Duration::minutes(5);
        assert_eq!(plan_app_removal(&reinstalled, before), Err(KeepLink::Newer));
        // Removed at the very moment it was linked: the removal is of this link.
        assert!(plan_app_removal(&reinstalled, now()).is_ok());
        let removed = link(c, Removed, before);
        assert_eq!(plan_app_removal(&removed, now()), Err(KeepLink::NotLive));
    }
}
