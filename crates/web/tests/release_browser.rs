//! The customer's release journey in a real browser (issue 6): `e2e/release-journey.mjs` drives
//! Debian's headless Chromium through the customer portal's Wait for Release tab and the Zoom
//! simulator's Phone Numbers pages, on SQLite and PostgreSQL, with the platform's job workers running.
//! `scripts/test` installs Chromium and e2e's npm packages; when they are missing this test fails
//! saying so, rather than passing without having looked.

mod release_support;

use app::release::Selection;
use domain::{Actor, NumberState};
use release_support::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use testkit::sim::demo;
use testkit::{Db, ZoomApp, PASSWORD};

on_both!(release_journey_works_in_chromium);

const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT: &str = "e2e/release-journey.mjs";
/// Generous: the first Chromium start on a cold machine is slow.
const TIME_LIMIT: Duration = Duration::from_secs(180);
const A: &str = "+15550100000";
const B: &str = "+15550100001";

async fn release_journey_works_in_chromium(db: Db) {
    let root = testkit::repo_root();
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Chromium and the e2e npm packages"
    );
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir(),
        "e2e/node_modules is missing: run scripts/test, which runs `npm ci` in e2e/ (or run it there yourself)"
    );
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    assign_in_zoom(&t, A).await;
    let by = Actor::Operator("ops@carrier.example".into());
    t.app()
        .start_release(acme, Selection::List(vec![A.into(), B.into()]), "contract change", &by)
        .await
        .unwrap();
    let workers = t.app().spawn_workers();

    // tokio's Command: the platform and the simulator run on this test's runtime and must keep serving.
    let run = tokio::process::Command::new("node")
        .arg(root.join(SCRIPT))
        .args([
            t.platform.url.as_str(),
            t.zoom.url.as_str(),
            ACME_ADMIN,
            PASSWORD,
            demo::ACME_ADMIN_EMAIL,
            demo::ACME_ADMIN_PASSWORD,
            A,
            B,
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
    drop(workers);
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

    // What the browser saw is what the platform and Zoom hold.
    for n in [A, B] {
        assert_eq!(state_of(&t, n).await.0, NumberState::Aging, "{n}");
    }
    assert!(zoom_numbers(&t).await.is_empty());
}
