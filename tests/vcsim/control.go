// control.go owns POST /_control: changes to the served inventory while clients follow it with
// WaitForUpdatesEx (snapshots created, removed and renamed, Tools states, VMs moved, added and
// removed, sessions dropped, and a benchmark's churn). It parses and validates the request, finds
// the objects, runs one change at a time and answers JSON. The changes themselves are in
// control_snapshots.go and control_vms.go; the file edits in livelayout.go.
//
// Every change reaches WaitForUpdatesEx because it goes through simulator.Map.Update (or the
// simulator's own API) under names that match property paths exactly or as a dotted prefix of
// them (see the README). Values are replaced by new copies, never edited in place: the
// simulator's PropertyCollector reads objects without their locks.
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"log"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// controller applies control requests, one at a time.
type controller struct {
	mu     sync.Mutex
	client *vim25.Client // in-process, on the simulator's internal session
	gate   *sessionGate
	// sizes draws file sizes of single changes; churn draws from its own seed.
	sizes *rand.Rand
	// lastSnapshotID remembers the highest snapshot id given per VM, so a removed newest
	// snapshot's id (and .vmsn name) is not given again, as ESXi does not.
	lastSnapshotID map[types.ManagedObjectReference]int32
	// churns counts churn changes to VMs with snapshots, to alternate remove and create.
	churns int
	now    func() time.Time
}

func newController(client *vim25.Client, gate *sessionGate) *controller {
	return &controller{
		client:         client,
		gate:           gate,
		sizes:          rand.New(rand.NewSource(1)),
		lastSnapshotID: map[types.ManagedObjectReference]int32{},
		now:            func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
	}
}

// controlRequest is every field any op takes; controlOps says which op takes which.
type controlRequest struct {
	Op           string  `json:"op"`
	VM           string  `json:"vm"`
	Snapshot     string  `json:"snapshot"`
	Name         string  `json:"name"`
	Description  *string `json:"description"`
	Quiesce      bool    `json:"quiesce"`
	Memory       bool    `json:"memory"`
	Status       *string `json:"status"`
	Running      *string `json:"running"`
	Version      *string `json:"version"`
	Host         string  `json:"host"`
	Fraction     float64 `json:"fraction"`
	Seed         int64   `json:"seed"`
	Task         string  `json:"task"`
	EventTypeID  string  `json:"event_type_id"`
	Fail         bool    `json:"fail"`
	User         string  `json:"user"`
	Datastore    string  `json:"datastore"`
	FreeBytes    *int64  `json:"free_bytes"`
	EntityType   string  `json:"entity_type"`
	Entity       string  `json:"entity"`
	Alarm        string  `json:"alarm"`
	Acknowledged bool    `json:"acknowledged"`
	Count        *int    `json:"count"`
}

// controlResult is the JSON answer besides "ok": true.
type controlResult map[string]interface{}

type controlOp struct {
	required []string
	optional []string
	run      func(c *controller, req controlRequest) (controlResult, error)
}

var controlOps = map[string]controlOp{
	"create_snapshot":      {[]string{"vm", "name"}, []string{"description", "quiesce", "memory"}, (*controller).createSnapshotOp},
	"remove_snapshot":      {[]string{"snapshot"}, nil, (*controller).removeSnapshotOp},
	"remove_all_snapshots": {[]string{"vm"}, nil, (*controller).removeAllSnapshotsOp},
	"rename_snapshot":      {[]string{"snapshot", "name"}, []string{"description"}, (*controller).renameSnapshotOp},
	"set_tools":            {[]string{"vm"}, []string{"status", "running", "version"}, (*controller).setToolsOp},
	"move_vm":              {[]string{"vm", "host"}, nil, (*controller).moveVMOp},
	"add_vm":               {[]string{"name"}, []string{"host"}, (*controller).addVMOp},
	"remove_vm":            {[]string{"vm"}, nil, (*controller).removeVMOp},
	"drop_sessions":        {nil, nil, (*controller).dropSessionsOp},
	"churn":                {[]string{"fraction"}, []string{"seed"}, (*controller).churnOp},
	"post_event":           {[]string{"vm"}, []string{"task", "event_type_id", "fail", "user"}, (*controller).postEventOp},
	"set_datastore_free":   {[]string{"datastore", "free_bytes"}, nil, (*controller).setDatastoreFreeOp},
	"set_alarm":            {[]string{"entity_type", "entity", "alarm", "status"}, []string{"acknowledged"}, (*controller).setAlarmOp},
	"clear_alarm":          {[]string{"entity_type", "entity", "alarm"}, nil, (*controller).clearAlarmOp},
	"fail_alarm_reads":     {[]string{"count"}, nil, (*controller).failAlarmReadsOp},
}

// controlError is a failure with the HTTP status it is answered with.
type controlError struct {
	status int
	msg    string
}

func (e *controlError) Error() string { return e.msg }

func badRequest(format string, args ...interface{}) error {
	return &controlError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...interface{}) error {
	return &controlError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// serve answers POST /_control.
func (c *controller) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := ioutil.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, op, err := parseControlRequest(body)
	if err == nil {
		start := time.Now()
		var res controlResult
		c.mu.Lock()
		res, err = op.run(c, req)
		c.mu.Unlock()
		if err == nil {
			log.Printf("control op=%s %s seconds=%.3f", req.Op, res.logFields(), time.Since(start).Seconds())
			res["ok"] = true
			w.Header().Set("Content-Type", "application/json")
			data, _ := json.Marshal(res)
			_, _ = w.Write(append(data, '\n'))
			return
		}
	}
	status := http.StatusInternalServerError
	if ce, ok := err.(*controlError); ok {
		status = ce.status
	}
	log.Printf("control op=%s status=%d error=%q", req.Op, status, err.Error())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	data, _ := json.Marshal(map[string]interface{}{"ok": false, "error": err.Error()})
	_, _ = w.Write(append(data, '\n'))
}

func (res controlResult) logFields() string {
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, res[k])
	}
	return b.String()
}

// parseControlRequest decodes a request strictly: a known op, its required fields present and
// no field it does not take.
func parseControlRequest(body []byte) (controlRequest, controlOp, error) {
	var req controlRequest
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return req, controlOp{}, badRequest("body: want a JSON object: %v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, controlOp{}, badRequest("body: %v", err)
	}
	op, ok := controlOps[req.Op]
	if !ok {
		return req, op, badRequest("op %q: want one of %s", req.Op, strings.Join(opNames(), ", "))
	}
	allowed := map[string]bool{"op": true}
	for _, f := range append(append([]string(nil), op.required...), op.optional...) {
		allowed[f] = true
	}
	for name := range fields {
		if !allowed[name] {
			return req, op, badRequest("%s: unknown field %q (takes %s)", req.Op, name, strings.Join(append(op.required, op.optional...), ", "))
		}
	}
	for _, name := range op.required {
		if _, ok := fields[name]; !ok {
			return req, op, badRequest("%s: %q is required", req.Op, name)
		}
	}
	return req, op, nil
}

func opNames() []string {
	names := make([]string, 0, len(controlOps))
	for name := range controlOps {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// lookupVM finds a VM by managed object id.
func lookupVM(id string) (*simulator.VirtualMachine, error) {
	if id == "" {
		return nil, badRequest("vm: want a VirtualMachine id such as vm-39")
	}
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: id}).(*simulator.VirtualMachine)
	if !ok {
		return nil, notFound("vm %s: no such VirtualMachine", id)
	}
	return vm, nil
}

// lookupSnapshot finds a snapshot and its VM; the snapshot must be in the VM's tree.
func lookupSnapshot(id string) (*simulator.VirtualMachineSnapshot, *simulator.VirtualMachine, error) {
	if id == "" {
		return nil, nil, badRequest("snapshot: want a VirtualMachineSnapshot id such as snapshot-42")
	}
	ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: id}
	snap, ok := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return nil, nil, notFound("snapshot %s: no such VirtualMachineSnapshot", id)
	}
	vm, ok := simulator.Map.Get(snap.Vm).(*simulator.VirtualMachine)
	if !ok {
		return nil, nil, notFound("snapshot %s: its VM %s is gone", id, snap.Vm.Value)
	}
	var found bool
	simulator.Map.WithLock(vm, func() {
		found = vm.Snapshot != nil && findNode(vm.Snapshot.RootSnapshotList, ref) != nil
	})
	if !found {
		return nil, nil, notFound("snapshot %s: not in the snapshot tree of %s", id, vm.Self.Value)
	}
	return snap, vm, nil
}

func lookupHost(id string) (*simulator.HostSystem, error) {
	if id == "" {
		return nil, badRequest("host: want a HostSystem id such as host-21")
	}
	host, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "HostSystem", Value: id}).(*simulator.HostSystem)
	if !ok {
		return nil, notFound("host %s: no such HostSystem", id)
	}
	return host, nil
}

func (c *controller) dropSessionsOp(req controlRequest) (controlResult, error) {
	n, err := c.gate.terminateAll()
	if err != nil {
		return nil, err
	}
	return controlResult{"terminated": n}, nil
}

// nilIfEmpty is v, or an untyped nil for an empty string or slice: Map.Update then unsets the
// property and the change carries no value, as vCenter reports an unset property.
func nilIfEmpty(v interface{}) interface{} {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []types.ManagedObjectReference:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

func changeNames(changes []types.PropertyChange) string {
	names := make([]string, len(changes))
	for i, ch := range changes {
		names[i] = ch.Name
	}
	return strings.Join(names, ",")
}
