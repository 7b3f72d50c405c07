//! The stateless SIP redirect server (RFC 3261 §8.3, §16.11 for statelessness): an INVITE gets 302
//! with the customer's Zoom trunk in Contact, or 404 / 480 / 403 with `Reason` and `Warning`.
//! Nothing is kept per call: a retransmitted INVITE gets the same bytes (the To-tag is derived from
//! Call-ID and the Via branch), ACK is absorbed (over UDP on Linux by the kernel, before the
//! socket: `udp::drop_acks`), CANCEL finds no transaction (481), OPTIONS gets
//! 200 so SBC keep-alives work, other methods 405 (known) or 501 (unknown) with `Allow`; before
//! that a request is checked as a UAS must (RFC 3261 §8.2: 505, 416, 420, 415). Responses go where
//! the top Via says, with `received`/`rport` (RFC 3581). The parser reads RFC 3261's grammar
//! (folding, compact forms, tokens) and passes RFC 4475's torture tests; anything malformed gets 400
//! naming what is wrong when it can be answered at all, and silence when it cannot (no usable Via);
//! it never panics (see fuzz/).
//!
//! By job: [`message`] reads a request, [`reply`] decides and writes the answer, `udp` and `tcp`
//! carry them (with `mmsg` batching UDP's system calls on Linux).

mod message;
#[cfg(target_os = "linux")]
mod mmsg;
mod reply;
mod tcp;
#[cfg(test)]
mod tests;
mod udp;

pub use message::{parse, reply_to, Malformed, Request};
pub use reply::{contact_uri, handle, handle_into, is_expected_answer};
pub use tcp::{serve_tcp, serve_tcp_with};
pub use udp::{
    answers_options, bind_udp, bind_udp_shared, spawn_udp, SourceLimit, UDP_RECEIVE_BUFFER,
};

use std::time::Instant;

/// Largest message accepted over TCP (and by [`handle`]); bigger ones are refused.
pub const MAX_MESSAGE: usize = 65_535;
/// Largest datagram read over UDP. RFC 3261 §18.1.1 sends requests over 1300 bytes by TCP, so real
/// ones are far smaller; a bigger datagram is read only this far and dropped as truncated, which
/// keeps a flood of 64 KB datagrams from costing a full copy and scan each (and from crowding out
/// calls).
pub const MAX_UDP_MESSAGE: usize = 16_384;

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
