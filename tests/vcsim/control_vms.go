// control_vms.go owns the VM changes of /_control: Tools states, moving a VM to another host,
// adding and removing VMs. Adding and removing go through the simulator's API (CreateVM_Task,
// PowerOnVM_Task, PowerOffVM_Task, Destroy_Task), so the VM enters and leaves ContainerViews as
// it would on vCenter; Tools and placement have no API in the simulator (RelocateVM_Task does not
// move a VM between hosts' and pools' lists), so they are published with Map.Update.
package main

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

var toolsRunningStates = map[string]bool{toolsRunning: true, toolsNotRunning: true, toolsExecutingScripts: true}

func (c *controller) setToolsOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	if req.Status == nil && req.Running == nil && req.Version == nil {
		return nil, badRequest("set_tools: give status, running or version")
	}
	if req.Status != nil && *req.Status != "" && toolsVersionFor[*req.Status] == "" {
		return nil, badRequest("set_tools: status %q: want a guest.toolsVersionStatus2 value such as %s, or \"\" for unset", *req.Status, toolsNeedUpgrade)
	}
	if req.Running != nil && !toolsRunningStates[*req.Running] {
		return nil, badRequest("set_tools: running %q: want %s, %s or %s", *req.Running, toolsRunning, toolsNotRunning, toolsExecutingScripts)
	}
	var changes []types.PropertyChange
	simulator.Map.WithLock(vm, func() {
		plan := &vmPlan{name: vm.Name, guestID: vm.Config.GuestId}
		if g := vm.Guest; g != nil {
			plan.tools = toolsPlan{versionStatus2: g.ToolsVersionStatus2, runningStatus: g.ToolsRunningStatus, version: g.ToolsVersion}
		}
		if req.Status != nil {
			plan.tools.versionStatus2 = *req.Status
			plan.tools.version = toolsVersionFor[*req.Status] // the version the status comes with
		}
		if req.Running != nil {
			plan.tools.runningStatus = *req.Running
		}
		if req.Version != nil {
			plan.tools.version = *req.Version
		}
		before := guestFields(vm)
		editGuest(vm, plan) // new guest and summary.guest structs: nothing edited in place
		after := guestFields(vm)
		for _, name := range guestFieldNames {
			if before[name] != after[name] {
				changes = append(changes, types.PropertyChange{Name: name, Val: nilIfEmpty(after[name])})
			}
		}
		simulator.Map.Update(vm, changes)
	})
	return controlResult{"vm": vm.Self.Value, "changes": changeNames(changes)}, nil
}

// guestFieldNames are the guest.* and summary.guest.* properties editGuest sets.
var guestFieldNames = []string{
	"guest.toolsVersionStatus2", "guest.toolsVersionStatus", "guest.toolsStatus", "guest.toolsRunningStatus",
	"guest.toolsVersion", "guest.guestState", "guest.guestId", "guest.guestFullName", "guest.hostName",
	"summary.guest.toolsVersionStatus2", "summary.guest.toolsVersionStatus", "summary.guest.toolsStatus",
	"summary.guest.toolsRunningStatus", "summary.guest.guestId", "summary.guest.guestFullName", "summary.guest.hostName",
}

func guestFields(vm *simulator.VirtualMachine) map[string]string {
	out := map[string]string{}
	if g := vm.Guest; g != nil {
		out["guest.toolsVersionStatus2"] = g.ToolsVersionStatus2
		out["guest.toolsVersionStatus"] = g.ToolsVersionStatus
		out["guest.toolsStatus"] = string(g.ToolsStatus)
		out["guest.toolsRunningStatus"] = g.ToolsRunningStatus
		out["guest.toolsVersion"] = g.ToolsVersion
		out["guest.guestState"] = g.GuestState
		out["guest.guestId"] = g.GuestId
		out["guest.guestFullName"] = g.GuestFullName
		out["guest.hostName"] = g.HostName
	}
	if s := vm.Summary.Guest; s != nil {
		out["summary.guest.toolsVersionStatus2"] = s.ToolsVersionStatus2
		out["summary.guest.toolsVersionStatus"] = s.ToolsVersionStatus
		out["summary.guest.toolsStatus"] = string(s.ToolsStatus)
		out["summary.guest.toolsRunningStatus"] = s.ToolsRunningStatus
		out["summary.guest.guestId"] = s.GuestId
		out["summary.guest.guestFullName"] = s.GuestFullName
		out["summary.guest.hostName"] = s.HostName
	}
	return out
}

// moveVMOp moves a VM to another host, as a vMotion does: runtime.host changes; to a host of
// another cluster or standalone host the VM also moves to that compute resource's root resource
// pool, and to one of another datacenter also to that datacenter's VM folder and datastore.
// The lists that name the VM (host.vm, resourcePool.vm, folder.childEntity, datastore.vm) follow.
func (c *controller) moveVMOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	host, err := lookupHost(req.Host)
	if err != nil {
		return nil, err
	}
	var from types.ManagedObjectReference
	var pool, parent *types.ManagedObjectReference
	var datastores []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.Host != nil {
			from = *vm.Runtime.Host
		}
		pool, parent = vm.ResourcePool, vm.Parent
		datastores = append(datastores, vm.Datastore...)
	})
	if from == host.Self {
		return controlResult{"vm": vm.Self.Value, "host": host.Self.Value, "changes": ""}, nil
	}
	if host.Parent == nil {
		return nil, badRequest("host %s has no compute resource", host.Self.Value)
	}
	cr := computeResource(*host.Parent)
	if cr == nil || cr.ResourcePool == nil {
		return nil, badRequest("host %s: its parent %s is not a compute resource", host.Self.Value, host.Parent.Value)
	}

	changes := []types.PropertyChange{
		{Name: "runtime.host", Val: host.Self},
		{Name: "summary.runtime.host", Val: host.Self},
	}
	if pool == nil || ownerOf(*pool) != *host.Parent {
		if pool != nil {
			updateRefs(*pool, "vm", vm.Self, false)
		}
		updateRefs(*cr.ResourcePool, "vm", vm.Self, true)
		changes = append(changes, types.PropertyChange{Name: "resourcePool", Val: *cr.ResourcePool})
		if cr.EnvironmentBrowser != nil {
			changes = append(changes, types.PropertyChange{Name: "environmentBrowser", Val: *cr.EnvironmentBrowser})
		}
	}
	oldDC, newDC := datacenterOf(vm.Self), datacenterOf(host.Self)
	if newDC != nil && (oldDC == nil || oldDC.Self != newDC.Self) {
		if parent != nil {
			updateRefs(*parent, "childEntity", vm.Self, false)
		}
		updateRefs(newDC.VmFolder, "childEntity", vm.Self, true)
		changes = append(changes, types.PropertyChange{Name: "parent", Val: newDC.VmFolder})
		if moved := datastoresOn(host, datastores); len(moved) > 0 {
			for _, ds := range datastores {
				updateRefs(ds, "vm", vm.Self, false)
			}
			for _, ds := range moved {
				updateRefs(ds, "vm", vm.Self, true)
			}
			changes = append(changes, types.PropertyChange{Name: "datastore", Val: moved})
		}
	}
	if from.Value != "" {
		updateRefs(from, "vm", vm.Self, false)
	}
	updateRefs(host.Self, "vm", vm.Self, true)
	simulator.Map.WithLock(vm, func() { simulator.Map.Update(vm, changes) })
	return controlResult{"vm": vm.Self.Value, "host": host.Self.Value, "changes": changeNames(changes)}, nil
}

// computeResource is the ComputeResource (standalone host or cluster) ref names, nil if none.
func computeResource(ref types.ManagedObjectReference) *mo.ComputeResource {
	switch cr := simulator.Map.Get(ref).(type) {
	case *mo.ComputeResource:
		return cr
	case *simulator.ClusterComputeResource:
		return &cr.ComputeResource
	}
	return nil
}

// ownerOf is the compute resource a resource pool belongs to.
func ownerOf(pool types.ManagedObjectReference) types.ManagedObjectReference {
	for ref := pool; ; {
		e, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok || e.Entity().Parent == nil {
			return types.ManagedObjectReference{}
		}
		ref = *e.Entity().Parent
		if ref.Type == "ComputeResource" || ref.Type == "ClusterComputeResource" {
			return ref
		}
	}
}

// datacenterOf is the datacenter an entity is in, nil if none.
func datacenterOf(ref types.ManagedObjectReference) *simulator.Datacenter {
	for {
		e, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok {
			return nil
		}
		if dc, ok := e.(*simulator.Datacenter); ok {
			return dc
		}
		if e.Entity().Parent == nil {
			return nil
		}
		ref = *e.Entity().Parent
	}
}

// datastoresOn maps datastores to those of the same name mounted on host (its first one when
// there is no such name).
func datastoresOn(host *simulator.HostSystem, datastores []types.ManagedObjectReference) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	for _, ds := range datastores {
		old, _ := simulator.Map.Get(ds).(*simulator.Datastore)
		var match *types.ManagedObjectReference
		for i, candidate := range host.Datastore {
			d, ok := simulator.Map.Get(candidate).(*simulator.Datastore)
			if ok && old != nil && d.Name == old.Name {
				match = &host.Datastore[i]
			}
		}
		if match == nil && len(host.Datastore) > 0 {
			match = &host.Datastore[0]
		}
		if match != nil {
			out = append(out, *match)
		}
	}
	return out
}

// updateRefs adds ref to (or removes it from) the list property of obj named field, as a new
// slice published with Map.Update under obj's lock.
func updateRefs(obj types.ManagedObjectReference, field string, ref types.ManagedObjectReference, add bool) {
	o := simulator.Map.Get(obj)
	if o == nil {
		return
	}
	simulator.Map.WithLock(o, func() {
		var list *[]types.ManagedObjectReference
		switch x := o.(type) {
		case *simulator.HostSystem:
			list = &x.Vm
		case *simulator.ResourcePool:
			list = &x.Vm
		case *simulator.Folder:
			list = &x.ChildEntity
		case *simulator.Datastore:
			list = &x.Vm
		default:
			return
		}
		var out []types.ManagedObjectReference
		for _, r := range *list {
			if r != ref {
				out = append(out, r)
			}
		}
		if add {
			out = append(out, ref)
		}
		simulator.Map.Update(o, []types.PropertyChange{{Name: field, Val: nilIfEmpty(out)}})
	})
}

// addVMOp creates a powered-on VM with one thin 40 GiB disk and Tools current and running, on
// the given host or the first host of the first pool, through the API: it enters ContainerViews
// like any new VM. The files, disks and Tools the API leaves out are then set as the scenarios
// set them (editVM) and reported in one more update, so a client that saw the VM enter before
// they were set still ends up with them.
func (c *controller) addVMOp(req controlRequest) (controlResult, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || strings.ContainsAny(name, "/\\%") {
		return nil, badRequest("add_vm: name %q: want a non-empty name without / \\ %%", req.Name)
	}
	for _, e := range simulator.Map.All("VirtualMachine") {
		if e.Entity().Name == name {
			return nil, badRequest("add_vm: a VM named %q exists (%s)", name, e.Reference().Value)
		}
	}
	pl, err := placeNewVM(name, req.Host)
	if err != nil {
		return nil, err
	}
	now := c.now()
	plan := &vmPlan{
		placement: pl,
		name:      name,
		guestID:   "rhel7_64Guest",
		numCPUs:   2,
		memoryMB:  4096,
		power:     poweredOn,
		bootTime:  now.Truncate(time.Second),
		disks:     []diskPlan{{capacityBytes: 40 * giB, thin: true, usedBytes: 8 * giB}},
		tools:     tools(toolsCurrent, toolsRunning),
		sizes:     rand.New(rand.NewSource(c.sizes.Int63())),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, err := createVM(ctx, c.client, plan)
	if err != nil {
		return nil, err
	}
	if err := editVM(ref, plan, newLayout(plan), now); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", name, ref.Value, err)
	}
	vm := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	var datastores []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		simulator.Map.Update(vm, currentValues(vm))
		datastores = append(datastores, vm.Datastore...)
	})
	publishDatastoreSpace(datastores)
	return controlResult{"vm": ref.Value, "host": pl.host.ref.Value}, nil
}

// setDatastoreFreeOp sets a datastore's free space (summary.freeSpace and info.freeSpace), as
// files written by others would: {"op":"set_datastore_free","datastore":"LocalDS_0","free_bytes":N}.
// The datastore is named by its id, or by its name where only one has it.
func (c *controller) setDatastoreFreeOp(req controlRequest) (controlResult, error) {
	ds, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "Datastore", Value: req.Datastore}).(*simulator.Datastore)
	if !ok {
		var named []*simulator.Datastore
		for _, e := range simulator.Map.All("Datastore") {
			if d := e.(*simulator.Datastore); d.Name == req.Datastore {
				named = append(named, d)
			}
		}
		switch len(named) {
		case 0:
			return nil, notFound("datastore %q: not in the inventory", req.Datastore)
		case 1:
			ds = named[0]
		default:
			return nil, badRequest("datastore %q: %d datastores have that name; give its id", req.Datastore, len(named))
		}
	}
	free := *req.FreeBytes
	if free < 0 || free > ds.Summary.Capacity {
		return nil, badRequest("free_bytes %d: not within 0 and the capacity %d", free, ds.Summary.Capacity)
	}
	simulator.Map.WithLock(ds, func() {
		ds.Summary.FreeSpace = free
		ds.Info.GetDatastoreInfo().FreeSpace = free
	})
	publishDatastoreSpace([]types.ManagedObjectReference{ds.Self})
	return controlResult{"datastore": ds.Self.Value, "free_bytes": free}, nil
}

// publishDatastoreSpace reports the free space of datastores: the simulator takes a new VM's
// disks from it (and gives a destroyed VM's back) without telling WaitForUpdatesEx.
func publishDatastoreSpace(datastores []types.ManagedObjectReference) {
	for _, ref := range datastores {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			simulator.Map.Update(ds, []types.PropertyChange{
				{Name: "summary.freeSpace", Val: ds.Summary.FreeSpace},
				{Name: "info", Val: ds.Info},
			})
		})
	}
}

// placeNewVM picks the pool and host of a new VM: hostID's, or the first host of the first pool.
func placeNewVM(name, hostID string) (placement, error) {
	pools := listPools()
	if len(pools) == 0 {
		return placement{}, fmt.Errorf("no pool to create a VM in")
	}
	if hostID == "" {
		return placement{pool: pools[0], host: pools[0].hosts[0], name: name}, nil
	}
	if _, err := lookupHost(hostID); err != nil {
		return placement{}, err
	}
	for _, p := range pools {
		for _, h := range p.hosts {
			if h.ref.Value == hostID {
				return placement{pool: p, host: h, name: name}, nil
			}
		}
	}
	return placement{}, badRequest("host %s is in no compute resource", hostID)
}

// currentValues restates the properties a client reads of a VM with their current values (the
// VM's lock must be held). Map.Update writes them back unchanged.
func currentValues(vm *simulator.VirtualMachine) []types.PropertyChange {
	changes := []types.PropertyChange{
		{Name: "name", Val: vm.Name},
		{Name: "runtime.powerState", Val: vm.Runtime.PowerState},
		{Name: "config.guestId", Val: vm.Config.GuestId},
		{Name: "config.template", Val: vm.Config.Template},
		{Name: "config.hardware.device", Val: vm.Config.Hardware.Device},
		{Name: "layoutEx", Val: *vm.LayoutEx},
		{Name: "layout", Val: *vm.Layout},
	}
	if vm.Runtime.Host != nil {
		changes = append(changes, types.PropertyChange{Name: "runtime.host", Val: *vm.Runtime.Host})
	}
	if vm.Runtime.ConsolidationNeeded != nil {
		changes = append(changes, types.PropertyChange{Name: "runtime.consolidationNeeded", Val: *vm.Runtime.ConsolidationNeeded})
	}
	if vm.Runtime.BootTime != nil {
		changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: *vm.Runtime.BootTime})
	}
	if vm.Summary.Storage != nil {
		changes = append(changes, types.PropertyChange{Name: "summary.storage", Val: *vm.Summary.Storage})
	}
	if vm.Storage != nil {
		changes = append(changes, types.PropertyChange{Name: "storage", Val: *vm.Storage})
	}
	fields := guestFields(vm)
	for _, name := range guestFieldNames {
		if fields[name] != "" {
			changes = append(changes, types.PropertyChange{Name: name, Val: fields[name]})
		}
	}
	return changes
}

// removeVMOp destroys a VM through Destroy_Task: it leaves every view. Its snapshot objects go
// too. Destroy_Task wants the VM powered off; it is powered off without an update (no
// PowerOffVM_Task), because the simulator's WaitForUpdatesEx panics on a modify of an object
// that is gone by the time it handles it, when the change's name matches no path of the filter's
// VirtualMachine spec and the filter has specs of other types (PropertyFilter.matches looks the
// object up to find its type): PowerOffVM_Task reports summary.runtime.powerState, and the
// exporter's filter is such a filter. A client sees the VM leave, not power off first.
func (c *controller) removeVMOp(req controlRequest) (controlResult, error) {
	vm, err := lookupVM(req.VM)
	if err != nil {
		return nil, err
	}
	var snapshots, datastores []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		datastores = append(datastores, vm.Datastore...)
		if vm.Snapshot != nil {
			walkTree(vm.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
				snapshots = append(snapshots, n.Snapshot)
			})
		}
		vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
		vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := methods.Destroy_Task(ctx, c.client, &types.Destroy_Task{This: vm.Self})
	if err == nil {
		_, err = taskResult(res.Returnval)
	}
	if err != nil {
		return nil, fmt.Errorf("Destroy_Task %s: %w", vm.Self.Value, err)
	}
	for _, ref := range snapshots {
		simulator.Map.Remove(ref)
	}
	publishDatastoreSpace(datastores)
	delete(c.lastSnapshotID, vm.Self)
	return controlResult{"vm": vm.Self.Value}, nil
}
