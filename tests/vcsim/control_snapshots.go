// control_snapshots.go owns the snapshot changes of /_control: create, remove, remove all,
// rename, and the benchmark's churn of them. Each builds a new snapshot tree and a new layoutEx
// (livelayout.go) from copies, then publishes them with one Map.Update of the VM under its lock:
// snapshot, rootSnapshot, layoutEx, layout, storage, summary.storage and config.hardware.device
// (the disks' backings follow the running chain). Snapshot objects are registered and removed in
// the simulator's registry as its own CreateSnapshot_Task and RemoveSnapshot_Task do.
package main

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// snapshotSpec is what a new snapshot is asked to be.
type snapshotSpec struct {
	name, description string
	quiesce, memory   bool
}

func (c *controller) createSnapshotOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, badRequest("create_snapshot: name must not be empty")
	}
	spec := snapshotSpec{name: req.Name, quiesce: req.Quiesce, memory: req.Memory}
	if req.Description != nil {
		spec.description = *req.Description
	}
	ref, err := c.createSnapshot(vm, spec, c.sizes)
	if err != nil {
		return nil, err
	}
	return controlResult{"vm": vm.Self.Value, "snapshot": ref.Value}, nil
}

// createSnapshot takes a snapshot of vm as a child of its current one (a root without one); it
// becomes current.
func (c *controller) createSnapshot(vm *simulator.VirtualMachine, spec snapshotSpec, sizes *rand.Rand) (types.ManagedObjectReference, error) {
	var err error
	simulator.Map.WithLock(vm, func() {
		switch {
		case vm.Config == nil || vm.LayoutEx == nil:
			err = badRequest("vm %s: not fully created", vm.Self.Value)
		case vm.Config.Template:
			err = badRequest("vm %s is a template: templates cannot take snapshots", vm.Self.Value)
		case spec.memory && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn:
			err = badRequest("vm %s is %s: a memory snapshot needs a powered-on VM", vm.Self.Value, vm.Runtime.PowerState)
		}
	})
	if err != nil {
		return types.ManagedObjectReference{}, err
	}

	// Registered before the VM changes, outside its lock: Put notifies every handler.
	snap := &simulator.VirtualMachineSnapshot{}
	snap.Vm = vm.Self
	snap.Config = *vm.Config
	simulator.Map.Put(snap)
	ref := snap.Self

	var parent *types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		now := c.now()
		info := types.VirtualMachineSnapshotInfo{}
		if vm.Snapshot != nil {
			info.RootSnapshotList = copyTree(vm.Snapshot.RootSnapshotList)
			parent = vm.Snapshot.CurrentSnapshot
		}
		id := c.nextSnapshotID(vm.Self, info.RootSnapshotList)
		node := types.VirtualMachineSnapshotTree{
			Snapshot:        ref,
			Vm:              vm.Self,
			Name:            spec.name,
			Description:     spec.description,
			Id:              id,
			CreateTime:      now,
			State:           vm.Runtime.PowerState,
			Quiesced:        spec.quiesce,
			ReplaySupported: types.NewBool(false),
		}
		if p := nodeOrNil(info.RootSnapshotList, parent); p != nil {
			p.ChildSnapshotList = append(p.ChildSnapshotList, node)
		} else {
			parent = nil
			info.RootSnapshotList = append(info.RootSnapshotList, node)
		}
		info.CurrentSnapshot = &ref

		files := snapshotFiles{vmsnName: fmt.Sprintf("%s-Snapshot%d.vmsn", vm.Name, id), vmsnBytes: drawVmsnSize(sizes)}
		if spec.memory {
			files.memoryName = fmt.Sprintf("%s-Snapshot%d.vmem", vm.Name, id)
			files.memoryBytes = int64(vm.Config.Hardware.MemoryMB) * miB
		}
		l := newLiveLayout(vm.LayoutEx)
		l.take(ref, vm.Name, files, func(int) int64 { return drawNewDeltaSize(sizes) }, now)
		publishSnapshots(vm, &info, l.ex, now)
	})
	if parent != nil {
		if p, ok := simulator.Map.Get(*parent).(*simulator.VirtualMachineSnapshot); ok {
			simulator.Map.WithLock(p, func() {
				p.ChildSnapshot = append(append([]types.ManagedObjectReference(nil), p.ChildSnapshot...), ref)
			})
		}
	}
	return ref, nil
}

// nextSnapshotID is one above the highest snapshot id vm has had.
func (c *controller) nextSnapshotID(vm types.ManagedObjectReference, tree []types.VirtualMachineSnapshotTree) int32 {
	id := c.lastSnapshotID[vm]
	walkTree(tree, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
		if n.Id > id {
			id = n.Id
		}
	})
	id++
	c.lastSnapshotID[vm] = id
	return id
}

// drawNewDeltaSize draws what a delta holds shortly after it was made: 4 to 256 MiB,
// log-uniform, in whole 4 KiB blocks.
func drawNewDeltaSize(r *rand.Rand) int64 {
	lo, hi := math.Log(float64(4*miB)), math.Log(float64(256*miB))
	return int64(math.Exp(lo+r.Float64()*(hi-lo))) / (4 * kiB) * (4 * kiB)
}

func (c *controller) removeSnapshotOp(req controlRequest) (controlResult, error) {
	snap, vm, err := lookupSnapshot(req.Snapshot)
	if err != nil {
		return nil, err
	}
	current := c.removeSnapshot(vm, snap)
	res := controlResult{"vm": vm.Self.Value, "snapshot": snap.Self.Value, "current": ""}
	if current != nil {
		res["current"] = current.Value
	}
	return res, nil
}

// removeSnapshot deletes one snapshot as vSphere does (RemoveSnapshot_Task, removeChildren
// false, consolidate true): its children move up to its parent, in its place; when it was
// current its parent becomes current (none for a root). Returns the current snapshot after.
func (c *controller) removeSnapshot(vm *simulator.VirtualMachine, snap *simulator.VirtualMachineSnapshot) *types.ManagedObjectReference {
	ref := snap.Self
	var parent, current *types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot == nil {
			return
		}
		now := c.now()
		tree := copyTree(vm.Snapshot.RootSnapshotList)
		parent = parentOf(tree, ref)
		tree = removeNode(tree, ref)
		current = vm.Snapshot.CurrentSnapshot
		if current != nil && *current == ref {
			current = parent
		}
		var info *types.VirtualMachineSnapshotInfo
		if len(tree) > 0 {
			info = &types.VirtualMachineSnapshotInfo{CurrentSnapshot: current, RootSnapshotList: tree}
		}
		l := newLiveLayout(vm.LayoutEx)
		l.remove(ref, diskCapacities(vm.Config.Hardware.Device), now)
		publishSnapshots(vm, info, l.ex, now)
	})
	if parent != nil {
		if p, ok := simulator.Map.Get(*parent).(*simulator.VirtualMachineSnapshot); ok {
			simulator.Map.WithLock(p, func() {
				var children []types.ManagedObjectReference
				for _, child := range p.ChildSnapshot {
					if child == ref {
						children = append(children, snap.ChildSnapshot...)
					} else {
						children = append(children, child)
					}
				}
				p.ChildSnapshot = children
			})
		}
	}
	simulator.Map.Remove(ref)
	return current
}

func (c *controller) removeAllSnapshotsOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	var refs []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot == nil {
			return
		}
		walkTree(vm.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
			refs = append(refs, n.Snapshot)
		})
		now := c.now()
		l := newLiveLayout(vm.LayoutEx)
		l.removeAll(diskCapacities(vm.Config.Hardware.Device), now)
		var extra []types.PropertyChange
		if needed := vm.Runtime.ConsolidationNeeded; needed != nil && *needed {
			// The whole running chain was consolidated: no orphaned delta is left.
			extra = append(extra,
				types.PropertyChange{Name: "runtime.consolidationNeeded", Val: false},
				types.PropertyChange{Name: "summary.runtime.consolidationNeeded", Val: false})
		}
		publishSnapshots(vm, nil, l.ex, now, extra...)
	})
	for _, ref := range refs {
		simulator.Map.Remove(ref)
	}
	return controlResult{"vm": vm.Self.Value, "removed": len(refs)}, nil
}

func (c *controller) renameSnapshotOp(req controlRequest) (controlResult, error) {
	snap, vm, err := lookupSnapshot(req.Snapshot)
	if err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, badRequest("rename_snapshot: name must not be empty")
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot == nil {
			return
		}
		info := types.VirtualMachineSnapshotInfo{
			CurrentSnapshot:  vm.Snapshot.CurrentSnapshot,
			RootSnapshotList: copyTree(vm.Snapshot.RootSnapshotList),
		}
		if n := findNode(info.RootSnapshotList, snap.Self); n != nil {
			n.Name = req.Name
			if req.Description != nil {
				n.Description = *req.Description
			}
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "snapshot", Val: info}})
	})
	return controlResult{"vm": vm.Self.Value, "snapshot": snap.Self.Value}, nil
}

// publishSnapshots sets vm's snapshot info (nil: no snapshot), layoutEx and what follows from
// them, in one Map.Update. The VM's lock must be held. The config is replaced by a copy with the
// new device list before the update, so the in-place write of config.hardware.device that
// Map.Update then makes stores the same value.
func publishSnapshots(vm *simulator.VirtualMachine, info *types.VirtualMachineSnapshotInfo, ex *types.VirtualMachineFileLayoutEx, now time.Time, extra ...types.PropertyChange) {
	devices := backedDevices(vm.Config.Hardware.Device, ex)
	config := *vm.Config
	config.Hardware.Device = devices
	vm.Config = &config

	var snapshot interface{}
	var roots []types.ManagedObjectReference
	if info != nil {
		snapshot = *info
		for _, n := range info.RootSnapshotList {
			roots = append(roots, n.Snapshot)
		}
	}
	changes := []types.PropertyChange{
		{Name: "snapshot", Val: snapshot},
		{Name: "rootSnapshot", Val: nilIfEmpty(roots)},
		{Name: "layoutEx", Val: *ex},
		{Name: "layout", Val: *legacyLayoutOf(ex)},
		{Name: "config.hardware.device", Val: devices},
	}
	if len(vm.Datastore) > 0 {
		storage, summary := storageOf(ex, vm.Datastore[0], totalCapacity(devices), now)
		changes = append(changes,
			types.PropertyChange{Name: "storage", Val: *storage},
			types.PropertyChange{Name: "summary.storage", Val: *summary})
	}
	simulator.Map.Update(vm, append(changes, extra...))
}

// diskCapacities maps each disk's device key to its capacity in bytes.
func diskCapacities(devices []types.BaseVirtualDevice) map[int32]int64 {
	out := map[int32]int64{}
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out[disk.Key] = diskBytes(disk)
		}
	}
	return out
}

func diskBytes(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes != 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

func totalCapacity(devices []types.BaseVirtualDevice) int64 {
	var total int64
	for _, c := range diskCapacities(devices) {
		total += c
	}
	return total
}

// copyTree deep-copies a snapshot tree.
func copyTree(nodes []types.VirtualMachineSnapshotTree) []types.VirtualMachineSnapshotTree {
	if nodes == nil {
		return nil
	}
	out := make([]types.VirtualMachineSnapshotTree, len(nodes))
	for i, n := range nodes {
		out[i] = n
		out[i].ChildSnapshotList = copyTree(n.ChildSnapshotList)
	}
	return out
}

// walkTree calls f for every node, parents before children, with the node's parent.
func walkTree(nodes []types.VirtualMachineSnapshotTree, parent *types.ManagedObjectReference, f func(*types.VirtualMachineSnapshotTree, *types.ManagedObjectReference)) {
	for i := range nodes {
		f(&nodes[i], parent)
		walkTree(nodes[i].ChildSnapshotList, &nodes[i].Snapshot, f)
	}
}

func findNode(nodes []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) *types.VirtualMachineSnapshotTree {
	var found *types.VirtualMachineSnapshotTree
	walkTree(nodes, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
		if n.Snapshot == ref && found == nil {
			found = n
		}
	})
	return found
}

func nodeOrNil(nodes []types.VirtualMachineSnapshotTree, ref *types.ManagedObjectReference) *types.VirtualMachineSnapshotTree {
	if ref == nil {
		return nil
	}
	return findNode(nodes, *ref)
}

func parentOf(nodes []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) *types.ManagedObjectReference {
	var parent *types.ManagedObjectReference
	walkTree(nodes, nil, func(n *types.VirtualMachineSnapshotTree, p *types.ManagedObjectReference) {
		if n.Snapshot == ref && p != nil {
			q := *p
			parent = &q
		}
	})
	return parent
}

// removeNode takes ref out of a (copied) tree, its children taking its place.
func removeNode(nodes []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) []types.VirtualMachineSnapshotTree {
	var out []types.VirtualMachineSnapshotTree
	for _, n := range nodes {
		if n.Snapshot == ref {
			out = append(out, n.ChildSnapshotList...)
			continue
		}
		n.ChildSnapshotList = removeNode(n.ChildSnapshotList, ref)
		out = append(out, n)
	}
	return out
}

// newestSnapshot is the snapshot created last (the highest id among equal times).
func newestSnapshot(nodes []types.VirtualMachineSnapshotTree) *types.VirtualMachineSnapshotTree {
	var newest *types.VirtualMachineSnapshotTree
	walkTree(nodes, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
		if newest == nil || n.CreateTime.After(newest.CreateTime) ||
			n.CreateTime.Equal(newest.CreateTime) && n.Id > newest.Id {
			newest = n
		}
	})
	return newest
}

// churnOp changes the snapshots of a fraction of all VMs, for the benchmark: each chosen VM
// (templates are never chosen) without snapshots gets one, a VM with snapshots alternately loses
// its newest one or gets a new child of its current one. The choice and the sizes follow seed.
func (c *controller) churnOp(req controlRequest) (controlResult, error) {
	if !(req.Fraction > 0 && req.Fraction <= 1) {
		return nil, badRequest("churn: fraction %v: want 0 < fraction <= 1", req.Fraction)
	}
	all := simulator.Map.All("VirtualMachine")
	var vms []*simulator.VirtualMachine
	for _, e := range all {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var template bool
		simulator.Map.WithLock(vm, func() { template = vm.Config != nil && vm.Config.Template })
		if !template {
			vms = append(vms, vm)
		}
	}
	sort.Slice(vms, func(i, j int) bool { return morefLess(vms[i].Self, vms[j].Self) })
	n := int(math.Round(req.Fraction * float64(len(all))))
	if n > len(vms) {
		n = len(vms)
	}
	r := rand.New(rand.NewSource(req.Seed))
	for i := 0; i < n; i++ { // a partial Fisher-Yates shuffle: the first n are the sample
		j := i + r.Intn(len(vms)-i)
		vms[i], vms[j] = vms[j], vms[i]
	}
	var created, children, removed int
	for _, vm := range vms[:n] {
		did, err := c.churnOne(vm, r)
		if err != nil {
			return nil, fmt.Errorf("churn %s: %w", vm.Self.Value, err)
		}
		switch did {
		case "created":
			created++
		case "child":
			children++
		case "removed":
			removed++
		}
	}
	return controlResult{"vms": len(all), "changed": n, "created": created, "children": children, "removed": removed}, nil
}

func (c *controller) churnOne(vm *simulator.VirtualMachine, r *rand.Rand) (string, error) {
	var newest types.ManagedObjectReference
	var name string
	var on bool
	simulator.Map.WithLock(vm, func() {
		name = vm.Name
		on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		if vm.Snapshot != nil {
			if n := newestSnapshot(vm.Snapshot.RootSnapshotList); n != nil {
				newest = n.Snapshot
			}
		}
	})
	spec := snapshotSpec{quiesce: on && r.Intn(100) < 75}
	spec.name, spec.description = backupSnapshotName(r, name, c.now())
	if newest.Value == "" {
		_, err := c.createSnapshot(vm, spec, r)
		return "created", err
	}
	c.churns++
	if c.churns%2 == 1 {
		snap, ok := simulator.Map.Get(newest).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return "", fmt.Errorf("snapshot %s is not registered", newest.Value)
		}
		c.removeSnapshot(vm, snap)
		return "removed", nil
	}
	_, err := c.createSnapshot(vm, spec, r)
	return "child", err
}
