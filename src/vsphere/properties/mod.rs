//! The property paths the exporter asks the PropertyCollector for, and how their values become
//! the typed [`Inventory`] (the model itself is [`super::model`]). No I/O: the mirror
//! ([`super::mirror`]) sends the requests made here and hands the answers to this parse.
//!
//! One table, [`VM_PROPERTIES`], lists the VirtualMachine properties read, and one,
//! [`OTHER_PROPERTIES`], those of the other object types: the requests
//! ([`property_specs_with`], [`snapshot_vm_specs`], [`windows_vm_specs`]) and the parse
//! ([`property_of`]) are both made from them. Values are decoded straight from the XML events
//! into the model ([`read_value`]; the backup checks' values in [`backup`]);
//! an ObjectUpdate or ObjectContent becomes an [`ObjectUpdate`] ([`read_object`]) that
//! [`Inventory::apply_changes`] applies.
//!
//! A value that does not parse (a number that is not one, an unknown time format) is reported
//! as malformed for that one property; the XML around it is still read to its end, so one odd
//! VM never costs the rest of the answer.

pub mod backup;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

use self::backup::{
    ENABLE_UUID_PATH, EXTRA_CONFIG_PATH, read_custom_fields, read_custom_values,
    read_datastore_extents, read_enable_uuid, read_extra_config_enable_uuid,
};
use super::error::ParseError;
use super::model::{
    ComputeResource, CustomField, Datacenter, Datastore, DiskLayout, Folder, Host, Inventory,
    LayoutEx, LayoutFile, MoId, MoRef, SnapshotInfo, SnapshotLayout, SnapshotTree, Vm,
};
use super::names::decode_entity_name;
use super::soap::PropertySpec;
use super::xml::{self, Cursor, Limits, UpdateSetHead};

/// The managed object types the inventory container view holds. ComputeResource covers
/// clusters too for the PropertyCollector, but a ContainerView filters by exact type, so the
/// cluster type is listed as well.
pub const VIEW_TYPES: &[&str] = &[
    "VirtualMachine",
    "HostSystem",
    "ComputeResource",
    "ClusterComputeResource",
    "Folder",
    "Datacenter",
    "Datastore",
];

/// A property the exporter reads, whatever object it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// `name` of any object.
    Name,
    /// `parent` of a host, compute resource or folder.
    Parent,
    /// `runtime.host`.
    Host,
    /// `runtime.powerState`.
    PowerState,
    /// `runtime.consolidationNeeded`.
    ConsolidationNeeded,
    /// `snapshot`: the VirtualMachineSnapshotInfo with its trees.
    Snapshot,
    /// `layoutEx`: the VM's files and disk chains.
    LayoutEx,
    /// `guest.toolsVersionStatus2`.
    ToolsVersionStatus2,
    /// `guest.toolsRunningStatus`.
    ToolsRunningStatus,
    /// `guest.toolsVersion`.
    ToolsVersion,
    /// `config.guestId`.
    GuestId,
    /// `config.template`.
    Template,
    /// `config.hardware.device`: only the capacities of virtual disks are kept.
    Devices,
    /// A host's `runtime.connectionState`.
    ConnectionState,
    /// A host's `runtime.inMaintenanceMode`.
    InMaintenanceMode,
    /// A host's `summary.config.product.version`.
    ProductVersion,
    /// A host's `summary.config.product.build`.
    ProductBuild,
    /// A datastore's `summary.url` (`ds:///vmfs/volumes/<uuid>/`), the volume its performance
    /// counters are reported under.
    Url,
    /// `customValue`: a VM's custom attribute values (the backup checks', as the next ones;
    /// see [`backup`]).
    CustomValue,
    /// `config.annotation`: the notes.
    Annotation,
    /// `config.changeTrackingEnabled`.
    ChangeTrackingEnabled,
    /// `guest.guestFamily`.
    GuestFamily,
    /// `datastore`: where the VM's files are.
    Datastores,
    /// `config.extraConfig["disk.EnableUUID"]`, the keyed path.
    EnableUuid,
    /// `config.extraConfig` whole, of which only `disk.EnableUUID` is kept.
    ExtraConfig,
    /// A datastore's `summary.capacity`.
    Capacity,
    /// `summary.freeSpace`.
    FreeSpace,
    /// `summary.uncommitted`.
    Uncommitted,
    /// `summary.type`.
    FsType,
    /// `summary.accessible`.
    Accessible,
    /// `info`, of which only the VMFS extents' disk names are kept.
    DatastoreInfo,
    /// `CustomFieldsManager.field`: the custom attribute definitions.
    CustomFields,
}

impl Property {
    /// True for the properties read for the backup checks alone (what they add to the
    /// inventory's traffic, `examples/backup_cost.rs`).
    pub fn is_backup_check(self) -> bool {
        matches!(
            self,
            Property::CustomValue
                | Property::Annotation
                | Property::ChangeTrackingEnabled
                | Property::GuestFamily
                | Property::Datastores
                | Property::EnableUuid
                | Property::ExtraConfig
                | Property::Capacity
                | Property::FreeSpace
                | Property::Uncommitted
                | Property::FsType
                | Property::Accessible
                | Property::DatastoreInfo
                | Property::CustomFields
        )
    }
}

/// Which VMs a property is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every VM, through the inventory view.
    EveryVm,
    /// Every VM, through the inventory view, where vCenter accepts a keyed path into
    /// `config.extraConfig` (the mirror asks a few VMs first).
    EveryVmWhereKeyed,
    /// Only the VMs with snapshots, through the ListView: these are most of the bytes
    /// (devices, the file list) and matter only for snapshot sizes and the disk capacity they
    /// are compared with.
    VmsWithSnapshots,
    /// Only the Windows guests, through a ListView of their own, where vCenter refuses the
    /// keyed path: `config.extraConfig` whole is large and matters only for them.
    WindowsVms,
}

/// One VirtualMachine property the exporter reads.
#[derive(Debug, Clone, Copy)]
pub struct VmProperty {
    /// The property path asked for (`runtime.powerState`).
    pub path: &'static str,
    pub property: Property,
    pub scope: Scope,
}

const fn vm(path: &'static str, property: Property, scope: Scope) -> VmProperty {
    VmProperty {
        path,
        property,
        scope,
    }
}

/// The VirtualMachine properties read: the one table the requests and the parse come from.
/// `layoutEx` is asked for whole (only its `timestamp` is not needed) because vCenter reports
/// a change under the path asked for, and file sizes change inside it.
pub const VM_PROPERTIES: &[VmProperty] = &[
    vm("name", Property::Name, Scope::EveryVm),
    vm("runtime.host", Property::Host, Scope::EveryVm),
    vm("runtime.powerState", Property::PowerState, Scope::EveryVm),
    vm(
        "runtime.consolidationNeeded",
        Property::ConsolidationNeeded,
        Scope::EveryVm,
    ),
    vm("snapshot", Property::Snapshot, Scope::EveryVm),
    vm(
        "guest.toolsVersionStatus2",
        Property::ToolsVersionStatus2,
        Scope::EveryVm,
    ),
    vm(
        "guest.toolsRunningStatus",
        Property::ToolsRunningStatus,
        Scope::EveryVm,
    ),
    vm("guest.toolsVersion", Property::ToolsVersion, Scope::EveryVm),
    vm("config.guestId", Property::GuestId, Scope::EveryVm),
    vm("config.template", Property::Template, Scope::EveryVm),
    vm("layoutEx", Property::LayoutEx, Scope::VmsWithSnapshots),
    vm(
        "config.hardware.device",
        Property::Devices,
        Scope::VmsWithSnapshots,
    ),
    vm("customValue", Property::CustomValue, Scope::EveryVm),
    vm("config.annotation", Property::Annotation, Scope::EveryVm),
    vm(
        "config.changeTrackingEnabled",
        Property::ChangeTrackingEnabled,
        Scope::EveryVm,
    ),
    vm("guest.guestFamily", Property::GuestFamily, Scope::EveryVm),
    vm("datastore", Property::Datastores, Scope::EveryVm),
    vm(
        ENABLE_UUID_PATH,
        Property::EnableUuid,
        Scope::EveryVmWhereKeyed,
    ),
    vm(EXTRA_CONFIG_PATH, Property::ExtraConfig, Scope::WindowsVms),
];

/// A property of another object type of the inventory view: its type, path and meaning.
#[derive(Debug, Clone, Copy)]
pub struct ObjectProperty {
    pub kind: &'static str,
    pub path: &'static str,
    pub property: Property,
}

const fn of(kind: &'static str, path: &'static str, property: Property) -> ObjectProperty {
    ObjectProperty {
        kind,
        path,
        property,
    }
}

/// The properties read of the other object types of the inventory view, grouped by type: where
/// hosts sit, and what the host I/O metrics need (whether a host can be asked for counters, its
/// ESXi release, a datastore's volume). ClusterComputeResource is a ComputeResource to the
/// PropertyCollector.
pub const OTHER_PROPERTIES: &[ObjectProperty] = &[
    of("HostSystem", "name", Property::Name),
    of("HostSystem", "parent", Property::Parent),
    of(
        "HostSystem",
        "runtime.connectionState",
        Property::ConnectionState,
    ),
    of(
        "HostSystem",
        "runtime.inMaintenanceMode",
        Property::InMaintenanceMode,
    ),
    of(
        "HostSystem",
        "summary.config.product.version",
        Property::ProductVersion,
    ),
    of(
        "HostSystem",
        "summary.config.product.build",
        Property::ProductBuild,
    ),
    of("ComputeResource", "name", Property::Name),
    of("ComputeResource", "parent", Property::Parent),
    of("Folder", "name", Property::Name),
    of("Folder", "parent", Property::Parent),
    of("Datacenter", "name", Property::Name),
    of("Datastore", "name", Property::Name),
    of("Datastore", "summary.url", Property::Url),
    of("Datastore", "summary.capacity", Property::Capacity),
    of("Datastore", "summary.freeSpace", Property::FreeSpace),
    of("Datastore", "summary.uncommitted", Property::Uncommitted),
    of("Datastore", "summary.type", Property::FsType),
    of("Datastore", "summary.accessible", Property::Accessible),
    of("Datastore", "info", Property::DatastoreInfo),
    // Not in the view: the inventory filter names the CustomFieldsManager itself.
    of("CustomFieldsManager", "field", Property::CustomFields),
];

/// The VM property paths of one scope, in the table's order.
pub fn vm_paths(scope: Scope) -> Vec<&'static str> {
    VM_PROPERTIES
        .iter()
        .filter(|p| p.scope == scope)
        .map(|p| p.path)
        .collect()
}

/// The property sets read for every object of the inventory view (and the
/// CustomFieldsManager, which the inventory filter names besides the view), the keyed
/// `disk.EnableUUID` among the VM's when `keyed` (vCenter accepts it).
pub fn property_specs_with(keyed: bool) -> Vec<PropertySpec> {
    let mut vm_paths = vm_paths(Scope::EveryVm);
    if keyed {
        vm_paths.extend(self::vm_paths(Scope::EveryVmWhereKeyed));
    }
    let mut specs = vec![PropertySpec {
        kind: "VirtualMachine",
        paths: vm_paths,
    }];
    for p in OTHER_PROPERTIES {
        match specs.last_mut() {
            Some(spec) if spec.kind == p.kind => spec.paths.push(p.path),
            _ => specs.push(PropertySpec {
                kind: p.kind,
                paths: vec![p.path],
            }),
        }
    }
    specs
}

/// The property sets of the inventory, without the keyed `disk.EnableUUID`.
pub fn property_specs() -> Vec<PropertySpec> {
    property_specs_with(false)
}

/// The property set read for the VMs with snapshots.
pub fn snapshot_vm_specs() -> Vec<PropertySpec> {
    vec![PropertySpec {
        kind: "VirtualMachine",
        paths: vm_paths(Scope::VmsWithSnapshots),
    }]
}

/// The property set read for the Windows guests where the keyed path is refused.
pub fn windows_vm_specs() -> Vec<PropertySpec> {
    vec![PropertySpec {
        kind: "VirtualMachine",
        paths: vm_paths(Scope::WindowsVms),
    }]
}

/// The CustomFieldsManager's property set alone (the inventory's sets include it).
pub fn custom_fields_spec() -> PropertySpec {
    PropertySpec {
        kind: "CustomFieldsManager",
        paths: OTHER_PROPERTIES
            .iter()
            .filter(|p| p.kind == "CustomFieldsManager")
            .map(|p| p.path)
            .collect(),
    }
}

/// What a property path of an object type is to the exporter; `None` for a path it does not
/// read (vCenter may report a change below a path asked for, `layoutEx.file`).
pub fn property_of(kind: &str, path: &str) -> Option<Property> {
    if kind == "VirtualMachine" {
        return VM_PROPERTIES
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.property);
    }
    let kind = if kind == "ClusterComputeResource" {
        "ComputeResource"
    } else {
        kind
    };
    OTHER_PROPERTIES
        .iter()
        .find(|p| p.kind == kind && p.path == path)
        .map(|p| p.property)
}

/// The path of a property, for messages.
pub fn path_of(property: Property) -> &'static str {
    let vm = VM_PROPERTIES.iter().map(|p| (p.property, p.path));
    let other = OTHER_PROPERTIES.iter().map(|p| (p.property, p.path));
    vm.chain(other)
        .find(|(p, _)| *p == property)
        .map_or("?", |(_, path)| path)
}

/// The VMs whose snapshot-only properties are wanted: those with at least one snapshot.
pub fn vms_with_snapshots(inventory: &Inventory) -> Vec<MoRef> {
    inventory
        .vms
        .values()
        .filter(|vm| vm.has_snapshots())
        .map(|vm| MoRef::new("VirtualMachine", &vm.id))
        .collect()
}

/// Drops the snapshot-only properties of a VM that no longer has snapshots.
pub fn clear_snapshot_vm_properties(vm: &mut Vm) {
    for p in VM_PROPERTIES
        .iter()
        .filter(|p| p.scope == Scope::VmsWithSnapshots)
    {
        clear_vm_property(vm, p.property);
    }
}

/// A property value, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    MoRef(MoRef),
    Snapshot(SnapshotInfo),
    LayoutEx(LayoutEx),
    /// The capacities of the virtual disks of `config.hardware.device`, in bytes.
    DiskCapacities(Vec<u64>),
    /// An `xsd:long` as sent (signed).
    Long(i64),
    /// `customValue`: (field key, value), in vCenter's order.
    CustomValues(Vec<(i32, String)>),
    /// An array of references: their ids.
    Ids(Vec<MoId>),
    /// `disk.EnableUUID` as ESXi reads it; `None` when the key is absent.
    EnableUuid(Option<bool>),
    /// The VMFS extents' disk names of a datastore's `info` (none for other file systems).
    ExtentDisks(Vec<String>),
    /// `CustomFieldsManager.field`, by key.
    CustomFields(BTreeMap<i32, CustomField>),
}

/// What a PropertyChange does (`op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOp {
    Assign,
    Remove,
    IndirectRemove,
    /// `add` and anything else: a change inside an array, which the mirror cannot apply.
    Other(String),
}

/// One PropertyChange (or, in an ObjectContent, one DynamicProperty as an assignment).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The property, or the path when the exporter does not read it.
    pub property: Result<Property, String>,
    pub op: ChangeOp,
    /// `None`: no value (unset); `Some(Err)`: a value that did not parse, with why.
    pub value: Option<Result<Value, String>>,
}

impl Change {
    /// The path, for messages.
    pub fn path(&self) -> &str {
        match &self.property {
            Ok(p) => path_of(*p),
            Err(path) => path,
        }
    }
}

/// `kind` of an ObjectUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Enter,
    Modify,
    Leave,
}

/// One ObjectUpdate of a WaitForUpdatesEx answer, or one ObjectContent of a
/// RetrievePropertiesEx answer (an `enter` with its properties assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectUpdate {
    pub kind: UpdateKind,
    pub obj: MoRef,
    pub changes: Vec<Change>,
    /// The path of a property vCenter could not read because the session is gone
    /// (a `missingSet` with a NotAuthenticated fault).
    pub session_lost: Option<String>,
}

/// Reads an `objectSet` (ObjectUpdate) or `objects` (ObjectContent) element that `cur` has
/// just returned, to its end.
pub fn read_object<R: BufRead>(cur: &mut Cursor<R>) -> Result<ObjectUpdate, ParseError> {
    cur.enter();
    let mut kind = UpdateKind::Enter;
    let mut obj: Option<MoRef> = None;
    let mut changes = Vec::new();
    let mut session_lost = None;
    while cur.next_child()? {
        match cur.name() {
            b"kind" => {
                kind = match cur.text()?.trim() {
                    "enter" => UpdateKind::Enter,
                    "modify" => UpdateKind::Modify,
                    "leave" => UpdateKind::Leave,
                    other => {
                        return Err(ParseError::Malformed(format!(
                            "unknown ObjectUpdate kind {other:?}"
                        )));
                    }
                }
            }
            b"obj" => obj = cur.moref()?,
            // The WSDL's sequence puts `obj` before the properties, so their type is known.
            b"changeSet" | b"propSet" => {
                let kind = obj.as_ref().map_or("", |o| o.kind.as_str());
                changes.push(read_change(cur, kind)?);
            }
            b"missingSet" => {
                if let Some(path) = read_missing(cur)? {
                    session_lost = Some(path);
                }
            }
            _ => {}
        }
    }
    let obj = obj.ok_or_else(|| ParseError::Malformed("an update without its object".into()))?;
    Ok(ObjectUpdate {
        kind,
        obj,
        changes,
        session_lost,
    })
}

/// A PropertyChange (`name`, `op`, `val`) or DynamicProperty (`name`, `val`).
fn read_change<R: BufRead>(cur: &mut Cursor<R>, kind: &str) -> Result<Change, ParseError> {
    cur.enter();
    let mut change = Change {
        property: Err(String::new()),
        op: ChangeOp::Assign,
        value: None,
    };
    while cur.next_child()? {
        match cur.name() {
            b"name" => {
                let path = cur.text()?.trim();
                change.property = property_of(kind, path).ok_or_else(|| path.to_string());
            }
            b"op" => {
                change.op = match cur.text()?.trim() {
                    "assign" => ChangeOp::Assign,
                    "remove" => ChangeOp::Remove,
                    "indirectRemove" => ChangeOp::IndirectRemove,
                    other => ChangeOp::Other(other.to_string()),
                }
            }
            b"val" => {
                // A path the exporter does not read: its value is skipped unread.
                if let Ok(property) = change.property {
                    change.value = Some(read_value(cur, property)?);
                }
            }
            _ => {}
        }
    }
    Ok(change)
}

/// A `missingSet`: the path when its fault is NotAuthenticated.
fn read_missing<R: BufRead>(cur: &mut Cursor<R>) -> Result<Option<String>, ParseError> {
    cur.enter();
    let mut path = String::new();
    let mut not_authenticated = false;
    while cur.next_child()? {
        match cur.name() {
            b"path" => path = cur.text()?.trim().to_string(),
            // LocalizedMethodFault: its `fault` holds the MethodFault by its xsi:type.
            b"fault" => {
                cur.enter();
                while cur.next_child()? {
                    if cur.is("fault") {
                        let xsi_type = cur.xsi_type()?.map(str::to_string);
                        let kind = xsi_type.as_deref().map_or(cur.name(), str::as_bytes);
                        not_authenticated |= kind == b"NotAuthenticated";
                    }
                }
            }
            _ => {}
        }
    }
    Ok(not_authenticated.then_some(path))
}

/// Decodes the value of `property` from the `val` element `cur` has just returned, to its
/// end tag. The outer error is XML that cannot be read on; the inner one a value that does not
/// make sense, the XML around it read to its end.
pub fn read_value<R: BufRead>(
    cur: &mut Cursor<R>,
    property: Property,
) -> Result<Result<Value, String>, ParseError> {
    Ok(match property {
        // Names are kept as the vSphere Client shows them, spaces included.
        Property::Name => Ok(Value::Text(entity_name(cur.text()?))),
        Property::Parent | Property::Host => cur
            .moref()?
            .map(Value::MoRef)
            .ok_or_else(|| "a reference without its type".to_string()),
        Property::PowerState
        | Property::ToolsVersionStatus2
        | Property::ToolsRunningStatus
        | Property::ToolsVersion
        | Property::GuestId
        | Property::ConnectionState
        | Property::ProductVersion
        | Property::ProductBuild
        | Property::Url
        | Property::GuestFamily
        | Property::FsType => Ok(Value::Text(cur.text()?.trim().to_string())),
        // The notes as written, line breaks and spaces included.
        Property::Annotation => Ok(Value::Text(cur.text()?.to_string())),
        Property::ConsolidationNeeded
        | Property::Template
        | Property::InMaintenanceMode
        | Property::ChangeTrackingEnabled
        | Property::Accessible => parse_bool(cur.text()?).map(Value::Bool),
        Property::Capacity | Property::FreeSpace | Property::Uncommitted => {
            let what = path_of(property);
            parse_num(what, cur.text()?).map(Value::Long)
        }
        Property::Snapshot => read_snapshot_info(cur)?.map(Value::Snapshot),
        Property::LayoutEx => read_layout_ex(cur)?.map(Value::LayoutEx),
        Property::Devices => read_disk_capacities(cur)?.map(Value::DiskCapacities),
        Property::Datastores => Ok(Value::Ids(read_ids(cur)?)),
        Property::CustomValue => read_custom_values(cur)?.map(Value::CustomValues),
        Property::EnableUuid => Ok(Value::EnableUuid(read_enable_uuid(cur)?)),
        Property::ExtraConfig => Ok(Value::EnableUuid(read_extra_config_enable_uuid(cur)?)),
        Property::DatastoreInfo => Ok(Value::ExtentDisks(read_datastore_extents(cur)?)),
        Property::CustomFields => read_custom_fields(cur)?.map(Value::CustomFields),
    })
}

/// An array of ManagedObjectReferences: the ids of those that carry their type.
fn read_ids<R: BufRead>(cur: &mut Cursor<R>) -> Result<Vec<MoId>, ParseError> {
    cur.enter();
    let mut ids = Vec::new();
    while cur.next_child()? {
        if let Some(r) = cur.moref()? {
            ids.push(r.value);
        }
    }
    Ok(ids)
}

/// Keeps the first reason a value is malformed while the rest of it is read.
#[derive(Default)]
pub(super) struct Bad(Option<String>);

impl Bad {
    pub(super) fn note(&mut self, why: impl FnOnce() -> String) {
        if self.0.is_none() {
            self.0 = Some(why());
        }
    }

    pub(super) fn keep<T>(&mut self, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(why) => {
                self.note(|| why);
                None
            }
        }
    }

    pub(super) fn or<T>(self, value: T) -> Result<T, String> {
        match self.0 {
            Some(why) => Err(why),
            None => Ok(value),
        }
    }
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("not a boolean: {other:?}")),
    }
}

pub(super) fn parse_num<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{what} is not a number: {:?}", truncated(text)))
}

/// At most 64 bytes of a value, for a message.
fn truncated(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A name as the vSphere Client shows it (see [`super::names`]).
fn entity_name(sent: &str) -> String {
    decode_entity_name(sent).into_owned()
}

/// An `xsd:dateTime` as seconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<f64> {
    let ts: jiff::Timestamp = text.trim().parse().ok()?;
    Some(ts.as_millisecond() as f64 / 1000.0)
}

/// `VirtualMachineSnapshotInfo`.
fn read_snapshot_info<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotInfo, String>, ParseError> {
    cur.enter();
    let mut info = SnapshotInfo::default();
    let mut bad = Bad::default();
    while cur.next_child()? {
        match cur.name() {
            b"currentSnapshot" => info.current_snapshot = Some(cur.text()?.trim().to_string()),
            b"rootSnapshotList" => {
                if let Some(tree) = bad.keep(read_snapshot_tree(cur)?) {
                    info.root_snapshot_list.push(tree);
                }
            }
            _ => {}
        }
    }
    Ok(bad.or(info))
}

/// `VirtualMachineSnapshotTree`, children included. Trees are as deep as a VM's snapshot
/// chain (vSphere allows 32 levels); the cursor bounds the depth of any document.
fn read_snapshot_tree<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotTree, String>, ParseError> {
    cur.enter();
    let mut tree = SnapshotTree::default();
    let mut bad = Bad::default();
    let mut snapshot = None;
    let mut created = None;
    while cur.next_child()? {
        match cur.name() {
            b"snapshot" => snapshot = cur.moref()?.map(|r| r.value),
            b"name" => tree.name = entity_name(cur.text()?),
            b"description" => tree.description = cur.text()?.to_string(),
            b"createTime" => {
                let text = cur.text()?;
                created = parse_datetime(text);
                if created.is_none() {
                    bad.note(|| format!("createTime is not a time: {:?}", truncated(text)));
                }
            }
            b"state" => tree.state = cur.text()?.trim().to_string(),
            b"quiesced" => {
                let quiesced = parse_bool(cur.text()?);
                tree.quiesced = bad.keep(quiesced).unwrap_or(false);
            }
            b"childSnapshotList" => {
                if let Some(child) = bad.keep(read_snapshot_tree(cur)?) {
                    tree.child_snapshot_list.push(child);
                }
            }
            _ => {}
        }
    }
    match (snapshot, created) {
        (Some(snapshot), Some(seconds)) => {
            tree.snapshot = snapshot;
            tree.create_time_seconds = seconds;
        }
        (None, _) => bad.note(|| "a snapshot tree without its snapshot".into()),
        (_, None) => bad.note(|| "a snapshot tree without its createTime".into()),
    }
    Ok(bad.or(tree))
}

/// `VirtualMachineFileLayoutEx`, asked for whole.
fn read_layout_ex<R: BufRead>(cur: &mut Cursor<R>) -> Result<Result<LayoutEx, String>, ParseError> {
    cur.enter();
    let mut layout = LayoutEx::default();
    let mut bad = Bad::default();
    while cur.next_child()? {
        match cur.name() {
            b"file" => {
                if let Some(file) = bad.keep(read_layout_file(cur)?) {
                    layout.file.push(file);
                }
            }
            b"disk" => {
                if let Some(disk) = bad.keep(read_disk_layout(cur)?) {
                    layout.disk.push(disk);
                }
            }
            b"snapshot" => {
                if let Some(snapshot) = bad.keep(read_snapshot_layout(cur)?) {
                    layout.snapshot.push(snapshot);
                }
            }
            _ => {}
        }
    }
    Ok(bad.or(layout))
}

/// `VirtualMachineFileLayoutExFileInfo`. A missing or odd size counts as 0: the file is
/// still in the chains.
fn read_layout_file<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<LayoutFile, String>, ParseError> {
    cur.enter();
    let mut file = LayoutFile::default();
    let mut key = Err("a file without its key".to_string());
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = parse_num("file key", cur.text()?),
            b"name" => file.name = cur.text()?.to_string(),
            b"type" => file.file_type = cur.text()?.trim().to_string(),
            b"size" => file.size = cur.text()?.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    Ok(key.map(|key| LayoutFile { key, ..file }))
}

/// `VirtualMachineFileLayoutExDiskLayout`: a disk's key and its chain of units.
fn read_disk_layout<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<DiskLayout, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut key = Err("a disk layout without its key".to_string());
    let mut chain = Vec::new();
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = parse_num("disk key", cur.text()?),
            b"chain" => {
                cur.enter();
                let mut unit = Vec::new();
                while cur.next_child()? {
                    if cur.is("fileKey")
                        && let Some(k) = bad.keep(parse_num("fileKey", cur.text()?))
                    {
                        unit.push(k);
                    }
                }
                chain.push(unit);
            }
            _ => {}
        }
    }
    let key = bad.keep(key);
    Ok(bad.or(()).map(|()| DiskLayout {
        key: key.unwrap_or_default(),
        chain,
    }))
}

/// `VirtualMachineFileLayoutExSnapshotLayout`.
fn read_snapshot_layout<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<SnapshotLayout, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut key = None;
    let mut data_key = Err("a snapshot layout without its dataKey".to_string());
    let mut disk = Vec::new();
    while cur.next_child()? {
        match cur.name() {
            b"key" => key = cur.moref()?.map(|r| r.value),
            b"dataKey" => data_key = parse_num("dataKey", cur.text()?),
            b"disk" => {
                if let Some(d) = bad.keep(read_disk_layout(cur)?) {
                    disk.push(d);
                }
            }
            _ => {}
        }
    }
    let data_key = bad.keep(data_key);
    let Some(key) = key else {
        return Ok(Err("a snapshot layout without its key".into()));
    };
    Ok(bad.or(()).map(|()| SnapshotLayout {
        key,
        data_key: data_key.unwrap_or_default(),
        disk,
    }))
}

/// The capacities of the VirtualDisk entries of `config.hardware.device`, in bytes. A VM's
/// device list is most of its bytes (controllers, NICs, backings), and only a virtual disk's
/// capacity is used: everything else is skipped unread.
fn read_disk_capacities<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<Vec<u64>, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut capacities = Vec::new();
    while cur.next_child()? {
        if cur.xsi_type()? != Some("VirtualDisk") {
            continue;
        }
        cur.enter();
        let mut bytes = None;
        let mut kb = None;
        while cur.next_child()? {
            match cur.name() {
                b"capacityInBytes" => bytes = cur.text()?.trim().parse::<u64>().ok(),
                b"capacityInKB" => kb = cur.text()?.trim().parse::<u64>().ok(),
                _ => {}
            }
        }
        let capacity = match (bytes, kb) {
            (Some(b), _) if b > 0 => Some(b),
            (_, Some(kb)) => kb.checked_mul(1024),
            _ => None,
        };
        match capacity {
            Some(c) => capacities.push(c),
            None => bad.note(|| "a virtual disk without a capacity".into()),
        }
    }
    Ok(bad.or(capacities))
}

/// Reads a WaitForUpdatesEx answer, handing each ObjectUpdate with the id of its filter to
/// `on_update` as soon as it is read.
pub fn read_updates<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_update: impl FnMut(&str, ObjectUpdate) -> Result<(), ParseError>,
) -> Result<Option<UpdateSetHead>, ParseError> {
    xml::read_update_set(input, limits, |filter, cur| {
        let update = read_object(cur)?;
        on_update(filter, update)
    })
}

/// Reads a RetrievePropertiesEx (or ContinueRetrievePropertiesEx) answer, handing each object
/// to `on_object` as soon as it is read; returns the paging token when there is one.
pub fn read_objects<R: BufRead>(
    input: R,
    limits: &Limits,
    mut on_object: impl FnMut(ObjectUpdate) -> Result<(), ParseError>,
) -> Result<Option<String>, ParseError> {
    xml::read_retrieve_result(input, limits, |cur| {
        let object = read_object(cur)?;
        on_object(object)
    })
}

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
        (Property::Devices, Value::DiskCapacities(c)) => vm.disk_capacities_bytes = c,
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
        Property::Devices => vm.disk_capacities_bytes.clear(),
        Property::CustomValue => vm.backup.custom_values.clear(),
        Property::Annotation => vm.backup.annotation.clear(),
        Property::ChangeTrackingEnabled => vm.backup.cbt_enabled = false,
        Property::GuestFamily => vm.backup.guest_family = None,
        Property::Datastores => vm.backup.datastores.clear(),
        Property::EnableUuid | Property::ExtraConfig => vm.backup.disk_enable_uuid = None,
        // Not VirtualMachine properties.
        Property::Parent
        | Property::ConnectionState
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
        | Property::CustomFields => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(xml: &str) -> (InventoryBuilder, Option<String>) {
        let mut b = InventoryBuilder::default();
        let token = read_objects(xml.as_bytes(), &Limits::default(), |o| {
            b.add_object(o);
            Ok(())
        })
        .unwrap();
        (b, token)
    }

    const VM_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>1</token>
<objects><obj type="VirtualMachine">vm-42</obj>
<propSet><name>name</name><val xsi:type="xsd:string">db &amp; app</val></propSet>
<propSet><name>runtime.host</name><val type="HostSystem" xsi:type="ManagedObjectReference">host-9</val></propSet>
<propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
<propSet><name>runtime.consolidationNeeded</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>
<propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
 <VirtualDevice xsi:type="VirtualIDEController"><key>200</key></VirtualDevice>
 <VirtualDevice xsi:type="VirtualDisk"><key>2000</key><deviceInfo><label>Hard disk 1</label></deviceInfo><capacityInKB>1024</capacityInKB><capacityInBytes>1048576</capacityInBytes></VirtualDevice>
 <VirtualDevice xsi:type="VirtualDisk"><key>2001</key><capacityInKB>2</capacityInKB></VirtualDevice>
</val></propSet>
<propSet><name>snapshot</name><val xsi:type="VirtualMachineSnapshotInfo"><currentSnapshot type="VirtualMachineSnapshot">snapshot-7</currentSnapshot>
 <rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-6</snapshot><vm type="VirtualMachine">vm-42</vm><name>VEEAM BACKUP TEMPORARY SNAPSHOT</name><description></description><id>1</id><createTime>2026-11-20T10:00:00.5Z</createTime><state>poweredOn</state><quiesced>true</quiesced>
  <childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-7</snapshot><vm type="VirtualMachine">vm-42</vm><name>child</name><id>2</id><createTime>2026-11-21T10:00:00+01:00</createTime><state>poweredOff</state><quiesced>false</quiesced></childSnapshotList>
 </rootSnapshotList></val></propSet>
<propSet><name>layoutEx</name><val xsi:type="VirtualMachineFileLayoutEx"><file><key>1</key><name>[ds] vm/vm.vmdk</name><type>diskDescriptor</type><size>500</size></file><file><key>2</key><name>[ds] vm/vm-Snapshot1.vmsn</name><type>snapshotData</type><size>30000</size></file>
 <disk><key>2000</key><chain><fileKey>1</fileKey><fileKey>3</fileKey></chain></disk>
 <snapshot><key type="VirtualMachineSnapshot">snapshot-6</key><dataKey>2</dataKey><memoryKey>-1</memoryKey><disk><key>2000</key><chain><fileKey>1</fileKey></chain></disk></snapshot><timestamp>2026-11-25T07:58:41Z</timestamp></val></propSet>
<propSet><name>guest.toolsVersionStatus2</name><val xsi:type="xsd:string">guestToolsNeedUpgrade</val></propSet>
<propSet><name>guest.toolsRunningStatus</name><val xsi:type="xsd:string">guestToolsRunning</val></propSet>
</objects>
<objects><obj type="ClusterComputeResource">domain-c7</obj><propSet><name>name</name><val xsi:type="xsd:string">C0</val></propSet><propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">group-h4</val></propSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn a_vm_object_becomes_a_typed_vm() {
        let (b, token) = build(VM_PAGE);
        assert_eq!(token.as_deref(), Some("1"));
        assert_eq!(b.malformed, 0);
        let inv = b.finish();
        let vm = &inv.vms["vm-42"];
        assert_eq!(vm.name, "db & app");
        assert_eq!(vm.host.as_deref(), Some("host-9"));
        assert_eq!(vm.power_state, "poweredOn");
        assert!(vm.consolidation_needed);
        assert!(!vm.template);
        assert_eq!(vm.disk_capacities_bytes, vec![1_048_576, 2048]);
        assert_eq!(
            vm.tools_version_status2.as_deref(),
            Some("guestToolsNeedUpgrade")
        );
        let snap = vm.snapshot.as_ref().unwrap();
        assert_eq!(snap.current_snapshot.as_deref(), Some("snapshot-7"));
        let root = &snap.root_snapshot_list[0];
        assert_eq!(root.snapshot, "snapshot-6");
        assert_eq!(root.name, "VEEAM BACKUP TEMPORARY SNAPSHOT");
        assert_eq!(root.create_time_seconds, 1_795_168_800.5);
        assert!(root.quiesced);
        let child = &root.child_snapshot_list[0];
        assert_eq!(child.create_time_seconds, 1_795_251_600.0);
        assert_eq!(child.state, "poweredOff");
        let layout = vm.layout_ex.as_ref().unwrap();
        assert_eq!(
            layout.file[1],
            LayoutFile {
                key: 2,
                name: "[ds] vm/vm-Snapshot1.vmsn".into(),
                file_type: "snapshotData".into(),
                size: 30000
            }
        );
        assert_eq!(layout.disk[0].chain, vec![vec![1, 3]]);
        assert_eq!(layout.snapshot[0].key, "snapshot-6");
        assert_eq!(layout.snapshot[0].data_key, 2);
        assert_eq!(layout.snapshot[0].disk[0].chain, vec![vec![1]]);
        let cluster = &inv.compute_resources["domain-c7"];
        assert!(cluster.is_cluster);
        assert_eq!(cluster.name, "C0");
        assert_eq!(cluster.parent, Some(MoRef::new("Folder", "group-h4")));
    }

    #[test]
    fn only_virtual_disks_count_among_devices_and_their_other_parts_are_skipped() {
        let devices = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="VirtualMachine">vm-1</obj><propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualE1000"><key>4000</key><capacityInKB>99</capacityInKB><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName></backing></VirtualDevice>
<VirtualDevice xsi:type="VirtualDisk"><key>2000</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] a.vmdk</fileName><capacityInKB>5</capacityInKB><parent><capacityInBytes>7</capacityInBytes></parent></backing><capacityInKB>4</capacityInKB><capacityInBytes>0</capacityInBytes></VirtualDevice>
</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let (b, _) = build(devices);
        assert_eq!(b.malformed, 0);
        // The NIC's capacity and the backing's nested ones are not the disk's: 4 KB, since
        // capacityInBytes 0 means vCenter did not fill it.
        assert_eq!(b.finish().vms["vm-1"].disk_capacities_bytes, vec![4096]);
    }

    #[test]
    fn a_malformed_value_leaves_only_that_property_unset() {
        let xml = VM_PAGE.replace(
            "<createTime>2026-11-20T10:00:00.5Z</createTime>",
            "<createTime>yesterday</createTime>",
        );
        let xml = xml.replace(
            "<val xsi:type=\"xsd:boolean\">true</val>",
            "<val xsi:type=\"xsd:boolean\">maybe</val>",
        );
        let (b, _) = build(&xml);
        assert_eq!(b.malformed, 2);
        let inv = b.finish();
        let vm = &inv.vms["vm-42"];
        assert!(vm.snapshot.is_none());
        assert!(!vm.consolidation_needed);
        assert_eq!(vm.name, "db & app");
        assert_eq!(vm.layout_ex.as_ref().unwrap().file.len(), 2);
        // And the object after the broken values is read.
        assert_eq!(inv.compute_resources["domain-c7"].name, "C0");
    }

    #[test]
    fn malformed_layouts_and_disks_say_what_is_wrong() {
        let value = |property, val: &str| {
            let xml = format!(
                r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><R><val>{val}</val><next>ok</next></R></soapenv:Body></soapenv:Envelope>"#
            );
            let mut cur = Cursor::new(xml.as_bytes(), &Limits::default());
            cur.enter_body().unwrap();
            cur.enter();
            assert!(cur.next_child().unwrap() && cur.is("val"));
            let value = read_value(&mut cur, property).unwrap();
            // The value is read to its end whatever it holds.
            assert!(cur.next_child().unwrap() && cur.is("next"), "{val}");
            value
        };
        for (property, val, why) in [
            (
                Property::LayoutEx,
                "<file><name>x</name></file>",
                "a file without its key",
            ),
            (
                Property::LayoutEx,
                "<file><key>x</key></file>",
                "file key is not a number",
            ),
            (
                Property::LayoutEx,
                "<disk><key>1</key><chain><fileKey>a</fileKey></chain></disk>",
                "fileKey is not a number",
            ),
            (
                Property::LayoutEx,
                "<snapshot><dataKey>1</dataKey></snapshot>",
                "without its key",
            ),
            (
                Property::LayoutEx,
                r#"<snapshot><key type="VirtualMachineSnapshot">s</key></snapshot>"#,
                "without its dataKey",
            ),
            (
                Property::Devices,
                r#"<VirtualDevice xsi:type="VirtualDisk"><key>1</key></VirtualDevice>"#,
                "without a capacity",
            ),
            (
                Property::Devices,
                r#"<VirtualDevice xsi:type="VirtualDisk"><capacityInKB>18446744073709551615</capacityInKB></VirtualDevice>"#,
                "without a capacity",
            ),
            (
                Property::Snapshot,
                "<rootSnapshotList><name>n</name></rootSnapshotList>",
                "without its snapshot",
            ),
            (
                Property::Snapshot,
                r#"<rootSnapshotList><snapshot type="VirtualMachineSnapshot">s</snapshot><createTime>2026-11-20T10:00:00Z</createTime><quiesced>perhaps</quiesced></rootSnapshotList>"#,
                "not a boolean",
            ),
            (Property::Host, "host-1", "without its type"),
            (Property::Template, "yes", "not a boolean"),
        ] {
            let err = value(property, val).unwrap_err();
            assert!(err.contains(why), "{val}: {err}");
        }
        assert_eq!(
            value(
                Property::LayoutEx,
                "<file><key>3</key><size>big</size></file><timestamp>x</timestamp>"
            ),
            Ok(Value::LayoutEx(LayoutEx {
                file: vec![LayoutFile {
                    key: 3,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            "an odd size counts as 0 and the timestamp is not read"
        );
    }

    #[test]
    fn missing_set_not_authenticated_marks_the_session_lost() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="VirtualMachine">vm-1</obj><missingSet><path>name</path><fault><fault xsi:type="NotAuthenticated"><object type="VirtualMachine">vm-1</object><privilegeId>System.View</privilegeId></fault><localizedMessage></localizedMessage></fault></missingSet></objects>
<objects><obj type="VirtualMachine">vm-2</obj><missingSet><path>name</path><fault><fault xsi:type="NoPermission"></fault></fault></missingSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let mut lost = Vec::new();
        read_objects(xml.as_bytes(), &Limits::default(), |o| {
            lost.push(o.session_lost);
            Ok(())
        })
        .unwrap();
        assert_eq!(lost, [Some("name".to_string()), None]);
        let (b, token) = build(xml);
        assert_eq!(token, None);
        assert_eq!(b.session_lost.as_deref(), Some("VirtualMachine:vm-1 name"));
    }

    #[test]
    fn escaped_names_of_every_entity_and_snapshot_are_decoded_as_read() {
        let object = |kind: &str, id: &str, name: &str| {
            format!(
                r#"<objects><obj type="{kind}">{id}</obj><propSet><name>name</name><val xsi:type="xsd:string">{name}</val></propSet></objects>"#
            )
        };
        let objects = [
            object("VirtualMachine", "vm-1", "web%2f01 100%25"),
            object("HostSystem", "host-1", "esx%5c01"),
            object("ClusterComputeResource", "domain-c1", "Prod%2FDMZ"),
            object("Datacenter", "datacenter-1", "Z&#252;rich%2fGen&#232;ve"),
            object("Datastore", "datastore-1", "ds%252f"),
            object("Folder", "group-v1", "vms%2fold"),
        ];
        let snapshot = r#"<objects><obj type="VirtualMachine">vm-1</obj><propSet><name>snapshot</name><val xsi:type="VirtualMachineSnapshotInfo"><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>before%2fafter 50%25</name><createTime>2026-11-20T10:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced></rootSnapshotList></val></propSet></objects>"#;
        let xml = VM_PAGE
            .split_once("<objects>")
            .map(|(head, _)| format!("{head}{}{snapshot}</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>", objects.concat()))
            .unwrap();
        let inv = build(&xml).0.finish();
        assert_eq!(inv.vms["vm-1"].name, "web/01 100%");
        assert_eq!(inv.hosts["host-1"].name, "esx\\01");
        assert_eq!(inv.compute_resources["domain-c1"].name, "Prod/DMZ");
        assert_eq!(inv.datacenters["datacenter-1"].name, "Zürich/Genève");
        assert_eq!(inv.datastores["datastore-1"].name, "ds%2f");
        assert_eq!(inv.folders["group-v1"].name, "vms/old");
        let snapshots = inv.vms["vm-1"].snapshots();
        assert_eq!(snapshots[0].tree.name, "before/after 50%");
    }

    #[test]
    fn host_state_version_and_datastore_url_are_read() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="HostSystem">host-29</obj><propSet><name>name</name><val xsi:type="xsd:string">esx01</val></propSet>
<propSet><name>runtime.connectionState</name><val xsi:type="HostSystemConnectionState">notResponding</val></propSet>
<propSet><name>runtime.inMaintenanceMode</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>summary.config.product.version</name><val xsi:type="xsd:string">8.0.3</val></propSet>
<propSet><name>summary.config.product.build</name><val xsi:type="xsd:string">24022510</val></propSet></objects>
<objects><obj type="HostSystem">host-30</obj><propSet><name>runtime.inMaintenanceMode</name><val xsi:type="xsd:boolean">maybe</val></propSet></objects>
<objects><obj type="Datastore">datastore-12</obj><propSet><name>summary.url</name><val xsi:type="xsd:string">ds:///vmfs/volumes/5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c/</val></propSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let (b, _) = build(xml);
        assert_eq!(b.malformed, 1, "the bad boolean");
        let inv = b.finish();
        let host = &inv.hosts["host-29"];
        assert_eq!(
            (
                host.connection_state.as_str(),
                host.in_maintenance,
                host.version.as_str(),
                host.build.as_str()
            ),
            ("notResponding", true, "8.0.3", "24022510")
        );
        assert!(!inv.hosts["host-30"].in_maintenance);
        assert_eq!(
            inv.datastores["datastore-12"].url,
            "ds:///vmfs/volumes/5f0c6d1a-3e2b7c44-8a1e-0050569e1b2c/"
        );
        let mut inv = inv;
        let obj = MoRef::new("HostSystem", "host-29");
        let unset = |property| Change {
            property: Ok(property),
            op: ChangeOp::Remove,
            value: None,
        };
        inv.apply_changes(
            &obj,
            vec![
                unset(Property::InMaintenanceMode),
                unset(Property::ConnectionState),
            ],
        )
        .unwrap();
        assert!(!inv.hosts["host-29"].in_maintenance);
        assert_eq!(inv.hosts["host-29"].connection_state, "");
    }

    #[test]
    fn an_object_without_its_reference_is_a_malformed_answer() {
        let xml = VM_PAGE.replace(r#"<obj type="VirtualMachine">vm-42</obj>"#, "");
        let err = read_objects(xml.as_bytes(), &Limits::default(), |_| Ok(())).unwrap_err();
        assert_eq!(
            err,
            ParseError::Malformed("an update without its object".into())
        );
    }

    #[test]
    fn paths_not_read_are_skipped_and_changes_below_a_path_are_ignored() {
        let mut inv = Inventory::default();
        let obj = MoRef::new("VirtualMachine", "vm-1");
        let changes = vec![
            Change {
                property: Ok(Property::Name),
                op: ChangeOp::Assign,
                value: Some(Ok(Value::Text("a".into()))),
            },
            Change {
                property: Err("layoutEx.file".into()),
                op: ChangeOp::Assign,
                value: None,
            },
        ];
        inv.apply_changes(&obj, changes).unwrap();
        assert_eq!(inv.vms["vm-1"].name, "a");
        assert_eq!(property_of("VirtualMachine", "layoutEx.file"), None);
        assert_eq!(property_of("Datacenter", "parent"), None);
        assert_eq!(
            property_of("ClusterComputeResource", "parent"),
            Some(Property::Parent)
        );
        let err = inv
            .apply_changes(
                &obj,
                vec![Change {
                    property: Err("layoutEx.file".into()),
                    op: ChangeOp::Other("add".into()),
                    value: None,
                }],
            )
            .unwrap_err();
        assert_eq!(err, "vm-1: cannot apply a \"add\" change of layoutEx.file");
    }

    #[test]
    fn one_table_makes_the_request_and_the_parse() {
        let asked: Vec<&str> = property_specs_with(true)
            .iter()
            .chain(snapshot_vm_specs().iter())
            .chain(windows_vm_specs().iter())
            .filter(|s| s.kind == "VirtualMachine")
            .flat_map(|s| s.paths.clone())
            .collect();
        assert_eq!(asked.len(), VM_PROPERTIES.len());
        // The keyed path only where vCenter accepts it; the whole extraConfig never for all.
        let every_vm = |keyed| {
            property_specs_with(keyed)
                .into_iter()
                .find(|s| s.kind == "VirtualMachine")
                .unwrap()
                .paths
        };
        assert!(every_vm(true).contains(&ENABLE_UUID_PATH));
        assert!(!every_vm(false).contains(&ENABLE_UUID_PATH));
        assert!(!every_vm(true).contains(&EXTRA_CONFIG_PATH));
        assert_eq!(windows_vm_specs()[0].paths, [EXTRA_CONFIG_PATH]);
        assert_eq!(custom_fields_spec().paths, ["field"]);
        assert_eq!(
            property_specs().last().map(|s| s.kind),
            Some("CustomFieldsManager")
        );
        for path in asked {
            let property = property_of("VirtualMachine", path);
            assert!(property.is_some(), "{path} is asked for but not read");
            assert_eq!(property.map(path_of), Some(path));
        }
        assert_eq!(
            vm_paths(Scope::VmsWithSnapshots),
            ["layoutEx", "config.hardware.device"]
        );
        for p in OTHER_PROPERTIES {
            assert_eq!(property_of(p.kind, p.path), Some(p.property));
            assert_eq!(path_of(p.property), p.path);
        }
        let hosts = property_specs()
            .into_iter()
            .find(|s| s.kind == "HostSystem")
            .unwrap();
        assert_eq!(
            hosts.paths,
            [
                "name",
                "parent",
                "runtime.connectionState",
                "runtime.inMaintenanceMode",
                "summary.config.product.version",
                "summary.config.product.build"
            ]
        );
    }

    #[test]
    fn every_truncation_of_an_answer_is_an_error_never_a_panic() {
        let full = VM_PAGE.as_bytes();
        let mut ok = 0;
        for end in 0..full.len() {
            let mut b = InventoryBuilder::default();
            let read = read_objects(&full[..end], &Limits::default(), |o| {
                b.add_object(o);
                Ok(())
            });
            if read.is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 0, "a cut answer reads as an error");
        assert!(read_objects(full, &Limits::default(), |_| Ok(())).is_ok());
    }

    /// A name as vCenter sends it: `%`, `/` and `\` percent-escaped (`vsphere::names`), then
    /// XML-escaped.
    fn name_xml(name: &str) -> String {
        let sent = name
            .replace('%', "%25")
            .replace('/', "%2f")
            .replace('\\', "%5c");
        quick_xml::escape::escape(&sent).into_owned()
    }

    /// A snapshot tree as vCenter sends it.
    fn tree_xml(tree: &SnapshotTree, tag: &str, out: &mut String) {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        out.push_str(&format!(
            r#"<{tag}><snapshot type="VirtualMachineSnapshot">{}</snapshot><vm type="VirtualMachine">vm-1</vm><name>{}</name><description>{}</description><id>1</id><createTime>{}</createTime><state>{}</state><quiesced>{}</quiesced>"#,
            esc(&tree.snapshot),
            name_xml(&tree.name),
            esc(&tree.description),
            jiff::Timestamp::from_second(tree.create_time_seconds as i64).unwrap(),
            esc(&tree.state),
            tree.quiesced
        ));
        for child in &tree.child_snapshot_list {
            tree_xml(child, "childSnapshotList", out);
        }
        out.push_str(&format!("</{tag}>"));
    }

    fn layout_xml(layout: &LayoutEx) -> String {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        let disks = |disks: &[DiskLayout]| {
            disks
                .iter()
                .map(|d| {
                    let chain: String = d
                        .chain
                        .iter()
                        .map(|unit| {
                            let keys: String = unit
                                .iter()
                                .map(|k| format!("<fileKey>{k}</fileKey>"))
                                .collect();
                            format!("<chain>{keys}</chain>")
                        })
                        .collect();
                    format!("<disk><key>{}</key>{chain}</disk>", d.key)
                })
                .collect::<String>()
        };
        let mut out = String::new();
        for f in &layout.file {
            out.push_str(&format!(
                "<file><key>{}</key><name>{}</name><type>{}</type><size>{}</size><uniqueSize>1</uniqueSize><accessible>true</accessible></file>",
                f.key,
                esc(&f.name),
                esc(&f.file_type),
                f.size
            ));
        }
        out.push_str(&disks(&layout.disk));
        for s in &layout.snapshot {
            out.push_str(&format!(
                r#"<snapshot><key type="VirtualMachineSnapshot">{}</key><dataKey>{}</dataKey><memoryKey>-1</memoryKey>{}</snapshot>"#,
                esc(&s.key),
                s.data_key,
                disks(&s.disk)
            ));
        }
        out.push_str("<timestamp>2026-11-25T07:58:41Z</timestamp>");
        out
    }

    fn update_set(vm: &Vm) -> String {
        let mut snapshot = String::new();
        for tree in &vm.snapshot.as_ref().unwrap().root_snapshot_list {
            tree_xml(tree, "rootSnapshotList", &mut snapshot);
        }
        let disks: String = vm
            .disk_capacities_bytes
            .iter()
            .map(|c| format!(r#"<VirtualDevice XMLSchema-instance:type="VirtualDisk"><key>2000</key><deviceInfo XMLSchema-instance:type="Description"><label>Hard disk</label></deviceInfo><capacityInKB>{}</capacityInKB><capacityInBytes>{c}</capacityInBytes></VirtualDevice><VirtualDevice XMLSchema-instance:type="VirtualCdrom"><key>3000</key><capacityInBytes>1</capacityInBytes></VirtualDevice>"#, c / 1024))
            .collect();
        // The simulator's way: the XMLSchema-instance prefix bound on each value.
        let val = |t: &str, body: &str| {
            format!(
                r#"<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="{t}">{body}</val>"#
            )
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>-</version><filterSet><filter type="PropertyFilter">f</filter><objectSet><kind>enter</kind><obj type="VirtualMachine">{}</obj><changeSet><name>name</name><op>assign</op>{}</changeSet><changeSet><name>snapshot</name><op>assign</op>{}</changeSet><changeSet><name>layoutEx</name><op>assign</op>{}</changeSet><changeSet><name>config.hardware.device</name><op>assign</op>{}</changeSet></objectSet></filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#,
            vm.id,
            val("xsd:string", &name_xml(&vm.name)),
            val("VirtualMachineSnapshotInfo", &snapshot),
            val(
                "VirtualMachineFileLayoutEx",
                &layout_xml(vm.layout_ex.as_ref().unwrap())
            ),
            val("ArrayOfVirtualDevice", &disks),
        )
    }

    fn text() -> impl Strategy<Value = String> {
        // Markup characters, entities' own characters, non-ASCII, but no control characters
        // (not allowed in XML 1.0) and no surrounding spaces (trimmed where vCenter pads).
        "[a-zA-Z0-9 <>&'\"é€/%-]{0,12}".prop_map(|s| s.trim().to_string())
    }

    fn snapshot_tree(depth: u32) -> BoxedStrategy<SnapshotTree> {
        let leaf = (text(), text(), text(), 0i64..4_000_000_000, any::<bool>()).prop_map(
            |(snapshot, name, description, seconds, quiesced)| SnapshotTree {
                snapshot: format!("snapshot-{snapshot}"),
                name,
                description,
                create_time_seconds: seconds as f64,
                state: "poweredOn".into(),
                quiesced,
                child_snapshot_list: Vec::new(),
            },
        );
        if depth == 0 {
            return leaf.boxed();
        }
        (leaf, prop::collection::vec(snapshot_tree(depth - 1), 0..3))
            .prop_map(|(mut tree, children)| {
                tree.child_snapshot_list = children;
                tree
            })
            .boxed()
    }

    fn disk_layouts() -> impl Strategy<Value = Vec<DiskLayout>> {
        prop::collection::vec(
            (
                any::<i32>(),
                prop::collection::vec(prop::collection::vec(any::<i32>(), 0..3), 0..3),
            )
                .prop_map(|(key, chain)| DiskLayout { key, chain }),
            0..3,
        )
    }

    fn vm() -> impl Strategy<Value = Vm> {
        let files = prop::collection::vec(
            (any::<i32>(), text(), text(), any::<u64>()).prop_map(
                |(key, name, file_type, size)| LayoutFile {
                    key,
                    name,
                    file_type,
                    size,
                },
            ),
            0..5,
        );
        let snapshots = prop::collection::vec(
            (text(), any::<i32>(), disk_layouts()).prop_map(|(key, data_key, disk)| {
                SnapshotLayout {
                    key: format!("snapshot-{key}"),
                    data_key,
                    disk,
                }
            }),
            0..3,
        );
        (
            text(),
            prop::collection::vec(snapshot_tree(3), 1..3),
            files,
            disk_layouts(),
            snapshots,
            prop::collection::vec(1u64..u64::MAX / 2, 0..4),
        )
            .prop_map(|(name, roots, file, disk, snapshot, disks)| Vm {
                id: "vm-1".into(),
                name,
                snapshot: Some(SnapshotInfo {
                    current_snapshot: None,
                    root_snapshot_list: roots,
                }),
                layout_ex: Some(LayoutEx {
                    file,
                    disk,
                    snapshot,
                }),
                // Whole kilobytes, as vCenter reports capacities.
                disk_capacities_bytes: disks.iter().map(|c| c / 1024 * 1024 + 1024).collect(),
                ..Default::default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn snapshot_trees_layouts_and_disks_read_back_as_sent(vm in vm()) {
            let xml = update_set(&vm);
            let mut inv = Inventory::default();
            read_updates(xml.as_bytes(), &Limits::default(), |_, update| {
                inv.apply_changes(&update.obj, update.changes).map_err(ParseError::Malformed)
            })
            .unwrap();
            prop_assert_eq!(inv.vms["vm-1"].as_ref(), &vm);
        }

        #[test]
        fn any_change_to_an_answer_is_read_or_refused_never_a_panic(
            vm in vm(),
            cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = update_set(&vm).into_bytes();
            for (at, byte) in cuts {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let mut inv = Inventory::default();
            let _ = read_updates(&bytes[..], &Limits::default(), |_, update| {
                let _ = inv.apply_changes(&update.obj, update.changes);
                Ok(())
            });
            for vm in inv.vms.values() {
                for snapshot in vm.snapshots() {
                    let _ = vm.snapshot_size_bytes(&snapshot);
                }
            }
        }

        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_updates(&bytes[..], &Limits::default(), |_, _| Ok(()));
            let _ = read_objects(&bytes[..], &Limits::default(), |_| Ok(()));
            let _ = xml::read_returnval(&bytes);
        }
    }
}
