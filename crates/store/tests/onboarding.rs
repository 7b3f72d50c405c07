//! Onboarding in the store, checked identically on SQLite and PostgreSQL: links, tokens, the jobs
//! outbox, and the number moves they carry.

use domain::customer::{OrderPick, OrderState};
use domain::number::NumberAttrs;
use domain::onboarding::BudgetUse::{Call, Listing, OverdueListing};
use domain::onboarding::{
    JobEnd, JobKind, JobState, LinkRefused, LinkState, PendingInstall, PushResult, StoredTokens,
};
use domain::{Actor, CustomerId, Number, NumberState, OrderId, PhoneNumber};
use std::collections::HashSet;
use store::Store;
use time::{Duration, OffsetDateTime};

testkit::store_tests_on_both!(
    linking_applies_the_pending_order_in_batches_of_200,
    an_account_or_customer_linked_elsewhere_is_refused_and_nothing_changes,
    zoom_answers_activate_or_return_numbers_with_the_reason,
    jobs_are_leased_and_a_dead_workers_job_is_retaken,
    concurrent_workers_never_claim_the_same_job,
    rate_limited_account_waits_for_not_before,
    app_removal_suspends_and_reinstall_resumes,
    two_refreshers_never_spend_one_refresh_token,
    a_waiting_install_is_seen_then_taken_once,
    new_tokens_renew_a_live_link_and_a_refused_refresh_marks_it_once,
    poll_records_assignment_and_reschedules,
    concurrent_orders_queue_each_number_once,
    the_request_budget_is_shared_and_a_429_moves_it,
    a_listing_gives_way_to_calls_of_the_same_account,
    a_webhook_delivery_is_remembered_once_until_its_window_ends,
    a_removal_older_than_the_link_leaves_it_alone,
    a_heartbeat_keeps_a_job_and_a_clean_stop_hands_it_back,
    an_order_for_a_linked_customer_is_applied_with_it_and_routing_hears_each_change_once,
);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn pn(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164).unwrap()
}

fn by() -> Actor {
    Actor::System("test".into())
}

fn tokens(tag: &str) -> StoredTokens {
    StoredTokens {
        access_token: format!("k1:access-{tag}"),
        refresh_token: format!("k1:refresh-{tag}"),
        expires_at: now() + Duration::hours(1),
        generation: 0,
    }
}

async fn customer(store: &Store, name: &str) -> CustomerId {
    testkit::insert_customer(store, name).await
}

/// A customer with `count` reserved numbers in one pending order starting at `first`.
async fn customer_with_order(
    store: &Store,
    name: &str,
    first: u64,
    count: u64,
) -> (CustomerId, OrderId) {
    let batch: Vec<_> = (first..first + count)
        .map(|n| {
            Number::imported(
                PhoneNumber::parse(&format!("+{n}")).unwrap(),
                NumberAttrs::default(),
                &by(),
                now(),
            )
        })
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let c = customer(store, name).await;
    let pick = OrderPick {
        count: count as u32,
        prefix: Some(format!("+{first}").chars().take(8).collect()),
        ..Default::default()
    };
    let (order, _) = store.create_order(c, &pick, &[], false, &by(), now()).await.unwrap().unwrap();
    (c, order.id)
}

async fn states(store: &Store, order: OrderId) -> Vec<NumberState> {
    store.order_numbers(order).await.unwrap().into_iter().map(|n| n.state).collect()
}

async fn claim_all(store: &Store, owner: &str, at: OffsetDateTime) -> Vec<domain::onboarding::Job> {
    let mut jobs = Vec::new();
    while let Some(j) = store.claim_job(owner, at + Duration::minutes(1), at).await.unwrap() {
        jobs.push(j);
    }
    jobs
}

async fn linking_applies_the_pending_order_in_batches_of_200(store: Store) {
    let (c, order) = customer_with_order(&store, "acme", 15550100000, 450).await;
    let (link, queued) = store
        .link_zoom_account(c, &acct("acct-1"), "user-1", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (link.state, link.zoom_account_id.as_str(), queued),
        (LinkState::Linked, "acct-1", 450)
    );
    assert!(states(&store, order).await.iter().all(|s| *s == NumberState::Provisioning));
    assert_eq!(store.get_order(order).await.unwrap().unwrap().state, OrderState::Applied);
    let jobs = claim_all(&store, "w1", now()).await;
    let mut sizes: Vec<usize> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::PushNumbers)
        .map(|j| j.payload.numbers.len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 200, 200]);
    assert_eq!(
        jobs.iter().filter(|j| j.kind == JobKind::PollNumbers).count(),
        0,
        "the first poll comes a minute later"
    );
    let polls = claim_all(&store, "w1", now() + Duration::seconds(61)).await;
    assert_eq!(
        polls.iter().filter(|j| j.kind == JobKind::PollNumbers).count(),
        1,
        "the poll is due after a minute"
    );
    assert!(jobs.iter().all(|j| j.zoom_account == Some(acct("acct-1")) && j.attempts == 1));
    let n = store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100007").unwrap())
        .await
        .unwrap()
        .unwrap();
    let trail = store.number_events(n.id).await.unwrap();
    assert_eq!(
        trail.last().map(|e| (e.from, e.to)),
        Some((Some(NumberState::Reserved), NumberState::Provisioning))
    );
    let events = store.link_events(c, 10).await.unwrap();
    assert_eq!(events[0].kind, "linked");
    assert!(store.zoom_tokens(link.id).await.unwrap().is_some());
}

async fn an_account_or_customer_linked_elsewhere_is_refused_and_nothing_changes(store: Store) {
    let (acme, _) = customer_with_order(&store, "acme", 15550100000, 3).await;
    let (globex, globex_order) = customer_with_order(&store, "globex", 15550200000, 3).await;
    store
        .link_zoom_account(acme, &acct("acct-acme"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .link_zoom_account(globex, &acct("acct-acme"), "u", &tokens("b"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(refused, LinkRefused::AccountTaken { .. }), "{refused:?}");
    assert!(store.zoom_link(globex).await.unwrap().is_none());
    assert!(states(&store, globex_order).await.iter().all(|s| *s == NumberState::Reserved));
    let refused = store
        .link_zoom_account(acme, &acct("acct-other"), "u", &tokens("c"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused, LinkRefused::CustomerLinkedElsewhere(acct("acct-acme")));
    assert_eq!(store.zoom_link(acme).await.unwrap().unwrap().zoom_account_id, "acct-acme");
    assert!(store.live_link_by_account(&acct("acct-other")).await.unwrap().is_none());
    store
        .record_link_refusal(Some(acme), &acct("acct-other"), &refused.to_string(), now())
        .await
        .unwrap();
    assert_eq!(store.link_events(acme, 10).await.unwrap()[0].kind, "refused");
}

async fn zoom_answers_activate_or_return_numbers_with_the_reason(store: Store) {
    let (c, order) = customer_with_order(&store, "acme", 15550100000, 3).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let push = claim_all(&store, "w1", now())
        .await
        .into_iter()
        .find(|j| j.kind == JobKind::PushNumbers)
        .unwrap();
    let results = vec![
        (pn("+15550100000"), PushResult::Accepted),
        (pn("+15550100001"), PushResult::Refused("Invalid Sip Trunk".into())),
        (pn("+15550100002"), PushResult::Accepted),
    ];
    assert!(
        !store.complete_push(push.id, "someone-else", &results, &by(), now()).await.unwrap(),
        "only the lease holder records"
    );
    assert!(store.complete_push(push.id, "w1", &results, &by(), now()).await.unwrap());
    let numbers = store.order_numbers(order).await.unwrap();
    assert_eq!(
        numbers.iter().map(|n| n.state).collect::<Vec<_>>(),
        vec![NumberState::Active, NumberState::Reserved, NumberState::Active]
    );
    assert_eq!(numbers[1].reason.as_deref(), Some("Invalid Sip Trunk"));
    // The same answers again (a retaken job) change nothing.
    assert!(!store.complete_push(push.id, "w1", &results, &by(), now()).await.unwrap());
    let done = store.list_jobs(Some(JobState::Done), 10).await.unwrap();
    assert!(done.iter().any(|j| j.id == push.id));
    let presence = store.zoom_presence(c).await.unwrap();
    assert_eq!(presence.iter().filter(|(_, a, _)| *a == Some(false)).count(), 2);
}

async fn jobs_are_leased_and_a_dead_workers_job_is_retaken(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 3).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    store.poll_now(c, now()).await.unwrap();
    let taken = claim_all(&store, "dead-worker", now()).await;
    assert_eq!(taken.len(), 2);
    assert!(
        store
            .claim_job("w2", now() + Duration::minutes(1), now() + Duration::seconds(30))
            .await
            .unwrap()
            .is_none(),
        "leases still held"
    );
    let later = now() + Duration::minutes(2);
    let retaken = claim_all(&store, "w2", later).await;
    assert_eq!(
        retaken.iter().map(|j| j.id).collect::<HashSet<_>>(),
        taken.iter().map(|j| j.id).collect::<HashSet<_>>()
    );
    assert!(retaken.iter().all(|j| j.attempts == 2 && j.lease_owner.as_deref() == Some("w2")));
    // The dead worker wakes up: its outcome is refused, the new owner's is kept.
    assert!(!store.finish_job(taken[0].id, "dead-worker", &JobEnd::Done, later).await.unwrap());
    let at = later + Duration::seconds(10);
    assert!(store
        .finish_job(
            taken[0].id,
            "w2",
            &JobEnd::Retry { at, error: "Zoom answered 503".into() },
            later
        )
        .await
        .unwrap());
    assert!(
        store.claim_job("w3", later + Duration::minutes(1), later).await.unwrap().is_none(),
        "retry waits until its time"
    );
    let again = store.claim_job("w3", at + Duration::minutes(1), at).await.unwrap().unwrap();
    assert_eq!((again.id, again.last_error.as_deref()), (taken[0].id, Some("Zoom answered 503")));
    assert!(store
        .finish_job(again.id, "w3", &JobEnd::Failed { error: "gave up".into() }, at)
        .await
        .unwrap());
    let failed = store.list_jobs(Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(store.retry_job(again.id, at).await.unwrap());
    assert_eq!(
        store.claim_job("w4", at + Duration::minutes(1), at).await.unwrap().unwrap().attempts,
        1
    );
}

async fn concurrent_workers_never_claim_the_same_job(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 2_000).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    assert!(store.poll_now(c, now()).await.unwrap());
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            claim_all(&store, &format!("w{w}"), now())
                .await
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (11, 11), "10 push jobs and 1 poll, each claimed once");
}

async fn rate_limited_account_waits_for_not_before(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 3).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    store.set_not_before(&acct("acct-1"), now() + Duration::seconds(5)).await.unwrap();
    store.set_not_before(&acct("acct-1"), now() + Duration::seconds(1)).await.unwrap(); // never earlier
    assert!(store
        .claim_job("w", now() + Duration::minutes(1), now() + Duration::seconds(4))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .claim_job("w", now() + Duration::minutes(1), now() + Duration::seconds(5))
        .await
        .unwrap()
        .is_some());
}

async fn app_removal_suspends_and_reinstall_resumes(store: Store) {
    let (c, order) = customer_with_order(&store, "acme", 15550100000, 3).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let jobs = claim_all(&store, "w", now()).await;
    let push = jobs.iter().find(|j| j.kind == JobKind::PushNumbers).unwrap();
    let results: Vec<_> = ["+15550100000", "+15550100001", "+15550100002"]
        .iter()
        .map(|n| (pn(n), PushResult::Accepted))
        .collect();
    store.complete_push(push.id, "w", &results, &by(), now()).await.unwrap();
    assert!(store
        .unlink_zoom_account(&acct("acct-unknown"), "app removed", &by(), now())
        .await
        .unwrap()
        .is_none());
    let (link, suspended) = store
        .unlink_zoom_account(&acct("acct-1"), "app removed in Zoom", &by(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((link.state, suspended), (LinkState::Removed, 3));
    assert!(states(&store, order).await.iter().all(|s| *s == NumberState::Suspended));
    assert!(store.zoom_tokens(link.id).await.unwrap().is_none(), "tokens dropped");
    assert!(
        store
            .claim_job("w", now() + Duration::minutes(1), now() + Duration::minutes(5))
            .await
            .unwrap()
            .is_none(),
        "the poll job is cancelled"
    );
    assert_eq!(
        store.apply_pending_orders(c, &by(), now()).await.unwrap(),
        None,
        "no orders without a link"
    );
    assert_eq!(store.zoom_link(c).await.unwrap().unwrap().state, LinkState::Removed);
    // Installed again: the same link row comes back, numbers go through provisioning again.
    let (again, queued) = store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("b"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.state, queued), (link.id, LinkState::Linked, 3));
    assert!(states(&store, order).await.iter().all(|s| *s == NumberState::Provisioning));
    let kinds: Vec<_> =
        store.link_events(c, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["relinked", "removed", "linked"]);
}

async fn two_refreshers_never_spend_one_refresh_token(store: Store) {
    let c = customer(&store, "acme").await;
    let (link, _) = store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let seen = store.zoom_tokens(link.id).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for w in 0..2 {
        let store = store.clone();
        let generation = seen.generation;
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            if !store
                .begin_token_refresh(
                    link.id,
                    generation,
                    &owner,
                    now() + Duration::seconds(30),
                    now(),
                )
                .await
                .unwrap()
            {
                return 0;
            }
            let fresh = tokens(&owner);
            assert!(store
                .finish_token_refresh(link.id, generation, &owner, &fresh, now())
                .await
                .unwrap());
            1
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap();
    }
    assert_eq!(winners, 1, "exactly one refresher spends the refresh token");
    let after = store.zoom_tokens(link.id).await.unwrap().unwrap();
    assert_eq!(after.generation, seen.generation + 1);
    assert!(after.refresh_token.starts_with("k1:refresh-w"));
    // A refresher still holding the old generation cannot overwrite the new tokens.
    assert!(!store
        .begin_token_refresh(link.id, seen.generation, "late", now() + Duration::seconds(30), now())
        .await
        .unwrap());
    assert!(!store
        .finish_token_refresh(link.id, seen.generation, "late", &tokens("late"), now())
        .await
        .unwrap());
    // A lease that ran out (its worker died) can be taken over.
    assert!(store
        .begin_token_refresh(
            link.id,
            after.generation,
            "dies",
            now() + Duration::seconds(30),
            now()
        )
        .await
        .unwrap());
    assert!(!store
        .begin_token_refresh(
            link.id,
            after.generation,
            "next",
            now() + Duration::seconds(60),
            now() + Duration::seconds(10)
        )
        .await
        .unwrap());
    assert!(store
        .begin_token_refresh(
            link.id,
            after.generation,
            "next",
            now() + Duration::seconds(90),
            now() + Duration::seconds(31)
        )
        .await
        .unwrap());
}

fn pending(account: &str, tag: &str) -> PendingInstall {
    PendingInstall {
        zoom_account_id: acct(account),
        zoom_user_id: "u1".into(),
        zoom_email: "admin@acme.example".into(),
        zoom_name: "Acme Admin".into(),
        zoom_account_number: "12345".into(),
        tokens: tokens(tag),
        created_at: now(),
        valid_until: now() + Duration::minutes(15),
    }
}

async fn a_waiting_install_is_seen_then_taken_once(store: Store) {
    store.insert_pending_install("h1", &pending("acct-1", "a")).await.unwrap();
    store.insert_pending_install("h2", &pending("acct-2", "b")).await.unwrap();
    let seen = store.pending_install("h1", now()).await.unwrap().expect("waiting");
    assert_eq!((seen.zoom_account_id.as_str(), seen.zoom_name.as_str()), ("acct-1", "Acme Admin"));
    assert_eq!(seen.tokens.refresh_token, "k1:refresh-a");
    // Looking does not take it; taking does, once, even when two take at once.
    let (one, two) = tokio::join!(
        store.take_pending_install("h1", now()),
        store.take_pending_install("h1", now())
    );
    let taken = [one.unwrap(), two.unwrap()].into_iter().flatten().count();
    assert_eq!(taken, 1);
    assert!(store.pending_install("h1", now()).await.unwrap().is_none());
    assert!(
        store.take_pending_install("h2", now() + Duration::minutes(16)).await.unwrap().is_none(),
        "expired"
    );
}

async fn new_tokens_renew_a_live_link_and_a_refused_refresh_marks_it_once(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 2).await;
    let (link, _) = store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let generation = store.zoom_tokens(link.id).await.unwrap().unwrap().generation;
    // Zoom refused the refresh token: marked once, and the customer's history says so.
    assert!(store.mark_link_reauth(link.id, generation, "Invalid Token!", now()).await.unwrap());
    assert!(!store.mark_link_reauth(link.id, generation, "again", now()).await.unwrap());
    let marked = store.zoom_link(c).await.unwrap().unwrap();
    assert_eq!(marked.reauth_needed_at, Some(now()));
    assert_eq!(marked.reauth_reason.as_deref(), Some("Invalid Token!"));
    assert_eq!(store.links_needing_reauth().await.unwrap().len(), 1);
    // Jobs waiting for an hour become due when new tokens for the account arrive.
    let job = store.claim_job("w", now() + Duration::minutes(2), now()).await.unwrap().unwrap();
    let later = JobEnd::Retry { at: now() + Duration::hours(1), error: "waiting".into() };
    store.finish_job(job.id, "w", &later, now()).await.unwrap();
    let t1 = now() + Duration::seconds(10);
    let renewed =
        store.renew_link_tokens(&acct("acct-1"), "u2", &tokens("b"), t1).await.unwrap().unwrap();
    assert_eq!((renewed.customer_id, renewed.reauth_needed_at), (c, None));
    let stored = store.zoom_tokens(link.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.refresh_token.as_str(), stored.generation),
        ("k1:refresh-b", generation + 1)
    );
    assert!(store.zoom_link(c).await.unwrap().unwrap().reauth_needed_at.is_none());
    assert!(
        store.claim_job("w", t1 + Duration::minutes(2), t1).await.unwrap().is_some(),
        "due now"
    );
    // A refresh that failed with the old tokens cannot mark the renewed link.
    assert!(!store.mark_link_reauth(link.id, generation, "late", t1).await.unwrap());
    let kinds: Vec<String> =
        store.link_events(c, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["reauthorized", "needs_reauth", "linked"]);
    // No live link for an account: nothing to renew.
    assert!(store
        .renew_link_tokens(&acct("acct-9"), "u", &tokens("c"), t1)
        .await
        .unwrap()
        .is_none());
}

async fn poll_records_assignment_and_reschedules(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 2).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    store.poll_now(c, now()).await.unwrap();
    let jobs = claim_all(&store, "w", now()).await;
    let poll = jobs.iter().find(|j| j.kind == JobKind::PollNumbers).unwrap();
    let push = jobs.iter().find(|j| j.kind == JobKind::PushNumbers).unwrap();
    store.finish_job(push.id, "w", &JobEnd::Done, now()).await.unwrap();
    let seen =
        vec![(pn("+15550100000"), true), (pn("+15550100001"), false), (pn("+19999999999"), true)];
    let next = now() + Duration::minutes(5);
    assert!(store.complete_poll(poll.id, "w", c, &seen, now(), next).await.unwrap());
    let presence = store.zoom_presence(c).await.unwrap();
    assert_eq!(
        presence.iter().map(|(n, a, _)| (n.as_str(), *a)).collect::<Vec<_>>(),
        vec![("+15550100000", Some(true)), ("+15550100001", Some(false))]
    );
    assert!(store
        .claim_job("w", now() + Duration::minutes(10), now() + Duration::minutes(4))
        .await
        .unwrap()
        .is_none());
    let again = store.claim_job("w", now() + Duration::minutes(10), next).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (poll.id, 1));
    assert!(store.zoom_link(c).await.unwrap().unwrap().last_polled_at.is_some());
}

/// Four clients each place one-number orders for one linked customer at once; every order applies the
/// customer's waiting numbers, two clients in the order's own transaction (as an order for a linked
/// customer is placed), two after it. Each number is moved to `provisioning` by exactly one of them,
/// carried by exactly one push job, and its trail says reserved, then provisioning, once each.
async fn concurrent_orders_queue_each_number_once(store: Store) {
    const CLIENTS: u64 = 4;
    const ORDERS: u64 = 60;
    let first = 15550100000;
    let c = linked_customer_with_numbers(&store, first, CLIENTS * ORDERS).await;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let with_order = client % 2 == 0;
            for _ in 0..ORDERS {
                let pick = OrderPick { count: 1, ..Default::default() };
                store.create_order(c, &pick, &[], with_order, &by(), now()).await.unwrap().unwrap();
                store.apply_pending_orders(c, &by(), now()).await.unwrap().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut queued: Vec<String> = Vec::new();
    for job in store.list_jobs(Some(JobState::Pending), 10_000).await.unwrap() {
        if job.kind == JobKind::PushNumbers {
            queued.extend(job.payload.numbers.iter().map(ToString::to_string));
        }
    }
    let distinct: HashSet<&String> = queued.iter().collect();
    let total = (CLIENTS * ORDERS) as usize;
    assert_eq!(
        (queued.len(), distinct.len()),
        (total, total),
        "every number queued once ({} pushes for {} numbers)",
        queued.len(),
        distinct.len()
    );
    for e164 in &queued {
        let n = store
            .get_number_by_e164(&domain::PhoneNumber::parse(e164).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n.state, n.customer_id, n.version), (NumberState::Provisioning, Some(c), 2));
        let trail: Vec<NumberState> =
            store.number_events(n.id).await.unwrap().into_iter().map(|e| e.to).collect();
        assert_eq!(
            trail,
            [NumberState::Available, NumberState::Reserved, NumberState::Provisioning],
            "{e164}: imported, reserved once, then to provisioning once"
        );
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// Eight workers (of any instances) take slots of one account's budget at once, 25 ms apart: each
/// gets its own slot, one gap after another. Another account has its own budget; a 429 moves it.
async fn the_request_budget_is_shared_and_a_429_moves_it(store: Store) {
    let start = micros(now());
    let gap = 25_000;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.take_zoom_slot(&acct("acct-1"), start, gap, Call).await.unwrap().unwrap()
        }));
    }
    let mut slots = Vec::new();
    for t in tasks {
        slots.push(t.await.unwrap());
    }
    slots.sort_unstable();
    assert_eq!(slots, (0..8).map(|k| start + k * gap).collect::<Vec<_>>());
    assert_eq!(
        store.take_zoom_slot(&acct("acct-2"), start, gap, Call).await.unwrap(),
        Some(start),
        "its own budget"
    );
    // Idle for a while: the next call may go at once.
    let later = start + 10_000_000;
    assert_eq!(store.take_zoom_slot(&acct("acct-1"), later, gap, Call).await.unwrap(), Some(later));
    // Zoom answered 429 with Retry-After: no slot before it, for calls already under way too.
    store.set_not_before(&acct("acct-1"), now() + Duration::seconds(60)).await.unwrap();
    let slot =
        store.take_zoom_slot(&acct("acct-1"), later + gap, gap, Call).await.unwrap().unwrap();
    assert_eq!(slot, micros(now() + Duration::seconds(60)));
    store.set_not_before(&acct("acct-1"), now() + Duration::seconds(30)).await.unwrap(); // never earlier
    assert_eq!(
        store.take_zoom_slot(&acct("acct-1"), later, gap, Call).await.unwrap(),
        Some(slot + gap)
    );
}

/// A reconciliation's listing gives way while a call (a push) has a slot planned, takes its slot
/// once the calls' slots have passed, or anyway once it has waited long enough: then without
/// holding up a listing that comes after it.
async fn a_listing_gives_way_to_calls_of_the_same_account(store: Store) {
    let (start, gap) = (micros(now()), 25_000);
    let a = acct("acct-3");
    // Nothing planned: a listing takes the next slot as a call would.
    assert_eq!(store.take_zoom_slot(&a, start, gap, Listing).await.unwrap(), Some(start));
    // A push takes the next three slots: the budget is busy until the last of them has passed.
    for k in 1..=3 {
        let slot = store.take_zoom_slot(&a, start, gap, Call).await.unwrap();
        assert_eq!(slot, Some(start + k * gap));
    }
    let busy_until = start + 4 * gap;
    assert_eq!(store.take_zoom_slot(&a, start, gap, Listing).await.unwrap(), None);
    assert_eq!(store.take_zoom_slot(&a, busy_until - 1, gap, Listing).await.unwrap(), None);
    // Another account's budget is not this one's.
    assert_eq!(
        store.take_zoom_slot(&acct("acct-4"), start, gap, Listing).await.unwrap(),
        Some(start)
    );
    // Given way long enough: the listing takes the next slot, after the push's.
    assert_eq!(
        store.take_zoom_slot(&a, start + gap, gap, OverdueListing).await.unwrap(),
        Some(busy_until)
    );
    // That slot did not make the budget busy: once the push's slots have passed, a listing goes on.
    assert_eq!(
        store.take_zoom_slot(&a, busy_until, gap, Listing).await.unwrap(),
        Some(busy_until + gap)
    );
    // A call made meanwhile: the listing gives way again until it has passed.
    let call = store.take_zoom_slot(&a, busy_until, gap, Call).await.unwrap().unwrap();
    assert_eq!(call, busy_until + 2 * gap);
    assert_eq!(store.take_zoom_slot(&a, busy_until + gap, gap, Listing).await.unwrap(), None);
    assert_eq!(store.take_zoom_slot(&a, call + gap, gap, Listing).await.unwrap(), Some(call + gap));
}

/// The replay memory: a delivery is taken once, by whichever instance gets it first; it is forgotten
/// once its window is over (the window refuses it then).
async fn a_webhook_delivery_is_remembered_once_until_its_window_ends(store: Store) {
    let keep = now() + Duration::minutes(5);
    assert!(store.remember_webhook("d1", now(), keep).await.unwrap());
    assert!(!store.remember_webhook("d1", now() + Duration::seconds(1), keep).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.remember_webhook("d2", now(), keep).await.unwrap()
        }));
    }
    let mut first = 0;
    for t in tasks {
        first += usize::from(t.await.unwrap());
    }
    assert_eq!(first, 1, "one instance acts on a delivery");
    let later = now() + Duration::minutes(6);
    assert!(store.remember_webhook("d1", later, later + Duration::minutes(5)).await.unwrap());
}

/// `app_deauthorized` says when the app was removed: a link made after that is left alone.
async fn a_removal_older_than_the_link_leaves_it_alone(store: Store) {
    let (c, order) = customer_with_order(&store, "acme", 15550100000, 2).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let older = now() - Duration::seconds(30);
    match store
        .unlink_zoom_account_removed_at(&acct("acct-1"), "app removed", older, &by(), now())
        .await
        .unwrap()
    {
        domain::onboarding::Unlinked::Newer(link) => assert_eq!(link.linked_at, now()),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.zoom_link(c).await.unwrap().unwrap().state, LinkState::Linked);
    assert!(states(&store, order).await.iter().all(|s| *s == NumberState::Provisioning));
    match store
        .unlink_zoom_account_removed_at(&acct("acct-1"), "app removed", now(), &by(), now())
        .await
        .unwrap()
    {
        domain::onboarding::Unlinked::Removed { .. } => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .unlink_zoom_account_removed_at(&acct("acct-1"), "again", now(), &by(), now())
            .await
            .unwrap(),
        domain::onboarding::Unlinked::NoLink
    ));
}

/// A heartbeat extends the lease its holder has, and nobody else's; a clean stop hands the job
/// back: pending at once, its attempt not counted.
async fn a_heartbeat_keeps_a_job_and_a_clean_stop_hands_it_back(store: Store) {
    let (c, _) = customer_with_order(&store, "acme", 15550100000, 2).await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let job = store.claim_job("w1", now() + Duration::seconds(15), now()).await.unwrap().unwrap();
    let t1 = now() + Duration::seconds(10);
    assert!(store.extend_job_lease(job.id, "w1", t1 + Duration::seconds(15)).await.unwrap());
    assert!(!store.extend_job_lease(job.id, "w2", t1 + Duration::seconds(15)).await.unwrap());
    assert!(
        store
            .claim_job("w2", t1 + Duration::seconds(30), t1 + Duration::seconds(14))
            .await
            .unwrap()
            .is_none(),
        "the lease was extended"
    );
    assert_eq!(store.hand_back_job("w2", t1).await.unwrap(), 0, "not w2's");
    assert_eq!(store.hand_back_job("w1", t1).await.unwrap(), 1);
    assert!(!store.extend_job_lease(job.id, "w1", t1 + Duration::seconds(15)).await.unwrap());
    let again = store.claim_job("w2", t1 + Duration::seconds(15), t1).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (job.id, 1), "handed back: the attempt is not counted");
}

/// `count` available numbers from `+first`, and a customer linked to `acct-1` with nothing ordered.
async fn linked_customer_with_numbers(store: &Store, first: u64, count: u64) -> CustomerId {
    let batch: Vec<_> = (first..first + count)
        .map(|n| Number::imported(pn(&format!("+{n}")), NumberAttrs::default(), &by(), now()))
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let c = customer(store, "acme").await;
    store
        .link_zoom_account(c, &acct("acct-1"), "u", &tokens("a"), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    c
}

/// The numbers of the routing feed's changes after `after`.
async fn routing_changes_after(store: &Store, after: i64) -> Vec<String> {
    let read = store.routing_feed(after, 10_000, &[]).await.unwrap();
    read.changes.into_iter().filter_map(|(_, e164)| e164.map(|n| n.to_string())).collect()
}

/// An order placed for a linked customer with `apply` is applied in its transaction: its numbers go
/// straight to `provisioning` (written once, both steps in their trail), its push job is queued and
/// the order is applied; the routing feed hears one change per number each time its state changes
/// (the order, Zoom's answer) and none when only what Zoom lists of it changes (a poll). Zoom's
/// answer makes an accepted number Unassigned in Zoom, as of the answer, in the same write.
async fn an_order_for_a_linked_customer_is_applied_with_it_and_routing_hears_each_change_once(
    store: Store,
) {
    let c = linked_customer_with_numbers(&store, 15550100000, 3).await;
    let head = store.routing_feed_head().await.unwrap().high;
    let pick = OrderPick { count: 3, ..Default::default() };
    let (order, reserved) =
        store.create_order(c, &pick, &[], true, &by(), now()).await.unwrap().unwrap();
    assert!(reserved.iter().all(|n| n.state == NumberState::Reserved), "returned as reserved");
    assert_eq!(store.get_order(order.id).await.unwrap().unwrap().state, OrderState::Applied);
    let numbers = store.order_numbers(order.id).await.unwrap();
    assert_eq!(
        numbers.iter().map(|n| (n.state, n.version)).collect::<Vec<_>>(),
        vec![(NumberState::Provisioning, 2); 3]
    );
    for n in &numbers {
        let trail: Vec<_> =
            store.number_events(n.id).await.unwrap().into_iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(
            trail,
            vec![
                (None, NumberState::Available),
                (Some(NumberState::Available), NumberState::Reserved),
                (Some(NumberState::Reserved), NumberState::Provisioning),
            ]
        );
    }
    let mut changed = routing_changes_after(&store, head).await;
    changed.sort();
    assert_eq!(changed, ["+15550100000", "+15550100001", "+15550100002"], "one change each");
    let push = claim_all(&store, "w", now())
        .await
        .into_iter()
        .find(|j| j.kind == JobKind::PushNumbers)
        .unwrap();
    assert_eq!(push.payload.numbers.len(), 3);
    // Peerex learnt of +15550100001 being assigned in Zoom (a poll) before Zoom's answer is recorded.
    store.poll_now(c, now()).await.unwrap();
    let poll = claim_all(&store, "w", now())
        .await
        .into_iter()
        .find(|j| j.kind == JobKind::PollNumbers)
        .unwrap();
    let head = store.routing_feed_head().await.unwrap().high;
    let seen_at = now() - Duration::minutes(1);
    let seen = vec![(pn("+15550100001"), true)];
    assert!(store.complete_poll(poll.id, "w", c, &seen, seen_at, now()).await.unwrap());
    assert!(routing_changes_after(&store, head).await.is_empty(), "what Zoom lists is not routing");
    let results: Vec<_> = numbers.iter().map(|n| (n.e164.clone(), PushResult::Accepted)).collect();
    assert!(store.complete_push(push.id, "w", &results, &by(), now()).await.unwrap());
    assert_eq!(routing_changes_after(&store, head).await.len(), 3, "each activation once");
    let presence = store.zoom_presence(c).await.unwrap();
    assert_eq!(
        presence.iter().map(|(n, a, at)| (n.as_str(), *a, *at)).collect::<Vec<_>>(),
        vec![
            ("+15550100000", Some(false), Some(now())),
            ("+15550100001", Some(true), Some(seen_at)),
            ("+15550100002", Some(false), Some(now())),
        ]
    );
}

fn acct(id: &str) -> domain::ZoomAccountId {
    domain::ZoomAccountId::parse(id).unwrap()
}
