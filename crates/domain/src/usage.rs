//! Usage for billing: one record per customer and day (UTC), taken once and kept, from which the
//! carrier's billing system invoices. The counts are taken in one read of the inventory, so they
//! agree with it at the moment they were taken.

use crate::ids::CustomerId;
use serde::Serialize;
use time::{Date, OffsetDateTime};

/// A customer's usage on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    pub customer_id: CustomerId,
    pub customer_name: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// The customer's reference in the carrier's billing system, as it was when taken.
    pub billing_ref: Option<String>,
    /// Numbers held, by state, when taken.
    pub reserved: i64,
    pub provisioning: i64,
    pub active: i64,
    pub release_pending: i64,
    pub releasing: i64,
    pub suspended: i64,
    /// Ported in, waiting for the port date (inactive in Zoom).
    pub porting: i64,
    /// Numbers Zoom last said are assigned to a user.
    pub zoom_assigned: i64,
    /// Numbers ported in during the day.
    pub port_ins: i64,
    /// Numbers released (removed from Zoom) during the day.
    pub releases: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
}

impl UsageRecord {
    /// Every number the customer held when the record was taken.
    pub fn held(&self) -> i64 {
        self.reserved
            + self.provisioning
            + self.active
            + self.release_pending
            + self.releasing
            + self.suspended
            + self.porting
    }
}

/// The CSV header of [`to_csv`].
pub const CSV_HEADER: [&str; 15] = [
    "day",
    "customer_id",
    "customer_name",
    "billing_ref",
    "reserved",
    "provisioning",
    "active",
    "release_pending",
    "releasing",
    "suspended",
    "porting",
    "zoom_assigned",
    "port_ins",
    "releases",
    "taken_at",
];

/// The records as CSV (RFC 4180, header first).
pub fn to_csv(records: &[UsageRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>, r: &UsageRecord| {
        let taken =
            r.taken_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        w.write_record([
            r.day.clone(),
            r.customer_id.to_string(),
            // Written by operators and API clients: neutralised so a spreadsheet shows, not runs, them.
            crate::import::spreadsheet_cell(&r.customer_name).into_owned(),
            crate::import::spreadsheet_cell(r.billing_ref.as_deref().unwrap_or_default())
                .into_owned(),
            r.reserved.to_string(),
            r.provisioning.to_string(),
            r.active.to_string(),
            r.release_pending.to_string(),
            r.releasing.to_string(),
            r.suspended.to_string(),
            r.porting.to_string(),
            r.zoom_assigned.to_string(),
            r.port_ins.to_string(),
            r.releases.to_string(),
            taken,
        ])
    };
    // Writing to memory fails only on a bug; an empty export is then better than a panic.
    if w.write_record(CSV_HEADER).is_err() {
        return String::new();
    }
    for r in records {
        if write(&mut w, r).is_err() {
            return String::new();
        }
    }
    w.into_inner().ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
}

/// Parses a day as given (`YYYY-MM-DD`).
pub fn parse_day(s: &str) -> Option<Date> {
    Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// A day as stored (`YYYY-MM-DD`).
pub fn day_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_and_print_the_same_and_bad_ones_are_refused() {
        let d = parse_day("2026-03-09").unwrap();
        assert_eq!(day_str(d), "2026-03-09");
        for bad in ["2026-13-01", "yesterday", "2026-02-30", ""] {
            assert!(parse_day(bad).is_none(), "{bad}");
        }
    }
}
