//! What vCenter's event history says about snapshots (the [`Ledger`] the event follower
//! publishes): each VM's last snapshot task per operation and result with the user who ran it,
//! the count of snapshot task events, who made each snapshot, and reconfigurations made while a
//! VM held snapshots.
//!
//! It reads the inventory and the events source, so it runs only while both are in sync. VM
//! series exist for VMs of the inventory; the reconfiguration counters for VMs with snapshots
//! or a count above 0 (not 40,000 zeros); the event counter for every operation and result.

use super::catalogue::{
    SNAPSHOT_TASK_EVENTS, VM_DISK_CHANGED_WITH_SNAPSHOTS, VM_RECONFIGURED_WITH_SNAPSHOTS,
    VM_SNAPSHOT_INFO, VM_SNAPSHOT_TASK_LAST_TIMESTAMP, VM_SNAPSHOT_TASK_LAST_USER,
};
use super::{CollectError, Collector, Context, Sink};
use crate::backup::history::{Ledger, Operation, Outcome};
use crate::source::INVENTORY;
use crate::source::events::EVENTS;

pub struct SnapshotTasks;

const OPERATIONS: [Operation; 3] = [Operation::Create, Operation::Remove, Operation::Consolidate];
const OUTCOMES: [Outcome; 2] = [Outcome::Success, Outcome::Error];

impl Collector for SnapshotTasks {
    fn name(&self) -> &'static str {
        "snapshot_tasks"
    }

    fn reads(&self) -> &'static [&'static str] {
        &[INVENTORY, EVENTS]
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let ledger = ctx.source::<Ledger>(EVENTS).ok_or_else(|| CollectError {
            collector: "snapshot_tasks",
            message: "the events source holds no history".into(),
        })?;
        for operation in OPERATIONS {
            for outcome in OUTCOMES {
                let n = ledger
                    .counts
                    .get(&(operation, outcome))
                    .copied()
                    .unwrap_or(0);
                out.counter(
                    &SNAPSHOT_TASK_EVENTS,
                    &[operation.as_str(), outcome.as_str()],
                    n as f64,
                );
            }
        }
        for ((vm_id, operation, outcome), last) in &ledger.last {
            let Some(vm) = ctx.inventory.vms.get(vm_id) else {
                continue;
            };
            let labels = [&vm.id, &vm.name, operation.as_str(), outcome.as_str()];
            out.gauge(&VM_SNAPSHOT_TASK_LAST_TIMESTAMP, &labels, last.seconds);
            let with_user = [
                vm.id.as_str(),
                &vm.name,
                operation.as_str(),
                outcome.as_str(),
                &last.user,
            ];
            out.gauge(&VM_SNAPSHOT_TASK_LAST_USER, &with_user, 1.0);
        }
        for vm in ctx.inventory.vms.values() {
            let ids = [vm.id.as_str(), vm.name.as_str()];
            for snap in vm.snapshots() {
                let tree = snap.tree;
                let creator = ledger
                    .created_by(&vm.id, &tree.snapshot, tree.create_time_seconds)
                    .unwrap_or("");
                out.gauge(
                    &VM_SNAPSHOT_INFO,
                    &[&vm.id, &vm.name, &tree.snapshot, creator, &tree.description],
                    1.0,
                );
            }
            let disk = ledger.disk_changed_with_snapshots.get(&vm.id).copied();
            let any = ledger.reconfigured_with_snapshots.get(&vm.id).copied();
            if vm.has_snapshots() || any.is_some() {
                out.counter(
                    &VM_DISK_CHANGED_WITH_SNAPSHOTS,
                    &ids,
                    disk.unwrap_or(0) as f64,
                );
                out.counter(
                    &VM_RECONFIGURED_WITH_SNAPSHOTS,
                    &ids,
                    any.unwrap_or(0) as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::backup::history::{Event, EventKind, TaskInfo, TaskState};
    use crate::collector::test_support::{config, samples, value};
    use crate::collector::{concat, render, run_collector, text};
    use crate::source::{Erased, SourceStatus};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{SnapshotInfo, SnapshotTree, Vm};

    fn run(inventory: &Inventory, ledger: Ledger) -> Vec<text::Sample> {
        let cfg = config();
        let sources = [Erased {
            name: EVENTS,
            version: 1,
            value: Some(Arc::new(ledger)),
            status: SourceStatus::default(),
        }];
        let ctx = Context {
            vcenter: "vc01",
            config: &cfg,
            inventory,
            now: 0.0,
            sources: &sources,
        };
        let (families, run) = run_collector(&SnapshotTasks, &ctx);
        assert!(run.ok);
        let refs: Vec<&[Bytes]> = vec![families.as_slice()];
        text::parse(&String::from_utf8_lossy(&concat(&render(&refs)))).unwrap()
    }

    #[test]
    fn last_tasks_counts_creators_and_reconfigurations_become_series() {
        let mut inv = Inventory::default();
        inv.vms.insert(
            "vm-1".into(),
            Arc::new(Vm {
                id: "vm-1".into(),
                name: "db".into(),
                snapshot: Some(SnapshotInfo {
                    current_snapshot: None,
                    root_snapshot_list: vec![SnapshotTree {
                        snapshot: "snapshot-9".into(),
                        description: "before patch".into(),
                        create_time_seconds: 1005.0,
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }),
        );
        let mut ledger = Ledger::default();
        let task = |key, id: &str, state, user: &str, snapshot: Option<&str>| Event {
            key,
            created_seconds: 1000.0 + key as f64,
            user: user.into(),
            vm: Some("vm-1".into()),
            kind: EventKind::Task(TaskInfo {
                task: format!("task-{key}"),
                description_id: id.into(),
                state,
                complete_seconds: Some(1010.0 + key as f64),
                result_snapshot: snapshot.map(String::from),
                user: None,
            }),
        };
        let held = |_: &str, _: f64| true;
        ledger.apply(
            &task(
                1,
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                "svc",
                Some("snapshot-9"),
            ),
            held,
        );
        ledger.apply(
            &task(2, "vm.Snapshot.remove", TaskState::Error, "svc", None),
            held,
        );
        ledger.apply(
            &Event {
                key: 3,
                created_seconds: 1100.0,
                user: "admin".into(),
                vm: Some("vm-1".into()),
                kind: EventKind::Reconfigured {
                    disk_capacity_changed: true,
                },
            },
            held,
        );
        ledger.apply(
            &task(
                4,
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                "x",
                None,
            ),
            held,
        );
        let mut gone = task(
            5,
            "VirtualMachine.createSnapshot",
            TaskState::Error,
            "x",
            None,
        );
        gone.vm = Some("vm-404".into());
        ledger.apply(&gone, held);
        let out = run(&inv, ledger);
        let total = |op, result| {
            value(
                &out,
                "vsphere_snapshot_task_events_total",
                &[("operation", op), ("result", result)],
            )
        };
        assert_eq!(total("create", "success"), Some(2.0));
        assert_eq!(
            total("create", "error"),
            Some(1.0),
            "counted, though its VM is gone"
        );
        assert_eq!(total("remove", "error"), Some(1.0));
        assert_eq!(total("consolidate", "success"), Some(0.0));
        let last = |op, result| {
            value(
                &out,
                "vsphere_vm_snapshot_task_last_timestamp_seconds",
                &[("vm_id", "vm-1"), ("operation", op), ("result", result)],
            )
        };
        assert_eq!(last("create", "success"), Some(1014.0));
        assert_eq!(last("remove", "error"), Some(1012.0));
        assert!(
            samples(&out, "vsphere_vm_snapshot_task_last_timestamp_seconds")
                .iter()
                .all(|s| s.labels["vm_id"] == "vm-1")
        );
        let users: Vec<String> = samples(&out, "vsphere_vm_snapshot_task_last_user_info")
            .iter()
            .map(|s| s.labels["user_name"].clone())
            .collect();
        assert_eq!(users, ["x", "svc"]);
        let info = samples(&out, "vsphere_vm_snapshot_info");
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].labels["created_by"], "svc");
        assert_eq!(info[0].labels["description"], "before patch");
        assert_eq!(
            value(
                &out,
                "vsphere_vm_disk_changed_with_snapshots_total",
                &[("vm_id", "vm-1")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_vm_reconfigured_with_snapshots_total",
                &[("vm_id", "vm-1")]
            ),
            Some(1.0)
        );
    }
}
