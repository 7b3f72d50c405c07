//! Zoom account ids: which Zoom account a link, an install, a job or a webhook is about. Zoom makes
//! them (`users/me`'s `account_id`, a webhook's `payload.account_id`); peerex only compares, stores
//! and shows them, so what one may hold is kept narrow: what Zoom's ids are made of, nothing that
//! could break a page, a log line or a query.

use serde::{Serialize, Serializer};
use std::fmt;

/// Longest account id accepted (Zoom's are 22 characters).
pub const MAX_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoomAccountId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoomAccountError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("may hold only letters, digits, '-' and '_'")]
    BadCharacter,
}

impl ZoomAccountId {
    /// An account id as Zoom gives it: 1 to [`MAX_LEN`] ASCII letters, digits, `-` or `_`.
    pub fn parse(input: &str) -> Result<Self, ZoomAccountError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ZoomAccountError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(ZoomAccountError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ZoomAccountError::BadCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// Rebuilds an id that was validated before it was stored.
    /// Only the store uses this, on values it wrote itself.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ZoomAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ZoomAccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl PartialEq<str> for ZoomAccountId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ZoomAccountId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_zoom_hands_out() {
        for id in ["acmeZoomAccount0000001", "Ab3-_x", "z"] {
            assert_eq!(ZoomAccountId::parse(id).unwrap().as_str(), id);
        }
        assert_eq!(ZoomAccountId::parse(" acct-1\n").unwrap().as_str(), "acct-1");
    }

    #[test]
    fn refuses_what_would_not_be_an_account_id() {
        assert_eq!(ZoomAccountId::parse(""), Err(ZoomAccountError::Empty));
        assert_eq!(ZoomAccountId::parse("   "), Err(ZoomAccountError::Empty));
        assert_eq!(ZoomAccountId::parse(&"a".repeat(MAX_LEN + 1)), Err(ZoomAccountError::TooLong));
        for bad in ["a b", "acct;1", "<script>", "acct\u{0}", "ácct", "a/b", "a.b"] {
            assert_eq!(ZoomAccountId::parse(bad), Err(ZoomAccountError::BadCharacter), "{bad:?}");
        }
        assert!(ZoomAccountId::parse(&"a".repeat(MAX_LEN)).is_ok());
    }
}
