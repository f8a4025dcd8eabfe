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
//! A host with more metrics than one request carries is asked in parts, and the parts of one
//! cycle run at different moments: one may be answered before vCenter's next 20 s sample and one
//! after. So a host's window is the samples every part has ([`common_window`]): from the newest
//! of the parts' oldest samples to the oldest of their newest. Every value of the host is reduced
//! over that window, the host's sample time is its end, and the next cycle asks from there, so a
//! sample only some parts had is read with the others next time. Samples are matched to values by
//! their position, never by assumed order (vCenter sends them oldest first; govmomi's simulator
//! newest first), and a series whose value count differs from its samples cannot be matched
//! (the API: "the values can only be interpreted in the context of the sample that generated the
//! value"), so it is left out and counted rather than misread.
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
    /// Series left out because their value count differs from their sample count.
    pub mismatched_series: usize,
    /// Hosts that answered but whose parts share no new sample: they keep their previous values
    /// and ask again from the same time next cycle.
    pub hosts_without_common_window: usize,
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
    /// Whether a series whose values do not match its samples has been logged.
    logged_mismatch: bool,
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
            let Some(state) = self.hosts.get_mut(&host) else {
                continue;
            };
            let applied = apply(&mut state.samples, &self.resolved, &parts);
            report.mismatched_series += applied.mismatched_series;
            if applied.no_common_window {
                report.hosts_without_common_window += 1;
            }
        }
        if report.mismatched_series > 0 && !self.logged_mismatch {
            self.logged_mismatch = true;
            warn!(vcenter = %client.vcenter(), series = report.mismatched_series, "perf: QueryPerf series with a value count other than their sample count left out (logged once)");
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

/// What [`apply`] did with one host's answers.
#[derive(Debug, Default, PartialEq, Eq)]
struct Applied {
    /// Series left out: their value count differs from their sample count.
    mismatched_series: usize,
    /// New samples came, but not one that every part has.
    no_common_window: bool,
}

/// The samples every part of a host has, as an inclusive time range `(from, to)`: from the newest
/// of the parts' oldest new samples to the oldest of their newest. Only samples after `after`
/// (the host's previous sample time) count, and only parts that carry a series. `None` when no
/// part has a new sample; `Some(None)` when some have but they share none (a part without a new
/// sample, or parts that do not overlap).
fn common_window(parts: &[EntityMetric], after: Option<i64>) -> Option<Option<(i64, i64)>> {
    let mut from = i64::MIN;
    let mut to = i64::MAX;
    let mut any_new = false;
    let mut all_new = true;
    for part in parts.iter().filter(|p| !p.series.is_empty()) {
        let mut new = part
            .timestamps
            .iter()
            .copied()
            .filter(|t| after.is_none_or(|a| *t > a));
        let Some(first) = new.next() else {
            all_new = false;
            continue;
        };
        let (oldest, newest) = new.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
        any_new = true;
        from = from.max(oldest);
        to = to.min(newest);
    }
    if !any_new {
        return None;
    }
    Some((all_new && from <= to).then_some((from, to)))
}

/// Folds one cycle's answers for a host (one per request its metric ids were spread over) into
/// its samples: every series reduced over the host's common window, whose end becomes the
/// host's sample time. Without a new sample every part has, the host keeps what it had.
fn apply(samples: &mut HostSamples, resolved: &Resolved, parts: &[EntityMetric]) -> Applied {
    let mut applied = Applied::default();
    let Some(window) = common_window(parts, samples.newest_sample) else {
        return applied;
    };
    let Some((from, to)) = window else {
        applied.no_common_window = true;
        return applied;
    };
    let mut values = Vec::new();
    for part in parts {
        for series in &part.series {
            let Some(index) = resolved.index_of(series.id.counter_id) else {
                continue;
            };
            if series.values.len() != part.timestamps.len() {
                applied.mismatched_series += 1;
                continue;
            }
            let in_window: Vec<i64> = part
                .timestamps
                .iter()
                .zip(&series.values)
                .filter(|(t, _)| (from..=to).contains(*t))
                .map(|(_, v)| *v)
                .collect();
            if let Some(v) = perf::reduce(&in_window, HOST_COUNTERS[index].reduce) {
                values.push((index, series.id.instance.clone(), v));
            }
        }
    }
    values.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    samples.newest_sample = Some(to);
    samples.values = values;
    applied
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

    fn part(timestamps: &[i64], series: Vec<Series>) -> EntityMetric {
        EntityMetric {
            entity: MoRef::new("HostSystem", "host-29"),
            timestamps: timestamps.to_vec(),
            series,
        }
    }

    fn value_of(samples: &HostSamples, name: &str, instance: &str) -> Option<f64> {
        samples
            .values
            .iter()
            .find(|(i, inst, _)| *i == index(name) && inst == instance)
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn parts_answered_either_side_of_a_sample_share_one_window_and_the_rest_is_read_next_cycle() {
        // Part A was answered before the sample of 800 existed, part B after.
        let first = [
            part(&[740, 760, 780], vec![series(130, "", &[1000, 2000, 3000])]),
            part(&[760, 780, 800], vec![series(188, "vol-a", &[7, 9, 50])]),
        ];
        let mut samples = HostSamples::default();
        let applied = apply(&mut samples, &resolved(), &first);
        assert_eq!(applied, Applied::default());
        assert_eq!(
            samples.newest_sample,
            Some(780),
            "the newest sample both parts have"
        );
        assert_eq!(value_of(&samples, "disk.read.average", ""), Some(2500.0));
        assert_eq!(
            value_of(&samples, "datastore.totalWriteLatency.average", "vol-a"),
            Some(9.0),
            "the 800 sample is not in the window"
        );
        // The next cycle asks after 780: both parts now get 800, B's for the first time in a
        // window.
        let next = [
            part(&[800], vec![series(130, "", &[4000])]),
            part(&[800], vec![series(188, "vol-a", &[50])]),
        ];
        apply(&mut samples, &resolved(), &next);
        assert_eq!(samples.newest_sample, Some(800));
        assert_eq!(value_of(&samples, "disk.read.average", ""), Some(4000.0));
        assert_eq!(
            value_of(&samples, "datastore.totalWriteLatency.average", "vol-a"),
            Some(50.0)
        );
    }

    #[test]
    fn samples_newest_first_are_matched_to_values_by_position() {
        // govmomi's simulator sends the newest sample first, each part at its own time.
        let parts = [
            part(&[800, 780, 760], vec![series(188, "vol-a", &[50, 7, 9])]),
            part(&[780, 760, 740], vec![series(130, "", &[1, 2, 100])]),
        ];
        let mut samples = HostSamples::default();
        apply(&mut samples, &resolved(), &parts);
        assert_eq!(samples.newest_sample, Some(780));
        assert_eq!(
            value_of(&samples, "datastore.totalWriteLatency.average", "vol-a"),
            Some(9.0)
        );
        assert_eq!(value_of(&samples, "disk.read.average", ""), Some(1.5));
    }

    #[test]
    fn a_series_with_fewer_values_than_samples_is_left_out_and_counted() {
        // As govmomi's encoder sends [2057, 6998, 0]: the zero left out, so no value can be
        // placed at its sample.
        let parts = [part(
            &[760, 780, 800],
            vec![
                series(130, "", &[2057, 6998]),
                series(531, "vmnic0", &[1, 0, 2]),
            ],
        )];
        let mut samples = HostSamples::default();
        let applied = apply(&mut samples, &resolved(), &parts);
        assert_eq!(applied.mismatched_series, 1);
        assert_eq!(samples.newest_sample, Some(800));
        assert_eq!(value_of(&samples, "disk.read.average", ""), None);
        assert_eq!(
            value_of(&samples, "net.droppedRx.summation", "vmnic0"),
            Some(3.0)
        );
    }

    #[test]
    fn a_part_without_the_new_sample_holds_the_host_back_until_every_part_has_it() {
        let before = HostSamples {
            newest_sample: Some(780),
            values: vec![(index("disk.read.average"), String::new(), 5.0)],
        };
        let mut samples = before.clone();
        // Part A asked just before 800 existed (nothing new), part B just after.
        let parts = [
            part(&[], vec![series(130, "", &[])]),
            part(&[800], vec![series(188, "vol-a", &[50])]),
        ];
        let applied = apply(&mut samples, &resolved(), &parts);
        assert!(applied.no_common_window);
        assert_eq!(samples, before);
        // Parts that do not overlap at all share no window either.
        assert_eq!(
            common_window(
                &[
                    part(&[800, 820], vec![series(130, "", &[1, 2])]),
                    part(&[840, 860], vec![series(188, "vol-a", &[1, 2])]),
                ],
                Some(780)
            ),
            Some(None)
        );
        // A part that carries no series (none of its ids on the host) does not count.
        assert_eq!(
            common_window(
                &[
                    part(&[800], vec![series(130, "", &[1])]),
                    part(&[740], Vec::new()),
                ],
                None
            ),
            Some(Some((800, 800)))
        );
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
