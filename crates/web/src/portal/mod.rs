//! The customer portal (`/portal`): a customer's admin signs in (often straight from a Zoom
//! Marketplace install), sees the company's numbers and whether Zoom has them assigned, follows each
//! order's progress into Zoom, orders more, and is told plainly when the app was removed in Zoom.
//!
//! Every query is confined to the signed-in admin's customer: another customer's order is a 404.
//! Every form carries the session's CSRF token.

mod install;
mod release; // issue 6: the Wait for Release tab

use crate::error::{render, PageError};
use crate::session::{
    cookie, csrf_refused, login_csrf, login_csrf_ok, same_secret, set_cookie, sign_in_status,
    ClientIp,
};
use crate::zoom::INSTALL_COOKIE;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::auth::{Role, Session, User};
use domain::customer::{Customer, Order, OrderPick};
use domain::onboarding::{JobState, LinkState, ZoomLink};
use domain::search::NumberQuery;
use domain::{Actor, Number, NumberState, OrderId, PhoneNumber};
use serde::Deserialize;
use std::collections::HashMap;
use time::OffsetDateTime;

/// The customer portal's session cookie (apart from the operator portal's, so one browser can hold both).
pub const PORTAL_SESSION_COOKIE: &str = "peerex_portal_session";

/// Numbers the home page lists.
const NUMBERS_SHOWN: u32 = 500;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/orders", post(order_more))
        .route("/orders/{id}", get(order_page))
        .route("/orders/{id}/progress", get(order_progress))
        .merge(release::router())
        .merge(install::router())
}

/// A signed-in customer admin. Without one, the browser is sent to the portal's sign-in.
pub struct CustomerAdmin {
    pub user: User,
    pub session: Session,
    pub customer: Customer,
}

impl CustomerAdmin {
    pub fn actor(&self) -> Actor {
        Actor::CustomerAdmin(self.user.email.clone())
    }

    #[allow(clippy::result_large_err)]
    pub(crate) fn check_csrf(&self, submitted: &str) -> Result<(), Response> {
        if same_secret(submitted, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

/// The customer admin signed in on this request, if any.
pub async fn signed_in(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<Option<CustomerAdmin>, AppError> {
    let Some(value) = cookie(headers, PORTAL_SESSION_COOKIE) else { return Ok(None) };
    match state.app.session(value).await? {
        Some((session, user)) if user.role == Role::CustomerAdmin => {
            let Some(id) = user.customer_id else { return Ok(None) };
            let customer = state.app.customer(id).await?;
            Ok(Some(CustomerAdmin { user, session, customer }))
        }
        _ => Ok(None),
    }
}

impl FromRequestParts<WebState> for CustomerAdmin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        match signed_in(state, &parts.headers).await {
            Ok(Some(admin)) => Ok(admin),
            Ok(None) => Err(Redirect::to("/portal/login").into_response()),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

// ---- sign-in ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage<'a> {
    carrier: &'a str,
    csrf: &'a str,
    email: &'a str,
    /// A Zoom install is waiting for this sign-in.
    install: bool,
    error: Option<String>,
}

async fn login_page(
    state: &WebState,
    headers: &HeaderMap,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (csrf, csrf_cookie) = match login_csrf(state).await {
        Ok(pair) => pair,
        Err(e) => return PageError(e).into_response(),
    };
    let install = cookie(headers, INSTALL_COOKIE).is_some();
    let page = LoginPage { carrier: &state.ui.carrier_name, csrf: &csrf, email, install, error };
    let mut response = render(&page);
    *response.status_mut() = status;
    if let Ok(v) = csrf_cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login_form(State(state): State<WebState>, headers: HeaderMap) -> Response {
    login_page(&state, &headers, "", None, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

async fn login_submit(
    State(state): State<WebState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    match login_csrf_ok(&state, &headers, &f.csrf).await {
        Ok(true) => {}
        Ok(false) => return csrf_refused(),
        Err(e) => return PageError(e).into_response(),
    }
    let new = match state.app.sign_in(&f.email, &f.password, source).await {
        Ok(new) if new.user.role == Role::CustomerAdmin => new,
        // An operator's password is right, but this is the customers' portal.
        Ok(new) => {
            let _ = state.app.sign_out(&new.cookie).await;
            return login_page(
                &state,
                &headers,
                &f.email,
                Some(AppError::BadCredentials.to_string()),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
        Err(e @ (AppError::BadCredentials | AppError::Locked(_) | AppError::Busy(_))) => {
            let status = sign_in_status(&e);
            return login_page(&state, &headers, &f.email, Some(e.to_string()), status).await;
        }
        Err(e) => return PageError(e).into_response(),
    };
    let max_age = (new.session.expires_at - new.session.created_at).whole_seconds();
    let session_cookie =
        set_cookie(PORTAL_SESSION_COOKIE, &new.cookie, max_age, state.ui.secure_cookies);
    // A Zoom install is waiting for this sign-in: on to its confirmation.
    let to = if cookie(&headers, INSTALL_COOKIE).is_some() { "/portal/install" } else { "/portal" };
    let mut response = Redirect::to(to).into_response();
    if let Ok(v) = session_cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = admin.check_csrf(&f.csrf) {
        return refused;
    }
    if let Err(e) = state.app.end_session(&admin.session).await {
        return PageError(e).into_response();
    }
    let mut response = Redirect::to("/portal/login").into_response();
    if let Ok(v) = set_cookie(PORTAL_SESSION_COOKIE, "", 0, state.ui.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ---- home ---------------------------------------------------------------------------------------

/// What the banner says about the Zoom link.
pub struct LinkView {
    pub state: &'static str,
    pub account: String,
    pub since: String,
}

impl LinkView {
    fn new(link: Option<&ZoomLink>) -> LinkView {
        match link {
            None => LinkView { state: "none", account: String::new(), since: String::new() },
            Some(l) if l.state == LinkState::Linked && l.reauth_needed_at.is_some() => LinkView {
                state: "needs_reauth",
                account: l.zoom_account_id.to_string(),
                since: when(l.reauth_needed_at.unwrap_or(l.linked_at)),
            },
            Some(l) => LinkView {
                state: l.state.as_str(),
                account: l.zoom_account_id.to_string(),
                since: when(if l.state == LinkState::Removed {
                    l.removed_at.unwrap_or(l.linked_at)
                } else {
                    l.linked_at
                }),
            },
        }
    }
}

pub struct PortalNumber {
    pub e164: String,
    pub state: &'static str,
    /// "Assigned to a user", "Unassigned", or "" when Zoom has not been asked yet.
    pub zoom: &'static str,
    pub reason: String,
    /// The emergency address set in Zoom, on one line; empty when none is known.
    pub emergency_address: String,
    /// Active without the emergency address the carrier requires.
    pub e911_missing: bool,
    pub cnam: String,
}

pub struct PortalOrder {
    pub id: OrderId,
    pub state: &'static str,
    pub count: i64,
    pub created: String,
}

impl PortalOrder {
    fn new(o: &Order) -> Self {
        Self {
            id: o.id,
            state: o.state.as_str(),
            count: o.number_count,
            created: when(o.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    carrier: String,
    customer: String,
    email: String,
    csrf: String,
    link: LinkView,
    numbers: Vec<PortalNumber>,
    orders: Vec<PortalOrder>,
    /// The customer's numbers coming from other carriers, newest first.
    port_ins: Vec<domain::port_in::PortIn>,
    count: String,
    error: Option<String>,
}

fn zoom_label(
    presence: &HashMap<PhoneNumber, (Option<bool>, Option<OffsetDateTime>)>,
    n: &Number,
) -> &'static str {
    if n.state == NumberState::Porting {
        return "Pending until its port completes";
    }
    if n.state != NumberState::Active && n.state != NumberState::ReleasePending {
        return "";
    }
    match presence.get(&n.e164).and_then(|(a, _)| *a) {
        Some(true) => "Assigned to a user",
        Some(false) => "Unassigned",
        None => "",
    }
}

async fn home_page(
    state: &WebState,
    admin: &CustomerAdmin,
    count: String,
    error: Option<String>,
) -> Result<Response, PageError> {
    let c = admin.customer.id;
    let link = state.app.zoom_link(c).await?;
    let query = NumberQuery { customer_id: Some(c), limit: NUMBERS_SHOWN, ..Default::default() };
    let numbers = state.app.search_numbers(&query).await?;
    let presence: HashMap<PhoneNumber, (Option<bool>, Option<OffsetDateTime>)> =
        state.app.zoom_presence(c).await?.into_iter().map(|(n, a, at)| (n, (a, at))).collect();
    let facts = state.app.number_facts(&numbers).await?;
    let numbers = numbers
        .iter()
        .map(|n| {
            let f = facts.get(&n.id);
            PortalNumber {
                e164: n.e164.to_string(),
                state: n.state.as_str(),
                zoom: zoom_label(&presence, n),
                reason: n.reason.clone().unwrap_or_default(),
                emergency_address: f
                    .and_then(|f| f.emergency_address.as_ref())
                    .map(|a| a.one_line())
                    .unwrap_or_default(),
                e911_missing: state.app.e911_flagged(n, f),
                cnam: f
                    .and_then(|f| f.cnam.as_ref())
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let orders = state.app.orders(Some(c), 50).await?.iter().map(PortalOrder::new).collect();
    let port_ins = state.app.port_ins(Some(c)).await?;
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    let page = HomePage {
        carrier: state.ui.carrier_name.clone(),
        customer: admin.customer.name.clone(),
        email: admin.user.email.clone(),
        csrf: admin.session.csrf_token.clone(),
        link: LinkView::new(link.as_ref()),
        numbers,
        orders,
        port_ins,
        count,
        error,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(response)
}

async fn home(State(state): State<WebState>, admin: CustomerAdmin) -> Result<Response, PageError> {
    home_page(&state, &admin, String::new(), None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OrderForm {
    csrf: String,
    count: String,
}

async fn order_more(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    Form(f): Form<OrderForm>,
) -> Result<Response, PageError> {
    if let Err(refused) = admin.check_csrf(&f.csrf) {
        return Ok(refused);
    }
    let count = match f.count.trim().parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            return home_page(
                &state,
                &admin,
                f.count,
                Some("count: give how many numbers you want, as a whole number".into()),
            )
            .await
        }
    };
    match state
        .app
        .order_more(admin.customer.id, OrderPick { count, ..Default::default() }, &admin.actor())
        .await
    {
        Ok((order, _)) => Ok(Redirect::to(&format!("/portal/orders/{}", order.id)).into_response()),
        Err(e @ (AppError::Refused(_) | AppError::Invalid { .. })) => {
            home_page(&state, &admin, f.count, Some(e.to_string())).await
        }
        Err(e) => Err(PageError(e)),
    }
}

// ---- one order ----------------------------------------------------------------------------------

pub struct Progress {
    pub e164: String,
    pub state: &'static str,
    /// pushed, refused, retry, pushing, waiting, suspended
    pub kind: &'static str,
    pub text: String,
}

#[derive(Template)]
#[template(path = "portal/order.html")]
struct OrderPage {
    carrier: String,
    customer: String,
    email: String,
    csrf: String,
    order: PortalOrder,
    link: LinkView,
    running: bool,
    /// The progress table, rendered apart so htmx can fetch it alone.
    progress_html: String,
}

#[derive(Template)]
#[template(path = "portal/progress.html")]
struct ProgressView {
    order: OrderId,
    rows: Vec<Progress>,
    running: bool,
    pushed: usize,
    refused: usize,
    waiting: usize,
}

async fn progress_of(
    state: &WebState,
    admin: &CustomerAdmin,
    raw: &str,
) -> Result<(Order, ProgressView), PageError> {
    let id: OrderId = raw.parse().map_err(|_| PageError(AppError::NotFound))?;
    let (order, numbers) = state.app.order(id, Some(admin.customer.id)).await?;
    let jobs = state.app.order_jobs(id, Some(admin.customer.id)).await?;
    let retrying = |e164: &domain::PhoneNumber| {
        jobs.iter()
            .filter(|j| {
                j.state == JobState::Pending
                    || j.state == JobState::Running
                    || j.state == JobState::Failed
            })
            .find(|j| j.last_error.is_some() && j.payload.carries(e164))
    };
    let rows: Vec<Progress> = numbers
        .iter()
        .map(|n| {
            let e164 = n.e164.to_string();
            let (kind, text) = match n.state {
                NumberState::Active | NumberState::ReleasePending => {
                    ("pushed", "Pushed: in your Zoom account".to_owned())
                }
                NumberState::Reserved => match &n.reason {
                    Some(r) => ("refused", format!("Refused by Zoom: {r}")),
                    None => ("waiting", "Waiting for your Zoom account to be linked".to_owned()),
                },
                NumberState::Provisioning => match retrying(&n.e164) {
                    Some(j) if j.state == JobState::Failed => (
                        "retry",
                        format!(
                            "Stopped after repeated errors; we are on it ({})",
                            j.last_error.clone().unwrap_or_default()
                        ),
                    ),
                    Some(j) => (
                        "retry",
                        format!("Waiting for retry: {}", j.last_error.clone().unwrap_or_default()),
                    ),
                    None => ("pushing", "Being pushed to Zoom".to_owned()),
                },
                NumberState::Suspended => {
                    ("suspended", "Suspended: the app was removed in Zoom".to_owned())
                }
                other => ("other", other.as_str().to_owned()),
            };
            Progress { e164, state: n.state.as_str(), kind, text }
        })
        .collect();
    let count = |k: &str| rows.iter().filter(|r| r.kind == k).count();
    let view = ProgressView {
        order: id,
        running: rows.iter().any(|r| r.state == "provisioning"),
        pushed: count("pushed"),
        refused: count("refused"),
        waiting: count("retry") + count("pushing"),
        rows,
    };
    Ok((order, view))
}

async fn order_page(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (order, progress) = progress_of(&state, &admin, &id).await?;
    let link = state.app.zoom_link(admin.customer.id).await?;
    Ok(render(&OrderPage {
        carrier: state.ui.carrier_name.clone(),
        customer: admin.customer.name.clone(),
        email: admin.user.email.clone(),
        csrf: admin.session.csrf_token.clone(),
        order: PortalOrder::new(&order),
        link: LinkView::new(link.as_ref()),
        running: progress.running,
        progress_html: progress
            .render()
            .map_err(|e| PageError(AppError::Refused(format!("cannot render: {e}"))))?,
    }))
}

/// The progress table alone, which the order page's htmx swaps in every few seconds while work runs.
async fn order_progress(
    State(state): State<WebState>,
    admin: CustomerAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (_, progress) = progress_of(&state, &admin, &id).await?;
    Ok(render(&progress))
}

fn when(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_default()
}
