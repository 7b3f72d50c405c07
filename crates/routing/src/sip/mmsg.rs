//! Batched UDP with `recvmmsg`/`sendmmsg`: under load one system call takes every datagram waiting
//! (up to [`BATCH`]) and one sends every answer, instead of one call each.

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
            b.iov[i] =
                libc::iovec { iov_base: b.bufs[i].as_mut_ptr().cast(), iov_len: b.bufs[i].len() };
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
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
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
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
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
