//! `peerex bench reconcile`: how close a full reconciliation of a converged carrier comes to the
//! bound Zoom's page size and rate limits allow, whether injected drift is found exactly and
//! repaired, and whether a customer's push keeps its pace while a full cycle runs.
//!
//! `--accounts` simulated Zoom accounts, each a customer of peerex with the carrier's app installed,
//! share `--numbers` numbers between them. Setting up a million numbers through pushes would take
//! longer than the benchmark itself, so the numbers are seeded into the simulator's world (each
//! account starts with its share, on the carrier's trunk, active) and written active for their
//! customer into peerex's inventory with the store's bulk import: the two sides start converged, as
//! after the pushes. Each account is listed through its own request budget (`--rate` requests a
//! second, Zoom's per-account limit), 300 numbers a page: no client lists an account faster than
//! `pages / rate`, and the accounts are independent, so Zoom's bound for the whole carrier is one
//! account's when all are listed at once (the reconciler lists `--parallel` at once: its own bound
//! is printed beside Zoom's). A baseline then does less than any reconciler must (every account
//! at once, paced by its own clock, read from the store and checked by number) to show how much of
//! Zoom's bound this machine allows with the simulator and the database on the same cores. Then
//! `--drift` numbers of each kind the simulator changes silently
//! (deleted, re-trunked, deactivated) are picked at random among all accounts: one cycle must find
//! every one and nothing else, and after the automatic repairs run through the outbox the next cycle
//! must find nothing. Last, `--push` numbers are pushed to one more customer alone, then as many
//! again while a full cycle runs (its account is compared too, sharing the push's budget).

use anyhow::Context;
use app::reconcile::{Outcome, ReconcileReport, ReconcileRequest, RepairWhich};
use app::App;
use domain::customer::{OrderPick, MAX_ORDER_NUMBERS};
use domain::onboarding::{JobKind, JobState};
use domain::reconcile::FindingKind;
use domain::{Actor, CustomerId, NumberState, PhoneNumber};
use rand::seq::SliceRandom;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zoom_sim::{demo, Options, RateLimit, Simulator};

const PLATFORM: &str = "http://127.0.0.1:9";
const FIRST: u64 = 15_550_000_000;
/// The numbers pushed to the push customer come after every account's.
const PUSH_FIRST: u64 = 15_559_000_000;
const PAGE: u64 = 300;
const ADMIN_PASSWORD: &str = "bench-admin-password";

#[derive(clap::Args)]
pub struct ReconcileBench {
    /// Numbers in Zoom, in all, shared evenly by the accounts (up to 1,000,000).
    #[arg(long, default_value_t = 30_000)]
    numbers: u32,
    /// Simulated Zoom accounts, each a customer with the carrier's app installed.
    #[arg(long, default_value_t = 100)]
    accounts: u32,
    /// Zoom's requests per second per account (40: Business plan and up).
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Accounts the reconciler compares at once.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Numbers of each drift kind injected.
    #[arg(long, default_value_t = 20)]
    drift: usize,
    /// Numbers pushed to one customer, alone and then beside a full cycle (0: skip).
    #[arg(long, default_value_t = 10_000)]
    push: u32,
    /// Also time the carrier-wide cycle (every number through the carrier's own budget at --rate).
    #[arg(long)]
    carrier: bool,
    /// A PostgreSQL server to run on (a fresh database is made on it), instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
}

pub async fn run(args: ReconcileBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!((1..=1_000_000).contains(&args.numbers), "--numbers must be 1 to 1,000,000");
    anyhow::ensure!((1..=10_000).contains(&args.accounts), "--accounts must be 1 to 10,000");
    anyhow::ensure!(args.numbers >= args.accounts, "--numbers must be at least --accounts");
    anyhow::ensure!((1..=1000).contains(&args.rate), "--rate must be 1 to 1000");
    anyhow::ensure!((1..=1000).contains(&args.parallel), "--parallel must be 1 to 1000");
    anyhow::ensure!(args.push <= 500_000, "--push must be at most 500,000");
    anyhow::ensure!(
        args.drift * 3 <= args.numbers as usize / 2,
        "--drift is too many for --numbers"
    );
    let t = Instant::now();
    eprintln!("seeding the simulator: {} accounts, {} numbers...", args.accounts, args.numbers);
    let world = world(&args)?;
    let options = Options {
        control_api: true,
        rate_limit: RateLimit::PerSecond(args.rate),
        ..Options::default()
    };
    let sim = Simulator::new(world, options)?;
    // Zoom is another service on other machines: the simulator gets a runtime of its own (its own
    // threads, which the operating system schedules beside peerex's as it would another process),
    // not a share of the tasks queued on peerex's workers, whose pacing it would disturb.
    let zoom_runtime = ZoomRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zoom-sim")
            .enable_all()
            .build()?,
    ));
    let (addr, _serving) =
        zoom_runtime.spawn(async move { sim.spawn(([127, 0, 0, 1], 0).into()).await }).await??;
    let zoom_url = format!("http://{addr}");
    eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    let (url, dir) = match &args.postgres {
        Some(base) => (crate::bench::fresh_pg(base, "reconcile").await?, None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("peerex-bench-reconcile-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()), Some(dir))
        }
    };
    let result = bench(&url, &zoom_url, &args).await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The simulator's own runtime, shut down without waiting (a runtime dropped inside async code,
/// as on an early return, would panic).
struct ZoomRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for ZoomRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the runtime lives until dropped")
    }
}

impl Drop for ZoomRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn account_id(i: u32) -> String {
    format!("benchZoomAccount{i:05}")
}

fn admin_email(i: u32) -> String {
    format!("admin{i}@bench{i}.example")
}

/// The first number of account `i` and how many it has.
fn share(args: &ReconcileBench, i: u32) -> (u64, u64) {
    let (n, a) = (u64::from(args.numbers), u64::from(args.accounts));
    let from = n * u64::from(i) / a;
    let to = n * (u64::from(i) + 1) / a;
    (FIRST + from, to - from)
}

/// The demo world (the carrier, its apps, Acme, the carrier's own account) and `--accounts` more,
/// each starting with its share of the numbers, active on the carrier's trunk.
fn world(args: &ReconcileBench) -> anyhow::Result<zoom_sim::World> {
    let mut w = serde_json::to_value(demo::world(PLATFORM)?)?;
    let accounts = w["accounts"].as_array_mut().context("the demo world's accounts")?;
    for i in 0..args.accounts {
        let (first, count) = share(args, i);
        let numbers: Vec<serde_json::Value> = (first..first + count)
            .map(|n| serde_json::json!({ "phone_number": format!("+{n}"), "sip_trunk_name": demo::SIP_TRUNK }))
            .collect();
        accounts.push(serde_json::json!({
            "id": account_id(i),
            "name": format!("Bench Customer {i}"),
            "plan": "business",
            "zoom_phone": true,
            "admin": { "email": admin_email(i), "password": ADMIN_PASSWORD, "first_name": "Admin", "last_name": format!("{i}") },
            "phone_numbers": numbers,
        }));
    }
    Ok(zoom_sim::World::from_json(&w.to_string())?)
}

async fn bench(url: &str, zoom_url: &str, args: &ReconcileBench) -> anyhow::Result<ExitCode> {
    let err = |e: app::AppError| anyhow::anyhow!("{e}");
    let store = store::Store::connect(url).await?;
    store.migrate().await?;
    let mut settings = crate::demo::zoom_settings(zoom_url, PLATFORM);
    // A hair under Zoom's limit: pacing exactly at it meets the edge of Zoom's one-second windows.
    settings.requests_per_second = f64::from(args.rate) * 0.99;
    settings.carrier_requests_per_second = f64::from(args.rate) * 0.99;
    settings.workers = 8;
    settings.poll_seconds = 3600;
    let mut zoom = settings.setup("Bench Carrier")?.context("zoom settings")?;
    zoom.reconcile.parallel = args.parallel;
    let carrier = zoom.carrier.take();
    let app = App::new(store.clone(), Arc::new(domain::SystemClock), app::Settings::default())
        .with_zoom(zoom);
    let by = Actor::System("bench".into());
    let backend = if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" };

    let t = Instant::now();
    eprintln!("linking {} customers to their Zoom accounts...", args.accounts);
    let trunk = app::trunks::TrunkInput {
        destinations: vec!["sip:sbc.zoom-bench.invalid:5061;transport=tls"],
        country_code: "1",
        national_prefix: "1",
        international_prefix: "011",
    };
    app.create_trunk(demo::SIP_TRUNK, &trunk).await.map_err(err)?;
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut customers = Vec::new();
    for i in 0..args.accounts {
        let c = app
            .create_customer(&format!("Bench Customer {i}"), &format!("BENCH-{i:05}"))
            .await
            .map_err(err)?;
        app.set_customer_trunk(c.id, Some(demo::SIP_TRUNK)).await.map_err(err)?;
        let code =
            crate::bench_push::authorize_as(zoom_url, &admin_email(i), ADMIN_PASSWORD).await?;
        let started = app.begin_install(&code).await.map_err(err)?;
        app.confirm_install(c.id, &started.cookie, &account_id(i), &by).await.map_err(err)?;
        // The hourly listing that learns assignments is not what is measured here.
        store.poll_now(c.id, later).await?;
        customers.push(c.id);
    }
    eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    eprintln!("writing {} active numbers into peerex (bulk import)...", args.numbers);
    let now = time::OffsetDateTime::now_utc();
    for (i, customer) in customers.iter().enumerate() {
        let (first, count) = share(args, i as u32);
        let numbers: Vec<_> = (first..first + count)
            .map(|n| {
                let (mut number, event) = domain::Number::imported(
                    PhoneNumber::from_trusted(format!("+{n}")),
                    Default::default(),
                    &by,
                    now,
                );
                number.state = NumberState::Active;
                number.customer_id = Some(*customer);
                (number, event)
            })
            .collect();
        store.insert_numbers(&numbers, &|_| {}).await?;
    }
    if args.postgres.is_some() {
        // As autovacuum leaves tables in service: otherwise it vacuums the freshly written million
        // rows during the timed cycles, on the same two cores.
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut conn).await?;
        conn.close().await?;
    }
    eprintln!("  {:.1} s", t.elapsed().as_secs_f64());

    // A converged carrier: nothing found, at the pace Zoom allows.
    let all = ReconcileRequest::default();
    let t = Instant::now();
    let report = app.reconcile(&all).await.map_err(err)?;
    let took = t.elapsed();
    complete(&report)?;
    let converged = report.findings().count();
    let listed: usize = report.cycles.iter().map(|c| c.listed).sum();
    let pages: u32 = report.cycles.iter().map(|c| c.pages).sum();
    let (_, most) = share(args, args.accounts - 1);
    let (_, least) = share(args, 0);
    let per_account = most.max(least).div_ceil(PAGE);
    let rate = f64::from(args.rate);
    let zoom_bound = per_account as f64 / rate;
    let waves = u64::from(args.accounts).div_ceil(args.parallel as u64);
    let own_bound = (waves * per_account) as f64 / rate;
    // Zoom counts requests in one-second windows: the baseline's first pages must not share one
    // with the cycle's last.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let floor = baseline(&app, &store, &customers, settings.requests_per_second).await?;
    anyhow::ensure!(
        floor.listed == args.numbers as usize && floor.differences == 0,
        "the baseline listed {} numbers of {} and found {} differences in a converged carrier",
        floor.listed,
        args.numbers,
        floor.differences
    );
    // Likewise between the baseline's last pages and the drift cycle's first.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Drift of each kind the simulator injects, at random among every account's numbers.
    let mut picks: Vec<u64> = (FIRST..FIRST + u64::from(args.numbers)).collect();
    picks.shuffle(&mut rand::thread_rng());
    let http = reqwest::Client::new();
    let mut injected = BTreeSet::new();
    for (i, n) in picks.iter().take(args.drift * 3).enumerate() {
        let path = format!("{zoom_url}/_sim/numbers/%2B{n}");
        let (kind, r) = match i % 3 {
            0 => (FindingKind::GoneFromZoom, http.delete(&path).send().await?),
            1 => (
                FindingKind::WrongTrunk,
                http.patch(&path)
                    .json(&serde_json::json!({ "sip_trunk_name": demo::SIP_TRUNK_2 }))
                    .send()
                    .await?,
            ),
            _ => (
                FindingKind::InactiveInZoom,
                http.patch(&path).json(&serde_json::json!({ "status": false })).send().await?,
            ),
        };
        anyhow::ensure!(r.status().is_success(), "injecting drift: {}", r.status());
        injected.insert((kind, format!("+{n}")));
    }
    let t = Instant::now();
    let report = app.reconcile(&all).await.map_err(err)?;
    let drift_took = t.elapsed();
    complete(&report)?;
    let found: BTreeSet<_> = report.findings().map(|f| (f.kind, f.subject.clone())).collect();
    let missed = injected.difference(&found).count();
    let extra = found.difference(&injected).count();
    let workers = app.spawn_workers();
    let repairs =
        app.repair_findings(&RepairWhich::Automatic { customer: None }, &by).await.map_err(err)?;
    wait_for_no_job(&app).await?;
    let report = app.reconcile(&all).await.map_err(err)?;
    complete(&report)?;
    let after = report.findings().count();
    println!(
        "\nbench reconcile on {backend}: {} numbers in {} Zoom accounts ({least}-{most} each), {} requests/s per account, {} accounts compared at once",
        args.numbers, args.accounts, args.rate, args.parallel
    );
    println!(
        "bound: {per_account} pages of {PAGE} per account / {} requests/s = {zoom_bound:.2} s with every account at once (Zoom's limits); {own_bound:.2} s with {} at once ({waves} rounds)",
        args.rate, args.parallel
    );
    println!(
        "converged cycle: {:.2} s, {listed} numbers listed in {pages} pages, {converged} findings; {:.1}% of Zoom's bound, {:.1}% of the {}-at-once bound",
        took.as_secs_f64(),
        100.0 * zoom_bound / took.as_secs_f64(),
        100.0 * own_bound / took.as_secs_f64(),
        args.parallel
    );
    println!(
        "baseline (every account listed at once, each paced by its own clock, then read from the store and checked by number; no budget, lease or findings): {:.2} s, {} numbers, {} differences; {:.1}% of Zoom's bound on this machine; the converged cycle took {:.2}x its time",
        floor.took.as_secs_f64(),
        floor.listed,
        floor.differences,
        100.0 * zoom_bound / floor.took.as_secs_f64(),
        took.as_secs_f64() / floor.took.as_secs_f64()
    );
    println!(
        "drift cycle: {:.2} s; {} injected at random across the accounts, {} found, {missed} missed, {extra} not injected",
        drift_took.as_secs_f64(),
        injected.len(),
        found.len()
    );
    println!(
        "repairs: {} queued in {} jobs; after them {after} findings (Zoom agrees with peerex again)",
        repairs.queued.len(),
        repairs.jobs
    );

    if let (true, Some(c)) = (args.carrier, carrier) {
        carrier_cycle(&store, &settings, c, args).await?;
    }
    if args.push > 0 {
        push_beside_a_cycle(&app, zoom_url, args).await?;
    }
    drop(workers);
    println!("(Goals: converged >= 90% of the bound with 0 findings; every drift found, none extra; 0 findings after the repairs; a push beside a full cycle >= 90% of its pace alone.)");
    Ok(ExitCode::SUCCESS)
}

struct Baseline {
    took: Duration,
    listed: usize,
    differences: usize,
}

/// Less than any reconciler does, as fast as Zoom's limits and this machine allow: every account
/// listed at once through the same Zoom client, each account's pages paced by its own clock at the
/// same rate as the reconciler's budget (none shared through the database, no lease), then its
/// numbers read from the store with the reconciler's query and checked by number as a converged
/// carrier's must agree (on both sides, the customer's trunk, active, not Returned), with none of
/// the reconciler's judgement by state nor its findings. It shows what the machine itself allows:
/// the simulator, the database and the comparison share its cores with peerex.
async fn baseline(
    app: &App,
    store: &store::Store,
    customers: &[CustomerId],
    rate: f64,
) -> anyhow::Result<Baseline> {
    let gap = Duration::from_secs_f64(1.0 / rate);
    let t = Instant::now();
    let mut accounts = tokio::task::JoinSet::new();
    for &customer in customers {
        let (app, store) = (app.clone(), store.clone());
        accounts.spawn(async move {
            let z = app.zoom.as_deref().context("zoom")?;
            let err = |e: app::onboarding::ZoomCallError| anyhow::anyhow!("{e}");
            let link = app.zoom_link(customer).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let link = link.context("a bench customer is not linked")?;
            let token = app.access_token(&link, None).await.map_err(err)?;
            let (mut listed, mut next, mut slot) = (Vec::new(), None::<String>, Instant::now());
            loop {
                // Paced as the reconciler's budget paces: a gap after the later of the last slot
                // and now (a listing that fell behind does not catch up in a burst).
                let at = slot.max(Instant::now());
                tokio::time::sleep_until(at.into()).await;
                slot = at + gap;
                let page = z.client.list_peering_numbers(&token, next.as_deref()).await?;
                // Only what is compared: Zoom's other fields are four times its size.
                listed.extend(
                    page.numbers
                        .into_iter()
                        .map(|n| (n.phone_number, n.sip_trunk_name, n.active && !n.returned)),
                );
                match page.next_page_token {
                    Some(t) => next = Some(t),
                    None => break,
                }
            }
            let held = store.held_by_customer(customer).await?;
            let by_number: std::collections::HashMap<&str, &domain::reconcile::Held> =
                held.iter().map(|h| (h.e164.as_str(), h)).collect();
            // Numbers Zoom lists that peerex lacks or holds otherwise, and numbers Zoom lacks.
            let (mut differences, mut found) = (0, 0);
            for (number, trunk, in_service) in &listed {
                match by_number.get(number.as_str()) {
                    Some(h) => {
                        found += 1;
                        if h.trunk != *trunk || !*in_service {
                            differences += 1;
                        }
                    }
                    None => differences += 1,
                }
            }
            differences += held.len().saturating_sub(found);
            anyhow::Ok((listed.len(), differences))
        });
    }
    let (mut listed, mut differences) = (0, 0);
    while let Some(r) = accounts.join_next().await {
        let (l, d) = r??;
        listed += l;
        differences += d;
    }
    Ok(Baseline { took: t.elapsed(), listed, differences })
}

/// Fails unless every cycle of the run read every page.
fn complete(report: &ReconcileReport) -> anyhow::Result<()> {
    for c in &report.cycles {
        anyhow::ensure!(
            c.outcome == Outcome::Complete,
            "cycle {} did not complete: {:?}",
            c.scope,
            c.outcome
        );
    }
    Ok(())
}

/// The carrier-wide cycle alone: every number through the carrier's own budget.
async fn carrier_cycle(
    store: &store::Store,
    settings: &crate::zoom_config::ZoomConfig,
    carrier: app::reconcile::CarrierApp,
    args: &ReconcileBench,
) -> anyhow::Result<()> {
    let mut zoom = settings.setup("Bench Carrier")?.context("zoom settings")?;
    zoom.carrier = Some(carrier);
    let app = App::new(store.clone(), Arc::new(domain::SystemClock), app::Settings::default())
        .with_zoom(zoom);
    let t = Instant::now();
    let cycle = app.reconcile_carrier(false).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let took = t.elapsed();
    let cycle = cycle.context("the carrier app")?;
    let pages = u64::from(args.numbers).div_ceil(PAGE);
    let bound = pages as f64 / f64::from(args.rate);
    println!(
        "carrier-wide cycle: {:.2} s, {:?}, {} numbers in {} pages, {} findings; bound {pages} pages / {} requests/s = {bound:.2} s, {:.1}% of it",
        took.as_secs_f64(),
        cycle.outcome,
        cycle.listed,
        cycle.pages,
        cycle.findings.len(),
        args.rate,
        100.0 * bound / took.as_secs_f64()
    );
    Ok(())
}

/// Pushes `--push` numbers to one customer alone, then as many more while a full cycle runs; prints
/// each pace and their ratio.
async fn push_beside_a_cycle(
    app: &App,
    zoom_url: &str,
    args: &ReconcileBench,
) -> anyhow::Result<()> {
    let err = |e: app::AppError| anyhow::anyhow!("{e}");
    let by = Actor::System("bench".into());
    let customer = app.create_customer("Acme Corp", "ACME-BENCH").await.map_err(err)?;
    app.set_customer_trunk(customer.id, Some(demo::SIP_TRUNK)).await.map_err(err)?;
    let last = PUSH_FIRST + 2 * u64::from(args.push) - 1;
    app.import_range(&format!("+{PUSH_FIRST}-+{last}"), &Default::default(), &by, false, &|_| {})
        .await
        .map_err(err)?;
    let code = crate::bench_push::authorize(zoom_url).await?;
    let started = app.begin_install(&code).await.map_err(err)?;
    let account = started.pending.zoom_account_id.clone();
    app.confirm_install(customer.id, &started.cookie, account.as_str(), &by).await.map_err(err)?;
    wait_for_no_job(app).await?;

    let alone = push(app, customer.id, args.push).await?;
    let cycle = {
        let app = app.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = app.reconcile(&ReconcileRequest::default()).await;
            (t.elapsed(), r)
        })
    };
    let beside = push(app, customer.id, args.push).await?;
    let (cycle_took, report) = cycle.await?;
    let report = report.map_err(err)?;
    complete(&report)?;
    let pace = |d: Duration| f64::from(args.push) / d.as_secs_f64();
    println!(
        "push of {} numbers to one customer: alone {:.2} s ({:.0}/s; ordered in {:.2} s); beside a full cycle {:.2} s ({:.0}/s; ordered in {:.2} s), {:.1}% of its pace alone; the cycle took {:.2} s and found {}",
        args.push,
        alone.took.as_secs_f64(),
        pace(alone.took),
        alone.ordered.as_secs_f64(),
        beside.took.as_secs_f64(),
        pace(beside.took),
        beside.ordered.as_secs_f64(),
        100.0 * alone.took.as_secs_f64() / beside.took.as_secs_f64(),
        cycle_took.as_secs_f64(),
        report.findings().count()
    );
    Ok(())
}

/// How long a push took: until every order was placed, and until Zoom had answered for every number.
struct Pushed {
    ordered: Duration,
    took: Duration,
}

/// Orders `count` numbers for `customer` (pushed at once: the customer is linked) and waits until
/// Zoom has answered for each of them.
async fn push(app: &App, customer: CustomerId, count: u32) -> anyhow::Result<Pushed> {
    use std::sync::atomic::Ordering;
    let by = Actor::System("bench".into());
    let stats = &app.zoom.as_deref().context("zoom")?.stats;
    let answered = || {
        stats.added.load(Ordering::Relaxed)
            + stats.already_done.load(Ordering::Relaxed)
            + stats.refused.load(Ordering::Relaxed)
    };
    let goal = answered() + u64::from(count);
    let t = Instant::now();
    let mut left = count;
    while left > 0 {
        let n = left.min(MAX_ORDER_NUMBERS);
        app.order_numbers(customer, OrderPick { count: n, ..Default::default() }, &[], &by)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        left -= n;
    }
    let ordered = t.elapsed();
    while answered() < goal {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(3600), "pushes still busy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t.elapsed();
    wait_for_no_job(app).await?;
    Ok(Pushed { ordered, took })
}

/// Waits until no push or repair job is waiting or running (the poll jobs wait a day).
async fn wait_for_no_job(app: &App) -> anyhow::Result<()> {
    let started = Instant::now();
    while busy(app).await? > 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "jobs still busy after an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

async fn busy(app: &App) -> anyhow::Result<usize> {
    Ok(app
        .jobs(None, 100_000)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|j| j.kind != JobKind::PollNumbers)
        .filter(|j| matches!(j.state, JobState::Pending | JobState::Running))
        .count())
}
