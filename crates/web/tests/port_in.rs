//! Port-in end to end on SQLite and PostgreSQL, against the Zoom simulator: the numbers are pushed to
//! the customer's Zoom account inactive (pending there) and answer `404 not_provisioned` at the
//! lookup; completed (by an operator, or by the port date) they are activated in Zoom and route. Zoom
//! failing (429, 5xx) during the push and the activation, a worker dying mid-job, two completes at
//! once, a cancel and a moved date all converge.

mod release_support;

use app::AppError;
use domain::onboarding::JobKind;
use domain::port_in::PortInState;
use domain::{Actor, CustomerId, NumberState};
use release_support::*;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{Db, ZoomApp};

on_both!(
    a_port_in_is_pending_in_zoom_then_routes_once_completed_and_of_two_completes_one_wins,
    zoom_429_and_5xx_during_the_push_and_the_activation_are_retried_and_converge,
    a_worker_dying_mid_push_is_replaced_when_its_lease_runs_out,
    the_port_date_activates_it_and_a_moved_date_waits,
    a_cancelled_port_in_leaves_zoom_and_the_customer,
    a_cancel_while_the_push_is_at_zoom_removes_what_the_push_added,
    bad_requests_name_the_field_and_numbers_of_another_customer_are_a_conflict,
    the_api_records_lists_completes_reschedules_and_cancels_naming_bad_fields,
);

const PORTED: [&str; 2] = ["+15550109000", "+15550109001"];
/// In the inventory, available: ported in too.
const STOCKED: &str = "+15550100040";

fn ops() -> Actor {
    Actor::Operator("ops@carrier.example".into())
}

fn in_days(t: &ZoomApp, days: i64) -> String {
    (t.app().now().date() + time::Duration::days(days)).to_string()
}

/// Acme linked to Zoom with one active number, and a port-in of [`PORTED`] and [`STOCKED`].
async fn acme_porting_in(t: &ZoomApp, days: i64) -> (CustomerId, uuid::Uuid) {
    let (acme, _) = acme_with_active_numbers(t, 1).await;
    let mut numbers: Vec<String> = PORTED.iter().map(|s| (*s).to_owned()).collect();
    numbers.push(STOCKED.into());
    let p = t
        .app()
        .create_port_in(acme, &numbers, "Old Tel", &in_days(t, days), &ops())
        .await
        .expect("port-in recorded");
    assert_eq!(p.state, PortInState::Requested);
    assert_eq!(p.numbers.len(), 3);
    assert!(p.numbers.iter().all(|n| n.state == NumberState::Porting), "{:?}", p.numbers);
    (acme, p.id)
}

/// What Zoom holds of `e164` for Acme: `Some(active)`, or `None` when it does not have it.
async fn zoom_status(t: &ZoomApp, e164: &str) -> Option<bool> {
    let v: Value = reqwest::get(format!(
        "{}/_sim/numbers?account_id={}",
        t.zoom.url,
        testkit::sim::demo::ACME_ACCOUNT_ID
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["phone_number"] == e164)
        .map(|n| n["status"].as_bool().expect("status"))
}

async fn port_in_state(t: &ZoomApp, id: uuid::Uuid) -> PortInState {
    t.app().port_in(id).await.unwrap().state
}

/// Runs due jobs until none is left within `beyond` of the clock, moving the clock on to each retry.
async fn settle(t: &ZoomApp, within: Duration) {
    let start = std::time::Instant::now();
    loop {
        t.run_pending_jobs().await;
        if t.skip_to_next_job(time::Duration::minutes(1)).await.is_none() {
            let jobs = t.app().jobs(None, 1000).await.unwrap();
            if !jobs.iter().any(|j| j.state == domain::onboarding::JobState::Running) {
                return;
            }
        }
        assert!(start.elapsed() < within, "jobs still running after {within:?}");
    }
}

fn all_ported() -> Vec<&'static str> {
    let mut all = PORTED.to_vec();
    all.push(STOCKED);
    all
}

async fn a_port_in_is_pending_in_zoom_then_routes_once_completed_and_of_two_completes_one_wins(
    db: Db,
) {
    let t = ZoomApp::spawn(db).await;
    let (_, id) = acme_porting_in(&t, 5).await;
    let routing = routing::start(
        t.app().routing_source(),
        &routing::RoutingConfig { http_listen: "127.0.0.1:0".into(), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(routing::wait_ready(&routing.routing, Duration::from_secs(10)).await);
    let lookup = |e164: &'static str| {
        let addr = routing.http.unwrap();
        async move {
            let v: Value =
                reqwest::get(format!("http://{addr}/route?to={}", e164.replace('+', "%2B")))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            (v["status"].as_u64().unwrap(), v["reason"].as_str().unwrap_or_default().to_owned())
        }
    };

    // Completing before Zoom holds the numbers is refused: there is nothing to activate yet.
    let early = t.app().complete_port_in(id, &ops()).await.unwrap_err();
    assert!(
        matches!(&early, AppError::Conflict { field: "state", message } if message.contains("requested")),
        "{early:?}"
    );

    t.run_pending_jobs().await;
    assert_eq!(port_in_state(&t, id).await, PortInState::PushedInactive);
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, Some(false), "{n} is in Zoom, inactive (pending)");
        assert_eq!(state_of(&t, n).await.0, NumberState::Porting, "{n}");
        assert_eq!(lookup(n).await, (404, "not_provisioned".to_owned()), "{n} does not route yet");
    }

    // Two operators (or instances) complete it at once: one wins, the other is told it moved.
    let by = ops();
    let (a, b) = tokio::join!(t.app().complete_port_in(id, &by), t.app().complete_port_in(id, &by));
    assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} / {b:?}");
    let lost = a.err().or(b.err()).unwrap();
    assert!(
        matches!(&lost, AppError::Conflict { field: "state", message } if message.contains("activating")),
        "{lost:?}"
    );
    let activations = t
        .app()
        .jobs(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| {
            j.payload.port_in.is_some_and(|p| p.step == domain::port_in::PortInStep::Activate)
        })
        .count();
    assert_eq!(activations, 1, "one activation job");

    t.run_pending_jobs().await;
    let p = t.app().port_in(id).await.unwrap();
    assert_eq!(p.state, PortInState::Active);
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, Some(true), "{n} is active in Zoom");
        let (state, _) = state_of(&t, n).await;
        assert_eq!(state, NumberState::Active, "{n}");
        let start = std::time::Instant::now();
        while lookup(n).await.0 != 302 {
            assert!(start.elapsed() < Duration::from_secs(10), "{n} still not routed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The audit trail: porting → active once.
        let trail = t.app().number_detail(number(&t, n).await.id).await.unwrap().1;
        assert_eq!(trail.iter().filter(|e| e.to == NumberState::Active).count(), 1, "{n}");
    }
    let history: Vec<_> = p.events.iter().map(|e| e.to).collect();
    assert_eq!(
        history,
        [
            PortInState::Requested,
            PortInState::PushedInactive,
            PortInState::Activating,
            PortInState::Active
        ]
    );
    // Each step was told to the carrier's systems (a webhook event written with it).
    let mut told: Vec<String> = t
        .app()
        .outbound_events(1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event_type == domain::webhook::EventType::PortInChanged
                && e.data["port_in_id"] == id.to_string()
        })
        .map(|e| e.data["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    told.sort();
    assert_eq!(told, ["activating", "active", "pushed_inactive", "requested"]);
    // The day's usage record counts the numbers ported in.
    let (day, made) = t.app().take_usage(None).await.unwrap();
    assert_eq!(made, 1, "one customer, one record");
    let records = t.app().usage(Some(&day), Some(&day), None).await.unwrap();
    assert_eq!(records[0].port_ins, all_ported().len() as i64, "{records:?}");
}

async fn zoom_429_and_5xx_during_the_push_and_the_activation_are_retried_and_converge(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (_, id) = acme_porting_in(&t, 5).await;
    fault(&t, json!({ "path": PEERING, "method": "POST", "status": 429, "count": 1 })).await;
    fault(&t, json!({ "path": PEERING, "method": "POST", "status": 503, "count": 2 })).await;
    t.run_pending_jobs().await;
    assert_eq!(port_in_state(&t, id).await, PortInState::Requested, "Zoom refused the first try");
    settle(&t, Duration::from_secs(40)).await;
    assert_eq!(port_in_state(&t, id).await, PortInState::PushedInactive);
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, Some(false), "{n}");
    }

    fault(&t, json!({ "path": PEERING, "method": "PATCH", "status": 500, "count": 2 })).await;
    fault(&t, json!({ "path": PEERING, "method": "PATCH", "status": 429, "count": 1 })).await;
    t.app().complete_port_in(id, &ops()).await.unwrap();
    t.run_pending_jobs().await;
    assert_eq!(port_in_state(&t, id).await, PortInState::Activating);
    for n in all_ported() {
        assert_eq!(state_of(&t, n).await.0, NumberState::Porting, "{n} waits for Zoom");
    }
    settle(&t, Duration::from_secs(40)).await;
    assert_eq!(port_in_state(&t, id).await, PortInState::Active);
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, Some(true), "{n}");
        assert_eq!(state_of(&t, n).await.0, NumberState::Active, "{n}");
    }
    let jobs = t.app().jobs(None, 100).await.unwrap();
    assert!(jobs
        .iter()
        .filter(|j| j.payload.port_in.is_some())
        .all(|j| j.state == domain::onboarding::JobState::Done));
}

async fn a_worker_dying_mid_push_is_replaced_when_its_lease_runs_out(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (_, id) = acme_porting_in(&t, 5).await;
    let now = t.app().now();
    let job = t
        .store()
        .claim_job("dead-worker", now + time::Duration::minutes(1), now)
        .await
        .unwrap()
        .expect("the push job");
    assert_eq!((job.kind, job.payload.port_in.map(|p| p.id)), (JobKind::PushNumbers, Some(id)));
    assert!(t.run_pending_jobs().await.is_empty(), "the dead worker's lease still holds");
    t.clock().advance(time::Duration::minutes(1));
    let runs = t.run_pending_jobs().await;
    assert!(runs.iter().any(|r| r.job == job.id), "retaken: {runs:?}");
    assert_eq!(port_in_state(&t, id).await, PortInState::PushedInactive);
    // Pushed again after the dead worker's numbers were already in Zoom: converges too.
    t.app().complete_port_in(id, &ops()).await.unwrap();
    t.run_pending_jobs().await;
    assert_eq!(port_in_state(&t, id).await, PortInState::Active);
}

async fn the_port_date_activates_it_and_a_moved_date_waits(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (_, id) = acme_porting_in(&t, 2).await;
    t.run_pending_jobs().await;
    assert_eq!(t.app().port_in_tick().await.unwrap(), (0, 0), "not yet the date");

    let past = t.app().reschedule_port_in(id, "2020-01-01", &ops()).await.unwrap_err();
    assert!(matches!(past, AppError::Invalid { field: "requested_date", .. }), "{past:?}");
    let moved = t.app().reschedule_port_in(id, &in_days(&t, 4), &ops()).await.unwrap();
    assert_eq!(moved.requested_date.to_string(), in_days(&t, 4));
    assert!(moved.events.last().unwrap().note.as_deref().unwrap().starts_with("moved from"));

    t.clock().advance(time::Duration::days(3));
    assert_eq!(t.app().port_in_tick().await.unwrap().0, 0, "the old date does not activate it");
    assert_eq!(port_in_state(&t, id).await, PortInState::PushedInactive);
    t.clock().advance(time::Duration::days(1));
    assert_eq!(t.app().port_in_tick().await.unwrap().0, 1, "the new date does");
    t.run_pending_jobs().await;
    assert_eq!(port_in_state(&t, id).await, PortInState::Active);
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, Some(true), "{n}");
    }
    let done = t.app().reschedule_port_in(id, &in_days(&t, 9), &ops()).await.unwrap_err();
    assert!(matches!(done, AppError::Conflict { field: "state", .. }), "{done:?}");
}

async fn a_cancelled_port_in_leaves_zoom_and_the_customer(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, id) = acme_porting_in(&t, 5).await;
    t.run_pending_jobs().await;
    assert_eq!(zoom_status(&t, PORTED[0]).await, Some(false));
    fault(&t, json!({ "path": PEERING, "method": "DELETE", "status": 502, "count": 1 })).await;
    let p = t.app().cancel_port_in(id, &ops()).await.unwrap();
    assert_eq!(p.state, PortInState::Cancelled);
    settle(&t, Duration::from_secs(40)).await;
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, None, "{n} removed from Zoom");
        let n = number(&t, n).await;
        assert_eq!((n.state, n.customer_id), (NumberState::Available, None));
    }
    assert!(states(&t, acme).await.iter().all(|(n, _, _)| !all_ported().contains(&n.as_str())));
    let again = t.app().complete_port_in(id, &ops()).await.unwrap_err();
    assert!(matches!(again, AppError::Conflict { .. }), "{again:?}");
    // Nothing more for the scan to do.
    assert_eq!(t.app().port_in_tick().await.unwrap(), (0, 0));
}

async fn a_cancel_while_the_push_is_at_zoom_removes_what_the_push_added(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (_, id) = acme_porting_in(&t, 5).await;
    // Zoom holds the push's request for 2 s, then serves it.
    fault(&t, json!({ "path": PEERING, "method": "POST", "delay_ms": 2000, "count": 1 })).await;
    let push = t.run_pending_jobs();
    let cancel = async {
        // The fault is spent when the request reaches Zoom: from then on the push is at Zoom.
        let faults = format!("{}/_sim/faults", t.zoom.url);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v: Value = reqwest::get(&faults).await.unwrap().json().await.unwrap();
            if v["faults"].as_array().is_some_and(|f| f.is_empty()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the push never reached Zoom: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let p = t.app().cancel_port_in(id, &ops()).await.unwrap();
        assert_eq!(p.state, PortInState::Cancelled);
        // Another worker runs what is due meanwhile: a removal queued now would reach Zoom before
        // the held push lands, and the push would leave the numbers in Zoom.
        t.run_pending_jobs().await;
    };
    tokio::join!(push, cancel);
    settle(&t, Duration::from_secs(40)).await;
    for n in all_ported() {
        assert_eq!(zoom_status(&t, n).await, None, "{n} removed from Zoom");
        let n = number(&t, n).await;
        assert_eq!((n.state, n.customer_id), (NumberState::Available, None), "{}", n.e164);
    }
    assert_eq!(t.app().port_in_tick().await.unwrap(), (0, 0));
}

async fn bad_requests_name_the_field_and_numbers_of_another_customer_are_a_conflict(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 1).await;
    let app = t.app();
    let globex = app.create_customer("Globex", "GLOBEX-1").await.unwrap().id;
    let date = in_days(&t, 3);
    let invalid = |r: Result<domain::port_in::PortIn, AppError>| match r.unwrap_err() {
        AppError::Invalid { field, message } => (field, message),
        other => panic!("{other:?}"),
    };
    let rows = vec!["+15550109000".to_owned(), "555-0100".to_owned()];
    let (field, message) = invalid(app.create_port_in(acme, &rows, "Old Tel", &date, &ops()).await);
    assert_eq!(field, "numbers");
    assert!(message.starts_with("numbers[1]") && message.contains("555-0100"), "{message}");
    let one = vec!["+15550109000".to_owned()];
    assert_eq!(
        invalid(app.create_port_in(acme, &one, "Old Tel", "2020-01-01", &ops()).await).0,
        "requested_date"
    );
    assert_eq!(
        invalid(app.create_port_in(acme, &one, " ", &date, &ops()).await).0,
        "losing_carrier"
    );
    assert_eq!(
        invalid(app.create_port_in(CustomerId::new(), &one, "Old Tel", &date, &ops()).await).0,
        "customer_id"
    );
    // Acme's active number cannot be ported in for Globex: a conflict naming it; nothing saved.
    let theirs = vec!["+15550109000".to_owned(), "+15550100000".to_owned()];
    match app.create_port_in(globex, &theirs, "Old Tel", &date, &ops()).await.unwrap_err() {
        AppError::Conflict { field: "numbers", message } => {
            assert!(
                message.contains("+15550100000") && message.contains("another customer"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        t.store()
            .get_number_by_e164(&domain::PhoneNumber::parse("+15550109000").unwrap())
            .await
            .unwrap()
            .is_none(),
        "all or nothing"
    );
    assert!(app.port_ins(None).await.unwrap().is_empty());

    // Ported numbers count against the customer's number limit, as ordered ones do.
    app.set_number_limit(acme, Some(2)).await.unwrap();
    let two = vec!["+15550109000".to_owned(), "+15550109001".to_owned()];
    match app.create_port_in(acme, &two, "Old Tel", &date, &ops()).await.unwrap_err() {
        AppError::Conflict { field: "numbers", message } => {
            assert!(message.starts_with("number limit"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    app.set_number_limit(acme, None).await.unwrap();
    // A customer whose contract ended gets no new numbers.
    app.set_contract_state(globex, domain::customer::ContractState::Ended).await.unwrap();
    assert_eq!(
        invalid(app.create_port_in(globex, &one, "Old Tel", &date, &ops()).await).0,
        "customer_id"
    );
}

async fn call(
    t: &ZoomApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", t.platform.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn the_api_records_lists_completes_reschedules_and_cancels_naming_bad_fields(db: Db) {
    use reqwest::{Method, StatusCode};
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 1).await;
    let (token, _) = t.app().create_token("oss", domain::auth::Scope::Write, "test").await.unwrap();
    let date = in_days(&t, 3);
    let new = |numbers: Value, date: &str| json!({ "customer_id": acme, "numbers": numbers, "losing_carrier": "Old Tel", "requested_date": date });

    for (body, status, field) in [
        (
            new(json!(["+15550109000", "not-a-number"]), &date),
            StatusCode::UNPROCESSABLE_ENTITY,
            "numbers",
        ),
        (
            new(json!(["+15550109000"]), "2020-01-01"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "requested_date",
        ),
        (
            new(json!(["+15550109000"]), "tomorrow"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "requested_date",
        ),
        (
            json!({ "customer_id": CustomerId::new(), "numbers": ["+15550109000"], "losing_carrier": "X", "requested_date": date }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer_id",
        ),
        (new(json!(["+15550100000"]), &date), StatusCode::CONFLICT, "numbers"),
    ] {
        let (got, problem) = call(&t, &token, Method::POST, "/port-ins", Some(body.clone())).await;
        assert_eq!((got, problem["field"].as_str()), (status, Some(field)), "{body}: {problem}");
    }
    let (_, problem) = call(
        &t,
        &token,
        Method::POST,
        "/port-ins",
        Some(new(json!(["+15550109000", "not-a-number"]), &date)),
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("numbers[1]"),
        "the row is named: {problem}"
    );

    let (status, p) =
        call(&t, &token, Method::POST, "/port-ins", Some(new(json!(PORTED), &date))).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(
        (p["state"].as_str(), p["requested_date"].as_str()),
        (Some("requested"), Some(date.as_str()))
    );
    assert_eq!(p["numbers"][0]["state"], "porting");
    let id = p["id"].as_str().unwrap().to_owned();

    let (_, list) =
        call(&t, &token, Method::GET, &format!("/port-ins?customer_id={acme}"), None).await;
    assert_eq!(list["port_ins"].as_array().unwrap().len(), 1);
    let (status, _) =
        call(&t, &token, Method::POST, &format!("/port-ins/{id}/complete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "not in Zoom yet");
    t.run_pending_jobs().await;
    let later = in_days(&t, 6);
    let (status, p) = call(
        &t,
        &token,
        Method::POST,
        &format!("/port-ins/{id}/reschedule"),
        Some(json!({ "requested_date": later })),
    )
    .await;
    assert_eq!(
        (status, p["requested_date"].as_str()),
        (StatusCode::OK, Some(later.as_str())),
        "{p}"
    );
    let (status, p) =
        call(&t, &token, Method::POST, &format!("/port-ins/{id}/complete"), None).await;
    assert_eq!((status, p["state"].as_str()), (StatusCode::OK, Some("activating")), "{p}");
    let (status, problem) =
        call(&t, &token, Method::POST, &format!("/port-ins/{id}/cancel"), None).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::CONFLICT, Some("state")),
        "{problem}"
    );
    t.run_pending_jobs().await;
    let (_, p) = call(&t, &token, Method::GET, &format!("/port-ins/{id}"), None).await;
    assert_eq!(p["state"], "active", "{p}");
    assert_eq!(
        p["history"].as_array().unwrap().len(),
        5,
        "requested, moved, pushed, activating, active: {p}"
    );
    let (status, _) =
        call(&t, &token, Method::GET, "/port-ins/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
