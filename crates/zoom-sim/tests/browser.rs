//! The seed journeys in a real browser: `e2e/zoom-sim-journey.mjs` drives Debian's headless Chromium
//! against the simulator: Marketplace → Add → Allow lands on the app's redirect URI (a tiny receiver
//! here) with a code, and Phone Numbers → assign → Unbind. `scripts/test` installs Chromium and e2e's
//! npm packages; when they are missing this test fails saying so, rather than passing without looking.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::*;
use zoom_sim::Options;

const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT: &str = "e2e/zoom-sim-journey.mjs";
/// Generous: the first Chromium start on a cold machine is slow.
const TIME_LIMIT: Duration = Duration::from_secs(180);
const NUMBER: &str = "+12065550123";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The app's side of the redirect: records the query it was called with.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/zoom/oauth/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push(uri.query().unwrap_or("").to_owned());
                axum::response::Html("<h1>callback received</h1>")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}/zoom/oauth/callback"), seen)
}

#[tokio::test]
async fn marketplace_install_and_number_assignment_work_in_chromium() {
    let root = repo_root();
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Chromium and the e2e npm packages"
    );
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir(),
        "e2e/node_modules is missing: run scripts/test, which runs `npm ci` in e2e/ (or run it there yourself)"
    );
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

    // tokio's Command: the simulator runs on this test's runtime and must keep serving.
    let run = tokio::process::Command::new("node")
        .arg(root.join(SCRIPT))
        .args([
            sim.url.as_str(),
            ACME_ADMIN.0,
            ACME_ADMIN.1,
            &app_name,
            &callback,
            NUMBER,
            ACME_BOB.0,
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(TIME_LIMIT, run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run node ({e}): install Node.js 20 or later (scripts/test installs npm and node)"),
        Err(_) => panic!("{SCRIPT} did not finish within {TIME_LIMIT:?}"),
    };
    let output = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{SCRIPT} failed ({}):\n{output}", out.status);
    assert!(
        output.contains("all checks passed"),
        "{SCRIPT} exited 0 without finishing its checks:\n{output}"
    );

    // The app's endpoint got the code, and it is a real one: the carrier exchanges it for tokens.
    let queries = seen.lock().expect("lock").clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    let code = queries[0].strip_prefix("code=").expect("only a code, no state").to_owned();
    let r = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &callback)],
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK, "{}", r.text().await.unwrap_or_default());
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
