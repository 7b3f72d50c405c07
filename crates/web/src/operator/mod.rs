//! The operator portal (`/operator`): carrier staff keep the inventory, customers and orders here.
//! Server-rendered; every basic flow works without JavaScript, htmx only makes some of it smoother.
//!
//! Every form that changes something goes through [`may_change`]: the session's CSRF token first,
//! then the operator's role, so a read-only operator can look at everything and change nothing.

mod customers;
mod drift;
mod import;
mod jobs;
mod login;
mod mails;
mod numbers;
mod orders;
mod port_ins;
mod releases; // issue 6
mod tokens;
mod trunks;
mod webhooks;

use crate::error::{error_page, render, PageError};
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use domain::NumberState;
use time::OffsetDateTime;

pub use import::MAX_UPLOAD_BYTES;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .merge(numbers::router())
        .merge(import::router())
        .merge(customers::router())
        .merge(orders::router())
        .merge(tokens::router())
        .merge(webhooks::router())
        .merge(jobs::router())
        .merge(drift::router())
        .merge(mails::router())
        .merge(trunks::router())
        .merge(releases::router())
        .merge(port_ins::router())
}

/// What every operator page's layout needs.
pub struct Chrome {
    pub carrier: String,
    pub email: String,
    pub csrf: String,
    pub admin: bool,
    /// Which nav entry is highlighted.
    pub here: &'static str,
}

impl Chrome {
    pub fn new(state: &WebState, op: &Operator, here: &'static str) -> Self {
        Self {
            carrier: state.ui.carrier_name.clone(),
            email: op.user.email.clone(),
            csrf: op.csrf().to_owned(),
            admin: op.is_admin(),
            here,
        }
    }
}

/// Checks a form that changes something: a valid CSRF token, and an operator who may change things.
#[allow(clippy::result_large_err)] // as `Operator::check_csrf`: the refusal is the page to send
fn may_change(op: &Operator, csrf: &str) -> Result<(), Response> {
    op.check_csrf(csrf)?;
    if op.is_admin() {
        Ok(())
    } else {
        Err(error_page(StatusCode::FORBIDDEN, "Your account is read-only: you can look at everything but change nothing. Ask an administrator."))
    }
}

/// A refused form, shown above it: the message names the field at fault when there is one.
pub struct FormError {
    pub status: StatusCode,
    pub field: Option<&'static str>,
    pub message: String,
}

impl FormError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field),
            message: format!("{field}: {}", message.into()),
        }
    }

    /// Whether this error is about `field` (templates mark that input).
    pub fn on(&self, field: &str) -> bool {
        self.field == Some(field)
    }
}

/// Turns what the user can fix (bad input, a clash, a refusal) into a message on the form; anything
/// else (a database failure) stays an error page.
impl TryFrom<AppError> for FormError {
    type Error = PageError;

    fn try_from(e: AppError) -> Result<Self, PageError> {
        match e {
            AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::Refused(_) => {
                let (status, _, field, message) = crate::error::classify(&e);
                Ok(FormError { status, field, message })
            }
            other => Err(PageError(other)),
        }
    }
}

/// Whether `error` is about `field`; for templates, whose error is optional.
fn bad(error: &Option<FormError>, field: &str) -> bool {
    error.as_ref().is_some_and(|e| e.on(field))
}

/// Renders a page with the status of its form error, if any.
fn render_with(page: &impl Template, error: Option<&FormError>) -> Response {
    let mut response = render(page);
    if let Some(e) = error {
        *response.status_mut() = e.status;
    }
    response
}

/// Timestamps as operators read them: UTC to the second.
fn when(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "operator/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    carrier: String,
    counts: Vec<(NumberState, i64)>,
    total: i64,
}

async fn dashboard(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    let found = state.app.count_by_state().await?;
    let counts: Vec<(NumberState, i64)> = NumberState::ALL
        .iter()
        .map(|s| (*s, found.iter().find(|(f, _)| f == s).map_or(0, |(_, c)| *c)))
        .collect();
    let total = counts.iter().map(|(_, c)| c).sum();
    let chrome = Chrome::new(&state, &op, "home");
    Ok(render(&Dashboard { carrier: chrome.carrier.clone(), chrome, counts, total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_seconds() {
        let t = time::macros::datetime!(2025-03-04 05:06:07.891 +02:00);
        assert_eq!(when(t), "2025-03-04 03:06:07 UTC");
    }

    #[test]
    fn user_errors_become_form_messages_and_db_errors_do_not() {
        let e = FormError::try_from(AppError::Conflict {
            field: "contract_ref",
            message: "taken".into(),
        })
        .ok()
        .unwrap();
        assert_eq!(
            (e.status, e.field, e.message.as_str()),
            (StatusCode::CONFLICT, Some("contract_ref"), "contract_ref: taken")
        );
        assert!(FormError::try_from(AppError::NotFound).is_err());
    }
}
