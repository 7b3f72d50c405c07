//! What the client writes to the logs: a line per call with method, path and status, and never a
//! secret — not the client secret, a code, a PKCE verifier, nor an access or refresh token — even with
//! every library logging at TRACE.

mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::*;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_call_is_logged_with_method_path_and_status_and_no_secret_ever_is() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The simulator's own logs are Zoom's side, not ours.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace,zoom_sim=off")
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let zoom = Zoom::start().await;
    let client = zoom.client();
    let (authorize, verifier) = client.authorize_url("state-1");
    let verifier_text = verifier.secret().to_owned();
    let code = query_value(&zoom.allow(ACME_ADMIN, &authorize).await, "code").expect("code");
    let first = client.exchange_code(&code, Some(verifier)).await.expect("exchange");
    let tokens = client.refresh(&first.refresh_token).await.expect("refresh");
    client.me(&tokens.access_token).await.expect("me");
    client.add_peering_numbers(&tokens.access_token, TRUNK, &numbers(0..2)).await.expect("add");
    zoom.fault(json!({ "path": "/v2/number_management/peering_numbers", "method": "DELETE", "status": 429 })).await;
    client.remove_peering_numbers(&tokens.access_token, &numbers(0..2)).await.expect_err("429");
    client.refresh(&first.refresh_token).await.expect_err("spent refresh token");
    client.revoke(&tokens.access_token).await.expect("revoke");
    client.me(&tokens.access_token).await.expect_err("revoked");

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    for (what, secret) in [
        ("client secret", CLIENT_SECRET),
        ("code", code.as_str()),
        ("PKCE verifier", verifier_text.as_str()),
        ("first access token", first.access_token.as_str()),
        ("first refresh token", first.refresh_token.as_str()),
        ("access token", tokens.access_token.as_str()),
        ("refresh token", tokens.refresh_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} was logged:\n{logs}");
    }
    for line in [
        "zoom.api{method=GET path=\"users/me\"",
        "zoom.api{method=POST path=\"number_management/peering_numbers\" batch=2",
        "status=429",
        "zoom.oauth{grant=\"refresh_token\"",
        "grant=\"revoke\"",
        "status=401",
    ] {
        assert!(logs.contains(line), "no `{line}` in the logs:\n{logs}");
    }
}
