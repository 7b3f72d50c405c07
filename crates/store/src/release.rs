//! Releases approved by the customer (issue 6; see the dialects).

use crate::{Result, Store};
use domain::release::{
    ApproveRefused, CarrierRelease, Release, ReleaseLine, RemoveResult, StartRefused,
};
use domain::{Actor, CustomerId, NumberId, PhoneNumber};
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    forward! {
        /// Starts the release of the customer's active `e164s`: all or nothing, every refusal
        /// named.
        pub async fn start_release(
            &self,
            customer: CustomerId,
            numbers: &[PhoneNumber],
            reason: &str,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<Release, StartRefused>>;

        /// Starts a release without the customer's approval (port-out, contract end, returned);
        /// due from `carrier.due_at`.
        pub async fn start_carrier_release(
            &self,
            customer: CustomerId,
            numbers: &[PhoneNumber],
            reason: &str,
            carrier: &CarrierRelease,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<Release, StartRefused>>;

        /// Takes the due lines of releases without approval (or all of `only`'s, forced) into
        /// removal jobs; returns how many.
        pub async fn take_due_releases(
            &self,
            only: Option<Uuid>,
            retry_before: OffsetDateTime,
            limit: u32,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<usize>;

        /// Customers whose contract ended with every number out, with their live Zoom account.
        pub async fn contract_ends_done(
            &self,
            now: OffsetDateTime,
        ) -> Result<Vec<(CustomerId, domain::ZoomAccountId)>>;

        /// Withdraws what still waits in a release; `None` for an unknown release.
        pub async fn withdraw_release(
            &self,
            id: Uuid,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<Option<usize>>;

        /// Releases newest first: one (`id`), a customer's, or all.
        pub async fn list_releases(
            &self,
            id: Option<Uuid>,
            customer: Option<CustomerId>,
            limit: u32,
        ) -> Result<Vec<Release>>;

        pub async fn release_lines(&self, id: Uuid) -> Result<Vec<ReleaseLine>>;

        /// The customer's numbers waiting, releasing or refused, and those released since
        /// `released_since`.
        pub async fn customer_release_lines(
            &self,
            customer: CustomerId,
            released_since: OffsetDateTime,
        ) -> Result<Vec<ReleaseLine>>;

        /// The customer's approval: numbers `releasing` and their jobs queued, in one transaction.
        pub async fn approve_release(
            &self,
            customer: CustomerId,
            numbers: &[NumberId],
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<usize, ApproveRefused>>;

        /// Zoom's per-number answers for a release job, with the job's end; false if the lease was
        /// lost.
        pub async fn complete_release(
            &self,
            job_id: Uuid,
            owner: &str,
            results: &[(PhoneNumber, RemoveResult)],
            until: OffsetDateTime,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<bool>;

        /// Numbers left `releasing` by a job that ended go back to `release_pending` with
        /// `message`.
        pub async fn converge_stuck_releases(
            &self,
            message: &str,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<usize>;

        /// Waiting lines whose number left `release_pending` another way are closed as withdrawn.
        pub async fn close_stale_release_lines(&self, now: OffsetDateTime) -> Result<usize>;

        /// `aging` numbers whose quarantine is over go back to `available` (at most `limit`).
        pub async fn expire_quarantine(
            &self,
            limit: u32,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<usize>;

        /// What Zoom listed just now for the customer: (number, assigned to a user).
        pub async fn record_zoom_presence(
            &self,
            customer: CustomerId,
            seen: &[(PhoneNumber, bool)],
            now: OffsetDateTime,
        ) -> Result<()>;
    }
}
