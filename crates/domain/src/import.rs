//! Parsing an inventory import (CSV or a range) into numbers to add, with every bad row reported.
//!
//! Nothing here touches the database: "already in inventory" is added by the caller, which knows
//! what is stored. The parser never stops at the first problem, so an operator fixes a file once.

use crate::number::NumberAttrs;
use crate::phone::{PhoneError, PhoneNumber};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, Read};

/// Longest line a CSV may have; a longer one is refused instead of being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most numbers one import (file or range) may add.
pub const MAX_IMPORT_NUMBERS: usize = 2_000_000;
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_LEN: usize = 32;
pub const MAX_FIELD_LEN: usize = 128;
pub const MAX_NOTE_LEN: usize = 500;

pub const COLUMNS: [&str; 5] = ["number", "tags", "billing_ref", "region", "note"];

/// What a spreadsheet reads as the start of a formula in a CSV cell ("CSV injection": a note of
/// `=HYPERLINK(...)` would run in the operator's spreadsheet), and the quote that neutralises it.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A free-text cell (tags, billing reference, region, note, reason) written for a spreadsheet: one
/// that starts like a formula, or with the quote this adds, gets a leading `'`, which spreadsheets
/// take as "text". [`parse_csv`] takes it off again, so an export imports as it was. E.164 numbers
/// are not written through this: they are `+` and digits only, which no spreadsheet can run, and
/// other tools read them as they are.
pub fn spreadsheet_cell(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(FORMULA_START) || v.starts_with('\'') {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// A cell as [`spreadsheet_cell`] wrote it, back as it was.
fn unquote_cell(v: &str) -> &str {
    match v.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) || rest.starts_with('\'') => rest,
        _ => v,
    }
}

/// A number ready to be added, with the row it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based line of the data row in the file (the header is row 1), or the position in a range.
    pub row: usize,
    pub e164: PhoneNumber,
    pub attrs: NumberAttrs,
}

/// One problem, tied to where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based row in the file; 0 for a problem with the file as a whole.
    pub row: usize,
    pub column: Option<String>,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ImportPlan {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
}

impl ImportPlan {
    fn error(&mut self, row: usize, column: Option<&str>, value: &str, reason: impl Into<String>) {
        // A value is echoed back to the operator; keep the echo short.
        let value: String = value.chars().take(80).collect();
        self.errors.push(RowError {
            row,
            column: column.map(str::to_owned),
            value,
            reason: reason.into(),
        });
    }

    /// Marks every row whose number is in `existing` as already in inventory.
    pub fn reject_existing(&mut self, existing: &std::collections::HashSet<PhoneNumber>) {
        let (keep, clash): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.rows).into_iter().partition(|r| !existing.contains(&r.e164));
        self.rows = keep;
        for r in clash {
            self.error(r.row, Some("number"), r.e164.as_str(), "already in inventory");
        }
        self.errors.sort_by_key(|e| e.row);
    }
}

/// Reads a CSV import. The header is required and must name a `number` column; BOM, CRLF and quoted
/// fields are accepted. Rows are checked independently; the file's own problems come as row 0 or 1.
pub fn parse_csv(input: impl Read) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineLimit::new(input));
    let mut records = reader.byte_records();

    let header = match records.next() {
        None => {
            plan.error(
                0,
                None,
                "",
                "the file is empty; the first line must be a header naming a 'number' column",
            );
            return plan;
        }
        Some(Err(e)) => {
            plan.error(1, None, "", csv_reason(&e));
            return plan;
        }
        Some(Ok(h)) => h,
    };
    let mut columns: Vec<&'static str> = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
        let name = String::from_utf8_lossy(raw).trim().to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if columns.contains(c) => {
                plan.error(1, Some(c), &name, "column appears twice in the header")
            }
            Some(c) => columns.push(c),
            None => plan.error(
                1,
                None,
                &name,
                format!("unknown column; expected {}", COLUMNS.join(", ")),
            ),
        }
    }
    if !columns.contains(&"number") {
        plan.error(1, None, "", "the header must name a 'number' column (first line of the file)");
    }
    if !plan.errors.is_empty() {
        return plan;
    }

    let mut seen: HashMap<PhoneNumber, usize> = HashMap::new();
    for (index, record) in records.enumerate() {
        // Rows are counted as a spreadsheet shows them: the header is row 1, blank lines are skipped.
        let row = index + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                plan.error(row, None, "", csv_reason(&e));
                // An I/O error (an over-long line) leaves the reader nowhere sensible to resume.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return plan;
                }
                continue;
            }
        };
        if record.len() != columns.len() {
            plan.error(
                row,
                None,
                "",
                format!("expected {} fields, found {}", columns.len(), record.len()),
            );
            continue;
        }
        let mut fields: HashMap<&str, &str> = HashMap::new();
        let mut bad = false;
        for (col, raw) in columns.iter().zip(record.iter()) {
            match std::str::from_utf8(raw) {
                Ok(v) => {
                    fields.insert(col, unquote_cell(v.trim()));
                }
                Err(_) => {
                    plan.error(row, Some(col), &String::from_utf8_lossy(raw), "is not valid UTF-8");
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if plan.rows.len() >= MAX_IMPORT_NUMBERS {
            plan.error(
                row,
                None,
                "",
                format!("an import may add at most {MAX_IMPORT_NUMBERS} numbers; split the file"),
            );
            return plan;
        }
        let number = fields["number"];
        let e164 = match PhoneNumber::parse(number) {
            Ok(n) => n,
            Err(e) => {
                plan.error(row, Some("number"), number, format!("not E.164: {e}"));
                continue;
            }
        };
        let attrs = match parse_attrs(&fields) {
            Ok(a) => a,
            Err((col, value, reason)) => {
                plan.error(row, Some(col), value, reason);
                continue;
            }
        };
        if let Some(first) = seen.get(&e164) {
            plan.error(
                row,
                Some("number"),
                number,
                format!("duplicate in file (first on row {first})"),
            );
            continue;
        }
        seen.insert(e164.clone(), row);
        plan.rows.push(ImportRow { row, e164, attrs });
    }
    plan
}

type FieldError<'a> = (&'static str, &'a str, String);

fn parse_attrs<'a>(fields: &HashMap<&str, &'a str>) -> Result<NumberAttrs, FieldError<'a>> {
    let text = |col: &'static str, max: usize| -> Result<Option<String>, FieldError<'a>> {
        match fields.get(col).copied().filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.chars().count() > max => Err((
                col,
                v,
                format!("field too long ({} characters, at most {max})", v.chars().count()),
            )),
            Some(v) if v.chars().any(char::is_control) => {
                Err((col, v, "contains control characters".into()))
            }
            Some(v) => Ok(Some(v.to_owned())),
        }
    };
    let tags = match fields.get("tags").copied() {
        None => Vec::new(),
        Some(raw) => parse_tags(raw).map_err(|reason| ("tags", raw, reason))?,
    };
    Ok(NumberAttrs {
        tags,
        billing_ref: text("billing_ref", MAX_FIELD_LEN)?,
        region: text("region", MAX_FIELD_LEN)?,
        note: text("note", MAX_NOTE_LEN)?,
    })
}

/// Tags are separated by `;`, `,` or spaces; letters, digits, `-`, `_`, `.` and `:` only, so a tag is
/// safe in a URL, a filter and a CSV cell.
pub fn parse_tags(raw: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw.split([';', ',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        if tag.len() > MAX_TAG_LEN {
            return Err(format!(
                "field too long: tag '{tag}' has more than {MAX_TAG_LEN} characters"
            ));
        }
        if !tag.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            return Err(format!(
                "tag '{tag}' may contain only letters, digits, '-', '_', '.' and ':'"
            ));
        }
        let tag = tag.to_ascii_lowercase();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags per number"));
    }
    Ok(tags)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".into(),
        other => format!("malformed CSV: {other:?}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("write a range as FIRST-LAST, like +15550100000-+15550109999")]
    Shape,
    #[error("{which} number {value:?} is not E.164: {error}")]
    Number { which: &'static str, value: String, error: PhoneError },
    #[error("both ends must have the same number of digits")]
    Lengths,
    #[error("the last number is before the first")]
    Backwards,
    #[error("the range holds {count} numbers; one import may add at most {max}")]
    TooLarge { count: u64, max: usize },
}

/// Expands `+15550100000-+15550109999` into its numbers (both ends included).
pub fn parse_range(spec: &str, attrs: &NumberAttrs) -> Result<Vec<ImportRow>, RangeError> {
    let (a, b) = spec
        .trim()
        .split_once("-+")
        .map(|(a, b)| (a.trim(), format!("+{}", b.trim())))
        .ok_or(RangeError::Shape)?;
    let first = PhoneNumber::parse(a).map_err(|error| RangeError::Number {
        which: "first",
        value: a.into(),
        error,
    })?;
    let last = PhoneNumber::parse(&b).map_err(|error| RangeError::Number {
        which: "last",
        value: b.clone(),
        error,
    })?;
    if first.digits().len() != last.digits().len() {
        return Err(RangeError::Lengths);
    }
    let (lo, hi): (u64, u64) = (
        first.digits().parse().map_err(|_| RangeError::Shape)?,
        last.digits().parse().map_err(|_| RangeError::Shape)?,
    );
    if hi < lo {
        return Err(RangeError::Backwards);
    }
    let count = hi - lo + 1;
    if count > MAX_IMPORT_NUMBERS as u64 {
        return Err(RangeError::TooLarge { count, max: MAX_IMPORT_NUMBERS });
    }
    let width = first.digits().len();
    // Both ends were checked against the numbering plan; the numbers between share their country
    // code and length, so they are built directly rather than re-parsed a million times.
    Ok((lo..=hi)
        .enumerate()
        .map(|(i, n)| ImportRow {
            row: i + 1,
            e164: PhoneNumber::from_trusted(format!("+{n:0width$}")),
            attrs: attrs.clone(),
        })
        .collect())
}

/// A reader that refuses a line longer than [`MAX_LINE_BYTES`], so a 1 GB line without a newline
/// is an error after 64 KiB instead of a 1 GB buffer.
struct LineLimit<R> {
    inner: R,
    since_newline: usize,
    line: usize,
}

impl<R> LineLimit<R> {
    fn new(inner: R) -> Self {
        Self { inner, since_newline: 0, line: 1 }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.since_newline = 0;
                self.line += 1;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {MAX_LINE_BYTES} bytes; is this a CSV file?",
                            self.line
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(plan: &ImportPlan) -> Vec<(usize, String)> {
        plan.errors.iter().map(|e| (e.row, e.reason.clone())).collect()
    }

    #[test]
    fn reads_a_plain_file_with_all_columns() {
        let plan = parse_csv("number,tags,billing_ref,region,note\n+15550100000,nyc;premium,B-1,US-NY,first\n+15550100001,,,,\n".as_bytes());
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(plan.rows[0].row, 2);
        assert_eq!(plan.rows[0].attrs.tags, vec!["nyc", "premium"]);
        assert_eq!(plan.rows[0].attrs.region.as_deref(), Some("US-NY"));
        assert_eq!(plan.rows[1].attrs, NumberAttrs::default());
    }

    /// Cells a spreadsheet would run as formulas are written quoted and read back as they were;
    /// cells that merely start with a quote survive too, and an unquoted file reads as before.
    #[test]
    fn spreadsheet_cells_are_neutralised_and_read_back_as_they_were() {
        let values =
            ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2", "@SUM(A1)", "'=x", "'plain", "ok"];
        let quoted: Vec<String> = values.iter().map(|v| spreadsheet_cell(v).into_owned()).collect();
        assert_eq!(
            quoted,
            [
                "'=HYPERLINK(\"http://x\",\"y\")",
                "'+1+1",
                "'-2",
                "'@SUM(A1)",
                "''=x",
                "''plain",
                "ok"
            ]
        );
        for (v, q) in values.iter().zip(&quoted) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["number", "note", "region"]).unwrap();
            w.write_record(["+15550100000", q, q]).unwrap();
            let plan = parse_csv(&w.into_inner().unwrap()[..]);
            assert!(plan.errors.is_empty(), "{v}: {:?}", plan.errors);
            assert_eq!(plan.rows[0].attrs.note.as_deref(), Some(*v));
            assert_eq!(plan.rows[0].attrs.region.as_deref(), Some(*v));
        }
        let plan = parse_csv("number,tags\n'+15550100000,'-a;b\n".as_bytes());
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.rows[0].e164.as_str(), "+15550100000");
        assert_eq!(plan.rows[0].attrs.tags, ["-a", "b"]);
    }

    #[test]
    fn accepts_bom_crlf_quotes_and_column_order() {
        let plan = parse_csv(
            "\u{FEFF}Region,\"Number\"\r\n\"US, NY\",\"+15550100000\"\r\n\r\nUS,+15550100001\r\n"
                .as_bytes(),
        );
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(plan.rows[0].attrs.region.as_deref(), Some("US, NY"));
        assert_eq!(plan.rows[1].row, 3);
    }

    #[test]
    fn reports_every_bad_row_with_row_value_and_reason() {
        let csv = "number,note\n+15550100000,ok\n5550100001,x\n+15550100000,dup\n+15550100002\n+15550100003,\"a\nb\"\n";
        let plan = parse_csv(csv.as_bytes());
        let r = reasons(&plan);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[0].0, 3);
        assert!(r[0].1.starts_with("not E.164"));
        assert_eq!(plan.errors[0].value, "5550100001");
        assert_eq!(r[1], (4, "duplicate in file (first on row 2)".into()));
        assert_eq!(r[2], (5, "expected 2 fields, found 1".into()));
        assert!(r[3].1.contains("control characters"));
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn header_is_required() {
        let plan = parse_csv("+15550100000\n".as_bytes());
        assert!(plan.errors.iter().any(|e| e.reason.contains("unknown column")));
        assert!(plan.errors.iter().any(|e| e.reason.contains("must name a 'number' column")));
        let plan = parse_csv("".as_bytes());
        assert!(plan.errors[0].reason.contains("empty"));
    }

    #[test]
    fn field_too_long_and_bad_tags_are_named() {
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let plan = parse_csv(
            format!("number,billing_ref,tags\n+15550100000,{long},\n+15550100001,,bad!tag\n")
                .as_bytes(),
        );
        assert_eq!(plan.errors[0].column.as_deref(), Some("billing_ref"));
        assert!(plan.errors[0].reason.starts_with("field too long"));
        assert_eq!(plan.errors[1].column.as_deref(), Some("tags"));
    }

    #[test]
    fn non_utf8_is_reported_not_mangled() {
        let mut bytes = b"number,note\n+15550100000,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let plan = parse_csv(&bytes[..]);
        assert_eq!(plan.errors.len(), 1);
        assert_eq!(plan.errors[0].row, 2);
        assert!(plan.errors[0].reason.contains("UTF-8"));
    }

    #[test]
    fn a_giant_line_is_refused_without_buffering_it() {
        struct Endless;
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf.fill(b'9');
                Ok(buf.len())
            }
        }
        let plan = parse_csv("number\n".as_bytes().chain(Endless));
        assert_eq!(plan.errors.len(), 1);
        assert!(plan.errors[0].reason.contains("longer than"), "{:?}", plan.errors);
    }

    #[test]
    fn ranges_expand_inclusively_and_refuse_nonsense() {
        let rows = parse_range("+15550100000-+15550100009", &NumberAttrs::default()).unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[9].e164.as_str(), "+15550100009");
        assert_eq!(parse_range("+15550100000", &NumberAttrs::default()), Err(RangeError::Shape));
        assert_eq!(
            parse_range("+15550100009-+15550100000", &NumberAttrs::default()),
            Err(RangeError::Backwards)
        );
        assert_eq!(
            parse_range("+15550100000-+1555010000", &NumberAttrs::default()),
            Err(RangeError::Lengths)
        );
        assert!(matches!(
            parse_range("+15550000000-+15559999999", &NumberAttrs::default()),
            Err(RangeError::TooLarge { count: 10_000_000, .. })
        ));
        assert!(matches!(
            parse_range("+1x-+15550100000", &NumberAttrs::default()),
            Err(RangeError::Number { which: "first", .. })
        ));
    }

    #[test]
    fn existing_numbers_become_row_errors() {
        let mut plan = parse_csv("number\n+15550100000\n+15550100001\n".as_bytes());
        plan.reject_existing(&[PhoneNumber::parse("+15550100001").unwrap()].into_iter().collect());
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(reasons(&plan), vec![(3, "already in inventory".to_string())]);
    }
}
