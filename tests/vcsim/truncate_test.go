package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const threeUpdates = envelopeStart + `<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>-</version>` +
	`<filterSet><filter type="PropertyFilter">f1</filter><objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj></objectSet><objectSet><kind>enter</kind><obj type="VirtualMachine">vm-2</obj></objectSet></filterSet>` +
	`<filterSet><filter type="PropertyFilter">f2</filter><objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj></objectSet></filterSet>` +
	`</returnval></WaitForUpdatesExResponse>` + envelopeEnd

func TestTruncatedAnswersCarryEveryUpdateOnceAcrossCalls(t *testing.T) {
	calls := 0
	sim := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(threeUpdates))
	})
	tr := newTruncator(2)
	ask := func(version string) string {
		body := `<WaitForUpdatesEx><_this type="PropertyCollector">pc-1</_this><version>` + version + `</version></WaitForUpdatesEx>`
		rec := httptest.NewRecorder()
		tr.serve(rec, httptest.NewRequest("POST", "/sdk", strings.NewReader(body)), sim, []byte(body))
		return rec.Body.String()
	}
	first := ask("")
	if !strings.Contains(first, "<truncated>true</truncated>") || strings.Count(first, "<objectSet>") != 2 ||
		!strings.Contains(first, "<version>truncated-1</version>") || strings.Contains(first, ">f2<") {
		t.Fatalf("first answer: %s", first)
	}
	second := ask("truncated-1")
	if strings.Contains(second, "<truncated>") || strings.Count(second, "<objectSet>") != 1 ||
		!strings.Contains(second, `<filter type="PropertyFilter">f2</filter>`) || !strings.Contains(second, "<version>-</version>") {
		t.Fatalf("second answer: %s", second)
	}
	if calls != 1 {
		t.Fatalf("the simulator was asked %d times, want 1", calls)
	}
	sets, total, ok := splitUpdates([]byte(threeUpdates))
	if !ok || total != 3 || len(sets) != 2 || string(sets[1].filter) != `<filter type="PropertyFilter">f2</filter>` {
		t.Fatalf("split: %v %d %d", ok, total, len(sets))
	}
}
