//! `peerex`: one binary for the whole platform — the server, the demo, and the carrier's tooling.

mod bench;
mod bench_push;
mod bench_reconcile;
mod bench_sip;
mod bench_snapshot;
mod bench_udp;
mod bench_webhooks;
mod bench_zoom_sim;
mod cli;
mod config;
mod demo;
mod mail_catcher;
mod mail_config;
mod port_in_cmd;
mod reconcile_cmd;
mod releases_cmd;
mod route_cmd;
mod routing_demo;
mod serve;
mod trunks_cmd;
mod usage_cmd;
mod webhooks_cmd;
mod zoom_config;
mod zoom_sim_cmd;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
