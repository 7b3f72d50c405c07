//! Inventory search: filters plus a keyset cursor, so page 5,000 costs what page 1 costs.

use crate::ids::CustomerId;
use crate::number::NumberState;
use crate::PhoneNumber;

pub const MAX_PAGE: u32 = 500;

#[derive(Clone, Debug, Default)]
pub struct NumberQuery {
    /// E.164 prefix, including the `+` (`+1555`).
    pub prefix: Option<String>,
    pub state: Option<NumberState>,
    pub customer_id: Option<CustomerId>,
    pub tag: Option<String>,
    pub region: Option<String>,
    /// Return numbers after this one (the last of the previous page).
    pub after: Option<String>,
    pub limit: u32,
    /// Only active numbers with no emergency address from their customer's Zoom account, among
    /// those starting with one of these prefixes (any number when empty): the carrier's flag
    /// (`zoom_facts::E911Required`).
    pub emergency_address_missing: Option<Vec<String>>,
}

impl NumberQuery {
    /// The smallest string greater than every string starting with the prefix, for a range scan
    /// (`e164 >= prefix AND e164 < upper`) that uses the index, unlike `LIKE`.
    pub fn prefix_upper(prefix: &str) -> String {
        // Prefixes are '+' and digits, so bumping the last byte never overflows past ASCII.
        let mut bytes = prefix.as_bytes().to_vec();
        if let Some(last) = bytes.last_mut() {
            *last += 1;
        }
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Where the scan starts: after the cursor or at the prefix, whichever is later.
    pub fn lower_bound(&self) -> Option<(String, bool)> {
        match (&self.after, &self.prefix) {
            (Some(a), Some(p)) if a.as_str() >= p.as_str() => Some((a.clone(), false)),
            (_, Some(p)) => Some((p.clone(), true)),
            (Some(a), None) => Some((a.clone(), false)),
            (None, None) => None,
        }
    }

    pub fn page_size(&self) -> u32 {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// Checks an E.164 prefix typed into a search box: `+` and digits only.
pub fn parse_prefix(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let with_plus = if raw.starts_with('+') { raw.to_owned() } else { format!("+{raw}") };
    if with_plus.len() > 16 || !with_plus[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err("a prefix is + and up to 15 digits, like +1555".into());
    }
    Ok(Some(with_plus))
}

/// Search filters as typed into a form, a query string or a command line (empty means "any").
/// One parser for every surface, so the portal, the API and the CLI accept and refuse the same input.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawFilters<'a> {
    pub prefix: Option<&'a str>,
    pub state: Option<&'a str>,
    pub customer: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub region: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// A filter that is wrong: `field` is one of prefix, state, customer, tag, region, after.
#[derive(Debug, PartialEq, Eq)]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

/// A filter that was typed: trimmed, and not empty.
fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

impl RawFilters<'_> {
    pub fn parse(&self, limit: u32) -> Result<NumberQuery, FilterError> {
        let err = |field: &'static str, message: String| FilterError { field, message };
        let state = match given(self.state) {
            None => None,
            Some(s) => Some(
                NumberState::parse(s)
                    .ok_or_else(|| err("state", format!("there is no state {s:?}")))?,
            ),
        };
        let customer_id = match given(self.customer) {
            None => None,
            Some(c) => Some(
                c.parse::<CustomerId>()
                    .map_err(|_| err("customer", "is not a customer id".into()))?,
            ),
        };
        let tag = match crate::import::parse_tags(self.tag.unwrap_or_default())
            .map_err(|m| err("tag", m))?
            .as_slice()
        {
            [] => None,
            [one] => Some(one.clone()),
            _ => return Err(err("tag", "search for one tag at a time".into())),
        };
        let region = match given(self.region) {
            None => None,
            // Checked like a stored value: a NUL byte, for one, is an error in PostgreSQL, not a miss.
            Some(r) if r.chars().count() > crate::import::MAX_FIELD_LEN => {
                return Err(err(
                    "region",
                    format!("is longer than {} characters", crate::import::MAX_FIELD_LEN),
                ))
            }
            Some(r) if r.chars().any(char::is_control) => {
                return Err(err("region", "contains control characters".into()))
            }
            Some(r) => Some(r.to_owned()),
        };
        let after = match given(self.after) {
            None => None,
            Some(a) => {
                Some(PhoneNumber::parse(a).map_err(|e| err("after", e.to_string()))?.to_string())
            }
        };
        let prefix = parse_prefix(self.prefix.unwrap_or_default()).map_err(|m| err("prefix", m))?;
        Ok(NumberQuery {
            prefix,
            state,
            customer_id,
            tag,
            region,
            after,
            limit,
            emergency_address_missing: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bounds_the_range() {
        assert_eq!(NumberQuery::prefix_upper("+1555"), "+1556");
        assert_eq!(NumberQuery::prefix_upper("+1559"), "+155:");
        assert!("+15559999999" < NumberQuery::prefix_upper("+1555").as_str());
    }

    #[test]
    fn prefixes_are_digits_only() {
        assert_eq!(parse_prefix(" 1555 ").unwrap().as_deref(), Some("+1555"));
        assert_eq!(parse_prefix("").unwrap(), None);
        assert!(parse_prefix("+1' OR 1=1 --").is_err());
        assert!(parse_prefix("%").is_err());
    }

    #[test]
    fn filters_parse_or_name_the_wrong_field() {
        let q = RawFilters {
            prefix: Some(" 1555 "),
            state: Some("available"),
            tag: Some("NYC"),
            region: Some(" "),
            ..Default::default()
        }
        .parse(10)
        .unwrap();
        assert_eq!(
            (q.prefix.as_deref(), q.state, q.tag.as_deref(), q.region, q.limit),
            (Some("+1555"), Some(NumberState::Available), Some("nyc"), None, 10)
        );
        let field = |f: RawFilters| f.parse(10).unwrap_err().field;
        assert_eq!(field(RawFilters { prefix: Some("abc"), ..Default::default() }), "prefix");
        assert_eq!(field(RawFilters { state: Some("gone"), ..Default::default() }), "state");
        assert_eq!(field(RawFilters { customer: Some("acme"), ..Default::default() }), "customer");
        assert_eq!(field(RawFilters { tag: Some("a;b"), ..Default::default() }), "tag");
        assert_eq!(field(RawFilters { region: Some("a\0b"), ..Default::default() }), "region");
        assert_eq!(field(RawFilters { after: Some("12"), ..Default::default() }), "after");
    }
}
