// layout.go owns the files of one VM as vSphere would lay them out: config, logs, swap, base disks,
// the delta disks every snapshot operation makes, and the .vmsn/.vmem of each snapshot. It replays
// a plan's snapshot operations the way ESXi moves a VM between disk chains, then renders
// layoutEx, layout and the disk backings. The simulator does none of this: it leaves sizes at 0,
// records no delta disks and lists its disk chains newest-first.
//
// It also keeps, independently of the rendered layoutEx, which delta files each snapshot owns, so
// the facts can state snapshot sizes without applying the size rule to the layoutEx the exporter
// will read.
package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// diskUnit is one link of a disk chain: its descriptor and extent file keys.
type diskUnit struct{ descriptor, extent int32 }

type diskChain struct {
	deviceKey int32
	baseName  string // datastore path without ".vmdk": "[LocalDS_0] vm/vm" or "[LocalDS_0] vm/vm_1"
	deltas    int    // deltas made so far; names the next one vm-00000N.vmdk
	running   []diskUnit
}

// snapLayout is one snapshot as the layout sees it.
type snapLayout struct {
	ref       types.ManagedObjectReference
	op        snapOp
	parent    int // index into layout.snaps, -1 for a root
	dataKey   int32
	memoryKey int32 // -1 without a memory file
	// chains[i] is disk i's chain when the snapshot was taken: the chain the VM ran on until then.
	chains [][]diskUnit
	// owned are the delta files this snapshot is charged with: those the VM wrote to between the
	// parent snapshot (or the last revert to it) and this one.
	owned []int32
}

// layout replays a VM's snapshot operations over its files.
type layout struct {
	vmName string
	dir    string // "[LocalDS_0] vm"
	files  []types.VirtualMachineFileLayoutExFileInfo
	gone   map[int32]bool // files deleted by a revert (the abandoned running delta)
	deltas map[int32]bool // delta disk files (descriptors and extents), gone or not
	disks  []diskChain
	snaps  []snapLayout
	// current is the index of the current snapshot, -1 when there is none.
	current int
	// pending are the running deltas no snapshot's chain holds yet; they belong to the current
	// snapshot (or, with no snapshot, to nobody: a VM needing consolidation).
	pending []int32
	plan    *vmPlan
}

func newLayout(plan *vmPlan) *layout {
	l := &layout{
		vmName:  plan.name,
		dir:     fmt.Sprintf("[%s] %s", plan.datastoreName(), plan.name),
		gone:    map[int32]bool{},
		deltas:  map[int32]bool{},
		current: -1,
		plan:    plan,
	}
	l.addFile(plan.name+".vmx", types.VirtualMachineFileLayoutExFileTypeConfig, vmxBytes)
	l.addFile(plan.name+".vmxf", types.VirtualMachineFileLayoutExFileTypeExtendedConfig, vmxfBytes)
	l.addFile(plan.name+".nvram", types.VirtualMachineFileLayoutExFileTypeNvram, nvramBytes)
	if len(plan.ops) > 0 {
		l.addFile(plan.name+".vmsd", types.VirtualMachineFileLayoutExFileTypeSnapshotList, vmsdBytes)
	}
	l.addFile("vmware.log", types.VirtualMachineFileLayoutExFileTypeLog, logBytes)
	for i, d := range plan.disks {
		base := strings.TrimSuffix(diskFileName(plan.datastoreName(), plan.name, i), ".vmdk")
		desc := l.addFile(base[len(l.dir)+1:]+".vmdk", types.VirtualMachineFileLayoutExFileTypeDiskDescriptor, baseDescriptorBytes)
		ext := l.addFile(base[len(l.dir)+1:]+"-flat.vmdk", types.VirtualMachineFileLayoutExFileTypeDiskExtent, d.usedBytes)
		l.disks = append(l.disks, diskChain{
			deviceKey: int32(firstDiskKey + i),
			baseName:  base,
			running:   []diskUnit{{desc, ext}},
		})
	}
	switch plan.power {
	case types.VirtualMachinePowerStatePoweredOn:
		l.addFile(fmt.Sprintf("%s-%08x.vswp", plan.name, plan.sizes.Uint32()), types.VirtualMachineFileLayoutExFileTypeSwap, int64(plan.memoryMB)*miB)
		l.addFile(fmt.Sprintf("vmx-%s-%08x-1.vswp", plan.name, plan.sizes.Uint32()), types.VirtualMachineFileLayoutExFileTypeUwswap, 110*miB)
	case types.VirtualMachinePowerStateSuspended:
		l.addFile(fmt.Sprintf("%s-%08x.vmss", plan.name, plan.sizes.Uint32()), types.VirtualMachineFileLayoutExFileTypeSuspend, 4*miB)
		l.addFile(fmt.Sprintf("%s-%08x.vmem", plan.name, plan.sizes.Uint32()), types.VirtualMachineFileLayoutExFileTypeSuspendMemory, int64(plan.memoryMB)*miB)
	}
	return l
}

// addFile adds a file of the VM directory and returns its key (keys are 0, 1, 2, … in order).
func (l *layout) addFile(name string, kind types.VirtualMachineFileLayoutExFileType, size int64) int32 {
	key := int32(len(l.files))
	l.files = append(l.files, types.VirtualMachineFileLayoutExFileInfo{
		Key:        key,
		Name:       l.dir + "/" + name,
		Type:       string(kind),
		Size:       size,
		UniqueSize: size,
		Accessible: types.NewBool(true),
	})
	return key
}

func (l *layout) size(key int32) int64 {
	if key < 0 || l.gone[key] {
		return 0
	}
	return l.files[key].Size
}

// newDeltas puts every disk on a new delta on top of its running chain; the new files are pending.
func (l *layout) newDeltas(sizes []int64) {
	l.pending = nil
	for i := range l.disks {
		if l.plan.devices.skipsSnapshots(i) {
			continue // ESXi writes an independent disk or a physical RDM in place: no delta
		}
		d := &l.disks[i]
		d.deltas++
		size := int64(0)
		if i < len(sizes) {
			size = sizes[i]
		}
		if size == 0 {
			size = drawDeltaSize(l.plan.sizes)
		}
		name := fmt.Sprintf("%s-%06d", d.baseName[len(l.dir)+1:], d.deltas)
		unit := diskUnit{
			descriptor: l.addFile(name+".vmdk", types.VirtualMachineFileLayoutExFileTypeDiskDescriptor, deltaDescriptorBytes),
			extent:     l.addFile(name+"-delta.vmdk", types.VirtualMachineFileLayoutExFileTypeDiskExtent, size),
		}
		d.running = append(d.running, unit)
		l.pending = append(l.pending, unit.descriptor, unit.extent)
		l.deltas[unit.descriptor], l.deltas[unit.extent] = true, true
	}
}

func (l *layout) runningChains() [][]diskUnit {
	chains := make([][]diskUnit, len(l.disks))
	for i, d := range l.disks {
		chains[i] = append([]diskUnit(nil), d.running...)
	}
	return chains
}

// take records snapshot ref: it keeps the chain the VM ran on, and the VM moves to new deltas.
func (l *layout) take(ref types.ManagedObjectReference, op snapOp) {
	s := snapLayout{ref: ref, op: op, parent: l.current, memoryKey: -1, chains: l.runningChains()}
	if s.parent >= 0 {
		s.owned = l.pending // a root keeps only base disks: it owns no disk file
	}
	n := len(l.snaps) + 1
	vmsn := op.vmsnBytes
	if vmsn == 0 {
		vmsn = drawVmsnSize(l.plan.sizes)
	}
	s.dataKey = l.addFile(fmt.Sprintf("%s-Snapshot%d.vmsn", l.vmName, n), types.VirtualMachineFileLayoutExFileTypeSnapshotData, vmsn)
	if op.memory {
		s.memoryKey = l.addFile(fmt.Sprintf("%s-Snapshot%d.vmem", l.vmName, n), types.VirtualMachineFileLayoutExFileTypeSnapshotMemory, int64(l.plan.memoryMB)*miB)
	}
	l.snaps = append(l.snaps, s)
	l.current = len(l.snaps) - 1
	l.newDeltas(op.deltaBytes)
}

// revert moves the VM back to snapshot i: the running deltas are deleted and the VM runs on new
// deltas on top of i's chains.
func (l *layout) revert(i int, op snapOp) {
	for _, key := range l.pending {
		l.gone[key] = true
	}
	for d := range l.disks {
		l.disks[d].running = append([]diskUnit(nil), l.snaps[i].chains[d]...)
	}
	l.current = i
	l.newDeltas(op.deltaBytes)
}

// addOrphans leaves n deltas of a failed consolidation under each disk's running delta (or under
// the base disk's writes when there is no snapshot): consolidationNeeded territory.
func (l *layout) addOrphans(n int) {
	for k := 0; k < n; k++ {
		var top []diskUnit
		if len(l.snaps) > 0 {
			for i := range l.disks { // take the running deltas off, add the orphan, put them back
				d := &l.disks[i]
				top = append(top, d.running[len(d.running)-1])
				d.running = d.running[:len(d.running)-1]
			}
		}
		pending := l.pending
		l.newDeltas(nil)
		l.pending = append(pending, l.pending...)
		for i := range top {
			l.disks[i].running = append(l.disks[i].running, top[i])
		}
	}
}

// snapshotSize is a snapshot's size by ownership: its .vmsn, the deltas it owns and, for the
// current snapshot, the running deltas. The memory file is reported apart (memorySize).
func (l *layout) snapshotSize(i int) int64 {
	s := l.snaps[i]
	total := l.size(s.dataKey)
	for _, key := range s.owned {
		total += l.size(key)
	}
	if i == l.current {
		for _, key := range l.pending {
			total += l.size(key)
		}
	}
	return total
}

func (l *layout) memorySize(i int) int64 { return l.size(l.snaps[i].memoryKey) }

// snapshotFileBytes is what the VM's snapshots hold on its datastore: every delta disk file,
// .vmsn and .vmem that is still there (orphaned deltas included).
func (l *layout) snapshotFileBytes() int64 {
	var total int64
	for _, f := range l.files {
		kind := types.VirtualMachineFileLayoutExFileType(f.Type)
		if l.deltas[f.Key] || kind == types.VirtualMachineFileLayoutExFileTypeSnapshotData ||
			kind == types.VirtualMachineFileLayoutExFileTypeSnapshotMemory {
			total += l.size(f.Key)
		}
	}
	return total
}

func toDiskLayouts(disks []diskChain, chains [][]diskUnit) []types.VirtualMachineFileLayoutExDiskLayout {
	out := make([]types.VirtualMachineFileLayoutExDiskLayout, len(disks))
	for i, d := range disks {
		out[i].Key = d.deviceKey
		for _, u := range chains[i] {
			out[i].Chain = append(out[i].Chain, types.VirtualMachineFileLayoutExDiskUnit{FileKey: []int32{u.descriptor, u.extent}})
		}
	}
	return out
}

// layoutEx renders vm.layoutEx: chains ordered from the base disk to the newest delta.
func (l *layout) layoutEx(stamp time.Time) *types.VirtualMachineFileLayoutEx {
	ex := &types.VirtualMachineFileLayoutEx{Timestamp: stamp}
	for _, f := range l.files {
		if !l.gone[f.Key] {
			ex.File = append(ex.File, f)
		}
	}
	ex.Disk = toDiskLayouts(l.disks, l.runningChains())
	for _, s := range l.snaps {
		ex.Snapshot = append(ex.Snapshot, types.VirtualMachineFileLayoutExSnapshotLayout{
			Key:       s.ref,
			DataKey:   s.dataKey,
			MemoryKey: s.memoryKey,
			Disk:      toDiskLayouts(l.disks, s.chains),
		})
	}
	return ex
}

// legacyLayoutOf renders the deprecated vm.layout from a layoutEx: config and log files by
// relative name, the swap file, and each disk's and snapshot's descriptors newest first.
func legacyLayoutOf(ex *types.VirtualMachineFileLayoutEx) *types.VirtualMachineFileLayout {
	out := &types.VirtualMachineFileLayout{}
	names := make(map[int32]string, len(ex.File))
	for _, f := range ex.File {
		names[f.Key] = f.Name
		switch types.VirtualMachineFileLayoutExFileType(f.Type) {
		case types.VirtualMachineFileLayoutExFileTypeNvram, types.VirtualMachineFileLayoutExFileTypeSnapshotList,
			types.VirtualMachineFileLayoutExFileTypeExtendedConfig:
			out.ConfigFile = append(out.ConfigFile, relativeName(f.Name))
		case types.VirtualMachineFileLayoutExFileTypeLog:
			out.LogFile = append(out.LogFile, relativeName(f.Name))
		case types.VirtualMachineFileLayoutExFileTypeSwap:
			out.SwapFile = f.Name
		}
	}
	descriptors := func(units []types.VirtualMachineFileLayoutExDiskUnit) []string { // newest first: the attached one
		var out []string
		for i := len(units) - 1; i >= 0; i-- {
			out = append(out, names[units[i].FileKey[0]])
		}
		return out
	}
	for _, d := range ex.Disk {
		out.Disk = append(out.Disk, types.VirtualMachineFileLayoutDiskLayout{Key: d.Key, DiskFile: descriptors(d.Chain)})
	}
	for _, s := range ex.Snapshot {
		files := []string{names[s.DataKey]}
		if s.MemoryKey >= 0 {
			files = append(files, names[s.MemoryKey])
		}
		for _, d := range s.Disk {
			files = append(files, descriptors(d.Chain)...)
		}
		out.Snapshot = append(out.Snapshot, types.VirtualMachineFileLayoutSnapshotLayout{Key: s.Key, SnapshotFile: files})
	}
	return out
}

// relativeName is a VM file's name inside the VM directory: "[LocalDS_0] vm/vm.vmx" -> "vm.vmx".
func relativeName(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// storageOf sums a layoutEx's files into vm.storage / summary.storage (one datastore, nothing
// shared): committed is every file, uncommitted what the disks may still grow by.
func storageOf(ex *types.VirtualMachineFileLayoutEx, ds types.ManagedObjectReference, capacity int64, stamp time.Time) (*types.VirtualMachineStorageInfo, *types.VirtualMachineStorageSummary) {
	var committed, written int64
	for _, f := range ex.File {
		committed += f.Size
		if f.Type == string(types.VirtualMachineFileLayoutExFileTypeDiskExtent) {
			written += f.Size
		}
	}
	uncommitted := capacity - written
	if uncommitted < 0 {
		uncommitted = 0
	}
	info := &types.VirtualMachineStorageInfo{
		Timestamp: stamp,
		PerDatastoreUsage: []types.VirtualMachineUsageOnDatastore{{
			Datastore: ds, Committed: committed, Uncommitted: uncommitted, Unshared: committed,
		}},
	}
	summary := &types.VirtualMachineStorageSummary{Committed: committed, Uncommitted: uncommitted, Unshared: committed, Timestamp: stamp}
	return info, summary
}

// backedDevices returns a copy of devices whose disks are backed as vSphere shows a VM running
// on its layoutEx's chains: fileName is the newest delta, parent links down to the base disk.
// The base disk's backing (the innermost parent) keeps its settings; disks without a chain in
// ex are left as they are. The slice is new: the simulator's snapshot objects share the old one.
func backedDevices(devices []types.BaseVirtualDevice, ex *types.VirtualMachineFileLayoutEx) []types.BaseVirtualDevice {
	names := make(map[int32]string, len(ex.File))
	for _, f := range ex.File {
		names[f.Key] = f.Name
	}
	chains := make(map[int32][]string, len(ex.Disk))
	for _, d := range ex.Disk {
		for _, u := range d.Chain {
			chains[d.Key] = append(chains[d.Key], names[u.FileKey[0]])
		}
	}
	out := make([]types.BaseVirtualDevice, len(devices))
	copy(out, devices)
	for i, d := range out {
		disk, ok := d.(*types.VirtualDisk)
		if !ok || len(chains[disk.Key]) == 0 {
			continue
		}
		base, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		for base.Parent != nil {
			base = base.Parent
		}
		edited := *disk
		edited.Backing = backingChain(base, chains[disk.Key])
		out[i] = &edited
	}
	return out
}

// backingChain links copies of base for each file of a chain (base disk first); the deltas are
// sparse redo logs.
func backingChain(base *types.VirtualDiskFlatVer2BackingInfo, chain []string) *types.VirtualDiskFlatVer2BackingInfo {
	var b *types.VirtualDiskFlatVer2BackingInfo
	for n, name := range chain {
		link := *base
		link.Parent = b
		link.FileName = name
		if n > 0 {
			link.ThinProvisioned = types.NewBool(false)
			link.DeltaDiskFormat = string(types.VirtualDiskDeltaDiskFormatRedoLogFormat)
		}
		b = &link
	}
	return b
}

// refIndex maps each snapshot ref to its index in take order.
func (l *layout) refIndex() map[types.ManagedObjectReference]int {
	idx := make(map[types.ManagedObjectReference]int, len(l.snaps))
	for i, s := range l.snaps {
		idx[s.ref] = i
	}
	return idx
}
