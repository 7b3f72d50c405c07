//! `/api/v1/releases` (issue 6) over a real socket with the Zoom simulator, on SQLite and PostgreSQL:
//! start a release by list, CSV or filter, refusals naming each number, listing with age, reading one,
//! withdrawing; the customer's approval then goes through the portal.

mod release_support;

use domain::auth::Scope;
use domain::NumberState;
use release_support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{Db, ZoomApp};

on_both!(releases_are_started_listed_read_and_withdrawn_through_the_api);

async fn call(
    t: &ZoomApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", t.platform.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn releases_are_started_listed_read_and_withdrawn_through_the_api(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 6).await;
    let (token, _) = t.app().create_token("oss", Scope::Write, "test").await.unwrap();
    let post = reqwest::Method::POST;

    // By list: started, all waiting; calls still route for release_pending numbers.
    let (status, r) = call(&t, &token, post.clone(), "/releases", Some(json!({ "customer_id": acme, "reason": "contract ends", "numbers": ["+15550100000", "+15550100001"] }))).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["waiting"].as_i64(), r["reason"].as_str()), (Some(2), Some("contract ends")));
    assert_eq!(
        r["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["state"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["waiting", "waiting"]
    );
    assert_eq!(r["started_by"], "token:oss");
    let first = r["id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&t, "+15550100001").await.0, NumberState::ReleasePending);

    // By CSV with a header, and by filter.
    let (status, r) = call(&t, &token, post.clone(), "/releases", Some(json!({ "customer_id": acme, "reason": "csv", "csv": "name,e164\nsales,+15550100002\n" }))).await;
    assert_eq!((status, r["waiting"].as_i64()), (StatusCode::CREATED, Some(1)), "{r}");
    let (status, r) = call(
        &t,
        &token,
        post.clone(),
        "/releases",
        Some(json!({ "customer_id": acme, "reason": "filter", "prefix": "+1555010000" })),
    )
    .await;
    assert_eq!(
        (status, r["waiting"].as_i64()),
        (StatusCode::CREATED, Some(3)),
        "the three still active: {r}"
    );

    // Refusals name the field and each number at fault; nothing changes.
    let globex = t.app().create_customer("Globex", "G-1").await.unwrap();
    let cases = [
        (
            json!({ "customer_id": acme, "reason": "x", "numbers": ["+15550100000", "+15550100049", "+15559999999", "nope"] }),
            "numbers",
            "row 4",
        ),
        (
            json!({ "customer_id": acme, "reason": "x", "numbers": ["+15550100000", "+15550100049", "+15559999999"] }),
            "numbers",
            "+15550100000 is release_pending",
        ),
        (
            json!({ "customer_id": globex.id, "reason": "x", "numbers": ["+15550100000"] }),
            "numbers",
            "not this customer's number",
        ),
        (
            json!({ "customer_id": acme, "reason": " ", "numbers": ["+15550100000"] }),
            "reason",
            "say why",
        ),
        (
            json!({ "customer_id": acme, "reason": "x" }),
            "numbers",
            "give numbers, csv, or a filter",
        ),
        (
            json!({ "customer_id": acme, "reason": "x", "numbers": [], "prefix": "+1" }),
            "numbers",
            "only one of",
        ),
        (json!({ "customer_id": acme, "reason": "x", "csv": "owner\nbob\n" }), "csv", "no e164"),
        (
            json!({ "customer_id": acme, "reason": "x", "prefix": "+1555" }),
            "numbers",
            "no number to release",
        ),
        (
            json!({ "customer_id": acme, "reason": "x", "prefix": "1555" }),
            "prefix",
            "not an E.164 prefix",
        ),
        (
            json!({ "customer_id": "0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "reason": "x", "numbers": ["+15550100000"] }),
            "customer_id",
            "no such customer",
        ),
    ];
    for (body, field, text) in cases {
        let (status, p) = call(&t, &token, post.clone(), "/releases", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap_or_default().contains(text), "{body}: {p}");
    }
    let (_, p) = call(&t, &token, post.clone(), "/releases", Some(json!({ "customer_id": acme, "reason": "x", "numbers": ["+15550100000", "+15550100049", "+15559999999"] }))).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("+15550100049 is not this customer's number")
            && detail.contains("+15559999999 is not in the inventory"),
        "{detail}"
    );

    // Listed with their age, open ones by default.
    let (status, list) =
        call(&t, &token, reqwest::Method::GET, &format!("/releases?customer_id={acme}"), None)
            .await;
    assert_eq!(status, StatusCode::OK);
    let releases = list["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 3);
    assert!(releases.iter().all(|r| r["age_seconds"].as_i64().unwrap() >= 0));
    let (status, p) = call(&t, &token, reqwest::Method::GET, "/releases?state=some", None).await;
    assert_eq!((status, p["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("state")));

    // The customer approves one number of the first release; Zoom removes it.
    release_numbers(&t, &portal, &["+15550100000"]).await;
    t.run_pending_jobs().await;
    let (status, r) =
        call(&t, &token, reqwest::Method::GET, &format!("/releases/{first}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((r["released"].as_i64(), r["waiting"].as_i64()), (Some(1), Some(1)), "{r}");

    // Withdrawing takes back what still waits; the released number stays released.
    let (status, w) =
        call(&t, &token, post.clone(), &format!("/releases/{first}/withdraw"), None).await;
    assert_eq!((status, w["withdrawn"].as_u64()), (StatusCode::OK, Some(1)), "{w}");
    assert_eq!(
        (w["release"]["released"].as_i64(), w["release"]["withdrawn"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(state_of(&t, "+15550100001").await, (NumberState::Active, None));
    assert_eq!(state_of(&t, "+15550100000").await.0, NumberState::Aging);
    let (_, list) = call(&t, &token, reqwest::Method::GET, "/releases", None).await;
    assert_eq!(list["releases"].as_array().unwrap().len(), 2, "the first is no longer open");
    let (_, list) = call(&t, &token, reqwest::Method::GET, "/releases?state=all", None).await;
    assert_eq!(list["releases"].as_array().unwrap().len(), 3);

    for path in ["/releases/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "/releases/nope"] {
        let (status, _) = call(&t, &token, reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let (status, _) = call(&t, &token, post.clone(), &format!("{path}/withdraw"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}
