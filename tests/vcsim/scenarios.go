// scenarios.go owns the six scenarios: golden (small, identical on every run), demo (golden's
// VMs with ages measured back from now, plus outdated Tools), hosts (golden's VMs on hosts in
// every connection state), scale (many VMs of random shape from a seed, optionally on thousands
// of hosts), report (one VM per backup risk and snapshots with hostile names, ages from now)
// and backup (every situation of the backup checks, see backup_scenario.go). A scenario is an
// inventory shape plus a function from pools to VM plans and the extras (custom fields,
// datastores, events) added once the VMs exist.
package main

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

type scenario struct {
	shape inventoryShape
	// stamp is the time written into layoutEx/storage timestamps.
	stamp time.Time
	plans func(pools []*pool) ([]*vmPlan, *extrasPlan)
	// hosts says which hosts are not simply connected (by name); nil: all are.
	hosts func(pools []*pool) map[string]hostState
	// perfValues fixes some performance samples (see perfManager.override); nil: none.
	perfValues func(host, counter, instance string) (int64, bool)
}

// goldenNow is the golden scenario's "now": its snapshots are 3 to 30 days older.
var goldenNow = time.Date(2026, time.November, 23, 10, 0, 0, 0, time.UTC)

func scenarioFor(opts options) (scenario, error) {
	small := inventoryShape{datacenters: 1, clusters: 1, hostsPerCluster: 2, standaloneHosts: 1}
	switch opts.scenario {
	case "golden":
		return scenario{shape: small, stamp: goldenNow, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return smallPlans(p, goldenNow, false) }}, nil
	case "demo":
		now := opts.referenceNow()
		return scenario{shape: small, stamp: now, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return smallPlans(p, now, true) }}, nil
	case "hosts":
		// golden's VMs on a cluster of five hosts (one in maintenance, one disconnected, one
		// not responding) and a standalone host, two datastores on every host.
		now := opts.referenceNow()
		shape := inventoryShape{datacenters: 1, clusters: 1, hostsPerCluster: 5, standaloneHosts: 1, datastores: 2}
		return scenario{shape: shape, stamp: now,
			plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return smallPlans(p, now, false) },
			hosts: func([]*pool) map[string]hostState { return hostsScenarioStates },
		}, nil
	case "pitfalls":
		now := opts.referenceNow()
		return scenario{shape: small, stamp: now, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return pitfallPlans(p, now) }, perfValues: pitfallPerf}, nil
	case "backup":
		now := opts.referenceNow()
		shape := small
		shape.datastores = 3
		return scenario{shape: shape, stamp: now, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return backupPlans(p, now) }}, nil
	case "scale":
		now := opts.referenceNow()
		shape := inventoryShape{
			datacenters:     opts.datacenters,
			clusters:        opts.clusters,
			hostsPerCluster: opts.hostsPerCluster,
			standaloneHosts: opts.standaloneHosts,
		}
		return scenario{shape: shape, stamp: now, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) {
			plans := scalePlans(p, opts.vms, opts.snapshotVMs, opts.seed, now)
			return plans, scaleExtras(plans, opts.seed, now)
		}, hosts: func(p []*pool) map[string]hostState {
			return spreadHostStates(p, opts.maintenanceHosts, opts.disconnectedHosts)
		}}, nil
	case "report":
		now := opts.referenceNow()
		return scenario{shape: small, stamp: now, plans: func(p []*pool) ([]*vmPlan, *extrasPlan) { return reportPlans(p, now), nil }}, nil
	}
	return scenario{}, fmt.Errorf("unknown scenario %q", opts.scenario)
}

const (
	veeamSnapshotName        = "VEEAM BACKUP TEMPORARY SNAPSHOT"
	veeamSnapshotDescription = "Please do not delete this snapshot. It is being used by Veeam Backup."
)

const (
	toolsCurrent      = "guestToolsCurrent"
	toolsNeedUpgrade  = "guestToolsNeedUpgrade"
	toolsNotInstalled = "guestToolsNotInstalled"
	toolsUnmanaged    = "guestToolsUnmanaged"
	toolsTooOld       = "guestToolsTooOld"
	toolsSupportedOld = "guestToolsSupportedOld"
	toolsSupportedNew = "guestToolsSupportedNew"
	toolsTooNew       = "guestToolsTooNew"
	toolsBlacklisted  = "guestToolsBlacklisted"

	toolsRunning          = "guestToolsRunning"
	toolsNotRunning       = "guestToolsNotRunning"
	toolsExecutingScripts = "guestToolsExecutingScripts"
)

const (
	poweredOn  = types.VirtualMachinePowerStatePoweredOn
	poweredOff = types.VirtualMachinePowerStatePoweredOff
	suspended  = types.VirtualMachinePowerStateSuspended
)

const day = 24 * time.Hour

// poolsOf splits the small inventory's pools into its cluster and its standalone host.
func poolsOf(pools []*pool) (cluster, standalone *pool) {
	for _, p := range pools {
		if p.clusterName != "" && cluster == nil {
			cluster = p
		}
		if p.clusterName == "" && standalone == nil {
			standalone = p
		}
	}
	return cluster, standalone
}

// smallPlans are the golden VMs (demo adds two) and their extras. Every size that matters to a
// snapshot is fixed here; the rest is drawn from a per-VM source with a fixed seed.
func smallPlans(pools []*pool, now time.Time, demo bool) ([]*vmPlan, *extrasPlan) {
	cluster, standalone := poolsOf(pools)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	boot := ago(22 * day)
	n := 0
	vm := func(p *pool, guestID string, memoryMB int32, power types.VirtualMachinePowerState, t toolsPlan, disks ...diskPlan) *vmPlan {
		n++
		return &vmPlan{
			placement: p.place(),
			guestID:   guestID,
			numCPUs:   2,
			memoryMB:  memoryMB,
			power:     power,
			bootTime:  boot,
			disks:     disks,
			tools:     t,
			sizes:     rand.New(rand.NewSource(int64(1000 + n))),
		}
	}
	thick := func(capacity int64) diskPlan { return diskPlan{capacityBytes: capacity, usedBytes: capacity} }
	thin := func(capacity, used int64) diskPlan {
		return diskPlan{capacityBytes: capacity, thin: true, usedBytes: used}
	}

	// A Veeam job that died and left its snapshot behind.
	veeam := vm(cluster, "windows9Server64Guest", 4096, poweredOn, tools(toolsCurrent, toolsRunning), thick(60*giB))
	veeam.ops = []snapOp{
		take(veeamSnapshotName, ago(3*day)).withQuiesce().withDescription(veeamSnapshotDescription).withSizes(24*kiB, 3*giB),
	}

	// A chain of three: root -> child -> grandchild (current), two disks.
	chain := vm(cluster, "rhel7_64Guest", 8192, poweredOn, tools(toolsNeedUpgrade, toolsRunning), thick(40*giB), thin(100*giB, 30*giB))
	chain.ops = []snapOp{
		take("before-patch", ago(20*day)).withSizes(32*kiB, 512*miB, 256*miB),
		take("after-patch", ago(10*day)).withDescription("kernel 3.10.0-1160 applied").withSizes(36*kiB, 1*giB, 128*miB),
		take("pre-upgrade", ago(2*day)).withSizes(40*kiB, 2*giB, 64*miB),
	}

	// A branched tree: root with two children, current on the first; the second has memory.
	branched := vm(cluster, "ubuntu64Guest", 2048, poweredOn, tools(toolsUnmanaged, toolsRunning), thin(32*giB, 12*giB))
	branched.ops = []snapOp{
		take("base-install", ago(30*day)).withSizes(20*kiB, 256*miB),
		take("config-a", ago(25*day)).withSizes(28*kiB, 768*miB),
		revertTo(0).withSizes(0, 64*miB),
		take("config-b", ago(15*day)).withMemory().withSizes(48*kiB, 1536*miB),
		revertTo(1).withSizes(0, 320*miB),
	}

	// No snapshot left, but a delta disk a failed consolidation left behind.
	consolidate := vm(cluster, "debian10_64Guest", 2048, poweredOn, tools(toolsCurrent, toolsExecutingScripts), thin(20*giB, 6*giB))
	consolidate.consolidationNeeded = true
	consolidate.orphanDeltas = 1

	plans := []*vmPlan{veeam, chain, branched, consolidate}
	if demo {
		plans = append(plans,
			vm(cluster, "windows8Server64Guest", 4096, poweredOn, tools(toolsTooOld, toolsRunning), thick(80*giB)),
			vm(cluster, "rhel7_64Guest", 4096, poweredOn, tools(toolsCurrent, toolsRunning), thin(50*giB, 20*giB)),
		)
	}

	plans = append(plans,
		vm(standalone, "otherGuest64", 1024, poweredOff, tools(toolsNotInstalled, toolsNotRunning), thin(16*giB, 2*giB)),
		vm(standalone, "windows8Server64Guest", 4096, suspended, tools(toolsCurrent, toolsNotRunning), thick(40*giB)),
	)
	template := vm(standalone, "windows9Server64Guest", 4096, poweredOff, toolsPlan{runningStatus: toolsNotRunning}, thin(40*giB, 14*giB))
	template.template = true
	template.capacityInKBOnly = true
	plans = append(plans, template)

	for _, p := range plans {
		p.name = p.placement.name
	}
	off, suspendedVM := plans[len(plans)-3], plans[len(plans)-2]
	return plans, goldenExtras(now, veeam, chain, branched, consolidate, off, suspendedVM)
}

// scaleGuests are guest ids the simulator accepts (it validates guestId).
var scaleGuests = []string{"windows9Server64Guest", "windows8Server64Guest", "rhel7_64Guest", "ubuntu64Guest", "debian10_64Guest", "otherGuest64"}

// weighted picks a key with probability proportional to its weight.
type weighted []struct {
	value  string
	weight int
}

func (w weighted) pick(r *rand.Rand) string {
	total := 0
	for _, c := range w {
		total += c.weight
	}
	n := r.Intn(total)
	for _, c := range w {
		if n < c.weight {
			return c.value
		}
		n -= c.weight
	}
	return w[len(w)-1].value
}

var scaleToolsStatus = weighted{
	{toolsCurrent, 48}, {toolsNeedUpgrade, 15}, {toolsNotInstalled, 5}, {toolsUnmanaged, 10},
	{toolsTooOld, 4}, {toolsSupportedOld, 6}, {toolsSupportedNew, 4}, {toolsTooNew, 3},
	{toolsBlacklisted, 2}, {"", 3},
}

var scaleToolsRunning = weighted{{toolsRunning, 85}, {toolsNotRunning, 10}, {toolsExecutingScripts, 5}}

// scalePlans spreads vms VMs over the pools in turn; snapshotVMs of them (never templates) get
// random snapshot trees.
func scalePlans(pools []*pool, vms, snapshotVMs int, seed int64, now time.Time) []*vmPlan {
	pick := rand.New(rand.NewSource(seed))
	withSnapshots := make([]bool, vms)
	for _, i := range pick.Perm(vms)[:snapshotVMs] {
		withSnapshots[i] = true
	}
	plans := make([]*vmPlan, vms)
	for i := range plans {
		r := rand.New(rand.NewSource(seed*1_000_003 + int64(i)))
		p := scaleVM(r, pools[i%len(pools)].place(), now, !withSnapshots[i])
		if withSnapshots[i] {
			p.ops = randomTree(r, p, now)
		}
		plans[i] = p
	}
	return plans
}

// scaleVM draws one VM without snapshots; 2% of them are templates when mayBeTemplate.
func scaleVM(r *rand.Rand, pl placement, now time.Time, mayBeTemplate bool) *vmPlan {
	p := &vmPlan{
		placement: pl,
		name:      pl.name,
		guestID:   scaleGuests[r.Intn(len(scaleGuests))],
		numCPUs:   int32(1 << r.Intn(4)),
		memoryMB:  int32(1024 << r.Intn(5)),
		bootTime:  now.Add(-time.Duration(1+r.Intn(200*24)) * time.Hour),
		sizes:     r,
		template:  r.Intn(100) < 2 && mayBeTemplate,
	}
	switch n := r.Intn(100); {
	case p.template:
		p.power = poweredOff
	case n < 85:
		p.power = poweredOn
	case n < 97:
		p.power = poweredOff
	default:
		p.power = suspended
	}
	disks := 1
	if n := r.Intn(100); n >= 92 {
		disks = 3
	} else if n >= 70 {
		disks = 2
	}
	capacities := []int64{16, 20, 40, 60, 80, 100, 200, 500}
	for d := 0; d < disks; d++ {
		capacity := capacities[r.Intn(len(capacities))] * giB
		disk := diskPlan{capacityBytes: capacity, thin: r.Intn(100) < 70, usedBytes: capacity}
		if disk.thin {
			disk.usedBytes = capacity / 100 * int64(5+r.Intn(90)) / (4 * kiB) * (4 * kiB)
		}
		p.disks = append(p.disks, disk)
	}
	p.capacityInKBOnly = r.Intn(100) < 3
	p.consolidationNeeded = r.Intn(100) < 3
	if p.consolidationNeeded {
		p.orphanDeltas = 1 + r.Intn(2)
	}

	status := scaleToolsStatus.pick(r)
	running := toolsNotRunning
	if p.power == poweredOn && status != toolsNotInstalled {
		running = scaleToolsRunning.pick(r)
	}
	p.tools = tools(status, running)
	if status == "" {
		p.tools = toolsPlan{} // guest info not reported yet
	}
	return p
}

// backupSnapshotName draws the name a backup product gives its temporary snapshot.
func backupSnapshotName(r *rand.Rand, vm string, at time.Time) (name, description string) {
	switch r.Intn(5) {
	case 0:
		return veeamSnapshotName, veeamSnapshotDescription
	case 1:
		return "_VCB-BACKUP_", ""
	case 2:
		return fmt.Sprintf("NBU_SNAPSHOT %s %d", vm, at.Unix()), ""
	case 3:
		return "__GX_BACKUP__", "Commvault backup snapshot"
	default:
		return fmt.Sprintf("RUBRIK-%08x-%04x", r.Uint32(), r.Intn(1<<16)), ""
	}
}

var manualSnapshotNames = []string{"before-patch", "pre-upgrade", "after-patch", "baseline", "test", "config-change", "pre-migration", "known-good"}

// randomTree draws a snapshot tree at most 4 deep: a chain, sometimes a branch off it, sometimes a
// leftover backup snapshot on top, sometimes the VM reverted to an older snapshot.
func randomTree(r *rand.Rand, p *vmPlan, now time.Time) []snapOp {
	depth := 1 + r.Intn(4)
	backupLeaf := r.Intn(100) < 45
	manual := depth
	if backupLeaf {
		manual--
	}
	// A branch: revert to an inner snapshot of the chain (depth forkAt+1) and take 1..2 more,
	// keeping the tree at most 4 deep with the backup snapshot on top.
	branch, forkAt := 0, 0
	if manual >= 2 && r.Intn(100) < 35 {
		forkAt = r.Intn(manual - 1)
		branch = 1 + r.Intn(2)
		room := 4 - (forkAt + 1)
		if backupLeaf {
			room--
		}
		if branch > room {
			branch = room
		}
	}
	takes := manual + branch
	if backupLeaf {
		takes++
	}

	times := snapshotTimes(r, now, takes)
	var ops []snapOp
	next := func() time.Time { t := times[0]; times = times[1:]; return t }
	manualOp := func() snapOp { return manualSnapshot(r, p, next()) }
	for i := 0; i < manual; i++ {
		ops = append(ops, manualOp())
	}
	if branch > 0 {
		ops = append(ops, revertTo(forkAt)) // the next snapshot is a sibling of forkAt's child
		for i := 0; i < branch; i++ {
			ops = append(ops, manualOp())
		}
	}
	if backupLeaf {
		at := next()
		name, description := backupSnapshotName(r, p.name, at)
		op := take(name, at).withDescription(description)
		if r.Intn(100) < 75 && p.power == poweredOn {
			op = op.withQuiesce()
		}
		ops = append(ops, op)
	} else if takes > 1 && r.Intn(100) < 20 {
		ops = append(ops, revertTo(r.Intn(takes-1))) // current somewhere inside the tree
	}
	return ops
}

// snapshotTimes draws n creation times in order: the first 2 h..180 d before now, the others
// between it and now, in whole seconds.
func snapshotTimes(r *rand.Rand, now time.Time, n int) []time.Time {
	oldest := now.Add(-time.Duration(2+r.Intn(180*24-2)) * time.Hour)
	span := now.Sub(oldest) - 5*time.Minute
	times := make([]time.Time, n)
	times[0] = oldest
	for i := 1; i < n; i++ {
		times[i] = oldest.Add(time.Duration(r.Int63n(int64(span))).Truncate(time.Second))
	}
	sortTimes(times[1:])
	return times
}

// manualSnapshot draws a snapshot someone took by hand: a dated name, on a running VM sometimes
// with memory or quiesced, sometimes with a description.
func manualSnapshot(r *rand.Rand, p *vmPlan, at time.Time) snapOp {
	op := take(fmt.Sprintf("%s %s", manualSnapshotNames[r.Intn(len(manualSnapshotNames))], at.Format("2006-01-02")), at)
	switch n := r.Intn(100); {
	case n < 35 && p.power == poweredOn:
		op = op.withMemory()
	case n < 50 && p.power == poweredOn:
		op = op.withQuiesce()
	}
	if r.Intn(3) == 0 {
		op = op.withDescription("taken by " + []string{"ops", "app team", "change CHG0042"}[r.Intn(3)])
	}
	return op
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// The hostile snapshot names of the report scenario: a page that pastes names into HTML would run
// them (an alert, or window.__xss set by the image's error handler).
const (
	hostileScriptName = "<script>alert(1)</script>"
	hostileImageName  = `"><img src=x onerror="window.__xss=1">`
)

// reportPlans are the report scenario's VMs, ages measured back from now: one VM per risk the
// report sums up, a snapshot that is none, and the hostile names.
//
//	DC0_C0_RP0_VM0  leftover Veeam snapshot, 2 days old, quiesced (leftover backup)
//	DC0_C0_RP0_VM1  <script>… 1 h old, child "><img… 30 min old (current), hostile descriptions
//	DC0_C0_RP0_VM2  consolidationNeeded with an orphaned delta, one snapshot 3 h old
//	DC0_C0_RP0_VM3  Tools needUpgrade (not current), a VCB backup snapshot 1 h old (not a leftover yet)
//	DC0_H0_VM0      chain before-patch 10 days → after-patch 4 days (both old) → pre-upgrade 1 day
//	DC0_H0_VM1      template, no snapshot
//	DC0_C0_RP0_VM4  waits on the "no more space for virtual disk" question, no snapshot
func reportPlans(pools []*pool, now time.Time) []*vmPlan {
	cluster, standalone := poolsOf(pools)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	n := 0
	vm := func(p *pool, guestID string, power types.VirtualMachinePowerState, t toolsPlan, disk diskPlan) *vmPlan {
		n++
		return &vmPlan{
			placement: p.place(),
			guestID:   guestID,
			numCPUs:   2,
			memoryMB:  4096,
			power:     power,
			bootTime:  ago(30 * day),
			disks:     []diskPlan{disk},
			tools:     t,
			sizes:     rand.New(rand.NewSource(int64(2000 + n))),
		}
	}
	thin := func(capacity, used int64) diskPlan {
		return diskPlan{capacityBytes: capacity, thin: true, usedBytes: used}
	}

	leftover := vm(cluster, "windows9Server64Guest", poweredOn, tools(toolsCurrent, toolsRunning), thin(60*giB, 20*giB))
	leftover.ops = []snapOp{
		take(veeamSnapshotName, ago(2*day)).withQuiesce().withDescription(veeamSnapshotDescription).withSizes(24*kiB, 3*giB),
	}

	hostile := vm(cluster, "rhel7_64Guest", poweredOn, tools(toolsCurrent, toolsRunning), thin(40*giB, 10*giB))
	hostile.ops = []snapOp{
		take(hostileScriptName, ago(time.Hour)).withDescription("<b>not bold</b> & <i>not italic</i>").withSizes(20*kiB, 64*miB),
		take(hostileImageName, ago(30*time.Minute)).withDescription(`'; DROP TABLE snapshots; --`).withSizes(22*kiB, 32*miB),
	}

	// The orphaned delta's size is drawn (up to 40 GiB): a disk big enough to hold it.
	consolidate := vm(cluster, "debian10_64Guest", poweredOn, tools(toolsCurrent, toolsExecutingScripts), thin(200*giB, 6*giB))
	consolidate.consolidationNeeded = true
	consolidate.orphanDeltas = 1
	consolidate.ops = []snapOp{take("pre-change", ago(3*time.Hour)).withSizes(18*kiB, 256*miB)}

	oldTools := vm(cluster, "windows8Server64Guest", poweredOn, tools(toolsNeedUpgrade, toolsRunning), thin(80*giB, 30*giB))
	oldTools.ops = []snapOp{take("_VCB-BACKUP_", ago(time.Hour)).withQuiesce().withSizes(26*kiB, 512*miB)}

	old := vm(standalone, "ubuntu64Guest", poweredOn, tools(toolsUnmanaged, toolsRunning), thin(32*giB, 12*giB))
	old.ops = []snapOp{
		take("before-patch", ago(10*day)).withSizes(30*kiB, 1*giB),
		take("after-patch", ago(4*day)).withDescription("kernel applied").withSizes(32*kiB, 2*giB),
		take("pre-upgrade", ago(day)).withSizes(34*kiB, 128*miB),
	}

	template := vm(standalone, "windows9Server64Guest", poweredOff, toolsPlan{runningStatus: toolsNotRunning}, thin(40*giB, 14*giB))
	template.template = true

	// Paused on a question (its text is in the report's risk line).
	question := vm(cluster, "rhel7_64Guest", poweredOn, tools(toolsCurrent, toolsRunning), thin(40*giB, 8*giB))

	plans := []*vmPlan{leftover, hostile, consolidate, oldTools, old, template, question}
	for _, p := range plans {
		p.name = p.placement.name
	}
	question.devices.question = fmt.Sprintf(noSpaceQuestion, diskFileName(question.datastoreName(), question.name, 0))
	return plans
}
