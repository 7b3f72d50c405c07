//! `peerex webhooks` as an operator runs it, on both databases.

mod common;
use common::Cli;

#[tokio::test]
async fn webhooks_add_list_disable_rotate_and_remove_on_sqlite() {
    webhooks_add_list_disable_rotate_and_remove(Cli::on(testkit::Db::Sqlite).await)
}

#[tokio::test]
async fn webhooks_add_list_disable_rotate_and_remove_on_postgres() {
    webhooks_add_list_disable_rotate_and_remove(Cli::on(testkit::Db::Postgres).await)
}

fn webhooks_add_list_disable_rotate_and_remove(cli: Cli) {
    // Secrets are sealed: without a key nothing is added.
    let e = cli.err(&["webhooks", "add", "https://93.184.216.34/hook"]);
    assert!(e.contains("webhooks.secret_key"), "{e}");
    let key = format!("k1:{}", "A".repeat(43) + "=");
    cli.file("peerex.toml", format!("[webhooks]\nsecret_key = \"{key}\"\n").as_bytes());
    let out = cli.ok(&["webhooks", "add", "https://93.184.216.34/hook", "--event", "order.placed"]);
    assert!(out.contains("secret (shown only now): whsec_"), "{out}");
    let e = cli.err(&["webhooks", "add", "http://127.0.0.1:9/hook"]);
    assert!(e.contains("url: 127.0.0.1 is 127.0.0.1, a loopback address"), "{e}");
    let e = cli.err(&["webhooks", "add", "https://93.184.216.34/hook", "--event", "nope"]);
    assert!(e.contains("event_types: \"nope\" is not an event type"), "{e}");

    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["webhooks", "list", "--json"])).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["event_types"], serde_json::json!(["order.placed"]));
    assert!(!list.to_string().contains("whsec_"));
    assert!(cli.ok(&["webhooks", "disable", &id]).contains("disabled"));
    assert!(cli.ok(&["webhooks", "list"]).contains("DISABLED"));
    assert!(cli.ok(&["webhooks", "enable", &id]).contains("enabled"));
    let out = cli.ok(&["webhooks", "rotate-secret", &id, "--overlap-hours", "2"]);
    assert!(out.contains("new secret (shown only now): whsec_") && out.contains("signs beside it"));
    assert_eq!(cli.ok(&["webhooks", "deliveries", &id]), "");
    assert_eq!(
        cli.ok(&["webhooks", "events"]).lines().count(),
        domain::webhook::EventType::ALL.len()
    );
    assert!(cli.ok(&["webhooks", "remove", &id]).contains("removed"));
    assert!(cli.err(&["webhooks", "remove", &id]).contains("not found"));
}
