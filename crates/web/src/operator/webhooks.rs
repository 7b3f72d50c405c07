//! The webhook endpoints page: where peerex sends signed events, each endpoint's state (a banner
//! when peerex disabled one for failing), its recent deliveries with a replay button, and the
//! forms to add, enable or disable, rotate the secret of and remove endpoints (admins only).

use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::webhooks::{EndpointChange, EndpointInput};
use app::AppError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::webhook::{Delivery, Endpoint, EventType};
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(detail))
        .route("/webhooks/{id}/toggle", post(toggle))
        .route("/webhooks/{id}/rotate", post(rotate))
        .route("/webhooks/{id}/delete", post(delete))
        .route("/webhooks/{id}/replay/{event}", post(replay))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewEndpoint {
    csrf: String,
    url: String,
    description: String,
    /// Event types, space- or comma-separated; empty for all.
    events: String,
}

/// A secret just made: the only time it is seen.
struct Secret {
    endpoint: Uuid,
    secret: String,
}

struct Row {
    e: Endpoint,
    types: String,
    created: String,
}

#[derive(Template)]
#[template(path = "operator/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    endpoints: Vec<Row>,
    disabled: usize,
    waiting: i64,
    event_types: Vec<(&'static str, &'static str)>,
    secret: Option<Secret>,
    form: NewEndpoint,
    error: Option<FormError>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

struct DeliveryRow {
    d: Delivery,
    next: String,
    last: String,
}

#[derive(Template)]
#[template(path = "operator/webhook.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    e: Endpoint,
    types: String,
    deliveries: Vec<DeliveryRow>,
}

fn types(e: &Endpoint) -> String {
    if e.event_types.is_empty() {
        "all events".into()
    } else {
        e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
    }
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    form: NewEndpoint,
    secret: Option<Secret>,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let endpoints: Vec<Row> = state
        .app
        .webhook_endpoints()
        .await?
        .into_iter()
        .map(|e| Row { types: types(&e), created: when(e.created_at), e })
        .collect();
    let (waiting, _) = state.app.webhook_backlog().await?;
    let chrome = Chrome::new(state, op, "webhooks");
    let page = ListPage {
        carrier: chrome.carrier.clone(),
        chrome,
        disabled: endpoints.iter().filter(|r| !r.e.enabled).count(),
        waiting,
        endpoints,
        event_types: EventType::ALL.iter().map(|t| (t.as_str(), t.description())).collect(),
        secret,
        form,
        error,
    };
    let mut response = render_with(&page, page.error.as_ref());
    if page.secret.is_some() {
        // The page holds a secret: keep it out of caches.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

async fn list(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    list_page(&state, &op, NewEndpoint::default(), None, None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<NewEndpoint>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let input = EndpointInput {
        url: form.url.clone(),
        description: form.description.clone(),
        event_types: form
            .events
            .split([' ', ',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned())
            .collect(),
    };
    match state.app.create_webhook_endpoint(&op.actor(), input).await {
        Ok((e, secret)) => {
            let secret = Some(Secret { endpoint: e.id, secret });
            list_page(&state, &op, NewEndpoint::default(), secret, None).await
        }
        Err(e) => {
            let error = Some(e.try_into()?);
            list_page(&state, &op, form, None, error).await
        }
    }
}

fn endpoint_id(raw: &str) -> Result<Uuid, PageError> {
    raw.parse().map_err(|_| PageError(AppError::NotFound))
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let e = state.app.webhook_endpoint(endpoint_id(&id)?).await?;
    let deliveries = state
        .app
        .webhook_deliveries(e.id, None, 100)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            next: when(d.next_attempt_at),
            last: d.last_attempt_at.map(when).unwrap_or_default(),
            d,
        })
        .collect();
    let chrome = Chrome::new(&state, &op, "webhooks");
    let page =
        DetailPage { carrier: chrome.carrier.clone(), chrome, types: types(&e), e, deliveries };
    Ok(render_with(&page, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn toggle(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id = endpoint_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let on = state.app.webhook_endpoint(id).await?.enabled;
    let change = EndpointChange { enabled: Some(!on), ..EndpointChange::default() };
    state.app.update_webhook_endpoint(&op.actor(), id, change).await?;
    Ok(Redirect::to("/operator/webhooks").into_response())
}

async fn rotate(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id = endpoint_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let (e, secret) = state.app.rotate_webhook_secret(&op.actor(), id, None).await?;
    list_page(&state, &op, NewEndpoint::default(), Some(Secret { endpoint: e.id, secret }), None)
        .await
}

async fn delete(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id = endpoint_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.delete_webhook_endpoint(&op.actor(), id).await?;
    Ok(Redirect::to("/operator/webhooks").into_response())
}

async fn replay(
    State(state): State<WebState>,
    op: Operator,
    Path((id, event)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id = endpoint_id(&id)?;
    let event = endpoint_id(&event)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.replay_webhook_delivery(&op.actor(), id, event).await?;
    Ok(Redirect::to(&format!("/operator/webhooks/{id}")).into_response())
}
