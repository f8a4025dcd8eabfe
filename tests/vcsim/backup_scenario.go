// backup_scenario.go owns the backup situations of the golden scenario (added to its VMs without
// changing any of their ids) and the backup scenario, which has one of each situation the
// exporter's backup checks report: last-backup values of every default source, well formed and
// malformed; snapshot task successes and failures, some to be followed to their end; a disk
// grown under a snapshot; two backup snapshots on one host and one datastore; a powered-off VM;
// Windows and Linux guests with and without disk.EnableUUID; CBT; VMFS and NFS datastores.
package main

import (
	"fmt"
	"math/rand"
	"strings"
	"time"
)

// The custom fields the scenarios define. "team" is defined for every managed object type. The
// backup scenario adds the other products' attributes (productFields), after the others so the
// shared fields keep their keys.
var (
	scenarioVMFields     = []string{"NB_LAST_BACKUP", "Last Backup", "Rubrik_Latest_Backup", "owner", "backup-consistency"}
	scenarioGlobalFields = []string{"team"}
	productFields        = []string{"Last EMC vProxy Backup", "Last Cohesity Backup Attempt Time", "Last Cohesity Backup Status"}
)

// The formats the backup products write (Go layouts of the exporter's default formats).
const (
	veeamTimeLayout     = "01/02/2006 03:04:05 PM"   // %m/%d/%Y %I:%M:%S %p
	netbackupTimeLayout = "Mon Jan 02 15:04:05 2006" // %a %b %d %H:%M:%S %Y
	genericTimeLayout   = "2006-01-02 15:04:05"      // %Y-%m-%d %H:%M:%S
	rubrikTimeLayout    = "2006-01-02T15:04:05.000Z" // RFC 3339
	// Veeam 11 and 12 write the backup server's locale: de-DE (dd.MM.yyyy HH:mm:ss) and en-US
	// (M/d/yyyy h:mm:ss tt).
	veeamGermanLayout = "02.01.2006 15:04:05"
	veeamUSLayout     = "1/2/2006 3:04:05 PM"
	// Cohesity's attribute (2026/01/30-15:10:26-GMT+0100), vProxy's (RFC 3339 in its
	// key=value list), Spectrum Protect's notes block (MM/dd/yyyy HH:mm:ss).
	cohesityTimeLayout        = "2006/01/02-15:04:05-GMT-0700"
	spectrumProtectTimeLayout = "01/02/2006 15:04:05"
)

const (
	userVeeam     = `VSPHERE.LOCAL\svc-veeam`
	userNetBackup = `VSPHERE.LOCAL\svc-netbackup`
	userAdmin     = `VSPHERE.LOCAL\Administrator`
)

// veeamCurrentLine is the line Veeam 11 and 12 write into a VM's notes after a backup (Icinga
// vspheredb issue 279), its time in the backup server's locale.
func veeamCurrentLine(job, layout string, at time.Time) string {
	return fmt.Sprintf("Last backup: [%s]; Veeam server: [vbr01]; Job: [%s]; Repository: [repo01]", at.UTC().Format(layout), job)
}

// vproxyValue is the "Last EMC vProxy Backup" attribute Dell NetWorker and PowerProtect write
// (Icinga vspheredb pull request 608): the backup's end is EndTime.
func vproxyValue(start, end time.Time) string {
	return fmt.Sprintf("Backup Server=nw01.example.com, Policy=Gold, Workflow=vm_day_backup, Action=backup, JobId=71687619, StartTime=%s, EndTime=%s",
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
}

// spectrumProtectBlock is the block IBM Spectrum Protect for Virtual Environments writes into
// the notes (atc0005/check-vmware issue 512), below the owner's own lines.
func spectrumProtectBlock(at time.Time, status string) string {
	return "Client Contact: John Doe\n<Last Backup (IBM Spectrum Protect)>\n" +
		fmt.Sprintf("Last Run Time='%s'\nStatus='%s'\n", at.UTC().Format(spectrumProtectTimeLayout), status) +
		"Data Transmitted='104.83 GB'\nDuration='00:12:36'\nType='Incremental Forever - Incremental'\n" +
		"Schedule='TSMVE_BACKUP1'\nData Mover='TSMVE_DM3'\nSnapshot Type='VMware Tools'\nTransport='(nbd)'\n</Last Backup>"
}

// veeamLine is the line Veeam writes into a VM's notes (and its attribute) after a backup.
func veeamLine(job string, at time.Time) string {
	return fmt.Sprintf(`Veeam Backup: Job name: [%s], Time: [%s], Backup host: [vbr01], Backup folder: [\\repo01\Backups]`,
		job, at.UTC().Format(veeamTimeLayout))
}

func ok(source string, at time.Time) lastBackupFact {
	return lastBackupFact{source: source, at: at.UTC().Truncate(time.Second)}
}

func bad(source string) lastBackupFact { return lastBackupFact{source: source, parseError: true} }

// goldenExtras gives golden's VMs notes, attributes, CBT and disk.EnableUUID, LocalDS_0 a VMFS
// extent, and the history a few snapshot tasks: all at fixed times, so the output stays the same.
func goldenExtras(now time.Time, veeam, chain, branched, consolidate, off, suspendedVM *vmPlan) *extrasPlan {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }

	lastNight := ago(10*time.Hour + 44*time.Minute + 58*time.Second)
	veeam.annotation = "Accounting file server\n" + veeamLine("Daily Windows", lastNight)
	veeam.fields = map[string]string{
		"Last Backup":        veeamLine("Daily Windows", lastNight.Add(-day)),
		"owner":              "alice",
		"team":               "windows",
		"backup-consistency": "application",
	}
	veeam.cbt, veeam.enableUUID = true, "TRUE"
	veeam.lastBackup = []lastBackupFact{ok("veeam", lastNight)}

	nbu := ago(32*time.Hour + 59*time.Minute + 48*time.Second)
	chain.fields = map[string]string{
		"NB_LAST_BACKUP":     nbu.UTC().Format(netbackupTimeLayout),
		"owner":              "bob",
		"backup-consistency": "application",
	}
	chain.cbt = true
	chain.lastBackup = []lastBackupFact{ok("netbackup", nbu)}

	rubrik := ago(54*time.Hour + 49*time.Minute + 16*time.Second)
	generic := ago(60 * time.Hour)
	branched.fields = map[string]string{
		"Rubrik_Latest_Backup": rubrik.UTC().Format(rubrikTimeLayout),
		"Last Backup":          generic.UTC().Format(genericTimeLayout),
		"team":                 "linux",
	}
	branched.lastBackup = []lastBackupFact{ok("rubrik", rubrik), ok("generic", generic)}

	consolidate.annotation = "Veeam Backup: Job name: [Linux], Time: [yesterday], Backup host: [vbr01]"
	consolidate.fields = map[string]string{"Last Backup": "last night"}
	consolidate.lastBackup = []lastBackupFact{bad("veeam"), bad("generic")}

	suspendedVM.enableUUID = "FALSE"
	off.annotation = "Powered off until the audit"

	return &extrasPlan{
		vmFields:     scenarioVMFields,
		globalFields: scenarioGlobalFields,
		datastores: map[string]datastorePlan{
			datastoreName: {fsType: "VMFS", extents: []string{"naa.600508b1001c3a5b6e7f8091a2b3c4d5"},
				capacity: 2 << 40, free: 1374389534720, uncommitted: 300 * giB, accessible: true},
		},
		events: []eventPlan{
			{vm: veeam.name, at: ago(3*day + 4*time.Second), user: userVeeam, task: "VirtualMachine.createSnapshot",
				final: true, took: 9 * time.Second, snapshot: veeamSnapshotName, result: true},
			{vm: veeam.name, at: ago(3*day - 20*time.Minute), user: userVeeam, task: "vm.Snapshot.remove",
				final: true, fail: true, took: 5 * time.Minute},
			{vm: chain.name, at: ago(2*day + 3*time.Second), user: userAdmin, task: "VirtualMachine.createSnapshot",
				final: true, took: 6 * time.Second, snapshot: "pre-upgrade"},
			{vm: consolidate.name, at: ago(26 * time.Hour), eventEx: "com.vmware.vc.VmDiskConsolidationNeeded"},
			{vm: consolidate.name, at: ago(25 * time.Hour), user: userAdmin, task: "VirtualMachine.consolidateDisks",
				final: true, fail: true, took: 2 * time.Minute},
			{vm: consolidate.name, at: ago(25*time.Hour - 2*time.Minute), eventEx: "com.vmware.vc.VmDiskFailedToConsolidateEvent"},
		},
		now: now,
	}
}

// backupPlans is the backup scenario: one datacenter, cluster DC0_C0 (hosts H0, H1), standalone
// host DC0_H0, datastores LocalDS_0 and LocalDS_1 (VMFS) and LocalDS_2 (NFS, inaccessible, empty).
// Times are measured back from now; the event facts assume a 24 h read-back window.
func backupPlans(pools []*pool, now time.Time) ([]*vmPlan, *extrasPlan) {
	cluster, standalone := poolsOf(pools)
	ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Second) }
	n := 0
	vm := func(p *pool, guestID string, power string, t toolsPlan, datastore string, capacity int64) *vmPlan {
		n++
		pl := p.place()
		plan := &vmPlan{
			placement: pl, name: pl.name, guestID: guestID, numCPUs: 2, memoryMB: 4096,
			bootTime: ago(10 * day), tools: t, datastore: datastore,
			disks: []diskPlan{{capacityBytes: capacity, thin: true, usedBytes: capacity / 4}},
			sizes: rand.New(rand.NewSource(int64(2000 + n))),
		}
		switch power {
		case "off":
			plan.power = poweredOff
		default:
			plan.power = poweredOn
		}
		return plan
	}
	const ds0, ds1 = "LocalDS_0", "LocalDS_1"

	// DC0_C0_RP0_VM0 on H0: a Veeam backup running now; Windows with disk.EnableUUID.
	veeam := vm(cluster, "windows9Server64Guest", "on", tools(toolsCurrent, toolsRunning), ds0, 60*giB)
	veeamAt := ago(2 * time.Hour)
	veeam.ops = []snapOp{take(veeamSnapshotName, veeamAt).withQuiesce().withDescription(veeamSnapshotDescription).withSizes(24*kiB, 2*giB)}
	veeamLast := ago(26*time.Hour + 13*time.Minute)
	veeam.annotation = veeamLine("Nightly", veeamLast)
	veeam.fields = map[string]string{"Last Backup": veeamLine("Nightly", veeamLast), "owner": "alice", "team": "db", "backup-consistency": "application"}
	veeam.cbt, veeam.enableUUID = true, "TRUE"
	veeam.lastBackup = []lastBackupFact{ok("veeam", veeamLast)}

	// DC0_C0_RP0_VM1 on H1: Windows without disk.EnableUUID; a disk grown under a snapshot.
	grown := vm(cluster, "windows8Server64Guest", "on", tools(toolsCurrent, toolsRunning), ds1, 40*giB)
	grownSnap := ago(5 * time.Hour)
	grown.ops = []snapOp{take("before-update", grownSnap).withDescription("KB5031234").withSizes(30*kiB, 512*miB)}
	grown.reconfigure = []reconfigPlan{
		{at: ago(6 * time.Hour), user: userAdmin, growDisk: -1},                  // before the snapshot: not counted
		{at: ago(4 * time.Hour), user: userAdmin, growDisk: 0, growTo: 60 * giB}, // a disk grown under it
		{at: ago(3 * time.Hour), user: userAdmin, growDisk: -1},                  // another change under it
	}
	rubrikAt := ago(20*time.Hour + 7*time.Minute)
	// Cohesity too: its last attempt, which succeeded (the time in +01:00).
	cohesityAt := ago(14*time.Hour + 3*time.Minute)
	grown.fields = map[string]string{"Rubrik_Latest_Backup": rubrikAt.UTC().Format(rubrikTimeLayout), "owner": "carol",
		"Last Cohesity Backup Attempt Time": cohesityAt.In(time.FixedZone("CET", 3600)).Format(cohesityTimeLayout),
		"Last Cohesity Backup Status":       "Success"}
	grown.lastBackup = []lastBackupFact{ok("cohesity", cohesityAt), ok("rubrik", rubrikAt)}

	// DC0_C0_RP0_VM2 on H0: a NetBackup snapshot now too, whose removal then failed.
	nbu := vm(cluster, "rhel7_64Guest", "on", tools(toolsCurrent, toolsRunning), ds0, 80*giB)
	nbuAt := ago(1 * time.Hour)
	nbu.ops = []snapOp{take(fmt.Sprintf("NBU_SNAPSHOT %s %d", nbu.name, nbuAt.Unix()), nbuAt).withQuiesce().withSizes(20*kiB, 900*miB)}
	nbuLast := ago(25*time.Hour + 2*time.Minute)
	// Also Veeam 12's line in the notes from a US-English server, and a vProxy attribute.
	veeamUS := ago(21*time.Hour + 4*time.Minute + 5*time.Second)
	vproxyEnd := ago(19*time.Hour + 30*time.Minute)
	nbu.annotation = "Billing batch\n" + veeamCurrentLine("Linux Daily", veeamUSLayout, veeamUS) + "\nDo not power off"
	nbu.fields = map[string]string{"NB_LAST_BACKUP": nbuLast.UTC().Format(netbackupTimeLayout), "owner": "bob", "backup-consistency": "application",
		"Last EMC vProxy Backup": vproxyValue(vproxyEnd.Add(-7*time.Minute), vproxyEnd)}
	nbu.cbt, nbu.enableUUID = true, "TRUE" // Linux: the flag does not make it application-consistent
	nbu.lastBackup = []lastBackupFact{ok("netbackup", nbuLast), ok("veeam", veeamUS), ok("vproxy", vproxyEnd)}

	// DC0_C0_RP0_VM3 on H1: Windows with disk.EnableUUID FALSE, consolidation trouble.
	cons := vm(cluster, "windows9Server64Guest", "on", tools(toolsCurrent, toolsRunning), ds1, 50*giB)
	genericAt := ago(22 * time.Hour)
	cons.enableUUID = "FALSE"
	cons.fields = map[string]string{"Last Backup": genericAt.UTC().Format(genericTimeLayout), "team": "web"}
	cons.annotation = "Web front end\nVeeam Backup: Job name: [Web], Time: [24/13/2026 99:00:00 PM], Backup host: [vbr01]"
	cons.lastBackup = []lastBackupFact{ok("generic", genericAt), bad("veeam")}

	// DC0_H0_VM0: powered off, its NetBackup attribute garbled.
	off := vm(standalone, "ubuntu64Guest", "off", tools(toolsCurrent, toolsNotRunning), ds0, 20*giB)
	off.fields = map[string]string{"NB_LAST_BACKUP": "backup pending",
		// Cohesity's last attempt failed: not a last backup.
		"Last Cohesity Backup Attempt Time": ago(3 * time.Hour).In(time.FixedZone("EST", -5*3600)).Format(cohesityTimeLayout),
		"Last Cohesity Backup Status":       "Failure"}
	off.lastBackup = []lastBackupFact{bad("netbackup")}

	// DC0_H0_VM1: Linux with Tools not running (crash-consistent only); a disk grown without
	// snapshots (not counted).
	crash := vm(standalone, "debian10_64Guest", "on", tools(toolsCurrent, toolsNotRunning), ds1, 20*giB)
	crash.reconfigure = []reconfigPlan{{at: ago(7 * time.Hour), user: userAdmin, growDisk: 0, growTo: 30 * giB}}
	// Veeam 11's line from a German server and IBM Spectrum Protect's block in its notes.
	veeamDE := ago(23*time.Hour + 17*time.Minute + 9*time.Second)
	spectrum := ago(12*time.Hour + 10*time.Minute + 18*time.Second)
	crash.annotation = "Build agent\n" + veeamCurrentLine("Linux Weekly", veeamGermanLayout, veeamDE) + "\n" + spectrumProtectBlock(spectrum, "Successful")
	crash.lastBackup = []lastBackupFact{ok("spectrum_protect", spectrum), ok("veeam", veeamDE)}

	plans := []*vmPlan{veeam, grown, nbu, cons, off, crash}
	extras := &extrasPlan{
		vmFields:     append(append([]string{}, scenarioVMFields...), productFields...),
		backupUsers:  []string{userVeeam, userNetBackup},
		globalFields: scenarioGlobalFields,
		datastores: map[string]datastorePlan{
			ds0: {fsType: "VMFS", extents: []string{"naa.600a098038303053453f463045727001"},
				capacity: 4 << 40, free: 3 << 40, uncommitted: 512 * giB, accessible: true},
			ds1: {fsType: "VMFS", extents: []string{"naa.600a098038303053453f463045727002", "naa.600a098038303053453f463045727003"},
				capacity: 8 << 40, free: 5 << 40, uncommitted: 1 << 40, accessible: true},
			"LocalDS_2": {fsType: "NFS", capacity: 1 << 40, free: 0, accessible: false},
		},
		events: []eventPlan{
			// Followed to their end: the events say "queued".
			{vm: veeam.name, at: veeamAt.Add(-5 * time.Second), user: userVeeam, task: "VirtualMachine.createSnapshot",
				took: 10 * time.Second, snapshot: veeamSnapshotName, result: true},
			{vm: nbu.name, at: ago(30 * time.Minute), user: userNetBackup, task: "vm.Snapshot.remove", fail: true, took: time.Minute},
			// Past tasks with their final state.
			{vm: grown.name, at: grownSnap.Add(-3 * time.Second), user: userAdmin, task: "VirtualMachine.createSnapshot",
				final: true, took: 6 * time.Second, snapshot: "before-update"},
			{vm: nbu.name, at: nbuAt.Add(-4 * time.Second), user: userNetBackup, task: "VirtualMachine.createSnapshotEx",
				final: true, took: 8 * time.Second, snapshot: nbu.ops[0].name, result: true},
			{vm: cons.name, at: ago(10 * time.Hour), eventEx: "com.vmware.vc.VmDiskConsolidationNeeded"},
			{vm: cons.name, at: ago(9 * time.Hour), user: userAdmin, task: "VirtualMachine.consolidateDisks",
				final: true, fail: true, took: 3 * time.Minute},
			{vm: cons.name, at: ago(8 * time.Hour), eventEx: "com.vmware.vc.VmDiskConsolidatedEvent"},
			// Removals with known durations (vCenter posts a task's times; the simulator ends its
			// tasks at once, so runTask sets startTime = at and completeTime = at + took, as a
			// long merge would leave them). Veeam's account removed yesterday's snapshot in
			// 47 min; NetBackup's (its name written in other case, as vCenter keeps a login's
			// spelling) in 90 s before its failed removal; an administrator's removal is no
			// backup.
			{vm: veeam.name, at: ago(22 * time.Hour), user: userVeeam, task: "vm.Snapshot.remove",
				final: true, took: 47 * time.Minute},
			{vm: nbu.name, at: ago(20 * time.Hour), user: strings.ToLower(userNetBackup), task: "vm.Snapshot.remove",
				final: true, took: 90 * time.Second},
			{vm: off.name, at: ago(2 * time.Hour), user: userAdmin, task: "VirtualMachine.removeAllSnapshots",
				final: true, took: 2 * time.Minute},
			// Outside the 24 h window, and an EventEx the checks do not count.
			{vm: off.name, at: ago(30 * time.Hour), user: userNetBackup, task: "VirtualMachine.createSnapshot",
				final: true, took: 7 * time.Second},
			{vm: off.name, at: ago(1 * time.Hour), eventEx: "com.vmware.vc.vm.VmStateRevertedToSnapshot"},
		},
		window: 24 * time.Hour,
		now:    now,
	}
	return plans, extras
}

// scaleExtras gives the scale scenario the backup checks' inputs at realistic rates, drawn from
// a source of their own (the scenario's other draws stay as they were): NetBackup, Veeam and
// Rubrik values with a few garbled, notes, owners, CBT, disk.EnableUUID on Windows guests, and
// a history of up to 1,000 snapshot create tasks (the simulator keeps 1,000 events).
func scaleExtras(plans []*vmPlan, seed int64, now time.Time) *extrasPlan {
	x := &extrasPlan{vmFields: scenarioVMFields, globalFields: scenarioGlobalFields, window: 24 * time.Hour, now: now}
	owners := []string{"alice", "bob", "carol", "dba", "web", "sap"}
	for i, p := range plans {
		r := rand.New(rand.NewSource(seed*7_000_003 + int64(i)))
		last := now.Add(-time.Duration(1+r.Intn(48*60)) * time.Minute).Truncate(time.Second)
		p.fields = map[string]string{}
		switch n := r.Intn(100); {
		case n < 35:
			p.fields["NB_LAST_BACKUP"] = last.UTC().Format(netbackupTimeLayout) + ", VM_Daily, Full"
			p.lastBackup = []lastBackupFact{ok("netbackup", last)}
			if r.Intn(50) == 0 {
				p.fields["NB_LAST_BACKUP"] = "pending"
				p.lastBackup = []lastBackupFact{bad("netbackup")}
			}
		case n < 60:
			p.annotation = veeamLine("Nightly", last)
			p.fields["Last Backup"] = veeamLine("Nightly", last)
			p.lastBackup = []lastBackupFact{ok("veeam", last)}
		case n < 70:
			p.fields["Rubrik_Latest_Backup"] = last.UTC().Format(rubrikTimeLayout)
			p.lastBackup = []lastBackupFact{ok("rubrik", last)}
		}
		if r.Intn(100) < 20 {
			note := fmt.Sprintf("Owner: %s; change CHG%06d", owners[r.Intn(len(owners))], r.Intn(1_000_000))
			if p.annotation != "" {
				p.annotation = note + "\n" + p.annotation
			} else {
				p.annotation = note
			}
		}
		if r.Intn(100) < 30 {
			p.fields["owner"] = owners[r.Intn(len(owners))]
		}
		p.cbt = r.Intn(100) < 60
		if isWindows(p.guestID) {
			switch n := r.Intn(100); {
			case n < 50:
				p.enableUUID = "TRUE"
			case n < 60:
				p.enableUUID = "FALSE"
			}
		}
		if len(x.events) < 1000 {
			for _, op := range p.ops {
				if op.isTake() && defaultBackupPatterns.MatchString(op.name) {
					x.events = append(x.events, eventPlan{vm: p.name, at: op.at.Add(-5 * time.Second), user: userVeeam,
						task: "VirtualMachine.createSnapshot", final: true, took: 8 * time.Second, snapshot: op.name})
				}
			}
		}
	}
	return x
}
