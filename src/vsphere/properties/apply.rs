//! What the changes of an answer do to the [`Inventory`]: [`Inventory::apply_changes`] sets
//! or unsets each property read on its object (created when new), [`InventoryBuilder`]
//! collects the objects of a full retrieval, and the setters say which field of a VM, host,
//! datastore or named object each property is.
//!
//! It owns the mapping from properties to the model's fields, not reading answers (see
//! [`super::read`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::read::{Change, ChangeOp, ObjectUpdate};
use super::value::Value;
use super::{Property, path_of};
use crate::vsphere::model::{
    ComputeResource, CustomField, Datacenter, Datastore, Folder, Host, Inventory, MoRef, Vm,
};

/// Collects the objects of RetrievePropertiesEx answers into an [`Inventory`].
#[derive(Debug, Default)]
pub struct InventoryBuilder {
    inventory: Inventory,
    /// Properties whose value did not parse and were left unset.
    pub malformed: usize,
    /// Set when a property came back as a NotAuthenticated fault (the session is gone).
    pub session_lost: Option<String>,
}

impl InventoryBuilder {
    /// Adds one object (an ObjectContent) to the inventory.
    pub fn add_object(&mut self, object: ObjectUpdate) {
        if let Some(path) = &object.session_lost {
            self.session_lost = Some(format!("{}:{} {path}", object.obj.kind, object.obj.value));
        }
        let mut changes = object.changes;
        for change in &mut changes {
            if matches!(change.value, Some(Err(_))) {
                self.malformed += 1;
                // Left as it was: not set.
                change.property = Err(change.path().to_string());
            }
        }
        if self.inventory.apply_changes(&object.obj, changes).is_err() {
            self.malformed += 1;
        }
    }

    /// The inventory built so far.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn finish(self) -> Inventory {
        self.inventory
    }
}

impl Inventory {
    /// Applies the property changes of one object, creating the object when it is new.
    /// `Err` (with the reason) for a change that cannot be applied as sent: a value that did
    /// not parse, or an `op` other than assign and remove on a property the exporter reads.
    /// Changes of paths the exporter does not read are ignored. Every change that can be
    /// applied is, even after one that cannot.
    pub fn apply_changes(&mut self, obj: &MoRef, changes: Vec<Change>) -> Result<(), String> {
        let mut first_error = None;
        let mut target = self.object_mut(obj);
        for change in changes {
            if let ChangeOp::Other(op) = &change.op {
                first_error.get_or_insert_with(|| {
                    format!(
                        "{}: cannot apply a {op:?} change of {}",
                        obj.value,
                        change.path()
                    )
                });
                continue;
            }
            let Ok(property) = change.property else {
                continue;
            };
            let value = match (change.op, change.value) {
                (ChangeOp::Assign, None) => None,
                (ChangeOp::Assign, Some(Ok(value))) => Some(value),
                (ChangeOp::Assign, Some(Err(why))) => {
                    first_error.get_or_insert_with(|| {
                        format!(
                            "{}: malformed value of {}: {why}",
                            obj.value,
                            path_of(property)
                        )
                    });
                    continue;
                }
                (ChangeOp::Remove | ChangeOp::IndirectRemove | ChangeOp::Other(_), _) => None,
            };
            target.set(property, value);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The object `obj` names, created when it is new.
    fn object_mut(&mut self, obj: &MoRef) -> Target<'_> {
        let id = obj.value.clone();
        match obj.kind.as_str() {
            "VirtualMachine" => {
                let vm = self.vms.entry(id.clone()).or_insert_with(|| {
                    Arc::new(Vm {
                        id,
                        ..Default::default()
                    })
                });
                Target::Vm(Arc::make_mut(vm))
            }
            "HostSystem" => Target::Host(self.hosts.entry(id.clone()).or_insert_with(|| Host {
                id,
                ..Default::default()
            })),
            "ComputeResource" | "ClusterComputeResource" => {
                let is_cluster = obj.kind == "ClusterComputeResource";
                let cr =
                    self.compute_resources
                        .entry(id.clone())
                        .or_insert_with(|| ComputeResource {
                            id,
                            is_cluster,
                            ..Default::default()
                        });
                Target::Named(&mut cr.name, Some(&mut cr.parent))
            }
            "Folder" => {
                let folder = self.folders.entry(id.clone()).or_insert_with(|| Folder {
                    id,
                    ..Default::default()
                });
                Target::Named(&mut folder.name, Some(&mut folder.parent))
            }
            "Datacenter" => {
                let dc = self
                    .datacenters
                    .entry(id.clone())
                    .or_insert_with(|| Datacenter {
                        id,
                        ..Default::default()
                    });
                Target::Named(&mut dc.name, None)
            }
            "Datastore" => Target::Datastore(self.datastores.entry(id.clone()).or_insert_with(
                || Datastore {
                    id,
                    ..Default::default()
                },
            )),
            "CustomFieldsManager" => Target::CustomFields(&mut self.custom_fields),
            _ => Target::None,
        }
    }

    /// Applies the changes of the root folder's `triggeredAlarmState` (the alarms' filter):
    /// the alarms triggered now replace those held; an unset value is none.
    pub fn apply_alarm_changes(&mut self, changes: Vec<Change>) -> Result<(), String> {
        for change in changes {
            if change.property != Ok(Property::TriggeredAlarmState) {
                continue;
            }
            match (change.op, change.value) {
                (ChangeOp::Assign, Some(Ok(Value::AlarmStates(states)))) => {
                    self.triggered_alarms = states;
                }
                (ChangeOp::Other(op), _) => {
                    return Err(format!(
                        "cannot apply a {op:?} change of triggeredAlarmState"
                    ));
                }
                (_, Some(Err(why))) => {
                    return Err(format!("malformed value of triggeredAlarmState: {why}"));
                }
                _ => self.triggered_alarms.clear(),
            }
        }
        Ok(())
    }

    /// Forgets an object (it left the view, or was deleted).
    pub fn remove_object(&mut self, obj: &MoRef) {
        let id = &obj.value;
        match obj.kind.as_str() {
            "VirtualMachine" => {
                self.vms.remove(id);
            }
            "HostSystem" => {
                self.hosts.remove(id);
            }
            "ComputeResource" | "ClusterComputeResource" => {
                self.compute_resources.remove(id);
            }
            "Folder" => {
                self.folders.remove(id);
            }
            "Datacenter" => {
                self.datacenters.remove(id);
            }
            "Datastore" => {
                self.datastores.remove(id);
            }
            _ => {}
        }
    }
}

/// The fields of one object that changes are applied to.
enum Target<'a> {
    Vm(&'a mut Vm),
    Host(&'a mut Host),
    Datastore(&'a mut Datastore),
    /// A name, and a parent for the types that have one.
    Named(&'a mut String, Option<&'a mut Option<MoRef>>),
    /// The custom attribute definitions of the CustomFieldsManager.
    CustomFields(&'a mut BTreeMap<i32, CustomField>),
    /// A type the exporter does not keep.
    None,
}

impl Target<'_> {
    fn set(&mut self, property: Property, value: Option<Value>) {
        match self {
            Target::Vm(vm) => set_vm_property(vm, property, value),
            Target::Host(host) => set_host_property(host, property, value),
            Target::Datastore(ds) => set_datastore_property(ds, property, value),
            Target::CustomFields(fields) => match (property, value) {
                (Property::CustomFields, Some(Value::CustomFields(f))) => **fields = f,
                (Property::CustomFields, _) => fields.clear(),
                _ => {}
            },
            Target::Named(name, parent) => match (property, value) {
                (Property::Name, Some(Value::Text(text))) => **name = text,
                (Property::Name, _) => name.clear(),
                (Property::Parent, Some(Value::MoRef(r))) => {
                    if let Some(parent) = parent {
                        **parent = Some(r);
                    }
                }
                (Property::Parent, _) => {
                    if let Some(parent) = parent {
                        **parent = None;
                    }
                }
                _ => {}
            },
            Target::None => {}
        }
    }
}

/// Sets one HostSystem property (`None`: unset).
fn set_host_property(host: &mut Host, property: Property, value: Option<Value>) {
    match (property, value) {
        (Property::Name, Some(Value::Text(s))) => host.name = s,
        (Property::Name, _) => host.name.clear(),
        (Property::Parent, Some(Value::MoRef(r))) => host.parent = Some(r),
        (Property::Parent, _) => host.parent = None,
        (Property::ConnectionState, Some(Value::Text(s))) => host.connection_state = s,
        (Property::ConnectionState, _) => host.connection_state.clear(),
        (Property::InMaintenanceMode, Some(Value::Bool(b))) => host.in_maintenance = b,
        (Property::InMaintenanceMode, _) => host.in_maintenance = false,
        (Property::ProductVersion, Some(Value::Text(s))) => host.version = s,
        (Property::ProductVersion, _) => host.version.clear(),
        (Property::ProductBuild, Some(Value::Text(s))) => host.build = s,
        (Property::ProductBuild, _) => host.build.clear(),
        _ => {}
    }
}

/// Sets one Datastore property (`None`: unset).
fn set_datastore_property(ds: &mut Datastore, property: Property, value: Option<Value>) {
    let long = |value: Option<Value>| match value {
        Some(Value::Long(n)) => Some(n),
        _ => None,
    };
    match (property, value) {
        (Property::Name, Some(Value::Text(text))) => ds.name = text,
        (Property::Name, _) => ds.name.clear(),
        (Property::Url, Some(Value::Text(text))) => ds.url = text,
        (Property::Url, _) => ds.url.clear(),
        (Property::Capacity, v) => ds.capacity_bytes = long(v),
        (Property::FreeSpace, v) => ds.free_bytes = long(v),
        (Property::Uncommitted, v) => ds.uncommitted_bytes = long(v),
        (Property::FsType, Some(Value::Text(text))) => ds.fs_type = text,
        (Property::FsType, _) => ds.fs_type.clear(),
        (Property::Accessible, Some(Value::Bool(b))) => ds.accessible = Some(b),
        (Property::Accessible, _) => ds.accessible = None,
        (Property::DatastoreInfo, Some(Value::ExtentDisks(disks))) => ds.extent_disks = disks,
        (Property::DatastoreInfo, _) => ds.extent_disks.clear(),
        _ => {}
    }
}

/// Sets one VirtualMachine property (`None`: unset).
pub fn set_vm_property(vm: &mut Vm, property: Property, value: Option<Value>) {
    let Some(value) = value else {
        clear_vm_property(vm, property);
        return;
    };
    match (property, value) {
        (Property::Name, Value::Text(s)) => vm.name = s,
        (Property::Host, Value::MoRef(r)) => vm.host = Some(r.value),
        (Property::PowerState, Value::Text(s)) => vm.power_state = s,
        (Property::ConsolidationNeeded, Value::Bool(b)) => vm.consolidation_needed = b,
        (Property::Snapshot, Value::Snapshot(s)) => vm.snapshot = Some(s),
        (Property::LayoutEx, Value::LayoutEx(l)) => vm.layout_ex = Some(l),
        (Property::ToolsVersionStatus2, Value::Text(s)) => vm.tools_version_status2 = Some(s),
        (Property::ToolsRunningStatus, Value::Text(s)) => vm.tools_running_status = Some(s),
        (Property::ToolsVersion, Value::Text(s)) => vm.tools_version = Some(s),
        (Property::GuestId, Value::Text(s)) => vm.guest_id = s,
        (Property::Template, Value::Bool(b)) => vm.template = b,
        (Property::Devices, Value::Devices(d)) => vm.devices = d,
        (Property::ConnectionState, Value::Text(s)) => vm.connection_state = s,
        (Property::FaultToleranceState, Value::Text(s)) => {
            vm.fault_tolerance_state = Some(s).filter(|s| !s.is_empty());
        }
        (Property::Question, Value::Question(q)) => vm.question = Some(q),
        (Property::CustomValue, Value::CustomValues(v)) => vm.backup.custom_values = v,
        (Property::Annotation, Value::Text(s)) => vm.backup.annotation = s,
        (Property::ChangeTrackingEnabled, Value::Bool(b)) => vm.backup.cbt_enabled = b,
        (Property::GuestFamily, Value::Text(s)) => {
            vm.backup.guest_family = Some(s).filter(|f| !f.is_empty());
        }
        (Property::Datastores, Value::Ids(ids)) => vm.backup.datastores = ids,
        (Property::EnableUuid | Property::ExtraConfig, Value::EnableUuid(v)) => {
            vm.backup.disk_enable_uuid = v;
        }
        // read_value gives each property its own shape; nothing else reaches here.
        _ => {}
    }
}

/// Puts a VirtualMachine property back to "not set".
pub fn clear_vm_property(vm: &mut Vm, property: Property) {
    match property {
        Property::Name => vm.name.clear(),
        Property::Host => vm.host = None,
        Property::PowerState => vm.power_state.clear(),
        Property::ConsolidationNeeded => vm.consolidation_needed = false,
        Property::Snapshot => vm.snapshot = None,
        Property::LayoutEx => vm.layout_ex = None,
        Property::ToolsVersionStatus2 => vm.tools_version_status2 = None,
        Property::ToolsRunningStatus => vm.tools_running_status = None,
        Property::ToolsVersion => vm.tools_version = None,
        Property::GuestId => vm.guest_id.clear(),
        Property::Template => vm.template = false,
        Property::Devices => vm.devices = Default::default(),
        Property::ConnectionState => vm.connection_state.clear(),
        Property::FaultToleranceState => vm.fault_tolerance_state = None,
        Property::Question => vm.question = None,
        Property::CustomValue => vm.backup.custom_values.clear(),
        Property::Annotation => vm.backup.annotation.clear(),
        Property::ChangeTrackingEnabled => vm.backup.cbt_enabled = false,
        Property::GuestFamily => vm.backup.guest_family = None,
        Property::Datastores => vm.backup.datastores.clear(),
        Property::EnableUuid | Property::ExtraConfig => vm.backup.disk_enable_uuid = None,
        // Not VirtualMachine properties.
        Property::Parent
        | Property::InMaintenanceMode
        | Property::ProductVersion
        | Property::ProductBuild
        | Property::Url
        | Property::Capacity
        | Property::FreeSpace
        | Property::Uncommitted
        | Property::FsType
        | Property::Accessible
        | Property::DatastoreInfo
        | Property::CustomFields
        | Property::TriggeredAlarmState
        | Property::AlarmName => {}
    }
}
