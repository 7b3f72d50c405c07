//! Saving numbers after domain transitions. Every write is a compare-and-set on the state the
//! transition started from and on the number's version (its count of state changes, one more after
//! each transition), so a number another transaction (or instance) moved meanwhile is never
//! overwritten with a decision taken on what it was before, even when it has come back to the same
//! state since: the caller learns which numbers moved and retries or refuses. Row locks are not
//! needed for this, and both dialects behave alike.

use super::{Db, Result};
use domain::{Number, NumberEvent, NumberId, NumberState};
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// Rows per multi-row statement: SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535.
pub(crate) const INSERT_CHUNK: usize = 1_000;

/// Writes numbers after domain transitions, with their events, inside the caller's transaction. A
/// number no longer in the state its transition started from is left alone and gets no event; their
/// ids are returned, so an empty list means every move was saved. A caller that needs all or nothing
/// drops the transaction when the list is not empty. A number that left its customer also forgets
/// what Zoom said of it for that customer.
pub(crate) async fn save_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, NumberEvent)],
) -> Result<Vec<NumberId>> {
    let moved = save_state_moves(tx, moves).await?;
    // A number that left its customer forgets what Zoom said of it for that customer (its emergency
    // address, caller ID name, listing): sold again, even to the same customer, it starts with none,
    // as Zoom does. The history of events stays.
    let left: Vec<Uuid> = moves
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.customer_id.is_none() && moved.contains(&n.id.as_uuid()))
        .map(|n| n.id.as_uuid())
        .collect();
    for chunk in left.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::<Db>::new("DELETE FROM number_zoom_facts WHERE number_id IN (");
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(moves.iter().map(|(n, _)| n.id).filter(|id| !moved.contains(&id.as_uuid())).collect())
}

/// Writes moves with their events: one UPDATE per chunk of numbers that end alike (the same state,
/// customer, order, reason, ageing, time and version) and start alike (the same state and version),
/// not one per number: numbers moved together have mostly been through the same changes, so share a
/// version. A number may take several steps in one call (reserved, then provisioning), its steps in
/// order: it is written once, as its last step leaves it, compared with what its first step started
/// from, and every step's event is recorded. Each UPDATE is a compare-and-set on the state the first
/// step starts from and the version the number was read at: a number another transaction moved
/// first is left alone and gets no event. Returns the ids of the numbers this transaction moved.
pub(crate) async fn save_state_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, NumberEvent)],
) -> Result<std::collections::HashSet<Uuid>> {
    write_moves(tx, moves, None).await
}

/// [`save_state_moves`] for Zoom's answers to a push: a number that goes `active` is, in the same
/// UPDATE, one Zoom lists Unassigned as of `now` until the customer assigns it (unless peerex
/// already knows otherwise).
pub(crate) async fn save_pushed_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, NumberEvent)],
    now: OffsetDateTime,
) -> Result<std::collections::HashSet<Uuid>> {
    write_moves(tx, moves, Some(now)).await
}

async fn write_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, NumberEvent)],
    unassigned_since: Option<OffsetDateTime>,
) -> Result<std::collections::HashSet<Uuid>> {
    type Group<'a> = (
        (Option<&'a str>, i64),
        &'a str,
        Option<Uuid>,
        Option<Uuid>,
        Option<&'a str>,
        Option<OffsetDateTime>,
        OffsetDateTime,
        i64,
    );
    // Each number's first step (what it is compared with) and last (what is written). A later
    // step continues the one before it (callers build them so: the same number moved twice from
    // what was read is not two steps, and is refused before it comes here).
    let mut steps: std::collections::HashMap<Uuid, (&Number, &NumberEvent, &Number)> =
        std::collections::HashMap::with_capacity(moves.len());
    for (n, e) in moves {
        steps
            .entry(n.id.as_uuid())
            .and_modify(|s| {
                debug_assert!(
                    e.from == Some(s.2.state) && n.version == s.2.version + 1,
                    "{}: a step that does not continue the one before it",
                    n.e164
                );
                s.2 = n;
            })
            .or_insert((n, e, n));
    }
    let mut groups: std::collections::BTreeMap<Group<'_>, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (id, (first, e, n)) in &steps {
        groups
            .entry((
                (e.from.map(NumberState::as_str), first.version - 1),
                n.state.as_str(),
                n.customer_id.map(|c| c.as_uuid()),
                n.order_id.map(|o| o.as_uuid()),
                n.reason.as_deref(),
                n.aging_until,
                n.updated_at,
                n.version,
            ))
            .or_default()
            .push(*id);
    }
    let mut moved = std::collections::HashSet::with_capacity(moves.len());
    for (((from, read), state, customer, order, reason, aging, at, version), mut ids) in groups {
        // In id order, as other writers take numbers: on PostgreSQL two transactions then queue on
        // the first number they share rather than each holding one the other waits for.
        ids.sort_unstable();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("UPDATE numbers SET state = ");
            q.push_bind(state)
                .push(", customer_id = ")
                .push_bind(customer)
                .push(", order_id = ")
                .push_bind(order)
                .push(", reason = ")
                .push_bind(reason.map(str::to_owned))
                .push(", aging_until = ")
                .push_bind(aging)
                .push(", updated_at = ")
                .push_bind(at)
                .push(", version = ")
                .push_bind(version);
            if let Some(since) = unassigned_since.filter(|_| state == NumberState::Active.as_str())
            {
                // Both read the row as it was: the time is set only where nothing was known.
                q.push(", zoom_seen_at = CASE WHEN zoom_assigned IS NULL THEN ")
                    .push_bind(since)
                    .push(" ELSE zoom_seen_at END, zoom_assigned = COALESCE(zoom_assigned, ")
                    .push_bind(false)
                    .push(")");
            }
            q.push(" WHERE version = ").push_bind(read).push(" AND id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            if let Some(from) = from {
                q.push(" AND state = ").push_bind(from);
            }
            q.push(" RETURNING id");
            moved.extend(q.build_query_scalar::<Uuid>().fetch_all(&mut **tx).await?);
        }
    }
    let events: Vec<(&Number, &NumberEvent)> = moves
        .iter()
        .map(|(n, e)| (n, e))
        .filter(|(_, e)| moved.contains(&e.number_id.as_uuid()))
        .collect();
    for chunk in events.chunks(INSERT_CHUNK) {
        insert_events(tx, chunk.iter().copied()).await?;
    }
    Ok(moved)
}

/// Writes number events (the audit trail) and, for the carrier's systems, a `number.state_changed`
/// event each in the outbox: every change of a number's state passes here, with the number as it is
/// after the change.
pub(crate) async fn insert_events<'a>(
    tx: &mut Transaction<'_, Db>,
    changes: impl Iterator<Item = (&'a Number, &'a NumberEvent)>,
) -> Result<()> {
    let changes: Vec<(&Number, &NumberEvent)> = changes.collect();
    let events: Vec<&NumberEvent> = changes.iter().map(|(_, e)| *e).collect();
    let mut q = QueryBuilder::<Db>::new(
        "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) ",
    );
    let any = !events.is_empty();
    q.push_values(events.iter(), |mut b, e| {
        b.push_bind(e.number_id.as_uuid())
            .push_bind(e.at)
            .push_bind(e.actor.as_str())
            .push_bind(e.from.map(NumberState::as_str))
            .push_bind(e.to.as_str())
            .push_bind(e.reason.as_deref());
    });
    if any {
        q.build().execute(&mut **tx).await?;
    }
    super::webhooks::emit_state_changes(tx, &changes).await
}
