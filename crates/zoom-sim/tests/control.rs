//! The test-control API (`/_sim/`), fault injection, and a simulator that restarts from `--state`.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use zoom_sim::{Options, Simulator, StateError};

const PEERING: &str = "/v2/number_management/peering_numbers";

async fn post_fault(sim: &Sim, fault: Value) -> reqwest::Response {
    reqwest::Client::new().post(sim.url("/_sim/faults")).json(&fault).send().await.expect("fault")
}

#[tokio::test]
async fn injected_429s_carry_retry_after_and_then_calls_succeed_again() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let r = post_fault(
        &sim,
        json!({ "path": PEERING, "method": "GET", "count": 2, "status": 429, "retry_after": 3 }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A POST is not affected; the next two GETs are; the third is served.
    sim.add_numbers(&token, &[number(1)]).await;
    for _ in 0..2 {
        let r = api(&token).get(sim.url(PEERING)).send().await.expect("get");
        assert_eq!(r.headers()["retry-after"], "3");
        let body = assert_zoom_error(r, 429, 429).await;
        assert!(body["message"].as_str().expect("message").contains("rate limit"));
    }
    assert_eq!(
        api(&token).get(sim.url(PEERING)).send().await.expect("get").status(),
        StatusCode::OK
    );
    let faults: Value =
        reqwest::get(sim.url("/_sim/faults")).await.expect("faults").json().await.expect("json");
    assert_eq!(faults["faults"], json!([]));
}

#[tokio::test]
async fn faults_match_route_patterns_and_can_delay_or_fail_with_any_error() {
    let sim = Sim::start().await;
    let admin = sim.admin_token(ACME_ADMIN).await;
    post_fault(
        &sim,
        json!({ "path": "/v2/phone/users/{userId}/phone_numbers/{phoneNumberId}", "status": 500 }),
    )
    .await;
    let r = api(&admin)
        .delete(sim.url(&format!("/v2/phone/users/me/phone_numbers/{}", number(1))))
        .send()
        .await
        .expect("delete");
    assert_zoom_error(r, 500, 500).await;

    post_fault(&sim, json!({ "path": "/oauth/token", "delay_ms": 300 })).await;
    let started = Instant::now();
    let r = sim
        .token_request(
            (S2S_APP, S2S_SECRET),
            &[("grant_type", "account_credentials"), ("account_id", "exampleCarrierOwnAccount")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a delay alone still serves the call");
    assert!(started.elapsed() >= Duration::from_millis(300));

    for bad in [
        json!({ "path": PEERING }),
        json!({ "path": "/_sim/reset", "status": 500 }),
        json!({ "path": PEERING, "status": 200 }),
    ] {
        assert_eq!(post_fault(&sim, bad).await.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn the_world_can_be_inspected_changed_and_reset() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;

    let accounts: Value = reqwest::get(sim.url("/_sim/accounts"))
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    let acme = accounts["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["id"] == ACME)
        .expect("acme")
        .clone();
    assert_eq!(acme["installed_apps"][0]["client_id"], CARRIER_APP);
    assert_eq!(acme["phone_numbers"], 2);
    let own: Vec<&Value> = accounts["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|a| a["carrier_account"] == true)
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["id"], CARRIER_ACCOUNT, "the carrier's own account is marked");

    let client = reqwest::Client::new();
    let r = client
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(1))))
        .json(&json!({ "user": ACME_BOB.0 }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);
    let n: Value = r.json().await.expect("json");
    assert!(n["assignee"].is_string());
    let r = client
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(1))))
        .json(&json!({ "user": "carol@acme.example" }))
        .send()
        .await
        .expect("assign");
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "Carol has no Zoom Phone license and the number is Bob's"
    );
    let r = client
        .delete(sim.url(&format!("/_sim/numbers/{}/assignment", number(1))))
        .send()
        .await
        .expect("unassign");
    assert_eq!(r.json::<Value>().await.expect("json")["assignee"], Value::Null);

    let numbers: Value = reqwest::get(sim.url(&format!("/_sim/numbers?account_id={ACME}")))
        .await
        .expect("numbers")
        .json()
        .await
        .expect("json");
    assert_eq!(numbers["numbers"].as_array().expect("numbers").len(), 2);

    let clock: Value = client
        .post(sim.url("/_sim/clock/advance"))
        .json(&json!({ "seconds": 90 }))
        .send()
        .await
        .expect("advance")
        .json()
        .await
        .expect("json");
    assert_eq!(clock["offset_ms"], 90_000);

    assert_eq!(
        client.post(sim.url("/_sim/reset")).send().await.expect("reset").status(),
        StatusCode::NO_CONTENT
    );
    assert_zoom_error(api(&token).get(sim.url(PEERING)).send().await.expect("get"), 401, 124).await;
    let numbers: Value =
        reqwest::get(sim.url("/_sim/numbers")).await.expect("numbers").json().await.expect("json");
    assert_eq!(
        numbers["numbers"].as_array().expect("numbers").len(),
        1,
        "only the world's seeded number is left"
    );
    let clock: Value =
        reqwest::get(sim.url("/_sim/clock")).await.expect("clock").json().await.expect("json");
    assert_eq!(clock["offset_ms"], 0);
}

#[tokio::test]
async fn the_control_api_is_off_unless_enabled() {
    let sim = Sim::with(Options::default()).await;
    let r = reqwest::Client::new().post(sim.url("/_sim/reset")).send().await.expect("reset");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_restarted_simulator_carries_on_from_its_state_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("zoom-sim.json");
    let options =
        Options { control_api: true, state_file: Some(file.clone()), ..Options::default() };

    let first = Sim::with(options.clone()).await;
    let tokens = first.install(ACME_ADMIN).await;
    let access = tokens["access_token"].as_str().expect("token").to_owned();
    first.add_numbers(&access, &[number(1), number(2)]).await;
    first.advance(Duration::from_secs(600)).await;
    first.handle.shutdown().await;
    assert!(file.exists());
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "no temporary file left behind"
    );

    let second = Sim::with(options).await;
    assert!(
        second.sim.clock().offset_ms() >= 600_000,
        "simulated time does not go back on restart"
    );
    let list: Value = api(&access)
        .get(second.url(PEERING))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(list["total_records"], 2, "the old token and the numbers survived");
    let r = second
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().expect("refresh")),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_state_file_of_another_world_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state.json");
    let options = Options { state_file: Some(file.clone()), ..Options::default() };
    let sim = Simulator::new(world(), options.clone()).expect("simulator");
    sim.reset().await;
    assert!(file.exists());

    let mut other: Value =
        serde_json::from_str(include_str!("../examples/world.json")).expect("json");
    other["carrier"]["name"] = json!("Another Carrier");
    let other = zoom_sim::World::from_json(&other.to_string()).expect("world");
    assert!(matches!(Simulator::new(other, options), Err(StateError::OtherWorld { .. })));

    std::fs::write(&file, "{ not a state").expect("write");
    let e = Simulator::new(world(), Options { state_file: Some(file), ..Options::default() })
        .err()
        .expect("refused");
    assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
}

/// What Zoom support or another tool does to numbers behind the carrier's back: delete one, move it to
/// another SIP trunk, deactivate it, give it to another account. The API shows the result and nothing
/// tells the carrier: no webhook.
#[tokio::test]
async fn numbers_are_deleted_re_trunked_deactivated_and_reassigned_silently() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    sim.add_numbers(&acme, &(1..=5).map(number).collect::<Vec<_>>()).await;
    let client = reqwest::Client::new();
    for n in [number(1), number(4)] {
        let r = client
            .put(sim.url(&format!("/_sim/numbers/{n}/assignment")))
            .json(&json!({ "user": ACME_BOB.0 }))
            .send()
            .await
            .expect("assign");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let changed = |n: usize, body: Value| {
        let client = client.clone();
        let url = sim.url(&format!("/_sim/numbers/{}", number(n)));
        async move { client.patch(url).json(&body).send().await.expect("patch") }
    };

    // Deleted even though assigned: support does not ask the customer to unbind first.
    let r = client.delete(sim.url(&format!("/_sim/numbers/{}", number(1)))).send().await;
    assert_eq!(r.expect("delete").status(), StatusCode::OK);
    let r = changed(2, json!({ "sip_trunk_name": "example-carrier-us-west" })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["sip_trunk_name"], "example-carrier-us-west");
    assert_eq!(changed(3, json!({ "status": false })).await.status(), StatusCode::OK);
    let r = changed(4, json!({ "account_id": GLOBEX })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let moved: Value = r.json().await.expect("json");
    assert_eq!((moved["account_id"].as_str(), &moved["assignee"]), (Some(GLOBEX), &Value::Null));

    // The carrier sees it all only by listing.
    let page: Value = api(&sim.s2s_token().await)
        .get(sim.url("/v2/number_management/carrier/peering_numbers"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let listed: Vec<(String, String, bool, bool, String)> = page["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .map(|n| {
            (
                n["phone_number"].as_str().expect("number").to_owned(),
                n["sip_trunk_name"].as_str().expect("trunk").to_owned(),
                n["status"].as_bool().expect("status"),
                n["assigned"].as_bool().expect("assigned"),
                n["customer_account_name"].as_str().expect("customer").to_owned(),
            )
        })
        .collect();
    let row = |n, trunk: &str, status, assigned, customer: &str| {
        (number(n), trunk.to_owned(), status, assigned, customer.to_owned())
    };
    assert_eq!(
        listed,
        vec![
            row(2, "example-carrier-us-west", true, false, "Acme Robotics"),
            row(3, TRUNK, false, false, "Acme Robotics"),
            row(4, TRUNK, true, false, "Globex"),
            row(5, TRUNK, true, false, "Acme Robotics"),
        ]
    );
    let in_account = |token: String| {
        let url = sim.url(PEERING);
        async move {
            let v: Value =
                api(&token).get(url).send().await.expect("list").json().await.expect("json");
            v["numbers"]
                .as_array()
                .expect("numbers")
                .iter()
                .map(|n| n["phone_number"].as_str().expect("number").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(in_account(acme.clone()).await, vec![number(2), number(3), number(5)]);
    assert_eq!(in_account(globex.clone()).await, vec![number(4)]);
    // Totals count each account as it is now: the moved number in its new account, the deleted in none.
    assert_eq!(page["total_records"], 4);
    for (token, total) in [(acme.clone(), 3), (globex, 1)] {
        let v: Value = api(&token)
            .get(sim.url(PEERING))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        assert_eq!(v["total_records"], total, "{v}");
    }
    let log: Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    assert_eq!(log["deliveries"], json!([]), "no webhook tells the carrier");

    // Changes Zoom could not make are refused, naming the field; nothing changes.
    for (body, field) in [
        (json!({ "sip_trunk_name": "nobodys-trunk" }), "sip_trunk_name"),
        (json!({ "account_id": "noSuchAccount" }), "account_id"),
        (json!({ "status": "off" }), "status"),
        (json!({ "trunk": TRUNK }), "trunk"),
        (json!({}), "sip_trunk_name"),
    ] {
        let r = changed(5, body.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let e: Value = r.json().await.expect("json");
        assert!(e["error"].as_str().expect("error").contains(field), "{body}: {e}");
    }
    let r = client.delete(sim.url(&format!("/_sim/numbers/{}", number(1)))).send().await;
    assert_eq!(r.expect("delete").status(), StatusCode::NOT_FOUND, "already gone");
    let r = changed(1, json!({ "status": false })).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(in_account(acme).await, vec![number(2), number(3), number(5)]);
}

/// The customer's Returned mark without the page, and taken off again (tests only: Zoom's pages offer
/// no undo).
#[tokio::test]
async fn the_returned_mark_is_set_and_cleared_through_the_control_api() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1), number(2)]).await;
    let client = reqwest::Client::new();
    let url = |n: usize| sim.url(&format!("/_sim/numbers/{}/returned", number(n)));
    let r = client.put(url(1)).send().await.expect("return");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json::<Value>().await.expect("json")["returned_at"].is_i64());
    let pool = |token: String| {
        let url = sim.url(PEERING);
        async move {
            let v: Value =
                api(&token).get(url).send().await.expect("list").json().await.expect("json");
            v["numbers"]
                .as_array()
                .expect("numbers")
                .iter()
                .map(|n| n["number_pool_status"].as_str().expect("pool status").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pool(token.clone()).await, ["RETURNED", "IN_USE"]);

    let r = client
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(2))))
        .json(&json!({}))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.put(url(2)).send().await.expect("return");
    assert_eq!(r.status(), StatusCode::CONFLICT, "an assigned number is unbound first");

    let r = client.delete(url(1)).send().await.expect("unmark");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(pool(token).await, ["IN_USE", "IN_USE"]);
    let r = client.put(sim.url("/_sim/numbers/+19995550000/returned")).send().await.expect("put");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
