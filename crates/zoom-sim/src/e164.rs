//! E.164 as Zoom checks it at the API: a syntax check, not a numbering-plan lookup.

/// `+` and 7 to 15 digits, the first not 0. Bare digits are accepted too (REFERENCE §6: real traffic and
/// some of Zoom's examples omit the `+`), and so is a leading space, which is what an unencoded `+`
/// in a query string decodes to. Returns the canonical `+digits` form.
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let s = raw.trim();
    let digits = s.strip_prefix('+').unwrap_or(s);
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn accepts_plus_bare_and_query_decoded_forms() {
        assert_eq!(normalize("+12065550100").as_deref(), Some("+12065550100"));
        assert_eq!(normalize("12065550100").as_deref(), Some("+12065550100"));
        assert_eq!(normalize(" 12065550100").as_deref(), Some("+12065550100"));
    }

    #[test]
    fn refuses_what_is_not_e164() {
        for bad in [
            "",
            "+",
            "+0123456789",
            "+1206555010x",
            "+1234567890123456",
            "++12065550100",
            "+1 206 555 0100",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
