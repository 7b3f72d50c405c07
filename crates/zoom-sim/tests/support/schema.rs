//! Just enough JSON Schema (as OpenAPI 3 uses it) to check the simulator's responses against Zoom's
//! published OpenAPI files: `type`, `required`, `properties`, `items`, `enum`, `minItems`/`maxItems`,
//! `minLength`/`maxLength`, `maximum`, `allOf`. The files have no `$ref`s.

use serde_json::Value;
use std::path::PathBuf;

/// Where Zoom's OpenAPI files are: `$ZOOM_OPENAPI_DIR` (to check against newer ones), else the copy
/// in the repository's `reference/zoom/openapi`.
pub fn openapi_dir() -> PathBuf {
    std::env::var_os("ZOOM_OPENAPI_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reference/zoom/openapi")
    })
}

pub struct OpenApi {
    doc: Value,
    /// The path prefix the spec's `servers` URL adds (`/v2`).
    prefix: &'static str,
}

impl OpenApi {
    pub fn load(file: &str) -> OpenApi {
        let path = openapi_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("Zoom's OpenAPI file {} (set ZOOM_OPENAPI_DIR): {e}", path.display())
        });
        OpenApi { doc: serde_json::from_str(&text).expect("OpenAPI file is JSON"), prefix: "/v2" }
    }

    pub fn number_management() -> OpenApi {
        OpenApi::load("number-management.openapi.json")
    }

    pub fn phone() -> OpenApi {
        OpenApi::load("phone-peering-and-users.subset.openapi.json")
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        let spec_path = path.strip_prefix(self.prefix).unwrap_or(path);
        let op = &self.doc["paths"][spec_path][method];
        assert!(op.is_object(), "the OpenAPI file has no {method} {spec_path}");
        op
    }

    /// The JSON schema of `status`'s response to `method path` (`path` as the simulator serves it).
    pub fn response_schema(&self, path: &str, method: &str, status: u16) -> &Value {
        let r = &self.operation(path, method)["responses"][status.to_string()];
        assert!(r.is_object(), "the OpenAPI file declares no {status} for {method} {path}");
        &r["content"]["application/json"]["schema"]
    }

    /// Whether the spec declares a `status` response for the operation.
    pub fn declares(&self, path: &str, method: &str, status: u16) -> bool {
        self.operation(path, method)["responses"][status.to_string()].is_object()
    }

    pub fn request_schema(&self, path: &str, method: &str) -> &Value {
        &self.operation(path, method)["requestBody"]["content"]["application/json"]["schema"]
    }

    /// Every scope the operation accepts (`security[].openapi_oauth`).
    pub fn scopes(&self, path: &str, method: &str) -> Vec<String> {
        self.operation(path, method)["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["openapi_oauth"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    }

    /// Panics, listing every violation, unless `value` fits the response schema.
    pub fn check_response(&self, path: &str, method: &str, status: u16, value: &Value) {
        let errors = validate(self.response_schema(path, method, status), value);
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match Zoom's OpenAPI:\n  {}\nbody: {value:#}",
            errors.join("\n  ")
        );
    }

    pub fn check_request(&self, path: &str, method: &str, value: &Value) {
        let errors = validate(self.request_schema(path, method), value);
        assert!(
            errors.is_empty(),
            "request to {method} {path} does not match Zoom's OpenAPI:\n  {}",
            errors.join("\n  ")
        );
    }
}

pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if schema.is_null() {
        return;
    }
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        check(sub, value, at, errors);
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: expected {t}, got {value}"));
            return;
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} is not one of {}", Value::Array(options.clone())));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|m| len > m)
            || schema["minLength"].as_u64().is_some_and(|m| len < m)
        {
            errors.push(format!("{at}: length {len} is outside the schema's bounds"));
        }
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64()) {
        if n > max {
            errors.push(format!("{at}: {n} is above the maximum {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(format!("{at}: required field {name} is missing"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, sub) in props {
                if let Some(v) = object.get(name) {
                    check(sub, v, &format!("{at}.{name}"), errors);
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as u64;
        if schema["maxItems"].as_u64().is_some_and(|m| len > m)
            || schema["minItems"].as_u64().is_some_and(|m| len < m)
        {
            errors.push(format!("{at}: {len} items is outside the schema's bounds"));
        }
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{at}[{i}]"), errors);
        }
    }
}
