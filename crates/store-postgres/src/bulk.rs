//! Rows in the binary form `COPY ... (FORMAT binary)` reads: a header, then per row its field count
//! and each field as its length and value in the type's binary form (length -1 for NULL), then a
//! trailer. Written straight into one reused buffer: no allocation per row.

use domain::{Number, NumberEvent};
use sqlx::{Postgres, Transaction};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Rows per buffer handed to the connection (about a megabyte of numbers).
const ROWS_PER_SEND: usize = 10_000;

/// Streams `numbers` and then their events through binary `COPY` in the caller's transaction.
pub(crate) async fn insert_numbers(
    tx: &mut Transaction<'_, Postgres>,
    numbers: &[(Number, NumberEvent)],
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(), sqlx::Error> {
    let mut rows = Rows::default();
    let mut copy = tx
        .copy_in_raw("COPY numbers (id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at) FROM STDIN (FORMAT binary)")
        .await?;
    for chunk in numbers.chunks(ROWS_PER_SEND) {
        for (n, _) in chunk {
            rows.number(n);
        }
        copy.send(rows.bytes()).await?;
        rows.clear();
    }
    rows.finish();
    copy.send(rows.bytes()).await?;
    rows.clear();
    copy.finish().await?;
    let mut copy = tx.copy_in_raw("COPY number_events (number_id, at, actor, from_state, to_state, reason) FROM STDIN (FORMAT binary)").await?;
    for chunk in numbers.chunks(ROWS_PER_SEND) {
        for (_, e) in chunk {
            rows.event(e);
        }
        copy.send(rows.bytes()).await?;
        rows.clear();
        progress(chunk.len());
    }
    rows.finish();
    copy.send(rows.bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// The signature, then 32-bit flags and header extension length, both 0.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// One table's stream, sent a buffer at a time: `bytes` to send, then `clear`.
#[derive(Default)]
struct Rows {
    buf: Vec<u8>,
    started: bool,
    /// The last tags seen and their encoding: an import's rows mostly share them.
    tags: Option<(Vec<String>, String)>,
}

fn value(buf: &mut Vec<u8>, v: &[u8]) {
    // Every value here is far below 2 GiB (bounded fields, UUIDs, times).
    buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
    buf.extend_from_slice(v);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn text(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => value(buf, v.as_bytes()),
        None => null(buf),
    }
}

fn uuid(buf: &mut Vec<u8>, v: Option<uuid::Uuid>) {
    match v {
        Some(v) => value(buf, v.as_bytes()),
        None => null(buf),
    }
}

/// `timestamptz`: microseconds since 2000-01-01 UTC, truncated as sqlx encodes times.
fn at(buf: &mut Vec<u8>, v: Option<OffsetDateTime>) {
    const PG_EPOCH: PrimitiveDateTime = PrimitiveDateTime::new(
        match Date::from_calendar_date(2000, Month::January, 1) {
            Ok(d) => d,
            Err(_) => panic!("2000-01-01 is a date"),
        },
        Time::MIDNIGHT,
    );
    match v {
        Some(v) => {
            let micros = (v - PG_EPOCH.assume_utc()).whole_microseconds() as i64;
            value(buf, &micros.to_be_bytes())
        }
        None => null(buf),
    }
}

impl Rows {
    fn row(&mut self, fields: i16) {
        if !self.started {
            self.buf.extend_from_slice(HEADER);
            self.started = true;
        }
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn number(&mut self, n: &Number) {
        self.row(12);
        let b = &mut self.buf;
        uuid(b, Some(n.id.as_uuid()));
        text(b, Some(n.e164.as_str()));
        text(b, Some(n.state.as_str()));
        uuid(b, n.customer_id.map(|c| c.as_uuid()));
        uuid(b, n.order_id.map(|o| o.as_uuid()));
        let tags = match &self.tags {
            Some((seen, encoded)) if *seen == n.tags => encoded,
            _ => &self.tags.insert((n.tags.clone(), crate::shared::encode_tags(&n.tags))).1,
        };
        text(b, Some(tags));
        text(b, n.billing_ref.as_deref());
        text(b, n.region.as_deref());
        text(b, n.note.as_deref());
        text(b, n.reason.as_deref());
        at(b, n.aging_until);
        at(b, Some(n.updated_at));
    }

    fn event(&mut self, e: &NumberEvent) {
        self.row(6);
        let b = &mut self.buf;
        uuid(b, Some(e.number_id.as_uuid()));
        at(b, Some(e.at));
        text(b, Some(&e.actor));
        text(b, e.from.map(|s| s.as_str()));
        text(b, Some(e.to.as_str()));
        text(b, e.reason.as_deref());
    }

    /// Ends the stream (the next row starts a new one).
    fn finish(&mut self) {
        if !self.started {
            self.buf.extend_from_slice(HEADER);
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.started = false;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn clear(&mut self) {
        self.buf.clear();
    }
}
