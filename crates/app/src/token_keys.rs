//! Zoom's OAuth tokens (and install codes waiting for a sign-in) are encrypted at rest with
//! ChaCha20-Poly1305. A sealed value is `"<key id>:<base64(nonce ‖ ciphertext)>"`, so keys can rotate:
//! the current key seals, every configured key opens what it sealed. The purpose ("access",
//! "refresh", "code") is bound as associated data, so a value cannot be moved into another column.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{field}: {message}")]
    Config { field: &'static str, message: String },
    #[error("a stored token was sealed with key {0:?}, which is not configured (keep old keys in zoom.old_token_keys)")]
    UnknownKey(String),
    #[error("a stored token cannot be opened: it is damaged or was sealed for something else")]
    Damaged,
}

#[derive(Clone)]
pub struct TokenKeys {
    current_id: String,
    keys: Vec<(String, ChaCha20Poly1305)>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("TokenKeys").field("current", &self.current_id).field("ids", &ids).finish()
    }
}

/// `"ID:BASE64"` (or bare base64, id `default`) → id and a 32-byte key.
fn parse_key(field: &'static str, raw: &str) -> Result<(String, ChaCha20Poly1305), KeyError> {
    let raw = raw.trim();
    let (id, b64) = match raw.split_once(':') {
        Some((id, b64)) => (id.trim(), b64.trim()),
        None => ("default", raw),
    };
    if id.is_empty()
        || id.len() > 32
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(KeyError::Config {
            field,
            message: "the key id (before ':') must be 1 to 32 letters, digits, '-' or '_'".into(),
        });
    }
    let bytes = STANDARD.decode(b64).map_err(|_| KeyError::Config {
        field,
        message: "is not base64 (make one with: head -c 32 /dev/urandom | base64)".into(),
    })?;
    if bytes.len() != 32 {
        return Err(KeyError::Config {
            field,
            message: format!("must be 32 bytes of base64, got {} bytes", bytes.len()),
        });
    }
    Ok((id.to_owned(), ChaCha20Poly1305::new(Key::from_slice(&bytes))))
}

impl TokenKeys {
    /// `current` seals; `old` keys only open. Ids must be distinct.
    pub fn new(current: &str, old: &[String]) -> Result<TokenKeys, KeyError> {
        let first = parse_key("zoom.token_key", current)?;
        let current_id = first.0.clone();
        let mut keys = vec![first];
        for raw in old {
            let k = parse_key("zoom.old_token_keys", raw)?;
            if keys.iter().any(|(id, _)| *id == k.0) {
                return Err(KeyError::Config {
                    field: "zoom.old_token_keys",
                    message: format!("key id {:?} is used twice", k.0),
                });
            }
            keys.push(k);
        }
        Ok(TokenKeys { current_id, keys })
    }

    /// A new random key as configuration writes it: `"<id>:<base64 of 32 bytes>"`.
    pub fn new_key_setting(id: &str) -> String {
        format!("{id}:{}", STANDARD.encode(ChaCha20Poly1305::generate_key(&mut OsRng)))
    }

    /// A random key, for tests and the demo.
    pub fn generate(id: &str) -> TokenKeys {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        TokenKeys {
            current_id: id.to_owned(),
            keys: vec![(id.to_owned(), ChaCha20Poly1305::new(&key))],
        }
    }

    pub fn seal(&self, purpose: &str, plain: &str) -> String {
        let cipher = &self.keys[0].1;
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a valid key and nonce cannot fail for inputs this size.
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: purpose.as_bytes() })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{}:{}", self.current_id, STANDARD.encode(out))
    }

    pub fn open(&self, purpose: &str, sealed: &str) -> Result<String, KeyError> {
        let (id, b64) = sealed.split_once(':').ok_or(KeyError::Damaged)?;
        let cipher = &self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?
            .1;
        let bytes = STANDARD.decode(b64).map_err(|_| KeyError::Damaged)?;
        if bytes.len() < 12 {
            return Err(KeyError::Damaged);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: purpose.as_bytes() })
            .map_err(|_| KeyError::Damaged)?;
        String::from_utf8(plain).map_err(|_| KeyError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_tokens_open_and_hide_the_token() {
        let keys = TokenKeys::new(&format!("k1:{}", key(1)), &[]).unwrap();
        let sealed = keys.seal("access", "secret-access-token");
        assert!(sealed.starts_with("k1:"));
        assert!(!sealed.contains("secret-access-token"));
        assert_ne!(sealed, keys.seal("access", "secret-access-token"), "fresh nonce each time");
        assert_eq!(keys.open("access", &sealed).unwrap(), "secret-access-token");
        assert_eq!(keys.open("refresh", &sealed), Err(KeyError::Damaged), "bound to its purpose");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(keys.open("access", &tampered).is_err());
    }

    #[test]
    fn rotation_new_key_seals_old_keys_still_open() {
        let old = TokenKeys::new(&format!("k1:{}", key(1)), &[]).unwrap();
        let sealed_before = old.seal("refresh", "r1");
        let rotated =
            TokenKeys::new(&format!("k2:{}", key(2)), &[format!("k1:{}", key(1))]).unwrap();
        assert_eq!(rotated.open("refresh", &sealed_before).unwrap(), "r1");
        assert!(rotated.seal("refresh", "r2").starts_with("k2:"));
        let dropped = TokenKeys::new(&format!("k2:{}", key(2)), &[]).unwrap();
        assert_eq!(dropped.open("refresh", &sealed_before), Err(KeyError::UnknownKey("k1".into())));
    }

    #[test]
    fn bad_keys_are_refused_with_the_setting_named() {
        let e = TokenKeys::new("k1:not base64!", &[]).unwrap_err();
        assert!(e.to_string().starts_with("zoom.token_key: is not base64"), "{e}");
        let e = TokenKeys::new(&STANDARD.encode([1u8; 16]), &[]).unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let e = TokenKeys::new(&format!("a:{}", key(1)), &[format!("a:{}", key(2))]).unwrap_err();
        assert!(e.to_string().starts_with("zoom.old_token_keys"), "{e}");
        assert!(!format!("{:?}", TokenKeys::generate("x")).contains("Chacha"));
    }
}
