//! A port-in with real processes: `peerex serve` is killed with SIGKILL while it pushes the port-in's
//! numbers to Zoom inactive, started again on the same database, killed again while it activates them,
//! and started again. Every number ends active in Zoom exactly once, the port-in `active`, and each
//! number's audit trail says porting → active once.

use common::cluster::{platform_numbers, Cluster};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

mod common;

const PORTED: usize = 600;
const PEERING: &str = "/v2/number_management/peering_numbers";

/// How many calls of `method` the delay fault still has to hold (it spends one per call).
async fn left(http: &reqwest::Client, zoom: &str, method: &str) -> u64 {
    let faults: Value =
        http.get(format!("{zoom}/_sim/faults")).send().await.unwrap().json().await.unwrap();
    faults["faults"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["method"] == method))
        .and_then(|f| f["count"].as_u64())
        .unwrap_or(0)
}

async fn port_in(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    http.get(format!("{base}/api/v1/port-ins/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_state(http: &reqwest::Client, p: &Cluster, token: &str, id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = port_in(http, &p.base(0), token, id).await;
        if v["state"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "port-in still {} (want {state})", v["state"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills instance 0 once `method`'s delay fault (of `count` calls) has held its second call.
async fn kill_on_second_call(p: &mut Cluster, http: &reqwest::Client, method: &str, count: u64) {
    let zoom = p.zoom.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count - left(http, &zoom, method).await < 2 {
        assert!(Instant::now() < deadline, "the second {method} never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.kill9(0);
}

async fn killed_mid_port_in_and_restarted(db: testkit::Db) {
    let mut p = Cluster::new(db, 1).await;
    p.set("PEEREX_ZOOM__TIMEOUT_SECONDS", "2");
    // One worker: the port-in's batches go one after another, so the kill lands mid-way.
    p.set("PEEREX_ZOOM__WORKERS", "1");
    p.set("PEEREX_ZOOM__REQUESTS_PER_SECOND", "40");
    p.set("PEEREX_ZOOM__LEASE_SECONDS", "5");
    let customer = p.seed_acme("+15550300000-+15550300009", 1);
    let token = p.token();
    let http = reqwest::Client::new();
    p.serve(0).await;
    p.install().await;
    p.wait_for(0, &token, &customer, "active", 1, Duration::from_secs(30)).await;

    // The port-in: 600 numbers the inventory does not have, in three pushes of 200.
    let numbers: Vec<String> = (0..PORTED).map(|i| format!("+1555040{i:04}")).collect();
    let date = (time::OffsetDateTime::now_utc().date() + time::Duration::days(5)).to_string();
    let hold =
        |method: &str| json!({ "path": PEERING, "method": method, "delay_ms": 400, "count": 20 });
    p.sim_post("/_sim/faults", &hold("POST")).await;
    let created: Value = http
        .post(format!("{}/api/v1/port-ins", p.base(0)))
        .bearer_auth(&token)
        .json(&json!({ "customer_id": customer, "numbers": numbers, "losing_carrier": "Old Tel", "requested_date": date }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();

    kill_on_second_call(&mut p, &http, "POST", 20).await;
    let at_kill = p.zoom_numbers().await.len() - 1;
    assert!((1..PORTED).contains(&at_kill), "killed mid-push: Zoom had {at_kill} of {PORTED}");
    p.serve(0).await;
    wait_state(&http, &p, &token, &id, "pushed_inactive").await;
    let inactive = p.zoom_numbers().await.iter().filter(|n| n["status"] == false).count();
    assert_eq!(inactive, PORTED, "every ported number is in Zoom, inactive");

    p.sim_post("/_sim/faults", &hold("PATCH")).await;
    let r = http
        .post(format!("{}/api/v1/port-ins/{id}/complete", p.base(0)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "complete: {}", r.status());
    kill_on_second_call(&mut p, &http, "PATCH", 20).await;
    let active_at_kill = p.zoom_numbers().await.iter().filter(|n| n["status"] == true).count() - 1;
    assert!(
        (1..PORTED).contains(&active_at_kill),
        "killed mid-activation: {active_at_kill} of {PORTED} active in Zoom"
    );
    p.serve(0).await;
    wait_state(&http, &p, &token, &id, "active").await;

    let in_zoom = p.zoom_numbers().await;
    let listed: Vec<&str> = in_zoom.iter().filter_map(|n| n["phone_number"].as_str()).collect();
    let unique: HashSet<&str> = listed.iter().copied().collect();
    assert_eq!((listed.len(), unique.len()), (PORTED + 1, PORTED + 1), "each number once");
    assert!(in_zoom.iter().all(|n| n["status"] == true), "every number active in Zoom");
    let mine = platform_numbers(&p.base(0), &token, &customer).await;
    assert_eq!(mine.iter().filter(|n| n["state"] == "active").count(), PORTED + 1);
    for n in mine
        .iter()
        .filter(|n| n["number"].as_str().is_some_and(|s| s.starts_with("+1555040")))
        .take(50)
    {
        let detail: Value = http
            .get(format!("{}/api/v1/numbers/{}", p.base(0), n["id"].as_str().unwrap()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let trail: Vec<&str> =
            detail["events"].as_array().unwrap().iter().filter_map(|e| e["to"].as_str()).collect();
        assert_eq!(trail, ["porting", "active"], "{}", n["number"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_port_in_then_restart_converges_on_sqlite() {
    killed_mid_port_in_and_restarted(testkit::Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_port_in_then_restart_converges_on_postgres() {
    killed_mid_port_in_and_restarted(testkit::Db::Postgres).await;
}
