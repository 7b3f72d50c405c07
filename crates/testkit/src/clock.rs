//! [`TestClock`]: the clock a test's platform reads, which the test moves on instead of sleeping.

use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// The time as the platform under test reads it: the wall clock, plus however far the test has moved
/// it on with [`TestClock::advance`]. Every decision taken on time reads it: whether a job is due, a
/// lease has run out, a retry's backoff has passed, a quarantine has ended, a session or token has
/// expired. So a test that needs an hour to pass moves the clock by an hour, and the next decision
/// sees it at once.
///
/// It keeps running with the wall clock rather than standing still, so what really waits (workers
/// polling for work, the request budget's pacing, a heartbeat) still sees time pass. Clones share one
/// clock.
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    ahead: Arc<Mutex<Duration>>,
}

impl TestClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock on by `by` (not backwards: a negative `by` is refused).
    pub fn advance(&self, by: Duration) {
        assert!(!by.is_negative(), "TestClock::advance({by}): the clock does not go backwards");
        *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// Moves the clock on to `at` (and a millisecond past it, so that "due at `at`" is due); nothing
    /// if the clock is already there.
    pub fn advance_to(&self, at: OffsetDateTime) {
        let by = at - self.now() + Duration::milliseconds(1);
        if by.is_positive() {
            self.advance(by);
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.ahead.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl domain::Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        TestClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone_and_the_clock_keeps_running() {
        let clock = TestClock::new();
        let other = clock.clone();
        let before = OffsetDateTime::now_utc();
        clock.advance(Duration::days(90));
        let read = domain::Clock::now(&other);
        assert!(read >= before + Duration::days(90), "{read} vs {before}");
        assert!(read < before + Duration::days(90) + Duration::minutes(1), "{read} vs {before}");
        let at = clock.now() + Duration::hours(1);
        clock.advance_to(at);
        assert!(other.now() > at);
        clock.advance_to(at - Duration::hours(2));
        assert!(other.now() > at && other.now() < at + Duration::minutes(1), "never backwards");
    }

    #[test]
    #[should_panic(expected = "does not go backwards")]
    fn the_clock_does_not_go_backwards() {
        TestClock::new().advance(Duration::seconds(-1));
    }
}
