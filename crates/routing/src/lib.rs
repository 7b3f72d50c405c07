//! peerex's call routing at the carrier's SIP edge (issue 7; `reference/routing/REFERENCE.md`).
//!
//! [`Routing`] holds the in-memory [`snapshot::Snapshot`] derived from the database: loaded at
//! start, then kept current from the `routing_changes` feed (woken in-process on SQLite, by
//! LISTEN/NOTIFY on PostgreSQL) with a periodic generation check so that several instances
//! converge. Two front ends answer from it: the route-lookup HTTP API ([`http`]) and the stateless
//! SIP redirect server ([`sip`]). Depends on `domain` and `store`; never on `app` or `web`, so call
//! traffic shares nothing with portal traffic but the database.

pub mod follow;
pub mod http;
pub mod listen;
pub mod lkg;
pub mod report;
pub mod sip;
pub mod snapshot;
pub mod striped;

use domain::routing::EmergencyNumbers;
use domain::trunk::NumberingRule;
use snapshot::Snapshot;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long the snapshot may go, by default, without a successful check against the database
/// before outbound calls fail closed (503) rather than being decided on an old copy.
pub const STALE_AFTER_MS: i64 = 30_000;

/// Changes applied per hold of the snapshot's write lock (see [`Routing::apply_numbers`]): about
/// 100 ns each at 10 million numbers, so readers wait tens of microseconds at most.
pub const APPLY_CHUNK: usize = 256;

/// The shared routing state: the snapshot and whether it can be trusted.
#[derive(Clone)]
pub struct Routing {
    /// Read by every call on every core, written by the follower: see [`striped`].
    snapshot: Arc<striped::Striped<Snapshot>>,
    ready: Arc<AtomicBool>,
    last_sync_ms: Arc<AtomicI64>,
    /// How inbound Request-URIs without a `+` become E.164 when no trunk is named.
    pub numbering: Arc<NumberingRule>,
    /// The carrier's own proxies: the only sources believed when they say which Zoom trunk a call
    /// came over. Empty: nobody is.
    trusted: Arc<listen::Networks>,
    /// Outbound calls to these are let through whatever else is true.
    emergency: Arc<EmergencyNumbers>,
    emergency_calls: metrics::Counter,
    stale_after_ms: i64,
    /// Why the last-known-good file was not answered from at start, when it was refused.
    refused_file: Arc<std::sync::OnceLock<String>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Routing {
    pub fn new(numbering: NumberingRule) -> Self {
        Self {
            snapshot: Arc::default(),
            ready: Arc::default(),
            last_sync_ms: Arc::default(),
            numbering: Arc::new(numbering),
            trusted: Arc::default(),
            emergency: Arc::default(),
            emergency_calls: metrics::counter!("peerex_routing_emergency_calls_total"),
            stale_after_ms: STALE_AFTER_MS,
            refused_file: Arc::default(),
        }
    }

    /// Replaces the default emergency numbers with the carrier's list.
    pub fn with_emergency_numbers(mut self, list: EmergencyNumbers) -> Self {
        self.emergency = Arc::new(list);
        self
    }

    /// Whether an outbound call (Zoom to PSTN) dialling `to`, read by the numbering `rule` of the
    /// trunk it came over, is an emergency call. Such a call is never refused: not for its calling
    /// number, its customer's state or trunk, nor a copy of the database that is stale or still
    /// loading. Counted when it is.
    pub fn emergency_call(&self, to: &str, rule: &NumberingRule) -> Option<u64> {
        let found = self.emergency.dialled(to, rule);
        if found.is_some() {
            self.emergency_calls.increment(1);
        }
        found
    }

    /// How long the snapshot may go unchecked against the database before outbound calls fail
    /// closed and answers say it is stale.
    pub fn with_stale_after(mut self, after: std::time::Duration) -> Self {
        self.stale_after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Believes trunk assertions (SIP `X-Peerex-Trunk`, outbound lookups) from these sources only.
    pub fn with_trusted_proxies(mut self, trusted: listen::Networks) -> Self {
        self.trusted = Arc::new(trusted);
        self
    }

    /// Whether `ip` is one of the carrier's proxies, which alone may assert a call's Zoom trunk.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.contains(ip)
    }

    pub fn trusted_proxies(&self) -> &listen::Networks {
        &self.trusted
    }

    /// Routing over a snapshot built in memory, ready at once and never refreshed (fuzzing,
    /// benchmarks, tools): [`start`] is what follows the database.
    pub fn from_snapshot(numbering: NumberingRule, snapshot: Snapshot) -> Self {
        let r = Self::new(numbering);
        r.replace(snapshot);
        r.synced();
        r
    }

    /// The snapshot, for one decision. Hold the guard only as long as that takes.
    pub fn read(&self) -> striped::ReadGuard<'_, Snapshot> {
        self.snapshot.read()
    }

    pub(crate) fn write(&self) -> striped::WriteGuard<'_, Snapshot> {
        self.snapshot.write()
    }

    pub(crate) fn replace(&self, s: Snapshot) {
        // The old one is freed after the lock is let go: readers do not wait for that.
        let old = std::mem::replace(&mut *self.write(), s);
        drop(old);
    }

    /// Applies changed numbers (`None`: made available or gone), [`APPLY_CHUNK`] per hold of the
    /// write lock: readers wait for at most that many changes (and at most one shard rebuilt for
    /// each), never for the whole batch. Readers may see the first chunks before the last.
    pub fn apply_numbers<'a>(
        &self,
        changes: impl IntoIterator<Item = (u64, Option<&'a domain::routing::NumberFacts>)>,
    ) {
        let mut changes = changes.into_iter();
        let mut chunk = Vec::with_capacity(APPLY_CHUNK);
        loop {
            // Taken from the iterator before the lock, so whatever it computes, readers need not wait.
            chunk.extend(changes.by_ref().take(APPLY_CHUNK));
            if chunk.is_empty() {
                return;
            }
            let mut s = self.write();
            for (key, facts) in chunk.drain(..) {
                s.apply(key, facts);
            }
        }
    }

    /// Why the last-known-good file was refused at start (corrupt, of another format, written
    /// following another database), if it was: shown by `/healthz` until the database answers.
    pub fn refused_file(&self) -> Option<&str> {
        self.refused_file.get().map(String::as_str)
    }

    pub(crate) fn refuse_file(&self, why: String) {
        let _ = self.refused_file.set(why);
    }

    /// Loaded at least once: decisions can be made.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Checked against the database recently enough to trust for outbound calls.
    pub fn is_fresh(&self) -> bool {
        self.is_ready() && self.age_ms() < self.stale_after_ms
    }

    /// Milliseconds since the snapshot was last checked against the database (for a snapshot
    /// restored from the last-known-good file: since the file's copy was).
    pub fn age_ms(&self) -> i64 {
        (now_ms() - self.last_sync_ms.load(Ordering::Acquire)).max(0)
    }

    /// Whole seconds since the last check against the database when that is too long ago to
    /// trust for outbound calls: what answers show (inbound answered from the last-known-good
    /// copy); `None` while fresh or not loaded.
    pub fn stale_seconds(&self) -> Option<i64> {
        let age = self.age_ms();
        (self.is_ready() && age >= self.stale_after_ms).then_some(age / 1000)
    }

    /// Answers from a snapshot last checked against the database at `synced_ms` (wall clock),
    /// restored from the last-known-good file: inbound calls are decided from it, outbound calls
    /// only while that check is recent enough.
    pub(crate) fn restored(&self, s: Snapshot, synced_ms: i64) {
        self.replace(s);
        self.last_sync_ms.store(synced_ms.min(now_ms()), Ordering::Release);
        self.ready.store(true, Ordering::Release);
    }

    pub(crate) fn synced(&self) {
        self.synced_as_of(now_ms());
    }

    /// Loaded from a database whose contents are current as of `ms` (wall clock): a replica's are
    /// only as current as the last heartbeat that reached it.
    pub(crate) fn synced_as_of(&self, ms: i64) {
        self.last_sync_ms.store(ms.min(now_ms()), Ordering::Release);
        self.ready.store(true, Ordering::Release);
    }

    /// Loaded, from a database that cannot say how current it is (a replica without a
    /// heartbeat): decisions can be made, but the time of the last good check stays as it was.
    pub(crate) fn loaded_unchecked(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn generation(&self) -> i64 {
        self.read().generation
    }
}

/// `[routing]` in peerex's configuration. Each listener is off while its address is empty.
/// `Debug` (what `peerex config show` prints) hides the lookup secret and the primary's password.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Address of the route-lookup HTTP API, e.g. "127.0.0.1:8081".
    pub http_listen: String,
    /// Address of the SIP redirect server (UDP and TCP), e.g. "0.0.0.0:5060".
    pub sip_listen: String,
    /// When set, lookups must send `Authorization: Bearer <secret>`.
    pub http_secret: String,
    /// Addresses or networks (`192.0.2.10`, `10.1.0.0/24`, `2001:db8::/32`) of the carrier's own
    /// SIP proxies. Only from these does the redirect server believe `X-Peerex-Trunk` (which makes
    /// an INVITE an outbound call, Zoom to PSTN) and does the lookup API answer outbound lookups;
    /// from anyone else an INVITE carrying it gets 403 `untrusted_source` and an outbound lookup
    /// HTTP 403. Empty (the default): no outbound call is ever allowed.
    pub trusted_proxies: Vec<String>,
    /// Numbering for inbound Request-URIs without a `+` (a trunk's own rule wins when named).
    pub country_code: String,
    pub national_prefix: String,
    pub international_prefix: String,
    /// Seconds between generation checks (the change feed usually wakes the snapshot sooner).
    pub check_seconds: u64,
    /// The emergency numbers outbound calls to which are always let through, each `+` country code
    /// and short code (`+44999`). Empty (the default): peerex's list of the common codes (see
    /// `domain::routing::EmergencyNumbers`); a list given replaces it.
    pub emergency_numbers: Vec<String>,
    /// Most UDP datagrams a second read from one address by the redirect server; the rest are
    /// dropped unread so a flood from one address cannot crowd out calls. 0: no limit. Keep it
    /// above twice the calls a second of the busiest SBC (INVITE and ACK; on Linux the kernel
    /// drops ACKs before they are read, so they do not count there, but keep the margin).
    pub sip_source_limit: u32,
    /// Connections open at once on each TCP listener (the lookup API, SIP over TCP) from addresses
    /// that are not trusted proxies; more are closed as they arrive.
    pub max_connections: usize,
    /// Connections open at once on each TCP listener from one address.
    pub max_connections_per_source: usize,
    /// Seconds a TCP connection has to send a complete request (HTTP head, SIP message) after it
    /// opens or starts one; it is closed after one to two of these otherwise.
    pub header_timeout_seconds: u64,
    /// Seconds a TCP connection may go without a request before it is closed.
    pub idle_timeout_seconds: u64,
    /// Seconds the snapshot may go without a successful check against the database before
    /// outbound calls fail closed (503) and answers, metrics and `/healthz` say it is stale.
    /// Inbound calls are answered from it however old.
    pub stale_after_seconds: u64,
    /// Directory of the last-known-good snapshot (`routing-snapshot.bin`), written while the
    /// database is reachable and answered from when it is not, a restart included. Empty: none
    /// (`peerex route` then uses `data_dir`).
    pub state_dir: String,
    /// Seconds between writes of the last-known-good snapshot while it keeps changing.
    pub snapshot_write_seconds: u64,
    /// Seconds one database round trip may take before the database counts as unreachable
    /// (a network that silently drops packets would otherwise hold the follower for minutes).
    pub query_timeout_seconds: u64,
    /// Threads answering SIP over UDP, each on a socket of its own bound to `sip_listen` with
    /// `SO_REUSEPORT` (the kernel spreads senders over them by address and port). 0: one per core.
    pub sip_threads: usize,
    /// Threads serving the lookup API, each with a listener of its own on `http_listen`
    /// (`SO_REUSEPORT`). 0: one per core.
    pub http_threads: usize,
    /// Seconds between the heartbeats the writing side keeps in the database (`peerex serve`, and
    /// `peerex route` with `report_database_url`). A routing instance on a replica counts its
    /// snapshot current only as of the last beat that reached the replica, so keep this well
    /// below `stale_after_seconds` (less `check_seconds`).
    pub heartbeat_seconds: u64,
    /// `peerex route` only: the primary database (a role that may write `routing_instances` and
    /// `routing_heartbeat`), where the instance reports the generation it serves, so the reconciler
    /// compares it, and beats the heartbeat. Empty: the instance writes nowhere and the reconciler
    /// does not see it.
    pub report_database_url: String,
    /// This instance's name in `routing_instances` and in the reconciler's findings; unique per
    /// instance. Empty: the host name, the process id and a random part.
    pub instance_name: String,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            http_listen: String::new(),
            sip_listen: String::new(),
            http_secret: String::new(),
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
            check_seconds: 1,
            sip_source_limit: 50_000,
            trusted_proxies: Vec::new(),
            emergency_numbers: Vec::new(),
            max_connections: listen::Limits::default().max_connections,
            max_connections_per_source: listen::Limits::default().max_per_source,
            header_timeout_seconds: listen::Limits::default().header_timeout.as_secs(),
            idle_timeout_seconds: listen::Limits::default().idle_timeout.as_secs(),
            stale_after_seconds: (STALE_AFTER_MS / 1000) as u64,
            state_dir: String::new(),
            snapshot_write_seconds: 60,
            query_timeout_seconds: 10,
            sip_threads: 1,
            http_threads: 1,
            heartbeat_seconds: 5,
            report_database_url: String::new(),
            instance_name: String::new(),
        }
    }
}

impl std::fmt::Debug for RoutingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a setting added later cannot be left out (or printed unredacted) unseen.
        let RoutingConfig {
            http_listen,
            sip_listen,
            http_secret,
            trusted_proxies,
            country_code,
            national_prefix,
            international_prefix,
            check_seconds,
            emergency_numbers,
            sip_source_limit,
            max_connections,
            max_connections_per_source,
            header_timeout_seconds,
            idle_timeout_seconds,
            stale_after_seconds,
            state_dir,
            snapshot_write_seconds,
            query_timeout_seconds,
            sip_threads,
            http_threads,
            heartbeat_seconds,
            report_database_url,
            instance_name,
        } = self;
        f.debug_struct("RoutingConfig")
            .field("http_listen", http_listen)
            .field("sip_listen", sip_listen)
            .field("http_secret", &if http_secret.is_empty() { "" } else { "***" })
            .field("trusted_proxies", trusted_proxies)
            .field("country_code", country_code)
            .field("national_prefix", national_prefix)
            .field("international_prefix", international_prefix)
            .field("check_seconds", check_seconds)
            .field("emergency_numbers", emergency_numbers)
            .field("sip_source_limit", sip_source_limit)
            .field("max_connections", max_connections)
            .field("max_connections_per_source", max_connections_per_source)
            .field("header_timeout_seconds", header_timeout_seconds)
            .field("idle_timeout_seconds", idle_timeout_seconds)
            .field("stale_after_seconds", stale_after_seconds)
            .field("state_dir", state_dir)
            .field("snapshot_write_seconds", snapshot_write_seconds)
            .field("query_timeout_seconds", query_timeout_seconds)
            .field("sip_threads", sip_threads)
            .field("http_threads", http_threads)
            .field("heartbeat_seconds", heartbeat_seconds)
            .field("report_database_url", &store::redact_url(report_database_url))
            .field("instance_name", instance_name)
            .finish()
    }
}

impl RoutingConfig {
    pub fn enabled(&self) -> bool {
        !self.http_listen.is_empty() || !self.sip_listen.is_empty()
    }

    /// Threads for `n` (0: one per core).
    fn threads(n: usize) -> usize {
        match n {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The bounds on each TCP listener.
    pub fn limits(&self) -> listen::Limits {
        listen::Limits {
            max_connections: self.max_connections,
            max_per_source: self.max_connections_per_source.max(1),
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds.max(1)),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_seconds.max(1)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("routing: {0}")]
    Numbering(#[from] domain::trunk::TrunkError),
    #[error("routing: trusted_proxies: {0}")]
    Trusted(String),
    #[error("routing: {0}")]
    Emergency(#[from] domain::routing::EmergencyListError),
    #[error("routing: cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// What [`start`] bound.
#[derive(Clone)]
pub struct Started {
    pub routing: Routing,
    pub http: Option<std::net::SocketAddr>,
    pub sip: Option<std::net::SocketAddr>,
}

/// Renders the process's metrics in Prometheus' text format (the lookup API serves it as
/// `GET /metrics` on a routing-only instance, which has no other listener).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// How [`start_with`] runs beyond the configuration.
#[derive(Clone, Default)]
pub struct StartOptions {
    /// A routing-only instance (`peerex route`): never writes to the database (no pruning of the
    /// change feed), so it may follow a read-only replica.
    pub routing_only: bool,
    /// Serve `GET /metrics` on the lookup API.
    pub metrics: Option<RenderMetrics>,
    /// A routing-only instance's primary database ([`RoutingConfig::report_database_url`]): it
    /// reports its generation there, and beats the heartbeat. (An instance that may write reports
    /// to the database it follows.)
    pub report_to: Option<store::Store>,
    /// The database followed, as [`store::database_identity`] names its URL (empty: not known).
    /// The last-known-good file records it; a file written following another is refused.
    pub database: String,
}

/// Binds the configured listeners and spawns the snapshot follower and the servers.
pub async fn start(store: store::Store, config: &RoutingConfig) -> Result<Started, StartError> {
    start_with(store, config, StartOptions::default()).await
}

/// [`start`] with [`StartOptions`].
pub async fn start_with(
    store: store::Store,
    config: &RoutingConfig,
    options: StartOptions,
) -> Result<Started, StartError> {
    let numbering = NumberingRule::new(
        &config.country_code,
        &config.national_prefix,
        &config.international_prefix,
    )?;
    let trusted = listen::Networks::parse(&config.trusted_proxies).map_err(StartError::Trusted)?;
    let emergency = if config.emergency_numbers.is_empty() {
        EmergencyNumbers::default()
    } else {
        EmergencyNumbers::parse(&config.emergency_numbers)?
    };
    let routing = Routing::new(numbering)
        .with_trusted_proxies(trusted)
        .with_emergency_numbers(emergency)
        .with_stale_after(std::time::Duration::from_secs(config.stale_after_seconds.max(1)));
    let limits = config.limits();
    let listen_err = |addr: &str| {
        let addr = addr.to_owned();
        move |source| StartError::Listen { addr, source }
    };
    let mut started = Started { routing: routing.clone(), http: None, sip: None };
    if !config.http_listen.is_empty() {
        let threads = RoutingConfig::threads(config.http_threads);
        let listeners = listen::bind_tcp(&config.http_listen, threads)
            .map_err(listen_err(&config.http_listen))?;
        started.http = listeners.first().and_then(|l| l.local_addr().ok());
        let secret = Some(config.http_secret.clone()).filter(|s| !s.is_empty());
        // Threads of their own: lookups never queue behind portal or follower tasks.
        http::spawn_threads(routing.clone(), listeners, secret, limits, options.metrics.clone())
            .map_err(listen_err(&config.http_listen))?;
    }
    if !config.sip_listen.is_empty() {
        let threads = RoutingConfig::threads(config.sip_threads);
        let (udp, tcp, addr) =
            bind_sip(&config.sip_listen, threads).await.map_err(listen_err(&config.sip_listen))?;
        started.sip = Some(addr);
        for socket in udp {
            sip::spawn_udp(routing.clone(), socket, config.sip_source_limit)
                .map_err(listen_err(&config.sip_listen))?;
        }
        tokio::spawn(sip::serve_tcp_with(routing.clone(), tcp, limits));
    }
    let listeners = usize::from(started.http.is_some()) + usize::from(started.sip.is_some());
    listen::check_descriptors(listeners * limits.max_connections);
    let period = std::time::Duration::from_secs(config.check_seconds.max(1));
    let instance = match config.instance_name.trim() {
        "" => report::instance_name(),
        name => name.to_owned(),
    };
    let report_to =
        if options.routing_only { options.report_to.clone() } else { Some(store.clone()) };
    if let Some(primary) = report_to {
        // Beside the follower, so a primary that cannot be reached never holds up following the
        // replica. `peerex serve` beats from its own task, with or without routing.
        let beat = options
            .routing_only
            .then(|| std::time::Duration::from_secs(config.heartbeat_seconds.max(1)));
        tokio::spawn(report::report(
            primary,
            routing.clone(),
            instance,
            period,
            std::time::Duration::from_secs(config.query_timeout_seconds.max(1)),
            beat,
        ));
    }
    let follow = follow::Options {
        writes: !options.routing_only,
        file: Some(config.state_dir.trim())
            .filter(|d| !d.is_empty())
            .map(|d| std::path::Path::new(d).join(lkg::FILE_NAME)),
        write_every: std::time::Duration::from_secs(config.snapshot_write_seconds.max(1)),
        query_timeout: std::time::Duration::from_secs(config.query_timeout_seconds.max(1)),
        database: options.database.clone(),
    };
    tokio::spawn(follow::Follower::with_options(store, routing.clone(), follow).run(period));
    tokio::spawn(report_age(routing));
    tracing::info!(http = ?started.http, sip = ?started.sip, "call routing started");
    Ok(started)
}

/// Keeps the staleness gauges current, whatever the follower is waiting for.
async fn report_age(routing: Routing) {
    let age = metrics::gauge!("peerex_routing_snapshot_age_seconds");
    let stale = metrics::gauge!("peerex_routing_snapshot_stale");
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        if routing.is_ready() {
            age.set(routing.age_ms() as f64 / 1000.0);
            stale.set(if routing.is_fresh() { 0.0 } else { 1.0 });
        }
    }
}

/// The redirect server's UDP sockets (`threads` of them on one address) and, on the same port as
/// SIP peers expect, its TCP listener. With port 0 the port UDP got may be taken for TCP already
/// (other programs, parallel tests): then another port is tried.
async fn bind_sip(
    listen: &str,
    threads: usize,
) -> std::io::Result<(Vec<std::net::UdpSocket>, tokio::net::TcpListener, std::net::SocketAddr)> {
    let mut attempts = 0;
    loop {
        let udp = sip::bind_udp_shared(listen, threads)?;
        let addr = udp[0].local_addr()?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp, addr)),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && listen.ends_with(":0")
                    && attempts < 20 =>
            {
                attempts += 1
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the snapshot has loaded (for tests and `demo`).
pub async fn wait_ready(routing: &Routing, timeout: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + timeout;
    while !routing.is_ready() {
        if std::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::routing::NumberFacts;
    use domain::{NumberState, PhoneNumber};

    /// A large batch of changes lets readers in between its chunks: while the batch is still being
    /// produced, the lock is free and the chunks before are already seen.
    #[test]
    fn a_large_batch_of_changes_lets_readers_in_between_chunks() {
        let routing = Routing::from_snapshot(NumberingRule::nanp(), Snapshot::default());
        let active = NumberFacts {
            e164: PhoneNumber::from_trusted("+15550100000".into()),
            state: NumberState::Active,
            customer: None,
            reason: None,
        };
        let first = 15_550_100_000u64;
        let chunk = APPLY_CHUNK as u64;
        let changes = (0..10 * chunk).map(|i| {
            let s =
                routing.snapshot.try_read().expect("a reader gets in while changes are produced");
            if i >= chunk {
                let applied = first + (i / chunk - 1) * chunk;
                assert_eq!(s.number_state(applied), Some(NumberState::Active), "change {i}");
            }
            (first + i, Some(&active))
        });
        routing.apply_numbers(changes);
        assert_eq!(routing.read().len(), 10 * APPLY_CHUNK);
    }
}
