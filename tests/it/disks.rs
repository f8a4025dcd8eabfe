//! The device checks (the `disks` collector) against the simulator's `pitfalls` scenario, value
//! by value against its facts: disks that snapshots skip and why, disks held from another VM's
//! directory (the multi-writer pair left out), snapshot blockers and the consistency level
//! `none` they bring, phantom snapshots, a snapshot tree without current, CBT without change
//! ids, a pending question, VMs not connected; every other VM without such series. Then the
//! same in the report: its risk lines (text and page) and the disks in its JSON and CSV rows.

use std::collections::BTreeMap;
use std::time::Duration;

use vsphere_backup_exporter::config::BackupConfig;
use vsphere_backup_exporter::report::{Format, Report};

use crate::support::{Sample, find, parse};
use crate::vcsim::{Facts, Vcsim, VmFacts};
use crate::{Served, serve_with};

async fn start() -> (Vcsim, Served, Vec<Sample>) {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let served = serve_with(vec![sim.vcenter("vc01")], BackupConfig::default()).await;
    let page = served.scrape_when_synced("vc01", "inventory", 30).await;
    (sim, served, parse(&page))
}

/// The series of `metric` for one VM, as label maps (without vcenter, vm_id, vm_name) → value.
fn series_of(
    out: &[Sample],
    metric: &str,
    vm: &VmFacts,
) -> BTreeMap<BTreeMap<String, String>, f64> {
    find(out, metric, &[("vm_id", vm.id.as_str())])
        .into_iter()
        .map(|s| {
            assert_eq!(s.labels["vm_name"], vm.name, "{metric} {}", vm.id);
            assert_eq!(s.labels["vcenter"], "vc01", "{metric} {}", vm.id);
            let rest = s
                .labels
                .iter()
                .filter(|(k, _)| !["vcenter", "vm_id", "vm_name"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (rest, s.value)
        })
        .collect()
}

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What the facts say each device metric must hold for one VM.
fn expected(f: &VmFacts) -> BTreeMap<&'static str, BTreeMap<BTreeMap<String, String>, f64>> {
    let mut want: BTreeMap<&'static str, BTreeMap<BTreeMap<String, String>, f64>> = BTreeMap::new();
    let mut entry = |metric: &'static str, l: BTreeMap<String, String>, v: f64| {
        *want.entry(metric).or_default().entry(l).or_default() += v;
    };
    for d in &f.disks_not_snapshotted {
        entry(
            "vsphere_vm_disks_not_snapshotted",
            labels([("reason", d.reason.as_str())]),
            1.0,
        );
    }
    for d in &f.foreign_disks {
        entry(
            "vsphere_vm_foreign_disk_info",
            labels([
                ("disk_file", d.disk_file.as_str()),
                ("owner_vm_id", d.owner_vm_id.as_str()),
                ("owner_vm_name", d.owner_vm_name.as_str()),
            ]),
            1.0,
        );
    }
    for (reason, n) in &f.snapshot_blockers {
        entry(
            "vsphere_vm_snapshot_blockers",
            labels([("reason", reason.as_str())]),
            *n as f64,
        );
    }
    if f.phantom_snapshot_disks > 0 {
        entry(
            "vsphere_vm_phantom_snapshot_disks",
            BTreeMap::new(),
            f.phantom_snapshot_disks as f64,
        );
    }
    if f.cbt_inactive_disks > 0 {
        entry(
            "vsphere_vm_cbt_inactive_disks",
            BTreeMap::new(),
            f.cbt_inactive_disks as f64,
        );
    }
    if f.connection_state != "connected" {
        entry(
            "vsphere_vm_connection_state",
            labels([("state", f.connection_state.as_str())]),
            1.0,
        );
    }
    want
}

/// Flags that may also be 0 for VMs without the condition: 1 exactly where the facts say.
fn check_flag(out: &[Sample], metric: &str, f: &VmFacts, on: bool) {
    let got = series_of(out, metric, f);
    let ones: Vec<_> = got.values().filter(|v| **v == 1.0).collect();
    assert_eq!(
        ones.len(),
        usize::from(on),
        "{metric} {} ({}): {got:?}",
        f.name,
        f.id
    );
    assert!(
        got.values().all(|v| *v == 0.0 || *v == 1.0) && got.len() <= 1,
        "{metric} {}: {got:?}",
        f.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_checks_equal_the_pitfalls_facts_value_by_value() {
    let (sim, served, out) = start().await;
    let facts = &sim.facts;
    for f in &facts.vms {
        let want = expected(f);
        for metric in [
            "vsphere_vm_disks_not_snapshotted",
            "vsphere_vm_foreign_disk_info",
            "vsphere_vm_snapshot_blockers",
            "vsphere_vm_phantom_snapshot_disks",
            "vsphere_vm_cbt_inactive_disks",
            "vsphere_vm_connection_state",
        ] {
            let got = series_of(&out, metric, f);
            let empty = BTreeMap::new();
            assert_eq!(
                &got,
                want.get(metric).unwrap_or(&empty),
                "{metric} of {} ({})",
                f.name,
                f.id
            );
        }
        check_flag(
            &out,
            "vsphere_vm_snapshot_current_missing",
            f,
            f.snapshot_current_missing,
        );
        check_flag(
            &out,
            "vsphere_vm_question_pending",
            f,
            !f.question.is_empty(),
        );
        // A VM with a blocker gets no backup at all: consistency `none`.
        let level = find(
            &out,
            "vsphere_vm_backup_consistency",
            &[("vm_id", f.id.as_str())],
        );
        if !f.template {
            assert_eq!(level.len(), 1, "{}", f.name);
            assert_eq!(level[0].labels["level"], f.backup_consistency, "{}", f.name);
        }
    }
    check_scenario_covers_every_case(facts);
    check_report(&served, facts).await;
}

/// The facts hold every case the checks know, and the cases meant to stay quiet: without this a
/// scenario that lost a VM would pass the comparison above.
fn check_scenario_covers_every_case(facts: &Facts) {
    let reasons: Vec<&str> = facts
        .vms
        .iter()
        .flat_map(|f| f.disks_not_snapshotted.iter().map(|d| d.reason.as_str()))
        .collect();
    for r in [
        "independent_persistent",
        "independent_nonpersistent",
        "physical_rdm",
    ] {
        assert!(reasons.contains(&r), "no disk {r} in the facts");
    }
    let blockers: Vec<&str> = facts
        .vms
        .iter()
        .flat_map(|f| f.snapshot_blockers.keys().map(String::as_str))
        .collect();
    for r in [
        "scsi_bus_sharing",
        "multi_writer_disk",
        "pci_passthrough",
        "fault_tolerance",
    ] {
        assert!(blockers.contains(&r), "no blocker {r} in the facts");
    }
    let vm = |name: &str| {
        facts
            .vms
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no VM {name} in the facts"))
    };
    assert_eq!(vm("pitfall-backup-proxy").foreign_disks.len(), 1);
    // The multi-writer pair shares a disk that lies in node a's directory: not foreign.
    for node in ["pitfall-cluster-node-a", "pitfall-cluster-node-b"] {
        assert!(vm(node).foreign_disks.is_empty(), "{node}");
        assert_eq!(
            vm(node).snapshot_blockers.get("multi_writer_disk"),
            Some(&1)
        );
    }
    assert!(vm("pitfall-phantom-snapshot").phantom_snapshot_disks > 0);
    assert!(vm("pitfall-snapshot-no-current").snapshot_current_missing);
    assert!(vm("pitfall-cbt-inactive").cbt_inactive_disks > 0);
    assert!(!vm("pitfall-question-pending").question.is_empty());
    assert_eq!(vm("pitfall-inaccessible").connection_state, "inaccessible");
    for healthy in [
        "DC0_C0_RP0_VM5",
        "pitfall-cbt-healthy",
        "pitfall-proxy-victim",
    ] {
        assert!(expected(vm(healthy)).is_empty(), "{healthy}");
    }
    assert!(vm("pitfall-cbt-healthy").cbt_enabled);
}

/// The report says what `/metrics` says: a risk line per check naming exactly the facts' VMs
/// (the question with its text), and the disks in the JSON and CSV rows.
async fn check_report(served: &Served, facts: &Facts) {
    let inputs = Report::inputs(served.exporter(), None, Duration::from_secs(10))
        .await
        .expect("vc01 is configured");
    let report = inputs.build();
    let names = |pick: &dyn Fn(&VmFacts) -> bool| -> Vec<String> {
        let mut v: Vec<String> = facts
            .vms
            .iter()
            .filter(|f| !f.template && pick(f))
            .map(|f| f.name.clone())
            .collect();
        v.sort();
        v
    };
    let lines: [(&str, Vec<String>); 8] = [
        (
            "disks_not_snapshotted",
            names(&|f| !f.disks_not_snapshotted.is_empty()),
        ),
        ("foreign_disks", names(&|f| !f.foreign_disks.is_empty())),
        (
            "snapshot_blockers",
            names(&|f| !f.snapshot_blockers.is_empty()),
        ),
        // A VM vCenter asks to consolidate is on the consolidation line instead.
        (
            "phantom_snapshots",
            names(&|f| f.phantom_snapshot_disks > 0 && !f.consolidation_needed),
        ),
        (
            "snapshot_current_missing",
            names(&|f| f.snapshot_current_missing),
        ),
        ("cbt_inactive", names(&|f| f.cbt_inactive_disks > 0)),
        ("question_pending", names(&|f| !f.question.is_empty())),
        (
            "not_connected",
            names(&|f| f.connection_state != "connected"),
        ),
    ];
    let text = String::from_utf8(report.render(Format::Text).expect("text")).expect("UTF-8");
    for (key, want) in &lines {
        let risk = report
            .risks
            .iter()
            .find(|r| r.key == *key)
            .unwrap_or_else(|| panic!("no risk line {key}"));
        assert!(!want.is_empty(), "{key}: the scenario has no such VM");
        assert_eq!(risk.count, want.len(), "{key}: {risk:?}");
        let named: Vec<&str> = risk
            .named
            .iter()
            .map(|n| n.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(named, *want, "{key}");
        assert!(
            text.contains(&format!("{}: {}", risk.title, risk.count)),
            "{key} not in the text report:\n{text}"
        );
    }
    // The details: the question's text, the disk and owner of the foreign disk.
    for f in &facts.vms {
        if !f.question.is_empty() {
            assert!(
                text.contains(&format!("{}: {}", f.name, f.question)),
                "{}'s question not in the report:\n{text}",
                f.name
            );
        }
        for d in &f.foreign_disks {
            assert!(
                text.contains(&format!(
                    "{}: {} of {}",
                    f.name, d.disk_file, d.owner_vm_name
                )),
                "{}'s foreign disk not in the report:\n{text}",
                f.name
            );
        }
    }
    // The disks in the rows: each snapshot's row carries its VM's.
    let (status, json) = served.get("/report.json").await;
    assert_eq!(status, 200, "{json}");
    let rows = crate::report::json_rows(&json);
    let snapshots: usize = facts.vms.iter().map(|f| f.snapshots.len()).sum();
    assert_eq!(rows.len(), snapshots, "one row per snapshot");
    for row in &rows {
        let f = facts
            .vms
            .iter()
            .find(|f| f.id == row["vm_id"])
            .unwrap_or_else(|| panic!("a row of no VM in the facts: {row:?}"));
        assert_eq!(
            row["disks_not_snapshotted"],
            crate::report::disks_not_snapshotted(f),
            "{}",
            f.name
        );
        assert_eq!(
            row["foreign_disks"],
            crate::report::foreign_disks(f),
            "{}",
            f.name
        );
    }
    assert!(
        rows.iter().any(|r| !r["disks_not_snapshotted"].is_empty()),
        "no row names a disk left out: {rows:?}"
    );
}
