//! Database URLs as they may be printed: in logs, errors and `peerex config show`.

/// `url` with its secrets replaced by `***`: the password in `user:password@host`, and the value of
/// every query parameter that carries one (`?password=`, `sslpassword=`, anything naming a secret
/// or a token), as libpq and sqlx both accept a password there.
pub fn redact_url(url: &str) -> String {
    // The password is in the authority: after `scheme://`, up to the last `@` before the path
    // (a password may hold `?`, `/`, `:` or `@` unencoded, the host none of them).
    let (mut out, rest) = match url.split_once("://") {
        Some((scheme, rest)) => {
            // The last `@` before any `?`; else the last at all (a `?` in the password).
            let before_query = rest.split('?').next().unwrap_or(rest);
            let host_from = match before_query.rfind('@').or_else(|| rest.rfind('@')) {
                Some(at) => at + 1,
                None => 0,
            };
            let path_at = rest[host_from..].find(['/', '?']).map_or(rest.len(), |i| host_from + i);
            let (authority, rest) = rest.split_at(path_at);
            let authority = match authority.rsplit_once('@') {
                Some((creds, host)) => match creds.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            (format!("{scheme}://{authority}"), rest)
        }
        None => (String::new(), url),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if is_secret(key) => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// Whether a query parameter carries a secret, its name read as sqlx reads it (percent-decoded).
fn is_secret(key: &str) -> bool {
    let mut decoded = Vec::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let key = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    ["password", "secret", "token"].iter().any(|s| key.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_the_authority_and_the_query_are_hidden() {
        assert_eq!(
            redact_url("postgres://peerex:hunter2@db/peerex"),
            "postgres://peerex:***@db/peerex"
        );
        // A password with an `@` in it: the host is after the last one.
        assert_eq!(redact_url("postgres://u:p@ss@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(
            redact_url("postgres://peerex@db/peerex?sslmode=require&password=hunter2"),
            "postgres://peerex@db/peerex?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgresql://db/x?user=u&PassWord=a&sslpassword=b&application_name=peerex"),
            "postgresql://db/x?user=u&PassWord=***&sslpassword=***&application_name=peerex"
        );
        assert_eq!(redact_url("sqlite://peerex-data/peerex.db"), "sqlite://peerex-data/peerex.db");
        assert_eq!(redact_url("sqlite://d/p.db?mode=rwc"), "sqlite://d/p.db?mode=rwc");
        assert_eq!(redact_url(""), "");
        // A `?` or `/` in an unencoded password, a key percent-encoded.
        assert_eq!(redact_url("postgres://u:p?w/x@db/d"), "postgres://u:***@db/d");
        assert_eq!(
            redact_url("postgres://db/d?p%61ssword=x&a=b"),
            "postgres://db/d?p%61ssword=***&a=b"
        );
        assert_eq!(
            redact_url("postgres://u@db:5432/d?x=1#frag"),
            "postgres://u@db:5432/d?x=1#frag"
        );
    }
}
