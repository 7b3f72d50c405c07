//! What `bench sip` measures peerex's redirect server against besides Kamailio: the physical floor
//! (a bare `recvmmsg`/`sendmmsg` UDP echo, the least a server answering datagrams one by one can
//! cost on a core), and the load generator that drives the echo and peerex alike, either at a fixed
//! rate (sipp's rate, for the floor) or with a fixed number of requests outstanding (saturation).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Datagrams taken or sent by one system call.
const BATCH: usize = 32;
/// Largest datagram the echo and the generator read (SIP requests and answers here are < 1 KB).
const DATAGRAM: usize = 2048;

/// Receive headers, reused to send: after a receive each header holds the datagram's length and
/// its source, so pointing the header's buffer at that length and sending it echoes it.
/// The headers point into heap buffers that never grow or move once made.
pub struct Batch {
    bufs: Vec<[u8; DATAGRAM]>,
    names: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Batch {
    pub fn new() -> Self {
        // SAFETY: C structs of integers and pointers, valid as all zeros.
        let zeroed = || unsafe { std::mem::zeroed() };
        let mut b = Self {
            bufs: vec![[0u8; DATAGRAM]; BATCH],
            names: (0..BATCH).map(|_| zeroed()).collect(),
            iov: (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect(),
            hdrs: (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect(),
        };
        for i in 0..BATCH {
            b.iov[i] = libc::iovec { iov_base: b.bufs[i].as_mut_ptr().cast(), iov_len: DATAGRAM };
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut b.names[i]).cast();
            h.msg_iov = &raw mut b.iov[i];
            h.msg_iovlen = 1;
        }
        b
    }

    /// Up to [`BATCH`] datagrams: with `wait`, blocks for the first and takes what else is there;
    /// without, returns 0 at once when nothing is.
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> std::io::Result<usize> {
        for (h, iov) in self.hdrs.iter_mut().zip(&mut self.iov) {
            iov.iov_len = DATAGRAM;
            h.msg_len = 0;
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
        }
        let flags = if wait { libc::MSG_WAITFORONE } else { libc::MSG_DONTWAIT };
        // SAFETY: every header points at a live buffer and address of this struct, sized as
        // declared; the kernel writes at most that much.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
        }
        Ok(n as usize)
    }

    /// Sends each of the `n` datagrams last received back where it came from, as it came; how many
    /// the kernel took.
    pub fn echo(&mut self, fd: RawFd, n: usize) -> usize {
        for i in 0..n {
            self.iov[i].iov_len = self.hdrs[i].msg_len as usize;
        }
        send_all(fd, &mut self.hdrs[..n])
    }
}

/// `sendmmsg` until every header is sent or one is refused (skipped: UDP drops happen).
fn send_all(fd: RawFd, hdrs: &mut [libc::mmsghdr]) -> usize {
    let (mut from, mut sent) = (0, 0);
    while from < hdrs.len() {
        // SAFETY: the headers point at buffers and addresses that outlive the call.
        let r = unsafe {
            libc::sendmmsg(fd, hdrs[from..].as_mut_ptr(), (hdrs.len() - from) as libc::c_uint, 0)
        };
        if r <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            from += 1;
        } else {
            from += r as usize;
            sent += r as usize;
        }
    }
    sent
}

/// The echo server: every datagram sent straight back, batched as peerex's UDP loop batches, until
/// the process ends.
pub fn serve_echo(socket: &std::net::UdpSocket) -> std::io::Result<()> {
    socket.set_nonblocking(false)?;
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    loop {
        match batch.recv(fd, true) {
            Ok(n) => {
                batch.echo(fd, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// How the generator sends.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// This many requests a second, spread evenly (as sipp sends), whatever comes back.
    Rate(u64),
    /// This many requests outstanding on each socket: a new one for each answer (saturation).
    Window(usize),
}

/// What the generator saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Driven {
    pub sent: u64,
    pub answered: u64,
    pub seconds: f64,
}

impl Driven {
    pub fn per_second(&self) -> f64 {
        self.answered as f64 / self.seconds.max(1e-9)
    }
}

/// Requests due after `elapsed` at `rate` a second (an even spread from time zero).
pub fn due(elapsed: Duration, rate: u64) -> u64 {
    (elapsed.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}

/// An INVITE as sipp's scenario sends it (`reference/routing/sipp-redirect-uac.xml`), to `number`,
/// with `rport` so the answer comes back to the socket that sent it.
pub fn invite(target: SocketAddr, number: u64, i: usize) -> Vec<u8> {
    format!(
        "INVITE sip:+{number}@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-gen-{i};rport\r\n\
         From: <sip:+15559990000@127.0.0.1:5060>;tag=gen{i}\r\n\
         To: <sip:+{number}@{target}>\r\n\
         Call-ID: gen-{i}@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15559990000@127.0.0.1:5060>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Drives `target` for `seconds` from `sockets` sockets on a thread of its own pinned to `cpus`,
/// cycling through `requests`. Counts every datagram that comes back as an answer.
pub fn drive(
    target: SocketAddr,
    requests: Vec<Vec<u8>>,
    pace: Pace,
    sockets: usize,
    seconds: f64,
    cpus: Vec<usize>,
) -> anyhow::Result<Driven> {
    anyhow::ensure!(!requests.is_empty(), "no requests to send");
    let socks: Vec<std::net::UdpSocket> = (0..sockets.max(1))
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            s.connect(target)?;
            Ok(s)
        })
        .collect::<std::io::Result<_>>()?;
    std::thread::Builder::new()
        .name("bench-sip-generator".into())
        .spawn(move || {
            pin_this_thread(&cpus);
            generate(&socks, &requests, pace, Duration::from_secs_f64(seconds))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the generator panicked"))
}

fn generate(
    socks: &[std::net::UdpSocket],
    requests: &[Vec<u8>],
    pace: Pace,
    length: Duration,
) -> Driven {
    let mut out = Driven::default();
    let mut outstanding = vec![0usize; socks.len()];
    let mut batch = Batch::new();
    let mut next = 0usize;
    let t0 = Instant::now();
    let mut last_answer = t0;
    let mut send = |s: &std::net::UdpSocket, out: &mut Driven| {
        let ok = s.send(&requests[next % requests.len()]).is_ok();
        next += 1;
        out.sent += 1;
        ok
    };
    loop {
        let elapsed = t0.elapsed();
        if elapsed >= length {
            break;
        }
        match pace {
            Pace::Rate(rate) => {
                let target = due(elapsed, rate);
                while out.sent < target {
                    let i = out.sent as usize % socks.len();
                    send(&socks[i], &mut out);
                }
            }
            Pace::Window(w) => {
                // Answers lost (dropped by a full buffer): after 100 ms without any, refill.
                if last_answer.elapsed() > Duration::from_millis(100) {
                    outstanding.iter_mut().for_each(|o| *o = 0);
                    last_answer = Instant::now();
                }
                for (i, s) in socks.iter().enumerate() {
                    while outstanding[i] < w {
                        send(s, &mut out);
                        outstanding[i] += 1;
                    }
                }
            }
        }
        let mut got = 0;
        for (i, s) in socks.iter().enumerate() {
            while let Ok(n) = batch.recv(s.as_raw_fd(), false) {
                if n == 0 {
                    break;
                }
                got += n;
                outstanding[i] = outstanding[i].saturating_sub(n);
            }
        }
        if got > 0 {
            out.answered += got as u64;
            last_answer = Instant::now();
        } else if matches!(pace, Pace::Rate(_)) {
            // Sub-millisecond pacing, as sipp spreads its calls, rather than bursts once a
            // millisecond (which would let the server take ten at a time).
            std::thread::sleep(Duration::from_micros(20));
        } else {
            wait_readable(socks, 1);
        }
    }
    // Answers still in flight (a second at most: what is lost is lost).
    let end = Instant::now();
    while out.answered < out.sent && end.elapsed() < Duration::from_secs(1) {
        let mut got = 0;
        for s in socks {
            while let Ok(n) = batch.recv(s.as_raw_fd(), false) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        out.answered += got as u64;
        if got == 0 {
            wait_readable(socks, 20);
        }
    }
    out.seconds = length.as_secs_f64();
    out
}

fn wait_readable(socks: &[std::net::UdpSocket], ms: i32) {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    // SAFETY: `fds` is a live array of `fds.len()` pollfds.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

/// Keeps the calling thread on `cpus` (the load cores), as taskset does for sipp and wrk.
pub fn pin_this_thread(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cpus {
            libc::CPU_SET(*c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_sends_each_datagram_back_once_to_where_it_came_from() {
        let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let to = echo.local_addr().unwrap();
        for i in 0..3 {
            a.send_to(format!("a{i}").as_bytes(), to).unwrap();
        }
        b.send_to(b"b-longer-datagram", to).unwrap();
        let mut batch = Batch::new();
        let (mut received, mut echoed) = (0, 0);
        while received < 4 {
            let n = batch.recv(echo.as_raw_fd(), true).unwrap();
            received += n;
            echoed += batch.echo(echo.as_raw_fd(), n);
        }
        assert_eq!((received, echoed), (4, 4));
        let mut buf = [0u8; 64];
        for i in 0..3 {
            let n = a.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("a{i}").as_bytes());
        }
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"b-longer-datagram", "full length after shorter ones");
        // Nothing more: each datagram once.
        echo.set_nonblocking(true).unwrap();
        assert_eq!(batch.recv(echo.as_raw_fd(), false).unwrap(), 0);
        a.set_nonblocking(true).unwrap();
        assert!(a.recv(&mut buf).is_err());
    }

    #[test]
    fn requests_are_due_evenly_over_the_second() {
        assert_eq!(due(Duration::ZERO, 10_000), 0);
        assert_eq!(due(Duration::from_micros(99), 10_000), 0);
        assert_eq!(due(Duration::from_micros(100), 10_000), 1);
        assert_eq!(due(Duration::from_millis(1500), 10_000), 15_000);
    }

    #[test]
    fn the_generator_counts_answers_from_an_echo() {
        let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = echo.local_addr().unwrap();
        let server = std::thread::spawn(move || serve_echo(&echo));
        let requests = vec![invite(to, 15550000001, 0)];
        let d = drive(to, requests, Pace::Window(4), 2, 0.2, vec![]).unwrap();
        assert!(d.sent >= 8, "{d:?}");
        assert_eq!(d.answered, d.sent, "every request echoed and counted once");
        drop(server); // the echo runs until the test process ends
    }
}
