// paging.go owns RetrievePropertiesEx paging. The simulator ignores options.maxObjects, never
// returns a token and has no ContinueRetrievePropertiesEx; vCenter returns at most maxObjects
// objects (fewer when it caps pages itself) and a token for the rest. The pager cuts the
// simulator's answer into such pages at the XML level, keeping its bytes and namespaces as they are.
package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/vmware/govmomi/vim25/soap"
)

// maxPendingResults bounds the results kept for tokens that clients never continue.
const maxPendingResults = 64

type pendingResult struct {
	objects [][]byte // raw <objects> elements still to send
	limit   int
	cookie  string
}

type pager struct {
	pageSize int // the server's own page cap; 0: only the client's maxObjects
	mu       sync.Mutex
	next     int
	pending  map[string]*pendingResult
	order    []string // tokens, oldest first
}

func newPager(pageSize int) *pager {
	return &pager{pageSize: pageSize, pending: map[string]*pendingResult{}}
}

// limit is the page size for a RetrievePropertiesEx request body: the smaller of the client's
// options.maxObjects and the server cap, 0 for no paging.
func (p *pager) limit(body []byte) int {
	limit := p.pageSize
	if n := elementInt(body, "maxObjects"); n > 0 && (limit == 0 || n < limit) {
		limit = n
	}
	return limit
}

// elementInt is the integer content of the first element with the given local name, 0 if none.
func elementInt(body []byte, local string) int {
	s := elementText(body, local)
	n, _ := strconv.Atoi(s)
	return n
}

func elementText(body []byte, local string) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if start, ok := tok.(xml.StartElement); ok && start.Name.Local == local {
			var text string
			if err := d.DecodeElement(&text, &start); err != nil {
				return ""
			}
			return text
		}
	}
}

// serveRetrieve runs RetrievePropertiesEx on the simulator and answers its first page.
func (p *pager) serveRetrieve(w http.ResponseWriter, r *http.Request, next http.Handler, limit int) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	objects, ok := splitObjects(rec.Body.Bytes())
	if rec.Code != http.StatusOK || !ok || len(objects) <= limit {
		copyRecorded(w, rec)
		return
	}
	token := p.keep(&pendingResult{objects: objects[limit:], limit: limit, cookie: sessionCookie(r)})
	writePage(w, "RetrievePropertiesExResponse", objects[:limit], token)
}

// serveContinue answers ContinueRetrievePropertiesEx and CancelRetrievePropertiesEx.
func (p *pager) serveContinue(w http.ResponseWriter, r *http.Request, method string, body []byte) {
	token := elementText(body, "token")
	p.mu.Lock()
	res, ok := p.pending[token]
	if ok && res.cookie != sessionCookie(r) {
		ok = false
	}
	if ok {
		p.drop(token)
	}
	p.mu.Unlock()
	if !ok {
		writeFault(w, "InvalidArgument", "A specified parameter was not correct: token", "<invalidProperty>token</invalidProperty>")
		return
	}
	if method == "CancelRetrievePropertiesEx" {
		writeEnvelope(w, `<CancelRetrievePropertiesExResponse xmlns="urn:vim25"></CancelRetrievePropertiesExResponse>`)
		return
	}
	page, rest := res.objects, [][]byte(nil)
	if len(page) > res.limit {
		page, rest = page[:res.limit], page[res.limit:]
	}
	next := ""
	if len(rest) > 0 {
		next = p.keep(&pendingResult{objects: rest, limit: res.limit, cookie: res.cookie})
	}
	writePage(w, "ContinueRetrievePropertiesExResponse", page, next)
}

func (p *pager) keep(res *pendingResult) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	token := strconv.Itoa(p.next)
	p.pending[token] = res
	p.order = append(p.order, token)
	for len(p.order) > maxPendingResults {
		p.drop(p.order[0])
	}
	return token
}

// drop forgets token; p.mu must be held.
func (p *pager) drop(token string) {
	delete(p.pending, token)
	for i, t := range p.order {
		if t == token {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		return c.Value
	}
	return ""
}

// splitObjects returns the raw <objects> elements of a RetrievePropertiesEx response
// (Envelope/Body/RetrievePropertiesExResponse/returnval/objects).
func splitObjects(response []byte) ([][]byte, bool) {
	d := xml.NewDecoder(bytes.NewReader(response))
	var objects [][]byte
	depth := 0
	start := int64(-1)
	for {
		offset := d.InputOffset()
		tok, err := d.RawToken()
		if err != nil {
			return objects, start < 0 && depth == 0
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 5 && t.Name.Local == "objects" {
				start = offset
			}
		case xml.EndElement:
			if depth == 5 && start >= 0 {
				objects = append(objects, response[start:d.InputOffset()])
				start = -1
			}
			depth--
		}
	}
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

const envelopeStart = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`

const envelopeEnd = `</soapenv:Body></soapenv:Envelope>`

// writeEnvelope answers 200 with body inside the simulator's envelope (same prefixes).
func writeEnvelope(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(envelopeStart + body + envelopeEnd))
}

func writePage(w http.ResponseWriter, response string, objects [][]byte, token string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<%s xmlns="urn:vim25"><returnval>`, response)
	for _, o := range objects {
		b.Write(o)
	}
	if token != "" {
		fmt.Fprintf(&b, "<token>%s</token>", token)
	}
	fmt.Fprintf(&b, "</returnval></%s>", response)
	writeEnvelope(w, b.String())
}

// writeFault answers 500 with a vim25 fault of the given type, as the simulator writes faults.
func writeFault(w http.ResponseWriter, kind, message, detail string) {
	var msg bytes.Buffer
	_ = xml.EscapeText(&msg, []byte(message))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>%s`,
		envelopeStart, msg.String(), kind, kind, detail, kind, envelopeEnd)
}
