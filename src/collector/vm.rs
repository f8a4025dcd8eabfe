//! Per-VM facts that are not about snapshots or Tools: `vsphere_vm_info`, the disk capacity
//! snapshot sizes are compared with, and whether the disks need consolidation.
//!
//! The capacity exists only for VMs with snapshots: devices are most of the bytes vCenter
//! sends, and the exporter reads them only where a snapshot's size needs the comparison.
//!
//! `owner_labels` add one label per named custom attribute to `vsphere_vm_info` (empty when a
//! VM has no value, so the label set never changes); cardinality stays one series per VM.

use super::catalogue::{VM_CONSOLIDATION_NEEDED, VM_DISK_CAPACITY, VM_INFO};
use super::{CollectError, Collector, Context, Sink};

pub struct VmCollector;

impl Collector for VmCollector {
    fn name(&self) -> &'static str {
        "vm"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let owners = &ctx.config.backup.owner_labels;
        for vm in ctx.inventory.vms.values() {
            let place = ctx.inventory.placement(vm);
            let ids = [vm.id.as_str(), vm.name.as_str()];
            let extra: Vec<(&str, &str)> = owners
                .iter()
                .map(|o| {
                    let value = ctx
                        .inventory
                        .attribute_value(vm, &o.attribute)
                        .unwrap_or("");
                    (o.label.as_str(), value)
                })
                .collect();
            out.gauge_with(
                &VM_INFO,
                &[
                    &vm.id,
                    &vm.name,
                    place.host_name,
                    place.cluster_name,
                    place.datacenter_name,
                    &vm.guest_id,
                    &vm.power_state,
                    if vm.template { "true" } else { "false" },
                ],
                &extra,
                1.0,
            );
            if vm.has_snapshots() {
                out.gauge(&VM_DISK_CAPACITY, &ids, vm.disk_capacity_bytes() as f64);
            }
            out.gauge(
                &VM_CONSOLIDATION_NEEDED,
                &ids,
                f64::from(u8::from(vm.consolidation_needed)),
            );
        }
        Ok(())
    }
}
