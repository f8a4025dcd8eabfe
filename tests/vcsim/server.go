// server.go owns serving a built simulation: the listener, TLS, the simulator's own /sdk handler,
// strict Login, and the test hooks around it (/_stats, /_sessions/expire, the session gate on
// RetrieveProperties, and the route to /_control). It does not build or change the inventory:
// control.go changes it.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type serverConfig struct {
	listen         string
	tls            bool
	username       string
	password       string
	requireSession bool
	pageSize       int
	maxUpdates     int
}

type server struct {
	url   string
	http  *http.Server
	caPEM []byte // PEM of the CA that signed the server certificate; empty without TLS
	stats *stats
	vapi  http.Handler // the Automation REST API (tags.go), under /rest/ and /api/
}

func (s *server) caPool() *x509.CertPool {
	if len(s.caPEM) == 0 {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return pool
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
}

// listen opens addr, or takes over an inherited listening socket given as "fd:N": a test that
// needs the address known before the simulator starts binds it itself and hands it over, so no
// other process can take the port in between.
func listen(addr string) (net.Listener, error) {
	if !strings.HasPrefix(addr, "fd:") {
		return net.Listen("tcp", addr)
	}
	n := strings.TrimPrefix(addr, "fd:")
	fd, err := strconv.Atoi(n)
	if err != nil {
		return nil, fmt.Errorf("bad descriptor %q", n)
	}
	f := os.NewFile(uintptr(fd), "inherited listener")
	defer f.Close()
	return net.FileListener(f)
}

// startServer listens on cfg.listen and serves sim. It registers the simulator's handlers the way
// simulator.Service.NewServer does, but on a listener and http.Server of its own: NewServer binds
// and starts serving at once, which leaves no room to wrap the handler or choose the certificate.
func startServer(sim *simulation, cfg serverConfig) (*server, error) {
	ln, err := listen(cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(host, fmt.Sprint(addr.Port)), Path: "/sdk"}

	s := &server{stats: newStats()}
	s.stats.perf = sim.perf
	s.stats.tasks = sim.tasks
	var leaf tls.Certificate
	if cfg.tls {
		u.Scheme = "https"
		var ca []byte
		leaf, ca, err = newCertificate(addr.IP)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("certificate: %w", err)
		}
		s.caPEM = ca
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"http/1.1"}})
	}
	s.url = u.String()

	svc := sim.model.Service
	// Login accepts only this user: the simulator is lax only while Listen.User is its
	// DefaultLogin (then any non-empty name and password pass), see SessionManager.validLogin.
	svc.Listen = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, User: url.UserPassword(cfg.username, cfg.password)}
	svc.RegisterSDK(simulator.Map)
	mux := svc.ServeMux
	mux.HandleFunc(simulator.Map.Path+"/vimService", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = simulator.Map.Path
		svc.ServeSDK(w, r)
	})
	mux.HandleFunc(simulator.Map.Path+"/vimServiceVersions.xml", svc.ServiceVersions)
	mux.HandleFunc("/about", svc.About)
	sm := simulator.Map.SessionManager()
	sm.ServiceHostName = u.Host
	if cfg.tls {
		der := leaf.Certificate[0]
		sm.TLSCert = func() string { return base64.StdEncoding.EncodeToString(der) }
	}

	internal, err := vim25.NewClient(context.Background(), svc)
	if err != nil {
		ln.Close()
		return nil, err
	}
	gate := &sessionGate{client: internal, username: cfg.username, enabled: cfg.requireSession}
	s.stats.sessions = func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ids, err := gate.sessionIDs(ctx)
		return len(ids), err
	}
	root := http.NewServeMux()
	root.HandleFunc("/_stats", s.stats.serve)
	root.HandleFunc("/_sessions/expire", gate.expireAll)
	root.HandleFunc("/_control", newController(internal, gate).serve)
	if sim.perf != nil {
		root.HandleFunc("/_perf/served", sim.perf.serveServed)
	}
	s.vapi = newVapi(u, cfg.username, cfg.password, s.stats)
	root.Handle("/rest/", s.vapi)
	root.Handle("/api/", s.vapi)
	root.Handle("/", soapHandler(mux, s.stats, gate, newPager(cfg.pageSize), newTruncator(cfg.maxUpdates)))

	s.http = &http.Server{Handler: root, ErrorLog: log.New(ioutil.Discard, "", 0)}
	go func() {
		if err := s.http.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Printf("serve: %v", err)
		}
	}()
	return s, nil
}

// newCertificate makes a CA and a server certificate it signs, valid for 127.0.0.1, ::1,
// localhost and ip. The simulator's own certificate is not used: it is a 1024-bit RSA CA
// certificate served as the end-entity, which webpki (rustls) rejects on both counts.
func newCertificate(ip net.IP) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vcsim test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// stats counts SOAP requests by method and the bytes of their responses.
type stats struct {
	// sessions counts the live sessions (set once serving starts; nil: not known).
	sessions func() (int, error)
	mu       sync.Mutex
	requests map[string]int64
	faults   map[string]int64
	total    int64
	bytes    int64
	byMethod map[string]int64 // response bytes by method
	perf     *perfManager     // its QueryPerf counts; nil in tests that serve without one
	tasks    *taskManager     // its task history counts; nil in tests that serve without one
}

func newStats() *stats {
	return &stats{requests: map[string]int64{}, faults: map[string]int64{}, byMethod: map[string]int64{}}
}

func (s *stats) record(method string, fault bool, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[method]++
	if fault {
		s.faults[method]++
	}
	s.total++
	s.bytes += bytes
	s.byMethod[method] += bytes
}

func (s *stats) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	sessions := -1
	if s.sessions != nil {
		n, err := s.sessions()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sessions = n
	}
	var perf *perfStats
	if s.perf != nil {
		snapshot := s.perf.statsSnapshot()
		perf = &snapshot
	}
	var tasks *taskStats
	if s.tasks != nil {
		snapshot := s.tasks.statsSnapshot()
		tasks = &snapshot
	}
	s.mu.Lock()
	body, err := json.Marshal(struct {
		Requests           map[string]int64 `json:"requests"`
		Faults             map[string]int64 `json:"faults"`
		RequestsTotal      int64            `json:"requests_total"`
		ResponseBytesTotal int64            `json:"response_bytes_total"`
		ResponseBytes      map[string]int64 `json:"response_bytes"`
		Sessions           int              `json:"sessions"`
		Perf               *perfStats       `json:"perf,omitempty"`
		Tasks              *taskStats       `json:"tasks,omitempty"`
	}{s.requests, s.faults, s.total, s.bytes, s.byMethod, sessions, perf, tasks})
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

// countingWriter counts the body bytes written and remembers the status.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *countingWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// soapHandler counts SOAP POSTs to /sdk…, applies the session gate before the simulator, pages
// RetrievePropertiesEx and truncates WaitForUpdatesEx.
func soapHandler(next http.Handler, st *stats, gate *sessionGate, pg *pager, tr *truncator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || len(r.URL.Path) < 4 || r.URL.Path[:4] != simulator.Map.Path {
			next.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		method := soapMethod(body)
		defer logPanic(method)
		cw := &countingWriter{ResponseWriter: w}
		switch {
		case gate.refuses(r, method):
			writeNotAuthenticated(cw)
		case (method == "RetrievePropertiesEx" || method == "RetrieveProperties") && alarmReadFaults.take(body):
			writeAlarmReadFault(cw)
		case method == "ContinueRetrievePropertiesEx" || method == "CancelRetrievePropertiesEx":
			pg.serveContinue(cw, r, method, body)
		case method == "RetrievePropertiesEx" && pg.limit(body) > 0:
			pg.serveRetrieve(cw, r, next, pg.limit(body))
		case method == "WaitForUpdatesEx":
			tr.serve(cw, r, next, body)
		case method == "CreateCollectorForEvents":
			r.Body = ioutil.NopCloser(bytes.NewReader(withEventEx(body)))
			r.ContentLength = -1
			next.ServeHTTP(cw, r)
		default:
			next.ServeHTTP(cw, r)
		}
		st.record(method, cw.status >= 400, cw.bytes)
	})
}

// eventTypeIDElement is an eventTypeId element of an EventFilterSpec, prefixed or not.
var eventTypeIDElement = regexp.MustCompile(`<((?:[A-Za-z_][\w.-]*:)?eventTypeId)>([^<]*)</`)

// withEventEx adds EventEx to a CreateCollectorForEvents filter that names an EventEx by its
// eventTypeId (com.vmware.vc.…). vCenter matches EventEx by eventTypeId; the simulator matches
// type names only, so without this such a filter would never see them. With it the collector
// sees every EventEx, which clients must filter by eventTypeId themselves.
func withEventEx(body []byte) []byte {
	all := eventTypeIDElement.FindAllSubmatchIndex(body, -1)
	for _, m := range all {
		if bytes.Contains(body[m[4]:m[5]], []byte(".")) {
			first := all[0]
			tag := string(body[first[2]:first[3]])
			extra := []byte("<" + tag + ">EventEx</" + tag + ">")
			out := append(append(append([]byte{}, body[:first[0]]...), extra...), body[first[0]:]...)
			return out
		}
	}
	return body
}

// logPanic logs a panic of the simulator's handler with its stack, then lets net/http drop the
// connection as it does for any panic: the server's error log is discarded (TLS handshake noise),
// which would leave a client with an unexplained EOF.
func logPanic(method string) {
	p := recover()
	if p == nil {
		return
	}
	if p != http.ErrAbortHandler {
		log.Printf("panic serving %s: %v\n%s", method, p, debug.Stack())
	}
	panic(http.ErrAbortHandler)
}

// soapMethod is the local name of the first element inside the SOAP Body, "" when there is none.
func soapMethod(body []byte) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if inBody {
			return start.Name.Local
		}
		inBody = start.Name.Local == "Body"
	}
}

// sessionGate makes the session rules vCenter's: the simulator answers RetrieveProperties(Ex) and
// Fetch without a session (it lets them through for its own bootstrapping), vCenter answers
// NotAuthenticated. It also expires sessions on request, so tests can see the exporter log in again.
type sessionGate struct {
	client   *vim25.Client // in-process, on the simulator's internal session
	username string
	enabled  bool
}

// gatedMethods are those the simulator lets through without a session.
var gatedMethods = map[string]bool{
	"RetrieveProperties":           true,
	"RetrievePropertiesEx":         true,
	"ContinueRetrievePropertiesEx": true,
	"CancelRetrievePropertiesEx":   true,
	"Fetch":                        true,
}

func (g *sessionGate) refuses(r *http.Request, method string) bool {
	if !g.enabled || !gatedMethods[method] {
		return false
	}
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return true
	}
	res, err := methods.SessionIsActive(r.Context(), g.client, &types.SessionIsActive{
		This:      *g.client.ServiceContent.SessionManager,
		SessionID: cookie.Value,
		UserName:  g.username,
	})
	return err != nil || !res.Returnval
}

// expireAll terminates every session (POST /_sessions/expire) and answers {"terminated": N}.
func (g *sessionGate) expireAll(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	n, err := g.terminateAll()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"terminated\": %d}\n", n)
}

// terminateAll terminates every session and returns how many there were.
func (g *sessionGate) terminateAll() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := g.sessionIDs(ctx)
	if err == nil && len(ids) > 0 {
		_, err = methods.TerminateSession(ctx, g.client, &types.TerminateSession{
			This:      *g.client.ServiceContent.SessionManager,
			SessionId: ids,
		})
	}
	return len(ids), err
}

func (g *sessionGate) sessionIDs(ctx context.Context) ([]string, error) {
	ref := *g.client.ServiceContent.SessionManager
	res, err := methods.RetrieveProperties(ctx, g.client, &types.RetrieveProperties{
		This: g.client.ServiceContent.PropertyCollector,
		SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{Obj: ref}},
			PropSet:   []types.PropertySpec{{Type: ref.Type, PathSet: []string{"sessionList"}}},
		}},
	})
	if err != nil {
		return nil, err
	}
	var sm mo.SessionManager
	if err := mo.LoadObjectContent(res.Returnval, &sm); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(sm.SessionList))
	for _, s := range sm.SessionList {
		ids = append(ids, s.Key)
	}
	sort.Strings(ids)
	return ids, nil
}

// writeNotAuthenticated answers the fault vCenter answers without a session.
func writeNotAuthenticated(w http.ResponseWriter) {
	writeFault(w, "NotAuthenticated", "The session is not authenticated.",
		`<object type="Folder">group-d1</object><privilegeId>System.View</privilegeId>`)
}
