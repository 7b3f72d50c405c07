//! Releasing numbers when Zoom misbehaves or peerex dies (issue 6), with the simulator's faults on
//! SQLite and PostgreSQL: 5xx and a timeout during the DELETE, a partial failure, Zoom down for good,
//! workers killed mid-release, a job that ended without an answer. Every number ends released
//! (`aging`, gone from Zoom) or waiting for the customer again with a reason; none is lost or left
//! `releasing`.

mod release_support;

use app::release::Selection;
use domain::onboarding::{JobEnd, JobKind, JobState};
use domain::{Actor, CustomerId, NumberState, PhoneNumber};
use release_support::*;
use serde_json::json;
use std::time::Duration;
use testkit::{Db, ZoomApp};

on_both!(
    zoom_5xx_and_a_timeout_during_the_delete_are_retried_and_every_number_is_released,
    a_partial_failure_leaves_that_number_waiting_with_zooms_reason,
    zoom_down_for_good_puts_every_number_back_waiting_with_the_reason,
    workers_killed_mid_release_are_replaced_and_every_number_is_released_once,
    a_job_claimed_by_a_dead_worker_is_taken_again_when_its_lease_runs_out,
    a_release_job_that_ended_without_an_answer_is_converged_by_the_sweep,
    when_zoom_cannot_be_asked_the_tab_says_so_and_shows_the_last_known_answer,
    two_starts_or_two_approvals_at_once_change_each_number_once,
);

/// Starts the release of all the customer's numbers and approves it in the portal.
async fn release_all(t: &ZoomApp, c: CustomerId, portal: &reqwest::Client) -> Vec<String> {
    let numbers: Vec<String> = states(t, c).await.into_iter().map(|(n, _, _)| n).collect();
    let by = Actor::Operator("ops@carrier.example".into());
    t.app()
        .start_release(c, Selection::List(numbers.clone()), "end of contract", &by)
        .await
        .unwrap();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let (status, _) = release_numbers(t, portal, &refs).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    numbers
}

/// Every number of the release was released: aging, no customer, gone from Zoom, and its trail went
/// releasing → aging exactly once.
async fn all_released(t: &ZoomApp, numbers: &[String]) {
    for e164 in numbers {
        let n = number(t, e164).await;
        assert_eq!((n.state, n.customer_id), (NumberState::Aging, None), "{e164}");
        let aged = t
            .app()
            .number_detail(n.id)
            .await
            .unwrap()
            .1
            .into_iter()
            .filter(|e| e.to == NumberState::Aging)
            .count();
        assert_eq!(aged, 1, "{e164} released once");
    }
    let left = zoom_numbers(t).await;
    assert!(numbers.iter().all(|n| !left.contains(n)), "still in Zoom: {left:?}");
}

fn release_jobs(jobs: &[domain::onboarding::Job]) -> Vec<&domain::onboarding::Job> {
    jobs.iter().filter(|j| j.kind == JobKind::ReleaseNumbers).collect()
}

async fn zoom_5xx_and_a_timeout_during_the_delete_are_retried_and_every_number_is_released(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 4).await;
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 500, "count": 2 })).await;
    // Held past the client's 2 s patience, then the connection is closed unanswered.
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "timeout_ms": 2500, "count": 1 })).await;
    let numbers = release_all(&t, acme, &portal).await;

    // The first attempt fails: the numbers stay releasing and the page says the removal goes on.
    t.run_pending_jobs().await;
    assert!(states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing));
    let page = wait_page(&t, &portal).await;
    assert!(
        page.contains("Being removed from Zoom") && page.contains("hx-trigger=\"every 2s\""),
        "{page}"
    );

    settle(&t, acme, Duration::from_secs(40)).await;
    all_released(&t, &numbers).await;
    let jobs = t.app().jobs(None, 100).await.unwrap();
    let job = release_jobs(&jobs)[0];
    assert_eq!(job.state, JobState::Done);
    assert!(job.attempts >= 4, "two 5xx and a timeout, then success: {} attempts", job.attempts);
    let page = wait_page(&t, &portal).await;
    assert_eq!(page.matches("Released: removed from Zoom").count(), 4, "{page}");
}

async fn a_partial_failure_leaves_that_number_waiting_with_zooms_reason(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "fail_numbers": ["+15550100001"], "reason": "Internal error" })).await;
    let numbers = release_all(&t, acme, &portal).await;
    settle(&t, acme, Duration::from_secs(20)).await;

    let (state, reason) = state_of(&t, "+15550100001").await;
    assert_eq!(
        (state, reason.as_deref()),
        (NumberState::ReleasePending, Some("Zoom refused to remove it: Internal error"))
    );
    for n in ["+15550100000", "+15550100002"] {
        assert_eq!(state_of(&t, n).await.0, NumberState::Aging, "{n}");
    }
    let page = wait_page(&t, &portal).await;
    assert!(
        row(&page, "+15550100001")
            .contains("Not released: Zoom refused to remove it: Internal error"),
        "{page}"
    );

    // Released again once Zoom is well: converged.
    release_numbers(&t, &portal, &["+15550100001"]).await;
    settle(&t, acme, Duration::from_secs(20)).await;
    all_released(&t, &numbers).await;
}

async fn zoom_down_for_good_puts_every_number_back_waiting_with_the_reason(db: Db) {
    let t = ZoomApp::spawn_tuned(db, |z| z.retry.max_attempts = 3).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 503, "error_rate": 1.0 }))
        .await;
    let numbers = release_all(&t, acme, &portal).await;
    settle(&t, acme, Duration::from_secs(30)).await;

    for (e164, state, reason) in states(&t, acme).await {
        let reason = reason.unwrap_or_default();
        assert_eq!(state, NumberState::ReleasePending, "{e164}");
        assert!(
            reason.starts_with("Zoom could not remove it (Zoom answered 503")
                && reason.ends_with("release it again"),
            "{e164}: {reason}"
        );
    }
    assert_eq!(zoom_numbers(&t).await.len(), 3, "still in Zoom");
    let page = wait_page(&t, &portal).await;
    assert_eq!(page.matches("Not released: Zoom could not remove it").count(), 3, "{page}");

    // Zoom is back: the customer releases them again.
    reqwest::Client::new().delete(format!("{}/_sim/faults", t.zoom.url)).send().await.unwrap();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    release_numbers(&t, &portal, &refs).await;
    settle(&t, acme, Duration::from_secs(20)).await;
    all_released(&t, &numbers).await;
}

async fn workers_killed_mid_release_are_replaced_and_every_number_is_released_once(db: Db) {
    // A lease longer than the test may take: it runs out only because the clock is moved on.
    let t = ZoomApp::spawn_tuned(db, |z| z.lease = Duration::from_secs(60)).await;
    let (acme, portal) = acme_with_active_numbers(&t, 5).await;
    // Zoom takes its time: the workers die while their DELETE is in flight.
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "delay_ms": 800, "count": 1 })).await;
    let numbers = release_all(&t, acme, &portal).await;
    let workers = t.app().spawn_workers();
    // The delay is taken (the fault leaves the simulator's list) when the DELETE arrives: from then
    // on a worker is waiting on Zoom, and that is when it dies.
    let sim = reqwest::Client::new();
    let waited = std::time::Instant::now();
    loop {
        let listed: serde_json::Value = sim
            .get(format!("{}/_sim/faults", t.zoom.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed["faults"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(10), "no worker called Zoom: {listed}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let names = workers.names().to_vec();
    drop(workers);
    let jobs = t.app().jobs(None, 100).await.unwrap();
    let job = release_jobs(&jobs)[0];
    assert_eq!(job.state, JobState::Running, "killed while the call was in flight");
    assert!(
        job.lease_owner.as_ref().is_some_and(|w| names.contains(w)),
        "held by a killed worker: {:?} of {names:?}",
        job.lease_owner
    );
    assert!(
        states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing),
        "nothing recorded by the dead workers"
    );

    // The instance comes back: the dead worker's lease runs out and its job is taken again.
    let workers = t.app().spawn_workers();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing),
        "the dead worker's lease still holds"
    );
    t.clock().advance(time::Duration::seconds(61));
    let start = std::time::Instant::now();
    while states(&t, acme).await.iter().any(|(_, s, _)| *s == NumberState::Releasing) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still releasing: {:?}",
            states(&t, acme).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(workers);
    all_released(&t, &numbers).await;
}

async fn a_job_claimed_by_a_dead_worker_is_taken_again_when_its_lease_runs_out(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    let numbers = release_all(&t, acme, &portal).await;
    // A worker claims the release job and dies before calling Zoom.
    let now = t.app().now();
    let job = t
        .store()
        .claim_job("dead-worker", now + time::Duration::minutes(1), now)
        .await
        .unwrap()
        .expect("a due job");
    assert_eq!(job.kind, JobKind::ReleaseNumbers);
    assert!(t.run_pending_jobs().await.is_empty(), "the dead worker's lease still holds");
    assert!(states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing));
    // Its answer, had it come late, would not count.
    assert!(!t.store().finish_job(job.id, "someone-else", &JobEnd::Done, now).await.unwrap());

    t.clock().advance(time::Duration::seconds(59));
    assert!(t.run_pending_jobs().await.is_empty(), "a second before the lease runs out");
    t.clock().advance(time::Duration::seconds(1));
    let runs = t.run_pending_jobs().await;
    assert!(runs.iter().any(|r| r.job == job.id), "retaken: {runs:?}");
    all_released(&t, &numbers).await;
    assert!(
        !t.store().finish_job(job.id, "dead-worker", &JobEnd::Done, t.app().now()).await.unwrap(),
        "the dead worker lost its lease"
    );
}

async fn a_release_job_that_ended_without_an_answer_is_converged_by_the_sweep(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 2).await;
    release_all(&t, acme, &portal).await;
    // The job is failed with the numbers still releasing (as an operator-visible failure would leave them).
    let now = t.app().now();
    let job =
        t.store().claim_job("w", now + time::Duration::seconds(30), now).await.unwrap().unwrap();
    assert!(t
        .store()
        .finish_job(job.id, "w", &JobEnd::Failed { error: "boom".into() }, now)
        .await
        .unwrap());
    assert!(states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing));

    assert_eq!(t.app().release_tick().await.unwrap(), (0, 2));
    for (e164, state, reason) in states(&t, acme).await {
        assert_eq!(
            (state, reason.as_deref()),
            (
                NumberState::ReleasePending,
                Some("The removal from Zoom did not finish; release it again (boom)")
            ),
            "{e164}"
        );
    }
    assert_eq!(t.app().release_tick().await.unwrap(), (0, 0), "once");
    // An operator retrying the failed job later changes nothing: its numbers wait for the customer.
    t.app().retry_job(job.id, &domain::Actor::System("test".into())).await.unwrap();
    t.run_pending_jobs().await;
    assert!(states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::ReleasePending));
    assert_eq!(zoom_numbers(&t).await.len(), 2);
}

async fn when_zoom_cannot_be_asked_the_tab_says_so_and_shows_the_last_known_answer(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 2).await;
    assign_in_zoom(&t, "+15550100000").await;
    let by = Actor::Operator("ops@carrier.example".into());
    t.app()
        .start_release(
            acme,
            Selection::List(vec!["+15550100000".into(), "+15550100001".into()]),
            "contract ends",
            &by,
        )
        .await
        .unwrap();
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, "+15550100000").contains("Assigned to a user (seen"), "{page}");

    // Zoom answers 503 to the listing: the tab says so and shows what Zoom said last.
    fault(&t, json!({ "path": PEERING, "method": "GET", "status": 503, "count": 1 })).await;
    let page = wait_page(&t, &portal).await;
    assert!(
        page.contains("Zoom could not be reached just now")
            && page.contains("showing what Zoom said when last asked"),
        "{page}"
    );
    assert!(row(&page, "+15550100000").contains("Assigned to a user (last seen"), "{page}");
    assert!(row(&page, "+15550100001").contains("Unassigned (last seen"), "{page}");
    // The customer can still release: Zoom decides when asked.
    release_numbers(&t, &portal, &["+15550100001"]).await;
    settle(&t, acme, Duration::from_secs(20)).await;
    assert_eq!(state_of(&t, "+15550100001").await.0, NumberState::Aging);

    // Zoom well again: fresh.
    let page = wait_page(&t, &portal).await;
    assert!(
        page.contains("Checked with Zoom at")
            && row(&page, "+15550100000").contains("Assigned to a user (seen"),
        "{page}"
    );
}

async fn two_starts_or_two_approvals_at_once_change_each_number_once(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 4).await;
    let numbers: Vec<String> = states(&t, acme).await.into_iter().map(|(n, _, _)| n).collect();
    let by = Actor::Operator("ops@carrier.example".into());
    let (a, b) = tokio::join!(
        t.app().start_release(acme, Selection::List(numbers.clone()), "first", &by),
        t.app().start_release(acme, Selection::List(numbers.clone()), "second", &by)
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one start wins: {:?} / {:?}",
        a.as_ref().map(|r| r.id),
        b.as_ref().map(|r| r.id)
    );
    assert_eq!(t.app().releases(Some(acme), 10).await.unwrap().len(), 1);

    let parsed: Vec<PhoneNumber> = numbers.iter().map(|n| PhoneNumber::parse(n).unwrap()).collect();
    let ids: Vec<domain::NumberId> =
        t.store().numbers_in(&parsed).await.unwrap().into_iter().map(|n| n.id).collect();
    let admin = Actor::CustomerAdmin(ACME_ADMIN.into());
    let (a, b) = tokio::join!(
        t.app().approve_release(acme, &ids, &admin),
        t.app().approve_release(acme, &ids, &admin)
    );
    assert!(
        matches!(
            (&a, &b),
            (Ok(4), Err(app::AppError::NotFound)) | (Err(app::AppError::NotFound), Ok(4))
        ),
        "{a:?} / {b:?}"
    );
    let jobs = t.app().jobs(None, 100).await.unwrap();
    assert_eq!(release_jobs(&jobs).len(), 1, "one removal queued");
    settle(&t, acme, Duration::from_secs(20)).await;
    all_released(&t, &numbers).await;
}
