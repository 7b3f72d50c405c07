//! What the release tests share: a customer whose numbers are active in (simulated) Zoom, the
//! customer's signed-in portal browser, and reading the Wait for Release tab.
#![allow(dead_code)] // each test binary uses a different part of this

use domain::auth::Role;
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::{Actor, CustomerId, NumberState};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use testkit::sim::demo;
use testkit::{hidden_value, ZoomApp, ADMIN_EMAIL, PASSWORD};

/// `testkit::on_both!` for the tests that use this module.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => { testkit::on_both!($($name),*); };
}

pub const ACME_ADMIN: &str = "admin@acme.example";
pub const PEERING: &str = "/v2/number_management/peering_numbers";

/// Acme with its admin and `count` numbers from +15550100000, linked to its Zoom account and pushed:
/// active here, Unassigned in Zoom. Returns the customer and the admin's signed-in portal browser.
pub async fn acme_with_active_numbers(t: &ZoomApp, count: u32) -> (CustomerId, Client) {
    let app = t.app();
    let c = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    t.bind_demo_trunk(c.id).await;
    app.create_user(ACME_ADMIN, PASSWORD, Role::CustomerAdmin, Some(c.id)).await.unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100049", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(c.id, OrderPick { count, ..Default::default() }, &[], &by).await.unwrap();
    let browser = t.link_acme(ACME_ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(
        states(t, c.id).await.iter().filter(|(_, s, _)| *s == NumberState::Active).count(),
        count as usize,
        "pushed and active"
    );
    (c.id, browser)
}

/// The customer's numbers: (e164, state, reason), by number.
pub async fn states(t: &ZoomApp, c: CustomerId) -> Vec<(String, NumberState, Option<String>)> {
    let q = domain::search::NumberQuery { customer_id: Some(c), limit: 1000, ..Default::default() };
    t.app()
        .search_numbers(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.e164.to_string(), n.state, n.reason))
        .collect()
}

/// The number `e164` as the platform's database holds it.
pub async fn number(t: &ZoomApp, e164: &str) -> domain::Number {
    let e164 = domain::PhoneNumber::parse(e164).unwrap();
    t.store().get_number_by_e164(&e164).await.unwrap().unwrap()
}

pub async fn state_of(t: &ZoomApp, e164: &str) -> (NumberState, Option<String>) {
    let n = number(t, e164).await;
    (n.state, n.reason)
}

/// The numbers Zoom has for Acme's account.
pub async fn zoom_numbers(t: &ZoomApp) -> Vec<String> {
    let v: Value =
        reqwest::get(format!("{}/_sim/numbers?account_id={}", t.zoom.url, demo::ACME_ACCOUNT_ID))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap().to_owned())
        .collect()
}

/// Assigns the number to Acme's user in Zoom (as the admin would in Zoom's Phone Numbers page).
pub async fn assign_in_zoom(t: &ZoomApp, e164: &str) {
    let r = Client::new()
        .put(format!("{}/_sim/numbers/{}/assignment", t.zoom.url, e164.replace('+', "%2B")))
        .json(&serde_json::json!({ "user": demo::ACME_USER_EMAIL }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "assign in Zoom: {}", r.status());
}

/// Unbind in Zoom.
pub async fn unbind_in_zoom(t: &ZoomApp, e164: &str) {
    let r = Client::new()
        .delete(format!("{}/_sim/numbers/{}/assignment", t.zoom.url, e164.replace('+', "%2B")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "unbind in Zoom: {}", r.status());
}

pub async fn fault(t: &ZoomApp, f: Value) {
    let r =
        Client::new().post(format!("{}/_sim/faults", t.zoom.url)).json(&f).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{f}: {}", r.text().await.unwrap_or_default());
}

pub async fn get_text(b: &Client, url: String) -> String {
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.text().await.unwrap()
}

/// The Wait for Release tab.
pub async fn wait_page(t: &ZoomApp, b: &Client) -> String {
    get_text(b, format!("{}/portal/releases", t.platform.url)).await
}

/// The row of `e164` on the tab (from `<tr` to `</tr>`).
pub fn row<'a>(page: &'a str, e164: &str) -> &'a str {
    let marker = format!("data-number=\"{e164}\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("{e164} is not on the page:\n{page}"));
    let start = page[..at].rfind("<tr").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    &page[start..end]
}

/// The checkbox value (number id) of `e164`'s row, if it can be ticked.
pub fn tick_value(page: &str, e164: &str) -> Option<String> {
    let r = row(page, e164);
    let marker = "name=\"number\" value=\"";
    let start = r.find(marker)? + marker.len();
    Some(r[start..start + r[start..].find('"')?].to_owned())
}

/// Ticks `e164s` and clicks Release numbers; returns the status and the Location.
pub async fn release_numbers(t: &ZoomApp, b: &Client, e164s: &[&str]) -> (StatusCode, String) {
    let page = wait_page(t, b).await;
    let csrf = hidden_value(&page, "csrf").unwrap();
    let mut form = vec![("csrf".to_owned(), csrf)];
    for e in e164s {
        form.push((
            "number".to_owned(),
            tick_value(&page, e).unwrap_or_else(|| panic!("{e} cannot be ticked:\n{page}")),
        ));
    }
    let r = b.post(format!("{}/portal/releases", t.platform.url)).form(&form).send().await.unwrap();
    let location =
        r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (r.status(), location)
}

/// An operator's browser, signed in.
pub async fn operator(t: &ZoomApp) -> Client {
    let b = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = get_text(&b, format!("{}/operator/login", t.platform.url)).await;
    let csrf = hidden_value(&page, "csrf").unwrap();
    let r = b
        .post(format!("{}/operator/login", t.platform.url))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("next", "/operator"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "operator sign-in: {}", r.status());
    b
}

/// Runs due jobs until no number of the customer is `releasing`, moving the platform's clock on to
/// each retry (its backoff) rather than waiting for it; `within` bounds the real time taken.
pub async fn settle(t: &ZoomApp, c: CustomerId, within: std::time::Duration) {
    let start = std::time::Instant::now();
    loop {
        t.run_pending_jobs().await;
        let s = states(t, c).await;
        let releasing = s.iter().filter(|(_, st, _)| *st == NumberState::Releasing).count();
        if releasing == 0 {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{releasing} numbers still releasing after {within:?}: {s:?}"
        );
        if t.skip_to_next_job(time::Duration::minutes(1)).await.is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A `multipart/form-data` body as a browser sends it: text fields, then an optional CSV file `file`.
pub fn multipart(fields: &[(&str, &str)], file: Option<&str>) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "peerex-release-boundary-3kQ9";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    if let Some(csv) = file {
        body.push_str(&format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"numbers.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (format!("multipart/form-data; boundary={BOUNDARY}"), body.into_bytes())
}

/// Acme's admin signs in to the customer portal again (a session lasts 12 hours: a test that moves
/// the clock a day on signs in again, as the person would). Returns the signed-in browser.
pub async fn portal_sign_in(t: &ZoomApp) -> Client {
    let b = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = get_text(&b, format!("{}/portal/login", t.platform.url)).await;
    let csrf = testkit::hidden_value(&page, "csrf").expect("csrf");
    let r = b
        .post(format!("{}/portal/login", t.platform.url))
        .form(&[("email", ACME_ADMIN), ("password", PASSWORD), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "portal sign-in: {}", r.status());
    b
}
