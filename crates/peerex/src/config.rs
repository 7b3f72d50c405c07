//! Configuration: defaults, then a TOML file, then `PEEREX_*` environment variables, then flags.
//! Secrets (the database URL's password) never print: `Debug` and `config show` redact them.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where peerex keeps its SQLite database and other files.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// Address the portals and the API listen on.
    pub listen: String,
    /// The carrier's name as its customers know it (the portals are white-label).
    pub carrier_name: String,
    /// Mark cookies Secure: turn on whenever peerex is reached over HTTPS.
    pub secure_cookies: bool,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter, like `info` or `peerex=debug,sqlx=warn`.
    pub log_level: String,
    /// Hours a portal session lasts.
    pub session_hours: i64,
    /// Days a number released from Zoom rests (`aging`) before it can be sold again (issue 6).
    pub release_quarantine_days: i64,
    /// Call routing (issue 7): the route-lookup API and the SIP redirect server.
    #[serde(default)]
    pub routing: routing::RoutingConfig,
    /// The carrier's Zoom Marketplace app and where Zoom is (issue 5: onboarding).
    #[serde(default)]
    pub zoom: crate::zoom_config::ZoomConfig,
    /// The main listener's limits, trusted proxies, and who may read `/metrics`.
    #[serde(default)]
    pub http: web::http_config::HttpConfig,
    /// What the carrier requires of its numbers.
    #[serde(default)]
    pub numbers: NumbersConfig,
    /// Email to customers' admins.
    #[serde(default)]
    pub mail: crate::mail_config::MailConfig,
    /// Signed webhooks to the carrier's systems.
    #[serde(default)]
    pub webhooks: crate::webhooks_cmd::WebhooksConfig,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersConfig {
    /// Which active numbers must have an emergency address set in Zoom: `false` (none), `true`
    /// (all), or the countries' E.164 prefixes (`["+1"]`). Those without one are flagged.
    #[serde(default)]
    pub e911_required: domain::zoom_facts::E911Required,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("peerex-data"),
            database_url: String::new(),
            listen: "127.0.0.1:8080".into(),
            carrier_name: "Example Carrier".into(),
            secure_cookies: false,
            log_format: "text".into(),
            log_level: "info".into(),
            session_hours: 12,
            release_quarantine_days: 90,
            routing: routing::RoutingConfig::default(),
            zoom: crate::zoom_config::ZoomConfig::default(),
            http: web::http_config::HttpConfig::default(),
            numbers: NumbersConfig::default(),
            mail: crate::mail_config::MailConfig::default(),
            webhooks: crate::webhooks_cmd::WebhooksConfig::default(),
        }
    }
}

pub const EXAMPLE: &str = r#"# peerex configuration. Every key is optional; the values shown are the defaults.
# Each key can also be set in the environment as PEEREX_<KEY> (e.g. PEEREX_DATABASE_URL),
# which wins over this file; command-line flags win over both.

# Where peerex keeps its SQLite database.
data_dir = "peerex-data"

# Empty: SQLite at <data_dir>/peerex.db. For PostgreSQL (several `peerex serve` instances):
#   database_url = "postgres://peerex:SECRET@db.internal/peerex"
database_url = ""

# Address of the portals, the JSON API, /healthz and /metrics.
listen = "127.0.0.1:8080"

# The carrier's name, shown in the portals.
carrier_name = "Example Carrier"

# Set to true when peerex is reached over HTTPS (cookies get the Secure flag).
secure_cookies = false

# "text" for people, "json" for log collectors.
log_format = "text"
log_level = "info"

# How long a portal sign-in lasts, in hours.
session_hours = 12

# Days a number released from a customer's Zoom account rests before it can be sold again.
release_quarantine_days = 90

# Call routing for the carrier's SIP edge (see README, "Routing"). Each listener is off while empty.
[routing]
# The route-lookup HTTP API (its own listener, so calls never queue behind portal traffic).
http_listen = ""
# The SIP redirect server, UDP and TCP on the same port.
sip_listen = ""
# When set, lookups must send "Authorization: Bearer <http_secret>".
http_secret = ""
# Addresses or networks of the carrier's own SIP proxies, e.g. ["192.0.2.10", "10.1.0.0/24"]. Only
# these may say which Zoom trunk a call came over: the redirect server believes X-Peerex-Trunk (an
# outbound call, Zoom to PSTN) only from them (403 untrusted_source otherwise), and the lookup API
# answers outbound lookups only from them (HTTP 403 otherwise). Empty: no outbound call is allowed.
trusted_proxies = []
# Emergency numbers an outbound call to which is always let through (any caller, any state, even on
# a stale copy of the database), each "+" country code and short code, e.g. ["+44999", "+44112"].
# Empty: peerex's default list of the common codes (README, "Emergency calls").
emergency_numbers = []
# How inbound Request-URIs without a '+' become E.164 when no trunk is named.
country_code = "1"
national_prefix = "1"
international_prefix = "011"
# Seconds between generation checks against the database.
check_seconds = 1
# Most UDP datagrams a second the redirect server reads from one address (0: no limit); the rest
# are dropped unread, so one address flooding cannot crowd out calls. Keep it above twice the
# calls a second of your busiest SBC.
sip_source_limit = 50000
# Bounds on each TCP listener (the lookup API, SIP over TCP). Connections open at once from
# addresses other than trusted_proxies (more are closed as they arrive; trusted proxies are never
# turned away by this bound), and from any one address.
max_connections = 512
max_connections_per_source = 64
# Seconds a connection has to send a complete request after opening or starting one (closed after
# one to two of these otherwise), and seconds it may stay idle between requests.
header_timeout_seconds = 5
idle_timeout_seconds = 120
# Seconds the routing snapshot may go without a successful check against the database before
# outbound calls are refused (503) and answers, /healthz and the peerex_routing_snapshot_stale
# metric say it is stale (X-Peerex-Stale in SIP answers, stale_seconds in lookups). Inbound calls
# are answered from it however old.
stale_after_seconds = 30
# Directory of the last-known-good snapshot (routing-snapshot.bin): written while the database
# answers, and answered from when it does not, a restart included. Empty: none for `peerex serve`;
# `peerex route` uses data_dir.
state_dir = ""
# Seconds between writes of that snapshot while it keeps changing.
snapshot_write_seconds = 60
# Seconds one database round trip may take before the database counts as unreachable.
query_timeout_seconds = 10
# Threads answering SIP over UDP and serving the lookup API, each with a socket of its own on the
# same address (SO_REUSEPORT); no lock is shared between them per call. 0: one per core.
sip_threads = 1
http_threads = 1
# Seconds between heartbeats in the database. Every `peerex serve` (and every `peerex route` with
# report_database_url) beats; the database lets about one beat through per interval however many
# instances try. A `peerex route` on a read replica counts its snapshot current only as of the last
# beat that reached the replica: a replica cut off from its primary keeps answering, but turns stale
# after stale_after_seconds like an unreachable database. Keep it well below stale_after_seconds.
heartbeat_seconds = 5
# `peerex route` only: the primary database (a role that may write routing_instances and
# routing_heartbeat), where the instance reports the generation it serves, so the reconciler
# compares it (finding routing_behind), and beats the heartbeat. Empty: the instance writes nowhere
# and the reconciler does not see it.
report_database_url = ""
# This instance's name in routing_instances and the reconciler's findings (unique per instance).
# Empty: host name, process id and a random part.
instance_name = ""

# What the carrier requires of its numbers (see README, "Emergency addresses and caller ID names").
[numbers]
# Which active numbers must have an emergency (E911) address set in the customer's Zoom account:
# false (none), true (all), or a list of country prefixes, e.g. ["+1"] for the US and Canada. An
# active number without one is flagged in both portals, the API, the export and /metrics.
e911_required = false
"#;

impl Config {
    /// Loads the layers in order. `file` is the `--config` flag; without it `peerex.toml` in the
    /// working directory is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("peerex.toml")),
        }
        let config: Config = figment
            .merge(Env::prefixed("PEEREX_").ignore(&["TEST_PG_URL"]).split("__"))
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "configuration: log_format must be \"text\" or \"json\""
        );
        anyhow::ensure!(
            (1..=24 * 30).contains(&self.session_hours),
            "configuration: session_hours must be 1 to 720"
        );
        anyhow::ensure!(
            (0..=3650).contains(&self.release_quarantine_days),
            "configuration: release_quarantine_days must be 0 to 3650"
        );
        anyhow::ensure!(
            !self.carrier_name.trim().is_empty(),
            "configuration: carrier_name must not be empty"
        );
        self.zoom.setup(&self.carrier_name)?;
        self.mail.setup(&self.carrier_name)?;
        self.numbers
            .e911_required
            .check()
            .map_err(|e| anyhow::anyhow!("configuration: numbers.{e}"))?;
        self.http.limits().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        self.http.access().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        self.webhooks.settings()?;
        self.webhooks.keys()?;
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory (created if missing).
    pub fn database_url(&self) -> anyhow::Result<String> {
        if !self.database_url.trim().is_empty() {
            return Ok(self.database_url.trim().to_owned());
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data_dir {}: {e}", self.data_dir.display())
        })?;
        Ok(format!("sqlite://{}", self.data_dir.join("peerex.db").display()))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` (and `?password=` too).
pub use store::redact_url;

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("carrier_name", &self.carrier_name)
            .field("secure_cookies", &self.secure_cookies)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("session_hours", &self.session_hours)
            .field("release_quarantine_days", &self.release_quarantine_days)
            .field("zoom", &self.zoom)
            .field("http", &self.http)
            .field("numbers", &self.numbers)
            .field("mail", &self.mail)
            .field("webhooks", &self.webhooks)
            .field("routing", &self.routing)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://peerex:hunter2@db/peerex"),
            "postgres://peerex:***@db/peerex"
        );
        assert_eq!(redact_url("sqlite://peerex-data/peerex.db"), "sqlite://peerex-data/peerex.db");
        let mut c =
            Config { database_url: "postgres://u:topsecret@h/d".into(), ..Config::default() };
        c.routing.http_secret = "lookup-bearer-secret".into();
        c.routing.report_database_url = "postgres://route:primary-pw@central/peerex".into();
        c.routing.sip_listen = "0.0.0.0:5060".into();
        // `peerex config show` prints this: every section, no secret.
        let shown = format!("{c:#?}");
        for secret in ["topsecret", "lookup-bearer-secret", "primary-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for setting in
            ["0.0.0.0:5060", "postgres://route:***@central/peerex", "http_secret: \"***\""]
        {
            assert!(shown.contains(setting), "{setting} not in {shown}");
        }
        let webhooks = crate::webhooks_cmd::WebhooksConfig {
            secret_key: "k1:c2VjcmV0LWtleQ==".into(),
            old_secret_keys: vec!["k0:b2xkLWtleQ==".into()],
            ..Default::default()
        };
        let printed = format!("{webhooks:?}");
        assert!(!printed.contains("c2VjcmV0") && !printed.contains("b2xk"), "{printed}");
    }

    #[test]
    fn the_http_example_is_the_defaults() {
        let from_example: web::http_config::HttpConfig =
            Figment::from(Toml::string(web::http_config::EXAMPLE)).extract_inner("http").unwrap();
        assert!(from_example == web::http_config::HttpConfig::default());
    }

    #[test]
    fn e911_required_takes_a_bool_or_country_prefixes_and_refuses_others() {
        let read = |toml: &str| -> Config {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract()
                .unwrap()
        };
        let c = read("[numbers]\ne911_required = [\"+1\", \"+44\"]\n");
        assert_eq!(
            c.numbers.e911_required,
            domain::zoom_facts::E911Required::Countries(vec!["+1".into(), "+44".into()])
        );
        assert!(c.check().is_ok());
        let c = read("[numbers]\ne911_required = true\n");
        assert_eq!(c.numbers.e911_required, domain::zoom_facts::E911Required::All(true));
        let e = read("[numbers]\ne911_required = [\"US\"]\n").check().unwrap_err().to_string();
        assert!(e.contains("numbers.e911_required") && e.contains("\"US\""), "{e}");
    }

    #[test]
    fn the_example_is_the_defaults() {
        let from_example: Config =
            Figment::from(Toml::string(&format!("{EXAMPLE}{}", crate::webhooks_cmd::EXAMPLE)))
                .extract()
                .unwrap();
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&from_example).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }
}
