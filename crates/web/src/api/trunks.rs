//! `/api/v1/trunks` (issue 7): the Zoom trunks (`sip_trunk_name`s) calls are routed to, and
//! `/api/v1/customers/{id}/trunk`, which binds a customer to one.

use super::customers::{customer_id, CustomerOut};
use super::extract::JsonBody;
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::trunks::TrunkInput;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::trunk::ZoomTrunk;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/trunks", get(list_trunks).post(create_trunk))
        .route("/trunks/{name}", get(get_trunk).put(update_trunk).delete(delete_trunk))
        .route("/customers/{id}/trunk", post(set_customer_trunk))
}

/// How inbound Request-URI digits become E.164 for this trunk.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Numbering {
    /// Country code national numbers get, without `+`.
    #[schema(example = "1")]
    country_code: String,
    /// National (trunk) prefix stripped from national numbers; empty for none.
    #[schema(example = "1")]
    #[serde(default)]
    national_prefix: String,
    /// Prefix that starts an international number.
    #[schema(example = "011")]
    international_prefix: String,
}

#[derive(Serialize, ToSchema)]
pub struct TrunkOut {
    /// The `sip_trunk_name` Zoom knows.
    name: String,
    /// SIP URIs of Zoom's peering SBCs for this trunk, most preferred first.
    destinations: Vec<String>,
    numbering: Numbering,
    created_at: String,
}

impl From<ZoomTrunk> for TrunkOut {
    fn from(t: ZoomTrunk) -> Self {
        Self {
            name: t.name.to_string(),
            destinations: t.destinations.iter().map(|d| d.to_string()).collect(),
            numbering: Numbering {
                country_code: t.numbering.country_code().into(),
                national_prefix: t.numbering.national_prefix().into(),
                international_prefix: t.numbering.international_prefix().into(),
            },
            created_at: rfc3339(t.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TrunkList {
    trunks: Vec<TrunkOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrunk {
    /// Letters, digits, `.`, `_` and `-`.
    #[schema(example = "carrier-us-east", min_length = 1, max_length = 64)]
    name: String,
    #[schema(example = json!(["sip:zoom-trunk-a.example:5061;transport=tls"]), min_items = 1, max_items = 8)]
    destinations: Vec<String>,
    numbering: Numbering,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkChange {
    #[schema(min_items = 1, max_items = 8)]
    destinations: Vec<String>,
    numbering: Numbering,
}

fn input<'a>(destinations: &'a [String], n: &'a Numbering) -> TrunkInput<'a> {
    TrunkInput {
        destinations: destinations.iter().map(String::as_str).collect(),
        country_code: &n.country_code,
        national_prefix: &n.national_prefix,
        international_prefix: &n.international_prefix,
    }
}

/// List the Zoom trunks.
#[utoipa::path(get, path = "/api/v1/trunks", tag = "trunks", responses((status = 200, description = "every trunk", body = TrunkList)))]
pub async fn list_trunks(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<TrunkList>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(TrunkList {
        trunks: state.app.trunks().await?.into_iter().map(TrunkOut::from).collect(),
    }))
}

/// Add a Zoom trunk.
///
/// `name` is the `sip_trunk_name` agreed with Zoom; calls for the numbers of customers bound to it
/// are routed to its destinations.
#[utoipa::path(post, path = "/api/v1/trunks", tag = "trunks", request_body = NewTrunk,
    responses(
        (status = 201, description = "created; `Location` is its URL", body = TrunkOut),
        (status = 409, description = "a trunk with this `name` exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_trunk(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTrunk>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let t = state.app.create_trunk(&body.name, &input(&body.destinations, &body.numbering)).await?;
    let location = format!("/api/v1/trunks/{}", t.name);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(TrunkOut::from(t))))
}

/// Read one trunk.
#[utoipa::path(get, path = "/api/v1/trunks/{name}", tag = "trunks", params(("name" = String, Path, description = "the trunk's `sip_trunk_name`")),
    responses(
        (status = 200, description = "the trunk", body = TrunkOut),
        (status = 404, description = "no trunk has this name", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_trunk(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TrunkOut>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(state.app.trunk(&name).await?.into()))
}

/// Replace a trunk's destinations and numbering rule.
///
/// Calls in progress are unaffected; new calls use the new destinations within the routing
/// propagation delay.
#[utoipa::path(put, path = "/api/v1/trunks/{name}", tag = "trunks", params(("name" = String, Path, description = "the trunk's `sip_trunk_name`")), request_body = TrunkChange,
    responses(
        (status = 200, description = "the trunk as it is now", body = TrunkOut),
        (status = 404, description = "no trunk has this name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_trunk(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<TrunkChange>,
) -> Result<Json<TrunkOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(
        state.app.update_trunk(&name, &input(&body.destinations, &body.numbering)).await?.into(),
    ))
}

/// Delete a trunk no customer uses.
#[utoipa::path(delete, path = "/api/v1/trunks/{name}", tag = "trunks", params(("name" = String, Path, description = "the trunk's `sip_trunk_name`")),
    responses(
        (status = 200, description = "deleted; the trunk as it was", body = TrunkOut),
        (status = 404, description = "no trunk has this name", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "customers still use the trunk; bind them to another first", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_trunk(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TrunkOut>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(state.app.delete_trunk(&name).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerTrunk {
    /// The trunk's name, or `null` to leave the customer without one (its numbers then cannot be pushed to Zoom).
    #[schema(example = "carrier-us-east")]
    zoom_trunk: Option<String>,
}

/// Bind a customer to a Zoom trunk.
///
/// The customer's numbers are pushed to Zoom under this trunk and calls to them are routed to it.
#[utoipa::path(post, path = "/api/v1/customers/{id}/trunk", tag = "customers", params(("id" = String, Path, description = "customer id")), request_body = CustomerTrunk,
    responses(
        (status = 200, description = "the customer as it is now", body = CustomerOut),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "there is no trunk named `zoom_trunk`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_customer_trunk(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CustomerTrunk>,
) -> Result<Json<CustomerOut>, ApiError> {
    caller.require(Scope::Write)?;
    let id = customer_id(&id)?;
    state.app.customer(id).await?;
    Ok(Json(state.app.set_customer_trunk(id, body.zoom_trunk.as_deref()).await?.into()))
}
