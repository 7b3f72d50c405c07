//! The peering-number events Zoom publishes (REFERENCE §2, `openapi/number-management-webhooks.json`,
//! `openapi/phone-peering-webhooks.subset.json`): a customer changed the caller ID name (CNAM) or the
//! emergency address of numbers its carrier added, and the carrier's apps on that account hear about it.
//! Zoom publishes no event for a number being assigned or unassigned [doc, by absence], so there is none.

use crate::state::SimState;
use crate::webhooks::Delivery;
use crate::world::Account;
use crate::Simulator;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const CNAM_UPDATED: &str = "number_management.peering_number_cnam_updated";
pub const EMERGENCY_ADDRESS_UPDATED: &str =
    "number_management.peering_number_emergency_address_updated";
pub const LEGACY_CNAM_UPDATED: &str = "phone.peering_number_cnam_updated";
pub const LEGACY_EMERGENCY_ADDRESS_UPDATED: &str = "phone.peering_number_emergency_address_updated";

/// Every event an app can subscribe to in a world file (`apps[].events`).
pub const PEERING_EVENTS: [&str; 4] = [
    CNAM_UPDATED,
    EMERGENCY_ADDRESS_UPDATED,
    LEGACY_CNAM_UPDATED,
    LEGACY_EMERGENCY_ADDRESS_UPDATED,
];

/// What an app subscribes to when its world entry lists no `events`: the Number Management events, the
/// generation Zoom keeps [assume].
pub const DEFAULT_EVENTS: [&str; 2] = [CNAM_UPDATED, EMERGENCY_ADDRESS_UPDATED];

/// An emergency address as the events carry it (`address_line1` required) [doc].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyAddress {
    pub address_line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl EmergencyAddress {
    /// Empty optional parts become absent; the first line must be there.
    pub fn tidy(mut self) -> Result<EmergencyAddress, String> {
        if self.address_line1.trim().is_empty() {
            return Err("address_line1 must not be empty".into());
        }
        for part in [
            &mut self.address_line2,
            &mut self.city,
            &mut self.zip,
            &mut self.state_code,
            &mut self.country,
        ] {
            if part.as_deref().is_some_and(|p| p.trim().is_empty()) {
                *part = None;
            }
        }
        Ok(self)
    }
}

/// What the customer changed on a number.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    Cnam(String),
    EmergencyAddress(EmergencyAddress),
}

impl Change {
    fn events(&self) -> [&'static str; 2] {
        match self {
            Change::Cnam(_) => [CNAM_UPDATED, LEGACY_CNAM_UPDATED],
            Change::EmergencyAddress(_) => {
                [EMERGENCY_ADDRESS_UPDATED, LEGACY_EMERGENCY_ADDRESS_UPDATED]
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    #[error("there is no such number in this account")]
    NoSuchNumber,
    #[error("a caller ID name is 1 to 15 characters")]
    BadCnam,
}

impl Simulator {
    /// The customer changes a number's CNAM or emergency address (in Zoom's pages, or through
    /// `/_sim/`): the number keeps it, and when this carrier added the number, each of the carrier's
    /// apps installed on the account with an event URL is sent the events it subscribes to.
    /// Returns the deliveries queued.
    pub(crate) async fn change_number(
        &self,
        account: &Account,
        id_or_number: &str,
        change: Change,
    ) -> Result<Vec<Delivery>, ChangeError> {
        if let Change::Cnam(c) = &change {
            // CNAM is at most 15 characters in North America [assume: the common CNAM limit].
            if c.trim().is_empty() || c.chars().count() > 15 {
                return Err(ChangeError::BadCnam);
            }
        }
        let carrier_code = self.world().carrier().carrier_code;
        let ts = self.clock().unix_ms();
        let now = self.now();
        let queued = self
            .write(|s| {
                let n = crate::phone::find_number(s, &account.id, id_or_number)
                    .ok_or(ChangeError::NoSuchNumber)?;
                match &change {
                    Change::Cnam(c) => n.cnam = Some(c.clone()),
                    Change::EmergencyAddress(a) => n.emergency_address = Some(a.clone()),
                }
                if n.carrier_code != carrier_code {
                    // Another carrier's number: its events are not this carrier's business.
                    return Ok(Vec::new());
                }
                let number = n.phone_number.clone();
                let deliveries = self.number_events(s, &account.id, &number, &change, ts, now);
                s.deliveries.extend(deliveries.iter().cloned());
                Ok(deliveries)
            })
            .await?;
        if !queued.is_empty() {
            self.ensure_webhook_worker();
            self.wake_webhooks();
        }
        Ok(queued)
    }

    fn number_events(
        &self,
        s: &SimState,
        account_id: &str,
        number: &str,
        change: &Change,
        ts: i64,
        now: i64,
    ) -> Vec<Delivery> {
        let mut installed: Vec<&str> = s
            .grants
            .values()
            .filter(|g| g.account_id == account_id)
            .map(|g| g.client_id.as_str())
            .collect();
        installed.sort_unstable();
        installed.dedup();
        let mut out = Vec::new();
        for app in installed.into_iter().filter_map(|id| self.world().app(id)) {
            let Some(url) = &app.event_url else { continue };
            for event in change.events().into_iter().filter(|e| app.subscribes(e)) {
                // The Number Management example sends `+E.164`, the Phone one bare digits [doc: the samples].
                let shown = if event.starts_with("phone.") {
                    number.trim_start_matches('+')
                } else {
                    number
                };
                let mut object = json!({ "carrier_code": self.world().carrier().carrier_code, "phone_numbers": [shown] });
                match change {
                    Change::Cnam(c) => object["cnam"] = json!(c),
                    Change::EmergencyAddress(a) => object["emergency_address"] = json!(a),
                }
                let body: Value = json!({ "event": event, "event_ts": ts, "payload": { "account_id": account_id, "object": object } });
                out.push(self.delivery(app, url, event, account_id, body.to_string(), now));
            }
        }
        out
    }
}
