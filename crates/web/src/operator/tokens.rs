//! API tokens for the carrier's OSS/BSS: list, create (the clear token is shown once), revoke.

use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::AppError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::auth::{ApiToken, Scope};
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}/revoke", post(revoke))
}

struct TokenRow {
    t: ApiToken,
    created: String,
    revoked: Option<String>,
}

/// A token just created: the only time its clear value is seen.
struct Created {
    name: String,
    clear: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewToken {
    csrf: String,
    name: String,
    scope: String,
}

#[derive(Template)]
#[template(path = "operator/tokens.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    tokens: Vec<TokenRow>,
    created: Option<Created>,
    form: NewToken,
    error: Option<FormError>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    form: NewToken,
    created: Option<Created>,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let tokens = state.app.tokens().await?;
    let tokens = tokens
        .into_iter()
        .map(|t| TokenRow { created: when(t.created_at), revoked: t.revoked_at.map(when), t })
        .collect();
    let chrome = Chrome::new(state, op, "tokens");
    let page = ListPage { carrier: chrome.carrier.clone(), chrome, tokens, created, form, error };
    let mut response = render_with(&page, page.error.as_ref());
    if page.created.is_some() {
        // The page holds a secret: keep it out of caches and the back-forward history's disk copy.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

async fn list(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    list_page(&state, &op, NewToken::default(), None, None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<NewToken>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    let Some(scope) = Scope::parse(&form.scope) else {
        return list_page(
            &state,
            &op,
            form,
            None,
            Some(FormError::new("scope", "choose read or write")),
        )
        .await;
    };
    match state.app.create_token(&form.name, scope, &op.user.email).await {
        Ok((clear, token)) => {
            list_page(
                &state,
                &op,
                NewToken::default(),
                Some(Created { name: token.name, clear }),
                None,
            )
            .await
        }
        Err(e) => {
            let error = Some(e.try_into()?);
            list_page(&state, &op, form, None, error).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn revoke(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let id: Uuid = id.parse().map_err(|_| PageError(AppError::NotFound))?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.revoke_token(id, &op.actor()).await?;
    Ok(Redirect::to("/operator/tokens").into_response())
}
