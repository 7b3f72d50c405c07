//! Reconciliation: findings, the routing instances' positions, and the reconciliation lease.

use crate::{Result, Store};
use domain::findings::{Finding, FindingQuery, Recorded, Seen};
use domain::reconcile::{FindingKind, Held, InstanceSeen};
use domain::{CustomerId, PhoneNumber, ZoomAccountId};
use time::OffsetDateTime;
use uuid::Uuid;

impl Store {
    forward! {
        pub async fn list_findings(&self, q: &FindingQuery) -> Result<Vec<Finding>>;

        /// Marks the findings' repairs queued by `by` and writes the jobs carrying them, in one
        /// transaction; false (nothing written) if any was queued by someone else first, or closed.
        pub async fn queue_repairs(
            &self,
            findings: &[Uuid],
            jobs: &[domain::onboarding::Job],
            by: &str,
        ) -> Result<bool>;

        pub async fn report_routing_instance(
            &self,
            instance: &str,
            generation: i64,
            now: OffsetDateTime,
        ) -> Result<()>;

        pub async fn routing_instances(&self, since: OffsetDateTime) -> Result<Vec<InstanceSeen>>;

        pub async fn sample_routing_generation(
            &self,
            generation: i64,
            now: OffsetDateTime,
            keep_since: OffsetDateTime,
            as_of: OffsetDateTime,
        ) -> Result<Option<(i64, OffsetDateTime)>>;

        pub async fn take_reconcile_lease(
            &self,
            scope: &str,
            owner: &str,
            now: OffsetDateTime,
            until: OffsetDateTime,
            due_before: OffsetDateTime,
        ) -> Result<bool>;

        /// Moves `owner`'s lease on `scope` on to `until`; false when it is no longer `owner`'s.
        pub async fn renew_reconcile_lease(
            &self,
            scope: &str,
            owner: &str,
            until: OffsetDateTime,
        ) -> Result<bool>;

        /// Makes `scope`'s next scheduled cycle due at once.
        pub async fn reconcile_soon(&self, scope: &str, unless_since: OffsetDateTime) -> Result<()>;

        pub async fn release_reconcile_lease(
            &self,
            scope: &str,
            owner: &str,
            completed: Option<OffsetDateTime>,
        ) -> Result<bool>;
    }

    /// Records one cycle of `scope` in one transaction: opens new findings, keeps the ones seen
    /// again, closes the scope's open ones not seen by `cycle`, except those of the `spared`
    /// customers (whose numbers the cycle could not judge).
    pub async fn record_findings(
        &self,
        scope: &str,
        zoom_account: Option<&ZoomAccountId>,
        seen: &[Seen],
        spared: &[CustomerId],
        cycle: Uuid,
        now: OffsetDateTime,
    ) -> Result<Recorded> {
        let account = zoom_account.map(ZoomAccountId::as_str);
        let spared: Vec<Uuid> = spared.iter().map(|c| c.as_uuid()).collect();
        dispatch!(self.record_findings(scope, account, seen, &spared, cycle, now))
    }

    /// Open findings per kind, every kind included (0 when none).
    pub async fn open_finding_counts(&self) -> Result<Vec<(FindingKind, i64)>> {
        let counts = dispatch!(self.open_finding_counts())?;
        Ok(FindingKind::ALL
            .into_iter()
            .map(|k| (k, counts.iter().find(|(c, _)| *c == k).map_or(0, |(_, n)| *n)))
            .collect())
    }

    /// Closes the queued repairs of `account`'s findings on `numbers` as repaired: Zoom confirmed
    /// the fix. Returns how many closed.
    pub async fn close_repaired_findings(
        &self,
        account: &ZoomAccountId,
        numbers: &[String],
        now: OffsetDateTime,
    ) -> Result<u64> {
        dispatch!(self.close_repaired_findings(account.as_str(), numbers, now))
    }

    /// Every live link: (customer, Zoom account).
    pub async fn live_links(&self) -> Result<Vec<(CustomerId, ZoomAccountId)>> {
        let rows = dispatch!(self.live_links())?;
        Ok(rows
            .into_iter()
            .map(|(c, a)| (CustomerId::from_uuid(c), ZoomAccountId::from_trusted(a)))
            .collect())
    }

    /// Every live link with its Zoom account's number when known.
    pub async fn live_link_numbers(
        &self,
    ) -> Result<Vec<(CustomerId, ZoomAccountId, Option<String>)>> {
        let rows = dispatch!(self.live_link_numbers())?;
        Ok(rows
            .into_iter()
            .map(|(c, a, n)| {
                (
                    CustomerId::from_uuid(c),
                    ZoomAccountId::from_trusted(a),
                    n.filter(|n| !n.is_empty()),
                )
            })
            .collect())
    }

    /// Remembers `account`'s Zoom account number on its live link.
    pub async fn set_link_account_number(
        &self,
        account: &ZoomAccountId,
        number: &str,
    ) -> Result<()> {
        dispatch!(self.set_link_account_number(account.as_str(), number))
    }

    /// Every number sold to a customer, by number.
    pub async fn number_holders(&self) -> Result<std::collections::HashMap<String, CustomerId>> {
        let rows = dispatch!(self.number_holders())?;
        Ok(rows.into_iter().map(|(e, c)| (e, CustomerId::from_uuid(c))).collect())
    }

    /// peerex's numbers among `numbers`, whoever holds them.
    pub async fn held_among(&self, numbers: &[PhoneNumber]) -> Result<Vec<Held>> {
        let e164s: Vec<String> = numbers.iter().map(|p| p.as_str().to_owned()).collect();
        dispatch!(self.held_among(&e164s))
    }

    /// Every number `customer` holds, as the reconciler compares them (SQLite reads them below
    /// sqlx: a full cycle reads every linked account's numbers).
    pub async fn held_by_customer(&self, customer: CustomerId) -> Result<Vec<Held>> {
        let c = customer.as_uuid();
        dispatch!(self.held_by_customer(c))
    }
}
