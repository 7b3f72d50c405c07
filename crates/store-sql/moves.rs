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
/// drops the transaction when the list is not empty.
pub(crate) async fn save_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, NumberEvent)],
) -> Result<Vec<NumberId>> {
    let mut moved_away = Vec::new();
    let mut saved = Vec::with_capacity(moves.len());
    for (n, e) in moves {
        let db_state = n.state.as_str();
        let db_customer_id = n.customer_id.map(|c| c.as_uuid());
        let db_order_id = n.order_id.map(|o| o.as_uuid());
        let db_reason = n.reason.as_deref();
        let db_id = n.id.as_uuid();
        let expected = e.from.map(NumberState::as_str);
        let read_version = n.version - 1;
        let done = sqlx::query!(
            "UPDATE numbers SET state = $1, customer_id = $2, order_id = $3, reason = $4, aging_until = $5, updated_at = $6, version = $7 \
             WHERE id = $8 AND state = COALESCE($9, state) AND version = $10",
            db_state,
            db_customer_id,
            db_order_id,
            db_reason,
            n.aging_until,
            n.updated_at,
            n.version,
            db_id,
            expected,
            read_version
        )
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            saved.push((n, e));
        } else {
            moved_away.push(n.id);
        }
    }
    for chunk in saved.chunks(INSERT_CHUNK) {
        insert_events(tx, chunk.iter().copied()).await?;
    }
    // A number that left its customer forgets what Zoom said of it for that customer (its emergency
    // address, caller ID name, listing): sold again, even to the same customer, it starts with none,
    // as Zoom does. The history of events stays.
    let left: Vec<Uuid> = moves
        .iter()
        .filter(|(n, _)| n.customer_id.is_none() && !moved_away.contains(&n.id))
        .map(|(n, _)| n.id.as_uuid())
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
    Ok(moved_away)
}

/// Saves moves that change only a number's state, reason and time (every onboarding transition), one
/// UPDATE per (from, to, reason, version) and chunk instead of one per number, with their events
/// (numbers moved together have mostly been through the same changes, so share a version). Each UPDATE
/// is a compare-and-set on the state the move starts from and the version it was read at: a number
/// another transaction moved first is left alone and gets no event. Returns the ids of the numbers
/// this transaction moved.
pub(crate) async fn save_state_moves(
    tx: &mut Transaction<'_, Db>,
    moves: &[(Number, domain::NumberEvent)],
) -> Result<std::collections::HashSet<Uuid>> {
    type Group<'a> = (Option<&'a str>, &'a str, Option<&'a str>, OffsetDateTime, i64);
    let mut groups: std::collections::BTreeMap<Group<'_>, Vec<Uuid>> =
        std::collections::BTreeMap::new();
    for (n, e) in moves {
        groups
            .entry((
                e.from.map(NumberState::as_str),
                n.state.as_str(),
                n.reason.as_deref(),
                n.updated_at,
                n.version,
            ))
            .or_default()
            .push(n.id.as_uuid());
    }
    let mut moved = std::collections::HashSet::with_capacity(moves.len());
    for ((from, state, reason, at, version), ids) in groups {
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Db>::new("UPDATE numbers SET state = ");
            q.push_bind(state)
                .push(", reason = ")
                .push_bind(reason.map(str::to_owned))
                .push(", updated_at = ")
                .push_bind(at)
                .push(", version = ")
                .push_bind(version)
                .push(" WHERE version = ")
                .push_bind(version - 1)
                .push(" AND id IN (");
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
