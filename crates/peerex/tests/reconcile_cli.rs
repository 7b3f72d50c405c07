//! `peerex reconcile` as an operator runs it, against `peerex serve` and the Zoom simulator as
//! processes of their own, on SQLite and PostgreSQL: a converged account prints no drift; a number
//! Zoom support deleted is found; two `peerex reconcile` processes at once record it once; the JSON
//! output, the table, the API and `/metrics` agree.

use common::cluster::Cluster;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

mod common;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(testkit::Db::Sqlite).await })* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(testkit::Db::Postgres).await })* }
    };
}

on_both!(reconcile_prints_drift_and_two_processes_record_it_once);

const GONE: &str = "+15550100000";

/// The account cycle of `peerex reconcile --json`'s output.
fn account_cycle(report: &Value) -> Value {
    report["cycles"]
        .as_array()
        .expect("cycles")
        .iter()
        .find(|c| c["scope"].as_str().is_some_and(|s| s.starts_with("account:")))
        .cloned()
        .expect("an account cycle")
}

async fn reconcile_prints_drift_and_two_processes_record_it_once(db: testkit::Db) {
    let mut c = Cluster::new(db, 1).await;
    // Only the command line reconciles here: the schedule would race it.
    c.set("PEEREX_ZOOM__RECONCILE_MINUTES", "0");
    c.set("PEEREX_HTTP__METRICS_TOKEN", "metrics-secret-of-the-test");
    let acme = c.seed_acme("+15550100000-+15550100009", 5);
    let token = c.token();
    c.serve(0).await;
    c.install().await;
    c.wait_for(0, &token, &acme, "active", 5, Duration::from_secs(30)).await;

    let report: Value = serde_json::from_str(&c.cli(&["reconcile", "--json"])).expect("json");
    let cycle = account_cycle(&report);
    assert_eq!((cycle["outcome"].as_str(), cycle["listed"].as_u64()), (Some("complete"), Some(5)));
    assert_eq!(cycle["findings"], serde_json::json!([]), "{report}");
    assert!(c.cli(&["reconcile"]).contains("no drift found"));
    // A customer the operator mistyped is not reported as "no drift".
    for (id, says) in [
        ("acme", "--customer is not a customer id"),
        ("0190f5a0-0000-7000-8000-000000000000", "no customer has the id"),
    ] {
        let out = c.command().args(["reconcile", "--customer", id]).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{id}: {err}");
    }

    // Zoom support deletes a number; two operators reconcile at the same moment.
    let r = reqwest::Client::new()
        .delete(format!("{}/_sim/numbers/{}", c.zoom, GONE.replace('+', "%2B")))
        .send()
        .await
        .expect("simulator");
    assert!(r.status().is_success());
    let runs: Vec<_> = (0..2)
        .map(|_| {
            c.command()
                .args(["reconcile", "--json"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("peerex reconcile")
        })
        .collect();
    let mut recorded_new = 0;
    for run in runs {
        let out = run.wait_with_output().expect("wait");
        assert!(out.status.success(), "drift is a report: exit code 0");
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        let cycle = account_cycle(&report);
        match cycle["outcome"].as_str() {
            Some("complete") => {
                assert_eq!(cycle["findings"][0]["kind"], "gone_from_zoom", "{report}");
                assert_eq!(cycle["findings"][0]["subject"], GONE);
                assert_eq!(cycle["findings"][0]["repair"], "push_again");
                recorded_new += cycle["recorded"]["opened"].as_u64().expect("opened");
            }
            Some("skipped") => {}
            other => panic!("{other:?}: {report}"),
        }
    }
    assert_eq!(recorded_new, 1, "one finding opened between the two");

    // The API, the table and the dry run agree; the gauge counts it, other kinds at 0.
    let found: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/findings", c.base(0)))
        .bearer_auth(&token)
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("json");
    let found = found["findings"].as_array().expect("findings");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["kind"].as_str(), found[0]["subject"].as_str()),
        (Some("gone_from_zoom"), Some(GONE))
    );
    let table = c.cli(&["reconcile", "--dry-run"]);
    assert!(
        table.contains("gone_from_zoom") && table.contains(GONE) && table.contains("dry run"),
        "{table}"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", c.base(0)))
        .bearer_auth("metrics-secret-of-the-test")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("peerex_findings_open{kind=\"gone_from_zoom\"} 1"), "{metrics}");
    assert!(metrics.contains("peerex_findings_open{kind=\"routing_behind\"} 0"), "{metrics}");
    // The outbox drained: the push is done, nothing waits past the threshold.
    assert!(metrics.contains("peerex_jobs{state=\"failed\"} 0"), "{metrics}");
    assert!(metrics.contains("peerex_jobs_stuck 0"), "{metrics}");
}
