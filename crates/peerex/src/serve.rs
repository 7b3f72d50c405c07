//! Running the HTTP server: logging, the listener, graceful shutdown.

use crate::config::Config;
use app::App;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| anyhow::anyhow!("configuration: log_level: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests, demo) keeps the first subscriber.
    let _ = if config.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
    Ok(())
}

/// Serves the portals and the API on `listen` until Ctrl-C / SIGTERM, letting requests in flight finish.
pub async fn serve(app: App, config: &Config, listen: &str, listener: Option<TcpListener>) -> anyhow::Result<()> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?,
    };
    let ui = web::Ui { carrier_name: config.carrier_name.clone(), secure_cookies: config.secure_cookies };
    if config.routing.enabled() {
        web::install_metrics();
        routing::start(app.store.clone(), &config.routing).await?;
    }
    // Workers drain the outbox of changes for Zoom until the process ends.
    let _workers = app.spawn_workers();
    // Quarantines end and unanswered releases converge by themselves (issue 6).
    let _release_sweep = app.spawn_release_sweep(std::time::Duration::from_secs(60));
    let state = web::WebState::new(app, ui);
    tracing::info!(address = %listener.local_addr()?, "peerex is serving");
    axum::serve(listener, web::router(state)).with_graceful_shutdown(shutdown()).await?;
    tracing::info!("peerex stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
