//! The report as plain text for mail: a heading, the vCenters and how current each is, one
//! line per risk, then the snapshots in aligned columns. Names are cut to a readable width and
//! control characters (which a vCenter user may put in a name) are replaced, so a name cannot
//! break the columns or the terminal.

use std::fmt::Write as _;

use super::{
    Report, Row, human_age, human_bytes, human_duration, human_share, is_leftover_backup, is_old,
    rfc3339,
};

/// The widest a name column gets, in characters.
const MAX_WIDTH: usize = 40;

/// The widest an item of a risk line gets: `VM: detail`, where the detail may be a question's
/// text or a disk's path that a mail must show whole.
const MAX_ITEM: usize = 400;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vSphere snapshot report, {}",
        rfc3339(report.now.floor())
    );
    out.push('\n');
    for vc in &report.vcenters {
        let _ = match &vc.error {
            None => writeln!(
                out,
                "vCenter {}: as of {}",
                clean(&vc.name),
                rfc3339(vc.last_update_seconds.floor())
            ),
            Some(error) => writeln!(
                out,
                "vCenter {}: NOT READ: {}",
                clean(&vc.name),
                one_line(error)
            ),
        };
    }
    out.push('\n');
    for risk in &report.risks {
        let _ = write!(out, "{}: {}", risk.title, risk.count);
        if !risk.named.is_empty() {
            let named: Vec<String> = risk.named.iter().map(|n| cut(n, MAX_ITEM)).collect();
            let _ = write!(out, " ({}", named.join(", "));
            if risk.count > named.len() {
                let _ = write!(out, ", and {} more", risk.count - named.len());
            }
            out.push(')');
        }
        out.push('\n');
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{} snapshots (! leftover backup snapshot, * older than {})",
        report.rows.len(),
        human_duration(report.settings.old_snapshot_age)
    );
    if report.rows.is_empty() {
        return out;
    }
    let table: Vec<Vec<String>> = std::iter::once(HEADINGS.map(str::to_owned).to_vec())
        .chain(report.rows.iter().map(|row| cells(report, row)))
        .collect();
    push_aligned(&mut out, &table);
    out
}

const HEADINGS: [&str; 16] = [
    "",
    "VCENTER",
    "CLUSTER",
    "HOST",
    "DATASTORE",
    "VM",
    "SNAPSHOT",
    "BACKUP",
    "CREATED",
    "AGE",
    "SIZE",
    "DISK",
    "QUIESCED",
    "DEPTH",
    "CREATED BY",
    "LAST BACKUP",
];

/// Columns whose values are numbers, aligned right.
const RIGHT: [usize; 4] = [9, 10, 11, 13];

fn cells(report: &Report, row: &Row) -> Vec<String> {
    let mut flag = String::new();
    if is_leftover_backup(row, &report.settings) {
        flag.push('!');
    }
    if is_old(row, &report.settings) {
        flag.push('*');
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    vec![
        flag,
        clean(&row.vcenter),
        clean(&row.cluster_name),
        clean(&row.host_name),
        clean(&row.datastore_name),
        clean(&row.vm_name),
        clean(&row.snapshot_name),
        clean(&row.backup_product),
        row.created.clone(),
        human_age(row.age_seconds),
        human_bytes(row.size_bytes),
        human_share(row.disk_share),
        yes_no(row.quiesced),
        row.depth.to_string(),
        clean(row.created_by.as_deref().unwrap_or("")),
        row.last_backup.clone().unwrap_or_default(),
    ]
}

fn push_aligned(out: &mut String, table: &[Vec<String>]) {
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if RIGHT.contains(&c) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The text on one line: control characters (line breaks, escapes) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A name fit for one cell: on one line, and a long name cut with `…`.
fn clean(text: &str) -> String {
    cut(text, MAX_WIDTH)
}

/// `text` on one line, cut with `…` to `width` characters.
fn cut(text: &str, width: usize) -> String {
    let mut out: String = one_line(text).chars().take(width).collect();
    if text.chars().count() > width {
        out.pop();
        out.push('…');
    }
    out
}
