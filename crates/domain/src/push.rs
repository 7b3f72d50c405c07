//! Pushing numbers to a customer's Zoom account: which of its numbers an application of its orders
//! moves (and pushes), and how the pushes are cut into jobs.

use crate::ids::{CustomerId, OrderId};
use crate::job::JobPayload;
use crate::number::{Number, NumberEvent, NumberState};
use crate::onboarding::{Job, JobKind, PushResult, ZOOM_BATCH};
use crate::phone::PhoneNumber;
use crate::zoom_account::ZoomAccountId;
use crate::Actor;
use time::OffsetDateTime;

/// Why the customer's waiting numbers are applied now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Application {
    /// The app was installed (or installed again) and the link made: the jobs of the old link were
    /// cancelled, so numbers already `provisioning` are pushed again too.
    NewLink,
    /// An order was placed or a retry asked for while the link is live: jobs in flight carry the
    /// numbers already `provisioning`.
    LiveLink,
}

/// What an application does to the customer's numbers.
#[derive(Debug, Default)]
pub struct ApplyPlan {
    /// Numbers that go `provisioning`: reserved ones Zoom never refused (a refused one waits for an
    /// operator), and suspended ones (the app is back).
    pub moves: Vec<(Number, NumberEvent)>,
    /// Numbers already `provisioning` that are pushed again.
    pub again: Vec<Number>,
}

/// Plans applying the customer's waiting numbers. `numbers` are the customer's numbers as read;
/// those of another customer, or in a state with nothing to apply, are passed over.
pub fn plan_apply(
    customer: CustomerId,
    numbers: Vec<Number>,
    why: Application,
    by: &Actor,
    now: OffsetDateTime,
) -> ApplyPlan {
    let mut plan = ApplyPlan::default();
    for n in numbers.into_iter().filter(|n| n.customer_id == Some(customer)) {
        match n.state {
            NumberState::Reserved if n.reason.is_none() => {
                plan.moves.extend(n.start_provisioning(by, now).ok());
            }
            NumberState::Suspended => plan.moves.extend(n.resume(by, now).ok()),
            NumberState::Provisioning if why == Application::NewLink => plan.again.push(n),
            _ => {}
        }
    }
    plan
}

/// The push jobs that carry `numbers` to the customer's Zoom `account`, and the orders they apply.
#[derive(Debug, Default)]
pub struct PushJobs {
    pub jobs: Vec<Job>,
    /// The orders of the numbers pushed, each once, in id order.
    pub orders: Vec<OrderId>,
}

/// Cuts pushes into jobs: one per order per batch of at most [`ZOOM_BATCH`] numbers (Zoom's limit
/// for one call), numbers in E.164 order, so an order's progress can be followed job by job.
pub fn cut_push_jobs(
    customer: CustomerId,
    account: &ZoomAccountId,
    numbers: &[Number],
    now: OffsetDateTime,
) -> PushJobs {
    let mut orders: Vec<Option<OrderId>> = numbers.iter().map(|n| n.order_id).collect();
    orders.sort();
    orders.dedup();
    let mut jobs = Vec::new();
    for &order in &orders {
        let mut e164s: Vec<_> =
            numbers.iter().filter(|n| n.order_id == order).map(|n| n.e164.clone()).collect();
        e164s.sort();
        e164s.dedup();
        for batch in e164s.chunks(ZOOM_BATCH) {
            jobs.push(Job::new(
                JobKind::PushNumbers,
                JobPayload::numbers(batch.to_vec()),
                Some(customer),
                order,
                Some(account.clone()),
                now,
            ));
        }
    }
    PushJobs { jobs, orders: orders.into_iter().flatten().collect() }
}

/// What Zoom's answers to a push change: each number it accepted goes `active`, each it refused
/// back to `reserved` with Zoom's reason (kept for the operator). Numbers no longer `provisioning`
/// (a retaken job's late answer, an app removed meanwhile) and numbers Zoom did not answer for are
/// left as they are.
pub fn plan_push_answers(
    numbers: Vec<Number>,
    answers: &[(PhoneNumber, PushResult)],
    by: &Actor,
    now: OffsetDateTime,
) -> Vec<(Number, NumberEvent)> {
    let answers: std::collections::HashMap<&PhoneNumber, &PushResult> =
        answers.iter().map(|(n, r)| (n, r)).collect();
    numbers
        .into_iter()
        .filter_map(|n| match answers.get(&n.e164) {
            Some(PushResult::Accepted) => n.zoom_accepted(by, now).ok(),
            Some(PushResult::Refused(reason)) => n.zoom_refused_provisioning(reason, by, now).ok(),
            None => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> ZoomAccountId {
        ZoomAccountId::parse("acct").unwrap()
    }
    use crate::number::NumberAttrs;
    use crate::PhoneNumber;
    use NumberState::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    fn by() -> Actor {
        Actor::System("t".into())
    }

    fn number(
        i: usize,
        state: NumberState,
        customer: CustomerId,
        order: Option<OrderId>,
    ) -> Number {
        let e164 = PhoneNumber::parse(&format!("+1555{i:07}")).unwrap();
        let (mut n, _) = Number::imported(e164, NumberAttrs::default(), &by(), now());
        n.state = state;
        n.customer_id = Some(customer);
        n.order_id = order;
        n
    }

    #[test]
    fn apply_moves_waiting_and_suspended_numbers_and_passes_over_refused_ones() {
        let c = CustomerId::new();
        let o = Some(OrderId::new());
        let mut refused = number(1, Reserved, c, o);
        refused.reason = Some("Zoom: Invalid sip trunk".into());
        let mut others = number(7, Reserved, CustomerId::new(), o);
        others.customer_id = Some(CustomerId::new());
        let numbers = vec![
            refused,
            number(2, Reserved, c, o),
            number(3, Suspended, c, o),
            number(4, Provisioning, c, o),
            number(5, Active, c, o),
            number(6, ReleasePending, c, o),
            others,
        ];
        for why in [Application::LiveLink, Application::NewLink] {
            let plan = plan_apply(c, numbers.clone(), why, &by(), now());
            let moved: Vec<_> =
                plan.moves.iter().map(|(n, e)| (n.e164.to_string(), e.from, n.state)).collect();
            assert_eq!(
                moved,
                [
                    ("+15550000002".into(), Some(Reserved), Provisioning),
                    ("+15550000003".into(), Some(Suspended), Provisioning),
                ]
            );
            let again: Vec<_> = plan.again.iter().map(|n| n.e164.to_string()).collect();
            match why {
                Application::NewLink => assert_eq!(again, ["+15550000004"]),
                Application::LiveLink => assert!(again.is_empty()),
            }
        }
    }

    #[test]
    fn pushes_are_cut_per_order_in_batches_of_zoom_size_in_e164_order() {
        let c = CustomerId::new();
        let (o1, o2) = (OrderId::new(), OrderId::new());
        let mut numbers = Vec::new();
        // Out of order on purpose: the jobs list them sorted.
        for i in (0..ZOOM_BATCH + 5).rev() {
            numbers.push(number(i, Provisioning, c, Some(o1)));
        }
        numbers.push(number(9_000, Provisioning, c, Some(o2)));
        numbers.push(number(9_001, Provisioning, c, None));
        let cut = cut_push_jobs(c, &acct(), &numbers, now());
        let mut want_orders = vec![o1, o2];
        want_orders.sort();
        assert_eq!(cut.orders, want_orders);
        let sizes: Vec<(Option<OrderId>, usize)> =
            cut.jobs.iter().map(|j| (j.order_id, j.payload.numbers.len())).collect();
        // Numbers of no order first, then orders in id order, each cut at ZOOM_BATCH.
        let mut want = vec![(None, 1)];
        for o in &want_orders {
            if *o == o1 {
                want.extend([(Some(o1), ZOOM_BATCH), (Some(o1), 5)]);
            } else {
                want.push((Some(o2), 1));
            }
        }
        assert_eq!(sizes, want);
        for j in &cut.jobs {
            assert_eq!(j.kind, JobKind::PushNumbers);
            assert_eq!(
                (j.customer_id, j.zoom_account.as_ref().map(|a| a.as_str())),
                (Some(c), Some("acct"))
            );
            assert!(j.payload.numbers.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        }
        let first = cut.jobs.iter().find(|j| j.order_id == Some(o1)).unwrap();
        assert_eq!(first.payload.numbers[0].as_str(), "+15550000000");
        assert_eq!(first.payload.numbers.len(), ZOOM_BATCH);
    }

    #[test]
    fn nothing_to_push_cuts_no_job() {
        let cut = cut_push_jobs(CustomerId::new(), &acct(), &[], now());
        assert!(cut.jobs.is_empty() && cut.orders.is_empty());
    }

    #[test]
    fn zoom_answers_activate_or_hand_back_only_numbers_still_provisioning() {
        let c = CustomerId::new();
        let o = Some(OrderId::new());
        let numbers = vec![
            number(1, Provisioning, c, o),
            number(2, Provisioning, c, o),
            number(3, Suspended, c, o),
            number(4, Provisioning, c, o),
        ];
        let answers = [
            ("+15550000001", PushResult::Accepted),
            ("+15550000002", PushResult::Refused("Zoom: Invalid sip trunk".into())),
            ("+15550000003", PushResult::Accepted),
        ]
        .map(|(n, r)| (PhoneNumber::parse(n).unwrap(), r));
        let moves = plan_push_answers(numbers, &answers, &by(), now());
        let got: Vec<_> = moves
            .iter()
            .map(|(n, e)| (n.e164.to_string(), e.from, n.state, n.reason.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("+15550000001".into(), Some(Provisioning), Active, None),
                (
                    "+15550000002".into(),
                    Some(Provisioning),
                    Reserved,
                    Some("Zoom: Invalid sip trunk".into())
                ),
            ]
        );
    }
}
