//! Sources: what a vCenter target follows in the background. Each source is a task that talks
//! to vCenter (or watches the clock) on its own cadence and publishes an immutable snapshot of
//! what it knows, a [`Published`], through a [`Publisher`]. Scrapes only read the latest
//! snapshot through a [`Feed`]; they never wait on vCenter once a source has tried once.
//!
//! The inventory mirror ([`crate::vsphere::mirror`]) is the first source and every target has
//! it; the others are listed once in [`SOURCES`] and started by the target after it, with the
//! mirror's feed at hand (hosts and VMs come from there). Adding a source is a file of its own
//! plus a row in that table: the target and the server stay as they are.
//!
//! It does not know how a snapshot becomes metrics (see [`crate::collector`]) nor how vCenter is
//! reached (see [`crate::vsphere`]).

pub mod events;
pub mod perf;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::config::{Config, VcenterConfig};
use crate::vsphere::{Client, Inventory};

/// The name of the inventory mirror among the sources.
pub const INVENTORY: &str = "inventory";

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
        let mut rx = self.rx.clone();
        let wait = rx.wait_for(|p| p.status.attempted);
        let _ = tokio::time::timeout(timeout, wait).await;
        self.latest()
    }
}

/// A value of any source, as collectors receive it.
pub type AnyValue = dyn Any + Send + Sync;

/// A source's snapshot with its value's type erased, so one target holds sources of any kind.
#[derive(Clone)]
pub struct Erased {
    pub name: &'static str,
    pub version: u64,
    pub value: Option<Arc<AnyValue>>,
    pub status: SourceStatus,
}

/// A future a running source hands out; boxed so [`RunningSource`] stays object-safe.
pub type Settling<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A started source, as its target holds it.
pub trait RunningSource: Send + Sync {
    fn name(&self) -> &'static str;
    /// The latest snapshot.
    fn latest(&self) -> Erased;
    /// Resolves once the source has tried to sync once.
    fn settled(&self) -> Settling<'_>;
    /// Stops the source's task (its session stays: the client is shared).
    fn stop(&self);
}

/// The usual running source: a feed and the task that writes it, aborted on drop.
pub struct Task<T> {
    name: &'static str,
    feed: Feed<T>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Task<T> {
    pub fn new(name: &'static str, feed: Feed<T>, task: tokio::task::JoinHandle<()>) -> Self {
        Task { name, feed, task }
    }

    pub fn feed(&self) -> &Feed<T> {
        &self.feed
    }
}

impl<T: Send + Sync + 'static> RunningSource for Task<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn latest(&self) -> Erased {
        let p = self.feed.latest();
        Erased {
            name: self.name,
            version: p.version,
            value: p.value.clone().map(|v| v as Arc<AnyValue>),
            status: p.status.clone(),
        }
    }

    fn settled(&self) -> Settling<'_> {
        Box::pin(async move {
            let mut rx = self.feed.rx.clone();
            let _ = rx.wait_for(|p| p.status.attempted).await;
        })
    }

    fn stop(&self) {
        self.task.abort();
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a source gets when its target starts it.
pub struct StartContext<'a> {
    pub vcenter: &'a VcenterConfig,
    /// The target's client: one session shared by all its sources.
    pub client: Arc<Client>,
    pub config: Arc<Config>,
    /// The inventory mirror's feed, for sources that work on its hosts or VMs.
    pub inventory: Feed<Inventory>,
}

/// A kind of source, listed in [`SOURCES`].
pub trait SourceKind: Sync {
    fn name(&self) -> &'static str;
    /// Starts the source for one vCenter, or `None` when the configuration turns it off.
    /// Must not block: the work happens in the task it spawns.
    fn start(&self, ctx: &StartContext<'_>) -> Option<Box<dyn RunningSource>>;
}

/// Every source besides the inventory mirror, in the order targets start them.
pub const SOURCES: &[&dyn SourceKind] = &[&perf::Perf, &events::EventsSource];

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

    #[tokio::test]
    async fn an_erased_value_downcasts_to_its_type() {
        let (publisher, feed) = channel::<String>();
        let task = Task::new("names", feed, tokio::spawn(async {}));
        publisher.publish(Some(Arc::new("x".to_string())), SourceStatus::default());
        let erased = task.latest();
        let value = erased.value.unwrap();
        assert_eq!(
            value.downcast_ref::<String>().map(String::as_str),
            Some("x")
        );
        assert!(value.downcast_ref::<u32>().is_none());
    }
}
