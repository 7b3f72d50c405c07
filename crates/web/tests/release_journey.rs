//! Releasing numbers with the customer's approval (issue 6), end to end over real sockets with the
//! Zoom simulator, on SQLite and PostgreSQL: the carrier starts a release, the customer's admin sees
//! the numbers on the Wait for Release tab with what Zoom says of each, ticks them and clicks Release
//! numbers; the assigned one is refused with the Unbind message, the other released; after Unbind in
//! Zoom it is released too, and the quarantine ends on an injected clock.

mod release_support;

use app::release::Selection;
use domain::auth::Role;
use domain::release::UNBIND_MESSAGE;
use domain::{Actor, NumberState};
use release_support::*;
use reqwest::StatusCode;
use std::time::Duration;
use testkit::{hidden_value, Db, ZoomApp, PASSWORD};

on_both!(
    assigned_number_is_refused_and_the_other_released_then_unbind_and_release_again,
    another_customers_number_or_a_forged_form_changes_nothing,
    a_withdrawn_release_returns_the_numbers_to_active,
    quarantine_ends_by_itself_on_the_injected_clock,
    a_release_waiting_when_the_app_is_removed_waits_again_after_the_reinstall,
);

const A: &str = "+15550100000";
const B: &str = "+15550100001";
const C: &str = "+15550100002";

async fn start(t: &ZoomApp, c: domain::CustomerId, numbers: &[&str]) -> domain::release::Release {
    let by = Actor::Operator("ops@carrier.example".into());
    t.app()
        .start_release(
            c,
            Selection::List(numbers.iter().map(|s| s.to_string()).collect()),
            "contract change",
            &by,
        )
        .await
        .unwrap()
}

async fn assigned_number_is_refused_and_the_other_released_then_unbind_and_release_again(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    assign_in_zoom(&t, A).await;

    // The carrier starts the release: the numbers wait for the customer; calls still route.
    let r = start(&t, acme, &[A, B]).await;
    assert_eq!(r.waiting, 2);
    assert_eq!(
        state_of(&t, A).await,
        (NumberState::ReleasePending, Some("contract change".into()))
    );
    assert_eq!(state_of(&t, C).await.0, NumberState::Active, "not in the release");

    // Every portal page tells the admin (a banner it loads).
    let home = get_text(&portal, format!("{}/portal", t.platform.url)).await;
    assert!(home.contains("hx-get=\"/portal/releases/waiting\""), "{home}");
    let banner = get_text(&portal, format!("{}/portal/releases/waiting", t.platform.url)).await;
    assert!(banner.contains("2 numbers wait for your approval to release"), "{banner}");

    // Wait for Release: both listed, with what Zoom says of each, asked as the page loads.
    let page = wait_page(&t, &portal).await;
    assert!(page.contains("Checked with Zoom at"), "{page}");
    assert!(row(&page, A).contains("Assigned to a user (seen"), "{}", row(&page, A));
    assert!(row(&page, B).contains("Unassigned (seen"), "{}", row(&page, B));
    assert!(
        row(&page, A).contains("Waiting for your approval")
            && row(&page, A).contains("contract change")
    );
    assert!(!page.contains(&format!("data-number=\"{C}\"")), "an active number is not waiting");
    assert!(page.contains("Release numbers"));

    // Tick both, Release numbers: both releasing, and the page refreshes itself while Zoom works.
    let (status, location) = release_numbers(&t, &portal, &[A, B]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/portal/releases"));
    assert_eq!(state_of(&t, A).await.0, NumberState::Releasing);
    let page = wait_page(&t, &portal).await;
    assert!(
        row(&page, B).contains("Being removed from Zoom")
            && page.contains("hx-trigger=\"every 2s\""),
        "{page}"
    );
    assert!(tick_value(&page, B).is_none(), "a releasing number cannot be ticked again");

    // The job: one released, the assigned one refused with the Unbind message.
    let runs = t.run_pending_jobs().await;
    assert!(runs.iter().any(|r| r.kind == domain::onboarding::JobKind::ReleaseNumbers), "{runs:?}");
    assert_eq!(state_of(&t, A).await, (NumberState::ReleasePending, Some(UNBIND_MESSAGE.into())));
    let b = number(&t, B).await;
    assert_eq!((b.state, b.customer_id), (NumberState::Aging, None));
    let until = b.aging_until.expect("quarantine end");
    let days = (until - t.app().now()).whole_days();
    assert!((89..=90).contains(&days), "quarantine of 90 days by default: {days}");
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, B).contains("Released"), "{}", row(&page, B));
    assert!(
        row(&page, A).contains(&format!("Not released: {UNBIND_MESSAGE}")),
        "{}",
        row(&page, A)
    );
    assert!(!page.contains("hx-trigger=\"every 2s\""), "stops refreshing when done");
    let in_zoom = zoom_numbers(&t).await;
    assert!(in_zoom.contains(&A.to_owned()) && !in_zoom.contains(&B.to_owned()), "{in_zoom:?}");

    // The customer's numbers in the portal: the released one is gone.
    let home = get_text(&portal, format!("{}/portal", t.platform.url)).await;
    assert!(home.contains(A) && home.contains(C) && !home.contains(B), "{home}");
    assert!(home.contains(UNBIND_MESSAGE), "the reason shows on the customer's numbers too");
    // And in the management portal: the released one gone from the customer, the assigned one still there.
    let ops = operator(&t).await;
    let numbers =
        get_text(&ops, format!("{}/operator/numbers?customer={acme}", t.platform.url)).await;
    assert!(numbers.contains(A) && numbers.contains(C) && !numbers.contains(B), "{numbers}");

    // Unbind in Zoom, back to the portal: it shows Unassigned; release it again.
    unbind_in_zoom(&t, A).await;
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains("Unassigned (seen"), "{}", row(&page, A));
    let (status, _) = release_numbers(&t, &portal, &[A]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    t.run_pending_jobs().await;
    assert_eq!(state_of(&t, A).await.0, NumberState::Aging);
    let page = wait_page(&t, &portal).await;
    assert!(row(&page, A).contains("Released") && row(&page, B).contains("Released"), "{page}");
    assert!(!page.contains("Release numbers</button>"), "nothing left to tick");
    assert_eq!(zoom_numbers(&t).await, vec![C.to_owned()]);
    let banner = get_text(&portal, format!("{}/portal/releases/waiting", t.platform.url)).await;
    assert!(!banner.contains("wait for your approval") && banner.contains("hidden"), "{banner}");

    // The audit trail tells the story, and the release's counts add up.
    let a = number(&t, A).await;
    let trail: Vec<_> = t
        .app()
        .number_detail(a.id)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|e| (e.to, e.actor, e.reason.unwrap_or_default()))
        .collect();
    use NumberState::*;
    let states: Vec<_> = trail.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        states,
        vec![
            Available,
            Reserved,
            Provisioning,
            Active,
            ReleasePending,
            Releasing,
            ReleasePending,
            Releasing,
            Aging
        ]
    );
    assert_eq!(trail[4].1, "operator:ops@carrier.example");
    assert_eq!(trail[5].1, format!("customer:{ACME_ADMIN}"));
    assert_eq!(trail[6].2, UNBIND_MESSAGE);
    let (release, lines) = t.app().release(r.id).await.unwrap();
    assert_eq!((release.released, release.open()), (2, 0));
    assert!(lines.iter().all(|l| l.state == domain::release::LineState::Released));
    testkit::assert_told(t.app(), &["release.started", "release.approved"]).await;
    let outcomes: Vec<String> = testkit::told(t.app())
        .await
        .into_iter()
        .filter(|(k, _)| k == "release.number_finished")
        .map(|(_, d)| d["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        outcomes.iter().any(|o| o == "refused") && outcomes.iter().any(|o| o == "released"),
        "{outcomes:?}"
    );
}

async fn another_customers_number_or_a_forged_form_changes_nothing(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 2).await;
    start(&t, acme, &[A]).await;
    let page = wait_page(&t, &portal).await;
    let a_id = tick_value(&page, A).unwrap();
    let csrf = hidden_value(&page, "csrf").unwrap();

    // Another customer's admin, signed in to the portal, posts Acme's number: 404, nothing changes.
    let globex = t.app().create_customer("Globex", "GLOBEX-1").await.unwrap();
    t.app()
        .create_user("admin@globex.example", PASSWORD, Role::CustomerAdmin, Some(globex.id))
        .await
        .unwrap();
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = get_text(&other, format!("{}/portal/login", t.platform.url)).await;
    let lc = hidden_value(&login, "csrf").unwrap();
    other
        .post(format!("{}/portal/login", t.platform.url))
        .form(&[("email", "admin@globex.example"), ("password", PASSWORD), ("csrf", &lc)])
        .send()
        .await
        .unwrap();
    let theirs = get_text(&other, format!("{}/portal/releases", t.platform.url)).await;
    assert!(
        theirs.contains("No numbers are waiting for release") && !theirs.contains(A),
        "{theirs}"
    );
    let other_csrf = hidden_value(&theirs, "csrf").unwrap();
    let r = other
        .post(format!("{}/portal/releases", t.platform.url))
        .form(&[("csrf", other_csrf.as_str()), ("number", a_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(state_of(&t, A).await.0, NumberState::ReleasePending);

    // Acme's own admin: an active number's id, an unknown id or garbage among the ticks → 404, nothing changes.
    let b_id = number(&t, B).await.id.to_string();
    for bad in [b_id.as_str(), "0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "not-an-id"] {
        let r = portal
            .post(format!("{}/portal/releases", t.platform.url))
            .form(&[("csrf", csrf.as_str()), ("number", a_id.as_str()), ("number", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(state_of(&t, A).await.0, NumberState::ReleasePending, "{bad}");
    }
    assert_eq!(state_of(&t, B).await.0, NumberState::Active);

    // Without the session's CSRF token: refused, nothing changes.
    let r = portal
        .post(format!("{}/portal/releases", t.platform.url))
        .form(&[("csrf", "forged"), ("number", a_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Not signed in: to the sign-in page.
    let anonymous =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = anonymous
        .post(format!("{}/portal/releases", t.platform.url))
        .form(&[("csrf", csrf.as_str()), ("number", a_id.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() && r.headers()["location"] == "/portal/login");
    // Nothing ticked: said so.
    let r = portal
        .post(format!("{}/portal/releases", t.platform.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("tick at least one number"));
    assert_eq!(state_of(&t, A).await.0, NumberState::ReleasePending);
    assert!(
        t.run_pending_jobs()
            .await
            .iter()
            .all(|r| r.kind != domain::onboarding::JobKind::ReleaseNumbers),
        "no release job was queued"
    );
}

async fn a_withdrawn_release_returns_the_numbers_to_active(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    let r = start(&t, acme, &[A, B]).await;
    // Starting again for a number already waiting is refused, naming it; nothing changes.
    let by = Actor::Operator("ops@carrier.example".into());
    let e = t
        .app()
        .start_release(acme, Selection::List(vec![B.into(), C.into()]), "again", &by)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{B} is release_pending")), "{e}");
    assert_eq!(state_of(&t, C).await.0, NumberState::Active);

    assert_eq!(t.app().withdraw_release(r.id, &by).await.unwrap(), 2);
    assert_eq!(
        states(&t, acme).await.iter().map(|(_, s, r)| (*s, r.clone())).collect::<Vec<_>>(),
        vec![(NumberState::Active, None); 3]
    );
    let page = wait_page(&t, &portal).await;
    assert!(page.contains("No numbers are waiting for release"), "{page}");
    assert_eq!(zoom_numbers(&t).await.len(), 3, "Zoom was never asked to remove anything");
    assert!(matches!(
        t.app().withdraw_release(uuid::Uuid::now_v7(), &by).await,
        Err(app::AppError::NotFound)
    ));
    let withdrawn = testkit::told(t.app())
        .await
        .into_iter()
        .filter(|(k, d)| k == "release.number_finished" && d["outcome"] == "withdrawn")
        .count();
    assert_eq!(withdrawn, 2, "each withdrawn number is told");
}

async fn quarantine_ends_by_itself_on_the_injected_clock(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    start(&t, acme, &[A, B]).await;
    release_numbers(&t, &portal, &[A, B]).await;
    t.run_pending_jobs().await;
    assert_eq!(state_of(&t, A).await.0, NumberState::Aging);

    let (clock, later) = (t.clock(), t.app());
    clock.advance(time::Duration::days(89));
    assert_eq!(later.release_tick().await.unwrap(), (0, 0), "still in quarantine");
    assert_eq!(state_of(&t, A).await.0, NumberState::Aging);
    clock.advance(time::Duration::days(1) + time::Duration::minutes(1));
    assert_eq!(later.release_tick().await.unwrap(), (2, 0));
    let a = number(&t, A).await;
    assert_eq!((a.state, a.customer_id, a.aging_until), (NumberState::Available, None, None));
    let last = t.app().number_detail(a.id).await.unwrap().1.pop().unwrap();
    assert_eq!(
        (last.from, last.to, last.reason.as_deref()),
        (Some(NumberState::Aging), NumberState::Available, Some("quarantine over"))
    );

    // The sweep also runs by itself on a timer: C, released now, leaves quarantine with nobody
    // calling `release_tick`.
    // (The portal's session ended months ago on this clock: the admin approves through the app.)
    start(&t, acme, &[C]).await;
    let c = number(&t, C).await;
    let admin = Actor::CustomerAdmin(ACME_ADMIN.into());
    assert_eq!(t.app().approve_release(acme, &[c.id], &admin).await.unwrap(), 1);
    t.run_pending_jobs().await;
    assert_eq!(state_of(&t, C).await.0, NumberState::Aging);
    clock.advance(time::Duration::days(91));
    let sweep = later.spawn_release_sweep(Duration::from_millis(50));
    let waited = std::time::Instant::now();
    while state_of(&t, C).await.0 != NumberState::Available {
        assert!(waited.elapsed() < Duration::from_secs(10), "the sweep never ran by itself");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sweep);
    let c = number(&t, C).await;
    let last = t.app().number_detail(c.id).await.unwrap().1.pop().unwrap();
    assert_eq!(
        (last.from, last.to, last.reason.as_deref()),
        (Some(NumberState::Aging), NumberState::Available, Some("quarantine over"))
    );
}

/// A release waits for the customer when the app is removed in Zoom: its numbers are suspended with
/// the others and leave the Wait for Release tab; operators see the release on hold and why. When the
/// app is installed again the numbers come back through provisioning and wait for approval again,
/// and the customer can release them.
async fn a_release_waiting_when_the_app_is_removed_waits_again_after_the_reinstall(db: Db) {
    let t = ZoomApp::spawn(db).await;
    let (acme, portal) = acme_with_active_numbers(&t, 3).await;
    // B is assigned in Zoom: approving it is refused with the Unbind message, and it waits again.
    assign_in_zoom(&t, B).await;
    let release = start(&t, acme, &[A, B]).await;
    assert_eq!(release_numbers(&t, &portal, &[B]).await.0, StatusCode::SEE_OTHER);
    settle(&t, acme, Duration::from_secs(10)).await;
    let page = wait_page(&t, &portal).await;
    let a_id = tick_value(&page, A).unwrap();
    assert!(tick_value(&page, B).is_some(), "refused, approvable again: {page}");
    let csrf = hidden_value(&page, "csrf").unwrap();

    // The admin removes the app in Zoom: the waiting numbers are suspended with the others.
    let r = portal
        .post(format!("{}/marketplace/manage/{}/remove", t.zoom.url, testkit::sim::demo::CLIENT_ID))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "remove in Zoom: {}",
        r.status()
    );
    let start_wait = std::time::Instant::now();
    while state_of(&t, A).await.0 != NumberState::Suspended {
        assert!(start_wait.elapsed() < Duration::from_secs(10), "not suspended after the webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state_of(&t, B).await.0, NumberState::Suspended);
    let page = wait_page(&t, &portal).await;
    assert!(
        page.contains("No numbers are waiting for release")
            && page.contains("The app was removed from your Zoom account"),
        "{page}"
    );
    let r = portal
        .post(format!("{}/portal/releases", t.platform.url))
        .form(&[("csrf", csrf.as_str()), ("number", a_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a suspended number cannot be released");
    assert_eq!(state_of(&t, A).await.0, NumberState::Suspended);

    // Operators see the release on hold, with why; the sweep leaves it so.
    t.app().release_tick().await.unwrap();
    let (r, lines) = t.app().release(release.id).await.unwrap();
    assert_eq!((r.open(), r.withdrawn), (2, 0), "{r:?}");
    assert!(
        lines.iter().all(|l| l.message.as_deref() == Some(domain::release::ON_HOLD_MESSAGE)),
        "{lines:?}"
    );
    let ops = operator(&t).await;
    let page = get_text(&ops, format!("{}/operator/releases/{}", t.platform.url, release.id)).await;
    assert!(page.contains("On hold: the app was removed in Zoom"), "{page}");

    // Installed again: the numbers are pushed again and wait for the customer's approval again.
    unbind_in_zoom(&t, B).await;
    t.link_acme(ACME_ADMIN).await;
    t.run_pending_jobs().await;
    for n in [A, B] {
        assert_eq!(
            state_of(&t, n).await,
            (NumberState::ReleasePending, Some("contract change".into())),
            "{n}"
        );
    }
    assert_eq!(state_of(&t, C).await.0, NumberState::Active, "not in the release");
    let (r, lines) = t.app().release(release.id).await.unwrap();
    assert_eq!((r.waiting, r.refused), (2, 0), "{r:?}");
    assert!(lines.iter().all(|l| l.message.is_none()), "{lines:?}");
    let a = number(&t, A).await;
    let trail: Vec<_> =
        t.app().number_detail(a.id).await.unwrap().1.into_iter().map(|e| e.to).collect();
    assert_eq!(
        trail[trail.len() - 4..],
        [
            NumberState::Suspended,
            NumberState::Provisioning,
            NumberState::Active,
            NumberState::ReleasePending
        ]
    );
    let (status, _) = release_numbers(&t, &portal, &[A, B]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    settle(&t, acme, Duration::from_secs(10)).await;
    assert_eq!(state_of(&t, A).await.0, NumberState::Aging);
    assert_eq!(state_of(&t, B).await.0, NumberState::Aging);
}
