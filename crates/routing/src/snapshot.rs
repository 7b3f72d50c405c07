//! The routing snapshot: every number that is not `available`, keyed by its E.164 digits as a
//! `u64`, in one sorted vector of (key, packed value) pairs (16 bytes a number: a lookup reads both
//! from one cache line) with a hash index over it (about 8 bytes a number), plus a small overlay of
//! recent changes that is merged in when it grows.
//! Customers and trunks are small tables beside it.

use domain::routing::{
    decide, Decision, Direction, NumberFacts, NumberRouting, Reason, RoutingCustomer,
};
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{CustomerId, NumberState};
use std::collections::HashMap;
use std::sync::Arc;

/// Overlay entries before they are merged into the sorted vectors (a merge is one O(n) pass).
const MERGE_AT: usize = 16_384;
/// A number removed from the snapshot (made `available` again) in the overlay.
const GONE: u32 = u32::MAX;

/// A trunk as calls need it.
#[derive(Debug)]
pub struct Trunk {
    pub name: String,
    pub destinations: Vec<String>,
    pub numbering: NumberingRule,
}

/// A customer as calls need it: deciding `deauthorized` from its link (not per number) means an app
/// removal or re-install changes one entry, not every number.
#[derive(Debug)]
struct Customer {
    id: CustomerId,
    /// Index into the trunks.
    trunk: Option<u16>,
    app_removed: bool,
}

/// One answer, owned so it can leave the snapshot's lock.
#[derive(Clone, Debug)]
pub struct Answer {
    pub direction: Direction,
    /// 302 (route), 200 (allow), or the reject status.
    pub status: u16,
    pub reason: Option<Reason>,
    /// The Zoom trunk to route to (inbound 302).
    pub trunk: Option<Arc<Trunk>>,
    /// The number's customer, when it has one.
    pub customer: Option<CustomerId>,
    pub generation: i64,
    /// An outbound call to an emergency number: allowed without looking at anything else.
    pub emergency: bool,
}

impl Answer {
    /// The answer to an outbound emergency call, whatever the snapshot holds.
    pub fn emergency(generation: i64) -> Self {
        Answer {
            direction: Direction::Outbound,
            status: 200,
            reason: None,
            trunk: None,
            customer: None,
            generation,
            emergency: true,
        }
    }
}

#[derive(Default)]
pub struct Snapshot {
    /// (E.164 key, state (4 bits) | customer index + 1 (28 bits) << 4; 0 = no customer), sorted by key.
    entries: Vec<(u64, u32)>,
    /// Open addressing over `entries`: a slot holds a position + 1, 0 is empty. A lookup touches one
    /// or two cache lines where a binary search over a million keys misses the cache ~10 times
    /// (it was the largest cost of a SIP decision).
    index: Vec<u32>,
    overlay: HashMap<u64, u32>,
    customers: Vec<Customer>,
    customer_index: HashMap<CustomerId, u32>,
    trunks: Vec<Arc<Trunk>>,
    /// The highest change id applied.
    pub generation: i64,
}

fn state_code(s: NumberState) -> u32 {
    NumberState::ALL.iter().position(|x| *x == s).unwrap_or(0) as u32
}

/// Asks Linux for transparent huge pages over a big table (best effort; the kernel may decline):
/// lookups land anywhere in it, and with 4 KB pages most of them also miss the TLB.
fn huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if to > from {
            // SAFETY: advice only, over whole pages inside memory this Vec owns; no contents change.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
}

pub fn e164_key(digits: &str) -> Option<u64> {
    digits.strip_prefix('+').unwrap_or(digits).parse().ok()
}

impl Snapshot {
    /// Replaces customers and trunks (they are small; any change to them reloads both).
    pub fn set_customers(&mut self, customers: Vec<RoutingCustomer>, trunks: Vec<ZoomTrunk>) {
        self.trunks = trunks
            .into_iter()
            .map(|t| {
                Arc::new(Trunk {
                    name: t.name.to_string(),
                    destinations: t.destinations.iter().map(|d| d.to_string()).collect(),
                    numbering: t.numbering,
                })
            })
            .collect();
        let trunk_index: HashMap<&str, u16> =
            self.trunks.iter().enumerate().map(|(i, t)| (t.name.as_str(), i as u16)).collect();
        // Keep existing customers' indexes: packed numbers refer to them.
        let mut fresh: HashMap<CustomerId, Customer> = customers
            .into_iter()
            .map(|c| {
                (
                    c.id,
                    Customer {
                        id: c.id,
                        trunk: c.trunk.and_then(|t| trunk_index.get(t.as_str()).copied()),
                        app_removed: c.app_removed,
                    },
                )
            })
            .collect();
        for c in self.customers.iter_mut() {
            // A customer gone from the database keeps its slot, with nothing to route to.
            *c = fresh.remove(&c.id).unwrap_or(Customer {
                id: c.id,
                trunk: None,
                app_removed: false,
            });
        }
        for (id, c) in fresh {
            self.customer_index.insert(id, self.customers.len() as u32);
            self.customers.push(c);
        }
    }

    pub fn knows_customer(&self, id: CustomerId) -> bool {
        self.customer_index.contains_key(&id)
    }

    fn pack(&self, f: &NumberFacts) -> u32 {
        let customer = f.customer.and_then(|c| self.customer_index.get(&c)).map_or(0, |i| i + 1);
        state_code(f.state) | (customer << 4)
    }

    /// Adds numbers during a full load; call [`Snapshot::finish_load`] after the last.
    pub fn load(&mut self, facts: &[NumberFacts]) {
        for f in facts {
            if let Some(k) = e164_key(f.e164.as_str()) {
                let v = self.pack(f);
                self.entries.push((k, v));
            }
        }
    }

    pub fn finish_load(&mut self) {
        // The store pages in E.164 text order, which is not numeric order across lengths.
        self.entries.sort_unstable_by_key(|p| p.0);
        self.entries.dedup_by_key(|p| p.0);
        self.entries.shrink_to_fit();
        huge_pages(&self.entries);
        self.build_index();
    }

    /// Slots for `n` keys: a power of two, at most two thirds full.
    fn slots_for(n: usize) -> usize {
        (n + n / 2).next_power_of_two().max(16)
    }

    /// Fibonacci hashing: consecutive numbers (a carrier's ranges) spread over the whole table.
    fn slot(&self, key: u64) -> usize {
        let bits = self.index.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    fn build_index(&mut self) {
        self.index = vec![0; Self::slots_for(self.entries.len())];
        huge_pages(&self.index); // before the pages are first written
        let mask = self.index.len() - 1;
        for (i, &(k, _)) in self.entries.iter().enumerate() {
            let mut h = self.slot(k);
            while self.index[h] != 0 {
                h = (h + 1) & mask;
            }
            self.index[h] = i as u32 + 1;
        }
    }

    fn position(&self, key: u64) -> Option<usize> {
        if self.index.is_empty() {
            return None; // during a load, before finish_load
        }
        let mask = self.index.len() - 1;
        let mut h = self.slot(key);
        loop {
            let at = self.index[h] as usize;
            if at == 0 {
                return None;
            }
            if self.entries[at - 1].0 == key {
                return Some(at - 1);
            }
            h = (h + 1) & mask;
        }
    }

    /// Applies a changed number (`facts`), or its absence (`None`: made available or gone).
    pub fn apply(&mut self, key: u64, facts: Option<&NumberFacts>) {
        let v = match facts {
            Some(f) if f.state != NumberState::Available => self.pack(f),
            _ => GONE,
        };
        self.overlay.insert(key, v);
        if self.overlay.len() >= MERGE_AT {
            self.merge();
        }
    }

    fn merge(&mut self) {
        let mut changes: Vec<(u64, u32)> = self.overlay.drain().collect();
        changes.sort_unstable_by_key(|c| c.0);
        let old = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(old.len() + changes.len());
        huge_pages(&merged);
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < changes.len() {
            let take_change = j < changes.len() && (i >= old.len() || changes[j].0 <= old[i].0);
            if take_change {
                if i < old.len() && old[i].0 == changes[j].0 {
                    i += 1;
                }
                if changes[j].1 != GONE {
                    merged.push(changes[j]);
                }
                j += 1;
            } else {
                merged.push(old[i]);
                i += 1;
            }
        }
        self.entries = merged;
        self.build_index();
    }

    fn packed(&self, key: u64) -> Option<u32> {
        match self.overlay.get(&key) {
            Some(&GONE) => None,
            Some(&v) => Some(v),
            None => self.position(key).map(|i| self.entries[i].1),
        }
    }

    fn routing(&self, key: Option<u64>) -> (Option<NumberRouting<'_>>, Option<CustomerId>) {
        let Some(v) = key.and_then(|k| self.packed(k)) else { return (None, None) };
        let state = NumberState::ALL[(v & 0xF) as usize];
        let customer = (v >> 4).checked_sub(1).and_then(|i| self.customers.get(i as usize));
        let trunk = customer.and_then(|c| c.trunk).map(|t| self.trunks[t as usize].name.as_str());
        let deauthorized = customer.is_some_and(|c| c.app_removed);
        (Some(NumberRouting { state, deauthorized, trunk }), customer.map(|c| c.id))
    }

    /// Decides a call; `from`/`to` are E.164 keys (`None`: not a number, or not given).
    pub fn decide(
        &self,
        direction: Direction,
        from: Option<u64>,
        to: Option<u64>,
        via_trunk: Option<&str>,
    ) -> Answer {
        let (from_r, from_c) = self.routing(from);
        let (to_r, to_c) = self.routing(to);
        let d = decide(direction, from_r, to_r, via_trunk);
        let trunk = match d {
            Decision::Route { trunk } => self.trunk(trunk),
            _ => None,
        };
        let customer = if direction == Direction::Inbound { to_c } else { from_c };
        Answer {
            direction,
            status: d.sip_status(),
            reason: d.reason(),
            trunk,
            customer,
            generation: self.generation,
            emergency: false,
        }
    }

    pub fn trunk(&self, name: &str) -> Option<Arc<Trunk>> {
        self.trunks.iter().find(|t| t.name == name).cloned()
    }

    pub fn len(&self) -> usize {
        self.entries.len() + self.overlay.values().filter(|v| **v != GONE).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held for the numbers themselves (the per-number cost the goal is about).
    pub fn number_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u64, u32)>()
            + self.index.capacity() * 4
            + self.overlay.capacity() * 16
    }
}

/// A customer as the last-known-good file keeps it: id, trunk index, app removed.
pub(crate) type SavedCustomer = (CustomerId, Option<u16>, bool);

impl Snapshot {
    /// Every number with its packed value, in key order, the recent changes merged in (for the
    /// last-known-good file; packed values refer to [`Snapshot::saved_customers`] by index).
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(u64, u32)) {
        let mut changes: Vec<(u64, u32)> = self.overlay.iter().map(|(k, v)| (*k, *v)).collect();
        changes.sort_unstable_by_key(|c| c.0);
        let (old, mut j) = (&self.entries, 0);
        let mut i = 0;
        while i < old.len() || j < changes.len() {
            if j < changes.len() && (i >= old.len() || changes[j].0 <= old[i].0) {
                if i < old.len() && old[i].0 == changes[j].0 {
                    i += 1;
                }
                if changes[j].1 != GONE {
                    f(changes[j].0, changes[j].1);
                }
                j += 1;
            } else {
                f(old[i].0, old[i].1);
                i += 1;
            }
        }
    }

    pub(crate) fn saved_customers(&self) -> Vec<SavedCustomer> {
        self.customers.iter().map(|c| (c.id, c.trunk, c.app_removed)).collect()
    }

    pub(crate) fn trunks(&self) -> &[Arc<Trunk>] {
        &self.trunks
    }

    /// How many values a number's state field may take (for checking a file).
    pub(crate) const STATES: u32 = NumberState::ALL.len() as u32;

    /// A snapshot from the last-known-good file's parts: `entries` sorted by key, without
    /// duplicates, each value naming a state and a customer that exist (the reader checks).
    pub(crate) fn from_parts(
        entries: Vec<(u64, u32)>,
        customers: Vec<SavedCustomer>,
        trunks: Vec<Arc<Trunk>>,
        generation: i64,
    ) -> Snapshot {
        let mut s = Snapshot { entries, trunks, generation, ..Snapshot::default() };
        for (i, (id, trunk, app_removed)) in customers.into_iter().enumerate() {
            s.customer_index.insert(id, i as u32);
            s.customers.push(Customer { id, trunk, app_removed });
        }
        huge_pages(&s.entries);
        s.build_index();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::PhoneNumber;

    fn facts(e164: &str, state: NumberState, customer: Option<CustomerId>) -> NumberFacts {
        NumberFacts { e164: PhoneNumber::from_trusted(e164.into()), state, customer, reason: None }
    }

    /// The hash index finds every loaded number and nothing else, across number lengths and ranges.
    #[test]
    fn the_index_finds_exactly_the_loaded_numbers() {
        let c = CustomerId::new();
        let mut s = Snapshot::default();
        s.set_customers(vec![RoutingCustomer { id: c, trunk: None, app_removed: false }], vec![]);
        let loaded: Vec<u64> = (0..50_000u64)
            .map(|i| 15_550_000_000 + i * 3)
            .chain((0..5_000).map(|i| 4_930_000_000 + i * 7919))
            .collect();
        let page: Vec<NumberFacts> =
            loaded.iter().map(|n| facts(&format!("+{n}"), NumberState::Active, Some(c))).collect();
        s.load(&page);
        s.finish_load();
        let active = state_code(NumberState::Active) | (1 << 4);
        for n in &loaded {
            assert_eq!(s.packed(*n), Some(active), "{n}");
            assert_eq!(s.packed(n + 1), None, "{} was never loaded", n + 1);
        }
        assert_eq!(s.packed(0), None);
        assert_eq!(s.packed(u64::MAX), None);
    }

    #[test]
    fn lookups_see_loads_changes_and_merges() {
        let c = CustomerId::new();
        let trunk = ZoomTrunk::parse(
            "zoom-a",
            &["sip:a.example"],
            NumberingRule::nanp(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let mut s = Snapshot::default();
        s.set_customers(
            vec![RoutingCustomer { id: c, trunk: Some("zoom-a".into()), app_removed: false }],
            vec![trunk.clone()],
        );
        s.load(&[
            facts("+15550100001", NumberState::Active, Some(c)),
            facts("+4930123456", NumberState::Suspended, Some(c)),
        ]);
        s.finish_load();
        let inbound = |s: &Snapshot, n: u64| {
            let a = s.decide(Direction::Inbound, None, Some(n), None);
            (a.status, a.reason)
        };
        assert_eq!(inbound(&s, 15550100001), (302, None));
        assert_eq!(
            s.decide(Direction::Inbound, None, Some(15550100001), None).trunk.unwrap().destinations,
            ["sip:a.example"]
        );
        assert_eq!(inbound(&s, 4930123456), (480, Some(Reason::Suspended)));
        assert_eq!(inbound(&s, 15550100002), (404, Some(Reason::NotProvisioned)));

        s.apply(15550100001, Some(&facts("+15550100001", NumberState::Aging, None)));
        assert_eq!(inbound(&s, 15550100001), (404, Some(Reason::Released)));
        s.apply(15550100001, None);
        assert_eq!(inbound(&s, 15550100001), (404, Some(Reason::NotProvisioned)));
        for n in 0..MERGE_AT as u64 + 10 {
            s.apply(16000000000 + n, Some(&facts("+1", NumberState::Active, Some(c))));
        }
        assert!(s.overlay.len() < 100, "merged");
        assert_eq!(inbound(&s, 16000000005), (302, None));
        assert_eq!(inbound(&s, 15550100001), (404, Some(Reason::NotProvisioned)));
        assert_eq!(inbound(&s, 4930123456), (480, Some(Reason::Suspended)));
        assert_eq!(s.len(), MERGE_AT + 10 + 1);

        // The customer removes the app: its suspended numbers say so; its other numbers are unchanged.
        s.set_customers(
            vec![RoutingCustomer { id: c, trunk: Some("zoom-a".into()), app_removed: true }],
            vec![trunk],
        );
        assert_eq!(inbound(&s, 4930123456), (480, Some(Reason::Deauthorized)));
        assert_eq!(inbound(&s, 16000000005), (302, None));
    }
}
