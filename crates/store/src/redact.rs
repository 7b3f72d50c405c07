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

/// What names the database `url` reaches, whoever connects and however, for the last-known-good
/// routing file: PostgreSQL's host, port (5432 when not given) and database (the user's name when
/// not given, as the server takes it), and of the query only the parameters that say where
/// (`host`, `hostaddr`, `port`, `dbname`, sorted); SQLite's file. Never the user's password, nor
/// the connection's options (`sslmode`, SQLite's `mode`, ...). The URL is parsed as sqlx parses
/// it (`url::Url` for PostgreSQL); one it cannot parse names nothing (empty). It is a name as
/// configured, not the database's own identity: a host reached by two names gives two.
pub fn database_identity(url: &str) -> String {
    let url = url.trim();
    if url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("sqlite:")) {
        // sqlx reads SQLite's URLs itself: the file is what comes before any `?`, as written
        // (paths are case-sensitive).
        let rest = &url[7..];
        let path = rest.split_once('?').map_or(rest, |(p, _)| p);
        return format!("sqlite:{path}");
    }
    let Ok(parsed) = url::Url::parse(url) else { return String::new() };
    let scheme = match parsed.scheme() {
        "postgresql" => "postgres",
        s => s,
    };
    let mut wheres: Vec<String> = parsed
        .query_pairs()
        .filter(|(k, _)| {
            matches!(k.to_ascii_lowercase().as_str(), "host" | "hostaddr" | "port" | "dbname")
        })
        .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
        .collect();
    wheres.sort_unstable();
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let mut out = format!("{scheme}://{host}");
    if !host.is_empty() {
        match (parsed.port(), scheme) {
            (Some(port), _) => out.push_str(&format!(":{port}")),
            (None, "postgres") => out.push_str(":5432"),
            (None, _) => {}
        }
    }
    let database = parsed.path().trim_start_matches('/');
    out.push('/');
    if !database.is_empty() {
        out.push_str(database);
    } else if scheme == "postgres" && !wheres.iter().any(|w| w.starts_with("dbname=")) {
        // No database named: the server takes the user's.
        out.push_str(parsed.username());
    }
    if !wheres.is_empty() {
        out.push('?');
        out.push_str(&wheres.join("&"));
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
    use super::{database_identity, redact_url};

    #[test]
    fn a_database_is_named_by_where_it_is_not_by_who_connects() {
        let id = database_identity;
        assert_eq!(
            id("postgres://peerex_ro:s3cret@Replica.site-a/peerex"),
            "postgres://replica.site-a:5432/peerex"
        );
        // The same database however the user, password, options or scheme's spelling differ.
        assert_eq!(
            id("postgresql://other:p@ss@replica.site-a:5432/peerex?sslmode=require&application_name=x"),
            id("postgres://replica.site-a/peerex")
        );
        // Another host, port or database is another.
        assert_ne!(id("postgres://replica.site-b/peerex"), id("postgres://replica.site-a/peerex"));
        assert_ne!(id("postgres://db:5433/peerex"), id("postgres://db/peerex"));
        assert_ne!(id("postgres://db/peerex_staging"), id("postgres://db/peerex"));
        // No database named: the user's, as the server takes it.
        assert_eq!(id("postgres://alice@db"), "postgres://db:5432/alice");
        assert_ne!(id("postgres://alice@db"), id("postgres://bob@db"));
        // Where a Unix socket is, said in the query, counts; in any order.
        assert_eq!(
            id("postgres:///peerex?sslmode=disable&port=5433&host=/run/postgresql"),
            "postgres:///peerex?host=/run/postgresql&port=5433"
        );
        assert_ne!(
            id("postgres:///peerex?host=/run/postgresql"),
            id("postgres:///peerex?host=/tmp")
        );
        assert_eq!(id("postgres://[::1]/peerex"), id("postgres://u@[::1]:5432/peerex"));
        // SQLite: the file as written, whatever the mode.
        assert_eq!(id("sqlite://data/peerex.db?mode=rwc"), "sqlite://data/peerex.db");
        assert_eq!(id("sqlite://data/peerex.db?mode=rw"), id("sqlite://data/peerex.db"));
        assert_ne!(id("sqlite://data/other.db"), id("sqlite://data/peerex.db"));
        assert_ne!(id("sqlite://Data/peerex.db"), id("sqlite://data/peerex.db"));
        assert_eq!(id("sqlite:peerex.db?mode=rwc"), "sqlite:peerex.db");
    }

    /// Nothing of a password reaches the name, wherever it was put and whatever it holds.
    #[test]
    fn a_database_name_never_holds_a_password() {
        for url in [
            "postgres://u:hunter2@db/peerex",
            "postgres://u:hun@ter2@db/peerex",
            "postgres://db/peerex?password=hunt@2secret",
            "postgres://db/peerex?user=u&password=hunter2&sslpassword=s3cret",
            "postgres://u:pa%23ss@db/peerex",
            "postgres://u:pa#ss@db/peerex",
            "postgres://u:p?w/x@db/peerex",
            "sqlite://data/peerex.db?password=hunter2",
        ] {
            let name = database_identity(url);
            for secret in ["hunter2", "hunt", "2secret", "s3cret", "ter2", "pa%23ss", "pa", "p?w"] {
                assert!(!name.contains(secret), "{url}: {name}");
            }
        }
        assert_eq!(
            database_identity("postgres://db/peerex?password=hunt@2secret"),
            "postgres://db:5432/peerex"
        );
    }

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
