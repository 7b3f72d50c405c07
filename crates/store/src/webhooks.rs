//! Signed webhooks: the outbox's endpoints and deliveries (the events themselves are written by the
//! transactions that make the changes).

use crate::{Result, Store};
use domain::webhook::{
    AttemptOutcome, Delivery, DeliveryState, Endpoint, Finished, LeasedDelivery, OutboundEvent,
};
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    forward! {
        /// Adds an endpoint; it hears the events written from now on.
        pub async fn insert_webhook_endpoint(&self, e: &Endpoint, sealed_secret: &str) -> Result<()>;

        pub async fn webhook_endpoints(&self) -> Result<Vec<Endpoint>>;

        pub async fn webhook_endpoint(&self, id: Uuid) -> Result<Option<Endpoint>>;

        /// Saves URL, description, types and enabled; enabling starts the failure count afresh.
        pub async fn update_webhook_endpoint(&self, e: &Endpoint) -> Result<bool>;

        /// Replaces the secret; the one it replaces keeps signing until `previous_until`.
        pub async fn rotate_webhook_secret(
            &self,
            id: Uuid,
            sealed_secret: &str,
            previous_until: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn delete_webhook_endpoint(&self, id: Uuid) -> Result<bool>;

        /// Removes up to `limit` events written before `before` whose deliveries have all ended,
        /// with those deliveries; how many events.
        pub async fn prune_webhook_history(&self, before: OffsetDateTime, limit: i64) -> Result<u64>;

        /// Fans up to `limit` new events out to the endpoints that want them; how many events.
        pub async fn fan_out_events(&self, limit: i64, now: OffsetDateTime) -> Result<usize>;

        /// Leases up to `limit` due deliveries, each the earliest unfinished of its ordering key.
        pub async fn lease_deliveries(
            &self,
            owner: &str,
            lease_until: OffsetDateTime,
            limit: i64,
            now: OffsetDateTime,
        ) -> Result<Vec<LeasedDelivery>>;

        /// Records attempts (one transaction) where `owner` still holds the lease; may disable
        /// endpoints.
        pub async fn finish_deliveries(
            &self,
            attempts: &[(LeasedDelivery, AttemptOutcome, Option<OffsetDateTime>)],
            owner: &str,
            disable_after: i64,
            disable_span: time::Duration,
            now: OffsetDateTime,
        ) -> Result<Vec<Finished>>;

        /// Hands back what `owner` holds (a clean stop).
        pub async fn hand_back_deliveries(&self, owner: &str, now: OffsetDateTime) -> Result<u64>;

        pub async fn webhook_deliveries(
            &self,
            endpoint: Uuid,
            state: Option<DeliveryState>,
            limit: i64,
        ) -> Result<Vec<Delivery>>;

        /// Sends an event to an endpoint again; false when there is no such event or endpoint.
        pub async fn replay_delivery(
            &self,
            endpoint: Uuid,
            event: Uuid,
            now: OffsetDateTime,
        ) -> Result<bool>;

        /// The latest events written, newest first.
        pub async fn outbound_events(&self, limit: i64) -> Result<Vec<OutboundEvent>>;

        /// Deliveries waiting and endpoints disabled.
        pub async fn webhook_backlog(&self) -> Result<(i64, i64)>;
    }
}
