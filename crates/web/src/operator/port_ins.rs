//! Port-ins: an operator records a customer's numbers coming from another carrier (the losing carrier,
//! the port date), follows each port-in's state (pushed to Zoom inactive, completing, active), and
//! marks one complete, moves it to another date or cancels it.

use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::customer::Customer;
use domain::port_in::PortIn;
use domain::CustomerId;
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/port-ins", get(list).post(create))
        .route("/port-ins/{id}", get(detail))
        .route("/port-ins/{id}/complete", post(complete))
        .route("/port-ins/{id}/cancel", post(cancel))
        .route("/port-ins/{id}/reschedule", post(reschedule))
}

pub struct PortInRow {
    pub port_in: PortIn,
    pub customer: String,
    pub created: String,
}

impl PortInRow {
    fn new(p: PortIn, names: &HashMap<CustomerId, String>) -> Self {
        Self {
            customer: names
                .get(&p.customer_id)
                .cloned()
                .unwrap_or_else(|| p.customer_id.to_string()),
            created: when(p.created_at),
            port_in: p,
        }
    }

    /// Whether it still waits for Zoom or the date (the page refreshes itself).
    pub fn moving(&self) -> bool {
        use domain::port_in::PortInState::*;
        matches!(self.port_in.state, Requested | Activating)
    }
}

/// What the new-port-in form was given, shown again with a refusal.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewPortIn {
    pub csrf: String,
    pub customer: String,
    pub numbers: String,
    pub losing_carrier: String,
    pub requested_date: String,
}

#[derive(Template)]
#[template(path = "operator/port_ins.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    rows: Vec<PortInRow>,
    customers: Vec<Customer>,
    form: NewPortIn,
    error: Option<FormError>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    customer: String,
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    form: NewPortIn,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let customers = state.app.customers().await?;
    let names: HashMap<CustomerId, String> =
        customers.iter().map(|c| (c.id, c.name.clone())).collect();
    let rows =
        state.app.port_ins(None).await?.into_iter().map(|p| PortInRow::new(p, &names)).collect();
    let chrome = Chrome::new(state, op, "port-ins");
    let page = ListPage { carrier: chrome.carrier.clone(), chrome, rows, customers, form, error };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn list(
    State(state): State<WebState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let tomorrow = (state.app.now().date() + time::Duration::days(1)).to_string();
    let form = NewPortIn { customer: q.customer, requested_date: tomorrow, ..Default::default() };
    list_page(&state, &op, form, None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<NewPortIn>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let customer: CustomerId = match form.customer.trim().parse() {
        Ok(c) => c,
        Err(_) => {
            let e = FormError::new("customer_id", "choose a customer");
            return list_page(&state, &op, form, Some(e)).await;
        }
    };
    // One per line, or separated by commas or spaces.
    let numbers: Vec<String> = form
        .numbers
        .split(['\n', ',', '\r', ' ', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let by = domain::Actor::Operator(op.user.email.clone());
    match state
        .app
        .create_port_in(customer, &numbers, &form.losing_carrier, &form.requested_date, &by)
        .await
    {
        Ok(p) => Ok(Redirect::to(&format!("/operator/port-ins/{}", p.id)).into_response()),
        Err(e) => {
            let e = FormError::try_from(e)?;
            list_page(&state, &op, form, Some(e)).await
        }
    }
}

#[derive(Template)]
#[template(path = "operator/port_in.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    row: PortInRow,
    history: Vec<(String, domain::port_in::PortInHistory)>,
    error: Option<FormError>,
}

async fn detail_page(
    state: &WebState,
    op: &Operator,
    id: uuid::Uuid,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let p = state.app.port_in(id).await?;
    let customer = state.app.customer(p.customer_id).await?;
    let names = HashMap::from([(customer.id, customer.name)]);
    let history = p.events.iter().map(|e| (when(e.at), e.clone())).collect();
    let chrome = Chrome::new(state, op, "port-ins");
    let page = DetailPage {
        carrier: chrome.carrier.clone(),
        chrome,
        row: PortInRow::new(p, &names),
        history,
        error,
    };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    detail_page(&state, &op, id, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MoveForm {
    csrf: String,
    requested_date: String,
}

enum Move {
    Complete,
    Cancel,
    Reschedule,
}

async fn apply(
    state: WebState,
    op: Operator,
    id: String,
    form: MoveForm,
    what: Move,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let by = domain::Actor::Operator(op.user.email.clone());
    let done = match what {
        Move::Complete => state.app.complete_port_in(id, &by).await,
        Move::Cancel => state.app.cancel_port_in(id, &by).await,
        Move::Reschedule => state.app.reschedule_port_in(id, &form.requested_date, &by).await,
    };
    match done {
        Ok(_) => Ok(Redirect::to(&format!("/operator/port-ins/{id}")).into_response()),
        Err(e) => {
            let e = FormError::try_from(e)?;
            detail_page(&state, &op, id, Some(e)).await
        }
    }
}

async fn complete(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    apply(state, op, id, form, Move::Complete).await
}

async fn cancel(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    apply(state, op, id, form, Move::Cancel).await
}

async fn reschedule(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    apply(state, op, id, form, Move::Reschedule).await
}
