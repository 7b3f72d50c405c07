//! `peerex route`, the routing-only instance, run as an operator runs it beside an SBC pair: it
//! answers lookups and exposes its staleness in `/healthz` and `/metrics`; restarted while the
//! database cannot be reached, it answers inbound calls from the snapshot it kept on disk, and
//! refuses a snapshot written by an instance following another database.

mod common;

use common::route::RouteProcess;
use std::path::Path;
use std::time::{Duration, Instant};

const ACTIVE: &str = "+15550100001";

/// A `peerex route` process and its lookup API.
struct Route {
    _process: RouteProcess,
    http: String,
}

impl Route {
    fn start(database_url: &str, data_dir: &Path) -> Route {
        let env = [("PEEREX_ROUTING__STALE_AFTER_SECONDS", "1".to_owned())];
        let process = RouteProcess::start(database_url, data_dir, &env);
        Route { http: process.http.clone(), _process: process }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.http)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path).await.1).unwrap_or_default()
    }

    /// Waits up to 20 s for `path` to answer something `ok` accepts.
    async fn until(&self, path: &str, ok: impl Fn(&serde_json::Value) -> bool) {
        let t0 = Instant::now();
        loop {
            let v = self.json(path).await;
            if ok(&v) {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{path}: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A metric's value in Prometheus' text format.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_route_answers_and_restarts_from_its_file() {
    let (dir, path) = testkit::sqlite_path();
    let url = testkit::sqlite_url(&path);
    let cut = move || testkit::cut_off_sqlite(&path);
    route_answers_and_restarts_from_its_file(&url, &url, cut, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_route_answers_and_restarts_from_its_file() {
    let dir = tempfile_dir();
    let url = testkit::postgres_url().await;
    // Followed through a proxy the test cuts, as a remote site's link goes down.
    let (link, through) = testkit::proxy::Proxy::in_front_of(&url).await;
    route_answers_and_restarts_from_its_file(&url, &through, move || link.cut(), dir.path()).await;
}

fn tempfile_dir() -> testkit::TempDir {
    testkit::sqlite_path().0
}

/// `url` is where the test writes, `followed` the same database as `peerex route` reaches it,
/// until `cut` makes it unreachable there.
async fn route_answers_and_restarts_from_its_file(
    url: &str,
    followed: &str,
    cut: impl FnOnce(),
    dir: &Path,
) {
    let store = testkit::migrated_store(url).await;
    let now = time::OffsetDateTime::now_utc();
    let trunk = domain::trunk::ZoomTrunk::parse(
        "zoom-a",
        &["sip:zoom-a.example"],
        domain::trunk::NumberingRule::nanp(),
        now,
    )
    .unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let customer = testkit::insert_customer(&store, "Acme").await;
    store.set_customer_trunk(customer, Some(&trunk.name)).await.unwrap();
    let by = domain::Actor::System("test".into());
    let number = domain::Number::imported(
        domain::PhoneNumber::parse(ACTIVE).unwrap(),
        Default::default(),
        &by,
        now,
    );
    store.insert_numbers(&[number], &|_| {}).await.unwrap();
    assert!(store
        .force_number_state(
            &domain::PhoneNumber::parse(ACTIVE).unwrap(),
            domain::NumberState::Active,
            Some(customer)
        )
        .await
        .unwrap());

    let state = dir.join("state");
    let route = Route::start(followed, &state);
    route.until("/route?to=%2B15550100001", |v| v["status"] == 302).await;
    route.until("/healthz", |v| v["status"] == "ok").await;
    let (status, metrics) = route.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metric(&metrics, "peerex_routing_snapshot_age_seconds").is_some(), "{metrics}");
    let t0 = Instant::now();
    while !state.join("routing-snapshot.bin").exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no last-known-good file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(route);

    // Restarted while the database cannot be reached at all.
    cut();
    let route = Route::start(followed, &state);
    route.until("/healthz", |v| v["status"] == "stale").await;
    let answer = route.json("/route?to=%2B15550100001").await;
    assert_eq!(answer["status"], 302, "{answer}");
    assert!(answer["stale_seconds"].as_i64().is_some(), "{answer}");
    let t0 = Instant::now();
    loop {
        let metrics = route.get("/metrics").await.1;
        if metric(&metrics, "peerex_routing_snapshot_stale") == Some(1.0) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(route);

    // The state directory under an instance of another deployment (another database, which
    // cannot be reached either): the file is refused, so nothing is answered from it.
    let elsewhere = if url.starts_with("postgres") {
        "postgres://peerex@127.0.0.1:1/peerex".to_owned()
    } else {
        format!("sqlite://{}/missing/peerex.db?mode=rw", dir.display())
    };
    let route = Route::start(&elsewhere, &state);
    route
        .until("/healthz", |v| {
            v["detail"].as_str().is_some_and(|d| d.contains("was written following the database"))
        })
        .await;
    let (status, body) = route.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = route.get("/route?to=%2B15550100001").await;
    assert_eq!(status, 503, "{body}");
}
