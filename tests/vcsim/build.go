// build.go carries plans out: it creates each VM and its snapshots through the API (an in-process
// govmomi client on the simulator's Service), then edits the simulator's VirtualMachine where the
// simulator has no API or ignores what it is given: snapshot createTime and quiesced, layoutEx,
// layout, storage, disk backings, guest.* Tools fields and runtime.consolidationNeeded.
package main

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// simulation is a built scenario, ready to serve.
type simulation struct {
	model *simulator.Model
	facts *Facts
	perf  *perfManager
	tasks *taskManager
}

// buildScenario builds opts.scenario in a fresh simulator (the simulator's registry is global:
// one simulation per process at a time).
func buildScenario(opts options) (*simulation, error) {
	rand.Seed(1) // the simulator draws from math/rand (e.g. device keys); keep its draws repeatable
	sc, err := scenarioFor(opts)
	if err != nil {
		return nil, err
	}
	if err := applyPerfCatalogue(opts.perf); err != nil {
		return nil, err
	}
	model, err := newModel(sc.shape)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	ctx := context.Background()
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		model.Remove()
		return nil, err
	}
	// Before the scenario runs its tasks, so the task history holds them all.
	tasks, err := installTaskManager(c.ServiceContent, opts.taskRetention)
	if err != nil {
		model.Remove()
		return nil, err
	}
	pools := listPools()
	plans, extras := sc.plans(pools)
	facts := &Facts{
		Scenario: opts.scenario, VMs: make([]VMFacts, 0, len(plans)),
		CustomFields: []CustomFieldFacts{}, Datastores: []DatastoreFacts{},
		SnapshotTaskEvents:    []TaskCountFacts{},
		SnapshotTaskDurations: []TaskDurationFacts{},
		BackupEventUsers:      []string{},
	}
	built := map[string]*builtVM{} // kept only for the extras
	for i, plan := range plans {
		vm, b, err := realize(ctx, c, plan, sc.stamp)
		if err != nil {
			model.Remove()
			return nil, err
		}
		facts.VMs = append(facts.VMs, vm)
		if extras != nil {
			// At scale only what the extras read: a plan's random source and a layout are
			// kilobytes each.
			if len(plans) > smallScenarioVMs {
				b = &builtVM{ref: b.ref, plan: &vmPlan{name: plan.name, fields: plan.fields, reconfigure: plan.reconfigure}}
			}
			built[plan.name] = b
		}
		plans[i] = nil // a plan's random source is 5 KiB: 200 MiB at 40,000 VMs
	}
	if extras != nil {
		fields, err := applyExtras(ctx, c, extras, built)
		if err != nil {
			model.Remove()
			return nil, fmt.Errorf("extras: %w", err)
		}
		extrasFacts(facts, extras, fields, built)
	}
	facts.sortVMs()
	resolveForeignOwners(facts)
	if opts.scenario == "golden" {
		if err := renameGolden(facts); err != nil {
			model.Remove()
			return nil, err
		}
	}
	var states map[string]hostState
	if sc.hosts != nil {
		states = sc.hosts(pools)
	}
	if err := applyHostStates(ctx, c, pools, states); err != nil {
		model.Remove()
		return nil, err
	}
	setDatastoreURLs()
	installAlarms(c.ServiceContent.RootFolder)
	if facts.Alarms, err = applyAlarmPlans(alarmPlansOf(extras)); err != nil {
		model.Remove()
		return nil, err
	}
	facts.Hosts = hostFacts(pools, states)
	countBackupSnapshots(facts)
	perf, err := installPerfManager(opts.perf, c.ServiceContent)
	if err != nil {
		model.Remove()
		return nil, err
	}
	perf.override = sc.perfValues
	facts.Perf = perfFacts(opts.perf)
	return &simulation{model: model, facts: facts, perf: perf, tasks: tasks}, nil
}

// smallScenarioVMs is the most VMs for which the extras keep every plan and layout.
const smallScenarioVMs = 100

// realize creates one VM from its plan and returns its facts.
func realize(ctx context.Context, c *vim25.Client, plan *vmPlan, stamp time.Time) (VMFacts, *builtVM, error) {
	ref, err := createVM(ctx, c, plan)
	if err != nil {
		return VMFacts{}, nil, err
	}
	l, err := takeSnapshots(ctx, c, ref, plan)
	if err != nil {
		return VMFacts{}, nil, err
	}
	if err := reconfigureVM(ctx, c, ref, plan); err != nil {
		return VMFacts{}, nil, err
	}
	if plan.orphanDeltas > 0 {
		l.addOrphans(plan.orphanDeltas)
	}
	if err := editVM(ref, plan, l, stamp); err != nil {
		return VMFacts{}, nil, fmt.Errorf("%s (%s): %w", plan.name, ref.Value, err)
	}
	if plan.devices.currentMissing {
		l.current = -1 // editDevices unset it; no snapshot is charged with the running deltas
	}
	return vmFacts(ref, plan, l), &builtVM{ref: ref, plan: plan, layout: l}, nil
}

// takeSnapshots carries out plan.ops through CreateSnapshot_Task and RevertToSnapshot_Task and
// replays them on the VM's layout.
func takeSnapshots(ctx context.Context, c *vim25.Client, vm types.ManagedObjectReference, plan *vmPlan) (*layout, error) {
	l := newLayout(plan)
	var refs []types.ManagedObjectReference
	for _, op := range plan.ops {
		if !op.isTake() {
			res, err := methods.RevertToSnapshot_Task(ctx, c, &types.RevertToSnapshot_Task{This: refs[op.revertTo]})
			if err == nil {
				_, err = taskResult(res.Returnval)
			}
			if err != nil {
				return nil, fmt.Errorf("RevertToSnapshot_Task %s: %w", plan.name, err)
			}
			l.revert(op.revertTo, op)
			continue
		}
		res, err := methods.CreateSnapshot_Task(ctx, c, &types.CreateSnapshot_Task{
			This:        vm,
			Name:        op.name,
			Description: op.description,
			Memory:      op.memory,
			Quiesce:     op.quiesced,
		})
		if err != nil {
			return nil, fmt.Errorf("CreateSnapshot_Task %s: %w", plan.name, err)
		}
		result, err := taskResult(res.Returnval)
		if err != nil {
			return nil, fmt.Errorf("CreateSnapshot_Task %s: %w", plan.name, err)
		}
		ref := result.(types.ManagedObjectReference)
		refs = append(refs, ref)
		l.take(ref, op)
	}
	return l, nil
}

// editVM writes what the API cannot set into the simulator's VirtualMachine.
func editVM(ref types.ManagedObjectReference, plan *vmPlan, l *layout, stamp time.Time) error {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("not a simulator VirtualMachine")
	}
	var err error
	simulator.Map.WithLock(vm, func() {
		if err = editSnapshotTree(vm, l); err != nil {
			return
		}
		vm.LayoutEx = l.layoutEx(stamp)
		vm.Layout = legacyLayoutOf(vm.LayoutEx)
		editDisks(vm, plan)
		editDevices(vm, plan)
		if len(vm.Datastore) > 0 {
			vm.Storage, vm.Summary.Storage = storageOf(vm.LayoutEx, vm.Datastore[0], diskCapacity(plan), stamp)
		}
		editGuest(vm, plan)
		editRuntime(vm, plan)
	})
	return err
}

func diskCapacity(plan *vmPlan) int64 {
	var total int64
	for _, d := range plan.disks {
		total += d.capacityBytes
	}
	return total
}

// editSnapshotTree sets createTime and quiesced on every node (the simulator stamps time.Now()
// and keeps quiesced, but has no way to take a snapshot in the past), checks that the tree the
// API built is the plan's, and sets currentSnapshot and rootSnapshot.
func editSnapshotTree(vm *simulator.VirtualMachine, l *layout) error {
	if len(l.snaps) == 0 {
		if vm.Snapshot != nil {
			return fmt.Errorf("simulator has snapshots the plan does not")
		}
		return nil
	}
	if vm.Snapshot == nil {
		return fmt.Errorf("simulator has no snapshot info")
	}
	index := l.refIndex()
	seen := 0
	var walk func(nodes []types.VirtualMachineSnapshotTree, parent int) error
	walk = func(nodes []types.VirtualMachineSnapshotTree, parent int) error {
		for i := range nodes {
			n := &nodes[i]
			j, ok := index[n.Snapshot]
			if !ok {
				return fmt.Errorf("snapshot %s is not in the plan", n.Snapshot.Value)
			}
			if l.snaps[j].parent != parent {
				return fmt.Errorf("snapshot %s: simulator parent differs from the plan", n.Snapshot.Value)
			}
			op := l.snaps[j].op
			n.CreateTime = op.at
			n.Quiesced = op.quiesced
			n.Description = op.description
			seen++
			if err := walk(n.ChildSnapshotList, j); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(vm.Snapshot.RootSnapshotList, -1); err != nil {
		return err
	}
	if seen != len(l.snaps) {
		return fmt.Errorf("simulator tree has %d snapshots, plan %d", seen, len(l.snaps))
	}
	current := l.snaps[l.current].ref
	if vm.Snapshot.CurrentSnapshot == nil || *vm.Snapshot.CurrentSnapshot != current {
		return fmt.Errorf("simulator current snapshot differs from the plan's %s", current.Value)
	}
	vm.RootSnapshot = nil
	for _, n := range vm.Snapshot.RootSnapshotList {
		vm.RootSnapshot = append(vm.RootSnapshot, n.Snapshot)
	}
	return nil
}

// editDisks points each disk's backing at its running chain in vm.layoutEx, and leaves
// capacityInBytes at 0 where the plan says so. The config is a new copy, so a collector reading
// the old one concurrently never sees it half-changed.
func editDisks(vm *simulator.VirtualMachine, plan *vmPlan) {
	devices := backedDevices(vm.Config.Hardware.Device, vm.LayoutEx)
	if plan.capacityInKBOnly {
		for i, d := range devices {
			if disk, ok := d.(*types.VirtualDisk); ok {
				edited := *disk
				edited.CapacityInBytes = 0
				devices[i] = &edited
			}
		}
	}
	config := *vm.Config
	config.Hardware.Device = devices
	vm.Config = &config
}

// guestFullName is what vCenter shows for the guest ids the scenarios use.
var guestFullName = map[string]string{
	"windows9Server64Guest": "Microsoft Windows Server 2016 or later (64-bit)",
	"windows8Server64Guest": "Microsoft Windows Server 2012 (64-bit)",
	"rhel7_64Guest":         "Red Hat Enterprise Linux 7 (64-bit)",
	"ubuntu64Guest":         "Ubuntu Linux (64-bit)",
	"debian10_64Guest":      "Debian GNU/Linux 10 (64-bit)",
	"otherGuest64":          "Other (64-bit)",
}

// editGuest sets the Tools fields; the simulator sets toolsNotInstalled on every VM and never
// sets toolsVersionStatus2. guest and summary.guest are replaced by edited copies.
func editGuest(vm *simulator.VirtualMachine, plan *vmPlan) {
	status, versionStatus := toolsStatusFor(plan.tools)
	g := &types.GuestInfo{}
	if vm.Guest != nil {
		*g = *vm.Guest
	}
	g.ToolsStatus = status
	g.ToolsVersionStatus = versionStatus
	g.ToolsVersionStatus2 = plan.tools.versionStatus2
	g.ToolsRunningStatus = plan.tools.runningStatus
	g.ToolsVersion = plan.tools.version
	g.GuestState = "notRunning"
	g.GuestId, g.GuestFullName, g.HostName = "", "", ""
	running := plan.tools.runningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) ||
		plan.tools.runningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsExecutingScripts)
	if running {
		g.GuestState = "running"
		g.GuestId = plan.guestID
		g.GuestFullName = guestFullName[plan.guestID]
		g.HostName = strings.ToLower(plan.name)
	}
	s := &types.VirtualMachineGuestSummary{}
	if vm.Summary.Guest != nil {
		*s = *vm.Summary.Guest
	}
	s.GuestId, s.GuestFullName, s.HostName = g.GuestId, g.GuestFullName, g.HostName
	s.ToolsStatus = status
	s.ToolsVersionStatus = versionStatus
	s.ToolsVersionStatus2 = plan.tools.versionStatus2
	s.ToolsRunningStatus = plan.tools.runningStatus
	vm.Guest, vm.Summary.Guest = g, s
	vm.Config.GuestFullName = guestFullName[plan.guestID]
	vm.Summary.Config.GuestFullName = guestFullName[plan.guestID]
}

func editRuntime(vm *simulator.VirtualMachine, plan *vmPlan) {
	needed := plan.consolidationNeeded
	vm.Runtime.ConsolidationNeeded = &needed
	vm.Summary.Runtime.ConsolidationNeeded = &needed
	vm.Runtime.BootTime, vm.Summary.Runtime.BootTime = nil, nil
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		boot := plan.bootTime
		vm.Runtime.BootTime = &boot
		vm.Summary.Runtime.BootTime = &boot
	}
}
