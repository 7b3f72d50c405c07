//! A customer's number limit: the most numbers it may hold at once, set by operators in the API and
//! the operator portal; an order past it is refused naming the limit, in the API and in the customer
//! portal. (Concurrent orders are raced in the store's conformance tests.) On both databases.

mod api_support;

use api_support::Api;
use domain::auth::Role;
use domain::number::NumberAttrs;
use domain::Actor;
use serde_json::json;
use testkit::{hidden_value, Db, ZoomApp, PASSWORD};

on_both!(
    operators_set_a_limit_in_the_api_and_orders_past_it_are_refused_naming_it,
    the_operator_portal_sets_the_limit_and_the_customer_portal_says_it_when_ordering,
);

async fn operators_set_a_limit_in_the_api_and_orders_past_it_are_refused_naming_it(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100019", &[]).await;
    let acme = api.customer("C-ACME").await;
    let limit_path = format!("/customers/{acme}/number_limit");
    let limit = |v: serde_json::Value| api.post(&limit_path, v);
    let order = |count: u32| api.post("/orders", json!({ "customer_id": acme, "count": count }));

    let c = limit(json!({ "number_limit": 3 })).await.ok(200);
    assert_eq!(c["number_limit"], 3);
    assert_eq!(api.get(&format!("/customers/{acme}")).await.ok(200)["number_limit"], 3);

    let refused = order(5).await.problem(409);
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("at most 3 numbers may be held at once; 0 are held"), "{refused}");
    order(3).await.ok(201);
    let refused = order(1).await.problem(409);
    assert!(refused["detail"].as_str().unwrap().contains("3 are held"), "{refused}");

    for bad in [json!(-1), json!(10_000_001), json!("ten")] {
        let r = limit(json!({ "number_limit": bad })).await;
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.text);
        assert!(r.text.contains("number_limit"), "{bad}: the field is named: {}", r.text);
    }
    assert_eq!(api.get(&format!("/customers/{acme}")).await.ok(200)["number_limit"], 3);
    limit(json!({ "number_limit": 3 })).await.ok(200);
    let unknown = api
        .post(
            "/customers/01a23bcd-0000-7000-8000-000000000000/number_limit",
            json!({ "number_limit": 1 }),
        )
        .await;
    unknown.problem(404);

    // Lifted: orders are limited by the stock only.
    assert!(limit(json!({ "number_limit": null })).await.ok(200)["number_limit"].is_null());
    order(4).await.ok(201);
}

async fn the_operator_portal_sets_the_limit_and_the_customer_portal_says_it_when_ordering(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let app = t.app();
    let acme = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    t.bind_demo_trunk(acme.id).await;
    app.create_user("admin@acme.example", PASSWORD, Role::CustomerAdmin, Some(acme.id))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100019", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    let portal = t.link_acme("admin@acme.example").await;

    // The operator sets 2 on the customer's page; nonsense is refused naming the field.
    let (op, csrf) = t.platform.operator_browser(testkit::ADMIN_EMAIL).await;
    let page_url = format!("{}/operator/customers/{}", t.platform.url, acme.id);
    let set = |value: &str| {
        op.post(format!("{page_url}/number-limit"))
            .form(&[("csrf", csrf.as_str()), ("number_limit", value)])
            .send()
    };
    let r = set("lots").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("is not a whole number") && page.contains("aria-invalid"), "{page}");
    assert_eq!(app.customer(acme.id).await.unwrap().number_limit, None);
    let r = set("2").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let page = op.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("holds 0 of at most 2 numbers"), "{page}");
    // A read-only operator cannot change it.
    let (reader, reader_csrf) = t.platform.operator_browser(testkit::READER_EMAIL).await;
    let r = reader
        .post(format!("{page_url}/number-limit"))
        .form(&[("csrf", reader_csrf.as_str()), ("number_limit", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(app.customer(acme.id).await.unwrap().number_limit, Some(2));

    // The customer's admin orders 3 in the portal: refused with the limit named; 2 fit.
    let home = portal.get(format!("{}/portal", t.platform.url)).send().await.unwrap();
    let csrf = hidden_value(&home.text().await.unwrap(), "csrf").unwrap();
    let order = |count: &str| {
        portal
            .post(format!("{}/portal/orders", t.platform.url))
            .form(&[("csrf", csrf.as_str()), ("count", count)])
            .send()
    };
    let page = order("3").await.unwrap().text().await.unwrap();
    assert!(page.contains("number limit: at most 2 numbers may be held at once"), "{page}");
    let r = order("2").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    t.run_pending_jobs().await;
    assert_eq!(app.numbers_held(acme.id).await.unwrap(), 2);
    let page = op.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("holds 2 of at most 2 numbers"), "{page}");
}
