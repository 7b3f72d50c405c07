//! Keeping the snapshot current: a full load at start, then the `routing_changes` feed applied in
//! order whenever the store wakes us or the periodic check finds the generation moved.

use crate::snapshot::{e164_key, Snapshot};
use crate::Routing;
use domain::PhoneNumber;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use store::{DbError, Store};

/// Numbers read per page during a full load.
const LOAD_PAGE: i64 = 50_000;
/// Changes applied per round.
const CHANGE_PAGE: i64 = 20_000;
/// Changes kept in the feed; an instance further behind rebuilds from the numbers.
pub const KEEP_CHANGES: i64 = 1_000_000;
/// Pruning spares the changes of transactions that ended less than this long ago: a follower
/// watching such a transaction may not have read them yet.
const PRUNE_GRACE: Duration = Duration::from_secs(600);
/// How often the feed is checked for pruning (and a horizon for it sampled).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

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
    /// When the feed was last read.
    last_read: Instant,
    /// Pruning horizons sampled along the way, oldest first (PostgreSQL).
    horizons: VecDeque<(Instant, i64)>,
    /// This follower's name in `routing_instances`, where the reconciler reads how far it has got.
    instance: String,
    /// The generation last reported there, and when.
    reported: Option<(i64, Instant)>,
}

/// How often a follower whose generation has not moved still says where it is.
const REPORT_EVERY: Duration = Duration::from_secs(30);

impl Follower {
    pub fn new(store: Store, routing: Routing) -> Self {
        Self {
            store,
            routing,
            watched: Vec::new(),
            last_read: Instant::now(),
            horizons: VecDeque::new(),
            instance: instance_name(),
            reported: None,
        }
    }

    /// Records the generation this snapshot has applied in the database, when it moved or every
    /// [`REPORT_EVERY`]: the reconciler reports a follower left behind.
    async fn report(&mut self) -> Result<(), DbError> {
        let generation = self.routing.generation();
        if self.reported.is_some_and(|(g, at)| g == generation && at.elapsed() < REPORT_EVERY) {
            return Ok(());
        }
        let now = time::OffsetDateTime::now_utc();
        self.store.report_routing_instance(&self.instance, generation, now).await?;
        self.reported = Some((generation, Instant::now()));
        Ok(())
    }

    /// Rebuilds the snapshot from the database.
    pub async fn load(&mut self) -> Result<(), DbError> {
        let started = Instant::now();
        // The transactions open now may commit changes below `high` after the numbers are read:
        // they are watched from here on.
        let head = self.store.routing_feed_head().await?;
        let mut s = Snapshot::default();
        s.set_customers(self.store.routing_customers().await?, self.store.list_trunks().await?);
        let mut after = None;
        loop {
            let page = self.store.routing_numbers(after.as_ref(), LOAD_PAGE).await?;
            s.load(&page);
            match page.last() {
                Some(last) if page.len() as i64 == LOAD_PAGE => after = Some(last.e164.clone()),
                _ => break,
            }
        }
        s.finish_load();
        s.generation = head.high;
        let (n, bytes) = (s.len(), s.number_bytes());
        self.routing.replace(s);
        self.watched = head.open;
        self.last_read = Instant::now();
        self.routing.synced();
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
        Ok(())
    }

    /// Applies every change after the snapshot's generation, and every change of a watched
    /// transaction that has committed since; returns how many were applied.
    pub async fn catch_up(&mut self) -> Result<usize, DbError> {
        if !self.watched.is_empty() && self.last_read.elapsed() > PRUNE_GRACE / 2 {
            // Unable to read for so long that a watched transaction's changes may have been pruned
            // meanwhile (by another instance): rebuild rather than risk missing them.
            return Box::pin(self.load()).await.map(|_| 0);
        }
        let mut generation = self.routing.generation();
        let mut applied = 0;
        loop {
            let read = self.store.routing_feed(generation, CHANGE_PAGE, &self.watched).await?;
            self.last_read = Instant::now();
            if read.high < generation || (read.low > generation + 1 && read.high > generation) {
                // The feed was pruned past us (or the database was replaced): start over.
                return Box::pin(self.load()).await.map(|_| 0);
            }
            self.watched = read.open;
            if read.changes.is_empty() {
                break;
            }
            let last =
                read.changes[..read.newer].last().map_or(generation, |c| c.0).max(generation);
            self.apply(&read.changes, last).await?;
            applied += read.changes.len();
            generation = last;
            if (read.newer as i64) < CHANGE_PAGE {
                break;
            }
        }
        self.routing.synced();
        Ok(applied)
    }

    /// Keeps the feed to [`KEEP_CHANGES`], sparing changes of transactions that ended within
    /// [`PRUNE_GRACE`] (by a horizon sampled at least that long ago).
    async fn prune(&mut self) -> Result<(), DbError> {
        let head = self.store.routing_feed_head().await?;
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
            self.store.prune_routing_changes(head.high - KEEP_CHANGES, horizon).await?;
        }
        Ok(())
    }

    async fn apply(
        &mut self,
        changes: &[(i64, Option<PhoneNumber>)],
        generation: i64,
    ) -> Result<(), DbError> {
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
        let facts = self.store.routing_numbers_by_e164(&numbers).await?;
        {
            let s = self.routing.read();
            reload_customers |=
                facts.iter().any(|f| f.customer.is_some_and(|c| !s.knows_customer(c)));
        }
        let customers = if reload_customers {
            Some((self.store.routing_customers().await?, self.store.list_trunks().await?))
        } else {
            None
        };
        let by_key: HashMap<u64, &domain::routing::NumberFacts> =
            facts.iter().filter_map(|f| e164_key(f.e164.as_str()).map(|k| (k, f))).collect();
        let mut s = self.routing.write();
        if let Some((customers, trunks)) = customers {
            s.set_customers(customers, trunks);
        }
        for n in &numbers {
            if let Some(k) = e164_key(n.as_str()) {
                s.apply(k, by_key.get(&k).copied());
            }
        }
        s.generation = s.generation.max(generation);
        metrics::gauge!("peerex_routing_generation").set(s.generation as f64);
        Ok(())
    }

    /// Loads, then follows the feed until the process ends: woken by the store, and every `period`
    /// regardless. Errors are logged and retried; the snapshot keeps answering from what it has.
    pub async fn run(mut self, period: Duration) {
        while let Err(e) = self.load().await {
            tracing::error!(error = %e, "routing snapshot: cannot load; retrying");
            tokio::time::sleep(period).await;
        }
        let mut wake = self.store.routing_wake().await.ok();
        let mut last_prune = Instant::now();
        loop {
            match wake.as_mut() {
                Some(w) => tokio::select! {
                    r = w.changed() => if let Err(e) = r {
                        tracing::warn!(error = %e, "routing change feed lost; polling until it is back");
                        wake = None;
                    },
                    _ = tokio::time::sleep(period) => {}
                },
                None => {
                    tokio::time::sleep(period).await;
                    wake = self.store.routing_wake().await.ok();
                }
            }
            if let Err(e) = self.catch_up().await {
                tracing::error!(error = %e, "routing snapshot: cannot read changes");
            } else if let Err(e) = self.report().await {
                tracing::warn!(error = %e, "routing snapshot: cannot report its generation");
            }
            if last_prune.elapsed() > PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = self.prune().await {
                    tracing::warn!(error = %e, "routing change feed: cannot prune");
                }
            }
        }
    }
}

/// A name for this follower that no other process shares: the host, the process and a random part
/// (two followers in one process are two instances).
fn instance_name() -> String {
    let host =
        std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "peerex".into());
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[20..])
}
