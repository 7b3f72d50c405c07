//! The reply: what the redirect server answers each request (method checks, then the routing
//! decision for an INVITE) and how the answer is written, byte for byte the same for a
//! retransmission.

use super::message::{has_param, parse, parse_vias_only, trim, Malformed, Request, TopVia};
use crate::snapshot::Answer;
use crate::Routing;
use domain::routing::{normalize, Direction};
use std::io::Write as _;
use std::net::SocketAddr;

const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS";

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
