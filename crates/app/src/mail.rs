//! Email to customers' admins, sent from the mail outbox: a sender claims a mail under a lease,
//! commits, talks SMTP with no transaction open, and records the outcome as a compare-and-set on its
//! lease. A 5xx refusal fails the mail for good (operators see it); a 4xx, a timeout or a dropped
//! connection retries it with backoff until the attempts run out.
//!
//! At least once: a sender killed after the server took a mail and before the outcome was recorded
//! leaves it to be sent again when its lease runs out. Every attempt of one mail carries the same
//! `Message-ID`, so a receiving system can drop the copy.

use crate::{App, Result};
use domain::mail::{render, Branding, Mail, MailEnd, ReminderSchedule};
use domain::onboarding::RetryPolicy;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or network.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Tls),
            _ => None,
        }
    }
}

/// What sending mail needs.
#[derive(Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: String,
    /// The From, in the carrier's name: `Example Carrier <numbers@example.net>`.
    pub sender: String,
    pub brand: Branding,
    /// Who is told when a release's approval deadline passes.
    pub operators: Vec<String>,
    pub schedule: ReminderSchedule,
    pub retry: RetryPolicy,
    /// How long one SMTP conversation may take.
    pub timeout: Duration,
    /// How long a sender holds a mail before another may take it (beyond `timeout`).
    pub lease: Duration,
    /// Senders running on this instance.
    pub senders: usize,
}

/// The SMTP password never appears in logs.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("sender", &self.sender)
            .field("operators", &self.operators)
            .field("timeout", &self.timeout)
            .field("senders", &self.senders)
            .finish_non_exhaustive()
    }
}

/// The SMTP transport and the settings it was built from.
pub struct Mailer {
    pub settings: MailSettings,
    sender: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("host", &self.settings.host).finish_non_exhaustive()
    }
}

/// A configuration that cannot send mail, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("mail.{field}: {message}")]
pub struct MailConfigError {
    pub field: &'static str,
    pub message: String,
}

impl Mailer {
    pub fn new(settings: MailSettings) -> std::result::Result<Self, MailConfigError> {
        let bad = |field, message: String| MailConfigError { field, message };
        let sender: Mailbox =
            settings.sender.parse().map_err(|e| bad("sender", format!("not an address: {e}")))?;
        for op in &settings.operators {
            op.parse::<Mailbox>()
                .map_err(|e| bad("operators", format!("{op} is not an address: {e}")))?;
        }
        let tls =
            |host: &str| TlsParameters::new(host.to_owned()).map_err(|e| bad("tls", e.to_string()));
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls(&settings.host)?),
            SmtpTls::Tls => Tls::Wrapper(tls(&settings.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .hello_name(ClientId::Domain(sender.email.domain().to_owned()));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.clone(),
            ));
        }
        Ok(Self { transport: builder.build(), sender, settings })
    }

    /// Sends a sample mail (an order applied, for a made-up customer) to `to`: checks the
    /// configuration end to end.
    pub async fn send_sample(&self, to: &str) -> std::result::Result<(), String> {
        let now = time::OffsetDateTime::now_utc();
        let mail = Mail {
            id: uuid::Uuid::now_v7(),
            key: "sample".into(),
            kind: domain::mail::MailKind::OrderApplied,
            customer_id: domain::CustomerId::new(),
            facts: domain::mail::MailFacts {
                customer_name: "Sample Customer".into(),
                numbers: vec!["+15550100000".into()],
                reason: None,
                release_id: None,
                order_id: None,
                started_at: None,
                deadline: None,
            },
            state: domain::mail::MailState::Sending,
            attempts: 1,
            run_after: now,
            last_error: None,
            recipients: None,
            created_at: now,
            sent_at: None,
        };
        self.send(&mail, &[to.to_owned()]).await.map_err(|(_, e)| e)
    }

    /// Sends one rendered mail; the error says whether trying again may help.
    async fn send(&self, mail: &Mail, to: &[String]) -> std::result::Result<(), (bool, String)> {
        let mut facts = mail.facts.clone();
        facts.deadline = facts.started_at.map(|s| s + self.settings.schedule.deadline);
        let body = render(mail.kind, &facts, &self.settings.brand);
        let mut builder = Message::builder()
            .from(self.sender.clone())
            .subject(body.subject)
            // The same id on every attempt: a receiver can drop a copy sent again after a crash.
            .message_id(Some(format!("<{}@{}>", mail.id, self.sender.email.domain())));
        for addr in to {
            let mbox: Mailbox =
                addr.parse().map_err(|e| (false, format!("{addr} is not an address: {e}")))?;
            builder = builder.to(mbox);
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body.text),
                    )
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_HTML).body(body.html),
                    ),
            )
            .map_err(|e| (false, format!("cannot build the message: {e}")))?;
        // lettre's own timeout bounds each read and write; this bounds the whole conversation (a
        // server trickling its answers).
        match tokio::time::timeout(self.settings.timeout * 3, self.transport.send(message)).await {
            Err(_) => Err((true, "the SMTP server took too long".into())),
            Ok(Ok(_)) => Ok(()),
            // 5xx: the server refuses this mail for good.
            Ok(Err(e)) if e.is_permanent() => Err((false, e.to_string())),
            // 4xx, timeouts, dropped connections, TLS trouble: another attempt may pass.
            Ok(Err(e)) => Err((true, e.to_string())),
        }
    }
}

/// What one sender's turn did.
#[derive(Debug, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    Retry,
    Failed,
    /// Another sender took the mail meanwhile (our lease ran out): its outcome stands.
    LeaseLost,
}

impl App {
    pub fn with_mail(mut self, mailer: Mailer) -> Self {
        self.mail = Some(Arc::new(mailer));
        self
    }

    /// Sends the next due mail as `owner`; `None` when none is due or mail is not configured.
    pub async fn send_one_mail(&self, owner: &str) -> Result<Option<MailOutcome>> {
        let Some(mailer) = self.mail.clone() else { return Ok(None) };
        let now = self.now();
        let lease = now + mailer.settings.lease + mailer.settings.timeout * 3;
        let Some(mail) = self.store.claim_mail(owner, lease, now).await? else {
            return Ok(None);
        };
        let span =
            tracing::info_span!("mail", id = %mail.id, key = %mail.key, attempt = mail.attempts);
        // Entered only across the awaits of this mail (a guard held across them would lend the
        // span to whatever else the thread runs meanwhile).
        self.send_claimed(mailer, mail, owner).instrument(span).await
    }

    async fn send_claimed(
        &self,
        mailer: Arc<Mailer>,
        mail: Mail,
        owner: &str,
    ) -> Result<Option<MailOutcome>> {
        let mut to = self.store.customer_admin_emails(mail.customer_id).await?;
        if mail.kind.to_operators() {
            to.extend(mailer.settings.operators.iter().cloned());
        }
        let end = if to.is_empty() {
            MailEnd::Failed { error: "the customer has no admin user to write to".into() }
        } else {
            match mailer.send(&mail, &to).await {
                Ok(()) => MailEnd::Sent { recipients: to.join(", ") },
                Err((true, error)) if !mailer.settings.retry.gives_up(mail.attempts) => {
                    let wait = mailer.settings.retry.backoff(mail.attempts, rand::random(), None);
                    MailEnd::Retry { at: self.now() + wait, error }
                }
                Err((_, error)) => MailEnd::Failed { error },
            }
        };
        let outcome = match &end {
            MailEnd::Sent { .. } => MailOutcome::Sent,
            MailEnd::Retry { error, .. } => {
                tracing::warn!(%error, "mail not sent; will try again");
                MailOutcome::Retry
            }
            MailEnd::Failed { error } => {
                tracing::error!(%error, "mail failed");
                MailOutcome::Failed
            }
        };
        if !self.store.finish_mail(mail.id, owner, &end, self.now()).await? {
            return Ok(Some(MailOutcome::LeaseLost));
        }
        Ok(Some(outcome))
    }

    /// Writes the release reminders and deadline mails due now; how many were new.
    pub async fn scan_release_reminders(&self) -> Result<usize> {
        let Some(mailer) = self.mail.as_deref() else { return Ok(0) };
        Ok(self.store.enqueue_release_reminders(&mailer.settings.schedule, self.now()).await?)
    }

    /// Mails newest first, of one state or all (operators).
    pub async fn mails(
        &self,
        state: Option<domain::mail::MailState>,
        limit: u32,
    ) -> Result<Vec<Mail>> {
        Ok(self.store.list_mails(state, limit.min(1000)).await?)
    }

    /// An operator sends a failed mail again.
    pub async fn retry_mail(&self, id: uuid::Uuid) -> Result<bool> {
        Ok(self.store.retry_mail(id, self.now()).await?)
    }

    /// Starts the senders and the reminder scan (every `scan`); nothing when mail is not
    /// configured. Dropping the handle stops them; [`MailSenders::shutdown`] hands back what they
    /// hold.
    pub fn spawn_mail(&self, scan: Duration) -> MailSenders {
        let Some(mailer) = self.mail.clone() else {
            return MailSenders { handles: Vec::new(), names: Vec::new(), app: None };
        };
        let instance = uuid::Uuid::now_v7().simple().to_string();
        let names: Vec<String> = (0..mailer.settings.senders.max(1))
            .map(|i| format!("mail-{}-{i}", &instance[20..]))
            .collect();
        let mut handles: Vec<_> = names
            .iter()
            .map(|name| {
                let (app, name) = (self.clone(), name.clone());
                tokio::spawn(async move {
                    loop {
                        match app.send_one_mail(&name).await {
                            Ok(Some(_)) => continue,
                            Ok(None) => tokio::time::sleep(Duration::from_millis(500)).await,
                            Err(e) => {
                                tracing::error!(error = %e, "mail sender: database error; pausing");
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        let app = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(scan);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = app.scan_release_reminders().await {
                    tracing::error!(error = %e, "release reminders: database error");
                }
            }
        }));
        MailSenders { handles, names, app: Some(self.clone()) }
    }
}

/// The running mail senders and reminder scan; dropping them stops them.
pub struct MailSenders {
    handles: Vec<tokio::task::JoinHandle<()>>,
    names: Vec<String>,
    app: Option<App>,
}

impl MailSenders {
    /// A clean stop: the senders stop where they are and the mails they held are pending again.
    pub async fn shutdown(mut self) -> u64 {
        for h in &self.handles {
            h.abort();
        }
        for h in self.handles.drain(..) {
            let _ = h.await;
        }
        let Some(app) = self.app.take() else { return 0 };
        let mut back = 0;
        for name in &self.names {
            back += app.store.hand_back_mail(name, app.now()).await.unwrap_or(0);
        }
        back
    }
}

impl Drop for MailSenders {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}
