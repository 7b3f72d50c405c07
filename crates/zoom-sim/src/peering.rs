//! The Number Management generation of the Provider Exchange API (REFERENCE §1,
//! `openapi/number-management.openapi.json`, tag "Cloud Peering Provider Exchange").

use crate::auth::Caller;
use crate::error::ApiError;
use crate::faults::InjectedFailures;
use crate::json::{self, Query};
use crate::numbers::{
    self, Add, AllocatedProduct, Attributes, Failure, MessageCapability, Number, NumberType,
    PoolStatus, Update, VoiceDirection, VoiceMsgCapacity,
};
use crate::Simulator;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

const PATH: &str = "/v2/number_management/peering_numbers";

// Scopes per operation, classic then granular, as the OpenAPI's `security` lists them [doc].
const READ: &[&str] =
    &["number_management_numbers:read:admin", "number_management:read:list_peering_numbers:admin"];
const READ_CARRIER: &[&str] = &[
    "number_management_numbers:read:admin",
    "number_management:read:list_carrier_peering_numbers:admin",
];
const ADD: &[&str] =
    &["number_management_numbers:write:admin", "number_management:write:peering_number:admin"];
const UPDATE: &[&str] =
    &["number_management_numbers:write:admin", "number_management:update:peering_number:admin"];
const DELETE: &[&str] =
    &["number_management_numbers:write:admin", "number_management:delete:peering_number:admin"];

pub(crate) const MAX_BATCH: usize = 200;

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route(PATH, get(list).post(add).patch(update).delete(remove))
        .route("/v2/number_management/carrier/peering_numbers", get(list_carrier))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<T> {
    #[serde(default)]
    carrier_code: Option<i64>,
    #[serde(default)]
    allocated_product: Option<AllocatedProduct>,
    // Required by the schema; an absent list is "empty" (1002) rather than a validation error.
    #[serde(default = "Vec::new")]
    phone_numbers: Vec<T>,
}

/// One number in a POST or PATCH body. Unknown fields are refused rather than ignored, so a client that
/// sends the legacy generation's names (`billing_reference_id`) here finds out [assume].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InItem {
    phone_number: String,
    #[serde(default)]
    sip_trunk_name: Option<String>,
    #[serde(default)]
    status: Option<bool>,
    #[serde(default)]
    billing_ref_id: Option<String>,
    #[serde(default)]
    service_info: Option<String>,
    #[serde(default)]
    number_type: Option<NumberType>,
    #[serde(default)]
    voice_direction: Option<VoiceDirection>,
    #[serde(default)]
    voice_msg_capacity: Option<VoiceMsgCapacity>,
    #[serde(default)]
    outbound_dialer_not_supported: Option<bool>,
    #[serde(default)]
    outbound_cli_share_not_supported: Option<bool>,
    #[serde(default)]
    message_capability: Option<MessageCapability>,
}

impl InItem {
    fn attributes(&mut self, allocated_product: Option<AllocatedProduct>) -> Attributes {
        Attributes {
            allocated_product,
            billing_ref_id: self.billing_ref_id.take(),
            service_info: self.service_info.take(),
            number_type: self.number_type,
            voice_direction: self.voice_direction,
            voice_msg_capacity: self.voice_msg_capacity,
            outbound_dialer_not_supported: self.outbound_dialer_not_supported,
            outbound_cli_share_not_supported: self.outbound_cli_share_not_supported,
            message_capability: self.message_capability,
        }
    }

    /// The schema's required fields (POST: `sip_trunk_name`, `status`) and length limits
    /// (`billing_ref_id` <= 60, `service_info` <= 255) [doc].
    fn check(&self, i: usize, adding: bool) -> Result<(), ApiError> {
        if adding && self.sip_trunk_name.is_none() {
            return Err(ApiError::validation(
                &format!("phone_numbers[{i}].sip_trunk_name"),
                "is required",
            ));
        }
        if adding && self.status.is_none() {
            return Err(ApiError::validation(&format!("phone_numbers[{i}].status"), "is required"));
        }
        if self.billing_ref_id.as_ref().is_some_and(|b| b.chars().count() > 60) {
            return Err(ApiError::validation(
                &format!("phone_numbers[{i}].billing_ref_id"),
                "must be at most 60 characters",
            ));
        }
        if self.service_info.as_ref().is_some_and(|s| s.chars().count() > 255) {
            return Err(ApiError::validation(
                &format!("phone_numbers[{i}].service_info"),
                "must be at most 255 characters",
            ));
        }
        Ok(())
    }
}

/// The carrier named in a request must be the caller's: its token names the app, and the app the
/// carrier (REFERENCE §1 [doc]).
pub(crate) fn check_carrier(sim: &Simulator, code: Option<i64>) -> Result<(), ApiError> {
    match code {
        Some(c) if c != i64::from(sim.world().carrier().carrier_code) => {
            Err(ApiError::bad_request(1001, "Carrier not found"))
        }
        _ => Ok(()),
    }
}

fn check_batch(len: usize) -> Result<(), ApiError> {
    match len {
        0 => Err(ApiError::bad_request(1002, "Request data cannot be empty")),
        n if n > MAX_BATCH => {
            Err(ApiError::bad_request(1003, "Too many numbers, should less than 200"))
        }
        _ => Ok(()),
    }
}

/// The carrier-wide listing is the Provider Portal's (`x-permissions: ProviderPortal:Read` [doc]), and the
/// Provider Portal exists only in the carrier's own bound account [doc: Zoom support KB0076464]: a token of
/// any other account, such as the carrier app's token on a customer's account, is refused. The OpenAPI
/// declares 403 "You do not have permission."; the body's code is not published [assume].
pub(crate) fn require_carrier_account(sim: &Simulator, caller: &Caller) -> Result<(), ApiError> {
    match sim.world().carrier_account() {
        Some(a) if a.id == caller.account_id => Ok(()),
        _ => Err(ApiError::new(StatusCode::FORBIDDEN, 403, "You do not have permission.")),
    }
}

/// Zoom accepts peering numbers only for accounts with Zoom Phone (or Contact Center) [doc]; the error
/// for one without is not published [assume].
pub(crate) fn check_zoom_phone(sim: &Simulator, account_id: &str) -> Result<(), ApiError> {
    match sim.world().account(account_id) {
        Some(a) if a.zoom_phone => Ok(()),
        _ => Err(ApiError::bad_request(300, "Zoom Phone has not been enabled for this account.")),
    }
}

/// The per-number failures of a batch: `400 {"code":1000,"message":"Some data failed.","errors":[...]}`
/// (REFERENCE §1 [assume] for the list's shape).
fn some_data_failed(failures: Vec<Failure>) -> Result<Response, ApiError> {
    let errors = failures
        .into_iter()
        .map(|f| json!({ "phone_number": f.phone_number, "reason": f.reason.text() }))
        .collect();
    Err(ApiError::bad_request(1000, "Some data failed.").with_errors(errors))
}

async fn add(
    State(sim): State<Simulator>,
    caller: Caller,
    injected: Option<Extension<InjectedFailures>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(ADD)?;
    let body: Body<InItem> = json::body(&body)?;
    check_carrier(&sim, body.carrier_code)?;
    check_batch(body.phone_numbers.len())?;
    for (i, item) in body.phone_numbers.iter().enumerate() {
        item.check(i, true)?;
    }
    check_zoom_phone(&sim, &caller.account_id)?;
    let items = body
        .phone_numbers
        .into_iter()
        .filter_map(|mut i| {
            let attributes = i.attributes(body.allocated_product);
            // Both were checked above.
            Some(Add {
                sip_trunk_name: i.sip_trunk_name?,
                status: i.status?,
                phone_number: i.phone_number,
                attributes,
            })
        })
        .collect();
    let now = sim.now();
    let failures = sim
        .write(|s| {
            numbers::add(
                s,
                &numbers::Scope {
                    world: sim.world(),
                    account_id: &caller.account_id,
                    injected: injected.as_ref().map(|e| &e.0),
                },
                items,
                now,
            )
        })
        .await;
    if failures.is_empty() {
        Ok(StatusCode::CREATED.into_response())
    } else {
        some_data_failed(failures)
    }
}

async fn update(
    State(sim): State<Simulator>,
    caller: Caller,
    injected: Option<Extension<InjectedFailures>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(UPDATE)?;
    let body: Body<InItem> = json::body(&body)?;
    check_carrier(&sim, body.carrier_code)?;
    check_batch(body.phone_numbers.len())?;
    for (i, item) in body.phone_numbers.iter().enumerate() {
        item.check(i, false)?;
    }
    let items = body
        .phone_numbers
        .into_iter()
        .map(|mut i| {
            let attributes = i.attributes(body.allocated_product);
            Update {
                phone_number: i.phone_number,
                sip_trunk_name: i.sip_trunk_name,
                status: i.status,
                attributes,
            }
        })
        .collect();
    let failures = sim
        .write(|s| {
            numbers::update(
                s,
                &numbers::Scope {
                    world: sim.world(),
                    account_id: &caller.account_id,
                    injected: injected.as_ref().map(|e| &e.0),
                },
                items,
            )
        })
        .await;
    if failures.is_empty() {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        some_data_failed(failures)
    }
}

/// The numbers to remove: repeated `phone_numbers` query parameters, a comma list, or a JSON body
/// `{"phone_numbers": [...]}`; sources disagree on which Zoom takes, so all three [assume].
pub(crate) fn numbers_to_remove(q: &Query, body: &[u8]) -> Result<Vec<String>, ApiError> {
    let mut numbers = q.list("phone_numbers");
    if numbers.is_empty() && !body.iter().all(u8::is_ascii_whitespace) {
        #[derive(Deserialize)]
        struct RemoveBody {
            #[serde(default)]
            phone_numbers: Vec<String>,
        }
        numbers = json::body::<RemoveBody>(body)?.phone_numbers;
    }
    Ok(numbers)
}

async fn remove(
    State(sim): State<Simulator>,
    caller: Caller,
    injected: Option<Extension<InjectedFailures>>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(DELETE)?;
    let q = Query::parse(&uri);
    check_carrier(&sim, q.int("carrier_code")?)?;
    let numbers = numbers_to_remove(&q, &body)?;
    check_batch(numbers.len())?;
    let failures = sim
        .write(|s| {
            numbers::remove(
                s,
                &numbers::Scope {
                    world: sim.world(),
                    account_id: &caller.account_id,
                    injected: injected.as_ref().map(|e| &e.0),
                },
                numbers,
            )
        })
        .await;
    if failures.is_empty() {
        Ok(StatusCode::OK.into_response())
    } else {
        some_data_failed(failures)
    }
}

#[derive(Serialize)]
struct Item {
    phone_number: String,
    sip_trunk_name: String,
    status: bool,
    assigned: bool,
    allocated_product: AllocatedProduct,
    #[serde(skip_serializing_if = "Option::is_none")]
    billing_ref_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_info: Option<String>,
    voice_direction: VoiceDirection,
    voice_msg_capacity: VoiceMsgCapacity,
    outbound_dialer_not_supported: bool,
    outbound_cli_share_not_supported: bool,
    message_capability: MessageCapability,
    /// Whether the customer gave the number back (Returned) [assume, see [`PoolStatus`]].
    number_pool_status: PoolStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_account_number: Option<String>,
}

impl Item {
    fn from(n: Number) -> Item {
        Item {
            assigned: n.assigned(),
            number_pool_status: n.pool_status(),
            phone_number: n.phone_number,
            sip_trunk_name: n.sip_trunk_name,
            status: n.status,
            allocated_product: n.allocated_product,
            billing_ref_id: n.billing_ref_id,
            service_info: n.service_info,
            voice_direction: n.voice_direction,
            voice_msg_capacity: n.voice_msg_capacity,
            outbound_dialer_not_supported: n.outbound_dialer_not_supported,
            outbound_cli_share_not_supported: n.outbound_cli_share_not_supported,
            message_capability: n.message_capability,
            customer_account_name: None,
            customer_account_number: None,
        }
    }
}

/// A page of the carrier's numbers in one account (Some) or in all of them (None). `listing` names the
/// listing, so that its page tokens are refused by any other.
pub(crate) async fn page_of_numbers(
    sim: &Simulator,
    q: &Query,
    listing: &str,
    account: Option<&str>,
    max_page: usize,
) -> Result<crate::state::Page<Number>, ApiError> {
    let page_size = q.page_size(30, max_page)?;
    // A filter that is not a number matches nothing rather than failing [assume].
    let filter = q
        .get("phone_number")
        .filter(|f| !f.trim().is_empty())
        .map(|f| crate::e164::normalize(f).unwrap_or_default());
    let scope = format!("{listing}:{}:{}", account.unwrap_or("*"), filter.as_deref().unwrap_or(""));
    let (now, ttl) =
        (sim.now(), i64::try_from(sim.options().page_token_ttl.as_secs()).unwrap_or(i64::MAX));
    // Read under the lock, and write only when there is a next page to remember: the common one-page
    // listing then costs no write.
    let (page, cursor) = sim
        .read(|s| {
            let after = s.resume_after(&scope, q.get("next_page_token"), now)?;
            let (total, rest) =
                numbers::carrier_numbers(s, sim.world(), account, filter.as_deref(), after);
            let rest = rest.map(|n| (n.phone_number.clone(), n));
            let (page, cursor) = crate::state::page_from(&scope, page_size, now, ttl, total, rest);
            let page = crate::state::Page {
                items: page.items.into_iter().cloned().collect(),
                next_page_token: page.next_page_token,
                total_records: page.total_records,
            };
            Ok::<_, crate::state::BadPageToken>((page, cursor))
        })
        // Zoom's answer to an unknown or expired page token is not published [assume].
        .map_err(|_| ApiError::bad_request(300, "The next page token is invalid or expired."))?;
    if let Some((token, c)) = cursor {
        sim.write(|s| s.page_tokens.insert(token, c)).await;
    }
    Ok(page)
}

async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    let q = Query::parse(&uri);
    check_carrier(&sim, q.int("carrier_code")?)?;
    let page = page_of_numbers(&sim, &q, "peering", Some(&caller.account_id), 300).await?;
    let numbers: Vec<Item> = page.items.into_iter().map(Item::from).collect();
    Ok(Json(ListBody {
        next_page_token: page.next_page_token,
        numbers,
        total_records: page.total_records,
    })
    .into_response())
}

/// A page of the listing, serialized straight from its items (this is the hottest answer).
#[derive(Serialize)]
struct ListBody {
    next_page_token: String,
    numbers: Vec<Item>,
    total_records: usize,
}

async fn list_carrier(
    State(sim): State<Simulator>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(READ_CARRIER)?;
    require_carrier_account(&sim, &caller)?;
    let q = Query::parse(&uri);
    // Zoom added `customer_account_number` in July 2026 [doc: changelog]; an account number no customer
    // has lists nothing (the empty id is no account's).
    let account = q
        .get("customer_account_number")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| sim.world().account_by_number(f).map(|a| a.id.as_str()).unwrap_or(""));
    let page = page_of_numbers(&sim, &q, "carrier", account, 300).await?;
    let numbers: Vec<Item> = page
        .items
        .into_iter()
        .map(|n| {
            let account = sim
                .world()
                .account(&n.account_id)
                .map(|a| (a.name.clone(), a.account_number.clone()));
            let mut item = Item::from(n);
            if let Some((name, number)) = account {
                item.customer_account_name = Some(name);
                item.customer_account_number = Some(number);
            }
            item
        })
        .collect();
    Ok(Json(json!({ "next_page_token": page.next_page_token, "numbers": numbers, "total_records": page.total_records })).into_response())
}
