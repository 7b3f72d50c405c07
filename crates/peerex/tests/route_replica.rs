//! `peerex route` at a remote site on a real PostgreSQL streaming replica, as README's deployment
//! has it: a change made on the primary reaches the instance's answers through replication; when
//! replication is cut the replica keeps answering queries with nothing new in them, and the
//! instance, seeing the heartbeat stop, turns stale within its threshold (inbound still answered,
//! outbound refused, emergency let through) instead of answering as current; when replication
//! resumes it catches up on the change made meanwhile and is fresh again. The instance reports
//! its generation to the primary (`[routing] report_database_url`), where the reconciler compares
//! it: a `routing_behind` finding while cut, closed once it caught up.
//!
//! The test starts its own primary and replica (`scripts/pg-throwaway replica`), whatever
//! `PEEREX_TEST_PG_URL` says: it must cut their link. Replication runs through a TCP proxy the test
//! cuts, as the link between the central site and a remote one would be.

mod common;

use common::route::RouteProcess;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::replica::PgServer;

const ACTIVE: &str = "+15550100001";
/// Suspended at first; activated, then suspended again on the primary.
const SECOND: &str = "+15550100002";
const STALE_AFTER: u64 = 4;
const HEARTBEAT: u64 = 1;
const CHECK: u64 = 1;
const NAME: &str = "site-a-route-1";

/// A `peerex route` process and its lookup API.
struct Route {
    _process: RouteProcess,
    http: String,
}

impl Route {
    /// Follows `replica`; reports to `primary` when given.
    fn start(replica: &str, primary: Option<&str>, data_dir: &Path) -> Route {
        let mut env = vec![
            ("PEEREX_ROUTING__TRUSTED_PROXIES", r#"["127.0.0.1"]"#.to_owned()),
            ("PEEREX_ROUTING__STALE_AFTER_SECONDS", STALE_AFTER.to_string()),
            ("PEEREX_ROUTING__HEARTBEAT_SECONDS", HEARTBEAT.to_string()),
            ("PEEREX_ROUTING__CHECK_SECONDS", CHECK.to_string()),
        ];
        if let Some(primary) = primary {
            env.push(("PEEREX_ROUTING__REPORT_DATABASE_URL", primary.to_owned()));
            env.push(("PEEREX_ROUTING__INSTANCE_NAME", NAME.to_owned()));
        }
        let process = RouteProcess::start(replica, data_dir, &env);
        Route { http: process.http.clone(), _process: process }
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}{path}", self.http)).await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default())
    }

    async fn inbound(&self, to: &str) -> serde_json::Value {
        self.get(&format!("/route?to={}", to.replace('+', "%2B"))).await.1
    }

    async fn outbound(&self, from: &str, to: &str) -> (u16, serde_json::Value) {
        let q = format!("/route?direction=outbound&trunk=zoom-a&from={from}&to={to}");
        self.get(&q.replace('+', "%2B")).await
    }

    async fn health(&self) -> String {
        self.get("/healthz").await.1["status"].as_str().unwrap_or_default().to_owned()
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.http)).await.ok()?.text().await.ok()?;
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

/// Waits up to `within` for `ok`, asking every 50 ms; panics naming `what` otherwise. How long it
/// took.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut ok: impl FnMut() -> F,
) -> Duration {
    let t0 = Instant::now();
    while !ok().await {
        assert!(t0.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t0.elapsed()
}

async fn set(store: &store::Store, e164: &str, state: domain::NumberState, c: domain::CustomerId) {
    let n = domain::PhoneNumber::parse(e164).unwrap();
    assert!(store.force_number_state(&n, state, Some(c)).await.unwrap());
}

/// The reconciler, on the primary, on a clock the test moves (its routing cycle compares each
/// instance with the generation the database had a minute earlier). No Zoom account is linked: it
/// runs the routing cycle only.
fn reconciler(primary: &store::Store, clock: &testkit::TestClock) -> app::App {
    let nowhere = "http://127.0.0.1:9";
    app::App::new(primary.clone(), std::sync::Arc::new(clock.clone()), app::Settings::default())
        .with_zoom(testkit::zoom_setup_on(nowhere, nowhere, clock))
}

/// The routing instances the reconciler has open `routing_behind` findings for, after a cycle.
async fn behind(app: &app::App) -> Vec<String> {
    app.reconcile(&app::reconcile::ReconcileRequest::default()).await.unwrap();
    let q = domain::findings::FindingQuery { open: Some(true), ..Default::default() };
    let found = app.findings(&q).await.unwrap();
    found
        .into_iter()
        .filter(|f| f.kind == domain::reconcile::FindingKind::RoutingBehind)
        .map(|f| f.subject)
        .collect()
}

/// The generation the primary reached, and the one the instance last reported there.
async fn positions(primary: &store::Store) -> (i64, Option<i64>) {
    let head = primary.routing_feed_head().await.unwrap().high;
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let seen = primary.routing_instances(since).await.unwrap();
    (head, seen.iter().find(|i| i.instance == NAME).map(|i| i.generation))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_its_primary_turns_stale_and_catches_up() {
    let primary_pg = tokio::task::spawn_blocking(PgServer::primary).await.unwrap();
    let primary = testkit::migrated_store(&primary_pg.url).await;
    let now = time::OffsetDateTime::now_utc();
    let trunk = domain::trunk::ZoomTrunk::parse(
        "zoom-a",
        &["sip:zoom-a.example"],
        domain::trunk::NumberingRule::nanp(),
        now,
    )
    .unwrap();
    primary.insert_trunk(&trunk).await.unwrap();
    let customer = testkit::insert_customer(&primary, "Acme").await;
    primary.set_customer_trunk(customer, Some(&trunk.name)).await.unwrap();
    let by = domain::Actor::System("test".into());
    let numbers: Vec<_> = [ACTIVE, SECOND]
        .iter()
        .map(|n| {
            let e164 = domain::PhoneNumber::parse(n).unwrap();
            domain::Number::imported(e164, Default::default(), &by, now)
        })
        .collect();
    primary.insert_numbers(&numbers, &|_| {}).await.unwrap();
    set(&primary, ACTIVE, domain::NumberState::Active, customer).await;
    set(&primary, SECOND, domain::NumberState::Suspended, customer).await;

    // The replica streams from the primary through the link the test cuts.
    let link = testkit::proxy::Proxy::start(primary_pg.addr()).await;
    let via = link.addr();
    let primary_dir = primary_pg.dir.clone();
    let replica_pg =
        tokio::task::spawn_blocking(move || PgServer::replica_of(&primary_dir, Some(via)))
            .await
            .unwrap();
    let replica = store::Store::connect(&replica_pg.url).await.unwrap();
    assert!(replica.routing_heartbeat().await.unwrap().replica);

    let state = tempfile_dir();
    let route = Route::start(&replica_pg.url, Some(&primary_pg.url), &state.path().join("state"));
    let within = Duration::from_secs(30);
    until("the instance answers from the replica", within, || async {
        route.inbound(ACTIVE).await["status"] == 302
    })
    .await;
    assert_eq!(route.inbound(SECOND).await["status"], 480);
    until("fresh", within, || async { route.health().await == "ok" }).await;
    let (status, body) = route.outbound(ACTIVE, "+442071234567").await;
    assert_eq!((status, body["decision"].as_str()), (200, Some("allow")), "{body}");

    // A change on the primary reaches the instance's answers through replication, and the
    // instance says so on the primary.
    set(&primary, SECOND, domain::NumberState::Active, customer).await;
    until("the change replicated and applied", within, || async {
        route.inbound(SECOND).await["status"] == 302
    })
    .await;
    until("its generation reported on the primary", within, || async {
        let (head, reported) = positions(&primary).await;
        reported == Some(head)
    })
    .await;
    assert_eq!(route.health().await, "ok");

    // Replication is cut. The replica keeps answering; the primary keeps beating (this very
    // instance beats there) and changes go on.
    let beat_before = primary.routing_heartbeat().await.unwrap().beat_at.unwrap();
    link.cut();
    let cut = Instant::now();
    set(&primary, SECOND, domain::NumberState::Suspended, customer).await;
    let bound = Duration::from_secs(STALE_AFTER + HEARTBEAT + CHECK + 3);
    let took =
        until("stale within the threshold", bound, || async { route.health().await == "stale" })
            .await;
    eprintln!(
        "stale {:.1} s after replication was cut (threshold {STALE_AFTER} s)",
        took.as_secs_f64()
    );
    assert!(
        took >= Duration::from_secs(STALE_AFTER - HEARTBEAT - CHECK),
        "stale after only {took:?}: it was not fresh before the cut"
    );
    // The replica itself still answers queries, and its heartbeat stands still.
    let on_replica = replica.routing_heartbeat().await.unwrap();
    assert!(
        on_replica.beat_at.unwrap() <= beat_before + time::Duration::seconds(HEARTBEAT as i64 + 1)
    );
    assert!(primary.routing_heartbeat().await.unwrap().beat_at.unwrap() > beat_before);

    // Inbound: answered from the copy, saying how stale; outbound refused; emergency passes.
    let answer = route.inbound(ACTIVE).await;
    assert_eq!(answer["status"], 302, "{answer}");
    assert!(answer["stale_seconds"].as_i64().is_some_and(|s| s >= STALE_AFTER as i64), "{answer}");
    assert_eq!(
        route.inbound(SECOND).await["status"],
        302,
        "the suspension has not reached the site"
    );
    let (status, body) = route.outbound(ACTIVE, "+442071234567").await;
    assert_eq!((status, body["decision"].as_str()), (503, Some("unavailable")), "{body}");
    let (status, body) = route.outbound(SECOND, "+44999").await;
    assert_eq!((status, body["emergency"].as_bool()), (200, Some(true)), "{body}");
    until("the stale gauge", within, || async {
        route.metric("peerex_routing_snapshot_stale").await == Some(1.0)
    })
    .await;
    // An instance started on the replica while it is cut off (no file to start from; reporting
    // nowhere) is stale from its first answer: the first beat it sees is judged by the replica's
    // clock against the primary's, there being no progress yet to go by.
    let late = Route::start(&replica_pg.url, None, &state.path().join("late"));
    until("the late instance loaded", within, || async { !late.health().await.is_empty() }).await;
    assert_eq!(late.health().await, "stale");
    assert_eq!(late.inbound(ACTIVE).await["status"], 302);
    assert_eq!(late.inbound(SECOND).await["status"], 302);
    assert_eq!(late.outbound(ACTIVE, "+442071234567").await.0, 503);
    // The reconciler's input: the instance reports, from behind, a generation the primary passed.
    let (head, reported) = positions(&primary).await;
    assert!(reported.is_some_and(|g| g < head), "reported {reported:?}, primary at {head}");
    // The reconciler samples the primary's generation, and a minute on finds the instance behind.
    let clock = testkit::TestClock::new();
    let reconcile = reconciler(&primary, &clock);
    assert_eq!(behind(&reconcile).await, Vec::<String>::new());
    clock.advance(time::Duration::minutes(2));
    assert_eq!(behind(&reconcile).await, [NAME]);
    assert!(cut.elapsed() < Duration::from_secs(60));

    // Replication resumes: the instance catches up on the change made meanwhile, fresh again.
    link.open();
    let took = until("fresh again", within, || async { route.health().await == "ok" }).await;
    eprintln!("fresh {:.1} s after replication resumed", took.as_secs_f64());
    let answer = route.inbound(SECOND).await;
    assert_eq!(answer["status"], 480, "{answer}");
    assert!(answer.get("stale_seconds").is_none(), "{answer}");
    let (status, _) = route.outbound(ACTIVE, "+442071234567").await;
    assert_eq!(status, 200);
    until("the late instance fresh too", within, || async { late.health().await == "ok" }).await;
    assert_eq!(late.inbound(SECOND).await["status"], 480);
    until("level with the primary again", within, || async {
        let (head, reported) = positions(&primary).await;
        reported == Some(head)
    })
    .await;
    clock.advance(time::Duration::minutes(2));
    assert_eq!(behind(&reconcile).await, Vec::<String>::new(), "caught up: the finding closed");
    drop((route, late));
    drop(replica_pg);
}

fn tempfile_dir() -> testkit::TempDir {
    testkit::sqlite_path().0
}
