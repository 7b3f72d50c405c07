//! The SIP edge as an attacker probes it, on real sockets: a caller naming a Zoom trunk to have a
//! call let out (toll fraud), directly and through the shipped Kamailio configuration; slow and
//! half-open connections against the lookup API and SIP over TCP; bytes that are not UTF-8. Each
//! probe here once got through; they stay here so they stay found.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use testkit::Db;

/// A PSTN number a call from Zoom would dial.
const DIALLED: &str = "+442071234567";

/// An INVITE for `DIALLED` at `host` from `from` (a customer's number), as a caller at `me` sends
/// it, naming Zoom trunk `zoom-a` when `trunk` says so.
fn invite(me: SocketAddr, transport: &str, from: &str, trunk: bool) -> String {
    let header = if trunk { "X-Peerex-Trunk: zoom-a\r\n" } else { "" };
    format!(
        "INVITE sip:{DIALLED}@gw.example SIP/2.0\r\nVia: SIP/2.0/{transport} {me};branch=z9hG4bK-{n};rport\r\nMax-Forwards: 70\r\nTo: <sip:{DIALLED}@gw.example>\r\nFrom: <sip:{from}@zoom.example>;tag=a1\r\nCall-ID: probe-{n}@{me}\r\nCSeq: 1 INVITE\r\n{header}Content-Length: 0\r\n\r\n",
        n = me.port()
    )
}

/// Sends `msg(me)` over UDP from local address `ip`; the answer, if one comes within 2 s.
fn udp_ask(ip: &str, server: SocketAddr, msg: impl Fn(SocketAddr) -> Vec<u8>) -> Option<String> {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = s.local_addr().unwrap();
    s.send_to(&msg(me), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A TCP connection to `server` from local address `ip`.
fn tcp_from(ip: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())?;
    s.connect(&server.into())?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    Ok(s)
}

/// Sends `msg(me)` over a new TCP connection from `ip`; the first answer read.
fn tcp_ask(ip: &str, server: SocketAddr, msg: impl Fn(SocketAddr) -> Vec<u8>) -> Option<String> {
    let mut s = tcp_from(ip, server).ok()?;
    let me = s.local_addr().unwrap();
    s.write_all(&msg(me)).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// One lookup over a new connection from `ip`: (HTTP status, body).
fn lookup_from(ip: &str, http: SocketAddr, query: &str, auth: &str) -> (u16, serde_json::Value) {
    let a = tcp_ask(ip, http, |_| {
        format!("GET /route?{query} HTTP/1.1\r\n{auth}Connection: close\r\n\r\n").into_bytes()
    })
    .expect("an answer");
    let status = a[9..12].parse().unwrap();
    let body = a.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}

fn sip_status(answer: &str) -> &str {
    answer.get(8..11).unwrap_or_default()
}

/// The same outbound INVITE (a customer's number, `X-Peerex-Trunk` naming its trunk) sent to the
/// redirect server over UDP and TCP: from the configured proxy it is decided (302 back to the
/// dialled number); from any other address it is refused, 403 `untrusted_source`, never a 302.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_server_believes_a_trunk_header_only_from_a_trusted_proxy() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    let results = tokio::task::spawn_blocking(move || {
        let mut r = Vec::new();
        for ip in ["127.0.0.1", "127.0.0.2"] {
            r.push((ip, "UDP", udp_ask(ip, sip, |me| invite(me, "UDP", ACTIVE, true).into())));
            r.push((ip, "TCP", tcp_ask(ip, sip, |me| invite(me, "TCP", ACTIVE, true).into())));
        }
        r
    })
    .await
    .unwrap();
    for (ip, transport, answer) in results {
        let a = answer.unwrap_or_else(|| panic!("no answer from {ip} over {transport}"));
        if ip == "127.0.0.1" {
            assert!(
                sip_status(&a) == "302"
                    && a.contains(&format!("Contact: <sip:{DIALLED}@gw.example>")),
                "the trusted proxy over {transport}: {a}"
            );
        } else {
            assert_eq!(sip_status(&a), "403", "a stranger over {transport}: {a}");
            assert!(a.contains("Reason: SIP;cause=403;text=\"untrusted_source\""), "{a}");
        }
    }
    // Without the header a stranger's INVITE is an inbound call like any other.
    let a = tokio::task::spawn_blocking(move || {
        udp_ask("127.0.0.2", sip, |me| invite(me, "UDP", ACTIVE, false).into())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(sip_status(&a), "404", "{a}");
}

/// Nobody is trusted unless configured: with the defaults, even the local proxy's outbound INVITE
/// and outbound lookup are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_address_may_assert_a_trunk() {
    let w = world_with(Db::Sqlite, |c| c.trusted_proxies.clear()).await;
    let (sip, http) = (w.started.sip.unwrap(), w.started.http.unwrap());
    let (a, (status, body)) = tokio::task::spawn_blocking(move || {
        (
            udp_ask("127.0.0.1", sip, |me| invite(me, "UDP", ACTIVE, true).into()).unwrap(),
            lookup_from(
                "127.0.0.1",
                http,
                "direction=outbound&from=%2B15550100001&trunk=zoom-a",
                "",
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(sip_status(&a), "403", "{a}");
    assert_eq!(status, 403, "{body}");
}

/// The lookup API answers an outbound lookup (which names the trunk) only for a trusted proxy, and
/// with a secret configured only with it too; inbound lookups stay open to any holder of the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_lookups_are_answered_only_for_a_trusted_proxy_with_the_secret() {
    let w = world_with(Db::Sqlite, |c| c.http_secret = "s3cret".into()).await;
    let http = w.started.http.unwrap();
    let out = "direction=outbound&from=%2B15550100001&trunk=zoom-a";
    let auth = "Authorization: Bearer s3cret\r\n";
    let answers = tokio::task::spawn_blocking(move || {
        [
            lookup_from("127.0.0.2", http, out, auth),
            lookup_from("127.0.0.1", http, out, ""),
            lookup_from("127.0.0.1", http, out, auth),
            lookup_from("127.0.0.2", http, "to=%2B15550100001", auth),
        ]
    })
    .await
    .unwrap();
    let [(stranger, s_body), (no_secret, _), (proxy, p_body), (inbound, i_body)] = answers;
    assert_eq!(stranger, 403, "{s_body}");
    assert!(s_body["detail"].as_str().unwrap().contains("trusted_proxies"), "{s_body}");
    assert_eq!(no_secret, 401);
    assert_eq!((proxy, p_body["decision"].as_str()), (200, Some("allow")), "{p_body}");
    assert_eq!((inbound, i_body["status"].as_u64()), (200, Some(302)), "{i_body}");
}

/// Through the shipped Kamailio configuration, in both of its ways of asking peerex: a caller
/// (127.0.0.3) sends an INVITE naming a customer's number and trunk in `X-Peerex-Trunk`, for a
/// PSTN number at a gateway of its choosing (a sipp UAS on 127.0.0.4). The proxy drops the header,
/// peerex decides an inbound call to an unknown number (404), and the gateway never sees the call.
/// The same call from Zoom's SBC address (127.0.0.2, without any header) is let out and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_kamailio_asking_the_redirect_server_a_caller_cannot_name_the_trunk() {
    a_caller_cannot_name_the_trunk_through_kamailio(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_kamailio_asking_the_lookup_api_a_caller_cannot_name_the_trunk() {
    a_caller_cannot_name_the_trunk_through_kamailio(true).await
}

async fn a_caller_cannot_name_the_trunk_through_kamailio(http: bool) {
    let w = world_with(Db::Sqlite, |c| c.http_secret = "s3cret".into()).await;
    let dir = tempfile::tempdir().unwrap();
    let gateway_port = free_udp_port();
    let gateway = spawn_uas(dir.path(), "gateway", "127.0.0.4", gateway_port, &DIALLED[1..]);
    let mut defines =
        vec![r#"ZOOM_SBC_NETS="127.0.0.2/32""#.to_string(), r#"ZOOM_TRUNK="zoom-a""#.to_string()];
    if http {
        defines.push("WITH_HTTP".into());
        defines.push(r#"PEEREX_SECRET="s3cret""#.into());
    }
    let k = Kamailio::start(&w, dir.path(), &defines).await;
    // The call goes to the gateway in the Request-URI, from the customer's number.
    let outbound = |scenario: &str, header: bool| {
        let s = scenario
            .replace(
                "@[remote_ip]:[remote_port];user=phone",
                &format!("@127.0.0.4:{gateway_port};user=phone"),
            )
            .replace("<sip:+15559990000@", &format!("<sip:{ACTIVE}@"));
        if header {
            s.replacen("Max-Forwards: 70\n", "X-Peerex-Trunk: zoom-a\nMax-Forwards: 70\n", 1)
        } else {
            s
        }
    };
    let spoofed_expect_404 =
        outbound(&include_str!("sipp-expect.xml").replace("EXPECTED", "404"), true);
    let spoofed_call = outbound(include_str!("sipp-call-through.xml"), true);
    let from_zoom = outbound(include_str!("sipp-call-through.xml"), false);
    assert!(spoofed_call.contains("X-Peerex-Trunk: zoom-a") && from_zoom.contains(ACTIVE));
    let kamailio = k.addr;
    let (refused, leaked, zoom) = tokio::task::spawn_blocking(move || {
        (
            sipp_scenario_from("127.0.0.3", kamailio, "u1", DIALLED, &spoofed_expect_404),
            sipp_scenario_from("127.0.0.3", kamailio, "u1", DIALLED, &spoofed_call),
            sipp_scenario_from("127.0.0.2", kamailio, "u1", DIALLED, &from_zoom),
        )
    })
    .await
    .unwrap();
    assert!(refused, "the caller's INVITE naming the trunk was not refused with 404:\n{}", k.log());
    assert!(!leaked, "the caller's call reached the gateway of its choosing");
    assert!(zoom, "the call from Zoom's SBC was not let out to the gateway:\n{}", k.log());
    // The gateway took exactly one call: Zoom's (it answers one call, then ends).
    assert_eq!(
        uas_done(gateway, Duration::from_secs(10)).await,
        Some(true),
        "{}",
        std::fs::read_to_string(dir.path().join("gateway-err.log")).unwrap_or_default()
    );
}

/// Whether the server has closed `s` (read gives end of stream or a reset, or an over-the-limit
/// 503 then the end), checked without waiting longer than `wait`.
fn closed_by_server(s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut s = s;
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the 503 some get before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Slowloris against both TCP listeners: hundreds of connections from one address and from ten
/// others, some silent, some sending a request head that never ends, one trickling a byte at a
/// time. The listeners stay bounded (an address past its share is closed at once), the trusted
/// proxy is answered throughout, the slow connections are closed within two header timeouts, and
/// then a newcomer is answered too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_half_open_connections_do_not_stop_lookups_or_sip_over_tcp() {
    let w = world_with(Db::Sqlite, |c| {
        c.max_connections = 40;
        c.max_connections_per_source = 10;
        c.header_timeout_seconds = 1;
        c.idle_timeout_seconds = 3;
    })
    .await;
    let (http, sip) = (w.started.http.unwrap(), w.started.sip.unwrap());
    let outcome = tokio::task::spawn_blocking(move || {
        let mut report = Vec::new();
        for (name, server, partial) in [
            ("lookup API", http, &b"GET /route?to=%2B1555"[..]),
            ("SIP over TCP", sip, &b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP"[..]),
        ] {
            // 100 from one address, each sending half a head; 10 from each of ten others, silent.
            let one: Vec<TcpStream> = (0..100)
                .filter_map(|_| {
                    let mut s = tcp_from("127.0.0.2", server).ok()?;
                    let _ = s.write_all(partial);
                    Some(s)
                })
                .collect();
            let many: Vec<TcpStream> = (3..13)
                .flat_map(|i| {
                    (0..10).filter_map(move |_| tcp_from(&format!("127.0.0.{i}"), server).ok())
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            let open_from_one =
                one.iter().filter(|s| !closed_by_server(s, Duration::from_millis(20))).count();
            // A trickler: a byte every 200 ms, never a whole head.
            let trickler = tcp_from("127.0.0.14", server).ok();
            let trickling = std::thread::spawn(move || {
                let mut t = trickler?;
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(4) {
                    if t.write_all(b"a").is_err() {
                        return Some(t0.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                None
            });
            // The trusted proxy is answered while all that is open.
            let proxy = ask_alive(name, "127.0.0.1", server);
            std::thread::sleep(Duration::from_millis(2_500));
            let still_open = one
                .iter()
                .chain(many.iter())
                .filter(|s| !closed_by_server(s, Duration::from_millis(20)))
                .count();
            let trickler_cut = trickling.join().unwrap();
            let newcomer = ask_alive(name, "127.0.0.20", server);
            report.push((name, open_from_one, proxy, still_open, trickler_cut, newcomer));
        }
        report
    })
    .await
    .unwrap();
    for (name, open_from_one, proxy, still_open, trickler_cut, newcomer) in outcome {
        assert!(open_from_one <= 10, "{name}: {open_from_one} connections held for one address");
        assert!(proxy, "{name}: the trusted proxy was not answered during the attack");
        assert_eq!(still_open, 0, "{name}: slow connections still open after two header timeouts");
        assert!(trickler_cut.is_some(), "{name}: a head trickled in byte by byte was never cut");
        assert!(newcomer, "{name}: a newcomer was not answered after the attack");
    }
}

/// A client that sends requests and never reads the answers (its receive window closed) is cut off
/// within two header timeouts, on both listeners, rather than holding its connection for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_closed() {
    let w = world_with(Db::Sqlite, |c| {
        c.header_timeout_seconds = 1;
        c.idle_timeout_seconds = 60;
    })
    .await;
    let (http, sip) = (w.started.http.unwrap(), w.started.sip.unwrap());
    let outcome = tokio::task::spawn_blocking(move || {
        [("lookup API", http), ("SIP over TCP", sip)].map(|(name, server)| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.bind(&SocketAddr::from(([127, 0, 0, 5], 0)).into()).unwrap();
            s.connect(&server.into()).unwrap();
            let mut s: TcpStream = s.into();
            let me = s.local_addr().unwrap();
            let one = if name == "lookup API" {
                b"GET /healthz HTTP/1.1\r\n\r\n".to_vec()
            } else {
                format!("OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-r\r\nFrom: <sip:p@{me}>;tag=1\r\nTo: <sip:{server}>\r\nCall-ID: reads-nothing\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").into_bytes()
            };
            // Far more answers than the socket buffers on both sides hold.
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let burst = one.repeat(100_000);
            let _ = s.write_all(&burst);
            std::thread::sleep(Duration::from_millis(3_000));
            // Cut off: draining what was sent reaches the end (or a reset); still served: the
            // server goes on answering and the read waits.
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut rest = Vec::new();
            let closed = match s.read_to_end(&mut rest) {
                Ok(_) => true,
                Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            };
            (name, closed)
        })
    })
    .await
    .unwrap();
    for (name, closed) in outcome {
        assert!(closed, "{name}: a client reading none of its answers was left connected");
    }
}

/// A lookup (`/healthz`) or an OPTIONS over a new connection from `ip` gets its answer.
fn ask_alive(listener: &str, ip: &str, server: SocketAddr) -> bool {
    let answer = if listener == "lookup API" {
        tcp_ask(ip, server, |_| b"GET /healthz HTTP/1.1\r\n\r\n".to_vec())
    } else {
        tcp_ask(ip, server, |me| {
            format!("OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-a\r\nFrom: <sip:p@{me}>;tag=1\r\nTo: <sip:{server}>\r\nCall-ID: alive-{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").into_bytes()
        })
    };
    answer.is_some_and(|a| a.starts_with("HTTP/1.1 200") || a.starts_with("SIP/2.0 200"))
}

/// Bytes that are not UTF-8: in a SIP header, 400 (it has a Via to answer to) rather than silence
/// and 32 s of retransmissions; in the lookup API's `to`, 400 naming `to` rather than a decision
/// about some other number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_get_400() {
    let w = world(Db::Sqlite).await;
    let (sip, http) = (w.started.sip.unwrap(), w.started.http.unwrap());
    let (udp, tcp, lookup, raw) = tokio::task::spawn_blocking(move || {
        // The To header's user part with a byte that is never UTF-8.
        let bad = |me: SocketAddr, transport: &str| {
            let m = invite(me, transport, ACTIVE, false);
            let (before, after) = m.split_once(&format!("To: <sip:{DIALLED}")).unwrap();
            [before.as_bytes(), b"To: <sip:+1555\xff", after.as_bytes()].concat()
        };
        (
            udp_ask("127.0.0.1", sip, |me| bad(me, "UDP")),
            tcp_ask("127.0.0.1", sip, |me| bad(me, "TCP")),
            lookup_from("127.0.0.1", http, "to=%2B1555%FF%FE0100001", ""),
            tcp_ask("127.0.0.1", http, |_| b"GET /route?to=\xff HTTP/1.1\r\n\r\n".to_vec()),
        )
    })
    .await
    .unwrap();
    for (transport, a) in [("UDP", udp), ("TCP", tcp)] {
        let a = a.unwrap_or_else(|| panic!("no answer over {transport}"));
        assert!(a.starts_with("SIP/2.0 400 Header Not UTF-8\r\n"), "{transport}: {a}");
        assert!(a.contains("Call-ID: probe-"), "the answer matches the request: {a}");
    }
    assert_eq!(lookup.0, 400, "{}", lookup.1);
    assert_eq!(lookup.1["detail"], "to: not valid UTF-8 once percent-decoded");
    assert!(raw.unwrap().starts_with("HTTP/1.1 400 "));
}
