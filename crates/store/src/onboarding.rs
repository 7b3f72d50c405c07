//! Onboarding: Zoom links, encrypted tokens, pending installs, the jobs outbox (see the dialects).

use crate::{Result, Store};
use domain::onboarding::{
    BudgetUse, Job, JobEnd, JobState, LinkEvent, LinkRefused, PendingInstall, PushResult,
    StoredTokens, Unlinked, ZoomLink,
};
use domain::{Actor, CustomerId, Number, OrderId, PhoneNumber, ZoomAccountId};
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    forward! {
        /// Keeps an exchanged install until a customer admin confirms it, under the hash of the
        /// browser's cookie. Expired installs are dropped on the way.
        pub async fn insert_pending_install(&self, id_hash: &str, p: &PendingInstall) -> Result<()>;

        /// The install waiting under `id_hash`, unless expired.
        pub async fn pending_install(
            &self,
            id_hash: &str,
            now: OffsetDateTime,
        ) -> Result<Option<PendingInstall>>;

        /// The install waiting under `id_hash`, once: taking it deletes it. Expired installs are
        /// not returned.
        pub async fn take_pending_install(
            &self,
            id_hash: &str,
            now: OffsetDateTime,
        ) -> Result<Option<PendingInstall>>;

        /// New tokens for the account's live link: kept, the need for re-authorization cleared, the
        /// account's waiting jobs due now. `None` without a live link for the account.
        pub async fn renew_link_tokens(
            &self,
            account: &ZoomAccountId,
            zoom_user: &str,
            tokens: &StoredTokens,
            now: OffsetDateTime,
        ) -> Result<Option<ZoomLink>>;

        /// Marks the link as needing re-authorization if its tokens are still those of
        /// `generation`.
        pub async fn mark_link_reauth(
            &self,
            link_id: Uuid,
            generation: i64,
            reason: &str,
            now: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn links_needing_reauth(&self) -> Result<Vec<ZoomLink>>;

        /// The customer's link: the live one, else the latest removed one.
        pub async fn zoom_link(&self, customer: CustomerId) -> Result<Option<ZoomLink>>;

        pub async fn live_link_by_account(
            &self,
            account: &ZoomAccountId,
        ) -> Result<Option<ZoomLink>>;

        /// The customer's link history, newest first.
        pub async fn link_events(&self, customer: CustomerId, limit: u32) -> Result<Vec<LinkEvent>>;

        pub async fn record_link_refusal(
            &self,
            customer: Option<CustomerId>,
            account: &ZoomAccountId,
            message: &str,
            now: OffsetDateTime,
        ) -> Result<()>;

        /// Links the customer to a Zoom account and applies its waiting numbers, in one
        /// transaction.
        #[allow(clippy::too_many_arguments)]
        pub async fn link_zoom_account(
            &self,
            customer: CustomerId,
            account: &ZoomAccountId,
            zoom_user: &str,
            tokens: &StoredTokens,
            carrier: &str,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<(ZoomLink, usize), LinkRefused>>;

        /// Queues the customer's waiting numbers for Zoom; `None` without a live link.
        pub async fn apply_pending_orders(
            &self,
            customer: CustomerId,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<Option<usize>>;
    }

    /// The app was removed (now): link removed, tokens dropped, jobs cancelled, numbers suspended.
    pub async fn unlink_zoom_account(
        &self,
        account: &ZoomAccountId,
        reason: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<(ZoomLink, usize)>> {
        Ok(match self.unlink_zoom_account_removed_at(account, reason, now, by, now).await? {
            Unlinked::Removed { link, suspended } => Some((link, suspended)),
            Unlinked::Newer(_) | Unlinked::NoLink => None,
        })
    }

    /// The app was removed at `removed_at` (Zoom's time): as [`Store::unlink_zoom_account`], unless the
    /// live link was made after that (a re-install), which is left alone.
    pub async fn unlink_zoom_account_removed_at(
        &self,
        account: &ZoomAccountId,
        reason: &str,
        removed_at: OffsetDateTime,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Unlinked> {
        dispatch!(self.unlink_zoom_account(account, reason, removed_at, by, now))
    }

    forward! {
        /// Zoom's 429: no job of the account is claimed, and no call takes a slot, before `until`.
        pub async fn set_not_before(
            &self,
            account: &ZoomAccountId,
            until: OffsetDateTime,
        ) -> Result<()>;

        /// Takes the next slot of the account's shared request budget (see the dialects); when the
        /// call may be made, in microseconds since the epoch; None when a listing gives way.
        pub async fn take_zoom_slot(
            &self,
            account: &ZoomAccountId,
            now_us: i64,
            gap_us: i64,
            by: BudgetUse,
        ) -> Result<Option<i64>>;

        /// Remembers a webhook delivery by the digest of its verified content: false when any
        /// instance has seen it already.
        pub async fn remember_webhook(
            &self,
            digest: &str,
            now: OffsetDateTime,
            keep_until: OffsetDateTime,
        ) -> Result<bool>;

        /// Forgets a webhook delivery remembered by [`Store::remember_webhook`] whose action then
        /// failed: Zoom's retry of it is taken as new.
        pub async fn forget_webhook(&self, digest: &str) -> Result<()>;

        pub async fn zoom_tokens(&self, link_id: Uuid) -> Result<Option<StoredTokens>>;

        pub async fn begin_token_refresh(
            &self,
            link_id: Uuid,
            generation: i64,
            owner: &str,
            lease_until: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn finish_token_refresh(
            &self,
            link_id: Uuid,
            generation: i64,
            owner: &str,
            tokens: &StoredTokens,
            now: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn abandon_token_refresh(&self, link_id: Uuid, owner: &str) -> Result<()>;

        pub async fn insert_job(&self, job: &Job) -> Result<()>;

        pub async fn claim_job(
            &self,
            owner: &str,
            lease_until: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<Option<Job>>;

        pub async fn finish_job(
            &self,
            id: Uuid,
            owner: &str,
            end: &JobEnd,
            now: OffsetDateTime,
        ) -> Result<bool>;

        /// A running job's heartbeat: false when `owner` no longer holds it.
        pub async fn extend_job_lease(
            &self,
            id: Uuid,
            owner: &str,
            lease_until: OffsetDateTime,
        ) -> Result<bool>;

        /// A clean stop: `owner`'s running jobs are pending again at once. Returns how many.
        pub async fn hand_back_job(&self, owner: &str, now: OffsetDateTime) -> Result<u64>;

        pub async fn complete_push(
            &self,
            job_id: Uuid,
            owner: &str,
            results: &[(PhoneNumber, PushResult)],
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn complete_poll(
            &self,
            job_id: Uuid,
            owner: &str,
            customer: CustomerId,
            seen: &[(PhoneNumber, bool)],
            now: OffsetDateTime,
            next_poll: OffsetDateTime,
        ) -> Result<bool>;

        pub async fn list_jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>>;

        pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>>;

        pub async fn stuck_job_count(&self, cutoff: OffsetDateTime) -> Result<i64>;

        pub async fn order_jobs(&self, order: OrderId) -> Result<Vec<Job>>;

        pub async fn retry_job(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;

        /// Brings the customer's next poll of Zoom forward to `now`; false when none is waiting.
        pub async fn poll_now(&self, customer: CustomerId, now: OffsetDateTime) -> Result<bool>;

        pub async fn numbers_in(&self, numbers: &[PhoneNumber]) -> Result<Vec<Number>>;

        /// (number, assigned to a user in Zoom, when Zoom was last asked) for the customer's
        /// numbers seen.
        pub async fn zoom_presence(
            &self,
            customer: CustomerId,
        ) -> Result<Vec<(PhoneNumber, Option<bool>, Option<OffsetDateTime>)>>;
    }
}
