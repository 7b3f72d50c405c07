//! Signing in, sessions, and API tokens.
//!
//! Passwords are argon2id hashes. A session id and an API token are 32 random bytes shown once; the
//! database keeps their SHA-256, which is enough for high-entropy secrets and cheap per request.

use crate::{conflict, App, AppError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use domain::auth::{ApiToken, Role, Scope, Session, User};
use domain::sign_in::Admission;
use domain::{Actor, CustomerId, UserId};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

pub const MIN_PASSWORD_LEN: usize = 10;
/// How long a sign-in form stays valid.
pub const LOGIN_CSRF_TTL_SECS: i64 = 3600;
pub const TOKEN_PREFIX: &str = "pxt_";

/// A new session: the cookie value (shown to the browser once) and what is stored.
pub struct NewSession {
    pub cookie: String,
    pub session: Session,
    pub user: User,
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Refused(format!("cannot hash password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A valid argon2 hash of nothing anyone knows, checked when the e-mail is unknown so that a wrong
/// e-mail and a wrong password take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

/// Password checks and what they share: how many may wait, how many run, the sign-in form's key.
pub struct Hashing {
    admitted: Arc<Semaphore>,
    running: Semaphore,
    attempts: AtomicU64,
    login_csrf_key: OnceCell<String>,
}

impl Hashing {
    pub(crate) fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Hashing {
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            running: Semaphore::new(concurrency),
            attempts: AtomicU64::new(0),
            login_csrf_key: OnceCell::new(),
        }
    }
}

fn login_csrf_tag(key: &str, issued: i64, nonce: &str) -> String {
    // HMAC takes keys of any length, so this never fails; an empty tag is never accepted.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("peerex login form|{issued}|{nonce}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn digest(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_email(email: &str) -> Result<String> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email.to_owned())
    } else {
        Err(AppError::invalid("email", "is not an e-mail address"))
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::invalid(
            "password",
            format!("must have at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(AppError::invalid("password", "is longer than 1024 bytes"));
    }
    Ok(())
}

impl App {
    /// Creates an operator (`Admin`/`ReadOnly`) or, with a customer, a customer admin.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
        customer: Option<CustomerId>,
    ) -> Result<User> {
        let email = check_email(email)?;
        check_password(password)?;
        if role == Role::CustomerAdmin {
            let id = customer.ok_or_else(|| {
                AppError::invalid("customer", "a customer admin needs a customer")
            })?;
            self.store
                .get_customer(id)
                .await?
                .ok_or(AppError::invalid("customer", "no such customer"))?;
        } else if customer.is_some() {
            return Err(AppError::invalid("role", "operators belong to no customer"));
        }
        let user = User {
            id: UserId::new(),
            email,
            password_hash: hash_password(password)?,
            role,
            customer_id: customer,
            failed_logins: 0,
            locked_until: None,
            created_at: self.now(),
        };
        self.store
            .insert_user(&user)
            .await
            .map_err(|e| conflict(e, "email", "a user with this e-mail already exists"))?;
        Ok(user)
    }

    /// Checks e-mail and password from `source` (the client's address) and opens a session.
    ///
    /// Every attempt is counted under its address, its account, and the account at that address,
    /// before the password is checked (`domain::sign_in` has the rules), so parallel guesses get
    /// no more checks than sequential ones, and nobody elsewhere can lock the account. Unknown
    /// e-mails are counted and checked (against a decoy hash) exactly like known ones. Password
    /// checks run on the blocking pool, at most `hash_concurrency` at once; when too many wait,
    /// the attempt is answered [`AppError::Busy`] at once and not counted.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<NewSession> {
        let Ok(_admitted) = self.hashing.admitted.clone().try_acquire_owned() else {
            return Err(AppError::Busy(1));
        };
        let email = email.trim();
        let source = source.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let keys = domain::sign_in::keys(email, &source).map(|k| digest(&k));
        let policy = &self.settings.sign_in;
        let now = self.now();
        self.maybe_purge_throttle(now).await;
        match self.store.admit_sign_in(&keys, policy, now).await? {
            Admission::Refused { until } => {
                tracing::warn!(%source, "sign-in refused: too many failures");
                return Err(AppError::Locked(((until - now).whole_seconds() + 59).max(60) / 60));
            }
            Admission::Busy { until } => {
                return Err(AppError::Busy((until - now).whole_seconds().max(1)));
            }
            Admission::Check { not_before: Some(at) } => {
                let wait = std::time::Duration::try_from(at - now).unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Admission::Check { not_before: None } => {}
        }
        let user = self.store.user_by_email(email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let right = self.check_password(password, hash).await? && user.is_some();
        self.store.settle_sign_in(&keys, right, policy, self.now()).await?;
        let Some(user) = user.filter(|_| right) else {
            tracing::warn!(%source, "failed sign-in");
            return Err(AppError::BadCredentials);
        };
        let now = self.now();
        let cookie = random_secret();
        let session = Session {
            id_hash: digest(&cookie),
            user_id: user.id,
            csrf_token: random_secret(),
            created_at: now,
            expires_at: now + self.settings.session_ttl,
        };
        self.store.insert_session(&session).await?;
        Ok(NewSession { cookie, session, user })
    }

    /// Verifies `password` against `hash` (a decoy when there is no user) off the request threads,
    /// at most `hash_concurrency` at once.
    async fn check_password(&self, password: &str, hash: Option<String>) -> Result<bool> {
        if password.len() > 1024 {
            return Ok(false);
        }
        let _running = self.hashing.running.acquire().await.map_err(|_| AppError::Busy(1))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match hash {
            Some(h) => verify_password(&password, &h),
            None => {
                verify_password(&password, decoy_hash());
                false
            }
        })
        .await
        .map_err(|_| AppError::Busy(1))
    }

    /// Now and then (one attempt in 256), forgets counters idle for a day.
    async fn maybe_purge_throttle(&self, now: time::OffsetDateTime) {
        if self.hashing.attempts.fetch_add(1, Ordering::Relaxed) & 255 != 0 {
            return;
        }
        if let Err(e) = self.store.purge_sign_in_throttle(now - time::Duration::days(1), now).await
        {
            tracing::warn!(error = %e, "cannot purge sign-in counters");
        }
    }

    /// A token for the sign-in form, which has no session yet: the time it was made, a nonce, and
    /// an HMAC of both under a key every instance shares. It goes into the form and a cookie; a
    /// submission needs both to match and the HMAC to be ours, so no pair made up elsewhere passes.
    pub async fn login_csrf_token(&self) -> Result<String> {
        let key = self.login_csrf_key().await?;
        let issued = self.now().unix_timestamp();
        let nonce = random_secret();
        let tag = login_csrf_tag(&key, issued, &nonce);
        Ok(format!("{issued}.{nonce}.{tag}"))
    }

    /// Whether `token` is one of ours, less than an hour old.
    pub async fn login_csrf_valid(&self, token: &str) -> Result<bool> {
        let mut parts = token.splitn(3, '.');
        let (Some(issued), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(false);
        };
        let Ok(issued) = issued.parse::<i64>() else { return Ok(false) };
        let age = self.now().unix_timestamp() - issued;
        // A minute's grace the other way: another instance's clock may run a little ahead.
        if !(-60..=LOGIN_CSRF_TTL_SECS).contains(&age) || nonce.len() > 64 {
            return Ok(false);
        }
        let key = self.login_csrf_key().await?;
        let expected = login_csrf_tag(&key, issued, nonce);
        Ok(!tag.is_empty()
            && expected.len() == tag.len()
            && expected.bytes().zip(tag.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
    }

    async fn login_csrf_key(&self) -> Result<String> {
        self.hashing
            .login_csrf_key
            .get_or_try_init(|| async {
                Ok::<_, AppError>(
                    self.store.server_secret("login_csrf", &random_secret(), self.now()).await?,
                )
            })
            .await
            .cloned()
    }

    /// The live session behind a cookie value, if any.
    pub async fn session(&self, cookie: &str) -> Result<Option<(Session, User)>> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        Ok(self.store.session(&digest(cookie), self.now()).await?)
    }

    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        Ok(self.store.delete_session(&digest(cookie)).await?)
    }

    /// Ends a signed-in session: its cookie no longer opens anything.
    pub async fn end_session(&self, session: &Session) -> Result<()> {
        Ok(self.store.delete_session(&session.id_hash).await?)
    }

    /// A customer's users, or the operators with `None`.
    pub async fn users(&self, customer: Option<CustomerId>) -> Result<Vec<User>> {
        Ok(self.store.list_users(customer).await?)
    }

    /// Every API token, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>> {
        Ok(self.store.list_tokens().await?)
    }

    /// Revokes a token: it opens nothing from now on. Revoking twice is done, not an error;
    /// revoking a token that never existed is `NotFound`.
    pub async fn revoke_token(&self, id: uuid::Uuid, by: &Actor) -> Result<()> {
        if self.store.revoke_token(id, self.now()).await? {
            tracing::info!(token = %id, by = %by, "API token revoked");
            return Ok(());
        }
        if self.store.list_tokens().await?.iter().any(|t| t.id == id) {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Creates an API token; the clear token is returned once and never stored.
    pub async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        created_by: &str,
    ) -> Result<(String, ApiToken)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(AppError::invalid("name", "give the token a name of 1 to 64 characters"));
        }
        let clear = format!("{TOKEN_PREFIX}{}", random_secret());
        let token = ApiToken {
            id: uuid::Uuid::now_v7(),
            name: name.to_owned(),
            token_hash: digest(&clear),
            scope,
            created_by: created_by.to_owned(),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.insert_token(&token).await?;
        Ok((clear, token))
    }

    /// The live token behind a bearer value, if any.
    pub async fn authenticate_token(&self, bearer: &str) -> Result<Option<ApiToken>> {
        if !bearer.starts_with(TOKEN_PREFIX) || bearer.len() > 128 {
            return Ok(None);
        }
        Ok(self.store.token_by_hash(&digest(bearer)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_digests_are_stable() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(random_secret(), random_secret());
    }

    #[test]
    fn emails_and_passwords_are_checked() {
        assert!(check_email("ops@carrier.example").is_ok());
        for bad in ["", "ops", "ops@", "@x.y", "a b@x.y", "ops@localhost"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_password("short").is_err());
    }
}
