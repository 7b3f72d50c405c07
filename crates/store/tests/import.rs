//! The import's bulk path on both databases: a large import written in several slices and statements
//! is still one transaction, and the existence check finds exactly the numbers present.

use domain::number::NumberAttrs;
use domain::{Actor, Number, NumberEvent, NumberState, PhoneNumber};
use std::collections::HashSet;
use store::{DbError, Store};
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    large_import_writes_every_number_with_its_event,
    import_refused_in_a_later_slice_writes_nothing,
    existing_numbers_are_exactly_those_present,
);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn numbers(first: u64, count: u64) -> Vec<(Number, NumberEvent)> {
    let by = Actor::Operator("ops@carrier.example".into());
    (first..first + count)
        .map(|n| {
            let attrs = NumberAttrs {
                tags: vec!["bulk".into()],
                region: Some("US".into()),
                ..Default::default()
            };
            Number::imported(PhoneNumber::parse(&format!("+{n}")).unwrap(), attrs, &by, now())
        })
        .collect()
}

/// More rows than one slice of the SQLite bulk path (5,000) and not a multiple of its statements'
/// 200 rows, so full and partial statements in two slices all write.
async fn large_import_writes_every_number_with_its_event(store: Store) {
    let batch = numbers(15550100000, 5_201);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    store
        .insert_numbers(&batch, &|n| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert_eq!(seen.into_inner(), 5_201);
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 5_201)]);
    for e164 in ["+15550100000", "+15550104999", "+15550105000", "+15550105200"] {
        let n = store.get_number_by_e164(e164).await.unwrap().expect("imported");
        assert_eq!(n.tags, vec!["bulk"]);
        assert_eq!(n.region.as_deref(), Some("US"));
        assert_eq!(n.updated_at, now());
        let events = store.number_events(n.id).await.unwrap();
        assert_eq!(events.len(), 1, "{e164}");
        assert_eq!(events[0].number_id, n.id);
        assert_eq!((events[0].from, events[0].to), (None, NumberState::Available));
        assert_eq!(events[0].at, now());
        assert_eq!(events[0].actor, "operator:ops@carrier.example");
        assert_eq!(events[0].reason.as_deref(), Some("imported"));
    }
}

/// The clash is in the second slice, after the first one was written: nothing may remain of it.
async fn import_refused_in_a_later_slice_writes_nothing(store: Store) {
    store.insert_numbers(&numbers(15550106000, 1), &|_| {}).await.unwrap();
    let err = store.insert_numbers(&numbers(15550100000, 6_001), &|_| {}).await.unwrap_err();
    match err {
        DbError::Conflict { constraint } => assert_eq!(constraint, "numbers_e164_key"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 1)]);
    assert!(store.get_number_by_e164("+15550100000").await.unwrap().is_none());
    // The store is usable afterwards: the same numbers without the clash go in.
    store.insert_numbers(&numbers(15550100000, 6_000), &|_| {}).await.unwrap();
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 6_001)]);
}

async fn existing_numbers_are_exactly_those_present(store: Store) {
    // A block of 2,500 and 300 numbers spread out beyond it.
    store.insert_numbers(&numbers(15550100000, 2_500), &|_| {}).await.unwrap();
    let spread: Vec<(Number, NumberEvent)> =
        (0..300u64).map(|i| numbers(15550300000 + 7 * i, 1).remove(0)).collect();
    store.insert_numbers(&spread, &|_| {}).await.unwrap();
    let present: HashSet<u64> =
        (15550100000..15550102500).chain((0..300).map(|i| 15550300000 + 7 * i)).collect();
    let check = |asked: Vec<u64>| {
        let store = store.clone();
        let present = present.clone();
        async move {
            let e164s: Vec<String> = asked.iter().map(|n| format!("+{n}")).collect();
            let refs: Vec<&str> = e164s.iter().map(String::as_str).collect();
            let found = store.existing_numbers(&refs).await.unwrap();
            let want: HashSet<String> =
                asked.iter().filter(|n| present.contains(n)).map(|n| format!("+{n}")).collect();
            assert_eq!(found, want, "asked {} numbers from +{}", asked.len(), asked[0]);
        }
    };
    // A block half in the inventory (a few numbers in its span).
    check((15550102000..15550103000).collect()).await;
    // A new block next to the others: nothing.
    check((15550200000..15550201000).collect()).await;
    // A few numbers whose span holds the whole block of 2,500 (many numbers in its span).
    check(vec![15550100005, 15550199999, 15550101234, 15550102499, 15550102500, 15550100000]).await;
    // Unordered, repeated, across the spread-out numbers and beyond: more than one thousand.
    let mut mixed: Vec<u64> = (0..1_500u64).map(|i| 15550300000 + (i * 13) % 2_200).collect();
    mixed.extend([15550300000, 15550300007, 15550100001, 15559999999]);
    check(mixed).await;
}
