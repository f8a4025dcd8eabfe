//! The exporter: one [`Target`] per configured vCenter. A target owns the vSphere client and its
//! session and runs at most one collection at a time: scrapes that arrive while one runs wait
//! for it and share its result. [`Exporter`] holds the targets and the exporter's own
//! long-lived metrics (build info, process).
//!
//! It does not own HTTP (see [`crate::server`]) nor what a metric means (see
//! [`crate::collector`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::collector::catalogue::{self, BUILD_INFO_NAME, UP};
use crate::collector::{Context, Sink, collect_all, record_run};
use crate::config::{Config, VcenterConfig};
use crate::vsphere::{self, Client};

/// The collector label of the vCenter retrieval itself.
const INVENTORY: &str = "inventory";

/// What one collection produced: every family of one vCenter, `vsphere_up` included.
#[derive(Debug, Default)]
pub struct Outcome {
    pub up: bool,
    pub families: Vec<MetricFamily>,
}

#[derive(Default)]
struct Flight {
    last: Option<Arc<Outcome>>,
    /// The error of the last failed collection, to log a repeated failure once.
    last_error: Option<String>,
}

/// One configured vCenter.
pub struct Target {
    name: String,
    config: Arc<Config>,
    client: Client,
    flight: Arc<Mutex<Flight>>,
    /// Collections completed; a scrape that saw this change while it waited reuses the result.
    completed: AtomicU64,
}

impl Target {
    pub fn new(vcenter: &VcenterConfig, config: Arc<Config>) -> Result<Self, vsphere::Error> {
        Ok(Target {
            name: vcenter.name.clone(),
            client: Client::new(vcenter)?,
            config,
            flight: Arc::new(Mutex::new(Flight::default())),
            completed: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times this target has logged in to vCenter.
    pub fn logins(&self) -> u64 {
        self.client.logins()
    }

    /// How many collections have completed.
    pub fn collections(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// The result of a collection that finished after this call began: a new one, or the one
    /// already running when the call came. The collection runs in its own task, so a scrape
    /// that gives up (deadline, disconnect) does not abort it for the scrapes waiting on it.
    pub async fn collect(self: &Arc<Self>) -> Arc<Outcome> {
        let seen = self.completed.load(Ordering::SeqCst);
        let mut guard = self.flight.clone().lock_owned().await;
        if self.completed.load(Ordering::SeqCst) != seen {
            if let Some(last) = &guard.last {
                return last.clone();
            }
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            let outcome = Arc::new(this.run(&mut guard).await);
            guard.last = Some(outcome.clone());
            this.completed.fetch_add(1, Ordering::SeqCst);
            outcome
        });
        match task.await {
            Ok(outcome) => outcome,
            // Only a panic in a collector gets here; serve the target as down.
            Err(e) => {
                warn!(vcenter = %self.name, error = %e, "collection task failed");
                Arc::new(self.down_outcome(0.0))
            }
        }
    }

    /// The target's families within `timeout`; when the deadline passes first, `vsphere_up 0`
    /// (the collection goes on, and a later scrape gets its result).
    pub async fn collect_within(self: &Arc<Self>, timeout: Option<Duration>) -> Arc<Outcome> {
        let Some(timeout) = timeout else {
            return self.collect().await;
        };
        match tokio::time::timeout(timeout, self.collect()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                warn!(vcenter = %self.name, timeout_seconds = timeout.as_secs_f64(), "scrape deadline passed before the collection finished");
                Arc::new(self.down_outcome(timeout.as_secs_f64()))
            }
        }
    }

    async fn run(&self, flight: &mut Flight) -> Outcome {
        let start = Instant::now();
        let result = self.client.retrieve_inventory().await;
        let seconds = start.elapsed().as_secs_f64();
        let inventory = match result {
            Ok(inventory) => inventory,
            Err(e) => {
                let message = e.to_string();
                if flight.last_error.as_deref() == Some(message.as_str()) {
                    debug!(vcenter = %self.name, error = %message, "collection failed again");
                } else {
                    warn!(vcenter = %self.name, error = %message, "collection failed");
                }
                flight.last_error = Some(message);
                return self.down_outcome(seconds);
            }
        };
        if flight.last_error.take().is_some() {
            info!(vcenter = %self.name, "collection succeeded again");
        }
        let mut sink = Sink::new(&self.name);
        sink.gauge(&UP, &[], 1.0);
        record_run(&mut sink, INVENTORY, seconds, true);
        let ctx = Context {
            vcenter: &self.name,
            inventory: &inventory,
            config: &self.config,
        };
        collect_all(&ctx, &mut sink);
        debug!(vcenter = %self.name, vms = inventory.vms.len(), seconds, "collected");
        Outcome {
            up: true,
            families: sorted(sink.into_families()),
        }
    }

    fn down_outcome(&self, seconds: f64) -> Outcome {
        let mut sink = Sink::new(&self.name);
        sink.gauge(&UP, &[], 0.0);
        record_run(&mut sink, INVENTORY, seconds, false);
        Outcome {
            up: false,
            families: sorted(sink.into_families()),
        }
    }
}

/// Families in catalogue order, so the output is stable.
fn sorted(mut families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    let rank = |f: &MetricFamily| {
        catalogue::ALL
            .iter()
            .position(|s| s.name == f.name())
            .unwrap_or(usize::MAX)
    };
    families.sort_by_key(rank);
    families
}

/// All configured targets plus the exporter's own metrics.
pub struct Exporter {
    config: Arc<Config>,
    targets: Vec<Arc<Target>>,
    own: Registry,
}

impl Exporter {
    /// Builds a target per configured vCenter; nothing is contacted yet.
    pub fn new(config: Arc<Config>) -> Result<Self, vsphere::Error> {
        let targets = config
            .vcenters
            .iter()
            .map(|vc| Target::new(vc, config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Exporter {
            config,
            targets,
            own: own_registry(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// The names `/probe?target=` accepts, in configuration order.
    pub fn target_names(&self) -> Vec<&str> {
        self.targets.iter().map(|t| t.name()).collect()
    }

    /// The exposition text of every configured vCenter followed by the exporter's own metrics.
    /// `timeout` is the scrape's deadline (from `X-Prometheus-Scrape-Timeout-Seconds`).
    pub async fn metrics(&self, timeout: Option<Duration>) -> String {
        let tasks: Vec<_> = self
            .targets
            .iter()
            .map(|t| {
                let t = t.clone();
                tokio::spawn(async move { t.collect_within(timeout).await })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for (task, target) in tasks.into_iter().zip(&self.targets) {
            match task.await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    warn!(vcenter = %target.name(), error = %e, "collection task failed");
                    outcomes.push(Arc::new(target.down_outcome(0.0)));
                }
            }
        }
        let mut families = merge(outcomes.iter().map(|o| o.families.as_slice()));
        families.extend(self.own.gather());
        encode(&families)
    }

    /// The exposition text of one configured vCenter, or `None` when `target` names no
    /// configured vCenter (the server answers 400 and nothing is contacted).
    pub async fn probe(&self, target: &str, timeout: Option<Duration>) -> Option<String> {
        let target = self.targets.iter().find(|t| t.name() == target)?;
        let outcome = target.collect_within(timeout).await;
        Some(encode(&outcome.families))
    }

    /// True once the exporter can serve: its configuration is loaded and its targets built.
    pub fn is_ready(&self) -> bool {
        true
    }

    /// Logs out of every vCenter session; called on graceful shutdown.
    pub async fn shutdown(&self) {
        for target in &self.targets {
            target.client.logout().await;
        }
    }
}

/// Families of several vCenters merged by name: the text format wants each name once.
fn merge<'a>(per_target: impl Iterator<Item = &'a [MetricFamily]>) -> Vec<MetricFamily> {
    let mut out: Vec<MetricFamily> = Vec::new();
    for families in per_target {
        for family in families {
            match out.iter_mut().find(|f| f.name() == family.name()) {
                Some(existing) => existing
                    .mut_metric()
                    .extend(family.get_metric().iter().cloned()),
                None => out.push(family.clone()),
            }
        }
    }
    sorted(out)
}

fn encode(families: &[MetricFamily]) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(families, &mut buf) {
        // Only a family without samples or with a bad name fails; the catalogue has none.
        warn!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// The exporter's own metrics: `vsphere_exporter_build_info` and the process collector.
fn own_registry() -> Registry {
    let registry = Registry::new();
    let opts = prometheus::Opts::new(
        BUILD_INFO_NAME,
        "A metric with a constant '1' value labeled by the version and revision of vsphere_backup_exporter.",
    )
    .const_label("version", crate::VERSION)
    .const_label("revision", crate::REVISION);
    let registered = prometheus::Gauge::with_opts(opts).and_then(|g| {
        g.set(1.0);
        registry.register(Box::new(g))
    });
    if let Err(e) = registered {
        warn!(error = %e, "registering build info failed");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        warn!(error = %e, "registering process metrics failed");
    }
    registry
}
