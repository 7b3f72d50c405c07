//! Calls during a port-out, with the routing lookup API following the database, on SQLite and
//! PostgreSQL: before the due date the numbers still route; from the due date they are refused
//! (404 `released`), also the one Zoom keeps because it is assigned to a user there.

use domain::auth::Role;
use domain::customer::OrderPick;
use domain::number::NumberAttrs;
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{Actor, NumberState, PhoneNumber};
use routing::RoutingConfig;
use serde_json::Value;
use std::time::{Duration, Instant};
use testkit::{on_both, Db, ZoomApp, PASSWORD};

on_both!(a_port_out_routes_until_its_due_date_and_is_refused_from_then);

const A: &str = "+15550100000";
const B: &str = "+15550100001";

async fn lookup(http: std::net::SocketAddr, e164: &str) -> Value {
    let r =
        reqwest::get(format!("http://{http}/route?to={}", e164.replace('+', "%2B"))).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn state(t: &ZoomApp, e164: &str) -> NumberState {
    t.store().get_number_by_e164(&PhoneNumber::parse(e164).unwrap()).await.unwrap().unwrap().state
}

async fn a_port_out_routes_until_its_due_date_and_is_refused_from_then(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let app = t.app();
    let by = Actor::System("test".into());
    let acme = app.create_customer("Acme Corp", "ACME-1").await.unwrap();
    t.bind_demo_trunk(acme.id).await;
    app.create_user("admin@acme.example", PASSWORD, Role::CustomerAdmin, Some(acme.id))
        .await
        .unwrap();
    app.import_range("+15550100000-+15550100009", &NumberAttrs::default(), &by, false, &|_| {})
        .await
        .unwrap();
    app.create_order(acme.id, OrderPick { count: 2, ..Default::default() }, &[], &by)
        .await
        .unwrap();
    t.link_acme("admin@acme.example").await;
    t.run_pending_jobs().await;
    let trunk = ZoomTrunk::parse(
        "zoom-a",
        &["sip:zoom-a.example:5061;transport=tls"],
        NumberingRule::nanp(),
        app.now(),
    )
    .unwrap();
    t.store().insert_trunk(&trunk).await.unwrap();
    t.store()
        .set_customer_trunk(acme.id, Some(&domain::trunk::TrunkName::parse("zoom-a").unwrap()))
        .await
        .unwrap();
    let config = RoutingConfig { http_listen: "127.0.0.1:0".into(), ..Default::default() };
    let started = routing::start(app.routing_source(), &config).await.unwrap();
    assert!(routing::wait_ready(&started.routing, Duration::from_secs(10)).await);
    let http = started.http.unwrap();

    // A is assigned to a user in Zoom: Zoom will keep it.
    let r = reqwest::Client::new()
        .put(format!("{}/_sim/numbers/%2B15550100000/assignment", t.zoom.url))
        .json(&serde_json::json!({ "user": testkit::sim::demo::ACME_USER_EMAIL }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let due = app.now().date().next_day().unwrap();
    app.start_port_out(
        acme.id,
        &[A.into(), B.into()],
        "Other Telco",
        due,
        &Actor::Operator("ops@carrier.example".into()),
    )
    .await
    .unwrap();

    // Before the due date: both route, even after the sweep has looked.
    app.release_tick().await.unwrap();
    for n in [A, B] {
        assert_eq!(state(&t, n).await, NumberState::ReleasePending);
        let body = lookup(http, n).await;
        assert_eq!(
            (body["decision"].as_str(), body["status"].as_u64()),
            (Some("route"), Some(302)),
            "{n}: {body}"
        );
    }

    // From the due date: both are refused, B removed from Zoom, A kept by Zoom but not routed.
    t.clock().advance_to(due.midnight().assume_utc());
    app.release_tick().await.unwrap();
    t.run_pending_jobs().await;
    assert_eq!(state(&t, A).await, NumberState::Releasing);
    assert_eq!(state(&t, B).await, NumberState::Aging);
    // The snapshot follows the changes; the bound only keeps a lost change from hanging the test.
    let t0 = Instant::now();
    loop {
        let (a, b) = (lookup(http, A).await, lookup(http, B).await);
        if a["status"] == 404 && b["status"] == 404 {
            assert_eq!(
                (a["reason"].as_str(), b["reason"].as_str()),
                (Some("released"), Some("released"))
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "not refused: A {a}, B {b}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
