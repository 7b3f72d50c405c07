//! The Provider Portal's CSV files: numbers to add to a customer (the columns are the API's POST item
//! fields under the labels a spreadsheet shows), numbers to remove, and the export. Reading is strict:
//! every problem is reported by row and column, and a file with any problem is refused whole.

use crate::numbers::{
    Add, AllocatedProduct, Attributes, MessageCapability, Number, NumberType, VoiceDirection,
    VoiceMsgCapacity,
};
use crate::world::Carrier;
use serde::de::DeserializeOwned;
use std::fmt;

/// At most this many numbers a file: Zoom's Provider Portal imports "up to 200 numbers at a time"
/// [doc: Zoom support KB0076468], the API's batch size too. Removal files have the same limit [assume].
pub(crate) const MAX_ROWS: usize = 200;

/// The columns of an import file: the POST item fields of `number-management.openapi.json` [doc], each
/// known by its label or by its API name. Phone Number, SIP Trunk Name and Status are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    PhoneNumber,
    SipTrunkName,
    Status,
    BillingRefId,
    ServiceInfo,
    AllocatedProduct,
    NumberType,
    VoiceDirection,
    VoiceMsgCapacity,
    OutboundDialerNotSupported,
    OutboundCliShareNotSupported,
    MessageCapability,
}

/// (column, label, API field name), in the template's order.
const COLUMNS: [(Column, &str, &str); 12] = [
    (Column::PhoneNumber, "Phone Number", "phone_number"),
    (Column::SipTrunkName, "SIP Trunk Name", "sip_trunk_name"),
    (Column::Status, "Status", "status"),
    (Column::BillingRefId, "Billing Reference ID", "billing_ref_id"),
    (Column::ServiceInfo, "Service Info", "service_info"),
    (Column::AllocatedProduct, "Allocated Product", "allocated_product"),
    (Column::NumberType, "Number Type", "number_type"),
    (Column::VoiceDirection, "Voice Direction", "voice_direction"),
    (Column::VoiceMsgCapacity, "Voice Message Capacity", "voice_msg_capacity"),
    (
        Column::OutboundDialerNotSupported,
        "Outbound Dialer Not Supported",
        "outbound_dialer_not_supported",
    ),
    (
        Column::OutboundCliShareNotSupported,
        "Outbound CLI Share Not Supported",
        "outbound_cli_share_not_supported",
    ),
    (Column::MessageCapability, "Message Capability", "message_capability"),
];

const REQUIRED: [Column; 3] = [Column::PhoneNumber, Column::SipTrunkName, Column::Status];

fn label(c: Column) -> &'static str {
    COLUMNS.iter().find(|(col, _, _)| *col == c).map(|(_, l, _)| *l).unwrap_or("")
}

/// A header or an enum value compared loosely: case, spaces, `_` and `-` do not matter.
fn key(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn column_of(header: &str) -> Option<Column> {
    let k = key(header);
    COLUMNS.iter().find(|(_, l, api)| key(l) == k || key(api) == k).map(|(c, _, _)| *c)
}

/// One problem in a file: where (a row as a spreadsheet numbers it, the header being row 1; a column)
/// and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileError {
    /// None for the file as a whole.
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, "Row {r}, {c}: {}", self.message),
            (Some(r), None) => write!(f, "Row {r}: {}", self.message),
            (None, Some(c)) => write!(f, "Column {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl FileError {
    pub fn file(message: impl Into<String>) -> FileError {
        FileError { row: None, column: None, message: message.into() }
    }

    pub fn row(row: u64, column: Option<&str>, message: impl Into<String>) -> FileError {
        FileError { row: Some(row), column: column.map(str::to_owned), message: message.into() }
    }
}

/// A value as an error message quotes it: short, on one line.
fn quoted(v: &str) -> String {
    let one_line: String = v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(40) {
        Some((at, _)) => format!("\"{}…\"", &one_line[..at]),
        None => format!("\"{one_line}\""),
    }
}

/// The header and the data rows (with their row numbers) of a CSV file: UTF-8 (a BOM is skipped), a
/// header row, at most [`MAX_ROWS`] rows, each with as many cells as the header.
struct Sheet {
    headers: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn read_sheet(bytes: &[u8]) -> Result<Sheet, Vec<FileError>> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        vec![FileError::file("The file is not UTF-8 text: save it as CSV (UTF-8).")]
    })?;
    // csv counts lines by LF and starts a CRLF file's records on the line before: without the CRs, row
    // numbers are the spreadsheet's.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_owned()).collect(),
        Err(e) => return Err(vec![FileError::file(format!("The file is not CSV: {e}"))]),
    };
    if headers.iter().all(String::is_empty) {
        return Err(vec![FileError::file(
            "The file is empty: it needs a header row (Phone Number, ...) and a row per number.",
        )]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map(|p| p.line());
                errors.push(FileError { row, column: None, message: format!("is not CSV: {e}") });
                continue;
            }
        };
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(vec![FileError::file(format!(
                "The file has more than {MAX_ROWS} numbers: give at most {MAX_ROWS} a file."
            ))]);
        }
        if record.len() != headers.len() {
            errors.push(FileError::row(
                row,
                None,
                format!("has {} cells; the header row has {}", record.len(), headers.len()),
            ));
            continue;
        }
        rows.push((row, record.iter().map(|c| c.trim().to_owned()).collect()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec![FileError::file("The file has no numbers: add a row per number.")]);
    }
    Ok(Sheet { headers, rows })
}

/// Where each known column is, refusing unknown and repeated columns (a misspelt optional column would
/// otherwise be dropped without a word) and missing required ones.
fn import_columns(headers: &[String]) -> Result<Vec<(usize, Column)>, Vec<FileError>> {
    let mut found: Vec<(usize, Column)> = Vec::new();
    let mut errors = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        match column_of(h) {
            None => errors.push(FileError::file(format!(
                "The header row has an unknown column {}: the columns are {}.",
                quoted(h),
                COLUMNS.iter().map(|(_, l, _)| *l).collect::<Vec<_>>().join(", ")
            ))),
            Some(c) if found.iter().any(|(_, f)| *f == c) => errors.push(FileError {
                row: None,
                column: Some(label(c).into()),
                message: "appears twice in the header row".into(),
            }),
            Some(c) => found.push((i, c)),
        }
    }
    for c in REQUIRED {
        if !found.iter().any(|(_, f)| *f == c) {
            errors.push(FileError {
                row: None,
                column: Some(label(c).into()),
                message: "is required: the header row has no such column".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// An enum cell: one of `options` (the API's values), compared loosely ("Zoom Phone" is ZOOM_PHONE).
fn one_of<T: DeserializeOwned>(value: &str, options: &[&str]) -> Result<T, String> {
    options
        .iter()
        .find(|o| key(o) == key(value))
        .and_then(|o| serde_json::from_value(serde_json::Value::String((*o).to_owned())).ok())
        .ok_or_else(|| format!("{} must be one of {}", quoted(value), options.join(", ")))
}

fn yes_no(value: &str) -> Result<bool, String> {
    match key(value).as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{} must be true or false", quoted(value))),
    }
}

/// The number's status as the portal shows it (Normal, Pending) or as the API sends it.
fn status(value: &str) -> Result<bool, String> {
    match key(value).as_str() {
        "normal" | "active" | "true" | "1" => Ok(true),
        "pending" | "inactive" | "false" | "0" => Ok(false),
        _ => Err(format!(
            "{} must be Normal (active) or Pending (inactive, e.g. a port-in not done yet)",
            quoted(value)
        )),
    }
}

fn at_most(value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(value.to_owned())
    }
}

/// A row of an import file, with its row number.
pub(crate) struct ImportRow {
    pub row: u64,
    pub add: Add,
}

/// Reads a file of numbers to add. The per-row checks are the API's for a POST item [doc]: E.164, one of
/// the carrier's SIP trunks, a status, lengths and enum values.
pub(crate) fn read_import(
    bytes: &[u8],
    carrier: &Carrier,
) -> Result<Vec<ImportRow>, Vec<FileError>> {
    let sheet = read_sheet(bytes)?;
    let columns = import_columns(&sheet.headers)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (row, cells) in sheet.rows {
        let mut add = Add {
            phone_number: String::new(),
            sip_trunk_name: String::new(),
            status: true,
            attributes: Attributes::default(),
        };
        let mut row_ok = true;
        for &(i, column) in &columns {
            let value = cells.get(i).map(String::as_str).unwrap_or("");
            if value.is_empty() {
                if REQUIRED.contains(&column) {
                    errors.push(FileError::row(row, Some(label(column)), "is required"));
                    row_ok = false;
                }
                continue;
            }
            if let Err(message) = set(&mut add, column, value, carrier) {
                errors.push(FileError::row(row, Some(label(column)), message));
                row_ok = false;
            }
        }
        if row_ok {
            out.push(ImportRow { row, add });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn set(add: &mut Add, column: Column, value: &str, carrier: &Carrier) -> Result<(), String> {
    let a = &mut add.attributes;
    match column {
        Column::PhoneNumber => {
            add.phone_number = crate::e164::normalize(value).ok_or_else(|| {
                format!("{} is not an E.164 phone number such as +12065550100", quoted(value))
            })?;
        }
        Column::SipTrunkName => {
            if !carrier.sip_trunk_names.iter().any(|t| t == value) {
                return Err(format!(
                    "{} is not one of your SIP trunks ({})",
                    quoted(value),
                    carrier.sip_trunk_names.join(", ")
                ));
            }
            add.sip_trunk_name = value.to_owned();
        }
        Column::Status => add.status = status(value)?,
        // The new generation's limits [doc].
        Column::BillingRefId => a.billing_ref_id = Some(at_most(value, 60)?),
        Column::ServiceInfo => a.service_info = Some(at_most(value, 255)?),
        Column::AllocatedProduct => {
            a.allocated_product = Some(one_of::<AllocatedProduct>(
                value,
                &["UNALLOCATED", "ZOOM_PHONE", "ZOOM_CONTACT_CENTER"],
            )?)
        }
        Column::NumberType => {
            a.number_type = Some(one_of::<NumberType>(
                value,
                &["Mobile", "Toll", "TollFree", "VirtualService"],
            )?)
        }
        Column::VoiceDirection => {
            a.voice_direction = Some(one_of::<VoiceDirection>(
                value,
                &["INBOUND_AND_OUTBOUND", "INBOUND_ONLY", "OUTBOUND_ONLY", "NOT_SUPPORTED"],
            )?)
        }
        Column::VoiceMsgCapacity => {
            a.voice_msg_capacity =
                Some(one_of::<VoiceMsgCapacity>(value, &["ZOOM_PHONE_USER_ONLY", "MULTI_USE"])?)
        }
        Column::OutboundDialerNotSupported => {
            a.outbound_dialer_not_supported = Some(yes_no(value)?)
        }
        Column::OutboundCliShareNotSupported => {
            a.outbound_cli_share_not_supported = Some(yes_no(value)?)
        }
        Column::MessageCapability => {
            a.message_capability = Some(one_of::<MessageCapability>(
                value,
                &["NOT_APPLICABLE", "SUPPORTED", "NOT_SUPPORTED"],
            )?)
        }
    }
    Ok(())
}

/// Reads a file of numbers to remove: a Phone Number column (other columns, such as an export's, are
/// ignored); returns each row's number and row.
pub(crate) fn read_removal(bytes: &[u8]) -> Result<Vec<(u64, String)>, Vec<FileError>> {
    let sheet = read_sheet(bytes)?;
    let Some(at) = sheet.headers.iter().position(|h| column_of(h) == Some(Column::PhoneNumber))
    else {
        return Err(vec![FileError {
            row: None,
            column: Some(label(Column::PhoneNumber).into()),
            message: "is required: the header row has no such column".into(),
        }]);
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (row, cells) in sheet.rows {
        let value = cells.get(at).map(String::as_str).unwrap_or("");
        match crate::e164::normalize(value) {
            Some(e164) => out.push((row, e164)),
            None if value.is_empty() => {
                errors.push(FileError::row(row, Some(label(Column::PhoneNumber)), "is required"))
            }
            None => errors.push(FileError::row(
                row,
                Some(label(Column::PhoneNumber)),
                format!("{} is not an E.164 phone number such as +12065550100", quoted(value)),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The template a carrier fills in: the header row and one example row.
pub(crate) fn template(carrier: &Carrier) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let trunk = carrier.sip_trunk_names.first().map(String::as_str).unwrap_or("");
    let _ = w.write_record(COLUMNS.iter().map(|(_, l, _)| *l));
    let _ = w.write_record([
        "+12065550100",
        trunk,
        "Normal",
        "",
        "",
        "ZOOM_PHONE",
        "",
        "INBOUND_AND_OUTBOUND",
        "MULTI_USE",
        "false",
        "false",
        "NOT_APPLICABLE",
    ]);
    finish(w)
}

/// One exported number: the number and its customer's name and account number.
pub(crate) struct Exported<'a> {
    pub number: &'a Number,
    pub customer_name: &'a str,
    pub customer_account_number: &'a str,
}

/// The export: every column of the listing, with the customer's name and account number. Free text
/// that a spreadsheet would run as a formula is prefixed with `'` (OWASP's advice on CSV injection).
pub(crate) fn export<'a>(rows: impl Iterator<Item = Exported<'a>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "Phone Number",
        "Customer Account Name",
        "Customer Account Number",
        "SIP Trunk Name",
        "Status",
        "Number Pool Status",
        "Assigned",
        "Billing Reference ID",
        "Service Info",
        "Allocated Product",
        "Number Type",
        "Voice Direction",
        "Voice Message Capacity",
        "Outbound Dialer Not Supported",
        "Outbound CLI Share Not Supported",
        "Message Capability",
    ]);
    for r in rows {
        let n = r.number;
        let _ = w.write_record([
            n.phone_number.clone(),
            inert(r.customer_name),
            inert(r.customer_account_number),
            n.sip_trunk_name.clone(),
            if n.status { "Normal" } else { "Pending" }.to_owned(),
            n.pool_status().label().to_owned(),
            n.assigned().to_string(),
            inert(n.billing_ref_id.as_deref().unwrap_or("")),
            inert(n.service_info.as_deref().unwrap_or("")),
            api_value(&n.allocated_product),
            n.number_type.as_ref().map(api_value).unwrap_or_default(),
            api_value(&n.voice_direction),
            api_value(&n.voice_msg_capacity),
            n.outbound_dialer_not_supported.to_string(),
            n.outbound_cli_share_not_supported.to_string(),
            api_value(&n.message_capability),
        ]);
    }
    finish(w)
}

/// An enum as the API spells it.
fn api_value(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn finish(w: csv::Writer<Vec<u8>>) -> String {
    // Writing to a Vec cannot fail, and every cell is UTF-8.
    w.into_inner().ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier() -> Carrier {
        Carrier {
            name: "C".into(),
            carrier_code: 1,
            sip_trunk_names: vec!["t1".into(), "t2".into()],
            account_id: None,
        }
    }

    fn errors(bytes: &str) -> Vec<String> {
        match read_import(bytes.as_bytes(), &carrier()) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn labels_or_api_names_bom_crlf_and_quotes_are_read() {
        let file = "\u{feff}phone_number,SIP Trunk Name,status,\"Service Info\",Allocated Product,number type\r\n\
                    12065550100,t1,Pending,\"Main, line\",Zoom Phone,Toll Free\r\n";
        let rows =
            read_import(file.as_bytes(), &carrier()).map_err(|e| format!("{e:?}")).expect("ok");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.row, r.add.phone_number.as_str(), r.add.status), (2, "+12065550100", false));
        assert_eq!(r.add.attributes.service_info.as_deref(), Some("Main, line"));
        assert_eq!(r.add.attributes.allocated_product, Some(AllocatedProduct::ZoomPhone));
        assert_eq!(r.add.attributes.number_type, Some(NumberType::TollFree));
    }

    #[test]
    fn every_bad_cell_is_named_by_row_and_column() {
        let e = errors(
            "Phone Number,SIP Trunk Name,Status,Voice Direction\n\
             +12065550100,t1,Normal,INBOUND_ONLY\n\
             +1206,t3,Maybe,SIDEWAYS\n\
             ,t1,Normal,\n",
        );
        assert_eq!(
            e,
            vec![
                "Row 3, Phone Number: \"+1206\" is not an E.164 phone number such as +12065550100",
                "Row 3, SIP Trunk Name: \"t3\" is not one of your SIP trunks (t1, t2)",
                "Row 3, Status: \"Maybe\" must be Normal (active) or Pending (inactive, e.g. a port-in not done yet)",
                "Row 3, Voice Direction: \"SIDEWAYS\" must be one of INBOUND_AND_OUTBOUND, INBOUND_ONLY, OUTBOUND_ONLY, NOT_SUPPORTED",
                "Row 4, Phone Number: is required",
            ]
        );
    }

    #[test]
    fn the_header_must_name_known_columns_once_and_the_required_ones() {
        let e = errors("Phone Number,Trunk,Status,status\n+12065550100,t1,Normal,Normal\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("unknown column \"Trunk\""), "{e:?}");
        assert!(e[1].starts_with("Column Status: appears twice"), "{e:?}");
        assert!(e[2].starts_with("Column SIP Trunk Name: is required"), "{e:?}");
    }

    #[test]
    fn files_that_are_empty_too_long_ragged_or_not_utf8_are_refused() {
        assert!(errors("")[0].contains("empty"));
        assert!(errors("Phone Number,SIP Trunk Name,Status\n")[0].contains("no numbers"));
        let long: String = std::iter::once("Phone Number,SIP Trunk Name,Status\n".to_owned())
            .chain((0..201).map(|i| format!("+1206555{i:04},t1,Normal\n")))
            .collect();
        assert!(errors(&long)[0].contains("more than 200"));
        assert_eq!(
            errors("Phone Number,SIP Trunk Name,Status\n+12065550100,t1\n"),
            vec!["Row 2: has 2 cells; the header row has 3"]
        );
        let e = read_import(b"Phone Number\n\xff\n", &carrier()).err().expect("refused");
        assert!(e[0].message.contains("UTF-8"));
    }

    #[test]
    fn a_removal_file_needs_only_phone_numbers_and_ignores_other_columns() {
        let rows = read_removal(
            b"Customer Account Name,Phone Number\nAcme,+12065550100\nAcme,12065550101\n",
        )
        .expect("ok");
        assert_eq!(rows, vec![(2, "+12065550100".into()), (3, "+12065550101".into())]);
        let e = read_removal(b"Number\n+12065550100\n").expect_err("refused");
        assert_eq!(
            e[0].to_string(),
            "Column Phone Number: is required: the header row has no such column"
        );
    }

    #[test]
    fn the_export_defuses_formulas_and_reads_back_as_a_removal_file() {
        let mut n = Number::new("+12065550100".into(), "a".into(), 1, "t1".into(), true, 0);
        n.service_info = Some("=HYPERLINK(\"x\")".into());
        let csv = export(std::iter::once(Exported {
            number: &n,
            customer_name: "Acme",
            customer_account_number: "123",
        }));
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(
            csv.lines()
                .nth(1)
                .expect("row")
                .starts_with("+12065550100,Acme,123,t1,Normal,In Use,false"),
            "{csv}"
        );
        assert_eq!(read_removal(csv.as_bytes()).expect("ok"), vec![(2, "+12065550100".into())]);
        let t = template(&carrier());
        assert_eq!(read_import(t.as_bytes(), &carrier()).map(|r| r.len()).ok(), Some(1));
    }
}
