// hosts.go owns what a scenario says about hosts beyond the VPX model's defaults: a host in
// maintenance mode (through EnterMaintenanceMode_Task) and hosts that vCenter has lost
// (connectionState disconnected or notResponding, edited: the simulator has no API for it), and
// the host facts the host I/O tests compare against.
package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/simulator/vpx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// hostState is how a scenario leaves one host.
type hostState struct {
	maintenance bool
	connection  types.HostSystemConnectionState // "" stays connected
}

// HostFacts describes one host.
type HostFacts struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	ClusterName     string `json:"cluster_name"` // empty for a standalone host
	DatacenterName  string `json:"datacenter_name"`
	ConnectionState string `json:"connection_state"` // connected, disconnected, notResponding
	InMaintenance   bool   `json:"in_maintenance"`
	Version         string `json:"version"` // summary.config.product.version
	Build           string `json:"build"`
	// Datastores are the datastores mounted on the host with the instance id their datastore.*
	// counters carry (the last path component of the datastore's URL).
	Datastores []HostDatastoreFacts `json:"datastores"`
	// NICs and StorageAdapters are the instances of the net.* and storageAdapter.* counters.
	NICs            []string `json:"nics"`
	StorageAdapters []string `json:"storage_adapters"`
	// BackupSnapshots counts the VMs on the host holding a snapshot a default backup pattern
	// names (backup.go).
	BackupSnapshots int `json:"backup_snapshots"`
}

// HostDatastoreFacts is one datastore of a host.
type HostDatastoreFacts struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Instance string `json:"instance"`
}

// PerfFacts describes the PerformanceManager as served.
type PerfFacts struct {
	CounterShift   int32  `json:"counter_shift"`
	DroppedCounter string `json:"dropped_counter"` // empty when none
	// MaxQueryMetrics is the limit QueryPerf enforces (0: none); MaxQueryMetricsSetting says
	// whether config.vpxd.stats.maxQueryMetrics is set (else vCenter's default 64 applies).
	MaxQueryMetrics        int  `json:"max_query_metrics"`
	MaxQueryMetricsSetting bool `json:"max_query_metrics_setting"`
	// CounterIDs maps group.name.rollup to the counter id served.
	CounterIDs map[string]int32 `json:"counter_ids"`
}

// hostsScenarioStates are the hosts scenario's exceptions: one host in maintenance, one
// disconnected and one not responding; the other hosts are connected.
var hostsScenarioStates = map[string]hostState{
	"DC0_C0_H2": {maintenance: true},
	"DC0_C0_H3": {connection: types.HostSystemConnectionStateDisconnected},
	"DC0_C0_H4": {connection: types.HostSystemConnectionStateNotResponding},
}

// spreadHostStates puts `maintenance` hosts in maintenance and `disconnected` hosts out of
// reach, spread evenly over every host of pools (scale scenario).
func spreadHostStates(pools []*pool, maintenance, disconnected int) map[string]hostState {
	var names []string
	for _, p := range pools {
		for _, h := range p.hosts {
			names = append(names, h.name)
		}
	}
	states := map[string]hostState{}
	pick := func(n, offset int, s hostState) {
		if n <= 0 || len(names) == 0 {
			return
		}
		step := len(names) / n
		if step == 0 {
			step = 1
		}
		for i := 0; i < n && len(states) < len(names); i++ {
			j := (i*step + offset) % len(names)
			for states[names[j]] != (hostState{}) {
				j = (j + 1) % len(names) // taken by the other state: the next free host
			}
			states[names[j]] = s
		}
	}
	pick(maintenance, 0, hostState{maintenance: true})
	pick(disconnected, 1, hostState{connection: types.HostSystemConnectionStateDisconnected})
	return states
}

// applyHostStates brings hosts to their scenario state, after the VMs are made.
func applyHostStates(ctx context.Context, c *vim25.Client, pools []*pool, states map[string]hostState) error {
	for _, p := range pools {
		for _, h := range p.hosts {
			s, ok := states[h.name]
			if !ok {
				continue
			}
			if s.maintenance {
				res, err := methods.EnterMaintenanceMode_Task(ctx, c, &types.EnterMaintenanceMode_Task{This: h.ref})
				if err == nil {
					_, err = taskResult(res.Returnval)
				}
				if err != nil {
					return fmt.Errorf("EnterMaintenanceMode_Task %s: %w", h.name, err)
				}
			}
			if s.connection != "" {
				host := simulator.Map.Get(h.ref).(*simulator.HostSystem)
				simulator.Map.WithLock(host, func() {
					host.Runtime.ConnectionState = s.connection // Summary.Runtime points here too
				})
			}
		}
	}
	return nil
}

// hostFacts states every host of pools as the scenario left it, ordered by id.
func hostFacts(pools []*pool, states map[string]hostState) []HostFacts {
	nics, adapters := hostInstances(vpx.HostMetrics, vpx.PerfCounter)
	var out []HostFacts
	for _, p := range pools {
		for _, h := range p.hosts {
			s := states[h.name]
			conn := string(types.HostSystemConnectionStateConnected)
			if s.connection != "" {
				conn = string(s.connection)
			}
			f := HostFacts{
				ID: h.ref.Value, Name: h.name, ClusterName: p.clusterName, DatacenterName: p.datacenterName,
				ConnectionState: conn, InMaintenance: s.maintenance,
				Version: esx.HostConfigInfo.Product.Version, Build: esx.HostConfigInfo.Product.Build,
				NICs: nics, StorageAdapters: adapters,
			}
			host := simulator.Map.Get(h.ref).(*simulator.HostSystem)
			for _, ref := range host.Datastore {
				ds := simulator.Map.Get(ref).(*simulator.Datastore)
				f.Datastores = append(f.Datastores, HostDatastoreFacts{ID: ref.Value, Name: ds.Name, Instance: datastoreVolume(ref)})
			}
			sort.Slice(f.Datastores, func(i, j int) bool { return f.Datastores[i].Name < f.Datastores[j].Name })
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return morefLess(types.ManagedObjectReference{Value: out[i].ID}, types.ManagedObjectReference{Value: out[j].ID})
	})
	return out
}

// perfFacts states the served catalogue and limit.
func perfFacts(o perfOptions) *PerfFacts {
	f := &PerfFacts{
		CounterShift:           o.counterShift,
		DroppedCounter:         o.dropCounter,
		MaxQueryMetrics:        o.limit(),
		MaxQueryMetricsSetting: o.maxQueryMetrics != 0,
		CounterIDs:             make(map[string]int32, len(vpx.PerfCounter)),
	}
	for _, c := range vpx.PerfCounter {
		f.CounterIDs[counterName(c)] = c.Key
	}
	return f
}
