//! Applying what vCenter sends to the inventory: the updates of a `WaitForUpdatesEx` answer
//! (`enter`, `modify`, `leave`), which filter they came through, and which VMs belong in the
//! ListView of VMs with snapshots. Pure functions over the parsed answer and the inventory; no
//! I/O (see [`super::protocol`]) and no supervision (see [`super`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::vsphere::client::ChannelReader;
use crate::vsphere::error::ParseError;
use crate::vsphere::model::{Inventory, MoId};
use crate::vsphere::properties::backup::is_windows_vm;
use crate::vsphere::properties::{
    self, DeviceScope, ObjectUpdate, Property, UpdateKind, clear_snapshot_vm_properties,
};
use crate::vsphere::xml::UpdateSetHead;

/// Which of our filters an update came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    Inventory,
    SnapshotVms,
    /// `config.extraConfig` of Windows guests, where vCenter refuses the keyed path of
    /// `disk.EnableUUID` (see [`crate::vsphere::properties::backup`]).
    WindowsVms,
    /// The root folder's `triggeredAlarmState`.
    Alarms,
}

/// The ids of our filters, which tell where an update came from.
#[derive(Debug, Clone)]
pub(super) struct FilterIds {
    pub(super) inventory: String,
    pub(super) snapshot_vms: String,
    pub(super) windows_vms: Option<String>,
    pub(super) alarms: String,
}

impl FilterIds {
    pub(super) fn kind(&self, id: &str) -> Result<Filter, String> {
        if id == self.inventory {
            Ok(Filter::Inventory)
        } else if id == self.snapshot_vms {
            Ok(Filter::SnapshotVms)
        } else if self.windows_vms.as_deref() == Some(id) {
            Ok(Filter::WindowsVms)
        } else if id == self.alarms {
            Ok(Filter::Alarms)
        } else {
            Err(format!("update from an unknown filter {id}"))
        }
    }
}

/// Updates parsed off one answer, applied once the answer is complete.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) updates: Vec<(String, ObjectUpdate)>,
}

/// Where the updates of one WaitForUpdatesEx answer go as they are parsed.
pub(super) trait UpdateSink: Send + 'static {
    fn update(&mut self, filter: &str, update: ObjectUpdate) -> Result<(), ParseError>;
}

/// Steady state: updates are kept until the answer is complete, then applied under the
/// state's lock in one go (answers are small: a few changes, at most MAX_OBJECT_UPDATES).
impl UpdateSink for Parsed {
    fn update(&mut self, filter: &str, update: ObjectUpdate) -> Result<(), ParseError> {
        self.updates.push((filter.to_string(), update));
        Ok(())
    }
}

/// A full retrieval: every object is applied to a fresh inventory as soon as it is parsed, so
/// the whole answer (hundreds of megabytes at 40,000 VMs) is never held at once.
pub(super) struct Fresh {
    pub(super) inventory: Inventory,
    /// VMs added to the ListView whose files and devices have not arrived yet.
    pub(super) pending: BTreeSet<MoId>,
    /// Windows guests added to their ListView whose extraConfig has not arrived yet.
    pub(super) pending_windows: BTreeSet<MoId>,
    pub(super) filters: FilterIds,
    /// Which VMs the devices are read for.
    pub(super) devices: DeviceScope,
}

impl UpdateSink for Fresh {
    fn update(&mut self, filter: &str, update: ObjectUpdate) -> Result<(), ParseError> {
        // The session is gone: a fault, so the supervisor logs in again at once.
        if let Some(path) = session_lost_in(&update) {
            return Err(ParseError::Fault(crate::vsphere::Fault {
                kind: "NotAuthenticated".into(),
                message: format!("session lost: {path}"),
            }));
        }
        let filter = self.filters.kind(filter).map_err(ParseError::Malformed)?;
        match filter {
            Filter::SnapshotVms => self.pending.remove(&update.obj.value),
            Filter::WindowsVms => self.pending_windows.remove(&update.obj.value),
            Filter::Inventory | Filter::Alarms => false,
        };
        apply_update(&mut self.inventory, filter, update, self.devices)
            .map_err(ParseError::Malformed)
    }
}

/// The blocking-side parser of a WaitForUpdatesEx answer.
pub(super) fn read_into<T: UpdateSink>(
    input: ChannelReader,
    sink: &mut T,
) -> Result<Option<UpdateSetHead>, ParseError> {
    let limits = input.limits();
    properties::read_updates(input, &limits, |filter, update| sink.update(filter, update))
}

/// True when an update is about a VM in the ListView.
pub(super) fn listed_vm(update: &ObjectUpdate, listed: &BTreeSet<MoId>) -> bool {
    listed.contains(&update.obj.value)
}

/// VMs to add to the ListView (they have snapshots now) and to remove (they have none, or are
/// gone). A VM leaving the list also loses its snapshot-only properties here, since vCenter
/// sends nothing more about them (its devices too when `devices` reads them for VMs with
/// snapshots only).
pub(super) fn list_delta(
    inventory: &mut Inventory,
    listed: &BTreeSet<MoId>,
    devices: DeviceScope,
) -> (Vec<MoId>, Vec<MoId>) {
    let add: Vec<MoId> = inventory
        .vms
        .values()
        .filter(|vm| vm.has_snapshots() && !listed.contains(&vm.id))
        .map(|vm| vm.id.clone())
        .collect();
    let mut remove = Vec::new();
    for id in listed {
        match inventory.vms.get_mut(id) {
            Some(vm) if vm.has_snapshots() => {}
            Some(vm) => {
                clear_snapshot_vm_properties(Arc::make_mut(vm), devices);
                remove.push(id.clone());
            }
            None => remove.push(id.clone()),
        }
    }
    (add, remove)
}

/// The property whose value came back as `NotAuthenticated` inside an update (a 200 answer
/// of a session vCenter has dropped meanwhile), as `type:id path`.
pub(super) fn session_lost_in(update: &ObjectUpdate) -> Option<String> {
    let path = update.session_lost.as_deref()?;
    Some(format!("{}:{} {path}", update.obj.kind, update.obj.value))
}

/// Windows guests to add to their ListView and VMs to remove from it (no longer Windows, or
/// gone). A VM leaving it loses its `disk.EnableUUID`, which vCenter no longer sends.
pub(super) fn windows_delta(
    inventory: &mut Inventory,
    listed: &BTreeSet<MoId>,
) -> (Vec<MoId>, Vec<MoId>) {
    let add: Vec<MoId> = inventory
        .vms
        .values()
        .filter(|vm| is_windows_vm(vm) && !listed.contains(&vm.id))
        .map(|vm| vm.id.clone())
        .collect();
    let mut remove = Vec::new();
    for id in listed {
        match inventory.vms.get_mut(id) {
            Some(vm) if is_windows_vm(vm) => {}
            Some(vm) => {
                properties::clear_vm_property(Arc::make_mut(vm), Property::ExtraConfig);
                remove.push(id.clone());
            }
            None => remove.push(id.clone()),
        }
    }
    (add, remove)
}

/// Applies one ObjectUpdate. `Err` (with the reason) for what only a full retrieval can put
/// right: a fault inside the update, or a change the mirror cannot apply as sent.
pub(super) fn apply_update(
    inventory: &mut Inventory,
    filter: Filter,
    update: ObjectUpdate,
    devices: DeviceScope,
) -> Result<(), String> {
    let obj = update.obj;
    if update.session_lost.is_some() {
        return Err(format!("{}: session no longer authenticated", obj.value));
    }
    if filter == Filter::Alarms {
        if update.kind == UpdateKind::Leave {
            inventory.triggered_alarms.clear();
            return Ok(());
        }
        return inventory.apply_alarm_changes(update.changes);
    }
    if update.kind == UpdateKind::Leave {
        match filter {
            Filter::Alarms => {}
            Filter::Inventory => inventory.remove_object(&obj),
            Filter::SnapshotVms => {
                if let Some(vm) = inventory.vms.get_mut(&obj.value) {
                    clear_snapshot_vm_properties(Arc::make_mut(vm), devices);
                }
            }
            Filter::WindowsVms => {
                if let Some(vm) = inventory.vms.get_mut(&obj.value) {
                    properties::clear_vm_property(Arc::make_mut(vm), Property::ExtraConfig);
                }
            }
        }
        return Ok(());
    }
    if filter != Filter::Inventory && !inventory.vms.contains_key(&obj.value) {
        // The VM left the inventory before its files (or extraConfig) arrived.
        return Ok(());
    }
    inventory.apply_changes(&obj, update.changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::Limits;

    fn updates(xml: &str) -> Vec<(String, ObjectUpdate)> {
        let mut out = Vec::new();
        properties::read_updates(xml.as_bytes(), &Limits::default(), |f, u| {
            out.push((f.to_string(), u));
            Ok(())
        })
        .unwrap();
        out
    }

    fn envelope(objects: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>1</version><filterSet><filter type="PropertyFilter">f1</filter>{objects}</filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn apply_all(inv: &mut Inventory, filter: Filter, xml: &str) -> Result<(), String> {
        apply_all_for(inv, filter, xml, DeviceScope::VmsWithSnapshots)
    }

    fn apply_all_for(
        inv: &mut Inventory,
        filter: Filter,
        xml: &str,
        devices: DeviceScope,
    ) -> Result<(), String> {
        for (_, u) in updates(xml) {
            apply_update(inv, filter, u, devices)?;
        }
        Ok(())
    }

    fn capacities(inv: &Inventory, id: &str) -> Vec<u64> {
        inv.vms[id].disk_capacities_bytes().collect()
    }

    #[test]
    fn enter_modify_and_leave_change_the_inventory() {
        let mut inv = Inventory::default();
        apply_all(&mut inv, Filter::Inventory, &envelope(r#"
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj>
 <changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db</val></changeSet>
 <changeSet><name>guest.toolsVersionStatus2</name><op>assign</op><val xsi:type="xsd:string">guestToolsCurrent</val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-2</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">web</val></changeSet></objectSet>"#)).unwrap();
        assert_eq!(inv.vms.len(), 2);
        apply_all(
            &mut inv,
            Filter::Inventory,
            &envelope(
                r#"
<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj>
 <changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db-renamed</val></changeSet>
 <changeSet><name>guest.toolsVersionStatus2</name><op>assign</op></changeSet></objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-2</obj></objectSet>"#,
            ),
        )
        .unwrap();
        assert_eq!(inv.vms.len(), 1);
        let vm = &inv.vms["vm-1"];
        assert_eq!(vm.name, "db-renamed");
        assert_eq!(
            vm.tools_version_status2, None,
            "assign without a value unsets"
        );
    }

    #[test]
    fn leaving_the_snapshot_list_drops_files_but_keeps_the_vm() {
        let mut inv = Inventory::default();
        apply_all(&mut inv, Filter::Inventory, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db</val></changeSet></objectSet>"#)).unwrap();
        apply_all(&mut inv, Filter::SnapshotVms, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualDisk"><key>2000</key><capacityInKB>1</capacityInKB></VirtualDevice></val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-9</obj><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"></val></changeSet></objectSet>"#)).unwrap();
        assert_eq!(capacities(&inv, "vm-1"), vec![1024]);
        assert!(
            !inv.vms.contains_key("vm-9"),
            "files alone do not make a VM"
        );
        apply_all(
            &mut inv,
            Filter::SnapshotVms,
            &envelope(
                r#"<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-1</obj></objectSet>"#,
            ),
        )
        .unwrap();
        assert!(capacities(&inv, "vm-1").is_empty());
        assert_eq!(inv.vms["vm-1"].name, "db");
    }

    #[test]
    fn devices_read_for_every_vm_stay_when_the_vm_leaves_the_snapshot_list() {
        let mut inv = Inventory::default();
        let every = DeviceScope::EveryVm;
        apply_all_for(&mut inv, Filter::Inventory, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db</val></changeSet><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualDisk"><key>2000</key><capacityInKB>1</capacityInKB></VirtualDevice></val></changeSet></objectSet>"#), every).unwrap();
        apply_all_for(&mut inv, Filter::SnapshotVms, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>layoutEx</name><op>assign</op><val xsi:type="VirtualMachineFileLayoutEx"></val></changeSet></objectSet>"#), every).unwrap();
        assert!(inv.vms["vm-1"].layout_ex.is_some());
        apply_all_for(
            &mut inv,
            Filter::SnapshotVms,
            &envelope(
                r#"<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-1</obj></objectSet>"#,
            ),
            every,
        )
        .unwrap();
        assert!(inv.vms["vm-1"].layout_ex.is_none());
        assert_eq!(capacities(&inv, "vm-1"), vec![1024]);
        // A change of the property replaces the VM's device facts whole.
        apply_all_for(&mut inv, Filter::Inventory, &envelope(r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13000</key></VirtualDevice></val></changeSet></objectSet>"#), every).unwrap();
        let devices = &inv.vms["vm-1"].devices;
        assert!(devices.disks.is_empty());
        assert_eq!(devices.pci_passthrough, 1);
    }

    #[test]
    fn changes_the_mirror_cannot_apply_ask_for_a_full_retrieval() {
        let mut inv = Inventory::default();
        let add = envelope(
            r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.hardware.device[2000]</name><op>add</op><val xsi:type="VirtualDisk"></val></changeSet></objectSet>"#,
        );
        let err = apply_all(&mut inv, Filter::Inventory, &add).unwrap_err();
        assert!(err.contains("cannot apply a \"add\" change"), "{err}");
        let unauth = envelope(
            r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><missingSet><path>name</path><fault><fault xsi:type="NotAuthenticated"></fault></fault></missingSet></objectSet>"#,
        );
        let err = apply_all(&mut inv, Filter::Inventory, &unauth).unwrap_err();
        assert!(err.contains("no longer authenticated"), "{err}");
    }

    #[test]
    fn list_delta_adds_vms_with_snapshots_and_removes_the_rest() {
        let mut inv = Inventory::default();
        let xml = envelope(
            r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>snapshot</name><op>assign</op><val xsi:type="VirtualMachineSnapshotInfo"><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>s</name><createTime>2026-11-20T10:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced></rootSnapshotList></val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-2</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">b</val></changeSet></objectSet>"#,
        );
        apply_all(&mut inv, Filter::Inventory, &xml).unwrap();
        let disk = crate::vsphere::model::Disk {
            capacity_bytes: Some(5),
            ..Default::default()
        };
        Arc::make_mut(inv.vms.get_mut("vm-2").unwrap())
            .devices
            .disks
            .push(disk);
        let listed: BTreeSet<MoId> = ["vm-2".to_string(), "vm-3".to_string()].into();
        let mut kept = inv.clone();
        let (add, remove) = list_delta(&mut inv, &listed, DeviceScope::VmsWithSnapshots);
        assert_eq!(add, ["vm-1"]);
        assert_eq!(remove, ["vm-2", "vm-3"]);
        assert!(capacities(&inv, "vm-2").is_empty());
        // Devices read for every VM are not the list's to drop.
        let (_, remove) = list_delta(&mut kept, &listed, DeviceScope::EveryVm);
        assert_eq!(remove, ["vm-2", "vm-3"]);
        assert_eq!(capacities(&kept, "vm-2"), vec![5]);
    }
}
