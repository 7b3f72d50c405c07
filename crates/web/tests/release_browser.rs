//! The customer's release journey in a real browser (issue 6): `e2e/release-journey.mjs` drives
//! Debian's headless Chromium through the customer portal's Wait for Release tab and the Zoom
//! simulator's Phone Numbers pages, on SQLite and PostgreSQL, with the platform's job workers running.
//! `scripts/test` installs Chromium and e2e's npm packages; when they are missing this test fails
//! saying so, rather than passing without having looked.

mod release_support;

use app::release::Selection;
use domain::{Actor, NumberState};
use release_support::*;
use testkit::sim::demo;
use testkit::{Db, ZoomApp, PASSWORD};

on_both!(release_journey_works_in_chromium);

const SCRIPT: &str = "release-journey.mjs";
const A: &str = "+15550100000";
const B: &str = "+15550100001";

async fn release_journey_works_in_chromium(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    assign_in_zoom(&t, A).await;
    let by = Actor::Operator("ops@carrier.example".into());
    t.app()
        .start_release(acme, Selection::List(vec![A.into(), B.into()]), "contract change", &by)
        .await
        .unwrap();
    let workers = t.app().spawn_workers();

    let args = [
        t.platform.url.as_str(),
        t.zoom.url.as_str(),
        ACME_ADMIN,
        PASSWORD,
        demo::ACME_ADMIN_EMAIL,
        demo::ACME_ADMIN_PASSWORD,
        A,
        B,
    ];
    testkit::run_browser_script(SCRIPT, &args, &[]).await;
    drop(workers);

    // What the browser saw is what the platform and Zoom hold.
    for n in [A, B] {
        assert_eq!(state_of(&t, n).await.0, NumberState::Aging, "{n}");
    }
    assert!(zoom_numbers(&t).await.is_empty());
}
