//! The backup checks against the simulator's `backup` scenario, value by value against the
//! facts it wrote: last backups and parse errors, consistency, CBT, owner labels, snapshot
//! tasks from the event history, their durations (last per VM, and the histogram), the last
//! backup from the backup accounts' removals, creators, disks grown under snapshots, stagger per
//! host and datastore, datastore space; a posted event in `/metrics` within 15 s; the event
//! follower through a lost session without counting twice (events nor durations); `disk.EnableUUID` read for Windows guests
//! only where the server refuses the keyed path.

use std::time::{Duration, Instant};

use serde_json::json;
use vsphere_backup_exporter::backup::consistency::Level;
use vsphere_backup_exporter::backup::history::DURATION_BUCKETS;
use vsphere_backup_exporter::config::{BackupConfig, OwnerLabel};

use crate::support::{Sample, find, parse, value};
use crate::vcsim::{Facts, Vcsim, VmFacts};
use crate::{Served, serve_with};

/// The backup checks as the scenario's facts assume them: owner labels, the required
/// consistency attribute, and the backup accounts (`last_backup_event_users`) the facts name.
fn backup_config(facts: &Facts) -> BackupConfig {
    BackupConfig {
        last_backup_event_users: facts.backup_event_users.clone(),
        owner_labels: ["owner", "team"]
            .iter()
            .map(|a| OwnerLabel {
                attribute: a.to_string(),
                label: a.to_string(),
            })
            .collect(),
        consistency_required_attribute: Some("backup-consistency".into()),
        ..BackupConfig::default()
    }
}

async fn start() -> (Vcsim, Served, Vec<Sample>) {
    let sim = Vcsim::start(&["-scenario", "backup"]);
    let served = serve_with(vec![sim.vcenter("vc01")], backup_config(&sim.facts)).await;
    let page = served.scrape_when_synced("vc01", "events", 30).await;
    let samples = parse(&page);
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "events")]),
        1.0
    );
    (sim, served, samples)
}

/// vCenter drops a finished Task object minutes after it ends; the simulator keeps them unless
/// told (`-task-retention`). Here every task of the scenario is gone before the exporter starts,
/// as after a restart the morning after the backups: the outcomes of the tasks whose events
/// were posted when they were queued come from the task history, and creators still match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_come_from_the_task_history_when_vcenter_has_dropped_the_task_objects() {
    let sim = Vcsim::start(&["-scenario", "backup", "-task-retention", "100ms"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = sim.stats().await.tasks;
        if tasks.seen > 0 && tasks.dropped == tasks.seen {
            break;
        }
        assert!(Instant::now() < deadline, "tasks not dropped: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served = serve_with(vec![sim.vcenter("vc01")], backup_config(&sim.facts)).await;
    let page = served.scrape_when_synced("vc01", "events", 30).await;
    let out = parse(&page);
    for f in &sim.facts.vms {
        check_vm(&out, f);
    }
    check_counts(&out, &sim.facts);
    let tasks = sim.stats().await.tasks;
    assert!(tasks.collectors_created >= 1, "{tasks:?}");
    assert!(tasks.task_infos_read >= 2, "{tasks:?}");
    assert!(
        tasks.read_next_tasks_calls >= 2,
        "read to the end: {tasks:?}"
    );
}

fn vm(id: &str) -> [(&'static str, &str); 1] {
    [("vm_id", id)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_scenario_series_equal_the_facts_value_by_value() {
    let (sim, served, out) = start().await;
    let facts = &sim.facts;
    assert_eq!(facts.vms.len(), 6);
    for f in &facts.vms {
        check_vm(&out, f);
    }
    check_counts(&out, facts);
    check_hosts_and_datastores(&out, facts);
    // The report's rows carry the same creators and last backups, field by field.
    let before = crate::report::unix_now();
    let (status, json) = served.get("/report.json").await;
    let after = crate::report::unix_now();
    assert_eq!(status, 200, "{json}");
    let rows = crate::report::json_rows(&json);
    crate::report::assert_rows(&rows, facts, before, after);
    assert!(
        rows.iter().any(|r| !r["created_by"].is_empty())
            && rows.iter().any(|r| !r["last_backup"].is_empty()),
        "the scenario names creators and last backups: {rows:?}"
    );
}

fn check_vm(out: &[Sample], f: &VmFacts) {
    let id = f.id.as_str();
    // Last backup: exactly the facts' sources, with their times or parse errors.
    let errors = find(out, "vsphere_vm_last_backup_parse_error", &vm(id));
    assert_eq!(errors.len(), f.last_backup.len(), "{id}: {errors:?}");
    for b in &f.last_backup {
        let labels = [("vm_id", id), ("source", b.source.as_str())];
        let error = value(out, "vsphere_vm_last_backup_parse_error", &labels);
        assert_eq!(
            error,
            f64::from(u8::from(b.parse_error)),
            "{id} {}",
            b.source
        );
        let times = find(out, "vsphere_vm_last_backup_timestamp_seconds", &labels);
        if b.parse_error {
            assert!(times.is_empty(), "{id} {}: {times:?}", b.source);
        } else {
            assert_eq!(times.len(), 1, "{id} {}", b.source);
            assert_eq!(times[0].value, b.timestamp_seconds, "{id} {}", b.source);
        }
    }
    // The last backup from the backup accounts' removals, beside the attribute and notes sources.
    let from_events = [("vm_id", id), ("source", "events")];
    let times = find(
        out,
        "vsphere_vm_last_backup_timestamp_seconds",
        &from_events,
    );
    if f.last_backup_from_events > 0.0 {
        assert_eq!(times.len(), 1, "{id}: {times:?}");
        assert_eq!(times[0].value, f.last_backup_from_events, "{id}");
    } else {
        assert!(times.is_empty(), "{id}: {times:?}");
    }
    // Each operation's last task with how long it ran and how it ended.
    let durations = find(
        out,
        "vsphere_vm_snapshot_task_last_duration_seconds",
        &vm(id),
    );
    assert_eq!(
        durations.len(),
        f.snapshot_task_durations.len(),
        "{id}: {durations:?}"
    );
    for d in &f.snapshot_task_durations {
        let labels = [
            ("vm_id", id),
            ("operation", d.operation.as_str()),
            ("result", d.result.as_str()),
        ];
        let got = value(
            out,
            "vsphere_vm_snapshot_task_last_duration_seconds",
            &labels,
        );
        assert_eq!(got, d.seconds, "{id} {labels:?}");
    }
    // Consistency, the level asked for, CBT.
    let level = find(out, "vsphere_vm_backup_consistency", &vm(id));
    assert_eq!(level.len(), 1, "{id}");
    assert_eq!(level[0].labels["level"], f.backup_consistency, "{id}");
    let required = find(out, "vsphere_vm_backup_consistency_required", &vm(id));
    match f.custom_values.get("backup-consistency") {
        Some(asked) => {
            let want = Level::parse(asked).map_or("invalid", Level::as_str);
            assert_eq!(required.len(), 1, "{id}");
            assert_eq!(required[0].labels["level"], want, "{id}");
        }
        None => assert!(required.is_empty(), "{id}: {required:?}"),
    }
    let cbt = value(out, "vsphere_vm_cbt_enabled", &vm(id));
    assert_eq!(cbt, f64::from(u8::from(f.cbt_enabled)), "{id}");
    // Owner labels on vsphere_vm_info, empty when the VM has no value.
    let info = find(out, "vsphere_vm_info", &vm(id));
    assert_eq!(info.len(), 1, "{id}");
    for attribute in ["owner", "team"] {
        let want = f.custom_values.get(attribute).map_or("", String::as_str);
        assert_eq!(info[0].labels[attribute], want, "{id} {attribute}");
    }
    // Last snapshot tasks and who ran them.
    let tasks = find(
        out,
        "vsphere_vm_snapshot_task_last_timestamp_seconds",
        &vm(id),
    );
    assert_eq!(tasks.len(), f.snapshot_tasks.len(), "{id}: {tasks:?}");
    for t in &f.snapshot_tasks {
        let labels = [
            ("vm_id", id),
            ("operation", t.operation.as_str()),
            ("result", t.result.as_str()),
        ];
        let at = value(
            out,
            "vsphere_vm_snapshot_task_last_timestamp_seconds",
            &labels,
        );
        assert_eq!(at, t.last_timestamp_seconds, "{id} {labels:?}");
        let users = find(out, "vsphere_vm_snapshot_task_last_user_info", &labels);
        assert_eq!(users.len(), 1, "{id} {labels:?}");
        assert_eq!(users[0].labels["user_name"], t.user_name, "{id} {labels:?}");
    }
    // Snapshots: creator and description.
    let infos = find(out, "vsphere_vm_snapshot_info", &vm(id));
    assert_eq!(infos.len(), f.snapshots.len(), "{id}");
    for s in &f.snapshots {
        let labels = [("vm_id", id), ("snapshot_id", s.id.as_str())];
        let info = find(out, "vsphere_vm_snapshot_info", &labels);
        assert_eq!(info.len(), 1, "{id} {}", s.id);
        assert_eq!(info[0].labels["created_by"], s.created_by, "{id} {}", s.id);
        assert_eq!(
            info[0].labels["description"], s.description,
            "{id} {}",
            s.id
        );
    }
    // Reconfigurations under snapshots: for VMs with snapshots or a count.
    let counted = !f.snapshots.is_empty() || f.reconfigured_with_snapshots > 0;
    let disk = find(out, "vsphere_vm_disk_changed_with_snapshots_total", &vm(id));
    let any = find(out, "vsphere_vm_reconfigured_with_snapshots_total", &vm(id));
    if counted {
        assert_eq!(disk.len(), 1, "{id}");
        assert_eq!(disk[0].value, f.disk_changed_with_snapshots as f64, "{id}");
        assert_eq!(any[0].value, f.reconfigured_with_snapshots as f64, "{id}");
    } else {
        assert!(disk.is_empty() && any.is_empty(), "{id}");
    }
}

fn check_counts(out: &[Sample], facts: &Facts) {
    for operation in ["create", "remove", "consolidate"] {
        for result in ["success", "error"] {
            let want = facts
                .snapshot_task_events
                .iter()
                .find(|c| c.operation == operation && c.result == result)
                .map_or(0, |c| c.count);
            let labels = [("operation", operation), ("result", result)];
            let got = value(out, "vsphere_snapshot_task_events_total", &labels);
            assert_eq!(got, want as f64, "{labels:?}");
            check_histogram(out, facts, operation, result);
        }
    }
}

/// `vsphere_snapshot_task_duration_seconds` of one operation and result against every task's
/// duration in the facts: each bucket's count, `+Inf`, `_sum` and `_count`.
fn check_histogram(out: &[Sample], facts: &Facts, operation: &str, result: &str) {
    let observed: &[f64] = facts
        .snapshot_task_durations
        .iter()
        .find(|d| d.operation == operation && d.result == result)
        .map_or(&[], |d| d.seconds.as_slice());
    let name = "vsphere_snapshot_task_duration_seconds";
    let labels = [("operation", operation), ("result", result)];
    let buckets = find(out, &format!("{name}_bucket"), &labels);
    assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1, "{labels:?}");
    for bound in DURATION_BUCKETS {
        let le = bound.to_string();
        let want = observed.iter().filter(|s| **s <= bound).count();
        let with_le = [labels[0], labels[1], ("le", le.as_str())];
        let got = value(out, &format!("{name}_bucket"), &with_le);
        assert_eq!(got, want as f64, "{with_le:?}");
    }
    let inf = [labels[0], labels[1], ("le", "+Inf")];
    let count = observed.len() as f64;
    assert_eq!(
        value(out, &format!("{name}_bucket"), &inf),
        count,
        "{inf:?}"
    );
    assert_eq!(value(out, &format!("{name}_count"), &labels), count);
    let sum: f64 = observed.iter().sum();
    assert_eq!(
        value(out, &format!("{name}_sum"), &labels),
        sum,
        "{labels:?}"
    );
}

fn check_hosts_and_datastores(out: &[Sample], facts: &Facts) {
    assert_eq!(
        find(out, "vsphere_host_backup_snapshots", &[]).len(),
        facts.hosts.len()
    );
    for h in &facts.hosts {
        let labels = [
            ("host_id", h.id.as_str()),
            ("host_name", h.name.as_str()),
            ("cluster_name", h.cluster_name.as_str()),
        ];
        let n = value(out, "vsphere_host_backup_snapshots", &labels);
        assert_eq!(n, h.backup_snapshots as f64, "{}", h.name);
    }
    assert_eq!(
        find(out, "vsphere_datastore_info", &[]).len(),
        facts.datastores.len()
    );
    for d in &facts.datastores {
        let ids = [
            ("datastore_id", d.id.as_str()),
            ("datastore_name", d.name.as_str()),
        ];
        let info = find(out, "vsphere_datastore_info", &ids);
        assert_eq!(info.len(), 1, "{}", d.name);
        assert_eq!(info[0].labels["datastore_type"], d.fs_type, "{}", d.name);
        assert_eq!(
            info[0].labels["extent_disks"],
            d.extent_disks.join(","),
            "{}",
            d.name
        );
        let v = |name| value(out, name, &ids);
        assert_eq!(
            v("vsphere_datastore_capacity_bytes"),
            d.capacity_bytes as f64
        );
        assert_eq!(v("vsphere_datastore_free_bytes"), d.free_bytes as f64);
        assert_eq!(
            v("vsphere_datastore_uncommitted_bytes"),
            d.uncommitted_bytes as f64
        );
        assert_eq!(
            v("vsphere_datastore_accessible"),
            f64::from(u8::from(d.accessible))
        );
        assert_eq!(
            v("vsphere_datastore_backup_snapshots"),
            d.backup_snapshots as f64,
            "{}",
            d.name
        );
        assert_eq!(
            v("vsphere_datastore_snapshot_bytes"),
            d.snapshot_bytes as f64,
            "{}",
            d.name
        );
    }
}

/// The value of `name` matching `labels`, 0 when there is no such series yet.
fn value_or_zero(out: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(out, name, labels).first().map_or(0.0, |s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_event_shows_in_metrics_within_15_seconds() {
    let (sim, served, before) = start().await;
    let target = sim
        .facts
        .vms
        .iter()
        .find(|v| v.name == "DC0_H0_VM1")
        .unwrap();
    let labels = [("operation", "create"), ("result", "error")];
    let count_before = value(&before, "vsphere_snapshot_task_events_total", &labels);
    let posted = vsphere_backup_exporter::source::unix_now().floor();
    let answer = sim
        .control(json!({"op": "post_event", "vm": target.id, "task": "VirtualMachine.createSnapshot", "fail": true, "user": "svc-live"}))
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let started = Instant::now();
    let vm_labels = [
        ("vm_id", target.id.as_str()),
        ("operation", "create"),
        ("result", "error"),
    ];
    loop {
        let out = parse(&served.scrape("/probe?target=vc01").await);
        let count = value(&out, "vsphere_snapshot_task_events_total", &labels);
        let last = value_or_zero(
            &out,
            "vsphere_vm_snapshot_task_last_timestamp_seconds",
            &vm_labels,
        );
        if count == count_before + 1.0 && last >= posted {
            let user = find(&out, "vsphere_vm_snapshot_task_last_user_info", &vm_labels);
            assert_eq!(user[0].labels["user_name"], "svc-live");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the posted event is not in /metrics after 15 s: count {count} (was {count_before}), last {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("posted event visible after {seconds:.2} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_session_the_history_is_read_again_without_counting_twice() {
    let (sim, served, before) = start().await;
    let counts = |out: &[Sample]| -> Vec<f64> {
        let events = find(out, "vsphere_snapshot_task_events_total", &[]);
        let timed = find(out, "vsphere_snapshot_task_duration_seconds_count", &[]);
        events.iter().chain(&timed).map(|s| s.value).collect()
    };
    let logins_before = served.target().client().logins();
    let answer = sim.control(json!({"op": "drop_sessions"})).await;
    assert_eq!(answer["ok"], true, "{answer}");
    // The follower notices at its next call (its waits end within 30 s), logs in again and
    // reads the window back; then it is in sync again with the same counts.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let out = parse(&served.scrape("/probe?target=vc01").await);
        let relogged = served.target().client().logins() > logins_before;
        let synced = value(&out, "vsphere_source_up", &[("source", "events")]) == 1.0;
        let read_again = find(&out, "vsphere_snapshot_task_events_total", &[]).len() == 6;
        if relogged && synced && read_again {
            assert_eq!(
                counts(&out),
                counts(&before),
                "counted twice after reading back"
            );
            let sums = |out: &[Sample]| -> Vec<f64> {
                let sums = find(out, "vsphere_snapshot_task_duration_seconds_sum", &[]);
                sums.iter().map(|s| s.value).collect()
            };
            assert_eq!(sums(&out), sums(&before), "durations counted twice");
            assert!(
                sums(&before).iter().any(|s| *s > 0.0),
                "the scenario's tasks were timed"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event follower did not recover"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The simulator refuses `config.extraConfig["disk.EnableUUID"]`: the mirror reads the
/// extraConfig of Windows guests only, so a Linux VM's flag stays unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_enable_uuid_is_read_for_windows_guests_only_where_the_keyed_path_is_refused() {
    let (sim, served, _) = start().await;
    let inventory = served
        .target()
        .mirror()
        .unwrap()
        .feed()
        .latest()
        .value
        .clone()
        .unwrap();
    for f in &sim.facts.vms {
        let got = inventory.vms[&f.id].backup.disk_enable_uuid;
        let want = match (f.windows, f.disk_enable_uuid.as_str()) {
            (true, "TRUE") => Some(true),
            (true, "FALSE") => Some(false),
            _ => None,
        };
        assert_eq!(
            got, want,
            "{} ({}, {})",
            f.id, f.guest_id, f.disk_enable_uuid
        );
    }
    assert!(
        sim.facts
            .vms
            .iter()
            .any(|f| !f.windows && f.disk_enable_uuid == "TRUE"),
        "the scenario has a Linux VM with the flag set"
    );
}
