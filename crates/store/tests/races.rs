//! Two requests racing on the same numbers, on SQLite and PostgreSQL: every state change is a
//! compare-and-set, so whichever request wins, the numbers end in states the state machine allows,
//! each in one place. Each race runs many times so that an interleaving that breaks it can show up.

use domain::customer::{ContractState, Customer, OrderError, OrderPick, OrderState};
use domain::number::NumberAttrs;
use domain::onboarding::{JobKind, JobState, PushResult, StoredTokens};
use domain::release::{ApproveRefused, LineState};
use domain::{Actor, CustomerId, Number, NumberState, OrderId, PhoneNumber};
use std::collections::HashMap;
use std::sync::Arc;
use store::Store;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

testkit::store_tests_on_both!(
    an_order_cancelled_while_the_install_links_it_ends_one_way,
    a_release_withdrawn_while_it_is_approved_ends_one_way,
    an_app_removed_while_a_push_finishes_leaves_no_number_active,
    two_orders_taking_the_same_numbers_in_opposite_order_end_one_way,
);

/// Races per test: enough for an unguarded read-then-write to lose at least once on PostgreSQL.
const ROUNDS: u64 = 50;
/// Numbers per race.
const NUMBERS: u64 = 6;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn by() -> Actor {
    Actor::System("race".into())
}

fn tokens() -> StoredTokens {
    StoredTokens {
        access_token: "k1:access".into(),
        refresh_token: "k1:refresh".into(),
        expires_at: now() + Duration::hours(1),
        generation: 0,
    }
}

fn e164s(round: u64) -> Vec<PhoneNumber> {
    let first = 15550000000 + round * 100;
    (first..first + NUMBERS).map(|n| PhoneNumber::parse(&format!("+{n}")).unwrap()).collect()
}

/// Round `round`'s customer, with its numbers reserved in one pending order.
async fn customer_with_order(store: &Store, round: u64) -> (CustomerId, OrderId) {
    let numbers: Vec<_> = e164s(round)
        .into_iter()
        .map(|n| Number::imported(n, NumberAttrs::default(), &by(), now()))
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    let c = Customer {
        id: CustomerId::new(),
        name: format!("customer {round}"),
        contract_ref: format!("C-{round}"),
        contract_state: ContractState::Active,
        created_at: now(),
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&c).await.unwrap();
    let (order, _) = store
        .create_order(c.id, &OrderPick::default(), &e164s(round), false, &by(), now())
        .await
        .unwrap()
        .unwrap();
    (c.id, order.id)
}

/// A customer of its own for each side of a race (orders of one customer take turns on its row).
async fn customer(store: &Store, name: String) -> CustomerId {
    testkit::insert_customer(store, &name).await
}

fn account(round: u64) -> domain::ZoomAccountId {
    domain::ZoomAccountId::parse(&format!("acct-{round}")).unwrap()
}

async fn link(store: &Store, c: CustomerId, round: u64) {
    store
        .link_zoom_account(c, &account(round), "u", &tokens(), "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
}

/// The push job of round `round`'s numbers, claimed by `owner`.
async fn claim_push(store: &Store, owner: &str) -> uuid::Uuid {
    loop {
        let job = store
            .claim_job(owner, now() + Duration::hours(1), now() + Duration::minutes(2))
            .await
            .unwrap()
            .expect("a push job is due");
        if job.kind == JobKind::PushNumbers {
            return job.id;
        }
        store.finish_job(job.id, owner, &domain::onboarding::JobEnd::Done, now()).await.unwrap();
    }
}

async fn numbers(store: &Store, round: u64) -> Vec<Number> {
    let mut found = Vec::new();
    for e164 in e164s(round) {
        found.push(store.get_number_by_e164(&e164).await.unwrap().unwrap());
    }
    found
}

/// Numbers queued for Zoom by pending push jobs, and how many times each.
async fn queued_pushes(store: &Store) -> HashMap<String, usize> {
    let mut queued = HashMap::new();
    for job in store.list_jobs(Some(JobState::Pending), 100_000).await.unwrap() {
        if job.kind == JobKind::PushNumbers {
            for n in &job.payload.numbers {
                *queued.entry(n.to_string()).or_default() += 1;
            }
        }
    }
    queued
}

/// What every number must satisfy whoever won: a number held is held by a customer, a number not
/// held belongs to nobody and to no order.
fn assert_consistent(n: &Number, round: u64) {
    match n.state {
        NumberState::Available | NumberState::Aging => assert!(
            n.customer_id.is_none() && n.order_id.is_none(),
            "round {round}: {} is {} but still has customer {:?} / order {:?}",
            n.e164,
            n.state,
            n.customer_id,
            n.order_id
        ),
        _ => assert!(
            n.customer_id.is_some(),
            "round {round}: {} is {} with no customer",
            n.e164,
            n.state
        ),
    }
}

/// Runs `a` and `b` at the same moment, each on its own task (and so its own connection).
async fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: std::future::Future<Output = RA> + Send + 'static,
    B: std::future::Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let start = Arc::new(Barrier::new(2));
    let (sa, sb) = (start.clone(), start);
    let ta = tokio::spawn(async move {
        sa.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        sb.wait().await;
        b.await
    });
    (ta.await.unwrap(), tb.await.unwrap())
}

async fn an_order_cancelled_while_the_install_links_it_ends_one_way(store: Store) {
    for round in 0..ROUNDS {
        let (c, order) = customer_with_order(&store, round).await;
        let (s1, s2) = (store.clone(), store.clone());
        let (cancelled, linked) = race(
            async move { s1.cancel_order(order, None, &by(), now()).await.unwrap() },
            async move {
                s2.link_zoom_account(c, &account(round), "u", &tokens(), "Carrier", &by(), now())
                    .await
                    .unwrap()
                    .unwrap()
            },
        )
        .await;
        let numbers = numbers(&store, round).await;
        numbers.iter().for_each(|n| assert_consistent(n, round));
        let queued = queued_pushes(&store).await;
        let order_now = store.get_order(order).await.unwrap().unwrap().state;
        match cancelled {
            Ok(_) => {
                assert_eq!(order_now, OrderState::Cancelled, "round {round}");
                assert!(
                    numbers.iter().all(|n| n.state == NumberState::Available),
                    "round {round}: cancelled, yet {numbers:?}"
                );
                assert!(
                    numbers.iter().all(|n| !queued.contains_key(n.e164.as_str())),
                    "round {round}: a cancelled number is queued for Zoom"
                );
                assert_eq!(linked.1, 0, "round {round}: the link queued cancelled numbers");
            }
            Err(OrderError::NotPending(_)) => {
                assert_eq!(order_now, OrderState::Applied, "round {round}");
                for n in &numbers {
                    assert_eq!(
                        (n.state, n.customer_id),
                        (NumberState::Provisioning, Some(c)),
                        "round {round}"
                    );
                    assert_eq!(
                        queued.get(n.e164.as_str()),
                        Some(&1),
                        "round {round}: {} queued once",
                        n.e164
                    );
                }
                assert_eq!(linked.1, NUMBERS as usize, "round {round}");
            }
            Err(e) => panic!("round {round}: the cancellation failed otherwise: {e}"),
        }
    }
}

async fn a_release_withdrawn_while_it_is_approved_ends_one_way(store: Store) {
    for round in 0..ROUNDS {
        let (c, _) = customer_with_order(&store, round).await;
        link(&store, c, round).await;
        let push = claim_push(&store, "w").await;
        let accepted: Vec<_> =
            e164s(round).into_iter().map(|n| (n, PushResult::Accepted)).collect();
        assert!(store.complete_push(push, "w", &accepted, &by(), now()).await.unwrap());
        let release = store
            .start_release(c, &e164s(round), "contract ends", &by(), now())
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<_> = numbers(&store, round).await.iter().map(|n| n.id).collect();
        let (s1, s2) = (store.clone(), store.clone());
        let (withdrawn, approved) = race(
            async move { s1.withdraw_release(release.id, &by(), now()).await.unwrap().unwrap() },
            async move { s2.approve_release(c, &ids, &by(), now()).await.unwrap() },
        )
        .await;
        let numbers = numbers(&store, round).await;
        numbers.iter().for_each(|n| assert_consistent(n, round));
        let lines: HashMap<_, _> = store
            .release_lines(release.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.number_id, l.state))
            .collect();
        match approved {
            Ok(count) => {
                assert_eq!((count, withdrawn), (NUMBERS as usize, 0), "round {round}");
                for n in &numbers {
                    assert_eq!(
                        (n.state, lines[&n.id]),
                        (NumberState::Releasing, LineState::Releasing),
                        "round {round}: {}",
                        n.e164
                    );
                }
            }
            Err(ApproveRefused::NotFound) => {
                assert_eq!(withdrawn, NUMBERS as usize, "round {round}");
                for n in &numbers {
                    assert_eq!(
                        (n.state, lines[&n.id]),
                        (NumberState::Active, LineState::Withdrawn),
                        "round {round}: {}",
                        n.e164
                    );
                }
            }
            Err(e) => panic!("round {round}: the approval failed otherwise: {e}"),
        }
    }
}

async fn an_app_removed_while_a_push_finishes_leaves_no_number_active(store: Store) {
    for round in 0..ROUNDS {
        let (c, _) = customer_with_order(&store, round).await;
        link(&store, c, round).await;
        let push = claim_push(&store, "w").await;
        let accepted: Vec<_> =
            e164s(round).into_iter().map(|n| (n, PushResult::Accepted)).collect();
        let (s1, s2) = (store.clone(), store.clone());
        let (pushed, removed) = race(
            async move { s1.complete_push(push, "w", &accepted, &by(), now()).await.unwrap() },
            async move {
                s2.unlink_zoom_account(&account(round), "app removed", &by(), now()).await.unwrap()
            },
        )
        .await;
        let (_, suspended) = removed.expect("the link was live");
        let numbers = numbers(&store, round).await;
        numbers.iter().for_each(|n| assert_consistent(n, round));
        for n in &numbers {
            assert_eq!(n.customer_id, Some(c), "round {round}: {}", n.e164);
        }
        if pushed {
            // Zoom's answer landed first: the removal then suspended what it activated.
            assert_eq!(suspended, NUMBERS as usize, "round {round}");
            assert!(
                numbers.iter().all(|n| n.state == NumberState::Suspended),
                "round {round}: {numbers:?}"
            );
        } else {
            // The removal came first and cancelled the job: the answer changed nothing.
            assert_eq!(suspended, 0, "round {round}");
            assert!(
                numbers.iter().all(|n| n.state == NumberState::Provisioning),
                "round {round}: {numbers:?}"
            );
        }
    }
}

/// Two orders naming the same numbers, one in E.164 order and one in reverse, each writes its numbers
/// in its own order: on PostgreSQL each holds the first half the other still needs and the server
/// aborts one to break the deadlock. The store runs the aborted one again, which then finds the
/// numbers taken: the customer is told which number is no longer available, never a database error.
async fn two_orders_taking_the_same_numbers_in_opposite_order_end_one_way(store: Store) {
    for round in 0..ROUNDS {
        let imported: Vec<_> = e164s(round)
            .iter()
            .map(|n| Number::imported(n.clone(), NumberAttrs::default(), &by(), now()))
            .collect();
        store.insert_numbers(&imported, &|_| {}).await.unwrap();
        let (a, b) = (
            customer(&store, format!("{round}a")).await,
            customer(&store, format!("{round}b")).await,
        );
        let (forward, backward) =
            (e164s(round), e164s(round).into_iter().rev().collect::<Vec<_>>());
        let (s1, s2) = (store.clone(), store.clone());
        let (got_a, got_b) = race(
            async move {
                s1.create_order(a, &OrderPick::default(), &forward, false, &by(), now()).await
            },
            async move {
                s2.create_order(b, &OrderPick::default(), &backward, false, &by(), now()).await
            },
        )
        .await;
        let got_a = got_a.unwrap_or_else(|e| panic!("round {round}: order a: {e}"));
        let got_b = got_b.unwrap_or_else(|e| panic!("round {round}: order b: {e}"));
        let winner = match (&got_a, &got_b) {
            (Ok(_), Err(OrderError::NumberNotAvailable(_))) => a,
            (Err(OrderError::NumberNotAvailable(_)), Ok(_)) => b,
            other => panic!("round {round}: not one order and one refusal: {other:?}"),
        };
        for n in numbers(&store, round).await {
            assert_eq!(
                (n.state, n.customer_id),
                (NumberState::Reserved, Some(winner)),
                "round {round}: {}",
                n.e164
            );
        }
    }
}

/// An order that read a number as available must not reserve it if, before it wrote, the number was
/// reserved by another order and came back (that order cancelled): the number is in the state the
/// order read, but not the number it read. The first order's write is held between its read and its
/// write by a lock on the other number it names; SQLite's single writer runs each store transaction
/// whole, so there the interleaving cannot happen and this runs on PostgreSQL only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_that_left_and_came_back_is_not_reserved_on_what_was_read_before() {
    use sqlx::{Connection, PgConnection};
    let url = testkit::postgres_url().await;
    let store = testkit::migrated_store(&url).await;
    let imported: Vec<_> = e164s(0)
        .iter()
        .take(2)
        .map(|n| Number::imported(n.clone(), NumberAttrs::default(), &by(), now()))
        .collect();
    store.insert_numbers(&imported, &|_| {}).await.unwrap();
    let (held, aba) = (imported[0].0.e164.clone(), imported[1].0.e164.clone());
    let (first, second) =
        (customer(&store, "first".into()).await, customer(&store, "second".into()).await);

    let mut lock = PgConnection::connect(&url).await.unwrap();
    let mut watch = PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("SELECT id FROM numbers WHERE e164 = $1 FOR UPDATE")
        .bind(held.as_str())
        .execute(&mut lock)
        .await
        .unwrap();
    let s = store.clone();
    let names = vec![held.clone(), aba.clone()];
    let order = tokio::spawn(async move {
        s.create_order(first, &OrderPick::default(), &names, false, &by(), now()).await.unwrap()
    });
    // The first order has read both numbers and waits to write the held one.
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (other, _) = store
        .create_order(
            second,
            &OrderPick::default(),
            std::slice::from_ref(&aba),
            false,
            &by(),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    store.cancel_order(other.id, None, &by(), now()).await.unwrap().unwrap();
    let back = store.get_number_by_e164(&aba).await.unwrap().unwrap();
    assert_eq!(back.state, NumberState::Available, "the number came back");
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();

    match order.await.unwrap() {
        Err(OrderError::NumberNotAvailable(n)) => assert_eq!(n, aba.as_str()),
        other => panic!("the order reserved on what it read before the number moved: {other:?}"),
    }
    for e164 in [&held, &aba] {
        let n = store.get_number_by_e164(e164).await.unwrap().unwrap();
        assert_eq!((n.state, n.customer_id), (NumberState::Available, None), "{e164}");
    }
}
