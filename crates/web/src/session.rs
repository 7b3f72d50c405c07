//! Browser sessions and CSRF for the portals.
//!
//! The session cookie holds 32 random bytes; the database holds their SHA-256 and a CSRF token per
//! session. Every form that changes something carries that token in a hidden `csrf` field and is
//! refused without it. The sign-in form, which has no session yet, carries a token the server signed
//! (`App::login_csrf_token`) both in the form and in a cookie; a submission needs the two to match
//! and the signature to be the server's.

use crate::error::{error_page, PageError};
use crate::WebState;
use app::AppError;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::auth::{Role, Session, User};
use domain::Actor;

pub const SESSION_COOKIE: &str = "peerex_session";
pub const LOGIN_CSRF_COOKIE: &str = "peerex_login_csrf";

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure when configured.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The page shown for a form without a valid CSRF token.
pub fn csrf_refused() -> Response {
    error_page(StatusCode::FORBIDDEN, "This form has expired or did not come from this site. Go back, reload the page and try again.")
}

/// The client's address as far as peerex can tell (see [`crate::http_config::client_ip`]).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<WebState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(crate::http_config::client_ip(parts, &state.access)))
    }
}

/// A new sign-in form token and the `Set-Cookie` value that goes with it.
pub async fn login_csrf(state: &WebState) -> Result<(String, String), AppError> {
    let token = state.app.login_csrf_token().await?;
    let max_age = app::auth::LOGIN_CSRF_TTL_SECS;
    let cookie = set_cookie(LOGIN_CSRF_COOKIE, &token, max_age, state.ui.secure_cookies);
    Ok((token, cookie))
}

/// Whether a sign-in form's submitted token matches its cookie and is the server's own.
pub async fn login_csrf_ok(
    state: &WebState,
    headers: &HeaderMap,
    submitted: &str,
) -> Result<bool, AppError> {
    let expected = cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, submitted) {
        return Ok(false);
    }
    state.app.login_csrf_valid(submitted).await
}

/// The page for a sign-in that was not checked: too many failures (429) or too busy (503).
pub fn sign_in_status(e: &AppError) -> StatusCode {
    match e {
        AppError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// A signed-in operator. Extracting it from a request without a live operator session redirects the
/// browser to the sign-in page (and back here afterwards).
pub struct Operator {
    pub user: User,
    pub session: Session,
}

impl Operator {
    pub fn actor(&self) -> Actor {
        Actor::Operator(self.user.email.clone())
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Refuses read-only operators.
    pub fn require_admin(&self) -> Result<(), PageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PageError(AppError::Forbidden))
        }
    }

    /// Checks a form's CSRF token against the session's.
    #[allow(clippy::result_large_err)] // the refusal is the page to send; handlers return it with `?`
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Response> {
        if same_secret(submitted, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }
}

impl FromRequestParts<WebState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = |parts: &Parts| {
            let here = parts
                .extensions
                .get::<OriginalUri>()
                .map_or_else(|| parts.uri.to_string(), |u| u.0.to_string());
            let next =
                if parts.method == axum::http::Method::GET { here } else { "/operator".into() };
            Redirect::to(&format!("/operator/login?next={}", encode_component(&next)))
                .into_response()
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts));
        };
        match state.app.session(value).await {
            Ok(Some((session, user))) if user.role.is_operator() => Ok(Operator { user, session }),
            Ok(_) => Err(to_login(parts)),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

/// Percent-encodes a URL component (for `next=`).
pub fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only same-site operator paths are followed after sign-in, so `next=` cannot send a user elsewhere.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/operator") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/operator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_many() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; peerex_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn next_stays_on_site() {
        assert_eq!(
            safe_next(Some("/operator/numbers?prefix=%2B1")),
            "/operator/numbers?prefix=%2B1"
        );
        for evil in ["https://evil.example", "//evil.example", "/operator\\@evil", "/elsewhere"] {
            assert_eq!(safe_next(Some(evil)), "/operator", "{evil}");
        }
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
