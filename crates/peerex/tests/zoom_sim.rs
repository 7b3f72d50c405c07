//! `peerex zoom-sim`: the simulator as a person starts it — what it prints is where it is and who can
//! sign in, and those work over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Everything printed so far.
    printed: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_peerex"))
            .arg("zoom-sim")
            .args(args)
            .env("PEEREX_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peerex zoom-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running { child, lines, printed: Vec::new() };
        // The last thing printed is the accounts' users; wait for Acme's admin.
        running.wait_for(|l| {
            l.contains("admin admin@acme.example /") || l.contains("admin alice@acme.example /")
        });
        running
    }

    fn wait_for(&mut self, what: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let found = what(&line);
                self.printed.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "peerex zoom-sim did not print what was expected; it printed:\n{}",
            self.printed.join("\n")
        );
    }

    /// The value printed after `label` (e.g. "API base").
    fn printed(&self, label: &str) -> String {
        let line = self
            .printed
            .iter()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{}", self.printed.join("\n")));
        line.split_whitespace().next().unwrap_or_default().to_owned()
    }

    fn all(&self) -> String {
        self.printed.join("\n")
    }

    /// SIGTERM, as Ctrl-C would; returns whether it exited successfully.
    fn stop(mut self) -> bool {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Running {
    /// A failed test does not leave the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn s2s_token(base: &str, id: &str, secret: &str, account: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "account_credentials"), ("account_id", account)])
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn prints_working_urls_and_credentials_and_keeps_state_across_restarts() {
    let dir = testkit::TempDir::new().expect("tempdir");
    let state = dir.path().join("zoom-state.json");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--control",
        "--platform-url",
        "http://127.0.0.1:7777",
        "--state",
        state.to_str().expect("utf-8"),
    ];
    let sim = Running::start(&args);
    let signin = sim.printed("Sign in to Zoom");
    let base = signin.trim_end_matches("/signin").to_owned();
    assert_eq!(sim.printed("API base"), format!("{base}/v2"));
    assert_eq!(sim.printed("Control API"), format!("{base}/_sim/"));
    assert_eq!(sim.printed("Provider Portal"), format!("{base}/provider-portal"));
    let text = sim.all();
    assert!(
        text.contains("the carrier's staff: ops@demo-carrier.example / ops-zoom-password"),
        "{text}"
    );
    // The demo world: the platform's seeded customer and carrier, the app pointed at the platform.
    assert!(text.contains("Demo Carrier (carrier_code 7001)"), "{text}");
    assert!(text.contains("redirect URI http://127.0.0.1:7777/zoom/oauth/callback"), "{text}");
    assert!(text.contains("webhooks to http://127.0.0.1:7777/zoom/webhook"), "{text}");
    assert!(text.contains("Acme Corp"), "{text}");
    assert!(text.contains("admin admin@acme.example / acme-zoom-password"), "{text}");
    assert!(
        text.contains(
            "client_id demoCarrierS2SClientId / client_secret demoCarrierS2SClientSecret"
        ),
        "{text}"
    );

    // The printed admin credentials sign in to the simulated zoom.us.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = browser
        .post(&signin)
        .form(&[
            ("email", "admin@acme.example"),
            ("password", "acme-zoom-password"),
            ("next", "/marketplace"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303, "the printed credentials sign in");
    let market = browser
        .get(format!("{base}/marketplace?category=Carrier%20Provider%20Exchange"))
        .send()
        .await
        .expect("marketplace")
        .text()
        .await
        .expect("page");
    assert!(market.contains("Demo Carrier Cloud Peering for Zoom"), "{market}");

    // The printed server-to-server credentials give a token the API accepts.
    let r = s2s_token(
        &base,
        "demoCarrierS2SClientId",
        "demoCarrierS2SClientSecret",
        "demoCarrierOwnAccount01",
    )
    .await;
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = r.json().await.expect("json");
    let access = token["access_token"].as_str().expect("access_token").to_owned();
    let r = reqwest::Client::new()
        .get(format!("{base}/v2/number_management/carrier/peering_numbers"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200);

    // The control API is on.
    let accounts: serde_json::Value = reqwest::get(format!("{base}/_sim/accounts"))
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    assert!(
        accounts["accounts"].as_array().expect("list").iter().any(|a| a["name"] == "Acme Corp"),
        "{accounts}"
    );
    assert!(sim.stop(), "Ctrl-C ends it cleanly");

    // Restarted on the same state file, the token issued before still works.
    let sim = Running::start(&args);
    let base = sim.printed("API base").trim_end_matches("/v2").to_owned();
    let r = reqwest::Client::new()
        .get(format!("{base}/v2/number_management/carrier/peering_numbers"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200, "the state survived the restart");
    assert!(sim.stop());
}

#[tokio::test]
async fn without_control_there_is_no_sim_api_and_a_world_file_is_used() {
    let world = concat!(env!("CARGO_MANIFEST_DIR"), "/../zoom-sim/examples/world.json");
    let sim = Running::start(&["--listen", "127.0.0.1:0", "--world", world]);
    let base = sim.printed("API base").trim_end_matches("/v2").to_owned();
    assert!(sim.all().contains("Control API      off"), "{}", sim.all());
    assert!(sim.all().contains("Example Carrier (carrier_code 8801)"), "{}", sim.all());
    let r = reqwest::get(format!("{base}/_sim/accounts")).await.expect("request");
    assert_eq!(r.status(), 404);
    let r = reqwest::get(format!("{base}/.well-known/oauth-authorization-server"))
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(sim.stop());
}

#[test]
fn a_bad_world_file_is_refused_naming_the_field() {
    let dir = testkit::TempDir::new().expect("tempdir");
    let path = dir.path().join("world.json");
    std::fs::write(
        &path,
        r#"{"carrier": {"name": "X", "carrier_code": 0, "sip_trunk_names": ["t"]}}"#,
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["zoom-sim", "--listen", "127.0.0.1:0", "--world"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("carrier.carrier_code"), "{err}");
}

/// `peerex demo` runs Zoom's side too: the simulator's URLs and Acme's Zoom admin are printed, the
/// control API is on, and the carrier's app sends users back to the demo platform.
#[tokio::test]
async fn the_demo_starts_the_simulator_beside_the_platform() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("PEEREX_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut demo = Running { child, lines, printed: Vec::new() };
    demo.wait_for(|l| l.contains("admin admin@acme.example / acme-zoom-password"));
    // The simulator is printed as soon as it runs; the platform's URLs after the seeding.
    demo.wait_for(|l| l.trim_start().starts_with("Operator portal"));
    let portal = demo.printed("Operator portal");
    let platform = portal.trim_end_matches("/operator");
    let zoom = demo.printed("API base").trim_end_matches("/v2").to_owned();
    let text = demo.all();
    assert!(text.contains(&format!("redirect URI {platform}/zoom/oauth/callback")), "{text}");
    assert!(text.contains(&format!("webhooks to {platform}/zoom/webhook")), "{text}");
    let accounts: serde_json::Value = reqwest::get(format!("{zoom}/_sim/accounts"))
        .await
        .expect("control API")
        .json()
        .await
        .expect("json");
    assert!(
        accounts["accounts"].as_array().expect("list").iter().any(|a| a["name"] == "Acme Corp"),
        "{accounts}"
    );
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = browser
        .post(format!("{zoom}/signin"))
        .form(&[("email", "admin@acme.example"), ("password", "acme-zoom-password"), ("next", "/")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303, "Acme's printed Zoom credentials sign in");
    // The platform answers too (and so is serving, with its Ctrl-C handling in place).
    let health = reqwest::get(format!("{platform}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(demo.stop(), "the demo stops cleanly");
}

/// `peerex bench zoom-sim`, small: it drives every account far above Zoom's limit, prints the
/// capacity with limits off and shows the limits hold with them on.
#[test]
fn the_benchmark_prints_capacity_and_the_limits_hold() {
    let out = Command::new(env!("CARGO_BIN_EXE_peerex"))
        .args(["bench", "zoom-sim", "--accounts", "3", "--connections", "2", "--seconds", "1"])
        .env("PEEREX_LOG_LEVEL", "warn")
        .output()
        .expect("run the benchmark");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let off = text.split("limits off (capacity):").nth(1).expect("a limits-off phase");
    let on = text.split("Zoom's limits on").nth(1).expect("a limits-on phase");
    let count = |section: &str, what: &str| -> u64 {
        let after = section.split(what).nth(1).unwrap_or_else(|| panic!("{what} in {section}"));
        after
            .split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .expect("a count")
            .parse()
            .expect("number")
    };
    assert_eq!(count(off, "429 "), 0, "no 429 with limits off:\n{text}");
    assert_eq!(count(off, "other "), 0, "no errors:\n{text}");
    assert!(count(off, "2xx ") > 0, "{text}");
    assert!(count(on, "429 ") > 0, "accounts driven above 40/s get 429s:\n{text}");
    // Counted by the client's clock, so a request sent late in a second may be counted in the next.
    assert!(
        count(on, "within one second: ") <= 45,
        "no account gets much more than 40 in a second:\n{text}"
    );
    assert!(text.contains("× Zoom's 40/s per account"), "{text}");
}
