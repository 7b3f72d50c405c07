//! Database URLs as they may be printed: in logs, errors and `peerex config show`.

/// `url` with its secrets replaced by `***`: the password in `user:password@host`, and the value of
/// every query parameter that carries one (`?password=`, `sslpassword=`, anything naming a secret
/// or a token), as libpq and sqlx both accept a password there.
pub fn redact_url(url: &str) -> String {
    let (mut out, rest) = match url.split_once("://") {
        // The password is in the authority, before the last `@` that comes before any `?` (else the
        // last at all: a `?` in the password); a password may hold `?`, `/`, `:` or `@`
        // unencoded, the host none of them.
        Some((scheme, rest)) => {
            let before_query = rest.split_once('?').map_or(rest, |(head, _)| head);
            let at = before_query.rfind('@').or_else(|| rest.rfind('@'));
            let host_from = at.map_or(0, |a| a + 1);
            let path_at = rest[host_from..].find(['/', '?']).map_or(rest.len(), |i| host_from + i);
            let user = at.and_then(|a| rest[..a].split_once(':')).map(|(user, _)| user);
            let authority = match user {
                Some(user) => format!("{user}:***@{}", &rest[host_from..path_at]),
                None => rest[..path_at].to_owned(),
            };
            (format!("{scheme}://{authority}"), &rest[path_at..])
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
    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy().to_ascii_lowercase();
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
