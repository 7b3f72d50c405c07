//! Customers, contracts and customer admins over the JSON API, on both databases.

mod api_support;

use api_support::Api;
use serde_json::json;
use testkit::Db;

on_both!(
    customer_is_created_listed_and_read,
    duplicate_contract_ref_is_a_conflict_naming_it,
    customer_fields_are_checked,
    unknown_and_garbage_customer_ids_are_not_found,
    contract_is_ended_and_made_active_again,
    customer_admin_is_created_without_echoing_the_password,
);

async fn customer_is_created_listed_and_read(db: Db) {
    let api = Api::spawn(db).await;
    let r = api.post("/customers", json!({"name": "  Example Corp ", "contract_ref": "C-1"})).await;
    let created = r.ok(201);
    let id = created["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/customers/{id}"));
    assert_eq!(created["name"], "Example Corp");
    assert_eq!(created["contract_ref"], "C-1");
    assert_eq!(created["contract_state"], "active");

    assert_eq!(api.get(&format!("/customers/{id}")).await.ok(200), created);
    api.customer("C-2").await;
    let list = api.get("/customers").await.ok(200);
    let refs: Vec<&str> = list["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contract_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 2);
    assert!(refs.contains(&"C-1") && refs.contains(&"C-2"));
}

async fn duplicate_contract_ref_is_a_conflict_naming_it(db: Db) {
    let api = Api::spawn(db).await;
    api.customer("C-1").await;
    let p = api
        .post("/customers", json!({"name": "Someone else", "contract_ref": "C-1"}))
        .await
        .problem(409);
    assert_eq!(p["field"], "contract_ref");
    assert!(p["detail"].as_str().unwrap().contains("contract reference"), "{p}");
    assert_eq!(api.get("/customers").await.ok(200)["customers"].as_array().unwrap().len(), 1);
}

async fn customer_fields_are_checked(db: Db) {
    let api = Api::spawn(db).await;
    for (body, field) in [
        (json!({"name": " ", "contract_ref": "C-1"}), "name"),
        (json!({"name": "x".repeat(201), "contract_ref": "C-1"}), "name"),
        (json!({"name": "Example", "contract_ref": "C\u{0}1"}), "contract_ref"),
        (json!({"name": "Example"}), "contract_ref"),
        (json!({"name": ["Example"], "contract_ref": "C-1"}), "name"),
    ] {
        let p = api.post("/customers", body.clone()).await.problem(422);
        assert_eq!(p["field"], field, "{body} -> {p}");
    }
}

async fn unknown_and_garbage_customer_ids_are_not_found(db: Db) {
    let api = Api::spawn(db).await;
    for id in ["0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "not-an-id", "1%20OR%201%3D1"] {
        api.get(&format!("/customers/{id}")).await.problem(404);
        api.post(&format!("/customers/{id}/contract"), json!({"state": "ended"}))
            .await
            .problem(404);
        api.post(
            &format!("/customers/{id}/admins"),
            json!({"email": "it@example.com", "password": "long enough password"}),
        )
        .await
        .problem(404);
    }
}

async fn contract_is_ended_and_made_active_again(db: Db) {
    let api = Api::spawn(db).await;
    let id = api.customer("C-1").await;
    let c = api.post(&format!("/customers/{id}/contract"), json!({"state": "ended"})).await.ok(200);
    assert_eq!(c["contract_state"], "ended");
    assert_eq!(api.get(&format!("/customers/{id}")).await.ok(200)["contract_state"], "ended");
    let c =
        api.post(&format!("/customers/{id}/contract"), json!({"state": "active"})).await.ok(200);
    assert_eq!(c["contract_state"], "active");
    let p = api
        .post(&format!("/customers/{id}/contract"), json!({"state": "paused"}))
        .await
        .problem(422);
    assert_eq!(p["field"], "state");
}

async fn customer_admin_is_created_without_echoing_the_password(db: Db) {
    let api = Api::spawn(db).await;
    let id = api.customer("C-1").await;
    let password = "a long secret passphrase";
    let r = api
        .post(
            &format!("/customers/{id}/admins"),
            json!({"email": "it@example.com", "password": password}),
        )
        .await;
    let admin = r.ok(201);
    assert!(!r.text.contains(password) && !r.text.contains("password"), "{}", r.text);
    assert_eq!(admin["email"], "it@example.com");
    assert_eq!(admin["role"], "customer_admin");
    assert_eq!(admin["customer_id"], id.as_str());
    let users = api.t.app.users(Some(id.parse().unwrap())).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_ne!(users[0].password_hash, password);

    let p = api
        .post(
            &format!("/customers/{id}/admins"),
            json!({"email": "it@example.com", "password": password}),
        )
        .await
        .problem(409);
    assert_eq!(p["field"], "email");
    let p = api
        .post(
            &format!("/customers/{id}/admins"),
            json!({"email": "other@example.com", "password": "short"}),
        )
        .await
        .problem(422);
    assert_eq!(p["field"], "password");
    assert!(!p.to_string().contains("short\""), "{p}");
    let p = api
        .post(
            &format!("/customers/{id}/admins"),
            json!({"email": "not an address", "password": password}),
        )
        .await
        .problem(422);
    assert_eq!(p["field"], "email");
}
