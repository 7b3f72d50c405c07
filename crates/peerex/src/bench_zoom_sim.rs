//! `peerex bench zoom-sim`: shows the Zoom simulator is never the bottleneck of a test or a rehearsal.
//! Zoom lets an account make 40 LIGHT requests a second (Business plan); the simulator should serve at
//! least ten times that for 100 accounts at once, i.e. 40,000 requests a second in total.
//!
//! The simulator runs in its own process (`peerex zoom-sim`, a world of N accounts with 10 numbers
//! each), so its CPU time can be read apart from the load generator's. Each account is driven by
//! several connections with no pacing (far above 40/s), 4 reads (list the account's peering numbers) to
//! 1 write (PATCH one number). Two phases: limits off (capacity), then Zoom's limits on (the simulator
//! answers 40/s per account and 429s the rest). Printed: requests per second in total and per account,
//! latencies, and requests per CPU-second of the simulator process — its capacity per core, which is
//! what matters when the load generator shares the machine's cores with it.

use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CARRIER_CODE: u32 = 8800;
const TRUNK: &str = "bench-trunk";
const CLIENT_ID: &str = "benchCarrierClientId";
const CLIENT_SECRET: &str = "benchCarrierClientSecret";
const REDIRECT: &str = "http://127.0.0.1:9/zoom/oauth/callback";
const PASSWORD: &str = "bench-zoom-password";
const NUMBERS_PER_ACCOUNT: usize = 10;
/// Zoom Phone's LIGHT limit on a Business account [doc].
const ZOOM_LIMIT: f64 = 40.0;

#[derive(clap::Args)]
pub struct ZoomSimBench {
    /// Zoom accounts driven at once.
    #[arg(long, default_value_t = 100)]
    accounts: usize,
    /// Connections per account, each sending its next request as soon as the last is answered.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

struct Phase {
    requests: u64,
    ok: u64,
    limited: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    /// Simulator process CPU seconds spent in the phase (user + system), when /proc tells.
    cpu: Option<f64>,
    /// The most 2xx answers one account got within one wall-clock second.
    max_ok_in_a_second: u64,
}

impl Phase {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

pub async fn run(args: ZoomSimBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!((1..=10_000).contains(&args.accounts), "--accounts must be 1 to 10000");
    anyhow::ensure!((1..=64).contains(&args.connections), "--connections must be 1 to 64");
    anyhow::ensure!((1..=600).contains(&args.seconds), "--seconds must be 1 to 600");
    let dir = std::env::temp_dir().join(format!("peerex-bench-zoom-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let world = dir.join("world.json");
    std::fs::write(&world, world_json(args.accounts).to_string())?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "zoom-sim bench: {} accounts × {} connections, {} s per phase, {} numbers per account; simulator in its own process; {cores} cores shared with the load generator",
        args.accounts, args.connections, args.seconds, NUMBERS_PER_ACCOUNT
    );

    let off = phase(&world, "off", &args).await;
    let on = phase(&world, "by-plan", &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (off, on) = (off?, on?);

    let needed = 10.0 * ZOOM_LIMIT * args.accounts as f64;
    println!("\nlimits off (capacity):");
    print_phase(&off, args.accounts);
    println!("\nZoom's limits on (Business: {ZOOM_LIMIT} LIGHT requests/s per account):");
    print_phase(&on, args.accounts);
    println!("  most requests served to one account within one second: {} (Zoom's limit: {ZOOM_LIMIT}); the rest were answered 429", on.max_ok_in_a_second);

    let total = off.rate(off.requests);
    println!("\nresult:");
    println!(
        "  served {total:.0} requests/s for {} accounts = {:.1}× Zoom's {ZOOM_LIMIT}/s per account (goal ≥ 10×, i.e. ≥ {needed:.0}/s)",
        args.accounts,
        total / (ZOOM_LIMIT * args.accounts as f64)
    );
    if let Some(cpu) = off.cpu.filter(|c| *c > 0.0) {
        let per_core = off.requests as f64 / cpu;
        println!(
            "  simulator CPU: {cpu:.2} s for {} requests = {per_core:.0} requests per CPU-second; on {cores} cores of its own: {:.0}/s = {:.1}× the goal's total",
            off.requests,
            per_core * cores as f64,
            per_core * cores as f64 / needed
        );
    }
    println!("  (the load generator runs on the same cores; the per-CPU-second figure is the simulator's own cost)");
    Ok(ExitCode::SUCCESS)
}

fn print_phase(p: &Phase, accounts: usize) {
    println!(
        "  {} requests in {:.2} s: {:.0}/s total, {:.1}/s per account; 2xx {}, 429 {}, other {}",
        p.requests,
        p.elapsed.as_secs_f64(),
        p.rate(p.requests),
        p.rate(p.requests) / accounts as f64,
        p.ok,
        p.limited,
        p.errors
    );
    println!("  latency p50 {:.2} ms, p99 {:.2} ms", p.percentile_ms(0.5), p.percentile_ms(0.99));
}

/// A world of `accounts` Business accounts with Zoom Phone, each with numbers this carrier added.
fn world_json(accounts: usize) -> serde_json::Value {
    let accounts: Vec<_> = (0..accounts)
        .map(|i| {
            let numbers: Vec<_> = (0..NUMBERS_PER_ACCOUNT).map(|j| serde_json::json!({ "phone_number": number(i, j), "sip_trunk_name": TRUNK })).collect();
            serde_json::json!({
                "id": format!("benchAccount{i:06}"), "name": format!("Bench {i}"), "plan": "business", "zoom_phone": true,
                "admin": { "email": admin(i), "password": PASSWORD, "phone_license": true },
                "phone_numbers": numbers,
            })
        })
        .collect();
    serde_json::json!({
        "carrier": { "name": "Bench Carrier", "carrier_code": CARRIER_CODE, "sip_trunk_names": [TRUNK] },
        "apps": [{
            "name": "Bench Carrier Cloud Peering", "kind": "admin-managed", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT],
            "scopes": ["number_management_numbers:read:admin", "number_management_numbers:write:admin"],
        }],
        "accounts": accounts,
    })
}

fn admin(i: usize) -> String {
    format!("admin{i}@bench.example")
}

fn number(account: usize, j: usize) -> String {
    format!("+1555{:04}{:03}", account, j)
}

/// Starts `peerex zoom-sim` with `rate_limit`, installs the app on every account, drives the load,
/// stops the simulator.
async fn phase(
    world: &std::path::Path,
    rate_limit: &str,
    args: &ZoomSimBench,
) -> anyhow::Result<Phase> {
    let exe = std::env::current_exe().context("cannot find the peerex binary")?;
    let mut child = std::process::Command::new(exe)
        .args(["zoom-sim", "--listen", "127.0.0.1:0", "--rate-limit", rate_limit, "--world"])
        .arg(world)
        .env("PEEREX_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start peerex zoom-sim")?;
    let result = drive(&mut child, args).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn drive(child: &mut Child, args: &ZoomSimBench) -> anyhow::Result<Phase> {
    let base = api_base(child)?;
    let mut tokens = Vec::with_capacity(args.accounts);
    for i in 0..args.accounts {
        tokens.push(
            install(&base, i)
                .await
                .with_context(|| format!("installing the app on account {i}"))?,
        );
    }
    let pid = child.id();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for (account, token) in tokens.into_iter().enumerate() {
        let token = Arc::new(token);
        for c in 0..args.connections {
            let (token, base) = (token.clone(), base.clone());
            tasks
                .push(tokio::spawn(async move { worker(base, token, account, c, deadline).await }));
        }
    }
    let mut p = Phase {
        requests: 0,
        ok: 0,
        limited: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        cpu: None,
        max_ok_in_a_second: 0,
    };
    let mut per_second: std::collections::HashMap<(usize, u64), u64> =
        std::collections::HashMap::new();
    for t in tasks {
        let w = t.await?;
        p.requests += w.ok + w.limited + w.errors;
        p.ok += w.ok;
        p.limited += w.limited;
        p.errors += w.errors;
        for second in w.ok_seconds {
            *per_second.entry((w.account, second)).or_default() += 1;
        }
        p.latencies_us.extend(w.latencies_us);
    }
    p.elapsed = started.elapsed();
    p.max_ok_in_a_second = per_second.values().copied().max().unwrap_or(0);
    p.cpu = cpu_before.zip(cpu_seconds(pid)).map(|(a, b)| b - a);
    p.latencies_us.sort_unstable();
    Ok(p)
}

struct Worker {
    account: usize,
    /// The wall-clock second (unix) of each 2xx answer.
    ok_seconds: Vec<u64>,
    ok: u64,
    limited: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

async fn worker(
    base: String,
    token: Arc<String>,
    account: usize,
    conn: usize,
    deadline: Instant,
) -> Worker {
    let mut w = Worker {
        account,
        ok_seconds: Vec::new(),
        ok: 0,
        limited: 0,
        errors: 0,
        latencies_us: Vec::new(),
    };
    let Some((host, prefix)) = base.strip_prefix("http://").and_then(|r| r.split_once('/')) else {
        return w;
    };
    let path = format!("/{prefix}/number_management/peering_numbers");
    let list = format!(
        "GET {path}?page_size=30 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();
    let patches: Vec<Vec<u8>> = (0..NUMBERS_PER_ACCOUNT)
        .map(|j| {
            let body = serde_json::json!({ "phone_numbers": [{ "phone_number": number(account, j), "status": true }] }).to_string();
            format!(
                "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
        .collect();
    let mut conn_io = None;
    let mut body = Vec::new();
    let mut i = 0usize;
    while Instant::now() < deadline {
        if conn_io.is_none() {
            conn_io =
                tokio::net::TcpStream::connect(host).await.ok().map(tokio::io::BufStream::new);
        }
        let Some(io) = conn_io.as_mut() else {
            w.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let request = if i % 5 == 4 { &patches[(conn + i) % NUMBERS_PER_ACCOUNT] } else { &list };
        let sent = Instant::now();
        let status = exchange(io, request, &mut body).await;
        w.latencies_us.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match status {
            Some(200..=299) => {
                w.ok += 1;
                w.ok_seconds.push(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                );
            }
            Some(429) => w.limited += 1,
            Some(_) => w.errors += 1,
            None => {
                w.errors += 1;
                conn_io = None;
            }
        }
        i += 1;
    }
    w
}

/// One HTTP/1.1 request and its response on a kept-alive connection; the status, or None when the
/// connection failed. A bare-bones client on purpose: the load generator shares the machine with the
/// simulator, and every cycle it spends is one the simulator does not get.
async fn exchange(
    io: &mut tokio::io::BufStream<tokio::net::TcpStream>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> Option<u16> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    io.write_all(request).await.ok()?;
    io.flush().await.ok()?;
    let mut line = String::new();
    io.read_line(&mut line).await.ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    loop {
        line.clear();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    body.resize(length, 0);
    io.read_exact(body).await.ok()?;
    Some(status)
}

/// Reads the simulator's printed API base (`  API base  http://.../v2`).
fn api_base(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout from peerex zoom-sim")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().context("peerex zoom-sim stopped before printing its URLs")??;
        if let Some(rest) = line.trim().strip_prefix("API base") {
            break rest.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    // Keep reading (and dropping) what it prints so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(base)
}

/// The Marketplace install as the account's admin does it: sign in, Allow, then the code exchange.
async fn install(api_base: &str, account: usize) -> anyhow::Result<String> {
    let base = api_base.trim_end_matches("/v2");
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let email = admin(account);
    browser
        .post(format!("{base}/signin"))
        .form(&[("email", email.as_str()), ("password", PASSWORD), ("next", "/")])
        .send()
        .await?
        .error_for_status()?;
    let consent_page = browser
        .get(format!("{base}/oauth/authorize"))
        .query(&[("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", REDIRECT)])
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let marker = "name=\"consent\" value=\"";
    let start = consent_page.find(marker).context("no consent form")? + marker.len();
    let consent = consent_page[start..].split('"').next().unwrap_or_default();
    let allowed = browser
        .post(format!("{base}/oauth/authorize"))
        .form(&[("consent", consent), ("decision", "allow")])
        .send()
        .await?;
    let location = allowed
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .context("Allow did not redirect")?;
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|c| c.split('&').next())
        .context("no code in the redirect")?
        .to_owned();
    let token: serde_json::Value = browser
        .post(format!("{base}/oauth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    token["access_token"].as_str().map(str::to_owned).context("no access_token")
}

/// User + system CPU seconds of process `pid` so far (Linux /proc; None elsewhere).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}
