//! The requests on the wire, checked against what REFERENCE.md §1 and §3 document, with a scripted
//! server on a real socket that records each request and answers from a list.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zoom::{Client, Config, Outcome, ZoomError};

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<(u16, Value)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn then(&self, status: u16, body: Value) -> &Self {
        self.answers.lock().expect("lock").push_back((status, body));
        self
    }
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn scripted() -> (Client, Script) {
    let script = Script::default();
    let s = script.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                s.seen.lock().expect("lock").push(Seen { method, uri, headers, body });
                let answer = s.answers.lock().expect("lock").pop_front();
                match answer {
                    Some((status, Value::Null)) => {
                        StatusCode::from_u16(status).expect("status").into_response()
                    }
                    Some((status, body)) => {
                        (StatusCode::from_u16(status).expect("status"), axum::Json(body))
                            .into_response()
                    }
                    None => (StatusCode::IM_A_TEAPOT, "script exhausted").into_response(),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::new(Config {
        oauth_base: format!("http://{addr}").parse().expect("url"),
        api_base: format!("http://{addr}/v2").parse().expect("url"),
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        redirect_uri: "http://127.0.0.1:8080/zoom/oauth/callback".parse().expect("url"),
        timeout: Duration::from_secs(5),
    })
    .expect("client");
    (client, script)
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn token_answer() -> Value {
    json!({ "access_token": "at", "token_type": "bearer", "refresh_token": "rt", "expires_in": 3599, "scope": "a b", "api_url": "https://api.zoom.us" })
}

#[tokio::test]
async fn token_calls_use_basic_auth_and_the_documented_form_fields() {
    let (client, script) = scripted().await;
    script
        .then(200, token_answer())
        .then(200, token_answer())
        .then(200, json!({ "status": "success" }));
    let (_, verifier) = client.authorize_url("st");
    let verifier_text = verifier.secret().to_owned();
    let tokens = client.exchange_code("the-code", Some(verifier)).await.expect("exchange");
    assert_eq!(tokens.scopes, vec!["a", "b"]);
    client.refresh("old-rt").await.expect("refresh");
    client.revoke("at").await.expect("revoke");

    let r = script.requests();
    let basic = "Basic Y2lkOmNzZWNyZXQ="; // base64("cid:csecret")
    for (i, path) in [(0, "/oauth/token"), (1, "/oauth/token"), (2, "/oauth/revoke")] {
        assert_eq!((r[i].method.as_str(), r[i].uri.path()), ("POST", path));
        assert_eq!(r[i].headers["authorization"], basic);
        assert!(
            !String::from_utf8_lossy(&r[i].body).contains("csecret"),
            "the secret goes in the header only"
        );
    }
    let f = form(&r[0].body);
    let field =
        |f: &[(String, String)], k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(field(&f, "grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(field(&f, "code").as_deref(), Some("the-code"));
    assert_eq!(
        field(&f, "redirect_uri").as_deref(),
        Some("http://127.0.0.1:8080/zoom/oauth/callback")
    );
    assert_eq!(field(&f, "code_verifier"), Some(verifier_text));
    let f = form(&r[1].body);
    assert_eq!(
        (field(&f, "grant_type").as_deref(), field(&f, "refresh_token").as_deref()),
        (Some("refresh_token"), Some("old-rt"))
    );
    assert_eq!(field(&form(&r[2].body), "token").as_deref(), Some("at"));
}

#[tokio::test]
async fn number_calls_are_shaped_as_the_number_management_api_documents() {
    let (client, script) = scripted().await;
    script
        .then(201, Value::Null)
        .then(204, Value::Null)
        .then(200, Value::Null)
        .then(200, json!({ "next_page_token": "", "numbers": [] }));
    let numbers = vec!["+12065550000".to_owned(), "+12065550001".to_owned()];
    client.add_peering_numbers("tok", "trunk-a", &numbers).await.expect("add");
    let update = zoom::NumberUpdate {
        phone_number: numbers[0].clone(),
        status: Some(false),
        ..Default::default()
    };
    client.update_peering_numbers("tok", &[update]).await.expect("update");
    let removed = client.remove_peering_numbers("tok", &numbers).await.expect("remove");
    assert!(removed.iter().all(|r| r.outcome == Outcome::Done));
    let page = client.list_peering_numbers("tok", None).await.expect("list");
    assert_eq!(page.next_page_token, None, "an empty token is the last page");

    let r = script.requests();
    assert!(r.iter().all(|s| s.uri.path() == "/v2/number_management/peering_numbers"
        && s.headers["authorization"] == "Bearer tok"));
    assert_eq!(r[0].method, Method::POST);
    let body: Value = serde_json::from_slice(&r[0].body).expect("json");
    assert_eq!(
        body,
        json!({ "allocated_product": "ZOOM_PHONE", "phone_numbers": [
            { "phone_number": "+12065550000", "sip_trunk_name": "trunk-a", "status": true },
            { "phone_number": "+12065550001", "sip_trunk_name": "trunk-a", "status": true },
        ]})
    );
    assert_eq!(r[1].method, Method::PATCH);
    assert_eq!(
        serde_json::from_slice::<Value>(&r[1].body).expect("json"),
        json!({ "phone_numbers": [{ "phone_number": "+12065550000", "status": false }] })
    );
    assert_eq!(r[2].method, Method::DELETE);
    assert_eq!(
        r[2].uri.query(),
        Some("phone_numbers=%2B12065550000&phone_numbers=%2B12065550001"),
        "repeated, with + as %2B"
    );
    assert_eq!(r[3].uri.query(), Some("page_size=300"));
}

#[tokio::test]
async fn listing_everything_starts_over_once_when_a_page_token_expires() {
    let (client, script) = scripted().await;
    let expired = json!({ "code": 300, "message": "The next page token is invalid or expired." });
    script
        .then(200, json!({ "next_page_token": "t1", "numbers": [{ "phone_number": "+12065550000", "assigned": true }] }))
        .then(400, expired.clone())
        .then(200, json!({ "next_page_token": "t2", "numbers": [{ "phone_number": "+12065550000", "assigned": false }] }))
        .then(200, json!({ "next_page_token": "", "numbers": [{ "phone_number": "+12065550001", "assigned": false }] }));
    let all = client.list_all_peering_numbers("tok").await.expect("list all");
    let got: Vec<(&str, bool)> =
        all.iter().map(|n| (n.phone_number.as_str(), n.assigned)).collect();
    assert_eq!(
        got,
        vec![("+12065550000", false), ("+12065550001", false)],
        "the first pass is dropped, not mixed in"
    );
    let queries: Vec<String> =
        script.requests().iter().map(|s| s.uri.query().unwrap_or("").to_owned()).collect();
    assert_eq!(
        queries,
        vec![
            "page_size=300",
            "page_size=300&next_page_token=t1",
            "page_size=300",
            "page_size=300&next_page_token=t2"
        ]
    );

    // Twice is an error for the caller to see.
    let (client, script) = scripted().await;
    script
        .then(200, json!({ "next_page_token": "t1", "numbers": [] }))
        .then(400, expired.clone())
        .then(200, json!({ "next_page_token": "t2", "numbers": [] }))
        .then(400, expired);
    assert!(matches!(
        client.list_all_peering_numbers("tok").await,
        Err(ZoomError::Refused { status: 400, code: 300, .. })
    ));
}
