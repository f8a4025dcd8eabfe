//! vCenter's event history on the wire: the requests of an `EventHistoryCollector` (create it
//! with a filter, size its page, rewind it, read its next events, destroy it), the property
//! filter over its `latestPage`, the task history (`TaskHistoryCollector`: create, read next),
//! reading Tasks' `info`, and decoding events and task infos into
//! [`crate::backup::history`]'s types. Pure functions over text; the follower that sends
//! them is [`crate::source::events`].

use std::fmt::Write;

use quick_xml::escape::escape;

use super::error::ParseError;
use super::model::MoRef;
use super::properties::parse_datetime;
use super::soap::{VIM25, envelope};
use super::xml::{Node, SoapReader};
use crate::backup::history::{Event, EventKind, TaskInfo, TaskState};

fn moref(tag: &str, r: &MoRef) -> String {
    format!(
        r#"<{tag} type="{}">{}</{tag}>"#,
        escape(r.kind.as_str()),
        escape(r.value.as_str())
    )
}

/// `CreateCollectorForEvents` for events of `type_ids` created at or after `begin` (an
/// `xsd:dateTime`). vCenter matches an EventEx by its `eventTypeId` in the same list.
pub fn create_collector_for_events(
    event_manager: &MoRef,
    type_ids: &[&str],
    begin: &str,
) -> String {
    let mut filter = String::new();
    let _ = write!(
        filter,
        "<time><beginTime>{}</beginTime></time>",
        escape(begin)
    );
    for id in type_ids {
        let _ = write!(filter, "<eventTypeId>{}</eventTypeId>", escape(*id));
    }
    envelope(&format!(
        r#"<CreateCollectorForEvents xmlns="{VIM25}">{}<filter>{filter}</filter></CreateCollectorForEvents>"#,
        moref("_this", event_manager)
    ))
}

/// `SetCollectorPageSize`: how many events `latestPage` holds.
pub fn set_collector_page_size(collector: &MoRef, max_count: u32) -> String {
    envelope(&format!(
        r#"<SetCollectorPageSize xmlns="{VIM25}">{}<maxCount>{max_count}</maxCount></SetCollectorPageSize>"#,
        moref("_this", collector)
    ))
}

/// `RewindCollector`: back to the oldest event of the collector's range.
pub fn rewind_collector(collector: &MoRef) -> String {
    envelope(&format!(
        r#"<RewindCollector xmlns="{VIM25}">{}</RewindCollector>"#,
        moref("_this", collector)
    ))
}

/// `ReadNextEvents`: up to `max_count` events after the collector's position.
pub fn read_next_events(collector: &MoRef, max_count: u32) -> String {
    envelope(&format!(
        r#"<ReadNextEvents xmlns="{VIM25}">{}<maxCount>{max_count}</maxCount></ReadNextEvents>"#,
        moref("_this", collector)
    ))
}

/// `DestroyCollector`.
pub fn destroy_collector(collector: &MoRef) -> String {
    envelope(&format!(
        r#"<DestroyCollector xmlns="{VIM25}">{}</DestroyCollector>"#,
        moref("_this", collector)
    ))
}

/// `CreateFilter` over one object's properties (no traversal): the event collector's
/// `latestPage`.
pub fn create_object_filter(collector: &MoRef, obj: &MoRef, kind: &str, path: &str) -> String {
    envelope(&format!(
        r#"<CreateFilter xmlns="{VIM25}">{}<spec><propSet><type>{}</type><pathSet>{}</pathSet></propSet><objectSet>{}<skip>false</skip></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        moref("_this", collector),
        escape(kind),
        escape(path),
        moref("obj", obj)
    ))
}

/// `CreateCollectorForTasks` for the tasks queued at or after `begin` (an `xsd:dateTime`),
/// every entity's: vCenter's task history, which keeps a task's final info after its Task
/// object is gone.
pub fn create_collector_for_tasks(task_manager: &MoRef, begin: &str) -> String {
    envelope(&format!(
        r#"<CreateCollectorForTasks xmlns="{VIM25}">{}<filter><time><timeType>queuedTime</timeType><beginTime>{}</beginTime></time></filter></CreateCollectorForTasks>"#,
        moref("_this", task_manager),
        escape(begin)
    ))
}

/// `ReadNextTasks`: up to `max_count` task infos after the collector's position.
pub fn read_next_tasks(collector: &MoRef, max_count: u32) -> String {
    envelope(&format!(
        r#"<ReadNextTasks xmlns="{VIM25}">{}<maxCount>{max_count}</maxCount></ReadNextTasks>"#,
        moref("_this", collector)
    ))
}

/// The task infos of a `ReadNextTasks` answer (none at the end of the history).
pub fn read_tasks(answer: &[u8]) -> Result<Vec<TaskInfo>, ParseError> {
    let response = SoapReader::new(answer).read_body()?;
    Ok(response
        .children_named("returnval")
        .filter_map(decode_task_info)
        .collect())
}

/// `RetrievePropertiesEx` of the `info` of several Tasks in one call. Tasks vCenter no longer
/// has are reported in `missingSet` rather than failing the call
/// (`reportMissingObjectsInResults`); either way they are absent from the answer's objects.
pub fn retrieve_tasks_info(property_collector: &MoRef, tasks: &[String]) -> String {
    let mut objects = String::new();
    for task in tasks {
        let _ = write!(
            objects,
            "<objectSet>{}<skip>false</skip></objectSet>",
            moref("obj", &MoRef::new("Task", task))
        );
    }
    envelope(&format!(
        r#"<RetrievePropertiesEx xmlns="{VIM25}">{}<specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet>{objects}<reportMissingObjectsInResults>true</reportMissingObjectsInResults></specSet><options></options></RetrievePropertiesEx>"#,
        moref("_this", property_collector),
    ))
}

/// The task infos of a [`retrieve_tasks_info`] answer: one per task vCenter still has.
pub fn read_tasks_info(answer: &[u8]) -> Result<Vec<TaskInfo>, ParseError> {
    let response = SoapReader::new(answer).read_body()?;
    Ok(response
        .children_named("returnval")
        .flat_map(|rv| rv.children_named("objects"))
        .flat_map(|o| o.children_named("propSet"))
        .filter(|p| p.text_of("name").map(str::trim) == Some("info"))
        .filter_map(|p| p.child("val"))
        .filter_map(decode_task_info)
        .collect())
}

/// `RetrievePropertiesEx` of a Task's `info`.
pub fn retrieve_task_info(property_collector: &MoRef, task: &str) -> String {
    let task = MoRef::new("Task", task);
    envelope(&format!(
        r#"<RetrievePropertiesEx xmlns="{VIM25}">{}<specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet>{}<skip>false</skip></objectSet></specSet><options></options></RetrievePropertiesEx>"#,
        moref("_this", property_collector),
        moref("obj", &task)
    ))
}

/// The events of a `ReadNextEvents` answer (none at the end of the history).
pub fn read_events(answer: &[u8]) -> Result<Vec<Event>, ParseError> {
    let response = SoapReader::new(answer).read_body()?;
    Ok(response
        .children_named("returnval")
        .filter_map(decode_event)
        .collect())
}

/// The events of a `latestPage` value (`ArrayOfEvent`).
pub fn page_events(val: &Node) -> Vec<Event> {
    val.children.iter().filter_map(decode_event).collect()
}

/// A task's `info` from a `RetrievePropertiesEx` answer; `None` when the answer has none.
pub fn read_task_info(answer: &[u8]) -> Result<Option<TaskInfo>, ParseError> {
    let response = SoapReader::new(answer).read_body()?;
    let info = response
        .children_named("returnval")
        .flat_map(|rv| rv.children_named("objects"))
        .flat_map(|o| o.children_named("propSet"))
        .find(|p| p.text_of("name").map(str::trim) == Some("info"))
        .and_then(|p| p.child("val"))
        .and_then(decode_task_info);
    Ok(info)
}

/// One event element (`returnval` or `Event`), `None` when it lacks a key or time.
pub fn decode_event(node: &Node) -> Option<Event> {
    let key = node.text_of("key")?.trim().parse().ok()?;
    let created_seconds = parse_datetime(node.text_of("createdTime")?)?;
    let vm = node
        .child("vm")
        .and_then(|v| v.child("vm"))
        .and_then(Node::moref)
        .map(|r| r.value);
    let kind = match node.xsi_type.as_deref() {
        Some("TaskEvent") => node
            .child("info")
            .and_then(decode_task_info)
            .map_or(EventKind::Other, EventKind::Task),
        Some("VmReconfiguredEvent") => EventKind::Reconfigured {
            disk_capacity_changed: disk_capacity_changed(node),
        },
        Some("EventEx" | "ExtendedEvent") => EventKind::Extended {
            type_id: node
                .text_of("eventTypeId")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        },
        _ => EventKind::Other,
    };
    Some(Event {
        key,
        created_seconds,
        user: node
            .text_of("userName")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        vm,
        kind,
    })
}

/// `TaskInfo`, `None` without its task or state.
pub fn decode_task_info(info: &Node) -> Option<TaskInfo> {
    let task = info
        .child("task")
        .and_then(Node::moref)
        .map(|r| r.value)
        .or_else(|| info.text_of("key").map(|k| k.trim().to_owned()))?;
    let result_snapshot = info
        .child("result")
        .and_then(Node::moref)
        .filter(|r| r.kind == "VirtualMachineSnapshot")
        .map(|r| r.value);
    Some(TaskInfo {
        task,
        description_id: info
            .text_of("descriptionId")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        state: TaskState::parse(info.text_of("state")?)?,
        start_seconds: info
            .text_of("startTime")
            .or_else(|| info.text_of("queueTime"))
            .and_then(parse_datetime),
        complete_seconds: info.text_of("completeTime").and_then(parse_datetime),
        result_snapshot,
        user: info
            .child("reason")
            .and_then(|r| r.text_of("userName"))
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty()),
    })
}

/// Whether a VmReconfiguredEvent changed a virtual disk's capacity: by its `configChanges`
/// (vSphere 6.7 and later list what changed), else by its `configSpec` (an edit of a
/// VirtualDisk that states a capacity, as a resize does).
fn disk_capacity_changed(event: &Node) -> bool {
    if let Some(modified) = event
        .child("configChanges")
        .and_then(|c| c.text_of("modified"))
    {
        return modified.contains("capacityInKB") || modified.contains("capacityInBytes");
    }
    event
        .child("configSpec")
        .into_iter()
        .flat_map(|spec| spec.children_named("deviceChange"))
        .any(|change| {
            let edit = change.text_of("operation").map(str::trim) == Some("edit");
            let device = change.child("device");
            let disk = device.is_some_and(|d| d.xsi_type.as_deref() == Some("VirtualDisk"));
            let capacity = device.is_some_and(|d| {
                d.child("capacityInKB").is_some() || d.child("capacityInBytes").is_some()
            });
            edit && disk && capacity
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::history::TaskState;

    const ENVELOPE_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>"#;
    const ENVELOPE_END: &str = "</soapenv:Body></soapenv:Envelope>";

    fn answer(body: &str) -> Vec<u8> {
        format!("{ENVELOPE_START}{body}{ENVELOPE_END}").into_bytes()
    }

    const TASK_EVENT: &str = r#"<returnval xsi:type="TaskEvent"><key>41</key><chainId>41</chainId><createdTime>2026-11-20T09:59:56Z</createdTime><userName>VSPHERE.LOCAL\svc-veeam</userName><datacenter><name>DC0</name><datacenter type="Datacenter">datacenter-2</datacenter></datacenter><vm><name>DC0_C0_RP0_VM0</name><vm type="VirtualMachine">vm-39</vm></vm><fullFormattedMessage>Task: Create virtual machine snapshot</fullFormattedMessage><info><key>task-120</key><task type="Task">task-120</task><name>CreateSnapshot_Task</name><descriptionId>VirtualMachine.createSnapshot</descriptionId><entity type="VirtualMachine">vm-39</entity><entityName>DC0_C0_RP0_VM0</entityName><state>success</state><cancelled>false</cancelled><cancelable>false</cancelable><result type="VirtualMachineSnapshot" xsi:type="ManagedObjectReference">snapshot-42</result><reason xsi:type="TaskReasonUser"><userName>VSPHERE.LOCAL\svc-veeam</userName></reason><queueTime>2026-11-20T09:59:56Z</queueTime><startTime>2026-11-20T09:59:56Z</startTime><completeTime>2026-11-20T10:00:05Z</completeTime><eventChainId>41</eventChainId></info></returnval>"#;

    #[test]
    fn read_next_events_decodes_tasks_reconfigurations_and_extended_events() {
        let body = format!(
            r#"<ReadNextEventsResponse xmlns="urn:vim25">{TASK_EVENT}
<returnval xsi:type="VmReconfiguredEvent"><key>42</key><chainId>42</chainId><createdTime>2026-11-21T10:00:00.250Z</createdTime><userName>admin</userName><vm><name>a</name><vm type="VirtualMachine">vm-44</vm></vm><configSpec><changeVersion>x</changeVersion><deviceChange><operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key><capacityInKB>62914560</capacityInKB></device></deviceChange></configSpec></returnval>
<returnval xsi:type="VmReconfiguredEvent"><key>43</key><createdTime>2026-11-21T11:00:00Z</createdTime><userName>admin</userName><vm><name>a</name><vm type="VirtualMachine">vm-44</vm></vm><configSpec><numCPUs>4</numCPUs></configSpec></returnval>
<returnval xsi:type="EventEx"><key>44</key><createdTime>2026-11-21T12:00:00Z</createdTime><userName></userName><vm><name>c</name><vm type="VirtualMachine">vm-64</vm></vm><eventTypeId>com.vmware.vc.VmDiskConsolidationNeeded</eventTypeId><severity>warning</severity></returnval>
<returnval xsi:type="VmPoweredOnEvent"><key>45</key><createdTime>2026-11-21T12:00:00Z</createdTime><userName>u</userName></returnval>
<returnval xsi:type="TaskEvent"><createdTime>2026-11-21T12:00:00Z</createdTime></returnval>
</ReadNextEventsResponse>"#
        );
        let events = read_events(&answer(&body)).unwrap();
        assert_eq!(events.len(), 5, "the event without a key is dropped");
        let task = &events[0];
        assert_eq!(task.key, 41);
        assert_eq!(task.vm.as_deref(), Some("vm-39"));
        assert_eq!(task.user, r"VSPHERE.LOCAL\svc-veeam");
        assert_eq!(task.created_seconds, 1_795_168_796.0);
        let EventKind::Task(info) = &task.kind else {
            panic!("{task:?}");
        };
        assert_eq!(info.task, "task-120");
        assert_eq!(info.description_id, "VirtualMachine.createSnapshot");
        assert_eq!(info.state, TaskState::Success);
        assert_eq!(info.start_seconds, Some(1_795_168_796.0), "startTime");
        assert_eq!(info.complete_seconds, Some(1_795_168_805.0));
        assert_eq!(info.result_snapshot.as_deref(), Some("snapshot-42"));
        assert_eq!(info.user.as_deref(), Some(r"VSPHERE.LOCAL\svc-veeam"));
        assert_eq!(
            events[1].kind,
            EventKind::Reconfigured {
                disk_capacity_changed: true
            }
        );
        assert_eq!(events[1].created_seconds, 1_795_255_200.25);
        assert_eq!(
            events[2].kind,
            EventKind::Reconfigured {
                disk_capacity_changed: false
            }
        );
        assert_eq!(
            events[3].kind,
            EventKind::Extended {
                type_id: "com.vmware.vc.VmDiskConsolidationNeeded".into()
            }
        );
        assert_eq!(events[4].kind, EventKind::Other);
        assert_eq!(
            read_events(&answer(r#"<ReadNextEventsResponse xmlns="urn:vim25"/>"#)).unwrap(),
            []
        );
    }

    #[test]
    fn config_changes_decide_a_disk_change_where_vcenter_lists_them() {
        let event = |changes: &str| {
            let xml = format!(
                r#"<ReadNextEventsResponse xmlns="urn:vim25"><returnval xsi:type="VmReconfiguredEvent"><key>1</key><createdTime>2026-11-21T11:00:00Z</createdTime><vm><name>a</name><vm type="VirtualMachine">vm-1</vm></vm><configSpec><deviceChange><operation>edit</operation><device xsi:type="VirtualDisk"><key>2000</key><capacityInKB>1</capacityInKB></device></deviceChange></configSpec>{changes}</returnval></ReadNextEventsResponse>"#
            );
            read_events(&answer(&xml)).unwrap().remove(0).kind
        };
        let modified =
            |text: &str| format!("<configChanges><modified>{text}</modified></configChanges>");
        assert_eq!(
            event(&modified(
                "config.hardware.device(2000).capacityInKB: 41943040 -&gt; 62914560"
            )),
            EventKind::Reconfigured {
                disk_capacity_changed: true
            }
        );
        assert_eq!(
            event(&modified(
                "config.hardware.device(2000).backing.diskMode: \"persistent\" -&gt; \"independent_persistent\""
            )),
            EventKind::Reconfigured {
                disk_capacity_changed: false
            }
        );
    }

    #[test]
    fn a_task_info_answer_gives_the_state_and_a_fault_is_an_error() {
        let body = r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-7</obj><propSet><name>info</name><val xsi:type="TaskInfo"><key>task-7</key><task type="Task">task-7</task><descriptionId>vm.Snapshot.remove</descriptionId><state>error</state><error><fault xsi:type="InvalidState"></fault><localizedMessage>no</localizedMessage></error><queueTime>2026-11-21T11:00:00Z</queueTime><completeTime>2026-11-21T11:01:00Z</completeTime></val></propSet></objects></returnval></RetrievePropertiesExResponse>"#;
        let info = read_task_info(&answer(body)).unwrap().unwrap();
        assert_eq!(info.state, TaskState::Error);
        assert_eq!(info.complete_seconds, Some(1_795_258_860.0));
        assert_eq!(
            info.start_seconds,
            Some(1_795_258_800.0),
            "never started: its queueTime"
        );
        let fault = r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>gone</faultstring><detail><ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound"><obj type="Task">task-7</obj></ManagedObjectNotFoundFault></detail></soapenv:Fault>"#;
        let err = read_task_info(&answer(fault)).unwrap_err();
        assert!(matches!(err, ParseError::Fault(f) if f.kind == "ManagedObjectNotFound"));
    }

    #[test]
    fn the_task_history_and_a_batch_of_task_infos_decode_each_task_once() {
        // ReadNextTasks answers TaskInfo elements as returnval (vCenter 6.7's shape).
        let body = r#"<ReadNextTasksResponse xmlns="urn:vim25"><returnval><key>task-7</key><task type="Task">task-7</task><descriptionId>VirtualMachine.createSnapshot</descriptionId><entity type="VirtualMachine">vm-39</entity><state>success</state><result type="VirtualMachineSnapshot">snapshot-9</result><reason xsi:type="TaskReasonUser"><userName>VSPHERE.LOCAL\svc-veeam</userName></reason><queueTime>2026-11-21T11:00:00Z</queueTime><completeTime>2026-11-21T11:00:09.5Z</completeTime></returnval><returnval><key>task-8</key><task type="Task">task-8</task><descriptionId>vm.Snapshot.remove</descriptionId><state>running</state><queueTime>2026-11-21T11:05:00Z</queueTime></returnval></ReadNextTasksResponse>"#;
        let tasks = read_tasks(&answer(body)).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].task, "task-7");
        assert_eq!(tasks[0].state, TaskState::Success);
        assert_eq!(tasks[0].result_snapshot.as_deref(), Some("snapshot-9"));
        assert_eq!(tasks[0].user.as_deref(), Some("VSPHERE.LOCAL\\svc-veeam"));
        assert_eq!(tasks[0].complete_seconds, Some(1_795_258_809.5));
        assert_eq!(tasks[1].state, TaskState::Running);
        assert!(
            read_tasks(&answer("<ReadNextTasksResponse xmlns=\"urn:vim25\"/>"))
                .unwrap()
                .is_empty()
        );

        // A batch: task-8 answered, task-9 gone (missingSet), read as absent.
        let body = r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-8</obj><propSet><name>info</name><val xsi:type="TaskInfo"><key>task-8</key><task type="Task">task-8</task><descriptionId>vm.Snapshot.remove</descriptionId><state>error</state><queueTime>2026-11-21T11:05:00Z</queueTime><completeTime>2026-11-21T11:06:00Z</completeTime></val></propSet></objects><objects><obj type="Task">task-9</obj><missingSet><path></path><fault><fault xsi:type="ManagedObjectNotFound"><obj type="Task">task-9</obj></fault></fault></missingSet></objects></returnval></RetrievePropertiesExResponse>"#;
        let infos = read_tasks_info(&answer(body)).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(
            (infos[0].task.as_str(), infos[0].state),
            ("task-8", TaskState::Error)
        );
        let request = retrieve_tasks_info(
            &MoRef::new("PropertyCollector", "pc"),
            &["task-8".into(), "task-9".into()],
        );
        assert!(request.contains(r#"<obj type="Task">task-8</obj>"#));
        assert!(request.contains(r#"<obj type="Task">task-9</obj>"#));
        assert!(
            request.contains("<reportMissingObjectsInResults>true</reportMissingObjectsInResults>")
        );
        let request = create_collector_for_tasks(
            &MoRef::new("TaskManager", "TaskManager"),
            "2026-11-29T00:00:00Z",
        );
        assert!(request.contains("<filter><time><timeType>queuedTime</timeType><beginTime>2026-11-29T00:00:00Z</beginTime></time></filter>"));
    }

    #[test]
    fn requests_name_the_filter_and_escape_their_arguments() {
        let body = create_collector_for_events(
            &MoRef::new("EventManager", "EventManager"),
            &["TaskEvent", "com.vmware.vc.VmDiskConsolidatedEvent"],
            "2026-11-29T00:00:00Z",
        );
        assert!(body.contains(
            "<filter><time><beginTime>2026-11-29T00:00:00Z</beginTime></time><eventTypeId>TaskEvent</eventTypeId><eventTypeId>com.vmware.vc.VmDiskConsolidatedEvent</eventTypeId></filter>"
        ));
        let body = retrieve_task_info(&MoRef::new("PropertyCollector", "pc"), "task-<1>");
        assert!(
            body.contains(r#"<obj type="Task">task-&lt;1&gt;</obj>"#),
            "{body}"
        );
    }
}
