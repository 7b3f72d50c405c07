//! The platform and the Zoom simulator together on real sockets, wired to each other as in
//! `peerex demo`: the simulator's demo world sends the carrier app's users to this platform's OAuth
//! callback and its webhooks to this platform's `/zoom/webhook`.

use crate::sim::{self, ZoomSim};
use crate::test_app::{Db, TestApp, ADMIN_EMAIL, PASSWORD, READER_EMAIL};
use crate::TestClock;
use app::onboarding::ZoomSetup;
use app::token_keys::TokenKeys;
use app::{App, Settings};
use domain::auth::Role;
use domain::onboarding::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

pub struct ZoomApp {
    pub platform: TestApp,
    pub zoom: ZoomSim,
}

/// The platform's side of the wiring to a simulator at `zoom_url`, tuned for tests: short leases and
/// backoff, no client-side pacing, two workers when workers are started.
pub fn zoom_setup(zoom_url: &str, platform_url: &str) -> ZoomSetup {
    zoom_setup_on(zoom_url, platform_url, &TestClock::new())
}

/// As [`zoom_setup`], with the Zoom client reading `clock` (when a token it gets expires).
pub fn zoom_setup_on(zoom_url: &str, platform_url: &str, clock: &TestClock) -> ZoomSetup {
    let url = |s: &str| s.parse::<url::Url>().expect("a valid URL");
    let config = zoom::Config {
        oauth_base: url(zoom_url),
        api_base: url(&format!("{zoom_url}/v2")),
        client_id: sim::demo::CLIENT_ID.into(),
        client_secret: sim::demo::CLIENT_SECRET.into(),
        redirect_uri: url(&format!("{platform_url}/zoom/oauth/callback")),
        timeout: Duration::from_secs(2),
    };
    let clock = clock.clone();
    let client = zoom::Client::with_clock(config, move || clock.now()).expect("zoom client");
    let mut setup =
        ZoomSetup::new(client, TokenKeys::generate("test"), sim::demo::SECRET_TOKEN.into());
    setup.lease = Duration::from_secs(3);
    setup.retry = RetryPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
        max_attempts: 8,
    };
    setup.requests_per_second = 0.0;
    setup.workers = 2;
    setup.carrier_name = sim::demo::CARRIER_NAME.into();
    setup
}

impl ZoomApp {
    /// The platform on `db` with an admin and a read-only operator, and the simulator's demo world
    /// pointed at it. Job workers are not started: call `run_pending_jobs` or `spawn_workers`.
    pub async fn spawn(db: Db) -> ZoomApp {
        Self::spawn_tuned(db, |_| {}).await
    }

    /// As [`ZoomApp::spawn`], with the Zoom settings changed by `tune` first.
    pub async fn spawn_tuned(db: Db, tune: impl FnOnce(&mut ZoomSetup)) -> ZoomApp {
        Self::spawn_full(db, sim::Options { control_api: true, ..sim::Options::default() }, tune)
            .await
    }

    /// As [`ZoomApp::spawn`], with the platform's use-case settings (what the carrier requires of
    /// its numbers, say).
    pub async fn spawn_with_settings(db: Db, settings: Settings) -> ZoomApp {
        let options = sim::Options { control_api: true, ..sim::Options::default() };
        Self::spawn_configured(db, options, settings, |_| {}).await
    }

    /// As [`ZoomApp::spawn_tuned`], with the simulator's options (a state file, to restart it).
    pub async fn spawn_full(
        db: Db,
        options: sim::Options,
        tune: impl FnOnce(&mut ZoomSetup),
    ) -> ZoomApp {
        Self::spawn_configured(db, options, Settings::default(), tune).await
    }

    async fn spawn_configured(
        db: Db,
        options: sim::Options,
        settings: Settings,
        tune: impl FnOnce(&mut ZoomSetup),
    ) -> ZoomApp {
        let (dir, url) = match db {
            Db::Sqlite => {
                let (dir, path) = crate::sqlite_path();
                (Some(dir), crate::sqlite_url(&path))
            }
            Db::Postgres => (None, crate::postgres_url().await),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let platform_url = format!("http://{addr}");
        let zoom =
            sim::spawn_with(sim::demo::world(&platform_url).expect("demo world"), options).await;
        let store = Store::connect(&url).await.expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        let clock = TestClock::new();
        let mut setup = zoom_setup_on(&zoom.url, &platform_url, &clock);
        tune(&mut setup);
        let app = App::new(store.clone(), Arc::new(clock.clone()), settings).with_zoom(setup);
        app.create_user(ADMIN_EMAIL, PASSWORD, Role::Admin, None).await.expect("create admin");
        app.create_user(READER_EMAIL, PASSWORD, Role::ReadOnly, None).await.expect("create reader");
        let ui = web::Ui { carrier_name: sim::demo::CARRIER_NAME.into(), ..web::Ui::default() };
        let state = web::WebState::new(app.clone(), ui);
        crate::test_app::serve(listener, state, web::listener::Limits::default());
        ZoomApp {
            platform: TestApp {
                addr,
                url: platform_url,
                app,
                clock,
                store,
                db_url: url,
                _dir: dir,
            },
            zoom,
        }
    }

    pub fn app(&self) -> &App {
        &self.platform.app
    }

    /// The clock the platform reads (the simulator keeps its own).
    pub fn clock(&self) -> &TestClock {
        &self.platform.clock
    }

    /// The platform's database, for tests that set up or check what no use-case shows.
    pub fn store(&self) -> &Store {
        &self.platform.store
    }

    /// Binds `customer` to the demo's Zoom trunk (created the first time): without a trunk of its own
    /// no number of a customer is pushed to Zoom.
    pub async fn bind_demo_trunk(&self, customer: domain::CustomerId) {
        let app = self.app();
        if app.trunk(sim::demo::SIP_TRUNK).await.is_err() {
            let input = app::trunks::TrunkInput {
                destinations: vec!["sip:sbc.zoom-test.invalid:5061;transport=tls"],
                country_code: "1",
                national_prefix: "1",
                international_prefix: "011",
            };
            app.create_trunk(sim::demo::SIP_TRUNK, &input).await.expect("demo trunk");
        }
        app.set_customer_trunk(customer, Some(sim::demo::SIP_TRUNK)).await.expect("bind trunk");
    }

    /// Runs every job due now (pushes, polls) to the end; for deterministic tests.
    pub async fn run_pending_jobs(&self) -> Vec<app::jobs::JobRun> {
        self.platform.app.run_pending_jobs().await.expect("run pending jobs")
    }

    /// Moves the clock on to when the next pending job comes due: its retry's backoff, or Zoom's rate
    /// limit on its account, has passed. Returns that time, or `None` (the clock left alone) when no
    /// job is waiting, when the next is further than `beyond` from now (the next poll of Zoom, say,
    /// which a test waiting for a retry should not bring forward), or while a job is running: moving
    /// the clock then could cut a live worker's lease short and hand its job to another.
    pub async fn skip_to_next_job(&self, beyond: time::Duration) -> Option<time::OffsetDateTime> {
        use domain::onboarding::JobState;
        let store = &self.platform.store;
        let mut next = None;
        for j in store.list_jobs(None, 10_000).await.expect("list jobs") {
            match j.state {
                JobState::Running => return None,
                JobState::Pending => {}
                _ => continue,
            }
            let mut due = j.run_after;
            // The account's share of Zoom's rate limit holds its jobs back too.
            if let Some(account) = &j.zoom_account {
                let link = store.live_link_by_account(account).await.expect("link");
                if let Some(not_before) = link.and_then(|l| l.not_before) {
                    due = due.max(not_before);
                }
            }
            next = Some(next.map_or(due, |n: time::OffsetDateTime| n.min(due)));
        }
        let next = next?;
        if next - self.clock().now() > beyond {
            return None;
        }
        self.clock().advance_to(next);
        Some(next)
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

impl ZoomApp {
    /// The whole Marketplace install as a browser does it (see [`link_acme_at`]), signing in to the
    /// portal as `portal_email` with [`PASSWORD`]. Returns the signed-in browser.
    pub async fn link_acme(&self, portal_email: &str) -> reqwest::Client {
        link_acme_at(&self.zoom.url, &self.platform.url, portal_email, PASSWORD).await
    }
}

/// The whole Marketplace install as a browser does it, against the simulator at `zoom` and the
/// platform at `platform_url`: sign in to Zoom as Acme's admin, Add → Allow, land on the platform's
/// callback, sign in to the portal as `portal_email`, confirm the Zoom account. Panics unless the
/// account ends up linked. Returns the signed-in browser.
pub async fn link_acme_at(
    zoom: &str,
    platform_url: &str,
    portal_email: &str,
    portal_password: &str,
) -> reqwest::Client {
    let b = install_acme_at(zoom, platform_url, portal_email, portal_password).await;
    let r = confirm_install(&b, platform_url).await;
    assert_eq!(location(&r), "/portal", "linked: {}", r.text().await.unwrap_or_default());
    b
}

/// As [`link_acme_at`], up to the confirmation: the browser, signed in to the portal as
/// `portal_email`, has the install waiting on `/portal/install`.
pub async fn install_acme_at(
    zoom: &str,
    platform_url: &str,
    portal_email: &str,
    portal_password: &str,
) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = b
        .post(format!("{zoom}/signin"))
        .form(&[
            ("email", sim::demo::ACME_ADMIN_EMAIL),
            ("password", sim::demo::ACME_ADMIN_PASSWORD),
            ("next", "/profile"),
        ])
        .send()
        .await
        .expect("zoom sign-in");
    assert!(r.status().is_redirection(), "zoom sign-in: {}", r.status());
    let redirect = format!("{platform_url}/zoom/oauth/callback");
    let page = b
        .get(format!("{zoom}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", sim::demo::CLIENT_ID),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await
        .expect("consent")
        .text()
        .await
        .expect("consent page");
    let consent =
        crate::hidden_value(&page, "consent").unwrap_or_else(|| panic!("consent form: {page}"));
    let r = b
        .post(format!("{zoom}/oauth/authorize"))
        .form(&[("consent", consent.as_str()), ("decision", "allow")])
        .send()
        .await
        .expect("allow");
    let r = b.get(location(&r)).send().await.expect("callback");
    assert_eq!(location(&r), "/portal/install");
    let page = b
        .get(format!("{platform_url}/portal/login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("login page");
    let csrf = crate::hidden_value(&page, "csrf").expect("csrf");
    let r = b
        .post(format!("{platform_url}/portal/login"))
        .form(&[("email", portal_email), ("password", portal_password), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("portal sign-in");
    assert_eq!(location(&r), "/portal/install", "{}", r.text().await.unwrap_or_default());
    b
}

/// A signed-in customer admin's browser, with a Zoom install waiting, confirms it on
/// `/portal/install` as shown. Returns the confirmation's answer.
pub async fn confirm_install(b: &reqwest::Client, platform_url: &str) -> reqwest::Response {
    let page = b
        .get(format!("{platform_url}/portal/install"))
        .send()
        .await
        .expect("confirmation page")
        .text()
        .await
        .expect("confirmation page");
    let csrf = crate::hidden_value(&page, "csrf").unwrap_or_else(|| panic!("no form: {page}"));
    let account =
        crate::hidden_value(&page, "account").unwrap_or_else(|| panic!("no form: {page}"));
    b.post(format!("{platform_url}/portal/install"))
        .form(&[("csrf", csrf.as_str()), ("account", account.as_str())])
        .send()
        .await
        .expect("confirm")
}
