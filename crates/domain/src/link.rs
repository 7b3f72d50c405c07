//! A customer's link to a Zoom account: its life (installed, removed, installed again), and what the
//! removal of the app in Zoom does to the customer's numbers.

use crate::customer::ContractState;
use crate::machine::{StateMachine, Step};
use crate::number::{Number, NumberEvent};
use crate::onboarding::{LinkRefused, LinkState, ZoomLink};
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

/// What confirming an install of the app for a Zoom account does to the customer's links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPlan {
    /// A first link between this customer and this account.
    New,
    /// The customer's earlier link to this account (`link`) is linked again with the install's
    /// tokens: `step` is its compare-and-set.
    Again { link: uuid::Uuid, step: Step<LinkState> },
}

/// What the store read, in the confirming transaction, to decide a link.
#[derive(Clone, Copy, Debug)]
pub struct LinkFacts<'a> {
    pub customer: CustomerId,
    pub account: &'a str,
    pub contract: ContractState,
    /// The account's live link, whoever's.
    pub live_for_account: Option<&'a ZoomLink>,
    /// The customer's live link, to whichever account.
    pub live_for_customer: Option<&'a ZoomLink>,
    /// The customer's latest link to this account, live or removed.
    pub earlier: Option<&'a ZoomLink>,
}

/// Decides an install: refused (nothing changes but a line in the link's history) when the account
/// is another customer's, when the customer is linked to another account (one Zoom account per
/// customer and per carrier), or when the customer's contract has ended; otherwise a new link, or
/// the earlier one made live again.
pub fn plan_link(facts: LinkFacts<'_>, carrier: &str) -> Result<LinkPlan, LinkRefused> {
    if facts.live_for_account.is_some_and(|l| l.customer_id != facts.customer) {
        return Err(LinkRefused::AccountTaken { carrier: carrier.to_owned() });
    }
    if let Some(other) = facts.live_for_customer.filter(|l| l.zoom_account_id != facts.account) {
        return Err(LinkRefused::CustomerLinkedElsewhere(other.zoom_account_id.clone()));
    }
    if facts.contract != ContractState::Active {
        return Err(LinkRefused::ContractEnded);
    }
    match facts.earlier {
        None => Ok(LinkPlan::New),
        Some(l) => {
            // Installing again is allowed from every state; a machine that one day refuses it
            // refuses the install the way an ended contract does.
            let step = l.state.on(LinkMove::Install).map_err(|_| LinkRefused::ContractEnded)?;
            Ok(LinkPlan::Again { link: l.id, step })
        }
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

/// What the app's re-install restores once Zoom has a number again: a number an open release was
/// waiting for when the app was removed (`open`: number → the release's reason) waits for the
/// customer's approval again, `release_pending` with that reason. Other numbers stay as they are.
pub fn plan_restore_releases(
    numbers: &[Number],
    open: &std::collections::HashMap<crate::NumberId, String>,
    by: &Actor,
    now: OffsetDateTime,
) -> Vec<(Number, NumberEvent)> {
    numbers
        .iter()
        .filter_map(|n| {
            let reason = open.get(&n.id)?;
            n.clone().start_release(reason, by, now).ok()
        })
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
            zoom_account_id: crate::ZoomAccountId::parse("acct").unwrap(),
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

    fn facts<'a>(
        customer: CustomerId,
        account: &'a str,
        links: (Option<&'a ZoomLink>, Option<&'a ZoomLink>, Option<&'a ZoomLink>),
    ) -> LinkFacts<'a> {
        LinkFacts {
            customer,
            account,
            contract: ContractState::Active,
            live_for_account: links.0,
            live_for_customer: links.1,
            earlier: links.2,
        }
    }

    #[test]
    fn an_install_links_anew_or_again() {
        let c = CustomerId::new();
        assert_eq!(plan_link(facts(c, "acct", (None, None, None)), "Carrier"), Ok(LinkPlan::New));
        let removed = link(c, Removed, now());
        let again = plan_link(facts(c, "acct", (None, None, Some(&removed))), "Carrier");
        assert_eq!(
            again,
            Ok(LinkPlan::Again { link: removed.id, step: Step { from: Removed, to: Linked } })
        );
        // Installed again over its own live link: kept linked, with the new tokens.
        let live = link(c, Linked, now());
        let again = plan_link(facts(c, "acct", (Some(&live), Some(&live), Some(&live))), "C");
        assert_eq!(
            again,
            Ok(LinkPlan::Again { link: live.id, step: Step { from: Linked, to: Linked } })
        );
    }

    #[test]
    fn an_install_is_refused_when_either_side_is_linked_elsewhere_or_the_contract_ended() {
        let c = CustomerId::new();
        let theirs = link(CustomerId::new(), Linked, now());
        assert_eq!(
            plan_link(facts(c, "acct", (Some(&theirs), None, None)), "Carrier"),
            Err(LinkRefused::AccountTaken { carrier: "Carrier".into() })
        );
        let mut elsewhere = link(c, Linked, now());
        elsewhere.zoom_account_id = crate::ZoomAccountId::parse("other").unwrap();
        assert_eq!(
            plan_link(facts(c, "acct", (None, Some(&elsewhere), None)), "Carrier"),
            Err(LinkRefused::CustomerLinkedElsewhere(
                crate::ZoomAccountId::parse("other").unwrap()
            ))
        );
        let ended =
            LinkFacts { contract: ContractState::Ended, ..facts(c, "acct", (None, None, None)) };
        assert_eq!(plan_link(ended, "Carrier"), Err(LinkRefused::ContractEnded));
    }

    #[test]
    fn a_reinstall_puts_back_up_for_release_only_active_numbers_a_release_waits_for() {
        let c = CustomerId::new();
        let by = Actor::System("zoom-push".into());
        let all = numbers(c);
        let active = all.iter().find(|n| n.state == NumberState::Active).unwrap().clone();
        let reserved = all.iter().find(|n| n.state == NumberState::Reserved).unwrap().clone();
        let mut other = active.clone();
        other.id = crate::NumberId::new();
        let open: std::collections::HashMap<_, _> =
            [(active.id, "contract change".to_owned()), (reserved.id, "x".to_owned())].into();
        let moves = plan_restore_releases(&[active.clone(), reserved, other], &open, &by, now());
        assert_eq!(moves.len(), 1);
        let (n, e) = &moves[0];
        assert_eq!(
            (n.id, n.state, e.from),
            (active.id, NumberState::ReleasePending, Some(NumberState::Active))
        );
        assert_eq!(n.reason.as_deref(), Some("contract change"));
    }
}
