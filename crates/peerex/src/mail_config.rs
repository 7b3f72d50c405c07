//! `[mail]`: the SMTP server mails to customers' admins go through, in the carrier's name.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The SMTP server; empty: mail is off (mails are kept in the outbox, unsent).
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` (required) or `tls` (SMTPS from the first byte).
    pub tls: String,
    pub username: String,
    pub password: String,
    /// The From of every mail: `Example Carrier <numbers@example.net>`.
    pub sender: String,
    /// The portals' address as customers reach them, for the mails' links.
    pub portal_url: String,
    /// Hours after a release starts at which its waiting customer is reminded.
    pub reminder_hours: Vec<i64>,
    /// Days a customer has to approve a release; then the deadline mail goes out, operators copied.
    pub release_approval_days: i64,
    /// The operators told when a release's approval deadline passes.
    pub operators: Vec<String>,
    /// Seconds one SMTP conversation may take.
    pub timeout_seconds: u64,
    /// Senders on this instance.
    pub senders: usize,
    /// Seconds (beyond three timeouts) a sender holds a mail before another instance may take it:
    /// how soon a mail held by an instance that died is sent by another.
    pub lease_seconds: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: "starttls".into(),
            username: String::new(),
            password: String::new(),
            sender: String::new(),
            portal_url: "http://127.0.0.1:8080".into(),
            reminder_hours: vec![24, 72],
            release_approval_days: 7,
            operators: Vec::new(),
            timeout_seconds: 30,
            senders: 1,
            lease_seconds: 60,
        }
    }
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("sender", &self.sender)
            .field("portal_url", &self.portal_url)
            .field("reminder_hours", &self.reminder_hours)
            .field("release_approval_days", &self.release_approval_days)
            .field("operators", &self.operators)
            .finish()
    }
}

pub const EXAMPLE: &str = r#"
# Email to customers' admins (see README, "Email"). Off while host is empty: mails are then kept in
# the outbox unsent (listed at /operator/mails and GET /api/v1/mails) and no reminder is written.
[mail]
host = ""
port = 587
# "none" (a relay on this host only), "starttls" (required) or "tls" (SMTPS, usually port 465).
tls = "starttls"
username = ""
password = ""
# The From of every mail, in the carrier's name, e.g. "Example Carrier <numbers@example.net>".
sender = ""
# The portals' address as customers reach them: the mails link to it.
portal_url = "http://127.0.0.1:8080"
# Hours after a release starts at which the customer is reminded it still waits.
reminder_hours = [24, 72]
# Days the customer has to approve a release; then it is told the deadline passed and the
# operators below get a copy (the operator portal's Mail page lists it).
release_approval_days = 7
operators = []
# Seconds one SMTP conversation may take, and senders on each instance.
timeout_seconds = 30
senders = 1
# Seconds (beyond three timeouts) before a mail held by an instance that died is taken by another.
lease_seconds = 60
"#;

impl MailConfig {
    /// The sender's settings, `None` when mail is off; a bad key is named.
    pub fn setup(&self, carrier: &str) -> anyhow::Result<Option<app::mail::Mailer>> {
        if self.host.trim().is_empty() {
            return Ok(None);
        }
        let bad = |key: &str, why: &str| anyhow::anyhow!("configuration: mail.{key}: {why}");
        let tls = app::mail::SmtpTls::parse(&self.tls)
            .ok_or_else(|| bad("tls", "must be \"none\", \"starttls\" or \"tls\""))?;
        if self.sender.trim().is_empty() {
            return Err(bad("sender", "must be set when mail.host is"));
        }
        if !(1..=3650).contains(&self.release_approval_days) {
            return Err(bad("release_approval_days", "must be 1 to 3650"));
        }
        if self.reminder_hours.iter().any(|h| !(1..=24 * 3650).contains(h)) {
            return Err(bad("reminder_hours", "each must be 1 to 87600"));
        }
        if !(1..=600).contains(&self.timeout_seconds) {
            return Err(bad("timeout_seconds", "must be 1 to 600"));
        }
        if !(1..=3600).contains(&self.lease_seconds) {
            return Err(bad("lease_seconds", "must be 1 to 3600"));
        }
        let mut reminders: Vec<time::Duration> =
            self.reminder_hours.iter().map(|h| time::Duration::hours(*h)).collect();
        reminders.sort();
        let timeout = std::time::Duration::from_secs(self.timeout_seconds);
        let settings = app::mail::MailSettings {
            host: self.host.trim().to_owned(),
            port: self.port,
            tls,
            username: self.username.clone(),
            password: self.password.clone(),
            sender: self.sender.trim().to_owned(),
            brand: domain::mail::Branding {
                carrier: carrier.to_owned(),
                portal_url: self.portal_url.trim_end_matches('/').to_owned(),
            },
            operators: self.operators.clone(),
            schedule: domain::mail::ReminderSchedule {
                reminders,
                deadline: time::Duration::days(self.release_approval_days),
            },
            // Backoff from 30 s to an hour: about a day and a half of attempts before failing.
            retry: domain::onboarding::RetryPolicy {
                base: std::time::Duration::from_secs(30),
                cap: std::time::Duration::from_secs(3600),
                max_attempts: 40,
            },
            timeout,
            lease: std::time::Duration::from_secs(self.lease_seconds),
            senders: self.senders.clamp(1, 16),
        };
        app::mail::Mailer::new(settings)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Toml};

    #[test]
    fn the_example_is_the_defaults_and_mail_is_off_without_a_host() {
        let from_example: MailConfig =
            figment::Figment::from(Toml::string(EXAMPLE)).extract_inner("mail").unwrap();
        assert!(from_example == MailConfig::default());
        assert!(from_example.setup("Carrier").unwrap().is_none());
    }

    #[test]
    fn bad_keys_are_named_and_the_password_never_prints() {
        let c = MailConfig {
            host: "smtp.example".into(),
            tls: "maybe".into(),
            password: "hunter2".into(),
            ..MailConfig::default()
        };
        assert!(c.setup("C").unwrap_err().to_string().contains("mail.tls"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = MailConfig { tls: "starttls".into(), ..c };
        assert!(c.setup("C").unwrap_err().to_string().contains("mail.sender"));
        let c = MailConfig { sender: "Carrier <n@carrier.example>".into(), ..c };
        let mailer = c.setup("C").unwrap().expect("mail is on");
        assert!(!format!("{:?}", mailer.settings).contains("hunter2"));
    }
}
