//! Zoom trunks: each `sip_trunk_name` peerex uses with Zoom, where calls for it go (the SIP URIs of
//! Zoom's peering SBCs for that trunk), and how the carrier's inbound Request-URIs are turned into
//! E.164 for it ([`NumberingRule`]). A customer is bound to one trunk; its numbers are pushed to
//! Zoom under that trunk's name and calls to them are sent to that trunk's destinations.

use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;

/// Most SBC destinations a trunk lists (Zoom peers in two or three data centres per region).
pub const MAX_DESTINATIONS: usize = 8;

/// Why a trunk (or one of its parts) was refused; `field()` names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrunkError {
    #[error("name: must be 1 to 64 letters, digits, '.', '_' or '-'")]
    Name,
    #[error("destinations: give 1 to {MAX_DESTINATIONS} SIP URIs")]
    DestinationCount,
    #[error("destinations: {0:?} is not a SIP URI like sip:zoom-sbc.example:5061;transport=tls")]
    Destination(String),
    #[error("country_code: must be 1 to 3 digits, not starting with 0")]
    CountryCode,
    #[error("national_prefix: must be empty or 1 to 2 digits")]
    NationalPrefix,
    #[error("international_prefix: must be 2 to 4 digits")]
    InternationalPrefix,
}

impl TrunkError {
    pub fn field(&self) -> &'static str {
        match self {
            TrunkError::Name => "name",
            TrunkError::DestinationCount | TrunkError::Destination(_) => "destinations",
            TrunkError::CountryCode => "country_code",
            TrunkError::NationalPrefix => "national_prefix",
            TrunkError::InternationalPrefix => "international_prefix",
        }
    }

    /// The message without the leading "field: ".
    pub fn message(&self) -> String {
        let full = self.to_string();
        full.split_once(": ").map(|(_, m)| m.to_owned()).unwrap_or(full)
    }
}

/// The `sip_trunk_name` Zoom knows a carrier trunk by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TrunkName(String);

impl TrunkName {
    pub fn parse(s: &str) -> Result<Self, TrunkError> {
        let s = s.trim();
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TrunkError::Name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a call for the trunk goes: a `sip:` or `sips:` URI of one of Zoom's peering SBCs. It is
/// copied into a 302's Contact, so it may hold nothing that would break a header line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SipDestination(String);

impl SipDestination {
    pub fn parse(s: &str) -> Result<Self, TrunkError> {
        let s = s.trim();
        let bad = || TrunkError::Destination(s.to_owned());
        let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:")).ok_or_else(bad)?;
        let host = rest.split([';', '?']).next().unwrap_or_default();
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            })
            && !host.starts_with(':');
        let chars_ok = s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b',' | b'\\'));
        if host_ok && chars_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SipDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the digits a carrier's switch puts in an inbound Request-URI become E.164 for one trunk:
/// `+` or the international prefix (`00`, `011`) starts a full number; the national prefix (`0`,
/// `1`) starts a national number that gets `country_code`; bare digits long enough to be a full
/// number are taken as one, shorter ones as national significant numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NumberingRule {
    country_code: String,
    national_prefix: String,
    international_prefix: String,
}

impl NumberingRule {
    pub fn new(
        country_code: &str,
        national_prefix: &str,
        international_prefix: &str,
    ) -> Result<Self, TrunkError> {
        let digits = |s: &str, range: std::ops::RangeInclusive<usize>| {
            range.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        let (cc, np, ip) =
            (country_code.trim(), national_prefix.trim(), international_prefix.trim());
        if !digits(cc, 1..=3) || cc.starts_with('0') {
            return Err(TrunkError::CountryCode);
        }
        if !digits(np, 0..=2) {
            return Err(TrunkError::NationalPrefix);
        }
        if !digits(ip, 2..=4) {
            return Err(TrunkError::InternationalPrefix);
        }
        Ok(Self {
            country_code: cc.to_owned(),
            national_prefix: np.to_owned(),
            international_prefix: ip.to_owned(),
        })
    }

    /// North America: `+1`, national prefix `1`, international prefix `011`.
    pub fn nanp() -> Self {
        Self {
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
        }
    }

    pub fn country_code(&self) -> &str {
        &self.country_code
    }
    pub fn national_prefix(&self) -> &str {
        &self.national_prefix
    }
    pub fn international_prefix(&self) -> &str {
        &self.international_prefix
    }
}

impl fmt::Display for NumberingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}, national prefix ", self.country_code)?;
        if self.national_prefix.is_empty() {
            f.write_str("none")?;
        } else {
            f.write_str(&self.national_prefix)?;
        }
        write!(f, ", international prefix {}", self.international_prefix)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ZoomTrunk {
    pub name: TrunkName,
    pub destinations: Vec<SipDestination>,
    pub numbering: NumberingRule,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl ZoomTrunk {
    /// Builds a trunk from what an operator typed; the first refused field is named.
    pub fn parse(
        name: &str,
        destinations: &[&str],
        numbering: NumberingRule,
        now: OffsetDateTime,
    ) -> Result<Self, TrunkError> {
        Ok(Self {
            name: TrunkName::parse(name)?,
            destinations: parse_destinations(destinations)?,
            numbering,
            created_at: now,
        })
    }
}

/// Parses a destination list; blank entries (a trailing newline in a form) are skipped.
pub fn parse_destinations(list: &[&str]) -> Result<Vec<SipDestination>, TrunkError> {
    let parsed = list
        .iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| SipDestination::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() || parsed.len() > MAX_DESTINATIONS {
        return Err(TrunkError::DestinationCount);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_names_are_zoom_sip_trunk_names() {
        assert_eq!(TrunkName::parse(" carrier-us_east.1 ").unwrap().as_str(), "carrier-us_east.1");
        for bad in ["", "has space", "semi;colon", &"x".repeat(65), "ünïcode"] {
            assert_eq!(TrunkName::parse(bad), Err(TrunkError::Name), "{bad:?}");
        }
    }

    #[test]
    fn destinations_are_sip_uris_safe_in_a_contact_header() {
        for ok in [
            "sip:zoom-trunk-a.example:5061;transport=tls",
            "sips:203.0.113.7",
            "sip:[2001:db8::1]:5060",
            "sip:peer@sbc.example;transport=tcp",
        ] {
            assert_eq!(SipDestination::parse(ok).unwrap().as_str(), ok);
        }
        for bad in
            ["http://x", "sip:", "sip:a b", "sip:a>b", "sip:a\r\nVia: x", "zoom.example", "sip:a,b"]
        {
            assert!(
                matches!(SipDestination::parse(bad), Err(TrunkError::Destination(_))),
                "{bad:?}"
            );
        }
        assert_eq!(parse_destinations(&["", " "]), Err(TrunkError::DestinationCount));
        assert_eq!(parse_destinations(&["sip:a.example"; 9]), Err(TrunkError::DestinationCount));
        assert_eq!(parse_destinations(&["sip:a.example", "", "sip:b.example"]).unwrap().len(), 2);
    }

    #[test]
    fn numbering_rules_name_the_bad_field() {
        assert_eq!(
            NumberingRule::new("44", "0", "00").unwrap().to_string(),
            "+44, national prefix 0, international prefix 00"
        );
        assert_eq!(NumberingRule::new("0", "0", "00").unwrap_err().field(), "country_code");
        assert_eq!(NumberingRule::new("1234", "1", "011").unwrap_err().field(), "country_code");
        assert_eq!(NumberingRule::new("49", "x", "00").unwrap_err().field(), "national_prefix");
        assert_eq!(NumberingRule::new("49", "0", "0").unwrap_err().field(), "international_prefix");
        assert_eq!(NumberingRule::new("49", "", "00").unwrap().national_prefix(), "");
        assert_eq!(TrunkError::CountryCode.message(), "must be 1 to 3 digits, not starting with 0");
    }
}
