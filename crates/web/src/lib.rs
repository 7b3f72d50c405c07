//! peerex's HTTP surfaces: the JSON API (`/api/v1`), the operator portal (`/operator`), `/healthz`
//! and `/metrics`. Handlers parse input, call one `app` use-case and render; no SQL and no business
//! rules here. Errors are mapped once, in [`error`].

pub mod api;
mod assets;
pub mod error;
pub mod http_config;
pub mod listener;
mod metrics_layer;
pub mod operator;
pub mod portal;
pub mod session;
pub mod zoom;

use app::App;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::{Arc, OnceLock};

/// How the portals present themselves; white-label, from configuration.
#[derive(Clone, Debug)]
pub struct Ui {
    /// The carrier's name as customers know it.
    pub carrier_name: String,
    /// Mark cookies `Secure` (on whenever peerex is served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for Ui {
    fn default() -> Self {
        Self { carrier_name: "Example Carrier".into(), secure_cookies: false }
    }
}

#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub ui: Arc<Ui>,
    pub access: Arc<http_config::Access>,
    metrics: PrometheusHandle,
}

impl WebState {
    pub fn new(app: App, ui: Ui) -> Self {
        Self { app, ui: Arc::new(ui), access: Arc::default(), metrics: prometheus() }
    }

    /// Which proxies are trusted and who may read `/metrics` (nobody by default).
    pub fn with_access(mut self, access: http_config::Access) -> Self {
        self.access = Arc::new(access);
        self
    }
}

/// Installs the process-wide Prometheus recorder now. Call it before starting anything that looks
/// its metric handles up once (the routing servers' threads), or their figures go nowhere.
pub fn install_metrics() {
    prometheus();
}

/// The process's metrics in Prometheus' text format (a routing-only instance serves them on its
/// lookup API, having no other listener).
pub fn render_metrics() -> String {
    prometheus().render()
}

/// The process-wide Prometheus recorder (the `metrics` facade allows one per process).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then this handle still renders.
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples wait in the recorder until they are folded into their buckets, which
            // a scrape of `/metrics` does; an instance nobody scrapes would keep every one of them.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            });
            handle
        })
        .clone()
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/operator") }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .nest("/api/v1", api::router())
        .nest("/operator", operator::router())
        .nest("/portal", portal::router())
        .nest("/zoom", zoom::router())
        .merge(assets::router())
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn(metrics_layer::track))
        .with_state(state)
}

async fn healthz(State(state): State<WebState>) -> impl IntoResponse {
    match state.app.health().await {
        Ok(backend) => {
            (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok", "database": backend})))
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable"})),
            )
        }
    }
}

/// Only for `Authorization: Bearer <metrics_token>`: the figures say how busy the platform is and
/// what fails, which is nobody else's business. Without a token configured, nobody reads them here.
async fn metrics_text(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let Some(token) = state.access.metrics_token.as_deref() else {
        return (StatusCode::NOT_FOUND, "/metrics is off: set http.metrics_token\n")
            .into_response();
    };
    let offered = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !session::same_secret(offered.trim(), token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs Authorization: Bearer <http.metrics_token>\n",
        )
            .into_response();
    }
    // Counted when read: the flag follows the database, whichever instance changed it.
    match state.app.count_missing_emergency_address().await {
        Ok(n) => metrics::gauge!("peerex_numbers_missing_emergency_address").set(n as f64),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count numbers missing an emergency address")
        }
    }
    // Read at each scrape, so every kind is there (0 included) whichever instance ran the cycle.
    match state.app.open_finding_counts().await {
        Ok(counts) => {
            for (kind, n) in counts {
                metrics::gauge!("peerex_findings_open", "kind" => kind.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count open findings"),
    }
    // The outbox to Zoom: every state (0 included), and the jobs waiting past the stuck threshold,
    // which an alert rule watches.
    match state.app.job_counts().await {
        Ok(found) => {
            for s in domain::onboarding::JobState::ALL {
                let n = found.iter().find(|(f, _)| *f == s).map_or(0, |(_, n)| *n);
                metrics::gauge!("peerex_jobs", "state" => s.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count jobs"),
    }
    match state.app.stuck_jobs().await {
        Ok(n) => metrics::gauge!("peerex_jobs_stuck").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count stuck jobs"),
    }
    // Endpoints peerex disabled for failing need an operator; a growing backlog is a slow receiver.
    match state.app.webhook_backlog().await {
        Ok((waiting, disabled)) => {
            metrics::gauge!("peerex_webhook_deliveries_waiting").set(waiting as f64);
            metrics::gauge!("peerex_webhook_endpoints_disabled").set(disabled as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count webhook deliveries"),
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
        .into_response()
}
