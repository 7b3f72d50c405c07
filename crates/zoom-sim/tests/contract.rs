//! The simulator's answers checked against Zoom's published OpenAPI files (read from
//! `reference/zoom/openapi/` at test time): required fields present with the right JSON types, enums and
//! limits respected, the declared success statuses, the operations' scopes. Requests are checked too,
//! so these tests speak only what a client written from the same files would send.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::schema::{validate, OpenApi};
use support::*;

const PEERING: &str = "/v2/number_management/peering_numbers";
const CARRIER: &str = "/v2/number_management/carrier/peering_numbers";
const LEGACY: &str = "/v2/phone/peering/numbers";
const LEGACY_CARRIER: &str = "/v2/phone/carrier_peering/numbers";

/// `{code, message[, errors]}`: Zoom's error body (REFERENCE §5 [doc]); the OpenAPI files give no schema.
fn error_schema() -> Value {
    json!({ "type": "object", "required": ["code", "message"], "properties": {
        "code": { "type": "integer" }, "message": { "type": "string" }, "errors": { "type": "array", "items": { "type": "object" } } } })
}

async fn checked(r: reqwest::Response, spec: &OpenApi, path: &str, method: &str) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body: Value =
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    if status < 300 {
        assert!(
            spec.declares(path, method, status),
            "{method} {path} answered {status}, which Zoom's OpenAPI does not declare"
        );
        if !spec.response_schema(path, method, status).is_null() {
            spec.check_response(path, method, status, &body);
        }
    } else {
        let errors = validate(&error_schema(), &body);
        assert!(errors.is_empty(), "{method} {path} {status}: {errors:?} in {body}");
    }
    (status, body)
}

fn items(n: usize, legacy: bool) -> Vec<Value> {
    (0..n)
        .map(|i| {
            if legacy {
                json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": 1, "billing_reference_id": "b", "service_info": "s" })
            } else {
                json!({ "phone_number": number(i), "sip_trunk_name": TRUNK, "status": true, "billing_ref_id": "b", "service_info": "s",
                        "number_type": "Toll", "voice_direction": "INBOUND_AND_OUTBOUND", "voice_msg_capacity": "MULTI_USE",
                        "outbound_dialer_not_supported": false, "outbound_cli_share_not_supported": false, "message_capability": "NOT_APPLICABLE" })
            }
        })
        .collect()
}

#[test]
fn the_checker_catches_wrong_types_missing_fields_and_enums() {
    let schema = json!({ "type": "object", "properties": { "numbers": { "type": "array", "items": {
        "type": "object", "required": ["assigned", "phone_number"],
        "properties": { "assigned": { "type": "boolean" }, "kind": { "type": "string", "enum": ["A", "B"] } } } } } });
    assert!(validate(&schema, &json!({ "numbers": [{ "assigned": true, "phone_number": "+1" }] }))
        .is_empty());
    assert_eq!(validate(&schema, &json!({ "numbers": [{ "assigned": 1, "kind": "C" }] })).len(), 3);
}

#[tokio::test]
async fn number_management_operations_match_the_openapi() {
    let spec = OpenApi::number_management();
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let c = api(&token);

    let add = json!({ "carrier_code": CARRIER_CODE, "allocated_product": "ZOOM_PHONE", "phone_numbers": items(3, false) });
    spec.check_request(PEERING, "post", &add);
    assert_eq!(
        checked(
            c.post(sim.url(PEERING)).json(&add).send().await.expect("post"),
            &spec,
            PEERING,
            "post"
        )
        .await
        .0,
        201
    );

    let sim_admin = sim.admin_token(ACME_ADMIN).await;
    let r = api(&sim_admin)
        .post(sim.url("/v2/phone/users/me/phone_numbers"))
        .json(&json!({ "phone_numbers": [{ "number": number(0) }] }))
        .send()
        .await
        .expect("assign");
    assert_eq!(r.status(), StatusCode::OK);

    for query in [vec![], vec![("page_size", "2")], vec![("phone_number", "+12065550001")]] {
        let (status, body) = checked(
            c.get(sim.url(PEERING)).query(&query).send().await.expect("get"),
            &spec,
            PEERING,
            "get",
        )
        .await;
        assert_eq!(status, 200);
        assert!(!body["numbers"].as_array().expect("numbers").is_empty());
    }

    let patch = json!({ "phone_numbers": [{ "phone_number": number(1), "status": false, "message_capability": "NOT_SUPPORTED" }] });
    spec.check_request(PEERING, "patch", &patch);
    assert_eq!(
        checked(
            c.patch(sim.url(PEERING)).json(&patch).send().await.expect("patch"),
            &spec,
            PEERING,
            "patch"
        )
        .await
        .0,
        204
    );

    // The carrier-wide listing, whole and narrowed to one customer, page by page.
    let s2s = api(&sim.s2s_token().await);
    let (_, body) = checked(
        s2s.get(sim.url(CARRIER)).send().await.expect("carrier get"),
        &spec,
        CARRIER,
        "get",
    )
    .await;
    assert_eq!(body["total_records"], 3);
    let acme_number = sim.account_number(ACME).await;
    let mut query =
        vec![("customer_account_number", acme_number.clone()), ("page_size", "2".to_owned())];
    let (_, first) = checked(
        s2s.get(sim.url(CARRIER)).query(&query).send().await.expect("get"),
        &spec,
        CARRIER,
        "get",
    )
    .await;
    assert_eq!(first["numbers"].as_array().expect("numbers").len(), 2);
    query.push(("next_page_token", first["next_page_token"].as_str().expect("token").to_owned()));
    let (_, last) = checked(
        s2s.get(sim.url(CARRIER)).query(&query).send().await.expect("get"),
        &spec,
        CARRIER,
        "get",
    )
    .await;
    assert_eq!(
        (last["numbers"].as_array().expect("numbers").len(), last["next_page_token"].clone()),
        (1, json!(""))
    );
    // A customer account's token: Zoom's error shape, and no numbers.
    let (status, _) =
        checked(c.get(sim.url(CARRIER)).send().await.expect("get"), &spec, CARRIER, "get").await;
    assert_eq!(status, 403);

    assert_eq!(
        checked(
            c.delete(sim.url(PEERING))
                .query(&[("phone_numbers", number(2))])
                .send()
                .await
                .expect("delete"),
            &spec,
            PEERING,
            "delete"
        )
        .await
        .0,
        200
    );

    // Errors keep Zoom's shape too: a 1000 with per-number reasons, a 1003, a 4711, a 401.
    let (status, body) = checked(
        c.delete(sim.url(PEERING))
            .query(&[("phone_numbers", number(0))])
            .send()
            .await
            .expect("delete"),
        &spec,
        PEERING,
        "delete",
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(1000)));
    let too_many = json!({ "phone_numbers": items(201, false) });
    assert_eq!(
        checked(
            c.post(sim.url(PEERING)).json(&too_many).send().await.expect("post"),
            &spec,
            PEERING,
            "post"
        )
        .await
        .1["code"],
        1003
    );
    assert_eq!(
        checked(
            api(&sim_admin).get(sim.url(PEERING)).send().await.expect("get"),
            &spec,
            PEERING,
            "get"
        )
        .await
        .1["code"],
        4711
    );
    assert_eq!(
        checked(reqwest::get(sim.url(PEERING)).await.expect("get"), &spec, PEERING, "get").await.0,
        401
    );
}

#[tokio::test]
async fn legacy_operations_match_the_openapi() {
    let spec = OpenApi::phone();
    let sim = Sim::start().await;
    let token = sim.carrier_token(ACME_ADMIN).await;
    let c = api(&token);

    let mut add_items = items(3, true);
    add_items
        .push(json!({ "phone_number": number(9), "sip_trunk_name": "unknown-trunk", "status": 1 }));
    let add = json!({ "carrier_code": CARRIER_CODE, "phone_numbers": add_items });
    spec.check_request(LEGACY, "post", &add);
    let (status, body) = checked(
        c.post(sim.url(LEGACY)).json(&add).send().await.expect("post"),
        &spec,
        LEGACY,
        "post",
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["unprocessed_numbers"].as_array().expect("unprocessed").len(), 1);

    let (_, body) = checked(
        c.get(sim.url(LEGACY)).query(&[("page_size", "2")]).send().await.expect("get"),
        &spec,
        LEGACY,
        "get",
    )
    .await;
    assert_eq!(body["numbers"].as_array().expect("numbers").len(), 2);
    let (status, _) = checked(
        api(&sim.s2s_token().await).get(sim.url(LEGACY_CARRIER)).send().await.expect("get"),
        &spec,
        LEGACY_CARRIER,
        "get",
    )
    .await;
    assert_eq!(status, 200);

    let patch = json!({ "phone_numbers": [{ "phone_number": number(1), "status": 0 }, { "phone_number": "+12065550900", "status": 0 }] });
    spec.check_request(LEGACY, "patch", &patch);
    let (status, body) = checked(
        c.patch(sim.url(LEGACY)).json(&patch).send().await.expect("patch"),
        &spec,
        LEGACY,
        "patch",
    )
    .await;
    assert_eq!(
        (status, body["unprocessed_numbers"][0]["phone_number"].clone()),
        (200, json!("+12065550900"))
    );

    let (status, _) = checked(
        c.delete(sim.url(LEGACY))
            .query(&[("phone_numbers", number(0))])
            .send()
            .await
            .expect("delete"),
        &spec,
        LEGACY,
        "delete",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_admins_phone_operations_match_the_openapi() {
    let spec = OpenApi::phone();
    let sim = Sim::start().await;
    sim.add_numbers(&sim.carrier_token(ACME_ADMIN).await, &[number(1), number(2)]).await;
    let admin = sim.admin_token(ACME_ADMIN).await;
    let c = api(&admin);

    let path = "/v2/phone/users/{userId}/phone_numbers";
    let body = json!({ "phone_numbers": [{ "number": number(1) }] });
    spec.check_request(path, "post", &body);
    let r = c
        .post(sim.url(&format!("/v2/phone/users/{}/phone_numbers", ACME_BOB.0)))
        .json(&body)
        .send()
        .await
        .expect("assign");
    assert_eq!(checked(r, &spec, path, "post").await.0, 200);

    for kind in ["all", "assigned", "unassigned"] {
        let (_, v) = checked(
            c.get(sim.url("/v2/phone/numbers"))
                .query(&[("type", kind)])
                .send()
                .await
                .expect("list"),
            &spec,
            "/v2/phone/numbers",
            "get",
        )
        .await;
        assert!(!v["phone_numbers"].as_array().expect("list").is_empty(), "{kind}");
    }
    checked(
        c.get(sim.url("/v2/phone/users")).send().await.expect("users"),
        &spec,
        "/v2/phone/users",
        "get",
    )
    .await;

    let r = c
        .delete(sim.url(&format!("/v2/phone/users/{}/phone_numbers/{}", ACME_BOB.0, number(1))))
        .send()
        .await
        .expect("unassign");
    assert_eq!(
        checked(r, &spec, "/v2/phone/users/{userId}/phone_numbers/{phoneNumberId}", "delete")
            .await
            .0,
        204
    );
}

/// The scopes the simulator accepts for each operation are exactly those Zoom's OpenAPI lists: a token
/// with none of them is told which would have done (the 4711 message).
#[tokio::test]
async fn each_operation_accepts_exactly_the_scopes_zoom_lists() {
    let mut world: Value =
        serde_json::from_str(include_str!("../examples/world.json")).expect("json");
    world["apps"].as_array_mut().expect("apps").push(json!({
        "name": "Meetings only", "kind": "user-managed", "client_id": "meetingsOnly", "client_secret": "meetingsOnlySecret",
        "redirect_uris": ["http://127.0.0.1:9/cb"], "scopes": ["meeting:read:admin"] }));
    let world = zoom_sim::World::from_json(&world.to_string()).expect("world");
    let sim =
        Sim::with_world(world, zoom_sim::Options { control_api: true, ..Default::default() }).await;
    let token = sim
        .install_app(ACME_BOB, ("meetingsOnly", "meetingsOnlySecret"), "http://127.0.0.1:9/cb")
        .await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (nm, phone) = (OpenApi::number_management(), OpenApi::phone());
    let operations: [(&OpenApi, &str, &str, &str); 12] = [
        (&nm, PEERING, "get", PEERING),
        (&nm, PEERING, "post", PEERING),
        (&nm, PEERING, "patch", PEERING),
        (&nm, PEERING, "delete", PEERING),
        (&nm, CARRIER, "get", CARRIER),
        (&phone, LEGACY, "get", LEGACY),
        (&phone, LEGACY, "post", LEGACY),
        (&phone, LEGACY, "patch", LEGACY),
        (&phone, LEGACY, "delete", LEGACY),
        (&phone, LEGACY_CARRIER, "get", LEGACY_CARRIER),
        (&phone, "/v2/phone/numbers", "get", "/v2/phone/numbers"),
        (
            &phone,
            "/v2/phone/users/{userId}/phone_numbers",
            "post",
            "/v2/phone/users/me/phone_numbers",
        ),
    ];
    for (spec, path, method, url) in operations {
        let request = reqwest::Client::new()
            .request(method.to_uppercase().parse().expect("method"), sim.url(url))
            .bearer_auth(&token);
        let body =
            assert_zoom_error(request.json(&json!({})).send().await.expect("call"), 400, 4711)
                .await;
        let message = body["message"].as_str().expect("message");
        let listed = message
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(l, _)| l)
            .expect("scopes in message");
        let accepted: BTreeSet<String> = listed.split(", ").map(str::to_owned).collect();
        let zoom: BTreeSet<String> = spec.scopes(path, method).into_iter().collect();
        assert_eq!(accepted, zoom, "{method} {path}");
    }
}
