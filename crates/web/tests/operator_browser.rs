//! The operator's import flow in a real browser: `e2e/operator-import.mjs` drives Debian's headless
//! Chromium against a `TestApp`. `scripts/test` installs what it needs (Chromium, and e2e's npm
//! packages with `npm ci`); when they are missing this test fails saying so, rather than passing
//! without having looked.

mod operator_support;

use testkit::{Db, TestApp, ADMIN_EMAIL, PASSWORD};

on_both!(import_flow_works_in_chromium);

async fn import_flow_works_in_chromium(db: Db) {
    let t = TestApp::spawn(db).await;
    testkit::run_browser_script(
        "operator-import.mjs",
        &[t.url.as_str(), ADMIN_EMAIL, PASSWORD],
        &[],
    )
    .await;
}
