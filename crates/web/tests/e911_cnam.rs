//! Emergency addresses and caller ID names set in Zoom, end to end on SQLite and PostgreSQL: the
//! simulator (a real server) sends its signed events when the customer changes a number, peerex
//! records them with their history, shows them in both portals, the API, the export and /metrics,
//! and flags active numbers without the address the carrier requires. Replays, late older events,
//! forged signatures and events naming another customer's numbers change nothing.

use domain::auth::{Role, Scope};
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::zoom_facts::E911Required;
use domain::{Actor, CustomerId, NumberState};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::sim::demo;
use testkit::{Db, ZoomApp, ADMIN_EMAIL, METRICS_TOKEN, PASSWORD};

mod api_support;

testkit::on_both!(
    addresses_and_names_set_in_zoom_are_recorded_shown_and_flagged,
    replayed_late_forged_and_foreign_events_change_nothing,
    the_customer_portal_shows_the_address_and_the_missing_flag_in_a_browser,
    a_lost_event_leaves_the_flag_until_the_customer_saves_again_and_twins_count_once,
);

const ACME_ADMIN: &str = "admin@acme.example";
const N0: &str = "+15550100000";
const N1: &str = "+15550100001";
const N2: &str = "+15550100002";

struct Linked {
    t: ZoomApp,
    acme: CustomerId,
    /// The customer admin's browser, signed in to the portal.
    portal: reqwest::Client,
    token: String,
    /// The OpenAPI document the platform publishes: every JSON answer is checked against it.
    spec: Value,
}

/// Acme, linked to its Zoom account, with three active numbers; the carrier requires an emergency
/// address for +1 numbers.
async fn linked(db: Db) -> Linked {
    let settings = app::Settings {
        e911_required: E911Required::Countries(vec!["+1".into()]),
        ..app::Settings::default()
    };
    let t = ZoomApp::spawn_with_settings(db, settings).await;
    let app = t.app();
    let acme = app.create_customer("Acme Corp", "C-acme").await.unwrap().id;
    t.bind_demo_trunk(acme).await;
    app.create_user(ACME_ADMIN, PASSWORD, Role::CustomerAdmin, Some(acme)).await.unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100019", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    let pick = OrderPick { count: 3, prefix: Some("+1555010".into()), ..Default::default() };
    app.create_order(acme, pick, &[], &by).await.unwrap();
    let portal = t.link_acme(ACME_ADMIN).await;
    t.run_pending_jobs().await;
    let token = t.platform.token(Scope::Read).await;
    let spec = reqwest::get(format!("{}/api/v1/openapi.json", t.platform.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Linked { t, acme, portal, token, spec }
}

impl Linked {
    /// The customer sets `number`'s emergency address in Zoom; returns once Zoom's deliveries are done.
    async fn set_address(&self, number: &str, line1: &str) {
        let url = format!("{}/_sim/numbers/{}/emergency_address", self.t.zoom.url, enc(number));
        let body = json!({ "address_line1": line1, "city": "SAN JOSE", "state_code": "CA", "zip": "95113", "country": "US" });
        let r = reqwest::Client::new().put(url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "set the address in Zoom: {}", r.status());
        self.deliveries_done().await;
    }

    async fn set_cnam(&self, number: &str, cnam: &str) {
        let url = format!("{}/_sim/numbers/{}/cnam", self.t.zoom.url, enc(number));
        let r =
            reqwest::Client::new().put(url).json(&json!({ "cnam": cnam })).send().await.unwrap();
        assert!(r.status().is_success(), "set the CNAM in Zoom: {}", r.status());
        self.deliveries_done().await;
    }

    /// Zoom's webhook log, once no delivery is pending or being sent.
    async fn deliveries_done(&self) -> Vec<Value> {
        for _ in 0..200 {
            let log: Value = reqwest::get(format!("{}/_sim/webhooks", self.t.zoom.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let all = log["deliveries"].as_array().cloned().unwrap_or_default();
            if all.iter().all(|d| d["outcome"] != "pending" && d["outcome"] != "sending") {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Zoom's webhooks were not delivered within 10 s");
    }

    async fn api(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}/api/v1{path}", self.t.platform.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// The JSON of a 200 from `GET /api/v1{path}`, checked against the OpenAPI document.
    async fn api_json(&self, path: &str) -> Value {
        let r = self.api(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        let body: Value = r.json().await.unwrap();
        let route = path.split('?').next().unwrap_or(path);
        let template = api_support::template_for(&self.spec, &format!("/api/v1{route}"))
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
        let schema = &self.spec["paths"][template]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        let errors = api_support::validate(&self.spec, schema, &body);
        assert!(
            errors.is_empty(),
            "GET {path}: not as documented:\n{}\n{body:#}",
            errors.join("\n")
        );
        body
    }

    /// The customer's numbers as the API lists them, by number.
    async fn listed(&self, filter: &str) -> Vec<Value> {
        let page = self.api_json(&format!("/numbers?customer_id={}{filter}", self.acme)).await;
        page["numbers"].as_array().cloned().unwrap()
    }

    async fn number(&self, e164: &str) -> Value {
        let all = self.listed("").await;
        all.into_iter().find(|n| n["number"] == e164).unwrap_or_else(|| panic!("{e164} listed"))
    }

    async fn detail(&self, e164: &str) -> Value {
        let id = self.number(e164).await["id"].as_str().unwrap().to_owned();
        self.api_json(&format!("/numbers/{id}")).await
    }

    async fn flagged(&self) -> Vec<String> {
        let found = self.listed("&emergency_address_missing=true").await;
        found.iter().map(|n| n["number"].as_str().unwrap().to_owned()).collect()
    }

    /// Posts `body` to peerex's webhook endpoint signed with `secret`, as Zoom would now.
    async fn deliver(&self, body: &str, secret: &str) -> reqwest::Response {
        let ts = self.t.app().now().unix_timestamp().to_string();
        self.deliver_at(body, secret, &ts).await
    }

    async fn deliver_at(&self, body: &str, secret: &str, ts: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/zoom/webhook", self.t.platform.url))
            .header("x-zm-request-timestamp", ts)
            .header("x-zm-signature", zoom::webhook::signature(secret, ts, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

fn enc(number: &str) -> String {
    number.replace('+', "%2B")
}

/// An address event as Zoom sends it, for `account` and `numbers`, made at `event_ts` (ms).
fn address_event(account: &str, numbers: &[&str], line1: &str, event_ts: i64) -> String {
    json!({
        "event": "number_management.peering_number_emergency_address_updated",
        "event_ts": event_ts,
        "payload": { "account_id": account, "object": {
            "carrier_code": demo::CARRIER_CODE, "phone_numbers": numbers,
            "emergency_address": { "address_line1": line1, "city": "SAN JOSE", "state_code": "CA", "zip": "95113", "country": "US" },
        } },
    })
    .to_string()
}

async fn addresses_and_names_set_in_zoom_are_recorded_shown_and_flagged(db: Db) {
    let l = linked(db).await;
    // The filter is documented for the search and the export.
    for path in ["/api/v1/numbers", "/api/v1/numbers/export.csv"] {
        let params = l.spec["paths"][path]["get"]["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "emergency_address_missing"), "{path}");
    }
    // Active +1 numbers without an address are flagged, everywhere.
    assert_eq!(l.flagged().await, [N0, N1, N2]);
    assert_eq!(l.number(N0).await["emergency_address_missing"], true);

    l.set_address(N0, "55 ALMADEN BLVD").await;
    l.set_cnam(N0, "ACME SUPPORT").await;
    let n0 = l.number(N0).await;
    assert_eq!(n0["emergency_address"]["address_line1"], "55 ALMADEN BLVD", "{n0}");
    assert_eq!(n0["emergency_address"]["city"], "SAN JOSE");
    assert_eq!(n0["emergency_address_missing"], false);
    assert_eq!(n0["cnam"], "ACME SUPPORT");
    assert_eq!(l.flagged().await, [N1, N2], "the flag is gone with the address");

    // A later change replaces it; both are kept in the history, newest first.
    l.set_address(N0, "1 NEW ST").await;
    let detail = l.detail(N0).await;
    assert_eq!(detail["emergency_address"]["address_line1"], "1 NEW ST");
    let history: Vec<(String, String)> = detail["zoom_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let v = e["emergency_address"]["address_line1"].as_str().or(e["cnam"].as_str());
            (e["kind"].as_str().unwrap().to_owned(), v.unwrap().to_owned())
        })
        .collect();
    assert_eq!(history.len(), 3, "{detail}");
    assert_eq!(history[0], ("emergency_address".to_owned(), "1 NEW ST".to_owned()));
    assert!(history.contains(&("cnam".to_owned(), "ACME SUPPORT".to_owned())));
    assert_eq!(detail["zoom_events"][0]["zoom_account_id"], demo::ACME_ACCOUNT_ID);

    // The capabilities Zoom lists come with the next poll.
    let r = reqwest::Client::new()
        .patch(format!("{}/_sim/numbers/{}", l.t.zoom.url, enc(N1)))
        .json(&json!({ "voice_direction": "INBOUND_ONLY", "outbound_dialer_not_supported": true }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(l.number(N1).await["zoom_capabilities"], Value::Null, "not listed yet");
    assert!(l.t.store().poll_now(l.acme, l.t.app().now()).await.unwrap());
    l.t.run_pending_jobs().await;
    let caps = l.number(N1).await["zoom_capabilities"].clone();
    assert_eq!(caps["voice_direction"], "INBOUND_ONLY", "{caps}");
    assert_eq!(caps["message_capability"], "NOT_APPLICABLE");
    assert_eq!(caps["outbound_dialer_not_supported"], true);
    assert_eq!(l.number(N0).await["zoom_capabilities"]["voice_direction"], "INBOUND_AND_OUTBOUND");

    // The export.
    let csv =
        l.api(&format!("/numbers/export.csv?customer_id={}", l.acme)).await.text().await.unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name}"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let row = |n: &str| rows.iter().find(|r| r[0] == n).unwrap().clone();
    assert_eq!(row(N0)[col("emergency_address")], "1 NEW ST, SAN JOSE, CA 95113, US");
    assert_eq!(row(N0)[col("emergency_address_missing")], "false");
    assert_eq!(row(N0)[col("cnam")], "ACME SUPPORT");
    assert_eq!(row(N1)[col("emergency_address_missing")], "true");
    assert_eq!(row(N1)[col("voice_direction")], "INBOUND_ONLY");
    assert_eq!(row(N1)[col("outbound_restrictions")], "no outbound dialer");
    let flagged_csv =
        l.api("/numbers/export.csv?emergency_address_missing=true").await.text().await.unwrap();
    assert_eq!(flagged_csv.lines().count(), 3, "header and the two flagged: {flagged_csv}");

    // The operator's number page, with the history; the flag on a number without an address.
    let (op, _) = l.t.platform.operator_browser(ADMIN_EMAIL).await;
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let page =
        text(&op, format!("{}/operator/numbers/{}", l.t.platform.url, id(l.number(N0).await)))
            .await;
    assert!(
        page.contains("1 NEW ST, SAN JOSE, CA 95113, US") && page.contains("ACME SUPPORT"),
        "{page}"
    );
    assert!(page.contains("Changes made in Zoom") && page.contains("55 ALMADEN BLVD"), "{page}");
    assert!(page.contains("INBOUND_AND_OUTBOUND"), "{page}");
    let page =
        text(&op, format!("{}/operator/numbers/{}", l.t.platform.url, id(l.number(N1).await)))
            .await;
    assert!(page.contains("Missing: active without the emergency address"), "{page}");
    assert!(page.contains("no outbound dialer"), "{page}");
    // The inventory finds the flagged numbers, and its export takes the same filter.
    let filtered = format!("customer={}&e911=missing", l.acme);
    let page = text(&op, format!("{}/operator/numbers?{filtered}", l.t.platform.url)).await;
    assert!(page.contains(N1) && page.contains(N2) && !page.contains(N0), "{page}");
    assert_eq!(page.matches("no emergency address</span>").count(), 2, "{page}");
    let csv =
        text(&op, format!("{}/operator/numbers/export.csv?{filtered}", l.t.platform.url)).await;
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // The customer portal's number list.
    let home = text(&l.portal, format!("{}/portal", l.t.platform.url)).await;
    assert!(
        home.contains("1 NEW ST, SAN JOSE, CA 95113, US") && home.contains("ACME SUPPORT"),
        "{home}"
    );
    assert_eq!(home.matches("No emergency address: set one in Zoom").count(), 2, "{home}");

    // The gauge counts the flagged numbers of every customer.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", l.t.platform.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("peerex_numbers_missing_emergency_address 2"), "{metrics}");
    testkit::assert_told(l.t.app(), &["number.emergency_address_changed", "number.cnam_changed"])
        .await;
}

async fn replayed_late_forged_and_foreign_events_change_nothing(db: Db) {
    let l = linked(db).await;
    l.set_address(N0, "2 CURRENT ST").await;
    let history = |d: &Value| d["zoom_events"].as_array().unwrap().len();
    assert_eq!(history(&l.detail(N0).await), 1);

    // Zoom delivers the same event again (signed afresh, as its retries are): recorded once.
    let delivered = l.deliveries_done().await;
    let body = delivered
        .iter()
        .find(|d| d["event"] == "number_management.peering_number_emergency_address_updated")
        .and_then(|d| d["body"].as_str())
        .unwrap()
        .to_owned();
    // Seconds away from the simulator's own delivery, which was signed at about now.
    let at = |s: i64| (l.t.app().now().unix_timestamp() + s).to_string();
    let r = l.deliver_at(&body, demo::SECRET_TOKEN, &at(7)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["already_recorded"], json!([N0]), "{answer}");
    // The very same delivery (same timestamp and signature) is refused as a replay.
    let ts = at(-7);
    assert_eq!(l.deliver_at(&body, demo::SECRET_TOKEN, &ts).await.status(), StatusCode::OK);
    assert_eq!(l.deliver_at(&body, demo::SECRET_TOKEN, &ts).await.status(), StatusCode::CONFLICT);
    assert_eq!(history(&l.detail(N0).await), 1, "still one event");

    // An older change arriving late is kept in the history but does not replace the current one.
    let sent: Value = serde_json::from_str(&body).unwrap();
    let older_ts = sent["event_ts"].as_i64().unwrap() - 60_000;
    let late = address_event(demo::ACME_ACCOUNT_ID, &[N0], "0 OLD ST", older_ts);
    assert_eq!(l.deliver(&late, demo::SECRET_TOKEN).await.status(), StatusCode::OK);
    let d = l.detail(N0).await;
    assert_eq!(d["emergency_address"]["address_line1"], "2 CURRENT ST", "{d}");
    assert_eq!(history(&d), 2);

    // A forged signature is refused.
    let forged = address_event(demo::ACME_ACCOUNT_ID, &[N1], "6 FORGED ST", older_ts + 120_000);
    assert_eq!(l.deliver(&forged, "not-the-secret").await.status(), StatusCode::UNAUTHORIZED);

    // Another customer's number: only its own customer's Zoom account may set it.
    let app = l.t.app();
    let beta = app.create_customer("Beta", "C-beta").await.unwrap().id;
    let by = Actor::System("test".into());
    let pick = OrderPick { count: 1, prefix: Some("+1555010".into()), ..Default::default() };
    let (_, betas) = app.create_order(beta, pick, &[], &by).await.unwrap();
    let betas_number = betas[0].e164.to_string();
    let foreign =
        address_event(demo::ACME_ACCOUNT_ID, &[&betas_number], "7 STOLEN ST", older_ts + 180_000);
    let r = l.deliver(&foreign, demo::SECRET_TOKEN).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // An account no customer is linked to speaks for nobody, even naming Acme's number.
    let stranger =
        address_event(demo::CARRIER_ACCOUNT_ID, &[N1], "8 STRANGER ST", older_ts + 240_000);
    assert_eq!(l.deliver(&stranger, demo::SECRET_TOKEN).await.status(), StatusCode::NOT_FOUND);

    assert_eq!(l.number(N1).await["emergency_address"], Value::Null, "nothing set on N1");
    let betas_detail: Value =
        l.api(&format!("/numbers/{}", betas[0].id)).await.json().await.unwrap();
    assert_eq!(betas_detail["emergency_address"], Value::Null, "{betas_detail}");
    assert_eq!(betas_detail["zoom_events"], json!([]));
    assert_eq!(betas_detail["state"], NumberState::Reserved.as_str());
}

async fn the_customer_portal_shows_the_address_and_the_missing_flag_in_a_browser(db: Db) {
    let l = linked(db).await;
    l.set_address(N0, "55 ALMADEN BLVD").await;
    testkit::run_browser_script(
        "e911-portal.mjs",
        &[
            &l.t.platform.url,
            ACME_ADMIN,
            PASSWORD,
            N0,
            N1,
            "55 ALMADEN BLVD, SAN JOSE, CA 95113, US",
        ],
        &[],
    )
    .await;
}

async fn a_lost_event_leaves_the_flag_until_the_customer_saves_again_and_twins_count_once(db: Db) {
    let l = linked(db).await;
    // Zoom loses the event (an injected fault): nothing tells peerex, the number stays flagged.
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", l.t.zoom.url))
        .json(&json!({ "webhook": "number_management.peering_number_emergency_address_updated" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "fault: {}", r.text().await.unwrap());
    l.set_address(N0, "3 LOST ST").await;
    let log = l.deliveries_done().await;
    assert!(log.iter().any(|d| d["outcome"] == "dropped"), "{log:?}");
    assert_eq!(l.flagged().await, [N0, N1, N2], "still flagged: peerex never heard of it");
    assert_eq!(l.detail(N0).await["zoom_events"], json!([]));

    // The customer saves it again; this time it arrives.
    l.set_address(N0, "3 LOST ST").await;
    assert_eq!(l.flagged().await, [N1, N2]);

    // Zoom's legacy twin of the same change (bare digits, `phone.*`) is the same event: kept once.
    let log = l.deliveries_done().await;
    let body = log
        .iter()
        .rev()
        .find(|d| d["outcome"] == "delivered")
        .and_then(|d| d["body"].as_str())
        .unwrap();
    let mut twin: Value = serde_json::from_str(body).unwrap();
    twin["event"] = json!("phone.peering_number_emergency_address_updated");
    twin["payload"]["object"]["phone_numbers"] = json!([N0.trim_start_matches('+')]);
    let r = l.deliver(&twin.to_string(), demo::SECRET_TOKEN).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["already_recorded"], json!([N0.trim_start_matches('+')]), "{answer}");
    assert_eq!(l.detail(N0).await["zoom_events"].as_array().unwrap().len(), 1);
}

/// The body of a GET with `client`'s session.
async fn text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
