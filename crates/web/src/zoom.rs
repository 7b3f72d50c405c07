//! `/zoom`: where Zoom sends people and events. The OAuth callback of a Marketplace install, and the
//! webhook endpoint (`app_deauthorized`, `endpoint.url_validation`, the numbers' emergency-address and
//! CNAM events).
//!
//! The install's code arrives in the callback's query string (Zoom's choice; a Marketplace install has
//! no `state`). It is exchanged at once, and the install (the Zoom account it is for, its sealed
//! tokens) waits in the database under a random `HttpOnly` cookie of this browser until a signed-in
//! customer admin confirms it on `/portal/install`. The browser goes there by a URL without the code,
//! so no later URL (and no log) holds it.

use crate::error::{error_page, render};
use crate::session::set_cookie;
use crate::WebState;
use app::onboarding::{WebhookAnswer, WebhookRefused};
use app::AppError;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use zoom::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The cookie that finds an install code waiting for a sign-in.
pub const INSTALL_COOKIE: &str = "peerex_install";

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/oauth/callback", get(callback))
        .route("/webhook", post(webhook))
        // The name some Zoom app settings use; the same endpoint.
        .route("/webhooks", post(webhook))
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/install.html")]
pub struct InstallPage<'a> {
    pub carrier: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub advice: &'a str,
}

/// The page a refused or failed install shows; the admin is told what to do next.
pub fn install_refused(state: &WebState, message: &str) -> Response {
    let advice = "Nothing was changed. If this Zoom account should belong to your company, contact us; \
                  if you meant another Zoom account, sign in to Zoom with that account and add the app again.";
    let page = InstallPage {
        carrier: &state.ui.carrier_name,
        title: "Your Zoom account could not be linked",
        message,
        advice,
    };
    let mut response = render(&page);
    *response.status_mut() = StatusCode::CONFLICT;
    response
}

async fn callback(State(state): State<WebState>, Query(q): Query<Callback>) -> Response {
    let Some(code) = q.code.filter(|c| !c.trim().is_empty()) else {
        let message = match q.error.as_deref() {
            Some("access_denied") => "The app was not allowed in Zoom, so nothing was linked.",
            _ => "Zoom did not send an authorization code. Add the app again from the Zoom App Marketplace.",
        };
        return error_page(StatusCode::BAD_REQUEST, message);
    };
    match state.app.begin_install(&code).await {
        Ok(started) => {
            let ttl = state.app.zoom.as_deref().map_or(900, |z| z.install_ttl.as_secs() as i64);
            let mut response = Redirect::to("/portal/install").into_response();
            if let Ok(v) =
                set_cookie(INSTALL_COOKIE, &started.cookie, ttl, state.ui.secure_cookies).parse()
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        Err(AppError::Refused(message)) => install_refused(&state, &message),
        Err(e) => crate::error::PageError(e).into_response(),
    }
}

async fn webhook(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (ts, sig) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
    let refused = |status: StatusCode, message: String| {
        tracing::warn!(%status, %message, "webhook refused");
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    match state.app.zoom_webhook(&ts, &sig, &body).await {
        Ok(Ok(WebhookAnswer::UrlValidation(answer))) => Json(answer).into_response(),
        Ok(Ok(WebhookAnswer::AppRemoved { customer, suspended })) => {
            Json(serde_json::json!({ "customer": customer, "suspended": suspended }))
                .into_response()
        }
        Ok(Ok(WebhookAnswer::NumberFacts(done))) => Json(serde_json::json!({
            "recorded": done.recorded, "already_recorded": done.already, "refused": done.refused,
        }))
        .into_response(),
        Ok(Ok(WebhookAnswer::Ignored(event))) => {
            Json(serde_json::json!({ "ignored": event })).into_response()
        }
        Ok(Err(e @ WebhookRefused::NotConfigured)) => refused(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(WebhookRefused::Invalid(zoom::webhook::WebhookError::Malformed(m)))) => {
            refused(StatusCode::BAD_REQUEST, m)
        }
        Ok(Err(e @ WebhookRefused::Invalid(_))) => refused(StatusCode::UNAUTHORIZED, e.to_string()),
        Ok(Err(e @ WebhookRefused::Replayed)) => refused(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e @ WebhookRefused::UnknownAccount(_))) => {
            refused(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e @ WebhookRefused::NotTheAccountsNumbers(_))) => {
            refused(StatusCode::FORBIDDEN, e.to_string())
        }
        // A database failure: 5xx, so Zoom delivers again later.
        Err(e) => {
            tracing::error!(error = %e, "webhook failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": "try again later" })),
            )
                .into_response()
        }
    }
}
