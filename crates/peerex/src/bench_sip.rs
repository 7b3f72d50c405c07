//! `peerex bench sip` (issue 7): peerex's SIP redirect server against the Kamailio `htable` baseline
//! of `reference/routing/` on the same numbers and the same sipp load, each server pinned to one core
//! (sipp and tcpdump on the other); then the lookup API under `wrk`, change → decision latency
//! through the database, and the snapshot's memory per number.
//!
//! Latency is INVITE → final response as tcpdump timestamps them on loopback (sipp's own RTTs come
//! in 4 ms steps here); CPU is the server's user + system time over the load, per answered call.

use domain::routing::{Direction, NumberFacts, RoutingCustomer};
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{CustomerId, NumberState, PhoneNumber};
use routing::snapshot::Snapshot;
use std::collections::HashMap;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct SipBench {
    /// Numbers in both servers' tables.
    #[arg(long, default_value_t = 1_000_000)]
    numbers: u64,
    /// INVITEs per second sipp sends.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds of load per server.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// A directory with another kamailio-htable-redirect.cfg and sipp-redirect-uac.xml to measure
    /// against; by default the copies of `reference/routing/` compiled into peerex.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The core servers are pinned to (sipp, wrk and tcpdump get the others).
    #[arg(long, default_value_t = 1)]
    server_core: usize,
    /// Seconds of `wrk` against the lookup API.
    #[arg(long, default_value_t = 10)]
    http_seconds: u64,
    /// Changes timed from the database to a decision.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Also time change -> decision through PostgreSQL (LISTEN/NOTIFY), in a fresh database made on
    /// this server (`scripts/pg-throwaway` starts one).
    #[arg(long)]
    postgres: Option<String>,
    /// Kamailio's shared memory in MB (its db_text copy of the table and the htable both live there).
    #[arg(long, default_value_t = 4096)]
    kamailio_shm_mb: u64,
    /// Only time the redirect server's message handling in this process, no sockets and no other
    /// server: parse and answer a few typical requests (an SBC's INVITE with two Vias and SDP, a
    /// compact-form INVITE, an OPTIONS keep-alive, an INVITE for an unknown number), printing the
    /// best of `--rounds` rounds of `--iterations` each in ns/message. Needs none of the tools.
    #[arg(long)]
    in_process: bool,
    /// Rounds for `--in-process` (the best is reported, the others show the noise).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Messages handled per round for `--in-process`.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
    /// Times each figure is measured (Kamailio, peerex, the echo floor, the lookup API); the worst
    /// run of each is what is held against its goal.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Threads answering SIP over UDP in peerex's server (`[routing] sip_threads`), all on the
    /// server core for the comparison with Kamailio.
    #[arg(long, default_value_t = 1)]
    sip_threads: usize,
    /// Threads serving the lookup API (`[routing] http_threads`), likewise.
    #[arg(long, default_value_t = 1)]
    http_threads: usize,
    /// Seconds of saturation load for the scale figures (server on one core, then on every core).
    #[arg(long, default_value_t = 10)]
    scale_seconds: u64,
    /// Internal: the per-address datagram limit of the server child (the saturation load comes
    /// from one address, so the scale figures run without it).
    #[arg(long, hide = true, default_value_t = routing::RoutingConfig::default().sip_source_limit)]
    sip_source_limit: u32,
    /// Run every server and load tool of the bench (Kamailio and peerex alike, sipp, tcpdump, wrk,
    /// and this process, which runs the generator) in scheduling groups of their own at nice -20
    /// (root; Linux autogroups), so that other work on a shared machine takes less of their cores.
    /// This process's group is its terminal session's: what else runs in that session is raised
    /// with it.
    #[arg(long)]
    isolate: bool,
    /// Serve without the Prometheus recorder `peerex serve` installs (to see what metrics cost).
    #[arg(long)]
    no_metrics: bool,
    /// Internal: serve the redirect server and the lookup API over generated numbers (the child
    /// process the benchmark pins to one core).
    #[arg(long, hide = true)]
    serve_only: bool,
    /// Internal: a bare recvmmsg/sendmmsg UDP echo (the physical floor), in a child process.
    #[arg(long, hide = true)]
    echo_only: bool,
}

const TRUNK: &str = "zoom-a";
const FIRST: u64 = 15_550_000_000;

/// The same table for both servers: every 20th number suspended, every 20th (offset 1) released
/// (`aging`), the rest active, over 1,000 customers on one trunk.
fn state_of(i: u64) -> NumberState {
    match i % 20 {
        0 => NumberState::Suspended,
        1 => NumberState::Aging,
        _ => NumberState::Active,
    }
}

pub async fn run(args: SipBench) -> anyhow::Result<ExitCode> {
    if args.serve_only {
        return serve_only(&args).await;
    }
    if args.echo_only {
        let socket = routing::sip::bind_udp("127.0.0.1:0")?;
        println!("echo={}\nready", socket.local_addr()?);
        crate::bench_udp::serve_echo(&socket)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.in_process {
        return in_process(&args);
    }
    for (tool, package) in [
        ("sipp", "sip-tester"),
        ("kamailio", "kamailio"),
        ("tcpdump", "tcpdump"),
        ("taskset", "util-linux"),
        ("wrk", "wrk"),
    ] {
        anyhow::ensure!(which(tool), "bench sip needs `{tool}`: apt-get install {package}");
    }
    anyhow::ensure!(args.runs >= 1, "--runs: at least 1");
    if args.isolate {
        ISOLATE.store(true, std::sync::atomic::Ordering::Relaxed);
        std::fs::write("/proc/self/autogroup", "-20")
            .map_err(|e| anyhow::anyhow!("--isolate: /proc/self/autogroup: {e} (needs root)"))?;
    }
    let dir = tempdir()?;
    let baseline = baseline_dir(args.baseline.clone(), &dir)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_cpus: Vec<usize> = (0..cores).filter(|c| *c != args.server_core).collect();
    let load_cores = cpu_list(&load_cpus);
    anyhow::ensure!(
        !load_cores.is_empty(),
        "bench sip needs two cores: one for the server, one for sipp"
    );
    println!(
        "bench sip: {} numbers, {} INVITE/s for {} s per server, {} runs, server on core {}, load on {load_cores} ({cores} cores; other work on this machine adds noise: load average {}){}",
        args.numbers,
        args.rate,
        args.seconds,
        args.runs,
        args.server_core,
        load_average(),
        if args.isolate { "; servers and load in scheduling groups of their own at nice -20" } else { "" }
    );
    let csv = dir.join("calls.csv");
    write_calls_csv(&csv, args.numbers, 100_000)?;
    let scenario = baseline.join("sipp-redirect-uac.xml");

    // --- the servers, started once and measured in turn in each run
    let kam_port = free_udp_port()?;
    let mut kam_child = {
        let cfg = kamailio_config(&baseline, &dir, args.numbers, kam_port)?;
        let started = Instant::now();
        let mut child = Guard(
            taskset()
                .args(["-c", &args.server_core.to_string(), "kamailio", "-f"])
                .arg(&cfg)
                .args(["-DD", "-E", "-x", "tlsf", "-X", "tlsf", "-M", "256", "-Y"])
                .arg(&dir)
                .arg("-m")
                .arg(args.kamailio_shm_mb.to_string())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("kamailio.log"))?)
                .spawn()?,
        );
        while !routing::sip::answers_options(kam_port, Duration::from_secs(2)) {
            let gone = child.0.try_wait()?.is_some();
            anyhow::ensure!(
                !gone && started.elapsed() < Duration::from_secs(1800),
                "kamailio did not answer OPTIONS; see {}",
                dir.join("kamailio.log").display()
            );
        }
        println!(
            "kamailio htable: loaded {} numbers in {:.1} s",
            args.numbers,
            started.elapsed().as_secs_f64()
        );
        child
    };
    let server_core = args.server_core.to_string();
    let mut px = Server::start(
        &args,
        &server_core,
        args.sip_threads,
        args.http_threads,
        args.sip_source_limit,
    )?;
    println!(
        "peerex snapshot: {} numbers built in {} ms, {} bytes for the numbers ({:.1} bytes/number; goal <= 64), process RSS +{:.1} MB; {} SIP and {} lookup thread(s) on core {server_core}{}",
        args.numbers,
        px.ready.get("build_ms").map_or("?", |s| s.as_str()),
        px.ready.get("number_bytes").map_or("?", |s| s.as_str()),
        px.ready.get("number_bytes").and_then(|b| b.parse::<f64>().ok()).unwrap_or(0.0) / args.numbers as f64,
        px.ready.get("rss_delta").and_then(|b| b.parse::<f64>().ok()).unwrap_or(0.0) / 1e6,
        args.sip_threads,
        args.http_threads,
        if args.no_metrics { ", without the metrics recorder" } else { ", metrics recorded as `serve` does" },
    );
    let mut echo = Server::echo(&server_core)?;
    let requests = generator_requests(px.sip, args.numbers);
    let echo_requests = generator_requests(echo.sip, args.numbers);

    let mut runs = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        println!("\n--- run {run} of {} (load average {})", args.runs, load_average());
        // Each server twice: with the capture for latencies, then without it for CPU.
        let mut passes = Vec::with_capacity(4);
        for watch in [Watch::Capture, Watch::Cpu] {
            for (name, port, pid) in [
                ("kamailio htable", kam_port, kam_child.0.id()),
                ("peerex redirect", px.sip.port(), px.pid()),
            ] {
                let l = load(&args, &load_cores, &dir, name, port, &scenario, &csv, pid, watch)?;
                print_load(name, &l, watch);
                passes.push(l);
            }
        }
        let [kam, sip, kam_cpu, px_cpu] =
            <[Load; 4]>::try_from(passes).map_err(|_| anyhow::anyhow!("four passes"))?;
        let floor =
            drive_measured(&echo, echo_requests.clone(), args.rate, args.seconds, &load_cpus)?;
        let px_gen = drive_measured(&px, requests.clone(), args.rate, args.seconds, &load_cpus)?;
        println!(
            "same generator at {} datagrams/s: UDP echo floor {} answered, {:.2} us CPU/datagram (on a CPU {:.2} times each); peerex {} answered, {:.2} us CPU/INVITE ({:.2} times each; {:.2}x the floor)",
            args.rate,
            floor.0.answered,
            floor.1,
            floor.2,
            px_gen.0.answered,
            px_gen.1,
            px_gen.2,
            px_gen.1 / floor.1
        );
        let (rps, p99) = wrk(&load_cores, &dir, &px.http, args.numbers, args.http_seconds)?;
        println!(
            "lookup API under wrk (16 connections, {} thread(s) on one core): {rps:.0} lookups/s, p99 {p99:.3} ms",
            args.http_threads
        );
        runs.push(Run {
            kam,
            px: sip,
            kam_cpu,
            px_cpu,
            floor_us: floor.1,
            px_gen_us: px_gen.1,
            lookups: rps,
            lookup_p99: p99,
        });
    }
    kam_child.stop();
    echo.child.stop();
    px.child.stop();
    print_runs(&runs);
    let figures = figures(&runs);
    println!("\nworst of {} runs against the goals:", runs.len());
    for f in &figures {
        println!("{}", f.line());
    }

    // --- scale: calls/s and lookups/s at saturation, on one core and on every core
    println!(
        "\nscale at saturation ({} s each, 8 generator sockets per server thread with 32 INVITEs outstanding on each, per-address limit off as they share one address; the load generators run on the same {cores} cores, so with every core serving they share them with the server and the figure is a floor on what the server does alone):",
        args.scale_seconds
    );
    let all: Vec<usize> = (0..cores).collect();
    for (threads, server_cpus, gen_cpus) in
        [(1, vec![args.server_core], load_cpus.clone()), (cores, all.clone(), all.clone())]
    {
        let mut s = Server::start(&args, &cpu_list(&server_cpus), threads, threads, 0)?;
        let requests = generator_requests(s.sip, args.numbers);
        let cpu0 = tree_cpu_seconds(s.pid());
        let d = crate::bench_udp::drive(
            s.sip,
            requests,
            crate::bench_udp::Pace::Window(32),
            8 * threads,
            args.scale_seconds as f64,
            gen_cpus.clone(),
        )?;
        let cpu = tree_cpu_seconds(s.pid()) - cpu0;
        let (rps, p99) =
            wrk(&cpu_list(&gen_cpus), &dir, &s.http, args.numbers, args.scale_seconds)?;
        s.child.stop();
        println!(
            "  {threads} core(s) ({} SIP + {} lookup threads on cores {}, load on {}): {:.0} calls/s ({} of {} INVITEs answered, server CPU {:.0}% of one core), {rps:.0} lookups/s (p99 {p99:.3} ms)",
            threads,
            threads,
            cpu_list(&server_cpus),
            cpu_list(&gen_cpus),
            d.per_second(),
            d.answered,
            d.sent,
            cpu / d.seconds * 100.0,
        );
    }

    // --- change -> decision, through the database
    let mut databases = vec![("SQLite", format!("sqlite://{}", dir.join("changes.db").display()))];
    match &args.postgres {
        Some(base) => {
            databases.push(("PostgreSQL", crate::bench::fresh_pg(base, "sip_changes").await?))
        }
        None => println!("(change -> decision on PostgreSQL skipped: pass --postgres URL)"),
    }
    for (name, url) in databases {
        let lat = change_latency(&url, args.changes).await?;
        println!(
            "change -> decision ({name}, {} changes, one instance): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 100 ms)",
            lat.len(),
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0)
        );
    }
    println!("(load average at the end: {})", load_average());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

/// One run's figures.
struct Run {
    /// Under sipp with the capture: latencies (and CPU with the capture's cost in it).
    kam: Load,
    px: Load,
    /// Under sipp without the capture: each server's own CPU.
    kam_cpu: Load,
    px_cpu: Load,
    /// The bare UDP echo's CPU per datagram, under the generator at `--rate`.
    floor_us: f64,
    /// peerex's CPU per INVITE under the same generator.
    px_gen_us: f64,
    lookups: f64,
    lookup_p99: f64,
}

fn print_runs(runs: &[Run]) {
    println!(
        "\n{:<5} {:<18} {:>9} {:>11} {:>12} {:>14} {:>9} {:>9}",
        "run", "server", "answered", "server CPU%", "CPU us/call", "(captured)", "p50 ms", "p99 ms"
    );
    for (i, r) in runs.iter().enumerate() {
        for (name, l, c) in
            [("kamailio htable", &r.kam, &r.kam_cpu), ("peerex redirect", &r.px, &r.px_cpu)]
        {
            println!(
                "{:<5} {:<18} {:>9} {:>11.1} {:>12.2} {:>14.2} {:>9.3} {:>9.3}",
                i + 1,
                name,
                c.answered,
                c.cpu_percent,
                c.cpu_us_per_call,
                l.cpu_us_per_call,
                l.p50_ms,
                l.p99_ms
            );
        }
        println!(
            "{:<5} {:<18} {:>9} {:>11} {:>12.2} {:>14.2} {:>9} {:>9.2}",
            i + 1,
            "peerex / kamailio",
            "",
            "",
            r.px_cpu.cpu_us_per_call / r.kam_cpu.cpu_us_per_call,
            r.px.cpu_us_per_call / r.kam.cpu_us_per_call,
            "",
            r.px.p99_ms / r.kam.p99_ms
        );
        println!(
            "{:<5} {:<18} {:>9} {:>11} {:>12.2} {:>14} {:>9} {:>9}   (peerex under the same generator: {:.2} us, {:.2}x the floor)",
            i + 1,
            "UDP echo floor",
            "",
            "",
            r.floor_us,
            "",
            "",
            "",
            r.px_gen_us,
            r.px_gen_us / r.floor_us
        );
        println!(
            "{:<5} {:<18} {:>9.0} lookups/s, p99 {:.3} ms",
            i + 1,
            "lookup API",
            r.lookups,
            r.lookup_p99
        );
    }
}

/// The figures held against goals, and those shown beside them (the floor), over every run.
fn figures(runs: &[Run]) -> Vec<Figure> {
    let each = |f: &dyn Fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    vec![
        Figure::new(
            "SIP CPU per call, peerex / kamailio",
            "x",
            each(&|r| r.px_cpu.cpu_us_per_call / r.kam_cpu.cpu_us_per_call),
            Goal::AtMost(0.5),
        ),
        Figure::new(
            "SIP p99, peerex / kamailio",
            "x",
            each(&|r| r.px.p99_ms / r.kam.p99_ms),
            Goal::AtMost(0.5),
        ),
        Figure::new("lookups/s on one core", "/s", each(&|r| r.lookups), Goal::AtLeast(80_000.0)),
        Figure::new("lookup p99", " ms", each(&|r| r.lookup_p99), Goal::AtMost(0.5)),
        Figure::new(
            "SIP CPU per call, capture included",
            "x",
            each(&|r| r.px.cpu_us_per_call / r.kam.cpu_us_per_call),
            Goal::None,
        ),
        Figure::new("UDP echo floor, CPU per datagram", " us", each(&|r| r.floor_us), Goal::None),
        Figure::new(
            "peerex / floor, CPU per answer",
            "x",
            each(&|r| r.px_gen_us / r.floor_us),
            Goal::None,
        ),
    ]
}

/// What a figure must be in every run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown, not judged (its worst is its highest).
    None,
}

/// One figure over every run.
struct Figure {
    name: &'static str,
    unit: &'static str,
    values: Vec<f64>,
    goal: Goal,
}

impl Figure {
    fn new(name: &'static str, unit: &'static str, values: Vec<f64>, goal: Goal) -> Self {
        Self { name, unit, values, goal }
    }

    /// Whether one run's value meets the goal (a run that measured nothing does not).
    fn meets(&self, v: f64) -> bool {
        match self.goal {
            Goal::AtMost(g) => v <= g,
            Goal::AtLeast(g) => v >= g,
            Goal::None => true,
        }
    }

    /// The worst run: the highest for an upper bound, the lowest for a lower bound; a run that
    /// measured nothing (NaN) is the worst of all.
    fn worst(&self) -> f64 {
        if self.values.iter().any(|v| v.is_nan()) || self.values.is_empty() {
            return f64::NAN;
        }
        let at_least = matches!(self.goal, Goal::AtLeast(_));
        self.values
            .iter()
            .copied()
            .reduce(|a, b| if at_least { a.min(b) } else { a.max(b) })
            .unwrap_or(f64::NAN)
    }

    /// Runs that met the goal.
    fn passed(&self) -> usize {
        self.values.iter().filter(|v| self.meets(**v)).count()
    }

    fn line(&self) -> String {
        let runs = self.values.iter().map(|v| fmt_figure(*v)).collect::<Vec<_>>().join(", ");
        let n = self.values.len();
        let verdict = match self.goal {
            Goal::AtMost(g) | Goal::AtLeast(g) => format!(
                "goal {} {}{}: {} {} of {n}",
                if matches!(self.goal, Goal::AtMost(_)) { "<=" } else { ">=" },
                fmt_figure(g),
                self.unit,
                if self.passed() == n && n > 0 { "PASS" } else { "FAIL" },
                self.passed()
            ),
            Goal::None => "(no goal: shown beside the others)".into(),
        };
        format!(
            "  {:<38} worst {:>9}{:<4} (runs: {runs})  {verdict}",
            self.name,
            fmt_figure(self.worst()),
            self.unit
        )
    }
}

fn fmt_figure(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A child process serving peerex's redirect server and lookup API (or the bare echo), pinned.
struct Server {
    child: Guard,
    sip: std::net::SocketAddr,
    http: String,
    ready: HashMap<String, String>,
}

impl Server {
    fn start(
        args: &SipBench,
        cpus: &str,
        sip_threads: usize,
        http_threads: usize,
        source_limit: u32,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = taskset();
        cmd.args(["-c", cpus])
            .arg(exe)
            .args(["bench", "sip", "--serve-only", "--numbers", &args.numbers.to_string()])
            .args(["--sip-threads", &sip_threads.to_string()])
            .args(["--http-threads", &http_threads.to_string()])
            .args(["--sip-source-limit", &source_limit.to_string()]);
        if args.no_metrics {
            cmd.arg("--no-metrics");
        }
        Self::spawn(cmd, "sip")
    }

    fn echo(cpus: &str) -> anyhow::Result<Self> {
        let mut cmd = taskset();
        cmd.args(["-c", cpus]).arg(std::env::current_exe()?).args(["bench", "sip", "--echo-only"]);
        Self::spawn(cmd, "echo")
    }

    fn spawn(mut cmd: Command, udp: &str) -> anyhow::Result<Self> {
        let mut child = Guard(cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?);
        let mut lines = std::io::BufReader::new(child.0.stdout.take().expect("piped")).lines();
        let mut ready = HashMap::new();
        for line in lines.by_ref() {
            let line = line?;
            if let Some((k, v)) = line.split_once('=') {
                ready.insert(k.to_owned(), v.to_owned());
            }
            if line == "ready" {
                break;
            }
        }
        let sip: std::net::SocketAddr = ready
            .get(udp)
            .ok_or_else(|| anyhow::anyhow!("the server child did not start"))?
            .parse()?;
        let http = ready.get("http").cloned().unwrap_or_default();
        Ok(Self { child, sip, http, ready })
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// The generator at `rate` against `server` for `seconds`; what it saw, the server's CPU
/// microseconds per answer and the times it was put on a CPU per answer.
fn drive_measured(
    server: &Server,
    requests: Vec<Vec<u8>>,
    rate: u64,
    seconds: u64,
    cpus: &[usize],
) -> anyhow::Result<(crate::bench_udp::Driven, f64, f64)> {
    let (cpu0, slices0) = (tree_cpu_seconds(server.pid()), tree_slices(server.pid()));
    let d = crate::bench_udp::drive(
        server.sip,
        requests,
        crate::bench_udp::Pace::Rate(rate),
        1,
        seconds as f64,
        cpus.to_vec(),
    )?;
    let cpu = tree_cpu_seconds(server.pid()) - cpu0;
    let slices = tree_slices(server.pid()) - slices0;
    Ok((d, cpu * 1e6 / d.answered.max(1) as f64, slices as f64 / d.answered.max(1) as f64))
}

/// INVITEs for the generator, to the numbers sipp calls (the same mix of known and unknown).
fn generator_requests(target: std::net::SocketAddr, numbers: u64) -> Vec<Vec<u8>> {
    call_numbers(numbers, 4096)
        .enumerate()
        .map(|(i, n)| crate::bench_udp::invite(target, n, i))
        .collect()
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

struct Load {
    sent: usize,
    answered: usize,
    cpu_percent: f64,
    cpu_us_per_call: f64,
    /// Times the server was put on a CPU, per answered call.
    wakeups_per_call: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn print_load(name: &str, l: &Load, watch: Watch) {
    let watched = match watch {
        Watch::Capture => {
            format!("INVITE->final p50 {:.3} ms p99 {:.3} ms (captured)", l.p50_ms, l.p99_ms)
        }
        Watch::Cpu => "no capture".to_owned(),
    };
    println!(
        "{name}: {} INVITEs, {} answered, server CPU {:.1}% of a core, {:.2} us CPU/call, on a CPU {:.2} times a call, {watched}",
        l.sent, l.answered, l.cpu_percent, l.cpu_us_per_call, l.wakeups_per_call
    );
}

/// How a pass of sipp is watched.
#[derive(Clone, Copy, PartialEq)]
enum Watch {
    /// tcpdump on the server's port: every INVITE's latency to its final answer. The capture costs
    /// the server CPU (the kernel copies each answer it sends to tcpdump, in the sender's context).
    Capture,
    /// No capture, so the server's CPU is its own; calls answered are counted by sipp
    /// (`-trace_stat`), and there are no latencies.
    Cpu,
}

/// sipp at `rate` for `seconds` against `port`, watched as `watch` says; the server's CPU from
/// /proc.
#[allow(clippy::too_many_arguments)]
fn load(
    args: &SipBench,
    load_cores: &str,
    dir: &Path,
    name: &str,
    port: u16,
    scenario: &Path,
    csv: &Path,
    server_pid: u32,
    watch: Watch,
) -> anyhow::Result<Load> {
    let pcap = dir.join(format!("{name}.pcap"));
    let stats = dir.join(format!("{name}-stats.csv"));
    let _ = std::fs::remove_file(&stats);
    let mut dump = match watch {
        Watch::Capture => Some(Guard(
            taskset()
                .args(["-c", load_cores, "tcpdump", "-i", "lo", "-n", "-s", "600", "-B", "65536"])
                .arg("-w")
                .arg(&pcap)
                .arg(format!("udp port {port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        )),
        Watch::Cpu => None,
    };
    std::thread::sleep(Duration::from_millis(800));
    let calls = args.rate * args.seconds;
    let cpu0 = tree_cpu_seconds(server_pid);
    let slices0 = tree_slices(server_pid);
    let t0 = Instant::now();
    let mut sipp = taskset();
    sipp.args(["-c", load_cores, "sipp"]).arg(format!("127.0.0.1:{port}"));
    if watch == Watch::Cpu {
        sipp.args(["-trace_stat", "-stf"]).arg(&stats);
    }
    let out = sipp
        .arg("-sf")
        .arg(scenario)
        .arg("-inf")
        .arg(csv)
        .args([
            "-r",
            &args.rate.to_string(),
            "-rp",
            "1000",
            "-m",
            &calls.to_string(),
            "-l",
            "50000",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
        ])
        .arg(format!("{}s", args.seconds + 30))
        .args(["-recv_timeout", "5000", "-buff_size", "8388608"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = tree_cpu_seconds(server_pid) - cpu0;
    let slices = tree_slices(server_pid) - slices0;
    if !out.success() {
        eprintln!("{name}: sipp ended with {out} (some calls failed or timed out)");
    }
    let (sent, answered, latencies) = match dump.as_mut() {
        Some(dump) => {
            std::thread::sleep(Duration::from_millis(500));
            let _ = Command::new("kill").args(["-INT", &dump.0.id().to_string()]).status();
            let _ = dump.0.wait();
            let (sent, latencies) = invite_to_final(&std::fs::read(&pcap)?, port)?;
            let _ = std::fs::remove_file(&pcap);
            (sent, latencies.len(), latencies)
        }
        None => {
            // A call that succeeded had its INVITE answered; no latencies without the capture.
            let stats = std::fs::read_to_string(&stats).map_err(|e| {
                anyhow::anyhow!("{name}: sipp's statistics {}: {e}", stats.display())
            })?;
            let (created, successful) = sipp_calls(&stats)?;
            (created, successful, Vec::new())
        }
    };
    anyhow::ensure!(sent > 0, "{name}: sipp sent no INVITE (see {})", dir.display());
    Ok(Load {
        sent,
        answered,
        cpu_percent: cpu / wall * 100.0,
        cpu_us_per_call: cpu * 1e6 / answered.max(1) as f64,
        wakeups_per_call: slices as f64 / answered.max(1) as f64,
        p50_ms: pct(&latencies, 0.50),
        p99_ms: pct(&latencies, 0.99),
    })
}

/// Calls created and calls that succeeded, from the last line of sipp's `-trace_stat` file
/// (`;`-separated, a header line naming the columns).
fn sipp_calls(stats: &str) -> anyhow::Result<(usize, usize)> {
    let mut lines = stats.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or_default().split(';').collect();
    let column = |name: &str| -> anyhow::Result<usize> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| anyhow::anyhow!("sipp's statistics have no column {name}"))?;
        let v = last.get(i).ok_or_else(|| anyhow::anyhow!("sipp's statistics: no {name}"))?;
        v.trim().parse().map_err(|_| anyhow::anyhow!("sipp's statistics: {name} is {v:?}"))
    };
    Ok((column("TotalCallCreated")?, column("SuccessfulCall(C)")?))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// From a pcap of the server's port: INVITEs sent (first copies) and, per Call-ID, milliseconds from
/// the first INVITE to the first final response, sorted.
fn invite_to_final(pcap: &[u8], port: u16) -> anyhow::Result<(usize, Vec<f64>)> {
    anyhow::ensure!(pcap.len() >= 24, "empty capture");
    let le = pcap[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || pcap[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    anyhow::ensure!(le, "unexpected pcap format");
    let nanos = pcap[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let linktype = u32le(&pcap[20..24]);
    let link_len = match linktype {
        1 => 14,   // Ethernet (loopback on Linux)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        0 => 4,    // BSD loopback
        other => anyhow::bail!("pcap link type {other}"),
    };
    let mut at = 24;
    let mut invites: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut done: HashMap<Vec<u8>, f64> = HashMap::new();
    while at + 16 <= pcap.len() {
        let (sec, frac, incl) =
            (u32le(&pcap[at..]), u32le(&pcap[at + 4..]), u32le(&pcap[at + 8..]) as usize);
        let t = f64::from(sec) * 1e3 + f64::from(frac) / if nanos { 1e6 } else { 1e3 };
        let frame = &pcap[at + 16..(at + 16 + incl).min(pcap.len())];
        at += 16 + incl;
        let Some(ip) = frame.get(link_len..) else { continue };
        if ip.first().map(|b| b >> 4) != Some(4) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        let (sport, dport) =
            (u16::from_be_bytes([udp[0], udp[1]]), u16::from_be_bytes([udp[2], udp[3]]));
        let sip = &udp[8..];
        let Some(call_id) = header(sip, b"\r\nCall-ID:").or_else(|| header(sip, b"\r\ni:")) else {
            continue;
        };
        if dport == port && sip.starts_with(b"INVITE ") {
            invites.entry(call_id.to_vec()).or_insert(t);
        } else if sport == port
            && sip.starts_with(b"SIP/2.0 ")
            && sip.get(8).is_some_and(|c| *c >= b'2')
            && header(sip, b"\r\nCSeq:").is_some_and(|c| c.ends_with(b"INVITE"))
        {
            done.entry(call_id.to_vec()).or_insert(t);
        }
    }
    let mut lat: Vec<f64> =
        done.iter().filter_map(|(id, t)| invites.get(id).map(|t0| t - t0)).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok((invites.len(), lat))
}

fn header<'a>(msg: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let start = msg.windows(name.len()).position(|w| w.eq_ignore_ascii_case(name))? + name.len();
    let rest = &msg[start..];
    let end = rest.windows(2).position(|w| w == b"\r\n").unwrap_or(rest.len());
    Some(rest[..end].trim_ascii())
}

/// CPU seconds of `pid` and its direct children (Kamailio's workers are its children), every
/// thread of each: the scheduler's nanosecond count (`schedstat`) where the kernel keeps one, else
/// user + system ticks.
fn tree_cpu_seconds(pid: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    let mut total = 0.0;
    for e in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // Fields after the command name, which may hold spaces: state ppid ... utime(14) stime(15).
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else { continue };
        let f: Vec<&str> = after.split_whitespace().collect();
        if f.len() < 13 {
            continue;
        }
        let me: u32 = e.file_name().to_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        let ppid: u32 = f[1].parse().unwrap_or(0);
        // taskset exec()s the server: same pid.
        if me != pid && ppid != pid {
            continue;
        }
        total += schedstat_seconds(&e.path()).unwrap_or_else(|| {
            let ticks = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
            ticks as f64 / 100.0 // USER_HZ on Linux
        });
    }
    total
}

/// Nanoseconds on a CPU of every thread of the process at `proc_dir`, in seconds.
fn schedstat_seconds(proc_dir: &Path) -> Option<f64> {
    Some(schedstat(proc_dir)?.0)
}

/// Of every thread of the process at `proc_dir`: seconds on a CPU, and how many times it was put
/// on one (each wakeup is one).
fn schedstat(proc_dir: &Path) -> Option<(f64, u64)> {
    let (mut ns, mut slices) = (0u64, 0u64);
    for t in std::fs::read_dir(proc_dir.join("task")).ok()?.flatten() {
        let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        let mut f = s.split_whitespace();
        ns += f.next()?.parse::<u64>().ok()?;
        slices += f.nth(1)?.parse::<u64>().ok()?;
    }
    Some((ns as f64 / 1e9, slices))
}

/// Times `pid` and its direct children were put on a CPU (0 where the kernel does not say).
fn tree_slices(pid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else { continue };
        let ppid: u32 = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let me: u32 = e.file_name().to_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        if me == pid || ppid == pid {
            total += schedstat(&e.path()).map_or(0, |(_, n)| n);
        }
    }
    total
}

/// The baseline configuration on free ports, loading `numbers` rows from a db_text table.
fn kamailio_config(
    baseline: &Path,
    dir: &Path,
    numbers: u64,
    port: u16,
) -> anyhow::Result<PathBuf> {
    let db = dir.join("kamailio-dbtext");
    std::fs::create_dir_all(&db)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(db.join("numbers"))?);
    writeln!(f, "e164(str) customer_id(str) trunk(str) state(str)")?;
    for i in 0..numbers {
        writeln!(f, "+{}:c{}:{TRUNK}:{}", FIRST + i, i % 1000, state_of(i).as_str())?;
    }
    f.flush()?;
    let cfg = std::fs::read_to_string(baseline.join("kamailio-htable-redirect.cfg"))?;
    let tcp = free_tcp_port()?;
    let cfg = cfg
        .replace("listen=udp:127.0.0.1:5070", &format!("listen=udp:127.0.0.1:{port}"))
        .replace("listen=tcp:127.0.0.1:5071", &format!("listen=tcp:127.0.0.1:{tcp}"))
        .replace("unix:/tmp/kamailio_ctl", &format!("unix:{}", dir.join("kamailio_ctl").display()))
        .replace("text:///tmp/kamailio-dbtext", &format!("text://{}", db.display()))
        // db_text stops at 100,000 rows unless told otherwise.
        .replace(
            "loadmodule \"db_text.so\"\n",
            &format!(
                "loadmodule \"db_text.so\"\nmodparam(\"db_text\", \"max_result_rows\", {})\n",
                numbers + 1
            ),
        );
    anyhow::ensure!(
        cfg.contains(&format!(":{port}")),
        "the baseline config's listen line changed; update bench_sip.rs"
    );
    let path = dir.join("kamailio-baseline.cfg");
    std::fs::write(&path, cfg)?;
    Ok(path)
}

/// 100,000 calls drawn from the table (and 1 in 20 to numbers not in it), in random order.
fn write_calls_csv(path: &Path, numbers: u64, calls: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "SEQUENTIAL")?;
    for e164 in call_numbers(numbers, calls) {
        writeln!(f, "+{e164};")?;
    }
    f.flush()?;
    Ok(())
}

/// The numbers called: drawn from the table's `numbers`, 1 in 20 outside it, in random order.
fn call_numbers(numbers: u64, calls: u64) -> impl Iterator<Item = u64> {
    let mut x: u64 = 0x2545F4914F6CDD1D;
    (0..calls).map(move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if n % 20 == 19 {
            FIRST + numbers + x % 1_000_000
        } else {
            FIRST + x % numbers
        }
    })
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What `--in-process` times: requests as carriers' SBCs send them, each with the status it must get.
const IN_PROCESS: [(&str, &str, &str); 4] = [
    (
        "INVITE, SBC, 2 Vias + SDP",
        "302",
        "INVITE sip:+15550000002@peerex.example;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---7b2c1a3f9e0d4c68;rport\r\n\
         Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-d8754z-9a1f3c2e;received=198.51.100.20\r\n\
         Max-Forwards: 69\r\n\
         From: \"ACME Corp\" <sip:+12125550123@sbc.carrier.example;user=phone>;tag=as5a1b2c3d\r\n\
         To: <sip:+15550000002@peerex.example;user=phone>\r\n\
         Call-ID: 3c2f6a9e-1b7d-4e0a-9c5f-2d8b7e6a1f40@192.0.2.10\r\n\
         CSeq: 102 INVITE\r\n\
         Contact: <sip:+12125550123@192.0.2.10:5060;transport=udp>\r\n\
         P-Asserted-Identity: <sip:+12125550123@sbc.carrier.example;user=phone>\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
         Supported: replaces, timer\r\n\
         User-Agent: SBC/5.2\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 231\r\n\
         \r\n\
         v=0\r\n\
         o=- 1736342381 1736342381 IN IP4 192.0.2.10\r\n\
         s=-\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 0 8 18 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:18 G729/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=sendrecv\r\n",
    ),
    (
        "INVITE, compact form",
        "302",
        "INVITE sip:+15550000003@peerex.example SIP/2.0\r\n\
         v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c0mp4ct;rport\r\n\
         f: <sip:+12125550123@sbc.carrier.example>;tag=c1\r\n\
         t: <sip:+15550000003@peerex.example>\r\n\
         i: compact-1@192.0.2.10\r\n\
         CSeq: 1 INVITE\r\n\
         m: <sip:+12125550123@192.0.2.10>\r\n\
         Max-Forwards: 70\r\n\
         l: 0\r\n\
         \r\n",
    ),
    (
        "OPTIONS keep-alive",
        "200",
        "OPTIONS sip:peerex.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ka-77;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ping@sbc.carrier.example>;tag=ka77\r\n\
         To: <sip:peerex.example>\r\n\
         Call-ID: keepalive-77@192.0.2.10\r\n\
         CSeq: 77 OPTIONS\r\n\
         Content-Length: 0\r\n\
         \r\n",
    ),
    (
        "INVITE, unknown number (404)",
        "404",
        "INVITE sip:+15559999999@peerex.example;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---0f0e0d0c0b0a0908;rport\r\n\
         Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-d8754z-77aa;received=198.51.100.20\r\n\
         Max-Forwards: 69\r\n\
         From: \"ACME Corp\" <sip:+12125550123@sbc.carrier.example;user=phone>;tag=as77\r\n\
         To: <sip:+15559999999@peerex.example;user=phone>\r\n\
         Call-ID: 9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4@192.0.2.10\r\n\
         CSeq: 102 INVITE\r\n\
         Contact: <sip:+12125550123@192.0.2.10:5060>\r\n\
         Content-Length: 0\r\n\
         \r\n",
    ),
];

/// `--in-process`: each of [`IN_PROCESS`] handled as the UDP loop does (`handle_into` with a reused
/// buffer), over the benchmark's table of `--numbers`, on one thread; the best round in ns/message of
/// the thread's CPU time, and of wall time.
fn in_process(args: &SipBench) -> anyhow::Result<ExitCode> {
    let routing =
        routing::Routing::from_snapshot(NumberingRule::nanp(), build_snapshot(args.numbers)?);
    let src: std::net::SocketAddr = "192.0.2.10:5060".parse()?;
    let mut out = Vec::with_capacity(1024);
    println!(
        "bench sip --in-process: parse + answer, {} numbers, best of {} x {} (run it pinned, e.g. `taskset -c 1`)",
        args.numbers, args.rounds, args.iterations
    );
    let mut total = 0.0;
    for (name, status, msg) in IN_PROCESS {
        let msg = msg.as_bytes();
        routing::sip::handle_into(&routing, msg, src, &mut out)
            .ok_or_else(|| anyhow::anyhow!("{name}: no answer"))?;
        anyhow::ensure!(
            out.get(8..11) == Some(status.as_bytes()),
            "{name}: answered {}, not {status}",
            String::from_utf8_lossy(&out[..out.len().min(40)])
        );
        let per_message = |seconds: f64| seconds * 1e9 / args.iterations.max(1) as f64;
        let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..args.rounds.max(1))
            .map(|_| {
                let (t0, c0) = (Instant::now(), thread_cpu_seconds());
                for _ in 0..args.iterations {
                    let dest = routing::sip::handle_into(
                        &routing,
                        std::hint::black_box(msg),
                        src,
                        &mut out,
                    );
                    std::hint::black_box((dest, &out));
                }
                (per_message(t0.elapsed().as_secs_f64()), per_message(thread_cpu_seconds() - c0))
            })
            .unzip();
        wall.sort_by(|a, b| a.total_cmp(b));
        cpu.sort_by(|a, b| a.total_cmp(b));
        total += cpu[0];
        println!(
            "{name:<30} {status}  {:>6.0} ns/message CPU (best; median {:.0}), wall {:.0} (best; median {:.0}), {} bytes",
            cpu[0],
            cpu[cpu.len() / 2],
            wall[0],
            wall[wall.len() / 2],
            msg.len()
        );
    }
    println!(
        "{:<30}      {:>6.0} ns/message CPU (mean of the bests)",
        "all",
        total / IN_PROCESS.len() as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// This thread's CPU time: the figure that holds when other work shares the core (wall time counts
/// the time it waited).
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The child: builds the snapshot, serves SIP (UDP) and the lookup API, prints where, then runs
/// until killed.
async fn serve_only(args: &SipBench) -> anyhow::Result<ExitCode> {
    if !args.no_metrics {
        // As `peerex serve` runs: the servers' latency histograms go to the Prometheus recorder.
        web::install_metrics();
    }
    let rss0 = rss_bytes();
    let started = Instant::now();
    let snapshot = build_snapshot(args.numbers)?;
    let build_ms = started.elapsed().as_millis();
    let number_bytes = snapshot.number_bytes();
    let routing = routing::Routing::from_snapshot(NumberingRule::nanp(), snapshot);
    let rss_delta = rss_bytes().saturating_sub(rss0);
    let udp = routing::sip::bind_udp_shared("127.0.0.1:0", args.sip_threads.max(1))?;
    let http = routing::listen::bind_tcp("127.0.0.1:0", args.http_threads.max(1))?;
    println!(
        "sip={}\nhttp={}\nbuild_ms={build_ms}\nnumber_bytes={number_bytes}\nrss_delta={rss_delta}\nready",
        udp[0].local_addr()?,
        http[0].local_addr()?
    );
    // By default with the default per-source limit, as `serve` runs it (sipp's rate stays under it).
    for socket in udp {
        routing::sip::spawn_udp(routing.clone(), socket, args.sip_source_limit)?;
    }
    let mut lookup = routing::http::spawn_threads(
        routing,
        http,
        None,
        routing::listen::Limits::default(),
        None,
    )?;
    // Until killed (or a lookup thread dies).
    let first = lookup.pop().ok_or_else(|| anyhow::anyhow!("no lookup thread"))?;
    tokio::task::spawn_blocking(move || first.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the lookup API thread panicked"))?;
    Ok(ExitCode::SUCCESS)
}

fn build_snapshot(numbers: u64) -> anyhow::Result<Snapshot> {
    let trunk = ZoomTrunk::parse(
        TRUNK,
        &["sip:zoom-a.zoom-peer.invalid;transport=tls"],
        NumberingRule::nanp(),
        time::OffsetDateTime::UNIX_EPOCH,
    )?;
    let customers: Vec<CustomerId> = (0..1000).map(|_| CustomerId::new()).collect();
    let mut s = Snapshot::default();
    s.set_customers(
        customers
            .iter()
            .map(|c| RoutingCustomer { id: *c, trunk: Some(TRUNK.into()), app_removed: false })
            .collect(),
        vec![trunk],
    );
    let mut page = Vec::with_capacity(50_000);
    for i in 0..numbers {
        let customer = if state_of(i) == NumberState::Aging {
            None
        } else {
            Some(customers[(i % 1000) as usize])
        };
        page.push(NumberFacts {
            e164: PhoneNumber::from_trusted(format!("+{}", FIRST + i)),
            state: state_of(i),
            customer,
            reason: None,
        });
        if page.len() == 50_000 {
            s.load(&page);
            page.clear();
        }
    }
    s.load(&page);
    s.finish_load();
    Ok(s)
}

/// wrk with 16 keep-alive connections over random numbers; (requests/s, p99 ms).
fn wrk(
    load_cores: &str,
    dir: &Path,
    http: &str,
    numbers: u64,
    seconds: u64,
) -> anyhow::Result<(f64, f64)> {
    let script = dir.join("lookup.lua");
    std::fs::write(
        &script,
        // 10,000 requests built once and cycled: building each one in Lua (wrk.format) loaded wrk's
        // one core and inflated the latencies it reported (p99 4 ms against 0.6-0.8 ms).
        format!(
            "math.randomseed(7)\nlocal reqs = {{}}\nfor i = 1, 10000 do\n  reqs[i] = wrk.format(\"GET\", \"/route?to=%2B\" .. ({FIRST} + math.random(0, {})))\nend\nlocal i = 0\nrequest = function()\n  i = i % 10000 + 1\n  return reqs[i]\nend\n",
            numbers - 1
        ),
    )?;
    let out = taskset()
        // One wrk thread per load core: two threads on one core time-slice each other, and wrk's own
        // waiting shows up as lookup latency (p99 0.8-1.7 ms with -t2 against 0.2 ms with -t1 here).
        .args([
            "-c",
            load_cores,
            "wrk",
            &format!("-t{}", load_cores.split(',').count()),
            "-c16",
            "--latency",
        ])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{http}"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map_or(f64::NAN, |v| wrk_ms(v.trim()));
    if rps.is_nan() {
        eprintln!("wrk said:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((rps, p99))
}

fn wrk_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => f64::NAN,
    }
}

/// Milliseconds from a committed state change to the in-process snapshot deciding by it, sorted.
async fn change_latency(url: &str, changes: usize) -> anyhow::Result<Vec<f64>> {
    let store = store::Store::connect(url).await?;
    store.migrate().await?;
    let now = time::OffsetDateTime::now_utc();
    let trunk = ZoomTrunk::parse(TRUNK, &["sip:zoom-a.example"], NumberingRule::nanp(), now)?;
    store.insert_trunk(&trunk).await?;
    let c = domain::customer::Customer {
        id: CustomerId::new(),
        name: "Bench".into(),
        contract_ref: "B-1".into(),
        contract_state: domain::customer::ContractState::Active,
        created_at: now,
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&c).await?;
    store.set_customer_trunk(c.id, Some(&domain::trunk::TrunkName::parse(TRUNK).unwrap())).await?;
    let by = domain::Actor::System("bench".into());
    let numbers: Vec<(domain::Number, domain::NumberEvent)> = (0..changes as u64)
        .map(|i| {
            domain::Number::imported(
                PhoneNumber::from_trusted(format!("+{}", FIRST + i)),
                Default::default(),
                &by,
                now,
            )
        })
        .collect();
    let numbers: Vec<domain::Number> = {
        store.insert_numbers(&numbers, &|_| {}).await?;
        numbers.into_iter().map(|(n, _)| n).collect()
    };
    for n in &numbers {
        store.force_number_state(&n.e164, domain::NumberState::Active, Some(c.id)).await?;
    }
    let config = routing::RoutingConfig {
        http_listen: String::new(),
        sip_listen: String::new(),
        ..Default::default()
    };
    let started = routing::start(store.clone(), &config).await?;
    anyhow::ensure!(
        routing::wait_ready(&started.routing, Duration::from_secs(30)).await,
        "the snapshot did not load"
    );
    let mut out = Vec::with_capacity(changes);
    for (i, n) in numbers.iter().enumerate() {
        let key = FIRST + i as u64;
        // Wait until the snapshot has the number routing, so each change is timed on its own.
        let t = Instant::now();
        while started.routing.read().decide(Direction::Inbound, None, Some(key), None).status != 302
        {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(10), "{} never routed", n.e164);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let t0 = Instant::now();
        store.force_number_state(&n.e164, domain::NumberState::Aging, None).await?;
        while started.routing.read().decide(Direction::Inbound, None, Some(key), None).status != 404
        {
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(10),
                "{} still routed after 10 s",
                n.e164
            );
            tokio::task::yield_now().await;
        }
        out.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    out.sort_by(|a, b| a.total_cmp(b));
    Ok(out)
}

// ---- small helpers ------------------------------------------------------------------------------

/// A child process stopped (SIGTERM, then SIGKILL) when dropped.
struct Guard(Child);

impl Guard {
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

/// Set by `--isolate`.
static ISOLATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `taskset`, the way every server and load tool of the bench starts: with `--isolate`, in a
/// session of its own (so a scheduling group of its own) raised to nice -20.
fn taskset() -> Command {
    let mut cmd = Command::new("taskset");
    if ISOLATE.load(std::sync::atomic::Ordering::Relaxed) {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls (setsid, open, write, close)
        // on a static path and value.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                let fd = libc::open(c"/proc/self/autogroup".as_ptr(), libc::O_WRONLY);
                if fd >= 0 {
                    libc::write(fd, b"-20".as_ptr().cast(), 3);
                    libc::close(fd);
                }
                Ok(())
            });
        }
    }
    cmd
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The baseline's Kamailio configuration and sipp scenario (`reference/routing/`, where they say
/// where they came from), compiled in so the benchmark runs from any directory.
const BASELINE_CFG: &str = include_str!("../../../reference/routing/kamailio-htable-redirect.cfg");
const BASELINE_SCENARIO: &str = include_str!("../../../reference/routing/sipp-redirect-uac.xml");

/// The directory holding the baseline's configuration and scenario: `given`, or `work` with the
/// compiled-in copies written into it.
fn baseline_dir(given: Option<PathBuf>, work: &Path) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => {
            anyhow::ensure!(
                d.join("kamailio-htable-redirect.cfg").is_file()
                    && d.join("sipp-redirect-uac.xml").is_file(),
                "--baseline {}: needs kamailio-htable-redirect.cfg and sipp-redirect-uac.xml",
                d.display()
            );
            d
        }
        None => {
            let d = work.join("baseline");
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("kamailio-htable-redirect.cfg"), BASELINE_CFG)?;
            std::fs::write(d.join("sipp-redirect-uac.xml"), BASELINE_SCENARIO)?;
            d
        }
    };
    // sipp runs in the temporary directory: a relative path would not reach the scenario.
    Ok(dir.canonicalize()?)
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("peerex-bench-sip-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_run_is_held_against_the_goal() {
        let ratio = Figure::new("cpu", "x", vec![0.41, 0.52, 0.47], Goal::AtMost(0.5));
        assert_eq!(ratio.worst(), 0.52);
        assert_eq!(ratio.passed(), 2);
        let line = ratio.line();
        assert!(line.contains("worst      0.52x") && line.contains("FAIL 2 of 3"), "{line}");

        let rate = Figure::new(
            "lookups",
            "/s",
            vec![150_000.0, 81_000.0, 120_000.0],
            Goal::AtLeast(80_000.0),
        );
        assert_eq!(rate.worst(), 81_000.0, "the lowest rate is the worst");
        assert!(rate.line().contains("PASS 3 of 3"), "{}", rate.line());

        let edge = Figure::new("p99", " ms", vec![0.5, 0.5, 0.5], Goal::AtMost(0.5));
        assert!(edge.line().contains("PASS 3 of 3"), "the goal itself meets the goal");
    }

    #[test]
    fn a_run_that_measured_nothing_fails_and_is_the_worst() {
        let f = Figure::new("p99", " ms", vec![0.2, f64::NAN, 0.3], Goal::AtMost(0.5));
        assert!(f.worst().is_nan());
        assert_eq!(f.passed(), 2);
        assert!(
            f.line().contains("worst       n/a") && f.line().contains("FAIL 2 of 3"),
            "{}",
            f.line()
        );
        let none = Figure::new("rate", "/s", vec![], Goal::AtLeast(1.0));
        assert!(none.line().contains("FAIL 0 of 0"), "{}", none.line());
    }

    #[test]
    fn figures_without_a_goal_show_their_highest_and_no_verdict() {
        let f = Figure::new("floor", " us", vec![1.2, 1.5, 1.1], Goal::None);
        assert_eq!(f.worst(), 1.5);
        assert!(!f.line().contains("PASS") && !f.line().contains("FAIL"), "{}", f.line());
    }

    #[test]
    fn sipp_statistics_give_calls_created_and_succeeded_from_the_last_line() {
        // The shape sipp 3.6 writes with -trace_stat (columns cut down, same names and separator).
        let stats = "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);IncomingCall(P);IncomingCall(C);OutgoingCall(P);OutgoingCall(C);TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n\
            2026-12-05\t06:22:10;2026-12-05\t06:22:10;2026-12-05\t06:22:10;00:00:00;00:00:00;100;0;0;0;0;0;0;0;0;0;0;0;0;\n\
            2026-12-05\t06:22:10;2026-12-05\t06:22:11;2026-12-05\t06:22:11;00:00:00;00:00:01;100;0;49.85;0;0;0;50;50;2;0;47;0;1;\n";
        assert_eq!(sipp_calls(stats).unwrap(), (50, 47));
        let err = sipp_calls("StartTime;TotalCallCreated;\nx;12;\n").unwrap_err().to_string();
        assert!(err.contains("SuccessfulCall(C)"), "{err}");
        assert!(sipp_calls("").is_err(), "no statistics is not zero calls");
    }

    #[test]
    fn calls_go_to_the_table_and_one_in_twenty_outside_it() {
        let calls: Vec<u64> = call_numbers(1000, 2000).collect();
        let outside = calls.iter().filter(|n| **n >= FIRST + 1000).count();
        assert_eq!(outside, 100);
        assert!(calls.iter().all(|n| *n >= FIRST));
        assert_eq!(calls, call_numbers(1000, 2000).collect::<Vec<_>>(), "the same calls every run");
    }
}
