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

on_both!(
    lookups_follow_the_contract_and_a_release_stops_routing_at_once,
    sipp_invites_get_302_480_404,
    removing_the_app_in_zoom_answers_deauthorized
);

struct World {
    store: Store,
    customer: CustomerId,
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
    let trunk = ZoomTrunk::parse(
        "zoom-a",
        &["sip:zoom-a.example:5061;transport=tls"],
        NumberingRule::nanp(),
        now,
    )
    .unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let c = Customer {
        id: CustomerId::new(),
        name: "Acme".into(),
        contract_ref: "C-1".into(),
        contract_state: ContractState::Active,
        created_at: now,
        zoom_trunk: None,
        number_limit: None,
    };
    store.insert_customer(&c).await.unwrap();
    store.set_customer_trunk(c.id, Some("zoom-a")).await.unwrap();
    let by = Actor::System("test".into());
    let numbers: Vec<_> = [ACTIVE, SUSPENDED, RELEASED]
        .iter()
        .map(|n| Number::imported(PhoneNumber::parse(n).unwrap(), NumberAttrs::default(), &by, now))
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    set_state(&store, ACTIVE, "active", Some(c.id)).await;
    set_state(&store, SUSPENDED, "suspended", Some(c.id)).await;
    set_state(&store, RELEASED, "aging", None).await;
    let config = RoutingConfig {
        http_listen: "127.0.0.1:0".into(),
        sip_listen: "127.0.0.1:0".into(),
        ..Default::default()
    };
    let started = routing::start(store.clone(), &config).await.unwrap();
    assert!(
        routing::wait_ready(&started.routing, Duration::from_secs(10)).await,
        "snapshot loaded"
    );
    World { store, customer: c.id, started, _dir: dir }
}

async fn lookup(w: &World, query: &str) -> (u16, Value) {
    let r =
        reqwest::get(format!("http://{}/route?{query}", w.started.http.unwrap())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn lookups_follow_the_contract_and_a_release_stops_routing_at_once(db: Db) {
    let w = world(db).await;
    let (status, body) = lookup(&w, "to=sip:%2B15550100001@peerex.example;user=phone").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["decision"].as_str(), body["status"].as_u64(), body["trunk"].as_str()),
        (Some("route"), Some(302), Some("zoom-a")),
        "{body}"
    );
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
        assert_eq!(
            (body["status"].as_u64(), body["reason"].as_str()),
            (Some(want), Some(reason)),
            "{query}: {body}"
        );
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
    sipp_scenario(
        sip,
        transport,
        number,
        &include_str!("sipp-expect.xml").replace("EXPECTED", &status.to_string()),
    )
}

/// Runs one call of a sipp UAC `scenario` to `number`; true when it completed.
fn sipp_scenario(sip: std::net::SocketAddr, transport: &str, number: &str, scenario: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uac.xml");
    std::fs::write(&path, scenario).unwrap();
    let out = std::process::Command::new("sipp")
        .arg(sip.to_string())
        .args([
            "-sf",
            path.to_str().unwrap(),
            "-s",
            number,
            "-m",
            "1",
            "-t",
            transport,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-timeout",
            "10s",
            "-nostdin",
        ])
        .args(["-trace_err", "-error_file", dir.path().join("err.log").to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    let ok = out.status.success();
    if !ok {
        eprintln!(
            "sipp {number}: {}\n{}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
            std::fs::read_to_string(dir.path().join("err.log")).unwrap_or_default()
        );
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
        // Outbound (Zoom to PSTN), as the carrier's proxy asks: the Zoom trunk the call came in on
        // in X-Peerex-Trunk; the calling number decides.
        let outbound = |from: &str, status: u16| {
            let scenario = include_str!("sipp-expect.xml")
                .replace("EXPECTED", &status.to_string())
                .replace("From: <sip:+15559990000@", &format!("From: <sip:{from}@"))
                .replace("Max-Forwards: 70\nContent-Length: 0\n\n    ]]>\n  </send>\n  <recv response=\"100\"", "X-Peerex-Trunk: zoom-a\nMax-Forwards: 70\nContent-Length: 0\n\n    ]]>\n  </send>\n  <recv response=\"100\"");
            assert!(scenario.contains("X-Peerex-Trunk"), "the scenario carries the trunk");
            sipp_scenario(sip, "u1", "+442071234567", &scenario)
        };
        r.push((ACTIVE, 302, outbound(ACTIVE, 302)));
        r.push((SUSPENDED, 403, outbound(SUSPENDED, 403)));
        r.push((UNKNOWN, 403, outbound(UNKNOWN, 403)));
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

/// A flood of OPTIONS and garbage (truncated, bad Content-Length, big headers), after datagrams as big
/// as UDP allows, from one source while real calls come from another: the calls still get their
/// answers, and the OPTIONS theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_junk_and_options_does_not_stop_calls() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Another address than the calls (sipp, 127.0.0.1): the limit is per address.
            let s = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
            let me = s.local_addr().unwrap();
            let options = format!("OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood;rport\r\nFrom: <sip:f@x>;tag=1\r\nTo: <sip:{sip}>\r\nCall-ID: flood\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
            let junk: Vec<Vec<u8>> = vec![
                b"\xff\xfe garbage".to_vec(),
                options.as_bytes()[..options.len() / 2].to_vec(),
                format!(
                    "INVITE sip:+1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport\r\nX: {}\r\n\r\n",
                    "a".repeat(600)
                )
                .into_bytes(),
                options.replace("Content-Length: 0", "Content-Length: 99").into_bytes(),
                options.clone().into_bytes(),
            ];
            // Datagrams as big as UDP allows, a few (a flood of them fills any socket buffer).
            let huge = format!(
                "INVITE sip:+1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport\r\nX: {}\r\n\r\n",
                "a".repeat(65_000)
            );
            for _ in 0..20 {
                s.send_to(huge.as_bytes(), sip).unwrap();
            }
            let (mut sent, mut i) = (0u64, 0usize);
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 2048];
            let mut answered = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.send_to(&junk[i % junk.len()], sip);
                i += 1;
                sent += 1;
                while let Ok(n) = s.recv(&mut buf) {
                    answered += u64::from(buf[..n].starts_with(b"SIP/2.0 200 OK"));
                }
            }
            (sent, answered)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = tokio::task::spawn_blocking(move || {
        [(ACTIVE, 302), (SUSPENDED, 480), (UNKNOWN, 404)].map(|(n, s)| (n, sipp(sip, "u1", n, s)))
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, options_answered) = flood.join().unwrap();
    eprintln!("flood: sent {sent}, options answered {options_answered}");
    for (n, ok) in calls {
        assert!(ok, "a call to {n} during the flood was not answered as the contract says");
    }
    assert!(sent > 1_000, "the flood sent {sent} messages");
    assert!(options_answered > 0, "OPTIONS in the flood were answered too");
}

/// Polls the lookup API until `query` answers `reason`; how long that took.
async fn until_reason(w: &World, query: &str, reason: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let (_, body) = lookup(w, query).await;
        if body["reason"] == reason {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{query}: still {body} after {:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn removing_the_app_in_zoom_answers_deauthorized(db: Db) {
    let w = world(db).await;
    let now = time::OffsetDateTime::now_utc();
    let by = Actor::System("test".into());
    let tokens = domain::onboarding::StoredTokens {
        access_token: "a".into(),
        refresh_token: "r".into(),
        expires_at: now + time::Duration::hours(1),
        generation: 1,
    };
    w.store
        .link_zoom_account(w.customer, "zoom-acct-1", "zoom-user-1", &tokens, "Carrier", &by, now)
        .await
        .unwrap()
        .unwrap();
    // Linking queues the customer's suspended numbers for Zoom again; suspend one by hand.
    set_state(&w.store, SUSPENDED, "suspended", Some(w.customer)).await;
    // Linked: the carrier's own suspension is `suspended`.
    until_reason(&w, "to=%2B15550100002", "suspended").await;
    assert_eq!(lookup(&w, "to=%2B15550100001").await.1["status"], 302);

    // The app is removed (the reason's wording says nothing of apps): the link's state decides.
    let (_, suspended) = w
        .store
        .unlink_zoom_account("zoom-acct-1", "webhook 7f3a", &by, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(suspended, 1, "the active number was suspended");
    let took = until_reason(&w, "to=%2B15550100001", "deauthorized").await;
    let (_, body) = lookup(&w, "to=%2B15550100001").await;
    assert_eq!(body["status"], 480, "{body}");
    assert_eq!(lookup(&w, "to=%2B15550100002").await.1["reason"], "deauthorized");
    let (_, out) = lookup(&w, "direction=outbound&from=%2B15550100001&trunk=zoom-a").await;
    assert_eq!(
        (out["status"].as_u64(), out["reason"].as_str()),
        (Some(403), Some("deauthorized")),
        "{out}"
    );
    eprintln!("app removed -> deauthorized: {took:?}");

    // Installed again: the link is live, so a suspension is the carrier's again.
    w.store
        .link_zoom_account(w.customer, "zoom-acct-1", "zoom-user-1", &tokens, "Carrier", &by, now)
        .await
        .unwrap()
        .unwrap();
    set_state(&w.store, SUSPENDED, "suspended", Some(w.customer)).await;
    until_reason(&w, "to=%2B15550100002", "suspended").await;
}

// ---- Kamailio (contrib/kamailio/kamailio.cfg) in front of peerex -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_asking_the_redirect_server_routes_active_and_rejects_suspended() {
    kamailio_routes_active_and_rejects_suspended(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_asking_the_lookup_api_routes_active_and_rejects_suspended() {
    kamailio_routes_active_and_rejects_suspended(true).await
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        // SIGTERM first: Kamailio's main process then stops its children.
        let _ =
            std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn kamailio_routes_active_and_rejects_suspended(http: bool) {
    let w = world(Db::Sqlite).await;
    // Zoom's SBC for this trunk is a sipp UAS on this machine.
    let zoom_port = free_udp_port();
    let now = time::OffsetDateTime::now_utc();
    let zoom = ZoomTrunk::parse(
        "zoom-local",
        &[&format!("sip:127.0.0.1:{zoom_port}")],
        NumberingRule::nanp(),
        now,
    )
    .unwrap();
    w.store.insert_trunk(&zoom).await.unwrap();
    w.store.set_customer_trunk(w.customer, Some("zoom-local")).await.unwrap();
    let t0 = Instant::now();
    while lookup(&w, "to=%2B15550100001").await.1["trunk"] != "zoom-local" {
        assert!(t0.elapsed() < Duration::from_secs(2), "trunk change not seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let uas_path = dir.path().join("zoom-uas.xml");
    std::fs::write(
        &uas_path,
        include_str!("sipp-zoom-uas.xml").replace("E164_DIGITS", &ACTIVE[1..]),
    )
    .unwrap();
    let uas = std::process::Command::new("sipp")
        .args([
            "-sf",
            uas_path.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &zoom_port.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
        ])
        .args(["-trace_err", "-error_file", dir.path().join("uas-err.log").to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    let mut uas = Child(uas);

    let kamailio_port = free_udp_port();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/kamailio/kamailio.cfg");
    let mut cmd = std::process::Command::new("kamailio");
    cmd.args([
        "-f",
        config,
        "-DD",
        "-E",
        "-n",
        "2",
        "-m",
        "32",
        "-M",
        "8",
        "-Y",
        dir.path().to_str().unwrap(),
    ])
    .arg("-A")
    .arg(format!("LISTEN=udp:127.0.0.1:{kamailio_port}"))
    .arg("-A")
    .arg(format!("PEEREX_SIP=\"sip:{}\"", w.started.sip.unwrap()))
    .arg("-A")
    .arg(format!("PEEREX_HTTP=\"http://{}\"", w.started.http.unwrap()))
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(dir.path().join("kamailio.log")).unwrap());
    if http {
        cmd.args(["-A", "WITH_HTTP"]);
    }
    let _kamailio = Child(cmd.spawn().expect("kamailio is installed (scripts/test installs it)"));
    let kamailio_log =
        || std::fs::read_to_string(dir.path().join("kamailio.log")).unwrap_or_default();
    assert!(
        tokio::task::spawn_blocking(move || routing::sip::answers_options(
            kamailio_port,
            Duration::from_secs(10)
        ))
        .await
        .unwrap(),
        "kamailio did not start:\n{}",
        kamailio_log()
    );

    let kamailio: std::net::SocketAddr = ([127, 0, 0, 1], kamailio_port).into();
    let call = include_str!("sipp-call-through.xml");
    let rejected = include_str!("sipp-expect.xml").replace("EXPECTED", "480");
    let (reached, refused, wrong) = tokio::task::spawn_blocking(move || {
        (
            sipp_scenario(kamailio, "u1", ACTIVE, call),
            sipp_scenario(kamailio, "u1", SUSPENDED, &rejected),
            sipp_scenario(kamailio, "u1", SUSPENDED, call),
        )
    })
    .await
    .unwrap();
    assert!(
        reached,
        "the call for the active number did not reach Zoom's SBC:\n{}",
        kamailio_log()
    );
    assert!(
        refused,
        "the call for the suspended number was not rejected with 480:\n{}",
        kamailio_log()
    );
    assert!(!wrong, "a call for the suspended number went through");
    // The UAS took exactly one call, for the active number (its scenario checks the Request-URI).
    let status = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        loop {
            if let Some(s) = uas.0.try_wait().unwrap() {
                return Some(s);
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "Zoom's SBC stand-in did not complete the call: {status:?} {}",
        std::fs::read_to_string(dir.path().join("uas-err.log")).unwrap_or_default()
    );
}
