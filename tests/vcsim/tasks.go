// tasks.go owns vCenter's task history where govmomi's simulator has none.
//
// vCenter keeps two views of tasks: Task objects, which it drops a while after they end (the
// vpxd setting task.maxAge, minutes), and the task history in its database, read through a
// TaskHistoryCollector (TaskManager.CreateCollectorForTasks; vSphere Web Services API,
// TaskManager and TaskHistoryCollector). The simulator keeps every Task object for ever and has
// no CreateCollectorForTasks, so a client that reads the outcome of past tasks from their Task
// objects passes here and fails on vCenter.
//
// The wrapper takes the TaskManager's place in the registry (and its handler slot, so
// recentTask still follows new tasks) and adds:
//   - CreateCollectorForTasks: a collector over every task seen (live or dropped), filtered by
//     TaskFilterSpec.time (queuedTime, startedTime or completedTime against beginTime and
//     endTime) and .entity (one object), oldest queueTime first, as vCenter's database has them;
//   - ReadNextTasks, ReadPreviousTasks, RewindCollector, ResetCollector, SetCollectorPageSize
//     (latestPage), DestroyCollector on it, with the EventHistoryCollector's semantics;
//   - with -task-retention D > 0: a Task object that has ended is removed from the registry D
//     after the wrapper first saw it ended (RetrieveProperties on it then answers
//     ManagedObjectNotFound, as vCenter does); its last info stays in the history.
package main

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// taskManager wraps the simulator's TaskManager. Embedded by value: the PropertyCollector finds
// the mo type through the first field (as perf.go's wrapper).
type taskManager struct {
	simulator.TaskManager

	retention time.Duration // 0: Task objects are kept (the simulator's behaviour)

	mu      sync.Mutex
	order   []types.ManagedObjectReference // every Task seen, in creation order
	dropped map[string]types.TaskInfo      // last info of the Task objects removed
	endedAt map[string]time.Time           // when a live task was first seen ended
	stats   taskStats
}

// taskStats counts what the task shims did, for /_stats.
type taskStats struct {
	Seen               int64 `json:"seen"`
	Dropped            int64 `json:"dropped"`
	CollectorsCreated  int64 `json:"collectors_created"`
	ReadNextTasksCalls int64 `json:"read_next_tasks_calls"`
	TaskInfosRead      int64 `json:"task_infos_read"`
}

// installTaskManager puts the wrapper in the TaskManager's place and, with a retention, starts
// dropping ended Task objects.
func installTaskManager(content types.ServiceContent, retention time.Duration) (*taskManager, error) {
	orig, ok := simulator.Map.Get(*content.TaskManager).(*simulator.TaskManager)
	if !ok {
		return nil, fmt.Errorf("TaskManager %s not found", content.TaskManager.Value)
	}
	m := &taskManager{
		TaskManager: simulator.TaskManager{TaskManager: orig.TaskManager},
		retention:   retention,
		dropped:     map[string]types.TaskInfo{},
		endedAt:     map[string]time.Time{},
	}
	// Tasks made while the scenario was built are in recentTask (at most 200): the rest of the
	// history starts with the wrapper.
	m.order = append(m.order, orig.RecentTask...)
	m.stats.Seen = int64(len(m.order))
	simulator.Map.RemoveHandler(orig)
	simulator.Map.Put(m)
	simulator.Map.AddHandler(m)
	if retention > 0 {
		go m.dropEnded()
	}
	return m, nil
}

// PutObject follows new Task objects (and keeps recentTask, as the simulator's does).
func (m *taskManager) PutObject(obj mo.Reference) {
	m.TaskManager.PutObject(obj)
	ref := obj.Reference()
	if ref.Type != "Task" {
		return
	}
	m.mu.Lock()
	m.order = append(m.order, ref)
	m.stats.Seen++
	m.mu.Unlock()
}

// info is a task's current info: the live object's, else the one kept when it was dropped.
func (m *taskManager) info(ref types.ManagedObjectReference) (types.TaskInfo, bool) {
	m.mu.Lock()
	kept, gone := m.dropped[ref.Value]
	m.mu.Unlock()
	if gone {
		return kept, true
	}
	t, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return types.TaskInfo{}, false
	}
	var info types.TaskInfo
	simulator.Map.WithLock(t, func() { info = t.Info })
	return info, true
}

// dropEnded removes ended Task objects `retention` after they were first seen ended.
func (m *taskManager) dropEnded() {
	tick := m.retention / 4
	if tick > 250*time.Millisecond {
		tick = 250 * time.Millisecond
	}
	for range time.Tick(tick) {
		m.mu.Lock()
		refs := append([]types.ManagedObjectReference{}, m.order...)
		m.mu.Unlock()
		now := time.Now()
		for _, ref := range refs {
			info, ok := m.info(ref)
			if !ok || (info.State != types.TaskInfoStateSuccess && info.State != types.TaskInfoStateError) {
				continue
			}
			m.mu.Lock()
			_, gone := m.dropped[ref.Value]
			first, seen := m.endedAt[ref.Value]
			if !seen {
				m.endedAt[ref.Value] = now
			}
			due := !gone && seen && now.Sub(first) >= m.retention
			if due {
				m.dropped[ref.Value] = info
				m.stats.Dropped++
			}
			m.mu.Unlock()
			if due {
				simulator.Map.Remove(ref)
			}
		}
	}
}

func (m *taskManager) statsSnapshot() taskStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// CreateCollectorForTasks makes a session's collector over the tasks the filter matches.
func (m *taskManager) CreateCollectorForTasks(ctx *simulator.Context, req *types.CreateCollectorForTasks) soap.HasFault {
	m.mu.Lock()
	refs := append([]types.ManagedObjectReference{}, m.order...)
	m.stats.CollectorsCreated++
	m.mu.Unlock()
	var infos []types.TaskInfo
	for _, ref := range refs {
		if info, ok := m.info(ref); ok && taskMatches(info, req.Filter) {
			infos = append(infos, info)
		}
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].QueueTime.Before(infos[j].QueueTime) })
	c := &taskCollector{manager: m, infos: infos, pageSize: 10}
	c.Self = types.ManagedObjectReference{Type: "TaskHistoryCollector"}
	c.Filter = req.Filter
	c.fillPage()
	ref := ctx.Session.Put(c).Reference()
	return &methods.CreateCollectorForTasksBody{Res: &types.CreateCollectorForTasksResponse{Returnval: ref}}
}

// taskMatches applies the filter's time and entity parts (what the exporter and most clients
// use); the other parts (userName, state, alarm, …) are not simulated.
func taskMatches(info types.TaskInfo, f types.TaskFilterSpec) bool {
	if f.Entity != nil && (info.Entity == nil || *info.Entity != f.Entity.Entity) {
		return false
	}
	if f.Time == nil {
		return true
	}
	var at *time.Time
	switch f.Time.TimeType {
	case types.TaskFilterSpecTimeOptionStartedTime:
		at = info.StartTime
	case types.TaskFilterSpecTimeOptionCompletedTime:
		at = info.CompleteTime
	default:
		q := info.QueueTime
		at = &q
	}
	if at == nil {
		return false
	}
	if f.Time.BeginTime != nil && at.Before(*f.Time.BeginTime) {
		return false
	}
	if f.Time.EndTime != nil && at.After(*f.Time.EndTime) {
		return false
	}
	return true
}

// taskCollector is one TaskHistoryCollector: the matching infos as of its creation.
type taskCollector struct {
	mo.TaskHistoryCollector

	manager  *taskManager
	infos    []types.TaskInfo
	pos      int // index of the next info ReadNextTasks returns
	pageSize int
}

func (c *taskCollector) fillPage() {
	start := len(c.infos) - c.pageSize
	if start < 0 {
		start = 0
	}
	c.LatestPage = append([]types.TaskInfo{}, c.infos[start:]...)
}

func (c *taskCollector) SetCollectorPageSize(ctx *simulator.Context, req *types.SetCollectorPageSize) soap.HasFault {
	body := &methods.SetCollectorPageSizeBody{}
	if req.MaxCount < 0 {
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "maxCount"})
		return body
	}
	c.pageSize = int(req.MaxCount)
	c.fillPage()
	body.Res = new(types.SetCollectorPageSizeResponse)
	return body
}

func (c *taskCollector) RewindCollector(ctx *simulator.Context, req *types.RewindCollector) soap.HasFault {
	c.pos = 0
	return &methods.RewindCollectorBody{Res: new(types.RewindCollectorResponse)}
}

func (c *taskCollector) ResetCollector(ctx *simulator.Context, req *types.ResetCollector) soap.HasFault {
	c.pos = len(c.infos)
	return &methods.ResetCollectorBody{Res: new(types.ResetCollectorResponse)}
}

func (c *taskCollector) ReadNextTasks(ctx *simulator.Context, req *types.ReadNextTasks) soap.HasFault {
	body := &methods.ReadNextTasksBody{}
	if req.MaxCount <= 0 {
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "maxCount"})
		return body
	}
	end := c.pos + int(req.MaxCount)
	if end > len(c.infos) {
		end = len(c.infos)
	}
	body.Res = &types.ReadNextTasksResponse{Returnval: c.infos[c.pos:end]}
	c.manager.mu.Lock()
	c.manager.stats.ReadNextTasksCalls++
	c.manager.stats.TaskInfosRead += int64(end - c.pos)
	c.manager.mu.Unlock()
	c.pos = end
	return body
}

func (c *taskCollector) ReadPreviousTasks(ctx *simulator.Context, req *types.ReadPreviousTasks) soap.HasFault {
	body := &methods.ReadPreviousTasksBody{}
	if req.MaxCount <= 0 {
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "maxCount"})
		return body
	}
	start := c.pos - int(req.MaxCount)
	if start < 0 {
		start = 0
	}
	body.Res = &types.ReadPreviousTasksResponse{Returnval: c.infos[start:c.pos]}
	c.pos = start
	return body
}

func (c *taskCollector) DestroyCollector(ctx *simulator.Context, req *types.DestroyCollector) soap.HasFault {
	ctx.Session.Remove(req.This)
	return &methods.DestroyCollectorBody{Res: new(types.DestroyCollectorResponse)}
}
