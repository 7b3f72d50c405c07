//! The attacker's probes of the HTTP surface, kept so that what was found stays fixed: slow and
//! half-open connections, a flood of invented methods at `/metrics`, forged sign-in CSRF pairs,
//! raced password guesses, a stranger locking a real user out, a forged OAuth callback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::{Db, TestApp, METRICS_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Another address of this machine: the whole of 127.0.0.0/8 is loopback on Linux, so a client
/// bound to 127.0.0.2 reaches the test server as a different source than 127.0.0.1.
const STRANGER: &str = "127.0.0.2";

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 400 before closing is fine: keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

// ---- the listener ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_half_open_connections_are_shed_and_others_still_get_answers() {
    let limits = web::listener::Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections_per_source: 20,
        ..Default::default()
    };
    let t = TestApp::spawn_limited(Db::Sqlite, limits).await;
    // 200 connections from one address, each with half a request head, then nothing.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = connect_from(STRANGER, t.addr).await;
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: peerex\r\n").await;
        slow.push(s);
    }
    // The listener keeps answering everyone else, quickly.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let started = Instant::now();
        let r = client.get(format!("{}/healthz", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());
    }
    // Beyond 20 from one address, connections are closed at once...
    let mut shed_at_once = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_millis(20)).await {
            shed_at_once += 1;
        }
    }
    assert!(shed_at_once >= 180, "only {shed_at_once} of 200 closed at once");
    // ...and the 20 let in are closed when their head has not come within the timeout.
    let started = Instant::now();
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a slow connection stayed open");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    // An idle connection that never sends a byte goes the same way.
    let mut idle = connect_from(STRANGER, t.addr).await;
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "an idle connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_ends_the_request() {
    let limits =
        web::listener::Limits { body_idle_timeout: Duration::from_secs(1), ..Default::default() };
    let t = TestApp::spawn_limited(Db::Sqlite, limits).await;
    let mut s = connect_from(STRANGER, t.addr).await;
    s.write_all(
        b"POST /operator/login HTTP/1.1\r\nHost: peerex\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nemail=a",
    )
    .await
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await, "the request stayed open");
}

// ---- /metrics -------------------------------------------------------------------------------

async fn metrics(t: &TestApp) -> String {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", t.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn invented_methods_and_paths_do_not_grow_metrics() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let path = if i % 2 == 0 { "/healthz".to_owned() } else { format!("/no/such/{i}") };
        client.request(method, format!("{}{path}", t.url)).send().await.unwrap();
    }
    let text = metrics(&t).await;
    let series: Vec<&str> =
        text.lines().filter(|l| l.starts_with("peerex_http_requests_total{")).collect();
    assert!(series.len() <= 10, "{} series:\n{}", series.len(), series.join("\n"));
    assert!(series.iter().all(|l| !l.contains("M1X") && !l.contains("/no/such")), "{text}");
    assert!(series.iter().any(|l| l.contains("method=\"other\"")), "{text}");
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
}

#[tokio::test]
async fn metrics_answer_only_the_configured_token() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", t.url);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth("guess").send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth(METRICS_TOKEN).send().await.unwrap().status(), 200);
}
