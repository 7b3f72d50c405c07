//! Linking a Zoom account, confirmed: the OAuth callback (`crate::zoom`) exchanged the install's code
//! and left it waiting under a cookie of this browser. Here the signed-in customer admin sees which
//! Zoom account it is (as Zoom named it) and which customer it would be linked to, and links it only
//! by pressing the button of a CSRF-protected form. Nothing else links an account: a callback URL
//! someone else made and got a signed-in admin to open shows this page, and stops there.

use super::{CsrfForm, CustomerAdmin};
use crate::error::{error_page, render, PageError};
use crate::session::{cookie, set_cookie};
use crate::zoom::{install_refused, INSTALL_COOKIE};
use crate::WebState;
use app::onboarding::InstallCheck;
use app::AppError;
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new().route("/install", get(page).post(confirm)).route("/install/cancel", post(cancel))
}

#[derive(Template)]
#[template(path = "portal/install_confirm.html")]
struct ConfirmPage {
    carrier: String,
    customer: String,
    email: String,
    csrf: String,
    account: String,
    account_number: String,
    zoom_name: String,
    zoom_email: String,
}

/// `response`, with the browser's install cookie cleared: the install is over either way.
fn ended(state: &WebState, mut response: Response) -> Response {
    if let Ok(v) = set_cookie(INSTALL_COOKIE, "", 0, state.ui.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn nothing_waiting(state: &WebState) -> Response {
    ended(
        state,
        error_page(
            StatusCode::NOT_FOUND,
            "No Zoom install is waiting in this browser: it was confirmed or cancelled already, or it waited too long. To link a Zoom account, add the app from the Zoom App Marketplace.",
        ),
    )
}

async fn page(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let cookie = cookie(&headers, INSTALL_COOKIE).unwrap_or_default();
    let Some(p) = state.app.pending_install(cookie).await? else {
        return Ok(nothing_waiting(&state));
    };
    Ok(match state.app.check_install(admin.customer.id, cookie, &p).await? {
        InstallCheck::Confirm => render(&ConfirmPage {
            carrier: state.ui.carrier_name.clone(),
            customer: admin.customer.name.clone(),
            email: admin.user.email.clone(),
            csrf: admin.session.csrf_token.clone(),
            account: p.zoom_account_id.to_string(),
            account_number: p.zoom_account_number,
            zoom_name: p.zoom_name,
            zoom_email: p.zoom_email,
        }),
        InstallCheck::AlreadyLinked => ended(&state, Redirect::to("/portal").into_response()),
        InstallCheck::Refused(message) => ended(&state, install_refused(&state, &message)),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfirmForm {
    csrf: String,
    account: String,
}

async fn confirm(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Response {
    if let Err(refused) = admin.check_csrf(&f.csrf) {
        return refused;
    }
    let cookie = cookie(&headers, INSTALL_COOKIE).unwrap_or_default();
    let done = state
        .app
        .confirm_install(admin.customer.id, cookie, f.account.trim(), &admin.actor())
        .await;
    match done {
        Ok(_) => ended(&state, Redirect::to("/portal").into_response()),
        Err(AppError::Refused(message)) => ended(&state, install_refused(&state, &message)),
        Err(e) => PageError(e).into_response(),
    }
}

async fn cancel(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = admin.check_csrf(&f.csrf) {
        return refused;
    }
    let cookie = cookie(&headers, INSTALL_COOKIE).unwrap_or_default();
    match state.app.cancel_install(cookie).await {
        Ok(()) => ended(&state, Redirect::to("/portal").into_response()),
        Err(e) => PageError(e).into_response(),
    }
}
