//! Per-account rate limits: every app on an account shares one LIGHT quota per second.

mod support;

use reqwest::StatusCode;
use std::time::Duration;
use support::*;
use zoom_sim::{Options, RateLimit};

const PEERING: &str = "/v2/number_management/peering_numbers";

/// `n` calls in a row (each takes about a millisecond here).
async fn burst(sim: &Sim, token: &str, n: usize) -> Vec<reqwest::Response> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(api(token).get(sim.url(PEERING)).send().await.expect("call"));
    }
    out
}

#[tokio::test]
async fn an_account_over_its_limit_gets_429s_with_zooms_headers_and_others_do_not() {
    let sim = Sim::with(Options {
        control_api: true,
        rate_limit: RateLimit::PerSecond(3),
        ..Options::default()
    })
    .await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let admin_app = sim.admin_token(ACME_ADMIN).await;
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    // Start at the beginning of a second so the burst falls in at most two windows.
    tokio::time::sleep(Duration::from_millis(
        1000 - u64::from(sim.sim.clock().now().millisecond()),
    ))
    .await;

    let responses = burst(&sim, &acme, 8).await;
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!((3..=6).contains(&ok), "{ok} of 8 served with a limit of 3 a second");
    let limited =
        responses.into_iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).expect("a 429");
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(limited.headers()["x-ratelimit-category"], "Light");
    assert_eq!(limited.headers()["x-ratelimit-limit"], "3");
    assert_zoom_error(limited, 429, 429).await;

    // The quota is the account's, not the app's; another account has its own.
    let r = api(&admin_app)
        .delete(sim.url(&format!("/v2/phone/users/me/phone_numbers/{}", number(1))))
        .send()
        .await
        .expect("other app");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        api(&globex).get(sim.url(PEERING)).send().await.expect("globex").status(),
        StatusCode::OK
    );

    // The control API tells how hard each account was pushed: the busiest second counts refused
    // requests too (8 in one second here, or fewer when the burst straddled two), and the 429s.
    let accounts: serde_json::Value = reqwest::get(sim.url("/_sim/accounts"))
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    let acme_rate = accounts["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == ACME))
        .map(|a| a["rate_limit"]["light"].clone())
        .expect("acme's light quota");
    assert_eq!(acme_rate["limit"], 3);
    let busiest = acme_rate["busiest_second"].as_u64().expect("busiest_second");
    assert!((5..=9).contains(&busiest), "{acme_rate}");
    assert_eq!(acme_rate["refused"].as_u64(), Some(9 - ok as u64), "{acme_rate}");

    // The next second is a new window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        api(&acme).get(sim.url(PEERING)).send().await.expect("later").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn by_plan_a_pro_account_gets_20_a_second() {
    let sim = Sim::start().await;
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    tokio::time::sleep(Duration::from_millis(
        1000 - u64::from(sim.sim.clock().now().millisecond()),
    ))
    .await;
    let ok = burst(&sim, &globex, 45).await.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!((20..=40).contains(&ok), "{ok}");
}

/// Listing the account's phone numbers and phone users is MEDIUM in Zoom's OpenAPI: half the LIGHT
/// rate, counted apart from it.
#[tokio::test]
async fn medium_operations_have_their_own_smaller_quota() {
    let sim = Sim::with(Options {
        control_api: true,
        rate_limit: RateLimit::PerSecond(6),
        ..Options::default()
    })
    .await;
    let admin = sim.admin_token(ACME_ADMIN).await;
    let carrier = sim.carrier_token(ACME_ADMIN).await;
    tokio::time::sleep(Duration::from_millis(
        1000 - u64::from(sim.sim.clock().now().millisecond()),
    ))
    .await;
    let mut responses = Vec::new();
    for _ in 0..6 {
        responses.push(api(&admin).get(sim.url("/v2/phone/numbers")).send().await.expect("list"));
    }
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert!((3..=5).contains(&ok), "MEDIUM is 3 a second here: {ok} of 6 served");
    let limited =
        responses.into_iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).expect("a 429");
    assert_eq!(limited.headers()["x-ratelimit-category"], "Medium");
    assert_eq!(limited.headers()["x-ratelimit-limit"], "3");
    // The LIGHT quota is untouched by them.
    assert_eq!(
        api(&carrier).get(sim.url(PEERING)).send().await.expect("light").status(),
        StatusCode::OK
    );
}

/// The carrier-wide listing is LIGHT, as Zoom's file labels it, and counts against the carrier's own
/// account, whose token it takes: a customer's quota is untouched.
#[tokio::test]
async fn the_carrier_wide_listing_is_light_on_the_carriers_own_quota() {
    let sim = Sim::with(Options {
        control_api: true,
        rate_limit: RateLimit::PerSecond(2),
        ..Options::default()
    })
    .await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let s2s = sim.s2s_token().await;
    let mut limited = None;
    for _ in 0..10 {
        let r = api(&s2s)
            .get(sim.url("/v2/number_management/carrier/peering_numbers"))
            .send()
            .await
            .expect("call");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("a 429 within 10 calls at 2 a second");
    assert_eq!(limited.headers()["x-ratelimit-category"], "Light");
    assert_eq!(
        api(&acme).get(sim.url(PEERING)).send().await.expect("acme").status(),
        StatusCode::OK,
        "the customer's quota is its own"
    );
}
