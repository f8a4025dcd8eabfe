//! The snapshot report: every snapshot of every configured vCenter as one list of [`Row`]s,
//! with a summary line per backup risk, rendered as an HTML page (`/report`), CSV, JSON or
//! aligned text (the `report` command, for mail).
//!
//! Rows are built by a pure function ([`rows`]) from the same inventory the collectors read, so
//! the report says what `/metrics` says; [`Report::inputs`] reads the targets' mirrors and
//! never calls vCenter. Facts that other sources will hold (who created a snapshot, from the
//! event history; the last backup, from custom attributes) come in through [`Sourced`].
//!
//! [`Inputs::key`] tells a cache of rendered reports (see [`crate::server`]) what a report was
//! made from, so that it renders again only when that changed.
//!
//! The one-shot `report` command is in [`command`]; the renderers are in `html`, `csv`, `json`
//! and `text`. It owns no HTTP (see [`crate::server`]) and no flag parsing (see [`crate::cli`]).

pub mod command;
mod csv;
mod devices;
mod html;
mod json;
mod text;

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::backup::history::Ledger;
use crate::backup::last_backup;
use crate::config::{Config, ReportConfig};
use crate::exporter::Exporter;
use crate::source::events::EVENTS;
use crate::source::tags::{TAGS, VmTags};
use crate::source::unix_now;
use crate::vsphere::Inventory;
use crate::vsphere::model::{FlatSnapshot, Vm};

pub use html::{Links, content_security_policy};

/// One snapshot of one VM. The field names are the CSV header and the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub vcenter: String,
    pub datacenter_name: String,
    pub cluster_name: String,
    pub host_name: String,
    /// The datastore of the snapshot's data (`.vmsn`) file, i.e. of the VM's working directory.
    pub datastore_name: String,
    pub vm_id: String,
    pub vm_name: String,
    pub snapshot_id: String,
    pub snapshot_name: String,
    pub description: String,
    /// The product of the first backup pattern matching the name, else empty.
    pub backup_product: String,
    /// `createTime` in RFC 3339, UTC.
    pub created: String,
    /// Whole seconds from `created` to the report's time.
    pub age_seconds: i64,
    /// The user of the snapshot's create task, when the event history still holds it.
    pub created_by: Option<String>,
    pub size_bytes: u64,
    /// `size_bytes` over the VM's disk capacity; absent when the capacity is unknown.
    pub disk_share: Option<f64>,
    pub quiesced: bool,
    /// 1 for a root snapshot.
    pub depth: usize,
    /// The VM's `runtime.consolidationNeeded`.
    pub consolidation_needed: bool,
    /// The VM's newest last backup (RFC 3339), when a backup product recorded one.
    pub last_backup: Option<String>,
    /// The VM's disks no snapshot captures, so not in this snapshot either: `reason file`
    /// (reason `independent_persistent`, `independent_nonpersistent` or `physical_rdm`), by `; `.
    pub disks_not_snapshotted: String,
    /// Disks the VM holds from another VM's directory: `file of owner (owner id)`, by `; `.
    pub foreign_disks: String,
}

/// Every snapshot of one vCenter's inventory as of `now` (Unix seconds), VMs by name, each
/// VM's tree depth first with parents before children. `events` (the event follower's
/// ledger, when it runs) says who created each snapshot; the last backup is read from the
/// VM's custom attributes and notes with the configured `last_backup_sources`.
pub fn rows(
    vcenter: &str,
    inventory: &Inventory,
    events: Option<&Ledger>,
    config: &Config,
    now: f64,
) -> Vec<Row> {
    let mut vms: Vec<&Vm> = inventory
        .vms
        .values()
        .filter(|v| v.has_snapshots())
        .map(|v| &**v)
        .collect();
    vms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let mut owners = devices::Owners::of(inventory);
    let mut out = Vec::new();
    for vm in vms {
        let placement = inventory.placement(vm);
        let found = devices::findings(vm, &mut owners);
        let (disks_not_snapshotted, foreign_disks) =
            (found.not_snapshotted_field(), found.foreign_field());
        let capacity = vm.disk_capacity_bytes();
        let last_backup = last_backup_of(inventory, vm, config).map(rfc3339);
        for snap in vm.snapshots() {
            let tree = snap.tree;
            let size_bytes = vm.snapshot_size_bytes(&snap);
            out.push(Row {
                vcenter: vcenter.to_owned(),
                datacenter_name: placement.datacenter_name.to_owned(),
                cluster_name: placement.cluster_name.to_owned(),
                host_name: placement.host_name.to_owned(),
                datastore_name: snapshot_datastore(vm, &snap).to_owned(),
                vm_id: vm.id.clone(),
                vm_name: vm.name.clone(),
                snapshot_id: tree.snapshot.clone(),
                snapshot_name: tree.name.clone(),
                description: tree.description.clone(),
                backup_product: config.backup_product(&tree.name).to_owned(),
                created: rfc3339(tree.create_time_seconds),
                age_seconds: (now - tree.create_time_seconds).floor() as i64,
                created_by: events
                    .and_then(|l| l.created_by(&vm.id, &tree.snapshot, tree.create_time_seconds))
                    .map(str::to_owned),
                size_bytes,
                disk_share: (capacity > 0).then(|| size_bytes as f64 / capacity as f64),
                quiesced: tree.quiesced,
                depth: snap.depth,
                consolidation_needed: vm.consolidation_needed,
                last_backup: last_backup.clone(),
                disks_not_snapshotted: disks_not_snapshotted.clone(),
                foreign_disks: foreign_disks.clone(),
            });
        }
    }
    out
}

/// The newest last backup any configured source reads on the VM (Unix seconds).
fn last_backup_of(inventory: &Inventory, vm: &Vm, config: &Config) -> Option<f64> {
    let settings = &config.backup;
    let readings = last_backup::read(
        &settings.last_backup_sources,
        &settings.last_backup_timezone,
        &inventory.attribute_values(vm),
        &vm.backup.annotation,
    );
    last_backup::newest(&readings)
}

/// The datastore named in the path of the snapshot's data file (`[LocalDS_0] vm/vm-Snapshot1.vmsn`),
/// else of the VM's first file; empty when vCenter gave no file layout.
fn snapshot_datastore<'a>(vm: &'a Vm, snap: &FlatSnapshot<'_>) -> &'a str {
    let Some(layout) = &vm.layout_ex else {
        return "";
    };
    let data_key = layout
        .snapshot
        .iter()
        .find(|l| l.key == snap.tree.snapshot)
        .map(|l| l.data_key);
    let file = data_key
        .and_then(|key| layout.file.iter().find(|f| f.key == key))
        .or_else(|| layout.file.first());
    file.and_then(|f| datastore_of_path(&f.name)).unwrap_or("")
}

/// `ds1` of `[ds1] dir/file`.
fn datastore_of_path(path: &str) -> Option<&str> {
    let rest = path.trim_start().strip_prefix('[')?;
    rest.split_once(']').map(|(name, _)| name)
}

/// Unix seconds as RFC 3339 in UTC (`2026-11-20T10:00:00Z`, fractions only when there are).
fn rfc3339(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round() as i64;
    jiff::Timestamp::from_millisecond(millis)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// How a configured vCenter's mirror stood when the report was made.
#[derive(Debug, Clone, PartialEq)]
pub struct VcenterStatus {
    pub name: String,
    /// True when its inventory is in the report.
    pub synced: bool,
    /// When its mirror was last updated or confirmed current (Unix seconds), 0 if never.
    pub last_update_seconds: f64,
    /// Why it is not in the report.
    pub error: Option<String>,
}

/// One summary line: how many snapshots or VMs carry a risk, and which.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    /// A stable name (`leftover_backup_snapshots`); the HTML line's id is `risk-` and it.
    pub key: &'static str,
    /// What is counted, for people: "Snapshots older than 72h".
    pub title: String,
    pub count: usize,
    /// VM names (and snapshot names for snapshot risks), the first [`MAX_NAMED`] of them.
    pub named: Vec<String>,
}

/// How many items a risk line names before "and N more".
pub const MAX_NAMED: usize = 10;

/// `toolsVersionStatus2` values that need nothing: current, newer than the host's bundle but
/// supported, or managed by the guest's own packages (open-vm-tools), which vCenter cannot judge.
const TOOLS_FINE: &[&str] = &[
    "guestToolsCurrent",
    "guestToolsSupportedNew",
    "guestToolsUnmanaged",
];

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// When it was made (Unix seconds); ages are measured to it.
    pub now: f64,
    pub settings: ReportConfig,
    pub vcenters: Vec<VcenterStatus>,
    pub risks: Vec<Risk>,
    pub rows: Vec<Row>,
}

/// The inputs of a report: each vCenter's status and its inventory when in sync, the
/// configuration and the time.
pub struct Inputs {
    parts: Vec<Gathered>,
    config: Arc<Config>,
    now: f64,
}

/// One vCenter's status with the snapshots of its sources a report reads.
struct Gathered {
    status: VcenterStatus,
    inventory: Option<Arc<Inventory>>,
    events: Option<Arc<Ledger>>,
    tags: Option<Arc<VmTags>>,
}

/// What a report is made from, as a cache of rendered reports needs to tell it: the
/// configuration, and each vCenter's status, inventory and event ledger. Sources publish a new
/// value for each change, so values are told apart by identity. Weak references: a key keeps
/// the values' allocations (so no new value can take an old one's address), not their contents.
#[derive(Debug)]
pub struct InputsKey {
    config: Weak<Config>,
    parts: Vec<PartKey>,
}

#[derive(Debug)]
struct PartKey {
    status: VcenterStatus,
    inventory: Option<Weak<Inventory>>,
    events: Option<Weak<Ledger>>,
    tags: Option<Weak<VmTags>>,
}

impl InputsKey {
    /// Whether both keys name the same inputs (the time aside).
    pub fn same_as(&self, other: &InputsKey) -> bool {
        fn same<T>(a: &Option<Weak<T>>, b: &Option<Weak<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Weak::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        Weak::ptr_eq(&self.config, &other.config)
            && self.parts.len() == other.parts.len()
            && self.parts.iter().zip(&other.parts).all(|(a, b)| {
                a.status == b.status
                    && same(&a.inventory, &b.inventory)
                    && same(&a.events, &b.events)
                    && same(&a.tags, &b.tags)
            })
    }

    /// Whether the configuration it was made with is gone (a reload replaced it).
    pub fn is_gone(&self) -> bool {
        self.config.strong_count() == 0
    }
}

impl Inputs {
    /// The key of these inputs for a cache.
    pub fn key(&self) -> InputsKey {
        InputsKey {
            config: Arc::downgrade(&self.config),
            parts: self
                .parts
                .iter()
                .map(|g| PartKey {
                    status: g.status.clone(),
                    inventory: g.inventory.as_ref().map(Arc::downgrade),
                    events: g.events.as_ref().map(Arc::downgrade),
                    tags: g.tags.as_ref().map(Arc::downgrade),
                })
                .collect(),
        }
    }

    /// The report; CPU work proportional to the snapshots (call it off the async workers).
    pub fn build(&self) -> Report {
        let parts: Vec<Part<'_>> = self
            .parts
            .iter()
            .map(|g| Part {
                status: g.status.clone(),
                inventory: g.inventory.as_deref(),
                events: g.events.as_deref(),
                tags: g.tags.as_deref(),
            })
            .collect();
        Report::build(&parts, &self.config, self.now)
    }
}

/// One vCenter's part of a report: its status and, when in sync, its inventory and (when the
/// event follower runs and has read the history) its event ledger.
pub struct Part<'a> {
    pub status: VcenterStatus,
    pub inventory: Option<&'a Inventory>,
    pub events: Option<&'a Ledger>,
    /// Its vSphere tags, when the `tags` source runs and is in sync.
    pub tags: Option<&'a VmTags>,
}

impl Report {
    /// The report of the given vCenters' inventories as of `now`.
    pub fn build(parts: &[Part<'_>], config: &Config, now: f64) -> Report {
        let mut all = Vec::new();
        let mut vm_risks = VmRisks::default();
        let mut device_risks = devices::DeviceRisks::default();
        let mut no_policy = NoPolicy::default();
        for part in parts {
            if let Some(inventory) = part.inventory {
                all.extend(rows(&part.status.name, inventory, part.events, config, now));
                vm_risks.add(inventory);
                device_risks.add(inventory);
                no_policy.add(&part.status.name, inventory, part.tags, config);
            }
        }
        let settings = config.report.clone();
        let mut risks = vec![
            snapshot_risk(
                "leftover_backup_snapshots",
                format!(
                    "Leftover backup snapshots (a backup product's, older than {})",
                    human_duration(settings.leftover_backup_age)
                ),
                all.iter().filter(|r| is_leftover_backup(r, &settings)),
            ),
            snapshot_risk(
                "old_snapshots",
                format!(
                    "Snapshots older than {}",
                    human_duration(settings.old_snapshot_age)
                ),
                all.iter().filter(|r| is_old(r, &settings)),
            ),
            vm_risk(
                "consolidation_needed",
                "VMs whose disks need consolidation".to_owned(),
                vm_risks.consolidation,
            ),
            vm_risk(
                "tools_not_current",
                "VMs whose VMware Tools are not current (quiescing needs them)".to_owned(),
                vm_risks.tools,
            ),
        ];
        risks.extend(device_risks.risks());
        if !config.tags.backup_policy_categories.is_empty() {
            risks.push(no_policy.risk(&config.tags.backup_policy_categories));
        }
        Report {
            now,
            settings,
            vcenters: parts.iter().map(|p| p.status.clone()).collect(),
            risks,
            rows: all,
        }
    }

    /// What a report of the exporter's targets (`only`: one of them) needs, taken from their
    /// inventory mirrors' and event followers' latest snapshots; a mirror still on its first
    /// sync, then an event follower still reading the history back, is waited for up to
    /// `wait` in all. `None` when `only` names no configured vCenter. Cheap: the rows are built by
    /// [`Inputs::build`], which is CPU work for a blocking thread.
    pub async fn inputs(exporter: &Exporter, only: Option<&str>, wait: Duration) -> Option<Inputs> {
        let targets: Vec<_> = exporter
            .targets()
            .iter()
            .filter(|t| only.is_none_or(|name| t.name() == name))
            .collect();
        if targets.is_empty() {
            return None;
        }
        let started = std::time::Instant::now();
        let mut parts = Vec::with_capacity(targets.len());
        for target in targets {
            let Some(mirror) = target.mirror() else {
                let status = VcenterStatus {
                    name: target.name().to_owned(),
                    synced: false,
                    last_update_seconds: 0.0,
                    error: Some("not started".to_owned()),
                };
                parts.push(Gathered {
                    status,
                    inventory: None,
                    events: None,
                    tags: None,
                });
                continue;
            };
            let published = mirror.feed().settled(wait).await;
            let status = &published.status;
            let inventory = published.value.clone().filter(|_| status.synced);
            let error = match (&inventory, &status.error) {
                (Some(_), _) => None,
                (None, Some(error)) => Some(error.clone()),
                (None, None) if status.attempted => Some("not in sync".to_owned()),
                (None, None) => Some(format!(
                    "no answer to the first sync within {}",
                    human_duration(wait)
                )),
            };
            let status = VcenterStatus {
                name: target.name().to_owned(),
                synced: error.is_none(),
                last_update_seconds: status.last_update_seconds,
                error,
            };
            // Who made each snapshot: the event follower reads the history back once the
            // inventory is in; a one-shot report waits for it within the same bound.
            if inventory.is_some() {
                let left = wait.saturating_sub(started.elapsed());
                target.source_settled(EVENTS, left).await;
            }
            let events = target.source_value::<Ledger>(EVENTS);
            // The VMs in no backup policy: the tags source's first read, within the same bound.
            if inventory.is_some() && !exporter.config().tags.backup_policy_categories.is_empty() {
                let left = wait.saturating_sub(started.elapsed());
                target.source_settled(TAGS, left).await;
            }
            let tags = target.source_value::<VmTags>(TAGS);
            parts.push(Gathered {
                status,
                inventory,
                events,
                tags,
            });
        }
        Some(Inputs {
            parts,
            config: exporter.config().clone(),
            now: unix_now(),
        })
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, RenderError> {
        match format {
            Format::Html => html::render(self).map(String::into_bytes),
            Format::Csv => csv::render(&self.rows),
            Format::Json => json::render(&self.rows),
            Format::Text => Ok(text::render(self).into_bytes()),
        }
    }

    /// The HTML page as the exporter serves it, linking its CSV and JSON forms.
    pub fn render_html_page(&self, links: Links) -> Result<Vec<u8>, RenderError> {
        html::render_page(self, Some(links)).map(String::into_bytes)
    }

    /// The vCenters that could not be read.
    pub fn failed(&self) -> impl Iterator<Item = &VcenterStatus> {
        self.vcenters.iter().filter(|v| !v.synced)
    }
}

/// The formats a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    Text,
    Csv,
    Html,
    Json,
}

impl Format {
    /// The HTTP Content-Type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// A renderer failed (a template or serializer error: a bug, not bad input).
#[derive(Debug, thiserror::Error)]
#[error("rendering the report as {format}: {message}")]
pub struct RenderError {
    pub format: &'static str,
    pub message: String,
}

/// A backup product's snapshot older than the leftover age: the job should have removed it.
pub fn is_leftover_backup(row: &Row, settings: &ReportConfig) -> bool {
    !row.backup_product.is_empty() && older_than(row, settings.leftover_backup_age)
}

/// A snapshot older than the old-snapshot age.
pub fn is_old(row: &Row, settings: &ReportConfig) -> bool {
    older_than(row, settings.old_snapshot_age)
}

fn older_than(row: &Row, age: Duration) -> bool {
    row.age_seconds > 0 && row.age_seconds as u64 > age.as_secs()
}

fn snapshot_risk<'a>(
    key: &'static str,
    title: String,
    rows: impl Iterator<Item = &'a Row>,
) -> Risk {
    let mut count = 0;
    let mut named = Vec::new();
    for row in rows {
        count += 1;
        if named.len() < MAX_NAMED {
            named.push(format!("{}: {}", row.vm_name, row.snapshot_name));
        }
    }
    Risk {
        key,
        title,
        count,
        named,
    }
}

fn vm_risk(key: &'static str, title: String, mut vms: Vec<String>) -> Risk {
    vms.sort();
    let count = vms.len();
    vms.truncate(MAX_NAMED);
    Risk {
        key,
        title,
        count,
        named: vms,
    }
}

/// The VM names of the per-VM risks, over every vCenter in the report.
#[derive(Default)]
struct VmRisks {
    consolidation: Vec<String>,
    tools: Vec<String>,
}

impl VmRisks {
    fn add(&mut self, inventory: &Inventory) {
        for vm in inventory.vms.values() {
            if vm.consolidation_needed {
                self.consolidation.push(vm.name.clone());
            }
            let status = vm.tools_version_status2.as_deref().unwrap_or("");
            if !vm.template && !status.is_empty() && !TOOLS_FINE.contains(&status) {
                self.tools.push(vm.name.clone());
            }
        }
    }
}

/// The powered-on VMs (templates aside) without a tag of `backup_policy_categories`, over every
/// vCenter whose tags are read; the vCenters whose tags are not.
#[derive(Default)]
struct NoPolicy {
    vms: Vec<String>,
    unread: Vec<String>,
}

impl NoPolicy {
    fn add(
        &mut self,
        vcenter: &str,
        inventory: &Inventory,
        tags: Option<&VmTags>,
        config: &Config,
    ) {
        let categories = &config.tags.backup_policy_categories;
        if categories.is_empty() {
            return;
        }
        let Some(tags) = tags else {
            self.unread.push(vcenter.to_owned());
            return;
        };
        for vm in inventory.vms.values() {
            if vm.template || vm.power_state != "poweredOn" || tags.unreadable.contains(&vm.id) {
                continue;
            }
            if !tags
                .of(&vm.id)
                .iter()
                .any(|t| categories.contains(&t.category))
            {
                self.vms.push(vm.name.clone());
            }
        }
    }

    fn risk(self, categories: &[String]) -> Risk {
        let mut title = format!(
            "Powered-on VMs in no backup policy (no tag of {})",
            categories.join(", ")
        );
        if !self.unread.is_empty() {
            title.push_str(&format!("; tags not read for {}", self.unread.join(", ")));
        }
        vm_risk("not_in_backup_policy", title, self.vms)
    }
}

/// `3d 4h`, `5h 2m`, `42s`: the two largest units, for people.
pub fn human_age(seconds: i64) -> String {
    if seconds < 0 {
        return format!("-{}", human_age(-seconds));
    }
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (unit, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 || (!parts.is_empty() && rest == 0) {
            break;
        }
    }
    parts.join(" ")
}

/// A configured threshold as people write it (`72h`, `6h`, `90m`).
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `1.5 GiB`, `24.0 KiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// A share as a percentage (`5.1 %`, `0.04 %` under one percent), empty when unknown.
pub fn human_share(share: Option<f64>) -> String {
    match share.map(|s| s * 100.0) {
        None => String::new(),
        Some(p) if p < 1.0 => format!("{p:.2} %"),
        Some(p) => format!("{p:.1} %"),
    }
}

#[cfg(test)]
mod tests;
