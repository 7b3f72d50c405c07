//! What the routing snapshot reads (issue 7), and how it hears of changes: an in-process wake on
//! SQLite, LISTEN/NOTIFY on PostgreSQL. The periodic generation check in `routing` covers anything
//! either misses (another process writing to the SQLite file, a dropped LISTEN connection).

use crate::{DbError, Result, Store};
use domain::routing::{FeedRead, Heartbeat, NumberFacts, RoutingCustomer};
use domain::{CustomerId, NumberState, PhoneNumber};

/// Wakes when the routing feed may have grown.
pub enum RoutingWake {
    Sqlite(tokio::sync::watch::Receiver<u64>),
    Postgres(sqlx::postgres::PgListener),
}

impl RoutingWake {
    /// Waits for the next wake. An error means the feed is gone (a lost connection): fall back to
    /// the periodic check and listen again.
    pub async fn changed(&mut self) -> Result<()> {
        match self {
            RoutingWake::Sqlite(rx) => {
                rx.changed().await.map_err(|_| DbError::Other(sqlx::Error::PoolClosed))
            }
            RoutingWake::Postgres(l) => l.recv().await.map(|_| ()).map_err(DbError::from),
        }
    }
}

impl Store {
    forward! {
        /// Every number that is not `available` (in no set order), handed to `sink` in chunks as
        /// they are read; returns how many. PostgreSQL reads them in one statement, so from one
        /// snapshot; SQLite in pages of E.164 order. Changes committed meanwhile are the routing
        /// feed's to tell (see [`FeedRead`]).
        pub async fn routing_numbers_each(
            &self,
            sink: &mut (dyn FnMut(&[NumberFacts]) + Send),
        ) -> Result<u64>;

        pub async fn routing_numbers_by_e164(
            &self,
            e164s: &[PhoneNumber],
        ) -> Result<Vec<NumberFacts>>;

        /// Every customer with its trunk and whether it removed the app in Zoom.
        pub async fn routing_customers(&self) -> Result<Vec<RoutingCustomer>>;

        /// Where the feed stands: its bounds and the transactions open now (see [`FeedRead`]).
        pub async fn routing_feed_head(&self) -> Result<FeedRead>;

        /// The changes after `after` (at most `limit`), and those of the `watched` transactions
        /// that have committed since they were seen open, from one snapshot (see [`FeedRead`]).
        pub async fn routing_feed(
            &self,
            after: i64,
            limit: i64,
            watched: &[i64],
        ) -> Result<FeedRead>;

        /// Whether this database is a replica, the routing heartbeat as it has reached it (read
        /// before the feed, a follower on a replica knows its reads are at least that current), and
        /// the database's clock.
        pub async fn routing_heartbeat(&self) -> Result<Heartbeat>;

        /// Moves the routing heartbeat to the database's now unless a beat younger than
        /// `min_gap_ms` is there (so several writers make one beat); true when this call wrote. On
        /// the primary only: a replica refuses writes.
        pub async fn beat_routing_heartbeat(&self, min_gap_ms: i64) -> Result<bool>;

        /// Forgets changes up to `upto`, sparing those of transactions from `horizon` on.
        pub async fn prune_routing_changes(&self, upto: i64, horizon: Option<i64>) -> Result<u64>;
    }

    pub async fn routing_wake(&self) -> Result<RoutingWake> {
        match self {
            Store::Sqlite(_) => Ok(RoutingWake::Sqlite(store_sqlite::routing_wake())),
            Store::Postgres(p) => Ok(RoutingWake::Postgres(p.routing_listener().await?)),
        }
    }

    forward! {
        /// Test and benchmark support: sets a number's state and customer directly (no state
        /// machine, no audit trail).
        pub async fn force_number_state(
            &self,
            e164: &PhoneNumber,
            state: NumberState,
            customer: Option<CustomerId>,
        ) -> Result<bool>;
    }
}
