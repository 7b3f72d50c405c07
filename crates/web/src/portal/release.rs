//! The customer portal's **Wait for Release** tab (issue 6): the numbers the carrier wants to release,
//! each with whether Zoom shows it assigned to a user (asked when the page loads), ticked and
//! approved with **Release numbers**; then each number's result, refreshed while Zoom is at work.
//!
//! Only the signed-in admin of the numbers' customer can approve; another customer's number id in the
//! form is a 404 and changes nothing. The form carries the session's CSRF token.

use super::{CustomerAdmin, LinkView};
use crate::error::{render, PageError};
use crate::WebState;
use app::release::ZoomLook;
use app::AppError;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use domain::release::{LineState, ReleaseLine};
use domain::NumberId;
use time::OffsetDateTime;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/releases", get(page).post(approve))
        .route("/releases/results", get(results))
        .route("/releases/waiting", get(waiting_banner))
}

/// One number on the tab.
pub struct Row {
    pub id: String,
    pub e164: String,
    /// Can be ticked: waiting for approval, or refused and waiting again.
    pub tick: bool,
    /// waiting, releasing, released, refused
    pub kind: &'static str,
    pub why: String,
    /// What Zoom says of it: "Assigned to a user", "Unassigned", "Not in your Zoom account", ...
    pub zoom: String,
    pub result: String,
}

#[derive(Template)]
#[template(path = "portal/release_results.html")]
struct Results {
    rows: Vec<Row>,
    running: bool,
    /// Some number can be ticked: the Release numbers button shows (also after a refresh).
    any_tick: bool,
    released: usize,
    refused: usize,
    waiting: usize,
}

#[derive(Template)]
#[template(path = "portal/releases.html")]
struct Page {
    carrier: String,
    customer: String,
    email: String,
    csrf: String,
    link: LinkView,
    /// "Checked with Zoom at ..." or why Zoom could not be asked.
    zoom_note: String,
    zoom_ok: bool,
    error: Option<String>,
    results_html: String,
}

fn hms(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

fn zoom_text(line: &ReleaseLine, zoom: &ZoomLook) -> String {
    if !line.state.approvable() {
        return String::new();
    }
    let label = |assigned: bool| if assigned { "Assigned to a user" } else { "Unassigned" };
    match zoom {
        ZoomLook::Fresh { at, listed } => match listed.get(&line.e164) {
            Some(a) => format!("{} (seen {})", label(*a), hms(*at)),
            None => format!("Not in your Zoom account (seen {})", hms(*at)),
        },
        _ => match (line.zoom_assigned, line.zoom_seen_at) {
            (Some(a), Some(at)) => format!("{} (last seen {})", label(a), hms(at)),
            _ => "Not known yet".to_owned(),
        },
    }
}

fn results_of(lines: &[ReleaseLine], zoom: &ZoomLook) -> Results {
    let rows: Vec<Row> = lines
        .iter()
        .map(|l| {
            let asked = l.kind.needs_approval();
            let (kind, result) = match l.state {
                LineState::Waiting if !asked => (
                    "waiting",
                    "No approval needed: from that date it no longer routes and leaves Zoom"
                        .to_owned(),
                ),
                LineState::Refused if !asked => (
                    "refused",
                    format!(
                        "No longer routes; not removed from Zoom yet: {}",
                        l.message.clone().unwrap_or_default()
                    ),
                ),
                LineState::Waiting => ("waiting", "Waiting for your approval".to_owned()),
                LineState::Releasing => ("releasing", "Being removed from Zoom…".to_owned()),
                LineState::Released => {
                    ("released", "Released: removed from Zoom and from your numbers".to_owned())
                }
                LineState::Refused => {
                    ("refused", format!("Not released: {}", l.message.clone().unwrap_or_default()))
                }
                LineState::Withdrawn => ("withdrawn", "Withdrawn by the carrier".to_owned()),
            };
            Row {
                id: l.number_id.to_string(),
                e164: l.e164.to_string(),
                tick: asked && l.state.approvable(),
                kind,
                why: l.release_reason.clone(),
                zoom: zoom_text(l, zoom),
                result,
            }
        })
        .collect();
    let count = |k: &str| rows.iter().filter(|r| r.kind == k).count();
    Results {
        running: count("releasing") > 0,
        any_tick: rows.iter().any(|r| r.tick),
        released: count("released"),
        refused: count("refused"),
        waiting: rows.iter().filter(|r| r.tick && r.kind == "waiting").count(),
        rows,
    }
}

async fn page_with(
    state: &WebState,
    admin: &CustomerAdmin,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let c = admin.customer.id;
    let wait = state.app.wait_for_release(c).await?;
    let (zoom_note, zoom_ok) = match &wait.zoom {
        ZoomLook::Fresh { at, .. } => (format!("Checked with Zoom at {}.", hms(*at)), true),
        ZoomLook::Unreachable { error } => (format!("Zoom could not be reached just now ({error}); showing what Zoom said when last asked."), false),
        ZoomLook::NotAsked => (String::new(), true),
    };
    let results = results_of(&wait.lines, &wait.zoom);
    let link = state.app.zoom_link(c).await?;
    let page = Page {
        carrier: state.ui.carrier_name.clone(),
        customer: admin.customer.name.clone(),
        email: admin.user.email.clone(),
        csrf: admin.session.csrf_token.clone(),
        link: LinkView::new(link.as_ref()),
        zoom_note,
        zoom_ok,
        error,
        results_html: results
            .render()
            .map_err(|e| PageError(AppError::Refused(format!("cannot render: {e}"))))?,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(response)
}

async fn page(State(state): State<WebState>, admin: CustomerAdmin) -> Result<Response, PageError> {
    page_with(&state, &admin, None, StatusCode::OK).await
}

/// The results table alone, which the page's htmx swaps in every few seconds while Zoom is at work.
/// It does not ask Zoom again.
async fn results(
    State(state): State<WebState>,
    admin: CustomerAdmin,
) -> Result<Response, PageError> {
    let lines = state.app.release_lines_shown(admin.customer.id).await?;
    Ok(render(&results_of(&lines, &ZoomLook::NotAsked)))
}

/// **Release numbers**: the ticked numbers (`number`, repeated) are approved for release.
async fn approve(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut csrf = String::new();
    let mut ids = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            // Not a number id at all: as unknown as another customer's.
            "number" => ids.push(v.parse::<NumberId>().map_err(|_| PageError(AppError::NotFound))?),
            _ => {}
        }
    }
    if let Err(refused) = admin.check_csrf(&csrf) {
        return Ok(refused);
    }
    match state.app.approve_release(admin.customer.id, &ids, &admin.actor()).await {
        Ok(_) => Ok(Redirect::to("/portal/releases").into_response()),
        Err(AppError::Refused(message)) => {
            page_with(&state, &admin, Some(message), StatusCode::CONFLICT).await
        }
        Err(e) => Err(PageError(e)),
    }
}

#[derive(Template)]
#[template(path = "portal/release_banner.html")]
struct Banner {
    waiting: usize,
}

/// The banner every portal page loads (htmx) to tell the admin that numbers wait for approval.
async fn waiting_banner(
    State(state): State<WebState>,
    admin: CustomerAdmin,
) -> Result<Response, PageError> {
    let lines = state.app.release_lines_shown(admin.customer.id).await?;
    Ok(render(&Banner {
        waiting: lines.iter().filter(|l| l.kind.needs_approval() && l.state.approvable()).count(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn line(e164: &str, state: LineState, assigned: Option<bool>) -> ReleaseLine {
        let at = time::macros::datetime!(2026-11-23 10:00 UTC);
        ReleaseLine {
            release_id: uuid::Uuid::now_v7(),
            number_id: NumberId::new(),
            e164: domain::PhoneNumber::parse(e164).unwrap(),
            state,
            kind: domain::release::ReleaseKind::Approval,
            release_reason: "contract ends".into(),
            message: None,
            updated_at: at,
            zoom_assigned: assigned,
            zoom_seen_at: assigned.map(|_| at),
        }
    }

    #[test]
    fn a_release_without_approval_cannot_be_ticked_and_says_why() {
        let mut waiting = line("+15550100000", LineState::Waiting, None);
        waiting.kind = domain::release::ReleaseKind::PortOut;
        waiting.release_reason = "Ported out to Other Telco on 2026-12-01".into();
        let mut blocked = line("+15550100001", LineState::Refused, Some(true));
        blocked.kind = domain::release::ReleaseKind::PortOut;
        blocked.message = Some(domain::release::BLOCKED_ASSIGNED.into());
        let asked = line("+15550100002", LineState::Waiting, None);
        let r = results_of(&[waiting, blocked, asked], &ZoomLook::NotAsked);
        assert_eq!(r.rows.iter().map(|r| r.tick).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(r.waiting, 1, "only what waits for the customer counts as waiting for them");
        assert!(r.rows[0].result.starts_with("No approval needed"), "{}", r.rows[0].result);
        assert_eq!(r.rows[0].why, "Ported out to Other Telco on 2026-12-01");
        assert!(r.rows[1].result.starts_with("No longer routes"), "{}", r.rows[1].result);
    }

    #[test]
    fn zoom_column_says_what_zoom_said_fresh_or_last_known() {
        let at = time::macros::datetime!(2026-11-23 11:00:05 UTC);
        let fresh = ZoomLook::Fresh {
            at,
            listed: HashMap::from([
                (domain::PhoneNumber::parse("+15550100000").unwrap(), true),
                (domain::PhoneNumber::parse("+15550100001").unwrap(), false),
            ]),
        };
        assert_eq!(
            zoom_text(&line("+15550100000", LineState::Waiting, None), &fresh),
            "Assigned to a user (seen 2026-11-23 11:00:05 UTC)"
        );
        assert_eq!(
            zoom_text(&line("+15550100001", LineState::Refused, None), &fresh),
            "Unassigned (seen 2026-11-23 11:00:05 UTC)"
        );
        assert_eq!(
            zoom_text(&line("+15550100002", LineState::Waiting, None), &fresh),
            "Not in your Zoom account (seen 2026-11-23 11:00:05 UTC)"
        );
        let down = ZoomLook::Unreachable { error: "Zoom did not answer in time".into() };
        assert_eq!(
            zoom_text(&line("+15550100000", LineState::Waiting, Some(true)), &down),
            "Assigned to a user (last seen 2026-11-23 10:00:00 UTC)"
        );
        assert_eq!(
            zoom_text(&line("+15550100000", LineState::Waiting, None), &down),
            "Not known yet"
        );
        assert_eq!(
            zoom_text(&line("+15550100000", LineState::Released, Some(true)), &fresh),
            "",
            "nothing to say of a released number"
        );
    }
}
