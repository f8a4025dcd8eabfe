//! What vCenter's event history says about snapshots: snapshot and consolidation tasks and
//! their outcome, who made each snapshot, and reconfigurations made while a VM held snapshots.
//!
//! The [`Ledger`] takes decoded events (each at most once, by key), follows tasks whose event
//! was posted before they ended, and keeps the counts and last times the collectors publish.
//! Whether a VM held a snapshot when it was reconfigured is decided when the event is applied
//! and never again, so the counters only go up. vCenter's event keys only grow, so a key at or
//! below the highest one pruned is old and never applied again: a follower that reads its
//! window back after a reconnect counts nothing twice. Decoding the XML is
//! [`crate::vsphere`]'s job.
//!
//! A consolidation is counted once however vCenter reports it: a `consolidateDisks` task and
//! the consolidation event vCenter posts for it (`VmDiskConsolidatedEvent`,
//! `VmDiskFailedToConsolidateEvent`) on the same VM with the same outcome within
//! [`CONSOLIDATION_MATCH_SECONDS`] are one consolidation, counted when the first of the two
//! arrives; the last time and user follow the later one.

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
    /// `startTime`, else `queueTime`: when the task began (a task that failed while queued
    /// never started).
    pub start_seconds: Option<f64>,
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

/// The upper bounds of [`Durations`]' buckets, in seconds: 1 s to 4 h. A quick removal of a
/// small delta takes seconds; a removal that merges a day of writes into a busy datastore takes
/// hours.
pub const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// How long the snapshot tasks of one operation and outcome took: a histogram over
/// [`DURATION_BUCKETS`] (each bucket counts the tasks at or below its bound, not cumulative),
/// with their sum and count. It only grows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    pub buckets: [u64; DURATION_BUCKETS.len()],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Durations {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }

    /// The count at or below each bound, as Prometheus' `le` buckets have it (`+Inf` is
    /// [`Self::count`]).
    pub fn cumulative(&self) -> [u64; DURATION_BUCKETS.len()] {
        let mut out = self.buckets;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }
}

/// A VM's last snapshot task of one operation, whatever its outcome, with how long it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct LastDuration {
    pub outcome: Outcome,
    /// When it ended.
    pub complete_seconds: f64,
    /// From `startTime` (else `queueTime`) to `completeTime`.
    pub seconds: f64,
}

/// Whether two user names as vCenter writes them are the same account: the whole name, domain
/// included, without regard to case (vCenter keeps the spelling the login used,
/// `VSPHERE.LOCAL\svc` or `vsphere.local\SVC`, and directory names are not case-sensitive).
pub fn same_user(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
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

/// A task and an event of the same consolidation on a VM are at most this far apart.
pub const CONSOLIDATION_MATCH_SECONDS: f64 = 300.0;

/// A consolidation counted from one report (a task, or an event), waiting for the other.
#[derive(Debug, Clone, PartialEq)]
struct Consolidation {
    vm: String,
    outcome: Outcome,
    seconds: f64,
    from_task: bool,
}

/// Everything the history has told so far.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Event keys applied, with their time (keys are pruned with the window).
    seen: HashMap<i64, f64>,
    /// The highest key pruned: vCenter's keys only grow, so one at or below it is old.
    key_floor: Option<i64>,
    /// Moves whenever what the collectors read changes (the follower publishes on it).
    version: u64,
    pending: BTreeMap<String, Pending>,
    pub counts: BTreeMap<(Operation, Outcome), u64>,
    pub last: BTreeMap<(String, Operation, Outcome), LastTask>,
    creations: Vec<Creation>,
    /// Indexes into `creations`: by the snapshot a creation made, and by VM.
    by_snapshot: HashMap<String, usize>,
    by_vm: HashMap<String, Vec<usize>>,
    /// Consolidations counted from one report, not yet matched by the other.
    consolidations: Vec<Consolidation>,
    pub disk_changed_with_snapshots: BTreeMap<String, u64>,
    pub reconfigured_with_snapshots: BTreeMap<String, u64>,
    /// How long snapshot tasks took, by operation and outcome: each task counted once, when it
    /// ends, from its own start and completion times (events carry none, so only tasks count).
    pub durations: BTreeMap<(Operation, Outcome), Durations>,
    /// Each VM's last task of an operation with its duration (the newest completion wins).
    pub last_duration: BTreeMap<(String, Operation), LastDuration>,
    /// The tasks whose duration was counted, with their completion time: a task reported twice
    /// (by two events, or by an event and the task history) is counted once.
    timed: HashMap<String, f64>,
    /// Each VM's newest successful snapshot removal by each user (as vCenter wrote the name):
    /// the end of a backup cycle when the user is a backup product's account.
    pub removals_by_user: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Ledger {
    /// Applies one event unless its key was applied before. `held_snapshot` says whether a VM
    /// held a snapshot at a time (the caller knows the inventory). Returns true when the event
    /// was new.
    pub fn apply(&mut self, event: &Event, held_snapshot: impl Fn(&str, f64) -> bool) -> bool {
        if self.key_floor.is_some_and(|floor| event.key <= floor) {
            return false;
        }
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
                    self.version += 1;
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
                    self.record(
                        vm,
                        operation,
                        outcome,
                        event.created_seconds,
                        &event.user,
                        false,
                    );
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
        self.record(vm, operation, outcome, seconds, user, true);
        self.time_task(vm, operation, outcome, info);
        if operation == Operation::Remove && outcome == Outcome::Success && !user.is_empty() {
            let newest = self
                .removals_by_user
                .entry(vm.to_owned())
                .or_default()
                .entry(user.to_owned())
                .or_insert(seconds);
            *newest = newest.max(seconds);
        }
        if operation == Operation::Create && outcome == Outcome::Success {
            self.add_creation(Creation {
                vm: vm.to_owned(),
                started_seconds: created_seconds,
                complete_seconds: info.complete_seconds,
                snapshot: info.result_snapshot.clone(),
                user: user.to_owned(),
            });
        }
    }

    /// Counts an ended task's duration once, when it has a start and a completion time (a
    /// clock step that puts the end before the start counts as 0 s).
    fn time_task(&mut self, vm: &str, operation: Operation, outcome: Outcome, info: &TaskInfo) {
        let (Some(start), Some(end)) = (info.start_seconds, info.complete_seconds) else {
            return;
        };
        if self.timed.insert(info.task.clone(), end).is_some() {
            return;
        }
        let seconds = (end - start).max(0.0);
        self.durations
            .entry((operation, outcome))
            .or_default()
            .observe(seconds);
        let last = LastDuration {
            outcome,
            complete_seconds: end,
            seconds,
        };
        let slot = self
            .last_duration
            .entry((vm.to_owned(), operation))
            .or_insert_with(|| last.clone());
        if end >= slot.complete_seconds {
            *slot = last;
        }
    }

    /// The newest successful snapshot removal on `vm` by any of `users` (see [`same_user`]).
    pub fn last_removal_by(&self, vm: &str, users: &[String]) -> Option<f64> {
        self.removals_by_user
            .get(vm)?
            .iter()
            .filter(|(user, _)| users.iter().any(|u| same_user(u, user)))
            .map(|(_, at)| *at)
            .max_by(f64::total_cmp)
    }

    /// Keeps a creation, indexed by its snapshot and its VM.
    pub fn add_creation(&mut self, creation: Creation) {
        self.index_creation(creation);
        self.version += 1;
    }

    fn index_creation(&mut self, creation: Creation) {
        let index = self.creations.len();
        if let Some(snapshot) = &creation.snapshot {
            self.by_snapshot.insert(snapshot.clone(), index);
        }
        self.by_vm
            .entry(creation.vm.clone())
            .or_default()
            .push(index);
        self.creations.push(creation);
    }

    /// The creations kept, oldest applied first.
    pub fn creations(&self) -> &[Creation] {
        &self.creations
    }

    /// Moves whenever what the collectors read changes: counts, last tasks, creations, the
    /// reconfiguration counters, or a prune of any of them.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// True when this report of a consolidation is the other half of one already counted
    /// (a task and its event); that one is then matched and no longer waits.
    fn matches_counted_consolidation(
        &mut self,
        vm: &str,
        outcome: Outcome,
        seconds: f64,
        from_task: bool,
    ) -> bool {
        let found = self.consolidations.iter().position(|c| {
            c.vm == vm
                && c.outcome == outcome
                && c.from_task != from_task
                && (c.seconds - seconds).abs() <= CONSOLIDATION_MATCH_SECONDS
        });
        match found {
            Some(i) => {
                self.consolidations.swap_remove(i);
                true
            }
            None => {
                self.consolidations.push(Consolidation {
                    vm: vm.to_owned(),
                    outcome,
                    seconds,
                    from_task,
                });
                false
            }
        }
    }

    fn record(
        &mut self,
        vm: &str,
        operation: Operation,
        outcome: Outcome,
        seconds: f64,
        user: &str,
        from_task: bool,
    ) {
        self.version += 1;
        let counted_already = operation == Operation::Consolidate
            && self.matches_counted_consolidation(vm, outcome, seconds, from_task);
        if !counted_already {
            *self.counts.entry((operation, outcome)).or_default() += 1;
        }
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

    /// Stops following a task vCenter no longer knows (its outcome is not counted). A snapshot
    /// creation keeps its start time and user, so `created_by` can still match its snapshot
    /// by time.
    pub fn forget_task(&mut self, task: &str) {
        let Some(p) = self.pending.remove(task) else {
            return;
        };
        if p.operation == Operation::Create {
            self.add_creation(Creation {
                vm: p.vm,
                started_seconds: p.created_seconds,
                complete_seconds: None,
                snapshot: None,
                user: p.user,
            });
        }
    }

    /// Who made a snapshot: the creation whose result is that snapshot, else the latest
    /// successful creation on the VM that started at most 30 minutes before the snapshot's
    /// `createTime` and ended at most 5 s after it.
    pub fn created_by(&self, vm: &str, snapshot: &str, create_seconds: f64) -> Option<&str> {
        if let Some(c) = self.by_snapshot.get(snapshot).map(|&i| &self.creations[i]) {
            return Some(&c.user);
        }
        self.by_vm
            .get(vm)?
            .iter()
            .map(|&i| &self.creations[i])
            .filter(|c| c.snapshot.is_none())
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
        let floor = &mut self.key_floor;
        self.seen.retain(|key, created| {
            let keep = *created >= horizon;
            if !keep && floor.is_none_or(|f| *key > f) {
                *floor = Some(*key);
            }
            keep
        });
        self.pending
            .retain(|_, p| p.created_seconds >= horizon && vm_exists(&p.vm));
        self.consolidations
            .retain(|c| c.seconds >= horizon && vm_exists(&c.vm));
        let sizes = self.published_sizes();
        let creations = std::mem::take(&mut self.creations);
        self.by_snapshot.clear();
        self.by_vm.clear();
        for c in creations {
            if vm_exists(&c.vm) && (c.started_seconds >= horizon || keep_creation(&c)) {
                self.index_creation(c);
            }
        }
        self.last.retain(|(vm, _, _), _| vm_exists(vm));
        self.last_duration.retain(|(vm, _), _| vm_exists(vm));
        self.removals_by_user.retain(|vm, _| vm_exists(vm));
        self.timed.retain(|_, end| *end >= horizon);
        self.disk_changed_with_snapshots
            .retain(|vm, _| vm_exists(vm));
        self.reconfigured_with_snapshots
            .retain(|vm, _| vm_exists(vm));
        if self.published_sizes() != sizes {
            self.version += 1;
        }
    }

    /// The sizes of what the collectors read, to tell whether a prune changed it.
    fn published_sizes(&self) -> [usize; 6] {
        [
            self.creations.len(),
            self.last.len(),
            self.last_duration.len(),
            self.removals_by_user.len(),
            self.disk_changed_with_snapshots.len(),
            self.reconfigured_with_snapshots.len(),
        ]
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
                start_seconds: matches!(state, TaskState::Success | TaskState::Error).then_some(at),
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
            start_seconds: Some(120.0),
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
        assert_eq!(l.creations().len(), 1);
        assert!(l.last.keys().all(|(vm, _, _)| vm == "vm-1"));
        assert_eq!(
            l.counts[&(Operation::Create, Outcome::Success)],
            2,
            "counters stay"
        );
        assert_eq!(l.creations().len(), 1);
    }

    /// Monday: start. Tuesday: a disk grown under a snapshot, and a consolidation. Wednesday:
    /// their keys pruned. Thursday: the session expires and the new collector reads the
    /// history back from before Tuesday (the simulator ignores the time filter altogether).
    #[test]
    fn a_read_back_after_a_reconnect_counts_no_pruned_event_again() {
        let day = 86_400.0;
        let mut l = Ledger::default();
        let grown = Event {
            key: 41,
            created_seconds: 1.0 * day,
            user: "admin".into(),
            vm: Some("vm-1".into()),
            kind: EventKind::Reconfigured {
                disk_capacity_changed: true,
            },
        };
        let consolidated = Event {
            key: 42,
            created_seconds: 1.0 * day,
            user: "svc".into(),
            vm: Some("vm-1".into()),
            kind: EventKind::Extended {
                type_id: "com.vmware.vc.VmDiskConsolidatedEvent".into(),
            },
        };
        assert!(l.apply(&grown, |_, _| true));
        assert!(l.apply(&consolidated, |_, _| true));
        l.prune(2.0 * day, |_| true, |_| false);
        assert!(!l.apply(&grown, |_, _| true), "pruned, and not new again");
        assert!(!l.apply(&consolidated, |_, _| true));
        assert_eq!(l.disk_changed_with_snapshots["vm-1"], 1);
        assert_eq!(l.counts[&(Operation::Consolidate, Outcome::Success)], 1);
        // A newer key is applied as usual.
        assert!(l.apply(
            &Event {
                key: 43,
                ..grown.clone()
            },
            |_, _| true
        ));
        assert_eq!(l.disk_changed_with_snapshots["vm-1"], 2);
    }

    #[test]
    fn a_consolidate_task_and_the_event_vcenter_posts_for_it_count_once() {
        let consolidated = |key, at| Event {
            key,
            created_seconds: at,
            user: "svc".into(),
            vm: Some("vm-1".into()),
            kind: EventKind::Extended {
                type_id: "com.vmware.vc.VmDiskConsolidatedEvent".into(),
            },
        };
        let id = "VirtualMachine.consolidateDisks";
        let key = (Operation::Consolidate, Outcome::Success);
        // Task first (ends at 110), then its event.
        let mut l = Ledger::default();
        l.apply(
            &task(1, "vm-1", id, TaskState::Success, 100.0),
            no_snapshots,
        );
        l.apply(&consolidated(2, 111.0), no_snapshots);
        assert_eq!(l.counts[&key], 1);
        assert_eq!(
            l.last[&("vm-1".into(), Operation::Consolidate, Outcome::Success)].seconds,
            111.0
        );
        // Event first, then the task's end learned by following it.
        let mut l = Ledger::default();
        l.apply(&task(1, "vm-1", id, TaskState::Queued, 100.0), no_snapshots);
        l.apply(&consolidated(2, 109.0), no_snapshots);
        l.update_task(&TaskInfo {
            task: "task-1".into(),
            description_id: id.into(),
            state: TaskState::Success,
            start_seconds: Some(101.0),
            complete_seconds: Some(110.0),
            result_snapshot: None,
            user: None,
        });
        assert_eq!(l.counts[&key], 1);
        // A second consolidation an hour later is another one; an event on another VM too.
        l.apply(&consolidated(3, 3700.0), no_snapshots);
        l.apply(
            &task(4, "vm-2", id, TaskState::Success, 100.0),
            no_snapshots,
        );
        assert_eq!(l.counts[&key], 3);
    }

    #[test]
    fn a_create_task_vcenter_forgot_still_names_who_made_its_snapshot_by_time() {
        let mut l = Ledger::default();
        l.apply(
            &task(
                1,
                "vm-1",
                "VirtualMachine.createSnapshot",
                TaskState::Queued,
                100.0,
            ),
            no_snapshots,
        );
        l.forget_task("task-1");
        assert!(l.pending_tasks().is_empty());
        assert!(l.counts.is_empty(), "its outcome is unknown: not counted");
        assert_eq!(l.created_by("vm-1", "snapshot-5", 160.0), Some("svc"));
        assert_eq!(l.created_by("vm-2", "snapshot-6", 160.0), None);
    }

    #[test]
    fn the_version_moves_with_what_collectors_read_and_only_then() {
        let mut l = Ledger::default();
        let v0 = l.version();
        l.apply(
            &task(
                1,
                "vm-1",
                "VirtualMachine.createSnapshot",
                TaskState::Queued,
                100.0,
            ),
            no_snapshots,
        );
        assert_eq!(l.version(), v0, "a followed task is not published yet");
        l.apply(
            &task(
                2,
                "vm-1",
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                100.0,
            ),
            no_snapshots,
        );
        let v1 = l.version();
        assert!(v1 > v0);
        l.apply(
            &task(
                2,
                "vm-1",
                "VirtualMachine.createSnapshot",
                TaskState::Success,
                100.0,
            ),
            no_snapshots,
        );
        assert_eq!(l.version(), v1, "a key seen before changes nothing");
        l.prune(0.0, |_| true, |_| true);
        assert_eq!(l.version(), v1, "a prune that drops nothing published");
        l.prune(1000.0, |_| false, |_| false);
        assert!(l.version() > v1);
    }

    fn timed(
        key: i64,
        task: &str,
        vm: &str,
        id: &str,
        state: TaskState,
        start: f64,
        end: f64,
    ) -> Event {
        Event {
            key,
            created_seconds: start,
            user: "VSPHERE.LOCAL\\svc-veeam".into(),
            vm: Some(vm.into()),
            kind: EventKind::Task(TaskInfo {
                task: task.into(),
                description_id: id.into(),
                state,
                start_seconds: Some(start),
                complete_seconds: Some(end),
                result_snapshot: None,
                user: None,
            }),
        }
    }

    #[test]
    fn each_task_duration_is_counted_once_into_its_bucket_and_the_newest_is_the_last() {
        let mut l = Ledger::default();
        let remove = "vm.Snapshot.remove";
        // 40 min, then 2 s: the last removal is the quick one.
        l.apply(
            &timed(1, "task-1", "vm-1", remove, TaskState::Success, 0.0, 2400.0),
            no_snapshots,
        );
        l.apply(
            &timed(
                2,
                "task-2",
                "vm-1",
                remove,
                TaskState::Error,
                3000.0,
                3002.0,
            ),
            no_snapshots,
        );
        // The same task in a second event (another key): not counted again.
        l.apply(
            &timed(3, "task-1", "vm-1", remove, TaskState::Success, 0.0, 2400.0),
            no_snapshots,
        );
        // 4 h 10 min: above the last bound, in +Inf only.
        l.apply(
            &timed(
                4,
                "task-4",
                "vm-2",
                remove,
                TaskState::Success,
                0.0,
                15_000.0,
            ),
            no_snapshots,
        );
        let ok = &l.durations[&(Operation::Remove, Outcome::Success)];
        assert_eq!(ok.count, 2);
        assert_eq!(ok.sum_seconds, 17_400.0);
        let cumulative = ok.cumulative();
        let at =
            |bound: f64| cumulative[DURATION_BUCKETS.iter().position(|b| *b == bound).unwrap()];
        assert_eq!((at(1800.0), at(3600.0), at(14_400.0)), (0, 1, 1));
        let failed = &l.durations[&(Operation::Remove, Outcome::Error)];
        assert_eq!(
            (failed.count, failed.cumulative()[0], failed.cumulative()[1]),
            (1, 0, 1)
        );
        let last = &l.last_duration[&("vm-1".to_string(), Operation::Remove)];
        assert_eq!(
            (last.outcome, last.seconds, last.complete_seconds),
            (Outcome::Error, 2.0, 3002.0)
        );
    }

    #[test]
    fn a_followed_task_is_timed_when_it_ends_and_not_again_after_a_reconnect() {
        let mut l = Ledger::default();
        let id = "VirtualMachine.createSnapshot";
        let mut queued = timed(1, "task-7", "vm-1", id, TaskState::Queued, 100.0, 0.0);
        if let EventKind::Task(info) = &mut queued.kind {
            info.start_seconds = None;
            info.complete_seconds = None;
        }
        l.apply(&queued, no_snapshots);
        assert!(l.durations.is_empty(), "not ended yet");
        let mut info = match &timed(1, "task-7", "vm-1", id, TaskState::Success, 104.0, 190.0).kind
        {
            EventKind::Task(info) => info.clone(),
            _ => unreachable!(),
        };
        l.update_task(&info);
        // The task history read again after a reconnect, and the event read back again.
        l.update_task(&info);
        l.apply(&queued, no_snapshots);
        info.task = "task-7".into();
        assert_eq!(l.durations[&(Operation::Create, Outcome::Success)].count, 1);
        assert_eq!(
            l.durations[&(Operation::Create, Outcome::Success)].sum_seconds,
            86.0
        );
        // A prune forgets the key; reading the window back counts nothing twice.
        l.prune(1000.0, |_| true, |_| false);
        let mut again = queued.clone();
        if let EventKind::Task(i) = &mut again.kind {
            *i = info.clone();
        }
        assert!(!l.apply(&again, no_snapshots));
        assert_eq!(l.durations[&(Operation::Create, Outcome::Success)].count, 1);
    }

    #[test]
    fn the_last_removal_by_a_backup_account_matches_its_name_without_case() {
        let mut l = Ledger::default();
        let remove = "vm.Snapshot.remove";
        let mut by = |key, user: &str, state, end| {
            let mut e = timed(
                key,
                &format!("task-{key}"),
                "vm-1",
                remove,
                state,
                end - 10.0,
                end,
            );
            e.user = user.into();
            l.apply(&e, no_snapshots);
        };
        by(1, "VSPHERE.LOCAL\\svc-veeam", TaskState::Success, 1000.0);
        by(2, "vsphere.local\\SVC-VEEAM", TaskState::Success, 2000.0);
        by(3, "VSPHERE.LOCAL\\svc-veeam", TaskState::Error, 3000.0);
        by(
            4,
            "VSPHERE.LOCAL\\Administrator",
            TaskState::Success,
            4000.0,
        );
        let users = [
            "VSPHERE.LOCAL\\svc-veeam".to_string(),
            "svc-nbu@vsphere.local".to_string(),
        ];
        assert_eq!(
            l.last_removal_by("vm-1", &users),
            Some(2000.0),
            "the failed one and the admin's do not count"
        );
        assert_eq!(l.last_removal_by("vm-2", &users), None);
        assert_eq!(
            l.last_removal_by("vm-1", &["svc-veeam".to_string()]),
            None,
            "the whole name, domain included"
        );
        assert!(
            same_user("CORP\\Müller", "corp\\MÜLLER"),
            "beyond ASCII too"
        );
        assert!(!same_user("CORP\\svc", "CORP\\svc2"));
    }
}
