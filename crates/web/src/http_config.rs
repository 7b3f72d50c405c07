//! `[http]` in peerex's configuration: the limits of the main listener, whose forwarded addresses
//! are believed, and who may read `/metrics`.

use crate::listener::Limits;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a whole request head (idle keep-alive connections included).
    pub header_read_timeout_seconds: u64,
    /// Seconds a request body may send nothing before the request is ended.
    pub body_idle_timeout_seconds: u64,
    /// Connections open at once on the listener; one more is closed at once.
    pub max_connections: usize,
    /// Connections open at once from one address (trusted proxies are exempt).
    pub max_connections_per_source: usize,
    /// Addresses of reverse proxies in front of peerex: their `X-Forwarded-For` names the client
    /// (for sign-in throttling), and their connections are not limited per source.
    pub trusted_proxies: Vec<String>,
    /// `/metrics` answers only `Authorization: Bearer <metrics_token>`; empty: `/metrics` is off.
    pub metrics_token: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            header_read_timeout_seconds: l.header_read_timeout.as_secs(),
            body_idle_timeout_seconds: l.body_idle_timeout.as_secs(),
            max_connections: l.max_connections,
            max_connections_per_source: l.max_connections_per_source,
            trusted_proxies: Vec::new(),
            metrics_token: String::new(),
        }
    }
}

pub const EXAMPLE: &str = r#"
# The portals' and the API's listener (see README, "Security").
[http]
# Seconds a client has to send a whole request head; idle keep-alive connections close after it.
header_read_timeout_seconds = 10
# Seconds a request body may send nothing before the request is ended.
body_idle_timeout_seconds = 30
# Connections open at once, and from one address (raised RLIMIT_NOFILE must hold them).
max_connections = 4096
max_connections_per_source = 128
# Reverse proxies in front of peerex, e.g. ["127.0.0.1"]: their X-Forwarded-For names the client.
trusted_proxies = []
# /metrics needs "Authorization: Bearer <metrics_token>"; empty turns /metrics off.
metrics_token = ""
"#;

/// Who a request may be believed to come from, and who may read `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub trusted_proxies: Vec<IpAddr>,
    pub metrics_token: Option<String>,
}

impl HttpConfig {
    /// The listener's limits; every bad setting is named.
    pub fn limits(&self) -> Result<Limits, String> {
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            return Err("http.header_read_timeout_seconds must be 1 to 300".into());
        }
        if !(1..=3600).contains(&self.body_idle_timeout_seconds) {
            return Err("http.body_idle_timeout_seconds must be 1 to 3600".into());
        }
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return Err(
                "http.max_connections and http.max_connections_per_source must be at least 1"
                    .into(),
            );
        }
        Ok(Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            body_idle_timeout: Duration::from_secs(self.body_idle_timeout_seconds),
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
            trusted_proxies: self.trusted()?,
        })
    }

    pub fn access(&self) -> Result<Access, String> {
        let token = self.metrics_token.trim();
        if !token.is_empty() && token.len() < 16 {
            return Err("http.metrics_token must have at least 16 characters".into());
        }
        Ok(Access {
            trusted_proxies: self.trusted()?,
            metrics_token: (!token.is_empty()).then(|| token.to_owned()),
        })
    }

    fn trusted(&self) -> Result<Vec<IpAddr>, String> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<IpAddr>()
                    .map(crate::listener::canonical)
                    .map_err(|_| format!("http.trusted_proxies: {s:?} is not an IP address"))
            })
            .collect()
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("header_read_timeout_seconds", &self.header_read_timeout_seconds)
            .field("body_idle_timeout_seconds", &self.body_idle_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_source", &self.max_connections_per_source)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &if self.metrics_token.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not a trusted proxy (the ones further left could be anything the
/// client wrote). `None` when the request did not come through [`crate::listener::serve`].
pub fn client_ip(parts: &axum::http::request::Parts, access: &Access) -> Option<IpAddr> {
    let peer = crate::listener::canonical(crate::listener::peer(parts)?.ip());
    if !access.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>().map(crate::listener::canonical))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !access.trusted_proxies.contains(ip))
            .copied()
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;

    fn parts(peer: &str, xff: &[&str]) -> axum::http::request::Parts {
        let mut b = axum::http::Request::builder();
        for v in xff {
            b = b.header("x-forwarded-for", *v);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        parts.extensions.insert(ConnectInfo(addr));
        parts
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let access =
            Access { trusted_proxies: vec!["10.0.0.1".parse().unwrap()], ..Default::default() };
        let ip = |p: &str, x: &[&str]| client_ip(&parts(p, x), &access).unwrap().to_string();
        // A client talking directly: its forwarded header is its own invention.
        assert_eq!(ip("192.0.2.7:5000", &["203.0.113.9"]), "192.0.2.7");
        // Through the proxy: the rightmost address the proxy did not add.
        assert_eq!(ip("10.0.0.1:5000", &["198.51.100.1, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(ip("10.0.0.1:5000", &["203.0.113.9, 10.0.0.1"]), "203.0.113.9");
        // A garbled header through the proxy: the proxy itself, never a guess.
        assert_eq!(ip("10.0.0.1:5000", &["not an address"]), "10.0.0.1");
        assert_eq!(ip("[::ffff:192.0.2.7]:5000", &[]), "192.0.2.7");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = HttpConfig { trusted_proxies: vec!["proxy.local".into()], ..Default::default() };
        assert!(bad.limits().unwrap_err().contains("http.trusted_proxies"));
        let bad = HttpConfig { metrics_token: "short".into(), ..Default::default() };
        assert!(bad.access().unwrap_err().contains("http.metrics_token"));
        let bad = HttpConfig { header_read_timeout_seconds: 0, ..Default::default() };
        assert!(bad.limits().unwrap_err().contains("header_read_timeout_seconds"));
    }
}
