//! Zoom links: a customer's link to its Zoom account (made by installing the app, ended by removing
//! it), the link's history, and what linking and unlinking do to the customer's numbers and jobs.
//! Also the account's shared request budget and the webhook deliveries already seen.
//!
//! Every change is a compare-and-set: a link is removed only while it is still `linked` and older
//! than the removal; numbers move only from the state they were read in (`save_state_moves`).

use super::jobs::{cancel_account_jobs, enqueue_poll, insert_job};
use super::mail::{customer_name, enqueue_mail};
use super::rows::{bad, NumberRow};
use super::webhooks::emit;
use super::{push_list, save_state_moves, Db, DialectStore, Result, INSERT_CHUNK};
use domain::customer::{ContractState, OrderEvent, OrderState};
use domain::link::{
    plan_app_removal, plan_link, plan_suspension, removal_message, KeepLink, LinkFacts, LinkPlan,
};
use domain::machine::StateMachine;
use domain::mail::{key as mail_key, MailFacts, MailKind, NewMail};
use domain::onboarding::{
    BudgetUse, LinkEvent, LinkRefused, LinkState, StoredTokens, Unlinked, ZoomLink,
};
use domain::push::{cut_push_jobs, plan_apply, Application};
use domain::release::{LineState, ON_HOLD_MESSAGE};
use domain::webhook::{EventType, OutboundEvent};
use domain::{Actor, CustomerId, Number, ZoomAccountId};
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

struct LinkRow {
    id: Uuid,
    customer_id: Uuid,
    zoom_account_id: String,
    zoom_user_id: String,
    state: String,
    linked_at: OffsetDateTime,
    removed_at: Option<OffsetDateTime>,
    not_before: Option<OffsetDateTime>,
    last_polled_at: Option<OffsetDateTime>,
    reauth_needed_at: Option<OffsetDateTime>,
    reauth_reason: Option<String>,
}

impl LinkRow {
    fn into_link(self) -> Result<ZoomLink> {
        Ok(ZoomLink {
            id: self.id,
            customer_id: CustomerId::from_uuid(self.customer_id),
            zoom_account_id: ZoomAccountId::from_trusted(self.zoom_account_id),
            zoom_user_id: self.zoom_user_id,
            state: LinkState::parse(&self.state).ok_or_else(|| bad("link state", &self.state))?,
            linked_at: self.linked_at,
            removed_at: self.removed_at,
            not_before: self.not_before,
            last_polled_at: self.last_polled_at,
            reauth_needed_at: self.reauth_needed_at,
            reauth_reason: self.reauth_reason,
        })
    }
}

macro_rules! select_links {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            LinkRow,
            "SELECT id AS \"id!: Uuid\", customer_id AS \"customer_id!: Uuid\", zoom_account_id, zoom_user_id, state, \
             linked_at AS \"linked_at!: OffsetDateTime\", removed_at AS \"removed_at: OffsetDateTime\", \
             not_before AS \"not_before: OffsetDateTime\", last_polled_at AS \"last_polled_at: OffsetDateTime\", \
             reauth_needed_at AS \"reauth_needed_at: OffsetDateTime\", reauth_reason FROM zoom_links " + $rest $(, $arg)*
        )
    };
}

/// How many times a link is tried when its row moved between its read and its write.
const LINK_ATTEMPTS: usize = 5;

/// Microseconds since the epoch (the budget's unit).
fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

impl DialectStore {
    /// The customer's latest link, live or removed.
    pub async fn zoom_link(&self, customer: CustomerId) -> Result<Option<ZoomLink>> {
        let c = customer.as_uuid();
        let row = select_links!(
            "WHERE customer_id = $1 ORDER BY state = 'linked' DESC, linked_at DESC LIMIT 1",
            c
        )
        .fetch_optional(self.reader())
        .await?;
        row.map(LinkRow::into_link).transpose()
    }

    pub async fn live_link_by_account(&self, account: &ZoomAccountId) -> Result<Option<ZoomLink>> {
        let account = account.as_str();
        let row = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(self.reader())
            .await?;
        row.map(LinkRow::into_link).transpose()
    }

    pub async fn link_events(&self, customer: CustomerId, limit: u32) -> Result<Vec<LinkEvent>> {
        let c = customer.as_uuid();
        let limit = i64::from(limit);
        let rows = sqlx::query!(
            r#"SELECT customer_id AS "customer_id: Uuid", zoom_account_id, at AS "at!: OffsetDateTime", kind, message FROM zoom_link_events WHERE customer_id = $1 ORDER BY id DESC LIMIT $2"#,
            c,
            limit
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LinkEvent {
                customer_id: r.customer_id.map(CustomerId::from_uuid),
                zoom_account_id: ZoomAccountId::from_trusted(r.zoom_account_id),
                at: r.at,
                kind: r.kind,
                message: r.message,
            })
            .collect())
    }

    pub async fn record_link_refusal(
        &self,
        customer: Option<CustomerId>,
        account: &ZoomAccountId,
        message: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let account = account.as_str();
        let mut tx = self.writer().begin().await?;
        insert_link_event(&mut tx, customer, account, "refused", message, now).await?;
        tx.commit().await
    }

    /// Links `customer` to the Zoom `account` with its tokens and applies the customer's waiting
    /// numbers, in one transaction. Refused, changing nothing, when either side is linked elsewhere.
    /// Returns the link and how many numbers were queued for Zoom.
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
    ) -> Result<std::result::Result<(ZoomLink, usize), LinkRefused>> {
        let account = account.as_str();
        // The link row moved between its read and its write (another install of the same account
        // and customer, or its removal): read it again and decide on what it has become.
        for _ in 0..LINK_ATTEMPTS {
            if let Some(done) = self
                .try_link_zoom_account(customer, account, zoom_user, tokens, carrier, by, now)
                .await?
            {
                return Ok(done);
            }
        }
        Err(sqlx::Error::Protocol(format!(
            "the link of Zoom account {account} kept changing while it was being made; try again"
        )))
    }

    /// `None` when the link row moved since it was read; nothing is saved then.
    #[allow(clippy::too_many_arguments)]
    async fn try_link_zoom_account(
        &self,
        customer: CustomerId,
        account: &str,
        zoom_user: &str,
        tokens: &StoredTokens,
        carrier: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<std::result::Result<(ZoomLink, usize), LinkRefused>>> {
        let mut tx = self.writer().begin().await?;
        let c = customer.as_uuid();
        let contract = sqlx::query_scalar!("SELECT contract_state FROM customers WHERE id = $1", c)
            .fetch_optional(&mut *tx)
            .await?;
        // No such customer: nothing to link to, as for an ended contract.
        let contract =
            contract.and_then(|c| ContractState::parse(&c)).unwrap_or(ContractState::Ended);
        let live_for_account =
            select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
                .fetch_optional(&mut *tx)
                .await?
                .map(LinkRow::into_link)
                .transpose()?;
        let live_for_customer = select_links!("WHERE customer_id = $1 AND state = 'linked'", c)
            .fetch_optional(&mut *tx)
            .await?
            .map(LinkRow::into_link)
            .transpose()?;
        let earlier = select_links!(
            "WHERE customer_id = $1 AND zoom_account_id = $2 ORDER BY linked_at DESC LIMIT 1",
            c,
            account
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(LinkRow::into_link)
        .transpose()?;
        let facts = LinkFacts {
            customer,
            account,
            contract,
            live_for_account: live_for_account.as_ref(),
            live_for_customer: live_for_customer.as_ref(),
            earlier: earlier.as_ref(),
        };
        let (link_id, kind) = match plan_link(facts, carrier) {
            Err(refused) => return Ok(Some(Err(refused))),
            Ok(LinkPlan::Again { link, step }) => {
                let (to, from) = (step.to.as_str(), step.from.as_str());
                let done = sqlx::query!("UPDATE zoom_links SET state = $1, zoom_user_id = $2, linked_at = $3, removed_at = NULL, reauth_needed_at = NULL, reauth_reason = NULL WHERE id = $4 AND state = $5", to, zoom_user, now, link, from)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                (link, "relinked")
            }
            Ok(LinkPlan::New) => {
                let id = Uuid::now_v7();
                let state = LinkState::Linked.as_str();
                sqlx::query!("INSERT INTO zoom_links (id, customer_id, zoom_account_id, zoom_user_id, state, linked_at) VALUES ($1, $2, $3, $4, $5, $6)", id, c, account, zoom_user, state, now)
                    .execute(&mut *tx)
                    .await?;
                (id, "linked")
            }
        };
        sqlx::query!(
            "INSERT INTO zoom_tokens (link_id, access_token, refresh_token, expires_at, generation, updated_at) VALUES ($1, $2, $3, $4, 1, $5) \
             ON CONFLICT (link_id) DO UPDATE SET access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
             expires_at = excluded.expires_at, generation = zoom_tokens.generation + 1, refresh_owner = NULL, refresh_lease_until = NULL, updated_at = excluded.updated_at",
            link_id,
            tokens.access_token,
            tokens.refresh_token,
            tokens.expires_at,
            now
        )
        .execute(&mut *tx)
        .await?;
        let message = if kind == "linked" {
            format!("linked by Zoom user {zoom_user}")
        } else {
            format!("app installed again by Zoom user {zoom_user}")
        };
        insert_link_event(&mut tx, Some(customer), account, kind, &message, now).await?;
        // Whatever was in flight for this account before is superseded by this link.
        cancel_account_jobs(&mut tx, account, "superseded by a new link", now).await?;
        let queued = apply_in_tx(&mut tx, customer, account, Application::NewLink, &[], by, now)
            .await?
            .queued;
        enqueue_poll(&mut tx, customer, account, now).await?;
        let link =
            select_links!("WHERE id = $1", link_id).fetch_one(&mut *tx).await?.into_link()?;
        tx.commit().await?;
        Ok(Some(Ok((link, queued))))
    }

    /// Applies the customer's waiting numbers (reserved, never refused) to its live link: they go
    /// `provisioning` and push jobs carry them to Zoom. Returns `None` without a live link.
    pub async fn apply_pending_orders(
        &self,
        customer: CustomerId,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<usize>> {
        let mut tx = self.writer().begin().await?;
        let Some(account) = live_link_account(&mut tx, customer).await? else {
            return Ok(None);
        };
        let queued = apply_in_tx(&mut tx, customer, &account, Application::LiveLink, &[], by, now)
            .await?
            .queued;
        tx.commit().await?;
        Ok(Some(queued))
    }

    /// The app was removed in Zoom: the link is marked removed, its tokens dropped, its jobs cancelled
    /// and the customer's active / release_pending numbers suspended, in one transaction. `None` when
    /// no live link has this account.
    ///
    /// `removed_at` is when Zoom says the app was removed: a link made after it (the app installed
    /// again since) is left alone, so a late or re-sent `app_deauthorized` cannot undo a re-install.
    pub async fn unlink_zoom_account(
        &self,
        account: &ZoomAccountId,
        reason: &str,
        removed_at: OffsetDateTime,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Unlinked> {
        let account = account.as_str();
        let mut tx = self.writer().begin().await?;
        let Some(row) = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Unlinked::NoLink);
        };
        let link = row.into_link()?;
        let db_id = link.id;
        let removed = match plan_app_removal(&link, removed_at) {
            Ok(step) => step,
            Err(KeepLink::Newer) => return Ok(Unlinked::Newer(link)),
            Err(KeepLink::NotLive) => return Ok(Unlinked::NoLink),
        };
        // Compare-and-set: a concurrent removal or re-install decides first.
        let (to, from) = (removed.to.as_str(), removed.from.as_str());
        let done = sqlx::query!(
            "UPDATE zoom_links SET state = $1, removed_at = $2 WHERE id = $3 AND state = $4 AND linked_at <= $5",
            to,
            now,
            db_id,
            from,
            removed_at
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Unlinked::NoLink);
        }
        sqlx::query!("DELETE FROM zoom_tokens WHERE link_id = $1", db_id).execute(&mut *tx).await?;
        // Cancelling the account's jobs waits for a push finishing at the same time (its job row),
        // so the numbers read below include those it activated: they are suspended, not left active.
        cancel_account_jobs(&mut tx, account, "cancelled: the app was removed in Zoom", now)
            .await?;
        let c = link.customer_id.as_uuid();
        let rows = select_numbers!(
            "WHERE customer_id = $1 AND state IN ('active', 'release_pending') ORDER BY e164",
            c
        )
        .fetch_all(&mut *tx)
        .await?;
        let numbers = rows.into_iter().map(NumberRow::into_number).collect::<Result<Vec<_>>>()?;
        let moves = plan_suspension(link.customer_id, numbers, reason, by, now);
        let suspended_ids = save_state_moves(&mut tx, &moves).await?;
        let suspended = suspended_ids.len();
        let mail = NewMail {
            key: mail_key::app_removed(db_id, now),
            kind: MailKind::AppRemoved,
            customer_id: link.customer_id,
            facts: MailFacts {
                customer_name: customer_name(&mut tx, c).await?,
                numbers: moves
                    .iter()
                    .filter(|(n, _)| suspended_ids.contains(&n.id.as_uuid()))
                    .map(|(n, _)| n.e164.to_string())
                    .collect(),
                reason: Some(reason.to_owned()),
                release_id: None,
                order_id: None,
                started_at: None,
                deadline: None,
            },
        };
        enqueue_mail(&mut tx, &mail, now).await?;
        // A release waiting for these numbers waits on: the numbers come back when the app is
        // installed again (see `resume_releases`).
        let held: Vec<Uuid> = suspended_ids.into_iter().collect();
        for chunk in held.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("UPDATE release_numbers SET message = ");
            q.push_bind(ON_HOLD_MESSAGE)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE state IN ");
            push_list(&mut q, LineState::approvable_states().into_iter().map(LineState::as_str));
            q.push(" AND number_id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        insert_link_event(
            &mut tx,
            Some(link.customer_id),
            account,
            "removed",
            &removal_message(reason, suspended),
            now,
        )
        .await?;
        tx.commit().await?;
        let link = ZoomLink { state: removed.to, removed_at: Some(now), ..link };
        Ok(Unlinked::Removed { link, suspended })
    }

    /// New tokens for the account's live link (the app was authorized again for the same Zoom
    /// account, which revokes the tokens Zoom gave before): stored, the need for re-authorization
    /// cleared, and the account's waiting jobs due now, in one transaction. `None` without a live
    /// link for the account.
    pub async fn renew_link_tokens(
        &self,
        account: &ZoomAccountId,
        zoom_user: &str,
        tokens: &StoredTokens,
        now: OffsetDateTime,
    ) -> Result<Option<ZoomLink>> {
        let account = account.as_str();
        let mut tx = self.writer().begin().await?;
        let Some(row) = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let link = row.into_link()?;
        // The tokens' row first, then the link's, as `mark_link_reauth` does: on PostgreSQL the two
        // queue on the tokens' row, and each then finds what the other wrote. No tokens or no live
        // link any more: the app was removed meanwhile.
        let renewed = sqlx::query!(
            "UPDATE zoom_tokens SET access_token = $1, refresh_token = $2, expires_at = $3, generation = generation + 1, \
             refresh_owner = NULL, refresh_lease_until = NULL, updated_at = $4 WHERE link_id = $5",
            tokens.access_token,
            tokens.refresh_token,
            tokens.expires_at,
            now,
            link.id
        )
        .execute(&mut *tx)
        .await?;
        let cleared = sqlx::query!(
            "UPDATE zoom_links SET reauth_needed_at = NULL, reauth_reason = NULL WHERE id = $1 AND state = 'linked'",
            link.id
        )
        .execute(&mut *tx)
        .await?;
        if renewed.rows_affected() != 1 || cleared.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query!(
            "UPDATE jobs SET run_after = $1, attempts = 0, updated_at = $2 WHERE zoom_account = $3 AND state = 'pending' AND run_after > $4",
            now,
            now,
            account,
            now
        )
        .execute(&mut *tx)
        .await?;
        let message = match &link.reauth_needed_at {
            Some(_) => {
                format!("authorized again by Zoom user {zoom_user}: Zoom accepts peerex again")
            }
            None => format!("authorized again by Zoom user {zoom_user}: new tokens kept"),
        };
        insert_link_event(&mut tx, Some(link.customer_id), account, "reauthorized", &message, now)
            .await?;
        tx.commit().await?;
        Ok(Some(ZoomLink { reauth_needed_at: None, reauth_reason: None, ..link }))
    }

    /// Zoom refused the refresh token of `generation` (`invalid_grant`): the link needs the app
    /// authorized again. Only if those tokens are still the link's (new ones may have arrived
    /// meanwhile) and it is not marked already; true when this call marked it.
    pub async fn mark_link_reauth(
        &self,
        link_id: Uuid,
        generation: i64,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        // Compare-and-set on the tokens' generation, on their own row (a subquery would read them
        // as they were when this statement began): new tokens stored meanwhile win.
        let current = sqlx::query!(
            "UPDATE zoom_tokens SET generation = generation WHERE link_id = $1 AND generation = $2",
            link_id,
            generation
        )
        .execute(&mut *tx)
        .await?;
        if current.rows_affected() != 1 {
            return Ok(false);
        }
        let done = sqlx::query!(
            "UPDATE zoom_links SET reauth_needed_at = $1, reauth_reason = $2 WHERE id = $3 AND state = 'linked' AND reauth_needed_at IS NULL",
            now,
            reason,
            link_id
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let link =
            select_links!("WHERE id = $1", link_id).fetch_one(&mut *tx).await?.into_link()?;
        let message = format!(
            "Zoom refused the link's authorization ({reason}): the customer must add the app again"
        );
        insert_link_event(
            &mut tx,
            Some(link.customer_id),
            link.zoom_account_id.as_str(),
            "needs_reauth",
            &message,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Live links Zoom no longer accepts, oldest first.
    pub async fn links_needing_reauth(&self) -> Result<Vec<ZoomLink>> {
        let rows = select_links!(
            "WHERE state = 'linked' AND reauth_needed_at IS NOT NULL ORDER BY reauth_needed_at"
        )
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(LinkRow::into_link).collect()
    }

    // ---- the account's request budget, webhook deliveries -----------------------------------

    /// Moves the account's `not_before` later (never earlier): no worker claims its jobs before it, and
    /// no call already under way takes a slot of its budget before it either.
    pub async fn set_not_before(
        &self,
        account: &ZoomAccountId,
        until: OffsetDateTime,
    ) -> Result<()> {
        let account = account.as_str();
        let mut tx = self.writer().begin().await?;
        sqlx::query!("UPDATE zoom_links SET not_before = $1 WHERE zoom_account_id = $2 AND state = 'linked' AND (not_before IS NULL OR not_before < $3)", until, account, until)
            .execute(&mut *tx)
            .await?;
        let until_us = micros(until);
        sqlx::query!(
            "INSERT INTO zoom_rate_budget (zoom_account, next_slot_us) VALUES ($1, $2) ON CONFLICT (zoom_account) DO UPDATE SET next_slot_us = CASE WHEN excluded.next_slot_us > zoom_rate_budget.next_slot_us THEN excluded.next_slot_us ELSE zoom_rate_budget.next_slot_us END",
            account,
            until_us
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Takes the account's next slot (at the earliest `now_us`) and moves the budget on by `gap_us`,
    /// in one statement, for every instance alike. A `Call` marks the budget busy until a gap after
    /// its slot; a `Listing` takes nothing while it is (None: try again a gap later), an
    /// `OverdueListing` takes the next slot anyway. Microseconds since the epoch.
    pub async fn take_zoom_slot(
        &self,
        account: &ZoomAccountId,
        now_us: i64,
        gap_us: i64,
        by: BudgetUse,
    ) -> Result<Option<i64>> {
        let account = account.as_str();
        let (call, anyway) = match by {
            BudgetUse::Call => (true, true),
            BudgetUse::Listing => (false, false),
            BudgetUse::OverdueListing => (false, true),
        };
        let next = sqlx::query_scalar!(
            r#"INSERT INTO zoom_rate_budget (zoom_account, next_slot_us, busy_until_us)
               VALUES ($1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT), CASE WHEN $4 THEN CAST($2 AS BIGINT) + CAST($3 AS BIGINT) ELSE 0 END)
               ON CONFLICT (zoom_account) DO UPDATE SET
                   next_slot_us = CASE WHEN zoom_rate_budget.next_slot_us > CAST($2 AS BIGINT) THEN zoom_rate_budget.next_slot_us ELSE CAST($2 AS BIGINT) END + CAST($3 AS BIGINT),
                   busy_until_us = CASE WHEN $4 THEN CASE WHEN zoom_rate_budget.next_slot_us > CAST($2 AS BIGINT) THEN zoom_rate_budget.next_slot_us ELSE CAST($2 AS BIGINT) END + CAST($3 AS BIGINT) ELSE zoom_rate_budget.busy_until_us END
               WHERE $5 OR zoom_rate_budget.busy_until_us <= CAST($2 AS BIGINT)
               RETURNING next_slot_us AS "next_slot_us!: i64""#,
            account,
            now_us,
            gap_us,
            call,
            anyway
        )
        .fetch_optional(self.writer())
        .await?;
        Ok(next.map(|n| n - gap_us))
    }

    /// Remembers a webhook delivery by the digest of its verified content until `keep_until`: true the
    /// first time, false when any instance has seen it already. Deliveries kept long enough are forgotten.
    pub async fn remember_webhook(
        &self,
        digest: &str,
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool> {
        sqlx::query!("DELETE FROM zoom_webhook_deliveries WHERE keep_until < $1", now)
            .execute(self.writer())
            .await?;
        let done = sqlx::query!(
            "INSERT INTO zoom_webhook_deliveries (digest, seen_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
            digest,
            now,
            keep_until
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn forget_webhook(&self, digest: &str) -> Result<()> {
        sqlx::query!("DELETE FROM zoom_webhook_deliveries WHERE digest = $1", digest)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

async fn insert_link_event(
    tx: &mut Transaction<'_, Db>,
    customer: Option<CustomerId>,
    account: &str,
    kind: &str,
    message: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let c = customer.map(|c| c.as_uuid());
    sqlx::query!("INSERT INTO zoom_link_events (customer_id, zoom_account_id, at, kind, message) VALUES ($1, $2, $3, $4, $5)", c, account, now, kind, message)
        .execute(&mut **tx)
        .await?;
    // Links made and removed are told to the carrier's systems too.
    let told = match kind {
        "linked" | "relinked" => Some(EventType::ZoomLinkCreated),
        "removed" => Some(EventType::ZoomLinkRemoved),
        _ => None,
    };
    if let Some(t) = told {
        let data = serde_json::json!({ "customer_id": c, "zoom_account_id": account, "kind": kind, "message": message });
        let key = c.map_or_else(|| format!("zoom_account:{account}"), |c| format!("customer:{c}"));
        emit(tx, &[OutboundEvent::new(t, key, now, data)]).await?;
    }
    Ok(())
}

/// Applies the customer's waiting numbers to its Zoom `account` ([`plan_apply`] decides which move
/// and which are pushed again), applies their orders, and queues the push jobs [`cut_push_jobs`]
/// cuts. Jobs are cut only from the numbers this transaction moved: an order applied at the same
/// time by another request queues the others. `fresh` are moves this transaction has planned but
/// not written (an order's numbers being reserved): those numbers are applied too, and written once
/// with both steps.
pub(crate) async fn apply_in_tx(
    tx: &mut Transaction<'_, Db>,
    customer: CustomerId,
    account: &str,
    why: Application,
    fresh: &[(Number, domain::NumberEvent)],
    by: &Actor,
    now: OffsetDateTime,
) -> Result<Applied> {
    let c = customer.as_uuid();
    let rows = select_numbers!(
        "WHERE customer_id = $1 AND state IN ('reserved', 'suspended', 'provisioning') ORDER BY e164",
        c
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut numbers = rows.into_iter().map(NumberRow::into_number).collect::<Result<Vec<_>>>()?;
    numbers.extend(fresh.iter().map(|(n, _)| n.clone()));
    let plan = plan_apply(customer, numbers, why, by, now);
    // The order's steps first, then what the plan moves (its own numbers among them, a step on).
    let mut steps = fresh.to_vec();
    let planned = steps.len();
    steps.extend(plan.moves);
    let moved = save_state_moves(tx, &steps).await?;
    let mut to_push: Vec<Number> = steps
        .drain(planned..)
        .map(|(n, _)| n)
        .filter(|n| moved.contains(&n.id.as_uuid()))
        .collect();
    to_push.extend(plan.again);
    let cut =
        cut_push_jobs(customer, &ZoomAccountId::from_trusted(account.to_owned()), &to_push, now);
    // The orders of these numbers are applied now (those applied before stay as they are).
    let mut applied = Vec::new();
    for apply in OrderState::steps(OrderEvent::Apply) {
        let (to, from) = (apply.to.as_str(), apply.from.as_str());
        for order in &cut.orders {
            let o = order.as_uuid();
            let done = sqlx::query!(
                "UPDATE orders SET state = $1 WHERE id = $2 AND state = $3",
                to,
                o,
                from
            )
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                applied.push(*order);
                let data = serde_json::json!({ "order_id": o, "customer_id": customer.as_uuid(), "zoom_account_id": account, "actor": by.to_string() });
                let event =
                    OutboundEvent::new(EventType::OrderApplied, format!("order:{o}"), now, data);
                emit(tx, &[event]).await?;
            }
        }
    }
    // The customer's admins hear of each order applied, once.
    if !applied.is_empty() {
        let name = customer_name(tx, c).await?;
        for order in applied {
            let mail = NewMail {
                key: mail_key::order_applied(order),
                kind: MailKind::OrderApplied,
                customer_id: customer,
                facts: MailFacts {
                    customer_name: name.clone(),
                    numbers: to_push
                        .iter()
                        .filter(|n| n.order_id == Some(order))
                        .map(|n| n.e164.to_string())
                        .collect(),
                    reason: None,
                    release_id: None,
                    order_id: Some(order),
                    started_at: None,
                    deadline: None,
                },
            };
            enqueue_mail(tx, &mail, now).await?;
        }
    }
    for job in &cut.jobs {
        insert_job(tx, job).await?;
    }
    Ok(Applied { queued: to_push.len(), moved })
}

/// The Zoom account of the customer's live link, if it has one.
pub(crate) async fn live_link_account(
    tx: &mut Transaction<'_, Db>,
    customer: CustomerId,
) -> Result<Option<String>> {
    let c = customer.as_uuid();
    Ok(select_links!("WHERE customer_id = $1 AND state = 'linked'", c)
        .fetch_optional(&mut **tx)
        .await?
        .map(|l| l.zoom_account_id))
}

/// What [`apply_in_tx`] did: how many numbers it queued to push, and which it moved.
pub(crate) struct Applied {
    pub queued: usize,
    pub moved: std::collections::HashSet<Uuid>,
}
