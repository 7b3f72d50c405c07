//! `/api/v1/releases` (issue 6): the carrier starts the release of some of a customer's active numbers
//! (listed, as CSV, or by filter); they wait for the customer's approval in the customer portal.
//! Operators follow releases with their age and withdraw what still waits.

use super::extract::{JsonBody, Params};
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::release::Selection;
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::release::{Release, ReleaseLine};
use domain::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/releases", get(list_releases).post(start_release))
        .route("/releases/{id}", get(get_release))
        .route("/releases/{id}/withdraw", post(withdraw_release))
        .route("/releases/{id}/force", post(force_release))
        .route("/port-outs", post(start_port_out))
        .route("/customers/{id}/contract-end", post(start_contract_end))
}

#[derive(Serialize, ToSchema)]
pub struct ReleaseOut {
    pub id: String,
    pub customer_id: String,
    /// `approval` (the customer approves), or one the carrier runs on its due date without approval:
    /// `port_out`, `contract_end`, `returned`.
    pub kind: String,
    /// When the numbers stop routing and are removed from Zoom (releases without approval).
    pub due_at: Option<String>,
    /// The carrier that won the numbers (port-out).
    pub gaining_carrier: Option<String>,
    pub reason: String,
    pub started_by: String,
    pub started_at: String,
    /// Seconds since the release was started: how long the customer has let it wait.
    pub age_seconds: i64,
    /// Numbers waiting for the customer's approval.
    pub waiting: i64,
    /// Approved; being removed from Zoom.
    pub releasing: i64,
    /// Removed from Zoom; in quarantine (`aging`).
    pub released: i64,
    /// Zoom refused (e.g. still assigned to a user there); waiting again with the reason.
    pub refused: i64,
    pub withdrawn: i64,
}

impl ReleaseOut {
    fn new(r: Release, now: time::OffsetDateTime) -> Self {
        Self {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            kind: r.kind.as_str().to_owned(),
            due_at: r.due_at.map(rfc3339),
            gaining_carrier: r.gaining_carrier,
            age_seconds: (now - r.started_at).whole_seconds().max(0),
            reason: r.reason,
            started_by: r.started_by,
            started_at: rfc3339(r.started_at),
            waiting: r.waiting,
            releasing: r.releasing,
            released: r.released,
            refused: r.refused,
            withdrawn: r.withdrawn,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReleaseLineOut {
    pub number_id: String,
    /// E.164.
    pub number: String,
    /// `waiting`, `releasing`, `released`, `refused` or `withdrawn`.
    pub state: String,
    /// Zoom's refusal as the customer reads it, e.g. "Unassign (Unbind) this number in Zoom, then
    /// release it again"; for a release without approval, what keeps the number in Zoom.
    pub message: Option<String>,
    pub updated_at: String,
    /// Assigned to a user in Zoom when last seen; absent when Zoom has not been asked.
    pub zoom_assigned: Option<bool>,
    pub zoom_seen_at: Option<String>,
}

impl From<ReleaseLine> for ReleaseLineOut {
    fn from(l: ReleaseLine) -> Self {
        Self {
            number_id: l.number_id.to_string(),
            number: l.e164.to_string(),
            state: l.state.as_str().to_owned(),
            message: l.message,
            updated_at: rfc3339(l.updated_at),
            zoom_assigned: l.zoom_assigned,
            zoom_seen_at: l.zoom_seen_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub release: ReleaseOut,
    pub numbers: Vec<ReleaseLineOut>,
}

#[derive(Serialize, ToSchema)]
pub struct ReleaseList {
    pub releases: Vec<ReleaseOut>,
}

#[derive(Serialize, ToSchema)]
pub struct Withdrawn {
    /// How many numbers went back to `active`.
    pub withdrawn: usize,
    pub release: ReleaseOut,
}

/// Which of the customer's active numbers to release: exactly one of `numbers`, `csv`, or a filter
/// (`prefix`, `tag`, `region`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    #[schema(value_type = String, format = Uuid)]
    customer_id: CustomerId,
    /// Why; the customer sees it.
    #[schema(example = "contract ends on 2026-12-31", min_length = 1, max_length = 500)]
    reason: String,
    /// These numbers (E.164).
    #[schema(example = json!(["+15550100000", "+15550100001"]))]
    numbers: Option<Vec<String>>,
    /// A CSV: the `e164` (or `number`) column when the first row is a header naming one, else the first column.
    csv: Option<String>,
    /// The customer's active numbers starting with this E.164 prefix, like `+1555`.
    prefix: Option<String>,
    /// The customer's active numbers with this tag.
    tag: Option<String>,
    /// The customer's active numbers of this region.
    region: Option<String>,
}

impl NewRelease {
    fn selection(&mut self) -> Result<Selection, AppError> {
        let filtered = self.prefix.is_some() || self.tag.is_some() || self.region.is_some();
        match (self.numbers.take(), self.csv.take(), filtered) {
            (Some(list), None, false) => Ok(Selection::List(list)),
            (None, Some(csv), false) => Ok(Selection::Csv(csv)),
            (None, None, true) => Ok(Selection::Filter {
                prefix: self.prefix.take(),
                tag: self.tag.take(),
                region: self.region.take(),
            }),
            (None, None, false) => Err(AppError::invalid(
                "numbers",
                "give numbers, csv, or a filter (prefix, tag, region)",
            )),
            _ => Err(AppError::invalid(
                "numbers",
                "give only one of numbers, csv, or a filter (prefix, tag, region)",
            )),
        }
    }
}

/// Start the release of some of a customer's active numbers.
///
/// All or nothing: every number must be the customer's and `active`; a refusal names each number at
/// fault. The numbers become `release_pending` (calls still route) and wait for the customer's
/// approval in the customer portal's Wait for Release tab.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = NewRelease,
    responses(
        (status = 201, description = "started; `Location` is its URL", body = ReleaseDetail),
        (status = 422, description = "a field is missing or malformed, a number is not the customer's active number, or `customer_id` names no customer; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_release(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(mut body): JsonBody<NewRelease>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let selection = body.selection()?;
    let release = state
        .app
        .start_release(body.customer_id, selection, &body.reason, &caller.actor())
        .await
        .map_err(|e| match e {
            AppError::NotFound => AppError::invalid("customer_id", "no such customer"),
            e => e,
        })?;
    let (release, lines) = state.app.release(release.id).await?;
    let location = format!("/api/v1/releases/{}", release.id);
    let detail = ReleaseDetail {
        release: ReleaseOut::new(release, state.app.now()),
        numbers: lines.into_iter().map(ReleaseLineOut::from).collect(),
    };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(detail)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's releases.
    customer_id: Option<String>,
    /// `open` (default: numbers still waiting, releasing or refused) or `all`.
    #[param(inline, value_type = Option<ReleaseListState>)]
    state: Option<String>,
    /// How many of the newest releases (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Which releases a list shows.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the accepted strings; `list_releases` reads them
#[serde(rename_all = "snake_case")]
pub enum ReleaseListState {
    Open,
    All,
}

/// List releases, the newest first, with their age.
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ListParams),
    responses(
        (status = 200, description = "releases, newest first", body = ReleaseList),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_releases(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<ReleaseList>, ApiError> {
    caller.require(Scope::Read)?;
    let customer = match params.customer_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<CustomerId>()
                .map_err(|_| AppError::invalid("customer_id", "is not a customer id"))?,
        ),
    };
    let open_only = match params.state.as_deref().unwrap_or("open") {
        "open" => true,
        "all" => false,
        _ => return Err(AppError::invalid("state", "must be open or all").into()),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid("limit", "must be 1 to 500").into());
    }
    let now = state.app.now();
    let releases = state.app.releases(customer, limit).await?;
    Ok(Json(ReleaseList {
        releases: releases
            .into_iter()
            .filter(|r| !open_only || r.open() > 0)
            .map(|r| ReleaseOut::new(r, now))
            .collect(),
    }))
}

fn release_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError(AppError::NotFound))
}

/// One release and each of its numbers.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", params(("id" = String, Path, description = "release id")),
    responses(
        (status = 200, description = "the release and its numbers", body = ReleaseDetail),
        (status = 404, description = "no release has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_release(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReleaseDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let (release, lines) = state.app.release(release_id(&id)?).await?;
    Ok(Json(ReleaseDetail {
        release: ReleaseOut::new(release, state.app.now()),
        numbers: lines.into_iter().map(ReleaseLineOut::from).collect(),
    }))
}

/// Withdraw a release: its numbers still waiting (or refused by Zoom) go back to `active`.
///
/// Numbers the customer already approved are not withdrawn.
#[utoipa::path(post, path = "/api/v1/releases/{id}/withdraw", tag = "releases", params(("id" = String, Path, description = "release id")),
    responses(
        (status = 200, description = "how many numbers went back to active, and the release now", body = Withdrawn),
        (status = 404, description = "no release has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw_release(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Withdrawn>, ApiError> {
    caller.require(Scope::Write)?;
    let id = release_id(&id)?;
    let withdrawn = state.app.withdraw_release(id, &caller.actor()).await?;
    let (release, _) = state.app.release(id).await?;
    Ok(Json(Withdrawn { withdrawn, release: ReleaseOut::new(release, state.app.now()) }))
}

/// A port-out: another carrier won some of a customer's numbers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPortOut {
    #[schema(value_type = String, format = Uuid)]
    customer_id: CustomerId,
    /// The customer's active numbers the other carrier won (E.164).
    #[schema(example = json!(["+15550100000"]))]
    numbers: Vec<String>,
    /// The carrier that won them; the customer reads it.
    #[schema(example = "Other Telco", min_length = 1, max_length = 100)]
    gaining_carrier: String,
    /// From this day (00:00 UTC) the numbers no longer route and are removed from Zoom.
    #[schema(example = "2026-12-31", format = Date)]
    due_date: String,
}

/// The end of a customer's contract.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContractEnd {
    /// From this day (00:00 UTC) all the customer's numbers no longer route and are removed from
    /// Zoom; once they are all out, its Zoom link ends.
    #[schema(example = "2026-12-31", format = Date)]
    due_date: String,
}

/// How many numbers were sent to Zoom now.
#[derive(Serialize, ToSchema)]
pub struct Forced {
    pub sent_to_zoom: usize,
    pub release: ReleaseOut,
}

fn due_date(raw: &str) -> Result<time::Date, AppError> {
    time::Date::parse(raw.trim(), time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| AppError::invalid("due_date", "is not a date like 2026-12-31"))
}

async fn created(state: &WebState, id: uuid::Uuid) -> Result<impl IntoResponse, ApiError> {
    let (release, lines) = state.app.release(id).await?;
    let location = format!("/api/v1/releases/{}", release.id);
    let detail = ReleaseDetail {
        release: ReleaseOut::new(release, state.app.now()),
        numbers: lines.into_iter().map(ReleaseLineOut::from).collect(),
    };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(detail)))
}

/// Record a port-out: another carrier won some of a customer's numbers.
///
/// No approval is asked of the customer. Until `due_date` the numbers route (`release_pending`);
/// from then they no longer route (`releasing`) and are removed from Zoom; a number Zoom keeps
/// (assigned to a user there) is shown with what blocks it and tried again until Zoom lets it go.
/// The customer's portal shows the reason ("Ported out to <carrier> on <date>").
#[utoipa::path(post, path = "/api/v1/port-outs", tag = "releases", request_body = NewPortOut,
    responses(
        (status = 201, description = "recorded; `Location` is the release's URL", body = ReleaseDetail),
        (status = 409, description = "a number is not active (already in a release, or moved meanwhile); `field` is `numbers`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed, a number is not the customer's, or `customer_id` names no customer; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_port_out(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewPortOut>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let due = due_date(&body.due_date)?;
    let release = state
        .app
        .start_port_out(
            body.customer_id,
            &body.numbers,
            &body.gaining_carrier,
            due,
            &caller.actor(),
        )
        .await
        .map_err(|e| match e {
            AppError::NotFound => AppError::invalid("customer_id", "no such customer"),
            e => e,
        })?;
    created(&state, release.id).await
}

/// End a customer's contract on a date: all its active numbers leave.
///
/// No approval is asked. Until `due_date` the numbers route; from then they no longer route and are
/// removed from Zoom; once they are all out, the customer's Zoom link ends.
#[utoipa::path(post, path = "/api/v1/customers/{id}/contract-end", tag = "releases", request_body = NewContractEnd,
    params(("id" = String, Path, description = "customer id")),
    responses(
        (status = 201, description = "recorded; `Location` is the release's URL", body = ReleaseDetail),
        (status = 404, description = "no customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a number changed meanwhile; `field` is `numbers`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`due_date` is malformed, or the customer has no active number (`numbers`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_contract_end(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewContractEnd>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Scope::Write)?;
    let customer: CustomerId = id.parse().map_err(|_| ApiError(AppError::NotFound))?;
    let due = due_date(&body.due_date)?;
    let release = state.app.start_contract_end(customer, due, &caller.actor()).await?;
    created(&state, release.id).await
}

/// Force a release without approval now.
///
/// Its numbers still waiting stop routing and are removed from Zoom now, before the due date, and
/// those Zoom refused (e.g. assigned to a user there) are tried again at once.
#[utoipa::path(post, path = "/api/v1/releases/{id}/force", tag = "releases", params(("id" = String, Path, description = "release id")),
    responses(
        (status = 200, description = "how many numbers were sent to Zoom, and the release now", body = Forced),
        (status = 404, description = "no release has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the release waits for the customer's approval; `field` is `kind`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn force_release(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Forced>, ApiError> {
    caller.require(Scope::Write)?;
    let id = release_id(&id)?;
    let sent_to_zoom = state.app.force_release(id, &caller.actor()).await?;
    let (release, _) = state.app.release(id).await?;
    Ok(Json(Forced { sent_to_zoom, release: ReleaseOut::new(release, state.app.now()) }))
}
