//! Zoom's Provider Portal, as the carrier's staff use it signed in to the carrier's own Zoom account:
//! customers, numbers added and removed by CSV (all or nothing, every problem named by row and column),
//! the Numbers tab's filters and the CSV export. What they change, the API sees.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

const PEERING: &str = "/v2/number_management/peering_numbers";

/// A `multipart/form-data` body with one file field named `file`, as a browser sends a file input.
fn upload(csv: &str) -> (String, Vec<u8>) {
    let boundary = "----zoomsimtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"numbers.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(csv.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_file(b: &reqwest::Client, sim: &Sim, path: &str, csv: &str) -> reqwest::Response {
    let (content_type, body) = upload(csv);
    b.post(sim.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
}

async fn page(b: &reqwest::Client, sim: &Sim, path: &str) -> String {
    let r = b.get(sim.url(path)).send().await.expect("page");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("html")
}

/// The page a redirect leads to.
async fn follow(b: &reqwest::Client, sim: &Sim, r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap_or_default());
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    page(b, sim, &location).await
}

async fn listed(sim: &Sim, token: &str) -> Vec<Value> {
    let v: Value =
        api(token).get(sim.url(PEERING)).send().await.expect("list").json().await.expect("json");
    v["numbers"].as_array().expect("numbers").clone()
}

fn phone_numbers(numbers: &[Value]) -> Vec<String> {
    numbers.iter().map(|n| n["phone_number"].as_str().expect("number").to_owned()).collect()
}

async fn deliveries(sim: &Sim) -> Value {
    let v: Value =
        reqwest::get(sim.url("/_sim/webhooks")).await.expect("log").json().await.expect("json");
    v["deliveries"].clone()
}

fn import_path(account: &str) -> String {
    format!("/provider-portal/customers/{account}/import")
}

fn remove_path(account: &str) -> String {
    format!("/provider-portal/customers/{account}/remove")
}

#[tokio::test]
async fn the_carrier_imports_numbers_to_a_customer_by_csv_and_the_api_sees_them() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let b = sim.signed_in(CARRIER_ADMIN).await;

    let customers = page(&b, &sim, "/provider-portal/customers").await;
    assert!(customers.contains("Acme Robotics") && customers.contains("Active"), "{customers}");
    assert!(!customers.contains("Globex"), "Globex has not given the carrier access: {customers}");
    let template = b
        .get(sim.url("/provider-portal/numbers/template"))
        .send()
        .await
        .expect("template")
        .text()
        .await
        .expect("csv");
    assert!(template.starts_with("Phone Number,SIP Trunk Name,Status,Billing Reference ID"));

    let csv = format!(
        "Phone Number,SIP Trunk Name,Status,Billing Reference ID,Service Info,Allocated Product,Voice Direction\n\
         {},{TRUNK},Normal,acct-1,\"Main line, HQ\",ZOOM_PHONE,INBOUND_AND_OUTBOUND\n\
         {},example-carrier-us-west,Pending,acct-2,,Zoom Contact Center,Inbound Only\n\
         {},{TRUNK},Normal,,,,\n",
        number(1),
        number(2),
        number(3).trim_start_matches('+'),
    );
    let after = follow(&b, &sim, post_file(&b, &sim, &import_path(ACME), &csv).await).await;
    assert!(after.contains("3 numbers added to Acme Robotics."), "{after}");
    for n in 1..=3 {
        assert!(after.contains(&number(n)), "{after}");
    }

    // Exactly what the API would have added, in the API's words.
    let numbers = listed(&sim, &acme).await;
    assert_eq!(phone_numbers(&numbers), vec![number(1), number(2), number(3)]);
    assert_eq!(
        (&numbers[0]["billing_ref_id"], &numbers[0]["service_info"], &numbers[0]["status"]),
        (&json!("acct-1"), &json!("Main line, HQ"), &json!(true))
    );
    assert_eq!(numbers[1]["sip_trunk_name"], "example-carrier-us-west");
    assert_eq!(numbers[1]["status"], false);
    assert_eq!(numbers[1]["allocated_product"], "ZOOM_CONTACT_CENTER");
    assert_eq!(numbers[1]["voice_direction"], "INBOUND_ONLY");
    assert_eq!(numbers[2]["allocated_product"], "ZOOM_PHONE");
    assert_eq!(deliveries(&sim).await, json!([]), "Zoom sends no webhook for added numbers");
    // The customer sees them in Zoom.
    let admin = sim.signed_in(ACME_ADMIN).await;
    let unassigned = page(&admin, &sim, "/pbx/phone-numbers?tab=unassigned").await;
    assert!(unassigned.contains(&number(3)), "{unassigned}");
}

#[tokio::test]
async fn a_file_with_any_bad_row_changes_nothing_and_names_each_problem() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&acme, &[number(9)]).await;
    let b = sim.signed_in(CARRIER_ADMIN).await;

    let csv = format!(
        "Phone Number,SIP Trunk Name,Status,Billing Reference ID\n\
         {},{TRUNK},Normal,\n\
         {},nobodys-trunk,Normal,\n\
         {},{TRUNK},Normal,\n\
         {},{TRUNK},Normal,\n\
         12345,{TRUNK},Sometimes,{}\n",
        number(1),
        number(2),
        number(9),
        number(1),
        "x".repeat(61),
    );
    let r = post_file(&b, &sim, &import_path(ACME), &csv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("html");
    assert!(html.contains("Nothing was changed"), "{html}");
    for expected in [
        "Row 3, SIP Trunk Name: &#34;nobodys-trunk&#34; is not one of your SIP trunks",
        "Row 6, Phone Number: &#34;12345&#34; is not an E.164 phone number",
        "Row 6, Status: &#34;Sometimes&#34; must be Normal",
        "Row 6, Billing Reference ID: must be at most 60 characters",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert_eq!(phone_numbers(&listed(&sim, &acme).await), vec![number(9)], "nothing added");

    // The file itself is fine, but Zoom's state refuses two rows: still nothing is added.
    let csv = format!(
        "Phone Number,SIP Trunk Name,Status\n{},{TRUNK},Normal\n{},{TRUNK},Normal\n{},{TRUNK},Normal\n{},{TRUNK},Normal\n",
        number(1),
        number(9),
        number(2),
        number(1)
    );
    let r = post_file(&b, &sim, &import_path(ACME), &csv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("html");
    assert!(html.contains("Row 3, Phone Number: Phone number already exists"), "{html}");
    assert!(html.contains("Row 5, Phone Number: Phone number already exists"), "{html}");
    assert_eq!(phone_numbers(&listed(&sim, &acme).await), vec![number(9)], "nothing added");

    // No file, or not a CSV file, is said so.
    let r = b
        .post(sim.url(&import_path(ACME)))
        .form(&[("file", "")])
        .send()
        .await
        .expect("not multipart");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("html").contains("choose a CSV file"));
    let r = post_file(&b, &sim, &import_path(ACME), "").await;
    assert!(r.text().await.expect("html").contains("Choose a CSV file to upload."));
}

#[tokio::test]
async fn numbers_are_removed_by_csv_but_never_an_assigned_one() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&acme, &[number(1), number(2), number(3)]).await;
    let r = reqwest::Client::new()
        .put(sim.url(&format!("/_sim/numbers/{}/assignment", number(2))))
        .json(&json!({ "user": ACME_BOB.0 }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);
    let b = sim.signed_in(CARRIER_ADMIN).await;

    let csv = format!("Phone Number\n{}\n{}\n{}\n+12065550900\n", number(1), number(2), number(3));
    let r = post_file(&b, &sim, &remove_path(ACME), &csv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("html");
    assert!(html.contains("Row 3, Phone Number: Phone number is assigned to a user in Zoom: the customer must unbind it first"), "{html}");
    assert!(
        html.contains("Row 5, Phone Number: Phone number does not exist in this customer"),
        "another carrier's number: {html}"
    );
    assert_eq!(phone_numbers(&listed(&sim, &acme).await), vec![number(1), number(2), number(3)]);

    // An export of the customer's numbers, pared down, is a removal file.
    let export = b
        .get(sim.url(&format!(
            "/provider-portal/numbers/export?customer_account_number={}&assigned=unassigned",
            sim.account_number(ACME).await
        )))
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("csv");
    let after = follow(&b, &sim, post_file(&b, &sim, &remove_path(ACME), &export).await).await;
    assert!(after.contains("2 numbers removed from Acme Robotics."), "{after}");
    assert_eq!(phone_numbers(&listed(&sim, &acme).await), vec![number(2)]);
    assert_eq!(deliveries(&sim).await, json!([]), "Zoom sends no webhook for removed numbers");
}

#[tokio::test]
async fn the_numbers_tab_filters_by_customer_and_state_and_exports_what_it_shows() {
    let sim = Sim::start().await;
    let acme = sim.carrier_token(ACME_ADMIN).await;
    let globex = sim.carrier_token(GLOBEX_ADMIN).await;
    sim.add_numbers(&acme, &[number(1), number(2), number(3)]).await;
    sim.add_numbers(&globex, &[number(4)]).await;
    let client = reqwest::Client::new();
    let r = client.put(sim.url(&format!("/_sim/numbers/{}/returned", number(1)))).send().await;
    assert_eq!(r.expect("return").status(), StatusCode::OK);
    let r = client
        .patch(sim.url(&format!("/_sim/numbers/{}", number(2))))
        .json(&json!({ "status": false }))
        .send()
        .await;
    assert_eq!(r.expect("deactivate").status(), StatusCode::OK);
    let b = sim.signed_in(CARRIER_ADMIN).await;

    let rows = |html: &str| -> Vec<String> {
        (1..=4).map(number).filter(|n| html.contains(&format!("<td>{n}</td>"))).collect()
    };
    let all = page(&b, &sim, "/provider-portal/numbers").await;
    assert_eq!(rows(&all), (1..=4).map(number).collect::<Vec<_>>());
    assert!(!all.contains("+12065550900"), "another carrier's number is not the carrier's");
    let acme_number = sim.account_number(ACME).await;
    let globex_number = sim.account_number(GLOBEX).await;
    for (query, expected) in [
        (format!("customer_account_number={globex_number}"), vec![4]),
        (format!("customer_account_number={acme_number}&status=normal"), vec![1, 3]),
        ("status=pending".to_owned(), vec![2]),
        ("pool_status=returned".to_owned(), vec![1]),
        ("pool_status=in_use&status=normal".to_owned(), vec![3, 4]),
        ("customer_account_number=0000000000".to_owned(), vec![]),
    ] {
        let html = page(&b, &sim, &format!("/provider-portal/numbers?{query}")).await;
        assert_eq!(rows(&html), expected.iter().map(|n| number(*n)).collect::<Vec<_>>(), "{query}");
    }
    let r = b.get(sim.url("/provider-portal/numbers?status=sleeping")).send().await.expect("page");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("html").contains("status must be normal or pending"));

    // Export: what the filters select, with the customer named.
    let r = b
        .get(sim.url("/provider-portal/numbers/export?pool_status=returned"))
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().expect("type").starts_with("text/csv"));
    assert!(r.headers()["content-disposition"].to_str().expect("cd").starts_with("attachment"));
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("Phone Number,Customer Account Name,Customer Account Number,SIP Trunk Name,Status,Number Pool Status,Assigned"), "{csv}");
    assert!(
        lines[1].starts_with(&format!(
            "{},Acme Robotics,{acme_number},{TRUNK},Normal,Returned,false",
            number(1)
        )),
        "{csv}"
    );
}

#[tokio::test]
async fn only_the_carriers_own_admin_uses_the_provider_portal_and_only_for_customers_who_gave_access(
) {
    let sim = Sim::start().await;
    sim.carrier_token(ACME_ADMIN).await;
    let r = sim.browser().get(sim.url("/provider-portal/customers")).send().await.expect("page");
    assert!(r.headers()["location"].to_str().expect("location").starts_with("/signin"));
    let customer = sim.signed_in(ACME_ADMIN).await;
    for path in ["/provider-portal/customers", "/provider-portal/numbers/export"] {
        let r = customer.get(sim.url(path)).send().await.expect("page");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let csv = format!("Phone Number,SIP Trunk Name,Status\n{},{TRUNK},Normal\n", number(1));
    let r = post_file(&customer, &sim, &import_path(ACME), &csv).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let b = sim.signed_in(CARRIER_ADMIN).await;
    // Globex never added the carrier's app: nothing can be put into its account.
    let r = post_file(&b, &sim, &import_path(GLOBEX), &csv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("html").contains("Globex has not given Example Carrier access"));
    // The carrier's own account is not a customer; Initech has no Zoom Phone.
    let r = post_file(&b, &sim, &import_path(CARRIER_ACCOUNT), &csv).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    sim.carrier_token(INITECH_ADMIN).await;
    let r = post_file(&b, &sim, &import_path("initechZoomAccount0003"), &csv).await;
    assert!(r.text().await.expect("html").contains("Zoom Phone has not been enabled"));
    let v: Value =
        reqwest::get(sim.url("/_sim/numbers")).await.expect("numbers").json().await.expect("json");
    assert_eq!(v["numbers"].as_array().expect("numbers").len(), 1, "only the seeded number: {v}");

    // A customer who removes the app takes the access away; its numbers stay listed, Inactive.
    let acme = sim.carrier_token(ACME_ADMIN).await;
    sim.add_numbers(&acme, &[number(1)]).await;
    let r = reqwest::Client::new()
        .post(sim.url(&format!("/_sim/accounts/{ACME}/apps/{CARRIER_APP}/remove")))
        .send()
        .await
        .expect("remove app");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let customers = page(&b, &sim, "/provider-portal/customers").await;
    assert!(customers.contains("Acme Robotics") && customers.contains("Inactive"), "{customers}");
    let r =
        post_file(&b, &sim, &remove_path(ACME), &format!("Phone Number\n{}\n", number(1))).await;
    assert!(r.text().await.expect("html").contains("has not given Example Carrier access"));
}
