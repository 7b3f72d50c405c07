//! The browser tests' one runner: a script of `e2e/` under Node, driving headless Chromium.
//!
//! `scripts/test` installs what it needs (Chromium, and e2e's npm packages with `npm ci`); when they
//! are missing a browser test fails saying so, rather than passing without having looked.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// Names the Chromium to drive (read by `e2e/lib.mjs`); Debian's `/usr/bin/chromium` when unset.
pub const CHROMIUM_ENV: &str = "PEEREX_CHROMIUM";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Generous: the first Chromium start on a cold machine is slow.
pub const SCRIPT_TIME_LIMIT: Duration = Duration::from_secs(180);

/// What every script prints last when each of its checks held.
const ALL_PASSED: &str = "all checks passed";

/// The Chromium the scripts drive; panics saying how to install it when it is missing.
pub fn chromium() -> PathBuf {
    let path =
        std::env::var_os(CHROMIUM_ENV).map_or_else(|| DEFAULT_CHROMIUM.into(), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test, which installs Chromium and the e2e npm packages (or set {CHROMIUM_ENV})",
        path.display()
    );
    path
}

/// Runs `e2e/{script}` with `args` (and `env` added to the environment) under Node, with headless
/// Chromium; returns its output. Panics, naming the script and showing its stderr and stdout, unless
/// it exited 0 having printed that all its checks passed, within [`SCRIPT_TIME_LIMIT`].
///
/// The script runs as a child process awaited on the test's runtime, so servers spawned on that
/// runtime (the platform, the simulator) keep answering it.
pub async fn run_browser_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let root = crate::repo_root();
    let chromium = chromium();
    assert!(
        root.join("e2e/node_modules/playwright-core").is_dir(),
        "{script}: e2e/node_modules is missing: run scripts/test, which runs `npm ci` in e2e/ (or run it there yourself)"
    );
    let run = tokio::process::Command::new("node")
        .arg(root.join("e2e").join(script))
        .args(args)
        .env(CHROMIUM_ENV, &chromium)
        .envs(env.iter().copied())
        .current_dir(&root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(SCRIPT_TIME_LIMIT, run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!(
            "{script}: cannot run node ({e}): install Node.js 20 or later (scripts/test installs npm and node)"
        ),
        Err(_) => panic!("{script} did not finish within {SCRIPT_TIME_LIMIT:?}"),
    };
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stderr\n{stderr}--- stdout\n{stdout}",
        out.status
    );
    assert!(
        stdout.contains(ALL_PASSED),
        "{script} exited 0 without finishing its checks:\n--- stderr\n{stderr}--- stdout\n{stdout}"
    );
    stdout.into_owned()
}
