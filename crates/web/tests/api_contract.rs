//! What holds for the whole JSON API: authentication and scopes, problem documents for bad bodies,
//! and the OpenAPI document describing exactly the routes that exist.

mod api_support;

use api_support::{template_for, Api};
use domain::auth::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use testkit::Db;

on_both!(
    every_route_refuses_a_missing_unknown_or_revoked_token,
    read_token_reads_but_cannot_write,
    malformed_or_mistyped_json_is_a_problem_naming_the_field,
    openapi_document_describes_every_route,
    openapi_document_states_the_limits_the_handlers_enforce,
);

/// Every route the API serves, with an example path. The OpenAPI document must list exactly these.
const ROUTES: [(&str, &str, &str); 47] = [
    ("get", "/api/v1/trunks", "/trunks"),
    ("post", "/api/v1/trunks", "/trunks"),
    ("get", "/api/v1/trunks/{name}", "/trunks/zoom-a"),
    ("put", "/api/v1/trunks/{name}", "/trunks/zoom-a"),
    ("delete", "/api/v1/trunks/{name}", "/trunks/zoom-a"),
    (
        "post",
        "/api/v1/customers/{id}/trunk",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/trunk",
    ),
    ("get", "/api/v1/numbers", "/numbers"),
    ("post", "/api/v1/numbers/import", "/numbers/import"),
    ("get", "/api/v1/numbers/export.csv", "/numbers/export.csv"),
    ("get", "/api/v1/numbers/{id}", "/numbers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    ("get", "/api/v1/customers", "/customers"),
    ("post", "/api/v1/customers", "/customers"),
    ("get", "/api/v1/customers/{id}", "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    (
        "post",
        "/api/v1/customers/{id}/contract",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/contract",
    ),
    (
        "post",
        "/api/v1/customers/{id}/number_limit",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/number_limit",
    ),
    (
        "post",
        "/api/v1/customers/{id}/admins",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/admins",
    ),
    ("get", "/api/v1/orders", "/orders"),
    ("post", "/api/v1/orders", "/orders"),
    ("get", "/api/v1/orders/{id}", "/orders/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    ("post", "/api/v1/orders/{id}/cancel", "/orders/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/cancel"),
    ("get", "/api/v1/releases", "/releases"),
    ("post", "/api/v1/releases", "/releases"),
    ("get", "/api/v1/releases/{id}", "/releases/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    (
        "post",
        "/api/v1/releases/{id}/withdraw",
        "/releases/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/withdraw",
    ),
    ("post", "/api/v1/releases/{id}/force", "/releases/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/force"),
    ("post", "/api/v1/port-outs", "/port-outs"),
    (
        "post",
        "/api/v1/customers/{id}/contract-end",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/contract-end",
    ),
    ("get", "/api/v1/findings", "/findings"),
    ("get", "/api/v1/webhook-endpoints", "/webhook-endpoints"),
    ("post", "/api/v1/webhook-endpoints", "/webhook-endpoints"),
    ("get", "/api/v1/webhook-endpoints/{id}", "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    ("put", "/api/v1/webhook-endpoints/{id}", "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    ("delete", "/api/v1/webhook-endpoints/{id}", "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    (
        "post",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/rotate-secret",
    ),
    (
        "get",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/deliveries",
    ),
    (
        "post",
        "/api/v1/webhook-endpoints/{id}/deliveries/{event_id}/replay",
        "/webhook-endpoints/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/deliveries/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5f/replay",
    ),
    ("post", "/api/v1/findings/repair", "/findings/repair"),
    ("get", "/api/v1/port-ins", "/port-ins"),
    ("post", "/api/v1/port-ins", "/port-ins"),
    ("get", "/api/v1/port-ins/{id}", "/port-ins/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e"),
    (
        "post",
        "/api/v1/port-ins/{id}/complete",
        "/port-ins/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/complete",
    ),
    (
        "post",
        "/api/v1/port-ins/{id}/cancel",
        "/port-ins/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/cancel",
    ),
    (
        "post",
        "/api/v1/port-ins/{id}/reschedule",
        "/port-ins/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/reschedule",
    ),
    (
        "post",
        "/api/v1/customers/{id}/billing_ref",
        "/customers/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/billing_ref",
    ),
    ("get", "/api/v1/usage", "/usage"),
    ("get", "/api/v1/mails", "/mails"),
    ("post", "/api/v1/mails/{id}/retry", "/mails/0190b6a4-7d2c-7c4e-9a51-3f1f2b3c4d5e/retry"),
];

fn method(name: &str) -> Method {
    name.to_uppercase().parse().unwrap()
}

async fn every_route_refuses_a_missing_unknown_or_revoked_token(db: Db) {
    let api = Api::spawn(db).await;
    let (revoked, token) = api.t.app.create_token("old", Scope::Write, "test").await.unwrap();
    api.t.app.revoke_token(token.id, &domain::Actor::System("test".into())).await.unwrap();
    for (verb, _, path) in ROUTES {
        for auth in [
            None,
            Some("Bearer pxt_unknown".to_owned()),
            Some(format!("Bearer {revoked}")),
            Some(format!("Basic {}", api.token)),
            Some(api.token.clone()),
        ] {
            let mut request = api.anonymous(method(verb), path);
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            let r = api.send(request).await;
            r.problem(401);
            assert_eq!(r.headers["www-authenticate"], "Bearer", "{verb} {path}");
        }
    }
}

async fn read_token_reads_but_cannot_write(db: Db) {
    let api = Api::spawn(db).await;
    api.import_range("+15550100000-+15550100009", &[]).await;
    let customer = api.customer("C-1").await;
    let order = api.post("/orders", json!({"customer_id": customer, "count": 1})).await.ok(201)
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = api.t.token(Scope::Read).await;

    for path in [
        "/numbers",
        "/numbers/export.csv",
        "/customers",
        &format!("/customers/{customer}"),
        "/orders",
        &format!("/orders/{order}"),
    ] {
        let r = api.send(api.anonymous(Method::GET, path).bearer_auth(&reader)).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    }
    let writes = [
        ("/numbers/import", json!({"range": "+15550200000-+15550200009"})),
        ("/customers", json!({"name": "Example", "contract_ref": "C-2"})),
        (&format!("/customers/{customer}/contract"), json!({"state": "ended"})),
        (
            &format!("/customers/{customer}/admins"),
            json!({"email": "it@example.com", "password": "long enough password"}),
        ),
        ("/orders", json!({"customer_id": customer, "count": 1})),
        (&format!("/orders/{order}/cancel"), json!({})),
    ];
    for (path, body) in writes {
        let p = api
            .send(api.anonymous(Method::POST, path).bearer_auth(&reader).json(&body))
            .await
            .problem(403);
        assert!(p["detail"].as_str().unwrap().contains("not allowed"), "{p}");
    }
    assert_eq!(api.all_numbers("").await.len(), 10);
    assert_eq!(api.all_numbers("state=reserved").await.len(), 1, "the order was not cancelled");
    assert_eq!(api.get("/customers").await.ok(200)["customers"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&format!("/customers/{customer}")).await.ok(200)["contract_state"],
        "active"
    );
}

async fn malformed_or_mistyped_json_is_a_problem_naming_the_field(db: Db) {
    let api = Api::spawn(db).await;
    let raw = |body: &'static str| {
        api.request(Method::POST, "/customers")
            .header("content-type", "application/json")
            .body(body)
    };

    for body in
        [r#"{"name": "Example","#, "", "not json", r#"{"name": "x", "contract_ref": "y"} {}"#]
    {
        let p = api.send(raw(body)).await.problem(400);
        assert!(p["detail"].as_str().unwrap().contains("not valid JSON"), "{body:?} -> {p}");
    }
    for (body, field) in [
        (r#"{"name": 5, "contract_ref": "C-1"}"#, "name"),
        (r#"{"name": "Example"}"#, "contract_ref"),
        (
            r#"{"name": "Example", "contract_ref": "C-1", "contract_reference": "C-1"}"#,
            "contract_reference",
        ),
        (r#"[]"#, ""),
    ] {
        let p = api.send(raw(body)).await.problem(422);
        if field.is_empty() {
            assert!(p.get("field").is_none(), "{p}");
        } else {
            assert_eq!(p["field"], field, "{body} -> {p}");
            assert!(p["detail"].as_str().unwrap().starts_with(&format!("{field}: ")), "{p}");
        }
    }
    let r = api
        .send(
            api.request(Method::POST, "/customers")
                .header("content-type", "text/plain")
                .body(r#"{"name": "x", "contract_ref": "y"}"#),
        )
        .await;
    r.problem(415);
    let r = api
        .send(api.request(Method::POST, "/customers").body(r#"{"name": "x", "contract_ref": "y"}"#))
        .await;
    r.problem(415);
    assert_eq!(api.get("/customers").await.ok(200)["customers"], json!([]));
}

async fn openapi_document_describes_every_route(db: Db) {
    let api = Api::spawn(db).await;
    let doc = &api.spec;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["components"]["securitySchemes"]["token"]["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{"token": []}]));

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for verb in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
        {
            listed.insert((verb.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(v, p, _)| (v.to_string(), p.to_string())).collect();
    assert_eq!(listed, expected, "the document lists exactly the routes the API serves");

    let mut operation_ids = HashSet::new();
    for (verb, path, example) in ROUTES {
        // The route exists on the server (a missing one would be the fallback's 404, not a 401).
        let r = api.anonymous(method(verb), example).send().await.unwrap();
        assert_eq!(r.status(), 401, "{verb} {path} is not served");
        assert_eq!(template_for(doc, &format!("/api/v1{example}")), Some(path));

        let op = &doc["paths"][path][verb];
        let at = format!("{verb} {path}");
        assert!(
            operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{at}: operationId is not unique"
        );
        assert!(!op["tags"].as_array().unwrap().is_empty(), "{at} has no tag");
        assert!(
            !op["summary"].as_str().unwrap_or_default().is_empty()
                || !op["description"].as_str().unwrap_or_default().is_empty(),
            "{at} is not described"
        );
        let responses =
            op["responses"].as_object().unwrap_or_else(|| panic!("{at} declares no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{at} declares no success");
        let mut needed = vec!["401"];
        if verb == "post" {
            needed.push("403");
        }
        if op.get("requestBody").is_some() {
            needed.extend(["400", "415"]);
            assert!(
                !op["requestBody"]["content"].as_object().unwrap().is_empty(),
                "{at}: request body without content"
            );
        }
        if path.contains("{id}") {
            needed.push("404");
            assert!(
                op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path"),
                "{at} does not declare its id"
            );
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            match p["in"].as_str().unwrap() {
                "path" => assert!(
                    path.contains(&format!("{{{name}}}")),
                    "{at}: parameter {name} is not in the path"
                ),
                "query" => {
                    assert_ne!(p["required"], true, "{at}: query parameter {name} is optional")
                }
                other => panic!("{at}: parameter {name} in {other}"),
            }
        }
        for status in needed {
            assert!(responses.contains_key(status), "{at} does not declare {status}");
        }
        for (status, response) in responses {
            assert!(
                !response["description"].as_str().unwrap_or_default().is_empty(),
                "{at} {status} has no description"
            );
            if !status.starts_with('2') {
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Problem",
                    "{at} {status} is not a problem document"
                );
            }
        }
    }
    assert_refs_resolve(doc, doc);
    let problem = &doc["components"]["schemas"]["Problem"];
    let required: Vec<&str> =
        problem["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(required, ["type", "title", "status", "detail"]);
    assert_eq!(problem["properties"]["errors"]["items"]["$ref"], "#/components/schemas/RowError");
}

fn assert_refs_resolve(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                assert!(doc.pointer(r.trim_start_matches('#')).is_some(), "dangling $ref {r}");
            }
            map.values().for_each(|v| assert_refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(doc, v)),
        _ => {}
    }
}

/// A query parameter of an operation in the OpenAPI document.
fn param<'a>(doc: &'a Value, verb: &str, path: &str, name: &str) -> &'a Value {
    doc["paths"][path][verb]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{verb} {path} has parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{verb} {path} documents {name}"))
}

/// A property of a request body schema in the document's components.
fn property<'a>(doc: &'a Value, schema: &str, name: &str) -> &'a Value {
    let p = &doc["components"]["schemas"][schema]["properties"][name];
    assert!(!p.is_null(), "{schema}.{name} is documented");
    p
}

fn limit(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} stated in {v}"))
}

/// The limits the OpenAPI document states are the ones the handlers enforce: a request at each
/// stated limit is not refused for it, one just past it is refused naming the field, and every
/// stated enum value is accepted while others are refused.
async fn openapi_document_states_the_limits_the_handlers_enforce(db: Db) {
    let api = Api::spawn(db).await;
    let doc = api.spec.clone();
    let refused_for =
        |r: &api_support::Reply, field: &str| r.status == 422 && r.json()["field"] == field;

    // Page sizes.
    for (path, api_path) in [
        ("/api/v1/numbers", "/numbers"),
        ("/api/v1/orders", "/orders"),
        ("/api/v1/releases", "/releases"),
    ] {
        let schema = param(&doc, "get", path, "limit");
        let (min, max) = (limit(schema, "minimum"), limit(schema, "maximum"));
        for (value, refused) in [(min, false), (max, false), (min - 1, true), (max + 1, true)] {
            let r = api.get(&format!("{api_path}?limit={value}")).await;
            assert_eq!(refused_for(&r, "limit"), refused, "{path}?limit={value}: {}", r.text);
            if !refused {
                assert_eq!(r.status, 200, "{path}?limit={value}: {}", r.text);
            }
        }
    }

    // Enumerations: every stated value accepted, anything else refused.
    for (path, api_path, name, expect) in [
        (
            "/api/v1/numbers",
            "/numbers",
            "state",
            domain::NumberState::ALL.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>(),
        ),
        ("/api/v1/numbers/export.csv", "/numbers/export.csv", "state", vec![]),
        ("/api/v1/releases", "/releases", "state", vec!["open".into(), "all".into()]),
    ] {
        let values: Vec<String> = param(&doc, "get", path, name)["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} {name} states its values"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        if !expect.is_empty() {
            assert_eq!(values, expect, "{path} {name}: the values the handler takes");
        }
        for v in &values {
            let r = api.get(&format!("{api_path}?{name}={v}")).await;
            assert_eq!(r.status, 200, "{path}?{name}={v}: {}", r.text);
        }
        let r = api.get(&format!("{api_path}?{name}=bogus")).await;
        assert!(refused_for(&r, name), "{path}?{name}=bogus: {}", r.text);
    }

    // Lengths and counts in request bodies (a dry run: nothing is written).
    let range = |extra: Value| {
        let mut body = json!({"range": "+15550100000-+15550100001", "dry_run": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for field in ["billing_ref", "region", "note"] {
        let max = limit(property(&doc, "RangeImport", field), "maxLength") as usize;
        let at = api.post("/numbers/import", range(json!({field: "x".repeat(max)}))).await;
        assert_eq!(at.status, 200, "{field} at {max}: {}", at.text);
        let over = api.post("/numbers/import", range(json!({field: "x".repeat(max + 1)}))).await;
        assert!(refused_for(&over, field), "{field} at {}: {}", max + 1, over.text);
    }
    let max = limit(property(&doc, "RangeImport", "tags"), "maxItems") as usize;
    let tags = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    let at = api.post("/numbers/import", range(json!({"tags": tags(max)}))).await;
    assert_eq!(at.status, 200, "{max} tags: {}", at.text);
    let over = api.post("/numbers/import", range(json!({"tags": tags(max + 1)}))).await;
    assert!(refused_for(&over, "tags"), "{} tags: {}", max + 1, over.text);

    for (field, other) in [("name", "contract_ref"), ("contract_ref", "name")] {
        let max = limit(property(&doc, "NewCustomer", field), "maxLength") as usize;
        for (n, refused) in [(max, false), (max + 1, true)] {
            let value = format!("{n:0>n$}");
            let r =
                api.post("/customers", json!({field: value, other: format!("{field}-{n}")})).await;
            assert_eq!(refused_for(&r, field), refused, "{field} of {n}: {}", r.text);
            if !refused {
                assert_eq!(r.status, 201, "{field} of {n}: {}", r.text);
            }
        }
    }
    let max = limit(property(&doc, "NewTrunk", "name"), "maxLength") as usize;
    let numbering =
        json!({"country_code": "1", "national_prefix": "1", "international_prefix": "011"});
    for (n, refused) in [(max, false), (max + 1, true)] {
        let trunk = json!({"name": "t".repeat(n), "destinations": ["sip:a.example"], "numbering": numbering});
        let r = api.post("/trunks", trunk).await;
        assert_eq!(refused_for(&r, "name"), refused, "trunk name of {n}: {}", r.text);
    }
    let max = limit(property(&doc, "NewTrunk", "destinations"), "maxItems") as usize;
    for (n, refused) in [(max, false), (max + 1, true)] {
        let destinations: Vec<String> = (0..n).map(|i| format!("sip:d{i}.example")).collect();
        let trunk = json!({"name": format!("many-{n}"), "destinations": destinations, "numbering": numbering});
        let r = api.post("/trunks", trunk).await;
        assert_eq!(refused_for(&r, "destinations"), refused, "{n} destinations: {}", r.text);
    }

    let customer =
        api.post("/customers", json!({"name": "Acme", "contract_ref": "C-1"})).await.ok(201);
    let max = limit(property(&doc, "NewRelease", "reason"), "maxLength") as usize;
    for (n, refused) in [(max, false), (max + 1, true)] {
        let release = json!({"customer_id": customer["id"], "reason": "r".repeat(n), "numbers": ["+15550100000"]});
        // Within the limit it may still be refused (the number is not the customer's), not for its reason.
        let r = api.post("/releases", release).await;
        assert_eq!(refused_for(&r, "reason"), refused, "a reason of {n}: {}", r.text);
    }
    let order = |extra: Value| {
        let mut body = json!({"customer_id": customer["id"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let count = property(&doc, "NewOrder", "count");
    let (min, max) = (limit(count, "minimum"), limit(count, "maximum"));
    for (value, refused) in [(min, false), (max, false), (min - 1, true), (max + 1, true)] {
        // Within the limits an order may still fail for want of numbers, but not for its count.
        let r = api.post("/orders", order(json!({"count": value}))).await;
        assert_eq!(refused_for(&r, "count"), refused, "count {value}: {}", r.text);
    }
    let max = limit(property(&doc, "NewOrder", "region"), "maxLength") as usize;
    let r = api.post("/orders", order(json!({"count": 1, "region": "x".repeat(max)}))).await;
    assert!(!refused_for(&r, "region"), "region at {max}: {}", r.text);
    let r = api.post("/orders", order(json!({"count": 1, "region": "x".repeat(max + 1)}))).await;
    assert!(refused_for(&r, "region"), "region at {}: {}", max + 1, r.text);
}
