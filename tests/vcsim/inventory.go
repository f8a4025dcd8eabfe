// inventory.go owns the simulator's inventory: datacenters, clusters, hosts and datastores made by
// govmomi's VPX model, and the placement and creation of VMs through the API (CreateVM_Task,
// PowerOnVM_Task, SuspendVM_Task, MarkAsTemplate). It does not shape snapshots or guest state.
package main

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// datastoreName is the datastore the VPX model mounts on every host of a datacenter, where VMs go
// unless their plan names another (the backup scenario has LocalDS_1 too).
const datastoreName = "LocalDS_0"

// Device keys as vSphere numbers them: the first SCSI controller is 1000, its disks 2000, 2001, ….
const (
	scsiControllerKey = 1000
	firstDiskKey      = 2000
)

// inventoryShape is what the VPX model builds before any VM exists.
type inventoryShape struct {
	datacenters     int
	clusters        int // per datacenter
	hostsPerCluster int
	standaloneHosts int // per datacenter
	datastores      int // per datacenter, mounted on all its hosts; 0 means 1
}

// host is a HostSystem a VM can run on.
type host struct {
	ref  types.ManagedObjectReference
	name string
}

// pool is where VMs are placed: a cluster's root resource pool or a standalone host's.
type pool struct {
	datacenterName string
	clusterName    string // empty for a standalone host
	namePrefix     string // the simulator's naming: DC0_C0_RP0 (cluster) or DC0_H0 (standalone host)
	ref            types.ManagedObjectReference
	hosts          []host
	vmFolder       types.ManagedObjectReference
	placed         int // VMs placed so far, for names and host round-robin
}

// placement is where one VM goes.
type placement struct {
	pool *pool
	host host
	name string
}

// place picks the next VM name and host of p (hosts in turn).
func (p *pool) place() placement {
	pl := placement{
		pool: p,
		host: p.hosts[p.placed%len(p.hosts)],
		name: fmt.Sprintf("%s_VM%d", p.namePrefix, p.placed),
	}
	p.placed++
	return pl
}

// newModel builds the VPX model's inventory without VMs; VMs are created by createVM.
func newModel(shape inventoryShape) (*simulator.Model, error) {
	m := simulator.VPX()
	m.Datacenter = shape.datacenters
	m.Cluster = shape.clusters
	m.ClusterHost = shape.hostsPerCluster
	m.Host = shape.standaloneHosts
	m.Datastore = 1
	if shape.datastores > 1 {
		m.Datastore = shape.datastores
	}
	m.Portgroup = 0
	m.Machine = 0
	m.Autostart = false
	if err := m.Create(); err != nil {
		m.Remove()
		return nil, err
	}
	return m, nil
}

// listPools returns every pool in creation order: per datacenter, standalone hosts then clusters.
func listPools() []*pool {
	var dcs []*simulator.Datacenter
	for _, e := range simulator.Map.All("Datacenter") {
		dcs = append(dcs, e.(*simulator.Datacenter))
	}
	sort.Slice(dcs, func(i, j int) bool { return morefLess(dcs[i].Self, dcs[j].Self) })

	var pools []*pool
	for _, dc := range dcs {
		hostFolder := simulator.Map.Get(dc.HostFolder).(*simulator.Folder)
		for _, child := range hostFolder.ChildEntity {
			var cr *mo.ComputeResource
			cluster := ""
			switch obj := simulator.Map.Get(child).(type) {
			case *mo.ComputeResource:
				cr = obj
			case *simulator.ClusterComputeResource:
				cr = &obj.ComputeResource
				cluster = obj.Name
			default:
				continue
			}
			p := &pool{
				datacenterName: dc.Name,
				clusterName:    cluster,
				ref:            *cr.ResourcePool,
				vmFolder:       dc.VmFolder,
			}
			for _, h := range cr.Host {
				p.hosts = append(p.hosts, host{ref: h, name: simulator.Map.Get(h).(*simulator.HostSystem).Name})
			}
			if cluster != "" {
				p.namePrefix = cluster + "_RP0"
			} else if len(p.hosts) > 0 {
				p.namePrefix = p.hosts[0].name
			}
			if len(p.hosts) > 0 {
				pools = append(pools, p)
			}
		}
	}
	return pools
}

// morefLess orders managed object ids of one type by their counter ("vm-9" < "vm-10").
func morefLess(a, b types.ManagedObjectReference) bool {
	na, ea := strconv.Atoi(a.Value[strings.LastIndexByte(a.Value, '-')+1:])
	nb, eb := strconv.Atoi(b.Value[strings.LastIndexByte(b.Value, '-')+1:])
	if ea != nil || eb != nil || na == nb {
		return a.Value < b.Value
	}
	return na < nb
}

// diskFileName is the datastore path of a VM's base disk i: vm.vmdk, vm_1.vmdk, …
func diskFileName(datastore, vmName string, i int) string {
	base := vmName
	if i > 0 {
		base = fmt.Sprintf("%s_%d", vmName, i)
	}
	return fmt.Sprintf("[%s] %s", datastore, path.Join(vmName, base+".vmdk"))
}

// createVM creates the VM of plan through CreateVM_Task and brings it to its power state and
// template flag through the API. It returns the VM's managed object reference.
func createVM(ctx context.Context, c *vim25.Client, plan *vmPlan) (types.ManagedObjectReference, error) {
	scsi := &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
		VirtualController: types.VirtualController{
			VirtualDevice: types.VirtualDevice{Key: scsiControllerKey},
			BusNumber:     0,
		},
		SharedBus:          types.VirtualSCSISharingNoSharing,
		ScsiCtlrUnitNumber: 7,
	}}
	changes := []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: scsi},
	}
	for i, d := range plan.disks {
		unit := int32(i)
		if unit >= 7 {
			unit++ // unit 7 is the controller itself
		}
		disk := &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key:           int32(firstDiskKey + i),
				ControllerKey: scsiControllerKey,
				UnitNumber:    &unit,
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
						FileName: diskFileName(plan.datastoreName(), plan.name, i),
					},
					DiskMode:        string(types.VirtualDiskModePersistent),
					ThinProvisioned: types.NewBool(d.thin),
				},
			},
			CapacityInKB:    d.capacityBytes / 1024,
			CapacityInBytes: d.capacityBytes,
		}
		changes = append(changes, &types.VirtualDeviceConfigSpec{
			Operation:     types.VirtualDeviceConfigSpecOperationAdd,
			FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate,
			Device:        disk,
		})
	}

	req := types.CreateVM_Task{
		This: plan.placement.pool.vmFolder,
		Config: types.VirtualMachineConfigSpec{
			Name:         plan.name,
			GuestId:      plan.guestID,
			NumCPUs:      plan.numCPUs,
			MemoryMB:     int64(plan.memoryMB),
			Files:        &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", plan.datastoreName())},
			DeviceChange: changes,
			// Notes, changed block tracking and disk.EnableUUID are set when the VM is made, so
			// no VmReconfiguredEvent of the build lands in the event history.
			Annotation:            plan.annotation,
			ChangeTrackingEnabled: types.NewBool(plan.cbt),
		},
		Pool: plan.placement.pool.ref,
		Host: &plan.placement.host.ref,
	}
	if plan.enableUUID != "" {
		req.Config.ExtraConfig = []types.BaseOptionValue{&types.OptionValue{Key: "disk.EnableUUID", Value: plan.enableUUID}}
	}
	res, err := methods.CreateVM_Task(ctx, c, &req)
	if err != nil {
		return types.ManagedObjectReference{}, fmt.Errorf("CreateVM_Task %s: %w", plan.name, err)
	}
	result, err := taskResult(res.Returnval)
	if err != nil {
		return types.ManagedObjectReference{}, fmt.Errorf("CreateVM_Task %s: %w", plan.name, err)
	}
	vm := result.(types.ManagedObjectReference)
	return vm, setPowerState(ctx, c, vm, plan)
}

func setPowerState(ctx context.Context, c *vim25.Client, vm types.ManagedObjectReference, plan *vmPlan) error {
	if plan.template {
		_, err := methods.MarkAsTemplate(ctx, c, &types.MarkAsTemplate{This: vm})
		if err != nil {
			return fmt.Errorf("MarkAsTemplate %s: %w", plan.name, err)
		}
		return nil
	}
	if plan.power == types.VirtualMachinePowerStatePoweredOff {
		return nil
	}
	res, err := methods.PowerOnVM_Task(ctx, c, &types.PowerOnVM_Task{This: vm})
	if err == nil {
		_, err = taskResult(res.Returnval)
	}
	if err != nil {
		return fmt.Errorf("PowerOnVM_Task %s: %w", plan.name, err)
	}
	if plan.power == types.VirtualMachinePowerStateSuspended {
		res, err := methods.SuspendVM_Task(ctx, c, &types.SuspendVM_Task{This: vm})
		if err == nil {
			_, err = taskResult(res.Returnval)
		}
		if err != nil {
			return fmt.Errorf("SuspendVM_Task %s: %w", plan.name, err)
		}
	}
	return nil
}

// taskResult reads a finished task's result straight from the simulator. The simulator runs
// every task to completion before the *_Task call returns, so waiting through the
// PropertyCollector (WaitForUpdatesEx) would only cost time: half of it at 40,000 VMs.
func taskResult(ref types.ManagedObjectReference) (types.AnyType, error) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return nil, fmt.Errorf("task %s not found", ref.Value)
	}
	info := task.Info
	if info.State != types.TaskInfoStateSuccess {
		if info.Error != nil {
			return nil, fmt.Errorf("task %s: %s (%T)", ref.Value, info.Error.LocalizedMessage, info.Error.Fault)
		}
		return nil, fmt.Errorf("task %s ended in state %s", ref.Value, info.State)
	}
	return info.Result, nil
}
