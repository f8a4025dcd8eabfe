// alarms_test.go checks the alarm shim (alarms.go) in the control process: a state set through
// /_control is in the triggeredAlarmState of its entity and every ancestor up to the root folder
// as a client reads it, clearing it empties them again, an Alarm's name is read like any
// property, and fail_alarm_reads refuses exactly the reads it was told to.
package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// triggered reads an entity's triggeredAlarmState over the network.
func triggered(ctx context.Context, t *testing.T, pc *property.Collector, ref types.ManagedObjectReference) []types.AlarmState {
	t.Helper()
	var e mo.ManagedEntity
	if err := pc.RetrieveOne(ctx, ref, []string{"triggeredAlarmState"}, &e); err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	return e.TriggeredAlarmState
}

func hasState(states []types.AlarmState, key string, status types.ManagedEntityStatus) bool {
	for _, s := range states {
		if s.Key == key && s.OverallStatus == status {
			return true
		}
	}
	return false
}

func TestOpSetAlarmReachesEveryAncestorAndClearAlarmRemovesIt(t *testing.T) {
	inControlProcess(t)
	ctx := context.Background()
	c := controlLogin(ctx, t)
	pc := property.DefaultCollector(c)
	vm := simulator.Map.Any("VirtualMachine").(*simulator.VirtualMachine)
	var chain []types.ManagedObjectReference
	for ref := &vm.Self; ref != nil; ref = simulator.Map.Get(*ref).(mo.Entity).Entity().Parent {
		chain = append(chain, *ref)
	}
	if root := chain[len(chain)-1]; root != c.ServiceContent.RootFolder {
		t.Fatalf("the VM's ancestors end at %s, not the root folder", root)
	}
	answer := control(t, map[string]interface{}{"op": "set_alarm", "entity_type": "VirtualMachine", "entity": vm.Self.Value, "alarm": "alarm-7", "status": "red"})
	key := fmt.Sprint(answer["key"])
	if key != "alarm-7."+vm.Self.Value {
		t.Errorf("key %q", key)
	}
	for _, ref := range chain {
		if !hasState(triggered(ctx, t, pc, ref), key, types.ManagedEntityStatusRed) {
			t.Errorf("%s: no red %s", ref, key)
		}
	}
	control(t, map[string]interface{}{"op": "set_alarm", "entity_type": "VirtualMachine", "entity": vm.Self.Value, "alarm": "alarm-7", "status": "yellow", "acknowledged": true})
	states := triggered(ctx, t, pc, c.ServiceContent.RootFolder)
	if !hasState(states, key, types.ManagedEntityStatusYellow) || hasState(states, key, types.ManagedEntityStatusRed) {
		t.Errorf("the state is not replaced: %+v", states)
	}
	control(t, map[string]interface{}{"op": "clear_alarm", "entity_type": "VirtualMachine", "entity": vm.Self.Value, "alarm": "alarm-7"})
	for _, ref := range chain {
		if states := triggered(ctx, t, pc, ref); len(states) != 0 {
			t.Errorf("%s still lists %+v", ref, states)
		}
	}
	if status, _ := controlCall(t, fmt.Sprintf(`{"op":"clear_alarm","entity_type":"VirtualMachine","entity":%q,"alarm":"alarm-7"}`, vm.Self.Value)); status != http.StatusNotFound {
		t.Errorf("clearing an alarm not triggered: %d, want 404", status)
	}
	if status, _ := controlCall(t, fmt.Sprintf(`{"op":"set_alarm","entity_type":"VirtualMachine","entity":%q,"alarm":"alarm-7","status":"blue"}`, vm.Self.Value)); status != http.StatusBadRequest {
		t.Errorf("status blue: %d, want 400", status)
	}
	if status, _ := controlCall(t, `{"op":"set_alarm","entity_type":"VirtualMachine","entity":"vm-0","alarm":"alarm-7","status":"red"}`); status != http.StatusNotFound {
		t.Errorf("unknown entity: %d, want 404", status)
	}
}

func TestOpFailAlarmReadsRefusesExactlyThatManyAlarmReads(t *testing.T) {
	inControlProcess(t)
	ctx := context.Background()
	c := controlLogin(ctx, t)
	pc := property.DefaultCollector(c)
	alarm := types.ManagedObjectReference{Type: "Alarm", Value: "alarm-7"}
	read := func() (string, error) {
		var a mo.Alarm
		err := pc.RetrieveOne(ctx, alarm, []string{"info.name"}, &a)
		return a.Info.Name, err
	}
	if name, err := read(); err != nil || name != "Virtual machine Consolidation Needed status" {
		t.Fatalf("info.name %q, %v", name, err)
	}
	control(t, map[string]interface{}{"op": "fail_alarm_reads", "count": 1})
	var vm mo.VirtualMachine
	if err := pc.RetrieveOne(ctx, simulator.Map.Any("VirtualMachine").Reference(), []string{"name"}, &vm); err != nil {
		t.Errorf("a read of no Alarm is refused: %v", err)
	}
	if _, err := read(); err == nil {
		t.Error("the armed read succeeded")
	}
	if name, err := read(); err != nil || name == "" {
		t.Errorf("the read after: %q, %v", name, err)
	}
	if left := control(t, map[string]interface{}{"op": "fail_alarm_reads", "count": 0})["left"]; left != float64(0) {
		t.Errorf("left %v, want 0", left)
	}
}
