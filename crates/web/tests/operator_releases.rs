//! The operator portal's Releases pages (issue 6), with the Zoom simulator, on SQLite and PostgreSQL:
//! start a release by list, CSV file or filter, refusals shown on the form naming the numbers, pending
//! releases listed with their age, one release with its numbers, withdraw; read-only operators look only.

mod release_support;

use domain::auth::Role;
use domain::NumberState;
use release_support::*;
use reqwest::{Client, StatusCode};
use testkit::{hidden_value, Db, ZoomApp, PASSWORD};

on_both!(operators_start_follow_and_withdraw_releases);

async fn start(
    t: &ZoomApp,
    ops: &Client,
    fields: &[(&str, &str)],
    file: Option<&str>,
) -> (StatusCode, String, String) {
    let page = get_text(ops, format!("{}/operator/releases", t.platform.url)).await;
    let csrf = hidden_value(&page, "csrf").unwrap();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let (content_type, body) = multipart(&all, file);
    let r = ops
        .post(format!("{}/operator/releases", t.platform.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let location =
        r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (r.status(), location, r.text().await.unwrap())
}

async fn operators_start_follow_and_withdraw_releases(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 6).await;
    let ops = operator(&t).await;
    let acme_s = acme.to_string();
    let page = get_text(&ops, format!("{}/operator/releases", t.platform.url)).await;
    assert!(page.contains("No releases waiting") && page.contains("Start a release"), "{page}");

    // By list: to the release's page, with its numbers waiting for the customer.
    let (status, location, _) = start(
        &t,
        &ops,
        &[
            ("customer", &acme_s),
            ("reason", "contract ends"),
            ("numbers", "+15550100000\n+15550100001\n"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/operator/releases/"), "{location}");
    let detail = get_text(&ops, format!("{}{location}", t.platform.url)).await;
    assert!(
        detail.contains("Release for Acme Corp")
            && detail.contains("contract ends")
            && detail.contains("2 waiting for the customer"),
        "{detail}"
    );
    assert!(detail.contains("by operator:admin@") && detail.contains("Withdraw what still waits"));
    assert_eq!(state_of(&t, "+15550100001").await.0, NumberState::ReleasePending);

    // By CSV file, and by filter.
    let (status, _, body) = start(
        &t,
        &ops,
        &[("customer", &acme_s), ("reason", "csv")],
        Some("e164,note\n+15550100002,x\n"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (status, _, body) = start(
        &t,
        &ops,
        &[("customer", &acme_s), ("reason", "filter"), ("prefix", "+1555010000")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        states(&t, acme).await.iter().filter(|(_, s, _)| *s == NumberState::ReleasePending).count(),
        6
    );

    // Refusals on the form, naming the numbers; nothing changes.
    let (status, _, body) = start(
        &t,
        &ops,
        &[("customer", &acme_s), ("reason", "again"), ("numbers", "+15550100000\n+15550100049")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("+15550100000 is release_pending; only active numbers can be released")
            && body.contains("+15550100049 is not this customer&#39;s number"),
        "{body}"
    );
    let (status, _, body) = start(&t, &ops, &[("customer", &acme_s), ("reason", "x")], None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("numbers: list the numbers, upload a CSV, or give a filter"), "{body}");
    let (status, _, body) = start(
        &t,
        &ops,
        &[("customer", &acme_s), ("reason", ""), ("numbers", "+15550100000")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("reason: say why"), "{body}");

    // Pending releases with their age.
    let page = get_text(&ops, format!("{}/operator/releases", t.platform.url)).await;
    assert_eq!(page.matches("<td class=\"age\">").count(), 3, "{page}");
    assert!(page.contains("0 minutes") || page.contains("1 minute"), "{page}");

    // The customer approves one number of the first release; then the operator withdraws the rest.
    release_numbers(&t, &portal, &["+15550100000"]).await;
    t.run_pending_jobs().await;
    let detail = get_text(&ops, format!("{}{location}", t.platform.url)).await;
    assert!(
        detail.contains("1 waiting for the customer") && detail.contains("1 released"),
        "{detail}"
    );
    let csrf = hidden_value(&detail, "csrf").unwrap();
    let r = ops
        .post(format!("{}{location}/withdraw", t.platform.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state_of(&t, "+15550100001").await, (NumberState::Active, None));
    assert_eq!(state_of(&t, "+15550100000").await.0, NumberState::Aging);
    let detail = get_text(&ops, format!("{}{location}", t.platform.url)).await;
    assert!(
        detail.contains("1 withdrawn") && !detail.contains("Withdraw what still waits"),
        "{detail}"
    );
    let page = get_text(&ops, format!("{}/operator/releases", t.platform.url)).await;
    assert_eq!(page.matches("<td class=\"age\">").count(), 2, "the first one no longer waits");
    let page = get_text(&ops, format!("{}/operator/releases?state=all", t.platform.url)).await;
    assert_eq!(page.matches("<td class=\"age\">").count(), 3);

    // A read-only operator looks but cannot start or withdraw.
    t.app().create_user("reader@carrier.example", PASSWORD, Role::ReadOnly, None).await.ok();
    let reader = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = get_text(&reader, format!("{}/operator/login", t.platform.url)).await;
    let lc = hidden_value(&login, "csrf").unwrap();
    reader
        .post(format!("{}/operator/login", t.platform.url))
        .form(&[
            ("email", testkit::READER_EMAIL),
            ("password", PASSWORD),
            ("csrf", lc.as_str()),
            ("next", "/operator"),
        ])
        .send()
        .await
        .unwrap();
    let page = get_text(&reader, format!("{}/operator/releases", t.platform.url)).await;
    assert!(page.contains("read-only") && !page.contains("Start release</button>"), "{page}");
    let csrf = hidden_value(&page, "csrf").unwrap();
    let (content_type, body) = multipart(
        &[("csrf", &csrf), ("customer", &acme_s), ("reason", "x"), ("numbers", "+15550100001")],
        None,
    );
    let r = reader
        .post(format!("{}/operator/releases", t.platform.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_of(&t, "+15550100001").await.0, NumberState::Active);
    let r = ops
        .get(format!("{}/operator/releases/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", t.platform.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
