//! The routing snapshot: every number that is not `available`, keyed by its E.164 digits as a
//! `u64`, in 4,096 shards chosen by a hash of the key. Each shard is an open-addressing table
//! (linear probing) of 12-byte slots holding the key and its packed state/customer value side by
//! side, kept between 5/8 and 7/8 full: about 16 bytes a number, and a lookup reads one slot's
//! cache line (sometimes the next). Changes are made in place; when a shard fills up or empties,
//! only that shard is rebuilt (at 10 million numbers, about 2,400 of them: microseconds), so
//! applying a change never holds the lock for work proportional to the whole snapshot and never
//! needs a second copy of it.
//! A full load is staged: the pages' numbers are packed into a list (12 bytes each), counted by
//! shard, and each shard is made once at its final size, so no shard is rebuilt while loading.
//! Customers and trunks are small tables beside it.

use domain::routing::{
    decide, Decision, Direction, NumberFacts, NumberRouting, Reason, RoutingCustomer,
};
use domain::trunk::{NumberingRule, ZoomTrunk};
use domain::{CustomerId, NumberState};
use std::collections::HashMap;
use std::sync::Arc;

/// log2 of the number of shards: enough that one shard is small at carrier scale (10 million
/// numbers: ~2,400 a shard, ~40 KB) and few enough that their headers cost nothing (~100 KB).
const SHARD_BITS: u32 = 12;
const SHARDS: usize = 1 << SHARD_BITS;

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

/// One slot of a shard: the key's low and high halves and its packed value (4-byte aligned, so
/// 12 bytes, not the 16 a `(u64, u32)` takes). Key 0 marks an empty slot: no E.164 number is 0.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Slot {
    key_lo: u32,
    key_hi: u32,
    value: u32,
}

impl Slot {
    fn new(key: u64, value: u32) -> Self {
        Slot { key_lo: key as u32, key_hi: (key >> 32) as u32, value }
    }
    fn key(&self) -> u64 {
        u64::from(self.key_lo) | u64::from(self.key_hi) << 32
    }
}

/// A hash of a key: its top [`SHARD_BITS`] choose the shard, the 32 below them the home slot.
/// A full mix (MurmurHash3's finalizer) rather than one multiplication, so that no pattern in a
/// carrier's ranges (strides, lengths) piles numbers into a few shards.
fn mix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

/// One shard: linear probing over `slots`, at least one of them always empty (so a probe ends).
#[derive(Default)]
struct Shard {
    slots: Box<[Slot]>,
    len: u32,
}

/// Slots for `len` numbers when a shard is built or rebuilt after shrinking: 3/4 full.
fn slots_for(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len + len / 3 + 2
    }
}

/// Puts the entries of `staged` whose shard is among `shards` (numbered from `first`) in them, in
/// the list's order (a number given twice keeps its last value), each shard first sized for all
/// it will hold; how many numbers were new.
fn fill_shards(shards: &mut [Shard], first: usize, staged: &[Slot]) -> usize {
    let mine = first..first + shards.len();
    let mut counts = vec![0usize; shards.len()];
    for e in staged {
        let at = shard_of(mix(e.key()));
        if mine.contains(&at) {
            counts[at - first] += 1;
        }
    }
    for (shard, count) in shards.iter_mut().zip(counts) {
        let cap = slots_for(shard.len as usize + count);
        if count > 0 && cap > shard.slots.len() {
            shard.rebuild(cap);
        }
    }
    let mut added = 0;
    for e in staged {
        let (key, h) = (e.key(), mix(e.key()));
        let at = shard_of(h);
        if mine.contains(&at) {
            added += usize::from(shards[at - first].insert(key, h, e.value));
        }
    }
    added
}

impl Shard {
    /// The slot a key with hash `h` would sit in with no collisions (multiply-shift over the bits
    /// below the shard's: any table size, not only powers of two).
    fn home(&self, h: u64) -> usize {
        ((((h << SHARD_BITS) >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    fn get(&self, key: u64, h: u64) -> Option<u32> {
        let cap = self.slots.len();
        if cap == 0 {
            return None;
        }
        let mut i = self.home(h);
        loop {
            let s = &self.slots[i];
            match s.key() {
                k if k == key => return Some(s.value),
                0 => return None,
                _ => i = if i + 1 == cap { 0 } else { i + 1 },
            }
        }
    }

    /// Where `key` sits, or the empty slot that ends its probe.
    fn find(&self, key: u64, h: u64) -> (usize, bool) {
        let cap = self.slots.len();
        let mut i = self.home(h);
        loop {
            match self.slots[i].key() {
                k if k == key => return (i, true),
                0 => return (i, false),
                _ => i = if i + 1 == cap { 0 } else { i + 1 },
            }
        }
    }

    /// Sets `key` to `value`; whether it is new.
    fn insert(&mut self, key: u64, h: u64, value: u32) -> bool {
        // Grown before it is 7/8 full, to 5/8 full: probes stay short and growth is amortised.
        if (self.len as usize + 1) * 8 > self.slots.len() * 7 {
            let len = self.len as usize + 1;
            self.rebuild(len + len * 3 / 5 + 4);
        }
        let (i, found) = self.find(key, h);
        self.slots[i] = Slot::new(key, value);
        if !found {
            self.len += 1;
        }
        !found
    }

    /// Removes `key`; whether it was there. Backward-shift deletion: the entries after it in its
    /// probe run move up, so no tombstones are left for later lookups to step over.
    fn remove(&mut self, key: u64, h: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (mut hole, found) = self.find(key, h);
        if !found {
            return false;
        }
        let cap = self.slots.len();
        let mut j = hole;
        loop {
            j = if j + 1 == cap { 0 } else { j + 1 };
            let s = self.slots[j];
            if s.key() == 0 {
                break;
            }
            // The entry at `j` may fill the hole unless its home lies after the hole (cyclically,
            // in (hole, j]): it would then be moved before its home, where lookups never look.
            let home = self.home(mix(s.key()));
            if (j + cap - home) % cap >= (j + cap - hole) % cap {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
        // Shrunk when under 3/8 full, so removals give memory back.
        if cap > 16 && (self.len as usize) * 8 < cap * 3 {
            self.rebuild(slots_for(self.len as usize));
        }
        true
    }

    /// Moves every entry into `cap` fresh slots: the one step whose work grows with the shard.
    fn rebuild(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap].into_boxed_slice());
        for s in old.iter().filter(|s| s.key() != 0) {
            let (i, _) = self.find(s.key(), mix(s.key()));
            self.slots[i] = *s;
        }
    }
}

pub struct Snapshot {
    /// [`SHARDS`] shards; a number's is chosen by [`mix`]. Values: state (4 bits) | customer
    /// index + 1 (28 bits) << 4; 0 = no customer.
    shards: Box<[Shard]>,
    len: usize,
    customers: Vec<Customer>,
    customer_index: HashMap<CustomerId, u32>,
    trunks: Vec<Arc<Trunk>>,
    /// Numbers a full load has packed and [`Snapshot::finish_load`] has not yet put in shards.
    staged: Vec<Slot>,
    /// The customer [`Snapshot::pack`] looked up last, with its packed index: a page in E.164
    /// order holds long runs of one customer's numbers.
    last_customer: Option<(CustomerId, u32)>,
    /// The highest change id applied.
    pub generation: i64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
            customers: Vec::new(),
            customer_index: HashMap::new(),
            trunks: Vec::new(),
            staged: Vec::new(),
            last_customer: None,
            generation: 0,
        }
    }
}

fn state_code(s: NumberState) -> u32 {
    NumberState::ALL.iter().position(|x| *x == s).unwrap_or(0) as u32
}

pub fn e164_key(digits: &str) -> Option<u64> {
    digits.strip_prefix('+').unwrap_or(digits).parse().ok()
}

impl Snapshot {
    /// Replaces customers and trunks (they are small; any change to them reloads both).
    pub fn set_customers(&mut self, customers: Vec<RoutingCustomer>, trunks: Vec<ZoomTrunk>) {
        // A customer packed as unknown may be known now.
        self.last_customer = None;
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

    fn pack(&mut self, f: &NumberFacts) -> u32 {
        let customer = match f.customer {
            None => 0,
            Some(c) => match self.last_customer {
                Some((last, packed)) if last == c => packed,
                _ => {
                    let packed = self.customer_index.get(&c).map_or(0, |i| i + 1);
                    self.last_customer = Some((c, packed));
                    packed
                }
            },
        };
        state_code(f.state) | (customer << 4)
    }

    /// Adds numbers during a full load: packed and staged, in no shard yet (lookups do not see
    /// them) until [`Snapshot::finish_load`], to be called after the last page. A number given
    /// twice keeps the last value.
    pub fn load(&mut self, facts: &[NumberFacts]) {
        self.staged.reserve(facts.len());
        for f in facts {
            match e164_key(f.e164.as_str()) {
                Some(k) if k != 0 => {
                    let v = self.pack(f);
                    self.staged.push(Slot::new(k, v));
                }
                _ => {}
            }
        }
    }

    /// Puts the staged numbers in their shards, each shard made once at 3/4 full for what it
    /// will hold (on every core: each thread builds its own range of shards from the whole list);
    /// then brings every shard left less than 2/3 full back to 3/4, one at a time.
    pub fn finish_load(&mut self) {
        let staged = std::mem::take(&mut self.staged);
        if !staged.is_empty() {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
            let per_thread = SHARDS.div_ceil(threads);
            let added: usize = std::thread::scope(|scope| {
                let staged = &staged;
                let mut added = 0;
                let mut builders = Vec::new();
                for (t, shards) in self.shards.chunks_mut(per_thread).enumerate() {
                    // A thread the system refuses: that range is built here instead.
                    let first = t * per_thread;
                    let mine = Arc::new(std::sync::Mutex::new(Some(shards)));
                    let theirs = Arc::clone(&mine);
                    let build = move || {
                        let taken = theirs.lock().map(|mut s| s.take()).unwrap_or(None);
                        taken.map_or(0, |s| fill_shards(s, first, staged))
                    };
                    match std::thread::Builder::new().spawn_scoped(scope, build) {
                        Ok(b) => builders.push(b),
                        Err(_) => {
                            let taken = mine.lock().map(|mut s| s.take()).unwrap_or(None);
                            added += taken.map_or(0, |s| fill_shards(s, first, staged));
                        }
                    }
                }
                added
                    + builders
                        .into_iter()
                        .map(|b| b.join().expect("a shard builder panicked"))
                        .sum::<usize>()
            });
            self.len += added;
        }
        drop(staged);
        for shard in self.shards.iter_mut() {
            let (len, cap) = (shard.len as usize, shard.slots.len());
            if len * 3 < cap * 2 && slots_for(len) < cap {
                shard.rebuild(slots_for(len));
            }
        }
    }

    /// Sets a number; whether it is new. Key 0 is no number and is not kept.
    fn insert(&mut self, key: u64, value: u32) -> bool {
        if key == 0 {
            return false;
        }
        let h = mix(key);
        let new = self.shards[shard_of(h)].insert(key, h, value);
        self.len += usize::from(new);
        new
    }

    /// Applies a changed number (`facts`), or its absence (`None`: made available or gone): in
    /// place, in the number's shard; at worst that one shard is rebuilt.
    pub fn apply(&mut self, key: u64, facts: Option<&NumberFacts>) {
        debug_assert!(self.staged.is_empty(), "a change applied during a full load would be lost");
        match facts {
            Some(f) if f.state != NumberState::Available => {
                let v = self.pack(f);
                self.insert(key, v);
            }
            _ => {
                let h = mix(key);
                if key != 0 && self.shards[shard_of(h)].remove(key, h) {
                    self.len -= 1;
                }
            }
        }
    }

    fn packed(&self, key: u64) -> Option<u32> {
        if key == 0 {
            return None;
        }
        let h = mix(key);
        self.shards[shard_of(h)].get(key, h)
    }

    /// A number's state, `None` when it is not in the snapshot (`available` or unknown).
    pub fn number_state(&self, key: u64) -> Option<NumberState> {
        self.packed(key).map(|v| NumberState::ALL[(v & 0xF) as usize])
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
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held for the numbers themselves (the per-number cost the goal is about): every
    /// shard's slots, used or not, and the shards' headers.
    pub fn number_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.slots.len()).sum::<usize>() * std::mem::size_of::<Slot>()
            + self.shards.len() * std::mem::size_of::<Shard>()
    }
}

/// A customer as the last-known-good file keeps it: id, trunk index, app removed.
pub(crate) type SavedCustomer = (CustomerId, Option<u16>, bool);

impl Snapshot {
    /// Every number with its packed value, shard by shard, in no particular order (for the
    /// last-known-good file; packed values refer to [`Snapshot::saved_customers`] by index).
    pub(crate) fn for_each_entry(&self, mut f: impl FnMut(u64, u32)) {
        for shard in self.shards.iter() {
            for s in shard.slots.iter().filter(|s| s.key() != 0) {
                f(s.key(), s.value);
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

    /// An empty snapshot from the last-known-good file's parts, its shards sized for `numbers`
    /// (so reading them back rebuilds no shard); the reader adds them with
    /// [`Snapshot::add_saved`], then calls [`Snapshot::finish_load`].
    pub(crate) fn from_parts(
        numbers: usize,
        customers: Vec<SavedCustomer>,
        trunks: Vec<Arc<Trunk>>,
        generation: i64,
    ) -> Snapshot {
        let mut s = Snapshot { trunks, generation, ..Snapshot::default() };
        for (i, (id, trunk, app_removed)) in customers.into_iter().enumerate() {
            s.customer_index.insert(id, i as u32);
            s.customers.push(Customer { id, trunk, app_removed });
        }
        // Hashing spreads numbers evenly: at 10 million a shard holds 2,441 ± 49, and one even 8
        // deviations above that is still under 7/8 full.
        let per_shard = slots_for(numbers / SHARDS);
        if per_shard > 0 {
            for shard in s.shards.iter_mut() {
                shard.slots = vec![Slot::default(); per_shard].into_boxed_slice();
            }
        }
        s
    }

    /// Adds a number read from the file (its value checked by the reader); `false` when the file
    /// gave it already.
    pub(crate) fn add_saved(&mut self, key: u64, value: u32) -> bool {
        self.insert(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::PhoneNumber;

    fn facts(e164: &str, state: NumberState, customer: Option<CustomerId>) -> NumberFacts {
        NumberFacts { e164: PhoneNumber::from_trusted(e164.into()), state, customer, reason: None }
    }

    /// The shards find every loaded number and nothing else, across number lengths and ranges.
    #[test]
    fn the_shards_find_exactly_the_loaded_numbers() {
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
    fn lookups_see_loads_and_changes() {
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
        for n in 0..20_000 {
            s.apply(16000000000 + n, Some(&facts("+1", NumberState::Active, Some(c))));
        }
        assert_eq!(inbound(&s, 16000000005), (302, None));
        assert_eq!(inbound(&s, 15550100001), (404, Some(Reason::NotProvisioned)));
        assert_eq!(inbound(&s, 4930123456), (480, Some(Reason::Suspended)));
        assert_eq!(s.len(), 20_000 + 1);

        // The customer removes the app: its suspended numbers say so; its other numbers are unchanged.
        s.set_customers(
            vec![RoutingCustomer { id: c, trunk: Some("zoom-a".into()), app_removed: true }],
            vec![trunk],
        );
        assert_eq!(inbound(&s, 4930123456), (480, Some(Reason::Deauthorized)));
        assert_eq!(inbound(&s, 16000000005), (302, None));
    }

    /// A small deterministic generator (xorshift64*), so the tests need no seed crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Numbers of 8 to 15 digits in ranges of different sizes, each with a state and a customer.
    fn mixed_numbers(count: usize, customers: &[CustomerId]) -> Vec<NumberFacts> {
        let mut out = Vec::with_capacity(count);
        let mut rng = Rng(0x5eed);
        while out.len() < count {
            let digits = 8 + (rng.next() % 8) as u32;
            let first = 10u64.pow(digits - 1) + rng.next() % (9 * 10u64.pow(digits - 1) - 100_000);
            for n in first..first + 1 + rng.next() % 5_000 {
                let i = out.len();
                let state =
                    [NumberState::Active, NumberState::Suspended, NumberState::Aging][i % 3];
                let customer = (i % 7 != 0).then(|| customers[i % customers.len()]);
                out.push(facts(&format!("+{n}"), state, customer));
                if out.len() == count {
                    break;
                }
            }
        }
        out
    }

    fn customers(s: &mut Snapshot, n: usize) -> Vec<CustomerId> {
        let ids: Vec<CustomerId> = (0..n).map(|_| CustomerId::new()).collect();
        s.set_customers(
            ids.iter()
                .map(|c| RoutingCustomer { id: *c, trunk: None, app_removed: false })
                .collect(),
            vec![],
        );
        ids
    }

    /// Every number of every length is found in its shard with its own state and customer, every
    /// shard holds some, and numbers beside them are not found.
    #[test]
    fn numbers_of_every_length_are_found_across_the_shards() {
        let mut s = Snapshot::default();
        let ids = customers(&mut s, 1_000);
        let numbers = mixed_numbers(200_000, &ids);
        let mut model = HashMap::new();
        for page in numbers.chunks(50_000) {
            s.load(page);
        }
        s.finish_load();
        for f in &numbers {
            model.insert(e164_key(f.e164.as_str()).unwrap(), s.pack(f));
        }
        assert_eq!(s.len(), model.len());
        for (k, v) in &model {
            assert_eq!(s.packed(*k), Some(*v), "{k}");
            for beside in [k - 1, k + 1, k * 10, k / 10] {
                assert_eq!(s.packed(beside), model.get(&beside).copied(), "{beside}");
            }
        }
        let lengths: std::collections::HashSet<usize> =
            model.keys().map(|k| k.to_string().len()).collect();
        assert_eq!(lengths.len(), 8, "8 to 15 digits");
        assert!(s.shards.iter().all(|sh| sh.len > 0), "every shard holds numbers");
        // About 16 bytes a number once loaded (12-byte slots, 3/4 full on average).
        let per_number = s.number_bytes() as f64 / s.len() as f64;
        assert!((14.0..20.0).contains(&per_number), "{per_number} bytes a number");
    }

    /// Changes, removals and new numbers in every shard, in random order, leave exactly what a
    /// plain map of the same changes holds, through growing and shrinking shards.
    #[test]
    fn changes_and_removals_in_many_shards_are_seen() {
        let mut s = Snapshot::default();
        let ids = customers(&mut s, 50);
        let numbers = mixed_numbers(100_000, &ids);
        s.load(&numbers);
        s.finish_load();
        let mut model: HashMap<u64, u32> =
            numbers.iter().map(|f| (e164_key(f.e164.as_str()).unwrap(), s.pack(f))).collect();
        let keys: Vec<u64> = model.keys().copied().collect();
        let mut rng = Rng(42);
        for round in 0..300_000u64 {
            // Early rounds mostly add, later ones mostly remove: shards grow, then shrink.
            let adding = rng.next() % 100 < if round < 150_000 { 60 } else { 20 };
            let key = if rng.next().is_multiple_of(2) {
                keys[(rng.next() % keys.len() as u64) as usize]
            } else {
                44_200_000_000 + rng.next() % 400_000
            };
            if adding {
                let state = [NumberState::Active, NumberState::Porting][(round % 2) as usize];
                let f = facts("+1", state, Some(ids[(round % 50) as usize]));
                s.apply(key, Some(&f));
                model.insert(key, s.pack(&f));
            } else {
                let made_available = facts("+1", NumberState::Available, None);
                s.apply(key, [None, Some(&made_available)][(round % 2) as usize]);
                model.remove(&key);
            }
        }
        assert_eq!(s.len(), model.len());
        for k in keys.iter().chain(&[44_200_000_000, 44_200_399_999]) {
            assert_eq!(s.packed(*k), model.get(k).copied(), "{k}");
        }
        for (k, v) in &model {
            assert_eq!(s.packed(*k), Some(*v), "{k}");
        }
        let mut seen = HashMap::new();
        s.for_each_entry(|k, v| assert!(seen.insert(k, v).is_none(), "{k} twice"));
        assert_eq!(seen, model);
        // Removing everything gives the memory back.
        for k in model.keys() {
            s.apply(*k, None);
        }
        assert!(s.is_empty());
        assert!(s.number_bytes() < 16 * SHARDS * std::mem::size_of::<Slot>(), "shrunk");
    }

    /// A change holds the writer for one shard's work at most: each one leaves every other shard's
    /// slots where they were, and no shard is much larger than the average, so a rebuild (a shard
    /// growing or shrinking) is ~1/4096 of the snapshot. Readers wait for that, never for a pass
    /// over every number, and memory never holds two copies of more than one shard.
    #[test]
    fn a_change_rebuilds_at_most_one_shard() {
        let mut s = Snapshot::default();
        let ids = customers(&mut s, 10);
        // Small shards (about 10 numbers), so that a few thousand changes make some of them grow.
        s.load(&mixed_numbers(40_000, &ids));
        s.finish_load();
        let where_ = |s: &Snapshot| -> Vec<(usize, usize)> {
            s.shards.iter().map(|sh| (sh.slots.as_ptr() as usize, sh.slots.len())).collect()
        };
        let mut before = where_(&s);
        let (mut rebuilt, mut rng) = (0, Rng(7));
        let active = facts("+1", NumberState::Active, Some(ids[0]));
        for i in 0..4_000u64 {
            let key = 33_100_000_000 + rng.next() % 1_000_000;
            s.apply(key, (i % 3 != 0).then_some(&active));
            let after = where_(&s);
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(moved <= 1, "change {i} rebuilt {moved} shards");
            rebuilt += moved;
            before = after;
        }
        assert!(rebuilt > 0, "some shard grew");
        let average = s.len() / SHARDS;
        let largest = s.shards.iter().map(|sh| sh.slots.len()).max().unwrap();
        assert!(largest < 2 * average + 64, "largest shard {largest} slots, average {average}");
    }

    /// A full load makes each shard once, at 3/4 full for what the load gave it (a number given
    /// twice keeps its last value, and counts twice in the sizing); the numbers are seen only once
    /// the load is finished.
    #[test]
    fn a_load_sizes_each_shard_once_and_keeps_the_last_value() {
        let mut s = Snapshot::default();
        let ids = customers(&mut s, 10);
        let numbers = mixed_numbers(200_000, &ids);
        s.load(&numbers[..120_000]);
        assert_eq!(s.len(), 0, "not in the shards before the load finishes");
        assert_eq!(s.packed(e164_key(numbers[0].e164.as_str()).unwrap()), None);
        // The next page repeats 1,000 numbers with another state: the later one is kept.
        let repeated: Vec<NumberFacts> = numbers[..1_000]
            .iter()
            .map(|f| facts(f.e164.as_str(), NumberState::Porting, f.customer))
            .collect();
        s.load(&repeated);
        s.load(&numbers[120_000..]);
        s.finish_load();
        assert_eq!(s.len(), 200_000);
        for (i, f) in numbers.iter().enumerate() {
            let want = if i < 1_000 { NumberState::Porting } else { f.state };
            assert_eq!(s.number_state(e164_key(f.e164.as_str()).unwrap()), Some(want), "{i}");
        }
        // Each shard sized once for what the load gave it (a number given twice counted twice).
        let mut given = vec![0usize; SHARDS];
        for f in numbers.iter().chain(&repeated) {
            given[shard_of(mix(e164_key(f.e164.as_str()).unwrap()))] += 1;
        }
        for (sh, given) in s.shards.iter().zip(given) {
            assert_eq!(sh.slots.len(), slots_for(given), "a shard of {} sized once", sh.len);
        }
        // A customer unknown when a number was packed, then known: later numbers carry it.
        let late = CustomerId::new();
        s.load(&[facts("+4420000001", NumberState::Active, Some(late))]);
        s.finish_load();
        assert_eq!(s.packed(4_420_000_001).map(|v| v >> 4), Some(0), "unknown customer");
        let mut all: Vec<RoutingCustomer> = ids
            .iter()
            .chain([&late])
            .map(|c| RoutingCustomer { id: *c, trunk: None, app_removed: false })
            .collect();
        s.set_customers(std::mem::take(&mut all), vec![]);
        s.load(&[facts("+4420000002", NumberState::Active, Some(late))]);
        s.finish_load();
        assert_eq!(s.packed(4_420_000_002).map(|v| v >> 4), Some(11), "the 11th customer");
        assert_eq!(s.len(), 200_002);
    }
}
