//! The warning logged when one of the server's bounds is reached ([`Throttled`]: at most one
//! line a minute per bound, with how many requests it turned away since the last line).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
