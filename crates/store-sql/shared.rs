//! The queries both dialects share, written once. Each dialect crate declares this file as its
//! module `shared` (`#[path = "../../store-sql/shared.rs"]`) after defining `Db` (its sqlx
//! database), `DialectStore` (its store, with `writer()` and `reader()` pools), `SUBSTRING_POSITION`
//! and the `job_claim_lock!` macro. The `sqlx::query!` macros below expand in each dialect crate, so
//! every query is checked at compile time against both schemas, each through its own offline data
//! (`.sqlx/`); where the dialects' type inference differs, `AS "col!: Type"` overrides settle it.
//! No query reads the database's clock: the time is always a bound parameter.

#[macro_use]
#[path = "select.rs"]
mod select;
#[path = "moves.rs"]
pub(crate) mod moves;
#[path = "rows.rs"]
mod rows;

#[macro_use]
#[path = "jobs.rs"]
mod jobs;
#[path = "customers.rs"]
mod customers;
#[path = "findings.rs"]
pub(crate) mod findings;
#[path = "installs.rs"]
mod installs;
#[path = "links.rs"]
mod links;
#[path = "mail.rs"]
mod mail;
#[path = "numbers.rs"]
mod numbers;
#[path = "orders.rs"]
mod orders;
#[path = "port_ins.rs"]
mod port_ins;
#[path = "release.rs"]
mod release;
#[path = "routing_facts.rs"]
pub(crate) mod routing_facts;
#[path = "sign_in.rs"]
mod sign_in;
#[path = "tokens.rs"]
mod tokens;
#[path = "trunks.rs"]
mod trunks;
#[path = "usage.rs"]
mod usage;
#[path = "users.rs"]
mod users;
#[path = "webhooks.rs"]
pub(crate) mod webhooks;
#[path = "zoom_facts.rs"]
mod zoom_facts;

use crate::{Db, DialectStore, Result, SUBSTRING_POSITION};
pub(crate) use moves::INSERT_CHUNK;
use moves::{save_moves, save_pushed_moves, save_state_moves};
pub(crate) use rows::encode_tags;

/// Appends `(<each value bound>)` to a query, for an `IN` whose values (states) a domain rule
/// names: they are bound, not written into the SQL text.
fn push_list<'a>(
    q: &mut sqlx::QueryBuilder<'a, Db>,
    values: impl IntoIterator<Item = &'static str>,
) {
    q.push("(");
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    q.push(")");
}

/// The step `event` takes from `from` in its state machine. The store asks only for steps its
/// callers' states allow; a refusal here is a bug, reported as a failed write.
fn step<S: domain::machine::StateMachine>(
    from: S,
    event: S::Event,
) -> Result<domain::machine::Step<S>> {
    from.on(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}
