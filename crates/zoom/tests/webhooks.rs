//! Zoom's webhooks as peerex receives them: the simulator signs and sends them to a receiver on a real
//! socket that uses `zoom::webhook`; forged, stale and incomplete deliveries are refused.

mod support;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use time::OffsetDateTime;
use zoom::webhook::{self, Event, WebhookError, DEFAULT_WINDOW};

/// What peerex's endpoint does with a delivery, minus the database: verify, parse, answer.
async fn receive(events: Arc<Mutex<Vec<Event>>>, headers: HeaderMap, body: Bytes) -> Response {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let checked = webhook::verify(
        WEBHOOK_SECRET,
        &header(webhook::TIMESTAMP_HEADER),
        &header(webhook::SIGNATURE_HEADER),
        &body,
        OffsetDateTime::now_utc(),
        DEFAULT_WINDOW,
    );
    if let Err(e) = checked {
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    match webhook::parse(&body) {
        Ok(Event::UrlValidation { plain_token }) => {
            axum::Json(webhook::url_validation_response(WEBHOOK_SECRET, &plain_token))
                .into_response()
        }
        Ok(event) => {
            events.lock().expect("lock").push(event);
            StatusCode::OK.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// The simulator with the carrier app's event URL pointing at a receiver; the events it accepted.
async fn zoom_with_receiver() -> (Zoom, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let app = axum::Router::new().route(
        "/zoom/webhooks",
        axum::routing::post(move |h: HeaderMap, b: Bytes| receive(seen.clone(), h, b)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut world = world_json();
    world["apps"][0]["event_url"] = json!(format!("http://{addr}/zoom/webhooks"));
    (
        Zoom::with_world(world, zoom_sim::Options { control_api: true, ..Default::default() })
            .await,
        events,
    )
}

#[tokio::test]
async fn the_endpoint_validation_is_answered_as_zoom_checks_it() {
    let (zoom, _) = zoom_with_receiver().await;
    let answer = zoom
        .control(reqwest::Method::POST, &format!("/_sim/apps/{CLIENT_ID}/validate-endpoint"), None)
        .await;
    assert_eq!(answer["valid"], true, "{answer}");
}

#[tokio::test]
async fn an_app_removal_arrives_signed_and_names_the_account() {
    let (zoom, events) = zoom_with_receiver().await;
    let client = zoom.client();
    zoom.install(&client, ACME_ADMIN).await;
    zoom.control(
        reqwest::Method::POST,
        &format!("/_sim/accounts/{ACME}/apps/{CLIENT_ID}/remove"),
        Some(json!({})),
    )
    .await;
    let mut got = None;
    for _ in 0..100 {
        if let Some(e) = events.lock().expect("lock").first().cloned() {
            got = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match got {
        Some(Event::AppDeauthorized { account_id, client_id, user_id, deauthorization_time }) => {
            assert_eq!(account_id, ACME);
            assert_eq!(client_id, CLIENT_ID);
            assert!(!user_id.is_empty());
            assert!(deauthorization_time.is_some());
        }
        other => panic!("expected app_deauthorized, got {other:?}"),
    }
    let log = zoom.control(reqwest::Method::GET, "/_sim/webhooks", None).await;
    assert!(log.to_string().contains("delivered"), "the simulator saw a 2xx: {log}");
}

fn signed(ts: i64, body: &str) -> (String, String) {
    (ts.to_string(), zoom_sim::webhook_signature(WEBHOOK_SECRET, ts, body))
}

#[test]
fn a_delivery_signed_as_zoom_signs_is_accepted_within_the_window_either_way() {
    let now = OffsetDateTime::now_utc();
    let body = r#"{"event":"app_deauthorized","payload":{"account_id":"a"}}"#;
    for skew in [0, -299, 299] {
        let (ts, sig) = signed(now.unix_timestamp() + skew, body);
        assert_eq!(
            webhook::verify(WEBHOOK_SECRET, &ts, &sig, body.as_bytes(), now, DEFAULT_WINDOW),
            Ok(()),
            "skew {skew}"
        );
    }
    // Our own signature helper agrees with the simulator's.
    let (ts, sig) = signed(now.unix_timestamp(), body);
    assert_eq!(webhook::signature(WEBHOOK_SECRET, &ts, body.as_bytes()), sig);
}

#[test]
fn forged_stale_and_incomplete_deliveries_are_refused() {
    let now = OffsetDateTime::now_utc();
    let body = r#"{"event":"app_deauthorized","payload":{"account_id":"a"}}"#;
    let (ts, sig) = signed(now.unix_timestamp(), body);
    let verify = |ts: &str, sig: &str, body: &str| {
        webhook::verify(WEBHOOK_SECRET, ts, sig, body.as_bytes(), now, DEFAULT_WINDOW)
    };

    let forged = format!("v0={}", hex_of(b"forged"));
    assert_eq!(verify(&ts, &forged, body), Err(WebhookError::BadSignature));
    let other_secret =
        zoom_sim::webhook_signature("another app's secret", now.unix_timestamp(), body);
    assert_eq!(verify(&ts, &other_secret, body), Err(WebhookError::BadSignature));
    assert_eq!(
        verify(&ts, &sig, &body.replace("\"a\"", "\"b\"")),
        Err(WebhookError::BadSignature),
        "body changed"
    );
    let later = (now.unix_timestamp() + 1).to_string();
    assert_eq!(verify(&later, &sig, body), Err(WebhookError::BadSignature), "timestamp changed");

    for skew in [-301, 301, -86_400] {
        let (old_ts, old_sig) = signed(now.unix_timestamp() + skew, body);
        assert_eq!(
            verify(&old_ts, &old_sig, body),
            Err(WebhookError::StaleTimestamp),
            "skew {skew}"
        );
    }

    assert_eq!(verify("", &sig, body), Err(WebhookError::MissingHeader("x-zm-request-timestamp")));
    assert_eq!(verify(&ts, "", body), Err(WebhookError::MissingHeader("x-zm-signature")));
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn events_are_parsed_and_malformed_bodies_refused() {
    let v = |v: Value| v.to_string().into_bytes();
    assert_eq!(
        webhook::parse(&v(
            json!({ "event": "endpoint.url_validation", "payload": { "plainToken": "p1" } })
        )),
        Ok(Event::UrlValidation { plain_token: "p1".into() })
    );
    assert_eq!(
        webhook::parse(&v(json!({ "event": "phone.callee_ringing", "payload": {} }))),
        Ok(Event::Other { event: "phone.callee_ringing".into() })
    );
    match webhook::parse(&v(
        json!({ "event": "number_management.peering_number_cnam_updated", "payload": {} }),
    )) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("account_id"), "{m}"),
        other => panic!("a number event without its payload: expected Malformed, got {other:?}"),
    }
    assert!(matches!(webhook::parse(b"not json"), Err(WebhookError::Malformed(_))));
    assert!(matches!(
        webhook::parse(&v(json!({ "payload": {} }))),
        Err(WebhookError::Malformed(_))
    ));
    match webhook::parse(&v(json!({ "event": "app_deauthorized", "payload": { "user_id": "u" } })))
    {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("account_id"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}
