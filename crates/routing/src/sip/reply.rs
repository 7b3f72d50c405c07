//! The reply: what the redirect server answers each request (method checks, then the routing
//! decision for an INVITE) and how the answer is written, byte for byte the same for a
//! retransmission.

use super::message::{name_addr, parse_mended, trim, Request, TopVia, Values};
use crate::snapshot::Answer;
use crate::Routing;
use domain::routing::{normalize, Direction};
use std::io::Write as _;
use std::net::SocketAddr;

const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";
/// The bodies a request may carry: SDP, and SIP-I/SIP-T's multipart with ISUP (RFC 3204). None is
/// read; another type is refused with 415 as RFC 3261 §8.2.3 requires of a UAS.
const ACCEPT: &str = "application/sdp, multipart/mixed, multipart/alternative, application/isup";
/// The option tags `Require` may name (RFC 3261 §8.2.2.3): those this server honours by what it
/// never does (a redirect server sends no provisional response to make reliable, and no 2xx that
/// would start a session timer).
const SUPPORTED: [&str; 2] = ["100rel", "timer"];
/// RFC 3261's methods and the extensions registered since: known, so 405 rather than 501.
const KNOWN_METHODS: [&str; 10] = [
    "BYE",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// FNV-1a: a stable tag from Call-ID and branch, so a retransmission gets the same To-tag.
fn write_tag(out: &mut Vec<u8>, call_id: &str, branch: &str) {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in call_id.bytes().chain(branch.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    out.extend_from_slice(b"px");
    for shift in (0..16).rev() {
        out.push(b"0123456789abcdef"[(h >> (shift * 4)) as usize & 0xf]);
    }
}

/// Writes a number. The answer is written by hand rather than with `write!`: formatting was a
/// tenth of the time an INVITE took.
fn put_number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `Reason` and `Warning` saying why a call is refused.
fn put_reason(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"Reason: SIP;cause=");
    put_number(out, status);
    out.extend_from_slice(b";text=\"");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\"\r\nWarning: 399 peerex \"");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\"\r\n");
}

/// The snapshot's generation, and `X-Peerex-Stale: <seconds>` when it has not been checked
/// against the database for longer than `stale_after_seconds` (inbound calls answered from the
/// last-known-good copy while the database cannot be reached).
fn put_generation(out: &mut Vec<u8>, generation: i64, stale_seconds: Option<i64>) {
    out.extend_from_slice(b"X-Peerex-Generation: ");
    put_number(out, generation);
    out.extend_from_slice(b"\r\n");
    if let Some(s) = stale_seconds {
        out.extend_from_slice(b"X-Peerex-Stale: ");
        put_number(out, s);
        out.extend_from_slice(b"\r\n");
    }
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
    out.extend_from_slice(scheme.as_bytes());
    out.extend_from_slice(b":+");
    put_number(out, e164);
    out.push(b'@');
    out.extend_from_slice(host.as_bytes());
}

fn phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
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
    out.extend_from_slice(b"SIP/2.0 ");
    put_number(out, status);
    out.push(b' ');
    out.extend_from_slice(reason_phrase.unwrap_or(phrase(status)).as_bytes());
    out.extend_from_slice(b"\r\n");
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
        if status > 100 && !req.to_tagged {
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
    const SENT: [&[u8]; 14] = [
        b"200", b"302", b"400", b"403", b"404", b"405", b"415", b"416", b"420", b"480", b"481",
        b"501", b"503", b"505",
    ];
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
        // (RFC 3261 §17.2.1). Half of a redirect server's traffic is ACKs of its 3xx/4xx. (Over
        // UDP on Linux the kernel drops these before the socket: `udp::drop_acks` drops exactly
        // what this test matches.)
        return None;
    }
    // Only a message with folded lines or bytes that are not UTF-8 is copied into this.
    let mut mended = Vec::new();
    // Not answerable (no Via, a response, no blank line): silence.
    let Ok(req) = parse_mended(msg, &mut mended) else { return None };
    if req.method == "ACK" {
        return None;
    }
    let via = TopVia::of(&req);
    let dest = via.reply_to(src);
    if let Err(refusal) = precheck(&req) {
        refuse(out, &req, &via, src, refusal);
        return Some(dest);
    }
    match req.method {
        "INVITE" => invite(out, routing, &req, &via, src),
        "OPTIONS" => respond(out, &req, &via, src, 200, None, |out| {
            let _ = write!(out, "Allow: {ALLOW}\r\nAccept: {ACCEPT}\r\n");
        }),
        _ => respond(out, &req, &via, src, 481, None, no_extra), // CANCEL: no transaction here
    }
    Some(dest)
}

fn refuse(out: &mut Vec<u8>, req: &Request<'_>, via: &TopVia<'_>, src: SocketAddr, why: Refusal) {
    match why {
        Refusal::BadRequest(why) => respond(out, req, via, src, 400, Some(why), no_extra),
        Refusal::Version => respond(out, req, via, src, 505, None, no_extra),
        Refusal::Method(status) => respond(out, req, via, src, status, None, |out| {
            let _ = write!(out, "Allow: {ALLOW}\r\n");
        }),
        Refusal::Scheme => respond(out, req, via, src, 416, None, no_extra),
        Refusal::Extension => respond(out, req, via, src, 420, None, |out| {
            out.extend_from_slice(b"Unsupported: ");
            for (i, option) in unsupported(req).enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(option.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }),
        Refusal::MediaType => respond(out, req, via, src, 415, None, |out| {
            let _ = write!(out, "Accept: {ACCEPT}\r\n");
        }),
    }
}

/// Why a request is refused before it is acted on.
enum Refusal {
    /// 400: it breaks RFC 3261's grammar or rules; the phrase says how.
    BadRequest(&'static str),
    /// 505: another SIP version.
    Version,
    /// 501 (a method nobody registered) or 405 (a method this server does not serve), with Allow.
    Method(u16),
    /// 416: a Request-URI scheme other than sip, sips or tel.
    Scheme,
    /// 420: `Require` names an option this server does not support, listed in `Unsupported`.
    Extension,
    /// 415: a body of a type this server does not accept, Accept saying which it does.
    MediaType,
}

/// The checks a UAS makes before acting on a request, in RFC 3261 §8.2's order: the message (400,
/// 505), the method (§8.2.1: 501 or 405), the Request-URI (§8.2.2.1: 416), extensions (§8.2.2.3:
/// 420), the body (§8.2.3: 415). A CSeq naming another method is judged after the method, so an
/// unknown method gets 501 whatever its CSeq says (RFC 4475 §3.1.2.18).
fn precheck(req: &Request<'_>) -> Result<(), Refusal> {
    if let Some(why) = req.problem {
        return Err(Refusal::BadRequest(why));
    }
    if req.other_version {
        return Err(Refusal::Version);
    }
    let method = req.method;
    let ours = matches!(method, "INVITE" | "OPTIONS" | "CANCEL");
    if !ours && !KNOWN_METHODS.contains(&method) {
        return Err(Refusal::Method(501));
    }
    if req.cseq_method.is_none_or(|m| m != method) {
        return Err(Refusal::BadRequest("Bad CSeq"));
    }
    if !ours {
        return Err(Refusal::Method(405));
    }
    let scheme = req.uri.split_once(':').map_or("", |(s, _)| s);
    if !["sip", "sips", "tel"].iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(Refusal::Scheme);
    }
    if method == "CANCEL" {
        return Ok(()); // Require does not apply to CANCEL (RFC 3261 §8.2.2.3), nor does a body
    }
    if unsupported(req).next().is_some() {
        return Err(Refusal::Extension);
    }
    if req.body() > 0 {
        let media = req.content_type.map_or("", |t| trim(t.split(';').next().unwrap_or_default()));
        let accepted = media.is_empty()
            || ["application/sdp", "application/isup"]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(media))
            || media.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("multipart/"));
        if !accepted {
            return Err(Refusal::MediaType);
        }
    }
    Ok(())
}

/// The options `Require` names that this server does not support, as written.
fn unsupported<'a, 'r>(req: &'r Request<'a>) -> impl Iterator<Item = &'a str> + 'r {
    req.require
        .iter()
        .flat_map(|v| v.split(','))
        .map(trim)
        .filter(|o| !o.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(o)))
}

fn invite(
    out: &mut Vec<u8>,
    routing: &Routing,
    req: &Request<'_>,
    via: &TopVia<'_>,
    src: SocketAddr,
) {
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
    if !routing.is_ready() {
        return respond(out, req, via, src, 503, None, |out| {
            out.extend_from_slice(b"Retry-After: 1\r\n")
        });
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
                    let digit = |d: usize| b'0' + (d % 10) as u8;
                    out.extend_from_slice(b">;q=");
                    out.extend_from_slice(&[digit(q / 1000), b'.', digit(q / 100), digit(q / 10)]);
                    out.extend_from_slice(&[digit(q), b'\r', b'\n']);
                }
            }
            _ => {
                let reason = answer.reason.map_or("not_provisioned", |r| r.as_str());
                put_reason(out, answer.status, reason);
            }
        }
        put_generation(out, answer.generation, routing.stale_seconds());
    });
}

/// The URI in a From / P-Asserted-Identity value: `"Name" <sip:+1...@host>;tag=x` → `sip:+1...@host`.
fn header_uri(value: &str) -> &str {
    match value.split_once('<') {
        Some((_, rest)) => rest.split_once('>').map_or(rest, |(uri, _)| uri),
        None => value.split(';').next().unwrap_or(value),
    }
}

/// The URIs of P-Asserted-Identity's values, in order, over every header and comma.
fn asserted_identities<'a>(values: &'a Values<'a>) -> impl Iterator<Item = &'a str> + 'a {
    values.iter().flat_map(|v| {
        let mut rest = Some(v);
        std::iter::from_fn(move || {
            let n = name_addr(rest?)?;
            rest = n.rest;
            Some(n.uri)
        })
    })
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
    let trunk = trim(trunk);
    let answer = {
        let s = routing.read();
        let named = s.trunk(trunk);
        let rule = named.as_ref().map_or(&*routing.numbering, |t| &t.numbering);
        if routing.emergency_call(req.uri, rule).is_some() {
            Some(Answer::emergency(s.generation))
        } else if !routing.is_fresh() {
            None
        } else {
            let from = if req.asserted.is_empty() {
                req.from.and_then(|v| normalize(header_uri(v), rule).ok())
            } else {
                // RFC 3325 allows a SIP and a tel identity, in one header or two: the first that is a
                // number is the caller's.
                asserted_identities(&req.asserted).find_map(|uri| normalize(uri, rule).ok())
            };
            let to = normalize(req.uri, rule).ok();
            Some(s.decide(Direction::Outbound, from, to, Some(trunk)))
        }
    };
    let Some(answer) = answer else {
        return respond(out, req, via, src, 503, None, |out| {
            out.extend_from_slice(b"Retry-After: 1\r\n")
        });
    };
    let status = if answer.status == 200 { 302 } else { answer.status };
    respond(out, req, via, src, status, None, |out| {
        if status == 302 {
            out.extend_from_slice(b"Contact: <");
            out.extend_from_slice(req.uri.as_bytes());
            out.extend_from_slice(b">\r\n");
            if answer.emergency {
                out.extend_from_slice(b"X-Peerex-Emergency: yes\r\n");
            }
        } else {
            let reason = answer.reason.map_or("not_customer_number", |r| r.as_str());
            put_reason(out, status, reason);
        }
        put_generation(out, answer.generation, routing.stale_seconds());
    });
}
