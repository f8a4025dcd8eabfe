//! Host I/O counters against the simulator's PerformanceManager (tests/vcsim/perf.go), whose
//! counter ids are shifted and one counter dropped: ids resolved by name, requests within the
//! vCenter's metric limit and as few as it allows, only connected hosts asked, and every value
//! the reduction of the raw samples the simulator says it sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use vsphere_backup_exporter::vsphere::Client;
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::perf::HOST_COUNTERS;
use vsphere_backup_exporter::vsphere::perf_poll::{PollOptions, Poller};

use crate::support::{find, parse, value};
use crate::vcsim::{HostFacts, ServedSeries, Vcsim};

/// The hosts scenario as a vCenter with other counter ids, without net.droppedRx.summation, and
/// a metric limit of 10 per QueryPerf.
pub fn hosts_vcsim() -> Vcsim {
    Vcsim::start(&[
        "-scenario",
        "hosts",
        "-perf-counter-shift",
        "1000",
        "-perf-drop-counter",
        "net.droppedRx.summation",
        "-perf-max-query-metrics",
        "10",
    ])
}

/// How a window of samples becomes one value, written out again here rather than taken from the
/// code under test: rates are averaged, latencies take the worst sample, drops are summed.
pub fn expected_reduction(counter: &str, samples: &[[i64; 2]]) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter(|s| s[1] >= 0)
        .map(|s| s[1] as f64)
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(if counter.contains("Latency") {
        values.iter().cloned().fold(f64::MIN, f64::max)
    } else if counter.ends_with(".summation") {
        values.iter().sum()
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    })
}

pub fn connected(hosts: &[HostFacts]) -> Vec<&HostFacts> {
    hosts
        .iter()
        .filter(|h| h.connection_state == "connected")
        .collect()
}

fn served_by_key(served: &[ServedSeries]) -> BTreeMap<(String, String, String), &ServedSeries> {
    served
        .iter()
        .map(|s| ((s.entity.clone(), s.counter.clone(), s.instance.clone()), s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_resolves_shifted_ids_stays_under_the_limit_and_reduces_the_raw_samples() {
    let sim = hosts_vcsim();
    let perf = sim.facts.perf.clone().unwrap();
    assert_eq!(perf.max_query_metrics, 10);
    let client = Arc::new(Client::new(&(&sim.vcenter("vc01")).into()).unwrap());
    let hosts: Vec<MoRef> = connected(&sim.facts.hosts)
        .iter()
        .map(|h| MoRef::new("HostSystem", &h.id))
        .collect();
    assert_eq!(hosts.len(), 4, "three cluster hosts and a standalone one");
    let mut poller = Poller::default();
    let (io, report) = poller
        .cycle(&client, &hosts, &PollOptions::default())
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Ids by name: each resolved counter carries the simulator's shifted id.
    for (i, counter) in HOST_COUNTERS.iter().enumerate() {
        let served_id = perf.counter_ids.get(counter.name);
        assert_eq!(
            io.counters[i].as_ref().map(|c| c.key),
            served_id.copied(),
            "{}",
            counter.name
        );
    }
    assert!(
        io.counters
            .iter()
            .flatten()
            .all(|c| c.key > perf.counter_shift)
    );
    assert_eq!(
        HOST_COUNTERS
            .iter()
            .zip(&io.counters)
            .filter(|(_, c)| c.is_none())
            .map(|(h, _)| h.name)
            .collect::<Vec<_>>(),
        ["net.droppedRx.summation"]
    );

    // Batches: none over the limit, and as few as the limit allows.
    let stats = sim.stats().await.perf;
    assert_eq!(stats.limit, 10);
    assert_eq!(stats.over_limit, 0);
    assert!(stats.max_metrics_per_request <= 10, "{stats:?}");
    assert_eq!(stats.unconnected_host_specs, 0, "only connected hosts");
    assert_eq!(stats.query_perf_requests as usize, report.query_requests);
    assert_eq!(stats.query_perf_metrics as usize, report.metrics);
    assert_eq!(report.query_requests, report.metrics.div_ceil(10));
    assert_eq!(report.discovery_requests, 4);

    // Values: each the reduction of what the simulator sent, for every metric of every host.
    let served = sim.served().await;
    let by_key = served_by_key(&served);
    let mut checked = 0;
    for host in connected(&sim.facts.hosts) {
        let samples = &io.hosts[&host.id];
        let newest = served
            .iter()
            .filter(|s| s.entity == host.id)
            .flat_map(|s| s.samples.iter().map(|x| x[0]))
            .max();
        assert_eq!(samples.newest_sample, newest, "{}", host.name);
        let mut expected_instances = 0;
        for (i, counter) in HOST_COUNTERS.iter().enumerate() {
            if counter.name == "net.droppedRx.summation" {
                continue;
            }
            let instances: Vec<String> = match counter.name.split('.').next() {
                Some("datastore") => host.datastores.iter().map(|d| d.instance.clone()).collect(),
                Some("net") => host.nics.clone(),
                Some("storageAdapter") => host.storage_adapters.clone(),
                _ => vec![String::new()],
            };
            expected_instances += instances.len();
            for instance in instances {
                let raw = by_key
                    .get(&(host.id.clone(), counter.name.to_string(), instance.clone()))
                    .unwrap_or_else(|| {
                        panic!("{} {} {instance:?} not served", host.name, counter.name)
                    });
                let got = samples
                    .values
                    .iter()
                    .find(|(j, inst, _)| *j == i && *inst == instance)
                    .map(|(_, _, v)| *v);
                assert_eq!(
                    got,
                    expected_reduction(counter.name, &raw.samples),
                    "{} {} {instance:?}: raw {:?}",
                    host.name,
                    counter.name,
                    raw.samples
                );
                checked += 1;
            }
        }
        assert_eq!(samples.values.len(), expected_instances, "{}", host.name);
    }
    assert!(checked >= 4 * 20, "{checked} values checked");

    // A second cycle asks only for newer samples: no discovery, and a host whose newest sample
    // has not moved keeps its values.
    let (again, report) = poller
        .cycle(&client, &hosts, &PollOptions::default())
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.discovery_requests, 0);
    for host in &hosts {
        let (before, after) = (&io.hosts[&host.value], &again.hosts[&host.value]);
        assert!(after.newest_sample >= before.newest_sample);
        if after.newest_sample == before.newest_sample {
            assert_eq!(after, before);
        }
    }
}

/// The base unit of each counter's metric, written out again: KBps → bytes/s, ms → s,
/// hundredths of a percent → ratio, counts as they are.
fn expected_base(counter: &str, raw: f64) -> f64 {
    if counter.starts_with("cpu.usage") {
        raw / 10_000.0
    } else if counter.contains("Latency") {
        raw / 1000.0
    } else if counter.contains(".dropped") {
        raw
    } else {
        raw * 1024.0
    }
}

/// The metric and extra labels the README gives each counter.
fn metric_for(counter: &str) -> (&'static str, Option<(&'static str, &'static str)>) {
    match counter {
        "cpu.usage.average" => ("vsphere_host_cpu_usage_ratio", None),
        "disk.read.average" => ("vsphere_host_disk_read_bytes_per_second", None),
        "disk.write.average" => ("vsphere_host_disk_write_bytes_per_second", None),
        "disk.maxTotalLatency.latest" => ("vsphere_host_disk_max_latency_seconds", None),
        "datastore.totalReadLatency.average" => {
            ("vsphere_host_datastore_read_latency_seconds", None)
        }
        "datastore.totalWriteLatency.average" => {
            ("vsphere_host_datastore_write_latency_seconds", None)
        }
        "datastore.read.average" => ("vsphere_host_datastore_read_bytes_per_second", None),
        "datastore.write.average" => ("vsphere_host_datastore_write_bytes_per_second", None),
        "net.bytesRx.average" => ("vsphere_host_network_receive_bytes_per_second", None),
        "net.bytesTx.average" => ("vsphere_host_network_transmit_bytes_per_second", None),
        "net.droppedRx.summation" => (
            "vsphere_host_network_dropped_packets",
            Some(("direction", "receive")),
        ),
        "net.droppedTx.summation" => (
            "vsphere_host_network_dropped_packets",
            Some(("direction", "transmit")),
        ),
        "storageAdapter.totalReadLatency.average" => {
            ("vsphere_host_storage_adapter_read_latency_seconds", None)
        }
        "storageAdapter.totalWriteLatency.average" => {
            ("vsphere_host_storage_adapter_write_latency_seconds", None)
        }
        "storageAdapter.read.average" => {
            ("vsphere_host_storage_adapter_read_bytes_per_second", None)
        }
        "storageAdapter.write.average" => {
            ("vsphere_host_storage_adapter_write_bytes_per_second", None)
        }
        other => panic!("no metric for {other}"),
    }
}

/// The exporter for one simulator with a perf interval long enough that one cycle is all a test
/// sees.
async fn serve_one_cycle(sim: &Vcsim) -> crate::Served {
    let mut vc = sim.vcenter("vc01");
    vc.perf.interval = std::time::Duration::from_secs(3600);
    crate::serve(vec![vc]).await
}

/// True once every connected host of the facts has its newest sample time on the page.
fn every_connected_host_sampled(page: &str, hosts: &[HostFacts]) -> bool {
    let samples = parse(page);
    connected(hosts).iter().all(|h| {
        !find(
            &samples,
            "vsphere_host_perf_sample_timestamp_seconds",
            &[("host_id", h.id.as_str())],
        )
        .is_empty()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connected_host_has_every_metric_in_base_units_equal_to_the_raw_samples() {
    let sim = hosts_vcsim();
    let served = serve_one_cycle(&sim).await;
    let hosts = &sim.facts.hosts;
    let page = served
        .scrape_until("/metrics", std::time::Duration::from_secs(60), |p| {
            every_connected_host_sampled(p, hosts)
        })
        .await;
    let samples = parse(&page);
    let served_raw = sim.served().await;
    let by_key = served_by_key(&served_raw);
    let perf = sim.facts.perf.clone().unwrap();
    let mut checked = 0;
    for host in connected(hosts) {
        let labels = [
            ("vcenter", "vc01"),
            ("host_id", host.id.as_str()),
            ("host_name", host.name.as_str()),
            ("cluster_name", host.cluster_name.as_str()),
        ];
        let newest = served_raw
            .iter()
            .filter(|s| s.entity == host.id)
            .flat_map(|s| s.samples.iter().map(|x| x[0]))
            .max()
            .unwrap();
        assert_eq!(
            value(
                &samples,
                "vsphere_host_perf_sample_timestamp_seconds",
                &labels
            ),
            newest as f64
        );
        for counter in HOST_COUNTERS {
            let (metric, extra) = metric_for(counter.name);
            let instances: Vec<(String, Vec<(&str, String)>)> = match counter.name.split('.').next()
            {
                Some("datastore") => host
                    .datastores
                    .iter()
                    .map(|d| {
                        (
                            d.instance.clone(),
                            vec![
                                ("datastore_id", d.id.clone()),
                                ("datastore_name", d.name.clone()),
                            ],
                        )
                    })
                    .collect(),
                Some("net") => host
                    .nics
                    .iter()
                    .map(|n| (n.clone(), vec![("nic", n.clone())]))
                    .collect(),
                Some("storageAdapter") => host
                    .storage_adapters
                    .iter()
                    .map(|a| (a.clone(), vec![("adapter", a.clone())]))
                    .collect(),
                _ => vec![(String::new(), Vec::new())],
            };
            for (instance, extra_labels) in instances {
                let mut want: Vec<(&str, &str)> = labels.to_vec();
                want.extend(extra_labels.iter().map(|(k, v)| (*k, v.as_str())));
                if let Some(pair) = extra {
                    want.push(pair);
                }
                let found = find(&samples, metric, &want);
                if counter.name == perf.dropped_counter {
                    assert!(found.is_empty(), "{metric} {want:?} of a dropped counter");
                    continue;
                }
                let raw = by_key
                    .get(&(host.id.clone(), counter.name.to_string(), instance.clone()))
                    .unwrap_or_else(|| {
                        panic!("{} {} {instance:?} not served", host.name, counter.name)
                    });
                let expected = expected_base(
                    counter.name,
                    expected_reduction(counter.name, &raw.samples).unwrap(),
                );
                let got = value(&samples, metric, &want);
                assert!(
                    (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                    "{metric} {want:?}: {got}, want {expected} from raw {:?}",
                    raw.samples
                );
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        4 * 27,
        "4 hosts × (4 + 2×4 datastore + 3 NIC + 3×4 adapter) series"
    );

    // The host in maintenance is connected, so it has I/O series too; the others are reported
    // by state and are no error.
    let state = |name: &str| {
        let h = sim.facts.hosts.iter().find(|h| h.name == name).unwrap();
        (
            value(
                &samples,
                "vsphere_host_connection_state",
                &[
                    ("host_id", h.id.as_str()),
                    ("state", h.connection_state.as_str()),
                ],
            ),
            value(
                &samples,
                "vsphere_host_in_maintenance",
                &[("host_id", h.id.as_str())],
            ),
            find(
                &samples,
                "vsphere_host_disk_read_bytes_per_second",
                &[("host_id", h.id.as_str())],
            )
            .len(),
        )
    };
    assert_eq!(state("DC0_C0_H2"), (1.0, 1.0, 1));
    assert_eq!(state("DC0_C0_H3"), (1.0, 0.0, 0));
    assert_eq!(state("DC0_C0_H4"), (1.0, 0.0, 0));
    for host in &sim.facts.hosts {
        let info = [
            ("host_id", host.id.as_str()),
            ("datacenter_name", host.datacenter_name.as_str()),
            ("version", host.version.as_str()),
            ("build", host.build.as_str()),
        ];
        assert_eq!(value(&samples, "vsphere_host_info", &info), 1.0);
        assert_eq!(
            value(
                &samples,
                "vsphere_host_in_maintenance",
                &[("host_id", host.id.as_str())]
            ),
            if host.in_maintenance { 1.0 } else { 0.0 }
        );
    }
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "perf")]),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "vsphere_collector_success",
            &[("collector", "hostio")]
        ),
        1.0
    );
    let stats = sim.stats().await.perf;
    assert_eq!(
        stats.unconnected_host_specs, 0,
        "unconnected hosts not asked"
    );
    assert_eq!(stats.over_limit, 0);
    assert!(stats.max_metrics_per_request <= 10, "{stats:?}");
    assert_eq!(
        stats.query_perf_requests,
        stats.query_perf_metrics.div_ceil(10),
        "as few requests as the limit of 10 allows: {stats:?}"
    );
}

/// Log lines of the whole test binary, captured at warn level and above (installed once).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    use std::sync::{Mutex, OnceLock};
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Capture(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        logs
    })
}

struct Capture(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_the_vcenter_lacks_is_skipped_with_one_log_line_across_sessions() {
    let logs = captured_logs();
    let sim = hosts_vcsim();
    let mut vc = sim.vcenter("vc-missing");
    vc.perf.interval = std::time::Duration::from_millis(500);
    let served = crate::serve(vec![vc]).await;
    let hosts = &sim.facts.hosts;
    served
        .scrape_until("/metrics", std::time::Duration::from_secs(60), |p| {
            every_connected_host_sampled(p, hosts)
        })
        .await;
    // A new session resolves the counters again (every cycle in it starts after the login);
    // the missing one is not logged again.
    sim.control(serde_json::json!({"op": "drop_sessions"}))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while served.target().client().logins() < 2 {
        assert!(std::time::Instant::now() < deadline, "no new session");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let relogged = vsphere_backup_exporter::source::unix_now();
    let page = served
        .scrape_until("/metrics", std::time::Duration::from_secs(60), |p| {
            let samples = parse(p);
            let perf = [("source", "perf")];
            value(&samples, "vsphere_source_up", &perf) == 1.0
                && value(
                    &samples,
                    "vsphere_source_last_update_timestamp_seconds",
                    &perf,
                ) > relogged
        })
        .await;
    let samples = parse(&page);
    assert!(
        find(
            &samples,
            "vsphere_host_network_dropped_packets",
            &[("direction", "receive")]
        )
        .is_empty()
    );
    assert!(
        !find(
            &samples,
            "vsphere_host_network_dropped_packets",
            &[("direction", "transmit")]
        )
        .is_empty()
    );
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("vc-missing") && l.contains("no such counter"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("net.droppedRx.summation"), "{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_collector_hostio_asks_no_counters_but_hosts_are_still_reported() {
    let sim = hosts_vcsim();
    let mut config = crate::config_for(vec![sim.vcenter("vc01")]);
    config.disabled_collectors.insert("hostio".into());
    let served = crate::serve_config(config).await;
    let samples = parse(&served.scrape("/metrics").await);
    assert_eq!(
        find(&samples, "vsphere_host_info", &[]).len(),
        sim.facts.hosts.len()
    );
    // Give a perf source, were it running, time for its first cycle.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let samples = parse(&served.scrape("/metrics").await);
    assert!(find(&samples, "vsphere_host_perf_sample_timestamp_seconds", &[]).is_empty());
    assert!(find(&samples, "vsphere_source_up", &[("source", "perf")]).is_empty());
    assert!(
        find(
            &samples,
            "vsphere_collector_success",
            &[("collector", "hostio")]
        )
        .is_empty()
    );
    let stats = sim.stats().await;
    assert_eq!(
        stats.count("QueryPerf") + stats.count("QueryAvailablePerfMetric"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_over_its_budget_is_finished_by_the_next_cycles() {
    let sim = hosts_vcsim();
    let client = Arc::new(Client::new(&(&sim.vcenter("vc01")).into()).unwrap());
    let hosts: Vec<MoRef> = connected(&sim.facts.hosts)
        .iter()
        .map(|h| MoRef::new("HostSystem", &h.id))
        .collect();
    let options = PollOptions {
        concurrency: 1,
        discovery_budget: std::time::Duration::ZERO,
        ..PollOptions::default()
    };
    let mut poller = Poller::default();
    let mut known = Vec::new();
    for cycle in 1..=hosts.len() {
        let (io, report) = poller.cycle(&client, &hosts, &options).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.discovery_requests, 1, "cycle {cycle}: one a cycle");
        assert_eq!(report.discovery_pending, hosts.len() - cycle);
        assert_eq!(
            io.hosts.len(),
            cycle,
            "the known hosts are queried meanwhile"
        );
        assert!(io.hosts.values().all(|h| h.newest_sample.is_some()));
        known = io.hosts.keys().cloned().collect();
    }
    let (_, report) = poller.cycle(&client, &hosts, &options).await.unwrap();
    assert_eq!(
        (report.discovery_requests, report.discovery_pending),
        (0, 0)
    );
    assert_eq!(known.len(), hosts.len());
}
