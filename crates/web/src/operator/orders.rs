//! Orders: the recent ones, placing one for a customer, and one order with its numbers.

use super::numbers::{customer_names, NumberRow};
use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::{render, PageError};
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::customer::{Customer, Order, OrderPick, OrderState};
use domain::search::parse_prefix;
use domain::{CustomerId, OrderId};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/orders", get(list).post(create))
        .route("/orders/{id}", get(detail))
        .route("/orders/{id}/cancel", post(cancel))
}

const RECENT_ORDERS: u32 = 100;

/// An order as a table row shows it.
pub struct OrderRow {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub customer: String,
    pub state: &'static str,
    pub count: i64,
    pub created: String,
}

impl OrderRow {
    pub fn new(o: &Order, customer: &str) -> Self {
        Self {
            id: o.id,
            customer_id: o.customer_id,
            customer: customer.to_owned(),
            state: o.state.as_str(),
            count: o.number_count,
            created: when(o.created_at),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewOrder {
    csrf: String,
    customer: String,
    count: String,
    prefix: String,
    region: String,
    tag: String,
    /// One number per line; when given, the count and filters are not used.
    numbers: String,
}

impl NewOrder {
    fn parse(&self) -> Result<(CustomerId, OrderPick, Vec<String>), FormError> {
        let customer = match self.customer.trim() {
            "" => return Err(FormError::new("customer", "choose a customer")),
            c => c.parse().map_err(|_| FormError::new("customer", "no such customer"))?,
        };
        let explicit: Vec<String> = self
            .numbers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if !explicit.is_empty() {
            return Ok((customer, OrderPick::default(), explicit));
        }
        let count = match self.count.trim() {
            "" => {
                return Err(FormError::new(
                    "count",
                    "give how many numbers to reserve, or list the numbers",
                ))
            }
            c => c.parse().map_err(|_| FormError::new("count", "must be a whole number"))?,
        };
        let tag = match domain::import::parse_tags(&self.tag)
            .map_err(|m| FormError::new("tag", m))?
            .as_slice()
        {
            [] => None,
            [one] => Some(one.clone()),
            _ => return Err(FormError::new("tag", "give one tag")),
        };
        let pick = OrderPick {
            count,
            prefix: parse_prefix(&self.prefix).map_err(|m| FormError::new("prefix", m))?,
            region: Some(self.region.trim().to_owned()).filter(|r| !r.is_empty()),
            tag,
        };
        Ok((customer, pick, explicit))
    }
}

#[derive(Template)]
#[template(path = "operator/orders.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    orders: Vec<OrderRow>,
    customers: Vec<Customer>,
    form: NewOrder,
    error: Option<FormError>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    form: NewOrder,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let customers = state.app.customers().await?;
    let names = customer_names(&customers);
    let orders = state.app.orders(None, RECENT_ORDERS).await?;
    let orders = orders
        .iter()
        .map(|o| OrderRow::new(o, names.get(&o.customer_id).map_or("?", String::as_str)))
        .collect();
    let chrome = Chrome::new(state, op, "orders");
    let page = ListPage { carrier: chrome.carrier.clone(), chrome, orders, customers, form, error };
    Ok(render_with(&page, page.error.as_ref()))
}

#[derive(Deserialize)]
struct Preselect {
    customer: Option<String>,
}

async fn list(
    State(state): State<WebState>,
    op: Operator,
    Query(q): Query<Preselect>,
) -> Result<Response, PageError> {
    let form = NewOrder { customer: q.customer.unwrap_or_default(), ..NewOrder::default() };
    list_page(&state, &op, form, None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<NewOrder>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let (customer, pick, explicit) = match form.parse() {
        Ok(parsed) => parsed,
        Err(e) => return list_page(&state, &op, form, Some(e)).await,
    };
    let error = match state.app.order_numbers(customer, pick, &explicit, &op.actor()).await {
        Ok((order, _)) => {
            return Ok(Redirect::to(&format!("/operator/orders/{}", order.id)).into_response())
        }
        // The customer came from a select: a missing one was deleted or made up, not a bad page.
        Err(AppError::NotFound) => FormError::new("customer", "no such customer"),
        Err(e) => e.try_into()?,
    };
    list_page(&state, &op, form, Some(error)).await
}

fn order_id(raw: &str) -> Result<OrderId, PageError> {
    raw.parse().map_err(|_| PageError(AppError::NotFound))
}

#[derive(Template)]
#[template(path = "operator/order.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    order: OrderRow,
    pending: bool,
    /// What the state means for the customer.
    meaning: &'static str,
    numbers: Vec<NumberRow>,
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (order, numbers) = state.app.order(order_id(&id)?, None).await?;
    let customer = state.app.customer(order.customer_id).await?;
    let names = customer_names(std::slice::from_ref(&customer));
    let meaning = match order.state {
        OrderState::Pending => "pending until the customer's Zoom account is linked",
        OrderState::Applied => "applied: the numbers are pushed to the customer's Zoom account",
        OrderState::Cancelled => "cancelled: its numbers went back to the inventory",
    };
    let chrome = Chrome::new(&state, &op, "orders");
    Ok(render(&DetailPage {
        carrier: chrome.carrier.clone(),
        chrome,
        pending: order.state == OrderState::Pending,
        order: OrderRow::new(&order, &customer.name),
        meaning,
        numbers: numbers.iter().map(|n| NumberRow::new(n, &names)).collect(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn cancel(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id = order_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.cancel_order(id, None, &op.actor()).await?;
    Ok(Redirect::to(&format!("/operator/orders/{id}")).into_response())
}
