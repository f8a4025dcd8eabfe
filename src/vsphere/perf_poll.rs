//! One vCenter's host counters, cycle by cycle: the state the perf source keeps between cycles
//! (the counters resolved for this session, each host's metric ids, the newest sample seen) and
//! one cycle's requests, run in batches with bounded concurrency.
//!
//! A cycle asks each host for the real-time samples after the newest one it has already seen
//! (the first time: the newest `window / 20 s`), so no sample is read twice and the exporter's
//! clock never matters. Per host and metric, the window's samples become one value
//! ([`perf::Reduce`]); a host with no new sample keeps its previous values and sample time, which
//! is how a stale host is told from a quiet one.
//!
//! It owns no schedule (the perf source does) and no Prometheus.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::client::{Client, Session};
use super::error::{CallError, Error};
use super::model::{MoId, MoRef};
use super::perf::{
    self, CounterInfo, EntityMetric, HOST_COUNTERS, MetricId, QuerySpec, REALTIME_INTERVAL_SECONDS,
    Resolved,
};

/// How a poller asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOptions {
    /// At most this much history per cycle (`perf_window`).
    pub window: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// A cap on metrics per request below the vCenter's own (`None`: the vCenter's).
    pub max_query_metrics: Option<usize>,
    /// How long a cycle may spend discovering new hosts' instances before it queries the hosts
    /// it knows; the rest are discovered in the next cycles. Discovery costs a 100 KB answer per
    /// host (minutes for thousands of hosts on a real vCenter), so it must not hold back the
    /// counters of the hosts already known.
    pub discovery_budget: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            window: Duration::from_secs(60),
            concurrency: 4,
            max_query_metrics: None,
            discovery_budget: Duration::from_secs(10),
        }
    }
}

impl PollOptions {
    /// Samples per cycle at most: the window in 20 s samples, at least one.
    pub fn max_sample(&self) -> u32 {
        let samples = self.window.as_secs() / u64::from(REALTIME_INTERVAL_SECONDS);
        u32::try_from(samples).unwrap_or(u32::MAX).max(1)
    }
}

/// What the collectors read: the counters' units and each queried host's newest values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostIo {
    /// Per [`HOST_COUNTERS`] index, the counter as this vCenter has it (`None`: it lacks it).
    pub counters: Vec<Option<CounterInfo>>,
    /// Hosts that were queried (connected ones), by managed object id.
    pub hosts: BTreeMap<MoId, HostSamples>,
}

/// One host's values, in vCenter's units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSamples {
    /// The newest sample's time (Unix seconds); `None` before the first sample.
    pub newest_sample: Option<i64>,
    /// `(HOST_COUNTERS index, instance, value)`, ordered by index then instance.
    pub values: Vec<(usize, String, f64)>,
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub hosts: usize,
    /// Metric ids asked for, over all hosts.
    pub metrics: usize,
    pub query_requests: usize,
    /// The fewest requests the metric limit allows for `metrics`.
    pub min_query_requests: usize,
    pub discovery_requests: usize,
    /// Hosts whose discovery waits for a later cycle (the budget ran out).
    pub discovery_pending: usize,
    pub discovery_bytes: usize,
    /// Bytes of the QueryPerf answers.
    pub response_bytes: usize,
    pub metrics_per_request: usize,
    pub seconds: f64,
    /// Failed requests (their hosts keep their previous values).
    pub errors: Vec<Error>,
}

/// A host's state between cycles.
#[derive(Debug, Default)]
struct HostState {
    /// `None` until QueryAvailablePerfMetric has answered in this session.
    metric_ids: Option<Vec<MetricId>>,
    samples: HostSamples,
}

/// The poller of one vCenter.
#[derive(Debug, Default)]
pub struct Poller {
    /// The login count of the client when the counters were resolved: a new session resolves
    /// them again (ids may change with a vCenter upgrade).
    session_generation: Option<u64>,
    resolved: Arc<Resolved>,
    limit: usize,
    hosts: HashMap<MoId, HostState>,
    /// Counters already reported missing: each is logged once.
    logged_missing: HashSet<&'static str>,
}

impl Poller {
    /// One cycle over `hosts` (the connected ones): resolve the counters if this session has not,
    /// discover new hosts' instances, query every host in batches. Returns the values of every
    /// listed host, and what it did; hosts no longer listed are forgotten.
    pub async fn cycle(
        &mut self,
        client: &Arc<Client>,
        hosts: &[MoRef],
        options: &PollOptions,
    ) -> Result<(HostIo, CycleReport), Error> {
        let started = Instant::now();
        let session = client.session().await?;
        if self.session_generation != Some(client.logins())
            && let Err(e) = self.start_session(client, &session, options).await
        {
            if e.failure.is_not_authenticated() {
                client.invalidate(&session).await;
            }
            return Err(e);
        }
        let listed: HashSet<&str> = hosts.iter().map(|h| h.value.as_str()).collect();
        self.hosts.retain(|id, _| listed.contains(id.as_str()));
        let mut report = CycleReport {
            hosts: hosts.len(),
            ..Default::default()
        };
        self.discover(client, &session, hosts, options, &mut report)
            .await;
        self.query(client, &session, hosts, options, &mut report)
            .await;
        if let Some(e) = report
            .errors
            .iter()
            .find(|e| e.failure.is_not_authenticated())
        {
            // The next cycle logs in again and resolves the counters anew.
            debug!(vcenter = %client.vcenter(), error = %e, "perf: session lost");
            client.invalidate(&session).await;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok((self.snapshot(hosts), report))
    }

    /// Reads the counter catalogue and the metric limit for a new session.
    async fn start_session(
        &mut self,
        client: &Client,
        session: &Session,
        options: &PollOptions,
    ) -> Result<(), Error> {
        let catalogue = perf::fetch_catalogue(client, session).await?;
        if catalogue.malformed > 0 {
            warn!(vcenter = %client.vcenter(), counters = catalogue.malformed, "perf: counters without a name skipped");
        }
        let resolved = perf::resolve(&catalogue.counters);
        for name in &resolved.missing {
            if self.logged_missing.insert(name) {
                warn!(vcenter = %client.vcenter(), counter = name, "perf: vCenter has no such counter; its metrics are left out");
            }
        }
        let mut limit = perf::limit_from_setting(catalogue.max_query_metrics);
        if let Some(cap) = options.max_query_metrics {
            limit = limit.min(cap);
        }
        debug!(vcenter = %client.vcenter(), counters = resolved.counters.len(), limit, "perf: counters resolved");
        self.resolved = Arc::new(resolved);
        self.limit = limit;
        for state in self.hosts.values_mut() {
            state.metric_ids = None; // ids of the old session
        }
        self.session_generation = Some(client.logins());
        Ok(())
    }

    /// QueryAvailablePerfMetric for the listed hosts not yet known in this session, as many as
    /// the discovery budget allows.
    async fn discover(
        &mut self,
        client: &Arc<Client>,
        session: &Session,
        hosts: &[MoRef],
        options: &PollOptions,
        report: &mut CycleReport,
    ) {
        let wanted: Vec<MoRef> = hosts
            .iter()
            .filter(|h| {
                self.hosts
                    .get(&h.value)
                    .is_none_or(|s| s.metric_ids.is_none())
            })
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let ids = Arc::new(self.resolved.ids());
        let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let deadline = Instant::now() + options.discovery_budget;
        // The first requests go out whatever the budget, so every cycle makes progress.
        let always = options.concurrency.max(1);
        let mut tasks = JoinSet::new();
        for (i, host) in wanted.into_iter().enumerate() {
            let (client, session, ids, limit) =
                (client.clone(), session.clone(), ids.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                if i >= always && Instant::now() >= deadline {
                    return (host, None); // the next cycle asks
                }
                let found =
                    perf::available_metrics(&client, &session, &host, |c| ids.contains(&c)).await;
                (host, Some(found))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((host, found)) = joined else { continue };
            let Some(found) = found else {
                report.discovery_pending += 1;
                continue;
            };
            report.discovery_requests += 1;
            match found {
                Ok((available, bytes)) => {
                    report.discovery_bytes += bytes;
                    let state = self.hosts.entry(host.value).or_default();
                    state.metric_ids = Some(perf::host_metric_ids(&self.resolved, &available));
                }
                Err(e) => report.errors.push(e),
            }
        }
    }

    /// QueryPerf for every listed host with metric ids, in batches of at most the limit.
    async fn query(
        &mut self,
        client: &Arc<Client>,
        session: &Session,
        hosts: &[MoRef],
        options: &PollOptions,
        report: &mut CycleReport,
    ) {
        let max_sample = options.max_sample();
        let work: Vec<(&MoRef, &[MetricId], Option<i64>)> = hosts
            .iter()
            .filter_map(|h| {
                let state = self.hosts.get(&h.value)?;
                let ids = state.metric_ids.as_deref()?;
                Some((h, ids, state.samples.newest_sample))
            })
            .collect();
        let counts: Vec<usize> = work.iter().map(|(_, ids, _)| ids.len()).collect();
        let per_request = perf::metrics_per_request(self.limit, max_sample);
        report.metrics = counts.iter().sum();
        report.metrics_per_request = per_request;
        report.min_query_requests = report.metrics.div_ceil(per_request);
        let Some(perf_manager) = session.content.perf_manager.clone() else {
            return;
        };
        let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for batch in perf::batches(&counts, per_request) {
            let specs: Vec<QuerySpec<'_>> = batch
                .iter()
                .map(|part| {
                    let (entity, ids, newest) = work[part.entity];
                    QuerySpec {
                        entity,
                        start_time: newest,
                        max_sample,
                        metric_ids: &ids[part.range.clone()],
                    }
                })
                .collect();
            let body = perf::query_perf(&perf_manager, &specs);
            let (client, session, semaphore) = (client.clone(), session.clone(), semaphore.clone());
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let bytes = client.call("QueryPerf", &session, body).await?;
                let parsed = perf::parse_query_perf(&bytes).map_err(|e| Error {
                    vcenter: client.vcenter().to_string(),
                    call: "QueryPerf",
                    failure: CallError::from(e),
                    sent: None,
                })?;
                Ok::<_, Error>((parsed, bytes.len()))
            });
        }
        let mut answers: HashMap<MoId, Vec<EntityMetric>> = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            report.query_requests += 1;
            match joined {
                Ok(Ok((metrics, bytes))) => {
                    report.response_bytes += bytes;
                    for m in metrics {
                        answers.entry(m.entity.value.clone()).or_default().push(m);
                    }
                }
                Ok(Err(e)) => report.errors.push(e),
                Err(e) => report.errors.push(Error {
                    vcenter: client.vcenter().to_string(),
                    call: "QueryPerf",
                    failure: CallError::Transport(format!("request task: {e}")),
                    sent: None,
                }),
            }
        }
        for (host, parts) in answers {
            if let Some(state) = self.hosts.get_mut(&host) {
                apply(&mut state.samples, &self.resolved, &parts);
            }
        }
    }

    /// The published view: every listed host that has state, in id order.
    fn snapshot(&self, hosts: &[MoRef]) -> HostIo {
        let counters = (0..HOST_COUNTERS.len())
            .map(|i| self.resolved.info(i).cloned())
            .collect();
        let hosts = hosts
            .iter()
            .filter_map(|h| {
                let state = self.hosts.get(&h.value)?;
                Some((h.value.clone(), state.samples.clone()))
            })
            .collect();
        HostIo { counters, hosts }
    }
}

/// Folds one cycle's answers for a host (one per request its metric ids were spread over) into
/// its samples. Without a new sample the host keeps what it had.
fn apply(samples: &mut HostSamples, resolved: &Resolved, parts: &[EntityMetric]) {
    let newest = parts
        .iter()
        .flat_map(|p| p.timestamps.iter())
        .max()
        .copied();
    let Some(newest) = newest else { return };
    if samples.newest_sample.is_some_and(|seen| seen >= newest) {
        return;
    }
    let mut values = Vec::new();
    for part in parts {
        for series in &part.series {
            let Some(index) = resolved.index_of(series.id.counter_id) else {
                continue;
            };
            if let Some(v) = perf::reduce(&series.values, HOST_COUNTERS[index].reduce) {
                values.push((index, series.id.instance.clone(), v));
            }
        }
    }
    values.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    samples.newest_sample = Some(newest);
    samples.values = values;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::perf::{Instances, Series};

    fn resolved() -> Resolved {
        let info = |key, name: &str, unit: &str| CounterInfo {
            key,
            name: name.into(),
            unit: unit.into(),
        };
        perf::resolve(&[
            info(130, "disk.read.average", "kiloBytesPerSecond"),
            info(188, "datastore.totalWriteLatency.average", "millisecond"),
            info(531, "net.droppedRx.summation", "number"),
        ])
    }

    fn series(counter_id: i32, instance: &str, values: &[i64]) -> Series {
        Series {
            id: MetricId {
                counter_id,
                instance: instance.into(),
            },
            values: values.to_vec(),
        }
    }

    fn index(name: &str) -> usize {
        HOST_COUNTERS.iter().position(|c| c.name == name).unwrap()
    }

    #[test]
    fn a_host_split_over_two_requests_gets_both_halves_reduced_by_kind() {
        let host = MoRef::new("HostSystem", "host-29");
        let parts = [
            EntityMetric {
                entity: host.clone(),
                timestamps: vec![100, 120, 140],
                series: vec![series(130, "", &[1200, 800, 1000])],
            },
            EntityMetric {
                entity: host,
                timestamps: vec![100, 120, 140],
                series: vec![
                    series(188, "vol-a", &[3, 41, -1]),
                    series(531, "vmnic1", &[0, 7, 5]),
                    series(999, "", &[1]), // not a resolved counter
                ],
            },
        ];
        let mut samples = HostSamples::default();
        apply(&mut samples, &resolved(), &parts);
        assert_eq!(samples.newest_sample, Some(140));
        assert_eq!(
            samples.values,
            [
                (index("disk.read.average"), String::new(), 1000.0),
                (
                    index("datastore.totalWriteLatency.average"),
                    "vol-a".into(),
                    41.0
                ),
                (index("net.droppedRx.summation"), "vmnic1".into(), 12.0),
            ]
        );
        assert_eq!(
            HOST_COUNTERS[index("net.droppedRx.summation")].instances,
            Instances::Nics
        );
    }

    #[test]
    fn a_host_without_a_new_sample_keeps_its_values_and_time() {
        let before = HostSamples {
            newest_sample: Some(140),
            values: vec![(index("disk.read.average"), String::new(), 5.0)],
        };
        let mut samples = before.clone();
        let host = MoRef::new("HostSystem", "host-29");
        apply(
            &mut samples,
            &resolved(),
            &[EntityMetric {
                entity: host.clone(),
                ..Default::default()
            }],
        );
        assert_eq!(samples, before);
        // The same newest sample again (asked with an older start) changes nothing either.
        apply(
            &mut samples,
            &resolved(),
            &[EntityMetric {
                entity: host,
                timestamps: vec![140],
                series: vec![series(130, "", &[99])],
            }],
        );
        assert_eq!(samples, before);
    }

    #[test]
    fn max_sample_is_the_window_in_realtime_samples() {
        let with = |secs| PollOptions {
            window: Duration::from_secs(secs),
            ..Default::default()
        };
        assert_eq!(PollOptions::default().max_sample(), 3);
        assert_eq!(with(20).max_sample(), 1);
        assert_eq!(with(10).max_sample(), 1);
        assert_eq!(with(3600).max_sample(), 180);
    }
}
