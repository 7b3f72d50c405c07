//! Webhooks out, as Zoom sends them (REFERENCE §4): a JSON envelope signed with the app's secret token
//! (`x-zm-signature: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")`, `x-zm-request-timestamp`), delivered by
//! a background worker, retried on 5xx or network errors after 5, 20 and 60 minutes of simulated time,
//! never on 4xx, and logged for `GET /_sim/webhooks`.

use crate::state::random_token;
use crate::world::{hex, App};
use crate::Simulator;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// After the first attempt, Zoom retries three times: 5, 20 and 60 minutes later [doc].
const RETRY_AFTER_MINUTES: [i64; 3] = [5, 20, 60];
/// A 2xx later than this is a failure [doc].
const DEADLINE: Duration = Duration::from_secs(3);

/// One webhook as the simulator sent it (or tried to), for `GET /_sim/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub url: String,
    pub client_id: String,
    pub account_id: String,
    /// The exact bytes sent.
    pub body: String,
    pub attempts: Vec<Attempt>,
    /// `pending`, `sending`, `delivered`, `failed`, or `dropped` (by an injected fault).
    pub outcome: String,
    /// When the next attempt is due (unix seconds, simulated time), while pending.
    pub next_attempt_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix seconds, simulated time.
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}` under `secret` [doc].
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!("v0={}", hmac_hex(secret, &format!("v0:{timestamp}:{body}")))
}

pub(crate) fn hmac_hex(secret: &str, message: &str) -> String {
    // HMAC takes keys of any length: this `else` is never taken.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn rfc3339_ms(unix_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

impl Simulator {
    /// Queues `app_deauthorized` for an app removed from an account by `user_id`. Goes to the
    /// deauthorization URL, else the event URL; an app with neither is not told.
    pub(crate) fn deauthorized_event(
        &self,
        app: &App,
        account_id: &str,
        user_id: &str,
    ) -> Option<Delivery> {
        let url = app.deauthorization_url.clone().or_else(|| app.event_url.clone())?;
        let ts = self.clock().unix_ms();
        // Zoom's samples put `event_ts` at the top in some places and inside `payload` in others
        // (REFERENCE §4); it is in both so either reading works [assume].
        let body = json!({
            "event": "app_deauthorized",
            "event_ts": ts,
            "payload": {
                "account_id": account_id,
                "user_id": user_id,
                "client_id": app.client_id,
                "deauthorization_time": rfc3339_ms(ts),
                "signature": hex(&rand::random::<[u8; 32]>()),
                "event_ts": ts,
            },
        });
        Some(self.delivery(app, &url, "app_deauthorized", account_id, body.to_string(), self.now()))
    }

    /// A delivery of `body` to `url`, due now.
    pub(crate) fn delivery(
        &self,
        app: &App,
        url: &str,
        event: &str,
        account_id: &str,
        body: String,
        now: i64,
    ) -> Delivery {
        Delivery {
            id: random_token(12),
            event: event.into(),
            url: url.into(),
            client_id: app.client_id.clone(),
            account_id: account_id.to_owned(),
            body,
            attempts: Vec::new(),
            outcome: "pending".into(),
            next_attempt_at: Some(now),
        }
    }

    /// Starts the delivery worker unless it runs already; it stops when the simulator is dropped.
    pub(crate) fn ensure_webhook_worker(&self) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.inner.worker_started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(DEADLINE).build().unwrap_or_default();
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let sim = Simulator { inner };
                for delivery in sim.claim_due().await {
                    sim.attempt(&client, delivery).await;
                }
                let wake = sim.inner.wake.clone();
                drop(sim);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
    }

    /// Wakes the worker, e.g. after the clock moved.
    pub(crate) fn wake_webhooks(&self) {
        self.inner.wake.notify_one();
    }

    async fn claim_due(&self) -> Vec<Delivery> {
        let now = self.now();
        let due = self.read(|s| {
            s.deliveries
                .iter()
                .any(|d| d.outcome == "pending" && d.next_attempt_at.is_some_and(|t| t <= now))
        });
        if !due {
            return Vec::new();
        }
        self.write(|s| {
            s.deliveries
                .iter_mut()
                .filter(|d| d.outcome == "pending" && d.next_attempt_at.is_some_and(|t| t <= now))
                .map(|d| {
                    d.outcome = "sending".into();
                    d.next_attempt_at = None;
                    d.clone()
                })
                .collect()
        })
        .await
    }

    async fn attempt(&self, client: &reqwest::Client, d: Delivery) {
        // An injected fault may lose it: as if Zoom never sent it, so no retry either.
        let now = self.now();
        let dropped = self
            .write(|s| {
                let dropped = crate::faults::take_webhook_drop(&mut s.faults, &d.event);
                if let Some(rec) = s.deliveries.iter_mut().find(|r| dropped && r.id == d.id) {
                    rec.attempts.push(Attempt {
                        at: now,
                        status: None,
                        error: Some("dropped by an injected fault".into()),
                    });
                    rec.outcome = "dropped".into();
                }
                dropped
            })
            .await;
        if dropped {
            tracing::info!(event = %d.event, url = %d.url, "zoom-sim dropped a webhook (injected fault)");
            return;
        }
        let secret =
            self.world().app(&d.client_id).and_then(|a| a.secret_token.clone()).unwrap_or_default();
        // Each attempt is signed afresh, so a retry an hour later is not refused as a replay [assume].
        let ts = self.clock().unix();
        let sent = client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("user-agent", "Zoom Marketplace/1.0a (zoom-sim)")
            .header("x-zm-request-timestamp", ts.to_string())
            .header("x-zm-signature", signature(&secret, ts, &d.body))
            .body(d.body.clone())
            .send()
            .await;
        let attempt = match &sent {
            Ok(r) => Attempt { at: self.now(), status: Some(r.status().as_u16()), error: None },
            Err(e) => Attempt { at: self.now(), status: None, error: Some(e.to_string()) },
        };
        let retry = match attempt.status {
            Some(s) if (200..300).contains(&s) => None,
            Some(s) if (400..500).contains(&s) => None,
            _ => RETRY_AFTER_MINUTES.get(d.attempts.len()).copied(),
        };
        let delivered = attempt.status.is_some_and(|s| (200..300).contains(&s));
        tracing::info!(event = %d.event, url = %d.url, status = ?attempt.status, error = ?attempt.error, "zoom-sim webhook attempt");
        let now = self.now();
        self.write(|s| {
            if let Some(rec) = s.deliveries.iter_mut().find(|r| r.id == d.id) {
                rec.attempts.push(attempt);
                match (delivered, retry) {
                    (true, _) => rec.outcome = "delivered".into(),
                    (false, Some(minutes)) => {
                        rec.outcome = "pending".into();
                        rec.next_attempt_at = Some(now + minutes * 60);
                    }
                    (false, None) => rec.outcome = "failed".into(),
                }
            }
        })
        .await;
    }

    /// `endpoint.url_validation` [doc]: sends a plain token to the app's event URL and checks the answer
    /// carries it back with `encryptedToken` = hex HMAC-SHA256(secret, plainToken).
    pub(crate) async fn validate_endpoint(&self, app: &App) -> Value {
        let (Some(url), Some(secret)) = (app.event_url.clone(), app.secret_token.clone()) else {
            return json!({ "valid": false, "error": "the app has no event_url" });
        };
        let plain = random_token(16);
        let body = json!({ "payload": { "plainToken": plain }, "event_ts": self.clock().unix_ms(), "event": "endpoint.url_validation" }).to_string();
        let ts = self.clock().unix();
        let client = reqwest::Client::builder().timeout(DEADLINE).build().unwrap_or_default();
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-zm-request-timestamp", ts.to_string())
            .header("x-zm-signature", signature(&secret, ts, &body))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return json!({ "valid": false, "error": e.to_string() }),
        };
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let expected = hmac_hex(&secret, &plain);
        let valid = (200..300).contains(&status)
            && answer["plainToken"] == plain.as_str()
            && answer["encryptedToken"] == expected.as_str();
        json!({ "valid": valid, "status": status, "response": answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_v0_timestamp_body() {
        // RFC 4231 test case 2's key and data, arranged as Zoom's message.
        let sig = signature("Jefe", 1, "x");
        assert_eq!(sig.len(), 3 + 64);
        assert!(sig.starts_with("v0="));
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn deauthorization_time_is_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339_ms(1_592_401_948_632), "2020-06-17T13:52:28.632Z");
    }
}
