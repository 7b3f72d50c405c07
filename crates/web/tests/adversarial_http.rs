//! The attacker's probes of the HTTP surface, kept so that what was found stays fixed: slow and
//! half-open connections, a flood of invented methods at `/metrics`, forged sign-in CSRF pairs,
//! raced password guesses, a stranger locking a real user out, a forged OAuth callback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::{on_both, Db, TestApp, METRICS_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Another address of this machine: the whole of 127.0.0.0/8 is loopback on Linux, so a client
/// bound to 127.0.0.2 reaches the test server as a different source than 127.0.0.1.
const STRANGER: &str = "127.0.0.2";

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 400 before closing is fine: keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

// ---- the listener ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_half_open_connections_are_shed_and_others_still_get_answers() {
    let limits = web::listener::Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections_per_source: 20,
        ..Default::default()
    };
    let t = TestApp::spawn_limited(Db::Sqlite, limits).await;
    // 200 connections from one address, each with half a request head, then nothing.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = connect_from(STRANGER, t.addr).await;
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: peerex\r\n").await;
        slow.push(s);
    }
    // The listener keeps answering everyone else, quickly.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let started = Instant::now();
        let r = client.get(format!("{}/healthz", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());
    }
    // Beyond 20 from one address, connections are closed at once...
    let mut shed_at_once = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_millis(20)).await {
            shed_at_once += 1;
        }
    }
    assert!(shed_at_once >= 180, "only {shed_at_once} of 200 closed at once");
    // ...and the 20 let in are closed when their head has not come within the timeout.
    let started = Instant::now();
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a slow connection stayed open");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    // An idle connection that never sends a byte goes the same way.
    let mut idle = connect_from(STRANGER, t.addr).await;
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "an idle connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_ends_the_request() {
    let limits =
        web::listener::Limits { body_idle_timeout: Duration::from_secs(1), ..Default::default() };
    let t = TestApp::spawn_limited(Db::Sqlite, limits).await;
    let mut s = connect_from(STRANGER, t.addr).await;
    s.write_all(
        b"POST /operator/login HTTP/1.1\r\nHost: peerex\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nemail=a",
    )
    .await
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await, "the request stayed open");
}

// ---- /metrics -------------------------------------------------------------------------------

async fn metrics(t: &TestApp) -> String {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", t.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn invented_methods_and_paths_do_not_grow_metrics() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let path = if i % 2 == 0 { "/healthz".to_owned() } else { format!("/no/such/{i}") };
        client.request(method, format!("{}{path}", t.url)).send().await.unwrap();
    }
    let text = metrics(&t).await;
    let series: Vec<&str> =
        text.lines().filter(|l| l.starts_with("peerex_http_requests_total{")).collect();
    assert!(series.len() <= 10, "{} series:\n{}", series.len(), series.join("\n"));
    assert!(series.iter().all(|l| !l.contains("M1X") && !l.contains("/no/such")), "{text}");
    assert!(series.iter().any(|l| l.contains("method=\"other\"")), "{text}");
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
}

#[tokio::test]
async fn metrics_answer_only_the_configured_token() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", t.url);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth("guess").send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth(METRICS_TOKEN).send().await.unwrap().status(), 200);
}

// ---- signing in -----------------------------------------------------------------------------

on_both!(
    forty_raced_guesses_are_evaluated_at_most_five_times,
    a_stranger_cannot_lock_a_real_user_out,
    unknown_and_known_emails_get_the_same_answers,
    a_forged_oauth_callback_links_nothing_without_the_admins_confirmation,
);

/// A browser on `from` (an address of this machine), keeping cookies, not following redirects.
fn browser_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A browser on `from` holding the sign-in form of the operator portal: (browser, its csrf).
async fn at_sign_in(t: &TestApp, from: &str) -> (reqwest::Client, String) {
    let b = browser_from(from);
    let page = b.get(format!("{}/operator/login", t.url)).send().await.unwrap();
    let csrf = testkit::hidden_value(&page.text().await.unwrap(), "csrf").unwrap();
    (b, csrf)
}

/// Submits the sign-in form: (status, page without its one-time csrf token).
async fn submit(
    t: &TestApp,
    (b, csrf): &(reqwest::Client, String),
    email: &str,
    password: &str,
) -> (u16, String) {
    let r = b
        .post(format!("{}/operator/login", t.url))
        .form(&[("email", email), ("password", password), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    // What differs between two answers that say the same: the new form's token, the e-mail typed.
    let body = match testkit::hidden_value(&body, "csrf") {
        Some(token) => body.replace(&token, "CSRF"),
        None => body,
    };
    (status, body.replace(email, "EMAIL"))
}

async fn forty_raced_guesses_are_evaluated_at_most_five_times(db: Db) {
    let t = TestApp::spawn(db).await;
    let mut forms = Vec::new();
    for _ in 0..40 {
        forms.push(at_sign_in(&t, "127.0.0.1").await);
    }
    let answers = futures_util::future::join_all(
        forms.iter().map(|f| submit(&t, f, testkit::ADMIN_EMAIL, "a wrong guess")),
    )
    .await;
    let evaluated = answers.iter().filter(|(s, _)| *s == 401).count();
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert!(evaluated <= 5, "{evaluated} guesses were checked: {:?}", statuses(&answers));
    assert_eq!(evaluated + refused, 40, "{:?}", statuses(&answers));
    // The limit is reached: a second burst with the right password in it gets nothing checked.
    let mut forms = Vec::new();
    for _ in 0..20 {
        forms.push(at_sign_in(&t, "127.0.0.1").await);
    }
    let passwords: Vec<&str> =
        (0..20).map(|i| if i == 13 { testkit::PASSWORD } else { "another guess" }).collect();
    let answers = futures_util::future::join_all(
        forms.iter().zip(&passwords).map(|(f, p)| submit(&t, f, testkit::ADMIN_EMAIL, p)),
    )
    .await;
    assert!(answers.iter().all(|(s, _)| *s == 429), "{:?}", statuses(&answers));
    let (_, body) = &answers[13];
    assert!(body.contains("Too many failed sign-ins"), "{body}");
}

fn statuses(answers: &[(u16, String)]) -> Vec<u16> {
    answers.iter().map(|(s, _)| *s).collect()
}

async fn a_stranger_cannot_lock_a_real_user_out(db: Db) {
    let t = TestApp::spawn(db).await;
    // A stranger tries 30 passwords, one after another, then 30 more at once.
    for _ in 0..30 {
        let form = at_sign_in(&t, STRANGER).await;
        let (status, _) = submit(&t, &form, testkit::ADMIN_EMAIL, "a stranger's guess").await;
        assert!(status == 401 || status == 429, "{status}");
    }
    let mut forms = Vec::new();
    for _ in 0..30 {
        forms.push(at_sign_in(&t, STRANGER).await);
    }
    futures_util::future::join_all(
        forms.iter().map(|f| submit(&t, f, testkit::ADMIN_EMAIL, "a stranger's guess")),
    )
    .await;
    // The stranger is stopped...
    let (status, _) =
        submit(&t, &at_sign_in(&t, STRANGER).await, testkit::ADMIN_EMAIL, testkit::PASSWORD).await;
    assert_eq!(status, 429, "the stranger is refused even with the right password");
    // ...and the real user, elsewhere, signs in.
    let started = Instant::now();
    let (status, body) =
        submit(&t, &at_sign_in(&t, "127.0.0.1").await, testkit::ADMIN_EMAIL, testkit::PASSWORD)
            .await;
    assert_eq!(status, 303, "the real user is kept out: {body}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

async fn unknown_and_known_emails_get_the_same_answers(db: Db) {
    let t = TestApp::spawn(db).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let (mut known_time, mut unknown_time) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let started = Instant::now();
        known.push(
            submit(&t, &at_sign_in(&t, "127.0.0.3").await, testkit::ADMIN_EMAIL, "wrong password")
                .await,
        );
        known_time.push(started.elapsed());
        let started = Instant::now();
        unknown.push(
            submit(
                &t,
                &at_sign_in(&t, "127.0.0.4").await,
                "nobody@carrier.example",
                "wrong password",
            )
            .await,
        );
        unknown_time.push(started.elapsed());
    }
    for (i, (k, u)) in known.iter().zip(&unknown).enumerate() {
        assert_eq!(k, u, "attempt {} differs for a known and an unknown e-mail", i + 1);
    }
    known_time.sort();
    unknown_time.sort();
    let (k, u) = (known_time[4].as_secs_f64(), unknown_time[4].as_secs_f64());
    assert!(k / u < 2.5 && u / k < 2.5, "median time known {k:.3}s, unknown {u:.3}s");
}

#[tokio::test]
async fn a_sign_in_csrf_pair_made_up_by_anyone_is_refused() {
    let t = TestApp::spawn(Db::Sqlite).await;
    // The double-submit check only compared the cookie with the field: anyone who could plant a
    // cookie (a sibling subdomain, a man in the middle on plain HTTP) could submit for the browser.
    for portal in ["operator", "portal"] {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/{portal}/login", t.url))
            .header("cookie", "peerex_login_csrf=made-up-by-the-attacker")
            .form(&[
                ("email", testkit::ADMIN_EMAIL),
                ("password", testkit::PASSWORD),
                ("csrf", "made-up-by-the-attacker"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{portal}: a made-up pair was accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_do_not_hold_up_other_requests() {
    let t = TestApp::spawn(Db::Sqlite).await;
    // 60 sign-ins with wrong passwords from 60 addresses (no throttle stops them before the hash).
    let mut forms = Vec::new();
    for i in 0..60 {
        forms.push(at_sign_in(&t, &format!("127.0.1.{}", i + 1)).await);
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let (url, done) = (t.url.clone(), done.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut worst = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let r = client.get(format!("{url}/healthz")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                worst = worst.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            worst
        })
    };
    let t = &t;
    let answers = futures_util::future::join_all(forms.iter().enumerate().map(|(i, f)| {
        let email = format!("user{i}@carrier.example");
        async move { submit(t, f, &email, "not the password").await.0 }
    }))
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.await.unwrap();
    assert!(answers.iter().all(|s| [401, 429, 503].contains(s)), "{answers:?}");
    let checked = answers.iter().filter(|s| **s == 401).count();
    assert!(checked >= 50, "only {checked} passwords were checked: {answers:?}");
    assert!(
        worst < Duration::from_millis(300),
        "/healthz took {worst:?} while passwords were checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beyond_what_can_wait_are_answered_busy_at_once() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let mut forms = Vec::new();
    for i in 0..150 {
        forms.push(at_sign_in(&t, &format!("127.0.2.{}", i + 1)).await);
    }
    let t = &t;
    let answers = futures_util::future::join_all(forms.iter().enumerate().map(|(i, f)| {
        let email = format!("user{i}@carrier.example");
        async move {
            let started = Instant::now();
            let status = submit(t, f, &email, "not the password").await.0;
            (status, started.elapsed())
        }
    }))
    .await;
    let busy: Vec<Duration> = answers.iter().filter(|(s, _)| *s == 503).map(|(_, d)| *d).collect();
    let checked = answers.iter().filter(|(s, _)| *s == 401).count();
    assert!(busy.len() >= 50, "{} busy, {checked} checked", busy.len());
    assert!(checked >= 50, "{} busy, {checked} checked", busy.len());
    let slowest_busy = busy.iter().max().copied().unwrap_or_default();
    let slowest_checked = answers.iter().filter(|(s, _)| *s == 401).map(|(_, d)| *d).max().unwrap();
    assert!(
        slowest_busy < slowest_checked / 2,
        "busy answers took up to {slowest_busy:?}, checks up to {slowest_checked:?}"
    );
}

// ---- linking a Zoom account -----------------------------------------------------------------

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Signs in to (simulated) Zoom, adds the carrier's app and allows it, as the Marketplace does (no
/// `state`), and keeps the URL Zoom sends the browser to instead of following it.
async fn authorize_in_zoom(t: &testkit::ZoomApp, email: &str, password: &str) -> String {
    use testkit::sim::demo;
    let b = browser_from("127.0.0.1");
    let r = b
        .post(format!("{}/signin", t.zoom.url))
        .form(&[("email", email), ("password", password), ("next", "/profile")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "Zoom sign-in: {}", r.status());
    let redirect = format!("{}/zoom/oauth/callback", t.platform.url);
    let page = b
        .get(format!("{}/oauth/authorize", t.zoom.url))
        .query(&[
            ("response_type", "code"),
            ("client_id", demo::CLIENT_ID),
            ("redirect_uri", &redirect),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = testkit::hidden_value(&page, "consent").expect("consent form");
    let r = b
        .post(format!("{}/oauth/authorize", t.zoom.url))
        .form(&[("consent", consent.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert!(to.starts_with(&redirect) && to.contains("code="), "{to}");
    to
}

async fn a_forged_oauth_callback_links_nothing_without_the_admins_confirmation(db: Db) {
    use domain::NumberState;
    use testkit::sim::demo;
    let t = testkit::ZoomApp::spawn(db).await;
    let app = t.app();
    let acme = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    app.create_user(
        "admin@acme.example",
        testkit::PASSWORD,
        domain::auth::Role::CustomerAdmin,
        Some(acme.id),
    )
    .await
    .unwrap();
    let by = domain::Actor::System("test".into());
    app.import_range("+15550100000-+15550100009", &Default::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(
        acme.id,
        domain::customer::OrderPick { count: 3, ..Default::default() },
        &[],
        &by,
    )
    .await
    .unwrap();

    // The attacker authorizes the app in a Zoom account of their own and keeps the callback URL.
    let forged = authorize_in_zoom(&t, "ops@demo-carrier.example", "ops-zoom-password").await;

    // Acme's admin, signed in to the portal, is made to open it.
    let victim = browser_from("127.0.0.1");
    let page = victim.get(format!("{}/portal/login", t.platform.url)).send().await.unwrap();
    let csrf = testkit::hidden_value(&page.text().await.unwrap(), "csrf").unwrap();
    let r = victim
        .post(format!("{}/portal/login", t.platform.url))
        .form(&[
            ("email", "admin@acme.example"),
            ("password", testkit::PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/portal");
    let r = victim.get(&forged).send().await.unwrap();
    assert_eq!(location(&r), "/portal/install", "the callback only leads to the confirmation");
    let linked = app.zoom_link(acme.id).await.unwrap();
    assert!(linked.is_none(), "linked by opening a URL: {linked:?}");

    // The confirmation page names the Zoom account it would link, as Zoom named it.
    let r = victim.get(format!("{}/portal/install", t.platform.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    for shown in [demo::CARRIER_ACCOUNT_ID, "ops@demo-carrier.example", "Acme Corp"] {
        assert!(page.contains(shown), "the confirmation does not show {shown}: {page}");
    }

    // Another site posting the confirmation for the admin's browser lacks the session's token.
    let r = victim
        .post(format!("{}/portal/install", t.platform.url))
        .form(&[("account", demo::CARRIER_ACCOUNT_ID), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(app.zoom_link(acme.id).await.unwrap().is_none());

    // The admin does not recognise the account and says no: nothing was linked or pushed.
    let csrf = testkit::hidden_value(&page, "csrf").unwrap();
    let r = victim
        .post(format!("{}/portal/install/cancel", t.platform.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/portal");
    assert_eq!(
        victim.get(format!("{}/portal/install", t.platform.url)).send().await.unwrap().status(),
        404
    );
    assert!(app.zoom_link(acme.id).await.unwrap().is_none());
    t.run_pending_jobs().await;
    let q =
        domain::search::NumberQuery { customer_id: Some(acme.id), limit: 10, ..Default::default() };
    let states: Vec<_> =
        app.search_numbers(&q).await.unwrap().into_iter().map(|n| n.state).collect();
    assert_eq!(states, vec![NumberState::Reserved; 3]);
    let pushed: serde_json::Value = reqwest::get(format!(
        "{}/_sim/numbers?account_id={}",
        t.zoom.url,
        demo::CARRIER_ACCOUNT_ID
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(pushed["numbers"].as_array().map_or(0, Vec::len), 0, "{pushed}");
}
