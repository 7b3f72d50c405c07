//! The operator's import flow in a real browser: `e2e/operator-import.mjs` drives Debian's headless
//! Chromium against a `TestApp`. `scripts/test` installs what it needs (Chromium, and e2e's npm
//! packages with `npm ci`); when they are missing this test fails saying so, rather than passing
//! without having looked.

mod operator_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use testkit::{Db, TestApp, ADMIN_EMAIL, PASSWORD};

on_both!(import_flow_works_in_chromium);

const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT: &str = "e2e/operator-import.mjs";
/// Generous: the first Chromium start on a cold machine is slow.
const TIME_LIMIT: Duration = Duration::from_secs(180);

async fn import_flow_works_in_chromium(db: Db) {
    let root = testkit::repo_root();
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Chromium and the e2e npm packages"
    );
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir(),
        "e2e/node_modules is missing: run scripts/test, which runs `npm ci` in e2e/ (or run it there yourself)"
    );
    let t = TestApp::spawn(db).await;

    // tokio's Command: the server under test runs on this test's runtime and must keep serving.
    let run = tokio::process::Command::new("node")
        .arg(root.join(SCRIPT))
        .args([t.url.as_str(), ADMIN_EMAIL, PASSWORD])
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
}
