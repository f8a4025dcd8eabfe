// names.go owns the golden scenario's awkward names: a cluster, a VM and a snapshot whose names
// hold what vCenter percent-escapes (`%`, `/`, `\`), a double quote, a newline and non-ASCII
// letters. The simulator serves them escaped, as vCenter does (`%25`, `%2f`, `%5c`); the facts
// state them as the vSphere Client shows them. It changes names only, after the scenario is built,
// so every managed object id stays what it was.
package main

import (
	"fmt"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Names as an administrator typed them (and the exporter must show them).
const (
	goldenClusterName  = `Prod/DMZ "A" \ 100% Zürich`
	goldenVMName       = `Ünïcode "quoted" \ vm/01 100%`
	goldenSnapshotName = "config-b \"mem\" \\ 2/2\nzweite Zeile ✓"
)

// escapeEntityName is a name as vCenter sends it: `%`, `/` and `\` percent-escaped.
func escapeEntityName(name string) string {
	return strings.NewReplacer("%", "%25", "/", "%2f", `\`, "%5c").Replace(name)
}

// decodeEntityName reverses escapeEntityName (either case of the hex digits), leaving any other
// `%` sequence as it is.
func decodeEntityName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && i+3 <= len(name) {
			switch strings.ToLower(name[i : i+3]) {
			case "%25":
				b.WriteByte('%')
				i += 2
				continue
			case "%2f":
				b.WriteByte('/')
				i += 2
				continue
			case "%5c":
				b.WriteByte('\\')
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// renameGolden gives the golden scenario's cluster, its first VM on the standalone host
// (DC0_H0_VM0) and its memory snapshot (config-b) the awkward names, and updates the facts.
func renameGolden(facts *Facts) error {
	var cluster *simulator.ClusterComputeResource
	for _, obj := range simulator.Map.All("ClusterComputeResource") {
		cluster = simulator.Map.Get(obj.Reference()).(*simulator.ClusterComputeResource)
	}
	if cluster == nil {
		return fmt.Errorf("golden: no cluster to rename")
	}
	oldCluster := cluster.Name
	renameEntity(cluster, goldenClusterName)

	renamedVM, renamedSnapshot := false, false
	for i := range facts.VMs {
		vm := &facts.VMs[i]
		if vm.ClusterName == oldCluster {
			vm.ClusterName = goldenClusterName
		}
		if vm.Name == "DC0_H0_VM0" {
			obj, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}).(*simulator.VirtualMachine)
			if !ok {
				return fmt.Errorf("golden: %s is not served", vm.ID)
			}
			renameEntity(obj, goldenVMName)
			vm.Name = goldenVMName
			renamedVM = true
		}
		for j := range vm.Snapshots {
			if vm.Snapshots[j].Name == "config-b" {
				if err := renameSnapshot(vm.ID, vm.Snapshots[j].ID, escapeEntityName(goldenSnapshotName)); err != nil {
					return err
				}
				vm.Snapshots[j].Name = goldenSnapshotName
				renamedSnapshot = true
			}
		}
	}
	if !renamedVM || !renamedSnapshot {
		return fmt.Errorf("golden: DC0_H0_VM0 or snapshot config-b not found")
	}
	return nil
}

// renameEntity sets an entity's name as vCenter would store and send it.
func renameEntity(obj mo.Entity, name string) {
	simulator.Map.WithLock(obj, func() {
		simulator.Map.Update(obj, []types.PropertyChange{{Name: "name", Val: escapeEntityName(name)}})
	})
}

// renameSnapshot renames snapshot id of VM vm in its tree (the name the exporter reads).
func renameSnapshot(vm, id, name string) error {
	obj, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: vm}).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("golden: %s is not served", vm)
	}
	var found bool
	simulator.Map.WithLock(obj, func() {
		info := types.VirtualMachineSnapshotInfo{
			CurrentSnapshot:  obj.Snapshot.CurrentSnapshot,
			RootSnapshotList: copyTree(obj.Snapshot.RootSnapshotList),
		}
		if n := findNode(info.RootSnapshotList, types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: id}); n != nil {
			n.Name = name
			found = true
		}
		simulator.Map.Update(obj, []types.PropertyChange{{Name: "snapshot", Val: info}})
	})
	if !found {
		return fmt.Errorf("golden: snapshot %s not in %s", id, vm)
	}
	return nil
}
