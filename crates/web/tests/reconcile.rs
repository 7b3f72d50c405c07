//! Reconciliation against the Zoom simulator on a real socket, on SQLite and PostgreSQL: a converged
//! account has nothing to say; each drift injected the way it happens outside peerex (Zoom support
//! deleting, re-trunking or deactivating a number, the customer marking one Returned, the carrier's
//! staff adding one in the Provider Portal, a row edited by hand) is found as exactly its kind, and
//! closed once it is gone; Zoom failing mid-listing never produces a finding; two cycles at once
//! leave one set of findings; the API and the Drift page show them. The carrier-wide listing (the
//! carrier's Server-to-Server app) finds numbers in accounts no customer linked and numbers in another
//! customer's account; a long cycle keeps its lease, one that lost it records nothing; a number event
//! from Zoom brings the account's cycle forward.

mod release_support;

use app::reconcile::{Outcome, ReconcileReport, ReconcileRequest};
use domain::customer::OrderPick;
use domain::findings::{FindingQuery, NO_LONGER_SEEN};
use domain::number::NumberAttrs;
use domain::reconcile::FindingKind;
use domain::{Actor, CustomerId};
use release_support::*;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::sim::demo;
use testkit::{Db, ZoomApp};

on_both!(
    each_drift_is_found_as_its_kind_and_closed_once_gone,
    zoom_failing_mid_listing_reports_nothing_that_is_not_there,
    expired_page_tokens_never_make_a_partial_listing_look_like_drift,
    two_cycles_at_once_leave_one_set_of_findings,
    a_routing_instance_left_behind_is_found_and_closed_once_it_catches_up,
    the_schedule_runs_each_scope_once_per_interval,
    repairs_go_through_the_outbox_once_and_close_when_zoom_confirms_them,
    a_repair_whose_worker_died_is_taken_again_and_converges,
    a_repair_never_takes_a_number_from_another_zoom_account,
    a_job_waiting_past_the_threshold_raises_the_alarm,
    the_carrier_wide_listing_finds_what_no_account_listing_shows,
    the_carrier_cycle_compares_nothing_when_zoom_fails_mid_listing,
    a_linked_account_whose_number_zoom_will_not_give_holds_up_no_other,
    a_long_cycle_keeps_its_lease_and_one_that_lost_it_records_nothing,
    a_number_event_from_zoom_brings_the_accounts_cycle_forward,
    a_person_confirms_removing_an_unsold_number_and_releasing_a_returned_one,
);

const UNKNOWN: &str = "+15559990001";

fn n(i: u32) -> String {
    format!("+1555010{i:04}")
}

fn enc(e164: &str) -> String {
    e164.replace('+', "%2B")
}

async fn reconcile(t: &ZoomApp) -> ReconcileReport {
    t.app().reconcile(&ReconcileRequest::default()).await.unwrap()
}

/// The account cycle of a report.
fn account_cycle(r: &ReconcileReport) -> &app::reconcile::Cycle {
    r.cycles.iter().find(|c| c.scope.starts_with("account:")).expect("an account cycle")
}

/// Open findings: (kind, subject), sorted.
async fn open(t: &ZoomApp) -> Vec<(FindingKind, String)> {
    let q = FindingQuery { open: Some(true), ..Default::default() };
    let mut v: Vec<_> =
        t.app().findings(&q).await.unwrap().into_iter().map(|f| (f.kind, f.subject)).collect();
    v.sort();
    v
}

async fn sim_patch(t: &ZoomApp, e164: &str, body: Value) {
    let r = Client::new()
        .patch(format!("{}/_sim/numbers/{}", t.zoom.url, enc(e164)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{body}: {}", r.text().await.unwrap_or_default());
}

async fn sim_send(t: &ZoomApp, method: reqwest::Method, path: &str) {
    let r = Client::new().request(method, format!("{}{path}", t.zoom.url)).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap_or_default());
}

/// The carrier's staff add `e164` to Acme's account in Zoom's Provider Portal (Import, a CSV file).
async fn provider_portal_import(t: &ZoomApp, e164: &str) {
    let b = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = b
        .post(format!("{}/signin", t.zoom.url))
        .form(&[
            ("email", "ops@demo-carrier.example"),
            ("password", "ops-zoom-password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "carrier sign-in: {}", r.status());
    let csv = format!("Phone Number,SIP Trunk Name,Status\n{e164},{},Normal\n", demo::SIP_TRUNK);
    // A file input's upload, as a browser sends it.
    let boundary = "----peerexreconciletest";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"numbers.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let r = b
        .post(format!("{}/provider-portal/customers/{}/import", t.zoom.url, demo::ACME_ACCOUNT_ID))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap_or_default());
}

/// Faults injected and not yet used up.
async fn faults_left(t: &ZoomApp) -> usize {
    let v: Value =
        reqwest::get(format!("{}/_sim/faults", t.zoom.url)).await.unwrap().json().await.unwrap();
    v["faults"].as_array().unwrap().len()
}

async fn force(t: &ZoomApp, e164: &str, state: &str, customer: Option<CustomerId>) {
    assert!(t
        .store()
        .force_number_state(
            &domain::PhoneNumber::parse(e164).unwrap(),
            domain::NumberState::parse(state).unwrap(),
            customer
        )
        .await
        .unwrap());
}

async fn each_drift_is_found_as_its_kind_and_closed_once_gone(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 10).await;

    // Converged: nothing to say, and the routing cycle ran too.
    let r = reconcile(&t).await;
    let c = account_cycle(&r);
    assert_eq!((&c.outcome, c.listed, c.pages), (&Outcome::Complete, 10, 1));
    assert!(r.findings().next().is_none(), "{r:?}");
    assert!(r.cycles.iter().any(|c| c.scope == "routing" && c.outcome == Outcome::Complete));
    assert!(open(&t).await.is_empty());

    // Drift, made the ways it happens outside peerex.
    let beta = t.app().create_customer("Beta Ltd", "BETA-001").await.unwrap().id;
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&n(0)))).await;
    sim_patch(&t, &n(1), json!({ "sip_trunk_name": demo::SIP_TRUNK_2 })).await;
    sim_patch(&t, &n(2), json!({ "status": false })).await;
    sim_send(&t, reqwest::Method::PUT, &format!("/_sim/numbers/{}/returned", enc(&n(3)))).await;
    sim_patch(&t, &n(4), json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    force(&t, &n(5), "active", Some(beta)).await; // someone edits a row by hand
    force(&t, &n(6), "available", None).await;
    force(&t, &n(7), "provisioning", Some(acme)).await; // the push's answer was lost
    force(&t, &n(8), "releasing", Some(acme)).await; // the release's answer was lost...
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&n(8)))).await;
    provider_portal_import(&t, UNKNOWN).await;
    // ... long enough ago to be stuck.
    t.clock().advance(time::Duration::minutes(31));

    let r = reconcile(&t).await;
    let c = account_cycle(&r);
    assert_eq!(c.outcome, Outcome::Complete);
    use FindingKind::*;
    let mut expected = vec![
        (GoneFromZoom, n(0)),
        (WrongTrunk, n(1)),
        (InactiveInZoom, n(2)),
        (ReturnedByCustomer, n(3)),
        (GoneFromZoom, n(4)),
        (OtherAccount, n(5)),
        (NotSoldButInZoom, n(6)),
        (PushAnswerLost, n(7)),
        (Stuck, n(8)),
        (UnknownToPeerex, UNKNOWN.to_owned()),
    ];
    expected.sort();
    let mut found: Vec<_> = r.findings().map(|f| (f.kind, f.subject.clone())).collect();
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(open(&t).await, expected);
    assert_eq!(c.recorded.map(|r| (r.opened, r.still_open, r.closed)), Some((10, 0, 0)));
    let first =
        t.app().findings(&FindingQuery { open: Some(true), ..Default::default() }).await.unwrap();
    let unknown = first.iter().find(|f| f.kind == UnknownToPeerex).unwrap();
    assert!(
        !unknown.repair.automatic() && !unknown.repair.acts(),
        "never deleted from Zoom by itself"
    );
    assert!(first.iter().find(|f| f.subject == n(1)).unwrap().detail.contains(demo::SIP_TRUNK_2));

    // A dry run finds the same and writes nothing.
    t.clock().advance(time::Duration::minutes(1));
    let dry =
        t.app().reconcile(&ReconcileRequest { customer: Some(acme), dry_run: true }).await.unwrap();
    assert_eq!(dry.findings().count(), 10);
    assert!(dry.cycles.iter().all(|c| c.recorded.is_none()));
    let again =
        t.app().findings(&FindingQuery { open: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(
        again.iter().map(|f| f.last_seen).collect::<Vec<_>>(),
        first.iter().map(|f| f.last_seen).collect::<Vec<_>>()
    );

    // Repaired by hand, outside peerex: those findings close; the rest stay open, first seen kept.
    sim_patch(&t, &n(1), json!({ "sip_trunk_name": demo::SIP_TRUNK })).await;
    sim_patch(&t, &n(2), json!({ "status": true })).await;
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}/returned", enc(&n(3)))).await;
    for i in [5, 6, 7] {
        force(&t, &n(i), "active", Some(acme)).await;
    }
    let r = reconcile(&t).await;
    assert_eq!(
        account_cycle(&r).recorded.map(|r| (r.opened, r.still_open, r.closed)),
        Some((0, 4, 6))
    );
    let still = vec![
        (Stuck, n(8)),
        (UnknownToPeerex, UNKNOWN.to_owned()),
        (GoneFromZoom, n(0)),
        (GoneFromZoom, n(4)),
    ];
    let mut still_sorted = still.clone();
    still_sorted.sort();
    assert_eq!(open(&t).await, still_sorted);
    let all = t.app().findings(&FindingQuery::default()).await.unwrap();
    let closed = all.iter().find(|f| f.subject == n(1)).unwrap();
    assert_eq!(closed.resolved_by.as_deref(), Some(NO_LONGER_SEEN));
    let gone = all.iter().find(|f| f.subject == n(0)).unwrap();
    let was = first.iter().find(|f| f.subject == n(0)).unwrap();
    assert_eq!(gone.first_seen, was.first_seen);
    assert!(gone.last_seen > was.last_seen);

    // The API: open ones by default, filtered by kind; closed ones on request.
    let token = t.platform.token(domain::auth::Scope::Read).await;
    let api = |q: &str| {
        let url = format!("{}/api/v1/findings{q}", t.platform.url);
        let token = token.clone();
        async move {
            let r = Client::new().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["findings"].as_array().unwrap().clone()
        }
    };
    assert_eq!(api("").await.len(), 4);
    let gone = api("?kind=gone_from_zoom").await;
    assert_eq!(gone.len(), 2);
    assert_eq!(gone[0]["repair"], "push_again");
    assert_eq!(gone[0]["customer_id"], acme.to_string());
    assert_eq!(api("?open=false").await.len(), 6);
    assert_eq!(api(&format!("?customer_id={beta}&open=all")).await.len(), 1, "n(5) was Beta's");
    let r = Client::new().get(format!("{}/api/v1/findings", t.platform.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = Client::new()
        .get(format!("{}/api/v1/findings?kind=nonsense", t.platform.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The Drift page, in plain words.
    let ops = operator(&t).await;
    let page = get_text(&ops, format!("{}/operator/drift", t.platform.url)).await;
    assert!(page.contains("Active in peerex, gone from Zoom") && page.contains(UNKNOWN), "{page}");
    assert!(page.contains("Push it to the customer&#39;s Zoom account again"), "{page}");
    assert!(page.contains("id=\"drift-gone_from_zoom\">2<"), "{page}");
    assert!(!page.contains(&format!("data-subject=\"{}\"", n(1))), "closed ones are not shown");

    // Repair one from the page: its push goes through the outbox, and the next cycle closes it.
    let row = |page: &str, subject: &str| {
        let start = page.find(&format!("data-subject=\"{subject}\"")).unwrap();
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(testkit::hidden_value(&row(&page, UNKNOWN), "finding").is_none(), "a person decides");
    let finding = testkit::hidden_value(&row(&page, &n(0)), "finding").expect("a Repair button");
    let csrf = testkit::hidden_value(&page, "csrf").unwrap();
    let r = ops
        .post(format!("{}/operator/drift/repair", t.platform.url))
        .form(&[("csrf", csrf.as_str()), ("finding", finding.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/operator/drift?queued=1&refused=0");
    let page = get_text(&ops, format!("{}{to}", t.platform.url)).await;
    assert!(page.contains("1 repairs queued"), "{page}");
    t.run_pending_jobs().await;
    reconcile(&t).await;
    assert!(!open(&t).await.contains(&(GoneFromZoom, n(0))), "pushed again and closed");
    testkit::assert_told(t.app(), &["finding.opened", "finding.closed"]).await;
}

/// Acme with `count` active numbers from +15550200000 (several pages of Zoom's listing).
async fn acme_with_many(t: &ZoomApp, count: u32) -> CustomerId {
    let app = t.app();
    let c = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    t.bind_demo_trunk(c.id).await;
    app.create_user(ACME_ADMIN, testkit::PASSWORD, domain::auth::Role::CustomerAdmin, Some(c.id))
        .await
        .unwrap();
    let by = Actor::System("test".into());
    let range = format!("+15550200000-+1555020{:04}", count - 1);
    app.import_range(&range, &NumberAttrs::default(), &by, false, &|_| {}).await.unwrap();
    app.create_order(c.id, OrderPick { count, ..Default::default() }, &[], &by).await.unwrap();
    t.link_acme(ACME_ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(zoom_numbers(t).await.len(), count as usize, "pushed");
    c.id
}

async fn zoom_failing_mid_listing_reports_nothing_that_is_not_there(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_many(&t, 700).await;
    let gone = "+15550200650"; // on the listing's third page
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(gone))).await;
    let only_gone = vec![(FindingKind::GoneFromZoom, gone.to_owned())];

    // 429s on some pages: the budget moves on, the pages are asked again, the cycle completes.
    fault(&t, json!({ "path": PEERING, "method": "GET", "status": 429, "retry_after": 1, "error_rate": 0.5, "seed": 7, "count": 2 })).await;
    let r = reconcile(&t).await;
    let c = account_cycle(&r);
    assert_eq!(c.outcome, Outcome::Complete, "{r:?}");
    assert_eq!((c.listed, c.pages), (699, 3));
    assert_eq!(faults_left(&t).await, 0, "both 429s were answered");
    assert_eq!(open(&t).await, only_gone);

    // 5xx and a timeout: retried with backoff; the same one finding, nothing else.
    fault(&t, json!({ "path": PEERING, "method": "GET", "status": 503, "error_rate": 0.5, "seed": 3, "count": 2 })).await;
    let r = reconcile(&t).await;
    assert_eq!(
        account_cycle(&r).recorded.map(|r| (r.opened, r.still_open, r.closed)),
        Some((0, 1, 0))
    );
    assert_eq!(faults_left(&t).await, 0, "both 503s were answered");
    fault(&t, json!({ "path": PEERING, "method": "GET", "timeout_ms": 2500, "count": 1 })).await;
    let r = reconcile(&t).await;
    assert_eq!(account_cycle(&r).outcome, Outcome::Complete, "{r:?}");
    assert_eq!(faults_left(&t).await, 0, "the call timed out");
    assert_eq!(open(&t).await, only_gone);

    // Zoom failing on every call: the cycle gives up, records nothing and closes nothing.
    fault(
        &t,
        json!({ "path": PEERING, "method": "GET", "status": 500, "error_rate": 1.0, "seed": 1 }),
    )
    .await;
    let r = reconcile(&t).await;
    let c = account_cycle(&r);
    assert!(matches!(c.outcome, Outcome::Incomplete(_)), "{r:?}");
    assert!(c.findings.is_empty() && c.recorded.is_none());
    assert_eq!(
        open(&t).await,
        only_gone,
        "the open finding is not closed by a cycle that did not finish"
    );
}

async fn expired_page_tokens_never_make_a_partial_listing_look_like_drift(db: Db) {
    // Every page token has expired by the time it is used: no listing of more than a page finishes.
    let options = testkit::sim::Options {
        control_api: true,
        page_token_ttl: std::time::Duration::ZERO,
        ..Default::default()
    };
    let t = ZoomApp::spawn_full(db, options, |_| {}).await;
    acme_with_many(&t, 400).await;
    let r = reconcile(&t).await;
    let c = account_cycle(&r);
    assert!(matches!(&c.outcome, Outcome::Incomplete(why) if why.contains("page token")), "{r:?}");
    assert!(c.pages >= 3, "the listing was started over: {} pages", c.pages);
    assert!(open(&t).await.is_empty(), "100 numbers were on no page read, and none is reported");
}

async fn two_cycles_at_once_leave_one_set_of_findings(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 6).await;
    for i in 0..3 {
        sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&n(i)))).await;
    }
    // Slow pages, so the two cycles overlap.
    fault(&t, json!({ "path": PEERING, "method": "GET", "delay_ms": 300, "count": 4 })).await;
    let (a, b) = (t.app().clone(), t.app().clone());
    let req = ReconcileRequest::default();
    let (ra, rb) = tokio::join!(a.reconcile(&req), b.reconcile(&req));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let outcomes = [&account_cycle(&ra).outcome, &account_cycle(&rb).outcome];
    assert!(
        outcomes.iter().filter(|o| matches!(o, Outcome::Skipped(_))).count() == 1,
        "one cycle ran while the other held the account's lease: {outcomes:?}"
    );
    let expected: Vec<_> = (0..3).map(|i| (FindingKind::GoneFromZoom, n(i))).collect();
    assert_eq!(open(&t).await, expected);
    let all = t.app().findings(&FindingQuery::default()).await.unwrap();
    assert_eq!(all.len(), 3, "no duplicates");

    // Once the lease is given back the next cycle runs and finds the same, once.
    let r = reconcile(&t).await;
    assert_eq!(
        account_cycle(&r).recorded.map(|r| (r.opened, r.still_open, r.closed)),
        Some((0, 3, 0))
    );
    assert_eq!(t.app().findings(&FindingQuery::default()).await.unwrap().len(), 3);
}

async fn a_routing_instance_left_behind_is_found_and_closed_once_it_catches_up(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 3).await;
    let head = t.app().routing_source().routing_feed_head().await.unwrap().high;
    assert!(head > 0, "the pushes moved the routing generation");
    let store = t.store();
    let report = |instance: &'static str, generation: i64| {
        let (store, now) = (store.clone(), t.app().now());
        async move { store.report_routing_instance(instance, generation, now).await.unwrap() }
    };
    report("sbc-a", head).await;
    report("sbc-b", head - 1).await;
    // The first cycle samples the database's generation; nobody is behind a sample not yet old.
    let r = reconcile(&t).await;
    assert!(r.findings().next().is_none(), "{r:?}");

    t.clock().advance(time::Duration::minutes(2));
    report("sbc-a", head).await;
    report("sbc-b", head - 1).await;
    reconcile(&t).await;
    let found = open(&t).await;
    assert_eq!(found, vec![(FindingKind::RoutingBehind, "sbc-b".to_owned())]);
    let f = &t.app().findings(&FindingQuery::default()).await.unwrap()[0];
    assert!(
        f.detail.contains(&format!("serves generation {} of {head}", head - 1)),
        "{}",
        f.detail
    );

    // It catches up: closed. An instance that stops reporting is forgotten, not reported.
    t.clock().advance(time::Duration::minutes(2));
    report("sbc-b", head).await;
    reconcile(&t).await;
    assert!(open(&t).await.is_empty());
    t.clock().advance(time::Duration::minutes(20));
    reconcile(&t).await;
    assert!(open(&t).await.is_empty(), "silent instances are gone, not behind");
}

async fn the_schedule_runs_each_scope_once_per_interval(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 2).await;
    let ran =
        |r: &ReconcileReport| r.cycles.iter().filter(|c| c.outcome == Outcome::Complete).count();
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert_eq!(ran(&r), 2, "never run: due now ({r:?})");
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert_eq!(ran(&r), 0, "just ran: not due ({r:?})");
    t.clock().advance(time::Duration::minutes(14));
    assert_eq!(ran(&t.app().reconcile_scheduled().await.unwrap()), 0);
    t.clock().advance(time::Duration::minutes(2));
    assert_eq!(ran(&t.app().reconcile_scheduled().await.unwrap()), 2, "15 minutes on: due");
    // Asked for by an operator, a cycle runs whenever the last one was.
    assert_eq!(ran(&reconcile(&t).await), 2);
}

async fn repairs_go_through_the_outbox_once_and_close_when_zoom_confirms_them(db: Db) {
    use app::reconcile::RepairWhich;
    use domain::findings::RepairState;
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 6).await;
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&n(0)))).await;
    sim_patch(&t, &n(1), json!({ "sip_trunk_name": demo::SIP_TRUNK_2 })).await;
    sim_patch(&t, &n(2), json!({ "status": false })).await;
    force(&t, &n(3), "provisioning", Some(acme)).await;
    provider_portal_import(&t, UNKNOWN).await;
    reconcile(&t).await;
    assert_eq!(open(&t).await.len(), 5);

    // Two operators ask for every automatic repair at once: each is queued once.
    let (a, b) = (t.app().clone(), t.app().clone());
    let which = RepairWhich::Automatic { customer: None };
    let by = Actor::Operator("ops@carrier.example".into());
    let (ra, rb) = tokio::join!(a.repair_findings(&which, &by), b.repair_findings(&which, &by));
    let queued: usize = [ra, rb].into_iter().map(|r| r.map_or(0, |r| r.queued.len())).sum();
    assert_eq!(queued, 4, "the unknown number is never repaired by itself");
    let jobs = t.store().list_jobs(Some(domain::onboarding::JobState::Pending), 100).await.unwrap();
    let repairs: Vec<_> =
        jobs.iter().filter(|j| j.kind == domain::onboarding::JobKind::PushNumbers).collect();
    assert_eq!(repairs.len(), 3, "add again, set trunk and status, finish the lost push: {jobs:?}");

    // Asked again, one by one: refused with why, nothing queued twice.
    let all =
        t.app().findings(&FindingQuery { open: Some(true), ..Default::default() }).await.unwrap();
    let ids: Vec<_> = all.iter().map(|f| f.id).collect();
    let again = t.app().repair_findings(&RepairWhich::Ids(ids), &by).await.unwrap();
    assert_eq!((again.queued.len(), again.refused.len()), (0, 5), "{again:?}");
    let unknown = all.iter().find(|f| f.kind == FindingKind::UnknownToPeerex).unwrap();
    let why = &again.refused.iter().find(|(id, _)| *id == unknown.id).unwrap().1;
    assert!(why.contains("a person decides"), "{why}");

    // The outbox carries them to Zoom; the next cycle closes them, saying who repaired them.
    t.run_pending_jobs().await;
    let in_zoom: Value =
        reqwest::get(format!("{}/_sim/numbers?account_id={}", t.zoom.url, demo::ACME_ACCOUNT_ID))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let zoom = |e164: String| {
        in_zoom["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["phone_number"] == e164.as_str())
            .cloned()
    };
    for i in [0, 1, 2] {
        let z = zoom(n(i)).unwrap_or_else(|| panic!("{} back in Zoom", n(i)));
        assert_eq!(
            (z["sip_trunk_name"].as_str(), z["status"].as_bool()),
            (Some(demo::SIP_TRUNK), Some(true)),
            "{z}"
        );
    }
    assert!(
        zoom(UNKNOWN.into()).is_some(),
        "peerex never deletes from Zoom a number it does not know"
    );
    assert_eq!(number(&t, &n(3)).await.state, domain::NumberState::Active);
    // Checked after the jobs: what Zoom confirmed is closed already; the lost push (a plain push)
    // waits for the next cycle, which closes it too.
    let mut left = open(&t).await;
    let mut expected = vec![
        (FindingKind::UnknownToPeerex, UNKNOWN.to_owned()),
        (FindingKind::PushAnswerLost, n(3)),
    ];
    left.sort();
    expected.sort();
    assert_eq!(left, expected);
    let r = reconcile(&t).await;
    assert_eq!(
        account_cycle(&r).recorded.map(|r| (r.opened, r.still_open, r.closed)),
        Some((0, 1, 1))
    );
    assert_eq!(open(&t).await, vec![(FindingKind::UnknownToPeerex, UNKNOWN.to_owned())]);
    let closed =
        t.app().findings(&FindingQuery { open: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!(closed.len(), 4);
    for f in closed {
        assert_eq!(f.repair_state, RepairState::Repaired, "{f:?}");
        assert!(
            f.resolved_by
                .as_deref()
                .is_some_and(|b| b.starts_with("repaired by") && b.contains("ops@carrier.example")),
            "{f:?}"
        );
    }

    // The API: nothing automatic left; the unknown number refused with why.
    let token = t.platform.token(domain::auth::Scope::Write).await;
    let post = |body: Value| {
        let (url, token) = (format!("{}/api/v1/findings/repair", t.platform.url), token.clone());
        async move {
            let r = Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = post(json!({ "all_automatic": true })).await;
    assert_eq!(
        (status, v["queued"].clone(), v["jobs"].clone()),
        (StatusCode::OK, json!([]), json!(0))
    );
    let (status, v) = post(json!({ "finding_ids": [unknown.id] })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["refused"][0]["id"], unknown.id.to_string());
    let (status, _) = post(json!({ "all_automatic": true, "finding_ids": [unknown.id] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_repair_whose_worker_died_is_taken_again_and_converges(db: Db) {
    use app::reconcile::RepairWhich;
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 3).await;
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&n(0)))).await;
    sim_patch(&t, &n(1), json!({ "status": false })).await;
    reconcile(&t).await;
    let by = Actor::Operator("ops@carrier.example".into());
    let which = RepairWhich::Automatic { customer: None };
    assert_eq!(t.app().repair_findings(&which, &by).await.unwrap().jobs, 2);

    // A worker claims both repairs and dies (kill -9: no answer recorded, no lease handed back).
    let now = t.app().now();
    let lease = now + time::Duration::seconds(3);
    for _ in 0..2 {
        assert!(t.store().claim_job("dead-worker", lease, now).await.unwrap().is_some());
    }
    assert!(t.run_pending_jobs().await.is_empty(), "the dead worker's lease still holds them");
    // Its lease runs out: another worker takes them; running them again converges.
    t.clock().advance(time::Duration::seconds(4));
    let runs = t.run_pending_jobs().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.end == domain::onboarding::JobEnd::Done), "{runs:?}");
    // Zoom confirmed both: closed by the jobs; the next cycle finds nothing to open or close.
    assert!(open(&t).await.is_empty());
    let r = reconcile(&t).await;
    assert_eq!(
        account_cycle(&r).recorded.map(|r| (r.opened, r.still_open, r.closed)),
        Some((0, 0, 0))
    );
}

async fn a_repair_never_takes_a_number_from_another_zoom_account(db: Db) {
    use app::reconcile::RepairWhich;
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 2).await;
    sim_patch(&t, &n(0), json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    reconcile(&t).await;
    assert_eq!(open(&t).await, vec![(FindingKind::GoneFromZoom, n(0))]);
    let by = Actor::Operator("ops@carrier.example".into());
    let which = RepairWhich::Automatic { customer: None };
    assert_eq!(t.app().repair_findings(&which, &by).await.unwrap().jobs, 1);
    let runs = t.run_pending_jobs().await;
    let [run] = runs.as_slice() else { panic!("{runs:?}") };
    match &run.end {
        domain::onboarding::JobEnd::Failed { error } => {
            assert!(error.contains(&n(0)) && error.contains("another account"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let moved: Value = reqwest::get(format!(
        "{}/_sim/numbers?account_id={}",
        t.zoom.url,
        demo::CARRIER_ACCOUNT_ID
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(moved["numbers"][0]["phone_number"], n(0).as_str(), "left where it is");
    reconcile(&t).await;
    assert_eq!(open(&t).await, vec![(FindingKind::GoneFromZoom, n(0))], "still open");
}

/// An outbox that no longer drains is an alarm: the Jobs page says so and `/metrics` counts it, until
/// the job runs. The customer's recurring poll of Zoom is not stuck for being old, only for being
/// overdue.
async fn a_job_waiting_past_the_threshold_raises_the_alarm(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 2).await;
    let ops = operator(&t).await;
    let jobs_page = || get_text(&ops, format!("{}/operator/jobs", t.platform.url));
    let pending = t.app().jobs(Some(domain::onboarding::JobState::Pending), 10).await.unwrap();
    let [poll] = &pending[..] else { panic!("the poll alone waits: {pending:?}") };
    assert_eq!(poll.kind, domain::onboarding::JobKind::PollNumbers);
    assert_eq!(t.app().stuck_jobs().await.unwrap(), 0);
    assert!(!jobs_page().await.contains("id=\"stuck\""));

    // Nothing drains the outbox: 29 minutes past its time the poll is late, 31 minutes stuck.
    let now = t.app().now();
    t.clock().advance(poll.run_after - now + time::Duration::minutes(29));
    assert_eq!(t.app().stuck_jobs().await.unwrap(), 0, "within the 30 minutes");
    t.clock().advance(time::Duration::minutes(2));
    assert_eq!(t.app().stuck_jobs().await.unwrap(), 1);
    let page = jobs_page().await;
    assert!(page.contains("id=\"stuck\"") && page.contains("1 job has waited longer"), "{page}");

    t.run_pending_jobs().await;
    assert_eq!(t.app().stuck_jobs().await.unwrap(), 0, "it ran");
    assert!(!jobs_page().await.contains("id=\"stuck\""));
}

const CARRIER_PATH: &str = "/v2/number_management/carrier/peering_numbers";

/// Another instance on the same database, with the carrier's Server-to-Server app configured.
fn carrier_instance(t: &ZoomApp) -> app::App {
    let mut setup = testkit::zoom_setup_on(&t.zoom.url, &t.platform.url, t.clock());
    setup.keys = t.app().zoom.as_ref().unwrap().keys.clone();
    let url = |s: String| s.parse::<url::Url>().unwrap();
    let clock = t.clock().clone();
    let s2s = zoom::Client::with_clock(
        zoom::Config {
            oauth_base: url(t.zoom.url.clone()),
            api_base: url(t.zoom.api_base()),
            client_id: demo::S2S_CLIENT_ID.into(),
            client_secret: demo::S2S_CLIENT_SECRET.into(),
            redirect_uri: url(format!("{}/zoom/oauth/callback", t.platform.url)),
            timeout: std::time::Duration::from_secs(2),
        },
        move || clock.now(),
    )
    .unwrap();
    let account = domain::ZoomAccountId::parse(demo::CARRIER_ACCOUNT_ID).unwrap();
    setup.carrier = Some(app::reconcile::CarrierApp::new(s2s, account, 0.0));
    t.app().clone().with_zoom(setup)
}

fn carrier_cycle(r: &ReconcileReport) -> &app::reconcile::Cycle {
    r.cycles.iter().find(|c| c.scope == "carrier").expect("a carrier cycle")
}

fn cycle_findings(c: &app::reconcile::Cycle) -> Vec<(FindingKind, String)> {
    let mut v: Vec<_> = c.findings.iter().map(|f| (f.kind, f.subject.clone())).collect();
    v.sort();
    v
}

/// Waits until the simulator has `left` faults not yet used (the calls they delay have arrived).
async fn until_faults_left(t: &ZoomApp, left: usize) {
    for _ in 0..500 {
        if faults_left(t).await == left {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the simulator still has other than {left} faults after 5 s");
}

async fn the_carrier_wide_listing_finds_what_no_account_listing_shows(db: Db) {
    use FindingKind::*;
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 6).await;
    let carrier = carrier_instance(&t);
    let req = ReconcileRequest::default();

    // Converged: every number the carrier pushed is its customer's, in the customer's account.
    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    assert_eq!((&c.outcome, c.listed, c.pages), (&Outcome::Complete, 6, 1), "{r:?}");
    assert!(r.findings().next().is_none(), "{r:?}");

    // What only the carrier's view shows: a number moved to an account no customer linked (the
    // carrier's own), a number peerex holds for another customer in Acme's account, numbers the
    // carrier's staff put in Zoom that peerex does not have or never sold.
    let beta = t.app().create_customer("Beta Ltd", "BETA-001").await.unwrap().id;
    sim_patch(&t, &n(0), json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    force(&t, &n(1), "active", Some(beta)).await;
    for e164 in [UNKNOWN.to_owned(), n(10)] {
        provider_portal_import(&t, &e164).await;
        sim_patch(&t, &e164, json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    }
    t.clock().advance(time::Duration::minutes(1));

    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    assert_eq!((&c.outcome, c.listed), (&Outcome::Complete, 8), "{r:?}");
    let mut expected = vec![
        (OtherAccount, n(0)),
        (OtherAccount, n(1)),
        (NotSoldButInZoom, n(10)),
        (UnknownToPeerex, UNKNOWN.to_owned()),
    ];
    expected.sort();
    assert_eq!(cycle_findings(c), expected);
    let moved = c.findings.iter().find(|f| f.subject == n(0)).unwrap();
    assert!(moved.detail.contains("not linked"), "{}", moved.detail);
    assert!(c.findings.iter().all(|f| !f.repair.automatic()), "a person decides each");
    // Acme's own listing sees n(0) gone from it, and n(1) too; the rest only the carrier sees.
    let mut all = expected.clone();
    all.push((GoneFromZoom, n(0)));
    all.sort();
    assert_eq!(open(&t).await, all);
    let acme_only = t.app().reconcile(&req).await.unwrap();
    assert!(acme_only.cycles.iter().all(|c| c.scope != "carrier"), "no carrier app, no cycle");
    assert_eq!(
        acme_only.findings().map(|f| (f.kind, f.subject.clone())).collect::<Vec<_>>().len(),
        2,
        "{acme_only:?}"
    );

    // Put right by hand: every finding closes.
    sim_patch(&t, &n(0), json!({ "account_id": demo::ACME_ACCOUNT_ID })).await;
    force(&t, &n(1), "active", Some(acme)).await;
    for e164 in [UNKNOWN.to_owned(), n(10)] {
        sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(&e164))).await;
    }
    t.clock().advance(time::Duration::minutes(1));
    let r = carrier.reconcile(&req).await.unwrap();
    assert!(r.findings().next().is_none(), "{r:?}");
    assert!(open(&t).await.is_empty());
}

/// A link made before peerex kept the account's number learns it on the carrier cycle; while Zoom
/// will not give it, that customer's numbers are left to its own cycle (and the cycle says so), and
/// every other finding of the carrier's listing is still made.
async fn a_linked_account_whose_number_zoom_will_not_give_holds_up_no_other(db: Db) {
    use FindingKind::*;
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 3).await;
    let carrier = carrier_instance(&t);
    let req = ReconcileRequest::default();
    // Found while Acme's account number is known: one of its numbers moved to the carrier's account.
    sim_patch(&t, &n(0), json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    let r = carrier.reconcile(&req).await.unwrap();
    assert_eq!(cycle_findings(carrier_cycle(&r)), [(OtherAccount, n(0))], "{r:?}");

    // The link forgets its number (as links made before peerex kept it), and Zoom will not say it.
    let acme_account = domain::ZoomAccountId::parse(demo::ACME_ACCOUNT_ID).unwrap();
    t.store().set_link_account_number(&acme_account, "").await.unwrap();
    // The carrier's staff put a number peerex does not have in the carrier's own account.
    provider_portal_import(&t, UNKNOWN).await;
    sim_patch(&t, UNKNOWN, json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    fault(&t, json!({ "path": "/v2/users/me", "method": "GET", "status": 503, "count": 50 })).await;
    t.clock().advance(time::Duration::minutes(1));

    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    assert_eq!((&c.outcome, c.listed), (&Outcome::Complete, 4), "{r:?}");
    // Acme's numbers, in accounts no known number names, are not judged; the rest is.
    assert_eq!(cycle_findings(c), [(UnknownToPeerex, UNKNOWN.to_owned())], "{r:?}");
    assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    assert!(c.notes[0].contains(demo::ACME_ACCOUNT_ID), "{}", c.notes[0]);
    // What was found of Acme's numbers before stays open: not judged is not put right.
    let still = open(&t).await;
    assert!(still.contains(&(OtherAccount, n(0))), "{still:?}");
    assert!(still.contains(&(UnknownToPeerex, UNKNOWN.to_owned())), "{still:?}");

    // Zoom answers again: the number is learnt and kept, and Acme's numbers are judged again.
    sim_send(&t, reqwest::Method::DELETE, "/_sim/faults").await;
    t.clock().advance(time::Duration::minutes(1));
    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    let mut expected = vec![(OtherAccount, n(0)), (UnknownToPeerex, UNKNOWN.to_owned())];
    expected.sort();
    assert_eq!(cycle_findings(c), expected, "{r:?}");
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    let kept = t.store().live_link_numbers().await.unwrap();
    assert!(
        matches!(&kept[..], [(_, a, Some(n))] if a == &acme_account && !n.is_empty()),
        "{kept:?}"
    );
}

async fn the_carrier_cycle_compares_nothing_when_zoom_fails_mid_listing(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_many(&t, 700).await;
    let moved = "+15550200650"; // on the listing's third page
    sim_patch(&t, moved, json!({ "account_id": demo::CARRIER_ACCOUNT_ID })).await;
    let carrier = carrier_instance(&t);
    let req = ReconcileRequest::default();

    // The first page is served; the second fails past the cycle's patience.
    fault(&t, json!({ "path": CARRIER_PATH, "method": "GET", "delay_ms": 1, "count": 1 })).await;
    fault(&t, json!({ "path": CARRIER_PATH, "method": "GET", "status": 503, "count": 6 })).await;
    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    assert!(matches!(c.outcome, Outcome::Incomplete(_)), "{r:?}");
    assert_eq!(c.pages, 1);
    assert!(c.findings.is_empty() && c.recorded.is_none(), "{c:?}");
    assert_eq!(faults_left(&t).await, 0);
    assert!(!open(&t).await.iter().any(|(k, _)| *k == FindingKind::OtherAccount));

    // A 429 mid-listing: waited out, the page asked again; complete, and exact.
    fault(&t, json!({ "path": CARRIER_PATH, "method": "GET", "delay_ms": 1, "count": 1 })).await;
    fault(&t, json!({ "path": CARRIER_PATH, "method": "GET", "status": 429, "retry_after": 1, "count": 1 })).await;
    let r = carrier.reconcile(&req).await.unwrap();
    let c = carrier_cycle(&r);
    assert_eq!((&c.outcome, c.listed, c.pages), (&Outcome::Complete, 700, 3), "{r:?}");
    assert_eq!(cycle_findings(c), [(FindingKind::OtherAccount, moved.to_owned())]);
    assert_eq!(faults_left(&t).await, 0);
}

async fn a_long_cycle_keeps_its_lease_and_one_that_lost_it_records_nothing(db: Db) {
    let t =
        ZoomApp::spawn_tuned(db, |z| z.reconcile.lease = std::time::Duration::from_secs(60)).await;
    let acme = acme_with_many(&t, 700).await;
    let gone = "+15550200650";
    sim_send(&t, reqwest::Method::DELETE, &format!("/_sim/numbers/{}", enc(gone))).await;
    let req = ReconcileRequest { customer: Some(acme), dry_run: false };
    let (a, b) = (t.app().clone(), t.app().clone());
    let run = |a: app::App, req: ReconcileRequest| {
        tokio::spawn(async move { a.reconcile(&req).await.unwrap() })
    };

    // Pages 2 and 3 are slow; the clock moves on while the cycle waits for them.
    fault(&t, json!({ "path": PEERING, "method": "GET", "delay_ms": 1, "count": 1 })).await;
    for _ in 0..2 {
        fault(&t, json!({ "path": PEERING, "method": "GET", "delay_ms": 1500, "count": 1 })).await;
    }
    let first = run(a.clone(), req.clone());
    until_faults_left(&t, 1).await; // page 2 asked
    t.clock().advance(time::Duration::seconds(40));
    until_faults_left(&t, 0).await; // page 3 asked, after the lease was renewed
    t.clock().advance(time::Duration::seconds(30)); // past the first lease, within the renewed one
    let other = b.reconcile(&req).await.unwrap();
    assert_eq!(
        account_cycle(&other).outcome,
        Outcome::Skipped("another instance is running it now".into())
    );
    let done = first.await.unwrap();
    let c = account_cycle(&done);
    assert_eq!(c.outcome, Outcome::Complete, "{done:?}");
    assert_eq!(cycle_findings(c), [(FindingKind::GoneFromZoom, gone.to_owned())]);
    assert_eq!(c.recorded.as_ref().map(|r| r.opened), Some(1));

    // A cycle that waited on Zoom past its lease: another instance took the scope and ran it; the
    // first stops when it tries to renew and records nothing.
    fault(&t, json!({ "path": PEERING, "method": "GET", "delay_ms": 1, "count": 1 })).await;
    fault(&t, json!({ "path": PEERING, "method": "GET", "delay_ms": 1500, "count": 1 })).await;
    let late = run(a.clone(), req.clone());
    until_faults_left(&t, 0).await; // page 2 asked
    t.clock().advance(time::Duration::seconds(61));
    let other = b.reconcile(&req).await.unwrap();
    let c = account_cycle(&other);
    assert_eq!(c.outcome, Outcome::Complete, "{other:?}");
    assert_eq!(c.recorded.as_ref().map(|r| r.still_open), Some(1));
    let late = late.await.unwrap();
    let c = account_cycle(&late);
    assert!(
        matches!(&c.outcome, Outcome::Incomplete(why) if why.contains("another instance took")),
        "{late:?}"
    );
    assert!(c.recorded.is_none() && c.findings.is_empty(), "{c:?}");
    assert_eq!(open(&t).await, [(FindingKind::GoneFromZoom, gone.to_owned())]);
}

/// The customer changes `e164`'s caller ID name in Zoom, and Zoom tells peerex of it (waits until
/// every webhook the simulator sent was answered).
async fn cnam_changed_in_zoom(t: &ZoomApp, e164: &str, cnam: &str) {
    let r = Client::new()
        .put(format!("{}/_sim/numbers/{}/cnam", t.zoom.url, enc(e164)))
        .json(&json!({ "cnam": cnam }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "set the CNAM in Zoom: {}", r.status());
    for _ in 0..200 {
        let log: Value = reqwest::get(format!("{}/_sim/webhooks", t.zoom.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all = log["deliveries"].as_array().cloned().unwrap_or_default();
        if all.iter().filter(|d| d["outcome"] != "pending" && d["outcome"] != "sending").count()
            == all.len()
            && all.iter().any(|d| d.to_string().contains(cnam))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the CNAM event was not delivered");
}

async fn a_number_event_from_zoom_brings_the_accounts_cycle_forward(db: Db) {
    let t = ZoomApp::spawn(db).await;
    acme_with_active_numbers(&t, 3).await;
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert_eq!(account_cycle(&r).outcome, Outcome::Complete);
    // Six minutes on, for Zoom too (its webhooks carry its time, and peerex refuses stale ones).
    t.clock().advance(time::Duration::minutes(6));
    let r = Client::new()
        .post(format!("{}/_sim/clock/advance", t.zoom.url))
        .json(&json!({ "seconds": 360 }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "advance Zoom's clock: {}", r.status());
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert!(matches!(account_cycle(&r).outcome, Outcome::Skipped(_)), "not due for 15 minutes");

    // Zoom support re-trunks a number silently; then the customer changes another number's caller
    // ID name, and Zoom tells peerex of that.
    sim_patch(&t, &n(0), json!({ "sip_trunk_name": demo::SIP_TRUNK_2 })).await;
    cnam_changed_in_zoom(&t, &n(1), "ACME SUPPORT").await;

    let r = t.app().reconcile_scheduled().await.unwrap();
    let c = account_cycle(&r);
    assert_eq!(c.outcome, Outcome::Complete, "brought forward by the event: {r:?}");
    assert_eq!(cycle_findings(c), [(FindingKind::WrongTrunk, n(0))]);
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert!(matches!(account_cycle(&r).outcome, Outcome::Skipped(_)), "then on schedule again");

    // Events thick and fast bring a full listing forward at most once in five minutes.
    cnam_changed_in_zoom(&t, &n(2), "ACME SALES").await;
    let r = t.app().reconcile_scheduled().await.unwrap();
    assert!(matches!(account_cycle(&r).outcome, Outcome::Skipped(_)), "just listed: {r:?}");
}

/// Acme's numbers in its Zoom account, as the simulator holds them.
async fn in_acme_account(t: &ZoomApp) -> Vec<String> {
    let v: Value =
        reqwest::get(format!("{}/_sim/numbers?account_id={}", t.zoom.url, demo::ACME_ACCOUNT_ID))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["phone_number"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_person_confirms_removing_an_unsold_number_and_releasing_a_returned_one(db: Db) {
    use app::reconcile::RepairWhich;
    let t = ZoomApp::spawn(db).await;
    let (acme, _) = acme_with_active_numbers(&t, 4).await;
    force(&t, &n(0), "available", None).await; // nobody bought it, yet it is in Acme's account
    sim_send(&t, reqwest::Method::PUT, &format!("/_sim/numbers/{}/returned", enc(&n(1)))).await;
    force(&t, &n(2), "available", None).await; // sold again before the operator confirms
    provider_portal_import(&t, UNKNOWN).await;
    reconcile(&t).await;
    use FindingKind::*;
    let mut expected = vec![
        (NotSoldButInZoom, n(0)),
        (ReturnedByCustomer, n(1)),
        (NotSoldButInZoom, n(2)),
        (UnknownToPeerex, UNKNOWN.to_owned()),
    ];
    expected.sort();
    assert_eq!(open(&t).await, expected);

    // The Drift page asks a person to confirm the two, and offers nothing for the unknown number.
    let ops = operator(&t).await;
    let page = get_text(&ops, format!("{}/operator/drift", t.platform.url)).await;
    let row = |subject: &str| {
        let start = page.find(&format!("data-subject=\"{subject}\"")).unwrap();
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(row(&n(0)).contains("Confirm:"), "{}", row(&n(0)));
    assert!(row(&n(1)).contains("Confirm:"), "{}", row(&n(1)));
    assert!(testkit::hidden_value(&row(UNKNOWN), "finding").is_none(), "a person decides");

    // None of them is repaired on its own.
    let by = Actor::Operator("ops@carrier.example".into());
    let auto = RepairWhich::Automatic { customer: None };
    assert!(t.app().repair_findings(&auto, &by).await.unwrap().queued.is_empty());

    // Confirmed one by one: the unsold number leaves Zoom, the returned one is released; the
    // number sold meanwhile stays; the unknown one is never touched.
    force(&t, &n(2), "active", Some(acme)).await;
    let all =
        t.app().findings(&FindingQuery { open: Some(true), ..Default::default() }).await.unwrap();
    let ids: Vec<_> = all.iter().map(|f| f.id).collect();
    let r = t.app().repair_findings(&RepairWhich::Ids(ids), &by).await.unwrap();
    let id_of = |subject: &str| all.iter().find(|f| f.subject == subject).unwrap().id;
    let mut queued = r.queued.clone();
    queued.sort();
    let mut want = vec![id_of(&n(0)), id_of(&n(1)), id_of(&n(2))];
    want.sort();
    assert_eq!(queued, want, "{r:?}");
    let why = &r.refused.iter().find(|(id, _)| *id == id_of(UNKNOWN)).unwrap().1;
    assert!(why.contains("a person decides"), "{why}");
    assert_ne!(number(&t, &n(1)).await.state, domain::NumberState::Active, "release started");

    t.run_pending_jobs().await;
    let zoom = in_acme_account(&t).await;
    assert!(!zoom.contains(&n(0)), "the unsold number left Zoom: {zoom:?}");
    assert!(!zoom.contains(&n(1)), "the returned number was released: {zoom:?}");
    assert!(zoom.contains(&n(2)) && zoom.contains(&n(3)), "sold numbers stay: {zoom:?}");
    assert!(zoom.contains(&UNKNOWN.to_owned()), "peerex never removes what it does not know");
    let n2 = number(&t, &n(2)).await;
    assert_eq!((n2.state, n2.customer_id), (domain::NumberState::Active, Some(acme)));

    // Asked again, nothing is queued twice.
    let again = t.app().repair_findings(&RepairWhich::Ids(want.clone()), &by).await.unwrap();
    assert!(again.queued.is_empty(), "{again:?}");

    t.clock().advance(time::Duration::minutes(1));
    reconcile(&t).await;
    assert_eq!(open(&t).await, vec![(UnknownToPeerex, UNKNOWN.to_owned())]);
}
