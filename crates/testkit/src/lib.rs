//! Dev-only helpers for peerex's tests.
//!
//! - [`postgres_url`]: the URL of a fresh, empty PostgreSQL database for one test.
//! - [`sqlite_path`]: a fresh SQLite file path in a temporary directory removed on drop.
//! - [`run_browser_script`]: a script of `e2e/` under Node, driving headless Chromium.
//! - [`TestClock`]: the clock [`TestApp`] and [`ZoomApp`] run on, which tests move on instead of
//!   sleeping.
//!
//! # Which PostgreSQL
//!
//! If `PEEREX_TEST_PG_URL` is set (as `scripts/test` does, pointing at the throwaway server it starts
//! for the whole run), databases are created on that server. Otherwise the first test that asks starts
//! one throwaway server per machine with `scripts/pg-throwaway`, records its URL in
//! `/tmp/peerex-testkit-pg/url` and every later test process reuses it (nextest runs each test in its
//! own process). That server keeps running after the tests; stop it with
//! `scripts/pg-throwaway stop "$(cat /tmp/peerex-testkit-pg/dir)"`.
//!
//! Each database is named `t_<UUIDv7>`. Databases are not dropped when a test ends (the test may
//! still hold connections); instead, once per process, databases of this form older than
//! [`STALE_AFTER`] that nobody is connected to are dropped, which keeps the disk use of a long run or
//! of a reused server bounded.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection, Row};
use tokio::sync::OnceCell;
use uuid::Uuid;

pub use tempfile::TempDir;

mod browser;
pub use browser::{chromium, run_browser_script, CHROMIUM_ENV, SCRIPT_TIME_LIMIT};
mod clock;
pub use clock::TestClock;
pub mod proxy;
pub mod replica;
pub mod sim;
mod zoom_app;
pub use zoom_app::{
    confirm_install, install_acme_at, link_acme_at, zoom_setup, zoom_setup_on, ZoomApp,
};
mod test_app;
pub use test_app::{hidden_value, Db, TestApp, ADMIN_EMAIL, METRICS_TOKEN, PASSWORD, READER_EMAIL};

/// The environment variable naming the PostgreSQL server tests create their databases on.
pub const PG_URL_ENV: &str = "PEEREX_TEST_PG_URL";

/// Where the per-machine shared server is recorded when [`PG_URL_ENV`] is not set.
pub const SHARED_PG_DIR: &str = "/tmp/peerex-testkit-pg";

/// Test databases older than this with no connection are dropped by later tests.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of the databases this crate creates; the rest of the name is a simple-format UUIDv7.
const DB_PREFIX: &str = "t_";

static BASE_URL: OnceCell<String> = OnceCell::const_new();
static CLEANED: OnceCell<()> = OnceCell::const_new();

/// Creates a fresh, empty PostgreSQL database and returns its URL.
///
/// Panics with an explanation if no server can be reached or started: this is for tests.
pub async fn postgres_url() -> String {
    let base = BASE_URL.get_or_init(base_url).await;
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(base)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("testkit: cannot connect to the test PostgreSQL at {base}: {e}"),
        Err(_) => panic!("testkit: timed out connecting to the test PostgreSQL at {base}"),
    };
    CLEANED.get_or_init(|| drop_stale_databases(&mut conn)).await;
    let name = format!("{DB_PREFIX}{}", Uuid::now_v7().simple());
    if let Err(e) = conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await {
        panic!("testkit: CREATE DATABASE {name} on {base} failed: {e}");
    }
    let _ = conn.close().await;
    with_database(base, &name)
}

/// A migrated store on `url`, for store tests.
pub async fn migrated_store(url: &str) -> store::Store {
    let store = store::Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Declares each listed `async fn name(db: Db)` of the calling module as two tests, `sqlite::name` and
/// `postgres::name`, on a two-thread runtime (`current_thread:` first for a one-thread runtime).
#[macro_export]
macro_rules! on_both {
    (@tests $flavor:tt $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test $flavor]
            async fn $name() { super::$name($crate::Db::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test $flavor]
            async fn $name() { super::$name($crate::Db::Postgres).await; })*
        }
    };
    (current_thread: $($name:ident),* $(,)?) => {
        $crate::on_both!(@tests (flavor = "current_thread") $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both!(@tests (flavor = "multi_thread", worker_threads = 2) $($name),*);
    };
}

/// Declares each listed `async fn name(store: store::Store)` of the calling module as two tests: one
/// on a fresh SQLite file, one on a fresh PostgreSQL database, both migrated.
#[macro_export]
macro_rules! store_tests_on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, path) = $crate::sqlite_path();
                let store = $crate::migrated_store(&$crate::sqlite_url(&path)).await;
                super::$name(store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $crate::migrated_store(&$crate::postgres_url().await).await;
                super::$name(store).await;
            })*
        }
    };
}

/// A customer named `name` with an active contract (reference `C-<name>`), written straight to `store`.
pub async fn insert_customer(store: &store::Store, name: &str) -> domain::CustomerId {
    let c = domain::customer::Customer {
        id: domain::CustomerId::new(),
        name: name.into(),
        contract_ref: format!("C-{name}"),
        contract_state: domain::customer::ContractState::Active,
        created_at: time::OffsetDateTime::now_utc(),
        zoom_trunk: None,
        number_limit: None,
        billing_ref: None,
    };
    store.insert_customer(&c).await.unwrap();
    c.id
}

/// A fresh SQLite database path (the file does not exist yet) inside a new temporary directory.
///
/// Keep the returned [`TempDir`] alive for as long as the database is used: dropping it deletes the
/// directory. Bind it to a named variable (`let (_dir, path) = ...`), not to `_`.
#[must_use = "the temporary directory is deleted as soon as the TempDir is dropped"]
pub fn sqlite_path() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("peerex-test-")
        .tempdir()
        .expect("testkit: cannot create a temporary directory");
    let path = dir.path().join("peerex.db");
    (dir, path)
}

/// The sqlx URL of a SQLite file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Makes the SQLite database at `path` unreachable at the same URL, as a lost database is: its
/// file moved away beside it and a directory put in its place, which SQLite cannot open.
pub fn cut_off_sqlite(path: &Path) {
    std::fs::rename(path, path.with_extension("moved")).expect("testkit: move the database away");
    std::fs::create_dir(path).expect("testkit: a directory in the database's place");
}

/// Runs `sql` (statements separated by `;`) on the database at `url`, SQLite or PostgreSQL, on a
/// connection of its own: for a test that changes the database behind the use-cases' back.
pub async fn execute_sql(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("testkit: open SQLite");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("testkit: run SQL on SQLite");
    } else {
        let mut c = PgConnection::connect(url).await.expect("testkit: connect to PostgreSQL");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("testkit: run SQL on PostgreSQL");
    }
}

/// The repository root, found from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `url` with its path (the database name) replaced by `database`; the query string is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let authority_end =
        main[authority_start..].find('/').map_or(main.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &main[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn base_url() -> String {
    match std::env::var(PG_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => shared_server().await,
    }
}

/// The per-machine throwaway server: reused if its recorded URL answers, started otherwise.
/// A file lock serialises test processes so that only one of them starts it.
async fn shared_server() -> String {
    let dir = Path::new(SHARED_PG_DIR);
    let _lock = tokio::task::spawn_blocking(move || lock_file(&dir.join("lock")))
        .await
        .expect("testkit: the lock task panicked");

    let url_file = dir.join("url");
    let dir_file = dir.join("dir");
    if let Ok(url) = fs::read_to_string(&url_file) {
        let url = url.trim();
        if !url.is_empty() && server_alive(url).await {
            return url.to_owned();
        }
    }

    let script = repo_root().join("scripts/pg-throwaway");
    // The previous server (if any) is gone; remove what it left behind.
    if let Ok(old) = fs::read_to_string(&dir_file) {
        let old = old.trim();
        if !old.is_empty() {
            let _ = tokio::process::Command::new(&script)
                .args(["stop", old])
                .stdin(Stdio::null())
                .output()
                .await;
        }
    }
    let _ = fs::remove_file(&url_file);
    let _ = fs::remove_file(&dir_file);

    let out = tokio::process::Command::new(&script)
        .env("PG_THROWAWAY_DIR_FILE", &dir_file)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("testkit: cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let url = stdout.lines().last().unwrap_or("").trim().to_owned();
    if !out.status.success() || url.is_empty() {
        panic!(
            "testkit: {} failed ({}); set {PG_URL_ENV} to a PostgreSQL server or run the tests with \
             scripts/test.\n{stderr}",
            script.display(),
            out.status
        );
    }
    let tmp = dir.join("url.tmp");
    fs::write(&tmp, format!("{url}\n"))
        .and_then(|()| fs::rename(&tmp, &url_file))
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", url_file.display()));
    url
}

fn lock_file(path: &Path) -> File {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", parent.display()));
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("testkit: cannot open {}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("testkit: cannot lock {}: {e}", path.display()));
    file
}

/// Whether a server answers at `url`. A server that refuses a login (too many clients, say) is
/// alive; so is one that is merely slow: starting a second server would not help them.
async fn server_alive(url: &str) -> bool {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            true
        }
        Ok(Err(sqlx::Error::Database(_))) | Err(_) => true,
        Ok(Err(_)) => false,
    }
}

/// Drops this crate's databases older than [`STALE_AFTER`]. Best effort: a database somebody is
/// connected to cannot be dropped and is left alone. Only one process at a time does it.
async fn drop_stale_databases(conn: &mut PgConnection) {
    const LOCK_KEY: i64 = 0x7065_6572_6578; // "peerex"
    let locked: bool = match sqlx::query("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await
    {
        Ok(row) => row.try_get(0).unwrap_or(false),
        Err(_) => return,
    };
    if !locked {
        return;
    }
    let names: Vec<String> = sqlx::query(
        "SELECT datname FROM pg_database d WHERE datname LIKE 't\\_%' \
         AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
    )
    .fetch_all(&mut *conn)
    .await
    .map(|rows| rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
    .unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    for name in names {
        let Some(created) = created_at(&name) else {
            continue;
        };
        if now.saturating_sub(created) > STALE_AFTER {
            let _ = conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}""#).as_str()).await;
        }
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK_KEY).execute(&mut *conn).await;
}

/// When a database named by [`postgres_url`] was created (since the Unix epoch).
fn created_at(name: &str) -> Option<Duration> {
    let id = Uuid::try_parse(name.strip_prefix(DB_PREFIX)?).ok()?;
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(Duration::new(secs, nanos))
}

/// The types of the events written to the webhook outbox so far, each with its `data`, oldest first.
pub async fn told(app: &app::App) -> Vec<(String, serde_json::Value)> {
    let mut events = app.outbound_events(1_000).await.expect("outbound events");
    events.reverse();
    events.into_iter().map(|e| (e.event_type.as_str().to_owned(), e.data)).collect()
}

/// Asserts that events of each of `types` were written to the webhook outbox.
pub async fn assert_told(app: &app::App, types: &[&str]) {
    let told = told(app).await;
    for t in types {
        assert!(
            told.iter().any(|(k, _)| k == t),
            "no {t} event in {:?}",
            told.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(with_database("postgres://u:p@db:5432", "t_1"), "postgres://u:p@db:5432/t_1");
        assert_eq!(
            with_database("postgresql://u@db/x?sslmode=disable&application_name=a/b", "t_1"),
            "postgresql://u@db/t_1?sslmode=disable&application_name=a/b"
        );
        assert_eq!(
            with_database("postgres:///x?host=/run/postgresql", "t_1"),
            "postgres:///t_1?host=/run/postgresql"
        );
    }

    #[test]
    fn created_at_reads_our_names_only() {
        let id = Uuid::now_v7();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let created = created_at(&format!("t_{}", id.simple())).unwrap();
        assert!(now.saturating_sub(created) < Duration::from_secs(60));
        assert_eq!(created_at("postgres"), None);
        assert_eq!(created_at("t_not_a_uuid"), None);
        assert_eq!(created_at(&format!("t_{}", Uuid::nil().simple())), None);
    }

    #[test]
    fn sqlite_path_is_fresh_and_cleaned_up() {
        let (dir, path) = sqlite_path();
        assert!(path.starts_with(dir.path()));
        assert!(!path.exists());
        fs::write(&path, b"x").unwrap();
        let (dir2, path2) = sqlite_path();
        assert_ne!(path, path2);
        let root = dir.path().to_owned();
        drop(dir);
        assert!(!root.exists());
        drop(dir2);
    }

    #[test]
    fn repo_root_holds_the_scripts() {
        assert!(repo_root().join("scripts/pg-throwaway").is_file());
    }
}
