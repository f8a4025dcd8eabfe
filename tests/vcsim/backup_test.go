package main

// The backup scenario runs in a process of its own (the simulator's registry is global), with a
// fixed "now"; TestBackupScenarioRunsInAProcessOfTheirOwn starts it. Each test reads the served
// simulator over the network, as the exporter does, and compares with the facts.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// backupProcessEnv set makes TestMain build the backup scenario and run the TestBackupScenario* tests.
const backupProcessEnv = "VCSIM_BACKUP_TEST_PROCESS"

const backupNow = "2026-11-25T12:00:00Z"

var (
	backupSim *simulation
	backupSrv *server
)

func runBackupTests(m *testing.M) int {
	sim, err := buildScenario(options{scenario: "backup", now: backupNow})
	if err != nil {
		fmt.Fprintln(os.Stderr, "backup scenario:", err)
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
	backupSim, backupSrv = sim, srv
	return m.Run()
}

func TestBackupScenarioRunsInAProcessOfItsOwn(t *testing.T) {
	if backupSrv != nil {
		t.Skip("already in the backup process")
	}
	runInAProcessOfTheirOwn(t, "TestBackupScenario", backupProcessEnv, 2*time.Minute, 6)
}

func inBackupProcess(t *testing.T) (*vim25.Client, context.Context) {
	t.Helper()
	if backupSrv == nil {
		t.Skip("runs in the backup process (TestBackupScenarioRunsInAProcessOfItsOwn)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, _ := loginTo(ctx, t, backupSrv)
	return c, ctx
}

func backupVM(t *testing.T, name string) VMFacts {
	t.Helper()
	for _, vm := range backupSim.facts.VMs {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("backup scenario has no VM %s", name)
	return VMFacts{}
}

func TestBackupScenarioFactsMatchWhatThePropertyCollectorReturns(t *testing.T) {
	_, ctx := inBackupProcess(t)
	if err := verifyServer(ctx, backupSrv.url, backupSrv.caPool(), backupSim.facts, nil); err != nil {
		t.Fatal(err)
	}
}

// Every situation the backup checks report is there, with the expected outcome.
func TestBackupScenarioHasEverySituation(t *testing.T) {
	inBackupProcess(t)
	f := backupSim.facts
	var hostsWithTwo, datastoresWithTwo, zeroHosts, zeroDatastores int
	for _, h := range f.Hosts {
		switch h.BackupSnapshots {
		case 2:
			hostsWithTwo++
		case 0:
			zeroHosts++
		}
	}
	for _, d := range f.Datastores {
		switch d.BackupSnapshots {
		case 2:
			datastoresWithTwo++
		case 0:
			zeroDatastores++
		}
	}
	if hostsWithTwo != 1 || datastoresWithTwo != 1 || zeroHosts == 0 || zeroDatastores == 0 {
		t.Errorf("want one host and one datastore with two backup snapshots and others with none: %+v %+v", f.Hosts, f.Datastores)
	}
	seen := map[string]bool{}
	for _, vm := range f.VMs {
		seen["consistency="+vm.BackupConsistency] = true
		seen[fmt.Sprintf("power=%s", vm.PowerState)] = true
		seen[fmt.Sprintf("windows=%v/uuid=%s", vm.Windows, vm.EnableUUID)] = true
		seen[fmt.Sprintf("cbt=%v", vm.CBTEnabled)] = true
		for _, b := range vm.LastBackup {
			seen[fmt.Sprintf("%s/error=%v", b.Source, b.ParseError)] = true
		}
		if vm.DiskChangedWithSnapshots > 0 {
			seen["disk grown under a snapshot"] = true
		}
		if vm.LastBackupFromEvents > 0 {
			seen["last backup from events"] = true
		}
		for _, d := range vm.SnapshotTaskDurations {
			if d.Operation == "remove" && d.Seconds > 1800 {
				seen["slow removal"] = true
			}
		}
		for _, s := range vm.Snapshots {
			if s.CreatedBy != "" {
				seen["creator matched"] = true
			}
		}
	}
	for _, want := range []string{
		"consistency=application", "consistency=filesystem", "consistency=crash", "power=poweredOff",
		"windows=true/uuid=TRUE", "windows=true/uuid=", "windows=true/uuid=FALSE", "windows=false/uuid=",
		"windows=false/uuid=TRUE",
		"cbt=true", "cbt=false", "veeam/error=false", "veeam/error=true", "netbackup/error=false",
		"netbackup/error=true", "rubrik/error=false", "generic/error=false", "disk grown under a snapshot", "creator matched",
		"cohesity/error=false", "vproxy/error=false", "spectrum_protect/error=false", "last backup from events", "slow removal",
	} {
		if !seen[want] {
			t.Errorf("no VM with %s", want)
		}
	}
	if vm := backupVM(t, "DC0_C0_RP0_VM1"); vm.DiskChangedWithSnapshots != 1 || vm.ReconfiguredWithSnapshots != 2 || vm.DiskCapacityBytes != 60*giB {
		t.Errorf("grown disk: changed %d, reconfigured %d, capacity %d; want 1, 2, 60 GiB", vm.DiskChangedWithSnapshots, vm.ReconfiguredWithSnapshots, vm.DiskCapacityBytes)
	}
	if vm := backupVM(t, "DC0_H0_VM1"); vm.ReconfiguredWithSnapshots != 0 || vm.DiskCapacityBytes != 30*giB {
		t.Errorf("disk grown without snapshots: %+v", vm)
	}
	got := fmt.Sprint(f.SnapshotTaskEvents)
	if want := "[{consolidate error 2} {consolidate success 1} {create success 3} {remove error 1} {remove success 3}]"; got != want {
		t.Errorf("task counts %s, want %s (the event older than 24 h and the other EventEx not counted)", got, want)
	}
}

func TestBackupScenarioCustomFieldsAreDefinedAndSetThroughTheManager(t *testing.T) {
	c, ctx := inBackupProcess(t)
	var cfm mo.CustomFieldsManager
	if err := property.DefaultCollector(c).RetrieveOne(ctx, *c.ServiceContent.CustomFieldsManager, []string{"field"}, &cfm); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range cfm.Field {
		got = append(got, fmt.Sprintf("%d:%s:%s", f.Key, f.Name, f.ManagedObjectType))
	}
	var want []string
	for _, f := range backupSim.facts.CustomFields {
		want = append(want, fmt.Sprintf("%d:%s:%s", f.Key, f.Name, f.ManagedObjectType))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(want) != 9 {
		t.Errorf("fields %v, want %v", got, want)
	}
	vm := backupVM(t, "DC0_C0_RP0_VM0")
	var served mo.VirtualMachine
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}
	if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"customValue", "config.annotation"}, &served); err != nil {
		t.Fatal(err)
	}
	if len(served.CustomValue) != len(vm.CustomValues) || len(vm.CustomValues) != 4 {
		t.Errorf("%d custom values served, facts %d, want 4", len(served.CustomValue), len(vm.CustomValues))
	}
	if !strings.HasPrefix(served.Config.Annotation, "Veeam Backup: Job name: [Nightly], Time: [11/24/2026 09:47:00 AM]") {
		t.Errorf("notes %q", served.Config.Annotation)
	}
}

func TestBackupScenarioDatastoresHaveThePlannedSummaryAndExtents(t *testing.T) {
	c, ctx := inBackupProcess(t)
	var served []mo.Datastore
	var refs []types.ManagedObjectReference
	for _, d := range backupSim.facts.Datastores {
		refs = append(refs, types.ManagedObjectReference{Type: "Datastore", Value: d.ID})
	}
	if err := property.DefaultCollector(c).Retrieve(ctx, refs, []string{"name", "summary", "info"}, &served); err != nil {
		t.Fatal(err)
	}
	sort.Slice(served, func(i, j int) bool { return served[i].Name < served[j].Name })
	if len(served) != 3 {
		t.Fatalf("%d datastores served, want 3", len(served))
	}
	for i, want := range backupSim.facts.Datastores {
		got := served[i]
		extents := []string{}
		if vmfs, ok := got.Info.(*types.VmfsDatastoreInfo); ok {
			for _, e := range vmfs.Vmfs.Extent {
				extents = append(extents, e.DiskName)
			}
		}
		s := got.Summary
		if got.Name != want.Name || s.Type != want.Type || s.Capacity != want.CapacityBytes || s.FreeSpace != want.FreeBytes ||
			s.Uncommitted != want.UncommittedBytes || s.Accessible != want.Accessible || strings.Join(extents, ",") != strings.Join(want.ExtentDisks, ",") {
			t.Errorf("%s: served %+v extents %v, facts %+v", want.Name, s, extents, want)
		}
	}
}

// backupEventTypes is the exporter's event filter.
var backupEventTypes = []string{"TaskEvent", "VmReconfiguredEvent", "com.vmware.vc.VmDiskConsolidationNeeded",
	"com.vmware.vc.VmDiskConsolidatedEvent", "com.vmware.vc.VmDiskFailedToConsolidateEvent"}

// newEventCollector creates an event history collector as the exporter does, with a page of 1,000.
func newEventCollector(ctx context.Context, t *testing.T, c *vim25.Client) types.ManagedObjectReference {
	t.Helper()
	res, err := methods.CreateCollectorForEvents(ctx, c, &types.CreateCollectorForEvents{
		This: *c.ServiceContent.EventManager, Filter: types.EventFilterSpec{EventTypeId: backupEventTypes},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := methods.SetCollectorPageSize(ctx, c, &types.SetCollectorPageSize{This: res.Returnval, MaxCount: 1000}); err != nil {
		t.Fatal(err)
	}
	return res.Returnval
}

func latestPage(ctx context.Context, t *testing.T, c *vim25.Client, collector types.ManagedObjectReference) []types.BaseEvent {
	t.Helper()
	var h mo.EventHistoryCollector
	if err := property.DefaultCollector(c).RetrieveOne(ctx, collector, []string{"latestPage"}, &h); err != nil {
		t.Fatal(err)
	}
	return h.LatestPage
}

// An event collector over the network sees the planned events with their planned times and users,
// and the EventEx by their eventTypeId; the tasks of "queued" events end as planned.
func TestBackupScenarioEventCollectorSeesThePlannedHistory(t *testing.T) {
	c, ctx := inBackupProcess(t)
	page := latestPage(ctx, t, c, newEventCollector(ctx, t, c))
	now, _ := time.Parse(time.RFC3339, backupNow)
	var tasks, reconfigured, eventEx []string
	var queued []types.ManagedObjectReference
	for _, e := range page {
		base := e.GetEvent()
		at := now.Sub(base.CreatedTime).Round(time.Second)
		switch ev := e.(type) {
		case *types.TaskEvent:
			tasks = append(tasks, fmt.Sprintf("%s %s %s %s", base.Vm.Name, ev.Info.DescriptionId, ev.Info.State, base.UserName))
			if ev.Info.State == types.TaskInfoStateQueued {
				queued = append(queued, ev.Info.Task)
			}
		case *types.VmReconfiguredEvent:
			grows := len(ev.ConfigSpec.DeviceChange) > 0
			reconfigured = append(reconfigured, fmt.Sprintf("%s -%s grows=%v", base.Vm.Name, at, grows))
		case *types.EventEx:
			eventEx = append(eventEx, ev.EventTypeId)
		default:
			t.Errorf("collector returned %T", e)
		}
	}
	sort.Strings(tasks)
	sort.Strings(reconfigured)
	sort.Strings(eventEx)
	wantTasks := []string{
		`DC0_C0_RP0_VM0 VirtualMachine.createSnapshot queued VSPHERE.LOCAL\svc-veeam`,
		`DC0_C0_RP0_VM0 vm.Snapshot.remove success VSPHERE.LOCAL\svc-veeam`,
		`DC0_C0_RP0_VM1 VirtualMachine.createSnapshot success VSPHERE.LOCAL\Administrator`,
		`DC0_C0_RP0_VM2 VirtualMachine.createSnapshotEx success VSPHERE.LOCAL\svc-netbackup`,
		`DC0_C0_RP0_VM2 vm.Snapshot.remove queued VSPHERE.LOCAL\svc-netbackup`,
		`DC0_C0_RP0_VM2 vm.Snapshot.remove success vsphere.local\svc-netbackup`,
		`DC0_C0_RP0_VM3 VirtualMachine.consolidateDisks error VSPHERE.LOCAL\Administrator`,
		`DC0_H0_VM0 VirtualMachine.createSnapshot success VSPHERE.LOCAL\svc-netbackup`,
		`DC0_H0_VM0 VirtualMachine.removeAllSnapshots success VSPHERE.LOCAL\Administrator`,
	}
	if strings.Join(tasks, "\n") != strings.Join(wantTasks, "\n") {
		t.Errorf("task events:\n%s\nwant:\n%s", strings.Join(tasks, "\n"), strings.Join(wantTasks, "\n"))
	}
	wantReconfigured := []string{"DC0_C0_RP0_VM1 -3h0m0s grows=false", "DC0_C0_RP0_VM1 -4h0m0s grows=true",
		"DC0_C0_RP0_VM1 -6h0m0s grows=false", "DC0_H0_VM1 -7h0m0s grows=true"}
	if strings.Join(reconfigured, ",") != strings.Join(wantReconfigured, ",") {
		t.Errorf("reconfigurations %v, want %v", reconfigured, wantReconfigured)
	}
	wantEx := "com.vmware.vc.VmDiskConsolidatedEvent,com.vmware.vc.VmDiskConsolidationNeeded,com.vmware.vc.vm.VmStateRevertedToSnapshot"
	if strings.Join(eventEx, ",") != wantEx {
		t.Errorf("EventEx %v, want %s (every EventEx: the filter names some by id)", eventEx, wantEx)
	}
	var followed []mo.Task
	if err := property.DefaultCollector(c).Retrieve(ctx, queued, []string{"info"}, &followed); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, task := range followed {
		states = append(states, fmt.Sprintf("%s %s", task.Info.DescriptionId, task.Info.State))
	}
	sort.Strings(states)
	if got := strings.Join(states, ","); got != "VirtualMachine.createSnapshot success,vm.Snapshot.remove error" {
		t.Errorf("followed tasks ended %s", got)
	}
}

// POST /_control post_event reaches a WaitForUpdatesEx on the collector's latestPage.
func TestBackupScenarioPostedEventReachesLatestPageThroughWaitForUpdatesEx(t *testing.T) {
	c, ctx := inBackupProcess(t)
	collector := newEventCollector(ctx, t, c)
	pc := property.DefaultCollector(c)
	filter := types.CreateFilter{Spec: types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: collector}},
		PropSet:   []types.PropertySpec{{Type: "EventHistoryCollector", PathSet: []string{"latestPage"}}},
	}}
	if err := pc.CreateFilter(ctx, filter); err != nil {
		t.Fatal(err)
	}
	first, err := pc.WaitForUpdates(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	vm := backupVM(t, "DC0_C0_RP0_VM3")
	status, answer := backupControl(t, fmt.Sprintf(`{"op":"post_event","vm":%q,"task":"VirtualMachine.createSnapshot","fail":true,"user":"svc-test"}`, vm.ID))
	if status != 200 {
		t.Fatalf("post_event: %d %v", status, answer)
	}
	key := int32(answer["key"].(float64))
	update, err := pc.WaitForUpdates(ctx, first.Version)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fs := range update.FilterSet {
		for _, o := range fs.ObjectSet {
			for _, ch := range o.ChangeSet {
				events, _ := ch.Val.(types.ArrayOfEvent)
				for _, e := range events.Event {
					if te, ok := e.(*types.TaskEvent); ok && te.Key == key && te.UserName == "svc-test" &&
						te.Info.State == types.TaskInfoStateQueued && te.Info.DescriptionId == "VirtualMachine.createSnapshot" {
						found = true
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("event %d not in the latestPage update %+v", key, update)
	}
	var task mo.Task
	ref := types.ManagedObjectReference{Type: "Task", Value: answer["task"].(string)}
	if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &task); err != nil {
		t.Fatal(err)
	}
	if task.Info.State != types.TaskInfoStateError {
		t.Errorf("posted task ended %s, want error", task.Info.State)
	}
	if status, answer := backupControl(t, fmt.Sprintf(`{"op":"post_event","vm":%q,"task":"VirtualMachine.powerOn"}`, vm.ID)); status != 400 {
		t.Errorf("a task the checks do not count: %d %v, want 400", status, answer)
	}
}

func backupControl(t *testing.T, body string) (int, map[string]interface{}) {
	t.Helper()
	saved := controlSrv
	controlSrv = backupSrv
	defer func() { controlSrv = saved }()
	return controlCall(t, body)
}

func TestWithEventExAddsEventExOnlyWhenAFilterNamesOneByID(t *testing.T) {
	body := []byte(`<Filter><eventTypeId>TaskEvent</eventTypeId><eventTypeId>com.vmware.vc.VmDiskConsolidatedEvent</eventTypeId></Filter>`)
	want := `<Filter><eventTypeId>EventEx</eventTypeId><eventTypeId>TaskEvent</eventTypeId><eventTypeId>com.vmware.vc.VmDiskConsolidatedEvent</eventTypeId></Filter>`
	if got := string(withEventEx(body)); got != want {
		t.Errorf("got %s", got)
	}
	prefixed := []byte(`<v:eventTypeId>com.vmware.vc.X</v:eventTypeId>`)
	if got := string(withEventEx(prefixed)); got != `<v:eventTypeId>EventEx</v:eventTypeId><v:eventTypeId>com.vmware.vc.X</v:eventTypeId>` {
		t.Errorf("prefixed: got %s", got)
	}
	plain := []byte(`<eventTypeId>TaskEvent</eventTypeId>`)
	if got := string(withEventEx(plain)); got != string(plain) {
		t.Errorf("no dotted id: got %s", got)
	}
}

// Golden's VMs carry the backup inputs without any id changing (the golden output depends on them).
func TestGoldenHasBackupAttributesNotesAndEventsAtFixedTimes(t *testing.T) {
	if n := len(goldenFacts.CustomFields); n != 6 {
		t.Errorf("%d custom fields, want 6", n)
	}
	veeam := goldenVM(t, "DC0_C0_RP0_VM0")
	if veeam.ID != "vm-39" || veeam.BackupConsistency != "application" || len(veeam.LastBackup) != 1 ||
		veeam.LastBackup[0].TimestampSeconds != float64(time.Date(2026, 11, 22, 23, 15, 2, 0, time.UTC).Unix()) ||
		veeam.Snapshots[0].CreatedBy != userVeeam {
		t.Errorf("Veeam VM: %+v", veeam)
	}
	if vm := goldenVM(t, "DC0_C0_RP0_VM3"); len(vm.LastBackup) != 2 || !vm.LastBackup[0].ParseError || !vm.LastBackup[1].ParseError {
		t.Errorf("malformed values: %+v", vm.LastBackup)
	}
	if vm := goldenVM(t, "DC0_H0_VM1"); vm.BackupConsistency != "crash" || vm.EnableUUID != "FALSE" {
		t.Errorf("suspended Windows VM: %+v", vm)
	}
	if len(goldenFacts.Datastores) != 1 || goldenFacts.Datastores[0].BackupSnapshots != 1 || goldenFacts.EventWindowSeconds != 0 {
		t.Errorf("datastores %+v, window %v", goldenFacts.Datastores, goldenFacts.EventWindowSeconds)
	}
}
