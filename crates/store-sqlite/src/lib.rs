//! peerex's SQLite dialect: the embedded default database.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one connection (they queue in
//! peerex instead of failing with SQLITE_BUSY) and reads use a separate pool. WAL lets readers run
//! beside the writer. Only `store` should use this crate; it depends on nothing but `domain` and sqlx.

mod bulk;
mod routing;
mod rows;
mod trunks;
pub use routing::routing_wake;

use domain::auth::{ApiToken, Session, User};
use domain::customer::{
    check_number_limit, ContractState, Customer, Order, OrderError, OrderPick, OrderState,
};
use domain::search::NumberQuery;
use domain::{Actor, CustomerId, Number, NumberEvent, NumberId, NumberState, OrderId, UserId};
use rows::{CustomerRow, EventRow, NumberRow, OrderRow, SessionUserRow, TokenRow, UserRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// `SELECT <every column of numbers> FROM numbers <rest>`, checked against the schema at compile time.
/// SQLite stores ids as blobs and times as text; the `AS "col: Type"` overrides say what they decode to.
macro_rules! select_customers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            CustomerRow,
            "SELECT id AS \"id!: Uuid\", name, contract_ref, contract_state, created_at AS \"created_at!: OffsetDateTime\", zoom_trunk, number_limit FROM customers " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_users {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            UserRow,
            "SELECT id AS \"id!: Uuid\", email, password_hash, role, customer_id AS \"customer_id: Uuid\", failed_logins, \
             locked_until AS \"locked_until: OffsetDateTime\", created_at AS \"created_at!: OffsetDateTime\" FROM users " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_tokens {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            TokenRow,
            "SELECT id AS \"id!: Uuid\", name, token_hash, scope, created_by, created_at AS \"created_at!: OffsetDateTime\", \
             revoked_at AS \"revoked_at: OffsetDateTime\" FROM api_tokens " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_orders {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            OrderRow,
            "SELECT id AS \"id!: Uuid\", customer_id AS \"customer_id!: Uuid\", state, number_count, created_by, \
             created_at AS \"created_at!: OffsetDateTime\" FROM orders " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_numbers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            NumberRow,
            "SELECT id AS \"id!: Uuid\", e164, state, customer_id AS \"customer_id: Uuid\", order_id AS \"order_id: Uuid\", \
             tags, billing_ref, region, note, reason, aging_until AS \"aging_until: OffsetDateTime\", \
             updated_at AS \"updated_at!: OffsetDateTime\" FROM numbers " + $rest $(, $arg)*
        )
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

// After the select macros above, which it uses.
mod onboarding;
mod release; // issue 6
mod sign_in;

/// Rows per multi-row INSERT: SQLite allows 32,766 bound parameters per statement.
const INSERT_CHUNK: usize = 1_000;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let memory = url.contains(":memory:");
        // An in-memory database exists per connection; it gets one connection for everything.
        let writer = routing::with_wake_hooks(SqlitePoolOptions::new())
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new().max_connections(8).connect_with(options).await?
        };
        Ok(Self { writer, reader })
    }

    pub async fn open_file(path: &Path) -> Result<Self> {
        Self::connect(&format!("sqlite://{}", path.display())).await
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&self.reader).await.map(|_| ())
    }

    // ---- numbers ------------------------------------------------------------------------------

    /// Which of `e164s` are already in the inventory.
    ///
    /// Looked up a thousand at a time in E.164 order: when the numbers between a thousand's first
    /// and last are few in the inventory (always so for a block being imported), one range read
    /// returns them all and they are matched here; otherwise the thousand are probed by value. So
    /// no lookup reads more than twice its count of rows, and an import of new blocks reads almost
    /// nothing instead of binding every number.
    pub async fn existing_numbers(&self, e164s: &[&str]) -> Result<HashSet<String>> {
        let mut sorted = e164s.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut found = HashSet::new();
        for chunk in sorted.chunks(INSERT_CHUNK) {
            let (first, last) = (chunk[0], chunk[chunk.len() - 1]);
            let limit = 2 * chunk.len() as i64;
            let in_span = sqlx::query_scalar!(
                "SELECT e164 FROM numbers WHERE e164 >= ? AND e164 <= ? ORDER BY e164 LIMIT ?",
                first,
                last,
                limit
            )
            .fetch_all(&self.reader)
            .await?;
            if (in_span.len() as i64) < limit {
                found.extend(
                    in_span.into_iter().filter(|n| chunk.binary_search(&n.as_str()).is_ok()),
                );
                continue;
            }
            let mut q = QueryBuilder::<Sqlite>::new("SELECT e164 FROM numbers WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            q.push(")");
            let rows: Vec<(String,)> = q.build_query_as().fetch_all(&self.reader).await?;
            found.extend(rows.into_iter().map(|(n,)| n));
        }
        Ok(found)
    }

    /// Adds numbers and their creation events in one transaction: all or nothing. The rows go
    /// through SQLite's C API on the writer's own connection (see `bulk`), a slice at a time so the
    /// import yields to other tasks and reports progress between slices.
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        bulk::insert_numbers(&mut tx, numbers, progress).await?;
        tx.commit().await
    }

    pub async fn search_numbers(&self, query: &NumberQuery) -> Result<Vec<Number>> {
        let mut q = QueryBuilder::<Sqlite>::new(NumberRow::SELECT);
        q.push(" WHERE 1 = 1");
        if let Some((from, inclusive)) = query.lower_bound() {
            q.push(if inclusive { " AND e164 >= " } else { " AND e164 > " }).push_bind(from);
        }
        if let Some(prefix) = &query.prefix {
            q.push(" AND e164 < ").push_bind(NumberQuery::prefix_upper(prefix));
        }
        if let Some(state) = query.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(customer) = query.customer_id {
            q.push(" AND customer_id = ").push_bind(customer.as_uuid());
        }
        if let Some(tag) = &query.tag {
            // A substring test, not LIKE: tags may contain `_`, a LIKE wildcard.
            q.push(" AND instr(tags, ").push_bind(format!(",{tag},")).push(") > 0");
        }
        if let Some(region) = &query.region {
            q.push(" AND region = ").push_bind(region.as_str());
        }
        q.push(" ORDER BY e164 LIMIT ").push_bind(i64::from(query.page_size()));
        let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&self.reader).await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }

    pub async fn count_by_state(&self) -> Result<Vec<(NumberState, i64)>> {
        let rows =
            sqlx::query!(r#"SELECT state, COUNT(*) AS "count!: i64" FROM numbers GROUP BY state"#)
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| NumberState::parse(&r.state).map(|s| (s, r.count)))
            .collect())
    }

    pub async fn get_number(&self, id: NumberId) -> Result<Option<Number>> {
        let id = id.as_uuid();
        let row = select_numbers!("WHERE id = ?", id).fetch_optional(&self.reader).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn get_number_by_e164(&self, e164: &str) -> Result<Option<Number>> {
        let row = select_numbers!("WHERE e164 = ?", e164).fetch_optional(&self.reader).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn number_events(&self, id: NumberId) -> Result<Vec<NumberEvent>> {
        let id = id.as_uuid();
        let rows = sqlx::query_as!(
            EventRow,
            r#"SELECT number_id AS "number_id!: Uuid", at AS "at!: OffsetDateTime", actor, from_state, to_state, reason
               FROM number_events WHERE number_id = ? ORDER BY id"#,
            id
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    // ---- customers ----------------------------------------------------------------------------

    pub async fn insert_customer(&self, c: &Customer) -> Result<()> {
        let db_id = c.id.as_uuid();
        let db_contract_state = c.contract_state.as_str();
        let limit = c.number_limit.map(i64::from);
        sqlx::query!("INSERT INTO customers (id, name, contract_ref, contract_state, created_at, number_limit) VALUES (?, ?, ?, ?, ?, ?)", db_id, c.name, c.contract_ref, db_contract_state, c.created_at, limit)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    /// Sets (or, with `None`, lifts) the most numbers the customer may hold. False for an unknown id.
    pub async fn set_number_limit(&self, id: CustomerId, limit: Option<u32>) -> Result<bool> {
        let db_id = id.as_uuid();
        let limit = limit.map(i64::from);
        let done = sqlx::query!("UPDATE customers SET number_limit = ? WHERE id = ?", limit, db_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many numbers the customer holds: what its number limit counts.
    pub async fn numbers_held(&self, id: CustomerId) -> Result<u32> {
        numbers_held(&self.reader, id.as_uuid()).await
    }

    pub async fn list_customers(&self) -> Result<Vec<Customer>> {
        let rows = select_customers!("ORDER BY name, id").fetch_all(&self.reader).await?;
        rows.into_iter().map(CustomerRow::into_customer).collect()
    }

    pub async fn get_customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        let id = id.as_uuid();
        let row = select_customers!("WHERE id = ?", id).fetch_optional(&self.reader).await?;
        row.map(CustomerRow::into_customer).transpose()
    }

    pub async fn set_contract_state(&self, id: CustomerId, state: ContractState) -> Result<bool> {
        let db_state = state.as_str();
        let db_id = id.as_uuid();
        let done =
            sqlx::query!("UPDATE customers SET contract_state = ? WHERE id = ?", db_state, db_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- users, sessions, tokens --------------------------------------------------------------

    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let db_id = u.id.as_uuid();
        let db_role = u.role.as_str();
        let db_customer_id = u.customer_id.map(|c| c.as_uuid());
        sqlx::query!("INSERT INTO users (id, email, password_hash, role, customer_id, created_at) VALUES (?, ?, ?, ?, ?, ?)", db_id, u.email, u.password_hash, db_role, db_customer_id, u.created_at)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = select_users!("WHERE email = ?", email).fetch_optional(&self.reader).await?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn list_users(&self, customer: Option<CustomerId>) -> Result<Vec<User>> {
        let rows = match customer.map(|c| c.as_uuid()) {
            Some(c) => {
                select_users!("WHERE customer_id = ? ORDER BY email", c)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                select_users!("WHERE customer_id IS NULL ORDER BY email")
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Records a failed sign-in; returns the count so far.
    pub async fn record_login_failure(
        &self,
        id: UserId,
        lock_until: Option<OffsetDateTime>,
    ) -> Result<i64> {
        let id = id.as_uuid();
        sqlx::query_scalar!(
            r#"UPDATE users SET failed_logins = failed_logins + 1, locked_until = COALESCE(?, locked_until) WHERE id = ? RETURNING failed_logins AS "failed_logins!: i64""#,
            lock_until,
            id
        )
        .fetch_one(&self.writer)
        .await
    }

    pub async fn reset_login_failures(&self, id: UserId) -> Result<()> {
        let db_id = id.as_uuid();
        sqlx::query!("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", db_id)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn set_password(&self, id: UserId, hash: &str) -> Result<bool> {
        let db_id = id.as_uuid();
        let done = sqlx::query!("UPDATE users SET password_hash = ? WHERE id = ?", hash, db_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_session(&self, s: &Session) -> Result<()> {
        let db_user_id = s.user_id.as_uuid();
        sqlx::query!("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)", s.id_hash, db_user_id, s.csrf_token, s.created_at, s.expires_at)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    /// The live session with this id hash and its user; expired sessions are not returned.
    pub async fn session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, User)>> {
        let row = sqlx::query_as!(
            SessionUserRow,
            r#"SELECT s.id_hash AS "id_hash!", s.csrf_token, s.created_at AS "session_created_at!: OffsetDateTime", s.expires_at AS "expires_at!: OffsetDateTime",
                      u.id AS "id!: Uuid", u.email, u.password_hash, u.role, u.customer_id AS "customer_id: Uuid", u.failed_logins,
                      u.locked_until AS "locked_until: OffsetDateTime", u.created_at AS "created_at!: OffsetDateTime"
               FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?"#,
            id_hash,
            now
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(SessionUserRow::into_pair).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query!("DELETE FROM sessions WHERE id_hash = ?", id_hash)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= ?", now)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    pub async fn insert_token(&self, t: &ApiToken) -> Result<()> {
        let db_scope = t.scope.as_str();
        sqlx::query!("INSERT INTO api_tokens (id, name, token_hash, scope, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)", t.id, t.name, t.token_hash, db_scope, t.created_by, t.created_at)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let row = select_tokens!("WHERE token_hash = ? AND revoked_at IS NULL", hash)
            .fetch_optional(&self.reader)
            .await?;
        row.map(TokenRow::into_token).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = select_tokens!("ORDER BY created_at DESC").fetch_all(&self.reader).await?;
        rows.into_iter().map(TokenRow::into_token).collect()
    }

    pub async fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- orders -------------------------------------------------------------------------------

    /// Creates an order and reserves its numbers in one transaction. With `explicit` numbers, each
    /// must be available; otherwise `pick.count` numbers matching the filters are taken in E.164 order.
    pub async fn create_order(
        &self,
        customer: CustomerId,
        pick: &OrderPick,
        explicit: &[String],
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<(Order, Vec<Number>), OrderError>> {
        // The single writer connection serialises this transaction against every other write, so
        // two concurrent orders can never read the same available numbers.
        let mut tx = self.writer.begin().await?;
        let customer_uuid = customer.as_uuid();
        let Some(row) =
            select_customers!("WHERE id = ?", customer_uuid).fetch_optional(&mut *tx).await?
        else {
            return Ok(Err(OrderError::CustomerNotFound));
        };
        let c = row.into_customer()?;
        if c.contract_state == ContractState::Ended {
            return Ok(Err(OrderError::ContractEnded));
        }
        if c.number_limit.is_some() {
            let held = numbers_held(&mut *tx, customer_uuid).await?;
            let wanted = if explicit.is_empty() { pick.count } else { explicit.len() as u32 };
            if let Err(e) = check_number_limit(c.number_limit, held, wanted) {
                return Ok(Err(e));
            }
        }
        let candidates: Vec<Number> = if explicit.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(NumberRow::SELECT);
            q.push(" WHERE state = 'available'");
            if let Some(prefix) = &pick.prefix {
                q.push(" AND e164 >= ")
                    .push_bind(prefix.as_str())
                    .push(" AND e164 < ")
                    .push_bind(NumberQuery::prefix_upper(prefix));
            }
            if let Some(region) = &pick.region {
                q.push(" AND region = ").push_bind(region.as_str());
            }
            if let Some(tag) = &pick.tag {
                // A substring test, not LIKE: tags may contain `_`, a LIKE wildcard.
                q.push(" AND instr(tags, ").push_bind(format!(",{tag},")).push(") > 0");
            }
            q.push(" ORDER BY e164 LIMIT ").push_bind(i64::from(pick.count));
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            let found = rows.into_iter().map(NumberRow::into_number).collect::<Result<Vec<_>>>()?;
            if found.len() < pick.count as usize {
                return Ok(Err(OrderError::NotEnough {
                    wanted: pick.count,
                    available: found.len() as u32,
                }));
            }
            found
        } else {
            let mut found = Vec::with_capacity(explicit.len());
            for e164 in explicit {
                match select_numbers!("WHERE e164 = ?", e164).fetch_optional(&mut *tx).await? {
                    None => return Ok(Err(OrderError::UnknownNumber(e164.clone()))),
                    Some(r) => found.push(r.into_number()?),
                }
            }
            found
        };
        let order = Order {
            id: OrderId::new(),
            customer_id: customer,
            state: OrderState::Pending,
            number_count: candidates.len() as i64,
            created_by: by.to_string(),
            created_at: now,
        };
        let db_id = order.id.as_uuid();
        let db_customer = customer.as_uuid();
        let db_state = order.state.as_str();
        sqlx::query!("INSERT INTO orders (id, customer_id, state, number_count, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)", db_id, db_customer, db_state, order.number_count, order.created_by, now)
            .execute(&mut *tx)
            .await?;
        let mut moves = Vec::with_capacity(candidates.len());
        for n in candidates {
            let e164 = n.e164.to_string();
            match n.reserve(customer, order.id, by, now) {
                Ok(m) => moves.push(m),
                Err(_) => return Ok(Err(OrderError::NumberNotAvailable(e164))),
            }
        }
        save_moves(&mut tx, &moves).await?;
        tx.commit().await?;
        Ok(Ok((order, moves.into_iter().map(|(n, _)| n).collect())))
    }

    /// Cancels a pending order; its numbers go back to `available`. `customer` confines the
    /// lookup to one customer's orders when given.
    pub async fn cancel_order(
        &self,
        id: OrderId,
        customer: Option<CustomerId>,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Order, OrderError>> {
        let mut tx = self.writer.begin().await?;
        let Some(mut order) =
            fetch_order(&mut tx, id).await?.filter(|o| customer.is_none_or(|c| c == o.customer_id))
        else {
            return Ok(Err(OrderError::NotFound));
        };
        if order.state != OrderState::Pending {
            return Ok(Err(OrderError::NotPending(order.state.as_str())));
        }
        let order_uuid = id.as_uuid();
        let rows =
            select_numbers!("WHERE order_id = ? AND state = 'reserved' ORDER BY e164", order_uuid)
                .fetch_all(&mut *tx)
                .await?;
        let mut moves = Vec::with_capacity(rows.len());
        for row in rows {
            match row.into_number()?.cancel_reservation(by, now) {
                Ok(m) => moves.push(m),
                Err(e) => return Ok(Err(e.into())),
            }
        }
        save_moves(&mut tx, &moves).await?;
        let db_id = id.as_uuid();
        sqlx::query!("UPDATE orders SET state = 'cancelled' WHERE id = ?", db_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        order.state = OrderState::Cancelled;
        Ok(Ok(order))
    }

    pub async fn get_order(&self, id: OrderId) -> Result<Option<Order>> {
        let id = id.as_uuid();
        let row = select_orders!("WHERE id = ?", id).fetch_optional(&self.reader).await?;
        row.map(OrderRow::into_order).transpose()
    }

    pub async fn list_orders(
        &self,
        customer: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let limit = i64::from(limit);
        let rows = match customer.map(|c| c.as_uuid()) {
            Some(c) => {
                select_orders!("WHERE customer_id = ? ORDER BY id DESC LIMIT ?", c, limit)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                select_orders!("ORDER BY id DESC LIMIT ?", limit).fetch_all(&self.reader).await?
            }
        };
        rows.into_iter().map(OrderRow::into_order).collect()
    }

    pub async fn order_numbers(&self, id: OrderId) -> Result<Vec<Number>> {
        let id = id.as_uuid();
        let rows =
            select_numbers!("WHERE order_id = ? ORDER BY e164", id).fetch_all(&self.reader).await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }
}

async fn fetch_order(tx: &mut Transaction<'_, Sqlite>, id: OrderId) -> Result<Option<Order>> {
    let id = id.as_uuid();
    let row = select_orders!("WHERE id = ?", id).fetch_optional(&mut **tx).await?;
    row.map(OrderRow::into_order).transpose()
}

/// Writes numbers after domain transitions, with their events, inside the caller's transaction.
async fn save_moves(
    tx: &mut Transaction<'_, Sqlite>,
    moves: &[(Number, NumberEvent)],
) -> Result<()> {
    for (n, _) in moves {
        let db_state = n.state.as_str();
        let db_customer_id = n.customer_id.map(|c| c.as_uuid());
        let db_order_id = n.order_id.map(|o| o.as_uuid());
        let db_reason = n.reason.as_deref();
        let db_id = n.id.as_uuid();
        sqlx::query!("UPDATE numbers SET state = ?, customer_id = ?, order_id = ?, reason = ?, aging_until = ?, updated_at = ? WHERE id = ?", db_state, db_customer_id, db_order_id, db_reason, n.aging_until, n.updated_at, db_id)
            .execute(&mut **tx)
            .await?;
    }
    for chunk in moves.chunks(INSERT_CHUNK) {
        insert_events(tx, chunk.iter().map(|(_, e)| e)).await?;
    }
    Ok(())
}

async fn insert_events<'a>(
    tx: &mut Transaction<'_, Sqlite>,
    events: impl Iterator<Item = &'a NumberEvent>,
) -> Result<()> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) ",
    );
    let mut any = false;
    q.push_values(events.inspect(|_| any = true), |mut b, e| {
        b.push_bind(e.number_id.as_uuid())
            .push_bind(e.at)
            .push_bind(e.actor.as_str())
            .push_bind(e.from.map(NumberState::as_str))
            .push_bind(e.to.as_str())
            .push_bind(e.reason.as_deref());
    });
    if any {
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The numbers a customer holds (every state but `available` and `aging`): what its number limit
/// counts.
async fn numbers_held<'e>(
    e: impl sqlx::Executor<'e, Database = Sqlite>,
    customer: Uuid,
) -> Result<u32> {
    let held = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM numbers WHERE customer_id = ? AND state NOT IN ('available', 'aging')"#,
        customer
    )
    .fetch_one(e)
    .await?;
    Ok(u32::try_from(held).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 0012 rebuilds `number_events`: every event written before it must remain, with its
    /// id, and the table must still take new events.
    #[tokio::test]
    async fn rebuilding_number_events_keeps_every_event() {
        let dir = std::env::temp_dir().join(format!("peerex-0012-{}", std::process::id()));
        let before = dir.join("migrations");
        std::fs::create_dir_all(&before).unwrap();
        let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for f in std::fs::read_dir(&all).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().as_ref() < "0012" {
                std::fs::copy(f.path(), before.join(f.file_name())).unwrap();
            }
        }
        let store = SqliteStore::open_file(&dir.join("peerex.db")).await.unwrap();
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .unwrap()
            .run(&store.writer)
            .await
            .unwrap();
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO numbers (id, e164, state, tags, updated_at) VALUES (?, '+15550100000', 'available', '', '2026-01-01T00:00:00Z')")
            .bind(id)
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("INSERT INTO number_events (id, number_id, at, actor, to_state, reason) VALUES (41, ?, '2026-01-01T00:00:00Z', 'system:test', 'available', 'imported')")
            .bind(id)
            .execute(&store.writer)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let events = store.number_events(NumberId::from_uuid(id)).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].actor.as_str(), events[0].reason.as_deref()),
            ("system:test", Some("imported"))
        );
        let next: i64 = sqlx::query_scalar("INSERT INTO number_events (number_id, at, actor, to_state) VALUES (?, '2026-01-02T00:00:00Z', 'system:test', 'aging') RETURNING id")
            .bind(id)
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(next, 42);
        assert_eq!(store.number_events(NumberId::from_uuid(id)).await.unwrap().len(), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
