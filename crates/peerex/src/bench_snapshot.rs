//! `peerex bench snapshot`: the routing snapshot at carrier scale. Builds it from generated numbers
//! (ranges of several sizes in ten numbering plans of 11 to 15 digits, four states, 1,000
//! customers) as a full load from the database does, page by page; prints its bytes a number
//! (what it holds, and the process's resident memory) against the goal of 32, the build and the
//! last-known-good file's write and read times against 5 s; then times lookups on one thread,
//! alone and while another thread applies a stream of changes as the follower does. Beside it,
//! in the same process, the fastest plain ways to hold the same map: `std`'s `HashMap` (hashbrown)
//! with the same hash and no lock, and a sorted `Vec<(u64, u32)>` searched by halves.
//!
//! `--sqlite` also times the full load from a SQLite database of the same numbers (generated
//! first; minutes at 10 million), split into the database's part and the snapshot's;
//! `--postgres URL` the same from a fresh database on that PostgreSQL server.

use domain::routing::{Direction, NumberFacts, RoutingCustomer};
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{CustomerId, NumberState, PhoneNumber};
use routing::snapshot::Snapshot;
use routing::Routing;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct SnapshotBench {
    /// Numbers in the snapshot.
    #[arg(long, default_value_t = 10_000_000)]
    numbers: u64,
    /// Lookups timed in each phase.
    #[arg(long, default_value_t = 5_000_000)]
    lookups: usize,
    /// Changes a second applied while lookups are timed in the second phase.
    #[arg(long, default_value_t = 50_000)]
    updates_per_second: u64,
    /// Also time a full load from a SQLite database holding the numbers (made first, in a
    /// temporary directory; about 1.5 GB and several minutes at 10 million).
    #[arg(long)]
    sqlite: bool,
    /// Also time a full load from PostgreSQL: a fresh database is made on this server, filled
    /// with the numbers (COPY, not timed) and dropped after.
    #[arg(long)]
    postgres: Option<String>,
}

const TRUNK: &str = "zoom-a";
const CUSTOMERS: usize = 1_000;
/// (country code, digits in all): NANP, UK, Germany's two lengths, France, Australia, the
/// Netherlands, Ireland, Hong Kong, and a 15-digit international network.
const PLANS: [(u64, u32); 10] = [
    (1, 11),
    (44, 12),
    (49, 11),
    (49, 13),
    (33, 11),
    (61, 11),
    (31, 11),
    (353, 12),
    (852, 11),
    (882, 15),
];
/// Range sizes, used in turn: a carrier holds blocks of 100 up to 100,000.
const RANGE_SIZES: [u64; 6] = [100, 1_000, 10_000, 2_500, 50_000, 100_000];

/// The generated numbers: ranges, each the next one of its plan, 200,000 apart.
struct Numbers {
    /// (first number, count, numbers before it).
    ranges: Vec<(u64, u64, u64)>,
    total: u64,
}

impl Numbers {
    fn new(total: u64) -> Self {
        let mut ranges = Vec::new();
        let (mut before, mut r) = (0u64, 0u64);
        while before < total {
            let (cc, digits) = PLANS[(r % PLANS.len() as u64) as usize];
            let national = digits - cc.to_string().len() as u32;
            let slot = r / PLANS.len() as u64;
            let first = cc * 10u64.pow(national) + 10u64.pow(national - 1) + slot * 200_000;
            let count = RANGE_SIZES[(r % RANGE_SIZES.len() as u64) as usize].min(total - before);
            assert!(first + count < (cc + 1) * 10u64.pow(national), "plan {cc} is full");
            ranges.push((first, count, before));
            before += count;
            r += 1;
        }
        Numbers { ranges, total }
    }

    /// The `i`th number (0 ≤ i < total).
    fn key(&self, i: u64) -> u64 {
        let at = self.ranges.partition_point(|r| r.2 <= i) - 1;
        let (first, _, before) = self.ranges[at];
        first + (i - before)
    }

    fn facts(&self, i: u64, customers: &[CustomerId]) -> NumberFacts {
        let state = state_of(i);
        NumberFacts {
            e164: PhoneNumber::from_trusted(format!("+{}", self.key(i))),
            state,
            customer: customer_of(i).map(|c| customers[c]),
            reason: None,
        }
    }
}

/// Which of the [`CUSTOMERS`] holds the `i`th number, in blocks of 100; none while it is aging.
fn customer_of(i: u64) -> Option<usize> {
    (state_of(i) != NumberState::Aging).then_some((i / 100) as usize % CUSTOMERS)
}

/// 85% active, 5% each suspended, released (aging, no customer) and porting.
fn state_of(i: u64) -> NumberState {
    match i % 20 {
        0 => NumberState::Suspended,
        1 => NumberState::Aging,
        2 => NumberState::Porting,
        _ => NumberState::Active,
    }
}

/// The number a lookup asks for: 95% of them known, 5% unknown (a plan no range uses).
fn lookup_keys(numbers: &Numbers, count: usize, seed: u64) -> Vec<u64> {
    let mut rng = XorShift(seed);
    (0..count)
        .map(|n| {
            let x = rng.next();
            if n % 20 == 19 {
                99_900_000_000 + x % 1_000_000
            } else {
                numbers.key(x % numbers.total)
            }
        })
        .collect()
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The baseline map's hash: MurmurHash3's finalizer, the snapshot's own, so the comparison is of
/// the tables and not of their hash functions.
#[derive(Default)]
struct Fmix(u64);
impl Hasher for Fmix {
    fn finish(&self) -> u64 {
        let mut k = self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

fn rss() -> u64 {
    status_kb("VmRSS:") * 1024
}

/// Restarts the peak resident memory (VmHWM) from the current one.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak() -> u64 {
    status_kb("VmHWM:") * 1024
}

/// Nanoseconds at percentiles 50, 99, 99.9 and the largest.
struct Latency {
    p50: u32,
    p99: u32,
    p999: u32,
    max: u32,
}

fn latency(mut ns: Vec<u32>) -> Latency {
    ns.sort_unstable();
    let at = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)];
    Latency { p50: at(0.50), p99: at(0.99), p999: at(0.999), max: *ns.last().unwrap_or(&0) }
}

/// Times `f` on each key, one at a time.
fn time_each(keys: &[u64], mut f: impl FnMut(u64) -> u64) -> Vec<u32> {
    let mut ns = Vec::with_capacity(keys.len());
    let mut sink = 0u64;
    for &k in keys {
        let t = Instant::now();
        sink = sink.wrapping_add(f(std::hint::black_box(k)));
        ns.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    std::hint::black_box(sink);
    ns
}

fn per_number(bytes: u64, n: u64) -> f64 {
    bytes as f64 / n.max(1) as f64
}

fn customers_and_trunk() -> anyhow::Result<(Vec<CustomerId>, Vec<RoutingCustomer>, ZoomTrunk)> {
    let trunk = ZoomTrunk::parse(
        TRUNK,
        &["sip:zoom-a.zoom-peer.invalid;transport=tls"],
        NumberingRule::nanp(),
        time::OffsetDateTime::UNIX_EPOCH,
    )?;
    let ids: Vec<CustomerId> = (0..CUSTOMERS).map(|_| CustomerId::new()).collect();
    let routing = ids
        .iter()
        .map(|c| RoutingCustomer { id: *c, trunk: Some(TRUNK.into()), app_removed: false })
        .collect();
    Ok((ids, routing, trunk))
}

pub async fn run(args: SnapshotBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.numbers >= 1_000, "--numbers must be at least 1,000");
    anyhow::ensure!(args.lookups >= 1_000, "--lookups must be at least 1,000");
    let numbers = Numbers::new(args.numbers);
    let n = args.numbers;
    let (ids, customers, trunk) = customers_and_trunk()?;
    println!(
        "routing snapshot of {n} numbers ({} ranges of 100 to 100,000 in {} numbering plans, 11 to 15 digits; {CUSTOMERS} customers)",
        numbers.ranges.len(),
        PLANS.len()
    );

    // --- build, page by page as a load from the database does (making the pages is not timed)
    let rss0 = rss();
    reset_peak();
    let mut s = Snapshot::default();
    s.set_customers(customers, vec![trunk]);
    let mut building = Duration::ZERO;
    let mut page = Vec::with_capacity(50_000);
    let mut i = 0;
    while i < n {
        page.clear();
        page.extend((i..(i + 50_000).min(n)).map(|i| numbers.facts(i, &ids)));
        let t = Instant::now();
        s.load(&page);
        building += t.elapsed();
        i += page.len() as u64;
    }
    drop(page);
    let t = Instant::now();
    s.finish_load();
    building += t.elapsed();
    anyhow::ensure!(s.len() as u64 == n, "the snapshot holds {} of {n}", s.len());
    let (held, built_rss, built_peak) = (s.number_bytes() as u64, rss() - rss0, peak() - rss0);

    // --- the last-known-good file
    let dir = std::env::temp_dir().join(format!("peerex-bench-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(routing::lkg::FILE_NAME);
    let t = Instant::now();
    let file_bytes = routing::lkg::write(&file, &s, 0, "")?;
    let written = t.elapsed();
    let rss1 = rss();
    reset_peak();
    let t = Instant::now();
    let saved = routing::lkg::read(&file)?;
    let read = t.elapsed();
    let (read_rss, read_peak) = (rss() - rss1, peak() - rss1);
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(saved.snapshot.len() == s.len(), "the file gave back {}", saved.numbers);
    for k in lookup_keys(&numbers, 10_000, 3) {
        let (a, b) = (
            s.decide(Direction::Inbound, None, Some(k), None),
            saved.snapshot.decide(Direction::Inbound, None, Some(k), None),
        );
        anyhow::ensure!((a.status, a.customer) == (b.status, b.customer), "{k} read back differs");
    }
    drop(saved);

    println!(
        "peerex snapshot: {held} bytes held = {:.1} bytes/number (goal <= 32); process RSS +{:.0} MB = {:.1} bytes/number, peak +{:.0} MB = {:.1} bytes/number while building",
        per_number(held, n),
        built_rss as f64 / 1e6,
        per_number(built_rss, n),
        built_peak as f64 / 1e6,
        per_number(built_peak, n),
    );
    println!(
        "  built in {:.2} s (goal <= 5 s; the snapshot's work on pages already read, not making them)",
        building.as_secs_f64()
    );
    println!(
        "  last-known-good file: {:.0} MB written in {:.2} s, read back in {:.2} s (goal <= 5 s), reading it RSS +{:.0} MB, peak +{:.0} MB",
        file_bytes as f64 / 1e6,
        written.as_secs_f64(),
        read.as_secs_f64(),
        read_rss as f64 / 1e6,
        read_peak as f64 / 1e6,
    );

    // --- lookups
    let routing = Routing::from_snapshot(NumberingRule::nanp(), s);
    let keys = lookup_keys(&numbers, args.lookups, 1);
    let timer = {
        let t = Instant::now();
        let mut last = t;
        for _ in 0..100_000 {
            last = std::hint::black_box(Instant::now());
        }
        (last - t).as_nanos() as f64 / 100_000.0
    };
    let decide = |k: u64| {
        let a = routing.read().decide(Direction::Inbound, None, Some(k), None);
        u64::from(a.status)
    };
    let quiet = latency(time_each(&keys, decide));
    let state =
        latency(time_each(&keys, |k| routing.read().number_state(k).map_or(0, |s| s as u64)));

    // The same lookups while another thread applies changes as the follower does: batches every
    // 10 ms, through the same chunked write lock.
    let stop = AtomicBool::new(false);
    let applied = AtomicU64::new(0);
    let apply_busy = AtomicU64::new(0);
    let (busy, updated) = std::thread::scope(|scope| {
        let updater = scope.spawn(|| {
            let templates: Vec<NumberFacts> = (0..CUSTOMERS as u64 * 2)
                .map(|i| NumberFacts {
                    e164: PhoneNumber::from_trusted("+1".into()),
                    state: [NumberState::Active, NumberState::Suspended][(i % 2) as usize],
                    customer: Some(ids[(i / 2) as usize]),
                    reason: None,
                })
                .collect();
            let per_batch = (args.updates_per_second / 100).max(1);
            let mut rng = XorShift(77);
            let started = Instant::now();
            let mut next = started;
            let mut batch = Vec::with_capacity(per_batch as usize);
            while !stop.load(Ordering::Relaxed) {
                batch.clear();
                for _ in 0..per_batch {
                    let x = rng.next();
                    // 70% change a number's state or customer, 15% remove one, 15% add or put
                    // back one (removed ones come back: the count stays about the same).
                    let key = numbers.key(x % numbers.total);
                    let facts = match x >> 56 {
                        0..=178 => Some(&templates[(x >> 20) as usize % templates.len()]),
                        179..=216 => None,
                        _ => Some(&templates[0]),
                    };
                    batch.push((key, facts));
                }
                let t = Instant::now();
                routing.apply_numbers(batch.iter().copied());
                apply_busy.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                applied.fetch_add(per_batch, Ordering::Relaxed);
                next += Duration::from_millis(10);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            started.elapsed()
        });
        let busy = time_each(&keys, decide);
        stop.store(true, Ordering::Relaxed);
        (latency(busy), updater.join().unwrap_or_default())
    });
    let applied = applied.load(Ordering::Relaxed);
    drop(routing);

    // --- baselines, each alone in memory
    let (hash_bytes, hash_rss, hash_lat) = {
        let before = rss();
        let mut map: HashMap<u64, u32, BuildHasherDefault<Fmix>> =
            HashMap::with_capacity_and_hasher(n as usize, BuildHasherDefault::default());
        for i in 0..n {
            map.insert(numbers.key(i), state_of(i) as u32);
        }
        let held = rss() - before;
        // hashbrown: buckets a power of two, 7/8 usable; 16 bytes and 1 control byte each.
        let buckets = (map.capacity() / 7 * 8).next_power_of_two() as u64;
        let lat = latency(time_each(&keys, |k| u64::from(map.get(&k).copied().unwrap_or(0))));
        (buckets * 17, held, lat)
    };
    let (sorted_bytes, sorted_rss, sorted_lat) = {
        let before = rss();
        let mut v: Vec<(u64, u32)> = Vec::with_capacity(n as usize);
        v.extend((0..n).map(|i| (numbers.key(i), state_of(i) as u32)));
        v.sort_unstable_by_key(|e| e.0);
        let held = rss() - before;
        let lat = latency(time_each(&keys, |k| {
            v.binary_search_by_key(&k, |e| e.0).map_or(0, |i| u64::from(v[i].1))
        }));
        ((v.capacity() * 16) as u64, held, lat)
    };

    println!(
        "\nlookups: {} a phase on one thread, one at a time, timed each (the timer itself: {timer:.0} ns)",
        args.lookups
    );
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>9} {:>11} {:>9}",
        "", "p50 ns", "p99 ns", "p999 ns", "max us", "bytes/num", "RSS b/num"
    );
    let row = |name: &str, l: &Latency, bytes: Option<u64>, rss: Option<u64>| {
        println!(
            "{name:<44} {:>8} {:>8} {:>8} {:>9.1} {:>11} {:>9}",
            l.p50,
            l.p99,
            l.p999,
            l.max as f64 / 1e3,
            bytes.map_or(String::new(), |b| format!("{:.1}", per_number(b, n))),
            rss.map_or(String::new(), |b| format!("{:.1}", per_number(b, n))),
        )
    };
    row("peerex decide (lock, lookup, decision)", &quiet, Some(held), Some(built_rss));
    row(
        &format!("peerex decide, {:.0} changes/s applied", applied as f64 / updated.as_secs_f64()),
        &busy,
        None,
        None,
    );
    row("peerex number_state (lock, lookup)", &state, None, None);
    row("baseline HashMap<u64,u32>, no lock", &hash_lat, Some(hash_bytes), Some(hash_rss));
    row(
        "baseline sorted Vec<(u64,u32)>, by halves",
        &sorted_lat,
        Some(sorted_bytes),
        Some(sorted_rss),
    );
    println!(
        "\npeerex / HashMap: bytes {:.2}x, p99 {:.2}x (number_state), {:.2}x (decide); peerex / sorted Vec: bytes {:.2}x, p99 {:.2}x (number_state)",
        held as f64 / hash_bytes as f64,
        state.p99 as f64 / hash_lat.p99 as f64,
        quiet.p99 as f64 / hash_lat.p99 as f64,
        held as f64 / sorted_bytes as f64,
        state.p99 as f64 / sorted_lat.p99 as f64,
    );
    println!(
        "changes: {applied} applied in {:.1} s, {:.0} ns of wall time each in apply_numbers (write lock taken per {}); decide p99 with them / without: {:.2}x (goal: about 1), p999 {:.2}x",
        updated.as_secs_f64(),
        apply_busy.load(Ordering::Relaxed) as f64 / applied.max(1) as f64,
        routing::APPLY_CHUNK,
        busy.p99 as f64 / quiet.p99 as f64,
        busy.p999 as f64 / quiet.p999 as f64,
    );

    if args.sqlite {
        from_sqlite(&numbers, n).await?;
    }
    if let Some(base) = &args.postgres {
        from_postgres(base, &numbers, n).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Times a routing instance's full load from a SQLite database holding the numbers: once as the
/// follower does it, once split into reading the pages and loading them into the snapshot.
async fn from_sqlite(numbers: &Numbers, n: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("peerex-bench-snapshot-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = from_sqlite_in(&dir, numbers, n).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn from_sqlite_in(dir: &std::path::Path, numbers: &Numbers, n: u64) -> anyhow::Result<()> {
    let path = dir.join("bench.db");
    let url = format!("sqlite://{}", path.display());
    let store = store::Store::connect(&url).await?;
    store.migrate().await?;
    eprintln!("sqlite: writing {n} numbers (not timed)...");
    let t = Instant::now();
    let db_path = path.clone();
    let total = numbers.total;
    let ranges = numbers.ranges.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let numbers = Numbers { ranges, total };
        let mut conn = rusqlite::Connection::open(&db_path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        let tx = conn.transaction()?;
        let stamp = "2026-01-01T00:00:00Z";
        let ids: Vec<uuid::Uuid> = (0..CUSTOMERS).map(|_| uuid::Uuid::now_v7()).collect();
        {
            let mut c = tx.prepare(
                "INSERT INTO customers (id, name, contract_ref, contract_state, created_at) VALUES (?1, ?2, ?2, 'active', ?3)",
            )?;
            for (i, id) in ids.iter().enumerate() {
                c.execute(rusqlite::params![&id.as_bytes()[..], format!("bench {i}"), stamp])?;
            }
            let mut insert = tx.prepare(
                "INSERT INTO numbers (id, e164, state, customer_id, tags, updated_at) VALUES (?1, ?2, ?3, ?4, ',bench,', ?5)",
            )?;
            for i in 0..numbers.total {
                let state = state_of(i);
                let customer = customer_of(i).map(|c| ids[c].as_bytes().to_vec());
                insert.execute(rusqlite::params![
                    &uuid::Uuid::now_v7().as_bytes()[..],
                    format!("+{}", numbers.key(i)),
                    state.as_str(),
                    customer,
                    stamp
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    })
    .await??;
    eprintln!("sqlite: written in {:.0} s", t.elapsed().as_secs_f64());
    time_full_load(&store, "SQLite", n).await
}

/// Times a routing instance's full load from PostgreSQL, in a fresh database on `base`.
async fn from_postgres(base: &str, numbers: &Numbers, n: u64) -> anyhow::Result<()> {
    use sqlx::Connection;
    let url = crate::bench::fresh_pg(base, "snapshot").await?;
    let store = store::Store::connect(&url).await?;
    store.migrate().await?;
    eprintln!("postgres: writing {n} numbers (not timed)...");
    let t = Instant::now();
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    let ids: Vec<uuid::Uuid> = (0..CUSTOMERS).map(|_| uuid::Uuid::now_v7()).collect();
    let mut copy = conn
        .copy_in_raw(
            "COPY customers (id, name, contract_ref, contract_state, created_at) FROM STDIN",
        )
        .await?;
    let mut buf = String::new();
    for (i, id) in ids.iter().enumerate() {
        buf.push_str(&format!("{id}\tbench {i}\tbench {i}\tactive\t2026-01-01T00:00:00Z\n"));
    }
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    let mut copy = conn
        .copy_in_raw("COPY numbers (id, e164, state, customer_id, tags, updated_at) FROM STDIN")
        .await?;
    let mut buf = String::with_capacity(1 << 21);
    for i in 0..numbers.total {
        let state = state_of(i);
        let customer = customer_of(i).map_or_else(|| "\\N".to_owned(), |c| ids[c].to_string());
        buf.push_str(&format!(
            "{}\t+{}\t{}\t{customer}\t,bench,\t2026-01-01T00:00:00Z\n",
            uuid::Uuid::now_v7(),
            numbers.key(i),
            state.as_str()
        ));
        if buf.len() > 1 << 20 {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    // As autovacuum leaves a table in service: without it, the first scan after a bulk write also
    // writes every page's hint bits, which a routing instance's load never meets in production.
    sqlx::raw_sql("VACUUM (ANALYZE) numbers").execute(&mut conn).await?;
    conn.close().await?;
    eprintln!("postgres: written in {:.0} s", t.elapsed().as_secs_f64());
    let result = time_full_load(&store, "PostgreSQL", n).await;
    drop(store);
    let mut conn = sqlx::PgConnection::connect(base).await?;
    let name = url.rsplit_once('/').map_or("", |(_, name)| name);
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    result
}

/// Times the full load from `store` once as the follower does it, and once split into reading the
/// numbers and putting them in the snapshot.
async fn time_full_load(store: &store::Store, backend: &str, n: u64) -> anyhow::Result<()> {
    // As the follower loads (every number read, then the snapshot's finish), three times.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let routing = Routing::new(NumberingRule::nanp());
        let mut follower = routing::follow::Follower::new(store.clone(), routing.clone());
        let t = Instant::now();
        follower.load().await?;
        runs.push(t.elapsed());
        anyhow::ensure!(routing.read().len() as u64 == n, "loaded {}", routing.read().len());
    }
    let full = runs.iter().max().copied().unwrap_or_default();

    // The same read again, timing the snapshot's part (inside the read, and its finish) apart.
    let mut loading = Duration::ZERO;
    let mut s = Snapshot::default();
    s.set_customers(store.routing_customers().await?, store.list_trunks().await?);
    let t = Instant::now();
    store
        .routing_numbers_each(&mut |facts| {
            let t = Instant::now();
            s.load(facts);
            loading += t.elapsed();
        })
        .await?;
    let reading = t.elapsed() - loading;
    let t = Instant::now();
    s.finish_load();
    loading += t.elapsed();
    println!(
        "\nfull load from {backend} ({n} numbers): {:.2} s as the follower does it, the worst of {} (goal <= 5 s); apart: reading {:.2} s, the snapshot's part {:.2} s",
        full.as_secs_f64(),
        runs.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", "),
        reading.as_secs_f64(),
        loading.as_secs_f64()
    );
    Ok(())
}
