//! Usage records and the mail outbox over the JSON API, on both databases: records taken once are
//! exported as JSON and CSV and agree with the inventory; bad input is a 400 naming the field; the
//! billing reference is set through the customer API and carried on the records.

mod api_support;

use api_support::Api;
use serde_json::json;
use testkit::Db;

on_both!(
    usage_is_exported_as_json_and_csv_and_bad_input_names_the_field,
    mails_are_listed_for_operators,
);

async fn usage_is_exported_as_json_and_csv_and_bad_input_names_the_field(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    let path = format!("/customers/{customer}/billing_ref");
    let c = api.post(&path, json!({"billing_ref": " ACCT-7 "})).await;
    assert_eq!(c.ok(200)["billing_ref"], "ACCT-7");
    api.post("/orders", json!({"customer_id": customer, "count": 3})).await.ok(201);
    let (day, made) = api.t.app.take_usage(None).await.unwrap();
    assert_eq!(made, 1);
    assert_eq!(api.t.app.take_usage(None).await.unwrap().1, 0, "once a day");

    let body = api.get(&format!("/usage?from={day}&to={day}&customer={customer}")).await.ok(200);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["billing_ref"], "ACCT-7");
    assert_eq!(records[0]["day"], day.as_str());
    // Against the inventory: the customer's numbers as the API lists them.
    let held = api.all_numbers(&format!("customer_id={customer}")).await;
    assert_eq!(records[0]["reserved"], held.iter().filter(|n| n["state"] == "reserved").count());
    assert_eq!(records[0]["reserved"], 3);

    let csv = api.get("/usage?format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    let mut lines = csv.text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("day,customer_id,customer_name,billing_ref,reserved"));
    let row = lines.next().unwrap();
    assert!(row.starts_with(&format!("{day},{customer},")) && row.contains(",ACCT-7,3,"), "{row}");

    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-11-02&to=2026-11-01", "to"),
        ("from=0001-01-01&to=9999-12-31", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("customer=nope", "customer"),
        ("customer=0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "customer"),
        ("format=xml", "format"),
    ] {
        let p = api.get(&format!("/usage?{query}")).await.problem(400);
        assert_eq!(p["field"], field, "{query}: {p}");
    }
}

async fn mails_are_listed_for_operators(db: Db) {
    let api = Api::spawn(db).await;
    let all = api.get("/mails").await.ok(200);
    assert!(all["mails"].as_array().unwrap().is_empty());
    let p = api.get("/mails?state=lost").await.problem(422);
    assert_eq!(p["field"], "state");
    api.get("/mails?state=failed").await.ok(200);
    let missing = api.post("/mails/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/retry", json!({})).await;
    missing.problem(404);
}
