//! The import's write path: numbers and their creation events stepped through SQLite's C API on the
//! writer connection's own handle, inside the caller's sqlx transaction.
//!
//! Why below sqlx: sqlx hands every statement to its connection's worker thread, and every bound
//! value is first encoded into an owned argument (a UUID copied to a `Vec`, a time formatted to a new
//! `String`, each text cloned to send it across) before SQLite copies it once more. A million-number
//! import binds 18 million values, and that work cost more than SQLite's own inserting: measured on
//! this 2-core machine, sqlx's multi-row INSERTs took 11.5 s for what the same multi-row statements
//! stepped here (rusqlite over the same bundled SQLite, the same SQL) do in 4 to 5 s, against 4 to
//! 6 s for the bare numbers table alone (`peerex bench import`'s floor). Only this bulk path is
//! hand-written; everything else goes through sqlx.

use domain::{Number, NumberEvent};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::{Sqlite, Transaction};
use std::borrow::Cow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Rows per multi-row INSERT: about as fast as SQLite loads rows (one statement per row is half as
/// fast again; more rows per statement gain nothing), 2,400 parameters of the 32,766 allowed.
const ROWS_PER_STATEMENT: usize = 200;

const NUMBERS_INSERT: &str = "INSERT INTO numbers (id, e164, state, customer_id, order_id, tags, billing_ref, region, note, reason, aging_until, updated_at) VALUES ";
const NUMBER_COLUMNS: usize = 12;
const EVENTS_INSERT: &str =
    "INSERT INTO number_events (number_id, at, actor, from_state, to_state, reason) VALUES ";
const EVENT_COLUMNS: usize = 6;

/// Numbers an import writes between two yields to the runtime (tens of milliseconds of SQLite work).
const IMPORT_SLICE: usize = 25 * ROWS_PER_STATEMENT;

/// Runs SQLite work that takes a while on this thread, telling a multi-threaded runtime to move its
/// other tasks elsewhere meanwhile (a current-thread runtime, as in tests, just runs it).
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `f` on a reader connection's own SQLite handle, below sqlx: rows stepped there are read in
/// place, where sqlx copies every row's values and sends the row from its connection's thread to the
/// caller's (several microseconds a row, most of a large read's time on this 2-core machine).
pub(crate) async fn on_reader<R>(
    store: &crate::SqliteStore,
    f: impl FnOnce(&rusqlite::Connection) -> Result<R, sqlx::Error>,
) -> Result<R, sqlx::Error> {
    let mut conn = store.reader().acquire().await?;
    let mut handle = conn.lock_handle().await?;
    blocking(|| {
        with_rusqlite(&mut handle, |db| {
            let out = f(db);
            // The connection goes back to sqlx's pool as it came: no transaction left open.
            if !db.is_autocommit() {
                let _ = db.execute_batch("ROLLBACK");
                return Err(sqlx::Error::Protocol(
                    "a read below sqlx left a transaction open; rolled back".into(),
                ));
            }
            out
        })
    })
}

/// Runs `f` with the locked connection as rusqlite's: the one place peerex borrows a connection of
/// sqlx's below it.
fn with_rusqlite<R>(
    handle: &mut LockedSqliteHandle<'_>,
    f: impl FnOnce(&rusqlite::Connection) -> Result<R, sqlx::Error>,
) -> Result<R, sqlx::Error> {
    // SAFETY: the handle is a live connection, and locked: sqlx's worker does not touch it until
    // `handle` is released, which the borrow keeps from happening before `db` (not owned: dropping
    // it finalizes its statements and leaves the connection open) is dropped at the end of this
    // call. (rusqlite's `hooks` feature must stay off: with it, dropping `db` would clear the hooks
    // sqlx installed on the connection.)
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(from_rusqlite)?;
    f(&db)
}

/// A UUID column (SQLite keeps them as 16-byte blobs, as sqlx writes them), or NULL.
pub(crate) fn uuid_at(r: &rusqlite::Row<'_>, i: usize) -> Result<Option<uuid::Uuid>, sqlx::Error> {
    r.get_ref(i)
        .map_err(from_rusqlite)?
        .as_blob_or_null()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
        .map(uuid::Uuid::from_slice)
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `head` followed by `rows` groups of `columns` placeholders.
fn values_sql(head: &str, rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    let mut sql = String::with_capacity(head.len() + rows * (group.len() + 2));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&group);
    }
    sql
}

/// Formats times as sqlx's SQLite encoding does (RFC 3339 text), so reads decode and compare them
/// alike; an import's rows share one time, so the last one formatted is kept.
#[derive(Default)]
struct Stamp {
    at: Option<OffsetDateTime>,
    text: String,
}

impl Stamp {
    fn get(&mut self, t: OffsetDateTime) -> Result<&str, sqlx::Error> {
        if self.at != Some(t) {
            self.text = t.format(&Rfc3339).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            self.at = Some(t);
        }
        Ok(&self.text)
    }
}

/// Writes `numbers` and their events in the caller's transaction (which it rolls back on error), a
/// slice at a time so the import yields to other tasks and reports progress between slices.
pub(crate) async fn insert_numbers(
    tx: &mut Transaction<'_, Sqlite>,
    numbers: &[(Number, NumberEvent)],
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(), sqlx::Error> {
    for slice in numbers.chunks(IMPORT_SLICE) {
        let mut handle = tx.lock_handle().await?;
        blocking(|| with_rusqlite(&mut handle, |db| insert_slice(db, slice)))?;
        drop(handle);
        progress(slice.len());
    }
    Ok(())
}

/// Writes `numbers` and their events with multi-row INSERTs on the connection, in whatever
/// transaction it has open.
fn insert_slice(
    db: &rusqlite::Connection,
    numbers: &[(Number, NumberEvent)],
) -> Result<(), sqlx::Error> {
    let mut stamp = Stamp::default();
    let mut aging = Stamp::default();
    let mut tags = (None::<&[String]>, String::new());
    let mut full: Option<(rusqlite::Statement<'_>, rusqlite::Statement<'_>)> = None;
    for chunk in numbers.chunks(ROWS_PER_STATEMENT) {
        let mut partial;
        let (insert, events) = if chunk.len() == ROWS_PER_STATEMENT {
            if full.is_none() {
                full = Some(prepare(db, ROWS_PER_STATEMENT)?);
            }
            let (n, e) = full.as_mut().expect("prepared above");
            (n, e)
        } else {
            partial = prepare(db, chunk.len())?;
            (&mut partial.0, &mut partial.1)
        };
        for (i, (n, _)) in chunk.iter().enumerate() {
            if tags.0 != Some(n.tags.as_slice()) {
                tags = (Some(n.tags.as_slice()), crate::shared::encode_tags(&n.tags));
            }
            let at = i * NUMBER_COLUMNS;
            bind(insert, at + 1, &n.id.as_uuid().as_bytes()[..])?;
            bind(insert, at + 2, n.e164.as_str())?;
            bind(insert, at + 3, n.state.as_str())?;
            bind(insert, at + 4, n.customer_id.map(|c| c.as_uuid().into_bytes()))?;
            bind(insert, at + 5, n.order_id.map(|o| o.as_uuid().into_bytes()))?;
            bind(insert, at + 6, tags.1.as_str())?;
            bind(insert, at + 7, n.billing_ref.as_deref())?;
            bind(insert, at + 8, n.region.as_deref())?;
            bind(insert, at + 9, n.note.as_deref())?;
            bind(insert, at + 10, n.reason.as_deref())?;
            bind(insert, at + 11, n.aging_until.map(|t| aging.get(t)).transpose()?)?;
            bind(insert, at + 12, stamp.get(n.updated_at)?)?;
        }
        insert.raw_execute().map_err(from_rusqlite)?;
        for (i, (_, e)) in chunk.iter().enumerate() {
            let at = i * EVENT_COLUMNS;
            bind(events, at + 1, &e.number_id.as_uuid().as_bytes()[..])?;
            bind(events, at + 2, stamp.get(e.at)?)?;
            bind(events, at + 3, e.actor.as_str())?;
            bind(events, at + 4, e.from.map(|s| s.as_str()))?;
            bind(events, at + 5, e.to.as_str())?;
            bind(events, at + 6, e.reason.as_deref())?;
        }
        events.raw_execute().map_err(from_rusqlite)?;
    }
    Ok(())
}

fn prepare(
    db: &rusqlite::Connection,
    rows: usize,
) -> Result<(rusqlite::Statement<'_>, rusqlite::Statement<'_>), sqlx::Error> {
    Ok((
        db.prepare(&values_sql(NUMBERS_INSERT, rows, NUMBER_COLUMNS)).map_err(from_rusqlite)?,
        db.prepare(&values_sql(EVENTS_INSERT, rows, EVENT_COLUMNS)).map_err(from_rusqlite)?,
    ))
}

fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    index: usize,
    value: impl rusqlite::ToSql,
) -> Result<(), sqlx::Error> {
    stmt.raw_bind_parameter(index, value).map_err(from_rusqlite)
}

/// A SQLite error from the bulk path, shaped like sqlx's own so callers see one kind of error (a
/// UNIQUE failure is a unique violation whose message names the column, as sqlx's is).
#[derive(Debug)]
struct BulkError {
    extended_code: i32,
    message: String,
}

impl std::fmt::Display for BulkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.extended_code, self.message)
    }
}

impl std::error::Error for BulkError {}

impl DatabaseError for BulkError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.extended_code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

pub(crate) fn from_rusqlite(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(BulkError {
                extended_code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        rusqlite::Error::FromSqlConversionFailure(index, _, source) => {
            sqlx::Error::ColumnDecode { index: index.to_string(), source }
        }
        rusqlite::Error::InvalidColumnType(_, name, ty) => sqlx::Error::ColumnDecode {
            index: name,
            source: format!("SQLite holds a {ty} value there").into(),
        },
        other => sqlx::Error::Protocol(format!("SQLite, read or written below sqlx: {other}")),
    }
}
