//! The operator portal's Mail page and a customer's billing reference, on both databases.

mod operator_support;

use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    the_mail_page_lists_failed_mails_and_says_mail_is_off,
    billing_reference_is_set_and_cleared_by_an_admin_only,
);

async fn the_mail_page_lists_failed_mails_and_says_mail_is_off(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, html) = get(&t, &client, "/operator/mails").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"mail-off\""), "{html}");
    assert!(html.contains("No failed mails."), "{html}");
    let (status, _) = get(&t, &client, "/operator/mails?state=lost").await;
    assert_eq!(status, 422);
    let (status, html) = get(&t, &client, "/operator/mails?state=all").await;
    assert_eq!(status, 200);
    assert!(html.contains("Showing: <strong>all</strong>"), "{html}");
}

async fn billing_reference_is_set_and_cleared_by_an_admin_only(db: Db) {
    let t = TestApp::spawn(db).await;
    let c = t.app.create_customer("Acme", "C-1").await.unwrap().id;
    let path = format!("/operator/customers/{c}/billing-ref");
    let (reader, reader_csrf) = t.operator_browser(READER_EMAIL).await;
    let (status, _, _) =
        post(&t, &reader, &path, &[("csrf", reader_csrf.as_str()), ("billing_ref", "X")]).await;
    assert_eq!(status, 403);
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _, _) =
        post(&t, &client, &path, &[("csrf", csrf.as_str()), ("billing_ref", " ACCT-9 ")]).await;
    assert_eq!(status, 303);
    assert_eq!(t.app.customer(c).await.unwrap().billing_ref.as_deref(), Some("ACCT-9"));
    let (_, html) = get(&t, &client, &format!("/operator/customers/{c}")).await;
    assert!(html.contains("ACCT-9"));
    let long = "x".repeat(65);
    let (status, _, html) =
        post(&t, &client, &path, &[("csrf", csrf.as_str()), ("billing_ref", long.as_str())]).await;
    assert_eq!(status, 422);
    assert!(html.contains("billing_ref"), "{html}");
    let (status, _, _) =
        post(&t, &client, &path, &[("csrf", csrf.as_str()), ("billing_ref", "")]).await;
    assert_eq!(status, 303);
    assert_eq!(t.app.customer(c).await.unwrap().billing_ref, None);
}
