//! Reading requests the way Zoom's API does: a malformed body or parameter is a Zoom-shaped 400 naming
//! the field, never axum's plain-text rejection.

use crate::error::ApiError;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// Parses a JSON body, naming the field at fault (`phone_numbers[3].status`) when it does not fit.
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(300, "Request Body is required."));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(300, "Request Body should be a valid JSON object.")
        } else {
            ApiError::validation(&field, inner.to_string())
        }
    })
}

/// A query string as pairs, keeping repeated keys (`phone_numbers=a&phone_numbers=b`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(uri: &Uri) -> Query {
        Query(form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, each also split at commas.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::validation(name, "must be an integer")),
        }
    }

    /// `page_size` within `1..=max`: larger values are capped, as Zoom caps them [assume].
    pub fn page_size(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        Ok(match self.int("page_size")? {
            None => default,
            Some(n) if n < 1 => default,
            Some(n) => usize::try_from(n).unwrap_or(max).min(max),
        })
    }
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(404, format!("No such API: {}", uri.path())).into_response()
}
