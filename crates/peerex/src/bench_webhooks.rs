//! `peerex bench webhooks`: how fast signed events reach a local receiver with 1, 10 and 100
//! endpoints, against the fastest honest way to send the same signed bodies (a plain client loop,
//! as many requests in flight as the dispatcher); and what delivery costs the change path (p99 of a
//! state change with no endpoint, and with endpoints being delivered to meanwhile).

use app::webhooks::{sign, WebhookSettings};
use app::App;
use axum::routing::post;
use clap::Args;
use domain::customer::OrderPick;
use domain::Actor;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct WebhooksBench {
    /// Deliveries per run (spread over the run's endpoints).
    #[arg(long, default_value_t = 4_000)]
    deliveries: u64,
    /// State changes timed for the change path's p99.
    #[arg(long, default_value_t = 400)]
    changes: usize,
    /// Also on PostgreSQL: a server URL (scripts/pg-throwaway starts one).
    #[arg(long)]
    postgres: Option<String>,
}

/// A receiver that answers 204 to everything and counts.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let router = axum::Router::new().route(
        "/hook",
        post(move |_body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((url, count))
}

async fn fresh_app(url: &str) -> anyhow::Result<App> {
    let store = store::Store::connect(url).await?;
    store.migrate().await?;
    let settings = app::Settings {
        webhooks: WebhookSettings { allow_private_targets: true, ..WebhookSettings::default() },
        ..app::Settings::default()
    };
    Ok(App::new(store, Arc::new(domain::SystemClock), settings)
        .with_webhook_keys(app::token_keys::TokenKeys::generate("bench")))
}

fn by() -> Actor {
    Actor::System("bench".into())
}

/// Imports `count` numbers from `first` and a customer to order them.
async fn stock(app: &App, first: u64, count: u64) -> anyhow::Result<domain::CustomerId> {
    let range = format!("+{first}-+{}", first + count - 1);
    app.import_range(&range, &Default::default(), &by(), false, &|_| {}).await?;
    let c = app
        .create_customer(&format!("bench {first}"), &format!("B-{first}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(c.id)
}

/// Delivers `events` events to each of `endpoints` endpoints through one dispatcher; deliveries
/// a second.
async fn peerex_rate(db: &str, endpoints: u64, events: u64) -> anyhow::Result<f64> {
    let app = fresh_app(db).await?;
    let (url, got) = receiver().await?;
    for _ in 0..endpoints {
        app.create_webhook_endpoint(
            &by(),
            app::webhooks::EndpointInput { url: url.clone(), ..Default::default() },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // One order of `events - 1` numbers: a state change each, and the order placed.
    let c = stock(&app, 15_550_000_000, events - 1).await?;
    let pick = OrderPick { count: (events - 1) as u32, ..Default::default() };
    app.create_order(c, pick, &[], &by()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let want = endpoints * events;
    let d = app.webhook_dispatcher("bench");
    let started = Instant::now();
    while got.load(Ordering::Relaxed) < want {
        if d.run_once().await? == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(want as f64 / started.elapsed().as_secs_f64())
}

/// The same number of signed bodies posted by a plain client loop, as many in flight as the
/// dispatcher sends at once; deliveries a second.
async fn baseline_rate(total: u64) -> anyhow::Result<f64> {
    let (url, got) = receiver().await?;
    let client = reqwest::Client::new();
    let secret = app::webhooks::new_secret();
    let data = serde_json::json!({ "number_id": uuid::Uuid::now_v7(), "e164": "+15550000000", "from": "available", "to": "reserved", "reason": null, "customer_id": uuid::Uuid::now_v7(), "actor": "system:bench" }).to_string();
    let in_flight = WebhookSettings::default().concurrency as u64;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (client, url, secret, data, next) =
            (client.clone(), url.clone(), secret.clone(), data.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let id = uuid::Uuid::now_v7().to_string();
                let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                let body = app::webhooks::body(
                    "number.state_changed",
                    time::OffsetDateTime::now_utc(),
                    &data,
                );
                let sig = sign(&secret, &id, ts, &body).unwrap_or_default();
                let _ = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig)
                    .body(body)
                    .send()
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    anyhow::ensure!(got.load(Ordering::Relaxed) == total, "the receiver missed requests");
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// p50 and p99 of `changes` one-number orders (a state change and an order placed, one
/// transaction each), with `endpoints` endpoints being delivered to meanwhile.
async fn change_path(
    db: &str,
    endpoints: u64,
    changes: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let app = fresh_app(db).await?;
    let (url, _got) = receiver().await?;
    for _ in 0..endpoints {
        app.create_webhook_endpoint(
            &by(),
            app::webhooks::EndpointInput { url: url.clone(), ..Default::default() },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let c = stock(&app, 15_560_000_000, changes as u64).await?;
    let dispatcher = (endpoints > 0).then(|| app.spawn_webhook_dispatcher());
    let mut times = Vec::with_capacity(changes);
    for _ in 0..changes {
        let pick = OrderPick { count: 1, ..Default::default() };
        let started = Instant::now();
        app.create_order(c, pick, &[], &by()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(started.elapsed());
    }
    if let Some(d) = dispatcher {
        d.shutdown().await;
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

pub async fn run(args: WebhooksBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.deliveries >= 200 && args.changes >= 10,
        "--deliveries >= 200, --changes >= 10"
    );
    let dir = std::env::temp_dir().join(format!("peerex-bench-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut dbs = vec![("sqlite", None)];
    if args.postgres.is_some() {
        dbs.push(("postgres", args.postgres.clone()));
    }
    let mut n = 0;
    let mut db_url = |backend: &str, pg: &Option<String>| {
        n += 1;
        let i = n;
        let dir = dir.clone();
        let pg = pg.clone();
        let backend = backend.to_owned();
        async move {
            match pg {
                Some(base) => crate::bench::fresh_pg(&base, &format!("hooks{i}")).await,
                None => Ok(format!("sqlite://{}", dir.join(format!("{backend}-{i}.db")).display())),
            }
        }
    };
    let baseline = baseline_rate(args.deliveries).await?;
    println!(
        "baseline: a plain client loop posting {} signed bodies: {baseline:.0} deliveries/s",
        args.deliveries
    );
    println!(
        "\n{:<9} {:>9} {:>8} {:>14} {:>9}",
        "database", "endpoints", "events", "deliveries/s", "baseline/peerex"
    );
    let mut paths = Vec::new();
    for (backend, pg) in &dbs {
        for endpoints in [1u64, 10, 100] {
            let events = (args.deliveries / endpoints).max(2);
            let rate = peerex_rate(&db_url(backend, pg).await?, endpoints, events).await?;
            println!(
                "{backend:<9} {endpoints:>9} {events:>8} {rate:>14.0} {:>8.2}x",
                baseline / rate
            );
        }
        let without = change_path(&db_url(backend, pg).await?, 0, args.changes).await?;
        let with = change_path(&db_url(backend, pg).await?, 10, args.changes).await?;
        paths.push((backend, without, with));
    }
    println!("\nstate change (a one-number order, one transaction), {} changes:", args.changes);
    println!(
        "{:<9} {:>24} {:>32} {:>10}",
        "database", "no endpoint p50/p99 ms", "10 endpoints delivering p50/p99 ms", "p99 ratio"
    );
    for (backend, (p50a, p99a), (p50b, p99b)) in paths {
        println!(
            "{backend:<9} {:>11.2} / {:>9.2} {:>19.2} / {:>10.2} {:>9.2}x",
            p50a.as_secs_f64() * 1e3,
            p99a.as_secs_f64() * 1e3,
            p50b.as_secs_f64() * 1e3,
            p99b.as_secs_f64() * 1e3,
            p99b.as_secs_f64() / p99a.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}
