// truncate.go owns truncated WaitForUpdatesEx answers. The simulator ignores
// options.maxObjectUpdates and answers every pending change at once; vCenter answers at most that
// many object updates (fewer when it caps them itself) with `truncated` set, and the rest on the
// next calls with the version it returned. The truncator cuts the simulator's answer at the XML
// level, keeping its bytes and namespaces, and serves the rest from memory.
package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// filterUpdates is one <filterSet> of an answer: its raw <filter> element and raw <objectSet>s.
type filterUpdates struct {
	filter  []byte
	objects [][]byte
}

// heldUpdates are the object updates of a truncated answer still to send to one collector.
type heldUpdates struct {
	version string // the version the next call must bring
	sets    []filterUpdates
	limit   int
	cookie  string
}

type truncator struct {
	maxUpdates int // the server's own cap; 0: only the client's maxObjectUpdates
	mu         sync.Mutex
	next       int
	held       map[string]*heldUpdates // by PropertyCollector id
}

func newTruncator(maxUpdates int) *truncator {
	return &truncator{maxUpdates: maxUpdates, held: map[string]*heldUpdates{}}
}

// limit is the cap for a WaitForUpdatesEx request body: the smaller of the client's
// options.maxObjectUpdates and the server cap, 0 for none.
func (t *truncator) limit(body []byte) int {
	limit := t.maxUpdates
	if n := elementInt(body, "maxObjectUpdates"); n > 0 && (limit == 0 || n < limit) {
		limit = n
	}
	return limit
}

// serve answers WaitForUpdatesEx: the rest of a truncated answer when the request continues one,
// else the simulator's answer, cut when it holds more than the limit.
func (t *truncator) serve(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte) {
	collector := elementText(body, "_this")
	version := elementText(body, "version")
	t.mu.Lock()
	held, ok := t.held[collector]
	if ok && (held.version != version || held.cookie != sessionCookie(r)) {
		// The client started over (or is another session): what was held is void.
		delete(t.held, collector)
		ok = false
	}
	if ok {
		delete(t.held, collector)
	}
	t.mu.Unlock()
	if ok {
		t.answer(w, r, collector, held.sets, held.limit)
		return
	}
	limit := t.limit(body)
	if limit == 0 {
		next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	sets, total, ok := splitUpdates(rec.Body.Bytes())
	if rec.Code != http.StatusOK || !ok || total <= limit {
		copyRecorded(w, rec)
		return
	}
	t.answer(w, r, collector, sets, limit)
}

// answer sends the first limit object updates of sets and holds the rest for the collector.
func (t *truncator) answer(w http.ResponseWriter, r *http.Request, collector string, sets []filterUpdates, limit int) {
	var send, rest []filterUpdates
	left := limit
	for _, s := range sets {
		switch {
		case left == 0:
			rest = append(rest, s)
		case len(s.objects) <= left:
			send = append(send, s)
			left -= len(s.objects)
		default:
			send = append(send, filterUpdates{filter: s.filter, objects: s.objects[:left]})
			rest = append(rest, filterUpdates{filter: s.filter, objects: s.objects[left:]})
			left = 0
		}
	}
	// "-" is the simulator's own version after the first answer: once nothing is held, the
	// next call goes to the simulator and waits there.
	version := "-"
	if len(rest) > 0 {
		t.mu.Lock()
		t.next++
		version = "truncated-" + strconv.Itoa(t.next)
		t.held[collector] = &heldUpdates{version: version, sets: rest, limit: limit, cookie: sessionCookie(r)}
		t.mu.Unlock()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>%s</version>`, version)
	for _, s := range send {
		b.WriteString("<filterSet>")
		b.Write(s.filter)
		for _, o := range s.objects {
			b.Write(o)
		}
		b.WriteString("</filterSet>")
	}
	if len(rest) > 0 {
		b.WriteString("<truncated>true</truncated>")
	}
	b.WriteString("</returnval></WaitForUpdatesExResponse>")
	writeEnvelope(w, b.String())
}

// splitUpdates returns the filter sets of a WaitForUpdatesEx response
// (Envelope/Body/WaitForUpdatesExResponse/returnval/filterSet/{filter,objectSet}) and how many
// object updates they hold; ok is false when the answer is not such a response.
func splitUpdates(response []byte) (sets []filterUpdates, total int, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(response))
	depth := 0
	start := int64(-1)
	for {
		offset := d.InputOffset()
		tok, err := d.RawToken()
		if err != nil {
			return sets, total, start < 0 && depth == 0
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 5 && e.Name.Local == "filterSet" {
				sets = append(sets, filterUpdates{})
			}
			if depth == 6 && len(sets) > 0 && (e.Name.Local == "filter" || e.Name.Local == "objectSet") {
				start = offset
			}
		case xml.EndElement:
			if depth == 6 && start >= 0 {
				raw := response[start:d.InputOffset()]
				last := &sets[len(sets)-1]
				if e.Name.Local == "filter" {
					last.filter = raw
				} else {
					last.objects = append(last.objects, raw)
					total++
				}
				start = -1
			}
			depth--
		}
	}
}
