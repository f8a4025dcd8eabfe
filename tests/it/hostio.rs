//! Host I/O counters against the simulator's PerformanceManager (tests/vcsim/perf.go), whose
//! counter ids are shifted and one counter dropped: ids resolved by name, requests within the
//! vCenter's metric limit and as few as it allows, only connected hosts asked, and every value
//! the reduction of exactly the answers the exporter received in that cycle (the simulator
//! records every answer as it went out), wherever the 20 s sample grid falls during the cycle.
//! The same against govmomi's PerformanceManager as it ships (`-perf-wrapper=false`): newest
//! sample first, off the grid, zeros left out of the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vsphere_backup_exporter::vsphere::Client;
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::perf::HOST_COUNTERS;
use vsphere_backup_exporter::vsphere::perf_poll::{HostSamples, PollOptions, Poller};

use crate::support::{find, parse, value};
use crate::vcsim::{HostFacts, PerfServed, ServedAnswer, Vcsim};

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

/// The hosts scenario with govmomi's PerformanceManager as it ships (no limit to enforce).
fn shipped_hosts_vcsim() -> Vcsim {
    Vcsim::start(&[
        "-scenario",
        "hosts",
        "-perf-wrapper=false",
        "-perf-counter-shift",
        "1000",
        "-perf-drop-counter",
        "net.droppedRx.summation",
    ])
}

/// How a window of samples becomes one value, written out again here rather than taken from the
/// code under test: rates are averaged, latencies take the worst sample, drops are summed.
pub fn expected_reduction(counter: &str, samples: &[i64]) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter(|v| **v >= 0)
        .map(|v| *v as f64)
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

/// What one host should show after a cycle, from the answers it received in that cycle alone.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    /// The host's sample time; `None`: it keeps what it had.
    newest: Option<i64>,
    /// `(counter, instance)` → the reduced raw value, for every series the exporter can read.
    values: BTreeMap<(String, String), f64>,
    /// Series whose value count differs from their samples: unreadable, so absent.
    mismatched: usize,
    /// Every `(counter, instance)` the answers carried.
    answered: BTreeSet<(String, String)>,
}

/// The oracle of one host's cycle, written out again rather than taken from the code under test:
/// the window is the samples after `after` that every answer carrying a series has (from the
/// newest of their oldest to the oldest of their newest), each series matched to its samples
/// by position and reduced over that window; a host whose answers share no new sample keeps
/// what it had.
fn expected_host(answers: &[&ServedAnswer], after: Option<i64>) -> Expected {
    let mut out = Expected::default();
    let is_new = |t: &i64| after.is_none_or(|a| *t > a);
    let with_series: Vec<&&ServedAnswer> =
        answers.iter().filter(|a| !a.series.is_empty()).collect();
    for a in &with_series {
        for s in &a.series {
            out.answered.insert((s.counter.clone(), s.instance.clone()));
        }
    }
    let new: Vec<Vec<i64>> = with_series
        .iter()
        .map(|a| a.timestamps.iter().copied().filter(is_new).collect())
        .collect();
    if new.iter().all(|t| t.is_empty()) || new.iter().any(|t| t.is_empty()) {
        return out;
    }
    let from = new.iter().map(|t| *t.iter().min().unwrap()).max().unwrap();
    let to = new.iter().map(|t| *t.iter().max().unwrap()).min().unwrap();
    if from > to {
        return out;
    }
    out.newest = Some(to);
    for a in &with_series {
        for s in &a.series {
            if s.values.len() != a.timestamps.len() {
                out.mismatched += 1;
                continue;
            }
            let window: Vec<i64> = a
                .timestamps
                .iter()
                .zip(&s.values)
                .filter(|(t, _)| (from..=to).contains(*t))
                .map(|(_, v)| *v)
                .collect();
            if let Some(v) = expected_reduction(&s.counter, &window) {
                out.values
                    .insert((s.counter.clone(), s.instance.clone()), v);
            }
        }
    }
    out
}

/// The answers of requests after `after_request`, by host.
fn answers_since(served: &PerfServed, after_request: u64) -> BTreeMap<&str, Vec<&ServedAnswer>> {
    assert_eq!(
        served.dropped, 0,
        "the simulator dropped answers a test needs"
    );
    let mut out: BTreeMap<&str, Vec<&ServedAnswer>> = BTreeMap::new();
    for a in served.answers.iter().filter(|a| a.request > after_request) {
        out.entry(a.entity.as_str()).or_default().push(a);
    }
    out
}

fn last_request(served: &PerfServed) -> u64 {
    served.answers.iter().map(|a| a.request).max().unwrap_or(0)
}

/// A host's values as the poller holds them, by counter name and instance.
fn values_by_name(samples: &HostSamples) -> BTreeMap<(String, String), f64> {
    samples
        .values
        .iter()
        .map(|(i, instance, v)| ((HOST_COUNTERS[*i].name.to_string(), instance.clone()), *v))
        .collect()
}

/// The `(counter, instance)` pairs of a host's listed metrics that the exporter reads, written
/// out again: its counters, the total (`""`) of cpu and disk, every device of the others.
fn wanted_of(served: &PerfServed, host: &str, dropped: &str) -> BTreeSet<(String, String)> {
    served.available[host]
        .iter()
        .filter(|m| m.counter != dropped && HOST_COUNTERS.iter().any(|c| c.name == m.counter))
        .filter(|m| {
            let total = m.counter.starts_with("cpu.") || m.counter.starts_with("disk.");
            total == m.instance.is_empty() && m.instance != "*"
        })
        .map(|m| (m.counter.clone(), m.instance.clone()))
        .collect()
}

/// Checks one poller cycle of every host against the answers of requests after `after_request`
/// and the host's state before it; returns the series checked and the mismatched ones.
fn check_cycle(
    served: &PerfServed,
    after_request: u64,
    before: &BTreeMap<String, HostSamples>,
    after: &BTreeMap<String, HostSamples>,
    dropped: &str,
) -> (usize, usize) {
    let answers = answers_since(served, after_request);
    let (mut checked, mut mismatched) = (0, 0);
    for (host, now) in after {
        let previous = before.get(host).cloned().unwrap_or_default();
        let got = answers.get(host.as_str()).cloned().unwrap_or_default();
        let expected = expected_host(&got, previous.newest_sample);
        // Answers with samples carry a series for every id asked.
        if !got.is_empty() && got.iter().all(|a| !a.timestamps.is_empty()) {
            assert_eq!(
                expected.answered,
                wanted_of(served, host, dropped),
                "{host}: every listed metric the exporter reads is asked and answered"
            );
        }
        mismatched += expected.mismatched;
        let Some(newest) = expected.newest else {
            assert_eq!(
                now, &previous,
                "{host}: no common new sample, kept as it was"
            );
            continue;
        };
        assert_eq!(now.newest_sample, Some(newest), "{host}: the window's end");
        assert_eq!(
            values_by_name(now),
            expected.values,
            "{host}: values of the window {newest}"
        );
        checked += expected.values.len();
    }
    (checked, mismatched)
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

    // Values: each the reduction of exactly the answers of this cycle, for every metric of
    // every host, in the window all of the host's answers share.
    let served = sim.served().await;
    let none = BTreeMap::new();
    let (checked, mismatched) = check_cycle(&served, 0, &none, &io.hosts, &perf.dropped_counter);
    assert_eq!(mismatched, 0, "vCenter sends one value per sample");
    assert_eq!(report.mismatched_series, 0);
    assert_eq!(
        checked,
        4 * 27,
        "4 hosts × 27 series (the dropped counter left out)"
    );
    for host in connected(&sim.facts.hosts) {
        assert_eq!(
            wanted_of(&served, &host.id, &perf.dropped_counter).len(),
            27,
            "{}: the facts' instances are what the host lists",
            host.name
        );
    }

    // A second cycle asks only for newer samples, with no discovery; checked the same way
    // against its own answers (a host without a common new sample keeps its values).
    let first = last_request(&served);
    let (again, report) = poller
        .cycle(&client, &hosts, &PollOptions::default())
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.discovery_requests, 0);
    let served = sim.served().await;
    assert!(
        served
            .answers
            .iter()
            .filter(|a| a.request > first)
            .all(|a| a.start_time == io.hosts[&a.entity].newest_sample && a.max_sample == 3),
        "each host is asked from its window's end, for at most the window's 3 samples"
    );
    check_cycle(
        &served,
        first,
        &io.hosts,
        &again.hosts,
        &perf.dropped_counter,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_reads_the_shipped_simulator_newest_first_and_leaves_out_series_without_a_value_per_sample()
 {
    let sim = shipped_hosts_vcsim();
    let perf = sim.facts.perf.clone().unwrap();
    let client = Arc::new(Client::new(&(&sim.vcenter("vc01")).into()).unwrap());
    let hosts: Vec<MoRef> = connected(&sim.facts.hosts)
        .iter()
        .map(|h| MoRef::new("HostSystem", &h.id))
        .collect();
    let mut poller = Poller::default();
    let mut before = BTreeMap::new();
    let mut after_request = 0;
    let (mut checked, mut mismatched) = (0, 0);
    for cycle in 1..=2 {
        let (io, report) = poller
            .cycle(&client, &hosts, &PollOptions::default())
            .await
            .unwrap();
        assert!(
            report.errors.is_empty(),
            "cycle {cycle}: {:?}",
            report.errors
        );
        let served = sim.served().await;
        let (c, m) = check_cycle(
            &served,
            after_request,
            &before,
            &io.hosts,
            &perf.dropped_counter,
        );
        assert_eq!(
            report.mismatched_series, m,
            "cycle {cycle}: counted as left out"
        );
        if cycle == 1 {
            // As shipped: samples newest first, and the datastore and adapter counters (no
            // sample data, all zeros) sent without a value, which the exporter must not read.
            assert!(
                served.answers.iter().any(|a| a.timestamps.len() > 1
                    && a.timestamps.windows(2).all(|w| w[0] > w[1])),
                "the shipped simulator sends the newest sample first"
            );
            assert!(
                m >= 4 * 16,
                "cycle 1: {m} series without a value per sample"
            );
            assert!(c >= 4, "cycle 1: {c} values checked");
        }
        checked += c;
        mismatched += m;
        after_request = last_request(&served);
        before = io.hosts;
    }
    assert!(
        checked > 0 && mismatched > 0,
        "{checked} checked, {mismatched} mismatched"
    );
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
    let served = sim.served().await;
    let answers = answers_since(&served, 0);
    let perf = sim.facts.perf.clone().unwrap();
    let mut checked = 0;
    for host in connected(hosts) {
        let labels = [
            ("vcenter", "vc01"),
            ("host_id", host.id.as_str()),
            ("host_name", host.name.as_str()),
            ("cluster_name", host.cluster_name.as_str()),
        ];
        // One cycle: the page shows exactly what its answers give.
        let expected = expected_host(&answers[host.id.as_str()], None);
        assert_eq!(expected.mismatched, 0, "vCenter sends one value per sample");
        let newest = expected.newest.expect("a window every part shares");
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
                let raw = expected
                    .values
                    .get(&(counter.name.to_string(), instance.clone()))
                    .unwrap_or_else(|| {
                        panic!("{} {} {instance:?} not answered", host.name, counter.name)
                    });
                let expected = expected_base(counter.name, *raw);
                let got = value(&samples, metric, &want);
                assert!(
                    (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                    "{metric} {want:?}: {got}, want {expected} from raw {raw} in the window ending {newest}"
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
