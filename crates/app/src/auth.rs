//! Signing in, sessions, and API tokens.
//!
//! Passwords are argon2id hashes. A session id and an API token are 32 random bytes shown once; the
//! database keeps their SHA-256, which is enough for high-entropy secrets and cheap per request.

use crate::{conflict, App, AppError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use domain::auth::{ApiToken, Role, Scope, Session, User};
use domain::{CustomerId, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const MIN_PASSWORD_LEN: usize = 10;
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

    /// Checks e-mail and password and opens a session. After `max_failed_logins` failures in a row the
    /// account is locked for `lockout`, even for the right password, which stops password guessing.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<NewSession> {
        let now = self.now();
        let Some(user) = self.store.user_by_email(email.trim()).await? else {
            verify_password(password, decoy_hash());
            return Err(AppError::BadCredentials);
        };
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            return Err(AppError::Locked(((until - now).whole_seconds() + 59) / 60));
        }
        if !verify_password(password, &user.password_hash) {
            let lock = (user.failed_logins + 1 >= self.settings.max_failed_logins)
                .then(|| now + self.settings.lockout);
            self.store.record_login_failure(user.id, lock).await?;
            tracing::warn!(user = %user.email, locked = lock.is_some(), "failed sign-in");
            return Err(match lock {
                Some(_) => AppError::Locked(self.settings.lockout.whole_minutes()),
                None => AppError::BadCredentials,
            });
        }
        if user.failed_logins > 0 || user.locked_until.is_some() {
            self.store.reset_login_failures(user.id).await?;
        }
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
