//! Static assets, compiled into the binary so peerex ships as one file.

use crate::WebState;
use axum::http::header;
use axum::routing::get;
use axum::Router;

const CSS: &str = include_str!("../assets/peerex.css");
const HTMX: &str = include_str!("../assets/htmx.min.js");

pub fn router() -> Router<WebState> {
    Router::new()
        .route(
            "/assets/peerex.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    CSS,
                )
            }),
        )
        .route(
            "/assets/htmx.min.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    HTMX,
                )
            }),
        )
}
