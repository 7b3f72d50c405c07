//! UDP: the redirect server's socket and the thread that answers it, with a per-address limit so
//! one flooding address cannot crowd calls out of the socket buffer.

use super::{handle_into, Timers};
use crate::Routing;
use std::net::IpAddr;
use std::time::Instant;

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

/// `n` UDP sockets bound to `addr` with `SO_REUSEPORT`, one per thread that answers SIP (the
/// kernel spreads senders over them by address and port, so each keeps its own order); with port
/// 0, all on the port the first got. One socket is [`bind_udp`].
pub fn bind_udp_shared(addr: &str, n: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    if n <= 1 {
        return Ok(vec![bind_udp(addr)?]);
    }
    use std::net::ToSocketAddrs;
    let mut at = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(at),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
        crate::listen::reuse_port(&socket)?;
        socket.bind(&at.into())?;
        let socket: std::net::UdpSocket = socket.into();
        at = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
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
    #[cfg(target_os = "linux")]
    if let Err(e) = drop_acks(&socket) {
        // Only a saving: the loop absorbs ACKs itself.
        tracing::warn!(
            error = %e,
            "sip udp: the kernel cannot drop ACKs before the socket; they are read and absorbed"
        );
    }
    std::thread::Builder::new()
        .name("peerex-sip-udp".into())
        .spawn(move || udp_loop(&routing, &socket, per_source))
}

/// Has the kernel drop every ACK before it reaches `socket` (a classic BPF socket filter,
/// `SO_ATTACH_FILTER`). Why: nothing ever answers an ACK (RFC 3261 §17.2.1), and a redirect server
/// answers no INVITE with 2xx, so [`handle_into`] absorbs every datagram starting `ACK ` unread;
/// they are half of what SBCs send it (one per 3xx/4xx). Dropped at the socket, they are never
/// queued, so they neither wake the thread nor are copied out (the filter runs in the kernel's
/// receive processing: the sender's context on loopback, the network's softirq otherwise). The
/// kernel counts them as the socket's drops (`/proc/net/udp`) and in `Udp: InErrors`; a full
/// buffer shows in `RcvbufErrors`. The filter drops exactly what `handle_into` absorbs without parsing: a
/// datagram whose payload starts with the four bytes `ACK `; anything shorter than four bytes is
/// kept and handled as before.
#[cfg(target_os = "linux")]
pub fn drop_acks(socket: &std::net::UdpSocket) -> std::io::Result<()> {
    use socket2::SockFilter;
    // The kernel filters a UDP datagram from its UDP header: the payload starts at offset 8, and
    // the length is the header's and the payload's.
    const PAYLOAD: u32 = 8;
    const ACK: u32 = u32::from_be_bytes(*b"ACK ");
    const fn op(code: u32) -> u16 {
        code as u16
    }
    let program = [
        // 0: A = length
        SockFilter::new(op(libc::BPF_LD | libc::BPF_W | libc::BPF_LEN), 0, 0, 0),
        // 1: at least four bytes of payload? to 2, else to 5 (keep)
        SockFilter::new(op(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K), 0, 3, PAYLOAD + 4),
        // 2: A = the payload's first four bytes (big-endian)
        SockFilter::new(op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS), 0, 0, PAYLOAD),
        // 3: "ACK "? to 4 (drop), else to 5 (keep)
        SockFilter::new(op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K), 0, 1, ACK),
        // 4: drop
        SockFilter::new(op(libc::BPF_RET | libc::BPF_K), 0, 0, 0),
        // 5: keep all of it
        SockFilter::new(op(libc::BPF_RET | libc::BPF_K), 0, 0, u32::MAX),
    ];
    socket2::SockRef::from(socket).attach_filter(&program)
}

/// At most `per_second` datagrams a second are read from one address; the rest are dropped unread.
/// Why: when datagrams come faster than they are answered, the kernel drops whatever no longer fits
/// in the socket buffer, calls included. Dropping a flood unread costs next to nothing, so one
/// address flooding (OPTIONS storms, scanners) cannot crowd out everyone else. Set it above what
/// the busiest SBC sends (two datagrams a call: INVITE and ACK, though on Linux ACKs are dropped
/// by [`drop_acks`] before they are read and never reach this count).
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
    let mut batch = super::mmsg::Batch::new();
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
    use super::MAX_UDP_MESSAGE;
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
