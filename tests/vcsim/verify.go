// verify.go checks a served simulation against its facts over the network, as a client sees it:
// Login must refuse wrong credentials, and for every VM the PropertyCollector must return what the
// facts state (placement, power, Tools, consolidation, disks, the snapshot tree with createTime
// and quiesced, and snapshot sizes computed from the returned layoutEx by the size rule).
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// newClient connects to rawURL, trusting only roots for TLS (nil: no TLS).
func newClient(ctx context.Context, rawURL string, roots *x509.CertPool) (*vim25.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	sc := soap.NewClient(u, false)
	if roots != nil {
		sc.DefaultTransport().TLSClientConfig.RootCAs = roots
	}
	return vim25.NewClient(ctx, sc)
}

// isInvalidLogin tells whether err is vCenter's InvalidLogin fault.
func isInvalidLogin(err error) bool {
	if !soap.IsSoapFault(err) {
		return false
	}
	_, ok := soap.ToSoapFault(err).VimFault().(types.InvalidLogin)
	return ok
}

// vmProperties are the properties verify reads; the exporter reads the same ones.
var vmProperties = []string{
	"name", "config.template", "config.guestId", "config.hardware.device",
	"runtime.powerState", "runtime.host", "runtime.consolidationNeeded",
	"guest.toolsVersionStatus2", "guest.toolsRunningStatus", "guest.toolsVersion",
	"snapshot", "layoutEx",
	"config.annotation", "config.changeTrackingEnabled", "config.extraConfig", "customValue",
	"datastore", "guest.guestFamily",
	"config.files.vmPathName", "runtime.question", "runtime.connectionState", "runtime.faultToleranceState",
}

// verifyServer checks facts against the server at rawURL. only limits the check to those VM ids
// (nil: every VM, and the server must serve no other).
func verifyServer(ctx context.Context, rawURL string, roots *x509.CertPool, facts *Facts, only map[string]bool) error {
	c, err := newClient(ctx, rawURL, roots)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	sm := session.NewManager(c)
	err = sm.Login(ctx, url.UserPassword(facts.Username, facts.Password+"-wrong"))
	if !isInvalidLogin(err) {
		return fmt.Errorf("Login with a wrong password: want InvalidLogin, got %v", err)
	}
	if err := sm.Login(ctx, url.UserPassword(facts.Username, facts.Password)); err != nil {
		return fmt.Errorf("Login: %w", err)
	}
	defer func() { _ = sm.Logout(ctx) }()

	inv, err := retrieveInventory(ctx, c)
	if err != nil {
		return err
	}
	devices := observeDevices(inv.observedVMs())
	var problems []string
	seen := 0
	for _, want := range facts.VMs {
		if only != nil && !only[want.ID] {
			continue
		}
		seen++
		vm, ok := inv.vms[want.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (%s): not served", want.ID, want.Name))
			continue
		}
		got, err := inv.observe(vm)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): %v", want.ID, want.Name, err))
			continue
		}
		got.DeviceFacts = devices[want.ID]
		if len(got.SnapshotBlockers) > 0 {
			got.BackupConsistency = consistencyNone
		}
		fromHistory(&got, want)
		if diff := diffJSON(want, got); diff != "" {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", want.ID, want.Name, diff))
		}
	}
	if only == nil && len(inv.vms) != len(facts.VMs) {
		problems = append(problems, fmt.Sprintf("served %d VMs, facts list %d", len(inv.vms), len(facts.VMs)))
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("… and %d more", len(problems)-10))
		}
		return errors.New(strings.Join(problems, "\n"))
	}
	if seen == 0 {
		return errors.New("no VM checked")
	}
	return nil
}

// inventory is what a client retrieves: VMs and the entities that name their placement.
type inventory struct {
	vms      map[string]mo.VirtualMachine
	names    map[types.ManagedObjectReference]string
	parents  map[types.ManagedObjectReference]types.ManagedObjectReference
	clusters map[types.ManagedObjectReference]bool
	fields   map[int32]string // custom field names by key (CustomFieldsManager.field)
}

func retrieveInventory(ctx context.Context, c *vim25.Client) (*inventory, error) {
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, nil, true)
	if err != nil {
		return nil, fmt.Errorf("CreateContainerView: %w", err)
	}
	defer func() { _ = v.Destroy(ctx) }()

	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, vmProperties, &vms); err != nil {
		return nil, fmt.Errorf("retrieve VMs: %w", err)
	}
	inv := &inventory{
		vms:      make(map[string]mo.VirtualMachine, len(vms)),
		names:    map[types.ManagedObjectReference]string{},
		parents:  map[types.ManagedObjectReference]types.ManagedObjectReference{},
		clusters: map[types.ManagedObjectReference]bool{},
		fields:   map[int32]string{},
	}
	for _, vm := range vms {
		inv.vms[vm.Self.Value] = vm
	}
	var entities []mo.ManagedEntity
	kinds := []string{"HostSystem", "ClusterComputeResource", "ComputeResource", "Folder", "Datacenter", "Datastore"}
	if err := v.Retrieve(ctx, kinds, []string{"name", "parent"}, &entities); err != nil {
		return nil, fmt.Errorf("retrieve inventory: %w", err)
	}
	for _, e := range entities {
		inv.names[e.Self] = decodeEntityName(e.Name)
		if e.Parent != nil {
			inv.parents[e.Self] = *e.Parent
		}
		if e.Self.Type == "ClusterComputeResource" {
			inv.clusters[e.Self] = true
		}
	}
	var cfm mo.CustomFieldsManager
	if err := property.DefaultCollector(c).RetrieveOne(ctx, *c.ServiceContent.CustomFieldsManager, []string{"field"}, &cfm); err != nil {
		return nil, fmt.Errorf("retrieve custom fields: %w", err)
	}
	for _, f := range cfm.Field {
		inv.fields[f.Key] = f.Name
	}
	return inv, nil
}

// observedVMs is what the device checks read of every served VM.
func (inv *inventory) observedVMs() map[string]observedVM {
	out := make(map[string]observedVM, len(inv.vms))
	for id, vm := range inv.vms {
		o := observedVM{id: id, name: decodeEntityName(vm.Name), snapshot: vm.Snapshot, runtime: vm.Runtime}
		if vm.Config != nil {
			o.devices = vm.Config.Hardware.Device
			o.cbt = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
			o.template = vm.Config.Template
			if vmx := vm.Config.Files.VmPathName; vmx != "" {
				o.dir = datastoreDir(vmx)
			}
		}
		out[id] = o
	}
	return out
}

// observe states the facts of vm as a client sees them.
func (inv *inventory) observe(vm mo.VirtualMachine) (VMFacts, error) {
	f := VMFacts{ID: vm.Self.Value, Name: decodeEntityName(vm.Name), PowerState: string(vm.Runtime.PowerState), Snapshots: []SnapshotFacts{}}
	if vm.Runtime.Host != nil {
		h := *vm.Runtime.Host
		f.HostName = inv.names[h]
		for p, ok := inv.parents[h]; ok; p, ok = inv.parents[p] {
			if inv.clusters[p] {
				f.ClusterName = inv.names[p]
			}
			if p.Type == "Datacenter" {
				f.DatacenterName = inv.names[p]
				break
			}
		}
	}
	if vm.Config != nil {
		f.Template = vm.Config.Template
		f.GuestID = vm.Config.GuestId
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if disk.CapacityInBytes != 0 {
					f.DiskCapacityBytes += disk.CapacityInBytes
				} else {
					f.DiskCapacityBytes += disk.CapacityInKB * 1024
				}
			}
		}
	}
	if vm.Runtime.ConsolidationNeeded != nil {
		f.ConsolidationNeeded = *vm.Runtime.ConsolidationNeeded
	}
	if vm.Guest != nil {
		f.ToolsVersionStatus2 = vm.Guest.ToolsVersionStatus2
		f.ToolsRunningStatus = vm.Guest.ToolsRunningStatus
		f.ToolsVersion = vm.Guest.ToolsVersion
	}
	inv.observeBackup(vm, &f)
	if vm.Snapshot == nil {
		return f, nil
	}
	if vm.LayoutEx == nil {
		return f, errors.New("snapshots without layoutEx")
	}
	sizes := snapshotSizesFromLayoutEx(vm.LayoutEx, vm.Snapshot)
	var walk func(nodes []types.VirtualMachineSnapshotTree, parent string, depth int)
	walk = func(nodes []types.VirtualMachineSnapshotTree, parent string, depth int) {
		for _, n := range nodes {
			s := sizes[n.Snapshot]
			f.Snapshots = append(f.Snapshots, SnapshotFacts{
				ID:                n.Snapshot.Value,
				Name:              decodeEntityName(n.Name),
				Description:       n.Description,
				ParentID:          parent,
				CreateTimeSeconds: float64(n.CreateTime.UnixNano()) / 1e9,
				Quiesced:          n.Quiesced,
				SizeBytes:         s.size,
				MemorySizeBytes:   s.memory,
				IsCurrent:         vm.Snapshot.CurrentSnapshot != nil && *vm.Snapshot.CurrentSnapshot == n.Snapshot,
				DatastoreName:     s.datastore,
			})
			if defaultBackupPatterns.MatchString(n.Name) {
				f.BackupSnapshot = true
			}
			f.SnapshotCount++
			f.SnapshotTotalSizeBytes += s.size
			if depth > f.SnapshotChainDepth {
				f.SnapshotChainDepth = depth
			}
			walk(n.ChildSnapshotList, n.Snapshot.Value, depth+1)
		}
	}
	walk(vm.Snapshot.RootSnapshotList, "", 1)
	f.SnapshotFileBytes = snapshotFileBytesFromLayoutEx(vm.LayoutEx)
	return f, nil
}

type snapshotSize struct {
	size, memory int64
	datastore    string // of the dataKey file's path, "[ds] dir/file"
}

// observeBackup states the backup checks' inputs of vm as a client sees them.
func (inv *inventory) observeBackup(vm mo.VirtualMachine, f *VMFacts) {
	f.CustomValues = map[string]string{}
	for _, v := range vm.CustomValue {
		if s, ok := v.(*types.CustomFieldStringValue); ok {
			f.CustomValues[inv.fields[s.Key]] = s.Value
		}
	}
	if len(vm.Datastore) > 0 {
		f.DatastoreName = inv.names[vm.Datastore[0]]
	}
	if vm.Config != nil {
		f.Annotation = vm.Config.Annotation
		f.CBTEnabled = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
		for _, o := range vm.Config.ExtraConfig {
			if v := o.GetOptionValue(); v.Key == "disk.EnableUUID" {
				f.EnableUUID, _ = v.Value.(string)
			}
		}
	}
	f.Windows = isWindows(f.GuestID) || (vm.Guest != nil && vm.Guest.GuestFamily == string(types.VirtualMachineGuestOsFamilyWindowsGuest))
	f.BackupConsistency = consistencyLevel(vm.Runtime.PowerState, f.ToolsRunningStatus, f.Windows, f.EnableUUID)
}

// snapshotFileBytesFromLayoutEx applies the exporter's rule for snapshot files: each snapshot's
// .vmsn and .vmem, and every file of a disk chain (running or a snapshot's) above its base unit.
func snapshotFileBytesFromLayoutEx(ex *types.VirtualMachineFileLayoutEx) int64 {
	keys := map[int32]bool{}
	chains := func(disks []types.VirtualMachineFileLayoutExDiskLayout) {
		for _, d := range disks {
			for i, u := range d.Chain {
				for _, k := range u.FileKey {
					if i > 0 {
						keys[k] = true
					}
				}
			}
		}
	}
	chains(ex.Disk)
	for _, s := range ex.Snapshot {
		chains(s.Disk)
		keys[s.DataKey] = true
		if s.MemoryKey >= 0 {
			keys[s.MemoryKey] = true
		}
	}
	var total int64
	for _, file := range ex.File {
		if keys[file.Key] {
			total += file.Size
		}
	}
	return total
}

// snapshotSizesFromLayoutEx applies the size rule the exporter implements: a snapshot's dataKey
// file, plus the files of its disk chains that its parent's chains do not hold (a root: none),
// plus for the current snapshot the running chains' files that no snapshot holds; each file once.
func snapshotSizesFromLayoutEx(ex *types.VirtualMachineFileLayoutEx, info *types.VirtualMachineSnapshotInfo) map[types.ManagedObjectReference]snapshotSize {
	fileSize := map[int32]int64{}
	fileName := map[int32]string{}
	for _, f := range ex.File {
		fileSize[f.Key] = f.Size
		fileName[f.Key] = f.Name
	}
	chainFiles := func(disks []types.VirtualMachineFileLayoutExDiskLayout) map[int32]bool {
		keys := map[int32]bool{}
		for _, d := range disks {
			for _, u := range d.Chain {
				for _, k := range u.FileKey {
					keys[k] = true
				}
			}
		}
		return keys
	}
	parent := map[types.ManagedObjectReference]*types.ManagedObjectReference{}
	var walk func(nodes []types.VirtualMachineSnapshotTree, p *types.ManagedObjectReference)
	walk = func(nodes []types.VirtualMachineSnapshotTree, p *types.ManagedObjectReference) {
		for i := range nodes {
			parent[nodes[i].Snapshot] = p
			walk(nodes[i].ChildSnapshotList, &nodes[i].Snapshot)
		}
	}
	walk(info.RootSnapshotList, nil)

	layouts := map[types.ManagedObjectReference]types.VirtualMachineFileLayoutExSnapshotLayout{}
	inSnapshots := map[int32]bool{}
	for _, s := range ex.Snapshot {
		layouts[s.Key] = s
		for k := range chainFiles(s.Disk) {
			inSnapshots[k] = true
		}
	}
	sizes := map[types.ManagedObjectReference]snapshotSize{}
	for ref, s := range layouts {
		counted := map[int32]bool{s.DataKey: true}
		if p := parent[ref]; p != nil {
			inParent := chainFiles(layouts[*p].Disk)
			for k := range chainFiles(s.Disk) {
				if !inParent[k] {
					counted[k] = true
				}
			}
		}
		if info.CurrentSnapshot != nil && *info.CurrentSnapshot == ref {
			for k := range chainFiles(ex.Disk) {
				if !inSnapshots[k] {
					counted[k] = true
				}
			}
		}
		var total int64
		for k := range counted {
			total += fileSize[k]
		}
		var memory int64
		if s.MemoryKey >= 0 {
			memory = fileSize[s.MemoryKey]
		}
		datastore := ""
		if name := fileName[s.DataKey]; strings.HasPrefix(name, "[") && strings.Contains(name, "]") {
			datastore = name[1:strings.Index(name, "]")]
		}
		sizes[ref] = snapshotSize{size: total, memory: memory, datastore: datastore}
	}
	return sizes
}

// fromHistory copies what the facts derive from the event history and the attribute texts,
// which a client cannot observe on the VM, from want into got.
func fromHistory(got *VMFacts, want VMFacts) {
	got.LastBackup = want.LastBackup
	got.SnapshotTasks = want.SnapshotTasks
	got.SnapshotTaskDurations = want.SnapshotTaskDurations
	got.LastBackupFromEvents = want.LastBackupFromEvents
	got.DiskChangedWithSnapshots = want.DiskChangedWithSnapshots
	got.ReconfiguredWithSnapshots = want.ReconfiguredWithSnapshots
	created := map[string]string{}
	for _, s := range want.Snapshots {
		created[s.ID] = s.CreatedBy
	}
	for i := range got.Snapshots {
		got.Snapshots[i].CreatedBy = created[got.Snapshots[i].ID]
	}
}

// diffJSON names the first field where want and got differ, "" when they are equal.
func diffJSON(want, got VMFacts) string {
	a, _ := json.MarshalIndent(want, "", " ")
	b, _ := json.MarshalIndent(got, "", " ")
	if string(a) == string(b) {
		return ""
	}
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: facts %s, served %s", i+1, strings.TrimSpace(la[i]), strings.TrimSpace(lb[i]))
		}
	}
	return fmt.Sprintf("facts have %d lines, served %d", len(la), len(lb))
}
