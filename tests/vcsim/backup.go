// backup.go owns the backup situations a scenario adds once its VMs exist: custom attribute
// definitions and values (CustomFieldsManager), datastore file systems and space, and the event
// history (EventManager.PostEvent, tasks the simulator runs, ReconfigVM_Task), together with the
// facts they make: what the exporter's backup checks must report with their default settings.
//
// Per-VM inputs (notes, CBT, disk.EnableUUID, attribute values, reconfigurations) live in the VM
// plans; this file holds what spans VMs. It does not build VMs or snapshots (build.go does).
package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// extrasPlan is what a scenario adds after its VMs are built.
type extrasPlan struct {
	// vmFields are custom field definitions for VirtualMachine, globalFields for every type
	// (moType ""), in the order they are defined.
	vmFields     []string
	globalFields []string
	// datastores edits datastores by name.
	datastores map[string]datastorePlan
	events     []eventPlan
	// backupUsers are the backup accounts the facts assume the exporter is told
	// (last_backup_event_users).
	backupUsers []string
	// alarms are triggered alarm states set once the inventory is complete (alarms.go).
	alarms []alarmPlan
	// window is the read-back window the event facts assume (events older than now-window are
	// not counted); 0 counts every event.
	window time.Duration
	now    time.Time
}

// datastorePlan is a datastore's file system and space. The simulator makes local datastores
// ("OTHER", space of the directory it lives in) and has no API for VMFS ones, so they are edited.
type datastorePlan struct {
	fsType      string   // summary.type: VMFS, NFS, …
	extents     []string // VMFS extents' diskName (backing LUNs); none for other types
	capacity    int64
	free        int64
	uncommitted int64
	accessible  bool
}

// eventPlan is one event of the history: a task (TaskEvent) or an EventEx.
type eventPlan struct {
	vm   string    // the VM's name
	at   time.Time // createdTime
	user string    // userName (and the task's reason)

	// task is a TaskEvent's info.descriptionId, e.g. VirtualMachine.createSnapshot. The task is
	// a real simulator Task that ends in success, or in error when fail is set, took after at.
	// With final the event's info holds the final state (as vCenter shows past tasks);
	// otherwise it says "queued" (as when vCenter posts it) and the exporter must follow the task.
	task  string
	fail  bool
	final bool
	took  time.Duration
	// snapshot names the snapshot a create task made; with result it is the task's result, else
	// the task has no result and the exporter must match it by time.
	snapshot string
	result   bool

	// eventEx is an EventEx's eventTypeId (when task is "").
	eventEx string
}

// snapshotOperation maps a task's descriptionId or an EventEx's id to the exporter's operation
// label, "" for what the backup checks do not count.
func snapshotOperation(id string) string {
	switch id {
	case "VirtualMachine.createSnapshot", "VirtualMachine.createSnapshotEx":
		return "create"
	case "vm.Snapshot.remove", "VirtualMachine.removeAllSnapshots":
		return "remove"
	case "VirtualMachine.consolidateDisks", "com.vmware.vc.VmDiskConsolidatedEvent",
		"com.vmware.vc.VmDiskFailedToConsolidateEvent", "com.vmware.vc.VmDiskConsolidationNeeded":
		return "consolidate"
	}
	return ""
}

// eventFailed: an EventEx that reports a failure.
func eventFailed(id string) bool {
	return id == "com.vmware.vc.VmDiskFailedToConsolidateEvent" || id == "com.vmware.vc.VmDiskConsolidationNeeded"
}

// builtVM is what the extras need of a VM built from its plan.
type builtVM struct {
	ref    types.ManagedObjectReference
	plan   *vmPlan
	layout *layout
}

// applyExtras defines the custom fields, sets every VM's values, edits the datastores and posts
// the events. VMs are looked up by name.
func applyExtras(ctx context.Context, c *vim25.Client, x *extrasPlan, vms map[string]*builtVM) ([]CustomFieldFacts, error) {
	fields, err := defineFields(ctx, c, x)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(vms))
	for name := range vms {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := setFields(ctx, c, fields, vms[name]); err != nil {
			return nil, err
		}
	}
	if err := editDatastores(x.datastores); err != nil {
		return nil, err
	}
	for i, e := range x.events {
		vm, ok := vms[e.vm]
		if !ok {
			return nil, fmt.Errorf("event %d: no VM %q", i, e.vm)
		}
		if _, _, err := postPlannedEvent(ctx, c, e, vm); err != nil {
			return nil, fmt.Errorf("event %d (%s%s on %s): %w", i, e.task, e.eventEx, e.vm, err)
		}
	}
	return fields, nil
}

// defineFields adds the custom field definitions through CustomFieldsManager.AddCustomFieldDef.
func defineFields(ctx context.Context, c *vim25.Client, x *extrasPlan) ([]CustomFieldFacts, error) {
	var out []CustomFieldFacts
	add := func(name, moType string) error {
		res, err := methods.AddCustomFieldDef(ctx, c, &types.AddCustomFieldDef{
			This: *c.ServiceContent.CustomFieldsManager, Name: name, MoType: moType,
		})
		if err != nil {
			return fmt.Errorf("AddCustomFieldDef %s: %w", name, err)
		}
		out = append(out, CustomFieldFacts{Key: res.Returnval.Key, Name: name, ManagedObjectType: moType})
		return nil
	}
	for _, name := range x.vmFields {
		if err := add(name, "VirtualMachine"); err != nil {
			return nil, err
		}
	}
	for _, name := range x.globalFields {
		if err := add(name, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setFields sets a VM's custom attribute values through CustomFieldsManager.SetField, in the
// order of the definitions.
func setFields(ctx context.Context, c *vim25.Client, fields []CustomFieldFacts, vm *builtVM) error {
	for _, f := range fields {
		value, ok := vm.plan.fields[f.Name]
		if !ok {
			continue
		}
		_, err := methods.SetField(ctx, c, &types.SetField{
			This: *c.ServiceContent.CustomFieldsManager, Entity: vm.ref, Key: f.Key, Value: value,
		})
		if err != nil {
			return fmt.Errorf("SetField %s on %s: %w", f.Name, vm.plan.name, err)
		}
	}
	for name := range vm.plan.fields {
		if !hasField(fields, name) {
			return fmt.Errorf("%s: value for undefined field %q", vm.plan.name, name)
		}
	}
	return nil
}

func hasField(fields []CustomFieldFacts, name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// editDatastores sets summary (type, capacity, freeSpace, uncommitted, accessible) and info
// (VmfsDatastoreInfo with extents for VMFS) of the planned datastores.
func editDatastores(plans map[string]datastorePlan) error {
	for name, p := range plans {
		ds := datastoreByName(name)
		if ds == nil {
			return fmt.Errorf("datastore %s: not in the inventory", name)
		}
		p := p
		simulator.Map.WithLock(ds, func() {
			base := *ds.Info.GetDatastoreInfo()
			base.FreeSpace = p.free
			base.MaxFileSize = p.capacity
			if p.fsType == "VMFS" {
				vmfs := &types.HostVmfsVolume{
					HostFileSystemVolume: types.HostFileSystemVolume{Type: "VMFS", Name: name, Capacity: p.capacity},
					BlockSizeMb:          1,
					MajorVersion:         6,
					Version:              "6.82",
					Uuid:                 fmt.Sprintf("5f0c%04x-0000-0000-0000-000000000000", len(name)),
				}
				for i, disk := range p.extents {
					vmfs.Extent = append(vmfs.Extent, types.HostScsiDiskPartition{DiskName: disk, Partition: int32(i + 1)})
				}
				ds.Info = &types.VmfsDatastoreInfo{DatastoreInfo: base, Vmfs: vmfs}
			} else {
				ds.Info = &types.NasDatastoreInfo{DatastoreInfo: base}
			}
			summary := ds.Summary
			summary.Type = p.fsType
			summary.Capacity = p.capacity
			summary.FreeSpace = p.free
			summary.Uncommitted = p.uncommitted
			summary.Accessible = p.accessible
			ds.Summary = summary
		})
	}
	return nil
}

func datastoreByName(name string) *simulator.Datastore {
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == name {
			return ds
		}
	}
	return nil
}

// postPlannedEvent posts one planned event through EventManager.PostEvent, after running its
// task, and returns the event's key and the task. PostEvent stamps createdTime now and userName
// from the session; the posted event is set to the planned time and user right after (the
// simulator keeps the posted object itself, and a collector's update is read 250 ms later).
func postPlannedEvent(ctx context.Context, c *vim25.Client, e eventPlan, vm *builtVM) (int32, types.ManagedObjectReference, error) {
	arg := &types.VmEventArgument{
		EntityEventArgument: types.EntityEventArgument{Name: vm.plan.name},
		Vm:                  vm.ref,
	}
	base := types.Event{Vm: arg, UserName: e.user, FullFormattedMessage: e.task + e.eventEx}
	var event types.BaseEvent
	var task types.ManagedObjectReference
	if e.task != "" {
		info, err := runTask(e, vm)
		if err != nil {
			return 0, task, err
		}
		task = info.Task
		event = &types.TaskEvent{Event: base, Info: info}
	} else {
		severity := "info"
		if eventFailed(e.eventEx) {
			severity = "warning"
		}
		event = &types.EventEx{Event: base, EventTypeId: e.eventEx, Severity: severity}
	}
	if _, err := methods.PostEvent(ctx, c, &types.PostEvent{This: *c.ServiceContent.EventManager, EventToPost: event}); err != nil {
		return 0, task, fmt.Errorf("PostEvent: %w", err)
	}
	posted := event.GetEvent()
	simulator.Map.WithLock(simulator.Map.EventManager(), func() {
		posted.CreatedTime = e.at
		posted.UserName = e.user
	})
	return posted.Key, task, nil
}

// runTask runs a task on the VM in the simulator (CreateTask, Run) to its end, sets its times
// and user as planned, and returns the TaskInfo its TaskEvent carries.
func runTask(e eventPlan, vm *builtVM) (types.TaskInfo, error) {
	obj := simulator.Map.Get(vm.ref)
	if obj == nil {
		return types.TaskInfo{}, fmt.Errorf("VM %s gone", vm.ref.Value)
	}
	var result types.AnyType
	if e.snapshot != "" && e.result {
		ref, ok := snapshotRef(vm, e.snapshot)
		if !ok {
			return types.TaskInfo{}, fmt.Errorf("no snapshot %q", e.snapshot)
		}
		result = ref
	}
	task := simulator.CreateTask(obj, "backupTask", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		if e.fail {
			return nil, &types.InvalidState{}
		}
		return result, nil
	})
	task.Info.DescriptionId = e.task
	task.Info.Name = e.task[strings.LastIndexByte(e.task, '.')+1:]
	task.Info.EntityName = vm.plan.name
	task.Info.Reason = &types.TaskReasonUser{UserName: e.user}
	task.Run()
	start, end := e.at, e.at.Add(e.took)
	task.Info.QueueTime = start
	task.Info.StartTime = &start
	task.Info.CompleteTime = &end
	if task.Info.Error != nil {
		task.Info.Error.LocalizedMessage = "The operation is not allowed in the current state."
	}
	info := task.Info
	if !e.final {
		info.State = types.TaskInfoStateQueued
		info.StartTime, info.CompleteTime, info.Result, info.Error = nil, nil, nil, nil
	}
	return info, nil
}

// snapshotRef finds a VM's snapshot by name in its replayed layout (kept for small scenarios).
func snapshotRef(vm *builtVM, name string) (types.ManagedObjectReference, bool) {
	if vm.layout == nil {
		return types.ManagedObjectReference{}, false
	}
	for _, s := range vm.layout.snaps {
		if s.op.name == name {
			return s.ref, true
		}
	}
	return types.ManagedObjectReference{}, false
}

// reconfigureVM runs the plan's ReconfigVM_Tasks (after the snapshots), then sets the
// VmReconfiguredEvent each posted to the planned time and user. A grown disk's new capacity goes
// into the plan, so the facts state it.
func reconfigureVM(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, plan *vmPlan) error {
	for _, r := range plan.reconfigure {
		spec := types.VirtualMachineConfigSpec{NumCPUs: plan.numCPUs}
		if r.growDisk >= 0 {
			disk, err := diskDevice(ref, int32(firstDiskKey+r.growDisk))
			if err != nil {
				return err
			}
			disk.CapacityInKB = r.growTo / 1024
			disk.CapacityInBytes = r.growTo
			spec = types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
				&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: disk},
			}}
			plan.disks[r.growDisk].capacityBytes = r.growTo
		}
		res, err := methods.ReconfigVM_Task(ctx, c, &types.ReconfigVM_Task{This: ref, Spec: spec})
		if err == nil {
			_, err = taskResult(res.Returnval)
		}
		if err != nil {
			return fmt.Errorf("ReconfigVM_Task %s: %w", plan.name, err)
		}
		event, err := newestEvent(ctx, c, ref, "VmReconfiguredEvent")
		if err != nil {
			return err
		}
		event.GetEvent().CreatedTime = r.at
		event.GetEvent().UserName = r.user
	}
	return nil
}

// diskDevice is a copy of the VM's virtual disk with that device key.
func diskDevice(ref types.ManagedObjectReference, key int32) (*types.VirtualDisk, error) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, fmt.Errorf("%s: not a VirtualMachine", ref.Value)
	}
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok && disk.Key == key {
			copied := *disk
			return &copied, nil
		}
	}
	return nil, fmt.Errorf("%s: no disk %d", ref.Value, key)
}

// newestEvent is the newest event of one type about a VM (QueryEvents hands out the objects the
// simulator keeps, so editing it edits the history).
func newestEvent(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, kind string) (types.BaseEvent, error) {
	res, err := methods.QueryEvents(ctx, c, &types.QueryEvents{
		This: *c.ServiceContent.EventManager,
		Filter: types.EventFilterSpec{
			EventTypeId: []string{kind},
			Entity:      &types.EventFilterSpecByEntity{Entity: ref, Recursion: types.EventFilterSpecRecursionOptionSelf},
			MaxCount:    1000,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("QueryEvents: %w", err)
	}
	var newest types.BaseEvent
	for _, e := range res.Returnval {
		if newest == nil || e.GetEvent().Key > newest.GetEvent().Key {
			newest = e
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("%s: no %s posted", ref.Value, kind)
	}
	return newest, nil
}

// defaultBackupPatterns are the exporter's default backup_snapshot_patterns: which snapshots
// are a backup product's.
var defaultBackupPatterns = regexp.MustCompile(`(?i)VEEAM BACKUP TEMPORARY SNAPSHOT|_VCB-BACKUP_|NBU_SNAPSHOT|GX_BACKUP|RUBRIK`)

// isWindows is how the exporter tells a Windows guest: guest.guestFamily (which the simulator
// derives from the guest id) or a guest id starting with "win".
func isWindows(guestID string) bool { return strings.HasPrefix(guestID, "win") }

// consistencyLevel is the best backup consistency a VM can get: powered off → application;
// Tools running on Windows with disk.EnableUUID TRUE → application; Tools running →
// filesystem; else crash.
func consistencyLevel(power types.VirtualMachinePowerState, toolsRunningStatus string, windows bool, enableUUID string) string {
	running := toolsRunningStatus == toolsRunning || toolsRunningStatus == toolsExecutingScripts
	switch {
	case power == poweredOff:
		return "application"
	case running && windows && strings.EqualFold(enableUUID, "TRUE"):
		return "application"
	case running:
		return "filesystem"
	}
	return "crash"
}

// consolidationMatch: a consolidateDisks task and the consolidation event vCenter posts for it
// (same VM, same result) are at most this far apart, and count as one consolidation.
const consolidationMatch = 5 * time.Minute

// consolidationReport is a consolidation counted from a task or an event, not yet matched by
// the other.
type consolidationReport struct {
	vm, result string
	at         time.Time
	task       bool
}

// sameConsolidation reports whether this report is the other half of one counted already (and
// then takes that one off the list); otherwise it is counted and waits for its other half.
func sameConsolidation(pairs *[]consolidationReport, vm, result string, at time.Time, task bool) bool {
	for i, c := range *pairs {
		d := c.at.Sub(at)
		if d < 0 {
			d = -d
		}
		if c.vm == vm && c.result == result && c.task != task && d <= consolidationMatch {
			*pairs = append((*pairs)[:i], (*pairs)[i+1:]...)
			return true
		}
	}
	*pairs = append(*pairs, consolidationReport{vm: vm, result: result, at: at, task: task})
	return false
}

// extrasFacts completes the facts with what the extras make: the field definitions, the planned
// datastores with their backup snapshots, and from the events inside the window
// the task counts, each VM's last tasks, the snapshots' creators and the reconfigurations made
// while a snapshot existed.
func extrasFacts(f *Facts, x *extrasPlan, fields []CustomFieldFacts, vms map[string]*builtVM) {
	f.CustomFields = fields
	f.EventWindowSeconds = x.window.Seconds()
	byName := map[string]*VMFacts{}
	for i := range f.VMs {
		byName[f.VMs[i].Name] = &f.VMs[i]
	}

	for name, p := range x.datastores {
		df := DatastoreFacts{
			ID: datastoreByName(name).Self.Value, Name: name, Type: p.fsType, ExtentDisks: append([]string{}, p.extents...),
			CapacityBytes: p.capacity, FreeBytes: p.free, UncommittedBytes: p.uncommitted, Accessible: p.accessible,
		}
		for _, vm := range f.VMs {
			if vm.DatastoreName != name {
				continue
			}
			if vm.BackupSnapshot {
				df.BackupSnapshots++
			}
			df.SnapshotBytes += vm.SnapshotFileBytes
		}
		f.Datastores = append(f.Datastores, df)
	}
	sort.Slice(f.Datastores, func(i, j int) bool { return f.Datastores[i].Name < f.Datastores[j].Name })

	inWindow := func(at time.Time) bool { return x.window == 0 || !at.Before(x.now.Add(-x.window)) }
	taskDurationFacts(f, x, byName, inWindow)
	counts := map[[2]string]int{}
	var pairs []consolidationReport
	last := map[string]map[[2]string]SnapshotTaskFacts{}
	for _, e := range x.events {
		id := e.task + e.eventEx
		op := snapshotOperation(id)
		if op == "" || !inWindow(e.at) {
			continue
		}
		result, at := "success", e.at
		if e.fail || eventFailed(id) {
			result = "error"
		}
		if e.task != "" {
			at = e.at.Add(e.took)
		}
		key := [2]string{op, result}
		if op != "consolidate" || !sameConsolidation(&pairs, e.vm, result, at, e.task != "") {
			counts[key]++
		}
		if last[e.vm] == nil {
			last[e.vm] = map[[2]string]SnapshotTaskFacts{}
		}
		if prev, ok := last[e.vm][key]; !ok || float64(at.Unix()) >= prev.LastTimestampSeconds {
			last[e.vm][key] = SnapshotTaskFacts{Operation: op, Result: result, LastTimestampSeconds: float64(at.Unix()), UserName: e.user}
		}
		if op == "create" && result == "success" && e.snapshot != "" {
			vm := byName[e.vm]
			for i := range vm.Snapshots {
				if vm.Snapshots[i].Name == e.snapshot {
					vm.Snapshots[i].CreatedBy = e.user
				}
			}
		}
	}
	for key, n := range counts {
		f.SnapshotTaskEvents = append(f.SnapshotTaskEvents, TaskCountFacts{Operation: key[0], Result: key[1], Count: n})
	}
	sort.Slice(f.SnapshotTaskEvents, func(i, j int) bool {
		a, b := f.SnapshotTaskEvents[i], f.SnapshotTaskEvents[j]
		return a.Operation+"/"+a.Result < b.Operation+"/"+b.Result
	})
	for name, tasks := range last {
		vm := byName[name]
		for _, t := range tasks {
			vm.SnapshotTasks = append(vm.SnapshotTasks, t)
		}
		sort.Slice(vm.SnapshotTasks, func(i, j int) bool {
			a, b := vm.SnapshotTasks[i], vm.SnapshotTasks[j]
			return a.Operation+"/"+a.Result < b.Operation+"/"+b.Result
		})
	}

	for name, b := range vms {
		vm := byName[name]
		for _, r := range b.plan.reconfigure {
			if !inWindow(r.at) || !heldSnapshotAt(vm, r.at) {
				continue
			}
			vm.ReconfiguredWithSnapshots++
			if r.growDisk >= 0 {
				vm.DiskChangedWithSnapshots++
			}
		}
	}
}

// taskDurationFacts sets what the tasks of the window say about durations: every task's
// duration (start e.at, completion e.at+took, as runTask sets them) by operation and result,
// each VM's last task of each operation, and the newest successful removal a backup account ran.
func taskDurationFacts(f *Facts, x *extrasPlan, byName map[string]*VMFacts, inWindow func(time.Time) bool) {
	f.BackupEventUsers = append([]string{}, x.backupUsers...)
	observed := map[[2]string][]float64{}
	var keys [][2]string
	last := map[string]map[string]eventPlan{}
	for _, e := range x.events {
		op := snapshotOperation(e.task)
		if e.task == "" || op == "" || !inWindow(e.at) {
			continue
		}
		result := "success"
		if e.fail {
			result = "error"
		}
		key := [2]string{op, result}
		if _, seen := observed[key]; !seen {
			keys = append(keys, key)
		}
		observed[key] = append(observed[key], e.took.Seconds())
		if last[e.vm] == nil {
			last[e.vm] = map[string]eventPlan{}
		}
		if prev, ok := last[e.vm][op]; !ok || !e.at.Add(e.took).Before(prev.at.Add(prev.took)) {
			last[e.vm][op] = e
		}
		if op == "remove" && !e.fail && isBackupUser(x.backupUsers, e.user) {
			vm := byName[e.vm]
			if end := float64(e.at.Add(e.took).UnixNano()) / 1e9; end > vm.LastBackupFromEvents {
				vm.LastBackupFromEvents = end
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	for _, k := range keys {
		f.SnapshotTaskDurations = append(f.SnapshotTaskDurations, TaskDurationFacts{Operation: k[0], Result: k[1], Seconds: observed[k]})
	}
	for name, ops := range last {
		vm := byName[name]
		for op, e := range ops {
			result := "success"
			if e.fail {
				result = "error"
			}
			vm.SnapshotTaskDurations = append(vm.SnapshotTaskDurations, SnapshotDurationFacts{Operation: op, Result: result, Seconds: e.took.Seconds()})
		}
		sort.Slice(vm.SnapshotTaskDurations, func(i, j int) bool {
			return vm.SnapshotTaskDurations[i].Operation < vm.SnapshotTaskDurations[j].Operation
		})
	}
}

// isBackupUser: vCenter's user name is one of the accounts, without regard to case.
func isBackupUser(accounts []string, user string) bool {
	for _, a := range accounts {
		if strings.EqualFold(a, user) {
			return true
		}
	}
	return false
}

// heldSnapshotAt: the VM has a snapshot taken at or before t (none is ever removed in a build).
func heldSnapshotAt(vm *VMFacts, t time.Time) bool {
	for _, s := range vm.Snapshots {
		if s.CreateTimeSeconds <= float64(t.UnixNano())/1e9 {
			return true
		}
	}
	return false
}

// countBackupSnapshots sets each host's backup snapshots: the VMs on it that hold a snapshot a
// default backup pattern names.
func countBackupSnapshots(f *Facts) {
	perHost := map[string]int{}
	for _, vm := range f.VMs {
		if vm.BackupSnapshot {
			perHost[vm.HostName]++
		}
	}
	for i := range f.Hosts {
		f.Hosts[i].BackupSnapshots = perHost[f.Hosts[i].Name]
	}
}
