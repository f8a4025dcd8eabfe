//! The render cache of per-VM collectors: their text kept per shard of VMs and per metric
//! family, so that a change of one VM renders (and gzips) one shard again, not every VM.
//!
//! A shard is a run of VMs in id order (the inventory's `BTreeMap` order), about
//! [`SHARD_VMS`] of them. It keeps the `Arc` of each VM it rendered: the mirror publishes
//! every version of the inventory with the `Arc`s of unchanged VMs shared, so
//! [`Arc::ptr_eq`] against the next version tells which shards changed, with no bookkeeping
//! of its own. A collector opts in with [`Collector::per_vm`] (its output is the
//! concatenation of what it writes for each VM of [`Context::vms`], in order); everything else
//! its per-VM output reads is part of the cache's key: the configuration and the versions of
//! the other sources it reads (the caller's key), and the placement facts of the inventory
//! (hosts' names and parents, compute resources, folders, datacenters, custom field names),
//! compared with the last render's.
//!
//! A shard's families are [`Chunk`]s: text rendered once and gzipped at most once, so an
//! unchanged shard is neither rendered nor compressed again, and the page goes out as one gzip
//! member per chunk. Shards whose VMs all stayed keep their chunks; the layout is kept
//! between versions (each shard runs from its first VM's id to the next shard's), a shard
//! grown past twice [`SHARD_VMS`] is split and a small one is merged into its neighbour.
//! Which shards exist never shows in the text: the page is the same bytes as a render of
//! every VM at once.
//!
//! A per-VM collector's series over many VMs (sums per host or datastore, disks one VM holds
//! of another) are its rest ([`Part::Rest`]), written once per update from each shard's
//! [summary](Collector::summarize), which is kept beside the shard's chunks and made again
//! with them: a one-VM change summarizes one shard, not every VM.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tracing::warn;

use super::{Collector, Context, Part, Run, ShardView, Sink, Summary, catalogue};
use crate::vsphere::Inventory;
use crate::vsphere::model::{ComputeResource, CustomField, Datacenter, Folder, MoId, MoRef, Vm};

/// The VMs a shard aims at. Measured at 40,000 VMs (docs/performance.md): smaller shards
/// render a one-VM change faster but make more gzip members, each compressed alone.
pub const SHARD_VMS: usize = 256;

/// Text rendered once, gzipped at most once: one gzip member (RFC 1952 allows a series of
/// members, read as one body by HTTP clients, Go's and so Prometheus' among them).
#[derive(Debug)]
pub struct Chunk {
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Text kept as it is, gzipped on first use (a page's fresh parts, the families' headers).
    Text {
        segments: Vec<Bytes>,
        gzip: OnceLock<Bytes>,
    },
    /// Text gzipped when it was made, and only the gzip member kept: cached output, which
    /// scrapes (Prometheus asks for gzip) send as it is, at about a tenth of the text's memory.
    /// A scrape without gzip has it decompressed.
    Packed { gzip: Bytes, text_len: usize },
}

impl Chunk {
    /// A chunk of text, gzipped on first use.
    pub fn new(segments: Vec<Bytes>) -> Arc<Chunk> {
        Arc::new(Chunk {
            body: Body::Text {
                segments,
                gzip: OnceLock::new(),
            },
        })
    }

    /// A chunk of cached output: gzipped now, its text not kept. Blocking: call it off the
    /// async workers.
    pub fn packed(text: &[u8]) -> Arc<Chunk> {
        Arc::new(Chunk {
            body: Body::Packed {
                gzip: gzip(&[text]),
                text_len: text.len(),
            },
        })
    }

    /// The chunk's text (decompressed from a packed chunk: blocking, call it off the async
    /// workers).
    pub fn segments(&self) -> Vec<Bytes> {
        match &self.body {
            Body::Text { segments, .. } => segments.clone(),
            Body::Packed { gzip, text_len } => {
                let mut text = Vec::with_capacity(*text_len);
                // A member this process made always decompresses.
                let _ = flate2::read::GzDecoder::new(&gzip[..]).read_to_end(&mut text);
                vec![Bytes::from(text)]
            }
        }
    }

    /// The chunk as one gzip member, compressed at most once. Blocking: call it off the async
    /// workers.
    pub fn gzipped(&self) -> Bytes {
        match &self.body {
            Body::Text { segments, gzip: g } => g.get_or_init(|| gzip(segments)).clone(),
            Body::Packed { gzip, .. } => gzip.clone(),
        }
    }

    /// The bytes the chunk holds: its text, and its gzip member once made.
    pub fn held_bytes(&self) -> usize {
        match &self.body {
            Body::Text { segments, gzip } => {
                segments.iter().map(|s| s.len()).sum::<usize>() + gzip.get().map_or(0, Bytes::len)
            }
            Body::Packed { gzip, .. } => gzip.len(),
        }
    }

    /// True when the chunk's text is `text`: compared where the lengths agree, a packed
    /// chunk decompressed for it (inflating is several times cheaper than deflating, which a
    /// match saves). Blocking: call it off the async workers.
    pub fn has_text(&self, text: &[u8]) -> bool {
        if self.text_len() != text.len() {
            return false;
        }
        let segments = self.segments();
        let mut at = 0;
        for segment in &segments {
            if text.get(at..at + segment.len()) != Some(&segment[..]) {
                return false;
            }
            at += segment.len();
        }
        at == text.len()
    }

    /// The length of the chunk's text.
    pub fn text_len(&self) -> usize {
        match &self.body {
            Body::Text { segments, .. } => segments.iter().map(|s| s.len()).sum(),
            Body::Packed { text_len, .. } => *text_len,
        }
    }
}

/// One gzip member of `segments`, at the fastest level (a page is compressed once a change,
/// and sent many times; the report once a render). Blocking: call it off the async workers.
pub fn gzip<S: AsRef<[u8]>>(segments: &[S]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for segment in segments {
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(segment.as_ref());
    }
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// A collector's output: per catalogue entry (by its index), the chunks of its samples in
/// page order; empty for families it wrote nothing to.
pub type Families = Vec<Vec<Arc<Chunk>>>;

/// A sink's families as one chunk each (a collector rendered whole).
pub fn whole(families: Vec<Bytes>) -> Families {
    families
        .into_iter()
        .map(|f| {
            if f.is_empty() {
                Vec::new()
            } else {
                vec![Chunk::packed(&f)]
            }
        })
        .collect()
}

/// One per-VM collector to bring up to date, with the key of what its output reads besides the
/// inventory (the configuration's id, the other sources' versions).
pub struct ShardJob<'c> {
    pub collector: &'c dyn Collector,
    pub key: Vec<u64>,
}

/// The shards of one vCenter's VMs and the per-VM collectors' chunks in each.
pub struct VmShards {
    /// The VMs a shard aims at ([`SHARD_VMS`]).
    shard_vms: usize,
    shards: Vec<Shard>,
    /// The placement facts the chunks were rendered with.
    facts: Option<VmFacts>,
    /// Per collector (by name), the key its chunks were rendered under.
    keys: BTreeMap<&'static str, Vec<u64>>,
}

struct Shard {
    /// The VMs, in id order; a VM of the next version falls in the last shard whose first id
    /// is not above its own.
    vms: Vec<Arc<Vm>>,
    /// Per collector (by name), its non-empty families over these VMs: (catalogue index, text).
    out: BTreeMap<&'static str, Vec<(usize, Arc<Chunk>)>>,
    /// Per collector (by name), its [summary](Collector::summarize) of these VMs.
    summaries: BTreeMap<&'static str, Summary>,
    /// The chunks of this shard's place before its VMs changed, during one update: a family
    /// rendered again to the same text keeps its chunk (and gzip member).
    previous: BTreeMap<&'static str, Vec<(usize, Arc<Chunk>)>>,
}

impl Shard {
    fn start(&self) -> &str {
        self.vms.first().map_or("", |vm| vm.id.as_str())
    }
}

impl Default for VmShards {
    fn default() -> Self {
        VmShards::with_shard_vms(SHARD_VMS)
    }
}

impl VmShards {
    /// No shards yet, aiming at `shard_vms` VMs a shard (at least 4).
    pub fn with_shard_vms(shard_vms: usize) -> Self {
        VmShards {
            shard_vms: shard_vms.max(4),
            shards: Vec::new(),
            facts: None,
            keys: BTreeMap::new(),
        }
    }

    /// Brings the shards up to `ctx.inventory` for `jobs` and returns each job's families and
    /// run, in order: a shard is rendered again for a collector when one of its VMs changed
    /// (or came or went), when the collector's key or the placement facts changed, or when it
    /// has no output of the collector. Chunks of collectors neither in `jobs` nor in `keep`
    /// (turned off, a source out of sync) are dropped.
    pub fn update(
        &mut self,
        ctx: &Context<'_>,
        jobs: &[ShardJob<'_>],
        keep: &[&'static str],
    ) -> Vec<(Families, Run)> {
        let facts_changed = !self
            .facts
            .as_ref()
            .is_some_and(|f| f.matches(ctx.inventory));
        if facts_changed {
            self.facts = Some(VmFacts::of(ctx.inventory));
        }
        let wanted =
            |name: &str| jobs.iter().any(|j| j.collector.name() == name) || keep.contains(&name);
        self.keys.retain(|name, _| wanted(name));
        let stale: Vec<bool> = jobs
            .iter()
            .map(|job| {
                let name = job.collector.name();
                let stale = facts_changed || self.keys.get(name) != Some(&job.key);
                self.keys.insert(name, job.key.clone());
                stale
            })
            .collect();
        self.relayout(ctx.inventory);
        let mut runs: Vec<(f64, bool)> = vec![(0.0, true); jobs.len()];
        for shard in &mut self.shards {
            shard.out.retain(|name, _| wanted(name));
            shard.summaries.retain(|name, _| wanted(name));
            for ((job, stale), run) in jobs.iter().zip(&stale).zip(&mut runs) {
                let name = job.collector.name();
                if !stale && shard.out.contains_key(name) {
                    continue;
                }
                let started = Instant::now();
                let old = shard.out.get(name).or(shard.previous.get(name));
                let rendered = render_shard(job.collector, ctx, &shard.vms, old);
                let summary = job.collector.summarize(ctx, &shard.vms);
                run.0 += started.elapsed().as_secs_f64();
                match summary {
                    Some(summary) => shard.summaries.insert(name, summary),
                    None => shard.summaries.remove(name),
                };
                match rendered {
                    Some(chunks) => {
                        shard.out.insert(name, chunks);
                    }
                    None => {
                        shard.out.remove(name);
                        run.1 = false;
                    }
                }
            }
            shard.previous.clear();
        }
        jobs.iter()
            .zip(runs)
            .map(|(job, (mut seconds, mut ok))| {
                let name = job.collector.name();
                let started = Instant::now();
                let rest = if ok {
                    self.rest(job.collector, ctx)
                } else {
                    None
                };
                seconds += started.elapsed().as_secs_f64();
                ok &= rest.is_some();
                let run = Run {
                    collector: name,
                    seconds,
                    ok,
                };
                let families = match rest {
                    Some(rest) => self.families(name, rest),
                    None => Vec::new(),
                };
                (families, run)
            })
            .collect()
    }

    /// A collector's [`Part::Rest`] from every shard's summary: its non-empty families, or
    /// `None` when it failed (logged, with the vCenter and the collector).
    fn rest(&self, collector: &dyn Collector, ctx: &Context<'_>) -> Option<Vec<(usize, Bytes)>> {
        let name = collector.name();
        let views: Vec<ShardView<'_>> = self
            .shards
            .iter()
            .map(|shard| ShardView {
                vms: &shard.vms,
                summary: shard.summaries.get(name),
            })
            .collect();
        run_part(collector, ctx, Part::Rest(&views))
    }

    /// A collector's chunks of every shard, family by family, in shard order, and the families
    /// of its rest (which no shard writes) after them.
    fn families(&self, name: &str, rest: Vec<(usize, Bytes)>) -> Families {
        let mut families: Families = vec![Vec::new(); catalogue::ALL.len()];
        for shard in &self.shards {
            for (index, chunk) in shard.out.get(name).into_iter().flatten() {
                if let Some(family) = families.get_mut(*index) {
                    family.push(chunk.clone());
                }
            }
        }
        for (index, text) in rest {
            if let Some(family) = families.get_mut(index) {
                debug_assert!(
                    family.is_empty(),
                    "{name}: family {index} is per VM and rest"
                );
                family.push(Chunk::packed(&text));
            }
        }
        families
    }

    /// Puts the inventory's VMs into the shards of the last layout; a shard whose VMs are not
    /// the same `Arc`s as before loses its chunks, and sizes are brought back near
    /// the shard size (a split or a merge renders the shards it makes).
    fn relayout(&mut self, inventory: &Inventory) {
        let target = self.shard_vms;
        let old = std::mem::take(&mut self.shards);
        let starts: Vec<MoId> = old.iter().map(|s| s.start().to_owned()).collect();
        let mut lists: Vec<Vec<Arc<Vm>>> = vec![Vec::new(); old.len().max(1)];
        let mut at = 0;
        for (id, vm) in &inventory.vms {
            while starts
                .get(at + 1)
                .is_some_and(|next| next.as_str() <= id.as_str())
            {
                at += 1;
            }
            lists[at].push(vm.clone());
        }
        let mut old = old.into_iter();
        for vms in lists {
            let before = old.next();
            if vms.is_empty() {
                continue;
            }
            if vms.len() > 2 * target {
                let pieces = vms.len().div_ceil(target);
                let size = vms.len().div_ceil(pieces);
                self.shards.extend(vms.chunks(size).map(|piece| Shard {
                    vms: piece.to_vec(),
                    out: BTreeMap::new(),
                    summaries: BTreeMap::new(),
                    previous: BTreeMap::new(),
                }));
                continue;
            }
            if let Some(last) = self.shards.last_mut()
                && vms.len() < target / 4
                && last.vms.len() + vms.len() <= 2 * target
            {
                last.vms.extend(vms);
                last.out.clear();
                last.summaries.clear();
                continue;
            }
            let shard = match before {
                Some(shard) if same_vms(&shard.vms, &vms) => Shard { vms, ..shard },
                // Its VMs changed: nothing of it is current, but what it was is kept to
                // compare the new text with.
                Some(shard) => Shard {
                    vms,
                    out: BTreeMap::new(),
                    summaries: BTreeMap::new(),
                    previous: shard.out,
                },
                None => Shard {
                    vms,
                    out: BTreeMap::new(),
                    summaries: BTreeMap::new(),
                    previous: BTreeMap::new(),
                },
            };
            self.shards.push(shard);
        }
    }

    /// The VMs of each shard, for tests of the layout.
    #[cfg(test)]
    fn sizes(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.vms.len()).collect()
    }

    /// How many (shard, collector) outputs are held, for tests of what is rendered again.
    #[cfg(test)]
    fn outputs(&self) -> Vec<Vec<*const Chunk>> {
        self.shards
            .iter()
            .map(|s| {
                s.out
                    .values()
                    .flatten()
                    .map(|(_, c)| Arc::as_ptr(c))
                    .collect()
            })
            .collect()
    }
}

fn same_vms(a: &[Arc<Vm>], b: &[Arc<Vm>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

/// One run of `collector` over `part`: its non-empty families' text by catalogue index, or
/// `None` when it failed (logged, with the vCenter and the collector).
fn run_part(
    collector: &dyn Collector,
    ctx: &Context<'_>,
    part: Part<'_>,
) -> Option<Vec<(usize, Bytes)>> {
    let part_ctx = Context { part, ..*ctx };
    let mut sink = Sink::new(ctx.vcenter);
    if let Err(e) = collector.collect(&part_ctx, &mut sink) {
        warn!(vcenter = ctx.vcenter, collector = collector.name(), error = %e, "collector failed");
        return None;
    }
    Some(
        sink.into_families()
            .into_iter()
            .enumerate()
            .filter(|(_, text)| !text.is_empty())
            .collect(),
    )
}

/// One collector over one shard's VMs: its non-empty families, or `None` when it failed
/// (logged, with the vCenter and the collector). A family whose text is the same as in `old`
/// (the shard's last output) keeps that chunk: a new version of the event history, a reload,
/// or a VM change that leaves most of the shard's families as they were compresses only
/// what changed.
fn render_shard(
    collector: &dyn Collector,
    ctx: &Context<'_>,
    vms: &[Arc<Vm>],
    old: Option<&Vec<(usize, Arc<Chunk>)>>,
) -> Option<Vec<(usize, Arc<Chunk>)>> {
    Some(
        run_part(collector, ctx, Part::Vms(vms))?
            .into_iter()
            .map(|(index, text)| {
                let same = old
                    .into_iter()
                    .flatten()
                    .find(|(i, chunk)| *i == index && chunk.has_text(&text));
                match same {
                    Some((_, chunk)) => (index, chunk.clone()),
                    None => (index, Chunk::packed(&text)),
                }
            })
            .collect(),
    )
}

/// What a VM's series and summaries read of the inventory besides the VM: the names on the
/// way from its host up to its datacenter, the datastores' names (which name the datastore of
/// a snapshot file) and the custom fields' names. A host's state (connection, maintenance) and
/// a datastore's space are not among them, so they change no VM's chunks.
#[derive(Debug, Clone, PartialEq)]
struct VmFacts {
    hosts: Vec<(MoId, String, Option<MoRef>)>,
    compute_resources: BTreeMap<MoId, ComputeResource>,
    folders: BTreeMap<MoId, Folder>,
    datacenters: BTreeMap<MoId, Datacenter>,
    datastores: Vec<(MoId, String)>,
    custom_fields: BTreeMap<i32, CustomField>,
}

impl VmFacts {
    fn of(inventory: &Inventory) -> Self {
        VmFacts {
            hosts: inventory
                .hosts
                .iter()
                .map(|(id, h)| (id.clone(), h.name.clone(), h.parent.clone()))
                .collect(),
            compute_resources: inventory.compute_resources.clone(),
            folders: inventory.folders.clone(),
            datacenters: inventory.datacenters.clone(),
            datastores: inventory
                .datastores
                .iter()
                .map(|(id, ds)| (id.clone(), ds.name.clone()))
                .collect(),
            custom_fields: inventory.custom_fields.clone(),
        }
    }

    /// True when `inventory` has the same facts (compared in place, nothing copied).
    fn matches(&self, inventory: &Inventory) -> bool {
        self.hosts.len() == inventory.hosts.len()
            && self
                .hosts
                .iter()
                .zip(&inventory.hosts)
                .all(|((id, name, parent), (hid, h))| {
                    id == hid && *name == h.name && *parent == h.parent
                })
            && self.compute_resources == inventory.compute_resources
            && self.folders == inventory.folders
            && self.datacenters == inventory.datacenters
            && self.datastores.len() == inventory.datastores.len()
            && self
                .datastores
                .iter()
                .zip(&inventory.datastores)
                .all(|((id, name), (did, ds))| id == did && *name == ds.name)
            && self.custom_fields == inventory.custom_fields
    }
}

#[cfg(test)]
mod tests {
    //! The page assembled from cached chunks is the same bytes as a render of every VM at
    //! once, plain and gzipped, after any sequence of changes; only changed shards render.
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;
    use crate::backup::history::{LastDuration, LastTask, Ledger, Operation, Outcome};
    use crate::collector::test_support::config;
    use crate::collector::{COLLECTORS, concat, render_chunks, run_collector};
    use crate::config::{Config, OwnerLabel};
    use crate::source::events::EVENTS;
    use crate::source::{Erased, SourceStatus};
    use crate::vsphere::model::{
        Datastore, Devices, Disk, Host, LayoutEx, LayoutFile, SnapshotInfo, SnapshotTree, VmBackup,
    };

    fn inventory(vms: &[(u32, String)]) -> Inventory {
        let mut inv = Inventory::default();
        inv.datacenters.insert(
            "dc-1".into(),
            Datacenter {
                id: "dc-1".into(),
                name: "dc".into(),
            },
        );
        inv.folders.insert(
            "group-h1".into(),
            Folder {
                id: "group-h1".into(),
                name: "host".into(),
                parent: Some(MoRef::new("Datacenter", "dc-1")),
            },
        );
        inv.compute_resources.insert(
            "domain-c1".into(),
            ComputeResource {
                id: "domain-c1".into(),
                name: "cluster-a".into(),
                is_cluster: true,
                parent: Some(MoRef::new("Folder", "group-h1")),
            },
        );
        for h in 0..3 {
            let id = format!("host-{h}");
            inv.hosts.insert(
                id.clone(),
                Host {
                    id,
                    name: format!("esx{h}"),
                    parent: Some(MoRef::new("ClusterComputeResource", "domain-c1")),
                    connection_state: "connected".into(),
                    ..Default::default()
                },
            );
        }
        for d in 0..2 {
            let id = format!("datastore-{d}");
            inv.datastores.insert(
                id.clone(),
                Datastore {
                    id,
                    name: format!("ds{d}"),
                    ..Default::default()
                },
            );
        }
        inv.custom_fields.insert(
            1,
            CustomField {
                name: "owner".into(),
                managed_object_type: "VirtualMachine".into(),
            },
        );
        for (n, name) in vms {
            let vm = make_vm(*n, name);
            inv.vms.insert(vm.id.clone(), Arc::new(vm));
        }
        inv
    }

    fn make_vm(n: u32, name: &str) -> Vm {
        Vm {
            id: format!("vm-{n}"),
            name: name.to_owned(),
            host: Some(format!("host-{}", n % 3)),
            power_state: "poweredOn".into(),
            guest_id: "rhel8_64Guest".into(),
            tools_version_status2: Some("guestToolsCurrent".into()),
            tools_running_status: Some("guestToolsRunning".into()),
            backup: VmBackup {
                custom_values: vec![(1, format!("team-{}", n % 4))],
                datastores: vec![format!("datastore-{}", n % 2)],
                ..Default::default()
            },
            // A home of its own on ds0 (its `.vmx`), with its disk there, and a snapshot's
            // memory file on one of the datastores once it has snapshots.
            layout_ex: Some(LayoutEx {
                file: vec![
                    LayoutFile {
                        key: 0,
                        name: format!("[ds0] vm{n}/vm{n}.vmx"),
                        file_type: "config".into(),
                        size: 100,
                    },
                    LayoutFile {
                        key: 1,
                        name: format!("[ds{}] vm{n}/vm{n}-Snapshot1.vmsn", n % 2),
                        file_type: "snapshotData".into(),
                        size: u64::from(n) + 1,
                    },
                ],
                ..Default::default()
            }),
            devices: Devices {
                disks: vec![Disk {
                    key: Some(2000),
                    file_name: format!("[ds0] vm{n}/vm{n}.vmdk"),
                    change_id: !n.is_multiple_of(5),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// What the render reads besides the inventory: the configuration's id and the event
    /// history with its version.
    #[derive(Default)]
    struct State {
        config_id: u64,
        ledger: Ledger,
        ledger_version: u64,
    }

    impl State {
        fn sources(&self) -> Vec<Erased> {
            vec![Erased {
                name: EVENTS,
                version: self.ledger_version,
                value: Some(Arc::new(self.ledger.clone())),
                status: SourceStatus::default(),
            }]
        }
    }

    /// One change of the inventory (or of what a per-VM series reads besides it).
    #[derive(Debug, Clone)]
    enum Change {
        Add(u32, String),
        Remove(usize),
        Rename(usize, String),
        Snapshot(usize, String),
        NoSnapshots(usize),
        Power(usize),
        RenameHost(u8, String),
        HostMaintenance(u8),
        RenameField(String),
        Reload,
        /// A snapshot a backup pattern names.
        BackupSnapshot(usize),
        /// The first VM attaches the second's disk (a proxy's hot-add).
        ForeignDisk(usize, usize),
        RenameDatastore(u8, String),
        /// A snapshot task of the VM ends in the event history.
        Event(usize, f64),
    }

    fn change() -> impl Strategy<Value = Change> {
        let name = "[a-z\"\\\\ ]{1,6}";
        prop_oneof![
            (0u32..400, name).prop_map(|(n, s)| Change::Add(n, s)),
            any::<usize>().prop_map(Change::Remove),
            (any::<usize>(), name).prop_map(|(i, s)| Change::Rename(i, s)),
            (any::<usize>(), name).prop_map(|(i, s)| Change::Snapshot(i, s)),
            any::<usize>().prop_map(Change::NoSnapshots),
            any::<usize>().prop_map(Change::Power),
            (0u8..3, name).prop_map(|(h, s)| Change::RenameHost(h, s)),
            (0u8..3).prop_map(Change::HostMaintenance),
            name.prop_map(Change::RenameField),
            Just(Change::Reload),
            any::<usize>().prop_map(Change::BackupSnapshot),
            (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Change::ForeignDisk(i, j)),
            (0u8..2, name).prop_map(|(d, s)| Change::RenameDatastore(d, s)),
            (any::<usize>(), 1.0f64..100.0).prop_map(|(i, t)| Change::Event(i, t)),
        ]
    }

    /// Applies `change` as the mirror does: a new version sharing the unchanged VMs' `Arc`s.
    fn apply(inv: &Inventory, change: &Change, state: &mut State) -> Inventory {
        let mut next = inv.clone();
        let ids: Vec<MoId> = next.vms.keys().cloned().collect();
        let id_at = |i: usize| ids.get(i % ids.len().max(1)).cloned().unwrap_or_default();
        fn vm_at<'a>(inv: &'a mut Inventory, id: &str) -> Option<&'a mut Vm> {
            inv.vms.get_mut(id).map(Arc::make_mut)
        }
        match change {
            Change::Add(n, name) => {
                let vm = make_vm(*n, name);
                next.vms.insert(vm.id.clone(), Arc::new(vm));
            }
            Change::Remove(i) => {
                next.vms.remove(&id_at(*i));
            }
            Change::Rename(i, name) => {
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    vm.name = name.clone();
                }
            }
            Change::Snapshot(i, name) => {
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    let id = format!("snapshot-{}", name.len());
                    vm.snapshot = Some(SnapshotInfo {
                        current_snapshot: Some(id.clone()),
                        root_snapshot_list: vec![SnapshotTree {
                            snapshot: id,
                            name: name.clone(),
                            create_time_seconds: 1_700_000_000.0,
                            ..Default::default()
                        }],
                    });
                }
            }
            Change::NoSnapshots(i) => {
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    vm.snapshot = None;
                }
            }
            Change::Power(i) => {
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    vm.power_state = "poweredOff".into();
                    vm.tools_running_status = Some("guestToolsNotRunning".into());
                }
            }
            Change::RenameHost(h, name) => {
                if let Some(host) = next.hosts.get_mut(&format!("host-{h}")) {
                    host.name = name.clone();
                }
            }
            Change::HostMaintenance(h) => {
                if let Some(host) = next.hosts.get_mut(&format!("host-{h}")) {
                    host.in_maintenance = !host.in_maintenance;
                }
            }
            Change::RenameField(name) => {
                if let Some(field) = next.custom_fields.get_mut(&1) {
                    field.name = name.clone();
                }
            }
            Change::Reload => state.config_id += 1,
            Change::BackupSnapshot(i) => {
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    vm.snapshot = Some(SnapshotInfo {
                        current_snapshot: Some("snapshot-b".into()),
                        root_snapshot_list: vec![SnapshotTree {
                            snapshot: "snapshot-b".into(),
                            name: "VEEAM BACKUP TEMPORARY SNAPSHOT".into(),
                            ..Default::default()
                        }],
                    });
                }
            }
            Change::ForeignDisk(i, j) => {
                let owner = id_at(*j);
                let n = owner.get(3..).unwrap_or_default();
                let file = format!("[ds0] vm{n}/vm{n}.vmdk");
                if let Some(vm) = vm_at(&mut next, &id_at(*i)) {
                    vm.devices.disks.push(Disk {
                        file_name: file,
                        ..Default::default()
                    });
                }
            }
            Change::RenameDatastore(d, name) => {
                if let Some(ds) = next.datastores.get_mut(&format!("datastore-{d}")) {
                    ds.name = name.clone();
                }
            }
            Change::Event(i, seconds) => {
                let vm = id_at(*i);
                let ledger = &mut state.ledger;
                *ledger
                    .counts
                    .entry((Operation::Remove, Outcome::Success))
                    .or_default() += 1;
                ledger.last_duration.insert(
                    (vm.clone(), Operation::Remove),
                    LastDuration {
                        outcome: Outcome::Success,
                        complete_seconds: 1_700_000_000.0,
                        seconds: *seconds,
                    },
                );
                ledger.last.insert(
                    (vm.clone(), Operation::Create, Outcome::Success),
                    LastTask {
                        seconds: 1_700_000_000.0 - seconds,
                        user: "VSPHERE.LOCAL\\veeam".into(),
                    },
                );
                *ledger.reconfigured_with_snapshots.entry(vm).or_default() += 1;
                state.ledger_version += 1;
            }
        }
        next
    }

    /// The configuration of reload `n`: owner labels and the consistency attribute come and go.
    fn config_of(n: u64) -> Config {
        let mut cfg = config();
        if n % 2 == 1 {
            cfg.backup.owner_labels = vec![OwnerLabel {
                attribute: "owner".into(),
                label: "owner".into(),
            }];
            cfg.backup.consistency_required_attribute = Some("owner".into());
        }
        cfg
    }

    fn per_vm() -> Vec<&'static dyn Collector> {
        COLLECTORS.iter().copied().filter(|c| c.per_vm()).collect()
    }

    fn context<'a>(inv: &'a Inventory, cfg: &'a Config, sources: &'a [Erased]) -> Context<'a> {
        Context {
            vcenter: "vc01",
            config: cfg,
            inventory: inv,
            now: 1_800_000_000.0,
            sources,
            part: Part::All,
        }
    }

    /// Every per-VM collector over every VM at once, as chunks of the page.
    fn full_render(inv: &Inventory, cfg: &Config, state: &State) -> Vec<Arc<Chunk>> {
        let sources = state.sources();
        let ctx = context(inv, cfg, &sources);
        let families: Vec<Families> = per_vm()
            .into_iter()
            .map(|c| whole(run_collector(c, &ctx).0))
            .collect();
        render_chunks(&families.iter().collect::<Vec<_>>())
    }

    fn cached_render(
        shards: &mut VmShards,
        inv: &Inventory,
        cfg: &Config,
        state: &State,
    ) -> Vec<Arc<Chunk>> {
        let sources = state.sources();
        let ctx = context(inv, cfg, &sources);
        let jobs: Vec<ShardJob<'_>> = per_vm()
            .into_iter()
            .map(|collector| ShardJob {
                collector,
                key: vec![state.config_id, state.ledger_version],
            })
            .collect();
        let families: Vec<Families> = shards
            .update(&ctx, &jobs, &[])
            .into_iter()
            .map(|(families, run)| {
                assert!(run.ok);
                families
            })
            .collect();
        render_chunks(&families.iter().collect::<Vec<_>>())
    }

    fn text(chunks: &[Arc<Chunk>]) -> Bytes {
        let segments: Vec<Bytes> = chunks.iter().flat_map(|c| c.segments()).collect();
        concat(&segments)
    }

    fn gunzip(chunks: &[Arc<Chunk>]) -> Vec<u8> {
        let members: Vec<Bytes> = chunks.iter().map(|c| c.gzipped()).collect();
        let body = concat(&members);
        let mut out = Vec::new();
        if body.is_empty() {
            return out;
        }
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_page_from_cached_shards_equals_a_full_render_plain_and_gzipped(
            start in proptest::collection::vec((0u32..400, "[a-z]{1,5}"), 0..60),
            changes in proptest::collection::vec(change(), 1..12),
            shard_vms in 4usize..12,
        ) {
            let mut shards = VmShards::with_shard_vms(shard_vms);
            let mut state = State::default();
            let mut inv = inventory(&start);
            for step in std::iter::once(None).chain(changes.iter().map(Some)) {
                if let Some(change) = step {
                    inv = apply(&inv, change, &mut state);
                }
                let cfg = config_of(state.config_id);
                let cached = cached_render(&mut shards, &inv, &cfg, &state);
                let full = full_render(&inv, &cfg, &state);
                prop_assert_eq!(text(&cached), text(&full), "after {:?}", step);
                prop_assert_eq!(gunzip(&cached), text(&full).to_vec(), "gzip after {:?}", step);
                let sizes = shards.sizes();
                prop_assert!(sizes.iter().all(|n| *n <= 2 * shard_vms), "{:?}", sizes);
                prop_assert_eq!(sizes.iter().sum::<usize>(), inv.vms.len());
            }
        }
    }

    #[test]
    fn a_changed_vm_renders_its_shard_only_and_a_host_state_renders_nothing() {
        let vms: Vec<(u32, String)> = (0..100).map(|n| (n, format!("n{n}"))).collect();
        let inv = inventory(&vms);
        let cfg = config();
        let mut shards = VmShards::with_shard_vms(10);
        cached_render(&mut shards, &inv, &cfg, &State::default());
        let before = shards.outputs();
        assert!(before.len() >= 5, "{:?}", shards.sizes());

        let mut id = State::default();
        let renamed = apply(&inv, &Change::Rename(50, "x".into()), &mut id);
        cached_render(&mut shards, &renamed, &cfg, &State::default());
        let after = shards.outputs();
        let changed: Vec<usize> = (0..after.len())
            .filter(|i| after[*i] != before[*i])
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");

        let maintenance = apply(&renamed, &Change::HostMaintenance(1), &mut id);
        cached_render(&mut shards, &maintenance, &cfg, &State::default());
        assert_eq!(shards.outputs(), after);

        let host = apply(&maintenance, &Change::RenameHost(1, "y".into()), &mut id);
        cached_render(&mut shards, &host, &cfg, &State::default());
        let renamed_host = shards.outputs();
        assert!((0..after.len()).all(|i| renamed_host[i] != after[i]));
    }

    #[test]
    fn a_family_rendered_again_to_the_same_text_keeps_its_chunk() {
        let vms: Vec<(u32, String)> = (0..60).map(|n| (n, format!("n{n}"))).collect();
        let inv = inventory(&vms);
        let mut shards = VmShards::with_shard_vms(10);
        let mut state = State::default();
        cached_render(&mut shards, &inv, &config_of(0), &state);
        let before = shards.outputs();

        // A reload to the same configuration renders every shard again, to the same text.
        state.config_id = 2;
        cached_render(&mut shards, &inv, &config_of(2), &state);
        assert_eq!(shards.outputs(), before);

        // A VM powered off changes its shard's families of power and Tools, not the others.
        let off = apply(&inv, &Change::Power(25), &mut state);
        cached_render(&mut shards, &off, &config_of(2), &state);
        let after = shards.outputs();
        let changed: Vec<usize> = (0..after.len())
            .filter(|i| after[*i] != before[*i])
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        let shard = changed[0];
        let kept = after[shard]
            .iter()
            .filter(|c| before[shard].contains(c))
            .count();
        assert!(
            kept > 0 && kept < after[shard].len(),
            "{kept} of {} chunks kept",
            after[shard].len()
        );
    }

    #[test]
    fn shards_split_past_twice_their_size_and_a_small_one_joins_its_neighbour() {
        let vms: Vec<(u32, String)> = (100..200).map(|n| (n, "v".into())).collect();
        let mut inv = inventory(&vms);
        let cfg = config();
        let mut shards = VmShards::with_shard_vms(16);
        cached_render(&mut shards, &inv, &cfg, &State::default());
        assert!(
            shards.sizes().iter().all(|n| (8..=32).contains(n)),
            "{:?}",
            shards.sizes()
        );
        // 40 new VMs sort after vm-199 ("vm-2…" > "vm-1…"): the last shard grows and splits.
        let mut id = State::default();
        for n in 200..240 {
            inv = apply(&inv, &Change::Add(n, "w".into()), &mut id);
        }
        cached_render(&mut shards, &inv, &cfg, &State::default());
        assert!(
            shards.sizes().iter().all(|n| *n <= 32),
            "{:?}",
            shards.sizes()
        );
        // Emptying all but one VM of a shard merges that one into the shard before it.
        let count = shards.sizes().len();
        let second: usize = shards.sizes()[0];
        for _ in 0..shards.sizes()[1] - 1 {
            inv = apply(&inv, &Change::Remove(second), &mut id);
        }
        cached_render(&mut shards, &inv, &cfg, &State::default());
        assert_eq!(shards.sizes().len(), count - 1, "{:?}", shards.sizes());
        assert_eq!(shards.sizes().iter().sum::<usize>(), inv.vms.len());
    }
}
