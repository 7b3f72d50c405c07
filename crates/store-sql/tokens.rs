//! A Zoom link's OAuth tokens: read, and refreshed by one caller at a time. A refresh is leased on the
//! tokens' generation, and the new tokens are stored only by the caller still holding that lease on
//! that generation (compare-and-set), so two instances never spend one refresh token twice.

use super::{DialectStore, Result};
use domain::onboarding::StoredTokens;
use time::OffsetDateTime;
use uuid::Uuid;

impl DialectStore {
    pub async fn zoom_tokens(&self, link_id: Uuid) -> Result<Option<StoredTokens>> {
        let row = sqlx::query!(
            r#"SELECT access_token, refresh_token, expires_at AS "expires_at!: OffsetDateTime", generation FROM zoom_tokens WHERE link_id = $1"#,
            link_id
        )
        .fetch_optional(self.writer())
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
        .execute(self.writer())
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
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up a refresh lease (the refresh failed before Zoom was told anything that matters).
    pub async fn abandon_token_refresh(&self, link_id: Uuid, owner: &str) -> Result<()> {
        sqlx::query!("UPDATE zoom_tokens SET refresh_owner = NULL, refresh_lease_until = NULL WHERE link_id = $1 AND refresh_owner = $2", link_id, owner)
            .execute(self.writer())
            .await
            .map(|_| ())
    }
}
