//! The operator portal's inventory: import (preview and all-or-nothing), search, export, a number's
//! page. Over real HTTP, on both databases.

mod operator_support;

use domain::NumberState;
use operator_support::*;
use testkit::{Db, TestApp, ADMIN_EMAIL, READER_EMAIL};

on_both!(
    preview_with_bad_rows_shows_each_reason_and_writes_nothing,
    good_import_is_found_by_prefix_and_its_page_shows_the_imported_audit_entry,
    range_import_applies_tags_and_a_bad_range_is_named,
    read_only_operator_may_preview_but_not_import,
    import_without_csrf_is_refused_and_writes_nothing,
    upload_over_the_limit_is_refused_with_a_message,
    search_pages_through_results_with_next_links,
    bad_search_filter_is_named_on_the_form,
    export_streams_every_matching_number_as_csv,
    export_cells_a_spreadsheet_would_run_are_neutralised_and_import_back,
    unknown_or_garbage_number_is_404,
);

const BAD_CSV: &str = "number,tags,region\n+15550100000,nyc,US-NY\n5550100001,nyc,US-NY\n+15550100000,nyc,US-NY\n+15550100002,,\n+15550109999,,\n";

async fn preview_with_bad_rows_shows_each_reason_and_writes_nothing(db: Db) {
    let t = TestApp::spawn(db).await;
    seed_range(&t, "+15550109999-+15550109999", &[]).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;

    let (status, page) = import_csv(&t, &client, &csrf, "preview", BAD_CSV).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Preview: 3 rows have problems"), "{page}");
    // Each row's problem, with its row and the value at fault.
    assert!(
        page.contains("<td class=\"num\">3</td>")
            && page.contains("5550100001")
            && page.contains("not E.164"),
        "{page}"
    );
    assert!(page.contains("duplicate in file (first on row 2)"), "{page}");
    assert!(
        page.contains("<td class=\"num\">6</td>") && page.contains("already in inventory"),
        "{page}"
    );
    assert_eq!(total(&t).await, 1, "a preview writes nothing");

    // Importing the same file is refused whole: the two good rows are not added either.
    let (status, page) = import_csv(&t, &client, &csrf, "import", BAD_CSV).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Nothing was imported")
            && page.contains("not E.164")
            && page.contains("duplicate in file"),
        "{page}"
    );
    assert_eq!(total(&t).await, 1);
}

async fn good_import_is_found_by_prefix_and_its_page_shows_the_imported_audit_entry(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let csv = "number,tags,billing_ref,region,note\n+15550100000,nyc;premium,B-1,US-NY,\"lobby, 1st floor\"\n+15550100001,nyc,,US-NY,\n+442071838750,,,GB-LND,\n";

    let (status, page) = import_csv(&t, &client, &csrf, "preview", csv).await;
    assert_eq!(status, 200);
    assert!(page.contains("Preview: 3 numbers would be added"), "{page}");
    assert_eq!(total(&t).await, 0);

    let (status, page) = import_csv(&t, &client, &csrf, "import", csv).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Imported 3 numbers"), "{page}");
    assert_eq!(count(&t, NumberState::Available).await, 3);

    let (status, page) = get(&t, &client, "/operator/numbers?prefix=%2B1555").await;
    assert_eq!(status, 200);
    assert_eq!(number_rows(&page), 2, "{page}");
    assert!(
        page.contains("+15550100000")
            && page.contains("+15550100001")
            && !page.contains("+442071838750")
    );
    let (_, by_tag) = get(&t, &client, "/operator/numbers?tag=premium").await;
    assert_eq!(number_rows(&by_tag), 1);
    let (_, by_region) = get(&t, &client, "/operator/numbers?region=GB-LND&state=available").await;
    assert_eq!(number_rows(&by_region), 1);
    assert!(by_region.contains("+442071838750"));

    let (status, detail) = get(&t, &client, &first_number_link(&page).unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        detail.contains("+15550100000")
            && detail.contains("lobby, 1st floor")
            && detail.contains("B-1"),
        "{detail}"
    );
    assert!(
        detail.contains("Audit trail")
            && detail.contains("imported")
            && detail.contains(&format!("operator:{ADMIN_EMAIL}")),
        "{detail}"
    );
}

async fn range_import_applies_tags_and_a_bad_range_is_named(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, page) =
        import_range(&t, &client, &csrf, "import", "+15550100000-+15550100009", "trial").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Imported 10 numbers"), "{page}");
    let (_, found) = get(&t, &client, "/operator/numbers?tag=trial").await;
    assert_eq!(number_rows(&found), 10);

    let (status, page) =
        import_range(&t, &client, &csrf, "import", "+15550100009-+15550100000", "").await;
    assert_eq!(status, 422);
    assert!(page.contains("range: the last number is before the first"), "{page}");
    let (status, page) =
        import_range(&t, &client, &csrf, "preview", "+15550200000-+15550200001", "bad!tag").await;
    assert_eq!(status, 422);
    assert!(
        page.contains("tags: tag &#39;bad!tag&#39;") || page.contains("tags: tag 'bad!tag'"),
        "{page}"
    );
    assert_eq!(total(&t).await, 10);
}

async fn read_only_operator_may_preview_but_not_import(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(READER_EMAIL).await;
    let csv = "number\n+15550100000\n";
    let (status, page) = import_csv(&t, &client, &csrf, "preview", csv).await;
    assert_eq!(status, 200);
    assert!(page.contains("1 number would be added") && page.contains("read-only"), "{page}");
    let (status, _) = import_csv(&t, &client, &csrf, "import", csv).await;
    assert_eq!(status, 403);
    assert_eq!(total(&t).await, 0);
}

async fn import_without_csrf_is_refused_and_writes_nothing(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, _) = import_csv(&t, &client, "", "import", "number\n+15550100000\n").await;
    assert_eq!(status, 403);
    let (status, _) = import_csv(&t, &client, "forged", "import", "number\n+15550100000\n").await;
    assert_eq!(status, 403);
    assert_eq!(total(&t).await, 0);
}

async fn upload_over_the_limit_is_refused_with_a_message(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let mut csv = String::from("number\n");
    while csv.len() <= web::operator::MAX_UPLOAD_BYTES {
        csv.push_str("+15550100000\n");
    }
    let (status, page) = import_csv(&t, &client, &csrf, "import", &csv).await;
    assert_eq!(status, 413);
    assert!(page.contains("file: the upload is larger than 64 MiB"), "{page}");
    assert_eq!(total(&t).await, 0);
}

async fn search_pages_through_results_with_next_links(db: Db) {
    let t = TestApp::spawn(db).await;
    seed_range(&t, "+15550100000-+15550100249", &[]).await;
    seed_range(&t, "+15550200000-+15550200009", &[]).await;
    let (client, _) = t.operator_browser(READER_EMAIL).await;

    let mut path = "/operator/numbers?prefix=%2B155501".to_owned();
    let mut seen = Vec::new();
    loop {
        let (status, page) = get(&t, &client, &path).await;
        assert_eq!(status, 200);
        seen.push(number_rows(&page));
        let Some(at) = page.find("rel=\"next\"") else { break };
        let href = &page[..at];
        let start = href.rfind("href=\"").unwrap() + 6;
        path = href[start..].split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&");
        assert!(path.contains("prefix=%2B155501") && path.contains("after=%2B"), "{path}");
    }
    assert_eq!(seen, vec![100, 100, 50]);
}

async fn bad_search_filter_is_named_on_the_form(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    let (status, page) = get(&t, &client, "/operator/numbers?prefix=abc").await;
    assert_eq!(status, 422);
    assert!(
        page.contains("prefix: a prefix is + and up to 15 digits") && page.contains("aria-invalid"),
        "{page}"
    );
    let (status, page) = get(&t, &client, "/operator/numbers?state=lost").await;
    assert_eq!(status, 422);
    assert!(page.contains("state: there is no state"), "{page}");
}

async fn export_streams_every_matching_number_as_csv(db: Db) {
    let t = TestApp::spawn(db).await;
    // More than two export pages, and numbers outside the filter on both sides.
    seed_range(&t, "+15550100000-+15550101233", &["bulk"]).await;
    seed_range(&t, "+15550099990-+15550099999", &[]).await;
    seed_range(&t, "+15550200000-+15550200009", &["bulk"]).await;
    let (client, _) = t.operator_browser(READER_EMAIL).await;

    let (_, page) = get(&t, &client, "/operator/numbers?prefix=%2B1555010&tag=bulk").await;
    assert!(
        page.contains("href=\"/operator/numbers/export.csv?prefix=%2B1555010&#38;tag=bulk\""),
        "the export link keeps the filters: {page}"
    );

    let r = client
        .get(format!("{}/operator/numbers/export.csv?prefix=%2B1555010&tag=bulk", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let body = r.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "number,state,customer_id,tags,billing_ref,region,note");
    assert_eq!(lines.len(), 1 + 1234);
    assert_eq!(lines[1], "+15550100000,available,,bulk,,,");
    assert_eq!(lines[1234], "+15550101233,available,,bulk,,,");
    let numbers: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order, no number twice");

    // A customer's numbers carry its id; notes with commas are quoted.
    let customer = t.app.create_customer("Acme", "C-1").await.unwrap();
    let pick = domain::customer::OrderPick {
        count: 2,
        prefix: Some("+1555020".into()),
        ..Default::default()
    };
    t.app
        .create_order(customer.id, pick, &[], &domain::Actor::System("test".into()))
        .await
        .unwrap();
    let body = client
        .get(format!("{}/operator/numbers/export.csv?customer={}", t.url, customer.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, format!("number,state,customer_id,tags,billing_ref,region,note\n+15550200000,reserved,{0},bulk,,,\n+15550200001,reserved,{0},bulk,,,\n", customer.id));

    let r = client
        .get(format!("{}/operator/numbers/export.csv?prefix=nope", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

/// Text an importer (or Zoom, or a customer) put in a number's cells that a spreadsheet would run
/// as a formula is exported with a leading `'` (shown as text); numbers keep their `+` as they are;
/// and the cells read back through peerex's import as they were.
async fn export_cells_a_spreadsheet_would_run_are_neutralised_and_import_back(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, csrf) = t.operator_browser(ADMIN_EMAIL).await;
    let csv = "number,tags,billing_ref,region,note\n\
               +15550100000,-x;y,=1+2,@SUM(A1),\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n\
               +15550100001,plain,B-1,US-NY,'quoted\n";
    let (status, page) = import_csv(&t, &client, &csrf, "import", csv).await;
    assert_eq!(status, 200, "{page}");
    let body = client
        .get(format!("{}/operator/numbers/export.csv?prefix=%2B1555010", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[1],
        "+15550100000,available,,'-x;y,'=1+2,'@SUM(A1),\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""
    );
    assert_eq!(lines[2], "+15550100001,available,,plain,B-1,US-NY,''quoted");
    // No cell of the file starts a formula.
    let mut exported = csv::Reader::from_reader(body.as_bytes());
    let rows: Vec<csv::StringRecord> = exported.records().map(Result::unwrap).collect();
    for r in &rows {
        for cell in r.iter().skip(3) {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?} in {r:?}");
        }
    }
    // The importable columns of the export read back as they were imported.
    let mut again = csv::Writer::from_writer(Vec::new());
    again.write_record(["number", "tags", "billing_ref", "region", "note"]).unwrap();
    for r in &rows {
        again.write_record([&r[0], &r[3], &r[4], &r[5], &r[6]]).unwrap();
    }
    let plan = domain::import::parse_csv(&again.into_inner().unwrap()[..]);
    let original = domain::import::parse_csv(csv.as_bytes());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let attrs = |p: &domain::import::ImportPlan| {
        p.rows.iter().map(|r| (r.e164.clone(), r.attrs.clone())).collect::<Vec<_>>()
    };
    assert_eq!(attrs(&plan), attrs(&original));
}

async fn unknown_or_garbage_number_is_404(db: Db) {
    let t = TestApp::spawn(db).await;
    let (client, _) = t.operator_browser(ADMIN_EMAIL).await;
    for path in [
        format!("/operator/numbers/{}", uuid::Uuid::now_v7()),
        "/operator/numbers/garbage".into(),
        "/operator/numbers/%27%3B--".into(),
    ] {
        let (status, page) = get(&t, &client, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("not found"), "{page}");
    }
}
