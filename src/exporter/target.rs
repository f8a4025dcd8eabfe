//! One configured vCenter: its client (one session shared by its sources), its sources once
//! started, and its collectors' output cached on the versions of the sources each reads.
//!
//! Building a target contacts nothing; [`Target::start`] spawns its sources, which the
//! exporter does only once the listen address is bound. A read ([`Target::read`]) never waits
//! on vCenter beyond the first sync attempt, and runs collectors (off the async workers) only
//! when a source they read has changed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::collector::catalogue::{
    CALL_ERRORS, LOGIN_ATTEMPTS, RESYNCS, SLOW_UPDATE_WAITS, SOURCE_LAST_UPDATE,
    SOURCE_SYNC_DURATION, SOURCE_UP, UP,
};
use crate::collector::shards::{Families, ShardJob, VmShards, whole};
use crate::collector::{
    CLOCK, COLLECTORS, Collector, Context, Part, Run, Sink, record_run, run_collector,
};
use crate::config::{Config, TlsConfig, VcenterConfig};
use crate::source::{
    Erased, INVENTORY, Moved, RunningSource, SOURCES, SourceStatus, StartContext, first_of,
    unix_now,
};
use crate::vsphere::client::{ClientOptions, TlsOptions};
use crate::vsphere::mirror::{Mirror, MirrorOptions};
use crate::vsphere::properties::DeviceScope;
use crate::vsphere::xml::DEFAULT_MAX_TEXT_BYTES;
use crate::vsphere::{self, Client, Inventory};

/// A collector's output, kept until a source it reads (or the configuration) changes.
#[derive(Clone)]
struct Cached {
    /// The versions of the sources read, and the configuration's id.
    key: Vec<u64>,
    families: Arc<Families>,
    run: Run,
}

/// A target's render cache: per collector its last output, and the per-VM collectors' shards
/// that output is made of.
struct Renders {
    /// Per collector (in [`COLLECTORS`] order).
    collectors: Vec<Option<Cached>>,
    shards: VmShards,
}

impl Renders {
    fn new() -> Self {
        Renders {
            collectors: vec![None; COLLECTORS.len()],
            shards: VmShards::default(),
        }
    }

    fn forget(&mut self) {
        *self = Renders::new();
    }
}

/// What a read of a target gives the page: its status, and its collectors' families, those
/// cached on source versions apart from those rendered for this scrape (the clock's).
pub struct TargetRead {
    /// The version of the inventory read (0 when out of sync).
    pub inventory_version: u64,
    /// The target's status families: fresh on every read.
    pub status: Vec<Bytes>,
    /// Families of the collectors whose output is cached, with a key that changes whenever
    /// one of them is rendered anew.
    pub cached: Vec<Arc<Families>>,
    pub cached_key: Vec<u64>,
    /// Families of the collectors that read the clock, rendered for this read.
    pub fresh: Vec<Vec<Bytes>>,
}

/// The sources of a started target.
struct Running {
    mirror: Mirror,
    others: Vec<Box<dyn RunningSource>>,
    /// What decided which sources run and how: a reload that changes it builds the target anew.
    plan: SourcePlan,
}

/// Which of [`SOURCES`] a target runs, and the configuration they read beyond the vCenter's
/// own settings. Whether a source runs is the target's decision: a source runs when an enabled
/// collector reads it, which only this layer knows of both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePlan {
    /// Names of the sources an enabled collector reads.
    wanted: Vec<&'static str>,
    /// The event follower's settings (`backup.events`).
    events: crate::config::EventsConfig,
    /// How often the `tags` source reads (`tags_interval`).
    tags_interval: Duration,
    /// Which VMs the mirror reads the devices of: every VM while the `disks` collector is on,
    /// else those with snapshots only (their sizes are compared with the disk capacity).
    devices: DeviceScope,
}

impl SourcePlan {
    pub fn of(config: &Config) -> Self {
        SourcePlan {
            wanted: SOURCES
                .iter()
                .filter(|kind| kind.wanted_by(config))
                .map(|kind| kind.name())
                .filter(|name| crate::collector::source_wanted(config, name))
                .collect(),
            events: config.backup.events.clone(),
            tags_interval: config.tags.interval,
            devices: if crate::collector::is_enabled(config, crate::collector::disks::NAME) {
                DeviceScope::EveryVm
            } else {
                DeviceScope::VmsWithSnapshots
            },
        }
    }

    pub fn wants(&self, source: &str) -> bool {
        self.wanted.contains(&source)
    }
}

/// The client's options from a vCenter's configuration: the conversion lives here, with the
/// caller, so that `vsphere` knows nothing of the YAML schema.
impl From<&VcenterConfig> for ClientOptions {
    fn from(c: &VcenterConfig) -> Self {
        ClientOptions {
            name: c.name.clone(),
            url: c.url.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
            tls: TlsOptions::from(&c.tls),
            connect_timeout: c.connect_timeout,
            request_timeout: c.request_timeout,
            login_retry_interval: c.login_retry_interval,
            max_response_size: c.max_response_size,
            // 64 MiB, or less when whole answers are limited to less.
            max_value_size: c.max_response_size.min(DEFAULT_MAX_TEXT_BYTES as u64),
        }
    }
}

impl From<&TlsConfig> for TlsOptions {
    fn from(c: &TlsConfig) -> Self {
        TlsOptions {
            ca_file: c.ca_file.clone(),
            insecure_skip_verify: c.insecure_skip_verify,
        }
    }
}

/// One configured vCenter.
pub struct Target {
    vcenter: VcenterConfig,
    client: Arc<Client>,
    running: OnceLock<Running>,
    /// The collectors' cached output.
    cache: tokio::sync::Mutex<Renders>,
}

impl Target {
    /// Builds the client (reading the CA file); contacts nothing.
    pub fn build(vcenter: &VcenterConfig) -> Result<Self, vsphere::Error> {
        let client = Arc::new(Client::new(&ClientOptions::from(vcenter))?);
        Ok(Target {
            vcenter: vcenter.clone(),
            client,
            running: OnceLock::new(),
            cache: tokio::sync::Mutex::new(Renders::new()),
        })
    }

    /// Starts the mirror, then the other sources of [`SOURCES`], once; later calls do nothing.
    /// Must run inside the tokio runtime.
    pub fn start(&self, config: &Arc<Config>) {
        self.running.get_or_init(|| {
            let plan = SourcePlan::of(config);
            let options = MirrorOptions {
                devices: plan.devices,
            };
            let mirror = Mirror::start_with(self.client.clone(), options);
            let ctx = StartContext {
                vcenter: &self.vcenter,
                client: self.client.clone(),
                config: config.clone(),
                inventory: mirror.feed().clone(),
            };
            let others = SOURCES
                .iter()
                .filter(|kind| plan.wants(kind.name()))
                .filter_map(|kind| kind.start(&ctx))
                .collect();
            Running {
                mirror,
                others,
                plan,
            }
        });
    }

    /// True when a reload to `config` may keep this target as it runs: its sources would be
    /// started the same way (a target not started yet starts with the new configuration).
    pub fn keeps_sources_for(&self, config: &Config) -> bool {
        self.running
            .get()
            .is_none_or(|r| r.plan == SourcePlan::of(config))
    }

    pub fn name(&self) -> &str {
        &self.vcenter.name
    }

    /// The vCenter settings the target was built from.
    pub fn vcenter(&self) -> &VcenterConfig {
        &self.vcenter
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The mirror, once started.
    pub fn mirror(&self) -> Option<&Mirror> {
        self.running.get().map(|r| &r.mirror)
    }

    /// True once started and the mirror has tried its first sync (in sync or failed).
    pub fn first_sync_attempted(&self) -> bool {
        self.mirror()
            .is_some_and(|m| m.feed().latest().status.attempted)
    }

    /// The version of the published inventory (0 before start).
    pub fn inventory_version(&self) -> u64 {
        self.mirror().map_or(0, |m| m.feed().latest().version)
    }

    /// The value the source `name` published last, when it runs and is in sync.
    pub fn source_value<T: Send + Sync + 'static>(&self, name: &str) -> Option<Arc<T>> {
        self.sources()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.value)
            .and_then(|v| v.downcast::<T>().ok())
    }

    /// The last failure of the source `name`, while it is out of sync (`None` when it is in
    /// sync or does not run): what its log line said.
    pub fn source_error(&self, name: &str) -> Option<String> {
        self.sources()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.status.error)
    }

    /// Waits until the source `name` has tried to sync once, at most `timeout`; at once when
    /// it does not run.
    pub async fn source_settled(&self, name: &str, timeout: Duration) {
        let Some(source) = self
            .running
            .get()
            .and_then(|r| r.others.iter().find(|s| s.name() == name))
        else {
            return;
        };
        let _ = tokio::time::timeout(timeout, source.settled()).await;
    }

    /// Every source's latest snapshot, the mirror's first; empty before start.
    fn sources(&self) -> Vec<Erased> {
        self.running_sources().map(|s| s.latest()).collect()
    }

    /// Its running sources, the mirror first; none before start.
    fn running_sources(&self) -> impl Iterator<Item = &dyn RunningSource> {
        self.running.get().into_iter().flat_map(|running| {
            std::iter::once(&running.mirror as &dyn RunningSource)
                .chain(running.others.iter().map(|s| &**s))
        })
    }

    /// The versions of its sources now, the mirror's first; empty before start.
    pub fn versions(&self) -> Vec<u64> {
        self.sources().iter().map(|s| s.version).collect()
    }

    /// Waits for any of its sources to publish another version than `versions` (as
    /// [`Target::versions`] gave them: true), or to be gone (false: the target was shut down,
    /// or a source's task ended). Holds only the reading side of the sources' feeds, so the
    /// wait keeps neither the target nor its sources alive; before start it waits for ever.
    pub fn moved_from(&self, versions: &[u64]) -> Moved {
        if self.running.get().is_none() {
            return Box::pin(std::future::pending());
        }
        if self.running_sources().count() != versions.len() {
            // Versions of another set of sources: they have moved.
            return Box::pin(std::future::ready(true));
        }
        let waits: Vec<Moved> = self
            .running_sources()
            .zip(versions)
            .map(|(source, version)| source.moved_from(*version))
            .collect();
        first_of(waits)
    }

    /// The target's status and metrics. A mirror still on its first sync is waited for, at
    /// most `timeout`; while it is out of sync only the status is served, never stale data.
    pub async fn read(
        &self,
        config: &Arc<Config>,
        config_id: u64,
        timeout: Duration,
    ) -> TargetRead {
        if let Some(mirror) = self.mirror() {
            mirror.feed().settled(timeout).await;
        }
        let sources = self.sources();
        let inventory = sources
            .first()
            .filter(|s| s.name == INVENTORY)
            .and_then(|s| s.value.clone())
            .and_then(|v| v.downcast::<Inventory>().ok());
        let mut cache = self.cache.lock().await;
        let Some(inventory) = inventory else {
            // Nothing of the old inventory is served while out of sync: free its renders.
            cache.forget();
            return TargetRead {
                inventory_version: 0,
                status: self.status(&sources, &[]),
                cached: Vec::new(),
                cached_key: Vec::new(),
                fresh: Vec::new(),
            };
        };
        let plan = plan(&sources, &cache.collectors, config, config_id);
        // Old output goes before the new is built, so the two are not held at once (the
        // shards keep what is still current of it).
        for (slot, todo) in cache.collectors.iter_mut().zip(&plan) {
            if matches!(todo, Todo::Render(_)) {
                *slot = None;
            }
        }
        let (rendered, shards) = render_off_the_workers(
            self.name().to_owned(),
            config.clone(),
            inventory,
            sources.clone(),
            plan.clone(),
            std::mem::take(&mut cache.shards),
        )
        .await;
        cache.shards = shards;
        let mut out = TargetRead {
            inventory_version: sources.first().map_or(0, |s| s.version),
            status: Vec::new(),
            cached: Vec::new(),
            cached_key: Vec::new(),
            fresh: Vec::new(),
        };
        let mut runs = Vec::new();
        for (i, (todo, result)) in plan.iter().zip(rendered).enumerate() {
            match (todo, result) {
                (Todo::Skip, _) => {}
                (Todo::Keep, _) => {
                    if let Some(c) = &cache.collectors[i] {
                        out.cached.push(c.families.clone());
                        out.cached_key.extend(&c.key);
                        runs.push(c.run.clone());
                    }
                }
                (Todo::Render(Some(key)), Some((Output::Cached(families), run))) => {
                    let families = Arc::new(families);
                    out.cached.push(families.clone());
                    out.cached_key.extend(key);
                    runs.push(run.clone());
                    cache.collectors[i] = Some(Cached {
                        key: key.clone(),
                        families,
                        run,
                    });
                }
                (Todo::Render(None), Some((Output::Text(families), run))) => {
                    out.fresh.push(families);
                    runs.push(run);
                }
                (Todo::Render(_), _) => {}
            }
        }
        // The key of the cached part changes with any of its collectors' keys, and with which
        // collectors are in it.
        out.cached_key.push(out.cached.len() as u64);
        out.status = self.status(&sources, &runs);
        out
    }

    /// Drops the collectors' cached output (the inventory it came from is gone); the next read
    /// in sync renders anew.
    pub async fn forget_renders(&self) {
        self.cache.lock().await.forget();
    }

    /// The bytes of cached collector output held (text and gzip), for tests of what a lost
    /// sync frees.
    pub async fn cached_bytes(&self) -> usize {
        self.cache
            .lock()
            .await
            .collectors
            .iter()
            .flatten()
            .flat_map(|c| c.families.iter().flatten())
            .map(|chunk| chunk.held_bytes())
            .sum()
    }

    /// `vsphere_up`, the sources' state, the collectors' runs and the client's counters.
    fn status(&self, sources: &[Erased], runs: &[Run]) -> Vec<Bytes> {
        let mut sink = Sink::new(self.name());
        let up = sources
            .first()
            .is_some_and(|s| s.name == INVENTORY && s.status.synced);
        sink.gauge(&UP, &[], if up { 1.0 } else { 0.0 });
        for source in sources {
            source_status(&mut sink, source.name, &source.status);
        }
        for run in runs {
            record_run(&mut sink, run);
        }
        let counts = self.client.login_counts();
        let load =
            |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed) as f64;
        sink.counter(&LOGIN_ATTEMPTS, &["success"], load(&counts.success));
        sink.counter(
            &LOGIN_ATTEMPTS,
            &["invalid_login"],
            load(&counts.invalid_login),
        );
        sink.counter(&LOGIN_ATTEMPTS, &["error"], load(&counts.error));
        if let Some(mirror) = self.mirror() {
            for (reason, n) in mirror.counters().resyncs() {
                sink.counter(&RESYNCS, &[reason], n as f64);
            }
            sink.counter(
                &SLOW_UPDATE_WAITS,
                &[],
                mirror.counters().slow_waits() as f64,
            );
        }
        for (call, kind, n) in self.client.call_errors() {
            sink.counter(&CALL_ERRORS, &[call, kind], n as f64);
        }
        sink.into_families()
    }

    /// Stops the sources and logs out, waiting at most `timeout` for vCenter.
    pub async fn shutdown(&self, timeout: Duration) {
        if let Some(running) = self.running.get() {
            running.mirror.stop();
            for source in &running.others {
                source.shutdown(timeout).await;
            }
        }
        self.client.logout(timeout).await;
    }
}

fn source_status(sink: &mut Sink, name: &str, status: &SourceStatus) {
    sink.gauge(&SOURCE_UP, &[name], if status.synced { 1.0 } else { 0.0 });
    if status.last_update_seconds > 0.0 {
        sink.gauge(&SOURCE_LAST_UPDATE, &[name], status.last_update_seconds);
    }
    if status.attempted {
        sink.gauge(&SOURCE_SYNC_DURATION, &[name], status.sync_seconds);
    }
}

/// What to do with one collector on this read.
#[derive(Debug, Clone, PartialEq)]
enum Todo {
    /// A source it reads is not in sync (or not configured): no output.
    Skip,
    /// Its cached output is current.
    Keep,
    /// Run it; `Some(key)` caches the output under that key, `None` (it reads the clock)
    /// serves it once.
    Render(Option<Vec<u64>>),
}

/// Decides, per collector, from the versions of the sources it reads.
fn plan(
    sources: &[Erased],
    cache: &[Option<Cached>],
    config: &Config,
    config_id: u64,
) -> Vec<Todo> {
    COLLECTORS
        .iter()
        .zip(cache)
        .map(|(collector, cached)| {
            if !crate::collector::is_enabled(config, collector.name()) {
                return Todo::Skip;
            }
            let mut key = vec![config_id];
            let mut clock = false;
            for name in collector.reads() {
                if *name == CLOCK {
                    clock = true;
                    continue;
                }
                match sources.iter().find(|s| s.name == *name) {
                    Some(s) if s.value.is_some() => key.push(s.version),
                    _ => return Todo::Skip,
                }
            }
            for name in collector.reads_if_present() {
                // 0: the source does not run (or has published nothing yet).
                key.push(
                    sources
                        .iter()
                        .find(|s| s.name == *name)
                        .map_or(0, |s| s.version),
                );
            }
            if clock {
                return Todo::Render(None);
            }
            match cached {
                Some(c) if c.key == key => Todo::Keep,
                _ => Todo::Render(Some(key)),
            }
        })
        .collect()
}

/// A per-VM collector's key (see [`plan`]) without the inventory's version: what its shards
/// depend on besides their VMs (the configuration's id, the other sources' versions).
fn shard_key(collector: &dyn Collector, key: &[u64]) -> Vec<u64> {
    let mut key = key.to_vec();
    let inventory = collector
        .reads()
        .iter()
        .filter(|name| **name != CLOCK)
        .position(|name| *name == INVENTORY);
    // The key is the configuration's id, then the versions of `reads()` in order.
    if let Some(at) = inventory.map(|i| i + 1).filter(|at| *at < key.len()) {
        key.remove(at);
    }
    key
}

/// A collector's fresh output: a sink's families served once (it reads the clock), or chunks
/// to cache (a per-VM collector's per shard, or a whole collector's families packed).
enum Output {
    Text(Vec<Bytes>),
    Cached(Families),
}

/// Runs the collectors the plan says to run, on a blocking thread (at 40,000 VMs a render of
/// every VM takes a few hundred milliseconds, too long for an async worker). Per-VM collectors
/// to be cached render through `shards`, only where VMs changed; the shards come back with the
/// outputs.
async fn render_off_the_workers(
    vcenter: String,
    config: Arc<Config>,
    inventory: Arc<Inventory>,
    sources: Vec<Erased>,
    plan: Vec<Todo>,
    mut shards: VmShards,
) -> (Vec<Option<(Output, Run)>>, VmShards) {
    let count = plan.len();
    if !plan.iter().any(|t| matches!(t, Todo::Render(_))) {
        return ((0..count).map(|_| None).collect(), shards);
    }
    let work = move || {
        let ctx = Context {
            vcenter: &vcenter,
            config: &config,
            inventory: &inventory,
            now: unix_now(),
            sources: &sources,
            part: Part::All,
        };
        let sharded =
            |c: &dyn Collector, todo: &Todo| c.per_vm() && matches!(todo, Todo::Render(Some(_)));
        let jobs: Vec<ShardJob<'_>> = COLLECTORS
            .iter()
            .zip(&plan)
            .filter_map(|(c, todo)| match todo {
                Todo::Render(Some(key)) if c.per_vm() => Some(ShardJob {
                    collector: *c,
                    key: shard_key(*c, key),
                }),
                _ => None,
            })
            .collect();
        let keep: Vec<&'static str> = COLLECTORS
            .iter()
            .zip(&plan)
            .filter(|(c, todo)| c.per_vm() && **todo == Todo::Keep)
            .map(|(c, _)| c.name())
            .collect();
        let mut from_shards = if jobs.is_empty() && keep.is_empty() {
            shards = VmShards::default();
            Vec::new()
        } else if jobs.is_empty() {
            Vec::new()
        } else {
            shards.update(&ctx, &jobs, &keep)
        }
        .into_iter();
        let outputs = COLLECTORS
            .iter()
            .zip(&plan)
            .map(|(collector, todo)| {
                if sharded(*collector, todo) {
                    let (families, run) = from_shards.next()?;
                    return Some((Output::Cached(families), run));
                }
                match todo {
                    Todo::Render(Some(_)) => {
                        let (families, run) = run_collector(*collector, &ctx);
                        Some((Output::Cached(whole(families)), run))
                    }
                    Todo::Render(None) => {
                        let (families, run) = run_collector(*collector, &ctx);
                        Some((Output::Text(families), run))
                    }
                    _ => None,
                }
            })
            .collect::<Vec<_>>();
        (outputs, shards)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "rendering task failed");
            ((0..count).map(|_| None).collect(), VmShards::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_read_for_every_vm_only_while_the_disks_collector_is_on() {
        let on = Config::default();
        let mut off = Config::default();
        off.disabled_collectors
            .insert(crate::collector::disks::NAME.to_string());
        assert_eq!(SourcePlan::of(&on).devices, DeviceScope::EveryVm);
        assert_eq!(SourcePlan::of(&off).devices, DeviceScope::VmsWithSnapshots);
        // Turning the collector off or on changes how the mirror reads: a new target.
        assert_ne!(SourcePlan::of(&on), SourcePlan::of(&off));
    }
}
