//! Bearer tokens on the REST API: who is calling, for which account, with which scopes.

use crate::error::ApiError;
use crate::{RefreshRotation, Simulator};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

/// The caller of a `/v2` operation, from its access token.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub account_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
}

impl Caller {
    /// Zoom lists, per operation, the classic and granular scopes any one of which is enough [doc].
    pub fn require(&self, accepted: &[&str]) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| accepted.contains(&s.as_str())) {
            Ok(())
        } else {
            Err(ApiError::missing_scopes(accepted))
        }
    }
}

impl FromRequestParts<Simulator> for Caller {
    type Rejection = Response;

    /// The token first, then the account's rate limit: an unauthenticated call counts against no one.
    async fn from_request_parts(parts: &mut Parts, sim: &Simulator) -> Result<Caller, Response> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (scheme, token) = header.split_once(' ').unwrap_or(("", ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::invalid_token().into_response());
        }
        let caller = sim.authenticate(token.trim()).await.map_err(IntoResponse::into_response)?;
        let route =
            parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("");
        let label = crate::ratelimit::Label::of(parts.method.as_str(), route);
        sim.take_quota(&caller.account_id, label).map_err(IntoResponse::into_response)?;
        Ok(caller)
    }
}

impl Simulator {
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let now = self.now();
        let (caller, retire_below) = self.read(|s| {
            let t = s.access_tokens.get(token).ok_or_else(ApiError::invalid_token)?;
            if t.expires_at <= now {
                return Err(ApiError::expired_token());
            }
            let caller = Caller {
                account_id: t.account_id.clone(),
                user_id: t.user_id.clone(),
                scopes: t.scopes.clone(),
            };
            // Using a new generation's access token retires the refresh tokens before it.
            let retire = t.grant_id.as_ref().and_then(|g| {
                s.grants
                    .get(g)
                    .filter(|grant| grant.floor < t.generation)
                    .map(|_| (g.clone(), t.generation))
            });
            Ok((caller, retire))
        })?;
        if let (RefreshRotation::OnFirstUseOfNew, Some((grant_id, generation))) =
            (self.options().refresh_rotation, retire_below)
        {
            self.write(|s| {
                if let Some(g) = s.grants.get_mut(&grant_id) {
                    g.floor = g.floor.max(generation);
                }
                s.refresh_tokens
                    .retain(|_, r| r.grant_id != grant_id || r.generation >= generation);
            })
            .await;
        }
        Ok(caller)
    }
}
