//! The property paths the exporter asks the PropertyCollector for, and how their values become
//! the typed [`Inventory`] (the model itself is [`super::model`]). No I/O: the mirror
//! ([`super::mirror`]) sends the requests made here and hands the answers to this parse.
//!
//! One table, [`VM_PROPERTIES`], lists the VirtualMachine properties read, and one,
//! [`OTHER_PROPERTIES`], those of the other object types: the requests
//! ([`property_specs_with`], [`snapshot_vm_specs`], [`windows_vm_specs`]) and the parse
//! ([`property_of`]) are both made from them; they are in this file, with the small parsers
//! every decoder shares. An ObjectUpdate or ObjectContent becomes an [`ObjectUpdate`]
//! (`read.rs`); each value is decoded straight from the XML events into the model
//! ([`read_value`], `value.rs`; a VM's snapshot tree and file layout in `snapshots.rs`, its
//! devices in `devices.rs`, the backup checks' values in [`backup`]);
//! [`Inventory::apply_changes`] applies the changes (`apply.rs`). Their items are re-exported here.
//!
//! A value that does not parse (a number that is not one, an unknown time format) is reported
//! as malformed for that one property; the XML around it is still read to its end, so one odd
//! VM never costs the rest of the answer.

pub mod alarms;
mod apply;
pub mod backup;
mod devices;
mod read;
mod snapshots;
#[cfg(test)]
mod tests;
mod value;

pub use self::apply::{InventoryBuilder, clear_vm_property, set_vm_property};
pub use self::read::{
    Change, ChangeOp, ObjectUpdate, UpdateKind, read_object, read_objects, read_updates,
};
pub use self::value::{Value, read_value};

use self::backup::{ENABLE_UUID_PATH, EXTRA_CONFIG_PATH};
use super::model::{Inventory, MoRef, Vm};
use super::names::decode_entity_name;
use super::soap::PropertySpec;

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
    /// `config.hardware.device`: the virtual disks, shared SCSI buses and PCI passthrough
    /// devices (see [`crate::vsphere::model::Devices`]).
    Devices,
    /// `runtime.connectionState` of a host or a VM.
    ConnectionState,
    /// A VM's `runtime.faultToleranceState`.
    FaultToleranceState,
    /// A VM's `runtime.question`.
    Question,
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
    /// The root folder's `triggeredAlarmState` (see [`alarms`]).
    TriggeredAlarmState,
    /// An Alarm's `info.name`.
    AlarmName,
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
    /// (the file list) and matter only for snapshot sizes.
    VmsWithSnapshots,
    /// `config.hardware.device`: every VM while the disk checks read them (the `disks`
    /// collector is on, [`DeviceScope::EveryVm`]), else the VMs with snapshots only, where the
    /// disk capacity that snapshot sizes are compared with needs them.
    DiskChecks,
    /// Only the Windows guests, through a ListView of their own, where vCenter refuses the
    /// keyed path: `config.extraConfig` whole is large and matters only for them.
    WindowsVms,
}

/// Which VMs `config.hardware.device` ([`Scope::DiskChecks`]) is read for: a choice of the
/// configuration (whether the `disks` collector is on), made once when the mirror starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceScope {
    /// Every VM, through the inventory view (the disk checks are on).
    #[default]
    EveryVm,
    /// The VMs with snapshots only, through their ListView, as before the disk checks.
    VmsWithSnapshots,
}

impl Scope {
    /// The scope a property is read in once the device scope is chosen: [`Scope::DiskChecks`]
    /// becomes [`Scope::EveryVm`] or [`Scope::VmsWithSnapshots`]; the others stay.
    pub fn resolve(self, devices: DeviceScope) -> Scope {
        match (self, devices) {
            (Scope::DiskChecks, DeviceScope::EveryVm) => Scope::EveryVm,
            (Scope::DiskChecks, DeviceScope::VmsWithSnapshots) => Scope::VmsWithSnapshots,
            (scope, _) => scope,
        }
    }
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
        Scope::DiskChecks,
    ),
    vm(
        "runtime.connectionState",
        Property::ConnectionState,
        Scope::EveryVm,
    ),
    vm(
        "runtime.faultToleranceState",
        Property::FaultToleranceState,
        Scope::EveryVm,
    ),
    vm("runtime.question", Property::Question, Scope::EveryVm),
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

/// The properties of vCenter's triggered alarms: the root folder's `triggeredAlarmState`, read
/// through a filter of its own on the root folder alone (every folder of the view would repeat
/// the alarms of its descendants), and the name of each Alarm it references, read when an
/// alarm is new to the mirror.
pub const ALARM_PROPERTIES: &[ObjectProperty] = &[
    of(
        "Folder",
        "triggeredAlarmState",
        Property::TriggeredAlarmState,
    ),
    of("Alarm", "info.name", Property::AlarmName),
];

/// The property set of the root folder's filter.
pub fn root_folder_alarm_spec() -> PropertySpec {
    alarm_spec("Folder")
}

/// The property set read of Alarm objects.
pub fn alarm_name_spec() -> PropertySpec {
    alarm_spec("Alarm")
}

fn alarm_spec(kind: &'static str) -> PropertySpec {
    PropertySpec {
        kind,
        paths: ALARM_PROPERTIES
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.path)
            .collect(),
    }
}

/// The VM property paths of one scope, in the table's order, devices read for every VM.
pub fn vm_paths(scope: Scope) -> Vec<&'static str> {
    vm_paths_for(scope, DeviceScope::EveryVm)
}

/// The VM property paths of one scope once the device scope is chosen, in the table's order.
pub fn vm_paths_for(scope: Scope, devices: DeviceScope) -> Vec<&'static str> {
    VM_PROPERTIES
        .iter()
        .filter(|p| p.scope.resolve(devices) == scope.resolve(devices))
        .map(|p| p.path)
        .collect()
}

/// The property sets read for every object of the inventory view (and the
/// CustomFieldsManager, which the inventory filter names besides the view), the keyed
/// `disk.EnableUUID` among the VM's when `keyed` (vCenter accepts it), devices for every VM.
pub fn property_specs_with(keyed: bool) -> Vec<PropertySpec> {
    property_specs_for(keyed, DeviceScope::EveryVm)
}

/// [`property_specs_with`] for a device scope: the VM paths include `config.hardware.device`
/// only for [`DeviceScope::EveryVm`].
pub fn property_specs_for(keyed: bool, devices: DeviceScope) -> Vec<PropertySpec> {
    let mut vm_paths = vm_paths_for(Scope::EveryVm, devices);
    if keyed {
        vm_paths.extend(self::vm_paths_for(Scope::EveryVmWhereKeyed, devices));
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

/// The property set read for the VMs with snapshots (devices being read for every VM).
pub fn snapshot_vm_specs() -> Vec<PropertySpec> {
    snapshot_vm_specs_for(DeviceScope::EveryVm)
}

/// The property set read for the VMs with snapshots for a device scope: with
/// `config.hardware.device` for [`DeviceScope::VmsWithSnapshots`].
pub fn snapshot_vm_specs_for(devices: DeviceScope) -> Vec<PropertySpec> {
    vec![PropertySpec {
        kind: "VirtualMachine",
        paths: vm_paths_for(Scope::VmsWithSnapshots, devices),
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
        .chain(ALARM_PROPERTIES)
        .find(|p| p.kind == kind && p.path == path)
        .map(|p| p.property)
}

/// The path of a property, for messages.
pub fn path_of(property: Property) -> &'static str {
    let vm = VM_PROPERTIES.iter().map(|p| (p.property, p.path));
    let other = OTHER_PROPERTIES
        .iter()
        .chain(ALARM_PROPERTIES)
        .map(|p| (p.property, p.path));
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

/// Drops the snapshot-only properties of a VM that no longer has snapshots (its devices too
/// where they are read for the VMs with snapshots only).
pub fn clear_snapshot_vm_properties(vm: &mut Vm, devices: DeviceScope) {
    for p in VM_PROPERTIES
        .iter()
        .filter(|p| p.scope.resolve(devices) == Scope::VmsWithSnapshots)
    {
        clear_vm_property(vm, p.property);
    }
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
