//! The `peerex` command line on real files and real databases, as an operator would run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;
use common::Cli;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(super::Cli::on(testkit::Db::Sqlite).await) })* }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(super::Cli::on(testkit::Db::Postgres).await) })* }
    };
}

on_both!(
    csv_import_reports_every_bad_row_and_writes_nothing,
    import_search_export_and_order,
    bad_ids_and_impossible_orders_are_refused_clearly
);

fn csv_import_reports_every_bad_row_and_writes_nothing(cli: Cli) {
    let bad = cli.file("bad.csv", b"\xEF\xBB\xBFnumber,tags,region\r\n+15550100000,a;b,US\r\n5550100001,,\r\n\"+15550100000\",,\r\n+15550100002,,US,extra\r\n");
    let out = cli.run(&["numbers", "import", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("row 3, number: \"5550100001\": not E.164"), "{text}");
    assert!(
        text.contains("row 4, number: \"+15550100000\": duplicate in file (first on row 2)"),
        "{text}"
    );
    assert!(text.contains("row 5: \"\": expected 3 fields, found 4"), "{text}");
    assert!(text.contains("nothing was imported"));
    assert_eq!(cli.ok(&["numbers", "search", "--json"]).trim(), "[]");

    let json = cli.run(&["numbers", "import", &bad, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json report");
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["added"], 0);
}

fn import_search_export_and_order(cli: Cli) {
    let good = cli.file("good.csv", b"number,tags,billing_ref,region,note\n+15550100000,nyc;premium,B-1,US-NY,\"first, of many\"\n+15550100001,,,US-NY,\n");
    assert!(cli
        .ok(&["numbers", "import", &good, "--dry-run"])
        .contains("dry run: 2 numbers would be added"));
    assert_eq!(cli.ok(&["numbers", "search", "--json"]).trim(), "[]", "a dry run writes nothing");
    assert!(cli.ok(&["numbers", "import", &good]).contains("added 2 numbers"));
    // Importing the same file again: every row is already in the inventory.
    let again = cli.run(&["numbers", "import", &good]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already in inventory"));
    assert!(cli
        .ok(&[
            "numbers",
            "import",
            "--range",
            "+15550200000-+15550200099",
            "--tags",
            "bulk",
            "--region",
            "US-CA"
        ])
        .contains("added 100 numbers"));

    let found: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "numbers", "search", "--prefix", "+155502", "--tag", "bulk", "--limit", "500", "--json",
    ]))
    .unwrap();
    assert_eq!(found.as_array().map(Vec::len), Some(100));

    let export = cli.ok(&["numbers", "export", "--prefix", "+1555010"]);
    let mut lines = export.lines();
    assert_eq!(lines.next(), Some("number,state,customer_id,tags,billing_ref,region,note"));
    assert_eq!(
        lines.next(),
        Some("+15550100000,available,,nyc;premium,B-1,US-NY,\"first, of many\"")
    );
    assert_eq!(lines.count(), 1);

    let customer: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "customers",
        "create",
        "--name",
        "Acme Corp",
        "--contract-ref",
        "ACME-1",
        "--json",
    ]))
    .unwrap();
    let id = customer["id"].as_str().unwrap().to_owned();
    let order = cli.ok(&[
        "orders",
        "create",
        "--customer",
        &id,
        "--count",
        "10",
        "--prefix",
        "+155502",
        "--json",
    ]);
    let order: serde_json::Value = serde_json::from_str(&order).unwrap();
    assert_eq!(order["numbers"].as_array().map(Vec::len), Some(10));
    assert_eq!(order["order"]["state"], "pending");
    let reserved: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "numbers",
        "search",
        "--customer",
        &id,
        "--state",
        "reserved",
        "--json",
    ]))
    .unwrap();
    assert_eq!(reserved.as_array().map(Vec::len), Some(10));
    let order_id = order["order"]["id"].as_str().unwrap();
    assert!(cli.ok(&["orders", "cancel", order_id]).contains("cancelled"));
    let reserved: serde_json::Value =
        serde_json::from_str(&cli.ok(&["numbers", "search", "--state", "reserved", "--json"]))
            .unwrap();
    assert_eq!(reserved.as_array().map(Vec::len), Some(0));
}

fn bad_ids_and_impossible_orders_are_refused_clearly(cli: Cli) {
    let err = |args: &[&str]| {
        let out = cli.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(&["orders", "cancel", "not-an-id"]).contains("is not an order id"));
    assert!(err(&["orders", "show", "01a20000-0000-7000-8000-000000000000"]).contains("not found"));
    assert!(err(&["numbers", "import", "--range", "+15550000000-+15559999999"])
        .contains("at most 2000000"));
    assert!(err(&["numbers", "search", "--prefix", "' OR 1=1"]).contains("--prefix"));
    let c: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "customers",
        "create",
        "--name",
        "Acme",
        "--contract-ref",
        "A",
        "--json",
    ]))
    .unwrap();
    let id = c["id"].as_str().unwrap();
    assert!(err(&["customers", "create", "--name", "Other", "--contract-ref", "A"])
        .contains("contract_ref: another customer has this contract reference"));
    assert!(err(&["orders", "create", "--customer", id, "--count", "1"])
        .contains("only 0 matching numbers are available; the order asks for 1"));
    assert!(err(&["users", "create-admin", "--email", "not-an-email"])
        .contains("email: is not an e-mail address"));
    let missing = cli.dir.path().join("missing.csv");
    assert!(err(&["numbers", "import", missing.to_str().unwrap()]).contains("cannot open"));
}

#[test]
fn config_example_documents_every_key_and_secrets_never_print() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_peerex")).args(["config", "example"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "data_dir",
        "database_url",
        "listen",
        "carrier_name",
        "secure_cookies",
        "log_format",
        "session_hours",
    ] {
        assert!(text.contains(&format!("{key} =")), "{key} missing from the example");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["config", "show"])
        .env("PEEREX_DATABASE_URL", "postgres://peerex:s3cret@db/peerex")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("postgres://peerex:***@db/peerex") && !text.contains("s3cret"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["config", "show"])
        .env("PEEREX_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
}

/// `peerex demo` starts, prints where to look, and what it prints works.
#[tokio::test]
async fn demo_starts_seeded_and_prints_working_urls() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("PEEREX_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut portal, mut mail) = (None, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (portal.is_none() || mail.is_none()) && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
            if let Some(url) = line.trim().strip_prefix("Operator portal") {
                portal = Some(url.trim().to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("Mail ") {
                mail = rest.split_whitespace().next().map(str::to_owned);
            }
        }
    }
    let portal = portal.expect("the demo prints the operator portal URL");
    // The mail catcher's page answers where the demo says.
    let mail = mail.expect("the demo prints where to read its mail");
    let caught = reqwest::get(&mail).await.unwrap().text().await.unwrap();
    assert!(caught.contains("Mail caught"), "{caught}");
    let base = portal.trim_end_matches("/operator").to_owned();
    let health: serde_json::Value =
        reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    // The printed credentials sign in, and the seeded world is there.
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let page =
        client.get(format!("{base}/operator/login")).send().await.unwrap().text().await.unwrap();
    let csrf = testkit::hidden_value(&page, "csrf").unwrap();
    let home = client
        .post(format!("{base}/operator/login"))
        .form(&[
            ("email", "admin@carrier.example"),
            ("password", "peerex-demo-password"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // SIGTERM, as a person's Ctrl-C would: the demo shuts down and removes its data.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert!(
        home.contains("9995") && home.contains("10000"),
        "dashboard shows 9,995 available of 10,000: {home}"
    );
}
