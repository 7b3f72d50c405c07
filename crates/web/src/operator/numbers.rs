//! Inventory: search with keyset pages, a CSV export of a whole search, a number with its audit trail.

use super::{render_with, when, Chrome, FormError};
use crate::error::{error_page, render, PageError};
use crate::session::{encode_component, Operator};
use crate::WebState;
use app::{App, AppError};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::customer::Customer;
use domain::import::spreadsheet_cell;
use domain::search::NumberQuery;
use domain::zoom_facts::{FactChange, NumberFacts};
use domain::{CustomerId, Number, NumberId, NumberState};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/numbers", get(search))
        .route("/numbers/export.csv", get(export))
        .route("/numbers/{id}", get(detail))
}

const PAGE_SIZE: u32 = 100;
/// The export walks the search in pages this big: few round trips, bounded memory.
const EXPORT_PAGE_SIZE: u32 = domain::search::MAX_PAGE;
pub const EXPORT_COLUMNS: [&str; 7] =
    ["number", "state", "customer_id", "tags", "billing_ref", "region", "note"];

/// The search form as typed; empty means "any".
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filters {
    prefix: String,
    state: String,
    customer: String,
    tag: String,
    region: String,
    after: String,
    /// `missing`: only the numbers flagged for a missing emergency address.
    e911: String,
}

impl Filters {
    /// The search, with the flag filter as the carrier's rule makes it; `None` when nothing can
    /// match (the flag asked for while no address is required).
    fn query_on(&self, app: &App, limit: u32) -> Result<Option<NumberQuery>, FormError> {
        let mut q = self.query(limit)?;
        if self.e911.trim() == "missing" {
            match app.missing_address_filter() {
                Some(prefixes) => q.emergency_address_missing = Some(prefixes),
                None => return Ok(None),
            }
        }
        Ok(Some(q))
    }

    fn query(&self, limit: u32) -> Result<NumberQuery, FormError> {
        let raw = domain::search::RawFilters {
            prefix: Some(&self.prefix),
            state: Some(&self.state),
            customer: Some(&self.customer),
            tag: Some(&self.tag),
            region: Some(&self.region),
            after: Some(&self.after),
        };
        raw.parse(limit).map_err(|e| FormError::new(e.field, e.message))
    }

    /// The filters as a query string (without `after`), for the next-page and export links.
    fn query_string(&self) -> String {
        [
            ("prefix", &self.prefix),
            ("state", &self.state),
            ("customer", &self.customer),
            ("tag", &self.tag),
            ("region", &self.region),
            ("e911", &self.e911),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", encode_component(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A number as a table row shows it.
pub struct NumberRow {
    pub id: NumberId,
    pub e164: String,
    pub state: NumberState,
    pub customer: Option<(CustomerId, String)>,
    pub tags: String,
    pub region: String,
    pub updated: String,
    /// Active without the emergency address the carrier requires (inventory search only).
    pub e911_missing: bool,
}

impl NumberRow {
    pub fn new(n: &Number, names: &HashMap<CustomerId, String>) -> Self {
        Self {
            id: n.id,
            e164: n.e164.to_string(),
            state: n.state,
            customer: n
                .customer_id
                .map(|c| (c, names.get(&c).cloned().unwrap_or_else(|| c.to_string()))),
            tags: n.tags.join(", "),
            region: n.region.clone().unwrap_or_default(),
            updated: when(n.updated_at),
            e911_missing: false,
        }
    }
}

pub fn customer_names(customers: &[Customer]) -> HashMap<CustomerId, String> {
    customers.iter().map(|c| (c.id, c.name.clone())).collect()
}

#[derive(Template)]
#[template(path = "operator/numbers.html")]
struct SearchPage {
    chrome: Chrome,
    carrier: String,
    f: Filters,
    states: [NumberState; 9],
    customers: Vec<Customer>,
    rows: Vec<NumberRow>,
    /// The `after=` of the next page (URL-encoded), when there is one.
    next: Option<String>,
    filters: String,
    first_page: bool,
    error: Option<FormError>,
    /// The carrier requires emergency addresses for some numbers: offer the flag filter.
    e911_required: bool,
}

impl SearchPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

async fn search(
    State(state): State<WebState>,
    op: Operator,
    Query(f): Query<Filters>,
) -> Result<Response, PageError> {
    let customers = state.app.customers().await?;
    let names = customer_names(&customers);
    let (rows, next, error) = match f.query_on(&state.app, PAGE_SIZE + 1) {
        Ok(Some(q)) => {
            let mut found = state.app.search_numbers(&q).await?;
            // One more than a page tells whether a next page exists without counting.
            let next = (found.len() > PAGE_SIZE as usize).then(|| {
                found.truncate(PAGE_SIZE as usize);
                found.last().map(|n| encode_component(n.e164.as_str()))
            });
            let facts = state.app.number_facts(&found).await?;
            let rows = found
                .iter()
                .map(|n| NumberRow {
                    e911_missing: state.app.e911_flagged(n, facts.get(&n.id)),
                    ..NumberRow::new(n, &names)
                })
                .collect();
            (rows, next.flatten(), None)
        }
        Ok(None) => (Vec::new(), None, None),
        Err(e) => (Vec::new(), None, Some(e)),
    };
    let e911_required = state.app.missing_address_filter().is_some();
    let chrome = Chrome::new(&state, &op, "numbers");
    let page = SearchPage {
        carrier: chrome.carrier.clone(),
        chrome,
        filters: f.query_string(),
        first_page: f.after.trim().is_empty(),
        f,
        states: NumberState::ALL,
        customers,
        rows,
        next,
        error,
        e911_required,
    };
    Ok(render_with(&page, page.error.as_ref()))
}

/// Streams every number the filters match as CSV, page by page, so the export of a million numbers
/// holds one page in memory, and stops reading the database when the client goes away.
async fn export(
    State(state): State<WebState>,
    _op: Operator,
    Query(f): Query<Filters>,
) -> Response {
    let query = match f.query_on(&state.app, EXPORT_PAGE_SIZE) {
        Ok(q) => q,
        Err(e) => return error_page(e.status, &e.message),
    };
    let header = csv_chunk(|w| w.write_record(EXPORT_COLUMNS));
    // A flag filter nothing can match exports the header alone.
    let pages = stream::unfold(query.map(|q| (state.app, q)), |cursor| async move {
        let (app, query) = cursor?;
        Some(match next_page(&app, &query).await {
            Ok((chunk, after)) => {
                (Ok(chunk), after.map(|after| (app, NumberQuery { after: Some(after), ..query })))
            }
            // The status line is long gone: all a client can be told is that the body broke off.
            Err(e) => (Err(e), None),
        })
    });
    let body = Body::from_stream(stream::once(async { header }).chain(pages));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"numbers.csv\""),
        ],
        body,
    )
        .into_response()
}

/// One page of the export as CSV, and the cursor of the page after it (`None` on the last).
async fn next_page(app: &App, query: &NumberQuery) -> std::io::Result<(Bytes, Option<String>)> {
    let page = app.search_numbers(query).await.map_err(|e| {
        tracing::error!(error = ?e, "number export failed part way");
        std::io::Error::other("export failed")
    })?;
    let after = (page.len() >= query.page_size() as usize)
        .then(|| page.last().map(|n| n.e164.to_string()))
        .flatten();
    let chunk = csv_chunk(|w| {
        page.iter().try_for_each(|n| {
            // Free text is written so a spreadsheet cannot run it as a formula; the import reads it
            // back as it was. Numbers, states and ids cannot start a formula and stay as they are.
            w.write_record([
                n.e164.as_str(),
                n.state.as_str(),
                &n.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                // `;` as the import reads tags, so an export can be imported elsewhere as it is.
                &spreadsheet_cell(&n.tags.join(";")),
                &text_cell(&n.billing_ref),
                &text_cell(&n.region),
                &text_cell(&n.note),
            ])
        })
    })?;
    Ok((chunk, after))
}

fn text_cell(v: &Option<String>) -> std::borrow::Cow<'_, str> {
    spreadsheet_cell(v.as_deref().unwrap_or_default())
}

fn csv_chunk(
    write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> std::io::Result<Bytes> {
    let mut w = csv::Writer::from_writer(Vec::new());
    write(&mut w).map_err(std::io::Error::other)?;
    w.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

#[derive(Template)]
#[template(path = "operator/number.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    n: Number,
    customer: Option<Customer>,
    updated: String,
    aging_until: Option<String>,
    events: Vec<EventRow>,
    zoom: ZoomView,
}

/// What the customer's Zoom account says of the number.
struct ZoomView {
    address: Option<String>,
    address_changed: String,
    /// Active without the emergency address the carrier requires.
    missing: bool,
    cnam: Option<String>,
    cnam_changed: String,
    /// Zoom's capability fields (label, value), from its last listing.
    capabilities: Vec<(&'static str, String)>,
    listed: Option<String>,
    history: Vec<ZoomEventRow>,
}

struct ZoomEventRow {
    changed: String,
    received: String,
    what: &'static str,
    value: String,
    account: String,
}

impl ZoomView {
    fn new(
        app: &App,
        n: &Number,
        facts: Option<&NumberFacts>,
        history: Vec<domain::zoom_facts::FactRecord>,
    ) -> Self {
        let f = facts.cloned().unwrap_or_default();
        let at = |t: Option<time::OffsetDateTime>| t.map(when).unwrap_or_default();
        let capabilities = f
            .listing
            .as_ref()
            .map(|l| {
                let restrictions = l.outbound_restrictions();
                [
                    ("Number type", l.number_type.clone()),
                    ("Voice direction", l.voice_direction.clone()),
                    ("Voice capacity", l.voice_msg_capacity.clone()),
                    ("Messaging", l.message_capability.clone()),
                    (
                        "Outbound restrictions",
                        Some(if restrictions.is_empty() {
                            "none".to_owned()
                        } else {
                            restrictions.join(", ")
                        }),
                    ),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
            })
            .unwrap_or_default();
        ZoomView {
            missing: app.e911_flagged(n, facts),
            address: f.emergency_address.as_ref().map(|a| a.one_line()),
            address_changed: at(f.emergency_address_changed_at),
            cnam: f.cnam.as_ref().map(|c| c.as_str().to_owned()),
            cnam_changed: at(f.cnam_changed_at),
            capabilities,
            listed: f.listed_at.map(when),
            history: history
                .into_iter()
                .map(|r| {
                    let (what, value) = match &r.change {
                        FactChange::EmergencyAddress { address } => {
                            ("Emergency address", address.one_line())
                        }
                        FactChange::Cnam { cnam } => ("Caller ID name", cnam.as_str().to_owned()),
                    };
                    ZoomEventRow {
                        changed: when(r.changed_at),
                        received: when(r.received_at),
                        what,
                        value,
                        account: r.zoom_account,
                    }
                })
                .collect(),
        }
    }
}

struct EventRow {
    at: String,
    actor: String,
    from: String,
    to: NumberState,
    reason: String,
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: NumberId = id.parse().map_err(|_| AppError::NotFound)?;
    let (n, events) = state.app.number_detail(id).await?;
    let facts = state.app.number_facts(std::slice::from_ref(&n)).await?;
    let history = state.app.number_fact_history(id).await?;
    let zoom = ZoomView::new(&state.app, &n, facts.get(&n.id), history);
    let customer = match n.customer_id {
        Some(c) => Some(state.app.customer(c).await?),
        None => None,
    };
    let events = events
        .into_iter()
        .map(|e| EventRow {
            at: when(e.at),
            actor: e.actor,
            from: e.from.map_or_else(|| "—".to_owned(), |s| s.to_string()),
            to: e.to,
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    let chrome = Chrome::new(&state, &op, "numbers");
    Ok(render(&DetailPage {
        carrier: chrome.carrier.clone(),
        chrome,
        updated: when(n.updated_at),
        aging_until: n.aging_until.map(when),
        n,
        customer,
        events,
        zoom,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_round_trip_into_links() {
        let f = Filters {
            prefix: " 1555 ".into(),
            state: "available".into(),
            tag: "NYC".into(),
            ..Filters::default()
        };
        let q = f.query(10).ok().unwrap();
        assert_eq!(
            (q.prefix.as_deref(), q.state, q.tag.as_deref()),
            (Some("+1555"), Some(NumberState::Available), Some("nyc"))
        );
        assert_eq!(f.query_string(), "prefix=1555&state=available&tag=NYC");
    }

    #[test]
    fn bad_filters_name_their_field() {
        for (f, field) in [
            (Filters { prefix: "abc".into(), ..Filters::default() }, "prefix"),
            (Filters { state: "gone".into(), ..Filters::default() }, "state"),
            (Filters { customer: "x".into(), ..Filters::default() }, "customer"),
            (Filters { tag: "a b".into(), ..Filters::default() }, "tag"),
            (Filters { after: "1".into(), ..Filters::default() }, "after"),
        ] {
            assert_eq!(f.query(10).err().and_then(|e| e.field), Some(field));
        }
    }
}
