//! `/api/v1/numbers`: search the inventory and read a number with its audit trail.

use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use domain::auth::Scope;
use domain::search::{parse_prefix, NumberQuery};
use domain::{CustomerId, Number, NumberEvent, NumberId, NumberState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new().route("/numbers", get(search)).route("/numbers/{id}", get(detail))
}

#[derive(Serialize, ToSchema)]
pub struct NumberOut {
    pub id: String,
    /// E.164, like `+15550100000`.
    pub number: String,
    pub state: String,
    pub customer_id: Option<String>,
    pub order_id: Option<String>,
    pub tags: Vec<String>,
    pub billing_ref: Option<String>,
    pub region: Option<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub updated_at: String,
}

impl From<Number> for NumberOut {
    fn from(n: Number) -> Self {
        Self {
            id: n.id.to_string(),
            number: n.e164.to_string(),
            state: n.state.as_str().to_owned(),
            customer_id: n.customer_id.map(|c| c.to_string()),
            order_id: n.order_id.map(|o| o.to_string()),
            tags: n.tags,
            billing_ref: n.billing_ref,
            region: n.region,
            note: n.note,
            reason: n.reason,
            updated_at: rfc3339(n.updated_at),
        }
    }
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct NumberPage {
    pub numbers: Vec<NumberOut>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct SearchParams {
    /// E.164 prefix, like `+1555`.
    prefix: Option<String>,
    /// One of available, reserved, provisioning, active, release_pending, releasing, aging, suspended.
    state: Option<String>,
    customer_id: Option<String>,
    tag: Option<String>,
    region: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

impl SearchParams {
    pub fn into_query(self) -> Result<NumberQuery, AppError> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(NumberState::parse(s).ok_or_else(|| AppError::invalid("state", format!("unknown state {s:?}")))?),
        };
        let customer_id = match self.customer_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<CustomerId>().map_err(|_| AppError::invalid("customer_id", "is not a customer id"))?),
        };
        let tag = match self.tag.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(domain::import::parse_tags(t).map_err(|m| AppError::invalid("tag", m))?.into_iter().next().unwrap_or_default()),
        };
        let after = match self.after.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(a) => Some(domain::PhoneNumber::parse(a).map_err(|e| AppError::invalid("after", e.to_string()))?.to_string()),
        };
        let limit = self.limit.unwrap_or(100);
        if !(1..=domain::search::MAX_PAGE).contains(&limit) {
            return Err(AppError::invalid("limit", format!("must be 1 to {}", domain::search::MAX_PAGE)));
        }
        Ok(NumberQuery {
            prefix: parse_prefix(self.prefix.as_deref().unwrap_or_default()).map_err(|m| AppError::invalid("prefix", m))?,
            state,
            customer_id,
            tag,
            region: self.region.filter(|r| !r.trim().is_empty()),
            after,
            limit,
        })
    }
}

/// Search the inventory, one page at a time.
#[utoipa::path(get, path = "/api/v1/numbers", params(SearchParams), tag = "numbers",
    responses((status = 200, body = NumberPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search(State(state): State<WebState>, caller: Caller, Query(params): Query<SearchParams>) -> Result<Json<NumberPage>, ApiError> {
    caller.require(Scope::Read)?;
    let query = params.into_query()?;
    let numbers = state.app.search_numbers(&query).await?;
    let next_after = (numbers.len() == query.page_size() as usize).then(|| numbers.last().map(|n| n.e164.to_string())).flatten();
    Ok(Json(NumberPage { numbers: numbers.into_iter().map(NumberOut::from).collect(), next_after }))
}

#[derive(Serialize, ToSchema)]
pub struct EventOut {
    pub at: String,
    pub actor: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
}

impl From<NumberEvent> for EventOut {
    fn from(e: NumberEvent) -> Self {
        Self { at: rfc3339(e.at), actor: e.actor, from: e.from.map(|s| s.as_str().to_owned()), to: e.to.as_str().to_owned(), reason: e.reason }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NumberDetail {
    #[serde(flatten)]
    pub number: NumberOut,
    pub events: Vec<EventOut>,
}

/// One number and its audit trail, oldest event first.
#[utoipa::path(get, path = "/api/v1/numbers/{id}", tag = "numbers", params(("id" = String, Path, description = "number id")),
    responses((status = 200, body = NumberDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn detail(State(state): State<WebState>, caller: Caller, Path(id): Path<String>) -> Result<Json<NumberDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let id: NumberId = id.parse().map_err(|_| AppError::NotFound)?;
    let (number, events) = state.app.number_detail(id).await?;
    Ok(Json(NumberDetail { number: number.into(), events: events.into_iter().map(EventOut::from).collect() }))
}
