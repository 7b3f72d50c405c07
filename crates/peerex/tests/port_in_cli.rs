//! `peerex port-in create|list|show|reschedule|complete|cancel` on real databases, as an operator runs
//! them. The customer here has not linked Zoom yet: the port-in waits to be pushed, cannot be
//! completed, and its cancel frees the numbers at once (Zoom never had them).

use domain::NumberState;

mod common;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(testkit::Db::Sqlite).await })* }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(testkit::Db::Postgres).await })* }
    };
}

on_both!(a_port_in_is_recorded_followed_moved_and_cancelled_from_the_command_line);

async fn a_port_in_is_recorded_followed_moved_and_cancelled_from_the_command_line(db: testkit::Db) {
    let cli = common::Cli::on(db).await;
    let store = store::Store::connect(&cli.url).await.unwrap();
    store.migrate().await.unwrap();
    let c = testkit::insert_customer(&store, "Acme").await.to_string();
    let date = (time::OffsetDateTime::now_utc().date() + time::Duration::days(3)).to_string();

    let e = cli.err(&[
        "port-in",
        "create",
        "--customer",
        &c,
        "--number",
        "+15550109000,12",
        "--losing-carrier",
        "Old Tel",
        "--date",
        &date,
    ]);
    assert!(e.contains("numbers: numbers[1]"), "{e}");
    let e = cli.err(&[
        "port-in",
        "create",
        "--customer",
        &c,
        "--number",
        "+15550109000",
        "--losing-carrier",
        "Old Tel",
        "--date",
        "2020-01-01",
    ]);
    assert!(e.contains("requested_date: 2020-01-01 is in the past"), "{e}");

    let out = cli.ok(&[
        "port-in",
        "create",
        "--customer",
        &c,
        "--number",
        "+15550109000,+15550109001",
        "--losing-carrier",
        "Old Tel",
        "--date",
        &date,
        "--json",
    ]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (p["state"].as_str(), p["numbers"].as_array().unwrap().len()),
        (Some("requested"), 2)
    );
    let id = p["id"].as_str().unwrap().to_owned();

    let list = cli.ok(&["port-in", "list"]);
    assert!(
        list.lines().count() == 2 && list.contains("requested") && list.contains("Old Tel"),
        "{list}"
    );
    let show = cli.ok(&["port-in", "show", &id]);
    assert!(show.contains("+15550109000      porting"), "{show}");

    let later = (time::OffsetDateTime::now_utc().date() + time::Duration::days(7)).to_string();
    let out = cli.ok(&["port-in", "reschedule", &id, "--date", &later]);
    assert!(out.contains(&format!("moved from {date} to {later}")), "{out}");
    let e = cli.err(&["port-in", "complete", &id]);
    assert!(e.contains("state: the port-in is requested"), "{e}");

    let out = cli.ok(&["port-in", "cancel", &id]);
    assert!(out.contains("Cancelled") && out.contains("+15550109000      available"), "{out}");
    let n = store
        .get_number_by_e164(&domain::PhoneNumber::parse("+15550109001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n.state, n.customer_id), (NumberState::Available, None));
    assert!(cli.err(&["port-in", "cancel", &id]).contains("cancelled"));
    assert!(cli
        .err(&["port-in", "show", "0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"])
        .contains("not found"));
}
