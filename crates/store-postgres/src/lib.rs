//! peerex's PostgreSQL dialect: for several `peerex serve` instances sharing one database.
//!
//! Same functions and signatures as `store-sqlite`. Differences that matter: orders claim numbers with
//! `FOR UPDATE SKIP LOCKED` so concurrent orders never get the same number, and imports stream
//! through `COPY`. Only `store` should use this crate.

mod bulk;
mod routing;
mod rows;
mod trunks;

use domain::auth::{ApiToken, Session, User};
use domain::customer::{
    check_number_limit, ContractState, Customer, Order, OrderError, OrderPick, OrderState,
};
use domain::search::NumberQuery;
use domain::{Actor, CustomerId, Number, NumberEvent, NumberId, NumberState, OrderId, UserId};
use rows::{CustomerRow, EventRow, NumberRow, OrderRow, SessionUserRow, TokenRow, UserRow};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// `SELECT <every column of numbers> FROM numbers <rest>`, checked against the schema at compile time.
macro_rules! select_numbers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            NumberRow,
            "SELECT id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at FROM numbers " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_customers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(CustomerRow, "SELECT id, name, contract_ref, contract_state, created_at, zoom_trunk, number_limit FROM customers " + $rest $(, $arg)*)
    };
}

macro_rules! select_users {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, password_hash, role, customer_id, failed_logins, locked_until, created_at FROM users " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_tokens {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(TokenRow, "SELECT id, name, token_hash, scope, created_by, created_at, revoked_at FROM api_tokens " + $rest $(, $arg)*)
    };
}

macro_rules! select_orders {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(OrderRow, "SELECT id, customer_id, state, number_count, created_by, created_at FROM orders " + $rest $(, $arg)*)
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

// After the select macros above, which it uses.
mod onboarding;
mod release; // issue 6
mod sign_in;

/// Rows per multi-row statement (PostgreSQL allows 65,535 bound parameters).
const INSERT_CHUNK: usize = 1_000;

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&self.pool).await.map(|_| ())
    }

    // ---- numbers ------------------------------------------------------------------------------

    /// Which of `e164s` are already in the inventory.
    pub async fn existing_numbers(&self, e164s: &[&str]) -> Result<HashSet<String>> {
        // One array parameter per call instead of a bind per number: a million-row import checks
        // its numbers in a hundred round trips of index probes.
        let rows: Vec<String> = sqlx::query_scalar("SELECT e164 FROM numbers WHERE e164 = ANY($1)")
            .bind(e164s)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Adds numbers and their creation events in one transaction: all or nothing. Streams both
    /// tables through `COPY` in binary format, the fastest way into PostgreSQL (no text for the
    /// server to parse back into UUIDs and times).
    pub async fn insert_numbers(
        &self,
        numbers: &[(Number, NumberEvent)],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        bulk::insert_numbers(&mut tx, numbers, progress).await?;
        tx.commit().await
    }

    pub async fn search_numbers(&self, query: &NumberQuery) -> Result<Vec<Number>> {
        let mut q = QueryBuilder::<Postgres>::new(NumberRow::SELECT);
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
            q.push(" AND strpos(tags, ").push_bind(format!(",{tag},")).push(") > 0");
        }
        if let Some(region) = &query.region {
            q.push(" AND region = ").push_bind(region.as_str());
        }
        q.push(" ORDER BY e164 LIMIT ").push_bind(i64::from(query.page_size()));
        let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }

    pub async fn count_by_state(&self) -> Result<Vec<(NumberState, i64)>> {
        let rows =
            sqlx::query!(r#"SELECT state, COUNT(*) AS "count!" FROM numbers GROUP BY state"#)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| NumberState::parse(&r.state).map(|s| (s, r.count)))
            .collect())
    }

    pub async fn get_number(&self, id: NumberId) -> Result<Option<Number>> {
        let id = id.as_uuid();
        let row = select_numbers!("WHERE id = $1", id).fetch_optional(&self.pool).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn get_number_by_e164(&self, e164: &str) -> Result<Option<Number>> {
        let row = select_numbers!("WHERE e164 = $1", e164).fetch_optional(&self.pool).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn number_events(&self, id: NumberId) -> Result<Vec<NumberEvent>> {
        let id = id.as_uuid();
        let rows = sqlx::query_as!(EventRow, "SELECT number_id, at, actor, from_state, to_state, reason FROM number_events WHERE number_id = $1 ORDER BY id", id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    // ---- customers ----------------------------------------------------------------------------

    pub async fn insert_customer(&self, c: &Customer) -> Result<()> {
        let db_id = c.id.as_uuid();
        let db_contract_state = c.contract_state.as_str();
        let limit = c.number_limit.map(i64::from);
        sqlx::query!("INSERT INTO customers (id, name, contract_ref, contract_state, created_at, number_limit) VALUES ($1, $2, $3, $4, $5, $6)", db_id, c.name, c.contract_ref, db_contract_state, c.created_at, limit)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Sets (or, with `None`, lifts) the most numbers the customer may hold. False for an unknown id.
    pub async fn set_number_limit(&self, id: CustomerId, limit: Option<u32>) -> Result<bool> {
        let db_id = id.as_uuid();
        let limit = limit.map(i64::from);
        let done =
            sqlx::query!("UPDATE customers SET number_limit = $1 WHERE id = $2", limit, db_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many numbers the customer holds: what its number limit counts.
    pub async fn numbers_held(&self, id: CustomerId) -> Result<u32> {
        numbers_held(&self.pool, id.as_uuid()).await
    }

    pub async fn list_customers(&self) -> Result<Vec<Customer>> {
        let rows = select_customers!("ORDER BY name, id").fetch_all(&self.pool).await?;
        rows.into_iter().map(CustomerRow::into_customer).collect()
    }

    pub async fn get_customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        let id = id.as_uuid();
        let row = select_customers!("WHERE id = $1", id).fetch_optional(&self.pool).await?;
        row.map(CustomerRow::into_customer).transpose()
    }

    pub async fn set_contract_state(&self, id: CustomerId, state: ContractState) -> Result<bool> {
        let db_state = state.as_str();
        let db_id = id.as_uuid();
        let done =
            sqlx::query!("UPDATE customers SET contract_state = $1 WHERE id = $2", db_state, db_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- users, sessions, tokens --------------------------------------------------------------

    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let db_id = u.id.as_uuid();
        let db_role = u.role.as_str();
        let db_customer_id = u.customer_id.map(|c| c.as_uuid());
        sqlx::query!("INSERT INTO users (id, email, password_hash, role, customer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)", db_id, u.email, u.password_hash, db_role, db_customer_id, u.created_at)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = select_users!("WHERE lower(email) = lower($1)", email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn list_users(&self, customer: Option<CustomerId>) -> Result<Vec<User>> {
        let rows = match customer.map(|c| c.as_uuid()) {
            Some(c) => {
                select_users!("WHERE customer_id = $1 ORDER BY email", c)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                select_users!("WHERE customer_id IS NULL ORDER BY email")
                    .fetch_all(&self.pool)
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
        sqlx::query_scalar!("UPDATE users SET failed_logins = failed_logins + 1, locked_until = COALESCE($1, locked_until) WHERE id = $2 RETURNING failed_logins", lock_until, id)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn reset_login_failures(&self, id: UserId) -> Result<()> {
        let db_id = id.as_uuid();
        sqlx::query!("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", db_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn set_password(&self, id: UserId, hash: &str) -> Result<bool> {
        let db_id = id.as_uuid();
        let done = sqlx::query!("UPDATE users SET password_hash = $1 WHERE id = $2", hash, db_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_session(&self, s: &Session) -> Result<()> {
        let db_user_id = s.user_id.as_uuid();
        sqlx::query!("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", s.id_hash, db_user_id, s.csrf_token, s.created_at, s.expires_at)
            .execute(&self.pool)
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
            r#"SELECT s.id_hash, s.csrf_token, s.created_at AS session_created_at, s.expires_at,
                      u.id, u.email, u.password_hash, u.role, u.customer_id, u.failed_logins, u.locked_until, u.created_at
               FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2"#,
            id_hash,
            now
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(SessionUserRow::into_pair).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", id_hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn insert_token(&self, t: &ApiToken) -> Result<()> {
        let db_scope = t.scope.as_str();
        sqlx::query!("INSERT INTO api_tokens (id, name, token_hash, scope, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)", t.id, t.name, t.token_hash, db_scope, t.created_by, t.created_at)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let row = select_tokens!("WHERE token_hash = $1 AND revoked_at IS NULL", hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenRow::into_token).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = select_tokens!("ORDER BY created_at DESC").fetch_all(&self.pool).await?;
        rows.into_iter().map(TokenRow::into_token).collect()
    }

    pub async fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            now,
            id
        )
        .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let customer_uuid = customer.as_uuid();
        // The customer's row is locked for the whole order, so concurrent orders for one customer
        // (on any instance) take their turn: each counts what the others reserved before it.
        // NO KEY UPDATE, not UPDATE: rows that merely reference the customer are not held up.
        let Some(row) = select_customers!("WHERE id = $1 FOR NO KEY UPDATE", customer_uuid)
            .fetch_optional(&mut *tx)
            .await?
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
            let mut q = QueryBuilder::<Postgres>::new(NumberRow::SELECT);
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
                q.push(" AND strpos(tags, ").push_bind(format!(",{tag},")).push(") > 0");
            }
            // SKIP LOCKED: a concurrent order passes over the rows this one holds and takes others.
            q.push(" ORDER BY e164 LIMIT ")
                .push_bind(i64::from(pick.count))
                .push(" FOR UPDATE SKIP LOCKED");
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
                match select_numbers!("WHERE e164 = $1 FOR UPDATE", e164)
                    .fetch_optional(&mut *tx)
                    .await?
                {
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
        sqlx::query!("INSERT INTO orders (id, customer_id, state, number_count, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)", db_id, db_customer, db_state, order.number_count, order.created_by, now)
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
        let mut tx = self.pool.begin().await?;
        let Some(mut order) =
            fetch_order(&mut tx, id).await?.filter(|o| customer.is_none_or(|c| c == o.customer_id))
        else {
            return Ok(Err(OrderError::NotFound));
        };
        if order.state != OrderState::Pending {
            return Ok(Err(OrderError::NotPending(order.state.as_str())));
        }
        let order_uuid = id.as_uuid();
        let rows = select_numbers!(
            "WHERE order_id = $1 AND state = 'reserved' ORDER BY e164 FOR UPDATE",
            order_uuid
        )
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
        sqlx::query!("UPDATE orders SET state = 'cancelled' WHERE id = $1", db_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        order.state = OrderState::Cancelled;
        Ok(Ok(order))
    }

    pub async fn get_order(&self, id: OrderId) -> Result<Option<Order>> {
        let id = id.as_uuid();
        let row = select_orders!("WHERE id = $1", id).fetch_optional(&self.pool).await?;
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
                select_orders!("WHERE customer_id = $1 ORDER BY id DESC LIMIT $2", c, limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                select_orders!("ORDER BY id DESC LIMIT $1", limit).fetch_all(&self.pool).await?
            }
        };
        rows.into_iter().map(OrderRow::into_order).collect()
    }

    pub async fn order_numbers(&self, id: OrderId) -> Result<Vec<Number>> {
        let id = id.as_uuid();
        let rows =
            select_numbers!("WHERE order_id = $1 ORDER BY e164", id).fetch_all(&self.pool).await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }
}

async fn fetch_order(tx: &mut Transaction<'_, Postgres>, id: OrderId) -> Result<Option<Order>> {
    let id = id.as_uuid();
    let row = select_orders!("WHERE id = $1 FOR UPDATE", id).fetch_optional(&mut **tx).await?;
    row.map(OrderRow::into_order).transpose()
}

/// Writes numbers after domain transitions, with their events, inside the caller's transaction.
async fn save_moves(
    tx: &mut Transaction<'_, Postgres>,
    moves: &[(Number, NumberEvent)],
) -> Result<()> {
    for (n, _) in moves {
        let db_state = n.state.as_str();
        let db_customer_id = n.customer_id.map(|c| c.as_uuid());
        let db_order_id = n.order_id.map(|o| o.as_uuid());
        let db_reason = n.reason.as_deref();
        let db_id = n.id.as_uuid();
        sqlx::query!("UPDATE numbers SET state = $1, customer_id = $2, order_id = $3, reason = $4, aging_until = $5, updated_at = $6 WHERE id = $7", db_state, db_customer_id, db_order_id, db_reason, n.aging_until, n.updated_at, db_id)
            .execute(&mut **tx)
            .await?;
    }
    for chunk in moves.chunks(INSERT_CHUNK) {
        insert_events(tx, chunk.iter().map(|(_, e)| e)).await?;
    }
    Ok(())
}

async fn insert_events<'a>(
    tx: &mut Transaction<'_, Postgres>,
    events: impl Iterator<Item = &'a NumberEvent>,
) -> Result<()> {
    let mut q = QueryBuilder::<Postgres>::new(
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
    e: impl sqlx::Executor<'e, Database = Postgres>,
    customer: Uuid,
) -> Result<u32> {
    let held = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM numbers WHERE customer_id = $1 AND state NOT IN ('available', 'aging')"#,
        customer
    )
    .fetch_one(e)
    .await?;
    Ok(u32::try_from(held).unwrap_or(u32::MAX))
}
