//! vsphere_backup_exporter: a Prometheus exporter for everything that quietly breaks
//! virtual-machine backups on VMware vSphere (leftover snapshots, quiescing, VMware Tools, …).
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that tests drive the real code:
//! - [`vsphere`]: the SOAP client and the typed inventory model; knows nothing of Prometheus.
//! - [`collector`]: turns an inventory into metric families, one file per concern.
//! - [`exporter`]: one [`exporter::Target`] per configured vCenter; shares collections between
//!   concurrent scrapes and renders the exposition text.
//! - [`server`]: HTTP (`/metrics`, `/probe`, `/-/healthy`, `/-/ready`, `/`).
//! - [`config`]: the strict YAML configuration.
//! - [`cli`]: flags, logging, and the program's `main`.

pub mod cli;
pub mod collector;
pub mod config;
pub mod exporter;
pub mod server;
pub mod source;
pub mod vsphere;

/// The version of this build, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision of this build, when the build script could tell it.
pub const REVISION: &str = match option_env!("VSPHERE_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};
