// devices.go owns what the device checks read beyond the disks' chains: disk modes and raw
// device mappings, disks attached from another VM's directory (a backup proxy's hot-add
// leftover, or a multi-writer disk shared on purpose), SCSI bus sharing, PCI passthrough, and
// the runtime values Fault Tolerance, a pending question and the connection state. It also gives
// the disks of VMs with changed block tracking on their change id.
//
// The simulator's ReconfigVM_Task and CreateVM_Task keep a disk's backing as given but check
// nothing of what these settings mean, and it has no API for runtime.question,
// runtime.faultToleranceState or runtime.connectionState at all, so the builder writes them into
// its VirtualMachine (editDevices) after the disks' chains are set, as vCenter would report them.
package main

import (
	"crypto/sha256"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Reasons of vsphere_vm_disks_not_snapshotted and vsphere_vm_snapshot_blockers.
const (
	reasonIndependentPersistent    = "independent_persistent"
	reasonIndependentNonpersistent = "independent_nonpersistent"
	reasonPhysicalRDM              = "physical_rdm"

	blockerSCSIBusSharing = "scsi_bus_sharing"
	blockerMultiWriter    = "multi_writer_disk"
	blockerPCIPassthrough = "pci_passthrough"
	blockerFaultTolerance = "fault_tolerance"
)

// devicePlan is what a scenario decides about a VM's devices and runtime beyond its disks'
// capacities and chains. The zero value changes nothing.
type devicePlan struct {
	// diskMode[i] is disk i's backing.diskMode (types.VirtualDiskMode…); missing: persistent.
	diskMode map[int]types.VirtualDiskMode
	// physicalRDM are the disks backed by a physical-mode raw device mapping.
	physicalRDM map[int]bool
	// multiWriter are the disks whose backing.sharing is sharingMultiWriter.
	multiWriter map[int]bool
	// attach are disks of other VMs attached to this one, after its own disks.
	attach []attachedDisk
	// busSharing is the SCSI controller's sharedBus; "": noSharing.
	busSharing types.VirtualSCSISharing
	// pciPassthrough adds a VirtualPCIPassthrough device (an NVIDIA vGPU profile).
	pciPassthrough bool
	// faultTolerance is runtime.faultToleranceState; "": left unset.
	faultTolerance types.VirtualMachineFaultToleranceState
	// currentMissing unsets snapshot.currentSnapshot while the tree stays.
	currentMissing bool
	// noChangeID are the disks of a VM with CBT on whose backing.changeId stays empty (CBT on,
	// but no stun/unstun cycle since).
	noChangeID map[int]bool
	// question is runtime.question's text; "": no question.
	question string
	// connectionState is runtime.connectionState; "": connected.
	connectionState types.VirtualMachineConnectionState
}

// skipsSnapshots tells whether disk i stays out of snapshots: independent, or a physical RDM.
func (d devicePlan) skipsSnapshots(i int) bool {
	mode := d.diskMode[i]
	return d.physicalRDM[i] || mode == types.VirtualDiskModeIndependent_persistent ||
		mode == types.VirtualDiskModeIndependent_nonpersistent
}

// attachedDisk is another VM's disk attached to this VM: the same file, in the owner's directory.
type attachedDisk struct {
	ownerName     string
	file          string // the owner's disk file, "[LocalDS_0] owner/owner_1.vmdk"
	capacityBytes int64
	multiWriter   bool
}

// DiskNotSnapshottedFacts is one disk that a snapshot does not capture.
type DiskNotSnapshottedFacts struct {
	DiskFile string `json:"disk_file"`
	Reason   string `json:"reason"`
}

// ForeignDiskFacts is one disk attached to a VM whose file lies in another VM's directory
// (multi-writer disks left out).
type ForeignDiskFacts struct {
	DiskFile    string `json:"disk_file"`
	OwnerVMID   string `json:"owner_vm_id"`
	OwnerVMName string `json:"owner_vm_name"`
}

// DeviceFacts are the device checks' facts of one VM (embedded in VMFacts).
type DeviceFacts struct {
	// DisksNotSnapshotted lists the disks a snapshot skips, by device key.
	DisksNotSnapshotted []DiskNotSnapshottedFacts `json:"disks_not_snapshotted"`
	ForeignDisks        []ForeignDiskFacts        `json:"foreign_disks"`
	// SnapshotBlockers counts the devices or settings that make a snapshot impossible, by
	// reason; only reasons above 0.
	SnapshotBlockers map[string]int `json:"snapshot_blockers"`
	// PhantomSnapshotDisks: disks running on a delta (backing.parent set) while the VM has no
	// snapshot.
	PhantomSnapshotDisks int `json:"phantom_snapshot_disks"`
	// SnapshotCurrentMissing: snapshot is set and snapshot.currentSnapshot is not.
	SnapshotCurrentMissing bool `json:"snapshot_current_missing"`
	// CBTInactiveDisks: with CBT on, the disks whose backing.changeId is empty (templates, and
	// independent, physical RDM and multi-writer disks, which CBT never tracks, left out).
	CBTInactiveDisks int `json:"cbt_inactive_disks"`
	// Question is runtime.question.text, "" without one.
	Question string `json:"question"`
	// ConnectionState is runtime.connectionState.
	ConnectionState string `json:"connection_state"`
	// FaultToleranceState is runtime.faultToleranceState, "" when unset.
	FaultToleranceState string `json:"fault_tolerance_state"`
}

// consistencyNone is vsphere_vm_backup_consistency's level for a VM that cannot be snapshotted.
const consistencyNone = "none"

// Device keys and names of what editDevices adds.
const (
	pciPassthroughKey = 13000
	vgpuProfile       = "grid_t4-4q"
	rdmLunUUID        = "0200000000600508b1001c3a5f0e2d3b4c5a6f7e8d4c4f4749434c"
)

// noSpaceQuestion is the question ESXi asks when a snapshot's delta fills its datastore.
const noSpaceQuestion = "There is no more space for virtual disk '%s'. You might be able to continue " +
	"this session by freeing disk space on the relevant volume, and clicking Retry. Click Cancel to " +
	"terminate this session."

// changeIDOf is a disk's CBT change id as vCenter shows it ("52 9c … 5e/7"), made from the file
// name so that every build gives the same one.
func changeIDOf(file string) string {
	sum := sha256.Sum256([]byte(file))
	var b strings.Builder
	for i := 0; i < 16; i++ {
		if i > 0 {
			if i == 8 {
				b.WriteByte('-')
			} else {
				b.WriteByte(' ')
			}
		}
		fmt.Fprintf(&b, "%02x", sum[i])
	}
	return fmt.Sprintf("%s/%d", b.String(), 3+int(sum[16])%20)
}

// editDevices writes plan's device settings into vm's (already chain-edited) devices and
// runtime: disk modes, raw device mappings, sharing, change ids, attached disks, the SCSI
// controller's bus sharing, a passthrough device; then Fault Tolerance, the question, the
// connection state and an unset current snapshot. Devices and runtime are new copies.
func editDevices(vm *simulator.VirtualMachine, plan *vmPlan) {
	d := plan.devices
	devices := make([]types.BaseVirtualDevice, 0, len(vm.Config.Hardware.Device)+len(d.attach)+1)
	for _, dev := range vm.Config.Hardware.Device {
		switch v := dev.(type) {
		case *types.VirtualDisk:
			dev = editDisk(v, plan)
		case *types.ParaVirtualSCSIController:
			if d.busSharing != "" {
				edited := *v
				edited.SharedBus = d.busSharing
				dev = &edited
			}
		}
		devices = append(devices, dev)
	}
	for i, a := range d.attach {
		devices = append(devices, attachedDevice(plan, i, a))
	}
	if d.pciPassthrough {
		devices = append(devices, &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
			Key:        pciPassthroughKey,
			DeviceInfo: &types.Description{Label: "PCI device 0", Summary: "NVIDIA GRID vGPU " + vgpuProfile},
			Backing:    &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: vgpuProfile},
		}})
	}
	config := *vm.Config
	config.Hardware.Device = devices
	vm.Config = &config

	if d.faultTolerance != "" {
		vm.Runtime.FaultToleranceState = d.faultTolerance
		vm.Summary.Runtime.FaultToleranceState = d.faultTolerance
	}
	if d.connectionState != "" {
		vm.Runtime.ConnectionState = d.connectionState
		vm.Summary.Runtime.ConnectionState = d.connectionState
	}
	if d.question != "" {
		q := questionOf(vm.Self, d.question)
		vm.Runtime.Question = q
		vm.Summary.Runtime.Question = q
	}
	if d.currentMissing && vm.Snapshot != nil {
		info := *vm.Snapshot
		info.CurrentSnapshot = nil
		vm.Snapshot = &info
	}
}

// editDisk gives disk i of plan its mode, sharing, raw device mapping and change id.
func editDisk(disk *types.VirtualDisk, plan *vmPlan) types.BaseVirtualDevice {
	i := int(disk.Key) - firstDiskKey
	d := plan.devices
	flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return disk
	}
	edited := *disk
	if d.physicalRDM[i] {
		// vCenter shows a physical-mode RDM as independent-persistent: its diskMode is ignored,
		// and no snapshot ever captures it.
		edited.Backing = &types.VirtualDiskRawDiskMappingVer1BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: flat.FileName, Datastore: flat.Datastore},
			DeviceName:                   "vml." + rdmLunUUID,
			LunUuid:                      rdmLunUUID,
			CompatibilityMode:            string(types.VirtualDiskCompatibilityModePhysicalMode),
			DiskMode:                     string(types.VirtualDiskModeIndependent_persistent),
			Uuid:                         "6000C29a-0b1c-2d3e-4f50-617283940a1b",
			Sharing:                      string(types.VirtualDiskSharingSharingNone),
		}
		return &edited
	}
	backing := *flat
	if mode, ok := d.diskMode[i]; ok {
		backing.DiskMode = string(mode)
	}
	backing.Sharing = string(types.VirtualDiskSharingSharingNone)
	if d.multiWriter[i] {
		backing.Sharing = string(types.VirtualDiskSharingSharingMultiWriter)
	}
	if plan.cbt && !d.noChangeID[i] {
		backing.ChangeId = changeIDOf(backing.FileName)
	}
	edited.Backing = &backing
	return &edited
}

// attachedDevice is the i-th attached disk: the owner's file on the VM's SCSI controller, after
// its own disks.
func attachedDevice(plan *vmPlan, i int, a attachedDisk) *types.VirtualDisk {
	unit := int32(len(plan.disks) + i)
	if unit >= 7 {
		unit++
	}
	sharing := types.VirtualDiskSharingSharingNone
	if a.multiWriter {
		sharing = types.VirtualDiskSharingSharingMultiWriter
	}
	return &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key:           int32(firstDiskKey + len(plan.disks) + i),
			ControllerKey: scsiControllerKey,
			UnitNumber:    &unit,
			DeviceInfo:    &types.Description{Label: fmt.Sprintf("Hard disk %d", len(plan.disks)+i+1), Summary: fmt.Sprintf("%d KB", a.capacityBytes/1024)},
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: a.file},
				DiskMode:                     string(types.VirtualDiskModePersistent),
				ThinProvisioned:              types.NewBool(!a.multiWriter),
				EagerlyScrub:                 types.NewBool(a.multiWriter),
				Sharing:                      string(sharing),
			},
		},
		CapacityInKB:    a.capacityBytes / 1024,
		CapacityInBytes: a.capacityBytes,
	}
}

// questionOf is the question ESXi asks about vm when its disk's datastore is full.
func questionOf(vm types.ManagedObjectReference, text string) *types.VirtualMachineQuestionInfo {
	return &types.VirtualMachineQuestionInfo{
		Id:   "_vmx1",
		Text: text,
		Choice: types.ChoiceOption{
			OptionType: types.OptionType{ValueIsReadonly: types.NewBool(false)},
			ChoiceInfo: []types.BaseElementDescription{
				&types.ElementDescription{Description: types.Description{Label: "Cancel", Summary: "Cancel"}, Key: "0"},
				&types.ElementDescription{Description: types.Description{Label: "Retry", Summary: "Retry"}, Key: "1"},
			},
			DefaultIndex: 1,
		},
	}
}

// deviceFacts states what plan (replayed into l) makes the device checks see. Owner ids of
// foreign disks are filled by resolveForeignOwners once every VM exists.
func deviceFacts(plan *vmPlan, l *layout) (DeviceFacts, int64) {
	d := plan.devices
	f := DeviceFacts{
		DisksNotSnapshotted: []DiskNotSnapshottedFacts{},
		ForeignDisks:        []ForeignDiskFacts{},
		SnapshotBlockers:    map[string]int{},
		Question:            d.question,
		ConnectionState:     string(types.VirtualMachineConnectionStateConnected),
		FaultToleranceState: string(d.faultTolerance),
	}
	if d.connectionState != "" {
		f.ConnectionState = string(d.connectionState)
	}
	for i := range plan.disks {
		file := l.runningFile(i)
		switch {
		case d.physicalRDM[i]:
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonPhysicalRDM})
		case d.diskMode[i] == types.VirtualDiskModeIndependent_persistent:
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonIndependentPersistent})
		case d.diskMode[i] == types.VirtualDiskModeIndependent_nonpersistent:
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonIndependentNonpersistent})
		}
		if d.multiWriter[i] {
			f.SnapshotBlockers[blockerMultiWriter]++
		}
		if plan.cbt && !plan.template && d.noChangeID[i] && !d.skipsSnapshots(i) && !d.multiWriter[i] {
			f.CBTInactiveDisks++
		}
		if len(l.snaps) == 0 && len(l.disks[i].running) > 1 {
			f.PhantomSnapshotDisks++
		}
	}
	var attached int64
	for _, a := range d.attach {
		attached += a.capacityBytes
		if a.multiWriter {
			f.SnapshotBlockers[blockerMultiWriter]++
			continue
		}
		f.ForeignDisks = append(f.ForeignDisks, ForeignDiskFacts{DiskFile: a.file, OwnerVMName: a.ownerName})
		if plan.cbt && !plan.template {
			f.CBTInactiveDisks++ // attached without a change id
		}
	}
	if d.busSharing != "" && d.busSharing != types.VirtualSCSISharingNoSharing {
		f.SnapshotBlockers[blockerSCSIBusSharing]++
	}
	if d.pciPassthrough {
		f.SnapshotBlockers[blockerPCIPassthrough]++
	}
	if d.faultTolerance != "" && d.faultTolerance != types.VirtualMachineFaultToleranceStateNotConfigured {
		f.SnapshotBlockers[blockerFaultTolerance]++
	}
	f.SnapshotCurrentMissing = d.currentMissing && len(l.snaps) > 0
	return f, attached
}

// runningFile is the file disk i runs on: its newest delta, or its base disk.
func (l *layout) runningFile(i int) string {
	r := l.disks[i].running
	return l.files[r[len(r)-1].descriptor].Name
}

// resolveForeignOwners fills the owner ids of foreign disks by the owners' names.
func resolveForeignOwners(f *Facts) {
	ids := map[string]string{}
	for _, vm := range f.VMs {
		ids[vm.Name] = vm.ID
	}
	for i := range f.VMs {
		for j := range f.VMs[i].ForeignDisks {
			fd := &f.VMs[i].ForeignDisks[j]
			fd.OwnerVMID = ids[fd.OwnerVMName]
		}
	}
}

// observeDevices states the device facts of every served VM by the checks' rules, from what a
// client reads: config.hardware.device, config.files.vmPathName, config.changeTrackingEnabled,
// snapshot and runtime. A disk is foreign when its file lies in another VM's directory (the
// directory of its vmPathName) and it is not multi-writer.
func observeDevices(vms map[string]observedVM) map[string]DeviceFacts {
	owners := map[string]observedVM{}
	for _, vm := range vms {
		if vm.dir != "" {
			owners[vm.dir] = vm
		}
	}
	out := make(map[string]DeviceFacts, len(vms))
	for id, vm := range vms {
		out[id] = observeVMDevices(vm, owners)
	}
	return out
}

// observedVM is what observeDevices needs of one served VM.
type observedVM struct {
	id, name, dir string
	devices       []types.BaseVirtualDevice
	cbt, template bool
	snapshot      *types.VirtualMachineSnapshotInfo
	runtime       types.VirtualMachineRuntimeInfo
}

func observeVMDevices(vm observedVM, owners map[string]observedVM) DeviceFacts {
	f := DeviceFacts{
		DisksNotSnapshotted: []DiskNotSnapshottedFacts{},
		ForeignDisks:        []ForeignDiskFacts{},
		SnapshotBlockers:    map[string]int{},
		ConnectionState:     string(vm.runtime.ConnectionState),
		FaultToleranceState: string(vm.runtime.FaultToleranceState),
	}
	if q := vm.runtime.Question; q != nil {
		f.Question = q.Text
	}
	var disks []*types.VirtualDisk
	for _, dev := range vm.devices {
		switch v := dev.(type) {
		case *types.VirtualDisk:
			disks = append(disks, v)
		case *types.VirtualPCIPassthrough:
			f.SnapshotBlockers[blockerPCIPassthrough]++
		case types.BaseVirtualSCSIController:
			if s := v.GetVirtualSCSIController().SharedBus; s != "" && s != types.VirtualSCSISharingNoSharing {
				f.SnapshotBlockers[blockerSCSIBusSharing]++
			}
		}
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Key < disks[j].Key })
	for _, disk := range disks {
		file, mode, sharing, changeID, parent, physical := diskBacking(disk)
		switch {
		case physical:
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonPhysicalRDM})
		case mode == string(types.VirtualDiskModeIndependent_persistent):
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonIndependentPersistent})
		case mode == string(types.VirtualDiskModeIndependent_nonpersistent):
			f.DisksNotSnapshotted = append(f.DisksNotSnapshotted, DiskNotSnapshottedFacts{file, reasonIndependentNonpersistent})
		}
		multiWriter := sharing == string(types.VirtualDiskSharingSharingMultiWriter)
		if multiWriter {
			f.SnapshotBlockers[blockerMultiWriter]++
		}
		// CBT never tracks independent disks, physical RDMs and multi-writer disks.
		independent := mode == string(types.VirtualDiskModeIndependent_persistent) ||
			mode == string(types.VirtualDiskModeIndependent_nonpersistent)
		if vm.cbt && !vm.template && changeID == "" && !physical && !independent && !multiWriter {
			f.CBTInactiveDisks++
		}
		if vm.snapshot == nil && parent {
			f.PhantomSnapshotDisks++
		}
		if owner, ok := owners[datastoreDir(file)]; ok && owner.id != vm.id && !multiWriter {
			f.ForeignDisks = append(f.ForeignDisks, ForeignDiskFacts{DiskFile: file, OwnerVMID: owner.id, OwnerVMName: owner.name})
		}
	}
	if s := vm.runtime.FaultToleranceState; s != "" && s != types.VirtualMachineFaultToleranceStateNotConfigured {
		f.SnapshotBlockers[blockerFaultTolerance]++
	}
	f.SnapshotCurrentMissing = vm.snapshot != nil && vm.snapshot.CurrentSnapshot == nil
	return f
}

// diskBacking reads what the checks need of a disk's backing.
func diskBacking(disk *types.VirtualDisk) (file, mode, sharing, changeID string, parent, physicalRDM bool) {
	switch b := disk.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		return b.FileName, b.DiskMode, b.Sharing, b.ChangeId, b.Parent != nil, false
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		physical := b.CompatibilityMode == string(types.VirtualDiskCompatibilityModePhysicalMode)
		return b.FileName, b.DiskMode, b.Sharing, b.ChangeId, b.Parent != nil, physical
	}
	return "", "", "", "", false, false
}

// datastoreDir is the directory of a datastore path: "[ds] vm/vm.vmdk" → "[ds] vm".
func datastoreDir(file string) string {
	i := strings.Index(file, "] ")
	if i < 0 {
		return ""
	}
	return file[:i+2] + path.Dir(file[i+2:])
}
