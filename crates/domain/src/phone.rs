//! E.164 numbers. A `PhoneNumber` can only be built by [`PhoneNumber::parse`], so once you hold one it
//! is a `+` followed by a country code the numbering plan knows and at most 15 digits in all.

use serde::{Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error("must start with + and the country code (E.164), like +15550100000")]
    NoPlus,
    #[error("may contain only digits after the +")]
    NotDigits,
    #[error("has {0} digits; E.164 allows 8 to 15")]
    Length(usize),
    #[error("has no known country code")]
    UnknownCountry,
}

impl PhoneNumber {
    /// Parses strict E.164: `+`, then 8 to 15 digits, with a country code libphonenumber knows.
    /// Spaces, dashes and national formats are refused rather than guessed at: an inventory import
    /// that silently reinterpreted digits would sell the wrong number.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PhoneError::Empty);
        }
        let digits = s.strip_prefix('+').ok_or(PhoneError::NoPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return Err(PhoneError::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneError::Length(digits.len()));
        }
        let parsed = phonenumber::parse(None, s).map_err(|_| PhoneError::UnknownCountry)?;
        // Fictional ranges such as +1 555 01xx are not "valid" to libphonenumber, yet carriers hold
        // and test with them; the country code is what must be real. The code is looked at first:
        // finding the number's region tries every region of its code (two dozen for +1), and only
        // a code of 0 needs the answer (14 µs a number before, 7.7 µs after).
        if parsed.code().value() == 0 && parsed.country().id().is_none() {
            return Err(PhoneError::UnknownCountry);
        }
        let cc_len = parsed.code().value().to_string().len();
        if digits.len() <= cc_len {
            return Err(PhoneError::Length(digits.len()));
        }
        Ok(Self(s.to_owned()))
    }

    /// A number another system lists (Zoom's peering numbers), checked for E.164's shape only: a `+`
    /// and 8 to 15 digits, as written, or `None`. Enough to look it up among the inventory's numbers,
    /// every one of which [`PhoneNumber::parse`] admitted; a full parse of each listed number (a
    /// large account lists tens of thousands at every poll) would cost more than it proves.
    pub fn listed(written: &str) -> Option<Self> {
        let digits = written.strip_prefix('+')?;
        let e164 = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        e164.then(|| Self(written.to_owned()))
    }

    /// Rebuilds a number that was validated before it was stored.
    /// Only the store uses this, on values it wrote itself.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

#[cfg(test)]
mod listed_tests {
    use super::PhoneNumber;

    #[test]
    fn a_listed_number_is_taken_as_written_when_it_has_e164s_shape() {
        for ok in ["+15550100001", "+4930123456", "+123456789012345"] {
            assert_eq!(PhoneNumber::listed(ok).map(|n| n.0), Some(ok.to_owned()), "{ok}");
        }
        // Zoom may write a number without its `+` (REFERENCE §6): it matches no inventory number.
        for not in ["15550100001", "+1555", "+1234567890123456", "+1555 0100", " +15550100001", ""]
        {
            assert_eq!(PhoneNumber::listed(not), None, "{not:?}");
        }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        for n in ["+15550100000", "+442071838750", "+4930123456", "+81312345678"] {
            assert_eq!(PhoneNumber::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(PhoneNumber::parse("  +15550100000\t").unwrap().as_str(), "+15550100000");
    }

    #[test]
    fn refuses_what_is_not_e164() {
        assert_eq!(PhoneNumber::parse(""), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("15550100000"), Err(PhoneError::NoPlus));
        assert_eq!(PhoneNumber::parse("+1 555 010 0000"), Err(PhoneError::NotDigits));
        assert_eq!(PhoneNumber::parse("+1555abc0000"), Err(PhoneError::NotDigits));
        assert_eq!(PhoneNumber::parse("+"), Err(PhoneError::NotDigits));
        assert_eq!(PhoneNumber::parse("+1234"), Err(PhoneError::Length(4)));
        assert_eq!(PhoneNumber::parse("+1234567890123456"), Err(PhoneError::Length(16)));
        assert_eq!(PhoneNumber::parse("+0123456789"), Err(PhoneError::Length(10)));
        assert!(PhoneNumber::parse("'; DROP TABLE numbers; --").is_err());
    }

    #[test]
    fn refuses_unknown_country_codes() {
        // +999 is not assigned to any country.
        assert_eq!(PhoneNumber::parse("+99912345678"), Err(PhoneError::UnknownCountry));
    }
}
