//! The route-lookup HTTP API, on its own listener so call traffic never queues behind portal
//! traffic. `GET /route?to=...&from=...&direction=inbound|outbound&trunk=...`: HTTP 200 whenever a
//! decision was made, whatever it is (SBCs that see a 404 fail open), with a body Kamailio's
//! `rtjson` module can use as it is; 503 only when peerex cannot decide.
//!
//! A small hand-written HTTP/1.1 server rather than axum: this is the per-call hot path (goal
//! ≥ 80,000 lookups/s on one core, p99 ≤ 0.5 ms) and axum + hyper + `serde_json::Value` did a
//! third of that. It runs on its own OS thread with a current-thread runtime, so lookups never
//! wait behind portal tasks or hop between threads. Per connection: every complete request in
//! what was read is answered, and the answers go out in one write (pipelining works).

use crate::listen::{write_watched, Gate, Limits, Permit, Watch};
use crate::snapshot::Answer;
use crate::Routing;
use domain::routing::{normalize, Direction, Reason};
use domain::CustomerId;
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A request head larger than this gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// More request headers than this gets 431.
const MAX_HEADERS: usize = 32;
struct Shared {
    routing: Routing,
    secret: Option<Box<str>>,
    metrics: Option<crate::RenderMetrics>,
}

/// Serves the lookup API on `listener` from a thread of its own ("peerex-lookup"); `secret`, when
/// set, must come as `Authorization: Bearer <secret>`. The thread runs until the process ends.
/// The listener's bounds are [`Limits::default`].
pub fn spawn(
    routing: Routing,
    listener: std::net::TcpListener,
    secret: Option<String>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    spawn_with(routing, listener, secret, Limits::default())
}

/// [`spawn`] with the listener's bounds: connections in total and per address (trusted proxies
/// are never turned away by the total), and how long a request head and an idle connection may
/// take.
pub fn spawn_with(
    routing: Routing,
    listener: std::net::TcpListener,
    secret: Option<String>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    spawn_serving(routing, listener, secret, limits, None)
}

/// [`spawn_with`], also serving `GET /metrics` from `metrics` (behind the same secret as lookups).
pub fn spawn_serving(
    routing: Routing,
    listener: std::net::TcpListener,
    secret: Option<String>,
    limits: Limits,
    metrics: Option<crate::RenderMetrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut threads = spawn_threads(routing, vec![listener], secret, limits, metrics)?;
    threads.pop().ok_or_else(|| std::io::Error::other("no listener"))
}

/// [`spawn_serving`] on several listeners of one address (`crate::listen::bind_tcp`), a thread
/// each, with one bound on connections for all of them. Each thread answers the connections its
/// listener accepted from start to end: nothing is shared between them per request.
pub fn spawn_threads(
    routing: Routing,
    listeners: Vec<std::net::TcpListener>,
    secret: Option<String>,
    limits: Limits,
    metrics: Option<crate::RenderMetrics>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let gate = Gate::new(limits, routing.trusted_proxies().clone(), "lookup");
    let shared = Arc::new(Shared { routing, secret: secret.map(String::into_boxed_str), metrics });
    let n = listeners.len();
    let mut threads = Vec::with_capacity(n);
    for (i, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let listener = {
            let _in_rt = rt.enter();
            TcpListener::from_std(listener)?
        };
        let (shared, gate) = (shared.clone(), gate.clone());
        let name = if n == 1 { "peerex-lookup".to_owned() } else { format!("peerex-lookup-{i}") };
        threads.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || rt.block_on(accept(listener, shared, gate)))?,
        );
    }
    Ok(threads)
}

/// Sent (if the socket takes it at once) to a connection over the listener's bounds, then closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 41\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{\"detail\":\"too many connections, retry\"}\n";

async fn accept(listener: TcpListener, shared: Arc<Shared>, gate: Gate) {
    tokio::spawn(tick_date());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match gate.admit(peer.ip()) {
                Some(permit) => {
                    let trusted = gate.trusts(peer.ip());
                    tokio::spawn(connection(
                        stream,
                        shared.clone(),
                        trusted,
                        permit,
                        gate.limits(),
                    ));
                }
                // Never waited on: a client that reads nothing must not hold this loop.
                None => drop(stream.try_write(TOO_MANY)),
            },
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "routing lookup API: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

thread_local! {
    /// The `Date` header line of answers (HTTP requires one from a server with a clock), formatted
    /// twice a second on the lookup thread rather than per answer.
    static DATE: RefCell<String> = RefCell::new(date_line());
}

fn date_line() -> String {
    format!("Date: {}\r\n", httpdate::fmt_http_date(std::time::SystemTime::now()))
}

async fn tick_date() {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        DATE.with(|d| *d.borrow_mut() = date_line());
    }
}

/// Reused per connection: what came in, what goes out, and the body being built.
struct Conn {
    shared: Arc<Shared>,
    histogram: metrics::Histogram,
    body: Vec<u8>,
    /// The peer is a trusted proxy: it may ask outbound lookups (which name the call's trunk).
    trusted: bool,
}

async fn connection(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    trusted: bool,
    _permit: Permit,
    limits: Limits,
) {
    // Answers are small and the client waits for each: send them at once.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        shared,
        histogram: metrics::histogram!("peerex_routing_lookup_seconds"),
        body: Vec::with_capacity(1024),
        trusted,
    };
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut watch = Watch::new(limits);
    // One timer per connection, re-armed only when it fires (not per request, which would cost a
    // clock read and a timer update per lookup).
    let tick = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(tick);
    loop {
        let mut used = 0;
        let mut close = false;
        while used < input.len() && !close {
            match conn.next(&input[used..], &mut out) {
                Some((n, keep_alive)) => {
                    used += n;
                    close = !keep_alive;
                }
                None => break,
            }
        }
        if used == input.len() {
            input.clear();
        } else {
            input.drain(..used);
            if input.len() > MAX_HEAD {
                respond(
                    &mut out,
                    Status::HeadTooLarge,
                    &[],
                    br#"{"detail":"the request head is larger than 16 KB"}"#,
                    Persist::Close,
                    false,
                );
                close = true;
            }
        }
        if !out.is_empty() {
            watch.progress = true;
            if !write_watched(&mut stream, &out, &mut watch, &mut tick).await {
                return;
            }
            out.clear();
        }
        if close {
            linger_close(stream).await;
            return;
        }
        if input.capacity() - input.len() < 1024 {
            input.reserve(4096);
        }
        let read = tokio::select! {
            biased;
            r = stream.read_buf(&mut input) => r,
            () = &mut tick => {
                // A head too slow, a connection that never asked, or one idle too long: closed
                // without an answer (a client this slow is not waiting for one).
                if watch.tick(!input.is_empty()) {
                    return;
                }
                tick.as_mut().reset(Instant::now() + limits.header_timeout);
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Closes after an error answer without losing it: closing with unread input makes the kernel
/// send a reset, which can overtake the answer. So stop sending, then read what is still coming
/// for a moment.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        for _ in 0..64 {
            if matches!(stream.read(&mut sink).await, Ok(0) | Err(_)) {
                break;
            }
        }
    })
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Ok,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::Unauthorized => b"HTTP/1.1 401 Unauthorized\r\n",
            Status::Forbidden => b"HTTP/1.1 403 Forbidden\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::HeadTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::Unavailable => b"HTTP/1.1 503 Service Unavailable\r\n",
        }
    }
}

/// Whether the connection stays open after an answer, as the answer tells the client.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Persist {
    /// HTTP/1.1's default: nothing to say.
    KeepAlive,
    /// An HTTP/1.0 client that asked for keep-alive only keeps the connection if told so.
    KeepAlive10,
    Close,
}

const JSON: &[u8] = b"application/json";
/// Prometheus' text exposition format.
const TEXT: &[u8] = b"text/plain; version=0.0.4";

/// Appends one JSON answer; `head` leaves the body out (HEAD) but keeps its length.
fn respond(
    out: &mut Vec<u8>,
    status: Status,
    extra: &[&str],
    body: &[u8],
    persist: Persist,
    head: bool,
) {
    respond_typed(out, status, JSON, extra, body, persist, head)
}

/// [`respond`] with a body of another type.
fn respond_typed(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &[u8],
    extra: &[&str],
    body: &[u8],
    persist: Persist,
    head: bool,
) {
    out.extend_from_slice(status.line());
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    DATE.with(|d| out.extend_from_slice(d.borrow().as_bytes()));
    for h in extra {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match persist {
        Persist::KeepAlive => {}
        Persist::KeepAlive10 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persist::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if !head {
        out.extend_from_slice(body);
    }
}

/// The query of a lookup. Decoded as `application/x-www-form-urlencoded`, as axum's `Query` did:
/// `%2B` is a `+`, and a bare `+` is a space (which `normalize` then reads as a number without
/// `+`, i.e. by the numbering rule).
#[derive(Default)]
struct Params<'q> {
    /// Called number or Request-URI (inbound).
    to: Option<Cow<'q, str>>,
    /// Calling number or From URI (outbound).
    from: Option<Cow<'q, str>>,
    direction: Option<Cow<'q, str>>,
    /// The Zoom trunk the call came over (outbound), or whose numbering rule reads `to`.
    trunk: Option<Cow<'q, str>>,
}

impl<'q> Params<'q> {
    /// Unknown parameters are ignored; one given twice, or not UTF-8 once decoded, is refused,
    /// naming it.
    fn parse(query: &'q str) -> Result<Self, String> {
        let mut p = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let Ok(k) = form_decode(k) else { continue };
            let slot = match &*k {
                "to" => &mut p.to,
                "from" => &mut p.from,
                "direction" => &mut p.direction,
                "trunk" => &mut p.trunk,
                _ => continue,
            };
            let v = form_decode(v)
                .map_err(|()| format!("{k}: not valid UTF-8 once percent-decoded"))?;
            if slot.replace(v).is_some() {
                return Err(format!("{k}: given more than once"));
            }
        }
        Ok(p)
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte, a `%` not followed
/// by two hex digits stays as it is), refusing bytes that are not UTF-8 rather than replacing them:
/// a number that arrived garbled must not be decided as some other (or no) number.
fn form_decode(s: &str) -> Result<Cow<'_, str>, ()> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| ())
}

#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
}

#[derive(Serialize)]
struct Unavailable<'a> {
    decision: &'static str,
    detail: &'a str,
}

/// `/healthz`: `ok`, or `stale` while the snapshot has not been checked against the database for
/// longer than `stale_after_seconds` (inbound calls are still answered from it; outbound ones are
/// refused). HTTP 200 either way: the instance answers calls.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    generation: i64,
    /// Seconds since the snapshot was last checked against the database.
    age_seconds: i64,
}

/// An E.164 number as `+digits`, written without going through `fmt`.
struct Plus(u64);

impl Serialize for Plus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut digits = itoa::Buffer::new();
        let d = digits.format(self.0).as_bytes();
        let mut buf = [0u8; 21];
        buf[0] = b'+';
        buf[1..=d.len()].copy_from_slice(d);
        s.serialize_str(std::str::from_utf8(&buf[..=d.len()]).unwrap_or_default())
    }
}

/// The decision as JSON: peerex's fields, plus `version`/`routing`/`routes` for `rtjson`.
#[derive(Serialize)]
struct Body<'a> {
    decision: &'static str,
    status: u16,
    reason: Option<Reason>,
    direction: Direction,
    to: Option<Plus>,
    from: Option<Plus>,
    customer_id: Option<CustomerId>,
    trunk: Option<&'a str>,
    generation: i64,
    version: &'static str,
    routing: &'static str,
    routes: Routes<'a>,
    /// An outbound call to an emergency number, let through whatever else is true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    emergency: bool,
    /// Decided on a snapshot not checked against the database for this many seconds (the
    /// database cannot be reached; inbound answers come from the last-known-good copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_seconds: Option<i64>,
}

impl<'a> Body<'a> {
    fn new(a: &'a Answer, from: Option<u64>, to: Option<u64>, stale_seconds: Option<i64>) -> Self {
        let decision = match a.status {
            302 => "route",
            200 => "allow",
            _ => "reject",
        };
        Body {
            decision,
            status: a.status,
            reason: a.reason,
            direction: a.direction,
            to: to.map(Plus),
            from: from.map(Plus),
            customer_id: a.customer,
            trunk: a.trunk.as_deref().map(|t| t.name.as_str()),
            generation: a.generation,
            version: "1.0",
            routing: "serial",
            routes: Routes { answer: a, to },
            emergency: a.emergency,
            stale_seconds,
        }
    }
}

/// `routes[{uri, dst_uri, headers}]`: one per destination of the trunk to route to.
struct Routes<'a> {
    answer: &'a Answer,
    to: Option<u64>,
}

impl Serialize for Routes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (Some(t), Some(to)) = (&self.answer.trunk, self.to) else {
            return s.collect_seq(std::iter::empty::<()>());
        };
        let mut seq = s.serialize_seq(Some(t.destinations.len()))?;
        for d in &t.destinations {
            seq.serialize_element(&Route {
                uri: ContactUri { destination: d, e164: to },
                dst_uri: d,
                headers: Extra { extra: Header(&t.name) },
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Route<'a> {
    uri: ContactUri<'a>,
    dst_uri: &'a str,
    headers: Extra<'a>,
}

#[derive(Serialize)]
struct Extra<'a> {
    extra: Header<'a>,
}

/// [`crate::sip::contact_uri`] written straight into the body: `scheme:+e164@host` of the
/// destination (a test keeps the two the same).
struct ContactUri<'a> {
    destination: &'a str,
    e164: u64,
}

impl Serialize for ContactUri<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (scheme, rest) = self.destination.split_once(':').unwrap_or(("sip", self.destination));
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let mut digits = itoa::Buffer::new();
        let e164 = digits.format(self.e164);
        let mut buf = [0u8; 256];
        match concat(&mut buf, &[scheme, ":+", e164, "@", host]) {
            Some(uri) => s.serialize_str(uri),
            None => s.collect_str(&format_args!("{scheme}:+{e164}@{host}")),
        }
    }
}

/// The header Kamailio adds to the forwarded INVITE: which trunk peerex chose.
struct Header<'a>(&'a str);

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 256];
        match concat(&mut buf, &["X-Peerex-Trunk: ", self.0, "\r\n"]) {
            Some(h) => s.serialize_str(h),
            None => s.collect_str(&format_args!("X-Peerex-Trunk: {}\r\n", self.0)),
        }
    }
}

/// `parts` joined in `buf`, or None when they do not fit: cheaper than `fmt` for the short
/// strings of an answer.
fn concat<'b>(buf: &'b mut [u8], parts: &[&str]) -> Option<&'b str> {
    let mut len = 0;
    for p in parts {
        buf.get_mut(len..len + p.len())?.copy_from_slice(p.as_bytes());
        len += p.len();
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// What one request asked, once its head is parsed.
struct Request<'b> {
    method: &'b str,
    path: &'b str,
    query: &'b str,
    authorization: Option<&'b [u8]>,
    persist: Persist,
}

impl Conn {
    /// Answers the request at the start of `input` into `out`: (bytes used, keep the connection
    /// open), or None when the head is not complete yet.
    fn next(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<(usize, bool)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(input) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
                respond(out, Status::HeadTooLarge, &[], br#"{"detail":"the request head is larger than 16 KB or has more than 32 headers"}"#, Persist::Close, false);
                return Some((input.len(), false));
            }
            Ok(httparse::Status::Partial) => return None,
            Err(e) => {
                self.error(out, Status::BadRequest, &format!("malformed HTTP request: {e}"));
                return Some((input.len(), false));
            }
        };
        let (version, method, target) =
            (req.version.unwrap_or(1), req.method.unwrap_or(""), req.path.unwrap_or(""));
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut authorization = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    connection_close |= token.eq_ignore_ascii_case(b"close");
                    connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if h.name.eq_ignore_ascii_case("authorization") {
                authorization = Some(h.value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                || (h.name.eq_ignore_ascii_case("content-length") && h.value.trim_ascii() != b"0")
            {
                // Lookups have no body; rather than skip one of unknown framing, refuse and close.
                self.error(out, Status::BadRequest, "a lookup has no body");
                return Some((input.len(), false));
            }
        }
        let persist = match (version, connection_close, connection_keep_alive) {
            (_, true, _) | (0, false, false) => Persist::Close,
            (0, false, true) => Persist::KeepAlive10,
            _ => Persist::KeepAlive,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let r = Request { method, path, query, authorization, persist };
        self.answer(&r, out);
        Some((n, persist != Persist::Close))
    }

    fn answer(&mut self, r: &Request<'_>, out: &mut Vec<u8>) {
        let allowed = matches!(r.method, "GET" | "HEAD");
        let head = r.method == "HEAD";
        match r.path {
            "/route" | "/healthz" | "/metrics" if !allowed => {
                self.json(&Detail { detail: "the lookup API answers GET only" });
                respond(
                    out,
                    Status::MethodNotAllowed,
                    &["Allow: GET, HEAD"],
                    &self.body,
                    r.persist,
                    false,
                );
            }
            "/route" => self.route(r, out, head),
            "/healthz" => {
                let routing = &self.shared.routing;
                if routing.is_ready() {
                    let generation = routing.generation();
                    let status = if routing.is_fresh() { "ok" } else { "stale" };
                    self.json(&Health { status, generation, age_seconds: routing.age_ms() / 1000 });
                    respond(out, Status::Ok, &[], &self.body, r.persist, head);
                } else if let Some(why) = routing.refused_file() {
                    // Not answering because the file was refused: say so, not just "loading".
                    let why = format!(
                        "the routing snapshot is loading; its last-known-good file was refused: {why}"
                    );
                    self.unavailable(out, &why, r.persist, head);
                } else {
                    self.unavailable(out, "the routing snapshot is loading", r.persist, head);
                }
            }
            "/metrics" if self.shared.metrics.is_some() => {
                if !self.authorized(r.authorization) {
                    return self.unauthorized(out, r.persist, head);
                }
                let text = self.shared.metrics.as_ref().map(|m| m()).unwrap_or_default();
                self.body.clear();
                self.body.extend_from_slice(text.as_bytes());
                respond_typed(out, Status::Ok, TEXT, &[], &self.body, r.persist, head);
            }
            _ => {
                self.json(&Detail {
                    detail: "not found: the lookup API answers GET /route and GET /healthz",
                });
                respond(out, Status::NotFound, &[], &self.body, r.persist, head);
            }
        }
    }

    fn route(&mut self, r: &Request<'_>, out: &mut Vec<u8>, head: bool) {
        let started = std::time::Instant::now();
        if !self.authorized(r.authorization) {
            return self.unauthorized(out, r.persist, head);
        }
        let p = match Params::parse(r.query) {
            Ok(p) => p,
            Err(why) => {
                self.json(&Detail { detail: &why });
                return respond(out, Status::BadRequest, &[], &self.body, r.persist, head);
            }
        };
        let direction = match p.direction.as_deref().map(Direction::parse) {
            None => Direction::Inbound,
            Some(Some(d)) => d,
            Some(None) => {
                self.json(&Detail { detail: "direction: must be inbound or outbound" });
                return respond(out, Status::BadRequest, &[], &self.body, r.persist, head);
            }
        };
        if direction == Direction::Outbound && !self.trusted {
            // An outbound lookup names the trunk the call came over, which only the carrier's own
            // proxy may assert: from anyone else it would let a caller pick a customer's number and
            // trunk and get the call let through (toll fraud).
            self.json(&Detail {
                detail: "direction: outbound lookups are answered only for the addresses in [routing] trusted_proxies",
            });
            return respond(out, Status::Forbidden, &[], &self.body, r.persist, head);
        }
        let decided = {
            let routing = &self.shared.routing;
            let s = routing.read();
            let trunk = p.trunk.as_deref().and_then(|t| s.trunk(t));
            let rule = trunk.as_ref().map_or(&*routing.numbering, |t| &t.numbering);
            let from = p.from.as_deref().and_then(|u| normalize(u, rule).ok());
            let emergency = match (direction, p.to.as_deref()) {
                (Direction::Outbound, Some(to)) => routing.emergency_call(to, rule),
                _ => None,
            };
            if let Some(n) = emergency {
                Ok((Answer::emergency(s.generation), from, Some(n)))
            } else if !routing.is_ready() {
                Err("the routing snapshot is loading")
            } else if direction == Direction::Outbound && !routing.is_fresh() {
                // Outbound fails closed on a copy that has not been checked against the database
                // lately; inbound may use the last known good one.
                Err("the routing snapshot is out of date")
            } else {
                let to = p.to.as_deref().and_then(|u| normalize(u, rule).ok());
                Ok((s.decide(direction, from, to, p.trunk.as_deref()), from, to))
            }
        };
        let (answer, from, to) = match decided {
            Ok(d) => d,
            Err(why) => return self.unavailable(out, why, r.persist, head),
        };
        self.histogram.record(started.elapsed().as_secs_f64());
        let stale = self.shared.routing.stale_seconds();
        self.json(&Body::new(&answer, from, to, stale));
        respond(out, Status::Ok, &[], &self.body, r.persist, head);
    }

    fn authorized(&self, header: Option<&[u8]>) -> bool {
        let Some(secret) = &self.shared.secret else { return true };
        let given = header.and_then(|v| v.strip_prefix(b"Bearer ")).unwrap_or_default();
        // Constant time: the comparison must not tell how much of a guess was right.
        given.len() == secret.len()
            && given.iter().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// A request without the lookup secret (`/route` and `/metrics` both need it).
    fn unauthorized(&mut self, out: &mut Vec<u8>, persist: Persist, head: bool) {
        self.json(&Detail { detail: "send the lookup secret as 'Authorization: Bearer <secret>'" });
        respond(
            out,
            Status::Unauthorized,
            &["WWW-Authenticate: Bearer"],
            &self.body,
            persist,
            head,
        );
    }

    fn unavailable(&mut self, out: &mut Vec<u8>, why: &str, persist: Persist, head: bool) {
        self.json(&Unavailable { decision: "unavailable", detail: why });
        respond(out, Status::Unavailable, &["Retry-After: 1"], &self.body, persist, head);
    }

    /// A protocol error: answered, then the connection is closed.
    fn error(&mut self, out: &mut Vec<u8>, status: Status, why: &str) {
        self.json(&Detail { detail: why });
        respond(out, status, &[], &self.body, Persist::Close, false);
    }

    /// Serializes `v` into the reused body buffer.
    fn json<T: Serialize>(&mut self, v: &T) {
        self.body.clear();
        // Writing to a Vec cannot fail, and these types always serialize.
        let _ = serde_json::to_writer(&mut self.body, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_carry_the_same_contact_as_the_redirect_server() {
        for d in [
            "sip:zoom-a.example:5061;transport=tls",
            "sips:user@zoom-b.example",
            "zoom-c.example",
            "sip:127.0.0.1:5080",
        ] {
            let json =
                serde_json::to_string(&ContactUri { destination: d, e164: 15550100001 }).unwrap();
            assert_eq!(
                json,
                serde_json::to_string(&crate::sip::contact_uri(d, 15550100001)).unwrap(),
                "{d}"
            );
        }
        let long = format!("sip:{}.example", "z".repeat(300));
        assert_eq!(
            serde_json::to_string(&ContactUri { destination: &long, e164: 1 }).unwrap(),
            serde_json::to_string(&crate::sip::contact_uri(&long, 1)).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&Header("zoom-a")).unwrap(),
            r#""X-Peerex-Trunk: zoom-a\r\n""#
        );
        let long = "t".repeat(300);
        assert_eq!(
            serde_json::to_string(&Header(&long)).unwrap(),
            format!("\"X-Peerex-Trunk: {long}\\r\\n\"")
        );
        assert_eq!(serde_json::to_string(&Plus(15550100001)).unwrap(), r#""+15550100001""#);
        assert_eq!(serde_json::to_string(&Plus(u64::MAX)).unwrap(), format!("\"+{}\"", u64::MAX));
    }
}
