//! The Number Management API's peering numbers through the client, against the simulator: paging,
//! batches of at most 200, and Zoom's per-number answers read as Done / AlreadyDone / Refused.

mod support;

use serde_json::json;
use support::*;
use zoom::{NumberResult, NumberUpdate, Outcome, ZoomError};

fn outcomes(results: &[NumberResult]) -> Vec<(&str, &Outcome)> {
    results.iter().map(|r| (r.phone_number.as_str(), &r.outcome)).collect()
}

fn refused(message: &str) -> Outcome {
    Outcome::Refused { code: 1000, message: message.into() }
}

#[tokio::test]
async fn numbers_added_in_batches_of_200_are_listed_across_pages_as_unassigned() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    let all = numbers(0..650);
    for batch in all.chunks(200) {
        let results = client.add_peering_numbers(&token, TRUNK, batch).await.expect("add");
        assert_eq!(results.len(), batch.len());
        assert!(
            results
                .iter()
                .zip(batch)
                .all(|(r, n)| &r.phone_number == n && r.outcome == Outcome::Done),
            "{results:?}"
        );
    }

    let (mut listed, mut pages, mut token_page) = (Vec::new(), 0, None::<String>);
    loop {
        let page = client.list_peering_numbers(&token, token_page.as_deref()).await.expect("list");
        pages += 1;
        listed.extend(page.numbers);
        match page.next_page_token {
            Some(t) => token_page = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3, "300 a page");
    let mut got: Vec<&str> = listed.iter().map(|n| n.phone_number.as_str()).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        all.iter().map(String::as_str).collect::<Vec<_>>(),
        "every number once, and only the carrier's"
    );
    assert!(listed.iter().all(|n| !n.assigned && n.sip_trunk_name.as_deref() == Some(TRUNK)));
    assert_eq!(
        client.list_all_peering_numbers(&token).await.expect("list all"),
        listed,
        "the same pages in one call"
    );
}

#[tokio::test]
async fn more_than_200_numbers_are_refused_before_anything_is_sent() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    let e =
        client.add_peering_numbers(&token, TRUNK, &numbers(0..201)).await.expect_err("201 numbers");
    assert!(matches!(&e, ZoomError::Invalid(m) if m.contains("201") && m.contains("200")), "{e:?}");
    assert!(matches!(
        client.remove_peering_numbers(&token, &numbers(0..201)).await,
        Err(ZoomError::Invalid(_))
    ));
    assert!(matches!(
        client.add_peering_numbers(&token, TRUNK, &[]).await,
        Err(ZoomError::Invalid(_))
    ));
    let twice = vec![number(1), number(2), "12065550001".to_owned()];
    let e = client.add_peering_numbers(&token, TRUNK, &twice).await.expect_err("a number twice");
    assert!(
        matches!(&e, ZoomError::Invalid(m) if m.contains("12065550001") && m.contains("twice")),
        "{e:?}"
    );
    assert!(
        zoom.numbers(ACME).await.iter().all(|n| n["carrier_code"] != 8801),
        "nothing reached Zoom"
    );
    // 200 is fine.
    let results =
        client.add_peering_numbers(&token, TRUNK, &numbers(0..200)).await.expect("200 numbers");
    assert!(results.iter().all(|r| r.outcome == Outcome::Done));
}

#[tokio::test]
async fn an_unknown_trunk_and_a_bad_number_are_refused_per_number_and_the_rest_are_added() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    let results =
        client.add_peering_numbers(&token, "no-such-trunk", &numbers(0..2)).await.expect("answer");
    assert_eq!(
        outcomes(&results),
        vec![
            (number(0).as_str(), &refused("Invalid Sip Trunk")),
            (number(1).as_str(), &refused("Invalid Sip Trunk"))
        ]
    );

    let batch = vec![number(5), "12345".to_owned(), number(6)];
    let results = client.add_peering_numbers(&token, TRUNK, &batch).await.expect("answer");
    assert_eq!(
        outcomes(&results),
        vec![
            ("+12065550005", &Outcome::Done),
            ("12345", &refused("Invalid number")),
            ("+12065550006", &Outcome::Done)
        ]
    );
    let listed = client.list_peering_numbers(&token, None).await.expect("list").numbers;
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn adding_a_number_zoom_already_has_converges() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    client.add_peering_numbers(&token, TRUNK, &numbers(0..1)).await.expect("first push");
    let results =
        client.add_peering_numbers(&token, TRUNK, &numbers(0..2)).await.expect("second push");
    assert_eq!(
        outcomes(&results),
        vec![("+12065550000", &Outcome::AlreadyDone), ("+12065550001", &Outcome::Done)]
    );
}

#[tokio::test]
async fn removing_an_assigned_number_is_refused_with_zooms_reason_and_a_gone_one_converges() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    client.add_peering_numbers(&token, TRUNK, &numbers(0..2)).await.expect("add");
    zoom.assign(&number(0)).await;
    let listed = client.list_peering_numbers(&token, None).await.expect("list").numbers;
    assert!(listed.iter().any(|n| n.phone_number == number(0) && n.assigned), "{listed:?}");

    let results = client.remove_peering_numbers(&token, &numbers(0..3)).await.expect("remove");
    assert_eq!(
        outcomes(&results),
        vec![
            ("+12065550000", &refused("Phone number is assigned")),
            ("+12065550001", &Outcome::Done),
            ("+12065550002", &Outcome::AlreadyDone),
        ]
    );
    let left: Vec<String> = client
        .list_peering_numbers(&token, None)
        .await
        .expect("list")
        .numbers
        .into_iter()
        .map(|n| n.phone_number)
        .collect();
    assert_eq!(left, vec![number(0)]);
    // Removing the removed one again converges too.
    let again = client.remove_peering_numbers(&token, &numbers(1..2)).await.expect("remove again");
    assert_eq!(again[0].outcome, Outcome::AlreadyDone);
}

#[tokio::test]
async fn updating_numbers_changes_them_and_an_unknown_one_is_refused() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    client.add_peering_numbers(&token, TRUNK, &numbers(0..1)).await.expect("add");
    let updates = [
        NumberUpdate {
            phone_number: number(0),
            status: Some(false),
            service_info: Some("Port-in pending".into()),
            ..Default::default()
        },
        NumberUpdate { phone_number: number(9), status: Some(true), ..Default::default() },
    ];
    let results = client.update_peering_numbers(&token, &updates).await.expect("patch");
    assert_eq!(
        outcomes(&results),
        vec![
            ("+12065550000", &Outcome::Done),
            ("+12065550009", &refused("Phone number does not exist"))
        ]
    );
    let n = zoom
        .numbers(ACME)
        .await
        .into_iter()
        .find(|n| n["phone_number"] == number(0))
        .expect("number");
    assert_eq!(n["status"], false, "{n}");
    assert_eq!(n["service_info"], "Port-in pending", "{n}");
}

#[tokio::test]
async fn an_injected_partial_failure_refuses_only_the_chosen_numbers() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let token = zoom.install(&client, ACME_ADMIN).await.access_token;
    zoom.fault(json!({ "path": "/v2/number_management/peering_numbers", "method": "POST", "fail_numbers": [number(1)], "reason": "Internal error" })).await;
    let results = client.add_peering_numbers(&token, TRUNK, &numbers(0..3)).await.expect("answer");
    assert_eq!(
        outcomes(&results),
        vec![
            ("+12065550000", &Outcome::Done),
            ("+12065550001", &refused("Internal error")),
            ("+12065550002", &Outcome::Done)
        ]
    );
    // Pushing the batch again converges: the two already there, the refused one now added.
    let again = client.add_peering_numbers(&token, TRUNK, &numbers(0..3)).await.expect("answer");
    assert_eq!(
        again.iter().map(|r| r.outcome.clone()).collect::<Vec<_>>(),
        vec![Outcome::AlreadyDone, Outcome::Done, Outcome::AlreadyDone]
    );
}

#[tokio::test]
async fn a_token_of_another_account_sees_none_of_these_numbers() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let acme = zoom.install(&client, ACME_ADMIN).await.access_token;
    let globex = zoom.install(&client, GLOBEX_ADMIN).await.access_token;
    client.add_peering_numbers(&acme, TRUNK, &numbers(0..3)).await.expect("add");
    let page = client.list_peering_numbers(&globex, None).await.expect("list");
    assert!(page.numbers.is_empty() && page.next_page_token.is_none(), "{page:?}");
    // And it cannot remove them: to Globex's account they do not exist.
    let results = client.remove_peering_numbers(&globex, &numbers(0..1)).await.expect("answer");
    assert_eq!(results[0].outcome, Outcome::AlreadyDone);
    assert_eq!(client.list_peering_numbers(&acme, None).await.expect("list").numbers.len(), 3);
}

#[tokio::test]
async fn a_number_another_account_has_is_already_there_for_zoom_but_not_found_in_this_account() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let acme = zoom.install(&client, ACME_ADMIN).await.access_token;
    let globex = zoom.install(&client, GLOBEX_ADMIN).await.access_token;
    client.add_peering_numbers(&globex, TRUNK, &numbers(0..1)).await.expect("add to Globex");
    // Zoom's answer does not say which account has it...
    let results =
        client.add_peering_numbers(&acme, TRUNK, &numbers(0..1)).await.expect("add to Acme");
    assert_eq!(results[0].outcome, Outcome::AlreadyDone);
    // ...so a caller that must know asks.
    assert_eq!(client.find_peering_number(&acme, &number(0)).await.expect("find"), None);
    let found = client
        .find_peering_number(&globex, &number(0))
        .await
        .expect("find")
        .expect("Globex has it");
    assert_eq!((found.phone_number.as_str(), found.assigned), ("+12065550000", false));
}

/// What the reconciler reads: the carrier's own Server-to-Server token, and the carrier-wide listing
/// with each number's account, status and Returned mark, after Zoom-side changes peerex did not make.
#[tokio::test]
async fn the_carrier_wide_listing_shows_every_account_with_status_and_returned() {
    let zoom = Zoom::start().await;
    let client = zoom.client();
    let acme = zoom.install(&client, ACME_ADMIN).await.access_token;
    let globex = zoom.install(&client, GLOBEX_ADMIN).await.access_token;
    client.add_peering_numbers(&acme, TRUNK, &numbers(0..3)).await.expect("add to Acme");
    client.add_peering_numbers(&globex, TRUNK, &numbers(3..5)).await.expect("add to Globex");
    // Zoom support deactivates one; Acme's admin gives one back.
    let n1 = number(1).replace('+', "%2B");
    zoom.control(
        reqwest::Method::PATCH,
        &format!("/_sim/numbers/{n1}"),
        Some(json!({"status": false})),
    )
    .await;
    let n2 = number(2).replace('+', "%2B");
    zoom.control(reqwest::Method::PUT, &format!("/_sim/numbers/{n2}/returned"), Some(json!({})))
        .await;

    // The customer's OAuth app may not use the carrier's grant.
    assert!(matches!(
        client.account_token("exampleCarrierOwnAccount").await,
        Err(ZoomError::Refused { status: 400, .. } | ZoomError::InvalidGrant { .. })
    ));
    let s2s = zoom::Client::new(zoom::Config {
        client_id: "exampleCarrierS2SClientId".into(),
        client_secret: "exampleCarrierS2SClientSecret".into(),
        ..zoom.config()
    })
    .expect("client");
    assert!(
        s2s.account_token(ACME).await.is_err(),
        "the carrier's credentials are for its own account only"
    );
    let carrier = s2s.account_token("exampleCarrierOwnAccount").await.expect("S2S token");
    // A customer's token cannot read the carrier-wide listing.
    assert!(client.list_carrier_peering_numbers(&acme, None, None).await.is_err());

    let page =
        s2s.list_carrier_peering_numbers(&carrier.access_token, None, None).await.expect("list");
    assert_eq!(page.next_page_token, None);
    let mut got: Vec<_> = page
        .numbers
        .iter()
        .map(|n| {
            (n.phone_number.as_str(), n.active, n.returned, n.customer_account_number.is_some())
        })
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            (number(0).as_str(), true, false, true),
            (number(1).as_str(), false, false, true),
            (number(2).as_str(), true, true, true),
            (number(3).as_str(), true, false, true),
            (number(4).as_str(), true, false, true),
        ]
    );
    let acme_number = page
        .numbers
        .iter()
        .find(|n| n.phone_number == number(0))
        .and_then(|n| n.customer_account_number.clone())
        .expect("account number");
    let only_acme = s2s
        .list_carrier_peering_numbers(&carrier.access_token, None, Some(&acme_number))
        .await
        .expect("filtered");
    let mut acme_numbers: Vec<_> =
        only_acme.numbers.iter().map(|n| n.phone_number.clone()).collect();
    acme_numbers.sort_unstable();
    assert_eq!(acme_numbers, numbers(0..3));
    // The customer's own listing carries status and Returned too.
    let own = client.list_all_peering_numbers(&acme).await.expect("Acme's list");
    assert!(own.iter().any(|n| n.phone_number == number(1) && !n.active));
    assert!(own.iter().any(|n| n.phone_number == number(2) && n.returned));
}
