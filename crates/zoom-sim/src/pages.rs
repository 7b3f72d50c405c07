//! The zoom.us web pages a customer's admin walks in the carriers' guides, with Zoom's labels, plain
//! server-rendered HTML: Profile; Advanced > App Marketplace > a category > an app > **Add** (then the
//! consent page's **Allow**); Manage > Added Apps > **Remove**; Phone System Management > Phone Numbers
//! with **Assigned** and **Unassigned** tabs, a number's page to assign it to a user, and **Unbind**.

use crate::oauth::render;
use crate::phone::{assign_number, return_number, unassign_number};
use crate::state::Session;
use crate::world::{Account, App, AppKind, User};
use crate::Simulator;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/profile") }))
        .route("/profile", get(profile))
        .route("/marketplace", get(marketplace))
        .route("/marketplace/apps/{client_id}", get(app_details))
        .route("/marketplace/apps/{client_id}/remove", post(remove_from_app_page))
        .route("/marketplace/manage", get(manage))
        .route("/marketplace/manage/{client_id}/remove", post(remove))
        .route("/pbx/phone-numbers", get(numbers))
        .route("/pbx/phone-numbers/{id}", get(number))
        .route("/pbx/phone-numbers/{id}/assign", post(assign))
        .route("/pbx/phone-numbers/{id}/unbind", post(unbind))
        .route("/pbx/phone-numbers/{id}/return", post(return_to_carrier))
        .route("/pbx/phone-numbers/{id}/cnam", post(set_cnam))
        .route("/pbx/phone-numbers/{id}/emergency-address", post(set_emergency_address))
}

/// The signed-in user, or a redirect to the sign-in page that comes back here.
pub(crate) struct Visitor<'w> {
    pub account: &'w Account,
    pub user: &'w User,
}

impl Visitor<'_> {
    pub fn is_admin(&self) -> bool {
        self.account.admin.id == self.user.id
    }
}

/// Why a page is not shown: no sign-in (go and sign in, then come back), not the account's admin, or
/// not for this account at all.
pub(crate) enum Refusal {
    SignIn { next: String },
    NotAdmin,
    Forbidden(&'static str),
    NotFound(&'static str),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn { next } => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Redirect::to(&format!("/signin?{query}")).into_response()
            }
            Refusal::NotAdmin => {
                message(StatusCode::FORBIDDEN, "Only your account admin can manage phone numbers.")
            }
            Refusal::Forbidden(text) => message(StatusCode::FORBIDDEN, text),
            Refusal::NotFound(text) => message(StatusCode::NOT_FOUND, text),
        }
    }
}

/// The visitor, or the refusal as the handler's response.
macro_rules! or_refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(refusal) => return refusal.into_response(),
        }
    };
}

pub(crate) fn visitor<'w>(
    sim: &'w Simulator,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Visitor<'w>, Refusal> {
    let found = sim.session(headers).and_then(|(_, Session { account_id, user_id })| {
        let account = sim.world().account(&account_id)?;
        let user = account.all_users().find(|u| u.id == user_id)?;
        Some(Visitor { account, user })
    });
    found.ok_or_else(|| Refusal::SignIn {
        next: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned(),
    })
}

/// Phone System Management is for admins [assume].
fn admin<'w>(sim: &'w Simulator, headers: &HeaderMap, uri: &Uri) -> Result<Visitor<'w>, Refusal> {
    let v = visitor(sim, headers, uri)?;
    if v.is_admin() {
        Ok(v)
    } else {
        Err(Refusal::NotAdmin)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct Message<'a> {
    message: &'a str,
}

pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    render(status, &Message { message: text })
}

pub(crate) fn notice(uri: &Uri) -> Option<String> {
    crate::json::Query::parse(uri).get("notice").map(str::to_owned)
}

pub(crate) fn with_notice(path: &str, text: &str) -> Redirect {
    let query =
        form_urlencoded::Serializer::new(String::new()).append_pair("notice", text).finish();
    Redirect::to(&crate::oauth::with_query(path, &query))
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    notice: Option<String>,
    user_name: String,
    user_email: &'a str,
    account_name: &'a str,
    account_id: &'a str,
    is_admin: bool,
    zoom_phone: bool,
}

async fn profile(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    let v = or_refuse!(visitor(&sim, &headers, &uri));
    render(
        StatusCode::OK,
        &ProfilePage {
            notice: notice(&uri),
            user_name: v.user.display_name(),
            user_email: &v.user.email,
            account_name: &v.account.name,
            account_id: &v.account.id,
            is_admin: v.is_admin(),
            zoom_phone: v.account.zoom_phone,
        },
    )
}

#[derive(Template)]
#[template(path = "marketplace.html")]
struct MarketplacePage<'a> {
    notice: Option<String>,
    categories: Vec<&'a str>,
    category: Option<String>,
    apps: Vec<&'a App>,
}

/// Apps a Marketplace visitor can add: server-to-server apps are not listed.
fn listed(sim: &Simulator) -> impl Iterator<Item = &App> {
    sim.world().apps().iter().filter(|a| a.kind != AppKind::ServerToServer)
}

async fn marketplace(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    or_refuse!(visitor(&sim, &headers, &uri));
    let mut categories: Vec<&str> = listed(&sim).map(|a| a.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    let category = crate::json::Query::parse(&uri).get("category").map(str::to_owned);
    let apps = listed(&sim).filter(|a| Some(&a.category) == category.as_ref()).collect();
    render(StatusCode::OK, &MarketplacePage { notice: notice(&uri), categories, category, apps })
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage<'a> {
    notice: Option<String>,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    user_role: &'a str,
    scopes: &'a [String],
    installed: bool,
    /// Whether this visitor may remove it here (Manage > Added Apps > the app > Remove).
    removable: bool,
    client_id: &'a str,
    add_url: Option<String>,
}

async fn app_details(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(client_id): Path<String>,
) -> Response {
    let v = or_refuse!(visitor(&sim, &headers, &uri));
    let Some(app) = listed(&sim).find(|a| a.client_id == client_id) else {
        return message(StatusCode::NOT_FOUND, "There is no such app.");
    };
    let (installed, own) = sim.read(|s| {
        let mut grants = s
            .grants
            .values()
            .filter(|g| g.client_id == app.client_id && g.account_id == v.account.id)
            .peekable();
        let installed = grants.peek().is_some();
        (installed, grants.any(|g| g.user_id == v.user.id))
    });
    // Add starts the app's authorization at its first redirect URI, without `state`: what a Marketplace
    // install delivers to the app [seen].
    let add_url = app.redirect_uris.first().map(|redirect| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", redirect)
            .finish();
        format!("/oauth/authorize?{query}")
    });
    let user_role = if app.kind == AppKind::AdminManaged { "Account Admin" } else { "Any User" };
    let page = AppPage {
        notice: notice(&uri),
        name: &app.name,
        description: &app.description,
        category: &app.category,
        user_role,
        scopes: &app.scopes,
        installed,
        removable: installed && (v.is_admin() || (app.kind == AppKind::UserManaged && own)),
        client_id: &app.client_id,
        add_url,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "manage.html")]
struct ManagePage<'a> {
    notice: Option<String>,
    apps: Vec<&'a App>,
}

async fn manage(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    let v = or_refuse!(visitor(&sim, &headers, &uri));
    let mut ids: Vec<String> = sim.read(|s| {
        s.grants
            .values()
            .filter(|g| g.account_id == v.account.id && (v.is_admin() || g.user_id == v.user.id))
            .map(|g| g.client_id.clone())
            .collect()
    });
    ids.sort_unstable();
    ids.dedup();
    let apps = ids.iter().filter_map(|id| sim.world().app(id)).collect();
    render(StatusCode::OK, &ManagePage { notice: notice(&uri), apps })
}

/// Remove beside the app in Manage > Added Apps.
async fn remove(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(client_id): Path<String>,
) -> Response {
    let v = or_refuse!(visitor(&sim, &headers, &uri));
    remove_for(&sim, &v, &client_id, "/marketplace/manage").await
}

/// Remove on the added app's own page (Manage > Added Apps > the app > Remove), as the carriers' guides
/// tell customers to: the same removal as the list's.
async fn remove_from_app_page(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(client_id): Path<String>,
) -> Response {
    let v = or_refuse!(visitor(&sim, &headers, &uri));
    let page = format!("/marketplace/apps/{}", path_segment(&client_id));
    remove_for(&sim, &v, &client_id, &page).await
}

/// An admin-managed app is the account's: only its admin removes it. A user-managed one is each user's:
/// a user removes their own authorization, the admin anyone's [assume: Zoom's Marketplace pages say
/// so; its API material is silent].
async fn remove_for(sim: &Simulator, v: &Visitor<'_>, client_id: &str, back_to: &str) -> Response {
    let Some(app) = sim.world().app(client_id) else {
        return message(StatusCode::NOT_FOUND, "This app is not added to your account.");
    };
    let only_user = match (app.kind, v.is_admin()) {
        (_, true) => None,
        (AppKind::UserManaged, false) => Some(v.user.id.as_str()),
        (_, false) => {
            return message(StatusCode::FORBIDDEN, "Only your account admin can remove this app.")
        }
    };
    if sim.remove_app(&v.account.id, client_id, &v.user.id, only_user).await {
        with_notice(back_to, &format!("{} has been removed.", app.name)).into_response()
    } else {
        message(StatusCode::NOT_FOUND, "This app is not added to your account.")
    }
}

/// `s` as one path segment: every byte but RFC 3986's unreserved ones percent-encoded.
pub(crate) fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Simulator {
    /// Removes an app from an account (with `only_user`, only that user's authorization of it): its
    /// authorizations and tokens end, and the app is sent `app_deauthorized` [doc]. False when the app
    /// was not added there.
    pub(crate) async fn remove_app(
        &self,
        account_id: &str,
        client_id: &str,
        by_user_id: &str,
        only_user: Option<&str>,
    ) -> bool {
        let Some(app) = self.world().app(client_id) else { return false };
        let delivery = self.deauthorized_event(app, account_id, by_user_id);
        let removed = self
            .write(|s| {
                let ids: Vec<String> = s
                    .grants
                    .iter()
                    .filter(|(_, g)| {
                        g.client_id == client_id
                            && g.account_id == account_id
                            && only_user.is_none_or(|u| g.user_id == u)
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &ids {
                    s.revoke_grant(id);
                }
                if !ids.is_empty() {
                    s.deliveries.extend(delivery);
                }
                !ids.is_empty()
            })
            .await;
        if removed {
            self.ensure_webhook_worker();
            self.wake_webhooks();
        }
        removed
    }
}

struct Row {
    id: String,
    number: String,
    carrier: String,
    status: &'static str,
    pool_status: &'static str,
    assignee: String,
}

#[derive(Template)]
#[template(path = "numbers.html")]
struct NumbersPage {
    notice: Option<String>,
    tab: String,
    numbers: Vec<Row>,
}

fn carrier_name(sim: &Simulator, code: u32) -> String {
    if code == sim.world().carrier().carrier_code {
        sim.world().carrier().name.clone()
    } else {
        format!("Carrier {code}")
    }
}

async fn numbers(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let tab = match crate::json::Query::parse(&uri).get("tab") {
        Some("assigned") => "assigned",
        _ => "unassigned",
    };
    let numbers = sim.read(|s| {
        s.numbers
            .values()
            .filter(|n| n.account_id == v.account.id && n.assigned() == (tab == "assigned"))
            .map(|n| Row {
                id: n.id.clone(),
                number: n.phone_number.clone(),
                carrier: carrier_name(&sim, n.carrier_code),
                status: if n.status { "Normal" } else { "Pending" },
                pool_status: n.pool_status().label(),
                assignee: n
                    .assignee
                    .as_deref()
                    .and_then(|id| v.account.find_user(id))
                    .map(User::display_name)
                    .unwrap_or_default(),
            })
            .collect()
    });
    render(StatusCode::OK, &NumbersPage { notice: notice(&uri), tab: tab.into(), numbers })
}

#[derive(Template)]
#[template(path = "number.html")]
struct NumberPage {
    notice: Option<String>,
    id: String,
    number: String,
    carrier: String,
    status: &'static str,
    pool_status: &'static str,
    returned: bool,
    service_info: String,
    assigned: bool,
    assignee: String,
    /// (id, "name <email>") of the users who can be given a number.
    users: Vec<(String, String)>,
    cnam: String,
    address: crate::events::EmergencyAddress,
}

async fn number(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let Some(n) = sim
        .read(|s| s.numbers.values().find(|n| n.id == id && n.account_id == v.account.id).cloned())
    else {
        return message(StatusCode::NOT_FOUND, "There is no such number in your account.");
    };
    let page = NumberPage {
        notice: notice(&uri),
        id: n.id.clone(),
        number: n.phone_number.clone(),
        carrier: carrier_name(&sim, n.carrier_code),
        status: if n.status { "Normal" } else { "Pending" },
        pool_status: n.pool_status().label(),
        returned: n.returned_at.is_some(),
        service_info: n.service_info.clone().unwrap_or_default(),
        assigned: n.assigned(),
        assignee: n
            .assignee
            .as_deref()
            .and_then(|u| v.account.find_user(u))
            .map(User::display_name)
            .unwrap_or_else(|| "Unassigned".into()),
        users: v
            .account
            .all_users()
            .filter(|u| u.phone_license)
            .map(|u| (u.id.clone(), format!("{} <{}>", u.display_name(), u.email)))
            .collect(),
        cnam: n.cnam.clone().unwrap_or_default(),
        address: n.emergency_address.clone().unwrap_or(crate::events::EmergencyAddress {
            address_line1: String::new(),
            address_line2: None,
            city: None,
            zip: None,
            state_code: None,
            country: None,
        }),
    };
    render(StatusCode::OK, &page)
}

async fn assign(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let user_id = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(user) = v.account.find_user(&user_id) else {
        return message(StatusCode::BAD_REQUEST, "Choose a user.");
    };
    let page = format!("/pbx/phone-numbers/{id}");
    match sim.write(|s| assign_number(s, v.account, user, &id)).await {
        Ok(n) => with_notice(
            &page,
            &format!("{} is assigned to {}.", n.phone_number, user.display_name()),
        )
        .into_response(),
        Err(e) => with_notice(&page, &e.message(&id)).into_response(),
    }
}

async fn unbind(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let page = format!("/pbx/phone-numbers/{id}");
    match sim.write(|s| unassign_number(s, v.account, None, &id)).await {
        Ok(n) => with_notice(&page, &format!("{} is no longer assigned.", n.phone_number))
            .into_response(),
        Err(e) => with_notice(&page, &e.message(&id)).into_response(),
    }
}

/// Return to Carrier: the customer gives the number back; the carrier sees it Returned when it lists.
async fn return_to_carrier(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let page = format!("/pbx/phone-numbers/{}", path_segment(&id));
    let now = sim.now();
    match sim.write(|s| return_number(s, v.account, &id, now)).await {
        Ok(n) => with_notice(
            &page,
            &format!(
                "{} has been returned to {}.",
                n.phone_number,
                carrier_name(&sim, n.carrier_code)
            ),
        )
        .into_response(),
        Err(e) => with_notice(&page, &e.message(&id)).into_response(),
    }
}

/// Caller ID Name > Save: the carrier hears of it through the CNAM events.
async fn set_cnam(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let cnam = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "cnam")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let page = format!("/pbx/phone-numbers/{id}");
    match sim.change_number(v.account, &id, crate::events::Change::Cnam(cnam.clone())).await {
        Ok(_) => with_notice(&page, &format!("Caller ID name set to {cnam}.")).into_response(),
        Err(e) => with_notice(&page, &capitalized(&e.to_string())).into_response(),
    }
}

/// Emergency Address > Save: the carrier hears of it through the emergency-address events.
async fn set_emergency_address(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let v = or_refuse!(admin(&sim, &headers, &uri));
    let field = |name: &str| {
        form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let page = format!("/pbx/phone-numbers/{id}");
    let address = crate::events::EmergencyAddress {
        address_line1: field("address_line1").unwrap_or_default(),
        address_line2: field("address_line2"),
        city: field("city"),
        zip: field("zip"),
        state_code: field("state_code"),
        country: field("country"),
    };
    let address = match address.tidy() {
        Ok(a) => a,
        Err(_) => {
            return with_notice(&page, "Enter the street address (Address Line 1).").into_response()
        }
    };
    match sim.change_number(v.account, &id, crate::events::Change::EmergencyAddress(address)).await
    {
        Ok(_) => with_notice(&page, "Emergency address saved.").into_response(),
        Err(e) => with_notice(&page, &capitalized(&e.to_string())).into_response(),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
