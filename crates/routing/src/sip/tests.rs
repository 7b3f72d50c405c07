use super::message::{find, TopVia};
use super::*;
use crate::snapshot::Snapshot;
use crate::Routing;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const SRC: &str = "192.0.2.10:5070";

fn response_top_via(top: &str, src: SocketAddr) -> String {
    let mut out = Vec::new();
    TopVia::read(top).write(&mut out, src);
    String::from_utf8(out).unwrap()
}

fn invite(uri: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: <{uri}>\r\nFrom: <sip:+15550000001@carrier.example>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn answer(routing: &Routing, msg: &str) -> Option<String> {
    handle(routing, msg.as_bytes(), SRC.parse().unwrap())
        .map(|(b, _)| String::from_utf8(b).unwrap())
}

/// A customer on trunk zoom-a with +15550100001 active and +15550100002 suspended.
fn one_customer() -> Routing {
    let mut c = Snapshot::default();
    let t = domain::trunk::ZoomTrunk::parse(
        "zoom-a",
        &["sip:a.example"],
        domain::trunk::NumberingRule::nanp(),
        time::OffsetDateTime::UNIX_EPOCH,
    )
    .unwrap();
    let id = domain::CustomerId::new();
    c.set_customers(
        vec![domain::routing::RoutingCustomer {
            id,
            trunk: Some("zoom-a".into()),
            app_removed: false,
        }],
        vec![t],
    );
    let number = |e164: &str, state| domain::routing::NumberFacts {
        e164: domain::PhoneNumber::from_trusted(e164.into()),
        state,
        customer: Some(id),
        reason: None,
    };
    c.load(&[
        number("+15550100001", domain::NumberState::Active),
        number("+15550100002", domain::NumberState::Suspended),
    ]);
    c.finish_load();
    // SRC is the carrier's proxy: it may say which Zoom trunk a call came over.
    let trusted = crate::listen::Networks::parse(&[SRC.split(':').next().unwrap()]).unwrap();
    Routing::from_snapshot(domain::trunk::NumberingRule::nanp(), c).with_trusted_proxies(trusted)
}

fn ready() -> Routing {
    let r = Routing::new(domain::trunk::NumberingRule::nanp());
    r.synced();
    r
}

#[test]
fn unknown_number_is_404_with_a_reason_and_a_stable_tag() {
    let r = ready();
    let a = answer(&r, &invite("sip:+15550100000@peerex.example;user=phone")).unwrap();
    assert!(a.starts_with("SIP/2.0 404 Not Found\r\n"), "{a}");
    assert!(a.contains("Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport=5070;received=192.0.2.10\r\n"), "{a}");
    assert!(a.contains("Reason: SIP;cause=404;text=\"not_provisioned\"\r\n"), "{a}");
    assert!(a.contains("To: <sip:+15550100000@peerex.example;user=phone>;tag=px"), "{a}");
    assert_eq!(
        Some(a),
        answer(&r, &invite("sip:+15550100000@peerex.example;user=phone")),
        "retransmission"
    );
}

#[test]
fn methods_get_their_answers() {
    let r = ready();
    let m = |method: &str| invite("sip:+15550100000@x").replace("INVITE", method);
    assert_eq!(answer(&r, &m("ACK")), None);
    assert_eq!(
        answer(&r, "ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nno colon\r\n\r\n"),
        None,
        "not even a 400 answers an ACK"
    );
    assert!(answer(&r, &m("OPTIONS")).unwrap().starts_with("SIP/2.0 200 OK\r\n"));
    assert!(answer(&r, &m("CANCEL")).unwrap().starts_with("SIP/2.0 481 "));
    for (method, status) in [("BYE", "405"), ("REGISTER", "405"), ("FOO", "501"), ("invite", "501")]
    {
        let a = answer(&r, &m(method)).unwrap();
        assert!(
            a.starts_with(&format!("SIP/2.0 {status} "))
                && a.contains("Allow: INVITE, ACK, CANCEL, OPTIONS\r\n"),
            "{method}: {a}"
        );
    }
    let require = |options: &str| {
        answer(
            &r,
            &m("OPTIONS").replace("Max-Forwards", &format!("Require: {options}\r\nMax-Forwards")),
        )
        .unwrap()
    };
    assert!(require("100rel, timer").starts_with("SIP/2.0 200 "));
    let proxy_only =
        m("OPTIONS").replace("Max-Forwards", "Proxy-Require: x-proxy-only\r\nMax-Forwards");
    assert!(
        answer(&r, &proxy_only).unwrap().starts_with("SIP/2.0 200 "),
        "Proxy-Require is for proxies (RFC 3261 §20.29)"
    );
    let a = require("100rel, gruu,x-foo");
    assert!(
        a.starts_with("SIP/2.0 420 Bad Extension\r\n")
            && a.contains("Unsupported: gruu, x-foo\r\n"),
        "{a}"
    );
    let typed = |t: &str| {
        answer(
            &r,
            &m("OPTIONS").replace(
                "Content-Length: 0\r\n\r\n",
                &format!("Content-Type: {t}\r\nContent-Length: 3\r\n\r\nv=0"),
            ),
        )
        .unwrap()
    };
    assert!(typed("Application/SDP").starts_with("SIP/2.0 200 "));
    assert!(typed("multipart/mixed;boundary=x").starts_with("SIP/2.0 200 "));
    assert!(typed("text/plain").starts_with("SIP/2.0 415 "));
}

#[test]
fn malformed_requests_get_400_or_silence() {
    let r = ready();
    let good = invite("sip:+15550100000@x");
    assert_eq!(answer(&r, "garbage"), None);
    assert_eq!(
        answer(
            &r,
            &good.replace("Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport\r\n", "")
        ),
        None,
        "no Via: nowhere to answer"
    );
    assert_eq!(
        answer(&r, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n"),
        None,
        "responses are dropped"
    );
    for (bad, why) in [
        (good.replace("Call-ID: a84b4c76e66710@pc33\r\n", ""), "Missing Call-ID"),
        (good.replace("CSeq: 314159 INVITE", "CSeq: x INVITE"), "Bad CSeq"),
        (good.replace("Content-Length: 0", "Content-Length: 10"), "Bad Content-Length"),
        (
            good.replace("INVITE sip:+15550100000@x SIP/2.0", "INVITE sip:+15550100000@x SIP/2"),
            "Bad Request Line",
        ),
        (good.replace("To:", "T\u{e9}:"), "Malformed Header"),
        (
            good.replace(
                "CSeq: 314159 INVITE\r\n",
                "CSeq: 314159 INVITE\r\nCSeq: 314160 INVITE\r\n",
            ),
            "Duplicate CSeq",
        ),
        (
            good.replace("Content-Length: 0", "Content-Length: 0\r\nl: 1"),
            "Conflicting Content-Length",
        ),
        (good.replace(";rport", ";;rport"), "Bad Via"),
        (good.replace("Call-ID: a84b4c76e66710@pc33", "Call-ID: a, b"), "Bad Call-ID"),
        (
            good.replace("<sip:+15550000001@carrier.example>", "\"unterminated <sip:x@y>"),
            "Bad From",
        ),
        (good.replace("Max-Forwards: 70", "no colon here"), "Malformed Header"),
    ] {
        let a = answer(&r, &bad).unwrap_or_else(|| panic!("{why}: silence"));
        assert!(a.starts_with(&format!("SIP/2.0 400 {why}\r\n")), "{why}: {a}");
    }
    assert!(answer(&r, &invite("http://x")).unwrap().starts_with("SIP/2.0 416 "));
    assert!(
        answer(&r, &invite("http://x").replace("INVITE", "OPTIONS"))
            .unwrap()
            .starts_with("SIP/2.0 416 "),
        "every method served"
    );
    assert!(answer(&r, &invite("<sip:x@y>"))
        .unwrap()
        .starts_with("SIP/2.0 400 Bad Request-URI\r\n"));
    let other = answer(&r, &good.replace("SIP/2.0\r\n", "SIP/3.0\r\n")).unwrap();
    assert!(other.starts_with("SIP/2.0 505 "), "{other}");
    assert!(answer(&r, &invite("sip:alice@x")).unwrap().starts_with("SIP/2.0 404 "));
    // Liberal where nothing is ambiguous: what PBXs and SBCs send beyond the letter of the grammar.
    for (liberal, what) in [
        (good.replace("SIP/2.0\r\n", "sip/2.0\r\n"), "the version in lower case (RFC 3261 §7.1)"),
        (invite("sip:*67#@x"), "an unescaped # in a feature code"),
        (
            good.replace("From: <", "From: Jos\u{e9} M\u{fc}ller <"),
            "an unquoted UTF-8 display name",
        ),
        (good.replace("To:", "tO  :"), "a header name in any case, LWS before the colon"),
    ] {
        let a = answer(&r, &liberal).unwrap();
        assert!(a.starts_with("SIP/2.0 404 "), "{what}: {a}");
    }
}

#[test]
fn replies_go_where_via_says() {
    let src: SocketAddr = SRC.parse().unwrap();
    let with = |via: &str| {
        let m = format!("OPTIONS sip:x SIP/2.0\r\nVia: {via}\r\n\r\n");
        let leaked: &'static str = Box::leak(m.into_boxed_str());
        reply_to(&parse(leaked.as_bytes()).unwrap(), src)
    };
    assert_eq!(with("SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK1;rport"), src);
    assert_eq!(
        with("SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1"),
        "192.0.2.10:5080".parse().unwrap()
    );
    assert_eq!(with("SIP/2.0/UDP sbc.example;branch=z9hG4bK1"), "192.0.2.10:5060".parse().unwrap());
    assert_eq!(
        response_top_via("SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1", src),
        "SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1;received=192.0.2.10"
    );
    assert_eq!(
        response_top_via("SIP/2.0/UDP 192.0.2.10:5080;branch=z9hG4bK1", src),
        "SIP/2.0/UDP 192.0.2.10:5080;branch=z9hG4bK1"
    );
}

/// The fuzz target's check on stable: the seed corpus in fuzz/seeds, and many random mutations
/// of it (bytes flipped, cut, repeated, 64 KB headers, non-UTF-8), never panic, and every answer
/// is a whole response with a status this server sends. A message without its blank line is
/// never answered.
#[test]
fn parser_never_panics_on_the_fuzz_corpus_and_its_mutations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/sip_message");
    let rfc = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475");
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for d in [dir, rfc] {
        let mut files: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort(); // the same mutations on every run
        seeds.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    assert!(seeds.len() >= 60, "fuzz seeds in {dir} and {rfc}");
    let r = one_customer();
    let src: SocketAddr = SRC.parse().unwrap();
    let check = |msg: &[u8]| {
        if let Some((a, _)) = handle(&r, msg, src) {
            assert!(
                is_expected_answer(&a),
                "{:?} -> {}",
                String::from_utf8_lossy(msg),
                String::from_utf8_lossy(&a)
            );
            assert!(find(msg, b"\r\n\r\n").is_some(), "answered a message without its blank line");
        }
    };
    let mut seen_302 = false;
    for s in &seeds {
        check(s);
        seen_302 |= handle(&r, s, src).is_some_and(|(a, _)| a.starts_with(b"SIP/2.0 302"));
    }
    assert!(seen_302, "the corpus reaches the routing decision");
    // xorshift: reproducible without a dependency
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let junk: [&[u8]; 8] = [
        b"\r\n",
        b":",
        b";",
        b" ",
        b"\xff\xfe",
        b"Via: SIP/2.0/UDP [::1",
        b"CSeq: 99999999999 INVITE",
        b"Content-Length: -1",
    ];
    for _ in 0..20_000 {
        let mut m = seeds[next() as usize % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = next() as usize % (m.len() + 1);
            match next() % 5 {
                0 if !m.is_empty() => {
                    let i = at.min(m.len() - 1);
                    m[i] = next() as u8;
                }
                1 => m.truncate(at),
                2 => {
                    let j = junk[next() as usize % junk.len()];
                    m.splice(at..at, j.iter().copied());
                }
                3 => {
                    let end = (at + next() as usize % 64).min(m.len());
                    let piece = m[at..end].to_vec();
                    m.splice(at..at, piece);
                }
                _ => {
                    let at = at.min(m.len());
                    m.splice(at..at, std::iter::repeat_n(b'a', 65_536));
                }
            }
        }
        check(&m);
    }
    for cut in 0..seeds[0].len() {
        check(&seeds[0][..cut]);
    }
}

/// A burst arrives faster than it is answered, so the receive loop takes several datagrams per
/// system call: every INVITE is answered exactly once, to its own sender, and a datagram as big
/// as UDP allows (garbage) or an ACK among them changes nothing.
#[test]
fn a_burst_over_udp_is_answered_once_per_invite() {
    let server = bind_udp("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    spawn_udp(ready(), server, 0).unwrap();
    // A big receive buffer here too: the answers come before the burst is read.
    let client = bind_udp("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let me = client.local_addr().unwrap();
    const CALLS: usize = 200;
    for i in 0..CALLS {
        let msg = invite("sip:+15550100000@x")
            .replace("192.0.2.10:5070", &me.to_string())
            .replace("a84b4c76e66710@pc33", &format!("burst-{i}"));
        client.send_to(msg.as_bytes(), addr).unwrap();
        if i == CALLS / 2 {
            client.send_to(&vec![b'x'; 65_507], addr).unwrap();
            client.send_to(msg.replace("INVITE", "ACK").as_bytes(), addr).unwrap();
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 65_536];
    while seen.len() < CALLS {
        let n = client.recv(&mut buf).expect("an answer for every INVITE");
        let a = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(a.starts_with("SIP/2.0 404 Not Found\r\n"), "{a}");
        let call =
            a.split("Call-ID: ").nth(1).and_then(|r| r.split("\r\n").next()).unwrap().to_owned();
        assert!(seen.insert(call.clone()), "{call} answered twice");
    }
    client.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    assert!(client.recv(&mut buf).is_err(), "nothing more: no answer to the garbage or the ACK");
}

/// The kernel drops ACKs before they reach the redirect server's socket, and only them: what
/// reaches it is everything else, in order, short datagrams and methods that merely start with
/// the letters included. Over IPv4 and, where the machine has it, IPv6.
#[cfg(target_os = "linux")]
#[test]
fn the_socket_filter_drops_acks_and_nothing_else() {
    let ack = invite("sip:+15550100001@x").replace("INVITE", "ACK");
    let call = invite("sip:+15550100001@x");
    let sent: [&[u8]; 7] = [
        ack.as_bytes(),
        b"AC",
        b"ACK",
        b"ACKS sip:x SIP/2.0\r\n\r\n",
        b"ack sip:x SIP/2.0\r\n\r\n",
        ack.as_bytes(),
        call.as_bytes(),
    ];
    let kept: Vec<&[u8]> = sent.iter().copied().filter(|d| !d.starts_with(b"ACK ")).collect();
    assert_eq!(kept.len(), 5);
    for (server_at, client_at) in [("127.0.0.1:0", "127.0.0.1:0"), ("[::1]:0", "[::1]:0")] {
        let Ok(server) = bind_udp(server_at) else {
            eprintln!("no {server_at} on this machine: not tried");
            continue;
        };
        udp::drop_acks(&server).unwrap();
        server.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
        let client = std::net::UdpSocket::bind(client_at).unwrap();
        for d in sent {
            client.send_to(d, server.local_addr().unwrap()).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = server.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, kept, "over {server_at}");
    }
}

/// The running server has the filter: ACKs sent to it are dropped by the kernel (counted as its
/// socket's drops in /proc/net/udp, where an operator sees them), and an OPTIONS sent after them is
/// answered as ever.
#[cfg(target_os = "linux")]
#[test]
fn the_running_server_has_the_kernel_drop_acks() {
    let server = bind_udp("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    spawn_udp(ready(), server, 0).unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let me = client.local_addr().unwrap().to_string();
    let msg = invite("sip:+15550100000@x").replace("192.0.2.10:5070", &me);
    for _ in 0..10 {
        client.send_to(msg.replace("INVITE", "ACK").as_bytes(), ("127.0.0.1", port)).unwrap();
    }
    client.send_to(msg.replace("INVITE", "OPTIONS").as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    let n = client.recv(&mut buf).expect("the OPTIONS answered");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 "), "{}", String::from_utf8_lossy(&buf[..n]));
    // `sl local_address rem_address st tx_queue:rx_queue ... drops`, addresses in hex.
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let local = format!("0100007F:{port:04X}");
    let line = table.lines().find(|l| l.split_whitespace().nth(1) == Some(local.as_str()));
    let drops: u64 = line.and_then(|l| l.split_whitespace().last()).unwrap().parse().unwrap();
    assert_eq!(drops, 10, "{line:?}");
}

/// Outbound (Zoom to PSTN): the proxy names the Zoom trunk the call came over; the calling
/// number decides. Allowed goes back to the dialled URI; refused is 403 with the reason.
#[test]
fn outbound_invites_are_decided_by_the_calling_number_and_the_trunk() {
    let r = one_customer();
    let call = |from: &str, trunk: &str, extra: &str| {
        let m = invite("sip:+442071234567@carrier.example")
            .replace(
                "From: <sip:+15550000001@carrier.example>",
                &format!("From: \"Front desk\" <{from}>"),
            )
            .replace(
                "Content-Length: 0",
                &format!("X-Peerex-Trunk: {trunk}\r\n{extra}Content-Length: 0"),
            );
        answer(&r, &m).unwrap()
    };
    let a = call("sip:+15550100001@zoom.example", "zoom-a", "");
    assert!(
        a.starts_with("SIP/2.0 302 Moved Temporarily\r\n")
            && a.contains("Contact: <sip:+442071234567@carrier.example>\r\n"),
        "{a}"
    );
    for (from, trunk, extra, status, reason) in [
        ("sip:+15550100001@zoom.example", "zoom-b", "", "403", "wrong_trunk"),
        ("sip:+15550100002@zoom.example", "zoom-a", "", "403", "suspended"),
        ("sip:+15559999999@zoom.example", "zoom-a", "", "403", "not_customer_number"),
        ("sip:anonymous@anonymous.invalid", "zoom-a", "", "403", "not_customer_number"),
        // The identity the proxy asserts wins over From.
        (
            "sip:+15550100001@zoom.example",
            "zoom-a",
            "P-Asserted-Identity: <sip:+15559999999@zoom.example>\r\n",
            "403",
            "not_customer_number",
        ),
    ] {
        let a = call(from, trunk, extra);
        assert!(
            a.starts_with(&format!("SIP/2.0 {status} "))
                && a.contains(&format!("Reason: SIP;cause={status};text=\"{reason}\"\r\n")),
            "{from} over {trunk}: {a}"
        );
    }
    let asserted = call(
        "sip:+15559999999@zoom.example",
        "zoom-a",
        "P-Asserted-Identity: <tel:+15550100001>\r\n",
    );
    assert!(asserted.starts_with("SIP/2.0 302 "), "{asserted}");
    // A copy not checked against the database lately fails closed for outbound, not inbound.
    r.last_sync_ms.store(0, std::sync::atomic::Ordering::Release);
    assert!(call("sip:+15550100001@zoom.example", "zoom-a", "").starts_with("SIP/2.0 503 "));
    assert!(answer(&r, &invite("sip:+15550100001@peerex.example"))
        .unwrap()
        .starts_with("SIP/2.0 302 "));
}

#[test]
fn one_address_gets_its_limit_a_second_and_others_theirs() {
    let mut l = SourceLimit::new(3);
    let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let t0 = Instant::now();
    assert_eq!(
        (0..5).map(|_| l.admit(a, t0)).collect::<Vec<_>>(),
        [true, true, true, false, false]
    );
    assert!(l.admit(b, t0), "another address is not held back");
    assert!(!l.admit(a, t0 + std::time::Duration::from_millis(999)));
    assert!(l.admit(a, t0 + std::time::Duration::from_secs(1)), "a new second, a new allowance");
    let mut none = SourceLimit::new(0);
    assert!((0..100_000).all(|_| none.admit(a, t0)), "0 means no limit");
}

#[test]
fn contact_carries_the_number_to_zoom() {
    assert_eq!(
        contact_uri("sip:zoom-a.example:5061;transport=tls", 15550100000),
        "sip:+15550100000@zoom-a.example:5061;transport=tls"
    );
    assert_eq!(
        contact_uri("sips:trunk@zoom-b.example", 15550100000),
        "sips:+15550100000@zoom-b.example"
    );
}
