//! The mail outbox and the usage records on both databases: each change writes its mail once in its
//! own transaction, a sender's lease is exclusive, reminders are written once however often the scan
//! runs, and usage records agree with a count of the inventory and are made once per day.

use domain::customer::OrderPick;
use domain::mail::{MailEnd, MailKind, MailState, ReminderSchedule};
use domain::number::NumberAttrs;
use domain::onboarding::{JobKind, PushResult, StoredTokens};
use domain::release::Release;
use domain::{Actor, CustomerId, Number, NumberState, PhoneNumber, ZoomAccountId};
use store::Store;
use time::{Duration, OffsetDateTime};

testkit::store_tests_on_both!(
    each_change_writes_its_mail_once_and_a_senders_lease_is_exclusive,
    reminders_and_the_deadline_are_written_once_however_often_scanned,
    removing_the_app_writes_a_mail_naming_the_suspended_numbers,
    usage_totals_agree_with_a_count_and_two_takers_make_one_record,
);

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-11-23 10:00 UTC)
}

fn by() -> Actor {
    Actor::System("test".into())
}

const NUMBERS: [&str; 3] = ["+15550100000", "+15550100001", "+15550100002"];

fn pn(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164).unwrap()
}

fn account() -> ZoomAccountId {
    ZoomAccountId::parse("acct-1").unwrap()
}

/// A linked customer whose three numbers are active in Zoom, two of them in a release.
async fn releasing_customer(store: &Store) -> (CustomerId, Release) {
    let batch: Vec<_> = NUMBERS
        .iter()
        .chain(["+15550100003", "+15550100004"].iter())
        .map(|n| Number::imported(pn(n), NumberAttrs::default(), &by(), now()))
        .collect();
    store.insert_numbers(&batch, &|_| {}).await.unwrap();
    let c = testkit::insert_customer(store, "acme").await;
    let pick = OrderPick { count: 3, ..Default::default() };
    store.create_order(c, &pick, &[], false, &by(), now()).await.unwrap().unwrap();
    let tokens = StoredTokens {
        access_token: "k1:access".into(),
        refresh_token: "k1:refresh".into(),
        expires_at: now() + Duration::hours(1),
        generation: 0,
    };
    store
        .link_zoom_account(c, &account(), "u", &tokens, "Carrier", &by(), now())
        .await
        .unwrap()
        .unwrap();
    let push = store
        .claim_job("w", now() + Duration::minutes(1), now())
        .await
        .unwrap()
        .filter(|j| j.kind == JobKind::PushNumbers)
        .expect("the push job");
    let accepted: Vec<_> = NUMBERS.iter().map(|n| (pn(n), PushResult::Accepted)).collect();
    assert!(store.complete_push(push.id, "w", &accepted, &by(), now()).await.unwrap());
    let numbers: Vec<_> = NUMBERS[..2].iter().map(|n| pn(n)).collect();
    let release =
        store.start_release(c, &numbers, "contract ends", &by(), now()).await.unwrap().unwrap();
    (c, release)
}

async fn each_change_writes_its_mail_once_and_a_senders_lease_is_exclusive(store: Store) {
    let (c, release) = releasing_customer(&store).await;
    let mails = store.list_mails(None, 10).await.unwrap();
    let mut kinds: Vec<_> = mails.iter().map(|m| (m.kind, m.key.clone())).collect();
    kinds.sort_by_key(|(_, k)| k.clone());
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    let waiting = mails.iter().find(|m| m.kind == MailKind::ReleaseWaiting).unwrap();
    assert_eq!(waiting.key, format!("release:{}:waiting", release.id));
    assert_eq!(waiting.customer_id, c);
    assert_eq!(waiting.facts.numbers, NUMBERS[..2].to_vec());
    assert_eq!(waiting.facts.reason.as_deref(), Some("contract ends"));
    let applied = mails.iter().find(|m| m.kind == MailKind::OrderApplied).unwrap();
    assert_eq!(applied.facts.numbers, NUMBERS.to_vec());

    // Two senders each get one mail; a third finds none.
    let lease = now() + Duration::minutes(2);
    let a = store.claim_mail("a", lease, now()).await.unwrap().expect("one for a");
    let b = store.claim_mail("b", lease, now()).await.unwrap().expect("one for b");
    assert_ne!(a.id, b.id);
    assert!(store.claim_mail("c", lease, now()).await.unwrap().is_none());
    // Only the lease holder records the outcome.
    let sent = MailEnd::Sent { recipients: "x@example.com".into() };
    assert!(!store.finish_mail(a.id, "b", &sent, now()).await.unwrap());
    // a dies mid-send: its lease runs out and c takes the mail; a's late answer changes nothing.
    let later = lease + Duration::seconds(1);
    let again = store.claim_mail("c", later + Duration::minutes(2), later).await.unwrap().unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(again.attempts, 2);
    assert!(!store.finish_mail(a.id, "a", &sent, later).await.unwrap());
    assert!(store.finish_mail(a.id, "c", &sent, later).await.unwrap());
    // b's mail is refused for good: failed, listed for operators, and retried only by hand.
    let refused = MailEnd::Failed { error: "550 no such user".into() };
    assert!(store.finish_mail(b.id, "b", &refused, now()).await.unwrap());
    let failed = store.list_mails(Some(MailState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such user"));
    assert!(store.claim_mail("d", later + Duration::minutes(9), later).await.unwrap().is_none());
    assert!(store.retry_mail(b.id, later).await.unwrap());
    assert_eq!(store.claim_mail("d", later, later).await.unwrap().unwrap().id, b.id);
    // A transient fault waits for its time.
    let at = later + Duration::minutes(5);
    let retry = MailEnd::Retry { at, error: "451 try later".into() };
    assert!(store.finish_mail(b.id, "d", &retry, later).await.unwrap());
    assert!(store.claim_mail("e", at, at - Duration::seconds(1)).await.unwrap().is_none());
    assert_eq!(
        store.claim_mail("e", at + Duration::minutes(1), at).await.unwrap().unwrap().id,
        b.id
    );
    // A clean stop hands it back without counting the attempt.
    assert_eq!(store.hand_back_mail("e", at).await.unwrap(), 1);
    let back = store.claim_mail("f", at + Duration::minutes(1), at).await.unwrap().unwrap();
    assert_eq!((back.id, back.attempts), (b.id, 2));
}

async fn reminders_and_the_deadline_are_written_once_however_often_scanned(store: Store) {
    let (_, release) = releasing_customer(&store).await;
    let schedule = ReminderSchedule {
        reminders: vec![Duration::hours(24), Duration::hours(72)],
        deadline: Duration::days(7),
    };
    assert_eq!(
        store.enqueue_release_reminders(&schedule, now() + Duration::hours(1)).await.unwrap(),
        0
    );
    let day = now() + Duration::hours(25);
    let (first, second) = tokio::join!(
        store.enqueue_release_reminders(&schedule, day),
        store.enqueue_release_reminders(&schedule, day)
    );
    assert_eq!(first.unwrap() + second.unwrap(), 1, "two scans at once write one reminder");
    assert_eq!(store.enqueue_release_reminders(&schedule, day).await.unwrap(), 0);
    assert_eq!(
        store.enqueue_release_reminders(&schedule, now() + Duration::hours(73)).await.unwrap(),
        1
    );
    let late = now() + Duration::days(8);
    assert_eq!(store.enqueue_release_reminders(&schedule, late).await.unwrap(), 1);
    assert_eq!(store.enqueue_release_reminders(&schedule, late).await.unwrap(), 0);
    let keys: Vec<String> = store
        .list_mails(None, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.facts.release_id == Some(release.id))
        .map(|m| m.key)
        .collect();
    for want in ["waiting", "reminder:1", "reminder:2", "deadline"] {
        assert!(keys.contains(&format!("release:{}:{want}", release.id)), "{want}: {keys:?}");
    }
    // Once approved, nothing more is due.
    let withdrawn = store.withdraw_release(release.id, &by(), late).await.unwrap();
    assert_eq!(withdrawn, Some(2));
    let schedule = ReminderSchedule { reminders: vec![Duration::days(9)], ..schedule };
    assert_eq!(
        store.enqueue_release_reminders(&schedule, now() + Duration::days(10)).await.unwrap(),
        0
    );
}

async fn removing_the_app_writes_a_mail_naming_the_suspended_numbers(store: Store) {
    let (c, _) = releasing_customer(&store).await;
    let later = now() + Duration::minutes(1);
    let removed =
        store.unlink_zoom_account(&account(), "removed in Zoom", &by(), later).await.unwrap();
    assert_eq!(removed.map(|(_, n)| n), Some(3));
    // The same removal heard again writes nothing.
    assert!(store.unlink_zoom_account(&account(), "again", &by(), later).await.unwrap().is_none());
    let mails = store.list_mails(None, 10).await.unwrap();
    let removal: Vec<_> = mails.iter().filter(|m| m.kind == MailKind::AppRemoved).collect();
    assert_eq!(removal.len(), 1);
    assert_eq!(removal[0].customer_id, c);
    assert_eq!(removal[0].facts.numbers, NUMBERS.to_vec());
}

async fn usage_totals_agree_with_a_count_and_two_takers_make_one_record(store: Store) {
    let (c, _) = releasing_customer(&store).await;
    let other = testkit::insert_customer(&store, "other").await;
    assert!(store.set_billing_ref(c, Some("BILL-7")).await.unwrap());
    // Another order waits (reserved) beside the numbers in Zoom.
    let pick = OrderPick { count: 1, ..Default::default() };
    store.create_order(other, &pick, &[], false, &by(), now()).await.unwrap().unwrap();
    let start = time::macros::datetime!(2026-11-23 0:00 UTC);
    let end = start + Duration::days(1);
    let (a, b) = tokio::join!(
        store.take_usage("2026-11-23", start, end, now()),
        store.take_usage("2026-11-23", start, end, now())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 2, "one record per customer, however many takers");
    assert_eq!(store.take_usage("2026-11-23", start, end, now()).await.unwrap(), 0);

    let records = store.usage_records("2026-11-01", "2026-11-30", None).await.unwrap();
    assert_eq!(records.len(), 2);
    let mine = store.usage_records("2026-11-23", "2026-11-23", Some(c)).await.unwrap();
    assert_eq!(mine.len(), 1);
    let r = &mine[0];
    assert_eq!(r.billing_ref.as_deref(), Some("BILL-7"));
    // Against a count of the inventory.
    let s = &store;
    let count = |state| async move {
        s.count_by_state()
            .await
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| n)
    };
    assert_eq!(r.active, 1);
    assert_eq!(r.release_pending, 2);
    assert_eq!(r.release_pending, count(NumberState::ReleasePending).await);
    assert_eq!(r.active, count(NumberState::Active).await);
    assert_eq!(r.held(), i64::from(store.numbers_held(c).await.unwrap()));
    let theirs = records.iter().find(|r| r.customer_id == other).unwrap();
    assert_eq!(theirs.reserved, count(NumberState::Reserved).await);
    assert_eq!(theirs.held(), i64::from(store.numbers_held(other).await.unwrap()));
    assert!(store.usage_records("2026-11-24", "2026-11-30", None).await.unwrap().is_empty());
}
