//! What vCenter's event history says about snapshots (the [`Ledger`] the event follower
//! publishes): each VM's last snapshot task per operation and result with the user who ran it,
//! the count of snapshot task events, who made each snapshot, and reconfigurations made while a
//! VM held snapshots.
//!
//! Also how long snapshot tasks ran (each VM's last task per operation, and a histogram per
//! operation and result), and the last backup the history shows: the newest successful
//! snapshot removal a backup product's account (`last_backup_event_users`) ran on a VM, as
//! `vsphere_vm_last_backup_timestamp_seconds{source="events"}` beside the attribute and notes
//! sources of the `last_backup` collector (which reads no events, so it keeps serving while
//! the event follower resyncs).
//!
//! It reads the inventory and the events source, so it runs only while both are in sync. VM
//! series exist for VMs of the inventory; the reconfiguration counters for VMs with snapshots
//! or a count above 0 (not 40,000 zeros); the event counter and the duration histogram for
//! every operation and result.

use super::catalogue::{
    SNAPSHOT_TASK_DURATION, SNAPSHOT_TASK_EVENTS, VM_DISK_CHANGED_WITH_SNAPSHOTS,
    VM_LAST_BACKUP_TIMESTAMP, VM_RECONFIGURED_WITH_SNAPSHOTS, VM_SNAPSHOT_INFO,
    VM_SNAPSHOT_TASK_LAST_DURATION, VM_SNAPSHOT_TASK_LAST_TIMESTAMP, VM_SNAPSHOT_TASK_LAST_USER,
};
use super::{CollectError, Collector, Context, Sink};
use crate::backup::history::{DURATION_BUCKETS, Durations, Ledger, Operation, Outcome};
use crate::source::INVENTORY;
use crate::source::events::EVENTS;
use crate::vsphere::model::Vm;

pub struct SnapshotTasks;

/// The `source` label of the last backup read from the event history.
pub const EVENTS_SOURCE: &str = "events";

const OPERATIONS: [Operation; 3] = [Operation::Create, Operation::Remove, Operation::Consolidate];
const OUTCOMES: [Outcome; 2] = [Outcome::Success, Outcome::Error];

impl Collector for SnapshotTasks {
    fn name(&self) -> &'static str {
        "snapshot_tasks"
    }

    fn reads(&self) -> &'static [&'static str] {
        &[INVENTORY, EVENTS]
    }

    /// Its counts and histograms are of the whole history; every other series is per VM.
    fn per_vm(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let ledger = ctx.source::<Ledger>(EVENTS).ok_or_else(|| CollectError {
            collector: "snapshot_tasks",
            message: "the events source holds no history".into(),
        })?;
        if ctx.writes_rest() {
            history(ledger, out);
        }
        let users = &ctx.config.backup.last_backup_event_users;
        for vm in ctx.vms() {
            per_vm(ledger, users, vm, out);
        }
        Ok(())
    }
}

/// The counts and durations of every snapshot task in the history.
fn history(ledger: &Ledger, out: &mut Sink) {
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
            let none = Durations::default();
            let d = ledger.durations.get(&(operation, outcome)).unwrap_or(&none);
            out.histogram(
                &SNAPSHOT_TASK_DURATION,
                &[operation.as_str(), outcome.as_str()],
                &DURATION_BUCKETS,
                &d.cumulative(),
                d.sum_seconds,
                d.count,
            );
        }
    }
}

/// One VM's series from the history: its last task per operation (and result), the last
/// removal by a backup account, who made each snapshot, reconfigurations with snapshots.
fn per_vm(ledger: &Ledger, users: &[String], vm: &Vm, out: &mut Sink) {
    let first = (vm.id.clone(), Operation::Create);
    let durations = ledger.last_duration.range(first.clone()..);
    for ((_, operation), last) in durations.take_while(|((id, _), _)| *id == vm.id) {
        let labels = [&vm.id, &vm.name, operation.as_str(), last.outcome.as_str()];
        out.gauge(&VM_SNAPSHOT_TASK_LAST_DURATION, &labels, last.seconds);
    }
    if !users.is_empty()
        && ledger.removals_by_user.contains_key(&vm.id)
        && let Some(at) = ledger.last_removal_by(&vm.id, users)
    {
        let labels = [vm.id.as_str(), vm.name.as_str(), EVENTS_SOURCE];
        out.gauge(&VM_LAST_BACKUP_TIMESTAMP, &labels, at);
    }
    let lasts = ledger.last.range((first.0, first.1, Outcome::Success)..);
    for ((_, operation, outcome), last) in lasts.take_while(|((id, _, _), _)| *id == vm.id) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::backup::history::{Event, EventKind, TaskInfo, TaskState};
    use crate::collector::Part;
    use crate::collector::test_support::{config, samples, value};
    use crate::collector::{concat, render, run_collector, text};
    use crate::source::{Erased, SourceStatus};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{SnapshotInfo, SnapshotTree, Vm};

    fn run(inventory: &Inventory, ledger: Ledger) -> Vec<text::Sample> {
        text::parse(&run_text(inventory, ledger, &config())).unwrap()
    }

    fn run_text(inventory: &Inventory, ledger: Ledger, cfg: &crate::config::Config) -> String {
        let sources = [Erased {
            name: EVENTS,
            version: 1,
            value: Some(Arc::new(ledger)),
            status: SourceStatus::default(),
        }];
        let ctx = Context {
            vcenter: "vc01",
            config: cfg,
            inventory,
            now: 0.0,
            sources: &sources,
            part: Part::All,
        };
        let (families, run) = run_collector(&SnapshotTasks, &ctx);
        assert!(run.ok);
        let refs: Vec<&[Bytes]> = vec![families.as_slice()];
        String::from_utf8_lossy(&concat(&render(&refs))).into_owned()
    }

    #[test]
    fn task_durations_become_a_histogram_last_durations_and_the_events_last_backup() {
        let mut inv = Inventory::default();
        inv.vms.insert(
            "vm-1".into(),
            Arc::new(Vm {
                id: "vm-1".into(),
                name: "db".into(),
                ..Default::default()
            }),
        );
        let timed = |key: i64, vm: &str, id: &str, state, user: &str, start: f64, end: f64| Event {
            key,
            created_seconds: start,
            user: user.into(),
            vm: Some(vm.into()),
            kind: EventKind::Task(TaskInfo {
                task: format!("task-{key}"),
                description_id: id.into(),
                state,
                start_seconds: Some(start),
                complete_seconds: Some(end),
                result_snapshot: None,
                user: None,
            }),
        };
        let veeam = r"VSPHERE.LOCAL\svc-veeam";
        let mut ledger = Ledger::default();
        let none = |_: &str, _: f64| false;
        let create = "VirtualMachine.createSnapshot";
        let remove = "vm.Snapshot.remove";
        ledger.apply(
            &timed(1, "vm-1", create, TaskState::Success, veeam, 1000.0, 1012.0),
            none,
        );
        ledger.apply(
            &timed(2, "vm-1", remove, TaskState::Success, veeam, 1000.0, 3400.0),
            none,
        );
        ledger.apply(
            &timed(
                3,
                "vm-1",
                remove,
                TaskState::Success,
                "admin",
                5000.0,
                5001.0,
            ),
            none,
        );
        ledger.apply(
            &timed(
                4,
                "vm-404",
                remove,
                TaskState::Success,
                veeam,
                0.0,
                20_000.0,
            ),
            none,
        );
        let mut cfg = config();
        cfg.backup.last_backup_event_users = vec![r"vsphere.local\SVC-VEEAM".into()];
        let page = run_text(&inv, ledger, &cfg);
        assert!(
            page.contains("# TYPE vsphere_snapshot_task_duration_seconds histogram\n"),
            "{page}"
        );
        let out = text::parse(&page).unwrap();
        let bucket = |op, result, le| {
            value(
                &out,
                "vsphere_snapshot_task_duration_seconds_bucket",
                &[("operation", op), ("result", result), ("le", le)],
            )
        };
        assert_eq!(bucket("create", "success", "5"), Some(0.0));
        assert_eq!(bucket("create", "success", "15"), Some(1.0));
        assert_eq!(
            bucket("remove", "success", "1"),
            Some(1.0),
            "the admin's 1 s removal"
        );
        assert_eq!(bucket("remove", "success", "1800"), Some(1.0));
        assert_eq!(bucket("remove", "success", "3600"), Some(2.0));
        assert_eq!(bucket("remove", "success", "14400"), Some(2.0));
        assert_eq!(
            bucket("remove", "success", "+Inf"),
            Some(3.0),
            "a gone VM's task counts"
        );
        assert_eq!(bucket("consolidate", "error", "+Inf"), Some(0.0));
        let series = |suffix: &str, op, result| {
            value(
                &out,
                &format!("vsphere_snapshot_task_duration_seconds{suffix}"),
                &[("operation", op), ("result", result)],
            )
        };
        assert_eq!(series("_sum", "remove", "success"), Some(22_401.0));
        assert_eq!(series("_count", "remove", "success"), Some(3.0));
        assert_eq!(
            samples(&out, "vsphere_snapshot_task_duration_seconds_count").len(),
            6,
            "every operation and result"
        );
        let last = |op| {
            value(
                &out,
                "vsphere_vm_snapshot_task_last_duration_seconds",
                &[("vm_id", "vm-1"), ("operation", op), ("result", "success")],
            )
        };
        assert_eq!(last("create"), Some(12.0));
        assert_eq!(
            last("remove"),
            Some(1.0),
            "the newest removal, whoever ran it"
        );
        assert_eq!(
            samples(&out, "vsphere_vm_snapshot_task_last_duration_seconds").len(),
            2
        );
        let backups = samples(&out, "vsphere_vm_last_backup_timestamp_seconds");
        assert_eq!(backups.len(), 1, "{backups:?}");
        assert_eq!(backups[0].labels["source"], "events");
        assert_eq!(backups[0].labels["vm_id"], "vm-1");
        assert_eq!(
            backups[0].value, 3400.0,
            "the backup account's removal, not the admin's"
        );
        // Without backup accounts configured, no events source.
        let mut ledger = Ledger::default();
        ledger.apply(
            &timed(2, "vm-1", remove, TaskState::Success, veeam, 1000.0, 3400.0),
            none,
        );
        let out = text::parse(&run_text(&inv, ledger, &config())).unwrap();
        assert!(samples(&out, "vsphere_vm_last_backup_timestamp_seconds").is_empty());
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
                start_seconds: Some(1000.0 + key as f64),
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
