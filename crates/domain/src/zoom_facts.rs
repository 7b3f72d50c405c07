//! What Zoom tells the carrier about a customer's number, beside its state: the emergency (E911)
//! address and the caller ID name (CNAM) the customer set in Zoom (Zoom's webhooks), and the number's
//! capabilities as Zoom lists them. Plus the carrier's rule for which active numbers must have an
//! emergency address, and the flag it raises.

use crate::{CustomerId, NumberState, PhoneNumber, ZoomAccountId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest text kept for any one part of an address or a CNAM: Zoom's own limits are lower; this
/// only bounds what a database row can be made to hold.
pub const MAX_PART_LEN: usize = 200;

/// An emergency address as Zoom's events carry it: the first line is required, the rest optional
/// [REFERENCE §2, `number-management-webhooks.json`]. Built only by [`EmergencyAddress::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmergencyAddress {
    line1: String,
    line2: Option<String>,
    city: Option<String>,
    zip: Option<String>,
    state_code: Option<String>,
    country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("the emergency address has no first line")]
    NoAddressLine,
    #[error("the caller ID name is empty")]
    EmptyCnam,
    #[error("{0} is longer than {MAX_PART_LEN} characters or holds control or invisible formatting characters")]
    BadText(&'static str),
}

/// Characters that change how text around them is shown without being seen: bidirectional
/// overrides and isolates, zero-width characters, the byte order mark. An address holding them can
/// read differently on the operator's page than what Zoom stores.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Trimmed, empty as absent, bounded, no control or invisible formatting characters.
fn part(name: &'static str, v: Option<&str>) -> Result<Option<String>, FactError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.chars().count() > MAX_PART_LEN
        || v.chars().any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(FactError::BadText(name));
    }
    Ok(Some(v.to_owned()))
}

impl EmergencyAddress {
    pub fn new(
        line1: &str,
        line2: Option<&str>,
        city: Option<&str>,
        zip: Option<&str>,
        state_code: Option<&str>,
        country: Option<&str>,
    ) -> Result<EmergencyAddress, FactError> {
        Ok(EmergencyAddress {
            line1: part("address_line1", Some(line1))?.ok_or(FactError::NoAddressLine)?,
            line2: part("address_line2", line2)?,
            city: part("city", city)?,
            zip: part("zip", zip)?,
            state_code: part("state_code", state_code)?,
            country: part("country", country)?,
        })
    }

    /// Rebuilds an address the store wrote after [`EmergencyAddress::new`] checked it.
    pub fn from_trusted(
        line1: String,
        line2: Option<String>,
        city: Option<String>,
        zip: Option<String>,
        state_code: Option<String>,
        country: Option<String>,
    ) -> EmergencyAddress {
        EmergencyAddress { line1, line2, city, zip, state_code, country }
    }

    pub fn line1(&self) -> &str {
        &self.line1
    }
    pub fn line2(&self) -> Option<&str> {
        self.line2.as_deref()
    }
    pub fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }
    pub fn zip(&self) -> Option<&str> {
        self.zip.as_deref()
    }
    pub fn state_code(&self) -> Option<&str> {
        self.state_code.as_deref()
    }
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// On one line, as people read it: `55 ALMADEN BLVD, 13F, SAN JOSE, CA 95113, US`.
    pub fn one_line(&self) -> String {
        let region = [self.state_code.as_deref(), self.zip.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        [
            Some(self.line1.as_str()),
            self.line2.as_deref(),
            self.city.as_deref(),
            Some(region.as_str()).filter(|r| !r.is_empty()),
            self.country.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A caller ID name as the customer set it in Zoom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Cnam(String);

impl Cnam {
    pub fn parse(raw: &str) -> Result<Cnam, FactError> {
        part("cnam", Some(raw))?.map(Cnam).ok_or(FactError::EmptyCnam)
    }

    /// Rebuilds a name the store wrote after [`Cnam::parse`] checked it.
    pub fn from_trusted(stored: String) -> Cnam {
        Cnam(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a customer changed in Zoom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FactChange {
    EmergencyAddress { address: EmergencyAddress },
    Cnam { cnam: Cnam },
}

impl FactChange {
    pub fn kind(&self) -> &'static str {
        match self {
            FactChange::EmergencyAddress { .. } => "emergency_address",
            FactChange::Cnam { .. } => "cnam",
        }
    }
}

/// One of Zoom's number events, verified and parsed: a change of some numbers of one Zoom account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoomNumberEvent {
    /// Names the event however often it is delivered (Zoom's envelope has no id of its own).
    pub event_id: String,
    pub account: ZoomAccountId,
    /// When the customer made the change (Zoom's `event_ts`, milliseconds since the epoch): what
    /// orders two changes of one number, whatever order they arrive in.
    pub event_ts: i64,
    pub numbers: Vec<PhoneNumber>,
    pub change: FactChange,
}

/// What recording an event did to one of its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactOutcome {
    /// Kept in the history (and the current value, unless a newer change is there already).
    Recorded,
    /// This event was recorded for this number before: nothing changed.
    AlreadyRecorded,
    /// The number is not the customer's whose Zoom account sent the event: nothing changed.
    NotTheCustomers,
}

/// One event as recorded for one number (the history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FactRecord {
    pub number: PhoneNumber,
    pub customer_id: CustomerId,
    pub zoom_account: String,
    pub event_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(flatten)]
    pub change: FactChange,
}

/// A number's capabilities as Zoom's listing of peering numbers returns them, in Zoom's spelling
/// (`INBOUND_AND_OUTBOUND`, `NOT_APPLICABLE`...): shown, never acted on, so kept as Zoom says them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZoomListing {
    /// Not in Zoom's published listing schema (only in what a carrier sends); kept when present.
    pub number_type: Option<String>,
    pub voice_direction: Option<String>,
    pub voice_msg_capacity: Option<String>,
    pub message_capability: Option<String>,
    pub outbound_dialer_not_supported: Option<bool>,
    pub outbound_cli_share_not_supported: Option<bool>,
}

impl ZoomListing {
    /// The outbound restrictions, as people read them (empty: none).
    pub fn outbound_restrictions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.outbound_dialer_not_supported == Some(true) {
            out.push("no outbound dialer");
        }
        if self.outbound_cli_share_not_supported == Some(true) {
            out.push("caller ID not shared across products");
        }
        out
    }
}

/// What peerex holds now about one number of its current customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NumberFacts {
    pub emergency_address: Option<EmergencyAddress>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub emergency_address_changed_at: Option<OffsetDateTime>,
    pub cnam: Option<Cnam>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cnam_changed_at: Option<OffsetDateTime>,
    pub listing: Option<ZoomListing>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub listed_at: Option<OffsetDateTime>,
}

/// Which numbers the carrier requires an emergency address for, once they are active in Zoom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum E911Required {
    /// `true`: every number; `false` (the default): none.
    All(bool),
    /// Numbers of these countries, by E.164 prefix (`["+1", "+44"]`).
    Countries(Vec<String>),
}

impl Default for E911Required {
    fn default() -> Self {
        E911Required::All(false)
    }
}

impl E911Required {
    /// Checks the prefixes: `+` and 1 to 6 digits each.
    pub fn check(&self) -> Result<(), String> {
        if let E911Required::Countries(list) = self {
            for p in list {
                let digits = p.strip_prefix('+').unwrap_or_default();
                if digits.is_empty()
                    || digits.len() > 6
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(format!(
                        "e911_required: {p:?} is not a country prefix like \"+1\" or \"+44\""
                    ));
                }
            }
        }
        Ok(())
    }

    /// `None`: no number needs one. `Some(prefixes)`: numbers starting with one of these (every
    /// number when empty) need one.
    pub fn prefixes(&self) -> Option<&[String]> {
        match self {
            E911Required::All(true) => Some(&[]),
            E911Required::Countries(list) if !list.is_empty() => Some(list),
            _ => None,
        }
    }

    pub fn applies_to(&self, number: &PhoneNumber) -> bool {
        self.prefixes()
            .is_some_and(|p| p.is_empty() || p.iter().any(|p| number.as_str().starts_with(p)))
    }

    /// An active number the carrier requires an emergency address for, which has none.
    pub fn flags(
        &self,
        number: &PhoneNumber,
        state: NumberState,
        facts: Option<&NumberFacts>,
    ) -> bool {
        state == NumberState::Active
            && self.applies_to(number)
            && facts.is_none_or(|f| f.emergency_address.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn an_address_needs_its_first_line_and_reads_on_one_line() {
        assert_eq!(
            EmergencyAddress::new(" ", None, None, None, None, None),
            Err(FactError::NoAddressLine)
        );
        let a = EmergencyAddress::new(
            "55 ALMADEN BLVD",
            Some("13F"),
            Some("SAN JOSE"),
            Some("95113"),
            Some("CA"),
            Some(" US "),
        )
        .unwrap();
        assert_eq!(a.one_line(), "55 ALMADEN BLVD, 13F, SAN JOSE, CA 95113, US");
        assert!(EmergencyAddress::new("a\u{0}b", None, None, None, None, None).is_err());
        // A right-to-left override would show "1 MAIN ST" reversed around it on every page.
        assert_eq!(
            EmergencyAddress::new("1 \u{202E}TS NIAM", None, None, None, None, None),
            Err(FactError::BadText("address_line1"))
        );
        assert!(
            Cnam::parse("ACME\u{200B}").is_err(),
            "a zero-width space is refused in a caller ID name"
        );
        assert_eq!(Cnam::parse("  "), Err(FactError::EmptyCnam));
    }

    #[test]
    fn the_flag_is_raised_for_active_numbers_where_required_without_an_address() {
        let us = n("+15550100000");
        let uk = n("+442071234567");
        let with = NumberFacts {
            emergency_address: EmergencyAddress::new("1 Main St", None, None, None, None, None)
                .ok(),
            ..Default::default()
        };
        let off = E911Required::default();
        assert!(!off.flags(&us, NumberState::Active, None));
        let all = E911Required::All(true);
        assert!(all.flags(&uk, NumberState::Active, None));
        assert!(!all.flags(&uk, NumberState::Active, Some(&with)));
        assert!(!all.flags(&uk, NumberState::Provisioning, None));
        let us_only = E911Required::Countries(vec!["+1".into()]);
        assert!(us_only.flags(&us, NumberState::Active, Some(&NumberFacts::default())));
        assert!(!us_only.flags(&uk, NumberState::Active, None));
        assert!(E911Required::Countries(vec!["44".into()]).check().is_err());
        assert!(us_only.check().is_ok());
        assert_eq!(E911Required::All(false).prefixes(), None);
    }

    #[test]
    fn the_setting_reads_as_a_bool_or_a_list() {
        #[derive(Deserialize)]
        struct S {
            e911_required: E911Required,
        }
        let s: S = serde_json::from_str(r#"{"e911_required": true}"#).unwrap();
        assert_eq!(s.e911_required, E911Required::All(true));
        let s: S = serde_json::from_str(r#"{"e911_required": ["+1"]}"#).unwrap();
        assert_eq!(s.e911_required, E911Required::Countries(vec!["+1".into()]));
    }
}
