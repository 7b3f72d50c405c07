//! Emergency addresses, caller ID names and Zoom's capability fields in the store, identically on
//! SQLite and PostgreSQL: events kept once, the newest current, another customer's number refused.

use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::search::NumberQuery;
use domain::zoom_facts::{
    Cnam, EmergencyAddress, FactChange, FactOutcome, ZoomListing, ZoomNumberEvent,
};
use domain::{Actor, CustomerId, Number, NumberId, NumberState, PhoneNumber, ZoomAccountId};
use store::Store;
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    an_event_is_kept_once_and_an_older_one_does_not_replace_the_current_value,
    another_customers_number_is_refused_and_its_own_customer_may_set_it,
    two_instances_recording_the_same_event_keep_it_once,
    listed_capabilities_are_kept_and_the_missing_address_filter_counts_active_numbers,
    a_listing_of_thousands_of_numbers_is_kept_whole,
    a_number_sold_again_to_the_same_customer_starts_without_an_address,
);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

/// `e164` in `state`, the customer's, written straight to the store.
async fn number(store: &Store, e164: &str, customer: CustomerId, state: NumberState) -> NumberId {
    let by = Actor::System("test".into());
    let (mut n, e) =
        Number::imported(PhoneNumber::parse(e164).unwrap(), NumberAttrs::default(), &by, now());
    n.state = state;
    n.customer_id = Some(customer);
    store.insert_numbers(&[(n.clone(), e)], &|_| {}).await.unwrap();
    n.id
}

fn address(line1: &str) -> FactChange {
    FactChange::EmergencyAddress {
        address: EmergencyAddress::new(
            line1,
            None,
            Some("SAN JOSE"),
            Some("95113"),
            Some("CA"),
            Some("US"),
        )
        .unwrap(),
    }
}

fn event(id: &str, ts: i64, numbers: &[&str], change: FactChange) -> ZoomNumberEvent {
    ZoomNumberEvent {
        event_id: id.into(),
        account: ZoomAccountId::parse("acmeCorpZoomAccount0001").unwrap(),
        event_ts: ts,
        numbers: numbers.iter().map(|n| PhoneNumber::parse(n).unwrap()).collect(),
        change,
    }
}

async fn line1(store: &Store, id: NumberId) -> Option<String> {
    let facts = store.number_facts(&[id]).await.unwrap();
    facts.get(&id).and_then(|f| f.emergency_address.as_ref()).map(|a| a.line1().to_owned())
}

async fn an_event_is_kept_once_and_an_older_one_does_not_replace_the_current_value(store: Store) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let id = number(&store, "+15550100000", acme, NumberState::Active).await;
    let newer = event("e2", 2_000, &["+15550100000"], address("2 NEW ST"));
    let older = event("e1", 1_000, &["+15550100000"], address("1 OLD ST"));

    assert_eq!(
        store.record_number_fact(acme, &newer, now()).await.unwrap(),
        [FactOutcome::Recorded]
    );
    assert_eq!(
        store.record_number_fact(acme, &newer, now()).await.unwrap(),
        [FactOutcome::AlreadyRecorded],
        "a redelivery is the same event"
    );
    // The older change arrives late: kept in the history, not made current.
    assert_eq!(
        store.record_number_fact(acme, &older, now()).await.unwrap(),
        [FactOutcome::Recorded]
    );
    assert_eq!(line1(&store, id).await.as_deref(), Some("2 NEW ST"));

    let cnam = event(
        "c1",
        1_500,
        &["+15550100000"],
        FactChange::Cnam { cnam: Cnam::parse("ACME").unwrap() },
    );
    store.record_number_fact(acme, &cnam, now()).await.unwrap();
    let facts = store.number_facts(&[id]).await.unwrap().remove(&id).unwrap();
    assert_eq!(facts.cnam.as_ref().map(Cnam::as_str), Some("ACME"));
    assert_eq!(facts.emergency_address_changed_at.map(|t| t.unix_timestamp()), Some(2));
    assert_eq!(facts.emergency_address.unwrap().one_line(), "2 NEW ST, SAN JOSE, CA 95113, US");

    let history = store.number_fact_history(id).await.unwrap();
    let ids: Vec<&str> = history.iter().map(|h| h.event_id.as_str()).collect();
    assert_eq!(ids, ["e2", "c1", "e1"], "every event, newest change first");
    assert_eq!(history[0].zoom_account, "acmeCorpZoomAccount0001");
    assert_eq!(history[0].received_at, now());
}

async fn another_customers_number_is_refused_and_its_own_customer_may_set_it(store: Store) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let beta = testkit::insert_customer(&store, "Beta").await;
    let mine = number(&store, "+15550100000", acme, NumberState::Active).await;
    let theirs = number(&store, "+15550100001", beta, NumberState::Active).await;
    let e =
        event("e1", 1_000, &["+15550100000", "+15550100001", "+15550100002"], address("1 MAIN ST"));
    assert_eq!(
        store.record_number_fact(acme, &e, now()).await.unwrap(),
        [FactOutcome::Recorded, FactOutcome::NotTheCustomers, FactOutcome::NotTheCustomers]
    );
    assert_eq!(line1(&store, mine).await.as_deref(), Some("1 MAIN ST"));
    assert_eq!(line1(&store, theirs).await, None);
    assert!(store.number_fact_history(theirs).await.unwrap().is_empty());

    // Beta's own account may set Beta's number.
    store
        .record_number_fact(
            beta,
            &event("e9", 9_000, &["+15550100001"], address("9 BETA RD")),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(line1(&store, theirs).await.as_deref(), Some("9 BETA RD"));
    assert_eq!(line1(&store, mine).await.as_deref(), Some("1 MAIN ST"));
}

async fn two_instances_recording_the_same_event_keep_it_once(store: Store) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let id = number(&store, "+15550100000", acme, NumberState::Active).await;
    let e = event("same", 1_000, &["+15550100000"], address("1 MAIN ST"));
    let (a, b) = tokio::join!(
        store.record_number_fact(acme, &e, now()),
        store.record_number_fact(acme, &e, now())
    );
    let mut outcomes = [a.unwrap()[0], b.unwrap()[0]];
    outcomes.sort_by_key(|o| *o as u8);
    assert_eq!(outcomes, [FactOutcome::Recorded, FactOutcome::AlreadyRecorded]);
    assert_eq!(store.number_fact_history(id).await.unwrap().len(), 1);
}

async fn listed_capabilities_are_kept_and_the_missing_address_filter_counts_active_numbers(
    store: Store,
) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let us = number(&store, "+15550100000", acme, NumberState::Active).await;
    let us2 = number(&store, "+15550100001", acme, NumberState::Active).await;
    let uk = number(&store, "+442071234567", acme, NumberState::Active).await;
    number(&store, "+15550100002", acme, NumberState::Provisioning).await;
    let listing = ZoomListing {
        voice_direction: Some("INBOUND_ONLY".into()),
        message_capability: Some("NOT_APPLICABLE".into()),
        outbound_dialer_not_supported: Some(true),
        ..ZoomListing::default()
    };
    store
        .record_zoom_listing(
            acme,
            &[
                (PhoneNumber::parse("+15550100000").unwrap(), listing.clone()),
                (PhoneNumber::parse("+19990000000").unwrap(), listing.clone()),
            ],
            now(),
        )
        .await
        .unwrap();
    let facts = store.number_facts(&[us, us2]).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[&us].listing.as_ref(), Some(&listing));
    assert_eq!(facts[&us].listed_at, Some(now()));
    assert_eq!(facts[&us].emergency_address, None, "a listing brings no address");

    let missing = |prefixes: &[&str]| {
        let q = NumberQuery {
            limit: 100,
            emergency_address_missing: Some(prefixes.iter().map(|p| p.to_string()).collect()),
            ..NumberQuery::default()
        };
        let store = store.clone();
        async move {
            let found: Vec<NumberId> =
                store.search_numbers(&q).await.unwrap().into_iter().map(|n| n.id).collect();
            let count = store
                .count_missing_emergency_address(q.emergency_address_missing.as_deref().unwrap())
                .await
                .unwrap();
            assert_eq!(found.len() as i64, count);
            found
        }
    };
    assert_eq!(missing(&[]).await, [us, us2, uk]);
    assert_eq!(missing(&["+1"]).await, [us, us2]);
    assert_eq!(missing(&["+44", "+33"]).await, [uk]);
    store
        .record_number_fact(acme, &event("e1", 1, &["+15550100001"], address("1 MAIN ST")), now())
        .await
        .unwrap();
    assert_eq!(missing(&["+1"]).await, [us]);
}

async fn a_listing_of_thousands_of_numbers_is_kept_whole(store: Store) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let by = Actor::System("test".into());
    let batch: Vec<_> = (0..2_500u64)
        .map(|i| {
            let e164 = PhoneNumber::parse(&format!("+1555020{i:04}")).unwrap();
            let (mut n, e) = Number::imported(e164, NumberAttrs::default(), &by, now());
            n.state = NumberState::Active;
            n.customer_id = Some(acme);
            (n, e)
        })
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let listing = |direction: &str| ZoomListing {
        voice_direction: Some(direction.into()),
        ..ZoomListing::default()
    };
    let listed: Vec<(PhoneNumber, ZoomListing)> =
        batch.iter().map(|(n, _)| (n.e164.clone(), listing("INBOUND_ONLY"))).collect();
    let started = std::time::Instant::now();
    store.record_zoom_listing(acme, &listed, now()).await.unwrap();
    // Listed again: every row updated in place.
    let listed: Vec<_> = listed.into_iter().map(|(n, _)| (n, listing("OUTBOUND_ONLY"))).collect();
    store.record_zoom_listing(acme, &listed, now()).await.unwrap();
    eprintln!("{}: two listings of 2,500 numbers kept in {:?}", store.backend(), started.elapsed());
    let ids: Vec<NumberId> = batch.iter().map(|(n, _)| n.id).collect();
    let facts = store.number_facts(&ids).await.unwrap();
    assert_eq!(facts.len(), 2_500);
    assert!(facts.values().all(|f| f.listing == Some(listing("OUTBOUND_ONLY"))));
}

/// What Zoom said of a number belongs to one holding of it: a number the customer gave back and
/// ordered again is a new number in Zoom, with no emergency address until the customer sets one.
async fn a_number_sold_again_to_the_same_customer_starts_without_an_address(store: Store) {
    let acme = testkit::insert_customer(&store, "Acme").await;
    let by = Actor::System("test".into());
    let e164 = PhoneNumber::parse("+15550100009").unwrap();
    let (n, e) = Number::imported(e164.clone(), NumberAttrs::default(), &by, now());
    let id = n.id;
    store.insert_numbers(&[(n, e)], &|_| {}).await.unwrap();
    let pick = OrderPick { count: 1, ..Default::default() };
    let (first, _) = store
        .create_order(acme, &pick, std::slice::from_ref(&e164), false, &by, now())
        .await
        .unwrap()
        .unwrap();
    let set = event("e1", 1_000, &["+15550100009"], address("1 FIRST ST"));
    assert_eq!(store.record_number_fact(acme, &set, now()).await.unwrap(), [FactOutcome::Recorded]);
    assert_eq!(line1(&store, id).await.as_deref(), Some("1 FIRST ST"));

    store.cancel_order(first.id, Some(acme), &by, now()).await.unwrap().unwrap();
    store.create_order(acme, &pick, &[e164], false, &by, now()).await.unwrap().unwrap();
    assert_eq!(
        line1(&store, id).await,
        None,
        "the address of the earlier holding is not the new one's"
    );

    let history = store.number_fact_history(id).await.unwrap();
    assert_eq!(history.len(), 1, "the history of the earlier holding is kept");
}
