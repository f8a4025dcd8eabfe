//! The vSphere side: a SOAP 1.1 client for vCenter and the typed inventory it fills. It knows
//! nothing of Prometheus.
//!
//! - [`soap`]: request envelopes (pure functions).
//! - [`xml`]: reading answers and faults, namespace-aware and object by object.
//! - [`inventory`]: which properties are asked for and how they become the [`model`].
//! - [`client`]: transport, session, re-login; the only module that does I/O.

pub mod client;
pub mod error;
pub mod inventory;
pub mod mirror;
pub mod model;
pub mod soap;
pub mod xml;

pub use client::Client;
pub use error::{CallError, Error, Fault};
pub use model::Inventory;
