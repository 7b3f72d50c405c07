//! Zoom's Provider Portal (Number Management > Provider Portal [doc: Zoom support KB0076464]), as the
//! carrier's staff use it, signed in to the carrier's own Zoom account: the **Customers** tab (each
//! customer's name, account number, status and numbers), a customer's page with **Import** (numbers
//! added by CSV), **Remove** (numbers removed by CSV) and **Export**, and the **Numbers** tab listing the
//! carrier's numbers across customers, filtered by customer and state, and exported as CSV.
//!
//! Changes made here are made "outside the carrier's platform" but exactly as the API makes them: the
//! same rules ([`crate::numbers`]), the same state, and no webhook, as Zoom publishes none for numbers
//! being added or removed [doc, by absence]. A file is all or nothing: with any problem, nothing changes
//! and every problem is listed by row and column [assume: Zoom's batch imports of phone users stop on
//! any field error and show the details, KB0069388; nothing says the Provider Portal's differ].

use crate::numbers::{self, Number, PoolStatus, Reason};
use crate::oauth::render;
use crate::pages::{message, notice, path_segment, visitor, with_notice, Refusal, Visitor};
use crate::portal_csv::{self, FileError};
use crate::state::SimState;
use crate::world::Account;
use crate::Simulator;
use askama::Template;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;

const HOME: &str = "/provider-portal";

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route(HOME, get(|| async { Redirect::to("/provider-portal/customers") }))
        .route("/provider-portal/customers", get(customers))
        .route("/provider-portal/customers/{account_id}", get(customer))
        .route("/provider-portal/customers/{account_id}/import", post(import))
        .route("/provider-portal/customers/{account_id}/remove", post(remove))
        .route("/provider-portal/numbers", get(numbers))
        .route("/provider-portal/numbers/export", get(export))
        .route("/provider-portal/numbers/template", get(template))
}

/// Scopes that let an app add or remove a customer's peering numbers (both generations' granular and
/// peering scopes [doc]): a customer whose admin authorized such an app has given the carrier access
/// ("when the customer grants the provider access to provision and manage numbers, they have the access
/// to do so" [doc: KB0076464]).
const PEERING_WRITE: [&str; 5] = [
    "number_management_numbers:write:admin",
    "number_management:write:peering_number:admin",
    "number_management:delete:peering_number:admin",
    "phone_peering:write:admin",
    "phone:write:peering_number:admin",
];

/// Numbers shown on a page of the Numbers tab.
const PAGE_SIZE: usize = 100;

/// The Provider Portal is only in the provider's bound account [doc: KB0076464], for its admins [doc].
fn provider<'w>(
    sim: &'w Simulator,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Visitor<'w>, Refusal> {
    let v = visitor(sim, headers, uri)?;
    let ours = sim.world().carrier_account().is_some_and(|a| a.id == v.account.id);
    if !ours {
        return Err(Refusal::Forbidden(
            "The Provider Portal is only in the Cloud Peering provider's own Zoom account.",
        ));
    }
    if !v.is_admin() {
        return Err(Refusal::Forbidden("Only your account admin can use the Provider Portal."));
    }
    Ok(v)
}

/// Whether the customer has given the carrier access: an app that can add its peering numbers is
/// authorized on its account.
fn connected(s: &SimState, account_id: &str) -> bool {
    s.grants.values().any(|g| {
        g.account_id == account_id && g.scopes.iter().any(|sc| PEERING_WRITE.contains(&sc.as_str()))
    })
}

/// A customer account of this carrier: any but the carrier's own.
fn customer_account<'w>(sim: &'w Simulator, account_id: &str) -> Option<&'w Account> {
    let own = sim.world().carrier_account().map(|a| a.id.as_str());
    sim.world().account(account_id).filter(|a| Some(a.id.as_str()) != own)
}

fn status_label(connected: bool) -> &'static str {
    if connected {
        "Active"
    } else {
        "Inactive"
    }
}

// --- the Customers tab --------------------------------------------------------------------------------

struct CustomerRow<'a> {
    id: &'a str,
    name: &'a str,
    account_number: &'a str,
    numbers: usize,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "provider_customers.html")]
struct CustomersPage<'a> {
    notice: Option<String>,
    customers: Vec<CustomerRow<'a>>,
    total_numbers: usize,
}

/// Customers are the accounts that gave the carrier access, and those that still hold its numbers
/// (after removing its app, say) [assume].
async fn customers(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = provider(&sim, &headers, &uri) {
        return r.into_response();
    }
    let code = sim.world().carrier().carrier_code;
    let (counts, access): (HashMap<String, usize>, Vec<String>) = sim.read(|s| {
        let mut counts = HashMap::new();
        for n in s.numbers.values().filter(|n| n.carrier_code == code) {
            *counts.entry(n.account_id.clone()).or_insert(0) += 1;
        }
        let access =
            sim.world().accounts().iter().filter(|a| connected(s, &a.id)).map(|a| a.id.clone());
        (counts, access.collect())
    });
    let rows: Vec<CustomerRow> = sim
        .world()
        .accounts()
        .iter()
        .filter(|a| customer_account(&sim, &a.id).is_some())
        .filter_map(|a| {
            let numbers = counts.get(&a.id).copied().unwrap_or(0);
            let connected = access.contains(&a.id);
            (connected || numbers > 0).then_some(CustomerRow {
                id: &a.id,
                name: &a.name,
                account_number: &a.account_number,
                numbers,
                status: status_label(connected),
            })
        })
        .collect();
    let total_numbers = rows.iter().map(|r| r.numbers).sum();
    render(StatusCode::OK, &CustomersPage { notice: notice(&uri), customers: rows, total_numbers })
}

// --- a customer's page: Import, Remove, Export ----------------------------------------------------------

struct NumberRow {
    phone_number: String,
    customer: String,
    customer_account_number: String,
    sip_trunk_name: String,
    status: &'static str,
    pool_status: &'static str,
    assigned: &'static str,
    billing_ref_id: String,
}

fn number_row(sim: &Simulator, n: &Number) -> NumberRow {
    let account = sim.world().account(&n.account_id);
    NumberRow {
        phone_number: n.phone_number.clone(),
        customer: account.map(|a| a.name.clone()).unwrap_or_default(),
        customer_account_number: account.map(|a| a.account_number.clone()).unwrap_or_default(),
        sip_trunk_name: n.sip_trunk_name.clone(),
        status: if n.status { "Normal" } else { "Pending" },
        pool_status: n.pool_status().label(),
        assigned: if n.assigned() { "Assigned" } else { "Unassigned" },
        billing_ref_id: n.billing_ref_id.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "provider_customer.html")]
struct CustomerPage<'a> {
    notice: Option<String>,
    id: String,
    name: &'a str,
    account_number: &'a str,
    status: &'static str,
    numbers: Vec<NumberRow>,
    /// What was wrong with the file just uploaded: nothing was changed.
    errors: Vec<String>,
    export_query: String,
}

fn customer_page(
    sim: &Simulator,
    account: &Account,
    notice: Option<String>,
    errors: Vec<FileError>,
) -> Response {
    let code = sim.world().carrier().carrier_code;
    let (numbers, connected) = sim.read(|s| {
        let numbers: Vec<NumberRow> = s
            .account_numbers(&account.id)
            .filter(|n| n.carrier_code == code)
            .map(|n| number_row(sim, n))
            .collect();
        (numbers, connected(s, &account.id))
    });
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let export_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("customer_account_number", &account.account_number)
        .finish();
    let page = CustomerPage {
        notice,
        id: path_segment(&account.id),
        name: &account.name,
        account_number: &account.account_number,
        status: status_label(connected),
        numbers,
        errors: errors.iter().map(ToString::to_string).collect(),
        export_query,
    };
    render(status, &page)
}

/// The customer whose page this is, for the carrier's admin; the refusal as a response otherwise.
fn provider_and_customer<'w>(
    sim: &'w Simulator,
    headers: &HeaderMap,
    uri: &Uri,
    account_id: &str,
) -> Result<&'w Account, Refusal> {
    provider(sim, headers, uri)?;
    customer_account(sim, account_id).ok_or(Refusal::NotFound("There is no such customer."))
}

async fn customer(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(account_id): Path<String>,
) -> Response {
    match provider_and_customer(&sim, &headers, &uri, &account_id) {
        Ok(account) => customer_page(&sim, account, notice(&uri), Vec::new()),
        Err(r) => r.into_response(),
    }
}

/// The uploaded file's bytes (the form's `file` field).
async fn uploaded(multipart: Result<Multipart, MultipartRejection>) -> Result<Vec<u8>, FileError> {
    let unreadable = |e: String| {
        tracing::info!(error = %e, "zoom-sim: a Provider Portal upload could not be read");
        FileError::file("The upload could not be read: choose a CSV file and try again.")
    };
    let mut multipart = multipart.map_err(|e| unreadable(e.to_string()))?;
    while let Some(field) = multipart.next_field().await.map_err(|e| unreadable(e.to_string()))? {
        if field.name() == Some("file") {
            let bytes = field.bytes().await.map_err(|e| unreadable(e.to_string()))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            return Ok(bytes.to_vec());
        }
    }
    Err(FileError::file("Choose a CSV file to upload."))
}

fn no_access(sim: &Simulator, account: &Account) -> FileError {
    FileError::file(format!(
        "{} has not given {} access to its account (its admin has not added your app, or removed it).",
        account.name,
        sim.world().carrier().name
    ))
}

/// Import: the file's numbers are added to the customer's account, all of them or none.
async fn import(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(account_id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let account = match provider_and_customer(&sim, &headers, &uri, &account_id) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let fail = |errors| customer_page(&sim, account, None, errors);
    if !account.zoom_phone {
        return fail(vec![FileError::file("Zoom Phone has not been enabled for this account.")]);
    }
    let bytes = match uploaded(multipart).await {
        Ok(b) => b,
        Err(e) => return fail(vec![e]),
    };
    let rows = match portal_csv::read_import(&bytes, sim.world().carrier()) {
        Ok(rows) => rows,
        Err(errors) => return fail(errors),
    };
    let lines: Vec<u64> = rows.iter().map(|r| r.row).collect();
    let items = rows.into_iter().map(|r| r.add).collect();
    let now = sim.now();
    apply_rows(&sim, account, &lines, "added to", |s, scope| numbers::add_all(s, scope, items, now))
        .await
}

/// Remove: the file's numbers are removed from the customer's account, all of them or none. An assigned
/// number is not removed: the customer unbinds it first (REFERENCE §1 [seen]).
async fn remove(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(account_id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let account = match provider_and_customer(&sim, &headers, &uri, &account_id) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let fail = |errors| customer_page(&sim, account, None, errors);
    let bytes = match uploaded(multipart).await {
        Ok(b) => b,
        Err(e) => return fail(vec![e]),
    };
    let rows = match portal_csv::read_removal(&bytes) {
        Ok(rows) => rows,
        Err(errors) => return fail(errors),
    };
    let (lines, numbers): (Vec<u64>, Vec<String>) = rows.into_iter().unzip();
    apply_rows(&sim, account, &lines, "removed from", |s, scope| {
        numbers::remove_all(s, scope, &numbers)
    })
    .await
}

/// Applies a checked file's rows to the customer's account in one write, all of them or none (`op`
/// names the items it refused by index; `lines` gives each item's row in the file), then shows the
/// customer's page with what was done ("3 numbers added to Acme Corp.") or the rows' errors.
async fn apply_rows(
    sim: &Simulator,
    account: &Account,
    lines: &[u64],
    done_to: &str,
    op: impl FnOnce(&mut SimState, &numbers::Scope<'_>) -> Result<usize, Vec<(usize, Reason)>>,
) -> Response {
    let done = sim
        .write(|s| {
            if !connected(s, &account.id) {
                return Err(vec![no_access(sim, account)]);
            }
            let scope =
                numbers::Scope { world: sim.world(), account_id: &account.id, injected: None };
            op(s, &scope).map_err(|failures| {
                failures
                    .into_iter()
                    .map(|(i, reason)| row_error(lines.get(i).copied().unwrap_or(0), &reason))
                    .collect()
            })
        })
        .await;
    match done {
        Ok(n) => with_notice(
            &format!("{HOME}/customers/{}", path_segment(&account.id)),
            &format!("{n} {} {done_to} {}.", plural(n), account.name),
        )
        .into_response(),
        Err(errors) => customer_page(sim, account, None, errors),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "number"
    } else {
        "numbers"
    }
}

/// A number the rules refused, in the API's words where Zoom has them, and what to do about it.
fn row_error(row: u64, reason: &Reason) -> FileError {
    let message = match reason {
        Reason::Assigned => {
            "Phone number is assigned to a user in Zoom: the customer must unbind it first".into()
        }
        Reason::DoesNotExist => {
            "Phone number does not exist in this customer's account (or is not yours)".into()
        }
        Reason::AlreadyExists => {
            "Phone number already exists in Zoom (or appears twice in the file)".into()
        }
        other => other.text().to_owned(),
    };
    FileError::row(row, Some("Phone Number"), message)
}

// --- the Numbers tab and the export --------------------------------------------------------------------

/// The Numbers tab's filters, from the query string; a value it does not know is refused, naming it.
struct Filter {
    customer_account_number: Option<String>,
    status: Option<bool>,
    pool_status: Option<PoolStatus>,
    assigned: Option<bool>,
    page: usize,
}

impl Filter {
    fn parse(uri: &Uri) -> Result<Filter, String> {
        let q = crate::json::Query::parse(uri);
        let get = |name| q.get(name).map(str::trim).filter(|v| !v.is_empty());
        let status = match get("status") {
            None => None,
            Some("normal") => Some(true),
            Some("pending") => Some(false),
            Some(_) => return Err("status must be normal or pending".into()),
        };
        let pool_status = match get("pool_status") {
            None => None,
            Some("in_use") => Some(PoolStatus::InUse),
            Some("returned") => Some(PoolStatus::Returned),
            Some(_) => return Err("pool_status must be in_use or returned".into()),
        };
        let assigned = match get("assigned") {
            None => None,
            Some("assigned") => Some(true),
            Some("unassigned") => Some(false),
            Some(_) => return Err("assigned must be assigned or unassigned".into()),
        };
        let page = match get("page") {
            None => 1,
            Some(p) => p.parse().ok().filter(|p| *p >= 1).ok_or("page must be 1 or more")?,
        };
        Ok(Filter {
            customer_account_number: get("customer_account_number").map(str::to_owned),
            status,
            pool_status,
            assigned,
            page,
        })
    }

    /// The carrier's numbers that pass, in E.164 order.
    fn select(&self, sim: &Simulator, s: &SimState) -> Vec<Number> {
        let code = sim.world().carrier().carrier_code;
        let account = self
            .customer_account_number
            .as_deref()
            .map(|n| sim.world().account_by_number(n).map(|a| a.id.as_str()).unwrap_or(""));
        let all: Box<dyn Iterator<Item = &Number>> = match account {
            Some(id) => Box::new(s.account_numbers(id)),
            None => Box::new(s.numbers.values()),
        };
        all.filter(|n| n.carrier_code == code)
            .filter(|n| self.status.is_none_or(|st| n.status == st))
            .filter(|n| self.pool_status.is_none_or(|p| n.pool_status() == p))
            .filter(|n| self.assigned.is_none_or(|a| n.assigned() == a))
            .cloned()
            .collect()
    }

    /// The query string of these filters (without the page).
    fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = &self.customer_account_number {
            q.append_pair("customer_account_number", c);
        }
        if let Some(s) = self.status {
            q.append_pair("status", if s { "normal" } else { "pending" });
        }
        if let Some(p) = self.pool_status {
            q.append_pair(
                "pool_status",
                if p == PoolStatus::Returned { "returned" } else { "in_use" },
            );
        }
        if let Some(a) = self.assigned {
            q.append_pair("assigned", if a { "assigned" } else { "unassigned" });
        }
        q.finish()
    }
}

/// (value, label, selected) of a filter's options.
type Options = Vec<(String, String, bool)>;

#[derive(Template)]
#[template(path = "provider_numbers.html")]
struct NumbersPage {
    notice: Option<String>,
    customers: Options,
    statuses: Options,
    pool_statuses: Options,
    assignments: Options,
    numbers: Vec<NumberRow>,
    total: usize,
    page: usize,
    pages: usize,
    query: String,
}

fn options(selected: &str, all: &[(&str, &str)]) -> Options {
    all.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned(), *v == selected)).collect()
}

async fn numbers(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = provider(&sim, &headers, &uri) {
        return r.into_response();
    }
    let filter = match Filter::parse(&uri) {
        Ok(f) => f,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e),
    };
    let selected = sim.read(|s| filter.select(&sim, s));
    let total = selected.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let numbers = selected
        .iter()
        .skip((filter.page - 1).saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
        .map(|n| number_row(&sim, n))
        .collect();
    let query = filter.query();
    let own = sim.world().carrier_account().map(|a| a.id.as_str());
    let chosen = filter.customer_account_number.as_deref().unwrap_or("");
    let mut customers = vec![(String::new(), "All customers".to_owned(), chosen.is_empty())];
    customers.extend(
        sim.world()
            .accounts()
            .iter()
            .filter(|a| Some(a.id.as_str()) != own)
            .map(|a| (a.account_number.clone(), a.name.clone(), a.account_number == chosen)),
    );
    let q = crate::json::Query::parse(&uri);
    let page = NumbersPage {
        notice: notice(&uri),
        customers,
        statuses: options(
            q.get("status").unwrap_or(""),
            &[("", "All"), ("normal", "Normal"), ("pending", "Pending")],
        ),
        pool_statuses: options(
            q.get("pool_status").unwrap_or(""),
            &[("", "All"), ("in_use", "In Use"), ("returned", "Returned")],
        ),
        assignments: options(
            q.get("assigned").unwrap_or(""),
            &[("", "All"), ("assigned", "Assigned"), ("unassigned", "Unassigned")],
        ),
        numbers,
        total,
        page: filter.page,
        pages,
        query,
    };
    render(StatusCode::OK, &page)
}

/// Export: every number the filters select, as CSV.
async fn export(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = provider(&sim, &headers, &uri) {
        return r.into_response();
    }
    let filter = match Filter::parse(&uri) {
        Ok(f) => f,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e),
    };
    let selected = sim.read(|s| filter.select(&sim, s));
    let csv = portal_csv::export(selected.iter().map(|n| {
        let account = sim.world().account(&n.account_id);
        portal_csv::Exported {
            number: n,
            customer_name: account.map(|a| a.name.as_str()).unwrap_or(""),
            customer_account_number: account.map(|a| a.account_number.as_str()).unwrap_or(""),
        }
    }));
    csv_download("peering-numbers.csv", csv)
}

/// The import file's template.
async fn template(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = provider(&sim, &headers, &uri) {
        return r.into_response();
    }
    csv_download("peering-numbers-template.csv", portal_csv::template(sim.world().carrier()))
}

fn csv_download(file_name: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        body,
    )
        .into_response()
}
