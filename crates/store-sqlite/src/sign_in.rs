//! Sign-in throttling and server secrets (SQLite). The rules are `domain::sign_in`'s; this loads the
//! three counters of an attempt, lets the rules change them and saves them in one transaction. The
//! single writer connection runs one such transaction at a time, so no two attempts interleave.

use super::{Result, SqliteStore};
use domain::sign_in::{Admission, Counter, Counters, SignInPolicy};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;

async fn load(tx: &mut Transaction<'_, Sqlite>, key: &str, now: OffsetDateTime) -> Result<Counter> {
    let row = sqlx::query!(
        r#"SELECT failures, window_start AS "window_start!: OffsetDateTime", blocked_until AS "blocked_until: OffsetDateTime",
                  strikes, next_slot AS "next_slot: OffsetDateTime", trusted_until AS "trusted_until: OffsetDateTime"
           FROM sign_in_throttle WHERE key = ?"#,
        key
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map_or_else(
        || Counter::new(now),
        |r| Counter {
            failures: r.failures,
            window_start: r.window_start,
            blocked_until: r.blocked_until,
            strikes: r.strikes,
            next_slot: r.next_slot,
            trusted_until: r.trusted_until,
        },
    ))
}

async fn save(
    tx: &mut Transaction<'_, Sqlite>,
    key: &str,
    c: &Counter,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO sign_in_throttle (key, failures, window_start, blocked_until, strikes, next_slot, trusted_until, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, \
         blocked_until = excluded.blocked_until, strikes = excluded.strikes, next_slot = excluded.next_slot, \
         trusted_until = excluded.trusted_until, updated_at = excluded.updated_at",
        key,
        c.failures,
        c.window_start,
        c.blocked_until,
        c.strikes,
        c.next_slot,
        c.trusted_until,
        now
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

impl SqliteStore {
    /// Runs `change` on the counters under `keys` (source, account, account at source) and saves
    /// them, atomically.
    async fn with_counters<T>(
        &self,
        keys: &[String; 3],
        now: OffsetDateTime,
        change: impl FnOnce(&mut Counters) -> T,
    ) -> Result<T> {
        let mut tx = self.writer.begin().await?;
        let mut c = Counters {
            source: load(&mut tx, &keys[0], now).await?,
            account: load(&mut tx, &keys[1], now).await?,
            account_source: load(&mut tx, &keys[2], now).await?,
        };
        let out = change(&mut c);
        save(&mut tx, &keys[0], &c.source, now).await?;
        save(&mut tx, &keys[1], &c.account, now).await?;
        save(&mut tx, &keys[2], &c.account_source, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn admit_sign_in(
        &self,
        keys: &[String; 3],
        policy: &SignInPolicy,
        now: OffsetDateTime,
    ) -> Result<Admission> {
        self.with_counters(keys, now, |c| domain::sign_in::admit(c, policy, now)).await
    }

    pub async fn settle_sign_in(
        &self,
        keys: &[String; 3],
        succeeded: bool,
        policy: &SignInPolicy,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.with_counters(keys, now, |c| domain::sign_in::settle(c, succeeded, policy, now)).await
    }

    /// Forgets counters untouched since `before` that neither block nor trust anything any more.
    pub async fn purge_sign_in_throttle(
        &self,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        Ok(sqlx::query!(
            "DELETE FROM sign_in_throttle WHERE updated_at < ? AND (blocked_until IS NULL OR blocked_until <= ?) AND (trusted_until IS NULL OR trusted_until <= ?)",
            before,
            now,
            now
        )
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// The secret called `name`: `fresh` if this is the first time anyone asks, else the one stored.
    pub async fn server_secret(
        &self,
        name: &str,
        fresh: &str,
        now: OffsetDateTime,
    ) -> Result<String> {
        sqlx::query!(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            name,
            fresh,
            now
        )
        .execute(&self.writer)
        .await?;
        sqlx::query_scalar!("SELECT value FROM server_secrets WHERE name = ?", name)
            .fetch_one(&self.writer)
            .await
    }
}
