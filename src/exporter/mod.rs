//! The exporter: one [`Target`] per configured vCenter, and the pages scrapes are served from.
//!
//! Building an exporter ([`Exporter::build`]) checks and prepares everything and contacts
//! nothing; [`Exporter::start`] starts the targets' sources, which the program does once the
//! listen address is bound. A scrape reads the sources' latest snapshots and never waits on
//! vCenter once a target has tried its first sync.
//!
//! A page has five parts: the targets' status (fresh), their collectors' metrics cached on the
//! versions of what they read, the metrics that depend on the time of the scrape (fresh), the
//! exporter-level series of the configuration (the blackout windows, fresh, without a vcenter
//! label), and on `/metrics` the exporter's own metrics (fresh). The cached part is a list of
//! [`Chunk`]s (each family's header, then each collector's text, per shard of VMs for the
//! per-VM collectors, see [`crate::collector::shards`]) kept across versions where their
//! source did not change; every fresh part is one chunk. Each chunk is one gzip member,
//! compressed once. The page is sent part by part as held, never joined into one copy of its
//! text; gzipped, the cached part's members are joined once per version into one buffer
//! (thousands of small body frames cost a write each on every scrape).
//!
//! A task started with the exporter renders `/metrics`' vCenter part, gzip included, whenever
//! a target's source publishes a new version ([`render_ahead`]): a change is rendered as it
//! comes, in proportion to it, and the scrape after it only sends.
//!
//! A target that loses sync serves none of its old output: a task started with the exporter
//! frees that output (its collectors' and the pages') at once, so the full retrieval that
//! follows does not hold it beside the new inventory.
//!
//! It does not own HTTP (see [`crate::server`]) nor what a metric means (see
//! [`crate::collector`]).

mod target;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{Encoder, Registry, TextEncoder};
use tracing::warn;

use crate::collector::catalogue::BUILD_INFO_NAME;
use crate::collector::shards::{Chunk, Families};
use crate::collector::{blackout, concat, render, render_chunks};
use crate::config::Config;
use crate::source::{Feed, unix_now};
use crate::vsphere::{self, Inventory};
pub use target::{Target, TargetRead};

/// How long a scrape without a deadline waits for a target on its first sync.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long logging out of each vCenter may take at shutdown.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a scrape sends: the vCenters' status (fresh), their inventory metrics (cached per
/// inventory version, in chunks kept across versions) and, on `/metrics`, the exporter's own
/// metrics (fresh). Each chunk is one gzip member.
#[derive(Debug, Clone)]
pub struct Page {
    parts: Vec<Part>,
}

/// A share of a page: one fresh chunk, or the cached chunks of the targets' collectors.
#[derive(Debug, Clone)]
enum Part {
    Fresh(Arc<Chunk>),
    Cached(Arc<CachedChunks>),
}

/// The cached share of a page: its chunks, and their gzip members joined once per version, so
/// a warm scrape sends one buffer where the chunks are thousands (a body frame each would be
/// a write each).
#[derive(Debug)]
struct CachedChunks {
    chunks: Vec<Arc<Chunk>>,
    gzip: OnceLock<Bytes>,
}

impl CachedChunks {
    fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let members: Vec<Bytes> = self.chunks.iter().map(|c| c.gzipped()).collect();
                concat(&members)
            })
            .clone()
    }

    /// The bytes of text and gzip held (a chunk the targets' caches hold too is counted by
    /// each).
    fn held_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.held_bytes()).sum::<usize>()
            + self.gzip.get().map_or(0, Bytes::len)
    }
}

impl Part {
    fn gzipped(&self) -> Bytes {
        match self {
            Part::Fresh(chunk) => chunk.gzipped(),
            Part::Cached(cached) => cached.gzipped(),
        }
    }
}

impl Page {
    /// The page's text, segment by segment (what a scraper without gzip is sent).
    pub fn segments(&self) -> Vec<Bytes> {
        self.chunks().iter().flat_map(|c| c.segments()).collect()
    }

    /// The page's chunks in order, for sending its text chunk by chunk.
    pub fn chunks(&self) -> Vec<Arc<Chunk>> {
        self.parts
            .iter()
            .flat_map(|part| match part {
                Part::Fresh(chunk) => vec![chunk.clone()],
                Part::Cached(cached) => cached.chunks.clone(),
            })
            .collect()
    }

    /// The whole page as one text (a copy: for tools and tests).
    pub fn text(&self) -> Bytes {
        concat(&self.segments())
    }

    /// The page gzipped: one gzip member per chunk (RFC 1952 allows a sequence of members,
    /// and HTTP clients, Prometheus' among them, read them as one stream), the cached chunks'
    /// joined in one buffer; chunks kept from an earlier version are not compressed again.
    /// Blocking: call it off the async workers.
    pub fn gzip_members(&self) -> Vec<Bytes> {
        self.parts.iter().map(|p| p.gzipped()).collect()
    }

    /// Makes the gzip of the page's cached part, which the next scrapes send as it is (its
    /// fresh parts are each scrape's own). Blocking: call it off the async workers.
    pub fn gzip_cached(&self) {
        for part in &self.parts {
            if let Part::Cached(cached) = part {
                cached.gzipped();
            }
        }
    }

    /// The gzip members joined (a copy: for tools and tests).
    pub fn gzip(&self) -> Bytes {
        concat(&self.gzip_members())
    }

    /// The text as a string, for tests and tools.
    pub fn to_text_string(&self) -> String {
        String::from_utf8_lossy(&self.text()).into_owned()
    }
}

/// The cached share of a page (its chunks), by the targets and the keys of their cached output.
type PageCache = Option<(Vec<PageKey>, Arc<CachedChunks>)>;

/// One target's share of a page's key: its index, its inventory's version, and the keys of its
/// collectors' cached output.
type PageKey = (usize, u64, Vec<u64>);

/// A source of configuration ids: render caches are keyed on the configuration too, so a
/// target kept across a reload renders again with the new one.
static CONFIG_IDS: AtomicU64 = AtomicU64::new(1);

/// The last cached part of `/metrics`, and of `/probe` for each target.
struct PageCaches {
    metrics: Mutex<PageCache>,
    probes: Vec<Mutex<PageCache>>,
    /// Woken whenever a page's cached part is made anew.
    made: tokio::sync::Notify,
}

impl PageCaches {
    fn all(&self) -> impl Iterator<Item = &Mutex<PageCache>> {
        std::iter::once(&self.metrics).chain(&self.probes)
    }

    /// Forgets every cached part that holds target `index`'s output.
    fn forget(&self, index: usize) {
        for cache in self.all() {
            let mut cache = lock(cache);
            if cache
                .as_ref()
                .is_some_and(|(key, _)| key.iter().any(|(i, _, _)| *i == index))
            {
                *cache = None;
            }
        }
    }

    /// The bytes of text and gzip the cached chunks hold (a chunk the targets' caches hold
    /// too is counted by each).
    fn bytes(&self) -> usize {
        self.all()
            .map(|cache| {
                lock(cache)
                    .as_ref()
                    .map_or(0, |(_, cached)| cached.held_bytes())
            })
            .sum()
    }
}

/// All configured targets plus the exporter's own metrics.
pub struct Exporter {
    config: Arc<Config>,
    config_id: u64,
    targets: Vec<Arc<Target>>,
    own: Registry,
    caches: Arc<PageCaches>,
    /// Set once [`Exporter::start`] has started the tasks that free renders on a lost sync.
    started: OnceLock<()>,
}

impl Exporter {
    /// Builds a target per configured vCenter (reading CA files); contacts nothing.
    pub fn build(config: Arc<Config>) -> Result<Self, vsphere::Error> {
        Self::build_reusing(config, &[])
    }

    /// Like [`Exporter::build`], but keeps each of `previous` whose vCenter settings are
    /// unchanged and whose sources would start the same way (the same sources wanted, the same
    /// event settings), with its sources and session (a reload).
    pub fn build_reusing(
        config: Arc<Config>,
        previous: &[Arc<Target>],
    ) -> Result<Self, vsphere::Error> {
        let targets = config
            .vcenters
            .iter()
            .map(|vc| {
                match previous
                    .iter()
                    .find(|t| t.vcenter() == vc && t.keeps_sources_for(&config))
                {
                    Some(kept) => Ok(kept.clone()),
                    None => Target::build(vc).map(Arc::new),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let caches = Arc::new(PageCaches {
            metrics: Mutex::new(None),
            probes: targets.iter().map(|_| Mutex::new(None)).collect(),
            made: tokio::sync::Notify::new(),
        });
        Ok(Exporter {
            config,
            config_id: CONFIG_IDS.fetch_add(1, Ordering::Relaxed),
            targets,
            own: own_registry(),
            caches,
            started: OnceLock::new(),
        })
    }

    /// Starts every target's sources (they connect in the background), and for each a task
    /// that frees its rendered output as soon as its inventory is out of sync. Call it inside
    /// the tokio runtime, once listening; a second call does nothing.
    pub fn start(&self) {
        self.started.get_or_init(|| {
            for (index, target) in self.targets.iter().enumerate() {
                target.start(&self.config);
                if let Some(mirror) = target.mirror() {
                    tokio::spawn(forget_renders_out_of_sync(
                        index,
                        mirror.feed().clone(),
                        Arc::downgrade(target),
                        Arc::downgrade(&self.caches),
                    ));
                }
            }
            if !self.targets.is_empty() {
                tokio::spawn(render_ahead(
                    self.config.clone(),
                    self.config_id,
                    self.targets.iter().map(Arc::downgrade).collect(),
                    Arc::downgrade(&self.caches),
                ));
            }
        });
    }

    /// The bytes of rendered output held for the targets' pages (text and gzip), for tests of
    /// what a lost sync frees.
    pub async fn cached_bytes(&self) -> usize {
        let mut bytes = self.caches.bytes();
        for target in &self.targets {
            bytes += target.cached_bytes().await;
        }
        bytes
    }

    /// Waits until `/metrics`' cached part is made from at least `versions` of the targets'
    /// inventories (in target order), for tests that a change is rendered before any scrape.
    pub async fn rendered_from(&self, versions: &[u64]) {
        loop {
            let made = self.caches.made.notified();
            tokio::pin!(made);
            // Registered before the check, so a part made in between wakes it.
            made.as_mut().enable();
            let rendered = lock(&self.caches.metrics).as_ref().is_some_and(|(key, _)| {
                key.len() == versions.len()
                    && key.iter().zip(versions).all(|((_, v, _), at)| v >= at)
            });
            if rendered {
                return;
            }
            made.await;
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The registry of the exporter's own metrics, for the program's (the reload's) to join.
    pub fn own_registry(&self) -> &Registry {
        &self.own
    }

    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// The names `/probe?target=` accepts, in configuration order.
    pub fn target_names(&self) -> Vec<&str> {
        self.targets.iter().map(|t| t.name()).collect()
    }

    /// Every configured vCenter followed by the exporter's own metrics. `timeout` is the
    /// scrape's deadline (from `X-Prometheus-Scrape-Timeout-Seconds`), which bounds the wait
    /// for a target on its first sync.
    pub async fn metrics(&self, timeout: Option<Duration>) -> Page {
        let all: Vec<usize> = (0..self.targets.len()).collect();
        let mut page = self
            .pages()
            .vcenter_page(&all, &self.caches.metrics, timeout)
            .await;
        page.parts
            .push(Part::Fresh(Chunk::new(vec![Bytes::from(self.own_text())])));
        page
    }

    /// One configured vCenter, or `None` when `target` names none (the server answers 400 and
    /// nothing is contacted).
    pub async fn probe(&self, target: &str, timeout: Option<Duration>) -> Option<Page> {
        let index = self.targets.iter().position(|t| t.name() == target)?;
        let cache = self.caches.probes.get(index)?;
        Some(self.pages().vcenter_page(&[index], cache, timeout).await)
    }

    fn pages(&self) -> Pages<'_> {
        Pages {
            config: &self.config,
            config_id: self.config_id,
            targets: &self.targets,
            made: &self.caches.made,
        }
    }

    fn own_text(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.own.gather(), &mut buf) {
            warn!(error = %e, "encoding the exporter's own metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// True once every target has tried its first sync (in sync or failed): until then a
    /// scrape would have little to show.
    pub fn is_ready(&self) -> bool {
        self.targets.iter().all(|t| t.first_sync_attempted())
    }

    /// Stops the sources and logs out of every vCenter at once, each within a short timeout.
    pub async fn shutdown(&self) {
        let mut logouts = tokio::task::JoinSet::new();
        for target in &self.targets {
            let target = target.clone();
            logouts.spawn(async move { target.shutdown(LOGOUT_TIMEOUT).await });
        }
        while logouts.join_next().await.is_some() {}
    }
}

/// What a page of the vCenters is made from: one exporter's configuration and targets.
struct Pages<'a> {
    config: &'a Arc<Config>,
    config_id: u64,
    targets: &'a [Arc<Target>],
    /// Woken when a cached part is made anew.
    made: &'a tokio::sync::Notify,
}

impl Pages<'_> {
    /// The status part (fresh), the cached part (by the targets' keys), the clock part (fresh).
    async fn vcenter_page(
        &self,
        indexes: &[usize],
        cache: &Mutex<PageCache>,
        timeout: Option<Duration>,
    ) -> Page {
        let started = Instant::now();
        self.drop_stale(cache);
        let mut reads = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let left = timeout
                .unwrap_or(DEFAULT_WAIT)
                .saturating_sub(started.elapsed());
            let read = self.targets[i]
                .read(self.config, self.config_id, left)
                .await;
            reads.push((i, read));
        }
        let status: Vec<&[Bytes]> = reads.iter().map(|(_, r)| r.status.as_slice()).collect();
        let status_part = Chunk::new(render(&status));
        let fresh: Vec<&[Bytes]> = reads
            .iter()
            .flat_map(|(_, r)| r.fresh.iter().map(Vec::as_slice))
            .collect();
        let fresh_part = Chunk::new(render(&fresh));
        let key: Vec<PageKey> = reads
            .iter()
            .map(|(i, r)| (*i, r.inventory_version, r.cached_key.clone()))
            .collect();
        let mut cache = lock(cache);
        let cached = cache
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, p)| p.clone());
        let cached_chunks = cached.unwrap_or_else(|| {
            let families: Vec<&Families> = reads
                .iter()
                .flat_map(|(_, r)| r.cached.iter().map(|f| &**f))
                .collect();
            let chunks = render_chunks(&families);
            // The same chunks as before (a new version that changed no text): the old part
            // and its joined gzip stay.
            let same = cache.take().map(|(_, old)| old).filter(|old| {
                old.chunks.len() == chunks.len()
                    && old
                        .chunks
                        .iter()
                        .zip(&chunks)
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            });
            let cached = same.unwrap_or_else(|| {
                Arc::new(CachedChunks {
                    chunks,
                    gzip: OnceLock::new(),
                })
            });
            *cache = Some((key, cached.clone()));
            self.made.notify_waiters();
            cached
        });
        // Exporter-level series (the blackout windows): no vCenter, rendered on every scrape.
        let exporter_families = blackout::families(self.config, unix_now());
        let exporter_part = Chunk::new(render(&[exporter_families.as_slice()]));
        let parts = vec![
            Part::Fresh(status_part),
            Part::Cached(cached_chunks),
            Part::Fresh(fresh_part),
            Part::Fresh(exporter_part),
        ];
        Page { parts }
    }

    /// Forgets a cached part whose targets' inventories have moved on, before they render
    /// anew, so an old and a new rendering of 40,000 VMs are not held at once.
    fn drop_stale(&self, cache: &Mutex<PageCache>) {
        let mut cache = lock(cache);
        let stale = cache.as_ref().is_some_and(|(key, _)| {
            key.iter().any(|(i, version, _)| {
                self.targets.get(*i).map(|t| t.inventory_version()) != Some(*version)
            })
        });
        if stale {
            *cache = None;
        }
    }
}

/// Renders `/metrics`' vCenter part (and gzips it) whenever a source of a target publishes a
/// new version, so that a scrape after a change finds it made: what changed is rendered in
/// the background, as it happens, in proportion to the change ([`crate::collector::shards`]),
/// and a scrape only sends. Publishes that come while it renders are taken together by the
/// next round. Ends when the exporter is gone (a reload builds another) or a source is (a
/// shutdown); it holds neither the exporter's caches nor its targets while it waits.
async fn render_ahead(
    config: Arc<Config>,
    config_id: u64,
    targets: Vec<Weak<Target>>,
    caches: Weak<PageCaches>,
) {
    loop {
        let Some(held) = targets
            .iter()
            .map(Weak::upgrade)
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let versions: Vec<Vec<u64>> = held.iter().map(|t| t.versions()).collect();
        {
            let Some(caches) = caches.upgrade() else {
                return;
            };
            let pages = Pages {
                config: &config,
                config_id,
                targets: &held,
                made: &caches.made,
            };
            let all: Vec<usize> = (0..held.len()).collect();
            let page = pages
                .vcenter_page(&all, &caches.metrics, Some(Duration::ZERO))
                .await;
            if tokio::task::spawn_blocking(move || page.gzip_cached())
                .await
                .is_err()
            {
                warn!("rendering ahead failed");
            }
        }
        let waits: Vec<_> = held
            .iter()
            .zip(&versions)
            .map(|(t, v)| t.moved_from(v))
            .collect();
        drop(held);
        if !crate::source::first_of(waits).await {
            // A target was shut down (or a source's task ended): scrapes render what changed.
            tracing::debug!("a source is gone: no more rendering ahead");
            return;
        }
    }
}

/// Frees target `index`'s rendered output (its collectors' and the pages') whenever its
/// inventory goes out of sync, not at the next scrape: a full retrieval follows, which
/// should not find the old renders still held (at 40,000 VMs, some 80 MB). Ends when the
/// exporter, the target or its mirror is gone (a reload that keeps the target starts
/// another for the new exporter's pages).
async fn forget_renders_out_of_sync(
    index: usize,
    feed: Feed<Inventory>,
    target: Weak<Target>,
    caches: Weak<PageCaches>,
) {
    while feed.in_sync().await && feed.out_of_sync().await {
        let (Some(target), Some(caches)) = (target.upgrade(), caches.upgrade()) else {
            return;
        };
        caches.forget(index);
        target.forget_renders().await;
    }
}

/// A std mutex guard, poisoned or not (what it guards is replaced whole, never half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The exporter's own metrics: `vsphere_backup_exporter_build_info` and the process collector.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn config(extra: &str) -> Arc<Config> {
        let yaml = format!(
            "vcenters:\n  - name: vc01\n    url: https://127.0.0.1:9/sdk\n    username: u\n    password: p\n{extra}"
        );
        Arc::new(Config::from_yaml(&yaml, "test").unwrap())
    }

    #[tokio::test]
    async fn a_reload_keeps_a_started_target_only_while_its_sources_would_start_the_same() {
        let first = Exporter::build(config("")).unwrap();
        first.start();
        let kept = Exporter::build_reusing(config(""), first.targets()).unwrap();
        assert!(Arc::ptr_eq(&kept.targets()[0], &first.targets()[0]));

        // Only the event follower's settings change: the running follower has the old ones.
        let events = "events:\n  read_back: 2h\n";
        let rebuilt = Exporter::build_reusing(config(events), first.targets()).unwrap();
        assert!(!Arc::ptr_eq(&rebuilt.targets()[0], &first.targets()[0]));

        // Only the collector set changes: no enabled collector reads the perf source any more.
        let mut without_hostio = (*config("")).clone();
        without_hostio.disabled_collectors.insert("hostio".into());
        let rebuilt = Exporter::build_reusing(Arc::new(without_hostio), first.targets()).unwrap();
        assert!(!Arc::ptr_eq(&rebuilt.targets()[0], &first.targets()[0]));

        // A target not started yet starts with whatever configuration it is kept for.
        let idle = Exporter::build(config("")).unwrap();
        let kept = Exporter::build_reusing(config(events), idle.targets()).unwrap();
        assert!(Arc::ptr_eq(&kept.targets()[0], &idle.targets()[0]));
    }

    #[test]
    fn a_page_gzips_to_a_member_per_chunk_and_reads_back_whole() {
        let kept = Chunk::new(vec![Bytes::from("b 2\n".repeat(500))]);
        let cached = Arc::new(CachedChunks {
            chunks: vec![kept.clone(), Chunk::new(vec![Bytes::from("d 4\n")])],
            gzip: OnceLock::new(),
        });
        let page = Page {
            parts: vec![
                Part::Fresh(Chunk::new(vec![
                    Bytes::from("a 1\n".repeat(1000)),
                    Bytes::from("c 3\n"),
                ])),
                Part::Cached(cached.clone()),
                Part::Fresh(Chunk::new(vec![Bytes::from("e 5\n")])),
            ],
        };
        let gz = page.gzip();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), &page.text()[..]);
        assert!(
            text.starts_with("a 1\n") && text.ends_with("d 4\ne 5\n"),
            "{text}"
        );
        // Four members, the cached part's two joined in one buffer that starts with the member
        // of the chunk kept from before, compressed once.
        let members = page.gzip_members();
        assert_eq!(members.len(), 3);
        assert_eq!(
            members
                .iter()
                .map(|m| m.windows(3).filter(|w| *w == [0x1f, 0x8b, 8]).count())
                .sum::<usize>(),
            4
        );
        assert!(members[1].starts_with(&kept.gzipped()));
        assert_eq!(page.gzip(), gz);
        assert_eq!(
            cached.held_bytes(),
            2004 + members[1].len() + kept.gzipped().len() + cached.chunks[1].gzipped().len()
        );
    }
}
