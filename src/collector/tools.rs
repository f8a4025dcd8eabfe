//! VMware Tools: quiescing needs them running and current. `vsphere_vm_tools_version_status`
//! carries `toolsVersionStatus2` as its `status` label (a VM has one series, value 1), and
//! `vsphere_vm_tools_running` is 1 while the guest's Tools run. VMs for which vCenter reports
//! no status (templates, never-booted VMs) get no series rather than a guessed one.

use super::catalogue::{VM_TOOLS_RUNNING, VM_TOOLS_VERSION_STATUS};
use super::{CollectError, Collector, Context, Sink};

pub struct Tools;

/// `toolsRunningStatus` values that mean Tools answer in the guest.
const RUNNING: &[&str] = &["guestToolsRunning", "guestToolsExecutingScripts"];

impl Collector for Tools {
    fn name(&self) -> &'static str {
        "tools"
    }

    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        for vm in ctx.vms() {
            if let Some(status) = vm
                .tools_version_status2
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                out.gauge(&VM_TOOLS_VERSION_STATUS, &[&vm.id, &vm.name, status], 1.0);
            }
            if let Some(running) = vm.tools_running_status.as_deref().filter(|s| !s.is_empty()) {
                let up = RUNNING.contains(&running);
                out.gauge(
                    &VM_TOOLS_RUNNING,
                    &[&vm.id, &vm.name],
                    f64::from(u8::from(up)),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::collector::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::Vm;

    fn vm(id: &str, status: Option<&str>, running: Option<&str>) -> Vm {
        Vm {
            id: id.into(),
            name: format!("name-{id}"),
            tools_version_status2: status.map(Into::into),
            tools_running_status: running.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn tools_status_is_one_series_per_vm_and_running_counts_executing_scripts() {
        let mut inv = Inventory::default();
        for v in [
            vm(
                "vm-1",
                Some("guestToolsNeedUpgrade"),
                Some("guestToolsRunning"),
            ),
            vm(
                "vm-2",
                Some("guestToolsCurrent"),
                Some("guestToolsExecutingScripts"),
            ),
            vm(
                "vm-3",
                Some("guestToolsNotInstalled"),
                Some("guestToolsNotRunning"),
            ),
            vm("vm-4", None, None),
        ] {
            inv.vms.insert(v.id.clone(), std::sync::Arc::new(v));
        }
        let config = config();
        let out = run(&inv, &config);
        let status = samples(&out, "vsphere_vm_tools_version_status");
        assert_eq!(status.len(), 3);
        assert_eq!(
            value(
                &out,
                "vsphere_vm_tools_version_status",
                &[
                    ("vm_id", "vm-1"),
                    ("status", "guestToolsNeedUpgrade"),
                    ("vm_name", "name-vm-1")
                ]
            ),
            Some(1.0)
        );
        let running = |id| value(&out, "vsphere_vm_tools_running", &[("vm_id", id)]);
        assert_eq!(
            (
                running("vm-1"),
                running("vm-2"),
                running("vm-3"),
                running("vm-4")
            ),
            (Some(1.0), Some(1.0), Some(0.0), None)
        );
    }
}
