//! Signing in and out of the operator portal.

use crate::error::{render, PageError};
use crate::session::{
    csrf_refused, login_csrf, login_csrf_ok, safe_next, set_cookie, sign_in_status, ClientIp,
    Operator, SESSION_COOKIE,
};
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "operator/login.html")]
struct LoginPage<'a> {
    carrier: &'a str,
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Shows the form and sets the double-submit cookie it is checked against.
pub async fn form(State(state): State<WebState>, Query(q): Query<NextQuery>) -> Response {
    login_page(&state, safe_next(q.next.as_deref()), "", None, StatusCode::OK).await
}

async fn login_page(
    state: &WebState,
    next: &str,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (csrf, csrf_cookie) = match login_csrf(state).await {
        Ok(pair) => pair,
        Err(e) => return PageError(e).into_response(),
    };
    let page = LoginPage { carrier: &state.ui.carrier_name, csrf: &csrf, next, email, error };
    let mut response = render(&page);
    *response.status_mut() = status;
    if let Ok(v) = csrf_cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<WebState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    match login_csrf_ok(&state, &headers, &f.csrf).await {
        Ok(true) => {}
        Ok(false) => return csrf_refused(),
        Err(e) => return PageError(e).into_response(),
    }
    let next = safe_next(f.next.as_deref()).to_owned();
    match state.app.sign_in(&f.email, &f.password, source).await {
        Ok(new) if new.user.role.is_operator() => {
            let max_age = (new.session.expires_at - new.session.created_at).whole_seconds();
            let mut response = Redirect::to(&next).into_response();
            if let Ok(v) =
                set_cookie(SESSION_COOKIE, &new.cookie, max_age, state.ui.secure_cookies).parse()
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        // A customer admin's password is right, but this is not their portal: say no more than
        // for a wrong password.
        Ok(new) => {
            let _ = state.app.sign_out(&new.cookie).await;
            login_page(
                &state,
                &next,
                &f.email,
                Some(AppError::BadCredentials.to_string()),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e @ (AppError::BadCredentials | AppError::Locked(_) | AppError::Busy(_))) => {
            login_page(&state, &next, &f.email, Some(e.to_string()), sign_in_status(&e)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<WebState>,
    op: Operator,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = op.check_csrf(&f.csrf) {
        return refused;
    }
    if let Err(e) = state.app.end_session(&op.session).await {
        return PageError(e).into_response();
    }
    let mut response = Redirect::to("/operator/login").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, state.ui.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
