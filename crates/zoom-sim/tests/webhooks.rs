//! Webhooks out: `app_deauthorized` when an app is removed, signed as Zoom signs, retried on 5xx after 5,
//! 20 and 60 minutes of simulated time, never on 4xx, logged; and `endpoint.url_validation`.

mod support;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use zoom_sim::Options;

const SECRET: &str = "exampleCarrierWebhookSecret";

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Arc<Mutex<VecDeque<u16>>>,
}

/// An app's webhook endpoint on a real socket; returns its base URL.
async fn receiver(r: Receiver) -> String {
    let hook = {
        let r = r.clone();
        move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                r.received.lock().expect("lock").push((headers, body));
                let status = r.answers.lock().expect("lock").pop_front().unwrap_or(200);
                AxumStatus::from_u16(status).expect("status")
            }
        }
    };
    // Answers endpoint.url_validation as an app should.
    let validate = |body: String| async move {
        let v: Value = serde_json::from_str(&body).expect("json");
        let plain = v["payload"]["plainToken"].as_str().expect("plainToken").to_owned();
        axum::Json(json!({ "plainToken": plain, "encryptedToken": hmac_hex(SECRET, &plain) }))
    };
    let app = axum::Router::new().route("/hook", post(hook)).route("/validate", post(validate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn sim_with_event_url(url: &str) -> Sim {
    let mut world: Value =
        serde_json::from_str(include_str!("../examples/world.json")).expect("json");
    world["apps"][0]["event_url"] = json!(url);
    let world = zoom_sim::World::from_json(&world.to_string()).expect("world");
    Sim::with_world(world, Options { control_api: true, ..Options::default() }).await
}

async fn deliveries(sim: &Sim) -> Vec<Value> {
    let v: Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    v["deliveries"].as_array().expect("deliveries").clone()
}

/// Waits (real time) until the log's first delivery has `attempts` attempts and is no longer sending.
async fn settled(sim: &Sim, attempts: usize) -> Value {
    for _ in 0..100 {
        if let Some(d) = deliveries(sim).await.first() {
            if d["attempts"].as_array().expect("attempts").len() == attempts
                && d["outcome"] != "sending"
            {
                return d.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery with {attempts} attempts: {:?}", deliveries(sim).await);
}

async fn remove_app(sim: &Sim) {
    let r = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/accounts/{ACME}/apps/{CARRIER_APP}/remove")))
        .send()
        .await
        .expect("remove");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn removing_the_app_sends_a_signed_app_deauthorized_and_ends_its_tokens() {
    let r = Receiver::default();
    let base = receiver(r.clone()).await;
    let sim = sim_with_event_url(&format!("{base}/hook")).await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    remove_app(&sim).await;

    let d = settled(&sim, 1).await;
    assert_eq!(d["outcome"], "delivered");
    assert_eq!(d["event"], "app_deauthorized");
    let (headers, body) = r.received.lock().expect("lock")[0].clone();
    let ts = headers["x-zm-request-timestamp"].to_str().expect("ts");
    assert_eq!(
        headers["x-zm-signature"].to_str().expect("sig"),
        format!("v0={}", hmac_hex(SECRET, &format!("v0:{ts}:{body}")))
    );
    assert_eq!(body, d["body"].as_str().expect("body"), "the log holds the exact bytes sent");
    let event: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(event["event"], "app_deauthorized");
    assert!(event["event_ts"].is_i64());
    let payload = &event["payload"];
    assert_eq!(
        (payload["account_id"].as_str(), payload["client_id"].as_str()),
        (Some(ACME), Some(CARRIER_APP))
    );
    assert!(payload["user_id"].is_string() && payload["signature"].is_string());
    assert!(payload["deauthorization_time"].as_str().expect("time").ends_with('Z'));

    let r = api(&token)
        .get(sim.url("/v2/number_management/peering_numbers"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let again = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/accounts/{ACME}/apps/{CARRIER_APP}/remove")))
        .send()
        .await
        .expect("remove");
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "it is not added any more");
}

#[tokio::test]
async fn server_errors_are_retried_after_5_20_and_60_minutes_then_given_up() {
    let r = Receiver::default();
    r.answers.lock().expect("lock").extend([500, 503, 502, 500]);
    let sim = sim_with_event_url(&format!("{}/hook", receiver(r.clone()).await)).await;
    sim.install(ACME_ADMIN).await;
    remove_app(&sim).await;

    let d = settled(&sim, 1).await;
    assert_eq!(d["outcome"], "pending");
    let first = d["attempts"][0]["at"].as_i64().expect("at");
    assert_eq!(d["next_attempt_at"].as_i64().expect("next") - first, 5 * 60);
    // Not before it is due.
    sim.advance(Duration::from_secs(4 * 60)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r.received.lock().expect("lock").len(), 1);

    for (wait, attempts) in [(60, 2), (20 * 60, 3), (60 * 60, 4)] {
        sim.advance(Duration::from_secs(wait)).await;
        settled(&sim, attempts).await;
    }
    let d = settled(&sim, 4).await;
    assert_eq!(d["outcome"], "failed");
    let statuses: Vec<_> =
        d["attempts"].as_array().expect("attempts").iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(500), json!(503), json!(502), json!(500)]);
    sim.advance(Duration::from_secs(3 * 3600)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.received.lock().expect("lock").len(), 4, "three retries and no more");
}

#[tokio::test]
async fn a_4xx_is_never_retried() {
    let r = Receiver::default();
    r.answers.lock().expect("lock").push_back(404);
    let sim = sim_with_event_url(&format!("{}/hook", receiver(r.clone()).await)).await;
    sim.install(ACME_ADMIN).await;
    remove_app(&sim).await;
    let d = settled(&sim, 1).await;
    assert_eq!(d["outcome"], "failed");
    assert_eq!(d["next_attempt_at"], Value::Null);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried() {
    // Nothing listens on the discard port.
    let sim = sim_with_event_url("http://127.0.0.1:9/hook").await;
    sim.install(ACME_ADMIN).await;
    remove_app(&sim).await;
    let d = settled(&sim, 1).await;
    assert_eq!(d["outcome"], "pending");
    assert!(d["attempts"][0]["error"].is_string());
}

#[tokio::test]
async fn endpoint_url_validation_checks_the_apps_answer() {
    let base = receiver(Receiver::default()).await;
    let sim = sim_with_event_url(&format!("{base}/validate")).await;
    let v: Value = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/apps/{CARRIER_APP}/validate-endpoint")))
        .send()
        .await
        .expect("validate")
        .json()
        .await
        .expect("json");
    assert_eq!(v["valid"], true, "{v}");

    // An endpoint that only says 200 has not proved it holds the secret.
    let sim = sim_with_event_url(&format!("{base}/hook")).await;
    let v: Value = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/apps/{CARRIER_APP}/validate-endpoint")))
        .send()
        .await
        .expect("validate")
        .json()
        .await
        .expect("json");
    assert_eq!(v["valid"], false, "{v}");
}

#[tokio::test]
async fn a_dropped_webhook_never_arrives_is_not_retried_and_is_logged() {
    let r = Receiver::default();
    let sim = sim_with_event_url(&format!("{}/hook", receiver(r.clone()).await)).await;
    let f = reqwest::Client::new()
        .post(sim.url("/_sim/faults"))
        .json(&json!({ "webhook": "app_deauthorized", "count": 1 }))
        .send()
        .await
        .expect("fault");
    assert_eq!(f.status(), StatusCode::CREATED);
    sim.install(ACME_ADMIN).await;
    remove_app(&sim).await;
    let d = settled(&sim, 1).await;
    assert_eq!(d["outcome"], "dropped");
    assert!(d["attempts"][0]["error"].as_str().expect("error").contains("dropped"), "{d}");
    sim.advance(Duration::from_secs(2 * 3600)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        r.received.lock().expect("lock").is_empty(),
        "the app never heard of it, even hours later"
    );

    // The fault is spent: the next removal is delivered.
    sim.install(ACME_ADMIN).await;
    remove_app(&sim).await;
    for _ in 0..100 {
        if !r.received.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r.received.lock().expect("lock").len(), 1);
}

/// The request-body schema of a webhook in one of Zoom's event files.
fn event_schema(file: &str, event: &str) -> Value {
    let text =
        std::fs::read_to_string(support::schema::openapi_dir().join(file)).expect("event file");
    let doc: Value = serde_json::from_str(&text).expect("json");
    let op = if doc["webhooks"].is_object() {
        &doc["webhooks"][event]["post"]
    } else {
        &doc["paths"][event]["post"]
    };
    let schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "{file} describes {event}");
    schema
}

async fn received(r: &Receiver, n: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..100 {
        if r.received.lock().expect("lock").len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.received.lock().expect("lock").clone()
}

#[tokio::test]
async fn a_customer_changing_cnam_or_emergency_address_sends_the_number_management_events() {
    let r = Receiver::default();
    let sim = sim_with_event_url(&format!("{}/hook", receiver(r.clone()).await)).await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;

    // Through the control API.
    let res = reqwest::Client::new()
        .put(sim.url(&format!("/_sim/numbers/{}/cnam", number(1))))
        .json(&json!({ "cnam": "ACME ROBOTICS" }))
        .send()
        .await
        .expect("cnam");
    assert_eq!(res.status(), StatusCode::OK);
    let got = received(&r, 1).await;
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let ts = headers["x-zm-request-timestamp"].to_str().expect("ts");
    assert_eq!(
        headers["x-zm-signature"].to_str().expect("sig"),
        format!("v0={}", hmac_hex(SECRET, &format!("v0:{ts}:{body}")))
    );
    let event: Value = serde_json::from_str(body).expect("json");
    let errors = support::schema::validate(
        &event_schema(
            "number-management-webhooks.json",
            "number_management.peering_number_cnam_updated",
        ),
        &event,
    );
    assert!(errors.is_empty(), "{errors:?} in {event}");
    assert_eq!(event["event"], "number_management.peering_number_cnam_updated");
    assert_eq!(
        event["payload"],
        json!({ "account_id": ACME, "object": { "cnam": "ACME ROBOTICS", "carrier_code": CARRIER_CODE, "phone_numbers": [number(1)] } })
    );

    // Through the number's page in Zoom, as the admin would.
    let browser = sim.signed_in(ACME_ADMIN).await;
    let n: Value =
        reqwest::get(sim.url("/_sim/numbers")).await.expect("numbers").json().await.expect("json");
    let id = n["numbers"]
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["phone_number"] == number(1))
        .expect("number")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let page = browser
        .get(sim.url(&format!("/pbx/phone-numbers/{id}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Emergency Address") && page.contains("ACME ROBOTICS"), "{page}");
    let form = [
        ("address_line1", "55 Almaden Blvd"),
        ("address_line2", ""),
        ("city", "San Jose"),
        ("state_code", "CA"),
        ("zip", "95113"),
        ("country", "US"),
    ];
    let res = browser
        .post(sim.url(&format!("/pbx/phone-numbers/{id}/emergency-address")))
        .form(&form)
        .send()
        .await
        .expect("save");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let got = received(&r, 2).await;
    let event: Value = serde_json::from_str(&got[1].1).expect("json");
    let errors = support::schema::validate(
        &event_schema(
            "number-management-webhooks.json",
            "number_management.peering_number_emergency_address_updated",
        ),
        &event,
    );
    assert!(errors.is_empty(), "{errors:?} in {event}");
    assert_eq!(
        event["payload"]["object"]["emergency_address"],
        json!({ "address_line1": "55 Almaden Blvd", "city": "San Jose", "state_code": "CA", "zip": "95113", "country": "US" }),
        "an empty line 2 is left out"
    );
    let log = deliveries(&sim).await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|d| d["outcome"] == "delivered"), "{log:?}");
}

#[tokio::test]
async fn phone_generation_subscribers_get_the_phone_events_and_other_carriers_numbers_send_nothing()
{
    let r = Receiver::default();
    let base = receiver(r.clone()).await;
    let mut world: Value =
        serde_json::from_str(include_str!("../examples/world.json")).expect("json");
    world["apps"][0]["event_url"] = json!(format!("{base}/hook"));
    world["apps"][0]["events"] = json!(["phone.peering_number_cnam_updated"]);
    let sim = Sim::with_world(
        zoom_sim::World::from_json(&world.to_string()).expect("world"),
        Options { control_api: true, ..Options::default() },
    )
    .await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;
    let put = |n: String, body: Value| {
        let url = sim.url(&format!(
            "/_sim/numbers/{n}/{}",
            if body.get("cnam").is_some() { "cnam" } else { "emergency_address" }
        ));
        async move { reqwest::Client::new().put(url).json(&body).send().await.expect("put") }
    };

    // Another carrier's number in the same account: Zoom keeps the change, this carrier hears nothing.
    assert_eq!(
        put("+12065550900".into(), json!({ "cnam": "ALICE" })).await.status(),
        StatusCode::OK
    );
    // Not subscribed to the emergency-address events.
    assert_eq!(
        put(number(1), json!({ "address_line1": "1 Main St" })).await.status(),
        StatusCode::OK
    );
    assert_eq!(put(number(1), json!({ "cnam": "ACME" })).await.status(), StatusCode::OK);
    let got = received(&r, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.received.lock().expect("lock").len(),
        1,
        "only the subscribed event about this carrier's number"
    );
    let event: Value = serde_json::from_str(&got[0].1).expect("json");
    let errors = support::schema::validate(
        &event_schema("phone-peering-webhooks.subset.json", "phone.peering_number_cnam_updated"),
        &event,
    );
    assert!(errors.is_empty(), "{errors:?} in {event}");
    assert_eq!(event["event"], "phone.peering_number_cnam_updated");
    assert_eq!(
        event["payload"]["object"]["phone_numbers"],
        json!([number(1).trim_start_matches('+')]),
        "bare digits, as Zoom's Phone sample"
    );

    // Bad input is refused with the reason.
    let res = put(number(1), json!({ "cnam": "A NAME LONGER THAN FIFTEEN" })).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = put(number(1), json!({ "address_line1": " " })).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(put(number(9), json!({ "cnam": "X" })).await.status(), StatusCode::NOT_FOUND);
    let bad = json!({ "carrier": { "name": "C", "carrier_code": 1, "sip_trunk_names": ["t"] },
        "apps": [{ "name": "A", "kind": "admin-managed", "client_id": "c", "client_secret": "s", "redirect_uris": ["http://x.example/cb"], "scopes": ["s"], "events": ["phone.number_assigned"] }] });
    let e = zoom_sim::World::from_json(&bad.to_string()).expect_err("refused").to_string();
    assert!(e.contains("apps[0].events[0]"), "{e}");
}
