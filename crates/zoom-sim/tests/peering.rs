//! The Number Management generation of the Provider Exchange API, as the carrier's platform uses it:
//! push numbers to a customer's account, list them page by page, change them, remove them.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const PEERING: &str = "/v2/number_management/peering_numbers";

async fn list(sim: &Sim, token: &str, query: &[(&str, &str)]) -> Value {
    let r = api(token).get(sim.url(PEERING)).query(query).send().await.expect("list");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

fn phone_numbers(page: &Value) -> Vec<String> {
    page["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .map(|n| n["phone_number"].as_str().expect("phone_number").to_owned())
        .collect()
}

async fn remove(sim: &Sim, token: &str, numbers: &[&str]) -> reqwest::Response {
    let query: Vec<(&str, &str)> = numbers.iter().map(|n| ("phone_numbers", *n)).collect();
    api(token).delete(sim.url(PEERING)).query(&query).send().await.expect("delete")
}

#[tokio::test]
async fn pushed_numbers_are_listed_page_by_page_and_the_last_page_has_an_empty_token() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let numbers: Vec<String> = (0..7).map(number).collect();
    sim.add_numbers(&token, &numbers).await;

    let mut seen = Vec::new();
    let mut page = list(&sim, &token, &[("page_size", "3")]).await;
    assert_eq!(page["total_records"], 7);
    loop {
        seen.extend(phone_numbers(&page));
        let next = page["next_page_token"].as_str().expect("next_page_token").to_owned();
        if next.is_empty() {
            break;
        }
        page = list(&sim, &token, &[("page_size", "3"), ("next_page_token", &next)]).await;
    }
    assert_eq!(seen, numbers, "every number once, in order");

    let first = &list(&sim, &token, &[("phone_number", &number(3))]).await["numbers"][0];
    assert_eq!(first["phone_number"], number(3));
    assert_eq!(first["assigned"], false);
    assert_eq!(first["status"], true);
    assert_eq!(first["sip_trunk_name"], TRUNK);

    // Another account of the same carrier sees none of them; the other carrier's number never shows.
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    assert_eq!(list(&sim, &globex, &[]).await["total_records"], 0);
    assert!(!phone_numbers(&list(&sim, &token, &[("page_size", "300")]).await)
        .contains(&"+12065550900".to_owned()));
}

/// A page token remembers where its listing stopped, not what it held: numbers added or removed between
/// pages neither repeat nor hide a number that stayed, a number added beyond the cursor is listed, and
/// each page's `total_records` counts the account as it is now.
#[tokio::test]
async fn numbers_added_or_removed_between_pages_are_neither_repeated_nor_skipped() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &(0..10).step_by(2).map(number).collect::<Vec<_>>()).await;

    let first = list(&sim, &token, &[("page_size", "2")]).await;
    assert_eq!(phone_numbers(&first), [number(0), number(2)]);
    assert_eq!(first["total_records"], 5);
    // One before the cursor and one beyond it arrive; one already listed and one not yet listed go.
    sim.add_numbers(&token, &[number(1), number(5)]).await;
    assert_eq!(remove(&sim, &token, &[&number(2), &number(6)]).await.status(), StatusCode::OK);

    let mut seen = phone_numbers(&first);
    let mut page = first;
    loop {
        let next = page["next_page_token"].as_str().expect("next_page_token").to_owned();
        if next.is_empty() {
            break;
        }
        page = list(&sim, &token, &[("page_size", "2"), ("next_page_token", &next)]).await;
        assert_eq!(page["total_records"], 5, "{page}");
        seen.extend(phone_numbers(&page));
    }
    assert_eq!(seen, [number(0), number(2), number(4), number(5), number(8)]);

    // A token belongs to its filter: the same listing narrowed to one number refuses it.
    let page = list(&sim, &token, &[("page_size", "1")]).await;
    let next = page["next_page_token"].as_str().expect("token").to_owned();
    let r = api(&token)
        .get(sim.url(PEERING))
        .query(&[("page_size", "1"), ("phone_number", &number(4)), ("next_page_token", &next)])
        .send()
        .await
        .expect("list");
    assert_zoom_error(r, 400, 300).await;
    let one = list(&sim, &token, &[("phone_number", &number(4))]).await;
    assert_eq!((phone_numbers(&one), one["total_records"].clone()), (vec![number(4)], json!(1)));
    let gone = list(&sim, &token, &[("phone_number", &number(6))]).await;
    assert_eq!(
        (gone["total_records"].clone(), gone["next_page_token"].clone()),
        (json!(0), json!(""))
    );
}

#[tokio::test]
async fn page_tokens_expire_after_fifteen_minutes() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &(0..3).map(number).collect::<Vec<_>>()).await;
    let page = list(&sim, &token, &[("page_size", "1")]).await;
    let next = page["next_page_token"].as_str().expect("token").to_owned();
    sim.advance(Duration::from_secs(15 * 60 + 1)).await;
    let r = api(&token)
        .get(sim.url(PEERING))
        .query(&[("page_size", "1"), ("next_page_token", next.as_str())])
        .send()
        .await
        .expect("list");
    assert_zoom_error(r, 400, 300).await;
}

#[tokio::test]
async fn more_than_200_numbers_or_none_at_all_are_refused_whole() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let items: Vec<Value> = (0..201)
        .map(|i| json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": true }))
        .collect();
    let r = api(&token)
        .post(sim.url(PEERING))
        .json(&json!({ "phone_numbers": items }))
        .send()
        .await
        .expect("post");
    assert_zoom_error(r, 400, 1003).await;
    assert_eq!(
        list(&sim, &token, &[]).await["total_records"],
        0,
        "nothing of a refused batch is added"
    );

    let r = api(&token)
        .post(sim.url(PEERING))
        .json(&json!({ "phone_numbers": [] }))
        .send()
        .await
        .expect("post");
    assert_zoom_error(r, 400, 1002).await;
    let many: Vec<String> = (0..201).map(number).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_zoom_error(remove(&sim, &token, &refs).await, 400, 1003).await;

    // Exactly 200 is fine.
    sim.add_numbers(&token, &(0..200).map(number).collect::<Vec<_>>()).await;
}

#[tokio::test]
async fn unknown_trunks_and_invalid_numbers_fail_per_number_and_the_rest_are_added() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let body = json!({ "phone_numbers": [
        { "phone_number": number(1), "sip_trunk_name": TRUNK, "status": true },
        { "phone_number": number(2), "sip_trunk_name": "no-such-trunk", "status": true },
        { "phone_number": "+1206", "sip_trunk_name": TRUNK, "status": true },
        { "phone_number": "+12065550900", "sip_trunk_name": TRUNK, "status": true },
    ]});
    let r = api(&token).post(sim.url(PEERING)).json(&body).send().await.expect("post");
    let error = assert_zoom_error(r, 400, 1000).await;
    assert_eq!(error["message"], "Some data failed.");
    assert_eq!(
        error["errors"],
        json!([
            { "phone_number": number(2), "reason": "Invalid Sip Trunk" },
            { "phone_number": "+1206", "reason": "Invalid number" },
            { "phone_number": "+12065550900", "reason": "Phone number already exists" },
        ])
    );
    assert_eq!(phone_numbers(&list(&sim, &token, &[]).await), vec![number(1)]);
}

#[tokio::test]
async fn an_assigned_number_is_not_removed_and_the_reason_says_so() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1), number(2)]).await;

    // The customer's admin gives number 2 to Bob.
    let admin = sim.admin_token(ACME_ADMIN).await;
    let r = api(&admin)
        .post(sim.url(&format!("/v2/phone/users/{}/phone_numbers", ACME_BOB.0)))
        .json(&json!({ "phone_numbers": [{ "number": number(2) }] }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        list(&sim, &token, &[("phone_number", &number(2))]).await["numbers"][0]["assigned"],
        true
    );

    let error =
        assert_zoom_error(remove(&sim, &token, &[&number(1), &number(2)]).await, 400, 1000).await;
    assert_eq!(
        error["errors"],
        json!([{ "phone_number": number(2), "reason": "Phone number is assigned" }])
    );
    assert_eq!(
        phone_numbers(&list(&sim, &token, &[]).await),
        vec![number(2)],
        "number 1 went, number 2 stayed"
    );

    // Unbind, and the release goes through.
    let r = api(&admin)
        .delete(sim.url(&format!("/v2/phone/users/{}/phone_numbers/{}", ACME_BOB.0, number(2))))
        .send()
        .await
        .expect("unassign");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(remove(&sim, &token, &[&number(2)]).await.status(), StatusCode::OK);
    assert_eq!(list(&sim, &token, &[]).await["total_records"], 0);
}

#[tokio::test]
async fn only_numbers_this_carrier_added_to_this_account_can_be_changed_or_removed() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    sim.add_numbers(&globex, &[number(5)]).await;

    // Another carrier's number in Acme's own account, and this carrier's number in another account.
    let error =
        assert_zoom_error(remove(&sim, &acme, &["+12065550900", &number(5)]).await, 400, 1000)
            .await;
    assert_eq!(error["errors"][0]["reason"], "Phone number does not exist");
    assert_eq!(error["errors"][1]["reason"], "Phone number does not exist");
    let r = api(&acme)
        .patch(sim.url(PEERING))
        .json(&json!({ "phone_numbers": [{ "phone_number": "+12065550900", "status": false }] }))
        .send()
        .await
        .expect("patch");
    assert_zoom_error(r, 400, 1000).await;
    assert_eq!(list(&sim, &globex, &[]).await["total_records"], 1);
}

#[tokio::test]
async fn numbers_can_be_updated_and_patch_answers_204() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;
    let body = json!({ "allocated_product": "ZOOM_PHONE", "phone_numbers": [{
        "phone_number": number(1), "status": false, "sip_trunk_name": "example-carrier-us-west",
        "billing_ref_id": "cust-42", "service_info": "Inbound only", "voice_direction": "INBOUND_ONLY" }] });
    let r = api(&token).patch(sim.url(PEERING)).json(&body).send().await.expect("patch");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let n = &list(&sim, &token, &[]).await["numbers"][0];
    assert_eq!(
        (n["status"].clone(), n["sip_trunk_name"].clone(), n["billing_ref_id"].clone()),
        (json!(false), json!("example-carrier-us-west"), json!("cust-42"))
    );
    assert_eq!(n["voice_direction"], "INBOUND_ONLY");

    let r = api(&token)
        .patch(sim.url(PEERING))
        .json(
            &json!({ "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": "nope" }] }),
        )
        .send()
        .await
        .expect("patch");
    assert_eq!(assert_zoom_error(r, 400, 1000).await["errors"][0]["reason"], "Invalid Sip Trunk");
}

#[tokio::test]
async fn delete_takes_repeated_parameters_a_comma_list_or_a_json_body() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &(0..6).map(number).collect::<Vec<_>>()).await;
    assert_eq!(remove(&sim, &token, &[&number(0), &number(1)]).await.status(), StatusCode::OK);
    let comma = format!("{},{}", number(2), number(3));
    let r = api(&token)
        .delete(sim.url(PEERING))
        .query(&[("phone_numbers", comma.as_str())])
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    // Bare digits are accepted as well as +E.164.
    let r = api(&token)
        .delete(sim.url(PEERING))
        .json(&json!({ "phone_numbers": [number(4), number(5).trim_start_matches('+')] }))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(list(&sim, &token, &[]).await["total_records"], 0);
}

#[tokio::test]
async fn malformed_requests_wrong_carriers_and_missing_scopes_get_zoom_errors() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let post = |body: &'static str| {
        api(&token)
            .post(sim.url(PEERING))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_zoom_error(post("{not json").await.expect("post"), 400, 300).await;
    let e = assert_zoom_error(post(r#"{"phone_numbers":[{"phone_number":"+12065550001","status":"yes","sip_trunk_name":"x"}]}"#).await.expect("post"), 400, 300).await;
    assert_eq!(e["errors"][0]["field"], "phone_numbers[0].status", "{e}");
    let e = assert_zoom_error(
        post(r#"{"phone_numbers":[{"phone_number":"+12065550001","status":true}]}"#)
            .await
            .expect("post"),
        400,
        300,
    )
    .await;
    assert_eq!(e["errors"][0]["field"], "phone_numbers[0].sip_trunk_name", "{e}");
    let r = api(&token).post(sim.url(PEERING)).json(&json!({ "carrier_code": 1234, "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": true }] })).send().await.expect("post");
    assert_zoom_error(r, 400, 1001).await;
    let r = api(&token)
        .get(sim.url(PEERING))
        .query(&[("carrier_code", CARRIER_CODE.to_string())])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);

    // The admin script has no number_management scopes.
    let admin = sim.admin_token(ACME_ADMIN).await;
    let e =
        assert_zoom_error(api(&admin).get(sim.url(PEERING)).send().await.expect("get"), 400, 4711)
            .await;
    assert!(
        e["message"].as_str().expect("message").contains("number_management_numbers:read:admin"),
        "{e}"
    );
    assert_zoom_error(reqwest::get(sim.url(PEERING)).await.expect("no token"), 401, 124).await;
}

#[tokio::test]
async fn an_account_without_zoom_phone_cannot_receive_numbers() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(INITECH_ADMIN).await;
    let r = api(&token).post(sim.url(PEERING)).json(&json!({ "phone_numbers": [{ "phone_number": number(1), "sip_trunk_name": TRUNK, "status": true }] })).send().await.expect("post");
    assert_zoom_error(r, 400, 300).await;
}

const CARRIER_WIDE: &str = "/v2/number_management/carrier/peering_numbers";

async fn carrier_list(sim: &Sim, token: &str, query: &[(&str, &str)]) -> Value {
    let r = api(token).get(sim.url(CARRIER_WIDE)).query(query).send().await.expect("list");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

#[tokio::test]
async fn the_carrier_wide_listing_names_each_numbers_customer() {
    let sim = Sim::start().await;
    sim.add_numbers(&sim.carrier_token(ACME_ADMIN).await, &[number(1)]).await;
    sim.add_numbers(&sim.carrier_token(GLOBEX_ADMIN).await, &[number(2)]).await;
    let page = carrier_list(&sim, &sim.s2s_token().await, &[]).await;
    assert_eq!(page["total_records"], 2, "{page}");
    assert_eq!(page["numbers"][0]["customer_account_name"], "Acme Robotics");
    assert_eq!(page["numbers"][1]["customer_account_name"], "Globex");
    assert_eq!(page["numbers"][0]["customer_account_number"], sim.account_number(ACME).await);
    assert_eq!(page["numbers"][1]["customer_account_number"], sim.account_number(GLOBEX).await);
}

/// The carrier-wide listing is the Provider Portal's (`ProviderPortal:Read`): a token of the carrier's own
/// account. The carrier app's token on a customer's account sees that customer's numbers only, through
/// the per-account listing; asking it for every customer's is refused.
#[tokio::test]
async fn the_carrier_wide_listing_needs_a_token_of_the_carriers_own_account() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&acme, &[number(1)]).await;
    sim.add_numbers(&sim.carrier_token(GLOBEX_ADMIN).await, &[number(2)]).await;
    for path in [CARRIER_WIDE, "/v2/phone/carrier_peering/numbers"] {
        let r = api(&acme).get(sim.url(path)).send().await.expect("list");
        let body = assert_zoom_error(r, 403, 403).await;
        assert!(!body.to_string().contains(&number(2)), "{body}");
    }
    assert_eq!(carrier_list(&sim, &sim.s2s_token().await, &[]).await["total_records"], 2);
}

/// `customer_account_number` (Zoom added it in July 2026) narrows the listing to one customer; its pages
/// follow each other with `next_page_token`, a token belongs to its own filter and expires after 15
/// minutes.
#[tokio::test]
async fn the_carrier_wide_listing_filters_by_customer_account_number_page_by_page() {
    let sim = Sim::start().await;
    let acme: Vec<String> = (0..5).map(number).collect();
    let globex: Vec<String> = (10..13).map(number).collect();
    sim.add_numbers(&sim.carrier_token(ACME_ADMIN).await, &acme).await;
    sim.add_numbers(&sim.carrier_token(GLOBEX_ADMIN).await, &globex).await;
    let s2s = sim.s2s_token().await;
    let acme_number = sim.account_number(ACME).await;

    let mut seen = Vec::new();
    let filter = ("customer_account_number", acme_number.as_str());
    let mut page = carrier_list(&sim, &s2s, &[filter, ("page_size", "2")]).await;
    assert_eq!(page["total_records"], 5, "{page}");
    let first_token = page["next_page_token"].as_str().expect("token").to_owned();
    loop {
        for n in page["numbers"].as_array().expect("numbers") {
            assert_eq!(n["customer_account_number"], acme_number.as_str(), "{n}");
        }
        seen.extend(phone_numbers(&page));
        let next = page["next_page_token"].as_str().expect("next_page_token").to_owned();
        if next.is_empty() {
            break;
        }
        page = carrier_list(&sim, &s2s, &[filter, ("page_size", "2"), ("next_page_token", &next)])
            .await;
    }
    assert_eq!(seen, acme, "every one of Acme's numbers once, in order, and no one else's");

    let globex_number = sim.account_number(GLOBEX).await;
    let g = carrier_list(&sim, &s2s, &[("customer_account_number", globex_number.as_str())]).await;
    assert_eq!(phone_numbers(&g), globex);
    let none = carrier_list(&sim, &s2s, &[("customer_account_number", "9999999999")]).await;
    assert_eq!(
        (none["total_records"].clone(), none["next_page_token"].clone()),
        (json!(0), json!(""))
    );

    // A token from the filtered listing is not one of the unfiltered listing's, or another filter's.
    for query in [vec![], vec![("customer_account_number", globex_number.as_str())]] {
        let mut query = query;
        query.push(("next_page_token", first_token.as_str()));
        let r = api(&s2s).get(sim.url(CARRIER_WIDE)).query(&query).send().await.expect("list");
        assert_zoom_error(r, 400, 300).await;
    }
    // Page tokens expire after 15 minutes.
    sim.advance(Duration::from_secs(15 * 60)).await;
    let s2s = sim.s2s_token().await;
    let r = api(&s2s)
        .get(sim.url(CARRIER_WIDE))
        .query(&[filter, ("page_size", "2"), ("next_page_token", &first_token)])
        .send()
        .await
        .expect("list");
    assert_zoom_error(r, 400, 300).await;
}

#[tokio::test]
async fn the_admins_number_list_shows_assigned_and_unassigned_numbers() {
    let sim = Sim::start().await;
    sim.add_numbers(&sim.carrier_token(ACME_ADMIN).await, &[number(1), number(2)]).await;
    let admin = sim.admin_token(ACME_ADMIN).await;
    let r = api(&admin)
        .post(sim.url("/v2/phone/users/me/phone_numbers"))
        .json(&json!({ "phone_numbers": [{ "number": number(1) }] }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);
    let listed = |kind: &'static str| {
        let admin = admin.clone();
        let url = sim.url("/v2/phone/numbers");
        async move {
            let v: Value = api(&admin)
                .get(url)
                .query(&[("type", kind)])
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            v["phone_numbers"]
                .as_array()
                .expect("phone_numbers")
                .iter()
                .map(|n| n["number"].as_str().expect("number").to_owned())
                .collect::<Vec<_>>()
        }
    };
    // +12065550900 is the other carrier's, assigned to Alice in the world file.
    assert_eq!(listed("assigned").await, vec![number(1), "+12065550900".to_owned()]);
    assert_eq!(listed("unassigned").await, vec![number(2)]);

    // Carol has no Zoom Phone license: Zoom refuses; Bob cannot take Alice's number.
    let r = api(&admin)
        .post(sim.url("/v2/phone/users/carol@acme.example/phone_numbers"))
        .json(&json!({ "phone_numbers": [{ "number": number(2) }] }))
        .send()
        .await
        .expect("assign");
    assert_zoom_error(r, 400, 300).await;
    let r = api(&admin)
        .post(sim.url(&format!("/v2/phone/users/{}/phone_numbers", ACME_BOB.0)))
        .json(&json!({ "phone_numbers": [{ "number": number(1) }] }))
        .send()
        .await
        .expect("assign");
    assert_zoom_error(r, 400, 300).await;
    let r = api(&admin)
        .post(sim.url("/v2/phone/users/nobody@acme.example/phone_numbers"))
        .json(&json!({ "phone_numbers": [{ "number": number(2) }] }))
        .send()
        .await
        .expect("assign");
    assert_zoom_error(r, 404, 1001).await;
}
