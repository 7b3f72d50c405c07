//! The HTTP listener of the portals, the API, the OAuth callback and the webhooks.
//!
//! `axum::serve` accepts every connection and waits for a request head forever, so anyone who opens
//! connections and sends nothing holds one file descriptor each until the process has none left
//! (then every listener of the process stops accepting). This loop bounds all of it:
//!
//! - a request head must arrive whole within `header_read_timeout` (idle keep-alive connections
//!   included), else the connection is closed;
//! - a request body must keep moving: a body that sends nothing for `body_idle_timeout` ends the
//!   request (a large upload that progresses is never cut);
//! - at most `max_connections` connections at once; one more is closed at once;
//! - at most `max_connections_per_source` from one address, so one address cannot take the whole
//!   listener (addresses in `trusted_proxies` are exempt: every client behind them shares it).
//!
//! Each request carries its peer address as [`axum::extract::ConnectInfo`].

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// What one listener allows. [`Limits::default`] is what `peerex serve` uses unless configured.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    /// Peers whose connections are not limited per source (a reverse proxy in front of peerex).
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_source: 128,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long requests in flight may take to finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets requests in
/// flight finish (for up to 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = Sources::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused("listener_full");
            continue;
        };
        let source = canonical(peer.ip());
        let held = if limits.trusted_proxies.contains(&source) {
            None
        } else {
            match sources.take(source, limits.max_connections_per_source) {
                Some(held) => Some(held),
                None => {
                    refused("source_full");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let limits = limits.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let idle = limits.body_idle_timeout;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let req: Request = req.map(|b| idle_limited(Body::new(b), idle));
                router.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(64 * 1024);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                }
            }
            drop(held);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
    Ok(())
}

fn refused(reason: &'static str) {
    metrics::counter!("peerex_http_connections_refused_total", "reason" => reason).increment(1);
}

/// IPv4 peers of a dual-stack socket arrive as `::ffff:a.b.c.d`; count them as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// An accept error is either the peer's (reset before we took it: nothing to do) or ours (out of
/// file descriptors: wait a little instead of spinning, as connections end and free some).
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Connections open per source address.
#[derive(Clone, Default)]
struct Sources(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Held {
    sources: Sources,
    ip: IpAddr,
}

impl Sources {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Held> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Held { sources: self.clone(), ip })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A body that fails when no data arrives for `idle`: a sender that trickles nothing cannot hold
/// a request (and its handler) open.
fn idle_limited(body: Body, idle: Duration) -> Body {
    use futures_util::StreamExt;
    let stream = body.into_data_stream();
    let limited = futures_util::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyIdle)), None)),
        }
    });
    Body::from_stream(limited)
}

#[derive(Debug)]
struct BodyIdle;

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body stopped arriving")
    }
}

impl std::error::Error for BodyIdle {}

/// The peer address of a request served by [`serve`]; `None` when served otherwise.
pub fn peer(req: &axum::http::request::Parts) -> Option<SocketAddr> {
    req.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
