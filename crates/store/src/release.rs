//! Releases approved by the customer (issue 6; see the dialects).

use crate::{Result, Store};
use domain::release::{ApproveRefused, Release, ReleaseLine, RemoveResult, StartRefused};
use domain::{Actor, CustomerId, NumberId, PhoneNumber};
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    /// Starts the release of the customer's active `e164s`: all or nothing, every refusal named.
    pub async fn start_release(
        &self,
        customer: CustomerId,
        numbers: &[PhoneNumber],
        reason: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Release, StartRefused>> {
        dispatch!(self.start_release(customer, numbers, reason, by, now))
    }

    /// Withdraws what still waits in a release; `None` for an unknown release.
    pub async fn withdraw_release(
        &self,
        id: Uuid,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<usize>> {
        dispatch!(self.withdraw_release(id, by, now))
    }

    /// Releases newest first: one (`id`), a customer's, or all.
    pub async fn list_releases(
        &self,
        id: Option<Uuid>,
        customer: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<Release>> {
        dispatch!(self.list_releases(id, customer, limit))
    }

    pub async fn release_lines(&self, id: Uuid) -> Result<Vec<ReleaseLine>> {
        dispatch!(self.release_lines(id))
    }

    /// The customer's numbers waiting, releasing or refused, and those released since `released_since`.
    pub async fn customer_release_lines(
        &self,
        customer: CustomerId,
        released_since: OffsetDateTime,
    ) -> Result<Vec<ReleaseLine>> {
        dispatch!(self.customer_release_lines(customer, released_since))
    }

    /// The customer's approval: numbers `releasing` and their jobs queued, in one transaction.
    pub async fn approve_release(
        &self,
        customer: CustomerId,
        numbers: &[NumberId],
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<usize, ApproveRefused>> {
        dispatch!(self.approve_release(customer, numbers, by, now))
    }

    /// Zoom's per-number answers for a release job, with the job's end; false if the lease was lost.
    pub async fn complete_release(
        &self,
        job_id: Uuid,
        owner: &str,
        results: &[(PhoneNumber, RemoveResult)],
        until: OffsetDateTime,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self.complete_release(job_id, owner, results, until, by, now))
    }

    /// Numbers left `releasing` by a job that ended go back to `release_pending` with `message`.
    pub async fn converge_stuck_releases(
        &self,
        message: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        dispatch!(self.converge_stuck_releases(message, by, now))
    }

    /// Waiting lines whose number left `release_pending` another way are closed as withdrawn.
    pub async fn close_stale_release_lines(&self, now: OffsetDateTime) -> Result<usize> {
        dispatch!(self.close_stale_release_lines(now))
    }

    /// `aging` numbers whose quarantine is over go back to `available` (at most `limit`).
    pub async fn expire_quarantine(
        &self,
        limit: u32,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize> {
        dispatch!(self.expire_quarantine(limit, by, now))
    }

    /// What Zoom listed just now for the customer: (number, assigned to a user).
    pub async fn record_zoom_presence(
        &self,
        customer: CustomerId,
        seen: &[(PhoneNumber, bool)],
        now: OffsetDateTime,
    ) -> Result<()> {
        dispatch!(self.record_zoom_presence(customer, seen, now))
    }
}
