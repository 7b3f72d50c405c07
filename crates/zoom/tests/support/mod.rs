//! Shared by the client's tests: the simulator with the example world on a real socket, a browser that
//! walks Zoom's sign-in and consent pages, and the `/_sim/` control calls.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::time::Duration;
use zoom::{Client, Config, Tokens};
use zoom_sim::{Options, SimHandle, Simulator, World};

pub const CLIENT_ID: &str = "exampleCarrierClientId";
pub const CLIENT_SECRET: &str = "exampleCarrierClientSecret";
pub const REDIRECT: &str = "http://127.0.0.1:8080/zoom/oauth/callback";
pub const WEBHOOK_SECRET: &str = "exampleCarrierWebhookSecret";
pub const ACME: &str = "acmeZoomAccount0000001";
pub const ACME_ADMIN: (&str, &str) = ("alice@acme.example", "alice-zoom-password");
pub const GLOBEX_ADMIN: (&str, &str) = ("gina@globex.example", "gina-zoom-password");
pub const TRUNK: &str = "example-carrier-us-east";

pub fn world_json() -> Value {
    serde_json::from_str(include_str!("../../../zoom-sim/examples/world.json"))
        .expect("example world")
}

pub struct Zoom {
    pub sim: Simulator,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub handle: SimHandle,
    control: reqwest::Client,
}

impl Zoom {
    pub async fn start() -> Zoom {
        Zoom::with(Options { control_api: true, ..Options::default() }).await
    }

    pub async fn with(options: Options) -> Zoom {
        Zoom::with_world(world_json(), options).await
    }

    pub async fn with_world(world: Value, options: Options) -> Zoom {
        let _ =
            tracing_subscriber::fmt().with_test_writer().with_env_filter("zoom=debug").try_init();
        let world = World::from_json(&world.to_string()).expect("valid world");
        let sim = Simulator::new(world, options).expect("simulator");
        let (addr, handle) = sim.spawn("127.0.0.1:0".parse().expect("addr")).await.expect("spawn");
        Zoom { sim, url: format!("http://{addr}"), handle, control: reqwest::Client::new() }
    }

    pub fn config(&self) -> Config {
        Config {
            oauth_base: self.url.parse().expect("url"),
            api_base: format!("{}/v2", self.url).parse().expect("url"),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uri: REDIRECT.parse().expect("url"),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }

    /// Signs `who` in to the simulated zoom.us, opens `authorize` (a full URL) and clicks Allow;
    /// returns where Zoom sent the browser back to.
    pub async fn allow(&self, who: (&str, &str), authorize: &url::Url) -> url::Url {
        let b = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser");
        let r = b
            .post(format!("{}/signin", self.url))
            .form(&[("email", who.0), ("password", who.1), ("next", "/")])
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 303, "sign-in redirects");
        let r = b.get(authorize.as_str()).send().await.expect("authorize");
        assert_eq!(r.status(), 200, "consent page");
        let page = r.text().await.expect("page");
        let consent = hidden(&page, "consent").expect("consent field");
        let r = b
            .post(format!("{}/oauth/authorize", self.url))
            .form(&[("consent", consent.as_str()), ("decision", "allow")])
            .send()
            .await
            .expect("allow");
        assert_eq!(r.status(), 303);
        r.headers()["location"].to_str().expect("location").parse().expect("redirect is a URL")
    }

    /// A Marketplace install's code: Add, Allow, no state, no PKCE.
    pub async fn marketplace_code(&self, who: (&str, &str)) -> String {
        let mut url: url::Url = format!("{}/oauth/authorize", self.url).parse().expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT);
        let back = self.allow(who, &url).await;
        assert_eq!(query_value(&back, "state"), None);
        query_value(&back, "code").expect("code")
    }

    /// The carrier's app installed on `who`'s account from the Marketplace, through the client.
    pub async fn install(&self, client: &Client, who: (&str, &str)) -> Tokens {
        let code = self.marketplace_code(who).await;
        client.exchange_code(&code, None).await.expect("code exchange")
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.control.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("control call");
        let status = r.status();
        let text = r.text().await.expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("control JSON")
        }
    }

    /// `POST /_sim/faults`.
    pub async fn fault(&self, fault: Value) {
        self.control(reqwest::Method::POST, "/_sim/faults", Some(fault)).await;
    }

    pub async fn advance(&self, by: Duration) {
        self.control(
            reqwest::Method::POST,
            "/_sim/clock/advance",
            Some(json!({ "ms": by.as_millis() as u64 })),
        )
        .await;
    }

    /// Assigns `number` to the account admin, as the admin would in Zoom.
    pub async fn assign(&self, number: &str) {
        self.control(
            reqwest::Method::PUT,
            &format!("/_sim/numbers/{}/assignment", number.replace('+', "%2B")),
            Some(json!({})),
        )
        .await;
    }

    /// Every number the simulator knows in `account`.
    pub async fn numbers(&self, account: &str) -> Vec<Value> {
        let v = self
            .control(reqwest::Method::GET, &format!("/_sim/numbers?account_id={account}"), None)
            .await;
        match v {
            Value::Array(a) => a,
            Value::Object(mut o) => {
                o.remove("numbers").and_then(|n| n.as_array().cloned()).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

/// `+1206555` followed by four digits: distinct test numbers.
pub fn number(i: usize) -> String {
    format!("+1206555{i:04}")
}

pub fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(number).collect()
}

pub fn query_value(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}
