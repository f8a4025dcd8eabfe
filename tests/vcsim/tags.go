// tags.go owns the vSphere Automation REST API of the simulator (govmomi's vapi simulator, its
// tagging part) and the tags a scenario puts on its VMs: the shims around the vapi handler, the
// tag plan of the pitfalls scenario, and the tag facts.
//
// Shims (each the vCenter behaviour it stands for):
//   - strict REST login: POST /rest/com/vmware/cis/session accepts only the -username and
//     -password, else 401, as vCenter does (the vapi simulator accepts any non-empty pair);
//   - /api/… answers 404: vCenter before 7.0 U2 serves only /rest (the vapi simulator of govmomi
//     0.24 has no /api), so the exporter's fallback from /api/session to /rest is what runs;
//   - every REST request is counted in /_stats under "REST <method> <path>" (ids as `{id}`), so
//     a test can see how often the login was tried and what a tag read costs.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"

	vapisim "github.com/vmware/govmomi/vapi/simulator"
)

// TagFacts is one tag on one VM (vsphere_vm_tag_info, and the counts of backup policy tags).
type TagFacts struct {
	VMID     string `json:"vm_id"`
	VMName   string `json:"vm_name"`
	Category string `json:"category"`
	Tag      string `json:"tag"`
}

// tagPlan is one tag and the names of the VMs it is attached to.
type tagPlan struct {
	category string
	tag      string
	vms      []string
}

const (
	policyCategory = "Backup Policy"
	ownerCategory  = "Owner"
	// uncoveredVM is the pitfalls VM that no backup policy tag covers (powered on).
	uncoveredVM = "pitfall-chain-5"
)

// pitfallTags: "Backup Policy" gold on every powered-on VM that is not a template but
// uncoveredVM, silver as well on pitfall-backup-8h (two policies); "Owner" team-a and team-b on
// pitfall-backup-8h (two tags of a label category), team-b on DC0_C0_RP0_VM1. Templates and
// powered-off VMs get none. A category nobody names (Unused) holds a tag on a VM too.
func pitfallTags(vms []VMFacts) []tagPlan {
	var gold []string
	for _, vm := range vms {
		if !vm.Template && vm.PowerState == "poweredOn" && vm.Name != uncoveredVM {
			gold = append(gold, vm.Name)
		}
	}
	return []tagPlan{
		{policyCategory, "gold", gold},
		{policyCategory, "silver", []string{"pitfall-backup-8h"}},
		{ownerCategory, "team-a", []string{"pitfall-backup-8h"}},
		{ownerCategory, "team-b", []string{"pitfall-backup-8h", "DC0_C0_RP0_VM1"}},
		{"Unused", "whatever", []string{"DC0_C0_RP0_VM1"}},
	}
}

// tagsFor is the tag plan of a scenario (none for most).
func tagsFor(scenario string, vms []VMFacts) []tagPlan {
	if scenario == "pitfalls" {
		return pitfallTags(vms)
	}
	return nil
}

// newVapi is the vapi simulator's handler for the server at u, behind the shims above.
func newVapi(u *url.URL, username, password string, st *stats) http.Handler {
	_, h := vapisim.New(u, nil)
	ids := regexp.MustCompile(`/id:[^/]+`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		route := "REST " + r.Method + " " + ids.ReplaceAllString(r.URL.Path, "/{id}")
		if a := r.URL.Query().Get("~action"); a != "" {
			route += "?~action=" + a
		}
		defer func() { st.record(route, cw.status >= 400, cw.bytes) }()
		if strings.HasPrefix(r.URL.Path, "/api/") {
			http.NotFound(cw, r)
			return
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/com/vmware/cis/session") && r.URL.Query().Get("~action") == "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != username || p != password {
				cw.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(cw, r)
	})
}

// vapiClient calls the vapi handler in process (no network), in one session.
type vapiClient struct {
	h       http.Handler
	session string
}

func (c *vapiClient) call(method, path string, body interface{}, out interface{}) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.session != "" {
		req.Header.Set("vmware-api-session-id", c.session)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d %s", method, path, rec.Code, rec.Body.String())
	}
	if out == nil {
		return nil
	}
	var wrapped struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &wrapped); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return json.Unmarshal(wrapped.Value, out)
}

// applyTags creates the plan's categories and tags through the REST API (in process) and
// attaches them; it returns the facts, sorted by VM name, category and tag.
func applyTags(h http.Handler, username, password string, plans []tagPlan, vms []VMFacts) ([]TagFacts, error) {
	facts := []TagFacts{}
	if len(plans) == 0 {
		return facts, nil
	}
	req := httptest.NewRequest(http.MethodPost, "/rest/com/vmware/cis/session", nil)
	req.SetBasicAuth(username, password)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var login struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &login); err != nil || login.Value == "" {
		return nil, fmt.Errorf("REST login: HTTP %d %s", rec.Code, rec.Body.String())
	}
	c := &vapiClient{h: h, session: login.Value}
	defer func() { _ = c.call(http.MethodDelete, "/rest/com/vmware/cis/session", nil, nil) }()
	byName := map[string]VMFacts{}
	for _, vm := range vms {
		byName[vm.Name] = vm
	}
	categories := map[string]string{}
	for _, p := range plans {
		cid, ok := categories[p.category]
		if !ok {
			spec := map[string]interface{}{"create_spec": map[string]interface{}{
				"name": p.category, "cardinality": "MULTIPLE", "associable_types": []string{"VirtualMachine"},
			}}
			if err := c.call(http.MethodPost, "/rest/com/vmware/cis/tagging/category", spec, &cid); err != nil {
				return nil, err
			}
			categories[p.category] = cid
		}
		var tid string
		spec := map[string]interface{}{"create_spec": map[string]interface{}{"name": p.tag, "category_id": cid}}
		if err := c.call(http.MethodPost, "/rest/com/vmware/cis/tagging/tag", spec, &tid); err != nil {
			return nil, err
		}
		for _, name := range p.vms {
			vm, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("tag %s/%s: no VM %q", p.category, p.tag, name)
			}
			body := map[string]interface{}{"object_id": map[string]string{"type": "VirtualMachine", "id": vm.ID}}
			path := "/rest/com/vmware/cis/tagging/tag-association/id:" + tid + "?~action=attach"
			if err := c.call(http.MethodPost, path, body, nil); err != nil {
				return nil, err
			}
			facts = append(facts, TagFacts{VMID: vm.ID, VMName: vm.Name, Category: p.category, Tag: p.tag})
		}
	}
	sort.Slice(facts, func(i, j int) bool {
		a, b := facts[i], facts[j]
		if a.VMName != b.VMName {
			return a.VMName < b.VMName
		}
		if a.Category != b.Category {
			return a.Category < b.Category
		}
		return a.Tag < b.Tag
	})
	return facts, nil
}
