//! vCenter's own triggered alarms (`vsphere_alarm_triggered`): what the root folder's
//! `triggeredAlarmState` holds in the inventory mirror, with each alarm's name and the name of
//! the entity it is triggered on. Only yellow and red states are triggered alarms; gray and
//! green ones (an alarm that cleared, or whose state is unknown) are left out.
//!
//! Cardinality: one series per triggered alarm and entity, as many as vCenter shows under
//! Triggered Alarms (usually tens, at most a few per entity). A change of status or
//! acknowledgement replaces the series.

use super::catalogue::ALARM_TRIGGERED;
use super::{CollectError, Collector, Context, Sink};

pub struct Alarms;

impl Collector for Alarms {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let inventory = ctx.inventory;
        for state in inventory
            .triggered_alarms
            .iter()
            .filter(|s| s.is_triggered())
        {
            let entity_name = inventory.entity_name(&state.entity).unwrap_or("");
            let alarm_name = inventory
                .alarm_names
                .get(&state.alarm)
                .map_or("", String::as_str);
            let acknowledged = if state.acknowledged { "true" } else { "false" };
            out.gauge(
                &ALARM_TRIGGERED,
                &[
                    &state.entity.kind,
                    &state.entity.value,
                    entity_name,
                    &state.alarm,
                    alarm_name,
                    &state.overall_status,
                    acknowledged,
                ],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::collector::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{AlarmState, Host, MoRef, Vm};

    fn state(kind: &str, id: &str, alarm: &str, status: &str, acknowledged: bool) -> AlarmState {
        AlarmState {
            key: format!("{alarm}.{id}"),
            entity: MoRef::new(kind, id),
            alarm: alarm.into(),
            overall_status: status.into(),
            time_seconds: Some(1.0),
            acknowledged,
        }
    }

    #[test]
    fn yellow_and_red_alarms_are_series_with_their_names_gray_and_green_are_not() {
        let mut inv = Inventory::default();
        inv.vms.insert(
            "vm-64".into(),
            Arc::new(Vm {
                id: "vm-64".into(),
                name: "db01".into(),
                ..Default::default()
            }),
        );
        inv.hosts.insert(
            "host-21".into(),
            Host {
                id: "host-21".into(),
                name: "esx01".into(),
                ..Default::default()
            },
        );
        inv.triggered_alarms = vec![
            state("VirtualMachine", "vm-64", "alarm-7", "red", false),
            state("HostSystem", "host-21", "alarm-2", "yellow", true),
            state("Datastore", "datastore-9", "alarm-4", "red", false),
            state("VirtualMachine", "vm-64", "alarm-2", "green", false),
            state("VirtualMachine", "vm-64", "alarm-3", "gray", false),
        ];
        inv.alarm_names = [
            (
                "alarm-7".to_string(),
                "Virtual machine Consolidation Needed status".to_string(),
            ),
            ("alarm-2".to_string(), "Host memory usage".to_string()),
        ]
        .into();
        let out = run(&inv, &config());
        assert_eq!(samples(&out, "vsphere_alarm_triggered").len(), 3);
        assert_eq!(
            value(
                &out,
                "vsphere_alarm_triggered",
                &[
                    ("entity_type", "VirtualMachine"),
                    ("entity_id", "vm-64"),
                    ("entity_name", "db01"),
                    ("alarm_id", "alarm-7"),
                    ("alarm_name", "Virtual machine Consolidation Needed status"),
                    ("status", "red"),
                    ("acknowledged", "false"),
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_alarm_triggered",
                &[
                    ("entity_id", "host-21"),
                    ("entity_name", "esx01"),
                    ("status", "yellow"),
                    ("acknowledged", "true"),
                ]
            ),
            Some(1.0)
        );
        // Neither the datastore nor the alarm's name is known: empty names, still a series.
        assert_eq!(
            value(
                &out,
                "vsphere_alarm_triggered",
                &[
                    ("entity_type", "Datastore"),
                    ("entity_id", "datastore-9"),
                    ("entity_name", ""),
                    ("alarm_id", "alarm-4"),
                    ("alarm_name", ""),
                ]
            ),
            Some(1.0)
        );
    }
}
