//! Orders: numbers reserved from inventory for a customer. Until the customer's Zoom account is linked
//! (the onboarding work) an order waits as pending.

use crate::{App, AppError, Result};
use domain::customer::{Order, OrderError, OrderPick, MAX_ORDER_NUMBERS};
use domain::onboarding::Job;
use domain::{Actor, CustomerId, Number, OrderId, PhoneNumber};

impl App {
    /// Reserves numbers for a customer: `pick.count` numbers matching its filters, or exactly the
    /// `explicit` numbers. One transaction: either every number is reserved or none.
    pub async fn create_order(
        &self,
        customer: CustomerId,
        pick: OrderPick,
        explicit: &[String],
        by: &Actor,
    ) -> Result<(Order, Vec<Number>)> {
        self.place_order(customer, pick, explicit, false, by).await
    }

    /// [`App::create_order`]; with `apply`, an order for a customer whose Zoom account is linked is
    /// applied in the same transaction (its numbers go to `provisioning` and their pushes are queued).
    pub(crate) async fn place_order(
        &self,
        customer: CustomerId,
        pick: OrderPick,
        explicit: &[String],
        apply: bool,
        by: &Actor,
    ) -> Result<(Order, Vec<Number>)> {
        let mut list = Vec::with_capacity(explicit.len());
        for raw in explicit {
            let n = PhoneNumber::parse(raw)
                .map_err(|e| AppError::invalid("numbers", format!("{raw:?} is not E.164: {e}")))?;
            if list.contains(&n) {
                return Err(AppError::invalid("numbers", format!("{n} is listed twice")));
            }
            list.push(n);
        }
        let count = if list.is_empty() { pick.count } else { list.len() as u32 };
        if count == 0 || count > MAX_ORDER_NUMBERS {
            return Err(AppError::invalid(
                if list.is_empty() { "count" } else { "numbers" },
                OrderError::BadCount { max: MAX_ORDER_NUMBERS }.to_string(),
            ));
        }
        if let Some(tag) = &pick.tag {
            domain::import::parse_tags(tag).map_err(|m| AppError::invalid("tag", m))?;
        }
        let pick = OrderPick { count, ..pick };
        match self.store.create_order(customer, &pick, &list, apply, by, self.now()).await? {
            Ok(done) => Ok(done),
            Err(OrderError::CustomerNotFound) => Err(AppError::NotFound),
            Err(e) => Err(AppError::Refused(e.to_string())),
        }
    }

    /// Cancels a pending order; its numbers return to `available`. With `customer`, only that
    /// customer's order is found (another customer's is "not found").
    pub async fn cancel_order(
        &self,
        id: OrderId,
        customer: Option<CustomerId>,
        by: &Actor,
    ) -> Result<Order> {
        match self.store.cancel_order(id, customer, by, self.now()).await? {
            Ok(order) => Ok(order),
            Err(OrderError::NotFound) => Err(AppError::NotFound),
            Err(e) => Err(AppError::Refused(e.to_string())),
        }
    }

    /// Orders newest first (at most `limit`), a customer's or everyone's.
    pub async fn orders(&self, customer: Option<CustomerId>, limit: u32) -> Result<Vec<Order>> {
        Ok(self.store.list_orders(customer, limit).await?)
    }

    /// The jobs carrying an order's numbers to Zoom. With `customer`, only that customer's order is
    /// found (another customer's is "not found").
    pub async fn order_jobs(&self, id: OrderId, customer: Option<CustomerId>) -> Result<Vec<Job>> {
        if let Some(c) = customer {
            self.store
                .get_order(id)
                .await?
                .filter(|o| o.customer_id == c)
                .ok_or(AppError::NotFound)?;
        }
        Ok(self.store.order_jobs(id).await?)
    }

    pub async fn order(
        &self,
        id: OrderId,
        customer: Option<CustomerId>,
    ) -> Result<(Order, Vec<Number>)> {
        let order = self
            .store
            .get_order(id)
            .await?
            .filter(|o| customer.is_none_or(|c| c == o.customer_id))
            .ok_or(AppError::NotFound)?;
        let numbers = self.store.order_numbers(id).await?;
        Ok((order, numbers))
    }
}
