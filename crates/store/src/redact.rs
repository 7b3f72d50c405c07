//! Database URLs as they may be printed: in logs, errors and `peerex config show`.

/// `url` with its secrets replaced by `***`: the password in `user:password@host`, and the value of
/// every query parameter that carries one (`?password=`, `sslpassword=`, anything naming a secret
/// or a token), as libpq and sqlx both accept a password there.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((creds, host)) => match creds.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => head.to_owned(),
            },
            None => head.to_owned(),
        },
        None => head.to_owned(),
    };
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

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
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
    }
}
