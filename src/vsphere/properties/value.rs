//! A property's value: the [`Value`] each property decodes to, and [`read_value`], which reads
//! it straight from the XML events of a `val` element: plain text, booleans, numbers and
//! references here, the structured values by their own decoders (a VM's snapshots, files and
//! disks in [`super::snapshots`] and [`super::devices`], the backup checks' in [`super::backup`]).
//!
//! It owns the decoding, not which paths are read (the tables in [`super`]) nor where values go
//! in the model (see [`super::apply`]).

use std::collections::BTreeMap;
use std::io::BufRead;

use super::alarms::read_alarm_states;
use super::backup::{
    read_custom_fields, read_custom_values, read_datastore_extents, read_enable_uuid,
    read_extra_config_enable_uuid,
};
use super::devices::read_devices;
use super::snapshots::{read_layout_ex, read_snapshot_info};
use super::{Property, entity_name, parse_bool, parse_num, path_of};
use crate::vsphere::error::ParseError;
use crate::vsphere::model::{
    AlarmState, CustomField, Devices, LayoutEx, MoId, MoRef, SnapshotInfo, VmQuestion,
};
use crate::vsphere::xml::Cursor;

/// A property value, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    MoRef(MoRef),
    Snapshot(SnapshotInfo),
    LayoutEx(LayoutEx),
    /// `config.hardware.device`: the disks, shared SCSI buses and passthrough devices.
    Devices(Devices),
    /// `runtime.question`.
    Question(VmQuestion),
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
    /// `triggeredAlarmState`, in vCenter's order.
    AlarmStates(Vec<AlarmState>),
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
        // An Alarm is no ManagedEntity: its name is sent as it is.
        Property::AlarmName => Ok(Value::Text(cur.text()?.to_string())),
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
        | Property::FaultToleranceState
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
        Property::Devices => read_devices(cur)?.map(Value::Devices),
        Property::Question => Ok(Value::Question(read_question(cur)?)),
        Property::Datastores => Ok(Value::Ids(read_ids(cur)?)),
        Property::CustomValue => read_custom_values(cur)?.map(Value::CustomValues),
        Property::EnableUuid => Ok(Value::EnableUuid(read_enable_uuid(cur)?)),
        Property::ExtraConfig => Ok(Value::EnableUuid(read_extra_config_enable_uuid(cur)?)),
        Property::DatastoreInfo => Ok(Value::ExtentDisks(read_datastore_extents(cur)?)),
        Property::CustomFields => read_custom_fields(cur)?.map(Value::CustomFields),
        Property::TriggeredAlarmState => Ok(Value::AlarmStates(read_alarm_states(cur)?)),
    })
}

/// `VirtualMachineQuestionInfo`: its id and text (the choices and messages are skipped).
fn read_question<R: BufRead>(cur: &mut Cursor<R>) -> Result<VmQuestion, ParseError> {
    cur.enter();
    let mut question = VmQuestion::default();
    while cur.next_child()? {
        match cur.name() {
            b"id" => question.id = cur.text()?.trim().to_string(),
            b"text" => question.text = cur.text()?.to_string(),
            _ => {}
        }
    }
    Ok(question)
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
