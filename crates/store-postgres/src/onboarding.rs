//! Onboarding (PostgreSQL): Zoom links and their encrypted tokens, pending Marketplace installs, the jobs
//! outbox, and what Zoom says of numbers. Every change of a number goes through a domain transition and
//! is saved with its event in the same transaction as the job that carries it to Zoom.
//!
//! Workers on several instances claim jobs with `FOR UPDATE SKIP LOCKED`, so two never take the same
//! job and none waits for another's row lock.

use super::{insert_events, PgStore, Result};
use crate::rows::NumberRow;
use domain::customer::ContractState;
use domain::onboarding::{
    Job, JobEnd, JobKind, JobState, LinkEvent, LinkRefused, LinkState, PendingInstall, PushResult,
    StoredTokens, Unlinked, ZoomLink, ZOOM_BATCH,
};
use domain::release::ON_HOLD_MESSAGE;
use domain::{Actor, CustomerId, Number, NumberState, OrderId};
use sqlx::{Postgres, QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

fn bad(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into())
}

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
            zoom_account_id: self.zoom_account_id,
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

struct JobRow {
    id: Uuid,
    kind: String,
    payload: String,
    customer_id: Option<Uuid>,
    order_id: Option<Uuid>,
    zoom_account: Option<String>,
    state: String,
    attempts: i64,
    run_after: OffsetDateTime,
    lease_owner: Option<String>,
    lease_until: Option<OffsetDateTime>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl JobRow {
    fn into_job(self) -> Result<Job> {
        Ok(Job {
            id: self.id,
            kind: JobKind::parse(&self.kind).ok_or_else(|| bad("job kind", &self.kind))?,
            payload: self.payload,
            customer_id: self.customer_id.map(CustomerId::from_uuid),
            order_id: self.order_id.map(OrderId::from_uuid),
            zoom_account: self.zoom_account,
            state: JobState::parse(&self.state).ok_or_else(|| bad("job state", &self.state))?,
            attempts: self.attempts,
            run_after: self.run_after,
            lease_owner: self.lease_owner,
            lease_until: self.lease_until,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

macro_rules! select_jobs {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            "SELECT id AS \"id!: Uuid\", kind, payload::text AS \"payload!\", customer_id AS \"customer_id: Uuid\", order_id AS \"order_id: Uuid\", zoom_account, state, attempts, \
             run_after AS \"run_after!: OffsetDateTime\", lease_owner, lease_until AS \"lease_until: OffsetDateTime\", last_error, \
             created_at AS \"created_at!: OffsetDateTime\", updated_at AS \"updated_at!: OffsetDateTime\" FROM jobs " + $rest $(, $arg)*
        )
    };
}

struct PendingRow {
    zoom_account_id: String,
    zoom_user_id: String,
    zoom_email: String,
    zoom_name: String,
    zoom_account_number: String,
    access_token: String,
    refresh_token: String,
    token_expires_at: OffsetDateTime,
    created_at: OffsetDateTime,
    valid_until: OffsetDateTime,
}

impl PendingRow {
    fn into_pending(self) -> PendingInstall {
        PendingInstall {
            zoom_account_id: self.zoom_account_id,
            zoom_user_id: self.zoom_user_id,
            zoom_email: self.zoom_email,
            zoom_name: self.zoom_name,
            zoom_account_number: self.zoom_account_number,
            tokens: StoredTokens {
                access_token: self.access_token,
                refresh_token: self.refresh_token,
                expires_at: self.token_expires_at,
                generation: 0,
            },
            created_at: self.created_at,
            valid_until: self.valid_until,
        }
    }
}

/// Microseconds since the epoch (the budget's unit).
fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The payload of a push job: the numbers it carries.
fn push_payload(numbers: &[&str]) -> String {
    let quoted: Vec<String> = numbers.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{\"numbers\":[{}]}}", quoted.join(","))
}

impl PgStore {
    // ---- pending installs ---------------------------------------------------------------------

    pub async fn insert_pending_install(&self, id_hash: &str, p: &PendingInstall) -> Result<()> {
        sqlx::query!("DELETE FROM zoom_pending_installs WHERE valid_until <= $1", p.created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query!(
            "INSERT INTO zoom_pending_installs (id_hash, zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, \
             access_token, refresh_token, token_expires_at, created_at, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            id_hash,
            p.zoom_account_id,
            p.zoom_user_id,
            p.zoom_email,
            p.zoom_name,
            p.zoom_account_number,
            p.tokens.access_token,
            p.tokens.refresh_token,
            p.tokens.expires_at,
            p.created_at,
            p.valid_until
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The install waiting under `id_hash`, if it has not expired.
    pub async fn pending_install(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingInstall>> {
        let row = sqlx::query_as!(
            PendingRow,
            "SELECT zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, access_token, refresh_token, \
             token_expires_at, created_at, valid_until FROM zoom_pending_installs WHERE id_hash = $1 AND valid_until > $2",
            id_hash,
            now
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(PendingRow::into_pending))
    }

    /// The install waiting under `id_hash`, once: taking it deletes it, so one install is confirmed
    /// at most once.
    pub async fn take_pending_install(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingInstall>> {
        let row = sqlx::query_as!(
            PendingRow,
            "DELETE FROM zoom_pending_installs WHERE id_hash = $1 AND valid_until > $2 \
             RETURNING zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, access_token, refresh_token, \
             token_expires_at, created_at, valid_until",
            id_hash,
            now
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(PendingRow::into_pending))
    }

    // ---- links --------------------------------------------------------------------------------

    /// The customer's latest link, live or removed.
    pub async fn zoom_link(&self, customer: CustomerId) -> Result<Option<ZoomLink>> {
        let c = customer.as_uuid();
        let row = select_links!(
            "WHERE customer_id = $1 ORDER BY state = 'linked' DESC, linked_at DESC LIMIT 1",
            c
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(LinkRow::into_link).transpose()
    }

    pub async fn live_link_by_account(&self, account: &str) -> Result<Option<ZoomLink>> {
        let row = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LinkEvent {
                customer_id: r.customer_id.map(CustomerId::from_uuid),
                zoom_account_id: r.zoom_account_id,
                at: r.at,
                kind: r.kind,
                message: r.message,
            })
            .collect())
    }

    pub async fn record_link_refusal(
        &self,
        customer: Option<CustomerId>,
        account: &str,
        message: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
        account: &str,
        zoom_user: &str,
        tokens: &StoredTokens,
        carrier: &str,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<(ZoomLink, usize), LinkRefused>> {
        let mut tx = self.pool.begin().await?;
        let c = customer.as_uuid();
        let contract = sqlx::query_scalar!("SELECT contract_state FROM customers WHERE id = $1", c)
            .fetch_optional(&mut *tx)
            .await?;
        if contract.as_deref() != Some(ContractState::Active.as_str()) {
            return Ok(Err(LinkRefused::ContractEnded));
        }
        let by_account = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(other) = &by_account {
            if other.customer_id != c {
                return Ok(Err(LinkRefused::AccountTaken { carrier: carrier.to_owned() }));
            }
        }
        let by_customer = select_links!("WHERE customer_id = $1 AND state = 'linked'", c)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(other) = &by_customer {
            if other.zoom_account_id != account {
                return Ok(Err(LinkRefused::CustomerLinkedElsewhere(
                    other.zoom_account_id.clone(),
                )));
            }
        }
        let earlier = select_links!(
            "WHERE customer_id = $1 AND zoom_account_id = $2 ORDER BY linked_at DESC LIMIT 1",
            c,
            account
        )
        .fetch_optional(&mut *tx)
        .await?;
        let (link_id, kind) = match earlier {
            Some(row) => {
                sqlx::query!("UPDATE zoom_links SET state = 'linked', zoom_user_id = $1, linked_at = $2, removed_at = NULL, reauth_needed_at = NULL, reauth_reason = NULL WHERE id = $3", zoom_user, now, row.id)
                    .execute(&mut *tx)
                    .await?;
                (row.id, "relinked")
            }
            None => {
                let id = Uuid::now_v7();
                sqlx::query!("INSERT INTO zoom_links (id, customer_id, zoom_account_id, zoom_user_id, state, linked_at) VALUES ($1, $2, $3, $4, 'linked', $5)", id, c, account, zoom_user, now)
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
        let queued = apply_in_tx(&mut tx, customer, account, true, by, now).await?;
        enqueue_poll(&mut tx, customer, account, now).await?;
        let link =
            select_links!("WHERE id = $1", link_id).fetch_one(&mut *tx).await?.into_link()?;
        tx.commit().await?;
        Ok(Ok((link, queued)))
    }

    /// Applies the customer's waiting numbers (reserved, never refused) to its live link: they go
    /// `provisioning` and push jobs carry them to Zoom. Returns `None` without a live link.
    pub async fn apply_pending_orders(
        &self,
        customer: CustomerId,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<usize>> {
        let mut tx = self.pool.begin().await?;
        let c = customer.as_uuid();
        let Some(link) = select_links!("WHERE customer_id = $1 AND state = 'linked'", c)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let queued = apply_in_tx(&mut tx, customer, &link.zoom_account_id, false, by, now).await?;
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
        account: &str,
        reason: &str,
        removed_at: OffsetDateTime,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Unlinked> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = select_links!("WHERE zoom_account_id = $1 AND state = 'linked'", account)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Unlinked::NoLink);
        };
        let link = row.into_link()?;
        let db_id = link.id;
        // Compare-and-set: a concurrent removal or re-install decides first.
        let done = sqlx::query!(
            "UPDATE zoom_links SET state = 'removed', removed_at = $1 WHERE id = $2 AND state = 'linked' AND linked_at <= $3",
            now,
            db_id,
            removed_at
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(if link.linked_at > removed_at {
                Unlinked::Newer(link)
            } else {
                Unlinked::NoLink
            });
        }
        sqlx::query!("DELETE FROM zoom_tokens WHERE link_id = $1", db_id).execute(&mut *tx).await?;
        cancel_account_jobs(&mut tx, account, "cancelled: the app was removed in Zoom", now)
            .await?;
        let c = link.customer_id.as_uuid();
        let rows = select_numbers!(
            "WHERE customer_id = $1 AND state IN ('active', 'release_pending') ORDER BY e164",
            c
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut moves = Vec::with_capacity(rows.len());
        for row in rows {
            if let Ok(m) = row.into_number()?.suspend(reason, by, now) {
                moves.push(m);
            }
        }
        let suspended_ids = save_state_moves(&mut tx, &moves).await?;
        let suspended = suspended_ids.len();
        // A release waiting for these numbers waits on: the numbers come back when the app is
        // installed again (see `resume_releases`).
        let held: Vec<Uuid> = suspended_ids.into_iter().collect();
        for chunk in held.chunks(super::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new("UPDATE release_numbers SET message = ");
            q.push_bind(ON_HOLD_MESSAGE)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE state IN ('waiting', 'refused') AND number_id IN (");
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
            &format!("{reason}; {suspended} numbers suspended"),
            now,
        )
        .await?;
        tx.commit().await?;
        let link = ZoomLink { state: LinkState::Removed, removed_at: Some(now), ..link };
        Ok(Unlinked::Removed { link, suspended })
    }

    /// Moves the account's `not_before` later (never earlier): no worker claims its jobs before it, and
    /// no call already under way takes a slot of its budget before it either.
    pub async fn set_not_before(&self, account: &str, until: OffsetDateTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("UPDATE zoom_links SET not_before = $1 WHERE zoom_account_id = $2 AND state = 'linked' AND (not_before IS NULL OR not_before < $3)", until, account, until)
            .execute(&mut *tx)
            .await?;
        let until_us = micros(until);
        sqlx::query!(
            "INSERT INTO zoom_rate_budget (zoom_account, next_slot_us) VALUES ($1, $2) ON CONFLICT (zoom_account) DO UPDATE SET next_slot_us = GREATEST(zoom_rate_budget.next_slot_us, excluded.next_slot_us)",
            account,
            until_us
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Takes the next slot of the account's request budget, shared by every worker of every instance:
    /// returns when the call may be made (microseconds since the epoch, never before `now_us`) and
    /// moves the budget on by `gap_us`, in one statement.
    pub async fn take_zoom_slot(&self, account: &str, now_us: i64, gap_us: i64) -> Result<i64> {
        let next = sqlx::query_scalar!(
            "INSERT INTO zoom_rate_budget (zoom_account, next_slot_us) VALUES ($1, $2::bigint + $3::bigint) ON CONFLICT (zoom_account) DO UPDATE SET next_slot_us = GREATEST(zoom_rate_budget.next_slot_us, $2::bigint) + $3::bigint RETURNING next_slot_us",
            account,
            now_us,
            gap_us
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next - gap_us)
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
            .execute(&self.pool)
            .await?;
        let done = sqlx::query!(
            "INSERT INTO zoom_webhook_deliveries (digest, seen_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
            digest,
            now,
            keep_until
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// New tokens for the account's live link (the app was authorized again for the same Zoom
    /// account, which revokes the tokens Zoom gave before): stored, the need for re-authorization
    /// cleared, and the account's waiting jobs due now, in one transaction. The link's row is locked
    /// first, as [`PgStore::mark_link_reauth`] does, so the two never interleave. `None` without a
    /// live link for the account.
    pub async fn renew_link_tokens(
        &self,
        account: &str,
        zoom_user: &str,
        tokens: &StoredTokens,
        now: OffsetDateTime,
    ) -> Result<Option<ZoomLink>> {
        let mut tx = self.pool.begin().await?;
        let Some(row) =
            select_links!("WHERE zoom_account_id = $1 AND state = 'linked' FOR UPDATE", account)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let link = row.into_link()?;
        sqlx::query!(
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
        sqlx::query!(
            "UPDATE zoom_links SET reauth_needed_at = NULL, reauth_reason = NULL WHERE id = $1",
            link.id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE jobs SET run_after = $1, attempts = 0, updated_at = $1 WHERE zoom_account = $2 AND state = 'pending' AND run_after > $1",
            now,
            account
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
        let mut tx = self.pool.begin().await?;
        let Some(link) = select_links!(
            "WHERE id = $1 AND state = 'linked' AND reauth_needed_at IS NULL FOR UPDATE",
            link_id
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let current =
            sqlx::query_scalar!("SELECT generation FROM zoom_tokens WHERE link_id = $1", link_id)
                .fetch_optional(&mut *tx)
                .await?;
        if current != Some(generation) {
            return Ok(false);
        }
        sqlx::query!(
            "UPDATE zoom_links SET reauth_needed_at = $1, reauth_reason = $2 WHERE id = $3",
            now,
            reason,
            link_id
        )
        .execute(&mut *tx)
        .await?;
        let link = link.into_link()?;
        let message = format!(
            "Zoom refused the link's authorization ({reason}): the customer must add the app again"
        );
        insert_link_event(
            &mut tx,
            Some(link.customer_id),
            &link.zoom_account_id,
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
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(LinkRow::into_link).collect()
    }

    // ---- tokens -------------------------------------------------------------------------------

    pub async fn zoom_tokens(&self, link_id: Uuid) -> Result<Option<StoredTokens>> {
        let row = sqlx::query!(
            r#"SELECT access_token, refresh_token, expires_at AS "expires_at!: OffsetDateTime", generation FROM zoom_tokens WHERE link_id = $1"#,
            link_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| StoredTokens {
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            expires_at: r.expires_at,
            generation: r.generation,
        }))
    }

    /// Takes the right to spend the refresh token of `generation`: true for exactly one caller until
    /// the lease ends or the refresh is finished.
    pub async fn begin_token_refresh(
        &self,
        link_id: Uuid,
        generation: i64,
        owner: &str,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE zoom_tokens SET refresh_owner = $1, refresh_lease_until = $2 WHERE link_id = $3 AND generation = $4 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $5)",
            owner,
            lease_until,
            link_id,
            generation,
            now
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the refreshed tokens if `owner` still holds the refresh of `generation`.
    pub async fn finish_token_refresh(
        &self,
        link_id: Uuid,
        generation: i64,
        owner: &str,
        tokens: &StoredTokens,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE zoom_tokens SET access_token = $1, refresh_token = $2, expires_at = $3, generation = generation + 1, refresh_owner = NULL, refresh_lease_until = NULL, updated_at = $4 \
             WHERE link_id = $5 AND generation = $6 AND refresh_owner = $7",
            tokens.access_token,
            tokens.refresh_token,
            tokens.expires_at,
            now,
            link_id,
            generation,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up a refresh lease (the refresh failed before Zoom was told anything that matters).
    pub async fn abandon_token_refresh(&self, link_id: Uuid, owner: &str) -> Result<()> {
        sqlx::query!("UPDATE zoom_tokens SET refresh_owner = NULL, refresh_lease_until = NULL WHERE link_id = $1 AND refresh_owner = $2", link_id, owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    // ---- jobs ---------------------------------------------------------------------------------

    pub async fn insert_job(&self, job: &Job) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_job(&mut tx, job).await?;
        tx.commit().await
    }

    /// Claims the next due job for `owner` until `lease_until`: a pending job whose time has come,
    /// or a running one whose worker's lease ran out (it died). Jobs of an account that Zoom asked us
    /// to leave alone (`not_before`) wait.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Job>> {
        let row = sqlx::query!(
            r#"UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
               WHERE id = (SELECT j.id FROM jobs j
                           WHERE ((j.state = 'pending' AND j.run_after <= $4) OR (j.state = 'running' AND j.lease_until <= $5))
                             AND NOT EXISTS (SELECT 1 FROM zoom_links l WHERE l.zoom_account_id = j.zoom_account AND l.state = 'linked' AND l.not_before > $6)
                           ORDER BY j.run_after, j.id LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING id AS "id!: Uuid""#,
            owner,
            lease_until,
            now,
            now,
            now,
            now
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => select_jobs!("WHERE id = $1", r.id)
                .fetch_one(&self.pool)
                .await?
                .into_job()
                .map(Some),
        }
    }

    /// Records how a job ended, if `owner` still holds its lease (a worker whose lease ran out and
    /// whose job was retaken must not overwrite the new worker's outcome).
    pub async fn finish_job(
        &self,
        id: Uuid,
        owner: &str,
        end: &JobEnd,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = match end {
            JobEnd::Done => {
                sqlx::query!("UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'", now, id, owner)
                    .execute(&self.pool)
                    .await?
            }
            JobEnd::Retry { at, error } => {
                sqlx::query!("UPDATE jobs SET state = 'pending', run_after = $1, lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = 'running'", at, error, now, id, owner)
                    .execute(&self.pool)
                    .await?
            }
            JobEnd::Failed { error } => {
                sqlx::query!("UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_until = NULL, last_error = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'running'", error, now, id, owner)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease `owner` holds on a running job (its heartbeat). False when the lease is gone:
    /// the job ended, or another worker took it after the lease ran out.
    pub async fn extend_job_lease(
        &self,
        id: Uuid,
        owner: &str,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            lease_until,
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Hands the running jobs of `owner` back (a clean stop): pending again at once, the attempt not
    /// counted. Returns how many.
    pub async fn hand_back_job(&self, owner: &str, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query!(
            "UPDATE jobs SET state = 'pending', run_after = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE lease_owner = $3 AND state = 'running'",
            now,
            now,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Zoom's answers for a push job: accepted numbers go `active`, refused ones back to `reserved`
    /// with Zoom's reason, and the job is done, in one transaction. Numbers no longer `provisioning`
    /// are left alone (a retaken job's answers converge). False if `owner` lost the lease.
    pub async fn complete_push(
        &self,
        job_id: Uuid,
        owner: &str,
        results: &[(String, PushResult)],
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query!("UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'", now, job_id, owner)
            .execute(&mut *tx)
            .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let answers: std::collections::HashMap<&str, &PushResult> =
            results.iter().map(|(n, r)| (n.as_str(), r)).collect();
        let mut moves = Vec::with_capacity(results.len());
        for chunk in results.chunks(super::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(NumberRow::SELECT);
            q.push(" WHERE state = 'provisioning' AND e164 IN (");
            let mut sep = q.separated(", ");
            for (e164, _) in chunk {
                sep.push_bind(e164.clone());
            }
            q.push(")");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            for row in rows {
                let n = row.into_number()?;
                let moved = match answers.get(n.e164.as_str()) {
                    Some(PushResult::Accepted) => n.zoom_accepted(by, now),
                    Some(PushResult::Refused(reason)) => {
                        n.zoom_refused_provisioning(reason, by, now)
                    }
                    None => continue,
                };
                if let Ok(m) = moved {
                    moves.push(m);
                }
            }
        }
        let moved = save_state_moves(&mut tx, &moves).await?;
        let accepted: Vec<Uuid> = moves
            .iter()
            .filter(|(n, _)| n.state == NumberState::Active && moved.contains(&n.id.as_uuid()))
            .map(|(n, _)| n.id.as_uuid())
            .collect();
        // Just added: Zoom lists it Unassigned until the customer assigns it.
        for chunk in accepted.chunks(super::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new("UPDATE numbers SET zoom_assigned = ");
            q.push_bind(false)
                .push(", zoom_seen_at = ")
                .push_bind(now)
                .push(" WHERE zoom_assigned IS NULL AND id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        resume_releases(&mut tx, &moves, &accepted, by, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What a poll of the account's peering numbers found: `seen` is (number, assigned) for every
    /// number Zoom listed. The poll job goes back to pending for `next_poll`. False if `owner` lost it.
    pub async fn complete_poll(
        &self,
        job_id: Uuid,
        owner: &str,
        customer: CustomerId,
        seen: &[(String, bool)],
        now: OffsetDateTime,
        next_poll: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query!(
            "UPDATE jobs SET state = 'pending', run_after = $1, attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
            next_poll,
            now,
            job_id,
            owner
        )
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let c = customer.as_uuid();
        for flag in [true, false] {
            let numbers: Vec<&str> =
                seen.iter().filter(|(_, a)| *a == flag).map(|(n, _)| n.as_str()).collect();
            for chunk in numbers.chunks(super::INSERT_CHUNK) {
                let mut q = QueryBuilder::<Postgres>::new("UPDATE numbers SET zoom_assigned = ");
                q.push_bind(flag)
                    .push(", zoom_seen_at = ")
                    .push_bind(now)
                    .push(" WHERE customer_id = ")
                    .push_bind(c)
                    .push(" AND e164 IN (");
                let mut sep = q.separated(", ");
                for n in chunk {
                    sep.push_bind(n.to_string());
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
        }
        sqlx::query!(
            "UPDATE zoom_links SET last_polled_at = $1 WHERE customer_id = $2 AND state = 'linked'",
            now,
            c
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>> {
        let limit = i64::from(limit);
        let rows = match state.map(JobState::as_str) {
            Some(s) => {
                select_jobs!(
                    "WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
                    s,
                    limit
                )
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                select_jobs!("ORDER BY updated_at DESC, id DESC LIMIT $1", limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(JobRow::into_job).collect()
    }

    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
        let rows = sqlx::query!(r#"SELECT state, COUNT(*) AS "n!: i64" FROM jobs GROUP BY state"#)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                JobState::parse(&r.state)
                    .map(|s| (s, r.n))
                    .ok_or_else(|| bad("job state", &r.state))
            })
            .collect()
    }

    pub async fn order_jobs(&self, order: OrderId) -> Result<Vec<Job>> {
        let o = order.as_uuid();
        let rows = select_jobs!("WHERE order_id = $1 ORDER BY id", o).fetch_all(&self.pool).await?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    /// A failed job is tried again now, from a fresh count of attempts.
    pub async fn retry_job(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!("UPDATE jobs SET state = 'pending', attempts = 0, run_after = $1, updated_at = $2 WHERE id = $3 AND state = 'failed'", now, now, id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Brings the customer's next poll of Zoom forward to `now` (an operator's "refresh from Zoom").
    pub async fn poll_now(&self, customer: CustomerId, now: OffsetDateTime) -> Result<bool> {
        let c = customer.as_uuid();
        let done = sqlx::query!("UPDATE jobs SET run_after = $1 WHERE customer_id = $2 AND kind = 'poll_numbers' AND state = 'pending'", now, c)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The numbers among `e164s` in the inventory, in any state.
    pub async fn numbers_in(&self, e164s: &[String]) -> Result<Vec<Number>> {
        let mut found = Vec::with_capacity(e164s.len());
        for chunk in e164s.chunks(super::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(NumberRow::SELECT);
            q.push(" WHERE e164 IN (");
            let mut sep = q.separated(", ");
            for n in chunk {
                sep.push_bind(n.clone());
            }
            q.push(") ORDER BY e164");
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&self.pool).await?;
            for r in rows {
                found.push(r.into_number()?);
            }
        }
        Ok(found)
    }

    /// What Zoom last said of the customer's numbers: (number, assigned to a user, when seen).
    pub async fn zoom_presence(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<(String, Option<bool>, Option<OffsetDateTime>)>> {
        let c = customer.as_uuid();
        let rows = sqlx::query!(
            r#"SELECT e164, zoom_assigned AS "zoom_assigned: bool", zoom_seen_at AS "zoom_seen_at: OffsetDateTime" FROM numbers WHERE customer_id = $1 AND zoom_seen_at IS NOT NULL ORDER BY e164"#,
            c
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.e164, r.zoom_assigned, r.zoom_seen_at)).collect())
    }
}

async fn insert_link_event(
    tx: &mut Transaction<'_, Postgres>,
    customer: Option<CustomerId>,
    account: &str,
    kind: &str,
    message: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let c = customer.map(|c| c.as_uuid());
    sqlx::query!("INSERT INTO zoom_link_events (customer_id, zoom_account_id, at, kind, message) VALUES ($1, $2, $3, $4, $5)", c, account, now, kind, message)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Also used by the release module: a release job is written like any other outbox job.
pub(crate) async fn insert_job(tx: &mut Transaction<'_, Postgres>, job: &Job) -> Result<()> {
    let kind = job.kind.as_str();
    let state = job.state.as_str();
    let c = job.customer_id.map(|c| c.as_uuid());
    let o = job.order_id.map(|o| o.as_uuid());
    sqlx::query!(
        "INSERT INTO jobs (id, kind, payload, customer_id, order_id, zoom_account, state, attempts, run_after, created_at, updated_at) VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7, $8, $9, $10, $11)",
        job.id,
        kind,
        job.payload,
        c,
        o,
        job.zoom_account,
        state,
        job.attempts,
        job.run_after,
        job.created_at,
        job.updated_at
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

async fn cancel_account_jobs(
    tx: &mut Transaction<'_, Postgres>,
    account: &str,
    why: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query!("UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = $1, updated_at = $2 WHERE zoom_account = $3 AND state IN ('pending', 'running')", why, now, account)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Moves the customer's waiting numbers to `provisioning` (reserved ones never refused by Zoom, and
/// suspended ones: the app is back) and queues push jobs, one per order per batch of 200. With
/// `all_provisioning` (a new link), numbers already provisioning are queued too: their jobs were
/// cancelled with the old link.
async fn apply_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    customer: CustomerId,
    account: &str,
    all_provisioning: bool,
    by: &Actor,
    now: OffsetDateTime,
) -> Result<usize> {
    let c = customer.as_uuid();
    // Locked in one order (e164) so concurrent applies wait for each other instead of deadlocking;
    // a row another apply moved meanwhile no longer matches when its lock is granted.
    let rows = select_numbers!("WHERE customer_id = $1 AND ((state = 'reserved' AND reason IS NULL) OR state = 'suspended') ORDER BY e164 FOR UPDATE", c).fetch_all(&mut **tx).await?;
    let mut moves = Vec::with_capacity(rows.len());
    for row in rows {
        let n = row.into_number()?;
        let moved = if n.state == NumberState::Suspended {
            n.resume(by, now)
        } else {
            n.start_provisioning(by, now)
        };
        if let Ok(m) = moved {
            moves.push(m);
        }
    }
    // Jobs are cut only from the numbers this transaction moved: an order applied at the same time
    // by another request queues the others.
    let moved = save_state_moves(tx, &moves).await?;
    let mut to_push: Vec<Number> =
        moves.into_iter().map(|(n, _)| n).filter(|n| moved.contains(&n.id.as_uuid())).collect();
    if all_provisioning {
        let moved: std::collections::HashSet<_> = to_push.iter().map(|n| n.id).collect();
        let rows =
            select_numbers!("WHERE customer_id = $1 AND state = 'provisioning' ORDER BY e164", c)
                .fetch_all(&mut **tx)
                .await?;
        for row in rows {
            let n = row.into_number()?;
            if !moved.contains(&n.id) {
                to_push.push(n);
            }
        }
    }
    // The orders of these numbers are applied now.
    let mut orders: Vec<Option<OrderId>> = to_push.iter().map(|n| n.order_id).collect();
    orders.sort();
    orders.dedup();
    for order in orders.iter().flatten() {
        let o = order.as_uuid();
        sqlx::query!("UPDATE orders SET state = 'applied' WHERE id = $1 AND state = 'pending'", o)
            .execute(&mut **tx)
            .await?;
    }
    let queued = to_push.len();
    for order in orders {
        let mut numbers: Vec<&str> =
            to_push.iter().filter(|n| n.order_id == order).map(|n| n.e164.as_str()).collect();
        numbers.sort_unstable();
        for batch in numbers.chunks(ZOOM_BATCH) {
            let job = Job::new(
                JobKind::PushNumbers,
                push_payload(batch),
                Some(customer),
                order,
                Some(account.to_owned()),
                now,
            );
            insert_job(tx, &job).await?;
        }
    }
    Ok(queued)
}

/// Numbers just accepted by Zoom that a release still waits for (they were suspended when the app
/// was removed, and came back with its re-install) wait for the customer's approval again:
/// `release_pending` with the release's reason, their lines waiting without the on-hold message.
async fn resume_releases(
    tx: &mut Transaction<'_, Postgres>,
    moves: &[(Number, domain::NumberEvent)],
    accepted: &[Uuid],
    by: &Actor,
    now: OffsetDateTime,
) -> Result<()> {
    let mut reasons: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    for chunk in accepted.chunks(super::INSERT_CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT l.number_id, r.reason FROM release_numbers l JOIN releases r ON r.id = l.release_id WHERE l.state IN ('waiting', 'refused') AND l.number_id IN (",
        );
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        let rows: Vec<(Uuid, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        reasons.extend(rows);
    }
    if reasons.is_empty() {
        return Ok(());
    }
    let mut again = Vec::with_capacity(reasons.len());
    for (n, _) in moves {
        if let Some(reason) = reasons.get(&n.id.as_uuid()) {
            if let Ok(m) = n.clone().start_release(reason, by, now) {
                again.push(m);
            }
        }
    }
    let waiting: Vec<Uuid> = save_state_moves(tx, &again).await?.into_iter().collect();
    for chunk in waiting.chunks(super::INSERT_CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new(
            "UPDATE release_numbers SET state = 'waiting', message = NULL, updated_at = ",
        );
        q.push_bind(now).push(" WHERE state IN ('waiting', 'refused') AND number_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// One recurring poll job per account: queued unless one is waiting already.
async fn enqueue_poll(
    tx: &mut Transaction<'_, Postgres>,
    customer: CustomerId,
    account: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let waiting = sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM jobs WHERE zoom_account = $1 AND kind = 'poll_numbers' AND state IN ('pending', 'running')"#, account)
        .fetch_one(&mut **tx)
        .await?;
    if waiting == 0 {
        // A minute after linking: until the pushes land there is nothing in Zoom to learn, and a poll
        // would spend the account's rate limit that the pushes need.
        let mut job = Job::new(
            JobKind::PollNumbers,
            "{}".into(),
            Some(customer),
            None,
            Some(account.to_owned()),
            now,
        );
        job.run_after = now + time::Duration::minutes(1);
        insert_job(tx, &job).await?;
    }
    Ok(())
}

/// Saves moves that change only a number's state, reason and time (every onboarding transition), one
/// UPDATE per (from, to, reason) and chunk instead of one per number, with their events. Each UPDATE is
/// a compare-and-set on the state the move starts from: a number another transaction moved first is
/// left alone and gets no event. Returns the ids of the numbers this transaction moved.
async fn save_state_moves(
    tx: &mut Transaction<'_, Postgres>,
    moves: &[(Number, domain::NumberEvent)],
) -> Result<std::collections::HashSet<Uuid>> {
    type Group<'a> = (Option<&'a str>, &'a str, Option<&'a str>, OffsetDateTime);
    let mut groups: std::collections::BTreeMap<Group<'_>, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (n, e) in moves {
        groups
            .entry((
                e.from.map(NumberState::as_str),
                n.state.as_str(),
                n.reason.as_deref(),
                n.updated_at,
            ))
            .or_default()
            .push(n.id.as_uuid());
    }
    let mut moved = std::collections::HashSet::with_capacity(moves.len());
    for ((from, state, reason, at), ids) in groups {
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new("UPDATE numbers SET state = ");
            q.push_bind(state)
                .push(", reason = ")
                .push_bind(reason.map(str::to_owned))
                .push(", updated_at = ")
                .push_bind(at)
                .push(" WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            if let Some(from) = from {
                q.push(" AND state = ").push_bind(from);
            }
            q.push(" RETURNING id");
            moved.extend(q.build_query_scalar::<Uuid>().fetch_all(&mut **tx).await?);
        }
    }
    let events: Vec<&domain::NumberEvent> =
        moves.iter().map(|(_, e)| e).filter(|e| moved.contains(&e.number_id.as_uuid())).collect();
    for chunk in events.chunks(super::INSERT_CHUNK) {
        insert_events(tx, chunk.iter().copied()).await?;
    }
    Ok(moved)
}
