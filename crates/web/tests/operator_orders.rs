//! The operator portal's orders: place, look at, cancel; refusals on the form. On both databases.

mod operator_support;

use domain::NumberState;
use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    order_is_placed_shown_and_cancelled,
    order_for_more_than_available_is_refused_and_reserves_nothing,
    order_of_listed_numbers_reserves_exactly_those,
    bad_order_input_is_named_on_the_form,
    unknown_order_is_404,
    read_only_or_csrf_less_order_is_403_and_reserves_nothing,
);

async fn setup(db: Db) -> (TestApp, domain::customer::Customer) {
    let t = TestApp::spawn(db).await;
    seed_range(&t, "+15550100000-+15550100019", &["nyc"]).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    (t, c)
}

async fn order_is_placed_shown_and_cancelled(db: Db) {
    let (t, c) = setup(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (_, form) = get(&t, &client, &format!("/operator/orders?customer={}", c.id)).await;
    assert!(
        form.contains(&format!("<option value=\"{}\" selected>", c.id)),
        "the customer's link preselects it"
    );

    let cid = c.id.to_string();
    let (status, location, _) = post(
        &t,
        &client,
        "/operator/orders",
        &[
            ("csrf", csrf.as_str()),
            ("customer", cid.as_str()),
            ("count", "5"),
            ("prefix", "+1555010"),
            ("tag", "NYC"),
            ("region", ""),
            ("numbers", ""),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.starts_with("/operator/orders/"));
    assert_eq!(count(&t, NumberState::Reserved).await, 5);

    let (status, page) = get(&t, &client, &location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("pending until the customer&#39;s Zoom account is linked")
            || page.contains("pending until the customer's Zoom account is linked"),
        "{page}"
    );
    assert_eq!(number_rows(&page), 5);
    assert!(
        page.contains("+15550100000")
            && page.contains("+15550100004")
            && page.contains("Cancel order")
    );
    let (_, list) = get(&t, &client, "/operator/orders").await;
    assert!(list.contains(&location) && list.contains("Acme"));
    let (_, customer_page) = get(&t, &client, &format!("/operator/customers/{}", c.id)).await;
    assert!(customer_page.contains(&location));

    let (status, back, _) =
        post(&t, &client, &format!("{location}/cancel"), &[("csrf", csrf.as_str())]).await;
    assert_eq!((status, back.as_deref()), (303, Some(location.as_str())));
    assert_eq!(count(&t, NumberState::Reserved).await, 0);
    assert_eq!(count(&t, NumberState::Available).await, 20);
    let (_, page) = get(&t, &client, &location).await;
    assert!(page.contains("order-cancelled") && !page.contains("Cancel order"), "{page}");

    let (status, _, page) =
        post(&t, &client, &format!("{location}/cancel"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 409, "a cancelled order cannot be cancelled again");
    assert!(page.contains("only a pending order can be cancelled"), "{page}");
}

async fn order_for_more_than_available_is_refused_and_reserves_nothing(db: Db) {
    let (t, c) = setup(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let cid = c.id.to_string();
    let (status, _, page) = post(
        &t,
        &client,
        "/operator/orders",
        &[
            ("csrf", csrf.as_str()),
            ("customer", cid.as_str()),
            ("count", "50"),
            ("prefix", "+1555"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        page.contains("only 20 matching numbers are available; the order asks for 50"),
        "{page}"
    );
    assert!(page.contains("value=\"50\""), "the form keeps what was typed");
    assert_eq!(count(&t, NumberState::Reserved).await, 0);
    assert!(t.app.orders(None, 10).await.unwrap().is_empty());
}

async fn order_of_listed_numbers_reserves_exactly_those(db: Db) {
    let (t, c) = setup(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let cid = c.id.to_string();
    let (status, location, _) = post(
        &t,
        &client,
        "/operator/orders",
        &[
            ("csrf", csrf.as_str()),
            ("customer", cid.as_str()),
            ("count", ""),
            ("numbers", "+15550100007\r\n\r\n +15550100011 \r\n"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = get(&t, &client, &location.unwrap()).await;
    assert_eq!(number_rows(&page), 2);
    assert!(page.contains("+15550100007") && page.contains("+15550100011"));

    // One of these is taken now: the whole order is refused.
    let (status, _, page) = post(
        &t,
        &client,
        "/operator/orders",
        &[
            ("csrf", csrf.as_str()),
            ("customer", cid.as_str()),
            ("numbers", "+15550100001\n+15550100007"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(page.contains("+15550100007 is not available"), "{page}");
    assert_eq!(count(&t, NumberState::Reserved).await, 2);
}

async fn bad_order_input_is_named_on_the_form(db: Db) {
    let (t, c) = setup(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let cid = c.id.to_string();
    let unknown = uuid::Uuid::now_v7().to_string();
    for (form, message) in [
        (vec![("customer", ""), ("count", "1")], "customer: choose a customer"),
        (vec![("customer", unknown.as_str()), ("count", "1")], "customer: no such customer"),
        (vec![("customer", cid.as_str()), ("count", "")], "count: give how many numbers"),
        (vec![("customer", cid.as_str()), ("count", "many")], "count: must be a whole number"),
        (vec![("customer", cid.as_str()), ("count", "0")], "count: an order takes 1 to"),
        (
            vec![("customer", cid.as_str()), ("count", "1"), ("prefix", "x1")],
            "prefix: a prefix is + and up to 15 digits",
        ),
        (
            vec![("customer", cid.as_str()), ("numbers", "5550100000")],
            "numbers: &#34;5550100000&#34; is not E.164",
        ),
    ] {
        let mut form = form;
        form.push(("csrf", csrf.as_str()));
        let (status, _, page) = post(&t, &client, "/operator/orders", &form).await;
        assert_eq!(status, 422, "{message}");
        assert!(page.contains(message), "{message}\n{page}");
    }
    assert_eq!(count(&t, NumberState::Reserved).await, 0);
}

async fn unknown_order_is_404(db: Db) {
    let (t, _) = setup(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(get(&t, &client, &format!("/operator/orders/{unknown}")).await.0, 404);
    assert_eq!(get(&t, &client, "/operator/orders/123").await.0, 404);
    assert_eq!(
        post(
            &t,
            &client,
            &format!("/operator/orders/{unknown}/cancel"),
            &[("csrf", csrf.as_str())]
        )
        .await
        .0,
        404
    );
}

async fn read_only_or_csrf_less_order_is_403_and_reserves_nothing(db: Db) {
    let (t, c) = setup(db).await;
    let cid = c.id.to_string();
    let (reader, reader_csrf) = t.operator_browser(READER_EMAIL).await;
    let (status, _, _) = post(
        &t,
        &reader,
        "/operator/orders",
        &[("csrf", reader_csrf.as_str()), ("customer", cid.as_str()), ("count", "1")],
    )
    .await;
    assert_eq!(status, 403);
    let (admin, _) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _, _) =
        post(&t, &admin, "/operator/orders", &[("customer", cid.as_str()), ("count", "1")]).await;
    assert_eq!(status, 403);
    assert_eq!(count(&t, NumberState::Reserved).await, 0);

    // Nor may they cancel one.
    let (order, _) = t
        .app
        .create_order(
            c.id,
            domain::customer::OrderPick { count: 1, ..Default::default() },
            &[],
            &domain::Actor::System("test".into()),
        )
        .await
        .unwrap();
    let (status, _, _) = post(
        &t,
        &reader,
        &format!("/operator/orders/{}/cancel", order.id),
        &[("csrf", reader_csrf.as_str())],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) =
        post(&t, &admin, &format!("/operator/orders/{}/cancel", order.id), &[("csrf", "")]).await;
    assert_eq!(status, 403);
    assert_eq!(count(&t, NumberState::Reserved).await, 1);
}
