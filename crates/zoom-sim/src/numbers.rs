//! Peering numbers, once: what both API generations add, change, remove and list. The handlers in
//! [`crate::peering`] and [`crate::legacy`] only translate field names and error shapes.

use crate::e164;
use crate::faults::InjectedFailures;
use crate::state::SimState;
use crate::world::{derived_id, World};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum AllocatedProduct {
    Unallocated,
    ZoomPhone,
    ZoomContactCenter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NumberType {
    Mobile,
    Toll,
    TollFree,
    VirtualService,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum VoiceDirection {
    InboundAndOutbound,
    InboundOnly,
    OutboundOnly,
    NotSupported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum VoiceMsgCapacity {
    ZoomPhoneUserOnly,
    MultiUse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum MessageCapability {
    NotApplicable,
    Supported,
    NotSupported,
}

/// A phone number in a Zoom account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Number {
    /// The id Zoom's Phone API uses for it (`/phone/numbers`, `/phone/users/{userId}/phone_numbers`).
    pub id: String,
    pub phone_number: String,
    pub account_id: String,
    /// The carrier that added it; only that carrier can change or remove it.
    pub carrier_code: u32,
    pub sip_trunk_name: String,
    pub status: bool,
    pub allocated_product: AllocatedProduct,
    pub billing_ref_id: Option<String>,
    pub service_info: Option<String>,
    pub number_type: Option<NumberType>,
    pub voice_direction: VoiceDirection,
    pub voice_msg_capacity: VoiceMsgCapacity,
    pub outbound_dialer_not_supported: bool,
    pub outbound_cli_share_not_supported: bool,
    pub message_capability: MessageCapability,
    /// The user it is assigned to, by id.
    pub assignee: Option<String>,
    pub added_at: i64,
    /// Caller ID name the customer set in Zoom.
    #[serde(default)]
    pub cnam: Option<String>,
    /// Emergency address the customer set in Zoom.
    #[serde(default)]
    pub emergency_address: Option<crate::events::EmergencyAddress>,
    /// When the customer marked it Returned (gave it back to the carrier), unix seconds.
    #[serde(default)]
    pub returned_at: Option<i64>,
}

/// The Provider Portal's "Number Pool Status" of a customer's number: In Use, or Returned when "the
/// phone number was unassigned by the customer and returned to the carrier" [doc: Zoom support
/// KB0076464]. The API's name and values for it are not published [assume]: `number_pool_status`,
/// `IN_USE` | `RETURNED`, as the Number Management generation spells its other enums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum PoolStatus {
    InUse,
    Returned,
}

impl PoolStatus {
    /// As the Provider Portal shows it.
    pub fn label(self) -> &'static str {
        match self {
            PoolStatus::InUse => "In Use",
            PoolStatus::Returned => "Returned",
        }
    }
}

impl Number {
    pub fn new(
        phone_number: String,
        account_id: String,
        carrier_code: u32,
        sip_trunk_name: String,
        status: bool,
        now: i64,
    ) -> Number {
        Number {
            id: derived_id("number", &phone_number),
            phone_number,
            account_id,
            carrier_code,
            sip_trunk_name,
            status,
            // Neither generation says what Zoom picks when the carrier does not: the legacy API has no
            // such field and served Zoom Phone only, so ZOOM_PHONE [assume].
            allocated_product: AllocatedProduct::ZoomPhone,
            billing_ref_id: None,
            service_info: None,
            number_type: None,
            voice_direction: VoiceDirection::InboundAndOutbound,
            voice_msg_capacity: VoiceMsgCapacity::MultiUse,
            outbound_dialer_not_supported: false,
            outbound_cli_share_not_supported: false,
            message_capability: MessageCapability::NotApplicable,
            assignee: None,
            added_at: now,
            cnam: None,
            emergency_address: None,
            returned_at: None,
        }
    }

    pub fn assigned(&self) -> bool {
        self.assignee.is_some()
    }

    pub fn pool_status(&self) -> PoolStatus {
        if self.returned_at.is_some() {
            PoolStatus::Returned
        } else {
            PoolStatus::InUse
        }
    }

    fn apply(&mut self, a: Attributes) {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = a.$field { self.$field = v; } )* };
        }
        set!(
            allocated_product,
            voice_direction,
            voice_msg_capacity,
            outbound_dialer_not_supported,
            outbound_cli_share_not_supported,
            message_capability
        );
        if a.billing_ref_id.is_some() {
            self.billing_ref_id = a.billing_ref_id;
        }
        if a.service_info.is_some() {
            self.service_info = a.service_info;
        }
        if a.number_type.is_some() {
            self.number_type = a.number_type;
        }
    }
}

/// The optional attributes of a number, as either generation sends them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attributes {
    pub allocated_product: Option<AllocatedProduct>,
    pub billing_ref_id: Option<String>,
    pub service_info: Option<String>,
    pub number_type: Option<NumberType>,
    pub voice_direction: Option<VoiceDirection>,
    pub voice_msg_capacity: Option<VoiceMsgCapacity>,
    pub outbound_dialer_not_supported: Option<bool>,
    pub outbound_cli_share_not_supported: Option<bool>,
    pub message_capability: Option<MessageCapability>,
}

pub(crate) struct Add {
    pub phone_number: String,
    pub sip_trunk_name: String,
    pub status: bool,
    pub attributes: Attributes,
}

pub(crate) struct Update {
    pub phone_number: String,
    pub sip_trunk_name: Option<String>,
    pub status: Option<bool>,
    pub attributes: Attributes,
}

/// Why one number of a batch was not processed. The texts are Zoom's where Zoom published them
/// (REFERENCE §1 [doc]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    InvalidNumber,
    InvalidSipTrunk,
    DoesNotExist,
    /// REFERENCE §1 [assume]: Zoom's API material is silent; the carriers' guides say an assigned
    /// number cannot be released until it is unbound.
    Assigned,
    /// Adding a number Zoom already has, in any account or from any carrier [assume]: Zoom publishes no
    /// text for it; a client that pushes idempotently must recognise this one.
    AlreadyExists,
    /// A failure injected through `/_sim/faults` (`fail_numbers`), with its reason.
    Injected(String),
}

impl Reason {
    pub fn text(&self) -> &str {
        match self {
            Reason::Injected(reason) => reason,
            Reason::InvalidNumber => "Invalid number",
            Reason::InvalidSipTrunk => "Invalid Sip Trunk",
            Reason::DoesNotExist => "Phone number does not exist",
            Reason::Assigned => "Phone number is assigned",
            Reason::AlreadyExists => "Phone number already exists",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// As the caller sent it, so it can match the failure to its request.
    pub phone_number: String,
    pub reason: Reason,
}

/// Who is asking: the carrier (through one of its apps) about one customer account.
pub(crate) struct Scope<'a> {
    pub world: &'a World,
    pub account_id: &'a str,
    /// Numbers an injected fault makes fail.
    pub injected: Option<&'a InjectedFailures>,
}

impl Scope<'_> {
    /// The reason an injected fault fails this number with, if one does.
    fn injected(&self, e164: &str) -> Option<Reason> {
        self.injected.and_then(|f| f.reason(e164)).map(|r| Reason::Injected(r.to_owned()))
    }

    fn carrier_code(&self) -> u32 {
        self.world.carrier().carrier_code
    }

    fn known_trunk(&self, name: &str) -> bool {
        self.world.carrier().sip_trunk_names.iter().any(|t| t == name)
    }

    /// The number, if this carrier added it to this account. Anything else "does not exist" for the
    /// caller: another carrier's numbers and other accounts' numbers are not its business [doc].
    fn own<'s>(&self, state: &'s mut SimState, e164: &str) -> Option<&'s mut Number> {
        state
            .numbers
            .get_mut(e164)
            .filter(|n| n.account_id == self.account_id && n.carrier_code == self.carrier_code())
    }
}

/// Adds what it can and reports the rest; Zoom's "Some data failed" processes the good numbers of a
/// batch [assume]: nothing public says whether a 1000 error is all-or-nothing, and a partial result is
/// what the legacy generation documents.
pub(crate) fn add(
    state: &mut SimState,
    scope: &Scope<'_>,
    items: Vec<Add>,
    now: i64,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for item in items {
        let fail = |reason| Failure { phone_number: item.phone_number.clone(), reason };
        let Some(e164) = e164::normalize(&item.phone_number) else {
            failures.push(fail(Reason::InvalidNumber));
            continue;
        };
        if let Some(reason) = scope.injected(&e164) {
            failures.push(fail(reason));
            continue;
        }
        if !scope.known_trunk(&item.sip_trunk_name) {
            failures.push(fail(Reason::InvalidSipTrunk));
            continue;
        }
        if state.numbers.contains_key(&e164) {
            failures.push(fail(Reason::AlreadyExists));
            continue;
        }
        let mut n = Number::new(
            e164.clone(),
            scope.account_id.to_owned(),
            scope.carrier_code(),
            item.sip_trunk_name,
            item.status,
            now,
        );
        n.apply(item.attributes);
        state.insert_number(n);
    }
    failures
}

pub(crate) fn update(state: &mut SimState, scope: &Scope<'_>, items: Vec<Update>) -> Vec<Failure> {
    let mut failures = Vec::new();
    for item in items {
        let fail = |reason| Failure { phone_number: item.phone_number.clone(), reason };
        let Some(e164) = e164::normalize(&item.phone_number) else {
            failures.push(fail(Reason::InvalidNumber));
            continue;
        };
        if let Some(reason) = scope.injected(&e164) {
            failures.push(fail(reason));
            continue;
        }
        if item.sip_trunk_name.as_deref().is_some_and(|t| !scope.known_trunk(t)) {
            failures.push(fail(Reason::InvalidSipTrunk));
            continue;
        }
        let Some(n) = scope.own(state, &e164) else {
            failures.push(fail(Reason::DoesNotExist));
            continue;
        };
        if let Some(t) = item.sip_trunk_name {
            n.sip_trunk_name = t;
        }
        if let Some(s) = item.status {
            n.status = s;
        }
        n.apply(item.attributes);
    }
    failures
}

pub(crate) fn remove(
    state: &mut SimState,
    scope: &Scope<'_>,
    phone_numbers: Vec<String>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for raw in phone_numbers {
        let fail = |reason| Failure { phone_number: raw.clone(), reason };
        let Some(e164) = e164::normalize(&raw) else {
            failures.push(fail(Reason::InvalidNumber));
            continue;
        };
        if let Some(reason) = scope.injected(&e164) {
            failures.push(fail(reason));
            continue;
        }
        match scope.own(state, &e164) {
            None => failures.push(fail(Reason::DoesNotExist)),
            Some(n) if n.assigned() => failures.push(fail(Reason::Assigned)),
            Some(_) => {
                state.remove_number(&e164);
            }
        }
    }
    failures
}

/// The numbers this carrier added to `account_id` (or to every account when None), sorted, optionally
/// only `filter`.
pub(crate) fn carrier_numbers(
    state: &SimState,
    world: &World,
    account_id: Option<&str>,
    filter: Option<&str>,
) -> Vec<(String, Number)> {
    let code = world.carrier().carrier_code;
    let keep = |n: &&Number| n.carrier_code == code && filter.is_none_or(|f| n.phone_number == f);
    let pick = |n: &Number| (n.phone_number.clone(), n.clone());
    match account_id {
        Some(a) => state.account_numbers(a).filter(keep).map(pick).collect(),
        None => state.numbers.values().filter(keep).map(pick).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (World, SimState) {
        let world = World::from_json(include_str!("../examples/world.json")).expect("world");
        let state = SimState::initial(&world);
        (world, state)
    }

    fn add_item(n: &str, trunk: &str) -> Add {
        Add {
            phone_number: n.into(),
            sip_trunk_name: trunk.into(),
            status: true,
            attributes: Attributes::default(),
        }
    }

    #[test]
    fn a_batch_adds_the_good_numbers_and_names_the_bad_ones() {
        let (world, mut state) = setup();
        let scope = Scope { world: &world, account_id: "acmeZoomAccount0000001", injected: None };
        let failures = add(
            &mut state,
            &scope,
            vec![
                add_item("+12065550100", "example-carrier-us-east"),
                add_item("+1206", "example-carrier-us-east"),
                add_item("+12065550101", "nope"),
            ],
            0,
        );
        assert_eq!(
            failures.iter().map(|f| f.reason.clone()).collect::<Vec<_>>(),
            vec![Reason::InvalidNumber, Reason::InvalidSipTrunk]
        );
        assert!(state.numbers.contains_key("+12065550100"));
        assert!(!state.numbers.contains_key("+12065550101"));
    }

    #[test]
    fn assigned_numbers_and_other_carriers_numbers_are_not_removed() {
        let (world, mut state) = setup();
        let scope = Scope { world: &world, account_id: "acmeZoomAccount0000001", injected: None };
        add(
            &mut state,
            &scope,
            vec![
                add_item("+12065550100", "example-carrier-us-east"),
                add_item("+12065550101", "example-carrier-us-east"),
            ],
            0,
        );
        if let Some(n) = state.numbers.get_mut("+12065550101") {
            n.assignee = Some("someone".into());
        }
        let failures = remove(
            &mut state,
            &scope,
            vec!["+12065550100".into(), "+12065550101".into(), "+12065550900".into()],
        );
        assert_eq!(
            failures,
            vec![
                Failure { phone_number: "+12065550101".into(), reason: Reason::Assigned },
                Failure { phone_number: "+12065550900".into(), reason: Reason::DoesNotExist },
            ]
        );
        assert!(!state.numbers.contains_key("+12065550100"));
    }
}
