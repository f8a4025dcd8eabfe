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
/// Objects per WaitForUpdatesEx answer; more come as `truncated` follow-ups.
const MAX_OBJECT_UPDATES: u32 = 1000;

/// Our PropertyCollector, its ListView of VMs with snapshots, and its two filters' ids.
pub(super) struct OwnCollector {
    pub(super) pc: MoRef,
    pub(super) list: MoRef,
    pub(super) filters: FilterIds,
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
        // From here on the collector exists on vCenter: whatever fails, it is destroyed.
        match self.create_views_and_filters(session, &pc).await {
            Ok((list, filters)) => Ok(OwnCollector { pc, list, filters }),
            Err(e) => {
                self.destroy_collector(session, &pc).await;
                Err(e)
            }
        }
    }

    async fn create_views_and_filters(
        &self,
        session: &Session,
        pc: &MoRef,
    ) -> Result<(MoRef, FilterIds), Error> {
        let sc = &session.content;
        let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, VIEW_TYPES);
        let rv = self.returnval(session, "CreateContainerView", body).await?;
        let view = self.moref_of("CreateContainerView", &rv)?;
        let body = soap::create_list_view(&sc.view_manager, &[]);
        let rv = self.returnval(session, "CreateListView", body).await?;
        let list = self.moref_of("CreateListView", &rv)?;
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
        Ok((list, filters))
    }

    /// Destroys our collector (its filters go with it; the views end with the session). A
    /// failure costs a debug line: when the session is gone, vCenter has dropped it already.
    pub(super) async fn destroy_collector(&self, session: &Session, pc: &MoRef) {
        let body = soap::destroy_property_collector(pc);
        if let Err(e) = self
            .client
            .call("DestroyPropertyCollector", session, body)
            .await
        {
            debug!(vcenter = %self.vcenter, error = %e, "DestroyPropertyCollector failed");
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
        let body =
            soap::wait_for_updates_ex(&collector.pc, version, MAX_WAIT_SECONDS, MAX_OBJECT_UPDATES);
        let timeout = Duration::from_secs(u64::from(MAX_WAIT_SECONDS)) + WAIT_GRACE;
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
