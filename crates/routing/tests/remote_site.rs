//! A routing-only instance at a remote site, following the central database over a link that
//! goes down. While it is down calls keep arriving: inbound ones are answered from the
//! last-known-good snapshot (and say it is stale), outbound ones are refused, emergency ones pass.
//! An instance restarted meanwhile answers from the snapshot it kept on disk. When the link comes
//! back every change made meanwhile reaches the instances, a big one included.
//!
//! The link is a TCP proxy the test cuts (`testkit::proxy`), in front of PostgreSQL as a replica
//! at a remote site would be reached; the restart test also runs on SQLite.

mod common;

use common::*;
use routing::{RoutingConfig, StartOptions, Started};
use serde_json::Value;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};
use store::Store;
use testkit::{on_both, Db};

/// Numbers of the customer's changed in one transaction while the link is down.
const BIG: u64 = 30_000;
const BIG_FIRST: u64 = 15_770_000_000;
/// A PSTN number the customer's numbers call out to.
const DIALLED: &str = "+442071234567";
/// Seconds without a check against the database before answers say they are stale.
const STALE_AFTER: u64 = 2;

/// A routing-only instance following `url`, keeping its last-known-good snapshot in `state`
/// (named by the database it follows, as `peerex route` names it).
async fn remote(url: &str, state: &Path) -> Started {
    let store = Store::connect_lazy(url, Duration::from_secs(2)).unwrap();
    let config = RoutingConfig {
        http_listen: "127.0.0.1:0".into(),
        sip_listen: "127.0.0.1:0".into(),
        trusted_proxies: vec!["127.0.0.1".into()],
        state_dir: state.display().to_string(),
        stale_after_seconds: STALE_AFTER,
        snapshot_write_seconds: 1,
        query_timeout_seconds: 2,
        ..Default::default()
    };
    let options = StartOptions {
        routing_only: true,
        database: store::database_identity(url),
        ..Default::default()
    };
    routing::start_with(store, &config, options).await.unwrap()
}

/// Waits up to `within` for `ok`, asking again every 20 ms; panics naming `what` otherwise.
async fn until<F: Future<Output = bool>>(what: &str, within: Duration, mut ok: impl FnMut() -> F) {
    let t0 = Instant::now();
    while !ok().await {
        assert!(t0.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(s: &Started, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{}{path_and_query}", s.http.unwrap())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn escaped(n: &str) -> String {
    n.replace('+', "%2B")
}

async fn inbound(s: &Started, to: &str) -> (u16, Value) {
    get(s, &format!("/route?to={}", escaped(to))).await
}

async fn outbound(s: &Started, from: &str, to: &str) -> (u16, Value) {
    get(
        s,
        &format!(
            "/route?direction=outbound&trunk=zoom-a&from={}&to={}",
            escaped(from),
            escaped(to)
        ),
    )
    .await
}

/// The redirect server's whole answer to an INVITE for `to` (outbound over `zoom-a` from `from`
/// when given).
async fn invite(s: &Started, to: &str, from: Option<&str>) -> String {
    let (sip, to, from) = (s.sip.unwrap(), to.to_owned(), from.map(str::to_owned));
    tokio::task::spawn_blocking(move || invite_blocking(sip, &to, from.as_deref())).await.unwrap()
}

fn invite_blocking(server: SocketAddr, to: &str, from: Option<&str>) -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = s.local_addr().unwrap();
    let (caller, trunk) = match from {
        Some(f) => (f, "X-Peerex-Trunk: zoom-a\r\n"),
        None => ("+15559990000", ""),
    };
    let msg = format!(
        "INVITE sip:{to}@peerex.example SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-r{p};rport\r\nMax-Forwards: 70\r\nTo: <sip:{to}@peerex.example>\r\nFrom: <sip:{caller}@sbc.example>;tag=r1\r\nCall-ID: remote-{p}@{me}\r\nCSeq: 1 INVITE\r\n{trunk}Content-Length: 0\r\n\r\n",
        p = me.port()
    );
    s.send_to(msg.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).expect("the redirect server answers");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// How many of the big change's numbers `s` does not decide `want` for.
fn big_not(s: &Started, want: u16) -> usize {
    let snapshot = s.routing.read();
    (BIG_FIRST..BIG_FIRST + BIG)
        .filter(|n| {
            snapshot.decide(domain::routing::Direction::Inbound, None, Some(*n), None).status
                != want
        })
        .count()
}

/// What a stale instance answers: inbound from its copy (saying how stale), outbound refused,
/// emergency let through; `/healthz` says so.
async fn answers_as_stale(s: &Started) {
    let (status, body) = inbound(s, ACTIVE).await;
    assert_eq!((status, body["status"].as_u64()), (200, Some(302)), "{body}");
    assert!(body["stale_seconds"].as_i64().is_some_and(|a| a >= STALE_AFTER as i64), "{body}");
    let sip = invite(s, ACTIVE, None).await;
    assert!(sip.starts_with("SIP/2.0 302 "), "{sip}");
    assert!(sip.contains("\r\nX-Peerex-Stale: "), "{sip}");
    assert!(sip.contains("Contact: <sip:+15550100001@zoom-a.example:5061;transport=tls>"), "{sip}");

    let (status, body) = outbound(s, ACTIVE, DIALLED).await;
    assert_eq!((status, body["decision"].as_str()), (503, Some("unavailable")), "{body}");
    assert!(invite(s, DIALLED, Some(ACTIVE)).await.starts_with("SIP/2.0 503 "));

    let (status, body) = outbound(s, SUSPENDED, "+44999").await;
    assert_eq!(
        (status, body["decision"].as_str(), body["emergency"].as_bool()),
        (200, Some("allow"), Some(true)),
        "{body}"
    );
    let sip = invite(s, "+44999", Some(SUSPENDED)).await;
    assert!(sip.starts_with("SIP/2.0 302 ") && sip.contains("X-Peerex-Emergency: yes"), "{sip}");

    let (status, health) = get(s, "/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("stale")), "{health}");
    assert!(health["age_seconds"].as_i64().is_some_and(|a| a >= STALE_AFTER as i64));
}

async fn fresh(s: &Started) -> bool {
    let (status, body) = outbound(s, ACTIVE, DIALLED).await;
    status == 200 && body.get("stale_seconds").is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_link_goes_down_while_calls_arrive_and_comes_back() {
    let seeded = seed(Db::Postgres).await;
    let store = &seeded.store;
    let by = domain::Actor::System("test".into());
    let now = time::OffsetDateTime::now_utc();
    let numbers: Vec<_> = (BIG_FIRST..BIG_FIRST + BIG)
        .map(|n| {
            let e164 = domain::PhoneNumber::from_trusted(format!("+{n}"));
            domain::Number::imported(e164, Default::default(), &by, now)
        })
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&seeded.url).await.unwrap();
    let range = format!("e164 >= '+{BIG_FIRST}' AND e164 < '+{}'", BIG_FIRST + BIG);
    let activated = sqlx::query(&format!(
        "UPDATE numbers SET state = 'active', customer_id = (SELECT id FROM customers) WHERE {range}"
    ))
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(activated.rows_affected(), BIG);

    let (link, through) = testkit::proxy::Proxy::in_front_of(&seeded.url).await;
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join(routing::lkg::FILE_NAME);
    let a = remote(&through, state.path()).await;
    assert!(routing::wait_ready(&a.routing, Duration::from_secs(20)).await);
    until("every number routed", Duration::from_secs(20), || async { big_not(&a, 302) == 0 }).await;
    until("the last-known-good file written", Duration::from_secs(10), || async {
        routing::lkg::read(&file).is_ok_and(|s| s.snapshot.generation == a.routing.generation())
    })
    .await;
    assert!(fresh(&a).await);
    assert_eq!(inbound(&a, ACTIVE).await.1["status"], 302);

    // The link goes down. Changes go on at the centre: a big one (every number of the customer's
    // range suspended in one transaction, as an app removal does) and a small one.
    link.cut();
    let suspended = sqlx::query(&format!("UPDATE numbers SET state = 'suspended' WHERE {range}"))
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(suspended.rows_affected(), BIG);
    set_state(store, SUSPENDED, domain::NumberState::Active, Some(seeded.customer)).await;

    until("outbound refused once stale", Duration::from_secs(20), || async {
        outbound(&a, ACTIVE, DIALLED).await.0 == 503
    })
    .await;
    answers_as_stale(&a).await;
    // Still the copy from before the link went down.
    assert_eq!(big_not(&a, 302), 0);
    assert_eq!(inbound(&a, SUSPENDED).await.1["status"], 480);

    // An instance restarted while the link is down answers from the file it kept.
    let generation = a.routing.generation();
    let b = remote(&through, state.path()).await;
    assert!(routing::wait_ready(&b.routing, Duration::from_secs(10)).await);
    assert_eq!(b.routing.generation(), generation);
    answers_as_stale(&b).await;
    assert_eq!(big_not(&b, 302), 0);

    // The link comes back: both catch up on every change made meanwhile.
    link.open();
    for s in [&a, &b] {
        until("fresh again", Duration::from_secs(30), || fresh(s)).await;
        until("the big change applied", Duration::from_secs(30), || async { big_not(s, 480) == 0 })
            .await;
        let (_, body) = inbound(s, SUSPENDED).await;
        assert_eq!(body["status"], 302, "{body}");
        assert!(body.get("stale_seconds").is_none(), "{body}");
        let sip = invite(s, ACTIVE, None).await;
        assert!(sip.starts_with("SIP/2.0 302 ") && !sip.contains("X-Peerex-Stale"), "{sip}");
        assert_eq!(get(s, "/healthz").await.1["status"], "ok");
    }
    // And the file follows.
    let caught_up = a.routing.generation();
    assert!(caught_up > generation);
    until("the file rewritten", Duration::from_secs(10), || async {
        routing::lkg::read(&file).is_ok_and(|s| s.snapshot.generation >= caught_up)
    })
    .await;
}

/// The last-known-good file cannot be written (a directory is in its place, as a full or
/// read-only disk refuses it); once it can, it is written within a few `write_every`s (1 s here),
/// not ten of them later, although the snapshot has not moved since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_known_good_file_that_could_not_be_written_is_written_soon_after() {
    let seeded = seed(Db::Sqlite).await;
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join(routing::lkg::FILE_NAME);
    std::fs::create_dir(&file).unwrap();
    let s = remote(&seeded.url, state.path()).await;
    assert!(routing::wait_ready(&s.routing, Duration::from_secs(20)).await);
    // The load's write failed; the next tries fail as long as the directory is there, and leave
    // no temporary file behind.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(file.is_dir());
    let left: Vec<_> =
        std::fs::read_dir(state.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from(routing::lkg::FILE_NAME)], "{left:?}");
    std::fs::remove_dir(&file).unwrap();
    until("the file written", Duration::from_secs(4), || async {
        routing::lkg::read(&file).is_ok()
    })
    .await;
}

on_both!(
    an_instance_restarted_while_the_database_is_unreachable_answers_from_its_file,
    a_follower_of_the_primary_stays_current_without_heartbeats,
    a_database_from_before_the_heartbeat_is_followed_as_before,
);

async fn an_instance_restarted_while_the_database_is_unreachable_answers_from_its_file(db: Db) {
    let seeded = seed(db).await;
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join(routing::lkg::FILE_NAME);
    // PostgreSQL is followed through a proxy from the start, so the restart follows the same
    // address, cut.
    let (link, url) = match db {
        Db::Postgres => {
            let (link, url) = testkit::proxy::Proxy::in_front_of(&seeded.url).await;
            (Some(link), url)
        }
        Db::Sqlite => (None, seeded.url.clone()),
    };
    let first = remote(&url, state.path()).await;
    assert!(routing::wait_ready(&first.routing, Duration::from_secs(20)).await);
    until("the last-known-good file written", Duration::from_secs(10), || async {
        routing::lkg::read(&file).is_ok_and(|s| s.database == Some(store::database_identity(&url)))
    })
    .await;

    // The same database, which cannot be reached at all now.
    match &link {
        Some(link) => link.cut(),
        None => {
            let path = url.trim_start_matches("sqlite://");
            testkit::cut_off_sqlite(Path::new(path.split_once('?').map_or(path, |(p, _)| p)));
        }
    }
    let restarted = remote(&url, state.path()).await;
    assert!(routing::wait_ready(&restarted.routing, Duration::from_secs(10)).await);
    until("stale", Duration::from_secs(10), || async {
        restarted.routing.stale_seconds().is_some()
    })
    .await;
    answers_as_stale(&restarted).await;
    assert_eq!(inbound(&restarted, SUSPENDED).await.1["status"], 480);
    assert_eq!(inbound(&restarted, UNKNOWN).await.1["status"], 404);

    // Without a file there is nothing to answer from: inbound calls get 503, emergency still passes.
    let empty = tempfile::tempdir().unwrap();
    let bare = remote(&url, empty.path()).await;
    let (status, _) = inbound(&bare, ACTIVE).await;
    assert_eq!(status, 503);
    let (status, body) = outbound(&bare, SUSPENDED, "+44999").await;
    assert_eq!((status, body["emergency"].as_bool()), (200, Some(true)), "{body}");

    // The state directory copied to an instance of another deployment (it follows another
    // database, unreachable too): the file is refused, not answered from.
    let elsewhere = match db {
        Db::Postgres => "postgres://peerex@127.0.0.1:1/peerex".to_owned(),
        Db::Sqlite => format!("sqlite://{}/missing/peerex.db?mode=rw", state.path().display()),
    };
    let other = remote(&elsewhere, state.path()).await;
    until("the file refused", Duration::from_secs(10), || async {
        other.routing.refused_file().is_some()
    })
    .await;
    let why = other.routing.refused_file().unwrap_or_default();
    assert!(why.contains("was written following the database"), "{why}");
    assert!(!other.routing.is_ready(), "answering from another deployment's snapshot");
    let (status, health) = get(&other, "/healthz").await;
    assert_eq!(status, 503, "{health}");
    assert!(health["detail"].as_str().is_some_and(|d| d.contains("was refused")), "{health}");
    let (status, body) = inbound(&other, ACTIVE).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = outbound(&other, SUSPENDED, "+44999").await;
    assert_eq!((status, body["emergency"].as_bool()), (200, Some(true)), "{body}");
    // The file is left as it was, for the instance it belongs to.
    assert_eq!(routing::lkg::read(&file).unwrap().database, Some(store::database_identity(&url)));
}

/// Nothing beats the heartbeat here (no `peerex serve`): on a primary, and on SQLite, which has no
/// replica, every read is current, so the instance stays fresh whatever the heartbeat's age.
async fn a_follower_of_the_primary_stays_current_without_heartbeats(db: Db) {
    let seeded = seed(db).await;
    let state = tempfile::tempdir().unwrap();
    let s = remote(&seeded.url, state.path()).await;
    assert!(routing::wait_ready(&s.routing, Duration::from_secs(20)).await);
    until("fresh", Duration::from_secs(10), || fresh(&s)).await;
    let heartbeat = seeded.store.routing_heartbeat().await.unwrap();
    assert!(!heartbeat.replica);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2 * STALE_AFTER + 1) {
        assert!(s.routing.is_fresh(), "stale {:?} after start", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fresh(&s).await);
    assert_eq!(get(&s, "/healthz").await.1["status"], "ok");
    // It did not beat either: the heartbeat is the writers'.
    assert_eq!(seeded.store.routing_heartbeat().await.unwrap().beat_at, heartbeat.beat_at);
}

/// A schema older than this peerex (a replica of a primary not yet upgraded: no
/// `routing_heartbeat`) is followed as before there was one, not refused.
async fn a_database_from_before_the_heartbeat_is_followed_as_before(db: Db) {
    use sqlx::Connection;
    let seeded = seed(db).await;
    match db {
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&seeded.url).await.unwrap();
            sqlx::query("DROP TABLE routing_heartbeat").execute(&mut c).await.unwrap();
        }
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&seeded.url).await.unwrap();
            sqlx::query("DROP TABLE routing_heartbeat").execute(&mut c).await.unwrap();
        }
    }
    assert!(seeded.store.routing_heartbeat().await.is_err_and(|e| e.is_missing_table()));
    let state = tempfile::tempdir().unwrap();
    let s = remote(&seeded.url, state.path()).await;
    assert!(routing::wait_ready(&s.routing, Duration::from_secs(20)).await);
    until("fresh", Duration::from_secs(10), || fresh(&s)).await;
    assert_eq!(inbound(&s, ACTIVE).await.1["status"], 302);
    set_state(&seeded.store, SUSPENDED, domain::NumberState::Active, Some(seeded.customer)).await;
    until("a change applied", Duration::from_secs(10), || async {
        inbound(&s, SUSPENDED).await.1["status"] == 302
    })
    .await;
    assert_eq!(get(&s, "/healthz").await.1["status"], "ok");
}
