//! Zoom trunks and the customer → trunk binding (issue 7), checked identically on SQLite and PostgreSQL.

use domain::customer::{ContractState, Customer};
use domain::trunk::{NumberingRule, TrunkName, ZoomTrunk};
use domain::CustomerId;
use store::{DbError, Store};
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    trunks_are_created_listed_changed_and_deleted,
    customer_is_bound_to_a_trunk_that_then_cannot_be_deleted
);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn trunk(name: &str, destinations: &[&str]) -> ZoomTrunk {
    ZoomTrunk::parse(name, destinations, NumberingRule::new("44", "0", "00").unwrap(), now())
        .unwrap()
}

async fn trunks_are_created_listed_changed_and_deleted(store: Store) {
    store.insert_trunk(&trunk("zoom-b", &["sip:b.zoom.example"])).await.unwrap();
    store
        .insert_trunk(&trunk(
            "zoom-a",
            &["sip:a1.zoom.example:5061;transport=tls", "sip:a2.zoom.example:5061;transport=tls"],
        ))
        .await
        .unwrap();
    match store.insert_trunk(&trunk("zoom-a", &["sip:x.example"])).await {
        Err(DbError::Conflict { constraint }) => assert_eq!(constraint, "zoom_trunks_pkey"),
        other => panic!("duplicate trunk: {other:?}"),
    }

    let all = store.list_trunks().await.unwrap();
    assert_eq!(all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["zoom-a", "zoom-b"]);
    let a = store.get_trunk(&name("zoom-a")).await.unwrap().unwrap();
    assert_eq!(
        a.destinations.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        ["sip:a1.zoom.example:5061;transport=tls", "sip:a2.zoom.example:5061;transport=tls"]
    );
    assert_eq!(a.numbering, NumberingRule::new("44", "0", "00").unwrap());
    assert_eq!(a.created_at, now());

    let mut changed = a.clone();
    changed.destinations = trunk("x", &["sip:new.zoom.example"]).destinations;
    changed.numbering = NumberingRule::nanp();
    assert!(store.update_trunk(&changed).await.unwrap());
    let a = store.get_trunk(&name("zoom-a")).await.unwrap().unwrap();
    assert_eq!(
        (a.destinations[0].as_str(), a.destinations.len(), a.numbering.clone()),
        ("sip:new.zoom.example", 1, NumberingRule::nanp())
    );
    assert!(!store.update_trunk(&trunk("nope", &["sip:x.example"])).await.unwrap());

    assert!(store.delete_trunk(&name("zoom-b")).await.unwrap());
    assert!(!store.delete_trunk(&name("zoom-b")).await.unwrap());
    assert!(store.get_trunk(&name("zoom-b")).await.unwrap().is_none());
}

async fn customer_is_bound_to_a_trunk_that_then_cannot_be_deleted(store: Store) {
    store.insert_trunk(&trunk("zoom-a", &["sip:a.zoom.example"])).await.unwrap();
    let c = Customer {
        id: CustomerId::new(),
        name: "Acme".into(),
        contract_ref: "C-1".into(),
        contract_state: ContractState::Active,
        created_at: now(),
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&c).await.unwrap();
    assert_eq!(store.get_customer(c.id).await.unwrap().unwrap().zoom_trunk, None);

    assert!(store.set_customer_trunk(c.id, Some(&name("zoom-a"))).await.unwrap());
    assert_eq!(
        store.get_customer(c.id).await.unwrap().unwrap().zoom_trunk.as_ref().map(TrunkName::as_str),
        Some("zoom-a")
    );
    assert_eq!(
        store.list_customers().await.unwrap()[0].zoom_trunk.as_ref().map(TrunkName::as_str),
        Some("zoom-a")
    );
    assert_eq!(store.customers_on_trunk(&name("zoom-a")).await.unwrap(), 1);
    assert!(!store.delete_trunk(&name("zoom-a")).await.unwrap(), "a trunk in use stays");
    assert!(store.get_trunk(&name("zoom-a")).await.unwrap().is_some());

    // The foreign key refuses a trunk that does not exist.
    assert!(store.set_customer_trunk(c.id, Some(&name("no-such-trunk"))).await.is_err());
    assert!(!store.set_customer_trunk(CustomerId::new(), Some(&name("zoom-a"))).await.unwrap());

    assert!(store.set_customer_trunk(c.id, None).await.unwrap());
    assert_eq!(store.get_customer(c.id).await.unwrap().unwrap().zoom_trunk, None);
    assert!(store.delete_trunk(&name("zoom-a")).await.unwrap());
}

fn name(s: &str) -> TrunkName {
    TrunkName::parse(s).unwrap()
}
