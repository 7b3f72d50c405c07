//! The simulator's OAuth server through an off-the-shelf client, the `oauth2` crate, over a real
//! socket: what a carrier's code built on it sees. Authorization code with PKCE and `state`, refresh
//! rotation, revocation, Zoom-style errors, and the `account_credentials` answer read as a standard
//! token response.

mod support;

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, StandardRevocableToken,
    TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use support::*;

type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(sim: &Sim) -> Client {
    BasicClient::new(ClientId::new(CARRIER_APP.into()))
        .set_client_secret(ClientSecret::new(CARRIER_SECRET.into()))
        .set_auth_uri(AuthUrl::new(sim.url("/oauth/authorize")).expect("auth url"))
        .set_token_uri(TokenUrl::new(sim.url("/oauth/token")).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(CARRIER_REDIRECT.into()).expect("redirect"))
}

/// oauth2's advice: its HTTP client must not follow redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A carrier-started flow: oauth2 builds the authorize URL (state + S256 challenge); the admin signs in
/// and clicks Allow; the code and state come back on the redirect URI.
async fn authorize(sim: &Sim, client: &Client) -> (AuthorizationCode, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) =
        client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).url();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(query.iter().any(|(k, v)| k == "code_challenge_method" && v == "S256"));
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let back = sim.authorize(ACME_ADMIN, &pairs).await;
    assert_eq!(
        format!("{}://{}{}", back.scheme(), back.authority(), back.path()),
        CARRIER_REDIRECT
    );
    assert_eq!(
        query_value(&back, "state").as_deref(),
        Some(state.secret().as_str()),
        "the carrier's state comes back"
    );
    (AuthorizationCode::new(query_value(&back, "code").expect("code")), verifier)
}

async fn me(sim: &Sim, access: &str) -> StatusCode {
    api(access).get(sim.url("/v2/users/me")).send().await.expect("me").status()
}

#[tokio::test]
async fn authorization_code_with_pkce_gives_tokens_the_api_accepts() {
    let sim = Sim::start().await;
    let client = client(&sim);
    let (code, verifier) = authorize(&sim, &client).await;
    let token = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange");
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    let expires = token.expires_in().expect("expires_in");
    assert!((3500..=3600).contains(&expires.as_secs()), "{expires:?}");
    let scopes: Vec<String> =
        token.scopes().expect("scope").iter().map(|s| s.to_string()).collect();
    assert!(scopes.contains(&"number_management_numbers:write:admin".to_owned()), "{scopes:?}");
    assert!(token.refresh_token().is_some());
    assert_eq!(me(&sim, token.access_token().secret()).await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_verifier_or_a_reused_code_is_an_oauth2_error() {
    let sim = Sim::start().await;
    let client = client(&sim);
    let (code, _verifier) = authorize(&sim, &client).await;
    let wrong = PkceCodeVerifier::new("x".repeat(64));
    let e = client
        .exchange_code(code.clone())
        .set_pkce_verifier(wrong)
        .request_async(&http())
        .await
        .expect_err("refused");
    let RequestTokenError::ServerResponse(r) = e else { panic!("a server error response: {e:?}") };
    assert_eq!(*r.error(), BasicErrorResponseType::InvalidRequest);

    let (code, verifier) = authorize(&sim, &client).await;
    let first = client
        .exchange_code(code.clone())
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("first use");
    let (_, again) = PkceCodeChallenge::new_random_sha256();
    let e = client
        .exchange_code(code)
        .set_pkce_verifier(again)
        .request_async(&http())
        .await
        .expect_err("second use");
    let RequestTokenError::ServerResponse(r) = e else { panic!("a server error response: {e:?}") };
    assert!(
        matches!(
            r.error(),
            BasicErrorResponseType::InvalidGrant | BasicErrorResponseType::InvalidRequest
        ),
        "{r:?}"
    );
    assert_eq!(
        me(&sim, first.access_token().secret()).await,
        StatusCode::UNAUTHORIZED,
        "a reused code revokes what it gave"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_revocation_ends_the_authorization() {
    let sim = Sim::start().await;
    let client = client(&sim);
    let (code, verifier) = authorize(&sim, &client).await;
    let first = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange");
    let old_refresh = first.refresh_token().expect("refresh").clone();

    let second =
        client.exchange_refresh_token(&old_refresh).request_async(&http()).await.expect("refresh");
    let new_refresh = second.refresh_token().expect("a new refresh token").clone();
    assert_ne!(new_refresh.secret(), old_refresh.secret(), "refresh tokens rotate");
    assert_eq!(me(&sim, second.access_token().secret()).await, StatusCode::OK);
    // Once the new pair is used, the old refresh token is dead.
    let e = client
        .exchange_refresh_token(&old_refresh)
        .request_async(&http())
        .await
        .expect_err("old refresh token");
    let RequestTokenError::ServerResponse(r) = e else { panic!("a server error response: {e:?}") };
    assert_eq!(*r.error(), BasicErrorResponseType::InvalidGrant);

    let third = client
        .exchange_refresh_token(&new_refresh)
        .request_async(&http())
        .await
        .expect("refresh again");
    // oauth2 refuses a revocation URL that is not https (RFC 7009), and the simulator speaks plain
    // HTTP: revoke as RFC 7009 says, by hand (form `token=`, Basic auth).
    let r = http()
        .post(sim.url("/oauth/revoke"))
        .basic_auth(CARRIER_APP, Some(CARRIER_SECRET))
        .form(&[("token", third.access_token().secret().as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me(&sim, third.access_token().secret()).await, StatusCode::UNAUTHORIZED);
    let e = client
        .exchange_refresh_token(third.refresh_token().expect("refresh"))
        .request_async(&http())
        .await
        .expect_err("revoked");
    assert!(matches!(e, RequestTokenError::ServerResponse(_)), "{e:?}");
    let bogus = RefreshToken::new("not-a-token".into());
    assert!(client.exchange_refresh_token(&bogus).request_async(&http()).await.is_err());
}

#[tokio::test]
async fn wrong_client_credentials_are_an_oauth2_invalid_client() {
    let sim = Sim::start().await;
    let good = client(&sim);
    let (code, verifier) = authorize(&sim, &good).await;
    let bad = client(&sim).set_client_secret(ClientSecret::new("wrong".into()));
    let e = bad
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect_err("refused");
    let RequestTokenError::ServerResponse(r) = e else { panic!("a server error response: {e:?}") };
    assert_eq!(*r.error(), BasicErrorResponseType::InvalidClient);
}

/// oauth2 has no `account_credentials` grant (Zoom's own name for server-to-server); the request is
/// sent by hand and the answer must still be a standard token response an OAuth client can read.
#[tokio::test]
async fn the_account_credentials_answer_is_a_standard_token_response() {
    let sim = Sim::start().await;
    let r = sim
        .token_request(
            (S2S_APP, S2S_SECRET),
            &[("grant_type", "account_credentials"), ("account_id", "exampleCarrierOwnAccount")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token: BasicTokenResponse =
        serde_json::from_str(&r.text().await.expect("body")).expect("oauth2 reads it");
    assert!(
        token.refresh_token().is_none(),
        "server-to-server tokens come without a refresh token"
    );
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    let r = api(token.access_token().secret())
        .get(sim.url("/v2/number_management/carrier/peering_numbers"))
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), StatusCode::OK);
}
