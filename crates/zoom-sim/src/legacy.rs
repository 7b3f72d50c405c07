//! The legacy Phone API generation of the Provider Exchange API (`/v2/phone/peering/numbers`,
//! `/v2/phone/carrier_peering/numbers`; `openapi/phone-peering-and-users.subset.openapi.json`), over the
//! same numbers as [`crate::peering`]. Its differences (REFERENCE §1 [doc]): integer 0/1 flags,
//! `billing_reference_id` of at most 32 characters, pages of at most 200, and partial failure inside a
//! 2xx body as `unprocessed_numbers`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::faults::InjectedFailures;
use crate::json::{self, Query};
use crate::numbers::{self, Add, Attributes, Failure, Number, Update};
use crate::peering::{
    check_zoom_phone, numbers_to_remove, page_of_numbers, require_carrier_account, MAX_BATCH,
};
use crate::Simulator;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

const READ: &[&str] =
    &["phone:read:admin", "phone_peering:read:admin", "phone:read:list_peering_numbers:admin"];
const ADD: &[&str] =
    &["phone:write:admin", "phone_peering:write:admin", "phone:write:peering_number:admin"];
const UPDATE: &[&str] =
    &["phone:write:admin", "phone_peering:write:admin", "phone:update:peering_number:admin"];
const DELETE: &[&str] =
    &["phone:write:admin", "phone_peering:write:admin", "phone:delete:peering_number:admin"];

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/v2/phone/peering/numbers", get(list).post(add).patch(update).delete(remove))
        .route("/v2/phone/carrier_peering/numbers", get(list_carrier))
}

/// `0` or `1`, the legacy generation's booleans.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<u8>::deserialize(d)? {
        None => Ok(None),
        Some(0) => Ok(Some(false)),
        Some(1) => Ok(Some(true)),
        Some(_) => Err(serde::de::Error::custom("must be 0 or 1")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    carrier_code: Option<i64>,
    #[serde(default)]
    phone_numbers: Vec<InItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InItem {
    phone_number: String,
    #[serde(default)]
    sip_trunk_name: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    status: Option<bool>,
    #[serde(default)]
    billing_reference_id: Option<String>,
    #[serde(default)]
    service_info: Option<String>,
}

impl InItem {
    fn check(&self, i: usize, adding: bool) -> Result<(), ApiError> {
        let field = |name: &str| format!("phone_numbers[{i}].{name}");
        if adding && self.sip_trunk_name.is_none() {
            return Err(ApiError::validation(&field("sip_trunk_name"), "is required"));
        }
        if adding && self.status.is_none() {
            return Err(ApiError::validation(&field("status"), "is required"));
        }
        if self.billing_reference_id.as_ref().is_some_and(|b| b.chars().count() > 32) {
            return Err(ApiError::validation(
                &field("billing_reference_id"),
                "must be at most 32 characters",
            ));
        }
        if self.service_info.as_ref().is_some_and(|s| s.chars().count() > 255) {
            return Err(ApiError::validation(
                &field("service_info"),
                "must be at most 255 characters",
            ));
        }
        Ok(())
    }

    fn attributes(&mut self) -> Attributes {
        Attributes {
            billing_ref_id: self.billing_reference_id.take(),
            service_info: self.service_info.take(),
            ..Attributes::default()
        }
    }
}

fn check_carrier(sim: &Simulator, code: Option<i64>) -> Result<(), ApiError> {
    match code {
        Some(c) if c != i64::from(sim.world().carrier().carrier_code) => {
            Err(ApiError::bad_request(404, "Unknown carrier."))
        }
        _ => Ok(()),
    }
}

fn check_batch(len: usize) -> Result<(), ApiError> {
    match len {
        // Not published for this generation [assume].
        0 => Err(ApiError::validation("phone_numbers", "must contain at least one phone number")),
        n if n > MAX_BATCH => Err(ApiError::bad_request(
            300,
            "Validation Failed. Batch adding phone numbers is limited to 200 per request.",
        )),
        _ => Ok(()),
    }
}

/// Partial results ride in the 2xx body; the list is always present, empty when all went well [assume].
fn unprocessed(status: StatusCode, failures: Vec<Failure>) -> Response {
    let list: Vec<_> = failures
        .into_iter()
        .map(|f| json!({ "phone_number": f.phone_number, "failure_reason": f.reason.text() }))
        .collect();
    (status, Json(json!({ "unprocessed_numbers": list }))).into_response()
}

async fn add(
    State(sim): State<Simulator>,
    caller: Caller,
    injected: Option<Extension<InjectedFailures>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(ADD)?;
    let body: Body = json::body(&body)?;
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
            let attributes = i.attributes();
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
    Ok(unprocessed(StatusCode::CREATED, failures))
}

async fn update(
    State(sim): State<Simulator>,
    caller: Caller,
    injected: Option<Extension<InjectedFailures>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(UPDATE)?;
    let body: Body = json::body(&body)?;
    check_carrier(&sim, body.carrier_code)?;
    check_batch(body.phone_numbers.len())?;
    for (i, item) in body.phone_numbers.iter().enumerate() {
        item.check(i, false)?;
    }
    let items = body
        .phone_numbers
        .into_iter()
        .map(|mut i| {
            let attributes = i.attributes();
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
    Ok(unprocessed(StatusCode::OK, failures))
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
    Ok(unprocessed(StatusCode::OK, failures))
}

#[derive(Serialize)]
struct Item {
    phone_number: String,
    sip_trunk_name: String,
    status: u8,
    assigned: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    billing_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_account_number: Option<String>,
}

impl Item {
    fn from(n: Number) -> Item {
        Item {
            assigned: u8::from(n.assigned()),
            status: u8::from(n.status),
            phone_number: n.phone_number,
            sip_trunk_name: n.sip_trunk_name,
            billing_reference_id: n.billing_ref_id,
            service_info: n.service_info,
            customer_account_name: None,
            customer_account_number: None,
        }
    }
}

async fn list(
    State(sim): State<Simulator>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    let q = Query::parse(&uri);
    check_carrier(&sim, q.int("carrier_code")?)?;
    let page = page_of_numbers(&sim, &q, "legacy", Some(&caller.account_id), 200).await?;
    let numbers: Vec<Item> = page.items.into_iter().map(Item::from).collect();
    Ok(Json(json!({ "next_page_token": page.next_page_token, "numbers": numbers, "total_records": page.total_records })).into_response())
}

async fn list_carrier(
    State(sim): State<Simulator>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    require_carrier_account(&sim, &caller)?;
    let q = Query::parse(&uri);
    // The July 2026 `customer_account_number` filter came to the Number Management generation only; the
    // deprecated Phone generation lists every customer's numbers whatever it is given [assume].
    let page = page_of_numbers(&sim, &q, "legacy-carrier", None, 200).await?;
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
