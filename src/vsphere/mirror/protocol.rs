//! The PropertyCollector protocol of the mirror: creating our own collector with its views and
//! two filters, waiting for updates (`WaitForUpdatesEx`), keeping the ListView of VMs with
//! snapshots in step, reading files and devices directly, and destroying the collector. Each is
//! one or a few SOAP calls; what the answers mean to the inventory is in [`super::apply`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tracing::debug;

use super::Follower;
use super::apply::{FilterIds, UpdateSink, read_into};
use crate::vsphere::client::Session;
use crate::vsphere::error::{CallError, Error};
use crate::vsphere::model::{Inventory, MoId, MoRef};
use crate::vsphere::properties::backup::ENABLE_UUID_PATH;
use crate::vsphere::properties::{
    self, ObjectUpdate, VIEW_TYPES, property_specs_for, root_folder_alarm_spec,
    snapshot_vm_specs_for, windows_vm_specs,
};
use crate::vsphere::soap;
use crate::vsphere::soap::PropertySpec;
use crate::vsphere::xml::{self, Node, UpdateSetHead};

/// How long one WaitForUpdatesEx may wait for a change before answering empty.
pub(super) const MAX_WAIT_SECONDS: u32 = 30;
/// How much longer than its wait an update call may take before it counts as hung: vCenter
/// answers an empty wait right at `MAX_WAIT_SECONDS`, so a few seconds cover the transfer.
pub(super) const WAIT_GRACE: Duration = Duration::from_secs(8);
/// While an update wait is outstanding past its wait, vCenter is asked the time this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat may take (no longer than the request timeout).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a slow update wait is followed while vCenter answers heartbeats: past it the
/// answer is taken for lost on the way.
const MAX_SLOW_WAIT: Duration = Duration::from_secs(600);
/// Replaced collectors and views kept for destruction at most.
const MAX_STALE_OBJECTS: usize = 64;
/// VMs asked for `disk.EnableUUID` by keyed path to learn whether vCenter accepts it.
const PROBE_VMS: u32 = 20;
/// Objects per WaitForUpdatesEx answer; more come as `truncated` follow-ups.
const MAX_OBJECT_UPDATES: u32 = 1000;

/// Our PropertyCollector, its ListView of VMs with snapshots, the ListView of Windows guests
/// where vCenter refuses the keyed path of `disk.EnableUUID`, and its filters' ids.
pub(super) struct OwnCollector {
    pub(super) pc: MoRef,
    /// The ContainerView of the whole inventory.
    pub(super) view: MoRef,
    pub(super) list: MoRef,
    pub(super) windows_list: Option<MoRef>,
    pub(super) filters: FilterIds,
    /// Everything created on vCenter for it (collector and views), destroyed together.
    pub(super) objects: Vec<MoRef>,
}

impl Follower {
    pub(super) async fn create_collector(&self, session: &Session) -> Result<OwnCollector, Error> {
        let sc = &session.content;
        let rv = self
            .returnval(
                session,
                "CreatePropertyCollector",
                soap::create_property_collector(&sc.property_collector),
            )
            .await?;
        let pc = self.moref_of("CreatePropertyCollector", &rv)?;
        // From here on objects exist on vCenter: whatever fails, they are destroyed.
        let mut objects = vec![pc.clone()];
        match self
            .create_views_and_filters(session, &pc, &mut objects)
            .await
        {
            Ok((view, list, windows_list, filters)) => Ok(OwnCollector {
                pc,
                view,
                list,
                windows_list,
                filters,
                objects,
            }),
            Err(e) => {
                self.retire(session, &objects);
                Err(e)
            }
        }
    }

    async fn create_views_and_filters(
        &self,
        session: &Session,
        pc: &MoRef,
        objects: &mut Vec<MoRef>,
    ) -> Result<(MoRef, MoRef, Option<MoRef>, FilterIds), Error> {
        let sc = &session.content;
        let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, VIEW_TYPES);
        let rv = self.returnval(session, "CreateContainerView", body).await?;
        let view = self.moref_of("CreateContainerView", &rv)?;
        objects.push(view.clone());
        let list = self.create_list(session).await?;
        objects.push(list.clone());
        let keyed = self.accepts_keyed_enable_uuid(session, &view).await?;
        let extra: Vec<MoRef> = sc.custom_fields_manager.iter().cloned().collect();
        let body = soap::create_filter_with_objects(
            pc,
            &view,
            &property_specs_for(keyed, self.devices),
            &extra,
        );
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let inventory = self.moref_of("CreateFilter", &rv)?.value;
        let snapshot_vms = self
            .list_filter(session, pc, &list, &snapshot_vm_specs_for(self.devices))
            .await?;
        let (windows_list, windows_vms) = if keyed {
            (None, None)
        } else {
            let windows = self.create_list(session).await?;
            objects.push(windows.clone());
            let filter = self
                .list_filter(session, pc, &windows, &windows_vm_specs())
                .await?;
            (Some(windows), Some(filter))
        };
        // The root folder's triggered alarms, in a filter of its own: in the inventory filter
        // every folder of the view would be asked for them too.
        let body = soap::create_filter_of(
            pc,
            std::slice::from_ref(&sc.root_folder),
            &[root_folder_alarm_spec()],
        );
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let alarms = self.moref_of("CreateFilter", &rv)?.value;
        let filters = FilterIds {
            inventory,
            snapshot_vms,
            windows_vms,
            alarms,
        };
        Ok((view, list, windows_list, filters))
    }

    async fn create_list(&self, session: &Session) -> Result<MoRef, Error> {
        let body = soap::create_list_view(&session.content.view_manager, &[]);
        let rv = self.returnval(session, "CreateListView", body).await?;
        self.moref_of("CreateListView", &rv)
    }

    async fn list_filter(
        &self,
        session: &Session,
        pc: &MoRef,
        list: &MoRef,
        specs: &[PropertySpec],
    ) -> Result<String, Error> {
        let body = soap::create_filter(pc, list, specs);
        let rv = self.returnval(session, "CreateFilter", body).await?;
        Ok(self.moref_of("CreateFilter", &rv)?.value)
    }

    /// Whether vCenter reads `config.extraConfig["disk.EnableUUID"]`: a few VMs are asked for
    /// it; a refusal (an InvalidProperty fault, or one in a VM's missingSet, as the simulator
    /// answers) means no, and the extraConfig of Windows guests is read instead.
    async fn accepts_keyed_enable_uuid(
        &self,
        session: &Session,
        view: &MoRef,
    ) -> Result<bool, Error> {
        let pc = &session.content.property_collector;
        let specs = [PropertySpec {
            kind: "VirtualMachine",
            paths: vec![ENABLE_UUID_PATH],
        }];
        let body = soap::retrieve_properties_ex(pc, view, &specs, Some(PROBE_VMS));
        let bytes = match self
            .client
            .call("RetrievePropertiesEx", session, body)
            .await
        {
            Ok(bytes) => bytes,
            Err(e) if matches!(&e.failure, CallError::Fault(f) if f.kind == "InvalidProperty") => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let mut refused = false;
        // A small answer (PROBE_VMS objects of one path): read as node trees.
        let limits = self.client.limits();
        let token = xml::read_retrieve_result(&bytes[..], &limits, |cur| {
            let o = cur.node()?;
            refused |= o.children_named("missingSet").any(|m| {
                m.child("fault")
                    .and_then(|f| f.child("fault"))
                    .is_some_and(|f| xml::method_fault_kind(f) == "InvalidProperty")
            });
            Ok(())
        })
        .map_err(|e| self.error("RetrievePropertiesEx", e.into()))?;
        if let Some(token) = token {
            let body = soap::cancel_retrieve_properties_ex(pc, &token);
            if let Err(e) = self
                .client
                .call("CancelRetrievePropertiesEx", session, body)
                .await
            {
                debug!(vcenter = %self.vcenter, error = %e, "CancelRetrievePropertiesEx failed");
            }
        }
        debug!(vcenter = %self.vcenter, keyed = !refused, "disk.EnableUUID read by keyed path");
        Ok(!refused)
    }

    /// Marks a collector and views as replaced. They are destroyed once the next full
    /// retrieval in the same session has succeeded: destroying them at once would make a hung
    /// or failing vCenter cost one timeout per object before the failure shows, and a session
    /// that is gone has taken them along anyway.
    pub(super) fn retire(&self, session: &Session, objects: &[MoRef]) {
        if let Ok(mut stale) = self.stale.lock() {
            stale.extend(objects.iter().map(|o| (session.clone(), o.clone())));
            // vCenter drops them with the session at the latest; a pathological run of
            // failures in one session must not grow this list without bound.
            let excess = stale.len().saturating_sub(MAX_STALE_OBJECTS);
            stale.drain(..excess);
        }
    }

    /// Destroys collectors (their filters go with them) and views. What could not be destroyed
    /// while vCenter still holds it (the call failed, the session lives on) is kept and tried
    /// again after the next full retrieval in the same session.
    async fn destroy_objects(&self, session: &Session, objects: &[MoRef]) {
        for object in objects {
            let Err(e) = self.client.destroy(session, object).await else {
                continue;
            };
            debug!(vcenter = %self.vcenter, error = %e, object = %object.value, "destroying failed");
            if let Ok(mut stale) = self.stale.lock() {
                stale.push((session.clone(), object.clone()));
            }
        }
    }

    /// Destroys what was retired in this session (called once vCenter answered: after a full
    /// retrieval, and after each update wait while something is left); what belongs to
    /// another session is forgotten.
    pub(super) async fn destroy_stale(&self, session: &Session) {
        let left: Vec<MoRef> = match self.stale.lock() {
            Ok(mut stale) => stale
                .drain(..)
                .filter(|(s, _)| s.is_same(session))
                .map(|(_, o)| o)
                .collect(),
            Err(_) => return,
        };
        if !left.is_empty() {
            self.destroy_objects(session, &left).await;
        }
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

    pub(super) fn error(&self, call: &'static str, failure: CallError) -> Error {
        Error {
            vcenter: self.vcenter.clone(),
            call,
            failure,
            sent: None,
        }
    }

    /// One WaitForUpdatesEx, parsed as it streams in, each update handed to `sink`. An update
    /// wait is a long poll: vCenter answers an empty one at its wait, a busy one may take
    /// longer (minutes at 40,000 VMs under load). A heartbeat tells a slow vCenter from a dead
    /// one: from shortly after the wait (2 s at the defaults), `CurrentTime` on a request of its
    /// own every 5 s. While vCenter answers it, the wait goes on and its answer is applied, with
    /// no full retrieval (one past the wait plus the grace counts as slow); when it does not, the
    /// wait is given up as hung (37 s at the default timeouts).
    pub(super) async fn wait<T: UpdateSink>(
        &self,
        session: &Session,
        collector: &OwnCollector,
        version: &str,
        sink: T,
    ) -> Result<(Option<UpdateSetHead>, T), Error> {
        let (wait_seconds, bound) = wait_bounds(self.client.request_timeout());
        let wait = Duration::from_secs(u64::from(wait_seconds));
        let first_beat = wait + ((bound - wait) / 4).min(Duration::from_secs(2));
        let body =
            soap::wait_for_updates_ex(&collector.pc, version, wait_seconds, MAX_OBJECT_UPDATES);
        let sent = Instant::now();
        let call = self.client.call_streaming(
            "WaitForUpdatesEx",
            session,
            body,
            Some(bound + MAX_SLOW_WAIT),
            sink,
            read_into::<T>,
        );
        tokio::pin!(call);
        if let Ok(answer) = tokio::time::timeout(first_beat, &mut call).await {
            return answer;
        }
        let beat_timeout = HEARTBEAT_TIMEOUT.min(self.client.request_timeout());
        let mut counted = false;
        let mut count_if_slow = || {
            if !counted && sent.elapsed() >= bound {
                counted = true;
                self.counters.slow_wait();
            }
        };
        loop {
            tokio::select! {
                answer = &mut call => {
                    count_if_slow();
                    return answer;
                }
                beat = self.client.heartbeat(session, beat_timeout) => {
                    if let Err(e) = beat && !vcenter_answered(&e) {
                        let why = format!(
                            "no answer after {:.0} s, and vCenter answered no heartbeat ({})",
                            sent.elapsed().as_secs_f64(),
                            e.failure
                        );
                        let failure = CallError::Timeout(why);
                        return Err(self.client.abandoned("WaitForUpdatesEx", sent, failure));
                    }
                }
            }
            count_if_slow();
            debug!(vcenter = %self.vcenter, waited = sent.elapsed().as_secs_f64(), "update wait outstanding; vCenter answers the heartbeat");
            tokio::select! {
                answer = &mut call => {
                    count_if_slow();
                    return answer;
                }
                () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            }
        }
    }

    pub(super) async fn modify_list(
        &self,
        session: &Session,
        list: &MoRef,
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
        let body = soap::modify_list_view(list, &add_refs, &remove_refs);
        self.client.call("ModifyListView", session, body).await?;
        listed.extend(add.iter().cloned());
        for id in remove {
            listed.remove(id);
        }
        debug!(vcenter = %self.vcenter, list = %list.value, added = add.len(), removed = remove.len(), "listed VMs changed");
        Ok(())
    }

    /// Reads `specs` of `vms` directly (every page of the answer: the files and devices of VMs
    /// with snapshots, or the extraConfig of Windows guests) and applies them to `inventory`,
    /// for VMs still in it.
    pub(super) async fn fetch_vm_properties(
        &self,
        session: &Session,
        vms: &[MoId],
        specs: &[PropertySpec],
        inventory: &mut Inventory,
    ) -> Result<(), Error> {
        if vms.is_empty() {
            return Ok(());
        }
        let refs: Vec<MoRef> = vms
            .iter()
            .map(|id| MoRef::new("VirtualMachine", id))
            .collect();
        let pc = &session.content.property_collector;
        let mut call = "RetrievePropertiesEx";
        let mut body = soap::retrieve_properties_of(pc, &refs, specs);
        loop {
            let bytes = self.client.call(call, session, body).await?;
            let limits = self.client.limits();
            let token = properties::read_objects(&bytes[..], &limits, |object| {
                apply_object(inventory, object);
                Ok(())
            })
            .map_err(|e| self.error(call, e.into()))?;
            let Some(token) = token else {
                return Ok(());
            };
            call = "ContinueRetrievePropertiesEx";
            body = soap::continue_retrieve_properties_ex(pc, &token);
        }
    }
}

impl Follower {
    /// The VMs vCenter holds now: our ContainerView's `view` property (one reference per
    /// object; a few megabytes at 40,000 VMs), read for the consistency check.
    pub(super) async fn vms_in_view(
        &self,
        session: &Session,
        view: &MoRef,
    ) -> Result<BTreeSet<MoId>, Error> {
        let call = "RetrievePropertiesEx";
        let spec = soap::PropertySpec {
            kind: "ContainerView",
            paths: vec!["view"],
        };
        let pc = &session.content.property_collector;
        let body = soap::retrieve_properties_of(pc, std::slice::from_ref(view), &[spec]);
        let bytes = self.client.call(call, session, body).await?;
        let mut vms = BTreeSet::new();
        let limits = self.client.limits();
        let token = xml::read_retrieve_result(&bytes[..], &limits, |cur| {
            let object = cur.node()?;
            for prop in object.children_named("propSet") {
                let refs = prop
                    .child("val")
                    .map(|v| v.children.as_slice())
                    .unwrap_or(&[]);
                vms.extend(
                    refs.iter()
                        .filter_map(Node::moref)
                        .filter(|r| r.kind == "VirtualMachine")
                        .map(|r| r.value),
                );
            }
            Ok(())
        })
        .map_err(|e| self.error(call, e.into()))?;
        if let Some(token) = token {
            // One object never pages; should a vCenter page it anyway, release the rest.
            let body = soap::cancel_retrieve_properties_ex(pc, &token);
            let _ = self
                .client
                .call("CancelRetrievePropertiesEx", session, body)
                .await;
        }
        Ok(vms)
    }
}

/// The properties of one retrieved object, for a VM the inventory holds.
fn apply_object(inventory: &mut Inventory, object: ObjectUpdate) {
    if !inventory.vms.contains_key(&object.obj.value) {
        return;
    }
    let _ = inventory.apply_changes(&object.obj, object.changes);
}

/// True when a failed heartbeat still shows vCenter answering: a SOAP fault (other than a lost
/// session, which the wait will meet too) is an answer.
fn vcenter_answered(e: &Error) -> bool {
    matches!(&e.failure, CallError::Fault(_)) && !e.failure.is_not_authenticated()
}

/// The wait asked of vCenter and the timeout of the call: `MAX_WAIT_SECONDS` plus
/// `WAIT_GRACE` (38 s) by default, neither longer than the request timeout, so a vCenter
/// configured with a short request timeout (a test's 2 s) shows a hang as quickly: 4 s.
fn wait_bounds(request_timeout: Duration) -> (u32, Duration) {
    let seconds = request_timeout
        .as_secs()
        .clamp(1, u64::from(MAX_WAIT_SECONDS));
    let wait = u32::try_from(seconds).unwrap_or(MAX_WAIT_SECONDS);
    let timeout = Duration::from_secs(seconds) + WAIT_GRACE.min(request_timeout);
    (wait, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_wait_is_bounded_by_the_request_timeout() {
        let s = Duration::from_secs;
        assert_eq!(wait_bounds(s(60)), (30, s(38)));
        assert_eq!(wait_bounds(s(2)), (2, s(4)));
        assert_eq!(
            wait_bounds(Duration::from_millis(500)),
            (1, s(1) + Duration::from_millis(500))
        );
    }
}
