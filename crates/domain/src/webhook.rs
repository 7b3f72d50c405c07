//! Signed webhooks to the carrier's systems: the events peerex tells them about, the endpoints that
//! hear them, and the rules for where an endpoint may point and how often a delivery is retried.
//! The wire format follows the Standard Webhooks specification (see `app::webhooks`).

use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use time::OffsetDateTime;
use uuid::Uuid;

/// The kinds of event peerex sends. Each is written in the transaction of the change it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    NumberStateChanged,
    OrderPlaced,
    OrderApplied,
    OrderCancelled,
    ReleaseStarted,
    ReleaseApproved,
    ReleaseNumberFinished,
    ZoomLinkCreated,
    ZoomLinkRemoved,
    FindingOpened,
    FindingClosed,
    NumberEmergencyAddressChanged,
    NumberCnamChanged,
    PortInChanged,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::NumberStateChanged,
        EventType::OrderPlaced,
        EventType::OrderApplied,
        EventType::OrderCancelled,
        EventType::ReleaseStarted,
        EventType::ReleaseApproved,
        EventType::ReleaseNumberFinished,
        EventType::ZoomLinkCreated,
        EventType::ZoomLinkRemoved,
        EventType::FindingOpened,
        EventType::FindingClosed,
        EventType::NumberEmergencyAddressChanged,
        EventType::NumberCnamChanged,
        EventType::PortInChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::NumberStateChanged => "number.state_changed",
            EventType::OrderPlaced => "order.placed",
            EventType::OrderApplied => "order.applied",
            EventType::OrderCancelled => "order.cancelled",
            EventType::ReleaseStarted => "release.started",
            EventType::ReleaseApproved => "release.approved",
            EventType::ReleaseNumberFinished => "release.number_finished",
            EventType::ZoomLinkCreated => "zoom_link.created",
            EventType::ZoomLinkRemoved => "zoom_link.removed",
            EventType::FindingOpened => "finding.opened",
            EventType::FindingClosed => "finding.closed",
            EventType::NumberEmergencyAddressChanged => "number.emergency_address_changed",
            EventType::NumberCnamChanged => "number.cnam_changed",
            EventType::PortInChanged => "port_in.changed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What the event reports and what its `data` holds (the OpenAPI document and the README).
    pub fn description(self) -> &'static str {
        match self {
            EventType::NumberStateChanged => "A number changed state. data: number_id, e164, from (null when it came into the inventory), to, reason, customer_id (after the change), actor.",
            EventType::OrderPlaced => "A customer's order was placed. data: order_id, customer_id, quantity, actor.",
            EventType::OrderApplied => "An order's numbers were sent to the customer's Zoom account. data: order_id, customer_id, zoom_account_id, actor.",
            EventType::OrderCancelled => "An order was cancelled. data: order_id, customer_id, actor.",
            EventType::ReleaseStarted => "A release of numbers was started. data: release_id, customer_id, numbers, reason, actor, kind (approval: the customer approves it; port_out, contract_end, returned: no approval), due_at (Unix seconds, or null), gaining_carrier (a port-out's, or null).",
            EventType::ReleaseApproved => "The customer approved the release of numbers (Wait for Release). data: customer_id, numbers, actor.",
            EventType::ReleaseNumberFinished => "One number of a release reached an outcome: released (removed from Zoom, now aging), refused (Zoom refused; waiting again) or withdrawn. data: release_id, number_id, e164, customer_id, outcome, message, actor.",
            EventType::ZoomLinkCreated => "A customer linked a Zoom account (or installed the app again). data: customer_id, zoom_account_id, kind (linked, relinked), message.",
            EventType::ZoomLinkRemoved => "The app was removed from a customer's Zoom account. data: customer_id, zoom_account_id, kind (removed), message (why, and what was suspended).",
            EventType::FindingOpened => "The reconciler found a disagreement. data: finding_id, kind, subject, customer_id, detail.",
            EventType::FindingClosed => "A disagreement is no longer seen, or was repaired. data: finding_id, kind, subject, customer_id, by.",
            EventType::NumberEmergencyAddressChanged => "The customer set a number's emergency (E911) address in Zoom. data: number_id, e164, customer_id, address.",
            EventType::NumberCnamChanged => "The customer set a number's caller ID name (CNAM) in Zoom. data: number_id, e164, customer_id, cnam.",
            EventType::PortInChanged => "A port-in was recorded, pushed to Zoom inactive, completed (activating, active), cancelled, or moved to another date (from = to, with a note). data: port_in_id, from (null when recorded), to, note, actor.",
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event written to the outbox: its stable id (`webhook-id`), type, time, `data`, and the key
/// that keeps its deliveries in order (the number it concerns, else the entity).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    pub id: Uuid,
    pub event_type: EventType,
    pub ordering_key: String,
    pub at: OffsetDateTime,
    pub data: serde_json::Value,
}

impl OutboundEvent {
    /// A new event with a fresh time-ordered id.
    pub fn new(
        event_type: EventType,
        ordering_key: impl Into<String>,
        at: OffsetDateTime,
        data: serde_json::Value,
    ) -> Self {
        Self { id: Uuid::now_v7(), event_type, ordering_key: ordering_key.into(), at, data }
    }
}

/// An endpoint as the operators see it (its secrets never leave the store but to sign).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// The types it hears; empty for all.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why it was disabled (by an operator, or after failing too often).
    pub disabled_reason: Option<String>,
    /// Failed attempts since its last success.
    pub failures: i64,
    /// Until when the secret before the last rotation still signs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Endpoint {
    /// `event_types` as stored: `' a b '`, or `''` for all.
    pub fn encode_types(types: &[EventType]) -> String {
        if types.is_empty() {
            return String::new();
        }
        let mut s = String::from(" ");
        for t in types {
            s.push_str(t.as_str());
            s.push(' ');
        }
        s
    }

    pub fn decode_types(s: &str) -> Vec<EventType> {
        s.split_whitespace().filter_map(EventType::parse).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its time (a first attempt, or a retry) or for an earlier event of its key.
    Pending,
    /// A dispatcher holds it.
    Running,
    Delivered,
    /// Given up after the retry schedule ran out.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Running => "running",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [Self::Pending, Self::Running, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event to one endpoint, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub ordering_key: String,
    pub state: DeliveryState,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A delivery a dispatcher leased: what it needs to send it.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub id: i64,
    pub endpoint_id: Uuid,
    pub url: String,
    /// Sealed secrets that sign: the current one, then the previous one during a rotation's overlap.
    pub secrets: Vec<String>,
    pub event_id: Uuid,
    pub event_type: String,
    pub at: OffsetDateTime,
    pub data: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// Anything else: a non-2xx status (`status`), or no answer at all (`None`).
    Failed { status: Option<u16>, error: String },
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Finished {
    /// False when the dispatcher no longer held the lease (nothing was written).
    pub held: bool,
    /// The endpoint was disabled because it kept failing.
    pub disabled: bool,
}

/// When failed deliveries are tried again: the pause after the first failed attempt, the second...;
/// after the last the delivery is given up. The default spans about four days.
pub fn default_retry_schedule() -> Vec<time::Duration> {
    [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 86_400, 86_400]
        .into_iter()
        .map(time::Duration::seconds)
        .collect()
}

/// When a delivery that has failed `attempts` times is tried next; `None` to give up.
pub fn next_attempt(
    schedule: &[time::Duration],
    attempts: i64,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let i = usize::try_from(attempts.max(1) - 1).ok()?;
    schedule.get(i).map(|pause| now + *pause)
}

/// Why an address may not receive webhooks (the carrier's own network, or nowhere), or `None`.
/// IPv4-mapped and -compatible IPv6 addresses are judged as the IPv4 address they carry.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfec0 {
                Some("private")
            } else if seg[..6] == [0; 6] {
                // IPv4-compatible (::a.b.c.d), deprecated: judged by the IPv4 address.
                forbidden_v4(Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                ))
                .or(Some("IPv4-compatible"))
            } else if seg[0] == 0x64 && seg[1] == 0xff9b {
                // NAT64 reaches IPv4 addresses of the carrier's own network as well.
                Some("NAT64")
            } else if seg[0] == 0x2002 {
                Some("6to4")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("CGNAT")
    } else if ip.is_multicast() || a >= 240 {
        Some(if ip.is_multicast() { "multicast" } else { "reserved" })
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments")
    } else if (a == 198 && (b == 18 || b == 19)) || ip.is_documentation() {
        Some("benchmarking or documentation")
    } else {
        None
    }
}

/// Checks an endpoint URL as typed: http or https, a host, no credentials, at most 2,000 characters.
/// Returns the host (without brackets) and port.
pub fn check_url(url: &str) -> Result<(String, u16), String> {
    if url.len() > 2_000 {
        return Err("is longer than 2000 characters".into());
    }
    let (scheme, rest) = url.split_once("://").ok_or("must start with https:// or http://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err("must start with https:// or http://".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user name or password".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("has an unclosed [")?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| "has a bad port")?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_the_carriers_own_network_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(forbidden_address(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"]
        {
            assert_eq!(forbidden_address(good.parse().unwrap()), None, "{good}");
        }
    }

    #[test]
    fn urls_need_a_scheme_and_host_and_no_credentials() {
        assert_eq!(
            check_url("https://hooks.example.com/x").unwrap(),
            ("hooks.example.com".into(), 443)
        );
        assert_eq!(check_url("http://[::1]:8080/x").unwrap(), ("::1".into(), 8080));
        assert_eq!(check_url("http://127.0.0.1:9/").unwrap(), ("127.0.0.1".into(), 9));
        for bad in
            ["ftp://x", "https://", "https://u:p@x/", "x", "https://x:99999/", "https://a b/"]
        {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_follow_the_schedule_then_give_up() {
        let s = default_retry_schedule();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(next_attempt(&s, 1, now), Some(now + time::Duration::seconds(5)));
        assert_eq!(next_attempt(&s, s.len() as i64, now), Some(now + time::Duration::days(1)));
        assert_eq!(next_attempt(&s, s.len() as i64 + 1, now), None);
        let total: time::Duration = s.iter().copied().sum();
        assert!(total > time::Duration::days(3), "retried for days");
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let types = [EventType::OrderPlaced, EventType::NumberStateChanged];
        assert_eq!(Endpoint::decode_types(&Endpoint::encode_types(&types)), types);
    }
}
