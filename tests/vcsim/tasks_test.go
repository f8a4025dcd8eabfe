package main

import (
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

func TestTaskFilterMatchesByTimeTypeAndEntity(t *testing.T) {
	at := func(s int) *time.Time { v := time.Unix(int64(1_800_000_000+s), 0); return &v }
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}
	other := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-2"}
	info := types.TaskInfo{Entity: &vm, QueueTime: *at(0), StartTime: at(10), CompleteTime: at(100)}
	running := types.TaskInfo{Entity: &vm, QueueTime: *at(0), StartTime: at(10)}
	byTime := func(kind types.TaskFilterSpecTimeOption, begin, end *time.Time) types.TaskFilterSpec {
		return types.TaskFilterSpec{Time: &types.TaskFilterSpecByTime{TimeType: kind, BeginTime: begin, EndTime: end}}
	}
	for _, c := range []struct {
		name   string
		info   types.TaskInfo
		filter types.TaskFilterSpec
		want   bool
	}{
		{"no filter", info, types.TaskFilterSpec{}, true},
		{"queued at the begin", info, byTime(types.TaskFilterSpecTimeOptionQueuedTime, at(0), nil), true},
		{"queued before the begin", info, byTime(types.TaskFilterSpecTimeOptionQueuedTime, at(1), nil), false},
		{"started in range", info, byTime(types.TaskFilterSpecTimeOptionStartedTime, at(5), at(20)), true},
		{"completed after the end", info, byTime(types.TaskFilterSpecTimeOptionCompletedTime, nil, at(99)), false},
		{"running has no completion", running, byTime(types.TaskFilterSpecTimeOptionCompletedTime, at(0), nil), false},
		{"its entity", info, types.TaskFilterSpec{Entity: &types.TaskFilterSpecByEntity{Entity: vm}}, true},
		{"another entity", info, types.TaskFilterSpec{Entity: &types.TaskFilterSpecByEntity{Entity: other}}, false},
	} {
		if got := taskMatches(c.info, c.filter); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
