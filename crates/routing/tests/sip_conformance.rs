//! The SIP redirect server speaks SIP as RFC 3261 defines it, on real sockets: every message of
//! RFC 4475 ("SIP Torture Test Messages", the files in `rfc4475/`, see its README) sent as the
//! RFC's file gives it, over UDP and over TCP, gets the answer the RFC expects of a UAS; the
//! messages carriers' SBCs send (compact headers, several Vias, IPv6, `tel:`, P-Asserted-Identity
//! in its forms, SIP-I bodies) are understood; TCP keep-alives are answered as RFC 5626 says.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use testkit::Db;

/// What the redirect server must do with one message.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A final answer with this status; `phrase` is its reason phrase when it says why (a 400),
    /// and every one of `has` is in it.
    Answer { status: u16, phrase: Option<&'static str>, has: &'static [&'static str] },
    /// No answer: a response, a message without a Via, or not a whole message.
    Silence,
}

/// What becomes of a TCP connection after the message (and its answers, if any).
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    /// Answers the next request on it.
    Usable,
    /// Closed by the server: the stream cannot be framed any more (RFC 3261 §18.3).
    Closed,
    /// Waiting for more of the message (a Content-Length beyond what was sent, no blank line,
    /// or a body left over that no Content-Length announced).
    Waiting,
}

struct Case {
    file: &'static str,
    /// RFC 4475's section and what the RFC says of the message, for the failure message.
    section: &'static str,
    udp: Expect,
    /// Over TCP: the answers in order (several when the stream holds several messages).
    tcp: &'static [Expect],
    after: After,
}

const fn answer(status: u16) -> Expect {
    Expect::Answer { status, phrase: None, has: &[] }
}
const fn bad(phrase: &'static str) -> Expect {
    Expect::Answer { status: 400, phrase: Some(phrase), has: &[] }
}
const fn with(status: u16, has: &'static [&'static str]) -> Expect {
    Expect::Answer { status, phrase: None, has }
}
const ALLOW: &str = "Allow: INVITE, ACK, CANCEL, OPTIONS\r\n";

/// The same answer over UDP and TCP, the connection usable after it.
const fn both(file: &'static str, section: &'static str, e: &'static Expect) -> Case {
    Case { file, section, udp: *e, tcp: std::slice::from_ref(e), after: After::Usable }
}

/// RFC 4475 §3, message by message, as a redirect server (a UAS, RFC 3261 §8.2) must answer: the
/// parse first (400 says why), then the method (501 unknown, 405 known but not ours, both with
/// Allow), then the Request-URI's scheme (416), then Require (420), then the body's type (415),
/// then the request itself. Where the RFC lets an element be liberal, the comment says so.
const CASES: &[Case] = &[
    // 3.1.1 Valid messages: all well-formed.
    both("wsinv", "3.1.1.1 short tortuous INVITE (folding, LWS everywhere, compact forms)", &with(404, &["1918181833n", "SIP  / 2.0  / TCP", "z9hG4bK30239"])),
    both("intmeth", "3.1.1.2 wide range of valid characters: an extension method", &with(501, &[ALLOW])),
    both("esc01", "3.1.1.3 valid % escaping: an INVITE for a user that is no number", &answer(404)),
    both("escnull", "3.1.1.4 escaped nulls: a REGISTER", &with(405, &[ALLOW])),
    both("esc02", "3.1.1.5 RE%47IST%45R is an extension method, not REGISTER", &with(501, &[ALLOW])),
    both("lwsdisp", "3.1.1.6 no LWS between display name and <", &answer(200)),
    both("longreq", "3.1.1.7 long values, 34 Vias", &with(404, &["Via: SIP/2.0/TCP sip1.example.com\r\n"])),
    Case {
        file: "dblreq",
        section: "3.1.1.8 extra octets after the Content-Length are not part of the datagram",
        udp: with(405, &[ALLOW]),
        // On a stream they are the next message (after a CRLF, which is ignored).
        tcp: &[with(405, &[ALLOW]), answer(404)],
        after: After::Usable,
    },
    both("semiuri", "3.1.1.9 ; in the Request-URI's user part", &answer(200)),
    both("transports", "3.1.1.10 varied and unknown transports in five Vias", &with(200, &["Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n"])),
    both("mpart01", "3.1.1.11 a multipart MESSAGE", &with(405, &[ALLOW])),
    both("unreason", "3.1.1.12 a response: a redirect server sends none upstream", &Expect::Silence),
    both("noreason", "3.1.1.13 a response with an empty reason phrase", &Expect::Silence),
    // 3.1.2 Invalid messages.
    both("badinv01", "3.1.2.1 extraneous header field separators in Via: 400, Via echoed untouched", &Expect::Answer { status: 400, phrase: Some("Bad Via"), has: &["Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"] }),
    Case {
        file: "clerr",
        section: "3.1.2.2 Content-Length larger than the datagram: 400; on a stream, wait for the rest",
        udp: bad("Bad Content-Length"),
        tcp: &[Expect::Silence],
        after: After::Waiting,
    },
    Case {
        file: "ncl",
        section: "3.1.2.3 negative Content-Length: 400, and a stream that cannot be framed is closed",
        udp: bad("Bad Content-Length"),
        tcp: &[bad("Bad Content-Length")],
        after: After::Closed,
    },
    both("scalar02", "3.1.2.4 CSeq beyond 2**32-1", &bad("Bad CSeq")),
    both("scalarlg", "3.1.2.5 a response", &Expect::Silence),
    both("quotbal", "3.1.2.6 unterminated quoted string in To", &bad("Bad To")),
    both("ltgtruri", "3.1.2.7 <> around the Request-URI", &bad("Bad Request-URI")),
    both("lwsruri", "3.1.2.8 LWS inside the Request-URI", &bad("Bad Request Line")),
    both("lwsstart", "3.1.2.9 several SP between Request-Line elements", &bad("Bad Request Line")),
    both("trws", "3.1.2.10 SP at the end of the Request-Line", &bad("Bad Request Line")),
    // Liberal, as the RFC allows: the escaped Route is never passed on (the 302's Contact is
    // built from the number, and this user is none).
    both("escruri", "3.1.2.11 escaped headers in the Request-URI", &answer(404)),
    // Liberal: Date is not read.
    both("baddate", "3.1.2.12 non-GMT time zone in Date", &answer(404)),
    both("regbadct", "3.1.2.13 REGISTER with an unenclosed Contact", &with(405, &[ALLOW])),
    // Liberal: the spaces inside <> change nothing a redirect server reads.
    both("badaspec", "3.1.2.14 spaces within the addr-spec of To", &answer(200)),
    Case {
        file: "baddn",
        section: "3.1.2.15 the RFC's file ends without the blank line: not a whole message",
        udp: Expect::Silence,
        tcp: &[Expect::Silence],
        after: After::Waiting,
    },
    both("badvers", "3.1.2.16 SIP/7.0", &answer(505)),
    both("mismatch01", "3.1.2.17 OPTIONS with an INVITE CSeq", &bad("Bad CSeq")),
    both("mismatch02", "3.1.2.18 unknown method with a mismatched CSeq: 501 preferred", &with(501, &[ALLOW])),
    both("bigcode", "3.1.2.19 a response", &Expect::Silence),
    // 3.2 Transaction layer.
    both("badbranch", "3.2.1 a branch that is only the magic cookie", &answer(200)),
    // 3.3 Application layer.
    both("insuf", "3.3.1 no From, To or Call-ID", &bad("Missing From")),
    both("unkscm", "3.3.2 unknown Request-URI scheme", &answer(416)),
    both("novelsc", "3.3.3 known but unsupported Request-URI scheme", &answer(416)),
    both("unksm2", "3.3.4 unknown schemes in a REGISTER's headers", &with(405, &[ALLOW])),
    both("bext01", "3.3.5 Require with unknown options: 420 listing them (a UAS reads Require, not Proxy-Require)", &with(420, &["Unsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"])),
    both("invut", "3.3.6 a body of unknown type", &with(415, &["Accept: application/sdp"])),
    both("regaut01", "3.3.7 a REGISTER with an unknown authorization scheme", &with(405, &[ALLOW])),
    both("multi01", "3.3.8 several values in single-value headers", &bad("Duplicate CSeq")),
    Case {
        file: "mcl01",
        section: "3.3.9 two Content-Length values: 400, and on a stream the framing is lost",
        udp: bad("Conflicting Content-Length"),
        tcp: &[bad("Conflicting Content-Length")],
        after: After::Closed,
    },
    both("bcast", "3.3.10 a response", &Expect::Silence),
    both("zeromf", "3.3.11 Max-Forwards 0: a UAS answers as usual", &answer(200)),
    both("cparam01", "3.3.12 REGISTER", &with(405, &[ALLOW])),
    both("cparam02", "3.3.13 REGISTER", &with(405, &[ALLOW])),
    both("regescrt", "3.3.14 REGISTER", &with(405, &[ALLOW])),
    // No answer of this server has a body, so none is unacceptable to Accept.
    both("sdp01", "3.3.15 Accept of a type nobody knows", &answer(404)),
    // 3.4 Backward compatibility.
    Case {
        file: "inv2543",
        section: "3.4.1 RFC 2543 syntax (no branch, no From tag, no Content-Length)",
        udp: answer(404),
        tcp: &[answer(404)],
        // Without Content-Length its body is left on the stream, and no blank line ends it.
        after: After::Waiting,
    },
    // In the RFC's archive, mentioned by no section: no Via, no SIP version.
    both("test", "test.dat", &Expect::Silence),
];

fn corpus(file: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{file}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn check(what: &str, e: Expect, got: Option<&str>) -> Result<(), String> {
    match (e, got) {
        (Expect::Silence, None) => Ok(()),
        (Expect::Silence, Some(a)) => Err(format!("{what}: expected no answer, got\n{a}")),
        (Expect::Answer { status, .. }, None) => {
            Err(format!("{what}: expected {status}, got nothing"))
        }
        (Expect::Answer { status, phrase, has }, Some(a)) => {
            let line = a.lines().next().unwrap_or_default();
            let want = match phrase {
                Some(p) => format!("SIP/2.0 {status} {p}\r"),
                None => format!("SIP/2.0 {status} "),
            };
            if !format!("{line}\r").starts_with(&want) {
                return Err(format!("{what}: expected `{}`, got\n{a}", want.trim_end()));
            }
            if let Some(h) = has.iter().find(|h| !a.contains(*h)) {
                return Err(format!("{what}: expected {h:?} in\n{a}"));
            }
            if !a.ends_with("Content-Length: 0\r\n\r\n") {
                return Err(format!("{what}: not a whole answer\n{a}"));
            }
            Ok(())
        }
    }
}

/// A loopback address of our own with UDP port 5060 (and 5050) free on it: most of the RFC's Vias
/// name no port, so their answers go to port 5060 of the address they came from (RFC 3261
/// §18.2.2), and `quotbal`'s to 5050.
fn udp_client() -> (UdpSocket, UdpSocket) {
    for last in 50..=99 {
        let ip = format!("127.0.0.{last}");
        if let (Ok(a), Ok(b)) =
            (UdpSocket::bind((ip.as_str(), 5060)), UdpSocket::bind((ip.as_str(), 5050)))
        {
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            return (a, b);
        }
    }
    panic!("no loopback address with UDP 5060 and 5050 free");
}

/// The next datagram on either socket, if one comes within `wait`.
fn udp_answer(socks: &(UdpSocket, UdpSocket), wait: Duration) -> Option<String> {
    let t0 = Instant::now();
    let mut buf = vec![0u8; 65_536];
    while t0.elapsed() < wait {
        for s in [&socks.0, &socks.1] {
            if let Ok(n) = s.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// Time given to an answer that should not come.
const QUIET: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(3);

fn options(ip: &str, port: u16, transport: &str, n: &str) -> String {
    format!(
        "OPTIONS sip:peerex.example SIP/2.0\r\nVia: SIP/2.0/{transport} {ip}:{port};branch=z9hG4bK-{n}\r\nFrom: <sip:probe@{ip}>;tag={n}\r\nTo: <sip:peerex.example>\r\nCall-ID: {n}@{ip}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Every RFC 4475 message as one datagram, twice: the RFC's answer, byte-identical the second
/// time, and the server still answering afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_4475_messages_get_the_answers_the_rfc_expects_over_udp() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    tokio::task::spawn_blocking(move || {
        let socks = udp_client();
        let me = socks.0.local_addr().unwrap();
        let mut failures = Vec::new();
        for c in CASES {
            let msg = corpus(c.file);
            let what = format!("{} over UDP ({})", c.file, c.section);
            socks.0.send_to(&msg, sip).unwrap();
            let first =
                udp_answer(&socks, if matches!(c.udp, Expect::Silence) { QUIET } else { WAIT });
            if let Err(e) = check(&what, c.udp, first.as_deref()) {
                failures.push(e);
                continue;
            }
            if first.is_some() {
                socks.0.send_to(&msg, sip).unwrap();
                let again = udp_answer(&socks, WAIT);
                if again != first {
                    failures.push(format!("{what}: the retransmission got\n{again:?}"));
                }
            }
        }
        socks
            .0
            .send_to(options(&me.ip().to_string(), 5060, "UDP", "still-up").as_bytes(), sip)
            .unwrap();
        let up = udp_answer(&socks, WAIT).unwrap_or_default();
        assert!(up.starts_with("SIP/2.0 200 "), "still answering: {up}");
        assert!(
            failures.is_empty(),
            "{} of {} messages:\n\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n\n")
        );
    })
    .await
    .unwrap();
}

/// Reads whole answers (each ends with its empty Content-Length) until `count` have come, the
/// stream ends, or nothing more comes within `wait`. Also whether the stream ended.
fn tcp_answers(s: &mut TcpStream, count: usize, wait: Duration) -> (Vec<String>, bool) {
    let end = b"Content-Length: 0\r\n\r\n";
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let t0 = Instant::now();
    let mut closed = false;
    while buf.windows(end.len()).filter(|w| w == end).count() < count && t0.elapsed() < wait {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let answers = text.split_inclusive("Content-Length: 0\r\n\r\n").map(str::to_owned).collect();
    (answers, closed)
}

/// Every RFC 4475 message on a TCP connection of its own: the RFC's answers (framed by
/// Content-Length, so extra octets are the next message), then the connection usable, closed
/// (framing lost) or waiting for the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_4475_messages_get_the_answers_the_rfc_expects_over_tcp() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for c in CASES {
            let what = format!("{} over TCP ({})", c.file, c.section);
            let mut s = TcpStream::connect(sip).unwrap();
            let me = s.local_addr().unwrap();
            s.write_all(&corpus(c.file)).unwrap();
            let answers_expected =
                c.tcp.iter().filter(|e| matches!(e, Expect::Answer { .. })).count();
            let (got, closed) = tcp_answers(
                &mut s,
                answers_expected.max(1),
                if answers_expected == 0 { QUIET } else { WAIT },
            );
            let result = (|| {
                let mut got = got.iter().map(String::as_str);
                for e in c.tcp {
                    if matches!(e, Expect::Answer { .. }) {
                        check(&what, *e, got.next())?;
                    }
                }
                match got.next() {
                    Some(extra) => Err(format!("{what}: unexpected answer\n{extra}")),
                    None => Ok(()),
                }
            })();
            if let Err(e) = result {
                failures.push(e);
                continue;
            }
            match c.after {
                After::Closed => {
                    let (more, closed_now) = tcp_answers(&mut s, 1, QUIET);
                    if !(closed || closed_now) || !more.is_empty() {
                        failures.push(format!("{what}: the connection stays open ({more:?})"));
                    }
                }
                After::Usable => {
                    let ok = s
                        .write_all(
                            options(&me.ip().to_string(), me.port(), "TCP", c.file).as_bytes(),
                        )
                        .is_ok()
                        && tcp_answers(&mut s, 1, WAIT)
                            .0
                            .first()
                            .is_some_and(|a| a.starts_with("SIP/2.0 200 "));
                    if !ok || closed {
                        failures.push(format!(
                            "{what}: the connection does not answer an OPTIONS after it"
                        ));
                    }
                }
                After::Waiting => {
                    if closed {
                        failures
                            .push(format!("{what}: closed while the message may still be coming"));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} messages:\n\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n\n")
        );
    })
    .await
    .unwrap();
}

/// `baddn` with the blank line its file lacks: the unquoted display names with a comma are
/// refused (the RFC allows inferring the quotes; refusing is the reasonable choice it names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unquoted_display_names_with_a_comma_are_refused() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    let a = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(sip).unwrap();
        s.write_all(&[corpus("baddn"), b"\r\n".to_vec()].concat()).unwrap();
        tcp_answers(&mut s, 1, WAIT).0
    })
    .await
    .unwrap();
    check("baddn completed", bad("Bad From"), a.first().map(String::as_str)).unwrap();
}

/// An SBC's INVITE for `number`, as it sends it from `me` over `transport`, with `extra` headers
/// before Content-Length; `compact` uses RFC 3261 §7.3.3's short names.
fn sbc_invite(me: SocketAddr, transport: &str, ruri: &str, extra: &str, compact: bool) -> String {
    let n = format!("{}-{}", me.port(), ruri.len() + extra.len());
    let [via, from, to, call_id, contact, length] = if compact {
        ["v", "f", "t", "i", "m", "l"]
    } else {
        ["Via", "From", "To", "Call-ID", "Contact", "Content-Length"]
    };
    format!(
        "INVITE {ruri} SIP/2.0\r\n{via}: SIP/2.0/{transport} {me};branch=z9hG4bK-sbc{n};rport\r\nMax-Forwards: 69\r\n{from}: \"Caller\" <sip:+12125550123@sbc.carrier.example;user=phone>;tag=sbc{n}\r\n{to}: <{ruri}>\r\n{call_id}: sbc-{n}@sbc.carrier.example\r\nCSeq: 101 INVITE\r\n{contact}: <sip:+12125550123@{me};transport={t}>\r\nSupported: 100rel, timer, replaces\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE\r\n{extra}{length}: 0\r\n\r\n",
        t = transport.to_ascii_lowercase()
    )
}

fn udp_from(ip: &str, server: SocketAddr, msg: impl Fn(SocketAddr) -> String) -> String {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let me = s.local_addr().unwrap();
    s.send_to(msg(me).as_bytes(), server).unwrap();
    let mut buf = [0u8; 8192];
    let n = s.recv(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn tcp_from(server: SocketAddr, msg: impl Fn(SocketAddr) -> String) -> String {
    let mut s = TcpStream::connect(server).unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(msg(me).as_bytes()).unwrap();
    tcp_answers(&mut s, 1, WAIT).0.into_iter().next().unwrap_or_default()
}

const ZOOM_A: &str = "Contact: <sip:+15550100001@zoom-a.example:5061;transport=tls>;q=1.000\r\n";

/// What carriers' SBCs send, inbound (from any address) and outbound (from the trusted proxy,
/// naming the Zoom trunk): each is decided, none refused for its form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_as_carriers_sbcs_send_them_are_understood() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    let results = tokio::task::spawn_blocking(move || {
        let untrusted = "127.0.0.2";
        let mut r: Vec<(&str, String, &[&str])> = Vec::new();
        let active = "sip:+15550100001@peerex.example;user=phone";
        r.push(("long names over UDP", udp_from(untrusted, sip, |me| sbc_invite(me, "UDP", active, "", false)), &["SIP/2.0 302 ", ZOOM_A]));
        r.push(("compact names over UDP", udp_from(untrusted, sip, |me| sbc_invite(me, "UDP", active, "", true)), &["SIP/2.0 302 ", ZOOM_A, "Call-ID: sbc-"]));
        r.push(("compact names over TCP", tcp_from(sip, |me| sbc_invite(me, "TCP", active, "", true)), &["SIP/2.0 302 ", ZOOM_A]));
        r.push(("tel: Request-URI", udp_from(untrusted, sip, |me| sbc_invite(me, "UDP", "tel:+1-555-010-0001", "", false)), &["SIP/2.0 302 ", ZOOM_A]));
        r.push(("IPv6 in the Request-URI and a Via", udp_from(untrusted, sip, |me| {
            sbc_invite(me, "UDP", "sip:+15550100001@[2001:db8::1]:5060;user=phone", "", false).replacen(
                "Max-Forwards",
                "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3-111\r\nVia: SIP/2.0/TCP [2001:db8::10];branch=z9hG4bK-v6b;rport=5070;received=2001:db8::10\r\nMax-Forwards",
                1,
            )
        }), &["SIP/2.0 302 ", ZOOM_A, "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3-111\r\n"]));
        r.push(("several Vias in one header and in several", udp_from(untrusted, sip, |me| {
            sbc_invite(me, "UDP", active, "", false).replacen(
                ";rport\r\n",
                ";rport , SIP/2.0/TCP core.carrier.example:5060;branch=z9hG4bK-core\r\nVia: SIP/2.0/UDP pbx.customer.example;branch=z9hG4bK-pbx\r\n",
                1,
            )
        }), &["SIP/2.0 302 ", ", SIP/2.0/TCP core.carrier.example:5060;branch=z9hG4bK-core\r\nVia: SIP/2.0/UDP pbx.customer.example;branch=z9hG4bK-pbx\r\n"]));
        r.push(("Require of an option a redirect server honours by what it never sends", udp_from(untrusted, sip, |me| sbc_invite(me, "UDP", active, "Require: 100rel\r\n", false)), &["SIP/2.0 302 "]));
        r.push(("a SIP-I body (SDP and ISUP)", udp_from(untrusted, sip, |me| {
            let body = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b1\r\nContent-Type: application/isup;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n\u{1}\u{2}\r\n--b1--\r\n";
            sbc_invite(me, "UDP", active, "Content-Type: multipart/mixed;boundary=b1\r\n", false)
                .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{body}", body.len()))
        }), &["SIP/2.0 302 ", ZOOM_A]));
        // Outbound: the trusted proxy names the trunk; the calling number is P-Asserted-Identity's.
        let dialled = "sip:+442071234567@gw.carrier.example;user=phone";
        for (form, pai) in [
            ("P-Asserted-Identity with a display name", "P-Asserted-Identity: \"Front desk\" <sip:+15550100001@zoom.example;user=phone>\r\n"),
            ("P-Asserted-Identity with a SIP and a tel URI in one header", "P-Asserted-Identity: <sip:+15550100001@zoom.example;user=phone>, <tel:+15550100001>\r\n"),
            ("P-Asserted-Identity in two headers", "P-Asserted-Identity: <tel:+15550100001>\r\nP-Asserted-Identity: <sip:+15550100001@zoom.example;user=phone>\r\n"),
            ("P-Asserted-Identity naming a user, then the number in tel", "P-Asserted-Identity: \"Front desk\" <sip:frontdesk@zoom.example>, <tel:+15550100001>\r\n"),
            ("P-Asserted-Identity without angle brackets", "P-Asserted-Identity: tel:+15550100001\r\n"),
        ] {
            let extra = format!("X-Peerex-Trunk: zoom-a\r\n{pai}");
            r.push((form, udp_from("127.0.0.1", sip, |me| {
                sbc_invite(me, "UDP", dialled, &extra, false).replace("+12125550123", "+15559990000")
            }), &["SIP/2.0 302 ", "Contact: <sip:+442071234567@gw.carrier.example;user=phone>\r\n"]));
        }
        r
    })
    .await
    .unwrap();
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, a, has)| !has.iter().all(|h| a.contains(h)))
        .map(|(form, a, has)| format!("{form}: expected {has:?} in\n{a}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// RFC 5626 §4.4.1 keep-alives over TCP: a double CRLF (even split across writes) gets one CRLF
/// back; a single CRLF before a request is ignored (RFC 3261 §7.5); the connection answers on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_keepalives_get_a_crlf_pong_and_stray_crlfs_are_ignored() {
    let w = world(Db::Sqlite).await;
    let sip = w.started.sip.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(sip).unwrap();
        let me = s.local_addr().unwrap();
        let read_exactly = |s: &mut TcpStream, n: usize| {
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = vec![0u8; n];
            s.read_exact(&mut buf).map(|_| buf)
        };
        s.write_all(b"\r\n\r\n").unwrap();
        assert_eq!(read_exactly(&mut s, 2).unwrap(), b"\r\n", "ping, pong");
        s.write_all(b"\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"\r\n").unwrap();
        assert_eq!(read_exactly(&mut s, 2).unwrap(), b"\r\n", "a ping in two writes");
        let ask = format!("\r\n{}", options(&me.ip().to_string(), me.port(), "TCP", "after-crlf"));
        s.write_all(ask.as_bytes()).unwrap();
        let (a, closed) = tcp_answers(&mut s, 1, WAIT);
        assert!(
            !closed && a.len() == 1 && a[0].starts_with("SIP/2.0 200 "),
            "a CRLF before a request: {a:?}"
        );
        s.write_all(b"\r\n\r\n\r\n\r\n").unwrap();
        assert_eq!(read_exactly(&mut s, 4).unwrap(), b"\r\n\r\n", "two pings, two pongs");
        s.set_read_timeout(Some(QUIET)).unwrap();
        let mut more = [0u8; 16];
        assert!(s.read(&mut more).is_err(), "nothing else is sent");
    })
    .await
    .unwrap();
}
