//! `peerex customers set-limit` as an operator runs it, and orders refused past the limit, on both
//! databases.

mod common;
use common::Cli;

#[tokio::test]
async fn a_number_limit_is_set_shown_enforced_and_lifted_on_sqlite() {
    a_number_limit_is_set_shown_enforced_and_lifted(Cli::on(testkit::Db::Sqlite).await)
}

#[tokio::test]
async fn a_number_limit_is_set_shown_enforced_and_lifted_on_postgres() {
    a_number_limit_is_set_shown_enforced_and_lifted(Cli::on(testkit::Db::Postgres).await)
}

fn a_number_limit_is_set_shown_enforced_and_lifted(cli: Cli) {
    let c: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "customers",
        "create",
        "--name",
        "Acme",
        "--contract-ref",
        "C-1",
        "--json",
    ]))
    .unwrap();
    let id = c["id"].as_str().unwrap();
    assert!(c["number_limit"].is_null(), "no limit at first: {c}");
    cli.ok(&["numbers", "import", "--range", "+15550100000-+15550100019"]);
    cli.ok(&["orders", "create", "--customer", id, "--count", "2"]);

    assert_eq!(
        cli.ok(&["customers", "set-limit", id, "5"]).trim(),
        "Acme may hold at most 5 numbers (holds 2)"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["customers", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["number_limit"], 5);
    let refused = cli.err(&["orders", "create", "--customer", id, "--count", "4"]);
    assert!(
        refused.contains("number limit: at most 5 numbers may be held at once; 2 are held and this order asks for 4 more"),
        "{refused}"
    );
    cli.ok(&["orders", "create", "--customer", id, "--count", "3"]);

    // Bad input names what is wrong; nothing changes.
    assert!(cli.err(&["customers", "set-limit", id, "-3"]).contains("LIMIT"));
    assert!(cli
        .err(&["customers", "set-limit", id, "20000000"])
        .contains("number_limit: must be 0 to 10000000"));
    assert!(cli.err(&["customers", "set-limit", "not-an-id", "5"]).contains("customer"));

    assert_eq!(
        cli.ok(&["customers", "set-limit", id, "--none"]).trim(),
        "Acme has no number limit (holds 5)"
    );
    cli.ok(&["orders", "create", "--customer", id, "--count", "4"]);
}
