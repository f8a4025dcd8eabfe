// facts.go owns the facts file: what a test may assert about the served inventory, computed from
// the scenario plans and the replayed layouts, never read back from the simulator.
package main

import (
	"encoding/json"
	"sort"

	"github.com/vmware/govmomi/vim25/types"
)

// Facts is the -facts JSON document.
type Facts struct {
	URL      string      `json:"url"`
	Username string      `json:"username"`
	Password string      `json:"password"`
	Scenario string      `json:"scenario"`
	VMs      []VMFacts   `json:"vms"`
	Hosts    []HostFacts `json:"hosts"`
	Perf     *PerfFacts  `json:"perf"`
	// Alarms is the root folder's triggeredAlarmState as the scenario set it (alarms.go).
	Alarms []AlarmFacts `json:"alarms"`

	// What the backup checks read beyond VMs (see backup.go). Datastores are listed only when
	// the scenario plans them (golden, backup); hosts carry their backup snapshots.
	CustomFields []CustomFieldFacts `json:"custom_fields"`
	Datastores   []DatastoreFacts   `json:"datastores"`
	// SnapshotTaskEvents counts the snapshot task events of the history by operation and result.
	SnapshotTaskEvents []TaskCountFacts `json:"snapshot_task_events"`
	// Tags are the vSphere tags on VMs (tags.go), served by the REST API; empty for scenarios
	// without tags.
	Tags []TagFacts `json:"tags"`
	// EventWindowSeconds is the read-back window the event facts assume: events older than the
	// scenario's start minus it are not counted. 0: every event counts.
	EventWindowSeconds float64 `json:"event_window_seconds"`
	// SnapshotTaskDurations lists, by operation and result, how long each snapshot task of the
	// window ran (completeTime - startTime), in the order posted: the histogram's inputs.
	SnapshotTaskDurations []TaskDurationFacts `json:"snapshot_task_durations"`
	// BackupEventUsers are the backup accounts the event facts assume as the exporter's
	// last_backup_event_users (VMFacts.LastBackupFromEvents).
	BackupEventUsers []string `json:"backup_event_users"`
}

// TaskDurationFacts is one vsphere_snapshot_task_duration_seconds histogram's observations.
type TaskDurationFacts struct {
	Operation string    `json:"operation"`
	Result    string    `json:"result"`
	Seconds   []float64 `json:"seconds"`
}

// SnapshotDurationFacts is a VM's last snapshot task of one operation (whatever its result),
// with how long it ran: vsphere_vm_snapshot_task_last_duration_seconds.
type SnapshotDurationFacts struct {
	Operation string  `json:"operation"`
	Result    string  `json:"result"`
	Seconds   float64 `json:"seconds"`
}

// CustomFieldFacts is one custom field definition (CustomFieldsManager.field).
type CustomFieldFacts struct {
	Key               int32  `json:"key"`
	Name              string `json:"name"`
	ManagedObjectType string `json:"managed_object_type"` // "" for every type
}

// DatastoreFacts is one datastore's summary and info as planned, and what the VMs hold on it.
type DatastoreFacts struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	ExtentDisks      []string `json:"extent_disks"`
	CapacityBytes    int64    `json:"capacity_bytes"`
	FreeBytes        int64    `json:"free_bytes"`
	UncommittedBytes int64    `json:"uncommitted_bytes"`
	Accessible       bool     `json:"accessible"`
	// BackupSnapshots counts the VMs on it holding a snapshot a default pattern names.
	BackupSnapshots int `json:"backup_snapshots"`
	// SnapshotBytes sums the snapshot files (delta disks, .vmsn, .vmem) of its VMs that have
	// snapshots (files are read only for those).
	SnapshotBytes int64 `json:"snapshot_bytes"`
}

// TaskCountFacts is one vsphere_snapshot_task_events_total series.
type TaskCountFacts struct {
	Operation string `json:"operation"`
	Result    string `json:"result"`
	Count     int    `json:"count"`
}

// LastBackupFacts is one source's vsphere_vm_last_backup_* series of a VM.
type LastBackupFacts struct {
	Source           string  `json:"source"`
	TimestampSeconds float64 `json:"timestamp_seconds"` // 0 with a parse error
	ParseError       bool    `json:"parse_error"`
}

// SnapshotTaskFacts is a VM's last snapshot task of one operation and result.
type SnapshotTaskFacts struct {
	Operation            string  `json:"operation"`
	Result               string  `json:"result"`
	LastTimestampSeconds float64 `json:"last_timestamp_seconds"`
	UserName             string  `json:"user_name"`
}

// VMFacts describes one VM (templates included).
type VMFacts struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	HostName       string `json:"host_name"`
	ClusterName    string `json:"cluster_name"` // empty on a standalone host
	DatacenterName string `json:"datacenter_name"`
	GuestID        string `json:"guest_id"`
	PowerState     string `json:"power_state"`
	Template       bool   `json:"template"`
	// DiskCapacityBytes sums capacityInBytes (capacityInKB*1024 when that is 0) over the VM's disks.
	DiskCapacityBytes   int64  `json:"disk_capacity_bytes"`
	ConsolidationNeeded bool   `json:"consolidation_needed"`
	ToolsVersionStatus2 string `json:"tools_version_status2"` // empty when unset
	ToolsRunningStatus  string `json:"tools_running_status"`  // empty when unset
	ToolsVersion        string `json:"tools_version"`         // empty when unset
	SnapshotCount       int    `json:"snapshot_count"`
	// SnapshotChainDepth is the number of snapshots on the deepest root-to-leaf branch.
	SnapshotChainDepth     int             `json:"snapshot_chain_depth"`
	SnapshotTotalSizeBytes int64           `json:"snapshot_total_size_bytes"`
	Snapshots              []SnapshotFacts `json:"snapshots"` // depth-first, parents before children

	// The backup checks' inputs and what the exporter must make of them.
	DatastoreName string            `json:"datastore_name"`
	Annotation    string            `json:"annotation"`
	CustomValues  map[string]string `json:"custom_values"` // by field name
	CBTEnabled    bool              `json:"cbt_enabled"`
	EnableUUID    string            `json:"disk_enable_uuid"` // "" when unset
	Windows       bool              `json:"windows"`
	// BackupConsistency is application, filesystem or crash (see consistencyLevel).
	BackupConsistency string            `json:"backup_consistency"`
	LastBackup        []LastBackupFacts `json:"last_backup"` // by source, default sources
	// BackupSnapshot: the VM holds a snapshot a default backup pattern names.
	BackupSnapshot bool `json:"backup_snapshot"`
	// SnapshotFileBytes: its delta disks, .vmsn and .vmem (0 without snapshots).
	SnapshotFileBytes int64               `json:"snapshot_file_bytes"`
	SnapshotTasks     []SnapshotTaskFacts `json:"snapshot_tasks"` // by operation, result
	// SnapshotTaskDurations: the last task of each operation, by operation.
	SnapshotTaskDurations []SnapshotDurationFacts `json:"snapshot_task_durations"`
	// LastBackupFromEvents: the newest successful snapshot removal a BackupEventUsers account
	// ran (names compared without regard to case), its completeTime; 0 when none.
	LastBackupFromEvents float64 `json:"last_backup_from_events"`
	// Reconfigurations while a snapshot existed: those growing a disk, and all.
	DiskChangedWithSnapshots  int `json:"disk_changed_with_snapshots"`
	ReconfiguredWithSnapshots int `json:"reconfigured_with_snapshots"`

	// What the device checks must make of config.hardware.device and runtime (devices.go).
	DeviceFacts
}

// SnapshotFacts describes one snapshot.
type SnapshotFacts struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	ParentID          string  `json:"parent_id"` // empty for a root
	CreateTimeSeconds float64 `json:"create_time_seconds"`
	Quiesced          bool    `json:"quiesced"`
	// SizeBytes: the .vmsn (dataKey) file, plus the files of this snapshot's disk chains that its
	// parent's chains do not hold (none for a root), plus for the current snapshot the running
	// chains' files no snapshot holds. Each file once.
	SizeBytes int64 `json:"size_bytes"`
	// MemorySizeBytes is the .vmem (memoryKey) file, 0 without one. SizeBytes does not include it.
	MemorySizeBytes int64 `json:"memory_size_bytes"`
	IsCurrent       bool  `json:"is_current"`
	// DatastoreName is the datastore in the path of the .vmsn (dataKey) file: "[LocalDS_0] vm/…".
	DatastoreName string `json:"datastore_name"`
	// CreatedBy is the user of the create task matched to the snapshot, "" without one.
	CreatedBy string `json:"created_by"`
}

func (f *Facts) marshal() ([]byte, error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func (f *Facts) snapshotCount() int {
	n := 0
	for _, vm := range f.VMs {
		n += vm.SnapshotCount
	}
	return n
}

// sortVMs orders VMs by their managed object id counter, i.e. creation order.
func (f *Facts) sortVMs() {
	sort.Slice(f.VMs, func(i, j int) bool {
		return morefLess(types.ManagedObjectReference{Value: f.VMs[i].ID}, types.ManagedObjectReference{Value: f.VMs[j].ID})
	})
}

// vmFacts states what plan and its replayed layout make of VM ref.
func vmFacts(ref types.ManagedObjectReference, plan *vmPlan, l *layout) VMFacts {
	power := plan.power
	if plan.template {
		power = types.VirtualMachinePowerStatePoweredOff
	}
	vm := VMFacts{
		ID:                    ref.Value,
		Name:                  plan.name,
		HostName:              plan.placement.host.name,
		ClusterName:           plan.placement.pool.clusterName,
		DatacenterName:        plan.placement.pool.datacenterName,
		GuestID:               plan.guestID,
		PowerState:            string(power),
		Template:              plan.template,
		ConsolidationNeeded:   plan.consolidationNeeded,
		ToolsVersionStatus2:   plan.tools.versionStatus2,
		ToolsRunningStatus:    plan.tools.runningStatus,
		ToolsVersion:          plan.tools.version,
		SnapshotCount:         len(l.snaps),
		Snapshots:             []SnapshotFacts{},
		DatastoreName:         plan.datastoreName(),
		Annotation:            plan.annotation,
		CustomValues:          map[string]string{},
		CBTEnabled:            plan.cbt,
		EnableUUID:            plan.enableUUID,
		Windows:               isWindows(plan.guestID),
		BackupConsistency:     consistencyLevel(power, plan.tools.runningStatus, isWindows(plan.guestID), plan.enableUUID),
		LastBackup:            []LastBackupFacts{},
		SnapshotTasks:         []SnapshotTaskFacts{},
		SnapshotTaskDurations: []SnapshotDurationFacts{},
	}
	for name, value := range plan.fields {
		vm.CustomValues[name] = value
	}
	for _, b := range plan.lastBackup {
		f := LastBackupFacts{Source: b.source, ParseError: b.parseError}
		if !b.parseError {
			f.TimestampSeconds = float64(b.at.Unix())
		}
		vm.LastBackup = append(vm.LastBackup, f)
	}
	sort.Slice(vm.LastBackup, func(i, j int) bool { return vm.LastBackup[i].Source < vm.LastBackup[j].Source })
	if len(l.snaps) > 0 {
		vm.SnapshotFileBytes = l.snapshotFileBytes()
	}
	for _, d := range plan.disks {
		vm.DiskCapacityBytes += d.capacityBytes
	}
	var attached int64
	vm.DeviceFacts, attached = deviceFacts(plan, l)
	vm.DiskCapacityBytes += attached
	if len(vm.SnapshotBlockers) > 0 {
		vm.BackupConsistency = consistencyNone
	}

	children := make(map[int][]int)
	for i, s := range l.snaps {
		children[s.parent] = append(children[s.parent], i)
	}
	var walk func(i, depth int)
	walk = func(i, depth int) {
		s := l.snaps[i]
		parent := ""
		if s.parent >= 0 {
			parent = l.snaps[s.parent].ref.Value
		}
		size := l.snapshotSize(i)
		vm.Snapshots = append(vm.Snapshots, SnapshotFacts{
			ID:                s.ref.Value,
			Name:              s.op.name,
			Description:       s.op.description,
			ParentID:          parent,
			CreateTimeSeconds: float64(s.op.at.UnixNano()) / 1e9,
			Quiesced:          s.op.quiesced,
			SizeBytes:         size,
			MemorySizeBytes:   l.memorySize(i),
			IsCurrent:         i == l.current,
			DatastoreName:     plan.datastoreName(),
		})
		if defaultBackupPatterns.MatchString(s.op.name) {
			vm.BackupSnapshot = true
		}
		vm.SnapshotTotalSizeBytes += size
		if depth > vm.SnapshotChainDepth {
			vm.SnapshotChainDepth = depth
		}
		for _, c := range children[i] {
			walk(c, depth+1)
		}
	}
	for _, root := range children[-1] {
		walk(root, 1)
	}
	return vm
}
