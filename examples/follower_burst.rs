//! The event follower's own cost for a burst of tasks at 40,000 VMs, in process: what its loop
//! does per page of events (apply each event to the [`Ledger`], decide whether to publish,
//! publish a copy) and what a render asks of the ledger (`created_by` for every snapshot).
//!
//! The baseline, measured in the same run, is the loop as it was before issue 24: a deep
//! clone of the ledger before every page, a field-by-field comparison after it, and a linear
//! scan of every creation per snapshot in `created_by`. The simulator cannot carry this burst
//! at this size: every posted event makes govmomi's PropertyCollector re-collect each filter
//! of every collector, the mirror's 40,000 VMs included (tests/vcsim/README.md), so 10,000
//! events would take hours there; the SOAP side of a page (one ReadNextEvents of 1,000 events)
//! is measured by `examples/backup_cost.rs`.
//!
//! ```sh
//! cargo run --release --example follower_burst [-- VMS BURST]   # default 40000 10000
//! ```
//!
//! Prints one JSON object: seconds (CPU of this one thread, which is what the loop costs a
//! worker), the time from the first event of the burst to the last publish, and the peak RSS.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use vsphere_backup_exporter::backup::history::{
    Creation, Event, EventKind, Ledger, Operation, Outcome, TaskInfo, TaskState,
};
use vsphere_backup_exporter::vsphere::Inventory;
use vsphere_backup_exporter::vsphere::model::{SnapshotInfo, SnapshotTree, Vm};

/// Events per ReadNextEvents page, as the follower reads them.
const PAGE: usize = 1000;
/// Snapshots per VM with snapshots, and the share of VMs with snapshots (the scale scenario's).
const SNAPSHOTS_PER_VM: usize = 3;
const SNAPSHOT_VM_SHARE: usize = 3;
/// The night before the burst: a create and a remove per VM, already in the ledger.
const NIGHT: f64 = 1_800_000_000.0;

fn inventory(vms: usize) -> Inventory {
    let mut inv = Inventory::default();
    for i in 0..vms {
        let id = format!("vm-{i}");
        let mut vm = Vm {
            id: id.clone(),
            name: format!("VM{i}"),
            ..Default::default()
        };
        if i % SNAPSHOT_VM_SHARE == 0 {
            let trees = (0..SNAPSHOTS_PER_VM)
                .map(|k| SnapshotTree {
                    snapshot: format!("snapshot-{i}-{k}"),
                    // Taken during the night's create task of the VM (start NIGHT + i, 30 s).
                    create_time_seconds: NIGHT + (i + k) as f64,
                    ..Default::default()
                })
                .collect();
            vm.snapshot = Some(SnapshotInfo {
                current_snapshot: Some(format!("snapshot-{i}-0")),
                root_snapshot_list: trees,
            });
        }
        inv.vms.insert(id, Arc::new(vm));
    }
    inv
}

fn task_event(key: i64, vm: usize, id: &str, state: TaskState, at: f64) -> Event {
    Event {
        key,
        created_seconds: at,
        user: "VSPHERE.LOCAL\\svc-backup".into(),
        vm: Some(format!("vm-{vm}")),
        kind: EventKind::Task(TaskInfo {
            task: format!("task-{key}"),
            description_id: id.into(),
            state,
            start_seconds: Some(at),
            complete_seconds: matches!(state, TaskState::Success | TaskState::Error)
                .then_some(at + 30.0),
            result_snapshot: None,
            user: None,
        }),
    }
}

/// A ledger after a night of backups: a create and a remove, both ended, for every VM.
fn night(vms: usize) -> (Ledger, i64) {
    let mut ledger = Ledger::default();
    let mut key = 0;
    for vm in 0..vms {
        for id in ["VirtualMachine.createSnapshot", "vm.Snapshot.remove"] {
            key += 1;
            let at = NIGHT + vm as f64;
            ledger.apply(&task_event(key, vm, id, TaskState::Success, at), |_, _| {
                true
            });
        }
    }
    (ledger, key)
}

/// The burst: `n` snapshot creations posted queued, then their ends learned.
fn burst(first_key: i64, n: usize, vms: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let vm = (i * 7) % vms;
            task_event(
                first_key + 1 + i as i64,
                vm,
                "VirtualMachine.createSnapshot",
                TaskState::Queued,
                NIGHT + 86_400.0 + i as f64,
            )
        })
        .collect()
}

fn ended(event: &Event) -> Option<TaskInfo> {
    let EventKind::Task(info) = &event.kind else {
        return None;
    };
    Some(TaskInfo {
        state: TaskState::Success,
        complete_seconds: Some(event.created_seconds + 30.0),
        ..info.clone()
    })
}

/// The old loop's test for a change: every published field compared.
fn changed_old(before: &Ledger, after: &Ledger) -> bool {
    before.counts != after.counts
        || before.last != after.last
        || before.creations() != after.creations()
        || before.disk_changed_with_snapshots != after.disk_changed_with_snapshots
        || before.reconfigured_with_snapshots != after.reconfigured_with_snapshots
}

/// The old `created_by`: the creations scanned whole for every snapshot.
fn created_by_old<'a>(
    creations: &'a [Creation],
    vm: &str,
    snapshot: &str,
    at: f64,
) -> Option<&'a str> {
    if let Some(c) = creations
        .iter()
        .find(|c| c.snapshot.as_deref() == Some(snapshot))
    {
        return Some(&c.user);
    }
    creations
        .iter()
        .filter(|c| c.vm == vm && c.snapshot.is_none())
        .filter(|c| {
            c.started_seconds <= at + 5.0
                && c.started_seconds >= at - 1800.0
                && c.complete_seconds.is_none_or(|end| end + 5.0 >= at)
        })
        .max_by(|a, b| a.started_seconds.total_cmp(&b.started_seconds))
        .map(|c| c.user.as_str())
}

/// CPU seconds of this thread.
fn thread_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses): utime is the 14th field.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .zip(fields.get(12))
        .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
        .unwrap_or(f64::NAN);
    ticks / 100.0
}

fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One run of the loop over the burst: pages of events, then a page of task ends; returns
/// (CPU seconds, wall seconds to the last publish, publishes).
fn run(
    mut ledger: Ledger,
    events: &[Event],
    held: &Inventory,
    old: bool,
) -> (f64, f64, usize, Ledger) {
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut published: Vec<Arc<Ledger>> = Vec::new();
    let holds = |vm: &str, at: f64| {
        held.vms.get(vm).is_some_and(|v| {
            v.snapshots()
                .iter()
                .any(|s| s.tree.create_time_seconds <= at)
        })
    };
    let mut step = |ledger: &mut Ledger, apply: &dyn Fn(&mut Ledger)| {
        if old {
            let before = ledger.clone();
            apply(ledger);
            if changed_old(&before, ledger) {
                published.push(Arc::new(ledger.clone()));
            }
        } else {
            let before = ledger.version();
            apply(ledger);
            if ledger.version() != before {
                published.push(Arc::new(ledger.clone()));
            }
        }
        // The feed keeps the latest only.
        let last = published.pop();
        let n = published.len();
        published.clear();
        published.extend(last);
        n
    };
    let mut publishes = 0;
    for page in events.chunks(PAGE) {
        step(&mut ledger, &|l: &mut Ledger| {
            for e in page {
                l.apply(e, holds);
            }
        });
        publishes += 1;
    }
    for page in events.chunks(PAGE) {
        step(&mut ledger, &|l: &mut Ledger| {
            for e in page {
                if let Some(info) = ended(e) {
                    l.update_task(&info);
                }
            }
        });
        publishes += 1;
    }
    (
        thread_cpu() - cpu,
        started.elapsed().as_secs_f64(),
        publishes,
        ledger,
    )
}

/// `created_by` for every snapshot of the inventory: seconds, and how many matched.
fn render(ledger: &Ledger, inv: &Inventory, old: bool) -> (f64, usize) {
    let started = Instant::now();
    let mut matched = 0;
    for vm in inv.vms.values() {
        for s in vm.snapshots() {
            let who = if old {
                created_by_old(
                    ledger.creations(),
                    &vm.id,
                    &s.tree.snapshot,
                    s.tree.create_time_seconds,
                )
            } else {
                ledger.created_by(&vm.id, &s.tree.snapshot, s.tree.create_time_seconds)
            };
            matched += usize::from(who.is_some());
        }
    }
    (started.elapsed().as_secs_f64(), matched)
}

/// One mode in this process: the follower as it is (`new`) or the baseline (`old`).
fn measure(vms: usize, n: usize, old: bool) -> Result<serde_json::Value> {
    let inv = inventory(vms);
    let (ledger, last_key) = night(vms);
    let events = burst(last_key, n, vms);
    let rss_before = peak_rss_bytes();
    let (cpu, wall, publishes, after) = run(ledger, &events, &inv, old);
    let (render_seconds, matched) = render(&after, &inv, old);
    let snapshots: usize = inv.vms.values().map(|v| v.snapshots().len()).sum();
    Ok(serde_json::json!({
        "cpu_seconds": cpu,
        "seconds_to_last_publish": wall,
        "pages_published": publishes,
        "create_success_counted": after.counts.get(&(Operation::Create, Outcome::Success)).copied().unwrap_or(0),
        "creations": after.creations().len(),
        "snapshots": snapshots,
        "created_by_matched": matched,
        "render_created_by_seconds": render_seconds,
        "peak_rss_bytes_before_burst": rss_before,
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let vms: usize = args
        .first()
        .map_or(Ok(40_000), |a| a.parse())
        .context("VMS")?;
    let n: usize = args
        .get(1)
        .map_or(Ok(10_000), |a| a.parse())
        .context("BURST")?;
    match args.get(2).map(String::as_str) {
        Some("new") => println!("{}", measure(vms, n, false)?),
        Some("old") => println!("{}", measure(vms, n, true)?),
        _ => {
            // Each in a process of its own, so each peak RSS is its own.
            let exe = std::env::current_exe()?;
            let child = |mode: &str| -> Result<serde_json::Value> {
                let out = std::process::Command::new(&exe)
                    .args([vms.to_string(), n.to_string(), mode.to_string()])
                    .output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "{mode}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(serde_json::from_slice(&out.stdout)?)
            };
            let (new, old) = (child("new")?, child("old")?);
            anyhow::ensure!(
                new["created_by_matched"] == old["created_by_matched"]
                    && new["create_success_counted"] == old["create_success_counted"],
                "the follower and the baseline disagree: {new} {old}"
            );
            let ratio =
                |k: &str| new[k].as_f64().unwrap_or(f64::NAN) / old[k].as_f64().unwrap_or(f64::NAN);
            let out = serde_json::json!({
                "vms": vms,
                "burst_tasks": n,
                "follower": new,
                "baseline": old,
                "cpu_ratio_to_baseline": ratio("cpu_seconds"),
                "render_ratio_to_baseline": ratio("render_created_by_seconds"),
                "peak_rss_ratio_to_baseline": ratio("peak_rss_bytes"),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}
