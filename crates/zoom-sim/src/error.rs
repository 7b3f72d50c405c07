//! Errors as Zoom answers them. The REST API: `{"code": int, "message": string[, "errors": [...]]}`
//! (REFERENCE §5 [doc]). The token endpoint: `{"reason": string, "error": string}` (REFERENCE §3 [seen]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: i64,
    message: String,
    errors: Vec<Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), errors: Vec::new(), retry_after: None }
    }

    pub fn bad_request(code: i64, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// No token, an unknown one, or a revoked one [seen].
    pub fn invalid_token() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, 124, "Invalid access token.")
    }

    pub fn expired_token() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, 124, "Access token is expired.")
    }

    /// A token without any of the operation's scopes: HTTP 400, code 4711 [seen], listing the scopes
    /// that would have done.
    pub fn missing_scopes(accepted: &[&str]) -> ApiError {
        ApiError::bad_request(
            4711,
            format!("Invalid access token, does not contain scopes:[{}].", accepted.join(", ")),
        )
    }

    /// A request that does not match the operation's schema: code 300 with the field named, Zoom's
    /// generic validation error [doc].
    pub fn validation(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::bad_request(300, "Validation Failed.");
        e.errors.push(json!({ "field": field, "message": message.into() }));
        e
    }

    pub fn with_errors(mut self, errors: Vec<Value>) -> ApiError {
        self.errors = errors;
        self
    }

    pub fn not_found(code: i64, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Zoom's per-second limit answer (REFERENCE §5 [seen]), with `Retry-After` in seconds.
    pub fn rate_limited(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            429,
            "You have reached the maximum per-second rate limit for this API. Try again later.",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// An injected server error; the body is shaped like any other Zoom error [assume].
    pub fn injected(status: StatusCode, retry_after: Option<u64>) -> ApiError {
        let mut e = ApiError::new(
            status,
            i64::from(status.as_u16()),
            status.canonical_reason().unwrap_or("Error"),
        );
        e.retry_after = retry_after;
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(self.errors);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// An error of `/oauth/token` and `/oauth/revoke`.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl OAuthError {
    pub fn new(error: &'static str, reason: impl Into<String>) -> OAuthError {
        OAuthError { status: StatusCode::BAD_REQUEST, error, reason: reason.into() }
    }

    /// Zoom answers a bad client with 400, not RFC 6749's 401 [seen].
    pub fn invalid_client() -> OAuthError {
        OAuthError::new("invalid_client", "Invalid client_id or client_secret")
    }

    pub fn invalid_grant() -> OAuthError {
        OAuthError::new("invalid_grant", "Invalid Token!")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "reason": self.reason, "error": self.error })))
            .into_response()
    }
}
