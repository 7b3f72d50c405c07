//! Shared by the simulator's tests: the example world on a real socket, a browser that walks Zoom's
//! sign-in and consent pages, PKCE, and a small JSON Schema checker for the OpenAPI files.
#![allow(dead_code)]

pub mod schema;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use zoom_sim::{Options, SimHandle, Simulator, World};

pub const CARRIER_APP: &str = "exampleCarrierClientId";
pub const CARRIER_SECRET: &str = "exampleCarrierClientSecret";
pub const CARRIER_REDIRECT: &str = "http://127.0.0.1:8080/zoom/oauth/callback";
pub const S2S_APP: &str = "exampleCarrierS2SClientId";
pub const S2S_SECRET: &str = "exampleCarrierS2SClientSecret";
pub const ADMIN_APP: &str = "phoneAdminScriptClientId";
pub const ADMIN_SECRET: &str = "phoneAdminScriptClientSecret";
pub const ADMIN_REDIRECT: &str = "http://127.0.0.1:8081/callback";

pub const ACME: &str = "acmeZoomAccount0000001";
pub const GLOBEX: &str = "globexZoomAccount00002";
/// The carrier's own Zoom account: its Provider Portal, and what its server-to-server app acts on.
pub const CARRIER_ACCOUNT: &str = "exampleCarrierOwnAccount";
pub const CARRIER_ADMIN: (&str, &str) = ("ops@carrier.example", "ops-zoom-password");
pub const ACME_ADMIN: (&str, &str) = ("alice@acme.example", "alice-zoom-password");
pub const ACME_BOB: (&str, &str) = ("bob@acme.example", "bob-zoom-password");
pub const GLOBEX_ADMIN: (&str, &str) = ("gina@globex.example", "gina-zoom-password");
pub const INITECH_ADMIN: (&str, &str) = ("ian@initech.example", "ian-zoom-password");
pub const TRUNK: &str = "example-carrier-us-east";
pub const CARRIER_CODE: u32 = 8801;

pub fn world() -> World {
    World::from_json(include_str!("../../examples/world.json")).expect("the example world is valid")
}

pub struct Sim {
    pub sim: Simulator,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub handle: SimHandle,
}

impl Sim {
    pub async fn start() -> Sim {
        Sim::with(Options { control_api: true, ..Options::default() }).await
    }

    pub async fn with(options: Options) -> Sim {
        Sim::with_world(world(), options).await
    }

    pub async fn with_world(world: World, options: Options) -> Sim {
        let sim = Simulator::new(world, options).expect("simulator");
        let (addr, handle) = sim.spawn("127.0.0.1:0".parse().expect("addr")).await.expect("spawn");
        Sim { sim, addr, url: format!("http://{addr}"), handle }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A browser: keeps cookies, does not follow redirects (tests look at them).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Signs `who` in to the simulated zoom.us and returns that browser.
    pub async fn signed_in(&self, who: (&str, &str)) -> reqwest::Client {
        let b = self.browser();
        let r = b
            .post(self.url("/signin"))
            .form(&[("email", who.0), ("password", who.1), ("next", "/")])
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in should redirect");
        b
    }

    /// Walks `/oauth/authorize` as `who` up to the consent page and clicks Allow; returns where Zoom
    /// sent the browser back to.
    pub async fn authorize(&self, who: (&str, &str), query: &[(&str, &str)]) -> reqwest::Url {
        let b = self.signed_in(who).await;
        let r = b.get(self.url("/oauth/authorize")).query(query).send().await.expect("authorize");
        assert_eq!(r.status(), StatusCode::OK, "consent page");
        let page = r.text().await.expect("page");
        assert!(page.contains("Allow"), "{page}");
        let consent = hidden(&page, "consent").expect("consent field");
        let r = b
            .post(self.url("/oauth/authorize"))
            .form(&[("consent", consent.as_str()), ("decision", "allow")])
            .send()
            .await
            .expect("allow");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().expect("location").to_owned();
        reqwest::Url::parse(&location).expect("redirect is a URL")
    }

    /// A code for `client_id` authorized by `who` (no PKCE, no state, as from the Marketplace).
    pub async fn code(&self, who: (&str, &str), client_id: &str, redirect: &str) -> String {
        let url = self
            .authorize(
                who,
                &[("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect)],
            )
            .await;
        query_value(&url, "code").expect("code")
    }

    pub async fn token_request(
        &self,
        client: (&str, &str),
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/oauth/token"))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// Installs the carrier's app on `who`'s account and returns the token response.
    pub async fn install(&self, who: (&str, &str)) -> Value {
        self.install_app(who, (CARRIER_APP, CARRIER_SECRET), CARRIER_REDIRECT).await
    }

    pub async fn install_app(
        &self,
        who: (&str, &str),
        client: (&str, &str),
        redirect: &str,
    ) -> Value {
        let code = self.code(who, client.0, redirect).await;
        let r = self
            .token_request(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("token json")
    }

    /// An access token of the carrier's app on `who`'s account.
    pub async fn carrier_token(&self, who: (&str, &str)) -> String {
        self.install(who).await["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A server-to-server token of the carrier's own account (`account_credentials`): what the
    /// carrier-wide listing needs.
    pub async fn s2s_token(&self) -> String {
        let r = self
            .token_request(
                (S2S_APP, S2S_SECRET),
                &[("grant_type", "account_credentials"), ("account_id", CARRIER_ACCOUNT)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let t: Value = r.json().await.expect("token json");
        t["access_token"].as_str().expect("access_token").to_owned()
    }

    /// The customer account number (`customer_account_number`) of an account, from `/_sim/accounts`.
    pub async fn account_number(&self, account_id: &str) -> String {
        let v: Value = reqwest::get(self.url("/_sim/accounts"))
            .await
            .expect("accounts")
            .json()
            .await
            .expect("json");
        v["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["id"] == account_id)
            .and_then(|a| a["account_number"].as_str())
            .expect("account_number")
            .to_owned()
    }

    /// An access token of the admin script (phone:read/write:admin) on `who`'s account.
    pub async fn admin_token(&self, who: (&str, &str)) -> String {
        self.install_app(who, (ADMIN_APP, ADMIN_SECRET), ADMIN_REDIRECT).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn advance(&self, by: Duration) {
        let r = reqwest::Client::new()
            .post(self.url("/_sim/clock/advance"))
            .json(&serde_json::json!({ "ms": by.as_millis() as u64 }))
            .send()
            .await
            .expect("advance");
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Adds numbers through the new API; panics unless Zoom answers 201.
    pub async fn add_numbers(&self, token: &str, numbers: &[String]) {
        let items: Vec<Value> = numbers.iter().map(|n| serde_json::json!({ "phone_number": n, "sip_trunk_name": TRUNK, "status": true })).collect();
        let r = api(token)
            .post(self.url("/v2/number_management/peering_numbers"))
            .json(&serde_json::json!({ "phone_numbers": items }))
            .send()
            .await
            .expect("add");
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap_or_default());
    }
}

/// A client whose requests carry `token`.
pub fn api(token: &str) -> AuthedClient {
    AuthedClient { client: reqwest::Client::new(), token: token.to_owned() }
}

pub struct AuthedClient {
    client: reqwest::Client,
    token: String,
}

impl AuthedClient {
    pub fn get(&self, url: String) -> reqwest::RequestBuilder {
        self.client.get(url).bearer_auth(&self.token)
    }
    pub fn post(&self, url: String) -> reqwest::RequestBuilder {
        self.client.post(url).bearer_auth(&self.token)
    }
    pub fn patch(&self, url: String) -> reqwest::RequestBuilder {
        self.client.patch(url).bearer_auth(&self.token)
    }
    pub fn delete(&self, url: String) -> reqwest::RequestBuilder {
        self.client.delete(url).bearer_auth(&self.token)
    }
}

/// `+1206555` followed by four digits: distinct test numbers.
pub fn number(i: usize) -> String {
    format!("+1206555{:04}", i)
}

pub fn pkce_pair() -> (String, String) {
    let verifier = "a-test-code-verifier-that-is-long-enough-for-rfc-7636-0123456789".to_owned();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn query_value(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}

/// Asserts a Zoom error body `{code, message}` with this status and code.
pub async fn assert_zoom_error(r: reqwest::Response, status: u16, code: i64) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}
