//! Who caused a change: written into every number event.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// Carrier staff, by e-mail.
    Operator(String),
    /// A customer's admin, by e-mail.
    CustomerAdmin(String),
    /// An API token, by its name.
    ApiToken(String),
    /// peerex itself (scheduled jobs, the CLI run by the carrier's own tooling).
    System(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Operator(who) => write!(f, "operator:{who}"),
            Actor::CustomerAdmin(who) => write!(f, "customer:{who}"),
            Actor::ApiToken(name) => write!(f, "token:{name}"),
            Actor::System(what) => write!(f, "system:{what}"),
        }
    }
}
