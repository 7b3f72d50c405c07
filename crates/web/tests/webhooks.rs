//! Signed webhooks end to end, on SQLite and PostgreSQL: endpoints managed through the API, events
//! written with the changes, and deliveries to real HTTP receivers on loopback, including hostile
//! ones (errors, redirects, resets, huge and slow answers), checked for order, signatures (by the
//! published `standardwebhooks` library too), retries, disabling, replay and leases.

use app::webhooks::{Dispatcher, WebhookSettings};
use domain::auth::Scope;
use domain::customer::OrderPick;
use domain::Actor;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{Db, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

testkit::on_both!(
    events_arrive_signed_and_in_order_per_number_after_a_5xx,
    hostile_receivers_fail_fast_and_are_retried,
    an_endpoint_that_keeps_failing_is_disabled_and_its_events_replay,
    private_addresses_are_refused_at_creation_and_at_delivery,
    two_dispatchers_deliver_each_event_once,
    a_dispatcher_that_dies_holding_deliveries_loses_none,
    endpoints_are_managed_through_the_api_and_secrets_rotate_with_an_overlap,
    operators_manage_endpoints_in_the_portal_and_see_disabled_ones,
    old_history_is_removed_once_every_delivery_of_it_has_ended,
);

/// What a test receiver does with a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Status(u16),
    Redirect,
    Reset,
    /// A 500 whose body would be 64 MB.
    Huge,
    /// Answers 200 after this long.
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

/// An HTTP receiver on loopback: records every request, answers from a script (then `Ok`).
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<Answer>>>,
    always: Arc<Mutex<Option<Answer>>>,
    /// Bytes of huge bodies written before the client went away.
    huge_written: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver {
            url,
            got: Arc::default(),
            script: Arc::default(),
            always: Arc::default(),
            huge_written: Arc::default(),
        };
        let me = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let me = me.clone();
                tokio::spawn(async move { me.serve(sock).await });
            }
        });
        r
    }

    fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend_from_slice(answers);
    }

    fn answer_always(&self, a: Answer) {
        *self.always.lock().unwrap() = Some(a);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn serve(&self, mut sock: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        let answer = {
            let mut script = self.script.lock().unwrap();
            if script.is_empty() {
                self.always.lock().unwrap().unwrap_or(Answer::Ok)
            } else {
                script.remove(0)
            }
        };
        self.got.lock().unwrap().push(Received { headers, body });
        let reply = |status: &str, extra: &str| {
            format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok")
        };
        match answer {
            Answer::Ok => {
                let _ = sock.write_all(reply("200 OK", "").as_bytes()).await;
            }
            Answer::Status(s) => {
                let _ = sock.write_all(reply(&format!("{s} Nope"), "").as_bytes()).await;
            }
            Answer::Redirect => {
                let _ = sock
                    .write_all(
                        reply("302 Found", &format!("location: {}\r\n", self.url)).as_bytes(),
                    )
                    .await;
            }
            Answer::Reset => {
                // Closing with a zero linger sends RST instead of FIN.
                let _ = sock.set_zero_linger();
                drop(sock);
            }
            Answer::Huge => {
                let total = 64 << 20;
                let head = format!("HTTP/1.1 500 Oops\r\ncontent-length: {total}\r\n\r\n");
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while written < total {
                    if sock.write_all(&block).await.is_err() {
                        break;
                    }
                    written += block.len();
                }
                *self.huge_written.lock().unwrap() = written;
            }
            Answer::Slow(d) => {
                tokio::time::sleep(d).await;
                let _ = sock.write_all(reply("200 OK", "").as_bytes()).await;
            }
        }
    }
}

fn settings() -> app::Settings {
    app::Settings {
        webhooks: WebhookSettings {
            allow_private_targets: true,
            retry_schedule: vec![time::Duration::seconds(10); 4],
            disable_after_failures: 3,
            disable_after: time::Duration::ZERO,
            timeout: Duration::from_secs(2),
            ..WebhookSettings::default()
        },
        ..app::Settings::default()
    }
}

struct Hooks {
    t: TestApp,
    token: String,
    http: reqwest::Client,
}

impl Hooks {
    async fn start(db: Db) -> Hooks {
        Self::start_with(db, settings()).await
    }

    async fn start_with(db: Db, settings: app::Settings) -> Hooks {
        let t = TestApp::spawn_with(db, settings).await;
        let token = t.token(Scope::Write).await;
        Hooks { t, token, http: reqwest::Client::new() }
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/api/v1{path}", self.t.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Adds an endpoint for `url`; its id and secret.
    async fn endpoint(&self, url: &str, types: &[&str]) -> (String, String) {
        let (status, e) = self
            .api(
                reqwest::Method::POST,
                "/webhook-endpoints",
                Some(json!({ "url": url, "event_types": types })),
            )
            .await;
        assert_eq!(status, 201, "{e}");
        (e["endpoint"]["id"].as_str().unwrap().to_owned(), e["secret"].as_str().unwrap().to_owned())
    }

    /// A customer holding an order of `count` numbers of a fresh range; the order's id.
    async fn order(&self, first: u64, count: u32) -> domain::OrderId {
        let by = Actor::System("test".into());
        let app = &self.t.app;
        let range = format!("+{first}-+{}", first + u64::from(count) - 1);
        app.import_range(&range, &Default::default(), &by, false, &|_| {}).await.unwrap();
        let c = testkit::insert_customer(&self.t.store, &format!("c{first}")).await;
        let pick = OrderPick {
            count,
            prefix: Some(format!("+{first}")[..8].into()),
            ..Default::default()
        };
        app.create_order(c, pick, &[], &by).await.unwrap().0.id
    }

    fn dispatcher(&self, name: &str) -> Dispatcher {
        self.t.app.webhook_dispatcher(name)
    }

    /// Runs `d` until `done` holds, moving the clock past each retry's pause.
    async fn drive(&self, d: &Dispatcher, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            if d.run_once().await.unwrap() == 0 {
                self.t.clock.advance(time::Duration::seconds(11));
            }
        }
        assert!(done(), "deliveries did not converge");
    }

    async fn deliveries(&self, endpoint: &str) -> Vec<Value> {
        let (status, v) = self
            .api(reqwest::Method::GET, &format!("/webhook-endpoints/{endpoint}/deliveries"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v["deliveries"].as_array().unwrap().clone()
    }
}

/// Checks a delivery's signature as the Standard Webhooks specification defines it.
fn signed_by(r: &Received, secret: &str) -> bool {
    let id = &r.headers["webhook-id"];
    let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
    let want = app::webhooks::sign(secret, id, ts, &r.body).unwrap();
    r.headers["webhook-signature"].split(' ').any(|s| s == want)
}

fn payload(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

/// Runs e2e/verify-webhooks.mjs (the npm `standardwebhooks` library) on captured deliveries.
async fn verify_with_the_published_library(got: &[Received], secrets: &[&str]) {
    let captured: Vec<Value> = got
        .iter()
        .map(|r| {
            json!({
                "secrets": secrets,
                "headers": {
                    "webhook-id": r.headers["webhook-id"],
                    "webhook-timestamp": r.headers["webhook-timestamp"],
                    "webhook-signature": r.headers["webhook-signature"],
                },
                "body": r.body,
            })
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&captured).unwrap()).unwrap();
    let root = testkit::repo_root();
    assert!(
        root.join("e2e/node_modules/standardwebhooks").is_dir(),
        "e2e/node_modules is missing: run scripts/test, which runs `npm ci` in e2e/"
    );
    let out = tokio::process::Command::new("node")
        .arg(root.join("e2e/verify-webhooks.mjs"))
        .arg(file.path())
        .current_dir(&root)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (scripts/test installs it)");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "verify-webhooks.mjs: {stderr}\n{stdout}"
    );
}

async fn events_arrive_signed_and_in_order_per_number_after_a_5xx(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    let (_, secret) = h.endpoint(&rx.url, &[]).await;
    let order = h.order(15550100000, 3).await;
    h.t.app.cancel_order(order, None, &Actor::System("test".into())).await.unwrap();
    // A change refused writes no event: the outbox is written in the change's transaction.
    let before = h.t.app.outbound_events(1_000).await.unwrap().len();
    let c = testkit::insert_customer(&h.t.store, "greedy").await;
    let pick = OrderPick { count: 50, ..Default::default() };
    assert!(h.t.app.create_order(c, pick, &[], &Actor::System("test".into())).await.is_err());
    assert_eq!(h.t.app.outbound_events(1_000).await.unwrap().len(), before);
    // The first attempt meets a server error; it is retried, and nothing of its number overtakes it.
    rx.answer_next(&[Answer::Status(503)]);
    let d = h.dispatcher("d1");
    // 3 numbers reserved, the order placed, 3 numbers back, the order cancelled: 8 events.
    h.drive(&d, || rx.got().len() >= 9).await;
    let got = rx.got();
    assert_eq!(got.len(), 9, "8 events and one retry");
    let ids: std::collections::HashSet<&String> =
        got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 8, "each event delivered, the failed one twice with one id");
    for r in &got {
        assert!(signed_by(r, &secret), "signature of {}", r.body);
        assert_eq!(r.headers["content-type"], "application/json");
    }
    // Per number: reserved, then available again, in that order.
    let mut per_number: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for r in &got {
        let p = payload(r);
        if p["type"] == "number.state_changed" && seen.insert(r.headers["webhook-id"].clone()) {
            per_number
                .entry(p["data"]["e164"].as_str().unwrap().to_owned())
                .or_default()
                .push(p["data"]["to"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(per_number.len(), 3, "{per_number:?}");
    for (n, states) in &per_number {
        assert_eq!(states, &["reserved", "available"], "{n}");
    }
    let types: Vec<String> =
        got.iter().map(|r| payload(r)["type"].as_str().unwrap().to_owned()).collect();
    let placed = types.iter().position(|t| t == "order.placed").unwrap();
    let cancelled = types.iter().position(|t| t == "order.cancelled").unwrap();
    assert!(placed < cancelled, "{types:?}");
    let first = payload(&got[0]);
    assert!(first["timestamp"].as_str().unwrap().contains('T'), "{first}");
    verify_with_the_published_library(&got, &[&secret]).await;
}

async fn hostile_receivers_fail_fast_and_are_retried(db: Db) {
    let h = Hooks::start(db).await;
    let cases = [
        (Answer::Redirect, "redirect"),
        (Answer::Reset, "no answer"),
        (Answer::Huge, "HTTP 500"),
        (Answer::Slow(Duration::from_secs(30)), "timed out"),
        (Answer::Status(500), "HTTP 500"),
    ];
    let mut endpoints = Vec::new();
    for (answer, _) in cases {
        let rx = Receiver::start().await;
        rx.answer_always(answer);
        let (id, _) = h.endpoint(&rx.url, &["order.placed"]).await;
        endpoints.push((rx, id));
    }
    h.order(15550200000, 1).await;
    let d = h.dispatcher("d1");
    let started = std::time::Instant::now();
    d.run_once().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "one round is bounded by the timeout");
    for ((rx, id), (answer, error)) in endpoints.iter().zip(cases) {
        let list = h.deliveries(id).await;
        assert_eq!(list.len(), 1, "{answer:?}: {list:?}");
        assert_eq!(list[0]["state"], "pending", "{answer:?}: retried later: {list:?}");
        assert_eq!(list[0]["attempts"], 1);
        let last = list[0]["last_error"].as_str().unwrap_or_default();
        assert!(last.contains(error), "{answer:?}: {last}");
        assert_eq!(rx.got().len(), 1, "{answer:?}: a redirect is not followed");
    }
    let huge = endpoints[2].0.huge_written.clone();
    // The huge answer was cut off after a few KB: the receiver could not write it all.
    for _ in 0..100 {
        if *huge.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(*huge.lock().unwrap() < 64 << 20, "the answer was not read to its end");
    // The receivers recover: the next attempt delivers.
    for (rx, _) in &endpoints {
        rx.answer_always(Answer::Ok);
    }
    h.t.clock.advance(time::Duration::seconds(11));
    d.run_once().await.unwrap();
    for (_, id) in &endpoints {
        assert_eq!(h.deliveries(id).await[0]["state"], "delivered");
    }
}

async fn an_endpoint_that_keeps_failing_is_disabled_and_its_events_replay(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    rx.answer_always(Answer::Status(500));
    let (id, _) = h.endpoint(&rx.url, &["order.placed"]).await;
    h.order(15550300000, 1).await;
    let d = h.dispatcher("d1");
    let endpoint =
        || async { h.api(reqwest::Method::GET, &format!("/webhook-endpoints/{id}"), None).await.1 };
    for _ in 0..3 {
        d.run_once().await.unwrap();
        h.t.clock.advance(time::Duration::seconds(11));
    }
    let e = endpoint().await;
    assert_eq!(e["enabled"], false, "{e}");
    assert!(e["disabled_reason"].as_str().unwrap().contains("3 failed attempts"), "{e}");
    let (waiting, disabled) = h.t.app.webhook_backlog().await.unwrap();
    assert_eq!((waiting, disabled), (1, 1));
    // Disabled: nothing is attempted any more.
    d.run_once().await.unwrap();
    assert_eq!(rx.got().len(), 3);
    // Fixed and enabled again: the waiting delivery goes; a replay sends it once more.
    rx.answer_always(Answer::Ok);
    let (s, e) = h
        .api(
            reqwest::Method::PUT,
            &format!("/webhook-endpoints/{id}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!((s, &e["failures"]), (200, &json!(0)), "{e}");
    h.drive(&d, || rx.got().len() == 4).await;
    let list = h.deliveries(&id).await;
    assert_eq!(list[0]["state"], "delivered", "{list:?}");
    let event = list[0]["event_id"].as_str().unwrap();
    let (s, _) = h
        .api(
            reqwest::Method::POST,
            &format!("/webhook-endpoints/{id}/deliveries/{event}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 202);
    h.drive(&d, || rx.got().len() == 5).await;
    let got = rx.got();
    assert_eq!(got[4].headers["webhook-id"], event, "the replay carries the event's id");
    let (s, _) = h
        .api(
            reqwest::Method::POST,
            &format!("/webhook-endpoints/{id}/deliveries/{}/replay", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

async fn private_addresses_are_refused_at_creation_and_at_delivery(db: Db) {
    let mut strict = settings();
    strict.webhooks.allow_private_targets = false;
    let h = Hooks::start_with(db, strict).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[fe80::1]/x",
        "http://224.0.0.1/x",
        "ftp://example.com/x",
    ] {
        let (s, p) =
            h.api(reqwest::Method::POST, "/webhook-endpoints", Some(json!({ "url": url }))).await;
        assert_eq!(s, 422, "{url}: {p}");
        assert_eq!(p["field"], "url", "{p}");
        // A name is refused without telling where it points (no map of internal names).
        if url.contains("localhost") {
            assert!(!p.to_string().contains("127.0.0.1") && !p.to_string().contains("::1"), "{p}");
        }
    }
    // An endpoint made while private targets were allowed (or a name that now resolves to
    // loopback) is refused when it is delivered to, and the receiver hears nothing.
    drop(h);
    let h2 = Hooks::start_with(db, settings()).await;
    let rx = Receiver::start().await;
    let port = rx.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let (by_ip, _) = h2.endpoint(&rx.url, &["order.placed"]).await;
    let (by_name, _) =
        h2.endpoint(&format!("http://localhost:{port}/hook"), &["order.placed"]).await;
    h2.order(15550400000, 1).await;
    let mut strict_app = h2.t.app.clone();
    strict_app.settings.webhooks.allow_private_targets = false;
    Dispatcher::new(strict_app, "strict").run_once().await.unwrap();
    assert!(rx.got().is_empty(), "nothing reached the private address");
    for id in [by_ip, by_name] {
        let list = h2.deliveries(&id).await;
        let last = list[0]["last_error"].as_str().unwrap();
        assert!(last.contains("loopback"), "{last}");
    }
}

async fn two_dispatchers_deliver_each_event_once(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    let (id, _) = h.endpoint(&rx.url, &[]).await;
    h.order(15550500000, 40).await;
    let a = h.dispatcher("a");
    let b = h.dispatcher("b");
    let run = |d: Dispatcher| async move { while d.run_once().await.unwrap() > 0 {} };
    tokio::join!(run(a), run(b));
    let got = rx.got();
    let mut ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(got.len(), 41, "40 numbers reserved and the order placed");
    assert_eq!(ids.len(), 41, "no event twice");
    assert!(h.deliveries(&id).await.iter().all(|d| d["state"] == "delivered"));
}

async fn a_dispatcher_that_dies_holding_deliveries_loses_none(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    h.endpoint(&rx.url, &[]).await;
    h.order(15550600000, 3).await;
    let dead = h.dispatcher("dead");
    let held = dead.lease(100).await.unwrap();
    assert_eq!(held.len(), 4);
    drop(dead);
    let other = h.dispatcher("other");
    assert_eq!(other.run_once().await.unwrap(), 0, "held under the dead one's lease");
    assert!(rx.got().is_empty());
    // Its lease runs out: another dispatcher delivers everything.
    h.t.clock.advance(time::Duration::minutes(5));
    h.drive(&other, || rx.got().len() == 4).await;
}

async fn endpoints_are_managed_through_the_api_and_secrets_rotate_with_an_overlap(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    let (id, old) = h.endpoint(&rx.url, &["order.placed"]).await;
    assert!(old.starts_with("whsec_"), "{old}");
    let (s, list) = h.api(reqwest::Method::GET, "/webhook-endpoints", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["endpoints"][0]["event_types"], json!(["order.placed"]));
    assert!(!list.to_string().contains(&old), "the secret is shown only once");
    let (s, p) = h
        .api(
            reqwest::Method::PUT,
            &format!("/webhook-endpoints/{id}"),
            Some(json!({ "event_types": ["no.such"] })),
        )
        .await;
    assert_eq!((s, &p["field"]), (422, &json!("event_types")), "{p}");
    let (s, r) = h
        .api(
            reqwest::Method::POST,
            &format!("/webhook-endpoints/{id}/rotate-secret"),
            Some(json!({ "overlap_seconds": 3600 })),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let new = r["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    h.order(15550700000, 1).await;
    let d = h.dispatcher("d1");
    h.drive(&d, || rx.got().len() == 1).await;
    let during = rx.got()[0].clone();
    assert_eq!(during.headers["webhook-signature"].split(' ').count(), 2);
    assert!(signed_by(&during, &old) && signed_by(&during, &new), "both sign during the overlap");
    verify_with_the_published_library(&[during], &[&old, &new]).await;
    // After the overlap only the new secret signs.
    h.t.clock.advance(time::Duration::hours(2));
    h.order(15550800000, 1).await;
    h.drive(&d, || rx.got().len() == 2).await;
    let after = rx.got()[1].clone();
    assert!(signed_by(&after, &new) && !signed_by(&after, &old));
    // Read-only tokens read but do not change; deleting removes the endpoint.
    let reader = h.t.token(Scope::Read).await;
    let r = h
        .http
        .delete(format!("{}/api/v1/webhook-endpoints/{id}", h.t.url))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (s, _) = h.api(reqwest::Method::DELETE, &format!("/webhook-endpoints/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = h.api(reqwest::Method::GET, &format!("/webhook-endpoints/{id}"), None).await;
    assert_eq!(s, 404);
    // The OpenAPI document lists every event type under `webhooks`.
    let doc: Value = h
        .http
        .get(format!("{}/api/v1/openapi.json", h.t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for t in domain::webhook::EventType::ALL {
        assert!(doc["webhooks"][t.as_str()]["post"].is_object(), "{t} is missing from webhooks");
    }
    assert!(doc["paths"]["/api/v1/webhook-endpoints"].is_object());
}

async fn operators_manage_endpoints_in_the_portal_and_see_disabled_ones(db: Db) {
    let h = Hooks::start(db).await;
    let rx = Receiver::start().await;
    rx.answer_always(Answer::Status(500));
    let (browser, csrf) = h.t.operator_browser(testkit::ADMIN_EMAIL).await;
    let page = |path: &str| {
        let (browser, url) = (browser.clone(), format!("{}{path}", h.t.url));
        async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let added = browser
        .post(format!("{}/operator/webhooks", h.t.url))
        .form(&[("csrf", csrf.as_str()), ("url", rx.url.as_str()), ("events", "order.placed")])
        .send()
        .await
        .unwrap();
    assert_eq!(added.headers()["cache-control"], "no-store");
    let html = added.text().await.unwrap();
    assert!(html.contains("whsec_"), "the secret is shown once: {html}");
    assert!(!page("/operator/webhooks").await.contains("whsec_"), "and only once");
    let refused = browser
        .post(format!("{}/operator/webhooks", h.t.url))
        .form(&[("csrf", csrf.as_str()), ("url", "gopher://x"), ("events", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    // The receiver keeps failing: the endpoint is disabled and the page says so.
    h.order(15550900000, 1).await;
    let d = h.dispatcher("d1");
    for _ in 0..3 {
        d.run_once().await.unwrap();
        h.t.clock.advance(time::Duration::seconds(11));
    }
    let list = page("/operator/webhooks").await;
    assert!(list.contains("disabled-banner"), "{list}");
    let id = h.t.app.webhook_endpoints().await.unwrap()[0].id;
    let detail = page(&format!("/operator/webhooks/{id}")).await;
    assert!(detail.contains("HTTP 500") && detail.contains("order.placed"), "{detail}");
    let enabled = browser
        .post(format!("{}/operator/webhooks/{id}/toggle", h.t.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status().as_u16(), 303);
    assert!(!page("/operator/webhooks").await.contains("disabled-banner"));
    let metrics = h
        .http
        .get(format!("{}/metrics", h.t.url))
        .bearer_auth(testkit::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("peerex_webhook_endpoints_disabled 0"), "{metrics}");
}

async fn old_history_is_removed_once_every_delivery_of_it_has_ended(db: Db) {
    let h = Hooks::start(db).await;
    let (ok, failing) = (Receiver::start().await, Receiver::start().await);
    failing.answer_always(Answer::Status(500));
    let (all, _) = h.endpoint(&ok.url, &[]).await;
    let (placed, _) = h.endpoint(&failing.url, &["order.placed"]).await;
    h.order(15550700000, 2).await;
    let old: Vec<uuid::Uuid> =
        h.t.app.outbound_events(1_000).await.unwrap().iter().map(|e| e.id).collect();
    assert!(old.len() >= 3, "two numbers changed and the order placed: {old:?}");
    let d = h.dispatcher("d1");
    // Every event reaches the working endpoint; the failing one is disabled with its delivery waiting.
    h.drive(&d, || ok.got().len() == old.len()).await;
    for _ in 0..3 {
        d.run_once().await.unwrap();
        h.t.clock.advance(time::Duration::seconds(11));
    }
    assert_eq!(h.t.app.webhook_backlog().await.unwrap(), (1, 1));

    // Nothing is younger than 30 days yet: nothing goes.
    assert_eq!(h.t.app.prune_webhook_history().await.unwrap(), 0);
    h.t.clock.advance(time::Duration::days(31));
    h.order(15550710000, 1).await;
    let all_events = h.t.app.outbound_events(1_000).await.unwrap();
    let new: Vec<uuid::Uuid> =
        all_events.iter().map(|e| e.id).filter(|id| !old.contains(id)).collect();
    h.drive(&d, || ok.got().len() == old.len() + new.len()).await;

    let removed = h.t.app.prune_webhook_history().await.unwrap();
    assert_eq!(removed as usize, old.len() - 1, "all old events but the one still waiting");
    let left: Vec<(uuid::Uuid, String)> =
        h.t.app
            .outbound_events(1_000)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.id, e.event_type.as_str().to_owned()))
            .collect();
    let old_left: Vec<&(uuid::Uuid, String)> =
        left.iter().filter(|(id, _)| old.contains(id)).collect();
    assert_eq!(old_left.len(), 1, "{left:?}");
    assert_eq!(old_left[0].1, "order.placed");
    assert!(new.iter().all(|id| left.iter().any(|(l, _)| l == id)), "young events stay");
    assert_eq!(
        h.deliveries(&all).await.len(),
        new.len() + 1,
        "the ended deliveries went with their events; the kept event keeps its own"
    );

    // The endpoint works again: its delivery ends, and the last old event goes too.
    failing.answer_always(Answer::Ok);
    let (s, e) = h
        .api(
            reqwest::Method::PUT,
            &format!("/webhook-endpoints/{placed}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    h.drive(&d, || failing.got().len() == 4).await;
    assert_eq!(h.t.app.prune_webhook_history().await.unwrap(), 1);
    assert!(h.deliveries(&placed).await.is_empty());
    assert_eq!(h.deliveries(&all).await.len(), new.len());
    assert_eq!(h.t.app.outbound_events(1_000).await.unwrap().len(), new.len());
}
