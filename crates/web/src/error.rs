//! Errors leave peerex here, mapped once: `application/problem+json` (RFC 9457) on the API, an error
//! page on the portal. 5xx bodies say nothing internal; the cause is logged with the request's span.

use app::AppError;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

/// A problem document. `field` names the input at fault, when there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-row problems of an import.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<RowErrorSchema>)]
    pub errors: Vec<domain::import::RowError>,
}

/// The OpenAPI schema of [`domain::import::RowError`], which knows nothing of OpenAPI.
#[derive(utoipa::ToSchema)]
#[schema(as = RowError)]
#[allow(dead_code)]
struct RowErrorSchema {
    /// 1-based row in the file (the header is row 1), or position in a range; 0 for the file as a whole.
    row: usize,
    column: Option<String>,
    /// The value at fault, cut to 80 characters.
    value: String,
    reason: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://peerex.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

/// Status, problem kind, field and message for an application error. Shared by both surfaces so
/// the API and the portal never disagree about what an error means.
pub fn classify(e: &AppError) -> (StatusCode, &'static str, Option<&'static str>, String) {
    match e {
        AppError::Invalid { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
            format!("{field}: {message}"),
        ),
        AppError::NotFound => (StatusCode::NOT_FOUND, "not-found", None, "not found".into()),
        AppError::Conflict { field, message } => {
            (StatusCode::CONFLICT, "conflict", Some(field), format!("{field}: {message}"))
        }
        AppError::Refused(m) => (StatusCode::CONFLICT, "refused", None, m.clone()),
        AppError::BadCredentials => {
            (StatusCode::UNAUTHORIZED, "bad-credentials", None, e.to_string())
        }
        AppError::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "locked", None, e.to_string()),
        AppError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy", None, e.to_string()),
        AppError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None, "not allowed".into()),
        AppError::Db(store::DbError::Unavailable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
            "the database is unavailable; try again shortly".into(),
        ),
        AppError::Db(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            "something went wrong on our side; it has been logged".into(),
        ),
    }
}

/// An application error on the API.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, field, detail) = classify(&self.0);
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "request failed");
        }
        let mut p = Problem::new(status, kind, detail);
        p.field = field.map(str::to_owned);
        p.into_response()
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// An error page on the portal.
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _, _, message) = classify(&self.0);
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "page failed");
        }
        error_page(status, &message)
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    response
}

/// Renders a template; a template that fails to render is a bug, reported as a plain 500.
pub fn render(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub async fn not_found_fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no such endpoint: {}", uri.path()),
        )
        .into_response()
    } else {
        error_page(StatusCode::NOT_FOUND, "There is no such page.")
    }
}
