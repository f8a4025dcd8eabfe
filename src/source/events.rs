//! The event follower, a source per vCenter: it reads vCenter's event history of snapshot and
//! consolidation tasks, consolidation events and reconfigurations through an
//! `EventHistoryCollector` of its own, and publishes what [`Ledger`] makes of it.
//!
//! At start (and after any failure) it reads back the configured window (`events.read_back`,
//! 24 h by default) so the last-task metrics are right after a restart; events are applied
//! once by key, so reading back again never counts twice. Then it follows the collector's
//! `latestPage` with `WaitForUpdatesEx` on a PropertyCollector of its own (new events show at
//! once) and reads the events after its position with `ReadNextEvents` on every wake-up (what a
//! page too small for a burst would miss); where vCenter refuses the filter on `latestPage`,
//! it reads on an interval instead (`events.poll_interval`, 10 s). A TaskEvent is posted when
//! its task is queued: the outcome of the tasks read back comes from vCenter's task history
//! (one `TaskHistoryCollector` over the window), since vCenter drops a finished Task object
//! within minutes; tasks still running are followed by reading their `info`, 200 to a call,
//! until they end. A lost session is logged in again and everything recreated, reading back
//! from the later of the window's start and `read_back` before now.
//!
//! It needs the inventory (to tell whether a VM held a snapshot when it was reconfigured) and
//! waits for the mirror's first sync before it reads back. It owns no metrics
//! ([`crate::collector::events`] turns the ledger into them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Feed, Publisher, RunningSource, SourceKind, SourceStatus, StartContext, Task};
use crate::backup::history::{Creation, EVENT_TYPE_IDS, Event, Ledger};
use crate::config::EventsConfig;
use crate::vsphere::client::{ChannelReader, Session};
use crate::vsphere::error::{CallError, Error, ParseError};
use crate::vsphere::model::MoRef;
use crate::vsphere::xml::{self, Node, UpdateSetHead};
use crate::vsphere::{Client, Inventory, events, soap};

/// The source's name: the `source` label.
pub const EVENTS: &str = "events";

/// Events a `ReadNextEvents` reads at most, and the collector's page while the history is read
/// back (the simulator reads back only what its page holds; vCenter reads the whole range).
const READ_PAGE: u32 = 1000;
/// The collector's `latestPage` while following: every new event sends the whole page, and it
/// only has to bridge the moment between two waits (`ReadNextEvents` reads the rest).
const FOLLOW_PAGE: u32 = 10;
/// The longest a `WaitForUpdatesEx` waits when no task is followed.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How much longer than its wait an update call may take.
const WAIT_GRACE: Duration = Duration::from_secs(8);
/// Tasks whose `info` one RetrievePropertiesEx reads.
const TASKS_PER_CALL: usize = 200;
/// How often keys and creations older than the window are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Retry delays after a failure.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The kind of source listed in [`super::SOURCES`].
pub struct EventsSource;

impl SourceKind for EventsSource {
    fn name(&self) -> &'static str {
        EVENTS
    }

    fn start(&self, ctx: &StartContext<'_>) -> Option<Box<dyn RunningSource>> {
        let settings = ctx.config.backup.events.clone();
        // Off in the configuration. (The target starts no source that no enabled collector
        // reads.)
        if !settings.enabled {
            return None;
        }
        let (publisher, feed) = super::channel();
        let follower = Follower {
            vcenter: ctx.vcenter.name.clone(),
            client: ctx.client.clone(),
            settings,
            inventory: ctx.inventory.clone(),
            publisher,
            ledger: Ledger::default(),
            began: super::unix_now(),
            pruned: Instant::now(),
            stale: Vec::new(),
        };
        Some(Box::new(Task::new(
            EVENTS,
            feed,
            tokio::spawn(follower.run()),
        )))
    }
}

/// Why following stopped.
type Failure = Error;

/// The collector and, when `latestPage` can be followed, the PropertyCollector doing it.
struct Followed {
    collector: MoRef,
    pc: Option<MoRef>,
}

struct Follower {
    vcenter: String,
    client: Arc<Client>,
    settings: EventsConfig,
    inventory: Feed<Inventory>,
    publisher: Publisher<Ledger>,
    ledger: Ledger,
    /// When the source started: the read-back window is counted from there.
    began: f64,
    /// When keys and creations older than the window were last forgotten: kept across
    /// failures, so a follower that fails every few minutes still prunes.
    pruned: Instant,
    /// Collectors of failed runs, with their session: destroyed once a read-back in the same
    /// session has succeeded (at once, a hung vCenter would cost a timeout each); those of
    /// another session went with it.
    stale: Vec<(Session, MoRef)>,
}

impl Follower {
    async fn run(mut self) {
        let mut backoff = BACKOFF_FIRST;
        let mut last_error: Option<String> = None;
        loop {
            let started = Instant::now();
            let failure = self.follow().await;
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_FIRST;
            }
            let message = failure.to_string();
            // One warning per incident: the vCenter's other sources may have logged it.
            if last_error.as_deref() == Some(message.as_str()) {
                debug!(vcenter = %self.vcenter, error = %message, "event follower failed again");
            } else if !self.client.claim_incident(failure.sent) {
                debug!(vcenter = %self.vcenter, error = %message, "event follower failed; the vCenter's failure is logged already");
            } else {
                warn!(vcenter = %self.vcenter, error = %message, retry_seconds = backoff.as_secs_f64(), "event follower lost vCenter; reading the history back again");
            }
            let last = self.publisher.latest();
            self.publisher.publish(
                None,
                SourceStatus {
                    attempted: true,
                    synced: false,
                    error: Some(message.clone()),
                    ..last.status.clone()
                },
            );
            last_error = Some(message);
            self.prune_when_due();
            // The mirror shares the session: once it is in sync again after losing vCenter,
            // vCenter answers, and waiting out the rest of the backoff would only delay the
            // events (and the cleanup of what the failed runs left on vCenter).
            tokio::time::sleep(BACKOFF_FIRST).await;
            tokio::select! {
                () = tokio::time::sleep(backoff.saturating_sub(BACKOFF_FIRST)) => {
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                () = self.inventory.back_in_sync() => {
                    debug!(vcenter = %self.vcenter, "the mirror is in sync again; the event follower retries");
                    backoff = BACKOFF_FIRST;
                }
            }
        }
    }

    /// Reads back, then follows, until something fails.
    async fn follow(&mut self) -> Failure {
        self.wait_for_inventory().await;
        let session = match self.client.session().await {
            Ok(s) => s,
            Err(e) => return e,
        };
        let failure = match self.create(&session).await {
            Ok(followed) => {
                let failure = self.follow_with(&session, &followed).await;
                self.retire(&session, &followed);
                failure
            }
            Err(e) => e,
        };
        if failure.failure.is_not_authenticated() {
            self.client.invalidate(&session).await;
        }
        failure
    }

    /// The history is read back only once the inventory is there: whether a VM held a
    /// snapshot when it was reconfigured is decided from it.
    async fn wait_for_inventory(&self) {
        while self.inventory.latest().value.is_none() {
            self.inventory.settled(Duration::from_secs(60)).await;
            if self.inventory.latest().value.is_none() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn create(&mut self, session: &Session) -> Result<Followed, Error> {
        let manager = session.content.event_manager.clone().ok_or_else(|| {
            self.error(
                "CreateCollectorForEvents",
                CallError::Malformed("the server has no EventManager".into()),
            )
        })?;
        let begin = self.collector_begin_time();
        let body = events::create_collector_for_events(&manager, EVENT_TYPE_IDS, &begin);
        let collector = self
            .returnval_moref(session, "CreateCollectorForEvents", body)
            .await?;
        let mut followed = Followed {
            collector,
            pc: None,
        };
        let body = events::set_collector_page_size(&followed.collector, READ_PAGE);
        let latest = match self
            .client
            .call("SetCollectorPageSize", session, body)
            .await
        {
            Ok(_) => self.follow_latest_page(session, &followed.collector).await,
            Err(e) => Err(e),
        };
        match latest {
            Ok(pc) => {
                followed.pc = pc;
                Ok(followed)
            }
            Err(e) => {
                self.retire(session, &followed);
                Err(e)
            }
        }
    }

    /// A PropertyCollector with a filter on the collector's `latestPage`; `None` when vCenter
    /// refuses it (then the history is read on an interval).
    async fn follow_latest_page(
        &mut self,
        session: &Session,
        collector: &MoRef,
    ) -> Result<Option<MoRef>, Error> {
        let body = soap::create_property_collector(&session.content.property_collector);
        let pc = self
            .returnval_moref(session, "CreatePropertyCollector", body)
            .await?;
        let body =
            events::create_object_filter(&pc, collector, "EventHistoryCollector", "latestPage");
        match self.client.call("CreateFilter", session, body).await {
            Ok(_) => Ok(Some(pc)),
            Err(e)
                if matches!(e.failure, CallError::Fault(_))
                    && !e.failure.is_not_authenticated() =>
            {
                info!(vcenter = %self.vcenter, error = %e, "latestPage cannot be followed; reading events on an interval");
                self.destroy_objects(session, &[pc]).await;
                Ok(None)
            }
            Err(e) => {
                self.stale.push((session.clone(), pc));
                Err(e)
            }
        }
    }

    async fn follow_with(&mut self, session: &Session, followed: &Followed) -> Failure {
        let started = Instant::now();
        let body = events::rewind_collector(&followed.collector);
        if let Err(e) = self.client.call("RewindCollector", session, body).await {
            return e;
        }
        if let Err(e) = self.read_next(session, &followed.collector).await {
            return e;
        }
        if let Err(e) = self.read_task_history(session).await {
            return e;
        }
        if let Err(e) = self.poll_tasks(session).await {
            return e;
        }
        let body = events::set_collector_page_size(&followed.collector, FOLLOW_PAGE);
        if let Err(e) = self
            .client
            .call("SetCollectorPageSize", session, body)
            .await
        {
            return e;
        }
        let sync_seconds = started.elapsed().as_secs_f64();
        self.publish(sync_seconds);
        // vCenter answers again: what failed runs of this session left on it goes now.
        self.destroy_stale(session).await;
        info!(vcenter = %self.vcenter, seconds = sync_seconds, pending_tasks = self.ledger.pending_tasks().len(), "event history read back");
        let mut version = String::new();
        loop {
            let before = self.ledger.version();
            let page = match &followed.pc {
                Some(pc) => self.wait_page(session, pc, &mut version).await,
                None => {
                    tokio::time::sleep(self.settings.poll_interval).await;
                    Ok(Vec::new())
                }
            };
            match page {
                Ok(page) => self.apply(&page).await,
                Err(e) => return e,
            }
            if let Err(e) = self.read_next(session, &followed.collector).await {
                return e;
            }
            if let Err(e) = self.poll_tasks(session).await {
                return e;
            }
            // A destroy that failed is tried again while vCenter answers, not only after the
            // next failure's read-back (which may never come).
            if !self.stale.is_empty() {
                self.destroy_stale(session).await;
            }
            self.prune_when_due();
            if self.ledger.version() != before {
                self.publish(sync_seconds);
            } else {
                self.publisher
                    .set_status(|s| s.last_update_seconds = super::unix_now());
            }
        }
    }

    /// One WaitForUpdatesEx on `latestPage`: the page's events.
    async fn wait_page(
        &mut self,
        session: &Session,
        pc: &MoRef,
        version: &mut String,
    ) -> Result<Vec<Event>, Error> {
        let wait = if self.ledger.pending_tasks().is_empty() {
            MAX_WAIT
        } else {
            self.settings.poll_interval.min(MAX_WAIT)
        };
        let seconds = u32::try_from(wait.as_secs().max(1)).unwrap_or(30);
        let body = soap::wait_for_updates_ex(pc, version, seconds, 100);
        let (head, page) = self
            .client
            .call_streaming(
                "WaitForUpdatesEx",
                session,
                body,
                Some(wait + WAIT_GRACE),
                Vec::new(),
                read_page,
            )
            .await?;
        if let Some(head) = head {
            *version = head.version;
        }
        Ok(page)
    }

    /// Reads the events after the collector's position until there are none.
    async fn read_next(&mut self, session: &Session, collector: &MoRef) -> Result<(), Error> {
        loop {
            let body = events::read_next_events(collector, READ_PAGE);
            let bytes = self.client.call("ReadNextEvents", session, body).await?;
            let page =
                events::read_events(&bytes).map_err(|e| self.error("ReadNextEvents", e.into()))?;
            if page.is_empty() {
                return Ok(());
            }
            self.apply(&page).await;
        }
    }

    /// The outcome of the tasks read back, from vCenter's task history: a TaskEvent is posted
    /// when its task is queued, and vCenter drops a finished Task object after a few minutes,
    /// so after a restart the history is where a night's tasks say how they ended. One
    /// TaskHistoryCollector over the window, read to its end and destroyed. A vCenter without
    /// one (a bare ESXi host) leaves the tasks to [`Self::poll_tasks`].
    async fn read_task_history(&mut self, session: &Session) -> Result<(), Error> {
        if self.ledger.pending_tasks().is_empty() {
            return Ok(());
        }
        let Some(manager) = session.content.task_manager.clone() else {
            return Ok(());
        };
        let begin = self.collector_begin_time();
        let body = events::create_collector_for_tasks(&manager, &begin);
        let collector = match self
            .returnval_moref(session, "CreateCollectorForTasks", body)
            .await
        {
            Ok(c) => c,
            Err(e)
                if matches!(e.failure, CallError::Fault(_))
                    && !e.failure.is_not_authenticated() =>
            {
                info!(vcenter = %self.vcenter, error = %e, "no task history; following the read-back tasks one by one");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let read = self.read_tasks(session, &collector).await;
        if let Err(e) = self.client.destroy(session, &collector).await {
            debug!(vcenter = %self.vcenter, error = %e, "destroying the task collector failed");
            self.stale.push((session.clone(), collector));
        }
        read
    }

    /// Reads a task collector from its start to its end; each followed task's final info ends
    /// it.
    async fn read_tasks(&mut self, session: &Session, collector: &MoRef) -> Result<(), Error> {
        let body = events::rewind_collector(collector);
        self.client.call("RewindCollector", session, body).await?;
        let mut read = 0usize;
        loop {
            let body = events::read_next_tasks(collector, READ_PAGE);
            let bytes = self.client.call("ReadNextTasks", session, body).await?;
            let infos =
                events::read_tasks(&bytes).map_err(|e| self.error("ReadNextTasks", e.into()))?;
            if infos.is_empty() {
                debug!(vcenter = %self.vcenter, tasks = read, pending = self.ledger.pending_tasks().len(), "task history read");
                return Ok(());
            }
            read += infos.len();
            for info in &infos {
                self.ledger.update_task(info);
            }
        }
    }

    /// Reads the `info` of every followed task, [`TASKS_PER_CALL`] to a call: an ended task is
    /// recorded, one vCenter no longer knows is forgotten.
    async fn poll_tasks(&mut self, session: &Session) -> Result<(), Error> {
        let pending = self.ledger.pending_tasks();
        for batch in pending.chunks(TASKS_PER_CALL) {
            let body = events::retrieve_tasks_info(&session.content.property_collector, batch);
            let infos = match self
                .client
                .call("RetrievePropertiesEx", session, body)
                .await
            {
                Ok(bytes) => events::read_tasks_info(&bytes)
                    .map_err(|e| self.error("RetrievePropertiesEx", e.into()))?,
                // A server that fails the whole call for one gone task: one at a time.
                Err(e) if is_not_found(&e) => {
                    self.poll_tasks_one_by_one(session, batch).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for info in &infos {
                self.ledger.update_task(info);
            }
            for task in batch {
                if !infos.iter().any(|i| &i.task == task) {
                    self.ledger.forget_task(task);
                }
            }
        }
        Ok(())
    }

    async fn poll_tasks_one_by_one(
        &mut self,
        session: &Session,
        tasks: &[String],
    ) -> Result<(), Error> {
        for task in tasks {
            let body = events::retrieve_task_info(&session.content.property_collector, task);
            match self
                .client
                .call("RetrievePropertiesEx", session, body)
                .await
            {
                Ok(bytes) => match events::read_task_info(&bytes) {
                    Ok(Some(info)) => self.ledger.update_task(&info),
                    Ok(None) => self.ledger.forget_task(task),
                    Err(e) => return Err(self.error("RetrievePropertiesEx", e.into())),
                },
                Err(e) if is_not_found(&e) => self.ledger.forget_task(task),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Applies events inside the window, each once, once the inventory is in sync: whether a
    /// VM held a snapshot is decided from it, and while it resyncs (minutes at 40,000 VMs) it
    /// has no answer. The collector keeps its position meanwhile, so nothing is lost.
    async fn apply(&mut self, page: &[Event]) {
        if page.is_empty() {
            return;
        }
        self.wait_for_inventory().await;
        self.apply_with(page);
    }

    /// Applies events against the inventory in sync now; `false` (and nothing applied) when
    /// there is none.
    fn apply_with(&mut self, page: &[Event]) -> bool {
        let start = self.window_start();
        let Some(inventory) = self.inventory.latest().value.clone() else {
            return false;
        };
        let held = |vm: &str, at: f64| held_snapshot(&inventory, vm, at);
        for event in page.iter().filter(|e| e.created_seconds >= start) {
            self.ledger.apply(event, held);
        }
        true
    }

    /// Where a new event or task collector starts (an `xsd:dateTime`): see [`collector_begin`].
    fn collector_begin_time(&self) -> String {
        let begin = collector_begin(
            self.window_start(),
            super::unix_now(),
            self.settings.read_back,
        );
        jiff::Timestamp::from_second(begin as i64)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// The oldest event time counted: the read-back window before the source started.
    fn window_start(&self) -> f64 {
        self.began - self.settings.read_back.as_secs_f64()
    }

    /// Forgets what is older than the window, every [`PRUNE_EVERY`].
    fn prune_when_due(&mut self) {
        if self.pruned.elapsed() >= PRUNE_EVERY {
            self.prune();
            self.pruned = Instant::now();
        }
    }

    fn prune(&mut self) {
        let Some(inventory) = self.inventory.latest().value.clone() else {
            return;
        };
        let horizon = super::unix_now() - self.settings.read_back.as_secs_f64() - 3600.0;
        self.ledger.prune(
            horizon,
            |vm| inventory.vms.contains_key(vm),
            |c| creation_still_needed(&inventory, c),
        );
    }

    fn publish(&self, sync_seconds: f64) {
        self.client.incident_over();
        self.publisher.publish(
            Some(Arc::new(self.ledger.clone())),
            SourceStatus {
                attempted: true,
                synced: true,
                last_update_seconds: super::unix_now(),
                sync_seconds,
                error: None,
            },
        );
    }

    /// Marks a run's collectors for destruction (see `stale`).
    fn retire(&mut self, session: &Session, followed: &Followed) {
        let objects = followed.pc.iter().chain([&followed.collector]);
        self.stale
            .extend(objects.map(|o| (session.clone(), o.clone())));
    }

    /// Destroys what failed runs of this session left; what belongs to another session is
    /// forgotten (it went with that session).
    async fn destroy_stale(&mut self, session: &Session) {
        let left: Vec<MoRef> = std::mem::take(&mut self.stale)
            .into_iter()
            .filter(|(s, _)| s.is_same(session))
            .map(|(_, o)| o)
            .collect();
        self.destroy_objects(session, &left).await;
    }

    /// Destroys collectors; one vCenter still holds after a failed call is kept for later.
    async fn destroy_objects(&mut self, session: &Session, objects: &[MoRef]) {
        for object in objects {
            if let Err(e) = self.client.destroy(session, object).await {
                debug!(vcenter = %self.vcenter, error = %e, object = %object.value, "destroying failed");
                self.stale.push((session.clone(), object.clone()));
            }
        }
    }

    async fn returnval_moref(
        &self,
        session: &Session,
        call: &'static str,
        body: String,
    ) -> Result<MoRef, Error> {
        let bytes = self.client.call(call, session, body).await?;
        let rv = xml::read_returnval(&bytes).map_err(|e| self.error(call, e.into()))?;
        rv.moref()
            .ok_or_else(|| self.error(call, CallError::Malformed("no object in the answer".into())))
    }

    fn error(&self, call: &'static str, failure: CallError) -> Error {
        Error {
            vcenter: self.vcenter.clone(),
            call,
            failure,
            sent: None,
        }
    }
}

/// The blocking-side parser of a WaitForUpdatesEx answer on `latestPage`: its events.
fn read_page(
    input: ChannelReader,
    page: &mut Vec<Event>,
) -> Result<Option<UpdateSetHead>, ParseError> {
    let limits = input.limits();
    xml::read_update_set(input, &limits, |_, cur| {
        let update = cur.node()?;
        for change in update.children_named("changeSet") {
            if change.text_of("name").map(str::trim) == Some("latestPage")
                && let Some(val) = change.child("val")
            {
                page.extend(events::page_events(val));
            }
        }
        missing_not_authenticated(&update)
    })
}

/// A `missingSet` saying the session is gone, as an error (vCenter reports it there too).
fn missing_not_authenticated(update: &Node) -> Result<(), ParseError> {
    for missing in update.children_named("missingSet") {
        let fault = missing.child("fault").and_then(|f| f.child("fault"));
        if fault.is_some_and(|f| xml::method_fault_kind(f) == "NotAuthenticated") {
            return Err(ParseError::Fault(crate::vsphere::Fault {
                kind: "NotAuthenticated".into(),
                message: "latestPage: session no longer authenticated".into(),
            }));
        }
    }
    Ok(())
}

/// A fault saying an object is gone.
fn is_not_found(e: &Error) -> bool {
    matches!(&e.failure, CallError::Fault(f) if f.kind == "ManagedObjectNotFound")
}

/// Where a new collector starts reading: the later of the window's start and `read_back`
/// before now, so a reconnect after days of uptime reads back one window, not the uptime.
fn collector_begin(window_start: f64, now: f64, read_back: Duration) -> f64 {
    window_start.max(now - read_back.as_secs_f64())
}

/// Whether the VM held a snapshot taken at or before `at` (a second of slack for clocks).
fn held_snapshot(inventory: &Inventory, vm: &str, at: f64) -> bool {
    inventory.vms.get(vm).is_some_and(|vm| {
        vm.snapshots()
            .iter()
            .any(|s| s.tree.create_time_seconds <= at + 1.0)
    })
}

/// A creation older than the window is kept while a snapshot of its VM may be the one it made.
fn creation_still_needed(inventory: &Inventory, c: &Creation) -> bool {
    inventory.vms.get(&c.vm).is_some_and(|vm| {
        vm.snapshots().iter().any(|s| {
            c.snapshot.as_deref() == Some(s.tree.snapshot.as_str())
                || (s.tree.create_time_seconds >= c.started_seconds - 1800.0
                    && c.complete_seconds
                        .is_none_or(|end| s.tree.create_time_seconds <= end + 5.0))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::history::EventKind;
    use crate::vsphere::client::ClientOptions;
    use crate::vsphere::model::{SnapshotInfo, SnapshotTree, Vm};

    const DAY: f64 = 86_400.0;

    fn follower(inventory: Feed<Inventory>) -> Follower {
        let options = ClientOptions {
            name: "vc01".into(),
            url: "https://127.0.0.1:9/sdk".parse().unwrap(),
            username: "u".into(),
            password: crate::config::Secret::new("p"),
            tls: Default::default(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            login_retry_interval: Duration::from_secs(600),
            max_response_size: 1 << 20,
            max_value_size: 1 << 20,
        };
        let (publisher, _) = super::super::channel();
        Follower {
            vcenter: "vc01".into(),
            client: Arc::new(Client::new(&options).unwrap()),
            settings: EventsConfig::default(),
            inventory,
            publisher,
            ledger: Ledger::default(),
            began: 10.0 * DAY,
            pruned: Instant::now(),
            stale: Vec::new(),
        }
    }

    fn grown_disk(key: i64, at: f64) -> Event {
        Event {
            key,
            created_seconds: at,
            user: "admin".into(),
            vm: Some("vm-1".into()),
            kind: EventKind::Reconfigured {
                disk_capacity_changed: true,
            },
        }
    }

    /// vm-1 with a snapshot taken at `taken`.
    fn with_snapshot(taken: f64) -> Inventory {
        let mut inv = Inventory::default();
        let mut vm = Vm {
            id: "vm-1".into(),
            ..Default::default()
        };
        vm.snapshot = Some(SnapshotInfo {
            current_snapshot: Some("snapshot-1".into()),
            root_snapshot_list: vec![SnapshotTree {
                snapshot: "snapshot-1".into(),
                create_time_seconds: taken,
                ..Default::default()
            }],
        });
        inv.vms.insert("vm-1".into(), Arc::new(vm));
        inv
    }

    #[test]
    fn a_new_collector_reads_back_one_window_however_long_the_uptime() {
        let read_back = Duration::from_secs(86_400);
        // Started on day 10, reconnecting on day 13: from day 12, not from day 9.
        assert_eq!(
            collector_begin(9.0 * DAY, 13.0 * DAY, read_back),
            12.0 * DAY
        );
        // Reconnecting within the first window: from the window's start.
        assert_eq!(collector_begin(9.0 * DAY, 9.5 * DAY, read_back), 9.0 * DAY);
    }

    #[tokio::test]
    async fn events_wait_for_an_inventory_in_sync_and_are_then_judged_against_it() {
        let (inventory, feed) = super::super::channel::<Inventory>();
        let mut f = follower(feed);
        let page = [grown_disk(7, 10.5 * DAY)];
        // The mirror resyncs: no inventory, nothing applied (not judged "no snapshot").
        assert!(!f.apply_with(&page));
        assert!(f.ledger.disk_changed_with_snapshots.is_empty());
        let status = SourceStatus {
            attempted: true,
            synced: true,
            ..Default::default()
        };
        inventory.publish(Some(Arc::new(with_snapshot(10.0 * DAY))), status);
        // The async path waits for it, then applies.
        tokio::time::timeout(Duration::from_secs(10), f.apply(&page))
            .await
            .unwrap();
        assert_eq!(f.ledger.disk_changed_with_snapshots["vm-1"], 1);
    }

    /// The timer is the follower's, not one run's: `run` calls this after every failure too.
    #[tokio::test]
    async fn pruning_is_due_by_the_followers_clock_not_a_runs() {
        let (inventory, feed) = super::super::channel::<Inventory>();
        inventory.publish(Some(Arc::new(with_snapshot(1.0))), SourceStatus::default());
        let mut f = follower(feed);
        f.began = super::super::unix_now();
        let old = grown_disk(7, f.began - 3.0 * DAY);
        let mut early = f.window_start() - 3.0 * DAY;
        f.ledger.apply(&old, |_, _| true);
        f.prune_when_due();
        assert!(
            !f.ledger.apply(&old, |_, _| true),
            "not due yet: still seen"
        );
        f.pruned = Instant::now() - PRUNE_EVERY - Duration::from_secs(1);
        f.prune_when_due();
        assert!(f.pruned.elapsed() < PRUNE_EVERY);
        early -= 1.0;
        let older = grown_disk(6, early);
        assert!(!f.ledger.apply(&older, |_, _| true), "below the pruned key");
        assert!(f.ledger.apply(&grown_disk(8, f.began), |_, _| true));
    }
}
