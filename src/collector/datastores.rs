//! Datastores: what kind each is and on which LUNs (`vsphere_datastore_info`), its capacity,
//! free and uncommitted space, whether it is accessible, and the bytes snapshots hold on it.
//!
//! Snapshot bytes come from the files of VMs with snapshots (`layoutEx` is read only for them):
//! every `.vmsn` and `.vmem` and every delta disk (any unit of a disk chain above its base),
//! each file once, on the datastore its path names (`[LocalDS_0] vm/vm-000001-delta.vmdk`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::catalogue::{
    DATASTORE_ACCESSIBLE, DATASTORE_CAPACITY, DATASTORE_FREE, DATASTORE_INFO,
    DATASTORE_SNAPSHOT_BYTES, DATASTORE_UNCOMMITTED,
};
use super::{CollectError, Collector, Context, Sink, Summary};
use crate::vsphere::Inventory;
use crate::vsphere::model::{DiskLayout, LayoutEx, MoId, Vm};

pub struct Datastores;

impl Collector for Datastores {
    fn name(&self) -> &'static str {
        "datastores"
    }

    /// Its series are per datastore; the snapshot bytes are sums of each shard's.
    fn per_vm(&self) -> bool {
        true
    }

    fn summarize(&self, ctx: &Context<'_>, vms: &[Arc<Vm>]) -> Option<Summary> {
        let bytes = snapshot_bytes_per_datastore(ctx.inventory, vms);
        (!bytes.is_empty()).then(|| Box::new(bytes) as Summary)
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        if !ctx.writes_rest() {
            return Ok(());
        }
        let inv = ctx.inventory;
        let mut snapshot_bytes: BTreeMap<&str, u64> = BTreeMap::new();
        let summaries = ctx.summaries::<BTreeMap<MoId, u64>>(self);
        for (ds, n) in summaries.iter().flat_map(|s| s.summary()) {
            let total = snapshot_bytes.entry(ds).or_default();
            *total = total.saturating_add(*n);
        }
        for ds in inv.datastores.values() {
            let ids = [ds.id.as_str(), ds.name.as_str()];
            let extents = ds.extent_disks.join(",");
            out.gauge(
                &DATASTORE_INFO,
                &[&ds.id, &ds.name, &ds.fs_type, &extents],
                1.0,
            );
            if let Some(v) = ds.capacity_bytes {
                out.gauge(&DATASTORE_CAPACITY, &ids, v as f64);
            }
            if let Some(v) = ds.free_bytes {
                out.gauge(&DATASTORE_FREE, &ids, v as f64);
            }
            if let Some(v) = ds.uncommitted_bytes {
                out.gauge(&DATASTORE_UNCOMMITTED, &ids, v as f64);
            }
            if let Some(v) = ds.accessible {
                out.gauge(&DATASTORE_ACCESSIBLE, &ids, f64::from(u8::from(v)));
            }
            let bytes = snapshot_bytes.get(ds.id.as_str()).copied().unwrap_or(0);
            out.gauge(&DATASTORE_SNAPSHOT_BYTES, &ids, bytes as f64);
        }
        Ok(())
    }
}

/// Snapshot file bytes of some VMs by datastore id.
fn snapshot_bytes_per_datastore(inv: &Inventory, vms: &[Arc<Vm>]) -> BTreeMap<MoId, u64> {
    let mut out: BTreeMap<MoId, u64> = BTreeMap::new();
    for vm in vms.iter().filter(|vm| vm.has_snapshots()) {
        let Some(layout) = &vm.layout_ex else {
            continue;
        };
        let keys = snapshot_file_keys(layout);
        for file in layout.file.iter().filter(|f| keys.contains(&f.key)) {
            if let Some(ds) = datastore_of(inv, vm, &file.name) {
                let total = match out.get_mut(ds) {
                    Some(total) => total,
                    None => out.entry(ds.to_owned()).or_default(),
                };
                *total = total.saturating_add(file.size);
            }
        }
    }
    out
}

/// The keys of a VM's snapshot files: `.vmsn`, `.vmem`, and every chain unit above a base disk.
fn snapshot_file_keys(layout: &LayoutEx) -> HashSet<i32> {
    let mut keys: HashSet<i32> = layout
        .file
        .iter()
        .filter(|f| matches!(f.file_type.as_str(), "snapshotData" | "snapshotMemory"))
        .map(|f| f.key)
        .collect();
    let deltas = |disks: &[DiskLayout]| -> Vec<i32> {
        disks
            .iter()
            .flat_map(|d| d.chain.iter().skip(1).flatten().copied())
            .collect()
    };
    keys.extend(deltas(&layout.disk));
    for s in &layout.snapshot {
        keys.extend(deltas(&s.disk));
    }
    keys
}

/// The id of the datastore a file path names: one of the VM's datastores of that name, else
/// any datastore of that name.
fn datastore_of<'a>(inv: &'a Inventory, vm: &Vm, path: &str) -> Option<&'a str> {
    let name = path.strip_prefix('[')?.split_once(']')?.0;
    let own = vm
        .backup
        .datastores
        .iter()
        .filter_map(|id| inv.datastores.get(id))
        .find(|ds| ds.name == name);
    own.or_else(|| inv.datastores.values().find(|ds| ds.name == name))
        .map(|ds| ds.id.as_str())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{
        Datastore, DiskLayout, LayoutEx, LayoutFile, SnapshotInfo, SnapshotLayout, SnapshotTree,
        Vm, VmBackup,
    };

    fn file(key: i32, name: &str, file_type: &str, size: u64) -> LayoutFile {
        LayoutFile {
            key,
            name: name.into(),
            file_type: file_type.into(),
            size,
        }
    }

    #[test]
    fn snapshot_bytes_count_vmsn_vmem_and_deltas_on_the_datastore_of_their_path() {
        let mut inv = Inventory::default();
        for (id, name, fs, extents) in [
            ("datastore-1", "ds0", "VMFS", vec!["naa.1", "naa.2"]),
            ("datastore-2", "nfs", "NFS", vec![]),
        ] {
            inv.datastores.insert(
                id.into(),
                Datastore {
                    id: id.into(),
                    name: name.into(),
                    fs_type: fs.into(),
                    extent_disks: extents.into_iter().map(String::from).collect(),
                    capacity_bytes: Some(1000),
                    free_bytes: Some(-5),
                    accessible: Some(name == "ds0"),
                    ..Default::default()
                },
            );
        }
        let chain = |units: &[&[i32]]| {
            vec![DiskLayout {
                key: 2000,
                chain: units.iter().map(|u| u.to_vec()).collect(),
            }]
        };
        let vm = Vm {
            id: "vm-1".into(),
            snapshot: Some(SnapshotInfo {
                current_snapshot: Some("snapshot-1".into()),
                root_snapshot_list: vec![SnapshotTree {
                    snapshot: "snapshot-1".into(),
                    ..Default::default()
                }],
            }),
            layout_ex: Some(LayoutEx {
                file: vec![
                    file(0, "[ds0] vm/vm.vmx", "config", 3000),
                    file(1, "[ds0] vm/vm.vmdk", "diskDescriptor", 500),
                    file(2, "[ds0] vm/vm-flat.vmdk", "diskExtent", 40_000),
                    file(3, "[ds0] vm/vm-000001.vmdk", "diskDescriptor", 384),
                    file(4, "[nfs] vm/vm-000001-delta.vmdk", "diskExtent", 7_000),
                    file(5, "[ds0] vm/vm-Snapshot1.vmsn", "snapshotData", 24_000),
                    file(6, "[ds0] vm/vm-Snapshot1.vmem", "snapshotMemory", 100_000),
                ],
                disk: chain(&[&[1, 2], &[3, 4]]),
                snapshot: vec![SnapshotLayout {
                    key: "snapshot-1".into(),
                    data_key: 5,
                    disk: chain(&[&[1, 2]]),
                }],
            }),
            backup: VmBackup {
                datastores: vec!["datastore-1".into(), "datastore-2".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        inv.vms.insert("vm-1".into(), Arc::new(vm));
        let out = run(&inv, &config());
        let bytes = |ds| {
            value(
                &out,
                "vsphere_datastore_snapshot_bytes",
                &[("datastore_id", ds)],
            )
        };
        assert_eq!(bytes("datastore-1"), Some((384 + 24_000 + 100_000) as f64));
        assert_eq!(bytes("datastore-2"), Some(7_000.0));
        let info = samples(&out, "vsphere_datastore_info");
        assert_eq!(info[0].labels["extent_disks"], "naa.1,naa.2");
        assert_eq!(info[0].labels["datastore_type"], "VMFS");
        assert_eq!(info[1].labels["extent_disks"], "");
        assert_eq!(
            value(
                &out,
                "vsphere_datastore_free_bytes",
                &[("datastore_id", "datastore-1")]
            ),
            Some(-5.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_datastore_accessible",
                &[("datastore_id", "datastore-2")]
            ),
            Some(0.0)
        );
        assert!(
            samples(&out, "vsphere_datastore_uncommitted_bytes").is_empty(),
            "unset: no series"
        );
    }
}
