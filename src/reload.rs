//! Reloading the configuration without a restart (SIGHUP, `POST /-/reload`): read the
//! configuration and the web configuration again, build and check everything as a start does
//! (contacting nothing), and only then swap. Targets whose vCenter settings did not change keep
//! their sources and session; removed ones stop and log out; added ones start. A configuration
//! that fails any check is refused whole: the old one stays in force, the error is logged and
//! returned, and `vsphere_backup_exporter_config_last_reload_successful` drops to 0.
//!
//! One reload runs at a time. Requests take the exporter in service when they arrive (see
//! [`ExporterSlot`]), so scrapes in flight complete with the configuration they started with.
//!
//! It does not parse configurations (see [`crate::config`], [`crate::webconfig`]) nor decide
//! when to reload (see [`crate::cli`] for SIGHUP, [`crate::server`] for `/-/reload`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Gauge;
use tracing::{error, info};

use crate::collector::catalogue::{RELOAD_SUCCESS_TIMESTAMP_NAME, RELOAD_SUCCESSFUL_NAME};
use crate::config::{Config, ConfigError};
use crate::exporter::Exporter;
use crate::server::{ExporterSlot, Reload, ReloadFuture, Web, WebError};
use crate::source::unix_now;
use crate::vsphere;
use crate::webconfig::WebConfig;

/// How long logging out of each removed vCenter may take.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a reload was refused. The Display form is one line naming the file and key; no secret.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot load the configuration: {0}")]
    Config(#[source] ConfigError),
    #[error("cannot load the web configuration: {0}")]
    WebConfig(#[source] ConfigError),
    #[error("web configuration {path}: {source}")]
    Web {
        path: String,
        #[source]
        source: WebError,
    },
    #[error("cannot set up the vCenter clients: {0}")]
    Build(#[source] vsphere::Error),
    #[error("the reload task failed: {0}")]
    Task(String),
    #[error("reload metrics: {0}")]
    Metrics(#[source] prometheus::Error),
}

/// The reload of one running program: where its configuration files are, and what it swaps.
pub struct Reloader {
    config_file: PathBuf,
    web_config_file: Option<PathBuf>,
    exporters: Arc<ExporterSlot>,
    web: Arc<Web>,
    successful: Gauge,
    success_timestamp: Gauge,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config_file", &self.config_file)
            .field("web_config_file", &self.web_config_file)
            .finish_non_exhaustive()
    }
}

/// What a reload builds before anything is swapped.
struct Built {
    exporter: Exporter,
    web: Web,
}

impl Reloader {
    /// A reloader for a program started from `config_file` (and `web_config_file`), serving
    /// the exporter in `exporters` with `web`. That start counts as the last successful load.
    pub fn new(
        config_file: PathBuf,
        web_config_file: Option<PathBuf>,
        exporters: Arc<ExporterSlot>,
        web: Arc<Web>,
    ) -> Result<Reloader, ReloadError> {
        let successful = Gauge::new(
            RELOAD_SUCCESSFUL_NAME,
            "1 if the last configuration reload (SIGHUP, POST /-/reload) succeeded, else 0; the configuration in force is then the previous one.",
        )
        .map_err(ReloadError::Metrics)?;
        let success_timestamp = Gauge::new(
            RELOAD_SUCCESS_TIMESTAMP_NAME,
            "Unix time of the last successful configuration load (the start or a reload).",
        )
        .map_err(ReloadError::Metrics)?;
        successful.set(1.0);
        success_timestamp.set(unix_now());
        let reloader = Reloader {
            config_file,
            web_config_file,
            exporters,
            web,
            successful,
            success_timestamp,
            one_at_a_time: tokio::sync::Mutex::new(()),
        };
        reloader.register(&reloader.exporters.current());
        Ok(reloader)
    }

    /// Serves the reload metrics among `exporter`'s own.
    fn register(&self, exporter: &Exporter) {
        for gauge in [&self.successful, &self.success_timestamp] {
            if let Err(e) = exporter.own_registry().register(Box::new(gauge.clone())) {
                tracing::warn!(error = %e, "registering a reload metric failed");
            }
        }
    }

    /// Reads, builds and checks the configuration, then puts it in force; or refuses it whole.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        match self.swap().await {
            Ok(()) => {
                self.successful.set(1.0);
                self.success_timestamp.set(unix_now());
                Ok(())
            }
            Err(e) => {
                self.successful.set(0.0);
                error!(
                    err = %e,
                    "Reloading the configuration failed; the previous one stays in force"
                );
                Err(e)
            }
        }
    }

    async fn swap(&self) -> Result<(), ReloadError> {
        let previous = self.exporters.current();
        let built = {
            let config_file = self.config_file.clone();
            let web_config_file = self.web_config_file.clone();
            let previous = Arc::clone(&previous);
            // Files are read and CA files parsed: off the async workers.
            tokio::task::spawn_blocking(move || build(&config_file, web_config_file, &previous))
                .await
                .map_err(|e| ReloadError::Task(e.to_string()))??
        };
        let exporter = Arc::new(built.exporter);
        self.register(&exporter);
        // Kept targets are running already; this starts the added ones.
        exporter.start();
        self.exporters.replace(Arc::clone(&exporter));
        self.web.replace(built.web);
        let removed: Vec<_> = previous
            .targets()
            .iter()
            .filter(|old| !exporter.targets().iter().any(|t| Arc::ptr_eq(t, old)))
            .cloned()
            .collect();
        let kept = previous.targets().len() - removed.len();
        let added = exporter.targets().len() - kept;
        info!(
            file = %self.config_file.display(),
            vcenters = exporter.targets().len(),
            kept,
            added,
            removed = removed.len(),
            "Reloaded the configuration"
        );
        let mut logouts = tokio::task::JoinSet::new();
        for target in removed {
            logouts.spawn(async move { target.shutdown(LOGOUT_TIMEOUT).await });
        }
        while logouts.join_next().await.is_some() {}
        Ok(())
    }
}

/// Builds the exporter (keeping `previous`'s unchanged targets) and the web config. Blocking.
fn build(
    config_file: &std::path::Path,
    web_config_file: Option<PathBuf>,
    previous: &Exporter,
) -> Result<Built, ReloadError> {
    let config = Arc::new(Config::load(config_file).map_err(ReloadError::Config)?);
    let web = match &web_config_file {
        None => Web::plain(),
        Some(path) => {
            let web_config = WebConfig::load(path).map_err(ReloadError::WebConfig)?;
            Web::new(&web_config).map_err(|source| ReloadError::Web {
                path: path.display().to_string(),
                source,
            })?
        }
    };
    let exporter =
        Exporter::build_reusing(config, previous.targets()).map_err(ReloadError::Build)?;
    Ok(Built { exporter, web })
}

impl Reload for Reloader {
    fn reload(&self) -> ReloadFuture<'_> {
        Box::pin(async move { Reloader::reload(self).await.map_err(|e| e.to_string()) })
    }
}
