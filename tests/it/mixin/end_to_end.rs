//! The rules and dashboards in a real Prometheus: it scrapes the exporter following the
//! simulator's `pitfalls` scenario (every pitfall the simulator can hold, one VM each, plus a
//! healthy VM), a second vCenter entry with a wrong password, and a target that never answers;
//! it evaluates the rule file with every `for:` cut to 1 s. Then:
//!
//! 1. every rule evaluates without error;
//! 2. exactly the expected alerts fire, each for its VM, snapshot, vCenter or target, and none
//!    for the healthy VM;
//! 3. every dashboard query (panels, variables, annotations; variables substituted) runs
//!    without error and returns data;
//! 4. the Alertmanager digest template renders the real snapshot alerts, age and size included.
//!
//! Alerts and panels whose metrics do not exist yet are listed in [`AWAITING_METRICS`]; the
//! test fails when such an entry's metrics all exist, so nothing stays unproven silently.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use jiff::tz::TimeZone;
use vsphere_backup_exporter::backup::blackout::Window;
use vsphere_backup_exporter::config::{BackupConfig, Secret, TagsConfig};

use super::alerts::{assert_digest_lists, render};
use super::prometheus::{Prometheus, rules_with_short_for};
use super::recording_proxy::RecordingProxy;
use super::{RULES, dashboards, metric_names, queries, repo, rules, substitute_variables};
use crate::support::{parse, value};
use crate::vcsim::Vcsim;
use crate::{config_for, serve_config};

/// Alerts and dashboard queries (`<dashboard uid>: <panel title>`, `…: variable <name>`,
/// `…: annotation <name>`) that cannot be proven yet because a metric they read does not exist.
/// When every metric of an entry exists, the test fails and asks to remove the entry: then give
/// the `pitfalls` scenario the situation and add the alert to [`EXPECTED`].
const AWAITING_METRICS: &[&str] = &[];

/// Alerts whose metrics exist but whose situation this test cannot create in seconds, with
/// why: each must evaluate without error and stay quiet here.
const NOT_PROVOKED: &[(&str, &str)] = &[
    (
        "VSphereCollectorFailing",
        "no collector fails against the simulator (a failing collector is a unit test's)",
    ),
    (
        "VSphereInventoryStale",
        "needs 10 minutes without an update while the vCenter is up",
    ),
];

/// An alert that must fire: its name, severity and the labels that name its object. VM and host
/// alerts also get `vcenter="vc01"` and the `vm_id`/`host_id` from the simulator's facts.
struct Expected {
    alert: &'static str,
    severity: &'static str,
    object: &'static [(&'static str, &'static str)],
    /// False for alerts whose expression aggregates the scrape's `job` away.
    keeps_job: bool,
}

const fn fires(
    alert: &'static str,
    severity: &'static str,
    object: &'static [(&'static str, &'static str)],
) -> Expected {
    Expected {
        alert,
        severity,
        object,
        keeps_job: true,
    }
}

/// An alert whose expression aggregates `job` and `instance` away.
const fn fires_aggregated(
    alert: &'static str,
    severity: &'static str,
    object: &'static [(&'static str, &'static str)],
) -> Expected {
    Expected {
        alert,
        severity,
        object,
        keeps_job: false,
    }
}

const VEEAM: &[(&str, &str)] = &[
    ("vm_name", "DC0_C0_RP0_VM0"),
    ("snapshot_name", "VEEAM BACKUP TEMPORARY SNAPSHOT"),
    ("backup_product", "veeam"),
];
const RUBRIK_8H: &[(&str, &str)] = &[
    ("vm_name", "pitfall-backup-8h"),
    ("snapshot_name", "RUBRIK-5f3a9c21"),
    ("backup_product", "rubrik"),
];
const BEFORE_PATCH: &[(&str, &str)] = &[
    ("vm_name", "DC0_C0_RP0_VM1"),
    ("snapshot_name", "before-patch"),
];
const AFTER_PATCH: &[(&str, &str)] = &[
    ("vm_name", "DC0_C0_RP0_VM1"),
    ("snapshot_name", "after-patch"),
];
const BASE_INSTALL: &[(&str, &str)] = &[
    ("vm_name", "DC0_C0_RP0_VM2"),
    ("snapshot_name", "base-install"),
];
const CONFIG_A: &[(&str, &str)] = &[("vm_name", "DC0_C0_RP0_VM2"), ("snapshot_name", "config-a")];
const CONFIG_B: &[(&str, &str)] = &[("vm_name", "DC0_C0_RP0_VM2"), ("snapshot_name", "config-b")];
const LARGE_30: &[(&str, &str)] = &[("vm_name", "pitfall-snapshot-30pct")];
const LARGE_12: &[(&str, &str)] = &[("vm_name", "pitfall-snapshot-12pct")];

/// Every alert the pitfalls scenario must raise, and no other.
const EXPECTED: &[Expected] = &[
    // The 3-day Veeam leftover: over 6 h and 24 h, and over 3 days old.
    fires("VSphereBackupSnapshotLeftover", "warning", VEEAM),
    fires("VSphereBackupSnapshotLeftover", "critical", VEEAM),
    fires("VSphereSnapshotOld", "warning", VEEAM),
    // The 8-hour Rubrik snapshot: the warning only.
    fires("VSphereBackupSnapshotLeftover", "warning", RUBRIK_8H),
    // Snapshots 10 to 30 days old; "pre-upgrade" (2 days) is too young.
    fires("VSphereSnapshotOld", "warning", BEFORE_PATCH),
    fires("VSphereSnapshotOld", "critical", BEFORE_PATCH),
    fires("VSphereSnapshotOld", "warning", AFTER_PATCH),
    fires("VSphereSnapshotOld", "critical", AFTER_PATCH),
    fires("VSphereSnapshotOld", "warning", BASE_INSTALL),
    fires("VSphereSnapshotOld", "critical", BASE_INSTALL),
    fires("VSphereSnapshotOld", "warning", CONFIG_A),
    fires("VSphereSnapshotOld", "critical", CONFIG_A),
    fires("VSphereSnapshotOld", "warning", CONFIG_B),
    fires("VSphereSnapshotOld", "critical", CONFIG_B),
    // 30 % and 12.5 % of the disks.
    fires("VSphereSnapshotLarge", "warning", LARGE_30),
    fires("VSphereSnapshotLarge", "critical", LARGE_30),
    fires("VSphereSnapshotLarge", "warning", LARGE_12),
    // Five snapshots deep; DC0_C0_RP0_VM1's three are not too deep.
    fires(
        "VSphereSnapshotChainDeep",
        "warning",
        &[("vm_name", "pitfall-chain-5")],
    ),
    fires(
        "VSphereConsolidationNeeded",
        "warning",
        &[("vm_name", "DC0_C0_RP0_VM3")],
    ),
    fires(
        "VSphereToolsOutdated",
        "warning",
        &[
            ("vm_name", "DC0_C0_RP0_VM1"),
            ("status", "guestToolsNeedUpgrade"),
        ],
    ),
    fires(
        "VSphereToolsOutdated",
        "warning",
        &[
            ("vm_name", "DC0_C0_RP0_VM4"),
            ("status", "guestToolsTooOld"),
        ],
    ),
    // Powered on with Tools stopped; the suspended DC0_H0_VM1 with Tools stopped is not.
    fires(
        "VSphereToolsNotRunning",
        "warning",
        &[("vm_name", "pitfall-tools-stopped")],
    ),
    fires(
        "VSphereToolsNotInstalled",
        "warning",
        &[
            ("vm_name", "DC0_H0_VM0"),
            ("status", "guestToolsNotInstalled"),
        ],
    ),
    // The host of two backups is slow (45 ms on LocalDS_0), the others take 5 ms.
    fires(
        "VSphereDatastoreLatencyHigh",
        "warning",
        &[("host_name", "DC0_C0_H0"), ("datastore_name", "LocalDS_0")],
    ),
    // DC0_C0_H0 holds two backup snapshots on LocalDS_0 at once, is slow and drops packets.
    fires(
        "VSphereConcurrentBackupsOnHost",
        "warning",
        &[("host_name", "DC0_C0_H0")],
    ),
    fires(
        "VSphereConcurrentBackupsOnDatastore",
        "warning",
        &[("datastore_name", "LocalDS_0")],
    ),
    fires(
        "VSphereHostDiskLatencyHighDuringBackup",
        "warning",
        &[("host_name", "DC0_C0_H0")],
    ),
    fires(
        "VSphereHostNetworkDropsDuringBackup",
        "warning",
        &[("host_name", "DC0_C0_H0"), ("nic", "vmnic0")],
    ),
    // The demo's backup inputs: last backups older than 26 h, and a Veeam notes line and a
    // generic attribute that do not parse.
    fires_aggregated(
        "VSphereBackupMissing",
        "warning",
        &[("vm_name", "DC0_C0_RP0_VM1")],
    ),
    fires_aggregated(
        "VSphereBackupMissing",
        "warning",
        &[("vm_name", "DC0_C0_RP0_VM2")],
    ),
    fires(
        "VSphereBackupLastBackupUnparsable",
        "warning",
        &[("vm_name", "DC0_C0_RP0_VM3"), ("source", "generic")],
    ),
    fires(
        "VSphereBackupLastBackupUnparsable",
        "warning",
        &[("vm_name", "DC0_C0_RP0_VM3"), ("source", "veeam")],
    ),
    // The removal of the Rubrik snapshot failed 20 minutes ago.
    fires(
        "VSphereSnapshotTaskFailed",
        "warning",
        &[
            ("vm_name", "pitfall-backup-8h"),
            ("operation", "remove"),
            ("result", "error"),
        ],
    ),
    // The last removal on the 30 % VM ran 47 minutes (its task's start and completion times).
    fires(
        "VSphereSnapshotRemovalSlow",
        "warning",
        &[
            ("vm_name", "pitfall-snapshot-30pct"),
            ("operation", "remove"),
            ("result", "success"),
        ],
    ),
    // Its disk grown an hour ago, under its 3-hour-old snapshot.
    fires(
        "VSphereDiskChangedWithSnapshots",
        "critical",
        &[("vm_name", "pitfall-snapshot-12pct")],
    ),
    // Tools stopped: crash-consistent only, where its attribute requires application.
    fires(
        "VSphereConsistencyBelowRequired",
        "warning",
        &[
            ("vm_name", "pitfall-tools-stopped"),
            ("level", "crash"),
            ("required_level", "application"),
        ],
    ),
    // The demo's Windows VM without disk.EnableUUID: file-system-consistent only, where its
    // attribute requires application.
    fires(
        "VSphereConsistencyBelowRequired",
        "warning",
        &[
            ("vm_name", "DC0_C0_RP0_VM1"),
            ("level", "filesystem"),
            ("required_level", "application"),
        ],
    ),
    // A NetBackup snapshot of an hour ago while the always-open window runs; the closed one
    // stays quiet.
    fires_aggregated(
        "VSphereBackupDuringBlackout",
        "warning",
        &[("window", "patching")],
    ),
    // LocalDS_0 holds the snapshot files and is 95 % full.
    fires(
        "VSphereDatastoreLowSpace",
        "critical",
        &[("datastore_name", "LocalDS_0")],
    ),
    // ... and fills by 1 GiB a second while the test runs: gone within 24 h at that rate.
    fires(
        "VSphereDatastoreFillingWithSnapshots",
        "warning",
        &[("datastore_name", "LocalDS_0")],
    ),
    // The one powered-on VM without a tag of the policy category (tests/vcsim/tags.go);
    // powered-off VMs and the template have none either and stay quiet.
    fires(
        "VSphereVMNotInBackupPolicy",
        "warning",
        &[("vm_name", "pitfall-chain-5")],
    ),
    // vCenter's own red alarms named like consolidation and snapshot alarms; the red alarm
    // whose name cannot be read, the acknowledged red and the yellow one stay quiet.
    fires(
        "VSphereAlarmRed",
        "critical",
        &[
            ("entity_type", "VirtualMachine"),
            ("entity_name", "DC0_C0_RP0_VM3"),
            ("alarm_name", "Virtual machine Consolidation Needed status"),
        ],
    ),
    fires(
        "VSphereAlarmRed",
        "critical",
        &[
            ("entity_type", "VirtualMachine"),
            ("entity_name", "pitfall-snapshot-30pct"),
            ("alarm_name", "VM Snapshot Size (GB)"),
        ],
    ),
    // The device checks, one VM each (tests/vcsim/pitfalls_devices.go): disks that snapshots
    // skip on powered-on VMs ...
    fires(
        "VSphereDiskNotInBackups",
        "warning",
        &[
            ("vm_name", "pitfall-disk-independent"),
            ("reason", "independent_persistent"),
        ],
    ),
    fires(
        "VSphereDiskNotInBackups",
        "warning",
        &[
            ("vm_name", "pitfall-disk-nonpersistent"),
            ("reason", "independent_nonpersistent"),
        ],
    ),
    fires(
        "VSphereDiskNotInBackups",
        "warning",
        &[
            ("vm_name", "pitfall-disk-physical-rdm"),
            ("reason", "physical_rdm"),
        ],
    ),
    // ... the proxy holding its victim's data disk (the multi-writer pair holds none) ...
    fires(
        "VSphereBackupProxyHoldsForeignDisk",
        "critical",
        &[
            ("vm_name", "pitfall-backup-proxy"),
            (
                "disk_file",
                "[LocalDS_0] pitfall-proxy-victim/pitfall-proxy-victim_1.vmdk",
            ),
            ("owner_vm_name", "pitfall-proxy-victim"),
        ],
    ),
    // ... what blocks snapshots ...
    fires(
        "VSphereVMCannotBeSnapshotted",
        "warning",
        &[
            ("vm_name", "pitfall-cluster-node-a"),
            ("reason", "multi_writer_disk"),
        ],
    ),
    fires(
        "VSphereVMCannotBeSnapshotted",
        "warning",
        &[
            ("vm_name", "pitfall-cluster-node-b"),
            ("reason", "multi_writer_disk"),
        ],
    ),
    fires(
        "VSphereVMCannotBeSnapshotted",
        "warning",
        &[
            ("vm_name", "pitfall-scsi-bus-sharing"),
            ("reason", "scsi_bus_sharing"),
        ],
    ),
    fires(
        "VSphereVMCannotBeSnapshotted",
        "warning",
        &[
            ("vm_name", "pitfall-pci-passthrough"),
            ("reason", "pci_passthrough"),
        ],
    ),
    fires(
        "VSphereVMCannotBeSnapshotted",
        "warning",
        &[
            ("vm_name", "pitfall-fault-tolerance"),
            ("reason", "fault_tolerance"),
        ],
    ),
    // ... a delta without snapshot (DC0_C0_RP0_VM3's is VSphereConsolidationNeeded's), a tree
    // without current, CBT without change id, a question, an inaccessible VM.
    fires(
        "VSphereVMPhantomSnapshot",
        "critical",
        &[("vm_name", "pitfall-phantom-snapshot")],
    ),
    fires(
        "VSphereSnapshotWithoutCurrent",
        "warning",
        &[("vm_name", "pitfall-snapshot-no-current")],
    ),
    fires(
        "VSphereCBTInactive",
        "warning",
        &[("vm_name", "pitfall-cbt-inactive")],
    ),
    fires(
        "VSphereVMQuestionPending",
        "critical",
        &[("vm_name", "pitfall-question-pending")],
    ),
    fires(
        "VSphereVMInaccessible",
        "warning",
        &[
            ("vm_name", "pitfall-inaccessible"),
            ("state", "inaccessible"),
        ],
    ),
    // The vCenter entry with a wrong password.
    fires(
        "VSphereCollectionFailing",
        "critical",
        &[("vcenter", "vc-down")],
    ),
    // The target that never answers.
    fires(
        "VSphereExporterDown",
        "critical",
        &[("job", "vsphere_backup_unreachable")],
    ),
];

/// The demo's healthy VM: no alert may name it.
const HEALTHY_VM: &str = "DC0_C0_RP0_VM5";

const SNAPSHOT_DIGEST: &[&str] = &[
    "VSphereBackupSnapshotLeftover",
    "VSphereSnapshotOld",
    "VSphereSnapshotLarge",
    "VSphereSnapshotChainDeep",
];

fn labels(alert: &Json) -> BTreeMap<String, String> {
    alert["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The labels an expected alert must carry: its object, plus the vCenter and the VM's or
/// host's id from the simulator's facts (`ids`: name → managed object id).
fn wanted_labels(e: &Expected, ids: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut want: BTreeMap<String, String> = e
        .object
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.insert("alertname".into(), e.alert.into());
    want.insert("severity".into(), e.severity.into());
    for (name_label, id_label) in [
        ("vm_name", "vm_id"),
        ("host_name", "host_id"),
        ("owner_vm_name", "owner_vm_id"),
    ] {
        if let Some(name) = want.get(name_label).cloned() {
            let id = ids
                .get(&name)
                .unwrap_or_else(|| panic!("the simulator's facts have no {name_label} {name}"));
            want.insert(id_label.into(), id.clone());
            want.insert("vcenter".into(), "vc01".into());
        }
    }
    if want.contains_key("vm_id") && e.keeps_job {
        want.insert("job".into(), "vsphere_backup".into());
    }
    want
}

fn matches(alert: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| alert.get(k) == Some(v))
        // A label the expectation leaves out must not name a snapshot it did not mean.
        && (want.contains_key("snapshot_name") || !alert.contains_key("snapshot_name"))
}

/// Polls the exporter until `vcenter` is in sync, so Prometheus's first scrape sees it up.
async fn wait_until_synced(served: &crate::Served, vcenter: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = served.get(&format!("/probe?target={vcenter}")).await;
        if status == 200 && value(&parse(&body), "vsphere_up", &[("vcenter", vcenter)]) == 1.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{vcenter} not in sync after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether Prometheus holds any series of `metric`.
async fn exists(prometheus: &Prometheus, metric: &str) -> bool {
    let expr = format!("count({{__name__=\"{metric}\"}})");
    !prometheus
        .query(&expr)
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .is_empty()
}

/// The metrics of `names` that Prometheus does not hold.
async fn missing(prometheus: &Prometheus, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        if !exists(prometheus, name).await {
            out.push(name.clone());
        }
    }
    out
}

/// Checks an entry against [`AWAITING_METRICS`]: listed ⇔ some metric missing. Returns the
/// problem, if any, and whether the entry is to be proven.
async fn bookkeeping(
    prometheus: &Prometheus,
    owner: &str,
    exprs: &[String],
) -> (Option<String>, bool) {
    let mut names: Vec<String> = Vec::new();
    for expr in exprs {
        for name in metric_names(expr) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let absent = missing(prometheus, &names).await;
    let listed = AWAITING_METRICS.contains(&owner);
    match (listed, absent.is_empty()) {
        (true, true) => (
            Some(format!(
                "{owner}: every metric it reads exists now ({}): remove it from AWAITING_METRICS \
                 and prove it (pitfalls scenario, EXPECTED)",
                names.join(", ")
            )),
            false,
        ),
        (true, false) => (None, false),
        (false, false) => (
            Some(format!(
                "{owner}: reads metrics Prometheus does not have: {} (a wrong name, or list it in \
                 AWAITING_METRICS)",
                absent.join(", ")
            )),
            false,
        ),
        (false, true) => (None, true),
    }
}

/// The exporter's backup settings here: the consistency each VM's owners require from the
/// `backup-consistency` attribute, a blackout window that is always open (an hourly start,
/// two hours long) and one that is closed (New Year's Day only).
fn backup_config() -> BackupConfig {
    let window = |name: &str, cron: &str, hours: u64| {
        Window::new(name, cron, Duration::from_secs(hours * 3600), TimeZone::UTC).unwrap()
    };
    BackupConfig {
        consistency_required_attribute: Some("backup-consistency".into()),
        blackout_windows: vec![
            window("patching", "0 * * * *", 2),
            window("new-year", "0 0 1 1 *", 1),
        ],
        ..BackupConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_prometheus_each_pitfall_fires_its_alert_for_its_object_and_every_panel_query_returns_data()
 {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let vm_ids: BTreeMap<String, String> = sim
        .facts
        .vms
        .iter()
        .map(|v| (v.name.clone(), v.id.clone()))
        .chain(
            sim.facts
                .hosts
                .iter()
                .map(|h| (h.name.clone(), h.id.clone())),
        )
        .collect();
    let mut down = sim.vcenter("vc-down");
    down.password = Secret::new("not-the-password");
    let mut config = config_for(vec![sim.vcenter("vc01"), down]);
    config.backup = backup_config();
    config.tags = TagsConfig {
        backup_policy_categories: vec!["Backup Policy".into()],
        ..TagsConfig::default()
    };
    let served = serve_config(config).await;
    wait_until_synced(&served, "vc01").await;
    // A target that accepts connections and never answers: its scrapes time out, up == 0.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Prometheus scrapes the exporter through a proxy that keeps what it asked and was sent.
    let proxy = RecordingProxy::start(served.base.trim_start_matches("http://").to_string()).await;
    let exporter = proxy.address.clone();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [RULES_DIR/vsphere_backup_alerts.yml]
scrape_configs:
  - job_name: vsphere_backup
    static_configs: [{{targets: ["{exporter}"]}}]
  - job_name: vsphere_backup_unreachable
    static_configs: [{{targets: ["{}"]}}]
"#,
        silent.local_addr().unwrap()
    );
    let rule_file = rules_with_short_for(&repo(RULES), "1s");
    let prometheus = Prometheus::start(&config, &[("vsphere_backup_alerts.yml", rule_file)]).await;

    // LocalDS_0 fills while Prometheus watches (files written by others, as the simulator
    // cannot grow a snapshot on its own): 1 GiB a second, from its 5 % free.
    let datastore = sim
        .facts
        .datastores
        .iter()
        .find(|d| d.name == "LocalDS_0")
        .expect("LocalDS_0 in the facts");
    let start_free = datastore.free_bytes;
    let (base, client) = sim.http();
    let filling = tokio::spawn(async move {
        for second in 1.. {
            let free = start_free - second * (1 << 30);
            if free <= 0 {
                break;
            }
            Vcsim::control_with(
                &base,
                &client,
                json!({"op": "set_datastore_free", "datastore": "LocalDS_0", "free_bytes": free}),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let alerts = wait_for_expected_alerts(&prometheus, &vm_ids).await;
    filling.abort();
    let mut problems = Vec::new();
    problems.extend(rules_evaluate_without_error(&prometheus).await);
    problems.extend(exactly_the_expected_alerts(&alerts, &vm_ids));
    problems.extend(alert_bookkeeping(&prometheus).await);
    problems.extend(dashboard_queries_return_data(&prometheus).await);
    problems.extend(descriptions_are_complete(&alerts));
    problems.extend(prometheus_read_a_multi_member_gzip_body(&proxy));
    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}\n\nactive alerts:\n{}",
        problems.len(),
        problems.join("\n- "),
        summary(&alerts)
    );
    digest_renders_the_real_snapshot_alerts(&alerts);
}

/// Prometheus asked for gzip and was sent the page as several gzip members (the cached chunks,
/// see `collector::shards`), the VMs' series not in the first: the alerts above fire from those
/// series, so Go's reader read every member as one body.
fn prometheus_read_a_multi_member_gzip_body(proxy: &RecordingProxy) -> Vec<String> {
    let scrapes: Vec<_> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.request_head.starts_with("GET /metrics"))
        .collect();
    let Some(scrape) = scrapes.last() else {
        return vec!["no scrape of Prometheus passed the recording proxy".into()];
    };
    let mut problems = Vec::new();
    if !scrape
        .request_header("accept-encoding")
        .is_some_and(|v| v.contains("gzip"))
    {
        problems.push(format!(
            "Prometheus did not ask for gzip:\n{}",
            scrape.request_head
        ));
    }
    if scrape.response_header("content-encoding").as_deref() != Some("gzip") {
        problems.push(format!(
            "the scrape was not gzipped:\n{}",
            scrape.response_head
        ));
        return problems;
    }
    let members = scrape.gzip_members();
    let vm_info_after_the_first = members
        .iter()
        .skip(1)
        .any(|m| m.contains("vsphere_vm_info{"));
    if members.len() < 2 || !vm_info_after_the_first {
        problems.push(format!(
            "the gzip body has {} member(s), vsphere_vm_info after the first: {vm_info_after_the_first}",
            members.len()
        ));
    }
    problems
}

/// Polls /api/v1/alerts until every expected alert fires (or 120 s pass), then waits two more
/// evaluations so that anything extra would show too, and returns the active alerts.
async fn wait_for_expected_alerts(
    prometheus: &Prometheus,
    vm_ids: &BTreeMap<String, String>,
) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let wanted: Vec<_> = EXPECTED.iter().map(|e| wanted_labels(e, vm_ids)).collect();
    loop {
        let alerts = prometheus.alerts().await;
        let firing: Vec<_> = alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(labels)
            .collect();
        let all = wanted.iter().all(|w| firing.iter().any(|a| matches(a, w)));
        if all {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return prometheus.alerts().await;
        }
        if Instant::now() > deadline {
            let absent: Vec<_> = wanted
                .iter()
                .filter(|w| !firing.iter().any(|a| matches(a, w)))
                .collect();
            panic!(
                "after 120 s these alerts do not fire: {absent:#?}\nactive:\n{}\nPrometheus log:\n{}",
                summary(&alerts),
                prometheus.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn summary(alerts: &[Json]) -> String {
    alerts
        .iter()
        .map(|a| format!("  {} {:?}", a["state"], labels(a)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every rule loaded, healthy, with no evaluation error (a many-to-many match, a bad template).
async fn rules_evaluate_without_error(prometheus: &Prometheus) -> Vec<String> {
    let groups = prometheus.rules().await;
    let loaded: usize = groups
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    let mut problems = Vec::new();
    if loaded != rules().len() {
        problems.push(format!(
            "Prometheus loaded {loaded} rules of {}",
            rules().len()
        ));
    }
    for group in &groups {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if rule["health"] != "ok" {
                problems.push(format!(
                    "rule {} is {}: {}",
                    rule["name"], rule["health"], rule["lastError"]
                ));
            }
        }
    }
    problems
}

/// Each expected alert matched by exactly one active alert, in state firing; each active
/// alert expected; nothing about the healthy VM.
fn exactly_the_expected_alerts(alerts: &[Json], vm_ids: &BTreeMap<String, String>) -> Vec<String> {
    let active: Vec<_> = alerts
        .iter()
        .map(|a| (labels(a), a["state"].clone()))
        .collect();
    let wanted: Vec<_> = EXPECTED.iter().map(|e| wanted_labels(e, vm_ids)).collect();
    let mut problems = Vec::new();
    for w in &wanted {
        let hits: Vec<_> = active.iter().filter(|(a, _)| matches(a, w)).collect();
        match hits.as_slice() {
            [(_, state)] if state == "firing" => {}
            [(_, state)] => problems.push(format!("{w:?} is {state}, not firing")),
            [] => problems.push(format!("{w:?} is not active")),
            many => problems.push(format!("{w:?} matches {} active alerts", many.len())),
        }
    }
    for (a, state) in &active {
        if !wanted.iter().any(|w| matches(a, w)) {
            problems.push(format!("unexpected {state} alert {a:?}"));
        }
        if a.get("vm_name").map(String::as_str) == Some(HEALTHY_VM) {
            problems.push(format!("an alert names the healthy VM {HEALTHY_VM}: {a:?}"));
        }
    }
    problems
}

/// Every alert of the rule file is expected, awaiting its metrics, or not provoked; the
/// lists are right about which metrics exist.
async fn alert_bookkeeping(prometheus: &Prometheus) -> Vec<String> {
    let all = rules();
    let mut problems = Vec::new();
    for listed in AWAITING_METRICS.iter().filter(|n| n.starts_with("VSphere")) {
        if !all.iter().any(|r| r.alert == *listed) {
            problems.push(format!("AWAITING_METRICS names {listed}: no such alert"));
        }
    }
    for name in super::alert_names() {
        let exprs: Vec<String> = all
            .iter()
            .filter(|r| r.alert == name)
            .map(|r| r.expr.clone())
            .collect();
        let (problem, provable) = bookkeeping(prometheus, &name, &exprs).await;
        problems.extend(problem);
        let expected = EXPECTED.iter().any(|e| e.alert == name);
        let not_provoked = NOT_PROVOKED.iter().any(|(n, _)| *n == name);
        if provable && !expected && !not_provoked {
            problems.push(format!(
                "{name}: its metrics exist but the test neither expects it (EXPECTED) nor says \
                 why it cannot provoke it (NOT_PROVOKED)"
            ));
        }
        if !provable && (expected || not_provoked) && !AWAITING_METRICS.contains(&name.as_str()) {
            problems.push(format!("{name}: expected, but its metrics are missing"));
        }
    }
    problems
}

/// The label sets of a query's result, metric name left out: what Grafana's merge
/// transformation joins a table's rows on.
fn label_sets(result: &[Json]) -> BTreeSet<BTreeMap<String, String>> {
    result
        .iter()
        .map(|series| {
            let mut labels = labels(&json!({"labels": series["metric"]}));
            labels.remove("__name__");
            labels
        })
        .collect()
}

/// Every dashboard query runs; each owner (panel, variable, annotation) not awaiting metrics
/// returns data for every query, and the queries of one table return the same rows.
async fn dashboard_queries_return_data(prometheus: &Prometheus) -> Vec<String> {
    let mut problems = Vec::new();
    let mut owners: BTreeMap<String, Vec<(String, bool, bool)>> = BTreeMap::new();
    for (_, d) in dashboards() {
        for q in queries(&d) {
            owners
                .entry(q.owner.clone())
                .or_default()
                .push((q.expr.clone(), q.instant, q.table));
        }
    }
    for listed in AWAITING_METRICS.iter().filter(|n| n.contains(": ")) {
        if !owners.contains_key(*listed) {
            problems.push(format!(
                "AWAITING_METRICS names {listed:?}: no such panel or query"
            ));
        }
    }
    for (owner, list) in &owners {
        let exprs: Vec<String> = list.iter().map(|(e, _, _)| e.clone()).collect();
        let (problem, provable) = bookkeeping(prometheus, owner, &exprs).await;
        problems.extend(problem);
        let mut rows = Vec::new();
        for (expr, instant, table) in list {
            let expr = substitute_variables(expr);
            let result = if *instant {
                prometheus.query(&expr).await
            } else {
                prometheus.query_range(&expr, 60).await
            };
            match result {
                Err(e) => problems.push(format!("{owner}: {expr}: {e}")),
                Ok(r) if r.is_empty() && provable => {
                    problems.push(format!("{owner}: no data from {expr}"))
                }
                Ok(r) if *table => rows.push((expr, label_sets(&r))),
                Ok(_) => {}
            }
        }
        if provable && let Some((first_expr, first)) = rows.first() {
            for (expr, set) in &rows[1..] {
                if set != first {
                    problems.push(format!(
                        "{owner}: the table's queries return different rows ({} vs {}): \
                         {first_expr} / {expr}",
                        first.len(),
                        set.len()
                    ));
                }
            }
        }
    }
    problems
}

/// Templates that found nothing leave traces: "<no value>", an unknown size, an empty age.
fn descriptions_are_complete(alerts: &[Json]) -> Vec<String> {
    let mut problems = Vec::new();
    for alert in alerts {
        let name = alert["labels"]["alertname"].as_str().unwrap_or("?");
        for (key, text) in alert["annotations"].as_object().into_iter().flatten() {
            let text = text.as_str().unwrap_or("");
            if text.is_empty() || text.contains("<no value>") || text.contains("unknown") {
                problems.push(format!("{name}: annotation {key} = {text:?}"));
            }
        }
    }
    problems
}

/// The digest template over the real snapshot alerts of vc01: one line each with its VM,
/// snapshot, age and size, as Prometheus computed them.
fn digest_renders_the_real_snapshot_alerts(alerts: &[Json]) {
    let digest: Vec<&Json> = alerts
        .iter()
        .filter(|a| {
            a["state"] == "firing"
                && SNAPSHOT_DIGEST.contains(&a["labels"]["alertname"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(digest.len() >= 10, "only {} snapshot alerts", digest.len());
    let data = json!({
        "receiver": "vsphere-snapshot-digest",
        "status": "firing",
        "externalURL": "http://alertmanager.invalid",
        "groupLabels": {"vcenter": "vc01"},
        "commonLabels": {"vcenter": "vc01"},
        "commonAnnotations": {},
        "alerts": digest.iter().map(|a| json!({
            "status": "firing",
            "labels": a["labels"],
            "annotations": a["annotations"],
            "startsAt": a["activeAt"],
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "",
        })).collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    std::fs::write(&path, data.to_string()).unwrap();
    let listed: Vec<_> = digest
        .iter()
        .map(|a| {
            let age = a["annotations"]["age"].as_str().unwrap_or("").to_string();
            let size = a["annotations"]["size"].as_str().unwrap_or("").to_string();
            assert!(!age.is_empty() && size.ends_with('B'), "{a}");
            (
                a["labels"]["vm_name"].as_str().unwrap().to_string(),
                a["labels"]["snapshot_name"].as_str().map(str::to_string),
                age,
                size,
            )
        })
        .collect();
    let text = render("vsphere.snapshot.digest.text", "text", &path);
    assert!(
        text.contains(&format!("vCenter vc01: {}", digest.len())),
        "{text}"
    );
    assert_digest_lists(&text, &listed, str::to_string);
}
