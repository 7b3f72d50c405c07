//! The import on both databases, through the use-case as operators run it and through the store's
//! bulk path: every number validated (bad rows named by row and field, nothing half-applied),
//! duplicates within the file and against the inventory refused and named, each number written with
//! its audit event in one transaction, all or nothing however many slices and statements it takes.

use domain::number::NumberAttrs;
use domain::{Actor, Number, NumberEvent, NumberState, PhoneNumber};
use std::collections::HashSet;
use std::sync::Arc;
use store::{DbError, Store};
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    bad_rows_in_the_middle_of_a_big_file_import_nothing,
    duplicates_in_the_file_and_in_the_inventory_are_named_and_import_nothing,
    good_big_file_imports_every_number_with_its_event,
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
        let n = store
            .get_number_by_e164(&domain::PhoneNumber::parse(e164).unwrap())
            .await
            .unwrap()
            .expect("imported");
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
    assert!(store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100000").unwrap())
        .await
        .unwrap()
        .is_none());
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
            let e164 = |n: &u64| PhoneNumber::parse(&format!("+{n}")).unwrap();
            let e164s: Vec<PhoneNumber> = asked.iter().map(e164).collect();
            let refs: Vec<&PhoneNumber> = e164s.iter().collect();
            let found = store.existing_numbers(&refs).await.unwrap();
            let want: HashSet<PhoneNumber> =
                asked.iter().filter(|n| present.contains(n)).map(e164).collect();
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

fn app(store: &Store) -> app::App {
    app::App::new(store.clone(), Arc::new(domain::SystemClock), app::Settings::default())
}

/// A CSV of `count` numbers from `first`, rows 2 to `count + 1`, with `edit` applied to some lines
/// (given the row as a spreadsheet shows it).
fn csv(first: u64, count: u64, edit: impl Fn(usize, String) -> String) -> Vec<u8> {
    let mut out = String::from("number,tags,region,note\n");
    for i in 0..count {
        let row = i as usize + 2;
        let line = format!("+{},bulk;us,US,line {row}", first + i);
        out.push_str(&edit(row, line));
        out.push('\n');
    }
    out.into_bytes()
}

async fn import_csv(store: &Store, file: &[u8]) -> app::inventory::ImportOutcome {
    let plan = domain::import::parse_csv(file);
    app(store).import_numbers(plan, &Actor::System("test".into()), false, &|_| {}).await.unwrap()
}

fn named(outcome: &app::inventory::ImportOutcome) -> Vec<(usize, Option<&str>, &str)> {
    outcome.errors.iter().map(|e| (e.row, e.column.as_deref(), e.reason.as_str())).collect()
}

/// Twelve thousand rows (more than two of the SQLite path's slices) with a bad number and a bad tag
/// in the middle: both are named by row and field, and not one of the good rows is written.
async fn bad_rows_in_the_middle_of_a_big_file_import_nothing(store: Store) {
    let file = csv(15550100000, 12_000, |row, line| match row {
        6_001 => line.replacen("+1555", "+0555", 1),
        9_000 => line.replacen("bulk;us", "bulk;u$", 1),
        _ => line,
    });
    let outcome = import_csv(&store, &file).await;
    assert_eq!(outcome.added, 0);
    let errors = named(&outcome);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!((errors[0].0, errors[0].1), (6_001, Some("number")));
    assert!(errors[0].2.starts_with("not E.164"), "{errors:?}");
    assert_eq!((errors[1].0, errors[1].1), (9_000, Some("tags")));
    assert!(store.count_by_state().await.unwrap().is_empty());
    assert!(store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100000").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550111999").unwrap())
        .await
        .unwrap()
        .is_none());
}

/// A number twice in the file and two numbers already in the inventory, far apart in a big file:
/// each is named by its row, nothing is written, and the inventory's numbers keep their one event.
async fn duplicates_in_the_file_and_in_the_inventory_are_named_and_import_nothing(store: Store) {
    store.insert_numbers(&numbers(15550107000, 1), &|_| {}).await.unwrap();
    store.insert_numbers(&numbers(15550111000, 1), &|_| {}).await.unwrap();
    let file = csv(15550100000, 12_000, |row, line| match row {
        // Row 10,002 repeats row 3's number.
        10_002 => line.replacen("+15550110000", "+15550100001", 1),
        _ => line,
    });
    let outcome = import_csv(&store, &file).await;
    assert_eq!(outcome.added, 0);
    assert_eq!(
        named(&outcome),
        vec![
            (7_002, Some("number"), "already in inventory"),
            (10_002, Some("number"), "duplicate in file (first on row 3)"),
            (11_002, Some("number"), "already in inventory"),
        ]
    );
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 2)]);
    assert!(store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100000").unwrap())
        .await
        .unwrap()
        .is_none());
    let kept = store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550107000").unwrap())
        .await
        .unwrap()
        .expect("in inventory");
    assert_eq!(kept.tags, vec!["bulk"]);
    assert_eq!(store.number_events(kept.id).await.unwrap().len(), 1);
}

/// The same big file without the bad rows: every number is written with its columns and exactly one
/// creation event naming who imported it.
async fn good_big_file_imports_every_number_with_its_event(store: Store) {
    let outcome = import_csv(&store, &csv(15550100000, 12_000, |_, line| line)).await;
    assert!(outcome.errors.is_empty(), "{:?}", named(&outcome));
    assert_eq!(outcome.added, 12_000);
    assert_eq!(store.count_by_state().await.unwrap(), vec![(NumberState::Available, 12_000)]);
    for (e164, row) in [("+15550100000", 2), ("+15550106000", 6_002), ("+15550111999", 12_001)] {
        let n = store
            .get_number_by_e164(&domain::PhoneNumber::parse(e164).unwrap())
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(n.tags, vec!["bulk", "us"]);
        assert_eq!(n.region.as_deref(), Some("US"));
        assert_eq!(n.note, Some(format!("line {row}")));
        let events = store.number_events(n.id).await.unwrap();
        assert_eq!(events.len(), 1, "{e164}");
        assert_eq!((events[0].from, events[0].to), (None, NumberState::Available));
        assert_eq!(events[0].actor, "system:test");
        assert_eq!(events[0].reason.as_deref(), Some("imported"));
    }
}
