//! Mail to customers' admins through a real SMTP server (aiosmtpd, `tests/smtp/server.py`), on both
//! databases: each mail reaches the server once through transient faults (451, a connection dropped
//! mid-message, a server slower than the timeout) and a sender that died holding a mail; a permanent
//! refusal fails the mail for operators to see; reminders and the deadline follow the schedule, the
//! deadline with the operators copied.

use app::mail::{MailOutcome, MailSettings, Mailer, SmtpTls};
use app::{App, Settings};
use domain::auth::Role;
use domain::customer::OrderPick;
use domain::mail::{Branding, MailState, ReminderSchedule};
use domain::number::NumberAttrs;
use domain::onboarding::{JobKind, PushResult, RetryPolicy, StoredTokens};
use domain::{Actor, CustomerId, Number, PhoneNumber, ZoomAccountId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use store::Store;
use testkit::TestClock;
use time::Duration;

testkit::store_tests_on_both!(
    each_mail_reaches_the_server_once_through_faults_and_a_dead_sender,
    a_refused_recipient_fails_the_mail_for_operators_to_see,
    two_instances_sending_at_once_send_each_mail_once,
);

const NUMBERS: [&str; 3] = ["+15550100000", "+15550100001", "+15550100002"];

fn by() -> Actor {
    Actor::System("test".into())
}

fn pn(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164).unwrap()
}

/// The SMTP server, killed when dropped.
struct Smtp {
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Smtp {
    async fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let child = tokio::process::Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd; scripts/test installs it)");
        let port_file = dir.path().join("port");
        let started = std::time::Instant::now();
        // The server writes its port once it is listening.
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(30),
                "the SMTP server did not start"
            );
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        };
        Smtp { _child: child, dir, port }
    }

    fn faults(&self, faults: &[&str]) {
        let text: String = faults.iter().map(|f| format!("{f}\n")).collect();
        std::fs::write(self.dir.path().join("faults"), text).unwrap();
    }

    fn received(&self) -> Vec<serde_json::Value> {
        let path: PathBuf = self.dir.path().join("mails.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn mailer(port: u16) -> Mailer {
    Mailer::new(MailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: String::new(),
        password: String::new(),
        sender: "Tel Co <numbers@telco.example>".into(),
        brand: Branding { carrier: "Tel Co".into(), portal_url: "https://portal.example".into() },
        operators: vec!["ops@telco.example".into()],
        schedule: ReminderSchedule {
            reminders: vec![Duration::hours(24)],
            deadline: Duration::days(7),
        },
        retry: RetryPolicy {
            base: StdDuration::from_secs(1),
            cap: StdDuration::from_secs(60),
            max_attempts: 6,
        },
        timeout: StdDuration::from_millis(1500),
        lease: StdDuration::from_secs(60),
        senders: 1,
    })
    .unwrap()
}

/// A linked customer (admin `admin`) whose three numbers are active in Zoom, two in a release:
/// the order's mail and the release's are in the outbox.
async fn releasing_customer(store: &Store, app: &App, admin: &str) -> CustomerId {
    let now = app.now();
    let batch: Vec<_> = NUMBERS
        .iter()
        .map(|n| Number::imported(pn(n), NumberAttrs::default(), &by(), now))
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let c = testkit::insert_customer(store, "acme").await;
    app.create_user(admin, "correct horse battery staple", Role::CustomerAdmin, Some(c))
        .await
        .unwrap();
    let pick = OrderPick { count: 3, ..Default::default() };
    store.create_order(c, &pick, &[], false, &by(), now).await.unwrap().unwrap();
    let tokens = StoredTokens {
        access_token: "k1:access".into(),
        refresh_token: "k1:refresh".into(),
        expires_at: now + Duration::hours(1),
        generation: 0,
    };
    let account = ZoomAccountId::parse("acct-1").unwrap();
    store
        .link_zoom_account(c, &account, "u", &tokens, "Tel Co", &by(), now)
        .await
        .unwrap()
        .unwrap();
    let push = store
        .claim_job("w", now + Duration::minutes(1), now)
        .await
        .unwrap()
        .filter(|j| j.kind == JobKind::PushNumbers)
        .expect("the push job");
    let accepted: Vec<_> = NUMBERS.iter().map(|n| (pn(n), PushResult::Accepted)).collect();
    assert!(store.complete_push(push.id, "w", &accepted, &by(), now).await.unwrap());
    let numbers: Vec<_> = NUMBERS[..2].iter().map(|n| pn(n)).collect();
    store.start_release(c, &numbers, "contract ends", &by(), now).await.unwrap().unwrap();
    c
}

/// Sends until nothing is pending, moving the clock to each retry; the outcomes in order.
async fn send_all(app: &App, clock: &TestClock, sender: &str) -> Vec<MailOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        match app.send_one_mail(sender).await.unwrap() {
            Some(o) => outcomes.push(o),
            None => {
                let waiting = app.mails(None, 100).await.unwrap();
                let next = waiting
                    .iter()
                    .filter(|m| matches!(m.state, MailState::Pending | MailState::Sending))
                    .map(|m| m.run_after.max(clock.now()) + Duration::minutes(3))
                    .min();
                match next {
                    Some(at) => clock.advance_to(at),
                    None => return outcomes,
                }
            }
        }
    }
    panic!("mail still pending after 40 turns: {outcomes:?}");
}

async fn each_mail_reaches_the_server_once_through_faults_and_a_dead_sender(store: Store) {
    let smtp = Smtp::start().await;
    let clock = TestClock::new();
    let app = App::new(store.clone(), Arc::new(clock.clone()), Settings::default())
        .with_mail(mailer(smtp.port));
    releasing_customer(&store, &app, "admin@acme.example").await;
    // A sender took one mail and was killed (its lease will run out) ...
    let now = app.now();
    let held = store.claim_mail("killed", now + Duration::minutes(1), now).await.unwrap().unwrap();
    // ... and the server fails the next three attempts three ways.
    smtp.faults(&["451", "drop", "slow"]);
    let outcomes = send_all(&app, &clock, "w").await;
    assert_eq!(outcomes.iter().filter(|o| **o == MailOutcome::Retry).count(), 3, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == MailOutcome::Sent).count(), 2, "{outcomes:?}");
    // The killed sender's late outcome changes nothing.
    let late = domain::mail::MailEnd::Sent { recipients: "x".into() };
    assert!(!store.finish_mail(held.id, "killed", &late, app.now()).await.unwrap());

    let got = smtp.received();
    assert_eq!(got.len(), 2, "each mail once: {got:#?}");
    let data: Vec<&str> = got.iter().map(|m| m["data"].as_str().unwrap()).collect();
    let release =
        data.iter().find(|d| d.contains("waiting for your approval")).expect("release mail");
    for want in [
        "Subject: Tel Co: 2 numbers waiting for your approval to release",
        "From: \"Tel Co\" <numbers@telco.example>",
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "+15550100000",
        "+15550100001",
        "contract ends",
        "https://portal.example/portal/releases",
    ] {
        assert!(release.contains(want), "{want} in {release}");
    }
    assert!(data.iter().any(|d| d.contains("new numbers added to your Zoom account")));
    for m in &got {
        assert_eq!(m["to"], serde_json::json!(["admin@acme.example"]));
    }

    // Restarted (another sender, nothing held): nothing is sent again.
    let again = App::new(store.clone(), Arc::new(clock.clone()), Settings::default())
        .with_mail(mailer(smtp.port));
    assert_eq!(again.send_one_mail("restarted").await.unwrap(), None);

    // A day on: one reminder, however often scanned; a week on: the deadline, operators copied.
    clock.advance(Duration::hours(25));
    assert_eq!(app.scan_release_reminders().await.unwrap(), 1);
    assert_eq!(again.scan_release_reminders().await.unwrap(), 0);
    clock.advance(Duration::days(7));
    assert_eq!(app.scan_release_reminders().await.unwrap(), 1);
    assert_eq!(send_all(&app, &clock, "w").await, [MailOutcome::Sent, MailOutcome::Sent]);
    let got = smtp.received();
    assert_eq!(got.len(), 4);
    let deadline = got
        .iter()
        .find(|m| m["data"].as_str().unwrap().contains("approval deadline"))
        .expect("deadline mail");
    assert_eq!(deadline["to"], serde_json::json!(["admin@acme.example", "ops@telco.example"]));
    assert!(got
        .iter()
        .any(|m| m["data"].as_str().unwrap().contains("Subject: Reminder from Tel Co")));
}

async fn a_refused_recipient_fails_the_mail_for_operators_to_see(store: Store) {
    let smtp = Smtp::start().await;
    let clock = TestClock::new();
    let app = App::new(store.clone(), Arc::new(clock.clone()), Settings::default())
        .with_mail(mailer(smtp.port));
    releasing_customer(&store, &app, "refused@acme.example").await;
    let outcomes = send_all(&app, &clock, "w").await;
    assert_eq!(outcomes, [MailOutcome::Failed, MailOutcome::Failed], "5xx is not retried");
    let failed = app.mails(Some(MailState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed[0].last_error.as_deref().unwrap().contains("550"), "{:?}", failed[0].last_error);
    assert!(smtp.received().is_empty());
    // An operator sends one again by hand: refused again, failed again.
    assert!(app.retry_mail(failed[0].id).await.unwrap());
    assert_eq!(app.send_one_mail("w").await.unwrap(), Some(MailOutcome::Failed));
}

async fn two_instances_sending_at_once_send_each_mail_once(store: Store) {
    let smtp = Smtp::start().await;
    let clock = TestClock::new();
    let instance = || {
        App::new(store.clone(), Arc::new(clock.clone()), Settings::default())
            .with_mail(mailer(smtp.port))
    };
    let (a, b) = (instance(), instance());
    let c = releasing_customer(&store, &a, "admin@acme.example").await;
    // More mails: another release, and the app removed.
    let now = a.now();
    store.start_release(c, &[pn(NUMBERS[2])], "moving", &by(), now).await.unwrap().unwrap();
    let account = ZoomAccountId::parse("acct-1").unwrap();
    store.unlink_zoom_account(&account, "removed in Zoom", &by(), now).await.unwrap().unwrap();
    let written = a.mails(None, 100).await.unwrap().len();
    assert_eq!(written, 4);
    let drain = |app: App, name: &'static str| async move {
        let mut sent = 0;
        while let Some(outcome) = app.send_one_mail(name).await.unwrap() {
            assert_eq!(outcome, MailOutcome::Sent);
            sent += 1;
        }
        sent
    };
    let (sent_a, sent_b) = tokio::join!(drain(a.clone(), "a"), drain(b, "b"));
    assert_eq!(sent_a + sent_b, written);
    assert_eq!(smtp.received().len(), written, "each mail reached the server once");
    assert!(a.mails(None, 100).await.unwrap().iter().all(|m| m.state == MailState::Sent));
}
