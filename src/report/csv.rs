//! The report's rows as CSV (RFC 4180: a header line of the field names, CRLF line ends,
//! quotes where a field needs them), through the `csv` crate.

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
        writer.serialize(row).map_err(error)?;
    }
    writer.into_inner().map_err(|e| RenderError {
        format: "csv",
        message: e.to_string(),
    })
}

/// The field names of [`Row`], in order.
pub(super) const HEADER: [&str; 20] = [
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
];
