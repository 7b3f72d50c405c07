//! The database facade the rest of peerex uses: `Store` is an enum over the two dialects, each
//! method dispatching to the dialect crate that holds the SQL. Errors leave here as [`DbError`], with
//! a unique violation named by its constraint so the edges can say which field clashed.
//!
//! Depends on `domain` and the dialect crates only; knows nothing of HTTP or Zoom.

use domain::auth::{ApiToken, Session, User};
use domain::customer::{ContractState, Customer, Order, OrderError, OrderPick};
use domain::search::NumberQuery;
use domain::{
    Actor, CustomerId, Number, NumberEvent, NumberId, NumberState, OrderId, PhoneNumber, UserId,
};
use std::collections::HashSet;
use store_postgres::PgStore;
use store_sqlite::SqliteStore;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write; `constraint` names it (e.g. `users_email_key`).
    #[error("already exists ({constraint})")]
    Conflict { constraint: String },
    /// The database cannot be reached or is overloaded: worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict {
                constraint: db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| unique_from_message(db.message())),
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                DbError::Unavailable(e)
            }
            // Still aborted after the retries of `dispatch!`: busy, worth trying again later.
            _ if transient(&e) => DbError::Unavailable(e),
            _ => DbError::Other(e),
        }
    }
}

impl DbError {
    /// The statement named a table the database does not have: a schema older than this peerex
    /// (its migrations not yet run there, as on a replica of a primary not yet upgraded).
    pub fn is_missing_table(&self) -> bool {
        self.sql_state("42P01") || self.message_starts("no such table")
    }

    /// The database refused the statement for lack of a privilege (PostgreSQL's 42501: a
    /// read-only role not granted a table added since it was set up).
    pub fn is_permission_denied(&self) -> bool {
        self.sql_state("42501")
    }

    fn sql_state(&self, code: &str) -> bool {
        matches!(self, DbError::Other(sqlx::Error::Database(db)) if db.code().as_deref() == Some(code))
    }

    fn message_starts(&self, prefix: &str) -> bool {
        matches!(self, DbError::Other(sqlx::Error::Database(db)) if db.message().starts_with(prefix))
    }
}

/// SQLite names no constraint in its error, only "UNIQUE constraint failed: table.column"; map the
/// columns back to the constraint names the PostgreSQL schema uses, so callers handle one name.
fn unique_from_message(message: &str) -> String {
    let cols = message.rsplit(": ").next().unwrap_or_default();
    match cols {
        "numbers.e164" => "numbers_e164_key",
        "users.email" => "users_email_key",
        "customers.contract_ref" => "customers_contract_ref_key",
        "api_tokens.token_hash" => "api_tokens_token_hash_key",
        "zoom_links.zoom_account_id" => "zoom_links_account_live",
        "zoom_links.customer_id" => "zoom_links_customer_live",
        "zoom_trunks.name" => "zoom_trunks_pkey",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::ProgressOnce;
    use std::sync::Mutex;

    #[test]
    fn a_retried_operation_reports_each_row_once() {
        let heard = Mutex::new(Vec::new());
        let progress = |rows| heard.lock().unwrap().push(rows);
        let once = ProgressOnce::new(&progress);
        // The first attempt writes two slices, then the database aborts it.
        let first = once.attempt();
        first(500);
        first(500);
        // The second runs whole: its first 1000 rows were reported already.
        let second = once.attempt();
        for _ in 0..3 {
            second(500);
        }
        second(200);
        assert_eq!(*heard.lock().unwrap(), [500, 500, 500, 200]);
        assert_eq!(heard.lock().unwrap().iter().sum::<usize>(), 1700, "every row once");
    }
}

pub type Result<T> = std::result::Result<T, DbError>;

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Calls the same method on whichever dialect this store is, mapping its error. Every dialect method
/// is one transaction (or one statement), so one the database aborted to break a deadlock or a
/// serialization conflict ([`transient`]) left nothing behind and is run again whole, a few times
/// with a short jittered pause ([`retry_pause`]), before its error reaches the caller.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {{
        let mut attempt = 1;
        loop {
            let result = match $self {
                Store::Sqlite(s) => s.$method($($arg),*).await,
                Store::Postgres(p) => p.$method($($arg),*).await,
            };
            match result {
                Err(e) if $crate::transient(&e) && attempt < $crate::ATTEMPTS => {
                    tokio::time::sleep($crate::retry_pause(attempt)).await;
                    attempt += 1;
                }
                done => break done.map_err($crate::DbError::from),
            }
        }
    }};
}

/// Declares methods that only pass their arguments to the same method of the dialect (through
/// [`dispatch!`]), each written as its signature alone:
/// `pub async fn name(&self, arg: Type) -> Result<T>;`. A method that converts what it passes or
/// what it returns is written out in full instead.
macro_rules! forward {
    ($(
        $(#[$attr:meta])*
        pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        $(
            $(#[$attr])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                dispatch!(self.$name($($arg),*))
            }
        )*
    };
}

/// How many times a store operation is run when the database keeps aborting it as [`transient`].
const ATTEMPTS: u32 = 3;

/// Whether the database aborted the transaction only because of what ran beside it, so running it
/// again may succeed: a deadlock it broke (PostgreSQL 40P01) or a serialization failure (40001);
/// on SQLite, a transaction whose snapshot another connection's write made stale (SQLITE_BUSY_SNAPSHOT,
/// which the busy timeout does not wait out).
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001" | "517"))
        }
        _ => false,
    }
}

/// The pause before attempt `attempt + 1`: 10 ms doubled per attempt, jittered to half to one and
/// a half times that, so two transactions that collided do not collide again in step.
fn retry_pause(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = 10_000u64 << (attempt - 1).min(6);
    // A fresh RandomState is randomly keyed: enough randomness for a jitter, with no dependency.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::time::Duration::from_micros(base / 2 + random % base)
}

/// Passes on the progress (rows done, as increments) of an operation `dispatch!` may run again: an
/// attempt the database aborted reported rows that the next attempt reports again, so each attempt
/// counts its rows from zero and only rows beyond the most any attempt reached are passed on.
struct ProgressOnce<'a> {
    progress: &'a (dyn Fn(usize) + Sync),
    /// The most rows any attempt has reported (all passed on).
    reported: std::sync::atomic::AtomicUsize,
    /// The rows the current attempt has reported.
    this_attempt: std::sync::atomic::AtomicUsize,
}

impl<'a> ProgressOnce<'a> {
    fn new(progress: &'a (dyn Fn(usize) + Sync)) -> Self {
        Self { progress, reported: 0.into(), this_attempt: 0.into() }
    }

    /// The progress callback of a new attempt.
    fn attempt(&self) -> impl Fn(usize) + Sync + '_ {
        use std::sync::atomic::Ordering::Relaxed;
        self.this_attempt.store(0, Relaxed);
        move |rows| {
            let done = self.this_attempt.fetch_add(rows, Relaxed) + rows;
            let before = self.reported.fetch_max(done, Relaxed);
            if done > before {
                (self.progress)(done - before);
            }
        }
    }
}

mod redact;
pub use redact::{database_identity, redact_url};
mod routing; // issue 7: the routing snapshot's reads and change feed
mod trunks; // issue 7: Zoom trunks
pub use routing::RoutingWake;
mod findings;
mod mail;
mod onboarding; // issue 5: Zoom links, tokens, jobs
mod port_ins;
mod release; // issue 6: releases approved by the customer
mod sign_in;
mod webhooks;
mod zoom_facts;

impl Store {
    /// Connects by URL: `postgres://` or `postgresql://` for PostgreSQL, `sqlite:` for SQLite.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        }
    }

    /// Like [`Store::connect`], but connecting only when a query needs it: a routing-only
    /// instance starts (and answers from its last-known-good snapshot) while the database cannot
    /// be reached, and each query waits at most `acquire` for a connection.
    pub fn connect_lazy(url: &str, acquire: std::time::Duration) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect_lazy(url, acquire)?))
        } else {
            Ok(Store::Sqlite(SqliteStore::connect_lazy(url, acquire)?))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    forward! {
        pub async fn migrate(&self) -> Result<()>;

        pub async fn ping(&self) -> Result<()>;
    }

    /// Which of `numbers` are in the inventory already.
    pub async fn existing_numbers(&self, numbers: &[&PhoneNumber]) -> Result<HashSet<PhoneNumber>> {
        let e164s: Vec<&str> = numbers.iter().map(|n| n.as_str()).collect();
        let found = dispatch!(self.existing_numbers(&e164s))?;
        Ok(found.into_iter().map(PhoneNumber::from_trusted).collect())
    }

    /// Adds numbers and their creation events, all or nothing; `progress` hears of each row once,
    /// however many times the insert is run again (see `ProgressOnce`).
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let once = ProgressOnce::new(progress);
        // `dispatch!` evaluates its arguments for each attempt: each counts from zero.
        dispatch!(self.insert_numbers(numbers, &once.attempt()))
    }

    forward! {
        pub async fn search_numbers(&self, query: &NumberQuery) -> Result<Vec<Number>>;

        pub async fn count_by_state(&self) -> Result<Vec<(NumberState, i64)>>;

        pub async fn get_number(&self, id: NumberId) -> Result<Option<Number>>;

        pub async fn get_number_by_e164(&self, e164: &PhoneNumber) -> Result<Option<Number>>;

        pub async fn number_events(&self, id: NumberId) -> Result<Vec<NumberEvent>>;

        pub async fn insert_customer(&self, c: &Customer) -> Result<()>;

        pub async fn list_customers(&self) -> Result<Vec<Customer>>;

        pub async fn get_customer(&self, id: CustomerId) -> Result<Option<Customer>>;

        /// How many numbers the customer holds (every state but available and aging).
        pub async fn numbers_held(&self, id: CustomerId) -> Result<u32>;

        /// Sets (or lifts, with `None`) the most numbers the customer may hold; false for an
        /// unknown id.
        pub async fn set_number_limit(&self, id: CustomerId, limit: Option<u32>) -> Result<bool>;

        pub async fn set_contract_state(
            &self,
            id: CustomerId,
            state: ContractState,
        ) -> Result<bool>;

        pub async fn insert_user(&self, u: &User) -> Result<()>;

        pub async fn user_by_email(&self, email: &str) -> Result<Option<User>>;

        /// A customer's users, or the operators when `customer` is `None`.
        pub async fn list_users(&self, customer: Option<CustomerId>) -> Result<Vec<User>>;

        pub async fn record_login_failure(
            &self,
            id: UserId,
            lock_until: Option<OffsetDateTime>,
        ) -> Result<i64>;

        pub async fn reset_login_failures(&self, id: UserId) -> Result<()>;

        pub async fn set_password(&self, id: UserId, hash: &str) -> Result<bool>;

        pub async fn insert_session(&self, s: &Session) -> Result<()>;

        pub async fn session(
            &self,
            id_hash: &str,
            now: OffsetDateTime,
        ) -> Result<Option<(Session, User)>>;

        pub async fn delete_session(&self, id_hash: &str) -> Result<()>;

        pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64>;

        pub async fn insert_token(&self, t: &ApiToken) -> Result<()>;

        pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>>;

        pub async fn list_tokens(&self) -> Result<Vec<ApiToken>>;

        pub async fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;

        pub async fn create_order(
            &self,
            customer: CustomerId,
            pick: &OrderPick,
            explicit: &[PhoneNumber],
            apply: bool,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<(Order, Vec<Number>), OrderError>>;

        pub async fn cancel_order(
            &self,
            id: OrderId,
            customer: Option<CustomerId>,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<Order, OrderError>>;

        pub async fn get_order(&self, id: OrderId) -> Result<Option<Order>>;

        pub async fn list_orders(
            &self,
            customer: Option<CustomerId>,
            limit: u32,
        ) -> Result<Vec<Order>>;

        pub async fn order_numbers(&self, id: OrderId) -> Result<Vec<Number>>;
    }
}
