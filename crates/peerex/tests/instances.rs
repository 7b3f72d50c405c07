//! Several `peerex serve` processes on one PostgreSQL, with the Zoom simulator as a process of its own
//! (the harness in `common/cluster.rs`): what they share lives in the database, so together they
//! stay under one Zoom account's rate limit, take each ordered number to Zoom once, take over a
//! stopped instance's jobs, and refuse a webhook another instance has seen.

use common::cluster::Cluster;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use zoom_sim::demo;

mod common;

const PEERING: &str = "/v2/number_management/peering_numbers";

/// Three instances, four workers each, push 12,000 numbers (60 POSTs of 200) to one Zoom account
/// allowed 10 requests a second, each instance configured for 8 a second: the budget is the
/// account's, shared through the database, so Zoom never answers 429 and never sees more than its
/// limit in a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_pushing_to_one_account_stay_under_its_rate_limit() {
    const ORDER: usize = 12_000;
    let mut c = Cluster::with_sim(testkit::Db::Postgres, 3, &["--rate-limit", "10"]).await;
    c.set("PEEREX_ZOOM__WORKERS", "4");
    c.set("PEEREX_ZOOM__REQUESTS_PER_SECOND", "8");
    let acme = c.seed_acme("+15550400000-+15550411999", ORDER);
    let token = c.token();
    c.serve_all().await;
    let started = Instant::now();
    c.install().await;
    let took = c.wait_for(1, &token, &acme, "active", ORDER, Duration::from_secs(60)).await;
    let rate = c.zoom_account().await["rate_limit"]["light"].clone();
    eprintln!(
        "{ORDER} numbers active {:.1} s after the install; Zoom's tally: {rate}",
        took.as_secs_f64()
    );
    assert_eq!(rate["limit"], 10);
    assert_eq!(rate["refused"], 0, "no 429 from Zoom: {rate}");
    let busiest = rate["busiest_second"].as_u64().expect("busiest_second");
    assert!(busiest <= 10, "at most Zoom's limit in any second: {rate}");
    // The three instances did share the work (each at 8 a second alone would take 7.5 s), and the
    // shared budget is used: 60 POSTs at 8 a second is 7.5 s at best.
    assert!(started.elapsed() >= Duration::from_secs(7), "{:?}", started.elapsed());
    let in_zoom = c.zoom_numbers().await;
    assert_eq!(in_zoom.len(), ORDER, "Zoom has each number once");
}

/// Four clients place 240 one-number orders for one linked customer through three instances at once.
/// Each order moves the customer's waiting numbers to `provisioning` and cuts push jobs from them:
/// each number is queued once, pushed once, and active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_on_three_instances_queue_each_number_once() {
    const CLIENTS: usize = 4;
    const ORDERS: usize = 60;
    let mut c = Cluster::new(testkit::Db::Postgres, 3).await;
    c.set("PEEREX_ZOOM__REQUESTS_PER_SECOND", "30");
    let acme = c.seed_acme("+15550500000-+15550500299", 0);
    let token = c.token();
    c.serve_all().await;
    c.install().await;
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, token, acme) = (http.clone(), token.clone(), acme.clone());
        let bases: Vec<String> = (0..3).map(|i| c.base(i)).collect();
        clients.push(tokio::spawn(async move {
            for n in 0..ORDERS {
                let base = &bases[(client + n) % bases.len()];
                let r = http
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .json(&json!({ "customer_id": acme, "count": 1 }))
                    .send()
                    .await
                    .expect("order");
                assert_eq!(
                    r.status(),
                    reqwest::StatusCode::CREATED,
                    "{}",
                    r.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let total = CLIENTS * ORDERS;
    c.wait_for(2, &token, &acme, "active", total, Duration::from_secs(60)).await;

    // What operators see on the Jobs page: one push per number.
    let store = store::Store::connect(&c.db_url).await.expect("database");
    let mut queued: HashMap<String, usize> = HashMap::new();
    for job in store.list_jobs(None, 100_000).await.expect("jobs") {
        if job.kind == domain::onboarding::JobKind::PushNumbers {
            for n in &job.payload.numbers {
                *queued.entry(n.to_string()).or_default() += 1;
            }
        }
    }
    let twice: Vec<_> = queued.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(queued.len(), total, "every ordered number queued");
    assert!(twice.is_empty(), "{} numbers queued more than once: {twice:?}", twice.len());
    assert_eq!(c.zoom_numbers().await.len(), total);
}

/// Acme's order of 200 numbers (one push job) is under way on instance 0 (Zoom holds the POST), and
/// instance 1 is idle. `stop` stops instance 0 mid-call; returns how long after the stop every number
/// was active (pushed by instance 1).
async fn stopped_mid_call(lease_seconds: &str, stop: impl AsyncFnOnce(&mut Cluster)) -> Duration {
    let mut c = Cluster::new(testkit::Db::Postgres, 2).await;
    c.set("PEEREX_ZOOM__WORKERS", "1");
    c.set("PEEREX_ZOOM__TIMEOUT_SECONDS", "60");
    c.set("PEEREX_ZOOM__LEASE_SECONDS", lease_seconds);
    let acme = c.seed_acme("+15550600000-+15550600199", 200);
    let token = c.token();
    // Zoom holds the first POST of numbers for a minute: it is in flight when instance 0 stops.
    c.sim_post(
        "/_sim/faults",
        &json!({ "path": PEERING, "method": "POST", "delay_ms": 60_000, "count": 1 }),
    )
    .await;
    c.serve(0).await;
    c.install().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let faults = c.sim("/_sim/faults").await;
        if faults["faults"].as_array().is_some_and(Vec::is_empty) {
            break; // the delayed POST has arrived
        }
        assert!(Instant::now() < deadline, "the push never reached Zoom: {faults}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.serve(1).await;
    let stopped = Instant::now();
    stop(&mut c).await;
    c.wait_for(1, &token, &acme, "active", 200, Duration::from_secs(90)).await;
    let took = stopped.elapsed();
    assert_eq!(c.zoom_numbers().await.len(), 200);
    took
}

/// kill -9 of the instance holding a job: its heartbeat stops, and the other instance takes the job
/// once the lease (5 s here) runs out — not minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_job_is_taken_over_once_its_heartbeat_stops() {
    let took = stopped_mid_call("5", async |c| c.kill9(0)).await;
    eprintln!("all active {:.1} s after kill -9", took.as_secs_f64());
    assert!(took >= Duration::from_secs(4), "not before the lease ran out: {took:?}");
    assert!(took < Duration::from_secs(20), "well before 120 s: {took:?}");
}

/// SIGTERM: the stopping instance hands its job back at once; the other instance takes it in well
/// under the lease (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_hands_the_job_back_at_once() {
    let took = stopped_mid_call("60", async |c| {
        let exit = c.terminate(0).await;
        eprintln!("instance 0 exited {:.2} s after SIGTERM", exit.as_secs_f64());
    })
    .await;
    eprintln!("all active {:.1} s after SIGTERM", took.as_secs_f64());
    assert!(took < Duration::from_secs(10), "handed back, not left to its lease: {took:?}");
}

/// A signed `app_deauthorized` as Zoom sends it, for a removal at `at`.
fn deauthorization(at: time::OffsetDateTime) -> (String, String, String) {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    let body = json!({
        "event": "app_deauthorized",
        "event_ts": millis,
        "payload": {
            "account_id": demo::ACME_ACCOUNT_ID,
            "user_id": "acmeAdminUser",
            "client_id": demo::CLIENT_ID,
            "deauthorization_time": at.format(&time::format_description::well_known::Rfc3339).expect("rfc3339"),
        }
    })
    .to_string();
    let ts = at.unix_timestamp().to_string();
    let signature = zoom::webhook::signature(demo::SECRET_TOKEN, &ts, body.as_bytes());
    (ts, signature, body)
}

async fn deliver(
    base: &str,
    (ts, signature, body): &(String, String, String),
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/zoom/webhook"))
        .header("content-type", "application/json")
        .header(zoom::webhook::TIMESTAMP_HEADER, ts)
        .header(zoom::webhook::SIGNATURE_HEADER, signature)
        .body(body.clone())
        .send()
        .await
        .expect("webhook")
}

/// Acme removes the app (the webhook reaches instance 0), installs it again; the same delivery is then
/// replayed to instance 1, as sent and with its signature's hex in upper case: refused, and the fresh
/// install stays linked with its numbers active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_replayed_to_another_instance_is_refused() {
    let mut c = Cluster::new(testkit::Db::Postgres, 2).await;
    let acme = c.seed_acme("+15550700000-+15550700004", 5);
    let token = c.token();
    c.serve_all().await;
    c.install().await;
    c.wait_for(1, &token, &acme, "active", 5, Duration::from_secs(30)).await;

    let removal = deauthorization(time::OffsetDateTime::now_utc());
    let r = deliver(&c.base(0), &removal).await;
    let (status, text) = (r.status(), r.text().await.unwrap_or_default());
    assert_eq!(status, reqwest::StatusCode::OK, "{text}");
    assert!(text.contains("\"suspended\":5"), "{text}");
    c.wait_for(1, &token, &acme, "suspended", 5, Duration::from_secs(5)).await;

    // Installed again (a second later, so the install is after the removal by any clock).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.install().await;
    c.wait_for(1, &token, &acme, "active", 5, Duration::from_secs(30)).await;

    let (ts, signature, body) = removal.clone();
    let upper = format!("v0={}", signature.trim_start_matches("v0=").to_uppercase());
    for replay in [(ts.clone(), signature, body.clone()), (ts, upper, body)] {
        let r = deliver(&c.base(1), &replay).await;
        assert_eq!(
            r.status(),
            reqwest::StatusCode::CONFLICT,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }
    let customer: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/numbers", c.base(1)))
        .bearer_auth(&token)
        .query(&[("customer_id", acme.as_str()), ("state", "active")])
        .send()
        .await
        .expect("numbers")
        .json()
        .await
        .expect("json");
    assert_eq!(customer["numbers"].as_array().map(Vec::len), Some(5), "still active: {customer}");
}

/// Every instance beats the routing heartbeat (how routing instances on read replicas tell that
/// changes still reach them), and the database lets one beat through per half interval however
/// many instances beat: three instances beating every second move it on every 0.5 to 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_beat_the_routing_heartbeat_once_per_half_interval_between_them() {
    let mut c = Cluster::new(testkit::Db::Postgres, 3).await;
    c.set("PEEREX_ROUTING__HEARTBEAT_SECONDS", "1");
    c.serve_all().await;
    let store = store::Store::connect(&c.db_url).await.unwrap();
    let mut beats = Vec::new();
    let t0 = Instant::now();
    while beats.len() < 6 {
        assert!(t0.elapsed() < Duration::from_secs(30), "beats so far: {beats:?}");
        let at = store.routing_heartbeat().await.unwrap().beat_at.unwrap();
        if beats.last() != Some(&at) {
            beats.push(at);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first was the migration's, or a beat from before the last instance started.
    for pair in beats[1..].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= time::Duration::milliseconds(500) && gap <= time::Duration::milliseconds(2500),
            "{beats:?}"
        );
    }
}
