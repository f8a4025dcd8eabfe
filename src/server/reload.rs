//! What the server needs of a reload: the exporter in service ([`ExporterSlot`]), which a
//! reload replaces whole, and the reload itself ([`Reload`]), which `POST /-/reload` runs.
//!
//! A request takes the exporter from the slot when it arrives and keeps it to the end, so a
//! scrape in flight during a reload completes with the configuration it started with. What a
//! reload reads, builds and swaps is in [`crate::reload`].

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use crate::exporter::Exporter;

/// The exporter in service.
pub struct ExporterSlot {
    current: RwLock<Arc<Exporter>>,
}

impl ExporterSlot {
    pub fn new(exporter: Arc<Exporter>) -> Arc<ExporterSlot> {
        Arc::new(ExporterSlot {
            current: RwLock::new(exporter),
        })
    }

    /// The exporter for a request that starts now.
    pub fn current(&self) -> Arc<Exporter> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `exporter` in service for the requests that follow; returns the one it replaces.
    pub fn replace(&self, exporter: Arc<Exporter>) -> Arc<Exporter> {
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::replace(&mut *current, exporter)
    }
}

/// A reload's outcome: `Err` carries the message `/-/reload` answers with (never a secret).
pub type ReloadFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The program's reload (see [`crate::reload::Reloader`]).
pub trait Reload: Debug + Send + Sync {
    /// Reads the configuration again and puts it in force, or keeps the old one and says why.
    fn reload(&self) -> ReloadFuture<'_>;
}
