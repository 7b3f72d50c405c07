//! Faults beyond "the next N calls": a seeded error rate, timeouts, partial `1000` failures for chosen
//! numbers, and what `/_sim/faults` refuses. (Dropped webhooks are in webhooks.rs.)

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use zoom_sim::{Options, RateLimit};

const PEERING: &str = "/v2/number_management/peering_numbers";
const LEGACY: &str = "/v2/phone/peering/numbers";

async fn post_fault(sim: &Sim, fault: Value) -> reqwest::Response {
    reqwest::Client::new().post(sim.url("/_sim/faults")).json(&fault).send().await.expect("fault")
}

async fn clear_faults(sim: &Sim) {
    let r = reqwest::Client::new().delete(sim.url("/_sim/faults")).send().await.expect("clear");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Which of `calls` GETs failed (true) with the injected 500.
async fn failing_calls(sim: &Sim, token: &str, calls: usize) -> Vec<bool> {
    let mut failed = Vec::new();
    for _ in 0..calls {
        let r = api(token).get(sim.url(PEERING)).send().await.expect("get");
        match r.status().as_u16() {
            200 => failed.push(false),
            500 => {
                assert_zoom_error(r, 500, 500).await;
                failed.push(true);
            }
            other => panic!("unexpected {other}"),
        }
    }
    failed
}

/// The numbers this carrier has in Zoom.
async fn sim_numbers(sim: &Sim) -> Vec<String> {
    let v: Value =
        reqwest::get(sim.url("/_sim/numbers")).await.expect("numbers").json().await.expect("json");
    let ours = v["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .filter(|n| n["carrier_code"] == CARRIER_CODE);
    ours.map(|n| n["phone_number"].as_str().expect("number").to_owned()).collect()
}

#[tokio::test]
async fn an_error_rate_fails_that_share_of_calls_and_the_same_calls_for_the_same_seed() {
    let sim =
        Sim::with(Options { control_api: true, rate_limit: RateLimit::Off, ..Options::default() })
            .await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let fault = json!({ "path": PEERING, "method": "GET", "error_rate": 0.3, "seed": 42 });
    assert_eq!(post_fault(&sim, fault.clone()).await.status(), StatusCode::CREATED);
    let first = failing_calls(&sim, &token, 60).await;
    let failed = first.iter().filter(|f| **f).count();
    assert!((8..=28).contains(&failed), "about 30% of 60 calls fail: {failed}");
    // It lasts until cleared; set again with the same seed, the same calls fail.
    clear_faults(&sim).await;
    post_fault(&sim, fault).await;
    assert_eq!(failing_calls(&sim, &token, 60).await, first);
    // Another seed fails other calls.
    clear_faults(&sim).await;
    post_fault(&sim, json!({ "path": PEERING, "method": "GET", "error_rate": 0.3, "seed": 7 }))
        .await;
    assert_ne!(failing_calls(&sim, &token, 60).await, first);
    // A status other than 500, and a count that ends it.
    clear_faults(&sim).await;
    post_fault(&sim, json!({ "path": PEERING, "error_rate": 1.0, "status": 503, "count": 2 }))
        .await;
    for _ in 0..2 {
        assert_zoom_error(api(&token).get(sim.url(PEERING)).send().await.expect("get"), 503, 503)
            .await;
    }
    assert_eq!(
        api(&token).get(sim.url(PEERING)).send().await.expect("get").status(),
        StatusCode::OK
    );
}

/// The body of a POST adding number `i` on the carrier's trunk.
fn adding(i: usize) -> Value {
    json!({ "phone_numbers": [{ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": true }] })
}

/// POSTs `body` to the peering numbers as a client with no timeout of its own: what came back, and
/// after how long.
async fn post_patiently(
    sim: &Sim,
    token: &str,
    body: &Value,
) -> (reqwest::Result<reqwest::Response>, Duration) {
    let started = Instant::now();
    let answer =
        reqwest::Client::new().post(sim.url(PEERING)).bearer_auth(token).json(body).send().await;
    (answer, started.elapsed())
}

/// POSTs `body` to the peering numbers as a client that waits 500 ms for the answer, and gets none
/// (the fault holds it for 1.5 s).
async fn give_up_after_500ms(sim: &Sim, token: &str, body: &Value) {
    let impatient =
        reqwest::Client::builder().timeout(Duration::from_millis(500)).build().expect("client");
    let started = Instant::now();
    let e = impatient
        .post(sim.url(PEERING))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect_err("no answer in time");
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() < Duration::from_millis(1400));
}

#[tokio::test]
async fn a_timeout_holds_the_call_past_the_clients_patience_and_serves_nothing() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    post_fault(&sim, json!({ "path": PEERING, "method": "POST", "timeout_ms": 1500 })).await;
    let body = adding(1);
    give_up_after_500ms(&sim, &token, &body).await;
    assert!(sim_numbers(&sim).await.is_empty(), "the call was not served");

    // A patient client: after the hold the connection is closed without any answer.
    post_fault(&sim, json!({ "path": PEERING, "method": "POST", "timeout_ms": 300 })).await;
    let (answer, took) = post_patiently(&sim, &token, &body).await;
    let e = answer.expect_err("no answer at all");
    assert!(took >= Duration::from_millis(300));
    assert!(!e.is_timeout() && e.status().is_none(), "the connection was closed: {e}");
    assert!(sim_numbers(&sim).await.is_empty());

    // The fault is spent: the retry is served.
    sim.add_numbers(&token, &[number(1)]).await;
}

#[tokio::test]
async fn a_late_answer_serves_the_call_even_for_a_client_that_gave_up() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    post_fault(&sim, json!({ "path": PEERING, "method": "POST", "answer_delay_ms": 1500 })).await;
    let body = adding(1);
    give_up_after_500ms(&sim, &token, &body).await;
    assert_eq!(sim_numbers(&sim).await, vec![number(1)], "served although unanswered");

    // A patient client gets the answer, late.
    post_fault(&sim, json!({ "path": PEERING, "method": "POST", "answer_delay_ms": 300 })).await;
    let body = adding(2);
    let (answer, took) = post_patiently(&sim, &token, &body).await;
    let r = answer.expect("answered");
    assert!(r.status().is_success(), "{}", r.status());
    assert!(took >= Duration::from_millis(300));
    assert_eq!(sim_numbers(&sim).await, vec![number(1), number(2)]);
}

#[tokio::test]
async fn chosen_numbers_fail_with_a_1000_in_the_new_generation_and_the_rest_is_served() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let r =
        post_fault(&sim, json!({ "path": PEERING, "method": "POST", "fail_numbers": [number(2)] }))
            .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let items: Vec<Value> = (1..=3)
        .map(|i| json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": true }))
        .collect();
    let r = api(&token)
        .post(sim.url(PEERING))
        .json(&json!({ "phone_numbers": items }))
        .send()
        .await
        .expect("post");
    let body = assert_zoom_error(r, 400, 1000).await;
    assert_eq!(body["errors"], json!([{ "phone_number": number(2), "reason": "Internal error" }]));
    let mut have = sim_numbers(&sim).await;
    have.sort();
    assert_eq!(have, vec![number(1), number(3)], "the good numbers were added");

    // Spent: the retry of the failed number succeeds.
    sim.add_numbers(&token, &[number(2)]).await;

    // DELETE, with a reason of the test's choosing; numbers given without + match too.
    post_fault(&sim, json!({ "path": PEERING, "method": "DELETE", "fail_numbers": [number(3).trim_start_matches('+')], "reason": "Upstream unavailable" })).await;
    let r = api(&token)
        .delete(sim.url(PEERING))
        .query(&[("phone_numbers", number(1)), ("phone_numbers", number(3))])
        .send()
        .await
        .expect("delete");
    let body = assert_zoom_error(r, 400, 1000).await;
    assert_eq!(
        body["errors"],
        json!([{ "phone_number": number(3), "reason": "Upstream unavailable" }])
    );
    let mut have = sim_numbers(&sim).await;
    have.sort();
    assert_eq!(have, vec![number(2), number(3)]);
}

#[tokio::test]
async fn chosen_numbers_come_back_unprocessed_in_the_legacy_generation() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    // A route pattern without a method: it applies to the next call that changes numbers.
    post_fault(&sim, json!({ "path": LEGACY, "fail_numbers": [number(1)] })).await;
    let items: Vec<Value> = (1..=2)
        .map(|i| json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": 1 }))
        .collect();
    let r = api(&token)
        .post(sim.url(LEGACY))
        .json(&json!({ "phone_numbers": items }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["unprocessed_numbers"],
        json!([{ "phone_number": number(1), "failure_reason": "Internal error" }])
    );
    assert_eq!(sim_numbers(&sim).await, vec![number(2)]);

    post_fault(&sim, json!({ "path": LEGACY, "method": "DELETE", "fail_numbers": [number(2)] }))
        .await;
    let r = api(&token)
        .delete(sim.url(LEGACY))
        .query(&[("phone_numbers", number(2))])
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["unprocessed_numbers"][0]["phone_number"], number(2));
    assert_eq!(sim_numbers(&sim).await, vec![number(2)], "still there");
}

#[tokio::test]
async fn faults_that_cannot_happen_are_refused_with_the_reason() {
    let sim = Sim::start().await;
    for (bad, says) in [
        (json!({ "path": PEERING, "error_rate": 1.5 }), "error_rate"),
        (json!({ "path": PEERING, "error_rate": 0 }), "error_rate"),
        (json!({ "path": PEERING, "timeout_ms": 100, "status": 500 }), "timeout"),
        (json!({ "path": PEERING, "answer_delay_ms": 100, "status": 500 }), "answer_delay_ms"),
        (json!({ "path": PEERING, "answer_delay_ms": 100, "timeout_ms": 500 }), "answer_delay_ms"),
        (json!({ "path": PEERING, "fail_numbers": ["not a number"] }), "fail_numbers[0]"),
        (
            json!({ "path": PEERING, "method": "GET", "fail_numbers": [number(1)] }),
            "POST, PATCH or DELETE",
        ),
        (json!({ "webhook": "app_deauthorized", "status": 500 }), "webhook"),
        (json!({ "count": 1 }), "path"),
        (json!({ "path": PEERING, "status": 500, "count": 0 }), "count"),
    ] {
        let r = post_fault(&sim, bad.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.expect("json");
        assert!(e["error"].as_str().expect("error").contains(says), "{bad}: {e}");
    }
    let faults: Value =
        reqwest::get(sim.url("/_sim/faults")).await.expect("faults").json().await.expect("json");
    assert_eq!(faults["faults"], json!([]));
}
