// tags_test.go checks the REST shims of tags.go on the scale server of TestMain: /api answers
// 404, the REST login takes only the configured credentials, and the tags applyTags attaches are
// what list-attached-tags-on-objects serves over the network, as its facts say.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// restCall sends one REST request to the scale server; the status and the decoded "value".
func restCall(t *testing.T, method, path, user, pass, token string, body interface{}, out interface{}) int {
	t.Helper()
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(scaleSrv.url, "/sdk")+path, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if token != "" {
		req.Header.Set("vmware-api-session-id", token)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: scaleSrv.caPool()}}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode == http.StatusOK {
		var wrapped struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.NewDecoder(res.Body).Decode(&wrapped); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(wrapped.Value, out); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

func TestRESTLoginIsStrictAndAPIPathsAreAbsent(t *testing.T) {
	if got := restCall(t, http.MethodPost, "/api/session", "user", "pass", "", nil, nil); got != http.StatusNotFound {
		t.Errorf("POST /api/session: %d, want 404 (vCenter before 7.0 U2)", got)
	}
	if got := restCall(t, http.MethodPost, "/rest/com/vmware/cis/session", "user", "wrong", "", nil, nil); got != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", got)
	}
	var token string
	if got := restCall(t, http.MethodPost, "/rest/com/vmware/cis/session", "user", "pass", "", nil, &token); got != http.StatusOK || token == "" {
		t.Fatalf("login: %d %q", got, token)
	}
	if got := restCall(t, http.MethodGet, "/rest/com/vmware/cis/tagging/category", "", "", "", nil, nil); got != http.StatusUnauthorized {
		t.Errorf("a call without the session: %d, want 401", got)
	}
	stats := fetchStats(t)
	if stats["REST POST /api/session"] == 0 || stats["REST POST /rest/com/vmware/cis/session"] == 0 {
		t.Errorf("REST requests not counted: %v", stats)
	}
}

func TestAppliedTagsAreWhatTheAttachedTagsCallServes(t *testing.T) {
	var vms []VMFacts
	for _, vm := range scale.facts.VMs {
		if !vm.Template && len(vms) < 3 {
			vms = append(vms, vm)
		}
	}
	plans := []tagPlan{
		{"Test Policy", "p1", []string{vms[0].Name, vms[1].Name}},
		{"Test Owner", "o1", []string{vms[1].Name}},
		{"Test Owner", "o2", []string{vms[1].Name}},
	}
	facts, err := applyTags(scaleSrv.vapi, "user", "pass", plans, scale.facts.VMs)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	restCall(t, http.MethodPost, "/rest/com/vmware/cis/session", "user", "pass", "", nil, &token)
	type object struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	var ids []object
	for _, vm := range vms {
		ids = append(ids, object{"VirtualMachine", vm.ID})
	}
	var attached []struct {
		Object object   `json:"object_id"`
		TagIDs []string `json:"tag_ids"`
	}
	path := "/rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags-on-objects"
	if got := restCall(t, http.MethodPost, path, "", "", token, map[string]interface{}{"object_ids": ids}, &attached); got != http.StatusOK {
		t.Fatalf("list-attached-tags-on-objects: %d", got)
	}
	var served []string
	for _, a := range attached {
		for _, id := range a.TagIDs {
			var tag struct {
				Name       string `json:"name"`
				CategoryID string `json:"category_id"`
			}
			restCall(t, http.MethodGet, "/rest/com/vmware/cis/tagging/tag/id:"+id, "", "", token, nil, &tag)
			var category struct {
				Name string `json:"name"`
			}
			restCall(t, http.MethodGet, "/rest/com/vmware/cis/tagging/category/id:"+tag.CategoryID, "", "", token, nil, &category)
			served = append(served, a.Object.ID+" "+category.Name+" "+tag.Name)
		}
	}
	var want []string
	for _, f := range facts {
		want = append(want, f.VMID+" "+f.Category+" "+f.Tag)
	}
	sort.Strings(served)
	sort.Strings(want)
	if strings.Join(served, "\n") != strings.Join(want, "\n") || len(want) != 4 {
		t.Errorf("served:\n%s\nfacts:\n%s", strings.Join(served, "\n"), strings.Join(want, "\n"))
	}
}
