//! Onboarding from the Zoom Marketplace, end to end over real sockets: the platform and the Zoom
//! simulator wired to each other, driven like a browser would, on SQLite and PostgreSQL.

use domain::auth::Role;
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::{Actor, CustomerId, NumberState};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use testkit::sim::demo;
use testkit::{hidden_value, on_both, Db, ZoomApp, PASSWORD};

on_both!(
    install_sign_in_link_push_assign_order_more_remove_and_reinstall,
    a_zoom_account_linked_twice_is_refused_and_operators_see_it,
    ordering_without_a_link_is_refused_with_the_reason,
    forged_stale_replayed_unknown_and_malformed_webhooks_change_nothing,
    an_install_refused_for_another_customer_keeps_the_first_customer_working,
    a_refused_refresh_token_shows_where_people_look_and_a_new_install_recovers,
);

const ACME_ADMIN: &str = "admin@acme.example";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A customer with its admin, 20 numbers in inventory and a pending order of `ordered`.
async fn customer(t: &ZoomApp, name: &str, admin: &str, first: u64, ordered: u32) -> CustomerId {
    let app = t.app();
    let c = app.create_customer(name, &format!("C-{name}")).await.unwrap();
    t.bind_demo_trunk(c.id).await;
    app.create_user(admin, PASSWORD, Role::CustomerAdmin, Some(c.id)).await.unwrap();
    let by = Actor::System("test".into());
    app.import_range(
        &format!("+{first}-+{}", first + 19),
        &NumberAttrs::default(),
        &by,
        false,
        &|_| {},
    )
    .await
    .unwrap();
    let pick = OrderPick {
        count: ordered,
        prefix: Some(format!("+{first}").chars().take(9).collect()),
        ..Default::default()
    };
    app.create_order(c.id, pick, &[], &by).await.unwrap();
    c.id
}

/// Signs in to (simulated) Zoom.
async fn zoom_sign_in(b: &reqwest::Client, t: &ZoomApp, email: &str, password: &str) {
    let r = b
        .post(format!("{}/signin", t.zoom.url))
        .form(&[("email", email), ("password", password), ("next", "/profile")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "Zoom sign-in: {}", r.status());
}

/// Add → Allow for the carrier's app, as the Marketplace does (no state); returns where Zoom sends
/// the browser: the platform's callback with a code.
async fn zoom_allow(b: &reqwest::Client, t: &ZoomApp) -> String {
    let redirect = format!("{}/zoom/oauth/callback", t.platform.url);
    let r = b
        .get(format!("{}/oauth/authorize", t.zoom.url))
        .query(&[
            ("response_type", "code"),
            ("client_id", demo::CLIENT_ID),
            ("redirect_uri", &redirect),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "consent page");
    let consent = hidden_value(&r.text().await.unwrap(), "consent").expect("consent form");
    let r = b
        .post(format!("{}/oauth/authorize", t.zoom.url))
        .form(&[("consent", consent.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let to = location(&r);
    assert!(to.starts_with(&redirect) && to.contains("code=") && !to.contains("state="), "{to}");
    to
}

async fn portal_sign_in(b: &reqwest::Client, t: &ZoomApp, email: &str) -> reqwest::Response {
    let page = b
        .get(format!("{}/portal/login", t.platform.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&page, "csrf").unwrap();
    b.post(format!("{}/portal/login", t.platform.url))
        .form(&[("email", email), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

async fn get_text(b: &reqwest::Client, url: String) -> String {
    let r = b.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

async fn states(t: &ZoomApp, c: CustomerId) -> Vec<NumberState> {
    let q = domain::search::NumberQuery { customer_id: Some(c), limit: 500, ..Default::default() };
    t.app().search_numbers(&q).await.unwrap().into_iter().map(|n| n.state).collect()
}

async fn zoom_numbers(t: &ZoomApp, account: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_sim/numbers?account_id={account}", t.zoom.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["numbers"].as_array().cloned().unwrap_or_default()
}

/// The whole install journey for `admin`, from Zoom's Allow to the portal: the callback, the
/// sign-in, the confirmation page and, when it asks, the confirmation. Returns the last answer:
/// the confirmation's (303 to the portal) or the page's refusal.
async fn install(b: &reqwest::Client, t: &ZoomApp, admin: &str) -> reqwest::Response {
    let callback = zoom_allow(b, t).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal/install", "the code is not in the URL");
    let r = b.get(format!("{}/portal/install", t.platform.url)).send().await.unwrap();
    assert_eq!(location(&r), "/portal/login", "not signed in: to the sign-in");
    let login = get_text(b, format!("{}/portal/login", t.platform.url)).await;
    assert!(login.contains("Please sign in so we can apply your new numbers."), "{login}");
    let r = portal_sign_in(b, t, admin).await;
    assert_eq!(location(&r), "/portal/install", "signed in: on to the confirmation");
    confirm_if_asked(b, t).await
}

/// Opens the confirmation page; confirms when it asks, else returns its answer (a refusal).
async fn confirm_if_asked(b: &reqwest::Client, t: &ZoomApp) -> reqwest::Response {
    let r = b.get(format!("{}/portal/install", t.platform.url)).send().await.unwrap();
    if r.status() != StatusCode::OK {
        return r;
    }
    testkit::confirm_install(b, &t.platform.url).await
}

async fn install_sign_in_link_push_assign_order_more_remove_and_reinstall(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let acme = customer(&t, "Acme Corp", ACME_ADMIN, 15550100000, 5).await;
    let b = browser();
    zoom_sign_in(&b, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;

    // Install, sign in, link: the order is applied.
    let r = install(&b, &t, ACME_ADMIN).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/portal".to_owned()));
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert!(
        home.contains(&format!(
            "Linked to Zoom account <span class=\"mono\">{}</span>",
            demo::ACME_ACCOUNT_ID
        )),
        "{home}"
    );
    assert_eq!(states(&t, acme).await, vec![NumberState::Provisioning; 5]);
    let order = t.app().orders(Some(acme), 10).await.unwrap()[0].id;
    let page = get_text(&b, format!("{}/portal/orders/{order}", t.platform.url)).await;
    assert!(
        page.contains("Being pushed to Zoom") && page.contains("hx-trigger=\"every 2s\""),
        "refreshes itself while work runs: {page}"
    );

    // Pushed: active here, Unassigned in Zoom on the customer's trunk.
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 5]);
    let in_zoom = zoom_numbers(&t, demo::ACME_ACCOUNT_ID).await;
    assert_eq!(in_zoom.len(), 5);
    assert!(
        in_zoom.iter().all(|n| n["sip_trunk_name"] == demo::SIP_TRUNK && n["assignee"].is_null()),
        "{in_zoom:?}"
    );
    let page = get_text(&b, format!("{}/portal/orders/{order}", t.platform.url)).await;
    assert_eq!(page.matches("Pushed: in your Zoom account").count(), 5);
    assert!(!page.contains("hx-trigger"), "stops refreshing when done");
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert_eq!(home.matches("Unassigned").count(), 5);

    // Assigned in Zoom: peerex learns it on its next poll.
    let r = reqwest::Client::new()
        .put(format!("{}/_sim/numbers/%2B15550100000/assignment", t.zoom.url))
        .json(&serde_json::json!({ "user": demo::ACME_USER_EMAIL }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "assign in Zoom: {}", r.status());
    assert!(t.store().poll_now(acme, t.app().now()).await.unwrap());
    t.run_pending_jobs().await;
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert_eq!(
        (home.matches("Assigned to a user").count(), home.matches("Unassigned").count()),
        (1, 4)
    );

    // Ordering more with a link: reserved and pushed at once.
    let csrf = hidden_value(&home, "csrf").unwrap();
    let r = b
        .post(format!("{}/portal/orders", t.platform.url))
        .form(&[("count", "3"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/portal/orders/"));
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 8]);
    assert_eq!(zoom_numbers(&t, demo::ACME_ACCOUNT_ID).await.len(), 8);

    // The admin removes the app in Zoom: the signed webhook suspends the numbers.
    let r = b
        .post(format!("{}/marketplace/manage/{}/remove", t.zoom.url, demo::CLIENT_ID))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "remove in Zoom: {}",
        r.status()
    );
    let mut waited = 0;
    while states(&t, acme).await != vec![NumberState::Suspended; 8] {
        waited += 1;
        assert!(
            waited < 100,
            "numbers not suspended after the webhook: {:?}",
            states(&t, acme).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert!(
        home.contains("The app was removed from your Zoom account")
            && home.contains("Your contract and your numbers are still yours"),
        "{home}"
    );
    let r = b
        .post(format!("{}/portal/orders", t.platform.url))
        .form(&[("count", "1"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("the app was removed from Zoom account"));
    let link = t.app().zoom_link(acme).await.unwrap().unwrap();
    assert!(t.store().zoom_tokens(link.id).await.unwrap().is_none(), "tokens dropped");

    // Installed again while signed in: confirmed, numbers go through provisioning to active.
    let callback = zoom_allow(&b, &t).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/portal/install".to_owned()));
    assert_eq!(states(&t, acme).await, vec![NumberState::Suspended; 8], "not before confirming");
    let r = confirm_if_asked(&b, &t).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/portal".to_owned()));
    assert_eq!(states(&t, acme).await, vec![NumberState::Provisioning; 8]);
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 8]);
    assert_eq!(
        zoom_numbers(&t, demo::ACME_ACCOUNT_ID).await.len(),
        8,
        "pushed again, converged, no duplicates"
    );
    let n = t
        .store()
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550100000").unwrap())
        .await
        .unwrap()
        .unwrap();
    let trail: Vec<_> =
        t.app().number_detail(n.id).await.unwrap().1.into_iter().map(|e| e.to).collect();
    use NumberState::*;
    assert_eq!(
        trail,
        vec![Available, Reserved, Provisioning, Active, Suspended, Provisioning, Active]
    );
    // The carrier's systems were told of each step.
    testkit::assert_told(
        t.app(),
        &[
            "zoom_link.created",
            "order.placed",
            "order.applied",
            "number.state_changed",
            "zoom_link.removed",
        ],
    )
    .await;
}

async fn a_zoom_account_linked_twice_is_refused_and_operators_see_it(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let acme = customer(&t, "Acme Corp", ACME_ADMIN, 15550100000, 2).await;
    let globex = customer(&t, "Globex", "admin@globex.example", 15550200000, 2).await;
    let b = browser();
    zoom_sign_in(&b, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    let r = install(&b, &t, ACME_ADMIN).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The same Zoom account installed by another customer's admin.
    let other = browser();
    zoom_sign_in(&other, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    let r = install(&other, &t, "admin@globex.example").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Your Zoom account could not be linked")
            && page.contains("already linked to another customer"),
        "{page}"
    );
    assert!(t.app().zoom_link(globex).await.unwrap().is_none());
    assert_eq!(states(&t, globex).await, vec![NumberState::Reserved; 2], "nothing changed");

    // Acme (linked) installs the app from another Zoom account.
    zoom_sign_in(&b, &t, "ops@demo-carrier.example", "ops-zoom-password").await;
    let callback = zoom_allow(&b, &t).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/portal/install");
    let r = confirm_if_asked(&b, &t).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("already linked to another Zoom account"));
    assert_eq!(
        t.app().zoom_link(acme).await.unwrap().unwrap().zoom_account_id,
        demo::ACME_ACCOUNT_ID
    );

    // Operators see both refusals on the customers' pages.
    let (op, _) = t.platform.operator_browser(testkit::ADMIN_EMAIL).await;
    let page = get_text(&op, format!("{}/operator/customers/{globex}", t.platform.url)).await;
    assert!(
        page.contains("refused") && page.contains("already linked to another customer"),
        "{page}"
    );
    let page = get_text(&op, format!("{}/operator/customers/{acme}", t.platform.url)).await;
    assert!(
        page.contains(demo::ACME_ACCOUNT_ID)
            && page.contains("already linked to another Zoom account"),
        "{page}"
    );
}

async fn ordering_without_a_link_is_refused_with_the_reason(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let c = customer(&t, "Initech", "admin@initech.example", 15550300000, 1).await;
    let b = browser();
    assert_eq!(
        portal_sign_in(&b, &t, "admin@initech.example").await.status(),
        StatusCode::SEE_OTHER
    );
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert!(home.contains("Your Zoom account is not linked yet"), "{home}");
    let csrf = hidden_value(&home, "csrf").unwrap();
    let r = b
        .post(format!("{}/portal/orders", t.platform.url))
        .form(&[("count", "2"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("your Zoom account is not linked"));
    assert_eq!(t.app().orders(Some(c), 10).await.unwrap().len(), 1, "no new order");
    // Without the session's CSRF token the form is refused.
    let r = b
        .post(format!("{}/portal/orders", t.platform.url))
        .form(&[("count", "2"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn forged_stale_replayed_unknown_and_malformed_webhooks_change_nothing(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let acme = customer(&t, "Acme Corp", ACME_ADMIN, 15550100000, 2).await;
    let b = browser();
    zoom_sign_in(&b, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    install(&b, &t, ACME_ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 2]);

    let url = format!("{}/zoom/webhook", t.platform.url);
    let http = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let removed_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let deauth = |account: &str| {
        serde_json::json!({"event": "app_deauthorized", "event_ts": now * 1000, "payload": {"account_id": account, "user_id": "u", "client_id": demo::CLIENT_ID, "deauthorization_time": removed_at}})
            .to_string()
    };
    let send = |body: String, ts: i64, secret: &'static str| {
        let sig = zoom::webhook::signature(secret, &ts.to_string(), body.as_bytes());
        http.post(&url)
            .header("x-zm-request-timestamp", ts.to_string())
            .header("x-zm-signature", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let real = deauth(demo::ACME_ACCOUNT_ID);
    assert_eq!(
        send(real.clone(), now, "not-the-secret").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "forged"
    );
    assert_eq!(
        send(real.clone(), now - 3600, demo::SECRET_TOKEN).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "stale"
    );
    assert_eq!(
        send(deauth("someoneElsesAccount"), now, demo::SECRET_TOKEN).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "unknown account"
    );
    assert_eq!(
        send("{\"event\": 42}".into(), now, demo::SECRET_TOKEN).await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "malformed"
    );
    let unsigned = http.post(&url).body(real.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED, "no signature");
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 2], "nothing changed");

    // URL validation is answered with the HMAC of the plain token.
    let v = serde_json::json!({"event": "endpoint.url_validation", "payload": {"plainToken": "abc123"}}).to_string();
    let answer: Value = send(v, now, demo::SECRET_TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(answer, zoom::webhook::url_validation_response(demo::SECRET_TOKEN, "abc123"));

    // The genuine one acts once; the same delivery again is a replay.
    let ts = now - 1;
    assert_eq!(send(real.clone(), ts, demo::SECRET_TOKEN).await.unwrap().status(), StatusCode::OK);
    assert_eq!(states(&t, acme).await, vec![NumberState::Suspended; 2]);
    assert_eq!(
        send(real, ts, demo::SECRET_TOKEN).await.unwrap().status(),
        StatusCode::CONFLICT,
        "replayed"
    );
}

/// Orders `count` more numbers for the customer (with its live link, they are pushed).
async fn order_more(t: &ZoomApp, c: CustomerId, count: u32) {
    let by = Actor::System("test".into());
    t.app().order_numbers(c, OrderPick { count, ..Default::default() }, &[], &by).await.unwrap();
}

async fn an_install_refused_for_another_customer_keeps_the_first_customer_working(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let acme = customer(&t, "Acme Corp", ACME_ADMIN, 15550100000, 2).await;
    customer(&t, "Globex", "admin@globex.example", 15550200000, 2).await;
    let b = browser();
    zoom_sign_in(&b, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    install(&b, &t, ACME_ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 2]);

    // Acme's Zoom admin adds the app again, this time for Globex: Zoom authorizes it again, which
    // revokes the tokens Acme's link holds; Globex is refused.
    let other = browser();
    zoom_sign_in(&other, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    assert_eq!(install(&other, &t, "admin@globex.example").await.status(), StatusCode::CONFLICT);

    // Acme carries on: the new tokens are the same account's, kept for Acme's link.
    order_more(&t, acme, 2).await;
    let runs = t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 4], "{runs:?}");
    assert_eq!(zoom_numbers(&t, demo::ACME_ACCOUNT_ID).await.len(), 4);
    let link = t.app().zoom_link(acme).await.unwrap().unwrap();
    assert!(link.reauth_needed_at.is_none(), "{link:?}");
    let kinds: Vec<String> =
        t.app().link_events(acme, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"reauthorized".to_owned()), "{kinds:?}");
}

async fn a_refused_refresh_token_shows_where_people_look_and_a_new_install_recovers(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let acme = customer(&t, "Acme Corp", ACME_ADMIN, 15550100000, 2).await;
    let b = browser();
    zoom_sign_in(&b, &t, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await;
    install(&b, &t, ACME_ADMIN).await;
    t.run_pending_jobs().await;

    // Zoom stops accepting the link's authorization (revoked: every token of the grant is dead).
    let link = t.app().zoom_link(acme).await.unwrap().unwrap();
    let sealed = t.store().zoom_tokens(link.id).await.unwrap().unwrap();
    let refresh =
        t.app().zoom.as_ref().unwrap().keys.open("refresh", &sealed.refresh_token).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/revoke", t.zoom.url))
        .basic_auth(demo::CLIENT_ID, Some(demo::CLIENT_SECRET))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    order_more(&t, acme, 2).await;
    t.run_pending_jobs().await;
    let link = t.app().zoom_link(acme).await.unwrap().unwrap();
    assert!(link.reauth_needed_at.is_some(), "the link looks healthy: {link:?}");

    // Operators see it on the customer's page and on Jobs; the customer in the portal, with what to do.
    let (op, _) = t.platform.operator_browser(testkit::ADMIN_EMAIL).await;
    let page = get_text(&op, format!("{}/operator/customers/{acme}", t.platform.url)).await;
    assert!(
        page.contains("needs re-authorization") && page.contains("add the app again"),
        "{page}"
    );
    let page = get_text(&op, format!("{}/operator/jobs?state=pending", t.platform.url)).await;
    assert!(page.contains("id=\"reauth\"") && page.contains(demo::ACME_ACCOUNT_ID), "{page}");
    assert!(
        page.contains("Zoom no longer accepts the authorization"),
        "the waiting job says why: {page}"
    );
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert!(home.contains("Zoom no longer accepts") && home.contains("Add → Allow"), "{home}");
    assert_eq!(states(&t, acme).await[2..], [NumberState::Provisioning; 2]);

    // Acme's admin adds the app again: the same account, the same customer, nothing to confirm;
    // the waiting push goes through without anyone retrying it.
    let callback = zoom_allow(&b, &t).await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/portal/install");
    let r = b.get(format!("{}/portal/install", t.platform.url)).send().await.unwrap();
    assert_eq!(location(&r), "/portal", "already this customer's link");
    t.run_pending_jobs().await;
    assert_eq!(states(&t, acme).await, vec![NumberState::Active; 4]);
    assert!(t.app().zoom_link(acme).await.unwrap().unwrap().reauth_needed_at.is_none());
    let home = get_text(&b, format!("{}/portal", t.platform.url)).await;
    assert!(home.contains("Linked to Zoom account"), "{home}");
}
