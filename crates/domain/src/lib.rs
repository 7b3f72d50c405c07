//! peerex's domain: the types and rules every other crate builds on.
//!
//! Pure: no tokio, sqlx, axum or reqwest here. Values are parsed at the boundary into newtypes
//! (`PhoneNumber`, ids) so that holding one means it is valid, and every change of a number's state
//! goes through one function in [`number`] that refuses illegal moves and returns the events it causes.

pub mod actor;
pub mod auth;
pub mod clock;
pub mod customer;
pub mod findings;
pub mod ids;
pub mod import;
pub mod job;
pub mod link;
pub mod machine;
pub mod mail;
pub mod number;
pub mod onboarding;
pub mod phone;
pub mod port_in;
pub mod push;
pub mod reconcile;
pub mod release;
pub mod routing;
pub mod search;
pub mod sign_in;
pub mod trunk;
pub mod usage;
pub mod webhook;
pub mod zoom_account;
pub mod zoom_facts;

pub use actor::Actor;
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{CustomerId, NumberId, OrderId, UserId};
pub use number::{Number, NumberEvent, NumberState, TransitionError};
pub use phone::{PhoneError, PhoneNumber};
pub use zoom_account::{ZoomAccountError, ZoomAccountId};
