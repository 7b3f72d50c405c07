//! Shared by the `api_*` tests: a client for the JSON API that checks every answer against the
//! OpenAPI document the server publishes: the status is declared for the operation, the media type
//! is the declared one, and the body matches the declared schema.

#![allow(dead_code)]

use domain::auth::Scope;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use testkit::{Db, TestApp};

/// `testkit::on_both!` for the tests that use this module (one-thread runtime).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => { testkit::on_both!(current_thread: $($name),*); };
}

pub struct Api {
    pub t: TestApp,
    pub client: reqwest::Client,
    /// A `write` token.
    pub token: String,
    pub spec: Value,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Api {
    pub async fn spawn(db: Db) -> Api {
        let t = TestApp::spawn(db).await;
        let token = t.token(Scope::Write).await;
        let client = reqwest::Client::new();
        let spec = client
            .get(format!("{}/api/v1/openapi.json", t.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api { t, client, token, spec }
    }

    /// A request to `/api/v1{path}` with no token.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}/api/v1{path}", self.t.url))
    }

    /// A request to `/api/v1{path}` with the `write` token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).bearer_auth(&self.token)
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let request = request.build().unwrap();
        let method = request.method().as_str().to_ascii_lowercase();
        let path = request.url().path().to_owned();
        let response = self.client.execute(request).await.unwrap();
        let reply = Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        };
        check_against_spec(&self.spec, &method, &path, &reply);
        reply
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::POST, path).json(&body)).await
    }

    /// Every number matching `query` (a search query string), walking all pages.
    pub async fn all_numbers(&self, query: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.get(&format!("/numbers?limit=500&{query}&after={after}")).await.ok(200);
            all.extend(page["numbers"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_str() {
                Some(next) => after = urlencode(next),
                None => return all,
            }
        }
    }

    pub async fn import_range(&self, range: &str, tags: &[&str]) -> Value {
        self.post("/numbers/import", serde_json::json!({"range": range, "tags": tags}))
            .await
            .ok(200)
    }

    /// Creates a customer and returns its id.
    pub async fn customer(&self, contract_ref: &str) -> String {
        let c = self.post("/customers", serde_json::json!({"name": format!("Customer {contract_ref}"), "contract_ref": contract_ref})).await.ok(201);
        c["id"].as_str().unwrap().to_owned()
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").map_or("", |v| v.to_str().unwrap())
    }

    /// The body of a success with `status`.
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        self.json()
    }

    /// The problem document of a failure with `status`.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.text);
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"].as_str().unwrap().starts_with("https://"), "{p}");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
        p
    }
}

/// The document's path template that `path` is an instance of, preferring literal segments
/// (`/numbers/export.csv` over `/numbers/{id}`).
pub fn template_for<'a>(spec: &'a Value, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s);
            fits.then(|| (parts.iter().filter(|p| !p.starts_with('{')).count(), template.as_str()))
        })
        .max()
        .map(|(_, t)| t)
}

fn check_against_spec(spec: &Value, method: &str, path: &str, reply: &Reply) {
    if path.ends_with("/openapi.json") {
        return;
    }
    let template =
        template_for(spec, path).unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
    let operation = &spec["paths"][template][method];
    assert!(operation.is_object(), "{method} {template} is not in the OpenAPI document");
    let response = &operation["responses"][reply.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {template} answered {}, which it does not declare: {}",
        reply.status,
        reply.text
    );
    let media = reply.content_type().split(';').next().unwrap().trim();
    let declared = &response["content"][media];
    assert!(
        declared.is_object(),
        "{method} {template} answered {} as {media:?}, declared {}",
        reply.status,
        response["content"]
    );
    if media.ends_with("json") {
        let body: Value = serde_json::from_str(&reply.text).unwrap();
        let errors = validate(spec, &declared["schema"], &body);
        assert!(
            errors.is_empty(),
            "{method} {template} {}: the body does not match its schema:\n{}\n{body:#}",
            reply.status,
            errors.join("\n")
        );
    }
}

/// Checks `value` against a schema of the document (the subset of JSON Schema utoipa writes:
/// `$ref`, `allOf`, `oneOf`/`anyOf`, `type`, `enum`, `required`, `properties`, `items`). Stricter
/// than JSON Schema in one way: a property the schema does not declare is an error, so nothing the
/// API sends goes undocumented.
pub fn validate(spec: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(spec, schema, value, "$", &mut errors);
    errors
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            spec,
            spec.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}")),
        ),
        None => schema,
    }
}

/// The properties a schema declares, including those of its `allOf` parts.
fn declared<'a>(spec: &'a Value, schema: &'a Value, into: &mut Vec<&'a str>) {
    let schema = resolve(spec, schema);
    into.extend(
        schema["properties"].as_object().into_iter().flat_map(|p| p.keys().map(String::as_str)),
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        declared(spec, part, into);
    }
}

fn check(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    check_shape(spec, schema, value, at, errors);
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            if !options.iter().any(|s| validate_at(spec, s, value, at).is_empty()) {
                errors.push(format!("{at}: matches none of {key}"));
            }
        }
    }
    if let Some(map) = value.as_object() {
        let mut names = Vec::new();
        declared(spec, schema, &mut names);
        // A schema without properties is a free-form object.
        if !names.is_empty() {
            for key in map.keys().filter(|k| !names.contains(&k.as_str())) {
                errors.push(format!("{at}.{key}: not declared in the schema"));
            }
        }
    }
}

fn validate_at(spec: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(spec, schema, value, at, &mut errors);
    errors
}

/// Type, enum, required, properties and items of a schema and its `allOf` parts; the rule on
/// undeclared properties is applied by [`check`] to the whole.
fn check_shape(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check_shape(spec, part, value, at, errors);
    }
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty()
        && !types.iter().any(|t| *t == actual || (*t == "number" && actual == "integer"))
    {
        errors.push(format!("{at}: is {actual}, the schema says {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(map) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                errors.push(format!("{at}: required property {name:?} is missing"));
            }
        }
        for (key, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(v) = map.get(key) {
                check(spec, property, v, &format!("{at}.{key}"), errors);
            }
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(spec, item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
}
