//! The disk checks, from every VM's devices (`config.hardware.device`): disks no snapshot
//! captures (independent disks, physical-mode RDMs), disks attached to one VM that are another
//! VM's (what a backup proxy's failed hot-add leaves), what makes a snapshot impossible (shared
//! SCSI buses, multi-writer disks, PCI passthrough, Fault Tolerance), disks running on a delta
//! no snapshot explains, and disks changed block tracking does not track yet. The rules are the
//! model's ([`crate::vsphere::model::Vm::disks_not_snapshotted`] and its neighbours, shared
//! with the report); this file only writes them out.
//!
//! Every series exists only where its count is above 0 (the foreign disks' `_info` only while
//! the disk is attached), so a healthy inventory costs no series. The collector needs the
//! devices of every VM: turning it off (`--no-collector.disks`) makes the mirror read them for
//! VMs with snapshots only, as it did before (see docs/performance.md).

use std::sync::Arc;

use super::catalogue::{
    VM_CBT_INACTIVE_DISKS, VM_DISKS_NOT_SNAPSHOTTED, VM_FOREIGN_DISK_INFO,
    VM_PHANTOM_SNAPSHOT_DISKS, VM_SNAPSHOT_BLOCKERS,
};
use super::{CollectError, Collector, Context, Sink, Summary};
use crate::vsphere::model::{DiskIndex, Vm, foreign_disks_of};

/// The collector's name, which `--no-collector.disks` turns off.
pub const NAME: &str = "disks";

pub struct Disks;

impl Collector for Disks {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Per VM, but for the foreign disks, which link VMs: those come from each shard's
    /// [`DiskIndex`].
    fn per_vm(&self) -> bool {
        true
    }

    fn summarize(&self, _ctx: &Context<'_>, vms: &[Arc<Vm>]) -> Option<Summary> {
        Some(Box::new(DiskIndex::of(vms.iter().map(|vm| &**vm))))
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        for vm in ctx.vms() {
            let id = vm.id.as_str();
            let name = vm.name.as_str();
            for (reason, n) in vm.disks_not_snapshotted().by_reason() {
                if n > 0 {
                    out.gauge(&VM_DISKS_NOT_SNAPSHOTTED, &[id, name, reason], f64::from(n));
                }
            }
            for (reason, n) in vm.snapshot_blockers().by_reason() {
                if n > 0 {
                    out.gauge(&VM_SNAPSHOT_BLOCKERS, &[id, name, reason], f64::from(n));
                }
            }
            let phantom = vm.phantom_snapshot_disks();
            if phantom > 0 {
                out.gauge(&VM_PHANTOM_SNAPSHOT_DISKS, &[id, name], f64::from(phantom));
            }
            let inactive = vm.cbt_inactive_disks();
            if inactive > 0 {
                out.gauge(&VM_CBT_INACTIVE_DISKS, &[id, name], f64::from(inactive));
            }
        }
        if !ctx.writes_rest() {
            return Ok(());
        }
        let summaries = ctx.summaries::<DiskIndex>(self);
        let runs: Vec<(&[Arc<Vm>], &DiskIndex)> =
            summaries.iter().map(|s| (s.vms(), s.summary())).collect();
        for foreign in foreign_disks_of(&runs) {
            out.gauge(
                &VM_FOREIGN_DISK_INFO,
                &[
                    &foreign.vm.id,
                    &foreign.vm.name,
                    foreign.file,
                    &foreign.owner.id,
                    &foreign.owner.name,
                ],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::collector::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{
        Devices, Disk, DiskBacking, DiskMode, LayoutEx, LayoutFile, RdmMode, SnapshotInfo,
        SnapshotTree, Vm, VmBackup,
    };

    fn disk(file: &str) -> Disk {
        Disk {
            key: Some(2000),
            disk_mode: DiskMode::Persistent,
            file_name: file.into(),
            capacity_bytes: Some(1 << 30),
            change_id: true,
            ..Default::default()
        }
    }

    fn vm(id: &str, disks: Vec<Disk>) -> Vm {
        Vm {
            id: id.into(),
            name: format!("{id}-name"),
            power_state: "poweredOn".into(),
            connection_state: "connected".into(),
            fault_tolerance_state: Some("notConfigured".into()),
            devices: Devices {
                disks,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn with_snapshot(mut vm: Vm) -> Vm {
        vm.snapshot = Some(SnapshotInfo {
            current_snapshot: Some("snapshot-1".into()),
            root_snapshot_list: vec![SnapshotTree {
                snapshot: "snapshot-1".into(),
                ..Default::default()
            }],
        });
        vm
    }

    fn inventory(vms: Vec<Vm>) -> Inventory {
        let mut inv = Inventory::default();
        for vm in vms {
            inv.vms.insert(vm.id.clone(), Arc::new(vm));
        }
        inv
    }

    const NOT_SNAPSHOTTED: &str = "vsphere_vm_disks_not_snapshotted";
    const FOREIGN: &str = "vsphere_vm_foreign_disk_info";
    const BLOCKERS: &str = "vsphere_vm_snapshot_blockers";
    const PHANTOM: &str = "vsphere_vm_phantom_snapshot_disks";
    const CBT: &str = "vsphere_vm_cbt_inactive_disks";

    #[test]
    fn disks_a_snapshot_skips_are_counted_by_reason_and_a_physical_rdm_whatever_its_mode() {
        let mode = |file: &str, m| Disk {
            disk_mode: m,
            ..disk(file)
        };
        let rdm = |file: &str, m, compat| Disk {
            backing: DiskBacking::RawDiskMapping,
            disk_mode: m,
            compatibility_mode: Some(compat),
            ..disk(file)
        };
        let db = vm(
            "vm-1",
            vec![
                disk("[ds] db/db.vmdk"),
                mode("[ds] db/db_1.vmdk", DiskMode::IndependentPersistent),
                mode("[ds] db/db_2.vmdk", DiskMode::IndependentPersistent),
                mode("[ds] db/db_3.vmdk", DiskMode::IndependentNonpersistent),
                rdm("[ds] db/db_4.vmdk", DiskMode::Persistent, RdmMode::Physical),
                rdm(
                    "[ds] db/db_5.vmdk",
                    DiskMode::IndependentPersistent,
                    RdmMode::Physical,
                ),
                // A virtual-mode RDM is snapshotted like a VMDK.
                rdm("[ds] db/db_6.vmdk", DiskMode::Persistent, RdmMode::Virtual),
                mode("[ds] db/db_7.vmdk", DiskMode::Nonpersistent),
            ],
        );
        let plain = vm("vm-2", vec![disk("[ds] web/web.vmdk")]);
        let out = run(&inventory(vec![db, plain]), &config());
        let reason = |r| value(&out, NOT_SNAPSHOTTED, &[("vm_id", "vm-1"), ("reason", r)]);
        assert_eq!(reason("independent_persistent"), Some(2.0));
        assert_eq!(reason("independent_nonpersistent"), Some(1.0));
        assert_eq!(reason("physical_rdm"), Some(2.0));
        assert_eq!(
            samples(&out, NOT_SNAPSHOTTED).len(),
            3,
            "no series for vm-2, whose disk every snapshot takes"
        );
    }

    #[test]
    fn a_proxy_holding_another_vms_disk_names_the_owner_and_shared_disks_are_not_foreign() {
        let layout_home = |vmx: &str| LayoutEx {
            file: vec![LayoutFile {
                key: 0,
                name: vmx.into(),
                file_type: "config".into(),
                size: 1,
            }],
            ..Default::default()
        };
        // The owner runs on a snapshot (its disk is the delta, the base is held by the
        // proxy): the base lies in its directory, which its layoutEx tells.
        let mut owner = with_snapshot(vm("vm-10", vec![disk("[ds] db/db-000001.vmdk")]));
        owner.layout_ex = Some(layout_home("[ds] db/db.vmx"));
        let proxy = vm(
            "vm-20",
            vec![
                disk("[ds] proxy/proxy.vmdk"),
                disk("[ds] db/db.vmdk"),
                // Multi-writer: shared on purpose with the cluster nodes.
                Disk {
                    multi_writer: true,
                    ..disk("[ds] node1/shared.vmdk")
                },
            ],
        );
        let node1 = vm(
            "vm-31",
            vec![
                disk("[ds] node1/node1.vmdk"),
                Disk {
                    multi_writer: true,
                    ..disk("[ds] node1/shared.vmdk")
                },
            ],
        );
        let node2 = vm(
            "vm-32",
            vec![
                disk("[ds] node2/node2.vmdk"),
                Disk {
                    multi_writer: true,
                    ..disk("[ds] node1/shared.vmdk")
                },
            ],
        );
        // Two VMs on one ordinary file in a directory neither lives in: each names the other.
        let a = vm(
            "vm-41",
            vec![disk("[ds] a/a.vmdk"), disk("[ds] pool/data.vmdk")],
        );
        let b = vm(
            "vm-42",
            vec![disk("[ds] b/b.vmdk"), disk("[ds] pool/data.vmdk")],
        );
        // A disk on another datastore no VM lives in is its own VM's.
        let spread = vm(
            "vm-50",
            vec![
                disk("[ds] spread/spread.vmdk"),
                disk("[ds2] spread/spread_1.vmdk"),
            ],
        );
        let out = run(
            &inventory(vec![owner, proxy, node1, node2, a, b, spread]),
            &config(),
        );
        let foreign = samples(&out, FOREIGN);
        let rows: Vec<(&str, &str, &str, &str)> = foreign
            .iter()
            .map(|s| {
                (
                    s.labels["vm_id"].as_str(),
                    s.labels["disk_file"].as_str(),
                    s.labels["owner_vm_id"].as_str(),
                    s.labels["owner_vm_name"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("vm-20", "[ds] db/db.vmdk", "vm-10", "vm-10-name"),
                ("vm-41", "[ds] pool/data.vmdk", "vm-42", "vm-42-name"),
                ("vm-42", "[ds] pool/data.vmdk", "vm-41", "vm-41-name"),
            ]
        );
        assert!(foreign.iter().all(|s| s.value == 1.0));
        assert_eq!(foreign[0].labels["vm_name"], "vm-20-name");
    }

    #[test]
    fn the_vm_whose_directory_holds_a_file_two_vms_list_is_its_owner() {
        // Without layoutEx (no snapshot), a VM's home is its first disk's directory.
        let owner = vm(
            "vm-1",
            vec![disk("[ds] app/app.vmdk"), disk("[ds] app/app_1.vmdk")],
        );
        let proxy = vm(
            "vm-2",
            vec![disk("[ds] px/px.vmdk"), disk("[ds] app/app_1.vmdk")],
        );
        let out = run(&inventory(vec![owner, proxy]), &config());
        let foreign = samples(&out, FOREIGN);
        assert_eq!(foreign.len(), 1, "{foreign:?}");
        assert_eq!(foreign[0].labels["vm_id"], "vm-2");
        assert_eq!(foreign[0].labels["owner_vm_id"], "vm-1");
    }

    #[test]
    fn each_blocker_is_counted_by_reason_and_only_where_present() {
        let mut blocked = vm(
            "vm-1",
            vec![
                disk("[ds] c/c.vmdk"),
                Disk {
                    multi_writer: true,
                    ..disk("[ds] c/quorum.vmdk")
                },
                Disk {
                    multi_writer: true,
                    ..disk("[ds] c/data.vmdk")
                },
            ],
        );
        blocked.devices.scsi_shared_bus = 2;
        blocked.devices.pci_passthrough = 1;
        blocked.fault_tolerance_state = Some("running".into());
        let mut not_configured = vm("vm-2", vec![disk("[ds] d/d.vmdk")]);
        not_configured.fault_tolerance_state = Some("notConfigured".into());
        let mut unset = vm("vm-3", vec![disk("[ds] e/e.vmdk")]);
        unset.fault_tolerance_state = None;
        let out = run(&inventory(vec![blocked, not_configured, unset]), &config());
        let reason = |r| value(&out, BLOCKERS, &[("vm_id", "vm-1"), ("reason", r)]);
        assert_eq!(reason("scsi_bus_sharing"), Some(2.0));
        assert_eq!(reason("multi_writer_disk"), Some(2.0));
        assert_eq!(reason("pci_passthrough"), Some(1.0));
        assert_eq!(reason("fault_tolerance"), Some(1.0));
        assert_eq!(samples(&out, BLOCKERS).len(), 4, "none for vm-2 and vm-3");
        let level = |id: &str| {
            samples(&out, "vsphere_vm_backup_consistency")
                .into_iter()
                .find(|s| s.labels["vm_id"] == id)
                .map(|s| s.labels["level"].clone())
        };
        assert_eq!(level("vm-1").as_deref(), Some("none"));
        assert_eq!(level("vm-2").as_deref(), Some("crash"), "no Tools running");
    }

    #[test]
    fn fault_tolerance_in_any_state_but_not_configured_blocks() {
        for (state, blocks) in [
            ("enabled", true),
            ("needSecondary", true),
            ("starting", true),
            ("disabled", true),
            ("notConfigured", false),
        ] {
            let mut v = vm("vm-1", vec![]);
            v.fault_tolerance_state = Some(state.into());
            let out = run(&inventory(vec![v]), &config());
            let ft = value(
                &out,
                BLOCKERS,
                &[("vm_id", "vm-1"), ("reason", "fault_tolerance")],
            );
            assert_eq!(ft.is_some(), blocks, "{state}");
        }
    }

    #[test]
    fn a_delta_without_snapshots_is_phantom_but_not_with_snapshots_nor_a_linked_clone() {
        let on_parent = |file: &str, parent: &str| Disk {
            parent: Some(parent.into()),
            ..disk(file)
        };
        let phantom = vm(
            "vm-1",
            vec![
                on_parent("[ds] a/a-000002.vmdk", "[ds] a/a-000001.vmdk"),
                // The name alone tells a delta when the parent is not sent.
                disk("[ds] a/a_1-000001.vmdk"),
                disk("[ds] a/a_2.vmdk"),
            ],
        );
        let with_snapshots = with_snapshot(vm(
            "vm-2",
            vec![on_parent("[ds] b/b-000001.vmdk", "[ds] b/b.vmdk")],
        ));
        // A linked clone runs on a delta of its own over a base in another VM's directory.
        let linked_clone = vm(
            "vm-3",
            vec![on_parent(
                "[ds] clone/clone-000001.vmdk",
                "[ds] replica/replica.vmdk",
            )],
        );
        let named_like = vm(
            "vm-4",
            vec![disk("[ds] d/d-00001.vmdk"), disk("[ds] d/backup-2026.vmdk")],
        );
        let out = run(
            &inventory(vec![phantom, with_snapshots, linked_clone, named_like]),
            &config(),
        );
        assert_eq!(value(&out, PHANTOM, &[("vm_id", "vm-1")]), Some(2.0));
        assert_eq!(
            samples(&out, PHANTOM).len(),
            1,
            "{:?}",
            samples(&out, PHANTOM)
        );
    }

    #[test]
    fn cbt_inactive_disks_are_those_without_a_change_id_on_a_vm_with_cbt_on() {
        let no_id = |file: &str| Disk {
            change_id: false,
            ..disk(file)
        };
        let cbt = VmBackup {
            cbt_enabled: true,
            ..Default::default()
        };
        let mut on = vm(
            "vm-1",
            vec![
                no_id("[ds] a/a.vmdk"),
                no_id("[ds] a/a_1.vmdk"),
                disk("[ds] a/a_2.vmdk"),
                // Disks CBT never tracks are not counted.
                Disk {
                    disk_mode: DiskMode::IndependentPersistent,
                    ..no_id("[ds] a/a_3.vmdk")
                },
                Disk {
                    compatibility_mode: Some(RdmMode::Physical),
                    ..no_id("[ds] a/a_4.vmdk")
                },
                Disk {
                    multi_writer: true,
                    ..no_id("[ds] a/a_5.vmdk")
                },
            ],
        );
        on.backup = cbt.clone();
        let off = vm("vm-2", vec![no_id("[ds] b/b.vmdk")]);
        let mut tracking = vm("vm-3", vec![disk("[ds] c/c.vmdk")]);
        tracking.backup = cbt.clone();
        let mut template = vm("vm-4", vec![no_id("[ds] t/t.vmdk")]);
        template.backup = cbt;
        template.template = true;
        let out = run(&inventory(vec![on, off, tracking, template]), &config());
        assert_eq!(value(&out, CBT, &[("vm_id", "vm-1")]), Some(2.0));
        assert_eq!(
            samples(&out, CBT).len(),
            1,
            "none without CBT, when tracking, on templates"
        );
    }

    #[test]
    fn a_healthy_inventory_has_no_disk_series_and_the_collector_reports_its_run() {
        let out = run(
            &inventory(vec![vm("vm-1", vec![disk("[ds] a/a.vmdk")])]),
            &config(),
        );
        for name in [NOT_SNAPSHOTTED, FOREIGN, BLOCKERS, PHANTOM, CBT] {
            assert!(samples(&out, name).is_empty(), "{name}");
        }
    }
}
