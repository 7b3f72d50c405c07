//! The simulator's clock: the system's time plus an offset the test-control API can advance, so a test
//! can expire a code, a token or a page token without waiting for it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::milliseconds(self.offset_ms())
    }

    /// Unix seconds: what every expiry in the simulator's state is measured in.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Unix milliseconds, as in a webhook's `event_ts`.
    pub fn unix_ms(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Moves simulated time forward. Time never goes back: a clock that did would resurrect tokens.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// How far simulated time is ahead of the system's, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn set_offset_ms(&self, ms: i64) {
        self.offset_ms.store(ms.max(0), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_by_that_much() {
        let clock = Clock::default();
        let before = clock.unix();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.unix() - before >= 3600);
        assert_eq!(clock.offset_ms(), 3_600_000);
    }
}
