//! `/api/v1/findings`: what reconciliation found where peerex, Zoom and the routing instances
//! disagree, each with when it was first and last seen and the repair peerex proposes.

use super::extract::{JsonBody, Params};
use super::numbers::rfc3339;
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::reconcile::RepairWhich;
use app::AppError;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::findings::{Finding, FindingQuery};
use domain::reconcile::FindingKind;
use domain::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/findings", get(list_findings))
        .route("/findings/repair", post(repair_findings))
}

#[derive(Serialize, ToSchema)]
pub struct FindingOut {
    #[schema(format = Uuid)]
    id: String,
    /// What disagrees: `unknown_to_peerex`, `not_sold_but_in_zoom`, `other_account`,
    /// `gone_from_zoom`, `wrong_trunk`, `inactive_in_zoom`, `returned_by_customer`, `stuck`,
    /// `push_answer_lost` or `routing_behind`.
    #[schema(example = "gone_from_zoom")]
    kind: String,
    /// The phone number (E.164), or the routing instance for `routing_behind`.
    #[schema(example = "+15550100000")]
    subject: String,
    #[schema(format = Uuid)]
    customer_id: Option<String>,
    /// The Zoom account whose listing showed it.
    zoom_account: Option<String>,
    /// What was seen, in words.
    detail: String,
    /// The repair peerex proposes: `investigate`, `remove_from_zoom`, `push_again`, `set_trunk`,
    /// `activate`, `start_release`, `run_job_again` or `mark_active`.
    repair: String,
    /// Whether peerex may run the repair by itself.
    repair_automatic: bool,
    /// Whether peerex runs it when asked for this finding by id (`POST /findings/repair`): the
    /// automatic ones, and `remove_from_zoom` and `start_release`, which a person confirms.
    repair_confirmable: bool,
    /// `proposed`, `queued`, `repaired`, or `manual` (a person decides).
    repair_state: String,
    repaired_by: Option<String>,
    first_seen: String,
    last_seen: String,
    /// When it stopped being seen (or was repaired); absent while open.
    resolved_at: Option<String>,
    resolved_by: Option<String>,
}

impl From<Finding> for FindingOut {
    fn from(f: Finding) -> Self {
        Self {
            id: f.id.to_string(),
            kind: f.kind.as_str().into(),
            subject: f.subject,
            customer_id: f.customer.map(|c| c.to_string()),
            zoom_account: f.zoom_account,
            detail: f.detail,
            repair: f.repair.as_str().into(),
            repair_automatic: f.repair.automatic(),
            repair_confirmable: f.repair.confirmable(),
            repair_state: f.repair_state.as_str().into(),
            repaired_by: f.repaired_by,
            first_seen: rfc3339(f.first_seen),
            last_seen: rfc3339(f.last_seen),
            resolved_at: f.resolved_at.map(rfc3339),
            resolved_by: f.resolved_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FindingList {
    findings: Vec<FindingOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingParams {
    /// Only findings of this kind.
    kind: Option<String>,
    /// Only this customer's findings.
    customer_id: Option<String>,
    /// `true` (the default): only open findings; `false`: only closed ones; `all`: both.
    open: Option<String>,
    /// How many, the most recently seen first (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

/// List reconciliation findings, the most recently seen first.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", params(FindingParams),
    responses(
        (status = 200, description = "findings, most recently seen first", body = FindingList),
        (status = 422, description = "a parameter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_findings(
    State(state): State<WebState>,
    caller: Caller,
    Params(p): Params<FindingParams>,
) -> Result<Json<FindingList>, ApiError> {
    caller.require(Scope::Read)?;
    let kind = match p.kind.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            FindingKind::parse(s)
                .ok_or_else(|| AppError::invalid("kind", "is not a finding kind"))?,
        ),
    };
    let customer = match p.customer_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<CustomerId>()
                .map_err(|_| AppError::invalid("customer_id", "is not a customer id"))?,
        ),
    };
    let open = match p.open.as_deref().unwrap_or("true") {
        "true" | "" => Some(true),
        "false" => Some(false),
        "all" => None,
        _ => return Err(AppError::invalid("open", "must be true, false or all").into()),
    };
    let limit = p.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be 1 to 5000").into());
    }
    let q = FindingQuery { kind, customer, open, limit };
    let findings = state.app.findings(&q).await?;
    Ok(Json(FindingList { findings: findings.into_iter().map(FindingOut::from).collect() }))
}

/// Either the findings listed, or every open one whose repair is automatic (of one customer).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// These findings; each that cannot be repaired automatically is refused with why.
    #[schema(value_type = Option<Vec<String>>)]
    finding_ids: Option<Vec<uuid::Uuid>>,
    /// Instead: every open finding whose repair is automatic and not queued yet.
    #[serde(default)]
    all_automatic: bool,
    /// With `all_automatic`: only this customer's.
    #[schema(value_type = Option<String>, format = Uuid)]
    customer_id: Option<CustomerId>,
}

#[derive(Serialize, ToSchema)]
pub struct RefusedRepair {
    #[schema(format = Uuid)]
    id: String,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct RepairOut {
    /// Findings whose repair is now in the job outbox.
    queued: Vec<String>,
    /// Jobs written to carry them to Zoom.
    jobs: usize,
    refused: Vec<RefusedRepair>,
}

/// Queue repairs of findings through the job outbox.
///
/// Only automatic repairs run this way (push a number gone from Zoom again, set its trunk or
/// status back, finish a push whose answer was lost); the others wait for a person. A finding
/// already queued is never queued twice.
#[utoipa::path(post, path = "/api/v1/findings/repair", tag = "findings", request_body = RepairRequest,
    responses(
        (status = 200, description = "what was queued, and what was refused with why", body = RepairOut),
        (status = 409, description = "some of the findings were queued by someone else, or closed, meanwhile: nothing was queued", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn repair_findings(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<RepairRequest>,
) -> Result<Json<RepairOut>, ApiError> {
    caller.require(Scope::Write)?;
    let which = match (body.finding_ids, body.all_automatic) {
        (Some(ids), false) if !ids.is_empty() => RepairWhich::Ids(ids),
        (None, true) => RepairWhich::Automatic { customer: body.customer_id },
        _ => {
            return Err(AppError::invalid(
                "finding_ids",
                "give finding_ids, or all_automatic: true (not both)",
            )
            .into())
        }
    };
    let r = state.app.repair_findings(&which, &caller.actor()).await?;
    Ok(Json(RepairOut {
        queued: r.queued.iter().map(|id| id.to_string()).collect(),
        jobs: r.jobs,
        refused: r
            .refused
            .into_iter()
            .map(|(id, reason)| RefusedRepair { id: id.to_string(), reason })
            .collect(),
    }))
}
