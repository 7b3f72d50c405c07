//! Several `peerex serve` processes on one database, and the Zoom simulator (`peerex zoom-sim`) as a
//! process of its own: the platform as a carrier runs it, for the tests that kill an instance (kill -9
//! or SIGTERM), start it again, spread requests over instances, or race instances on one Zoom account.
//!
//! ```ignore
//! let mut c = Cluster::new(testkit::Db::Postgres, 3).await;   // ports chosen, simulator started
//! c.set("PEEREX_ZOOM__WORKERS", "4");                           // any setting, for every instance
//! let acme = c.seed_acme("+15550300000-+15550301199", 1000);    // customer, trunk, admin, order
//! c.serve_all().await;                                         // every instance answers /healthz
//! c.install().await;                                           // Acme adds the app in Zoom
//! c.kill9(0); c.terminate(1).await; c.serve(0).await;
//! ```
//!
//! The simulator's demo world sends Acme's admin (and webhooks) to the first instance; the others
//! share its database. Every process is killed when the cluster is dropped.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zoom_sim::demo;

pub const CUSTOMER_EMAIL: &str = "it@acme.example";
pub const CUSTOMER_PASSWORD: &str = "acme-portal-password-1";

/// A child process killed (SIGKILL) when dropped, so a failed test leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `peerex zoom-sim` with the demo world pointed at `platform` (and `extra` arguments, like
/// `--rate-limit 10`); returns it and its base URL.
pub fn start_sim(platform: &str, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["zoom-sim", "--listen", "127.0.0.1:0", "--control", "--platform-url", platform])
        .args(extra)
        .env("PEEREX_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start peerex zoom-sim");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end even once nobody listens: a closed pipe would make its next print fail.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(url) = line.trim().strip_prefix("Sign in to Zoom") {
                let signin = url.split_whitespace().next().unwrap_or_default();
                return (proc, signin.trim_end_matches("/signin").to_owned());
            }
        }
    }
    panic!("peerex zoom-sim did not print its sign-in URL");
}

/// A port free now for `peerex serve --listen`, taken below Linux's ephemeral range (32768-60999):
/// a port from that range, free when probed, can be taken as the source port of any outgoing
/// connection of the tests running beside this one before the instance binds it.
fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..1_000 {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

pub struct Cluster {
    pub db_url: String,
    pub dir: testkit::TempDir,
    /// The simulator's base URL (OAuth, pages, `/_sim/`; the API under `/v2`).
    pub zoom: String,
    pub ports: Vec<u16>,
    instances: Vec<Option<Proc>>,
    env: Vec<(String, String)>,
    _sim: Proc,
}

impl Cluster {
    /// A fresh database, `n` instances' ports (none started) and the simulator.
    pub async fn new(db: testkit::Db, n: usize) -> Cluster {
        Self::with_sim(db, n, &[]).await
    }

    /// As [`Cluster::new`], with arguments for `peerex zoom-sim`.
    pub async fn with_sim(db: testkit::Db, n: usize, sim_args: &[&str]) -> Cluster {
        let (dir, path) = testkit::sqlite_path();
        let db_url = match db {
            testkit::Db::Sqlite => testkit::sqlite_url(&path),
            testkit::Db::Postgres => testkit::postgres_url().await,
        };
        // The platform's ports are chosen first: the simulator's app must know its redirect URI.
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let (sim, zoom) = start_sim(&format!("http://127.0.0.1:{}", ports[0]), sim_args);
        Cluster {
            db_url,
            dir,
            zoom,
            ports,
            instances: (0..n).map(|_| None).collect(),
            env: Vec::new(),
            _sim: sim,
        }
    }

    /// A setting (`PEEREX_...` variable) for every instance and command started from now on.
    pub fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// `peerex` with the cluster's database and Zoom settings.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_peerex"));
        c.env("PEEREX_DATABASE_URL", &self.db_url)
            .env("PEEREX_LOG_LEVEL", "warn")
            .env("PEEREX_ZOOM__CLIENT_ID", demo::CLIENT_ID)
            .env("PEEREX_ZOOM__CLIENT_SECRET", demo::CLIENT_SECRET)
            .env("PEEREX_ZOOM__REDIRECT_URI", format!("{}/zoom/oauth/callback", self.base(0)))
            .env("PEEREX_ZOOM__WEBHOOK_SECRET", demo::SECRET_TOKEN)
            .env("PEEREX_ZOOM__TOKEN_KEY", format!("k1:{}=", "A".repeat(43)))
            .env("PEEREX_ZOOM__OAUTH_BASE", &self.zoom)
            .env("PEEREX_ZOOM__API_BASE", format!("{}/v2", self.zoom))
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs a command that must succeed; its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run peerex");
        assert!(
            out.status.success(),
            "peerex {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Starts instance `i` and waits until it answers `/healthz`.
    pub async fn serve(&mut self, i: usize) {
        assert!(self.instances[i].is_none(), "instance {i} is running already");
        let child = self
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.ports[i])])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peerex serve");
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base(i))).await {
                if r.status().is_success() {
                    self.instances[i] = Some(proc);
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("peerex serve (instance {i}) did not answer /healthz");
    }

    /// Starts every instance not running.
    pub async fn serve_all(&mut self) {
        for i in 0..self.ports.len() {
            if self.instances[i].is_none() {
                self.serve(i).await;
            }
        }
    }

    /// kill -9 of instance `i`: nothing it held is handed back.
    pub fn kill9(&mut self, i: usize) {
        let mut proc = self.instances[i].take().expect("instance running");
        proc.0.kill().expect("kill -9 peerex serve");
        proc.0.wait().expect("reap");
    }

    /// SIGTERM to instance `i` (a clean stop, as systemd or Kubernetes asks); returns once it exited
    /// (panics if it takes more than 20 s), with how long that took.
    pub async fn terminate(&mut self, i: usize) -> Duration {
        let mut proc = self.instances[i].take().expect("instance running");
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &proc.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM");
        while started.elapsed() < Duration::from_secs(20) {
            if let Some(status) = proc.0.try_wait().expect("wait") {
                assert!(status.success(), "peerex serve exited with {status} on SIGTERM");
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("peerex serve did not stop within 20 s of SIGTERM");
    }

    /// The carrier's seed through the CLI: Acme Corp on the demo's Zoom trunk, its portal admin, the
    /// numbers of `range` in stock and an order of `order` of them (none when 0). Returns Acme's id.
    pub fn seed_acme(&self, range: &str, order: usize) -> String {
        let customer: Value = serde_json::from_str(&self.cli(&[
            "customers",
            "create",
            "--name",
            "Acme Corp",
            "--contract-ref",
            "C-ACME",
            "--json",
        ]))
        .expect("customer json");
        let customer = customer["id"].as_str().expect("customer id").to_owned();
        self.cli(&[
            "trunks",
            "add",
            demo::SIP_TRUNK,
            "--destination",
            "sip:sbc1.zoom.example:5061",
        ]);
        self.cli(&["customers", "set-trunk", &customer, demo::SIP_TRUNK]);
        let mut add_admin = self
            .command()
            .args([
                "customers",
                "add-admin",
                &customer,
                "--email",
                CUSTOMER_EMAIL,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("add-admin");
        add_admin
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{CUSTOMER_PASSWORD}\n").as_bytes())
            .expect("password");
        assert!(
            add_admin.wait_with_output().expect("add-admin").status.success(),
            "customers add-admin"
        );
        self.cli(&["numbers", "import", "--range", range]);
        let mut left = order;
        while left > 0 {
            let count = left.min(domain::customer::MAX_ORDER_NUMBERS as usize);
            self.cli(&["orders", "create", "--customer", &customer, "--count", &count.to_string()]);
            left -= count;
        }
        customer
    }

    /// An API token with write scope.
    pub fn token(&self) -> String {
        self.cli(&["tokens", "create", "--name", "cluster-test", "--scope", "write"])
            .trim()
            .to_owned()
    }

    /// Acme's admin adds the app in Zoom and allows it, then signs in to the portal of the first
    /// instance: the account links and the pending order starts being pushed.
    pub async fn install(&self) {
        install(&self.zoom, &self.base(0)).await;
    }

    /// GET on the simulator's control API.
    pub async fn sim(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.zoom))
            .await
            .expect("simulator")
            .json()
            .await
            .expect("simulator json")
    }

    /// POST on the simulator's control API (a fault, an app removal); panics unless it succeeds.
    pub async fn sim_post(&self, path: &str, body: &Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.zoom))
            .json(body)
            .send()
            .await
            .expect("simulator");
        assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap_or_default());
    }

    /// What Acme's Zoom account holds: its numbers, as many times as Zoom lists them.
    pub async fn zoom_numbers(&self) -> Vec<Value> {
        let v = self.sim(&format!("/_sim/numbers?account_id={}", demo::ACME_ACCOUNT_ID)).await;
        v["numbers"].as_array().cloned().unwrap_or_default()
    }

    /// Acme's Zoom account as the simulator's control API shows it (plan, apps, rate-limit tally).
    pub async fn zoom_account(&self) -> Value {
        let v = self.sim("/_sim/accounts").await;
        v["accounts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["id"] == demo::ACME_ACCOUNT_ID).cloned())
            .expect("Acme's Zoom account")
    }

    /// Waits (up to `within`) until `customer` has `count` numbers `state` on instance `i`'s API;
    /// returns how long it took, or panics with the states seen.
    pub async fn wait_for(
        &self,
        i: usize,
        token: &str,
        customer: &str,
        state: &str,
        count: usize,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let numbers = platform_numbers(&self.base(i), token, customer).await;
            let n = numbers.iter().filter(|n| n["state"] == state).count();
            if n == count {
                return started.elapsed();
            }
            if started.elapsed() > within {
                let mut states = std::collections::BTreeMap::<String, usize>::new();
                for n in &numbers {
                    *states.entry(n["state"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
                }
                panic!("after {within:?}: {n} of {count} numbers {state}; states {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Acme's admin adds the app in Zoom and allows it; then signs in to the portal at `base` and
/// confirms the Zoom account: the account links and the pending order starts being pushed.
pub async fn install(zoom: &str, base: &str) {
    testkit::link_acme_at(zoom, base, CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
}

/// The customer's numbers as the API at `base` lists them (every page).
pub async fn platform_numbers(base: &str, token: &str, customer: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = vec![("customer_id", customer.to_owned()), ("limit", "500".to_owned())];
        if let Some(a) = &after {
            q.push(("after", a.clone()));
        }
        let page: Value = http
            .get(format!("{base}/api/v1/numbers"))
            .bearer_auth(token)
            .query(&q)
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("json");
        all.extend(page["numbers"].as_array().cloned().unwrap_or_default());
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => return all,
        }
    }
}
