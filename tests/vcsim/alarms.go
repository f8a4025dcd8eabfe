// alarms.go owns vCenter's alarms in the simulator: the Alarm objects (govmomi 0.24.2 has no
// AlarmManager and no Alarm), the triggered alarm states a scenario plans (pitfalls), the facts
// about them, and the /_control ops that set and clear states at run time.
//
// vCenter keeps each triggered alarm as an AlarmState in the triggeredAlarmState of the entity
// it is triggered on and of every ancestor up to the root folder ("Triggered alarms are
// propagated up the inventory hierarchy", ManagedEntity.triggeredAlarmState); an alarm that
// clears goes green and leaves the list. Every change is published with simulator.Map.Update
// under the entity's lock, so WaitForUpdatesEx reports it.
package main

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// alarmDef is one Alarm object the simulator serves: a few of vCenter's default alarms (their
// names as vCenter 7 and 8 ship them) and one a site defines on the VM Snapshot Size
// condition, which vCenter does not ship.
type alarmDef struct {
	id   string
	name string
}

var alarmDefs = []alarmDef{
	{"alarm-2", "Virtual machine CPU usage"},
	{"alarm-3", "Virtual machine memory usage"},
	{"alarm-7", "Virtual machine Consolidation Needed status"},
	{"alarm-11", "Host memory usage"},
	{"alarm-12", "Host connection and power state"},
	{"alarm-17", "Datastore usage on disk"},
	{"alarm-101", "VM Snapshot Size (GB)"},
}

// goneAlarm is an Alarm id no Alarm object has: a state referencing it stands for an alarm
// deleted while still triggered, whose name vCenter can no longer give.
const goneAlarm = "alarm-999"

// alarmPlan is one triggered alarm a scenario sets: on the entity of that type and name.
type alarmPlan struct {
	entityType   string // VirtualMachine, HostSystem, Datastore, …
	entityName   string
	alarm        string // an alarmDefs id, or goneAlarm
	status       types.ManagedEntityStatus
	acknowledged bool
	at           time.Time
}

// AlarmFacts is one AlarmState of the root folder's triggeredAlarmState.
type AlarmFacts struct {
	Key          string `json:"key"`
	EntityType   string `json:"entity_type"`
	EntityID     string `json:"entity_id"`
	EntityName   string `json:"entity_name"`
	AlarmID      string `json:"alarm_id"`
	AlarmName    string `json:"alarm_name"` // "" when no Alarm object has the id
	Status       string `json:"status"`     // gray, green, yellow, red
	Acknowledged bool   `json:"acknowledged"`
	// Triggered: yellow or red, the states vsphere_alarm_triggered shows.
	Triggered bool `json:"triggered"`
}

// alarmStates holds every triggered alarm state by key; the entities' triggeredAlarmState is
// made from it.
var alarmStates = struct {
	sync.Mutex
	byKey map[string]types.AlarmState
	// shown lists the entities whose triggeredAlarmState is not empty, to empty them again.
	shown map[types.ManagedObjectReference]bool
}{byKey: map[string]types.AlarmState{}, shown: map[types.ManagedObjectReference]bool{}}

// installAlarms registers the Alarm objects (each with its info.name), which RetrieveProperties
// reads like any managed object.
func installAlarms(root types.ManagedObjectReference) {
	for _, d := range alarmDefs {
		ref := types.ManagedObjectReference{Type: "Alarm", Value: d.id}
		a := &mo.Alarm{}
		a.Self = ref
		a.Info = types.AlarmInfo{
			AlarmSpec: types.AlarmSpec{Name: d.name, Enabled: true, Expression: &types.OrAlarmExpression{}},
			Key:       d.id,
			Alarm:     ref,
			Entity:    root,
		}
		simulator.Map.Put(a)
	}
}

// alarmName is the name of an Alarm id, "" for one that has no Alarm object.
func alarmName(id string) string {
	for _, d := range alarmDefs {
		if d.id == id {
			return d.name
		}
	}
	return ""
}

// applyAlarmPlans sets the planned states and returns their facts, in key order.
func applyAlarmPlans(plans []alarmPlan) ([]AlarmFacts, error) {
	facts := []AlarmFacts{}
	for _, p := range plans {
		e, err := entityNamed(p.entityType, p.entityName)
		if err != nil {
			return nil, err
		}
		s := setAlarmState(e.Self, p.alarm, p.status, p.acknowledged, p.at)
		facts = append(facts, alarmFacts(s, e.Name))
	}
	sort.Slice(facts, func(i, j int) bool { return facts[i].Key < facts[j].Key })
	return facts, nil
}

func alarmFacts(s types.AlarmState, entityName string) AlarmFacts {
	status := string(s.OverallStatus)
	return AlarmFacts{
		Key: s.Key, EntityType: s.Entity.Type, EntityID: s.Entity.Value, EntityName: entityName,
		AlarmID: s.Alarm.Value, AlarmName: alarmName(s.Alarm.Value), Status: status,
		Acknowledged: s.Acknowledged != nil && *s.Acknowledged,
		Triggered:    status == "yellow" || status == "red",
	}
}

// entityNamed finds the one entity of a type with a name.
func entityNamed(kind, name string) (*mo.ManagedEntity, error) {
	for _, e := range simulator.Map.All(kind) {
		if me := e.Entity(); me.Name == name {
			return me, nil
		}
	}
	return nil, fmt.Errorf("alarm: no %s named %q", kind, name)
}

// setAlarmState adds or replaces the state of an alarm on an entity and publishes it.
func setAlarmState(entity types.ManagedObjectReference, alarm string, status types.ManagedEntityStatus, acknowledged bool, at time.Time) types.AlarmState {
	ack := acknowledged
	s := types.AlarmState{
		Key:           alarm + "." + entity.Value, // as vCenter keys them
		Entity:        entity,
		Alarm:         types.ManagedObjectReference{Type: "Alarm", Value: alarm},
		OverallStatus: status,
		Time:          at.UTC(),
		Acknowledged:  &ack,
		EventKey:      0,
	}
	if acknowledged {
		s.AcknowledgedByUser = userAdmin
		t := at.UTC().Add(time.Minute)
		s.AcknowledgedTime = &t
	}
	alarmStates.Lock()
	alarmStates.byKey[s.Key] = s
	alarmStates.Unlock()
	publishAlarmStates()
	return s
}

// clearAlarmState removes an alarm's state from an entity; false when it had none.
func clearAlarmState(entity types.ManagedObjectReference, alarm string) bool {
	key := alarm + "." + entity.Value
	alarmStates.Lock()
	_, ok := alarmStates.byKey[key]
	delete(alarmStates.byKey, key)
	alarmStates.Unlock()
	if ok {
		publishAlarmStates()
	}
	return ok
}

// publishAlarmStates sets every entity's triggeredAlarmState from the states held: each state
// on its entity and every ancestor, in key order, and empties the lists of entities left
// without; each change goes through Map.Update under the entity's lock.
func publishAlarmStates() {
	alarmStates.Lock()
	defer alarmStates.Unlock()
	keys := make([]string, 0, len(alarmStates.byKey))
	for k := range alarmStates.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lists := map[types.ManagedObjectReference][]types.AlarmState{}
	for _, k := range keys {
		s := alarmStates.byKey[k]
		for ref := &s.Entity; ref != nil; {
			e, ok := simulator.Map.Get(*ref).(mo.Entity)
			if !ok {
				break
			}
			lists[*ref] = append(lists[*ref], s)
			ref = e.Entity().Parent
		}
	}
	for ref := range alarmStates.shown {
		if _, ok := lists[ref]; !ok {
			lists[ref] = nil
		}
	}
	for ref, states := range lists {
		e, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok {
			continue
		}
		value := append([]types.AlarmState(nil), states...) // a new copy, never edited in place
		simulator.Map.WithLock(e, func() {
			e.Entity().TriggeredAlarmState = value
			simulator.Map.Update(e, []types.PropertyChange{{Name: "triggeredAlarmState", Val: value}})
		})
		if len(states) == 0 {
			delete(alarmStates.shown, ref)
		} else {
			alarmStates.shown[ref] = true
		}
	}
}

// alarmEntity resolves the entity of a control request: its type and id.
func alarmEntity(req controlRequest) (types.ManagedObjectReference, error) {
	if req.EntityType == "" || req.Entity == "" {
		return types.ManagedObjectReference{}, badRequest("%s: entity_type and entity (an id such as vm-39) are required", req.Op)
	}
	ref := types.ManagedObjectReference{Type: req.EntityType, Value: req.Entity}
	if _, ok := simulator.Map.Get(ref).(mo.Entity); !ok {
		return ref, notFound("%s %s: no such entity", req.EntityType, req.Entity)
	}
	return ref, nil
}

// setAlarmOp sets an alarm's state on an entity, as vCenter does when the alarm triggers,
// changes status or is acknowledged:
// {"op":"set_alarm","entity_type":"VirtualMachine","entity":"vm-39","alarm":"alarm-7","status":"red","acknowledged":false}.
// The alarm may be one no Alarm object has (an alarm deleted while triggered).
func (c *controller) setAlarmOp(req controlRequest) (controlResult, error) {
	ref, err := alarmEntity(req)
	if err != nil {
		return nil, err
	}
	status := types.ManagedEntityStatus("")
	if req.Status != nil {
		status = types.ManagedEntityStatus(*req.Status)
	}
	switch status {
	case types.ManagedEntityStatusGray, types.ManagedEntityStatusGreen, types.ManagedEntityStatusYellow, types.ManagedEntityStatusRed:
	default:
		return nil, badRequest("status %q: want gray, green, yellow or red", status)
	}
	if req.Alarm == "" {
		return nil, badRequest("alarm: want an Alarm id such as alarm-7")
	}
	s := setAlarmState(ref, req.Alarm, status, req.Acknowledged, c.now())
	return controlResult{"key": s.Key, "entity": ref.Value, "alarm": req.Alarm, "status": string(status)}, nil
}

// clearAlarmOp removes an alarm's state from an entity, as vCenter does once the alarm is
// back to green (or is reset): {"op":"clear_alarm","entity_type":"HostSystem","entity":"host-21","alarm":"alarm-11"}.
func (c *controller) clearAlarmOp(req controlRequest) (controlResult, error) {
	ref, err := alarmEntity(req)
	if err != nil {
		return nil, err
	}
	if !clearAlarmState(ref, req.Alarm) {
		return nil, notFound("alarm %s: not triggered on %s", req.Alarm, ref.Value)
	}
	return controlResult{"entity": ref.Value, "alarm": req.Alarm}, nil
}

func alarmPlansOf(x *extrasPlan) []alarmPlan {
	if x == nil {
		return nil
	}
	return x.alarms
}

// pitfallAlarms are the pitfalls scenario's triggered alarms: a red consolidation alarm on the
// demo's VM that needs consolidation and a red snapshot size alarm on the VM whose snapshot holds
// 30 % of its disk (both for VSphereAlarmRed), a yellow memory alarm on a host, the full
// datastore's red usage alarm acknowledged (no alert), a cleared (green) state, and a red state
// of an alarm deleted while triggered (its name cannot be read).
func pitfallAlarms(now time.Time) []alarmPlan {
	ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Second) }
	return []alarmPlan{
		{"VirtualMachine", "DC0_C0_RP0_VM3", "alarm-7", types.ManagedEntityStatusRed, false, ago(2 * time.Hour)},
		{"VirtualMachine", "pitfall-snapshot-30pct", "alarm-101", types.ManagedEntityStatusRed, false, ago(90 * time.Minute)},
		{"HostSystem", slowHost, "alarm-11", types.ManagedEntityStatusYellow, false, ago(30 * time.Minute)},
		{"Datastore", datastoreName, "alarm-17", types.ManagedEntityStatusRed, true, ago(3 * time.Hour)},
		{"HostSystem", "DC0_H0", "alarm-12", types.ManagedEntityStatusGreen, false, ago(time.Hour)},
		{"VirtualMachine", "pitfall-chain-5", goneAlarm, types.ManagedEntityStatusRed, false, ago(time.Hour)},
	}
}

// alarmReadFaults counts the RetrieveProperties(Ex) calls on Alarm objects still to be refused.
var alarmReadFaults faultBudget

// faultBudget is a number of requests to refuse.
type faultBudget struct {
	sync.Mutex
	left int
}

// take reports whether to refuse this RetrieveProperties(Ex): it reads Alarm objects and the
// budget is not spent.
func (b *faultBudget) take(body []byte) bool {
	if !bytes.Contains(body, []byte(`type="Alarm"`)) {
		return false
	}
	b.Lock()
	defer b.Unlock()
	if b.left <= 0 {
		return false
	}
	b.left--
	return true
}

// writeAlarmReadFault answers as vCenter does when vpxd fails a property read internally
// (SystemError, e.g. while its database is unavailable).
func writeAlarmReadFault(w http.ResponseWriter) {
	writeFault(w, "SystemError", "A general system error occurred: vcsim: alarm read refused (fail_alarm_reads)",
		"<reason>vcsim: alarm read refused</reason>")
}

// failAlarmReadsOp makes the next `count` RetrieveProperties(Ex) calls that read Alarm objects
// fail with SystemError: {"op":"fail_alarm_reads","count":1}; 0 ends the refusals. It answers
// how many refusals were left before ("left"), so a test sees whether an alarm was read.
func (c *controller) failAlarmReadsOp(req controlRequest) (controlResult, error) {
	if *req.Count < 0 {
		return nil, badRequest("count %d: want 0 or more", *req.Count)
	}
	alarmReadFaults.Lock()
	left := alarmReadFaults.left
	alarmReadFaults.left = *req.Count
	alarmReadFaults.Unlock()
	return controlResult{"count": *req.Count, "left": left}, nil
}
