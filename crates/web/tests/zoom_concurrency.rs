//! Talking to Zoom safely when several workers or instances share one database: webhook replays and
//! late removals, the refresh token's lease, job leases kept alive by a heartbeat and handed back on
//! a clean stop, and numbers never pushed without the customer's own trunk. Each "instance" is an
//! `App` with its own Zoom wiring (and so its own memory) over the one database; on SQLite and
//! PostgreSQL.

use app::App;
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
    a_replayed_or_late_removal_never_undoes_a_reinstall,
    a_refresh_slower_than_30_seconds_keeps_its_lease,
    a_refresh_whose_caller_is_dropped_is_stored_all_the_same,
    refreshed_tokens_outlast_a_database_that_refuses_them_for_a_while,
    a_removal_not_recorded_is_taken_when_zoom_sends_it_again,
    an_install_the_database_could_not_link_can_be_confirmed_again,
    authorizing_again_survives_a_moment_of_zoom_failures,
    a_customer_without_a_trunk_is_not_pushed_and_operators_see_why,
    a_slow_call_keeps_its_job_and_a_clean_stop_hands_it_back,
);

const ADMIN: &str = "admin@acme.example";
const PEERING: &str = "/v2/number_management/peering_numbers";

/// Acme with its admin, `ordered` numbers ordered from +15550100000, on the demo's trunk if `trunk`.
async fn acme(t: &ZoomApp, ordered: u32, trunk: bool) -> CustomerId {
    let app = t.app();
    let c = app.create_customer("Acme Corp", "ACME-001").await.unwrap();
    if trunk {
        t.bind_demo_trunk(c.id).await;
    }
    app.create_user(ADMIN, PASSWORD, Role::CustomerAdmin, Some(c.id)).await.unwrap();
    let by = Actor::System("test".into());
    app.import_range("+15550100000-+15550100999", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    if ordered > 0 {
        app.create_order(c.id, OrderPick { count: ordered, ..Default::default() }, &[], &by)
            .await
            .unwrap();
    }
    c.id
}

/// The platform beside a simulator whose refresh tokens stop working once exchanged.
async fn rotating_at_once(db: Db) -> ZoomApp {
    let options = testkit::sim::Options {
        control_api: true,
        refresh_rotation: testkit::sim::RefreshRotation::Immediate,
        ..Default::default()
    };
    ZoomApp::spawn_full(db, options, |_| {}).await
}

/// Acme linked, its three numbers pushed and active in Zoom.
async fn acme_active(db: Db) -> (ZoomApp, CustomerId) {
    let t = ZoomApp::spawn(db).await;
    let c = acme(&t, 3, true).await;
    t.link_acme(ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(states(&t, c).await, vec![NumberState::Active; 3]);
    (t, c)
}

/// Another instance on the same database: its own Zoom wiring and memory, the same store and
/// token keys (as every instance of one deployment has).
fn another_instance(t: &ZoomApp) -> App {
    instance_with_timeout(t, Duration::from_secs(2))
}

/// As [`another_instance`], with Zoom's calls allowed to take `timeout`.
fn instance_with_timeout(t: &ZoomApp, timeout: Duration) -> App {
    let mut setup = testkit::zoom_setup(&t.zoom.url, &t.platform.url);
    let url = |s: String| s.parse::<url::Url>().unwrap();
    let clock = t.clock().clone();
    setup.client = zoom::Client::with_clock(
        zoom::Config {
            oauth_base: url(t.zoom.url.clone()),
            api_base: url(t.zoom.api_base()),
            client_id: demo::CLIENT_ID.into(),
            client_secret: demo::CLIENT_SECRET.into(),
            redirect_uri: url(format!("{}/zoom/oauth/callback", t.platform.url)),
            timeout,
        },
        move || clock.now(),
    )
    .unwrap();
    setup.keys = t.app().zoom.as_ref().unwrap().keys.clone();
    t.app().clone().with_zoom(setup)
}

/// Waits (up to 10 s) until the simulator has used up every fault.
async fn faults_spent(t: &ZoomApp) {
    let start = Instant::now();
    while !faults_left(t).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the call never reached Zoom");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The faults the simulator has not used up yet.
async fn faults_left(t: &ZoomApp) -> Vec<Value> {
    let left: Value =
        reqwest::get(format!("{}/_sim/faults", t.zoom.url)).await.unwrap().json().await.unwrap();
    left["faults"].as_array().cloned().unwrap_or_default()
}

async fn fault(t: &ZoomApp, f: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", t.zoom.url))
        .json(&f)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED, "{f}");
}

async fn states(t: &ZoomApp, c: CustomerId) -> Vec<NumberState> {
    let q = domain::search::NumberQuery { customer_id: Some(c), limit: 500, ..Default::default() };
    t.app().search_numbers(&q).await.unwrap().into_iter().map(|n| n.state).collect()
}

async fn in_zoom(t: &ZoomApp) -> Vec<Value> {
    let v: Value =
        reqwest::get(format!("{}/_sim/numbers?account_id={}", t.zoom.url, demo::ACME_ACCOUNT_ID))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["numbers"].as_array().cloned().unwrap_or_default()
}

/// `app_deauthorized` for a removal at `at`, signed as Zoom signs it when sent at `sent`.
fn deauthorization(
    at: time::OffsetDateTime,
    sent: time::OffsetDateTime,
) -> (String, String, Vec<u8>) {
    let body = json!({
        "event": "app_deauthorized",
        "event_ts": at.unix_timestamp_nanos() / 1_000_000,
        "payload": {
            "account_id": demo::ACME_ACCOUNT_ID,
            "user_id": "acmeAdmin",
            "client_id": demo::CLIENT_ID,
            "deauthorization_time": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
        }
    })
    .to_string()
    .into_bytes();
    let ts = sent.unix_timestamp().to_string();
    let signature = zoom::webhook::signature(demo::SECRET_TOKEN, &ts, &body);
    (ts, signature, body)
}

/// The app is removed (the webhook reaches one instance) and installed again. Then: the same delivery
/// replayed to another instance, or to the first with the signature's hex re-cased, is refused; and
/// Zoom's re-sending of the old removal (signed afresh) is ignored, being older than the install.
/// The fresh install stays linked and its numbers active throughout.
async fn a_replayed_or_late_removal_never_undoes_a_reinstall(db: Db) {
    let (t, c) = acme_active(db).await;
    let (one, two) = (t.app().clone(), another_instance(&t));

    let removed_at = t.clock().now();
    let (ts, sig, body) = deauthorization(removed_at, removed_at);
    match one.zoom_webhook(&ts, &sig, &body).await.unwrap() {
        Ok(app::onboarding::WebhookAnswer::AppRemoved { suspended: 3, .. }) => {}
        other => panic!("the removal suspends the three numbers: {other:?}"),
    }
    assert_eq!(states(&t, c).await, vec![NumberState::Suspended; 3]);

    // Installed again, a moment later.
    t.clock().advance(time::Duration::seconds(1));
    t.link_acme(ADMIN).await;
    t.run_pending_jobs().await;
    assert_eq!(states(&t, c).await, vec![NumberState::Active; 3]);

    let upper = format!("v0={}", sig.trim_start_matches("v0=").to_uppercase());
    for (instance, signature) in [(&two, &sig), (&one, &upper), (&two, &upper)] {
        match instance.zoom_webhook(&ts, signature, &body).await.unwrap() {
            Err(app::onboarding::WebhookRefused::Replayed) => {}
            other => panic!("a replay is refused: {other:?}"),
        }
    }
    // Zoom sends the old removal again, signed now (a retry after a lost answer): a new delivery of
    // an event older than the install.
    let resent = deauthorization(removed_at, t.clock().now() + time::Duration::seconds(2));
    match two.zoom_webhook(&resent.0, &resent.1, &resent.2).await.unwrap() {
        Ok(app::onboarding::WebhookAnswer::Ignored(why)) => {
            assert!(why.contains("installed again"), "{why}")
        }
        other => panic!("an old removal is ignored: {other:?}"),
    }
    assert_eq!(states(&t, c).await, vec![NumberState::Active; 3]);
    let link = t.app().zoom_link(c).await.unwrap().unwrap();
    assert_eq!(link.state, domain::onboarding::LinkState::Linked);
    assert_eq!(in_zoom(&t).await.len(), 3);
}

/// Zoom's timeout is configured at 60 s. One worker's refresh is under way (Zoom holds the answer)
/// while 40 s pass on the platform's clock; a second worker then needs a fresh token. It waits for
/// the first's result instead of spending the same rotating refresh token (Zoom would answer
/// `invalid_grant` to one of them).
async fn a_refresh_slower_than_30_seconds_keeps_its_lease(db: Db) {
    let t = rotating_at_once(db).await;
    let c = acme(&t, 0, true).await;
    t.link_acme(ADMIN).await;
    let link = t.app().zoom_link(c).await.unwrap().unwrap();

    let slow = |t: &ZoomApp| instance_with_timeout(t, Duration::from_secs(60));
    let (first, second) = (slow(&t), slow(&t));
    let stale = first.access_token(&link, None).await.unwrap();

    fault(&t, json!({"path": "/oauth/token", "method": "POST", "delay_ms": 1500, "count": 1}))
        .await;
    let refreshing = {
        let (first, link, stale) = (first.clone(), link.clone(), stale.clone());
        tokio::spawn(async move { first.access_token(&link, Some(&stale)).await })
    };
    // The delay leaves the simulator's list when the first worker's request arrives.
    faults_spent(&t).await;
    t.clock().advance(time::Duration::seconds(40));
    let waited = second.access_token(&link, Some(&stale)).await;
    let refreshed = refreshing.await.unwrap();
    let refreshed = refreshed.expect("the first worker's refresh");
    let waited = waited.expect("the second worker waits for the first's refresh");
    assert_ne!(refreshed, stale);
    assert_eq!(waited, refreshed, "both use the one refreshed token");
}

/// The database refuses the writes `on` names (`UPDATE ON table`, `UPDATE OF column ON table`,
/// `INSERT ON table`) until [`allow`]: a trigger, standing in for a lost connection or a failover.
async fn refuse(t: &ZoomApp, db: Db, on: &str) {
    let sql = match db {
        Db::Sqlite => format!(
            "CREATE TABLE refuse (x INTEGER); INSERT INTO refuse VALUES (1);
             CREATE TRIGGER refuse BEFORE {on} WHEN EXISTS (SELECT 1 FROM refuse)
             BEGIN SELECT RAISE(ABORT, 'injected: refused'); END;"
        ),
        Db::Postgres => format!(
            "CREATE TABLE refuse (x INTEGER); INSERT INTO refuse VALUES (1);
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF EXISTS (SELECT 1 FROM refuse) THEN
               RAISE EXCEPTION 'injected: refused'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse BEFORE {on} FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    };
    testkit::execute_sql(&t.platform.db_url, &sql).await;
}

async fn allow(t: &ZoomApp) {
    testkit::execute_sql(&t.platform.db_url, "DELETE FROM refuse").await;
}

/// Zoom rotating refresh tokens at once, a linked Acme, and the access token its link has now.
async fn linked_with_rotation(db: Db) -> (ZoomApp, domain::onboarding::ZoomLink, String) {
    let t = rotating_at_once(db).await;
    let c = acme(&t, 0, true).await;
    t.link_acme(ADMIN).await;
    let link = t.app().zoom_link(c).await.unwrap().unwrap();
    let token = t.app().access_token(&link, None).await.unwrap();
    (t, link, token)
}

/// What the link holds is what Zoom holds: a refresh forced past `access` succeeds (Zoom takes the
/// stored refresh token) and the link is not waiting for the customer.
async fn assert_link_refreshes(t: &ZoomApp, link: &domain::onboarding::ZoomLink, access: &str) {
    let again = another_instance(t).access_token(link, Some(access)).await;
    let again = again.expect("the stored refresh token is the one Zoom holds");
    assert_ne!(again, access);
    let now = t.app().zoom_link(link.customer_id).await.unwrap().unwrap();
    assert_eq!(now.reauth_needed_at, None, "{:?}", now.reauth_reason);
}

/// A worker starts a refresh and is dropped (its job's lease lost, or a stop) after Zoom has
/// served it but before its answer arrives. Zoom has spent the old refresh token; the new pair
/// still reaches the database, and the next worker uses it.
async fn a_refresh_whose_caller_is_dropped_is_stored_all_the_same(db: Db) {
    let (t, link, stale) = linked_with_rotation(db).await;
    fault(&t, json!({"path": "/oauth/token", "method": "POST", "answer_delay_ms": 1000})).await;
    // The caller is dropped once Zoom has served its refresh, before the answer arrives.
    tokio::select! {
        r = t.app().access_token(&link, Some(&stale)) => panic!("answered before it was dropped: {r:?}"),
        () = faults_spent(&t) => {}
    }
    // A stop now (the workers aborted, as this caller was) waits for the refresh to be stored.
    assert!(t.app().finish_unfinished(Duration::from_secs(5)).await, "the refresh ended");

    let next = another_instance(&t).access_token(&link, Some(&stale)).await;
    let next = next.expect("the dropped caller's refresh, stored");
    assert_ne!(next, stale);
    assert_link_refreshes(&t, &link, &next).await;
}

/// The database refuses to store the refreshed pair for a while (here a trigger; in life a lost
/// connection, a failover): the refresh keeps trying while its lease lasts, instead of dropping a
/// pair that exists nowhere else.
async fn refreshed_tokens_outlast_a_database_that_refuses_them_for_a_while(db: Db) {
    let (t, link, stale) = linked_with_rotation(db).await;
    refuse(&t, db, "UPDATE OF generation ON zoom_tokens").await;
    let generation = || async {
        t.platform.store.zoom_tokens(link.id).await.unwrap().expect("tokens").generation
    };
    let before = generation().await;
    // Marks the refresh's arrival at Zoom.
    fault(&t, json!({"path": "/oauth/token", "method": "POST", "delay_ms": 1})).await;
    let refreshing = {
        let (app, link, stale) = (t.app().clone(), link.clone(), stale.clone());
        tokio::spawn(async move { app.access_token(&link, Some(&stale)).await })
    };
    faults_spent(&t).await;
    // Long enough for the answer and several refused stores.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(generation().await, before, "the database refused the new pair");
    assert!(!refreshing.is_finished(), "the refresh gave up while the database refused it");
    allow(&t).await;
    let refreshed = refreshing.await.unwrap().expect("stored once the database took it");
    assert_ne!(refreshed, stale);
    assert_link_refreshes(&t, &link, &refreshed).await;
}

/// The app is removed while the database refuses to record it: Zoom's delivery fails (no 2xx)
/// and nothing changed; Zoom sends it again and this time it suspends the numbers. Zoom's retries
/// are taken to be signed afresh (then they were never refused as replays); this is the other
/// case, a retry with the same timestamp and signature: the first delivery was remembered against
/// replays, and must not count as seen when it was not acted on.
async fn a_removal_not_recorded_is_taken_when_zoom_sends_it_again(db: Db) {
    let (t, c) = acme_active(db).await;

    refuse(&t, db, "UPDATE ON zoom_links").await;
    let removed_at = t.clock().now();
    let (ts, sig, body) = deauthorization(removed_at, removed_at);
    let failed = t.app().zoom_webhook(&ts, &sig, &body).await;
    assert!(failed.is_err(), "the database refused it: {failed:?}");
    assert_eq!(states(&t, c).await, vec![NumberState::Active; 3]);

    allow(&t).await;
    match another_instance(&t).zoom_webhook(&ts, &sig, &body).await.unwrap() {
        Ok(app::onboarding::WebhookAnswer::AppRemoved { suspended: 3, .. }) => {}
        other => panic!("Zoom's retry suspends the three numbers: {other:?}"),
    }
    assert_eq!(states(&t, c).await, vec![NumberState::Suspended; 3]);
    // Acted on now: a replay is refused.
    match t.app().zoom_webhook(&ts, &sig, &body).await.unwrap() {
        Err(app::onboarding::WebhookRefused::Replayed) => {}
        other => panic!("a replay is refused: {other:?}"),
    }
}

/// The admin confirms the install while the database cannot link it: nothing is linked and the
/// install waits again (its tokens are the only copy), so confirming again links it.
async fn an_install_the_database_could_not_link_can_be_confirmed_again(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let c = acme(&t, 0, true).await;
    let b = testkit::install_acme_at(&t.zoom.url, &t.platform.url, ADMIN, PASSWORD).await;
    refuse(&t, db, "INSERT ON zoom_links").await;
    let r = testkit::confirm_install(&b, &t.platform.url).await;
    assert_ne!(r.headers().get("location").map(|l| l.to_str().unwrap()), Some("/portal"));
    assert!(t.app().zoom_link(c).await.unwrap().is_none(), "nothing linked");
    allow(&t).await;
    let r = testkit::confirm_install(&b, &t.platform.url).await;
    let to = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    assert_eq!(to.as_deref(), Some("/portal"), "linked: {}", r.text().await.unwrap_or_default());
    let link = t.app().zoom_link(c).await.unwrap().expect("linked");
    assert_eq!(link.state, domain::onboarding::LinkState::Linked);
    // Its tokens work.
    t.app().access_token(&link, None).await.expect("a token");
}

/// The admin authorizes the app again for a linked account (Zoom revokes the link's old tokens)
/// while Zoom's `users/me` fails twice: the callback tries again instead of dropping the new pair,
/// and the link works on it.
async fn authorizing_again_survives_a_moment_of_zoom_failures(db: Db) {
    let t = rotating_at_once(db).await;
    let c = acme(&t, 0, true).await;
    t.link_acme(ADMIN).await;
    let link = t.app().zoom_link(c).await.unwrap().unwrap();
    let before = t.app().access_token(&link, None).await.unwrap();

    fault(&t, json!({"path": "/v2/users/me", "status": 500, "count": 2})).await;
    testkit::install_acme_at(&t.zoom.url, &t.platform.url, ADMIN, PASSWORD).await;
    assert!(faults_left(&t).await.is_empty(), "users/me failed twice");
    let link = t.app().zoom_link(c).await.unwrap().unwrap();
    assert_eq!(link.state, domain::onboarding::LinkState::Linked);
    let renewed = t.app().access_token(&link, None).await.unwrap();
    assert_ne!(renewed, before, "the link holds the new authorization's tokens");
    assert_link_refreshes(&t, &link, &renewed).await;
}

/// A customer with no Zoom trunk of its own: its push job fails with the reason and Zoom gets
/// nothing; operators see why on the Jobs page; once bound to a trunk, Retry pushes the numbers on it.
async fn a_customer_without_a_trunk_is_not_pushed_and_operators_see_why(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let c = acme(&t, 3, false).await;
    t.link_acme(ADMIN).await;
    t.run_pending_jobs().await;
    assert!(in_zoom(&t).await.is_empty(), "nothing pushed without a trunk");
    assert_eq!(states(&t, c).await, vec![NumberState::Provisioning; 3]);
    let failed = t.app().jobs(Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].last_error.as_deref(), Some(app::jobs::NO_TRUNK));
    let (op, csrf) = t.platform.operator_browser(testkit::ADMIN_EMAIL).await;
    let page = op
        .get(format!("{}/operator/jobs", t.platform.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("the customer has no Zoom trunk"), "{page}");

    t.bind_demo_trunk(c).await;
    let r = op
        .post(format!("{}/operator/jobs/{}/retry", t.platform.url, failed[0].id))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    t.run_pending_jobs().await;
    assert_eq!(states(&t, c).await, vec![NumberState::Active; 3]);
    let zoom = in_zoom(&t).await;
    assert_eq!(zoom.len(), 3);
    assert!(zoom.iter().all(|n| n["sip_trunk_name"] == demo::SIP_TRUNK), "{zoom:?}");
}

/// The job lease is 3 s (testkit), Zoom's timeout 90 s. Zoom holds a push for 5 s: the worker's heartbeat keeps its job,
/// so another instance's idle workers never take it and Zoom sees one POST. Then, with Zoom holding
/// the next push for a minute, a clean stop hands that job back at once and the other instance
/// finishes it without waiting for the lease.
async fn a_slow_call_keeps_its_job_and_a_clean_stop_hands_it_back(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let c = acme(&t, 200, true).await;
    fault(&t, json!({"path": PEERING, "method": "POST", "delay_ms": 5000, "count": 1})).await;
    t.link_acme(ADMIN).await;
    // Zoom's calls may take 90 s here.
    let one = instance_with_timeout(&t, Duration::from_secs(90)).spawn_workers();
    let two = instance_with_timeout(&t, Duration::from_secs(90)).spawn_workers();
    let deadline = Instant::now() + Duration::from_secs(30);
    while states(&t, c).await != vec![NumberState::Active; 200] {
        assert!(Instant::now() < deadline, "the push never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let push = t
        .app()
        .jobs(None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.kind == domain::onboarding::JobKind::PushNumbers)
        .unwrap();
    assert_eq!((push.state, push.attempts), (JobState::Done, 1), "taken once: {push:?}");
    drop(two);

    // More numbers; Zoom holds their push for a minute while instance one's worker waits.
    let by = Actor::System("test".into());
    fault(&t, json!({"path": PEERING, "method": "POST", "delay_ms": 60_000, "count": 1})).await;
    t.app()
        .order_numbers(c, OrderPick { count: 10, ..Default::default() }, &[], &by)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let running = t.app().jobs(Some(JobState::Running), 10).await.unwrap();
        if let Some(j) =
            running.into_iter().find(|j| j.kind == domain::onboarding::JobKind::PushNumbers)
        {
            break j;
        }
        assert!(Instant::now() < deadline, "the second push never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // the POST is on its way
    assert_eq!(one.shutdown().await, 1, "one job handed back");
    let back = t.app().jobs(Some(JobState::Pending), 10).await.unwrap();
    let back = back.iter().find(|j| j.id == held.id).expect("pending again");
    assert_eq!((back.lease_owner.as_deref(), back.attempts), (None, 0), "{back:?}");
    let stopped = Instant::now();
    let _two = another_instance(&t).spawn_workers();
    while states(&t, c).await.iter().filter(|s| **s == NumberState::Active).count() < 210 {
        assert!(stopped.elapsed() < Duration::from_secs(2), "taken at once, not after the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
