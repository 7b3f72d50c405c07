//! Mail: what the mail outbox sent to customers' admins and what it could not — failed mails first,
//! with what the SMTP server said and a Retry button — and the releases whose approval deadline
//! passed (operators are copied on those mails and must follow up).

use super::{may_change, when, Chrome};
use crate::error::{render, PageError};
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::mail::{Mail, MailKind, MailState};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new().route("/mails", get(list)).route("/mails/{id}/retry", post(retry))
}

const SHOWN: u32 = 200;

pub struct MailRow {
    pub mail: Mail,
    pub created: String,
    pub sent: String,
}

#[derive(Template)]
#[template(path = "operator/mails.html")]
struct MailsPage {
    chrome: Chrome,
    carrier: String,
    shown: &'static str,
    mails: Vec<MailRow>,
    /// Releases past their approval deadline: (release id, customer, numbers, when told).
    overdue: Vec<(String, String, usize, String)>,
    mail_on: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Filter {
    state: String,
}

async fn list(
    State(state): State<WebState>,
    op: Operator,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    let filter = match f.state.as_str() {
        "" => Some(MailState::Failed),
        "all" => None,
        s => Some(MailState::parse(s).ok_or_else(|| {
            PageError(AppError::invalid("state", "must be pending, sending, sent, failed or all"))
        })?),
    };
    let mails = state
        .app
        .mails(filter, SHOWN)
        .await?
        .into_iter()
        .map(|mail| MailRow {
            created: when(mail.created_at),
            sent: mail.sent_at.map(when).unwrap_or_default(),
            mail,
        })
        .collect();
    let overdue = state
        .app
        .mails(None, 1000)
        .await?
        .into_iter()
        .filter(|m| m.kind == MailKind::ReleaseDeadline)
        .map(|m| {
            (
                m.facts.release_id.map(|r| r.to_string()).unwrap_or_default(),
                m.facts.customer_name.clone(),
                m.facts.numbers.len(),
                when(m.created_at),
            )
        })
        .collect();
    let chrome = Chrome::new(&state, &op, "mails");
    Ok(render(&MailsPage {
        carrier: chrome.carrier.clone(),
        chrome,
        shown: filter.map_or("all", MailState::as_str),
        mails,
        overdue,
        mail_on: state.app.mail.is_some(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn retry(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    if !state.app.retry_mail(id).await? {
        return Err(PageError(AppError::NotFound));
    }
    Ok(Redirect::to("/operator/mails?state=pending").into_response())
}
