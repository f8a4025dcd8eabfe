//! The whole exporter against govmomi's vCenter simulator: its `/metrics` compared value by
//! value with the facts the simulator program wrote about the scenario it built.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::serve;
use crate::support::{Sample, find, parse, value};
use crate::vcsim::{Facts, Vcsim, VmFacts};

/// The default backup patterns, written out again here so the test does not trust the code
/// under test for what it expects.
pub(crate) fn expected_product(snapshot_name: &str) -> &'static str {
    let table = [
        ("veeam", "(?i)VEEAM BACKUP TEMPORARY SNAPSHOT"),
        ("vcb", "(?i)_VCB-BACKUP_"),
        ("netbackup", "(?i)NBU_SNAPSHOT"),
        ("commvault", "(?i)GX_BACKUP"),
        ("rubrik", "(?i)RUBRIK"),
    ];
    table
        .iter()
        .find(|(_, re)| Regex::new(re).unwrap().is_match(snapshot_name))
        .map_or("", |(p, _)| p)
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Every metric of every VM of the facts, checked against the scrape.
fn assert_metrics_equal_facts(samples: &[Sample], facts: &Facts) {
    assert_eq!(
        value(samples, "vsphere_up", &[("vcenter", "vc01")]),
        1.0,
        "the collection failed"
    );
    let infos = find(samples, "vsphere_vm_info", &[]);
    assert_eq!(infos.len(), facts.vms.len(), "one vsphere_vm_info per VM");
    let snapshot_series = find(samples, "vsphere_vm_snapshot_size_bytes", &[]).len();
    let snapshots: usize = facts.vms.iter().map(|v| v.snapshots.len()).sum();
    assert_eq!(snapshot_series, snapshots, "one size series per snapshot");
    for vm in &facts.vms {
        assert_vm(samples, vm);
    }
}

fn assert_vm(samples: &[Sample], vm: &VmFacts) {
    let id = [
        ("vcenter", "vc01"),
        ("vm_id", vm.id.as_str()),
        ("vm_name", vm.name.as_str()),
    ];
    let template = if vm.template { "true" } else { "false" };
    let info = [
        ("vm_id", vm.id.as_str()),
        ("vm_name", vm.name.as_str()),
        ("host_name", vm.host_name.as_str()),
        ("cluster_name", vm.cluster_name.as_str()),
        ("datacenter_name", vm.datacenter_name.as_str()),
        ("guest_id", vm.guest_id.as_str()),
        ("power_state", vm.power_state.as_str()),
        ("template", template),
    ];
    assert_eq!(value(samples, "vsphere_vm_info", &info), 1.0);
    let per_vm = |name: &str| value(samples, name, &id);
    // Devices are read only for VMs with snapshots (the capacity is what their size is
    // compared with); other VMs have no capacity series.
    let capacity = find(samples, "vsphere_vm_disk_capacity_bytes", &id);
    if vm.snapshots.is_empty() {
        assert!(capacity.is_empty(), "{}: {capacity:?}", vm.id);
    } else {
        assert_eq!(
            per_vm("vsphere_vm_disk_capacity_bytes"),
            vm.disk_capacity_bytes as f64,
            "{}",
            vm.id
        );
    }
    assert_eq!(
        per_vm("vsphere_vm_consolidation_needed"),
        bool_value(vm.consolidation_needed),
        "{}",
        vm.id
    );
    assert_eq!(
        per_vm("vsphere_vm_snapshots"),
        vm.snapshot_count as f64,
        "{}",
        vm.id
    );
    assert_eq!(
        per_vm("vsphere_vm_snapshot_chain_depth"),
        vm.snapshot_chain_depth as f64,
        "{}",
        vm.id
    );
    assert_eq!(
        per_vm("vsphere_vm_snapshot_total_size_bytes"),
        vm.snapshot_total_size_bytes as f64,
        "{}",
        vm.id
    );
    let status = find(samples, "vsphere_vm_tools_version_status", &id);
    if vm.tools_version_status2.is_empty() {
        assert!(status.is_empty(), "{}: {status:?}", vm.id);
    } else {
        assert_eq!(status.len(), 1, "{}", vm.id);
        assert_eq!(status[0].labels["status"], vm.tools_version_status2);
        assert_eq!(status[0].value, 1.0);
    }
    let running = find(samples, "vsphere_vm_tools_running", &id);
    if vm.tools_running_status.is_empty() {
        assert!(running.is_empty(), "{}", vm.id);
    } else {
        let up = ["guestToolsRunning", "guestToolsExecutingScripts"]
            .contains(&vm.tools_running_status.as_str());
        assert_eq!(running.len(), 1, "{}", vm.id);
        assert_eq!(running[0].value, bool_value(up), "{}", vm.id);
    }
    for snap in &vm.snapshots {
        let labels = [
            ("vcenter", "vc01"),
            ("vm_id", vm.id.as_str()),
            ("vm_name", vm.name.as_str()),
            ("snapshot_id", snap.id.as_str()),
            ("snapshot_name", snap.name.as_str()),
            ("backup_product", expected_product(&snap.name)),
        ];
        let created = value(
            samples,
            "vsphere_vm_snapshot_create_timestamp_seconds",
            &labels,
        );
        assert!(
            (created - snap.create_time_seconds).abs() < 0.001,
            "{} {}: created {created} != {}",
            vm.id,
            snap.id,
            snap.create_time_seconds
        );
        assert_eq!(
            value(samples, "vsphere_vm_snapshot_size_bytes", &labels),
            snap.size_bytes as f64,
            "{} {}",
            vm.id,
            snap.id
        );
        assert_eq!(
            value(samples, "vsphere_vm_snapshot_quiesced", &labels),
            bool_value(snap.quiesced),
            "{} {}",
            vm.id,
            snap.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_equal_the_facts_of_a_1000_vm_scenario_with_nested_and_branched_snapshots() {
    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "1000", "-snapshot-vms", "150"]);
    let facts = &sim.facts;
    let snapshots: usize = facts.vms.iter().map(|v| v.snapshots.len()).sum();
    assert!(facts.vms.len() >= 1000, "{} VMs", facts.vms.len());
    assert!(snapshots >= 300, "{snapshots} snapshots");
    assert!(
        facts.vms.iter().any(|v| v.snapshot_chain_depth >= 3),
        "the scenario has nested chains"
    );
    let branched = facts.vms.iter().any(|v| {
        v.snapshots
            .iter()
            .any(|s| v.snapshots.iter().filter(|c| c.parent_id == s.id).count() > 1)
    });
    assert!(branched, "the scenario has branched trees");

    let served = serve(vec![sim.vcenter("vc01")]).await;
    let samples = parse(&served.scrape("/metrics").await);
    assert_metrics_equal_facts(&samples, facts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_metrics_equal_its_facts() {
    let sim = Vcsim::start(&["-scenario", "demo"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let samples = parse(&served.scrape("/probe?target=vc01").await);
    assert_metrics_equal_facts(&samples, &sim.facts);
    // The demo promises a leftover Veeam snapshot about three days old.
    let veeam = find(
        &samples,
        "vsphere_vm_snapshot_create_timestamp_seconds",
        &[("backup_product", "veeam")],
    );
    assert!(!veeam.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_read_the_mirror_so_concurrent_scrapes_cost_one_retrieval_and_one_login() {
    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "1000", "-snapshot-vms", "150"]);
    // The host counters read the PerformanceManager's catalogue with a RetrievePropertiesEx of
    // their own: this test counts the mirror's calls only.
    let mut config = crate::config_for(vec![sim.vcenter("vc01")]);
    config.disabled_collectors.insert("hostio".into());
    // The event follower has a PropertyCollector of its own; it is not what this test counts.
    config.disabled_collectors.insert("snapshot_tasks".into());
    let served = Arc::new(crate::serve_config(config).await);
    let (a, b) = tokio::join!(
        served.scrape("/metrics"),
        served.scrape("/probe?target=vc01")
    );
    assert_eq!(value(&parse(&a), "vsphere_up", &[("vcenter", "vc01")]), 1.0);
    assert_eq!(value(&parse(&b), "vsphere_up", &[("vcenter", "vc01")]), 1.0);
    for _ in 0..3 {
        served.scrape("/metrics").await;
    }
    let stats = sim.stats().await;
    assert_eq!(stats.count("Login"), 1, "{stats:?}");
    assert_eq!(stats.count("CreatePropertyCollector"), 1, "{stats:?}");
    // One RetrievePropertiesEx: asking a few VMs whether the keyed path of disk.EnableUUID is
    // read (the simulator refuses it); the inventory itself comes through WaitForUpdatesEx.
    assert_eq!(stats.count("RetrievePropertiesEx"), 1, "{stats:?}");
    assert_eq!(served.target().client().logins(), 1);
    let mirror = served.target().mirror().unwrap();
    assert_eq!(mirror.counters().full_retrievals(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_gives_vsphere_up_zero_with_http_200() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let mut vc = sim.vcenter("vc01");
    vc.password = vsphere_backup_exporter::config::Secret::new("not-the-password");
    let served = serve(vec![vc]).await;
    let (status, body) = served.get("/metrics").await;
    assert_eq!(status, 200);
    let samples = parse(&body);
    assert_eq!(value(&samples, "vsphere_up", &[("vcenter", "vc01")]), 0.0);
    assert!(find(&samples, "vsphere_vm_info", &[]).is_empty());
    assert!(!body.contains("not-the-password"));
    assert_eq!(sim.stats().await.count("Login"), 1);
    // The mirror retries (0.5 s, 1 s, 2 s, 4 s …), but no login is tried again within the
    // retry interval (default 10 minutes): vCenter would lock the account after a few.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let samples = parse(&served.scrape("/metrics").await);
    assert_eq!(sim.stats().await.count("Login"), 1);
    let attempts = |result| {
        value(
            &samples,
            "vsphere_login_attempts_total",
            &[("vcenter", "vc01"), ("result", result)],
        )
    };
    assert_eq!(attempts("invalid_login"), 1.0);
    assert_eq!(attempts("success"), 0.0);
    let resyncs = value(&samples, "vsphere_resyncs_total", &[("reason", "login")]);
    assert!(
        resyncs >= 3.0,
        "the mirror kept retrying without logging in: {resyncs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_vcenter_is_up_zero_then_recovers_once_it_is_back() {
    // The vCenter's address, held by the test until the simulator takes the socket over: a
    // listener that never accepts is a vCenter that does not answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // This test is about recovery, not certificates: the simulator is not up to show one yet.
    let mut vc = crate::support::vcenter("vc01", &format!("https://{addr}/sdk"), "user", "pass");
    vc.tls.insecure_skip_verify = true;
    vc.request_timeout = Duration::from_secs(2);

    let served = serve(vec![vc]).await;
    let down = parse(&served.scrape("/metrics").await);
    assert_eq!(value(&down, "vsphere_up", &[("vcenter", "vc01")]), 0.0);

    let sim = Vcsim::start_on_listener(listener, &["-scenario", "golden"]);
    // The mirror retries on its own (backing off up to 30 s); scrapes see it come back.
    let up = wait_for_up(&served, 1.0, Duration::from_secs(90)).await;
    assert_metrics_equal_facts(&up, &sim.facts);
    drop(sim);

    // And down again when it goes away.
    let again = wait_for_up(&served, 0.0, Duration::from_secs(90)).await;
    assert!(find(&again, "vsphere_vm_info", &[]).is_empty());
}

/// Scrapes until `vsphere_up` has the wanted value; the samples of that scrape.
async fn wait_for_up(served: &crate::Served, want: f64, limit: Duration) -> Vec<Sample> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let samples = parse(&served.scrape("/metrics").await);
        if value(&samples, "vsphere_up", &[("vcenter", "vc01")]) == want {
            return samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "vsphere_up never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_equal_the_facts_when_every_update_answer_is_truncated() {
    // At most 7 object updates per WaitForUpdatesEx answer: the initial state of ~260 objects
    // arrives in dozens of truncated answers, the mirror must keep asking until it is complete.
    let sim = Vcsim::start(&[
        "-scenario",
        "scale",
        "-vms",
        "200",
        "-snapshot-vms",
        "40",
        "-max-object-updates",
        "7",
    ]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let samples = parse(&served.scrape("/metrics").await);
    assert_metrics_equal_facts(&samples, &sim.facts);
    let waits = sim.stats().await.count("WaitForUpdatesEx");
    assert!(
        waits >= 200 / 7,
        "{waits} WaitForUpdatesEx calls: answers were not truncated"
    );
}
