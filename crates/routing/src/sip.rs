//! The stateless SIP redirect server (RFC 3261 §8.3, §16.11 for statelessness): an INVITE gets 302
//! with the customer's Zoom trunk in Contact, or 404 / 480 / 403 with `Reason` and `Warning`.
//! Nothing is kept per call: a retransmitted INVITE gets the same bytes (the To-tag is derived from
//! Call-ID and the Via branch), ACK is absorbed, CANCEL finds no transaction (481), OPTIONS gets
//! 200 so SBC keep-alives work, other methods 405 with `Allow`. Responses go where the top Via
//! says, with `received`/`rport` (RFC 3581). Anything malformed gets 400 when it can be answered at
//! all, and silence when it cannot (no usable Via); the parser never panics (see fuzz/).

use crate::snapshot::Answer;
use crate::Routing;
use domain::routing::{normalize, Direction};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Largest message accepted (UDP datagram or TCP message); bigger ones are refused.
pub const MAX_MESSAGE: usize = 65_535;
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";

/// A request as far as a redirect server needs it. Slices borrow the datagram.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    /// Every Via header value, in order (a header with several comma-separated values counts once).
    pub vias: Vec<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub cseq: Option<&'a str>,
    pub content_length: Option<&'a str>,
    /// Bytes after the blank line.
    pub body_len: usize,
    /// The request line was not `METHOD SP URI SP SIP/2.0`.
    pub bad_request_line: bool,
}

/// Why a message was not answered normally.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not answerable: no Via (RFC 3261 §18.1.2 needs it to send anything back), a response, or not text.
    Silent,
    /// Answerable with 400 and this phrase.
    BadRequest(&'static str),
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Splits a message into its request line and headers. Header names are matched case-insensitively,
/// with RFC 3261's compact forms.
pub fn parse(msg: &[u8]) -> Result<Request<'_>, Malformed> {
    if msg.len() > MAX_MESSAGE {
        return Err(Malformed::Silent);
    }
    let head_end = find(msg, b"\r\n\r\n").ok_or(Malformed::Silent)?;
    let head = std::str::from_utf8(&msg[..head_end]).map_err(|_| Malformed::Silent)?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    if first.starts_with("SIP/") {
        return Err(Malformed::Silent); // a response: a stateless redirect server sends none upstream
    }
    let mut r = Request { body_len: msg.len() - head_end - 4, ..Default::default() };
    let mut parts = first.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some("SIP/2.0"), None) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) && !u.is_empty() => {
            r.method = m;
            r.uri = u;
        }
        _ => r.bad_request_line = true,
    }
    for line in lines {
        if line.starts_with([' ', '\t']) {
            continue; // folded continuation (obsolete; RFC 3261 §7.3.1); ignored
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(if r.vias.is_empty() { Malformed::Silent } else { Malformed::BadRequest("Malformed Header") });
        };
        let value = trim(value);
        match trim(name).to_ascii_lowercase().as_str() {
            "via" | "v" => r.vias.push(value),
            "from" | "f" => r.from = Some(value),
            "to" | "t" => r.to = Some(value),
            "call-id" | "i" => r.call_id = Some(value),
            "cseq" => r.cseq = Some(value),
            "content-length" | "l" => r.content_length = Some(value),
            _ => {}
        }
    }
    if r.vias.is_empty() {
        return Err(Malformed::Silent);
    }
    Ok(r)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of `;name=value` among a header's parameters (after the first `;`).
fn param<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        trim(k).eq_ignore_ascii_case(name).then(|| trim(v))
    })
}

fn has_param(header: &str, name: &str) -> bool {
    header.split(';').skip(1).any(|p| trim(p.split('=').next().unwrap_or_default()).eq_ignore_ascii_case(name))
}

/// The top Via's `sent-by` host and port.
fn sent_by(via: &str) -> Option<(&str, Option<u16>)> {
    let first = via.split(',').next()?;
    let (_proto, rest) = trim(first).split_once([' ', '\t'])?;
    let hostport = trim(rest.split(';').next()?);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return Some((host, after.strip_prefix(':').and_then(|p| p.parse().ok())));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((hostport, None)),
    }
}

/// Where the response goes (RFC 3261 §18.2.2 with RFC 3581): the source port when `rport` was
/// asked for, else the Via's port; always the source address (it is what `received` will say).
pub fn reply_to(req: &Request<'_>, src: SocketAddr) -> SocketAddr {
    let top = req.vias[0];
    if has_param(top, "rport") {
        return src;
    }
    let port = sent_by(top).and_then(|(_, p)| p).unwrap_or(5060);
    SocketAddr::new(src.ip(), port)
}

/// The top Via as the response carries it: `received` when the sent-by host is not the source
/// address, `rport` filled in when it was asked for.
fn response_top_via(top: &str, src: SocketAddr) -> String {
    let first = top.split(',').next().unwrap_or(top);
    let rest = &top[first.len()..];
    let mut out = String::with_capacity(top.len() + 40);
    let host_differs = sent_by(first).is_none_or(|(h, _)| h.parse::<IpAddr>().ok() != Some(src.ip()));
    for (i, part) in first.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let key = trim(part.split('=').next().unwrap_or_default());
        if i > 0 && key.eq_ignore_ascii_case("rport") {
            let _ = write!(out, "rport={}", src.port());
        } else if i > 0 && key.eq_ignore_ascii_case("received") {
            // replaced below
            out.pop();
        } else {
            out.push_str(part);
        }
    }
    if host_differs || has_param(first, "rport") {
        let _ = write!(out, ";received={}", src.ip());
    }
    out.push_str(rest);
    out
}

/// FNV-1a: a stable tag from Call-ID and branch, so a retransmission gets the same To-tag.
fn tag(call_id: &str, via: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in call_id.bytes().chain(param(via, "branch").unwrap_or_default().bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("px{h:016x}")
}

/// `sip:host...` with the E.164 number as its user part: the Contact of a 302.
pub fn contact_uri(destination: &str, e164: u64) -> String {
    let (scheme, rest) = destination.split_once(':').unwrap_or(("sip", destination));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}:+{e164}@{host}")
}

fn phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Unsupported URI Scheme",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Builds a response to `req` (which has at least one Via).
fn respond(req: &Request<'_>, src: SocketAddr, status: u16, reason_phrase: Option<&str>, extra: &str) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {status} {}\r\n", reason_phrase.unwrap_or(phrase(status)));
    for (i, via) in req.vias.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, "Via: {}\r\n", response_top_via(via, src));
        } else {
            let _ = write!(out, "Via: {via}\r\n");
        }
    }
    if let Some(f) = req.from {
        let _ = write!(out, "From: {f}\r\n");
    }
    if let Some(t) = req.to {
        if status > 100 && !has_param(t, "tag") {
            let _ = write!(out, "To: {t};tag={}\r\n", tag(req.call_id.unwrap_or_default(), req.vias[0]));
        } else {
            let _ = write!(out, "To: {t}\r\n");
        }
    }
    if let Some(c) = req.call_id {
        let _ = write!(out, "Call-ID: {c}\r\n");
    }
    if let Some(c) = req.cseq {
        let _ = write!(out, "CSeq: {c}\r\n");
    }
    out.push_str(extra);
    out.push_str("Server: peerex\r\nContent-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Whether `answer` is a whole SIP response with a status this server sends (fuzzing and tests).
pub fn is_expected_answer(answer: &[u8]) -> bool {
    const SENT: [&[u8]; 10] = [b"200", b"302", b"400", b"403", b"404", b"405", b"416", b"480", b"481", b"503"];
    answer.starts_with(b"SIP/2.0 ") && answer.len() > 12 && SENT.contains(&&answer[8..11]) && answer[11] == b' ' && answer.ends_with(b"\r\nContent-Length: 0\r\n\r\n")
}

/// The answer to one message, or `None` for silence.
pub fn handle(routing: &Routing, msg: &[u8], src: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
    let req = match parse(msg) {
        Ok(r) => r,
        Err(Malformed::Silent) => return None,
        Err(Malformed::BadRequest(why)) => {
            // `parse` only says BadRequest once it has a Via.
            let req = parse_vias_only(msg)?;
            return Some((respond(&req, src, 400, Some(why), ""), reply_to(&req, src)));
        }
    };
    let dest = reply_to(&req, src);
    if req.bad_request_line {
        return Some((respond(&req, src, 400, Some("Bad Request Line"), ""), dest));
    }
    if req.method == "ACK" {
        return None;
    }
    if req.from.is_none() || req.to.is_none() || req.call_id.is_none() || req.cseq.is_none() {
        return Some((respond(&req, src, 400, Some("Missing Mandatory Header"), ""), dest));
    }
    let cseq_ok = req.cseq.and_then(|c| c.split_once([' ', '\t'])).is_some_and(|(n, m)| n.parse::<u32>().is_ok() && trim(m) == req.method);
    if !cseq_ok {
        return Some((respond(&req, src, 400, Some("Bad CSeq"), ""), dest));
    }
    match req.content_length.map(|l| l.parse::<usize>()) {
        Some(Ok(l)) if l > req.body_len => return Some((respond(&req, src, 400, Some("Bad Content-Length"), ""), dest)),
        Some(Err(_)) => return Some((respond(&req, src, 400, Some("Bad Content-Length"), ""), dest)),
        _ => {}
    }
    let out = match req.method {
        "INVITE" => invite(routing, &req, src),
        "OPTIONS" => respond(&req, src, 200, None, &format!("Allow: {ALLOW}\r\nAccept: application/sdp\r\n")),
        "CANCEL" => respond(&req, src, 481, None, ""),
        _ => respond(&req, src, 405, None, &format!("Allow: {ALLOW}\r\n")),
    };
    Some((out, dest))
}

/// For a 400 on a message with a broken header: its Vias, From, To, Call-ID and CSeq if readable.
fn parse_vias_only(msg: &[u8]) -> Option<Request<'_>> {
    let end = find(msg, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&msg[..end]).ok()?;
    let mut r = Request::default();
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let value = trim(value);
            match trim(name).to_ascii_lowercase().as_str() {
                "via" | "v" => r.vias.push(value),
                "from" | "f" => r.from = Some(value),
                "to" | "t" => r.to = Some(value),
                "call-id" | "i" => r.call_id = Some(value),
                "cseq" => r.cseq = Some(value),
                _ => {}
            }
        }
    }
    (!r.vias.is_empty()).then_some(r)
}

fn invite(routing: &Routing, req: &Request<'_>, src: SocketAddr) -> Vec<u8> {
    if !routing.is_ready() {
        return respond(req, src, 503, None, "Retry-After: 1\r\n");
    }
    let uri = req.uri;
    if !(uri.starts_with("sip:") || uri.starts_with("sips:") || uri.starts_with("tel:")) {
        return respond(req, src, 416, None, "");
    }
    // Not a number (`sip:alice@...`, too long, ...): decided like an unknown number, 404.
    let to = normalize(uri, &routing.numbering).ok();
    let answer: Answer = routing.read().decide(Direction::Inbound, None, to, None);
    let mut extra = String::with_capacity(160);
    match (&answer.trunk, to) {
        (Some(t), Some(n)) if answer.status == 302 => {
            let count = t.destinations.len();
            for (i, d) in t.destinations.iter().enumerate() {
                // Most preferred first, with descending q-values (RFC 3261 §20.10).
                let q = 1000 - (i * 1000 / count.max(1)).min(999);
                let _ = write!(extra, "Contact: <{}>;q={}.{:03}\r\n", contact_uri(d, n), q / 1000, q % 1000);
            }
        }
        _ => {
            let reason = answer.reason.map_or("not_provisioned", |r| r.as_str());
            let _ = write!(extra, "Reason: SIP;cause={};text=\"{reason}\"\r\nWarning: 399 peerex \"{reason}\"\r\n", answer.status);
        }
    }
    let _ = write!(extra, "X-Peerex-Generation: {}\r\n", answer.generation);
    respond(req, src, answer.status, None, &extra)
}

fn record(method: &'static str, started: Instant) {
    metrics::histogram!("peerex_sip_request_seconds", "method" => method).record(started.elapsed().as_secs_f64());
}

fn method_label(msg: &[u8]) -> &'static str {
    for m in ["INVITE", "ACK", "OPTIONS", "CANCEL"] {
        if msg.starts_with(m.as_bytes()) {
            return m;
        }
    }
    "other"
}

/// Receive buffer asked for on the UDP socket (the kernel caps it at `net.core.rmem_max`): a burst
/// of INVITEs waits in it instead of being dropped and retransmitted half a second later.
pub const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Binds the redirect server's UDP socket with a large receive buffer.
pub fn bind_udp(addr: &str) -> std::io::Result<UdpSocket> {
    use std::net::ToSocketAddrs;
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Serves UDP on `socket` until the process ends. One task: a decision takes microseconds, and a
/// single loop keeps a flood from one source from starving others of anything but its share.
pub async fn serve_udp(routing: Routing, socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port-unreachable from an earlier send surfaces here on some systems.
                tracing::debug!(error = %e, "sip udp receive");
                continue;
            }
        };
        let started = Instant::now();
        if let Some((out, dest)) = handle(&routing, &buf[..n], src) {
            let _ = socket.send_to(&out, dest).await;
        }
        record(method_label(&buf[..n]), started);
    }
}

/// Serves TCP connections from `listener`: messages framed by Content-Length, answered on the
/// connection they came on.
pub async fn serve_tcp(routing: Routing, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, src)) => {
                let routing = routing.clone();
                tokio::spawn(async move { tcp_connection(routing, stream, src).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "sip tcp accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn tcp_connection(routing: Routing, mut stream: TcpStream, src: SocketAddr) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // Take every complete message buffered so far.
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = &buf[..end];
            let len = std::str::from_utf8(head).ok().and_then(|h| {
                h.split("\r\n").find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    matches!(trim(n).to_ascii_lowercase().as_str(), "content-length" | "l").then(|| trim(v).parse::<usize>().ok()).flatten()
                })
            });
            let total = end + 4 + len.unwrap_or(0);
            if total > MAX_MESSAGE {
                return; // a stream we cannot frame any more: close it
            }
            if buf.len() < total {
                break;
            }
            let msg: Vec<u8> = buf.drain(..total).collect();
            let started = Instant::now();
            if let Some((out, _)) = handle(&routing, &msg, src) {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            record(method_label(&msg), started);
        }
        if buf.len() > MAX_MESSAGE {
            return;
        }
        match tokio::time::timeout(std::time::Duration::from_secs(300), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    const SRC: &str = "192.0.2.10:5070";

    fn invite(uri: &str) -> String {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: <{uri}>\r\nFrom: <sip:+15550000001@carrier.example>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn answer(routing: &Routing, msg: &str) -> Option<String> {
        handle(routing, msg.as_bytes(), SRC.parse().unwrap()).map(|(b, _)| String::from_utf8(b).unwrap())
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
        assert_eq!(Some(a), answer(&r, &invite("sip:+15550100000@peerex.example;user=phone")), "retransmission");
    }

    #[test]
    fn methods_get_their_answers() {
        let r = ready();
        let m = |method: &str| invite("sip:+15550100000@x").replace("INVITE", method);
        assert_eq!(answer(&r, &m("ACK")), None);
        assert!(answer(&r, &m("OPTIONS")).unwrap().starts_with("SIP/2.0 200 OK\r\n"));
        assert!(answer(&r, &m("CANCEL")).unwrap().starts_with("SIP/2.0 481 "));
        let bye = answer(&r, &m("BYE")).unwrap();
        assert!(bye.starts_with("SIP/2.0 405 ") && bye.contains("Allow: INVITE, ACK, CANCEL, OPTIONS\r\n"), "{bye}");
    }

    #[test]
    fn malformed_requests_get_400_or_silence() {
        let r = ready();
        let good = invite("sip:+15550100000@x");
        assert_eq!(answer(&r, "garbage"), None);
        assert_eq!(answer(&r, &good.replace("Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport\r\n", "")), None, "no Via: nowhere to answer");
        assert_eq!(answer(&r, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n"), None, "responses are dropped");
        for (bad, why) in [
            (good.replace("Call-ID: a84b4c76e66710@pc33\r\n", ""), "Missing Mandatory Header"),
            (good.replace("CSeq: 314159 INVITE", "CSeq: x INVITE"), "Bad CSeq"),
            (good.replace("Content-Length: 0", "Content-Length: 10"), "Bad Content-Length"),
            (good.replace("INVITE sip:+15550100000@x SIP/2.0", "INVITE sip:+15550100000@x SIP/3.0"), "Bad Request Line"),
            (good.replace("Max-Forwards: 70", "no colon here"), "Malformed Header"),
        ] {
            let a = answer(&r, &bad).unwrap_or_else(|| panic!("{why}: silence"));
            assert!(a.starts_with(&format!("SIP/2.0 400 {why}\r\n")), "{why}: {a}");
        }
        assert!(answer(&r, &invite("http://x")).unwrap().starts_with("SIP/2.0 416 "));
        assert!(answer(&r, &invite("sip:alice@x")).unwrap().starts_with("SIP/2.0 404 "));
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
        assert_eq!(with("SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1"), "192.0.2.10:5080".parse().unwrap());
        assert_eq!(with("SIP/2.0/UDP sbc.example;branch=z9hG4bK1"), "192.0.2.10:5060".parse().unwrap());
        assert_eq!(response_top_via("SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1", src), "SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1;received=192.0.2.10");
        assert_eq!(response_top_via("SIP/2.0/UDP 192.0.2.10:5080;branch=z9hG4bK1", src), "SIP/2.0/UDP 192.0.2.10:5080;branch=z9hG4bK1");
    }

    /// The fuzz target's check on stable: the seed corpus in fuzz/seeds, and many random mutations
    /// of it (bytes flipped, cut, repeated, 64 KB headers, non-UTF-8), never panic, and every answer
    /// is a whole response with a status this server sends. A message without its blank line is
    /// never answered.
    #[test]
    fn parser_never_panics_on_the_fuzz_corpus_and_its_mutations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/sip_message");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
        assert!(seeds.len() >= 5, "fuzz seeds in {dir}");
        let mut c = Snapshot::default();
        let t = domain::trunk::ZoomTrunk::parse("zoom-a", &["sip:a.example"], domain::trunk::NumberingRule::nanp(), time::OffsetDateTime::UNIX_EPOCH).unwrap();
        let id = domain::CustomerId::new();
        c.set_customers(vec![domain::routing::RoutingCustomer { id, trunk: Some("zoom-a".into()), app_removed: false }], vec![t]);
        c.load(&[domain::routing::NumberFacts { e164: domain::PhoneNumber::from_trusted("+15550100001".into()), state: domain::NumberState::Active, customer: Some(id), reason: None }]);
        c.finish_load();
        let r = Routing::from_snapshot(domain::trunk::NumberingRule::nanp(), c);
        let src: SocketAddr = SRC.parse().unwrap();
        let check = |msg: &[u8]| {
            if let Some((a, _)) = handle(&r, msg, src) {
                assert!(is_expected_answer(&a), "{:?} -> {}", String::from_utf8_lossy(msg), String::from_utf8_lossy(&a));
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
        let junk: [&[u8]; 8] = [b"\r\n", b":", b";", b" ", b"\xff\xfe", b"Via: SIP/2.0/UDP [::1", b"CSeq: 99999999999 INVITE", b"Content-Length: -1"];
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

    #[test]
    fn contact_carries_the_number_to_zoom() {
        assert_eq!(contact_uri("sip:zoom-a.example:5061;transport=tls", 15550100000), "sip:+15550100000@zoom-a.example:5061;transport=tls");
        assert_eq!(contact_uri("sips:trunk@zoom-b.example", 15550100000), "sips:+15550100000@zoom-b.example");
    }
}
