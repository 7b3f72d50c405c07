//! Signing in and out of the operator portal.

use crate::error::{render, PageError};
use crate::session::{
    cookie, csrf_refused, safe_next, same_secret, set_cookie, Operator, LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
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
    login_page(&state, safe_next(q.next.as_deref()), "", None, StatusCode::OK)
}

fn login_page(
    state: &WebState,
    next: &str,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = app::auth::random_secret();
    let page = LoginPage { carrier: &state.ui.carrier_name, csrf: &csrf, next, email, error };
    let mut response = render(&page);
    *response.status_mut() = status;
    if let Ok(v) = set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, state.ui.secure_cookies).parse() {
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
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, &f.csrf) {
        return csrf_refused();
    }
    let next = safe_next(f.next.as_deref()).to_owned();
    match state.app.sign_in(&f.email, &f.password).await {
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
        }
        Err(e @ (AppError::BadCredentials | AppError::Locked(_))) => {
            let status = if matches!(e, AppError::Locked(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            login_page(&state, &next, &f.email, Some(e.to_string()), status)
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
    if let Err(e) = state.app.store.delete_session(&op.session.id_hash).await {
        return PageError(e.into()).into_response();
    }
    let mut response = Redirect::to("/operator/login").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, state.ui.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
