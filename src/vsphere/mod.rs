//! The vSphere side: a SOAP 1.1 client for vCenter and the typed inventory it fills. It knows
//! nothing of Prometheus.
//!
//! - [`soap`]: request envelopes (pure functions).
//! - [`xml`]: reading answers and faults, namespace-aware and object by object.
//! - [`properties`]: which properties are asked for (one table of property paths) and how
//!   their values become the [`model`]; [`properties::backup`] decodes the backup checks' own.
//! - [`perf`]: the PerformanceManager's host counters: envelopes, parsers, batching.
//! - [`perf_poll`]: one vCenter's host counters cycle by cycle (state between cycles, batches).
//! - [`events`]: the event history follower, a source of its own (`EventHistoryCollector`).
//! - [`client`]: transport, the one session per vCenter that every source shares, re-login,
//!   the pause after a refused login; with [`mirror`] and [`rest`], the only modules that do I/O.
//! - [`mirror`]: the inventory mirror, the first source of a target (`WaitForUpdatesEx`).
//! - [`rest`]: the Automation REST API's tagging calls, with a session of their own (tags).

pub mod client;
pub mod error;
pub mod events;
pub mod mirror;
pub mod model;
pub mod names;
pub mod perf;
pub mod perf_poll;
pub mod properties;
pub mod rest;
pub mod soap;
pub mod xml;

pub use client::Client;
pub use error::{CallError, Error, Fault};
pub use model::Inventory;
