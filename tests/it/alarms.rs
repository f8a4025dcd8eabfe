//! vCenter's triggered alarms against the simulator's pitfalls scenario (tests/vcsim/alarms.go):
//! `vsphere_alarm_triggered` series equal the root folder's triggeredAlarmState as the facts
//! state it, label by label; alarms set and cleared while the exporter runs arrive through the
//! update stream; an alarm whose name read fails is served unnamed, the failure counted, the
//! mirror up, and named once a later read succeeds.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::serve;
use crate::support::{Sample, find, parse, value};
use crate::vcsim::Vcsim;

const METRIC: &str = "vsphere_alarm_triggered";
const LIMIT: Duration = Duration::from_secs(30);

/// A series' labels but `vcenter`, in the catalogue's order.
type Labels = [String; 7];

fn labels_of(s: &Sample) -> Labels {
    let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    [
        l("entity_type"),
        l("entity_id"),
        l("entity_name"),
        l("alarm_id"),
        l("alarm_name"),
        l("status"),
        l("acknowledged"),
    ]
}

fn served_alarms(samples: &[Sample]) -> BTreeSet<Labels> {
    let series = find(samples, METRIC, &[("vcenter", "vc01")]);
    assert!(series.iter().all(|s| s.value == 1.0), "{series:#?}");
    series.into_iter().map(labels_of).collect()
}

fn has_alarm(page: &str, entity: &str, alarm: &str) -> bool {
    !find(
        &parse(page),
        METRIC,
        &[("entity_id", entity), ("alarm_id", alarm)],
    )
    .is_empty()
}

fn errors(samples: &[Sample], call: &str) -> f64 {
    find(
        samples,
        "vsphere_call_errors_total",
        &[("vcenter", "vc01"), ("call", call), ("kind", "fault")],
    )
    .first()
    .map_or(0.0, |s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_alarms_equal_the_facts_yellow_and_red_only_with_alarm_and_entity_names() {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let facts = &sim.facts.alarms;
    assert!(
        facts.iter().any(|a| !a.triggered),
        "a green state to leave out"
    );
    assert!(facts.iter().any(|a| a.triggered && a.alarm_name.is_empty()));
    assert!(facts.iter().any(|a| a.acknowledged));
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let samples = parse(&served.scrape("/probe?target=vc01").await);
    let want: BTreeSet<Labels> = facts
        .iter()
        .filter(|a| a.triggered)
        .map(|a| {
            [
                a.entity_type.clone(),
                a.entity_id.clone(),
                a.entity_name.clone(),
                a.alarm_id.clone(),
                a.alarm_name.clone(),
                a.status.clone(),
                a.acknowledged.to_string(),
            ]
        })
        .collect();
    assert_eq!(served_alarms(&samples), want);
    assert_eq!(
        value(
            &samples,
            "vsphere_collector_success",
            &[("collector", "alarms")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_set_and_cleared_at_run_time_arrive_and_a_failed_name_read_leaves_them_unnamed() {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let vm = sim
        .facts
        .alarms
        .iter()
        .find(|a| a.alarm_id == "alarm-7")
        .expect("the consolidation alarm")
        .clone();
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let probe = "/probe?target=vc01";
    let first = parse(&served.scrape_when_synced("vc01", "inventory", 30).await);
    assert!(
        !find(
            &first,
            METRIC,
            &[("entity_id", &vm.entity_id), ("alarm_id", "alarm-7")]
        )
        .is_empty()
    );

    // Cleared: the series goes.
    sim.control(json!({"op": "clear_alarm", "entity_type": vm.entity_type, "entity": vm.entity_id, "alarm": "alarm-7"}))
        .await;
    served
        .scrape_until(probe, LIMIT, |p| !has_alarm(p, &vm.entity_id, "alarm-7"))
        .await;

    // Set again, yellow and acknowledged: an alarm the exporter has named, so no name read (a
    // refusal armed before it is still there afterwards).
    sim.control(json!({"op": "fail_alarm_reads", "count": 1}))
        .await;
    sim.control(json!({"op": "set_alarm", "entity_type": vm.entity_type, "entity": vm.entity_id, "alarm": "alarm-7", "status": "yellow", "acknowledged": true}))
        .await;
    let page = served
        .scrape_until(probe, LIMIT, |p| has_alarm(p, &vm.entity_id, "alarm-7"))
        .await;
    let again = parse(&page);
    let series = find(
        &again,
        METRIC,
        &[("entity_id", &vm.entity_id), ("alarm_id", "alarm-7")],
    );
    assert_eq!(
        labels_of(series[0]),
        [
            vm.entity_type.clone(),
            vm.entity_id.clone(),
            vm.entity_name.clone(),
            "alarm-7".to_string(),
            vm.alarm_name.clone(),
            "yellow".to_string(),
            "true".to_string(),
        ]
    );
    let armed = sim
        .control(json!({"op": "fail_alarm_reads", "count": 1}))
        .await;
    assert_eq!(armed["left"], 1, "a known alarm is not read again");

    // A new alarm whose name read fails (the refusal armed above): served unnamed, the
    // failure counted, the mirror up.
    let before = errors(&again, "RetrievePropertiesEx");
    sim.control(json!({"op": "set_alarm", "entity_type": vm.entity_type, "entity": vm.entity_id, "alarm": "alarm-2", "status": "red"}))
        .await;
    let page = served
        .scrape_until(probe, LIMIT, |p| has_alarm(p, &vm.entity_id, "alarm-2"))
        .await;
    let failed = parse(&page);
    let unnamed = find(
        &failed,
        METRIC,
        &[("entity_id", &vm.entity_id), ("alarm_id", "alarm-2")],
    );
    assert_eq!(unnamed[0].labels["alarm_name"], "", "the read failed");
    assert_eq!(errors(&failed, "RetrievePropertiesEx"), before + 1.0);
    assert_eq!(value(&failed, "vsphere_up", &[("vcenter", "vc01")]), 1.0);
    let spent = sim
        .control(json!({"op": "fail_alarm_reads", "count": 0}))
        .await;
    assert_eq!(spent["left"], 0, "the name read was tried once");

    // The next new alarm is read with the one left unnamed: both get their names.
    let host = sim.facts.hosts[0].id.clone();
    sim.control(json!({"op": "set_alarm", "entity_type": "HostSystem", "entity": host, "alarm": "alarm-3", "status": "yellow"}))
        .await;
    let page = served
        .scrape_until(probe, LIMIT, |p| {
            let s = parse(p);
            !find(
                &s,
                METRIC,
                &[
                    ("alarm_id", "alarm-3"),
                    ("alarm_name", "Virtual machine memory usage"),
                ],
            )
            .is_empty()
                && !find(
                    &s,
                    METRIC,
                    &[
                        ("alarm_id", "alarm-2"),
                        ("alarm_name", "Virtual machine CPU usage"),
                    ],
                )
                .is_empty()
        })
        .await;
    let named = parse(&page);
    assert_eq!(errors(&named, "RetrievePropertiesEx"), before + 1.0);
}
