//! Collectors turn a vCenter's [`Inventory`] into metric families, one file per concern, each
//! behind the small [`Collector`] interface and listed once in [`COLLECTORS`]. Every run
//! reports its own `vsphere_scrape_collector_duration_seconds` and `_success`.
//!
//! Collectors read the inventory only: they do no I/O and never talk to vCenter, so they are
//! tested on hand-built inventories and cannot slow a scrape down by waiting on the network.

pub mod catalogue;
mod snapshots;
mod tools;
mod vm;

use std::collections::HashMap;
use std::time::Instant;

use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
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

/// Collects metric samples by spec; `vcenter` is filled into every series.
pub struct Sink {
    vcenter: String,
    families: Vec<MetricFamily>,
    index: HashMap<&'static str, usize>,
}

impl Sink {
    pub fn new(vcenter: &str) -> Self {
        Sink {
            vcenter: vcenter.to_string(),
            families: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds one gauge sample. `labels` are the spec's label values after `vcenter`.
    pub fn gauge(&mut self, spec: &'static MetricSpec, labels: &[&str], value: f64) {
        debug_assert_eq!(spec.labels.len(), labels.len() + 1, "{}", spec.name);
        debug_assert_eq!(spec.kind, Kind::Gauge);
        let mut pairs = Vec::with_capacity(spec.labels.len());
        let values = std::iter::once(self.vcenter.as_str()).chain(labels.iter().copied());
        for (name, value) in spec.labels.iter().zip(values) {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value(value.to_string());
            pairs.push(pair);
        }
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        let mut metric = Metric::default();
        metric.set_label(pairs);
        metric.set_gauge(gauge);
        self.family(spec).mut_metric().push(metric);
    }

    fn family(&mut self, spec: &'static MetricSpec) -> &mut MetricFamily {
        let i = *self.index.entry(spec.name).or_insert_with(|| {
            let mut family = MetricFamily::default();
            family.set_name(spec.name.to_string());
            family.set_help(spec.help.to_string());
            family.set_field_type(MetricType::GAUGE);
            self.families.push(family);
            self.families.len() - 1
        });
        &mut self.families[i]
    }

    /// The families, each with its samples in the order they were added.
    pub fn into_families(self) -> Vec<MetricFamily> {
        self.families
    }
}

/// Runs every collector over an inventory. A collector that fails loses its own samples only.
pub fn collect_all(ctx: &Context<'_>, out: &mut Sink) {
    for collector in COLLECTORS {
        let start = Instant::now();
        let mut own = Sink::new(ctx.vcenter);
        let ok = match collector.collect(ctx, &mut own) {
            Ok(()) => true,
            Err(e) => {
                warn!(vcenter = ctx.vcenter, collector = collector.name(), error = %e, "collector failed");
                false
            }
        };
        if ok {
            out.merge(own);
        }
        record_run(out, collector.name(), start.elapsed().as_secs_f64(), ok);
    }
}

/// `vsphere_scrape_collector_duration_seconds` and `_success` for one collector run.
pub fn record_run(out: &mut Sink, collector: &str, seconds: f64, ok: bool) {
    out.gauge(&COLLECTOR_DURATION, &[collector], seconds);
    out.gauge(&COLLECTOR_SUCCESS, &[collector], if ok { 1.0 } else { 0.0 });
}

impl Sink {
    /// Moves another sink's samples into this one.
    pub fn merge(&mut self, other: Sink) {
        for mut family in other.families {
            let Some(spec) = catalogue::ALL.iter().find(|s| s.name == family.name()) else {
                continue;
            };
            let metrics = std::mem::take(family.mut_metric());
            self.family(spec).mut_metric().extend(metrics);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Reading collector output in tests: one metric's samples as label maps and values.
    use super::*;
    use std::collections::BTreeMap;

    pub type Sample = (BTreeMap<String, String>, f64);

    pub fn samples(families: &[MetricFamily], name: &str) -> Vec<Sample> {
        families
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .map(|m| {
                let labels = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name().to_string(), l.value().to_string()))
                    .collect();
                (labels, m.get_gauge().get_value())
            })
            .collect()
    }

    /// The value of the one sample of `name` whose labels include all of `want`.
    pub fn value(families: &[MetricFamily], name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = samples(families, name)
            .into_iter()
            .filter(|(labels, _)| {
                want.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .collect();
        match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

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

    pub fn run(inventory: &Inventory, config: &Config) -> Vec<MetricFamily> {
        let mut sink = Sink::new("vc01");
        collect_all(
            &Context {
                vcenter: "vc01",
                inventory,
                config,
            },
            &mut sink,
        );
        sink.into_families()
    }
}
