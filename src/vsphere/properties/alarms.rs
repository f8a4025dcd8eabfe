//! The decoding of vCenter's triggered alarms: the root folder's `triggeredAlarmState` (an
//! `ArrayOfAlarmState`), which holds the alarms triggered on every entity below it. Its path is
//! a row of [`super::ALARM_PROPERTIES`], read through a filter of its own on the root folder
//! alone (every other folder would repeat its descendants' alarms), with `Alarm.info.name`,
//! which the mirror reads of the alarms referenced (see [`crate::vsphere::mirror`]).
//!
//! An AlarmState without its entity or its alarm is left out, and a time that does not parse is
//! kept as unknown: an odd state costs itself, never the rest of the alarms or the mirror.

use std::io::BufRead;

use super::{parse_bool, parse_datetime};
use crate::vsphere::error::ParseError;
use crate::vsphere::model::AlarmState;
use crate::vsphere::xml::Cursor;

/// `ArrayOfAlarmState`, in vCenter's order.
pub fn read_alarm_states<R: BufRead>(cur: &mut Cursor<R>) -> Result<Vec<AlarmState>, ParseError> {
    cur.enter();
    let mut states = Vec::new();
    while cur.next_child()? {
        if let Some(state) = read_alarm_state(cur)? {
            states.push(state);
        }
    }
    Ok(states)
}

/// One `AlarmState`; `None` without its entity or alarm.
fn read_alarm_state<R: BufRead>(cur: &mut Cursor<R>) -> Result<Option<AlarmState>, ParseError> {
    cur.enter();
    let mut state = AlarmState::default();
    let mut entity = None;
    let mut alarm = None;
    while cur.next_child()? {
        match cur.name() {
            b"key" => state.key = cur.text()?.trim().to_string(),
            b"entity" => entity = cur.moref()?,
            b"alarm" => alarm = cur.moref()?,
            b"overallStatus" => state.overall_status = cur.text()?.trim().to_string(),
            b"time" => state.time_seconds = parse_datetime(cur.text()?),
            b"acknowledged" => state.acknowledged = parse_bool(cur.text()?).unwrap_or(false),
            _ => {}
        }
    }
    let (Some(entity), Some(alarm)) = (entity, alarm) else {
        return Ok(None);
    };
    state.entity = entity;
    state.alarm = alarm.value;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use crate::vsphere::model::{Inventory, MoRef};
    use crate::vsphere::properties::{ObjectUpdate, read_updates};
    use crate::vsphere::xml::Limits;

    fn root_folder_update(val: &str) -> ObjectUpdate {
        let xml = format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>1</version><filterSet><filter type="PropertyFilter">f3</filter><objectSet><kind>modify</kind><obj type="Folder">group-d1</obj><changeSet><name>triggeredAlarmState</name><op>assign</op>{val}</changeSet></objectSet></filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#
        );
        let mut out = Vec::new();
        read_updates(xml.as_bytes(), &Limits::default(), |_, u| {
            out.push(u);
            Ok(())
        })
        .unwrap();
        out.remove(0)
    }

    /// Real vCenter 6.7 AlarmStates (a host's `declaredAlarmState`, recorded by pyvmomi; the
    /// same type as `triggeredAlarmState`, with `xsi:type` on each and fractional seconds),
    /// read as the root folder's.
    #[test]
    fn recorded_vcenter_alarm_states_decode() {
        let recorded =
            include_str!("../../../tests/fixtures/pyvmomi/host_declared_alarm_state.xml").replace(
                r#"<obj type="HostSystem">host-14</obj><propSet><name>declaredAlarmState</name>"#,
                r#"<obj type="Folder">group-d1</obj><propSet><name>triggeredAlarmState</name>"#,
            );
        let mut objects = Vec::new();
        crate::vsphere::properties::read_objects(recorded.as_bytes(), &Limits::default(), |o| {
            objects.push(o);
            Ok(())
        })
        .unwrap();
        let mut inv = Inventory::default();
        inv.apply_alarm_changes(objects.remove(0).changes).unwrap();
        let states = &inv.triggered_alarms;
        assert_eq!(states.len(), 42);
        let status = |s: &str| states.iter().filter(|a| a.overall_status == s).count();
        assert_eq!((status("gray"), status("green")), (27, 15));
        assert!(states.iter().all(|a| !a.is_triggered() && !a.acknowledged));
        assert_eq!(states[0].key, "alarm-1.host-14");
        assert_eq!(states[0].entity, MoRef::new("HostSystem", "host-14"));
        assert_eq!(states[0].alarm, "alarm-1");
        assert_eq!(states[0].time_seconds, Some(1_537_380_019.001));
    }

    #[test]
    fn triggered_alarm_states_are_read_and_odd_ones_left_out() {
        let update = root_folder_update(
            r#"<val xsi:type="ArrayOfAlarmState">
<AlarmState><key>alarm-7.vm-64</key><entity type="VirtualMachine">vm-64</entity><alarm type="Alarm">alarm-7</alarm><overallStatus>red</overallStatus><time>2026-12-04T10:00:00Z</time><acknowledged>false</acknowledged><eventKey>12</eventKey></AlarmState>
<AlarmState><key>alarm-2.host-21</key><entity type="HostSystem">host-21</entity><alarm type="Alarm">alarm-2</alarm><overallStatus>yellow</overallStatus><time>not a time</time><acknowledged>true</acknowledged><acknowledgedByUser>VSPHERE.LOCAL\admin</acknowledgedByUser></AlarmState>
<AlarmState><key>no-entity</key><alarm type="Alarm">alarm-3</alarm><overallStatus>red</overallStatus></AlarmState>
<AlarmState><key>alarm-4.ds</key><entity type="Datastore">datastore-1</entity><alarm type="Alarm">alarm-4</alarm><overallStatus>green</overallStatus></AlarmState>
</val>"#,
        );
        let mut inv = Inventory::default();
        inv.apply_alarm_changes(update.changes).unwrap();
        let states = &inv.triggered_alarms;
        assert_eq!(states.len(), 3, "the state without its entity is left out");
        assert_eq!(states[0].entity, MoRef::new("VirtualMachine", "vm-64"));
        assert_eq!(states[0].alarm, "alarm-7");
        assert_eq!(states[0].overall_status, "red");
        assert_eq!(states[0].time_seconds, Some(1_796_378_400.0));
        assert!(!states[0].acknowledged);
        assert_eq!(states[1].time_seconds, None, "a bad time is unknown");
        assert!(states[1].acknowledged);
        assert!(states[1].is_triggered() && !states[2].is_triggered());
        assert_eq!(
            inv.unnamed_alarms().into_iter().collect::<Vec<_>>(),
            ["alarm-2", "alarm-4", "alarm-7"]
        );

        // No value: no alarms any more.
        inv.apply_alarm_changes(root_folder_update("").changes)
            .unwrap();
        assert!(inv.triggered_alarms.is_empty());
    }
}
