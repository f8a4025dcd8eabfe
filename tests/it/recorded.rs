//! The exporter's readers against real answers of vCenter and ESXi that others recorded, kept
//! unchanged in `tests/fixtures/pyvmomi` and `tests/fixtures/govmomi` (their READMEs say where
//! each comes from): every property the exporter reads that the recordings hold decodes to the
//! recorded value, written out here from reading the XML; faults become the right errors,
//! through the real client and its login pause too; the prefixes an answer uses, and where it
//! declares their namespaces, do not change what is read; recorded ISO 8601 times give the
//! right Unix seconds.
//!
//! pyvmomi's recordings ask for whole properties (`runtime`, `guest`, `config`, `summary`)
//! where the exporter asks for paths below them (`runtime.powerState`). Those values are
//! decoded where they sit inside the recorded value, by the `read_value` the mirror runs on a
//! `val`: it reads an element's content, never its name.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use vsphere_backup_exporter::backup::history::{Event, EventKind, TaskInfo, TaskState};
use vsphere_backup_exporter::vsphere::client::ServiceContent;
use vsphere_backup_exporter::vsphere::mirror::Mirror;
use vsphere_backup_exporter::vsphere::model::{
    ComputeResource, CustomField, Datastore, Devices, Disk, DiskBacking, DiskLayout, DiskMode,
    Host, Inventory, LayoutEx, LayoutFile, MoRef, RdmMode, Vm, VmBackup, VmQuestion,
};
use vsphere_backup_exporter::vsphere::perf::datastore_instance;
use vsphere_backup_exporter::vsphere::properties::{
    Change, ChangeOp, InventoryBuilder, ObjectUpdate, Property, Value, parse_datetime, read_object,
    read_objects, read_value,
};
use vsphere_backup_exporter::vsphere::xml::{self, Cursor, Limits, Node, SoapReader};
use vsphere_backup_exporter::vsphere::{CallError, Client, Fault, events};

use crate::fake_vcenter::{Answer, Fake, start};
use crate::support::vcenter;

fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pyvmomi(name: &str) -> Vec<u8> {
    fixture("pyvmomi", name)
}

fn govmomi(name: &str) -> Vec<u8> {
    fixture("govmomi", name)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("a UTF-8 fixture")
}

/// Where a RetrievePropertiesEx answer about one property holds its value, below the response
/// element.
const VAL: &[&str] = &["returnval", "objects", "propSet", "val"];
/// Where a Fetch answer (pyvmomi 8's way of reading one property) holds it.
const FETCHED: &[&str] = &["returnval"];

fn below<'a>(value: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    [value, rest].concat()
}

/// Moves `cur` from the element it is at down `path`, each step to the first child of that
/// name; false when one is missing.
fn descend<R: BufRead>(cur: &mut Cursor<R>, path: &[&str]) -> bool {
    for name in path {
        cur.enter();
        loop {
            if !cur.next_child().unwrap() {
                return false;
            }
            if cur.is(name) {
                break;
            }
        }
    }
    true
}

/// The element at `path` below the response element of `answer`, decoded as the exporter
/// decodes `property`; `None` when there is no such element (the property is unset).
fn decoded(answer: &[u8], path: &[&str], property: Property) -> Option<Value> {
    let mut cur = Cursor::new(answer, &Limits::default());
    cur.enter_body().unwrap();
    if !descend(&mut cur, path) {
        return None;
    }
    let value = read_value(&mut cur, property).unwrap();
    Some(value.unwrap_or_else(|why| panic!("{path:?} as {property:?}: {why}")))
}

/// Every child called `name` of the element at `path`, decoded as `property`.
fn each_decoded(answer: &[u8], path: &[&str], name: &str, property: Property) -> Vec<Value> {
    let mut cur = Cursor::new(answer, &Limits::default());
    cur.enter_body().unwrap();
    assert!(descend(&mut cur, path), "no {path:?}");
    cur.enter();
    let mut values = Vec::new();
    while cur.next_child().unwrap() {
        if cur.is(name) {
            values.push(read_value(&mut cur, property).unwrap().unwrap());
        }
    }
    values
}

/// Sets properties of one object as the mirror applies a change (`None`: unset).
fn assign(inventory: &mut Inventory, obj: &MoRef, values: Vec<(Property, Option<Value>)>) {
    let changes = values
        .into_iter()
        .map(|(property, value)| Change {
            property: Ok(property),
            op: ChangeOp::Assign,
            value: value.map(Ok),
        })
        .collect();
    inventory.apply_changes(obj, changes).unwrap();
}

/// A property at `sub` (`config/product/version`; "" for the value itself) below the value of
/// a recorded answer, ready for [`assign`].
fn at(answer: &[u8], value: &[&str], sub: &str, property: Property) -> (Property, Option<Value>) {
    let path = below(
        value,
        &sub.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
    );
    (property, decoded(answer, &path, property))
}

/// The inventory the exporter builds from recorded RetrievePropertiesEx answers, read as the
/// mirror reads a full retrieval. Paths it does not read (`runtime` whole) are skipped; no value
/// may be malformed.
fn retrieved(files: &[&str]) -> Inventory {
    let mut builder = InventoryBuilder::default();
    for file in files {
        let token = read_objects(&pyvmomi(file)[..], &Limits::default(), |object| {
            builder.add_object(object);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(token, None, "{file}");
    }
    assert_eq!(builder.malformed, 0);
    assert_eq!(builder.session_lost, None);
    builder.finish()
}

/// The objects of a RetrieveProperties answer kept without its SOAP envelope (govmomi keeps
/// them so): each `returnval` is an ObjectContent.
fn contents(answer: &[u8]) -> Vec<ObjectUpdate> {
    let mut cur = Cursor::new(answer, &Limits::default());
    assert!(cur.next_child().unwrap() && cur.is("RetrievePropertiesResponse"));
    cur.enter();
    let mut objects = Vec::new();
    while cur.next_child().unwrap() {
        if cur.is("returnval") {
            objects.push(read_object(&mut cur).unwrap());
        }
    }
    objects
}

/// The element inside the SOAP Body of an answer, as a tree.
fn body(answer: &[u8]) -> Node {
    SoapReader::new(answer).read_body().unwrap()
}

/// The first element at `path` below `node`.
fn node_at<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
    path.iter().fold(node, |n, name| {
        n.child(name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", n.name))
    })
}

fn client(fake: &Fake, password: &str) -> Arc<Client> {
    let config = vcenter("vc01", &fake.url, "my_user", password);
    Arc::new(Client::new(&(&config).into()).unwrap())
}

#[test]
fn recorded_service_contents_give_the_managers_and_api_version_the_client_uses() {
    let managed = |kind: &str, id: &str| Some(MoRef::new(kind, id));
    for (file, api_version) in [
        ("service_content_vcenter_6.0.xml", "6.0"),
        ("service_content_vcenter_6.7.xml", "6.7"),
        ("service_content_vcenter_8.0.3.xml", "8.0.2.0"),
    ] {
        let returnval = xml::read_returnval(&pyvmomi(file)).unwrap();
        let read = ServiceContent::from_node(&returnval).unwrap();
        // Field by field, so a manager added to ServiceContent does not break this test.
        assert_eq!(read.api_version, api_version, "{file}");
        let references = [
            (Some(read.root_folder), managed("Folder", "group-d1")),
            (
                Some(read.property_collector),
                managed("PropertyCollector", "propertyCollector"),
            ),
            (
                Some(read.view_manager),
                managed("ViewManager", "ViewManager"),
            ),
            (
                Some(read.session_manager),
                managed("SessionManager", "SessionManager"),
            ),
            (read.perf_manager, managed("PerformanceManager", "PerfMgr")),
            (read.setting, managed("OptionManager", "VpxSettings")),
            (
                read.custom_fields_manager,
                managed("CustomFieldsManager", "CustomFieldsManager"),
            ),
            (read.event_manager, managed("EventManager", "EventManager")),
            (read.task_manager, managed("TaskManager", "TaskManager")),
        ];
        for (read, expected) in references {
            assert_eq!(read, expected, "{file}");
        }
    }
    // A vCenter 5.5 simulator answering in urn:vim2, without the ViewManager the mirror
    // needs: refused with the manager's name.
    let returnval = xml::read_returnval(&pyvmomi("service_content_simulator_5.5.xml")).unwrap();
    let err = ServiceContent::from_node(&returnval).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed response: ServiceContent without viewManager"
    );
}

#[test]
fn a_recorded_vcenter_6_7_vm_decodes_to_the_recorded_values() {
    let mut inventory = retrieved(&[
        "vm_name.xml",
        "vm_layout_ex.xml",
        "vm_datastore.xml",
        "vm_custom_value.xml",
        "vm_snapshot_unset.xml",
        "vm_runtime.xml",
        "vm_guest.xml",
        "vm_config.xml",
    ]);
    let (runtime, guest, config) = (
        pyvmomi("vm_runtime.xml"),
        pyvmomi("vm_guest.xml"),
        pyvmomi("vm_config.xml"),
    );
    let obj = MoRef::new("VirtualMachine", "vm-22");
    assign(
        &mut inventory,
        &obj,
        vec![
            at(&runtime, VAL, "host", Property::Host),
            at(&runtime, VAL, "powerState", Property::PowerState),
            at(&runtime, VAL, "connectionState", Property::ConnectionState),
            at(
                &runtime,
                VAL,
                "faultToleranceState",
                Property::FaultToleranceState,
            ),
            at(&runtime, VAL, "question", Property::Question),
            at(
                &runtime,
                VAL,
                "consolidationNeeded",
                Property::ConsolidationNeeded,
            ),
            at(
                &guest,
                VAL,
                "toolsVersionStatus2",
                Property::ToolsVersionStatus2,
            ),
            at(
                &guest,
                VAL,
                "toolsRunningStatus",
                Property::ToolsRunningStatus,
            ),
            at(&guest, VAL, "toolsVersion", Property::ToolsVersion),
            at(&guest, VAL, "guestFamily", Property::GuestFamily),
            at(&config, VAL, "guestId", Property::GuestId),
            at(&config, VAL, "template", Property::Template),
            at(&config, VAL, "annotation", Property::Annotation),
            at(
                &config,
                VAL,
                "changeTrackingEnabled",
                Property::ChangeTrackingEnabled,
            ),
            at(&config, VAL, "hardware", Property::Devices),
        ],
    );

    const DIR: &str = "[datastore1] VMware vCenter Server Appliance/";
    let file = |key: i32, name: &str, file_type: &str, size: u64| LayoutFile {
        key,
        name: format!("{DIR}{name}"),
        file_type: file_type.to_string(),
        size,
    };
    let disk = |key: i32, descriptor: i32, extent: i32| DiskLayout {
        key,
        chain: vec![vec![descriptor, extent]],
    };
    let expected = Vm {
        id: "vm-22".into(),
        name: "VMware vCenter Server Appliance".into(),
        host: Some("host-14".into()),
        power_state: "poweredOn".into(),
        consolidation_needed: false,
        template: false,
        guest_id: "other3xLinux64Guest".into(),
        tools_version_status2: Some("guestToolsUnmanaged".into()),
        tools_running_status: Some("guestToolsRunning".into()),
        tools_version: Some("10277".into()),
        devices: Devices {
            disks: [
                (2000, "", 12_884_901_888),
                (2001, "_1", 1_980_760_064),
                (2002, "_2", 26_843_545_600),
                (2003, "_3", 26_843_545_600),
                (2004, "_4", 10_737_418_240),
                (2005, "_5", 10_737_418_240),
                (2006, "_6", 16_106_127_360),
                (2008, "_7", 10_737_418_240),
                (2009, "_8", 1_073_741_824),
                (2010, "_9", 10_737_418_240),
                (2011, "_10", 10_737_418_240),
                (2012, "_11", 107_374_182_400),
                (2013, "_12", 53_687_091_200),
            ]
            .into_iter()
            .map(|(key, suffix, bytes)| Disk {
                key: Some(key),
                backing: DiskBacking::Flat,
                disk_mode: DiskMode::Persistent,
                compatibility_mode: None,
                file_name: format!("{DIR}VMware vCenter Server Appliance{suffix}.vmdk"),
                capacity_bytes: Some(bytes),
                multi_writer: false,
                change_id: false,
                parent: None,
            })
            .collect(),
            // Two LSI Logic controllers, noSharing; no passthrough device.
            scsi_shared_bus: 0,
            pci_passthrough: 0,
        },
        connection_state: "connected".into(),
        fault_tolerance_state: Some("notConfigured".into()),
        question: None,
        snapshot: None,
        layout_ex: Some(LayoutEx {
            file: vec![
                file(0, "VMware vCenter Server Appliance.vmx", "config", 4_235),
                file(1, "VMware vCenter Server Appliance.nvram", "nvram", 8_684),
                file(2, "VMware vCenter Server Appliance.vmsd", "snapshotList", 0),
                file(
                    3,
                    "VMware vCenter Server Appliance.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    4,
                    "VMware vCenter Server Appliance-flat.vmdk",
                    "diskExtent",
                    11_760_828_416,
                ),
                file(
                    5,
                    "VMware vCenter Server Appliance_1.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    6,
                    "VMware vCenter Server Appliance_1-flat.vmdk",
                    "diskExtent",
                    1_979_711_488,
                ),
                file(
                    7,
                    "VMware vCenter Server Appliance_2.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    8,
                    "VMware vCenter Server Appliance_2-flat.vmdk",
                    "diskExtent",
                    3_964_665_856,
                ),
                file(
                    9,
                    "VMware vCenter Server Appliance_3.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    10,
                    "VMware vCenter Server Appliance_3-flat.vmdk",
                    "diskExtent",
                    633_339_904,
                ),
                file(
                    11,
                    "VMware vCenter Server Appliance_4.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    12,
                    "VMware vCenter Server Appliance_4-flat.vmdk",
                    "diskExtent",
                    10_232_004_608,
                ),
                file(
                    13,
                    "VMware vCenter Server Appliance_5.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    14,
                    "VMware vCenter Server Appliance_5-flat.vmdk",
                    "diskExtent",
                    710_934_528,
                ),
                file(
                    15,
                    "VMware vCenter Server Appliance_6.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    16,
                    "VMware vCenter Server Appliance_6-flat.vmdk",
                    "diskExtent",
                    460_324_864,
                ),
                file(
                    17,
                    "VMware vCenter Server Appliance_7.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    18,
                    "VMware vCenter Server Appliance_7-flat.vmdk",
                    "diskExtent",
                    1_013_972_992,
                ),
                file(
                    19,
                    "VMware vCenter Server Appliance_8.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    20,
                    "VMware vCenter Server Appliance_8-flat.vmdk",
                    "diskExtent",
                    40_894_464,
                ),
                file(
                    21,
                    "VMware vCenter Server Appliance_9.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    22,
                    "VMware vCenter Server Appliance_9-flat.vmdk",
                    "diskExtent",
                    319_815_680,
                ),
                file(
                    23,
                    "VMware vCenter Server Appliance_10.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    24,
                    "VMware vCenter Server Appliance_10-flat.vmdk",
                    "diskExtent",
                    319_815_680,
                ),
                file(
                    25,
                    "VMware vCenter Server Appliance_11.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    26,
                    "VMware vCenter Server Appliance_11-flat.vmdk",
                    "diskExtent",
                    1_909_456_896,
                ),
                file(
                    27,
                    "VMware vCenter Server Appliance_12.vmdk",
                    "diskDescriptor",
                    0,
                ),
                file(
                    28,
                    "VMware vCenter Server Appliance_12-flat.vmdk",
                    "diskExtent",
                    5_082_447_872,
                ),
                file(29, "vmware.log", "log", 434_350),
                file(
                    30,
                    "VMware vCenter Server Appliance-76f3a28e.vswp",
                    "swap",
                    10_737_418_240,
                ),
                file(
                    31,
                    "vmx-VMware vCenter Server Appliance-1995678350-1.vswp",
                    "uwswap",
                    115_343_360,
                ),
            ],
            disk: vec![
                disk(2000, 3, 4),
                disk(2001, 5, 6),
                disk(2002, 7, 8),
                disk(2003, 9, 10),
                disk(2004, 11, 12),
                disk(2005, 13, 14),
                disk(2006, 15, 16),
                disk(2008, 17, 18),
                disk(2009, 19, 20),
                disk(2010, 21, 22),
                disk(2011, 23, 24),
                disk(2012, 25, 26),
                disk(2013, 27, 28),
            ],
            snapshot: Vec::new(),
        }),
        backup: VmBackup {
            custom_values: Vec::new(),
            annotation: "VMware vCenter Server Appliance".into(),
            cbt_enabled: false,
            guest_family: Some("linuxGuest".into()),
            disk_enable_uuid: None,
            datastores: vec!["datastore-15".into()],
        },
    };
    assert_eq!(inventory.vms.len(), 1);
    let vm = inventory.vms["vm-22"].as_ref();
    assert_eq!(vm, &expected);
    assert_eq!(vm.disk_capacity_bytes(), 300_480_987_136);
    assert!(!vm.has_snapshots());
    assert_eq!(
        vm.home_directory(),
        Some("[datastore1] VMware vCenter Server Appliance")
    );
}

/// The recorded `config` of vm-22 with `edit` made inside the backing of the disk whose file
/// ends in `file_end` (the first `from` after that file name becomes `to`).
fn disk_edited(config: &str, file_end: &str, from: &str, to: &str) -> String {
    let at = config
        .find(&format!("{file_end}</fileName>"))
        .unwrap_or_else(|| panic!("no disk {file_end}"));
    let (head, tail) = config.split_at(at);
    assert!(tail.contains(from), "{file_end}: no {from}");
    format!("{head}{}", tail.replacen(from, to, 1))
}

#[test]
fn recorded_devices_with_each_kind_of_disk_decode_field_by_field() {
    // The recorded answer holds 13 flat, persistent, unshared disks without change ids. Each
    // kind the disk checks tell apart is made from one of them, as vCenter writes it.
    let c = text(pyvmomi("vm_config.xml"));
    let c = disk_edited(
        &c,
        "_1.vmdk",
        "<diskMode>persistent</diskMode>",
        "<diskMode>independent_persistent</diskMode>",
    );
    let c = disk_edited(
        &c,
        "_2.vmdk",
        "<diskMode>persistent</diskMode>",
        "<diskMode>independent_nonpersistent</diskMode>",
    );
    // _3: a physical-mode RDM (its mapping file's diskMode says persistent).
    let c = c.replacen(
        r#"<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[datastore1] VMware vCenter Server Appliance/VMware vCenter Server Appliance_3.vmdk</fileName>"#,
        r#"<backing xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName>[datastore1] VMware vCenter Server Appliance/VMware vCenter Server Appliance_3.vmdk</fileName>"#,
        1,
    );
    let c = disk_edited(
        &c,
        "_3.vmdk",
        "<diskMode>persistent</diskMode>",
        "<lunUuid>0200000000600a098038303053453f463045727a4c554e202020</lunUuid><deviceName>/vmfs/devices/disks/naa.600a098038303053453f463045727a4c</deviceName><compatibilityMode>physicalMode</compatibilityMode><diskMode>persistent</diskMode>",
    );
    let c = disk_edited(
        &c,
        "_4.vmdk",
        "<sharing>sharingNone</sharing>",
        "<sharing>sharingMultiWriter</sharing>",
    );
    let c = disk_edited(
        &c,
        "_5.vmdk",
        "<digestEnabled>false</digestEnabled>",
        "<changeId>52 de 7a 3b 9c 41 0e 2f-7a 91 2c 44 07 5b 1d 3e/12</changeId><digestEnabled>false</digestEnabled>",
    );
    // _6 runs on a delta: its file is the delta's descriptor, its parent the base disk.
    let c = c.replacen(
        "VMware vCenter Server Appliance_6.vmdk</fileName>",
        "VMware vCenter Server Appliance_6-000001.vmdk</fileName>",
        1,
    );
    let c = disk_edited(
        &c,
        "_6-000001.vmdk",
        "<sharing>sharingNone</sharing>",
        r#"<parent xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[datastore1] VMware vCenter Server Appliance/VMware vCenter Server Appliance_6.vmdk</fileName><datastore type="Datastore">datastore-15</datastore><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></parent><sharing>sharingNone</sharing>"#,
    );
    // Odd values: an unknown mode, a capacity in bytes that is not a number (the KB count
    // stands), a key that is not a number.
    let c = disk_edited(
        &c,
        "_7.vmdk",
        "<diskMode>persistent</diskMode>",
        "<diskMode>sometimes</diskMode>",
    );
    let c = disk_edited(
        &c,
        "_7.vmdk",
        "<capacityInBytes>10737418240</capacityInBytes>",
        "<capacityInBytes>lots</capacityInBytes>",
    );
    let c = c.replacen("<key>2009</key>", "<key>two thousand nine</key>", 1);
    // SCSI controller 1 shares its bus; a vGPU is added after the CD drive.
    let c = c.replacen(
        "<busNumber>1</busNumber><hotAddRemove>true</hotAddRemove><sharedBus>noSharing</sharedBus>",
        "<busNumber>1</busNumber><hotAddRemove>true</hotAddRemove><sharedBus>physicalSharing</sharedBus>",
        1,
    );
    let c = c.replacen(
        r#"<device xsi:type="VirtualCdrom">"#,
        r#"<device xsi:type="VirtualPCIPassthrough"><key>13000</key><deviceInfo><label>PCI device 0</label><summary>NVIDIA GRID vGPU grid_t4-4q</summary></deviceInfo><backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_t4-4q</vgpu><migrateSupported>false</migrateSupported></backing><controllerKey>100</controllerKey><unitNumber>18</unitNumber></device><device xsi:type="VirtualCdrom">"#,
        1,
    );
    let Some(Value::Devices(devices)) =
        decoded(c.as_bytes(), &below(VAL, &["hardware"]), Property::Devices)
    else {
        panic!("no devices");
    };
    assert_eq!(devices.disks.len(), 13);
    assert_eq!((devices.scsi_shared_bus, devices.pci_passthrough), (1, 1));
    const DIR: &str = "[datastore1] VMware vCenter Server Appliance/";
    let d = |i: usize| &devices.disks[i];
    assert_eq!(d(0).disk_mode, DiskMode::Persistent);
    assert!(!d(0).is_independent() && !d(0).is_physical_rdm());
    assert_eq!(d(1).disk_mode, DiskMode::IndependentPersistent);
    assert_eq!(d(2).disk_mode, DiskMode::IndependentNonpersistent);
    assert!(d(1).is_independent() && d(2).is_independent());
    assert_eq!(d(3).backing, DiskBacking::RawDiskMapping);
    assert_eq!(d(3).compatibility_mode, Some(RdmMode::Physical));
    assert_eq!(d(3).disk_mode, DiskMode::Persistent);
    assert!(d(3).is_physical_rdm());
    assert!(d(4).multi_writer && !d(3).multi_writer);
    assert!(d(5).change_id && !d(4).change_id);
    assert_eq!(
        d(6).file_name,
        format!("{DIR}VMware vCenter Server Appliance_6-000001.vmdk")
    );
    assert_eq!(
        d(6).parent,
        Some(format!("{DIR}VMware vCenter Server Appliance_6.vmdk"))
    );
    assert_eq!(d(5).parent, None);
    assert_eq!(d(7).disk_mode, DiskMode::Unknown);
    assert_eq!(d(7).capacity_bytes, Some(10_485_760 * 1024));
    assert_eq!(d(7).key, Some(2008));
    assert_eq!(d(8).key, None);
    assert_eq!(d(8).capacity_bytes, Some(1_073_741_824));
    // The disks the odd values were not in are read as recorded.
    assert_eq!(d(12).key, Some(2013));
    assert_eq!(d(12).capacity_bytes, Some(53_687_091_200));
    assert_eq!(d(12).backing, DiskBacking::Flat);
}

#[test]
fn recorded_runtime_states_and_a_pending_question_decode_as_sent() {
    let runtime = text(pyvmomi("vm_runtime.xml"));
    let prop = |answer: &str, name: &str, property| {
        decoded(answer.as_bytes(), &below(VAL, &[name]), property)
    };
    assert_eq!(
        prop(&runtime, "connectionState", Property::ConnectionState),
        Some(Value::Text("connected".into()))
    );
    assert_eq!(
        prop(
            &runtime,
            "faultToleranceState",
            Property::FaultToleranceState
        ),
        Some(Value::Text("notConfigured".into()))
    );
    assert_eq!(prop(&runtime, "question", Property::Question), None);
    // The question vCenter asks when a snapshot fills its datastore, as a
    // VirtualMachineQuestionInfo is written (choices and messages skipped).
    let asked = runtime
        .replacen(
            "<connectionState>connected</connectionState>",
            "<connectionState>inaccessible</connectionState>",
            1,
        )
        .replacen(
            "<faultToleranceState>notConfigured</faultToleranceState>",
            "<faultToleranceState>running</faultToleranceState>",
            1,
        )
        .replacen(
            "<paused>false</paused>",
            r#"<question><id>_vmx1</id><text>msg.hbacommon.outofspace:There is no more space for virtual disk 'db-000001.vmdk'. You might be able to continue this session by freeing disk space on the relevant volume, and clicking _Retry. Click Cancel to terminate this session.</text><choice><choiceInfo xsi:type="ElementDescription"><label>Cancel</label><summary>Cancel</summary><key>0</key></choiceInfo><choiceInfo xsi:type="ElementDescription"><label>Retry</label><summary>Retry</summary><key>1</key></choiceInfo><defaultIndex>0</defaultIndex></choice><message><id>msg.hbacommon.outofspace</id><argument>db-000001.vmdk</argument><text>There is no more space for virtual disk &apos;db-000001.vmdk&apos;.</text></message></question><paused>true</paused>"#,
            1,
        );
    assert_eq!(
        prop(&asked, "connectionState", Property::ConnectionState),
        Some(Value::Text("inaccessible".into()))
    );
    assert_eq!(
        prop(&asked, "faultToleranceState", Property::FaultToleranceState),
        Some(Value::Text("running".into()))
    );
    let Some(Value::Question(VmQuestion { id, text })) =
        prop(&asked, "question", Property::Question)
    else {
        panic!("no question");
    };
    assert_eq!(id, "_vmx1");
    assert!(
        text.starts_with(
            "msg.hbacommon.outofspace:There is no more space for virtual disk 'db-000001.vmdk'."
        ),
        "{text}"
    );
}

#[test]
fn recorded_guest_tools_states_decode_as_sent_including_absent_ones() {
    let mut inventory = Inventory::default();
    let read = [
        ("vm-722", "vm722_guest_tools_current.xml"),
        ("vm-26", "vm26_guest_tools_unmanaged.xml"),
        ("vm-23", "vm23_guest_tools_not_installed.xml"),
    ];
    for (id, file) in read {
        let guest = pyvmomi(file);
        let values = vec![
            at(
                &guest,
                VAL,
                "toolsVersionStatus2",
                Property::ToolsVersionStatus2,
            ),
            at(
                &guest,
                VAL,
                "toolsRunningStatus",
                Property::ToolsRunningStatus,
            ),
            at(&guest, VAL, "toolsVersion", Property::ToolsVersion),
            at(&guest, VAL, "guestFamily", Property::GuestFamily),
        ];
        assign(&mut inventory, &MoRef::new("VirtualMachine", id), values);
    }
    let tools = |id: &str| {
        let vm = &inventory.vms[id];
        (
            vm.tools_version_status2.as_deref(),
            vm.tools_running_status.as_deref(),
            vm.tools_version.as_deref(),
            vm.backup.guest_family.as_deref(),
        )
    };
    assert_eq!(
        tools("vm-722"),
        (
            Some("guestToolsCurrent"),
            Some("guestToolsRunning"),
            Some("9216"),
            Some("linuxGuest")
        )
    );
    // Tools vCenter does not manage report the largest int as their version.
    assert_eq!(
        tools("vm-26"),
        (
            Some("guestToolsUnmanaged"),
            Some("guestToolsNotRunning"),
            Some("2147483647"),
            None
        )
    );
    assert_eq!(
        tools("vm-23"),
        (
            Some("guestToolsNotInstalled"),
            Some("guestToolsNotRunning"),
            None,
            None
        )
    );
}

#[test]
fn recorded_extra_config_options_read_as_esxi_reads_their_booleans() {
    let config = pyvmomi("vm_config.xml");
    let options = node_at(&body(&config), VAL)
        .children_named("extraConfig")
        .map(|o| o.text_of("key").unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    // Each option as the keyed path `config.extraConfig["…"]` returns it (an OptionValue).
    let values = each_decoded(&config, VAL, "extraConfig", Property::EnableUuid);
    assert_eq!(values.len(), 56);
    let by_key: BTreeMap<&str, &Value> = options.iter().map(String::as_str).zip(&values).collect();
    let uuid = Value::EnableUuid;
    assert_eq!(by_key["svga.present"], &uuid(Some(true)), "TRUE");
    assert_eq!(by_key["msg.autoAnswer"], &uuid(Some(true)), "TRUE");
    assert_eq!(
        by_key["cdrom.showIsoLockWarning"],
        &uuid(Some(false)),
        "FALSE"
    );
    assert_eq!(by_key["softPowerOff"], &uuid(Some(false)), "FALSE");
    assert_eq!(by_key["pciBridge4.functions"], &uuid(Some(false)), "8");
    assert_eq!(by_key["scsi0:0.redo"], &uuid(Some(false)), "empty");
    // Read as the whole `config.extraConfig` (here inside `config`, among its other members),
    // the options hold no disk.EnableUUID: none of the others is taken for it.
    assert_eq!(
        decoded(&config, VAL, Property::ExtraConfig),
        Some(uuid(None))
    );
}

#[test]
fn a_recorded_esxi_6_7_host_decodes_to_the_recorded_values() {
    let mut inventory = retrieved(&[
        "host_name.xml",
        "host_parent.xml",
        "host_runtime.xml",
        "host_summary.xml",
    ]);
    let (runtime, summary) = (pyvmomi("host_runtime.xml"), pyvmomi("host_summary.xml"));
    assign(
        &mut inventory,
        &MoRef::new("HostSystem", "host-14"),
        vec![
            at(&runtime, VAL, "connectionState", Property::ConnectionState),
            at(
                &runtime,
                VAL,
                "inMaintenanceMode",
                Property::InMaintenanceMode,
            ),
            at(
                &summary,
                VAL,
                "config/product/version",
                Property::ProductVersion,
            ),
            at(
                &summary,
                VAL,
                "config/product/build",
                Property::ProductBuild,
            ),
        ],
    );
    assert_eq!(
        inventory.hosts["host-14"],
        Host {
            id: "host-14".into(),
            name: "10.0.0.5".into(),
            parent: Some(MoRef::new("ComputeResource", "domain-s12")),
            connection_state: "connected".into(),
            in_maintenance: false,
            version: "6.7.0".into(),
            build: "8169922".into(),
        }
    );
}

#[test]
fn recorded_vmfs_and_vsan_datastores_decode_to_the_recorded_values() {
    let mut inventory = retrieved(&[
        "datastore_name.xml",
        "datastore_info.xml",
        "datastore_summary.xml",
    ]);
    let summary_values = |summary: &[u8], value: &[&str]| {
        vec![
            at(summary, value, "url", Property::Url),
            at(summary, value, "capacity", Property::Capacity),
            at(summary, value, "freeSpace", Property::FreeSpace),
            at(summary, value, "uncommitted", Property::Uncommitted),
            at(summary, value, "type", Property::FsType),
            at(summary, value, "accessible", Property::Accessible),
        ]
    };
    let vmfs = MoRef::new("Datastore", "datastore-15");
    let summary = pyvmomi("datastore_summary.xml");
    assign(&mut inventory, &vmfs, summary_values(&summary, VAL));
    assert_eq!(
        inventory.datastores["datastore-15"],
        Datastore {
            id: "datastore-15".into(),
            name: "datastore1".into(),
            url: "ds:///vmfs/volumes/5b7ee5c9-4e8f1921-93b3-90b11c51ac73/".into(),
            capacity_bytes: Some(590_826_438_656),
            free_bytes: Some(124_541_468_672),
            uncommitted_bytes: Some(372_001_753_348),
            fs_type: "VMFS".into(),
            accessible: Some(true),
            extent_disks: vec!["naa.6b8ca3a0e65228002312a2e3098048bf".into()],
        }
    );

    // vCenter 8.0.3's vSAN datastore, read by pyvmomi with Fetch.
    let vsan = MoRef::new("Datastore", "datastore-17");
    let summary = pyvmomi("datastore_summary_vsan_fetch.xml");
    let mut values = summary_values(&summary, FETCHED);
    let info = pyvmomi("datastore_info_vsan_fetch.xml");
    values.push(at(&info, FETCHED, "", Property::DatastoreInfo));
    values.push(at(&summary, FETCHED, "name", Property::Name));
    assign(&mut inventory, &vsan, values);
    assert_eq!(
        inventory.datastores["datastore-17"],
        Datastore {
            id: "datastore-17".into(),
            name: "vsanDatastore".into(),
            url: "ds:///vmfs/volumes/vsan:5281f817da2563b1-f53a57a4a4c49434/".into(),
            capacity_bytes: Some(386_479_947_776),
            free_bytes: Some(362_348_271_376),
            uncommitted_bytes: Some(9_797_894_144),
            fs_type: "vsan".into(),
            accessible: Some(true),
            extent_disks: Vec::new(),
        }
    );

    // The volumes their performance counters are reported under.
    let instance = |id: &str| datastore_instance(&inventory.datastores[id].url).map(str::to_owned);
    assert_eq!(
        instance("datastore-15").as_deref(),
        Some("5b7ee5c9-4e8f1921-93b3-90b11c51ac73")
    );
    assert_eq!(
        instance("datastore-17").as_deref(),
        Some("vsan:5281f817da2563b1-f53a57a4a4c49434")
    );
}

#[test]
fn the_recorded_datacenter_is_named_and_the_root_folder_has_no_parent() {
    let inventory = retrieved(&["datacenter_name.xml", "root_folder_parent_unset.xml"]);
    assert_eq!(inventory.datacenters["datacenter-2"].name, "Marlboro");
    // The root folder's parent is unset: vCenter answers the object without a propSet.
    assert_eq!(inventory.folders["group-d1"].parent, None);
    assert_eq!(inventory.folders.len(), 1);
}

#[test]
fn recorded_host_and_cluster_properties_kept_by_govmomi_decode_as_sent() {
    let mut builder = InventoryBuilder::default();
    for file in [
        "hostsystem_list_name_property.xml",
        "cluster_host_property.xml",
    ] {
        for object in contents(&govmomi(file)) {
            builder.add_object(object);
        }
    }
    assert_eq!(builder.malformed, 0);
    let inventory = builder.finish();
    let names: Vec<(&str, &str)> = inventory
        .hosts
        .values()
        .map(|h| (h.id.as_str(), h.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("host-10", "host-01.example.com"),
            ("host-30", "host-02.example.com")
        ]
    );
    assert_eq!(
        inventory.compute_resources["domain-c7"],
        ComputeResource {
            id: "domain-c7".into(),
            name: String::new(),
            is_cluster: true,
            parent: Some(MoRef::new("Folder", "group-h6")),
        }
    );
}

#[test]
fn recorded_custom_field_definitions_decode_by_key() {
    let fields = decoded(
        &pyvmomi("host_available_field.xml"),
        VAL,
        Property::CustomFields,
    );
    let mut inventory = Inventory::default();
    let manager = MoRef::new("CustomFieldsManager", "CustomFieldsManager");
    assign(
        &mut inventory,
        &manager,
        vec![(Property::CustomFields, fields)],
    );
    assert_eq!(
        inventory.custom_fields,
        BTreeMap::from([(
            42,
            CustomField {
                name: "AutoDeploy.MachineIdentity".into(),
                managed_object_type: "HostSystem".into(),
            }
        )])
    );
}

#[test]
fn recorded_events_decode_with_their_keys_and_times() {
    let answer = body(&pyvmomi("host_config_issue.xml"));
    let event = |created_seconds: f64| Event {
        key: 0,
        created_seconds,
        user: String::new(),
        vm: None,
        kind: EventKind::Other,
    };
    // LocalTSMEnabledEvent at 2018-12-14T14:43:59.628306Z, RemoteTSMEnabledEvent at
    // 2018-12-14T14:43:59.628334Z.
    assert_eq!(
        events::page_events(node_at(&answer, VAL)),
        [event(1_544_798_639.628), event(1_544_798_639.628)]
    );
}

#[test]
fn a_recorded_read_next_tasks_answer_gives_each_task_with_its_state_and_user() {
    // pyvmomi's ReadNextTasks answer, whose last two tasks name a method pyvmomi does not know,
    // read as the event follower reads the task history.
    let tasks = events::read_tasks(&pyvmomi("read_next_tasks.xml")).unwrap();
    // Each task's start: its startTime, else (never started) its queueTime.
    let task = |task: &str, description_id: &str, state, user: Option<&str>| TaskInfo {
        task: task.into(),
        description_id: description_id.into(),
        state,
        start_seconds: Some(match task {
            "task-3996443" => 1_413_817_749.073,
            "task-1178117" => 1_357_654_321.556,
            "task-746590" => 1_348_747_383.412,
            _ => 1_330_340_210.656,
        }),
        complete_seconds: None,
        result_snapshot: None,
        user: user.map(str::to_owned),
    };
    let lease = "host.DiskManager.Lease.MapDiskRegion";
    assert_eq!(
        tasks,
        [
            task(
                "task-3996443",
                "com.vmware.vdp2.integritycheck",
                TaskState::Running,
                Some(r"vmware\\sa-vdp3")
            ),
            task(
                "task-1178117",
                "com.vmware.vcIntegrity.CheckNotificationTask",
                TaskState::Queued,
                None
            ),
            task(
                "task-746590",
                lease,
                TaskState::Queued,
                Some(r"VMWARE\\sa-veeam1")
            ),
            task(
                "task-56327",
                lease,
                TaskState::Queued,
                Some(r"VMWARE\\sa-veeam1")
            ),
        ]
    );
}

const WRONG_PASSWORD: &str = "Cannot complete login due to an incorrect user name or password.";

#[test]
fn the_recorded_wrong_password_fault_is_invalid_login() {
    let err = xml::read_returnval(&pyvmomi("login_invalid_login.xml")).unwrap_err();
    let call = CallError::from(err);
    assert!(call.is_invalid_login(), "{call}");
    assert_eq!(
        call.to_string(),
        format!("fault InvalidLogin: {WRONG_PASSWORD}")
    );
}

/// ESXi's answer to a method it does not know, recorded by govmomi.
const UNKNOWN_METHOD: &str = "Unable to resolve WSDL method name VimEsxCLIvmnetworklist for namespace name urn:vim25\n\nwhile parsing SOAP body\nat line 2, column 60\n\nwhile parsing SOAP envelope\nat line 2, column 0\n\nwhile parsing HTTP request before method was determined\nat line 1, column 0";

#[test]
fn a_recorded_fault_the_exporter_does_not_know_keeps_its_type_and_message() {
    let err = xml::read_returnval(&govmomi("method_name_fault.xml")).unwrap_err();
    let call = CallError::from(err);
    let CallError::Fault(fault) = &call else {
        panic!("not a fault: {call:?}");
    };
    assert_eq!(
        fault,
        &Fault {
            kind: "InvalidRequest".into(),
            message: UNKNOWN_METHOD.into(),
        }
    );
    assert!(!call.is_invalid_login() && !call.is_not_authenticated());
    assert_eq!(call.kind(), "fault");

    // The same inside a LocalizedMethodFault, typed in another API's namespace (PBM's).
    let answer = body(&pyvmomi("pbm_check_compatibility.xml"));
    let kinds: Vec<String> = answer
        .children_named("returnval")
        .map(|r| xml::method_fault_kind(node_at(r, &["error", "fault"])))
        .collect();
    assert_eq!(kinds, vec!["PbmPropertyMismatchFault"; 7]);
}

#[test]
fn a_recorded_not_authenticated_in_a_missing_set_marks_the_session_lost() {
    let objects = contents(&govmomi("not_authenticated_fault.xml"));
    assert_eq!(objects.len(), 1);
    // Both missing paths carry NotAuthenticated; either names the loss.
    let lost = objects[0].session_lost.as_deref();
    assert!(matches!(lost, Some("message" | "sessionList")), "{lost:?}");
    let mut builder = InventoryBuilder::default();
    builder.add_object(objects[0].clone());
    let lost = builder.session_lost.unwrap_or_default();
    assert!(lost.starts_with("SessionManager:SessionManager "), "{lost}");
}

/// A vCenter answering as the recordings of a wrong password: the ServiceContent of that
/// vCenter 6.0, then the InvalidLogin fault with HTTP 500.
fn refusing_vcenter(method: &str, _: usize) -> Answer {
    match method {
        "RetrieveServiceContent" => (200, false, text(pyvmomi("service_content_vcenter_6.0.xml"))),
        "Login" => (500, false, text(pyvmomi("login_invalid_login.xml"))),
        other => panic!("unexpected call {other}"),
    }
}

#[tokio::test]
async fn a_recorded_wrong_password_through_the_client_is_invalid_login_then_the_login_pause() {
    let fake = start(refusing_vcenter).await;
    let client = client(&fake, "bad_password");
    let err = client.session().await.unwrap_err();
    assert!(err.failure.is_invalid_login(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("vCenter vc01: Login: fault InvalidLogin: {WRONG_PASSWORD}")
    );
    // Asked again at once, the client does not try: no retry storm, no account lockout.
    for _ in 0..3 {
        let again = client.session().await.unwrap_err();
        assert!(
            matches!(again.failure, CallError::LoginSuspended(_)),
            "{again}"
        );
    }
    assert_eq!(fake.count("Login"), 1);
    let counts = client.login_counts();
    assert_eq!(counts.invalid_login.load(Ordering::Relaxed), 1);
    assert_eq!(counts.error.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_mirror_meets_a_recorded_wrong_password_with_the_login_pause() {
    let fake = start(refusing_vcenter).await;
    let mirror = Mirror::start(client(&fake, "bad_password"));
    // The mirror retries after its backoff (0.5 s, then 1 s …); the retry meets the pause.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let paused = || {
        let error = mirror.feed().latest().status.error.clone();
        error.is_some_and(|e| e.contains("not logging in again"))
    };
    while !paused() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            mirror.feed().latest().status.error
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resyncs = mirror.counters().resyncs();
    assert!(
        matches!(resyncs[..], [("login", n)] if n >= 2),
        "{resyncs:?}"
    );
    assert_eq!(fake.count("Login"), 1);
}

#[tokio::test]
async fn a_recorded_unknown_fault_through_the_client_keeps_its_type_and_is_no_login_refusal() {
    let fake = start(|method, _| match method {
        "RetrieveServiceContent" => (500, false, text(govmomi("method_name_fault.xml"))),
        other => panic!("unexpected call {other}"),
    })
    .await;
    let client = client(&fake, "my_password");
    for attempt in 1..=2 {
        let err = client.session().await.unwrap_err();
        assert_eq!(err.call, "RetrieveServiceContent");
        assert_eq!(
            err.to_string(),
            format!("vCenter vc01: RetrieveServiceContent: fault InvalidRequest: {UNKNOWN_METHOD}")
        );
        // Not a refused login: counted as an error, and the next attempt asks vCenter again.
        assert_eq!(fake.count("RetrieveServiceContent"), attempt);
    }
    let counts = client.login_counts();
    assert_eq!(counts.error.load(Ordering::Relaxed), 2);
    assert_eq!(counts.invalid_login.load(Ordering::Relaxed), 0);
    assert_eq!(fake.count("Login"), 0);
}

/// The same answer written the ways a SOAP server may write it.
fn written_otherwise(answer: &str) -> Vec<(&'static str, String)> {
    const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    let declared_xsi = format!("\n xmlns:xsi=\"{XSI}\"");
    assert!(answer.contains(&declared_xsi) && answer.contains(" xsi:type="));
    let renamed = answer
        .replace("soapenv:", "S:")
        .replace("xmlns:soapenv=", "xmlns:S=")
        .replace("xsi:type=", "i:type=")
        .replace("xmlns:xsi=", "xmlns:i=")
        .replace("xsd:", "t:")
        .replace("xmlns:xsd=", "xmlns:t=");
    // govmomi's simulator's way: XMLSchema-instance bound on every element that uses it.
    let on_each = answer.replace(&declared_xsi, "").replace(
        " xsi:type=",
        &format!(" xmlns:XMLSchema-instance=\"{XSI}\" XMLSchema-instance:type="),
    );
    // SOAP's namespace as the default one, vim25's bound on the response element as before.
    let default_soap = answer
        .replace("<soapenv:", "<")
        .replace("</soapenv:", "</")
        .replace("xmlns:soapenv=", "xmlns=");
    vec![
        ("prefixes renamed", renamed),
        ("XMLSchema-instance declared on each element", on_each),
        ("SOAP envelope in the default namespace", default_soap),
    ]
}

/// vim25's elements under a prefix declared on the Envelope instead of the default namespace
/// of the response element.
fn vim25_prefixed(answer: &str) -> String {
    let (head, rest) = answer.split_once("<soapenv:Body>").unwrap();
    let (content, tail) = rest.split_once("</soapenv:Body>").unwrap();
    let tag = regex::Regex::new(r"<(/?)([A-Za-z_][A-Za-z0-9_.-]*)([\s/>])").unwrap();
    let content = tag
        .replace_all(
            &content.replace(r#" xmlns="urn:vim25""#, ""),
            "<${1}vim25:${2}${3}",
        )
        .into_owned();
    let head = head.replacen(
        "<soapenv:Envelope",
        r#"<soapenv:Envelope xmlns:vim25="urn:vim25""#,
        1,
    );
    format!("{head}<soapenv:Body>{content}</soapenv:Body>{tail}")
}

#[test]
fn prefixes_and_where_namespaces_are_declared_do_not_change_what_is_read() {
    let config = text(pyvmomi("vm_config.xml"));
    // What the exporter reads of it; the devices are told apart by their xsi:type alone.
    let read = |answer: &str| {
        let answer = answer.as_bytes();
        (
            decoded(answer, &below(VAL, &["hardware"]), Property::Devices),
            decoded(answer, &below(VAL, &["guestId"]), Property::GuestId),
            decoded(answer, &below(VAL, &["template"]), Property::Template),
        )
    };
    let as_recorded = read(&config);
    let Some(Value::Devices(devices)) = &as_recorded.0 else {
        panic!("{as_recorded:?}");
    };
    assert_eq!(devices.disks.len(), 13);
    assert_eq!(
        as_recorded.1,
        Some(Value::Text("other3xLinux64Guest".into()))
    );
    let mut variants = written_otherwise(&config);
    variants.push(("vim25 under a prefix", vim25_prefixed(&config)));
    for (how, variant) in &variants {
        assert_ne!(variant, &config, "{how}: unchanged");
        assert_eq!(read(variant), as_recorded, "{how}");
    }

    let refused = text(pyvmomi("login_invalid_login.xml"));
    let fault = |answer: &str| xml::read_returnval(answer.as_bytes()).unwrap_err();
    let expected = fault(&refused);
    assert!(CallError::from(expected.clone()).is_invalid_login());
    for (how, variant) in written_otherwise(&refused) {
        assert_ne!(variant, refused, "{how}: unchanged");
        assert_eq!(fault(&variant), expected, "{how}");
    }
}

#[test]
fn a_prefix_bound_to_another_namespace_makes_no_xsi_type_and_no_soap_fault() {
    // The same devices with `xsi` bound elsewhere: no VirtualDisk among them any more. It is
    // the namespace that makes the type, not the prefix.
    let config = text(pyvmomi("vm_config.xml")).replace(
        r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#,
        r#"xmlns:xsi="urn:not-xml-schema-instance""#,
    );
    assert_eq!(
        decoded(
            config.as_bytes(),
            &below(VAL, &["hardware"]),
            Property::Devices
        ),
        Some(Value::Devices(Devices::default()))
    );
    // A Fault outside SOAP's namespace is no SOAP fault.
    let refused = text(pyvmomi("login_invalid_login.xml")).replace(
        r#"xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
        r#"xmlns:soapenv="urn:not-soap""#,
    );
    let err = xml::read_returnval(refused.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed response: expected a SOAP Envelope, found <Envelope>"
    );
}

#[test]
fn recorded_iso_8601_times_decode_to_unix_seconds() {
    let time_at = |file: &str, path: &[&str]| node_at(&body(&pyvmomi(file)), path).text.clone();
    let alarm_time = |key: &str| {
        let answer = body(&pyvmomi("host_declared_alarm_state.xml"));
        node_at(&answer, VAL)
            .children
            .iter()
            .find(|alarm| alarm.text_of("key") == Some(key))
            .and_then(|alarm| alarm.text_of("time"))
            .unwrap()
            .to_string()
    };
    let sensors = below(
        VAL,
        &[
            "healthSystemRuntime",
            "systemHealthInfo",
            "numericSensorInfo",
            "timeStamp",
        ],
    );
    // (as recorded, the seconds: whole milliseconds, as the exporter keeps them)
    let times = [
        // No fraction.
        (
            time_at("host_runtime.xml", &sensors),
            "2018-09-19T17:59:23Z",
            1_537_379_963.0,
        ),
        (
            time_at("vm_config.xml", &below(VAL, &["modified"])),
            "1970-01-01T00:00:00Z",
            0.0,
        ),
        // One to six digits of fraction.
        (
            alarm_time("alarm-20.host-14"),
            "2018-09-21T16:47:35.7Z",
            1_537_548_455.7,
        ),
        (
            time_at("read_next_tasks.xml", &["returnval", "startTime"]),
            "2014-10-20T15:09:09.073Z",
            1_413_817_749.073,
        ),
        (
            time_at("vm_layout_ex.xml", &below(VAL, &["timestamp"])),
            "2018-12-13T22:54:09.69966Z",
            1_544_741_649.699,
        ),
        (
            time_at("vm_runtime.xml", &below(VAL, &["bootTime"])),
            "2018-12-13T22:50:15.242879Z",
            1_544_741_415.242,
        ),
        // Cut, not rounded, to the millisecond.
        (
            time_at("read_next_tasks.xml", &["returnval", "queueTime"]),
            "2014-10-20T15:09:08.789999Z",
            1_413_817_748.789,
        ),
        (
            alarm_time("alarm-121.host-14"),
            "2018-09-19T21:33:10.772999Z",
            1_537_392_790.772,
        ),
        // A zone offset other than Z: the time pyvmomi sent to UpdateDateTime.
        (
            time_at("update_date_time_request.xml", &["dateTime"]),
            "2014-08-19T04:29:36.070918-04:00",
            1_408_436_976.070,
        ),
    ];
    for (recorded, expected_text, seconds) in times {
        assert_eq!(recorded, expected_text);
        assert_eq!(parse_datetime(&recorded), Some(seconds), "{recorded}");
    }
}
