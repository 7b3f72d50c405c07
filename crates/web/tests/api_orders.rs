//! Orders over the JSON API, on both databases: all numbers reserved or none.

mod api_support;

use api_support::Api;
use serde_json::{json, Value};
use testkit::Db;

on_both!(
    order_is_created_read_listed_and_cancelled,
    order_picks_by_prefix_region_and_tag,
    not_enough_numbers_is_refused_and_nothing_is_reserved,
    explicit_list_with_a_taken_number_reserves_nothing,
    ended_contract_takes_no_orders,
    order_input_is_checked,
    unknown_and_garbage_order_ids_are_not_found,
);

async fn count(api: &Api, query: &str) -> usize {
    api.all_numbers(query).await.len()
}

async fn order_is_created_read_listed_and_cancelled(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;

    let r = api.post("/orders", json!({"customer_id": customer, "count": 3})).await;
    let order = r.ok(201);
    let id = order["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/orders/{id}"));
    assert_eq!(order["state"], "pending");
    assert_eq!(order["number_count"], 3);
    assert_eq!(order["created_by"], "token:test");
    let numbers = order["numbers"].as_array().unwrap();
    assert_eq!(
        numbers.iter().map(|n| n["number"].as_str().unwrap()).collect::<Vec<_>>(),
        ["+15550100000", "+15550100001", "+15550100002"]
    );
    assert!(numbers.iter().all(|n| n["state"] == "reserved"
        && n["customer_id"] == customer.as_str()
        && n["order_id"] == id));

    assert_eq!(api.get(&format!("/orders/{id}")).await.ok(200), order);
    let list = api.get(&format!("/orders?customer_id={customer}")).await.ok(200);
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    assert_eq!(list["orders"][0]["id"], id);
    let other = api.customer("C-2").await;
    assert_eq!(api.get(&format!("/orders?customer_id={other}")).await.ok(200)["orders"], json!([]));

    let cancelled = api.post(&format!("/orders/{id}/cancel"), json!({})).await.ok(200);
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(count(&api, "state=available").await, 10, "the numbers are available again");
    let p = api.post(&format!("/orders/{id}/cancel"), json!({})).await.problem(409);
    assert!(p["detail"].as_str().unwrap().contains("only a pending order can be cancelled"), "{p}");
}

async fn order_picks_by_prefix_region_and_tag(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &["nyc"]).await;
    api.post(
        "/numbers/import",
        json!({"range": "+15550200000-+15550200009", "tags": ["sfo"], "region": "US-CA"}),
    )
    .await
    .ok(200);
    let customer = api.customer("C-1").await;
    let numbers = |order: &Value| {
        order["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["number"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let order = api
        .post("/orders", json!({"customer_id": customer, "count": 2, "tag": "SFO"}))
        .await
        .ok(201);
    assert_eq!(numbers(&order), ["+15550200000", "+15550200001"]);
    let order = api
        .post(
            "/orders",
            json!({"customer_id": customer, "count": 1, "region": "US-CA", "prefix": "1555020000"}),
        )
        .await
        .ok(201);
    assert_eq!(numbers(&order), ["+15550200002"]);
    let order = api
        .post("/orders", json!({"customer_id": customer, "numbers": ["+15550100009"]}))
        .await
        .ok(201);
    assert_eq!(numbers(&order), ["+15550100009"]);
    assert_eq!(count(&api, "state=reserved").await, 4);
}

async fn not_enough_numbers_is_refused_and_nothing_is_reserved(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    let p = api.post("/orders", json!({"customer_id": customer, "count": 11})).await.problem(409);
    assert_eq!(p["detail"], "only 10 matching numbers are available; the order asks for 11");
    let p = api
        .post("/orders", json!({"customer_id": customer, "count": 1, "prefix": "+1666"}))
        .await
        .problem(409);
    assert!(p["detail"].as_str().unwrap().starts_with("only 0 matching numbers"), "{p}");
    assert_eq!(count(&api, "state=reserved").await, 0);
    assert_eq!(api.get("/orders").await.ok(200)["orders"], json!([]));
}

async fn explicit_list_with_a_taken_number_reserves_nothing(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    api.post("/orders", json!({"customer_id": customer, "numbers": ["+15550100005"]}))
        .await
        .ok(201);

    let p = api
        .post(
            "/orders",
            json!({"customer_id": customer, "numbers": ["+15550100004", "+15550100005"]}),
        )
        .await
        .problem(409);
    assert_eq!(p["detail"], "number +15550100005 is not available");
    let p = api
        .post(
            "/orders",
            json!({"customer_id": customer, "numbers": ["+15550100004", "+15559999999"]}),
        )
        .await
        .problem(409);
    assert_eq!(p["detail"], "number +15559999999 is not in the inventory");
    assert_eq!(
        api.all_numbers("state=reserved")
            .await
            .iter()
            .map(|n| n["number"].clone())
            .collect::<Vec<_>>(),
        [json!("+15550100005")]
    );
    assert_eq!(api.get("/orders").await.ok(200)["orders"].as_array().unwrap().len(), 1);
}

async fn ended_contract_takes_no_orders(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    api.post(&format!("/customers/{customer}/contract"), json!({"state": "ended"})).await.ok(200);
    let p = api.post("/orders", json!({"customer_id": customer, "count": 1})).await.problem(409);
    assert!(p["detail"].as_str().unwrap().contains("contract has ended"), "{p}");
    assert_eq!(count(&api, "state=reserved").await, 0);
    api.post(&format!("/customers/{customer}/contract"), json!({"state": "active"})).await.ok(200);
    api.post("/orders", json!({"customer_id": customer, "count": 1})).await.ok(201);
}

async fn order_input_is_checked(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    for (body, field) in [
        (json!({"customer_id": customer}), "count"),
        (json!({"customer_id": customer, "count": 1, "numbers": ["+15550100000"]}), "numbers"),
        (json!({"customer_id": customer, "numbers": ["+15550100000"], "tag": "nyc"}), "numbers"),
        (json!({"customer_id": customer, "numbers": []}), "numbers"),
        (json!({"customer_id": customer, "numbers": ["5550100000"]}), "numbers"),
        (json!({"customer_id": customer, "numbers": ["+15550100000", "+15550100000"]}), "numbers"),
        (json!({"customer_id": customer, "numbers": [15550100000u64]}), "numbers[0]"),
        (json!({"customer_id": customer, "count": 0}), "count"),
        (json!({"customer_id": customer, "count": 10_001}), "count"),
        (json!({"customer_id": customer, "count": -1}), "count"),
        (json!({"customer_id": customer, "count": "3"}), "count"),
        (json!({"customer_id": customer, "count": 1, "prefix": "+1' OR 1=1"}), "prefix"),
        (json!({"customer_id": customer, "count": 1, "tag": "a;b"}), "tag"),
        (json!({"customer_id": customer, "count": 1, "region": "x\u{0}"}), "region"),
        (json!({"customer_id": "0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "count": 1}), "customer_id"),
        (json!({"customer_id": "not-an-id", "count": 1}), "customer_id"),
        (json!({"count": 1}), "customer_id"),
    ] {
        let p = api.post("/orders", body.clone()).await.problem(422);
        assert_eq!(p["field"], field, "{body} -> {p}");
    }
    for bad in ["customer_id=nope", "limit=0", "limit=501"] {
        let p = api.get(&format!("/orders?{bad}")).await.problem(422);
        assert_eq!(p["field"], bad.split('=').next().unwrap());
    }
    assert_eq!(count(&api, "state=reserved").await, 0);
}

async fn unknown_and_garbage_order_ids_are_not_found(db: Db) {
    let api = Api::spawn(db).await;
    for id in ["0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "not-an-id", "%27%3B%20--"] {
        api.get(&format!("/orders/{id}")).await.problem(404);
        api.post(&format!("/orders/{id}/cancel"), json!({})).await.problem(404);
    }
}
