//! What routing instances write to the primary database, beside following it: each follower's
//! position (the generation it serves, in `routing_instances`, which the reconciler compares with
//! the database's) and the heartbeat (`routing_heartbeat`) by which a follower on a read replica
//! tells a replica that still receives changes from one cut off from its primary.
//!
//! Both run in tasks of their own: a primary that cannot be reached (a routing-only instance
//! reports across the sites' link) never holds up following the database or answering calls.

use crate::Routing;
use std::time::{Duration, Instant};
use store::Store;

/// How often a follower whose generation has not moved still says where it is.
pub const REPORT_EVERY: Duration = Duration::from_secs(30);
/// How often "still cannot report" is logged while it lasts.
const REPEAT_LOG: Duration = Duration::from_secs(60);

/// Logs a failure when it starts, then once a [`REPEAT_LOG`] while it lasts, and when it ends.
struct Trouble {
    what: &'static str,
    since: Option<(Instant, Instant)>,
}

impl Trouble {
    fn new(what: &'static str) -> Self {
        Self { what, since: None }
    }

    fn failed(&mut self, e: &dyn std::fmt::Display) {
        let now = Instant::now();
        match &mut self.since {
            None => {
                tracing::warn!(error = %e, "routing: cannot {}", self.what);
                self.since = Some((now, now));
            }
            Some((since, logged)) if now.duration_since(*logged) >= REPEAT_LOG => {
                let for_s = now.duration_since(*since).as_secs();
                tracing::warn!(error = %e, for_s, "routing: still cannot {}", self.what);
                *logged = now;
            }
            Some(_) => {}
        }
    }

    fn ok(&mut self) {
        if let Some((since, _)) = self.since.take() {
            let after_s = since.elapsed().as_secs();
            tracing::info!(after_s, "routing: can {} again", self.what);
        }
    }
}

/// One beat: moves the heartbeat unless another writer did less than half an interval ago, so
/// any number of instances make about one to two beats an interval.
async fn beat_once(store: &Store, every: Duration, timeout: Duration) -> Result<bool, String> {
    let min_gap = i64::try_from(every.as_millis() / 2).unwrap_or(i64::MAX);
    match tokio::time::timeout(timeout, store.beat_routing_heartbeat(min_gap)).await {
        Ok(Ok(wrote)) => Ok(wrote),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the database did not answer within {timeout:?}")),
    }
}

/// Keeps the routing heartbeat in `store` (the primary) beating every `every` until the process
/// ends. Run by every `peerex serve`, routing or not: the routing instances on replicas count
/// their snapshots current only while some writer beats.
pub async fn heartbeat(store: Store, every: Duration) {
    if store.backend() == "sqlite" {
        // A single file has no replica to measure: nothing reads the beat.
        return;
    }
    let mut trouble = Trouble::new("beat the routing heartbeat");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match beat_once(&store, every, every.max(Duration::from_secs(1))).await {
            Ok(_) => trouble.ok(),
            Err(e) => trouble.failed(&e),
        }
    }
}

/// Reports the generation `routing` serves under `instance` to `store` when it moves (looked at
/// every `period`) and every [`REPORT_EVERY`] regardless; with `beat`, also keeps the heartbeat
/// beating that often. Runs until the process ends.
pub(crate) async fn report(
    store: Store,
    routing: Routing,
    instance: String,
    period: Duration,
    timeout: Duration,
    beat: Option<Duration>,
) {
    let mut reported: Option<(i64, Instant)> = None;
    let mut beaten: Option<Instant> = None;
    let mut report_trouble = Trouble::new("report the snapshot's generation");
    let mut beat_trouble = Trouble::new("beat the routing heartbeat");
    let mut tick = tokio::time::interval(period.min(beat.unwrap_or(period)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(every) = beat {
            if beaten.is_none_or(|at| at.elapsed() >= every) {
                beaten = Some(Instant::now());
                match beat_once(&store, every, timeout).await {
                    Ok(_) => beat_trouble.ok(),
                    Err(e) => beat_trouble.failed(&e),
                }
            }
        }
        if !routing.is_ready() {
            continue;
        }
        let generation = routing.generation();
        if reported.is_some_and(|(g, at)| g == generation && at.elapsed() < REPORT_EVERY) {
            continue;
        }
        let now = time::OffsetDateTime::now_utc();
        let wrote = tokio::time::timeout(
            timeout,
            store.report_routing_instance(&instance, generation, now),
        )
        .await;
        match wrote {
            Ok(Ok(())) => {
                report_trouble.ok();
                reported = Some((generation, Instant::now()));
            }
            Ok(Err(e)) => report_trouble.failed(&e),
            Err(_) => {
                report_trouble.failed(&format!("the database did not answer within {timeout:?}"))
            }
        }
    }
}

/// A name for a follower that no other process shares: the host, the process and a random part
/// (two followers in one process are two instances).
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "peerex".into());
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[20..])
}
