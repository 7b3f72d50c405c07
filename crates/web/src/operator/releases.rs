//! Releases (issue 6): an operator starts the release of some of a customer's active numbers (listed,
//! as a CSV, or by filter) with a reason; they wait for the customer's approval in the customer
//! portal. Operators see releases still waiting, with their age, and withdraw what still waits.

use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::{render, PageError};
use crate::session::Operator;
use crate::WebState;
use app::release::Selection;
use app::AppError;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::customer::Customer;
use domain::release::{Release, ReleaseLine};
use domain::CustomerId;
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/releases", get(list).post(start))
        .route("/releases/{id}", get(detail))
        .route("/releases/{id}/withdraw", post(withdraw))
        .route("/releases/{id}/force", post(force))
        .route("/port-outs", post(port_out))
        .route("/contract-ends", post(contract_end))
}

const RELEASES_SHOWN: u32 = 200;

/// Releases waiting longer than this are marked overdue.
const OVERDUE_DAYS: i64 = 14;

pub struct ReleaseRow {
    pub release: Release,
    pub customer: String,
    pub started: String,
    /// "3 days", "5 hours", ...
    pub age: String,
    pub overdue: bool,
}

fn age(d: time::Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if d.whole_days() >= 1 {
        plural(d.whole_days(), "day")
    } else if d.whole_hours() >= 1 {
        plural(d.whole_hours(), "hour")
    } else {
        plural(d.whole_minutes().max(0), "minute")
    }
}

impl ReleaseRow {
    fn new(r: Release, names: &HashMap<CustomerId, String>, now: time::OffsetDateTime) -> Self {
        let waited = now - r.started_at;
        Self {
            customer: names
                .get(&r.customer_id)
                .cloned()
                .unwrap_or_else(|| r.customer_id.to_string()),
            started: when(r.started_at),
            age: age(waited),
            overdue: r.open() > 0 && waited.whole_days() >= OVERDUE_DAYS,
            release: r,
        }
    }
}

/// What the new-release form was given, shown again with a refusal.
#[derive(Default)]
pub struct NewRelease {
    pub csrf: String,
    pub customer: String,
    pub reason: String,
    pub numbers: String,
    pub prefix: String,
    pub tag: String,
    pub region: String,
    pub csv: String,
}

impl NewRelease {
    async fn read(mut form: Multipart) -> Result<Self, FormError> {
        let mut f = NewRelease::default();
        let broken = |e: axum::extract::multipart::MultipartError| {
            FormError::new("file", format!("the form could not be read: {e}"))
        };
        while let Some(field) = form.next_field().await.map_err(broken)? {
            let name = field.name().unwrap_or_default().to_owned();
            let text = field.text().await.map_err(broken)?;
            match name.as_str() {
                "csrf" => f.csrf = text,
                "customer" => f.customer = text,
                "reason" => f.reason = text,
                "numbers" => f.numbers = text,
                "prefix" => f.prefix = text,
                "tag" => f.tag = text,
                "region" => f.region = text,
                "file" => f.csv = text,
                _ => {}
            }
        }
        Ok(f)
    }

    fn selection(&self) -> Result<(CustomerId, Selection), FormError> {
        let customer = match self.customer.trim() {
            "" => return Err(FormError::new("customer", "choose a customer")),
            c => c.parse().map_err(|_| FormError::new("customer", "no such customer"))?,
        };
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let selection = if !self.csv.trim().is_empty() {
            Selection::Csv(self.csv.clone())
        } else if !self.numbers.trim().is_empty() {
            // One per line, or a pasted CSV: the same reader takes both.
            Selection::Csv(self.numbers.clone())
        } else if given(&self.prefix).is_some()
            || given(&self.tag).is_some()
            || given(&self.region).is_some()
        {
            Selection::Filter {
                prefix: given(&self.prefix),
                tag: given(&self.tag),
                region: given(&self.region),
            }
        } else {
            return Err(FormError::new(
                "numbers",
                "list the numbers, upload a CSV, or give a filter (prefix, tag, region)",
            ));
        };
        Ok((customer, selection))
    }
}

#[derive(Template)]
#[template(path = "operator/releases.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    rows: Vec<ReleaseRow>,
    all: bool,
    customers: Vec<Customer>,
    form: NewRelease,
    error: Option<FormError>,
    /// The port-out / contract-end form, and its refusal.
    port: CarrierForm,
    port_error: Option<FormError>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }

    fn port_bad(&self, field: &str) -> bool {
        super::bad(&self.port_error, field)
    }
}

/// A port-out (numbers won by another carrier) or a contract end (all the customer's numbers), on a
/// due date; no approval is asked of the customer.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CarrierForm {
    pub csrf: String,
    pub customer: String,
    pub numbers: String,
    pub gaining_carrier: String,
    pub due_date: String,
}

impl CarrierForm {
    fn customer(&self) -> Result<CustomerId, FormError> {
        match self.customer.trim() {
            "" => Err(FormError::new("customer", "choose a customer")),
            c => c.parse().map_err(|_| FormError::new("customer", "no such customer")),
        }
    }

    fn due(&self) -> Result<time::Date, FormError> {
        time::Date::parse(
            self.due_date.trim(),
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| FormError::new("due_date", "is not a date like 2026-12-31"))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    state: String,
    customer: String,
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    all: bool,
    form: NewRelease,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    list_page_with(state, op, all, form, error, CarrierForm::default(), None).await
}

async fn list_page_with(
    state: &WebState,
    op: &Operator,
    all: bool,
    form: NewRelease,
    error: Option<FormError>,
    port: CarrierForm,
    port_error: Option<FormError>,
) -> Result<Response, PageError> {
    let customers = state.app.customers().await?;
    let names: HashMap<CustomerId, String> =
        customers.iter().map(|c| (c.id, c.name.clone())).collect();
    let now = state.app.now();
    let rows = state
        .app
        .releases(None, RELEASES_SHOWN)
        .await?
        .into_iter()
        .filter(|r| all || r.open() > 0)
        .map(|r| ReleaseRow::new(r, &names, now))
        .collect();
    let chrome = Chrome::new(state, op, "releases");
    let page = ListPage {
        carrier: chrome.carrier.clone(),
        chrome,
        rows,
        all,
        customers,
        form,
        error,
        port,
        port_error,
    };
    Ok(render_with(&page, page.error.as_ref().or(page.port_error.as_ref())))
}

async fn list(
    State(state): State<WebState>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let form = NewRelease { customer: q.customer, ..Default::default() };
    list_page(&state, &op, q.state == "all", form, None).await
}

async fn start(
    State(state): State<WebState>,
    op: Operator,
    form: Multipart,
) -> Result<Response, PageError> {
    let form = match NewRelease::read(form).await {
        Ok(f) => f,
        Err(e) => return list_page(&state, &op, false, NewRelease::default(), Some(e)).await,
    };
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let (customer, selection) = match form.selection() {
        Ok(s) => s,
        Err(e) => return list_page(&state, &op, false, form, Some(e)).await,
    };
    let by = domain::Actor::Operator(op.user.email.clone());
    match state.app.start_release(customer, selection, &form.reason, &by).await {
        Ok(r) => Ok(Redirect::to(&format!("/operator/releases/{}", r.id)).into_response()),
        Err(AppError::NotFound) => {
            list_page(
                &state,
                &op,
                false,
                form,
                Some(FormError::new("customer", "no such customer")),
            )
            .await
        }
        Err(e) => {
            let e = FormError::try_from(e)?;
            list_page(&state, &op, false, form, Some(e)).await
        }
    }
}

pub struct LineRow {
    pub line: ReleaseLine,
    pub updated: String,
    pub zoom: String,
}

#[derive(Template)]
#[template(path = "operator/release.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    row: ReleaseRow,
    /// When a release without approval is due.
    due: Option<String>,
    lines: Vec<LineRow>,
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    let (release, lines) = state.app.release(id).await?;
    let customer = state.app.customer(release.customer_id).await?;
    let names = HashMap::from([(customer.id, customer.name)]);
    let lines = lines
        .into_iter()
        .map(|l| {
            let zoom = match (l.zoom_assigned, l.zoom_seen_at) {
                (Some(true), Some(at)) => format!("assigned to a user (seen {})", when(at)),
                (Some(false), Some(at)) => format!("unassigned (seen {})", when(at)),
                _ => String::new(),
            };
            LineRow { updated: when(l.updated_at), zoom, line: l }
        })
        .collect();
    let chrome = Chrome::new(&state, &op, "releases");
    Ok(render(&DetailPage {
        carrier: chrome.carrier.clone(),
        due: release.due_at.map(when),
        chrome,
        row: ReleaseRow::new(release, &names, state.app.now()),
        lines,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn withdraw(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.withdraw_release(id, &domain::Actor::Operator(op.user.email.clone())).await?;
    Ok(Redirect::to(&format!("/operator/releases/{id}")).into_response())
}

/// Records a port-out (`numbers` given) or a contract end (no `numbers`: all the customer's active
/// numbers) from the releases page.
async fn carrier_release(
    state: &WebState,
    op: &Operator,
    form: CarrierForm,
    contract_end: bool,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(op, &form.csrf) {
        return Ok(refused);
    }
    let refuse = |form, e| async move {
        list_page_with(state, op, false, NewRelease::default(), None, form, Some(e)).await
    };
    let customer = match form.customer() {
        Ok(c) => c,
        Err(e) => return refuse(form, e).await,
    };
    let due = match form.due() {
        Ok(d) => d,
        Err(e) => return refuse(form, e).await,
    };
    let by = domain::Actor::Operator(op.user.email.clone());
    let started = if contract_end {
        state.app.start_contract_end(customer, due, &by).await
    } else {
        let numbers: Vec<String> = form
            .numbers
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        state.app.start_port_out(customer, &numbers, &form.gaining_carrier, due, &by).await
    };
    match started {
        Ok(r) => Ok(Redirect::to(&format!("/operator/releases/{}", r.id)).into_response()),
        Err(AppError::NotFound) => {
            refuse(form, FormError::new("customer", "no such customer")).await
        }
        Err(e) => {
            let e = FormError::try_from(e)?;
            refuse(form, e).await
        }
    }
}

async fn port_out(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<CarrierForm>,
) -> Result<Response, PageError> {
    carrier_release(&state, &op, form, false).await
}

async fn contract_end(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<CarrierForm>,
) -> Result<Response, PageError> {
    carrier_release(&state, &op, form, true).await
}

/// Forces a release without approval now: what still waits stops routing and leaves Zoom, and
/// what Zoom refused is tried again at once.
async fn force(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.force_release(id, &domain::Actor::Operator(op.user.email.clone())).await?;
    Ok(Redirect::to(&format!("/operator/releases/{id}")).into_response())
}
