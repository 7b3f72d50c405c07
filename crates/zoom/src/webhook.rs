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
    /// The customer changed the emergency address or the caller ID name of numbers the carrier
    /// added (`number_management.peering_number_*_updated`, or the legacy `phone.*` twins).
    NumberChanged(NumberChanged),
    Other {
        event: String,
    },
}

/// A number event's content, as Zoom sent it (numbers not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberChanged {
    /// The same for every delivery of the event, and for its legacy twin: see [`number_event_id`].
    pub event_id: String,
    pub account_id: String,
    /// Milliseconds since the epoch.
    pub event_ts: i64,
    /// As Zoom wrote them: `+E.164` in the Number Management events, bare digits in the Phone ones.
    pub phone_numbers: Vec<String>,
    pub change: NumberChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberChange {
    EmergencyAddress(EmergencyAddress),
    Cnam(String),
}

/// `payload.object.emergency_address` (`address_line1` required) [doc].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct EmergencyAddress {
    pub address_line1: String,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    #[serde(default)]
    pub state_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// Zoom's number events carry no id of their own, and Zoom signs each delivery afresh, so the event
/// is named by what it says: the SHA-256 (hex) of its kind, account, `event_ts` and new value. A
/// redelivery, and the legacy `phone.*` twin of the same change, get the same id [assume].
pub fn number_event_id(account_id: &str, event_ts: i64, change: &NumberChange) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        h.update(s.as_bytes());
        // A separator no part holds, so ("ab", "c") and ("a", "bc") differ.
        h.update([0x1f]);
    };
    part(account_id);
    part(&event_ts.to_string());
    match change {
        NumberChange::Cnam(c) => {
            part("cnam");
            part(c);
        }
        NumberChange::EmergencyAddress(a) => {
            part("emergency_address");
            for p in [
                Some(&a.address_line1),
                a.address_line2.as_ref(),
                a.city.as_ref(),
                a.zip.as_ref(),
                a.state_code.as_ref(),
                a.country.as_ref(),
            ] {
                part(p.map_or("", String::as_str));
            }
        }
    }
    hex::encode(h.finalize())
}

/// Most numbers one number event may name.
pub const MAX_EVENT_NUMBERS: usize = 10_000;

fn number_changed(event: &str, v: &Value) -> Result<NumberChanged, WebhookError> {
    let bad = |what: &str| WebhookError::Malformed(format!("{event}: {what}"));
    let payload = v.get("payload").ok_or_else(|| bad("no `payload`"))?;
    let account_id = payload
        .get("account_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `payload.account_id`"))?
        .to_owned();
    let object = payload.get("object").ok_or_else(|| bad("no `payload.object`"))?;
    let event_ts = [v.get("event_ts"), payload.get("event_ts")]
        .into_iter()
        .flatten()
        .find_map(Value::as_i64)
        .ok_or_else(|| bad("no `event_ts`"))?;
    let listed = object
        .get("phone_numbers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `payload.object.phone_numbers`"))?;
    // One change a person makes in Zoom names a handful of numbers; a bound keeps one event from
    // holding the database's writer for its whole body.
    if listed.len() > MAX_EVENT_NUMBERS {
        return Err(bad("more than 10,000 numbers in `payload.object.phone_numbers`"));
    }
    let phone_numbers: Vec<String> = listed
        .iter()
        .map(|n| match n {
            Value::String(s) => Some(s.clone()),
            // Bare digits may come as a JSON number in the legacy samples' spirit.
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| bad("a phone number that is not a string"))?;
    let change = if event.ends_with("cnam_updated") {
        NumberChange::Cnam(
            object
                .get("cnam")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no `payload.object.cnam`"))?
                .to_owned(),
        )
    } else {
        let a = object
            .get("emergency_address")
            .ok_or_else(|| bad("no `payload.object.emergency_address`"))?;
        NumberChange::EmergencyAddress(
            serde_json::from_value(a.clone())
                .map_err(|e| bad(&format!("emergency_address: {e}")))?,
        )
    };
    let event_id = number_event_id(&account_id, event_ts, &change);
    Ok(NumberChanged { event_id, account_id, event_ts, phone_numbers, change })
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
        "number_management.peering_number_emergency_address_updated"
        | "number_management.peering_number_cnam_updated"
        | "phone.peering_number_emergency_address_updated"
        | "phone.peering_number_cnam_updated" => Event::NumberChanged(number_changed(event, &v)?),
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
    fn zooms_documented_address_event_parses_and_its_twin_has_the_same_id() {
        let body = r#"{"event":"number_management.peering_number_emergency_address_updated","event_ts":1619155436400,"payload":{"account_id":"Mt6sv4u0TAyPkwgsL2lxiA","object":{"emergency_address":{"address_line1":"55 ALMADEN BLVD","address_line2":"13F","city":"SAN JOSE","country":"US","state_code":"CA","zip":"95113"},"carrier_code":3457,"phone_numbers":["+18008001000"]}}}"#;
        let Ok(Event::NumberChanged(e)) = parse(body.as_bytes()) else { panic!("parsed") };
        assert_eq!((e.account_id.as_str(), e.event_ts), ("Mt6sv4u0TAyPkwgsL2lxiA", 1619155436400));
        assert_eq!(e.phone_numbers, ["+18008001000"]);
        let NumberChange::EmergencyAddress(a) = &e.change else { panic!("an address") };
        assert_eq!((a.city.as_deref(), a.zip.as_deref()), (Some("SAN JOSE"), Some("95113")));
        let twin = body
            .replace("number_management.", "phone.")
            .replace("\"+18008001000\"", "\"18008001000\"")
            .replace("\"carrier_code\":3457,", "");
        let Ok(Event::NumberChanged(t)) = parse(twin.as_bytes()) else { panic!("parsed") };
        assert_eq!(t.event_id, e.event_id);
        let cnam = r#"{"event":"number_management.peering_number_cnam_updated","event_ts":1619155436400,"payload":{"account_id":"Mt6sv4u0TAyPkwgsL2lxiA","object":{"cnam":"ACME","carrier_code":3457,"phone_numbers":["+18008001000"]}}}"#;
        let Ok(Event::NumberChanged(c)) = parse(cnam.as_bytes()) else { panic!("parsed") };
        assert_eq!(c.change, NumberChange::Cnam("ACME".into()));
        assert_ne!(c.event_id, e.event_id);
        let no_ts = cnam.replace("\"event_ts\":1619155436400,", "");
        assert!(matches!(parse(no_ts.as_bytes()), Err(WebhookError::Malformed(_))));
    }

    #[test]
    fn url_validation_matches_zooms_documented_example_formula() {
        let answer = url_validation_response("secret", "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        let hex = answer["encryptedToken"].as_str().expect("hex");
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn a_number_event_naming_more_numbers_than_a_person_changes_is_malformed() {
        let numbers: Vec<String> =
            (0..=MAX_EVENT_NUMBERS).map(|i| format!("+1800{i:07}")).collect();
        let body = serde_json::json!({
            "event": "number_management.peering_number_cnam_updated",
            "event_ts": 1619155436400_i64,
            "payload": {"account_id": "Mt6sv4u0TAyPkwgsL2lxiA", "object": {"cnam": "ACME", "phone_numbers": numbers}}
        });
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than 10,000 numbers"), "{err}");
    }
}
