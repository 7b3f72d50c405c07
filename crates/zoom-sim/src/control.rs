//! The test-control API under `/_sim/`, served only when [`crate::Options::control_api`] is on: reset
//! the world, look inside it, play the customer's admin, inject faults, read the webhook delivery log
//! and move the clock. Not Zoom's: nothing here pretends to be.

use crate::events::{Change, EmergencyAddress};
use crate::faults::Fault;
use crate::numbers::Number;
use crate::phone::{assign_number, return_number, unassign_number};
use crate::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/_sim/reset", post(reset))
        .route("/_sim/accounts", get(accounts))
        .route("/_sim/numbers", get(numbers))
        .route("/_sim/numbers/{number}", patch(change_silently).delete(delete_silently))
        .route("/_sim/numbers/{number}/assignment", put(assign).delete(unassign))
        .route("/_sim/numbers/{number}/returned", put(mark_returned).delete(unmark_returned))
        .route("/_sim/numbers/{number}/cnam", put(set_cnam))
        .route("/_sim/numbers/{number}/emergency_address", put(set_emergency_address))
        .route("/_sim/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/_sim/accounts/{account_id}/apps/{client_id}/remove", post(remove_app))
        .route("/_sim/apps/{client_id}/validate-endpoint", post(validate_endpoint))
        .route("/_sim/webhooks", get(webhooks))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
}

struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, message.into())
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))
}

async fn reset(State(sim): State<Simulator>) -> StatusCode {
    sim.reset().await;
    StatusCode::NO_CONTENT
}

async fn accounts(State(sim): State<Simulator>) -> Json<Value> {
    let world = sim.world();
    let accounts: Vec<Value> = sim.read(|s| {
        world
            .accounts()
            .iter()
            .map(|a| {
                let installed: Vec<Value> = s
                    .grants
                    .iter()
                    .filter(|(_, g)| g.account_id == a.id)
                    .map(|(id, g)| {
                        let name = world.app(&g.client_id).map(|app| app.name.as_str()).unwrap_or("");
                        json!({ "grant_id": id, "client_id": g.client_id, "app_name": name, "user_id": g.user_id, "scopes": g.scopes, "installed_at": g.created_at })
                    })
                    .collect();
                let users: Vec<Value> = a
                    .all_users()
                    .map(|u| json!({ "id": u.id, "email": u.email, "name": u.display_name(), "admin": u.id == a.admin.id, "phone_license": u.phone_license }))
                    .collect();
                let numbers = s.numbers.values().filter(|n| n.account_id == a.id).count();
                let carrier_account = world.carrier_account().is_some_and(|c| c.id == a.id);
                let mut rate = serde_json::Map::new();
                for (label, limit, tally) in sim.rate_tally(&a.id) {
                    rate.insert(label.into(), json!({ "limit": limit, "busiest_second": tally.busiest_second, "refused": tally.refused }));
                }
                json!({
                    "id": a.id, "name": a.name, "account_number": a.account_number, "plan": a.plan, "zoom_phone": a.zoom_phone,
                    "carrier_account": carrier_account,
                    "users": users, "installed_apps": installed, "phone_numbers": numbers, "rate_limit": rate,
                })
            })
            .collect()
    });
    Json(json!({ "accounts": accounts }))
}

/// Every number with everything the simulator knows about it; `?account_id=` narrows to one account.
async fn numbers(State(sim): State<Simulator>, uri: Uri) -> Json<Value> {
    let q = crate::json::Query::parse(&uri);
    let account = q.get("account_id").map(str::to_owned);
    let numbers: Vec<Number> = sim.read(|s| {
        s.numbers
            .values()
            .filter(|n| account.as_ref().is_none_or(|a| &n.account_id == a))
            .cloned()
            .collect()
    });
    Json(json!({ "numbers": numbers }))
}

fn e164_of(number: &str) -> Result<String, ControlError> {
    crate::e164::normalize(number).ok_or_else(|| bad("not an E.164 number"))
}

fn no_number(e164: &str) -> ControlError {
    ControlError(StatusCode::NOT_FOUND, format!("no account has {e164}"))
}

/// Zoom support (or another tool) deletes a number: gone at once, assigned or not, and nothing tells the
/// carrier. Answers the number as it was.
async fn delete_silently(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
) -> Result<Json<Number>, ControlError> {
    let e164 = e164_of(&number)?;
    let removed = sim.write(|s| s.remove_number(&e164)).await;
    removed.map(Json).ok_or_else(|| no_number(&e164))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilentChange {
    /// Re-trunk: another of the carrier's SIP trunks.
    #[serde(default)]
    sip_trunk_name: Option<String>,
    /// Deactivate (false) or activate (true).
    #[serde(default)]
    status: Option<bool>,
    /// Reassign to another account.
    #[serde(default)]
    account_id: Option<String>,
    /// Change what the number can do, as the carrier would with a PATCH (or Zoom support without
    /// one): the listing's capability fields.
    #[serde(default)]
    voice_direction: Option<crate::numbers::VoiceDirection>,
    #[serde(default)]
    voice_msg_capacity: Option<crate::numbers::VoiceMsgCapacity>,
    #[serde(default)]
    message_capability: Option<crate::numbers::MessageCapability>,
    #[serde(default)]
    outbound_dialer_not_supported: Option<bool>,
    #[serde(default)]
    outbound_cli_share_not_supported: Option<bool>,
}

impl SilentChange {
    fn capabilities(&self) -> bool {
        self.voice_direction.is_some()
            || self.voice_msg_capacity.is_some()
            || self.message_capability.is_some()
            || self.outbound_dialer_not_supported.is_some()
            || self.outbound_cli_share_not_supported.is_some()
    }
}

/// Zoom support (or another tool) re-trunks, deactivates or reassigns a number. No webhook: Zoom
/// publishes none for such changes [doc, by absence]. A reassigned number leaves its user, caller ID
/// name, emergency address and Returned mark behind: they were the old account's [assume].
async fn change_silently(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Number>, ControlError> {
    let change: SilentChange = parse(&body)?;
    if change.sip_trunk_name.is_none()
        && change.status.is_none()
        && change.account_id.is_none()
        && !change.capabilities()
    {
        return Err(bad("give sip_trunk_name, status, account_id or a capability field"));
    }
    let e164 = e164_of(&number)?;
    if let Some(id) = &change.account_id {
        if sim.world().account(id).is_none() {
            return Err(bad(format!("account_id: no account {id}")));
        }
    }
    let carrier = sim.world().carrier();
    sim.write(|s| {
        let n = s.numbers.get(&e164).ok_or_else(|| no_number(&e164))?;
        if let Some(t) = &change.sip_trunk_name {
            // Zoom knows only the carrier's own trunks for its numbers; another carrier's are its own.
            let known = carrier.sip_trunk_names.contains(t);
            if (n.carrier_code == carrier.carrier_code && !known) || t.trim().is_empty() {
                return Err(bad(format!(
                    "sip_trunk_name: {t} is not one of the carrier's SIP trunks ({})",
                    carrier.sip_trunk_names.join(", ")
                )));
            }
        }
        let n = match &change.account_id {
            Some(to) if *to != n.account_id => {
                let n = s.move_number(&e164, to).ok_or_else(|| no_number(&e164))?;
                n.assignee = None;
                n.cnam = None;
                n.emergency_address = None;
                n.returned_at = None;
                n
            }
            _ => s.numbers.get_mut(&e164).ok_or_else(|| no_number(&e164))?,
        };
        if let Some(t) = change.sip_trunk_name {
            n.sip_trunk_name = t;
        }
        if let Some(status) = change.status {
            n.status = status;
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = change.$field { n.$field = v; } )* };
        }
        set!(
            voice_direction,
            voice_msg_capacity,
            message_capability,
            outbound_dialer_not_supported,
            outbound_cli_share_not_supported
        );
        Ok(Json(n.clone()))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// Email or id; the account's admin when absent.
    #[serde(default)]
    user: Option<String>,
}

fn number_account<'w>(
    sim: &'w Simulator,
    number: &str,
) -> Result<&'w crate::world::Account, ControlError> {
    let e164 = crate::e164::normalize(number).ok_or_else(|| bad("not an E.164 number"))?;
    let account_id = sim.read(|s| s.numbers.get(&e164).map(|n| n.account_id.clone()));
    account_id
        .and_then(|id| sim.world().account(&id))
        .ok_or_else(|| ControlError(StatusCode::NOT_FOUND, format!("no account has {e164}")))
}

/// Marks a number assigned, as the admin would in Zoom's pages; the same rules apply.
async fn assign(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Number>, ControlError> {
    let body: AssignBody = parse(&body)?;
    let account = number_account(&sim, &number)?;
    let user = match &body.user {
        Some(who) => account
            .find_user(who)
            .ok_or_else(|| bad(format!("{} has no user {who}", account.name)))?,
        None => &account.admin,
    };
    let n = sim
        .write(|s| assign_number(s, account, user, &number))
        .await
        .map_err(|e| ControlError(StatusCode::CONFLICT, e.message(&number)))?;
    Ok(Json(n))
}

/// Unbind.
async fn unassign(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
) -> Result<Json<Number>, ControlError> {
    let account = number_account(&sim, &number)?;
    let n = sim
        .write(|s| unassign_number(s, account, None, &number))
        .await
        .map_err(|e| ControlError(StatusCode::CONFLICT, e.message(&number)))?;
    Ok(Json(n))
}

/// The customer marks the number Returned, as on its page in Zoom (409 when it is assigned).
async fn mark_returned(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
) -> Result<Json<Number>, ControlError> {
    let account = number_account(&sim, &number)?;
    let now = sim.now();
    let n = sim
        .write(|s| return_number(s, account, &number, now))
        .await
        .map_err(|e| ControlError(StatusCode::CONFLICT, e.message(&number)))?;
    Ok(Json(n))
}

/// Takes the Returned mark off (for tests; Zoom's pages offer the customer no undo [assume]).
async fn unmark_returned(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
) -> Result<Json<Number>, ControlError> {
    let e164 = e164_of(&number)?;
    let n = sim
        .write(|s| {
            s.numbers.get_mut(&e164).map(|n| {
                n.returned_at = None;
                n.clone()
            })
        })
        .await;
    n.map(Json).ok_or_else(|| no_number(&e164))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CnamBody {
    cnam: String,
}

/// The customer sets a number's caller ID name; the carrier's apps are sent the CNAM events.
async fn set_cnam(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let body: CnamBody = parse(&body)?;
    change_number(&sim, &number, Change::Cnam(body.cnam)).await
}

/// The customer sets a number's emergency address; the carrier's apps are sent the address events.
async fn set_emergency_address(
    State(sim): State<Simulator>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let address: EmergencyAddress = parse(&body)?;
    let address = address.tidy().map_err(bad)?;
    change_number(&sim, &number, Change::EmergencyAddress(address)).await
}

async fn change_number(
    sim: &Simulator,
    number: &str,
    change: Change,
) -> Result<Json<Value>, ControlError> {
    let account = number_account(sim, number)?;
    let queued =
        sim.change_number(account, number, change).await.map_err(|e| bad(e.to_string()))?;
    let n = sim.read(|s| crate::e164::normalize(number).and_then(|k| s.numbers.get(&k).cloned()));
    let events: Vec<Value> = queued
        .iter()
        .map(|d| json!({ "id": d.id, "event": d.event, "client_id": d.client_id, "url": d.url }))
        .collect();
    Ok(Json(json!({ "number": n, "webhooks": events })))
}

async fn faults(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!({ "faults": sim.read(|s| s.faults.clone()) }))
}

async fn add_fault(State(sim): State<Simulator>, body: Bytes) -> Result<Response, ControlError> {
    let mut fault: Fault = parse(&body)?;
    fault.check().map_err(bad)?;
    sim.write(|s| s.faults.push(fault.clone())).await;
    Ok((StatusCode::CREATED, Json(fault)).into_response())
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.write(|s| s.faults.clear()).await;
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    /// Who removes it (email or id); the account's admin when absent.
    #[serde(default)]
    user: Option<String>,
}

/// Manage > Added Apps > Remove, without the page: tokens end and `app_deauthorized` is queued.
async fn remove_app(
    State(sim): State<Simulator>,
    Path((account_id, client_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let body: RemoveBody = parse(&body)?;
    let account = sim
        .world()
        .account(&account_id)
        .ok_or_else(|| ControlError(StatusCode::NOT_FOUND, format!("no account {account_id}")))?;
    let user = match &body.user {
        Some(who) => account
            .find_user(who)
            .ok_or_else(|| bad(format!("{} has no user {who}", account.name)))?,
        None => &account.admin,
    };
    if sim.remove_app(&account.id, &client_id, &user.id, None).await {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ControlError(
            StatusCode::NOT_FOUND,
            format!("{client_id} is not added to {account_id}"),
        ))
    }
}

/// Sends `endpoint.url_validation` to the app's event URL now and reports whether it answered right.
async fn validate_endpoint(
    State(sim): State<Simulator>,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    let app = sim
        .world()
        .app(&client_id)
        .ok_or_else(|| ControlError(StatusCode::NOT_FOUND, format!("no app {client_id}")))?;
    Ok(Json(sim.validate_endpoint(app).await))
}

async fn webhooks(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!({ "deliveries": sim.read(|s| s.deliveries.clone()) }))
}

fn clock_json(sim: &Simulator) -> Json<Value> {
    let now = sim.clock().now();
    let rfc3339 = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    Json(
        json!({ "now": rfc3339, "unix": now.unix_timestamp(), "offset_ms": sim.clock().offset_ms() }),
    )
}

async fn clock(State(sim): State<Simulator>) -> Json<Value> {
    clock_json(&sim)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    ms: u64,
}

async fn advance(State(sim): State<Simulator>, body: Bytes) -> Result<Json<Value>, ControlError> {
    let by: Advance = parse(&body)?;
    sim.clock().advance(Duration::from_secs(by.seconds) + Duration::from_millis(by.ms));
    // Persist the new offset with the rest of the state; retries that fell due go out now.
    sim.write(|_| ()).await;
    sim.wake_webhooks();
    Ok(clock_json(&sim))
}
