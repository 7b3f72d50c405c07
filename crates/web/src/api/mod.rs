//! The JSON API (`/api/v1`) for the carrier's OSS/BSS: bearer tokens with `read` / `write` scopes,
//! errors as `application/problem+json` naming the field, and an OpenAPI document generated from
//! these handlers at `/api/v1/openapi.json`.

mod numbers;

use crate::error::{ApiError, Problem};
use crate::WebState;
use app::AppError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::auth::{ApiToken, Scope};
use domain::Actor;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "peerex API", description = "Number inventory, customers and orders of a carrier selling numbers to Zoom Phone."),
    paths(numbers::search, numbers::detail),
    components(schemas(Problem, numbers::NumberOut, numbers::NumberPage, numbers::EventOut, numbers::NumberDetail)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .merge(numbers::router())
}

/// The caller of an API request, authenticated by `Authorization: Bearer pxt_...`.
pub struct Caller {
    pub token: ApiToken,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::ApiToken(self.token.name.clone())
    }

    /// Refuses a token whose scope does not cover `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if self.token.scope.allows(needed) {
            Ok(())
        } else {
            Err(ApiError(AppError::Forbidden))
        }
    }
}

impl FromRequestParts<WebState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let unauthorized = |detail: &str| {
            let mut r = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized("send an API token as 'Authorization: Bearer <token>'"));
        };
        let Some(bearer) = value.strip_prefix("Bearer ") else {
            return Err(unauthorized("the Authorization header must use the Bearer scheme"));
        };
        match state.app.authenticate_token(bearer.trim()).await {
            Ok(Some(token)) => Ok(Caller { token }),
            Ok(None) => Err(unauthorized("unknown or revoked API token")),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}
