//! The release sweeps on both databases: lines whose number left the release another way are
//! closed, and numbers left `releasing` by a job that ended without an answer wait for the customer
//! again.

use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::onboarding::{JobEnd, JobKind, PushResult, StoredTokens};
use domain::release::{LineState, Release};
use domain::{Actor, CustomerId, Number, NumberState, PhoneNumber, ZoomAccountId};
use store::Store;
use time::{Duration, OffsetDateTime};

testkit::store_tests_on_both!(
    a_waiting_line_whose_number_moved_another_way_is_closed_once,
    numbers_of_a_release_job_that_ended_unanswered_wait_for_the_customer_again,
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

/// A linked customer whose three numbers are active in Zoom, and a release of all of them.
async fn releasing_customer(store: &Store) -> (CustomerId, Release) {
    let batch: Vec<_> = NUMBERS
        .iter()
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
    let account = ZoomAccountId::parse("acct-1").unwrap();
    store
        .link_zoom_account(c, &account, "u", &tokens, "Carrier", &by(), now())
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
    let numbers: Vec<_> = NUMBERS.iter().map(|n| pn(n)).collect();
    let release =
        store.start_release(c, &numbers, "contract ends", &by(), now()).await.unwrap().unwrap();
    (c, release)
}

async fn lines(store: &Store, release: &Release) -> Vec<(String, LineState, Option<String>)> {
    let lines = store.release_lines(release.id).await.unwrap();
    lines.into_iter().map(|l| (l.e164.to_string(), l.state, l.message)).collect()
}

async fn a_waiting_line_whose_number_moved_another_way_is_closed_once(store: Store) {
    let (c, release) = releasing_customer(&store).await;
    assert_eq!(store.close_stale_release_lines(now()).await.unwrap(), 0, "all still waiting");
    // One number moved out of the release another way; one is on hold (the app was removed).
    assert!(store.force_number_state(&pn(NUMBERS[0]), NumberState::Active, Some(c)).await.unwrap());
    assert!(store
        .force_number_state(&pn(NUMBERS[1]), NumberState::Suspended, Some(c))
        .await
        .unwrap());
    assert_eq!(store.close_stale_release_lines(now()).await.unwrap(), 1);
    assert_eq!(store.close_stale_release_lines(now()).await.unwrap(), 0, "closed once");
    assert_eq!(
        lines(&store, &release).await,
        [
            (
                NUMBERS[0].to_owned(),
                LineState::Withdrawn,
                Some("left the release: the number is active".to_owned())
            ),
            (NUMBERS[1].to_owned(), LineState::Waiting, None),
            (NUMBERS[2].to_owned(), LineState::Waiting, None),
        ]
    );
}

async fn numbers_of_a_release_job_that_ended_unanswered_wait_for_the_customer_again(store: Store) {
    let (c, release) = releasing_customer(&store).await;
    let waiting = store.release_lines(release.id).await.unwrap();
    let ids: Vec<_> = waiting.iter().take(2).map(|l| l.number_id).collect();
    assert_eq!(store.approve_release(c, &ids, &by(), now()).await.unwrap(), Ok(2));
    let job = store
        .claim_job("w", now() + Duration::minutes(1), now())
        .await
        .unwrap()
        .filter(|j| j.kind == JobKind::ReleaseNumbers)
        .expect("the release job");
    let unfinished = "Zoom did not answer; release it again";
    assert_eq!(
        store.converge_stuck_releases(unfinished, &by(), now()).await.unwrap(),
        0,
        "its job is still running"
    );
    let failed = JobEnd::Failed { error: "503 from Zoom".into() };
    assert!(store.finish_job(job.id, "w", &failed, now()).await.unwrap());
    assert_eq!(store.converge_stuck_releases(unfinished, &by(), now()).await.unwrap(), 2);
    assert_eq!(store.converge_stuck_releases(unfinished, &by(), now()).await.unwrap(), 0, "once");
    let why = format!("{unfinished} (503 from Zoom)");
    assert_eq!(
        lines(&store, &release).await,
        [
            (NUMBERS[0].to_owned(), LineState::Refused, Some(why.clone())),
            (NUMBERS[1].to_owned(), LineState::Refused, Some(why.clone())),
            (NUMBERS[2].to_owned(), LineState::Waiting, None),
        ]
    );
    for n in &NUMBERS[..2] {
        let n = store.get_number_by_e164(&pn(n)).await.unwrap().unwrap();
        assert_eq!(
            (n.state, n.reason.as_deref()),
            (NumberState::ReleasePending, Some(why.as_str()))
        );
    }
    // Refused lines can be approved again.
    assert_eq!(store.approve_release(c, &ids, &by(), now()).await.unwrap(), Ok(2));
}
