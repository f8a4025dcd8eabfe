//! Collectors turn a vCenter's [`Inventory`] into metrics, one file per concern, each behind
//! the small [`Collector`] interface and listed once in [`COLLECTORS`]. Every run reports its
//! own `vsphere_scrape_collector_duration_seconds` and `_success`.
//!
//! Collectors read the inventory only: they do no I/O and never talk to vCenter, so they are
//! tested on hand-built inventories and cannot slow a scrape down by waiting on the network.
//!
//! Samples are written straight into exposition text, one buffer per metric family, rather
//! than through the `prometheus` crate's `MetricFamily` structs: at 40,000 VMs those structs
//! take several hundred megabytes for what is 60 MB of text. The exporter's own metrics
//! (build info, process) still go through the crate's registry.

pub mod catalogue;
mod snapshots;
pub mod text;
mod tools;
mod vm;

use std::time::Instant;

use bytes::Bytes;
use tracing::warn;

use crate::config::Config;
use crate::vsphere::Inventory;
use catalogue::{COLLECTOR_DURATION, COLLECTOR_SUCCESS, Kind, MetricSpec};

/// What a collector reads.
pub struct Context<'a> {
    pub vcenter: &'a str,
    pub inventory: &'a Inventory,
    pub config: &'a Config,
}

/// A collector failed; its metrics are dropped and its `_success` is 0.
#[derive(Debug, thiserror::Error)]
#[error("collector {collector}: {message}")]
pub struct CollectError {
    pub collector: &'static str,
    pub message: String,
}

/// Turns an inventory into metrics of one concern.
pub trait Collector: Send + Sync {
    /// The collector's name: the `collector` label.
    fn name(&self) -> &'static str;
    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError>;
}

/// Every collector, in the order they run.
pub const COLLECTORS: &[&dyn Collector] = &[&vm::VmCollector, &snapshots::Snapshots, &tools::Tools];

/// Collects samples as exposition text, one buffer per catalogue entry; `vcenter` is filled
/// into every series.
pub struct Sink {
    /// `vcenter="…"`, escaped once.
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

    /// Adds one gauge sample. `labels` are the spec's label values after `vcenter`.
    pub fn gauge(&mut self, spec: &'static MetricSpec, labels: &[&str], value: f64) {
        debug_assert_eq!(spec.labels.len(), labels.len() + 1, "{}", spec.name);
        debug_assert_eq!(spec.kind, Kind::Gauge);
        let Some(out) = self.families.get_mut(spec.index) else {
            return;
        };
        out.push_str(spec.name);
        out.push('{');
        out.push_str(&self.vcenter_label);
        for (name, value) in spec.labels.iter().skip(1).zip(labels) {
            out.push(',');
            out.push_str(name);
            out.push_str("=\"");
            text::push_escaped_label(out, value);
            out.push('"');
        }
        out.push_str("} ");
        text::push_value(out, value);
        out.push('\n');
    }

    /// The sample lines of each catalogue entry, in catalogue order.
    pub fn into_families(self) -> Vec<Bytes> {
        self.families.into_iter().map(Bytes::from).collect()
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

/// One collector's run over an inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub collector: &'static str,
    pub seconds: f64,
    pub ok: bool,
}

/// Runs every collector over an inventory, writing into `out`. A collector that fails loses
/// its own samples only (its part of each buffer is cut off again).
pub fn collect_all(ctx: &Context<'_>, out: &mut Sink) -> Vec<Run> {
    let mut runs = Vec::with_capacity(COLLECTORS.len());
    for collector in COLLECTORS {
        let start = Instant::now();
        let marks: Vec<usize> = out.families.iter().map(String::len).collect();
        let ok = match collector.collect(ctx, out) {
            Ok(()) => true,
            Err(e) => {
                warn!(vcenter = ctx.vcenter, collector = collector.name(), error = %e, "collector failed");
                for (family, mark) in out.families.iter_mut().zip(marks) {
                    family.truncate(mark);
                }
                false
            }
        };
        runs.push(Run {
            collector: collector.name(),
            seconds: start.elapsed().as_secs_f64(),
            ok,
        });
    }
    runs
}

/// `vsphere_scrape_collector_duration_seconds` and `_success` for one collector run.
pub fn record_run(out: &mut Sink, collector: &str, seconds: f64, ok: bool) {
    out.gauge(&COLLECTOR_DURATION, &[collector], seconds);
    out.gauge(&COLLECTOR_SUCCESS, &[collector], if ok { 1.0 } else { 0.0 });
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
        let mut sink = Sink::new("vc01");
        collect_all(
            &Context {
                vcenter: "vc01",
                inventory,
                config,
            },
            &mut sink,
        );
        let families = sink.into_families();
        let text = concat(&render(&[&families]));
        text::parse(&String::from_utf8_lossy(&text)).expect("the writer's own output parses")
    }
}
