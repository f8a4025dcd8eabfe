//! The report's rows as JSON: an array of objects keyed by the field names, `null` for what is
//! unknown (`created_by` without the event follower's create task, `disk_share` without disk
//! capacity, `last_backup` without a readable backup attribute or notes line).

use super::{RenderError, Row};

pub(super) fn render(rows: &[Row]) -> Result<Vec<u8>, RenderError> {
    let mut out = serde_json::to_vec_pretty(rows).map_err(|e| RenderError {
        format: "json",
        message: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(out)
}
