package main

// The simulator's registry is a package global, so TestMain builds everything once, in order:
// the golden scenario twice (to compare), then the scale scenario that the server tests share.
// The /_control tests change their inventory, so they run in a process of their own with a
// small scale scenario (control_test.go).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

var (
	goldenRuns  [2][]byte // facts JSON of two golden builds
	goldenFacts *Facts
	reportFacts *Facts
	scale       *simulation
	scaleSrv    *server
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runInAProcessOfTheirOwn runs the tests whose names start with prefix in a child test process
// with env set (TestMain builds their scenario there instead of the golden ones), and fails t
// unless it exits cleanly with at least min of them passed.
func runInAProcessOfTheirOwn(t *testing.T, prefix, env string, timeout time.Duration, min int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+prefix, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s* tests: %v\n%s", prefix, err, out)
	}
	passed := regexp.MustCompile(`(?m)^\s*--- PASS: (`+prefix+`\S+)`).FindAllStringSubmatch(string(out), -1)
	if len(passed) < min {
		t.Fatalf("%d %s* tests passed, want at least %d:\n%s", len(passed), prefix, min, out)
	}
	names := make([]string, len(passed))
	for i, p := range passed {
		names[i] = p[1]
	}
	t.Logf("passed in their own process: %s", strings.Join(names, ", "))
}

func runTests(m *testing.M) int {
	log.SetOutput(quietSimulatorLog{os.Stderr})
	removeDatastoreDir, err := useDatastoreDir("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer removeDatastoreDir()
	if os.Getenv(controlProcessEnv) != "" {
		return runControlTests(m)
	}
	if os.Getenv(hostsProcessEnv) != "" {
		return runHostsTests(m)
	}
	if os.Getenv(backupProcessEnv) != "" {
		return runBackupTests(m)
	}
	if os.Getenv(pitfallsProcessEnv) != "" {
		return runPitfallsTests(m)
	}
	for i := range goldenRuns {
		sim, err := buildScenario(options{scenario: "golden"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "golden:", err)
			return 1
		}
		goldenFacts = sim.facts
		goldenRuns[i], _ = withoutDatastoreIDs(sim.facts).marshal()
		sim.model.Remove()
	}

	report, err := buildScenario(options{scenario: "report", now: "2026-11-25T12:00:00Z"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	reportFacts = report.facts
	report.model.Remove()

	opts := options{scenario: "scale", vms: 1000, snapshotVMs: 150, datacenters: 2, clusters: 2,
		hostsPerCluster: 4, standaloneHosts: 1, seed: 42, now: "2026-11-25T12:00:00Z"}
	if scale, err = buildScenario(opts); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	defer scale.model.Remove()
	scaleSrv, err = startServer(scale, serverConfig{listen: "127.0.0.1:0", tls: true, username: "user", password: "pass", requireSession: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	defer scaleSrv.close()
	scale.facts.URL, scale.facts.Username, scale.facts.Password = scaleSrv.url, "user", "pass"
	return m.Run()
}

// randomDatastoreID matches the one random part of a golden build: the simulator names a local
// datastore's managed object after the temporary directory it made for it.
var randomDatastoreID = regexp.MustCompile(`govcsim-([A-Za-z0-9_]+)-([A-Za-z0-9_]+)-[0-9]+@`)

func TestGoldenScenarioIsIdenticalOnEveryBuild(t *testing.T) {
	same := func(b []byte) string { return randomDatastoreID.ReplaceAllString(string(b), "govcsim-$1-$2-N@") }
	if same(goldenRuns[0]) != same(goldenRuns[1]) {
		t.Fatalf("two golden builds differ:\n%s\n---\n%s", goldenRuns[0], goldenRuns[1])
	}
}

// withoutDatastoreIDs is a copy of f without datastore ids (its own and its hosts'): the
// simulator makes a datastore's id from the path of its directory, which changes from run to run.
func withoutDatastoreIDs(f *Facts) *Facts {
	copied := *f
	copied.Datastores = append([]DatastoreFacts(nil), f.Datastores...)
	for i := range copied.Datastores {
		copied.Datastores[i].ID = "<varies>"
	}
	copied.Hosts = append([]HostFacts(nil), f.Hosts...)
	for i := range copied.Hosts {
		copied.Hosts[i].Datastores = append([]HostDatastoreFacts(nil), f.Hosts[i].Datastores...)
		for j := range copied.Hosts[i].Datastores {
			copied.Hosts[i].Datastores[j].ID = "<varies>"
		}
	}
	return &copied
}

func goldenVM(t *testing.T, name string) VMFacts {
	t.Helper()
	for _, vm := range goldenFacts.VMs {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("golden has no VM %s", name)
	return VMFacts{}
}

// The chain VM's sizes, by hand: a root owns only its .vmsn; a child owns the deltas its parent
// made (two disks: descriptor 384 B + extent each); the current one also owns the running deltas.
func TestGoldenChainSnapshotSizesFollowTheSizeRule(t *testing.T) {
	vm := goldenVM(t, "DC0_C0_RP0_VM1")
	want := []int64{
		32 * kiB,
		36*kiB + (512*miB + 384) + (256*miB + 384),
		40*kiB + (1*giB + 384) + (128*miB + 384) + (2*giB + 384) + (64*miB + 384),
	}
	if vm.SnapshotCount != 3 || vm.SnapshotChainDepth != 3 {
		t.Fatalf("count %d depth %d, want 3 and 3", vm.SnapshotCount, vm.SnapshotChainDepth)
	}
	var total int64
	for i, s := range vm.Snapshots {
		if s.SizeBytes != want[i] {
			t.Errorf("%s size %d, want %d", s.Name, s.SizeBytes, want[i])
		}
		total += want[i]
	}
	if !vm.Snapshots[2].IsCurrent || vm.Snapshots[2].ParentID != vm.Snapshots[1].ID || vm.Snapshots[1].ParentID != vm.Snapshots[0].ID {
		t.Errorf("want root -> child -> grandchild (current): %+v", vm.Snapshots)
	}
	if vm.SnapshotTotalSizeBytes != total {
		t.Errorf("total %d, want %d", vm.SnapshotTotalSizeBytes, total)
	}
}

func TestGoldenCoversTheCasesTheExporterReports(t *testing.T) {
	veeam := goldenVM(t, "DC0_C0_RP0_VM0")
	if len(veeam.Snapshots) != 1 || veeam.Snapshots[0].Name != veeamSnapshotName || !veeam.Snapshots[0].Quiesced ||
		veeam.Snapshots[0].CreateTimeSeconds != float64(goldenNow.Add(-3*day).Unix()) {
		t.Errorf("Veeam leftover: %+v", veeam.Snapshots)
	}
	branched := goldenVM(t, "DC0_C0_RP0_VM2")
	if branched.SnapshotCount != 3 || branched.SnapshotChainDepth != 2 || !branched.Snapshots[1].IsCurrent ||
		branched.Snapshots[2].MemorySizeBytes != 2*giB {
		t.Errorf("branched tree: %+v", branched)
	}
	if vm := goldenVM(t, "DC0_C0_RP0_VM3"); !vm.ConsolidationNeeded || vm.SnapshotCount != 0 {
		t.Errorf("consolidation VM: %+v", vm)
	}
	if vm := goldenVM(t, "DC0_H0_VM2"); !vm.Template || vm.ToolsVersionStatus2 != "" || vm.ClusterName != "" {
		t.Errorf("template: %+v", vm)
	}
	seen := map[string]bool{}
	for _, vm := range goldenFacts.VMs {
		seen[vm.ToolsVersionStatus2+"/"+vm.ToolsRunningStatus] = true
	}
	for _, want := range []string{"guestToolsCurrent/guestToolsRunning", "guestToolsNeedUpgrade/guestToolsRunning",
		"guestToolsNotInstalled/guestToolsNotRunning", "guestToolsUnmanaged/guestToolsRunning", "guestToolsCurrent/guestToolsNotRunning"} {
		if !seen[want] {
			t.Errorf("no golden VM with Tools %s", want)
		}
	}
}

func TestScaleHas1000VMsAndAtLeast300Snapshots(t *testing.T) {
	if len(scale.facts.VMs) != 1000 {
		t.Errorf("%d VMs, want 1000", len(scale.facts.VMs))
	}
	with := 0
	for _, vm := range scale.facts.VMs {
		if vm.SnapshotCount > 0 {
			with++
		}
		if vm.SnapshotChainDepth > 4 {
			t.Errorf("%s: depth %d > 4", vm.Name, vm.SnapshotChainDepth)
		}
	}
	if with != 150 {
		t.Errorf("%d VMs with snapshots, want 150", with)
	}
	if n := scale.facts.snapshotCount(); n < 300 {
		t.Errorf("%d snapshots, want >= 300", n)
	}
}

func TestScaleFactsMatchWhatThePropertyCollectorReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := verifyServer(ctx, scaleSrv.url, scaleSrv.caPool(), scale.facts, nil); err != nil {
		t.Fatal(err)
	}
}

func login(ctx context.Context, t *testing.T) (*vim25.Client, *session.Manager) {
	t.Helper()
	return loginTo(ctx, t, scaleSrv)
}

func loginTo(ctx context.Context, t *testing.T, srv *server) (*vim25.Client, *session.Manager) {
	t.Helper()
	c, err := newClient(ctx, srv.url, srv.caPool())
	if err != nil {
		t.Fatal(err)
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, url.UserPassword("user", "pass")); err != nil {
		t.Fatal(err)
	}
	return c, sm
}

var deltaName = regexp.MustCompile(`-\d{6}(-delta)?\.vmdk$`)

// The served layoutEx of a few VMs is the layout vSphere would show: every key resolves, every
// snapshot has one layout, chains start at the base disk, a snapshot's chains extend its
// parent's by exactly one delta per disk, and .vmsn and delta files are not empty.
func TestServedLayoutExIsConsistentForSnapshotVMs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	pc := property.DefaultCollector(c)

	checked := 0
	for _, want := range scale.facts.VMs {
		if want.SnapshotCount == 0 || checked == 25 {
			continue
		}
		checked++
		var vm mo.VirtualMachine
		ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: want.ID}
		if err := pc.RetrieveOne(ctx, ref, []string{"snapshot", "layoutEx", "config.hardware.device"}, &vm); err != nil {
			t.Fatal(err)
		}
		checkLayoutEx(t, want, vm)
		checkDiskBackings(t, want, vm)
	}
	if checked == 0 {
		t.Fatal("no VM with snapshots")
	}
}

func checkLayoutEx(t *testing.T, want VMFacts, vm mo.VirtualMachine) {
	t.Helper()
	files := map[int32]types.VirtualMachineFileLayoutExFileInfo{}
	for _, f := range vm.LayoutEx.File {
		files[f.Key] = f
	}
	chainOf := func(disks []types.VirtualMachineFileLayoutExDiskLayout) map[int32][]int32 {
		out := map[int32][]int32{}
		for _, d := range disks {
			for i, u := range d.Chain {
				if len(u.FileKey) != 2 {
					t.Errorf("%s disk %d: unit with %d files", want.Name, d.Key, len(u.FileKey))
				}
				for _, k := range u.FileKey {
					f, ok := files[k]
					if !ok {
						t.Errorf("%s: file key %d not in layoutEx.file", want.Name, k)
					}
					if i == 0 && deltaName.MatchString(f.Name) || i > 0 && (!deltaName.MatchString(f.Name) || f.Size == 0) {
						t.Errorf("%s disk %d unit %d: %s (%d bytes)", want.Name, d.Key, i, f.Name, f.Size)
					}
				}
				out[d.Key] = append(out[d.Key], u.FileKey[0])
			}
		}
		return out
	}
	layouts := map[string]map[int32][]int32{}
	for _, s := range vm.LayoutEx.Snapshot {
		if f := files[s.DataKey]; f.Type != "snapshotData" || f.Size == 0 {
			t.Errorf("%s %s: dataKey file %+v", want.Name, s.Key.Value, f)
		}
		layouts[s.Key.Value] = chainOf(s.Disk)
	}
	running := chainOf(vm.LayoutEx.Disk)
	for _, s := range want.Snapshots {
		chains, ok := layouts[s.ID]
		if !ok {
			t.Errorf("%s: no layout for snapshot %s", want.Name, s.ID)
			continue
		}
		parent := map[int32][]int32{}
		if s.ParentID != "" {
			parent = layouts[s.ParentID]
		}
		for disk, chain := range chains {
			if s.ParentID != "" && (len(chain) != len(parent[disk])+1 || !prefix(parent[disk], chain)) {
				t.Errorf("%s %s disk %d: chain %v does not extend parent's %v by one", want.Name, s.ID, disk, chain, parent[disk])
			}
			if s.IsCurrent && !prefix(chain, running[disk]) {
				t.Errorf("%s: running chain %v does not start with the current snapshot's %v", want.Name, running[disk], chain)
			}
		}
	}
	if len(layouts) != len(want.Snapshots) {
		t.Errorf("%s: %d snapshot layouts for %d snapshots", want.Name, len(layouts), len(want.Snapshots))
	}
}

// Each disk's backing is the newest delta of its running chain, its parents the rest down to the
// base disk, as vSphere shows a VM that runs on snapshots.
func checkDiskBackings(t *testing.T, want VMFacts, vm mo.VirtualMachine) {
	t.Helper()
	names := map[int32]string{}
	for _, f := range vm.LayoutEx.File {
		names[f.Key] = f.Name
	}
	chains := map[int32][]string{}
	for _, d := range vm.LayoutEx.Disk {
		for _, u := range d.Chain {
			chains[d.Key] = append(chains[d.Key], names[u.FileKey[0]])
		}
	}
	disks := 0
	for _, dev := range vm.Config.Hardware.Device {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		disks++
		var backing []string
		for b := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); b != nil; b = b.Parent {
			backing = append([]string{b.FileName}, backing...)
		}
		if strings.Join(backing, ",") != strings.Join(chains[disk.Key], ",") {
			t.Errorf("%s disk %d: backing chain %v, layoutEx chain %v", want.Name, disk.Key, backing, chains[disk.Key])
		}
	}
	if disks != len(vm.LayoutEx.Disk) {
		t.Errorf("%s: %d disks, %d disk layouts", want.Name, disks, len(vm.LayoutEx.Disk))
	}
}

func prefix(a, b []int32) bool {
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

func TestLoginRefusesWrongCredentials(t *testing.T) {
	ctx := context.Background()
	c, err := newClient(ctx, scaleSrv.url, scaleSrv.caPool())
	if err != nil {
		t.Fatal(err)
	}
	sm := session.NewManager(c)
	for _, u := range []*url.Userinfo{url.UserPassword("user", "wrong"), url.UserPassword("admin", "pass"), url.UserPassword("x", "y")} {
		if err := sm.Login(ctx, u); !isInvalidLogin(err) {
			t.Errorf("Login %s: want InvalidLogin, got %v", u.Username(), err)
		}
	}
	if err := sm.Login(ctx, url.UserPassword("user", "pass")); err != nil {
		t.Errorf("Login user/pass: %v", err)
	}
}

func fetchStats(t *testing.T) map[string]int64 {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: scaleSrv.caPool()}}}
	res, err := client.Get(strings.TrimSuffix(scaleSrv.url, "/sdk") + "/_stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Requests map[string]int64 `json:"requests"`
		Total    int64            `json:"requests_total"`
		Bytes    int64            `json:"response_bytes_total"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Total == 0 || body.Bytes == 0 {
		t.Errorf("stats totals: %+v", body)
	}
	return body.Requests
}

func TestStatsCountLoginCalls(t *testing.T) {
	before := fetchStats(t)["Login"]
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		_, sm := login(ctx, t)
		_ = sm.Logout(ctx)
	}
	if got := fetchStats(t)["Login"] - before; got != 2 {
		t.Errorf("Login counted %d times, want 2", got)
	}
}

func isNotAuthenticated(err error) bool {
	if !soap.IsSoapFault(err) {
		return false
	}
	_, ok := soap.ToSoapFault(err).VimFault().(types.NotAuthenticated)
	return ok
}

func TestRetrievePropertiesAfterSessionsExpireIsNotAuthenticated(t *testing.T) {
	ctx := context.Background()
	c, _ := login(ctx, t)
	pc := property.DefaultCollector(c)
	root := c.ServiceContent.RootFolder
	var folder mo.Folder
	if err := pc.RetrieveOne(ctx, root, []string{"name"}, &folder); err != nil {
		t.Fatalf("with a session: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: scaleSrv.caPool()}}}
	res, err := client.Post(strings.TrimSuffix(scaleSrv.url, "/sdk")+"/_sessions/expire", "", nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("expire: %v %v", err, res)
	}
	res.Body.Close()
	if err := pc.RetrieveOne(ctx, root, []string{"name"}, &folder); !isNotAuthenticated(err) {
		t.Fatalf("after expiry: want NotAuthenticated, got %v", err)
	}
}

func TestCertificateIsValidFor127001AndSignedByTheCertOutCA(t *testing.T) {
	block, _ := pem.Decode(scaleSrv.caPEM)
	if block == nil {
		t.Fatal("-cert-out content is not PEM")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v %+v", err, ca)
	}
	u, _ := url.Parse(scaleSrv.url)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: scaleSrv.caPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if leaf.IsCA || leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("localhost") != nil {
		t.Errorf("leaf: IsCA %v, names %v %v", leaf.IsCA, leaf.IPAddresses, leaf.DNSNames)
	}
}

// retrieveVMNames asks for every VM's name and layoutEx through a ContainerView, with options.maxObjects.
func retrieveVMNames(ctx context.Context, t *testing.T, c *vim25.Client, maxObjects int32) *types.RetrieveResult {
	t.Helper()
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := methods.RetrievePropertiesEx(ctx, c, &types.RetrievePropertiesEx{
		This: c.ServiceContent.PropertyCollector,
		SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
				SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
			PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: []string{"name", "layoutEx"}}},
		}},
		Options: types.RetrieveOptions{MaxObjects: maxObjects},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Returnval
}

func TestRetrievePropertiesExPagesAtMaxObjectsAndContinues(t *testing.T) {
	ctx := context.Background()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()

	page := retrieveVMNames(ctx, t, c, 300)
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		if len(page.Objects) > 300 {
			t.Fatalf("page %d has %d objects, maxObjects 300", pages, len(page.Objects))
		}
		for _, o := range page.Objects {
			var vm mo.VirtualMachine
			if err := mo.LoadObjectContent([]types.ObjectContent{o}, &vm); err != nil || vm.Name == "" || vm.LayoutEx == nil {
				t.Fatalf("page %d: %v %+v", pages, err, o)
			}
			seen[vm.Self.Value] = true
		}
		if page.Token == "" {
			if pages != 4 {
				t.Errorf("%d pages, want 4 (1000 VMs by 300)", pages)
			}
			break
		}
		res, err := methods.ContinueRetrievePropertiesEx(ctx, c, &types.ContinueRetrievePropertiesEx{
			This: c.ServiceContent.PropertyCollector, Token: page.Token})
		if err != nil {
			t.Fatalf("continue page %d: %v", pages+1, err)
		}
		page = &res.Returnval
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct VMs over the pages, want 1000", len(seen))
	}
}

func TestCancelledTokenCannotBeContinued(t *testing.T) {
	ctx := context.Background()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	page := retrieveVMNames(ctx, t, c, 10)
	if page.Token == "" {
		t.Fatal("no token for 1000 VMs with maxObjects 10")
	}
	pc := c.ServiceContent.PropertyCollector
	if _, err := methods.CancelRetrievePropertiesEx(ctx, c, &types.CancelRetrievePropertiesEx{This: pc, Token: page.Token}); err != nil {
		t.Fatal(err)
	}
	_, err := methods.ContinueRetrievePropertiesEx(ctx, c, &types.ContinueRetrievePropertiesEx{This: pc, Token: page.Token})
	if !soap.IsSoapFault(err) {
		t.Fatalf("continue after cancel: want a fault, got %v", err)
	}
	if _, ok := soap.ToSoapFault(err).VimFault().(types.InvalidArgument); !ok {
		t.Errorf("continue after cancel: want InvalidArgument, got %v", err)
	}
}

// The report scenario has one VM per risk the snapshot report sums up, and the hostile names.
func TestReportScenarioHasOneVMPerRiskAndHostileNames(t *testing.T) {
	now := time.Date(2026, time.November, 25, 12, 0, 0, 0, time.UTC)
	var leftover, old, consolidation, toolsNotCurrent, snapshots int
	names := map[string]bool{}
	for _, vm := range reportFacts.VMs {
		if vm.ConsolidationNeeded {
			consolidation++
		}
		if !vm.Template && vm.ToolsVersionStatus2 == toolsNeedUpgrade {
			toolsNotCurrent++
		}
		for _, s := range vm.Snapshots {
			snapshots++
			names[s.Name] = true
			age := now.Sub(time.Unix(int64(s.CreateTimeSeconds), 0))
			if age > 72*time.Hour {
				old++
			}
			if (s.Name == veeamSnapshotName || s.Name == "_VCB-BACKUP_") && age > 6*time.Hour {
				leftover++
			}
			if s.DatastoreName != datastoreName {
				t.Errorf("%s: datastore %q", s.Name, s.DatastoreName)
			}
		}
	}
	if leftover != 1 || old != 2 || consolidation != 1 || toolsNotCurrent != 1 || snapshots != 8 {
		t.Errorf("leftover %d, old %d, consolidation %d, Tools %d, snapshots %d: want 1, 2, 1, 1, 8",
			leftover, old, consolidation, toolsNotCurrent, snapshots)
	}
	if !names[hostileScriptName] || !names[hostileImageName] {
		t.Errorf("hostile names missing: %v", names)
	}
}
