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
