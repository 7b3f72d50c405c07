//! What Zoom says about customers' numbers: emergency addresses and caller ID names (from Zoom's
//! events, with their history) and capabilities (from Zoom's listings).

use crate::{Result, Store};
use domain::zoom_facts::{FactOutcome, FactRecord, NumberFacts, ZoomListing, ZoomNumberEvent};
use domain::{CustomerId, NumberId, PhoneNumber};
use std::collections::HashMap;
use time::OffsetDateTime;

impl Store {
    /// Records `event` for each of its numbers that is `customer`'s (the customer linked to the Zoom
    /// account that sent it), once per event and number; a current value is replaced only by a
    /// newer change. One outcome per number of the event, in its order.
    pub async fn record_number_fact(
        &self,
        customer: CustomerId,
        event: &ZoomNumberEvent,
        now: OffsetDateTime,
    ) -> Result<Vec<FactOutcome>> {
        let numbers: Vec<&str> = event.numbers.iter().map(PhoneNumber::as_str).collect();
        let (account, id, ts, change) =
            (event.account.as_str(), event.event_id.as_str(), event.event_ts, &event.change);
        dispatch!(self.record_number_fact(customer, account, id, ts, change, &numbers, now))
    }

    /// Keeps the capabilities Zoom listed for `customer`'s numbers (others are left alone).
    pub async fn record_zoom_listing(
        &self,
        customer: CustomerId,
        listed: &[(String, ZoomListing)],
        now: OffsetDateTime,
    ) -> Result<()> {
        dispatch!(self.record_zoom_listing(customer, listed, now))
    }

    /// What is held now for each of `ids` from its current customer's Zoom (absent: nothing).
    pub async fn number_facts(&self, ids: &[NumberId]) -> Result<HashMap<NumberId, NumberFacts>> {
        Ok(dispatch!(self.number_facts(ids))?.into_iter().collect())
    }

    /// Every emergency-address and CNAM event recorded for the number, newest change first.
    pub async fn number_fact_history(&self, id: NumberId) -> Result<Vec<FactRecord>> {
        dispatch!(self.number_fact_history(id))
    }

    /// Active numbers starting with one of `prefixes` (any when empty) without an emergency address.
    pub async fn count_missing_emergency_address(&self, prefixes: &[String]) -> Result<i64> {
        dispatch!(self.count_missing_emergency_address(prefixes))
    }
}
