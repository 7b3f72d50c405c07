//! `peerex usage` as a billing clerk runs it: today's records taken by hand once, printed as CSV or
//! JSON, and bad input named, on both databases.

mod common;
use common::Cli;

#[tokio::test]
async fn usage_is_taken_once_and_printed_as_csv_and_json_on_sqlite() {
    usage_is_taken_once_and_printed_as_csv_and_json(Cli::on(testkit::Db::Sqlite).await)
}

#[tokio::test]
async fn usage_is_taken_once_and_printed_as_csv_and_json_on_postgres() {
    usage_is_taken_once_and_printed_as_csv_and_json(Cli::on(testkit::Db::Postgres).await)
}

fn usage_is_taken_once_and_printed_as_csv_and_json(cli: Cli) {
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
    cli.ok(&["numbers", "import", "--range", "+15550100000-+15550100019"]);
    cli.ok(&["orders", "create", "--customer", id, "--count", "2"]);

    let csv = cli.ok(&["usage", "--take"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("day,customer_id,customer_name,"), "{csv}");
    let row = lines.next().unwrap();
    assert!(row.contains(&format!(",{id},Acme,,2,0,0,0,0,0,0,0,0,")), "{row}");
    assert!(lines.next().is_none());
    // Taken again: the record of the day is kept as it was.
    cli.ok(&["orders", "create", "--customer", id, "--count", "1"]);
    assert_eq!(cli.ok(&["usage", "--take"]), csv);

    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["usage", "--format", "json", "--customer", id])).unwrap();
    assert_eq!(json[0]["reserved"], 2);
    assert!(cli.err(&["usage", "--day", "2026-02-30"]).contains("from"));
    assert!(cli.err(&["usage", "--customer", "nobody"]).contains("customer"));
    assert!(cli.err(&["usage", "--format", "xml"]).contains("--format"));
}
