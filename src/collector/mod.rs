//! Collectors turn what a vCenter target holds (its sources' latest snapshots) into metrics,
//! one file per concern, each behind the small [`Collector`] interface and listed once in
//! [`COLLECTORS`]. A collector names the sources it reads; its output is cached on their
//! versions, so it runs again only when one of them changed (a collector that reads
//! [`CLOCK`] runs on every scrape). Every run reports its own
//! `vsphere_collector_duration_seconds` and `vsphere_collector_success`.
//!
//! Collectors do no I/O and never talk to vCenter, so they are tested on hand-built snapshots
//! and cannot slow a scrape down by waiting on the network.
//!
//! Samples are written straight into exposition text, one buffer per metric family, rather
//! than through the `prometheus` crate's `MetricFamily` structs: at 40,000 VMs those structs
//! take several hundred megabytes for what is 60 MB of text. The exporter's own metrics
//! (build info, process) still go through the crate's registry.

mod alarms;
mod backup;
pub mod blackout;
pub mod catalogue;
mod datastores;
pub mod disks;
mod events;
mod hostio;
mod hosts;
pub mod shards;
mod snapshots;
mod stagger;
mod tags;
pub mod text;
mod tools;
mod vm;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tracing::warn;

use crate::config::Config;
use crate::source::{Erased, INVENTORY};
use crate::vsphere::Inventory;
use crate::vsphere::model::Vm;
use catalogue::{COLLECTOR_DURATION, COLLECTOR_SUCCESS, Kind, MetricSpec};

/// The pseudo-source of collectors whose output depends on the time of the scrape.
pub const CLOCK: &str = "clock";

/// What a collector reads: the latest snapshot of each source of one vCenter.
pub struct Context<'a> {
    pub vcenter: &'a str,
    pub config: &'a Config,
    /// The inventory mirror's latest version (collectors run only while it is in sync).
    pub inventory: &'a Inventory,
    /// The time of this run, Unix seconds.
    pub now: f64,
    /// Every source's latest snapshot, the inventory's among them.
    pub sources: &'a [Erased],
    /// Which of a [per-VM](Collector::per_vm) collector's series to write: all of them, the
    /// per-VM series of one shard of the render cache ([`shards`]), or the rest.
    pub part: Part<'a>,
}

/// The share of a [per-VM](Collector::per_vm) collector's output one run writes.
#[derive(Clone, Copy)]
pub enum Part<'a> {
    /// Every series over every VM of the inventory (a collector rendered whole, and tests).
    All,
    /// The per-VM series of these VMs only.
    Vms(&'a [Arc<Vm>]),
    /// The series that are not per VM (sums per host or datastore, links between VMs, counts
    /// of the event history), from each shard's VMs and [summary](Collector::summarize), in
    /// shard order.
    Rest(&'a [ShardView<'a>]),
}

/// One shard of the render cache as the [`Part::Rest`] of a collector reads it.
pub struct ShardView<'a> {
    pub vms: &'a [Arc<Vm>],
    /// What [`Collector::summarize`] made of these VMs, `None` when it made nothing.
    pub summary: Option<&'a Summary>,
}

/// What a collector keeps of one shard's VMs for its [`Part::Rest`]; see
/// [`Collector::summarize`].
pub type Summary = Box<dyn std::any::Any + Send + Sync>;

impl Context<'_> {
    /// The VMs to write per-VM series for, in id order: the shard's, every VM, or none (for
    /// the rest of the series).
    pub fn vms(&self) -> Box<dyn Iterator<Item = &Vm> + '_> {
        match self.part {
            Part::Vms(shard) => Box::new(shard.iter().map(|vm| &**vm)),
            Part::All => Box::new(self.inventory.vms.values().map(|vm| &**vm)),
            Part::Rest(_) => Box::new(std::iter::empty()),
        }
    }

    /// True unless this run writes the per-VM series of a shard only.
    pub fn writes_rest(&self) -> bool {
        !matches!(self.part, Part::Vms(_))
    }

    /// `collector`'s summaries of the VMs, in VM order: each shard's (of type `T`), or one of
    /// every VM made now when the run covers them all. A shard without one is skipped.
    pub fn summaries<T: 'static>(&self, collector: &dyn Collector) -> Vec<Summarized<'_, T>> {
        match self.part {
            Part::Vms(_) => Vec::new(),
            Part::All => {
                let vms: Vec<Arc<Vm>> = self.inventory.vms.values().cloned().collect();
                match collector.summarize(self, &vms) {
                    Some(summary) => match summary.downcast::<T>() {
                        Ok(summary) => vec![Summarized::Owned(vms, summary)],
                        Err(_) => Vec::new(),
                    },
                    None => Vec::new(),
                }
            }
            Part::Rest(views) => views
                .iter()
                .filter_map(|view| {
                    let summary = view.summary?.downcast_ref::<T>()?;
                    Some(Summarized::Shard(view.vms, summary))
                })
                .collect(),
        }
    }

    /// The latest value of the source called `name`, when it is in sync and of type `T`.
    pub fn source<T: Send + Sync + 'static>(&self, name: &str) -> Option<&T> {
        self.sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.value.as_deref())
            .and_then(|v| v.downcast_ref::<T>())
    }
}

/// One run of VMs and a collector's summary of them (see [`Context::summaries`]).
pub enum Summarized<'a, T> {
    Shard(&'a [Arc<Vm>], &'a T),
    Owned(Vec<Arc<Vm>>, Box<T>),
}

impl<T> Summarized<'_, T> {
    pub fn vms(&self) -> &[Arc<Vm>] {
        match self {
            Summarized::Shard(vms, _) => vms,
            Summarized::Owned(vms, _) => vms,
        }
    }

    pub fn summary(&self) -> &T {
        match self {
            Summarized::Shard(_, summary) => summary,
            Summarized::Owned(_, summary) => summary,
        }
    }
}

/// A collector failed; its metrics are dropped and its `_success` is 0.
#[derive(Debug, thiserror::Error)]
#[error("collector {collector}: {message}")]
pub struct CollectError {
    pub collector: &'static str,
    pub message: String,
}

/// Turns sources' snapshots into metrics of one concern.
pub trait Collector: Send + Sync {
    /// The collector's name: the `collector` label.
    fn name(&self) -> &'static str;
    /// The sources whose snapshots it reads (their names; [`CLOCK`] for the scrape's time).
    /// It runs only when every one of them is in sync, and again when one of them changed.
    fn reads(&self) -> &'static [&'static str] {
        &[INVENTORY]
    }
    /// Sources it reads when they are in sync and does without otherwise (the `vm` collector's
    /// tag labels, empty while tags cannot be read): their versions join its cache key, but
    /// their absence does not leave it out.
    fn reads_if_present(&self) -> &'static [&'static str] {
        &[]
    }
    /// True for a collector whose output is, family by family, either the concatenation of
    /// what it writes for each VM of [`Context::vms`] in order, or written by its
    /// [`Part::Rest`] run alone (never both for one family), where a VM's series read only the
    /// VM, the configuration, the other sources it reads and the inventory's placement facts
    /// (host, cluster, datacenter, datastore and custom field names; see [`shards`]). Its
    /// per-VM output is then kept per shard of VMs and only the shards whose VMs changed are
    /// rendered again; the rest is written from the shards' [summaries](Self::summarize). It
    /// must not read [`CLOCK`].
    fn per_vm(&self) -> bool {
        false
    }
    /// For a per-VM collector with series that are not per VM (counts per host or datastore,
    /// disks one VM holds of another): what it needs of these VMs for them, kept with the
    /// shard and made again only when the shard is rendered again. Its
    /// [`Part::Rest`] run then reads every shard's summary ([`Context::summaries`]) instead
    /// of every VM. `None`: nothing to keep.
    fn summarize(&self, ctx: &Context<'_>, vms: &[Arc<Vm>]) -> Option<Summary> {
        let _ = (ctx, vms);
        None
    }
    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError>;
}

/// Every collector, in the order they run.
pub const COLLECTORS: &[&dyn Collector] = &[
    &vm::VmCollector,
    &snapshots::Snapshots,
    &tools::Tools,
    &hosts::Hosts,
    &hostio::HostIoCollector,
    &backup::LastBackup,
    &backup::Consistency,
    &events::SnapshotTasks,
    &stagger::Stagger,
    &datastores::Datastores,
    &tags::Tags,
    &disks::Disks,
    &alarms::Alarms,
];

/// True unless the command line turned the collector off.
pub fn is_enabled(config: &Config, collector: &str) -> bool {
    !config.disabled_collectors.contains(collector)
}

/// True when an enabled collector reads the source: a source nobody reads is not started.
pub fn source_wanted(config: &Config, source: &str) -> bool {
    COLLECTORS.iter().any(|c| {
        is_enabled(config, c.name())
            && (c.reads().contains(&source) || c.reads_if_present().contains(&source))
    })
}

/// Collects samples as exposition text, one buffer per catalogue entry; `vcenter` is filled
/// into every series (except in an [exporter-level](Sink::exporter_level) sink).
pub struct Sink {
    /// `vcenter="…"`, escaped once; empty for exporter-level series.
    vcenter_label: String,
    families: Vec<String>,
}

impl Sink {
    pub fn new(vcenter: &str) -> Self {
        Sink {
            vcenter_label: format!("vcenter=\"{}\"", text::escape_label(vcenter)),
            families: vec![String::new(); catalogue::ALL.len()],
        }
    }

    /// A sink for series of the exporter itself, which belong to no vCenter (the blackout
    /// windows): their specs' labels do not start with `vcenter`.
    pub fn exporter_level() -> Self {
        Sink {
            vcenter_label: String::new(),
            families: vec![String::new(); catalogue::ALL.len()],
        }
    }

    /// Adds one gauge sample with `extra` labels after the spec's (the owner labels that the
    /// configuration adds to `vsphere_vm_info`).
    pub fn gauge_with(
        &mut self,
        spec: &'static MetricSpec,
        labels: &[&str],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        debug_assert_eq!(spec.kind, Kind::Gauge, "{}", spec.name);
        self.write(spec, labels, extra, value);
    }

    /// Adds one gauge sample. `labels` are the spec's label values after `vcenter`.
    pub fn gauge(&mut self, spec: &'static MetricSpec, labels: &[&str], value: f64) {
        debug_assert_eq!(spec.kind, Kind::Gauge, "{}", spec.name);
        self.sample(spec, labels, value);
    }

    /// Adds one counter sample (a total since the exporter started).
    pub fn counter(&mut self, spec: &'static MetricSpec, labels: &[&str], value: f64) {
        debug_assert_eq!(spec.kind, Kind::Counter, "{}", spec.name);
        self.sample(spec, labels, value);
    }

    /// Adds one histogram's series: a `_bucket` per upper bound with the count at or below it
    /// (`cumulative`, as many as `bounds`), the `+Inf` bucket (`count`), `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        spec: &'static MetricSpec,
        labels: &[&str],
        bounds: &[f64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) {
        debug_assert_eq!(spec.kind, Kind::Histogram, "{}", spec.name);
        debug_assert_eq!(bounds.len(), cumulative.len(), "{}", spec.name);
        let mut le = String::new();
        for (bound, n) in bounds.iter().zip(cumulative) {
            le.clear();
            text::push_value(&mut le, *bound);
            self.write_series(spec, "_bucket", labels, &[("le", &le)], *n as f64);
        }
        self.write_series(spec, "_bucket", labels, &[("le", "+Inf")], count as f64);
        self.write_series(spec, "_sum", labels, &[], sum);
        self.write_series(spec, "_count", labels, &[], count as f64);
    }

    fn sample(&mut self, spec: &'static MetricSpec, labels: &[&str], value: f64) {
        self.write(spec, labels, &[], value);
    }

    fn write(
        &mut self,
        spec: &'static MetricSpec,
        labels: &[&str],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        self.write_series(spec, "", labels, extra, value);
    }

    /// One series of the spec's family: its name with `suffix` (a histogram's `_bucket`, …).
    fn write_series(
        &mut self,
        spec: &'static MetricSpec,
        suffix: &str,
        labels: &[&str],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        // Exporter-level specs have no `vcenter` label to skip.
        let skip = usize::from(spec.labels.first() == Some(&"vcenter"));
        debug_assert_eq!(spec.labels.len(), labels.len() + skip, "{}", spec.name);
        debug_assert_eq!(skip == 1, !self.vcenter_label.is_empty(), "{}", spec.name);
        let Some(out) = self.families.get_mut(spec.index) else {
            return;
        };
        out.push_str(spec.name);
        out.push_str(suffix);
        out.push('{');
        out.push_str(&self.vcenter_label);
        let names = spec.labels.iter().skip(skip).copied();
        let pairs = names
            .zip(labels.iter().copied())
            .chain(extra.iter().copied());
        for (i, (name, value)) in pairs.enumerate() {
            if i > 0 || skip == 1 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            text::push_escaped_label(out, value);
            out.push('"');
        }
        out.push_str("} ");
        text::push_value(out, value);
        out.push('\n');
    }

    /// The sample lines of each catalogue entry, in catalogue order. Each buffer gives back
    /// what its doubling left unused (up to half of it) before it is cached: a shrink in place,
    /// not a copy.
    pub fn into_families(self) -> Vec<Bytes> {
        self.families
            .into_iter()
            .map(|mut family| {
                family.shrink_to_fit();
                Bytes::from(family)
            })
            .collect()
    }
}

/// Exposition text of several sinks' families, as segments to send one after the other: each
/// family's HELP and TYPE once, then the samples of every sink in order. The sinks' buffers are
/// shared, not copied. Families without samples are left out.
pub fn render(per_target: &[&[Bytes]]) -> Vec<Bytes> {
    let mut out = Vec::new();
    for spec in catalogue::ALL {
        let parts: Vec<&Bytes> = per_target
            .iter()
            .filter_map(|families| families.get(spec.index))
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            continue;
        }
        let mut header = String::new();
        text::push_header(&mut header, spec);
        out.push(Bytes::from(header));
        out.extend(parts.into_iter().cloned());
    }
    out
}

/// The page's cached share from collectors' [`Families`](shards::Families): each family's
/// HELP and TYPE once (a chunk made once per process), then its chunks of every collector of
/// every target in order. Chunks are shared, not copied; families without samples are left out.
pub fn render_chunks(per_target: &[&shards::Families]) -> Vec<Arc<shards::Chunk>> {
    static HEADERS: std::sync::OnceLock<Vec<Arc<shards::Chunk>>> = std::sync::OnceLock::new();
    let headers = HEADERS.get_or_init(|| {
        catalogue::ALL
            .iter()
            .map(|spec| {
                let mut header = String::new();
                text::push_header(&mut header, spec);
                shards::Chunk::new(vec![Bytes::from(header)])
            })
            .collect()
    });
    let mut out = Vec::new();
    for (position, spec) in catalogue::ALL.iter().enumerate() {
        let chunks = per_target
            .iter()
            .filter_map(|families| families.get(spec.index))
            .flatten();
        let mut chunks = chunks.peekable();
        if chunks.peek().is_none() {
            continue;
        }
        if let Some(header) = headers.get(position) {
            out.push(header.clone());
        }
        out.extend(chunks.cloned());
    }
    out
}

/// One collector's run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub collector: &'static str,
    pub seconds: f64,
    pub ok: bool,
}

/// Runs one collector into a sink of its own: its families, or none when it failed (then
/// logged once per run, with the vCenter and the collector).
pub fn run_collector(collector: &dyn Collector, ctx: &Context<'_>) -> (Vec<Bytes>, Run) {
    let start = Instant::now();
    let mut sink = Sink::new(ctx.vcenter);
    let result = collector.collect(ctx, &mut sink);
    let run = Run {
        collector: collector.name(),
        seconds: start.elapsed().as_secs_f64(),
        ok: result.is_ok(),
    };
    match result {
        Ok(()) => (sink.into_families(), run),
        Err(e) => {
            warn!(vcenter = ctx.vcenter, collector = collector.name(), error = %e, "collector failed");
            (Vec::new(), run)
        }
    }
}

/// Runs every collector over one set of snapshots, in order; the families of all, and the runs.
pub fn collect_all(ctx: &Context<'_>) -> (Vec<Vec<Bytes>>, Vec<Run>) {
    COLLECTORS
        .iter()
        .map(|collector| run_collector(*collector, ctx))
        .unzip()
}

/// `vsphere_collector_duration_seconds` and `_success` for one collector run.
pub fn record_run(out: &mut Sink, run: &Run) {
    out.gauge(&COLLECTOR_DURATION, &[run.collector], run.seconds);
    out.gauge(
        &COLLECTOR_SUCCESS,
        &[run.collector],
        if run.ok { 1.0 } else { 0.0 },
    );
}

/// Segments joined into one buffer.
pub fn concat(segments: &[Bytes]) -> Bytes {
    if let [one] = segments {
        return one.clone();
    }
    let mut out = Vec::with_capacity(segments.iter().map(Bytes::len).sum());
    for s in segments {
        out.extend_from_slice(s);
    }
    Bytes::from(out)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Reading collector output in tests: one metric's samples as label maps and values.
    use super::*;
    pub use text::Sample;

    /// A configuration with the veeam pattern only and no vCenters.
    pub fn config() -> Config {
        Config {
            vcenters: Vec::new(),
            backup_snapshot_patterns: vec![crate::config::BackupPattern {
                product: "veeam".into(),
                regex: regex::Regex::new("(?i)VEEAM BACKUP TEMPORARY SNAPSHOT").unwrap(),
            }],
            ..Config::default()
        }
    }

    pub fn samples(out: &[Sample], name: &str) -> Vec<Sample> {
        out.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// The value of the one sample of `name` whose labels include all of `want`.
    pub fn value(out: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = out
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Runs every collector and reads the text back.
    pub fn run(inventory: &Inventory, config: &Config) -> Vec<Sample> {
        run_with(inventory, config, &[])
    }

    /// [`run`] with other sources' snapshots beside the inventory.
    pub fn run_with(
        inventory: &Inventory,
        config: &Config,
        sources: &[crate::source::Erased],
    ) -> Vec<Sample> {
        let ctx = Context {
            vcenter: "vc01",
            inventory,
            config,
            now: 1_800_000_000.0,
            sources,
            part: Part::All,
        };
        let (families, _) = collect_all(&ctx);
        let refs: Vec<&[Bytes]> = families.iter().map(Vec::as_slice).collect();
        let text = concat(&render(&refs));
        text::parse(&String::from_utf8_lossy(&text)).expect("the writer's own output parses")
    }

    /// A collector that always fails, as one does on data it cannot read.
    struct Broken;

    impl Collector for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }

        fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
            // Half its output written before it fails: none of it may be served.
            out.gauge(&catalogue::VM_SNAPSHOTS, &["vm-1", "a"], 1.0);
            let _ = ctx;
            Err(CollectError {
                collector: "broken",
                message: "cannot read the snapshot tree".into(),
            })
        }
    }

    #[test]
    fn a_failing_collector_loses_its_samples_and_reports_success_zero() {
        let inventory = Inventory::default();
        let cfg = config();
        let ctx = Context {
            vcenter: "vc01",
            inventory: &inventory,
            config: &cfg,
            now: 0.0,
            sources: &[],
            part: Part::All,
        };
        let (families, run) = run_collector(&Broken, &ctx);
        assert!(families.iter().all(|f| f.is_empty()), "{families:?}");
        assert!(!run.ok);
        let mut sink = Sink::new("vc01");
        record_run(&mut sink, &run);
        let families = sink.into_families();
        let refs: Vec<&[Bytes]> = vec![families.as_slice()];
        let text = String::from_utf8_lossy(&concat(&render(&refs))).into_owned();
        let samples = text::parse(&text).unwrap();
        assert_eq!(
            value(
                &samples,
                "vsphere_collector_success",
                &[("collector", "broken")]
            ),
            Some(0.0)
        );
    }
}
