//! Zoom's webhooks in (REFERENCE §4): signature and timestamp checks, the events peerex reads, and the
//! answer to `endpoint.url_validation`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-zm-signature";
pub const TIMESTAMP_HEADER: &str = "x-zm-request-timestamp";
/// Our choice for how old (or how far ahead) a delivery may be (REFERENCE §4 [assume]).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the request timestamp is outside the accepted window")]
    StaleTimestamp,
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// Checks `x-zm-signature: v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}"))` over the raw body, in
/// constant time, and that `x-zm-request-timestamp` (seconds since the epoch) is within `window` of
/// `now` either way. An empty `timestamp` or `signature` is a missing header.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: OffsetDateTime,
    window: Duration,
) -> Result<(), WebhookError> {
    let (timestamp, signature) = (timestamp.trim(), signature.trim());
    if timestamp.is_empty() {
        return Err(WebhookError::MissingHeader(TIMESTAMP_HEADER));
    }
    if signature.is_empty() {
        return Err(WebhookError::MissingHeader(SIGNATURE_HEADER));
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(WebhookError::BadSignature)?;
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| WebhookError::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).map_err(|_| WebhookError::BadSignature)?;
    let sent: i64 = timestamp.parse().map_err(|_| {
        WebhookError::Malformed(format!("{TIMESTAMP_HEADER} is not a number of seconds"))
    })?;
    let skew = (now.unix_timestamp() - sent).unsigned_abs();
    if skew > window.as_secs() {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(())
}

/// SHA-256 (hex) of what a delivery's signature covers, `v0:{timestamp}:{body}`: the same delivery
/// has the same digest however its signature header is written (upper-case hex, spaces), so a replay
/// memory keyed on it cannot be passed by re-casing the header. Call it after [`verify`].
pub fn content_digest(timestamp: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"v0:");
    h.update(timestamp.trim().as_bytes());
    h.update(b":");
    h.update(body);
    hex::encode(h.finalize())
}

/// When the event happened, as Zoom says in the (verified) body: `payload.deauthorization_time`
/// (RFC 3339) for `app_deauthorized`, else `event_ts` (milliseconds since the epoch) at the top or in
/// `payload`. Zoom signs each delivery attempt afresh, so the request timestamp tells when it was
/// sent, not when the event happened.
pub fn event_time(body: &[u8]) -> Option<OffsetDateTime> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let payload = v.get("payload");
    let rfc3339 =
        payload.and_then(|p| p.get("deauthorization_time")).and_then(Value::as_str).and_then(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        });
    let millis = || {
        [v.get("event_ts"), payload.and_then(|p| p.get("event_ts"))]
            .into_iter()
            .flatten()
            .find_map(Value::as_i64)
            .and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
    };
    rfc3339.or_else(millis)
}

/// The events peerex reads; every other one is `Other` with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Zoom checks the endpoint: answer with `url_validation_response` within 3 s.
    UrlValidation {
        plain_token: String,
    },
    /// The app was removed from the account: drop its tokens.
    AppDeauthorized {
        account_id: String,
        user_id: String,
        client_id: String,
        deauthorization_time: Option<String>,
    },
    Other {
        event: String,
    },
}

/// Parses a (verified) webhook body.
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    let event = v
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::Malformed("no `event`".into()))?;
    let payload = v.get("payload").unwrap_or(&Value::Null);
    let field = |name: &str| -> Result<String, WebhookError> {
        payload
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| WebhookError::Malformed(format!("{event}: no `payload.{name}`")))
    };
    Ok(match event {
        "endpoint.url_validation" => Event::UrlValidation { plain_token: field("plainToken")? },
        "app_deauthorized" => Event::AppDeauthorized {
            account_id: field("account_id")?,
            user_id: field("user_id")?,
            client_id: field("client_id")?,
            // A string in Zoom's samples; accept a number as well rather than drop the event.
            deauthorization_time: payload.get("deauthorization_time").and_then(|t| match t {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        },
        other => Event::Other { event: other.to_owned() },
    })
}

/// The body that answers `endpoint.url_validation`:
/// `{"plainToken": .., "encryptedToken": hex(HMAC-SHA256(secret, plainToken))}`.
pub fn url_validation_response(secret: &str, plain_token: &str) -> Value {
    serde_json::json!({ "plainToken": plain_token, "encryptedToken": hex::encode(hmac(secret, plain_token.as_bytes())) })
}

/// The `x-zm-signature` value Zoom would send for this timestamp and body (for tests and tools).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let message = [b"v0:".as_slice(), timestamp.as_bytes(), b":", body].concat();
    format!("v0={}", hex::encode(hmac(secret, &message)))
}

fn hmac(secret: &str, message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "exampleCarrierWebhookSecret";

    #[test]
    fn the_digest_covers_what_is_signed_and_nothing_else() {
        let d = content_digest("1700000000", b"{}");
        assert_eq!(d.len(), 64);
        assert_eq!(d, content_digest(" 1700000000 ", b"{}"));
        assert_ne!(d, content_digest("1700000001", b"{}"));
        assert_ne!(d, content_digest("1700000000", b"{ }"));
    }

    #[test]
    fn event_time_reads_deauthorization_time_then_event_ts() {
        let t = |body: &str| event_time(body.as_bytes()).map(OffsetDateTime::unix_timestamp);
        assert_eq!(
            t(r#"{"event_ts":1,"payload":{"deauthorization_time":"2023-11-14T22:13:20.000Z"}}"#),
            Some(1_700_000_000)
        );
        assert_eq!(t(r#"{"event_ts":1700000000123,"payload":{}}"#), Some(1_700_000_000));
        assert_eq!(t(r#"{"payload":{"event_ts":1700000000000}}"#), Some(1_700_000_000));
        assert_eq!(t(r#"{"payload":{}}"#), None);
        assert_eq!(t("not json"), None);
    }

    #[test]
    fn a_signature_made_as_zoom_makes_it_verifies_and_a_changed_body_does_not() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let body = br#"{"event":"app_deauthorized"}"#;
        let sig = signature(SECRET, "1700000000", body);
        assert_eq!(verify(SECRET, "1700000000", &sig, body, now, DEFAULT_WINDOW), Ok(()));
        assert_eq!(
            verify(
                SECRET,
                "1700000000",
                &sig,
                br#"{"event":"app_deauthorized "}"#,
                now,
                DEFAULT_WINDOW
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify("another secret", "1700000000", &sig, body, now, DEFAULT_WINDOW),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, "1700000000", "v0=zz", body, now, DEFAULT_WINDOW),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, "1700000000", &sig[3..], body, now, DEFAULT_WINDOW),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn url_validation_matches_zooms_documented_example_formula() {
        let answer = url_validation_response("secret", "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        let hex = answer["encryptedToken"].as_str().expect("hex");
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
