// perf.go owns the PerformanceManager as the exporter's host I/O tests need it.
//
// Before a model is built, the simulator's counter catalogue (package vpx: perfCounter, the
// metric ids of each entity type, the sample data) can be edited: every counter id shifted, so
// ids differ from the defaults as they differ between real vCenters, and one counter dropped.
//
// After it is built, the simulator's PerformanceManager is replaced in the registry by a wrapper
// that answers QueryAvailablePerfMetric and QueryPerf for hosts the way vCenter does where the
// simulator does not: one datastore instance per mounted datastore (its URL's last path
// component, as vCenter names datastore instances by their volume UUID), samples on the 20 s
// grid in ascending time order, values that are a function of (host, counter name, instance,
// sample time) rather than noise, config.vpxd.stats.maxQueryMetrics enforced. It counts what it
// was asked (/_stats "perf") and records every QueryPerf answer as it went out, request by
// request, and the metrics QueryAvailablePerfMetric listed per host (GET /_perf/served), so a
// test compares the exporter's values with exactly the answers it received. Other entity types
// and intervals go to the simulator unchanged.
//
// With -perf-wrapper=false the wrapper answers nothing itself: every call goes to the
// simulator's PerformanceManager as it ships (newest sample first, off the grid, datastore
// instances as managed object ids, Gaussian noise, no metric limit, its one lock), and the
// wrapper only counts and records the answers, unchanged.
//
// Kept from the simulator on purpose: maxSample 0 returns no samples (vCenter would return the
// whole hour), and instance "*" is not expanded (it matches no instance, so it gets no series).
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/vpx"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	// realtimeInterval is the sampling period of real-time statistics, in seconds.
	realtimeInterval = 20
	// realtimeSamples is how many real-time samples vCenter keeps: one hour.
	realtimeSamples = 180
	// maxQueryMetricsKey is vCenter's advanced setting that limits the metrics of one QueryPerf.
	maxQueryMetricsKey = "config.vpxd.stats.maxQueryMetrics"
	// defaultMaxQueryMetrics is vCenter's limit when the setting is absent.
	defaultMaxQueryMetrics = 64
)

// perfOptions shape the counter catalogue and the query limit.
type perfOptions struct {
	counterShift    int32  // added to every counter id
	dropCounter     string // group.name.rollup of a counter to leave out of the catalogue
	maxQueryMetrics int    // 0: setting absent (64 applies); -1: no limit; else the setting
	// shipped leaves the simulator's PerformanceManager answering as it ships (-perf-wrapper=false):
	// the wrapper only counts and records.
	shipped bool
}

// limit is the number of metrics one QueryPerf may carry; 0 means no limit.
func (o perfOptions) limit() int {
	switch {
	case o.shipped:
		return 0 // the simulator enforces none
	case o.maxQueryMetrics == 0:
		return defaultMaxQueryMetrics
	case o.maxQueryMetrics < 0:
		return 0
	}
	return o.maxQueryMetrics
}

// perfCatalogue is the part of package vpx that the simulator's PerformanceManager copies when
// a model is built.
type perfCatalogue struct {
	counters                                       []types.PerfCounterInfo
	vm, host, pool, cluster, datastore, datacenter []types.PerfMetricId
	data                                           map[string]map[int32][]int64
}

var (
	pristineOnce sync.Once
	pristine     perfCatalogue
)

func currentCatalogue() perfCatalogue {
	return perfCatalogue{
		counters: vpx.PerfCounter, vm: vpx.VmMetrics, host: vpx.HostMetrics,
		pool: vpx.ResourcePoolMetrics, cluster: vpx.ClusterMetrics, datastore: vpx.DatastoreMetrics,
		datacenter: vpx.DatacenterMetrics, data: vpx.MetricData,
	}
}

func (c perfCatalogue) install() {
	vpx.PerfCounter, vpx.VmMetrics, vpx.HostMetrics = c.counters, c.vm, c.host
	vpx.ResourcePoolMetrics, vpx.ClusterMetrics = c.pool, c.cluster
	vpx.DatastoreMetrics, vpx.DatacenterMetrics = c.datastore, c.datacenter
	vpx.MetricData = c.data
}

// applyPerfCatalogue installs the catalogue o asks for, always starting from the simulator's
// own, so builds in one process (the Go tests) do not compound their edits.
func applyPerfCatalogue(o perfOptions) error {
	pristineOnce.Do(func() { pristine = currentCatalogue() })
	c, err := pristine.edited(o)
	if err != nil {
		return err
	}
	c.install()
	return nil
}

// counterName is a counter's full name, group.name.rollup (disk.read.average).
func counterName(c types.PerfCounterInfo) string {
	return c.GroupInfo.GetElementDescription().Key + "." + c.NameInfo.GetElementDescription().Key + "." + string(c.RollupType)
}

// edited is a copy of c with ids shifted and o.dropCounter left out.
func (c perfCatalogue) edited(o perfOptions) (perfCatalogue, error) {
	dropped := int32(-1)
	var counters []types.PerfCounterInfo
	for _, pc := range c.counters {
		if o.dropCounter != "" && counterName(pc) == o.dropCounter {
			dropped = pc.Key
			continue
		}
		pc.Key += o.counterShift
		if len(pc.AssociatedCounterId) > 0 {
			ids := make([]int32, len(pc.AssociatedCounterId))
			for i, id := range pc.AssociatedCounterId {
				ids[i] = id + o.counterShift
			}
			pc.AssociatedCounterId = ids
		}
		counters = append(counters, pc)
	}
	if o.dropCounter != "" && dropped < 0 {
		return c, fmt.Errorf("-perf-drop-counter %q: no such counter (want group.name.rollup)", o.dropCounter)
	}
	ids := func(in []types.PerfMetricId) []types.PerfMetricId {
		out := make([]types.PerfMetricId, 0, len(in))
		for _, id := range in {
			if id.CounterId == dropped {
				continue
			}
			id.CounterId += o.counterShift
			out = append(out, id)
		}
		return out
	}
	data := make(map[string]map[int32][]int64, len(c.data))
	for kind, series := range c.data {
		shifted := make(map[int32][]int64, len(series))
		for id, points := range series {
			if id != dropped {
				shifted[id+o.counterShift] = points
			}
		}
		data[kind] = shifted
	}
	return perfCatalogue{
		counters: counters, vm: ids(c.vm), host: ids(c.host), pool: ids(c.pool),
		cluster: ids(c.cluster), datastore: ids(c.datastore), datacenter: ids(c.datacenter), data: data,
	}, nil
}

// counterInfo is what the wrapper needs to know of a counter.
type counterInfo struct {
	name  string // group.name.rollup
	group string
	unit  string
}

// perfManager wraps the simulator's PerformanceManager. The simulator's PropertyCollector finds
// the mo type through the first field, so it is embedded by value (a copy of the built one).
type perfManager struct {
	simulator.PerformanceManager

	limit       int // metrics per QueryPerf; 0: no limit
	counters    map[int32]counterInfo
	hostMetrics []types.PerfMetricId
	// shipped: every call goes to the simulator's PerformanceManager, answers are only recorded
	// (-perf-wrapper=false); shippedLock is then the registry's per-object lock it has as shipped.
	shipped     bool
	shippedLock sync.Mutex

	// override, when a scenario sets it, gives some samples a fixed value instead of the hash
	// (host name, counter group.name.rollup, instance; false: keep the hash).
	override func(host, counter, instance string) (int64, bool)

	mu        sync.Mutex
	stats     perfStats
	available map[string][]types.PerfMetricId // per host id, computed once
	record    perfRecord
}

// Lock and Unlock make the registry's per-object lock a no-op for this object (see
// simulator.Registry.WithLock): vCenter answers performance queries concurrently, and the
// wrapper keeps its own state under mu. As shipped, the simulator serves one call at a time.
func (p *perfManager) Lock() {
	if p.shipped {
		p.shippedLock.Lock()
	}
}

func (p *perfManager) Unlock() {
	if p.shipped {
		p.shippedLock.Unlock()
	}
}

// perfStats counts QueryPerf traffic, for /_stats.
type perfStats struct {
	QueryPerfRequests     int64 `json:"query_perf_requests"`
	QueryPerfSpecs        int64 `json:"query_perf_specs"`
	QueryPerfMetrics      int64 `json:"query_perf_metrics"`
	MaxMetricsPerRequest  int   `json:"max_metrics_per_request"`
	MaxEntitiesPerRequest int   `json:"max_entities_per_request"`
	OverLimit             int64 `json:"over_limit"`
	UnconnectedHostSpecs  int64 `json:"unconnected_host_specs"`
	SamplesServed         int64 `json:"samples_served"`
	Limit                 int   `json:"limit"`
}

// installPerfManager replaces the built model's PerformanceManager with the wrapper and, when
// o sets it, adds config.vpxd.stats.maxQueryMetrics to the vCenter's settings.
func installPerfManager(o perfOptions, content types.ServiceContent) (*perfManager, error) {
	orig, ok := simulator.Map.Get(*content.PerfManager).(*simulator.PerformanceManager)
	if !ok {
		return nil, fmt.Errorf("PerformanceManager %s not found", content.PerfManager.Value)
	}
	p := &perfManager{
		PerformanceManager: *orig,
		limit:              o.limit(),
		counters:           make(map[int32]counterInfo, len(vpx.PerfCounter)),
		hostMetrics:        vpx.HostMetrics,
		shipped:            o.shipped,
		available:          map[string][]types.PerfMetricId{},
		record:             perfRecord{available: map[string][]servedMetricID{}},
	}
	p.stats.Limit = p.limit
	for _, c := range vpx.PerfCounter {
		p.counters[c.Key] = counterInfo{
			name:  counterName(c),
			group: c.GroupInfo.GetElementDescription().Key,
			unit:  c.UnitInfo.GetElementDescription().Key,
		}
	}
	simulator.Map.Put(p)
	if o.maxQueryMetrics != 0 && !o.shipped {
		om, ok := simulator.Map.Get(*content.Setting).(*simulator.OptionManager)
		if !ok {
			return nil, fmt.Errorf("OptionManager %s not found", content.Setting.Value)
		}
		om.Setting = append(om.Setting, &types.OptionValue{Key: maxQueryMetricsKey, Value: int32(o.maxQueryMetrics)})
	}
	return p, nil
}

// QueryAvailablePerfMetric answers for a host what vCenter would: the catalogue's host metrics
// with CPU, datastore and disk instances filled in from the host itself; nothing for a host
// that is not connected.
func (p *perfManager) QueryAvailablePerfMetric(ctx *simulator.Context, req *types.QueryAvailablePerfMetric) soap.HasFault {
	if req.Entity.Type != "HostSystem" {
		return p.PerformanceManager.QueryAvailablePerfMetric(ctx, req)
	}
	if p.shipped {
		answer := p.PerformanceManager.QueryAvailablePerfMetric(ctx, req)
		if res, ok := answer.(*methods.QueryAvailablePerfMetricBody); ok && res.Fault_ == nil && res.Res != nil {
			p.recordAvailable(req.Entity.Value, res.Res.Returnval)
		}
		return answer
	}
	body := new(methods.QueryAvailablePerfMetricBody)
	host, ok := simulator.Map.Get(req.Entity).(*simulator.HostSystem)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Entity})
		return body
	}
	body.Res = &types.QueryAvailablePerfMetricResponse{}
	if hostConnected(host) {
		body.Res.Returnval = p.availableFor(host)
	}
	p.recordAvailable(req.Entity.Value, body.Res.Returnval)
	return body
}

func hostConnected(h *simulator.HostSystem) bool {
	state := types.HostSystemConnectionStateConnected
	simulator.Map.WithLock(h, func() { state = h.Runtime.ConnectionState })
	return state == types.HostSystemConnectionStateConnected
}

// availableFor is the host's metric ids: `$cpu` is one instance per CPU thread, `$physDisk` is
// one instance per mounted datastore (the datastore's volume id for datastore.* counters, a
// device name for the others).
func (p *perfManager) availableFor(h *simulator.HostSystem) []types.PerfMetricId {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ids, ok := p.available[h.Self.Value]; ok {
		return ids
	}
	var threads int
	var volumes []string
	simulator.Map.WithLock(h, func() {
		threads = int(h.Hardware.CpuInfo.NumCpuThreads)
		for _, ds := range h.Datastore {
			volumes = append(volumes, datastoreVolume(ds))
		}
	})
	var ids []types.PerfMetricId
	for _, id := range p.hostMetrics {
		switch id.Instance {
		case "$cpu":
			for i := 0; i < threads; i++ {
				ids = append(ids, types.PerfMetricId{CounterId: id.CounterId, Instance: fmt.Sprint(i)})
			}
		case "$physDisk":
			for _, v := range volumes {
				instance := v
				if p.counters[id.CounterId].group != "datastore" {
					instance = "naa.6000c29" + strings.ReplaceAll(v, "-", "")
				}
				ids = append(ids, types.PerfMetricId{CounterId: id.CounterId, Instance: instance})
			}
		default:
			ids = append(ids, id)
		}
	}
	p.available[h.Self.Value] = ids
	return ids
}

// datastoreVolume is the id vCenter uses as a datastore's performance instance: the last path
// component of its summary.url (ds:///vmfs/volumes/<uuid>/, see setDatastoreURLs).
func datastoreVolume(ref types.ManagedObjectReference) string {
	ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
	if !ok {
		return ref.Value
	}
	return path.Base(strings.TrimSuffix(ds.Summary.Url, "/"))
}

// setDatastoreURLs gives every datastore the summary.url vCenter gives a VMFS volume,
// ds:///vmfs/volumes/<uuid>/, with a uuid made from its datacenter and name (the same on every
// build). The simulator keeps its files under info.url, a local directory, and reads only that.
func setDatastoreURLs() {
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		dc := ""
		if parent := simulator.Map.Get(*ds.Parent); parent != nil {
			if f, ok := parent.(*simulator.Folder); ok && f.Parent != nil {
				dc = f.Parent.Value
			}
		}
		h := fnv.New128a()
		fmt.Fprintf(h, "%s/%s", dc, ds.Name)
		sum := fmt.Sprintf("%x", h.Sum(nil))
		uuid := sum[0:8] + "-" + sum[8:16] + "-" + sum[16:20] + "-" + sum[20:32]
		simulator.Map.WithLock(ds, func() { ds.Summary.Url = "ds:///vmfs/volumes/" + uuid + "/" })
	}
}

// QueryPerf answers host specs of the real-time interval itself and passes the rest to the
// simulator. A request over the metric limit is refused as vCenter refuses it.
func (p *perfManager) QueryPerf(ctx *simulator.Context, req *types.QueryPerf) soap.HasFault {
	body := new(methods.QueryPerfBody)
	metrics := 0
	for _, qs := range req.QuerySpec {
		metrics += len(qs.MetricId)
	}
	over := p.limit > 0 && metrics > p.limit
	p.countRequest(len(req.QuerySpec), metrics, over)
	if p.shipped {
		answer := p.PerformanceManager.QueryPerf(ctx, req)
		if res, ok := answer.(*methods.QueryPerfBody); ok && res.Fault_ == nil && res.Res != nil {
			p.recordAnswer(req.QuerySpec, res.Res.Returnval)
		}
		return answer
	}
	if over {
		body.Fault_ = simulator.Fault("A specified parameter was not correct: querySpec.size",
			&types.InvalidArgument{InvalidProperty: "querySpec.size"})
		return body
	}
	now := time.Now()
	res := &types.QueryPerfResponse{}
	for _, qs := range req.QuerySpec {
		if qs.Entity.Type != "HostSystem" || qs.IntervalId != realtimeInterval {
			one := p.PerformanceManager.QueryPerf(ctx, &types.QueryPerf{This: req.This, QuerySpec: []types.PerfQuerySpec{qs}})
			if one.Fault() != nil {
				return one
			}
			res.Returnval = append(res.Returnval, one.(*methods.QueryPerfBody).Res.Returnval...)
			continue
		}
		host, ok := simulator.Map.Get(qs.Entity).(*simulator.HostSystem)
		if !ok {
			body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: qs.Entity})
			return body
		}
		res.Returnval = append(res.Returnval, p.hostMetric(host, qs, now))
	}
	body.Res = res
	p.recordAnswer(req.QuerySpec, res.Returnval)
	return body
}

func (p *perfManager) countRequest(specs, metrics int, over bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.stats
	s.QueryPerfRequests++
	s.QueryPerfSpecs += int64(specs)
	s.QueryPerfMetrics += int64(metrics)
	if metrics > s.MaxMetricsPerRequest {
		s.MaxMetricsPerRequest = metrics
	}
	if specs > s.MaxEntitiesPerRequest {
		s.MaxEntitiesPerRequest = specs
	}
	if over {
		s.OverLimit++
	}
}

// PerfMetricIntSeries is types.PerfMetricIntSeries as vCenter puts it on the wire: one value per
// sample, zeros included. govmomi's type tags Value `xml:"value,omitempty"`, and its encoder
// applies omitempty to each element of a slice, so every 0 is left out and the series no longer
// lines up with its samples. The encoder names the type by its Go name, so the xsi:type is the
// same.
type PerfMetricIntSeries struct {
	types.PerfMetricSeries

	Value []int64 `xml:"value"`
}

// hostMetric is one host's answer: a series per asked metric id the host has (others are left
// out, as vCenter leaves them out), over the samples the spec's window holds.
func (p *perfManager) hostMetric(h *simulator.HostSystem, qs types.PerfQuerySpec, now time.Time) *types.PerfEntityMetric {
	m := &types.PerfEntityMetric{PerfEntityMetricBase: types.PerfEntityMetricBase{Entity: qs.Entity}}
	if !hostConnected(h) {
		p.mu.Lock()
		p.stats.UnconnectedHostSpecs++
		p.mu.Unlock()
		return m
	}
	times := sampleTimes(qs, now)
	if len(times) == 0 {
		return m
	}
	for _, t := range times {
		m.SampleInfo = append(m.SampleInfo, types.PerfSampleInfo{Timestamp: time.Unix(t, 0).UTC(), Interval: realtimeInterval})
	}
	has := map[types.PerfMetricId]bool{}
	available := p.availableFor(h)
	for _, id := range available {
		has[id] = true
	}
	ids := qs.MetricId
	if len(ids) == 0 {
		ids = available
	}
	for _, id := range ids {
		if !has[id] {
			continue
		}
		info := p.counters[id.CounterId]
		series := &PerfMetricIntSeries{PerfMetricSeries: types.PerfMetricSeries{Id: id}, Value: make([]int64, len(times))}
		for i, t := range times {
			v := sampleValue(qs.Entity.Value, info, id.Instance, t)
			if p.override != nil {
				if fixed, ok := p.override(h.Name, info.name, id.Instance); ok {
					v = fixed
				}
			}
			series.Value[i] = v
		}
		m.Value = append(m.Value, series)
	}
	return m
}

// sampleTimes are the Unix times of the real-time samples a spec asks for, oldest first: on the
// 20 s grid, within the hour vCenter keeps, after startTime, up to endTime, the newest maxSample.
func sampleTimes(qs types.PerfQuerySpec, now time.Time) []int64 {
	newest := now.Unix() / realtimeInterval * realtimeInterval
	oldest := newest - (realtimeSamples-1)*realtimeInterval
	if qs.StartTime != nil {
		after := qs.StartTime.Unix()/realtimeInterval*realtimeInterval + realtimeInterval
		if after > oldest {
			oldest = after
		}
	}
	if qs.EndTime != nil && qs.EndTime.Unix() < newest {
		newest = qs.EndTime.Unix() / realtimeInterval * realtimeInterval
	}
	var times []int64
	for t := oldest; t <= newest; t += realtimeInterval {
		times = append(times, t)
	}
	if n := int(qs.MaxSample); len(times) > n {
		times = times[len(times)-n:]
	}
	return times
}

// sampleValue is a host's value of a counter instance at time t: a hash of all four, in a range
// that suits the counter's unit, so the same sample asked twice has the same value.
func sampleValue(entity string, c counterInfo, instance string, t int64) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", entity, c.name, instance, t)
	x := h.Sum64()
	switch c.unit {
	case "kiloBytesPerSecond":
		return int64(x % 400_000) // up to ~400 MB/s
	case "millisecond":
		return int64(x % 80)
	case "percent":
		return int64(x % 10_001) // hundredths of a percent
	case "number":
		return int64(x % 25)
	}
	return int64(x % 1000)
}

// maxRecordedAnswers is how many entity answers /_perf/served keeps (the newest): tests read a
// few dozen; a benchmark at thousands of hosts must not grow without bound.
const maxRecordedAnswers = 8192

// perfRecord is what went out, for GET /_perf/served.
type perfRecord struct {
	requests  int64                       // QueryPerf requests answered
	answers   []servedAnswer              // the newest maxRecordedAnswers, oldest first
	dropped   int64                       // older answers no longer kept
	available map[string][]servedMetricID // per host, the last QueryAvailablePerfMetric answer
}

// servedAnswer is one PerfEntityMetric of a QueryPerf answer, as it went out, with its spec.
type servedAnswer struct {
	Request   int64  `json:"request"` // 1 for the first QueryPerf request answered, and so on
	Entity    string `json:"entity"`
	StartTime *int64 `json:"start_time"` // the spec's, Unix seconds
	EndTime   *int64 `json:"end_time"`
	MaxSample int32  `json:"max_sample"`
	// Timestamps are the samples' times in the answer's order, Unix seconds (floored).
	Timestamps []int64        `json:"timestamps"`
	Series     []servedSeries `json:"series"`
}

// servedSeries is one PerfMetricIntSeries of an answer.
type servedSeries struct {
	Counter  string  `json:"counter"` // group.name.rollup
	Instance string  `json:"instance"`
	Values   []int64 `json:"values"` // one per timestamp, in the answer's order
}

// servedMetricID is one PerfMetricId of a QueryAvailablePerfMetric answer.
type servedMetricID struct {
	Counter  string `json:"counter"`
	Instance string `json:"instance"`
}

func unixOrNil(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}

// recordAnswer keeps one QueryPerf answer, entity by entity, with the spec that asked for it.
func (p *perfManager) recordAnswer(specs []types.PerfQuerySpec, answer []types.BasePerfEntityMetricBase) {
	out := make([]servedAnswer, 0, len(answer))
	samples := int64(0)
	for i, base := range answer {
		m, ok := base.(*types.PerfEntityMetric)
		if !ok {
			continue
		}
		a := servedAnswer{Entity: m.Entity.Value, Timestamps: make([]int64, len(m.SampleInfo)), Series: []servedSeries{}}
		if i < len(specs) {
			qs := specs[i]
			a.StartTime, a.EndTime, a.MaxSample = unixOrNil(qs.StartTime), unixOrNil(qs.EndTime), qs.MaxSample
		}
		for j, si := range m.SampleInfo {
			a.Timestamps[j] = si.Timestamp.Unix()
		}
		for _, v := range m.Value {
			var id types.PerfMetricId
			var values []int64
			switch series := v.(type) {
			case *PerfMetricIntSeries:
				id, values = series.Id, series.Value
			case *types.PerfMetricIntSeries:
				// As shipped: the encoder leaves every 0 out (see PerfMetricIntSeries), and the
				// record holds what the wire carries.
				id, values = series.Id, withoutZeros(series.Value)
			default:
				continue
			}
			a.Series = append(a.Series, servedSeries{Counter: p.counters[id.CounterId].name, Instance: id.Instance, Values: values})
			samples += int64(len(values))
		}
		out = append(out, a)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.record
	r.requests++
	for i := range out {
		out[i].Request = r.requests
	}
	p.stats.SamplesServed += samples
	r.answers = append(r.answers, out...)
	if over := len(r.answers) - maxRecordedAnswers; over > 0 {
		r.answers = append([]servedAnswer(nil), r.answers[over:]...)
		r.dropped += int64(over)
	}
}

// withoutZeros is values as govmomi's encoder puts a types.PerfMetricIntSeries on the wire.
func withoutZeros(values []int64) []int64 {
	out := make([]int64, 0, len(values))
	for _, v := range values {
		if v != 0 {
			out = append(out, v)
		}
	}
	return out
}

// recordAvailable keeps the metric ids QueryAvailablePerfMetric listed for a host.
func (p *perfManager) recordAvailable(host string, ids []types.PerfMetricId) {
	out := make([]servedMetricID, len(ids))
	for i, id := range ids {
		out[i] = servedMetricID{Counter: p.counters[id.CounterId].name, Instance: id.Instance}
	}
	p.mu.Lock()
	p.record.available[host] = out
	p.mu.Unlock()
}

// serveServed answers GET /_perf/served[?entity=host-21]: every QueryPerf answer kept, entity by
// entity in the order they went out, numbered by request; how many older ones were dropped; the
// metric ids each host was last listed with.
func (p *perfManager) serveServed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	entity := r.URL.Query().Get("entity")
	p.mu.Lock()
	answers := make([]servedAnswer, 0, len(p.record.answers))
	for _, a := range p.record.answers {
		if entity == "" || a.Entity == entity {
			answers = append(answers, a)
		}
	}
	available := map[string][]servedMetricID{}
	for host, ids := range p.record.available {
		if entity == "" || host == entity {
			available[host] = ids
		}
	}
	dropped := p.record.dropped
	p.mu.Unlock()
	writeJSON(w, map[string]interface{}{"answers": answers, "dropped": dropped, "available": available})
}

// statsSnapshot is a copy of the counts, for /_stats.
func (p *perfManager) statsSnapshot() perfStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// hostInstances lists the NIC and storage adapter instances the catalogue gives every host.
func hostInstances(metrics []types.PerfMetricId, counters []types.PerfCounterInfo) (nics, adapters []string) {
	groups := map[int32]string{}
	for _, c := range counters {
		groups[c.Key] = c.GroupInfo.GetElementDescription().Key
	}
	seen := map[string]bool{}
	for _, id := range metrics {
		if id.Instance == "" || strings.HasPrefix(id.Instance, "$") || seen[id.Instance] {
			continue
		}
		switch groups[id.CounterId] {
		case "net":
			nics = append(nics, id.Instance)
		case "storageAdapter":
			adapters = append(adapters, id.Instance)
		default:
			continue
		}
		seen[id.Instance] = true
	}
	sort.Strings(nics)
	sort.Strings(adapters)
	return nics, adapters
}
