//! Zoom's OAuth as a carrier's platform meets it: sign-in and consent pages, codes with PKCE,
//! rotating refresh tokens, expiry, server-to-server tokens and revocation.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use support::*;
use zoom_sim::{Options, RefreshRotation};

async fn token_error(r: reqwest::Response, error: &str) -> Value {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["reason"].is_string(), "{body}");
    body
}

async fn me(sim: &Sim, token: &str) -> reqwest::Response {
    api(token).get(sim.url("/v2/users/me")).send().await.expect("users/me")
}

#[tokio::test]
async fn code_flow_with_pkce_keeps_state_and_tells_the_app_which_account_authorized() {
    let sim = Sim::start().await;
    let (verifier, challenge) = pkce_pair();

    // Not signed in: Zoom asks for a sign-in first, and comes back to the authorization afterwards.
    let anonymous = sim.browser();
    let query = [
        ("response_type", "code"),
        ("client_id", CARRIER_APP),
        ("redirect_uri", CARRIER_REDIRECT),
        ("state", "xyz-123"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r =
        anonymous.get(sim.url("/oauth/authorize")).query(&query).send().await.expect("authorize");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("/signin?next=%2Foauth%2Fauthorize"), "{location}");

    let back = sim.authorize(ACME_ADMIN, &query).await;
    assert_eq!(back.as_str().split('?').next(), Some(CARRIER_REDIRECT));
    assert_eq!(
        query_value(&back, "state").as_deref(),
        Some("xyz-123"),
        "a flow the carrier started keeps its state"
    );
    let code = query_value(&back, "code").expect("code");

    let r = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CARRIER_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 3599);
    assert!(t["refresh_token"].is_string());
    assert!(t["scope"]
        .as_str()
        .expect("scope")
        .split(' ')
        .any(|s| s == "number_management_numbers:write:admin"));
    assert_eq!(t["api_url"], sim.url);

    let user: Value =
        me(&sim, t["access_token"].as_str().expect("token")).await.json().await.expect("json");
    assert_eq!(user["account_id"], ACME);
    assert_eq!(user["email"], ACME_ADMIN.0);
}

#[tokio::test]
async fn a_marketplace_style_install_arrives_without_state() {
    let sim = Sim::start().await;
    let back = sim
        .authorize(
            ACME_ADMIN,
            &[
                ("response_type", "code"),
                ("client_id", CARRIER_APP),
                ("redirect_uri", CARRIER_REDIRECT),
            ],
        )
        .await;
    assert!(query_value(&back, "code").is_some());
    assert_eq!(query_value(&back, "state"), None);
}

#[tokio::test]
async fn a_wrong_or_missing_pkce_verifier_is_refused() {
    let sim = Sim::start().await;
    let (verifier, challenge) = pkce_pair();
    let q = [
        ("response_type", "code"),
        ("client_id", CARRIER_APP),
        ("redirect_uri", CARRIER_REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for bad in [None, Some("not-the-verifier")] {
        let code = query_value(&sim.authorize(ACME_ADMIN, &q).await, "code").expect("code");
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CARRIER_REDIRECT),
        ];
        form.extend(bad.map(|v| ("code_verifier", v)));
        token_error(
            sim.token_request((CARRIER_APP, CARRIER_SECRET), &form).await,
            "invalid_request",
        )
        .await;
    }
    // The plain method compares the verifier itself.
    let q = [
        ("response_type", "code"),
        ("client_id", CARRIER_APP),
        ("redirect_uri", CARRIER_REDIRECT),
        ("code_challenge", verifier.as_str()),
    ];
    let code = query_value(&sim.authorize(ACME_ADMIN, &q).await, "code").expect("code");
    let r = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CARRIER_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_code_works_once_and_reusing_it_revokes_what_it_gave() {
    let sim = Sim::start().await;
    let code = sim.code(ACME_ADMIN, CARRIER_APP, CARRIER_REDIRECT).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CARRIER_REDIRECT),
    ];
    let first: Value =
        sim.token_request((CARRIER_APP, CARRIER_SECRET), &form).await.json().await.expect("json");
    let token = first["access_token"].as_str().expect("token");
    assert_eq!(me(&sim, token).await.status(), StatusCode::OK);

    let again = token_error(
        sim.token_request((CARRIER_APP, CARRIER_SECRET), &form).await,
        "invalid_request",
    )
    .await;
    assert!(
        again["reason"].as_str().expect("reason").starts_with("Invalid authorization code"),
        "{again}"
    );
    assert_zoom_error(me(&sim, token).await, 401, 124).await;
}

#[tokio::test]
async fn codes_expire_after_five_minutes() {
    let sim = Sim::start().await;
    let code = sim.code(ACME_ADMIN, CARRIER_APP, CARRIER_REDIRECT).await;
    sim.advance(Duration::from_secs(301)).await;
    let r = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CARRIER_REDIRECT),
            ],
        )
        .await;
    token_error(r, "invalid_request").await;
}

#[tokio::test]
async fn bad_client_credentials_and_redirect_mismatches_are_refused() {
    let sim = Sim::start().await;
    let code = sim.code(ACME_ADMIN, CARRIER_APP, CARRIER_REDIRECT).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CARRIER_REDIRECT),
    ];
    let body = token_error(
        sim.token_request((CARRIER_APP, "wrong-secret"), &form).await,
        "invalid_client",
    )
    .await;
    assert_eq!(body["reason"], "Invalid client_id or client_secret");
    let r = reqwest::Client::new()
        .post(sim.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .expect("no auth");
    token_error(r, "invalid_client").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:8080/elsewhere"),
    ];
    token_error(sim.token_request((CARRIER_APP, CARRIER_SECRET), &form).await, "invalid_request")
        .await;
    token_error(
        sim.token_request((CARRIER_APP, CARRIER_SECRET), &[("grant_type", "password")]).await,
        "unsupported_grant_type",
    )
    .await;

    // An unregistered redirect URI is shown as an error, never redirected to.
    let b = sim.signed_in(ACME_ADMIN).await;
    let r = b
        .get(sim.url("/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CARRIER_APP),
            ("redirect_uri", "https://attacker.example/cb"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("page").contains("Invalid redirect"));
}

#[tokio::test]
async fn only_the_account_admin_can_add_an_admin_managed_app() {
    let sim = Sim::start().await;
    let b = sim.signed_in(ACME_BOB).await;
    let r = b
        .get(sim.url("/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CARRIER_APP),
            ("redirect_uri", CARRIER_REDIRECT),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("page").contains("Only your account admin"));
    let r = sim
        .browser()
        .post(sim.url("/signin"))
        .form(&[("email", ACME_ADMIN.0), ("password", "wrong")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn refresh(sim: &Sim, refresh_token: &str) -> reqwest::Response {
    sim.token_request(
        (CARRIER_APP, CARRIER_SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
    )
    .await
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {v}")).to_owned()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_old_one_stops_once_the_new_one_is_used() {
    let sim = Sim::start().await;
    let first = sim.install(ACME_ADMIN).await;
    let r0 = field(&first, "refresh_token");

    let second: Value = refresh(&sim, &r0).await.json().await.expect("json");
    let (lost_access, lost_refresh) =
        (field(&second, "access_token"), field(&second, "refresh_token"));
    assert_ne!(lost_refresh, r0, "a refresh returns a new refresh token");

    // The new pair has not been used yet, so a client that lost that answer may retry with the old
    // refresh token; the answer it lost is then void.
    let retry: Value = refresh(&sim, &r0).await.json().await.expect("json");
    let (a1, r1) = (field(&retry, "access_token"), field(&retry, "refresh_token"));
    token_error(refresh(&sim, &lost_refresh).await, "invalid_grant").await;
    assert_zoom_error(me(&sim, &lost_access).await, 401, 124).await;

    // Once the new access token is used, the old refresh token is refused.
    assert_eq!(me(&sim, &a1).await.status(), StatusCode::OK);
    let body = token_error(refresh(&sim, &r0).await, "invalid_grant").await;
    assert_eq!(body["reason"], "Invalid Token!");

    // The same again one generation on.
    let third: Value = refresh(&sim, &r1).await.json().await.expect("json");
    assert_eq!(me(&sim, &field(&third, "access_token")).await.status(), StatusCode::OK);
    token_error(refresh(&sim, &r1).await, "invalid_grant").await;
}

#[tokio::test]
async fn with_immediate_rotation_an_exchanged_refresh_token_never_works_again() {
    let sim = Sim::with(Options {
        control_api: true,
        refresh_rotation: RefreshRotation::Immediate,
        ..Options::default()
    })
    .await;
    let first = sim.install(ACME_ADMIN).await;
    let r0 = field(&first, "refresh_token");
    let second: Value = refresh(&sim, &r0).await.json().await.expect("json");
    token_error(refresh(&sim, &r0).await, "invalid_grant").await;
    assert_eq!(refresh(&sim, &field(&second, "refresh_token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn access_tokens_expire_and_a_refresh_gives_a_working_one() {
    let sim = Sim::with(Options {
        control_api: true,
        access_token_ttl: Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    let t = sim.install(ACME_ADMIN).await;
    assert_eq!(t["expires_in"], 59);
    let access = field(&t, "access_token");
    assert_eq!(me(&sim, &access).await.status(), StatusCode::OK);
    sim.advance(Duration::from_secs(61)).await;
    let body = assert_zoom_error(me(&sim, &access).await, 401, 124).await;
    assert_eq!(body["message"], "Access token is expired.");
    let fresh: Value = refresh(&sim, &field(&t, "refresh_token")).await.json().await.expect("json");
    assert_eq!(me(&sim, &field(&fresh, "access_token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_new_install_revokes_the_previous_tokens() {
    let sim = Sim::start().await;
    let old = sim.install(ACME_ADMIN).await;
    let new = sim.install(ACME_ADMIN).await;
    assert_zoom_error(me(&sim, &field(&old, "access_token")).await, 401, 124).await;
    token_error(refresh(&sim, &field(&old, "refresh_token")).await, "invalid_grant").await;
    assert_eq!(me(&sim, &field(&new, "access_token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_token_ends_the_authorization() {
    let sim = Sim::start().await;
    let t = sim.install(ACME_ADMIN).await;
    let r = reqwest::Client::new()
        .post(sim.url("/oauth/revoke"))
        .basic_auth(CARRIER_APP, Some(CARRIER_SECRET))
        .form(&[("token", field(&t, "access_token"))])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "success");
    assert_zoom_error(me(&sim, &field(&t, "access_token")).await, 401, 124).await;
    token_error(refresh(&sim, &field(&t, "refresh_token")).await, "invalid_grant").await;
}

#[tokio::test]
async fn server_to_server_apps_get_an_hours_token_for_their_own_account_only() {
    let sim = Sim::start().await;
    let r = sim
        .token_request(
            (S2S_APP, S2S_SECRET),
            &[("grant_type", "account_credentials"), ("account_id", "exampleCarrierOwnAccount")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["expires_in"], 3599);
    assert!(t.get("refresh_token").is_none(), "{t}");
    let r = sim
        .token_request(
            (S2S_APP, S2S_SECRET),
            &[("grant_type", "account_credentials"), ("account_id", ACME)],
        )
        .await;
    token_error(r, "invalid_request").await;
    let r = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[("grant_type", "account_credentials"), ("account_id", ACME)],
        )
        .await;
    token_error(r, "unsupported_grant_type").await;
}

#[tokio::test]
async fn api_calls_without_a_valid_bearer_token_are_refused() {
    let sim = Sim::start().await;
    let r = reqwest::get(sim.url("/v2/users/me")).await.expect("no token");
    assert_zoom_error(r, 401, 124).await;
    assert_zoom_error(me(&sim, "made-up").await, 401, 124).await;
}
