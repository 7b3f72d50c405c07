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

/// Why `item` cannot be added to the scope's account now, or its E.164 form.
fn addable(state: &SimState, scope: &Scope<'_>, item: &Add) -> Result<String, Reason> {
    let e164 = e164::normalize(&item.phone_number).ok_or(Reason::InvalidNumber)?;
    if let Some(reason) = scope.injected(&e164) {
        return Err(reason);
    }
    if !scope.known_trunk(&item.sip_trunk_name) {
        return Err(Reason::InvalidSipTrunk);
    }
    if state.numbers.contains_key(&e164) {
        return Err(Reason::AlreadyExists);
    }
    Ok(e164)
}

fn insert(state: &mut SimState, scope: &Scope<'_>, e164: String, item: Add, now: i64) {
    let mut n = Number::new(
        e164,
        scope.account_id.to_owned(),
        scope.carrier_code(),
        item.sip_trunk_name,
        item.status,
        now,
    );
    n.apply(item.attributes);
    state.insert_number(n);
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
        match addable(state, scope, &item) {
            Ok(e164) => insert(state, scope, e164, item, now),
            Err(reason) => failures.push(Failure { phone_number: item.phone_number, reason }),
        }
    }
    failures
}

/// Adds every item or none: the failures by the item's position, a number given twice failing the
/// second time as one Zoom already has.
pub(crate) fn add_all(
    state: &mut SimState,
    scope: &Scope<'_>,
    items: Vec<Add>,
    now: i64,
) -> Result<usize, Vec<(usize, Reason)>> {
    let mut failures = Vec::new();
    let mut keys = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        match addable(state, scope, item) {
            Ok(e164) if !seen.insert(e164.clone()) => failures.push((i, Reason::AlreadyExists)),
            Ok(e164) => keys.push(e164),
            Err(reason) => failures.push((i, reason)),
        }
    }
    if !failures.is_empty() {
        return Err(failures);
    }
    let added = items.len();
    for (e164, item) in keys.into_iter().zip(items) {
        insert(state, scope, e164, item, now);
    }
    Ok(added)
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

/// Why `raw` cannot be removed from the scope's account, or its E.164 form.
fn removable(state: &mut SimState, scope: &Scope<'_>, raw: &str) -> Result<String, Reason> {
    let e164 = e164::normalize(raw).ok_or(Reason::InvalidNumber)?;
    if let Some(reason) = scope.injected(&e164) {
        return Err(reason);
    }
    match scope.own(state, &e164) {
        None => Err(Reason::DoesNotExist),
        Some(n) if n.assigned() => Err(Reason::Assigned),
        Some(_) => Ok(e164),
    }
}

pub(crate) fn remove(
    state: &mut SimState,
    scope: &Scope<'_>,
    phone_numbers: Vec<String>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for raw in phone_numbers {
        match removable(state, scope, &raw) {
            Ok(e164) => {
                state.remove_number(&e164);
            }
            Err(reason) => failures.push(Failure { phone_number: raw, reason }),
        }
    }
    failures
}

/// Removes every number or none: the failures by the number's position. A number given twice is
/// removed once.
pub(crate) fn remove_all(
    state: &mut SimState,
    scope: &Scope<'_>,
    phone_numbers: &[String],
) -> Result<usize, Vec<(usize, Reason)>> {
    let mut failures = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for (i, raw) in phone_numbers.iter().enumerate() {
        match removable(state, scope, raw) {
            Ok(e164) => {
                keys.insert(e164);
            }
            Err(reason) => failures.push((i, reason)),
        }
    }
    if !failures.is_empty() {
        return Err(failures);
    }
    for e164 in &keys {
        state.remove_number(e164);
    }
    Ok(keys.len())
}

/// The carrier's numbers in one account (Some) or in all of them (None), with E.164 `filter` if given,
/// that sort after `after`, in E.164 order; and how many there are in all (after or not). Costs what is
/// taken from the iterator, not the account's size.
pub(crate) fn carrier_numbers<'s>(
    state: &'s SimState,
    world: &World,
    account_id: Option<&str>,
    filter: Option<&str>,
    after: Option<&'s str>,
) -> (usize, Box<dyn Iterator<Item = &'s Number> + 's>) {
    let code = world.carrier().carrier_code;
    match filter {
        Some(f) => {
            let found = state
                .numbers
                .get(f)
                .filter(|n| n.carrier_code == code && account_id.is_none_or(|a| n.account_id == a));
            let total = usize::from(found.is_some());
            let rest = found.filter(|n| after.is_none_or(|a| n.phone_number.as_str() > a));
            (total, Box::new(rest.into_iter()))
        }
        None => (
            state.carrier_count(account_id, code),
            Box::new(
                state.numbers_after(account_id, after).filter(move |n| n.carrier_code == code),
            ),
        ),
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

    #[test]
    fn an_all_or_nothing_batch_with_one_bad_number_changes_nothing() {
        let (world, mut state) = setup();
        let scope = Scope { world: &world, account_id: "acmeZoomAccount0000001", injected: None };
        let before = state.numbers.len();
        let failures = add_all(
            &mut state,
            &scope,
            vec![
                add_item("+12065550100", "example-carrier-us-east"),
                add_item("+12065550101", "nope"),
                add_item("+12065550100", "example-carrier-us-east"),
            ],
            0,
        )
        .expect_err("refused");
        assert_eq!(failures, vec![(1, Reason::InvalidSipTrunk), (2, Reason::AlreadyExists)]);
        assert_eq!(state.numbers.len(), before);

        let added = add_all(
            &mut state,
            &scope,
            vec![
                add_item("+12065550100", "example-carrier-us-east"),
                add_item("+12065550101", "example-carrier-us-east"),
            ],
            0,
        );
        assert_eq!(added, Ok(2));
        if let Some(n) = state.numbers.get_mut("+12065550101") {
            n.assignee = Some("someone".into());
        }
        let failures =
            remove_all(&mut state, &scope, &["+12065550100".into(), "+12065550101".into()])
                .expect_err("refused");
        assert_eq!(failures, vec![(1, Reason::Assigned)]);
        assert!(state.numbers.contains_key("+12065550100"), "nothing was removed");
    }
}
