//! The `perf` source: each vCenter's host I/O counters (PerformanceManager, real-time interval),
//! read on their own cadence (`perf_interval`, default 20 s) and published as a [`HostIo`]
//! snapshot for the `hostio` collector.
//!
//! A cycle starts once the inventory mirror is in sync and asks for its connected hosts only:
//! disconnected and not-responding hosts have no counters to give, and the `hosts` collector
//! reports their state from the mirror. The cycle itself (counter ids by name, batches, the
//! window) is [`Poller`]'s; this module owns the schedule, the status and the logging.
//!
//! The target does not start it when no enabled collector reads it (`--no-collector.hostio`),
//! so turning the metrics off also stops the queries.

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{Feed, Publisher, RunningSource, SourceKind, SourceStatus, StartContext, Task};
use crate::config::PerfConfig;
use crate::vsphere::model::MoRef;
use crate::vsphere::perf_poll::{CycleReport, HostIo, PollOptions, Poller};
use crate::vsphere::{Client, Inventory};

/// The source's name: the `source` label, and what collectors name in `reads`.
pub const PERF: &str = "perf";

/// Host counters, per vCenter.
pub struct Perf;

impl SourceKind for Perf {
    fn name(&self) -> &'static str {
        PERF
    }

    fn start(&self, ctx: &StartContext<'_>) -> Option<Box<dyn RunningSource>> {
        let (publisher, feed) = super::channel::<HostIo>();
        let task = tokio::spawn(run(
            ctx.client.clone(),
            ctx.inventory.clone(),
            ctx.vcenter.perf.clone(),
            publisher,
        ));
        Some(Box::new(Task::new(PERF, feed, task)))
    }
}

/// The hosts a cycle asks: those the mirror shows connected, in id order.
pub fn connected_hosts(inventory: &Inventory) -> Vec<MoRef> {
    inventory
        .hosts
        .values()
        .filter(|h| h.connection_state == "connected")
        .map(|h| MoRef::new("HostSystem", &h.id))
        .collect()
}

fn poll_options(config: &PerfConfig) -> PollOptions {
    PollOptions {
        window: config.window,
        concurrency: config.concurrency,
        max_query_metrics: config.max_query_metrics,
        // Half the interval: a cycle with hosts to discover still publishes in its interval.
        discovery_budget: config.interval / 2,
    }
}

/// Cycles until aborted: wait for the mirror to be in sync, run a cycle, publish, sleep out the
/// rest of the interval (a cycle longer than the interval starts the next one at once).
async fn run(
    client: Arc<Client>,
    inventory: Feed<Inventory>,
    config: PerfConfig,
    publisher: Publisher<HostIo>,
) {
    let options = poll_options(&config);
    let mut poller = Poller::default();
    let mut last_error: Option<String> = None;
    loop {
        let inv = inventory.value().await;
        let started = Instant::now();
        let hosts = connected_hosts(&inv);
        drop(inv);
        let outcome = poller.cycle(&client, &hosts, &options).await;
        let claim = |sent| client.claim_incident(sent);
        let cleared = || client.incident_over();
        last_error = publish(
            &publisher,
            client.vcenter(),
            outcome,
            last_error,
            claim,
            cleared,
        );
        let elapsed = started.elapsed();
        if elapsed < config.interval {
            tokio::time::sleep(config.interval - elapsed).await;
        }
    }
}

/// Publishes one cycle's outcome and logs a failure once (until it changes or clears); returns
/// the failure now in force.
fn publish(
    publisher: &Publisher<HostIo>,
    vcenter: &str,
    outcome: Result<(HostIo, CycleReport), crate::vsphere::Error>,
    last_error: Option<String>,
    claim_incident: impl FnOnce(Option<Instant>) -> bool,
    cleared: impl FnOnce(),
) -> Option<String> {
    let now = super::unix_now();
    // When the request behind the reported failure was sent: one sent while vCenter hung
    // belongs to that incident even when it fails after the recovery.
    let sent = match &outcome {
        Ok((_, report)) => report.errors.first().and_then(|e| e.sent),
        Err(e) => e.sent,
    };
    let (value, status, error) = match outcome {
        Ok((io, report)) => {
            log_report(vcenter, &report);
            let error = report.errors.first().map(|e| {
                format!(
                    "{e} ({} of {} requests failed)",
                    report.errors.len(),
                    report.query_requests + report.discovery_requests
                )
            });
            let status = SourceStatus {
                attempted: true,
                synced: error.is_none(),
                last_update_seconds: now,
                sync_seconds: report.seconds,
                error: error.clone(),
            };
            // Hosts of failed requests keep their previous values, whose sample time says so.
            (Some(Arc::new(io)), status, error)
        }
        Err(e) => {
            let error = e.to_string();
            let previous = publisher.latest();
            let status = SourceStatus {
                attempted: true,
                synced: false,
                last_update_seconds: previous.status.last_update_seconds,
                sync_seconds: previous.status.sync_seconds,
                error: Some(error.clone()),
            };
            (None, status, Some(error))
        }
    };
    match (&error, &last_error) {
        (Some(now), Some(before)) if now == before => {}
        // One warning per incident: another source of this vCenter may have logged it.
        (Some(now), _) if !claim_incident(sent) => {
            debug!(vcenter, error = %now, "perf: cycle failed; the vCenter's failure is logged already")
        }
        (Some(now), _) => {
            warn!(vcenter, error = %now, "perf: cycle failed; host I/O metrics are incomplete")
        }
        (None, Some(_)) => info!(vcenter, "perf: counters read again"),
        (None, None) => {}
    }
    if error.is_none() {
        cleared();
    }
    publisher.publish(value, status);
    error
}

fn log_report(vcenter: &str, report: &CycleReport) {
    debug!(
        vcenter,
        hosts = report.hosts,
        metrics = report.metrics,
        requests = report.query_requests,
        min_requests = report.min_query_requests,
        discovery = report.discovery_requests,
        discovery_pending = report.discovery_pending,
        discovery_bytes = report.discovery_bytes,
        bytes = report.response_bytes,
        mismatched_series = report.mismatched_series,
        hosts_without_common_window = report.hosts_without_common_window,
        seconds = report.seconds,
        "perf: cycle done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::model::Host;

    #[test]
    fn only_connected_hosts_are_asked() {
        let mut inv = Inventory::default();
        for (id, state) in [
            ("host-1", "connected"),
            ("host-2", "disconnected"),
            ("host-3", "notResponding"),
            ("host-4", ""),
            ("host-10", "connected"),
        ] {
            inv.hosts.insert(
                id.into(),
                Host {
                    id: id.into(),
                    connection_state: state.into(),
                    in_maintenance: id == "host-10",
                    ..Default::default()
                },
            );
        }
        let ids: Vec<String> = connected_hosts(&inv).into_iter().map(|h| h.value).collect();
        assert_eq!(ids, ["host-1", "host-10"]);
    }

    #[tokio::test]
    async fn a_failure_is_published_without_a_value_and_a_success_clears_it() {
        let (publisher, feed) = crate::source::channel::<HostIo>();
        let ok = || Ok((HostIo::default(), CycleReport::default()));
        let failed = || {
            Err(crate::vsphere::Error {
                vcenter: "vc01".into(),
                call: "QueryPerf",
                failure: crate::vsphere::CallError::Status(503),
                sent: None,
            })
        };
        let last = publish(&publisher, "vc01", ok(), None, |_| true, || ());
        assert!(last.is_none());
        let p = feed.latest();
        assert!(p.status.synced && p.value.is_some() && p.status.attempted);
        let last = publish(&publisher, "vc01", failed(), last, |_| true, || ());
        assert_eq!(
            last.as_deref(),
            Some("vCenter vc01: QueryPerf: HTTP status 503")
        );
        let p = feed.latest();
        assert!(!p.status.synced && p.value.is_none());
        assert_eq!(p.status.error, last);
        let last = publish(&publisher, "vc01", ok(), last, |_| true, || ());
        assert!(last.is_none() && feed.latest().status.synced);
    }
}
