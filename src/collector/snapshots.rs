//! Snapshots: per VM how many there are, how deep the deepest chain goes and how much space
//! they hold; per snapshot (every level of the tree) when it was taken, its size, whether it
//! was quiesced, and which backup product left it (the first configured pattern matching its
//! name, else an empty `backup_product`).
//!
//! Every VM gets the per-VM series, 0 when it has no snapshot, so `sum()` and `== 0` work
//! without `absent()`. The per-snapshot series exist only while the snapshot does, and
//! `vsphere_vm_snapshot_current_missing` only while the VM has snapshots (0 or 1, so an alert
//! on it can wait with `for:` through the moment vCenter clears the current snapshot while
//! taking or removing one).

use super::catalogue::{
    SNAPSHOT_CREATE_TIMESTAMP, SNAPSHOT_QUIESCED, SNAPSHOT_SIZE, VM_SNAPSHOT_CHAIN_DEPTH,
    VM_SNAPSHOT_CURRENT_MISSING, VM_SNAPSHOT_TOTAL_SIZE, VM_SNAPSHOTS,
};
use super::{CollectError, Collector, Context, Sink};

pub struct Snapshots;

impl Collector for Snapshots {
    fn name(&self) -> &'static str {
        "snapshots"
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        for vm in ctx.vms() {
            let snaps = vm.snapshots();
            let mut total = 0u64;
            for snap in &snaps {
                let size = vm.snapshot_size_bytes(snap);
                total = total.saturating_add(size);
                let tree = snap.tree;
                let labels = [
                    vm.id.as_str(),
                    vm.name.as_str(),
                    tree.snapshot.as_str(),
                    tree.name.as_str(),
                    ctx.config.backup_product(&tree.name),
                ];
                out.gauge(
                    &SNAPSHOT_CREATE_TIMESTAMP,
                    &labels,
                    tree.create_time_seconds,
                );
                out.gauge(&SNAPSHOT_SIZE, &labels, size as f64);
                out.gauge(
                    &SNAPSHOT_QUIESCED,
                    &labels,
                    f64::from(u8::from(tree.quiesced)),
                );
            }
            let ids = [vm.id.as_str(), vm.name.as_str()];
            out.gauge(&VM_SNAPSHOTS, &ids, snaps.len() as f64);
            out.gauge(
                &VM_SNAPSHOT_CHAIN_DEPTH,
                &ids,
                snaps.iter().map(|s| s.depth).max().unwrap_or(0) as f64,
            );
            out.gauge(&VM_SNAPSHOT_TOTAL_SIZE, &ids, total as f64);
            if let Some(missing) = vm.snapshot_current_missing() {
                out.gauge(
                    &VM_SNAPSHOT_CURRENT_MISSING,
                    &ids,
                    f64::from(u8::from(missing)),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::collector::test_support::{config, run, value};
    use crate::vsphere::Inventory;
    use std::sync::Arc;

    use crate::vsphere::model::{SnapshotInfo, SnapshotTree, Vm};

    fn node(id: &str, name: &str, children: Vec<SnapshotTree>) -> SnapshotTree {
        SnapshotTree {
            snapshot: id.into(),
            name: name.into(),
            create_time_seconds: 1_700_000_000.0,
            quiesced: id == "snapshot-1",
            child_snapshot_list: children,
            ..Default::default()
        }
    }

    #[test]
    fn every_level_of_the_tree_gets_series_and_backup_product_comes_from_patterns() {
        let vm = Vm {
            id: "vm-7".into(),
            name: "db".into(),
            snapshot: Some(SnapshotInfo {
                current_snapshot: Some("snapshot-3".into()),
                root_snapshot_list: vec![node(
                    "snapshot-1",
                    "VEEAM BACKUP TEMPORARY SNAPSHOT",
                    vec![node(
                        "snapshot-2",
                        "before patch",
                        vec![node("snapshot-3", "x", vec![])],
                    )],
                )],
            }),
            ..Default::default()
        };
        let bare = Vm {
            id: "vm-8".into(),
            name: "web".into(),
            ..Default::default()
        };
        let mut inv = Inventory::default();
        inv.vms.insert(vm.id.clone(), Arc::new(vm));
        inv.vms.insert(bare.id.clone(), Arc::new(bare));
        let out = run(&inv, &config());
        let per_vm = |name, id| value(&out, name, &[("vm_id", id)]);
        assert_eq!(per_vm("vsphere_vm_snapshots", "vm-7"), Some(3.0));
        assert_eq!(per_vm("vsphere_vm_snapshot_chain_depth", "vm-7"), Some(3.0));
        assert_eq!(per_vm("vsphere_vm_snapshots", "vm-8"), Some(0.0));
        assert_eq!(per_vm("vsphere_vm_snapshot_chain_depth", "vm-8"), Some(0.0));
        assert_eq!(
            per_vm("vsphere_vm_snapshot_total_size_bytes", "vm-8"),
            Some(0.0)
        );
        let quiesced = |id| value(&out, "vsphere_vm_snapshot_quiesced", &[("snapshot_id", id)]);
        assert_eq!(
            (quiesced("snapshot-1"), quiesced("snapshot-3")),
            (Some(1.0), Some(0.0))
        );
        assert_eq!(
            value(
                &out,
                "vsphere_vm_snapshot_create_timestamp_seconds",
                &[("snapshot_id", "snapshot-1"), ("backup_product", "veeam")]
            ),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_vm_snapshot_create_timestamp_seconds",
                &[
                    ("snapshot_id", "snapshot-2"),
                    ("backup_product", ""),
                    ("snapshot_name", "before patch")
                ]
            ),
            Some(1_700_000_000.0)
        );
    }
}
