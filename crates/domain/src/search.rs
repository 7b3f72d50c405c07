//! Inventory search: filters plus a keyset cursor, so page 5,000 costs what page 1 costs.

use crate::ids::CustomerId;
use crate::number::NumberState;

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
}
