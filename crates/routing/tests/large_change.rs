//! A change to 100,000 numbers in one transaction, committed while other writers commit, reaches
//! every routing instance in full, on both databases. On PostgreSQL the big transaction takes its
//! change ids first and commits last, so every follower sees the later ids (and a gap of 100,000
//! below them) long before the big change becomes visible; none may give up on the gap.

use domain::customer::{ContractState, Customer};
use domain::number::NumberAttrs;
use domain::routing::Direction;
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{Actor, CustomerId, Number, PhoneNumber};
use routing::{RoutingConfig, Started};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;
use testkit::Db;

const BIG: u64 = 100_000;
const FIRST: u64 = 16_660_000_000;
/// Numbers the concurrent writers change while the big transaction is open.
const OTHERS: u64 = 20;
const OTHER_FIRST: u64 = 16_670_000_000;
/// Routing instances following the same database.
const INSTANCES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_100000_number_change_reaches_every_instance_while_others_commit() {
    a_large_change_reaches_every_instance_while_others_commit(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_100000_number_change_reaches_every_instance_while_others_commit() {
    a_large_change_reaches_every_instance_while_others_commit(Db::Postgres).await
}

/// A read of the feed brings a watched transaction's changes (it was open at the read before,
/// and committed since), but their numbers cannot then be read (here the follower's role loses
/// SELECT on `numbers` for a moment, as a lost connection or a timeout would fail it): nothing is
/// applied, the transaction stays watched, and the next read brings its changes again. A
/// follower that stopped watching before applying would skip them for good (the rest of the feed
/// is already past their ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_watched_transactions_changes_survive_a_failed_apply() {
    use routing::follow::{Follower, Options};
    use sqlx::{Connection, Executor};
    let url = testkit::postgres_url().await;
    let store = testkit::migrated_store(&url).await;
    let now = time::OffsetDateTime::now_utc();
    let trunk =
        ZoomTrunk::parse("zoom-a", &["sip:zoom-a.example"], NumberingRule::nanp(), now).unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let c = testkit::insert_customer(&store, "Acme").await;
    store.set_customer_trunk(c, Some(&trunk.name)).await.unwrap();
    let by = Actor::System("test".into());
    let (a, b) = (FIRST, FIRST + 1);
    let numbers: Vec<_> = [a, b]
        .iter()
        .map(|n| Number::imported(phone(*n), NumberAttrs::default(), &by, now))
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    for n in [a, b] {
        store.force_number_state(&phone(n), domain::NumberState::Active, Some(c)).await.unwrap();
    }

    // The follower's own role, which may read everything (roles are the server's: a unique name).
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let db: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&mut admin).await.unwrap();
    let role = format!("f_{}", &db[db.len() - 16..]);
    admin.execute(format!("CREATE ROLE {role} LOGIN PASSWORD 'f'").as_str()).await.unwrap();
    admin
        .execute(format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}").as_str())
        .await
        .unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let place = rest.rsplit_once('@').map_or(rest, |(_, place)| place);
    let follower_store = Store::connect(&format!("{scheme}://{role}:f@{place}")).await.unwrap();
    let routing = routing::Routing::new(NumberingRule::nanp());
    let mut f = Follower::with_options(follower_store, routing.clone(), Options::default());
    f.load().await.unwrap();
    let status = |n: u64| {
        let key = routing::snapshot::e164_key(&e164(n)).unwrap();
        routing.read().decide(Direction::Inbound, None, Some(key), None).status
    };
    assert_eq!((status(a), status(b)), (302, 302));

    // A transaction takes its change id and stays open while a later change commits and is read.
    let mut t = sqlx::PgConnection::connect(&url).await.unwrap();
    t.execute("BEGIN").await.unwrap();
    t.execute(
        format!("UPDATE numbers SET state = 'suspended' WHERE e164 = '{}'", e164(a)).as_str(),
    )
    .await
    .unwrap();
    store.force_number_state(&phone(b), domain::NumberState::Suspended, Some(c)).await.unwrap();
    f.catch_up().await.unwrap();
    assert_eq!((status(a), status(b)), (302, 480));

    // It commits; the next read brings its change, whose number cannot be read.
    t.execute("COMMIT").await.unwrap();
    admin.execute(format!("REVOKE SELECT ON numbers FROM {role}").as_str()).await.unwrap();
    assert!(f.catch_up().await.is_err(), "the numbers could not be read");
    assert_eq!(status(a), 302);
    admin.execute(format!("GRANT SELECT ON numbers TO {role}").as_str()).await.unwrap();
    f.catch_up().await.unwrap();
    assert_eq!(status(a), 480, "the watched transaction's change was skipped");
    drop(f);
    let _ = admin.execute(format!("REASSIGN OWNED BY {role} TO CURRENT_USER").as_str()).await;
    let _ = admin.execute(format!("DROP OWNED BY {role}").as_str()).await;
    let _ = admin.execute(format!("DROP ROLE {role}").as_str()).await;
}

fn e164(n: u64) -> String {
    format!("+{n}")
}

fn phone(n: u64) -> domain::PhoneNumber {
    domain::PhoneNumber::parse(&e164(n)).unwrap()
}

/// Answers' SIP statuses for `numbers`, asked of the lookup API at `addr` (pipelined, 500 a write).
fn statuses(addr: SocketAddr, numbers: &[u64]) -> Vec<u64> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s);
    let mut out = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(500) {
        let mut req = Vec::new();
        for n in chunk {
            write!(req, "GET /route?to=%2B{n} HTTP/1.1\r\n\r\n").unwrap();
        }
        r.get_mut().write_all(&req).unwrap();
        for _ in chunk {
            let mut line = String::new();
            let mut len = 0;
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            out.push(v["status"].as_u64().unwrap_or(0));
        }
    }
    out
}

/// Waits until every instance's snapshot decides `want` for every one of `numbers` (panics naming
/// how many numbers on which instance still decide otherwise), then asks each instance's lookup
/// API for every one of them.
async fn until_all(instances: &[Started], numbers: Vec<u64>, want: u16, within: Duration) {
    until_decided(instances, &numbers, want, within).await;
    let addrs: Vec<SocketAddr> = instances.iter().map(|s| s.http.unwrap()).collect();
    let wrong: Vec<usize> = tokio::task::spawn_blocking(move || {
        addrs
            .iter()
            .map(|a| statuses(*a, &numbers).iter().filter(|s| **s != u64::from(want)).count())
            .collect()
    })
    .await
    .unwrap();
    assert!(wrong.iter().all(|w| *w == 0), "the lookup API disagrees: {wrong:?}");
}

/// Waits until every instance's snapshot decides `want` for every one of `numbers`.
async fn until_decided(instances: &[Started], numbers: &[u64], want: u16, within: Duration) {
    let t0 = Instant::now();
    loop {
        let wrong: Vec<usize> = instances
            .iter()
            .map(|s| {
                let snapshot = s.routing.read();
                numbers
                    .iter()
                    .filter(|n| {
                        snapshot.decide(Direction::Inbound, None, Some(**n), None).status != want
                    })
                    .count()
            })
            .collect();
        if wrong.iter().all(|w| *w == 0) {
            break;
        }
        assert!(
            t0.elapsed() < within,
            "after {:?}, numbers per instance not answering {want}: {wrong:?} of {}",
            t0.elapsed(),
            numbers.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `sql` on its own connection to the database (outside the store, as another program's
/// writes would be), inside a transaction left open until `commit` is called.
enum Raw {
    Pg(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        use sqlx::Connection;
        if url.starts_with("postgres") {
            Raw::Pg(sqlx::PgConnection::connect(url).await.unwrap())
        } else {
            Raw::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        }
    }

    async fn execute(&mut self, sql: &str) -> u64 {
        match self {
            Raw::Pg(c) => sqlx::query(sql).execute(c).await.unwrap().rows_affected(),
            Raw::Sqlite(c) => sqlx::query(sql).execute(c).await.unwrap().rows_affected(),
        }
    }
}

async fn a_large_change_reaches_every_instance_while_others_commit(db: Db) {
    let (url, _dir) = match db {
        Db::Sqlite => {
            let (dir, path) = testkit::sqlite_path();
            (testkit::sqlite_url(&path), Some(dir))
        }
        Db::Postgres => (testkit::postgres_url().await, None),
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let trunk =
        ZoomTrunk::parse("zoom-a", &["sip:zoom-a.example"], NumberingRule::nanp(), now).unwrap();
    store.insert_trunk(&trunk).await.unwrap();
    let customer = Customer {
        id: CustomerId::new(),
        name: "Big Corp".into(),
        contract_ref: "C-1".into(),
        contract_state: ContractState::Active,
        created_at: now,
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&customer).await.unwrap();
    store
        .set_customer_trunk(customer.id, Some(&domain::trunk::TrunkName::parse("zoom-a").unwrap()))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    let numbers: Vec<_> = (FIRST..FIRST + BIG)
        .chain(OTHER_FIRST..OTHER_FIRST + OTHERS)
        .map(|n| {
            // E.164 by construction; libphonenumber's parse of 100,000 numbers would take a minute.
            let e164 = PhoneNumber::from_trusted(e164(n));
            Number::imported(e164, NumberAttrs::default(), &by, now)
        })
        .collect();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    let mut raw = Raw::connect(&url).await;
    let activated = raw
        .execute(&format!(
            "UPDATE numbers SET state = 'active', customer_id = (SELECT id FROM customers) \
             WHERE e164 >= '+{FIRST}' AND e164 < '+{}' OR e164 >= '+{OTHER_FIRST}' AND e164 < '+{}'",
            FIRST + BIG,
            OTHER_FIRST + OTHERS
        ))
        .await;
    assert_eq!(activated, BIG + OTHERS);

    // Several instances, each with its own connections, as several `peerex serve` would have.
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        let s = Store::connect(&url).await.unwrap();
        let config = RoutingConfig { http_listen: "127.0.0.1:0".into(), ..Default::default() };
        let started = routing::start(s, &config).await.unwrap();
        assert!(routing::wait_ready(&started.routing, Duration::from_secs(60)).await);
        instances.push(started);
    }
    let big: Vec<u64> = (FIRST..FIRST + BIG).collect();
    let others: Vec<u64> = (OTHER_FIRST..OTHER_FIRST + OTHERS).collect();
    until_decided(&instances, &big, 302, Duration::from_secs(30)).await;

    // The big change: every number suspended in one transaction (as an app removal does), left
    // open while the other writers commit.
    match &mut raw {
        Raw::Pg(_) => raw.execute("BEGIN").await,
        Raw::Sqlite(_) => raw.execute("BEGIN IMMEDIATE").await,
    };
    let suspended = raw
        .execute(&format!(
            "UPDATE numbers SET state = 'suspended' WHERE e164 >= '+{FIRST}' AND e164 < '+{}'",
            FIRST + BIG
        ))
        .await;
    assert_eq!(suspended, BIG);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        let c = customer.id;
        tokio::spawn(async move {
            // Each change its own transaction, committed at once; back and forth until told to stop,
            // ending on `suspended`.
            let mut round = 0u32;
            loop {
                let state = if round.is_multiple_of(2) {
                    domain::NumberState::Suspended
                } else {
                    domain::NumberState::Active
                };
                for n in OTHER_FIRST..OTHER_FIRST + OTHERS {
                    store.force_number_state(&phone(n), state, Some(c)).await.unwrap();
                }
                round += 1;
                if !round.is_multiple_of(2) && stop.load(Ordering::Acquire) {
                    return round;
                }
            }
        })
    };
    if db == Db::Postgres {
        // The followers see the other writers' later changes while the big one is still open ...
        let t0 = Instant::now();
        let last = routing::snapshot::e164_key(&e164(OTHER_FIRST + OTHERS - 1)).unwrap();
        while !instances.iter().all(|s| {
            s.routing.read().decide(Direction::Inbound, None, Some(last), None).status == 480
        }) {
            assert!(t0.elapsed() < Duration::from_secs(10), "the other writers' changes not seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ... and go on following the feed for a while before it commits.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    raw.execute("COMMIT").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let rounds = writer.await.unwrap();
    assert!(rounds >= 1);

    let t1 = Instant::now();
    until_all(&instances, big, 480, Duration::from_secs(30)).await;
    eprintln!("the big change reached every instance {:?} after its commit", t1.elapsed());
    until_all(&instances, others, 480, Duration::from_secs(10)).await;
    // A change after all that still arrives everywhere.
    store.force_number_state(&phone(FIRST), domain::NumberState::Aging, None).await.unwrap();
    until_all(&instances, vec![FIRST], 404, Duration::from_secs(10)).await;
}
