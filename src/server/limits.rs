//! The server's bounds on what clients can make it hold or do ([`Limits`]), and the warning
//! logged when one is reached ([`Throttled`]: at most one line a minute per bound, with how many
//! requests or connections it turned away since the last line).
//!
//! The bounds are applied where they bite: connections and the write timeout in [`super`], the
//! password checks in `auth`, the report renders in `report`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much the server lets its clients take. `Default` is what the program serves with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once (TLS handshakes included). One more is answered 503 (plain
    /// HTTP) or closed (TLS) at once.
    pub max_connections: usize,
    /// Reports rendered at once (each on a blocking thread).
    pub max_renders: usize,
    /// Requests waiting for a render; one more is answered 503 at once.
    pub max_render_waiters: usize,
    /// How long a response write may make no progress (a client that stopped reading) before
    /// the connection is closed.
    pub write_timeout: Duration,
    /// The most the server buffers of a request's head; a longer head is answered 431.
    pub read_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Prometheus keeps one connection per scrape target; far below the 1,024 file
            // descriptors a service gets by default, which the vCenter clients share.
            max_connections: 512,
            // A report of 40,000 VMs takes a core for a moment: two at a time leave the others
            // to the scrapes. Equal requests share one render (see `report`).
            max_renders: 2,
            max_render_waiters: 32,
            write_timeout: Duration::from_secs(30),
            // hyper's smallest allowed is 8 KiB; its default (~400 KiB) is far above any real
            // request head.
            read_buffer_bytes: 64 * 1024,
        }
    }
}

/// A warning that is logged at most once per [`Throttled::PERIOD`], counting what it covers.
pub(super) struct Throttled {
    last: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Throttled {
    const PERIOD: Duration = Duration::from_secs(60);

    pub(super) const fn new() -> Throttled {
        Throttled {
            last: Mutex::new(None),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence; `Some(n)` when the warning is due, `n` the occurrences since the
    /// last one logged (this one included).
    pub(super) fn due(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = match self.last.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Self::PERIOD) {
            return None;
        }
        *last = Some(now);
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_warning_is_due_once_a_period_and_counts_what_it_covers() {
        let warning = Throttled::new();
        assert_eq!(warning.due(), Some(1));
        assert_eq!(warning.due(), None);
        assert_eq!(warning.due(), None);
        *warning.last.lock().unwrap() = Some(Instant::now() - Throttled::PERIOD);
        assert_eq!(warning.due(), Some(3));
    }
}
