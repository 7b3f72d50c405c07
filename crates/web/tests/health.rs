//! `/healthz` and `/metrics`, as a load balancer and Prometheus see them.

use testkit::{Db, TestApp, METRICS_TOKEN};

#[tokio::test]
async fn healthz_reports_the_database_and_metrics_count_requests_by_route() {
    for db in [Db::Sqlite, Db::Postgres] {
        let t = TestApp::spawn(db).await;
        let health: serde_json::Value =
            reqwest::get(format!("{}/healthz", t.url)).await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["database"], if db == Db::Sqlite { "sqlite" } else { "postgres" });

        // A 404 and a redirect, then the counters must show both, labelled by route pattern.
        assert_eq!(reqwest::get(format!("{}/no/such/page", t.url)).await.unwrap().status(), 404);
        let metrics = reqwest::Client::new()
            .get(format!("{}/metrics", t.url))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = metrics.text().await.unwrap();
        assert!(text.contains("peerex_http_requests_total"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("peerex_http_requests_total")
                && l.contains("route=\"/healthz\"")
                && l.contains("status=\"200\"")),
            "{text}"
        );
        assert!(
            text.lines().any(
                |l| l.starts_with("peerex_http_requests_total") && l.contains("status=\"404\"")
            ),
            "{text}"
        );
        assert!(text.contains("peerex_http_request_duration_seconds_bucket"), "{text}");
    }
}

#[tokio::test]
async fn unknown_api_paths_answer_problem_json_and_pages_answer_html() {
    let t = TestApp::spawn(Db::Sqlite).await;
    let r = reqwest::get(format!("{}/api/v1/nope", t.url)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
    let r = reqwest::get(format!("{}/operator/nope", t.url)).await.unwrap();
    assert!(r.status() == 404 || r.status() == 303, "unknown operator page: {}", r.status());
}
