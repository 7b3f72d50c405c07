//! Zoom's OAuth (REFERENCE §3) through the `oauth2` crate: authorize URL with PKCE, code exchange,
//! refresh (Zoom rotates refresh tokens), revocation. Our own transport wraps reqwest so that the
//! answer's status and headers (429, `Retry-After`, 5xx) survive into `ZoomError`.

use crate::{AccountToken, Client, Config, PkceVerifier, Tokens, ZoomError};
use oauth2::basic::{BasicTokenIntrospectionResponse, BasicTokenResponse};
use oauth2::http::{HeaderMap, StatusCode};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    RevocationUrl, StandardRevocableToken, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tracing::Instrument;

pub(crate) type OAuthClient = oauth2::Client<
    ZoomOAuthError,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    ZoomOAuthError,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
>;

/// Zoom's token-endpoint error: `{"reason": "Invalid Token!", "error": "invalid_grant"}` [seen], which
/// is RFC 6749's shape plus `reason`; oauth2's standard type would drop the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ZoomOAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl fmt::Display for ZoomOAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason.as_deref().or(self.error_description.as_deref()) {
            Some(reason) => write!(f, "{} ({})", reason, self.error),
            None => f.write_str(&self.error),
        }
    }
}

impl oauth2::ErrorResponse for ZoomOAuthError {}

pub(crate) fn client(config: &Config) -> Result<(OAuthClient, Option<url::Url>), ZoomError> {
    let endpoint = |path: &str| {
        config
            .oauth_base
            .join(path)
            .map_err(|e| ZoomError::Invalid(format!("oauth_base: cannot make the {path} URL: {e}")))
    };
    // oauth2 refuses a revocation URL that is not https (RFC 7009 §2). The simulator speaks plain HTTP
    // on loopback, so oauth2 gets the https spelling and our transport puts `http` back for that one URL.
    let mut revocation = endpoint("/oauth/revoke")?;
    let plain = (revocation.scheme() == "http").then(|| revocation.clone());
    if plain.is_some() {
        revocation
            .set_scheme("https")
            .map_err(|()| ZoomError::Invalid("oauth_base: cannot use https".into()))?;
    }
    let oauth = oauth2::Client::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(config.client_secret.clone()))
        // Zoom authenticates clients with HTTP Basic only (client_secret_basic), oauth2's default.
        .set_auth_uri(AuthUrl::from_url(endpoint("/oauth/authorize")?))
        .set_token_uri(TokenUrl::from_url(endpoint("/oauth/token")?))
        .set_revocation_url(RevocationUrl::from_url(revocation))
        .set_redirect_uri(RedirectUrl::from_url(config.redirect_uri.clone()));
    Ok((oauth, plain))
}

type OAuthFailure = RequestTokenError<reqwest::Error, ZoomOAuthError>;

/// reqwest under oauth2. A type rather than a closure: with a closure, the compiler cannot prove the
/// request futures `Send` (rust-lang/rust#102211), and callers could not spawn or `await` them in
/// axum handlers.
struct Transport<'a> {
    client: &'a Client,
    seen: &'a Seen,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = reqwest::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.client.transport(self.seen, request))
    }
}

/// What the transport saw of the last answer, for errors oauth2 does not carry.
#[derive(Default)]
struct Seen(Mutex<Option<(StatusCode, HeaderMap)>>);

impl Seen {
    fn get(&self) -> Option<(StatusCode, HeaderMap)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Client {
    /// A carrier-started flow: the authorize URL with `state` and a PKCE (S256) challenge. Keep the
    /// verifier server-side for the callback.
    pub fn authorize_url(&self, state: &str) -> (url::Url, PkceVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _) = self
            .inner
            .oauth
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(challenge)
            .url();
        (url, PkceVerifier(verifier.into_secret()))
    }

    /// Exchanges an authorization code. Marketplace installs come without state and without PKCE:
    /// `verifier` None.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<PkceVerifier>,
    ) -> Result<Tokens, ZoomError> {
        let span = tracing::info_span!(
            "zoom.oauth",
            grant = "authorization_code",
            pkce = verifier.is_some(),
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty
        );
        let seen = Seen::default();
        let (started, sent_at) = (std::time::Instant::now(), (self.inner.now)());
        let mut request = self.inner.oauth.exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(v) = verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(v.0));
        }
        let answer = request
            .request_async(&Transport { client: self, seen: &seen })
            .instrument(span.clone())
            .await;
        let tokens = self.tokens(answer, &seen, sent_at);
        finish(&span, &seen, started, tokens.as_ref().err());
        tokens
    }

    /// Exchanges a refresh token. Zoom rotates them: persist the new pair before using it.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ZoomError> {
        let span = tracing::info_span!(
            "zoom.oauth",
            grant = "refresh_token",
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty
        );
        let seen = Seen::default();
        let (started, sent_at) = (std::time::Instant::now(), (self.inner.now)());
        let token = RefreshToken::new(refresh_token.to_owned());
        let transport = Transport { client: self, seen: &seen };
        let answer = self
            .inner
            .oauth
            .exchange_refresh_token(&token)
            .request_async(&transport)
            .instrument(span.clone())
            .await;
        let tokens = self.tokens(answer, &seen, sent_at);
        finish(&span, &seen, started, tokens.as_ref().err());
        tokens
    }

    /// Server-to-Server OAuth: an access token for the app owner's own account (`account_id`), from
    /// the `account_credentials` grant, which oauth2 does not know. Zoom gives no refresh token.
    pub async fn account_token(&self, account_id: &str) -> Result<AccountToken, ZoomError> {
        let span = tracing::info_span!(
            "zoom.oauth",
            grant = "account_credentials",
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty
        );
        let seen = Seen::default();
        let (started, sent_at) = (std::time::Instant::now(), (self.inner.now)());
        let answer = async {
            let response = self
                .inner
                .http
                .post(self.inner.token_url.clone())
                .basic_auth(&self.inner.client_id, Some(&self.inner.client_secret))
                .form(&[("grant_type", "account_credentials"), ("account_id", account_id)])
                .send()
                .await
                .map_err(|e| crate::api::transport_error(&e))?;
            let (status, headers) = (response.status(), response.headers().clone());
            *seen.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((status, headers));
            let body = response.bytes().await.map_err(|e| crate::api::transport_error(&e))?;
            let parsed = if status.is_success() {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body))
                    .map_err(|e| RequestTokenError::Parse(e, body.to_vec()))
            } else {
                Err(match serde_json::from_slice::<ZoomOAuthError>(&body) {
                    Ok(z) => RequestTokenError::ServerResponse(z),
                    Err(_) => RequestTokenError::Other(format!("HTTP {status}")),
                })
            };
            let t: BasicTokenResponse =
                parsed.map_err(|e| failure(e, &seen, (self.inner.now)()))?;
            let expires_in = t.expires_in().unwrap_or(Duration::from_secs(3600));
            Ok(AccountToken {
                access_token: t.access_token().secret().clone(),
                expires_at: sent_at + expires_in,
            })
        }
        .instrument(span.clone())
        .await;
        finish(&span, &seen, started, answer.as_ref().err());
        answer
    }

    /// Revokes a token, which ends the whole authorization in Zoom (its access and refresh tokens).
    /// An unknown token is not an error (RFC 7009 §2.2).
    pub async fn revoke(&self, token: &str) -> Result<(), ZoomError> {
        let span = tracing::info_span!(
            "zoom.oauth",
            grant = "revoke",
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty
        );
        let seen = Seen::default();
        let started = std::time::Instant::now();
        let request = self
            .inner
            .oauth
            .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(token.to_owned())))
            .map_err(|e| ZoomError::Invalid(format!("revocation: {e}")))?;
        let answer = request
            .request_async(&Transport { client: self, seen: &seen })
            .instrument(span.clone())
            .await;
        let done = answer.map_err(|e| failure(e, &seen, (self.inner.now)()));
        finish(&span, &seen, started, done.as_ref().err());
        done
    }

    /// reqwest under oauth2, remembering the answer's status and headers.
    async fn transport(
        &self,
        seen: &Seen,
        mut request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, reqwest::Error> {
        if let Some(plain) = &self.inner.plain_oauth_base {
            if request.uri().scheme_str() == Some("https") && request.uri().path() == plain.path() {
                if let Ok(uri) = plain.as_str().parse() {
                    *request.uri_mut() = uri;
                }
            }
        }
        let response = self.inner.http.execute(request.try_into()?).await?;
        let (status, headers) = (response.status(), response.headers().clone());
        *seen.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((status, headers.clone()));
        let body = response.bytes().await?.to_vec();
        let mut out = oauth2::HttpResponse::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// `sent_at`: the token was issued after we asked, so counting its lifetime from then errs early.
    fn tokens(
        &self,
        answer: Result<BasicTokenResponse, OAuthFailure>,
        seen: &Seen,
        sent_at: time::OffsetDateTime,
    ) -> Result<Tokens, ZoomError> {
        let t = answer.map_err(|e| failure(e, seen, (self.inner.now)()))?;
        // Zoom always rotates: an answer without a refresh token would strand the link.
        let refresh_token = t
            .refresh_token()
            .ok_or_else(|| ZoomError::Decode("token answer without refresh_token".into()))?;
        let expires_in = t.expires_in().unwrap_or(Duration::from_secs(3600));
        Ok(Tokens {
            access_token: t.access_token().secret().clone(),
            refresh_token: refresh_token.secret().clone(),
            expires_at: sent_at + expires_in,
            scopes: t
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        })
    }
}

/// One log line per token-endpoint call, in its span: status, time, and the error (never a token).
fn finish(
    span: &tracing::Span,
    seen: &Seen,
    started: std::time::Instant,
    error: Option<&ZoomError>,
) {
    if let Some((status, _)) = seen.get() {
        span.record("status", status.as_u16());
    }
    span.record("elapsed_ms", u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    span.in_scope(|| match error {
        None => tracing::debug!("Zoom answered"),
        Some(e) if e.is_retryable() => {
            tracing::info!(error = %e, "Zoom token call failed; retryable")
        }
        Some(e) => tracing::warn!(error = %e, "Zoom refused the token call"),
    });
}

/// Maps an oauth2 failure to what the caller should do, using the status our transport saw.
fn failure(e: OAuthFailure, seen: &Seen, now: time::OffsetDateTime) -> ZoomError {
    let (status, headers) = match (&e, seen.get()) {
        (RequestTokenError::Request(e), _) => return crate::api::transport_error(e),
        (_, Some(s)) => s,
        (_, None) => return ZoomError::Decode(e.to_string()),
    };
    let message = match &e {
        RequestTokenError::ServerResponse(z) => z.to_string(),
        // A success answer carries tokens: name the field we could not read, never quote the body.
        RequestTokenError::Parse(p, _) if status.is_success() => {
            format!("token answer: cannot read `{}`", p.path())
        }
        RequestTokenError::Parse(_, body) => {
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
        }
        other => other.to_string(),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        return ZoomError::RateLimited { retry_after: crate::api::retry_after(&headers, now) };
    }
    if status.is_server_error() {
        return ZoomError::Server { status: status.as_u16(), message };
    }
    match e {
        // Zoom answers a used, expired or foreign code with `invalid_request` rather than RFC 6749's
        // `invalid_grant` [seen]; both mean "this grant will never work".
        RequestTokenError::ServerResponse(z)
            if matches!(z.error.as_str(), "invalid_grant" | "invalid_request") =>
        {
            ZoomError::InvalidGrant { message }
        }
        // A bad client id or secret is configuration, not a token to refresh (Zoom answers it 400 [seen]).
        RequestTokenError::ServerResponse(z)
            if z.error != "invalid_client" && status == StatusCode::UNAUTHORIZED =>
        {
            ZoomError::Unauthorized { message }
        }
        RequestTokenError::ServerResponse(_) => {
            ZoomError::Refused { status: status.as_u16(), code: 0, message }
        }
        _ if status.is_success() => ZoomError::Decode(message),
        _ => ZoomError::Refused { status: status.as_u16(), code: 0, message },
    }
}
