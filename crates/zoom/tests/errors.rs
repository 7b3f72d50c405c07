//! What the client makes of Zoom when it is not well: rate limits, server errors, slowness, bodies it
//! cannot read, and no Zoom at all. None of them is ever taken for success.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zoom::{Outcome, ZoomError};
use zoom_sim::{Options, RateLimit};

const PEERING: &str = "/v2/number_management/peering_numbers";

#[tokio::test]
async fn an_injected_429_is_rate_limited_with_zooms_retry_after() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    zoom.fault(json!({ "path": PEERING, "method": "POST", "status": 429, "retry_after": 7 })).await;
    let e = client.add_peering_numbers(&token, TRUNK, &numbers(0..2)).await.expect_err("429");
    assert_eq!(e, ZoomError::RateLimited { retry_after: Duration::from_secs(7) });
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    // Nothing was added, and the retry goes through.
    let results = client.add_peering_numbers(&token, TRUNK, &numbers(0..2)).await.expect("retry");
    assert!(results.iter().all(|r| r.outcome == Outcome::Done), "{results:?}");
}

#[tokio::test]
async fn the_accounts_per_second_limit_is_rate_limited() {
    let zoom = Zoom::with(Options {
        control_api: true,
        rate_limit: RateLimit::PerSecond(2),
        ..Options::default()
    })
    .await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    let mut limited = None;
    // The simulator counts in one-second windows of its clock: a burst of calls soon exceeds two.
    for _ in 0..20 {
        if let Err(e) = client.list_peering_numbers(&token, None).await {
            limited = Some(e);
            break;
        }
    }
    assert_eq!(limited, Some(ZoomError::RateLimited { retry_after: Duration::from_secs(1) }));
}

#[tokio::test]
async fn a_server_error_is_retryable_and_not_success() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    zoom.fault(json!({ "path": PEERING, "method": "DELETE", "status": 500 })).await;
    let e = client.remove_peering_numbers(&token, &numbers(0..1)).await.expect_err("500");
    assert!(matches!(&e, ZoomError::Server { status: 500, .. }), "{e:?}");
    assert!(e.is_retryable());
    zoom.fault(json!({ "path": "/v2/users/me", "status": 502 })).await;
    assert!(matches!(client.me(&token).await, Err(ZoomError::Server { status: 502, .. })));
}

#[tokio::test]
async fn a_call_slower_than_the_timeout_times_out() {
    let zoom = Zoom::start().await;
    let client =
        zoom::Client::new(zoom::Config { timeout: Duration::from_millis(300), ..zoom.config() })
            .expect("client");
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    zoom.fault(json!({ "path": PEERING, "method": "GET", "delay_ms": 1500 })).await;
    let started = std::time::Instant::now();
    let e = client.list_peering_numbers(&token, None).await.expect_err("slow");
    assert_eq!(e, ZoomError::Timeout);
    assert!(e.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "gave up at the timeout: {:?}",
        started.elapsed()
    );
    // The token endpoint has the same patience.
    zoom.fault(json!({ "path": "/oauth/token", "delay_ms": 1500 })).await;
    assert_eq!(client.refresh("whatever").await, Err(ZoomError::Timeout));
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_never_success() {
    let zoom = Zoom::start().await;
    let client =
        zoom::Client::new(zoom::Config { timeout: Duration::from_millis(500), ..zoom.config() })
            .expect("client");
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    // The simulator holds the call, then hangs up without answering (its `timeout_ms` fault).
    zoom.fault(json!({ "path": PEERING, "method": "POST", "timeout_ms": 100 })).await;
    let e = client.add_peering_numbers(&token, TRUNK, &numbers(0..1)).await.expect_err("hang-up");
    assert!(e.is_retryable(), "{e:?}");
    assert!(matches!(e, ZoomError::Transport(_) | ZoomError::Timeout), "{e:?}");
}

#[tokio::test]
async fn no_zoom_at_all_is_a_retryable_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = zoom::Client::new(zoom::Config {
        oauth_base: format!("http://{addr}").parse().expect("url"),
        api_base: format!("http://{addr}/v2").parse().expect("url"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: REDIRECT.parse().expect("url"),
        timeout: Duration::from_secs(2),
    })
    .expect("client");
    let e = client.me("token").await.expect_err("refused");
    assert!(matches!(&e, ZoomError::Transport(m) if !m.is_empty()), "{e:?}");
    assert!(e.is_retryable());
    assert!(matches!(client.refresh("r").await, Err(ZoomError::Transport(_))));
}

/// A server on a real socket that answers every request with this status line, type and body.
async fn answering(status: &str, content_type: &str, body: &str) -> std::net::SocketAddr {
    let response: &'static str = Box::leak(
        format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            .into_boxed_str(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

fn client_for(addr: std::net::SocketAddr) -> zoom::Client {
    zoom::Client::new(zoom::Config {
        oauth_base: format!("http://{addr}").parse().expect("url"),
        api_base: format!("http://{addr}/v2").parse().expect("url"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: REDIRECT.parse().expect("url"),
        timeout: Duration::from_secs(2),
    })
    .expect("client")
}

#[tokio::test]
async fn a_success_status_with_a_body_we_cannot_read_is_a_decode_error() {
    let addr = answering("200 OK", "application/json", "<html>oops").await;
    let client = client_for(addr);
    assert!(matches!(client.me("t").await, Err(ZoomError::Decode(_))));
    assert!(matches!(client.list_peering_numbers("t", None).await, Err(ZoomError::Decode(_))));
    let e = client.exchange_code("code", None).await.expect_err("token answer");
    assert!(matches!(e, ZoomError::Decode(_)), "{e:?}");
}

#[tokio::test]
async fn a_4xx_we_cannot_read_is_refused_for_the_whole_batch() {
    let addr = answering("400 Bad Request", "text/html", "<html></html>").await;
    let client = client_for(addr);
    let e =
        client.add_peering_numbers("t", TRUNK, &numbers(0..2)).await.expect_err("unreadable 400");
    assert!(
        matches!(&e, ZoomError::Refused { status: 400, code: 0, message } if message.contains("<html>")),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_some_data_failed_answer_that_names_no_number_we_sent_is_refused_for_the_whole_batch() {
    let addr = answering(
        "400 Bad Request",
        "application/json",
        r#"{"code":1000,"message":"Some data failed.","errors":[{"phone_number":"+19999999"}]}"#,
    )
    .await;
    let client = client_for(addr);
    let e = client
        .remove_peering_numbers("t", &numbers(0..2))
        .await
        .expect_err("cannot tell which failed");
    assert!(matches!(e, ZoomError::Refused { status: 400, code: 1000, .. }), "{e:?}");
}

#[tokio::test]
async fn zooms_documented_camel_case_failure_list_is_read_per_number() {
    // The shape in Zoom's OpenAPI description of error 1000: `{"phoneNumber", "reason"}` items.
    let addr = answering("400 Bad Request", "application/json", r#"{"code":1000,"message":"Some data failed.","errors":[{"phoneNumber":"12065550001","reason":"x"}]}"#).await;
    let client = client_for(addr);
    let results = client.add_peering_numbers("t", TRUNK, &numbers(0..2)).await.expect("per number");
    assert_eq!(results[0].outcome, Outcome::Done);
    assert_eq!(results[1].outcome, Outcome::Refused { code: 1000, message: "x".into() });
}
