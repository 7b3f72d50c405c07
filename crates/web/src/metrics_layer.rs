//! Request count and latency per route, labelled by the route pattern (never the raw path, whose ids
//! would explode the label set).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("peerex_http_requests_total", &labels).increment(1);
    metrics::histogram!("peerex_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}
