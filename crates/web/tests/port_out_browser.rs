//! A port-out in a real browser: `e2e/port-out-journey.mjs` drives Debian's headless Chromium
//! through the operator portal (record a port-out, see what blocks a number assigned in Zoom) and the
//! customer portal (the reason, nothing to approve), on SQLite and PostgreSQL, with the platform's
//! job workers running. `scripts/test` installs Chromium and e2e's npm packages; when they are
//! missing this test fails saying so.

mod release_support;

use domain::release::BLOCKED_ASSIGNED;
use domain::NumberState;
use release_support::*;
use testkit::{Db, ZoomApp, ADMIN_EMAIL, PASSWORD};

on_both!(port_out_journey_works_in_chromium);

const SCRIPT: &str = "port-out-journey.mjs";
const A: &str = "+15550100000";
const B: &str = "+15550100001";

async fn port_out_journey_works_in_chromium(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    assign_in_zoom(&t, A).await;
    let workers = t.app().spawn_workers();
    let due = t.app().now().date().to_string();

    let args = [
        t.platform.url.as_str(),
        ADMIN_EMAIL,
        PASSWORD,
        ACME_ADMIN,
        PASSWORD,
        "Acme Corp (ACME-001)",
        due.as_str(),
        A,
        B,
    ];
    testkit::run_browser_script(SCRIPT, &args, &[]).await;
    drop(workers);

    // What the browser saw is what the platform and Zoom hold.
    assert_eq!(state_of(&t, B).await.0, NumberState::Aging);
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing, "blocked, not routing");
    let releases = t.app().releases(Some(acme), 1).await.unwrap();
    let (_, lines) = t.app().release(releases[0].id).await.unwrap();
    let a = lines.iter().find(|l| l.e164.as_str() == A).unwrap();
    assert_eq!(a.message.as_deref(), Some(BLOCKED_ASSIGNED));
    assert_eq!(zoom_numbers(&t).await, vec![A.to_owned()]);
}
