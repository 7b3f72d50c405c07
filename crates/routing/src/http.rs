//! The route-lookup HTTP API, on its own listener so call traffic never queues behind portal
//! traffic. `GET /route?to=...&from=...&direction=inbound|outbound&trunk=...`: HTTP 200 whenever a
//! decision was made, whatever it is (SBCs that see a 404 fail open), with a body Kamailio's
//! `rtjson` module can use as it is; 503 only when peerex cannot decide.

use crate::snapshot::Answer;
use crate::Routing;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::routing::{normalize, Direction};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
struct LookupState {
    routing: Routing,
    secret: Option<Arc<str>>,
}

/// The lookup API; `secret`, when set, must come as `Authorization: Bearer <secret>`.
pub fn router(routing: Routing, secret: Option<String>) -> Router {
    Router::new()
        .route("/route", get(route))
        .route("/healthz", get(health))
        .with_state(LookupState { routing, secret: secret.map(Arc::from) })
}

#[derive(Deserialize)]
struct Params {
    /// Called number or Request-URI (inbound).
    to: Option<String>,
    /// Calling number or From URI (outbound).
    from: Option<String>,
    direction: Option<String>,
    /// The Zoom trunk the call came over (outbound), or whose numbering rule reads `to`.
    trunk: Option<String>,
}

fn unavailable(why: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(json!({"decision": "unavailable", "detail": why}))).into_response()
}

fn authorized(state: &LookupState, headers: &HeaderMap) -> bool {
    let Some(secret) = &state.secret else { return true };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    // Constant time: the comparison must not tell how much of a guess was right.
    given.len() == secret.len() && given.bytes().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn health(State(state): State<LookupState>) -> Response {
    if state.routing.is_ready() {
        axum::Json(json!({"status": "ok", "generation": state.routing.generation()})).into_response()
    } else {
        unavailable("the routing snapshot is loading")
    }
}

async fn route(State(state): State<LookupState>, headers: HeaderMap, Query(p): Query<Params>) -> Response {
    let started = std::time::Instant::now();
    if !authorized(&state, &headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], axum::Json(json!({"detail": "send the lookup secret as 'Authorization: Bearer <secret>'"})))
            .into_response();
    }
    let direction = match p.direction.as_deref().map(Direction::parse) {
        None => Direction::Inbound,
        Some(Some(d)) => d,
        Some(None) => return (StatusCode::BAD_REQUEST, axum::Json(json!({"detail": "direction: must be inbound or outbound"}))).into_response(),
    };
    if !state.routing.is_ready() {
        return unavailable("the routing snapshot is loading");
    }
    // Outbound fails closed on a copy that has not been checked against the database lately;
    // inbound may use the last known good one.
    if direction == Direction::Outbound && !state.routing.is_fresh() {
        return unavailable("the routing snapshot is out of date");
    }
    let answer = {
        let s = state.routing.read();
        let rule = p.trunk.as_deref().and_then(|t| s.trunk(t)).map(|t| t.numbering.clone()).unwrap_or_else(|| (*state.routing.numbering).clone());
        let to = p.to.as_deref().and_then(|u| normalize(u, &rule).ok());
        let from = p.from.as_deref().and_then(|u| normalize(u, &rule).ok());
        let a = s.decide(direction, from, to, p.trunk.as_deref());
        (a, from, to)
    };
    metrics::histogram!("peerex_routing_lookup_seconds").record(started.elapsed().as_secs_f64());
    axum::Json(body(&answer.0, answer.1, answer.2)).into_response()
}

/// The decision as JSON: peerex's fields, plus `version`/`routing`/`routes` for `rtjson`.
pub fn body(a: &Answer, from: Option<u64>, to: Option<u64>) -> serde_json::Value {
    let decision = match a.status {
        302 => "route",
        200 => "allow",
        _ => "reject",
    };
    let routes: Vec<serde_json::Value> = match (&a.trunk, to) {
        (Some(t), Some(to)) => t
            .destinations
            .iter()
            .map(|d| json!({"uri": crate::sip::contact_uri(d, to), "dst_uri": d, "headers": {"extra": format!("X-Peerex-Trunk: {}\r\n", t.name)}}))
            .collect(),
        _ => Vec::new(),
    };
    json!({
        "decision": decision,
        "status": a.status,
        "reason": a.reason.map(|r| r.as_str()),
        "direction": a.direction,
        "to": to.map(|n| format!("+{n}")),
        "from": from.map(|n| format!("+{n}")),
        "customer_id": a.customer.map(|c| c.to_string()),
        "trunk": a.trunk.as_ref().map(|t| t.name.clone()),
        "generation": a.generation,
        "version": "1.0",
        "routing": "serial",
        "routes": routes,
    })
}
