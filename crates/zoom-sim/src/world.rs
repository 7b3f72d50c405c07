//! The world file: who exists on the simulated Zoom. One carrier with its SIP trunks, the carrier's
//! Marketplace apps, and Zoom customer accounts with their users (and, optionally, numbers they already
//! have). A [`World`] exists only once validated, so the rest of the simulator never re-checks it.

use crate::e164;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// A validated world. Built only by [`World::from_json`] or [`World::load`].
#[derive(Clone, Debug, Serialize)]
pub struct World {
    carrier: Carrier,
    apps: Vec<App>,
    accounts: Vec<Account>,
    /// Account id → position in `accounts`: every API call looks its account up.
    #[serde(skip)]
    account_index: std::collections::HashMap<String, usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carrier {
    pub name: String,
    /// The code Zoom gave the carrier when peering was set up (`carrier_code` in the API).
    pub carrier_code: u32,
    /// The `sip_trunk_name`s Zoom knows for this carrier; numbers on any other trunk are refused.
    pub sip_trunk_names: Vec<String>,
    /// The carrier's own Zoom account: the Provider Exchange partner's bound account, the only one with
    /// the Provider Portal and the carrier-wide listing. When absent, the account that owns the world's
    /// first server-to-server app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppKind {
    /// Installed by one user for themself (authorization code flow).
    UserManaged,
    /// Installed by an account admin for the whole account (authorization code flow).
    AdminManaged,
    /// The app owner's own account, no user involved (`account_credentials` grant).
    ServerToServer,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The Marketplace category the app is listed under.
    #[serde(default = "default_category")]
    pub category: String,
    pub kind: AppKind,
    pub client_id: String,
    pub client_secret: String,
    /// Where `/oauth/authorize` may send the user back to; matched exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where webhooks (events) are sent.
    #[serde(default)]
    pub event_url: Option<String>,
    /// Where `app_deauthorized` is sent; the event URL when absent.
    #[serde(default)]
    pub deauthorization_url: Option<String>,
    /// Signs webhooks (`x-zm-signature`).
    #[serde(default)]
    pub secret_token: Option<String>,
    /// The scopes every token of this app carries.
    pub scopes: Vec<String>,
    /// The account that owns the app; required for server-to-server apps, whose tokens act on it.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Event subscriptions (sent to `event_url`): any of [`crate::events::PEERING_EVENTS`]; the two
    /// `number_management.*` events when absent. `app_deauthorized` needs no subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

impl App {
    pub fn subscribes(&self, event: &str) -> bool {
        match &self.events {
            Some(events) => events.iter().any(|e| e == event),
            None => crate::events::DEFAULT_EVENTS.contains(&event),
        }
    }
}

fn default_category() -> String {
    "Carrier Provider Exchange".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Pro,
    Business,
    Enterprise,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Zoom's account id, as `/v2/users/me` returns it in `account_id`.
    pub id: String,
    pub name: String,
    /// `customer_account_number` in the carrier-wide listing; derived from the id when absent.
    #[serde(default)]
    pub account_number: String,
    pub plan: Plan,
    /// Whether the account has Zoom Phone; Zoom accepts peering numbers only for such accounts.
    pub zoom_phone: bool,
    pub admin: User,
    #[serde(default)]
    pub users: Vec<User>,
    /// Numbers the account already has when the world starts.
    #[serde(default)]
    pub phone_numbers: Vec<SeedNumber>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Zoom's user id; derived from the email when absent.
    #[serde(default)]
    pub id: String,
    pub email: String,
    /// For the simulated Zoom web sign-in.
    pub password: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// A Zoom Phone license: only licensed users can be given a phone number.
    #[serde(default)]
    pub phone_license: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedNumber {
    pub phone_number: String,
    /// The carrier that added it; this world's carrier when absent. Another code makes a number the
    /// carrier must not be able to change or remove.
    #[serde(default)]
    pub carrier_code: Option<u32>,
    pub sip_trunk_name: String,
    #[serde(default = "yes")]
    pub status: bool,
    /// Email or id of the user the number is assigned to.
    #[serde(default)]
    pub assigned_to: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("cannot read the world file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the world file is not valid: {0}")]
    Parse(String),
    #[error("the world file is not valid:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// One problem in the world file, naming the field as a path (`accounts[1].users[0].email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    carrier: Carrier,
    #[serde(default)]
    apps: Vec<App>,
    #[serde(default)]
    accounts: Vec<Account>,
}

impl World {
    pub fn load(path: impl AsRef<Path>) -> Result<World, WorldError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| WorldError::Read { path: path.display().to_string(), source })?;
        World::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<World, WorldError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: Raw = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // `.` is serde_path_to_error's name for the document root.
            if path == "." {
                WorldError::Parse(inner.to_string())
            } else {
                WorldError::Parse(format!("{path}: {inner}"))
            }
        })?;
        let mut world = World {
            carrier: raw.carrier,
            apps: raw.apps,
            accounts: raw.accounts,
            account_index: Default::default(),
        };
        world.fill_defaults();
        world.account_index =
            world.accounts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        let errors = world.check();
        if errors.is_empty() {
            Ok(world)
        } else {
            Err(WorldError::Invalid(errors))
        }
    }

    pub fn carrier(&self) -> &Carrier {
        &self.carrier
    }

    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.account_index.get(id).and_then(|i| self.accounts.get(*i))
    }

    /// The carrier's own account (see [`Carrier::account_id`]), if the world has one.
    pub fn carrier_account(&self) -> Option<&Account> {
        let id = self.carrier.account_id.as_deref().or_else(|| {
            self.apps
                .iter()
                .find(|a| a.kind == AppKind::ServerToServer)
                .and_then(|a| a.account_id.as_deref())
        })?;
        self.account(id)
    }

    /// The account whose `customer_account_number` this is.
    pub fn account_by_number(&self, number: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.account_number == number)
    }

    /// The account a user belongs to, and the user, by email (case-insensitive, as Zoom's sign-in).
    pub fn user_by_email(&self, email: &str) -> Option<(&Account, &User)> {
        self.accounts.iter().find_map(|a| {
            a.all_users().find(|u| u.email.eq_ignore_ascii_case(email)).map(|u| (a, u))
        })
    }

    pub fn user(&self, id: &str) -> Option<(&Account, &User)> {
        self.accounts.iter().find_map(|a| a.all_users().find(|u| u.id == id).map(|u| (a, u)))
    }

    /// A fingerprint of the world, kept in the state file so a state written for another world is
    /// refused rather than silently mixed with this one.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&json)[..16])
    }

    fn fill_defaults(&mut self) {
        for account in &mut self.accounts {
            if account.account_number.is_empty() {
                let h = Sha256::digest(format!("account:{}", account.id).as_bytes());
                let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
                    % 9_000_000_000;
                account.account_number = (1_000_000_000 + n).to_string();
            }
            for user in std::iter::once(&mut account.admin).chain(account.users.iter_mut()) {
                if user.id.is_empty() {
                    user.id = derived_id("user", &user.email.to_ascii_lowercase());
                }
            }
        }
    }

    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |field: String, message: &str| {
            errors.push(FieldError { field, message: message.to_owned() })
        };

        let c = &self.carrier;
        if c.name.trim().is_empty() {
            err("carrier.name".into(), "must not be empty");
        }
        if c.carrier_code == 0 {
            err("carrier.carrier_code".into(), "must be a positive integer");
        }
        if c.sip_trunk_names.is_empty() {
            err("carrier.sip_trunk_names".into(), "the carrier needs at least one SIP trunk");
        }
        if let Some(id) = &c.account_id {
            if self.account(id).is_none() {
                err("carrier.account_id".into(), "no account in this world has this id");
            }
        }
        let mut trunks = HashSet::new();
        for (i, t) in c.sip_trunk_names.iter().enumerate() {
            if t.trim().is_empty() {
                err(format!("carrier.sip_trunk_names[{i}]"), "must not be empty");
            } else if !trunks.insert(t) {
                err(format!("carrier.sip_trunk_names[{i}]"), "appears twice");
            }
        }

        let mut client_ids = HashSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            let f = |name: &str| format!("apps[{i}].{name}");
            for (name, value) in [
                ("name", &app.name),
                ("client_id", &app.client_id),
                ("client_secret", &app.client_secret),
            ] {
                if value.trim().is_empty() {
                    err(f(name), "must not be empty");
                }
            }
            if !app.client_id.is_empty() && !client_ids.insert(&app.client_id) {
                err(f("client_id"), "another app has the same client_id");
            }
            if app.scopes.is_empty() {
                err(f("scopes"), "an app needs at least one scope");
            }
            if app.scopes.iter().any(|s| s.trim().is_empty() || s.contains(' ')) {
                err(
                    f("scopes"),
                    "scopes are single words such as number_management_numbers:read:admin",
                );
            }
            match app.kind {
                AppKind::ServerToServer => match &app.account_id {
                    None => err(
                        f("account_id"),
                        "a server-to-server app must name the account that owns it",
                    ),
                    Some(id) if self.account(id).is_none() => {
                        err(f("account_id"), "no account in this world has this id")
                    }
                    Some(_) => {}
                },
                AppKind::UserManaged | AppKind::AdminManaged => {
                    if app.redirect_uris.is_empty() {
                        err(f("redirect_uris"), "an OAuth app needs at least one redirect URI");
                    }
                }
            }
            for (j, uri) in app.redirect_uris.iter().enumerate() {
                if !is_http_url(uri) || uri.contains('#') {
                    err(
                        f(&format!("redirect_uris[{j}]")),
                        "must be an absolute http(s) URL without a fragment",
                    );
                }
            }
            for (name, url) in
                [("event_url", &app.event_url), ("deauthorization_url", &app.deauthorization_url)]
            {
                if url.as_deref().is_some_and(|u| !is_http_url(u)) {
                    err(f(name), "must be an absolute http(s) URL");
                }
            }
            for (j, e) in app.events.iter().flatten().enumerate() {
                if !crate::events::PEERING_EVENTS.contains(&e.as_str()) {
                    err(f(&format!("events[{j}]")), "not an event Zoom sends for peering numbers (number_management.peering_number_cnam_updated, ...)");
                }
            }
            if (app.event_url.is_some() || app.deauthorization_url.is_some())
                && app.secret_token.as_deref().is_none_or(str::is_empty)
            {
                err(
                    f("secret_token"),
                    "an app that receives webhooks needs a secret token to sign them",
                );
            }
        }

        let mut account_ids = HashSet::new();
        let mut account_numbers = HashSet::new();
        let mut emails = HashSet::new();
        let mut user_ids = HashSet::new();
        let mut numbers = HashSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let f = |name: &str| format!("accounts[{i}].{name}");
            if account.id.trim().is_empty() {
                err(f("id"), "must not be empty");
            } else if !account_ids.insert(&account.id) {
                err(f("id"), "another account has the same id");
            }
            if account.name.trim().is_empty() {
                err(f("name"), "must not be empty");
            }
            if !account_numbers.insert(&account.account_number) {
                err(f("account_number"), "another account has the same account_number");
            }
            let users = std::iter::once(("admin".to_owned(), &account.admin))
                .chain(account.users.iter().enumerate().map(|(j, u)| (format!("users[{j}]"), u)));
            for (path, user) in users {
                if !is_email(&user.email) {
                    err(f(&format!("{path}.email")), "must be an email address");
                } else if !emails.insert(user.email.to_ascii_lowercase()) {
                    err(
                        f(&format!("{path}.email")),
                        "another user has the same email; sign-in needs it to be unique",
                    );
                }
                if user.password.is_empty() {
                    err(f(&format!("{path}.password")), "must not be empty");
                }
                if !user_ids.insert(&user.id) {
                    err(f(&format!("{path}.id")), "another user has the same id");
                }
            }
            for (j, n) in account.phone_numbers.iter().enumerate() {
                let f = |name: &str| format!("accounts[{i}].phone_numbers[{j}].{name}");
                match e164::normalize(&n.phone_number) {
                    None => err(f("phone_number"), "must be an E.164 number such as +12065550100"),
                    Some(e) if !numbers.insert(e.clone()) => {
                        err(f("phone_number"), "the number appears twice in this world")
                    }
                    Some(_) => {}
                }
                let ours = n.carrier_code.is_none_or(|code| code == c.carrier_code);
                if ours && !c.sip_trunk_names.contains(&n.sip_trunk_name) {
                    err(f("sip_trunk_name"), "not one of carrier.sip_trunk_names");
                }
                if let Some(who) = &n.assigned_to {
                    match account.find_user(who) {
                        None => {
                            err(f("assigned_to"), "no user of this account has this email or id")
                        }
                        Some(u) if !u.phone_license => {
                            err(f("assigned_to"), "the user has no Zoom Phone license")
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        errors
    }
}

impl Account {
    /// The admin first, then the other users.
    pub fn all_users(&self) -> impl Iterator<Item = &User> {
        std::iter::once(&self.admin).chain(self.users.iter())
    }

    /// A user of this account by id or email, as Zoom's `{userId}` path parameters accept either.
    pub fn find_user(&self, id_or_email: &str) -> Option<&User> {
        self.all_users().find(|u| u.id == id_or_email || u.email.eq_ignore_ascii_case(id_or_email))
    }
}

impl User {
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name);
        let name = name.trim();
        if name.is_empty() {
            self.email.clone()
        } else {
            name.to_owned()
        }
    }
}

/// A stable Zoom-looking id (22 characters of base64url) for things the world file leaves unnamed.
pub(crate) fn derived_id(kind: &str, key: &str) -> String {
    use base64::Engine as _;
    let h = Sha256::digest(format!("{kind}:{key}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h[..16])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !s.contains(char::is_whitespace))
}

fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/world.json");

    #[test]
    fn the_documented_example_is_a_valid_world() {
        let world = World::from_json(EXAMPLE).expect("examples/world.json is valid");
        assert!(!world.apps().is_empty());
        assert!(world.accounts().iter().all(|a| a.all_users().all(|u| u.id.len() == 22)));
    }

    #[test]
    fn errors_name_every_field_at_fault() {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
        v["carrier"]["sip_trunk_names"] = serde_json::json!([]);
        v["accounts"][0]["users"][0]["email"] = serde_json::json!("not-an-email");
        v["apps"][0]["redirect_uris"] = serde_json::json!(["/relative"]);
        v["carrier"]["account_id"] = serde_json::json!("noSuchAccount");
        v["accounts"][0]["account_number"] = serde_json::json!("1234567890");
        v["accounts"][1]["account_number"] = serde_json::json!("1234567890");
        let Err(WorldError::Invalid(errors)) = World::from_json(&v.to_string()) else {
            panic!("must be refused")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"carrier.sip_trunk_names"), "{fields:?}");
        assert!(fields.contains(&"accounts[0].users[0].email"), "{fields:?}");
        assert!(fields.contains(&"apps[0].redirect_uris[0]"), "{fields:?}");
        assert!(fields.contains(&"carrier.account_id"), "{fields:?}");
        assert!(fields.contains(&"accounts[1].account_number"), "{fields:?}");
    }

    #[test]
    fn the_carriers_own_account_is_named_or_the_server_to_server_apps_owner() {
        let world = World::from_json(EXAMPLE).expect("valid");
        assert_eq!(
            world.carrier_account().map(|a| a.id.as_str()),
            Some("exampleCarrierOwnAccount")
        );
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
        v["carrier"].as_object_mut().expect("carrier").remove("account_id");
        let world = World::from_json(&v.to_string()).expect("valid");
        assert_eq!(
            world.carrier_account().map(|a| a.id.as_str()),
            Some("exampleCarrierOwnAccount")
        );
    }

    #[test]
    fn type_errors_and_unknown_fields_name_their_path() {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
        v["accounts"][0]["zoom_phone"] = serde_json::json!("yes");
        let e = World::from_json(&v.to_string()).expect_err("refused").to_string();
        assert!(e.contains("accounts[0].zoom_phone"), "{e}");

        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
        v["apps"][0]["redirect_uri"] = serde_json::json!("https://typo.example");
        let e = World::from_json(&v.to_string()).expect_err("refused").to_string();
        assert!(e.contains("apps[0]") && e.contains("redirect_uri"), "{e}");
    }
}
