//! The operator portal's Zoom trunks and the trunk selector on a customer's page (issue 7).

mod operator_support;

use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    trunk_is_created_changed_and_chosen_for_a_customer,
    bad_destination_is_named_and_reader_cannot_create
);

async fn trunk_is_created_changed_and_chosen_for_a_customer(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap();
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "zoom-us"),
        (
            "destinations",
            "sip:zoom-a.example:5061;transport=tls\r\nsip:zoom-b.example:5061;transport=tls\r\n",
        ),
        ("country_code", "1"),
        ("national_prefix", "1"),
        ("international_prefix", "011"),
    ];
    let (status, location, _) = post(&t, &client, "/operator/trunks", &form).await;
    assert_eq!((status, location.as_deref()), (303, Some("/operator/trunks/zoom-us")));
    let (_, page) = get(&t, &client, "/operator/trunks").await;
    assert!(
        page.contains("zoom-us")
            && page.contains("sip:zoom-b.example:5061;transport=tls")
            && page.contains("+1, national prefix 1, international prefix 011"),
        "{page}"
    );

    let change = [
        ("csrf", csrf.as_str()),
        ("destinations", "sips:zoom-c.example"),
        ("country_code", "1"),
        ("national_prefix", ""),
        ("international_prefix", "011"),
    ];
    let (status, _, _) = post(&t, &client, "/operator/trunks/zoom-us", &change).await;
    assert_eq!(status, 303);
    assert_eq!(
        t.app.trunk("zoom-us").await.unwrap().destinations[0].as_str(),
        "sips:zoom-c.example"
    );

    let path = format!("/operator/customers/{}", c.id);
    let (_, page) = get(&t, &client, &path).await;
    assert!(
        page.contains("none: numbers cannot be pushed to Zoom")
            && page.contains("<option value=\"zoom-us\""),
        "{page}"
    );
    let (status, _, _) = post(
        &t,
        &client,
        &format!("{path}/trunk"),
        &[("csrf", csrf.as_str()), ("zoom_trunk", "zoom-us")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        t.app
            .customer(c.id)
            .await
            .unwrap()
            .zoom_trunk
            .as_ref()
            .map(domain::trunk::TrunkName::as_str),
        Some("zoom-us")
    );
    let (_, page) = get(&t, &client, &path).await;
    assert!(
        page.contains("href=\"/operator/trunks/zoom-us\"") && page.contains("selected"),
        "{page}"
    );

    // In use: deleting is refused with the reason on the page.
    let (status, _, page) =
        post(&t, &client, "/operator/trunks/zoom-us/delete", &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 409);
    assert!(page.contains("1 customer(s) use trunk zoom-us"), "{page}");
    post(&t, &client, &format!("{path}/trunk"), &[("csrf", csrf.as_str()), ("zoom_trunk", "")])
        .await;
    let (status, location, _) =
        post(&t, &client, "/operator/trunks/zoom-us/delete", &[("csrf", csrf.as_str())]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/operator/trunks")));
    assert!(t.app.trunks().await.unwrap().is_empty());
}

async fn bad_destination_is_named_and_reader_cannot_create(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "zoom-us"),
        ("destinations", "zoom-a.example"),
        ("country_code", "1"),
        ("national_prefix", "1"),
        ("international_prefix", "011"),
    ];
    let (status, _, page) = post(&t, &client, "/operator/trunks", &form).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("destinations: &#34;zoom-a.example&#34; is not a SIP URI")
            && page.contains("aria-invalid"),
        "{page}"
    );
    assert!(t.app.trunks().await.unwrap().is_empty());

    let (reader, csrf) = t.operator_browser(READER_EMAIL).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "zoom-us"),
        ("destinations", "sip:zoom-a.example"),
        ("country_code", "1"),
        ("national_prefix", "1"),
        ("international_prefix", "011"),
    ];
    let (status, _, _) = post(&t, &reader, "/operator/trunks", &form).await;
    assert_eq!(status, 403);
    assert!(t.app.trunks().await.unwrap().is_empty());
}
