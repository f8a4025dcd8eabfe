// pitfalls_devices.go owns the pitfalls scenario's VMs for the device checks: one VM per disk a
// snapshot skips, per snapshot blocker, per broken snapshot state, per CBT and runtime case, a
// backup proxy holding another VM's disk and a pair sharing a multi-writer disk (not foreign).
// Each case has a VM of its own so that every alert names exactly one VM.
package main

import (
	"fmt"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// deviceVM makes a pitfall VM: name, Tools healthy, a plan of its own.
type deviceVM func(name string, t toolsPlan, capacity, used int64) *vmPlan

// Names of the device pitfall VMs (the integration and end-to-end tests read them from the facts;
// the alert tests name them).
const (
	pitfallIndependentPersistent    = "pitfall-disk-independent"
	pitfallIndependentNonpersistent = "pitfall-disk-nonpersistent"
	pitfallPhysicalRDM              = "pitfall-disk-physical-rdm"
	pitfallProxy                    = "pitfall-backup-proxy"
	pitfallProxyOwner               = "pitfall-proxy-victim"
	pitfallMultiWriterA             = "pitfall-cluster-node-a"
	pitfallMultiWriterB             = "pitfall-cluster-node-b"
	pitfallBusSharing               = "pitfall-scsi-bus-sharing"
	pitfallPassthrough              = "pitfall-pci-passthrough"
	pitfallFaultTolerance           = "pitfall-fault-tolerance"
	pitfallPhantom                  = "pitfall-phantom-snapshot"
	pitfallNoCurrent                = "pitfall-snapshot-no-current"
	pitfallCBTInactive              = "pitfall-cbt-inactive"
	pitfallCBTHealthy               = "pitfall-cbt-healthy"
	pitfallQuestion                 = "pitfall-question-pending"
	pitfallInaccessible             = "pitfall-inaccessible"
)

// devicePitfallPlans are the device checks' pitfall VMs, in creation order (the proxy's victim
// before the proxy, node a before node b).
func devicePitfallPlans(vm deviceVM, now time.Time) []*vmPlan {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	healthy := tools(toolsCurrent, toolsRunning)
	twoDisks := func(name string) *vmPlan {
		p := vm(name, healthy, 40*giB, 8*giB)
		p.disks = append(p.disks, diskPlan{capacityBytes: 100 * giB, thin: false, usedBytes: 100 * giB})
		return p
	}

	// A data disk in independent-persistent mode: every snapshot, so every image backup, skips it.
	independent := twoDisks(pitfallIndependentPersistent)
	independent.devices.diskMode = map[int]types.VirtualDiskMode{1: types.VirtualDiskModeIndependent_persistent}
	// A snapshot taken an hour ago holds only the system disk (its row in the report names the
	// data disk it left out).
	independent.ops = []snapOp{take("before-app-update", ago(time.Hour)).withSizes(22*kiB, 24*miB)}

	// A scratch disk in independent-nonpersistent mode: skipped too, and reset at power off.
	nonpersistent := twoDisks(pitfallIndependentNonpersistent)
	nonpersistent.devices.diskMode = map[int]types.VirtualDiskMode{1: types.VirtualDiskModeIndependent_nonpersistent}

	// A physical-mode RDM: no snapshot captures it.
	rdm := twoDisks(pitfallPhysicalRDM)
	rdm.devices.physicalRDM = map[int]bool{1: true}

	// A backup proxy that hot-added its victim's data disk and never gave it back.
	victim := twoDisks(pitfallProxyOwner)
	proxy := vm(pitfallProxy, healthy, 40*giB, 8*giB)
	proxy.guestID = "windows9Server64Guest"
	proxy.enableUUID = "TRUE"
	proxy.devices.attach = []attachedDisk{{
		ownerName: victim.name, file: diskFileName(victim.datastoreName(), victim.name, 1), capacityBytes: 100 * giB,
	}}

	// Two cluster nodes sharing a multi-writer disk that lies in node a's directory: shared on
	// purpose, so not foreign; but neither node can be snapshotted.
	nodeA := twoDisks(pitfallMultiWriterA)
	nodeA.devices.multiWriter = map[int]bool{1: true}
	nodeB := vm(pitfallMultiWriterB, healthy, 40*giB, 8*giB)
	nodeB.devices.attach = []attachedDisk{{
		ownerName: nodeA.name, file: diskFileName(nodeA.datastoreName(), nodeA.name, 1), capacityBytes: 100 * giB, multiWriter: true,
	}}

	// A SCSI controller with physical bus sharing (a Windows failover cluster across hosts).
	bus := vm(pitfallBusSharing, healthy, 40*giB, 8*giB)
	bus.devices.busSharing = types.VirtualSCSISharingPhysicalSharing

	// A vGPU (PCI passthrough).
	pci := vm(pitfallPassthrough, healthy, 40*giB, 8*giB)
	pci.devices.pciPassthrough = true

	// Legacy Fault Tolerance, running.
	ft := vm(pitfallFaultTolerance, healthy, 40*giB, 8*giB)
	ft.devices.faultTolerance = types.VirtualMachineFaultToleranceStateRunning

	// A disk running on a delta (name-000001.vmdk, parent set) while the VM has no snapshot, and
	// vCenter does not ask for a consolidation.
	phantom := vm(pitfallPhantom, healthy, 40*giB, 8*giB)
	phantom.orphanDeltas = 1

	// A snapshot whose tree is there while no snapshot is current.
	noCurrent := vm(pitfallNoCurrent, healthy, 40*giB, 8*giB)
	noCurrent.ops = []snapOp{take("pre-migration", ago(2*time.Hour)).withSizes(20*kiB, 32*miB)}
	noCurrent.devices.currentMissing = true

	// CBT on, the data disk without a change id (no stun/unstun since it was enabled); and a VM
	// with CBT on that tracks both disks.
	cbtInactive := twoDisks(pitfallCBTInactive)
	cbtInactive.cbt = true
	cbtInactive.devices.noChangeID = map[int]bool{1: true}
	cbtHealthy := twoDisks(pitfallCBTHealthy)
	cbtHealthy.cbt = true

	// Paused on the question ESXi asks when a disk's datastore is full.
	question := vm(pitfallQuestion, healthy, 40*giB, 8*giB)
	question.devices.question = fmt.Sprintf(noSpaceQuestion, diskFileName(question.datastoreName(), question.name, 0))

	// Its files are out of reach (a datastore gone): vCenter shows it inaccessible.
	inaccessible := vm(pitfallInaccessible, healthy, 40*giB, 8*giB)
	inaccessible.power = poweredOff
	inaccessible.tools = tools(toolsCurrent, toolsNotRunning)
	inaccessible.devices.connectionState = types.VirtualMachineConnectionStateInaccessible

	return []*vmPlan{independent, nonpersistent, rdm, victim, proxy, nodeA, nodeB, bus, pci, ft,
		phantom, noCurrent, cbtInactive, cbtHealthy, question, inaccessible}
}
