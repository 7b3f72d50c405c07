//! Extractors for JSON bodies and query strings that answer bad input with a problem document naming
//! the field. axum's own `Json` and `Query` reject in plain text, which an API client cannot parse.

use crate::error::Problem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON request body. Malformed JSON is a 400; JSON of the wrong shape is a 422 naming the field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if media_type(req.headers())
            .is_none_or(|m| m != "application/json" && !m.ends_with("+json"))
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        decode_json(&bytes).map(JsonBody)
    }
}

/// A query string; a value of the wrong type is a 422 naming the parameter.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Params).map_err(|e| {
            let message = e.inner().to_string();
            invalid(field_of(&e.path().to_string(), &message), &message)
        })
    }
}

/// The media type of a request without its parameters, lower-cased: `text/csv; charset=utf-8` is
/// `text/csv`.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// A body that could not be read: too large (413) or cut short (400).
pub fn body_rejection(r: BytesRejection) -> Problem {
    let kind = if r.status() == StatusCode::PAYLOAD_TOO_LARGE { "too-large" } else { "bad-body" };
    Problem::new(r.status(), kind, r.body_text())
}

// A problem is built once per refused request; its size does not matter.
#[allow(clippy::result_large_err)]
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_problem(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| json_problem(".", &e))?;
    Ok(value)
}

fn json_problem(path: &str, e: &serde_json::Error) -> Problem {
    // serde_json appends the position to every message; it helps with syntax, not with a field.
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = e.to_string();
    let message = message.strip_suffix(&position).unwrap_or(&message);
    match e.classify() {
        serde_json::error::Category::Data => invalid(field_of(path, message), message),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            format!("the body is not valid JSON: {message}{position}"),
        ),
    }
}

fn invalid(field: Option<String>, message: &str) -> Problem {
    let detail = match &field {
        Some(f) => format!("{f}: {message}"),
        None => message.to_owned(),
    };
    let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail);
    p.field = field;
    p
}

/// The field an error is about. serde reports a missing field at its parent's path and names it only
/// in the message; an unknown one is at its own path.
fn field_of(path: &str, message: &str) -> Option<String> {
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
    match (path, missing) {
        (".", None) => None,
        (".", Some(name)) => Some(name.to_owned()),
        (parent, Some(name)) => Some(format!("{parent}.{name}")),
        (path, None) => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        numbers: Option<Vec<u32>>,
    }

    fn problem(json: &str) -> Problem {
        decode_json::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn bad_json_names_the_field() {
        assert!(decode_json::<Body>(br#"{"name": "x", "numbers": [1]}"#).is_ok());
        let p = problem(r#"{"name": 5}"#);
        assert_eq!((p.status, p.field.as_deref()), (422, Some("name")));
        assert_eq!(problem("{}").field.as_deref(), Some("name"));
        assert_eq!(problem(r#"{"name": "x", "nmbers": []}"#).field.as_deref(), Some("nmbers"));
        assert_eq!(
            problem(r#"{"name": "x", "numbers": [1, "2"]}"#).field.as_deref(),
            Some("numbers[1]")
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        for bad in [r#"{"name": "x""#, "", r#"{"name": "x"} trailing"#, "\u{0}"] {
            let p = problem(bad);
            assert_eq!(p.status, 400, "{bad:?}");
            assert_eq!(p.field, None);
            assert!(p.detail.contains("line 1"), "{}", p.detail);
        }
    }
}
