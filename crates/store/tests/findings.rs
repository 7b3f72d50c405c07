//! Findings, routing positions, the routing heartbeat and the reconciliation lease, on SQLite and
//! PostgreSQL: a cycle's write opens, keeps and closes findings in one transaction; an open finding
//! exists once per kind and number however many cycles race; a lease is held by one owner at a
//! time; the heartbeat moves at most once per gap however many instances beat.

use domain::findings::{FindingQuery, RepairState, Seen, NO_LONGER_SEEN};
use domain::reconcile::FindingKind;
use domain::ZoomAccountId;
use std::sync::Arc;
use store::Store;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

testkit::store_tests_on_both!(
    a_cycle_opens_keeps_and_closes_the_findings_of_its_scope,
    racing_cycles_leave_one_open_finding_per_kind_and_number,
    the_reconciliation_lease_is_one_owners_until_given_back,
    routing_positions_are_kept_and_stale_instances_forgotten,
    the_heartbeat_moves_once_per_gap_however_many_beat,
    a_customers_numbers_read_for_reconciliation_are_the_same_read_by_number,
);

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn seen(kind: FindingKind, subject: &str) -> Seen {
    Seen { kind, subject: subject.into(), customer: None, detail: format!("{kind} {subject}") }
}

async fn open(store: &Store) -> Vec<(FindingKind, String)> {
    let q = FindingQuery { open: Some(true), ..Default::default() };
    let mut v: Vec<_> =
        store.list_findings(&q).await.unwrap().into_iter().map(|f| (f.kind, f.subject)).collect();
    v.sort();
    v
}

async fn a_cycle_opens_keeps_and_closes_the_findings_of_its_scope(store: Store) {
    let acct = ZoomAccountId::from_trusted("acct-a".into());
    let a = "account:acct-a";
    let first = [
        seen(FindingKind::GoneFromZoom, "+15550100001"),
        seen(FindingKind::WrongTrunk, "+15550100002"),
        seen(FindingKind::UnknownToPeerex, "+15550100003"),
    ];
    let r = store.record_findings(a, Some(&acct), &first, &[], Uuid::now_v7(), t0()).await.unwrap();
    assert_eq!((r.opened, r.still_open, r.closed), (3, 0, 0));
    // Another scope's findings are not this one's to close.
    let other = [seen(FindingKind::RoutingBehind, "instance-1")];
    store.record_findings("routing", None, &other, &[], Uuid::now_v7(), t0()).await.unwrap();

    // The same clock reading: only the cycle tells old sightings from new ones.
    let second = [first[0].clone(), first[2].clone()];
    let r =
        store.record_findings(a, Some(&acct), &second, &[], Uuid::now_v7(), t0()).await.unwrap();
    assert_eq!((r.opened, r.still_open, r.closed), (0, 2, 1));
    assert_eq!(
        open(&store).await,
        vec![
            (FindingKind::UnknownToPeerex, "+15550100003".into()),
            (FindingKind::GoneFromZoom, "+15550100001".into()),
            (FindingKind::RoutingBehind, "instance-1".into()),
        ]
    );
    let all = store.list_findings(&FindingQuery::default()).await.unwrap();
    let closed = all.iter().find(|f| f.kind == FindingKind::WrongTrunk).unwrap();
    assert_eq!(closed.resolved_by.as_deref(), Some(NO_LONGER_SEEN));
    assert_eq!(closed.resolved_at, Some(t0()));
    let unknown = all.iter().find(|f| f.kind == FindingKind::UnknownToPeerex).unwrap();
    assert_eq!(unknown.repair_state, RepairState::Manual, "never automatic");
    assert_eq!(unknown.zoom_account.as_deref(), Some("acct-a"));

    // Seen again later: first seen stays, last seen moves.
    let later = t0() + Duration::minutes(15);
    store.record_findings(a, Some(&acct), &second, &[], Uuid::now_v7(), later).await.unwrap();
    let gone = store
        .list_findings(&FindingQuery {
            kind: Some(FindingKind::GoneFromZoom),
            open: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].first_seen, gone[0].last_seen), (t0(), later));

    // The drift comes back after it was closed: a new finding, the old one stays closed.
    let r =
        store.record_findings(a, Some(&acct), &first, &[], Uuid::now_v7(), later).await.unwrap();
    assert_eq!((r.opened, r.still_open, r.closed), (1, 2, 0));
    let trunk = FindingQuery { kind: Some(FindingKind::WrongTrunk), ..Default::default() };
    assert_eq!(store.list_findings(&trunk).await.unwrap().len(), 2);

    let counts = store.open_finding_counts().await.unwrap();
    assert_eq!(counts.len(), FindingKind::ALL.len(), "every kind, 0 included");
    let n = |k| counts.iter().find(|(c, _)| *c == k).unwrap().1;
    assert_eq!(
        (n(FindingKind::GoneFromZoom), n(FindingKind::WrongTrunk), n(FindingKind::Stuck)),
        (1, 1, 0)
    );
}

async fn racing_cycles_leave_one_open_finding_per_kind_and_number(store: Store) {
    let acct = ZoomAccountId::from_trusted("acct-a".into());
    let findings: Arc<Vec<Seen>> = Arc::new(
        (0..40)
            .map(|i| seen(FindingKind::GoneFromZoom, &format!("+1555010{i:04}")))
            .chain((0..40).map(|i| seen(FindingKind::InactiveInZoom, &format!("+1555020{i:04}"))))
            .collect(),
    );
    for round in 0..5 {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, findings, acct) = (store.clone(), findings.clone(), acct.clone());
                tokio::spawn(async move {
                    store
                        .record_findings(
                            "account:acct-a",
                            Some(&acct),
                            &findings,
                            &[],
                            Uuid::now_v7(),
                            t0() + Duration::minutes(round),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(open(&store).await.len(), 80, "round {round}");
        let all = store.list_findings(&FindingQuery::default()).await.unwrap();
        assert_eq!(all.len(), 80, "nothing closed, nothing twice (round {round})");
    }
}

async fn the_reconciliation_lease_is_one_owners_until_given_back(store: Store) {
    let (s, lease) = ("account:acct-a", Duration::minutes(5));
    assert!(store.take_reconcile_lease(s, "one", t0(), t0() + lease, t0()).await.unwrap());
    assert!(!store.take_reconcile_lease(s, "two", t0(), t0() + lease, t0()).await.unwrap());
    // Another scope is free.
    assert!(store
        .take_reconcile_lease("account:b", "two", t0(), t0() + lease, t0())
        .await
        .unwrap());
    assert!(!store.release_reconcile_lease(s, "two", Some(t0())).await.unwrap(), "not its lease");
    assert!(store.release_reconcile_lease(s, "one", Some(t0())).await.unwrap());
    // Completed at t0: not due again before t0 + 15 min on the schedule, but a run asked for now is.
    let t1 = t0() + Duration::minutes(1);
    let due = t1 - Duration::minutes(15);
    assert!(!store.take_reconcile_lease(s, "two", t1, t1 + lease, due).await.unwrap());
    assert!(store.take_reconcile_lease(s, "two", t1, t1 + lease, t1).await.unwrap());
    // A lease that ran out (its owner died) is taken over.
    let t2 = t1 + lease;
    assert!(store.take_reconcile_lease(s, "three", t2, t2 + lease, t2).await.unwrap());
    assert!(!store.release_reconcile_lease(s, "two", None).await.unwrap());
}

async fn routing_positions_are_kept_and_stale_instances_forgotten(store: Store) {
    store.report_routing_instance("a", 10, t0()).await.unwrap();
    store.report_routing_instance("b", 7, t0()).await.unwrap();
    store.report_routing_instance("b", 9, t0() + Duration::seconds(5)).await.unwrap();
    store.report_routing_instance("b", 8, t0() + Duration::seconds(1)).await.unwrap(); // late
    let seen = store.routing_instances(t0() - Duration::minutes(10)).await.unwrap();
    let pos: Vec<_> = seen.iter().map(|i| (i.instance.as_str(), i.generation)).collect();
    assert_eq!(pos, vec![("a", 10), ("b", 9)]);
    let seen = store.routing_instances(t0() + Duration::seconds(1)).await.unwrap();
    assert_eq!(seen.len(), 1, "a silent instance is forgotten");

    // The generation the database had a while ago, from the samples.
    let keep = t0() - Duration::hours(1);
    assert_eq!(
        store.sample_routing_generation(5, t0(), keep, t0() - Duration::seconds(1)).await.unwrap(),
        None
    );
    let t1 = t0() + Duration::seconds(30);
    assert_eq!(
        store.sample_routing_generation(8, t1, keep, t1 - Duration::seconds(10)).await.unwrap(),
        Some((5, t0()))
    );
    let t2 = t1 + Duration::seconds(30);
    assert_eq!(
        store.sample_routing_generation(9, t2, t2, t2 - Duration::seconds(10)).await.unwrap(),
        Some((8, t1)),
        "the newest sample old enough stays when older ones are pruned"
    );
}

async fn the_heartbeat_moves_once_per_gap_however_many_beat(store: Store) {
    // A database migrated just now has a beat from the migration, and is no replica.
    let first = store.routing_heartbeat().await.unwrap();
    assert!(!first.replica);
    let at = first.beat_at.expect("a heartbeat row from the migration");
    assert!((first.now - at).abs() < Duration::minutes(5), "{at} vs {}", first.now);
    // Younger than the gap: nobody writes.
    assert!(!store.beat_routing_heartbeat(3_600_000).await.unwrap());
    assert_eq!(store.routing_heartbeat().await.unwrap().beat_at, Some(at));
    // Ten instances beating at once with no gap left: the beat moves, forward.
    let store = Arc::new(store);
    let mut beats = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        beats.push(tokio::spawn(async move { store.beat_routing_heartbeat(0).await.unwrap() }));
    }
    let mut wrote = 0;
    for b in beats {
        wrote += usize::from(b.await.unwrap());
    }
    assert!(wrote >= 1);
    let moved = store.routing_heartbeat().await.unwrap().beat_at.unwrap();
    assert!(moved >= at, "{moved} < {at}");
    // With a gap of an hour the ten would have made none: one beat per gap whoever beats.
    let mut wrote = 0;
    for _ in 0..10 {
        wrote += usize::from(store.beat_routing_heartbeat(3_600_000).await.unwrap());
    }
    assert_eq!(wrote, 0);
}

/// The reconciler's read of a customer's numbers (below sqlx on SQLite) gives what the same query
/// through sqlx gives by number: state, customer, its linked account and trunk, when it entered its
/// state (to the microsecond), and whether a push is still waiting.
async fn a_customers_numbers_read_for_reconciliation_are_the_same_read_by_number(store: Store) {
    use domain::customer::OrderPick;
    use domain::number::NumberAttrs;
    use domain::onboarding::StoredTokens;
    use domain::trunk::{NumberingRule, TrunkName, ZoomTrunk};
    use domain::{Actor, Number, PhoneNumber};
    let by = Actor::Operator("ops@carrier.example".into());
    let at = t0() + Duration::microseconds(123_457);
    let batch: Vec<_> = (0..5)
        .map(|i| {
            let e164 = PhoneNumber::parse(&format!("+1555010010{i}")).unwrap();
            Number::imported(e164, NumberAttrs::default(), &by, at)
        })
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let acme = testkit::insert_customer(&store, "Acme").await;
    let rule = NumberingRule::new("1", "1", "011").unwrap();
    let trunk = ZoomTrunk::parse("zoom-a", &["sip:a.zoom.example"], rule, at).unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let name = TrunkName::parse("zoom-a").unwrap();
    assert!(store.set_customer_trunk(acme, Some(&name)).await.unwrap());
    let pick = OrderPick { count: 3, ..Default::default() };
    store.create_order(acme, &pick, &[], false, &by, at).await.unwrap().unwrap();
    let tokens = StoredTokens {
        access_token: "k1:access".into(),
        refresh_token: "k1:refresh".into(),
        expires_at: at + Duration::hours(1),
        generation: 0,
    };
    let account = ZoomAccountId::parse("acmeZoomAccount").unwrap();
    store
        .link_zoom_account(acme, &account, "u", &tokens, "Carrier", &by, at)
        .await
        .unwrap()
        .unwrap();

    let mut mine = store.held_by_customer(acme).await.unwrap();
    mine.sort_by(|a, b| a.e164.cmp(&b.e164));
    let numbers: Vec<PhoneNumber> = batch.iter().map(|(n, _)| n.e164.clone()).collect();
    let mut by_number = store.held_among(&numbers).await.unwrap();
    by_number.retain(|h| h.customer == Some(acme));
    by_number.sort_by(|a, b| a.e164.cmp(&b.e164));
    assert_eq!(mine, by_number);
    assert_eq!(mine.len(), 3, "{mine:?}");
    for h in &mine {
        assert_eq!(h.account.as_deref(), Some("acmeZoomAccount"));
        assert_eq!(h.trunk.as_deref(), Some("zoom-a"));
        assert!(h.job_open, "the push the link queued is waiting: {h:?}");
        assert_eq!(h.since, at);
    }
    // Numbers of a customer with no trunk, no link and nothing waiting, written by the bulk import.
    let globex = testkit::insert_customer(&store, "Globex").await;
    let theirs: Vec<_> = (0..2)
        .map(|i| {
            let e164 = PhoneNumber::parse(&format!("+1555010020{i}")).unwrap();
            let (mut n, e) = Number::imported(e164, NumberAttrs::default(), &by, at);
            (n.state, n.customer_id) = (domain::NumberState::Active, Some(globex));
            (n, e)
        })
        .collect();
    store.insert_numbers(&theirs, &|_| {}).await.unwrap();
    let mut held = store.held_by_customer(globex).await.unwrap();
    held.sort_by(|a, b| a.e164.cmp(&b.e164));
    let numbers: Vec<PhoneNumber> = theirs.iter().map(|(n, _)| n.e164.clone()).collect();
    let mut by_number = store.held_among(&numbers).await.unwrap();
    by_number.sort_by(|a, b| a.e164.cmp(&b.e164));
    assert_eq!(held, by_number);
    assert_eq!(held.len(), 2, "{held:?}");
    for h in &held {
        assert_eq!((h.account.as_deref(), h.trunk.as_deref(), h.job_open), (None, None, false));
        assert_eq!((h.state, h.since), (domain::NumberState::Active, at));
    }
    let initech = testkit::insert_customer(&store, "Initech").await;
    assert!(store.held_by_customer(initech).await.unwrap().is_empty());
}
