//! What the operator portal's tests share: running on both databases, posting multipart forms,
//! and reading pages.
#![allow(dead_code)] // each test binary uses a different part of this

use reqwest::Client;
use testkit::TestApp;

/// `testkit::on_both!` for the tests that use this module (one-thread runtime).
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => { testkit::on_both!(current_thread: $($name),*); };
}

const BOUNDARY: &str = "peerex-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body as a browser sends it: text fields, then an optional file `file`.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    if let Some((file_name, content)) = file {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Submits the import form with a CSV file; `action` is `preview` or `import`.
pub async fn import_csv(
    t: &TestApp,
    client: &Client,
    csrf: &str,
    action: &str,
    csv: &str,
) -> (u16, String) {
    let (content_type, body) =
        multipart(&[("csrf", csrf), ("action", action)], Some(("numbers.csv", csv.as_bytes())));
    let r = client
        .post(format!("{}/operator/import", t.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Submits the import form with a range.
pub async fn import_range(
    t: &TestApp,
    client: &Client,
    csrf: &str,
    action: &str,
    range: &str,
    tags: &str,
) -> (u16, String) {
    let (content_type, body) = multipart(
        &[("csrf", csrf), ("action", action), ("range", range), ("tags", tags), ("region", "")],
        Some(("", b"")),
    );
    let r = client
        .post(format!("{}/operator/import", t.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn get(t: &TestApp, client: &Client, path: &str) -> (u16, String) {
    let r = client.get(format!("{}{path}", t.url)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Posts a form; returns the status, the `Location` (for redirects) and the body.
pub async fn post(
    t: &TestApp,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let r = client.post(format!("{}{path}", t.url)).form(form).send().await.unwrap();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (r.status().as_u16(), location, r.text().await.unwrap())
}

/// Adds numbers straight through the use-case, for tests about something else.
pub async fn seed_range(t: &TestApp, range: &str, tags: &[&str]) {
    let attrs = domain::number::NumberAttrs {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let actor = domain::Actor::System("test".into());
    let outcome = t.app.import_range(range, &attrs, &actor, false, &|_| {}).await.unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

pub async fn count(t: &TestApp, state: domain::NumberState) -> i64 {
    t.app
        .count_by_state()
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |(_, c)| c)
}

pub async fn total(t: &TestApp) -> i64 {
    t.app.count_by_state().await.unwrap().into_iter().map(|(_, c)| c).sum()
}

/// The path of the first number's page linked from a table of numbers.
pub fn first_number_link(html: &str) -> Option<String> {
    let marker = "<td class=\"num\"><a href=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// How many numbers a page's tables list.
pub fn number_rows(html: &str) -> usize {
    html.matches("<td class=\"num\">").count()
}
