//! `/api/v1/usage`: the daily usage records a billing system invoices from, as JSON or CSV; and
//! `/api/v1/mails`: the mail outbox, where operators see mails that failed and send them again.

use super::extract::Params;
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::mail::{Mail, MailState};
use domain::usage::UsageRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/usage", get(list_usage))
        .route("/mails", get(list_mails))
        .route("/mails/{id}/retry", post(retry_mail))
}

#[derive(Serialize, ToSchema)]
pub struct UsageOut {
    /// `YYYY-MM-DD` (UTC).
    #[schema(example = "2026-11-23")]
    day: String,
    #[schema(format = Uuid)]
    customer_id: String,
    customer_name: String,
    /// The customer's reference in the billing system when the record was taken.
    billing_ref: Option<String>,
    reserved: i64,
    provisioning: i64,
    active: i64,
    release_pending: i64,
    releasing: i64,
    suspended: i64,
    /// Ported in, waiting for the port date.
    porting: i64,
    /// Numbers Zoom last said are assigned to a user.
    zoom_assigned: i64,
    port_ins: i64,
    /// Numbers released (removed from Zoom) during the day.
    releases: i64,
    taken_at: String,
}

impl From<UsageRecord> for UsageOut {
    fn from(r: UsageRecord) -> Self {
        Self {
            day: r.day,
            customer_id: r.customer_id.to_string(),
            customer_name: r.customer_name,
            billing_ref: r.billing_ref,
            reserved: r.reserved,
            provisioning: r.provisioning,
            active: r.active,
            release_pending: r.release_pending,
            releasing: r.releasing,
            suspended: r.suspended,
            porting: r.porting,
            zoom_assigned: r.zoom_assigned,
            port_ins: r.port_ins,
            releases: r.releases,
            taken_at: rfc3339(r.taken_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsageList {
    records: Vec<UsageOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// The first day, `YYYY-MM-DD` (default today, UTC).
    from: Option<String>,
    /// The last day, inclusive (default today).
    to: Option<String>,
    /// Only this customer's records (its id).
    customer: Option<String>,
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

/// Usage records per customer and day, by day then customer.
///
/// Each customer's record of a day is taken once, after the day ends (or by hand with
/// `peerex usage --take`), and kept: every read of a day answers the same numbers.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", params(UsageParams),
    responses(
        (status = 200, description = "the records (JSON, or CSV with a header row when format=csv)",
            content((UsageList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "a date is malformed or the customer unknown; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_usage(
    State(state): State<WebState>,
    caller: Caller,
    Params(p): Params<UsageParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let bad_request = |field: &str, detail: String| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid", detail).with_field(field).into_response()
    };
    let csv = match p.format.as_deref().unwrap_or("json") {
        "json" | "" => false,
        "csv" => true,
        _ => return Ok(bad_request("format", "format: must be json or csv".into())),
    };
    let records =
        match state.app.usage(p.from.as_deref(), p.to.as_deref(), p.customer.as_deref()).await {
            Ok(r) => r,
            Err(AppError::Invalid { field, message }) => {
                return Ok(bad_request(field, format!("{field}: {message}")))
            }
            Err(e) => return Err(e.into()),
        };
    if csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"usage.csv\""),
            ],
            domain::usage::to_csv(&records),
        )
            .into_response());
    }
    Ok(Json(UsageList { records: records.into_iter().map(UsageOut::from).collect() })
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct MailOut {
    #[schema(format = Uuid)]
    id: String,
    /// Which mail this is, e.g. `release:<id>:reminder:1`: each is written once.
    key: String,
    /// `release_waiting`, `release_reminder`, `release_deadline`, `app_removed` or `order_applied`.
    kind: String,
    #[schema(format = Uuid)]
    customer_id: String,
    /// `pending`, `sending`, `sent` or `failed`.
    state: String,
    attempts: i64,
    /// What the SMTP server last said, when it did not take the mail.
    last_error: Option<String>,
    /// Who it went to.
    recipients: Option<String>,
    numbers: Vec<String>,
    created_at: String,
    sent_at: Option<String>,
}

impl From<Mail> for MailOut {
    fn from(m: Mail) -> Self {
        Self {
            id: m.id.to_string(),
            key: m.key,
            kind: m.kind.as_str().into(),
            customer_id: m.customer_id.to_string(),
            state: m.state.as_str().into(),
            attempts: m.attempts,
            last_error: m.last_error,
            recipients: m.recipients,
            numbers: m.facts.numbers,
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MailList {
    mails: Vec<MailOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailParams {
    /// Only mails in this state (`failed`: those the SMTP server refused for good or that ran out
    /// of attempts).
    state: Option<String>,
    /// How many, newest first (default 200).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The mail outbox, newest first.
#[utoipa::path(get, path = "/api/v1/mails", tag = "mail", params(MailParams),
    responses(
        (status = 200, description = "mails, newest first", body = MailList),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_mails(
    State(state): State<WebState>,
    caller: Caller,
    Params(p): Params<MailParams>,
) -> Result<Json<MailList>, ApiError> {
    caller.require(Scope::Read)?;
    let which = match p.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(MailState::parse(s).ok_or_else(|| {
            AppError::invalid("state", "must be pending, sending, sent or failed")
        })?),
    };
    let limit = p.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be 1 to 1000").into());
    }
    let mails = state.app.mails(which, limit).await?;
    Ok(Json(MailList { mails: mails.into_iter().map(MailOut::from).collect() }))
}

/// Send a failed mail again, from a fresh count of attempts.
#[utoipa::path(post, path = "/api/v1/mails/{id}/retry", tag = "mail",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "pending again"),
        (status = 404, description = "no failed mail with this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_mail(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Write)?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    if state.app.retry_mail(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound.into())
    }
}
