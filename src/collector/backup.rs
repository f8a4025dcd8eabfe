//! The backup checks on each VM's own properties: the last backup the backup products recorded
//! in its custom attributes and notes (with a parse-error series per source, so format drift
//! shows instead of the series vanishing), the best backup consistency it can get now, the
//! consistency a custom attribute asks for, and whether changed block tracking is on.

use super::catalogue::{
    VM_BACKUP_CONSISTENCY, VM_BACKUP_CONSISTENCY_REQUIRED, VM_CBT_ENABLED,
    VM_LAST_BACKUP_PARSE_ERROR, VM_LAST_BACKUP_TIMESTAMP,
};
use super::{CollectError, Collector, Context, Sink};
use crate::backup::consistency::{self, Level};
use crate::backup::last_backup;
use crate::vsphere::model::Vm;

/// `vsphere_vm_last_backup_timestamp_seconds` and `_parse_error`.
pub struct LastBackup;

impl Collector for LastBackup {
    fn name(&self) -> &'static str {
        "last_backup"
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let settings = &ctx.config.backup;
        if settings.last_backup_sources.is_empty() {
            return Ok(());
        }
        for vm in ctx.vms() {
            let attributes = ctx.inventory.attribute_values(vm);
            let readings = last_backup::read(
                &settings.last_backup_sources,
                &settings.last_backup_timezone,
                &attributes,
                &vm.backup.annotation,
            );
            for r in readings {
                let labels = [vm.id.as_str(), vm.name.as_str(), r.source];
                if let Some(t) = r.timestamp {
                    out.gauge(&VM_LAST_BACKUP_TIMESTAMP, &labels, t);
                }
                out.gauge(
                    &VM_LAST_BACKUP_PARSE_ERROR,
                    &labels,
                    f64::from(u8::from(r.parse_error)),
                );
            }
        }
        Ok(())
    }
}

/// `vsphere_vm_backup_consistency`, `_required` and `vsphere_vm_cbt_enabled`.
pub struct Consistency;

impl Collector for Consistency {
    fn name(&self) -> &'static str {
        "consistency"
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let required = ctx.config.backup.consistency_required_attribute.as_deref();
        for vm in ctx.vms() {
            let ids = [vm.id.as_str(), vm.name.as_str()];
            let level = achievable(vm);
            out.gauge(
                &VM_BACKUP_CONSISTENCY,
                &[&vm.id, &vm.name, level.as_str()],
                1.0,
            );
            out.gauge(
                &VM_CBT_ENABLED,
                &ids,
                f64::from(u8::from(vm.backup.cbt_enabled)),
            );
            let Some(attribute) = required else {
                continue;
            };
            let value = ctx.inventory.attribute_value(vm, attribute);
            if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
                let level = Level::parse(value).map_or("invalid", Level::as_str);
                out.gauge(
                    &VM_BACKUP_CONSISTENCY_REQUIRED,
                    &[&vm.id, &vm.name, level],
                    1.0,
                );
            }
        }
        Ok(())
    }
}

/// The rule of [`consistency::achievable`] on a VM of the inventory.
pub fn achievable(vm: &Vm) -> Level {
    let running = matches!(
        vm.tools_running_status.as_deref(),
        Some("guestToolsRunning" | "guestToolsExecutingScripts")
    );
    consistency::achievable(&consistency::Facts {
        power_state: &vm.power_state,
        tools_running: running,
        windows: consistency::is_windows(vm.backup.guest_family.as_deref(), &vm.guest_id),
        disk_enable_uuid: vm.backup.disk_enable_uuid,
        snapshot_blocked: vm.snapshot_blockers().any(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{CustomField, Vm, VmBackup};

    fn inventory() -> Inventory {
        let mut inv = Inventory::default();
        for (key, name) in [(1, "NB_LAST_BACKUP"), (2, "Last Backup"), (3, "tier")] {
            inv.custom_fields.insert(
                key,
                CustomField {
                    name: name.into(),
                    managed_object_type: "VirtualMachine".into(),
                },
            );
        }
        let vm = |id: &str, power: &str, tools: &str, guest: &str, backup: VmBackup| Vm {
            id: id.into(),
            name: format!("{id}-name"),
            power_state: power.into(),
            tools_running_status: Some(tools.into()),
            guest_id: guest.into(),
            backup,
            ..Default::default()
        };
        let vms = [
            vm(
                "vm-1",
                "poweredOn",
                "guestToolsRunning",
                "windows9Server64Guest",
                VmBackup {
                    custom_values: vec![
                        (1, "Sun Nov 22 01:00:12 2026".into()),
                        (3, "Application".into()),
                        (99, "a value of a field that is gone".into()),
                    ],
                    annotation: "Veeam Backup: Job name: [x], Time: [garbage]".into(),
                    disk_enable_uuid: Some(true),
                    cbt_enabled: true,
                    ..Default::default()
                },
            ),
            vm(
                "vm-2",
                "poweredOn",
                "guestToolsNotRunning",
                "rhel7_64Guest",
                VmBackup {
                    custom_values: vec![(3, "gold".into())],
                    ..Default::default()
                },
            ),
        ];
        for vm in vms {
            inv.vms.insert(vm.id.clone(), Arc::new(vm));
        }
        inv
    }

    #[test]
    fn last_backup_series_show_times_and_parse_errors_per_source() {
        let out = run(&inventory(), &config());
        let ts = "vsphere_vm_last_backup_timestamp_seconds";
        let err = "vsphere_vm_last_backup_parse_error";
        let nb = [("vm_id", "vm-1"), ("source", "netbackup")];
        assert_eq!(value(&out, ts, &nb), Some(1_795_309_212.0));
        assert_eq!(value(&out, err, &nb), Some(0.0));
        let veeam = [("vm_id", "vm-1"), ("source", "veeam")];
        assert_eq!(value(&out, ts, &veeam), None, "no time from a garbled line");
        assert_eq!(value(&out, err, &veeam), Some(1.0));
        assert!(
            samples(&out, err)
                .iter()
                .all(|s| s.labels["vm_id"] == "vm-1")
        );
    }

    #[test]
    fn consistency_cbt_and_required_level_per_vm() {
        let mut cfg = config();
        cfg.backup.consistency_required_attribute = Some("tier".into());
        let out = run(&inventory(), &cfg);
        let level = |vm: &str| {
            samples(&out, "vsphere_vm_backup_consistency")
                .into_iter()
                .find(|s| s.labels["vm_id"] == vm)
                .map(|s| s.labels["level"].clone())
        };
        assert_eq!(level("vm-1").as_deref(), Some("application"));
        assert_eq!(level("vm-2").as_deref(), Some("crash"));
        let required = |vm: &str| {
            samples(&out, "vsphere_vm_backup_consistency_required")
                .into_iter()
                .find(|s| s.labels["vm_id"] == vm)
                .map(|s| s.labels["level"].clone())
        };
        assert_eq!(required("vm-1").as_deref(), Some("application"));
        assert_eq!(required("vm-2").as_deref(), Some("invalid"));
        assert_eq!(
            value(&out, "vsphere_vm_cbt_enabled", &[("vm_id", "vm-1")]),
            Some(1.0)
        );
        assert_eq!(
            value(&out, "vsphere_vm_cbt_enabled", &[("vm_id", "vm-2")]),
            Some(0.0)
        );
        let without = run(&inventory(), &config());
        assert!(samples(&without, "vsphere_vm_backup_consistency_required").is_empty());
    }
}
