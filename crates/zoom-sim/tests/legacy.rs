//! The legacy Phone API generation over the same numbers: integer flags, its own field names, and
//! partial results inside a 2xx body.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

const LEGACY: &str = "/v2/phone/peering/numbers";
const NEW: &str = "/v2/number_management/peering_numbers";

async fn legacy_list(sim: &Sim, token: &str) -> Value {
    let r = api(token).get(sim.url(LEGACY)).send().await.expect("list");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

#[tokio::test]
async fn a_partly_bad_batch_is_created_and_the_rest_come_back_unprocessed() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let body = json!({ "carrier_code": CARRIER_CODE, "phone_numbers": [
        { "phone_number": number(1), "sip_trunk_name": TRUNK, "status": 1, "billing_reference_id": "acct-1" },
        { "phone_number": number(2), "sip_trunk_name": "no-such-trunk", "status": 1 },
        { "phone_number": "12065550003", "sip_trunk_name": TRUNK, "status": 0 },
        { "phone_number": "+0001", "sip_trunk_name": TRUNK, "status": 1 },
    ]});
    let r = api(&token).post(sim.url(LEGACY)).json(&body).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["unprocessed_numbers"],
        json!([
            { "phone_number": number(2), "failure_reason": "Invalid Sip Trunk" },
            { "phone_number": "+0001", "failure_reason": "Invalid number" },
        ])
    );

    let list = legacy_list(&sim, &token).await;
    assert_eq!(list["total_records"], 2);
    assert_eq!(
        list["numbers"][0],
        json!({ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": 1, "assigned": 0, "billing_reference_id": "acct-1" })
    );
    assert_eq!(
        list["numbers"][1]["status"], 0,
        "bare digits were stored as +E.164 and status 0 kept"
    );
    assert_eq!(list["numbers"][1]["phone_number"], "+12065550003");
}

#[tokio::test]
async fn both_generations_see_one_state() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;
    assert_eq!(legacy_list(&sim, &token).await["numbers"][0]["phone_number"], number(1));

    let r = api(&token).patch(sim.url(LEGACY)).json(&json!({ "phone_numbers": [{ "phone_number": number(1), "status": 0, "billing_reference_id": "b-7" }] })).send().await.expect("patch");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["unprocessed_numbers"], json!([]));
    let new: Value =
        api(&token).get(sim.url(NEW)).send().await.expect("get").json().await.expect("json");
    assert_eq!(new["numbers"][0]["status"], false);
    assert_eq!(new["numbers"][0]["billing_ref_id"], "b-7");
}

#[tokio::test]
async fn removing_reports_assigned_and_unknown_numbers_as_unprocessed() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1), number(2)]).await;
    let r = reqwest::Client::new()
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(2))))
        .json(&json!({ "user": ACME_BOB.0 }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);

    let r = api(&token)
        .delete(sim.url(LEGACY))
        .query(&[
            ("phone_numbers", number(1)),
            ("phone_numbers", number(2)),
            ("phone_numbers", "+12065550900".into()),
        ])
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["unprocessed_numbers"],
        json!([
            { "phone_number": number(2), "failure_reason": "Phone number is assigned" },
            { "phone_number": "+12065550900", "failure_reason": "Phone number does not exist" },
        ])
    );
    let list = legacy_list(&sim, &token).await;
    assert_eq!(list["total_records"], 1);
    assert_eq!(list["numbers"][0]["assigned"], 1);
}

#[tokio::test]
async fn the_legacy_limits_and_errors_are_its_own() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let items: Vec<Value> = (0..201)
        .map(|i| json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": 1 }))
        .collect();
    let r = api(&token)
        .post(sim.url(LEGACY))
        .json(&json!({ "phone_numbers": items }))
        .send()
        .await
        .expect("post");
    assert_zoom_error(r, 400, 300).await;
    let r = api(&token).post(sim.url(LEGACY)).json(&json!({ "carrier_code": 1, "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": 1 }] })).send().await.expect("post");
    assert_zoom_error(r, 400, 404).await;
    // Booleans are the new generation's; the legacy one takes 0 or 1, and 33 characters of billing id is too many.
    let r = api(&token).post(sim.url(LEGACY)).json(&json!({ "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": true }] })).send().await.expect("post");
    assert_zoom_error(r, 400, 300).await;
    let r = api(&token).post(sim.url(LEGACY)).json(&json!({ "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": 1, "billing_reference_id": "x".repeat(33) }] })).send().await.expect("post");
    assert_zoom_error(r, 400, 300).await;
    // Pages stop at 200.
    sim.add_numbers(&token, &(0..200).map(number).collect::<Vec<_>>()).await;
    sim.add_numbers(&token, &(200..210).map(number).collect::<Vec<_>>()).await;
    let v: Value = api(&token)
        .get(sim.url(LEGACY))
        .query(&[("page_size", "300")])
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(v["numbers"].as_array().expect("numbers").len(), 200);
    assert!(!v["next_page_token"].as_str().expect("token").is_empty());
}

#[tokio::test]
async fn the_carrier_wide_legacy_listing_uses_integer_flags() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;
    let v: Value = api(&sim.s2s_token().await)
        .get(sim.url("/v2/phone/carrier_peering/numbers"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(v["numbers"][0]["status"], 1);
    assert_eq!(v["numbers"][0]["customer_account_name"], "Acme Robotics");
}
