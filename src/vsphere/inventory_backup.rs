//! The properties the backup checks read, apart from the rest of the inventory's decoding:
//! custom attribute definitions (`CustomFieldsManager.field`) and values (`customValue`), the
//! notes, changed block tracking, the guest family, `disk.EnableUUID`, the datastores a VM's
//! files are on, and each datastore's space, type, accessibility and VMFS extents.
//!
//! `disk.EnableUUID` is one key of `config.extraConfig`, whose whole value is large (at 40,000
//! VMs hundreds of megabytes). Where vCenter accepts the keyed path
//! `config.extraConfig["disk.EnableUUID"]` it is read for every VM that way; elsewhere the
//! mirror reads `config.extraConfig` for Windows guests only, the only ones the value matters
//! for (see [`crate::backup::consistency`]).

use std::collections::BTreeMap;

use super::model::{CustomField, Datastore, Vm, VmBackup};
use super::soap::PropertySpec;
use super::xml::Node;

/// The VirtualMachine properties of the backup checks, read for every VM.
pub const BACKUP_VM_PATHS: &[&str] = &[
    "customValue",
    "config.annotation",
    "config.changeTrackingEnabled",
    "guest.guestFamily",
    "datastore",
];

/// The one key of `config.extraConfig` the checks need, as a keyed property path.
pub const ENABLE_UUID_PATH: &str = r#"config.extraConfig["disk.EnableUUID"]"#;

/// The whole `config.extraConfig`, read for Windows guests where the keyed path is refused.
pub const EXTRA_CONFIG_PATH: &str = "config.extraConfig";

/// The extraConfig key itself (ESXi reads keys case-insensitively).
const ENABLE_UUID_KEY: &str = "disk.EnableUUID";

/// The Datastore properties the backup checks read (besides `name`).
pub const BACKUP_DATASTORE_PATHS: &[&str] = &[
    "summary.capacity",
    "summary.freeSpace",
    "summary.uncommitted",
    "summary.type",
    "summary.accessible",
    "info",
];

/// The CustomFieldsManager's property read.
pub fn custom_fields_spec() -> PropertySpec {
    PropertySpec {
        kind: "CustomFieldsManager",
        paths: vec!["field"],
    }
}

/// The property set of the Windows guests where `config.extraConfig` is read whole.
pub fn windows_vm_specs() -> Vec<PropertySpec> {
    vec![PropertySpec {
        kind: "VirtualMachine",
        paths: vec![EXTRA_CONFIG_PATH],
    }]
}

/// True for a Windows guest, the VMs whose `config.extraConfig` the fallback reads.
pub fn is_windows_vm(vm: &Vm) -> bool {
    crate::backup::consistency::is_windows(vm.backup.guest_family.as_deref(), &vm.guest_id)
}

/// Sets a backup property of a VM; `None` when `path` is not one, `Some(None)` when the value
/// did not parse.
pub fn set_vm_backup_property(b: &mut VmBackup, path: &str, val: &Node) -> Option<Option<()>> {
    let parsed = match path {
        "customValue" => custom_values(val).map(|v| b.custom_values = v),
        "config.annotation" => {
            b.annotation = val.text.clone();
            Some(())
        }
        "config.changeTrackingEnabled" => parse_bool(&val.text).map(|v| b.cbt_enabled = v),
        "guest.guestFamily" => {
            b.guest_family = Some(val.text.trim().to_owned()).filter(|f| !f.is_empty());
            Some(())
        }
        "datastore" => {
            b.datastores = val
                .children
                .iter()
                .filter_map(Node::moref)
                .map(|r| r.value)
                .collect();
            Some(())
        }
        ENABLE_UUID_PATH => {
            b.disk_enable_uuid = option_value(val);
            Some(())
        }
        EXTRA_CONFIG_PATH => {
            b.disk_enable_uuid = val
                .children
                .iter()
                .find(|o| {
                    o.text_of("key")
                        .is_some_and(|k| k.trim().eq_ignore_ascii_case(ENABLE_UUID_KEY))
                })
                .and_then(option_value);
            Some(())
        }
        _ => return None,
    };
    Some(parsed)
}

/// Puts a backup property of a VM back to unset; false when `path` is not one.
pub fn clear_vm_backup_property(b: &mut VmBackup, path: &str) -> bool {
    match path {
        "customValue" => b.custom_values.clear(),
        "config.annotation" => b.annotation.clear(),
        "config.changeTrackingEnabled" => b.cbt_enabled = false,
        "guest.guestFamily" => b.guest_family = None,
        "datastore" => b.datastores.clear(),
        ENABLE_UUID_PATH | EXTRA_CONFIG_PATH => b.disk_enable_uuid = None,
        _ => return false,
    }
    true
}

/// Sets one Datastore property of the backup checks (`None`: unset); `None` back when the
/// value did not parse. `name` is the inventory's (entity names are escaped).
pub fn set_datastore_property(ds: &mut Datastore, path: &str, val: Option<&Node>) -> Option<()> {
    // Some(None): unset; None: not a number.
    let number = |v: Option<&Node>| match v {
        None => Some(None),
        Some(n) => n.text.trim().parse::<i64>().ok().map(Some),
    };
    match path {
        "summary.capacity" => ds.capacity_bytes = number(val)?,
        "summary.freeSpace" => ds.free_bytes = number(val)?,
        "summary.uncommitted" => ds.uncommitted_bytes = number(val)?,
        "summary.type" => ds.fs_type = val.map(|v| v.text.trim().to_owned()).unwrap_or_default(),
        "summary.accessible" => {
            ds.accessible = match val {
                None => None,
                Some(v) => Some(parse_bool(&v.text)?),
            }
        }
        "info" => {
            ds.extent_disks = val
                .and_then(|v| v.child("vmfs"))
                .map(|vmfs| {
                    vmfs.children_named("extent")
                        .filter_map(|e| e.text_of("diskName"))
                        .map(|d| d.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default();
        }
        _ => {}
    }
    Some(())
}

/// `CustomFieldsManager.field`: the definitions by key.
pub fn custom_fields(val: Option<&Node>) -> Option<BTreeMap<i32, CustomField>> {
    let Some(val) = val else {
        return Some(BTreeMap::new());
    };
    val.children
        .iter()
        .map(|def| {
            let key = def.text_of("key")?.trim().parse().ok()?;
            Some((
                key,
                CustomField {
                    name: def.text_of("name").unwrap_or_default().to_owned(),
                    managed_object_type: def
                        .text_of("managedObjectType")
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                },
            ))
        })
        .collect()
}

/// `ArrayOfCustomFieldValue` (string values; other kinds have no text and are kept empty).
fn custom_values(val: &Node) -> Option<Vec<(i32, String)>> {
    val.children
        .iter()
        .map(|v| {
            let key = v.text_of("key")?.trim().parse().ok()?;
            Some((key, v.text_of("value").unwrap_or_default().to_owned()))
        })
        .collect()
}

/// An `OptionValue`'s value as a boolean the way ESXi reads it.
fn option_value(option: &Node) -> Option<bool> {
    option
        .text_of("value")
        .map(crate::backup::consistency::option_true)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::model::{Inventory, MoRef};
    use crate::vsphere::xml::read_retrieve_result;

    fn apply(xml: &str) -> (Inventory, usize) {
        let mut inventory = Inventory::default();
        let mut malformed = 0;
        read_retrieve_result(xml.as_bytes(), crate::vsphere::inventory::keep, |o| {
            let obj = o.child("obj").and_then(Node::moref).unwrap();
            for prop in o.children_named("propSet") {
                let path = prop.text_of("name").unwrap().trim().to_owned();
                if inventory
                    .set_property(&obj, &path, prop.child("val"))
                    .is_none()
                {
                    malformed += 1;
                }
            }
            Ok(())
        })
        .unwrap();
        (inventory, malformed)
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
        inventory.set_property(&obj, "info", None).unwrap();
        assert!(inventory.datastores["datastore-11"].extent_disks.is_empty());
    }
}
