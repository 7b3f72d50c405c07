//! `peerex bench import`: imports generated numbers through peerex and, in the same invocation, the
//! raw floor for the same rows on the same database (SQLite: one prepared INSERT stepped in-process
//! through SQLite's C API in one transaction; PostgreSQL: binary `COPY`), and prints the ratio. Then times search pages at that size.
//! Absolute times on a shared machine are noise; the ratio is the result.

use clap::Subcommand;
use domain::number::NumberAttrs;
use domain::search::NumberQuery;
use domain::{Actor, NumberState};
use rand::Rng;
use sqlx::Connection;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Import N generated numbers on SQLite (and PostgreSQL with --postgres) against the raw floor.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// A PostgreSQL server URL to also run on (a fresh database is created there);
        /// `scripts/pg-throwaway` starts one.
        #[arg(long)]
        postgres: Option<String>,
        /// Search pages to time after the import.
        #[arg(long, default_value_t = 2_000)]
        searches: usize,
    },
    /// Drive the Zoom simulator with 100 accounts at once, far above Zoom's 40 requests/s each.
    ZoomSim(crate::bench_zoom_sim::ZoomSimBench),
    /// Push 100,000 numbers to one Zoom account (the simulator at 40 requests/s) against the bound.
    Push(crate::bench_push::PushBench),
    /// Reconcile a converged Zoom account against the listing's bound; inject drift, find, repair.
    Reconcile(crate::bench_reconcile::ReconcileBench),
    /// The SIP redirect server against Kamailio's htable baseline (reference/routing) on 1,000,000
    /// numbers at 10,000 calls/s, each pinned to one core; the lookup API under wrk; change to
    /// decision latency; snapshot memory per number.
    Sip(crate::bench_sip::SipBench),
    /// The routing snapshot at 10,000,000 numbers: bytes a number, build and last-known-good
    /// load times, lookup latency alone and while changes are applied, against a plain HashMap
    /// and a sorted Vec in the same process.
    Snapshot(crate::bench_snapshot::SnapshotBench),
    /// Signed webhooks: events delivered per second with 1, 10 and 100 endpoints against a plain
    /// client loop, and the change path's p99 with and without endpoints.
    Webhooks(crate::bench_webhooks::WebhooksBench),
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<ExitCode> {
    let (count, postgres, searches) = match cmd {
        BenchCmd::Import { count, postgres, searches } => (count, postgres, searches),
        BenchCmd::ZoomSim(args) => return crate::bench_zoom_sim::run(args).await,
        BenchCmd::Push(args) => return crate::bench_push::run(args).await,
        BenchCmd::Reconcile(args) => return crate::bench_reconcile::run(args).await,
        BenchCmd::Sip(args) => return crate::bench_sip::run(args).await,
        BenchCmd::Snapshot(args) => return crate::bench_snapshot::run(args).await,
        BenchCmd::Webhooks(args) => return crate::bench_webhooks::run(args).await,
    };
    anyhow::ensure!(
        (1..=domain::import::MAX_IMPORT_NUMBERS as u64).contains(&count),
        "--count must be 1 to {}",
        domain::import::MAX_IMPORT_NUMBERS
    );
    let dir = tempfile_dir()?;
    let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
    let floor_sqlite = format!("sqlite://{}", dir.join("floor.db").display());
    // Create the PostgreSQL databases first so a bad URL fails before the long SQLite run.
    let pg = match postgres {
        Some(base) => Some((fresh_pg(&base, "bench").await?, fresh_pg(&base, "floor").await?)),
        None => {
            eprintln!(
                "(PostgreSQL skipped: pass --postgres URL; scripts/pg-throwaway starts a server)"
            );
            None
        }
    };
    let sqlite_result = bench_one("sqlite", &sqlite, &floor_sqlite, count, searches).await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut results = vec![sqlite_result?];
    print_row(&results[0], count);
    if let Some((db, floor)) = pg {
        results.push(bench_one("postgres", &db, &floor, count, searches).await?);
        print_row(&results[1], count);
    }
    println!(
        "\n{:<9} {:>10} {:>12} {:>12} {:>8} {:>12} {:>12}",
        "database", "numbers", "peerex s", "floor s", "ratio", "search p50", "search p99"
    );
    for r in &results {
        println!(
            "{:<9} {:>10} {:>12.2} {:>12.2} {:>7.2}x {:>9.2} ms {:>9.2} ms",
            r.backend,
            count,
            r.peerex.as_secs_f64(),
            r.floor.as_secs_f64(),
            r.peerex.as_secs_f64() / r.floor.as_secs_f64(),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3
        );
    }
    println!("goals: import ratio <= 2.00x, search page p99 <= 50 ms");
    Ok(ExitCode::SUCCESS)
}

struct Result {
    backend: &'static str,
    peerex: Duration,
    floor: Duration,
    p50: Duration,
    p99: Duration,
}

/// Each database's figures as soon as they exist, so a later failure does not lose them.
fn print_row(r: &Result, count: u64) {
    eprintln!(
        "{}: {count} numbers, peerex {:.2} s, floor {:.2} s ({:.2}x), search p50 {:.2} ms, p99 {:.2} ms",
        r.backend,
        r.peerex.as_secs_f64(),
        r.floor.as_secs_f64(),
        r.peerex.as_secs_f64() / r.floor.as_secs_f64(),
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    );
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("peerex-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(crate) async fn fresh_pg(base: &str, what: &str) -> anyhow::Result<String> {
    let name = format!("peerex_{what}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(base).await?;
    // One statement per call: PostgreSQL refuses DROP/CREATE DATABASE inside the implicit
    // transaction a multi-statement simple query runs in.
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let (head, _) = base.rsplit_once('/').ok_or_else(|| {
        anyhow::anyhow!("--postgres must be a URL like postgres://user@host:port/db")
    })?;
    Ok(format!("{head}/{name}"))
}

fn range(count: u64) -> String {
    let first = 15_550_000_000u64;
    format!("+{first}-+{}", first + count - 1)
}

async fn bench_one(
    backend: &'static str,
    url: &str,
    floor_url: &str,
    count: u64,
    searches: usize,
) -> anyhow::Result<Result> {
    eprintln!("{backend}: importing {count} numbers through peerex...");
    let store = store::Store::connect(url).await?;
    store.migrate().await?;
    let app =
        app::App::new(store, std::sync::Arc::new(domain::SystemClock), app::Settings::default());
    let attrs =
        NumberAttrs { tags: vec!["bench".into()], region: Some("US".into()), ..Default::default() };
    let rows =
        domain::import::parse_range(&range(count), &attrs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let outcome = app
        .import_numbers(
            domain::import::ImportPlan { rows, errors: Vec::new() },
            &Actor::System("bench".into()),
            false,
            &|_| {},
        )
        .await?;
    let peerex = started.elapsed();
    anyhow::ensure!(outcome.added as u64 == count, "import added {} of {count}", outcome.added);

    eprintln!("{backend}: raw floor for the same rows...");
    let floor = floor(backend, floor_url, count).await?;

    eprintln!("{backend}: timing {searches} search pages...");
    let mut rng = rand::thread_rng();
    let mut times = Vec::with_capacity(searches);
    for i in 0..searches {
        let n = 15_550_000_000u64 + rng.gen_range(0..count);
        let digits = rng.gen_range(6..=9);
        let prefix = format!("+{}", &n.to_string()[..digits]);
        let query = NumberQuery {
            prefix: Some(prefix),
            state: (i % 2 == 0).then_some(NumberState::Available),
            tag: (i % 3 == 0).then(|| "bench".to_owned()),
            after: (i % 4 == 0).then(|| format!("+{n}")),
            limit: 100,
            ..Default::default()
        };
        let started = Instant::now();
        app.search_numbers(&query).await?;
        times.push(started.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Ok(Result { backend, peerex, floor, p50: pct(0.50), p99: pct(0.99) })
}

/// The `numbers` table's secondary indexes, so the floor's table has the same shape as peerex's;
/// what peerex adds on top (the audit events, the existence check) is what the ratio measures.
const FLOOR_INDEXES: &str = "CREATE INDEX floor_state_e164 ON numbers (state, e164); \
    CREATE INDEX floor_customer_e164 ON numbers (customer_id, e164) WHERE customer_id IS NOT NULL; \
    CREATE INDEX floor_order ON numbers (order_id) WHERE order_id IS NOT NULL;";

/// The fastest plain way to put the same rows into a same-shaped table on this database.
async fn floor(backend: &str, url: &str, count: u64) -> anyhow::Result<Duration> {
    let columns = "id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at";
    let now = time::OffsetDateTime::now_utc();
    if backend == "sqlite" {
        // One prepared INSERT stepped in-process through SQLite's C API (rusqlite over the same
        // bundled SQLite sqlx links), in one transaction: no per-row round trip to a worker thread
        // as sqlx has, so this is as fast as plain SQLite loads rows.
        let path = url.trim_start_matches("sqlite://").to_owned();
        let stamp = now.format(&time::format_description::well_known::Rfc3339)?;
        let columns = columns.to_owned();
        return tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
            let mut conn = rusqlite::Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(&format!(
                "CREATE TABLE numbers (id BLOB PRIMARY KEY, e164 TEXT NOT NULL UNIQUE, state TEXT NOT NULL, customer_id BLOB, order_id BLOB, \
                 tags TEXT NOT NULL, billing_ref TEXT, region TEXT, note TEXT, reason TEXT, aging_until TEXT, updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0); \
                 {FLOOR_INDEXES}",
            ))?;
            let started = Instant::now();
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare(&format!(
                    "INSERT INTO numbers ({columns}) VALUES (?1, ?2, 'available', NULL, NULL, ',bench,', NULL, 'US', NULL, NULL, NULL, ?3)"
                ))?;
                let mut e164 = String::with_capacity(16);
                for i in 0..count {
                    e164.clear();
                    e164.push('+');
                    e164.push_str(itoa::Buffer::new().format(15_550_000_000u64 + i));
                    let id = uuid_v7();
                    insert.execute(rusqlite::params![&id.as_bytes()[..], e164, stamp])?;
                }
            }
            tx.commit()?;
            Ok(started.elapsed())
        })
        .await?;
    }
    {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(&format!(
            "CREATE TABLE numbers (id uuid PRIMARY KEY, e164 text COLLATE \"C\" NOT NULL UNIQUE, state text NOT NULL, customer_id uuid, order_id uuid, \
             tags text NOT NULL, billing_ref text, region text, note text, reason text, aging_until timestamptz, updated_at timestamptz NOT NULL, version bigint NOT NULL DEFAULT 0); \
             {FLOOR_INDEXES}",
        ))
        .execute(&mut conn)
        .await?;
        // Binary format, as peerex's import sends (faster than csv: the server parses no UUID or
        // time text), written straight into one reused buffer.
        let pg_epoch = time::macros::datetime!(2000-01-01 0:00 UTC);
        let micros = ((now - pg_epoch).whole_microseconds() as i64).to_be_bytes();
        let field = |buf: &mut Vec<u8>, v: &[u8]| {
            buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
            buf.extend_from_slice(v);
        };
        let null = (-1i32).to_be_bytes();
        let started = Instant::now();
        let mut copy = conn
            .copy_in_raw(&format!("COPY numbers ({columns}) FROM STDIN (FORMAT binary)"))
            .await?;
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        let mut digits = itoa::Buffer::new();
        for i in 0..count {
            buf.extend_from_slice(&12i16.to_be_bytes());
            field(&mut buf, uuid_v7().as_bytes());
            let n = digits.format(15_550_000_000u64 + i);
            buf.extend_from_slice(&(n.len() as i32 + 1).to_be_bytes());
            buf.push(b'+');
            buf.extend_from_slice(n.as_bytes());
            field(&mut buf, b"available");
            buf.extend_from_slice(&null);
            buf.extend_from_slice(&null);
            field(&mut buf, b",bench,");
            buf.extend_from_slice(&null);
            field(&mut buf, b"US");
            buf.extend_from_slice(&null);
            buf.extend_from_slice(&null);
            buf.extend_from_slice(&null);
            field(&mut buf, &micros);
            if buf.len() > (1 << 20) - 256 {
                copy.send(&buf[..]).await?;
                buf.clear();
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        copy.send(&buf[..]).await?;
        copy.finish().await?;
        Ok(started.elapsed())
    }
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
