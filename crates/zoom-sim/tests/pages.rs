//! The seed journeys through the simulated zoom.us pages, as a browser without JavaScript walks them:
//! install the carrier's app from the Marketplace, remove it, and assign then unbind a number.

mod support;

use reqwest::StatusCode;
use support::*;

/// The `action` of the first form posting to a path that contains `part`.
fn form_action(html: &str, part: &str) -> String {
    html.split("action=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|a| a.contains(part))
        .unwrap_or_else(|| panic!("no form for {part} in {html}"))
        .to_owned()
}

/// The `href` of the first link whose text contains `label`.
fn link(html: &str, label: &str) -> String {
    let at = html
        .find(&format!(">{label}"))
        .or_else(|| html.find(label))
        .unwrap_or_else(|| panic!("no {label:?} in {html}"));
    let start = html[..at].rfind("href=\"").expect("href") + 6;
    html[start..].split('"').next().expect("link").replace("&amp;", "&").replace("&#38;", "&")
}

async fn page(b: &reqwest::Client, sim: &Sim, path: &str) -> String {
    let r = b.get(sim.url(path)).send().await.expect("page");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("html")
}

async fn follow(b: &reqwest::Client, sim: &Sim, r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    page(b, sim, &location).await
}

#[tokio::test]
async fn install_from_the_marketplace_and_remove_it_again() {
    let sim = Sim::start().await;
    // Signing in is asked for first, and leads back to the page asked for.
    let b = sim.browser();
    let r = b.get(sim.url("/marketplace")).send().await.expect("marketplace");
    assert!(r.headers()["location"].to_str().expect("location").starts_with("/signin"));
    let b = sim.signed_in(ACME_ADMIN).await;

    let profile = page(&b, &sim, "/profile").await;
    let marketplace = page(&b, &sim, &link(&profile, "App Marketplace")).await;
    let category = page(&b, &sim, &link(&marketplace, "Carrier Provider Exchange")).await;
    assert!(
        !category.contains("Example Carrier Provider Portal"),
        "server-to-server apps are not listed"
    );
    let details = page(&b, &sim, &link(&category, "Example Carrier Cloud Peering for Zoom")).await;
    for label in [
        "Requirements",
        "Permissions",
        "Scopes",
        "number_management_numbers:write:admin",
        "Account Admin",
    ] {
        assert!(details.contains(label), "{label}");
    }
    let consent = page(&b, &sim, &link(&details, "Add")).await;
    assert!(consent.contains("Allow"));
    let consent_id = hidden(&consent, "consent").expect("consent");
    let r = b
        .post(sim.url("/oauth/authorize"))
        .form(&[("consent", consent_id.as_str()), ("decision", "allow")])
        .send()
        .await
        .expect("allow");
    let back =
        reqwest::Url::parse(r.headers()["location"].to_str().expect("location")).expect("url");
    assert_eq!(back.as_str().split('?').next(), Some(CARRIER_REDIRECT));
    assert!(query_value(&back, "code").is_some());
    assert_eq!(query_value(&back, "state"), None, "a Marketplace install carries no state");
    let code = query_value(&back, "code").expect("code");
    let t = sim
        .token_request(
            (CARRIER_APP, CARRIER_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CARRIER_REDIRECT),
            ],
        )
        .await;
    assert_eq!(t.status(), StatusCode::OK);

    let manage = page(&b, &sim, &link(&marketplace, "Manage")).await;
    assert!(
        manage.contains("Added Apps") && manage.contains("Example Carrier Cloud Peering for Zoom")
    );
    let action = form_action(&manage, "/remove");
    let after = follow(&b, &sim, b.post(sim.url(&action)).send().await.expect("remove")).await;
    assert!(
        after.contains("has been removed") && after.contains("No apps have been added"),
        "{after}"
    );
}

#[tokio::test]
async fn assign_a_number_to_a_user_then_unbind_it() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1)]).await;
    let b = sim.signed_in(ACME_ADMIN).await;

    let profile = page(&b, &sim, "/profile").await;
    let numbers = page(&b, &sim, &link(&profile, "Phone Numbers")).await;
    let unassigned = page(&b, &sim, &link(&numbers, "Unassigned")).await;
    let properties = page(&b, &sim, &link(&unassigned, &number(1))).await;
    let action = form_action(&properties, "/assign");
    let bob = properties
        .split("<option value=\"")
        .skip(1)
        .find(|o| o.contains(ACME_BOB.0))
        .and_then(|o| o.split('"').next())
        .expect("Bob")
        .to_owned();
    let after = follow(
        &b,
        &sim,
        b.post(sim.url(&action)).form(&[("user", bob.as_str())]).send().await.expect("assign"),
    )
    .await;
    assert!(after.contains("is assigned to Bob Builder") && after.contains("Unbind"), "{after}");

    let assigned = page(&b, &sim, "/pbx/phone-numbers?tab=assigned").await;
    assert!(assigned.contains(&number(1)) && assigned.contains("Bob Builder"));
    assert!(!page(&b, &sim, "/pbx/phone-numbers?tab=unassigned").await.contains(&number(1)));
    let peering: serde_json::Value = api(&token)
        .get(sim.url("/v2/number_management/peering_numbers"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(peering["numbers"][0]["assigned"], true, "the carrier sees it assigned");

    let properties = page(&b, &sim, &link(&assigned, &number(1))).await;
    let unbind = form_action(&properties, "/unbind");
    let after = follow(&b, &sim, b.post(sim.url(&unbind)).send().await.expect("unbind")).await;
    assert!(after.contains("is no longer assigned"), "{after}");
    assert!(page(&b, &sim, "/pbx/phone-numbers?tab=unassigned").await.contains(&number(1)));

    // Only the admin manages phone numbers.
    let bob = sim.signed_in(ACME_BOB).await;
    assert_eq!(
        bob.get(sim.url("/pbx/phone-numbers")).send().await.expect("page").status(),
        StatusCode::FORBIDDEN
    );
}

/// The carrier's guide, literally: Manage > Added Apps > *the app* > **Remove**, on the app's own page.
#[tokio::test]
async fn an_added_apps_own_page_removes_it_as_the_list_does() {
    let sim = Sim::start().await;
    let t = sim.install(ACME_ADMIN).await;
    let access = t["access_token"].as_str().expect("access").to_owned();
    let b = sim.signed_in(ACME_ADMIN).await;

    let marketplace = page(&b, &sim, "/marketplace").await;
    let manage = page(&b, &sim, &link(&marketplace, "Manage")).await;
    let details = page(&b, &sim, &link(&manage, "Example Carrier Cloud Peering for Zoom")).await;
    assert!(details.contains("This app is added to your account"), "{details}");
    let action = form_action(&details, "/remove");
    let after = follow(&b, &sim, b.post(sim.url(&action)).send().await.expect("remove")).await;
    assert!(after.contains("has been removed"), "{after}");
    assert!(!after.contains("This app is added to your account"), "{after}");

    // The same effect as Remove beside the app in the list: tokens end, app_deauthorized is queued.
    let r = api(&access).get(sim.url("/v2/users/me")).send().await.expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let log: serde_json::Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    let events: Vec<&str> = log["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|d| d["event"].as_str())
        .collect();
    assert_eq!(events, ["app_deauthorized"]);
    assert!(page(&b, &sim, "/marketplace/manage").await.contains("No apps have been added"));
}

#[tokio::test]
async fn only_the_account_admin_removes_an_admin_managed_app() {
    let sim = Sim::start().await;
    let t = sim.install(ACME_ADMIN).await;
    let bob = sim.signed_in(ACME_BOB).await;
    for path in [
        format!("/marketplace/manage/{CARRIER_APP}/remove"),
        format!("/marketplace/apps/{CARRIER_APP}/remove"),
    ] {
        let r = bob.post(sim.url(&path)).send().await.expect("remove");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let access = t["access_token"].as_str().expect("access");
    let r = api(access).get(sim.url("/v2/users/me")).send().await.expect("me");
    assert_eq!(r.status(), StatusCode::OK, "the app is still added");
}

fn pool_status(page: &serde_json::Value, n: &str) -> serde_json::Value {
    page["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .find(|x| x["phone_number"] == n)
        .unwrap_or_else(|| panic!("{n} in {page}"))["number_pool_status"]
        .clone()
}

/// The customer gives a number back: Phone Numbers > the number > **Return to Carrier**. The carrier
/// sees it Returned in the API's listings (no webhook tells it), and the number can no longer be
/// given to a user. An assigned number is unbound first.
#[tokio::test]
async fn the_customer_marks_a_number_returned_and_the_carrier_sees_it_listed() {
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&token, &[number(1), number(2)]).await;
    let r = reqwest::Client::new()
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(2))))
        .json(&serde_json::json!({ "user": ACME_BOB.0 }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);
    let b = sim.signed_in(ACME_ADMIN).await;

    let unassigned = page(&b, &sim, "/pbx/phone-numbers?tab=unassigned").await;
    let properties = page(&b, &sim, &link(&unassigned, &number(1))).await;
    let action = form_action(&properties, "/return");
    let after = follow(&b, &sim, b.post(sim.url(&action)).send().await.expect("return")).await;
    assert!(after.contains("has been returned to Example Carrier"), "{after}");
    assert!(!after.contains("Return to Carrier"), "returned once is enough: {after}");
    assert!(page(&b, &sim, "/pbx/phone-numbers?tab=unassigned").await.contains("Returned"));

    let listed: serde_json::Value = api(&token)
        .get(sim.url("/v2/number_management/peering_numbers"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(pool_status(&listed, &number(1)), "RETURNED");
    assert_eq!(pool_status(&listed, &number(2)), "IN_USE");
    let carrier_wide: serde_json::Value = api(&sim.s2s_token().await)
        .get(sim.url("/v2/number_management/carrier/peering_numbers"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(pool_status(&carrier_wide, &number(1)), "RETURNED");
    let log: serde_json::Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    assert_eq!(log["deliveries"], serde_json::json!([]), "Zoom publishes no event for it");

    // A returned number is not given to a user, on the page or through the API.
    assert!(!after.contains(">Assign</button>"), "{after}");
    let admin = sim.admin_token(ACME_ADMIN).await;
    let r = api(&admin)
        .post(sim.url("/v2/phone/users/me/phone_numbers"))
        .json(&serde_json::json!({ "phone_numbers": [{ "number": number(1) }] }))
        .send()
        .await
        .expect("assign");
    let e = assert_zoom_error(r, 400, 300).await;
    assert!(e["message"].as_str().expect("message").contains("returned"), "{e}");

    // An assigned number offers no Return; asked anyway, it is refused and stays in use.
    let assigned = page(&b, &sim, "/pbx/phone-numbers?tab=assigned").await;
    let properties = page(&b, &sim, &link(&assigned, &number(2))).await;
    assert!(!properties.contains("Return to Carrier"), "{properties}");
    let id = link(&assigned, &number(2)).rsplit('/').next().expect("id").to_owned();
    let r = b.post(sim.url(&format!("/pbx/phone-numbers/{id}/return"))).send().await.expect("post");
    let after = follow(&b, &sim, r).await;
    assert!(after.contains("Unbind it"), "{after}");
    let listed: serde_json::Value = api(&token)
        .get(sim.url("/v2/number_management/peering_numbers"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(pool_status(&listed, &number(2)), "IN_USE");
}
