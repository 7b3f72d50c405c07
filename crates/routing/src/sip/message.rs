//! The message: a request split into the few headers a redirect server reads, checked against
//! RFC 3261's grammar where a wrong reading would matter (framing, single-value headers, Via,
//! From and To, the request line), and its top Via (where the answer goes and what the answer's
//! Via says). Slices borrow the message: a copy is made only of a message with folded header lines
//! or bytes that are not UTF-8.
//!
//! This is the redirect server's hot path, written by hand for speed (every request is read here):
//! one pass over the header lines, byte classes looked up in a table, each header's value read once
//! (the top Via's reading is kept for the answer), no allocation for an ordinary request (repeated
//! headers are held inline up to [`Values`]' capacity).

use super::MAX_MESSAGE;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

/// A request as far as a redirect server needs it. Slices borrow the message (or its mended copy,
/// see [`parse_mended`]).
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    /// Every Via header value, in order (a header with several comma-separated values counts once).
    pub vias: Values<'a>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub cseq: Option<&'a str>,
    pub content_length: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// Every `Require` value (a list: comma-separated, in one header or several).
    pub require: Values<'a>,
    /// Every `P-Asserted-Identity` value: the calling number a carrier's proxy vouches for
    /// (outbound), up to two identities (RFC 3325: a SIP and a tel URI), in one header or two.
    pub asserted: Values<'a>,
    /// `X-Peerex-Trunk`: set by the carrier's proxy on a call that came from Zoom over that trunk,
    /// which makes the INVITE an outbound (Zoom to PSTN) question.
    pub peerex_trunk: Option<&'a str>,
    /// Bytes after the blank line.
    pub body_len: usize,
    /// The request line names a SIP version other than 2.0 (answered 505).
    pub other_version: bool,
    /// Why the request cannot be processed, as the reason phrase of its 400: the first thing found
    /// wrong with it.
    pub problem: Option<&'static str>,
    max_forwards: Option<&'a str>,
    /// The To header has a `tag` parameter (the request is inside a dialog).
    pub to_tagged: bool,
    /// The top Via's first value as read when the parse met it (None: it does not read as the
    /// grammar says), so the answer does not read it again.
    top: Option<ViaParm<'a>>,
    /// A Via value that does not read as the grammar says (flagged once every header is read).
    bad_via: bool,
    /// CSeq's method, when CSeq reads as the grammar says.
    pub(super) cseq_method: Option<&'a str>,
    /// Content-Length as a number, when it is one.
    length: Option<usize>,
}

/// Values of a header that may come several times, in order. The first few are held inline, so an
/// ordinary request (two or three Vias, an identity or two) costs no allocation.
#[derive(Debug, Default)]
pub struct Values<'a> {
    inline: [&'a str; 4],
    len: usize,
    more: Vec<&'a str>,
}

impl<'a> Values<'a> {
    fn push(&mut self, v: &'a str) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = v,
            None => self.more.push(v),
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn first(&self) -> Option<&'a str> {
        (self.len > 0).then_some(self.inline[0])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.inline[..self.len.min(self.inline.len())].iter().chain(&self.more).copied()
    }
}

/// Why a message was not parsed into a [`Request`].
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not answerable: no Via (RFC 3261 §18.1.2 needs it to send anything back), a response, or not
    /// a whole message (no blank line after the headers).
    Silent,
    /// Header text that is not UTF-8: answerable with 400 and this phrase ([`parse_mended`]).
    BadRequest(&'static str),
    /// A header line continues on the next (RFC 3261 §7.3.1): [`parse_mended`] unfolds it first.
    Folded,
}

/// LWS around a value, as the grammar's SWS allows.
#[inline]
pub(super) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end && matches!(b[start], b' ' | b'\t') {
        start += 1;
    }
    while end > start && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    &s[start..end]
}

/// Byte classes of RFC 3261 §25.1, one table read per byte.
const TOKEN: u8 = 1;
/// What a Request-URI holds unescaped (plus `#`, see [`is_request_uri`]).
const URIC: u8 = 2;
/// A Via's host name (`sent-by` that is not an IPv6 reference).
const HOST: u8 = 4;
/// A parameter value that is not quoted: a token or a host (IPv6 references included).
const PARAM: u8 = 8;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    const fn any(b: u8, set: &[u8]) -> bool {
        let mut i = 0;
        while i < set.len() {
            if set[i] == b {
                return true;
            }
            i += 1;
        }
        false
    }
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        // RFC 3261 §25.1: `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")`.
        if alnum || any(b, b"-.!%*_+`'~") {
            t[i] |= TOKEN | PARAM;
        }
        if any(b, b":[]") {
            t[i] |= PARAM;
        }
        if alnum || any(b, b"-_.!~*'();/?:@&=+$,[]#") {
            t[i] |= URIC;
        }
        if alnum || any(b, b"-._") {
            t[i] |= HOST;
        }
        i += 1;
    }
    t
}

fn is(class: u8, b: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

pub(super) fn is_token_char(b: u8) -> bool {
    is(TOKEN, b)
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
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
    ContentType,
    MaxForwards,
    Require,
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
            b'c' => Header::ContentType,
            _ => Header::Other,
        },
        2 if is("to") => Header::To,
        3 if is("via") => Header::Via,
        4 if is("from") => Header::From,
        4 if is("cseq") => Header::CSeq,
        7 if is("call-id") => Header::CallId,
        7 if is("require") => Header::Require,
        12 if is("content-type") => Header::ContentType,
        12 if is("max-forwards") => Header::MaxForwards,
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

/// How many bytes of CRLF come before the start line: RFC 3261 §7.5 has them ignored (keep-alives
/// and stray line ends between messages).
pub(super) fn leading_crlfs(msg: &[u8]) -> usize {
    let mut at = 0;
    while msg[at..].starts_with(b"\r\n") {
        at += 2;
    }
    at
}

/// Splits a message into its request line and headers. Header names are matched case-insensitively,
/// with RFC 3261's compact forms. A request is returned whenever it can be answered (it has a Via),
/// with [`Request::problem`] saying what is wrong with it, if anything; folded lines and bytes that
/// are not UTF-8 are left to [`parse_mended`].
pub fn parse(msg: &[u8]) -> Result<Request<'_>, Malformed> {
    if msg.len() > MAX_MESSAGE {
        return Err(Malformed::Silent);
    }
    let msg = &msg[leading_crlfs(msg)..];
    let head_end = find_blank_line(msg).ok_or(Malformed::Silent)?;
    // RFC 3261 §7.3.1: header text is UTF-8. Not: 400 when there is a Via to answer to.
    let head = std::str::from_utf8(&msg[..head_end])
        .map_err(|_| Malformed::BadRequest("Header Not UTF-8"))?;
    let mut lines = crlf_lines(head);
    let first = lines.next().unwrap_or_default();
    if first.get(..4).is_some_and(|v| v.eq_ignore_ascii_case("SIP/")) {
        return Err(Malformed::Silent); // a response: a stateless redirect server sends none upstream
    }
    let mut r = Request { body_len: msg.len() - head_end - 4, ..Default::default() };
    r.request_line(first);
    for line in lines {
        let b = line.as_bytes();
        if matches!(b.first(), Some(b' ' | b'\t')) {
            return Err(Malformed::Folded);
        }
        // `field-name HCOLON field-value`: a token, LWS, the colon.
        let name_end = b.iter().position(|&c| !is_token_char(c)).unwrap_or(b.len());
        let mut colon = name_end;
        while matches!(b.get(colon), Some(b' ' | b'\t')) {
            colon += 1;
        }
        if name_end == 0 || b.get(colon) != Some(&b':') {
            r.flag("Malformed Header");
            continue;
        }
        r.set(header_kind(&line[..name_end]), trim(&line[colon + 1..]));
    }
    if r.vias.is_empty() {
        return Err(Malformed::Silent);
    }
    r.check();
    Ok(r)
}

/// [`parse`], mending first what it leaves: folded header lines are unfolded (RFC 3261 §7.3.1: the
/// line break and the whitespace after it are LWS) and bytes that are not UTF-8 replaced (the
/// request then answered 400 `Header Not UTF-8`). The mended copy is kept in `mended`; only these
/// rare messages pay for one.
pub fn parse_mended<'a>(msg: &'a [u8], mended: &'a mut Vec<u8>) -> Result<Request<'a>, Malformed> {
    let why = match parse(msg) {
        Err(Malformed::Folded) => None,
        Err(Malformed::BadRequest(why)) => Some(why),
        done => return done,
    };
    *mended = match why {
        Some(_) => String::from_utf8_lossy(msg).into_owned().into_bytes(),
        None => msg.to_vec(),
    };
    unfold(mended);
    let mended: &'a Vec<u8> = mended;
    let mut r = match parse(mended) {
        Ok(r) => r,
        // Unfolded and UTF-8: nothing else to mend.
        Err(_) => return Err(Malformed::Silent),
    };
    if why.is_some() {
        r.problem = why;
    }
    Ok(r)
}

/// Replaces each line break in the head that continues a header (CRLF then SP or HT) with two
/// spaces, keeping every offset.
fn unfold(msg: &mut [u8]) {
    let start = leading_crlfs(msg);
    let end = find_blank_line(&msg[start..]).map_or(msg.len(), |e| start + e);
    let mut i = start;
    while i < end && i + 2 < msg.len() {
        if msg[i] == b'\r' && msg[i + 1] == b'\n' && matches!(msg[i + 2], b' ' | b'\t') {
            msg[i] = b' ';
            msg[i + 1] = b' ';
        }
        i += 1;
    }
}

impl<'a> Request<'a> {
    /// The first problem found is the one the 400 names.
    fn flag(&mut self, why: &'static str) {
        self.problem.get_or_insert(why);
    }

    /// `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1), single spaces, nothing after.
    fn request_line(&mut self, line: &'a str) {
        let space = |s: &str| memchr::memchr(b' ', s.as_bytes());
        let method = &line[..space(line).unwrap_or(line.len())];
        let token = is_token(method);
        if token {
            // Kept even when the rest is wrong: an ACK is never answered, not even with a 400.
            self.method = method;
        }
        // Exactly three parts, one space between each.
        let rest = line.get(method.len() + 1..);
        let parts = rest.and_then(|rest| {
            let (uri, version) = rest.split_at(space(rest)?);
            let version = &version[1..];
            space(version).is_none().then_some((uri, version))
        });
        match parts {
            Some((uri, version)) if token && !uri.is_empty() => {
                self.uri = uri;
                // RFC 3261 §7.1: the version is case-insensitive.
                if !version.eq_ignore_ascii_case("SIP/2.0") {
                    if is_sip_version(version) {
                        self.other_version = true;
                    } else {
                        self.flag("Bad Request Line");
                    }
                }
                if !is_request_uri(uri) {
                    self.flag("Bad Request-URI");
                }
            }
            _ => self.flag("Bad Request Line"),
        }
    }

    fn set(&mut self, h: Header, value: &'a str) {
        /// A header RFC 3261 allows once: the first copy is kept (and echoed), a second is the
        /// 400's reason.
        fn once<'a>(
            slot: &mut Option<&'a str>,
            value: &'a str,
            twice: &'static str,
        ) -> Option<&'static str> {
            match slot {
                None => {
                    *slot = Some(value);
                    None
                }
                Some(_) => Some(twice),
            }
        }
        let problem = match h {
            Header::Via => {
                // Read here, once: the top value's reading is what the answer's Via is built from.
                let rest = if self.vias.is_empty() {
                    self.top = via_parm(value);
                    match &self.top {
                        Some(v) => v.next.map(|n| &value[n..]),
                        None => {
                            self.bad_via = true;
                            None
                        }
                    }
                } else {
                    Some(value)
                };
                if rest.is_some_and(|rest| !vias_read(rest)) {
                    self.bad_via = true;
                }
                self.vias.push(value);
                None
            }
            Header::From => once(&mut self.from, value, "Duplicate From"),
            Header::To => once(&mut self.to, value, "Duplicate To"),
            Header::CallId => once(&mut self.call_id, value, "Duplicate Call-ID"),
            Header::CSeq => once(&mut self.cseq, value, "Duplicate CSeq"),
            Header::ContentLength => match self.content_length {
                Some(first) if digits(first).is_none() || digits(first) != digits(value) => {
                    Some("Conflicting Content-Length")
                }
                _ => once(&mut self.content_length, value, "Duplicate Content-Length"),
            },
            Header::ContentType => once(&mut self.content_type, value, "Duplicate Content-Type"),
            Header::MaxForwards => once(&mut self.max_forwards, value, "Duplicate Max-Forwards"),
            Header::Require => {
                self.require.push(value);
                None
            }
            Header::Asserted => {
                self.asserted.push(value);
                None
            }
            Header::PeerexTrunk => once(&mut self.peerex_trunk, value, "Duplicate X-Peerex-Trunk"),
            Header::Other => None,
        };
        if let Some(why) = problem {
            self.flag(why);
        }
    }

    /// What can only be judged once every header is read.
    fn check(&mut self) {
        for (is_to, value, bad, several) in [
            (false, self.from, "Bad From", "Duplicate From"),
            (true, self.to, "Bad To", "Duplicate To"),
        ] {
            match value.map(name_addr) {
                Some(None) => self.flag(bad),
                Some(Some(n)) => {
                    if n.rest.is_some() {
                        self.flag(several);
                    }
                    if is_to {
                        self.to_tagged = n.tagged;
                    }
                }
                None => {}
            }
        }
        if self.max_forwards.is_some_and(|m| digits(m).is_none()) {
            self.flag("Bad Max-Forwards");
        }
        if self
            .call_id
            .is_some_and(|c| c.is_empty() || c.bytes().any(|b| matches!(b, b' ' | b'\t' | b',')))
        {
            self.flag("Bad Call-ID");
        }
        if self.bad_via {
            self.flag("Bad Via");
        }
        if let Some(c) = self.cseq {
            self.cseq_method = cseq(c).map(|(_, m)| m);
            if self.cseq_method.is_none() {
                self.flag("Bad CSeq");
            }
        }
        if let Some(l) = self.content_length {
            self.length = digits(l);
            match self.length {
                None => self.flag("Bad Content-Length"),
                // Over UDP the datagram ends the message: a body shorter than announced is
                // truncated (RFC 3261 §18.3). Over TCP the stream is framed by it, so this never
                // happens there.
                Some(l) if l > self.body_len => self.flag("Bad Content-Length"),
                _ => {}
            }
        }
        for (missing, why) in [
            (self.from.is_none(), "Missing From"),
            (self.to.is_none(), "Missing To"),
            (self.call_id.is_none(), "Missing Call-ID"),
            (self.cseq.is_none(), "Missing CSeq"),
        ] {
            if missing {
                self.flag(why);
            }
        }
    }

    /// The body's length: what Content-Length announces, else the rest of the datagram.
    pub fn body(&self) -> usize {
        self.length.unwrap_or(self.body_len)
    }
}

/// `SIP/x.y` with digits: a version, if not ours.
fn is_sip_version(v: &str) -> bool {
    let number = v.get(..4).filter(|p| p.eq_ignore_ascii_case("SIP/")).map(|_| &v[4..]);
    number.and_then(|n| n.split_once('.')).is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.bytes().chain(b.bytes())).all(|c| c.is_ascii_digit())
    })
}

/// A Request-URI as RFC 3261 §25.1 allows one: a scheme (`ALPHA *(ALPHA / DIGIT / "+" / "-" /
/// ".")`), a colon, then URI characters only, `%` always followed by two hex digits. Nothing is
/// said of the scheme being one this server serves (416, later).
fn is_request_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let b = scheme.as_bytes();
    if b.first().is_none_or(|c| !c.is_ascii_alphabetic())
        || !b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        || rest.is_empty()
    {
        return false;
    }
    let r = rest.as_bytes();
    let mut i = 0;
    while i < r.len() {
        match r[i] {
            b'%' => {
                if !(r.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && r.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
                continue;
            }
            // `#` is not the grammar's unescaped, but feature codes (`*67#`) come so from PBXs
            // and SBCs, and nothing is ambiguous about it.
            c if is(URIC, c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// `1*DIGIT` as a number (no sign, no spaces inside): Content-Length.
pub(super) fn digits(s: &str) -> Option<usize> {
    let s = trim(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `CSeq: 1*DIGIT LWS Method` (RFC 3261 §20.16), the number below 2**32: (number, method).
pub(super) fn cseq(value: &str) -> Option<(u32, &str)> {
    let value = trim(value);
    let at = value.bytes().position(|b| matches!(b, b' ' | b'\t'))?;
    let (n, m) = (&value[..at], trim(&value[at + 1..]));
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || !is_token(m) {
        return None;
    }
    Some((n.parse().ok()?, m))
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Where the blank line ending a message's head starts (its CRLFCRLF), with the searcher built
/// once rather than per message.
pub(super) fn find_blank_line(hay: &[u8]) -> Option<usize> {
    static BLANK: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    BLANK.find(hay)
}

/// The body length the head of a message on a stream announces (RFC 3261 §18.3: Content-Length
/// frames messages on TCP; none is a body of none). Errors are framing lost for good: a value
/// that is not a length, or two that differ. Works on bytes, folded or not: the stream's framing
/// must not depend on the headers being text.
pub(super) fn announced_length(head: &[u8]) -> Result<usize, &'static str> {
    let mut length = None;
    let mut lines = memchr::memmem::find_iter(head, b"\r\n");
    let mut start = match lines.next() {
        Some(end) => end + 2,
        None => return Ok(0),
    };
    let mut ends = lines.chain(std::iter::once(head.len())).peekable();
    while let Some(mut end) = ends.next() {
        let line_start = start;
        // The header's value goes on over continuation lines.
        while end < head.len() && matches!(head.get(end + 2), Some(b' ' | b'\t')) {
            match ends.next() {
                Some(e) => end = e,
                None => break,
            }
        }
        start = end + 2;
        let line = &head[line_start..end.min(head.len())];
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let n = std::str::from_utf8(value).ok().and_then(digits).ok_or("Bad Content-Length")?;
        match length {
            Some(first) if first != n => return Err("Conflicting Content-Length"),
            _ => length = Some(n),
        }
    }
    Ok(length.unwrap_or(0))
}

/// A cursor over header text, for the grammar of RFC 3261 §25.1.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self { s: s.as_bytes(), i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skips LWS; whether there was any.
    fn lws(&mut self) -> bool {
        let at = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > at
    }

    /// `SWS c SWS`: the separator with the whitespace the grammar allows around it.
    fn sep(&mut self, c: u8) -> bool {
        self.sep_at(c).is_some()
    }

    /// [`Self::sep`], saying where the separator is.
    fn sep_at(&mut self, c: u8) -> Option<usize> {
        let at = self.i;
        self.lws();
        if self.peek() == Some(c) {
            let sep = self.i;
            self.i += 1;
            self.lws();
            Some(sep)
        } else {
            self.i = at;
            None
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let at = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[at..self.i]
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let t = self.take_while(is_token_char);
        (!t.is_empty()).then_some(t)
    }

    /// `quoted-string`, the cursor on its opening quote; false when it never closes.
    fn quoted(&mut self) -> bool {
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => self.i += 1, // quoted-pair
                _ => {}
            }
        }
        false
    }

    /// `generic-param`s after a value: `*( SEMI token [ EQUAL gen-value ] )`, each given to `each`
    /// with the byte range from its `;` to its end. False on a parameter with no name or value.
    fn params(&mut self, mut each: impl FnMut(&'a [u8], &'a [u8], (usize, usize))) -> bool {
        loop {
            let Some(from) = self.sep_at(b';') else { return true };
            let Some(name) = self.token() else { return false };
            let mut value: &[u8] = b"";
            if self.sep(b'=') {
                let at = self.i;
                if self.peek() == Some(b'"') {
                    if !self.quoted() {
                        return false;
                    }
                } else {
                    // token, or host (IPv6 references included)
                    self.take_while(|c| is(PARAM, c));
                }
                value = &self.s[at..self.i];
                if value.is_empty() {
                    return false;
                }
            }
            each(name, value, (from, self.i));
        }
    }
}

/// One Via value (`via-parm`, RFC 3261 §20.42) as read.
#[derive(Debug, Default, Clone, Copy)]
struct ViaParm<'a> {
    host: &'a str,
    port: Option<u16>,
    rport: Option<(usize, usize)>,
    received: Option<(usize, usize)>,
    branch: &'a str,
    /// Where it ends in the header value (its LWS excluded), and where the next value starts.
    end: usize,
    next: Option<usize>,
}

/// `sent-protocol LWS sent-by *( SEMI via-params )`, LWS allowed around every separator, then the
/// end of the value or a comma and the next one.
fn via_parm(value: &str) -> Option<ViaParm<'_>> {
    let mut c = Cursor::new(value);
    c.lws();
    c.token()?; // protocol-name
    if !c.sep(b'/') {
        return None;
    }
    c.token()?; // protocol-version
    if !c.sep(b'/') {
        return None;
    }
    c.token()?; // transport
    if !c.lws() {
        return None;
    }
    let host = if c.peek() == Some(b'[') {
        let h = c.take_while(|b| b != b']');
        if c.peek() != Some(b']') {
            return None;
        }
        c.i += 1;
        std::str::from_utf8(&h[1..]).ok().filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())?
    } else {
        let h = c.take_while(|b| is(HOST, b));
        std::str::from_utf8(h).ok().filter(|h| !h.is_empty())?
    };
    let mut v = ViaParm { host, ..Default::default() };
    if c.sep(b':') {
        let p = c.take_while(|b| b.is_ascii_digit());
        v.port = Some(std::str::from_utf8(p).ok()?.parse().ok()?);
    }
    let mut ok = true;
    let read = c.params(|name, val, range| {
        if name.eq_ignore_ascii_case(b"rport") {
            ok &= val.iter().all(u8::is_ascii_digit);
            v.rport.get_or_insert(range);
        } else if name.eq_ignore_ascii_case(b"received") {
            v.received.get_or_insert(range);
        } else if name.eq_ignore_ascii_case(b"branch") {
            v.branch = std::str::from_utf8(val).unwrap_or_default();
        }
    });
    if !read || !ok {
        return None;
    }
    v.end = c.i;
    c.lws();
    if c.done() {
        return Some(v);
    }
    if c.peek() != Some(b',') {
        return None;
    }
    v.next = Some(c.i + 1);
    Some(v)
}

/// Whether every value of a Via header reads as the grammar says (`;;` or `,,` do not).
fn vias_read(mut value: &str) -> bool {
    loop {
        match via_parm(value) {
            Some(ViaParm { next: Some(n), .. }) => value = &value[n..],
            Some(_) => return true,
            None => return false,
        }
    }
}

/// A From, To or P-Asserted-Identity value as RFC 3261 §20.20 reads it: `name-addr` or
/// `addr-spec`, then parameters, then possibly `,` and another value.
#[derive(Debug)]
pub(super) struct NameAddr<'a> {
    /// The URI, without its angle brackets.
    pub uri: &'a str,
    /// Whether the header parameters (`;tag=...`) include `tag`.
    pub tagged: bool,
    /// After a comma: the next value (invalid in From and To, where one is allowed).
    pub rest: Option<&'a str>,
}

/// Reads `name-addr` (`[display-name] <URI>`, the display name a quoted string or tokens) or
/// `addr-spec` (a bare URI, its `;` starting header parameters); None when it is neither (an
/// unterminated quote, a display name with characters a token cannot hold, no URI).
pub(super) fn name_addr(value: &str) -> Option<NameAddr<'_>> {
    let mut c = Cursor::new(value);
    c.lws();
    let at = c.i;
    let bracketed = if c.peek() == Some(b'"') {
        if !c.quoted() {
            return None;
        }
        c.lws();
        true
    } else {
        // Tokens and LWS: a display name if '<' follows, else the start of an addr-spec. UTF-8
        // is let into the tokens: SBCs send unquoted names like `José <sip:...>`, and nothing is
        // ambiguous about them.
        while !c.take_while(|b| is_token_char(b) || b >= 0x80).is_empty() || c.lws() {}
        c.peek() == Some(b'<')
    };
    let uri = if bracketed {
        if c.peek() != Some(b'<') {
            return None;
        }
        c.i += 1;
        let u = c.take_while(|b| b != b'>');
        if c.peek() != Some(b'>') {
            return None;
        }
        c.i += 1;
        // Spaces inside the brackets are not the grammar's, but change nothing (RFC 4475 §3.1.2.14
        // lets an element accept them).
        trim(std::str::from_utf8(u).ok()?)
    } else {
        c.i = at;
        if value.contains('<') {
            return None; // a display name with characters no token holds, e.g. an unquoted comma
        }
        let u = c.take_while(|b| !b" \t;,\"".contains(&b));
        std::str::from_utf8(u).ok()?
    };
    if uri.is_empty() || !uri.contains(':') {
        return None;
    }
    let mut tagged = false;
    if !c.params(|name, _, _| tagged |= name.eq_ignore_ascii_case(b"tag")) {
        return None;
    }
    c.lws();
    let rest = match c.peek() {
        None => None,
        Some(b',') => Some(&value[c.i + 1..]),
        Some(_) => return None,
    };
    Some(NameAddr { uri, tagged, rest })
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
    /// Where `rport` and `received` are in `first`.
    rport: Option<(usize, usize)>,
    received: Option<(usize, usize)>,
    pub(super) branch: &'a str,
    /// The Via read as the grammar says. One that does not is echoed untouched (nothing is spliced
    /// into a value that cannot be read) and answered at the address and port it came from.
    ok: bool,
}

impl<'a> TopVia<'a> {
    /// The top Via of a parsed request, as the parse read it.
    pub(super) fn of(req: &Request<'a>) -> Self {
        Self::from_parm(req.vias.first().unwrap_or_default(), req.top)
    }

    #[cfg(test)]
    pub(super) fn read(via: &'a str) -> Self {
        Self::from_parm(via, via_parm(via))
    }

    fn from_parm(via: &'a str, parm: Option<ViaParm<'a>>) -> Self {
        match parm {
            Some(v) => {
                let rest = v.next.map_or("", |n| &via[n - 1..]);
                Self {
                    first: &via[..v.end],
                    rest,
                    host: Some(v.host),
                    port: v.port,
                    rport: v.rport,
                    received: v.received,
                    branch: v.branch,
                    ok: true,
                }
            }
            None => Self {
                first: via,
                rest: "",
                host: None,
                port: None,
                rport: None,
                received: None,
                branch: "",
                ok: false,
            },
        }
    }

    /// Where the response goes (RFC 3261 §18.2.2 with RFC 3581): the source port when `rport`
    /// was asked for (or the Via cannot be read), else the Via's port; always the source address
    /// (what `received` says).
    pub(super) fn reply_to(&self, src: SocketAddr) -> SocketAddr {
        if self.rport.is_some() || !self.ok {
            return src;
        }
        SocketAddr::new(src.ip(), self.port.unwrap_or(5060))
    }

    /// Writes the Via as the response carries it: `received` when the sent-by host is not the
    /// source address, `rport` filled in when it was asked for.
    pub(super) fn write(&self, out: &mut Vec<u8>, src: SocketAddr) {
        if !self.ok {
            out.extend_from_slice(self.first.as_bytes());
            return;
        }
        let first = self.first.as_bytes();
        let mut at = 0;
        let mut cut = [self.rport, self.received];
        cut.sort_unstable();
        for (start, end) in cut.into_iter().flatten() {
            out.extend_from_slice(&first[at..start]);
            if Some((start, end)) == self.rport {
                out.extend_from_slice(b";rport=");
                out.extend_from_slice(itoa::Buffer::new().format(src.port()).as_bytes());
            } // `received` is written below, with the address it came from
            at = end;
        }
        out.extend_from_slice(&first[at..]);
        let host_differs = self.host.is_none_or(|h| h.parse::<IpAddr>().ok() != Some(src.ip()));
        if host_differs || self.rport.is_some() {
            out.extend_from_slice(b";received=");
            match src.ip() {
                IpAddr::V4(ip) => {
                    for (i, octet) in ip.octets().into_iter().enumerate() {
                        if i > 0 {
                            out.push(b'.');
                        }
                        out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                    }
                }
                IpAddr::V6(ip) => {
                    let _ = write!(out, "{ip}");
                }
            }
        }
        out.extend_from_slice(self.rest.as_bytes());
    }
}

/// Where the response to `req` goes (see [`TopVia::reply_to`]).
pub fn reply_to(req: &Request<'_>, src: SocketAddr) -> SocketAddr {
    TopVia::of(req).reply_to(src)
}
