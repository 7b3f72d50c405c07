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
    // The heartbeat by which routing instances on read replicas tell whether changes still reach
    // them (every instance beats; the database lets one through per half interval).
    tokio::spawn(routing::report::heartbeat(
        app.routing_source(),
        std::time::Duration::from_secs(config.routing.heartbeat_seconds.max(1)),
    ));
    if config.routing.enabled() {
        web::install_metrics();
        // The database is named for the last-known-good file, when `[routing] state_dir` is set.
        let options = routing::StartOptions {
            database: store::database_identity(&config.database_url()?),
            ..Default::default()
        };
        routing::start_with(app.routing_source(), &config.routing, options).await?;
    }
    // Workers drain the outbox of changes for Zoom until the process is told to stop; then they hand
    // the jobs they hold back at once, for another instance to take (requests in flight still finish).
    let workers = app.spawn_workers();
    // Dispatchers deliver the outbox's events to the carrier's webhook endpoints; the change path
    // only writes them.
    let hooks = app.spawn_webhook_dispatcher();
    // Quarantines end and unanswered releases converge by themselves (issue 6).
    let release_sweep = app.spawn_release_sweep(std::time::Duration::from_secs(60));
    // Port-ins whose date has come are activated; jobs a port-in still needs are queued.
    let port_in_scan = app.spawn_port_in_scan(std::time::Duration::from_secs(60));
    // Each linked account is compared with Zoom when due; the database's lease picks one instance.
    let reconciler = (config.zoom.enabled() && config.zoom.reconcile_minutes > 0)
        .then(|| app.spawn_reconciler(std::time::Duration::from_secs(60)));
    // Mails to customers' admins go out, and the reminders fall due (nothing without [mail] host).
    let mail = app.spawn_mail(std::time::Duration::from_secs(60));
    // Each customer's usage of the day that ended is recorded once (the first instance makes it).
    let usage = app.spawn_usage_taker(std::time::Duration::from_secs(600));
    let mut limits = config.http.limits().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let access = config.http.access().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    limits.max_connections = fit_connections(limits.max_connections);
    let state = web::WebState::new(app.clone(), ui).with_access(access);
    let finishing = app.clone();
    tracing::info!(address = %listener.local_addr()?, max_connections = limits.max_connections, "peerex is serving");
    let stop = async move {
        shutdown.wait().await;
        tracing::info!("stopping: handing jobs back");
        workers.shutdown().await;
        mail.shutdown().await;
        hooks.shutdown().await;
        // Nothing in the background starts work now; what must not be cut short (a Zoom token
        // refresh under way, whose new pair exists nowhere else until stored) ends first.
        drop((release_sweep, port_in_scan, reconciler, usage));
        finishing.finish_unfinished(std::time::Duration::from_secs(60)).await;
    };
    let served = web::listener::serve(listener, web::router(state), limits, stop).await;
    // And what requests still in flight started meanwhile.
    app.finish_unfinished(std::time::Duration::from_secs(10)).await;
    served?;
    tracing::info!("peerex stopped");
    Ok(())
}

/// File descriptors kept for everything but the main listener's connections: database pools, the
/// routing listeners, Zoom clients, logs.
const FD_RESERVE: u64 = 512;

/// Raises the soft limit of open files to the hard limit, so the number of connections peerex can
/// hold is set by `http.max_connections` and not by the shell it was started from. Returns the
/// limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim = raised;
            }
        }
        Some(lim.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

/// `wanted` connections, or fewer when the open-files limit cannot hold them with the reserve.
fn fit_connections(wanted: usize) -> usize {
    let Some(files) = raise_fd_limit() else { return wanted };
    let room = usize::try_from(files.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX).max(64);
    if wanted > room {
        tracing::warn!(
            wanted,
            open_files = files,
            using = room,
            "http.max_connections is more than the open-files limit allows; using fewer"
        );
        room
    } else {
        wanted
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct passed by pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        if lim.rlim_max > 1024 {
            let lowered = libc::rlimit { rlim_cur: 1024, rlim_max: lim.rlim_max };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        }
        assert_eq!(raise_fd_limit(), Some(lim.rlim_max));
        // A wish beyond the limit is cut to what it can hold, with the reserve kept.
        let room = usize::try_from(lim.rlim_max - FD_RESERVE).unwrap();
        assert_eq!(fit_connections(usize::MAX), room.max(64));
        assert_eq!(fit_connections(10), 10);
    }
}
