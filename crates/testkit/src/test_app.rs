//! `TestApp`: the real peerex web application on a real socket, over a fresh database, for tests that
//! speak HTTP to it like a client would.

use app::{App, Settings};
use domain::auth::{Role, Scope};
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub app: App,
    /// The clock `app` reads: move it on to make time pass.
    pub clock: crate::TestClock,
    /// The database under `app`, for tests that set up or check what no use-case shows.
    pub store: Store,
    /// The URL of the database under `app`, for tests that change it behind the use-cases' back.
    pub db_url: String,
    pub(crate) _dir: Option<crate::TempDir>,
}

pub const ADMIN_EMAIL: &str = "admin@carrier.example";
pub const READER_EMAIL: &str = "reader@carrier.example";
pub const PASSWORD: &str = "correct horse battery staple";
/// The bearer token test platforms' `/metrics` answers.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// Serves `state` on `listener` through peerex's own listener loop (limits, peer addresses).
pub(crate) fn serve(
    listener: tokio::net::TcpListener,
    state: web::WebState,
    limits: web::listener::Limits,
) {
    let access = web::http_config::Access {
        metrics_token: Some(METRICS_TOKEN.into()),
        trusted_proxies: limits.trusted_proxies.clone(),
    };
    let router = web::router(state.with_access(access));
    tokio::spawn(async move {
        web::listener::serve(listener, router, limits, std::future::pending())
            .await
            .expect("serve");
    });
}

impl TestApp {
    /// Starts peerex on `db` with an admin and a read-only operator (password [`PASSWORD`]).
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_limited(db, web::listener::Limits::default()).await
    }

    /// As [`TestApp::spawn`], with the listener's limits given.
    pub async fn spawn_limited(db: Db, limits: web::listener::Limits) -> TestApp {
        Self::spawn_configured(db, limits, Settings::default()).await
    }

    /// As [`TestApp::spawn`], with the use-cases' settings given.
    pub async fn spawn_with(db: Db, settings: Settings) -> TestApp {
        Self::spawn_configured(db, web::listener::Limits::default(), settings).await
    }

    async fn spawn_configured(
        db: Db,
        limits: web::listener::Limits,
        settings: Settings,
    ) -> TestApp {
        let (dir, url) = match db {
            Db::Sqlite => {
                let (dir, path) = crate::sqlite_path();
                (Some(dir), crate::sqlite_url(&path))
            }
            Db::Postgres => (None, crate::postgres_url().await),
        };
        let store = Store::connect(&url).await.expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        let clock = crate::TestClock::new();
        // Webhook secrets are sealed with a key of their own (no Zoom here).
        let app = App::new(store.clone(), Arc::new(clock.clone()), settings)
            .with_webhook_keys(app::token_keys::TokenKeys::generate("test"));
        app.create_user(ADMIN_EMAIL, PASSWORD, Role::Admin, None).await.expect("create admin");
        app.create_user(READER_EMAIL, PASSWORD, Role::ReadOnly, None).await.expect("create reader");
        let state = web::WebState::new(app.clone(), web::Ui::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        serve(listener, state, limits);
        TestApp { addr, url: format!("http://{addr}"), app, clock, store, db_url: url, _dir: dir }
    }

    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A browser signed in to the operator portal as `email`, and its CSRF token.
    pub async fn operator_browser(&self, email: &str) -> (reqwest::Client, String) {
        let client = self.browser();
        let page = client
            .get(format!("{}/operator/login", self.url))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("body");
        let csrf = hidden_value(&page, "csrf").expect("login form has a csrf field");
        let response = client
            .post(format!("{}/operator/login", self.url))
            .form(&[("email", email), ("password", PASSWORD), ("csrf", &csrf)])
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "sign-in should redirect");
        let home = client
            .get(format!("{}/operator", self.url))
            .send()
            .await
            .expect("home")
            .text()
            .await
            .expect("body");
        let csrf =
            hidden_value(&home, "csrf").expect("signed-in pages carry the session's csrf token");
        (client, csrf)
    }

    /// A clear API token with `scope`.
    pub async fn token(&self, scope: Scope) -> String {
        self.app.create_token("test", scope, "test").await.expect("token").0
    }
}

/// The value of the first hidden input named `name` in an HTML page.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}
