//! Per-VM facts that are not about snapshots or Tools: `vsphere_vm_info`, the disk capacity
//! snapshot sizes are compared with, whether the disks need consolidation, a question the VM
//! waits on (`runtime.question`) and a connection state other than connected
//! (`runtime.connectionState`). The last two come from properties read for every VM, so they
//! are here rather than in the `disks` collector, which can be turned off.
//!
//! The capacity exists only for VMs with snapshots, where a snapshot's size is compared with it:
//! the devices it comes from are read for every VM only while the `disks` collector is on.
//!
//! `owner_labels` add one label per named custom attribute to `vsphere_vm_info` (empty when a
//! VM has no value, so the label set never changes); cardinality stays one series per VM.
//! `tag_labels` do the same for vSphere tag categories (the tags' names, comma-joined in name
//! order), from the `tags` source when it is in sync, empty while it is not.

use super::catalogue::{
    VM_CONNECTION_STATE, VM_CONSOLIDATION_NEEDED, VM_DISK_CAPACITY, VM_INFO, VM_QUESTION_PENDING,
};
use super::{CollectError, Collector, Context, Sink};
use crate::source::tags::{TAGS, VmTags, label_values};

pub struct VmCollector;

impl Collector for VmCollector {
    fn name(&self) -> &'static str {
        "vm"
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn reads_if_present(&self) -> &'static [&'static str] {
        &[TAGS]
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let owners = &ctx.config.backup.owner_labels;
        let tag_labels = &ctx.config.tags.labels;
        let categories: Vec<&str> = tag_labels.iter().map(|t| t.category.as_str()).collect();
        let tags = ctx.source::<VmTags>(TAGS);
        for vm in ctx.vms() {
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
            let tag_values = label_values(tags, &vm.id, &categories);
            let mut extra = extra;
            extra.extend(
                tag_labels
                    .iter()
                    .zip(&tag_values)
                    .map(|(t, v)| (t.label.as_str(), v.as_str())),
            );
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
            if vm.question.is_some() {
                out.gauge(&VM_QUESTION_PENDING, &ids, 1.0);
            }
            // Empty until vCenter sends it: no state to tell.
            let state = vm.connection_state.as_str();
            if !state.is_empty() && state != "connected" {
                out.gauge(&VM_CONNECTION_STATE, &[&vm.id, &vm.name, state], 1.0);
            }
        }
        Ok(())
    }
}
