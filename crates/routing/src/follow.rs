//! Keeping the snapshot current: a full load at start, then the `routing_changes` feed applied in
//! order whenever the store wakes us or the periodic check finds the generation moved.

use crate::snapshot::{e164_key, Snapshot};
use crate::Routing;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use store::{DbError, Store};

/// Numbers read per page during a full load.
const LOAD_PAGE: i64 = 50_000;
/// Changes applied per round.
const CHANGE_PAGE: i64 = 20_000;
/// Changes kept in the feed; an instance further behind rebuilds from the numbers.
pub const KEEP_CHANGES: i64 = 1_000_000;
/// How long a hole in the change ids is watched: on PostgreSQL a transaction that took a lower id
/// may commit after a higher one was seen.
const GAP_WATCH: Duration = Duration::from_secs(30);

pub struct Follower {
    store: Store,
    routing: Routing,
    gaps: Vec<(i64, Instant)>,
}

impl Follower {
    pub fn new(store: Store, routing: Routing) -> Self {
        Self { store, routing, gaps: Vec::new() }
    }

    /// Rebuilds the snapshot from the database.
    pub async fn load(&mut self) -> Result<(), DbError> {
        let started = Instant::now();
        let (_, high) = self.store.routing_generation().await?;
        let mut s = Snapshot::default();
        s.set_customers(self.store.routing_customers().await?, self.store.list_trunks().await?);
        let mut after = String::new();
        loop {
            let page = self.store.routing_numbers(&after, LOAD_PAGE).await?;
            s.load(&page);
            match page.last() {
                Some(last) if page.len() as i64 == LOAD_PAGE => after = last.e164.to_string(),
                _ => break,
            }
        }
        s.finish_load();
        s.generation = high;
        let (n, bytes) = (s.len(), s.number_bytes());
        self.routing.replace(s);
        self.gaps.clear();
        self.routing.synced();
        // Changes committed during the load have ids above `high`: the next catch-up applies them.
        self.catch_up().await?;
        tracing::info!(
            numbers = n,
            bytes,
            generation = high,
            took_ms = started.elapsed().as_millis() as u64,
            "routing snapshot loaded"
        );
        metrics::gauge!("peerex_routing_numbers").set(n as f64);
        Ok(())
    }

    /// Applies every change after the snapshot's generation; returns how many were applied.
    pub async fn catch_up(&mut self) -> Result<usize, DbError> {
        let (low, high) = self.store.routing_generation().await?;
        let mut generation = self.routing.generation();
        if high < generation || (low > generation + 1 && high > generation) {
            // The feed was pruned past us (or the database was replaced): start over.
            return Box::pin(self.load()).await.map(|_| 0);
        }
        let mut applied = 0;
        while high > generation || !self.gaps.is_empty() {
            let mut changes = self.store.routing_changes(generation, CHANGE_PAGE).await?;
            let gap_ids: Vec<i64> = self.gaps.iter().map(|g| g.0).collect();
            if !gap_ids.is_empty() {
                let found = self.store.routing_changes_by_id(&gap_ids).await?;
                self.gaps.retain(|(id, at)| {
                    !found.iter().any(|f| f.0 == *id) && at.elapsed() < GAP_WATCH
                });
                changes.extend(found);
            }
            if changes.is_empty() {
                break;
            }
            let mut last = generation;
            for (id, _) in &changes {
                if *id > last + 1 && *id > generation {
                    let now = Instant::now();
                    self.gaps.extend((last + 1..*id).take(1_000).map(|g| (g, now)));
                }
                last = last.max(*id);
            }
            self.apply(&changes, last).await?;
            applied += changes.len();
            generation = last;
            if (changes.len() as i64) < CHANGE_PAGE {
                break;
            }
        }
        self.routing.synced();
        Ok(applied)
    }

    async fn apply(
        &mut self,
        changes: &[(i64, Option<String>)],
        generation: i64,
    ) -> Result<(), DbError> {
        let mut numbers: HashSet<String> = HashSet::new();
        let mut reload_customers = false;
        for (_, e164) in changes {
            match e164 {
                Some(n) => {
                    numbers.insert(n.clone());
                }
                None => reload_customers = true,
            }
        }
        let numbers: Vec<String> = numbers.into_iter().collect();
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
            if let Some(k) = e164_key(n) {
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
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = Instant::now();
                if let Ok((low, high)) = self.store.routing_generation().await {
                    if high - low > KEEP_CHANGES {
                        let _ = self.store.prune_routing_changes(high - KEEP_CHANGES).await;
                    }
                }
            }
        }
    }
}
