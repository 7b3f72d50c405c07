//! Running the HTTP server: logging, the listener, graceful shutdown.

use crate::config::Config;
use app::App;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| anyhow::anyhow!("configuration: log_level: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests, demo) keeps the first subscriber.
    let _ =
        if config.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
    Ok(())
}

/// Serves the portals and the API on `listen` until `shutdown` (Ctrl-C / SIGTERM), letting requests
/// in flight finish.
pub async fn serve(
    app: App,
    config: &Config,
    listen: &str,
    listener: Option<TcpListener>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?,
    };
    let ui = web::Ui {
        carrier_name: config.carrier_name.clone(),
        secure_cookies: config.secure_cookies,
    };
    if config.routing.enabled() {
        web::install_metrics();
        routing::start(app.store.clone(), &config.routing).await?;
    }
    // Workers drain the outbox of changes for Zoom until the process is told to stop; then they hand
    // the jobs they hold back at once, for another instance to take (requests in flight still finish).
    let workers = app.spawn_workers();
    // Quarantines end and unanswered releases converge by themselves (issue 6).
    let _release_sweep = app.spawn_release_sweep(std::time::Duration::from_secs(60));
    let state = web::WebState::new(app, ui);
    tracing::info!(address = %listener.local_addr()?, "peerex is serving");
    let stop = async move {
        shutdown.wait().await;
        tracing::info!("stopping: handing jobs back");
        workers.shutdown().await;
    };
    axum::serve(listener, web::router(state)).with_graceful_shutdown(stop).await?;
    tracing::info!("peerex stopped");
    Ok(())
}

/// Ctrl-C and SIGTERM, caught from the moment this is made. Make it before printing where the
/// server is: a signal that arrives as soon as the addresses are out (a script, a test) must stop
/// the server cleanly, and one that arrives before the handlers exist kills the process instead.
pub struct Shutdown {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl Shutdown {
    pub fn catch() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let catch =
                |kind| signal(kind).map_err(|e| anyhow::anyhow!("cannot catch signals: {e}"));
            Ok(Self { signals: (catch(SignalKind::interrupt())?, catch(SignalKind::terminate())?) })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Until Ctrl-C or SIGTERM.
    pub async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut int, mut term) = self.signals;
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
