// pitfalls.go owns the pitfalls scenario: the demo's VMs plus one VM for each backup pitfall the
// demo lacks, so that every alert of alerts/ has an object to fire for (the end-to-end test of
// the alerts and dashboards runs it in a real Prometheus). Ages are measured back from now, as in
// the demo; names say which pitfall a VM holds. DC0_C0_RP0_VM5 of the demo stays healthy.
package main

import (
	"math/rand"
	"time"
)

// pitfallPlans are smallPlans(demo), with the demo's backup extras (last backups, events), plus
// the pitfall VMs, all in the cluster, a failed snapshot removal and a datastore nearly full.
func pitfallPlans(pools []*pool, now time.Time) ([]*vmPlan, *extrasPlan) {
	plans, extras := smallPlans(pools, now, true)
	cluster, _ := poolsOf(pools)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	seed := int64(2000)
	vm := func(name string, t toolsPlan, capacity, used int64) *vmPlan {
		seed++
		return &vmPlan{
			placement: cluster.place(),
			name:      name,
			guestID:   "rhel7_64Guest",
			numCPUs:   2,
			memoryMB:  2048,
			power:     poweredOn,
			bootTime:  ago(5 * day),
			disks:     []diskPlan{{capacityBytes: capacity, thin: true, usedBytes: used}},
			tools:     t,
			sizes:     rand.New(rand.NewSource(seed)),
		}
	}
	healthy := tools(toolsCurrent, toolsRunning)

	// A backup snapshot past the leftover warning (6 h) but not yet critical (24 h).
	backup := vm("pitfall-backup-8h", healthy, 40*giB, 10*giB)
	backup.ops = []snapOp{take("RUBRIK-5f3a9c21", ago(8*time.Hour)).withQuiesce().withSizes(24*kiB, 256*miB)}

	// One recent snapshot holding 30 % of the disk (over both size thresholds, 10 % and 25 %).
	large := vm("pitfall-snapshot-30pct", healthy, 20*giB, 12*giB)
	large.ops = []snapOp{take("before-reindex", ago(2*time.Hour)).withSizes(32*kiB, 6*giB)}

	// One recent snapshot holding 12.5 % of the disk (over the warning only), and the disk grown
	// under it an hour ago (to 44 GiB: the snapshot still holds 11.4 %).
	medium := vm("pitfall-snapshot-12pct", healthy, 40*giB, 16*giB)
	medium.ops = []snapOp{take("before-upgrade", ago(3*time.Hour)).withSizes(32*kiB, 5*giB)}
	medium.reconfigure = []reconfigPlan{{at: ago(time.Hour), user: userAdmin, growDisk: 0, growTo: 44 * giB}}

	// A chain of five recent snapshots (deeper than 3).
	deep := vm("pitfall-chain-5", healthy, 40*giB, 8*giB)
	for i, name := range []string{"step-1", "step-2", "step-3", "step-4", "step-5"} {
		deep.ops = append(deep.ops, take(name, ago(time.Duration(5-i)*time.Hour)).withSizes(20*kiB, 16*miB))
	}

	// Tools installed and current but not running on a powered-on VM: only crash-consistent
	// backups, where its owners require application-consistent ones.
	stopped := vm("pitfall-tools-stopped", tools(toolsCurrent, toolsNotRunning), 40*giB, 8*giB)
	stopped.fields = map[string]string{"backup-consistency": "application"}

	// A NetBackup snapshot taken an hour ago: a backup running (the end-to-end test's exporter
	// has a blackout window that is always open).
	running := vm("pitfall-backup-in-blackout", healthy, 40*giB, 8*giB)
	running.ops = []snapOp{take("NBU_SNAPSHOT pitfall 1", ago(time.Hour)).withQuiesce().withSizes(24*kiB, 64*miB)}

	// The removal of pitfall-backup-8h's snapshot failed 20 minutes ago.
	extras.events = append(extras.events, eventPlan{vm: backup.name, at: ago(20 * time.Minute), user: userAdmin,
		task: "vm.Snapshot.remove", final: true, fail: true, took: time.Minute})

	// The last snapshot removal on pitfall-snapshot-30pct ran 47 minutes (VSphereSnapshotRemovalSlow):
	// vCenter's task times as a long merge leaves them (the simulator ends its tasks at once).
	extras.events = append(extras.events, eventPlan{vm: large.name, at: ago(3 * time.Hour), user: userVeeam,
		task: "vm.Snapshot.remove", final: true, took: 47 * time.Minute})

	// The demo's datastore, which holds the snapshot files, is 95 % full.
	ds := extras.datastores[datastoreName]
	ds.free = ds.capacity / 20
	extras.datastores[datastoreName] = ds

	extras.alarms = pitfallAlarms(now)

	plans = append(plans, backup, large, medium, deep, stopped, running)
	return append(plans, devicePitfallPlans(vm, now)...), extras
}

// slowHost runs the demo's Veeam VM and pitfall-backup-8h: two backups at once.
const slowHost = "DC0_C0_H0"

// pitfallPerf fixes the latency and packet-drop samples: 45 ms and 12 drops a sample on vmnic0
// of slowHost, 5 ms and none elsewhere. Other counters keep the wrapper's values.
func pitfallPerf(host, counter, instance string) (int64, bool) {
	slow := host == slowHost
	switch counter {
	case "disk.maxTotalLatency.latest",
		"datastore.totalReadLatency.average", "datastore.totalWriteLatency.average",
		"storageAdapter.totalReadLatency.average", "storageAdapter.totalWriteLatency.average":
		if slow {
			return 45, true
		}
		return 5, true
	case "net.droppedRx.summation", "net.droppedTx.summation":
		if slow && instance == "vmnic0" {
			return 12, true
		}
		return 0, true
	}
	return 0, false
}
