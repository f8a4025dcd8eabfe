//! The incremental inventory mirror: after one full retrieval, the inventory is kept current
//! with `WaitForUpdatesEx` on a PropertyCollector of our own, so a scrape reads memory and
//! costs vCenter nothing.
//!
//! Two filters live on that collector: one over a ContainerView of the whole inventory with
//! the properties every object needs, and one over a ListView that holds only the VMs with
//! snapshots, for their files and devices (most of the bytes, needed only for snapshot sizes).
//! The mirror adds VMs to that list when they get a snapshot and removes them when the last
//! one goes.
//!
//! On any fault (an expired session, `InvalidCollectorVersion`, a broken connection, a change
//! it cannot apply) the mirror drops its collector and starts again with a full retrieval;
//! meanwhile it reports itself out of sync. It owns no HTTP and no metrics.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::client::{ChannelReader, Client, Session};
use super::error::{CallError, Error, ParseError};
use super::inventory::{
    self, VIEW_TYPES, clear_snapshot_vm_properties, property_specs, snapshot_vm_specs,
};
use super::model::{Inventory, MoId, MoRef};
use super::soap;
use super::xml::{self, Node, UpdateSetHead, method_fault_kind};

/// How long one WaitForUpdatesEx may wait for a change before answering empty.
const MAX_WAIT_SECONDS: u32 = 30;
/// Objects per WaitForUpdatesEx answer; more come as `truncated` follow-ups.
const MAX_OBJECT_UPDATES: u32 = 1000;
/// Broken update waits in a row retried from the same version before starting over.
const MAX_BROKEN_WAITS: u32 = 3;
/// Retry delays after a failure: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the mirror knows, as scrapes read it.
#[derive(Debug, Default)]
pub struct MirrorState {
    pub inventory: Inventory,
    /// Bumped with every applied change; what rendered output is cached by.
    pub version: u64,
    /// True while the mirror follows vCenter; false before the first full retrieval and after
    /// a failure until the next one completes.
    pub synced: bool,
    /// Unix time of the last update applied or confirmed (an empty wait confirms).
    pub last_update_seconds: f64,
    /// How long the last full retrieval took.
    pub full_retrieval_seconds: f64,
    /// Full retrievals done so far (1 after start, more after failures).
    pub full_retrievals: u64,
    /// The last failure, until the next full retrieval succeeds.
    pub error: Option<String>,
}

/// A running mirror of one vCenter.
pub struct Mirror {
    state: Arc<RwLock<MirrorState>>,
    changed: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Mirror {
    /// Starts following `client`'s vCenter in a background task.
    pub fn start(client: Arc<Client>, vcenter: String) -> Mirror {
        let state = Arc::new(RwLock::new(MirrorState::default()));
        let (tx, changed) = watch::channel(0);
        let follower = Follower {
            client,
            vcenter,
            state: state.clone(),
            changed: tx,
        };
        let task = tokio::spawn(follower.run());
        Mirror {
            state,
            changed,
            task,
        }
    }

    /// The state, for reading. Hold the guard briefly: updates wait for it.
    pub fn state(&self) -> &RwLock<MirrorState> {
        &self.state
    }

    /// Waits while the first full retrieval is under way, at most `timeout`; true when the
    /// mirror is in sync. A mirror that has failed is not waited for: its scrape says so now.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut changed = self.changed.clone();
        let settled = |state: &RwLock<MirrorState>| {
            state
                .read()
                .map(|s| (s.synced, s.synced || s.error.is_some()))
                .unwrap_or((false, true))
        };
        let wait = async {
            while !settled(&self.state).1 {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        settled(&self.state).0
    }

    /// The current version of the state.
    pub fn version(&self) -> u64 {
        self.state.read().map(|s| s.version).unwrap_or(0)
    }

    /// Stops following (the session itself is closed by the client's logout).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which of our two filters an update came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Inventory,
    SnapshotVms,
}

/// The collector, views and filters of one session.
struct Collector {
    pc: MoRef,
    list: MoRef,
    filters: FilterIds,
}

/// The ids of our two filters, which tell where an update came from.
#[derive(Debug, Clone)]
struct FilterIds {
    inventory: String,
    snapshot_vms: String,
}

impl FilterIds {
    fn kind(&self, id: &str) -> Result<Filter, String> {
        if id == self.inventory {
            Ok(Filter::Inventory)
        } else if id == self.snapshot_vms {
            Ok(Filter::SnapshotVms)
        } else {
            Err(format!("update from an unknown filter {id}"))
        }
    }
}

/// Why following stopped.
#[derive(Debug)]
enum Stop {
    Call(Error),
    /// A change that cannot be applied as sent; a full retrieval puts it right.
    Resync(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Call(e) => write!(f, "{e}"),
            Stop::Resync(why) => write!(f, "resynchronizing: {why}"),
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Call(e)
    }
}

/// Updates parsed off one answer, applied once the answer is complete.
#[derive(Default)]
struct Parsed {
    updates: Vec<(String, Node)>,
}

struct Follower {
    client: Arc<Client>,
    vcenter: String,
    state: Arc<RwLock<MirrorState>>,
    changed: watch::Sender<u64>,
}

impl Follower {
    async fn run(self) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let started = Instant::now();
            let stop = self.follow().await;
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_FIRST;
            }
            let message = stop.to_string();
            // Only a session vCenter no longer knows is dropped; after a network failure the
            // same session is used again (a new login would leave the old one open).
            if let Stop::Call(e) = &stop
                && e.failure.is_not_authenticated()
            {
                self.client.forget_session().await;
            }
            let repeated = self.publish_failure(&message);
            if repeated {
                debug!(vcenter = %self.vcenter, error = %message, "mirror failed again");
            } else {
                warn!(vcenter = %self.vcenter, error = %message, retry_seconds = backoff.as_secs_f64(), "mirror lost vCenter; retrying with a full retrieval");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Marks the mirror out of sync; true when the failure is the same as the last one.
    fn publish_failure(&self, message: &str) -> bool {
        let Ok(mut state) = self.state.write() else {
            return false;
        };
        let repeated = state.error.as_deref() == Some(message);
        // Out of sync, the inventory is not served; dropping it now means the next full
        // retrieval does not hold two inventories at once.
        state.inventory = Inventory::default();
        state.synced = false;
        state.error = Some(message.to_string());
        state.version += 1;
        self.changed.send_replace(state.version);
        repeated
    }

    /// Full retrieval, then updates, until something fails.
    async fn follow(&self) -> Stop {
        let session = match self.client.session().await {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        let collector = match self.create_collector(&session).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let stop = self.follow_with(&session, &collector).await;
        // Best effort: the collector, its filters and the views go with it; when the session
        // is gone vCenter has dropped them already.
        let body = soap::destroy_property_collector(&collector.pc);
        if let Err(e) = self
            .client
            .call("DestroyPropertyCollector", &session, body)
            .await
        {
            debug!(vcenter = %self.vcenter, error = %e, "DestroyPropertyCollector failed");
        }
        stop
    }

    async fn create_collector(&self, session: &Session) -> Result<Collector, Error> {
        let sc = &session.content;
        let rv = self
            .returnval(
                session,
                "CreatePropertyCollector",
                soap::create_property_collector(&sc.property_collector),
            )
            .await?;
        let pc = self.moref_of("CreatePropertyCollector", &rv)?;
        let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, VIEW_TYPES);
        let rv = self.returnval(session, "CreateContainerView", body).await?;
        let view = self.moref_of("CreateContainerView", &rv)?;
        let body = soap::create_list_view(&sc.view_manager, &[]);
        let rv = self.returnval(session, "CreateListView", body).await?;
        let list = self.moref_of("CreateListView", &rv)?;
        let body = soap::create_filter(&pc, &view, &property_specs());
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let inventory_filter = self.moref_of("CreateFilter", &rv)?.value;
        let body = soap::create_filter(&pc, &list, &snapshot_vm_specs());
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let snapshot_filter = self.moref_of("CreateFilter", &rv)?.value;
        Ok(Collector {
            pc,
            list,
            filters: FilterIds {
                inventory: inventory_filter,
                snapshot_vms: snapshot_filter,
            },
        })
    }

    async fn returnval(
        &self,
        session: &Session,
        call: &'static str,
        body: String,
    ) -> Result<Node, Error> {
        let bytes = self.client.call(call, session, body).await?;
        xml::read_returnval(&bytes).map_err(|e| self.error(call, e.into()))
    }

    fn moref_of(&self, call: &'static str, rv: &Node) -> Result<MoRef, Error> {
        rv.moref()
            .ok_or_else(|| self.error(call, CallError::Malformed("no object in the answer".into())))
    }

    fn error(&self, call: &'static str, failure: CallError) -> Error {
        Error {
            vcenter: self.vcenter.clone(),
            call,
            failure,
        }
    }

    async fn follow_with(&self, session: &Session, collector: &Collector) -> Stop {
        let started = Instant::now();
        let mut version = String::new();
        let (inventory, listed) = match self.full_retrieval(session, collector, &mut version).await
        {
            Ok(done) => done,
            Err(stop) => return stop,
        };
        let seconds = started.elapsed().as_secs_f64();
        let vms = inventory.vms.len();
        if let Ok(mut state) = self.state.write() {
            let recovered = state.error.take().is_some();
            state.inventory = inventory;
            state.synced = true;
            state.version += 1;
            state.full_retrieval_seconds = seconds;
            state.full_retrievals += 1;
            state.last_update_seconds = unix_now();
            self.changed.send_replace(state.version);
            if recovered {
                info!(vcenter = %self.vcenter, vms, seconds, "mirror in sync again");
            } else {
                info!(vcenter = %self.vcenter, vms, seconds, "mirror in sync");
            }
        }
        self.follow_updates(session, collector, version, listed)
            .await
    }

    /// The first WaitForUpdatesEx answers with the whole current state; it goes into a fresh
    /// inventory that replaces the old one only once complete, VMs with snapshots included.
    async fn full_retrieval(
        &self,
        session: &Session,
        collector: &Collector,
        version: &mut String,
    ) -> Result<(Inventory, BTreeSet<MoId>), Stop> {
        let mut fresh = Fresh {
            inventory: Inventory::default(),
            pending: BTreeSet::new(),
            filters: collector.filters.clone(),
        };
        let mut listed = BTreeSet::new();
        loop {
            let (head, applied) = self.wait(session, collector, version, fresh).await?;
            fresh = applied;
            let Some(head) = head else {
                // An empty answer while waiting for the ListView: nothing more will come.
                if fresh.pending.is_empty() {
                    return Ok((fresh.inventory, listed));
                }
                return Err(Stop::Resync(format!(
                    "{} VMs with snapshots never reported their files",
                    fresh.pending.len()
                )));
            };
            *version = head.version;
            if head.truncated {
                continue;
            }
            let added = self
                .sync_list(session, collector, &mut fresh.inventory, &mut listed)
                .await?;
            fresh.pending.extend(added);
            fresh.pending.retain(|id| listed.contains(id));
            if fresh.pending.is_empty() {
                return Ok((fresh.inventory, listed));
            }
        }
    }

    /// Applies updates as they come, until something fails.
    async fn follow_updates(
        &self,
        session: &Session,
        collector: &Collector,
        mut version: String,
        mut listed: BTreeSet<MoId>,
    ) -> Stop {
        // VMs that were in the ListView once: a collector may not announce them again when
        // they come back (the simulator does not), so their files are fetched directly.
        let mut ever_listed = listed.clone();
        let mut broken_waits = 0u32;
        loop {
            let answer = self
                .wait(session, collector, &version, Parsed::default())
                .await;
            let (head, parsed) = match answer {
                Ok(answer) => {
                    broken_waits = 0;
                    answer
                }
                // A wait cut off (a timeout, a dropped connection) leaves the collector and
                // its version valid on vCenter: ask again from the same version rather than
                // start over, which would cost vCenter a full retrieval while it is busy.
                Err(Stop::Call(e))
                    if matches!(e.failure, CallError::Transport(_))
                        && broken_waits < MAX_BROKEN_WAITS =>
                {
                    broken_waits += 1;
                    warn!(vcenter = %self.vcenter, error = %e, attempt = broken_waits, "update wait broken; asking again from the same version");
                    continue;
                }
                Err(stop) => return stop,
            };
            let Some(head) = head else {
                // No change within the wait: the mirror is confirmed current.
                if let Ok(mut state) = self.state.write() {
                    state.last_update_seconds = unix_now();
                }
                continue;
            };
            version = head.version;
            let mut list_changes = None;
            {
                let Ok(mut state) = self.state.write() else {
                    return Stop::Resync("mirror state poisoned".into());
                };
                for (filter, update) in &parsed.updates {
                    let filter = match collector.filters.kind(filter) {
                        Ok(f) => f,
                        Err(why) => return Stop::Resync(why),
                    };
                    if filter == Filter::SnapshotVms && !listed_vm(update, &listed) {
                        // A VM no longer in the list: its files no longer matter.
                        continue;
                    }
                    if let Err(why) = apply_update(&mut state.inventory, filter, update) {
                        return Stop::Resync(why);
                    }
                }
                if !head.truncated {
                    list_changes = Some(list_delta(&mut state.inventory, &listed));
                }
                state.version += 1;
                state.last_update_seconds = unix_now();
                self.changed.send_replace(state.version);
            }
            debug!(vcenter = %self.vcenter, updates = parsed.updates.len(), "mirror updated");
            let Some((add, remove)) = list_changes else {
                continue;
            };
            if let Err(e) = self
                .modify_list(session, collector, &add, &remove, &mut listed)
                .await
            {
                return e.into();
            }
            let back: Vec<MoId> = add
                .iter()
                .filter(|id| ever_listed.contains(*id))
                .cloned()
                .collect();
            ever_listed.extend(add);
            if let Err(e) = self.fetch_snapshot_vm_properties(session, &back).await {
                return e.into();
            }
        }
    }

    /// Reads the files and devices of VMs directly and applies them.
    async fn fetch_snapshot_vm_properties(
        &self,
        session: &Session,
        vms: &[MoId],
    ) -> Result<(), Error> {
        if vms.is_empty() {
            return Ok(());
        }
        let refs: Vec<MoRef> = vms
            .iter()
            .map(|id| MoRef::new("VirtualMachine", id))
            .collect();
        let pc = &session.content.property_collector;
        let body = soap::retrieve_properties_of(pc, &refs, &snapshot_vm_specs());
        let call = "RetrievePropertiesEx";
        let bytes = self.client.call(call, session, body).await?;
        let mut objects = Vec::new();
        xml::read_retrieve_result(&bytes[..], inventory::keep, |o| {
            objects.push(o);
            Ok(())
        })
        .map_err(|e| self.error(call, e.into()))?;
        let Ok(mut state) = self.state.write() else {
            return Ok(());
        };
        for object in &objects {
            let Some(obj) = object.child("obj").and_then(Node::moref) else {
                continue;
            };
            if !state.inventory.vms.contains_key(&obj.value) {
                continue;
            }
            for prop in object.children_named("propSet") {
                let path = prop.text_of("name").unwrap_or_default().trim();
                let _ = state.inventory.set_property(&obj, path, prop.child("val"));
            }
        }
        state.version += 1;
        self.changed.send_replace(state.version);
        Ok(())
    }

    /// One WaitForUpdatesEx, parsed as it streams in, each update handed to `sink`.
    async fn wait<T: UpdateSink>(
        &self,
        session: &Session,
        collector: &Collector,
        version: &str,
        sink: T,
    ) -> Result<(Option<UpdateSetHead>, T), Stop> {
        let body =
            soap::wait_for_updates_ex(&collector.pc, version, MAX_WAIT_SECONDS, MAX_OBJECT_UPDATES);
        let extra = Duration::from_secs(u64::from(MAX_WAIT_SECONDS));
        let answer = self
            .client
            .call_streaming(
                "WaitForUpdatesEx",
                session,
                body,
                extra,
                sink,
                read_into::<T>,
            )
            .await?;
        Ok(answer)
    }

    /// Brings the ListView in line with the VMs that have snapshots; returns the VMs added.
    async fn sync_list(
        &self,
        session: &Session,
        collector: &Collector,
        inventory: &mut Inventory,
        listed: &mut BTreeSet<MoId>,
    ) -> Result<Vec<MoId>, Stop> {
        let (add, remove) = list_delta(inventory, listed);
        self.modify_list(session, collector, &add, &remove, listed)
            .await?;
        Ok(add)
    }

    async fn modify_list(
        &self,
        session: &Session,
        collector: &Collector,
        add: &[MoId],
        remove: &[MoId],
        listed: &mut BTreeSet<MoId>,
    ) -> Result<(), Error> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let vm = |id: &MoId| MoRef::new("VirtualMachine", id);
        let add_refs: Vec<MoRef> = add.iter().map(vm).collect();
        let remove_refs: Vec<MoRef> = remove.iter().map(vm).collect();
        let body = soap::modify_list_view(&collector.list, &add_refs, &remove_refs);
        self.client.call("ModifyListView", session, body).await?;
        listed.extend(add.iter().cloned());
        for id in remove {
            listed.remove(id);
        }
        debug!(vcenter = %self.vcenter, added = add.len(), removed = remove.len(), "VMs with snapshots listed");
        Ok(())
    }
}

/// Where the updates of one WaitForUpdatesEx answer go as they are parsed.
trait UpdateSink: Send + 'static {
    fn update(&mut self, filter: &str, update: Node) -> Result<(), ParseError>;
}

/// Steady state: updates are kept until the answer is complete, then applied under the
/// state's lock in one go (answers are small: a few changes, at most MAX_OBJECT_UPDATES).
impl UpdateSink for Parsed {
    fn update(&mut self, filter: &str, update: Node) -> Result<(), ParseError> {
        self.updates.push((filter.to_string(), update));
        Ok(())
    }
}

/// A full retrieval: every object is applied to a fresh inventory as soon as it is parsed, so
/// the whole answer (hundreds of megabytes at 40,000 VMs) is never held at once.
struct Fresh {
    inventory: Inventory,
    /// VMs added to the ListView whose files and devices have not arrived yet.
    pending: BTreeSet<MoId>,
    filters: FilterIds,
}

impl UpdateSink for Fresh {
    fn update(&mut self, filter: &str, update: Node) -> Result<(), ParseError> {
        let filter = self.filters.kind(filter).map_err(ParseError::Malformed)?;
        if filter == Filter::SnapshotVms
            && let Some(obj) = update.child("obj").and_then(Node::moref)
        {
            self.pending.remove(&obj.value);
        }
        apply_update(&mut self.inventory, filter, &update).map_err(ParseError::Malformed)
    }
}

/// The blocking-side parser of a WaitForUpdatesEx answer.
fn read_into<T: UpdateSink>(
    input: ChannelReader,
    sink: &mut T,
) -> Result<Option<UpdateSetHead>, ParseError> {
    let input = std::io::BufReader::with_capacity(64 * 1024, input);
    xml::read_update_set(input, inventory::keep, |filter, update| {
        sink.update(filter, update)
    })
}

/// True when an update is about a VM in the ListView.
fn listed_vm(update: &Node, listed: &BTreeSet<MoId>) -> bool {
    update
        .child("obj")
        .and_then(Node::moref)
        .is_some_and(|o| listed.contains(&o.value))
}

/// VMs to add to the ListView (they have snapshots now) and to remove (they have none, or are
/// gone). A VM leaving the list also loses its snapshot-only properties here, since vCenter
/// sends nothing more about them.
fn list_delta(inventory: &mut Inventory, listed: &BTreeSet<MoId>) -> (Vec<MoId>, Vec<MoId>) {
    let add: Vec<MoId> = inventory
        .vms
        .values()
        .filter(|vm| vm.has_snapshots() && !listed.contains(&vm.id))
        .map(|vm| vm.id.clone())
        .collect();
    let mut remove = Vec::new();
    for id in listed {
        match inventory.vms.get_mut(id) {
            Some(vm) if vm.has_snapshots() => {}
            Some(vm) => {
                clear_snapshot_vm_properties(vm);
                remove.push(id.clone());
            }
            None => remove.push(id.clone()),
        }
    }
    (add, remove)
}

/// Applies one ObjectUpdate. `Err` (with the reason) for what only a full retrieval can put
/// right: a fault inside the update, or a change the mirror cannot apply as sent.
fn apply_update(inventory: &mut Inventory, filter: Filter, update: &Node) -> Result<(), String> {
    let obj = update
        .child("obj")
        .and_then(Node::moref)
        .ok_or("an update without its object")?;
    for missing in update.children_named("missingSet") {
        let fault = missing.child("fault").and_then(|f| f.child("fault"));
        let kind = fault.map(method_fault_kind).unwrap_or_default();
        if kind == "NotAuthenticated" {
            return Err(format!("{}: session no longer authenticated", obj.value));
        }
    }
    let kind = update.text_of("kind").unwrap_or_default().trim();
    if kind == "leave" {
        match filter {
            Filter::Inventory => inventory.remove_object(&obj),
            Filter::SnapshotVms => {
                if let Some(vm) = inventory.vms.get_mut(&obj.value) {
                    clear_snapshot_vm_properties(vm);
                }
            }
        }
        return Ok(());
    }
    if filter == Filter::SnapshotVms && !inventory.vms.contains_key(&obj.value) {
        // The VM left the inventory before its files arrived.
        return Ok(());
    }
    for change in update.children_named("changeSet") {
        let name = change.text_of("name").unwrap_or_default().trim();
        let op = change.text_of("op").unwrap_or_default().trim();
        let val = match op {
            "assign" => change.child("val"),
            "remove" | "indirectRemove" => None,
            other => {
                return Err(format!(
                    "{}: cannot apply a {other:?} change of {name}",
                    obj.value
                ));
            }
        };
        if inventory.set_property(&obj, name, val).is_none() {
            return Err(format!("{}: malformed value of {name}", obj.value));
        }
    }
    Ok(())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::read_update_set;

    fn updates(xml: &str) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        read_update_set(xml.as_bytes(), crate::vsphere::inventory::keep, |f, u| {
            out.push((f.to_string(), u));
            Ok(())
        })
        .unwrap();
        out
    }

    fn envelope(objects: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>1</version><filterSet><filter type="PropertyFilter">f1</filter>{objects}</filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn apply_all(inv: &mut Inventory, filter: Filter, xml: &str) -> Result<(), String> {
        for (_, u) in updates(xml) {
            apply_update(inv, filter, &u)?;
        }
        Ok(())
    }

    #[test]
    fn enter_modify_and_leave_change_the_inventory() {
        let mut inv = Inventory::default();
        apply_all(&mut inv, Filter::Inventory, &envelope(r#"
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj>
 <changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db</val></changeSet>
 <changeSet><name>guest.toolsVersionStatus2</name><op>assign</op><val xsi:type="xsd:string">guestToolsCurrent</val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-2</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">web</val></changeSet></objectSet>"#)).unwrap();
        assert_eq!(inv.vms.len(), 2);
        apply_all(
            &mut inv,
            Filter::Inventory,
            &envelope(
                r#"
<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj>
 <changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db-renamed</val></changeSet>
 <changeSet><name>guest.toolsVersionStatus2</name><op>assign</op></changeSet></objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-2</obj></objectSet>"#,
            ),
        )
        .unwrap();
        assert_eq!(inv.vms.len(), 1);
        let vm = &inv.vms["vm-1"];
        assert_eq!(vm.name, "db-renamed");
        assert_eq!(
            vm.tools_version_status2, None,
            "assign without a value unsets"
        );
    }

    #[test]
    fn leaving_the_snapshot_list_drops_files_but_keeps_the_vm() {
        let mut inv = Inventory::default();
        apply_all(&mut inv, Filter::Inventory, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">db</val></changeSet></objectSet>"#)).unwrap();
        apply_all(&mut inv, Filter::SnapshotVms, &envelope(r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualDisk"><key>2000</key><capacityInKB>1</capacityInKB></VirtualDevice></val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-9</obj><changeSet><name>config.hardware.device</name><op>assign</op><val xsi:type="ArrayOfVirtualDevice"></val></changeSet></objectSet>"#)).unwrap();
        assert_eq!(inv.vms["vm-1"].disk_capacities_bytes, vec![1024]);
        assert!(
            !inv.vms.contains_key("vm-9"),
            "files alone do not make a VM"
        );
        apply_all(
            &mut inv,
            Filter::SnapshotVms,
            &envelope(
                r#"<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-1</obj></objectSet>"#,
            ),
        )
        .unwrap();
        assert!(inv.vms["vm-1"].disk_capacities_bytes.is_empty());
        assert_eq!(inv.vms["vm-1"].name, "db");
    }

    #[test]
    fn changes_the_mirror_cannot_apply_ask_for_a_full_retrieval() {
        let mut inv = Inventory::default();
        let add = envelope(
            r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.hardware.device[2000]</name><op>add</op><val xsi:type="VirtualDisk"></val></changeSet></objectSet>"#,
        );
        let err = apply_all(&mut inv, Filter::Inventory, &add).unwrap_err();
        assert!(err.contains("cannot apply a \"add\" change"), "{err}");
        let unauth = envelope(
            r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><missingSet><path>name</path><fault><fault xsi:type="NotAuthenticated"></fault></fault></missingSet></objectSet>"#,
        );
        let err = apply_all(&mut inv, Filter::Inventory, &unauth).unwrap_err();
        assert!(err.contains("no longer authenticated"), "{err}");
    }

    #[test]
    fn list_delta_adds_vms_with_snapshots_and_removes_the_rest() {
        let mut inv = Inventory::default();
        let xml = envelope(
            r#"<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>snapshot</name><op>assign</op><val xsi:type="VirtualMachineSnapshotInfo"><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>s</name><createTime>2026-11-20T10:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced></rootSnapshotList></val></changeSet></objectSet>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-2</obj><changeSet><name>name</name><op>assign</op><val xsi:type="xsd:string">b</val></changeSet></objectSet>"#,
        );
        apply_all(&mut inv, Filter::Inventory, &xml).unwrap();
        inv.vms.get_mut("vm-2").unwrap().disk_capacities_bytes = vec![5];
        let listed: BTreeSet<MoId> = ["vm-2".to_string(), "vm-3".to_string()].into();
        let (add, remove) = list_delta(&mut inv, &listed);
        assert_eq!(add, ["vm-1"]);
        assert_eq!(remove, ["vm-2", "vm-3"]);
        assert!(inv.vms["vm-2"].disk_capacities_bytes.is_empty());
    }
}
