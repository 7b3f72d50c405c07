//! peerex's typed client for Zoom: OAuth (authorization code with PKCE, rotating refresh tokens,
//! revocation) through the `oauth2` crate, `GET /v2/users/me`, the Number Management API's peering
//! numbers, and verification of Zoom's webhooks. `reference/zoom/REFERENCE.md` is what it follows.
//!
//! It must not depend on peerex's domain, store, app or web crates: it speaks Zoom's language (strings,
//! Zoom's codes) and the `app` crate translates. Secrets (client secret, tokens, PKCE verifiers) never
//! appear in `Debug` output or logs.

mod api;
mod error;
mod oauth;
pub mod webhook;

pub use error::ZoomError;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Zoom accepts at most this many numbers in one POST, PATCH or DELETE (REFERENCE §1 [doc]).
pub const MAX_BATCH: usize = 200;

/// Where Zoom is and who peerex is to it.
#[derive(Clone)]
pub struct Config {
    /// `https://zoom.us` (the simulator: `http://127.0.0.1:PORT`).
    pub oauth_base: url::Url,
    /// `https://api.zoom.us/v2` (the simulator: `http://127.0.0.1:PORT/v2`).
    pub api_base: url::Url,
    pub client_id: String,
    /// Never printed.
    pub client_secret: String,
    /// peerex's OAuth callback, registered with the Zoom app.
    pub redirect_uri: url::Url,
    /// For a whole call, connecting included.
    pub timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("oauth_base", &self.oauth_base.as_str())
            .field("api_base", &self.api_base.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Zoom client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    oauth: oauth::OAuthClient,
    api_base: url::Url,
    /// The `http://` base the transport puts back where oauth2 was given `https://` (see `oauth.rs`).
    plain_oauth_base: Option<url::Url>,
    now: Box<dyn Fn() -> OffsetDateTime + Send + Sync>,
    /// The longest a call can take, connecting included.
    timeout: Duration,
    /// For the grants oauth2 does not know (`account_credentials`): the token URL and the client's
    /// credentials, sent as HTTP Basic like every other token call.
    token_url: url::Url,
    client_id: String,
    client_secret: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.inner.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: Config) -> Result<Client, ZoomError> {
        Client::with_clock(config, OffsetDateTime::now_utc)
    }

    /// A client that reads the time from `now` (to compute `Tokens::expires_at`), for an injected clock.
    pub fn with_clock(
        config: Config,
        now: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Result<Client, ZoomError> {
        for (field, url) in [
            ("oauth_base", &config.oauth_base),
            ("api_base", &config.api_base),
            ("redirect_uri", &config.redirect_uri),
        ] {
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(ZoomError::Invalid(format!("{field}: {url} is not an http(s) URL")));
            }
        }
        if config.timeout.is_zero() {
            return Err(ZoomError::Invalid("timeout: must be more than zero".into()));
        }
        if config.client_id.is_empty() || config.client_secret.is_empty() {
            return Err(ZoomError::Invalid("client_id and client_secret: both are needed".into()));
        }
        let timeout = config.timeout;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // oauth2's advice: following redirects from a token endpoint can leak codes (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("peerex-zoom/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ZoomError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        let (oauth, plain_oauth_base) = oauth::client(&config)?;
        let token_url = config
            .oauth_base
            .join("/oauth/token")
            .map_err(|e| ZoomError::Invalid(format!("oauth_base: {e}")))?;
        let mut api_base = config.api_base;
        // `join` replaces the last segment unless the base ends with a slash.
        if !api_base.path().ends_with('/') {
            api_base.set_path(&format!("{}/", api_base.path()));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                oauth,
                api_base,
                plain_oauth_base,
                now: Box::new(now),
                timeout,
                token_url,
                client_id: config.client_id,
                client_secret: config.client_secret,
            }),
        })
    }

    /// The longest one call to Zoom can take (the configured timeout): a lease held across a call
    /// must outlive it.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}

/// The PKCE verifier of a carrier-started flow: keep it (server side) until the callback.
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// A verifier kept earlier (e.g. in the session) and read back.
    pub fn new(secret: String) -> PkceVerifier {
        PkceVerifier(secret)
    }

    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier(<redacted>)")
    }
}

/// What the token endpoint gave. Persist `refresh_token` before using `access_token`: the previous
/// refresh token stops working once this pair is used (REFERENCE §3).
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: OffsetDateTime,
    pub scopes: Vec<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A Server-to-Server OAuth access token for the app owner's own account: no refresh token, ask
/// again once it expires.
#[derive(Clone)]
pub struct AccountToken {
    pub access_token: String,
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountToken")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GET /v2/users/me`: who authorized, and in which Zoom account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub user_id: String,
    pub account_id: String,
    pub email: String,
    /// The user's name as Zoom shows it (`display_name`, else first and last name); may be empty.
    pub name: String,
    /// The account's number as Zoom shows it to its admins; may be empty.
    pub account_number: String,
}

/// One page of an account's peering numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub numbers: Vec<PeeringNumber>,
    /// None on the last page (Zoom sends an empty string there).
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringNumber {
    /// As Zoom lists it (E.164 with `+`).
    pub phone_number: String,
    pub sip_trunk_name: Option<String>,
    /// Bound to a user, queue, auto receptionist... in Zoom. There is no webhook for it: list to learn it.
    pub assigned: bool,
    /// Zoom's `status`: false while inactive (e.g. a port-in not yet complete).
    pub active: bool,
    /// The customer gave the number back to the carrier in Zoom ("Returned" in the Provider Portal;
    /// `number_pool_status` `RETURNED` [assume, REFERENCE]).
    pub returned: bool,
    /// The carrier-wide listing only: the Zoom account the number is in, by its account number.
    pub customer_account_number: Option<String>,
    /// What the number can do in Zoom, as listed.
    pub capabilities: Capabilities,
}

/// A listed number's capability fields, in Zoom's spelling (`INBOUND_AND_OUTBOUND`...); absent when
/// Zoom leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Not in the published listing schema (only in what a carrier sends); read when present.
    pub number_type: Option<String>,
    pub voice_direction: Option<String>,
    pub voice_msg_capacity: Option<String>,
    pub message_capability: Option<String>,
    pub outbound_dialer_not_supported: Option<bool>,
    pub outbound_cli_share_not_supported: Option<bool>,
}

/// One number's result from a POST, PATCH or DELETE, in the order the numbers were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberResult {
    /// As the caller gave it.
    pub phone_number: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Added, updated or removed by this call.
    Done,
    /// Zoom already had it (add) or no longer has it (remove): converged, not an error. Zoom's answer
    /// to an add does not say *which* account has the number; `Client::find_peering_number` tells.
    AlreadyDone,
    /// Zoom refused this number, e.g. "Phone number is assigned"; `message` is Zoom's reason.
    Refused { code: i64, message: String },
}

/// A change to one number for `update_peering_numbers` (PATCH); `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberUpdate {
    pub phone_number: String,
    pub sip_trunk_name: Option<String>,
    /// true = active; false = inactive (e.g. a port-in still pending).
    pub status: Option<bool>,
    /// Comes back in `X-TO-CARRIER-ACCOUNT` on outbound calls; at most 60 characters.
    pub billing_ref_id: Option<String>,
    /// Shown to the customer in Zoom; at most 255 characters.
    pub service_info: Option<String>,
}
