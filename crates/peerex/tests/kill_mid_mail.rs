//! The mail outbox with real processes: `peerex serve` is killed with SIGKILL while it is in the
//! middle of sending a mail to a real SMTP server (aiosmtpd, `crates/app/tests/smtp/server.py`),
//! then started again on the same database. The mail reaches the server exactly once.

use common::cluster::{Cluster, CUSTOMER_EMAIL};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_whose_sender_is_killed_mid_message_is_sent_once_on_sqlite() {
    killed_mid_mail_and_restarted(testkit::Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_whose_sender_is_killed_mid_message_is_sent_once_on_postgres() {
    killed_mid_mail_and_restarted(testkit::Db::Postgres).await
}

/// Waits up to `within` for `done`, checking every 50 ms.
async fn until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "after {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

async fn killed_mid_mail_and_restarted(db: testkit::Db) {
    // A fresh temporary directory (the database path in it is not used).
    let (smtp_dir, _) = testkit::sqlite_path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/tests/smtp/server.py");
    let _smtp = tokio::process::Command::new("python3")
        .arg(script)
        .arg(smtp_dir.path())
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd");
    let port_file = smtp_dir.path().join("port");
    until(Duration::from_secs(30), "the SMTP server listens", || port_file.exists()).await;
    let port = std::fs::read_to_string(&port_file).unwrap();
    // The first attempt is answered slowly: the instance is killed while it waits.
    std::fs::write(smtp_dir.path().join("faults"), "slow\n").unwrap();

    let mut p = Cluster::new(db, 1).await;
    p.set("PEEREX_MAIL__HOST", "127.0.0.1");
    p.set("PEEREX_MAIL__PORT", port.trim());
    p.set("PEEREX_MAIL__TLS", "none");
    p.set("PEEREX_MAIL__SENDER", "Demo Carrier <numbers@carrier.example>");
    p.set("PEEREX_MAIL__TIMEOUT_SECONDS", "2");
    p.set("PEEREX_MAIL__LEASE_SECONDS", "1");
    p.seed_acme("+15550300000-+15550300009", 3);
    let token = p.token();
    p.serve(0).await;
    // Linking applies the order: its mail is written with it and the instance starts sending.
    p.install().await;
    let attempts = smtp_dir.path().join("attempts");
    until(Duration::from_secs(30), "the mail's first attempt", || !lines(&attempts).is_empty())
        .await;
    p.kill9(0);
    p.serve(0).await;

    let http = reqwest::Client::new();
    let started = Instant::now();
    let mails = loop {
        let mails: serde_json::Value = http
            .get(format!("{}/api/v1/mails?state=sent", p.base(0)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !mails["mails"].as_array().unwrap().is_empty() {
            break mails;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the mail was never sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent = &mails["mails"][0];
    assert_eq!(sent["kind"], "order_applied");
    assert_eq!(sent["attempts"], 2, "{sent}");
    let received = lines(&smtp_dir.path().join("mails.jsonl"));
    assert_eq!(received.len(), 1, "once: {received:?}");
    assert!(received[0].contains(CUSTOMER_EMAIL));
    assert_eq!(lines(&attempts).len(), 2);
}
