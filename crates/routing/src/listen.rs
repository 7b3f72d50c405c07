//! What the front ends' sockets need besides the snapshot: who may assert which Zoom trunk a call
//! came over ([`Networks`]), and the bounds on a TCP listener ([`Limits`], [`Gate`]) that keep slow
//! or half-open connections from taking every file descriptor of the process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A list of addresses and networks (`192.0.2.10`, `10.1.0.0/24`, `2001:db8::/32`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// Parses each entry; an error names the entry and what is wrong with it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.as_ref().trim();
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            let addr: IpAddr =
                addr.parse().map_err(|_| format!("{e:?} is not an IP address or network"))?;
            let addr = addr.to_canonical();
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => match b.parse::<u8>() {
                    Ok(b) if b <= max => b,
                    _ => return Err(format!("{e:?}: the prefix length must be 0 to {max}")),
                },
            };
            out.push((addr, bits));
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the networks (an IPv4 address seen as IPv4-mapped IPv6 counts as
    /// IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            _ => false,
        })
    }
}

fn prefix_eq(net: &[u8], addr: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if net[..whole] != addr[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ addr[whole]) & (0xFFu8 << (8 - rest)) == 0
}

/// Bounds on one TCP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, from addresses that are not trusted proxies (those are never
    /// turned away by this bound, so a crowd of strangers cannot lock the carrier's proxy out).
    pub max_connections: usize,
    /// Connections open at once from one address, trusted or not.
    pub max_per_source: usize,
    /// A connection must send a complete request (head, or SIP message) within this of opening or
    /// of starting one; it is closed after one to two of these periods otherwise.
    pub header_timeout: Duration,
    /// A connection with no request for this long (to one period more) is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_per_source: 64,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Counts a listener's connections, in total and per source address. Touched once when a
/// connection opens and once when it closes, never per request.
#[derive(Clone)]
pub struct Gate(Arc<GateInner>);

struct GateInner {
    limits: Limits,
    trusted: Networks,
    /// Connections from untrusted addresses.
    open: AtomicUsize,
    per_source: Mutex<HashMap<IpAddr, usize>>,
    refused: metrics::Counter,
}

/// One admitted connection; dropping it gives its place back.
pub struct Permit {
    gate: Gate,
    ip: IpAddr,
    counted: bool,
}

impl Gate {
    /// `listener` names the listener in `peerex_listener_refused_total`.
    pub fn new(limits: Limits, trusted: Networks, listener: &'static str) -> Self {
        Self(Arc::new(GateInner {
            limits,
            trusted,
            open: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            refused: metrics::counter!("peerex_listener_refused_total", "listener" => listener),
        }))
    }

    pub fn limits(&self) -> Limits {
        self.0.limits
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.trusted.contains(ip)
    }

    /// A place for a connection from `ip`, or None when the listener or that address is full.
    pub fn admit(&self, ip: IpAddr) -> Option<Permit> {
        let ip = ip.to_canonical();
        let g = &self.0;
        let counted = !g.trusted.contains(ip);
        if counted && g.open.fetch_add(1, Ordering::AcqRel) >= g.limits.max_connections {
            g.open.fetch_sub(1, Ordering::AcqRel);
            g.refused.increment(1);
            return None;
        }
        let mut per = g.per_source.lock().unwrap_or_else(|e| e.into_inner());
        let n = per.entry(ip).or_insert(0);
        if *n >= g.limits.max_per_source {
            drop(per);
            if counted {
                g.open.fetch_sub(1, Ordering::AcqRel);
            }
            g.refused.increment(1);
            return None;
        }
        *n += 1;
        Some(Permit { gate: self.clone(), ip, counted })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let g = &self.gate.0;
        if self.counted {
            g.open.fetch_sub(1, Ordering::AcqRel);
        }
        let mut per = g.per_source.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

/// A connection's clock, ticking every `header_timeout`: decides at each tick, from what happened
/// since the last, whether to close. Nothing is timed per request (a lookup costs no clock read or
/// timer update); the price is that a deadline is met within one to two periods.
pub(crate) struct Watch {
    limits: Limits,
    /// A request was completed since the last tick.
    pub progress: bool,
    /// A request has ever been completed on this connection.
    ever: bool,
    /// A partial request was waiting at the last tick.
    partial_at_tick: bool,
    idle: Duration,
}

impl Watch {
    pub fn new(limits: Limits) -> Self {
        Self { limits, progress: false, ever: false, partial_at_tick: false, idle: Duration::ZERO }
    }

    /// At a tick, with whether part of a request is waiting: true when the connection must close
    /// (a request head took too long, a new connection sent nothing, or it has been idle too long).
    pub fn tick(&mut self, partial: bool) -> bool {
        let progress = std::mem::take(&mut self.progress);
        self.ever |= progress;
        self.idle = if progress { Duration::ZERO } else { self.idle + self.limits.header_timeout };
        let stalled = partial && self.partial_at_tick && !progress;
        self.partial_at_tick = partial && !stalled;
        let silent_start = !self.ever && !partial;
        stalled || silent_start || self.idle >= self.limits.idle_timeout
    }
}

/// Writes all of `out` to `stream`, unless the peer stops reading: the connection's tick goes on
/// while the write waits, and a write still stalled a whole period after the last progress closes
/// the connection (false). A client that sends requests and never reads the answers would
/// otherwise hold its connection open for ever.
pub(crate) async fn write_watched(
    stream: &mut tokio::net::TcpStream,
    out: &[u8],
    watch: &mut Watch,
    tick: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) -> bool {
    use tokio::io::AsyncWriteExt;
    let mut written = 0;
    while written < out.len() {
        tokio::select! {
            biased;
            r = stream.write(&out[written..]) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => written += n,
            },
            () = tick.as_mut() => {
                if watch.tick(true) {
                    return false;
                }
                let next = tokio::time::Instant::now() + watch.limits.header_timeout;
                tick.as_mut().reset(next);
            }
        }
    }
    true
}

/// Warns when the process may run out of file descriptors before these listeners reach their
/// bounds (the soft `RLIMIT_NOFILE` is often 1,024): then the bound protects nothing.
pub(crate) fn check_descriptors(wanted: usize) {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit into the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0
            && (r.rlim_cur as usize) < wanted * 2
        {
            tracing::warn!(
                soft_limit = r.rlim_cur,
                listener_connections = wanted,
                "routing: the open-file limit is less than twice what the routing listeners may hold; \
                 raise it (LimitNOFILE=) or lower [routing] max_connections"
            );
        }
    }
}

/// Lets several sockets bind one address and port, the kernel spreading what arrives over them
/// (Linux's `SO_REUSEPORT`): one socket per thread, no lock shared between them.
pub(crate) fn reuse_port(socket: &socket2::Socket) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from the pointer, which points at
        // `one`; the descriptor is the socket's own.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(unix))]
    let _ = socket;
    Ok(())
}

/// `n` TCP listeners on `addr`, one per thread (`SO_REUSEPORT` when more than one; with port 0,
/// all on the port the first got).
pub fn bind_tcp(addr: &str, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    if n <= 1 {
        return Ok(vec![std::net::TcpListener::bind(addr)?]);
    }
    use std::net::ToSocketAddrs;
    let mut at = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(at),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        reuse_port(&socket)?;
        socket.bind(&at.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        at = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_addresses_and_prefixes() {
        let n = Networks::parse(&["192.0.2.10", "10.1.0.0/23", "2001:db8::/32", " ::1 "]).unwrap();
        for (ip, want) in [
            ("192.0.2.10", true),
            ("192.0.2.11", false),
            ("10.1.1.200", true),
            ("10.1.2.1", false),
            ("2001:db8:1::5", true),
            ("2001:db9::1", false),
            ("::1", true),
            ("::ffff:192.0.2.10", true),
            ("127.0.0.1", false),
        ] {
            assert_eq!(n.contains(ip.parse().unwrap()), want, "{ip}");
        }
        assert!(Networks::parse(&["0.0.0.0/0"]).unwrap().contains("203.0.113.9".parse().unwrap()));
        assert!(!Networks::default().contains("127.0.0.1".parse().unwrap()), "empty trusts nobody");
        for bad in ["10.0.0.0/33", "example.com", "10.0.0/8", "::/129", "10.0.0.0/x"] {
            let e = Networks::parse(&[bad]).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_gate_bounds_connections_per_source_and_in_total_but_not_for_trusted_proxies() {
        let limits = Limits { max_connections: 3, max_per_source: 2, ..Limits::default() };
        let gate = Gate::new(limits, Networks::parse(&["192.0.2.1"]).unwrap(), "test");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = gate.admit(ip("198.51.100.1")).unwrap();
        let _a2 = gate.admit(ip("198.51.100.1")).unwrap();
        assert!(gate.admit(ip("198.51.100.1")).is_none(), "per source");
        let _b = gate.admit(ip("198.51.100.2")).unwrap();
        assert!(gate.admit(ip("198.51.100.3")).is_none(), "in total");
        let _t1 = gate.admit(ip("192.0.2.1")).expect("a trusted proxy is let in when full");
        let _t2 = gate.admit(ip("192.0.2.1")).unwrap();
        assert!(gate.admit(ip("192.0.2.1")).is_none(), "but not past its own per-source bound");
        drop(a1);
        assert!(gate.admit(ip("198.51.100.3")).is_some(), "a closed connection frees its place");
    }

    #[test]
    fn the_watch_closes_stalled_heads_silent_starts_and_idle_connections() {
        let limits = Limits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            ..Limits::default()
        };
        // Connected, sent nothing: closed at the first tick.
        assert!(Watch::new(limits).tick(false));
        // A head started and still incomplete a whole period later: closed at the second tick.
        let mut w = Watch::new(limits);
        assert!(!w.tick(true));
        assert!(w.tick(true));
        // Requests answered: kept; then idle for idle_timeout: closed.
        let mut w = Watch::new(limits);
        w.progress = true;
        assert!(!w.tick(false));
        w.progress = true;
        assert!(!w.tick(true), "a pipelined partial after answers is not a stall");
        assert!(!w.tick(false));
        assert!(!w.tick(false));
        assert!(w.tick(false), "15 s without a request");
    }
}
