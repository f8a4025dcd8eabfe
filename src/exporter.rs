//! The exporter: one [`Target`] per configured vCenter. A target owns the vSphere client and its
//! session, runs at most one collection at a time (concurrent scrapes of one vCenter share it),
//! and renders the exposition text of its metrics. [`Exporter`] holds the targets and the
//! exporter's own long-lived metrics (build info, process).
//!
//! It does not own HTTP (see [`crate::server`]) nor what a metric means (see
//! [`crate::collector`]).

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;

/// All configured targets plus the exporter's own metrics.
pub struct Exporter {
    config: Arc<Config>,
}

impl Exporter {
    pub fn new(config: Arc<Config>) -> Self {
        Exporter { config }
    }

    /// The exposition text of every configured vCenter followed by the exporter's own metrics.
    /// `timeout` is the scrape's deadline (from `X-Prometheus-Scrape-Timeout-Seconds`).
    pub async fn metrics(&self, timeout: Option<Duration>) -> String {
        let _ = (timeout, &self.config);
        String::new()
    }

    /// The exposition text of one configured vCenter, or `None` when `target` names no
    /// configured vCenter (the server answers 400 and nothing is contacted).
    pub async fn probe(&self, target: &str, timeout: Option<Duration>) -> Option<String> {
        let _ = (target, timeout);
        None
    }

    /// True once the exporter can serve (its configuration is loaded and its targets built).
    pub fn is_ready(&self) -> bool {
        true
    }

    /// Logs out of every vCenter session; called on graceful shutdown.
    pub async fn shutdown(&self) {}
}
