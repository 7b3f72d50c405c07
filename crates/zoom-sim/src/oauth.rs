//! Zoom's OAuth server (REFERENCE §3): the zoom.us sign-in and consent pages behind `/oauth/authorize`,
//! and `/oauth/token` with authorization codes (PKCE), rotating refresh tokens and server-to-server
//! `account_credentials`; `/oauth/revoke`.

use crate::error::OAuthError;
use crate::state::{
    random_token, AccessToken, AuthCode, Consent, Grant, Pkce, RefreshToken, Session, SimState,
};
use crate::world::AppKind;
use crate::{RefreshRotation, Simulator};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

const SESSION_COOKIE: &str = "zm_sim_session";

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/oauth/authorize", get(authorize).post(consent))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

// --- pages -----------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage<'a> {
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    app_name: &'a str,
    app_description: &'a str,
    user_email: &'a str,
    account_name: &'a str,
    scopes: &'a [String],
    consent: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "zoom-sim template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Zoom shows authorization errors as a page with a code in brackets, e.g. `(4,700)` [seen].
fn error_page(message: &str) -> Response {
    render(StatusCode::BAD_REQUEST, &ErrorPage { message: &format!("{message} (4,700)") })
}

/// Only paths on this server, so the sign-in form cannot be used to redirect elsewhere.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

async fn signin_page(uri: Uri) -> Response {
    let q = crate::json::Query::parse(&uri);
    render(
        StatusCode::OK,
        &SigninPage { next: local_path(q.get("next").unwrap_or("/")), email: "", error: None },
    )
}

async fn signin(State(sim): State<Simulator>, body: Bytes) -> Response {
    let f = form(&body);
    let (email, password) = (field(&f, "email").unwrap_or(""), field(&f, "password").unwrap_or(""));
    let next = local_path(field(&f, "next").unwrap_or("/")).to_owned();
    let found = sim
        .world()
        .user_by_email(email)
        .filter(|(_, u)| u.password == password)
        .map(|(a, u)| (a.id.clone(), u.id.clone()));
    let Some((account_id, user_id)) = found else {
        let page = SigninPage { next: &next, email, error: Some("Incorrect email or password") };
        return render(StatusCode::UNAUTHORIZED, &page);
    };
    let sid = random_token(24);
    sim.write(|s| s.sessions.insert(sid.clone(), Session { account_id, user_id })).await;
    let cookie = format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

async fn signout(State(sim): State<Simulator>, headers: HeaderMap) -> Response {
    if let Some(sid) = session_id(&headers) {
        sim.write(|s| s.sessions.remove(&sid)).await;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/signin")).into_response()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE).and_then(|rest| rest.strip_prefix('=')))
        .map(str::to_owned)
}

impl Simulator {
    /// The signed-in zoom.us web user, if any.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let sid = session_id(headers)?;
        self.read(|s| s.sessions.get(&sid).cloned()).map(|session| (sid, session))
    }
}

/// `GET /oauth/authorize`: checks the request, asks an unsigned visitor to sign in, then shows the
/// consent page. An error in `client_id` or `redirect_uri` is shown, never redirected (RFC 6749 §4.1.2.1).
async fn authorize(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri) -> Response {
    let q = crate::json::Query::parse(&uri);
    let Some(app) = q.get("client_id").and_then(|id| sim.world().app(id)) else {
        return error_page("Invalid client_id");
    };
    if app.kind == AppKind::ServerToServer {
        return error_page("This app cannot be authorized by a user");
    }
    let Some(redirect_uri) =
        q.get("redirect_uri").filter(|r| app.redirect_uris.iter().any(|u| u == r))
    else {
        return error_page("Invalid redirect");
    };
    if q.get("response_type") != Some("code") {
        return error_page("Invalid response_type");
    }
    let pkce =
        match (q.get("code_challenge").filter(|c| !c.is_empty()), q.get("code_challenge_method")) {
            (None, _) => None,
            // RFC 7636 §4.3: without a method, the challenge is plain.
            (Some(c), None | Some("plain")) => {
                Some(Pkce { challenge: c.to_owned(), method: "plain".into() })
            }
            (Some(c), Some("S256")) => {
                Some(Pkce { challenge: c.to_owned(), method: "S256".into() })
            }
            (Some(_), Some(_)) => return error_page("Invalid code_challenge_method"),
        };
    let Some((sid, session)) = sim.session(&headers) else {
        let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/oauth/authorize");
        let query =
            form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
        return Redirect::to(&format!("/signin?{query}")).into_response();
    };
    let world = sim.world();
    let (Some(account), Some((_, user))) =
        (world.account(&session.account_id), world.user(&session.user_id))
    else {
        return error_page("Your session has ended; sign in again");
    };
    // Only an admin can add an app for the whole account [assume: Zoom's Marketplace says so in its
    // pages; its API material is silent].
    if app.kind == AppKind::AdminManaged && account.admin.id != user.id {
        return error_page("Only your account admin can add this app");
    }
    let consent = random_token(18);
    let record = Consent {
        session: sid,
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: q.get("state").map(str::to_owned),
        pkce,
        expires_at: sim.now() + 600,
    };
    sim.write(|s| s.consents.insert(consent.clone(), record)).await;
    let page = ConsentPage {
        app_name: &app.name,
        app_description: &app.description,
        user_email: &user.email,
        account_name: &account.name,
        scopes: &app.scopes,
        consent: &consent,
    };
    render(StatusCode::OK, &page)
}

/// `POST /oauth/authorize`: the consent page's Allow (or Decline).
async fn consent(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let Some((sid, session)) = sim.session(&headers) else {
        return Redirect::to("/signin").into_response();
    };
    let id = field(&f, "consent").unwrap_or("").to_owned();
    let Some(c) = sim.write(|s| s.consents.remove(&id)).await.filter(|c| c.session == sid) else {
        return error_page("This authorization request has expired; start again");
    };
    let mut pairs = vec![if field(&f, "decision") == Some("allow") {
        ("code", sim.issue_code(&c, &session).await)
    } else {
        ("error", "access_denied".to_owned())
    }];
    if let Some(state) = &c.state {
        pairs.push(("state", state.clone()));
    }
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    Redirect::to(&with_query(&c.redirect_uri, &query)).into_response()
}

pub(crate) fn with_query(uri: &str, query: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

impl Simulator {
    /// A one-time authorization code for `session`'s user, redeemable by `c.client_id` at `c.redirect_uri`.
    pub(crate) async fn issue_code(&self, c: &Consent, session: &Session) -> String {
        let code = random_token(24);
        let record = AuthCode {
            client_id: c.client_id.clone(),
            account_id: session.account_id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: c.redirect_uri.clone(),
            pkce: c.pkce.clone(),
            expires_at: self.now() + secs(self.options().code_ttl),
            redeemed_by: None,
        };
        self.write(|s| s.codes.insert(code.clone(), record)).await;
        code
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

// --- the token endpoint ------------------------------------------------------------------------------

/// HTTP Basic client authentication, the only method Zoom supports (`client_secret_basic`) [doc].
fn client(sim: &Simulator, headers: &HeaderMap) -> Result<crate::world::App, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = basic.split_once(':').ok_or_else(OAuthError::invalid_client)?;
    // RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
    let decode = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    sim.world()
        .app(&id)
        .filter(|a| a.client_secret == secret)
        .cloned()
        .ok_or_else(OAuthError::invalid_client)
}

fn api_url(sim: &Simulator, headers: &HeaderMap) -> String {
    match &sim.options().public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!(
            "http://{}",
            headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1")
        ),
    }
}

async fn token(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let app = client(&sim, &headers)?;
    let f = form(&body);
    let issued = match field(&f, "grant_type") {
        Some("authorization_code") => sim.exchange_code(&app, &f).await?,
        Some("refresh_token") => {
            sim.refresh(&app, field(&f, "refresh_token").unwrap_or("")).await?
        }
        Some("account_credentials") => {
            sim.account_credentials(&app, field(&f, "account_id").unwrap_or("")).await?
        }
        _ => return Err(OAuthError::new("unsupported_grant_type", "Unsupported grant type")),
    };
    // Zoom answers `expires_in` of an hour's token as 3599 [doc].
    let expires_in = (secs(sim.options().access_token_ttl) - 1).max(1);
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "scope": issued.scopes.join(" "),
        "api_url": api_url(&sim, &headers),
    });
    if let Some(refresh) = issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

struct Issued {
    access_token: String,
    refresh_token: Option<String>,
    scopes: Vec<String>,
}

impl Simulator {
    async fn exchange_code(
        &self,
        app: &crate::world::App,
        f: &[(String, String)],
    ) -> Result<Issued, OAuthError> {
        let code = field(f, "code").unwrap_or("").to_owned();
        let redirect_uri = field(f, "redirect_uri").map(str::to_owned);
        let verifier = field(f, "code_verifier").map(str::to_owned);
        let (now, ttl, scopes) =
            (self.now(), secs(self.options().access_token_ttl), app.scopes.clone());
        let client_id = app.client_id.clone();
        let kind = app.kind;
        self.write(move |s| {
            // Zoom's answer to an unknown, used or foreign code [seen].
            let invalid =
                || OAuthError::new("invalid_request", format!("Invalid authorization code {code}"));
            let c = s
                .codes
                .get(&code)
                .filter(|c| c.client_id == client_id)
                .cloned()
                .ok_or_else(invalid)?;
            if let Some(grant) = c.redeemed_by {
                s.revoke_grant(&grant);
                return Err(invalid());
            }
            if c.expires_at <= now {
                return Err(OAuthError::new("invalid_request", "Authorization code expired"));
            }
            if redirect_uri.as_deref() != Some(c.redirect_uri.as_str()) {
                return Err(OAuthError::new("invalid_request", "Redirect URI mismatch."));
            }
            if let Some(pkce) = &c.pkce {
                if !verifier.as_deref().is_some_and(|v| pkce_matches(pkce, v)) {
                    return Err(OAuthError::new("invalid_request", "Invalid code_verifier"));
                }
            }
            // A new authorization of the same app replaces the previous one and its tokens [doc]; a
            // user-managed app is authorized per user.
            let replaced: Vec<String> = s
                .grants
                .iter()
                .filter(|(_, g)| {
                    g.client_id == c.client_id
                        && g.account_id == c.account_id
                        && (kind != AppKind::UserManaged || g.user_id == c.user_id)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in replaced {
                s.revoke_grant(&id);
            }
            let grant_id = random_token(12);
            let grant = Grant {
                client_id: c.client_id,
                account_id: c.account_id,
                user_id: c.user_id,
                scopes,
                created_at: now,
                floor: 0,
            };
            let issued = issue(s, &grant_id, &grant, 0, now + ttl);
            s.grants.insert(grant_id.clone(), grant);
            if let Some(rec) = s.codes.get_mut(&code) {
                rec.redeemed_by = Some(grant_id);
            }
            Ok(issued)
        })
        .await
    }

    async fn refresh(
        &self,
        app: &crate::world::App,
        refresh_token: &str,
    ) -> Result<Issued, OAuthError> {
        let (now, ttl, rotation) =
            (self.now(), secs(self.options().access_token_ttl), self.options().refresh_rotation);
        let client_id = app.client_id.clone();
        let refresh_token = refresh_token.to_owned();
        self.write(move |s| {
            let r = s
                .refresh_tokens
                .get(&refresh_token)
                .cloned()
                .ok_or_else(OAuthError::invalid_grant)?;
            let grant = s
                .grants
                .get(&r.grant_id)
                .filter(|g| g.client_id == client_id && r.generation >= g.floor)
                .cloned()
                .ok_or_else(OAuthError::invalid_grant)?;
            let next = r.generation + 1;
            // Tokens issued after this one belong to a refresh whose answer the client never used;
            // they are replaced by this one's.
            s.refresh_tokens.retain(|_, t| t.grant_id != r.grant_id || t.generation < next);
            s.access_tokens
                .retain(|_, t| t.grant_id.as_ref() != Some(&r.grant_id) || t.generation < next);
            let floor = match rotation {
                RefreshRotation::Immediate => next,
                // Using generation g's refresh token is a use of "the new one" for generation g - 1.
                RefreshRotation::OnFirstUseOfNew => r.generation,
            };
            s.refresh_tokens.retain(|_, t| t.grant_id != r.grant_id || t.generation >= floor);
            if let Some(g) = s.grants.get_mut(&r.grant_id) {
                g.floor = g.floor.max(floor);
            }
            Ok(issue(s, &r.grant_id, &grant, next, now + ttl))
        })
        .await
    }

    /// Server-to-Server OAuth: an hour's token for the app owner's own account, no refresh token [doc].
    async fn account_credentials(
        &self,
        app: &crate::world::App,
        account_id: &str,
    ) -> Result<Issued, OAuthError> {
        if app.kind != AppKind::ServerToServer {
            return Err(OAuthError::new("unsupported_grant_type", "Unsupported grant type"));
        }
        let owner = app
            .account_id
            .as_deref()
            .and_then(|id| self.world().account(id))
            .filter(|a| a.id == account_id);
        let Some(account) = owner else {
            return Err(OAuthError::new("invalid_request", "Invalid account_id"));
        };
        let access_token = random_token(32);
        let record = AccessToken {
            grant_id: None,
            generation: 0,
            client_id: app.client_id.clone(),
            account_id: account.id.clone(),
            user_id: account.admin.id.clone(),
            scopes: app.scopes.clone(),
            expires_at: self.now() + secs(self.options().access_token_ttl),
        };
        self.write(|s| s.access_tokens.insert(access_token.clone(), record)).await;
        Ok(Issued { access_token, refresh_token: None, scopes: app.scopes.clone() })
    }
}

fn issue(
    s: &mut SimState,
    grant_id: &str,
    grant: &Grant,
    generation: u32,
    expires_at: i64,
) -> Issued {
    let (access_token, refresh_token) = (random_token(32), random_token(32));
    s.access_tokens.insert(
        access_token.clone(),
        AccessToken {
            grant_id: Some(grant_id.to_owned()),
            generation,
            client_id: grant.client_id.clone(),
            account_id: grant.account_id.clone(),
            user_id: grant.user_id.clone(),
            scopes: grant.scopes.clone(),
            expires_at,
        },
    );
    s.refresh_tokens
        .insert(refresh_token.clone(), RefreshToken { grant_id: grant_id.to_owned(), generation });
    Issued { access_token, refresh_token: Some(refresh_token), scopes: grant.scopes.clone() }
}

/// RFC 7636 §4.6.
fn pkce_matches(pkce: &Pkce, verifier: &str) -> bool {
    let computed = match pkce.method.as_str() {
        "S256" => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.to_owned(),
    };
    constant_time_eq(computed.as_bytes(), pkce.challenge.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /oauth/revoke` [seen]: revoking any token of an authorization ends the authorization. An
/// unknown token is not an error (RFC 7009 §2.2).
async fn revoke(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let app = client(&sim, &headers)?;
    let f = form(&body);
    let token = field(&f, "token").unwrap_or("").to_owned();
    sim.write(|s| {
        let grant = match (s.access_tokens.get(&token), s.refresh_tokens.get(&token)) {
            (Some(t), _) if t.client_id == app.client_id => match &t.grant_id {
                Some(g) => Some(g.clone()),
                None => {
                    s.access_tokens.remove(&token);
                    None
                }
            },
            (_, Some(r)) => Some(r.grant_id.clone()),
            _ => None,
        };
        if let Some(g) =
            grant.filter(|g| s.grants.get(g).is_some_and(|g| g.client_id == app.client_id))
        {
            s.revoke_grant(&g);
        }
    })
    .await;
    Ok(Json(json!({ "status": "success" })).into_response())
}

/// RFC 8414 metadata, as zoom.us serves it, pointing at this simulator.
async fn metadata(State(sim): State<Simulator>, headers: HeaderMap) -> Response {
    let base = api_url(&sim, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "account_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256", "plain"],
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let pkce = Pkce {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: "S256".into(),
        };
        assert!(pkce_matches(&pkce, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!pkce_matches(&pkce, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"));
    }

    #[test]
    fn sign_in_only_redirects_to_this_server() {
        assert_eq!(local_path("/oauth/authorize?x=1"), "/oauth/authorize?x=1");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
    }
}
