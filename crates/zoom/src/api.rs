//! The REST calls peerex makes with a customer's access token: `users/me` and the Number Management
//! API's peering numbers (REFERENCE §1, `openapi/number-management.openapi.json`).

use crate::{
    Client, Me, NumberResult, NumberUpdate, Outcome, Page, PeeringNumber, ZoomError, MAX_BATCH,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tracing::Instrument;

const PEERING_NUMBERS: &str = "number_management/peering_numbers";
/// Every number the carrier pushed, across accounts: needs the carrier's Server-to-Server token.
const CARRIER_PEERING_NUMBERS: &str = "number_management/carrier/peering_numbers";
/// Zoom's maximum for this endpoint (REFERENCE §1 [doc]): fewer calls against the rate limit.
const PAGE_SIZE: &str = "300";

/// An answer that got through: a 2xx, or (for batches) Zoom's 400 "some data failed".
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Client {
    /// `GET /v2/users/me`: the user who authorized and their Zoom account.
    pub async fn me(&self, access_token: &str) -> Result<Me, ZoomError> {
        #[derive(Deserialize)]
        struct Body {
            id: String,
            account_id: String,
            #[serde(default)]
            email: String,
            #[serde(default)]
            display_name: String,
            #[serde(default)]
            first_name: String,
            #[serde(default)]
            last_name: String,
            // A number in Zoom's answers; a string would do as well.
            #[serde(default)]
            account_number: Option<serde_json::Value>,
        }
        let a = self.call(Method::GET, "users/me", access_token, &[], None, false).await?;
        let b: Body = decode(&a.body)?;
        tracing::debug!(zoom_account = %b.account_id, "users/me");
        let name = if b.display_name.trim().is_empty() {
            format!("{} {}", b.first_name.trim(), b.last_name.trim()).trim().to_owned()
        } else {
            b.display_name.trim().to_owned()
        };
        let account_number = match b.account_number {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        Ok(Me { user_id: b.id, account_id: b.account_id, email: b.email, name, account_number })
    }

    /// One page of the account's peering numbers (`GET number_management/peering_numbers`). Pass the
    /// previous page's `next_page_token` to go on; it expires after 15 minutes.
    pub async fn list_peering_numbers(
        &self,
        access_token: &str,
        page_token: Option<&str>,
    ) -> Result<Page, ZoomError> {
        self.page(PEERING_NUMBERS, access_token, page_token, &[]).await
    }

    /// One page of every number the carrier pushed, in every account
    /// (`GET number_management/carrier/peering_numbers`), with each number's account number;
    /// `account_number` keeps one account's. `access_token` is the carrier's Server-to-Server token
    /// ([`Client::account_token`]).
    pub async fn list_carrier_peering_numbers(
        &self,
        access_token: &str,
        page_token: Option<&str>,
        account_number: Option<&str>,
    ) -> Result<Page, ZoomError> {
        let filter: Vec<_> =
            account_number.map(|a| ("customer_account_number", a.to_owned())).into_iter().collect();
        self.page(CARRIER_PEERING_NUMBERS, access_token, page_token, &filter).await
    }

    /// Every peering number of the account, page after page (300 a page, one call each). A page token
    /// that expired on the way (a 400 with code 300) starts the listing over, once.
    pub async fn list_all_peering_numbers(
        &self,
        access_token: &str,
    ) -> Result<Vec<PeeringNumber>, ZoomError> {
        let (mut all, mut next, mut restarted) = (Vec::new(), None::<String>, false);
        loop {
            match self.page(PEERING_NUMBERS, access_token, next.as_deref(), &[]).await {
                Ok(page) => {
                    all.extend(page.numbers);
                    match page.next_page_token {
                        Some(t) => next = Some(t),
                        None => return Ok(all),
                    }
                }
                Err(ZoomError::Refused { status: 400, code: 300, .. })
                    if next.is_some() && !restarted =>
                {
                    tracing::info!("Zoom's page token expired; listing again from the start");
                    (all, next, restarted) = (Vec::new(), None, true);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The account's peering number `phone_number`, if the account has it (`phone_number` filter).
    /// Zoom answers "Phone number already exists" to a POST whichever account has the number; this
    /// tells whether it is this one.
    pub async fn find_peering_number(
        &self,
        access_token: &str,
        phone_number: &str,
    ) -> Result<Option<PeeringNumber>, ZoomError> {
        let filter = [("phone_number", phone_number.to_owned())];
        let page = self.page(PEERING_NUMBERS, access_token, None, &filter).await?;
        Ok(page.numbers.into_iter().find(|n| same_number(&n.phone_number, phone_number)))
    }

    async fn page(
        &self,
        path: &str,
        access_token: &str,
        page_token: Option<&str>,
        filter: &[(&str, String)],
    ) -> Result<Page, ZoomError> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            next_page_token: Option<String>,
            // Required by the schema, but an account with none may leave it out.
            #[serde(default)]
            numbers: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            phone_number: String,
            #[serde(default)]
            sip_trunk_name: Option<String>,
            #[serde(default)]
            assigned: bool,
            // Required by the schema; a number without it is taken as active, as Zoom adds them.
            #[serde(default = "active")]
            status: bool,
            #[serde(default)]
            number_pool_status: Option<String>,
            #[serde(default)]
            customer_account_number: Option<String>,
            #[serde(default)]
            number_type: Option<String>,
            #[serde(default)]
            voice_direction: Option<String>,
            #[serde(default)]
            voice_msg_capacity: Option<String>,
            #[serde(default)]
            message_capability: Option<String>,
            #[serde(default)]
            outbound_dialer_not_supported: Option<bool>,
            #[serde(default)]
            outbound_cli_share_not_supported: Option<bool>,
        }
        fn active() -> bool {
            true
        }
        let mut query = vec![("page_size", PAGE_SIZE.to_owned())];
        if let Some(t) = page_token.filter(|t| !t.is_empty()) {
            query.push(("next_page_token", t.to_owned()));
        }
        query.extend(filter.iter().cloned());
        let a = self.call(Method::GET, path, access_token, &query, None, false).await?;
        let b: Body = decode(&a.body)?;
        Ok(Page {
            numbers: b
                .numbers
                .into_iter()
                .map(|i| PeeringNumber {
                    phone_number: i.phone_number,
                    sip_trunk_name: i.sip_trunk_name,
                    assigned: i.assigned,
                    active: i.status,
                    returned: i
                        .number_pool_status
                        .is_some_and(|s| s.eq_ignore_ascii_case("RETURNED")),
                    customer_account_number: i.customer_account_number.filter(|a| !a.is_empty()),
                    capabilities: crate::Capabilities {
                        number_type: i.number_type,
                        voice_direction: i.voice_direction,
                        voice_msg_capacity: i.voice_msg_capacity,
                        message_capability: i.message_capability,
                        outbound_dialer_not_supported: i.outbound_dialer_not_supported,
                        outbound_cli_share_not_supported: i.outbound_cli_share_not_supported,
                    },
                })
                .collect(),
            // Zoom marks the last page with an empty string [doc].
            next_page_token: b.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// `POST`: adds up to 200 numbers on `sip_trunk_name`, active, for Zoom Phone. More than 200 is
    /// `ZoomError::Invalid` without a call. A number Zoom already has comes back `AlreadyDone`.
    pub async fn add_peering_numbers(
        &self,
        access_token: &str,
        sip_trunk_name: &str,
        numbers: &[String],
    ) -> Result<Vec<NumberResult>, ZoomError> {
        self.add_peering_numbers_with_status(access_token, sip_trunk_name, numbers, true).await
    }

    /// `POST` with `status` `active`: inactive (`false`) is how a number still being ported in is
    /// added; Zoom shows it pending until it is set active (`update_peering_numbers`).
    pub async fn add_peering_numbers_with_status(
        &self,
        access_token: &str,
        sip_trunk_name: &str,
        numbers: &[String],
        active: bool,
    ) -> Result<Vec<NumberResult>, ZoomError> {
        check_batch(numbers.iter().map(String::as_str))?;
        let items: Vec<Value> = numbers
            .iter()
            .map(|n| json!({ "phone_number": n, "sip_trunk_name": sip_trunk_name, "status": active }))
            .collect();
        let body = json!({ "allocated_product": "ZOOM_PHONE", "phone_numbers": items });
        let a = self.call(Method::POST, PEERING_NUMBERS, access_token, &[], Some(body), true).await;
        per_number(numbers, a, Op::Add)
    }

    /// `PATCH`: changes up to 200 numbers (`None` fields stay as they are).
    pub async fn update_peering_numbers(
        &self,
        access_token: &str,
        updates: &[NumberUpdate],
    ) -> Result<Vec<NumberResult>, ZoomError> {
        check_batch(updates.iter().map(|u| u.phone_number.as_str()))?;
        let items: Vec<Value> = updates
            .iter()
            .map(|u| {
                let mut item = json!({ "phone_number": u.phone_number });
                let fields = [
                    ("sip_trunk_name", u.sip_trunk_name.clone().map(Value::from)),
                    ("status", u.status.map(Value::from)),
                    ("billing_ref_id", u.billing_ref_id.clone().map(Value::from)),
                    ("service_info", u.service_info.clone().map(Value::from)),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        item[k] = v;
                    }
                }
                item
            })
            .collect();
        let numbers: Vec<String> = updates.iter().map(|u| u.phone_number.clone()).collect();
        let a = self
            .call(
                Method::PATCH,
                PEERING_NUMBERS,
                access_token,
                &[],
                Some(json!({ "phone_numbers": items })),
                true,
            )
            .await;
        per_number(&numbers, a, Op::Update)
    }

    /// `DELETE`: removes up to 200 numbers. One Zoom no longer has comes back `AlreadyDone`; one assigned
    /// to a user in Zoom is `Refused` with Zoom's reason.
    pub async fn remove_peering_numbers(
        &self,
        access_token: &str,
        numbers: &[String],
    ) -> Result<Vec<NumberResult>, ZoomError> {
        check_batch(numbers.iter().map(String::as_str))?;
        // Repeated query parameters (REFERENCE §1: sources disagree; this is the documented encoding).
        let query: Vec<(&str, String)> =
            numbers.iter().map(|n| ("phone_numbers", n.clone())).collect();
        let a = self.call(Method::DELETE, PEERING_NUMBERS, access_token, &query, None, true).await;
        per_number(numbers, a, Op::Remove)
    }

    /// One call to the REST API. Any answer but a 2xx is an error here, except, for a batch
    /// (`partial`), a 400 with code 1000 ("some data failed"), which `per_number` reads.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        query: &[(&str, String)],
        body: Option<Value>,
        partial: bool,
    ) -> Result<Answer, ZoomError> {
        // Never the token; the Zoom account is on the caller's span (the app's job span).
        let batch = body
            .as_ref()
            .and_then(|b| b["phone_numbers"].as_array().map(Vec::len))
            .unwrap_or_else(|| query.iter().filter(|(k, _)| *k == "phone_numbers").count());
        let span = tracing::info_span!(
            "zoom.api",
            %method,
            path,
            batch,
            status = tracing::field::Empty,
            tracking_id = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let result = async {
            let url = self
                .inner
                .api_base
                .join(path)
                .map_err(|e| (ZoomError::Invalid(format!("api_base: {e}")), String::new()))?;
            let mut request = self.inner.http.request(method, url).bearer_auth(token).query(query);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response =
                request.send().await.map_err(|e| (transport_error(&e), String::new()))?;
            let status = response.status();
            let span = tracing::Span::current();
            span.record("status", status.as_u16());
            // Zoom's support asks for it (REFERENCE §5).
            if let Some(id) =
                response.headers().get("x-zm-trackingid").and_then(|v| v.to_str().ok())
            {
                span.record("tracking_id", id);
            }
            let headers = response.headers().clone();
            let body =
                response.bytes().await.map_err(|e| (transport_error(&e), String::new()))?.to_vec();
            if status.is_success() {
                return Ok(Answer { status, body });
            }
            match api_error(status, &headers, &body, (self.inner.now)()) {
                ZoomError::Refused { status: 400, code: 1000, .. } if partial => {
                    Ok(Answer { status, body })
                }
                error => Err((error, excerpt(&body))),
            }
        }
        .instrument(span.clone())
        .await;
        span.record("elapsed_ms", u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        span.in_scope(|| match &result {
            Ok(a) if a.status.is_success() => tracing::debug!("Zoom answered"),
            // The list of failed numbers is not a published shape: keep the raw body in the log.
            Ok(a) => tracing::info!(body = %excerpt(&a.body), "Zoom refused some numbers"),
            Err((e, _)) if e.is_retryable() => {
                tracing::info!(error = %e, "Zoom call failed; retryable")
            }
            Err((e, body)) => tracing::warn!(error = %e, %body, "Zoom refused the call"),
        });
        result.map_err(|(e, _)| e)
    }
}

/// Zoom's batch limits, and no number twice: Zoom would answer the second "already exists" and the
/// per-number results could not tell the two apart.
fn check_batch<'a>(numbers: impl ExactSizeIterator<Item = &'a str>) -> Result<(), ZoomError> {
    match numbers.len() {
        0 => return Err(ZoomError::Invalid("no phone numbers given".into())),
        n if n > MAX_BATCH => {
            return Err(ZoomError::Invalid(format!(
                "{n} phone numbers given; Zoom takes at most {MAX_BATCH} per call"
            )))
        }
        _ => {}
    }
    let mut seen = std::collections::HashSet::new();
    for n in numbers {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        if !seen.insert(digits) {
            return Err(ZoomError::Invalid(format!("phone number {n} is in the batch twice")));
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ZoomError> {
    serde_json::from_slice(body).map_err(|e| ZoomError::Decode(format!("{e}: {}", excerpt(body))))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}

/// Zoom's error body `{"code", "message"[, "errors"]}` (REFERENCE §5) as a `ZoomError`.
fn api_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: time::OffsetDateTime,
) -> ZoomError {
    #[derive(Deserialize)]
    struct Body {
        code: Option<i64>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Body>(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code).unwrap_or(0);
    let message = parsed.and_then(|b| b.message).unwrap_or_else(|| excerpt(body));
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            ZoomError::RateLimited { retry_after: retry_after(headers, now) }
        }
        StatusCode::UNAUTHORIZED => ZoomError::Unauthorized { message },
        s if s.is_server_error() => ZoomError::Server { status: s.as_u16(), message },
        s => ZoomError::Refused { status: s.as_u16(), code, message },
    }
}

pub(crate) fn transport_error(e: &reqwest::Error) -> ZoomError {
    if e.is_timeout() {
        ZoomError::Timeout
    } else {
        // A body cut short lands here too: the call's outcome is unknown, so it is retryable, not a
        // Decode. The whole chain, because reqwest's top line alone ("error sending request") says
        // nothing; no token is ever in a URL.
        ZoomError::Transport(error_chain(e))
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How long Zoom asks us to wait: `Retry-After` in seconds or as a time (the ISO-8601 time Zoom sends
/// for daily limits [seen], or an HTTP-date); without it, a daily limit (`X-RateLimit-Type:
/// Daily-limit`) lasts until midnight UTC [assume], and a per-second one frees up within a second.
pub(crate) fn retry_after(headers: &HeaderMap, now: time::OffsetDateTime) -> Duration {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = header("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Duration::from_secs(secs);
        }
        let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .or_else(|_| {
                time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
            })
            .ok()
            .or_else(|| http_date(v));
        if let Some(at) = at {
            return until(now, at);
        }
    }
    if header("x-ratelimit-type").is_some_and(|t| t.to_ascii_lowercase().contains("daily")) {
        let now = now.to_offset(time::UtcOffset::UTC);
        let midnight = (now.date() + time::Duration::days(1)).midnight().assume_utc();
        return until(now, midnight);
    }
    Duration::from_secs(1)
}

/// At least a second: a time already past still means "not right now".
fn until(now: time::OffsetDateTime, at: time::OffsetDateTime) -> Duration {
    Duration::try_from(at - now).unwrap_or(Duration::ZERO).max(Duration::from_secs(1))
}

/// RFC 9110 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(v: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(v, &format).ok().map(time::PrimitiveDateTime::assume_utc)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Update,
    Remove,
}

/// Turns the answer to a batch into one result per number, in the caller's order. Success is only
/// a 2xx; a 400 with code 1000 lists the numbers that failed and the rest were done
/// (REFERENCE §1). Anything else is an error for the whole call: never success.
fn per_number(
    numbers: &[String],
    answer: Result<Answer, ZoomError>,
    op: Op,
) -> Result<Vec<NumberResult>, ZoomError> {
    let a = answer?;
    let failures = if a.status.is_success() {
        Vec::new()
    } else if a.status == StatusCode::BAD_REQUEST {
        partial_failures(&a.body, numbers).ok_or_else(|| ZoomError::Refused {
            status: 400,
            code: 1000,
            message: format!(
                "some numbers failed, but Zoom's answer does not say which: {}",
                excerpt(&a.body)
            ),
        })?
    } else {
        return Err(ZoomError::Decode(format!("unexpected status {}", a.status)));
    };
    Ok(numbers
        .iter()
        .map(|n| NumberResult {
            phone_number: n.clone(),
            outcome: outcome(op, failures_for(&failures, n)),
        })
        .collect())
}

/// The per-number list of a code 1000 answer. The simulator sends `errors: [{phone_number, reason}]`;
/// Zoom's documentation shows `{phoneNumber, reason}` items; the legacy API `unprocessed_numbers:
/// [{phone_number, failure_reason}]`. Accept all of them, and nothing we cannot match to a number we
/// sent: None then, and the caller treats the whole batch as refused.
fn partial_failures(body: &[u8], sent: &[String]) -> Option<Vec<(String, String)>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let list = match &v {
        Value::Array(items) => items,
        Value::Object(o) => {
            ["errors", "data", "failed_numbers", "unprocessed_numbers", "phone_numbers"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_array))?
        }
        _ => return None,
    };
    let text = |item: &Value, keys: &[&str]| {
        keys.iter().find_map(|k| item.get(*k).and_then(Value::as_str)).map(str::to_owned)
    };
    let failures = list
        .iter()
        .map(|item| {
            let number = text(item, &["phone_number", "phoneNumber", "number"])?;
            let reason = text(item, &["reason", "failure_reason", "message", "error"])
                .unwrap_or_else(|| "Some data failed.".into());
            sent.iter().any(|s| same_number(s, &number)).then_some((number, reason))
        })
        .collect::<Option<Vec<_>>>()?;
    (!failures.is_empty()).then_some(failures)
}

fn failures_for<'a>(failures: &'a [(String, String)], number: &str) -> Option<&'a str> {
    failures.iter().find(|(n, _)| same_number(n, number)).map(|(_, r)| r.as_str())
}

fn outcome(op: Op, failure: Option<&str>) -> Outcome {
    let Some(reason) = failure else { return Outcome::Done };
    let lower = reason.to_ascii_lowercase();
    match op {
        Op::Add if lower.contains("already exist") => Outcome::AlreadyDone,
        Op::Remove if lower.contains("does not exist") => Outcome::AlreadyDone,
        _ => Outcome::Refused { code: 1000, message: reason.to_owned() },
    }
}

/// Zoom may echo `+12065550100` as `12065550100` (REFERENCE §6).
fn same_number(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    digits(a) == digits(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use time::macros::datetime;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn retry_after_is_read_in_seconds_as_a_time_or_from_the_limit_type() {
        let now = datetime!(2026-11-23 22:00:00 UTC);
        assert_eq!(retry_after(&headers(&[("retry-after", "7")]), now), Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2026-11-23T22:00:30Z")]), now),
            Duration::from_secs(30)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "Mon, 23 Nov 2026 22:01:00 GMT")]), now),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2026-11-23T21:00:00Z")]), now),
            Duration::from_secs(1),
            "a past time"
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-type", "Daily-limit")]), now),
            Duration::from_secs(2 * 3600)
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-type", "QPS")]), now),
            Duration::from_secs(1)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), Duration::from_secs(1));
    }

    #[test]
    fn a_failure_list_is_matched_to_the_numbers_sent_whatever_their_spelling() {
        let sent = vec!["+12065550001".to_owned(), "+12065550002".to_owned()];
        let body = br#"{"code":1000,"message":"Some data failed.","errors":[{"phone_number":"12065550002","reason":"Invalid Sip Trunk"}]}"#;
        assert_eq!(
            partial_failures(body, &sent),
            Some(vec![("12065550002".into(), "Invalid Sip Trunk".into())])
        );
        let legacy = br#"{"unprocessed_numbers":[{"phone_number":"+12065550001","failure_reason":"Invalid number"}]}"#;
        assert_eq!(
            partial_failures(legacy, &sent),
            Some(vec![("+12065550001".into(), "Invalid number".into())])
        );
        assert_eq!(
            partial_failures(br#"{"code":1000,"message":"Some data failed."}"#, &sent),
            None,
            "no list"
        );
        assert_eq!(partial_failures(br#"{"errors":[]}"#, &sent), None, "an empty list");
        assert_eq!(
            partial_failures(br#"{"errors":[{"field":"x","message":"y"}]}"#, &sent),
            None,
            "a validation list"
        );
    }
}
