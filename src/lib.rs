//! vsphere_backup_exporter: a Prometheus exporter for everything that quietly breaks
//! virtual-machine backups on VMware vSphere (leftover snapshots, quiescing, VMware Tools, …).
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that tests drive the real code:
//! - [`vsphere`]: the SOAP client, the inventory mirror and the typed model; knows nothing of
//!   Prometheus.
//! - [`source`]: what a vCenter target follows in the background (the mirror first), each
//!   publishing immutable versioned snapshots.
//! - [`collector`]: turns sources' snapshots into metric families, one file per concern, with
//!   the catalogue of every metric.
//! - [`exporter`]: one [`exporter::Target`] per configured vCenter (built without contacting
//!   anything, started once listening) and the pages scrapes are served from, cached per
//!   version of what they read.
//! - [`server`]: HTTP (`/metrics`, `/probe`, `/-/healthy`, `/-/ready`, `/`).
//! - [`config`]: the strict YAML configuration.
//! - [`publish`]: the publish/feed channel sources (the mirror among them) write through.
//! - [`secret`]: the [`secret::Secret`] wrapper both the configuration and the client use.
//! - [`report`]: the snapshot report (`/report`, CSV, JSON, the `report` command).
//! - [`webconfig`]: the exporter-toolkit web configuration (TLS, basic auth, headers).
//! - [`reload`]: reading the configuration again and swapping it in, without a restart.
//! - [`cli`]: flags, logging, and the program's run loop.

#![forbid(unsafe_code)]

pub mod backup;
pub mod cli;
pub mod collector;
pub mod config;
pub mod exporter;
pub mod publish;
pub mod reload;
pub mod report;
pub mod secret;
pub mod server;
pub mod source;
pub mod vsphere;
pub mod webconfig;

/// The version of this build, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision of this build, when the build script could tell it.
pub const REVISION: &str = match option_env!("VSPHERE_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
