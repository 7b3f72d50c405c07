//! A stand-in for Zoom's side of Cloud Peering: the Zoom OAuth server with its sign-in and consent
//! pages, both generations of the Provider Exchange API over one state, the admin's phone-number API,
//! and a test-control API under `/_sim/`. Faithful to `reference/zoom/REFERENCE.md`; where Zoom's public
//! material is silent the code says `[assume]` and the README lists the choice.
//!
//! It shares no code with peerex's platform crates (domain, store, app, web) and must not: it plays
//! Zoom, and a simulator that shares the platform's idea of a number would agree with the platform's bugs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let world = zoom_sim::World::load("world.json")?;
//! let sim = zoom_sim::Simulator::new(world, zoom_sim::Options { control_api: true, ..Default::default() })?;
//! let (addr, handle) = sim.spawn("127.0.0.1:0".parse()?).await?;
//! println!("Zoom is at http://{addr}");
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
mod clock;
mod control;
pub mod demo;
mod e164;
mod error;
pub mod events;
mod faults;
mod json;
mod legacy;
mod numbers;
mod oauth;
mod pages;
mod peering;
mod phone;
mod portal_csv;
mod provider_portal;
mod ratelimit;
mod state;
mod webhooks;
mod world;

pub use clock::Clock;
pub use ratelimit::RateLimit;
pub use state::StateError;
pub use webhooks::{signature as webhook_signature, Attempt, Delivery};
pub use world::{
    Account, App, AppKind, Carrier, FieldError, Plan, SeedNumber, User, World, WorldError,
};

use axum::Router;
use state::{Persist, SimState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How refresh tokens rotate. Zoom's material says both "the old one stops working" (REFERENCE §3) and,
/// in issue 4, "once the new one is used"; the two differ only when a client loses the answer to a
/// refresh, so both are available [assume].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The old refresh token keeps working until the new access or refresh token is first used: a client
    /// that lost the refresh response can retry with the old one.
    #[default]
    OnFirstUseOfNew,
    /// The old refresh token stops working as soon as it has been exchanged.
    Immediate,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Serve the test-control API under `/_sim/` (tests and demos only).
    pub control_api: bool,
    /// Persist the state here after every change, and start from it when it exists.
    pub state_file: Option<PathBuf>,
    /// Access tokens live an hour [doc]; tests shorten it.
    pub access_token_ttl: Duration,
    /// Authorization codes live 5 minutes [doc].
    pub code_ttl: Duration,
    /// `next_page_token`s expire after 15 minutes [doc].
    pub page_token_ttl: Duration,
    pub refresh_rotation: RefreshRotation,
    /// The base URL clients reach the simulator at, returned as `api_url` in token responses; the
    /// request's `Host` when unset.
    pub public_url: Option<String>,
    /// Per-account requests per second (LIGHT label); answered with 429 beyond it.
    pub rate_limit: RateLimit,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            control_api: false,
            state_file: None,
            access_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(300),
            page_token_ttl: Duration::from_secs(900),
            refresh_rotation: RefreshRotation::default(),
            public_url: None,
            rate_limit: RateLimit::default(),
        }
    }
}

/// A simulated Zoom. Cheap to clone; clones share one state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    world: World,
    options: Options,
    clock: Clock,
    state: Mutex<SimState>,
    persist: Option<Persist>,
    /// The webhook worker runs (started on first need, inside a Tokio runtime).
    worker_started: AtomicBool,
    /// Wakes the webhook worker: a delivery was queued or the clock moved.
    wake: Arc<tokio::sync::Notify>,
    rate_windows: Mutex<ratelimit::Windows>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

impl Simulator {
    /// A simulator of `world`, resuming from `options.state_file` when that file exists.
    pub fn new(world: World, options: Options) -> Result<Simulator, StateError> {
        let clock = Clock::default();
        let persist = options.state_file.clone().map(Persist::new);
        let state = match persist.as_ref().map(|p| p.load(&world)).transpose()?.flatten() {
            Some(mut saved) => {
                clock.set_offset_ms(saved.clock_offset_ms);
                // A delivery cut short by the stop is tried again.
                for d in saved.deliveries.iter_mut().filter(|d| d.outcome == "sending") {
                    d.outcome = "pending".into();
                    d.next_attempt_at = Some(clock.unix());
                }
                saved
            }
            None => SimState::initial(&world),
        };
        let inner = Inner {
            world,
            options,
            clock,
            state: Mutex::new(state),
            persist,
            worker_started: AtomicBool::new(false),
            wake: Arc::default(),
            rate_windows: Mutex::default(),
        };
        Ok(Simulator { inner: Arc::new(inner) })
    }

    pub fn world(&self) -> &World {
        &self.inner.world
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The simulated clock; advancing it expires codes, tokens and page tokens.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Every route: OAuth and its pages, the Zoom REST API under `/v2`, and `/_sim/` when enabled.
    pub fn router(&self) -> Router {
        let zoom = Router::new()
            .merge(oauth::router())
            .merge(pages::router())
            .merge(provider_portal::router())
            .merge(peering::router())
            .merge(legacy::router())
            .merge(phone::router())
            // A route layer, so faults see the matched route and apply only to routes that exist.
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), faults::inject));
        let router =
            if self.inner.options.control_api { zoom.merge(control::router()) } else { zoom };
        router.fallback(json::not_found).with_state(self.clone())
    }

    /// Serves the simulator on `addr` (port 0 picks a free one) until the handle is shut down or dropped.
    pub async fn spawn(&self, addr: SocketAddr) -> Result<(SocketAddr, SimHandle), StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        self.ensure_webhook_worker();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "zoom-sim stopped serving");
            }
        });
        Ok((local, SimHandle { stop: Some(stop), task: Some(task) }))
    }

    /// Back to the world's initial state: no installs, no tokens, no faults, clock at system time.
    pub async fn reset(&self) {
        let world = self.inner.world.clone();
        self.inner.clock.set_offset_ms(0);
        self.write(|s| *s = SimState::initial(&world)).await;
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.unix()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-written in a way that matters more
        // than stopping the simulator would; carry on with it.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&SimState) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state and, with `--state`, persists it before returning, so what a client was told
    /// survives a restart.
    pub(crate) async fn write<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let (result, snapshot) = {
            let mut s = self.lock();
            s.purge(self.now());
            let result = f(&mut s);
            let snapshot = self.inner.persist.as_ref().map(|_| {
                s.version += 1;
                s.clock_offset_ms = self.inner.clock.offset_ms();
                (s.version, serde_json::to_vec(&*s))
            });
            (result, snapshot)
        };
        if let (Some(persist), Some((version, bytes))) = (&self.inner.persist, snapshot) {
            let saved = match bytes {
                Ok(bytes) => persist.save(version, bytes).await,
                Err(e) => {
                    Err(StateError::Write { path: String::new(), source: std::io::Error::other(e) })
                }
            };
            if let Err(e) = saved {
                tracing::error!(error = %e, "zoom-sim could not persist its state");
            }
        }
        result
    }
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] also waits for it.
pub struct SimHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// Stops accepting connections, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
