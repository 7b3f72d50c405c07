//! Releases the carrier starts without the customer's approval, on SQLite and PostgreSQL, with the
//! simulator's faults: a port-out waits (still routing) until its due date, then its numbers leave
//! Zoom through 429 and 5xx; a number assigned in Zoom blocks, is shown with what blocks it, and
//! leaves once unbound; two instances racing take each due number once; a contract end takes every
//! number and then ends the Zoom link; a number the customer marked Returned in Zoom is taken back.

mod release_support;

use domain::auth::Scope;
use domain::onboarding::{JobEnd, JobKind, JobState, LinkState};
use domain::release::{ReleaseKind, BLOCKED_ASSIGNED, RETURNED_REASON};
use domain::{Actor, CustomerId, NumberState};
use release_support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{Db, ZoomApp};

on_both!(
    a_port_out_routes_until_due_then_leaves_zoom_through_429_and_5xx_and_the_customer_sees_why,
    a_number_assigned_in_zoom_blocks_the_operator_sees_it_and_it_leaves_once_unbound,
    two_instances_racing_take_each_due_number_once_and_two_port_outs_get_one_winner,
    a_contract_end_takes_every_number_and_then_ends_the_zoom_link,
    a_number_returned_in_zoom_is_taken_back_through_the_release_path,
    bad_input_names_the_field,
    a_worker_dying_mid_removal_is_replaced_and_each_number_leaves_once,
    a_removal_that_ended_unanswered_keeps_the_number_out_of_routing_and_is_tried_again,
    a_port_out_asks_the_customer_nothing_by_mail,
);

const A: &str = "+15550100000";
const B: &str = "+15550100001";

fn tomorrow(t: &ZoomApp) -> time::Date {
    t.app().now().date().next_day().unwrap()
}

async fn api(t: &ZoomApp, path: &str, body: Value) -> (StatusCode, Value) {
    let token = t.app().create_token("test", Scope::Write, "test").await.unwrap().0;
    let r = reqwest::Client::new()
        .post(format!("{}{path}", t.platform.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn port_out(t: &ZoomApp, c: CustomerId, numbers: &[&str], due: time::Date) -> Value {
    let (status, body) = api(
        t,
        "/api/v1/port-outs",
        json!({ "customer_id": c.to_string(), "numbers": numbers, "gaining_carrier": "Other Telco", "due_date": due.to_string() }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Runs the release sweep and due jobs until no number is waiting for a retry, moving the clock on
/// to each retry; `within` bounds the real time taken.
async fn run_until_quiet(t: &ZoomApp, within: Duration) {
    let start = std::time::Instant::now();
    loop {
        t.app().release_tick().await.unwrap();
        t.run_pending_jobs().await;
        let pending = t
            .app()
            .jobs(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.kind == JobKind::ReleaseNumbers && !j.state.ended())
            .count();
        if pending == 0 {
            return;
        }
        assert!(start.elapsed() < within, "{pending} release jobs still pending");
        if t.skip_to_next_job(time::Duration::minutes(5)).await.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn reasons(t: &ZoomApp, e164: &str) -> Vec<(NumberState, String)> {
    let n = number(t, e164).await;
    t.app()
        .number_detail(n.id)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|e| (e.to, e.reason.unwrap_or_default()))
        .collect()
}

async fn a_port_out_routes_until_due_then_leaves_zoom_through_429_and_5xx_and_the_customer_sees_why(
    db: Db,
) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    let due = tomorrow(&t);
    let body = port_out(&t, acme, &[A, B], due).await;
    assert_eq!(
        (body["kind"].as_str(), body["gaining_carrier"].as_str(), body["waiting"].as_i64()),
        (Some("port_out"), Some("Other Telco"), Some(2)),
        "{body}"
    );
    let why = format!("Ported out to Other Telco on {due}");
    assert_eq!(body["reason"].as_str(), Some(why.as_str()));

    // Before the due date: still the customer's, still routing (release_pending), nothing sent to Zoom.
    run_until_quiet(&t, Duration::from_secs(10)).await;
    for n in [A, B] {
        assert_eq!(state_of(&t, n).await, (NumberState::ReleasePending, Some(why.clone())));
    }
    assert!(zoom_numbers(&t).await.contains(&A.to_owned()));
    // The customer sees why, and is asked nothing.
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains(&why), "{page}");
    assert!(row(&page, A).contains("No approval needed"), "{page}");
    assert!(tick_value(&page, A).is_none(), "a port-out cannot be ticked: {page}");
    // Nor can the customer approve it by id.
    let id = number(&t, A).await.id;
    let admin = Actor::CustomerAdmin(ACME_ADMIN.into());
    let approve = t.app().approve_release(acme, &[id], &admin).await;
    assert!(matches!(approve, Err(app::AppError::NotFound)), "{approve:?}");

    // Zoom is busy and then failing when the removal comes.
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 429, "count": 1 })).await;
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 503, "count": 2 })).await;
    t.clock().advance_to(due.midnight().assume_utc());
    t.app().release_tick().await.unwrap();
    for n in [A, B] {
        assert_eq!(
            state_of(&t, n).await.0,
            NumberState::Releasing,
            "stops routing on the due date"
        );
    }
    run_until_quiet(&t, Duration::from_secs(40)).await;
    for n in [A, B] {
        let num = number(&t, n).await;
        assert_eq!((num.state, num.customer_id), (NumberState::Aging, None), "{n}");
        let trail = reasons(&t, n).await;
        assert!(
            trail.contains(&(NumberState::ReleasePending, why.clone()))
                && trail.contains(&(NumberState::Releasing, format!("{why} (due)"))),
            "{n}: {trail:?}"
        );
        assert_eq!(trail.iter().filter(|(s, _)| *s == NumberState::Aging).count(), 1);
    }
    let left = zoom_numbers(&t).await;
    assert!(!left.contains(&A.to_owned()) && !left.contains(&B.to_owned()), "{left:?}");
    assert_eq!(state_of(&t, "+15550100002").await.0, NumberState::Active, "not ported");
    // The customer looks again after the due date (a new day: signed in again).
    let portal = portal_sign_in(&t).await;
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains(&why) && row(&page, A).contains("Released"), "{page}");
}

async fn a_number_assigned_in_zoom_blocks_the_operator_sees_it_and_it_leaves_once_unbound(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 2).await;
    assign_in_zoom(&t, A).await;
    // Due today: taken at once.
    let body = port_out(&t, acme, &[A, B], t.app().now().date()).await;
    let id = body["id"].as_str().unwrap().to_owned();
    run_until_quiet(&t, Duration::from_secs(20)).await;
    assert_eq!(state_of(&t, B).await.0, NumberState::Aging);
    // Zoom keeps A: it no longer routes (releasing), and its line says what blocks it.
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing);
    let (_, lines) = t.app().release(id.parse().unwrap()).await.unwrap();
    let a = lines.iter().find(|l| l.e164.as_str() == A).unwrap();
    assert_eq!((a.message.as_deref(), a.zoom_assigned), (Some(BLOCKED_ASSIGNED), Some(true)));
    assert!(reasons(&t, A).await.contains(&(NumberState::Releasing, BLOCKED_ASSIGNED.into())));
    // The sweep does not send it back to the customer or to routing.
    t.app().release_tick().await.unwrap();
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing);

    let op = operator(&t).await;
    let page = get_text(&op, format!("{}/operator/releases/{id}", t.platform.url)).await;
    assert!(
        page.contains(BLOCKED_ASSIGNED)
            && page.contains("assigned to a user")
            && page.contains("Try removing from Zoom again now"),
        "{page}"
    );
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains("No longer routes"), "{page}");

    // Withdrawing the port-out now leaves the blocked number in it: it does not route again.
    let (status, body) = api(&t, &format!("/api/v1/releases/{id}/withdraw"), json!({})).await;
    assert_eq!((status, body["withdrawn"].as_u64()), (StatusCode::OK, Some(0)), "{body}");
    assert_eq!(body["release"]["refused"].as_i64(), Some(1), "{body}");
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing);
    // Forced while still assigned: refused again, nothing lost.
    let (status, _) = api(&t, &format!("/api/v1/releases/{id}/force"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    run_until_quiet(&t, Duration::from_secs(20)).await;
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing);
    // Unbound in Zoom: the operator forces it, and it leaves.
    unbind_in_zoom(&t, A).await;
    let csrf = testkit::hidden_value(
        &get_text(&op, format!("{}/operator/releases/{id}", t.platform.url)).await,
        "csrf",
    )
    .unwrap();
    let r = op
        .post(format!("{}/operator/releases/{id}/force", t.platform.url))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    run_until_quiet(&t, Duration::from_secs(20)).await;
    assert_eq!(state_of(&t, A).await.0, NumberState::Aging);
    assert!(!zoom_numbers(&t).await.contains(&A.to_owned()));
}

async fn two_instances_racing_take_each_due_number_once_and_two_port_outs_get_one_winner(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 4).await;
    let numbers: Vec<String> = states(&t, acme).await.into_iter().map(|(n, _, _)| n).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();

    // Two requests for the same numbers at once: one wins, the other is a conflict naming them.
    let due = tomorrow(&t);
    let by = Actor::Operator("ops@carrier.example".into());
    let (a, b) = tokio::join!(
        t.app().start_port_out(acme, &numbers, "Other Telco", due, &by),
        t.app().start_port_out(acme, &numbers, "Third Telco", due, &by)
    );
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("one must win: {other:?}"),
    };
    assert_eq!(won.kind, ReleaseKind::PortOut);
    assert!(matches!(&lost, app::AppError::Conflict { field: "numbers", .. }), "{lost:?}");
    let (status, body) = api(
        &t,
        "/api/v1/port-outs",
        json!({ "customer_id": acme.to_string(), "numbers": refs, "gaining_carrier": "X", "due_date": due.to_string() }),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::CONFLICT, Some("numbers")), "{body}");

    // Two instances' sweeps at once on the due date: each number is taken, and sent to Zoom, once.
    t.clock().advance_to(due.midnight().assume_utc());
    let (x, y) = (t.app().clone(), t.app().clone());
    let (rx, ry) = tokio::join!(
        tokio::spawn(async move { x.release_tick().await }),
        tokio::spawn(async move { y.release_tick().await })
    );
    rx.unwrap().unwrap();
    ry.unwrap().unwrap();
    let jobs: Vec<_> = t
        .app()
        .jobs(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::ReleaseNumbers)
        .collect();
    assert_eq!(jobs.len(), 1, "one job for the four numbers: {jobs:?}");
    assert_eq!(jobs[0].payload.numbers.len(), 4);
    run_until_quiet(&t, Duration::from_secs(20)).await;
    for n in &numbers {
        let trail = reasons(&t, n).await;
        assert_eq!(trail.iter().filter(|(s, _)| *s == NumberState::Releasing).count(), 1, "{n}");
        assert_eq!(state_of(&t, n).await.0, NumberState::Aging, "{n}");
    }
}

async fn a_contract_end_takes_every_number_and_then_ends_the_zoom_link(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    let due = tomorrow(&t);
    let (status, body) = api(
        &t,
        &format!("/api/v1/customers/{acme}/contract-end"),
        json!({ "due_date": due.to_string() }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((body["kind"].as_str(), body["waiting"].as_i64()), (Some("contract_end"), Some(3)));
    let why = format!("Contract ended on {due}");
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains(&why), "{page}");
    run_until_quiet(&t, Duration::from_secs(10)).await;
    assert_eq!(t.app().zoom_link(acme).await.unwrap().unwrap().state, LinkState::Linked);

    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 500, "count": 1 })).await;
    t.clock().advance_to(due.midnight().assume_utc());
    run_until_quiet(&t, Duration::from_secs(30)).await;
    let left = states(&t, acme).await;
    assert!(left.is_empty(), "still the customer's: {left:?}");
    assert!(zoom_numbers(&t).await.is_empty());
    // Every number out: the next sweep ends the link.
    t.app().release_tick().await.unwrap();
    assert_eq!(t.app().zoom_link(acme).await.unwrap().unwrap().state, LinkState::Removed);
}

async fn a_number_returned_in_zoom_is_taken_back_through_the_release_path(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    let r = reqwest::Client::new()
        .put(format!("{}/_sim/numbers/{}/returned", t.zoom.url, A.replace('+', "%2B")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "mark Returned in Zoom: {}", r.status());
    // peerex learns it on its next poll of the account.
    assert!(t.store().poll_now(acme, t.app().now()).await.unwrap());
    run_until_quiet(&t, Duration::from_secs(20)).await;
    let n = number(&t, A).await;
    assert_eq!((n.state, n.customer_id), (NumberState::Aging, None));
    let trail = reasons(&t, A).await;
    assert!(trail.contains(&(NumberState::ReleasePending, RETURNED_REASON.into())), "{trail:?}");
    assert_eq!(state_of(&t, B).await.0, NumberState::Active, "not returned");
    let releases = t.app().releases(Some(acme), 10).await.unwrap();
    assert_eq!(releases[0].kind, ReleaseKind::Returned);
    assert!(!zoom_numbers(&t).await.contains(&A.to_owned()));
}

async fn bad_input_names_the_field(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 1).await;
    let c = acme.to_string();
    for (body, field, status) in [
        (
            json!({ "customer_id": c, "numbers": [A], "gaining_carrier": "X", "due_date": "31/12/2026" }),
            "due_date",
            422,
        ),
        (
            json!({ "customer_id": c, "numbers": [A], "gaining_carrier": " ", "due_date": "2026-12-31" }),
            "gaining_carrier",
            422,
        ),
        (
            json!({ "customer_id": c, "numbers": ["nope"], "gaining_carrier": "X", "due_date": "2026-12-31" }),
            "numbers",
            422,
        ),
        (
            json!({ "customer_id": c, "numbers": [], "gaining_carrier": "X", "due_date": "2026-12-31" }),
            "numbers",
            422,
        ),
        (
            json!({ "customer_id": CustomerId::new().to_string(), "numbers": [A], "gaining_carrier": "X", "due_date": "2026-12-31" }),
            "customer_id",
            422,
        ),
    ] {
        let (s, b) = api(&t, "/api/v1/port-outs", body.clone()).await;
        assert_eq!((s.as_u16(), b["field"].as_str()), (status, Some(field)), "{body}: {b}");
    }
    let (s, b) =
        api(&t, &format!("/api/v1/customers/{c}/contract-end"), json!({ "due_date": "soon" }))
            .await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (422, Some("due_date")), "{b}");
    // An approval release cannot be forced.
    let r = t
        .app()
        .start_release(
            acme,
            app::release::Selection::List(vec![A.into()]),
            "asked",
            &Actor::Operator("o@x".into()),
        )
        .await
        .unwrap();
    let (s, b) = api(&t, &format!("/api/v1/releases/{}/force", r.id), json!({})).await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (409, Some("kind")), "{b}");
}

/// The instance dies (its workers with it) while Zoom is answering the removal: once the dead
/// worker's lease runs out, the next instance's workers take the job again and every number leaves
/// once.
async fn a_worker_dying_mid_removal_is_replaced_and_each_number_leaves_once(db: Db) {
    let t = ZoomApp::spawn_tuned(db, |z| z.lease = Duration::from_secs(60)).await;
    let (acme, _) = acme_with_active_numbers(&t, 3).await;
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "delay_ms": 800, "count": 1 })).await;
    let numbers: Vec<String> = states(&t, acme).await.into_iter().map(|(n, _, _)| n).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    port_out(&t, acme, &refs, t.app().now().date()).await;
    let workers = t.app().spawn_workers();
    let waited = std::time::Instant::now();
    loop {
        let listed: Value = reqwest::get(format!("{}/_sim/faults", t.zoom.url))
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
    drop(workers);
    let jobs = t.app().jobs(None, 100).await.unwrap();
    assert!(jobs.iter().any(|j| j.kind == JobKind::ReleaseNumbers && j.state == JobState::Running));
    assert!(states(&t, acme).await.iter().all(|(_, s, _)| *s == NumberState::Releasing));

    let workers = t.app().spawn_workers();
    t.clock().advance(time::Duration::seconds(61));
    let start = std::time::Instant::now();
    while !states(&t, acme).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", states(&t, acme).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(workers);
    for n in &numbers {
        let trail = reasons(&t, n).await;
        assert_eq!(trail.iter().filter(|(s, _)| *s == NumberState::Aging).count(), 1, "{n}");
    }
    assert!(zoom_numbers(&t).await.is_empty());
}

async fn a_removal_that_ended_unanswered_keeps_the_number_out_of_routing_and_is_tried_again(
    db: Db,
) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    port_out(&t, acme, &[A, B], t.app().now().date()).await;
    // The removal job fails with the numbers still releasing.
    let now = t.app().now();
    let job =
        t.store().claim_job("w", now + time::Duration::seconds(30), now).await.unwrap().unwrap();
    assert_eq!(job.kind, JobKind::ReleaseNumbers);
    assert!(t
        .store()
        .finish_job(job.id, "w", &JobEnd::Failed { error: "boom".into() }, now)
        .await
        .unwrap());
    assert_eq!(t.app().release_tick().await.unwrap(), (0, 2));
    // Not back to routing: still releasing, the line saying why, tried again later.
    for n in [A, B] {
        assert_eq!(state_of(&t, n).await.0, NumberState::Releasing, "{n}");
    }
    let r = t.app().releases(Some(acme), 1).await.unwrap().remove(0);
    assert_eq!((r.refused, r.releasing), (2, 0));
    t.run_pending_jobs().await;
    assert_eq!(zoom_numbers(&t).await.len(), 2, "not before the retry interval");
    t.clock().advance(time::Duration::minutes(16));
    run_until_quiet(&t, Duration::from_secs(20)).await;
    for n in [A, B] {
        assert_eq!(state_of(&t, n).await.0, NumberState::Aging, "{n}");
    }
    assert!(zoom_numbers(&t).await.is_empty());
}

/// A port-out waits for its date, not for the customer: no "waiting for approval" mail, no reminder,
/// no deadline passed, however long it waits.
async fn a_port_out_asks_the_customer_nothing_by_mail(db: Db) {
    use domain::mail::{MailKind, ReminderSchedule};
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 2).await;
    let due = t.app().now().date() + time::Duration::days(10);
    port_out(&t, acme, &[A], due).await;
    t.clock().advance(time::Duration::days(8));
    let written =
        t.store().enqueue_release_reminders(&ReminderSchedule::default(), t.app().now()).await;
    assert_eq!(written.unwrap(), 0, "past every reminder and the approval deadline");
    let mails = t.store().list_mails(None, 100).await.unwrap();
    let asked: Vec<_> = mails
        .iter()
        .filter(|m| {
            matches!(
                m.kind,
                MailKind::ReleaseWaiting | MailKind::ReleaseReminder | MailKind::ReleaseDeadline
            )
        })
        .collect();
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(state_of(&t, A).await.0, NumberState::ReleasePending, "still waiting for its date");
}
