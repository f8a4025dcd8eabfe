//! The publish/feed channel every source writes through: a [`Publisher`] that only the
//! source's own task holds, and any number of cheap [`Feed`]s that read the latest
//! [`Published`] snapshot (an immutable value with a version that moves whenever the value does,
//! and the source's [`SourceStatus`]). It is a `tokio::sync::watch` channel with versions.
//!
//! It sits at the bottom, beside the backup rules, so that the inventory mirror
//! ([`crate::vsphere::mirror`]) publishes through it without knowing of sources, and
//! [`crate::source`] builds on it (and re-exports it). It knows no source, no vCenter, no
//! configuration: which sources exist and how a target holds them is [`crate::source`]'s.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// How a source is doing, as the status metrics report it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    /// True once the source has finished its first attempt to sync, in sync or failed.
    pub attempted: bool,
    /// True while the published value is current.
    pub synced: bool,
    /// Unix time of the last change applied or confirmed current.
    pub last_update_seconds: f64,
    /// How long the source's last full sync took (the mirror's full retrieval, a counter
    /// cycle, an event read).
    pub sync_seconds: f64,
    /// The last failure, until the source is in sync again. Never holds a secret.
    pub error: Option<String>,
}

/// One immutable snapshot of a source. `version` changes whenever `value` does (and only
/// then), so output rendered from a value can be cached on it.
#[derive(Debug)]
pub struct Published<T> {
    pub version: u64,
    /// `None` while the source is not in sync: nothing stale is served.
    pub value: Option<Arc<T>>,
    pub status: SourceStatus,
}

impl<T> Clone for Published<T> {
    fn clone(&self) -> Self {
        Published {
            version: self.version,
            value: self.value.clone(),
            status: self.status.clone(),
        }
    }
}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Published {
            version: 0,
            value: None,
            status: SourceStatus::default(),
        }
    }
}

/// The writing side of a source: only its own task holds it.
#[derive(Debug)]
pub struct Publisher<T> {
    tx: watch::Sender<Arc<Published<T>>>,
}

/// The reading side: cheap to clone, never blocks for longer than a pointer copy.
#[derive(Debug)]
pub struct Feed<T> {
    rx: watch::Receiver<Arc<Published<T>>>,
}

impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Feed {
            rx: self.rx.clone(),
        }
    }
}

/// A publisher and the first feed of a new source, which has published nothing yet.
pub fn channel<T>() -> (Publisher<T>, Feed<T>) {
    let (tx, rx) = watch::channel(Arc::new(Published::default()));
    (Publisher { tx }, Feed { rx })
}

impl<T> Publisher<T> {
    /// Publishes a new value (in sync) or its absence (`None`, out of sync, with the error
    /// in `status`); the version moves on either way.
    pub fn publish(&self, value: Option<Arc<T>>, status: SourceStatus) {
        self.tx.send_modify(|current| {
            *current = Arc::new(Published {
                version: current.version + 1,
                value,
                status,
            });
        });
    }

    /// Changes the status only (e.g. the confirmation that the value is still current);
    /// the value and its version stay, so nothing is rendered again.
    pub fn set_status(&self, change: impl FnOnce(&mut SourceStatus)) {
        self.tx.send_modify(|current| {
            let mut status = current.status.clone();
            change(&mut status);
            *current = Arc::new(Published {
                version: current.version,
                value: current.value.clone(),
                status,
            });
        });
    }

    /// What was published last.
    pub fn latest(&self) -> Arc<Published<T>> {
        self.tx.borrow().clone()
    }

    /// A new reading side.
    pub fn feed(&self) -> Feed<T> {
        Feed {
            rx: self.tx.subscribe(),
        }
    }
}

impl<T> Feed<T> {
    /// The latest snapshot.
    pub fn latest(&self) -> Arc<Published<T>> {
        self.rx.borrow().clone()
    }

    /// Waits until the source is in sync and returns its value (at once when it is).
    pub async fn value(&self) -> Arc<T> {
        let mut rx = self.rx.clone();
        loop {
            if let Some(value) = rx.borrow_and_update().value.clone() {
                return value;
            }
            if rx.changed().await.is_err() {
                // The source is gone for good: nothing will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until the source is back in sync after having been out of sync: when it is in
    /// sync now, for it to lose sync first. Another source of the same vCenter waiting out a
    /// backoff learns this way that vCenter answers again.
    pub async fn back_in_sync(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|p| p.value.is_none()).await.is_err()
            || rx.wait_for(|p| p.value.is_some()).await.is_err()
        {
            // The source is gone for good: nothing will come.
            std::future::pending::<()>().await;
        }
    }

    /// Waits until the source is in sync (at once when it is); false when the source is gone
    /// for good.
    pub async fn in_sync(&self) -> bool {
        let mut rx = self.rx.clone();
        rx.wait_for(|p| p.value.is_some()).await.is_ok()
    }

    /// Waits until the source is out of sync (at once when it is); false when the source is
    /// gone for good.
    pub async fn out_of_sync(&self) -> bool {
        let mut rx = self.rx.clone();
        rx.wait_for(|p| p.value.is_none()).await.is_ok()
    }

    /// Waits until the source has tried to sync once (in sync or failed), at most `timeout`;
    /// returns the latest snapshot either way.
    pub async fn settled(&self, timeout: Duration) -> Arc<Published<T>> {
        let _ = tokio::time::timeout(timeout, self.attempted()).await;
        self.latest()
    }

    /// Waits until the published version is another than `version` (at once when it is):
    /// true, or false when the source is gone for good.
    pub async fn moved_from(&self, version: u64) -> bool {
        let mut rx = self.rx.clone();
        rx.wait_for(|p| p.version != version).await.is_ok()
    }

    /// Waits until the source has tried to sync once (in sync or failed), or is gone for good.
    pub async fn attempted(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|p| p.status.attempted).await;
    }
}

/// The current Unix time in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_for_the_next_version_ignores_status_changes_and_ends_when_the_source_does() {
        let (publisher, feed) = channel::<u32>();
        let version = feed.latest().version;
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.moved_from(version).await }
        });
        // One thread: each yield lets the waiting task run until it waits again.
        tokio::task::yield_now().await;
        publisher.set_status(|s| s.attempted = true);
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a status change is no new version");
        publisher.publish(Some(Arc::new(1)), SourceStatus::default());
        assert!(waiting.await.unwrap(), "a new version");
        let version = feed.latest().version;
        assert!(feed.moved_from(version - 1).await, "moved already: at once");
        drop(publisher);
        assert!(!feed.moved_from(version).await, "the source is gone");
    }

    #[tokio::test]
    async fn status_changes_keep_the_version_and_values_move_it() {
        let (publisher, feed) = channel::<u32>();
        assert_eq!(feed.latest().version, 0);
        publisher.publish(
            Some(Arc::new(7)),
            SourceStatus {
                attempted: true,
                synced: true,
                ..SourceStatus::default()
            },
        );
        let first = feed.latest();
        assert_eq!((first.version, first.value.as_deref()), (1, Some(&7)));
        publisher.set_status(|s| s.last_update_seconds = 42.0);
        let second = feed.latest();
        assert_eq!(second.version, 1);
        assert_eq!(second.status.last_update_seconds, 42.0);
        assert_eq!(second.value.as_deref(), Some(&7));
        publisher.publish(None, SourceStatus::default());
        assert_eq!(feed.latest().version, 2);
        assert!(feed.latest().value.is_none());
    }

    #[tokio::test]
    async fn settled_waits_for_the_first_attempt_and_no_longer() {
        let (publisher, feed) = channel::<u32>();
        let early = feed.settled(Duration::from_millis(20)).await;
        assert!(!early.status.attempted, "nothing attempted yet");
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.settled(Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        publisher.publish(
            None,
            SourceStatus {
                attempted: true,
                error: Some("refused".into()),
                ..SourceStatus::default()
            },
        );
        let settled = waiting.await.unwrap();
        assert!(settled.status.attempted);
        assert_eq!(settled.status.error.as_deref(), Some("refused"));
    }

    #[tokio::test]
    async fn back_in_sync_waits_for_a_loss_then_a_recovery() {
        let (publisher, feed) = channel::<u32>();
        publisher.publish(Some(Arc::new(1)), SourceStatus::default());
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.back_in_sync().await }
        });
        // In sync, and a new value in sync: no recovery yet.
        publisher.publish(Some(Arc::new(2)), SourceStatus::default());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        publisher.publish(None, SourceStatus::default());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        publisher.publish(Some(Arc::new(3)), SourceStatus::default());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("back in sync after a loss")
            .unwrap();
        // Out of sync when called: the next value in sync ends the wait.
        publisher.publish(None, SourceStatus::default());
        let waiting = tokio::spawn(async move { feed.back_in_sync().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        publisher.publish(Some(Arc::new(4)), SourceStatus::default());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("back in sync")
            .unwrap();
    }
}
