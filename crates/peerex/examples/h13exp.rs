// Scratch experiment (not committed): pieces of a million-number SQLite import.
use domain::number::NumberAttrs;
use domain::{Actor, Number, NumberEvent};
use sqlx::Connection;
use std::time::Instant;

const COLS: &str = "id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at";

fn shape(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "CREATE TABLE numbers (id BLOB PRIMARY KEY, e164 TEXT NOT NULL, state TEXT NOT NULL, customer_id BLOB, order_id BLOB, \
         tags TEXT NOT NULL DEFAULT '', billing_ref TEXT, region TEXT, note TEXT, reason TEXT, aging_until TEXT, updated_at TEXT NOT NULL, \
         zoom_assigned INTEGER, zoom_seen_at TEXT, CONSTRAINT numbers_e164_key UNIQUE (e164)); \
         CREATE INDEX numbers_state_e164 ON numbers (state, e164); \
         CREATE INDEX numbers_customer_e164 ON numbers (customer_id, e164) WHERE customer_id IS NOT NULL; \
         CREATE INDEX numbers_order ON numbers (order_id) WHERE order_id IS NOT NULL; \
         CREATE INDEX numbers_aging ON numbers (aging_until) WHERE state = 'aging';",
    )
    .unwrap();
}

fn open(path: &str, cache: i64) -> rusqlite::Connection {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{path}-wal"));
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    if cache != 0 {
        conn.pragma_update(None, "cache_size", cache).unwrap();
    }
    if std::env::var("TEMP").as_deref() == Ok("1") {
        conn.pragma_update(None, "temp_store", "MEMORY").unwrap();
    }
    conn
}

fn stamp() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn floor_row(count: u64, cache: i64) {
    let mut conn = open("/tmp/h13/floor.db", cache);
    shape(&conn);
    let stamp = stamp();
    let t = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut ins = tx.prepare(&format!("INSERT INTO numbers ({COLS}) VALUES (?1, ?2, 'available', NULL, NULL, ',bench,', NULL, 'US', NULL, NULL, NULL, ?3)")).unwrap();
        let mut e = String::new();
        for i in 0..count {
            e.clear();
            e.push('+');
            e.push_str(itoa::Buffer::new().format(15_550_000_000u64 + i));
            let id = uuid::Uuid::now_v7();
            ins.execute(rusqlite::params![&id.as_bytes()[..], e, stamp]).unwrap();
        }
    }
    tx.commit().unwrap();
    println!("floor_row cache={cache}: {:.2} s", t.elapsed().as_secs_f64());
}

fn floor_multi(count: u64, k: u64, cache: i64) {
    let mut conn = open("/tmp/h13/floor.db", cache);
    shape(&conn);
    let stamp = stamp();
    let t = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut sql = format!("INSERT INTO numbers ({COLS}) VALUES ");
        for j in 0..k {
            if j > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(?{}, ?{}, 'available', NULL, NULL, ',bench,', NULL, 'US', NULL, NULL, NULL, ?{})",
                3 * j + 1,
                3 * j + 2,
                3 * j + 3
            ));
        }
        let mut ins = tx.prepare(&sql).unwrap();
        let mut i = 0;
        while i < count {
            for j in 0..k {
                let id = uuid::Uuid::now_v7();
                ins.raw_bind_parameter((3 * j + 1) as usize, &id.as_bytes()[..]).unwrap();
                ins.raw_bind_parameter(
                    (3 * j + 2) as usize,
                    format!("+{}", 15_550_000_000u64 + i + j),
                )
                .unwrap();
                ins.raw_bind_parameter((3 * j + 3) as usize, &stamp).unwrap();
            }
            ins.raw_execute().unwrap();
            i += k;
        }
    }
    tx.commit().unwrap();
    println!("floor_multi k={k} cache={cache}: {:.2} s", t.elapsed().as_secs_f64());
}

fn rows(count: u64) -> Vec<domain::import::ImportRow> {
    let attrs =
        NumberAttrs { tags: vec!["bench".into()], region: Some("US".into()), ..Default::default() };
    domain::import::parse_range(&format!("+15550000000-+{}", 15_550_000_000u64 + count - 1), &attrs)
        .unwrap()
}

async fn peerex_now(count: u64) {
    let _ = std::fs::remove_dir_all("/tmp/h13/p");
    std::fs::create_dir_all("/tmp/h13/p").unwrap();
    let store = store::Store::connect("sqlite:///tmp/h13/p/p.db").await.unwrap();
    store.migrate().await.unwrap();
    let rows = rows(count);
    let t0 = Instant::now();
    let mut existing = std::collections::HashSet::new();
    for chunk in rows.chunks(10_000) {
        let e: Vec<&str> = chunk.iter().map(|r| r.e164.as_str()).collect();
        existing.extend(store.existing_numbers(&e).await.unwrap());
    }
    let t1 = Instant::now();
    let by = Actor::System("bench".into());
    let now = time::OffsetDateTime::now_utc();
    let numbers: Vec<(Number, NumberEvent)> =
        rows.into_iter().map(|r| Number::imported(r.e164, r.attrs, &by, now)).collect();
    let t2 = Instant::now();
    store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    let t3 = Instant::now();
    println!(
        "peerex_now: check {:.2} build {:.2} insert {:.2} total {:.2}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        (t3 - t0).as_secs_f64()
    );
}

async fn raw(count: u64, events_select: bool, cache: i64) {
    let _ = std::fs::remove_dir_all("/tmp/h13/p");
    std::fs::create_dir_all("/tmp/h13/p").unwrap();
    {
        let store = store::Store::connect("sqlite:///tmp/h13/p/p.db").await.unwrap();
        store.migrate().await.unwrap();
    }
    let mut conn = sqlx::SqliteConnection::connect("sqlite:///tmp/h13/p/p.db").await.unwrap();
    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut conn).await.unwrap();
    if cache != 0 {
        sqlx::query(&format!("PRAGMA cache_size = {cache}")).execute(&mut conn).await.unwrap();
    }
    let rows = rows(count);
    let by = Actor::System("bench".into());
    let t0 = Instant::now();
    let mut handle = conn.lock_handle().await.unwrap();
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }.unwrap();
    let mut n_exist = 0;
    {
        let mut q = db.prepare("SELECT 1 FROM numbers WHERE e164 = ?1").unwrap();
        for r in &rows {
            if q.exists([r.e164.as_str()]).unwrap() {
                n_exist += 1;
            }
        }
    }
    let t1 = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let numbers: Vec<(Number, NumberEvent)> =
        rows.into_iter().map(|r| Number::imported(r.e164, r.attrs, &by, now)).collect();
    let t2 = Instant::now();
    db.execute_batch("BEGIN").unwrap();
    let (mut tn, mut te) = (0.0, 0.0);
    let fmt =
        |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let before: i64 =
        db.query_row("SELECT coalesce(max(rowid), 0) FROM numbers", [], |r| r.get(0)).unwrap();
    {
        let mut ins = db.prepare(&format!("INSERT INTO numbers ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")).unwrap();
        let mut ev = db.prepare("INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)").unwrap();
        for chunk in numbers.chunks(10_000) {
            let a = Instant::now();
            let mut tags = String::new();
            let mut last_tags: Option<&Vec<String>> = None;
            for (n, _) in chunk {
                if last_tags != Some(&n.tags) {
                    tags = if n.tags.is_empty() {
                        String::new()
                    } else {
                        format!(",{},", n.tags.join(","))
                    };
                    last_tags = Some(&n.tags);
                }
                ins.execute(rusqlite::params![
                    &n.id.as_uuid().as_bytes()[..],
                    n.e164.as_str(),
                    n.state.as_str(),
                    n.customer_id.map(|c| c.as_uuid().into_bytes().to_vec()),
                    n.order_id.map(|c| c.as_uuid().into_bytes().to_vec()),
                    tags,
                    n.billing_ref,
                    n.region,
                    n.note,
                    n.reason,
                    n.aging_until.map(fmt),
                    fmt(n.updated_at),
                ])
                .unwrap();
            }
            let b = Instant::now();
            if !events_select {
                for (_, e) in chunk {
                    ev.execute(rusqlite::params![
                        &e.number_id.as_uuid().as_bytes()[..],
                        fmt(e.at),
                        e.actor,
                        e.from.map(|s| s.as_str()),
                        e.to.as_str(),
                        e.reason,
                    ])
                    .unwrap();
                }
            }
            tn += (b - a).as_secs_f64();
            te += b.elapsed().as_secs_f64();
        }
    }
    if events_select {
        let b = Instant::now();
        db.execute(
            "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) SELECT id, ?2, ?3, NULL, 'available', 'imported' FROM numbers WHERE rowid > ?1 ORDER BY rowid",
            rusqlite::params![before, fmt(now), by.to_string()],
        )
        .unwrap();
        te += b.elapsed().as_secs_f64();
    }
    db.execute_batch("COMMIT").unwrap();
    let t3 = Instant::now();
    drop(db);
    drop(handle);
    let nev: i64 = sqlx::query_scalar("SELECT count(*) FROM number_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    println!(
        "raw events_select={events_select} cache={cache}: check {:.2} ({n_exist}) build {:.2} numbers {tn:.2} events {te:.2} total {:.2} (events {nev})",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t0).as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    std::fs::create_dir_all("/tmp/h13").unwrap();
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args[2].parse().unwrap();
    let cache: i64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(0);
    match args[1].as_str() {
        "floor_row" => floor_row(count, cache),
        "floor_multi" => floor_multi(count, args[4].parse().unwrap(), cache),
        "raw2" => raw2(count, args[4].parse().unwrap(), &args[5], &args[6], cache).await,
        "check" => check(count, &args[4]).await,
        "pg_floor" => pg_floor(count, &args[4], &args[5]).await,
        "pg_peerex" => pg_peerex(count, &args[4], &args[5]).await,
        "peerex_now" => peerex_now(count).await,
        "raw" => raw(count, false, cache).await,
        "raw_sel" => raw(count, true, cache).await,
        _ => panic!(),
    }
}

fn fmt_t(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

async fn prep(count: u64) -> sqlx::SqliteConnection {
    let _ = std::fs::remove_dir_all("/tmp/h13/p");
    std::fs::create_dir_all("/tmp/h13/p").unwrap();
    {
        let store = store::Store::connect("sqlite:///tmp/h13/p/p.db").await.unwrap();
        store.migrate().await.unwrap();
        if count > 0 {
            // an existing inventory to check against: every other number of another range
            let by = Actor::System("bench".into());
            let now = time::OffsetDateTime::now_utc();
            let numbers: Vec<(Number, NumberEvent)> = rows(count)
                .into_iter()
                .step_by(2)
                .map(|r| {
                    let e = domain::PhoneNumber::parse(&format!("+1666{}", &r.e164.as_str()[5..]))
                        .unwrap();
                    Number::imported(e, r.attrs, &by, now)
                })
                .collect();
            store.insert_numbers(&numbers, &|_| {}).await.unwrap();
        }
    }
    let mut conn = sqlx::SqliteConnection::connect("sqlite:///tmp/h13/p/p.db").await.unwrap();
    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut conn).await.unwrap();
    conn
}

fn in_sql(k: usize) -> String {
    let mut s = String::from("SELECT e164 FROM numbers WHERE e164 IN (");
    for j in 0..k {
        if j > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s.push(')');
    s
}

fn check_raw(db: &rusqlite::Connection, rows: &[domain::import::ImportRow], mode: &str) -> usize {
    let mut found = 0;
    match mode {
        "in" => {
            let k = 500;
            let mut q = db.prepare(&in_sql(k)).unwrap();
            for chunk in rows.chunks(k) {
                if chunk.len() < k {
                    let mut q2 = db.prepare(&in_sql(chunk.len())).unwrap();
                    found += q2
                        .query(rusqlite::params_from_iter(chunk.iter().map(|r| r.e164.as_str())))
                        .unwrap()
                        .mapped(|_| Ok(()))
                        .count();
                } else {
                    found += q
                        .query(rusqlite::params_from_iter(chunk.iter().map(|r| r.e164.as_str())))
                        .unwrap()
                        .mapped(|_| Ok(()))
                        .count();
                }
            }
        }
        "json" => {
            let mut q = db
                .prepare("SELECT e164 FROM numbers WHERE e164 IN (SELECT value FROM json_each(?1))")
                .unwrap();
            let mut buf = String::new();
            for chunk in rows.chunks(10_000) {
                buf.clear();
                buf.push('[');
                for (i, r) in chunk.iter().enumerate() {
                    if i > 0 {
                        buf.push(',');
                    }
                    buf.push('"');
                    buf.push_str(r.e164.as_str());
                    buf.push('"');
                }
                buf.push(']');
                found += q.query([&buf]).unwrap().mapped(|_| Ok(())).count();
            }
        }
        "span" => {
            let mut q = db
                .prepare("SELECT e164 FROM numbers WHERE e164 >= ?1 AND e164 <= ?2 LIMIT ?3")
                .unwrap();
            let mut sorted: Vec<&str> = rows.iter().map(|r| r.e164.as_str()).collect();
            sorted.sort_unstable();
            for chunk in sorted.chunks(1000) {
                let first = chunk[0];
                let last = chunk[chunk.len() - 1];
                let got: Vec<String> = q
                    .query(rusqlite::params![first, last, 4000])
                    .unwrap()
                    .mapped(|r| r.get(0))
                    .map(|r| r.unwrap())
                    .collect();
                for g in got {
                    if chunk.binary_search(&g.as_str()).is_ok() {
                        found += 1;
                    }
                }
            }
        }
        _ => panic!(),
    }
    found
}

async fn check(count: u64, mode: &str) {
    let mut conn = prep(count).await;
    let rows = rows(count);
    let t0 = Instant::now();
    let mut handle = conn.lock_handle().await.unwrap();
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }.unwrap();
    let found = check_raw(&db, &rows, mode);
    println!("check {mode}: {:.2} s ({found} found)", t0.elapsed().as_secs_f64());
}

fn values_sql(head: &str, k: usize, cols: usize) -> String {
    let mut s = String::from(head);
    s.push_str(" VALUES ");
    for j in 0..k {
        if j > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('?');
        }
        s.push(')');
    }
    s
}

async fn raw2(count: u64, k: usize, events: &str, checkmode: &str, cache: i64) {
    let mut conn = prep(0).await;
    if std::env::var("FK").as_deref() == Ok("0") {
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut conn).await.unwrap();
    }
    if std::env::var("TEMP").as_deref() == Ok("1") {
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut conn).await.unwrap();
    }
    if cache != 0 {
        sqlx::query(&format!("PRAGMA cache_size = {cache}")).execute(&mut conn).await.unwrap();
    }
    let rows = rows(count);
    let by = Actor::System("bench".into());
    let t0 = Instant::now();
    let mut handle = conn.lock_handle().await.unwrap();
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }.unwrap();
    let n_exist = check_raw(&db, &rows, checkmode);
    let t1 = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let numbers: Vec<(Number, NumberEvent)> =
        rows.into_iter().map(|r| Number::imported(r.e164, r.attrs, &by, now)).collect();
    let t2 = Instant::now();
    db.execute_batch("BEGIN").unwrap();
    let (mut tn, mut te) = (0.0, 0.0);
    let before: i64 =
        db.query_row("SELECT coalesce(max(rowid), 0) FROM numbers", [], |r| r.get(0)).unwrap();
    {
        let head = format!("INSERT INTO numbers ({COLS})");
        let mut ins = db.prepare(&values_sql(&head, k, 12)).unwrap();
        let evhead =
            "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason)";
        let mut ev =
            db.prepare(&values_sql(evhead, if events == "multi" { k } else { 1 }, 6)).unwrap();
        let mut tags = String::new();
        let mut last_tags: Option<&Vec<String>> = None;
        let mut stamp_for = None;
        let mut stamp = String::new();
        for chunk in numbers.chunks(k) {
            let a = Instant::now();
            if chunk.len() < k {
                ins = db.prepare(&values_sql(&head, chunk.len(), 12)).unwrap();
                if events == "multi" {
                    ev = db.prepare(&values_sql(evhead, chunk.len(), 6)).unwrap();
                }
            }
            for (j, (n, _)) in chunk.iter().enumerate() {
                if last_tags != Some(&n.tags) {
                    tags = if n.tags.is_empty() {
                        String::new()
                    } else {
                        format!(",{},", n.tags.join(","))
                    };
                    last_tags = Some(&n.tags);
                }
                if stamp_for != Some(n.updated_at) {
                    stamp = fmt_t(n.updated_at);
                    stamp_for = Some(n.updated_at);
                }
                let b = j * 12;
                ins.raw_bind_parameter(b + 1, &n.id.as_uuid().as_bytes()[..]).unwrap();
                ins.raw_bind_parameter(b + 2, n.e164.as_str()).unwrap();
                ins.raw_bind_parameter(b + 3, n.state.as_str()).unwrap();
                ins.raw_bind_parameter(b + 4, n.customer_id.map(|c| c.as_uuid().into_bytes()))
                    .unwrap();
                ins.raw_bind_parameter(b + 5, n.order_id.map(|c| c.as_uuid().into_bytes()))
                    .unwrap();
                ins.raw_bind_parameter(b + 6, &tags).unwrap();
                ins.raw_bind_parameter(b + 7, &n.billing_ref).unwrap();
                ins.raw_bind_parameter(b + 8, &n.region).unwrap();
                ins.raw_bind_parameter(b + 9, &n.note).unwrap();
                ins.raw_bind_parameter(b + 10, &n.reason).unwrap();
                ins.raw_bind_parameter(b + 11, n.aging_until.map(fmt_t)).unwrap();
                ins.raw_bind_parameter(b + 12, &stamp).unwrap();
            }
            ins.raw_execute().unwrap();
            let b = Instant::now();
            if events == "shared" {
                let e0 = &chunk[0].1;
                ev.raw_bind_parameter(1, &stamp).unwrap();
                ev.raw_bind_parameter(2, &e0.actor).unwrap();
                ev.raw_bind_parameter(3, e0.from.map(|s| s.as_str())).unwrap();
                ev.raw_bind_parameter(4, e0.to.as_str()).unwrap();
                ev.raw_bind_parameter(5, &e0.reason).unwrap();
                for (j, (_, e)) in chunk.iter().enumerate() {
                    ev.raw_bind_parameter(j + 6, &e.number_id.as_uuid().as_bytes()[..]).unwrap();
                }
                ev.raw_execute().unwrap();
            } else if events != "select" {
                for (j, (_, e)) in chunk.iter().enumerate() {
                    let b = if events == "multi" { j * 6 } else { 0 };
                    ev.raw_bind_parameter(b + 1, &e.number_id.as_uuid().as_bytes()[..]).unwrap();
                    ev.raw_bind_parameter(b + 2, &stamp).unwrap();
                    ev.raw_bind_parameter(b + 3, &e.actor).unwrap();
                    ev.raw_bind_parameter(b + 4, e.from.map(|s| s.as_str())).unwrap();
                    ev.raw_bind_parameter(b + 5, e.to.as_str()).unwrap();
                    ev.raw_bind_parameter(b + 6, &e.reason).unwrap();
                    if events != "multi" {
                        ev.raw_execute().unwrap();
                    }
                }
                if events == "multi" {
                    ev.raw_execute().unwrap();
                }
            }
            tn += (b - a).as_secs_f64();
            te += b.elapsed().as_secs_f64();
        }
    }
    if events == "select" {
        let b = Instant::now();
        db.execute(
            "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) SELECT id, ?2, ?3, NULL, 'available', 'imported' FROM numbers WHERE rowid > ?1 ORDER BY rowid",
            rusqlite::params![before, fmt_t(now), by.to_string()],
        )
        .unwrap();
        te += b.elapsed().as_secs_f64();
    }
    db.execute_batch("COMMIT").unwrap();
    let t3 = Instant::now();
    drop(db);
    drop(handle);
    let nev: i64 = sqlx::query_scalar("SELECT count(*) FROM number_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    println!(
        "raw2 k={k} events={events} check={checkmode} cache={cache}: check {:.2} ({n_exist}) build {:.2} numbers {tn:.2} events {te:.2} total {:.2} (events {nev})",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t0).as_secs_f64()
    );
}

async fn pg_db(base: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::raw_sql("DROP DATABASE IF EXISTS h13x").execute(&mut conn).await.unwrap();
    sqlx::raw_sql("CREATE DATABASE h13x").execute(&mut conn).await.unwrap();
    let (head, _) = base.rsplit_once('/').unwrap();
    let url = format!("{head}/h13x");
    let store = store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    url
}

fn hex_uuid(buf: &mut Vec<u8>, u: &uuid::Uuid) {
    let mut b = uuid::Uuid::encode_buffer();
    buf.extend_from_slice(u.hyphenated().encode_lower(&mut b).as_bytes());
}

const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn bin_field(buf: &mut Vec<u8>, v: &[u8]) {
    buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
    buf.extend_from_slice(v);
}
fn bin_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}
fn bin_ts(buf: &mut Vec<u8>, t: time::OffsetDateTime) {
    let us = (t.unix_timestamp_nanos() / 1000) as i64 - PG_EPOCH_US;
    bin_field(buf, &us.to_be_bytes());
}

async fn pg_floor(count: u64, base: &str, mode: &str) {
    let url = pg_db(base).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let stamp = fmt_t(now);
    let t = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    let fmt = if mode == "bin" { "binary" } else { "csv" };
    let mut copy =
        tx.copy_in_raw(&format!("COPY numbers ({COLS}) FROM STDIN (FORMAT {fmt})")).await.unwrap();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    if mode == "bin" {
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
    }
    let mut ib = itoa::Buffer::new();
    for i in 0..count {
        let id = uuid::Uuid::now_v7();
        let e = ib.format(15_550_000_000u64 + i);
        if mode == "bin" {
            buf.extend_from_slice(&12i16.to_be_bytes());
            bin_field(&mut buf, id.as_bytes());
            buf.extend_from_slice(&12i32.to_be_bytes());
            buf.push(b'+');
            buf.extend_from_slice(e.as_bytes());
            bin_field(&mut buf, b"available");
            bin_null(&mut buf);
            bin_null(&mut buf);
            bin_field(&mut buf, b",bench,");
            bin_null(&mut buf);
            bin_field(&mut buf, b"US");
            bin_null(&mut buf);
            bin_null(&mut buf);
            bin_null(&mut buf);
            bin_ts(&mut buf, now);
        } else {
            hex_uuid(&mut buf, &id);
            buf.extend_from_slice(b",\"+");
            buf.extend_from_slice(e.as_bytes());
            buf.extend_from_slice(b"\",available,,,\",bench,\",,\"US\",,,,");
            buf.extend_from_slice(stamp.as_bytes());
            buf.push(b'\n');
        }
        if buf.len() > (1 << 20) - 256 {
            copy.send(&buf[..]).await.unwrap();
            buf.clear();
        }
    }
    if mode == "bin" {
        buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
    copy.send(&buf[..]).await.unwrap();
    copy.finish().await.unwrap();
    tx.commit().await.unwrap();
    println!("pg_floor {mode}: {:.2} s", t.elapsed().as_secs_f64());
}

async fn pg_peerex(count: u64, base: &str, mode: &str) {
    let url = pg_db(base).await;
    let store = store::Store::connect(&url).await.unwrap();
    let rows = rows(count);
    let t0 = Instant::now();
    let mut existing = std::collections::HashSet::new();
    for chunk in rows.chunks(10_000) {
        let e: Vec<&str> = chunk.iter().map(|r| r.e164.as_str()).collect();
        existing.extend(store.existing_numbers(&e).await.unwrap());
    }
    let t1 = Instant::now();
    let by = Actor::System("bench".into());
    let now = time::OffsetDateTime::now_utc();
    let numbers: Vec<(Number, NumberEvent)> =
        rows.into_iter().map(|r| Number::imported(r.e164, r.attrs, &by, now)).collect();
    let t2 = Instant::now();
    let mut tn = 0.0;
    if mode == "csv" {
        store.insert_numbers(&numbers, &|_| {}).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let mut copy = tx
            .copy_in_raw(&format!("COPY numbers ({COLS}) FROM STDIN (FORMAT binary)"))
            .await
            .unwrap();
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let header = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
            buf.extend_from_slice(&0i32.to_be_bytes());
            buf.extend_from_slice(&0i32.to_be_bytes());
        };
        header(&mut buf);
        let mut tags = String::new();
        let mut last: Option<&Vec<String>> = None;
        let opt = |buf: &mut Vec<u8>, v: Option<&str>| match v {
            Some(v) => bin_field(buf, v.as_bytes()),
            None => bin_null(buf),
        };
        for (n, _) in &numbers {
            if last != Some(&n.tags) {
                tags = if n.tags.is_empty() {
                    String::new()
                } else {
                    format!(",{},", n.tags.join(","))
                };
                last = Some(&n.tags);
            }
            buf.extend_from_slice(&12i16.to_be_bytes());
            bin_field(&mut buf, n.id.as_uuid().as_bytes());
            bin_field(&mut buf, n.e164.as_str().as_bytes());
            bin_field(&mut buf, n.state.as_str().as_bytes());
            match n.customer_id {
                Some(c) => bin_field(&mut buf, c.as_uuid().as_bytes()),
                None => bin_null(&mut buf),
            }
            match n.order_id {
                Some(c) => bin_field(&mut buf, c.as_uuid().as_bytes()),
                None => bin_null(&mut buf),
            }
            bin_field(&mut buf, tags.as_bytes());
            opt(&mut buf, n.billing_ref.as_deref());
            opt(&mut buf, n.region.as_deref());
            opt(&mut buf, n.note.as_deref());
            opt(&mut buf, n.reason.as_deref());
            match n.aging_until {
                Some(t) => bin_ts(&mut buf, t),
                None => bin_null(&mut buf),
            }
            bin_ts(&mut buf, n.updated_at);
            if buf.len() > (1 << 20) - 1024 {
                copy.send(&buf[..]).await.unwrap();
                buf.clear();
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        copy.send(&buf[..]).await.unwrap();
        copy.finish().await.unwrap();
        tn = t2.elapsed().as_secs_f64();
        buf.clear();
        let mut copy = tx.copy_in_raw("COPY number_events (number_id, at, actor, from_state, to_state, reason) FROM STDIN (FORMAT binary)").await.unwrap();
        header(&mut buf);
        for (_, e) in &numbers {
            buf.extend_from_slice(&6i16.to_be_bytes());
            bin_field(&mut buf, e.number_id.as_uuid().as_bytes());
            bin_ts(&mut buf, e.at);
            bin_field(&mut buf, e.actor.as_bytes());
            opt(&mut buf, e.from.map(|s| s.as_str()));
            bin_field(&mut buf, e.to.as_str().as_bytes());
            opt(&mut buf, e.reason.as_deref());
            if buf.len() > (1 << 20) - 1024 {
                copy.send(&buf[..]).await.unwrap();
                buf.clear();
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        copy.send(&buf[..]).await.unwrap();
        copy.finish().await.unwrap();
        tx.commit().await.unwrap();
    }
    let t3 = Instant::now();
    println!(
        "pg_peerex {mode}: check {:.2} build {:.2} insert {:.2} (numbers {tn:.2}) total {:.2}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        (t3 - t0).as_secs_f64()
    );
}
