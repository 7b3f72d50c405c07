//! Call routing end to end on both databases: numbers in the store, the snapshot following them,
//! the HTTP lookup API and the SIP redirect server on real sockets, and real `sipp` INVITEs.

use domain::customer::{ContractState, Customer};
use domain::number::NumberAttrs;
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{Actor, CustomerId, Number, PhoneNumber};
use routing::{RoutingConfig, Started};
use serde_json::Value;
use std::time::{Duration, Instant};
use store::Store;
use testkit::Db;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(testkit::Db::Sqlite).await })* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(testkit::Db::Postgres).await })* }
    };
}

on_both!(lookups_follow_the_contract_and_a_release_stops_routing_at_once, sipp_invites_get_302_480_404);

struct World {
    store: Store,
    started: Started,
    _dir: Option<tempfile::TempDir>,
}

const ACTIVE: &str = "+15550100001";
const SUSPENDED: &str = "+15550100002";
const RELEASED: &str = "+15550100003";
const UNKNOWN: &str = "+15550100999";

async fn set_state(store: &Store, e164: &str, state: &str, customer: Option<CustomerId>) {
    assert!(store.force_number_state(e164, state, customer.map(|c| c.as_uuid())).await.unwrap());
}

async fn world(db: Db) -> World {
    let (url, dir) = match db {
        Db::Sqlite => {
            let (dir, path) = testkit::sqlite_path();
            (testkit::sqlite_url(&path), Some(dir))
        }
        Db::Postgres => (testkit::postgres_url().await, None),
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let trunk = ZoomTrunk::parse("zoom-a", &["sip:zoom-a.example:5061;transport=tls"], NumberingRule::nanp(), now).unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let c = Customer { id: CustomerId::new(), name: "Acme".into(), contract_ref: "C-1".into(), contract_state: ContractState::Active, created_at: now, zoom_trunk: None };
    store.insert_customer(&c).await.unwrap();
    store.set_customer_trunk(c.id, Some("zoom-a")).await.unwrap();
    let by = Actor::System("test".into());
    let numbers: Vec<_> = [ACTIVE, SUSPENDED, RELEASED].iter().map(|n| Number::imported(PhoneNumber::parse(n).unwrap(), NumberAttrs::default(), &by, now)).collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    set_state(&store, ACTIVE, "active", Some(c.id)).await;
    set_state(&store, SUSPENDED, "suspended", Some(c.id)).await;
    set_state(&store, RELEASED, "aging", None).await;
    let config = RoutingConfig { http_listen: "127.0.0.1:0".into(), sip_listen: "127.0.0.1:0".into(), ..Default::default() };
    let started = routing::start(store.clone(), &config).await.unwrap();
    assert!(routing::wait_ready(&started.routing, Duration::from_secs(10)).await, "snapshot loaded");
    World { store, started, _dir: dir }
}

async fn lookup(w: &World, query: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{}/route?{query}", w.started.http.unwrap())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn lookups_follow_the_contract_and_a_release_stops_routing_at_once(db: Db) {
    let w = world(db).await;
    let (status, body) = lookup(&w, "to=sip:%2B15550100001@peerex.example;user=phone").await;
    assert_eq!(status, 200);
    assert_eq!((body["decision"].as_str(), body["status"].as_u64(), body["trunk"].as_str()), (Some("route"), Some(302), Some("zoom-a")), "{body}");
    assert_eq!(body["routes"][0]["uri"], "sip:+15550100001@zoom-a.example:5061;transport=tls");
    assert_eq!(body["routes"][0]["dst_uri"], "sip:zoom-a.example:5061;transport=tls");
    for (query, want, reason) in [
        ("to=5550100002", 480, "suspended"),
        ("to=tel:%2B1-555-010-0003", 404, "released"),
        ("to=%2B15550100999", 404, "not_provisioned"),
        ("direction=outbound&from=%2B15550100001&trunk=zoom-b", 403, "wrong_trunk"),
        ("direction=outbound&from=%2B15550100999&trunk=zoom-a", 403, "not_customer_number"),
    ] {
        let (status, body) = lookup(&w, query).await;
        assert_eq!(status, 200, "{query}: unknown numbers are decisions, never HTTP errors");
        assert_eq!((body["status"].as_u64(), body["reason"].as_str()), (Some(want), Some(reason)), "{query}: {body}");
    }
    let (_, body) = lookup(&w, "direction=outbound&from=%2B15550100001&trunk=zoom-a").await;
    assert_eq!(body["decision"], "allow");
    assert_eq!(lookup(&w, "direction=sideways&to=1").await.0, 400);

    // Released: the next lookups stop routing it, well within the propagation goal.
    let before = body["generation"].as_i64().unwrap();
    let t0 = Instant::now();
    set_state(&w.store, ACTIVE, "aging", None).await;
    loop {
        let (_, body) = lookup(&w, "to=%2B15550100001").await;
        if body["status"] == 404 {
            assert_eq!(body["reason"], "released");
            assert!(body["generation"].as_i64().unwrap() > before);
            break;
        }
        assert!(t0.elapsed() < Duration::from_millis(500), "still routed after {:?}", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("change -> decision: {:?}", t0.elapsed());
}

/// Runs one sipp INVITE for `number`, expecting `status`; true when sipp saw it.
fn sipp(sip: std::net::SocketAddr, transport: &str, number: &str, status: u16) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let scenario = include_str!("sipp-expect.xml").replace("EXPECTED", &status.to_string());
    let path = dir.path().join("uac.xml");
    std::fs::write(&path, scenario).unwrap();
    let out = std::process::Command::new("sipp")
        .arg(sip.to_string())
        .args(["-sf", path.to_str().unwrap(), "-s", number, "-m", "1", "-t", transport, "-i", "127.0.0.1", "-p", "0", "-timeout", "10s", "-nostdin"])
        .args(["-trace_err", "-error_file", dir.path().join("err.log").to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    let ok = out.status.success();
    if !ok {
        eprintln!("sipp {number} expecting {status}: {}\n{}", String::from_utf8_lossy(&out.stdout).lines().rev().take(5).collect::<Vec<_>>().join("\n"), std::fs::read_to_string(dir.path().join("err.log")).unwrap_or_default());
    }
    ok
}

async fn sipp_invites_get_302_480_404(db: Db) {
    let w = world(db).await;
    let sip = w.started.sip.unwrap();
    let cases = [(ACTIVE, 302), (SUSPENDED, 480), (RELEASED, 404), (UNKNOWN, 404)];
    let results = tokio::task::spawn_blocking(move || {
        let mut r = Vec::new();
        for (n, s) in cases {
            r.push((n, s, sipp(sip, "u1", n, s)));
        }
        // TCP too, for one of them.
        r.push((ACTIVE, 302, sipp(sip, "t1", ACTIVE, 302)));
        r
    })
    .await
    .unwrap();
    for (n, s, ok) in results {
        assert!(ok, "INVITE for {n} did not get {s}");
    }
    // A wrong expectation fails: the test can tell.
    assert!(!tokio::task::spawn_blocking(move || sipp(sip, "u1", SUSPENDED, 302)).await.unwrap());
}
