//! The rules of the backup checks, as pure functions over values already read: when a VM was
//! last backed up according to the backup products' custom attributes and notes
//! ([`last_backup`]), when a blackout window is open ([`blackout`]), which backup consistency a
//! VM can get ([`consistency`]), how custom attribute names become label names ([`labels`]),
//! and what an event of vCenter's history means for the snapshot checks ([`history`]).
//!
//! Nothing here does I/O, reads a clock or knows Prometheus: the configuration builds these
//! types once ([`crate::config`]), sources and collectors apply them.

pub mod blackout;
pub mod consistency;
pub mod history;
pub mod labels;
pub mod last_backup;
