//! Everything the simulator remembers, in one value behind one lock: numbers, authorizations and their
//! tokens, sign-in sessions, page tokens, injected faults and the webhook delivery log. The whole value
//! is what `--state FILE` persists, so a restarted simulator carries on where it stopped.

use crate::e164;
use crate::numbers::Number;
use crate::world::World;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SimState {
    /// Which world this state belongs to ([`World::digest`]).
    pub world_digest: String,
    /// The clock's offset when the state was written, so a restart does not un-expire tokens.
    pub clock_offset_ms: i64,
    /// Every phone number in every account, by E.164.
    pub numbers: BTreeMap<String, Number>,
    /// App authorizations ("installs"), by id.
    pub grants: BTreeMap<String, Grant>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthCode>,
    /// Simulated zoom.us web sign-ins, by cookie value.
    pub sessions: HashMap<String, Session>,
    /// Authorization requests waiting on the consent page's Allow, by id.
    pub consents: HashMap<String, Consent>,
    pub page_tokens: HashMap<String, PageCursor>,
    pub faults: Vec<crate::faults::Fault>,
    pub deliveries: Vec<crate::webhooks::Delivery>,
    #[serde(skip)]
    pub version: u64,
    /// When expired entries were last dropped (unix seconds): at most once a second, not on every write.
    #[serde(skip)]
    pub purged_at: i64,
    /// The numbers of each account (E.164 keys of `numbers`), so listing one account's numbers does not
    /// walk every account's. Kept by [`SimState::insert_number`] and [`SimState::remove_number`].
    #[serde(skip)]
    pub by_account: HashMap<String, BTreeSet<String>>,
    /// How many numbers of each carrier (by code) each account holds, so a listing's `total_records`
    /// is known without counting the account. Kept with [`SimState::by_account`].
    #[serde(skip)]
    pub carrier_counts: HashMap<String, HashMap<u32, usize>>,
}

/// One app authorized on one account by one user. A new authorization of the same app on the same
/// account replaces it and revokes its tokens (REFERENCE §3 [doc]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub client_id: String,
    pub account_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    /// Refresh-token generations below this one no longer work (see [`crate::RefreshRotation`]).
    pub floor: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AccessToken {
    /// None for server-to-server tokens, which belong to no authorization.
    pub grant_id: Option<String>,
    pub generation: u32,
    pub client_id: String,
    pub account_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub expires_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RefreshToken {
    pub grant_id: String,
    pub generation: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Pkce {
    pub challenge: String,
    /// `S256` or `plain`.
    pub method: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub account_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub pkce: Option<Pkce>,
    pub expires_at: i64,
    /// Set once exchanged: a second exchange is refused and revokes what the first one issued
    /// (RFC 6749 §4.1.2).
    pub redeemed_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    pub account_id: String,
    pub user_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Consent {
    pub session: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub pkce: Option<Pkce>,
    pub expires_at: i64,
}

/// Where a listing stopped. `scope` names the listing and its filter, so a token from one listing is
/// refused by another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PageCursor {
    pub scope: String,
    pub after: String,
    pub expires_at: i64,
}

pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page (REFERENCE §1 [doc]).
    pub next_page_token: String,
    pub total_records: usize,
}

#[derive(Debug)]
pub(crate) struct BadPageToken;

/// A next-page token and the cursor it names, to be kept in [`SimState::page_tokens`].
pub(crate) type NewCursor = (String, PageCursor);

impl SimState {
    /// The state a world starts in: its seeded numbers and nothing else.
    pub fn initial(world: &World) -> SimState {
        let mut numbers = BTreeMap::new();
        for account in world.accounts() {
            for seed in &account.phone_numbers {
                // The world was validated, so every seeded number normalizes.
                let Some(e164) = e164::normalize(&seed.phone_number) else { continue };
                let assignee = seed
                    .assigned_to
                    .as_deref()
                    .and_then(|who| account.find_user(who))
                    .map(|u| u.id.clone());
                let carrier_code = seed.carrier_code.unwrap_or(world.carrier().carrier_code);
                let mut n = Number::new(
                    e164.clone(),
                    account.id.clone(),
                    carrier_code,
                    seed.sip_trunk_name.clone(),
                    seed.status,
                    0,
                );
                n.assignee = assignee;
                numbers.insert(e164, n);
            }
        }
        let mut state = SimState {
            world_digest: world.digest(),
            clock_offset_ms: 0,
            numbers,
            grants: BTreeMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            sessions: HashMap::new(),
            consents: HashMap::new(),
            page_tokens: HashMap::new(),
            faults: Vec::new(),
            deliveries: Vec::new(),
            version: 0,
            purged_at: 0,
            by_account: HashMap::new(),
            carrier_counts: HashMap::new(),
        };
        state.index_numbers();
        state
    }

    /// Rebuilds [`SimState::by_account`] and [`SimState::carrier_counts`] (after a load).
    pub fn index_numbers(&mut self) {
        self.by_account.clear();
        self.carrier_counts.clear();
        for (e164, n) in &self.numbers {
            self.by_account.entry(n.account_id.clone()).or_default().insert(e164.clone());
            *self
                .carrier_counts
                .entry(n.account_id.clone())
                .or_default()
                .entry(n.carrier_code)
                .or_insert(0) += 1;
        }
    }

    /// Adds a number (replacing one with the same E.164), keeping the indexes right.
    pub fn insert_number(&mut self, n: Number) {
        self.remove_number(&n.phone_number);
        self.by_account.entry(n.account_id.clone()).or_default().insert(n.phone_number.clone());
        *self
            .carrier_counts
            .entry(n.account_id.clone())
            .or_default()
            .entry(n.carrier_code)
            .or_insert(0) += 1;
        self.numbers.insert(n.phone_number.clone(), n);
    }

    pub fn remove_number(&mut self, e164: &str) -> Option<Number> {
        let n = self.numbers.remove(e164)?;
        if let Some(set) = self.by_account.get_mut(&n.account_id) {
            set.remove(e164);
        }
        if let Some(count) =
            self.carrier_counts.get_mut(&n.account_id).and_then(|c| c.get_mut(&n.carrier_code))
        {
            *count = count.saturating_sub(1);
        }
        Some(n)
    }

    /// How many numbers of carrier `code` one account (Some) or all accounts hold.
    pub fn carrier_count(&self, account_id: Option<&str>, code: u32) -> usize {
        let of = |c: &HashMap<u32, usize>| c.get(&code).copied().unwrap_or(0);
        match account_id {
            Some(a) => self.carrier_counts.get(a).map_or(0, of),
            None => self.carrier_counts.values().map(of).sum(),
        }
    }

    /// Moves a number to another account, keeping the index right.
    pub fn move_number(&mut self, e164: &str, to_account: &str) -> Option<&mut Number> {
        let mut n = self.remove_number(e164)?;
        n.account_id = to_account.to_owned();
        self.insert_number(n);
        self.numbers.get_mut(e164)
    }

    /// The numbers of one account, in E.164 order.
    pub fn account_numbers<'s>(
        &'s self,
        account_id: &str,
    ) -> impl Iterator<Item = &'s Number> + 's {
        self.by_account.get(account_id).into_iter().flatten().filter_map(|k| self.numbers.get(k))
    }

    /// The numbers of one account (Some) or of all accounts whose E.164 sorts after `after`, in E.164
    /// order: a page's worth costs a page's worth, however many numbers the account holds.
    pub fn numbers_after<'s>(
        &'s self,
        account_id: Option<&str>,
        after: Option<&'s str>,
    ) -> Box<dyn Iterator<Item = &'s Number> + 's> {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        match account_id {
            Some(a) => Box::new(
                self.by_account
                    .get(a)
                    .into_iter()
                    .flat_map(move |set| set.range::<str, _>((from, Bound::Unbounded)))
                    .filter_map(|k| self.numbers.get(k)),
            ),
            None => {
                Box::new(self.numbers.range::<str, _>((from, Bound::Unbounded)).map(|(_, n)| n))
            }
        }
    }

    /// Forgets what has expired. Expired access tokens are kept a day longer so a caller is told its
    /// token expired rather than that it never existed.
    pub fn purge(&mut self, now: i64) {
        if self.purged_at == now {
            return;
        }
        self.purged_at = now;
        self.codes.retain(|_, c| {
            c.expires_at > now || (c.redeemed_by.is_some() && c.expires_at + 3600 > now)
        });
        self.consents.retain(|_, c| c.expires_at > now);
        self.page_tokens.retain(|_, p| p.expires_at > now);
        self.access_tokens.retain(|_, t| t.expires_at + 86_400 > now);
    }

    /// Drops an authorization and every token it issued.
    pub fn revoke_grant(&mut self, grant_id: &str) -> Option<Grant> {
        self.access_tokens.retain(|_, t| t.grant_id.as_deref() != Some(grant_id));
        self.refresh_tokens.retain(|_, t| t.grant_id != grant_id);
        self.grants.remove(grant_id)
    }

    /// One page of `all` (sorted by key) after the cursor `token` names, and a token for the next page:
    /// what a listing does with [`SimState::resume_after`] and [`page_from`], for the tests.
    #[cfg(test)]
    pub fn paginate<T>(
        &mut self,
        scope: &str,
        token: Option<&str>,
        page_size: usize,
        now: i64,
        ttl_secs: i64,
        all: Vec<(String, T)>,
    ) -> Result<Page<T>, BadPageToken> {
        let after = self.resume_after(scope, token, now)?.map(str::to_owned);
        let total_records = all.len();
        let rest = all.into_iter().filter(|(k, _)| after.as_ref().is_none_or(|a| k > a));
        let (page, cursor) = page_from(scope, page_size, now, ttl_secs, total_records, rest);
        if let Some((t, c)) = cursor {
            self.page_tokens.insert(t, c);
        }
        Ok(page)
    }

    /// The key a listing resumes after: None without a token (the first page), that of the cursor
    /// `token` names if it is this listing's (`scope`) and has not expired, else an error.
    pub fn resume_after(
        &self,
        scope: &str,
        token: Option<&str>,
        now: i64,
    ) -> Result<Option<&str>, BadPageToken> {
        match token.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => match self.page_tokens.get(t) {
                Some(c) if c.scope == scope && c.expires_at > now => Ok(Some(c.after.as_str())),
                _ => Err(BadPageToken),
            },
        }
    }
}

/// One page of `rest` (a listing's entries after its cursor, in key order, each with its key) and the
/// cursor of the next page if there is one. Only the page and one entry beyond it are taken from
/// `rest`, so a page costs its own size, not the listing's.
pub(crate) fn page_from<T>(
    scope: &str,
    page_size: usize,
    now: i64,
    ttl_secs: i64,
    total_records: usize,
    rest: impl Iterator<Item = (String, T)>,
) -> (Page<T>, Option<NewCursor>) {
    let mut rest = rest.peekable();
    let mut items = Vec::with_capacity(page_size.min(1000));
    let mut last = None;
    while items.len() < page_size {
        let Some((k, v)) = rest.next() else { break };
        last = Some(k);
        items.push(v);
    }
    let cursor = match (rest.peek(), last) {
        (Some(_), Some(after)) => Some((
            random_token(24),
            PageCursor { scope: scope.to_owned(), after, expires_at: now + ttl_secs },
        )),
        _ => None,
    };
    let next_page_token = cursor.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
    (Page { items, next_page_token, total_records }, cursor)
}

/// `bytes` random bytes as base64url: codes, tokens, ids.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the state file {path} is not a simulator state: {message}")]
    Corrupt { path: String, message: String },
    #[error(
        "the state file {path} was written for another world; use that world or remove the file"
    )]
    OtherWorld { path: String },
    #[error("cannot write the state file {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// `--state FILE`: loads the state at start-up and writes every change, atomically.
pub(crate) struct Persist {
    path: PathBuf,
    /// The version last written; a write of an older snapshot that lost the race is skipped.
    written: tokio::sync::Mutex<u64>,
}

impl Persist {
    pub fn new(path: PathBuf) -> Persist {
        Persist { path, written: tokio::sync::Mutex::new(0) }
    }

    /// The saved state, if the file exists.
    pub fn load(&self, world: &World) -> Result<Option<SimState>, StateError> {
        let path = self.path.display().to_string();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let mut state: SimState = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { path: path.clone(), message: e.to_string() })?;
        state.index_numbers();
        if state.world_digest != world.digest() {
            return Err(StateError::OtherWorld { path });
        }
        Ok(Some(state))
    }

    /// Writes a snapshot taken at `version`: to a temporary file beside the target, flushed, then
    /// renamed over it, so a crash leaves the old state or the new one and never half of one.
    pub async fn save(&self, version: u64, bytes: Vec<u8>) -> Result<(), StateError> {
        let mut written = self.written.lock().await;
        if *written >= version {
            return Ok(());
        }
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        result.map_err(|source| StateError::Write {
            path: self.path.display().to_string(),
            source,
        })?;
        *written = version;
        Ok(())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable only once the directory is synced; not every platform allows it.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world;

    fn keyed(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("k{i:03}"), i)).collect()
    }

    #[test]
    fn pages_follow_each_other_and_the_last_has_an_empty_token() {
        let world = World::from_json(include_str!("../examples/world.json")).expect("world");
        let mut s = SimState::initial(&world);
        let p1 = s.paginate("x", None, 2, 0, 900, keyed(5)).expect("page 1");
        assert_eq!(p1.items, vec![0, 1]);
        assert_eq!(p1.total_records, 5);
        let p2 = s.paginate("x", Some(&p1.next_page_token), 2, 0, 900, keyed(5)).expect("page 2");
        assert_eq!(p2.items, vec![2, 3]);
        let p3 = s.paginate("x", Some(&p2.next_page_token), 2, 0, 900, keyed(5)).expect("page 3");
        assert_eq!(p3.items, vec![4]);
        assert_eq!(p3.next_page_token, "");
    }

    #[test]
    fn page_tokens_expire_and_belong_to_one_listing() {
        let world = World::from_json(include_str!("../examples/world.json")).expect("world");
        let mut s = SimState::initial(&world);
        let p1 = s.paginate("x", None, 2, 0, 900, keyed(5)).expect("page 1");
        assert!(s.paginate("y", Some(&p1.next_page_token), 2, 0, 900, keyed(5)).is_err());
        assert!(s.paginate("x", Some(&p1.next_page_token), 2, 900, 900, keyed(5)).is_err());
    }

    #[test]
    fn seeded_numbers_start_with_their_assignment() {
        let world = World::from_json(include_str!("../examples/world.json")).expect("world");
        let s = SimState::initial(&world);
        let n = &s.numbers["+12065550900"];
        assert_eq!(n.carrier_code, 9999);
        assert_eq!(
            n.assignee.as_deref(),
            Some(world::derived_id("user", "alice@acme.example").as_str())
        );
    }
}
