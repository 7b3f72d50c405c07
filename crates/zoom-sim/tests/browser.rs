//! The seed journeys in a real browser: `e2e/zoom-sim-journey.mjs` drives Debian's headless Chromium
//! against the simulator: Marketplace → Add → Allow lands on the app's redirect URI (a tiny receiver
//! here that exchanges the code, as the carrier's platform does) with a code, Phone Numbers → assign →
//! Unbind → Return to Carrier, and Manage → Added Apps → the app → Remove; and
//! `e2e/zoom-sim-provider-portal.mjs`, the carrier's staff in the Provider Portal: Import by CSV,
//! Export, Remove by CSV, the Numbers tab's filter. `scripts/test` installs Chromium and e2e's npm
//! packages; when they are missing these tests fail saying so, rather than passing without looking.

mod support;

use serde_json::{json, Value};
use support::*;
use zoom_sim::Options;

const JOURNEY: &str = "zoom-sim-journey.mjs";
const PROVIDER_PORTAL: &str = "zoom-sim-provider-portal.mjs";
const NUMBER: &str = "+12065550123";

/// What the app's redirect endpoint saw: each query, and the token endpoint's answer to its code.
#[derive(Clone, Default)]
struct Seen {
    queries: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokens: std::sync::Arc<std::sync::Mutex<Vec<(u16, Value)>>>,
    /// The simulator's URL, known once it runs (the world names the receiver first).
    sim: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// The app's side of the redirect: records the query and exchanges the code at once, as the carrier's
/// platform does, so the app is added by the time the browser walks on.
async fn receiver() -> (String, Seen) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let callback = format!("http://{addr}/zoom/oauth/callback");
    let record = seen.clone();
    let redirect = callback.clone();
    let app = axum::Router::new().route(
        "/zoom/oauth/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let (record, redirect) = (record.clone(), redirect.clone());
            async move {
                let query = uri.query().unwrap_or("").to_owned();
                record.queries.lock().expect("lock").push(query.clone());
                let code = query.strip_prefix("code=").unwrap_or("").to_owned();
                let sim = record.sim.get().cloned().unwrap_or_default();
                let r = reqwest::Client::new()
                    .post(format!("{sim}/oauth/token"))
                    .basic_auth(CARRIER_APP, Some(CARRIER_SECRET))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("redirect_uri", redirect.as_str()),
                    ])
                    .send()
                    .await
                    .expect("token request");
                let status = r.status().as_u16();
                let body = r.json().await.unwrap_or(Value::Null);
                record.tokens.lock().expect("lock").push((status, body));
                axum::response::Html("<h1>callback received</h1>")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (callback, seen)
}

#[tokio::test]
async fn marketplace_install_number_assignment_and_removal_work_in_chromium() {
    let (callback, seen) = receiver().await;
    let mut world: Value =
        serde_json::from_str(include_str!("../examples/world.json")).expect("json");
    world["apps"][0]["redirect_uris"] = json!([callback]);
    world["accounts"][0]["phone_numbers"]
        .as_array_mut()
        .expect("numbers")
        .push(json!({ "phone_number": NUMBER, "sip_trunk_name": TRUNK }));
    let world = zoom_sim::World::from_json(&world.to_string()).expect("world");
    let app_name = world.app(CARRIER_APP).expect("app").name.clone();
    let sim = Sim::with_world(world, Options { control_api: true, ..Options::default() }).await;
    seen.sim.set(sim.url.clone()).expect("set once");

    testkit::run_browser_script(
        JOURNEY,
        &[sim.url.as_str(), ACME_ADMIN.0, ACME_ADMIN.1, &app_name, &callback, NUMBER, ACME_BOB.0],
        &[],
    )
    .await;

    // The app's endpoint got a code and no state, and the code was a real one: it gave tokens.
    let queries = seen.queries.lock().expect("lock").clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(queries[0].starts_with("code=") && !queries[0].contains("state="), "{queries:?}");
    let tokens = seen.tokens.lock().expect("lock").clone();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].0, 200, "{:?}", tokens[0].1);
    // Remove on the app's page ended those tokens and sent app_deauthorized.
    let access = tokens[0].1["access_token"].as_str().expect("access token");
    let r = api(access).get(sim.url("/v2/users/me")).send().await.expect("me");
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED, "the tokens ended with the removal");
    let log: Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    assert!(
        log["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .any(|d| d["event"] == "app_deauthorized" && d["client_id"] == CARRIER_APP),
        "{log}"
    );
    // The carrier's listing shows the number Returned.
    let listed: Value = api(&sim.s2s_token().await)
        .get(sim.url("/v2/number_management/carrier/peering_numbers"))
        .query(&[("phone_number", NUMBER)])
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["numbers"][0]["number_pool_status"], "RETURNED", "{listed}");
    // The walk ended with the number unbound.
    let numbers: Value =
        reqwest::get(sim.url("/_sim/numbers")).await.expect("numbers").json().await.expect("json");
    let n = numbers["numbers"]
        .as_array()
        .expect("list")
        .iter()
        .find(|n| n["phone_number"] == NUMBER)
        .expect("the number")
        .clone();
    assert_eq!(n["assignee"], Value::Null, "{n}");
}

#[tokio::test]
async fn provider_portal_import_export_remove_and_filter_work_in_chromium() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let (returned, assigned) = (number(50), number(51));
    sim.add_numbers(&acme, &[returned.clone(), assigned.clone()]).await;
    let client = reqwest::Client::new();
    let r = client.put(sim.url(&format!("/_sim/numbers/{returned}/returned"))).send().await;
    assert_eq!(r.expect("return").status(), reqwest::StatusCode::OK);
    let r = client
        .put(sim.url(&format!("/_sim/numbers/{assigned}/assignment")))
        .json(&json!({ "user": ACME_BOB.0 }))
        .send()
        .await;
    assert_eq!(r.expect("assign").status(), reqwest::StatusCode::OK);
    let imported = [number(1), number(2), number(3)];

    testkit::run_browser_script(
        PROVIDER_PORTAL,
        &[
            sim.url.as_str(),
            CARRIER_ADMIN.0,
            CARRIER_ADMIN.1,
            "Acme Robotics",
            TRUNK,
            &imported.join(","),
            &returned,
            &assigned,
        ],
        &[],
    )
    .await;

    // The API sees what the carrier's staff did: two imported numbers stay, one was removed.
    let v: Value = api(&acme)
        .get(sim.url("/v2/number_management/peering_numbers"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let listed: Vec<&str> = v["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .map(|n| n["phone_number"].as_str().expect("number"))
        .collect();
    assert_eq!(listed, [&imported[1], &imported[2], &returned, &assigned]);
    assert_eq!(v["numbers"][0]["billing_ref_id"], "acct-0002");
}
