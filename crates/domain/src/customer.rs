//! Customers, their contracts, and orders.

use crate::ids::{CustomerId, OrderId};
use crate::machine::StateMachine;
use crate::trunk::TrunkName;
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
    pub zoom_trunk: Option<TrunkName>,
    /// The most numbers the customer may hold at once (reserved, being pushed, active, waiting for
    /// release, suspended), set by the carrier's operators; `None`: no limit. Orders beyond it are
    /// refused.
    pub number_limit: Option<u32>,
    /// The customer's reference in the carrier's billing system, carried on its usage records.
    pub billing_ref: Option<String>,
}

/// Highest number limit an operator can set.
pub const MAX_NUMBER_LIMIT: u32 = 10_000_000;

/// Whether an order of `wanted` more numbers fits a customer's `limit` when it holds `held`.
pub fn check_number_limit(limit: Option<u32>, held: u32, wanted: u32) -> Result<(), OrderError> {
    match limit {
        Some(limit) if u64::from(held) + u64::from(wanted) > u64::from(limit) => {
            Err(OrderError::OverLimit { limit, held, wanted })
        }
        _ => Ok(()),
    }
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

/// What happens to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// Its numbers are pushed to the customer's linked Zoom account.
    Apply,
    /// Withdrawn before it was applied; its numbers go back to inventory.
    Cancel,
}

/// An order's life: `pending` until it is applied to a linked Zoom account or cancelled; both ends
/// are final (numbers of an applied order that Zoom refused are retried as numbers, not as an order).
impl StateMachine for OrderState {
    type Event = OrderEvent;
    const STATES: &'static [Self] =
        &[OrderState::Pending, OrderState::Applied, OrderState::Cancelled];
    const WHAT: &'static str = "order";

    fn next(self, event: OrderEvent) -> Option<Self> {
        match (self, event) {
            (OrderState::Pending, OrderEvent::Apply) => Some(OrderState::Applied),
            (OrderState::Pending, OrderEvent::Cancel) => Some(OrderState::Cancelled),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        self.as_str()
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
    #[error("number limit: at most {limit} numbers may be held at once; {held} are held and this order asks for {wanted} more (the carrier can raise the limit)")]
    OverLimit { limit: u32, held: u32, wanted: u32 },
    #[error("the order is {0}; only a pending order can be cancelled")]
    NotPending(&'static str),
    #[error(transparent)]
    Transition(#[from] crate::number::TransitionError),
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn an_order_fits_the_limit_or_is_refused_naming_it() {
        assert_eq!(check_number_limit(None, 5_000, 5_000), Ok(()));
        assert_eq!(check_number_limit(Some(10), 7, 3), Ok(()));
        let e = check_number_limit(Some(10), 8, 3).unwrap_err();
        assert_eq!(e, OrderError::OverLimit { limit: 10, held: 8, wanted: 3 });
        assert!(
            e.to_string()
                .starts_with("number limit: at most 10 numbers may be held at once; 8 are held"),
            "{e}"
        );
        assert!(check_number_limit(Some(0), 0, 1).is_err());
        assert!(check_number_limit(Some(u32::MAX), u32::MAX, 1).is_err(), "no overflow");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::assert_table;
    use OrderEvent::*;
    use OrderState::*;

    #[test]
    fn order_moves_exactly_as_the_table_says() {
        assert_table(
            &[Apply, Cancel],
            &[(Pending, Apply, Applied), (Pending, Cancel, Cancelled)],
            &[Applied, Cancelled],
        );
    }

    #[test]
    fn order_state_names_round_trip() {
        for s in OrderState::STATES {
            assert_eq!(OrderState::parse(s.as_str()), Some(*s));
        }
    }
}
