//! `/api/v1/port-ins`: a customer's numbers brought from another carrier. The operator records a
//! port-in (numbers, losing carrier, requested date); peerex pushes the numbers to the customer's Zoom
//! account inactive, and activates them on the date or when the port-in is marked complete. A
//! port-in can be moved to another date or cancelled until it completes.

use super::extract::{JsonBody, Params};
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
use domain::auth::Scope;
use domain::port_in::PortIn;
use domain::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/port-ins", get(list_port_ins).post(create_port_in))
        .route("/port-ins/{id}", get(get_port_in))
        .route("/port-ins/{id}/complete", post(complete_port_in))
        .route("/port-ins/{id}/cancel", post(cancel_port_in))
        .route("/port-ins/{id}/reschedule", post(reschedule_port_in))
}

#[derive(Serialize, ToSchema)]
pub struct PortInOut {
    pub id: String,
    pub customer_id: String,
    pub losing_carrier: String,
    /// The port date (UTC), `YYYY-MM-DD`: the numbers are activated in Zoom on it.
    pub requested_date: String,
    /// `requested` (being pushed to Zoom inactive), `pushed_inactive` (in Zoom, pending; not
    /// routing), `activating`, `active` or `cancelled`.
    pub state: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub numbers: Vec<PortInNumberOut>,
    pub history: Vec<PortInEventOut>,
}

#[derive(Serialize, ToSchema)]
pub struct PortInNumberOut {
    /// E.164.
    pub number: String,
    /// The number's state: `porting` until activated, then `active`; `available` once a cancelled
    /// port-in's number left Zoom and the customer.
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortInEventOut {
    pub at: String,
    pub actor: String,
    pub from: Option<String>,
    pub to: String,
    pub note: Option<String>,
}

impl From<PortIn> for PortInOut {
    fn from(p: PortIn) -> Self {
        Self {
            id: p.id.to_string(),
            customer_id: p.customer_id.to_string(),
            losing_carrier: p.losing_carrier,
            requested_date: p.requested_date.to_string(),
            state: p.state.as_str().to_owned(),
            created_by: p.created_by,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            numbers: p
                .numbers
                .into_iter()
                .map(|n| PortInNumberOut {
                    number: n.e164.to_string(),
                    state: n.state.as_str().to_owned(),
                    reason: n.reason,
                })
                .collect(),
            history: p
                .events
                .into_iter()
                .map(|e| PortInEventOut {
                    at: rfc3339(e.at),
                    actor: e.actor,
                    from: e.from.map(|s| s.as_str().to_owned()),
                    to: e.to.as_str().to_owned(),
                    note: e.note,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PortInList {
    pub port_ins: Vec<PortInOut>,
}

/// A port-in to record.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPortIn {
    #[schema(value_type = String, format = Uuid)]
    customer_id: String,
    /// The numbers (E.164), each unknown to the inventory (it is added) or `available` in it.
    #[schema(example = json!(["+15550109000", "+15550109001"]))]
    numbers: Vec<String>,
    /// The carrier the numbers come from.
    #[schema(example = "Old Tel", min_length = 1, max_length = 200)]
    losing_carrier: String,
    /// The port date, `YYYY-MM-DD`, today or later.
    #[schema(example = "2026-12-10")]
    requested_date: String,
}

/// A new port date.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    /// `YYYY-MM-DD`, today or later.
    #[schema(example = "2026-12-14")]
    requested_date: String,
}

fn customer_id(raw: &str) -> Result<CustomerId, AppError> {
    raw.parse::<CustomerId>().map_err(|_| AppError::invalid("customer_id", "is not a customer id"))
}

fn port_in_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError(AppError::NotFound))
}

/// Record a port-in.
///
/// All or nothing. The numbers become the customer's (`porting`) and are pushed to its Zoom account
/// inactive (Zoom shows them pending); they answer `404 not_provisioned` at the SIP edge until the
/// port-in completes.
#[utoipa::path(post, path = "/api/v1/port-ins", tag = "port-ins", request_body = NewPortIn,
    responses(
        (status = 201, description = "recorded; `Location` is its URL", body = PortInOut),
        (status = 409, description = "a number belongs to another customer or is busy; `field` is `numbers` and the detail names each", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is malformed (a number not in E.164, named by its row `numbers[i]`; a date in the past; an unknown customer); `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_port_in(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewPortIn>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let customer = customer_id(&body.customer_id)?;
    let p = state
        .app
        .create_port_in(
            customer,
            &body.numbers,
            &body.losing_carrier,
            &body.requested_date,
            &caller.actor(),
        )
        .await?;
    let location = format!("/api/v1/port-ins/{}", p.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(PortInOut::from(p))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's port-ins.
    customer_id: Option<String>,
}

/// List port-ins, newest first.
#[utoipa::path(get, path = "/api/v1/port-ins", tag = "port-ins", params(ListParams),
    responses(
        (status = 200, description = "port-ins, newest first", body = PortInList),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_port_ins(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<PortInList>, ApiError> {
    caller.require(Scope::Read)?;
    let customer = match params.customer_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(customer_id(s)?),
    };
    let port_ins = state.app.port_ins(customer).await?;
    Ok(Json(PortInList { port_ins: port_ins.into_iter().map(PortInOut::from).collect() }))
}

/// One port-in with its numbers and history.
#[utoipa::path(get, path = "/api/v1/port-ins/{id}", tag = "port-ins", params(("id" = String, Path, description = "port-in id")),
    responses(
        (status = 200, description = "the port-in", body = PortInOut),
        (status = 404, description = "no port-in has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_port_in(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PortInOut>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.app.port_in(port_in_id(&id)?).await?.into()))
}

/// Mark a port-in complete now: its numbers are activated in Zoom (`status` true), then route.
///
/// Only a port-in whose numbers Zoom holds (`pushed_inactive`); of two at once, one wins.
#[utoipa::path(post, path = "/api/v1/port-ins/{id}/complete", tag = "port-ins", params(("id" = String, Path, description = "port-in id")),
    responses(
        (status = 200, description = "completing; the port-in now", body = PortInOut),
        (status = 404, description = "no port-in has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the port-in is not waiting in Zoom (not yet pushed, already completed or cancelled); `field` is `state`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn complete_port_in(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PortInOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(state.app.complete_port_in(port_in_id(&id)?, &caller.actor()).await?.into()))
}

/// Cancel a port-in that has not completed: its numbers are removed from Zoom and leave the customer.
#[utoipa::path(post, path = "/api/v1/port-ins/{id}/cancel", tag = "port-ins", params(("id" = String, Path, description = "port-in id")),
    responses(
        (status = 200, description = "cancelled; the port-in now", body = PortInOut),
        (status = 404, description = "no port-in has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the port-in completed or was cancelled already; `field` is `state`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_port_in(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PortInOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(state.app.cancel_port_in(port_in_id(&id)?, &caller.actor()).await?.into()))
}

/// Move a port-in that has not completed to another date.
#[utoipa::path(post, path = "/api/v1/port-ins/{id}/reschedule", tag = "port-ins", params(("id" = String, Path, description = "port-in id")), request_body = Reschedule,
    responses(
        (status = 200, description = "moved; the port-in now", body = PortInOut),
        (status = 404, description = "no port-in has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the port-in completed or was cancelled; `field` is `state`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the date is malformed or in the past; `field` is `requested_date`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reschedule_port_in(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reschedule>,
) -> Result<Json<PortInOut>, ApiError> {
    caller.require(Scope::Write)?;
    let id = port_in_id(&id)?;
    Ok(Json(state.app.reschedule_port_in(id, &body.requested_date, &caller.actor()).await?.into()))
}
