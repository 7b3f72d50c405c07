//! The customer admin's side (REFERENCE §2): `/v2/users/me`, the account's phone users and phone numbers,
//! and assigning a number to a user or unassigning it, which is what makes a peering number `assigned`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{self, Query};
use crate::numbers::{AllocatedProduct, Number};
use crate::state::SimState;
use crate::world::{Account, User, World};
use crate::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

const READ_USER: &[&str] =
    &["user:read", "user:read:admin", "user:read:user", "user:read:user:admin"];
const LIST_USERS: &[&str] = &["phone:read:admin", "phone:read:list_users:admin"];
const LIST_NUMBERS: &[&str] = &["phone:read:admin", "phone:read:list_numbers:admin"];
const ASSIGN: &[&str] = &[
    "phone:write",
    "phone:write:admin",
    "phone:write:user_number",
    "phone:write:user_number:admin",
];
const UNASSIGN: &[&str] = &[
    "phone:write",
    "phone:write:admin",
    "phone:delete:user_number",
    "phone:delete:user_number:admin",
];

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/v2/users/me", get(me))
        .route("/v2/phone/users", get(phone_users))
        .route("/v2/phone/numbers", get(phone_numbers))
        .route("/v2/phone/users/{userId}/phone_numbers", axum::routing::post(assign))
        .route("/v2/phone/users/{userId}/phone_numbers/{phoneNumberId}", delete(unassign))
}

/// Why a number could not be assigned or unassigned. Zoom publishes none of these texts [assume].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AssignError {
    NoSuchNumber,
    NoLicense,
    Inactive,
    ContactCenterOnly,
    AssignedToSomeoneElse,
    NotAssignedToUser,
    Returned,
    AssignedCannotReturn,
}

impl AssignError {
    pub fn message(&self, number: &str) -> String {
        match self {
            AssignError::NoSuchNumber => format!("Phone number does not exist: {number}."),
            AssignError::NoLicense => "The user has not been assigned a Zoom Phone license.".into(),
            AssignError::Inactive => format!("Phone number {number} is not active yet."),
            AssignError::ContactCenterOnly => {
                format!("Phone number {number} is allocated to Zoom Contact Center.")
            }
            AssignError::AssignedToSomeoneElse => {
                format!("Phone number {number} is already assigned.")
            }
            AssignError::NotAssignedToUser => {
                format!("Phone number {number} is not assigned to this user.")
            }
            AssignError::Returned => {
                format!("Phone number {number} has been returned to its carrier.")
            }
            AssignError::AssignedCannotReturn => {
                format!("Phone number {number} is assigned to a user. Unbind it, then return it.")
            }
        }
    }
}

/// A number of `account` by E.164 (with or without `+`) or by its id.
pub(crate) fn find_number<'s>(
    state: &'s mut SimState,
    account_id: &str,
    id_or_number: &str,
) -> Option<&'s mut Number> {
    let key = crate::e164::normalize(id_or_number)
        .filter(|k| state.numbers.contains_key(k))
        .or_else(|| {
            state.numbers.values().find(|n| n.id == id_or_number).map(|n| n.phone_number.clone())
        })?;
    state.numbers.get_mut(&key).filter(|n| n.account_id == account_id)
}

/// What the admin does with Phone Numbers > Unassigned > a number > assign to a user.
pub(crate) fn assign_number(
    state: &mut SimState,
    account: &Account,
    user: &User,
    id_or_number: &str,
) -> Result<Number, AssignError> {
    let n = find_number(state, &account.id, id_or_number).ok_or(AssignError::NoSuchNumber)?;
    if !user.phone_license {
        return Err(AssignError::NoLicense);
    }
    // A number still porting in cannot take calls, so Zoom will not assign it [assume].
    if !n.status {
        return Err(AssignError::Inactive);
    }
    if n.allocated_product == AllocatedProduct::ZoomContactCenter {
        return Err(AssignError::ContactCenterOnly);
    }
    // The customer gave it back; it is the carrier's to remove, not the customer's to use [assume].
    if n.returned_at.is_some() {
        return Err(AssignError::Returned);
    }
    match &n.assignee {
        Some(other) if *other != user.id => Err(AssignError::AssignedToSomeoneElse),
        _ => {
            n.assignee = Some(user.id.clone());
            Ok(n.clone())
        }
    }
}

/// Unbind: the number goes back to Unassigned. With `user` Some, only if it is that user's.
pub(crate) fn unassign_number(
    state: &mut SimState,
    account: &Account,
    user: Option<&User>,
    id_or_number: &str,
) -> Result<Number, AssignError> {
    let n = find_number(state, &account.id, id_or_number).ok_or(AssignError::NoSuchNumber)?;
    if let Some(u) = user {
        if n.assignee.as_deref() != Some(u.id.as_str()) {
            return Err(AssignError::NotAssignedToUser);
        }
    }
    n.assignee = None;
    Ok(n.clone())
}

/// The customer marks a number Returned: "unassigned by the customer and returned to the carrier"
/// [doc: Zoom support KB0076464], so an assigned number is unbound first [assume]. Returning it again
/// changes nothing. Zoom publishes no webhook for it [doc, by absence]: the carrier learns it by listing.
pub(crate) fn return_number(
    state: &mut SimState,
    account: &Account,
    id_or_number: &str,
    now: i64,
) -> Result<Number, AssignError> {
    let n = find_number(state, &account.id, id_or_number).ok_or(AssignError::NoSuchNumber)?;
    if n.assigned() {
        return Err(AssignError::AssignedCannotReturn);
    }
    n.returned_at.get_or_insert(now);
    Ok(n.clone())
}

fn account_of<'w>(world: &'w World, caller: &Caller) -> Result<&'w Account, ApiError> {
    world
        .account(&caller.account_id)
        .ok_or_else(|| ApiError::not_found(2001, "Account does not exist."))
}

/// `{userId}`: `me`, an id or an email, in the caller's account [doc].
fn user_of<'w>(account: &'w Account, caller: &Caller, user_id: &str) -> Result<&'w User, ApiError> {
    let key = if user_id == "me" { caller.user_id.as_str() } else { user_id };
    account
        .find_user(key)
        .ok_or_else(|| ApiError::not_found(1001, format!("User does not exist: {user_id}.")))
}

async fn me(State(sim): State<Simulator>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(READ_USER)?;
    let account = account_of(sim.world(), &caller)?;
    let user = user_of(account, &caller, "me")?;
    let is_admin = account.admin.id == user.id;
    Ok(Json(json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": user.display_name(),
        "email": user.email,
        "type": if user.phone_license { 2 } else { 1 },
        "role_name": if is_admin { "Owner" } else { "Member" },
        "account_id": account.id,
        "account_number": account.account_number.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(account.account_number)),
        "status": "active",
    }))
    .into_response())
}

fn user_numbers(state: &SimState, user: &User) -> Vec<Value> {
    state
        .numbers
        .values()
        .filter(|n| n.assignee.as_deref() == Some(user.id.as_str()))
        .map(|n| json!({ "id": n.id, "number": n.phone_number }))
        .collect()
}

async fn phone_users(State(sim): State<Simulator>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(LIST_USERS)?;
    let account = account_of(sim.world(), &caller)?;
    let users: Vec<Value> = sim.read(|s| {
        account
            .all_users()
            .filter(|u| u.phone_license)
            .map(|u| json!({ "id": u.id, "email": u.email, "name": u.display_name(), "status": "activate", "phone_numbers": user_numbers(s, u) }))
            .collect()
    });
    Ok(Json(json!({ "next_page_token": "", "page_size": users.len(), "total_records": users.len(), "users": users })).into_response())
}

/// A number as `GET /phone/numbers` shows it.
pub(crate) fn number_json(world: &World, account: &Account, n: &Number) -> Value {
    let carrier_name = if n.carrier_code == world.carrier().carrier_code {
        world.carrier().name.clone()
    } else {
        format!("Carrier {}", n.carrier_code)
    };
    let mut v = json!({
        "id": n.id,
        "number": n.phone_number,
        // A number still porting in (status false) is "pending" in Zoom's terms.
        "status": if n.status { "available" } else { "pending" },
        "source": "external",
        "carrier": { "code": n.carrier_code, "name": carrier_name },
    });
    if let Some(user) = n.assignee.as_deref().and_then(|id| account.find_user(id)) {
        v["assignee"] = json!({ "id": user.id, "name": user.display_name(), "type": "user" });
    }
    v
}

async fn phone_numbers(
    State(sim): State<Simulator>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(LIST_NUMBERS)?;
    let account = account_of(sim.world(), &caller)?;
    let q = Query::parse(&uri);
    let kind = q.get("type").unwrap_or("all").to_owned();
    let want: fn(&Number) -> bool = match kind.as_str() {
        "assigned" => |n| n.assigned(),
        "unassigned" => |n| !n.assigned(),
        "all" | "byoc" => |_| true,
        _ => return Err(ApiError::validation("type", "must be assigned, unassigned, byoc or all")),
    };
    let page_size = q.page_size(30, 100)?;
    let filter = q
        .get("phone_number")
        .filter(|f| !f.trim().is_empty())
        .map(|f| crate::e164::normalize(f).unwrap_or_default());
    let scope = format!("phone:{}:{kind}:{}", account.id, filter.as_deref().unwrap_or(""));
    let (now, ttl) =
        (sim.now(), i64::try_from(sim.options().page_token_ttl.as_secs()).unwrap_or(i64::MAX));
    let keep = |n: &&Number| want(n) && filter.as_ref().is_none_or(|f| &n.phone_number == f);
    // Read under the lock, cloning only the page; write only a next page's token.
    let (page, cursor) = sim
        .read(|s| {
            let after = s.resume_after(&scope, q.get("next_page_token"), now)?;
            let total = s.account_numbers(&account.id).filter(keep).count();
            let rest = s
                .numbers_after(Some(&account.id), after)
                .filter(keep)
                .map(|n| (n.phone_number.clone(), n));
            let (page, cursor) = crate::state::page_from(&scope, page_size, now, ttl, total, rest);
            let page = crate::state::Page {
                items: page.items.into_iter().cloned().collect::<Vec<Number>>(),
                next_page_token: page.next_page_token,
                total_records: page.total_records,
            };
            Ok::<_, crate::state::BadPageToken>((page, cursor))
        })
        .map_err(|_| ApiError::bad_request(300, "The next page token is invalid or expired."))?;
    if let Some((token, c)) = cursor {
        sim.write(|s| s.page_tokens.insert(token, c)).await;
    }
    let numbers: Vec<Value> =
        page.items.iter().map(|n| number_json(sim.world(), account, n)).collect();
    Ok(Json(json!({ "next_page_token": page.next_page_token, "page_size": page_size, "phone_numbers": numbers, "total_records": page.total_records })).into_response())
}

#[derive(Deserialize)]
struct AssignBody {
    #[serde(default)]
    phone_numbers: Vec<NumberRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    number: Option<String>,
}

async fn assign(
    State(sim): State<Simulator>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(ASSIGN)?;
    let account = account_of(sim.world(), &caller)?;
    let user = user_of(account, &caller, &user_id)?;
    let body: AssignBody = json::body(&body)?;
    if body.phone_numbers.is_empty() || body.phone_numbers.len() > 10 {
        return Err(ApiError::validation("phone_numbers", "give between 1 and 10 phone numbers"));
    }
    let mut refs = Vec::new();
    for (i, r) in body.phone_numbers.into_iter().enumerate() {
        refs.push(r.id.or(r.number).ok_or_else(|| {
            ApiError::validation(&format!("phone_numbers[{i}]"), "give an id or a number")
        })?);
    }
    // All or nothing: an admin's assignment either happens or is refused with its reason.
    let assigned = sim
        .write(|s| {
            let before = s.numbers.clone();
            let mut done = Vec::new();
            for r in &refs {
                match assign_number(s, account, user, r) {
                    Ok(n) => done.push(json!({ "id": n.id, "number": n.phone_number })),
                    Err(e) => {
                        s.numbers = before;
                        return Err(ApiError::bad_request(300, e.message(r)));
                    }
                }
            }
            Ok(done)
        })
        .await?;
    Ok(Json(json!({ "phone_numbers": assigned })).into_response())
}

async fn unassign(
    State(sim): State<Simulator>,
    caller: Caller,
    Path((user_id, number)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(UNASSIGN)?;
    let account = account_of(sim.world(), &caller)?;
    let user = user_of(account, &caller, &user_id)?;
    sim.write(|s| unassign_number(s, account, Some(user), &number))
        .await
        .map_err(|e| ApiError::bad_request(300, e.message(&number)))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
