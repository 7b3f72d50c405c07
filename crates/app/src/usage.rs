//! Usage for billing: each customer's record of a day, taken once (by the schedule for the day
//! that ended, or by hand for today), kept, and read back for export.

use crate::{App, AppError, Result};
use domain::usage::{day_str, parse_day, UsageRecord};
use domain::CustomerId;
use std::time::Duration;
use time::{Date, OffsetDateTime, Time};

/// The most days one usage export covers.
pub const MAX_DAYS: i64 = 366;

impl App {
    /// Takes every customer's record of `day` (today, UTC, when `None`) unless it was taken;
    /// returns the day and how many records were made.
    pub async fn take_usage(&self, day: Option<Date>) -> Result<(String, u64)> {
        let now = self.now();
        let day = day.unwrap_or(now.date());
        let start = OffsetDateTime::new_utc(day, Time::MIDNIGHT);
        let end = start + time::Duration::days(1);
        let name = day_str(day);
        let made = self.store.take_usage(&name, start, end, now).await?;
        Ok((name, made))
    }

    /// The records of days `from` to `to` (inclusive, `YYYY-MM-DD`; each defaults to today), of
    /// one customer or all. Bad dates and unknown customers are refused naming the field.
    pub async fn usage(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        customer: Option<&str>,
    ) -> Result<Vec<UsageRecord>> {
        let today = self.now().date();
        let day = |field: &'static str, raw: Option<&str>| match raw.map(str::trim) {
            None | Some("") => Ok(today),
            Some(s) => parse_day(s).ok_or_else(|| {
                AppError::invalid(field, format!("{s:?} is not a date (YYYY-MM-DD)"))
            }),
        };
        let (from, to) = (day("from", from)?, day("to", to)?);
        if from > to {
            return Err(AppError::invalid("to", "must not be before from"));
        }
        // One export is at most a year of days: a longer one is asked for in pieces.
        if to - from > time::Duration::days(MAX_DAYS - 1) {
            return Err(AppError::invalid(
                "to",
                format!("at most {MAX_DAYS} days from `from`; ask for longer periods in pieces"),
            ));
        }
        let customer = match customer.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => {
                let id: CustomerId = raw.parse().map_err(|_| {
                    AppError::invalid("customer", format!("{raw:?} is not a customer id"))
                })?;
                if self.store.get_customer(id).await?.is_none() {
                    return Err(AppError::invalid("customer", format!("no customer {raw}")));
                }
                Some(id)
            }
        };
        Ok(self.store.usage_records(&day_str(from), &day_str(to), customer).await?)
    }

    /// Sets (or clears, with an empty one) the customer's billing reference.
    pub async fn set_billing_ref(
        &self,
        customer: CustomerId,
        billing_ref: &str,
    ) -> Result<domain::customer::Customer> {
        let billing_ref = billing_ref.trim();
        if billing_ref.chars().count() > 64 {
            return Err(AppError::invalid("billing_ref", "at most 64 characters"));
        }
        let value = (!billing_ref.is_empty()).then_some(billing_ref);
        if !self.store.set_billing_ref(customer, value).await? {
            return Err(AppError::NotFound);
        }
        self.store.get_customer(customer).await?.ok_or(AppError::NotFound)
    }

    /// Takes the records of the day that ended, every `every`: the first instance to get there
    /// makes them, the others make nothing (the records' key).
    pub fn spawn_usage_taker(&self, every: Duration) -> crate::release::Sweep {
        let app = self.clone();
        crate::release::Sweep::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let yesterday = app.now().date().previous_day();
                if let Err(e) = app.take_usage(yesterday).await {
                    tracing::error!(error = %e, "usage records: database error");
                }
            }
        })
    }
}
