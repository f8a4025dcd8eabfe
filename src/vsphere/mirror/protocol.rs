//! The PropertyCollector protocol of the mirror: creating our own collector with its views and
//! two filters, waiting for updates (`WaitForUpdatesEx`), keeping the ListView of VMs with
//! snapshots in step, reading files and devices directly, and destroying the collector. Each is
//! one or a few SOAP calls; what the answers mean to the inventory is in [`super::apply`].

use std::collections::BTreeSet;
use std::time::Duration;

use tracing::debug;

use super::Follower;
use super::apply::{FilterIds, UpdateSink, read_into};
use crate::vsphere::client::Session;
use crate::vsphere::error::{CallError, Error};
use crate::vsphere::inventory::{self, VIEW_TYPES, property_specs, snapshot_vm_specs};
use crate::vsphere::model::{Inventory, MoId, MoRef};
use crate::vsphere::soap;
use crate::vsphere::xml::{self, Node, UpdateSetHead};

/// How long one WaitForUpdatesEx may wait for a change before answering empty.
pub(super) const MAX_WAIT_SECONDS: u32 = 30;
/// How much longer than its wait an update call may take before it counts as hung: vCenter
/// answers an empty wait right at `MAX_WAIT_SECONDS`, so a few seconds cover the transfer.
pub(super) const WAIT_GRACE: Duration = Duration::from_secs(8);
/// Replaced collectors and views kept for destruction at most.
const MAX_STALE_OBJECTS: usize = 64;
/// Objects per WaitForUpdatesEx answer; more come as `truncated` follow-ups.
const MAX_OBJECT_UPDATES: u32 = 1000;

/// Our PropertyCollector, its ListView of VMs with snapshots, and its two filters' ids.
pub(super) struct OwnCollector {
    pub(super) pc: MoRef,
    /// The ContainerView of the whole inventory.
    pub(super) view: MoRef,
    pub(super) list: MoRef,
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
            Ok((view, list, filters)) => Ok(OwnCollector {
                pc,
                view,
                list,
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
    ) -> Result<(MoRef, MoRef, FilterIds), Error> {
        let sc = &session.content;
        let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, VIEW_TYPES);
        let rv = self.returnval(session, "CreateContainerView", body).await?;
        let view = self.moref_of("CreateContainerView", &rv)?;
        objects.push(view.clone());
        let body = soap::create_list_view(&sc.view_manager, &[]);
        let rv = self.returnval(session, "CreateListView", body).await?;
        let list = self.moref_of("CreateListView", &rv)?;
        objects.push(list.clone());
        let body = soap::create_filter(pc, &view, &property_specs());
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let inventory = self.moref_of("CreateFilter", &rv)?.value;
        let body = soap::create_filter(pc, &list, &snapshot_vm_specs());
        let rv = self.returnval(session, "CreateFilter", body).await?;
        let snapshot_vms = self.moref_of("CreateFilter", &rv)?.value;
        let filters = FilterIds {
            inventory,
            snapshot_vms,
        };
        Ok((view, list, filters))
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
            let (call, body) = if object.kind == "PropertyCollector" {
                (
                    "DestroyPropertyCollector",
                    soap::destroy_property_collector(object),
                )
            } else {
                ("DestroyView", soap::destroy_view(object))
            };
            let Err(e) = self.client.call(call, session, body).await else {
                continue;
            };
            debug!(vcenter = %self.vcenter, error = %e, object = %object.value, "{call} failed");
            let gone = e.failure.is_not_authenticated()
                || matches!(&e.failure, CallError::Fault(f) if f.kind == "ManagedObjectNotFound");
            if !gone && let Ok(mut stale) = self.stale.lock() {
                stale.push((session.clone(), object.clone()));
            }
        }
    }

    /// Destroys what was retired in this session (called once a full retrieval succeeded);
    /// what belongs to another session is forgotten.
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
        }
    }

    /// One WaitForUpdatesEx, parsed as it streams in, each update handed to `sink`. It has a
    /// timeout of its own, its wait plus a grace: an update wait is a long poll, and a vCenter
    /// that does not answer must show within a bound, not after the request timeout.
    pub(super) async fn wait<T: UpdateSink>(
        &self,
        session: &Session,
        collector: &OwnCollector,
        version: &str,
        sink: T,
    ) -> Result<(Option<UpdateSetHead>, T), Error> {
        let (wait_seconds, timeout) = wait_bounds(self.client.request_timeout());
        let body =
            soap::wait_for_updates_ex(&collector.pc, version, wait_seconds, MAX_OBJECT_UPDATES);
        self.client
            .call_streaming(
                "WaitForUpdatesEx",
                session,
                body,
                Some(timeout),
                sink,
                read_into::<T>,
            )
            .await
    }

    pub(super) async fn modify_list(
        &self,
        session: &Session,
        collector: &OwnCollector,
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

    /// Reads the files and devices of `vms` directly (every page of the answer) and applies
    /// them to `inventory`, for VMs still in it.
    pub(super) async fn fetch_snapshot_vm_properties(
        &self,
        session: &Session,
        vms: &[MoId],
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
        let mut body = soap::retrieve_properties_of(pc, &refs, &snapshot_vm_specs());
        loop {
            let bytes = self.client.call(call, session, body).await?;
            let mut objects = Vec::new();
            let token = xml::read_retrieve_result(&bytes[..], inventory::keep, |o| {
                objects.push(o);
                Ok(())
            })
            .map_err(|e| self.error(call, e.into()))?;
            for object in &objects {
                apply_object(inventory, object);
            }
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
        let token = xml::read_retrieve_result(&bytes[..], xml::keep_all, |object| {
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
fn apply_object(inventory: &mut Inventory, object: &Node) {
    let Some(obj) = object.child("obj").and_then(Node::moref) else {
        return;
    };
    if !inventory.vms.contains_key(&obj.value) {
        return;
    }
    for prop in object.children_named("propSet") {
        let path = prop.text_of("name").unwrap_or_default().trim();
        let _ = inventory.set_property(&obj, path, prop.child("val"));
    }
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
