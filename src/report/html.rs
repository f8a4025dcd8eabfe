//! The report as one HTML page, through an askama template (`templates/report.html`) that
//! escapes every value: VM and snapshot names come from any vCenter user, and a snapshot named
//! `<script>…</script>` must show as text. The page's CSS and JavaScript (sorting, filtering) are
//! compiled into the binary and inlined, so the page needs nothing from elsewhere and works as
//! a mail attachment; [`content_security_policy`] allows exactly those two and nothing else.

use std::sync::LazyLock;

use askama::Template;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{
    RenderError, Report, Row, human_age, human_bytes, human_duration, human_share,
    is_leftover_backup, is_old, rfc3339,
};

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// The Content-Security-Policy of the page: its own inline style and script (by hash), nothing
/// else: no other script, no image, no connection, no form, no frame. Should escaping ever
/// fail, a hostile name could still not run script.
pub fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(CSS),
            hash(JS)
        )
    });
    &POLICY
}

/// Where the served page links its CSV and JSON forms.
pub struct Links {
    pub csv: String,
    pub json: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    css: &'static str,
    js: &'static str,
    generated: String,
    old_age: String,
    links: Option<Links>,
    vcenters: Vec<VcenterLine<'a>>,
    risks: &'a [super::Risk],
    columns: &'static [Column],
    rows: Vec<HtmlRow<'a>>,
}

struct VcenterLine<'a> {
    name: &'a str,
    as_of: String,
    error: Option<&'a str>,
}

struct Column {
    title: &'static str,
    /// `number` or `text`: how the script compares the column's cells.
    kind: &'static str,
    /// The order of a first click: `descending` for ages and sizes (largest first).
    first: &'static str,
}

const fn column(title: &'static str, kind: &'static str, first: &'static str) -> Column {
    Column { title, kind, first }
}

/// The columns, in the order [`cells`] fills them.
static COLUMNS: [Column; 18] = [
    column("vCenter", "text", "ascending"),
    column("Datacenter", "text", "ascending"),
    column("Cluster", "text", "ascending"),
    column("Host", "text", "ascending"),
    column("Datastore", "text", "ascending"),
    column("VM", "text", "ascending"),
    column("Snapshot", "text", "ascending"),
    column("Description", "text", "ascending"),
    column("Backup product", "text", "ascending"),
    column("Created (UTC)", "number", "ascending"),
    column("Age", "number", "descending"),
    column("Created by", "text", "ascending"),
    column("Size", "number", "descending"),
    column("Disk share", "number", "descending"),
    column("Quiesced", "text", "ascending"),
    column("Depth", "number", "descending"),
    column("Consolidation needed", "text", "descending"),
    column("Last backup (UTC)", "text", "ascending"),
];

struct HtmlRow<'a> {
    /// `leftover`, `old`, both or none: the highlight.
    class: String,
    vm_id: &'a str,
    snapshot_id: &'a str,
    cells: Vec<Cell<'a>>,
}

struct Cell<'a> {
    text: std::borrow::Cow<'a, str>,
    /// What the script sorts by, when not the text.
    sort: Option<String>,
    /// A tooltip (the managed object id of a VM or snapshot).
    title: Option<&'a str>,
    /// Aligned right.
    number: bool,
    /// Free text that may wrap (names and descriptions); other cells stay on one line.
    wrap: bool,
}

fn text(value: &str) -> Cell<'_> {
    Cell {
        text: value.into(),
        sort: None,
        title: None,
        number: false,
        wrap: false,
    }
}

fn wrapping(value: &str) -> Cell<'_> {
    Cell {
        wrap: true,
        ..text(value)
    }
}

fn number(shown: String, sort: String) -> Cell<'static> {
    Cell {
        text: shown.into(),
        sort: Some(sort),
        title: None,
        number: true,
        wrap: false,
    }
}

fn titled<'a>(value: &'a str, title: &'a str) -> Cell<'a> {
    Cell {
        title: Some(title),
        ..wrapping(value)
    }
}

fn yes_no(value: bool) -> Cell<'static> {
    text(if value { "yes" } else { "no" })
}

fn cells<'a>(report: &Report, row: &'a Row) -> Vec<Cell<'a>> {
    let created_seconds = report.now.floor() as i64 - row.age_seconds;
    vec![
        text(&row.vcenter),
        text(&row.datacenter_name),
        text(&row.cluster_name),
        text(&row.host_name),
        text(&row.datastore_name),
        Cell {
            wrap: false,
            ..titled(&row.vm_name, &row.vm_id)
        },
        titled(&row.snapshot_name, &row.snapshot_id),
        wrapping(&row.description),
        text(&row.backup_product),
        Cell {
            number: false,
            ..number(row.created.clone(), created_seconds.to_string())
        },
        number(human_age(row.age_seconds), row.age_seconds.to_string()),
        text(row.created_by.as_deref().unwrap_or("")),
        number(human_bytes(row.size_bytes), row.size_bytes.to_string()),
        number(
            human_share(row.disk_share),
            row.disk_share.map_or_else(String::new, |s| s.to_string()),
        ),
        yes_no(row.quiesced),
        number(row.depth.to_string(), row.depth.to_string()),
        yes_no(row.consolidation_needed),
        text(row.last_backup.as_deref().unwrap_or("")),
    ]
}

fn html_row<'a>(report: &Report, row: &'a Row) -> HtmlRow<'a> {
    let mut classes = Vec::new();
    if is_leftover_backup(row, &report.settings) {
        classes.push("leftover");
    }
    if is_old(row, &report.settings) {
        classes.push("old");
    }
    HtmlRow {
        class: classes.join(" "),
        vm_id: &row.vm_id,
        snapshot_id: &row.snapshot_id,
        cells: cells(report, row),
    }
}

/// The page, self-contained (no links to the exporter): what the `report` command writes.
pub(super) fn render(report: &Report) -> Result<String, RenderError> {
    render_page(report, None)
}

/// The page; `links` adds links to the landing page and the CSV and JSON forms.
pub(super) fn render_page(report: &Report, links: Option<Links>) -> Result<String, RenderError> {
    let page = Page {
        css: CSS,
        js: JS,
        generated: rfc3339(report.now.floor()),
        old_age: human_duration(report.settings.old_snapshot_age),
        links,
        vcenters: report
            .vcenters
            .iter()
            .map(|vc| VcenterLine {
                name: &vc.name,
                as_of: rfc3339(vc.last_update_seconds.floor()),
                error: vc.error.as_deref(),
            })
            .collect(),
        risks: &report.risks,
        columns: &COLUMNS,
        rows: report.rows.iter().map(|r| html_row(report, r)).collect(),
    };
    page.render().map_err(|e| RenderError {
        format: "html",
        message: e.to_string(),
    })
}
