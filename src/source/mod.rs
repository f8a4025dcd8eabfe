//! Sources: what a vCenter target follows in the background. Each source is a task that talks
//! to vCenter (or watches the clock) on its own cadence and publishes an immutable snapshot of
//! what it knows, a [`Published`], through a [`Publisher`]. Scrapes only read the latest
//! snapshot through a [`Feed`]; they never wait on vCenter once a source has tried once. The
//! channel itself is [`crate::publish`], re-exported here.
//!
//! The inventory mirror ([`crate::vsphere::mirror`]) is the first source and every target has
//! it; the others are listed once in [`SOURCES`] and started by the target after it, with the
//! mirror's feed at hand (hosts and VMs come from there). Adding a source is a file of its own
//! plus a row in that table: the target and the server stay as they are.
//!
//! It does not know how a snapshot becomes metrics (see [`crate::collector`]) nor how vCenter is
//! reached (see [`crate::vsphere`]).
//!
//! `tags` reads vSphere tags from the Automation REST API with a session of its own.

pub mod events;
pub mod perf;
pub mod tags;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{Config, VcenterConfig};
pub use crate::publish::{Feed, Published, Publisher, SourceStatus, channel, unix_now};
use crate::vsphere::mirror::Mirror;
use crate::vsphere::{Client, Inventory};

/// The name of the inventory mirror among the sources.
pub const INVENTORY: &str = "inventory";

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

/// A wait for a source's next version that holds only the reading side of its feed (so it
/// keeps nothing alive): true when it moved, false when the source is gone for good. See
/// [`RunningSource::moved_from`].
pub type Moved = Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

/// Resolves as the first of `waits` that does (true at once when there are none).
pub fn first_of(mut waits: Vec<Moved>) -> Moved {
    Box::pin(std::future::poll_fn(move |cx| {
        if waits.is_empty() {
            return std::task::Poll::Ready(true);
        }
        for wait in &mut waits {
            if let std::task::Poll::Ready(moved) = wait.as_mut().poll(cx) {
                return std::task::Poll::Ready(moved);
            }
        }
        std::task::Poll::Pending
    }))
}

/// A started source, as its target holds it.
pub trait RunningSource: Send + Sync {
    fn name(&self) -> &'static str;
    /// The latest snapshot.
    fn latest(&self) -> Erased;
    /// Resolves once the source has tried to sync once.
    fn settled(&self) -> Settling<'_>;
    /// Resolves once the source has published another version than `version` (true), or is
    /// gone for good (false).
    fn moved_from(&self, version: u64) -> Moved;
    /// Stops the source's task (its session stays: the client is shared).
    fn stop(&self);
    /// Stops the source at shutdown, ending what it holds of its own in vCenter (the `tags`
    /// source's REST session) within `timeout`; by default only [`RunningSource::stop`].
    fn shutdown(&self, timeout: std::time::Duration) -> Settling<'_> {
        let _ = timeout;
        self.stop();
        Box::pin(async {})
    }
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
        erase(self.name, &self.feed)
    }

    fn settled(&self) -> Settling<'_> {
        Box::pin(self.feed.attempted())
    }

    fn moved_from(&self, version: u64) -> Moved {
        moved_from(&self.feed, version)
    }

    fn stop(&self) {
        self.task.abort();
    }
}

/// The inventory mirror is a source like the others to its target, under [`INVENTORY`]; it
/// lives in [`crate::vsphere::mirror`] and publishes through [`crate::publish`], so this is
/// where it becomes one.
impl RunningSource for Mirror {
    fn name(&self) -> &'static str {
        INVENTORY
    }

    fn latest(&self) -> Erased {
        erase(INVENTORY, self.feed())
    }

    fn settled(&self) -> Settling<'_> {
        Box::pin(self.feed().attempted())
    }

    fn moved_from(&self, version: u64) -> Moved {
        moved_from(self.feed(), version)
    }

    fn stop(&self) {
        Mirror::stop(self);
    }
}

/// The latest snapshot of `feed`, its value's type erased.
fn erase<T: Send + Sync + 'static>(name: &'static str, feed: &Feed<T>) -> Erased {
    let p = feed.latest();
    Erased {
        name,
        version: p.version,
        value: p.value.clone().map(|v| v as Arc<AnyValue>),
        status: p.status.clone(),
    }
}

/// [`Feed::moved_from`] on a copy of `feed`'s reading side, type-erased.
fn moved_from<T: Send + Sync + 'static>(feed: &Feed<T>, version: u64) -> Moved {
    let feed = feed.clone();
    Box::pin(async move { feed.moved_from(version).await })
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
    /// False when the configuration asks nothing of the source (the `tags` source without
    /// tag keys): then no collector's reading it starts it.
    fn wanted_by(&self, config: &Config) -> bool {
        let _ = config;
        true
    }
    /// Starts the source for one vCenter, or `None` when the configuration turns it off.
    /// Must not block: the work happens in the task it spawns.
    fn start(&self, ctx: &StartContext<'_>) -> Option<Box<dyn RunningSource>>;
}

/// Every source besides the inventory mirror, in the order targets start them.
pub const SOURCES: &[&dyn SourceKind] = &[&perf::Perf, &events::EventsSource, &tags::TagsSource];

#[cfg(test)]
mod tests {
    use super::*;

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
