//! Call routing decisions (issue 7; the contract is `reference/routing/REFERENCE.md`): per call, may it
//! pass, and over which Zoom trunk. Pure: the routing snapshot looks the numbers up and calls
//! [`decide`]; the HTTP lookup API and the SIP redirect server only render its answer.

use crate::ids::CustomerId;
use crate::number::NumberState;
use crate::phone::PhoneNumber;
use crate::trunk::NumberingRule;
use serde::Serialize;

/// Which way the call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// PSTN to Zoom: the called number must be in a customer's Zoom account.
    Inbound,
    /// Zoom to PSTN: the calling number must be the customer's, coming over its trunk.
    Outbound,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Why a call was refused (or, for `Allow`/`Route`, nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not in any customer's Zoom account: unknown, in stock, reserved, or on its way there.
    NotProvisioned,
    /// Released from Zoom (quarantine, or being removed).
    Released,
    /// Suspended by the carrier.
    Suspended,
    /// Suspended because the customer removed the app in Zoom.
    Deauthorized,
    /// The call came over another trunk than the calling number's customer's.
    WrongTrunk,
    /// The calling number is not one of the carrier's customers' numbers.
    NotCustomerNumber,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotProvisioned => "not_provisioned",
            Reason::Released => "released",
            Reason::Suspended => "suspended",
            Reason::Deauthorized => "deauthorized",
            Reason::WrongTrunk => "wrong_trunk",
            Reason::NotCustomerNumber => "not_customer_number",
        }
    }
}

/// What routing needs to know of one number (the snapshot keeps exactly this).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberRouting<'a> {
    pub state: NumberState,
    /// The number's customer removed the app in Zoom (its link is `removed`): a `suspended` number
    /// then answers `deauthorized` rather than `suspended`.
    pub deauthorized: bool,
    /// The Zoom trunk of the number's customer, if it has one.
    pub trunk: Option<&'a str>,
}

/// A number as the routing snapshot loads it from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberFacts {
    pub e164: PhoneNumber,
    pub state: NumberState,
    pub customer: Option<CustomerId>,
    /// Why it is in its state (kept for operators; routing decides on state and the customer's link).
    pub reason: Option<String>,
}

/// A customer as the routing snapshot loads it from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingCustomer {
    pub id: CustomerId,
    /// The customer's Zoom trunk (`sip_trunk_name`), if it has one.
    pub trunk: Option<String>,
    /// The customer removed the app in Zoom: it has a removed Zoom link and no live one. Told from
    /// the link's state, never from a suspension's wording.
    pub app_removed: bool,
}

/// One read of the `routing_changes` feed, all of it from one database snapshot.
///
/// Change ids come from a sequence taken when a change is written, not when its transaction
/// commits, so on PostgreSQL a transaction still open can hold ids below those already read. Such
/// transactions are in `open`; the reader watches them and asks for their changes again by
/// transaction (`watched`), not by id, until they have ended. SQLite has one writer at a time, so
/// its ids commit in order and `open` is always empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedRead {
    /// Changes after the id asked from, oldest first, at most the page asked for; then every change
    /// of a watched transaction (now committed) at or below that id. `None`: customers, links or
    /// trunks changed.
    pub changes: Vec<(i64, Option<PhoneNumber>)>,
    /// How many of `changes` are from after the id asked from: a full page means more may follow.
    pub newer: usize,
    /// The transactions open at this read (any of them may still commit changes with lower ids).
    pub open: Vec<i64>,
    /// The oldest and newest change id kept (0, 0 when the feed is empty).
    pub low: i64,
    pub high: i64,
    /// Every transaction before this one had ended at this read (PostgreSQL); pruning spares the
    /// changes of transactions after a horizon taken a while ago, which a reader may not have seen.
    pub horizon: Option<i64>,
}

/// How current the database a routing follower reads is. A read replica cut off from its primary
/// keeps answering queries with nothing new in them; the writers' heartbeat, replicated like any
/// row, is what shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The database is a replica (PostgreSQL in recovery): its reads are only as current as the
    /// last heartbeat that reached it. On a primary (or SQLite) every read is current.
    pub replica: bool,
    /// The last heartbeat written on the primary as this database has it, by the primary's clock.
    /// `None`: no heartbeat row.
    pub beat_at: Option<time::OffsetDateTime>,
    /// This database's clock at the read.
    pub now: time::OffsetDateTime,
}

/// The answer, as both the HTTP API and the redirect server give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Inbound: send the call to this Zoom trunk (SIP 302).
    Route { trunk: &'a str },
    /// Outbound: let the call through.
    Allow,
    /// Refuse with this SIP status (404, 480 or 403).
    Reject { status: u16, reason: Reason },
}

impl Decision<'_> {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Reject { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The SIP status an SBC should act on: 302, 200 or the reject code.
    pub fn sip_status(&self) -> u16 {
        match self {
            Decision::Route { .. } => 302,
            Decision::Allow => 200,
            Decision::Reject { status, .. } => *status,
        }
    }
}

/// Why a number that exists but cannot carry calls does not, by state; `None` for states that route.
fn not_routable(n: &NumberRouting<'_>) -> Option<Reason> {
    match n.state {
        NumberState::Active | NumberState::ReleasePending => None,
        NumberState::Suspended if n.deauthorized => Some(Reason::Deauthorized),
        NumberState::Suspended => Some(Reason::Suspended),
        NumberState::Aging | NumberState::Releasing => Some(Reason::Released),
        NumberState::Available
        | NumberState::Reserved
        | NumberState::Provisioning
        | NumberState::Porting => Some(Reason::NotProvisioned),
    }
}

/// The contract table. `from`/`to` are the numbers' routing facts (`None`: not in the inventory);
/// `via_trunk` is the Zoom trunk an outbound call came over.
pub fn decide<'a>(
    direction: Direction,
    from: Option<NumberRouting<'a>>,
    to: Option<NumberRouting<'a>>,
    via_trunk: Option<&str>,
) -> Decision<'a> {
    match direction {
        Direction::Inbound => {
            let Some(to) = to else {
                return Decision::Reject { status: 404, reason: Reason::NotProvisioned };
            };
            match (not_routable(&to), to.trunk) {
                (Some(r @ (Reason::Suspended | Reason::Deauthorized)), _) => {
                    Decision::Reject { status: 480, reason: r }
                }
                (Some(r), _) => Decision::Reject { status: 404, reason: r },
                // A customer without a trunk cannot have numbers in Zoom: nowhere to send the call.
                (None, None) => Decision::Reject { status: 404, reason: Reason::NotProvisioned },
                (None, Some(trunk)) => Decision::Route { trunk },
            }
        }
        Direction::Outbound => {
            let Some(from) = from else {
                return Decision::Reject { status: 403, reason: Reason::NotCustomerNumber };
            };
            if let Some(r) = not_routable(&from) {
                return Decision::Reject { status: 403, reason: r };
            }
            match (from.trunk, via_trunk) {
                (Some(mine), Some(via)) if mine == via => Decision::Allow,
                _ => Decision::Reject { status: 403, reason: Reason::WrongTrunk },
            }
        }
    }
}

/// Why a Request-URI (or a number in a query) is not a phone number peerex can look up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberFormError {
    #[error("not a sip:, sips: or tel: URI with a number as its user part")]
    NotANumberUri,
    #[error("the number has characters other than digits and visual separators")]
    NotDigits,
    #[error("the number has {0} digits; E.164 allows 8 to 15")]
    Length(usize),
}

/// Turns what a carrier's switch sends (`sip:+15550100000@host;user=phone`, `tel:+1-555-010-0000`,
/// `sip:0115550100000@host`, national `15550100000` or bare digits) into the E.164 number as an
/// integer (the digits after `+`), by the trunk's numbering rule.
pub fn normalize(uri: &str, rule: &NumberingRule) -> Result<u64, NumberFormError> {
    normalize_digits(user_part(uri)?, rule)
}

/// The number a `sip:`, `sips:` or `tel:` URI (or a bare number) carries, as written.
fn user_part(uri: &str) -> Result<&str, NumberFormError> {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let user = if let Some(rest) = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")) {
        // The user part ends at '@'; without one the URI names a host, not a number.
        let (user, _) = rest.split_once('@').ok_or(NumberFormError::NotANumberUri)?;
        user
    } else if let Some(rest) = uri.strip_prefix("tel:") {
        rest
    } else {
        uri
    };
    // User parameters (`;npdi`, `;rn=...`, tel's `;phone-context=`) are not part of the number.
    Ok(user.split(';').next().unwrap_or_default())
}

/// The emergency numbers a call to which is never refused, whoever calls, over whichever trunk, in
/// whatever state peerex holds the caller or its copy of the database. Kept as E.164 digits with
/// the country code (`44999`, `61000`, `49112`): outside the US and Canada Zoom hands an emergency
/// call to the peering carrier as `+<country code><short code>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyNumbers(Vec<u64>);

/// `(country code, short codes)` peerex treats as emergency numbers unless the carrier configures
/// its own list: the public emergency numbers of the countries Zoom Phone serves through peering.
const DEFAULT_EMERGENCY: &[(&str, &[&str])] = &[
    ("1", &["911", "933"]),
    ("44", &["999", "112"]),
    ("353", &["999", "112"]),
    ("49", &["112", "110"]),
    ("33", &["112", "15", "17", "18", "114"]),
    ("34", &["112", "091", "061", "080"]),
    ("39", &["112", "113", "115", "118"]),
    ("31", &["112"]),
    ("32", &["112", "101"]),
    ("41", &["112", "117", "118", "144"]),
    ("43", &["112", "122", "133", "144"]),
    ("45", &["112"]),
    ("46", &["112"]),
    ("47", &["112", "110", "113"]),
    ("48", &["112", "997", "998", "999"]),
    ("351", &["112"]),
    ("358", &["112"]),
    ("30", &["112", "100", "166", "199"]),
    ("420", &["112", "150", "155", "158"]),
    ("61", &["000", "112", "106"]),
    ("64", &["111"]),
    ("65", &["999", "995"]),
    ("81", &["110", "119", "118"]),
    ("82", &["112", "119"]),
    ("91", &["112", "100", "101", "102", "108"]),
    ("52", &["911"]),
    ("55", &["190", "192", "193"]),
    ("27", &["10111", "112"]),
    ("852", &["999", "112"]),
    ("971", &["999", "112", "997", "998"]),
];

/// Why an entry of the carrier's emergency list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("emergency_numbers: {entry:?} {why}")]
pub struct EmergencyListError {
    pub entry: String,
    pub why: &'static str,
}

impl Default for EmergencyNumbers {
    fn default() -> Self {
        let mut all: Vec<u64> = DEFAULT_EMERGENCY
            .iter()
            .flat_map(|(cc, codes)| {
                codes.iter().filter_map(move |c| format!("{cc}{c}").parse().ok())
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        Self(all)
    }
}

impl EmergencyNumbers {
    /// The carrier's own list, each entry `+` country code and short code (`+44999`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, EmergencyListError> {
        let mut all = Vec::with_capacity(entries.len());
        for e in entries {
            let entry = e.as_ref().trim();
            let refuse = |why| EmergencyListError { entry: entry.to_owned(), why };
            let digits = entry
                .strip_prefix('+')
                .ok_or_else(|| refuse("must start with + and the country code, like +44999"))?;
            if !(3..=10).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse("must be + and 3 to 10 digits"));
            }
            if digits.starts_with('0') {
                return Err(refuse("must start with a country code (not 0)"));
            }
            all.push(digits.parse().map_err(|_| refuse("is not a number"))?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(Self(all))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The numbers, as E.164 digits, in ascending order.
    pub fn numbers(&self) -> &[u64] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `uri` (a Request-URI or a number, in any form [`normalize`] takes) dials an emergency
    /// number, and which. `+44999`, `44999`, `0044999` and, over a trunk numbering for +44, `999`
    /// all name `44999`; a long number never matches a short code.
    pub fn dialled(&self, uri: &str, rule: &NumberingRule) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        let user = user_part(uri).ok()?;
        let (plus, rest) = match user.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, user),
        };
        // On every outbound call: the digits on the stack, no allocation.
        let (mut buf, mut n) = ([0u8; 13], 0);
        for b in rest.bytes() {
            match b {
                b'0'..=b'9' => {
                    *buf.get_mut(n)? = b;
                    n += 1;
                }
                b'-' | b'.' | b'(' | b')' | b' ' => {}
                _ => return None,
            }
        }
        let digits = &buf[..n];
        if digits.is_empty() || (plus && digits[0] == b'0') {
            return None;
        }
        let value = |d: &[u8]| d.iter().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
        let is = |v: u64| self.0.binary_search(&v).is_ok().then_some(v);
        if plus {
            return is(value(digits));
        }
        if let Some(intl) = digits.strip_prefix(rule.international_prefix().as_bytes()) {
            if let Some(v) = is(value(intl)).filter(|_| !intl.is_empty()) {
                return Some(v);
            }
        }
        // The country code written without `+` (switches often drop it), else a short code dialled
        // as in the trunk's country (`000` over +61 is 61000: the zeros count).
        let national = value(rule.country_code().as_bytes()) * 10u64.pow(n as u32) + value(digits);
        is(value(digits)).or_else(|| is(national))
    }
}

/// [`normalize`] for a bare number (`+...`, international, national or plain digits).
pub fn normalize_digits(number: &str, rule: &NumberingRule) -> Result<u64, NumberFormError> {
    let (plus, rest) = match number.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, number),
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // RFC 3966 visual separators
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return Err(NumberFormError::NotDigits),
        }
    }
    if digits.is_empty() {
        return Err(if plus || number.is_empty() {
            NumberFormError::Length(0)
        } else {
            NumberFormError::NotDigits
        });
    }
    let full = if plus {
        digits
    } else if let Some(intl) = digits.strip_prefix(rule.international_prefix()) {
        intl.to_owned()
    } else if let Some(national) =
        digits.strip_prefix(rule.national_prefix()).filter(|_| !rule.national_prefix().is_empty())
    {
        format!("{}{national}", rule.country_code())
    } else if digits.starts_with(rule.country_code()) && digits.len() >= 11 {
        // Long enough to already carry the country code (switches often drop the '+').
        digits
    } else {
        format!("{}{digits}", rule.country_code())
    };
    if !(8..=15).contains(&full.len()) || full.starts_with('0') {
        return Err(NumberFormError::Length(full.len()));
    }
    full.parse().map_err(|_| NumberFormError::NotDigits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumberState::*;

    fn n(state: NumberState, trunk: Option<&str>) -> Option<NumberRouting<'_>> {
        Some(NumberRouting { state, deauthorized: false, trunk })
    }

    fn rej(status: u16, reason: Reason) -> Decision<'static> {
        Decision::Reject { status, reason }
    }

    #[test]
    fn emergency_numbers_are_recognised_in_every_form_sent() {
        let list = EmergencyNumbers::default();
        let uk = NumberingRule::new("44", "0", "00").unwrap();
        for uri in [
            "+44999",
            "tel:+44999",
            "sip:+44999@zoom.example;user=phone",
            "<sip:+44-999@10.0.0.1>",
            "sip:44999@gw",
            "sip:0044999@gw",
            "sip:999@gw",
            "sip:112;npdi@gw",
        ] {
            let expected = if uri.contains("112") { 44112 } else { 44999 };
            assert_eq!(list.dialled(uri, &uk), Some(expected), "{uri}");
        }
        let nanp = NumberingRule::nanp();
        for (uri, expected) in
            [("+61000", 61000), ("+49112", 49112), ("sip:911@gw", 1911), ("+1911", 1911)]
        {
            assert_eq!(list.dialled(uri, &nanp), Some(expected), "{uri}");
        }
        for uri in [
            "+442071234567",
            "sip:+4499@gw",
            "sip:999@gw",     // 999 is no emergency number in +1
            "sip:gw.example", // no user part
            "+44999x",
            "",
        ] {
            assert_eq!(list.dialled(uri, &nanp), None, "{uri}");
        }
        assert_eq!(list.dialled("+442071234567", &uk), None);
    }

    #[test]
    fn a_carriers_own_emergency_list_replaces_the_defaults() {
        let list = EmergencyNumbers::parse(&["+44999", " +3323 "]).unwrap();
        assert_eq!(list.len(), 2);
        let fr = NumberingRule::new("33", "0", "00").unwrap();
        assert_eq!(list.dialled("sip:23@gw", &fr), Some(3323));
        assert_eq!(list.dialled("+33112", &fr), None);
        for (bad, why) in [
            ("44999", "must start with +"),
            ("+4a9", "3 to 10"),
            ("+0999", "country code"),
            ("+1", "3 to 10"),
        ] {
            let e = EmergencyNumbers::parse(&[bad]).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn inbound_follows_the_contract_table() {
        let t = Some("zoom-a");
        let d = |to| decide(Direction::Inbound, None, to, None);
        assert_eq!(d(n(Active, t)), Decision::Route { trunk: "zoom-a" });
        assert_eq!(d(n(ReleasePending, t)), Decision::Route { trunk: "zoom-a" });
        assert_eq!(d(n(Suspended, t)), rej(480, Reason::Suspended));
        assert_eq!(
            d(Some(NumberRouting { state: Suspended, deauthorized: true, trunk: t })),
            rej(480, Reason::Deauthorized)
        );
        assert_eq!(d(None), rej(404, Reason::NotProvisioned));
        for s in [Available, Reserved, Provisioning] {
            assert_eq!(d(n(s, t)), rej(404, Reason::NotProvisioned), "{s}");
        }
        for s in [Aging, Releasing] {
            assert_eq!(d(n(s, t)), rej(404, Reason::Released), "{s}");
        }
        assert_eq!(
            d(n(Active, None)),
            rej(404, Reason::NotProvisioned),
            "no trunk: nowhere to route"
        );
    }

    #[test]
    fn outbound_follows_the_contract_table() {
        let t = Some("zoom-a");
        let d = |from, via| decide(Direction::Outbound, from, None, via);
        assert_eq!(d(n(Active, t), Some("zoom-a")), Decision::Allow);
        assert_eq!(d(n(ReleasePending, t), Some("zoom-a")), Decision::Allow);
        assert_eq!(d(n(Active, t), Some("zoom-b")), rej(403, Reason::WrongTrunk));
        assert_eq!(d(n(Active, t), None), rej(403, Reason::WrongTrunk));
        assert_eq!(d(n(Active, None), Some("zoom-a")), rej(403, Reason::WrongTrunk));
        assert_eq!(d(n(Suspended, t), Some("zoom-a")), rej(403, Reason::Suspended));
        assert_eq!(
            d(
                Some(NumberRouting { state: Suspended, deauthorized: true, trunk: t }),
                Some("zoom-a")
            ),
            rej(403, Reason::Deauthorized)
        );
        assert_eq!(d(None, Some("zoom-a")), rej(403, Reason::NotCustomerNumber));
        for s in [Available, Reserved, Provisioning] {
            assert_eq!(d(n(s, t), Some("zoom-a")), rej(403, Reason::NotProvisioned), "{s}");
        }
        for s in [Aging, Releasing] {
            assert_eq!(d(n(s, t), Some("zoom-a")), rej(403, Reason::Released), "{s}");
        }
    }

    #[test]
    fn every_state_has_a_decision_in_both_directions() {
        for s in NumberState::ALL {
            let inbound = decide(Direction::Inbound, None, n(s, Some("z")), None);
            let outbound = decide(Direction::Outbound, n(s, Some("z")), None, Some("z"));
            let routes = matches!(s, Active | ReleasePending);
            assert_eq!(matches!(inbound, Decision::Route { .. }), routes, "{s}");
            assert_eq!(outbound == Decision::Allow, routes, "{s}");
            assert!(
                [302, 404, 480].contains(&inbound.sip_status())
                    && [200, 403].contains(&outbound.sip_status())
            );
        }
    }

    #[test]
    fn request_uri_forms_normalize_to_e164() {
        let nanp = NumberingRule::nanp();
        for uri in [
            "sip:+15550100000@carrier.example",
            "sip:+15550100000@carrier.example;user=phone",
            "<sip:+1-555-010-0000@carrier.example:5060;user=phone>",
            "sips:15550100000@carrier.example",
            "sip:5550100000@carrier.example",
            "sip:01115550100000@carrier.example",
            "sip:+15550100000;npdi;rn=+15550000000@carrier.example;user=phone",
            "tel:+1-555-010-0000",
            "tel:+1(555)010.0000;phone-context=example.com",
            "+15550100000",
            "15550100000",
        ] {
            assert_eq!(normalize(uri, &nanp), Ok(15550100000), "{uri}");
        }
        let uk = NumberingRule::new("44", "0", "00").unwrap();
        for uri in [
            "sip:02071838750@x",
            "sip:00442071838750@x",
            "sip:442071838750@x",
            "tel:+44-20-7183-8750",
            "sip:2071838750@x",
        ] {
            assert_eq!(normalize(uri, &uk), Ok(442071838750), "{uri}");
        }
        assert_eq!(normalize("sip:carrier.example", &nanp), Err(NumberFormError::NotANumberUri));
        assert_eq!(normalize("sip:alice@carrier.example", &nanp), Err(NumberFormError::NotDigits));
        assert_eq!(normalize("sip:+@x", &nanp), Err(NumberFormError::Length(0)));
        assert_eq!(normalize("sip:+1234@x", &nanp), Err(NumberFormError::Length(4)));
        assert_eq!(normalize("sip:+1234567890123456@x", &nanp), Err(NumberFormError::Length(16)));
        assert_eq!(normalize("sip:+0123456789@x", &nanp), Err(NumberFormError::Length(10)));
        assert_eq!(normalize("sip:%31555@x", &nanp), Err(NumberFormError::NotDigits));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A rule and a national significant number that the rule's country could have.
        fn rule_and_nsn() -> impl Strategy<Value = (NumberingRule, String)> {
            let rules = prop_oneof![
                Just(NumberingRule::nanp()),
                Just(NumberingRule::new("44", "0", "00").unwrap()),
                Just(NumberingRule::new("49", "0", "00").unwrap()),
                Just(NumberingRule::new("33", "", "00").unwrap()),
            ];
            // The first digit is 2-9: a national number never starts with a trunk prefix.
            (rules, "[2-9][0-9]{6,9}")
        }

        proptest! {
            #[test]
            fn every_form_of_a_number_normalizes_to_the_same_e164((rule, nsn) in rule_and_nsn(), host in "[a-z]{1,8}\\.example") {
                let e164 = format!("{}{nsn}", rule.country_code());
                let want: u64 = e164.parse().unwrap();
                let mut forms = vec![
                    format!("sip:+{e164}@{host}"),
                    format!("sip:+{e164}@{host};user=phone"),
                    format!("sips:+{e164}@{host}:5061;transport=tls"),
                    format!("tel:+{e164}"),
                    format!("sip:{}{e164}@{host}", rule.international_prefix()),
                    format!("sip:{}{nsn}@{host};user=phone", rule.national_prefix()),
                ];
                if e164.len() >= 11 {
                    forms.push(format!("sip:{e164}@{host}"));
                }
                for form in forms {
                    prop_assert_eq!(normalize(&form, &rule), Ok(want), "{}", form);
                }
            }

            #[test]
            fn normalize_never_panics_and_only_returns_e164(uri in "\\PC{0,40}") {
                if let Ok(n) = normalize(&uri, &NumberingRule::nanp()) {
                    let s = n.to_string();
                    prop_assert!((8..=15).contains(&s.len()));
                }
            }
        }
    }
}
