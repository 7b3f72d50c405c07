//! Adding numbers to the inventory from a CSV file or a range, with a dry run (Preview) first.
//!
//! The upload is read into memory whole, which is why its size is capped: [`MAX_UPLOAD_BYTES`] on
//! this route only (axum's default of 2 MiB elsewhere). The parsing runs on a blocking thread so a
//! large file does not stall the other requests this worker serves.

use super::{render_with, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::inventory::ImportOutcome;
use askama::Template;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use domain::import::{parse_csv, RowError};
use domain::number::NumberAttrs;

/// Largest request the import form accepts: a file of about a million numbers with a few columns.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
/// Row errors shown on the page; past this the page would be too large to read or render.
const MAX_ERRORS_SHOWN: usize = 10_000;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/import", get(form).post(submit).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
}

/// The form's fields as submitted.
#[derive(Default)]
struct Upload {
    csrf: String,
    action: String,
    file_name: String,
    file: Bytes,
    range: String,
    tags: String,
    region: String,
}

impl Upload {
    async fn read(mut form: Multipart) -> Result<Self, MultipartError> {
        let mut u = Upload::default();
        while let Some(field) = form.next_field().await? {
            match field.name().unwrap_or_default() {
                "file" => {
                    u.file_name = field.file_name().unwrap_or_default().to_owned();
                    u.file = field.bytes().await?;
                }
                "csrf" => u.csrf = field.text().await?,
                "action" => u.action = field.text().await?,
                "range" => u.range = field.text().await?,
                "tags" => u.tags = field.text().await?,
                "region" => u.region = field.text().await?,
                _ => {}
            }
        }
        Ok(u)
    }

    /// Attributes for every number of a range.
    fn range_attrs(&self) -> Result<NumberAttrs, FormError> {
        let tags = domain::import::parse_tags(&self.tags).map_err(|m| FormError::new("tags", m))?;
        let region = self.region.trim();
        if region.chars().count() > domain::import::MAX_FIELD_LEN
            || region.chars().any(char::is_control)
        {
            return Err(FormError::new(
                "region",
                format!(
                    "must be at most {} characters, without control characters",
                    domain::import::MAX_FIELD_LEN
                ),
            ));
        }
        Ok(NumberAttrs {
            tags,
            region: Some(region.to_owned()).filter(|r| !r.is_empty()),
            ..NumberAttrs::default()
        })
    }
}

/// What the last submission did.
struct Outcome {
    dry_run: bool,
    added: usize,
    valid: usize,
    /// The problems shown; `error_count` says how many there were in all.
    errors: Vec<RowError>,
    error_count: usize,
    source: String,
}

#[derive(Template)]
#[template(path = "operator/import.html")]
struct ImportPage {
    chrome: Chrome,
    carrier: String,
    range: String,
    tags: String,
    region: String,
    outcome: Option<Outcome>,
    error: Option<FormError>,
    max_upload_mib: usize,
}

impl ImportPage {
    fn new(state: &WebState, op: &Operator) -> Self {
        let chrome = Chrome::new(state, op, "import");
        Self {
            carrier: chrome.carrier.clone(),
            chrome,
            range: String::new(),
            tags: String::new(),
            region: String::new(),
            outcome: None,
            error: None,
            max_upload_mib: MAX_UPLOAD_BYTES >> 20,
        }
    }

    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

async fn form(State(state): State<WebState>, op: Operator) -> Response {
    render_with(&ImportPage::new(&state, &op), None)
}

async fn submit(
    State(state): State<WebState>,
    op: Operator,
    form: Multipart,
) -> Result<Response, PageError> {
    let mut page = ImportPage::new(&state, &op);
    let upload = match Upload::read(form).await {
        Ok(u) => u,
        Err(e) => {
            let message = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the upload is larger than {} MiB; split the file", page.max_upload_mib)
            } else {
                format!("the upload could not be read ({}); try again", e.body_text())
            };
            page.error = Some(FormError { status: e.status(), ..FormError::new("file", message) });
            return Ok(render_with(&page, page.error.as_ref()));
        }
    };
    // A preview writes nothing, so read-only operators may check a file too.
    let dry_run = upload.action != "import";
    let allowed =
        if dry_run { op.check_csrf(&upload.csrf) } else { super::may_change(&op, &upload.csrf) };
    if let Err(refused) = allowed {
        return Ok(refused);
    }
    (page.range, page.tags, page.region) =
        (upload.range.clone(), upload.tags.clone(), upload.region.clone());
    match import(&state, &op, upload, dry_run).await {
        Ok(outcome) => {
            let failed = !dry_run && outcome.error_count > 0;
            page.outcome = Some(outcome);
            let mut response = render_with(&page, None);
            if failed {
                *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            Ok(response)
        }
        Err(e) => {
            page.error = Some(e.try_into()?);
            Ok(render_with(&page, page.error.as_ref()))
        }
    }
}

/// Error from the page's own checks, or from the use-case.
enum Refused {
    Form(FormError),
    App(app::AppError),
}

impl TryFrom<Refused> for FormError {
    type Error = PageError;
    fn try_from(r: Refused) -> Result<Self, PageError> {
        match r {
            Refused::Form(f) => Ok(f),
            Refused::App(e) => e.try_into(),
        }
    }
}

async fn import(
    state: &WebState,
    op: &Operator,
    upload: Upload,
    dry_run: bool,
) -> Result<Outcome, Refused> {
    let has_file = !upload.file_name.is_empty() || !upload.file.is_empty();
    let has_range = !upload.range.trim().is_empty();
    let no_progress = |_: usize| {};
    let (source, outcome) = match (has_file, has_range) {
        (true, true) => {
            return Err(Refused::Form(FormError::new(
                "range",
                "give either a file or a range, not both",
            )))
        }
        (false, false) => {
            return Err(Refused::Form(FormError::new(
                "file",
                "choose a CSV file to upload, or enter a range",
            )))
        }
        (true, false) => {
            if !upload.tags.trim().is_empty() || !upload.region.trim().is_empty() {
                return Err(Refused::Form(FormError::new(
                    "tags",
                    "tags and region apply to a range; a file gives them per row in its columns",
                )));
            }
            let file = upload.file;
            let plan =
                tokio::task::spawn_blocking(move || parse_csv(&file[..])).await.map_err(|e| {
                    tracing::error!(error = %e, "CSV parser failed");
                    Refused::Form(FormError {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        ..FormError::new(
                            "file",
                            "could not be read because of a fault on our side; it has been logged",
                        )
                    })
                })?;
            let source =
                if upload.file_name.is_empty() { "the file".to_owned() } else { upload.file_name };
            (source, state.app.import_numbers(plan, &op.actor(), dry_run, &no_progress).await)
        }
        (false, true) => {
            let attrs = upload.range_attrs().map_err(Refused::Form)?;
            let range = upload.range.trim();
            (
                format!("the range {range}"),
                state.app.import_range(range, &attrs, &op.actor(), dry_run, &no_progress).await,
            )
        }
    };
    let ImportOutcome { added, valid, mut errors, dry_run } = outcome.map_err(Refused::App)?;
    let error_count = errors.len();
    errors.truncate(MAX_ERRORS_SHOWN);
    Ok(Outcome { dry_run, added, valid, errors, error_count, source })
}
