package main

// Tests of POST /_control. The file edits (livelayout.go) are tested on their own, in this
// process. The ops change the inventory, so TestControlOpsRunInAProcessOfTheirOwn runs the
// TestOp* tests again in a child process whose TestMain builds a small scale scenario of its own
// (the simulator's registry is global); in this process they skip. Each TestOp* follows the
// inventory with WaitForUpdatesEx on a PropertyCollector of its own (a ContainerView filter over
// every VM), applies an op over HTTP, and waits until the update has arrived with the right values
// and the followed copy equals a fresh retrieval.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"math/rand"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// controlProcessEnv set makes TestMain build the control scenario and run the TestOp* tests.
const controlProcessEnv = "VCSIM_CONTROL_TEST_PROCESS"

var (
	controlSim *simulation
	controlSrv *server
)

func runControlTests(m *testing.M) int {
	opts := options{scenario: "scale", vms: 120, snapshotVMs: 40, datacenters: 2, clusters: 1,
		hostsPerCluster: 2, standaloneHosts: 1, seed: 7, now: "2026-11-25T12:00:00Z"}
	sim, err := buildScenario(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "control scenario:", err)
		return 1
	}
	defer sim.model.Remove()
	srv, err := startServer(sim, serverConfig{listen: "127.0.0.1:0", tls: true, username: "user", password: "pass", requireSession: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	defer srv.close()
	controlSim, controlSrv = sim, srv
	return m.Run()
}

func TestControlOpsRunInAProcessOfTheirOwn(t *testing.T) {
	if controlSrv != nil {
		t.Skip("already in the control process")
	}
	runInAProcessOfTheirOwn(t, "TestOp", controlProcessEnv, 5*time.Minute, 1)
}

func inControlProcess(t *testing.T) {
	t.Helper()
	if controlSrv == nil {
		t.Skip("runs in the control process (TestControlOpsRunInAProcessOfTheirOwn)")
	}
}

// controlCall posts body to /_control and returns the status and the decoded answer.
func controlCall(t *testing.T, body string) (int, map[string]interface{}) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: controlSrv.caPool()}}}
	res, err := client.Post(strings.TrimSuffix(controlSrv.url, "/sdk")+"/_control", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := ioutil.ReadAll(res.Body)
	var answer map[string]interface{}
	if err := json.Unmarshal(data, &answer); err != nil {
		t.Fatalf("control %s: answer %q is not JSON: %v", body, data, err)
	}
	return res.StatusCode, answer
}

// control posts an op that must succeed.
func control(t *testing.T, op map[string]interface{}) map[string]interface{} {
	t.Helper()
	answer, err := tryControl(op)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// tryControl posts an op and fails unless it succeeds; it may run on any goroutine.
func tryControl(op map[string]interface{}) (map[string]interface{}, error) {
	body, _ := json.Marshal(op)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: controlSrv.caPool()}}}
	res, err := client.Post(strings.TrimSuffix(controlSrv.url, "/sdk")+"/_control", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var answer map[string]interface{}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil || res.StatusCode != http.StatusOK || answer["ok"] != true {
		return nil, fmt.Errorf("control %s: %d %v %v", body, res.StatusCode, answer, err)
	}
	return answer, nil
}

func controlLogin(ctx context.Context, t *testing.T) *vim25.Client {
	t.Helper()
	c, sm := loginTo(ctx, t, controlSrv)
	t.Cleanup(func() { _ = sm.Logout(context.Background()) })
	return c
}

// followPaths are the exporter's VM paths plus the files.
var followPaths = []string{
	"name", "runtime.host", "runtime.powerState", "runtime.consolidationNeeded", "snapshot",
	"guest.toolsVersionStatus2", "guest.toolsRunningStatus", "guest.toolsVersion", "config.guestId",
	"config.template", "layoutEx", "config.hardware.device",
}

// followTypes are the types of the exporter's ContainerView. A filter with property specs of
// several types is what makes the simulator look a changed object up again (see remove_vm).
var followTypes = []string{"VirtualMachine", "HostSystem", "ComputeResource", "ClusterComputeResource", "Folder", "Datacenter", "Datastore"}

// follower keeps a copy of every VM from WaitForUpdatesEx (other objects are not kept).
type follower struct {
	mu      sync.Mutex
	vms     map[string]*mo.VirtualMachine
	entered map[string]bool // entered after the first answer
	left    map[string]bool
	err     error
}

// follow starts a WaitForUpdatesEx loop on a new PropertyCollector with a filter like the
// exporter's (a ContainerView of the inventory, VM paths plus name and parent of the rest), and
// returns once the first answer (every object) is in.
func follow(t *testing.T) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := controlLogin(ctx, t)
	pc, err := property.DefaultCollector(c).Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, followTypes, true)
	if err != nil {
		t.Fatal(err)
	}
	propSet := []types.PropertySpec{{Type: "VirtualMachine", PathSet: followPaths}}
	for _, kind := range followTypes[1:] {
		propSet = append(propSet, types.PropertySpec{Type: kind, PathSet: []string{"name", "parent"}})
	}
	err = pc.CreateFilter(ctx, types.CreateFilter{Spec: types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
		PropSet: propSet,
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{vms: map[string]*mo.VirtualMachine{}, entered: map[string]bool{}, left: map[string]bool{}}
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		version, wait := "", int32(1)
		for {
			res, err := methods.WaitForUpdatesEx(ctx, c, &types.WaitForUpdatesEx{
				This: pc.Reference(), Version: version, Options: &types.WaitOptions{MaxWaitSeconds: &wait}})
			if err != nil {
				if ctx.Err() == nil {
					f.mu.Lock()
					f.err = err
					f.mu.Unlock()
				}
				return
			}
			if res.Returnval == nil {
				continue
			}
			f.apply(res.Returnval, version != "")
			if version == "" {
				close(first)
			}
			version = res.Returnval.Version
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = pc.Destroy(context.Background())
		_ = v.Destroy(context.Background())
	})
	select {
	case <-first:
	case <-done:
		t.Fatalf("WaitForUpdatesEx: %v", f.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first WaitForUpdatesEx answer in 30 s")
	}
	return f
}

func (f *follower) apply(set *types.UpdateSet, later bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fs := range set.FilterSet {
		for _, u := range fs.ObjectSet {
			if u.Obj.Type != "VirtualMachine" {
				continue
			}
			id := u.Obj.Value
			switch u.Kind {
			case types.ObjectUpdateKindEnter:
				vm := &mo.VirtualMachine{}
				vm.Self = u.Obj
				f.vms[id] = vm
				if later {
					f.entered[id] = true
				}
			case types.ObjectUpdateKindLeave:
				delete(f.vms, id)
				f.left[id] = true
				continue
			}
			if vm := f.vms[id]; vm != nil {
				mo.ApplyPropertyChange(vm, u.ChangeSet)
			}
		}
	}
}

// waitFor polls cond on the followed VMs until it holds; it fails the test after 15 s with
// cond's last complaint.
func (f *follower) waitFor(t *testing.T, what string, cond func(vms map[string]*mo.VirtualMachine) string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f.mu.Lock()
		complaint, err := cond(f.vms), f.err
		f.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: WaitForUpdatesEx: %v", what, err)
		}
		if complaint == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reported within 15 s: %s", what, complaint)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// fresh retrieves every VM's followPaths through a new ContainerView.
func fresh(t *testing.T) map[string]mo.VirtualMachine {
	t.Helper()
	ctx := context.Background()
	vms, err := retrieveVMs(ctx, controlLogin(ctx, t))
	if err != nil {
		t.Fatal(err)
	}
	return vms
}

func retrieveVMs(ctx context.Context, c *vim25.Client) (map[string]mo.VirtualMachine, error) {
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(ctx) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, followPaths, &vms); err != nil {
		return nil, err
	}
	out := make(map[string]mo.VirtualMachine, len(vms))
	for _, vm := range vms {
		out[vm.Self.Value] = vm
	}
	return out, nil
}

func freshVM(t *testing.T, id string) mo.VirtualMachine {
	t.Helper()
	vm, ok := fresh(t)[id]
	if !ok {
		t.Fatalf("%s is not served", id)
	}
	return vm
}

// comparable is vm as JSON, with an all-unset guest left out: an entered VM's guest.* come with
// no value when unset, which mo.ApplyPropertyChange turns into an empty GuestInfo, while a
// retrieval leaves guest nil.
func comparable(vm mo.VirtualMachine) string {
	if vm.Guest != nil && reflect.ValueOf(*vm.Guest).IsZero() {
		vm.Guest = nil
	}
	return asJSON(vm)
}

func asJSON(v interface{}) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// waitForFresh waits until the followed copies of ids (all VMs when none) equal a fresh
// retrieval.
func (f *follower) waitForFresh(t *testing.T, what string, ids ...string) {
	t.Helper()
	truth := fresh(t)
	f.waitFor(t, what+": followed copy equals a fresh retrieval", func(vms map[string]*mo.VirtualMachine) string {
		check := ids
		if len(check) == 0 {
			if len(vms) != len(truth) {
				return fmt.Sprintf("%d VMs followed, %d served", len(vms), len(truth))
			}
			for id := range truth {
				check = append(check, id)
			}
		}
		for _, id := range check {
			want, served := truth[id]
			got, followed := vms[id]
			switch {
			case served != followed:
				return fmt.Sprintf("%s: served %v, followed %v", id, served, followed)
			case served && comparable(want) != comparable(*got):
				return fmt.Sprintf("%s differs:\nfollowed %s\nserved   %s", id, comparable(*got), comparable(want))
			}
		}
		return ""
	})
}

// pick returns the first VM (by id) of the current inventory that ok accepts and no other test
// has picked.
func pick(t *testing.T, what string, ok func(vm mo.VirtualMachine) bool) mo.VirtualMachine {
	t.Helper()
	vms := fresh(t)
	var best *mo.VirtualMachine
	for id, vm := range vms {
		vm := vm
		if !picked[id] && ok(vm) && (best == nil || morefLess(vm.Self, best.Self)) {
			best = &vm
		}
	}
	if best == nil {
		t.Fatalf("no VM that is %s", what)
	}
	picked[best.Self.Value] = true
	return *best
}

var picked = map[string]bool{}

// bare is a powered-on VM without snapshots running on its base disks only.
func bare(vm mo.VirtualMachine) bool {
	if vm.Snapshot != nil || vm.Config.Template || vm.Runtime.PowerState != poweredOn {
		return false
	}
	for _, d := range vm.LayoutEx.Disk {
		if len(d.Chain) != 1 {
			return false
		}
	}
	return true
}

// fileNames maps layoutEx file keys to names.
func fileNames(ex *types.VirtualMachineFileLayoutEx) map[int32]string {
	out := map[int32]string{}
	for _, f := range ex.File {
		out[f.Key] = f.Name
	}
	return out
}

func fileByName(ex *types.VirtualMachineFileLayoutEx, name string) *types.VirtualMachineFileLayoutExFileInfo {
	for i := range ex.File {
		if ex.File[i].Name == name {
			return &ex.File[i]
		}
	}
	return nil
}

// chainNames is each disk's chain as descriptor names, by device key.
func chainNames(ex *types.VirtualMachineFileLayoutEx, disks []types.VirtualMachineFileLayoutExDiskLayout) map[int32][]string {
	names := fileNames(ex)
	out := map[int32][]string{}
	for _, d := range disks {
		for _, u := range d.Chain {
			out[d.Key] = append(out[d.Key], names[u.FileKey[0]])
		}
	}
	return out
}

func snapshotLayout(ex *types.VirtualMachineFileLayoutEx, ref string) *types.VirtualMachineFileLayoutExSnapshotLayout {
	for i := range ex.Snapshot {
		if ex.Snapshot[i].Key.Value == ref {
			return &ex.Snapshot[i]
		}
	}
	return nil
}

// checkLiveLayout checks what holds for any VM after any op: every key resolves, units are
// [descriptor, extent] with non-empty deltas, one layout per snapshot with a non-empty .vmsn,
// each snapshot's chains extend its parent's, the current snapshot's are a strict prefix of the
// running ones, no disk file is left that no chain holds, the backings follow the running chain,
// and the size rule gives every snapshot a size.
func checkLiveLayout(t *testing.T, vm mo.VirtualMachine) {
	t.Helper()
	ex := vm.LayoutEx
	files := map[int32]types.VirtualMachineFileLayoutExFileInfo{}
	for _, f := range ex.File {
		files[f.Key] = f
	}
	held := map[int32]bool{}
	chains := func(what string, disks []types.VirtualMachineFileLayoutExDiskLayout) map[int32][]int32 {
		out := map[int32][]int32{}
		for _, d := range disks {
			for i, u := range d.Chain {
				if len(u.FileKey) != 2 {
					t.Errorf("%s %s disk %d: unit with %d files", vm.Self.Value, what, d.Key, len(u.FileKey))
					continue
				}
				for _, k := range u.FileKey {
					f, ok := files[k]
					held[k] = true
					if !ok || i == 0 && deltaName.MatchString(f.Name) || i > 0 && (!deltaName.MatchString(f.Name) || f.Size == 0) {
						t.Errorf("%s %s disk %d unit %d: key %d %q (%d bytes)", vm.Self.Value, what, d.Key, i, k, f.Name, f.Size)
					}
				}
				out[d.Key] = append(out[d.Key], u.FileKey[0])
			}
		}
		return out
	}
	running := chains("running", ex.Disk)
	layouts := map[types.ManagedObjectReference]map[int32][]int32{}
	for _, s := range ex.Snapshot {
		if f := files[s.DataKey]; f.Type != "snapshotData" || f.Size == 0 {
			t.Errorf("%s %s: dataKey %d file %+v", vm.Self.Value, s.Key.Value, s.DataKey, f)
		}
		if f := files[s.MemoryKey]; s.MemoryKey >= 0 && f.Type != "snapshotMemory" {
			t.Errorf("%s %s: memoryKey %d file %+v", vm.Self.Value, s.Key.Value, s.MemoryKey, f)
		}
		layouts[s.Key] = chains(s.Key.Value, s.Disk)
	}
	nodes := 0
	if vm.Snapshot != nil {
		walkTree(vm.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, parent *types.ManagedObjectReference) {
			nodes++
			mine, ok := layouts[n.Snapshot]
			if !ok {
				t.Errorf("%s: no layout for snapshot %s", vm.Self.Value, n.Snapshot.Value)
				return
			}
			for disk, chain := range mine {
				if parent != nil && (!prefix(layouts[*parent][disk], chain) || len(chain) <= len(layouts[*parent][disk])) {
					t.Errorf("%s %s disk %d: chain %v does not extend its parent's %v", vm.Self.Value, n.Snapshot.Value, disk, chain, layouts[*parent][disk])
				}
				current := vm.Snapshot.CurrentSnapshot != nil && *vm.Snapshot.CurrentSnapshot == n.Snapshot
				if current && (!prefix(chain, running[disk]) || len(chain) == len(running[disk])) {
					t.Errorf("%s: running chain %v does not extend the current snapshot's %v", vm.Self.Value, running[disk], chain)
				}
			}
		})
	}
	if nodes != len(ex.Snapshot) {
		t.Errorf("%s: %d snapshot layouts for %d snapshots", vm.Self.Value, len(ex.Snapshot), nodes)
	}
	for _, f := range ex.File {
		if (f.Type == "diskDescriptor" || f.Type == "diskExtent") && !held[f.Key] {
			t.Errorf("%s: %s is in no chain", vm.Self.Value, f.Name)
		}
	}
	checkDiskBackings(t, VMFacts{Name: vm.Self.Value}, vm)
	if vm.Snapshot != nil {
		for ref, s := range snapshotSizesFromLayoutEx(ex, vm.Snapshot) {
			if s.size <= 0 {
				t.Errorf("%s %s: size %d", vm.Self.Value, ref.Value, s.size)
			}
		}
	}
}

func TestOpCreateSnapshotOnAVMWithoutSnapshotsReportsTheTreeAndTheFiles(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "powered on without snapshots", bare)
	id := vm.Self.Value
	before := chainNames(vm.LayoutEx, vm.LayoutEx.Disk)
	f := follow(t)
	start := time.Now().Add(-time.Second)

	answer := control(t, map[string]interface{}{"op": "create_snapshot", "vm": id, "name": veeamSnapshotName, "quiesce": true})
	ref, _ := answer["snapshot"].(string)
	if !strings.HasPrefix(ref, "snapshot-") || answer["vm"] != id {
		t.Fatalf("answer %v", answer)
	}
	f.waitFor(t, "create_snapshot", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		switch {
		case got.Snapshot == nil || len(got.Snapshot.RootSnapshotList) != 1:
			return "no snapshot tree with one root"
		case got.Snapshot.CurrentSnapshot == nil || got.Snapshot.CurrentSnapshot.Value != ref:
			return fmt.Sprintf("current %v, want %s", got.Snapshot.CurrentSnapshot, ref)
		}
		root := got.Snapshot.RootSnapshotList[0]
		if root.Name != veeamSnapshotName || !root.Quiesced || root.CreateTime.Before(start) || root.CreateTime.After(time.Now()) {
			return fmt.Sprintf("root %s quiesced %v created %s", root.Name, root.Quiesced, root.CreateTime)
		}
		s := snapshotLayout(got.LayoutEx, ref)
		if s == nil {
			return "no snapshot layout"
		}
		if vmsn := fileNames(got.LayoutEx)[s.DataKey]; !strings.HasSuffix(vmsn, "/"+got.Name+"-Snapshot1.vmsn") {
			return "vmsn " + vmsn
		}
		if asJSON(chainNames(got.LayoutEx, s.Disk)) != asJSON(before) {
			return fmt.Sprintf("snapshot chains %v, want the chains before %v", chainNames(got.LayoutEx, s.Disk), before)
		}
		for disk, chain := range chainNames(got.LayoutEx, got.LayoutEx.Disk) {
			want := strings.TrimSuffix(before[disk][0], ".vmdk") + "-000001.vmdk"
			if len(chain) != 2 || chain[1] != want {
				return fmt.Sprintf("disk %d running chain %v, want %s on top of the base", disk, chain, want)
			}
			if delta := fileByName(got.LayoutEx, strings.TrimSuffix(want, ".vmdk")+"-delta.vmdk"); delta == nil || delta.Size == 0 {
				return fmt.Sprintf("disk %d: delta extent %+v", disk, delta)
			}
		}
		return ""
	})
	f.waitForFresh(t, "create_snapshot", id)
	checkLiveLayout(t, freshVM(t, id))
}

func TestOpCreateSnapshotAddsAChildOfTheCurrentOne(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "with a current snapshot and two disks", func(vm mo.VirtualMachine) bool {
		return vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil && len(vm.LayoutEx.Disk) >= 2
	})
	id, parent := vm.Self.Value, *vm.Snapshot.CurrentSnapshot
	before := chainNames(vm.LayoutEx, vm.LayoutEx.Disk)
	f := follow(t)

	ref := control(t, map[string]interface{}{"op": "create_snapshot", "vm": id, "name": "nightly"})["snapshot"].(string)
	f.waitFor(t, "child create_snapshot", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		p := findNode(got.Snapshot.RootSnapshotList, parent)
		if p == nil || len(p.ChildSnapshotList) == 0 || p.ChildSnapshotList[len(p.ChildSnapshotList)-1].Snapshot.Value != ref {
			return fmt.Sprintf("%s is not the newest child of %s", ref, parent.Value)
		}
		if got.Snapshot.CurrentSnapshot.Value != ref || p.ChildSnapshotList[len(p.ChildSnapshotList)-1].Name != "nightly" {
			return "not current or misnamed"
		}
		s := snapshotLayout(got.LayoutEx, ref)
		if s == nil || asJSON(chainNames(got.LayoutEx, s.Disk)) != asJSON(before) {
			return "the new snapshot's chains are not the running chains before"
		}
		for disk, chain := range chainNames(got.LayoutEx, got.LayoutEx.Disk) {
			if len(chain) != len(before[disk])+1 || !prefixStrings(before[disk], chain) {
				return fmt.Sprintf("disk %d running chain %v does not extend %v by one", disk, chain, before[disk])
			}
		}
		return ""
	})
	f.waitForFresh(t, "child create_snapshot", id)
	checkLiveLayout(t, freshVM(t, id))
}

func prefixStrings(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A chain A -> B -> C made through /_control, then removed one by one: each removal merges the
// delta on top of the removed snapshot's chain down into that chain's newest file.
func TestOpRemoveSnapshotMergesTheDeltaAboveIt(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "powered on without snapshots", bare)
	id := vm.Self.Value
	base := vm.LayoutEx.Disk[0].Chain[0]
	baseName := fileNames(vm.LayoutEx)[base.FileKey[0]]
	f := follow(t)
	var refs []string
	for _, name := range []string{"A", "B", "C"} {
		refs = append(refs, control(t, map[string]interface{}{"op": "create_snapshot", "vm": id, "name": name})["snapshot"].(string))
	}
	f.waitForFresh(t, "three snapshots", id)
	stem := strings.TrimSuffix(baseName, ".vmdk")
	delta := func(n int) string { return fmt.Sprintf("%s-%06d.vmdk", stem, n) }
	extentSize := func(vm *mo.VirtualMachine, descriptor string) int64 {
		if f := fileByName(vm.LayoutEx, strings.TrimSuffix(descriptor, ".vmdk")+"-delta.vmdk"); f != nil {
			return f.Size
		}
		if f := fileByName(vm.LayoutEx, strings.TrimSuffix(descriptor, ".vmdk")+"-flat.vmdk"); f != nil {
			return f.Size
		}
		return -1
	}
	now := freshVM(t, id)
	d1, d2, d3 := extentSize(&now, delta(1)), extentSize(&now, delta(2)), extentSize(&now, delta(3))
	baseSize := extentSize(&now, baseName)
	capacity := diskCapacities(now.Config.Hardware.Device)[now.LayoutEx.Disk[0].Key]

	control(t, map[string]interface{}{"op": "remove_snapshot", "snapshot": refs[1]})
	f.waitFor(t, "remove the middle snapshot", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		a := findNode(got.Snapshot.RootSnapshotList, types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: refs[0]})
		if a == nil || len(a.ChildSnapshotList) != 1 || a.ChildSnapshotList[0].Snapshot.Value != refs[2] || got.Snapshot.CurrentSnapshot.Value != refs[2] {
			return "want A -> C with C current"
		}
		c := snapshotLayout(got.LayoutEx, refs[2])
		if snapshotLayout(got.LayoutEx, refs[1]) != nil || c == nil {
			return "B's layout is still there (or C's is gone)"
		}
		if chain := chainNames(got.LayoutEx, c.Disk)[c.Disk[0].Key]; asJSON(chain) != asJSON([]string{baseName, delta(1)}) {
			return fmt.Sprintf("C's chain %v, want base and %s", chain, delta(1))
		}
		if chain := chainNames(got.LayoutEx, got.LayoutEx.Disk)[got.LayoutEx.Disk[0].Key]; asJSON(chain) != asJSON([]string{baseName, delta(1), delta(3)}) {
			return fmt.Sprintf("running chain %v", chain)
		}
		if fileByName(got.LayoutEx, delta(2)) != nil || strings.Contains(asJSON(got.LayoutEx), "-Snapshot2.vmsn") {
			return "B's delta or .vmsn is still there"
		}
		if size := extentSize(got, delta(1)); size != minInt64(d1+d2, capacity) {
			return fmt.Sprintf("%s is %d bytes, want %d + %d", delta(1), size, d1, d2)
		}
		return ""
	})
	f.waitForFresh(t, "remove the middle snapshot", id)
	checkLiveLayout(t, freshVM(t, id))

	control(t, map[string]interface{}{"op": "remove_snapshot", "snapshot": refs[2]})
	f.waitFor(t, "remove the current snapshot", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		if got.Snapshot == nil || got.Snapshot.CurrentSnapshot == nil || got.Snapshot.CurrentSnapshot.Value != refs[0] {
			return "A is not current"
		}
		if chain := chainNames(got.LayoutEx, got.LayoutEx.Disk)[got.LayoutEx.Disk[0].Key]; asJSON(chain) != asJSON([]string{baseName, delta(1)}) {
			return fmt.Sprintf("running chain %v", chain)
		}
		if size := extentSize(got, delta(1)); size != minInt64(minInt64(d1+d2, capacity)+d3, capacity) {
			return fmt.Sprintf("%s is %d bytes", delta(1), size)
		}
		return ""
	})
	checkLiveLayout(t, freshVM(t, id))

	control(t, map[string]interface{}{"op": "remove_snapshot", "snapshot": refs[0]})
	f.waitFor(t, "remove the last snapshot", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		if got.Snapshot != nil || len(got.LayoutEx.Snapshot) != 0 {
			return "snapshots left"
		}
		if chain := chainNames(got.LayoutEx, got.LayoutEx.Disk)[got.LayoutEx.Disk[0].Key]; len(chain) != 1 {
			return fmt.Sprintf("running chain %v", chain)
		}
		if size := extentSize(got, baseName); size <= baseSize && baseSize < capacity {
			return fmt.Sprintf("base extent %d bytes, was %d", size, baseSize)
		}
		return ""
	})
	f.waitForFresh(t, "remove the last snapshot", id)
	checkLiveLayout(t, freshVM(t, id))
	for _, ref := range refs {
		if simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: ref}) != nil {
			t.Errorf("%s is still registered", ref)
		}
	}
}

func minInt64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// Removing a snapshot with two children merges nothing (its children move up and the disks stay);
// removing a leaf the VM does not run on deletes the delta only it held.
func TestOpRemoveSnapshotAtABranchKeepsTheDisksAndALeafTakesItsDelta(t *testing.T) {
	inControlProcess(t)
	branchOf := func(vm mo.VirtualMachine) *types.VirtualMachineSnapshotTree {
		if vm.Snapshot == nil {
			return nil
		}
		var found *types.VirtualMachineSnapshotTree
		walkTree(vm.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
			if len(n.ChildSnapshotList) >= 2 && found == nil {
				found = n
			}
		})
		return found
	}
	vm := pick(t, "with a branched snapshot tree", func(vm mo.VirtualMachine) bool { return branchOf(vm) != nil })
	id, branch := vm.Self.Value, *branchOf(vm)
	parent := parentOf(vm.Snapshot.RootSnapshotList, branch.Snapshot)
	disksBefore := chainNames(vm.LayoutEx, vm.LayoutEx.Disk)
	f := follow(t)

	control(t, map[string]interface{}{"op": "remove_snapshot", "snapshot": branch.Snapshot.Value})
	f.waitFor(t, "remove a branch point", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		if findNode(got.Snapshot.RootSnapshotList, branch.Snapshot) != nil {
			return "still in the tree"
		}
		for _, child := range branch.ChildSnapshotList {
			p := parentOf(got.Snapshot.RootSnapshotList, child.Snapshot)
			if (p == nil) != (parent == nil) || p != nil && *p != *parent {
				return fmt.Sprintf("child %s has parent %v, want %v", child.Snapshot.Value, p, parent)
			}
		}
		if asJSON(chainNames(got.LayoutEx, got.LayoutEx.Disk)) != asJSON(disksBefore) {
			return "running chains changed"
		}
		return ""
	})
	f.waitForFresh(t, "remove a branch point", id)
	now := freshVM(t, id)
	checkLiveLayout(t, now)

	var leaf *types.VirtualMachineSnapshotTree
	walkTree(now.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
		current := now.Snapshot.CurrentSnapshot // none when the branch point was current and a root
		if len(n.ChildSnapshotList) == 0 && (current == nil || *current != n.Snapshot) && leaf == nil {
			leaf = n
		}
	})
	if leaf == nil {
		t.Fatal("no leaf the VM does not run on")
	}
	layout := snapshotLayout(now.LayoutEx, leaf.Snapshot.Value)
	chains := chainNames(now.LayoutEx, layout.Disk)
	control(t, map[string]interface{}{"op": "remove_snapshot", "snapshot": leaf.Snapshot.Value})
	f.waitFor(t, "remove a leaf the VM does not run on", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		if got.Snapshot != nil && findNode(got.Snapshot.RootSnapshotList, leaf.Snapshot) != nil {
			return "still in the tree"
		}
		for disk, chain := range chains {
			top := chain[len(chain)-1]
			if fileByName(got.LayoutEx, top) != nil && len(chain) > 1 {
				return fmt.Sprintf("disk %d: %s, held by the leaf only, is still there", disk, top)
			}
		}
		return ""
	})
	f.waitForFresh(t, "remove a leaf", id)
	checkLiveLayout(t, freshVM(t, id))
}

func TestOpRemoveAllSnapshotsLeavesTheBaseDisksOnly(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "with two snapshots or more", func(vm mo.VirtualMachine) bool {
		return vm.Snapshot != nil && len(vm.LayoutEx.Snapshot) >= 2
	})
	id := vm.Self.Value
	var refs []types.ManagedObjectReference
	walkTree(vm.Snapshot.RootSnapshotList, nil, func(n *types.VirtualMachineSnapshotTree, _ *types.ManagedObjectReference) {
		refs = append(refs, n.Snapshot)
	})
	f := follow(t)
	answer := control(t, map[string]interface{}{"op": "remove_all_snapshots", "vm": id})
	if answer["removed"] != float64(len(refs)) {
		t.Errorf("removed %v, want %d", answer["removed"], len(refs))
	}
	f.waitFor(t, "remove_all_snapshots", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		if got.Snapshot != nil || len(got.LayoutEx.Snapshot) != 0 {
			return "snapshots left"
		}
		for _, d := range got.LayoutEx.Disk {
			if len(d.Chain) != 1 {
				return fmt.Sprintf("disk %d chain of %d", d.Key, len(d.Chain))
			}
		}
		for _, file := range got.LayoutEx.File {
			if file.Type == "snapshotData" || file.Type == "snapshotMemory" || deltaName.MatchString(file.Name) {
				return "file left: " + file.Name
			}
		}
		return ""
	})
	f.waitForFresh(t, "remove_all_snapshots", id)
	checkLiveLayout(t, freshVM(t, id))
	for _, ref := range refs {
		if simulator.Map.Get(ref) != nil {
			t.Errorf("%s is still registered", ref.Value)
		}
	}
}

func TestOpRenameSnapshotChangesItsNameOnly(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "with snapshots", func(vm mo.VirtualMachine) bool { return vm.Snapshot != nil })
	id, root := vm.Self.Value, vm.Snapshot.RootSnapshotList[0].Snapshot
	f := follow(t)
	control(t, map[string]interface{}{"op": "rename_snapshot", "snapshot": root.Value, "name": "renamed by the test"})
	want := copyTree(vm.Snapshot.RootSnapshotList)
	want[0].Name = "renamed by the test"
	f.waitFor(t, "rename_snapshot", func(vms map[string]*mo.VirtualMachine) string {
		if got := vms[id].Snapshot.RootSnapshotList; asJSON(got) != asJSON(want) {
			return fmt.Sprintf("tree %s", asJSON(got))
		}
		return ""
	})
	f.waitForFresh(t, "rename_snapshot", id)
}

func TestOpSetToolsReportsTheGuestPaths(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "with Tools current and running", func(vm mo.VirtualMachine) bool {
		return vm.Guest != nil && vm.Guest.ToolsVersionStatus2 == toolsCurrent && vm.Guest.ToolsRunningStatus == toolsRunning
	})
	id := vm.Self.Value
	f := follow(t)
	control(t, map[string]interface{}{"op": "set_tools", "vm": id, "status": toolsNeedUpgrade, "running": toolsNotRunning})
	f.waitFor(t, "set_tools", func(vms map[string]*mo.VirtualMachine) string {
		g := vms[id].Guest
		if g.ToolsVersionStatus2 != toolsNeedUpgrade || g.ToolsRunningStatus != toolsNotRunning || g.ToolsVersion != "11333" {
			return fmt.Sprintf("guest %+v", g)
		}
		return ""
	})
	f.waitForFresh(t, "set_tools", id)

	control(t, map[string]interface{}{"op": "set_tools", "vm": id, "status": ""})
	f.waitFor(t, "set_tools status unset", func(vms map[string]*mo.VirtualMachine) string {
		if g := vms[id].Guest; g.ToolsVersionStatus2 != "" || g.ToolsRunningStatus != toolsNotRunning {
			return fmt.Sprintf("guest %+v", g)
		}
		return ""
	})
	f.waitForFresh(t, "set_tools status unset", id)
}

func TestOpMoveVMChangesItsHostAndTheListsThatNameIt(t *testing.T) {
	inControlProcess(t)
	ctx := context.Background()
	c := controlLogin(ctx, t)
	pc := property.DefaultCollector(c)
	var hosts []mo.HostSystem
	if err := pc.Retrieve(ctx, hostRefs(), []string{"name", "parent", "vm"}, &hosts); err != nil {
		t.Fatal(err)
	}
	vm := pick(t, "on a cluster host of DC0", func(vm mo.VirtualMachine) bool {
		return strings.HasPrefix(vm.Name, "DC0_C0_") && vm.Runtime.Host != nil && !vm.Config.Template
	})
	id, from := vm.Self.Value, *vm.Runtime.Host
	var sameCluster, otherDC *mo.HostSystem
	for i, h := range hosts {
		switch {
		case h.Self == from:
		case strings.HasPrefix(h.Name, "DC0_C0_") && sameCluster == nil:
			sameCluster = &hosts[i]
		case strings.HasPrefix(h.Name, "DC1_H") && otherDC == nil:
			otherDC = &hosts[i]
		}
	}
	if sameCluster == nil || otherDC == nil {
		t.Fatalf("hosts %v", hosts)
	}
	f := follow(t)
	for _, to := range []*mo.HostSystem{sameCluster, otherDC} {
		var before mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vm.Self, []string{"resourcePool", "parent", "datastore"}, &before); err != nil {
			t.Fatal(err)
		}
		control(t, map[string]interface{}{"op": "move_vm", "vm": id, "host": to.Self.Value})
		f.waitFor(t, "move_vm to "+to.Name, func(vms map[string]*mo.VirtualMachine) string {
			if h := vms[id].Runtime.Host; h == nil || *h != to.Self {
				return fmt.Sprintf("runtime.host %v", h)
			}
			return ""
		})
		f.waitForFresh(t, "move_vm to "+to.Name, id)

		var after mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vm.Self, []string{"resourcePool", "parent", "datastore", "summary.runtime.host"}, &after); err != nil {
			t.Fatal(err)
		}
		cr := computeResource(*to.Parent)
		crossDC := to == otherDC
		if *after.ResourcePool != *cr.ResourcePool || (*after.Parent != *before.Parent) != crossDC ||
			(after.Datastore[0] != before.Datastore[0]) != crossDC || *after.Summary.Runtime.Host != to.Self {
			t.Errorf("to %s: pool %v (want %v), parent %v -> %v, datastore %v -> %v", to.Name, after.ResourcePool, cr.ResourcePool,
				before.Parent, after.Parent, before.Datastore, after.Datastore)
		}
		var now []mo.HostSystem
		if err := pc.Retrieve(ctx, []types.ManagedObjectReference{from, to.Self}, []string{"vm"}, &now); err != nil {
			t.Fatal(err)
		}
		for _, h := range now {
			has := simulator.FindReference(h.Vm, vm.Self) != nil
			if has != (h.Self == to.Self) {
				t.Errorf("host %s lists %s: %v", h.Self.Value, id, has)
			}
		}
		from = to.Self
	}
}

func hostRefs() []types.ManagedObjectReference {
	var refs []types.ManagedObjectReference
	for _, e := range simulator.Map.All("HostSystem") {
		refs = append(refs, e.Reference())
	}
	return refs
}

func TestOpAddVMEntersAContainerViewFilter(t *testing.T) {
	inControlProcess(t)
	f := follow(t)
	id := control(t, map[string]interface{}{"op": "add_vm", "name": "added-by-test"})["vm"].(string)
	f.waitFor(t, "add_vm", func(vms map[string]*mo.VirtualMachine) string {
		got := vms[id]
		switch {
		case !f.entered[id] || got == nil:
			return "no enter"
		case got.Name != "added-by-test" || got.Runtime.PowerState != poweredOn || got.Runtime.Host == nil:
			return fmt.Sprintf("name %q power %s host %v", got.Name, got.Runtime.PowerState, got.Runtime.Host)
		case got.Guest == nil || got.Guest.ToolsVersionStatus2 != toolsCurrent || got.Guest.ToolsRunningStatus != toolsRunning:
			return fmt.Sprintf("guest %+v", got.Guest)
		case got.LayoutEx == nil || len(got.LayoutEx.Disk) != 1 || got.Snapshot != nil:
			return "files"
		}
		return ""
	})
	f.waitForFresh(t, "add_vm", id)
	checkLiveLayout(t, freshVM(t, id))

	host := hostRefs()[0].Value
	answer := control(t, map[string]interface{}{"op": "add_vm", "name": "added-on-a-host", "host": host})
	f.waitForFresh(t, "add_vm on a host", answer["vm"].(string))
	if got := freshVM(t, answer["vm"].(string)); got.Runtime.Host.Value != host {
		t.Errorf("added on %s, want %s", got.Runtime.Host.Value, host)
	}
	if status, _ := controlCall(t, `{"op":"add_vm","name":"added-by-test"}`); status != http.StatusBadRequest {
		t.Errorf("a second VM of the same name: %d, want 400", status)
	}
}

func TestOpRemoveVMLeavesAContainerViewFilter(t *testing.T) {
	inControlProcess(t)
	vm := pick(t, "powered on with snapshots", func(vm mo.VirtualMachine) bool {
		return vm.Snapshot != nil && vm.Runtime.PowerState == poweredOn
	})
	id := vm.Self.Value
	f := follow(t)
	control(t, map[string]interface{}{"op": "remove_vm", "vm": id})
	f.waitFor(t, "remove_vm", func(vms map[string]*mo.VirtualMachine) string {
		if !f.left[id] || vms[id] != nil {
			return "no leave"
		}
		return ""
	})
	f.waitForFresh(t, "remove_vm")
	if simulator.Map.Get(*vm.Snapshot.CurrentSnapshot) != nil {
		t.Errorf("snapshot %s of the removed VM is still registered", vm.Snapshot.CurrentSnapshot.Value)
	}
}

func TestOpChurnChangesTheRequestedFractionOfVMs(t *testing.T) {
	inControlProcess(t)
	f := follow(t)
	total := len(fresh(t))
	answer := control(t, map[string]interface{}{"op": "churn", "fraction": 0.1, "seed": 5})
	want := float64(int(0.1*float64(total) + 0.5))
	changed := answer["created"].(float64) + answer["children"].(float64) + answer["removed"].(float64)
	if answer["vms"] != float64(total) || answer["changed"] != want || changed != want {
		t.Errorf("answer %v, want %v changes of %d VMs", answer, want, total)
	}
	f.waitForFresh(t, "churn")
	for _, vm := range fresh(t) {
		if vm.LayoutEx != nil && len(vm.LayoutEx.Disk) > 0 {
			checkLiveLayout(t, vm)
		}
	}
}

// Ops sent at once, while two collectors wait in WaitForUpdatesEx and a client retrieves the
// whole inventory in a loop, all arrive: both followed copies end up equal to a fresh retrieval.
func TestOpConcurrentOpsAndRetrievalsAllArrive(t *testing.T) {
	inControlProcess(t)
	followers := []*follower{follow(t), follow(t)}
	var vms []string
	for i := 0; i < 4; i++ {
		vms = append(vms, pick(t, "powered on without snapshots", bare).Self.Value)
	}
	ctx := context.Background()
	c := controlLogin(ctx, t)
	stop := make(chan struct{})
	retrieved := make(chan error, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				if n == 0 {
					retrieved <- fmt.Errorf("no retrieval ran alongside the ops")
				}
				close(retrieved)
				return
			default:
			}
			if _, err := retrieveVMs(ctx, c); err != nil {
				retrieved <- err
				close(retrieved)
				return
			}
			n++
		}
	}()
	errs := make(chan error, len(vms))
	var wg sync.WaitGroup
	for i, id := range vms {
		wg.Add(1)
		go func(i int, id string) {
			defer wg.Done()
			errs <- changeConcurrently(i, id)
		}(i, id)
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for err := range retrieved {
		t.Errorf("retrievals alongside the ops: %v", err)
	}
	for _, f := range followers {
		f.waitForFresh(t, "concurrent ops")
	}
	for _, id := range vms {
		checkLiveLayout(t, freshVM(t, id))
	}
}

// changeConcurrently takes three snapshots of vm, removes the second, flips its Tools running
// state and churns 2 % of the VMs with seed i.
func changeConcurrently(i int, vm string) error {
	for k := 0; k < 3; k++ {
		answer, err := tryControl(map[string]interface{}{"op": "create_snapshot", "vm": vm, "name": fmt.Sprintf("s%d", k)})
		if err != nil {
			return err
		}
		if _, err := tryControl(map[string]interface{}{"op": "set_tools", "vm": vm, "running": []string{toolsNotRunning, toolsRunning}[k%2]}); err != nil {
			return err
		}
		if k == 1 {
			if _, err := tryControl(map[string]interface{}{"op": "remove_snapshot", "snapshot": answer["snapshot"]}); err != nil {
				return err
			}
		}
	}
	_, err := tryControl(map[string]interface{}{"op": "churn", "fraction": 0.02, "seed": i})
	return err
}

func TestOpDropSessionsEndsEverySession(t *testing.T) {
	inControlProcess(t)
	ctx := context.Background()
	c := controlLogin(ctx, t)
	pc := property.DefaultCollector(c)
	var folder mo.Folder
	if err := pc.RetrieveOne(ctx, c.ServiceContent.RootFolder, []string{"name"}, &folder); err != nil {
		t.Fatalf("with a session: %v", err)
	}
	if n := control(t, map[string]interface{}{"op": "drop_sessions"})["terminated"].(float64); n < 1 {
		t.Errorf("terminated %v sessions", n)
	}
	if err := pc.RetrieveOne(ctx, c.ServiceContent.RootFolder, []string{"name"}, &folder); !isNotAuthenticated(err) {
		t.Fatalf("after drop_sessions: want NotAuthenticated, got %v", err)
	}
}

func TestOpRejectsBadRequestsWithTheirReason(t *testing.T) {
	inControlProcess(t)
	template := pick(t, "a template", func(vm mo.VirtualMachine) bool { return vm.Config.Template })
	vm := pick(t, "powered off", func(vm mo.VirtualMachine) bool {
		return !vm.Config.Template && vm.Runtime.PowerState == poweredOff
	}).Self.Value
	for _, c := range []struct {
		body   string
		status int
		reason string
	}{
		{`not json`, 400, "want a JSON object"},
		{`{"op":"reboot"}`, 400, `op "reboot": want one of add_vm, churn`},
		{`{"op":"create_snapshot","name":"a"}`, 400, `"vm" is required`},
		{`{"op":"create_snapshot","vm":"vm-99999","name":"a"}`, 404, "vm vm-99999: no such VirtualMachine"},
		{`{"op":"create_snapshot","vm":"` + vm + `","name":""}`, 400, "name must not be empty"},
		{`{"op":"create_snapshot","vm":"` + vm + `","name":"a","quiesced":true}`, 400, `unknown field "quiesced"`},
		{`{"op":"create_snapshot","vm":"` + vm + `","name":"a","quiesce":"yes"}`, 400, "cannot unmarshal"},
		{`{"op":"create_snapshot","vm":"` + vm + `","name":"a","memory":true}`, 400, "a memory snapshot needs a powered-on VM"},
		{`{"op":"create_snapshot","vm":"` + template.Self.Value + `","name":"a"}`, 400, "templates cannot take snapshots"},
		{`{"op":"remove_snapshot","snapshot":"snapshot-99999"}`, 404, "no such VirtualMachineSnapshot"},
		{`{"op":"rename_snapshot","snapshot":"vm-1","name":"x"}`, 404, "no such VirtualMachineSnapshot"},
		{`{"op":"set_tools","vm":"` + vm + `"}`, 400, "give status, running or version"},
		{`{"op":"set_tools","vm":"` + vm + `","status":"guestToolsOk"}`, 400, `status "guestToolsOk"`},
		{`{"op":"set_tools","vm":"` + vm + `","running":"yes"}`, 400, `running "yes"`},
		{`{"op":"move_vm","vm":"` + vm + `","host":"host-99999"}`, 404, "no such HostSystem"},
		{`{"op":"add_vm","name":" "}`, 400, "want a non-empty name"},
		{`{"op":"remove_vm","vm":"vm-99999"}`, 404, "no such VirtualMachine"},
		{`{"op":"churn","fraction":0}`, 400, "want 0 < fraction <= 1"},
		{`{"op":"churn","fraction":1.5}`, 400, "want 0 < fraction <= 1"},
		{`{"op":"drop_sessions","vm":"vm-1"}`, 400, `unknown field "vm"`},
	} {
		status, answer := controlCall(t, c.body)
		if reason, _ := answer["error"].(string); status != c.status || answer["ok"] != false || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: %d %v, want %d with %q", c.body, status, answer, c.status, c.reason)
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: controlSrv.caPool()}}}
	res, err := client.Get(strings.TrimSuffix(controlSrv.url, "/sdk") + "/_control")
	if err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /_control: %v %v", err, res)
	}
	if res != nil {
		res.Body.Close()
	}
}

// liveChain builds the layoutEx of a powered-off VM with two disks after ops, as the startup
// scenarios do, with refs snapshot-1, snapshot-2, ….
func liveChain(t *testing.T, ops ...snapOp) (*liveLayout, map[int32]int64) {
	t.Helper()
	plan := &vmPlan{name: "vm", power: poweredOff, memoryMB: 1024, ops: ops, sizes: rand.New(rand.NewSource(1)),
		disks: []diskPlan{{capacityBytes: 10 * giB, thin: true, usedBytes: 1 * giB}, {capacityBytes: 2 * giB, usedBytes: 2 * giB}}}
	l := newLayout(plan)
	taken := 0
	for _, op := range ops {
		if op.isTake() {
			taken++
			l.take(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: fmt.Sprintf("snapshot-%d", taken)}, op)
		} else {
			l.revert(op.revertTo, op)
		}
	}
	return newLiveLayout(l.layoutEx(goldenNow)), map[int32]int64{firstDiskKey: 10 * giB, firstDiskKey + 1: 2 * giB}
}

func snapRef(n int) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: fmt.Sprintf("snapshot-%d", n)}
}

func liveChains(l *liveLayout, disks []types.VirtualMachineFileLayoutExDiskLayout) string {
	var parts []string
	chains := chainNames(l.ex, disks)
	for _, d := range disks {
		chain := chains[d.Key]
		var names []string
		for _, n := range chain {
			names = append(names, relativeName(n))
		}
		parts = append(parts, strings.Join(names, ","))
	}
	return strings.Join(parts, " | ")
}

func (l *liveLayout) sizeOf(name string) int64 {
	if f := fileByName(l.ex, "[LocalDS_0] vm/"+name); f != nil {
		return f.Size
	}
	return -1
}

func TestLiveLayoutTakeKeepsTheRunningChainsAndAddsADeltaPerDisk(t *testing.T) {
	l, _ := liveChain(t, take("a", goldenNow).withSizes(30*kiB, 5*miB, 6*miB))
	l.take(snapRef(2), "vm", snapshotFiles{vmsnName: "vm-Snapshot2.vmsn", vmsnBytes: 20 * kiB, memoryName: "vm-Snapshot2.vmem", memoryBytes: miB},
		func(disk int) int64 { return int64(disk+1) * miB }, goldenNow)
	s := snapshotLayout(l.ex, "snapshot-2")
	if got := liveChains(l, s.Disk); got != "vm.vmdk,vm-000001.vmdk | vm_1.vmdk,vm_1-000001.vmdk" {
		t.Errorf("snapshot-2 chains %s", got)
	}
	if got := liveChains(l, l.ex.Disk); got != "vm.vmdk,vm-000001.vmdk,vm-000002.vmdk | vm_1.vmdk,vm_1-000001.vmdk,vm_1-000002.vmdk" {
		t.Errorf("running chains %s", got)
	}
	if l.sizeOf("vm-000002-delta.vmdk") != miB || l.sizeOf("vm_1-000002-delta.vmdk") != 2*miB ||
		l.sizeOf("vm-Snapshot2.vmsn") != 20*kiB || l.sizeOf("vm-Snapshot2.vmem") != miB || l.sizeOf("vm.vmsd") != vmsdBytes {
		t.Errorf("files %+v", l.ex.File)
	}
	names := fileNames(l.ex)
	if names[s.DataKey] != "[LocalDS_0] vm/vm-Snapshot2.vmsn" || names[s.MemoryKey] != "[LocalDS_0] vm/vm-Snapshot2.vmem" {
		t.Errorf("dataKey %d memoryKey %d", s.DataKey, s.MemoryKey)
	}
}

func TestLiveLayoutRemoveMergesTheOneDeltaAboveTheSnapshotsChain(t *testing.T) {
	chain := []snapOp{
		take("a", goldenNow).withSizes(30*kiB, 1*giB, 1*giB),
		take("b", goldenNow).withSizes(30*kiB, 2*giB, 1*giB),
		take("c", goldenNow).withSizes(30*kiB, 3*giB, 1*giB),
	}
	// b's chain is base+1; 2 sits on it in c's chain and the running one: 2 merges into 1.
	l, capacity := liveChain(t, chain...)
	l.remove(snapRef(2), capacity, goldenNow)
	if got := liveChains(l, snapshotLayout(l.ex, "snapshot-3").Disk); got != "vm.vmdk,vm-000001.vmdk | vm_1.vmdk,vm_1-000001.vmdk" {
		t.Errorf("c's chains %s", got)
	}
	if got := liveChains(l, l.ex.Disk); got != "vm.vmdk,vm-000001.vmdk,vm-000003.vmdk | vm_1.vmdk,vm_1-000001.vmdk,vm_1-000003.vmdk" {
		t.Errorf("running chains %s", got)
	}
	if l.sizeOf("vm-000001-delta.vmdk") != 3*giB || l.sizeOf("vm_1-000001-delta.vmdk") != 2*giB {
		t.Errorf("merged sizes %d %d", l.sizeOf("vm-000001-delta.vmdk"), l.sizeOf("vm_1-000001-delta.vmdk"))
	}
	if l.sizeOf("vm-000002.vmdk") != -1 || l.sizeOf("vm-000002-delta.vmdk") != -1 || l.sizeOf("vm-Snapshot2.vmsn") != -1 {
		t.Error("b's delta or .vmsn is left")
	}

	// The root's chain is the base disk: 1 merges into it, up to the disk's capacity.
	l, capacity = liveChain(t, chain...)
	l.remove(snapRef(1), capacity, goldenNow)
	if l.sizeOf("vm-flat.vmdk") != 2*giB || l.sizeOf("vm_1-flat.vmdk") != 2*giB {
		t.Errorf("base extents %d %d, want 1+1 GiB and the 2 GiB capacity", l.sizeOf("vm-flat.vmdk"), l.sizeOf("vm_1-flat.vmdk"))
	}
	if got := liveChains(l, snapshotLayout(l.ex, "snapshot-2").Disk); got != "vm.vmdk | vm_1.vmdk" {
		t.Errorf("b's chains %s", got)
	}

	// The current snapshot: the running delta merges into its chain's newest file.
	l, capacity = liveChain(t, chain...)
	l.remove(snapRef(3), capacity, goldenNow)
	if got := liveChains(l, l.ex.Disk); got != "vm.vmdk,vm-000001.vmdk,vm-000002.vmdk | vm_1.vmdk,vm_1-000001.vmdk,vm_1-000002.vmdk" {
		t.Errorf("running chains %s", got)
	}
}

func TestLiveLayoutRemoveAtABranchMergesNothingAndALeafTakesItsOwnDelta(t *testing.T) {
	// a; b on a; back to a; c on a (current): a's chain has two successors.
	ops := []snapOp{
		take("a", goldenNow).withSizes(30*kiB, 1*giB, 1*giB),
		take("b", goldenNow).withSizes(30*kiB, 2*giB, 1*giB),
		revertTo(0).withSizes(0, 3*giB, 1*giB),
		take("c", goldenNow).withSizes(30*kiB, 4*giB, 1*giB),
	}
	l, capacity := liveChain(t, ops...)
	files := len(l.ex.File)
	l.remove(snapRef(1), capacity, goldenNow)
	if len(l.ex.File) != files-1 || l.sizeOf("vm-Snapshot1.vmsn") != -1 {
		t.Errorf("want only a's .vmsn gone: %d files of %d", len(l.ex.File), files)
	}

	l, capacity = liveChain(t, ops...)
	b := liveChains(l, snapshotLayout(l.ex, "snapshot-2").Disk)
	l.remove(snapRef(2), capacity, goldenNow)
	if b != "vm.vmdk,vm-000001.vmdk | vm_1.vmdk,vm_1-000001.vmdk" || l.sizeOf("vm-000001-delta.vmdk") != -1 || l.sizeOf("vm_1-000001.vmdk") != -1 {
		t.Errorf("b (%s) left its own delta: %+v", b, l.ex.File)
	}
	if l.sizeOf("vm-000003-delta.vmdk") != 3*giB {
		t.Error("the running chain's files changed")
	}
}

func TestLiveLayoutRemoveAllConsolidatesTheRunningChainIntoTheBase(t *testing.T) {
	l, capacity := liveChain(t,
		take("a", goldenNow).withSizes(30*kiB, 1*giB, 1*giB),
		take("b", goldenNow).withMemory().withSizes(30*kiB, 2*giB, 1*giB))
	l.removeAll(capacity, goldenNow)
	if got := liveChains(l, l.ex.Disk); got != "vm.vmdk | vm_1.vmdk" || len(l.ex.Snapshot) != 0 {
		t.Errorf("running chains %s, %d snapshot layouts", got, len(l.ex.Snapshot))
	}
	if l.sizeOf("vm-flat.vmdk") != 4*giB || l.sizeOf("vm_1-flat.vmdk") != 2*giB {
		t.Errorf("base extents %d %d", l.sizeOf("vm-flat.vmdk"), l.sizeOf("vm_1-flat.vmdk"))
	}
	var names []string
	for _, f := range l.ex.File {
		names = append(names, relativeName(f.Name))
	}
	if got := strings.Join(names, ","); got != "vm.vmx,vm.vmxf,vm.nvram,vm.vmsd,vmware.log,vm.vmdk,vm-flat.vmdk,vm_1.vmdk,vm_1-flat.vmdk" {
		t.Errorf("files %s", got)
	}
}

// Startup layouts rendered through the shared renderers still name the same files.
func TestLegacyLayoutOfListsDescriptorsNewestFirst(t *testing.T) {
	l, _ := liveChain(t, take("a", goldenNow), take("b", goldenNow).withMemory())
	legacy := legacyLayoutOf(l.ex)
	var b bytes.Buffer
	for _, s := range legacy.Snapshot {
		fmt.Fprintf(&b, "%s: %v\n", s.Key.Value, s.SnapshotFile)
	}
	want := "snapshot-1: [[LocalDS_0] vm/vm-Snapshot1.vmsn [LocalDS_0] vm/vm.vmdk [LocalDS_0] vm/vm_1.vmdk]\n" +
		"snapshot-2: [[LocalDS_0] vm/vm-Snapshot2.vmsn [LocalDS_0] vm/vm-Snapshot2.vmem [LocalDS_0] vm/vm-000001.vmdk [LocalDS_0] vm/vm.vmdk [LocalDS_0] vm/vm_1-000001.vmdk [LocalDS_0] vm/vm_1.vmdk]\n"
	if b.String() != want || asJSON(legacy.ConfigFile) != `["vm.vmxf","vm.nvram","vm.vmsd"]` || legacy.Disk[0].DiskFile[0] != "[LocalDS_0] vm/vm-000002.vmdk" {
		t.Errorf("legacy layout:\n%s%v %v", b.String(), legacy.ConfigFile, legacy.Disk)
	}
}

func TestOpSetDatastoreFreeSetsSummaryAndInfo(t *testing.T) {
	inControlProcess(t)
	ds := datastoreByName(datastoreName)
	if ds == nil {
		t.Fatalf("no datastore %s", datastoreName)
	}
	free := ds.Summary.Capacity / 3
	control(t, map[string]interface{}{"op": "set_datastore_free", "datastore": ds.Self.Value, "free_bytes": free})
	if got, info := ds.Summary.FreeSpace, ds.Info.GetDatastoreInfo().FreeSpace; got != free || info != free {
		t.Errorf("summary.freeSpace %d, info.freeSpace %d, want %d", got, info, free)
	}
	if status, _ := controlCall(t, fmt.Sprintf(`{"op":"set_datastore_free","datastore":%q,"free_bytes":-1}`, ds.Self.Value)); status != http.StatusBadRequest {
		t.Errorf("negative free space: %d, want 400", status)
	}
	if status, _ := controlCall(t, `{"op":"set_datastore_free","datastore":"nope","free_bytes":1}`); status != http.StatusNotFound {
		t.Errorf("unknown datastore: %d, want 404", status)
	}
}
