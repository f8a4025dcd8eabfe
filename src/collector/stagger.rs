//! Stagger: how many VMs hold a backup product's snapshot now, per host and per datastore, so
//! an alert can catch two backups running on one host or one datastore (or, with
//! `vsphere_datastore_info`, on one LUN). Every host and datastore has a series, 0 without any.
//!
//! A backup snapshot is one whose name a `backup_snapshot_patterns` entry matches; a VM counts
//! once however many it holds. Its datastores are its `datastore` property.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::catalogue::{DATASTORE_BACKUP_SNAPSHOTS, HOST_BACKUP_SNAPSHOTS};
use super::{CollectError, Collector, Context, Sink, Summary};
use crate::vsphere::model::{MoId, Vm};

pub struct Stagger;

/// The VMs holding a backup snapshot among some VMs, per host id and per datastore id.
#[derive(Debug, Default)]
struct Counts {
    per_host: BTreeMap<MoId, u64>,
    per_datastore: BTreeMap<MoId, u64>,
}

impl Collector for Stagger {
    fn name(&self) -> &'static str {
        "stagger"
    }

    /// Its series are per host and datastore; they are sums of each shard's [`Counts`].
    fn per_vm(&self) -> bool {
        true
    }

    fn summarize(&self, ctx: &Context<'_>, vms: &[Arc<Vm>]) -> Option<Summary> {
        let mut counts = Counts::default();
        for vm in vms.iter().filter(|vm| holds_backup_snapshot(ctx, vm)) {
            if let Some(host) = &vm.host {
                *counts.per_host.entry(host.clone()).or_default() += 1;
            }
            for ds in &vm.backup.datastores {
                *counts.per_datastore.entry(ds.clone()).or_default() += 1;
            }
        }
        let empty = counts.per_host.is_empty() && counts.per_datastore.is_empty();
        (!empty).then(|| Box::new(counts) as Summary)
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        if !ctx.writes_rest() {
            return Ok(());
        }
        let inv = ctx.inventory;
        let mut per_host: BTreeMap<&str, u64> = BTreeMap::new();
        let mut per_datastore: BTreeMap<&str, u64> = BTreeMap::new();
        let summaries = ctx.summaries::<Counts>(self);
        for counts in summaries.iter().map(|s| s.summary()) {
            for (host, n) in &counts.per_host {
                *per_host.entry(host).or_default() += n;
            }
            for (ds, n) in &counts.per_datastore {
                *per_datastore.entry(ds).or_default() += n;
            }
        }
        for host in inv.hosts.values() {
            let cluster = host
                .parent
                .as_ref()
                .and_then(|p| inv.compute_resources.get(&p.value))
                .filter(|c| c.is_cluster)
                .map_or("", |c| c.name.as_str());
            let n = per_host.get(host.id.as_str()).copied().unwrap_or(0);
            out.gauge(
                &HOST_BACKUP_SNAPSHOTS,
                &[&host.id, &host.name, cluster],
                n as f64,
            );
        }
        for ds in inv.datastores.values() {
            let n = per_datastore.get(ds.id.as_str()).copied().unwrap_or(0);
            out.gauge(&DATASTORE_BACKUP_SNAPSHOTS, &[&ds.id, &ds.name], n as f64);
        }
        Ok(())
    }
}

/// The VM holds a snapshot a backup pattern names.
pub fn holds_backup_snapshot(ctx: &Context<'_>, vm: &Vm) -> bool {
    vm.snapshots()
        .iter()
        .any(|s| !ctx.config.backup_product(&s.tree.name).is_empty())
}
