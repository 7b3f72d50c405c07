//! The operator portal's customers: create, contract, customer admins; on both databases.

mod operator_support;

use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    customer_is_created_and_a_duplicate_contract_ref_is_named,
    missing_name_is_named_and_nothing_is_created,
    contract_ends_and_is_reactivated,
    customer_admin_is_added_and_bad_ones_are_named,
    read_only_operator_gets_403_and_nothing_changes,
    form_without_csrf_is_403_and_nothing_changes,
    unknown_customer_is_404,
);

async fn customer_is_created_and_a_duplicate_contract_ref_is_named(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, location, _) = post(
        &t,
        &client,
        "/operator/customers",
        &[("csrf", csrf.as_str()), ("name", "Acme Corp"), ("contract_ref", "C-100")],
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id = t.app.customers().await.unwrap()[0].id;
    assert_eq!(location, format!("/operator/customers/{id}"));
    let (status, page) = get(&t, &client, &location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Acme Corp")
            && page.contains("C-100")
            && page.contains(&format!("/operator/numbers?customer={id}")),
        "{page}"
    );

    let (status, _, page) = post(
        &t,
        &client,
        "/operator/customers",
        &[("csrf", csrf.as_str()), ("name", "Acme again"), ("contract_ref", "C-100")],
    )
    .await;
    assert_eq!(status, 409);
    assert!(page.contains("contract_ref: another customer has this contract reference"), "{page}");
    assert!(page.contains("value=\"Acme again\""), "the form keeps what was typed");
    assert_eq!(t.app.customers().await.unwrap().len(), 1);

    let (_, list) = get(&t, &client, "/operator/customers").await;
    assert!(
        list.contains("Acme Corp") && list.contains(&format!("href=\"/operator/customers/{id}\""))
    );
}

async fn missing_name_is_named_and_nothing_is_created(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _, page) = post(
        &t,
        &client,
        "/operator/customers",
        &[("csrf", csrf.as_str()), ("name", "  "), ("contract_ref", "C-1")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("name: is required") && page.contains("aria-invalid"), "{page}");
    assert!(t.app.customers().await.unwrap().is_empty());
}

async fn contract_ends_and_is_reactivated(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let path = format!("/operator/customers/{}", c.id);
    let (_, page) = get(&t, &client, &path).await;
    assert!(page.contains("End contract") && !page.contains("Reactivate"));

    let (status, location, _) = post(
        &t,
        &client,
        &format!("{path}/contract"),
        &[("csrf", csrf.as_str()), ("state", "ended")],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some(path.as_str())));
    let (_, page) = get(&t, &client, &path).await;
    assert!(
        page.contains("contract-ended")
            && page.contains("Reactivate")
            && !page.contains("End contract"),
        "{page}"
    );
    assert_eq!(
        t.app.customer(c.id).await.unwrap().contract_state,
        domain::customer::ContractState::Ended
    );

    post(&t, &client, &format!("{path}/contract"), &[("csrf", csrf.as_str()), ("state", "active")])
        .await;
    assert_eq!(
        t.app.customer(c.id).await.unwrap().contract_state,
        domain::customer::ContractState::Active
    );
    let (status, _, page) = post(
        &t,
        &client,
        &format!("{path}/contract"),
        &[("csrf", csrf.as_str()), ("state", "paused")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("state: must be active or ended"));
}

async fn customer_admin_is_added_and_bad_ones_are_named(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let path = format!("/operator/customers/{}/users", c.id);
    let (status, _, _) = post(
        &t,
        &client,
        &path,
        &[
            ("csrf", csrf.as_str()),
            ("email", "it@acme.example"),
            ("password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let users = t.app.users(Some(c.id)).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, domain::auth::Role::CustomerAdmin);
    let (_, page) = get(&t, &client, &format!("/operator/customers/{}", c.id)).await;
    assert!(page.contains("it@acme.example"));

    let (status, _, page) = post(
        &t,
        &client,
        &path,
        &[("csrf", csrf.as_str()), ("email", "new@acme.example"), ("password", "short")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("password: must have at least 10 characters")
            && page.contains("value=\"new@acme.example\""),
        "{page}"
    );
    let (status, _, page) = post(
        &t,
        &client,
        &path,
        &[
            ("csrf", csrf.as_str()),
            ("email", "it@acme.example"),
            ("password", "another long password"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(page.contains("email: a user with this e-mail already exists"), "{page}");
    assert_eq!(t.app.users(Some(c.id)).await.unwrap().len(), 1);
}

async fn read_only_operator_gets_403_and_nothing_changes(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    let (client, csrf) = t.operator_browser(READER_EMAIL).await;
    let (status, page) = get(&t, &client, &format!("/operator/customers/{}", c.id)).await;
    assert_eq!(status, 200, "read-only operators may look");
    assert!(!page.contains("End contract") && !page.contains("Add admin"));

    let (status, _, page) = post(
        &t,
        &client,
        "/operator/customers",
        &[("csrf", csrf.as_str()), ("name", "Sneaky"), ("contract_ref", "C-2")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(page.contains("read-only"), "{page}");
    let (status, _, _) = post(
        &t,
        &client,
        &format!("/operator/customers/{}/contract", c.id),
        &[("csrf", csrf.as_str()), ("state", "ended")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post(
        &t,
        &client,
        &format!("/operator/customers/{}/users", c.id),
        &[
            ("csrf", csrf.as_str()),
            ("email", "x@acme.example"),
            ("password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(t.app.customers().await.unwrap().len(), 1);
    assert_eq!(
        t.app.customer(c.id).await.unwrap().contract_state,
        domain::customer::ContractState::Active
    );
    assert!(t.app.users(Some(c.id)).await.unwrap().is_empty());
}

async fn form_without_csrf_is_403_and_nothing_changes(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _, _) =
        post(&t, &client, "/operator/customers", &[("name", "Sneaky"), ("contract_ref", "C-2")])
            .await;
    assert_eq!(status, 403);
    let (status, _, _) = post(
        &t,
        &client,
        &format!("/operator/customers/{}/contract", c.id),
        &[("csrf", "forged"), ("state", "ended")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(t.app.customers().await.unwrap().len(), 1);
    assert_eq!(
        t.app.customer(c.id).await.unwrap().contract_state,
        domain::customer::ContractState::Active
    );
}

async fn unknown_customer_is_404(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let unknown = uuid::Uuid::now_v7();
    for path in [format!("/operator/customers/{unknown}"), "/operator/customers/not-an-id".into()] {
        assert_eq!(get(&t, &client, &path).await.0, 404, "{path}");
    }
    let (status, _, _) = post(
        &t,
        &client,
        &format!("/operator/customers/{unknown}/users"),
        &[
            ("csrf", csrf.as_str()),
            ("email", "x@acme.example"),
            ("password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = post(
        &t,
        &client,
        &format!("/operator/customers/{unknown}/contract"),
        &[("csrf", csrf.as_str()), ("state", "ended")],
    )
    .await;
    assert_eq!(status, 404);
}
