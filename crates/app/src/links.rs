//! Customers' links to Zoom accounts as the portals show them: the link, its history, and what Zoom
//! last said of the customer's numbers. Making and removing links is onboarding's work.

use crate::{App, Result};
use domain::onboarding::{LinkEvent, ZoomLink};
use domain::{CustomerId, PhoneNumber};
use time::OffsetDateTime;

impl App {
    /// The customer's link: the live one, else the latest removed one.
    pub async fn zoom_link(&self, customer: CustomerId) -> Result<Option<ZoomLink>> {
        Ok(self.store.zoom_link(customer).await?)
    }

    /// The customer's link history, refusals included, newest first.
    pub async fn link_events(&self, customer: CustomerId, limit: u32) -> Result<Vec<LinkEvent>> {
        Ok(self.store.link_events(customer, limit).await?)
    }

    /// Live links Zoom no longer accepts: nothing reaches Zoom for them until the app is authorized
    /// again.
    pub async fn links_needing_reauth(&self) -> Result<Vec<ZoomLink>> {
        Ok(self.store.links_needing_reauth().await?)
    }

    /// What Zoom last said of the customer's numbers: (number, assigned to a user, when asked).
    pub async fn zoom_presence(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<(PhoneNumber, Option<bool>, Option<OffsetDateTime>)>> {
        Ok(self.store.zoom_presence(customer).await?)
    }
}
