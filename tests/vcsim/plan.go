// plan.go owns the plan of a VM: what the scenario wants it to be (placement, hardware, power,
// Tools, consolidation, the ordered snapshot operations and the sizes of the files they make).
// Scenarios fill plans; the builder carries them out; the facts are computed from them.
package main

import (
	"math"
	"math/rand"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

const (
	kiB = int64(1) << 10
	miB = int64(1) << 20
	giB = int64(1) << 30
)

// vmPlan is everything a scenario decides about one VM.
type vmPlan struct {
	placement placement
	name      string
	guestID   string
	numCPUs   int32
	memoryMB  int32
	power     types.VirtualMachinePowerState
	template  bool
	bootTime  time.Time
	disks     []diskPlan
	// capacityInKBOnly leaves capacityInBytes at 0 on the disks, as vCenter before 5.5 did.
	capacityInKBOnly bool

	tools toolsPlan

	consolidationNeeded bool
	// orphanDeltas is how many delta disks a failed consolidation left in each running disk chain.
	orphanDeltas int

	ops []snapOp

	// The inputs of the backup checks. Notes, CBT and disk.EnableUUID are set by CreateVM_Task,
	// custom attribute values by CustomFieldsManager.SetField once the definitions exist, and
	// reconfigurations run through ReconfigVM_Task after the snapshots are taken.
	datastore   string            // where the VM's files go; "" is datastoreName
	annotation  string            // config.annotation (the notes)
	cbt         bool              // config.changeTrackingEnabled
	enableUUID  string            // config.extraConfig disk.EnableUUID: "" (unset), "TRUE" or "FALSE"
	fields      map[string]string // custom attribute values by field name
	reconfigure []reconfigPlan
	// lastBackup is what the default last_backup_sources must make of fields and annotation.
	lastBackup []lastBackupFact

	// devices: disk modes, RDMs, attached disks, bus sharing, passthrough and the runtime values
	// the device checks read (devices.go); the zero value is a plain VM.
	devices devicePlan

	// sizes draws the sizes of files the plan does not fix. Seeded per VM, so one VM's sizes do
	// not depend on the others.
	sizes *rand.Rand
}

type diskPlan struct {
	capacityBytes int64
	thin          bool
	usedBytes     int64 // size of the base disk's extent file
}

// toolsPlan holds guest.* values; an empty field is left unset in the simulator.
type toolsPlan struct {
	versionStatus2 string // guestToolsCurrent, guestToolsNeedUpgrade, …
	runningStatus  string // guestToolsRunning, guestToolsNotRunning, guestToolsExecutingScripts
	version        string // e.g. "12352"; "0" when not installed
}

// snapOp is one snapshot operation, carried out in order through the API.
type snapOp struct {
	// revertTo >= 0 reverts to the revertTo-th snapshot taken (RevertToSnapshot_Task);
	// otherwise the op takes a snapshot (CreateSnapshot_Task).
	revertTo int

	name        string
	description string
	at          time.Time
	quiesced    bool
	memory      bool
	vmsnBytes   int64 // 0: drawn from plan.sizes

	// deltaBytes[i] is the size of the delta extent that disk i runs on after this op (a take or
	// a revert makes a new delta); 0 or missing: drawn from plan.sizes.
	deltaBytes []int64
}

// reconfigPlan is one ReconfigVM_Task: it posts a VmReconfiguredEvent, whose createdTime and
// userName are then set to at and user.
type reconfigPlan struct {
	at   time.Time
	user string
	// growDisk >= 0 edits that disk to growTo bytes; otherwise the task changes the CPU count.
	growDisk int
	growTo   int64
}

// lastBackupFact is one expected vsphere_vm_last_backup_* series: a time, or a parse error.
type lastBackupFact struct {
	source     string
	at         time.Time
	parseError bool
}

func (p *vmPlan) datastoreName() string {
	if p.datastore == "" {
		return datastoreName
	}
	return p.datastore
}

func take(name string, at time.Time) snapOp { return snapOp{revertTo: -1, name: name, at: at} }

func revertTo(i int) snapOp { return snapOp{revertTo: i} }

func (op snapOp) isTake() bool { return op.revertTo < 0 }

func (op snapOp) withQuiesce() snapOp { op.quiesced = true; return op }

func (op snapOp) withMemory() snapOp { op.memory = true; return op }

func (op snapOp) withDescription(d string) snapOp { op.description = d; return op }

func (op snapOp) withSizes(vmsn int64, deltas ...int64) snapOp {
	op.vmsnBytes = vmsn
	op.deltaBytes = deltas
	return op
}

// File sizes the plans do not draw: descriptors are small text files of nearly constant size.
const (
	baseDescriptorBytes  = 512
	deltaDescriptorBytes = 384
	vmxBytes             = 3 * kiB
	vmxfBytes            = 263
	vmsdBytes            = 1 * kiB
	nvramBytes           = 8684
	logBytes             = 256 * kiB
)

// drawDeltaSize draws a delta extent size: log-uniform between 8 MiB and 40 GiB, in whole 4 KiB blocks.
func drawDeltaSize(r *rand.Rand) int64 {
	lo, hi := math.Log(float64(8*miB)), math.Log(float64(40*giB))
	return int64(math.Exp(lo+r.Float64()*(hi-lo))) / (4 * kiB) * (4 * kiB)
}

// drawVmsnSize draws a .vmsn size: 18..64 KiB.
func drawVmsnSize(r *rand.Rand) int64 {
	return 18*kiB + r.Int63n(46*kiB)
}

// toolsStatusFor derives the deprecated guest.toolsStatus and guest.toolsVersionStatus that vCenter
// reports beside toolsVersionStatus2.
func toolsStatusFor(t toolsPlan) (types.VirtualMachineToolsStatus, string) {
	var versionStatus string
	switch t.versionStatus2 {
	case "":
		return "", ""
	case string(types.VirtualMachineToolsVersionStatusGuestToolsNotInstalled):
		return types.VirtualMachineToolsStatusToolsNotInstalled, t.versionStatus2
	case string(types.VirtualMachineToolsVersionStatusGuestToolsNeedUpgrade),
		string(types.VirtualMachineToolsVersionStatusGuestToolsTooOld),
		string(types.VirtualMachineToolsVersionStatusGuestToolsSupportedOld),
		string(types.VirtualMachineToolsVersionStatusGuestToolsBlacklisted):
		versionStatus = string(types.VirtualMachineToolsVersionStatusGuestToolsNeedUpgrade)
	case string(types.VirtualMachineToolsVersionStatusGuestToolsUnmanaged):
		versionStatus = t.versionStatus2
	default:
		versionStatus = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
	}
	if t.runningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) &&
		t.runningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsExecutingScripts) {
		return types.VirtualMachineToolsStatusToolsNotRunning, versionStatus
	}
	if versionStatus == string(types.VirtualMachineToolsVersionStatusGuestToolsNeedUpgrade) {
		return types.VirtualMachineToolsStatusToolsOld, versionStatus
	}
	return types.VirtualMachineToolsStatusToolsOk, versionStatus
}

// toolsVersionFor is the guest.toolsVersion a Tools version status typically comes with.
var toolsVersionFor = map[string]string{
	"guestToolsCurrent":      "12352",
	"guestToolsNeedUpgrade":  "11333",
	"guestToolsNotInstalled": "0",
	"guestToolsUnmanaged":    "12389",
	"guestToolsTooOld":       "9536",
	"guestToolsSupportedOld": "10346",
	"guestToolsSupportedNew": "12416",
	"guestToolsTooNew":       "13312",
	"guestToolsBlacklisted":  "10240",
}

func tools(versionStatus2, runningStatus string) toolsPlan {
	return toolsPlan{versionStatus2: versionStatus2, runningStatus: runningStatus, version: toolsVersionFor[versionStatus2]}
}
