//! Onboarding in a real browser: `e2e/zoom-onboarding.mjs` drives Debian's headless Chromium through
//! the Zoom simulator's pages and the customer portal (install, sign in, confirm, push, assign,
//! remove), with the platform's job workers running as in `peerex serve`; `e2e/forged-install.mjs`
//! plays the forged OAuth callback (an attacker's code opened by a signed-in admin of another
//! customer). `scripts/test` installs Chromium and the e2e npm packages; when they are missing these
//! tests fail saying so.

use domain::auth::Role;
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::{Actor, NumberState};
use std::time::Duration;
use testkit::sim::demo;
use testkit::{Db, ZoomApp, PASSWORD};

const SCRIPT: &str = "zoom-onboarding.mjs";
const FORGED: &str = "forged-install.mjs";
const ORDERED: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_onboarding_journey_in_chromium() {
    journey(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_onboarding_journey_in_chromium() {
    journey(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_forged_callback_in_chromium_links_nothing() {
    forged_callback(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forged_callback_in_chromium_links_nothing() {
    forged_callback(Db::Postgres).await;
}

async fn forged_callback(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let app = t.app();
    let acme = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    app.create_user(demo::ACME_ADMIN_EMAIL, PASSWORD, Role::CustomerAdmin, Some(acme.id))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100099", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(acme.id, OrderPick { count: ORDERED, ..Default::default() }, &[], &by)
        .await
        .unwrap();
    let _workers = app.spawn_workers();
    testkit::run_browser_script(
        FORGED,
        &[
            t.zoom.url.as_str(),
            t.platform.url.as_str(),
            "ops@demo-carrier.example",
            "ops-zoom-password",
            demo::CARRIER_ACCOUNT_ID,
            demo::ACME_ADMIN_EMAIL,
            PASSWORD,
            demo::APP_NAME,
            "Acme Corp",
        ],
        &[],
    )
    .await;
    // What the browser saw is what the database and Zoom hold: no link, nothing pushed.
    assert!(app.zoom_link(acme.id).await.unwrap().is_none());
    let q =
        domain::search::NumberQuery { customer_id: Some(acme.id), limit: 10, ..Default::default() };
    let states: Vec<_> =
        app.search_numbers(&q).await.unwrap().into_iter().map(|n| n.state).collect();
    assert_eq!(states, vec![NumberState::Reserved; ORDERED as usize]);
    let pushed: serde_json::Value = reqwest::get(format!(
        "{}/_sim/numbers?account_id={}",
        t.zoom.url,
        demo::CARRIER_ACCOUNT_ID
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(pushed["numbers"].as_array().map_or(0, Vec::len), 0, "{pushed}");
}

async fn journey(db: Db) {
    let t = ZoomApp::spawn_tuned(db, |z| z.poll_every = Duration::from_secs(1)).await;
    let app = t.app();
    let acme = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    t.bind_demo_trunk(acme.id).await;
    app.create_user(demo::ACME_ADMIN_EMAIL, PASSWORD, Role::CustomerAdmin, Some(acme.id))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100099", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(acme.id, OrderPick { count: ORDERED, ..Default::default() }, &[], &by)
        .await
        .unwrap();
    let _workers = app.spawn_workers();

    let count = ORDERED.to_string();
    testkit::run_browser_script(
        SCRIPT,
        &[
            t.zoom.url.as_str(),
            t.platform.url.as_str(),
            demo::ACME_ADMIN_EMAIL,
            demo::ACME_ADMIN_PASSWORD,
            demo::ACME_ADMIN_EMAIL,
            PASSWORD,
            demo::APP_NAME,
            demo::ACME_USER_EMAIL,
            count.as_str(),
        ],
        &[],
    )
    .await;
    // What the browser saw is what the database holds.
    let q =
        domain::search::NumberQuery { customer_id: Some(acme.id), limit: 10, ..Default::default() };
    let states: Vec<_> =
        app.search_numbers(&q).await.unwrap().into_iter().map(|n| n.state).collect();
    assert_eq!(states, vec![NumberState::Suspended; ORDERED as usize]);
}
