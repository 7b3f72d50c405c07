//! `peerex bench reconcile`: how close a full reconciliation of a converged Zoom account comes to the
//! bound Zoom's page size and rate limit allow, and whether injected drift is found exactly and
//! repaired.
//!
//! One Zoom account (the simulator's demo world at `--rate` requests a second) and one customer with
//! `--numbers` numbers pushed and active. A full cycle lists every page (300 numbers each): no client
//! can list them faster than `pages / rate` seconds, printed beside the time taken. Then `--drift`
//! numbers of each kind the simulator can inject are changed silently (deleted, re-trunked,
//! deactivated), picked at random: one cycle must find every one and nothing else, and after the
//! automatic repairs run through the outbox the next cycle must find nothing.

use anyhow::Context;
use app::reconcile::{Outcome, ReconcileRequest, RepairWhich};
use app::App;
use domain::customer::{OrderPick, MAX_ORDER_NUMBERS};
use domain::reconcile::FindingKind;
use domain::{Actor, NumberState};
use rand::seq::SliceRandom;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use zoom_sim::demo;

#[derive(clap::Args)]
pub struct ReconcileBench {
    /// Numbers in the Zoom account.
    #[arg(long, default_value_t = 30_000)]
    numbers: u32,
    /// Zoom's requests per second for the account (40: Business plan and up).
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Numbers of each drift kind injected.
    #[arg(long, default_value_t = 20)]
    drift: usize,
}

pub async fn run(args: ReconcileBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (300..=1_000_000).contains(&args.numbers),
        "--numbers must be 300 to 1,000,000"
    );
    anyhow::ensure!((1..=1000).contains(&args.rate), "--rate must be 1 to 1000");
    anyhow::ensure!(
        args.drift * 3 <= args.numbers as usize / 2,
        "--drift is too many for --numbers"
    );
    let (zoom_url, _sim, _serving) = crate::bench_push::spawn_sim(args.rate).await?;
    let dir = std::env::temp_dir().join(format!("peerex-bench-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let result = bench(&url, &zoom_url, &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(url: &str, zoom_url: &str, args: &ReconcileBench) -> anyhow::Result<ExitCode> {
    let store = store::Store::connect(url).await?;
    store.migrate().await?;
    let (app, customer) = crate::bench_push::carrier_app(store, zoom_url, args.rate, 8).await?;
    let err = |e: app::AppError| anyhow::anyhow!("{e}");

    eprintln!("setting up {} active numbers...", args.numbers);
    let by = Actor::System("bench".into());
    let first = 15_550_000_000u64;
    let last = first + u64::from(args.numbers) - 1;
    app.import_range(&format!("+{first}-+{last}"), &Default::default(), &by, false, &|_| {})
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
    let code = crate::bench_push::authorize(zoom_url).await?;
    let started = app.begin_install(&code).await.map_err(err)?;
    let account = started.pending.zoom_account_id.clone();
    app.confirm_install(customer.id, &started.cookie, account.as_str(), &by).await.map_err(err)?;
    let workers = app.spawn_workers();
    wait_for_no_job(&app).await?;
    let req = ReconcileRequest { customer: Some(customer.id), dry_run: false };

    // The floor: the same listing straight through the client, with no pacing and no database.
    let link = app.zoom_link(customer.id).await.map_err(err)?.context("the link")?;
    let token = app.access_token(&link, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let z = app.zoom.as_deref().context("zoom")?;
    let t = Instant::now();
    let raw = raw_listing(&z.client, &token).await?;
    let raw_took = t.elapsed();
    anyhow::ensure!(
        raw.numbers == args.numbers as usize,
        "the raw listing has {} numbers",
        raw.numbers
    );
    // Its calls count against the account's limit: let that second pass.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A converged account: nothing found, at the pace Zoom allows.
    let t = Instant::now();
    let report = app.reconcile(&req).await.map_err(err)?;
    let took = t.elapsed();
    let cycle = &report.cycles[0];
    anyhow::ensure!(
        cycle.outcome == Outcome::Complete,
        "the cycle did not complete: {:?}",
        cycle.outcome
    );
    let converged = report.findings().count();
    let pages = u64::from(args.numbers).div_ceil(300);
    let bound = pages as f64 / f64::from(args.rate);

    // Drift of each kind the simulator injects, at random among the numbers.
    let mut all: Vec<u64> = (first..=last).collect();
    all.shuffle(&mut rand::thread_rng());
    let http = reqwest::Client::new();
    let mut injected = BTreeSet::new();
    for (i, n) in all.iter().take(args.drift * 3).enumerate() {
        let e164 = format!("+{n}");
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
        injected.insert((kind, e164));
    }
    let t = Instant::now();
    let report = app.reconcile(&req).await.map_err(err)?;
    let drift_took = t.elapsed();
    let found: BTreeSet<_> = report.findings().map(|f| (f.kind, f.subject.clone())).collect();
    let missed = injected.difference(&found).count();
    let extra = found.difference(&injected).count();
    let repairs =
        app.repair_findings(&RepairWhich::Automatic { customer: None }, &by).await.map_err(err)?;
    wait_for_no_job(&app).await?;
    let report = app.reconcile(&req).await.map_err(err)?;
    let after = report.findings().count();
    drop(workers);
    let active = app
        .count_by_state()
        .await
        .map_err(err)?
        .into_iter()
        .find(|(s, _)| *s == NumberState::Active)
        .map_or(0, |(_, n)| n);

    println!(
        "\n{} numbers in one Zoom account at {} requests/s: {pages} pages, bound {bound:.2} s (pages / rate)",
        args.numbers, args.rate
    );
    println!(
        "raw listing (the client alone, no pacing, no database): {:.2} s, {:.1}% of the bound",
        raw_took.as_secs_f64(),
        100.0 * bound / raw_took.as_secs_f64()
    );
    println!(
        "per page (request to answer, client side): median {:.1} ms, slowest {:.1} ms, first {:.1} ms, last {:.1} ms; {} waits on 429",
        ms(raw.median()),
        ms(raw.page_times.iter().max().copied().unwrap_or_default()),
        ms(raw.page_times.first().copied().unwrap_or_default()),
        ms(raw.page_times.last().copied().unwrap_or_default()),
        raw.waits
    );
    println!(
        "converged cycle: {:.2} s, {:.1}% of the bound, {converged} findings",
        took.as_secs_f64(),
        100.0 * bound / took.as_secs_f64()
    );
    println!(
        "drift cycle: {:.2} s; {} injected, {} found, {missed} missed, {extra} not injected",
        drift_took.as_secs_f64(),
        injected.len(),
        found.len()
    );
    println!(
        "repairs: {} queued in {} jobs; after them {after} findings; {active} numbers active",
        repairs.queued.len(),
        repairs.jobs
    );
    println!("(Goal: converged >= 90% of the bound with 0 findings; every drift found, none extra; 0 findings after the repairs.)");
    Ok(ExitCode::SUCCESS)
}

/// The raw listing: every page straight through the client, each timed from request to answer; a 429
/// is waited out (its wait is no page's time), so the listing outruns the rate limit only as far as
/// the pages are fast.
struct RawListing {
    numbers: usize,
    page_times: Vec<Duration>,
    waits: usize,
}

impl RawListing {
    fn median(&self) -> Duration {
        let mut times = self.page_times.clone();
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or_default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn raw_listing(client: &zoom::Client, token: &str) -> anyhow::Result<RawListing> {
    let mut raw = RawListing { numbers: 0, page_times: Vec::new(), waits: 0 };
    let mut next: Option<String> = None;
    loop {
        let asked = Instant::now();
        match client.list_peering_numbers(token, next.as_deref()).await {
            Ok(page) => {
                raw.page_times.push(asked.elapsed());
                raw.numbers += page.numbers.len();
                match page.next_page_token {
                    Some(t) => next = Some(t),
                    None => return Ok(raw),
                }
            }
            Err(zoom::ZoomError::RateLimited { retry_after }) => {
                raw.waits += 1;
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until no push or repair job is waiting or running (the poll job waits an hour).
async fn wait_for_no_job(app: &App) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let busy = app
            .jobs(None, 100_000)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .into_iter()
            .filter(|j| j.kind != domain::onboarding::JobKind::PollNumbers)
            .filter(|j| {
                matches!(
                    j.state,
                    domain::onboarding::JobState::Pending | domain::onboarding::JobState::Running
                )
            })
            .count();
        if busy == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "jobs still busy after an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
