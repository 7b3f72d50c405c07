//! Keeping the snapshot current: a full load at start, then the `routing_changes` feed applied in
//! order whenever the store wakes us or the periodic check finds the generation moved. With a
//! last-known-good file ([`crate::lkg`]) the snapshot is also kept on local disk, and answered
//! from at start while the database cannot be reached.

use crate::lkg;
use crate::snapshot::{e164_key, Snapshot};
use crate::Routing;
use domain::PhoneNumber;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store::{DbError, RoutingWake, Store};

/// Changes applied per round.
const CHANGE_PAGE: i64 = 20_000;
/// Changes kept in the feed; an instance further behind rebuilds from the numbers.
pub const KEEP_CHANGES: i64 = 1_000_000;
/// Pruning spares the changes of transactions that ended less than this long ago: a follower
/// watching such a transaction may not have read them yet.
const PRUNE_GRACE: Duration = Duration::from_secs(600);
/// How often the feed is checked for pruning (and a horizon for it sampled).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often LISTEN is tried again when there is none (a lost connection; a replica, where
/// LISTEN is refused and the feed is polled).
const LISTEN_AGAIN: Duration = Duration::from_secs(30);
/// How often "still cannot reach the database" is logged while it lasts.
const REPEAT_LOG: Duration = Duration::from_secs(60);

/// How a [`Follower`] behaves beyond following.
#[derive(Clone, Debug)]
pub struct Options {
    /// Write to the database followed: prune the feed to [`KEEP_CHANGES`]. Off for routing-only
    /// instances: they never write to the database they follow (it may be a read-only replica).
    /// (Where the generation applied is reported is [`crate::report`]'s.)
    pub writes: bool,
    /// The last-known-good file: read at start, written after each load and when the snapshot
    /// moved.
    pub file: Option<PathBuf>,
    /// At most one write of the file per this while the snapshot keeps moving; an unchanged
    /// snapshot is written again after ten of these (so the time it was last checked against the
    /// database, which the file records, stays close).
    pub write_every: Duration,
    /// The longest one database round trip may take before the database counts as unreachable.
    pub query_timeout: Duration,
    /// The database followed, as `store::database_identity` names it (empty: not known): the
    /// file records it, and a file recording another is refused at start.
    pub database: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            writes: true,
            file: None,
            write_every: Duration::from_secs(60),
            query_timeout: Duration::from_secs(10),
            database: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

/// Follows the `routing_changes` feed into a [`Routing`] snapshot.
///
/// Change ids are taken when a change is written, not when it commits: on PostgreSQL a transaction
/// can hold ids below those already read and commit after them (an app removal suspending 100,000
/// numbers while other changes commit). Rather than watching holes in the ids (unbounded, and
/// never sure when to give up on one), the follower watches the transactions that were open when it
/// read: each later read also asks for their changes at or below what it had read, and a
/// transaction stops being watched only once a read sees it ended, in the same snapshot that reads
/// its changes. So no change is skipped however large or late, and nothing is given up on a timer.
pub struct Follower {
    store: Store,
    routing: Routing,
    /// Transactions open at the last read (PostgreSQL; always empty on SQLite).
    watched: Vec<i64>,
    /// When the feed was last read and what it brought applied.
    last_read: Instant,
    /// Pruning horizons sampled along the way, oldest first (PostgreSQL).
    horizons: VecDeque<(Instant, i64)>,
    /// The last heartbeat read, and the time (wall clock, ms) the database was current as of
    /// when it was first seen: see [`Follower::current_as_of`].
    beat: Option<(time::OffsetDateTime, i64)>,
    /// A replica without a heartbeat was logged.
    no_beat_logged: bool,
    /// A replica's heartbeat standing still was logged (until it moves again).
    beat_still_logged: bool,
    options: Options,
    /// The last write of the file: when, and the generation written.
    written: Option<(Instant, i64)>,
    /// Since when the database cannot be reached, and when that was last logged.
    unreachable: Option<(Instant, Instant)>,
}

impl Follower {
    pub fn new(store: Store, routing: Routing) -> Self {
        Self::with_options(store, routing, Options::default())
    }

    pub fn with_options(store: Store, routing: Routing, options: Options) -> Self {
        Self {
            store,
            routing,
            watched: Vec::new(),
            last_read: Instant::now(),
            horizons: VecDeque::new(),
            beat: None,
            no_beat_logged: false,
            beat_still_logged: false,
            options,
            written: None,
            unreachable: None,
        }
    }

    /// One database round trip, given up after the query timeout.
    async fn db<T>(&self, f: impl Future<Output = Result<T, DbError>>) -> Result<T, FollowError> {
        match tokio::time::timeout(self.options.query_timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(FollowError::Timeout(self.options.query_timeout)),
        }
    }

    /// Reads how current the database is, before reading the feed (whatever that read shows is
    /// at least as new as the heartbeat read here). Returns the wall-clock time (ms) the snapshot
    /// will be current as of once the read that follows succeeds; `None` when that cannot be told.
    ///
    /// On a primary (and SQLite) it is now. On a replica it is when the last heartbeat was first
    /// seen: a replica cut off from its primary keeps answering, but its heartbeat stops moving, so
    /// the snapshot ages and turns stale as if the database could not be reached. The beat is
    /// measured by its progress as seen here (a new value: current now; the same value: as
    /// current as when it arrived), not by comparing the primary's clock with this site's: clocks
    /// of two sites disagree by however far their NTP drifted, and that error would go straight
    /// into the staleness, where a heartbeat that moves or does not is immune to it. Only the
    /// first beat an instance sees has no progress to go by; its age is then taken from the
    /// replica's clock against the primary's (so an instance started on a replica long cut off is
    /// stale at once), and any skew in that lasts only until the next beat arrives or fails to.
    async fn current_as_of(&mut self) -> Result<Option<i64>, FollowError> {
        let started = crate::now_ms();
        let h = match self.db(self.store.routing_heartbeat()).await {
            Ok(h) => h,
            Err(FollowError::Db(e)) if e.is_missing_table() || e.is_permission_denied() => {
                // A schema from before the heartbeat (the primary not yet upgraded), or a read-only
                // role not yet granted the table: answer as before it, rather than refuse every
                // outbound call at every site meanwhile.
                if !std::mem::replace(&mut self.no_beat_logged, true) {
                    tracing::error!(
                        error = %e,
                        "routing snapshot: cannot read the routing_heartbeat table (migrations \
                         older than this peerex, or no SELECT granted on it); a replica cut off \
                         from its primary is not detected until it can be read"
                    );
                }
                return Ok(Some(started));
            }
            Err(e) => return Err(e),
        };
        if !h.replica {
            self.beat = None;
            return Ok(Some(started));
        }
        let Some(at) = h.beat_at else {
            if !std::mem::replace(&mut self.no_beat_logged, true) {
                tracing::error!(
                    "routing snapshot: the database is a replica without a routing heartbeat; \
                     its snapshot counts as stale (outbound calls are refused) until one arrives"
                );
            }
            return Ok(None);
        };
        self.no_beat_logged = false;
        let behind = i64::try_from((h.now - at).whole_milliseconds()).unwrap_or(i64::MAX);
        let as_of = beat_as_of(self.beat.map(|(seen, as_of)| (seen == at, as_of)), behind, started);
        self.beat = Some((at, as_of));
        Ok(Some(as_of))
    }

    /// The snapshot has just been read from the database, which was current as of `as_of`.
    fn checked(&mut self, as_of: Option<i64>) {
        match as_of {
            Some(ms) => self.routing.synced_as_of(ms),
            None => self.routing.loaded_unchecked(),
        }
        if self.beat.is_none() {
            return;
        }
        let fresh = self.routing.is_fresh();
        if !fresh && !self.beat_still_logged {
            tracing::error!(
                age_s = self.routing.age_ms() / 1000,
                generation = self.routing.generation(),
                "routing snapshot: the replica answers but its heartbeat has stopped (cut off from \
                 its primary, or no `peerex serve` beats); inbound calls are answered from it, \
                 outbound calls are refused while it is stale"
            );
            self.beat_still_logged = true;
        } else if fresh && self.beat_still_logged {
            tracing::info!("routing snapshot: the replica's heartbeat moves again; current");
            self.beat_still_logged = false;
        }
    }

    /// Reads every routed number into `s`. The load is one long read (one statement on
    /// PostgreSQL), so the query timeout bounds the wait for each chunk, not the whole.
    async fn read_numbers(&self, s: &mut Snapshot) -> Result<(), FollowError> {
        let chunks = AtomicU64::new(0);
        let mut sink = |facts: &[domain::routing::NumberFacts]| {
            s.load(facts);
            chunks.fetch_add(1, Ordering::Relaxed);
        };
        let read = self.store.routing_numbers_each(&mut sink);
        tokio::pin!(read);
        let mut seen = 0;
        loop {
            tokio::select! {
                r = &mut read => return r.map(|_| ()).map_err(FollowError::from),
                _ = tokio::time::sleep(self.options.query_timeout) => {
                    let now = chunks.load(Ordering::Relaxed);
                    if now == seen {
                        return Err(FollowError::Timeout(self.options.query_timeout));
                    }
                    seen = now;
                }
            }
        }
    }

    /// Rebuilds the snapshot from the database.
    pub async fn load(&mut self) -> Result<(), FollowError> {
        let started = Instant::now();
        let as_of = self.current_as_of().await?;
        // The transactions open now may commit changes below `high` after the numbers are read:
        // they are watched from here on.
        let head = self.db(self.store.routing_feed_head()).await?;
        let mut s = Snapshot::default();
        let customers = self.db(self.store.routing_customers()).await?;
        s.set_customers(customers, self.db(self.store.list_trunks()).await?);
        self.read_numbers(&mut s).await?;
        s.finish_load();
        s.generation = head.high;
        let (n, bytes) = (s.len(), s.number_bytes());
        self.routing.replace(s);
        self.watched = head.open;
        self.last_read = Instant::now();
        self.checked(as_of);
        // Changes committed during the load have ids above `high`, or belong to a watched
        // transaction: the next catch-up applies them.
        self.catch_up().await?;
        tracing::info!(
            numbers = n,
            bytes,
            generation = head.high,
            took_ms = started.elapsed().as_millis() as u64,
            "routing snapshot loaded"
        );
        metrics::gauge!("peerex_routing_numbers").set(n as f64);
        self.written = None;
        self.write_file().await;
        Ok(())
    }

    /// Applies every change after the snapshot's generation, and every change of a watched
    /// transaction that has committed since; returns how many were applied.
    pub async fn catch_up(&mut self) -> Result<usize, FollowError> {
        if !self.watched.is_empty() && self.last_read.elapsed() > PRUNE_GRACE / 2 {
            // Unable to read for so long that a watched transaction's changes may have been pruned
            // meanwhile (by another instance): rebuild rather than risk missing them.
            return Box::pin(self.load()).await.map(|_| 0);
        }
        let as_of = self.current_as_of().await?;
        let mut generation = self.routing.generation();
        let mut applied = 0;
        loop {
            let read =
                self.db(self.store.routing_feed(generation, CHANGE_PAGE, &self.watched)).await?;
            if read.high < generation || (read.low > generation + 1 && read.high > generation) {
                // The feed was pruned past us (or the database was replaced): start over.
                return Box::pin(self.load()).await.map(|_| 0);
            }
            if read.changes.is_empty() {
                self.watched = read.open;
                self.last_read = Instant::now();
                break;
            }
            let last =
                read.changes[..read.newer].last().map_or(generation, |c| c.0).max(generation);
            self.apply(&read.changes, last).await?;
            // Only now may the transactions this read saw ended stop being watched: their changes
            // (below the generation) came in this read, and a failed apply must read them again.
            // Nor does a read count as one until applied: a follower whose applies keep failing
            // while it watches a transaction rebuilds before that transaction's changes may be
            // pruned (above).
            self.watched = read.open;
            self.last_read = Instant::now();
            applied += read.changes.len();
            generation = last;
            if (read.newer as i64) < CHANGE_PAGE {
                break;
            }
        }
        self.checked(as_of);
        Ok(applied)
    }

    /// Keeps the feed to [`KEEP_CHANGES`], sparing changes of transactions that ended within
    /// [`PRUNE_GRACE`] (by a horizon sampled at least that long ago).
    async fn prune(&mut self) -> Result<(), FollowError> {
        let head = self.db(self.store.routing_feed_head()).await?;
        let now = Instant::now();
        if let Some(h) = head.horizon {
            self.horizons.push_back((now, h));
        }
        // The newest sample at least PRUNE_GRACE old is the horizon; older ones are no longer needed.
        while self.horizons.get(1).is_some_and(|(at, _)| now.duration_since(*at) >= PRUNE_GRACE) {
            self.horizons.pop_front();
        }
        let horizon = self
            .horizons
            .front()
            .filter(|(at, _)| now.duration_since(*at) >= PRUNE_GRACE)
            .map(|(_, h)| *h);
        if head.high - head.low > KEEP_CHANGES {
            self.db(self.store.prune_routing_changes(head.high - KEEP_CHANGES, horizon)).await?;
        }
        Ok(())
    }

    async fn apply(
        &mut self,
        changes: &[(i64, Option<PhoneNumber>)],
        generation: i64,
    ) -> Result<(), FollowError> {
        let mut numbers: HashSet<PhoneNumber> = HashSet::new();
        let mut reload_customers = false;
        for (_, e164) in changes {
            match e164 {
                Some(n) => {
                    numbers.insert(n.clone());
                }
                None => reload_customers = true,
            }
        }
        let numbers: Vec<PhoneNumber> = numbers.into_iter().collect();
        let facts = self.db(self.store.routing_numbers_by_e164(&numbers)).await?;
        {
            let s = self.routing.read();
            reload_customers |=
                facts.iter().any(|f| f.customer.is_some_and(|c| !s.knows_customer(c)));
        }
        let customers = if reload_customers {
            Some((
                self.db(self.store.routing_customers()).await?,
                self.db(self.store.list_trunks()).await?,
            ))
        } else {
            None
        };
        let by_key: HashMap<u64, &domain::routing::NumberFacts> =
            facts.iter().filter_map(|f| e164_key(f.e164.as_str()).map(|k| (k, f))).collect();
        if let Some((customers, trunks)) = customers {
            // First: the numbers below may name a new customer.
            self.routing.write().set_customers(customers, trunks);
        }
        self.routing.apply_numbers(
            numbers
                .iter()
                .filter_map(|n| e164_key(n.as_str()))
                .map(|k| (k, by_key.get(&k).copied())),
        );
        // The generation moves once every change up to it is in.
        let mut s = self.routing.write();
        s.generation = s.generation.max(generation);
        metrics::gauge!("peerex_routing_generation").set(s.generation as f64);
        Ok(())
    }

    /// Writes the last-known-good file (off the async threads; the follower waits, so nothing
    /// changes the snapshot while it is read): after a load, when the snapshot moved and the last
    /// write is `write_every` old, and when it is ten of those old anyway. Only a snapshot
    /// checked against the database lately is written.
    async fn write_file(&mut self) {
        let Some(path) = self.options.file.clone() else { return };
        let generation = self.routing.generation();
        let due = match self.written {
            None => true,
            Some((at, g)) => {
                let age = at.elapsed();
                (g != generation && age >= self.options.write_every)
                    || age >= self.options.write_every * 10
            }
        };
        if !due || !self.routing.is_fresh() {
            return;
        }
        self.written = Some((Instant::now(), generation));
        let routing = self.routing.clone();
        let started = Instant::now();
        let synced_ms = crate::now_ms() - routing.age_ms();
        let database = self.options.database.clone();
        let wrote = tokio::task::spawn_blocking(move || {
            lkg::write(&path, &routing.read(), synced_ms, &database).map(|bytes| (path, bytes))
        })
        .await;
        // A write that fails is tried again `write_every` later, as for a snapshot that moved (no
        // generation is `i64::MIN`), not ten of those later.
        let failed = Some((Instant::now(), i64::MIN));
        match wrote {
            Ok(Ok((path, bytes))) => tracing::debug!(
                path = %path.display(),
                bytes,
                generation,
                took_ms = started.elapsed().as_millis() as u64,
                "routing: last-known-good snapshot written"
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "routing: cannot write the last-known-good snapshot");
                self.written = failed;
            }
            Err(e) => {
                tracing::warn!(error = %e, "routing: writing the last-known-good snapshot failed");
                self.written = failed;
            }
        }
    }

    /// At start, with a last-known-good file: answers from it at once (inbound calls; outbound
    /// ones only while it is fresh), unless it is missing, corrupt, of another format or written
    /// following another database. A load from the database replaces it as soon as the database
    /// answers.
    async fn restore(&mut self) {
        let Some(path) = self.options.file.clone() else { return };
        let read_path = path.clone();
        let database = self.options.database.clone();
        let started = Instant::now();
        let read = move || lkg::read_following(&read_path, &database);
        let saved = match tokio::task::spawn_blocking(read).await {
            Ok(Ok(s)) => s,
            Ok(Err(lkg::LkgError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::info!(path = %path.display(), "routing: no last-known-good snapshot yet");
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "routing: last-known-good snapshot refused");
                self.routing.refuse_file(e.to_string());
                return;
            }
            Err(_) => return,
        };
        tracing::warn!(
            path = %path.display(),
            generation = saved.snapshot.generation,
            numbers = saved.numbers,
            age_s = (crate::now_ms() - saved.synced_ms).max(0) / 1000,
            took_ms = started.elapsed().as_millis() as u64,
            "routing: answering from the last-known-good snapshot until the database answers"
        );
        self.routing.restored(saved.snapshot, saved.synced_ms);
    }

    fn failed(&mut self, what: &str, e: &FollowError) {
        let now = Instant::now();
        match &mut self.unreachable {
            None => {
                tracing::error!(
                    error = %e,
                    generation = self.routing.generation(),
                    "routing snapshot: {what}; inbound calls are answered from the snapshot held, \
                     outbound calls are refused once it is stale"
                );
                self.unreachable = Some((now, now));
            }
            Some((since, logged)) if now.duration_since(*logged) >= REPEAT_LOG => {
                tracing::warn!(
                    error = %e,
                    for_s = now.duration_since(*since).as_secs(),
                    age_s = self.routing.age_ms() / 1000,
                    "routing snapshot: still {what}"
                );
                *logged = now;
            }
            Some(_) => {}
        }
    }

    fn recovered(&mut self) {
        if let Some((since, _)) = self.unreachable.take() {
            tracing::info!(
                after_s = since.elapsed().as_secs(),
                generation = self.routing.generation(),
                "routing snapshot: the database answers again; caught up"
            );
        }
    }

    async fn wake(&self) -> Option<RoutingWake> {
        match tokio::time::timeout(self.options.query_timeout, self.store.routing_wake()).await {
            Ok(Ok(w)) => Some(w),
            _ => None,
        }
    }

    /// Loads (answering from the last-known-good file meanwhile, if there is one), then follows
    /// the feed until the process ends: woken by the store, and every `period` regardless. Errors
    /// are logged and retried; the snapshot keeps answering from what it has.
    pub async fn run(mut self, period: Duration) {
        self.restore().await;
        loop {
            match self.load().await {
                Ok(()) => break,
                Err(e) => self.failed("cannot load from the database", &e),
            }
            tokio::time::sleep(period).await;
        }
        self.recovered();
        let mut wake = self.wake().await;
        let mut last_listen = Instant::now();
        let mut last_prune = Instant::now();
        loop {
            match wake.as_mut() {
                Some(w) => tokio::select! {
                    r = w.changed() => if let Err(e) = r {
                        tracing::warn!(error = %e, "routing change feed lost; polling until it is back");
                        wake = None;
                        last_listen = Instant::now();
                    },
                    _ = tokio::time::sleep(period) => {}
                },
                None => {
                    tokio::time::sleep(period).await;
                    if last_listen.elapsed() >= LISTEN_AGAIN {
                        last_listen = Instant::now();
                        wake = self.wake().await;
                    }
                }
            }
            match self.catch_up().await {
                Ok(_) => self.recovered(),
                Err(e) => self.failed("cannot read changes", &e),
            }
            self.write_file().await;
            if self.options.writes && last_prune.elapsed() > PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = self.prune().await {
                    tracing::warn!(error = %e, "routing change feed: cannot prune");
                }
            }
        }
    }
}

/// How far two sites' clocks may disagree before a beat's age by the clocks counts against it.
const CLOCK_SKEW_ALLOWANCE_MS: i64 = 30_000;

/// When the snapshot read with a heartbeat was current, given what this follower saw before
/// (`previous`: whether the beat is the same as last time, and the moment that one counted as
/// current), how old the beat is by the replica's clock against the primary's (`behind_ms`), and
/// `now_ms`. The same beat: as current as when it arrived. A new one: current now, unless the clocks
/// say it is older than a skew allowance (a replica replaying far behind its primary: a new beat
/// arrives every few seconds, each of them old). The first one: by the clocks alone.
fn beat_as_of(previous: Option<(bool, i64)>, behind_ms: i64, now_ms: i64) -> i64 {
    let by_clocks = now_ms.saturating_sub(behind_ms.max(0));
    match previous {
        Some((true, as_of)) => as_of,
        Some((false, _)) => now_ms.min(by_clocks.saturating_add(CLOCK_SKEW_ALLOWANCE_MS)),
        None => by_clocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_counts_by_its_progress_and_a_replica_replaying_far_behind_by_the_clocks() {
        let now = 1_000_000;
        // The first beat: by the clocks.
        assert_eq!(beat_as_of(None, 5_000, now), now - 5_000);
        assert_eq!(beat_as_of(None, -2_000, now), now, "a beat from the future is now");
        // The same beat again: as current as when it arrived, however the clocks disagree.
        assert_eq!(beat_as_of(Some((true, now - 40_000)), 0, now), now - 40_000);
        // A new beat, within the skew allowance: current now (clocks of two sites differ).
        assert_eq!(beat_as_of(Some((false, now - 5_000)), 20_000, now), now);
        assert_eq!(beat_as_of(Some((false, now - 5_000)), -60_000, now), now);
        // A new beat an hour old (a replica applying changes an hour late): an hour, less the
        // allowance, old.
        let hour = 3_600_000;
        assert_eq!(
            beat_as_of(Some((false, now - 5_000)), hour, now + hour),
            now + CLOCK_SKEW_ALLOWANCE_MS
        );
    }
}
