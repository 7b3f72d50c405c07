//! A TCP proxy a test can cut and open again: the network between a routing instance at a remote
//! site and its database. Cut, it closes every connection it carries and closes new ones as they
//! arrive (the port stays the proxy's, so the instance's configuration does not change); opened,
//! it carries new connections to the same place again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// The connections being carried.
    carried: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port to `upstream`, open.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("testkit: proxy bind");
        let addr = listener.local_addr().expect("testkit: proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let carried: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (open, carried) = (open.clone(), carried.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::Acquire) {
                        continue; // dropped: closed at once
                    }
                    let carry = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut c = carried.lock().unwrap_or_else(|e| e.into_inner());
                    c.retain(|t| !t.is_finished());
                    c.push(carry);
                }
            })
        };
        Proxy { addr, open, carried, accept }
    }

    /// A proxy, open, in front of the PostgreSQL server `url` names (a Unix socket's server
    /// through its TCP port on loopback), and `url` with the proxy in its place.
    pub async fn in_front_of(url: &str) -> (Proxy, String) {
        let opts: sqlx::postgres::PgConnectOptions =
            url.parse().expect("testkit: a PostgreSQL URL");
        let host = if opts.get_host().starts_with('/') { "127.0.0.1" } else { opts.get_host() };
        let upstream = tokio::net::lookup_host((host, opts.get_port()))
            .await
            .expect("testkit: the PostgreSQL host")
            .next()
            .expect("testkit: an address for the PostgreSQL host");
        let proxy = Proxy::start(upstream).await;
        let through = proxy.url_through(url);
        (proxy, through)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (`postgres://user@host:port/db?...`) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("testkit: a URL with a scheme");
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (format!("{u}@"), r),
            None => (String::new(), rest),
        };
        let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        format!("{scheme}://{userinfo}{}{path}", self.addr)
    }

    /// Closes every connection carried and every new one, until [`Proxy::open`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::Release);
        for t in self.carried.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }

    /// Carries new connections again.
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
