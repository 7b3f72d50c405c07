//! Sign-in throttling counters and server secrets (see the dialects and `domain::sign_in`).

use crate::{Result, Store};
use domain::sign_in::{Admission, SignInPolicy};
use time::OffsetDateTime;

impl Store {
    forward! {
        /// Decides a sign-in attempt by the counters under `keys` (source, account, account at
        /// source, already hashed) and counts it, atomically across instances.
        pub async fn admit_sign_in(
            &self,
            keys: &[String; 3],
            policy: &SignInPolicy,
            now: OffsetDateTime,
        ) -> Result<Admission>;

        /// Records how a checked attempt ended.
        pub async fn settle_sign_in(
            &self,
            keys: &[String; 3],
            succeeded: bool,
            policy: &SignInPolicy,
            now: OffsetDateTime,
        ) -> Result<()>;

        pub async fn purge_sign_in_throttle(
            &self,
            before: OffsetDateTime,
            now: OffsetDateTime,
        ) -> Result<u64>;

        /// The shared secret called `name`, made from `fresh` by whoever asks first.
        pub async fn server_secret(
            &self,
            name: &str,
            fresh: &str,
            now: OffsetDateTime,
        ) -> Result<String>;
    }
}
