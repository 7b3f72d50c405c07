//! Sign-in throttling and server secrets. The rules are `domain::sign_in`'s; this loads the three
//! counters of an attempt, each created if missing by an upsert that also takes its row (in key
//! order, so two attempts never wait on each other in a circle), lets the rules change them and saves
//! them in the same transaction. Every instance shares the counters: on PostgreSQL concurrent attempts
//! on one key queue on the row the upsert wrote; SQLite's single writer runs one attempt at a time.

use super::{Db, DialectStore, Result};
use domain::sign_in::{Admission, Counter, Counters, SignInPolicy};
use sqlx::Transaction;
use time::OffsetDateTime;

/// The counter under `key`, created if missing, locked until the transaction ends.
async fn lock(tx: &mut Transaction<'_, Db>, key: &str, now: OffsetDateTime) -> Result<Counter> {
    let fresh = Counter::new(now);
    let r = sqlx::query!(
        "INSERT INTO sign_in_throttle (key, failures, window_start, strikes, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (key) DO UPDATE SET updated_at = EXCLUDED.updated_at \
         RETURNING failures AS \"failures!: i64\", window_start AS \"window_start!: OffsetDateTime\", \
         blocked_until AS \"blocked_until?: OffsetDateTime\", strikes AS \"strikes!: i64\", \
         next_slot AS \"next_slot?: OffsetDateTime\", trusted_until AS \"trusted_until?: OffsetDateTime\"",
        key,
        fresh.failures,
        fresh.window_start,
        fresh.strikes,
        now
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Counter {
        failures: r.failures,
        window_start: r.window_start,
        blocked_until: r.blocked_until,
        strikes: r.strikes,
        next_slot: r.next_slot,
        trusted_until: r.trusted_until,
    })
}

async fn save(
    tx: &mut Transaction<'_, Db>,
    key: &str,
    c: &Counter,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query!(
        "UPDATE sign_in_throttle SET failures = $2, window_start = $3, blocked_until = $4, strikes = $5, next_slot = $6, \
         trusted_until = $7, updated_at = $8 WHERE key = $1",
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

impl DialectStore {
    /// Runs `change` on the counters under `keys` (source, account, account at source) and saves
    /// them, atomically.
    async fn with_counters<T>(
        &self,
        keys: &[String; 3],
        now: OffsetDateTime,
        change: impl FnOnce(&mut Counters) -> T,
    ) -> Result<T> {
        let mut tx = self.writer().begin().await?;
        let mut order: Vec<usize> = (0..3).collect();
        order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
        let mut loaded: [Option<Counter>; 3] = [None, None, None];
        for i in order {
            loaded[i] = Some(lock(&mut tx, &keys[i], now).await?);
        }
        let [Some(source), Some(account), Some(account_source)] = loaded else {
            return Err(sqlx::Error::Protocol("sign-in counters not loaded".into()));
        };
        let mut c = Counters { source, account, account_source };
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
            "DELETE FROM sign_in_throttle WHERE updated_at < $1 AND (blocked_until IS NULL OR blocked_until <= $2) AND (trusted_until IS NULL OR trusted_until <= $2)",
            before,
            now
        )
        .execute(self.writer())
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
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            name,
            fresh,
            now
        )
        .execute(self.writer())
        .await?;
        sqlx::query_scalar!("SELECT value FROM server_secrets WHERE name = $1", name)
            .fetch_one(self.writer())
            .await
    }
}
