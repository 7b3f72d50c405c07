//! `peerex route`, the routing-only instance, as a child process the way an operator runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `peerex route` process, stopped (SIGTERM) when dropped.
pub struct RouteProcess {
    child: Child,
    /// Its lookup API, as it printed it.
    pub http: String,
}

impl RouteProcess {
    /// Starts `peerex route` following `database_url`, keeping its last-known-good file in
    /// `data_dir`, listening on free loopback ports, with `env` on top; waits until it prints its
    /// lookup API.
    pub fn start(database_url: &str, data_dir: &Path, env: &[(&str, String)]) -> RouteProcess {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_peerex"))
            .arg("route")
            .env("PEEREX_DATABASE_URL", database_url)
            .env("PEEREX_DATA_DIR", data_dir)
            .env("PEEREX_LOG_LEVEL", "warn")
            .env("PEEREX_ROUTING__HTTP_LISTEN", "127.0.0.1:0")
            .env("PEEREX_ROUTING__SIP_LISTEN", "127.0.0.1:0")
            .env("PEEREX_ROUTING__QUERY_TIMEOUT_SECONDS", "2")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start peerex route");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = loop {
            assert!(Instant::now() < deadline, "peerex route did not print its lookup API");
            if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
                if let Some(url) = line.strip_prefix("lookup API: ") {
                    break url.trim().to_owned();
                }
            }
        };
        RouteProcess { child, http }
    }
}

impl Drop for RouteProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}
