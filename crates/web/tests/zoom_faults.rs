//! Pushing numbers to Zoom when Zoom misbehaves, with the simulator's fault injection: 429 bursts,
//! 5xx, timeouts, a partial `1000` failure, the simulator restarting mid-push, and the platform's
//! workers killed mid-push. Every number ends in the right state, in Zoom once, and the audit trail
//! tells the story. On SQLite and PostgreSQL.

use domain::auth::Role;
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::onboarding::JobState;
use domain::{Actor, CustomerId, NumberState};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::sim::demo;
use testkit::{on_both, Db, ZoomApp, PASSWORD};

on_both!(
    bursts_of_429_5xx_timeouts_and_a_partial_failure_end_with_every_number_right,
    a_failed_push_waits_for_retry_and_the_order_page_says_so,
    workers_killed_mid_push_are_replaced_and_numbers_are_pushed_once,
    the_simulator_restarting_mid_push_loses_nothing,
    operators_see_failed_jobs_and_retry_them,
);

const ADMIN: &str = "admin@acme.example";
const PEERING: &str = "/v2/number_management/peering_numbers";

async fn acme(t: &ZoomApp, ordered: u32) -> CustomerId {
    let app = t.app();
    let c = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    t.bind_demo_trunk(c.id).await;
    app.create_user(ADMIN, PASSWORD, Role::CustomerAdmin, Some(c.id)).await.unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100999", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(c.id, OrderPick { count: ordered, ..Default::default() }, &[], &by)
        .await
        .unwrap();
    c.id
}

async fn fault(t: &ZoomApp, f: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", t.zoom.url))
        .json(&f)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::CREATED,
        "{f}: {}",
        r.text().await.unwrap_or_default()
    );
}

/// The faults the simulator has not used up yet.
async fn faults_left(t: &ZoomApp) -> Vec<Value> {
    let left: Value =
        reqwest::get(format!("{}/_sim/faults", t.zoom.url)).await.unwrap().json().await.unwrap();
    left["faults"].as_array().cloned().unwrap_or_default()
}

async fn states(t: &ZoomApp, c: CustomerId) -> Vec<(String, NumberState, Option<String>)> {
    let q = domain::search::NumberQuery { customer_id: Some(c), limit: 500, ..Default::default() };
    t.app()
        .search_numbers(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.e164.to_string(), n.state, n.reason))
        .collect()
}

async fn zoom_numbers(url: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("{url}/_sim/numbers?account_id={}", demo::ACME_ACCOUNT_ID))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until no number of the customer is provisioning, moving the platform's clock on to each
/// retry (its backoff, Zoom's Retry-After) while no job is running rather than waiting for it.
async fn settled(t: &ZoomApp, c: CustomerId, within: Duration) {
    let start = Instant::now();
    loop {
        let s = states(t, c).await;
        if !s.iter().any(|(_, st, _)| *st == NumberState::Provisioning) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "still provisioning after {within:?}: {} numbers",
            s.iter().filter(|(_, st, _)| *st == NumberState::Provisioning).count()
        );
        t.skip_to_next_job(time::Duration::minutes(1)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each number's trail went reserved → provisioning → active exactly once.
async fn pushed_once(t: &ZoomApp, c: CustomerId) {
    for (e164, _, _) in states(t, c).await.into_iter().filter(|(_, s, _)| *s == NumberState::Active)
    {
        let n = t
            .store()
            .get_number_by_e164(&domain::PhoneNumber::parse(&e164).unwrap())
            .await
            .unwrap()
            .unwrap();
        let to: Vec<_> =
            t.app().number_detail(n.id).await.unwrap().1.into_iter().map(|e| e.to).collect();
        assert_eq!(
            to,
            vec![
                NumberState::Available,
                NumberState::Reserved,
                NumberState::Provisioning,
                NumberState::Active
            ],
            "{e164}"
        );
    }
}

async fn bursts_of_429_5xx_timeouts_and_a_partial_failure_end_with_every_number_right(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let c = acme(&t, 450).await;
    fault(
        &t,
        json!({"path": PEERING, "method": "POST", "status": 429, "retry_after": 1, "count": 3}),
    )
    .await;
    fault(&t, json!({"path": PEERING, "method": "POST", "status": 503, "count": 2})).await;
    fault(&t, json!({"path": PEERING, "method": "POST", "timeout_ms": 2500, "count": 1})).await;
    // Then every push is served, but Zoom refuses one number in whichever batch carries it.
    fault(&t, json!({"path": PEERING, "method": "POST", "fail_numbers": ["+15550100007"], "reason": "Invalid Sip Trunk", "count": 100})).await;
    t.link_acme(ADMIN).await;
    let workers = t.app().spawn_workers();
    settled(&t, c, Duration::from_secs(60)).await;
    drop(workers);

    let s = states(&t, c).await;
    let refused: Vec<_> = s.iter().filter(|(_, st, _)| *st == NumberState::Reserved).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].0.as_str(), refused[0].2.as_deref()),
        ("+15550100007", Some("Zoom: Invalid Sip Trunk"))
    );
    assert_eq!(s.iter().filter(|(_, st, _)| *st == NumberState::Active).count(), 449);
    let mut in_zoom = zoom_numbers(&t.zoom.url).await;
    in_zoom.sort();
    let before = in_zoom.len();
    in_zoom.dedup();
    assert_eq!((before, in_zoom.len()), (449, 449), "each number once in Zoom");
    assert!(!in_zoom.contains(&"+15550100007".to_owned()));
    pushed_once(&t, c).await;
    let failed = t.app().jobs(Some(JobState::Failed), 10).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let left = faults_left(&t).await;
    assert!(
        left.len() == 1 && left[0]["fail_numbers"].is_array(),
        "every 429, 5xx and timeout was met: {left:?}"
    );
}

async fn a_failed_push_waits_for_retry_and_the_order_page_says_so(db: Db) {
    // A retry ten minutes off (at the earliest half of that, with the jitter): it comes only
    // because the clock is moved on.
    let t = ZoomApp::spawn_tuned(db, |z| {
        z.retry.base = Duration::from_secs(600);
        z.retry.cap = Duration::from_secs(600);
    })
    .await;
    let c = acme(&t, 3).await;
    fault(&t, json!({"path": PEERING, "method": "POST", "status": 500, "count": 1})).await;
    let b = t.link_acme(ADMIN).await;
    t.run_pending_jobs().await;
    let order = t.app().orders(Some(c), 1).await.unwrap()[0].id;
    let page = b
        .get(format!("{}/portal/orders/{order}", t.platform.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("Waiting for retry: Zoom answered 500").count(), 3, "{page}");
    assert!(page.contains("hx-trigger=\"every 2s\""));
    t.clock().advance(time::Duration::minutes(4));
    t.run_pending_jobs().await;
    assert_eq!(states(&t, c).await.len(), 3);
    assert!(
        states(&t, c).await.iter().all(|(_, s, _)| *s == NumberState::Provisioning),
        "not retried before its backoff"
    );
    t.clock().advance(time::Duration::minutes(6));
    t.run_pending_jobs().await;
    let page = b
        .get(format!("{}/portal/orders/{order}/progress", t.platform.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("Pushed: in your Zoom account").count(), 3, "{page}");
}

async fn workers_killed_mid_push_are_replaced_and_numbers_are_pushed_once(db: Db) {
    // A lease longer than the test may take: it runs out only because the clock is moved on.
    let t = ZoomApp::spawn_tuned(db, |z| z.lease = Duration::from_secs(60)).await;
    let c = acme(&t, 400).await;
    // Zoom takes its time: the workers die while their calls are in flight (Zoom still adds the numbers).
    fault(&t, json!({"path": PEERING, "method": "POST", "delay_ms": 1500, "count": 2})).await;
    t.link_acme(ADMIN).await;
    let workers = t.app().spawn_workers();
    // Each delay leaves the simulator's list when its POST arrives: then both calls are in flight.
    let start = Instant::now();
    while !faults_left(&t).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the workers never called Zoom");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(workers);
    let mid = states(&t, c).await;
    assert_eq!(
        mid.iter().filter(|(_, s, _)| *s == NumberState::Provisioning).count(),
        400,
        "killed before any answer was recorded"
    );
    let running = t.app().jobs(Some(JobState::Running), 10).await.unwrap();
    assert_eq!(running.len(), 2, "both pushes were in flight");
    // The instance comes back: the dead workers' leases run out and their jobs are taken again.
    let workers = t.app().spawn_workers();
    t.clock().advance(time::Duration::seconds(61));
    settled(&t, c, Duration::from_secs(30)).await;
    drop(workers);
    assert!(states(&t, c).await.iter().all(|(_, s, _)| *s == NumberState::Active));
    let zoom = zoom_numbers(&t.zoom.url).await;
    assert_eq!(zoom.len(), 400, "each number once in Zoom");
    pushed_once(&t, c).await;
    let jobs = t.app().jobs(None, 10).await.unwrap();
    assert!(
        jobs.iter()
            .filter(|j| j.kind == domain::onboarding::JobKind::PushNumbers)
            .all(|j| j.state == JobState::Done && j.attempts == 2),
        "{jobs:?}"
    );
}

async fn the_simulator_restarting_mid_push_loses_nothing(db: Db) {
    let (dir, _) = testkit::sqlite_path();
    let state_file = dir.path().join("zoom.json");
    let options = testkit::sim::Options {
        control_api: true,
        state_file: Some(state_file.clone()),
        ..Default::default()
    };
    let t = ZoomApp::spawn_full(db, options.clone(), |_| {}).await;
    let c = acme(&t, 600).await;
    t.link_acme(ADMIN).await;
    fault(&t, json!({"path": PEERING, "method": "POST", "delay_ms": 800, "count": 1})).await;
    let ZoomApp { platform, zoom } = t;
    let addr = zoom.addr;
    let world = zoom.sim.world().clone();
    let workers = platform.app.spawn_workers();
    tokio::time::sleep(Duration::from_millis(300)).await;
    zoom.handle.shutdown().await;
    drop(zoom.sim);
    // Zoom is down for a while: pushes fail with connection errors and wait for retry.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sim = testkit::sim::Simulator::new(world, options).unwrap();
    let (_, handle) = sim.spawn(addr).await.unwrap();
    let t = ZoomApp {
        platform,
        zoom: testkit::sim::ZoomSim { addr, url: format!("http://{addr}"), sim, handle },
    };
    settled(&t, c, Duration::from_secs(30)).await;
    drop(workers);
    assert!(states(&t, c).await.iter().all(|(_, s, _)| *s == NumberState::Active));
    assert_eq!(zoom_numbers(&t.zoom.url).await.len(), 600);
    pushed_once(&t, c).await;
}

async fn operators_see_failed_jobs_and_retry_them(db: Db) {
    let t = ZoomApp::spawn_tuned(db, |z| z.retry.max_attempts = 1).await;
    let c = acme(&t, 2).await;
    fault(&t, json!({"path": PEERING, "method": "POST", "status": 503, "count": 1})).await;
    t.link_acme(ADMIN).await;
    t.run_pending_jobs().await;
    let (op, csrf) = t.platform.operator_browser(testkit::ADMIN_EMAIL).await;
    let page = op
        .get(format!("{}/operator/jobs", t.platform.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("push_numbers") && page.contains("Zoom answered 503"), "{page}");
    let failed = t.app().jobs(Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    // A read-only operator sees it but cannot retry.
    let (reader, reader_csrf) = t.platform.operator_browser(testkit::READER_EMAIL).await;
    let r = reader
        .post(format!("{}/operator/jobs/{}/retry", t.platform.url, failed[0].id))
        .form(&[("csrf", reader_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let r = op
        .post(format!("{}/operator/jobs/{}/retry", t.platform.url, failed[0].id))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    t.run_pending_jobs().await;
    assert!(states(&t, c).await.iter().all(|(_, s, _)| *s == NumberState::Active));
    let r = op
        .post(format!("{}/operator/jobs/{}/retry", t.platform.url, failed[0].id))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT, "a done job is not retried");
}
