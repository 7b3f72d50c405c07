//! The operator portal's API tokens: the clear token is shown once; revoking works. On both databases.

mod operator_support;

use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    token_is_shown_once_and_works_until_revoked,
    token_without_a_name_is_named,
    read_only_or_csrf_less_token_change_is_403
);

/// The clear token on a page, if it shows one.
fn clear_token(page: &str) -> Option<String> {
    let start = page.find("value=\"pxt_")? + "value=\"".len();
    Some(page[start..].split('"').next()?.to_owned())
}

async fn token_is_shown_once_and_works_until_revoked(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let r = client
        .post(format!("{}/operator/tokens", t.url))
        .form(&[("csrf", csrf.as_str()), ("name", "billing"), ("scope", "write")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("Copy the token") && page.contains("shown only this once"), "{page}");
    let clear = clear_token(&page).expect("the new token is on the page");
    let token = t.app.authenticate_token(&clear).await.unwrap().expect("the token works");
    assert_eq!(
        (token.name.as_str(), token.scope, token.created_by.as_str()),
        ("billing", domain::auth::Scope::Write, ADMIN_EMAIL)
    );

    let (_, list) = get(&t, &client, "/operator/tokens").await;
    assert!(list.contains("billing") && list.contains(ADMIN_EMAIL));
    assert!(clear_token(&list).is_none() && !list.contains(&clear), "never shown again");

    let (status, location, _) = post(
        &t,
        &client,
        &format!("/operator/tokens/{}/revoke", token.id),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some("/operator/tokens")));
    assert!(t.app.authenticate_token(&clear).await.unwrap().is_none(), "revoked");
    let (_, list) = get(&t, &client, "/operator/tokens").await;
    assert!(!list.contains("Revoke</button>"), "{list}");
    // Revoking again is done already; an unknown token is not found.
    assert_eq!(
        post(
            &t,
            &client,
            &format!("/operator/tokens/{}/revoke", token.id),
            &[("csrf", csrf.as_str())]
        )
        .await
        .0,
        303
    );
    assert_eq!(
        post(
            &t,
            &client,
            &format!("/operator/tokens/{}/revoke", uuid::Uuid::now_v7()),
            &[("csrf", csrf.as_str())]
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(&t, &client, "/operator/tokens/nope/revoke", &[("csrf", csrf.as_str())]).await.0,
        404
    );
}

async fn token_without_a_name_is_named(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _, page) = post(
        &t,
        &client,
        "/operator/tokens",
        &[("csrf", csrf.as_str()), ("name", " "), ("scope", "read")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("name: give the token a name") && clear_token(&page).is_none(), "{page}");
    let (status, _, page) = post(
        &t,
        &client,
        "/operator/tokens",
        &[("csrf", csrf.as_str()), ("name", "x"), ("scope", "admin")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("scope: choose read or write"), "{page}");
    assert!(t.app.tokens().await.unwrap().is_empty());
}

async fn read_only_or_csrf_less_token_change_is_403(db: Db) {
    let t = TestApp::spawn(db).await;
    let (_, existing) = t.app.create_token("ops", domain::auth::Scope::Read, "test").await.unwrap();
    let (reader, reader_csrf) = t.operator_browser(READER_EMAIL).await;
    let (status, list) = get(&t, &reader, "/operator/tokens").await;
    assert_eq!(status, 200);
    assert!(list.contains("ops") && !list.contains("Revoke</button>"));
    assert_eq!(
        post(
            &t,
            &reader,
            "/operator/tokens",
            &[("csrf", reader_csrf.as_str()), ("name", "mine"), ("scope", "write")]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(
            &t,
            &reader,
            &format!("/operator/tokens/{}/revoke", existing.id),
            &[("csrf", reader_csrf.as_str())]
        )
        .await
        .0,
        403
    );
    let (admin, _) = t.operator_browser(ADMIN_EMAIL).await;
    assert_eq!(
        post(&t, &admin, "/operator/tokens", &[("name", "mine"), ("scope", "write")]).await.0,
        403
    );
    assert_eq!(
        post(&t, &admin, &format!("/operator/tokens/{}/revoke", existing.id), &[("csrf", "x")])
            .await
            .0,
        403
    );
    let tokens = t.app.tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked_at.is_none());
}
