//! The decoding of the backup checks' structured values: custom attribute definitions
//! (`CustomFieldsManager.field`) and values (`customValue`), `disk.EnableUUID`, and a
//! datastore's VMFS extents. Their paths, and those of the checks' plain values (the notes,
//! changed block tracking, the guest family, the datastores a VM's files are on, a datastore's
//! space, type and accessibility), are rows of the tables in [`super`], which make
//! both the requests and the parse.
//!
//! `disk.EnableUUID` is one key of `config.extraConfig`, whose whole value is large (at 40,000
//! VMs hundreds of megabytes). Where vCenter accepts the keyed path
//! `config.extraConfig["disk.EnableUUID"]` it is read for every VM that way; elsewhere the
//! mirror reads `config.extraConfig` for Windows guests only, the only ones the value matters
//! for (see [`crate::backup::consistency`]).

use std::collections::BTreeMap;
use std::io::BufRead;

use super::{Bad, parse_num};
use crate::vsphere::error::ParseError;
use crate::vsphere::model::{CustomField, Vm};
use crate::vsphere::xml::Cursor;

/// The one key of `config.extraConfig` the checks need, as a keyed property path.
pub const ENABLE_UUID_PATH: &str = r#"config.extraConfig["disk.EnableUUID"]"#;

/// The whole `config.extraConfig`, read for Windows guests where the keyed path is refused.
pub const EXTRA_CONFIG_PATH: &str = "config.extraConfig";

/// The extraConfig key itself (ESXi reads keys case-insensitively).
const ENABLE_UUID_KEY: &str = "disk.EnableUUID";

/// True for a Windows guest, the VMs whose `config.extraConfig` the fallback reads.
pub fn is_windows_vm(vm: &Vm) -> bool {
    crate::backup::consistency::is_windows(vm.backup.guest_family.as_deref(), &vm.guest_id)
}

/// `ArrayOfCustomFieldValue` (string values; other kinds have no text and are kept empty).
/// A value without a numeric key makes the whole property malformed.
pub fn read_custom_values<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<Vec<(i32, String)>, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut values = Vec::new();
    while cur.next_child()? {
        cur.enter();
        let mut key = Err("a custom value without its key".to_string());
        let mut value = String::new();
        while cur.next_child()? {
            match cur.name() {
                b"key" => key = parse_num("custom value key", cur.text()?),
                b"value" => value = cur.text()?.to_string(),
                _ => {}
            }
        }
        if let Some(key) = bad.keep(key) {
            values.push((key, value));
        }
    }
    Ok(bad.or(values))
}

/// `CustomFieldsManager.field`: the definitions by key. A definition without a numeric key
/// makes the whole property malformed.
pub fn read_custom_fields<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Result<BTreeMap<i32, CustomField>, String>, ParseError> {
    cur.enter();
    let mut bad = Bad::default();
    let mut fields = BTreeMap::new();
    while cur.next_child()? {
        cur.enter();
        let mut key = Err("a custom field without its key".to_string());
        let mut field = CustomField::default();
        while cur.next_child()? {
            match cur.name() {
                b"key" => key = parse_num("custom field key", cur.text()?),
                b"name" => field.name = cur.text()?.to_string(),
                b"managedObjectType" => field.managed_object_type = cur.text()?.trim().to_string(),
                _ => {}
            }
        }
        if let Some(key) = bad.keep(key) {
            fields.insert(key, field);
        }
    }
    Ok(bad.or(fields))
}

/// The `OptionValue` of the keyed path: its value as a boolean the way ESXi reads it, `None`
/// without a value.
pub fn read_enable_uuid<R: BufRead>(cur: &mut Cursor<R>) -> Result<Option<bool>, ParseError> {
    cur.enter();
    let mut value = None;
    while cur.next_child()? {
        if cur.is("value") {
            value = Some(crate::backup::consistency::option_true(cur.text()?));
        }
    }
    Ok(value)
}

/// `disk.EnableUUID` out of a whole `ArrayOfOptionValue` (the first option of that key, read
/// case-insensitively); every other option is skipped.
pub fn read_extra_config_enable_uuid<R: BufRead>(
    cur: &mut Cursor<R>,
) -> Result<Option<bool>, ParseError> {
    cur.enter();
    let mut found: Option<Option<bool>> = None;
    while cur.next_child()? {
        if found.is_some() {
            continue; // skipped by the next next_child
        }
        cur.enter();
        let mut is_key = false;
        let mut value = None;
        while cur.next_child()? {
            match cur.name() {
                b"key" => is_key = cur.text()?.trim().eq_ignore_ascii_case(ENABLE_UUID_KEY),
                b"value" => value = Some(crate::backup::consistency::option_true(cur.text()?)),
                _ => {}
            }
        }
        if is_key {
            found = Some(value);
        }
    }
    Ok(found.flatten())
}

/// The disk names of the extents of a datastore's `info.vmfs` (none for NFS, vSAN …).
pub fn read_datastore_extents<R: BufRead>(cur: &mut Cursor<R>) -> Result<Vec<String>, ParseError> {
    cur.enter();
    let mut disks = Vec::new();
    while cur.next_child()? {
        if !cur.is("vmfs") {
            continue;
        }
        cur.enter();
        while cur.next_child()? {
            if !cur.is("extent") {
                continue;
            }
            cur.enter();
            while cur.next_child()? {
                if cur.is("diskName") {
                    disks.push(cur.text()?.trim().to_string());
                }
            }
        }
    }
    Ok(disks)
}

#[cfg(test)]
mod tests {
    use crate::vsphere::model::{Inventory, MoRef};
    use crate::vsphere::properties::{Change, ChangeOp, InventoryBuilder, Property, read_objects};
    use crate::vsphere::xml::Limits;

    fn apply(xml: &str) -> (Inventory, usize) {
        let mut b = InventoryBuilder::default();
        read_objects(xml.as_bytes(), &Limits::default(), |o| {
            b.add_object(o);
            Ok(())
        })
        .unwrap();
        let malformed = b.malformed;
        (b.finish(), malformed)
    }

    fn envelope(objects: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{objects}</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    #[test]
    fn vm_backup_properties_and_field_definitions_are_read() {
        let xml = envelope(
            r#"<objects><obj type="VirtualMachine">vm-1</obj>
<propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>Sun Nov 22 01:00:12 2026</value></CustomFieldValue><CustomFieldValue xsi:type="CustomFieldStringValue"><key>102</key><value>alice &amp; bob</value></CustomFieldValue></val></propSet>
<propSet><name>config.annotation</name><val xsi:type="xsd:string">line one
Veeam Backup: Job name: [x], Time: [11/24/2026 11:15:02 PM]</val></propSet>
<propSet><name>config.changeTrackingEnabled</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>guest.guestFamily</name><val xsi:type="xsd:string">windowsGuest</val></propSet>
<propSet><name>datastore</name><val xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Datastore">datastore-11</ManagedObjectReference><ManagedObjectReference type="Datastore">datastore-12</ManagedObjectReference></val></propSet>
<propSet><name>config.extraConfig</name><val xsi:type="ArrayOfOptionValue"><OptionValue xsi:type="OptionValue"><key>govcsim</key><value xsi:type="xsd:string">TRUE</value></OptionValue><OptionValue xsi:type="OptionValue"><key>disk.enableUUID</key><value xsi:type="xsd:string">TRUE</value></OptionValue></val></propSet>
</objects>
<objects><obj type="CustomFieldsManager">CustomFieldsManager</obj><propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef"><CustomFieldDef><key>101</key><name>NB_LAST_BACKUP</name><type>string</type><managedObjectType>VirtualMachine</managedObjectType></CustomFieldDef><CustomFieldDef><key>102</key><name>owner</name><type>string</type></CustomFieldDef></val></propSet></objects>
<objects><obj type="VirtualMachine">vm-2</obj><propSet><name>config.extraConfig["disk.EnableUUID"]</name><val xsi:type="OptionValue"><key>disk.EnableUUID</key><value xsi:type="xsd:string">FALSE</value></val></propSet></objects>"#,
        );
        let (inventory, malformed) = apply(&xml);
        assert_eq!(malformed, 0);
        let b = &inventory.vms["vm-1"].backup;
        assert_eq!(
            b.custom_values,
            vec![
                (101, "Sun Nov 22 01:00:12 2026".to_string()),
                (102, "alice & bob".to_string())
            ]
        );
        assert!(b.annotation.ends_with("Time: [11/24/2026 11:15:02 PM]"));
        assert!(b.annotation.starts_with("line one\n"));
        assert!(b.cbt_enabled);
        assert_eq!(b.guest_family.as_deref(), Some("windowsGuest"));
        assert_eq!(b.datastores, ["datastore-11", "datastore-12"]);
        assert_eq!(b.disk_enable_uuid, Some(true));
        assert_eq!(inventory.vms["vm-2"].backup.disk_enable_uuid, Some(false));
        assert_eq!(inventory.custom_fields[&101].name, "NB_LAST_BACKUP");
        assert_eq!(
            inventory.custom_fields[&101].managed_object_type,
            "VirtualMachine"
        );
        assert_eq!(inventory.custom_fields[&102].managed_object_type, "");
    }

    #[test]
    fn a_custom_value_without_a_numeric_key_leaves_the_values_as_they_were() {
        let xml = envelope(
            r#"<objects><obj type="VirtualMachine">vm-1</obj><propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue><key>1</key><value>a</value></CustomFieldValue><CustomFieldValue><key>x</key><value>b</value></CustomFieldValue></val></propSet><propSet><name>config.changeTrackingEnabled</name><val xsi:type="xsd:boolean">true</val></propSet></objects>
<objects><obj type="CustomFieldsManager">CustomFieldsManager</obj><propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef"><CustomFieldDef><name>no key</name></CustomFieldDef></val></propSet></objects>"#,
        );
        let (inventory, malformed) = apply(&xml);
        assert_eq!(
            malformed, 2,
            "the value with key x and the definition without a key"
        );
        let b = &inventory.vms["vm-1"].backup;
        assert!(b.custom_values.is_empty());
        assert!(b.cbt_enabled, "the VM's other properties are still read");
        assert!(inventory.custom_fields.is_empty());
    }

    #[test]
    fn only_the_first_enable_uuid_option_of_extra_config_counts_and_an_unset_one_is_none() {
        let extra = |options: &str| {
            envelope(&format!(
                r#"<objects><obj type="VirtualMachine">vm-1</obj><propSet><name>config.extraConfig</name><val xsi:type="ArrayOfOptionValue">{options}</val></propSet></objects>"#
            ))
        };
        let option = |key: &str, value: &str| {
            format!(
                r#"<OptionValue><key>{key}</key><value xsi:type="xsd:string">{value}</value></OptionValue>"#
            )
        };
        let uuid = |xml: &str| apply(xml).0.vms["vm-1"].backup.disk_enable_uuid;
        let first = [
            option("DISK.ENABLEUUID", "1"),
            option("disk.EnableUUID", "FALSE"),
        ];
        assert_eq!(uuid(&extra(&first.concat())), Some(true));
        assert_eq!(uuid(&extra(&option("disk.EnableUUID", "no"))), Some(false));
        assert_eq!(uuid(&extra(&option("disk.enableUUIDx", "TRUE"))), None);
        assert_eq!(
            uuid(&extra(
                "<OptionValue><key>disk.EnableUUID</key></OptionValue>"
            )),
            None
        );
        assert_eq!(uuid(&extra("")), None);
    }

    #[test]
    fn datastore_summary_and_vmfs_extents_are_read() {
        let xml = envelope(
            r#"<objects><obj type="Datastore">datastore-11</obj>
<propSet><name>name</name><val xsi:type="xsd:string">LocalDS_0</val></propSet>
<propSet><name>summary.capacity</name><val xsi:type="xsd:long">4398046511104</val></propSet>
<propSet><name>summary.freeSpace</name><val xsi:type="xsd:long">3298534883328</val></propSet>
<propSet><name>summary.uncommitted</name><val xsi:type="xsd:long">549755813888</val></propSet>
<propSet><name>summary.type</name><val xsi:type="xsd:string">VMFS</val></propSet>
<propSet><name>summary.accessible</name><val xsi:type="xsd:boolean">true</val></propSet>
<propSet><name>info</name><val xsi:type="VmfsDatastoreInfo"><name>LocalDS_0</name><url>ds:///vmfs/volumes/x/</url><freeSpace>1</freeSpace><maxFileSize>2</maxFileSize><vmfs><type>VMFS</type><name>LocalDS_0</name><capacity>4398046511104</capacity><blockSizeMb>1</blockSizeMb><maxBlocks>0</maxBlocks><majorVersion>6</majorVersion><version>6.82</version><uuid>u</uuid><extent><diskName>naa.600a0001</diskName><partition>1</partition></extent><extent><diskName>naa.600a0002</diskName><partition>1</partition></extent></vmfs></val></propSet>
</objects>
<objects><obj type="Datastore">datastore-12</obj><propSet><name>summary.capacity</name><val xsi:type="xsd:long">lots</val></propSet><propSet><name>info</name><val xsi:type="NasDatastoreInfo"><name>nfs</name></val></propSet></objects>"#,
        );
        let (inventory, malformed) = apply(&xml);
        assert_eq!(malformed, 1, "the capacity that is not a number");
        let ds = &inventory.datastores["datastore-11"];
        assert_eq!(ds.name, "LocalDS_0");
        assert_eq!(ds.capacity_bytes, Some(4_398_046_511_104));
        assert_eq!(ds.free_bytes, Some(3_298_534_883_328));
        assert_eq!(ds.uncommitted_bytes, Some(549_755_813_888));
        assert_eq!(ds.fs_type, "VMFS");
        assert_eq!(ds.accessible, Some(true));
        assert_eq!(ds.extent_disks, ["naa.600a0001", "naa.600a0002"]);
        let nfs = &inventory.datastores["datastore-12"];
        assert_eq!(nfs.capacity_bytes, None);
        assert!(nfs.extent_disks.is_empty());
        let mut inventory = inventory;
        let obj = MoRef::new("Datastore", "datastore-11");
        let unset = Change {
            property: Ok(Property::DatastoreInfo),
            op: ChangeOp::Assign,
            value: None,
        };
        inventory.apply_changes(&obj, vec![unset]).unwrap();
        assert!(inventory.datastores["datastore-11"].extent_disks.is_empty());
    }
}
