//! TCP: connections held within the listener's bounds, messages framed by Content-Length and
//! answered on the connection they came on.

use super::message::{announced_length, find};
use super::{handle_into, Timers, MAX_MESSAGE};
use crate::listen::{write_watched, Gate, Limits, Watch};
use crate::Routing;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves TCP connections from `listener`: messages framed by Content-Length, answered on the
/// connection they came on. The listener's bounds are [`Limits::default`].
pub async fn serve_tcp(routing: Routing, listener: TcpListener) {
    serve_tcp_with(routing, listener, Limits::default()).await
}

/// [`serve_tcp`] with the listener's bounds: connections in total and per address (trusted proxies
/// are never turned away by the total), how long a message may take to arrive, and how long a
/// connection may idle.
pub async fn serve_tcp_with(routing: Routing, listener: TcpListener, limits: Limits) {
    let timers = std::sync::Arc::new(Timers::new());
    let gate = Gate::new(limits, routing.trusted_proxies().clone(), "sip_tcp");
    loop {
        match listener.accept().await {
            // Over the bounds: closed at once (SIP has no answer without a request to answer).
            Ok((stream, src)) => match gate.admit(src.ip()) {
                Some(permit) => {
                    let routing = routing.clone();
                    let timers = timers.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        tcp_connection(routing, stream, src, &timers, limits).await
                    });
                }
                None => drop(stream),
            },
            Err(e) => {
                tracing::warn!(error = %e, "sip tcp accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn tcp_connection(
    routing: Routing,
    mut stream: TcpStream,
    src: SocketAddr,
    timers: &Timers,
    limits: Limits,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut out = Vec::with_capacity(1024);
    let mut watch = Watch::new(limits);
    let tick = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(tick);
    // The first CRLF of a keep-alive ping came alone: a CRLF next completes it.
    let mut half_ping = false;
    loop {
        // Take every complete message (and keep-alive) buffered so far.
        loop {
            // RFC 5626 §4.4.1: CRLFCRLF is a ping, answered with a CRLF pong; a lone CRLF between
            // messages is ignored (RFC 3261 §7.5).
            if buf.starts_with(b"\r\n") && half_ping || buf.starts_with(b"\r\n\r\n") {
                buf.drain(..if half_ping { 2 } else { 4 });
                half_ping = false;
                watch.progress = true;
                if !write_watched(&mut stream, b"\r\n", &mut watch, &mut tick).await {
                    return;
                }
                continue;
            }
            if buf == b"\r\n" {
                // Ignored, but it may be the first half of a ping.
                buf.clear();
                half_ping = true;
                break;
            }
            if buf.starts_with(b"\r\n") {
                if buf == b"\r\n\r" {
                    break; // the rest of a ping is still to come
                }
                buf.drain(..2);
                continue;
            }
            if buf.is_empty() {
                break;
            }
            half_ping = false;
            let Some(end) = find(&buf, b"\r\n\r\n") else { break };
            // Content-Length frames the stream (RFC 3261 §18.3); when it cannot be read, or two
            // disagree, where the next message starts is lost: the message is answered (400) and
            // the connection closed.
            let framed = announced_length(&buf[..end]);
            let total = end + 4 + framed.unwrap_or(0);
            if total > MAX_MESSAGE {
                return; // a stream we cannot frame any more: close it
            }
            if framed.is_ok() && buf.len() < total {
                break;
            }
            let msg: Vec<u8> = buf.drain(..total).collect();
            // Any whole message counts (an ACK, a keep-alive), answered or not.
            watch.progress = true;
            let started = Instant::now();
            if handle_into(&routing, &msg, src, &mut out).is_some()
                && !write_watched(&mut stream, &out, &mut watch, &mut tick).await
            {
                return;
            }
            timers.record(&msg, started);
            if framed.is_err() {
                return;
            }
        }
        if buf.len() > MAX_MESSAGE {
            return;
        }
        tokio::select! {
            biased;
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            () = &mut tick => {
                // A message too slow to arrive, a connection that never sent one, or one idle too
                // long: closed.
                if watch.tick(!buf.is_empty()) {
                    return;
                }
                tick.as_mut().reset(tokio::time::Instant::now() + limits.header_timeout);
            }
        }
    }
}
