//! What vCenter's event history says about snapshots: snapshot and consolidation tasks and
//! their outcome, who made each snapshot, and reconfigurations made while a VM held snapshots.
//!
//! The [`Ledger`] takes decoded events (each at most once, by key), follows tasks whose event
//! was posted before they ended, and keeps the counts and last times the collectors publish.
//! Whether a VM held a snapshot when it was reconfigured is decided when the event is applied
//! and never again, so the counters only go up. Decoding the XML is [`crate::vsphere`]'s job.

use std::collections::{BTreeMap, HashMap};

/// The snapshot operation a task or event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Create,
    Remove,
    Consolidate,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Remove => "remove",
            Operation::Consolidate => "consolidate",
        }
    }

    /// The operation of a task (`info.descriptionId`) or an EventEx (`eventTypeId`) the checks
    /// count, with the outcome an EventEx implies.
    pub fn of(id: &str) -> Option<(Operation, Option<Outcome>)> {
        Some(match id {
            "VirtualMachine.createSnapshot" | "VirtualMachine.createSnapshotEx" => {
                (Operation::Create, None)
            }
            "vm.Snapshot.remove" | "VirtualMachine.removeAllSnapshots" => (Operation::Remove, None),
            "VirtualMachine.consolidateDisks" => (Operation::Consolidate, None),
            "com.vmware.vc.VmDiskConsolidatedEvent" => {
                (Operation::Consolidate, Some(Outcome::Success))
            }
            // A consolidation that failed, or one a snapshot removal left undone.
            "com.vmware.vc.VmDiskFailedToConsolidateEvent"
            | "com.vmware.vc.VmDiskConsolidationNeeded" => {
                (Operation::Consolidate, Some(Outcome::Error))
            }
            _ => return None,
        })
    }
}

/// How a task or event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Success,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
        }
    }
}

/// The event type ids the follower asks vCenter for; the same ids the checks count.
pub const EVENT_TYPE_IDS: &[&str] = &[
    "TaskEvent",
    "VmReconfiguredEvent",
    "com.vmware.vc.VmDiskConsolidationNeeded",
    "com.vmware.vc.VmDiskConsolidatedEvent",
    "com.vmware.vc.VmDiskFailedToConsolidateEvent",
];

/// `TaskInfo.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    Running,
    Success,
    Error,
}

impl TaskState {
    pub fn parse(text: &str) -> Option<TaskState> {
        Some(match text.trim() {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "error" => TaskState::Error,
            _ => return None,
        })
    }

    fn outcome(self) -> Option<Outcome> {
        match self {
            TaskState::Success => Some(Outcome::Success),
            TaskState::Error => Some(Outcome::Error),
            TaskState::Queued | TaskState::Running => None,
        }
    }
}

/// A task's `info` as far as the checks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// The Task's managed object id (`task-123`).
    pub task: String,
    pub description_id: String,
    pub state: TaskState,
    pub complete_seconds: Option<f64>,
    /// `result` when it is a VirtualMachineSnapshot: the snapshot a create task made.
    pub result_snapshot: Option<String>,
    /// `reason.userName` when a user started it.
    pub user: Option<String>,
}

/// One event of the followed history, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub key: i64,
    pub created_seconds: f64,
    /// `userName`.
    pub user: String,
    /// The VM the event is about (`vm.vm`).
    pub vm: Option<String>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Task(TaskInfo),
    /// `VmReconfiguredEvent`: whether its `configSpec` edits a virtual disk's capacity.
    Reconfigured {
        disk_capacity_changed: bool,
    },
    /// `EventEx` / `ExtendedEvent` by `eventTypeId`.
    Extended {
        type_id: String,
    },
    /// Anything else the server sent; ignored.
    Other,
}

/// The last task of one operation and outcome on a VM.
#[derive(Debug, Clone, PartialEq)]
pub struct LastTask {
    pub seconds: f64,
    pub user: String,
}

/// A successful snapshot creation, kept to tell who made a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Creation {
    pub vm: String,
    pub started_seconds: f64,
    pub complete_seconds: Option<f64>,
    pub snapshot: Option<String>,
    pub user: String,
}

/// A task whose event came before its end, followed until it ends.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    vm: String,
    operation: Operation,
    created_seconds: f64,
    user: String,
}

/// A snapshot creation started up to this long before the snapshot's `createTime` (quiescing
/// a large guest takes minutes), or ended up to this long after it, is the one that made it.
const CREATE_MATCH_BEFORE_SECONDS: f64 = 1800.0;
const CREATE_MATCH_AFTER_SECONDS: f64 = 5.0;

/// Everything the history has told so far.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Event keys applied, with their time (keys are pruned with the window).
    seen: HashMap<i64, f64>,
    pending: BTreeMap<String, Pending>,
    pub counts: BTreeMap<(Operation, Outcome), u64>,
    pub last: BTreeMap<(String, Operation, Outcome), LastTask>,
    pub creations: Vec<Creation>,
    pub disk_changed_with_snapshots: BTreeMap<String, u64>,
    pub reconfigured_with_snapshots: BTreeMap<String, u64>,
}

impl Ledger {
    /// Applies one event unless its key was applied before. `held_snapshot` says whether a VM
    /// held a snapshot at a time (the caller knows the inventory). Returns true when the event
    /// was new.
    pub fn apply(&mut self, event: &Event, held_snapshot: impl Fn(&str, f64) -> bool) -> bool {
        if self.seen.insert(event.key, event.created_seconds).is_some() {
            return false;
        }
        let Some(vm) = event.vm.as_deref() else {
            return true;
        };
        match &event.kind {
            EventKind::Task(info) => self.apply_task(vm, event, info),
            EventKind::Reconfigured {
                disk_capacity_changed,
            } => {
                if held_snapshot(vm, event.created_seconds) {
                    *self
                        .reconfigured_with_snapshots
                        .entry(vm.to_owned())
                        .or_default() += 1;
                    if *disk_capacity_changed {
                        *self
                            .disk_changed_with_snapshots
                            .entry(vm.to_owned())
                            .or_default() += 1;
                    }
                }
            }
            EventKind::Extended { type_id } => {
                if let Some((operation, Some(outcome))) = Operation::of(type_id) {
                    self.record(vm, operation, outcome, event.created_seconds, &event.user);
                }
            }
            EventKind::Other => {}
        }
        true
    }

    fn apply_task(&mut self, vm: &str, event: &Event, info: &TaskInfo) {
        let Some((operation, _)) = Operation::of(&info.description_id) else {
            return;
        };
        let user = if event.user.is_empty() {
            info.user.clone().unwrap_or_default()
        } else {
            event.user.clone()
        };
        match info.state.outcome() {
            Some(outcome) => {
                self.finish(vm, operation, outcome, event.created_seconds, &user, info)
            }
            None => {
                self.pending.insert(
                    info.task.clone(),
                    Pending {
                        vm: vm.to_owned(),
                        operation,
                        created_seconds: event.created_seconds,
                        user,
                    },
                );
            }
        }
    }

    fn finish(
        &mut self,
        vm: &str,
        operation: Operation,
        outcome: Outcome,
        created_seconds: f64,
        user: &str,
        info: &TaskInfo,
    ) {
        let seconds = info.complete_seconds.unwrap_or(created_seconds);
        self.record(vm, operation, outcome, seconds, user);
        if operation == Operation::Create && outcome == Outcome::Success {
            self.creations.push(Creation {
                vm: vm.to_owned(),
                started_seconds: created_seconds,
                complete_seconds: info.complete_seconds,
                snapshot: info.result_snapshot.clone(),
                user: user.to_owned(),
            });
        }
    }

    fn record(
        &mut self,
        vm: &str,
        operation: Operation,
        outcome: Outcome,
        seconds: f64,
        user: &str,
    ) {
        *self.counts.entry((operation, outcome)).or_default() += 1;
        let last = self
            .last
            .entry((vm.to_owned(), operation, outcome))
            .or_insert(LastTask {
                seconds,
                user: user.to_owned(),
            });
        if seconds >= last.seconds {
            *last = LastTask {
                seconds,
                user: user.to_owned(),
            };
        }
    }

    /// The tasks still followed, by managed object id.
    pub fn pending_tasks(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// A followed task's info now: an ended task is recorded and no longer followed.
    pub fn update_task(&mut self, info: &TaskInfo) {
        let Some(outcome) = info.state.outcome() else {
            return;
        };
        let Some(p) = self.pending.remove(&info.task) else {
            return;
        };
        let user = if p.user.is_empty() {
            info.user.clone().unwrap_or_default()
        } else {
            p.user.clone()
        };
        self.finish(&p.vm, p.operation, outcome, p.created_seconds, &user, info);
    }

    /// Stops following a task vCenter no longer knows.
    pub fn forget_task(&mut self, task: &str) {
        self.pending.remove(task);
    }

    /// Who made a snapshot: the creation whose result is that snapshot, else the latest
    /// successful creation on the VM that started at most 30 minutes before the snapshot's
    /// `createTime` and ended at most 5 s after it.
    pub fn created_by(&self, vm: &str, snapshot: &str, create_seconds: f64) -> Option<&str> {
        if let Some(c) = self
            .creations
            .iter()
            .find(|c| c.snapshot.as_deref() == Some(snapshot))
        {
            return Some(&c.user);
        }
        self.creations
            .iter()
            .filter(|c| c.vm == vm && c.snapshot.is_none())
            .filter(|c| {
                c.started_seconds <= create_seconds + CREATE_MATCH_AFTER_SECONDS
                    && c.started_seconds >= create_seconds - CREATE_MATCH_BEFORE_SECONDS
                    && c.complete_seconds
                        .is_none_or(|end| end + CREATE_MATCH_AFTER_SECONDS >= create_seconds)
            })
            .max_by(|a, b| a.started_seconds.total_cmp(&b.started_seconds))
            .map(|c| c.user.as_str())
    }

    /// Forgets what is older than `horizon` (event keys, tasks never seen to end, creations
    /// `keep_creation` does not need) and VMs `vm_exists` no longer knows.
    pub fn prune(
        &mut self,
        horizon: f64,
        vm_exists: impl Fn(&str) -> bool,
        keep_creation: impl Fn(&Creation) -> bool,
    ) {
        self.seen.retain(|_, created| *created >= horizon);
        self.pending
            .retain(|_, p| p.created_seconds >= horizon && vm_exists(&p.vm));
        self.creations
            .retain(|c| vm_exists(&c.vm) && (c.started_seconds >= horizon || keep_creation(c)));
        self.last.retain(|(vm, _, _), _| vm_exists(vm));
        self.disk_changed_with_snapshots
            .retain(|vm, _| vm_exists(vm));
        self.reconfigured_with_snapshots
            .retain(|vm, _| vm_exists(vm));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: i64, vm: &str, id: &str, state: TaskState, at: f64) -> Event {
        Event {
            key,
            created_seconds: at,
            user: "svc".into(),
            vm: Some(vm.into()),
            kind: EventKind::Task(TaskInfo {
                task: format!("task-{key}"),
                description_id: id.into(),
                state,
                complete_seconds: matches!(state, TaskState::Success | TaskState::Error)
                    .then_some(at + 10.0),
                result_snapshot: None,
                user: None,
            }),
        }
    }

    fn no_snapshots(_: &str, _: f64) -> bool {
        false
    }

    #[test]
    fn tasks_are_counted_once_by_key_with_their_outcome_and_last_time() {
        let mut l = Ledger::default();
        let create = task(
            1,
            "vm-1",
            "VirtualMachine.createSnapshot",
            TaskState::Success,
            100.0,
        );
        assert!(l.apply(&create, no_snapshots));
        assert!(!l.apply(&create, no_snapshots), "a key counts once");
        l.apply(
            &task(2, "vm-1", "vm.Snapshot.remove", TaskState::Error, 200.0),
            no_snapshots,
        );
        l.apply(
            &task(
                3,
                "vm-1",
                "VirtualMachine.createSnapshotEx",
                TaskState::Success,
                50.0,
            ),
            no_snapshots,
        );
        l.apply(
            &task(
                4,
                "vm-1",
                "VirtualMachine.powerOn",
                TaskState::Success,
                300.0,
            ),
            no_snapshots,
        );
        assert_eq!(l.counts[&(Operation::Create, Outcome::Success)], 2);
        assert_eq!(l.counts[&(Operation::Remove, Outcome::Error)], 1);
        assert_eq!(l.counts.len(), 2, "power-on is not a snapshot task");
        let last = &l.last[&("vm-1".to_string(), Operation::Create, Outcome::Success)];
        assert_eq!(
            last.seconds, 110.0,
            "the newest completion, not the last applied"
        );
    }

    #[test]
    fn a_queued_task_counts_when_it_ends_and_not_before() {
        let mut l = Ledger::default();
        l.apply(
            &task(
                1,
                "vm-1",
                "VirtualMachine.consolidateDisks",
                TaskState::Queued,
                100.0,
            ),
            no_snapshots,
        );
        assert!(l.counts.is_empty());
        assert_eq!(l.pending_tasks(), ["task-1"]);
        let mut info = TaskInfo {
            task: "task-1".into(),
            description_id: "VirtualMachine.consolidateDisks".into(),
            state: TaskState::Running,
            complete_seconds: None,
            result_snapshot: None,
            user: None,
        };
        l.update_task(&info);
        assert!(l.counts.is_empty(), "still running");
        info.state = TaskState::Error;
        info.complete_seconds = Some(160.0);
        l.update_task(&info);
        l.update_task(&info);
        assert_eq!(l.counts[&(Operation::Consolidate, Outcome::Error)], 1);
        assert!(l.pending_tasks().is_empty());
        assert_eq!(
            l.last[&("vm-1".to_string(), Operation::Consolidate, Outcome::Error)].seconds,
            160.0
        );
    }

    #[test]
    fn consolidation_events_count_with_the_outcome_they_imply() {
        let mut l = Ledger::default();
        for (key, id) in [
            (1, "com.vmware.vc.VmDiskConsolidationNeeded"),
            (2, "com.vmware.vc.VmDiskFailedToConsolidateEvent"),
            (3, "com.vmware.vc.VmDiskConsolidatedEvent"),
            (4, "com.vmware.vc.HA.SomethingElse"),
        ] {
            l.apply(
                &Event {
                    key,
                    created_seconds: 10.0 * key as f64,
                    user: String::new(),
                    vm: Some("vm-2".into()),
                    kind: EventKind::Extended { type_id: id.into() },
                },
                no_snapshots,
            );
        }
        assert_eq!(l.counts[&(Operation::Consolidate, Outcome::Error)], 2);
        assert_eq!(l.counts[&(Operation::Consolidate, Outcome::Success)], 1);
        assert_eq!(l.counts.len(), 2);
    }

    #[test]
    fn reconfigurations_count_only_while_a_snapshot_is_held_and_once() {
        let mut l = Ledger::default();
        let held = |vm: &str, at: f64| vm == "vm-1" && at >= 100.0;
        let reconfigured = |key, vm: &str, at, disk| Event {
            key,
            created_seconds: at,
            user: "admin".into(),
            vm: Some(vm.into()),
            kind: EventKind::Reconfigured {
                disk_capacity_changed: disk,
            },
        };
        l.apply(&reconfigured(1, "vm-1", 50.0, true), held);
        l.apply(&reconfigured(2, "vm-1", 150.0, true), held);
        l.apply(&reconfigured(3, "vm-1", 160.0, false), held);
        l.apply(&reconfigured(3, "vm-1", 160.0, false), held);
        l.apply(&reconfigured(4, "vm-2", 150.0, true), held);
        assert_eq!(l.disk_changed_with_snapshots.get("vm-1"), Some(&1));
        assert_eq!(l.reconfigured_with_snapshots.get("vm-1"), Some(&2));
        assert!(!l.reconfigured_with_snapshots.contains_key("vm-2"));
    }

    #[test]
    fn creators_match_by_result_then_by_time_on_the_same_vm() {
        let mut l = Ledger::default();
        let mut exact = task(
            1,
            "vm-1",
            "VirtualMachine.createSnapshot",
            TaskState::Success,
            1000.0,
        );
        if let EventKind::Task(info) = &mut exact.kind {
            info.result_snapshot = Some("snapshot-9".into());
        }
        exact.user = "svc-veeam".into();
        l.apply(&exact, no_snapshots);
        let mut by_time = task(
            2,
            "vm-2",
            "VirtualMachine.createSnapshot",
            TaskState::Success,
            2000.0,
        );
        by_time.user = "admin".into();
        l.apply(&by_time, no_snapshots);
        assert_eq!(l.created_by("vm-1", "snapshot-9", 0.0), Some("svc-veeam"));
        assert_eq!(l.created_by("vm-2", "snapshot-4", 2005.0), Some("admin"));
        assert_eq!(
            l.created_by("vm-2", "snapshot-4", 2100.0),
            None,
            "ended long before"
        );
        assert_eq!(
            l.created_by("vm-2", "snapshot-4", 1000.0),
            None,
            "taken before the task"
        );
        assert_eq!(
            l.created_by("vm-3", "snapshot-5", 2005.0),
            None,
            "another VM"
        );
    }

    #[test]
    fn pruning_forgets_old_keys_and_gone_vms_but_keeps_needed_creations() {
        let mut l = Ledger::default();
        l.apply(
            &task(
                1,
                "vm-1",
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                100.0,
            ),
            no_snapshots,
        );
        l.apply(
            &task(
                2,
                "vm-2",
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                100.0,
            ),
            no_snapshots,
        );
        l.prune(500.0, |vm| vm == "vm-1", |c| c.vm == "vm-1");
        assert_eq!(l.creations.len(), 1);
        assert!(l.last.keys().all(|(vm, _, _)| vm == "vm-1"));
        assert_eq!(
            l.counts[&(Operation::Create, Outcome::Success)],
            2,
            "counters stay"
        );
        assert!(
            l.apply(
                &task(
                    1,
                    "vm-1",
                    "VirtualMachine.createSnapshot",
                    TaskState::Success,
                    100.0
                ),
                no_snapshots
            ),
            "a pruned key is new again: callers only apply events inside the window"
        );
    }
}
