//! `/api/v1/trunks` and a customer's `zoom_trunk` (issue 7), on both databases.

mod api_support;

use api_support::Api;
use reqwest::Method;
use serde_json::json;
use testkit::Db;

on_both!(
    trunk_is_created_read_changed_and_deleted,
    bad_trunk_fields_are_named,
    customer_is_bound_to_a_trunk_which_then_cannot_be_deleted,
);

fn new_trunk(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "destinations": ["sip:zoom-trunk-a.example:5061;transport=tls", "sip:zoom-trunk-b.example:5061;transport=tls"],
        "numbering": {"country_code": "1", "national_prefix": "1", "international_prefix": "011"},
    })
}

async fn trunk_is_created_read_changed_and_deleted(db: Db) {
    let api = Api::spawn(db).await;
    assert_eq!(api.get("/trunks").await.ok(200)["trunks"], json!([]));
    let r = api.post("/trunks", new_trunk("carrier-us-east")).await;
    assert_eq!(r.headers["location"], "/api/v1/trunks/carrier-us-east");
    let t = r.ok(201);
    assert_eq!(t["destinations"][1], "sip:zoom-trunk-b.example:5061;transport=tls");
    assert_eq!(t["numbering"]["international_prefix"], "011");

    let p = api.post("/trunks", new_trunk("carrier-us-east")).await.problem(409);
    assert_eq!(p["field"], "name");

    let change = json!({"destinations": ["sips:zoom-new.example"], "numbering": {"country_code": "44", "national_prefix": "0", "international_prefix": "00"}});
    let t =
        api.send(api.request(Method::PUT, "/trunks/carrier-us-east").json(&change)).await.ok(200);
    assert_eq!(t["destinations"], json!(["sips:zoom-new.example"]));
    assert_eq!(api.get("/trunks/carrier-us-east").await.ok(200)["numbering"]["country_code"], "44");
    assert_eq!(api.get("/trunks").await.ok(200)["trunks"].as_array().unwrap().len(), 1);

    let gone = api.send(api.request(Method::DELETE, "/trunks/carrier-us-east")).await.ok(200);
    assert_eq!(gone["name"], "carrier-us-east");
    api.get("/trunks/carrier-us-east").await.problem(404);
    api.send(api.request(Method::DELETE, "/trunks/carrier-us-east")).await.problem(404);
    api.send(api.request(Method::PUT, "/trunks/carrier-us-east").json(&change)).await.problem(404);
}

async fn bad_trunk_fields_are_named(db: Db) {
    let api = Api::spawn(db).await;
    let mut cases = Vec::new();
    let mut t = new_trunk("has space");
    cases.push((t.clone(), "name"));
    t = new_trunk("ok");
    t["destinations"] = json!(["http://not-sip.example"]);
    cases.push((t.clone(), "destinations"));
    t["destinations"] = json!([]);
    cases.push((t.clone(), "destinations"));
    t = new_trunk("ok");
    t["numbering"]["country_code"] = json!("0");
    cases.push((t.clone(), "country_code"));
    t = new_trunk("ok");
    t["numbering"]["international_prefix"] = json!("x");
    cases.push((t.clone(), "international_prefix"));
    for (body, field) in cases {
        let p = api.post("/trunks", body.clone()).await.problem(422);
        assert_eq!(p["field"], field, "{body} -> {p}");
    }
    assert_eq!(api.get("/trunks").await.ok(200)["trunks"], json!([]));
}

async fn customer_is_bound_to_a_trunk_which_then_cannot_be_deleted(db: Db) {
    let api = Api::spawn(db).await;
    api.post("/trunks", new_trunk("zoom-a")).await.ok(201);
    let customer = api.customer("C-1").await;
    assert_eq!(api.get(&format!("/customers/{customer}")).await.ok(200)["zoom_trunk"], json!(null));

    let p = api
        .post(&format!("/customers/{customer}/trunk"), json!({"zoom_trunk": "no-such"}))
        .await
        .problem(422);
    assert_eq!(p["field"], "zoom_trunk");
    let c = api
        .post(&format!("/customers/{customer}/trunk"), json!({"zoom_trunk": "zoom-a"}))
        .await
        .ok(200);
    assert_eq!(c["zoom_trunk"], "zoom-a");
    assert_eq!(api.get("/customers").await.ok(200)["customers"][0]["zoom_trunk"], "zoom-a");

    let p = api.send(api.request(Method::DELETE, "/trunks/zoom-a")).await.problem(409);
    assert!(p["detail"].as_str().unwrap().contains("1 customer(s) use trunk zoom-a"), "{p}");
    api.get("/trunks/zoom-a").await.ok(200);

    api.post(
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/trunk",
        json!({"zoom_trunk": "zoom-a"}),
    )
    .await
    .problem(404);
    let c = api
        .post(&format!("/customers/{customer}/trunk"), json!({"zoom_trunk": null}))
        .await
        .ok(200);
    assert_eq!(c["zoom_trunk"], json!(null));
    api.send(api.request(Method::DELETE, "/trunks/zoom-a")).await.ok(200);
}
