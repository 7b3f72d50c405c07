//! The `peerex` binary run as an operator runs it, on a fresh database (shared by the CLI tests).
// Each test file compiles this module on its own and uses only some of it.
#![allow(dead_code)]

pub mod cluster;
pub mod route;

use std::io::Write;
use std::process::{Command, Output};

pub struct Cli {
    pub url: String,
    pub dir: testkit::TempDir,
}

impl Cli {
    /// A fresh database (a SQLite file in a temp directory, or a new PostgreSQL database) and a
    /// working directory for files the commands read.
    pub async fn on(db: testkit::Db) -> Cli {
        let (dir, path) = testkit::sqlite_path();
        let url = match db {
            testkit::Db::Sqlite => testkit::sqlite_url(&path),
            testkit::Db::Postgres => testkit::postgres_url().await,
        };
        Cli { url, dir }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_peerex"))
            .args(args)
            .env("PEEREX_DATABASE_URL", &self.url)
            .current_dir(self.dir.path())
            .output()
            .expect("run peerex")
    }

    /// Runs a command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "peerex {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command that must fail; its error message.
    pub fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "peerex {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Writes `content` to `name` in the working directory; its path.
    pub fn file(&self, name: &str, content: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::File::create(&path).and_then(|mut f| f.write_all(content)).expect("write file");
        path.display().to_string()
    }
}
