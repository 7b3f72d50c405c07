//! `/api/v1/customers`: the carrier's customers, their contracts and their admins' accounts.

use super::extract::JsonBody;
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::{Role, Scope, User};
use domain::customer::{ContractState, Customer};
use domain::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/customers", get(list_customers).post(create_customer))
        .route("/customers/{id}", get(get_customer))
        .route("/customers/{id}/contract", post(set_contract))
        .route("/customers/{id}/number_limit", post(set_number_limit))
        .route("/customers/{id}/billing_ref", post(set_billing_ref))
        .route("/customers/{id}/admins", post(create_admin))
}

/// Whether a customer's contract takes new orders. An ended contract keeps its numbers until they
/// are released.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Contract {
    Active,
    Ended,
}

impl From<ContractState> for Contract {
    fn from(s: ContractState) -> Self {
        match s {
            ContractState::Active => Contract::Active,
            ContractState::Ended => Contract::Ended,
        }
    }
}

impl From<Contract> for ContractState {
    fn from(s: Contract) -> Self {
        match s {
            Contract::Active => ContractState::Active,
            Contract::Ended => ContractState::Ended,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerOut {
    pub id: String,
    pub name: String,
    /// The carrier's reference for the contract; unique.
    pub contract_ref: String,
    pub contract_state: Contract,
    pub created_at: String,
    /// The Zoom trunk its numbers are pushed under and its calls routed to; `null` until set.
    pub zoom_trunk: Option<String>,
    /// The most numbers it may hold at once (reserved, being pushed, active, waiting for release,
    /// suspended); orders beyond it are refused. `null`: no limit.
    pub number_limit: Option<u32>,
    /// The customer's reference in the carrier's billing system, carried on its usage records.
    pub billing_ref: Option<String>,
}

impl From<Customer> for CustomerOut {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            contract_ref: c.contract_ref,
            contract_state: c.contract_state.into(),
            created_at: rfc3339(c.created_at),
            zoom_trunk: c.zoom_trunk.map(|t| t.to_string()),
            number_limit: c.number_limit,
            billing_ref: c.billing_ref,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CustomerList {
    pub customers: Vec<CustomerOut>,
}

/// List every customer.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", responses((status = 200, description = "all customers", body = CustomerList)))]
pub async fn list_customers(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<CustomerList>, ApiError> {
    caller.require(Scope::Read)?;
    let customers = state.app.customers().await?;
    Ok(Json(CustomerList { customers: customers.into_iter().map(CustomerOut::from).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[schema(example = "Example Corp", min_length = 1, max_length = 200)]
    name: String,
    #[schema(example = "C-2024-0001", min_length = 1, max_length = 64)]
    contract_ref: String,
}

/// Create a customer with an active contract.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    responses(
        (status = 201, description = "created; `Location` is its URL", body = CustomerOut),
        (status = 409, description = "another customer has this `contract_ref`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_customer(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewCustomer>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let customer = state.app.create_customer(&body.name, &body.contract_ref).await?;
    let location = format!("/api/v1/customers/{}", customer.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(CustomerOut::from(customer))))
}

/// Ids in paths that do not parse name nothing that exists.
pub(super) fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    raw.parse().map_err(|_| ApiError(AppError::NotFound))
}

/// Read one customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path, description = "customer id")),
    responses(
        (status = 200, description = "the customer", body = CustomerOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_customer(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CustomerOut>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.app.customer(customer_id(&id)?).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractChange {
    state: Contract,
}

/// End a customer's contract, or make it active again.
///
/// An ended contract takes no new orders; its numbers stay the customer's until they are released.
#[utoipa::path(post, path = "/api/v1/customers/{id}/contract", tag = "customers", params(("id" = String, Path, description = "customer id")), request_body = ContractChange,
    responses(
        (status = 200, description = "the customer as it is now", body = CustomerOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`state` is not `active` or `ended`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_contract(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContractChange>,
) -> Result<Json<CustomerOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(state.app.set_contract_state(customer_id(&id)?, body.state.into()).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberLimit {
    /// The most numbers the customer may hold at once, or `null` for no limit.
    #[schema(example = 500, minimum = 0, maximum = 10000000)]
    number_limit: Option<i64>,
}

/// Set (or lift) a customer's number limit.
///
/// The most numbers the customer may hold at once: reserved, being pushed to Zoom, active, waiting for
/// release or suspended. An order that would take it past the limit is refused (409) naming the
/// limit, however many orders run at once; numbers it holds already stay when the limit is lowered.
#[utoipa::path(post, path = "/api/v1/customers/{id}/number_limit", tag = "customers", params(("id" = String, Path, description = "customer id")), request_body = NumberLimit,
    responses(
        (status = 200, description = "the customer as it is now", body = CustomerOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`number_limit` is negative or too large", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_number_limit(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NumberLimit>,
) -> Result<Json<CustomerOut>, ApiError> {
    caller.require(Scope::Write)?;
    let id = customer_id(&id)?;
    let limit = match body.number_limit {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            AppError::invalid(
                "number_limit",
                format!(
                    "must be 0 to {}, or null for no limit",
                    domain::customer::MAX_NUMBER_LIMIT
                ),
            )
        })?),
    };
    Ok(Json(state.app.set_number_limit(id, limit).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingRef {
    /// The customer's reference in the billing system (at most 64 characters), or `null` to clear it.
    #[schema(example = "ACCT-20931")]
    billing_ref: Option<String>,
}

/// Set (or clear) a customer's billing reference, carried on its usage records from then on.
#[utoipa::path(post, path = "/api/v1/customers/{id}/billing_ref", tag = "customers", params(("id" = String, Path, description = "customer id")), request_body = BillingRef,
    responses(
        (status = 200, description = "the customer as it is now", body = CustomerOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`billing_ref` is too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_billing_ref(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BillingRef>,
) -> Result<Json<CustomerOut>, ApiError> {
    caller.require(Scope::Write)?;
    let id = customer_id(&id)?;
    let value = body.billing_ref.unwrap_or_default();
    Ok(Json(state.app.set_billing_ref(id, &value).await?.into()))
}

/// No `Debug`: the password must not reach a log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(example = "it@example.com")]
    email: String,
    /// At least 10 characters. Never shown again.
    #[schema(format = Password)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    /// `customer_admin`
    pub role: String,
    pub customer_id: Option<String>,
    pub created_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            role: u.role.as_str().to_owned(),
            customer_id: u.customer_id.map(|c| c.to_string()),
            created_at: rfc3339(u.created_at),
        }
    }
}

/// Create a customer admin.
///
/// The account one of the customer's admins signs in to the customer portal with.
#[utoipa::path(post, path = "/api/v1/customers/{id}/admins", tag = "customers", params(("id" = String, Path, description = "customer id")), request_body = NewAdmin,
    responses(
        (status = 201, description = "created; the password is not echoed", body = UserOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a user with this `email` already exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`email` or `password` is not acceptable; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_admin(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewAdmin>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let customer = customer_id(&id)?;
    let user = state
        .app
        .create_user(&body.email, &body.password, Role::CustomerAdmin, Some(customer))
        .await
        .map_err(|e| match e {
            // The customer is the path's, not a field the caller typed.
            AppError::Invalid { field: "customer", .. } => AppError::NotFound,
            e => e,
        })?;
    Ok((StatusCode::CREATED, Json(UserOut::from(user))))
}
