//! The route-lookup HTTP server as an SBC (or a broken client) sees it on a real socket: keep-alive,
//! pipelining, closing, and the bad-input answers. The decisions themselves are checked against
//! the database in `routing.rs`.

use domain::trunk::NumberingRule;
use routing::snapshot::Snapshot;
use routing::Routing;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A lookup server over an empty snapshot (every number is `not_provisioned`), whose trusted proxy
/// is this test (127.0.0.1), so it may ask outbound lookups.
fn server(secret: Option<&str>) -> SocketAddr {
    let trusted = routing::listen::Networks::parse(&["127.0.0.1"]).unwrap();
    let routing = Routing::from_snapshot(NumberingRule::nanp(), Snapshot::default())
        .with_trusted_proxies(trusted);
    serve(routing, secret)
}

fn serve(routing: Routing, secret: Option<&str>) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    routing::http::spawn(routing, l, secret.map(str::to_owned)).unwrap();
    addr
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

fn send(c: &mut BufReader<TcpStream>, bytes: &[u8]) {
    c.get_mut().write_all(bytes).unwrap();
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one answer (head, then `Content-Length` bytes of JSON body).
fn read_answer(c: &mut BufReader<TcpStream>) -> Answer {
    let mut line = String::new();
    c.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        c.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    c.read_exact(&mut body).unwrap();
    Answer { status, headers, body: serde_json::from_slice(&body).unwrap() }
}

/// The server closed the connection (after what was already read).
fn assert_closed(c: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("closed, not left hanging");
    assert!(rest.is_empty(), "nothing after the answer: {:?}", String::from_utf8_lossy(&rest));
}

/// One request on a fresh connection; the answer.
fn ask(addr: SocketAddr, request: &str) -> Answer {
    let mut c = connect(addr);
    send(&mut c, request.as_bytes());
    read_answer(&mut c)
}

#[test]
fn pipelined_requests_in_one_write_get_answers_in_order_and_the_connection_stays_open() {
    let addr = server(None);
    let mut c = connect(addr);
    send(&mut c, b"GET /route?to=%2B15550000002 HTTP/1.1\r\nHost: peerex\r\n\r\nGET /healthz HTTP/1.1\r\nHost: peerex\r\n\r\nGET /route?direction=outbound&from=%2B15550000003&trunk=zoom-a HTTP/1.1\r\nHost: peerex\r\n\r\n");
    let a = read_answer(&mut c);
    assert_eq!((a.status, a.header("content-type")), (200, Some("application/json")));
    assert_eq!(a.header("connection"), None, "HTTP/1.1 keeps the connection by default");
    assert!(a.header("date").is_some_and(|d| d.ends_with(" GMT")), "{:?}", a.headers);
    assert_eq!(a.body["to"], "+15550000002", "{}", a.body);
    assert_eq!(
        (a.body["decision"].as_str(), a.body["status"].as_u64(), a.body["reason"].as_str()),
        (Some("reject"), Some(404), Some("not_provisioned"))
    );
    assert_eq!(
        (
            a.body["direction"].as_str(),
            a.body["routing"].as_str(),
            a.body["routes"].as_array().map(Vec::len)
        ),
        (Some("inbound"), Some("serial"), Some(0))
    );
    let b = read_answer(&mut c);
    assert_eq!((b.status, b.body["status"].as_str()), (200, Some("ok")), "{}", b.body);
    let o = read_answer(&mut c);
    assert_eq!(
        (o.body["direction"].as_str(), o.body["from"].as_str(), o.body["status"].as_u64()),
        (Some("outbound"), Some("+15550000003"), Some(403)),
        "{}",
        o.body
    );

    // Still open: a later request on the same connection is answered.
    send(&mut c, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(read_answer(&mut c).status, 200);
}

#[test]
fn a_request_split_over_several_writes_is_answered_once_complete() {
    let addr = server(None);
    let mut c = connect(addr);
    send(&mut c, b"GET /route?to=%2B1555");
    std::thread::sleep(Duration::from_millis(50));
    send(&mut c, b"0000002 HTTP/1.1\r\nHost: peer");
    std::thread::sleep(Duration::from_millis(50));
    send(&mut c, b"ex\r\n\r\n");
    assert_eq!(read_answer(&mut c).body["to"], "+15550000002");
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    let addr = server(None);
    let mut c = connect(addr);
    send(&mut c, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    let a = read_answer(&mut c);
    assert_eq!((a.status, a.header("connection")), (200, Some("close")));
    assert_closed(&mut c);

    let mut c = connect(addr);
    send(&mut c, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(read_answer(&mut c).status, 200);
    assert_closed(&mut c);

    // HTTP/1.0 asking for keep-alive gets it, and is told so (or it would wait for the close).
    let mut c = connect(addr);
    send(&mut c, b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let a = read_answer(&mut c);
    assert_eq!((a.status, a.header("connection")), (200, Some("keep-alive")));
    send(&mut c, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(read_answer(&mut c).status, 200);
    assert_closed(&mut c);
}

#[test]
fn malformed_requests_get_400_and_the_connection_is_closed() {
    let addr = server(None);
    for garbage in [
        "GARBAGE\r\n\r\n",
        "GET /route?to=1 HTTP/9.9\r\n\r\n",
        "GET /route HTTP/1.1\r\nno colon here\r\n\r\n",
        "\x00\x01\x02\r\n\r\n",
    ] {
        let mut c = connect(addr);
        send(&mut c, garbage.as_bytes());
        let a = read_answer(&mut c);
        assert_eq!((a.status, a.header("connection")), (400, Some("close")), "{garbage:?}");
        assert!(
            a.body["detail"].as_str().unwrap().starts_with("malformed HTTP request"),
            "{garbage:?}: {}",
            a.body
        );
        assert_closed(&mut c);
    }
    // The server still answers everyone else.
    assert_eq!(ask(addr, "GET /healthz HTTP/1.1\r\n\r\n").status, 200);
}

#[test]
fn a_request_with_a_body_gets_400_and_the_connection_is_closed() {
    let addr = server(None);
    for request in [
        "GET /route?to=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "GET /route?to=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut c = connect(addr);
        send(&mut c, request.as_bytes());
        let a = read_answer(&mut c);
        assert_eq!(
            (a.status, a.body["detail"].as_str()),
            (400, Some("a lookup has no body")),
            "{request:?}"
        );
        assert_closed(&mut c);
    }
    // `Content-Length: 0` is no body.
    assert_eq!(ask(addr, "GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 200);
}

#[test]
fn an_oversized_head_or_too_many_headers_gets_431_and_the_connection_is_closed() {
    let addr = server(None);
    let big = "a".repeat(17 * 1024);
    // Complete but too large; too large and still coming; too many headers.
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    for request in [
        format!("GET /route HTTP/1.1\r\nX-Big: {big}\r\n\r\n"),
        format!("GET /route HTTP/1.1\r\nX-Big: {big}"),
        format!("GET /route HTTP/1.1\r\n{many}\r\n"),
    ] {
        let mut c = connect(addr);
        send(&mut c, request.as_bytes());
        let a = read_answer(&mut c);
        assert_eq!((a.status, a.header("connection")), (431, Some("close")), "{}", &request[..60]);
        assert!(a.body["detail"].as_str().unwrap().contains("16 KB"), "{}", a.body);
        assert_closed(&mut c);
    }
}

#[test]
fn unknown_paths_get_404_and_other_methods_405_as_json() {
    let addr = server(None);
    let mut c = connect(addr);
    send(&mut c, b"GET /nothing-here HTTP/1.1\r\n\r\n");
    let a = read_answer(&mut c);
    assert_eq!(a.status, 404);
    assert!(a.body["detail"].as_str().unwrap().contains("GET /route"), "{}", a.body);
    // A 404 is an answer, not a protocol error: the connection stays open.
    send(&mut c, b"POST /route HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let a = read_answer(&mut c);
    assert_eq!((a.status, a.header("allow")), (405, Some("GET, HEAD")), "{}", a.body);
    send(&mut c, b"HEAD /healthz HTTP/1.1\r\n\r\n");
    let mut line = String::new();
    c.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK\r\n");
}

#[test]
fn query_decoding_bad_direction_and_repeated_parameters() {
    let addr = server(None);
    // `%2B` is a plus; a bare `+` is a space in a query, so the number is read by the numbering
    // rule (here: the national `1`), which comes to the same number.
    for query in [
        "to=%2B15550000002",
        "to=+15550000002",
        "to=sip%3A%2B15550000002%40carrier.example%3Buser%3Dphone",
        "to=5550000002",
        "to=tel:%2B1-555-000-0002",
    ] {
        let a = ask(addr, &format!("GET /route?{query} HTTP/1.1\r\n\r\n"));
        assert_eq!(
            (a.status, a.body["to"].as_str()),
            (200, Some("+15550000002")),
            "{query}: {}",
            a.body
        );
    }
    let a = ask(addr, "GET /route?to=not-a-number HTTP/1.1\r\n\r\n");
    assert_eq!(
        (a.status, &a.body["to"], a.body["reason"].as_str()),
        (200, &serde_json::Value::Null, Some("not_provisioned"))
    );
    let a = ask(addr, "GET /route?direction=sideways&to=1 HTTP/1.1\r\n\r\n");
    assert_eq!(
        (a.status, a.body["detail"].as_str()),
        (400, Some("direction: must be inbound or outbound"))
    );
    let a = ask(addr, "GET /route?to=1&to=2 HTTP/1.1\r\n\r\n");
    assert_eq!((a.status, a.body["detail"].as_str()), (400, Some("to: given more than once")));
}

#[test]
fn with_a_secret_lookups_without_it_get_401() {
    let addr = server(Some("s3cret"));
    for auth in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Bearer s3cre\r\n",
        "Authorization: s3cret\r\n",
    ] {
        let a = ask(addr, &format!("GET /route?to=%2B15550000002 HTTP/1.1\r\n{auth}\r\n"));
        assert_eq!((a.status, a.header("www-authenticate")), (401, Some("Bearer")), "{auth:?}");
        assert!(a.body["detail"].as_str().unwrap().contains("Authorization: Bearer"), "{}", a.body);
    }
    let a =
        ask(addr, "GET /route?to=%2B15550000002 HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n");
    assert_eq!((a.status, a.body["reason"].as_str()), (200, Some("not_provisioned")));
}

#[test]
fn before_the_snapshot_has_loaded_lookups_get_503_with_retry_after() {
    let trusted = routing::listen::Networks::parse(&["127.0.0.1"]).unwrap();
    let addr = serve(Routing::new(NumberingRule::nanp()).with_trusted_proxies(trusted), None);
    for path in
        ["/route?to=%2B15550000002", "/route?direction=outbound&from=%2B15550000002", "/healthz"]
    {
        let a = ask(addr, &format!("GET {path} HTTP/1.1\r\n\r\n"));
        assert_eq!((a.status, a.header("retry-after")), (503, Some("1")), "{path}");
        assert_eq!(
            (a.body["decision"].as_str(), a.body["detail"].as_str()),
            (Some("unavailable"), Some("the routing snapshot is loading")),
            "{path}"
        );
    }
}
