//! The mail outbox and usage records (see the dialects' shared `mail.rs` and `usage.rs`).

use crate::{Result, Store};
use domain::mail::{Mail, MailEnd, MailState, ReminderSchedule};
use domain::usage::UsageRecord;
use domain::CustomerId;
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    forward! {
        /// Claims the next due mail for `owner` until `lease_until`.
        pub async fn claim_mail(
            &self,
            owner: &str,
            lease_until: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<Option<Mail>>;

        /// Records how a send ended; false if `owner` lost the lease.
        pub async fn finish_mail(
            &self,
            id: Uuid,
            owner: &str,
            end: &MailEnd,
            now: OffsetDateTime,
        ) -> Result<bool>;

        /// Hands back the mails `owner` holds (a clean stop).
        pub async fn hand_back_mail(&self, owner: &str, now: OffsetDateTime) -> Result<u64>;

        /// A failed mail is sent again now.
        pub async fn retry_mail(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;

        pub async fn list_mails(&self, state: Option<MailState>, limit: u32) -> Result<Vec<Mail>>;

        /// Who the customer's mails go to: its admin users' addresses.
        pub async fn customer_admin_emails(&self, customer: CustomerId) -> Result<Vec<String>>;

        /// Writes the release reminders and deadline mails due now; how many were new.
        pub async fn enqueue_release_reminders(
            &self,
            schedule: &ReminderSchedule,
            now: OffsetDateTime,
        ) -> Result<usize>;

        /// Takes every customer's usage record for `day` unless taken; how many were made.
        pub async fn take_usage(
            &self,
            day: &str,
            day_start: OffsetDateTime,
            day_end: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<u64>;

        pub async fn usage_records(
            &self,
            from: &str,
            to: &str,
            customer: Option<CustomerId>,
        ) -> Result<Vec<UsageRecord>>;
    }

    /// Sets (or clears) the customer's billing reference; false for an unknown id.
    pub async fn set_billing_ref(&self, id: CustomerId, billing_ref: Option<&str>) -> Result<bool> {
        dispatch!(self.set_billing_ref(id, billing_ref))
    }
}
