//! Orders: reserving numbers for a customer, and cancelling what is still pending.
//!
//! Numbers move by compare-and-set on the state they were read in ([`save_moves`]): two orders that
//! picked the same available number cannot both reserve it, and a cancellation cannot put back a
//! number an install has just started provisioning. The order itself moves the same way
//! (`... WHERE state = <from>`, the step taken from the order's state machine), after its numbers, the order an install takes them in too.

use super::customers::numbers_held;
use super::links::{apply_in_tx, live_link_account};
use super::numbers::push_tag_filter;
use super::rows::{CustomerRow, NumberRow, OrderRow};
use super::webhooks::emit;
use super::{save_moves, Db, DialectStore, Result};
use domain::customer::{
    check_number_limit, ContractState, Order, OrderError, OrderEvent, OrderPick, OrderState,
};
use domain::machine::StateMachine;
use domain::push::Application;
use domain::search::NumberQuery;
use domain::webhook::{EventType, OutboundEvent};
use domain::{Actor, CustomerId, Number, OrderId, PhoneNumber};
use sqlx::{QueryBuilder, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// How many times an order is tried when the numbers it read moved before it wrote them.
const ORDER_ATTEMPTS: usize = 5;

impl DialectStore {
    /// Creates an order and reserves its numbers in one transaction. With `explicit` numbers, each
    /// must be available; otherwise `pick.count` numbers matching the filters are taken in E.164 order.
    /// With `apply`, when the customer's Zoom account is linked the order is applied in the same
    /// transaction (its numbers written once, reserved then provisioning, and their push jobs queued,
    /// as [`DialectStore::apply_pending_orders`] does); the numbers returned are as reserved.
    pub async fn create_order(
        &self,
        customer: CustomerId,
        pick: &OrderPick,
        explicit: &[PhoneNumber],
        apply: bool,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<(Order, Vec<Number>), OrderError>> {
        // Picked numbers another order reserved first: pick again, from what is left.
        for _ in 1..ORDER_ATTEMPTS {
            match self.try_create_order(customer, pick, explicit, apply, by, now).await? {
                Err(OrderError::NumberNotAvailable(_)) if explicit.is_empty() => continue,
                done => return Ok(done),
            }
        }
        self.try_create_order(customer, pick, explicit, apply, by, now).await
    }

    async fn try_create_order(
        &self,
        customer: CustomerId,
        pick: &OrderPick,
        explicit: &[PhoneNumber],
        apply: bool,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<(Order, Vec<Number>), OrderError>> {
        let mut tx = self.writer().begin().await?;
        let customer_uuid = customer.as_uuid();
        // Read by writing the customer's row (it does not change): concurrent orders for one
        // customer then take their turn on it, so each counts against the number limit what the
        // others reserved before it. SQLite's single writer runs them one at a time anyway.
        let Some(row) = sqlx::query_as!(
            CustomerRow,
            r#"UPDATE customers SET number_limit = number_limit WHERE id = $1
               RETURNING id AS "id!: Uuid", name AS "name!", contract_ref AS "contract_ref!", contract_state AS "contract_state!",
                         created_at AS "created_at!: OffsetDateTime", zoom_trunk AS "zoom_trunk?", number_limit AS "number_limit?: i64", billing_ref AS "billing_ref?""#,
            customer_uuid
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(OrderError::CustomerNotFound));
        };
        let c = row.into_customer()?;
        if c.contract_state == ContractState::Ended {
            return Ok(Err(OrderError::ContractEnded));
        }
        if c.number_limit.is_some() {
            let held = numbers_held(&mut *tx, customer_uuid).await?;
            let wanted = if explicit.is_empty() { pick.count } else { explicit.len() as u32 };
            if let Err(e) = check_number_limit(c.number_limit, held, wanted) {
                return Ok(Err(e));
            }
        }
        let candidates: Vec<Number> = if explicit.is_empty() {
            let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
            q.push(" WHERE state = 'available'");
            if let Some(prefix) = &pick.prefix {
                q.push(" AND e164 >= ")
                    .push_bind(prefix.as_str())
                    .push(" AND e164 < ")
                    .push_bind(NumberQuery::prefix_upper(prefix));
            }
            if let Some(region) = &pick.region {
                q.push(" AND region = ").push_bind(region.as_str());
            }
            if let Some(tag) = &pick.tag {
                push_tag_filter(&mut q, tag);
            }
            q.push(" ORDER BY e164 LIMIT ").push_bind(i64::from(pick.count));
            let rows: Vec<NumberRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            let found = rows.into_iter().map(NumberRow::into_number).collect::<Result<Vec<_>>>()?;
            if found.len() < pick.count as usize {
                return Ok(Err(OrderError::NotEnough {
                    wanted: pick.count,
                    available: found.len() as u32,
                }));
            }
            found
        } else {
            let mut found = Vec::with_capacity(explicit.len());
            let mut listed = std::collections::HashSet::with_capacity(explicit.len());
            for e164 in explicit {
                // Listed twice: the second is not available once the first is reserved.
                if !listed.insert(e164) {
                    return Ok(Err(OrderError::NumberNotAvailable(e164.to_string())));
                }
                let text = e164.as_str();
                match select_numbers!("WHERE e164 = $1", text).fetch_optional(&mut *tx).await? {
                    None => return Ok(Err(OrderError::UnknownNumber(e164.to_string()))),
                    Some(r) => found.push(r.into_number()?),
                }
            }
            found
        };
        let order = Order {
            id: OrderId::new(),
            customer_id: customer,
            state: OrderState::Pending,
            number_count: candidates.len() as i64,
            created_by: by.to_string(),
            created_at: now,
        };
        let db_id = order.id.as_uuid();
        let db_customer = customer.as_uuid();
        let db_state = order.state.as_str();
        sqlx::query!("INSERT INTO orders (id, customer_id, state, number_count, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)", db_id, db_customer, db_state, order.number_count, order.created_by, now)
            .execute(&mut *tx)
            .await?;
        let mut moves = Vec::with_capacity(candidates.len());
        for n in candidates {
            let e164 = n.e164.to_string();
            match n.reserve(customer, order.id, by, now) {
                Ok(m) => moves.push(m),
                Err(_) => return Ok(Err(OrderError::NumberNotAvailable(e164))),
            }
        }
        let numbers: Vec<String> = moves.iter().map(|(n, _)| n.e164.to_string()).collect();
        emit(
            &mut tx,
            &[order_event(
                EventType::OrderPlaced,
                &order,
                &by.to_string(),
                serde_json::json!({ "quantity": order.number_count, "numbers": numbers }),
                now,
            )],
        )
        .await?;
        let link = if apply { live_link_account(&mut tx, customer).await? } else { None };
        let taken = match link {
            Some(account) => {
                let applied = apply_in_tx(
                    &mut tx,
                    customer,
                    &account,
                    Application::LiveLink,
                    &moves,
                    by,
                    now,
                )
                .await?;
                moves.iter().find(|(n, _)| !applied.moved.contains(&n.id.as_uuid()))
            }
            None => {
                let moved = save_moves(&mut tx, &moves).await?;
                moves.iter().find(|(n, _)| moved.contains(&n.id))
            }
        };
        if let Some((n, _)) = taken {
            // Reserved by another order since it was read: nothing is saved.
            return Ok(Err(OrderError::NumberNotAvailable(n.e164.to_string())));
        }
        tx.commit().await?;
        Ok(Ok((order, moves.into_iter().map(|(n, _)| n).collect())))
    }

    /// Cancels a pending order; its numbers go back to `available`. `customer` confines the
    /// lookup to one customer's orders when given.
    pub async fn cancel_order(
        &self,
        id: OrderId,
        customer: Option<CustomerId>,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Order, OrderError>> {
        // Its numbers moved meanwhile (an install is applying the order): read it again, and say
        // what it has become.
        for _ in 0..ORDER_ATTEMPTS {
            if let Some(done) = self.try_cancel_order(id, customer, by, now).await? {
                return Ok(done);
            }
        }
        Ok(Err(OrderError::NotPending("being applied")))
    }

    /// `None` when a number or the order moved since it was read; nothing is saved then.
    async fn try_cancel_order(
        &self,
        id: OrderId,
        customer: Option<CustomerId>,
        by: &Actor,
        now: OffsetDateTime,
    ) -> Result<Option<std::result::Result<Order, OrderError>>> {
        let mut tx = self.writer().begin().await?;
        let Some(mut order) =
            fetch_order(&mut tx, id).await?.filter(|o| customer.is_none_or(|c| c == o.customer_id))
        else {
            return Ok(Some(Err(OrderError::NotFound)));
        };
        let Ok(cancel) = order.state.on(OrderEvent::Cancel) else {
            return Ok(Some(Err(OrderError::NotPending(order.state.as_str()))));
        };
        let order_uuid = id.as_uuid();
        let rows =
            select_numbers!("WHERE order_id = $1 AND state = 'reserved' ORDER BY e164", order_uuid)
                .fetch_all(&mut *tx)
                .await?;
        let mut moves = Vec::with_capacity(rows.len());
        for row in rows {
            match row.into_number()?.cancel_reservation(by, now) {
                Ok(m) => moves.push(m),
                Err(e) => return Ok(Some(Err(e.into()))),
            }
        }
        if !save_moves(&mut tx, &moves).await?.is_empty() {
            return Ok(None);
        }
        let db_id = id.as_uuid();
        let (to, from) = (cancel.to.as_str(), cancel.from.as_str());
        let done = sqlx::query!(
            "UPDATE orders SET state = $1 WHERE id = $2 AND state = $3",
            to,
            db_id,
            from
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        emit(
            &mut tx,
            &[order_event(
                EventType::OrderCancelled,
                &order,
                &by.to_string(),
                serde_json::json!({}),
                now,
            )],
        )
        .await?;
        tx.commit().await?;
        order.state = cancel.to;
        Ok(Some(Ok(order)))
    }

    pub async fn get_order(&self, id: OrderId) -> Result<Option<Order>> {
        let id = id.as_uuid();
        let row = select_orders!("WHERE id = $1", id).fetch_optional(self.reader()).await?;
        row.map(OrderRow::into_order).transpose()
    }

    pub async fn list_orders(
        &self,
        customer: Option<CustomerId>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let limit = i64::from(limit);
        let rows = match customer.map(|c| c.as_uuid()) {
            Some(c) => {
                select_orders!("WHERE customer_id = $1 ORDER BY id DESC LIMIT $2", c, limit)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                select_orders!("ORDER BY id DESC LIMIT $1", limit).fetch_all(self.reader()).await?
            }
        };
        rows.into_iter().map(OrderRow::into_order).collect()
    }

    pub async fn order_numbers(&self, id: OrderId) -> Result<Vec<Number>> {
        let id = id.as_uuid();
        let rows = select_numbers!("WHERE order_id = $1 ORDER BY e164", id)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }
}

async fn fetch_order(tx: &mut Transaction<'_, Db>, id: OrderId) -> Result<Option<Order>> {
    let id = id.as_uuid();
    let row = select_orders!("WHERE id = $1", id).fetch_optional(&mut **tx).await?;
    row.map(OrderRow::into_order).transpose()
}

/// An order's event: `extra` joins the order's id, customer and who acted.
pub(crate) fn order_event(
    t: EventType,
    order: &Order,
    actor: &str,
    extra: serde_json::Value,
    at: OffsetDateTime,
) -> OutboundEvent {
    let mut data = serde_json::json!({
        "order_id": order.id.as_uuid(),
        "customer_id": order.customer_id.as_uuid(),
        "actor": actor,
    });
    if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    OutboundEvent::new(t, format!("order:{}", order.id.as_uuid()), at, data)
}
