package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// pitfallsProcessEnv set makes TestMain build the pitfalls scenario and run the TestPitfalls* tests.
const pitfallsProcessEnv = "VCSIM_PITFALLS_TEST_PROCESS"

var (
	pitfallsSim *simulation
	pitfallsSrv *server
)

func runPitfallsTests(m *testing.M) int {
	sim, err := buildScenario(options{scenario: "pitfalls", now: backupNow})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pitfalls scenario:", err)
		return 1
	}
	defer sim.model.Remove()
	srv, err := startServer(sim, serverConfig{listen: "127.0.0.1:0", tls: true, username: "user", password: "pass", requireSession: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	defer srv.close()
	sim.facts.URL, sim.facts.Username, sim.facts.Password = srv.url, "user", "pass"
	pitfallsSim, pitfallsSrv = sim, srv
	return m.Run()
}

func TestPitfallsScenarioRunsInAProcessOfItsOwn(t *testing.T) {
	if pitfallsSrv != nil {
		t.Skip("already in the pitfalls process")
	}
	runInAProcessOfTheirOwn(t, "TestPitfallsScenario", pitfallsProcessEnv, 2*time.Minute, 3)
}

func inPitfallsProcess(t *testing.T) context.Context {
	t.Helper()
	if pitfallsSrv == nil {
		t.Skip("runs in the pitfalls process (TestPitfallsScenarioRunsInAProcessOfItsOwn)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pitfallVM(t *testing.T, name string) VMFacts {
	t.Helper()
	for _, vm := range pitfallsSim.facts.VMs {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("pitfalls scenario has no VM %s", name)
	return VMFacts{}
}

func TestPitfallsScenarioFactsMatchWhatThePropertyCollectorReturns(t *testing.T) {
	ctx := inPitfallsProcess(t)
	if err := verifyServer(ctx, pitfallsSrv.url, pitfallsSrv.caPool(), pitfallsSim.facts, nil); err != nil {
		t.Fatal(err)
	}
}

// The self-check must notice a device fact the simulator does not serve: a foreign disk on
// the multi-writer node, and a question where none waits.
func TestPitfallsScenarioSelfCheckNoticesWrongDeviceFacts(t *testing.T) {
	ctx := inPitfallsProcess(t)
	for _, c := range []struct {
		vm   string
		edit func(*VMFacts)
	}{
		{pitfallMultiWriterB, func(vm *VMFacts) {
			vm.ForeignDisks = append(vm.ForeignDisks, ForeignDiskFacts{DiskFile: "x", OwnerVMID: "vm-1", OwnerVMName: "x"})
		}},
		{pitfallCBTHealthy, func(vm *VMFacts) { vm.Question = "?" }},
		{pitfallNoCurrent, func(vm *VMFacts) { vm.SnapshotCurrentMissing = false }},
	} {
		facts := *pitfallsSim.facts
		facts.VMs = append([]VMFacts(nil), pitfallsSim.facts.VMs...)
		only := map[string]bool{}
		for i := range facts.VMs {
			if facts.VMs[i].Name == c.vm {
				c.edit(&facts.VMs[i])
				only[facts.VMs[i].ID] = true
			}
		}
		err := verifyServer(ctx, pitfallsSrv.url, pitfallsSrv.caPool(), &facts, only)
		if err == nil || !strings.Contains(err.Error(), c.vm) {
			t.Errorf("%s: self-check with a wrong fact: %v", c.vm, err)
		}
	}
}

// Every device pitfall is in the facts once, on its own VM, and the healthy VMs have none.
func TestPitfallsScenarioHasOneVMPerDevicePitfall(t *testing.T) {
	inPitfallsProcess(t)
	reasons := func(vm VMFacts) string {
		var r []string
		for _, d := range vm.DisksNotSnapshotted {
			r = append(r, d.Reason)
		}
		return strings.Join(r, ",")
	}
	for name, want := range map[string]string{
		pitfallIndependentPersistent:    reasonIndependentPersistent,
		pitfallIndependentNonpersistent: reasonIndependentNonpersistent,
		pitfallPhysicalRDM:              reasonPhysicalRDM,
	} {
		if got := reasons(pitfallVM(t, name)); got != want {
			t.Errorf("%s: disks not snapshotted %q, want %q", name, got, want)
		}
	}
	proxy, victim := pitfallVM(t, pitfallProxy), pitfallVM(t, pitfallProxyOwner)
	if len(proxy.ForeignDisks) != 1 || proxy.ForeignDisks[0].OwnerVMID != victim.ID ||
		!strings.HasPrefix(proxy.ForeignDisks[0].DiskFile, "[LocalDS_0] "+pitfallProxyOwner+"/") {
		t.Errorf("proxy's foreign disks %+v, want one of %s (%s)", proxy.ForeignDisks, victim.Name, victim.ID)
	}
	for name, want := range map[string]string{
		pitfallMultiWriterA:   blockerMultiWriter,
		pitfallMultiWriterB:   blockerMultiWriter,
		pitfallBusSharing:     blockerSCSIBusSharing,
		pitfallPassthrough:    blockerPCIPassthrough,
		pitfallFaultTolerance: blockerFaultTolerance,
	} {
		vm := pitfallVM(t, name)
		if len(vm.SnapshotBlockers) != 1 || vm.SnapshotBlockers[want] != 1 || vm.BackupConsistency != consistencyNone {
			t.Errorf("%s: blockers %v, consistency %s; want %s once, none", name, vm.SnapshotBlockers, vm.BackupConsistency, want)
		}
		if len(vm.ForeignDisks) != 0 {
			t.Errorf("%s: foreign disks %+v", name, vm.ForeignDisks)
		}
	}
	if vm := pitfallVM(t, pitfallPhantom); vm.PhantomSnapshotDisks != 1 || vm.SnapshotCount != 0 || vm.ConsolidationNeeded {
		t.Errorf("phantom: %d disks on a delta, %d snapshots, consolidation %v", vm.PhantomSnapshotDisks, vm.SnapshotCount, vm.ConsolidationNeeded)
	}
	if vm := pitfallVM(t, pitfallNoCurrent); !vm.SnapshotCurrentMissing || vm.SnapshotCount != 1 || vm.Snapshots[0].IsCurrent {
		t.Errorf("no current: %+v", vm.DeviceFacts)
	}
	if vm := pitfallVM(t, pitfallCBTInactive); !vm.CBTEnabled || vm.CBTInactiveDisks != 1 {
		t.Errorf("CBT inactive: CBT %v, %d disks without a change id", vm.CBTEnabled, vm.CBTInactiveDisks)
	}
	if vm := pitfallVM(t, pitfallQuestion); !strings.HasPrefix(vm.Question, "There is no more space for virtual disk") {
		t.Errorf("question %q", vm.Question)
	}
	if vm := pitfallVM(t, pitfallInaccessible); vm.ConnectionState != "inaccessible" {
		t.Errorf("connection state %q", vm.ConnectionState)
	}
	for _, name := range []string{"DC0_C0_RP0_VM5", pitfallCBTHealthy, pitfallProxyOwner} {
		vm := pitfallVM(t, name)
		d := vm.DeviceFacts
		if len(d.DisksNotSnapshotted)+len(d.ForeignDisks)+len(d.SnapshotBlockers)+d.PhantomSnapshotDisks+d.CBTInactiveDisks != 0 ||
			d.SnapshotCurrentMissing || d.Question != "" || d.ConnectionState != "connected" {
			t.Errorf("%s is not healthy: %+v", name, d)
		}
	}
	if !pitfallVM(t, pitfallCBTHealthy).CBTEnabled {
		t.Error("the healthy CBT VM has CBT off")
	}
}

func TestChangeIDOfIsStableAndShapedAsVCentersOnes(t *testing.T) {
	a, b := changeIDOf("[LocalDS_0] vm/vm.vmdk"), changeIDOf("[LocalDS_0] vm/vm.vmdk")
	if a != b || a == changeIDOf("[LocalDS_0] vm/vm_1.vmdk") {
		t.Fatalf("change ids %q %q", a, b)
	}
	if len(a) < 48 || a[23] != '-' || !strings.Contains(a, "/") {
		t.Errorf("change id %q not shaped as \"52 9c … 5e/7\"", a)
	}
}

func TestDatastoreDirOfADiskPath(t *testing.T) {
	for in, want := range map[string]string{
		"[LocalDS_0] vm/vm_1.vmdk": "[LocalDS_0] vm",
		"[LocalDS_0] vm/vm.vmx":    "[LocalDS_0] vm",
		"no datastore":             "",
	} {
		if got := datastoreDir(in); got != want {
			t.Errorf("datastoreDir(%q) = %q, want %q", in, got, want)
		}
	}
}
