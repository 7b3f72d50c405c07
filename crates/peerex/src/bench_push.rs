//! `peerex bench push`: how close peerex comes to Zoom's own limit when it pushes a big order.
//!
//! One Zoom account (the simulator's demo world, its rate limit set to `--rate` requests a second, as
//! Zoom's LIGHT limit on a Business account) and one customer with `--numbers` reserved numbers. The
//! install is completed (code exchange, users/me, link: the numbers go `provisioning` and push jobs are
//! written), then the platform's job workers push them in batches of 200. No client can beat
//! `numbers / 200 / rate` seconds: that bound is printed beside the time taken, with the 429s met and
//! the numbers Zoom was sent twice (duplicates; the goal is none).

use anyhow::Context;
use app::App;
use domain::auth::Role;
use domain::customer::{OrderPick, MAX_ORDER_NUMBERS};
use domain::{Actor, NumberState};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zoom_sim::{demo, Options, RateLimit, Simulator};

#[derive(clap::Args)]
pub struct PushBench {
    /// Numbers to push to one Zoom account.
    #[arg(long, default_value_t = 100_000)]
    numbers: u32,
    /// Zoom's requests per second for the account (40: Business plan and up).
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Job workers.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Also run on PostgreSQL (a server URL; a fresh database is created on it).
    #[arg(long)]
    postgres: Option<String>,
}

/// Where the platform would be; the simulator never calls it in this benchmark.
const PLATFORM: &str = "http://127.0.0.1:9";

struct Run {
    backend: &'static str,
    link: Duration,
    push: Duration,
    calls: u64,
    rate_limited: u64,
    added: u64,
    duplicates: u64,
    active: i64,
}

pub async fn run(args: PushBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (200..=1_000_000).contains(&args.numbers),
        "--numbers must be 200 to 1,000,000"
    );
    anyhow::ensure!((1..=1000).contains(&args.rate), "--rate must be 1 to 1000");
    anyhow::ensure!((1..=64).contains(&args.workers), "--workers must be 1 to 64");
    let (zoom_url, sim, _serving) = spawn_sim(args.rate).await?;
    let dir = std::env::temp_dir().join(format!("peerex-bench-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut runs = Vec::new();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let result = bench_one("sqlite", &sqlite, &zoom_url, &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    runs.push(result?);
    if let Some(base) = &args.postgres {
        sim.reset().await;
        let url = crate::bench::fresh_pg(base, "push").await?;
        runs.push(bench_one("postgres", &url, &zoom_url, &args).await?);
    } else {
        eprintln!(
            "(PostgreSQL skipped: pass --postgres URL; scripts/pg-throwaway starts a server)"
        );
    }
    let bound = f64::from(args.numbers) / 200.0 / f64::from(args.rate);
    println!(
        "\n{} numbers to one Zoom account at {} requests/s: bound {:.2} s (numbers / 200 / rate)",
        args.numbers, args.rate, bound
    );
    println!(
        "{:<9} {:>9} {:>9} {:>12} {:>7} {:>6} {:>9} {:>11} {:>9}",
        "database",
        "link s",
        "push s",
        "% of bound",
        "calls",
        "429s",
        "added",
        "duplicates",
        "active"
    );
    for r in &runs {
        println!(
            "{:<9} {:>9.2} {:>9.2} {:>11.1}% {:>7} {:>6} {:>9} {:>11} {:>9}",
            r.backend,
            r.link.as_secs_f64(),
            r.push.as_secs_f64(),
            100.0 * bound / r.push.as_secs_f64(),
            r.calls,
            r.rate_limited,
            r.added,
            r.duplicates,
            r.active
        );
    }
    println!("(link: code exchange, users/me and the link transaction that queues every number; push: from then until every number is active. Goal: push >= 95% of the bound, 0 duplicates.)");
    Ok(ExitCode::SUCCESS)
}

async fn bench_one(
    backend: &'static str,
    url: &str,
    zoom_url: &str,
    args: &PushBench,
) -> anyhow::Result<Run> {
    let store = store::Store::connect(url)
        .await
        .with_context(|| format!("cannot open {}", crate::config::redact_url(url)))?;
    store.migrate().await?;
    let (app, customer) = carrier_app(store, zoom_url, args.rate, args.workers).await?;
    let err = |e: app::AppError| anyhow::anyhow!("{e}");

    eprintln!("{backend}: importing and ordering {} numbers...", args.numbers);
    let by = Actor::System("bench".into());
    let last = 15_550_000_000u64 + u64::from(args.numbers) - 1;
    app.import_range(&format!("+15550000000-+{last}"), &Default::default(), &by, false, &|_| {})
        .await
        .map_err(err)?;
    let mut left = args.numbers;
    while left > 0 {
        let count = left.min(MAX_ORDER_NUMBERS);
        app.create_order(customer.id, OrderPick { count, ..Default::default() }, &[], &by)
            .await
            .map_err(err)?;
        left -= count;
    }

    let code = authorize(zoom_url).await?;
    eprintln!("{backend}: linking and pushing...");
    let start = Instant::now();
    // The callback's half (exchange, users/me), then the customer admin's confirmation.
    let started = app.begin_install(&code).await.map_err(err)?;
    let account = started.pending.zoom_account_id.clone();
    let (_, queued) = app
        .confirm_install(customer.id, &started.cookie, account.as_str(), &by)
        .await
        .map_err(err)?;
    anyhow::ensure!(
        queued == args.numbers as usize,
        "the link queued {queued} numbers, not {}",
        args.numbers
    );
    let link = start.elapsed();
    let workers = app.spawn_workers();
    let pushing = Instant::now();
    loop {
        let counts = app.count_by_state().await?;
        let provisioning =
            counts.iter().find(|(s, _)| *s == NumberState::Provisioning).map_or(0, |(_, n)| *n);
        if provisioning == 0 {
            break;
        }
        anyhow::ensure!(
            pushing.elapsed() < Duration::from_secs(3600),
            "still {provisioning} numbers provisioning after an hour"
        );
        // Not too often: counting every number is work the database would rather spend on the pushes.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let push = pushing.elapsed();
    drop(workers);
    let active = app
        .count_by_state()
        .await?
        .into_iter()
        .find(|(s, _)| *s == NumberState::Active)
        .map_or(0, |(_, n)| n);
    let z = app.zoom.as_deref().context("zoom")?;
    let s = &z.stats;
    let run = Run {
        backend,
        link,
        push,
        calls: s.calls.load(Ordering::Relaxed),
        rate_limited: s.rate_limited.load(Ordering::Relaxed),
        added: s.added.load(Ordering::Relaxed),
        duplicates: s.already_done.load(Ordering::Relaxed),
        active,
    };
    eprintln!(
        "{backend}: link {:.2} s, push {:.2} s, {} calls, {} 429s, {} duplicates",
        run.link.as_secs_f64(),
        run.push.as_secs_f64(),
        run.calls,
        run.rate_limited,
        run.duplicates
    );
    Ok(run)
}

/// Acme's admin signs in to Zoom and allows the carrier's app; the code Zoom redirects with.
pub(crate) async fn authorize(zoom_url: &str) -> anyhow::Result<String> {
    authorize_as(zoom_url, demo::ACME_ADMIN_EMAIL, demo::ACME_ADMIN_PASSWORD).await
}

/// An account's admin (`email`) signs in to Zoom and allows the carrier's app; the code Zoom
/// redirects with.
pub(crate) async fn authorize_as(
    zoom_url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    http.post(format!("{zoom_url}/signin"))
        .form(&[("email", email), ("password", password), ("next", "/profile")])
        .send()
        .await?;
    let redirect = format!("{PLATFORM}/zoom/oauth/callback");
    let page = http
        .get(format!("{zoom_url}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", demo::CLIENT_ID),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"consent\" value=\"";
    let start = page.find(marker).context("the consent page has no consent field")? + marker.len();
    let consent = &page[start..start + page[start..].find('"').context("consent value")?];
    let r = http
        .post(format!("{zoom_url}/oauth/authorize"))
        .form(&[("consent", consent), ("decision", "allow")])
        .send()
        .await?;
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("Allow did not redirect")?;
    let to = url::Url::parse(to)?;
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code in the redirect")?;
    Ok(code)
}

/// The carrier's peerex as the benchmarks run it against the simulator at `rate` requests a second:
/// the Zoom app, the customer Acme on the demo's SIP trunk, and Acme's admin (to install the app).
pub(crate) async fn carrier_app(
    store: store::Store,
    zoom_url: &str,
    rate: u32,
    workers: usize,
) -> anyhow::Result<(App, domain::customer::Customer)> {
    let mut settings = crate::demo::zoom_settings(zoom_url, PLATFORM);
    // A hair under Zoom's limit: pacing exactly at it meets the edge of Zoom's one-second windows.
    settings.requests_per_second = f64::from(rate) * 0.99;
    settings.workers = workers;
    settings.poll_seconds = 3600;
    let zoom = settings.setup("Bench Carrier")?.context("zoom settings")?;
    let app =
        App::new(store, Arc::new(domain::SystemClock), app::Settings::default()).with_zoom(zoom);
    let err = |e: app::AppError| anyhow::anyhow!("{e}");
    let customer = app.create_customer("Acme Corp", "ACME-BENCH").await.map_err(err)?;
    // Numbers are pushed on the customer's own Zoom trunk.
    let trunk = app::trunks::TrunkInput {
        destinations: vec!["sip:sbc.zoom-bench.invalid:5061;transport=tls"],
        country_code: "1",
        national_prefix: "1",
        international_prefix: "011",
    };
    app.create_trunk(demo::SIP_TRUNK, &trunk).await.map_err(err)?;
    app.set_customer_trunk(customer.id, Some(demo::SIP_TRUNK)).await.map_err(err)?;
    app.create_user(
        demo::ACME_ADMIN_EMAIL,
        "bench-password-123",
        Role::CustomerAdmin,
        Some(customer.id),
    )
    .await
    .map_err(err)?;
    Ok((app, customer))
}

/// The simulator's demo world on a free loopback port at `rate` requests a second, with its control
/// API: its URL, the simulator, and the handle that keeps it serving.
pub(crate) async fn spawn_sim(
    rate: u32,
) -> anyhow::Result<(String, Simulator, zoom_sim::SimHandle)> {
    let options =
        Options { control_api: true, rate_limit: RateLimit::PerSecond(rate), ..Options::default() };
    let sim = Simulator::new(demo::world(PLATFORM)?, options)?;
    let (addr, handle) = sim.spawn(([127, 0, 0, 1], 0).into()).await?;
    Ok((format!("http://{addr}"), sim, handle))
}
