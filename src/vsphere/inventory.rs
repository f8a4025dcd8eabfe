//! What the exporter asks the PropertyCollector for, and how the answer becomes the typed
//! [`Inventory`]: one `objects` element at a time, property path by property path.
//!
//! Only the property paths a metric needs are requested. A value that does not parse (a
//! number that is not one, an unknown time format) leaves that one property unset and is
//! counted in [`InventoryBuilder::malformed`], so one odd VM never costs the whole scrape.

use std::sync::Arc;

use super::inventory_backup::{
    BACKUP_DATASTORE_PATHS, BACKUP_VM_PATHS, ENABLE_UUID_PATH, clear_vm_backup_property,
    custom_fields, custom_fields_spec, set_datastore_property, set_vm_backup_property,
};
use super::model::{
    ComputeResource, Datacenter, Datastore, DiskLayout, Folder, Host, Inventory, LayoutEx,
    LayoutFile, MoRef, SnapshotInfo, SnapshotLayout, SnapshotTree, Vm,
};
use super::names::decode_entity_name;
use super::soap::PropertySpec;
use super::xml::{Node, method_fault_kind};

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

/// The VirtualMachine properties read for every VM.
pub const VM_PATHS: &[&str] = &[
    "name",
    "runtime.host",
    "runtime.powerState",
    "runtime.consolidationNeeded",
    "snapshot",
    "guest.toolsVersionStatus2",
    "guest.toolsRunningStatus",
    "guest.toolsVersion",
    "config.guestId",
    "config.template",
];

/// The VirtualMachine properties read only for VMs that have snapshots: they are most of the
/// bytes (devices, the file list) and matter only for snapshot sizes and the disk capacity
/// they are compared with. `layoutEx` is asked for whole (only its `timestamp` is not needed)
/// because vCenter reports a change under the path asked for, and file sizes change inside it.
pub const SNAPSHOT_VM_PATHS: &[&str] = &["layoutEx", "config.hardware.device"];

/// The HostSystem properties read: where the host sits, and what the host I/O metrics say about
/// it (whether it can be asked for counters, its ESXi version).
pub const HOST_PATHS: &[&str] = &[
    "name",
    "parent",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "summary.config.product.version",
    "summary.config.product.build",
];

/// The Datastore properties read; `summary.url` names the volume its performance counters are
/// reported under.
pub const DATASTORE_PATHS: &[&str] = &["name", "summary.url"];

/// The property sets read for every object of the inventory view (and the
/// CustomFieldsManager, where it is added to the filter), `config.extraConfig["disk.EnableUUID"]`
/// among the VM's when `keyed_enable_uuid` (see [`super::inventory_backup`]).
pub fn property_specs_with(keyed_enable_uuid: bool) -> Vec<PropertySpec> {
    let mut vm_paths = VM_PATHS.to_vec();
    vm_paths.extend_from_slice(BACKUP_VM_PATHS);
    if keyed_enable_uuid {
        vm_paths.push(ENABLE_UUID_PATH);
    }
    vec![
        PropertySpec {
            kind: "VirtualMachine",
            paths: vm_paths,
        },
        PropertySpec {
            kind: "HostSystem",
            paths: HOST_PATHS.to_vec(),
        },
        PropertySpec {
            kind: "ComputeResource",
            paths: vec!["name", "parent"],
        },
        PropertySpec {
            kind: "Folder",
            paths: vec!["name", "parent"],
        },
        PropertySpec {
            kind: "Datacenter",
            paths: vec!["name"],
        },
        PropertySpec {
            kind: "Datastore",
            paths: [DATASTORE_PATHS, BACKUP_DATASTORE_PATHS].concat(),
        },
        custom_fields_spec(),
    ]
}

/// The property sets of the inventory, without the keyed `disk.EnableUUID` path.
pub fn property_specs() -> Vec<PropertySpec> {
    property_specs_with(false)
}

/// The property set read for the VMs with snapshots.
pub fn snapshot_vm_specs() -> Vec<PropertySpec> {
    vec![PropertySpec {
        kind: "VirtualMachine",
        paths: SNAPSHOT_VM_PATHS.to_vec(),
    }]
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
    for path in SNAPSHOT_VM_PATHS {
        clear_vm_property(vm, path);
    }
}

/// What the reader keeps of an answer: everything but the parts of `config.hardware.device`
/// no metric reads. A VM's device list is most of its bytes (controllers, NICs, backings), and
/// only a virtual disk's capacity is used, so the rest is skipped unallocated.
pub fn keep(open: &[Node], child: &Node) -> bool {
    let n = open.len();
    let devices =
        |prop: &Node| prop.text_of("name").map(str::trim) == Some("config.hardware.device");
    if n >= 2 && open[n - 1].name == "val" && devices(&open[n - 2]) {
        return child.xsi_type.as_deref() == Some("VirtualDisk");
    }
    if n >= 3 && open[n - 2].name == "val" && devices(&open[n - 3]) {
        return matches!(
            child.name.as_str(),
            "key" | "capacityInKB" | "capacityInBytes"
        );
    }
    true
}

/// Collects `objects` elements into an [`Inventory`].
#[derive(Debug, Default)]
pub struct InventoryBuilder {
    inventory: Inventory,
    /// Properties whose value did not parse and were left unset.
    pub malformed: usize,
    /// Set when a property came back as a NotAuthenticated fault (the session is gone).
    pub session_lost: Option<String>,
}

impl InventoryBuilder {
    /// Adds one `objects` element (an ObjectContent) to the inventory.
    pub fn add_object(&mut self, objects: &Node) {
        let Some(obj) = objects.child("obj").and_then(Node::moref) else {
            self.malformed += 1;
            return;
        };
        for missing in objects.children_named("missingSet") {
            let fault = missing.child("fault").and_then(|f| f.child("fault"));
            if fault.map(method_fault_kind).as_deref() == Some("NotAuthenticated") {
                let path = missing.text_of("path").unwrap_or_default();
                self.session_lost = Some(format!("{}:{} {path}", obj.kind, obj.value));
            }
        }
        for prop in objects.children_named("propSet") {
            let Some(path) = prop.text_of("name") else {
                self.malformed += 1;
                continue;
            };
            if self
                .inventory
                .set_property(&obj, path.trim(), prop.child("val"))
                .is_none()
            {
                self.malformed += 1;
            }
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
    /// Sets one property of one object from its value (`None`: the property is unset), creating
    /// the object when it is new. `None` back when the value did not parse; the property is
    /// then left as it was.
    pub fn set_property(&mut self, obj: &MoRef, path: &str, val: Option<&Node>) -> Option<()> {
        let id = obj.value.clone();
        match obj.kind.as_str() {
            "VirtualMachine" => {
                let vm = self.vms.entry(id.clone()).or_insert_with(|| {
                    Arc::new(Vm {
                        id,
                        ..Default::default()
                    })
                });
                set_vm_property(Arc::make_mut(vm), path, val)
            }
            "HostSystem" => {
                let host = self.hosts.entry(id.clone()).or_insert_with(|| Host {
                    id,
                    ..Default::default()
                });
                set_name_parent(&mut host.name, &mut host.parent, path, val);
                set_host_property(host, path, val)
            }
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
                set_name_parent(&mut cr.name, &mut cr.parent, path, val);
                Some(())
            }
            "Folder" => {
                let folder = self.folders.entry(id.clone()).or_insert_with(|| Folder {
                    id,
                    ..Default::default()
                });
                set_name_parent(&mut folder.name, &mut folder.parent, path, val);
                Some(())
            }
            "Datacenter" => {
                let dc = self
                    .datacenters
                    .entry(id.clone())
                    .or_insert_with(|| Datacenter {
                        id,
                        ..Default::default()
                    });
                set_name_parent(&mut dc.name, &mut None, path, val);
                Some(())
            }
            "Datastore" => {
                let ds = self
                    .datastores
                    .entry(id.clone())
                    .or_insert_with(|| Datastore {
                        id,
                        ..Default::default()
                    });
                set_name_parent(&mut ds.name, &mut None, path, val);
                if path == "summary.url" {
                    ds.url = val.map(|v| v.text.trim().to_string()).unwrap_or_default();
                }
                set_datastore_property(ds, path, val)
            }
            "CustomFieldsManager" if path == "field" => {
                self.custom_fields = custom_fields(val)?;
                Some(())
            }
            _ => Some(()),
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

fn set_name_parent(name: &mut String, parent: &mut Option<MoRef>, path: &str, val: Option<&Node>) {
    match path {
        "name" => *name = val.map(|v| entity_name(&v.text)).unwrap_or_default(),
        "parent" => *parent = val.and_then(Node::moref),
        _ => {}
    }
}

/// Sets one HostSystem property of the host I/O metrics from its value (`None`: unset); `None`
/// back when the value did not parse.
fn set_host_property(host: &mut Host, path: &str, val: Option<&Node>) -> Option<()> {
    let text = || val.map(|v| v.text.trim().to_string()).unwrap_or_default();
    match path {
        "runtime.connectionState" => host.connection_state = text(),
        "runtime.inMaintenanceMode" => {
            host.in_maintenance = match val {
                Some(v) => parse_bool(&v.text)?,
                None => false,
            }
        }
        "summary.config.product.version" => host.version = text(),
        "summary.config.product.build" => host.build = text(),
        _ => {}
    }
    Some(())
}

/// Sets one VirtualMachine property from its value (`None`: unset); `None` back when the value
/// did not parse.
pub fn set_vm_property(vm: &mut Vm, path: &str, val: Option<&Node>) -> Option<()> {
    let Some(val) = val else {
        clear_vm_property(vm, path);
        return Some(());
    };
    match path {
        "name" => vm.name = entity_name(&val.text),
        "runtime.host" => vm.host = Some(val.moref()?.value),
        "runtime.powerState" => vm.power_state = val.text.trim().to_string(),
        "runtime.consolidationNeeded" => vm.consolidation_needed = parse_bool(&val.text)?,
        "snapshot" => vm.snapshot = Some(snapshot_info(val)?),
        "layoutEx" => vm.layout_ex = Some(layout_ex(val)?),
        "guest.toolsVersionStatus2" => vm.tools_version_status2 = Some(val.text.trim().into()),
        "guest.toolsRunningStatus" => vm.tools_running_status = Some(val.text.trim().into()),
        "guest.toolsVersion" => vm.tools_version = Some(val.text.trim().into()),
        "config.guestId" => vm.guest_id = val.text.trim().to_string(),
        "config.template" => vm.template = parse_bool(&val.text)?,
        "config.hardware.device" => vm.disk_capacities_bytes = disk_capacities(val)?,
        _ => {
            if let Some(parsed) = set_vm_backup_property(&mut vm.backup, path, val) {
                parsed?;
            }
        }
    }
    Some(())
}

/// Puts a VirtualMachine property back to "not set".
pub fn clear_vm_property(vm: &mut Vm, path: &str) {
    match path {
        "name" => vm.name.clear(),
        "runtime.host" => vm.host = None,
        "runtime.powerState" => vm.power_state.clear(),
        "runtime.consolidationNeeded" => vm.consolidation_needed = false,
        "snapshot" => vm.snapshot = None,
        "layoutEx" => vm.layout_ex = None,
        "guest.toolsVersionStatus2" => vm.tools_version_status2 = None,
        "guest.toolsRunningStatus" => vm.tools_running_status = None,
        "guest.toolsVersion" => vm.tools_version = None,
        "config.guestId" => vm.guest_id.clear(),
        "config.template" => vm.template = false,
        "config.hardware.device" => vm.disk_capacities_bytes.clear(),
        _ => {
            clear_vm_backup_property(&mut vm.backup, path);
        }
    }
}

/// A name as the vSphere Client shows it (see [`super::names`]).
fn entity_name(sent: &str) -> String {
    decode_entity_name(sent).into_owned()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_num<T: std::str::FromStr>(node: &Node, name: &str) -> Option<T> {
    node.text_of(name)?.trim().parse().ok()
}

/// An `xsd:dateTime` as seconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<f64> {
    let ts: jiff::Timestamp = text.trim().parse().ok()?;
    Some(ts.as_millisecond() as f64 / 1000.0)
}

/// `VirtualMachineSnapshotInfo`.
fn snapshot_info(val: &Node) -> Option<SnapshotInfo> {
    let root_snapshot_list = val
        .children_named("rootSnapshotList")
        .map(snapshot_tree)
        .collect::<Option<Vec<_>>>()?;
    Some(SnapshotInfo {
        current_snapshot: val
            .child("currentSnapshot")
            .and_then(Node::moref)
            .map(|r| r.value),
        root_snapshot_list,
    })
}

/// `VirtualMachineSnapshotTree`, children included. Trees are as deep as a VM's snapshot
/// chain (vSphere allows 32 levels), and the XML reader has already bounded the depth.
fn snapshot_tree(node: &Node) -> Option<SnapshotTree> {
    let child_snapshot_list = node
        .children_named("childSnapshotList")
        .map(snapshot_tree)
        .collect::<Option<Vec<_>>>()?;
    Some(SnapshotTree {
        snapshot: node.child("snapshot").and_then(Node::moref)?.value,
        name: entity_name(node.text_of("name").unwrap_or_default()),
        description: node.text_of("description").unwrap_or_default().to_string(),
        create_time_seconds: parse_datetime(node.text_of("createTime")?)?,
        state: node.text_of("state").unwrap_or_default().trim().to_string(),
        quiesced: parse_bool(node.text_of("quiesced").unwrap_or("false"))?,
        child_snapshot_list,
    })
}

/// `VirtualMachineFileLayoutEx` requested whole.
fn layout_ex(val: &Node) -> Option<LayoutEx> {
    Some(LayoutEx {
        file: files(val.children_named("file"))?,
        disk: val
            .children_named("disk")
            .map(disk_layout)
            .collect::<Option<_>>()?,
        snapshot: snapshot_layouts(val.children_named("snapshot"))?,
    })
}

/// `VirtualMachineFileLayoutExFileInfo` entries.
fn files<'a>(entries: impl Iterator<Item = &'a Node>) -> Option<Vec<LayoutFile>> {
    entries
        .map(|f| {
            Some(LayoutFile {
                key: parse_num(f, "key")?,
                name: f.text_of("name").unwrap_or_default().to_string(),
                file_type: f.text_of("type").unwrap_or_default().trim().to_string(),
                size: parse_num(f, "size").unwrap_or(0),
            })
        })
        .collect()
}

/// `ArrayOfVirtualMachineFileLayoutExDiskLayout`.
fn disk_layout(d: &Node) -> Option<DiskLayout> {
    let chain = d
        .children_named("chain")
        .map(|unit| {
            unit.children_named("fileKey")
                .map(|k| k.text.trim().parse().ok())
                .collect::<Option<Vec<i32>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(DiskLayout {
        key: parse_num(d, "key")?,
        chain,
    })
}

/// `ArrayOfVirtualMachineFileLayoutExSnapshotLayout`.
fn snapshot_layouts<'a>(entries: impl Iterator<Item = &'a Node>) -> Option<Vec<SnapshotLayout>> {
    entries
        .map(|s| {
            Some(SnapshotLayout {
                key: s.child("key").and_then(Node::moref)?.value,
                data_key: parse_num(s, "dataKey")?,
                disk: s
                    .children_named("disk")
                    .map(disk_layout)
                    .collect::<Option<Vec<_>>>()?,
            })
        })
        .collect()
}

/// The capacities of the VirtualDisk entries of `config.hardware.device`, in bytes.
fn disk_capacities(val: &Node) -> Option<Vec<u64>> {
    val.children
        .iter()
        .filter(|d| d.xsi_type.as_deref() == Some("VirtualDisk"))
        .map(|d| {
            let bytes: Option<u64> = parse_num(d, "capacityInBytes");
            match bytes {
                Some(b) if b > 0 => Some(b),
                _ => parse_num::<u64>(d, "capacityInKB")?.checked_mul(1024),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::xml::read_retrieve_result;

    fn build(xml: &str) -> (InventoryBuilder, Option<String>) {
        let mut b = InventoryBuilder::default();
        let token = read_retrieve_result(xml.as_bytes(), keep, |o| {
            b.add_object(&o);
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
        assert_eq!(root.create_time_seconds, 1_795_168_800.5);
        assert!(root.quiesced);
        let child = &root.child_snapshot_list[0];
        assert_eq!(child.create_time_seconds, 1_795_251_600.0);
        assert_eq!(child.state, "poweredOff");
        let layout = vm.layout_ex.as_ref().unwrap();
        assert_eq!(layout.file.len(), 2);
        assert_eq!(layout.disk[0].chain, vec![vec![1, 3]]);
        assert_eq!(layout.snapshot[0].key, "snapshot-6");
        assert_eq!(layout.snapshot[0].data_key, 2);
        let cluster = &inv.compute_resources["domain-c7"];
        assert!(cluster.is_cluster);
        assert_eq!(cluster.parent, Some(MoRef::new("Folder", "group-h4")));
    }

    #[test]
    fn devices_other_than_disks_and_disk_details_are_not_kept() {
        let (b, _) = build(VM_PAGE);
        let inv = b.finish();
        assert_eq!(
            inv.vms["vm-42"].disk_capacities_bytes,
            vec![1_048_576, 2048]
        );
        let mut kept = Vec::new();
        read_retrieve_result(VM_PAGE.as_bytes(), keep, |o| {
            kept.push(o);
            Ok(())
        })
        .unwrap();
        let devices = kept[0]
            .children_named("propSet")
            .find(|p| p.text_of("name") == Some("config.hardware.device"))
            .and_then(|p| p.child("val"))
            .unwrap();
        assert_eq!(devices.children.len(), 2, "the IDE controller is skipped");
        assert!(
            devices
                .children
                .iter()
                .all(|d| d.child("deviceInfo").is_none())
        );
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
    }

    #[test]
    fn missing_set_not_authenticated_marks_the_session_lost() {
        let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="VirtualMachine">vm-1</obj><missingSet><path>name</path><fault><fault xsi:type="NotAuthenticated"><object type="VirtualMachine">vm-1</object><privilegeId>System.View</privilegeId></fault><localizedMessage></localizedMessage></fault></missingSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
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
        inv.set_property(&obj, "runtime.inMaintenanceMode", None);
        inv.set_property(&obj, "runtime.connectionState", None);
        assert!(!inv.hosts["host-29"].in_maintenance);
        assert_eq!(inv.hosts["host-29"].connection_state, "");
    }
}
