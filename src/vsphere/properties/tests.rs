//! The property tables and decoders together: answers read and applied to an inventory, as the
//! mirror does, value by value; malformed values; the tables making both the requests and the
//! parse; and property tests that any answer is read back as sent or refused, never a panic.

use proptest::prelude::*;

use super::*;
use crate::vsphere::error::ParseError;
use crate::vsphere::model::{
    Devices, Disk, DiskBacking, DiskLayout, DiskMode, LayoutEx, LayoutFile, RdmMode, SnapshotInfo,
    SnapshotLayout, SnapshotTree,
};
use crate::vsphere::xml::{self, Cursor, Limits};

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
    assert_eq!(
        vm.disk_capacities_bytes().collect::<Vec<_>>(),
        vec![1_048_576, 2048]
    );
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
    let vm = &b.finish().vms["vm-1"];
    assert_eq!(vm.disk_capacities_bytes().collect::<Vec<_>>(), vec![4096]);
    assert_eq!(vm.devices.disks[0].parent.as_deref(), Some(""));
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
    // A disk whose capacity or key does not read is kept with that field unknown: one odd
    // value never costs the other disks (and a malformed value would make the mirror start
    // over).
    let disk = |key, capacity_bytes| Disk {
        key,
        disk_mode: DiskMode::Unknown,
        capacity_bytes,
        ..Default::default()
    };
    assert_eq!(
        value(
            Property::Devices,
            r#"<VirtualDevice xsi:type="VirtualDisk"><key>1</key></VirtualDevice><VirtualDevice xsi:type="VirtualDisk"><key>x</key><capacityInKB>18446744073709551615</capacityInKB></VirtualDevice><VirtualDevice xsi:type="VirtualDisk"><key>3</key><capacityInBytes>-1</capacityInBytes><capacityInKB>2</capacityInKB></VirtualDevice>"#
        ),
        Ok(Value::Devices(Devices {
            disks: vec![
                disk(Some(1), None),
                disk(None, None),
                disk(Some(3), Some(2048))
            ],
            ..Default::default()
        }))
    );
}

#[test]
fn runtime_states_and_questions_are_set_and_unset_by_updates() {
    let update = |changes: &str| {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>1</version><filterSet><filter type="PropertyFilter">f</filter><objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj>{changes}</objectSet></filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    };
    let apply = |inv: &mut Inventory, xml: &str| {
        read_updates(xml.as_bytes(), &Limits::default(), |_, u| {
            inv.apply_changes(&u.obj, u.changes)
                .map_err(ParseError::Malformed)
        })
        .unwrap();
    };
    let mut inv = Inventory::default();
    apply(
        &mut inv,
        &update(
            r#"<changeSet><name>runtime.connectionState</name><op>assign</op><val xsi:type="VirtualMachineConnectionState">orphaned</val></changeSet><changeSet><name>runtime.faultToleranceState</name><op>assign</op><val xsi:type="VirtualMachineFaultToleranceState">needSecondary</val></changeSet><changeSet><name>runtime.question</name><op>assign</op><val xsi:type="VirtualMachineQuestionInfo"><id>_vmx3</id><text>msg.uuid.altered:This virtual machine might have been moved or copied.</text><choice><choiceInfo xsi:type="ElementDescription"><label>Cancel</label><summary>Cancel</summary><key>0</key></choiceInfo><defaultIndex>2</defaultIndex></choice></val></changeSet>"#,
        ),
    );
    let vm = &inv.vms["vm-1"];
    assert_eq!(vm.connection_state, "orphaned");
    assert_eq!(vm.fault_tolerance_state.as_deref(), Some("needSecondary"));
    let question = vm.question.as_ref().unwrap();
    assert_eq!(question.id, "_vmx3");
    assert_eq!(
        question.text,
        "msg.uuid.altered:This virtual machine might have been moved or copied."
    );
    // Answered: vCenter unsets the question (an assign without a value).
    apply(
        &mut inv,
        &update(
            r#"<changeSet><name>runtime.question</name><op>assign</op></changeSet><changeSet><name>runtime.connectionState</name><op>assign</op><val xsi:type="VirtualMachineConnectionState">connected</val></changeSet><changeSet><name>runtime.faultToleranceState</name><op>assign</op></changeSet>"#,
        ),
    );
    let vm = &inv.vms["vm-1"];
    assert_eq!(vm.question, None);
    assert_eq!(vm.connection_state, "connected");
    assert_eq!(vm.fault_tolerance_state, None);
}

#[test]
fn controllers_share_their_bus_by_any_sharing_but_no_sharing_and_passthroughs_count() {
    let (b, _) = build(&format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">{}</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#,
        [
            r#"<VirtualDevice xsi:type="VirtualLsiLogicController"><key>1000</key><busNumber>0</busNumber><sharedBus>virtualSharing</sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualLsiLogicSASController"><key>1001</key><sharedBus>physicalSharing</sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1002</key><sharedBus>noSharing</sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualBusLogicController"><key>1003</key><sharedBus> physicalSharing </sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualNVMEController"><key>31000</key><sharedBus>physicalSharing</sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualAHCIController"><key>15000</key><busNumber>0</busNumber></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualIDEController"><key>200</key><sharedBus></sharedBus></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13000</key><backing xsi:type="VirtualPCIPassthroughDeviceBackingInfo"><id>0000:3b:00.0</id></backing></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13001</key><backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_a100-8c</vgpu></backing></VirtualDevice>"#,
            r#"<VirtualDevice xsi:type="VirtualSriovEthernetCard"><key>4000</key><sharedBus>physicalSharing</sharedBus></VirtualDevice>"#,
        ]
        .concat()
    ));
    assert_eq!(b.malformed, 0);
    let devices = &b.finish().vms["vm-1"].devices;
    // virtualSharing, physicalSharing twice (spaces trimmed) and NVMe's physicalSharing; not
    // noSharing, an empty value, a controller without the field, nor a NIC's odd field.
    assert_eq!(devices.scsi_shared_bus, 4);
    assert_eq!(devices.pci_passthrough, 2);
    assert!(devices.disks.is_empty());
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
    // Devices for every VM (the disks collector on), or for the VMs with snapshots only: each
    // path is asked for once either way.
    assert_eq!(vm_paths(Scope::VmsWithSnapshots), ["layoutEx"]);
    assert!(vm_paths(Scope::EveryVm).contains(&"config.hardware.device"));
    let narrow = DeviceScope::VmsWithSnapshots;
    assert_eq!(
        vm_paths_for(Scope::VmsWithSnapshots, narrow),
        ["layoutEx", "config.hardware.device"]
    );
    assert_eq!(
        snapshot_vm_specs_for(narrow)[0].paths,
        ["layoutEx", "config.hardware.device"]
    );
    let asked_narrow: Vec<&str> = property_specs_for(true, narrow)
        .iter()
        .chain(snapshot_vm_specs_for(narrow).iter())
        .chain(windows_vm_specs().iter())
        .filter(|s| s.kind == "VirtualMachine")
        .flat_map(|s| s.paths.clone())
        .collect();
    assert_eq!(asked_narrow.len(), VM_PROPERTIES.len());
    assert!(
        !property_specs_for(false, narrow)[0]
            .paths
            .contains(&"config.hardware.device")
    );
    for path in [
        "runtime.connectionState",
        "runtime.faultToleranceState",
        "runtime.question",
    ] {
        assert!(every_vm(false).contains(&path), "{path}");
    }
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
    let devices = devices_xml(&vm.devices, "XMLSchema-instance");
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
        val("ArrayOfVirtualDevice", &devices),
    )
}

/// A device list as vCenter sends it, with devices the exporter skips between those it reads;
/// `xsi` is the prefix of the XMLSchema-instance namespace.
fn devices_xml(devices: &Devices, xsi: &str) -> String {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut out = String::new();
    for _ in 0..devices.scsi_shared_bus {
        out.push_str(&format!(r#"<VirtualDevice {xsi}:type="ParaVirtualSCSIController"><key>1000</key><deviceInfo {xsi}:type="Description"><label>SCSI controller 0</label></deviceInfo><busNumber>0</busNumber><device>2000</device><hotAddRemove>true</hotAddRemove><sharedBus>physicalSharing</sharedBus><scsiCtlrUnitNumber>7</scsiCtlrUnitNumber></VirtualDevice>"#));
    }
    out.push_str(&format!(r#"<VirtualDevice {xsi}:type="VirtualLsiLogicController"><key>1001</key><sharedBus>noSharing</sharedBus></VirtualDevice>"#));
    for disk in &devices.disks {
        let backing_type = match &disk.backing {
            DiskBacking::Flat => "VirtualDiskFlatVer2BackingInfo",
            DiskBacking::Sparse => "VirtualDiskSparseVer2BackingInfo",
            DiskBacking::SeSparse => "VirtualDiskSeSparseBackingInfo",
            DiskBacking::RawDiskMapping => "VirtualDiskRawDiskMappingVer1BackingInfo",
            DiskBacking::Other(t) => t,
        };
        let mut backing = format!(
            r#"<fileName>{}</fileName><datastore type="Datastore">datastore-1</datastore><diskMode>{}</diskMode>"#,
            esc(&disk.file_name),
            disk.disk_mode.as_str()
        );
        match disk.compatibility_mode {
            Some(RdmMode::Physical) => {
                backing.push_str("<compatibilityMode>physicalMode</compatibilityMode>")
            }
            Some(RdmMode::Virtual) => {
                backing.push_str("<compatibilityMode>virtualMode</compatibilityMode>")
            }
            None => {}
        }
        backing.push_str(r#"<uuid>6000C29d-daa2</uuid>"#);
        backing.push_str(if disk.change_id {
            "<changeId>52 de 7a 3b/12</changeId>"
        } else {
            "<changeId></changeId>"
        });
        if let Some(parent) = &disk.parent {
            backing.push_str(&format!(
                r#"<parent {xsi}:type="{backing_type}"><fileName>{}</fileName><diskMode>persistent</diskMode><parent {xsi}:type="{backing_type}"><fileName>[ds] base/base.vmdk</fileName></parent></parent>"#,
                esc(parent)
            ));
        }
        backing.push_str(if disk.multi_writer {
            "<sharing>sharingMultiWriter</sharing>"
        } else {
            "<sharing>sharingNone</sharing>"
        });
        let key = disk
            .key
            .map(|k| format!("<key>{k}</key>"))
            .unwrap_or_default();
        let capacity = disk
            .capacity_bytes
            .map(|c| {
                format!(
                    "<capacityInKB>{}</capacityInKB><capacityInBytes>{c}</capacityInBytes>",
                    c / 1024
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            r#"<VirtualDevice {xsi}:type="VirtualDisk">{key}<deviceInfo {xsi}:type="Description"><label>Hard disk</label><summary>1 KB</summary></deviceInfo><backing {xsi}:type="{backing_type}">{backing}</backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber>{capacity}<shares><shares>1000</shares><level>normal</level></shares><storageIOAllocation><limit>-1</limit></storageIOAllocation></VirtualDevice><VirtualDevice {xsi}:type="VirtualCdrom"><key>3000</key><capacityInBytes>1</capacityInBytes><backing {xsi}:type="VirtualCdromAtapiBackingInfo"><fileName>[ds] iso/x.iso</fileName></backing></VirtualDevice>"#
        ));
    }
    for _ in 0..devices.pci_passthrough {
        out.push_str(&format!(r#"<VirtualDevice {xsi}:type="VirtualPCIPassthrough"><key>13000</key><backing {xsi}:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_t4-4q</vgpu></backing></VirtualDevice>"#));
    }
    out
}

fn disk() -> impl Strategy<Value = Disk> {
    let backing = prop_oneof![
        Just(DiskBacking::Flat),
        Just(DiskBacking::Sparse),
        Just(DiskBacking::SeSparse),
        Just(DiskBacking::RawDiskMapping),
        Just(DiskBacking::Other("VirtualDiskLocalPMemBackingInfo".into())),
    ];
    let mode = prop_oneof![
        Just(DiskMode::Persistent),
        Just(DiskMode::Nonpersistent),
        Just(DiskMode::Undoable),
        Just(DiskMode::IndependentPersistent),
        Just(DiskMode::IndependentNonpersistent),
        Just(DiskMode::Append),
    ];
    let rdm = prop_oneof![
        Just(None),
        Just(Some(RdmMode::Physical)),
        Just(Some(RdmMode::Virtual))
    ];
    (
        (any::<Option<i32>>(), backing, mode, rdm, text()),
        (
            prop::option::of(1u64..u64::MAX / 2),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(text()),
        ),
    )
        .prop_map(
            |(
                (key, backing, disk_mode, compatibility_mode, file_name),
                (capacity, multi_writer, change_id, parent),
            )| Disk {
                key,
                backing,
                disk_mode,
                compatibility_mode,
                file_name,
                // Whole kilobytes, as vCenter reports capacities.
                capacity_bytes: capacity.map(|c| c / 1024 * 1024 + 1024),
                multi_writer,
                change_id,
                parent,
            },
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
        (any::<i32>(), text(), text(), any::<u64>()).prop_map(|(key, name, file_type, size)| {
            LayoutFile {
                key,
                name,
                file_type,
                size,
            }
        }),
        0..5,
    );
    let snapshots = prop::collection::vec(
        (text(), any::<i32>(), disk_layouts()).prop_map(|(key, data_key, disk)| SnapshotLayout {
            key: format!("snapshot-{key}"),
            data_key,
            disk,
        }),
        0..3,
    );
    (
        text(),
        prop::collection::vec(snapshot_tree(3), 1..3),
        files,
        disk_layouts(),
        snapshots,
        (prop::collection::vec(disk(), 0..4), 0u32..3, 0u32..3),
    )
        .prop_map(
            |(name, roots, file, disk, snapshot, (disks, shared, pci))| Vm {
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
                devices: Devices {
                    disks,
                    scsi_shared_bus: shared,
                    pci_passthrough: pci,
                },
                ..Default::default()
            },
        )
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
