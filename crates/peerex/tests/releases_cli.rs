//! `peerex releases start|list|show|withdraw` (issue 6) on real databases, as an operator would run
//! them: numbers are made active through the store's own onboarding steps (link, push answered by
//! Zoom), then released by list, CSV and filter, followed and withdrawn from the command line.

use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::onboarding::{PushResult, StoredTokens};
use domain::{Actor, NumberState};
use std::process::Command;
use std::sync::Arc;

mod common;

/// The command line on a fresh database, and the application over the same database to set up
/// numbers and read their states.
struct World {
    cli: common::Cli,
    app: app::App,
    /// The same database, for steps no use-case offers (a worker's claim, Zoom's answers).
    store: store::Store,
}

impl World {
    async fn on(db: testkit::Db) -> World {
        let cli = common::Cli::on(db).await;
        let store = store::Store::connect(&cli.url).await.unwrap();
        store.migrate().await.unwrap();
        let app =
            app::App::new(store.clone(), Arc::new(domain::SystemClock), app::Settings::default());
        World { cli, app, store }
    }

    async fn state(&self, e164: &str) -> NumberState {
        self.store
            .get_number_by_e164(&domain::PhoneNumber::parse(e164).unwrap())
            .await
            .unwrap()
            .unwrap()
            .state
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(super::World::on(testkit::Db::Sqlite).await).await })* }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(super::World::on(testkit::Db::Postgres).await).await })* }
    };
}

on_both!(
    releases_are_started_followed_and_withdrawn_from_the_command_line,
    port_outs_and_contract_ends_are_recorded_and_forced_from_the_command_line,
);

/// A customer with 5 active numbers from +15550100000 (linked and pushed, Zoom's answers recorded).
async fn customer_with_active_numbers(w: &World) -> String {
    let app = &w.app;
    let by = Actor::System("test".into());
    let c = app.create_customer("Acme Corp", "ACME-1").await.unwrap();
    app.import_range("+15550100000-+15550100009", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(c.id, OrderPick { count: 5, ..Default::default() }, &[], &by).await.unwrap();
    let now = app.now();
    let tokens = StoredTokens {
        access_token: "k:a".into(),
        refresh_token: "k:r".into(),
        expires_at: now + time::Duration::hours(1),
        generation: 0,
    };
    w.store
        .link_zoom_account(c.id, &acct("acct-1"), "user-1", &tokens, "Carrier", &by, now)
        .await
        .unwrap()
        .unwrap();
    while let Some(job) =
        w.store.claim_job("t", now + time::Duration::minutes(1), now).await.unwrap()
    {
        let results: Vec<(domain::PhoneNumber, PushResult)> =
            job.payload.numbers.iter().map(|n| (n.clone(), PushResult::Accepted)).collect();
        if job.kind == domain::onboarding::JobKind::PushNumbers {
            assert!(w.store.complete_push(job.id, "t", &results, &by, now).await.unwrap());
        } else {
            assert!(w
                .store
                .finish_job(job.id, "t", &domain::onboarding::JobEnd::Done, now)
                .await
                .unwrap());
        }
    }
    assert_eq!(w.state("+15550100004").await, NumberState::Active);
    c.id.to_string()
}

async fn releases_are_started_followed_and_withdrawn_from_the_command_line(w: World) {
    let c = customer_with_active_numbers(&w).await;

    let out = w.cli.ok(&[
        "releases",
        "start",
        "--customer",
        &c,
        "--reason",
        "contract ends",
        "--number",
        "+15550100000,+15550100001",
    ]);
    assert!(out.contains("2 numbers wait for the customer's approval"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(w.state("+15550100001").await, NumberState::ReleasePending);

    let csv = w.cli.dir.path().join("release.csv");
    std::fs::write(&csv, "e164,who\n+15550100002,sales\n").unwrap();
    let out = w.cli.ok(&[
        "releases",
        "start",
        "--customer",
        &c,
        "--reason",
        "csv",
        "--csv",
        csv.to_str().unwrap(),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["waiting"], 1);
    let out = w.cli.ok(&[
        "releases",
        "start",
        "--customer",
        &c,
        "--reason",
        "filter",
        "--prefix",
        "+1555010000",
    ]);
    assert!(out.contains("2 numbers wait"), "{out}");

    // Refusals name each number; nothing changes.
    let e = w.cli.err(&[
        "releases",
        "start",
        "--customer",
        &c,
        "--reason",
        "x",
        "--number",
        "+15550100000,+15550100009",
    ]);
    assert!(
        e.contains("+15550100000 is release_pending")
            && e.contains("+15550100009 is not this customer's number"),
        "{e}"
    );
    assert!(w
        .cli
        .err(&["releases", "start", "--customer", &c, "--reason", "x"])
        .contains("give --number, --csv, or a filter"));
    assert!(w
        .cli
        .err(&[
            "releases",
            "start",
            "--customer",
            "nope",
            "--reason",
            "x",
            "--number",
            "+15550100000"
        ])
        .contains("--customer"));

    let list = w.cli.ok(&["releases", "list"]);
    assert_eq!(list.lines().count(), 4, "a header and three releases:\n{list}");
    assert!(list.contains("contract ends") && list.contains(" 0m "), "{list}");
    let show = w.cli.ok(&["releases", "show", &id]);
    assert!(
        show.contains("+15550100000  waiting") && show.contains("+15550100001  waiting"),
        "{show}"
    );

    let out = w.cli.ok(&["releases", "withdraw", &id]);
    assert!(out.contains("2 numbers are active again"), "{out}");
    assert_eq!(w.state("+15550100000").await, NumberState::Active);
    assert_eq!(
        w.cli.ok(&["releases", "list"]).lines().count(),
        3,
        "the withdrawn one no longer waits"
    );
    assert_eq!(w.cli.ok(&["releases", "list", "--all"]).lines().count(), 4);
    let all: serde_json::Value =
        serde_json::from_str(&w.cli.ok(&["releases", "list", "--all", "--json"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert!(w
        .cli
        .err(&["releases", "withdraw", "0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"])
        .contains("not found"));
}

#[test]
fn the_quarantine_is_configured_in_days_and_checked() {
    let peerex = || Command::new(env!("CARGO_BIN_EXE_peerex"));
    let example =
        String::from_utf8(peerex().args(["config", "example"]).output().unwrap().stdout).unwrap();
    assert!(example.contains("release_quarantine_days = 90"), "{example}");
    let out = peerex()
        .args(["config", "show"])
        .env("PEEREX_RELEASE_QUARANTINE_DAYS", "30")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("release_quarantine_days: 30"));
    let out = peerex()
        .args(["config", "show"])
        .env("PEEREX_RELEASE_QUARANTINE_DAYS", "-1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("release_quarantine_days must be 0 to 3650")
    );
}

fn acct(id: &str) -> domain::ZoomAccountId {
    domain::ZoomAccountId::parse(id).unwrap()
}

async fn port_outs_and_contract_ends_are_recorded_and_forced_from_the_command_line(w: World) {
    let c = customer_with_active_numbers(&w).await;
    let out = w.cli.ok(&[
        "releases",
        "port-out",
        "--customer",
        &c,
        "--number",
        "+15550100000,+15550100001",
        "--gaining-carrier",
        "Other Telco",
        "--due",
        "2099-01-31",
    ]);
    assert!(
        out.contains("(port_out) recorded: 2 numbers leave on 2099-01-31 (Ported out to Other Telco on 2099-01-31)"),
        "{out}"
    );
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(w.state("+15550100000").await, NumberState::ReleasePending, "routes until due");
    let out = w.cli.ok(&["releases", "show", &id]);
    assert!(out.contains("(port_out, due 2099-01-31)"), "{out}");

    // Bad input names the flag; a number already leaving is a conflict naming it.
    let e = w.cli.err(&[
        "releases",
        "port-out",
        "--customer",
        &c,
        "--number",
        "+15550100002",
        "--gaining-carrier",
        "X",
        "--due",
        "31/01/2099",
    ]);
    assert!(e.contains("--due"), "{e}");
    let e = w.cli.err(&[
        "releases",
        "port-out",
        "--customer",
        &c,
        "--number",
        "+15550100000",
        "--gaining-carrier",
        "X",
        "--due",
        "2099-01-31",
    ]);
    assert!(e.contains("numbers: +15550100000 is release_pending"), "{e}");

    // Forced now: they stop routing and a job carries them to Zoom.
    let out = w.cli.ok(&["releases", "force", &id]);
    assert!(out.contains("2 numbers sent to Zoom"), "{out}");
    assert_eq!(w.state("+15550100001").await, NumberState::Releasing);

    let out =
        w.cli.ok(&["releases", "contract-end", "--customer", &c, "--due", "2099-02-01", "--json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["kind"].as_str(), r["waiting"].as_i64()), (Some("contract_end"), Some(3)));
}
