//! Rows as the database returns them, and their conversion into domain values. A stored value the
//! domain cannot read (a state this build does not know) is a decode error, never a silent default.

use domain::auth::{ApiToken, Role, Scope, Session, User};
use domain::customer::{ContractState, Customer, Order, OrderState};
use domain::trunk::TrunkName;
use domain::{
    CustomerId, Number, NumberEvent, NumberId, NumberState, OrderId, PhoneNumber, UserId,
};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

type Result<T> = std::result::Result<T, sqlx::Error>;

pub(crate) fn bad(what: &str, value: &str) -> sqlx::Error {
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
    pub id: Uuid,
    pub e164: String,
    pub state: String,
    pub customer_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub tags: String,
    pub billing_ref: Option<String>,
    pub region: Option<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub aging_until: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

impl NumberRow {
    pub const SELECT: &'static str =
        "SELECT id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at, version FROM numbers";

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
            version: self.version,
        })
    }
}

pub struct EventRow {
    pub number_id: Uuid,
    pub at: OffsetDateTime,
    pub actor: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: Option<String>,
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

pub struct CustomerRow {
    pub id: Uuid,
    pub name: String,
    pub contract_ref: String,
    pub contract_state: String,
    pub created_at: OffsetDateTime,
    pub zoom_trunk: Option<String>,
    pub number_limit: Option<i64>,
    pub billing_ref: Option<String>,
}

impl CustomerRow {
    pub fn into_customer(self) -> Result<Customer> {
        Ok(Customer {
            id: CustomerId::from_uuid(self.id),
            name: self.name,
            contract_ref: self.contract_ref,
            contract_state: ContractState::parse(&self.contract_state)
                .ok_or_else(|| bad("contract state", &self.contract_state))?,
            created_at: self.created_at,
            zoom_trunk: self
                .zoom_trunk
                .map(|t| TrunkName::parse(&t).map_err(|_| bad("trunk name", &t)))
                .transpose()?,
            number_limit: self.number_limit.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            billing_ref: self.billing_ref,
        })
    }
}

pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub customer_id: Option<Uuid>,
    pub failed_logins: i64,
    pub locked_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl UserRow {
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

pub struct SessionUserRow {
    pub id_hash: String,
    pub csrf_token: String,
    pub session_created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub customer_id: Option<Uuid>,
    pub failed_logins: i64,
    pub locked_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl SessionUserRow {
    pub fn into_pair(self) -> Result<(Session, User)> {
        let user = UserRow {
            id: self.id,
            email: self.email,
            password_hash: self.password_hash,
            role: self.role,
            customer_id: self.customer_id,
            failed_logins: self.failed_logins,
            locked_until: self.locked_until,
            created_at: self.created_at,
        }
        .into_user()?;
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

pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub token_hash: String,
    pub scope: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl TokenRow {
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

pub struct OrderRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub state: String,
    pub number_count: i64,
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

impl OrderRow {
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
