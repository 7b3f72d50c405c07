//! Jobs: the outbox that carries number changes to Zoom, as operators watch it — what waits, what
//! runs, what failed and why — with a Retry button for failed jobs.

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
use domain::onboarding::{Job, JobState};
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new().route("/jobs", get(list)).route("/jobs/{id}/retry", post(retry))
}

const JOBS_SHOWN: u32 = 200;

pub struct JobRow {
    pub job: Job,
    pub numbers: usize,
    pub run_after: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "operator/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    carrier: String,
    counts: Vec<(&'static str, i64)>,
    shown: &'static str,
    jobs: Vec<JobRow>,
    /// Links Zoom no longer accepts: (customer id, Zoom account, since, what Zoom said). Their jobs
    /// wait, so they are named above the jobs.
    reauth: Vec<(String, String, String, String)>,
    /// Jobs waiting or running past the stuck threshold.
    stuck: i64,
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
    // Failed first: that is what an operator comes here for.
    let filter = match f.state.as_str() {
        "" => Some(JobState::Failed),
        "all" => None,
        s => Some(JobState::parse(s).ok_or_else(|| {
            PageError(AppError::invalid("state", "must be pending, running, done, failed or all"))
        })?),
    };
    let found = state.app.job_counts().await?;
    let counts = JobState::ALL
        .iter()
        .map(|s| (s.as_str(), found.iter().find(|(f, _)| f == s).map_or(0, |(_, n)| *n)))
        .collect();
    let jobs = state
        .app
        .jobs(filter, JOBS_SHOWN)
        .await?
        .into_iter()
        .map(|job| JobRow {
            numbers: job.payload.numbers.len(),
            run_after: when(job.run_after),
            updated: when(job.updated_at),
            job,
        })
        .collect();
    let reauth = state
        .app
        .links_needing_reauth()
        .await?
        .into_iter()
        .map(|l| {
            let since = l.reauth_needed_at.map(when).unwrap_or_default();
            (
                l.customer_id.to_string(),
                l.zoom_account_id.to_string(),
                since,
                l.reauth_reason.unwrap_or_default(),
            )
        })
        .collect();
    let stuck = state.app.stuck_jobs().await?;
    let chrome = Chrome::new(&state, &op, "jobs");
    Ok(render(&JobsPage {
        carrier: chrome.carrier.clone(),
        chrome,
        counts,
        shown: filter.map_or("all", JobState::as_str),
        jobs,
        reauth,
        stuck,
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
    state.app.retry_job(id, &op.actor()).await?;
    Ok(Redirect::to("/operator/jobs?state=pending").into_response())
}
