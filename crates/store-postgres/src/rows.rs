//! Rows as PostgreSQL returns them, and their conversion into domain values. A stored value the domain
//! cannot read (a state this build does not know) is a decode error, never a silent default.

use domain::auth::{ApiToken, Role, Scope, Session, User};
use domain::customer::{ContractState, Customer, Order, OrderState};
use domain::{CustomerId, Number, NumberEvent, NumberId, NumberState, OrderId, PhoneNumber, UserId};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

type Result<T> = std::result::Result<T, sqlx::Error>;

fn bad(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into())
}

fn state(s: &str) -> Result<NumberState> {
    NumberState::parse(s).ok_or_else(|| bad("number state", s))
}

pub fn encode_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(",{},", tags.join(","))
    }
}

fn decode_tags(s: &str) -> Vec<String> {
    s.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

#[derive(FromRow)]
pub struct NumberRow {
    id: Uuid,
    e164: String,
    state: String,
    customer_id: Option<Uuid>,
    order_id: Option<Uuid>,
    tags: String,
    billing_ref: Option<String>,
    region: Option<String>,
    note: Option<String>,
    reason: Option<String>,
    aging_until: Option<OffsetDateTime>,
    updated_at: OffsetDateTime,
}

impl NumberRow {
    pub const SELECT: &'static str =
        "SELECT id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at FROM numbers";

    pub fn into_number(self) -> Result<Number> {
        Ok(Number {
            id: NumberId::from_uuid(self.id),
            e164: PhoneNumber::from_trusted(self.e164),
            state: state(&self.state)?,
            customer_id: self.customer_id.map(CustomerId::from_uuid),
            order_id: self.order_id.map(OrderId::from_uuid),
            tags: decode_tags(&self.tags),
            billing_ref: self.billing_ref,
            region: self.region,
            note: self.note,
            reason: self.reason,
            aging_until: self.aging_until,
            updated_at: self.updated_at,
        })
    }
}

#[derive(FromRow)]
pub struct EventRow {
    number_id: Uuid,
    at: OffsetDateTime,
    actor: String,
    from_state: Option<String>,
    to_state: String,
    reason: Option<String>,
}

impl EventRow {
    pub fn into_event(self) -> Result<NumberEvent> {
        Ok(NumberEvent {
            number_id: NumberId::from_uuid(self.number_id),
            at: self.at,
            actor: self.actor,
            from: self.from_state.as_deref().map(state).transpose()?,
            to: state(&self.to_state)?,
            reason: self.reason,
        })
    }
}

#[derive(FromRow)]
pub struct CustomerRow {
    id: Uuid,
    name: String,
    contract_ref: String,
    contract_state: String,
    created_at: OffsetDateTime,
}

impl CustomerRow {
    pub const SELECT_ALL: &'static str = "SELECT id, name, contract_ref, contract_state, created_at FROM customers ORDER BY name, id";
    pub const SELECT_ONE: &'static str = "SELECT id, name, contract_ref, contract_state, created_at FROM customers WHERE id = $1";

    pub fn into_customer(self) -> Result<Customer> {
        Ok(Customer {
            id: CustomerId::from_uuid(self.id),
            name: self.name,
            contract_ref: self.contract_ref,
            contract_state: ContractState::parse(&self.contract_state).ok_or_else(|| bad("contract state", &self.contract_state))?,
            created_at: self.created_at,
        })
    }
}

#[derive(FromRow)]
pub struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    customer_id: Option<Uuid>,
    failed_logins: i64,
    locked_until: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl UserRow {
    pub const SELECT: &'static str = "SELECT id, email, password_hash, role, customer_id, failed_logins, locked_until, created_at FROM users";

    pub fn into_user(self) -> Result<User> {
        Ok(User {
            id: UserId::from_uuid(self.id),
            email: self.email,
            password_hash: self.password_hash,
            role: Role::parse(&self.role).ok_or_else(|| bad("role", &self.role))?,
            customer_id: self.customer_id.map(CustomerId::from_uuid),
            failed_logins: self.failed_logins,
            locked_until: self.locked_until,
            created_at: self.created_at,
        })
    }
}

#[derive(FromRow)]
pub struct SessionUserRow {
    id_hash: String,
    csrf_token: String,
    session_created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    #[sqlx(flatten)]
    user: UserRow,
}

impl SessionUserRow {
    pub const SELECT: &'static str = "SELECT s.id_hash, s.csrf_token, s.created_at AS session_created_at, s.expires_at, \
         u.id, u.email, u.password_hash, u.role, u.customer_id, u.failed_logins, u.locked_until, u.created_at \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2";

    pub fn into_pair(self) -> Result<(Session, User)> {
        let user = self.user.into_user()?;
        let session = Session {
            id_hash: self.id_hash,
            user_id: user.id,
            csrf_token: self.csrf_token,
            created_at: self.session_created_at,
            expires_at: self.expires_at,
        };
        Ok((session, user))
    }
}

#[derive(FromRow)]
pub struct TokenRow {
    id: Uuid,
    name: String,
    token_hash: String,
    scope: String,
    created_by: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl TokenRow {
    pub const SELECT: &'static str = "SELECT id, name, token_hash, scope, created_by, created_at, revoked_at FROM api_tokens";

    pub fn into_token(self) -> Result<ApiToken> {
        Ok(ApiToken {
            id: self.id,
            name: self.name,
            token_hash: self.token_hash,
            scope: Scope::parse(&self.scope).ok_or_else(|| bad("scope", &self.scope))?,
            created_by: self.created_by,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(FromRow)]
pub struct OrderRow {
    id: Uuid,
    customer_id: Uuid,
    state: String,
    number_count: i64,
    created_by: String,
    created_at: OffsetDateTime,
}

impl OrderRow {
    pub const SELECT: &'static str = "SELECT id, customer_id, state, number_count, created_by, created_at FROM orders";
    pub const SELECT_ONE: &'static str = "SELECT id, customer_id, state, number_count, created_by, created_at FROM orders WHERE id = $1";

    pub fn into_order(self) -> Result<Order> {
        Ok(Order {
            id: OrderId::from_uuid(self.id),
            customer_id: CustomerId::from_uuid(self.customer_id),
            state: OrderState::parse(&self.state).ok_or_else(|| bad("order state", &self.state))?,
            number_count: self.number_count,
            created_by: self.created_by,
            created_at: self.created_at,
        })
    }
}
