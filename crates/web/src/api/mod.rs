//! The JSON API (`/api/v1`) for the carrier's OSS/BSS: bearer tokens with `read` / `write` scopes,
//! errors as `application/problem+json` naming the field, and an OpenAPI document generated from
//! these handlers at `/api/v1/openapi.json`.

mod customers;
mod extract;
mod findings;
mod numbers;
mod orders;
mod port_ins;
mod releases; // issue 6
mod trunks;
mod usage;
mod webhooks;

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
    paths(
        numbers::search, numbers::detail, numbers::import, numbers::export,
        customers::list_customers, customers::create_customer, customers::get_customer, customers::set_contract, customers::set_number_limit, customers::set_billing_ref, customers::create_admin,
        orders::list_orders, orders::create_order, orders::get_order, orders::cancel_order,
        trunks::list_trunks, trunks::create_trunk, trunks::get_trunk, trunks::update_trunk, trunks::delete_trunk, trunks::set_customer_trunk,
        releases::start_release, releases::list_releases, releases::get_release, releases::withdraw_release,
        releases::start_port_out, releases::start_contract_end, releases::force_release,
        findings::list_findings, findings::repair_findings,
        port_ins::create_port_in, port_ins::list_port_ins, port_ins::get_port_in, port_ins::complete_port_in, port_ins::cancel_port_in, port_ins::reschedule_port_in,
        usage::list_usage, usage::list_mails, usage::retry_mail,
        webhooks::list_endpoints, webhooks::create_endpoint, webhooks::get_endpoint, webhooks::update_endpoint, webhooks::delete_endpoint,
        webhooks::rotate_secret, webhooks::list_deliveries, webhooks::replay_delivery,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
    }
}

/// Adds the answers every operation can give, so each handler declares only its own: 401 to all,
/// 403 to writes (POST, PUT, DELETE), and 400/413/415 to operations that take a body.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            let content =
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", content)
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let writes = item
                .post
                .iter_mut()
                .chain(item.put.iter_mut())
                .chain(item.delete.iter_mut())
                .map(|op| (op, true));
            for (op, write) in item.get.iter_mut().map(|op| (op, false)).chain(writes) {
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                add(
                    "401",
                    "no token, or an unknown or revoked one (with `WWW-Authenticate: Bearer`)",
                );
                if write {
                    add("403", "the token's scope is `read`; this needs `write`");
                }
                if op.request_body.is_some() {
                    add("400", "the body is not valid JSON");
                    add("413", "the body is too large");
                    add("415", "the body is not of a type this operation takes");
                }
            }
        }
    }
}

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/openapi.json", get(|| async { Json(openapi_document()) }))
        .merge(numbers::router())
        .merge(customers::router())
        .merge(orders::router())
        .merge(trunks::router())
        .merge(releases::router())
        .merge(port_ins::router())
        .merge(findings::router())
        .merge(usage::router())
        .merge(webhooks::router())
}

/// The API's OpenAPI document, with the events peerex sends in its `webhooks` section.
pub fn openapi_document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    webhooks::add_webhooks(&mut doc);
    doc
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

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |detail: &str| {
            let mut r =
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        else {
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
