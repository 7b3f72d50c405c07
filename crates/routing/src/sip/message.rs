//! The message: a request split into the few headers a redirect server reads, and its top Via
//! (where the answer goes and what the answer's Via says). Slices borrow the message; nothing is
//! copied on the way.

use super::MAX_MESSAGE;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

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

pub(super) fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// The header names a redirect server reads, long and compact forms (RFC 3261 §7.3.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Header {
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

pub(super) fn header_kind(name: &str) -> Header {
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
pub(super) fn crlf_lines(head: &str) -> impl Iterator<Item = &str> {
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
    pub(super) fn set(&mut self, h: Header, value: &'a str) {
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

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

pub(super) fn has_param(header: &str, name: &str) -> bool {
    header
        .split(';')
        .skip(1)
        .any(|p| trim(p.split('=').next().unwrap_or_default()).eq_ignore_ascii_case(name))
}

/// The top Via, read once per message: where the answer goes and what its Via says.
pub(super) struct TopVia<'a> {
    /// The first value of the top Via header (a header may hold several, comma-separated).
    first: &'a str,
    /// What followed that value in the same header, echoed as it came.
    rest: &'a str,
    /// `sent-by`, when it could be read.
    host: Option<&'a str>,
    port: Option<u16>,
    rport: bool,
    pub(super) branch: &'a str,
}

impl<'a> TopVia<'a> {
    pub(super) fn read(via: &'a str) -> Self {
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
    pub(super) fn reply_to(&self, src: SocketAddr) -> SocketAddr {
        if self.rport {
            return src;
        }
        SocketAddr::new(src.ip(), self.port.unwrap_or(5060))
    }

    /// Writes the Via as the response carries it: `received` when the sent-by host is not the
    /// source address, `rport` filled in when it was asked for.
    pub(super) fn write(&self, out: &mut Vec<u8>, src: SocketAddr) {
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

/// For a 400 on a message with a broken header: its Vias, From, To, Call-ID and CSeq if readable.
pub(super) fn parse_vias_only(msg: &[u8]) -> Option<Request<'_>> {
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
