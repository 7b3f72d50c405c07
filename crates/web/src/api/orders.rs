//! `/api/v1/orders`: numbers reserved from the inventory for a customer.

use super::extract::{JsonBody, Params};
use super::numbers::{rfc3339, text, NumberOut};
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::customer::{Order, OrderPick};
use domain::import::MAX_FIELD_LEN;
use domain::search::parse_prefix;
use domain::{CustomerId, Number, OrderId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
}

#[derive(Serialize, ToSchema)]
pub struct OrderOut {
    pub id: String,
    pub customer_id: String,
    /// `pending` (waiting for the customer's Zoom account), `applied` or `cancelled`.
    pub state: String,
    pub number_count: i64,
    pub created_by: String,
    pub created_at: String,
}

impl From<Order> for OrderOut {
    fn from(o: Order) -> Self {
        Self {
            id: o.id.to_string(),
            customer_id: o.customer_id.to_string(),
            state: o.state.as_str().to_owned(),
            number_count: o.number_count,
            created_by: o.created_by,
            created_at: rfc3339(o.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderOut,
    /// The order's numbers in E.164 order.
    pub numbers: Vec<NumberOut>,
}

impl OrderDetail {
    fn new(order: Order, numbers: Vec<Number>) -> Self {
        Self { order: order.into(), numbers: numbers.into_iter().map(NumberOut::from).collect() }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's orders.
    customer_id: Option<String>,
    /// How many of the newest orders (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// List orders, the newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListParams),
    responses(
        (status = 200, description = "orders, newest first", body = OrderList),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_orders(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<OrderList>, ApiError> {
    caller.require(Scope::Read)?;
    let customer = match params.customer_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<CustomerId>()
                .map_err(|_| AppError::invalid("customer_id", "is not a customer id"))?,
        ),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid("limit", "must be 1 to 500").into());
    }
    let orders = state.app.orders(customer, limit).await?;
    Ok(Json(OrderList { orders: orders.into_iter().map(OrderOut::from).collect() }))
}

/// Either `count` numbers picked from available inventory (narrowed by `prefix`, `region` and
/// `tag`), or exactly the `numbers` listed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[schema(value_type = String, format = Uuid)]
    customer_id: CustomerId,
    /// How many numbers to pick.
    #[schema(example = 10, minimum = 1, maximum = 10000)]
    count: Option<u32>,
    /// Pick only numbers starting with this E.164 prefix, like `+1555`.
    prefix: Option<String>,
    /// Pick only numbers of this region.
    #[schema(max_length = 128)]
    region: Option<String>,
    /// Pick only numbers with this tag.
    tag: Option<String>,
    /// Exactly these numbers (E.164), instead of `count`.
    #[schema(example = json!(["+15550100000", "+15550100001"]))]
    numbers: Option<Vec<String>>,
}

impl NewOrder {
    /// The pick and the explicit list, once it is clear which of the two the caller meant.
    fn into_pick(self) -> Result<(OrderPick, Vec<String>), AppError> {
        let filtered = self.prefix.is_some() || self.region.is_some() || self.tag.is_some();
        match (self.count, self.numbers) {
            (Some(_), Some(_)) => {
                Err(AppError::invalid("numbers", "give either count or numbers, not both"))
            }
            (None, None) => Err(AppError::invalid(
                "count",
                "give count (how many numbers to pick) or numbers (which ones)",
            )),
            (None, Some(_)) if filtered => Err(AppError::invalid(
                "numbers",
                "prefix, region and tag narrow a count, not a list of numbers",
            )),
            (None, Some(list)) if list.is_empty() => {
                Err(AppError::invalid("numbers", "list at least one number"))
            }
            (None, Some(list)) => Ok((OrderPick::default(), list)),
            (Some(count), None) => {
                let tag = match self.tag.as_deref() {
                    None => None,
                    Some(raw) => match domain::import::parse_tags(raw)
                        .map_err(|m| AppError::invalid("tag", m))?
                        .as_slice()
                    {
                        [one] => Some(one.clone()),
                        _ => return Err(AppError::invalid("tag", "give one tag")),
                    },
                };
                let pick = OrderPick {
                    count,
                    prefix: parse_prefix(self.prefix.as_deref().unwrap_or_default())
                        .map_err(|m| AppError::invalid("prefix", m))?,
                    region: text("region", self.region.as_deref(), MAX_FIELD_LEN)?,
                    tag,
                };
                Ok((pick, Vec::new()))
            }
        }
    }
}

/// Order numbers for a customer.
///
/// Reserves the numbers, all or none. The order waits as `pending` until the customer's Zoom account
/// is linked.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = NewOrder,
    responses(
        (status = 201, description = "the order and its reserved numbers; `Location` is its URL", body = OrderDetail),
        (status = 409, description = "refused, and nothing reserved: not enough matching numbers, a listed number is not available or not in the inventory, or the contract has ended; `detail` says which", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed, or `customer_id` names no customer; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_order(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewOrder>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let customer = body.customer_id;
    let (pick, explicit) = body.into_pick()?;
    let (order, numbers) =
        state.app.order_numbers(customer, pick, &explicit, &caller.actor()).await.map_err(|e| {
            match e {
                // The customer is a field of the body, not the resource addressed.
                AppError::NotFound => AppError::invalid("customer_id", "no such customer"),
                e => e,
            }
        })?;
    let location = format!("/api/v1/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(OrderDetail::new(order, numbers)),
    ))
}

fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    raw.parse().map_err(|_| ApiError(AppError::NotFound))
}

/// One order and its numbers.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path, description = "order id")),
    responses(
        (status = 200, description = "the order and its numbers", body = OrderDetail),
        (status = 404, description = "no order has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_order(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let (order, numbers) = state.app.order(order_id(&id)?, None).await?;
    Ok(Json(OrderDetail::new(order, numbers)))
}

/// Cancel a pending order; its numbers become available again.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = String, Path, description = "order id")),
    responses(
        (status = 200, description = "the cancelled order", body = OrderOut),
        (status = 404, description = "no order has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the order is not pending", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_order(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(state.app.cancel_order(order_id(&id)?, None, &caller.actor()).await?.into()))
}
