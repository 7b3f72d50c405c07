//! What Zoom tells the carrier about its customers' numbers: the emergency (E911) address and the
//! caller ID name (CNAM) a customer sets in Zoom, which Zoom announces in signed events, and the
//! capabilities Zoom lists for each number. Recorded per number with their history; an active
//! number the carrier requires an address for and that has none is flagged.
//!
//! Only the Zoom account a number's customer is linked to may speak for the number: an event from
//! any other account changes nothing for it.

use crate::onboarding::{WebhookAnswer, WebhookRefused};
use crate::{App, Result};
use domain::zoom_facts::{
    Cnam, E911Required, EmergencyAddress, FactChange, FactOutcome, FactRecord, NumberFacts,
    ZoomListing, ZoomNumberEvent,
};
use domain::{Number, NumberId, PhoneNumber, ZoomAccountId};
use std::collections::HashMap;
use zoom::webhook::{NumberChange, NumberChanged, WebhookError};

/// What one number event did, number by number (as Zoom wrote them).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FactsRecorded {
    pub recorded: Vec<String>,
    /// Recorded before: a redelivery, or the event's twin of the other generation.
    pub already: Vec<String>,
    /// Not numbers of the customer linked to the sending account.
    pub refused: Vec<String>,
}

/// A number as Zoom wrote it in an event: `+E.164`, or bare digits in the legacy `phone.*` events.
fn phone(raw: &str) -> Option<PhoneNumber> {
    let raw = raw.trim();
    let plus = if raw.starts_with('+') { raw.to_owned() } else { format!("+{raw}") };
    PhoneNumber::parse(&plus).ok()
}

fn change(c: &NumberChange) -> std::result::Result<FactChange, WebhookError> {
    let bad = |e: domain::zoom_facts::FactError| WebhookError::Malformed(e.to_string());
    Ok(match c {
        NumberChange::Cnam(c) => FactChange::Cnam { cnam: Cnam::parse(c).map_err(bad)? },
        NumberChange::EmergencyAddress(a) => FactChange::EmergencyAddress {
            address: EmergencyAddress::new(
                &a.address_line1,
                a.address_line2.as_deref(),
                a.city.as_deref(),
                a.zip.as_deref(),
                a.state_code.as_deref(),
                a.country.as_deref(),
            )
            .map_err(bad)?,
        },
    })
}

/// The capability fields of a listed number, as kept.
pub(crate) fn listing(c: &zoom::Capabilities) -> ZoomListing {
    ZoomListing {
        number_type: c.number_type.clone(),
        voice_direction: c.voice_direction.clone(),
        voice_msg_capacity: c.voice_msg_capacity.clone(),
        message_capability: c.message_capability.clone(),
        outbound_dialer_not_supported: c.outbound_dialer_not_supported,
        outbound_cli_share_not_supported: c.outbound_cli_share_not_supported,
    }
}

impl App {
    /// A verified emergency-address or CNAM event: recorded for each of its numbers that belongs to
    /// the customer linked to the sending Zoom account. Refused whole when none of them does.
    pub(crate) async fn on_number_event(
        &self,
        e: NumberChanged,
    ) -> Result<std::result::Result<WebhookAnswer, WebhookRefused>> {
        let Ok(account) = ZoomAccountId::parse(&e.account_id) else {
            return Ok(Err(WebhookRefused::UnknownAccount(e.account_id)));
        };
        let change = match change(&e.change) {
            Ok(c) => c,
            Err(err) => return Ok(Err(err.into())),
        };
        let Some(link) = self.store.live_link_by_account(&account).await? else {
            return Ok(Err(WebhookRefused::UnknownAccount(e.account_id)));
        };
        let mut done = FactsRecorded::default();
        let mut numbers = Vec::new();
        for raw in &e.phone_numbers {
            match phone(raw) {
                Some(n) => numbers.push((raw.clone(), n)),
                None => done.refused.push(raw.clone()),
            }
        }
        let event = ZoomNumberEvent {
            event_id: e.event_id,
            account,
            event_ts: e.event_ts,
            numbers: numbers.iter().map(|(_, n)| n.clone()).collect(),
            change,
        };
        let outcomes = self.store.record_number_fact(link.customer_id, &event, self.now()).await?;
        for ((raw, _), outcome) in numbers.into_iter().zip(outcomes) {
            match outcome {
                FactOutcome::Recorded => done.recorded.push(raw),
                FactOutcome::AlreadyRecorded => done.already.push(raw),
                FactOutcome::NotTheCustomers => done.refused.push(raw),
            }
        }
        if !done.refused.is_empty() {
            tracing::warn!(customer = %link.customer_id, zoom_account = %event.account, refused = done.refused.len(), first = ?done.refused.first(), kind = event.change.kind(), "Zoom event names numbers that are not the linked customer's; not recorded for them");
        }
        if done.recorded.is_empty() && done.already.is_empty() {
            return Ok(Err(WebhookRefused::NotTheAccountsNumbers(done.refused)));
        }
        tracing::info!(customer = %link.customer_id, zoom_account = %event.account, kind = event.change.kind(), recorded = done.recorded.len(), already = done.already.len(), "number event from Zoom");
        // The check after a webhook. Zoom's number events carry only the emergency address or the
        // caller ID name, nothing of what reconciliation compares (account, trunk, status,
        // Returned), and Zoom sends no event when those change: the account's next full cycle is
        // brought forward instead, so what changed with the event is compared within a tick.
        self.reconcile_soon(&crate::reconcile::account_scope(&event.account)).await;
        Ok(Ok(WebhookAnswer::NumberFacts(done)))
    }

    /// What Zoom said of each of `numbers` for its current customer (absent: nothing yet).
    pub async fn number_facts(&self, numbers: &[Number]) -> Result<HashMap<NumberId, NumberFacts>> {
        let ids: Vec<NumberId> =
            numbers.iter().filter(|n| n.customer_id.is_some()).map(|n| n.id).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.store.number_facts(&ids).await?)
    }

    /// Every emergency-address and CNAM event recorded for a number, newest change first.
    pub async fn number_fact_history(&self, id: NumberId) -> Result<Vec<FactRecord>> {
        Ok(self.store.number_fact_history(id).await?)
    }

    /// Which numbers the carrier requires an emergency address for.
    pub fn e911_required(&self) -> &E911Required {
        &self.settings.e911_required
    }

    /// Whether the number is active without the emergency address the carrier requires.
    pub fn e911_flagged(&self, n: &Number, facts: Option<&NumberFacts>) -> bool {
        self.settings.e911_required.flags(&n.e164, n.state, facts)
    }

    /// The search filter for flagged numbers; `None` when the carrier requires no address (then
    /// no number is flagged).
    pub fn missing_address_filter(&self) -> Option<Vec<String>> {
        self.settings.e911_required.prefixes().map(<[String]>::to_vec)
    }

    /// How many numbers are flagged (0 when no address is required).
    pub async fn count_missing_emergency_address(&self) -> Result<i64> {
        match self.settings.e911_required.prefixes() {
            Some(p) => Ok(self.store.count_missing_emergency_address(p).await?),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_bare_digits_are_read_as_e164() {
        assert_eq!(phone("18008001000").map(|p| p.to_string()).as_deref(), Some("+18008001000"));
        assert_eq!(phone(" +18008001000 ").map(|p| p.to_string()).as_deref(), Some("+18008001000"));
        assert_eq!(phone("not a number"), None);
    }
}
