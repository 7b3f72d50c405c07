//! `peerex trunks` and `peerex customers set-trunk` as an operator runs them, on both databases.

mod common;
use common::Cli;

#[tokio::test]
async fn trunks_add_list_bind_and_remove_on_sqlite() {
    trunks_add_list_bind_and_remove(Cli::on(testkit::Db::Sqlite).await)
}

#[tokio::test]
async fn trunks_add_list_bind_and_remove_on_postgres() {
    trunks_add_list_bind_and_remove(Cli::on(testkit::Db::Postgres).await)
}

fn trunks_add_list_bind_and_remove(cli: Cli) {
    let out = cli.ok(&[
        "trunks",
        "add",
        "zoom-us",
        "--destination",
        "sip:zoom-a.example:5061;transport=tls",
        "--destination",
        "sip:zoom-b.example",
    ]);
    assert!(out.contains("trunk zoom-us created: 2 destination(s); numbering +1, national prefix 1, international prefix 011"), "{out}");
    let out = cli.ok(&[
        "trunks",
        "add",
        "zoom-de",
        "--destination",
        "sip:zoom-de.example",
        "--country-code",
        "49",
        "--national-prefix",
        "0",
        "--international-prefix",
        "00",
    ]);
    assert!(out.contains("numbering +49, national prefix 0, international prefix 00"), "{out}");

    // Bad input names the field.
    assert!(cli
        .err(&["trunks", "add", "zoom-us", "--destination", "sip:x.example"])
        .contains("name: a trunk with this name already exists"));
    assert!(cli
        .err(&["trunks", "add", "bad", "--destination", "http://x"])
        .contains("destinations: \"http://x\" is not a SIP URI"));
    assert!(cli
        .err(&["trunks", "add", "bad", "--destination", "sip:x.example", "--country-code", "abc"])
        .contains("country_code: must be 1 to 3 digits"));

    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["trunks", "list", "--json"])).unwrap();
    let us =
        list.as_array().unwrap().iter().find(|t| t["name"] == "zoom-us").expect("zoom-us listed");
    assert_eq!(
        us["destinations"],
        serde_json::json!(["sip:zoom-a.example:5061;transport=tls", "sip:zoom-b.example"])
    );
    let text = cli.ok(&["trunks", "list"]);
    assert!(text.contains("zoom-de") && text.contains("sip:zoom-de.example"), "{text}");

    let c: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "customers",
        "create",
        "--name",
        "Acme",
        "--contract-ref",
        "A",
        "--json",
    ]))
    .unwrap();
    let id = c["id"].as_str().unwrap();
    assert!(cli
        .ok(&["customers", "set-trunk", id, "zoom-us"])
        .contains("Acme now uses Zoom trunk zoom-us"));
    assert!(cli
        .err(&["customers", "set-trunk", id, "nope"])
        .contains("zoom_trunk: there is no trunk named \"nope\""));
    assert!(cli
        .err(&["customers", "set-trunk", "not-an-id", "zoom-us"])
        .contains("is not a customer id"));

    // A trunk in use stays; once no customer uses it, it goes.
    assert!(cli
        .err(&["trunks", "remove", "zoom-us"])
        .contains("1 customer(s) use trunk zoom-us; move them to another trunk first"));
    assert!(cli.ok(&["customers", "set-trunk", id, "--none"]).contains("Acme has no Zoom trunk"));
    assert!(cli.ok(&["trunks", "remove", "zoom-us"]).contains("trunk zoom-us removed"));
    let list: serde_json::Value =
        serde_json::from_str(&cli.ok(&["trunks", "list", "--json"])).unwrap();
    assert_eq!(
        list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["zoom-de"]
    );
}
