//! `/api/v1/webhook-endpoints`: where peerex sends signed events (Standard Webhooks), managed by the
//! carrier's operators, with each endpoint's deliveries listed and replayable. The events themselves
//! are described in the document's `webhooks` section ([`add_webhooks`]).

use super::extract::{JsonBody, Params};
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::webhooks::{EndpointChange, EndpointInput};
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::webhook::{Delivery, DeliveryState, Endpoint, EventType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/webhook-endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/webhook-endpoints/{id}",
            get(get_endpoint).put(update_endpoint).delete(delete_endpoint),
        )
        .route("/webhook-endpoints/{id}/rotate-secret", post(rotate_secret))
        .route("/webhook-endpoints/{id}/deliveries", get(list_deliveries))
        .route("/webhook-endpoints/{id}/deliveries/{event_id}/replay", post(replay_delivery))
}

fn uuid(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError(AppError::NotFound))
}

#[derive(Serialize, ToSchema)]
pub struct EndpointOut {
    id: String,
    url: String,
    description: String,
    /// The event types it hears; empty for all.
    event_types: Vec<String>,
    enabled: bool,
    /// Why it is disabled: by an operator, or by peerex after it kept failing.
    disabled_reason: Option<String>,
    /// Failed attempts since its last success.
    failures: i64,
    /// Until when the secret before the last rotation still signs beside the current one.
    previous_secret_until: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url,
            description: e.description,
            event_types: e.event_types.iter().map(|t| t.as_str().to_owned()).collect(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failures: e.failures,
            previous_secret_until: e.previous_secret_until.map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// An endpoint with its secret: answered only when the secret is made (creation, rotation).
#[derive(Serialize, ToSchema)]
pub struct EndpointWithSecret {
    endpoint: EndpointOut,
    /// `whsec_<base64>`: configure it in the receiver's Standard Webhooks library. Shown only now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    endpoints: Vec<EndpointOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://` (or `http://`); private and loopback addresses are refused unless the operator
    /// configuration allows them.
    #[schema(example = "https://oss.carrier.example/peerex-events")]
    url: String,
    #[serde(default)]
    description: String,
    /// Event types to send (see the document's `webhooks`); empty or absent for all.
    #[serde(default)]
    #[schema(example = json!(["number.state_changed", "order.placed"]))]
    event_types: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    /// `false` stops deliveries (they wait); `true` resumes them and clears the failure count.
    enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old secret keeps signing beside the new one (default: the configured overlap).
    #[schema(minimum = 0, maximum = 2592000)]
    overlap_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryOut {
    /// The event's id (`webhook-id`).
    event_id: String,
    event_type: String,
    /// Deliveries of one key (a number's E.164, else `order:<id>`...) arrive in order.
    ordering_key: String,
    /// `pending`, `running`, `delivered` or `failed` (given up).
    state: String,
    attempts: i64,
    next_attempt_at: String,
    /// The receiver's last HTTP status, if it answered.
    last_status: Option<i64>,
    last_error: Option<String>,
    last_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            event_id: d.event_id.to_string(),
            event_type: d.event_type,
            ordering_key: d.ordering_key,
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: rfc3339(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state: `pending`, `running`, `delivered` or `failed`.
    state: Option<String>,
    /// How many, the newest event first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// List the webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhooks", responses((status = 200, description = "every endpoint", body = EndpointList)))]
pub async fn list_endpoints(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<EndpointList>, ApiError> {
    caller.require(Scope::Read)?;
    let endpoints = state.app.webhook_endpoints().await?;
    Ok(Json(EndpointList { endpoints: endpoints.into_iter().map(EndpointOut::from).collect() }))
}

/// Add a webhook endpoint.
///
/// The answer carries the endpoint's secret, shown only this once. The endpoint hears the events
/// written from now on.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhooks", request_body = NewEndpoint,
    responses(
        (status = 201, description = "created; `Location` is its URL", body = EndpointWithSecret),
        (status = 422, description = "a field is malformed, or the URL points at a private address; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_endpoint(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let input = EndpointInput {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
    };
    let (e, secret) = state.app.create_webhook_endpoint(&caller.actor(), input).await?;
    let location = format!("/api/v1/webhook-endpoints/{}", e.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(EndpointWithSecret { endpoint: e.into(), secret }),
    ))
}

/// Read one webhook endpoint.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path, description = "endpoint id")),
    responses(
        (status = 200, description = "the endpoint", body = EndpointOut),
        (status = 404, description = "no endpoint has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_endpoint(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.app.webhook_endpoint(uuid(&id)?).await?.into()))
}

/// Change a webhook endpoint: URL, description, event types, enabled. Absent fields stay.
#[utoipa::path(put, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path, description = "endpoint id")), request_body = EndpointUpdate,
    responses(
        (status = 200, description = "the endpoint as it is now", body = EndpointOut),
        (status = 404, description = "no endpoint has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_endpoint(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EndpointUpdate>,
) -> Result<Json<EndpointOut>, ApiError> {
    caller.require(Scope::Write)?;
    let change = EndpointChange {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        enabled: body.enabled,
    };
    Ok(Json(state.app.update_webhook_endpoint(&caller.actor(), uuid(&id)?, change).await?.into()))
}

/// Delete a webhook endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path, description = "endpoint id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no endpoint has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_endpoint(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state.app.delete_webhook_endpoint(&caller.actor(), uuid(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a webhook endpoint a new secret.
///
/// The answer carries the new secret, shown only this once. The old one keeps signing beside it
/// (`webhook-signature` then holds two signatures) for `overlap_seconds`, so receivers switch
/// without missing a delivery.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path, description = "endpoint id")), request_body = Rotation,
    responses(
        (status = 200, description = "the endpoint and its new secret", body = EndpointWithSecret),
        (status = 404, description = "no endpoint has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`overlap_seconds` is out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_secret(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rotation>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    caller.require(Scope::Write)?;
    let overlap = body.overlap_seconds.map(time::Duration::seconds);
    let (e, secret) = state.app.rotate_webhook_secret(&caller.actor(), uuid(&id)?, overlap).await?;
    Ok(Json(EndpointWithSecret { endpoint: e.into(), secret }))
}

/// List an endpoint's deliveries, the newest event first.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", params(("id" = String, Path, description = "endpoint id"), DeliveryParams),
    responses(
        (status = 200, description = "deliveries, newest event first", body = DeliveryList),
        (status = 404, description = "no endpoint has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_deliveries(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    caller.require(Scope::Read)?;
    let filter = match p.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            ApiError(AppError::invalid("state", "must be pending, running, delivered or failed"))
        })?),
    };
    let list = state.app.webhook_deliveries(uuid(&id)?, filter, p.limit.unwrap_or(100)).await?;
    Ok(Json(DeliveryList { deliveries: list.into_iter().map(DeliveryOut::from).collect() }))
}

/// Send an event to an endpoint again (also one it never had).
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/deliveries/{event_id}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "endpoint id"), ("event_id" = String, Path, description = "the event's id (`webhook-id`)")),
    responses(
        (status = 202, description = "queued: it is delivered shortly, after any earlier event of its key still waiting"),
        (status = 404, description = "no such endpoint or event", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replay_delivery(
    State(state): State<WebState>,
    caller: Caller,
    Path((id, event)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    state.app.replay_webhook_delivery(&caller.actor(), uuid(&id)?, uuid(&event)?).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Adds the OpenAPI 3.1 `webhooks` section (utoipa 5 has no attribute for it): one entry per event
/// type, a POST with the Standard Webhooks headers and the event's body.
pub fn add_webhooks(doc: &mut serde_json::Value) {
    let mut hooks = serde_json::Map::new();
    for t in EventType::ALL {
        let header = |name: &str, description: &str| serde_json::json!({ "name": name, "in": "header", "required": true, "description": description, "schema": { "type": "string" } });
        hooks.insert(
            t.as_str().to_owned(),
            serde_json::json!({
                "post": {
                    "summary": t.as_str(),
                    "description": t.description(),
                    "tags": ["webhooks"],
                    "parameters": [
                        header("webhook-id", "the event's id: the same on every attempt (deduplicate on it)"),
                        header("webhook-timestamp", "when this attempt was sent, in seconds since the epoch"),
                        header("webhook-signature", "`v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">` with the endpoint's secret (base64 after `whsec_`); several, space-separated, while a rotated secret still signs"),
                    ],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": {
                            "type": "object",
                            "required": ["type", "timestamp", "data"],
                            "properties": {
                                "type": { "type": "string", "const": t.as_str() },
                                "timestamp": { "type": "string", "format": "date-time", "description": "when the change happened" },
                                "data": { "type": "object", "description": t.description() }
                            }
                        } } }
                    },
                    "responses": {
                        "2XX": { "description": "received; any other answer (redirects included) is retried with backoff" }
                    }
                }
            }),
        );
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("openapi".into(), "3.1.0".into());
        obj.insert("webhooks".into(), serde_json::Value::Object(hooks));
    }
}
