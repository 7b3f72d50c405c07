//! The store's behaviour, checked identically on SQLite and PostgreSQL: every test here runs on both.

use domain::auth::{ApiToken, Role, Scope, Session, User};
use domain::customer::{ContractState, OrderError, OrderPick, OrderState};
use domain::number::NumberAttrs;
use domain::search::NumberQuery;
use domain::{Actor, CustomerId, Number, NumberState, OrderId, PhoneNumber, UserId};
use store::{DbError, Store};
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    import_writes_numbers_with_their_creation_events,
    duplicate_import_is_refused_whole,
    search_pages_by_keyset_with_filters,
    order_reserves_numbers_and_cancel_returns_them,
    order_for_more_than_available_changes_nothing,
    explicit_order_refuses_a_taken_number_and_changes_nothing,
    concurrent_orders_never_get_the_same_number,
    ended_contract_takes_no_orders,
    users_sessions_and_tokens,
    concurrent_orders_never_pass_the_customers_number_limit,
    the_routing_load_reads_every_routed_number_once_with_its_facts,
);

fn now() -> OffsetDateTime {
    // Microsecond precision: what both databases keep.
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn ops() -> Actor {
    Actor::Operator("ops@carrier.example".into())
}

fn numbers(
    first: u64,
    count: u64,
    region: &str,
    tags: &[&str],
) -> Vec<(Number, domain::NumberEvent)> {
    (first..first + count)
        .map(|n| {
            let attrs = NumberAttrs {
                tags: tags.iter().map(|t| t.to_string()).collect(),
                region: Some(region.into()),
                ..Default::default()
            };
            Number::imported(PhoneNumber::parse(&format!("+{n}")).unwrap(), attrs, &ops(), now())
        })
        .collect()
}

async fn customer(store: &Store, name: &str) -> CustomerId {
    testkit::insert_customer(store, name).await
}

async fn import_writes_numbers_with_their_creation_events(store: Store) {
    let batch = numbers(15550100000, 2_500, "US-NY", &["nyc", "premium"]);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    store
        .insert_numbers(&batch, &|n| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert_eq!(seen.into_inner(), 2_500);
    let n = store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100042").unwrap())
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(n.state, NumberState::Available);
    assert_eq!(n.tags, vec!["nyc", "premium"]);
    assert_eq!(n.region.as_deref(), Some("US-NY"));
    assert_eq!(n.updated_at, now());
    let events = store.number_events(n.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].from, events[0].to), (None, NumberState::Available));
    assert_eq!(events[0].actor, "operator:ops@carrier.example");
    let asked = e164s(&["+15550100000", "+15550199999", "+15550102499"]);
    let existing = store.existing_numbers(&asked.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(existing.len(), 2);
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 2_500)]);
}

async fn duplicate_import_is_refused_whole(store: Store) {
    store.insert_numbers(&numbers(15550100000, 10, "US", &[]), &|_| {}).await.unwrap();
    // 5 new numbers and one that exists: the whole batch must fail and add nothing.
    let err = store.insert_numbers(&numbers(15550100009, 6, "US", &[]), &|_| {}).await.unwrap_err();
    match err {
        DbError::Conflict { constraint } => assert_eq!(constraint, "numbers_e164_key"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100012").unwrap())
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 10)]);
}

async fn search_pages_by_keyset_with_filters(store: Store) {
    store.insert_numbers(&numbers(15550100000, 120, "US-NY", &["nyc"]), &|_| {}).await.unwrap();
    store
        .insert_numbers(&numbers(15560100000, 30, "US-CA", &["sfo", "premium"]), &|_| {})
        .await
        .unwrap();
    store.insert_numbers(&numbers(4930123400, 5, "DE", &[]), &|_| {}).await.unwrap();

    // Walk all of +1555 in pages of 50: every number once, in order.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search_numbers(&NumberQuery {
                prefix: Some("+1555".into()),
                after: after.clone(),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|n| n.e164.to_string());
        all.extend(page.into_iter().map(|n| n.e164.to_string()));
    }
    assert_eq!(all.len(), 120);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all[0], "+15550100000");

    let tagged = store
        .search_numbers(&NumberQuery {
            tag: Some("premium".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 30);
    // A tag filter matches whole tags only.
    let partial = store
        .search_numbers(&NumberQuery { tag: Some("prem".into()), limit: 500, ..Default::default() })
        .await
        .unwrap();
    assert!(partial.is_empty());
    // `_` is a LIKE wildcard but only a character in a tag: "prem_um" is not "premium".
    let underscore = store
        .search_numbers(&NumberQuery {
            tag: Some("prem_um".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(underscore.is_empty());
    let region = store
        .search_numbers(&NumberQuery {
            region: Some("DE".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(region.len(), 5);
    let reserved = store
        .search_numbers(&NumberQuery {
            state: Some(NumberState::Reserved),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(reserved.is_empty());
    // SQL metacharacters are just characters.
    let odd = store
        .search_numbers(&NumberQuery {
            tag: Some("%' OR 1=1 --".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(odd.is_empty());
}

async fn order_reserves_numbers_and_cancel_returns_them(store: Store) {
    store.insert_numbers(&numbers(15550100000, 20, "US-NY", &["nyc"]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    let pick = OrderPick {
        count: 5,
        prefix: Some("+1555".into()),
        region: Some("US-NY".into()),
        tag: Some("nyc".into()),
    };
    let (order, reserved) =
        store.create_order(acme, &pick, &[], false, &ops(), now()).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Pending);
    assert_eq!(order.number_count, 5);
    assert_eq!(reserved.len(), 5);
    for n in &reserved {
        let stored = store.get_number(n.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.customer_id, stored.order_id),
            (NumberState::Reserved, Some(acme), Some(order.id))
        );
        let trail = store.number_events(n.id).await.unwrap();
        assert_eq!(
            trail.last().map(|e| (e.from, e.to)),
            Some((Some(NumberState::Available), NumberState::Reserved))
        );
    }
    assert_eq!(store.order_numbers(order.id).await.unwrap().len(), 5);
    assert_eq!(store.list_orders(Some(acme), 10).await.unwrap().len(), 1);
    let mine = store
        .search_numbers(&NumberQuery { customer_id: Some(acme), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(mine.len(), 5);

    // Another customer cannot cancel it; its owner (or an operator) can.
    let other = customer(&store, "other").await;
    assert_eq!(
        store.cancel_order(order.id, Some(other), &ops(), now()).await.unwrap().unwrap_err(),
        OrderError::NotFound
    );
    let cancelled = store.cancel_order(order.id, Some(acme), &ops(), now()).await.unwrap().unwrap();
    assert_eq!(cancelled.state, OrderState::Cancelled);
    for n in &reserved {
        let stored = store.get_number(n.id).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.customer_id), (NumberState::Available, None));
        assert_eq!(store.number_events(n.id).await.unwrap().len(), 3);
    }
    assert_eq!(
        store.cancel_order(order.id, None, &ops(), now()).await.unwrap().unwrap_err(),
        OrderError::NotPending("cancelled")
    );
    assert_eq!(
        store.cancel_order(OrderId::new(), None, &ops(), now()).await.unwrap().unwrap_err(),
        OrderError::NotFound
    );
}

async fn order_for_more_than_available_changes_nothing(store: Store) {
    store.insert_numbers(&numbers(15550100000, 3, "US", &[]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    let err = store
        .create_order(
            acme,
            &OrderPick { count: 4, ..Default::default() },
            &[],
            false,
            &ops(),
            now(),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::NotEnough { wanted: 4, available: 3 });
    assert!(store.list_orders(None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 3)]);
    let err = store
        .create_order(
            CustomerId::new(),
            &OrderPick { count: 1, ..Default::default() },
            &[],
            false,
            &ops(),
            now(),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::CustomerNotFound);
}

async fn explicit_order_refuses_a_taken_number_and_changes_nothing(store: Store) {
    store.insert_numbers(&numbers(15550100000, 3, "US", &[]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    let first = e164s(&["+15550100001"]);
    store
        .create_order(acme, &OrderPick::default(), &first, false, &ops(), now())
        .await
        .unwrap()
        .unwrap();
    let second = e164s(&["+15550100000", "+15550100001"]);
    let err = store
        .create_order(acme, &OrderPick::default(), &second, false, &ops(), now())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::NumberNotAvailable("+15550100001".into()));
    // One number listed twice is not reserved twice (nor once).
    let twice = e164s(&["+15550100000", "+15550100002", "+15550100000"]);
    let err = store
        .create_order(acme, &OrderPick::default(), &twice, false, &ops(), now())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::NumberNotAvailable("+15550100000".into()));
    assert_eq!(
        store
            .get_number_by_e164(&domain::PhoneNumber::parse("+15550100000").unwrap())
            .await
            .unwrap()
            .unwrap()
            .state,
        NumberState::Available
    );
    assert_eq!(store.list_orders(None, 10).await.unwrap().len(), 1);
    let unknown = e164s(&["+15559999999"]);
    let err = store
        .create_order(acme, &OrderPick::default(), &unknown, false, &ops(), now())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::UnknownNumber("+15559999999".into()));
}

async fn concurrent_orders_never_get_the_same_number(store: Store) {
    store.insert_numbers(&numbers(15550100000, 200, "US", &[]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_order(
                    acme,
                    &OrderPick { count: 20, ..Default::default() },
                    &[],
                    false,
                    &ops(),
                    now(),
                )
                .await
        }));
    }
    let mut taken = std::collections::HashSet::new();
    for t in tasks {
        let (_, got) = t.await.unwrap().unwrap().unwrap();
        assert_eq!(got.len(), 20);
        for n in got {
            assert!(taken.insert(n.e164.to_string()), "{} given to two orders", n.e164);
        }
    }
    assert_eq!(taken.len(), 160);
    let states = store.count_by_state().await.unwrap();
    assert!(
        states.contains(&(NumberState::Reserved, 160))
            && states.contains(&(NumberState::Available, 40)),
        "{states:?}"
    );
}

async fn ended_contract_takes_no_orders(store: Store) {
    store.insert_numbers(&numbers(15550100000, 3, "US", &[]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    assert!(store.set_contract_state(acme, ContractState::Ended).await.unwrap());
    let err = store
        .create_order(
            acme,
            &OrderPick { count: 1, ..Default::default() },
            &[],
            false,
            &ops(),
            now(),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err, OrderError::ContractEnded);
    assert!(!store.set_contract_state(CustomerId::new(), ContractState::Ended).await.unwrap());
}

async fn users_sessions_and_tokens(store: Store) {
    let acme = customer(&store, "acme").await;
    let user = User {
        id: UserId::new(),
        email: "Admin@Acme.example".into(),
        password_hash: "$argon2id$stub".into(),
        role: Role::CustomerAdmin,
        customer_id: Some(acme),
        failed_logins: 0,
        locked_until: None,
        created_at: now(),
    };
    store.insert_user(&user).await.unwrap();
    // E-mail is unique whatever its case.
    let twin = User { id: UserId::new(), email: "admin@acme.example".into(), ..user.clone() };
    match store.insert_user(&twin).await.unwrap_err() {
        DbError::Conflict { constraint } => assert_eq!(constraint, "users_email_key"),
        other => panic!("{other:?}"),
    }
    let found =
        store.user_by_email("admin@acme.example").await.unwrap().expect("case-insensitive lookup");
    assert_eq!(found.id, user.id);
    assert_eq!(store.list_users(Some(acme)).await.unwrap().len(), 1);
    assert!(store.list_users(None).await.unwrap().is_empty());

    assert_eq!(store.record_login_failure(user.id, None).await.unwrap(), 1);
    assert_eq!(store.record_login_failure(user.id, Some(now())).await.unwrap(), 2);
    let locked = store.user_by_email("admin@acme.example").await.unwrap().unwrap();
    assert_eq!((locked.failed_logins, locked.locked_until), (2, Some(now())));
    store.reset_login_failures(user.id).await.unwrap();
    assert_eq!(store.user_by_email("admin@acme.example").await.unwrap().unwrap().failed_logins, 0);

    let session = Session {
        id_hash: "h1".into(),
        user_id: user.id,
        csrf_token: "c1".into(),
        created_at: now(),
        expires_at: now() + time::Duration::hours(1),
    };
    store.insert_session(&session).await.unwrap();
    let (s, u) = store.session("h1", now()).await.unwrap().expect("live session");
    assert_eq!((s.csrf_token.as_str(), u.id), ("c1", user.id));
    assert!(
        store.session("h1", now() + time::Duration::hours(2)).await.unwrap().is_none(),
        "expired session must not be returned"
    );
    assert_eq!(store.delete_expired_sessions(now() + time::Duration::hours(2)).await.unwrap(), 1);
    assert!(store.session("h1", now()).await.unwrap().is_none());

    let token = ApiToken {
        id: uuid::Uuid::now_v7(),
        name: "oss".into(),
        token_hash: "th".into(),
        scope: Scope::Write,
        created_by: "ops".into(),
        created_at: now(),
        revoked_at: None,
    };
    store.insert_token(&token).await.unwrap();
    assert_eq!(store.token_by_hash("th").await.unwrap().map(|t| t.scope), Some(Scope::Write));
    assert!(store.revoke_token(token.id, now()).await.unwrap());
    assert!(store.token_by_hash("th").await.unwrap().is_none());
    assert_eq!(store.list_tokens().await.unwrap()[0].revoked_at, Some(now()));
}

/// Acme may hold 25 numbers and holds 5. Eight clients order 5 numbers each at once (40 wanted): four
/// orders fit and the rest are refused naming the limit, whichever order they come in; the limit
/// counts what every concurrent order reserved.
async fn concurrent_orders_never_pass_the_customers_number_limit(store: Store) {
    store.insert_numbers(&numbers(15550100000, 200, "US", &[]), &|_| {}).await.unwrap();
    let acme = customer(&store, "acme").await;
    let globex = customer(&store, "globex").await;
    let five = OrderPick { count: 5, ..Default::default() };
    store.create_order(acme, &five, &[], false, &ops(), now()).await.unwrap().unwrap();
    assert!(store.set_number_limit(acme, Some(25)).await.unwrap());
    assert!(!store.set_number_limit(CustomerId::new(), Some(25)).await.unwrap());
    assert_eq!(store.get_customer(acme).await.unwrap().unwrap().number_limit, Some(25));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, five) = (store.clone(), five.clone());
        tasks.push(tokio::spawn(async move {
            store.create_order(acme, &five, &[], false, &ops(), now()).await.unwrap()
        }));
    }
    let (mut placed, mut refused) = (0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(placed, 4, "{refused:?}");
    assert!(
        refused.iter().all(|e| *e == OrderError::OverLimit { limit: 25, held: 25, wanted: 5 }),
        "{refused:?}"
    );
    assert_eq!(store.numbers_held(acme).await.unwrap(), 25);
    // Another customer has no limit; an explicit list counts its numbers.
    store
        .create_order(
            globex,
            &OrderPick { count: 50, ..Default::default() },
            &[],
            false,
            &ops(),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store.set_number_limit(acme, Some(26)).await.unwrap());
    let two = e164s(&["+15550100199", "+15550100198"]);
    assert_eq!(
        store
            .create_order(acme, &OrderPick::default(), &two, false, &ops(), now())
            .await
            .unwrap()
            .unwrap_err(),
        OrderError::OverLimit { limit: 26, held: 25, wanted: 2 }
    );
    assert!(store.set_number_limit(acme, None).await.unwrap());
    store
        .create_order(acme, &OrderPick::default(), &two, false, &ops(), now())
        .await
        .unwrap()
        .unwrap();
}

fn e164s(numbers: &[&str]) -> Vec<PhoneNumber> {
    numbers.iter().map(|n| PhoneNumber::parse(n).unwrap()).collect()
}

/// The routing snapshot's full load: every number not `available`, each once, with its state,
/// customer and reason, over more than one of either dialect's chunks (PostgreSQL hands them over
/// 16,384 at a time from one COPY, SQLite 50,000 a page).
async fn the_routing_load_reads_every_routed_number_once_with_its_facts(store: Store) {
    let acme = customer(&store, "Acme").await;
    let mut want = std::collections::HashMap::new();
    let rows: Vec<_> = numbers(15_550_000_000, 90_001, "NY", &[])
        .into_iter()
        .enumerate()
        .map(|(i, (mut n, e))| {
            (n.state, n.customer_id, n.reason) = match i % 3 {
                0 => (NumberState::Available, None, None),
                1 => (NumberState::Active, Some(acme), None),
                _ => (NumberState::Suspended, Some(acme), Some(format!("app removed \t\"{i}\"\n"))),
            };
            if n.state != NumberState::Available {
                want.insert(n.e164.clone(), (n.state, n.customer_id, n.reason.clone()));
            }
            (n, e)
        })
        .collect();
    store.insert_numbers(&rows, &|_| {}).await.unwrap();
    let (mut got, mut chunks) = (std::collections::HashMap::new(), 0);
    let total = store
        .routing_numbers_each(&mut |facts| {
            chunks += 1;
            for f in facts {
                let old = got.insert(f.e164.clone(), (f.state, f.customer, f.reason.clone()));
                assert!(old.is_none(), "{} read twice", f.e164);
            }
        })
        .await
        .unwrap();
    assert_eq!(total, 60_000);
    assert!(chunks >= 2, "read in {chunks} chunk");
    assert_eq!(got, want);
}
