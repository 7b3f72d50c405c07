//! People and credentials: operator and customer-admin users, browser sessions, API tokens.
//! Secrets are never held here in the clear: passwords as argon2 hashes, session ids and tokens as
//! SHA-256 digests (the clear value is shown once, to its owner).

use crate::ids::{CustomerId, UserId};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Carrier staff who may change everything.
    Admin,
    /// Carrier staff who may look but not change.
    ReadOnly,
    /// A customer's admin, confined to that customer.
    CustomerAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReadOnly => "read_only",
            Role::CustomerAdmin => "customer_admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "read_only" => Some(Role::ReadOnly),
            "customer_admin" => Some(Role::CustomerAdmin),
            _ => None,
        }
    }
    pub fn is_operator(self) -> bool {
        matches!(self, Role::Admin | Role::ReadOnly)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub customer_id: Option<CustomerId>,
    #[serde(skip)]
    pub failed_logins: i64,
    #[serde(skip)]
    pub locked_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub struct Session {
    /// SHA-256 of the cookie value.
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }
    /// `write` includes `read`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Write || needed == Scope::Read
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub scope: Scope,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}
