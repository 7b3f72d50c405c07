//! The stateless SIP redirect server (RFC 3261 §8.3, §16.11 for statelessness): an INVITE gets 302
//! with the customer's Zoom trunk in Contact, or 404 / 480 / 403 with `Reason` and `Warning`.
//! Nothing is kept per call: a retransmitted INVITE gets the same bytes (the To-tag is derived from
//! Call-ID and the Via branch), ACK is absorbed, CANCEL finds no transaction (481), OPTIONS gets
//! 200 so SBC keep-alives work, other methods 405 with `Allow`. Responses go where the top Via
//! says, with `received`/`rport` (RFC 3581). Anything malformed gets 400 when it can be answered at
//! all, and silence when it cannot (no usable Via); the parser never panics (see fuzz/).

use crate::listen::{write_watched, Gate, Limits, Watch};
use crate::snapshot::Answer;
use crate::Routing;
use domain::routing::{normalize, Direction};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted over TCP (and by [`handle`]); bigger ones are refused.
pub const MAX_MESSAGE: usize = 65_535;
/// Largest datagram read over UDP. RFC 3261 §18.1.1 sends requests over 1300 bytes by TCP, so real
/// ones are far smaller; a bigger datagram is read only this far and dropped as truncated, which
/// keeps a flood of 64 KB datagrams from costing a full copy and scan each (and from crowding out
/// calls).
pub const MAX_UDP_MESSAGE: usize = 16_384;
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
    /// `P-Asserted-Identity`: the calling number a carrier's proxy vouches for (outbound).
    pub asserted: Option<&'a str>,
    /// `X-Peerex-Trunk`: set by the carrier's proxy on a call that came from Zoom over that trunk,
    /// which makes the INVITE an outbound (Zoom to PSTN) question.
    pub peerex_trunk: Option<&'a str>,
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

/// The header names a redirect server reads, long and compact forms (RFC 3261 §7.3.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    Via,
    From,
    To,
    CallId,
    CSeq,
    ContentLength,
    Asserted,
    PeerexTrunk,
    Other,
}

fn header_kind(name: &str) -> Header {
    // By length first: no lowercase copy of every header name.
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    match name.len() {
        1 => match name.as_bytes()[0].to_ascii_lowercase() {
            b'v' => Header::Via,
            b'f' => Header::From,
            b't' => Header::To,
            b'i' => Header::CallId,
            b'l' => Header::ContentLength,
            _ => Header::Other,
        },
        2 if is("to") => Header::To,
        3 if is("via") => Header::Via,
        4 if is("from") => Header::From,
        4 if is("cseq") => Header::CSeq,
        7 if is("call-id") => Header::CallId,
        14 if is("content-length") => Header::ContentLength,
        14 if is("x-peerex-trunk") => Header::PeerexTrunk,
        19 if is("p-asserted-identity") => Header::Asserted,
        _ => Header::Other,
    }
}

/// The lines of a message head, split at CRLF (a lone LF stays inside its line, as before).
fn crlf_lines(head: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let r = rest?;
        let mut from = 0;
        while let Some(i) = memchr::memchr(b'\n', &r.as_bytes()[from..]).map(|i| i + from) {
            if i > 0 && r.as_bytes()[i - 1] == b'\r' {
                rest = Some(&r[i + 1..]);
                return Some(&r[..i - 1]);
            }
            from = i + 1;
        }
        rest = None;
        Some(r)
    })
}

/// Splits a message into its request line and headers. Header names are matched case-insensitively,
/// with RFC 3261's compact forms.
pub fn parse(msg: &[u8]) -> Result<Request<'_>, Malformed> {
    if msg.len() > MAX_MESSAGE {
        return Err(Malformed::Silent);
    }
    let head_end = find(msg, b"\r\n\r\n").ok_or(Malformed::Silent)?;
    // RFC 3261 §7.3.1: header text is UTF-8. Not: 400 when there is a Via to answer to.
    let head = std::str::from_utf8(&msg[..head_end])
        .map_err(|_| Malformed::BadRequest("Header Not UTF-8"))?;
    let mut lines = crlf_lines(head);
    let first = lines.next().unwrap_or_default();
    if first.starts_with("SIP/") {
        return Err(Malformed::Silent); // a response: a stateless redirect server sends none upstream
    }
    let mut r = Request { body_len: msg.len() - head_end - 4, ..Default::default() };
    let mut parts = first.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some("SIP/2.0"), None)
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) && !u.is_empty() =>
        {
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
            return Err(if r.vias.is_empty() {
                Malformed::Silent
            } else {
                Malformed::BadRequest("Malformed Header")
            });
        };
        r.set(header_kind(trim(name)), trim(value));
    }
    if r.vias.is_empty() {
        return Err(Malformed::Silent);
    }
    Ok(r)
}

impl<'a> Request<'a> {
    fn set(&mut self, h: Header, value: &'a str) {
        match h {
            Header::Via => self.vias.push(value),
            Header::From => self.from = Some(value),
            Header::To => self.to = Some(value),
            Header::CallId => self.call_id = Some(value),
            Header::CSeq => self.cseq = Some(value),
            Header::ContentLength => self.content_length = Some(value),
            Header::Asserted => self.asserted = Some(value),
            Header::PeerexTrunk => self.peerex_trunk = Some(value),
            Header::Other => {}
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn has_param(header: &str, name: &str) -> bool {
    header
        .split(';')
        .skip(1)
        .any(|p| trim(p.split('=').next().unwrap_or_default()).eq_ignore_ascii_case(name))
}

/// The top Via, read once per message: where the answer goes and what its Via says.
struct TopVia<'a> {
    /// The first value of the top Via header (a header may hold several, comma-separated).
    first: &'a str,
    /// What followed that value in the same header, echoed as it came.
    rest: &'a str,
    /// `sent-by`, when it could be read.
    host: Option<&'a str>,
    port: Option<u16>,
    rport: bool,
    branch: &'a str,
}

impl<'a> TopVia<'a> {
    fn read(via: &'a str) -> Self {
        let first = via.split(',').next().unwrap_or(via);
        let rest = &via[first.len()..];
        let mut params = first.split(';');
        let (host, port) =
            params.next().and_then(sent_by).map_or((None, None), |(h, p)| (Some(h), p));
        let (mut rport, mut branch) = (false, "");
        for p in params {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = trim(k);
            if k.eq_ignore_ascii_case("rport") {
                rport = true;
            } else if k.eq_ignore_ascii_case("branch") {
                branch = trim(v);
            }
        }
        Self { first, rest, host, port, rport, branch }
    }

    /// Where the response goes (RFC 3261 §18.2.2 with RFC 3581): the source port when `rport`
    /// was asked for, else the Via's port; always the source address (what `received` says).
    fn reply_to(&self, src: SocketAddr) -> SocketAddr {
        if self.rport {
            return src;
        }
        SocketAddr::new(src.ip(), self.port.unwrap_or(5060))
    }

    /// Writes the Via as the response carries it: `received` when the sent-by host is not the
    /// source address, `rport` filled in when it was asked for.
    fn write(&self, out: &mut Vec<u8>, src: SocketAddr) {
        for (i, part) in self.first.split(';').enumerate() {
            if i > 0 {
                let key = trim(part.split('=').next().unwrap_or_default());
                if key.eq_ignore_ascii_case("received") {
                    continue; // written below, with the address it came from
                }
                out.push(b';');
                if key.eq_ignore_ascii_case("rport") {
                    let _ = write!(out, "rport={}", src.port());
                    continue;
                }
            }
            out.extend_from_slice(part.as_bytes());
        }
        let host_differs = self.host.is_none_or(|h| h.parse::<IpAddr>().ok() != Some(src.ip()));
        if host_differs || self.rport {
            let _ = write!(out, ";received={}", src.ip());
        }
        out.extend_from_slice(self.rest.as_bytes());
    }
}

/// `sent-by` (the part of a Via value before its parameters): host and port.
fn sent_by(value: &str) -> Option<(&str, Option<u16>)> {
    let (_proto, hostport) = trim(value).split_once([' ', '\t'])?;
    let hostport = trim(hostport);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return Some((host, after.strip_prefix(':').and_then(|p| p.parse().ok())));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((hostport, None)),
    }
}

/// Where the response to `req` goes (see [`TopVia::reply_to`]).
pub fn reply_to(req: &Request<'_>, src: SocketAddr) -> SocketAddr {
    TopVia::read(req.vias[0]).reply_to(src)
}

/// FNV-1a: a stable tag from Call-ID and branch, so a retransmission gets the same To-tag.
fn write_tag(out: &mut Vec<u8>, call_id: &str, branch: &str) {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in call_id.bytes().chain(branch.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let _ = write!(out, "px{h:016x}");
}

/// `sip:host...` with the E.164 number as its user part: the Contact of a 302.
pub fn contact_uri(destination: &str, e164: u64) -> String {
    let mut out = Vec::with_capacity(destination.len() + 20);
    write_contact_uri(&mut out, destination, e164);
    String::from_utf8(out).unwrap_or_default()
}

fn write_contact_uri(out: &mut Vec<u8>, destination: &str, e164: u64) {
    let (scheme, rest) = destination.split_once(':').unwrap_or(("sip", destination));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let _ = write!(out, "{scheme}:+{e164}@{host}");
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

/// Writes a response to `req` (whose top Via is `via`) into `out`; `extra` adds headers.
fn respond(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    via: &TopVia<'_>,
    src: SocketAddr,
    status: u16,
    reason_phrase: Option<&str>,
    extra: impl FnOnce(&mut Vec<u8>),
) {
    out.clear();
    let _ = write!(out, "SIP/2.0 {status} {}\r\n", reason_phrase.unwrap_or(phrase(status)));
    for (i, v) in req.vias.iter().enumerate() {
        out.extend_from_slice(b"Via: ");
        if i == 0 {
            via.write(out, src);
        } else {
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    put_header(out, "From: ", req.from);
    if let Some(t) = req.to {
        out.extend_from_slice(b"To: ");
        out.extend_from_slice(t.as_bytes());
        if status > 100 && !has_param(t, "tag") {
            out.extend_from_slice(b";tag=");
            write_tag(out, req.call_id.unwrap_or_default(), via.branch);
        }
        out.extend_from_slice(b"\r\n");
    }
    put_header(out, "Call-ID: ", req.call_id);
    put_header(out, "CSeq: ", req.cseq);
    extra(out);
    out.extend_from_slice(b"Server: peerex\r\nContent-Length: 0\r\n\r\n");
}

fn put_header(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn no_extra(_: &mut Vec<u8>) {}

/// Whether `answer` is a whole SIP response with a status this server sends (fuzzing and tests).
pub fn is_expected_answer(answer: &[u8]) -> bool {
    const SENT: [&[u8]; 10] =
        [b"200", b"302", b"400", b"403", b"404", b"405", b"416", b"480", b"481", b"503"];
    answer.starts_with(b"SIP/2.0 ")
        && answer.len() > 12
        && SENT.contains(&&answer[8..11])
        && answer[11] == b' '
        && answer.ends_with(b"\r\nContent-Length: 0\r\n\r\n")
}

/// The answer to one message, or `None` for silence.
pub fn handle(routing: &Routing, msg: &[u8], src: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
    let mut out = Vec::with_capacity(512);
    handle_into(routing, msg, src, &mut out).map(|dest| (out, dest))
}

/// [`handle`] writing the answer into `out` (reused across messages); returns where it goes, or
/// `None` for silence.
pub fn handle_into(
    routing: &Routing,
    msg: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
) -> Option<SocketAddr> {
    if msg.starts_with(b"ACK ") {
        // Absorbed without reading further: nothing ever answers an ACK, not even a 400
        // (RFC 3261 §17.2.1). Half of a redirect server's traffic is ACKs of its 3xx/4xx.
        return None;
    }
    let req = match parse(msg) {
        Ok(r) => r,
        Err(Malformed::Silent) => return None,
        Err(Malformed::BadRequest(why)) => {
            // Answered only when a Via can be read (silence otherwise). Bytes that are not UTF-8
            // are replaced for reading the headers to echo; a copy is made only then.
            let lossy = String::from_utf8_lossy(msg);
            let req = parse_vias_only(lossy.as_bytes())?;
            let via = TopVia::read(req.vias[0]);
            respond(out, &req, &via, src, 400, Some(why), no_extra);
            return Some(via.reply_to(src));
        }
    };
    let via = TopVia::read(req.vias[0]);
    let dest = via.reply_to(src);
    if req.bad_request_line {
        respond(out, &req, &via, src, 400, Some("Bad Request Line"), no_extra);
        return Some(dest);
    }
    if req.method == "ACK" {
        return None;
    }
    if req.from.is_none() || req.to.is_none() || req.call_id.is_none() || req.cseq.is_none() {
        respond(out, &req, &via, src, 400, Some("Missing Mandatory Header"), no_extra);
        return Some(dest);
    }
    let cseq_ok = req
        .cseq
        .and_then(|c| c.split_once([' ', '\t']))
        .is_some_and(|(n, m)| n.parse::<u32>().is_ok() && trim(m) == req.method);
    if !cseq_ok {
        respond(out, &req, &via, src, 400, Some("Bad CSeq"), no_extra);
        return Some(dest);
    }
    let bad_length = match req.content_length.map(|l| l.parse::<usize>()) {
        Some(Ok(l)) => l > req.body_len,
        Some(Err(_)) => true,
        None => false,
    };
    if bad_length {
        respond(out, &req, &via, src, 400, Some("Bad Content-Length"), no_extra);
        return Some(dest);
    }
    let allow = |out: &mut Vec<u8>| {
        let _ = write!(out, "Allow: {ALLOW}\r\n");
    };
    match req.method {
        "INVITE" => invite(out, routing, &req, &via, src),
        "OPTIONS" => respond(out, &req, &via, src, 200, None, |out| {
            allow(out);
            out.extend_from_slice(b"Accept: application/sdp\r\n");
        }),
        "CANCEL" => respond(out, &req, &via, src, 481, None, no_extra),
        _ => respond(out, &req, &via, src, 405, None, allow),
    }
    Some(dest)
}

/// For a 400 on a message with a broken header: its Vias, From, To, Call-ID and CSeq if readable.
fn parse_vias_only(msg: &[u8]) -> Option<Request<'_>> {
    let end = find(msg, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&msg[..end]).ok()?;
    let mut r = Request::default();
    for line in crlf_lines(head).skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            match header_kind(trim(name)) {
                Header::ContentLength => {}
                h => r.set(h, trim(value)),
            }
        }
    }
    (!r.vias.is_empty()).then_some(r)
}

fn invite(
    out: &mut Vec<u8>,
    routing: &Routing,
    req: &Request<'_>,
    via: &TopVia<'_>,
    src: SocketAddr,
) {
    if !routing.is_ready() {
        return respond(out, req, via, src, 503, None, |out| {
            out.extend_from_slice(b"Retry-After: 1\r\n")
        });
    }
    let uri = req.uri;
    if !(uri.starts_with("sip:") || uri.starts_with("sips:") || uri.starts_with("tel:")) {
        return respond(out, req, via, src, 416, None, no_extra);
    }
    if let Some(trunk) = req.peerex_trunk {
        if !routing.trusts(src.ip()) {
            // Only the carrier's own proxy may say which Zoom trunk a call came over: believed from
            // anyone else, a caller could name a customer's number and trunk and have the call let
            // out to a gateway of its choosing (toll fraud). Refused, never decided.
            metrics::counter!("peerex_sip_untrusted_total").increment(1);
            return respond(out, req, via, src, 403, None, |out| {
                out.extend_from_slice(b"Reason: SIP;cause=403;text=\"untrusted_source\"\r\nWarning: 399 peerex \"untrusted_source: X-Peerex-Trunk from an address not in trusted_proxies\"\r\n");
            });
        }
        return outbound(out, routing, req, via, src, trunk);
    }
    // Not a number (`sip:alice@...`, too long, ...): decided like an unknown number, 404.
    let to = normalize(uri, &routing.numbering).ok();
    let answer: Answer = routing.read().decide(Direction::Inbound, None, to, None);
    respond(out, req, via, src, answer.status, None, |out| {
        match (&answer.trunk, to) {
            (Some(t), Some(n)) if answer.status == 302 => {
                let count = t.destinations.len();
                for (i, d) in t.destinations.iter().enumerate() {
                    // Most preferred first, with descending q-values (RFC 3261 §20.10).
                    let q = 1000 - (i * 1000 / count.max(1)).min(999);
                    out.extend_from_slice(b"Contact: <");
                    write_contact_uri(out, d, n);
                    let _ = write!(out, ">;q={}.{:03}\r\n", q / 1000, q % 1000);
                }
            }
            _ => {
                let reason = answer.reason.map_or("not_provisioned", |r| r.as_str());
                let _ = write!(out, "Reason: SIP;cause={};text=\"{reason}\"\r\nWarning: 399 peerex \"{reason}\"\r\n", answer.status);
            }
        }
        let _ = write!(out, "X-Peerex-Generation: {}\r\n", answer.generation);
    });
}

/// The URI in a From / P-Asserted-Identity value: `"Name" <sip:+1...@host>;tag=x` → `sip:+1...@host`.
fn header_uri(value: &str) -> &str {
    match value.split_once('<') {
        Some((_, rest)) => rest.split_once('>').map_or(rest, |(uri, _)| uri),
        None => value.split(';').next().unwrap_or(value),
    }
}

/// An outbound call (Zoom to PSTN) that came over Zoom trunk `trunk`: allowed when the calling
/// number (P-Asserted-Identity, else From) is an active number of the customer on that trunk. Allowed
/// gets 302 back to the Request-URI as dialled (the proxy carries on with its own routing);
/// refused gets 403 with the reason. Fails closed (503) on a copy not checked against the database
/// lately, as the lookup API does.
fn outbound(
    out: &mut Vec<u8>,
    routing: &Routing,
    req: &Request<'_>,
    via: &TopVia<'_>,
    src: SocketAddr,
    trunk: &str,
) {
    if !routing.is_fresh() {
        return respond(out, req, via, src, 503, None, |out| {
            out.extend_from_slice(b"Retry-After: 1\r\n")
        });
    }
    let trunk = trim(trunk);
    let answer = {
        let s = routing.read();
        let rule = s.trunk(trunk).map(|t| t.numbering.clone());
        let rule = rule.as_ref().unwrap_or(&routing.numbering);
        let from = req.asserted.or(req.from).and_then(|v| normalize(header_uri(v), rule).ok());
        let to = normalize(req.uri, rule).ok();
        s.decide(Direction::Outbound, from, to, Some(trunk))
    };
    let status = if answer.status == 200 { 302 } else { answer.status };
    respond(out, req, via, src, status, None, |out| {
        if status == 302 {
            let _ = write!(out, "Contact: <{}>\r\n", req.uri);
        } else {
            let reason = answer.reason.map_or("not_customer_number", |r| r.as_str());
            let _ = write!(out, "Reason: SIP;cause={status};text=\"{reason}\"\r\nWarning: 399 peerex \"{reason}\"\r\n");
        }
        let _ = write!(out, "X-Peerex-Generation: {}\r\n", answer.generation);
    });
}

/// The request-time histogram of each method, looked up once (not per message).
struct Timers([metrics::Histogram; 5]);

impl Timers {
    const METHODS: [&'static str; 5] = ["INVITE", "ACK", "OPTIONS", "CANCEL", "other"];

    fn new() -> Self {
        Self(
            Self::METHODS.map(|m| metrics::histogram!("peerex_sip_request_seconds", "method" => m)),
        )
    }

    fn record(&self, msg: &[u8], started: Instant) {
        let i = Self::METHODS[..4].iter().position(|m| msg.starts_with(m.as_bytes())).unwrap_or(4);
        self.0[i].record(started.elapsed().as_secs_f64());
    }
}

/// Receive buffer asked for on the UDP socket (the kernel caps it at `net.core.rmem_max`): a burst
/// of INVITEs waits in it instead of being dropped and retransmitted half a second later.
pub const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Binds the redirect server's UDP socket (blocking, for [`spawn_udp`]) with a large receive buffer.
pub fn bind_udp(addr: &str) -> std::io::Result<std::net::UdpSocket> {
    use std::net::ToSocketAddrs;
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Serves UDP on `socket` from a thread of its own until the process ends. A decision takes
/// microseconds, so one thread blocking in the kernel costs less per call than an async runtime's
/// readiness round trips, and call traffic never waits behind anything else in the process.
/// Metrics must be installed before this is called (the timers are looked up once).
/// `per_source` caps the datagrams read from one address in a second (0: no cap; see [`SourceLimit`]).
pub fn spawn_udp(
    routing: Routing,
    socket: std::net::UdpSocket,
    per_source: u32,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    socket.set_nonblocking(false)?;
    std::thread::Builder::new()
        .name("peerex-sip-udp".into())
        .spawn(move || udp_loop(&routing, &socket, per_source))
}

/// At most `per_second` datagrams a second are read from one address; the rest are dropped unread.
/// Why: when datagrams come faster than they are answered, the kernel drops whatever no longer fits
/// in the socket buffer, calls included. Dropping a flood unread costs next to nothing, so one
/// address flooding (OPTIONS storms, scanners) cannot crowd out everyone else. Set it above what
/// the busiest SBC sends (two datagrams a call: INVITE and ACK).
pub struct SourceLimit {
    per_second: u32,
    window: Option<Instant>,
    counts: std::collections::HashMap<IpAddr, u32>,
}

impl SourceLimit {
    pub fn new(per_second: u32) -> Self {
        Self { per_second, window: None, counts: Default::default() }
    }

    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        if self.window.is_none_or(|w| now.duration_since(w) >= std::time::Duration::from_secs(1)) {
            self.window = Some(now);
            self.counts.clear();
        }
        let c = self.counts.entry(ip).or_insert(0);
        *c = c.saturating_add(1);
        *c <= self.per_second
    }
}

/// A receive that failed. Interrupted, or an ICMP error from an earlier send that some systems
/// report on the next receive: retried at once. Anything else (out of memory and the like) pauses
/// the loop briefly rather than letting it spin.
fn receive_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(e.kind(), Interrupted | ConnectionRefused | ConnectionReset) {
        tracing::debug!(error = %e, "sip udp receive");
    } else {
        tracing::warn!(error = %e, "sip udp receive failed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(target_os = "linux")]
fn udp_loop(routing: &Routing, socket: &std::net::UdpSocket, per_source: u32) {
    use std::os::fd::AsRawFd;
    let timers = Timers::new();
    let shed_total = metrics::counter!("peerex_sip_shed_total");
    let mut limit = SourceLimit::new(per_source);
    let mut batch = mmsg::Batch::new();
    let fd = socket.as_raw_fd();
    loop {
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e) => {
                receive_failed(&e);
                continue;
            }
        };
        let now = Instant::now();
        let shed = batch.answer(
            n,
            |ip| limit.admit(ip, now),
            |msg, src, out| {
                let started = Instant::now();
                // No source: truncated (bigger than MAX_UDP_MESSAGE) or not IP; silence.
                let dest = src.and_then(|src| handle_into(routing, msg, src, out));
                timers.record(msg, started);
                dest
            },
        );
        if shed > 0 {
            shed_total.increment(shed as u64);
        }
        batch.send(fd);
    }
}

#[cfg(not(target_os = "linux"))]
fn udp_loop(routing: &Routing, socket: &std::net::UdpSocket, per_source: u32) {
    let timers = Timers::new();
    let mut limit = SourceLimit::new(per_source);
    let mut buf = vec![0u8; MAX_UDP_MESSAGE + 1];
    let mut out = Vec::with_capacity(1024);
    loop {
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                receive_failed(&e);
                continue;
            }
        };
        if n > MAX_UDP_MESSAGE || !limit.admit(src.ip(), Instant::now()) {
            continue; // truncated, or over the source's limit: silence, as on Linux
        }
        let started = Instant::now();
        if let Some(dest) = handle_into(routing, &buf[..n], src, &mut out) {
            let _ = socket.send_to(&out, dest);
        }
        timers.record(&buf[..n], started);
    }
}

/// Batched UDP with `recvmmsg`/`sendmmsg`: under load one system call takes every datagram waiting
/// (up to [`mmsg::BATCH`]) and one sends every answer, instead of one call each.
#[cfg(target_os = "linux")]
mod mmsg {
    use super::MAX_UDP_MESSAGE;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::RawFd;

    pub const BATCH: usize = 32;

    /// The receive headers point into `bufs`, `names` and `iov`, heap buffers that never grow or
    /// move once made, so those pointers are set once and stay valid however the `Batch` moves.
    /// The send headers point into `dests` and `send_iov` (likewise fixed) and at the answers,
    /// which may grow while written, so those are set again before each send.
    pub struct Batch {
        bufs: Vec<Vec<u8>>,
        names: Vec<libc::sockaddr_storage>,
        iov: Vec<libc::iovec>,
        hdrs: Vec<libc::mmsghdr>,
        /// Answers to send, with where each goes.
        answers: Vec<Vec<u8>>,
        dests: Vec<socket2::SockAddr>,
        send_iov: Vec<libc::iovec>,
        send_hdrs: Vec<libc::mmsghdr>,
        queued: usize,
    }

    impl Batch {
        pub fn new() -> Self {
            let mut b = Self {
                // One byte more than the largest message: a datagram that fills it was truncated.
                bufs: (0..BATCH).map(|_| vec![0u8; MAX_UDP_MESSAGE + 1]).collect(),
                // SAFETY: C structs (see `zeroed`).
                names: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
                iov: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
                hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
                answers: (0..BATCH).map(|_| Vec::with_capacity(1024)).collect(),
                dests: (0..BATCH)
                    .map(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)).into())
                    .collect(),
                send_iov: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
                send_hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
                queued: 0,
            };
            for i in 0..BATCH {
                b.iov[i] = libc::iovec {
                    iov_base: b.bufs[i].as_mut_ptr().cast(),
                    iov_len: b.bufs[i].len(),
                };
                let h = &mut b.hdrs[i].msg_hdr;
                h.msg_name = (&raw mut b.names[i]).cast();
                h.msg_iov = &raw mut b.iov[i];
                h.msg_iovlen = 1;
                let h = &mut b.send_hdrs[i].msg_hdr;
                h.msg_iov = &raw mut b.send_iov[i];
                h.msg_iovlen = 1;
            }
            b
        }

        /// Blocks until at least one datagram is there, then takes up to BATCH without waiting more.
        pub fn recv(&mut self, fd: RawFd) -> std::io::Result<usize> {
            for h in &mut self.hdrs {
                // What the kernel wrote last time.
                h.msg_len = 0;
                h.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_flags = 0;
            }
            // SAFETY: every header points at a live buffer and address of this struct, sized as
            // declared; the kernel writes at most that much.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(n as usize)
        }

        /// Calls `f` with each of the `n` datagrams of the last [`Batch::recv`], its source (`None`
        /// when it was truncated) and a buffer for the answer; queues the answer when `f` says where
        /// it goes.
        /// `admit` says whether a datagram from an address is read at all (see [`SourceLimit`]).
        /// Returns how many were not.
        pub fn answer(
            &mut self,
            n: usize,
            mut admit: impl FnMut(std::net::IpAddr) -> bool,
            mut f: impl FnMut(&[u8], Option<SocketAddr>, &mut Vec<u8>) -> Option<SocketAddr>,
        ) -> usize {
            let mut shed = 0;
            for i in 0..n {
                let h = &self.hdrs[i];
                let len = (h.msg_len as usize).min(self.bufs[i].len());
                let truncated = len > MAX_UDP_MESSAGE || h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                let src = if truncated { None } else { socket_addr(&self.names[i]) };
                if src.is_some_and(|a| !admit(a.ip())) {
                    shed += 1;
                    continue;
                }
                if let Some(dest) = f(&self.bufs[i][..len], src, &mut self.answers[self.queued]) {
                    self.dests[self.queued] = dest.into();
                    self.queued += 1;
                }
            }
            shed
        }

        /// Sends every queued answer; one that the kernel refuses is dropped (UDP: the peer retransmits).
        pub fn send(&mut self, fd: RawFd) {
            for i in 0..self.queued {
                // An answer's buffer may have grown (moved) while it was written: point at it now.
                self.send_iov[i] = libc::iovec {
                    iov_base: self.answers[i].as_mut_ptr().cast(),
                    iov_len: self.answers[i].len(),
                };
                self.send_hdrs[i].msg_hdr.msg_name = self.dests[i].as_ptr() as *mut libc::c_void;
                self.send_hdrs[i].msg_hdr.msg_namelen = self.dests[i].len();
            }
            let mut from = 0;
            while from < self.queued {
                // SAFETY: headers point at the answers and addresses above, which outlive the call.
                let sent = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.send_hdrs[from..].as_mut_ptr(),
                        (self.queued - from) as libc::c_uint,
                        0,
                    )
                };
                if sent <= 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    tracing::debug!(error = %e, "sip udp send");
                    from += 1; // skip the one that failed
                } else {
                    from += sent as usize;
                }
            }
            self.queued = 0;
        }
    }

    /// # Safety
    /// Only for types valid as all zeros: the C structs here (sockaddr_storage, iovec, mmsghdr) and
    /// arrays of them, which hold integers and pointers only.
    unsafe fn zeroed<T>() -> T {
        unsafe { std::mem::zeroed() }
    }

    fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large and aligned enough.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                Some(
                    SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                        u16::from_be(a.sin_port),
                    )
                    .into(),
                )
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                Some(
                    SocketAddrV6::new(
                        Ipv6Addr::from(a.sin6_addr.s6_addr),
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )
                    .into(),
                )
            }
            _ => None,
        }
    }
}

/// For tools and tests: waits up to `timeout` until something on 127.0.0.1:`port` answers an
/// OPTIONS with 200 (this redirect server, or a Kamailio in front of it).
pub fn answers_options(port: u16, timeout: std::time::Duration) -> bool {
    let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") else { return false };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(100)));
    let Ok(me) = s.local_addr() else { return false };
    let t0 = Instant::now();
    let mut buf = [0u8; 2048];
    while t0.elapsed() < timeout {
        let msg = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ping-{n}\r\nFrom: <sip:ping@{me}>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: ping-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            n = t0.elapsed().as_micros()
        );
        let _ = s.send_to(msg.as_bytes(), ("127.0.0.1", port));
        if let Ok(n) = s.recv(&mut buf) {
            if buf[..n].starts_with(b"SIP/2.0 200") {
                return true;
            }
        }
    }
    false
}

/// Serves TCP connections from `listener`: messages framed by Content-Length, answered on the
/// connection they came on. The listener's bounds are [`Limits::default`].
pub async fn serve_tcp(routing: Routing, listener: TcpListener) {
    serve_tcp_with(routing, listener, Limits::default()).await
}

/// [`serve_tcp`] with the listener's bounds: connections in total and per address (trusted proxies
/// are never turned away by the total), how long a message may take to arrive, and how long a
/// connection may idle.
pub async fn serve_tcp_with(routing: Routing, listener: TcpListener, limits: Limits) {
    let timers = std::sync::Arc::new(Timers::new());
    let gate = Gate::new(limits, routing.trusted_proxies().clone(), "sip_tcp");
    loop {
        match listener.accept().await {
            // Over the bounds: closed at once (SIP has no answer without a request to answer).
            Ok((stream, src)) => match gate.admit(src.ip()) {
                Some(permit) => {
                    let routing = routing.clone();
                    let timers = timers.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        tcp_connection(routing, stream, src, &timers, limits).await
                    });
                }
                None => drop(stream),
            },
            Err(e) => {
                tracing::warn!(error = %e, "sip tcp accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn tcp_connection(
    routing: Routing,
    mut stream: TcpStream,
    src: SocketAddr,
    timers: &Timers,
    limits: Limits,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut out = Vec::with_capacity(1024);
    let mut watch = Watch::new(limits);
    let tick = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(tick);
    loop {
        // Take every complete message buffered so far.
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            let len = crlf_lines(&head).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                (header_kind(trim(n)) == Header::ContentLength)
                    .then(|| trim(v).parse::<usize>().ok())
                    .flatten()
            });
            let total = end + 4 + len.unwrap_or(0);
            if total > MAX_MESSAGE {
                return; // a stream we cannot frame any more: close it
            }
            if buf.len() < total {
                break;
            }
            let msg: Vec<u8> = buf.drain(..total).collect();
            // Any whole message counts (an ACK, a keep-alive), answered or not.
            watch.progress = true;
            let started = Instant::now();
            if handle_into(&routing, &msg, src, &mut out).is_some()
                && !write_watched(&mut stream, &out, &mut watch, &mut tick).await
            {
                return;
            }
            timers.record(&msg, started);
        }
        if buf.len() > MAX_MESSAGE {
            return;
        }
        tokio::select! {
            biased;
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            () = &mut tick => {
                // A message too slow to arrive, a connection that never sent one, or one idle too
                // long: closed.
                if watch.tick(!buf.is_empty()) {
                    return;
                }
                tick.as_mut().reset(tokio::time::Instant::now() + limits.header_timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

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
        Routing::from_snapshot(domain::trunk::NumberingRule::nanp(), c)
            .with_trusted_proxies(trusted)
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
        let bye = answer(&r, &m("BYE")).unwrap();
        assert!(
            bye.starts_with("SIP/2.0 405 ")
                && bye.contains("Allow: INVITE, ACK, CANCEL, OPTIONS\r\n"),
            "{bye}"
        );
    }

    #[test]
    fn malformed_requests_get_400_or_silence() {
        let r = ready();
        let good = invite("sip:+15550100000@x");
        assert_eq!(answer(&r, "garbage"), None);
        assert_eq!(
            answer(
                &r,
                &good.replace(
                    "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds;rport\r\n",
                    ""
                )
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
            (good.replace("Call-ID: a84b4c76e66710@pc33\r\n", ""), "Missing Mandatory Header"),
            (good.replace("CSeq: 314159 INVITE", "CSeq: x INVITE"), "Bad CSeq"),
            (good.replace("Content-Length: 0", "Content-Length: 10"), "Bad Content-Length"),
            (
                good.replace(
                    "INVITE sip:+15550100000@x SIP/2.0",
                    "INVITE sip:+15550100000@x SIP/3.0",
                ),
                "Bad Request Line",
            ),
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
        assert_eq!(
            with("SIP/2.0/UDP sbc.example:5080;branch=z9hG4bK1"),
            "192.0.2.10:5080".parse().unwrap()
        );
        assert_eq!(
            with("SIP/2.0/UDP sbc.example;branch=z9hG4bK1"),
            "192.0.2.10:5060".parse().unwrap()
        );
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
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(seeds.len() >= 5, "fuzz seeds in {dir}");
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
                assert!(
                    find(msg, b"\r\n\r\n").is_some(),
                    "answered a message without its blank line"
                );
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
            let call = a
                .split("Call-ID: ")
                .nth(1)
                .and_then(|r| r.split("\r\n").next())
                .unwrap()
                .to_owned();
            assert!(seen.insert(call.clone()), "{call} answered twice");
        }
        client.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
        assert!(
            client.recv(&mut buf).is_err(),
            "nothing more: no answer to the garbage or the ACK"
        );
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
        assert!(
            l.admit(a, t0 + std::time::Duration::from_secs(1)),
            "a new second, a new allowance"
        );
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
}
