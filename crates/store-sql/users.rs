//! Users, their sessions and the API tokens.

use super::rows::{SessionUserRow, TokenRow, UserRow};
use super::{DialectStore, Result};
use domain::auth::{ApiToken, Session, User};
use domain::{CustomerId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

impl DialectStore {
    pub async fn insert_user(&self, u: &User) -> Result<()> {
        let db_id = u.id.as_uuid();
        let db_role = u.role.as_str();
        let db_customer_id = u.customer_id.map(|c| c.as_uuid());
        sqlx::query!("INSERT INTO users (id, email, password_hash, role, customer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)", db_id, u.email, u.password_hash, db_role, db_customer_id, u.created_at)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = select_users!("WHERE lower(email) = lower($1)", email)
            .fetch_optional(self.reader())
            .await?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn list_users(&self, customer: Option<CustomerId>) -> Result<Vec<User>> {
        let rows = match customer.map(|c| c.as_uuid()) {
            Some(c) => {
                select_users!("WHERE customer_id = $1 ORDER BY email", c)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                select_users!("WHERE customer_id IS NULL ORDER BY email")
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Records a failed sign-in; returns the count so far.
    pub async fn record_login_failure(
        &self,
        id: UserId,
        lock_until: Option<OffsetDateTime>,
    ) -> Result<i64> {
        let id = id.as_uuid();
        sqlx::query_scalar!(
            r#"UPDATE users SET failed_logins = failed_logins + 1, locked_until = COALESCE($1, locked_until) WHERE id = $2 RETURNING failed_logins AS "failed_logins!: i64""#,
            lock_until,
            id
        )
        .fetch_one(self.writer())
        .await
    }

    pub async fn reset_login_failures(&self, id: UserId) -> Result<()> {
        let db_id = id.as_uuid();
        sqlx::query!("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", db_id)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    pub async fn set_password(&self, id: UserId, hash: &str) -> Result<bool> {
        let db_id = id.as_uuid();
        let done = sqlx::query!("UPDATE users SET password_hash = $1 WHERE id = $2", hash, db_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_session(&self, s: &Session) -> Result<()> {
        let db_user_id = s.user_id.as_uuid();
        sqlx::query!("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", s.id_hash, db_user_id, s.csrf_token, s.created_at, s.expires_at)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    /// The live session with this id hash and its user; expired sessions are not returned.
    pub async fn session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, User)>> {
        let row = sqlx::query_as!(
            SessionUserRow,
            r#"SELECT s.id_hash AS "id_hash!", s.csrf_token, s.created_at AS "session_created_at!: OffsetDateTime", s.expires_at AS "expires_at!: OffsetDateTime",
                      u.id AS "id!: Uuid", u.email, u.password_hash, u.role, u.customer_id AS "customer_id: Uuid", u.failed_logins,
                      u.locked_until AS "locked_until: OffsetDateTime", u.created_at AS "created_at!: OffsetDateTime"
               FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2"#,
            id_hash,
            now
        )
        .fetch_optional(self.reader())
        .await?;
        row.map(SessionUserRow::into_pair).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", id_hash)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    pub async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now)
            .execute(self.writer())
            .await?
            .rows_affected())
    }

    pub async fn insert_token(&self, t: &ApiToken) -> Result<()> {
        let db_scope = t.scope.as_str();
        sqlx::query!("INSERT INTO api_tokens (id, name, token_hash, scope, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)", t.id, t.name, t.token_hash, db_scope, t.created_by, t.created_at)
            .execute(self.writer())
            .await
            .map(|_| ())
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let row = select_tokens!("WHERE token_hash = $1 AND revoked_at IS NULL", hash)
            .fetch_optional(self.reader())
            .await?;
        row.map(TokenRow::into_token).transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = select_tokens!("ORDER BY created_at DESC").fetch_all(self.reader()).await?;
        rows.into_iter().map(TokenRow::into_token).collect()
    }

    pub async fn revoke_token(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            now,
            id
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
