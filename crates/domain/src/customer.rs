//! Customers, their contracts, and orders.

use crate::ids::{CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractState {
    Active,
    Ended,
}

impl ContractState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContractState::Active => "active",
            ContractState::Ended => "ended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ContractState::Active),
            "ended" => Some(ContractState::Ended),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub contract_ref: String,
    pub contract_state: ContractState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The Zoom trunk (`sip_trunk_name`) its numbers are pushed under and its calls routed to;
    /// without one, no number of the customer can be pushed to Zoom.
    pub zoom_trunk: Option<String>,
}

/// Where an order stands. Pushing to Zoom comes with the onboarding work; until then an order
/// waits as `pending` ("pending until the customer's Zoom account is linked").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Pending,
    Applied,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Applied => "applied",
            OrderState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OrderState::Pending),
            "applied" => Some(OrderState::Applied),
            "cancelled" => Some(OrderState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub state: OrderState,
    pub number_count: i64,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How an order picks its numbers from available inventory.
#[derive(Clone, Debug, Default)]
pub struct OrderPick {
    pub count: u32,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub tag: Option<String>,
}

/// Largest order peerex accepts in one go; bigger ones are several orders.
pub const MAX_ORDER_NUMBERS: u32 = 10_000;

/// Why an order could not be placed or changed. The database is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("no such customer")]
    CustomerNotFound,
    #[error("the customer's contract has ended; no new orders")]
    ContractEnded,
    #[error("no such order")]
    NotFound,
    #[error("only {available} matching numbers are available; the order asks for {wanted}")]
    NotEnough { wanted: u32, available: u32 },
    #[error("an order takes 1 to {max} numbers")]
    BadCount { max: u32 },
    #[error("number {0} is not available")]
    NumberNotAvailable(String),
    #[error("number {0} is not in the inventory")]
    UnknownNumber(String),
    #[error("the order is {0}; only a pending order can be cancelled")]
    NotPending(&'static str),
    #[error(transparent)]
    Transition(#[from] crate::number::TransitionError),
}
