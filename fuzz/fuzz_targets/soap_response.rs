//! Any bytes as a vCenter answer: every reader of SOAP responses (a single return value, a
//! RetrievePropertiesEx result into the inventory, a WaitForUpdatesEx update set) must return
//! a value or an error, never panic, whatever vCenter (or a proxy in front of it) sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vsphere_backup_exporter::vsphere::properties::{self, InventoryBuilder};
use vsphere_backup_exporter::vsphere::xml;

fuzz_target!(|data: &[u8]| {
    let _ = xml::read_returnval(data);
    let limits = xml::Limits::default();
    let mut builder = InventoryBuilder::default();
    let _ = properties::read_objects(data, &limits, |object| {
        builder.add_object(object);
        Ok(())
    });
    let mut inventory = builder.finish();
    let _ = properties::read_updates(data, &limits, |_, update| {
        let _ = inventory.apply_changes(&update.obj, update.changes);
        Ok(())
    });
    for vm in inventory.vms.values() {
        for snapshot in vm.snapshots() {
            let _ = vm.snapshot_size_bytes(&snapshot);
        }
        let _ = vm.disk_capacity_bytes();
        let _ = inventory.placement(vm);
    }
});
