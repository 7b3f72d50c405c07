//! Customers: the list, creating one, and one customer's contract, admins and orders.

use super::orders::OrderRow;
use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::auth::{Role, User};
use domain::customer::{ContractState, Customer};
use domain::onboarding::LinkState;
use domain::CustomerId;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/customers", get(list).post(create))
        .route("/customers/{id}", get(detail))
        .route("/customers/{id}/contract", post(set_contract))
        .route("/customers/{id}/number-limit", post(set_number_limit))
        .route("/customers/{id}/billing-ref", post(set_billing_ref))
        .route("/customers/{id}/users", post(add_user))
}

/// How many of a customer's orders its page lists, newest first.
const ORDERS_SHOWN: u32 = 50;

/// A customer id from the path; garbage is as unknown as a well-formed id nobody has.
pub fn customer_id(raw: &str) -> Result<CustomerId, PageError> {
    raw.parse().map_err(|_| PageError(AppError::NotFound))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewCustomer {
    csrf: String,
    name: String,
    contract_ref: String,
}

#[derive(Template)]
#[template(path = "operator/customers.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    customers: Vec<(Customer, String)>,
    form: NewCustomer,
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
    form: NewCustomer,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let customers = state.app.customers().await?.into_iter().map(|c| {
        let created = when(c.created_at);
        (c, created)
    });
    let chrome = Chrome::new(state, op, "customers");
    let page = ListPage {
        carrier: chrome.carrier.clone(),
        chrome,
        customers: customers.collect(),
        form,
        error,
    };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn list(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    list_page(&state, &op, NewCustomer::default(), None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<NewCustomer>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    match state.app.create_customer(&form.name, &form.contract_ref).await {
        Ok(c) => Ok(Redirect::to(&format!("/operator/customers/{}", c.id)).into_response()),
        Err(e) => {
            let error = Some(e.try_into()?);
            list_page(&state, &op, form, error).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewUser {
    csrf: String,
    email: String,
    password: String,
}

#[derive(Template)]
#[template(path = "operator/customer.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    c: Customer,
    created: String,
    users: Vec<(User, String)>,
    orders: Vec<OrderRow>,
    email: String,
    error: Option<FormError>,
    /// Names of every Zoom trunk, for the trunk selector.
    trunks: Vec<String>,
    /// The Zoom link: state (`linked`, `removed`, or `needs_reauth` for a live link Zoom no longer
    /// accepts), account, since when (`None` when never linked).
    zoom: Option<(String, String, String)>,
    /// What Zoom said when it refused the link's authorization.
    reauth_reason: String,
    /// The link's history, refusals included: (when, kind, account, message).
    zoom_events: Vec<(String, String, String, String)>,
    /// What Zoom last said of the customer's numbers: (number, assigned to a user).
    in_zoom: Vec<(String, bool)>,
    /// How many numbers the customer holds (what its number limit counts).
    held: u32,
}

impl DetailPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }

    fn assigned_in_zoom(&self) -> usize {
        self.in_zoom.iter().filter(|(_, a)| *a).count()
    }

    fn ended(&self) -> bool {
        self.c.contract_state == ContractState::Ended
    }

    /// Whether the customer is bound to the trunk called `name`.
    fn bound_to(&self, name: &str) -> bool {
        self.c.zoom_trunk.as_ref().is_some_and(|t| t.as_str() == name)
    }
}

async fn detail_page(
    state: &WebState,
    op: &Operator,
    id: CustomerId,
    email: String,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let c = state.app.customer(id).await?;
    let users = state.app.users(Some(id)).await?.into_iter().map(|u| {
        let created = when(u.created_at);
        (u, created)
    });
    let orders = state
        .app
        .orders(Some(id), ORDERS_SHOWN)
        .await?
        .iter()
        .map(|o| OrderRow::new(o, &c.name))
        .collect();
    let chrome = Chrome::new(state, op, "customers");
    let trunks = state.app.trunks().await?.into_iter().map(|t| t.name.to_string()).collect();
    let link = state.app.zoom_link(id).await?;
    let reauth_reason = link.as_ref().and_then(|l| l.reauth_reason.clone()).unwrap_or_default();
    let zoom = link.map(|l| match l.reauth_needed_at.filter(|_| l.state == LinkState::Linked) {
        Some(at) => ("needs_reauth".to_owned(), l.zoom_account_id.to_string(), when(at)),
        None => {
            let since = when(l.removed_at.unwrap_or(l.linked_at));
            (l.state.as_str().to_owned(), l.zoom_account_id.to_string(), since)
        }
    });
    let zoom_events = state
        .app
        .link_events(id, 20)
        .await?
        .into_iter()
        .map(|e| (when(e.at), e.kind, e.zoom_account_id.to_string(), e.message))
        .collect();
    let in_zoom = state
        .app
        .zoom_presence(id)
        .await?
        .into_iter()
        .map(|(n, a, _)| (n.to_string(), a.unwrap_or(false)))
        .collect();
    let held = state.app.numbers_held(id).await?;
    let page = DetailPage {
        held,
        carrier: chrome.carrier.clone(),
        chrome,
        created: when(c.created_at),
        c,
        users: users.collect(),
        orders,
        email,
        error,
        trunks,
        zoom,
        reauth_reason,
        zoom_events,
        in_zoom,
    };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    detail_page(&state, &op, customer_id(&id)?, String::new(), None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContractForm {
    csrf: String,
    state: String,
}

async fn set_contract(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<ContractForm>,
) -> Result<Response, PageError> {
    let id = customer_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let Some(contract) = ContractState::parse(&form.state) else {
        let error = FormError::new("state", "must be active or ended");
        return detail_page(&state, &op, id, String::new(), Some(error)).await;
    };
    state.app.set_contract_state(id, contract).await?;
    Ok(Redirect::to(&format!("/operator/customers/{id}")).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LimitForm {
    csrf: String,
    /// Empty for no limit.
    number_limit: String,
}

async fn set_number_limit(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<LimitForm>,
) -> Result<Response, PageError> {
    let id = customer_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.customer(id).await?;
    let raw = form.number_limit.trim().replace([',', '_', ' '], "");
    let limit = if raw.is_empty() {
        Ok(None)
    } else {
        raw.parse::<u32>().map(Some).map_err(|_| {
            AppError::invalid(
                "number_limit",
                format!(
                    "{:?} is not a whole number from 0 to {}; leave it empty for no limit",
                    form.number_limit,
                    domain::customer::MAX_NUMBER_LIMIT
                ),
            )
        })
    };
    match limit {
        Ok(limit) => match state.app.set_number_limit(id, limit).await {
            Ok(_) => {
                Ok(Redirect::to(&format!("/operator/customers/{id}#number-limit")).into_response())
            }
            Err(e) => detail_page(&state, &op, id, String::new(), Some(e.try_into()?)).await,
        },
        Err(e) => detail_page(&state, &op, id, String::new(), Some(e.try_into()?)).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BillingRefForm {
    csrf: String,
    /// Empty to clear it.
    billing_ref: String,
}

async fn set_billing_ref(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<BillingRefForm>,
) -> Result<Response, PageError> {
    let id = customer_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.customer(id).await?;
    match state.app.set_billing_ref(id, &form.billing_ref).await {
        Ok(_) => Ok(Redirect::to(&format!("/operator/customers/{id}#billing-ref")).into_response()),
        Err(e) => detail_page(&state, &op, id, String::new(), Some(e.try_into()?)).await,
    }
}

async fn add_user(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<NewUser>,
) -> Result<Response, PageError> {
    let id = customer_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    // Unknown customer first, so a form posted to a made-up id is a 404 rather than a form error.
    state.app.customer(id).await?;
    match state.app.create_user(&form.email, &form.password, Role::CustomerAdmin, Some(id)).await {
        Ok(_) => Ok(Redirect::to(&format!("/operator/customers/{id}#admins")).into_response()),
        Err(e) => {
            let error = Some(e.try_into()?);
            detail_page(&state, &op, id, form.email, error).await
        }
    }
}
