//! Email to customers' admins: which mails there are, what each says (text and HTML, in the
//! carrier's name), the key that makes each one mail once, and when a release's reminders and
//! deadline fall due. Sending is the app's; the store writes a mail in the transaction of the change
//! that causes it.

use crate::ids::{CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// The carrier started a release: numbers wait for the customer's approval.
    ReleaseWaiting,
    /// A release still waits, on the carrier's reminder schedule.
    ReleaseReminder,
    /// The approval deadline passed with numbers still waiting; operators get a copy.
    ReleaseDeadline,
    /// The app was removed in Zoom: the customer's numbers are suspended.
    AppRemoved,
    /// An order's numbers were applied to the customer's Zoom account.
    OrderApplied,
}

impl MailKind {
    pub const ALL: [MailKind; 5] = [
        MailKind::ReleaseWaiting,
        MailKind::ReleaseReminder,
        MailKind::ReleaseDeadline,
        MailKind::AppRemoved,
        MailKind::OrderApplied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::ReleaseWaiting => "release_waiting",
            MailKind::ReleaseReminder => "release_reminder",
            MailKind::ReleaseDeadline => "release_deadline",
            MailKind::AppRemoved => "app_removed",
            MailKind::OrderApplied => "order_applied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the carrier's operators get a copy (they have to act).
    pub fn to_operators(self) -> bool {
        self == MailKind::ReleaseDeadline
    }
}

/// Where a mail stands in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailState {
    /// Waiting to be sent (again) from `run_after`.
    Pending,
    /// A sender holds it under a lease.
    Sending,
    Sent,
    /// Refused for good (5xx), or out of attempts: shown to operators.
    Failed,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Pending => "pending",
            MailState::Sending => "sending",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [MailState::Pending, MailState::Sending, MailState::Sent, MailState::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What a mail says, written with the change that causes it. Rendered only when sent, with the
/// carrier's name and portal address as configured then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailFacts {
    pub customer_name: String,
    /// The numbers concerned (E.164).
    pub numbers: Vec<String>,
    /// The release's reason or the app removal's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// When the release started: its deadline is reckoned from it when the mail is rendered.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// The release's approval deadline (filled in when rendered).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub deadline: Option<OffsetDateTime>,
}

/// How a send ended, recorded if the sender still holds the mail's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailEnd {
    /// The server took it for these recipients.
    Sent { recipients: String },
    /// A transient fault (4xx, timeout, dropped connection): tried again from `at`.
    Retry { at: OffsetDateTime, error: String },
    /// Refused for good (5xx) or out of attempts.
    Failed { error: String },
}

/// A mail to write to the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    pub key: String,
    pub kind: MailKind,
    pub customer_id: CustomerId,
    pub facts: MailFacts,
}

/// A mail in the outbox.
#[derive(Clone, Debug, Serialize)]
pub struct Mail {
    pub id: Uuid,
    pub key: String,
    pub kind: MailKind,
    pub customer_id: CustomerId,
    pub facts: MailFacts,
    pub state: MailState,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub run_after: OffsetDateTime,
    pub last_error: Option<String>,
    /// Who it went to (comma-separated), once a send was tried.
    pub recipients: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

/// The idempotency keys: one mail per release start, reminder, deadline, removal and order.
pub mod key {
    use super::*;

    pub fn release_waiting(release: Uuid) -> String {
        format!("release:{release}:waiting")
    }
    /// `n` counts from 1 through the carrier's reminder schedule.
    pub fn release_reminder(release: Uuid, n: usize) -> String {
        format!("release:{release}:reminder:{n}")
    }
    pub fn release_deadline(release: Uuid) -> String {
        format!("release:{release}:deadline")
    }
    /// `removed_at` tells one removal from a later one of the same link made again.
    pub fn app_removed(link: Uuid, removed_at: OffsetDateTime) -> String {
        format!("link:{link}:removed:{}", removed_at.unix_timestamp_nanos())
    }
    pub fn order_applied(order: OrderId) -> String {
        format!("order:{}:applied", order.as_uuid())
    }
}

/// When a release's reminders and approval deadline fall due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderSchedule {
    /// After the start, each reminder's time (ascending).
    pub reminders: Vec<Duration>,
    /// After the start, when the customer's approval is overdue.
    pub deadline: Duration,
}

impl Default for ReminderSchedule {
    fn default() -> Self {
        Self {
            reminders: vec![Duration::hours(24), Duration::hours(72)],
            deadline: Duration::days(7),
        }
    }
}

impl ReminderSchedule {
    /// The mails due for a release started at `started_at` that still waits, as of `now`: each
    /// reminder whose time has come before the deadline, and the deadline. Keys make a mail already
    /// written a no-op, so the scan repeats this freely.
    pub fn due(
        &self,
        release: Uuid,
        started_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Vec<(String, MailKind)> {
        let mut due = Vec::new();
        let deadline_passed = now >= started_at + self.deadline;
        for (i, after) in self.reminders.iter().enumerate() {
            if *after < self.deadline && now >= started_at + *after && !deadline_passed {
                due.push((key::release_reminder(release, i + 1), MailKind::ReleaseReminder));
            }
        }
        if deadline_passed {
            due.push((key::release_deadline(release), MailKind::ReleaseDeadline));
        }
        due
    }
}

/// The carrier's name and where its customer portal is, for the mail's words and links.
#[derive(Clone, Debug)]
pub struct Branding {
    pub carrier: String,
    /// The portal's base URL, without a trailing slash (e.g. `https://numbers.example.net`).
    pub portal_url: String,
}

/// A mail ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The words of a mail, in text and HTML. Every value from outside (numbers, reasons, names) is
/// escaped in the HTML.
pub fn render(kind: MailKind, facts: &MailFacts, brand: &Branding) -> Rendered {
    let carrier = &brand.carrier;
    let base = brand.portal_url.trim_end_matches('/');
    let wait_link = format!("{base}/portal/releases");
    let portal_link = format!("{base}/portal");
    let count = facts.numbers.len();
    let plural = if count == 1 { "number" } else { "numbers" };
    let reason = facts.reason.as_deref().unwrap_or("");
    let deadline =
        facts.deadline.and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok());
    let (subject, intro, after, link): Words =
        match kind {
            MailKind::ReleaseWaiting => (
                format!("{carrier}: {count} {plural} waiting for your approval to release"),
                vec![format!(
                    "{carrier} has started the release of {count} of your {plural}. They stay yours and keep working until you approve the release in the portal."
                )],
                deadline
                    .iter()
                    .map(|d| format!("Please approve by {d}."))
                    .chain(["A number still assigned to a user in Zoom cannot be released: unassign it (Unbind) in Zoom first.".to_owned()])
                    .collect(),
                Some(("Open Wait for Release", wait_link)),
            ),
            MailKind::ReleaseReminder => (
                format!("Reminder from {carrier}: {count} {plural} still waiting for your approval"),
                vec![format!("{count} of your {plural} still wait for your approval to be released.")],
                deadline.iter().map(|d| format!("Please approve by {d}.")).collect(),
                Some(("Open Wait for Release", wait_link)),
            ),
            MailKind::ReleaseDeadline => (
                format!("{carrier}: the approval deadline for releasing {count} {plural} has passed"),
                vec![format!(
                    "The deadline to approve the release of {count} of your {plural} has passed. {carrier}'s staff have been told and will contact you."
                )],
                vec![],
                Some(("Open Wait for Release", wait_link)),
            ),
            MailKind::AppRemoved => (
                format!("{carrier}: the app was removed from your Zoom account"),
                vec![format!(
                    "The {carrier} app was removed from your Zoom account. Calls to and from the {count} {plural} below have stopped, and no new order can be placed."
                )],
                vec![
                    "The numbers are still yours: your contract is not cancelled.".to_owned(),
                    format!("To restore service, add the {carrier} app again in Zoom (Advanced > App Marketplace, category Carrier Provider Exchange) and sign in to the portal."),
                ],
                Some(("Open the portal", portal_link)),
            ),
            MailKind::OrderApplied => (
                format!("{carrier}: {count} new {plural} added to your Zoom account"),
                vec![format!(
                    "Your order has been applied: {count} {plural} are being added to your Zoom account, where they appear as Unassigned. Assign them to users in Zoom."
                )],
                vec![],
                Some(("Review the order in the portal", portal_link)),
            ),
        };

    let mut text = format!("Hello {},\n\n", facts.customer_name);
    for p in &intro {
        let _ = writeln!(text, "{p}\n");
    }
    if !reason.is_empty() {
        let _ = writeln!(text, "Reason: {reason}\n");
    }
    let _ = writeln!(text, "Numbers:");
    for n in &facts.numbers {
        let _ = writeln!(text, "  {n}");
    }
    text.push('\n');
    for p in &after {
        let _ = writeln!(text, "{p}\n");
    }
    if let Some((label, url)) = &link {
        let _ = writeln!(text, "{label}: {url}\n");
    }
    let _ = write!(text, "-- \n{carrier}\n");

    let mut html = String::from("<!doctype html><html><body>");
    let _ = write!(html, "<p>Hello {},</p>", escape(&facts.customer_name));
    for p in &intro {
        let _ = write!(html, "<p>{}</p>", escape(p));
    }
    if !reason.is_empty() {
        let _ = write!(html, "<p><strong>Reason:</strong> {}</p>", escape(reason));
    }
    html.push_str("<ul>");
    for n in &facts.numbers {
        let _ = write!(html, "<li>{}</li>", escape(n));
    }
    html.push_str("</ul>");
    for p in &after {
        let _ = write!(html, "<p>{}</p>", escape(p));
    }
    if let Some((label, url)) = &link {
        let _ = write!(html, "<p><a href=\"{}\">{}</a></p>", escape(url), escape(label));
    }
    let _ = write!(html, "<p>{}</p></body></html>", escape(carrier));
    Rendered { subject, text, html }
}

/// A mail's subject, its paragraphs before the numbers and after them, and its link (label, URL).
type Words = (String, Vec<String>, Vec<String>, Option<(&'static str, String)>);

/// HTML-escapes text for an element or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn facts() -> MailFacts {
        MailFacts {
            customer_name: "Acme <Ltd>".into(),
            numbers: vec!["+15550100".into(), "+15550101".into()],
            reason: Some("contract ends & numbers go back".into()),
            release_id: Some(Uuid::nil()),
            order_id: None,
            started_at: None,
            deadline: None,
        }
    }

    #[test]
    fn a_release_mail_names_numbers_reason_and_link_in_both_bodies() {
        let brand = Branding { carrier: "Tel Co".into(), portal_url: "https://p.example/".into() };
        let r = render(MailKind::ReleaseWaiting, &facts(), &brand);
        assert!(r.subject.starts_with("Tel Co: 2 numbers"));
        for body in [&r.text, &r.html] {
            assert!(body.contains("+15550100") && body.contains("+15550101"));
            assert!(body.contains("https://p.example/portal/releases"));
        }
        assert!(r.text.contains("Reason: contract ends & numbers go back"));
        assert!(r.html.contains("contract ends &amp; numbers go back"));
        assert!(r.html.contains("Acme &lt;Ltd&gt;"), "names are escaped: {}", r.html);
    }

    #[test]
    fn reminders_fall_due_on_schedule_and_stop_at_the_deadline() {
        let s = ReminderSchedule {
            reminders: vec![Duration::hours(24), Duration::hours(72)],
            deadline: Duration::days(5),
        };
        let id = Uuid::nil();
        let start = datetime!(2026-01-01 0:00 UTC);
        assert!(s.due(id, start, start + Duration::hours(23)).is_empty());
        let due = s.due(id, start, start + Duration::hours(25));
        assert_eq!(due, vec![(key::release_reminder(id, 1), MailKind::ReleaseReminder)]);
        assert_eq!(s.due(id, start, start + Duration::hours(73)).len(), 2);
        let late = s.due(id, start, start + Duration::days(6));
        assert_eq!(late, vec![(key::release_deadline(id), MailKind::ReleaseDeadline)]);
    }
}
