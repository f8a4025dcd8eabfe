//! The incremental inventory mirror, the first source of every target: after one full
//! retrieval the inventory is kept current with `WaitForUpdatesEx` on a PropertyCollector of
//! our own, and each change is published as a new immutable [`Inventory`] (VMs are shared
//! between versions, so a publication copies pointers, not VMs). Scrapes read the latest
//! publication and never wait on vCenter.
//!
//! This file is the supervision: follow until something fails, publish the failure (nothing
//! stale is served), log in again at once when the session was lost, else back off, and start
//! over with a full retrieval. The SOAP calls are in [`protocol`], what updates do to the
//! inventory in [`apply`].
//!
//! A broken update wait (a timeout, a dropped connection) starts over with a full retrieval:
//! vCenter does not promise to send the same changes again for the same version, and the
//! simulator does not, so asking again could lose a change for good.
//!
//! It owns no HTTP and no metrics; the client owns the session.

mod alarms;
mod apply;
mod protocol;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use self::apply::{
    Filter, Fresh, Parsed, apply_update, list_delta, listed_vm, session_lost_in, windows_delta,
};
use self::protocol::OwnCollector;
use super::client::{Client, Session};
use super::error::{CallError, Error};
use super::model::{Inventory, MoId};
use super::properties::{DeviceScope, snapshot_vm_specs_for, windows_vm_specs};
use crate::publish::{self, Feed, Publisher, SourceStatus, unix_now};

/// Every this many empty update waits (10 minutes at the default 30 s wait) the VMs vCenter
/// holds are compared with the mirror's: a change that slipped through (a lost update) shows as
/// a difference, which, seen twice in a row, starts a resynchronisation.
const CONSISTENCY_CHECK_EVERY: u32 = 20;
/// Retry delays after a failure: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the mirror has done so far, for tests and the status metrics.
#[derive(Debug, Default)]
pub struct MirrorCounters {
    full_retrievals: AtomicU64,
    /// Update waits not answered within their bound (followed on by heartbeat).
    slow_waits: AtomicU64,
    /// Full retrievals after the first, by reason (a std lock: one increment at a time).
    resyncs: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl MirrorCounters {
    /// Full retrievals completed (1 after start, more after failures).
    pub fn full_retrievals(&self) -> u64 {
        self.full_retrievals.load(Ordering::Relaxed)
    }

    /// Update waits not answered within their wait plus the grace.
    pub fn slow_waits(&self) -> u64 {
        self.slow_waits.load(Ordering::Relaxed)
    }

    fn slow_wait(&self) {
        self.slow_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// Times the mirror stopped following and started over, by reason.
    pub fn resyncs(&self) -> Vec<(&'static str, u64)> {
        match self.resyncs.lock() {
            Ok(m) => m.iter().map(|(r, n)| (*r, *n)).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn resync(&self, reason: &'static str) {
        if let Ok(mut m) = self.resyncs.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }
}

/// A running mirror of one vCenter: its feed, and the task that writes it, aborted on drop.
pub struct Mirror {
    feed: Feed<Inventory>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<MirrorCounters>,
}

/// How a mirror reads: what the configuration decides of its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Which VMs `config.hardware.device` is read for: every VM while the `disks` collector
    /// is on, else the VMs with snapshots only.
    pub devices: DeviceScope,
}

impl Mirror {
    /// Starts following `client`'s vCenter in a background task, devices read for every VM.
    pub fn start(client: Arc<Client>) -> Mirror {
        Self::start_with(client, MirrorOptions::default())
    }

    /// Starts following `client`'s vCenter in a background task, reading as `options` say.
    pub fn start_with(client: Arc<Client>, options: MirrorOptions) -> Mirror {
        let (publisher, feed) = publish::channel();
        let counters = Arc::new(MirrorCounters::default());
        let follower = Follower {
            vcenter: client.vcenter().to_owned(),
            client,
            publisher,
            counters: counters.clone(),
            stale: std::sync::Mutex::new(Vec::new()),
            devices: options.devices,
            alarm_names: std::sync::Mutex::new(alarms::AlarmNames::default()),
        };
        let task = tokio::spawn(follower.run());
        Mirror {
            feed,
            task,
            counters,
        }
    }

    /// The published inventory.
    pub fn feed(&self) -> &Feed<Inventory> {
        &self.feed
    }

    /// Stops following (the session stays: the client is shared).
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn counters(&self) -> &MirrorCounters {
        &self.counters
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why following stopped.
#[derive(Debug)]
enum Stop {
    Call(Error),
    /// A change that cannot be applied as sent; a full retrieval puts it right.
    Resync(String),
    /// The consistency check found the mirror's VMs differ from vCenter's.
    Inconsistent(String),
}

impl Stop {
    /// The `reason` label of `vsphere_resyncs_total`.
    fn reason(&self) -> &'static str {
        match self {
            Stop::Call(e) if e.failure.is_not_authenticated() => "session_lost",
            Stop::Call(e) if e.failure.is_invalid_login() => "login",
            Stop::Call(e) if matches!(e.failure, super::CallError::LoginSuspended(_)) => "login",
            Stop::Call(e) => e.failure.kind(),
            Stop::Resync(_) => "unappliable_change",
            Stop::Inconsistent(_) => "consistency_check",
        }
    }

    /// True when the client has logged the failure already (a refused login).
    fn logged_by_client(&self) -> bool {
        self.reason() == "login"
    }

    /// When the failed request was sent, for [`Client::claim_incident`].
    fn sent(&self) -> Option<Instant> {
        match self {
            Stop::Call(e) => e.sent,
            Stop::Resync(_) | Stop::Inconsistent(_) => None,
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Call(e) => write!(f, "{e}"),
            Stop::Resync(why) => write!(f, "resynchronizing: {why}"),
            Stop::Inconsistent(why) => write!(f, "resynchronizing: consistency check: {why}"),
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Call(e)
    }
}

pub(super) struct Follower {
    client: Arc<Client>,
    vcenter: String,
    publisher: Publisher<Inventory>,
    counters: Arc<MirrorCounters>,
    /// Collectors and views whose destruction failed, with their session (a std lock: held
    /// for a push or a drain only).
    stale: std::sync::Mutex<Vec<(Session, super::model::MoRef)>>,
    /// Which VMs the devices are read for.
    devices: DeviceScope,
    /// The names of triggered alarms read so far (a std lock: never held across a call).
    alarm_names: std::sync::Mutex<alarms::AlarmNames>,
}

impl Follower {
    async fn run(self) {
        let mut backoff = BACKOFF_FIRST;
        let mut relogged = false;
        loop {
            let started = Instant::now();
            let stop = self.follow().await;
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_FIRST;
            }
            let reason = stop.reason();
            self.counters.resync(reason);
            let message = stop.to_string();
            self.publish_failure(&message);
            // A lost session (expired, or vCenter restarted) is cured by a login: once at once,
            // then with the backoff should it keep happening.
            if reason == "session_lost" && !relogged {
                relogged = true;
                info!(vcenter = %self.vcenter, error = %message, "session lost; logging in again");
                continue;
            }
            relogged = false;
            // One warning per incident: the first failure since a call last succeeded, whichever
            // source of this vCenter met it; retries and the other sources log debug lines.
            if stop.logged_by_client() || !self.client.claim_incident(stop.sent()) {
                debug!(vcenter = %self.vcenter, error = %message, "mirror failed again");
            } else {
                warn!(vcenter = %self.vcenter, error = %message, retry_seconds = backoff.as_secs_f64(), "mirror lost vCenter; retrying with a full retrieval");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Publishes that the mirror is out of sync. The inventory goes with it: out of sync, it
    /// is not served, and the next full retrieval does not hold two inventories at once.
    fn publish_failure(&self, message: &str) {
        let last = self.publisher.latest();
        let status = SourceStatus {
            attempted: true,
            synced: false,
            error: Some(message.to_owned()),
            ..last.status.clone()
        };
        self.publisher.publish(None, status);
    }

    /// Full retrieval, then updates, until something fails.
    async fn follow(&self) -> Stop {
        let session = match self.client.session().await {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        let stop = match self.create_collector(&session).await {
            Ok(collector) => {
                let stop = self.follow_with(&session, &collector).await;
                self.retire(&session, &collector.objects);
                stop
            }
            Err(e) => e.into(),
        };
        if let Stop::Call(e) = &stop
            && e.failure.is_not_authenticated()
        {
            self.client.invalidate(&session).await;
        }
        stop
    }

    async fn follow_with(&self, session: &Session, collector: &OwnCollector) -> Stop {
        let started = Instant::now();
        let mut version = String::new();
        let (mut inventory, listed) =
            match self.full_retrieval(session, collector, &mut version).await {
                Ok(done) => done,
                Err(stop) => return stop,
            };
        self.name_alarms(session, &mut inventory).await;
        let seconds = started.elapsed().as_secs_f64();
        let vms = inventory.vms.len();
        let recovered = self.publisher.latest().status.error.is_some();
        let inventory = Arc::new(inventory);
        self.publisher.publish(
            Some(inventory.clone()),
            SourceStatus {
                attempted: true,
                synced: true,
                last_update_seconds: unix_now(),
                sync_seconds: seconds,
                error: None,
            },
        );
        self.counters
            .full_retrievals
            .fetch_add(1, Ordering::Relaxed);
        self.client.incident_over();
        if recovered {
            info!(vcenter = %self.vcenter, vms, seconds, "mirror in sync again");
        } else {
            info!(vcenter = %self.vcenter, vms, seconds, "mirror in sync");
        }
        // vCenter answers again: what the last runs left on it goes now.
        self.destroy_stale(session).await;
        self.follow_updates(session, collector, version, listed, inventory)
            .await
    }

    /// The first WaitForUpdatesEx answers with the whole current state; it goes into a fresh
    /// inventory that replaces the old one only once complete, VMs with snapshots included.
    async fn full_retrieval(
        &self,
        session: &Session,
        collector: &OwnCollector,
        version: &mut String,
    ) -> Result<(Inventory, Listed), Stop> {
        let mut fresh = Fresh {
            inventory: Inventory::default(),
            pending: BTreeSet::new(),
            pending_windows: BTreeSet::new(),
            filters: collector.filters.clone(),
            devices: self.devices,
        };
        let mut listed = Listed::default();
        loop {
            let (head, applied) = self.wait(session, collector, version, fresh).await?;
            fresh = applied;
            let Some(head) = head else {
                // An empty answer while waiting for the ListViews: nothing more will come.
                if fresh.pending.is_empty() && fresh.pending_windows.is_empty() {
                    return Ok((fresh.inventory, listed));
                }
                return Err(Stop::Resync(format!(
                    "{} VMs with snapshots never reported their files, {} Windows guests their extraConfig",
                    fresh.pending.len(),
                    fresh.pending_windows.len()
                )));
            };
            *version = head.version;
            if head.truncated {
                continue;
            }
            let (add, remove) =
                list_delta(&mut fresh.inventory, &listed.snapshot_vms, self.devices);
            self.modify_list(
                session,
                &collector.list,
                &add,
                &remove,
                &mut listed.snapshot_vms,
            )
            .await?;
            fresh.pending.extend(add);
            fresh.pending.retain(|id| listed.snapshot_vms.contains(id));
            if let Some(windows_list) = &collector.windows_list {
                let (add, remove) = windows_delta(&mut fresh.inventory, &listed.windows_vms);
                self.modify_list(
                    session,
                    windows_list,
                    &add,
                    &remove,
                    &mut listed.windows_vms,
                )
                .await?;
                fresh.pending_windows.extend(add);
                fresh
                    .pending_windows
                    .retain(|id| listed.windows_vms.contains(id));
            }
            if fresh.pending.is_empty() && fresh.pending_windows.is_empty() {
                return Ok((fresh.inventory, listed));
            }
        }
    }

    /// Applies updates as they come and publishes each complete version, until something
    /// fails.
    async fn follow_updates(
        &self,
        session: &Session,
        collector: &OwnCollector,
        mut version: String,
        mut listed: Listed,
        mut inventory: Arc<Inventory>,
    ) -> Stop {
        // VMs that were in a ListView once: a collector may not announce them again when they
        // come back, so their properties are read directly.
        let mut ever_listed = listed.clone();
        let mut quiet_waits = 0u32;
        let mut suspect: Option<BTreeSet<MoId>> = None;
        loop {
            let (head, parsed) = match self
                .wait(session, collector, &version, Parsed::default())
                .await
            {
                Ok(answer) => answer,
                Err(e) => return e.into(),
            };
            // A destroy that failed is tried again while vCenter answers, not only after the
            // next full retrieval (which may never come).
            self.destroy_stale(session).await;
            let Some(head) = head else {
                // No change within the wait: the mirror is confirmed current, and now and then
                // checked against vCenter.
                quiet_waits += 1;
                if quiet_waits >= CONSISTENCY_CHECK_EVERY || suspect.is_some() {
                    quiet_waits = 0;
                    match self
                        .check_consistency(session, collector, &inventory, &mut suspect)
                        .await
                    {
                        Ok(None) => {}
                        Ok(Some(stop)) => return stop,
                        Err(e) => return e.into(),
                    }
                }
                // Alarms left unnamed by a failed read are asked for again when it is due.
                if self.alarm_names_due(&inventory)
                    && self
                        .name_alarms(session, Arc::make_mut(&mut inventory))
                        .await
                {
                    self.publish_current(&inventory);
                    continue;
                }
                self.publisher
                    .set_status(|s| s.last_update_seconds = unix_now());
                continue;
            };
            version = head.version;
            // Copies the map of VMs (pointers) when a scrape still holds the last version.
            let working = Arc::make_mut(&mut inventory);
            let updates = parsed.updates.len();
            for (filter, update) in parsed.updates {
                let filter = match collector.filters.kind(&filter) {
                    Ok(f) => f,
                    Err(why) => return Stop::Resync(why),
                };
                let unlisted = match filter {
                    Filter::Inventory | Filter::Alarms => false,
                    Filter::SnapshotVms => !listed_vm(&update, &listed.snapshot_vms),
                    Filter::WindowsVms => !listed_vm(&update, &listed.windows_vms),
                };
                if unlisted {
                    // A VM no longer in the list: what the list read of it no longer matters.
                    continue;
                }
                if let Some(path) = session_lost_in(&update) {
                    // Not a resync of this session: log in again at once.
                    return Stop::Call(Error {
                        vcenter: self.vcenter.clone(),
                        call: "WaitForUpdatesEx",
                        failure: CallError::SessionLost(path),
                        sent: None,
                    });
                }
                if let Err(why) = apply_update(working, filter, update, self.devices) {
                    return Stop::Resync(why);
                }
            }
            debug!(vcenter = %self.vcenter, updates, truncated = head.truncated, "mirror updated");
            if head.truncated {
                // More of the same version follows; publish it whole.
                continue;
            }
            let (add, remove) = list_delta(working, &listed.snapshot_vms, self.devices);
            if let Err(e) = self
                .modify_list(
                    session,
                    &collector.list,
                    &add,
                    &remove,
                    &mut listed.snapshot_vms,
                )
                .await
            {
                return e.into();
            }
            let back = returning(&add, &mut ever_listed.snapshot_vms);
            if let Err(e) = self
                .fetch_vm_properties(
                    session,
                    &back,
                    &snapshot_vm_specs_for(self.devices),
                    working,
                )
                .await
            {
                return e.into();
            }
            if let Some(windows_list) = &collector.windows_list {
                let (add, remove) = windows_delta(working, &listed.windows_vms);
                if let Err(e) = self
                    .modify_list(
                        session,
                        windows_list,
                        &add,
                        &remove,
                        &mut listed.windows_vms,
                    )
                    .await
                {
                    return e.into();
                }
                let back = returning(&add, &mut ever_listed.windows_vms);
                if let Err(e) = self
                    .fetch_vm_properties(session, &back, &windows_vm_specs(), working)
                    .await
                {
                    return e.into();
                }
            }
            self.name_alarms(session, working).await;
            self.publish_current(&inventory);
        }
    }

    /// Publishes a new version of the inventory while following updates.
    fn publish_current(&self, inventory: &Arc<Inventory>) {
        let sync_seconds = self.publisher.latest().status.sync_seconds;
        self.publisher.publish(
            Some(inventory.clone()),
            SourceStatus {
                attempted: true,
                synced: true,
                last_update_seconds: unix_now(),
                sync_seconds,
                error: None,
            },
        );
    }
}

impl Follower {
    /// Compares the VMs vCenter holds with the mirror's. A difference can be a change still
    /// on its way, so it counts only when the next check, one quiet wait later, finds the same
    /// VMs differing: then the mirror has lost an update and starts over.
    async fn check_consistency(
        &self,
        session: &Session,
        collector: &OwnCollector,
        inventory: &Inventory,
        suspect: &mut Option<BTreeSet<MoId>>,
    ) -> Result<Option<Stop>, Error> {
        let held = self.vms_in_view(session, &collector.view).await?;
        let mirrored: BTreeSet<&MoId> = inventory.vms.keys().collect();
        let differ: BTreeSet<MoId> = held
            .iter()
            .filter(|id| !mirrored.contains(id))
            .chain(mirrored.iter().copied().filter(|id| !held.contains(*id)))
            .cloned()
            .collect();
        if differ.is_empty() {
            *suspect = None;
            return Ok(None);
        }
        let again = suspect.as_ref().is_some_and(|s| !s.is_disjoint(&differ));
        if !again {
            debug!(vcenter = %self.vcenter, differ = differ.len(), "mirror differs from vCenter; checking again after the next wait");
            *suspect = Some(differ);
            return Ok(None);
        }
        Ok(Some(Stop::Inconsistent(format!(
            "{} VMs in vCenter, {} in the mirror ({} differ, e.g. {})",
            held.len(),
            inventory.vms.len(),
            differ.len(),
            differ.iter().next().map(String::as_str).unwrap_or("")
        ))))
    }
}

/// The VMs in our ListViews: those with snapshots, and the Windows guests (where the
/// extraConfig of Windows guests is read through a list).
#[derive(Debug, Clone, Default)]
struct Listed {
    snapshot_vms: BTreeSet<MoId>,
    windows_vms: BTreeSet<MoId>,
}

/// The VMs of `added` that were listed before (a collector may not announce them again), and
/// records them all as listed once.
fn returning(added: &[MoId], ever: &mut BTreeSet<MoId>) -> Vec<MoId> {
    let back = added
        .iter()
        .filter(|id| ever.contains(*id))
        .cloned()
        .collect();
    ever.extend(added.iter().cloned());
    back
}
