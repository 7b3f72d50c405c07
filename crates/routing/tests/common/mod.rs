//! The world the routing tests share: numbers in a store on either database, peerex's routing
//! listeners on real sockets, sipp and the shipped Kamailio configuration in front of them.
#![allow(dead_code)] // each test file uses its own part

use domain::customer::{ContractState, Customer};
use domain::number::NumberAttrs;
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{Actor, CustomerId, Number, NumberState, PhoneNumber};
use routing::{RoutingConfig, Started};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use store::Store;
use testkit::Db;

pub struct World {
    pub store: Store,
    pub customer: CustomerId,
    pub started: Started,
    _dir: Option<tempfile::TempDir>,
}

pub const ACTIVE: &str = "+15550100001";
pub const SUSPENDED: &str = "+15550100002";
pub const RELEASED: &str = "+15550100003";
pub const UNKNOWN: &str = "+15550100999";

pub async fn set_state(
    store: &Store,
    e164: &str,
    state: NumberState,
    customer: Option<CustomerId>,
) {
    let e164 = PhoneNumber::parse(e164).unwrap();
    assert!(store.force_number_state(&e164, state, customer).await.unwrap());
}

pub async fn world(db: Db) -> World {
    world_with(db, |_| {}).await
}

/// [`world`] with its routing configuration changed by `tune` first.
pub async fn world_with(db: Db, tune: impl FnOnce(&mut RoutingConfig)) -> World {
    let seeded = seed(db).await;
    let mut config = RoutingConfig {
        http_listen: "127.0.0.1:0".into(),
        sip_listen: "127.0.0.1:0".into(),
        // The tests' proxies (sipp, Kamailio) ask from 127.0.0.1; strangers from elsewhere on
        // loopback (adversarial_sip.rs).
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    tune(&mut config);
    let started = routing::start(seeded.store.clone(), &config).await.unwrap();
    assert!(
        routing::wait_ready(&started.routing, Duration::from_secs(10)).await,
        "snapshot loaded"
    );
    World { store: seeded.store, customer: seeded.customer, started, _dir: seeded.dir }
}

/// A fresh database with trunk `zoom-a`, a customer on it, and the numbers [`ACTIVE`],
/// [`SUSPENDED`] (the customer's) and [`RELEASED`].
pub struct Seeded {
    pub url: String,
    pub store: Store,
    pub customer: CustomerId,
    pub dir: Option<tempfile::TempDir>,
}

pub async fn seed(db: Db) -> Seeded {
    let (url, dir) = match db {
        Db::Sqlite => {
            let (dir, path) = testkit::sqlite_path();
            (testkit::sqlite_url(&path), Some(dir))
        }
        Db::Postgres => (testkit::postgres_url().await, None),
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let trunk = ZoomTrunk::parse(
        "zoom-a",
        &["sip:zoom-a.example:5061;transport=tls"],
        NumberingRule::nanp(),
        now,
    )
    .unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let c = Customer {
        id: CustomerId::new(),
        name: "Acme".into(),
        contract_ref: "C-1".into(),
        contract_state: ContractState::Active,
        created_at: now,
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&c).await.unwrap();
    store
        .set_customer_trunk(c.id, Some(&domain::trunk::TrunkName::parse("zoom-a").unwrap()))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    let numbers: Vec<_> = [ACTIVE, SUSPENDED, RELEASED]
        .iter()
        .map(|n| Number::imported(PhoneNumber::parse(n).unwrap(), NumberAttrs::default(), &by, now))
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    set_state(&store, ACTIVE, NumberState::Active, Some(c.id)).await;
    set_state(&store, SUSPENDED, NumberState::Suspended, Some(c.id)).await;
    set_state(&store, RELEASED, NumberState::Aging, None).await;
    Seeded { url, store, customer: c.id, dir }
}

pub async fn lookup(w: &World, query: &str) -> (u16, Value) {
    let r =
        reqwest::get(format!("http://{}/route?{query}", w.started.http.unwrap())).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Runs one sipp INVITE for `number`, expecting `status`; true when sipp saw it.
pub fn sipp(sip: std::net::SocketAddr, transport: &str, number: &str, status: u16) -> bool {
    sipp_scenario(
        sip,
        transport,
        number,
        &include_str!("../sipp-expect.xml").replace("EXPECTED", &status.to_string()),
    )
}

/// Runs one call of a sipp UAC `scenario` to `number`; true when it completed.
pub fn sipp_scenario(
    sip: std::net::SocketAddr,
    transport: &str,
    number: &str,
    scenario: &str,
) -> bool {
    sipp_scenario_from("127.0.0.1", sip, transport, number, scenario)
}

/// [`sipp_scenario`] sent from local address `ip` (any 127.x.y.z on loopback).
pub fn sipp_scenario_from(
    ip: &str,
    sip: std::net::SocketAddr,
    transport: &str,
    number: &str,
    scenario: &str,
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uac.xml");
    std::fs::write(&path, scenario).unwrap();
    let out = std::process::Command::new("sipp")
        .arg(sip.to_string())
        .args([
            "-sf",
            path.to_str().unwrap(),
            "-s",
            number,
            "-m",
            "1",
            "-t",
            transport,
            "-i",
            ip,
            "-p",
            "0",
            "-timeout",
            "10s",
            "-nostdin",
        ])
        .args(["-trace_err", "-error_file", dir.path().join("err.log").to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    let ok = out.status.success();
    if !ok {
        eprintln!(
            "sipp {number}: {}\n{}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
            std::fs::read_to_string(dir.path().join("err.log")).unwrap_or_default()
        );
    }
    ok
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when the test ends, however it ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        // SIGTERM first: Kamailio's main process then stops its children.
        let _ =
            std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A sipp UAS on `ip`:`port` taking one call whose Request-URI is for `e164_digits` (Zoom's SBC, or a
/// PSTN gateway); its log goes to `dir`.
pub fn spawn_uas(dir: &Path, name: &str, ip: &str, port: u16, e164_digits: &str) -> Child {
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, include_str!("../sipp-zoom-uas.xml").replace("E164_DIGITS", e164_digits))
        .unwrap();
    let uas = std::process::Command::new("sipp")
        .args(["-sf", path.to_str().unwrap(), "-i", ip, "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "30s", "-trace_err", "-error_file"])
        .arg(dir.join(format!("{name}-err.log")))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp is installed (scripts/test installs sip-tester)");
    Child(uas)
}

/// Waits up to `within` for a sipp UAS to end: Some(true) when it completed its call.
pub async fn uas_done(mut uas: Child, within: Duration) -> Option<bool> {
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        loop {
            if let Some(s) = uas.0.try_wait().unwrap() {
                return Some(s.success());
            }
            if t0.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
}

/// The shipped `contrib/kamailio/kamailio.cfg` running in front of `w`'s peerex, on 127.0.0.1;
/// `-A` definitions in `defines` (`WITH_HTTP`, `ZOOM_SBC_NETS="..."`, ...). Its log goes to `dir`.
pub struct Kamailio {
    pub addr: std::net::SocketAddr,
    _child: Child,
    log: std::path::PathBuf,
}

impl Kamailio {
    pub async fn start(w: &World, dir: &Path, defines: &[String]) -> Kamailio {
        Kamailio::start_at(w.started.sip.unwrap(), w.started.http.unwrap(), dir, defines).await
    }

    /// Kamailio asking peerex at these addresses (which need not answer).
    pub async fn start_at(
        peerex_sip: std::net::SocketAddr,
        peerex_http: std::net::SocketAddr,
        dir: &Path,
        defines: &[String],
    ) -> Kamailio {
        let port = free_udp_port();
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/kamailio/kamailio.cfg");
        let log = dir.join("kamailio.log");
        // One UDP worker: with two, a callee's 180 and 200 can be relayed by different processes and
        // reach the caller in the wrong order on a loaded machine, which sipp's caller takes as a
        // failed call. The order of answers is what these tests rely on, not Kamailio's parallelism.
        let mut cmd = std::process::Command::new("kamailio");
        cmd.args(["-f", config, "-DD", "-E", "-n", "1", "-m", "32", "-M", "8", "-Y"])
            .arg(dir)
            .arg("-A")
            .arg(format!("LISTEN=udp:127.0.0.1:{port}"))
            .arg("-A")
            .arg(format!("PEEREX_SIP=\"sip:{peerex_sip}\""))
            .arg("-A")
            .arg(format!("PEEREX_HTTP=\"http://{peerex_http}\""))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for d in defines {
            cmd.arg("-A").arg(d);
        }
        let child = Child(cmd.spawn().expect("kamailio is installed (scripts/test installs it)"));
        let k = Kamailio { addr: ([127, 0, 0, 1], port).into(), _child: child, log };
        assert!(
            tokio::task::spawn_blocking(move || routing::sip::answers_options(
                port,
                Duration::from_secs(10)
            ))
            .await
            .unwrap(),
            "kamailio did not start:\n{}",
            k.log()
        );
        k
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Adds a trunk named `name` whose one destination is `destination`, binds the world's customer to
/// it, and waits until the lookup API routes by it.
pub async fn use_trunk(w: &World, name: &str, destination: &str) {
    let now = time::OffsetDateTime::now_utc();
    let zoom = ZoomTrunk::parse(name, &[destination], NumberingRule::nanp(), now).unwrap();
    w.store.insert_trunk(&zoom).await.unwrap();
    w.store.set_customer_trunk(w.customer, Some(&zoom.name)).await.unwrap();
    let t0 = Instant::now();
    while lookup(w, "to=%2B15550100001").await.1["trunk"] != name {
        assert!(t0.elapsed() < Duration::from_secs(2), "trunk change not seen");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
