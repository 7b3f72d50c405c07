//! Pending Marketplace installs: an install Zoom authorized for an account that no customer has
//! claimed yet, kept (tokens included) under the hash of a one-time id until it is confirmed or expires.

use super::{DialectStore, Result};
use domain::onboarding::{PendingInstall, StoredTokens};
use domain::ZoomAccountId;
use time::OffsetDateTime;

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
            zoom_account_id: ZoomAccountId::from_trusted(self.zoom_account_id),
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

impl DialectStore {
    /// Keeps `p` waiting under `id_hash`; once (a retry after a commit whose answer was lost finds
    /// it there).
    pub async fn insert_pending_install(&self, id_hash: &str, p: &PendingInstall) -> Result<()> {
        sqlx::query!("DELETE FROM zoom_pending_installs WHERE valid_until <= $1", p.created_at)
            .execute(self.writer())
            .await?;
        let account = p.zoom_account_id.as_str();
        sqlx::query!(
            "INSERT INTO zoom_pending_installs (id_hash, zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, \
             access_token, refresh_token, token_expires_at, created_at, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id_hash) DO NOTHING",
            id_hash,
            account,
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
        .execute(self.writer())
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
            r#"SELECT zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, access_token, refresh_token,
                      token_expires_at AS "token_expires_at!: OffsetDateTime", created_at AS "created_at!: OffsetDateTime",
                      valid_until AS "valid_until!: OffsetDateTime"
               FROM zoom_pending_installs WHERE id_hash = $1 AND valid_until > $2"#,
            id_hash,
            now
        )
        .fetch_optional(self.writer())
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
            r#"DELETE FROM zoom_pending_installs WHERE id_hash = $1 AND valid_until > $2
               RETURNING zoom_account_id, zoom_user_id, zoom_email, zoom_name, zoom_account_number, access_token, refresh_token,
                      token_expires_at AS "token_expires_at!: OffsetDateTime", created_at AS "created_at!: OffsetDateTime",
                      valid_until AS "valid_until!: OffsetDateTime""#,
            id_hash,
            now
        )
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(PendingRow::into_pending))
    }
}
