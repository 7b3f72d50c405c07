//! A port-in in a real browser: `e2e/port-in-journey.mjs` drives Debian's headless Chromium through
//! what an operator clicks to record and complete a port-in, what the customer's admin sees in the
//! customer portal, and Zoom's Phone Numbers page (Pending, then Normal), on SQLite and PostgreSQL
//! with the platform's job workers running. `scripts/test` installs Chromium and e2e's npm packages;
//! when they are missing this test fails saying so.

mod release_support;

use domain::NumberState;
use release_support::*;
use testkit::sim::demo;
use testkit::{Db, ZoomApp, ADMIN_EMAIL, PASSWORD};

on_both!(port_in_journey_works_in_chromium);

const A: &str = "+15550109000";
const B: &str = "+15550109001";

async fn port_in_journey_works_in_chromium(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 1).await;
    let workers = t.app().spawn_workers();
    let args = [
        t.platform.url.as_str(),
        t.zoom.url.as_str(),
        ADMIN_EMAIL,
        PASSWORD,
        ACME_ADMIN,
        PASSWORD,
        demo::ACME_ADMIN_EMAIL,
        demo::ACME_ADMIN_PASSWORD,
        "Acme Corp (ACME-001)",
        A,
        B,
    ];
    testkit::run_browser_script("port-in-journey.mjs", &args, &[]).await;
    drop(workers);

    // What the browser saw is what the platform holds.
    for n in [A, B] {
        let n = number(&t, n).await;
        assert_eq!((n.state, n.customer_id), (NumberState::Active, Some(acme)));
    }
}
