//! Signing in to the operator portal, on both databases.

use testkit::{hidden_value, Db, TestApp, ADMIN_EMAIL, PASSWORD};

testkit::on_both!(current_thread:
    operator_signs_in_and_out,
    wrong_password_is_refused_and_repeated_failures_lock,
    a_session_ends_when_it_has_not_been_used_for_its_lifetime,
    form_without_csrf_changes_nothing
);

async fn operator_signs_in_and_out(db: Db) {
    let t = TestApp::spawn(db).await;
    let client = t.browser();
    // Not signed in: sent to the sign-in page, with the way back.
    let r = client.get(format!("{}/operator", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/operator/login?next=/operator");

    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let home = client.get(format!("{}/operator", t.url)).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let body = home.text().await.unwrap();
    assert!(body.contains("Number inventory") && body.contains(ADMIN_EMAIL));

    let r = client
        .post(format!("{}/operator/logout", t.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client.get(format!("{}/operator", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed out: back to the sign-in page");
}

async fn wrong_password_is_refused_and_repeated_failures_lock(db: Db) {
    let t = TestApp::spawn(db).await;
    let client = t.browser();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let url = t.url.clone();
        async move {
            let page = client
                .get(format!("{url}/operator/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = hidden_value(&page, "csrf").unwrap();
            let r = client
                .post(format!("{url}/operator/login"))
                .form(&[("email", ADMIN_EMAIL), ("password", password), ("csrf", &csrf)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = attempt("not the password").await;
    assert_eq!(status, 401);
    assert!(body.contains("wrong e-mail or password"));
    for _ in 0..4 {
        attempt("still wrong").await;
    }
    // Locked now, even with the right password.
    let (status, body) = attempt(PASSWORD).await;
    assert_eq!(status, 429);
    assert!(body.contains("Too many failed sign-ins"), "{body}");
    // The first block lasts a minute on the platform's clock: still locked well inside it...
    t.clock.advance(time::Duration::seconds(50));
    assert_eq!(attempt(PASSWORD).await.0, 429);
    // ... and once it is over, the right password signs in.
    t.clock.advance(time::Duration::seconds(11));
    assert_eq!(attempt(PASSWORD).await.0, 303);
}

async fn a_session_ends_when_it_has_not_been_used_for_its_lifetime(db: Db) {
    let t = TestApp::spawn(db).await;
    let ttl = t.app.settings.session_ttl;
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let home = || client.get(format!("{}/operator", t.url)).send();
    t.clock.advance(ttl - time::Duration::minutes(1));
    assert_eq!(home().await.unwrap().status(), 200, "a minute before its end");
    t.clock.advance(ttl + time::Duration::minutes(1));
    let r = home().await.unwrap();
    assert_eq!(r.status(), 303, "ended: back to the sign-in page");
    assert_eq!(r.headers()["location"], "/operator/login?next=/operator");
}

async fn form_without_csrf_changes_nothing(db: Db) {
    let t = TestApp::spawn(db).await;
    let client = t.browser();
    let r = client
        .post(format!("{}/operator/login", t.url))
        .form(&[("email", ADMIN_EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .headers()
        .get("set-cookie")
        .is_none_or(|c| !c.to_str().unwrap().contains("peerex_session=")));
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let r = client
        .post(format!("{}/operator/logout", t.url))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        client.get(format!("{}/operator", t.url)).send().await.unwrap().status(),
        200,
        "still signed in"
    );
}
