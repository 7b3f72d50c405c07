//! The mail outbox: mails written in the transaction of the change that causes them (a release
//! started, the app removed, an order applied) under a key that makes each one mail once, and sent
//! by senders that lease them like jobs (claiming is the dialects' own: `claim_mail`). Every finish
//! is a compare-and-set on the sender's lease, so a sender whose lease ran out cannot overwrite the
//! outcome of the one that retook the mail.

use super::rows::bad;
use super::{push_list, Db, DialectStore, Result};
use domain::mail::{Mail, MailEnd, MailFacts, MailKind, MailState, NewMail, ReminderSchedule};
use domain::release::LineState;
use domain::CustomerId;
use sqlx::{QueryBuilder, Transaction};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

struct MailRow {
    id: Uuid,
    mail_key: String,
    kind: String,
    customer_id: Uuid,
    payload: String,
    state: String,
    attempts: i64,
    run_after: OffsetDateTime,
    last_error: Option<String>,
    recipients: Option<String>,
    created_at: OffsetDateTime,
    sent_at: Option<OffsetDateTime>,
}

impl MailRow {
    fn into_mail(self) -> Result<Mail> {
        Ok(Mail {
            id: self.id,
            key: self.mail_key,
            kind: MailKind::parse(&self.kind).ok_or_else(|| bad("mail kind", &self.kind))?,
            customer_id: CustomerId::from_uuid(self.customer_id),
            facts: serde_json::from_str::<MailFacts>(&self.payload)
                .map_err(|_| bad("mail payload", &self.payload))?,
            state: MailState::parse(&self.state).ok_or_else(|| bad("mail state", &self.state))?,
            attempts: self.attempts,
            run_after: self.run_after,
            last_error: self.last_error,
            recipients: self.recipients,
            created_at: self.created_at,
            sent_at: self.sent_at,
        })
    }
}

macro_rules! select_mails {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            MailRow,
            "SELECT id AS \"id!: Uuid\", mail_key AS \"mail_key!\", kind AS \"kind!\", customer_id AS \"customer_id!: Uuid\", payload AS \"payload!\", \
             state AS \"state!\", attempts AS \"attempts!: i64\", run_after AS \"run_after!: OffsetDateTime\", last_error AS \"last_error?\", \
             recipients AS \"recipients?\", created_at AS \"created_at!: OffsetDateTime\", sent_at AS \"sent_at?: OffsetDateTime\" FROM mail_outbox " + $rest $(, $arg)*
        )
    };
}

/// Defines `claim_mail`, with the dialect's `$lock` (see `claim_job_with!`): PostgreSQL's senders
/// on several instances pass over the rows others are claiming.
macro_rules! claim_mail_with {
    ($lock:tt) => {
        impl DialectStore {
            /// Claims the next due mail for `owner` until `lease_until`: a pending one whose time has
            /// come, or one whose sender's lease ran out (it died mid-send).
            pub async fn claim_mail(
                &self,
                owner: &str,
                lease_until: OffsetDateTime,
                now: OffsetDateTime,
            ) -> Result<Option<Mail>> {
                let row = sqlx::query!(
                    r#"UPDATE mail_outbox SET state = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
                       WHERE id = (SELECT m.id FROM mail_outbox m
                                   WHERE (m.state = 'pending' AND m.run_after <= $3) OR (m.state = 'sending' AND m.lease_until <= $3)
                                   ORDER BY m.run_after, m.id LIMIT 1 "# + $lock + r#")
                       RETURNING id AS "id!: Uuid""#,
                    owner,
                    lease_until,
                    now
                )
                .fetch_optional(self.writer())
                .await?;
                match row {
                    None => Ok(None),
                    Some(r) => select_mails!("WHERE id = $1", r.id)
                        .fetch_one(self.writer())
                        .await?
                        .into_mail()
                        .map(Some),
                }
            }
        }
    };
}

job_claim_lock!(claim_mail_with);

impl DialectStore {
    /// Records how a send ended, if `owner` still holds the mail's lease.
    pub async fn finish_mail(
        &self,
        id: Uuid,
        owner: &str,
        end: &MailEnd,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = match end {
            MailEnd::Sent { recipients } => sqlx::query!(
                "UPDATE mail_outbox SET state = 'sent', lease_owner = NULL, lease_until = NULL, last_error = NULL, recipients = $1, sent_at = $2, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'sending'",
                recipients, now, id, owner
            )
            .execute(self.writer())
            .await?,
            MailEnd::Retry { at, error } => sqlx::query!(
                "UPDATE mail_outbox SET state = 'pending', run_after = $1, lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = 'sending'",
                at, error, now, id, owner
            )
            .execute(self.writer())
            .await?,
            MailEnd::Failed { error } => sqlx::query!(
                "UPDATE mail_outbox SET state = 'failed', lease_owner = NULL, lease_until = NULL, last_error = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'sending'",
                error, now, id, owner
            )
            .execute(self.writer())
            .await?,
        };
        Ok(done.rows_affected() == 1)
    }

    /// Hands the mails `owner` is sending back (a clean stop): pending at once, the attempt not
    /// counted.
    pub async fn hand_back_mail(&self, owner: &str, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query!(
            "UPDATE mail_outbox SET state = 'pending', run_after = $1, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE lease_owner = $2 AND state = 'sending'",
            now,
            owner
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// A failed mail is sent again now, from a fresh count of attempts.
    pub async fn retry_mail(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE mail_outbox SET state = 'pending', attempts = 0, run_after = $1, updated_at = $1 WHERE id = $2 AND state = 'failed'",
            now,
            id
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Mails newest first, of one state or all.
    pub async fn list_mails(&self, state: Option<MailState>, limit: u32) -> Result<Vec<Mail>> {
        let limit = i64::from(limit);
        let rows = match state.map(MailState::as_str) {
            Some(s) => {
                select_mails!(
                    "WHERE state = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                    s,
                    limit
                )
                .fetch_all(self.reader())
                .await?
            }
            None => {
                select_mails!("ORDER BY created_at DESC, id DESC LIMIT $1", limit)
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.into_iter().map(MailRow::into_mail).collect()
    }

    /// The addresses of the customer's admin users: who its mails go to.
    pub async fn customer_admin_emails(&self, customer: CustomerId) -> Result<Vec<String>> {
        let c = customer.as_uuid();
        sqlx::query_scalar!(
            r#"SELECT email AS "email!" FROM users WHERE customer_id = $1 AND role = 'customer_admin' ORDER BY email"#,
            c
        )
        .fetch_all(self.reader())
        .await
    }

    /// Writes the reminders and deadline mails due now for every release that still waits for the
    /// customer's approval. A mail already written is not written again (its key), so every
    /// instance may scan. Returns how many were written.
    pub async fn enqueue_release_reminders(
        &self,
        schedule: &ReminderSchedule,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT r.id, r.customer_id, r.reason, r.started_at, l.e164, c.name FROM releases r \
             JOIN release_numbers l ON l.release_id = r.id JOIN customers c ON c.id = r.customer_id \
             WHERE r.kind = 'approval' AND l.state IN ",
        );
        // Only releases that wait for the customer: a port-out or a contract end asks nothing.
        push_list(&mut q, LineState::approvable_states().into_iter().map(LineState::as_str));
        q.push(" ORDER BY r.id, l.e164");
        let rows: Vec<(Uuid, Uuid, String, OffsetDateTime, String, String)> =
            q.build_query_as().fetch_all(self.reader()).await?;
        let mut waiting: BTreeMap<Uuid, (Uuid, String, OffsetDateTime, String, Vec<String>)> =
            BTreeMap::new();
        for (id, customer, reason, started_at, e164, name) in rows {
            waiting
                .entry(id)
                .or_insert_with(|| (customer, reason, started_at, name, Vec::new()))
                .4
                .push(e164);
        }
        let mut mails = Vec::new();
        for (id, (customer, reason, started_at, name, numbers)) in waiting {
            for (key, kind) in schedule.due(id, started_at, now) {
                mails.push(NewMail {
                    key,
                    kind,
                    customer_id: CustomerId::from_uuid(customer),
                    facts: MailFacts {
                        customer_name: name.clone(),
                        numbers: numbers.clone(),
                        reason: Some(reason.clone()),
                        release_id: Some(id),
                        order_id: None,
                        started_at: Some(started_at),
                        deadline: None,
                    },
                });
            }
        }
        if mails.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer().begin().await?;
        let mut written = 0;
        for m in &mails {
            written += usize::from(enqueue_mail(&mut tx, m, now).await?);
        }
        tx.commit().await?;
        Ok(written)
    }
}

/// Writes a mail to the outbox in the caller's transaction; false when a mail with its key exists.
pub(crate) async fn enqueue_mail(
    tx: &mut Transaction<'_, Db>,
    mail: &NewMail,
    now: OffsetDateTime,
) -> Result<bool> {
    let id = Uuid::now_v7();
    let kind = mail.kind.as_str();
    let c = mail.customer_id.as_uuid();
    let payload =
        serde_json::to_string(&mail.facts).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query!(
        "INSERT INTO mail_outbox (id, mail_key, kind, customer_id, payload, state, attempts, run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6) ON CONFLICT (mail_key) DO NOTHING",
        id,
        mail.key,
        kind,
        c,
        payload,
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The customer's name, for the mails written in a transaction.
pub(crate) async fn customer_name(tx: &mut Transaction<'_, Db>, customer: Uuid) -> Result<String> {
    sqlx::query_scalar!(r#"SELECT name AS "name!" FROM customers WHERE id = $1"#, customer)
        .fetch_one(&mut **tx)
        .await
}
