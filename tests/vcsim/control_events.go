// control_events.go owns the /_control op that adds to the event history at run time:
// post_event posts a snapshot task's TaskEvent (its task run by the simulator to success or
// error, the event saying "queued" as vCenter's does when the task starts) or an EventEx, through
// EventManager.PostEvent, which reports it to every event collector's latestPage.
package main

import (
	"context"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// postEventOp posts one event about a VM, now.
func (c *controller) postEventOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	if (req.Task == "") == (req.EventTypeID == "") {
		return nil, badRequest("post_event: set exactly one of task and event_type_id")
	}
	if req.Task != "" && snapshotOperation(req.Task) == "" {
		return nil, badRequest("post_event: task %q: want a snapshot task's descriptionId, such as VirtualMachine.createSnapshot", req.Task)
	}
	if req.EventTypeID != "" && req.Fail {
		return nil, badRequest("post_event: fail is for tasks")
	}
	var name string
	simulator.Map.WithLock(vm, func() { name = vm.Name })
	plan := eventPlan{
		vm: name, at: c.now(), user: req.User, task: req.Task, fail: req.Fail,
		took: time.Second, eventEx: req.EventTypeID,
	}
	built := &builtVM{ref: vm.Self, plan: &vmPlan{name: name}, layout: &layout{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, task, err := postPlannedEvent(ctx, c.client, plan, built)
	if err != nil {
		return nil, err
	}
	res := controlResult{"vm": vm.Self.Value, "key": key}
	if task != (types.ManagedObjectReference{}) {
		res["task"] = task.Value
	}
	return res, nil
}
