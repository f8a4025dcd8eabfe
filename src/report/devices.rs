//! The report's view of the device checks: for each VM, what its devices and runtime say about
//! its backups (disks no snapshot captures, another VM's disk it holds, what blocks a
//! snapshot, a delta it runs on without a snapshot, a snapshot tree without current, CBT that
//! does not track, a question it waits on, a connection state other than connected), as risk
//! lines and as the disk fields of its snapshot rows. It reads the same inventory as the
//! `disks` collector and follows the rules docs/backup-checks.md states for its metrics; it
//! never calls vCenter.

use std::collections::BTreeMap;

use crate::vsphere::Inventory;
use crate::vsphere::model::Vm;

use super::{Risk, vm_risk};

/// What the device checks find on one VM. The counts are the model's rules
/// ([`Vm::snapshot_blockers`] and its neighbours), which the `disks` collector writes out.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Findings<'a> {
    /// Disks no snapshot captures: the reason (`independent_persistent`,
    /// `independent_nonpersistent`, `physical_rdm`) and the disk's file.
    pub not_snapshotted: Vec<(&'static str, &'a str)>,
    /// Disks that are another VM's ([`Inventory::foreign_disks`]).
    pub foreign: Vec<Foreign<'a>>,
    /// What makes a snapshot impossible, by reason, with how many (only those above 0).
    pub blockers: Vec<(&'static str, u32)>,
    /// Disks running on a delta while the VM has no snapshot.
    pub phantom_disks: u32,
    /// Snapshots, and none current.
    pub current_missing: bool,
    /// With CBT on, the disks it does not track yet.
    pub cbt_inactive: u32,
    /// The question the VM waits on.
    pub question: Option<&'a str>,
    /// `runtime.connectionState` when it is not `connected`.
    pub not_connected: Option<&'a str>,
}

/// A disk attached to a VM that is another VM's.
#[derive(Debug, PartialEq)]
pub(super) struct Foreign<'a> {
    pub file: &'a str,
    pub owner_id: &'a str,
    pub owner_name: &'a str,
}

/// The foreign disks of an inventory, by the id of the VM that holds them.
pub(super) struct Owners<'a>(BTreeMap<&'a str, Vec<Foreign<'a>>>);

impl<'a> Owners<'a> {
    pub fn of(inventory: &'a Inventory) -> Self {
        let mut held: BTreeMap<&'a str, Vec<Foreign<'a>>> = BTreeMap::new();
        for f in inventory.foreign_disks() {
            held.entry(f.vm.id.as_str()).or_default().push(Foreign {
                file: f.file,
                owner_id: &f.owner.id,
                owner_name: &f.owner.name,
            });
        }
        Owners(held)
    }

    fn held_by(&mut self, vm: &Vm) -> Vec<Foreign<'a>> {
        self.0.remove(vm.id.as_str()).unwrap_or_default()
    }
}

/// The device checks' findings on `vm` (its foreign disks taken from `owners`).
pub(super) fn findings<'a>(vm: &'a Vm, owners: &mut Owners<'a>) -> Findings<'a> {
    Findings {
        not_snapshotted: vm
            .devices
            .disks
            .iter()
            .filter_map(|d| {
                d.not_snapshotted_reason()
                    .map(|r| (r, d.file_name.as_str()))
            })
            .collect(),
        foreign: owners.held_by(vm),
        blockers: vm
            .snapshot_blockers()
            .by_reason()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        phantom_disks: vm.phantom_snapshot_disks(),
        current_missing: vm.snapshot_current_missing() == Some(true),
        cbt_inactive: vm.cbt_inactive_disks(),
        question: vm.question.as_ref().map(|q| q.text.as_str()),
        not_connected: Some(vm.connection_state.as_str())
            .filter(|s| !s.is_empty() && *s != "connected"),
    }
}

impl Findings<'_> {
    /// The `disks_not_snapshotted` field of a row: `reason file`, by `; `.
    pub fn not_snapshotted_field(&self) -> String {
        self.not_snapshotted
            .iter()
            .map(|(reason, file)| format!("{reason} {file}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The `foreign_disks` field of a row: `file of owner (owner id)`, by `; `.
    pub fn foreign_field(&self) -> String {
        self.foreign
            .iter()
            .map(|f| format!("{} of {} ({})", f.file, f.owner_name, f.owner_id))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The VMs of each device risk line, over every vCenter in the report: `name: detail`.
#[derive(Default)]
pub(super) struct DeviceRisks {
    not_snapshotted: Vec<String>,
    foreign: Vec<String>,
    blockers: Vec<String>,
    phantom: Vec<String>,
    current_missing: Vec<String>,
    cbt_inactive: Vec<String>,
    question: Vec<String>,
    not_connected: Vec<String>,
}

impl DeviceRisks {
    pub fn add(&mut self, inventory: &Inventory) {
        let mut owners = Owners::of(inventory);
        for vm in inventory.vms.values() {
            let f = findings(vm, &mut owners);
            let name = &vm.name;
            if let Some(state) = f.not_connected {
                self.not_connected.push(format!("{name}: {state}"));
            }
            if vm.template {
                continue;
            }
            if !f.not_snapshotted.is_empty() {
                self.not_snapshotted
                    .push(format!("{name}: {}", f.not_snapshotted_field()));
            }
            if !f.foreign.is_empty() {
                let held: Vec<String> = f
                    .foreign
                    .iter()
                    .map(|d| format!("{} of {}", d.file, d.owner_name))
                    .collect();
                self.foreign.push(format!("{name}: {}", held.join("; ")));
            }
            if !f.blockers.is_empty() {
                let reasons: Vec<&str> = f.blockers.iter().map(|(r, _)| *r).collect();
                self.blockers
                    .push(format!("{name}: {}", reasons.join(", ")));
            }
            // A VM vCenter already asks to consolidate is on the consolidation line.
            if f.phantom_disks > 0 && !vm.consolidation_needed {
                self.phantom
                    .push(format!("{name}: {} disk(s) on a delta", f.phantom_disks));
            }
            if f.current_missing {
                self.current_missing.push(name.clone());
            }
            if f.cbt_inactive > 0 {
                self.cbt_inactive.push(format!(
                    "{name}: {} disk(s) without change id",
                    f.cbt_inactive
                ));
            }
            if let Some(question) = f.question {
                self.question.push(format!("{name}: {question}"));
            }
        }
    }

    /// The risk lines, in the order of docs/report.md.
    pub fn risks(self) -> Vec<Risk> {
        vec![
            vm_risk(
                "disks_not_snapshotted",
                "VMs with disks no snapshot captures (independent disks, physical RDMs: in no image-level backup)".to_owned(),
                self.not_snapshotted,
            ),
            vm_risk(
                "foreign_disks",
                "VMs holding another VM's disk (a backup proxy's hot-add leftover)".to_owned(),
                self.foreign,
            ),
            vm_risk(
                "snapshot_blockers",
                "VMs that cannot be snapshotted (bus sharing, multi-writer disks, PCI passthrough, Fault Tolerance)".to_owned(),
                self.blockers,
            ),
            vm_risk(
                "phantom_snapshots",
                "VMs running on delta disks without a snapshot (phantom snapshots)".to_owned(),
                self.phantom,
            ),
            vm_risk(
                "snapshot_current_missing",
                "VMs with snapshots but no current snapshot".to_owned(),
                self.current_missing,
            ),
            vm_risk(
                "cbt_inactive",
                "VMs with CBT on and disks it does not track (incrementals read them whole)"
                    .to_owned(),
                self.cbt_inactive,
            ),
            vm_risk(
                "question_pending",
                "VMs paused on a question".to_owned(),
                self.question,
            ),
            vm_risk(
                "not_connected",
                "VMs not connected (inaccessible, orphaned, invalid or disconnected)".to_owned(),
                self.not_connected,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::vsphere::model::{
        Devices, Disk, DiskMode, RdmMode, SnapshotInfo, SnapshotTree, VmQuestion,
    };

    fn disk(file: &str) -> Disk {
        Disk {
            file_name: file.into(),
            change_id: true,
            ..Default::default()
        }
    }

    fn vm(id: &str, name: &str, disks: Vec<Disk>) -> Vm {
        Vm {
            id: id.into(),
            name: name.into(),
            connection_state: "connected".into(),
            devices: Devices {
                disks,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn inventory(vms: Vec<Vm>) -> Inventory {
        let mut inv = Inventory::default();
        for vm in vms {
            inv.vms.insert(vm.id.clone(), Arc::new(vm));
        }
        inv
    }

    fn one_snapshot(current: bool) -> Option<SnapshotInfo> {
        Some(SnapshotInfo {
            current_snapshot: current.then(|| "snapshot-1".into()),
            root_snapshot_list: vec![SnapshotTree {
                snapshot: "snapshot-1".into(),
                name: "s".into(),
                ..Default::default()
            }],
        })
    }

    /// A proxy holding its victim's data disk, two nodes sharing a multi-writer disk.
    fn hot_add_and_cluster() -> Inventory {
        let victim = vm(
            "vm-1",
            "victim",
            vec![
                disk("[ds] victim/victim.vmdk"),
                disk("[ds] victim/victim_1.vmdk"),
            ],
        );
        let proxy = vm(
            "vm-2",
            "proxy",
            vec![
                disk("[ds] proxy/proxy.vmdk"),
                disk("[ds] victim/victim_1.vmdk"),
            ],
        );
        let shared = Disk {
            multi_writer: true,
            ..disk("[ds] node-a/node-a_1.vmdk")
        };
        let a = vm(
            "vm-3",
            "node-a",
            vec![disk("[ds] node-a/node-a.vmdk"), shared.clone()],
        );
        let b = vm(
            "vm-4",
            "node-b",
            vec![disk("[ds] node-b/node-b.vmdk"), shared],
        );
        inventory(vec![victim, proxy, a, b])
    }

    #[test]
    fn a_disk_in_another_vms_directory_is_foreign_unless_multi_writer() {
        let inv = hot_add_and_cluster();
        let found = |id: &str| findings(&inv.vms[id], &mut Owners::of(&inv));
        assert_eq!(
            found("vm-2").foreign,
            [Foreign {
                file: "[ds] victim/victim_1.vmdk",
                owner_id: "vm-1",
                owner_name: "victim",
            }]
        );
        assert_eq!(
            found("vm-2").foreign_field(),
            "[ds] victim/victim_1.vmdk of victim (vm-1)"
        );
        for id in ["vm-1", "vm-3", "vm-4"] {
            assert!(found(id).foreign.is_empty(), "{id}");
        }
        for id in ["vm-3", "vm-4"] {
            assert_eq!(found(id).blockers, [("multi_writer_disk", 1)], "{id}");
        }
    }

    #[test]
    fn each_check_reads_its_device_or_runtime_value() {
        let mut v = vm(
            "vm-9",
            "all",
            vec![
                Disk {
                    disk_mode: DiskMode::IndependentPersistent,
                    ..disk("[ds] all/all.vmdk")
                },
                Disk {
                    disk_mode: DiskMode::IndependentNonpersistent,
                    change_id: false,
                    ..disk("[ds] all/all_1.vmdk")
                },
                Disk {
                    compatibility_mode: Some(RdmMode::Physical),
                    disk_mode: DiskMode::IndependentPersistent,
                    ..disk("[ds] all/all_2.vmdk")
                },
                Disk {
                    compatibility_mode: Some(RdmMode::Virtual),
                    parent: Some("[ds] all/all_3.vmdk".into()),
                    change_id: false,
                    ..disk("[ds] all/all_3-000001.vmdk")
                },
            ],
        );
        v.devices.scsi_shared_bus = 1;
        v.devices.pci_passthrough = 2;
        v.fault_tolerance_state = Some("running".into());
        v.question = Some(VmQuestion {
            id: "_vmx1".into(),
            text: "There is no more space".into(),
        });
        v.connection_state = "inaccessible".into();
        let inv = inventory(vec![v.clone()]);
        let f = findings(&v, &mut Owners::of(&inv));
        assert_eq!(
            f.not_snapshotted,
            [
                ("independent_persistent", "[ds] all/all.vmdk"),
                ("independent_nonpersistent", "[ds] all/all_1.vmdk"),
                ("physical_rdm", "[ds] all/all_2.vmdk"),
            ]
        );
        assert_eq!(
            f.blockers,
            [
                ("scsi_bus_sharing", 1),
                ("pci_passthrough", 2),
                ("fault_tolerance", 1)
            ]
        );
        assert_eq!(f.phantom_disks, 1, "no snapshot, one disk on a delta");
        assert_eq!(f.cbt_inactive, 0, "CBT is off");
        assert_eq!(f.question, Some("There is no more space"));
        assert_eq!(f.not_connected, Some("inaccessible"));
        assert!(!f.current_missing);

        v.backup.cbt_enabled = true;
        v.fault_tolerance_state = Some("notConfigured".into());
        v.snapshot = one_snapshot(false);
        v.connection_state = "connected".into();
        let f = findings(&v, &mut Owners::of(&inv));
        assert_eq!(
            f.cbt_inactive, 1,
            "the independent disk is one CBT never tracks"
        );
        assert_eq!(f.phantom_disks, 0, "a snapshot's delta is no phantom");
        assert!(f.current_missing);
        assert_eq!(f.not_connected, None);
        assert!(!f.blockers.iter().any(|(r, _)| *r == "fault_tolerance"));
        v.snapshot = one_snapshot(true);
        assert!(!findings(&v, &mut Owners::of(&inv)).current_missing);
    }

    #[test]
    fn risk_lines_name_each_vm_with_its_detail_and_skip_templates() {
        let mut inv = hot_add_and_cluster();
        let mut asking = vm("vm-5", "asking", vec![disk("[ds] asking/asking.vmdk")]);
        asking.question = Some(VmQuestion {
            id: "_vmx1".into(),
            text: "Retry?".into(),
        });
        let mut phantom = vm(
            "vm-6",
            "phantom",
            vec![Disk {
                parent: Some(String::new()),
                ..disk("[ds] phantom/phantom-000001.vmdk")
            }],
        );
        let mut consolidating = phantom.clone();
        consolidating.id = "vm-7".into();
        consolidating.name = "consolidating".into();
        consolidating.consolidation_needed = true;
        consolidating.devices.disks[0].file_name =
            "[ds] consolidating/consolidating-000001.vmdk".into();
        phantom.backup.cbt_enabled = true;
        phantom.devices.disks[0].change_id = false;
        let mut template = vm(
            "vm-8",
            "template",
            vec![Disk {
                disk_mode: DiskMode::IndependentPersistent,
                ..disk("[ds] template/template.vmdk")
            }],
        );
        template.template = true;
        template.connection_state = "orphaned".into();
        for v in [asking, phantom, consolidating, template] {
            inv.vms.insert(v.id.clone(), Arc::new(v));
        }
        let mut risks = DeviceRisks::default();
        risks.add(&inv);
        let lines: BTreeMap<&str, (usize, Vec<String>)> = risks
            .risks()
            .into_iter()
            .map(|r| (r.key, (r.count, r.named)))
            .collect();
        let line = |key: &str| lines[key].clone();
        assert_eq!(
            line("foreign_disks"),
            (
                1,
                vec!["proxy: [ds] victim/victim_1.vmdk of victim".to_owned()]
            )
        );
        assert_eq!(
            line("snapshot_blockers"),
            (
                2,
                vec![
                    "node-a: multi_writer_disk".to_owned(),
                    "node-b: multi_writer_disk".to_owned()
                ]
            )
        );
        assert_eq!(
            line("phantom_snapshots"),
            (1, vec!["phantom: 1 disk(s) on a delta".to_owned()]),
            "the VM needing consolidation is on the consolidation line"
        );
        assert_eq!(
            line("cbt_inactive"),
            (1, vec!["phantom: 1 disk(s) without change id".to_owned()])
        );
        assert_eq!(
            line("question_pending"),
            (1, vec!["asking: Retry?".to_owned()])
        );
        assert_eq!(line("disks_not_snapshotted").0, 0, "templates left out");
        assert_eq!(
            line("not_connected"),
            (1, vec!["template: orphaned".to_owned()])
        );
        assert_eq!(line("snapshot_current_missing").0, 0);
    }

    #[test]
    fn the_question_line_shows_vcenters_text_as_text_in_the_page() {
        let mut asking = vm("vm-1", "asking", vec![disk("[ds] asking/asking.vmdk")]);
        asking.question = Some(VmQuestion {
            id: "_vmx1".into(),
            text: "<script>alert(1)</script> Retry?".into(),
        });
        let inv = inventory(vec![asking]);
        let part = super::super::Part {
            status: super::super::VcenterStatus {
                name: "vc01".into(),
                synced: true,
                last_update_seconds: 0.0,
                error: None,
            },
            inventory: Some(&inv),
            events: None,
            tags: None,
        };
        let config = crate::collector::test_support::config();
        let report = super::super::Report::build(&[part], &config, 0.0);
        let page = String::from_utf8(
            report
                .render(super::super::Format::Html)
                .expect("the page renders"),
        )
        .expect("UTF-8");
        assert!(
            page.contains("asking: &#60;script&#62;alert(1)&#60;/script&#62; Retry?"),
            "{page}"
        );
        assert!(!page.contains("<script>alert(1)"));
        let text = String::from_utf8(report.render(super::super::Format::Text).expect("text"))
            .expect("UTF-8");
        assert!(
            text.contains("VMs paused on a question: 1 (asking: <script>alert(1)</script> Retry?)"),
            "{text}"
        );
    }
}
