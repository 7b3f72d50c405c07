//! Zoom trunks (issue 7): the `sip_trunk_name`s the carrier uses with Zoom, where their calls go,
//! and the selector on a customer's page that binds the customer to one.

use super::customers::customer_id;
use super::{may_change, render_with, when, Chrome, FormError};
use crate::error::PageError;
use crate::session::Operator;
use crate::WebState;
use app::trunks::TrunkInput;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use domain::trunk::ZoomTrunk;
use serde::Deserialize;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/trunks", get(list).post(create))
        .route("/trunks/{name}", get(detail).post(update))
        .route("/trunks/{name}/delete", post(delete))
        .route("/customers/{id}/trunk", post(set_customer_trunk))
}

#[derive(Deserialize)]
#[serde(default)]
struct TrunkForm {
    csrf: String,
    name: String,
    /// One SIP URI per line.
    destinations: String,
    country_code: String,
    national_prefix: String,
    international_prefix: String,
}

impl Default for TrunkForm {
    fn default() -> Self {
        Self {
            csrf: String::new(),
            name: String::new(),
            destinations: String::new(),
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
        }
    }
}

impl TrunkForm {
    fn from_trunk(t: &ZoomTrunk) -> Self {
        Self {
            csrf: String::new(),
            name: t.name.to_string(),
            destinations: t.destinations.iter().map(|d| d.as_str()).collect::<Vec<_>>().join("\n"),
            country_code: t.numbering.country_code().into(),
            national_prefix: t.numbering.national_prefix().into(),
            international_prefix: t.numbering.international_prefix().into(),
        }
    }

    fn input(&self) -> TrunkInput<'_> {
        TrunkInput {
            destinations: self.destinations.lines().collect(),
            country_code: &self.country_code,
            national_prefix: &self.national_prefix,
            international_prefix: &self.international_prefix,
        }
    }
}

#[derive(Template)]
#[template(path = "operator/trunks.html")]
struct ListPage {
    chrome: Chrome,
    carrier: String,
    trunks: Vec<(ZoomTrunk, String)>,
    form: TrunkForm,
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
    form: TrunkForm,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let trunks = state.app.trunks().await?.into_iter().map(|t| {
        let created = when(t.created_at);
        (t, created)
    });
    let chrome = Chrome::new(state, op, "trunks");
    let page =
        ListPage { carrier: chrome.carrier.clone(), chrome, trunks: trunks.collect(), form, error };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn list(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    list_page(&state, &op, TrunkForm::default(), None).await
}

async fn create(
    State(state): State<WebState>,
    op: Operator,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    match state.app.create_trunk(&form.name, &form.input()).await {
        Ok(t) => Ok(Redirect::to(&format!("/operator/trunks/{}", t.name)).into_response()),
        Err(e) => {
            let error = Some(e.try_into()?);
            list_page(&state, &op, form, error).await
        }
    }
}

#[derive(Template)]
#[template(path = "operator/trunk.html")]
struct DetailPage {
    chrome: Chrome,
    carrier: String,
    t: ZoomTrunk,
    created: String,
    customers: i64,
    form: TrunkForm,
    error: Option<FormError>,
}

impl DetailPage {
    fn bad(&self, field: &str) -> bool {
        super::bad(&self.error, field)
    }
}

async fn detail_page(
    state: &WebState,
    op: &Operator,
    name: &str,
    form: Option<TrunkForm>,
    error: Option<FormError>,
) -> Result<Response, PageError> {
    let t = state.app.trunk(name).await?;
    let customers = state.app.customers_on_trunk(name).await?;
    let chrome = Chrome::new(state, op, "trunks");
    let form = form.unwrap_or_else(|| TrunkForm::from_trunk(&t));
    let page = DetailPage {
        carrier: chrome.carrier.clone(),
        chrome,
        created: when(t.created_at),
        t,
        customers,
        form,
        error,
    };
    Ok(render_with(&page, page.error.as_ref()))
}

async fn detail(
    State(state): State<WebState>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    detail_page(&state, &op, &name, None, None).await
}

async fn update(
    State(state): State<WebState>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    match state.app.update_trunk(&name, &form.input()).await {
        Ok(t) => Ok(Redirect::to(&format!("/operator/trunks/{}", t.name)).into_response()),
        Err(e) => {
            let error = Some(e.try_into()?);
            detail_page(&state, &op, &name, Some(form), error).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn delete(
    State(state): State<WebState>,
    op: Operator,
    Path(name): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    match state.app.delete_trunk(&name).await {
        Ok(_) => Ok(Redirect::to("/operator/trunks").into_response()),
        Err(e) => {
            let error = Some(e.try_into()?);
            detail_page(&state, &op, &name, None, error).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CustomerTrunkForm {
    csrf: String,
    /// Empty: no trunk.
    zoom_trunk: String,
}

async fn set_customer_trunk(
    State(state): State<WebState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CustomerTrunkForm>,
) -> Result<Response, PageError> {
    let id = customer_id(&id)?;
    if let Err(refused) = may_change(&op, &form.csrf) {
        return Ok(refused);
    }
    state.app.customer(id).await?;
    // The selector offers only existing trunks, so a refusal here is a trunk deleted meanwhile.
    state.app.set_customer_trunk(id, Some(form.zoom_trunk.as_str())).await?;
    Ok(Redirect::to(&format!("/operator/customers/{id}#trunk")).into_response())
}
