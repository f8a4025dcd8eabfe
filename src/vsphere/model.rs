//! The typed inventory model that collectors read: what one vCenter holds, in vSphere's own
//! words (`rootSnapshotList`, `layoutEx`, `toolsVersionStatus2`), with the few derived facts
//! (snapshot sizes, chain depth, the host → cluster → datacenter walk) computed here once.
//!
//! This module owns no I/O and no Prometheus: [`super::properties`] fills it from the
//! PropertyCollector, and collectors only read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A managed object id, the `value` of a ManagedObjectReference (`vm-57`, `host-21`).
pub type MoId = String;

/// A ManagedObjectReference: the object's type (`VirtualMachine`) and id (`vm-57`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MoRef {
    pub kind: String,
    pub value: MoId,
}

impl MoRef {
    pub fn new(kind: &str, value: &str) -> Self {
        MoRef {
            kind: kind.to_string(),
            value: value.to_string(),
        }
    }
}

/// Everything the exporter knows about one vCenter at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Virtual machines and templates, in managed object id order. Shared, so that a copy of
    /// the inventory (the mirror publishes one per change) copies pointers, not VMs.
    pub vms: BTreeMap<MoId, Arc<Vm>>,
    pub hosts: BTreeMap<MoId, Host>,
    /// ComputeResource and ClusterComputeResource objects (a standalone host's parent is a
    /// plain ComputeResource, a clustered host's a ClusterComputeResource).
    pub compute_resources: BTreeMap<MoId, ComputeResource>,
    pub folders: BTreeMap<MoId, Folder>,
    pub datacenters: BTreeMap<MoId, Datacenter>,
    pub datastores: BTreeMap<MoId, Datastore>,
    /// `CustomFieldsManager.field`: custom attribute definitions by key.
    pub custom_fields: BTreeMap<i32, CustomField>,
    /// The root folder's `triggeredAlarmState`: the alarms triggered on every entity of the
    /// inventory (vCenter propagates them up to the root), in vCenter's order.
    pub triggered_alarms: Vec<AlarmState>,
    /// `Alarm.info.name` of the alarms `triggered_alarms` references, by the Alarm's id; an
    /// alarm whose name could not be read (yet) is absent.
    pub alarm_names: BTreeMap<MoId, String>,
}

/// `AlarmState`: one alarm triggered on one entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmState {
    /// `key`: unique for the triggering.
    pub key: String,
    /// `entity`: the entity the alarm is triggered on.
    pub entity: MoRef,
    /// `alarm`: the Alarm's id.
    pub alarm: MoId,
    /// `overallStatus`: gray, green, yellow or red.
    pub overall_status: String,
    /// `time` in seconds since the Unix epoch (`None` when absent or unreadable).
    pub time_seconds: Option<f64>,
    /// `acknowledged`.
    pub acknowledged: bool,
}

impl AlarmState {
    /// True for a triggered alarm: yellow or red (gray and green states are not).
    pub fn is_triggered(&self) -> bool {
        matches!(self.overall_status.as_str(), "yellow" | "red")
    }
}

/// `VirtualMachine`, reduced to the properties the collectors need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vm {
    pub id: MoId,
    pub name: String,
    /// `runtime.host`.
    pub host: Option<MoId>,
    /// `runtime.powerState`: poweredOn, poweredOff or suspended.
    pub power_state: String,
    /// `runtime.consolidationNeeded`.
    pub consolidation_needed: bool,
    /// `config.template`.
    pub template: bool,
    /// `config.guestId`.
    pub guest_id: String,
    /// `guest.toolsVersionStatus2`, unset on templates and VMs vCenter knows nothing of.
    pub tools_version_status2: Option<String>,
    /// `guest.toolsRunningStatus`.
    pub tools_running_status: Option<String>,
    /// `guest.toolsVersion`.
    pub tools_version: Option<String>,
    /// `config.hardware.device`, reduced to what the disk checks read: the virtual disks,
    /// SCSI controllers that share their bus, PCI passthrough devices. Read for every VM while
    /// the `disks` collector is on, else for the VMs with snapshots only (empty for the others).
    pub devices: Devices,
    /// `runtime.connectionState`: connected, disconnected, orphaned, inaccessible or invalid
    /// (empty until read).
    pub connection_state: String,
    /// `runtime.faultToleranceState`: notConfigured, disabled, enabled, needSecondary,
    /// starting or running; unset when vCenter does not send it.
    pub fault_tolerance_state: Option<String>,
    /// `runtime.question`: the question the VM waits on, unset when none.
    pub question: Option<VmQuestion>,
    /// `snapshot`, absent when the VM has no snapshot.
    pub snapshot: Option<SnapshotInfo>,
    /// `layoutEx`, absent when vCenter does not know the VM's files.
    pub layout_ex: Option<LayoutEx>,
    /// What the backup checks read of the VM.
    pub backup: VmBackup,
}

/// `runtime.question` (VirtualMachineQuestionInfo): a question the VM is paused on until
/// someone answers it (its choices and messages are not kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmQuestion {
    /// `id`: vCenter's id of the question, which an answer names.
    pub id: String,
    /// `text`: the question as the vSphere Client shows it.
    pub text: String,
}

/// `config.hardware.device`, reduced to what the disk checks need. A change of the property
/// replaces the whole value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Devices {
    /// The VirtualDisk devices, in vCenter's order.
    pub disks: Vec<Disk>,
    /// SCSI (or NVMe) controllers whose `sharedBus` is set and not `noSharing`
    /// (virtualSharing, physicalSharing): a VM with one cannot be snapshotted.
    pub scsi_shared_bus: u32,
    /// `VirtualPCIPassthrough` devices (DirectPath I/O, vGPU, dynamic DirectPath): a VM with
    /// one cannot be snapshotted.
    pub pci_passthrough: u32,
}

/// One `VirtualDisk` of `config.hardware.device`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    /// `key`: the device key (2000 for the first disk of SCSI controller 0); `None` when it is
    /// not a number.
    pub key: Option<i32>,
    /// The backing's `xsi:type`.
    pub backing: DiskBacking,
    /// `backing.diskMode`.
    pub disk_mode: DiskMode,
    /// `backing.compatibilityMode` of a raw device mapping: physicalMode or virtualMode.
    pub compatibility_mode: Option<RdmMode>,
    /// `backing.fileName`: `[datastore] directory/name.vmdk` (an RDM's mapping file).
    pub file_name: String,
    /// `capacityInBytes`, or `capacityInKB` × 1024 where the bytes are 0 or absent (vCenter
    /// before 5.5); `None` when neither is a number.
    pub capacity_bytes: Option<u64>,
    /// `backing.sharing` is `sharingMultiWriter`: the disk is shared on purpose (clusters).
    pub multi_writer: bool,
    /// `backing.changeId` is set and not empty: changed block tracking has started on the
    /// disk.
    pub change_id: bool,
    /// `backing.parent` is set: the disk runs on a delta (a snapshot, a linked clone). The
    /// parent's `fileName` ("" when it has none).
    pub parent: Option<String>,
}

/// The backing of a virtual disk, by its `xsi:type`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DiskBacking {
    /// VirtualDiskFlatVer1BackingInfo, VirtualDiskFlatVer2BackingInfo: a VMDK (thin or thick).
    #[default]
    Flat,
    /// VirtualDiskSparseVer1BackingInfo, VirtualDiskSparseVer2BackingInfo.
    Sparse,
    /// VirtualDiskSeSparseBackingInfo.
    SeSparse,
    /// VirtualDiskRawDiskMappingVer1BackingInfo: a raw device mapping (RDM).
    RawDiskMapping,
    /// Any other backing (VirtualDiskLocalPMemBackingInfo, VirtualDiskRawDiskVer2BackingInfo …),
    /// by its type name.
    Other(String),
}

impl DiskBacking {
    pub fn from_xsi_type(xsi_type: &str) -> Self {
        match xsi_type {
            "VirtualDiskFlatVer1BackingInfo" | "VirtualDiskFlatVer2BackingInfo" => {
                DiskBacking::Flat
            }
            "VirtualDiskSparseVer1BackingInfo" | "VirtualDiskSparseVer2BackingInfo" => {
                DiskBacking::Sparse
            }
            "VirtualDiskSeSparseBackingInfo" => DiskBacking::SeSparse,
            "VirtualDiskRawDiskMappingVer1BackingInfo" => DiskBacking::RawDiskMapping,
            other => DiskBacking::Other(other.to_string()),
        }
    }
}

/// `VirtualDiskMode`, the `diskMode` of a disk's backing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskMode {
    #[default]
    Persistent,
    Nonpersistent,
    Undoable,
    /// In no snapshot: written through, kept across a revert.
    IndependentPersistent,
    /// In no snapshot: its changes are dropped at power off or revert.
    IndependentNonpersistent,
    Append,
    /// Absent, or a value this exporter does not know.
    Unknown,
}

impl DiskMode {
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "persistent" => DiskMode::Persistent,
            "nonpersistent" => DiskMode::Nonpersistent,
            "undoable" => DiskMode::Undoable,
            "independent_persistent" => DiskMode::IndependentPersistent,
            "independent_nonpersistent" => DiskMode::IndependentNonpersistent,
            "append" => DiskMode::Append,
            _ => DiskMode::Unknown,
        }
    }

    /// vSphere's name of the mode ("" when unknown).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskMode::Persistent => "persistent",
            DiskMode::Nonpersistent => "nonpersistent",
            DiskMode::Undoable => "undoable",
            DiskMode::IndependentPersistent => "independent_persistent",
            DiskMode::IndependentNonpersistent => "independent_nonpersistent",
            DiskMode::Append => "append",
            DiskMode::Unknown => "",
        }
    }
}

/// `compatibilityMode` of a raw device mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdmMode {
    /// physicalMode: SCSI commands pass to the LUN; no snapshot can take the disk.
    Physical,
    /// virtualMode: the mapping behaves like a VMDK and can be snapshotted.
    Virtual,
}

impl RdmMode {
    /// `None` for a value this exporter does not know.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "physicalMode" => Some(RdmMode::Physical),
            "virtualMode" => Some(RdmMode::Virtual),
            _ => None,
        }
    }
}

impl Disk {
    /// A physical-mode raw device mapping.
    pub fn is_physical_rdm(&self) -> bool {
        self.compatibility_mode == Some(RdmMode::Physical)
    }

    /// Independent (persistent or nonpersistent): no snapshot takes the disk.
    pub fn is_independent(&self) -> bool {
        matches!(
            self.disk_mode,
            DiskMode::IndependentPersistent | DiskMode::IndependentNonpersistent
        )
    }

    /// The directory part of `file_name`: `[ds] vm` of `[ds] vm/vm.vmdk`.
    pub fn directory(&self) -> &str {
        directory_of(&self.file_name)
    }
}

/// The directory of a datastore path (`[ds] dir/name.vmdk` → `[ds] dir`; a file at the
/// datastore's root → `[ds]`).
pub fn directory_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => match path.find(']') {
            Some(i) => &path[..=i],
            None => "",
        },
    }
}

/// The VM properties of the backup checks (see [`super::properties::backup`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmBackup {
    /// `customValue`: (field key, value), in vCenter's order.
    pub custom_values: Vec<(i32, String)>,
    /// `config.annotation`: the notes.
    pub annotation: String,
    /// `config.changeTrackingEnabled`.
    pub cbt_enabled: bool,
    /// `guest.guestFamily` (windowsGuest, linuxGuest …), unset while Tools do not report it.
    pub guest_family: Option<String>,
    /// `disk.EnableUUID` of `config.extraConfig`; `None` when unset or not read (it is read for
    /// every VM where vCenter accepts the keyed path, else for Windows guests only).
    pub disk_enable_uuid: Option<bool>,
    /// `datastore`: the datastores holding the VM's files.
    pub datastores: Vec<MoId>,
}

/// `CustomFieldDef`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomField {
    pub name: String,
    /// `managedObjectType`: the type it is defined for, "" for every type.
    pub managed_object_type: String,
}

/// `VirtualMachineSnapshotInfo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotInfo {
    /// `currentSnapshot`: the snapshot the VM runs on top of.
    pub current_snapshot: Option<MoId>,
    pub root_snapshot_list: Vec<SnapshotTree>,
}

/// `VirtualMachineSnapshotTree`: one node of the snapshot tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotTree {
    /// `snapshot`: the VirtualMachineSnapshot managed object id.
    pub snapshot: MoId,
    pub name: String,
    pub description: String,
    /// `createTime` in seconds since the Unix epoch.
    pub create_time_seconds: f64,
    /// `state`: the power state the VM had when the snapshot was taken.
    pub state: String,
    pub quiesced: bool,
    pub child_snapshot_list: Vec<SnapshotTree>,
}

/// `VirtualMachineFileLayoutEx`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayoutEx {
    pub file: Vec<LayoutFile>,
    /// The running disk chains, one per virtual disk.
    pub disk: Vec<DiskLayout>,
    pub snapshot: Vec<SnapshotLayout>,
}

/// `VirtualMachineFileLayoutExFileInfo`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayoutFile {
    pub key: i32,
    pub name: String,
    /// `type`: diskDescriptor, diskExtent, snapshotData, …
    pub file_type: String,
    pub size: u64,
}

/// `VirtualMachineFileLayoutExDiskLayout`: one virtual disk's chain of units, base first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskLayout {
    /// The virtual disk's device key.
    pub key: i32,
    /// Each unit's `fileKey` list (descriptor and extents).
    pub chain: Vec<Vec<i32>>,
}

/// `VirtualMachineFileLayoutExSnapshotLayout`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotLayout {
    /// The snapshot's managed object id.
    pub key: MoId,
    /// The key of the snapshot's data (`.vmsn`) file.
    pub data_key: i32,
    /// The disk chains as they were when the snapshot was taken.
    pub disk: Vec<DiskLayout>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Host {
    pub id: MoId,
    pub name: String,
    /// The ComputeResource or ClusterComputeResource the host belongs to.
    pub parent: Option<MoRef>,
    /// `runtime.connectionState`: connected, disconnected or notResponding.
    pub connection_state: String,
    /// `runtime.inMaintenanceMode`.
    pub in_maintenance: bool,
    /// `summary.config.product.version` and `.build`: the ESXi release.
    pub version: String,
    pub build: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComputeResource {
    pub id: MoId,
    pub name: String,
    /// True for a ClusterComputeResource.
    pub is_cluster: bool,
    pub parent: Option<MoRef>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folder {
    pub id: MoId,
    pub name: String,
    pub parent: Option<MoRef>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datacenter {
    pub id: MoId,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datastore {
    pub id: MoId,
    pub name: String,
    /// `summary.url` (`ds:///vmfs/volumes/<uuid>/`).
    pub url: String,
    /// `summary.capacity`, `summary.freeSpace`, `summary.uncommitted` in bytes (xsd:long:
    /// signed, as vCenter sends them).
    pub capacity_bytes: Option<i64>,
    pub free_bytes: Option<i64>,
    pub uncommitted_bytes: Option<i64>,
    /// `summary.type`: VMFS, NFS, NFS41, vsan, VVOL …
    pub fs_type: String,
    /// `summary.accessible`.
    pub accessible: Option<bool>,
    /// `info.vmfs.extent[].diskName`: the LUNs backing a VMFS datastore.
    pub extent_disks: Vec<String>,
}

/// One snapshot flattened out of the tree, with the facts derived from its place in it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatSnapshot<'a> {
    pub tree: &'a SnapshotTree,
    pub parent: Option<&'a SnapshotTree>,
    /// 1 for a root snapshot.
    pub depth: usize,
    pub is_current: bool,
}

/// Walking up from a host: the names a VM's `_info` series carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement<'a> {
    pub host_name: &'a str,
    pub cluster_name: &'a str,
    pub datacenter_name: &'a str,
}

impl Inventory {
    /// A VM's custom attribute values by field name (values of undefined fields are left out).
    pub fn attribute_values<'a>(&'a self, vm: &'a Vm) -> Vec<(&'a str, &'a str)> {
        vm.backup
            .custom_values
            .iter()
            .filter_map(|(key, value)| {
                let field = self.custom_fields.get(key)?;
                Some((field.name.as_str(), value.as_str()))
            })
            .collect()
    }

    /// The value of one custom attribute of a VM, by the attribute's name.
    pub fn attribute_value<'a>(&'a self, vm: &'a Vm, name: &str) -> Option<&'a str> {
        self.attribute_values(vm)
            .into_iter()
            .find(|(field, _)| *field == name)
            .map(|(_, v)| v)
    }

    /// Disks attached to one VM that are another VM's: the file lies in the other VM's home
    /// directory ([`Vm::home_directory`]), or, when no VM's home holds it, another VM lists
    /// the same file among its disks. A disk in its own VM's home directory is that VM's, so
    /// when two VMs list one file the VM whose directory holds it is the owner and only the
    /// other is marked; when neither directory holds it, each is marked with the other as
    /// owner (two VMs on one disk that is not multi-writer is wrong either way). Multi-writer
    /// disks are shared on purpose and never foreign. In VM order, then disk order.
    pub fn foreign_disks(&self) -> Vec<ForeignDisk<'_>> {
        let vms: Vec<&Vm> = self.vms.values().map(|vm| &**vm).collect();
        let index = DiskIndex::of(vms.iter().copied());
        foreign_disks_of(&[(vms.as_slice(), &index)])
    }

    /// The name of an entity the inventory holds (VM, host, cluster or compute resource,
    /// datastore, folder, datacenter), `None` for one it does not.
    pub fn entity_name(&self, entity: &MoRef) -> Option<&str> {
        let id = &entity.value;
        match entity.kind.as_str() {
            "VirtualMachine" => self.vms.get(id).map(|v| v.name.as_str()),
            "HostSystem" => self.hosts.get(id).map(|h| h.name.as_str()),
            "ComputeResource" | "ClusterComputeResource" => {
                self.compute_resources.get(id).map(|c| c.name.as_str())
            }
            "Datastore" => self.datastores.get(id).map(|d| d.name.as_str()),
            "Folder" => self.folders.get(id).map(|f| f.name.as_str()),
            "Datacenter" => self.datacenters.get(id).map(|d| d.name.as_str()),
            _ => None,
        }
    }

    /// The alarm ids `triggered_alarms` references that have no name yet.
    pub fn unnamed_alarms(&self) -> std::collections::BTreeSet<MoId> {
        self.triggered_alarms
            .iter()
            .filter(|s| !self.alarm_names.contains_key(&s.alarm))
            .map(|s| s.alarm.clone())
            .collect()
    }

    /// Where a VM runs: host, cluster (empty for a standalone host) and datacenter names.
    pub fn placement(&self, vm: &Vm) -> Placement<'_> {
        match vm.host.as_ref().and_then(|id| self.hosts.get(id)) {
            Some(host) => self.host_placement(host),
            None => Placement::default(),
        }
    }

    /// Where a host sits: its name, cluster (empty when standalone) and datacenter names.
    pub fn host_placement<'a>(&'a self, host: &'a Host) -> Placement<'a> {
        let compute = host
            .parent
            .as_ref()
            .and_then(|p| self.compute_resources.get(&p.value));
        let cluster_name = compute
            .filter(|c| c.is_cluster)
            .map_or("", |c| c.name.as_str());
        let datacenter_name = compute
            .and_then(|c| self.datacenter_above(c.parent.as_ref()))
            .map_or("", |dc| dc.name.as_str());
        Placement {
            host_name: &host.name,
            cluster_name,
            datacenter_name,
        }
    }

    /// The datacenter found by following folder parents up from `start`. The walk is bounded
    /// by the number of folders, so a cycle in bad data cannot hang it.
    fn datacenter_above(&self, start: Option<&MoRef>) -> Option<&Datacenter> {
        let mut next = start;
        for _ in 0..=self.folders.len() {
            let here = next?;
            if here.kind == "Datacenter" {
                return self.datacenters.get(&here.value);
            }
            next = self.folders.get(&here.value)?.parent.as_ref();
        }
        None
    }
}

impl Vm {
    /// Sum of the VM's virtual disk capacities. Sizes come from vCenter: the sum saturates
    /// rather than overflow.
    pub fn disk_capacity_bytes(&self) -> u64 {
        saturating_sum(self.disk_capacities_bytes())
    }

    /// The capacities of the VM's virtual disks, in device order (disks without a readable
    /// capacity left out).
    pub fn disk_capacities_bytes(&self) -> impl Iterator<Item = u64> + '_ {
        self.devices.disks.iter().filter_map(|d| d.capacity_bytes)
    }

    /// The disks that no snapshot captures, so no backup through the snapshot API either:
    /// independent disks, and physical-mode RDMs (whatever their diskMode).
    pub fn disks_not_snapshotted(&self) -> NotSnapshotted {
        let mut out = NotSnapshotted::default();
        for disk in &self.devices.disks {
            match disk.not_snapshotted_reason() {
                Some(NOT_SNAPSHOTTED_PHYSICAL_RDM) => out.physical_rdm += 1,
                Some(NOT_SNAPSHOTTED_INDEPENDENT_PERSISTENT) => out.independent_persistent += 1,
                Some(_) => out.independent_nonpersistent += 1,
                None => {}
            }
        }
        out
    }

    /// What makes a snapshot of the VM impossible: shared SCSI buses, multi-writer disks,
    /// PCI passthrough devices, Fault Tolerance.
    pub fn snapshot_blockers(&self) -> SnapshotBlockers {
        let ft = self
            .fault_tolerance_state
            .as_deref()
            .is_some_and(|s| s != "notConfigured");
        SnapshotBlockers {
            scsi_bus_sharing: self.devices.scsi_shared_bus,
            multi_writer_disk: count(self.devices.disks.iter().filter(|d| d.multi_writer)),
            pci_passthrough: self.devices.pci_passthrough,
            fault_tolerance: u32::from(ft),
        }
    }

    /// Disks running on a snapshot delta while the VM has no snapshot: a chain vCenter no
    /// longer shows. A disk is on a delta when its backing has a parent or its file is named
    /// like a delta ([`is_delta_file_name`]); a parent in another directory than the disk is a
    /// linked clone's base (Horizon, instant clones, a proxy's hot-add redo log), not a
    /// leftover, and is not counted.
    pub fn phantom_snapshot_disks(&self) -> u32 {
        if self.has_snapshots() {
            return 0;
        }
        count(self.devices.disks.iter().filter(|d| {
            let foreign_parent = d
                .parent
                .as_deref()
                .is_some_and(|p| !p.is_empty() && directory_of(p) != d.directory());
            (d.parent.is_some() || is_delta_file_name(&d.file_name)) && !foreign_parent
        }))
    }

    /// 1 while the VM has a snapshot tree (`snapshot` set) and no current snapshot; `None`
    /// without snapshots.
    pub fn snapshot_current_missing(&self) -> Option<bool> {
        self.snapshot.as_ref().map(|s| s.current_snapshot.is_none())
    }

    /// Disks changed block tracking does not track yet: CBT is on (`config.changeTrackingEnabled`)
    /// but the disk has no change id, which it gets at the next stun/unstun (a snapshot, a power
    /// cycle, a vMotion). Templates, and disks CBT never tracks (independent, physical RDMs,
    /// multi-writer) are left out.
    pub fn cbt_inactive_disks(&self) -> u32 {
        if !self.backup.cbt_enabled || self.template {
            return 0;
        }
        count(self.devices.disks.iter().filter(|d| {
            !d.change_id && !d.is_independent() && !d.is_physical_rdm() && !d.multi_writer
        }))
    }

    /// The VM's home directory: that of its `.vmx` (the `config` file of `layoutEx`, read for
    /// VMs with snapshots), else that of its first virtual disk; `None` when neither is known.
    pub fn home_directory(&self) -> Option<&str> {
        let vmx = self.layout_ex.as_ref().and_then(|l| {
            l.file
                .iter()
                .find(|f| f.file_type == "config" && f.name.ends_with(".vmx"))
        });
        match vmx {
            Some(f) => Some(directory_of(&f.name)),
            None => self
                .devices
                .disks
                .iter()
                .find(|d| !d.file_name.is_empty())
                .map(Disk::directory),
        }
    }

    /// True when the VM has at least one snapshot.
    pub fn has_snapshots(&self) -> bool {
        self.snapshot
            .as_ref()
            .is_some_and(|s| !s.root_snapshot_list.is_empty())
    }

    /// Every snapshot of the tree, depth first, parents before children.
    pub fn snapshots(&self) -> Vec<FlatSnapshot<'_>> {
        let Some(info) = &self.snapshot else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack: Vec<(&SnapshotTree, Option<&SnapshotTree>, usize)> = info
            .root_snapshot_list
            .iter()
            .rev()
            .map(|t| (t, None, 1))
            .collect();
        while let Some((tree, parent, depth)) = stack.pop() {
            out.push(FlatSnapshot {
                tree,
                parent,
                depth,
                is_current: info.current_snapshot.as_deref() == Some(tree.snapshot.as_str()),
            });
            stack.extend(
                tree.child_snapshot_list
                    .iter()
                    .rev()
                    .map(|c| (c, Some(tree), depth + 1)),
            );
        }
        out
    }

    /// The number of snapshots on the deepest root-to-leaf branch (0 without snapshots).
    pub fn snapshot_chain_depth(&self) -> usize {
        self.snapshots().iter().map(|s| s.depth).max().unwrap_or(0)
    }

    /// A snapshot's size as govmomi's `SnapshotSize` and PowerCLI compute it: its data
    /// (`.vmsn`) file, plus the files of its disk chains that are not in its parent's chains (a
    /// root snapshot's chains are the base disks, which are no snapshot's cost); the current
    /// snapshot also carries the running chains' files that belong to no snapshot layout,
    /// which is the delta that grows while the snapshot stays. Each file counts once.
    pub fn snapshot_size_bytes(&self, snap: &FlatSnapshot<'_>) -> u64 {
        let Some(layout) = &self.layout_ex else {
            return 0;
        };
        let find = |id: &str| layout.snapshot.iter().find(|l| l.key == id);
        let mut keys: HashSet<i32> = HashSet::new();
        if let Some(own) = find(&snap.tree.snapshot) {
            keys.insert(own.data_key);
            if let Some(parent) = snap.parent.and_then(|p| find(&p.snapshot)) {
                let parent_files = chain_files(&parent.disk);
                keys.extend(chain_files(&own.disk).difference(&parent_files));
            }
        }
        if snap.is_current {
            let in_snapshots: HashSet<i32> = layout
                .snapshot
                .iter()
                .flat_map(|l| chain_files(&l.disk))
                .collect();
            keys.extend(chain_files(&layout.disk).difference(&in_snapshots));
        }
        let sizes: HashMap<i32, u64> = layout.file.iter().map(|f| (f.key, f.size)).collect();
        saturating_sum(keys.iter().filter_map(|k| sizes.get(k).copied()))
    }
}

/// A VM's disks that no snapshot captures, by why (see [`Vm::disks_not_snapshotted`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotSnapshotted {
    /// diskMode independent_persistent (not a physical RDM).
    pub independent_persistent: u32,
    /// diskMode independent_nonpersistent (not a physical RDM).
    pub independent_nonpersistent: u32,
    /// Physical-mode raw device mappings, whatever their diskMode.
    pub physical_rdm: u32,
}

const NOT_SNAPSHOTTED_INDEPENDENT_PERSISTENT: &str = "independent_persistent";
const NOT_SNAPSHOTTED_INDEPENDENT_NONPERSISTENT: &str = "independent_nonpersistent";
const NOT_SNAPSHOTTED_PHYSICAL_RDM: &str = "physical_rdm";

impl NotSnapshotted {
    /// The counts by the `reason` label value, in a fixed order.
    pub fn by_reason(&self) -> [(&'static str, u32); 3] {
        [
            (
                NOT_SNAPSHOTTED_INDEPENDENT_PERSISTENT,
                self.independent_persistent,
            ),
            (
                NOT_SNAPSHOTTED_INDEPENDENT_NONPERSISTENT,
                self.independent_nonpersistent,
            ),
            (NOT_SNAPSHOTTED_PHYSICAL_RDM, self.physical_rdm),
        ]
    }
}

impl Disk {
    /// Why no snapshot captures the disk, as a `reason` of [`NotSnapshotted::by_reason`]:
    /// a physical-mode RDM whatever its diskMode, else an independent disk; `None` when
    /// snapshots capture it. The one rule [`Vm::disks_not_snapshotted`] counts by.
    pub fn not_snapshotted_reason(&self) -> Option<&'static str> {
        if self.is_physical_rdm() {
            return Some(NOT_SNAPSHOTTED_PHYSICAL_RDM);
        }
        match self.disk_mode {
            DiskMode::IndependentPersistent => Some(NOT_SNAPSHOTTED_INDEPENDENT_PERSISTENT),
            DiskMode::IndependentNonpersistent => Some(NOT_SNAPSHOTTED_INDEPENDENT_NONPERSISTENT),
            _ => None,
        }
    }
}

/// What makes a snapshot of a VM impossible (see [`Vm::snapshot_blockers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotBlockers {
    /// SCSI (or NVMe) controllers whose bus is shared (virtualSharing, physicalSharing).
    pub scsi_bus_sharing: u32,
    /// Disks whose backing's sharing is sharingMultiWriter.
    pub multi_writer_disk: u32,
    /// VirtualPCIPassthrough devices (DirectPath I/O, vGPU).
    pub pci_passthrough: u32,
    /// 1 when Fault Tolerance is configured (`runtime.faultToleranceState` set and not
    /// notConfigured).
    pub fault_tolerance: u32,
}

impl SnapshotBlockers {
    /// The counts by the `reason` label value, in a fixed order.
    pub fn by_reason(&self) -> [(&'static str, u32); 4] {
        [
            ("scsi_bus_sharing", self.scsi_bus_sharing),
            ("multi_writer_disk", self.multi_writer_disk),
            ("pci_passthrough", self.pci_passthrough),
            ("fault_tolerance", self.fault_tolerance),
        ]
    }

    /// True when at least one blocker is there: no snapshot, so no image-level backup.
    pub fn any(&self) -> bool {
        self.by_reason().iter().any(|(_, n)| *n > 0)
    }
}

/// A disk attached to a VM that is another VM's (see [`Inventory::foreign_disks`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForeignDisk<'a> {
    /// The VM the disk is attached to (a backup proxy that did not give it back).
    pub vm: &'a Vm,
    /// The disk's `backing.fileName`.
    pub file: &'a str,
    /// The VM the disk belongs to.
    pub owner: &'a Vm,
}

/// Where a run of VMs keeps its disks, by the VMs' positions in the run: the hashes of their
/// home directories and of their disk files (each VM once per file), and the disks that lie
/// outside their VM's home, the only ones that can be foreign. Kept per shard of the render
/// cache, so a change of one VM indexes its shard again, not every VM; hashes, not names, so
/// it holds 12 bytes a disk (a lookup compares the names of the VMs it finds).
#[derive(Debug, Default)]
pub struct DiskIndex {
    homes: Vec<(u64, u32)>,
    files: Vec<(u64, u32)>,
    outside: Vec<(u32, u32)>,
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// VMs by their position in a run, for [`foreign_disks_of`]: a shard's `Arc`s or the
/// inventory's VMs collected.
pub trait VmRun<'a>: Copy {
    fn vm(self, at: u32) -> Option<&'a Vm>;
}

impl<'a> VmRun<'a> for &'a [Arc<Vm>] {
    fn vm(self, at: u32) -> Option<&'a Vm> {
        self.get(at as usize).map(|vm| &**vm)
    }
}

impl<'a> VmRun<'a> for &[&'a Vm] {
    fn vm(self, at: u32) -> Option<&'a Vm> {
        self.get(at as usize).copied()
    }
}

impl DiskIndex {
    /// The index of a run of VMs, in run order.
    pub fn of<'a>(vms: impl Iterator<Item = &'a Vm>) -> Self {
        let mut index = DiskIndex::default();
        for (at, vm) in vms.enumerate() {
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            let home = vm.home_directory();
            if let Some(home) = home {
                index.homes.push((hash_of(home), at));
            }
            for (d, disk) in vm.devices.disks.iter().enumerate() {
                if disk.file_name.is_empty() {
                    continue;
                }
                index.files.push((hash_of(&disk.file_name), at));
                if !disk.multi_writer && home != Some(disk.directory()) {
                    index
                        .outside
                        .push((at, u32::try_from(d).unwrap_or(u32::MAX)));
                }
            }
        }
        index.homes.sort_unstable();
        index.files.sort_unstable();
        index.files.dedup();
        index
    }

    /// The VMs of the run (`vms`, the run indexed) whose `name` hashes as one in `by` and
    /// `matches`, in run order.
    fn find<'a, R: VmRun<'a>>(
        by: &[(u64, u32)],
        vms: R,
        name: &str,
        matches: fn(&Vm, &str) -> bool,
        out: &mut Vec<&'a Vm>,
    ) {
        let hash = hash_of(name);
        let from = by.partition_point(|(h, _)| *h < hash);
        let found = by[from..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .filter_map(|(_, at)| vms.vm(*at))
            .filter(|vm| matches(vm, name));
        out.extend(found);
    }
}

fn homed(vm: &Vm, dir: &str) -> bool {
    vm.home_directory() == Some(dir)
}

fn lists(vm: &Vm, file: &str) -> bool {
    vm.devices.disks.iter().any(|d| d.file_name == file)
}

/// The foreign disks of runs of VMs in id order, each with its [`DiskIndex`]: the rule of
/// [`Inventory::foreign_disks`], over every run at once.
pub fn foreign_disks_of<'a, R: VmRun<'a>>(runs: &[(R, &DiskIndex)]) -> Vec<ForeignDisk<'a>> {
    let mut out = Vec::new();
    for (vms, index) in runs {
        for (at, d) in &index.outside {
            let Some(vm) = vms.vm(*at) else {
                continue;
            };
            let Some(disk) = vm.devices.disks.get(*d as usize) else {
                continue;
            };
            let others = |name: &str, files: bool| {
                let mut found = Vec::new();
                for (vms, index) in runs {
                    if files {
                        DiskIndex::find(&index.files, *vms, name, lists, &mut found);
                    } else {
                        DiskIndex::find(&index.homes, *vms, name, homed, &mut found);
                    }
                }
                found.retain(|other| other.id != vm.id);
                found
            };
            let mut owners = others(disk.directory(), false);
            if owners.is_empty() {
                owners = others(&disk.file_name, true);
            }
            for owner in owners {
                out.push(ForeignDisk {
                    vm,
                    file: &disk.file_name,
                    owner,
                });
            }
        }
    }
    out
}

/// True for the file name of a snapshot delta as ESXi names them: `name-000001.vmdk` (the
/// descriptor, which `backing.fileName` names), `name-000001-delta.vmdk` (a VMFS sparse
/// extent) or `name-000001-sesparse.vmdk` (an SEsparse one): six digits after a dash.
pub fn is_delta_file_name(path: &str) -> bool {
    let Some(stem) = path.strip_suffix(".vmdk") else {
        return false;
    };
    let stem = stem
        .strip_suffix("-delta")
        .or_else(|| stem.strip_suffix("-sesparse"))
        .unwrap_or(stem);
    let bytes = stem.as_bytes();
    bytes.len() > 7
        && bytes[bytes.len() - 7] == b'-'
        && bytes[bytes.len() - 6..].iter().all(u8::is_ascii_digit)
}

/// A sum of sizes from vCenter, which saturates at `u64::MAX` instead of overflowing (a
/// panic in a debug build, a wrong small number in a release one).
pub fn saturating_sum(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0, u64::saturating_add)
}

/// The VMs of a list but the one with id `id`.
/// How many items an iterator gives, as a count that fits a metric.
fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

/// All file keys of a set of disk chains.
fn chain_files(disks: &[DiskLayout]) -> HashSet<i32> {
    disks
        .iter()
        .flat_map(|d| d.chain.iter().flatten().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, children: Vec<SnapshotTree>) -> SnapshotTree {
        SnapshotTree {
            snapshot: id.to_string(),
            name: id.to_string(),
            child_snapshot_list: children,
            ..Default::default()
        }
    }

    fn file(key: i32, size: u64) -> LayoutFile {
        LayoutFile {
            key,
            size,
            ..Default::default()
        }
    }

    fn disk(chain: &[&[i32]]) -> Vec<DiskLayout> {
        vec![DiskLayout {
            key: 2000,
            chain: chain.iter().map(|u| u.to_vec()).collect(),
        }]
    }

    /// base disk (1,2) → s1 taken → delta1 (3,4) → s2 taken → delta2 (5,6) running; current s2.
    fn chain_vm() -> Vm {
        Vm {
            snapshot: Some(SnapshotInfo {
                current_snapshot: Some("s2".into()),
                root_snapshot_list: vec![node("s1", vec![node("s2", vec![])])],
            }),
            layout_ex: Some(LayoutEx {
                file: vec![
                    file(1, 1),
                    file(2, 1000),
                    file(3, 10),
                    file(4, 20),
                    file(5, 100),
                    file(6, 200),
                    file(7, 7000),
                    file(8, 8000),
                ],
                disk: disk(&[&[1, 2], &[3, 4], &[5, 6]]),
                snapshot: vec![
                    SnapshotLayout {
                        key: "s1".into(),
                        data_key: 7,
                        disk: disk(&[&[1, 2]]),
                    },
                    SnapshotLayout {
                        key: "s2".into(),
                        data_key: 8,
                        disk: disk(&[&[1, 2], &[3, 4]]),
                    },
                ],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn snapshot_size_counts_vmsn_own_deltas_and_running_delta_for_current() {
        let vm = chain_vm();
        let snaps = vm.snapshots();
        let sizes: Vec<u64> = snaps.iter().map(|s| vm.snapshot_size_bytes(s)).collect();
        // s1: root, only its vmsn. s2: vmsn + delta1 + the running delta2.
        assert_eq!(sizes, vec![7000, 8000 + 10 + 20 + 100 + 200]);
    }

    #[test]
    fn sums_of_sizes_from_vcenter_saturate_instead_of_overflowing() {
        let mut vm = chain_vm();
        vm.devices.disks = [u64::MAX, 2, u64::MAX - 1]
            .into_iter()
            .map(|c| Disk {
                capacity_bytes: Some(c),
                ..Default::default()
            })
            .collect();
        assert_eq!(vm.disk_capacity_bytes(), u64::MAX);
        if let Some(layout) = vm.layout_ex.as_mut() {
            for f in &mut layout.file {
                f.size = u64::MAX / 2;
            }
        }
        let snaps = vm.snapshots();
        assert_eq!(vm.snapshot_size_bytes(&snaps[1]), u64::MAX);
        assert_eq!(saturating_sum([1, 2, 3]), 6);
    }

    #[test]
    fn snapshot_without_layout_has_size_zero() {
        let mut vm = chain_vm();
        vm.layout_ex = None;
        let snaps = vm.snapshots();
        assert_eq!(vm.snapshot_size_bytes(&snaps[0]), 0);
    }

    #[test]
    fn flattening_a_branched_tree_gives_depths_and_current() {
        let vm = Vm {
            snapshot: Some(SnapshotInfo {
                current_snapshot: Some("c2".into()),
                root_snapshot_list: vec![node(
                    "r",
                    vec![node("c1", vec![node("g", vec![])]), node("c2", vec![])],
                )],
            }),
            ..Default::default()
        };
        let flat: Vec<(String, usize, bool, Option<String>)> = vm
            .snapshots()
            .iter()
            .map(|s| {
                (
                    s.tree.snapshot.clone(),
                    s.depth,
                    s.is_current,
                    s.parent.map(|p| p.snapshot.clone()),
                )
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                ("r".into(), 1, false, None),
                ("c1".into(), 2, false, Some("r".into())),
                ("g".into(), 3, false, Some("c1".into())),
                ("c2".into(), 2, true, Some("r".into())),
            ]
        );
        assert_eq!(vm.snapshot_chain_depth(), 3);
        assert_eq!(Vm::default().snapshot_chain_depth(), 0);
    }

    #[test]
    fn placement_walks_host_cluster_folder_datacenter() {
        let mut inv = Inventory::default();
        inv.datacenters.insert(
            "datacenter-2".into(),
            Datacenter {
                id: "datacenter-2".into(),
                name: "DC0".into(),
            },
        );
        inv.folders.insert(
            "group-h4".into(),
            Folder {
                id: "group-h4".into(),
                name: "host".into(),
                parent: Some(MoRef::new("Datacenter", "datacenter-2")),
            },
        );
        inv.compute_resources.insert(
            "domain-c7".into(),
            ComputeResource {
                id: "domain-c7".into(),
                name: "C0".into(),
                is_cluster: true,
                parent: Some(MoRef::new("Folder", "group-h4")),
            },
        );
        inv.hosts.insert(
            "host-9".into(),
            Host {
                id: "host-9".into(),
                name: "esx1".into(),
                parent: Some(MoRef::new("ClusterComputeResource", "domain-c7")),
                ..Default::default()
            },
        );
        let vm = Vm {
            host: Some("host-9".into()),
            ..Default::default()
        };
        assert_eq!(
            inv.placement(&vm),
            Placement {
                host_name: "esx1",
                cluster_name: "C0",
                datacenter_name: "DC0"
            }
        );
        assert_eq!(inv.placement(&Vm::default()), Placement::default());
    }
}
