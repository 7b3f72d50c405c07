//! `/api/v1/numbers`: import into the inventory, search it, export it as CSV, and read a number with
//! its audit trail.

use super::extract::{body_rejection, media_type, JsonBody, Params};
use super::Caller;
use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::auth::Scope;
use domain::import::{ImportPlan, MAX_FIELD_LEN, MAX_NOTE_LEN};
use domain::number::NumberAttrs;
use domain::search::{NumberQuery, MAX_PAGE};
use domain::zoom_facts::{EmergencyAddress, FactChange, FactRecord, NumberFacts};
use domain::{Number, NumberEvent, NumberId};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Largest CSV body an import accepts: several million rows of bare numbers, more than one import
/// may add, so a bigger body is a mistake (or an attack) and is refused before it is read.
pub const MAX_IMPORT_BODY: usize = 64 * 1024 * 1024;

/// A refused import lists at most this many row problems (and says how many there are), so that a
/// file of millions of bad rows does not become a response of hundreds of megabytes.
const MAX_LISTED_ERRORS: usize = 10_000;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/numbers", get(search))
        .route("/numbers/import", post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BODY)))
        .route("/numbers/export.csv", get(export))
        .route("/numbers/{id}", get(detail))
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

/// A number with what the customer's Zoom account says of it.
#[derive(Serialize, ToSchema)]
pub struct ListedNumber {
    #[serde(flatten)]
    pub number: NumberOut,
    #[serde(flatten)]
    pub zoom: ZoomFactsOut,
}

/// The emergency address and caller ID name the customer set in Zoom, the number's capabilities as
/// Zoom lists them, and the carrier's flag for an active number without a required address.
#[derive(Serialize, ToSchema)]
pub struct ZoomFactsOut {
    pub emergency_address: Option<AddressOut>,
    /// When the customer set it in Zoom (Zoom's event time).
    pub emergency_address_changed_at: Option<String>,
    /// Active, the carrier requires an emergency address for it (`[numbers] e911_required`), and
    /// Zoom has sent none.
    pub emergency_address_missing: bool,
    /// The caller ID name (CNAM) set in Zoom.
    pub cnam: Option<String>,
    pub cnam_changed_at: Option<String>,
    /// From the last listing of the customer's Zoom account; absent until peerex has listed it.
    pub zoom_capabilities: Option<CapabilitiesOut>,
}

#[derive(Serialize, ToSchema)]
pub struct AddressOut {
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub state_code: Option<String>,
    pub country: Option<String>,
}

impl From<&EmergencyAddress> for AddressOut {
    fn from(a: &EmergencyAddress) -> Self {
        let own = |v: Option<&str>| v.map(str::to_owned);
        Self {
            address_line1: a.line1().to_owned(),
            address_line2: own(a.line2()),
            city: own(a.city()),
            zip: own(a.zip()),
            state_code: own(a.state_code()),
            country: own(a.country()),
        }
    }
}

/// In Zoom's spelling (`INBOUND_AND_OUTBOUND`, `NOT_APPLICABLE`...).
#[derive(Serialize, ToSchema)]
pub struct CapabilitiesOut {
    pub number_type: Option<String>,
    pub voice_direction: Option<String>,
    pub voice_msg_capacity: Option<String>,
    pub message_capability: Option<String>,
    pub outbound_dialer_not_supported: Option<bool>,
    pub outbound_cli_share_not_supported: Option<bool>,
    pub listed_at: String,
}

impl ZoomFactsOut {
    pub fn new(facts: Option<&NumberFacts>, missing: bool) -> Self {
        let f = facts.cloned().unwrap_or_default();
        Self {
            emergency_address: f.emergency_address.as_ref().map(AddressOut::from),
            emergency_address_changed_at: f.emergency_address_changed_at.map(rfc3339),
            emergency_address_missing: missing,
            cnam: f.cnam.map(|c| c.as_str().to_owned()),
            cnam_changed_at: f.cnam_changed_at.map(rfc3339),
            zoom_capabilities: f.listing.zip(f.listed_at).map(|(l, at)| CapabilitiesOut {
                number_type: l.number_type,
                voice_direction: l.voice_direction,
                voice_msg_capacity: l.voice_msg_capacity,
                message_capability: l.message_capability,
                outbound_dialer_not_supported: l.outbound_dialer_not_supported,
                outbound_cli_share_not_supported: l.outbound_cli_share_not_supported,
                listed_at: rfc3339(at),
            }),
        }
    }
}

/// The numbers with what Zoom says of each.
async fn with_facts(app: &app::App, numbers: Vec<Number>) -> Result<Vec<ListedNumber>, AppError> {
    let facts = app.number_facts(&numbers).await?;
    Ok(numbers
        .into_iter()
        .map(|n| {
            let f = facts.get(&n.id);
            let zoom = ZoomFactsOut::new(f, app.e911_flagged(&n, f));
            ListedNumber { number: NumberOut::from(n), zoom }
        })
        .collect())
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

/// In microseconds: what PostgreSQL keeps, so an object reads the same when created and read back.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct NumberPage {
    pub numbers: Vec<ListedNumber>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// E.164 prefix, like `+1555`.
    prefix: Option<String>,
    /// Only numbers in this state.
    #[param(inline, value_type = Option<StateName>)]
    state: Option<String>,
    customer_id: Option<String>,
    tag: Option<String>,
    region: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `true`: only the flagged numbers, active without the emergency address the carrier requires
    /// (none when `[numbers] e911_required` is off).
    emergency_address_missing: Option<bool>,
}

/// A number's state, as the filters take it (the names of `domain::NumberState`).
#[derive(ToSchema)]
#[schema(as = NumberStateName)]
#[allow(dead_code)] // describes the accepted strings; filters are parsed by `domain::search`
#[serde(rename_all = "snake_case")]
pub enum StateName {
    Available,
    Reserved,
    Provisioning,
    Active,
    ReleasePending,
    Releasing,
    Aging,
    Suspended,
    Porting,
}

impl SearchParams {
    pub fn into_query(self) -> Result<NumberQuery, AppError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=domain::search::MAX_PAGE).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("must be 1 to {}", domain::search::MAX_PAGE),
            ));
        }
        let raw = domain::search::RawFilters {
            prefix: self.prefix.as_deref(),
            state: self.state.as_deref(),
            customer: self.customer_id.as_deref(),
            tag: self.tag.as_deref(),
            region: self.region.as_deref(),
            after: self.after.as_deref(),
        };
        // The API calls the customer filter `customer_id`, like the field it returns.
        raw.parse(limit).map_err(|e| {
            AppError::invalid(
                if e.field == "customer" { "customer_id" } else { e.field },
                e.message,
            )
        })
    }
}

/// The search `params` ask for, with the flag filter as the carrier's rule makes it; `None` when
/// nothing can match (the flag asked for while no address is required).
fn query_of(app: &app::App, params: SearchParams) -> Result<Option<NumberQuery>, AppError> {
    let flagged = params.emergency_address_missing == Some(true);
    let mut query = params.into_query()?;
    if flagged {
        match app.missing_address_filter() {
            Some(prefixes) => query.emergency_address_missing = Some(prefixes),
            None => return Ok(None),
        }
    }
    Ok(Some(query))
}

/// Search the inventory, one page at a time.
#[utoipa::path(get, path = "/api/v1/numbers", params(SearchParams), tag = "numbers", operation_id = "search_numbers",
    responses(
        (status = 200, description = "a page of numbers in E.164 order", body = NumberPage),
        (status = 422, description = "a filter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<SearchParams>,
) -> Result<Json<NumberPage>, ApiError> {
    caller.require(Scope::Read)?;
    let Some(query) = query_of(&state.app, params)? else {
        return Ok(Json(NumberPage { numbers: Vec::new(), next_after: None }));
    };
    let numbers = state.app.search_numbers(&query).await?;
    let next_after = (numbers.len() == query.page_size() as usize)
        .then(|| numbers.last().map(|n| n.e164.to_string()))
        .flatten();
    Ok(Json(NumberPage { numbers: with_facts(&state.app, numbers).await?, next_after }))
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
        Self {
            at: rfc3339(e.at),
            actor: e.actor,
            from: e.from.map(|s| s.as_str().to_owned()),
            to: e.to.as_str().to_owned(),
            reason: e.reason,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NumberDetail {
    #[serde(flatten)]
    pub number: ListedNumber,
    pub events: Vec<EventOut>,
    /// Every emergency-address and CNAM change Zoom sent for the number, newest first.
    pub zoom_events: Vec<ZoomEventOut>,
}

#[derive(Serialize, ToSchema)]
pub struct ZoomEventOut {
    /// `emergency_address` or `cnam`.
    pub kind: String,
    pub emergency_address: Option<AddressOut>,
    pub cnam: Option<String>,
    /// When the customer made the change in Zoom (Zoom's event time).
    pub changed_at: String,
    /// When peerex received it.
    pub received_at: String,
    pub zoom_account_id: String,
    pub customer_id: String,
    /// Names Zoom's event (the same for every delivery of it).
    pub event_id: String,
}

impl From<FactRecord> for ZoomEventOut {
    fn from(r: FactRecord) -> Self {
        let (emergency_address, cnam) = match &r.change {
            FactChange::EmergencyAddress { address } => (Some(AddressOut::from(address)), None),
            FactChange::Cnam { cnam } => (None, Some(cnam.as_str().to_owned())),
        };
        Self {
            kind: r.change.kind().to_owned(),
            emergency_address,
            cnam,
            changed_at: rfc3339(r.changed_at),
            received_at: rfc3339(r.received_at),
            zoom_account_id: r.zoom_account,
            customer_id: r.customer_id.to_string(),
            event_id: r.event_id,
        }
    }
}

/// One number and its audit trail, oldest event first.
#[utoipa::path(get, path = "/api/v1/numbers/{id}", tag = "numbers", operation_id = "get_number", params(("id" = String, Path, description = "number id")),
    responses(
        (status = 200, description = "the number and its events", body = NumberDetail),
        (status = 404, description = "no number has this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn detail(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NumberDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let id: NumberId = id.parse().map_err(|_| AppError::NotFound)?;
    let (number, events) = state.app.number_detail(id).await?;
    let history = state.app.number_fact_history(id).await?;
    let number = with_facts(&state.app, vec![number]).await?.pop().ok_or(AppError::NotFound)?;
    Ok(Json(NumberDetail {
        number,
        events: events.into_iter().map(EventOut::from).collect(),
        zoom_events: history.into_iter().map(ZoomEventOut::from).collect(),
    }))
}

/// A range of numbers to add to the inventory, all with the same attributes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeImport {
    /// `FIRST-LAST`, both ends included.
    #[schema(example = "+15550100000-+15550109999")]
    range: String,
    /// Letters, digits, `-`, `_`, `.` and `:`, at most 32 characters each; one tag per string.
    #[serde(default)]
    #[schema(max_items = 16)]
    tags: Vec<String>,
    #[schema(max_length = 128)]
    billing_ref: Option<String>,
    #[schema(max_length = 128)]
    region: Option<String>,
    #[schema(max_length = 500)]
    note: Option<String>,
    /// Check the range and report what it would add, writing nothing.
    #[serde(default)]
    dry_run: bool,
}

impl RangeImport {
    fn attrs(&self) -> Result<NumberAttrs, AppError> {
        // A separator inside one string would silently make two tags.
        if let Some(t) = self.tags.iter().find(|t| t.contains([';', ',', ' '])) {
            return Err(AppError::invalid(
                "tags",
                format!("{t:?} is more than one tag; give each tag as its own string"),
            ));
        }
        Ok(NumberAttrs {
            tags: domain::import::parse_tags(&self.tags.join(","))
                .map_err(|m| AppError::invalid("tags", m))?,
            billing_ref: text("billing_ref", self.billing_ref.as_deref(), MAX_FIELD_LEN)?,
            region: text("region", self.region.as_deref(), MAX_FIELD_LEN)?,
            note: text("note", self.note.as_deref(), MAX_NOTE_LEN)?,
        })
    }
}

/// The rules of a CSV cell: trimmed, empty means absent, bounded, no control characters.
pub fn text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, AppError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        Err(AppError::invalid(field, format!("is longer than {max} characters")))
    } else if v.chars().any(char::is_control) {
        Err(AppError::invalid(field, "contains control characters"))
    } else {
        Ok(Some(v.to_owned()))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Check the import and report what it would add, writing nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    /// Numbers added to the inventory; 0 on a dry run.
    added: usize,
    /// Numbers that are valid and not yet in the inventory.
    valid: usize,
    dry_run: bool,
}

/// Add numbers to the inventory, all or nothing.
///
/// Send a range as JSON, or a file as CSV whose header names the columns: `number` (required),
/// `tags` (separated by `;`), `billing_ref`, `region`, `note`. If any row is bad (not E.164, a
/// duplicate, already in the inventory...) every bad row is listed in the problem's `errors` and
/// nothing is written.
#[utoipa::path(post, path = "/api/v1/numbers/import", tag = "numbers", operation_id = "import_numbers", params(ImportParams),
    request_body(description = "a range (JSON) or a file (CSV, at most 64 MiB)", content(
        (RangeImport = "application/json"),
        (String = "text/csv", example = "number,tags,region\n+15550100000,nyc;premium,US-NY\n"),
    )),
    responses(
        (status = 200, description = "imported, or checked on a dry run", body = ImportResult),
        (status = 409, description = "another import added some of these numbers meanwhile; nothing was imported", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "the file is larger than 64 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "the body is neither application/json nor text/csv", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad rows, each listed in `errors` with its row, column, value and reason, or a bad range named in `field`; nothing was imported", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<ImportParams>,
    request: Request,
) -> axum::response::Result<Json<ImportResult>> {
    caller.require(Scope::Write)?;
    let actor = caller.actor();
    let outcome = match media_type(request.headers()).as_deref() {
        Some("application/json") => {
            let JsonBody(body) = JsonBody::<RangeImport>::from_request(request, &state).await?;
            let attrs = body.attrs().map_err(ApiError)?;
            state
                .app
                .import_range(&body.range, &attrs, &actor, params.dry_run || body.dry_run, &|_| {})
                .await
                .map_err(ApiError)?
        }
        Some("text/csv") => {
            // Refuse a declared oversize body before reading it; the limit layer catches the rest.
            let declared = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_IMPORT_BODY as u64) {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "an import file may have at most 64 MiB; split it",
                )
                .into());
            }
            let bytes = Bytes::from_request(request, &state).await.map_err(body_rejection)?;
            // Parsing millions of rows is CPU work: keep it off the threads that serve requests.
            let plan: ImportPlan =
                tokio::task::spawn_blocking(move || domain::import::parse_csv(&bytes[..]))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "CSV import parser failed");
                        Problem::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "something went wrong on our side; it has been logged",
                        )
                    })?;
            state
                .app
                .import_numbers(plan, &actor, params.dry_run, &|_| {})
                .await
                .map_err(ApiError)?
        }
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send a range as application/json or a file as text/csv",
            )
            .into())
        }
    };
    if !outcome.errors.is_empty() {
        let total = outcome.errors.len();
        let listed = if total > MAX_LISTED_ERRORS {
            format!("; the first {MAX_LISTED_ERRORS} are listed")
        } else {
            String::new()
        };
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-rows",
            format!("{total} rows have problems{listed}; nothing was imported"),
        );
        problem.errors = outcome.errors;
        problem.errors.truncate(MAX_LISTED_ERRORS);
        return Err(problem.into());
    }
    Ok(Json(ImportResult { added: outcome.added, valid: outcome.valid, dry_run: outcome.dry_run }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// E.164 prefix, like `+1555`.
    prefix: Option<String>,
    /// Only numbers in this state.
    #[param(inline, value_type = Option<StateName>)]
    state: Option<String>,
    customer_id: Option<String>,
    tag: Option<String>,
    region: Option<String>,
    /// `true`: only the numbers flagged for a missing emergency address.
    emergency_address_missing: Option<bool>,
}

impl From<ExportParams> for SearchParams {
    fn from(p: ExportParams) -> Self {
        Self {
            prefix: p.prefix,
            state: p.state,
            customer_id: p.customer_id,
            tag: p.tag,
            region: p.region,
            after: None,
            limit: Some(MAX_PAGE),
            emergency_address_missing: p.emergency_address_missing,
        }
    }
}

/// The import's columns first, then where the number stands, then what the customer's Zoom account
/// says of it (the address on one line; `emergency_address_missing` is `true` for a flagged number;
/// the outbound restrictions separated by `;`). Values are written as stored, without spreadsheet
/// formula escaping, so that what a program reads back is what peerex holds.
const EXPORT_COLUMNS: [&str; 19] = [
    "number",
    "tags",
    "billing_ref",
    "region",
    "note",
    "id",
    "state",
    "customer_id",
    "order_id",
    "reason",
    "updated_at",
    "emergency_address",
    "emergency_address_missing",
    "cnam",
    "number_type",
    "voice_direction",
    "voice_msg_capacity",
    "message_capability",
    "outbound_restrictions",
];

/// Export numbers as CSV.
///
/// Every number matching the search's filters, in E.164 order, streamed. Values are written as
/// stored, for programs: a cell may start with `=`, `+`, `-` or `@`. To open an export in a
/// spreadsheet, take the operator portal's, whose free-text cells are neutralised.
#[utoipa::path(get, path = "/api/v1/numbers/export.csv", tag = "numbers", operation_id = "export_numbers", params(ExportParams),
    responses(
        (status = 200, description = "a CSV file with a header row; tags are separated by `;`", body = String, content_type = "text/csv"),
        (status = 422, description = "a filter is malformed; `field` names it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    State(state): State<WebState>,
    caller: Caller,
    Params(params): Params<ExportParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    // A flag filter nothing can match (no address required) exports the header alone.
    let first = query_of(&state.app, SearchParams::from(params))?;
    let app = state.app.clone();
    // One search page at a time along the keyset cursor: an export of millions of numbers holds one
    // page in memory and no transaction open while the client reads.
    let pages = stream::try_unfold(first, move |query| {
        let app = app.clone();
        async move {
            let Some(mut query) = query else {
                return Ok(None);
            };
            let numbers = app.search_numbers(&query).await?;
            let full = numbers.len() == query.page_size() as usize;
            let facts = app.number_facts(&numbers).await?;
            let chunk = csv_rows(&app, &numbers, &facts)?;
            query.after = numbers.last().map(|n| n.e164.to_string());
            Ok::<_, axum::BoxError>(Some((chunk, full.then_some(query))))
        }
    });
    let header = Bytes::from(format!("{}\n", EXPORT_COLUMNS.join(",")));
    // Once the 200 is sent, a failure can only cut the body short; the log says why.
    let body = stream::iter([Ok(header)])
        .chain(pages)
        .inspect_err(|e| tracing::error!(error = %e, "number export failed part way"));
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"numbers.csv\""),
    ];
    Ok((headers, Body::from_stream(body)).into_response())
}

fn csv_rows(
    app: &app::App,
    numbers: &[Number],
    facts: &HashMap<NumberId, NumberFacts>,
) -> Result<Bytes, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(numbers.len() * 128));
    for n in numbers {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let f = facts.get(&n.id);
        let listing = f.and_then(|f| f.listing.clone()).unwrap_or_default();
        w.write_record([
            n.e164.to_string(),
            n.tags.join(";"),
            text(&n.billing_ref),
            text(&n.region),
            text(&n.note),
            n.id.to_string(),
            n.state.as_str().to_owned(),
            n.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            n.order_id.map(|o| o.to_string()).unwrap_or_default(),
            text(&n.reason),
            rfc3339(n.updated_at),
            // Written by the customer in Zoom, not by the carrier: neutralised for spreadsheets.
            f.and_then(|f| f.emergency_address.as_ref())
                .map(|a| domain::import::spreadsheet_cell(&a.one_line()).into_owned())
                .unwrap_or_default(),
            app.e911_flagged(n, f).to_string(),
            f.and_then(|f| f.cnam.as_ref())
                .map(|c| domain::import::spreadsheet_cell(c.as_str()).into_owned())
                .unwrap_or_default(),
            text(&listing.number_type),
            text(&listing.voice_direction),
            text(&listing.voice_msg_capacity),
            text(&listing.message_capability),
            listing.outbound_restrictions().join(";"),
        ])?;
    }
    Ok(w.into_inner().map_err(|e| e.into_error())?.into())
}
