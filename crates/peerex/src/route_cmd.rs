//! `peerex route`: a routing-only instance. It serves the route-lookup API (with `/healthz` and
//! `/metrics`) and the SIP redirect server from `[routing]`, following the database, and nothing
//! else: no portals, no API, no workers, no migrations, no writes to the database it follows (it
//! may be a read-only replica). It starts, and keeps answering inbound calls, from its
//! last-known-good snapshot while the database cannot be reached. Given `[routing]
//! report_database_url` (the primary), it reports the generation it serves there, for the
//! reconciler, and beats the heartbeat.

use crate::config::{self, Config};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.routing.enabled(),
        "peerex route: set [routing] http_listen and/or sip_listen (PEEREX_ROUTING__HTTP_LISTEN, ...)"
    );
    let url = config.database_url()?;
    let mut routing = config.routing.clone();
    if routing.state_dir.trim().is_empty() {
        routing.state_dir = config.data_dir.display().to_string();
    }
    std::fs::create_dir_all(&routing.state_dir).map_err(|e| {
        anyhow::anyhow!("cannot create [routing] state_dir {}: {e}", routing.state_dir)
    })?;
    let acquire = std::time::Duration::from_secs(routing.query_timeout_seconds.max(1));
    // Lazily: the instance starts, and answers from its last-known-good snapshot, while the
    // database cannot be reached.
    let store = store::Store::connect_lazy(&url, acquire).map_err(|e| {
        anyhow::anyhow!("cannot use the database {}: {e}", config::redact_url(&url))
    })?;
    let report_to = match routing.report_database_url.trim() {
        "" => None,
        primary => Some(store::Store::connect_lazy(primary, acquire).map_err(|e| {
            anyhow::anyhow!(
                "cannot use [routing] report_database_url {}: {e}",
                config::redact_url(primary)
            )
        })?),
    };
    if routing.stale_after_seconds <= routing.heartbeat_seconds + routing.check_seconds {
        tracing::warn!(
            stale_after_seconds = routing.stale_after_seconds,
            heartbeat_seconds = routing.heartbeat_seconds,
            check_seconds = routing.check_seconds,
            "[routing] stale_after_seconds should exceed heartbeat_seconds plus check_seconds: on \
             a replica the snapshot would turn stale between two heartbeats"
        );
    }
    let shutdown = crate::serve::Shutdown::catch()?;
    crate::serve::raise_fd_limit();
    web::install_metrics();
    let reports = report_to.is_some();
    let options = routing::StartOptions {
        routing_only: true,
        metrics: Some(Arc::new(web::render_metrics)),
        report_to,
        database: store::database_identity(&url),
    };
    let started = routing::start_with(store, &routing, options).await?;
    // For scripts and supervisors: where it listens, one line each, before serving.
    if let Some(a) = started.http {
        println!("lookup API: http://{a}");
    }
    if let Some(a) = started.sip {
        println!("SIP redirect server: sip:{a} (UDP and TCP)");
    }
    tracing::info!(
        database = %config::redact_url(&url),
        state_dir = %routing.state_dir,
        reports_to = %if reports {
            config::redact_url(routing.report_database_url.trim())
        } else {
            "nowhere (the reconciler does not compare this instance)".into()
        },
        "peerex route: serving call routing only"
    );
    shutdown.wait().await;
    tracing::info!("peerex route stopped");
    Ok(ExitCode::SUCCESS)
}
