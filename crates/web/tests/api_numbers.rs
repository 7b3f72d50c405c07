//! The inventory over the JSON API: import (range and CSV), search, pagination, export, a number's
//! audit trail. Every answer is checked against the OpenAPI document (see `api_support`).

mod api_support;

use api_support::{urlencode, Api};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use testkit::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both!(
    range_import_adds_numbers_that_search_finds,
    csv_with_bad_rows_lists_each_row_and_imports_nothing,
    good_csv_is_imported_with_its_columns,
    dry_run_reports_and_writes_nothing,
    numbers_already_in_inventory_refuse_the_whole_import,
    bad_range_and_attributes_are_named,
    oversized_csv_is_refused_before_it_is_read,
    unsupported_body_type_is_refused,
    pagination_walks_every_number_exactly_once,
    export_streams_matching_numbers_as_csv,
    sql_metacharacters_in_search_are_harmless,
    number_detail_has_events_and_unknown_ids_are_not_found,
);

fn numbers_of(page: &[Value]) -> Vec<String> {
    page.iter().map(|n| n["number"].as_str().unwrap().to_owned()).collect()
}

async fn range_import_adds_numbers_that_search_finds(db: Db) {
    let api = Api::spawn(db).await;
    let r = api.post("/numbers/import", json!({"range": "+15550100000-+15550100099", "tags": ["nyc", "Premium"], "region": "US-NY"})).await.ok(200);
    assert_eq!(r, json!({"added": 100, "valid": 100, "dry_run": false}));
    let found = api.all_numbers("tag=premium").await;
    assert_eq!(found.len(), 100);
    assert_eq!(found[0]["number"], "+15550100000");
    assert_eq!(found[0]["state"], "available");
    assert_eq!(found[0]["tags"], json!(["nyc", "premium"]));
    assert_eq!(found[0]["region"], "US-NY");
}

async fn csv_with_bad_rows_lists_each_row_and_imports_nothing(db: Db) {
    let api = Api::spawn(db).await;
    let csv = "number,tags,region\n+15550100000,nyc,US-NY\n5550100001,,\n+15550100002,bad!tag,\n+15550100000,,\n+15550100003,,\n";
    let r = api
        .send(
            api.request(Method::POST, "/numbers/import")
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    let p = r.problem(422);
    let errors: Vec<(u64, &str, &str)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap(),
                e["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [(3, "number", "5550100001"), (4, "tags", "bad!tag"), (5, "number", "+15550100000")]
    );
    assert!(p["errors"][0]["reason"].as_str().unwrap().contains("E.164"), "{p}");
    assert!(p["errors"][2]["reason"].as_str().unwrap().contains("duplicate"), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("nothing was imported"), "{p}");
    assert!(api.all_numbers("").await.is_empty(), "the good rows were not imported either");
}

async fn good_csv_is_imported_with_its_columns(db: Db) {
    let api = Api::spawn(db).await;
    let csv = "\u{FEFF}Number,Tags,Billing_Ref,Region,Note\r\n+15550100000,nyc;premium,B-1,\"US, NY\",first\r\n+15550100001,,,,\r\n";
    let r = api
        .send(
            api.request(Method::POST, "/numbers/import")
                .header("content-type", "text/csv; charset=utf-8")
                .body(csv),
        )
        .await
        .ok(200);
    assert_eq!(r, json!({"added": 2, "valid": 2, "dry_run": false}));
    let found = api.all_numbers("").await;
    assert_eq!(numbers_of(&found), ["+15550100000", "+15550100001"]);
    assert_eq!(found[0]["billing_ref"], "B-1");
    assert_eq!(found[0]["region"], "US, NY");
    assert_eq!(found[0]["note"], "first");
    assert_eq!(found[1]["tags"], json!([]));
    assert_eq!(found[1]["region"], Value::Null);
}

async fn dry_run_reports_and_writes_nothing(db: Db) {
    let api = Api::spawn(db).await;
    let r = api
        .post("/numbers/import", json!({"range": "+15550100000-+15550100009", "dry_run": true}))
        .await
        .ok(200);
    assert_eq!(r, json!({"added": 0, "valid": 10, "dry_run": true}));
    let csv = "number\n+15550100000\n+15550100001\n";
    let r = api
        .send(
            api.request(Method::POST, "/numbers/import?dry_run=true")
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await
        .ok(200);
    assert_eq!(r, json!({"added": 0, "valid": 2, "dry_run": true}));
    // A dry run still finds every bad row.
    let r = api
        .send(
            api.request(Method::POST, "/numbers/import?dry_run=true")
                .header("content-type", "text/csv")
                .body("number\nnope\n"),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["row"], 2);
    assert!(api.all_numbers("").await.is_empty());
}

async fn numbers_already_in_inventory_refuse_the_whole_import(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100005-+15550100009", &[]).await;
    let r = api.post("/numbers/import", json!({"range": "+15550100000-+15550100009"})).await;
    let p = r.problem(422);
    let rows: Vec<u64> =
        p["errors"].as_array().unwrap().iter().map(|e| e["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, [6, 7, 8, 9, 10], "{p}");
    assert_eq!(p["errors"][0]["reason"], "already in inventory");
    assert_eq!(api.all_numbers("").await.len(), 5, "the new numbers of the range were not added");
}

async fn bad_range_and_attributes_are_named(db: Db) {
    let api = Api::spawn(db).await;
    for (body, field) in [
        (json!({"range": "+15550100009-+15550100000"}), "range"),
        (json!({"range": "5550100000"}), "range"),
        (json!({"range": "+15550100000-+15550100001", "tags": ["a b"]}), "tags"),
        (json!({"range": "+15550100000-+15550100001", "tags": ["no!"]}), "tags"),
        (json!({"range": "+15550100000-+15550100001", "note": "x".repeat(501)}), "note"),
        (json!({"range": "+15550100000-+15550100001", "region": "a\u{7}b"}), "region"),
        (json!({"range": "+15550100000-+15550100001", "dry_run": "yes"}), "dry_run"),
        (json!({"range": "+15550100000-+15550100001", "colour": "red"}), "colour"),
    ] {
        let p = api.post("/numbers/import", body.clone()).await.problem(422);
        assert_eq!(p["field"], field, "{body} -> {p}");
    }
    assert!(api.all_numbers("").await.is_empty());
}

async fn oversized_csv_is_refused_before_it_is_read(db: Db) {
    let api = Api::spawn(db).await;
    // Declares 65 MiB and sends a few bytes: the answer must come without the rest being read.
    let mut socket = tokio::net::TcpStream::connect(api.t.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/numbers/import HTTP/1.1\r\nHost: peerex\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\nnumber\n",
        api.token,
        65 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"status\":413") {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("an answer without the body being sent");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("content-type: application/problem+json"), "{answer}");
}

async fn unsupported_body_type_is_refused(db: Db) {
    let api = Api::spawn(db).await;
    let r = api
        .send(
            api.request(Method::POST, "/numbers/import")
                .header("content-type", "application/xml")
                .body("<numbers/>"),
        )
        .await;
    r.problem(415);
    let r =
        api.send(api.request(Method::POST, "/numbers/import").body("number\n+15550100000\n")).await;
    r.problem(415);
}

async fn pagination_walks_every_number_exactly_once(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100249", &[]).await;
    // 50 divides 250: the last full page still points at a next, empty page.
    for limit in [7, 50, 500] {
        let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = api
                .get(&format!("/numbers?prefix=%2B1555&limit={limit}&after={after}"))
                .await
                .ok(200);
            pages += 1;
            let numbers = numbers_of(page["numbers"].as_array().unwrap());
            assert!(numbers.len() <= limit);
            seen.extend(numbers);
            match page["next_after"].as_str() {
                Some(next) => after = urlencode(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 250, "limit {limit}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            250,
            "limit {limit}: a number came twice"
        );
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "limit {limit}: E.164 order");
        assert_eq!(
            pages,
            250_usize.div_ceil(limit) + usize::from(250 % limit == 0),
            "limit {limit}"
        );
    }
    for bad in ["limit=0", "limit=501", "limit=ten", "after=15550100000"] {
        let p = api.get(&format!("/numbers?{bad}")).await.problem(422);
        assert_eq!(p["field"], bad.split('=').next().unwrap(), "{p}");
    }
}

async fn export_streams_matching_numbers_as_csv(db: Db) {
    let api = Api::spawn(db).await;
    // More than two search pages, so the export has to follow the cursor.
    api.import_range("+15550100000-+15550101200", &["bulk"]).await;
    api.post("/numbers/import", json!({"range": "+15550200000-+15550200002", "tags": ["vip", "nyc"], "region": "US-NY", "note": "has, a comma"})).await.ok(200);

    let r = api.get("/numbers/export.csv").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/csv"));
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(
        lines[0],
        "number,tags,billing_ref,region,note,id,state,customer_id,order_id,reason,updated_at,\
         emergency_address,emergency_address_missing,cnam,number_type,voice_direction,\
         voice_msg_capacity,message_capability,outbound_restrictions"
    );
    assert_eq!(lines.len(), 1 + 1201 + 3);
    let numbers: HashSet<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(numbers.len(), 1204, "every number once");

    let r = api.get("/numbers/export.csv?tag=vip").await;
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][0], "+15550200000");
    assert_eq!(&rows[0][1], "vip;nyc");
    assert_eq!(&rows[0][3], "US-NY");
    assert_eq!(&rows[0][4], "has, a comma");
    assert_eq!(&rows[0][6], "available");

    let r = api.get("/numbers/export.csv?state=sold").await;
    assert_eq!(r.problem(422)["field"], "state");
    let r = api.get("/numbers/export.csv?region=nowhere").await;
    assert_eq!(r.text.lines().count(), 1, "only the header");
}

async fn sql_metacharacters_in_search_are_harmless(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100004", &["nyc"]).await;
    let payloads = [
        "' OR '1'='1",
        "'; DROP TABLE numbers; --",
        "%",
        "_",
        "\\",
        "\" OR \"\"=\"",
        "1) OR (1=1",
        "nyc%' --",
        "\u{0}",
    ];
    for param in ["prefix", "state", "customer_id", "tag", "region", "after", "limit"] {
        for payload in payloads {
            let path = format!("/numbers?{param}={}", urlencode(payload));
            let r = api.get(&path).await;
            match r.status {
                200 => assert_eq!(r.json()["numbers"], json!([]), "{path} found numbers"),
                422 => assert_eq!(r.problem(422)["field"], param, "{path}"),
                other => panic!("{path} answered {other}: {}", r.text),
            }
            if !["after", "limit"].contains(&param) {
                let r =
                    api.get(&format!("/numbers/export.csv?{param}={}", urlencode(payload))).await;
                assert!(
                    r.status == 422 || r.text.lines().count() == 1,
                    "{param}={payload:?}: {}",
                    r.text
                );
            }
        }
    }
    assert_eq!(api.all_numbers("").await.len(), 5, "the inventory is intact");
}

async fn number_detail_has_events_and_unknown_ids_are_not_found(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100000", &[]).await;
    let id = api.all_numbers("").await[0]["id"].as_str().unwrap().to_owned();
    let n = api.get(&format!("/numbers/{id}")).await.ok(200);
    assert_eq!(n["number"], "+15550100000");
    assert_eq!(n["events"].as_array().unwrap().len(), 1);
    assert_eq!(n["events"][0]["to"], "available");
    assert_eq!(n["events"][0]["actor"], "token:test");
    for bad in ["0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e", "not-an-id", "%27%20OR%201%3D1"] {
        api.get(&format!("/numbers/{bad}")).await.problem(404);
    }
}
