//! Zoom's OAuth through the client, against the simulator over real sockets: a carrier-started flow
//! with state and PKCE, a Marketplace install without either, rotating refresh tokens, revocation,
//! expiry, and secrets kept out of Debug output.

mod support;

use std::time::Duration;
use support::*;
use time::OffsetDateTime;
use zoom::{PkceVerifier, ZoomError};

#[tokio::test]
async fn a_carrier_started_flow_keeps_its_state_and_proves_pkce_then_learns_the_zoom_account() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let (authorize, verifier) = client.authorize_url("state-123");
    assert_eq!(query_value(&authorize, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(query_value(&authorize, "redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(query_value(&authorize, "code_challenge_method").as_deref(), Some("S256"));

    let back = zoom.allow(ACME_ADMIN, &authorize).await;
    assert_eq!(query_value(&back, "state").as_deref(), Some("state-123"));
    let code = query_value(&back, "code").expect("code");

    let before = OffsetDateTime::now_utc();
    let tokens = client.exchange_code(&code, Some(verifier)).await.expect("exchange");
    let lifetime = tokens.expires_at - before;
    assert!(
        lifetime > time::Duration::seconds(3590) && lifetime <= time::Duration::seconds(3600),
        "Zoom's 3599 s: {lifetime}"
    );
    assert!(
        tokens.scopes.iter().any(|s| s == "number_management_numbers:write:admin"),
        "{:?}",
        tokens.scopes
    );

    let me = client.me(&tokens.access_token).await.expect("users/me");
    assert_eq!(me.account_id, ACME);
    assert_eq!(me.email, ACME_ADMIN.0);
    assert!(!me.user_id.is_empty());
}

#[tokio::test]
async fn a_carrier_started_flow_without_the_right_verifier_is_an_invalid_grant() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    for verifier in [
        None,
        Some(PkceVerifier::new(
            "a-verifier-that-is-not-the-one-for-this-challenge-0123456789".into(),
        )),
    ] {
        let (authorize, _kept) = client.authorize_url("s");
        let code = query_value(&zoom.allow(ACME_ADMIN, &authorize).await, "code").expect("code");
        match client.exchange_code(&code, verifier).await {
            Err(ZoomError::InvalidGrant { message }) => {
                assert!(message.contains("code_verifier"), "{message}")
            }
            other => panic!("expected InvalidGrant, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_marketplace_install_has_no_state_nor_pkce_and_its_code_works_once() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let code = zoom.marketplace_code(GLOBEX_ADMIN).await;
    let tokens = client.exchange_code(&code, None).await.expect("exchange");
    assert_eq!(
        client.me(&tokens.access_token).await.expect("me").account_id,
        "globexZoomAccount00002"
    );

    // Replaying the code is refused, and Zoom revokes what the code gave (it may have leaked).
    assert!(matches!(client.exchange_code(&code, None).await, Err(ZoomError::InvalidGrant { .. })));
    assert!(matches!(client.me(&tokens.access_token).await, Err(ZoomError::Unauthorized { .. })));
}

#[tokio::test]
async fn an_expired_code_is_an_invalid_grant() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let code = zoom.marketplace_code(ACME_ADMIN).await;
    zoom.advance(Duration::from_secs(301)).await;
    // The simulator forgets expired codes, so Zoom's reason may be "expired" or "invalid".
    assert!(matches!(client.exchange_code(&code, None).await, Err(ZoomError::InvalidGrant { .. })));
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_refused_once_the_new_pair_is_used() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let first = zoom.install(&client, ACME_ADMIN).await;
    let second = client.refresh(&first.refresh_token).await.expect("refresh");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(client.me(&second.access_token).await.expect("new token works").account_id, ACME);

    match client.refresh(&first.refresh_token).await {
        Err(ZoomError::InvalidGrant { message }) => {
            assert!(message.contains("Invalid Token"), "{message}")
        }
        other => panic!("the spent refresh token must be refused, got {other:?}"),
    }
    let third = client.refresh(&second.refresh_token).await.expect("the new refresh token works");
    client.me(&third.access_token).await.expect("and so does its access token");
}

#[tokio::test]
async fn an_expired_access_token_is_unauthorized_and_a_refresh_recovers() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let tokens = zoom.install(&client, ACME_ADMIN).await;
    zoom.advance(Duration::from_secs(3600)).await;
    match client.me(&tokens.access_token).await {
        Err(e @ ZoomError::Unauthorized { .. }) => {
            assert!(e.to_string().contains("expired"), "{e}");
            assert!(!e.is_retryable());
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let fresh = client.refresh(&tokens.refresh_token).await.expect("refresh");
    client.me(&fresh.access_token).await.expect("works again");
}

#[tokio::test]
async fn revoking_ends_the_authorization_for_both_tokens() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let tokens = zoom.install(&client, ACME_ADMIN).await;
    client.revoke(&tokens.access_token).await.expect("revoke");
    assert!(matches!(client.me(&tokens.access_token).await, Err(ZoomError::Unauthorized { .. })));
    assert!(matches!(
        client.refresh(&tokens.refresh_token).await,
        Err(ZoomError::InvalidGrant { .. })
    ));
    // Revoking again (an unknown token) is not an error (RFC 7009 §2.2).
    client.revoke(&tokens.access_token).await.expect("revoke twice");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_not_taken_for_a_bad_grant() {
    let zoom = Zoom::start().await;
    let code = zoom.marketplace_code(ACME_ADMIN).await;
    let client =
        zoom::Client::new(zoom::Config { client_secret: "not-the-secret".into(), ..zoom.config() })
            .expect("client");
    match client.exchange_code(&code, None).await {
        Err(ZoomError::Refused { status: 400, message, .. }) => {
            assert!(message.contains("invalid_client"), "{message}")
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_endpoint_rate_limit_and_server_errors_are_retryable() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let tokens = zoom.install(&client, ACME_ADMIN).await;
    zoom.fault(serde_json::json!({ "path": "/oauth/token", "status": 429, "retry_after": 3 }))
        .await;
    let e = client.refresh(&tokens.refresh_token).await.expect_err("429");
    assert_eq!(e, ZoomError::RateLimited { retry_after: Duration::from_secs(3) });
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    zoom.fault(serde_json::json!({ "path": "/oauth/token", "status": 503 })).await;
    let e = client.refresh(&tokens.refresh_token).await.expect_err("503");
    assert!(matches!(e, ZoomError::Server { status: 503, .. }), "{e:?}");
    assert!(e.is_retryable());
    // Neither call reached Zoom's token logic: the refresh token still works.
    client.refresh(&tokens.refresh_token).await.expect("refresh after the faults");
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let (_, verifier) = client.authorize_url("s");
    let tokens = zoom.install(&client, ACME_ADMIN).await;
    let printed = format!("{:?} {:?} {:?} {:?}", zoom.config(), client, tokens, verifier);
    for secret in [
        CLIENT_SECRET,
        tokens.access_token.as_str(),
        tokens.refresh_token.as_str(),
        verifier.secret(),
    ] {
        assert!(!printed.contains(secret), "a secret was printed: {printed}");
    }
    assert!(printed.contains(CLIENT_ID), "the client id is not a secret: {printed}");
}

/// Every call's future is `Send`, so it can run in a spawned task or an axum handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_can_run_in_a_spawned_task() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let code = zoom.marketplace_code(ACME_ADMIN).await;
    let c = client.clone();
    let tokens = tokio::spawn(async move { c.exchange_code(&code, None).await })
        .await
        .expect("join")
        .expect("exchange");
    let (c, t) = (client.clone(), tokens.clone());
    let fresh = tokio::spawn(async move {
        let fresh = c.refresh(&t.refresh_token).await?;
        c.me(&fresh.access_token).await?;
        c.add_peering_numbers(&fresh.access_token, TRUNK, &numbers(0..1)).await?;
        c.update_peering_numbers(
            &fresh.access_token,
            &[zoom::NumberUpdate { phone_number: number(0), ..Default::default() }],
        )
        .await?;
        c.list_all_peering_numbers(&fresh.access_token).await?;
        c.find_peering_number(&fresh.access_token, &number(0)).await?;
        c.remove_peering_numbers(&fresh.access_token, &numbers(0..1)).await?;
        Ok::<_, ZoomError>(fresh)
    })
    .await
    .expect("join")
    .expect("calls");
    let c = client.clone();
    tokio::spawn(async move { c.revoke(&fresh.access_token).await })
        .await
        .expect("join")
        .expect("revoke");
}

#[tokio::test]
async fn token_expiry_is_counted_on_the_injected_clock_from_when_we_asked() {
    let zoom = Zoom::start().await;
    let then = time::macros::datetime!(2030-01-01 12:00:00 UTC);
    let client = zoom::Client::with_clock(zoom.config(), move || then).expect("client");
    let tokens = zoom.install(&client, ACME_ADMIN).await;
    assert_eq!(tokens.expires_at, then + Duration::from_secs(3599));
}

#[tokio::test]
async fn a_configuration_that_cannot_work_is_refused_with_the_field_named() {
    let zoom = Zoom::start().await;
    let bad = [
        (
            zoom::Config {
                api_base: "ftp://api.zoom.us/v2".parse().expect("url"),
                ..zoom.config()
            },
            "api_base",
        ),
        (
            zoom::Config {
                oauth_base: "mailto:ops@zoom.us".parse().expect("url"),
                ..zoom.config()
            },
            "oauth_base",
        ),
        (zoom::Config { timeout: Duration::ZERO, ..zoom.config() }, "timeout"),
        (zoom::Config { client_secret: String::new(), ..zoom.config() }, "client_secret"),
    ];
    for (config, field) in bad {
        match zoom::Client::new(config) {
            Err(ZoomError::Invalid(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
}
