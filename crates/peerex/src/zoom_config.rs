//! The `[zoom]` section of the configuration: who peerex is to Zoom (its Marketplace app), where Zoom
//! is, and the key that seals Zoom's tokens at rest. Secrets never print.

use app::onboarding::ZoomSetup;
use app::token_keys::TokenKeys;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZoomConfig {
    /// The carrier's Marketplace app (Zoom App Marketplace > Develop > the app > App Credentials).
    /// Empty: Zoom is not configured, installs and pushes are refused.
    pub client_id: String,
    pub client_secret: String,
    /// peerex's OAuth callback as registered with the app: `https://<peerex>/zoom/oauth/callback`.
    pub redirect_uri: String,
    /// The app's "Secret Token": Zoom signs its webhooks (`/zoom/webhook`) with it.
    pub webhook_secret: String,
    /// Seals Zoom's tokens at rest: `"<key id>:<base64 of 32 random bytes>"`.
    pub token_key: String,
    /// Former token keys, still able to open what they sealed (key rotation; see README).
    pub old_token_keys: Vec<String>,
    pub oauth_base: String,
    pub api_base: String,
    /// No longer used: a customer's numbers are pushed on the customer's own Zoom trunk, and a customer
    /// without one is not pushed (README, "Routing"). Still read, so older files load.
    pub sip_trunk_name: String,
    /// Seconds a call to Zoom may take.
    pub timeout_seconds: u64,
    /// Seconds between two listings of a linked account's numbers (to learn which are assigned).
    pub poll_seconds: u64,
    /// Calls per second per Zoom account, shared by every instance on the database (Zoom's LIGHT
    /// limit: 20 Pro, 40 Business and up); 0 turns pacing off. Zoom's 429s are honoured on top.
    pub requests_per_second: f64,
    /// Job workers per instance.
    pub workers: usize,
    /// Seconds a claimed job stays its worker's without a heartbeat (renewed every third of it while
    /// the job runs): a dead instance's jobs are taken again this long after its last heartbeat.
    pub lease_seconds: u64,
    /// Minutes between two reconciliations of each linked account with Zoom (and of the routing
    /// instances with the database), shared by every instance; 0: only `peerex reconcile`.
    pub reconcile_minutes: u64,
    /// Queue the automatic repairs of what reconciliation finds (a number gone from Zoom pushed
    /// again, a trunk or status set back); off: an operator asks for them.
    pub reconcile_auto_repair: bool,
    /// Minutes a number may stay `provisioning` or `releasing` with no job working on it before
    /// reconciliation reports it stuck.
    pub reconcile_stuck_minutes: u64,
    /// Linked accounts compared at once (each within its own request budget).
    pub reconcile_parallel: usize,
    /// The carrier's own Server-to-Server OAuth app (made in the carrier's own Zoom account, with
    /// the Provider Portal's read scope): reconciliation lists every number the carrier pushed, in
    /// every account, with it. Empty: only each linked account is compared.
    pub carrier_client_id: String,
    pub carrier_client_secret: String,
    /// The carrier's own Zoom account id (the app's Account ID).
    pub carrier_account_id: String,
    /// Calls per second to the carrier-wide listing, shared by every instance; 0: no pacing.
    pub carrier_requests_per_second: f64,
}

impl Default for ZoomConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            redirect_uri: String::new(),
            webhook_secret: String::new(),
            token_key: String::new(),
            old_token_keys: Vec::new(),
            oauth_base: "https://zoom.us".into(),
            api_base: "https://api.zoom.us/v2".into(),
            sip_trunk_name: String::new(),
            timeout_seconds: 30,
            poll_seconds: 300,
            requests_per_second: 20.0,
            workers: 4,
            lease_seconds: 15,
            reconcile_minutes: 15,
            reconcile_auto_repair: false,
            reconcile_stuck_minutes: 30,
            reconcile_parallel: 4,
            carrier_client_id: String::new(),
            carrier_client_secret: String::new(),
            carrier_account_id: String::new(),
            carrier_requests_per_second: 20.0,
        }
    }
}

pub const EXAMPLE: &str = r#"
# The carrier's Zoom Marketplace app (see README, "Zoom"). Empty client_id: Zoom is off.
[zoom]
client_id = ""
client_secret = ""
# Registered with the app as its redirect URL.
redirect_uri = ""
# The app's Secret Token: verifies Zoom's webhooks at /zoom/webhook.
webhook_secret = ""
# Seals Zoom's tokens at rest: "<key id>:<base64 of 32 bytes>" (head -c 32 /dev/urandom | base64).
token_key = ""
# Former keys, kept while tokens sealed with them remain (rotation).
old_token_keys = []
oauth_base = "https://zoom.us"
api_base = "https://api.zoom.us/v2"
# No longer used (a customer's numbers go on its own Zoom trunk; one without is not pushed).
sip_trunk_name = ""
timeout_seconds = 30
# How often each linked account's numbers are listed to learn which are assigned to users.
poll_seconds = 300
# Calls per second per Zoom account, shared by every instance on the database (Zoom's limit: 20 Pro,
# 40 Business and up); 0: no pacing.
requests_per_second = 20.0
# Job workers per instance.
workers = 4
# Seconds a job stays its worker's without a heartbeat: a dead instance's jobs are taken again after it.
lease_seconds = 15
# Minutes between two reconciliations of each linked account with Zoom (one instance runs each; the
# listing shares the account's request budget with pushes); 0: only `peerex reconcile`.
reconcile_minutes = 15
# Queue the automatic repairs of what it finds (push again, trunk or status set back); never removes
# or moves a number. Off: an operator asks (`peerex reconcile --repair`, the API).
reconcile_auto_repair = false
# Minutes a number may stay provisioning or releasing with no job on it before it is reported stuck.
reconcile_stuck_minutes = 30
# Linked accounts listed at once (each within its own request budget).
reconcile_parallel = 4
# The carrier's own Server-to-Server OAuth app (in the carrier's own Zoom account): reconciliation
# compares every number the carrier pushed, in every account, with it: numbers in Zoom accounts no
# customer linked, numbers peerex does not have, numbers in another customer's account. Empty: off.
carrier_client_id = ""
carrier_client_secret = ""
carrier_account_id = ""
# Calls per second to the carrier-wide listing, shared by every instance; 0: no pacing.
carrier_requests_per_second = 20.0
"#;

fn redacted(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        "***"
    }
}

impl fmt::Debug for ZoomConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoomConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("redirect_uri", &self.redirect_uri)
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("token_key", &redacted(&self.token_key))
            .field("old_token_keys", &self.old_token_keys.iter().map(|_| "***").collect::<Vec<_>>())
            .field("oauth_base", &self.oauth_base)
            .field("api_base", &self.api_base)
            .field("sip_trunk_name", &self.sip_trunk_name)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("poll_seconds", &self.poll_seconds)
            .field("requests_per_second", &self.requests_per_second)
            .field("workers", &self.workers)
            .field("lease_seconds", &self.lease_seconds)
            .field("reconcile_minutes", &self.reconcile_minutes)
            .field("reconcile_auto_repair", &self.reconcile_auto_repair)
            .field("reconcile_stuck_minutes", &self.reconcile_stuck_minutes)
            .field("reconcile_parallel", &self.reconcile_parallel)
            .field("carrier_client_id", &self.carrier_client_id)
            .field("carrier_client_secret", &redacted(&self.carrier_client_secret))
            .field("carrier_account_id", &self.carrier_account_id)
            .field("carrier_requests_per_second", &self.carrier_requests_per_second)
            .finish()
    }
}

impl ZoomConfig {
    pub fn enabled(&self) -> bool {
        !self.client_id.trim().is_empty()
    }

    /// The platform's Zoom wiring, or `None` when Zoom is not configured. Every missing or bad
    /// setting is named.
    pub fn setup(&self, carrier_name: &str) -> anyhow::Result<Option<ZoomSetup>> {
        if !self.enabled() {
            return Ok(None);
        }
        let need = |field: &str, v: &str| -> anyhow::Result<()> {
            anyhow::ensure!(
                !v.trim().is_empty(),
                "configuration: zoom.{field} is required when zoom.client_id is set"
            );
            Ok(())
        };
        need("client_secret", &self.client_secret)?;
        need("redirect_uri", &self.redirect_uri)?;
        need("webhook_secret", &self.webhook_secret)?;
        need("token_key", &self.token_key)?;
        anyhow::ensure!(
            (1..=300).contains(&self.timeout_seconds),
            "configuration: zoom.timeout_seconds must be 1 to 300"
        );
        anyhow::ensure!(
            self.poll_seconds >= 10,
            "configuration: zoom.poll_seconds must be at least 10"
        );
        anyhow::ensure!(
            (0.0..=1000.0).contains(&self.requests_per_second),
            "configuration: zoom.requests_per_second must be 0 to 1000"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.workers),
            "configuration: zoom.workers must be 1 to 64"
        );
        anyhow::ensure!(
            (3..=600).contains(&self.lease_seconds),
            "configuration: zoom.lease_seconds must be 3 to 600"
        );
        anyhow::ensure!(
            self.reconcile_minutes <= 7 * 24 * 60,
            "configuration: zoom.reconcile_minutes must be 0 to 10080"
        );
        anyhow::ensure!(
            (1..=7 * 24 * 60).contains(&self.reconcile_stuck_minutes),
            "configuration: zoom.reconcile_stuck_minutes must be 1 to 10080"
        );
        anyhow::ensure!(
            (1..=256).contains(&self.reconcile_parallel),
            "configuration: zoom.reconcile_parallel must be 1 to 256"
        );
        let url = |field: &str, v: &str| {
            v.trim()
                .parse::<url::Url>()
                .map_err(|e| anyhow::anyhow!("configuration: zoom.{field}: {e}"))
        };
        let config = zoom::Config {
            oauth_base: url("oauth_base", &self.oauth_base)?,
            api_base: url("api_base", &self.api_base)?,
            client_id: self.client_id.trim().to_owned(),
            client_secret: self.client_secret.trim().to_owned(),
            redirect_uri: url("redirect_uri", &self.redirect_uri)?,
            timeout: Duration::from_secs(self.timeout_seconds),
        };
        let carrier = if self.carrier_client_id.trim().is_empty() {
            None
        } else {
            need("carrier_client_secret", &self.carrier_client_secret)?;
            anyhow::ensure!(
                (0.0..=1000.0).contains(&self.carrier_requests_per_second),
                "configuration: zoom.carrier_requests_per_second must be 0 to 1000"
            );
            let account = domain::ZoomAccountId::parse(self.carrier_account_id.trim())
                .map_err(|e| anyhow::anyhow!("configuration: zoom.carrier_account_id: {e}"))?;
            let s2s = zoom::Config {
                client_id: self.carrier_client_id.trim().to_owned(),
                client_secret: self.carrier_client_secret.trim().to_owned(),
                ..config.clone()
            };
            let client = zoom::Client::new(s2s)
                .map_err(|e| anyhow::anyhow!("configuration: zoom (carrier app): {e}"))?;
            Some(app::reconcile::CarrierApp::new(client, account, self.carrier_requests_per_second))
        };
        let client =
            zoom::Client::new(config).map_err(|e| anyhow::anyhow!("configuration: zoom: {e}"))?;
        let keys = TokenKeys::new(&self.token_key, &self.old_token_keys)
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let mut setup = ZoomSetup::new(client, keys, self.webhook_secret.trim().to_owned());
        setup.poll_every = Duration::from_secs(self.poll_seconds);
        setup.requests_per_second = self.requests_per_second;
        setup.workers = self.workers;
        setup.lease = Duration::from_secs(self.lease_seconds);
        setup.carrier_name = carrier_name.to_owned();
        setup.reconcile.every = Duration::from_secs(self.reconcile_minutes * 60);
        setup.reconcile.auto_repair = self.reconcile_auto_repair;
        setup.carrier = carrier;
        setup.reconcile.parallel = self.reconcile_parallel;
        setup.reconcile.thresholds.stuck_after = time::Duration::minutes(
            i64::try_from(self.reconcile_stuck_minutes).unwrap_or(i64::MAX / 60_000),
        );
        Ok(Some(setup))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> ZoomConfig {
        ZoomConfig {
            client_id: "id".into(),
            client_secret: "topsecret-client".into(),
            redirect_uri: "http://127.0.0.1:8080/zoom/oauth/callback".into(),
            webhook_secret: "topsecret-webhook".into(),
            token_key: format!("k1:{}", "A".repeat(43) + "="),
            sip_trunk_name: "trunk-1".into(),
            ..ZoomConfig::default()
        }
    }

    #[test]
    fn the_example_is_the_defaults() {
        use figment::providers::{Format, Toml};
        let from_example: ZoomConfig =
            figment::Figment::from(Toml::string(EXAMPLE)).extract_inner("zoom").unwrap();
        assert_eq!(from_example, ZoomConfig::default());
        assert!(TokenKeys::new(&TokenKeys::new_key_setting("k1"), &[]).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let c = configured();
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("AAAA"), "{shown}");
        assert!(shown.contains("client_id: \"id\""));
    }

    #[tokio::test]
    async fn a_complete_section_builds_and_a_missing_setting_is_named() {
        assert!(ZoomConfig::default().setup("C").unwrap().is_none(), "off without a client id");
        assert!(configured().setup("C").unwrap().is_some());
        let e =
            ZoomConfig { webhook_secret: String::new(), ..configured() }.setup("C").err().unwrap();
        assert_eq!(
            e.to_string(),
            "configuration: zoom.webhook_secret is required when zoom.client_id is set"
        );
        let with_carrier = ZoomConfig {
            carrier_client_id: "s2s".into(),
            carrier_client_secret: "s2s-secret".into(),
            carrier_account_id: "carrierOwnAccount".into(),
            ..configured()
        };
        assert!(with_carrier.setup("C").unwrap().unwrap().carrier.is_some());
        assert!(configured().setup("C").unwrap().unwrap().carrier.is_none());
        let e = ZoomConfig { carrier_client_secret: String::new(), ..with_carrier }
            .setup("C")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "configuration: zoom.carrier_client_secret is required when zoom.client_id is set"
        );
        let e =
            ZoomConfig { token_key: "k1:short".into(), ..configured() }.setup("C").err().unwrap();
        assert!(e.to_string().starts_with("configuration: zoom.token_key"), "{e}");
    }
}
