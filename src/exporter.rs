//! The exporter: one [`Target`] per configured vCenter, each following its vCenter through an
//! inventory [`Mirror`], and the pages scrapes are served from.
//!
//! A scrape never waits on vCenter once the mirror is in sync: it reads the mirror. The
//! exposition text is rendered once per inventory version and kept, with its gzip form, until
//! the inventory changes; the exporter's own metrics (build info, process) are rendered per
//! scrape and sent as a second part (a second gzip member when compressed).
//!
//! It does not own HTTP (see [`crate::server`]) nor what a metric means (see
//! [`crate::collector`]).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{Encoder, Registry, TextEncoder};
use tracing::warn;

use crate::collector::catalogue::{BUILD_INFO_NAME, INVENTORY_LAST_UPDATE, UP};
use crate::collector::{Context, Run, Sink, collect_all, concat, record_run, render};
use crate::config::{Config, VcenterConfig};
use crate::vsphere::mirror::Mirror;
use crate::vsphere::{self, Client};

/// The collector label of the vCenter retrieval itself.
const INVENTORY: &str = "inventory";
/// How long a scrape without a deadline waits for a mirror that is not in sync yet.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// One part of a page: text segments rendered once, gzipped at most once.
#[derive(Debug)]
pub struct Part {
    segments: Vec<Bytes>,
    gzip: OnceLock<Bytes>,
}

impl Part {
    fn new(segments: Vec<Bytes>) -> Arc<Part> {
        Arc::new(Part {
            segments,
            gzip: OnceLock::new(),
        })
    }

    /// The part as one gzip member, compressed on first use.
    fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                for segment in &self.segments {
                    // Writing into a Vec cannot fail.
                    let _ = encoder.write_all(segment);
                }
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// What a scrape sends: the vCenters' status (fresh), their inventory metrics (cached per
/// inventory version) and, on `/metrics`, the exporter's own metrics (fresh).
#[derive(Debug, Clone)]
pub struct Page {
    parts: Vec<Arc<Part>>,
}

impl Page {
    /// The whole page as text (joined on demand: only scrapers without gzip need it).
    pub fn text(&self) -> Bytes {
        let segments: Vec<Bytes> = self
            .parts
            .iter()
            .flat_map(|p| p.segments.iter().cloned())
            .collect();
        concat(&segments)
    }

    /// The page gzipped: one gzip member per part (RFC 1952 allows a sequence of members,
    /// and HTTP clients, Prometheus' among them, read them as one stream). Blocking: call it
    /// off the async workers.
    pub fn gzip(&self) -> Bytes {
        let members: Vec<Bytes> = self.parts.iter().map(|p| p.gzipped()).collect();
        concat(&members)
    }

    /// The text as a string, for tests and tools.
    pub fn to_text_string(&self) -> String {
        String::from_utf8_lossy(&self.text()).into_owned()
    }
}

/// A target's inventory metrics, rendered for one mirror version.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub version: u64,
    /// Exposition samples per catalogue entry (the status families are not among them).
    pub families: Arc<Vec<Bytes>>,
    /// How the collectors ran for this render.
    pub runs: Arc<Vec<Run>>,
}

/// A target's state as a scrape reports it.
#[derive(Debug, Clone)]
pub struct Status {
    pub up: bool,
    pub last_update_seconds: f64,
    pub full_retrieval_seconds: f64,
}

/// One configured vCenter.
pub struct Target {
    name: String,
    config: Arc<Config>,
    client: Arc<Client>,
    mirror: Mirror,
    rendered: Mutex<Option<Rendered>>,
}

impl Target {
    /// Builds the client and starts the mirror (it connects in the background).
    pub fn start(vcenter: &VcenterConfig, config: Arc<Config>) -> Result<Self, vsphere::Error> {
        let client = Arc::new(Client::new(vcenter)?);
        let mirror = Mirror::start(client.clone(), vcenter.name.clone());
        Ok(Target {
            name: vcenter.name.clone(),
            config,
            client,
            mirror,
            rendered: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times this target has logged in to vCenter.
    pub fn logins(&self) -> u64 {
        self.client.logins()
    }

    /// The mirror this target reads.
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// The target's status and inventory metrics, rendered again only when the mirror changed
    /// since the last render. A mirror still doing its first full retrieval is waited for
    /// until `timeout`. No inventory metrics while the mirror is out of sync.
    pub async fn snapshot(&self, timeout: Option<Duration>) -> (Status, Option<Rendered>) {
        self.mirror
            .wait_synced(timeout.unwrap_or(DEFAULT_WAIT))
            .await;
        let Ok(state) = self.mirror.state().read() else {
            let status = Status {
                up: false,
                last_update_seconds: 0.0,
                full_retrieval_seconds: 0.0,
            };
            return (status, None);
        };
        let status = Status {
            up: state.synced,
            last_update_seconds: state.last_update_seconds,
            full_retrieval_seconds: state.full_retrieval_seconds,
        };
        let mut cache = match self.rendered.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !state.synced {
            // Nothing of the old inventory is served while out of sync: free its render.
            *cache = None;
            return (status, None);
        }
        if let Some(r) = cache.as_ref().filter(|r| r.version == state.version) {
            return (status, Some(r.clone()));
        }
        // The old render goes before the new one is built, so the two are not held at once.
        *cache = None;
        let mut sink = Sink::new(&self.name);
        let ctx = Context {
            vcenter: &self.name,
            inventory: &state.inventory,
            config: &self.config,
        };
        let runs = collect_all(&ctx, &mut sink);
        let rendered = Rendered {
            version: state.version,
            families: Arc::new(sink.into_families()),
            runs: Arc::new(runs),
        };
        *cache = Some(rendered.clone());
        (status, Some(rendered))
    }

    /// `vsphere_up`, the update time and the collectors' runs of this target.
    fn status_families(&self, status: &Status, rendered: Option<&Rendered>) -> Vec<Bytes> {
        let mut sink = Sink::new(&self.name);
        sink.gauge(&UP, &[], if status.up { 1.0 } else { 0.0 });
        if status.up {
            sink.gauge(&INVENTORY_LAST_UPDATE, &[], status.last_update_seconds);
        }
        record_run(
            &mut sink,
            INVENTORY,
            status.full_retrieval_seconds,
            status.up,
        );
        for run in rendered.iter().flat_map(|r| r.runs.iter()) {
            record_run(&mut sink, run.collector, run.seconds, run.ok);
        }
        sink.into_families()
    }
}

/// The rendered inventory part of a page, by the targets and versions it was rendered from.
type PageCache = Option<(Vec<(usize, u64)>, Arc<Part>)>;

/// All configured targets plus the exporter's own metrics.
pub struct Exporter {
    targets: Vec<Arc<Target>>,
    own: Registry,
    /// The last `/metrics` and the last `/probe` inventory parts.
    metrics_cache: Mutex<PageCache>,
    probe_cache: Mutex<PageCache>,
}

impl Exporter {
    /// Builds a target per configured vCenter; their mirrors start connecting at once.
    pub fn new(config: Arc<Config>) -> Result<Self, vsphere::Error> {
        let targets = config
            .vcenters
            .iter()
            .map(|vc| Target::start(vc, config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Exporter {
            targets,
            own: own_registry(),
            metrics_cache: Mutex::new(None),
            probe_cache: Mutex::new(None),
        })
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
    /// for a mirror that is not in sync yet.
    pub async fn metrics(&self, timeout: Option<Duration>) -> Page {
        let all: Vec<usize> = (0..self.targets.len()).collect();
        let mut page = self.vcenter_page(&all, &self.metrics_cache, timeout).await;
        page.parts
            .push(Part::new(vec![Bytes::from(self.own_text())]));
        page
    }

    /// One configured vCenter, or `None` when `target` names none (the server answers 400 and
    /// nothing is contacted).
    pub async fn probe(&self, target: &str, timeout: Option<Duration>) -> Option<Page> {
        let index = self.targets.iter().position(|t| t.name() == target)?;
        Some(
            self.vcenter_page(&[index], &self.probe_cache, timeout)
                .await,
        )
    }

    /// The status part (fresh) and the inventory part (cached by the targets' versions).
    async fn vcenter_page(
        &self,
        indexes: &[usize],
        cache: &Mutex<PageCache>,
        timeout: Option<Duration>,
    ) -> Page {
        let started = Instant::now();
        self.drop_stale_parts();
        let mut snapshots = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
            snapshots.push((i, self.targets[i].snapshot(left).await));
        }
        let status: Vec<Vec<Bytes>> = snapshots
            .iter()
            .map(|(i, (status, rendered))| {
                self.targets[*i].status_families(status, rendered.as_ref())
            })
            .collect();
        let status_refs: Vec<&[Bytes]> = status.iter().map(Vec::as_slice).collect();
        let status_part = Part::new(render(&status_refs));

        let inventory: Vec<(usize, &Rendered)> = snapshots
            .iter()
            .filter_map(|(i, (_, r))| r.as_ref().map(|r| (*i, r)))
            .collect();
        let key: Vec<(usize, u64)> = inventory.iter().map(|(i, r)| (*i, r.version)).collect();
        let mut cache = match cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let cached = cache
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, p)| p.clone());
        let inventory_part = cached.unwrap_or_else(|| {
            let families: Vec<&[Bytes]> = inventory
                .iter()
                .map(|(_, r)| r.families.as_slice())
                .collect();
            let part = Part::new(render(&families));
            *cache = Some((key, part.clone()));
            part
        });
        Page {
            parts: vec![status_part, inventory_part],
        }
    }

    /// Forgets cached inventory parts whose targets have moved on, before they render anew,
    /// so an old and a new rendering of 40,000 VMs are not held at once.
    fn drop_stale_parts(&self) {
        for cache in [&self.metrics_cache, &self.probe_cache] {
            let mut cache = match cache.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            let stale = cache.as_ref().is_some_and(|(key, _)| {
                key.iter()
                    .any(|(i, version)| self.targets[*i].mirror().version() != *version)
            });
            if stale {
                *cache = None;
            }
        }
    }

    fn own_text(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.own.gather(), &mut buf) {
            warn!(error = %e, "encoding the exporter's own metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// True once the exporter can serve: its configuration is loaded and its targets built.
    pub fn is_ready(&self) -> bool {
        true
    }

    /// Stops the mirrors and logs out of every vCenter session; called on graceful shutdown.
    pub async fn shutdown(&self) {
        for target in &self.targets {
            target.mirror.stop();
            target.client.logout().await;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_page_gzips_to_one_member_per_part_and_reads_back_whole() {
        let page = Page {
            parts: vec![
                Part::new(vec![
                    Bytes::from("a 1\n".repeat(1000)),
                    Bytes::from("c 3\n"),
                ]),
                Part::new(vec![Bytes::from("b 2\n")]),
            ],
        };
        let gz = page.gzip();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), &page.text()[..]);
        // The first part's member is cached: compressing again reuses it.
        let first = page.parts[0].gzip.get().cloned().unwrap();
        assert!(gz.starts_with(&first));
        assert_eq!(page.gzip(), gz);
    }
}
