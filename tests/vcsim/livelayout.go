// livelayout.go owns changing a served VM's files at run time, the way ESXi changes them when a
// snapshot is taken or deleted: it edits a copy of the VM's layoutEx (files, running disk chains,
// snapshot layouts) and never the served one. It does not touch the simulator; control.go
// publishes the result. layout.go builds the startup layouts; both keep the same shape: chains
// ordered from the base disk to the newest delta, each unit [descriptor, extent].
package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// liveLayout is a deep copy of a VM's layoutEx being edited.
type liveLayout struct {
	ex *types.VirtualMachineFileLayoutEx
}

func newLiveLayout(ex *types.VirtualMachineFileLayoutEx) *liveLayout {
	out := &types.VirtualMachineFileLayoutEx{}
	if ex != nil {
		out.Timestamp = ex.Timestamp
		out.File = append([]types.VirtualMachineFileLayoutExFileInfo(nil), ex.File...)
		out.Disk = copyDiskLayouts(ex.Disk)
		for _, s := range ex.Snapshot {
			s.Disk = copyDiskLayouts(s.Disk)
			out.Snapshot = append(out.Snapshot, s)
		}
	}
	return &liveLayout{ex: out}
}

func copyDiskLayouts(disks []types.VirtualMachineFileLayoutExDiskLayout) []types.VirtualMachineFileLayoutExDiskLayout {
	out := make([]types.VirtualMachineFileLayoutExDiskLayout, len(disks))
	for i, d := range disks {
		out[i].Key = d.Key
		out[i].Chain = copyChain(d.Chain)
	}
	return out
}

func copyChain(chain []types.VirtualMachineFileLayoutExDiskUnit) []types.VirtualMachineFileLayoutExDiskUnit {
	out := make([]types.VirtualMachineFileLayoutExDiskUnit, len(chain))
	for i, u := range chain {
		out[i].FileKey = append([]int32(nil), u.FileKey...)
	}
	return out
}

func (l *liveLayout) fileIndex(key int32) int {
	for i := range l.ex.File {
		if l.ex.File[i].Key == key {
			return i
		}
	}
	return -1
}

func (l *liveLayout) size(key int32) int64 {
	if i := l.fileIndex(key); i >= 0 {
		return l.ex.File[i].Size
	}
	return 0
}

func (l *liveLayout) setSize(key int32, size int64) {
	if i := l.fileIndex(key); i >= 0 {
		l.ex.File[i].Size = size
		l.ex.File[i].UniqueSize = size
	}
}

// addFile adds a file under the next free key (one above the highest, as vSphere numbers them).
func (l *liveLayout) addFile(name string, kind types.VirtualMachineFileLayoutExFileType, size int64) int32 {
	key := int32(0)
	for _, f := range l.ex.File {
		if f.Key >= key {
			key = f.Key + 1
		}
	}
	l.ex.File = append(l.ex.File, types.VirtualMachineFileLayoutExFileInfo{
		Key:        key,
		Name:       name,
		Type:       string(kind),
		Size:       size,
		UniqueSize: size,
		Accessible: types.NewBool(true),
	})
	return key
}

func (l *liveLayout) removeFiles(keys map[int32]bool) {
	kept := l.ex.File[:0]
	for _, f := range l.ex.File {
		if !keys[f.Key] {
			kept = append(kept, f)
		}
	}
	l.ex.File = kept
}

// dir is the VM directory, "[LocalDS_0] vm", taken from the .vmx file.
func (l *liveLayout) dir() string {
	for _, f := range l.ex.File {
		if f.Type == string(types.VirtualMachineFileLayoutExFileTypeConfig) {
			return f.Name[:strings.LastIndexByte(f.Name, '/')]
		}
	}
	return ""
}

func (l *liveLayout) hasFileOfType(kind types.VirtualMachineFileLayoutExFileType) bool {
	for _, f := range l.ex.File {
		if f.Type == string(kind) {
			return true
		}
	}
	return false
}

var deltaNumber = regexp.MustCompile(`-(\d{6})(?:-delta)?\.vmdk$`)

// nextDelta names the next delta of the disk whose base descriptor is base: the base name with
// the number after the highest in use, "[LocalDS_0] vm/vm_1-000004".
func (l *liveLayout) nextDelta(base string) string {
	stem := strings.TrimSuffix(base, ".vmdk")
	highest := 0
	for _, f := range l.ex.File {
		if !strings.HasPrefix(f.Name, stem+"-") {
			continue
		}
		if m := deltaNumber.FindStringSubmatch(f.Name[len(stem):]); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > highest {
				highest = n
			}
		}
	}
	return fmt.Sprintf("%s-%06d", stem, highest+1)
}

func (l *liveLayout) name(key int32) string {
	if i := l.fileIndex(key); i >= 0 {
		return l.ex.File[i].Name
	}
	return ""
}

// snapshotFiles is what a snapshot adds besides its deltas: the .vmsn and, for a memory
// snapshot, the .vmem.
type snapshotFiles struct {
	vmsnName    string // "vm-Snapshot7.vmsn", relative to the VM directory
	vmsnBytes   int64
	memoryName  string // "" without memory
	memoryBytes int64
}

// take records snapshot ref the way ESXi takes it: the snapshot keeps the chains the VM ran on,
// and every disk moves to a new delta on top (deltaBytes(i) is disk i's new extent size). The
// .vmsd is added when the VM has none.
func (l *liveLayout) take(ref types.ManagedObjectReference, vmName string, files snapshotFiles, deltaBytes func(disk int) int64, stamp time.Time) {
	dir := l.dir()
	if !l.hasFileOfType(types.VirtualMachineFileLayoutExFileTypeSnapshotList) {
		l.addFile(dir+"/"+vmName+".vmsd", types.VirtualMachineFileLayoutExFileTypeSnapshotList, vmsdBytes)
	}
	s := types.VirtualMachineFileLayoutExSnapshotLayout{
		Key:       ref,
		DataKey:   l.addFile(dir+"/"+files.vmsnName, types.VirtualMachineFileLayoutExFileTypeSnapshotData, files.vmsnBytes),
		MemoryKey: -1,
		Disk:      copyDiskLayouts(l.ex.Disk),
	}
	if files.memoryName != "" {
		s.MemoryKey = l.addFile(dir+"/"+files.memoryName, types.VirtualMachineFileLayoutExFileTypeSnapshotMemory, files.memoryBytes)
	}
	l.ex.Snapshot = append(l.ex.Snapshot, s)
	for i := range l.ex.Disk {
		d := &l.ex.Disk[i]
		if len(d.Chain) == 0 {
			continue
		}
		name := l.nextDelta(l.name(d.Chain[0].FileKey[0]))
		unit := types.VirtualMachineFileLayoutExDiskUnit{FileKey: []int32{
			l.addFile(name+".vmdk", types.VirtualMachineFileLayoutExFileTypeDiskDescriptor, deltaDescriptorBytes),
			l.addFile(name+"-delta.vmdk", types.VirtualMachineFileLayoutExFileTypeDiskExtent, deltaBytes(i)),
		}}
		d.Chain = append(d.Chain, unit)
	}
	l.ex.Timestamp = stamp
}

// chainRef points at one disk chain of the layout: the running one (snapshot -1) or a snapshot's.
type chainRef struct {
	snapshot int
	disk     int
}

func (l *liveLayout) chain(c chainRef) *[]types.VirtualMachineFileLayoutExDiskUnit {
	if c.snapshot < 0 {
		return &l.ex.Disk[c.disk].Chain
	}
	return &l.ex.Snapshot[c.snapshot].Disk[c.disk].Chain
}

// chainsOf lists every chain of the disk with the given device key.
func (l *liveLayout) chainsOf(key int32) []chainRef {
	var out []chainRef
	for i, d := range l.ex.Disk {
		if d.Key == key {
			out = append(out, chainRef{-1, i})
		}
	}
	for s := range l.ex.Snapshot {
		for i, d := range l.ex.Snapshot[s].Disk {
			if d.Key == key {
				out = append(out, chainRef{s, i})
			}
		}
	}
	return out
}

func sameUnit(a, b types.VirtualMachineFileLayoutExDiskUnit) bool {
	return len(a.FileKey) > 0 && len(b.FileKey) > 0 && a.FileKey[0] == b.FileKey[0]
}

func hasPrefix(chain, prefix []types.VirtualMachineFileLayoutExDiskUnit) bool {
	if len(prefix) > len(chain) {
		return false
	}
	for i := range prefix {
		if !sameUnit(chain[i], prefix[i]) {
			return false
		}
	}
	return true
}

// extent is a unit's data file (the descriptor when a unit has only one file).
func extent(u types.VirtualMachineFileLayoutExDiskUnit) int32 { return u.FileKey[len(u.FileKey)-1] }

// remove deletes snapshot ref's files the way ESXi deletes a snapshot. Per disk, the delta that
// holds what was written on top of the snapshot's chain (its one successor in the other chains)
// is merged down into the newest file of that chain: it leaves every chain, its size goes to the
// file it merged into (capped at the disk's capacity), and it is deleted. When the snapshot's
// chain has several successors (a branch point, or the VM running beside its children) or is
// shared exactly by another chain, nothing can be merged and the disks stay as they are. The
// .vmsn, the .vmem and disk files no chain holds any more are deleted. capacity maps device keys
// to disk capacities in bytes.
func (l *liveLayout) remove(ref types.ManagedObjectReference, capacity map[int32]int64, stamp time.Time) {
	index := -1
	for i, s := range l.ex.Snapshot {
		if s.Key == ref {
			index = i
		}
	}
	if index < 0 {
		return
	}
	gone := l.ex.Snapshot[index]
	l.ex.Snapshot = append(l.ex.Snapshot[:index:index], l.ex.Snapshot[index+1:]...)
	deleted := map[int32]bool{gone.DataKey: true}
	if gone.MemoryKey >= 0 {
		deleted[gone.MemoryKey] = true
	}
	for _, d := range gone.Disk {
		l.mergeSuccessor(d.Key, d.Chain, capacity[d.Key], deleted)
	}
	l.removeFiles(deleted)
	l.removeUnheldDiskFiles()
	l.ex.Timestamp = stamp
}

// mergeSuccessor merges the one delta that follows chain (in the disk's remaining chains) into
// chain's newest file; see remove.
func (l *liveLayout) mergeSuccessor(key int32, chain []types.VirtualMachineFileLayoutExDiskUnit, capacity int64, deleted map[int32]bool) {
	if len(chain) == 0 {
		return
	}
	var successor *types.VirtualMachineFileLayoutExDiskUnit
	for _, c := range l.chainsOf(key) {
		other := *l.chain(c)
		if !hasPrefix(other, chain) {
			continue
		}
		if len(other) == len(chain) {
			return // another chain ends here too: its files must stay as they are
		}
		next := other[len(chain)]
		if successor != nil && !sameUnit(*successor, next) {
			return // a branch point: nothing to merge into
		}
		successor = &next
	}
	if successor == nil {
		return
	}
	merged := *successor
	for _, c := range l.chainsOf(key) {
		p := l.chain(c)
		if hasPrefix(*p, chain) && len(*p) > len(chain) {
			*p = append((*p)[:len(chain):len(chain)], (*p)[len(chain)+1:]...)
		}
	}
	into := extent(chain[len(chain)-1])
	size := l.size(into) + l.size(extent(merged))
	if capacity > 0 && size > capacity {
		size = capacity
	}
	l.setSize(into, size)
	for _, k := range merged.FileKey {
		deleted[k] = true
	}
}

// removeAll deletes every snapshot the way "Delete all" does: each disk's running chain is
// consolidated into its base disk (which grows by the deltas' sizes, capped at the capacity),
// and every .vmsn, .vmem and delta file is deleted. The .vmsd stays, as on ESXi.
func (l *liveLayout) removeAll(capacity map[int32]int64, stamp time.Time) {
	deleted := map[int32]bool{}
	for _, s := range l.ex.Snapshot {
		deleted[s.DataKey] = true
		if s.MemoryKey >= 0 {
			deleted[s.MemoryKey] = true
		}
	}
	l.ex.Snapshot = nil
	for i := range l.ex.Disk {
		d := &l.ex.Disk[i]
		if len(d.Chain) < 2 {
			continue
		}
		base := extent(d.Chain[0])
		size := l.size(base)
		for _, u := range d.Chain[1:] {
			size += l.size(extent(u))
		}
		if c := capacity[d.Key]; c > 0 && size > c {
			size = c
		}
		l.setSize(base, size)
		d.Chain = d.Chain[:1]
	}
	l.removeFiles(deleted)
	l.removeUnheldDiskFiles()
	l.ex.Timestamp = stamp
}

// removeUnheldDiskFiles deletes disk descriptors and extents that no chain holds.
func (l *liveLayout) removeUnheldDiskFiles() {
	held := map[int32]bool{}
	mark := func(disks []types.VirtualMachineFileLayoutExDiskLayout) {
		for _, d := range disks {
			for _, u := range d.Chain {
				for _, k := range u.FileKey {
					held[k] = true
				}
			}
		}
	}
	mark(l.ex.Disk)
	for _, s := range l.ex.Snapshot {
		mark(s.Disk)
	}
	unheld := map[int32]bool{}
	for _, f := range l.ex.File {
		isDisk := f.Type == string(types.VirtualMachineFileLayoutExFileTypeDiskDescriptor) ||
			f.Type == string(types.VirtualMachineFileLayoutExFileTypeDiskExtent)
		if isDisk && !held[f.Key] {
			unheld[f.Key] = true
		}
	}
	l.removeFiles(unheld)
}
