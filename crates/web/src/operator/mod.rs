//! The operator portal (`/operator`): carrier staff keep the inventory, customers and orders here.
//! Server-rendered; every basic flow works without JavaScript, htmx only makes some of it smoother.

mod login;

use crate::error::{render, PageError};
use crate::session::Operator;
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use domain::NumberState;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
}

/// What every operator page's layout needs.
pub struct Chrome {
    pub carrier: String,
    pub email: String,
    pub csrf: String,
    pub admin: bool,
    /// Which nav entry is highlighted.
    pub here: &'static str,
}

impl Chrome {
    pub fn new(state: &WebState, op: &Operator, here: &'static str) -> Self {
        Self { carrier: state.ui.carrier_name.clone(), email: op.user.email.clone(), csrf: op.csrf().to_owned(), admin: op.is_admin(), here }
    }
}

#[derive(Template)]
#[template(path = "operator/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    carrier: String,
    counts: Vec<(NumberState, i64)>,
    total: i64,
}

async fn dashboard(State(state): State<WebState>, op: Operator) -> Result<Response, PageError> {
    let found = state.app.store.count_by_state().await.map_err(app::AppError::from)?;
    let counts: Vec<(NumberState, i64)> = NumberState::ALL.iter().map(|s| (*s, found.iter().find(|(f, _)| f == s).map_or(0, |(_, c)| *c))).collect();
    let total = counts.iter().map(|(_, c)| c).sum();
    let chrome = Chrome::new(&state, &op, "home");
    Ok(render(&Dashboard { carrier: chrome.carrier.clone(), chrome, counts, total }))
}
