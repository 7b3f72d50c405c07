//! A PostgreSQL primary and a streaming replica of it of the test's own (`scripts/pg-throwaway`
//! and its `replica` command), for tests of routing instances at a remote site: unlike
//! [`crate::postgres_url`]'s shared server, the test may cut its replication. Each server runs as
//! the `postgres` OS user when the test runs as root, on a free port, and is stopped and removed
//! when dropped.
//!
//! There is no fallback: without PostgreSQL's server binaries (`initdb`, `pg_ctl`,
//! `pg_basebackup`) the test panics saying what is missing, as every PostgreSQL test does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One throwaway server.
pub struct PgServer {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// Its temporary directory (data, log, socket).
    pub dir: PathBuf,
}

impl PgServer {
    /// A fresh primary.
    pub fn primary() -> PgServer {
        run(&[])
    }

    /// A hot standby of the primary whose directory is `primary_dir` ([`PgServer::dir`]), copied
    /// with `pg_basebackup -R` and streaming from `via` (a proxy in front of the primary, so the
    /// test can cut the link) or from the primary itself.
    pub fn replica_of(primary_dir: &std::path::Path, via: Option<SocketAddr>) -> PgServer {
        let dir = primary_dir.display().to_string();
        match via {
            Some(a) => run(&["replica", &dir, &a.to_string()]),
            None => run(&["replica", &dir]),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        let port = self.url.rsplit_once(':').and_then(|(_, p)| p.split('/').next());
        let port: u16 = port.and_then(|p| p.parse().ok()).expect("testkit: a port in the URL");
        SocketAddr::from(([127, 0, 0, 1], port))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new(crate::repo_root().join("scripts/pg-throwaway"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(args: &[&str]) -> PgServer {
    let script = crate::repo_root().join("scripts/pg-throwaway");
    let dir_file = tempfile::NamedTempFile::new().expect("testkit: a temporary file");
    let out = Command::new(&script)
        .args(args)
        .env("PG_THROWAWAY_DIR_FILE", dir_file.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("testkit: cannot run {}: {e}", script.display()));
    let url = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_owned();
    let dir = std::fs::read_to_string(dir_file.path()).unwrap_or_default().trim().to_owned();
    if !out.status.success() || url.is_empty() || dir.is_empty() {
        panic!(
            "testkit: {} {} failed ({}): this test needs PostgreSQL's server binaries (the \
             'postgresql' package: initdb, pg_ctl, pg_basebackup) and starts its own servers.\n{}",
            script.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    PgServer { url, dir: PathBuf::from(dir) }
}
