//! Drift: where peerex, Zoom and the routing instances disagree, as the reconciler last found it —
//! each open finding in plain words, with when it was first and last seen and what peerex proposes.

use super::{may_change, when, Chrome};
use crate::error::{render, PageError};
use crate::session::Operator;
use crate::WebState;
use app::reconcile::RepairWhich;
use app::AppError;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use axum::Router;
use domain::findings::{Finding, FindingQuery, RepairState};
use domain::reconcile::{FindingKind, Repair};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new().route("/drift", get(list)).route("/drift/repair", post(repair))
}

const SHOWN: u32 = 500;

/// What a kind of finding means, in an operator's words.
pub fn kind_words(k: FindingKind) -> &'static str {
    match k {
        FindingKind::UnknownToPeerex => "In Zoom, unknown to peerex",
        FindingKind::NotSoldButInZoom => "In Zoom, but not sold in peerex",
        FindingKind::OtherAccount => "In Zoom under another customer's account",
        FindingKind::GoneFromZoom => "Active in peerex, gone from Zoom",
        FindingKind::WrongTrunk => "On the wrong SIP trunk in Zoom",
        FindingKind::InactiveInZoom => "Inactive in Zoom",
        FindingKind::ReturnedByCustomer => "Marked Returned by the customer",
        FindingKind::Stuck => "Stuck waiting for Zoom",
        FindingKind::PushAnswerLost => "In Zoom, still provisioning in peerex",
        FindingKind::RoutingBehind => "Routing instance behind the database",
    }
}

/// What peerex proposes, in an operator's words.
pub fn repair_words(r: Repair) -> &'static str {
    match r {
        Repair::Investigate => "Look into it: peerex changes nothing by itself",
        Repair::RemoveFromZoom => "Remove it from Zoom (after an operator confirms)",
        Repair::PushAgain => "Push it to the customer's Zoom account again",
        Repair::SetTrunk => "Set the customer's SIP trunk in Zoom",
        Repair::Activate => "Activate it in Zoom",
        Repair::StartRelease => "Start a release of the number",
        Repair::RunJobAgain => "Queue its push or removal again",
        Repair::MarkActive => "Record it as active",
    }
}

pub struct DriftRow {
    pub id: String,
    /// An operator may queue its repair now.
    pub repairable: bool,
    pub kind: &'static str,
    pub kind_code: &'static str,
    pub subject: String,
    pub customer: Option<String>,
    pub detail: String,
    pub first_seen: String,
    pub last_seen: String,
    pub repair: &'static str,
    pub automatic: bool,
    /// Waits for a person to confirm it (the button says so).
    pub confirm: bool,
    pub repair_state: &'static str,
}

impl From<Finding> for DriftRow {
    fn from(f: Finding) -> Self {
        DriftRow {
            id: f.id.to_string(),
            repairable: f.repair.confirmable()
                && matches!(f.repair_state, RepairState::Proposed | RepairState::Manual),
            kind: kind_words(f.kind),
            kind_code: f.kind.as_str(),
            subject: f.subject,
            customer: f.customer.map(|c| c.to_string()),
            detail: f.detail,
            first_seen: when(f.first_seen),
            last_seen: when(f.last_seen),
            repair: repair_words(f.repair),
            automatic: f.repair.automatic(),
            confirm: f.repair_state == RepairState::Manual,
            repair_state: f.repair_state.as_str(),
        }
    }
}

#[derive(Template)]
#[template(path = "operator/drift.html")]
struct DriftPage {
    chrome: Chrome,
    carrier: String,
    /// (code, words, open count) for every kind.
    counts: Vec<(&'static str, &'static str, i64)>,
    shown: Option<&'static str>,
    rows: Vec<DriftRow>,
    /// What the last repair did, shown above the table.
    message: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Filter {
    kind: String,
    queued: Option<usize>,
    refused: Option<usize>,
}

async fn list(
    State(state): State<WebState>,
    op: Operator,
    Query(f): Query<Filter>,
) -> Result<Response, PageError> {
    let kind = match f.kind.as_str() {
        "" => None,
        s => Some(
            FindingKind::parse(s)
                .ok_or_else(|| PageError(AppError::invalid("kind", "is not a finding kind")))?,
        ),
    };
    let counts = state
        .app
        .open_finding_counts()
        .await?
        .into_iter()
        .map(|(k, n)| (k.as_str(), kind_words(k), n))
        .collect();
    let q = FindingQuery { kind, open: Some(true), limit: SHOWN, ..Default::default() };
    let rows = state.app.findings(&q).await?.into_iter().map(DriftRow::from).collect();
    let chrome = Chrome::new(&state, &op, "drift");
    Ok(render(&DriftPage {
        carrier: chrome.carrier.clone(),
        chrome,
        counts,
        shown: kind.map(kind_words),
        rows,
        message: match (f.queued, f.refused) {
            (Some(q), Some(r)) if r > 0 => {
                format!("{q} repairs queued; {r} findings need a person or were queued already.")
            }
            (Some(q), _) => format!("{q} repairs queued: the job outbox carries them to Zoom."),
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RepairForm {
    csrf: String,
    /// One finding; empty: every open finding whose repair is automatic.
    finding: String,
}

/// Queues one finding's repair, or every automatic one, through the outbox.
async fn repair(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<RepairForm>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let which = if form.finding.is_empty() {
        RepairWhich::Automatic { customer: None }
    } else {
        let id = form.finding.parse().map_err(|_| PageError(AppError::NotFound))?;
        RepairWhich::Ids(vec![id])
    };
    let r = state.app.repair_findings(&which, &op.actor()).await?;
    let to = format!("/operator/drift?queued={}&refused={}", r.queued.len(), r.refused.len());
    Ok(Redirect::to(&to).into_response())
}
