//! Integration tests: one binary, one module per concern.
//!
//! - `fake_vcenter`: the mirror against recorded envelopes served by a scripted SOAP server
//!   (truncated answers, tokens, expired sessions, faults: what the simulator never does).
//! - `recorded`: the readers against real vCenter and ESXi answers recorded by pyvmomi, govmomi.
//! - `faults`: the exporter binary through a fault-injecting proxy in front of the simulator.
//! - `bad_input`: proptest twins of the `cargo fuzz` targets (SOAP answers, configuration).
//! - `oracle`: one full retrieval (RetrievePropertiesEx), what the mirror is compared with.
//! - `simulator`: the whole exporter, over HTTP, against govmomi's vCenter simulator
//!   (`tests/vcsim`), metrics compared value by value with the facts the simulator wrote.
//! - `golden`: the whole output of a fixed scenario against a committed file, and promtool.
//! - `backup`: the backup checks against the `backup` scenario's facts, live events, a lost
//!   session, the `disk.EnableUUID` fallback.
//! - `report`: the snapshot report's CSV and JSON against the facts, its page in headless
//!   Chromium (`browser`), and the `report` command.
//! - `tags`: vSphere tags from the Automation REST API against the simulator's tagging API,
//!   and REST APIs that refuse the login or are absent.
//! - `alarms`: vCenter's triggered alarms against the `pitfalls` scenario, changed at run time.
//! - `disks`: the device checks (disks snapshots skip, foreign disks, snapshot blockers, phantom
//!   snapshots, CBT, questions, connection states) against the `pitfalls` scenario, and their
//!   report lines.
//! - `layers`: the import rules between the layers (docs/architecture.md), read from `src/`.

mod alarms;
mod backup;
mod bad_input;
mod browser;
mod demo;
mod disks;
mod fake_vcenter;
mod faults;
mod golden;
mod hostio;
mod layers;
mod mirror;
mod mixin;
mod oracle;
mod recorded;
mod reload;
mod report;
mod simulator;
mod support;
mod tags;
mod vcsim;

use std::sync::Arc;

use vsphere_backup_exporter::config::{
    BackupConfig, BackupPattern, Config, DEFAULT_BACKUP_SNAPSHOT_PATTERNS, VcenterConfig,
};
use vsphere_backup_exporter::exporter::{Exporter, Target};
use vsphere_backup_exporter::server::{self, ServerOptions};

/// The exporter's real HTTP server on 127.0.0.1:0, stopped when dropped.
pub struct Served {
    base: String,
    exporter: Arc<Exporter>,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves an exporter for `vcenters` with the default backup patterns.
pub async fn serve(vcenters: Vec<VcenterConfig>) -> Served {
    serve_config(config_for(vcenters)).await
}

/// Serves an exporter for `vcenters` with the default backup patterns and these backup checks'
/// settings.
pub async fn serve_with(vcenters: Vec<VcenterConfig>, backup: BackupConfig) -> Served {
    serve_config(Config {
        backup,
        ..config_for(vcenters)
    })
    .await
}

/// The configuration `serve` uses: `vcenters` with the default backup patterns.
pub fn config_for(vcenters: Vec<VcenterConfig>) -> Config {
    let patterns = DEFAULT_BACKUP_SNAPSHOT_PATTERNS
        .iter()
        .map(|(product, regex)| BackupPattern {
            product: product.to_string(),
            regex: regex::Regex::new(&format!("(?i){regex}")).unwrap(),
        })
        .collect();
    Config {
        vcenters,
        backup_snapshot_patterns: patterns,
        ..Config::default()
    }
}

/// Serves an exporter for `config`.
pub async fn serve_config(config: Config) -> Served {
    let exporter = Arc::new(Exporter::build(Arc::new(config)).unwrap());
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    exporter.start();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServerOptions::default();
    let running = exporter.clone();
    tokio::spawn(async move {
        let _ = server::serve(listener, running, opts, async {
            let _ = stopped.await;
        })
        .await;
    });
    Served {
        base,
        exporter,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap(),
        _stop: stop,
    }
}

impl Served {
    /// GET a path: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// GET a metrics path that must answer 200.
    pub async fn scrape(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Scrapes `path` until `done` holds for the page, at most `limit`; the page that passed.
    pub async fn scrape_until(
        &self,
        path: &str,
        limit: std::time::Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let page = self.scrape(path).await;
            if done(&page) {
                return page;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: condition not met within {limit:?}; last page:\n{page}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Scrapes `/probe?target=` until `vsphere_source_up{source}` is 1 (a source's first sync
    /// comes after the mirror's), at most `seconds`; the page.
    pub async fn scrape_when_synced(&self, target: &str, source: &str, seconds: u64) -> String {
        let want = format!("vsphere_source_up{{vcenter=\"{target}\",source=\"{source}\"}} 1\n");
        let limit = std::time::Duration::from_secs(seconds);
        self.scrape_until(&format!("/probe?target={target}"), limit, |p| {
            p.contains(&want)
        })
        .await
    }

    /// The first configured target.
    pub fn target(&self) -> &Arc<Target> {
        &self.exporter.targets()[0]
    }

    pub fn exporter(&self) -> &Arc<Exporter> {
        &self.exporter
    }
}
