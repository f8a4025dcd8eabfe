package main

// Tests of the PerformanceManager wrapper (perf.go) and the host states (hosts.go). Those on the
// default catalogue use the shared scale server; the hosts scenario with shifted ids, a dropped
// counter and a metric limit of 10 runs in a process of its own (the catalogue and the registry
// are package globals), like the /_control tests.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// hostsProcessEnv set makes TestMain build the hosts scenario and run the TestHosts* tests.
const hostsProcessEnv = "VCSIM_HOSTS_TEST_PROCESS"

var (
	hostsSim *simulation
	hostsSrv *server
)

var hostsPerf = perfOptions{counterShift: 1000, dropCounter: "net.droppedRx.summation", maxQueryMetrics: 10}

func runHostsTests(m *testing.M) int {
	sim, err := buildScenario(options{scenario: "hosts", now: "2026-11-25T12:00:00Z", perf: hostsPerf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hosts scenario:", err)
		return 1
	}
	defer sim.model.Remove()
	srv, err := startServer(sim, serverConfig{listen: "127.0.0.1:0", tls: true, username: "user", password: "pass", requireSession: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	defer srv.close()
	hostsSim, hostsSrv = sim, srv
	return m.Run()
}

func TestHostsScenarioRunsInAProcessOfItsOwn(t *testing.T) {
	if hostsSrv != nil {
		t.Skip("already in the hosts process")
	}
	runInAProcessOfTheirOwn(t, "TestHosts", hostsProcessEnv, 3*time.Minute, 4)
}

// inHostsProcess skips the test outside the hosts process; inside, it returns a client logged
// in to the hosts scenario (logged out when the test ends) and a 30 s context.
func inHostsProcess(t *testing.T) (*vim25.Client, context.Context) {
	t.Helper()
	if hostsSrv == nil {
		t.Skip("runs in the hosts process (TestHostsScenarioRunsInAProcessOfItsOwn)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, sm := loginTo(ctx, t, hostsSrv)
	t.Cleanup(func() { _ = sm.Logout(ctx) })
	return c, ctx
}

// counterIDs reads perfCounter over the network: group.name.rollup → key.
func counterIDs(ctx context.Context, t *testing.T, c *vim25.Client) map[string]int32 {
	t.Helper()
	var pm mo.PerformanceManager
	if err := property.DefaultCollector(c).RetrieveOne(ctx, *c.ServiceContent.PerfManager, []string{"perfCounter"}, &pm); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int32{}
	for _, pc := range pm.PerfCounter {
		ids[counterName(pc)] = pc.Key
	}
	return ids
}

func availableMetrics(ctx context.Context, t *testing.T, c *vim25.Client, host types.ManagedObjectReference) []types.PerfMetricId {
	t.Helper()
	res, err := methods.QueryAvailablePerfMetric(ctx, c, &types.QueryAvailablePerfMetric{
		This: *c.ServiceContent.PerfManager, Entity: host, IntervalId: realtimeInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Returnval
}

func queryPerf(ctx context.Context, c *vim25.Client, specs ...types.PerfQuerySpec) ([]*types.PerfEntityMetric, error) {
	res, err := methods.QueryPerf(ctx, c, &types.QueryPerf{This: *c.ServiceContent.PerfManager, QuerySpec: specs})
	if err != nil {
		return nil, err
	}
	out := make([]*types.PerfEntityMetric, len(res.Returnval))
	for i, r := range res.Returnval {
		out[i] = r.(*types.PerfEntityMetric)
	}
	return out, nil
}

func fetchJSON(t *testing.T, srv *server, path string, v interface{}) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.caPool()}}}
	res, err := client.Get(strings.TrimSuffix(srv.url, "/sdk") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func perfStatsOf(t *testing.T, srv *server) perfStats {
	t.Helper()
	var body struct {
		Perf *perfStats `json:"perf"`
	}
	fetchJSON(t, srv, "/_stats", &body)
	if body.Perf == nil {
		t.Fatal("/_stats has no perf section")
	}
	return *body.Perf
}

func hostFactsNamed(t *testing.T, f *Facts, name string) HostFacts {
	t.Helper()
	for _, h := range f.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %s in the facts", name)
	return HostFacts{}
}

// A host's available metrics carry one datastore instance per mounted datastore (its volume id,
// as in summary.url), the catalogue's NICs and adapters, and no unexpanded placeholders.
func TestAvailableMetricsOfAHostNameItsDatastoresNICsAndAdapters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	h := scale.facts.Hosts[0]
	ids := counterIDs(ctx, t, c)
	instances := map[string]map[string]bool{}
	for _, m := range availableMetrics(ctx, t, c, types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}) {
		if strings.HasPrefix(m.Instance, "$") {
			t.Errorf("unexpanded instance %q", m.Instance)
		}
		for name, id := range ids {
			if id == m.CounterId {
				if instances[name] == nil {
					instances[name] = map[string]bool{}
				}
				instances[name][m.Instance] = true
			}
		}
	}
	if len(h.Datastores) == 0 {
		t.Fatal("host facts list no datastore")
	}
	for _, ds := range h.Datastores {
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(ds.Instance) {
			t.Errorf("datastore %s instance %q is not a VMFS volume id", ds.Name, ds.Instance)
		}
		if !instances["datastore.totalReadLatency.average"][ds.Instance] {
			t.Errorf("datastore.totalReadLatency.average has no instance %s: %v", ds.Instance, instances["datastore.totalReadLatency.average"])
		}
	}
	for _, nic := range h.NICs {
		if !instances["net.bytesRx.average"][nic] {
			t.Errorf("net.bytesRx.average has no instance %s", nic)
		}
	}
	for _, a := range h.StorageAdapters {
		if !instances["storageAdapter.totalWriteLatency.average"][a] {
			t.Errorf("storageAdapter.totalWriteLatency.average has no instance %s", a)
		}
	}
	if len(h.NICs) == 0 || len(h.StorageAdapters) == 0 {
		t.Errorf("facts: nics %v adapters %v", h.NICs, h.StorageAdapters)
	}
	if !instances["disk.read.average"][""] || !instances["cpu.usage.average"][""] {
		t.Error("the host aggregates (instance \"\") are missing")
	}
}

// QueryPerf answers on the 20 s grid, oldest first, after startTime, at most maxSample samples;
// asked twice it gives the same values, and /_perf/served holds exactly what went out.
func TestQueryPerfServesTheRealtimeGridRepeatablyAndRecordsTheRawValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	h := scale.facts.Hosts[1]
	ids := counterIDs(ctx, t, c)
	host := types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}
	// The realtime grid follows the wall clock: two queries that straddle a step, or a clock
	// stepped between them, see different windows. The pair is asked again, from a start
	// read anew, until both answers cover the same samples.
	var start time.Time
	var first, second []*types.PerfEntityMetric
	for try := 1; ; try++ {
		start = time.Now().Add(-70 * time.Second)
		spec := types.PerfQuerySpec{
			Entity: host, StartTime: &start, MaxSample: 3, IntervalId: realtimeInterval,
			MetricId: []types.PerfMetricId{
				{CounterId: ids["disk.read.average"]},
				{CounterId: ids["datastore.totalWriteLatency.average"], Instance: h.Datastores[0].Instance},
				{CounterId: ids["net.bytesTx.average"], Instance: "vmnic99"}, // not on the host: left out
			},
		}
		var err error
		if first, err = queryPerf(ctx, c, spec); err != nil {
			t.Fatal(err)
		}
		if second, err = queryPerf(ctx, c, spec); err != nil {
			t.Fatal(err)
		}
		if sampleTimesOf(first[0]) == sampleTimesOf(second[0]) {
			break
		}
		if try == 3 {
			t.Fatalf("three pairs of queries saw different windows, the last %s then %s", sampleTimesOf(first[0]), sampleTimesOf(second[0]))
		}
	}
	m := first[0]
	if len(m.SampleInfo) != 3 || len(m.Value) != 2 {
		t.Fatalf("%d samples and %d series, want 3 and 2", len(m.SampleInfo), len(m.Value))
	}
	for i, s := range m.SampleInfo {
		if s.Timestamp.Unix()%realtimeInterval != 0 || s.Interval != realtimeInterval || !s.Timestamp.After(start) {
			t.Errorf("sample %d: %v interval %d", i, s.Timestamp, s.Interval)
		}
		if i > 0 && s.Timestamp.Unix()-m.SampleInfo[i-1].Timestamp.Unix() != realtimeInterval {
			t.Errorf("samples not 20 s apart in ascending order: %v", m.SampleInfo)
		}
	}
	for j, s := range m.Value {
		got := s.(*types.PerfMetricIntSeries)
		again := second[0].Value[j].(*types.PerfMetricIntSeries)
		if fmt.Sprint(got.Value) != fmt.Sprint(again.Value) {
			t.Errorf("series %v: %v then %v", got.Id, got.Value, again.Value)
		}
	}
	// The record holds each answer as it went out, in order: the last two of the host are the
	// pair just asked.
	served := servedOf(t, scaleSrv, h.ID)
	if n := len(served.Answers); n < 2 {
		t.Fatalf("%d answers recorded for %s, want at least 2", n, h.ID)
	}
	last := served.Answers[len(served.Answers)-2:]
	if last[0].Request >= last[1].Request || last[0].StartTime == nil || *last[0].StartTime != start.Unix() || last[0].MaxSample != 3 {
		t.Errorf("recorded requests %d, %d with start %v maxSample %d, want ascending, start %d, 3", last[0].Request, last[1].Request, last[0].StartTime, last[0].MaxSample, start.Unix())
	}
	names := map[int32]string{}
	for name, id := range ids {
		names[id] = name
	}
	for i, answer := range []*types.PerfEntityMetric{first[0], second[0]} {
		if want, got := recordOf(answer, names), last[i]; fmt.Sprint(want.Timestamps, want.Series) != fmt.Sprint(got.Timestamps, got.Series) {
			t.Errorf("answer %d recorded as %v %v, went out as %v %v", i, got.Timestamps, got.Series, want.Timestamps, want.Series)
		}
	}
}

// servedDoc is GET /_perf/served.
type servedDoc struct {
	Answers   []servedAnswer              `json:"answers"`
	Dropped   int64                       `json:"dropped"`
	Available map[string][]servedMetricID `json:"available"`
}

func servedOf(t *testing.T, srv *server, entity string) servedDoc {
	t.Helper()
	var doc servedDoc
	fetchJSON(t, srv, "/_perf/served?entity="+entity, &doc)
	return doc
}

// recordOf is an answer as /_perf/served should hold it (names: counter id → group.name.rollup).
func recordOf(m *types.PerfEntityMetric, names map[int32]string) servedAnswer {
	a := servedAnswer{Entity: m.Entity.Value, Series: []servedSeries{}}
	for _, s := range m.SampleInfo {
		a.Timestamps = append(a.Timestamps, s.Timestamp.Unix())
	}
	for _, v := range m.Value {
		s := v.(*types.PerfMetricIntSeries)
		a.Series = append(a.Series, servedSeries{Counter: names[s.Id.CounterId], Instance: s.Id.Instance, Values: s.Value})
	}
	return a
}

// sampleTimesOf is an answer's sample times, for comparing two answers' windows.
func sampleTimesOf(m *types.PerfEntityMetric) string {
	times := make([]int64, len(m.SampleInfo))
	for i, s := range m.SampleInfo {
		times[i] = s.Timestamp.Unix()
	}
	return fmt.Sprint(times)
}

// As in govmomi's simulator, a spec without maxSample gets no samples.
func TestQueryPerfWithoutMaxSampleReturnsNoSamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	ids := counterIDs(ctx, t, c)
	got, err := queryPerf(ctx, c, types.PerfQuerySpec{
		Entity:     types.ManagedObjectReference{Type: "HostSystem", Value: scale.facts.Hosts[0].ID},
		IntervalId: realtimeInterval, MetricId: []types.PerfMetricId{{CounterId: ids["cpu.usage.average"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].SampleInfo) != 0 || len(got[0].Value) != 0 {
		t.Errorf("without maxSample: %d samples, %d series", len(got[0].SampleInfo), len(got[0].Value))
	}
}

// Without the setting, 64 metrics pass and 65 are refused with vCenter's fault; /_stats counts
// requests, the largest request and the refusals.
func TestQueryPerfOverTheDefaultLimitIsRefusedAndCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, sm := login(ctx, t)
	defer func() { _ = sm.Logout(ctx) }()
	ids := counterIDs(ctx, t, c)
	before := perfStatsOf(t, scaleSrv)
	spec := func(host HostFacts, n int) types.PerfQuerySpec {
		s := types.PerfQuerySpec{Entity: types.ManagedObjectReference{Type: "HostSystem", Value: host.ID}, MaxSample: 1, IntervalId: realtimeInterval}
		for i := 0; i < n; i++ {
			s.MetricId = append(s.MetricId, types.PerfMetricId{CounterId: ids["cpu.usage.average"], Instance: fmt.Sprint(i)})
		}
		return s
	}
	if _, err := queryPerf(ctx, c, spec(scale.facts.Hosts[0], 40), spec(scale.facts.Hosts[1], 24)); err != nil {
		t.Fatalf("64 metrics: %v", err)
	}
	_, err := queryPerf(ctx, c, spec(scale.facts.Hosts[0], 40), spec(scale.facts.Hosts[1], 25))
	if !isInvalidArgument(err, "querySpec.size") {
		t.Fatalf("65 metrics: want InvalidArgument querySpec.size, got %v", err)
	}
	after := perfStatsOf(t, scaleSrv)
	if after.QueryPerfRequests-before.QueryPerfRequests != 2 || after.OverLimit-before.OverLimit != 1 ||
		after.MaxMetricsPerRequest < 65 || after.Limit != 64 {
		t.Errorf("stats before %+v after %+v", before, after)
	}
}

func isInvalidArgument(err error, property string) bool {
	if err == nil || !soap.IsSoapFault(err) {
		return false
	}
	f, ok := soap.ToSoapFault(err).VimFault().(types.InvalidArgument)
	return ok && f.InvalidProperty == property
}

// Counter ids are shifted by 1000 and net.droppedRx.summation is gone, in perfCounter as in the
// facts and in the host's available metrics.
func TestHostsCounterIDsAreShiftedAndOneCounterIsDropped(t *testing.T) {
	c, ctx := inHostsProcess(t)
	ids := counterIDs(ctx, t, c)
	if ids["disk.read.average"] != 1130 || ids["cpu.usage.average"] != 1002 {
		t.Errorf("disk.read.average %d cpu.usage.average %d, want 1130 and 1002", ids["disk.read.average"], ids["cpu.usage.average"])
	}
	if _, ok := ids["net.droppedRx.summation"]; ok {
		t.Error("net.droppedRx.summation is still served")
	}
	if fmt.Sprint(ids) != fmt.Sprint(hostsSim.facts.Perf.CounterIDs) {
		t.Error("facts counter_ids differ from the served perfCounter")
	}
	h := hostFactsNamed(t, hostsSim.facts, "DC0_C0_H0")
	for _, m := range availableMetrics(ctx, t, c, types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}) {
		if m.CounterId < 1000 {
			t.Fatalf("available metric with an unshifted id: %+v", m)
		}
	}
}

// The hosts are in the states the facts give, and summary.url of each datastore ends in the
// instance id the facts give.
func TestHostsStatesAndDatastoreURLsAreServed(t *testing.T) {
	c, ctx := inHostsProcess(t)
	pc := property.DefaultCollector(c)
	states := map[string]int{}
	for _, f := range hostsSim.facts.Hosts {
		var h mo.HostSystem
		ref := types.ManagedObjectReference{Type: "HostSystem", Value: f.ID}
		if err := pc.RetrieveOne(ctx, ref, []string{"name", "runtime", "summary.config.product", "datastore"}, &h); err != nil {
			t.Fatal(err)
		}
		states[string(h.Runtime.ConnectionState)]++
		if string(h.Runtime.ConnectionState) != f.ConnectionState || h.Runtime.InMaintenanceMode != f.InMaintenance {
			t.Errorf("%s: served %s maintenance %v, facts %s %v", f.Name, h.Runtime.ConnectionState, h.Runtime.InMaintenanceMode, f.ConnectionState, f.InMaintenance)
		}
		if p := h.Summary.Config.Product; p == nil || p.Version != f.Version || p.Build != f.Build {
			t.Errorf("%s: product %+v, facts %s %s", f.Name, p, f.Version, f.Build)
		}
		if len(h.Datastore) != 2 || len(f.Datastores) != 2 {
			t.Fatalf("%s: %d datastores served, %d in the facts, want 2", f.Name, len(h.Datastore), len(f.Datastores))
		}
		for i, ref := range h.Datastore {
			var ds mo.Datastore
			if err := pc.RetrieveOne(ctx, ref, []string{"name", "summary.url"}, &ds); err != nil {
				t.Fatal(err)
			}
			want := f.Datastores[0]
			if ds.Name == f.Datastores[1].Name {
				want = f.Datastores[1]
			}
			if ds.Name != want.Name || ds.Summary.Url != "ds:///vmfs/volumes/"+want.Instance+"/" {
				t.Errorf("%s datastore %d: %s %s, facts %+v", f.Name, i, ds.Name, ds.Summary.Url, want)
			}
		}
	}
	if states["connected"] != 4 || states["disconnected"] != 1 || states["notResponding"] != 1 {
		t.Errorf("connection states %v", states)
	}
}

// With maxQueryMetrics set to 10: QueryOptions tells it, 10 metrics pass, 11 are refused.
func TestHostsMaxQueryMetricsSettingIsServedAndEnforced(t *testing.T) {
	c, ctx := inHostsProcess(t)
	res, err := methods.QueryOptions(ctx, c, &types.QueryOptions{This: *c.ServiceContent.Setting, Name: maxQueryMetricsKey})
	if err != nil || len(res.Returnval) != 1 || fmt.Sprint(res.Returnval[0].GetOptionValue().Value) != "10" {
		t.Fatalf("QueryOptions: %v %+v", err, res)
	}
	ids := counterIDs(ctx, t, c)
	h := hostFactsNamed(t, hostsSim.facts, "DC0_C0_H0")
	spec := types.PerfQuerySpec{Entity: types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}, MaxSample: 1, IntervalId: realtimeInterval}
	for i := 0; i < 10; i++ {
		spec.MetricId = append(spec.MetricId, types.PerfMetricId{CounterId: ids["cpu.usage.average"], Instance: fmt.Sprint(i)})
	}
	if _, err := queryPerf(ctx, c, spec); err != nil {
		t.Fatalf("10 metrics: %v", err)
	}
	spec.MetricId = append(spec.MetricId, types.PerfMetricId{CounterId: ids["cpu.usage.average"]})
	if _, err := queryPerf(ctx, c, spec); !isInvalidArgument(err, "querySpec.size") {
		t.Fatalf("11 metrics: %v", err)
	}
}

// A host that is not connected has no available metrics and gets no samples, and the asking is
// counted; a host in maintenance still answers.
func TestHostsUnconnectedHostsAnswerNothingAndAreCounted(t *testing.T) {
	c, ctx := inHostsProcess(t)
	ids := counterIDs(ctx, t, c)
	before := perfStatsOf(t, hostsSrv)
	for _, name := range []string{"DC0_C0_H2", "DC0_C0_H3", "DC0_C0_H4"} {
		h := hostFactsNamed(t, hostsSim.facts, name)
		ref := types.ManagedObjectReference{Type: "HostSystem", Value: h.ID}
		available := availableMetrics(ctx, t, c, ref)
		got, err := queryPerf(ctx, c, types.PerfQuerySpec{Entity: ref, MaxSample: 2, IntervalId: realtimeInterval,
			MetricId: []types.PerfMetricId{{CounterId: ids["disk.read.average"]}}})
		if err != nil {
			t.Fatal(err)
		}
		connected := h.ConnectionState == "connected"
		if (len(available) > 0) != connected || (len(got[0].Value) > 0) != connected {
			t.Errorf("%s (%s): %d available metrics, %d series", name, h.ConnectionState, len(available), len(got[0].Value))
		}
	}
	if n := perfStatsOf(t, hostsSrv).UnconnectedHostSpecs - before.UnconnectedHostSpecs; n != 2 {
		t.Errorf("unconnected host specs counted %d, want 2", n)
	}
}

// The scale scenario spreads maintenance and disconnected hosts evenly, each on a host of its own.
func TestSpreadHostStatesCoversTheAskedNumberOfHosts(t *testing.T) {
	var pools []*pool
	for p := 0; p < 10; p++ {
		pl := &pool{}
		for h := 0; h < 50; h++ {
			pl.hosts = append(pl.hosts, host{name: fmt.Sprintf("P%d_H%d", p, h)})
		}
		pools = append(pools, pl)
	}
	states := spreadHostStates(pools, 5, 25)
	if collide := spreadHostStates(pools[:1], 25, 25); len(collide) != 50 {
		t.Errorf("25 + 25 of 50 hosts: %d hosts changed", len(collide))
	}
	maintenance, disconnected := 0, 0
	for _, s := range states {
		if s.maintenance {
			maintenance++
		}
		if s.connection == types.HostSystemConnectionStateDisconnected {
			disconnected++
		}
	}
	if maintenance != 5 || disconnected != 25 || len(states) != 30 {
		t.Errorf("maintenance %d disconnected %d hosts %d", maintenance, disconnected, len(states))
	}
}

// The wrapper's series carry one value per sample, zeros included, as vCenter sends them; the
// simulator's own type loses every 0 on the wire (omitempty per slice element), which is what
// -perf-wrapper=false serves and /_perf/served records.
func TestPerfSeriesZerosGoOnTheWireOnlyThroughTheWrappersType(t *testing.T) {
	id := types.PerfMetricSeries{Id: types.PerfMetricId{CounterId: 2}}
	encode := func(s types.BasePerfMetricSeries) []int64 {
		t.Helper()
		in := types.PerfEntityMetric{Value: []types.BasePerfMetricSeries{s}}
		out, err := xml.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `type="PerfMetricIntSeries"`) {
			t.Errorf("no xsi:type PerfMetricIntSeries in %s", out)
		}
		var back types.PerfEntityMetric
		dec := xml.NewDecoder(strings.NewReader(string(out)))
		dec.TypeFunc = types.TypeFunc()
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		return back.Value[0].(*types.PerfMetricIntSeries).Value
	}
	if got := encode(&PerfMetricIntSeries{PerfMetricSeries: id, Value: []int64{0, 5, 0}}); fmt.Sprint(got) != "[0 5 0]" {
		t.Errorf("wrapper's series decoded as %v, want [0 5 0]", got)
	}
	if got := encode(&types.PerfMetricIntSeries{PerfMetricSeries: id, Value: []int64{0, 5, 0}}); fmt.Sprint(got) != "[5]" {
		t.Errorf("the simulator's series decoded as %v; withoutZeros assumes [5]", got)
	}
	if got := withoutZeros([]int64{0, 5, 0}); fmt.Sprint(got) != "[5]" {
		t.Errorf("withoutZeros: %v", got)
	}
}
