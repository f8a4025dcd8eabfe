// Command vcsim is the vCenter simulator that the exporter's integration tests talk to.
//
// It owns: building one scenario (golden, demo, scale, report or backup) inside govmomi's VPX simulator, serving
// it over real SOAP on one address, writing the facts the tests compare the exporter against, and
// the test hooks (/_stats, /_sessions/expire, /_control to change the inventory at run time). It
// does not own anything the exporter computes: the facts are derived from the scenario plan, never
// read back from the simulator.
//
// Life cycle: build the scenario in process (no network), listen, write -cert-out and -facts,
// print one `VCSIM_URL=…` line on stdout, serve until SIGINT/SIGTERM or until stdin reaches EOF
// (so a test process that dies takes the simulator with it).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// options are the command-line flags, validated once by parseOptions.
type options struct {
	listen            string
	tls               bool
	certOut           string
	username          string
	password          string
	scenario          string
	vms               int
	snapshotVMs       int
	datacenters       int
	clusters          int
	hostsPerCluster   int
	standaloneHosts   int
	seed              int64
	now               string
	factsOut          string
	datastoreDir      string
	requireSession    bool
	pageSize          int
	maxUpdates        int
	exitOnStdinEOF    bool
	selfCheck         bool
	maintenanceHosts  int
	disconnectedHosts int
	perf              perfOptions
	taskRetention     time.Duration
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("vcsim", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve on; port 0 picks a free port")
	fs.BoolVar(&o.tls, "tls", true, "serve https with a certificate made at start (see -cert-out); -tls=false serves http")
	fs.StringVar(&o.certOut, "cert-out", "", "write the PEM CA certificate that signed the server certificate to this file")
	fs.StringVar(&o.username, "username", "user", "the only user name Login accepts")
	fs.StringVar(&o.password, "password", "pass", "the only password Login accepts")
	fs.StringVar(&o.scenario, "scenario", "golden", "inventory to build: golden, demo, hosts, pitfalls, scale, report or backup")
	fs.IntVar(&o.vms, "vms", 1000, "scale: total number of VMs, templates included")
	fs.IntVar(&o.snapshotVMs, "snapshot-vms", 150, "scale: number of VMs that get snapshot trees")
	fs.IntVar(&o.datacenters, "datacenters", 2, "scale: number of datacenters")
	fs.IntVar(&o.clusters, "clusters", 2, "scale: clusters per datacenter")
	fs.IntVar(&o.hostsPerCluster, "hosts-per-cluster", 4, "scale: hosts in each cluster")
	fs.IntVar(&o.standaloneHosts, "standalone-hosts", 1, "scale: standalone hosts per datacenter")
	fs.IntVar(&o.maintenanceHosts, "maintenance-hosts", 0, "scale: hosts put in maintenance mode, spread over all hosts")
	fs.IntVar(&o.disconnectedHosts, "disconnected-hosts", 0, "scale: hosts left disconnected, spread over all hosts")
	var shift int
	fs.IntVar(&shift, "perf-counter-shift", 0, "add this to every performance counter id (ids differ between vCenters)")
	fs.StringVar(&o.perf.dropCounter, "perf-drop-counter", "", "leave this counter (group.name.rollup, e.g. net.droppedRx.summation) out of the catalogue")
	fs.IntVar(&o.perf.maxQueryMetrics, "perf-max-query-metrics", 0, "set config.vpxd.stats.maxQueryMetrics and enforce it in QueryPerf (0: setting absent, 64 enforced as vCenter does; -1: no limit)")
	perfWrapper := fs.Bool("perf-wrapper", true, "answer QueryAvailablePerfMetric and QueryPerf for hosts as vCenter does; false leaves the simulator's PerformanceManager as it ships (answers only recorded)")
	fs.Int64Var(&o.seed, "seed", 1, "scale: seed of the random shapes, sizes and statuses")
	fs.StringVar(&o.now, "now", "", "demo, pitfalls, scale, report, backup: RFC 3339 time that snapshot ages are relative to (default: the current time)")
	fs.StringVar(&o.factsOut, "facts", "", "write the facts JSON to this file before printing VCSIM_URL")
	fs.StringVar(&o.datastoreDir, "datastore-dir", "", "directory under which vcsim-<pid>/ holds the simulator's datastore files (default: /dev/shm when writable, else $TMPDIR)")
	fs.BoolVar(&o.requireSession, "require-session", true, "answer RetrieveProperties(Ex)/Fetch without a live session with NotAuthenticated, as vCenter does")
	fs.IntVar(&o.pageSize, "page-size", 0, "cap RetrievePropertiesEx pages at this many objects (0: only the client's maxObjects)")
	fs.IntVar(&o.maxUpdates, "max-object-updates", 0, "cap WaitForUpdatesEx answers at this many object updates, the rest following as truncated answers (0: only the client's maxObjectUpdates)")
	fs.BoolVar(&o.exitOnStdinEOF, "exit-on-stdin-eof", true, "exit when stdin is closed; use -exit-on-stdin-eof=false when stdin is /dev/null")
	fs.DurationVar(&o.taskRetention, "task-retention", 0, "remove a Task object this long after it ended, as vCenter does (its info stays in the task history); 0 keeps them, as the simulator does")
	fs.BoolVar(&o.selfCheck, "self-check", false, "after serving starts, compare the facts with what the PropertyCollector returns over the network; exit 1 on a mismatch")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.perf.counterShift = int32(shift)
	o.perf.shipped = !*perfWrapper
	return o, o.validate()
}

func (o options) validate() error {
	switch o.scenario {
	case "golden", "demo", "hosts", "pitfalls", "scale", "report", "backup":
	default:
		return fmt.Errorf("-scenario %q: want golden, demo, hosts, pitfalls, scale, report or backup", o.scenario)
	}
	if o.maintenanceHosts < 0 || o.disconnectedHosts < 0 {
		return errors.New("-maintenance-hosts and -disconnected-hosts must be >= 0")
	}
	if o.perf.counterShift < 0 || o.perf.counterShift > 1_000_000 {
		return fmt.Errorf("-perf-counter-shift %d: want 0..1000000", o.perf.counterShift)
	}
	if o.perf.shipped && o.perf.maxQueryMetrics != 0 {
		return errors.New("-perf-max-query-metrics needs -perf-wrapper: the shipped PerformanceManager enforces no limit")
	}
	if o.perf.maxQueryMetrics < -1 {
		return fmt.Errorf("-perf-max-query-metrics %d: want -1, 0 or a positive limit", o.perf.maxQueryMetrics)
	}
	if o.username == "" || o.password == "" {
		return errors.New("-username and -password must not be empty")
	}
	if o.vms < 1 {
		return fmt.Errorf("-vms %d: want at least 1", o.vms)
	}
	if o.snapshotVMs < 0 || o.snapshotVMs > o.vms {
		return fmt.Errorf("-snapshot-vms %d: want 0..%d (-vms)", o.snapshotVMs, o.vms)
	}
	if o.datacenters < 1 || o.clusters < 0 || o.standaloneHosts < 0 || o.clusters+o.standaloneHosts < 1 {
		return errors.New("-datacenters must be >= 1 and each datacenter needs a cluster or a standalone host")
	}
	if o.clusters > 0 && o.hostsPerCluster < 1 {
		return errors.New("-hosts-per-cluster must be >= 1")
	}
	if o.maxUpdates < 0 {
		return fmt.Errorf("-max-object-updates %d: want >= 0", o.maxUpdates)
	}
	if o.taskRetention < 0 {
		return fmt.Errorf("-task-retention %v: want >= 0", o.taskRetention)
	}
	if o.pageSize < 0 {
		return fmt.Errorf("-page-size %d: want >= 0", o.pageSize)
	}
	if o.now != "" {
		if _, err := time.Parse(time.RFC3339, o.now); err != nil {
			return fmt.Errorf("-now %q: %v", o.now, err)
		}
	}
	return nil
}

// referenceNow is the time demo and scale ages are measured back from.
func (o options) referenceNow() time.Time {
	if o.now == "" {
		return time.Now().UTC().Truncate(time.Second)
	}
	t, _ := time.Parse(time.RFC3339, o.now)
	return t.UTC()
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetOutput(quietSimulatorLog{os.Stderr})
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Printf("vcsim: %v", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		log.Printf("vcsim: %v", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	removeDatastoreDir, err := useDatastoreDir(opts.datastoreDir)
	if err != nil {
		return err
	}
	defer removeDatastoreDir()

	start := time.Now()
	sim, err := buildScenario(opts)
	if err != nil {
		return fmt.Errorf("scenario %s: %w", opts.scenario, err)
	}
	defer sim.model.Remove()
	log.Printf("scenario=%s vms=%d snapshots=%d hosts=%d build_seconds=%.2f", opts.scenario,
		len(sim.facts.VMs), sim.facts.snapshotCount(), len(sim.facts.Hosts), time.Since(start).Seconds())

	srv, err := startServer(sim, serverConfig{
		listen:         opts.listen,
		tls:            opts.tls,
		username:       opts.username,
		password:       opts.password,
		requireSession: opts.requireSession,
		pageSize:       opts.pageSize,
		maxUpdates:     opts.maxUpdates,
	})
	if err != nil {
		return err
	}
	defer srv.close()

	tags, err := applyTags(srv.vapi, opts.username, opts.password, tagsFor(opts.scenario, sim.facts.VMs), sim.facts.VMs)
	if err != nil {
		return fmt.Errorf("scenario %s: tags: %w", opts.scenario, err)
	}
	sim.facts.Tags = tags
	sim.facts.URL = srv.url
	sim.facts.Username = opts.username
	sim.facts.Password = opts.password
	if err := writeOutputs(opts, srv, sim.facts); err != nil {
		return err
	}

	fmt.Printf("VCSIM_URL=%s\n", srv.url)
	_ = os.Stdout.Sync()
	log.Printf("serving url=%s", srv.url)

	if opts.selfCheck {
		if err := verifyServer(context.Background(), srv.url, srv.caPool(), sim.facts, nil); err != nil {
			return fmt.Errorf("self-check: %w", err)
		}
		log.Printf("self-check passed vms=%d", len(sim.facts.VMs))
	}

	reason := waitForStop(opts.exitOnStdinEOF)
	log.Printf("stopping: %s", reason)
	return nil
}

func writeOutputs(opts options, srv *server, facts *Facts) error {
	if opts.certOut != "" {
		if !opts.tls {
			return errors.New("-cert-out needs -tls")
		}
		if err := writeFileAtomic(opts.certOut, srv.caPEM); err != nil {
			return fmt.Errorf("-cert-out: %w", err)
		}
	}
	if opts.factsOut != "" {
		data, err := facts.marshal()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(opts.factsOut, data); err != nil {
			return fmt.Errorf("-facts: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := ioutil.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// quietSimulatorLog drops the simulator's "*types.FileAlreadyExists: …" lines: it logs one each
// time CreateSnapshot_Task probes for a free vm-SnapshotN.vmsn name, which is expected here.
type quietSimulatorLog struct{ w io.Writer }

func (q quietSimulatorLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("*types.FileAlreadyExists: ")) {
		return len(p), nil
	}
	return q.w.Write(p)
}

// waitForStop blocks until SIGINT/SIGTERM, or EOF on stdin when watchStdin is set.
func waitForStop(watchStdin bool) string {
	stop := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { stop <- "signal " + (<-signals).String() }()
	if watchStdin {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			stop <- "stdin closed"
		}()
	}
	return <-stop
}

// useDatastoreDir makes this process's directory for the simulator's datastores (the simulator
// makes them with ioutil.TempDir("", …), so TMPDIR is pointed there) and returns its removal.
// The directory is vcsim-<pid> under dir, or under /dev/shm when dir is empty and /dev/shm is
// writable (the simulator creates a handful of empty files per VM and per snapshot; on ext4 that
// alone made 8,000 VMs take 19 s instead of 8 s), else under the system temp directory. Directories
// of vcsim processes that are gone (killed with SIGKILL) are removed on the way.
func useDatastoreDir(dir string) (func(), error) {
	if dir == "" {
		dir = os.TempDir()
		if f, err := ioutil.TempFile("/dev/shm", "vcsim-probe-"); err == nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			dir = "/dev/shm"
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("-datastore-dir %q: not a directory", dir)
	}
	removeStaleDatastoreDirs(dir)
	own := filepath.Join(dir, fmt.Sprintf("vcsim-%d", os.Getpid()))
	if err := os.MkdirAll(own, 0o700); err != nil {
		return nil, err
	}
	if err := os.Setenv("TMPDIR", own); err != nil {
		return nil, err
	}
	return func() { _ = os.RemoveAll(own) }, nil
}

var datastoreDirName = regexp.MustCompile(`^vcsim-(\d+)$`)

// removeStaleDatastoreDirs removes dir/vcsim-<pid> of processes that no longer exist.
func removeStaleDatastoreDirs(dir string) {
	entries, err := ioutil.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := datastoreDirName.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", m[1])); os.IsNotExist(err) {
			log.Printf("removing datastore directory of gone process %s: %s", m[1], filepath.Join(dir, e.Name()))
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
