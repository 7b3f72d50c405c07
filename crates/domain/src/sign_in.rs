//! Sign-in throttling: how many passwords may be tried, from where, for which account.
//!
//! Three counters decide each attempt, held in the database so every instance shares them:
//!
//! - **source**: the client's address, across all accounts. After `per_source` failures in a window
//!   the address is refused until the window ends. One address cannot sweep many accounts.
//! - **account at source**: one account from one address. After `per_account_source` failures the
//!   pair is refused for a backoff that doubles with each further block (1, 2, 4 ... 60 minutes).
//!   This is the lock a guesser meets, and it is theirs alone: the same account from another
//!   address has its own counter, so nobody can lock a user out from elsewhere.
//! - **account**: the account from everywhere. It never refuses; after `slow_down_after` failures
//!   in a window it spaces password checks `slow_down_spacing` apart, so many addresses together
//!   still guess slowly. A check whose turn is further than `slow_down_max_wait` away is answered
//!   "busy" without being counted. Addresses the account signed in from before skip the queue.
//!
//! An attempt is counted **before** its password is checked (and given back when it succeeds), so
//! parallel guesses cannot all pass a check that reads the count before any of them writes it.
//! Unknown e-mails are counted like known ones: the answers do not tell which accounts exist.

use time::{Duration, OffsetDateTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInPolicy {
    pub window: Duration,
    pub per_source: i64,
    pub per_account_source: i64,
    /// The first block of an account at an address; each further block doubles it.
    pub backoff: Duration,
    pub backoff_cap: Duration,
    pub slow_down_after: i64,
    pub slow_down_spacing: Duration,
    pub slow_down_max_wait: Duration,
    /// How long a successful sign-in from an address lets that address skip the slow-down and the
    /// address's own limit for this account.
    pub trust_for: Duration,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            per_source: 20,
            per_account_source: 5,
            backoff: Duration::minutes(1),
            backoff_cap: Duration::hours(1),
            slow_down_after: 10,
            slow_down_spacing: Duration::seconds(1),
            slow_down_max_wait: Duration::seconds(5),
            trust_for: Duration::days(30),
        }
    }
}

/// One counter as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub failures: i64,
    pub window_start: OffsetDateTime,
    pub blocked_until: Option<OffsetDateTime>,
    /// Blocks in a row (the backoff's exponent); forgotten after a window without a block.
    pub strikes: i64,
    /// The account's next free turn for a password check while it is slowed down.
    pub next_slot: Option<OffsetDateTime>,
    /// Until when this account at this address is known good (a sign-in succeeded from it).
    pub trusted_until: Option<OffsetDateTime>,
}

impl Counter {
    pub fn new(now: OffsetDateTime) -> Self {
        Counter {
            failures: 0,
            window_start: now,
            blocked_until: None,
            strikes: 0,
            next_slot: None,
            trusted_until: None,
        }
    }

    /// Starts a new window when the block or the window is over.
    fn roll(&mut self, window: Duration, now: OffsetDateTime) {
        match self.blocked_until {
            Some(until) if until > now => {}
            Some(_) => {
                self.blocked_until = None;
                self.failures = 0;
                self.window_start = now;
            }
            None if self.window_start + window <= now => {
                self.failures = 0;
                self.window_start = now;
                self.strikes = 0;
            }
            None => {}
        }
    }

    fn blocked(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.blocked_until.filter(|u| *u > now)
    }
}

/// The three counters of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub source: Counter,
    pub account: Counter,
    pub account_source: Counter,
}

/// What may happen to an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Check the password, not before `not_before` when the account is slowed down.
    Check { not_before: Option<OffsetDateTime> },
    /// Too many failures from here: not checked, whatever the password.
    Refused { until: OffsetDateTime },
    /// The account's turns are taken for longer than an attempt waits: not checked, not counted.
    Busy { until: OffsetDateTime },
}

/// Decides an attempt and counts it (as a failure until [`settle`] says otherwise).
pub fn admit(c: &mut Counters, p: &SignInPolicy, now: OffsetDateTime) -> Admission {
    for counter in [&mut c.source, &mut c.account, &mut c.account_source] {
        counter.roll(p.window, now);
    }
    let trusted = c.account_source.trusted_until.is_some_and(|t| t > now);
    if let Some(until) = c.account_source.blocked(now) {
        return Admission::Refused { until };
    }
    if !trusted {
        if let Some(until) = c.source.blocked(now) {
            return Admission::Refused { until };
        }
        if c.source.failures >= p.per_source {
            let until = c.source.window_start + p.window;
            c.source.blocked_until = Some(until);
            return Admission::Refused { until };
        }
    }
    if c.account_source.failures >= p.per_account_source {
        let doubling = 1i32 << c.account_source.strikes.clamp(0, 16);
        let until = now + (p.backoff * doubling).min(p.backoff_cap);
        c.account_source.blocked_until = Some(until);
        c.account_source.strikes += 1;
        return Admission::Refused { until };
    }
    let mut not_before = None;
    if !trusted && c.account.failures >= p.slow_down_after {
        let turn = c.account.next_slot.filter(|s| *s > now).unwrap_or(now);
        if turn - now > p.slow_down_max_wait {
            return Admission::Busy { until: turn };
        }
        c.account.next_slot = Some(turn + p.slow_down_spacing);
        not_before = (turn > now).then_some(turn);
    }
    for counter in [&mut c.source, &mut c.account, &mut c.account_source] {
        counter.failures += 1;
    }
    Admission::Check { not_before }
}

/// Records how a checked attempt ended: a success gives its count back and trusts the address for
/// this account; a failure stays counted.
pub fn settle(c: &mut Counters, succeeded: bool, p: &SignInPolicy, now: OffsetDateTime) {
    if !succeeded {
        return;
    }
    c.source.failures = (c.source.failures - 1).max(0);
    c.account.failures = (c.account.failures - 1).max(0);
    c.account_source = Counter { trusted_until: Some(now + p.trust_for), ..Counter::new(now) };
}

/// What each counter is keyed by. Keys are hashed before they are stored, so the table holds no
/// e-mail or address in the clear.
pub fn keys(email: &str, source: &str) -> [String; 3] {
    let email = email.trim().to_lowercase();
    [
        format!("source:{source}"),
        format!("account:{email}"),
        format!("account_source:{email}|{source}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn fresh() -> Counters {
        Counters {
            source: Counter::new(T0),
            account: Counter::new(T0),
            account_source: Counter::new(T0),
        }
    }

    fn checks(a: Admission) -> bool {
        matches!(a, Admission::Check { .. })
    }

    #[test]
    fn five_failures_block_the_address_for_the_account_with_doubling_backoff() {
        let p = SignInPolicy::default();
        let mut c = fresh();
        for _ in 0..5 {
            assert!(checks(admit(&mut c, &p, T0)));
        }
        assert_eq!(admit(&mut c, &p, T0), Admission::Refused { until: T0 + Duration::minutes(1) });
        // Still blocked, whatever is tried.
        assert!(!checks(admit(&mut c, &p, T0 + Duration::seconds(59))));
        // After the block: five more, then twice as long.
        let t1 = T0 + Duration::minutes(1);
        for _ in 0..5 {
            assert!(checks(admit(&mut c, &p, t1)));
        }
        assert_eq!(admit(&mut c, &p, t1), Admission::Refused { until: t1 + Duration::minutes(2) });
    }

    #[test]
    fn a_success_gives_the_count_back_and_trusts_the_address() {
        let p = SignInPolicy::default();
        let mut c = fresh();
        for _ in 0..4 {
            admit(&mut c, &p, T0);
        }
        assert!(checks(admit(&mut c, &p, T0)));
        settle(&mut c, true, &p, T0);
        assert_eq!((c.account_source.failures, c.source.failures, c.account.failures), (0, 4, 4));
        assert_eq!(c.account_source.trusted_until, Some(T0 + Duration::days(30)));
    }

    #[test]
    fn an_address_is_refused_after_its_failures_across_accounts_until_the_window_ends() {
        let p = SignInPolicy::default();
        let mut source = Counter::new(T0);
        for i in 0..20 {
            let mut c = Counters { source, ..fresh() };
            assert!(checks(admit(&mut c, &p, T0)), "attempt {i}");
            source = c.source;
        }
        let mut c = Counters { source, ..fresh() };
        assert_eq!(admit(&mut c, &p, T0), Admission::Refused { until: T0 + p.window });
        let mut later = Counters { source: c.source, ..fresh() };
        assert!(checks(admit(&mut later, &p, T0 + p.window)));
    }

    #[test]
    fn a_slowed_account_spaces_checks_and_says_busy_rather_than_lock() {
        let p = SignInPolicy::default();
        let mut account = Counter { failures: 10, ..Counter::new(T0) };
        let mut turns = Vec::new();
        for _ in 0..6 {
            let mut c = Counters { account, ..fresh() };
            turns.push(admit(&mut c, &p, T0));
            account = c.account;
        }
        assert_eq!(turns[0], Admission::Check { not_before: None });
        assert_eq!(turns[3], Admission::Check { not_before: Some(T0 + Duration::seconds(3)) });
        assert_eq!(turns[5], Admission::Check { not_before: Some(T0 + Duration::seconds(5)) });
        let mut c = Counters { account: account.clone(), ..fresh() };
        assert_eq!(admit(&mut c, &p, T0), Admission::Busy { until: T0 + Duration::seconds(6) });
        assert_eq!(c.account.failures, account.failures, "a busy answer is not counted");
        // An address the account signed in from before does not queue.
        let trusted = Counter { trusted_until: Some(T0 + Duration::days(1)), ..Counter::new(T0) };
        let mut c = Counters { account, account_source: trusted, ..fresh() };
        assert_eq!(admit(&mut c, &p, T0), Admission::Check { not_before: None });
    }

    #[test]
    fn keys_ignore_case_and_spaces_of_the_email() {
        assert_eq!(keys(" Admin@X.example ", "192.0.2.1"), keys("admin@x.example", "192.0.2.1"));
        assert_ne!(keys("a@x.example", "192.0.2.1")[2], keys("a@x.example", "192.0.2.2")[2]);
    }
}
