#!/usr/bin/env python3
"""`make bench`: the exporter's performance figures at 5,000 and 40,000 VMs, as ratios against
baselines measured in the same run on the same simulator.

For each size it starts the vCenter simulator (tests/vcsim, scale scenario, a third of the VMs
with snapshot trees) and measures, in this order:

1. cold start: the wire-only client (examples/wire_only.rs: the exporter's exact SOAP
   requests, answers read and discarded), the floor (wire_only floor: one RetrievePropertiesEx
   of the same VM property paths for all VMs, read and discarded), then the exporter, in turn,
   BENCH_COLD_RUNS times each. From process start to complete data, the exporter/wire ratio of
   the medians is the exporter's overhead (the simulator's own cost is in both), and the
   exporter/floor ratio what the protocol and the exporter cost over the least any client
   could ask; BENCH_ALTERNATIVES=1 adds the wire-only client of other protocols;
2. scrape latency with the mirror warm: 200 gzip scrapes of /metrics, p50/p99; then the first
   scrape after a one-VM change (a snapshot renamed through POST /_control rename_snapshot, the
   first scrape showing the new name), median of BENCH_ONE_VM_CHANGES, over the warm p50, and
   the collectors' time of that page's render (the exporter renders a change as it comes,
   ahead of the scrape: that is the change's cost);
3. the exporter's peak RSS (VmHWM);
4. steady-state SOAP traffic (the simulator's /_stats) over a minute with no change, and after
   a share of the VMs changed a snapshot at once (POST /_control churn: 1 %, 0.1 % at 40,000
   VMs, see CHURN) until the mirror has every change (at least a minute), with the full
   retrievals seen in it;
5. (both sizes) growth: the 40k/5k ratios of cold time and RSS;
6. (at 5,000 VMs) the Python vmware-exporter 0.18.4, cold and warm scrape time and peak RSS;
7. (at 40,000 VMs) what the backup checks add (examples/backup_cost.rs): the bytes of their VM
   and datastore properties, of config.extraConfig for Windows guests and for all VMs, and of
   the event follower (the history read back, an idle round, a new event), with the CPU and
   time the simulator spent on each, in a table of its own.

It prints one table and writes target/bench/results.{json,md}. It never fails on a figure: a
missed target is marked in the table, not an exit status. It exits non-zero only when something
could not be measured at all (a process did not start, an answer was wrong).

Stdlib only. Environment: BENCH_SIZES (default "5000,40000"), BENCH_COLD_RUNS (3),
BENCH_COLD_ONLY (1: the cold start only), BENCH_ALTERNATIVES (1: other cold sequences too),
BENCH_SCRAPES (200), BENCH_STEADY_SECONDS (60), BENCH_PEER_SIZE (5000),
BENCH_PEER_WARM_SCRAPES (5), BENCH_CHURN ("5000=0.002,40000=0.0001"), BENCH_CHURN_MAX_SECONDS
(600), BENCH_CHURN_LARGER (10: the second churn changes this many times the VMs of the first),
BENCH_REQUEST_TIMEOUT (the exporter's request_timeout; unset: its default, 60s, so a slow
update wait meets the heartbeat of issue 19 as it would in the field), BENCH_LOG_LEVEL (info),
BENCH_BACKUP_COST_SIZE (40000: the size the backup checks' cost is measured at; 0: never),
BENCH_BACKUP_COST_ONLY (1: that measurement only), BENCH_ONE_VM_CHANGES (5).
The exporter inherits the environment (MIMALLOC_* options, for instance).

Before each measurement the simulator is left to finish what it still works on (Simulator.settle),
so no measurement pays for the previous one.
"""

import gzip
import http.client
import json
import math
import os
import platform
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "bench"
VCSIM = ROOT / "tests" / "vcsim" / "vcsim"
# BENCH_EXPORTER: another build of the exporter, to compare two (the default is make bench's).
EXPORTER = Path(os.environ.get("BENCH_EXPORTER",
                               ROOT / "target" / "release" / "vsphere_backup_exporter"))
WIRE_ONLY = ROOT / "target" / "release" / "examples" / "wire_only"
BACKUP_COST = ROOT / "target" / "release" / "examples" / "backup_cost"
PEER = WORK / "venv" / "bin" / "vmware_exporter"

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "5000,40000").split(",") if s.strip()]
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "3"))
# Wire-only runs of other cold sequences, for comparison (wire_only.rs modes).
ALTERNATIVES = (["two-collectors", "unpaged", "overlap"] if os.environ.get("BENCH_ALTERNATIVES") == "1"
                else [])
# Only the cold start (items 1 and 3 of it): a quick look, not the whole table.
COLD_ONLY = os.environ.get("BENCH_COLD_ONLY") == "1"
BACKUP_COST_SIZE = int(os.environ.get("BENCH_BACKUP_COST_SIZE", "40000"))
BACKUP_COST_ONLY = os.environ.get("BENCH_BACKUP_COST_ONLY") == "1"
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "200"))
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "60"))
PEER_SIZE = int(os.environ.get("BENCH_PEER_SIZE", "5000"))
PEER_WARM_SCRAPES = int(os.environ.get("BENCH_PEER_WARM_SCRAPES", "5"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")
REQUEST_TIMEOUT = os.environ.get("BENCH_REQUEST_TIMEOUT", "")
CHURN_LARGER = float(os.environ.get("BENCH_CHURN_LARGER", "10"))
CHURN_MAX_SECONDS = float(os.environ.get("BENCH_CHURN_MAX_SECONDS", "600"))
# The fraction of VMs whose snapshots change at once, per size. 1 % is the figure, but
# the simulator needs CPU per changed object and filter to answer the WaitForUpdatesEx (govmomi
# re-collects every filter for every change; the mirror has three since the backup checks), and
# before the heartbeat of issue 19 the mirror took an answer later than its wait plus grace
# (38 s) for a hung vCenter and retrieved everything again: 1 % at 5,000 VMs (50) and 0.1 % at
# 40,000 (40) did so in the run of 2026-11-30. So 10 VMs at 5,000 and 4 at 40,000, then a
# second churn CHURN_LARGER times as large (100 and 40), which the simulator answers later than
# that bound; traffic and CPU are compared per changed VM and extrapolated to 1 % a minute.
CHURN = {int(k): float(v) for k, v in (
    item.split("=") for item in os.environ.get("BENCH_CHURN", "5000=0.002,40000=0.0001").split(",")
    if item.strip())}
USER, PASSWORD = "user", "pass"
# Fixed "now" and seed: the same inventory on every run.
SIM_NOW = "2026-11-23T10:00:00Z"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets of the issue.
TARGETS = {
    "overhead": 1.15,
    "floor": 1.5,
    "p99_ms": {5000: 50.0, 40000: 250.0},
    "rss_mb_40k": 300.0,
    "one_vm_change": 5.0,
    "peer_cold": 3.0,
    "peer_warm": 50.0,
}


def log(*args):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


class Failure(Exception):
    """Something could not be measured."""


# --- processes -------------------------------------------------------------------------------


def proc_status(pid):
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User + system CPU seconds a process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_bind(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_port(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"process {proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.005)
    raise Failure(f"nothing listens on {port} after {timeout} s")


def stop(proc, timeout=30):
    """SIGTERM and wait (the exporter logs out, the simulator cleans up its datastore)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- HTTP ------------------------------------------------------------------------------------


def get(port, path, headers=None, timeout=900):
    """One GET on a fresh connection: (status, headers, body, seconds to the last byte)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), body, time.perf_counter() - started
    finally:
        conn.close()


def text_of(headers, body):
    if headers.get("Content-Encoding", headers.get("content-encoding")) == "gzip":
        body = gzip.decompress(body)
    return body.decode("utf-8", "replace")


def metric(text, name, labels=""):
    """The value of the first sample of `name` whose label set contains `labels`."""
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def sync_seconds(text):
    """How long the mirror's last full retrieval took (first WaitForUpdatesEx to complete)."""
    return metric(text, "vsphere_source_sync_duration_seconds", 'source="inventory"')


GZIP_HEADERS = {"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "900"}


# --- the simulator ---------------------------------------------------------------------------


class Simulator:
    def __init__(self, vms, port):
        self.vms = vms
        self.snapshot_vms = math.ceil(vms / 3)
        self.dir = WORK / f"{vms}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.facts = self.dir / "facts.json"
        self.ca = self.dir / "vcsim.pem"
        out = self.dir / "vcsim.out"
        out.unlink(missing_ok=True)
        args = [
            str(VCSIM), "-scenario", "scale", "-vms", str(vms),
            "-snapshot-vms", str(self.snapshot_vms), "-seed", "1", "-now", SIM_NOW,
            "-listen", f"127.0.0.1:{port}", "-facts", str(self.facts), "-cert-out", str(self.ca),
        ]
        started = time.monotonic()
        # stdin stays a pipe we hold: the simulator exits when it closes, with us if need be.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=out.open("w"),
            stderr=(self.dir / "vcsim.log").open("w"),
        )
        while True:
            if self.proc.poll() is not None:
                raise Failure(f"vcsim exited with {self.proc.returncode}; see {self.dir}/vcsim.log")
            m = re.search(r"^VCSIM_URL=(\S+)", out.read_text(), re.M)
            if m:
                break
            time.sleep(0.1)
        self.start_seconds = time.monotonic() - started
        self.url = m.group(1)
        self.hostport = self.url.split("//", 1)[1].split("/", 1)[0]
        self.ssl = ssl.create_default_context(cafile=str(self.ca))
        log(f"simulator {vms} VMs ({self.snapshot_vms} with snapshots) at {self.url} "
            f"after {self.start_seconds:.1f} s")

    def _conn(self):
        host, port = self.hostport.rsplit(":", 1)
        return http.client.HTTPSConnection(host, int(port), context=self.ssl, timeout=600)

    def stats(self):
        conn = self._conn()
        try:
            conn.request("GET", "/_stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def control(self, op):
        """POST /_control; None when the simulator has no such hook (yet)."""
        conn = self._conn()
        try:
            conn.request("POST", "/_control", body=json.dumps(op),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            if response.status == 404:
                return None
            if response.status != 200:
                raise Failure(f"/_control {op}: HTTP {response.status}: {body[:300]}")
            try:
                return json.loads(body)
            except ValueError:
                return {"answer": body.strip()}
        finally:
            conn.close()

    def settle(self, limit=1800):
        """Waits until the simulator is idle (under 10 % of a CPU for half a second): what it
        still works on would slow the next measurement down."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            before = cpu_seconds(self.proc.pid)
            time.sleep(0.5)
            if cpu_seconds(self.proc.pid) - before < 0.05:
                return time.monotonic() - started
        log(f"  the simulator is still busy after {limit} s")
        return time.monotonic() - started

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                stop(self.proc)


def delta(before, after):
    """Requests (by method) and bytes between two /_stats answers."""
    methods = {
        k: v - before["requests"].get(k, 0)
        for k, v in after["requests"].items()
        if v - before["requests"].get(k, 0)
    }
    return {
        "requests": after["requests_total"] - before["requests_total"],
        "bytes": after["response_bytes_total"] - before["response_bytes_total"],
        "by_method": methods,
    }


# --- the wire-only client and the exporter ---------------------------------------------------


def wire_only(sim, mode="cold"):
    before = sim.stats()
    sim_cpu = cpu_seconds(sim.proc.pid)
    usage = os.times()
    started_unix = time.time()
    out = subprocess.run(
        [str(WIRE_ONLY), sim.url, USER, PASSWORD, str(sim.ca), str(sim.facts), mode],
        capture_output=True, text=True, timeout=1800,
    )
    if out.returncode != 0:
        raise Failure(f"wire_only failed: {out.stderr.strip()[-2000:]}")
    after = os.times()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_seconds"] = (after.children_user - usage.children_user) + (
        after.children_system - usage.children_system)
    result["simulator_cpu_seconds"] = cpu_seconds(sim.proc.pid) - sim_cpu
    result["stats"] = delta(before, sim.stats())
    # From process start to the last byte, as the exporter's start to complete data.
    result["start_to_data_seconds"] = result["done_unix"] - started_unix
    log(f"  wire-only {mode}: {result['start_to_data_seconds']:.2f} s from start, window "
        f"{result['window_seconds']:.2f} s ({result['window_response_bytes'] / 1e6:.1f} MB, "
        f"{result['window_requests']} requests)")
    return result


def backup_cost(sim):
    """examples/backup_cost.rs against the simulator: one JSON object of bytes and counts, with
    the simulator's CPU and the wall time of the whole measurement."""
    sim.settle()
    log("  backup checks' cost (examples/backup_cost.rs)")
    sim_cpu = cpu_seconds(sim.proc.pid)
    before = sim.stats()
    started = time.monotonic()
    out = subprocess.run(
        [str(BACKUP_COST), sim.url, USER, PASSWORD, str(sim.ca)],
        capture_output=True, text=True, timeout=3600,
    )
    if out.returncode != 0:
        raise Failure(f"backup_cost failed: {out.stderr.strip()[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = time.monotonic() - started
    result["simulator_cpu_seconds"] = cpu_seconds(sim.proc.pid) - sim_cpu
    result["stats"] = delta(before, sim.stats())
    log(f"  backup checks: +{result['vm_backup_paths_added_bytes'] / 1e6:.1f} MB of VM "
        f"properties, {result['windows_vms']} Windows guests' extraConfig "
        f"{result['extra_config_windows_only_bytes'] / 1e6:.1f} MB, history "
        f"{result['history_bytes'] / 1e6:.2f} MB ({result['seconds']:.0f} s)")
    return result


class Exporter:
    """The exporter against one simulator, started cold and followed by a first scrape."""

    def __init__(self, sim, tag, extra_env=None):
        self.sim = sim
        self.port = free_port()
        self.log = sim.dir / f"exporter-{tag}.log"
        config = sim.dir / "exporter.yml"
        config.write_text(
            "vcenters:\n"
            "  - name: bench\n"
            f"    url: {sim.url}\n"
            f"    username: {USER}\n"
            "    password_env: BENCH_VCENTER_PASSWORD\n"
            "    tls:\n"
            f"      ca_file: {sim.ca}\n"
            # The simulator answers the WaitForUpdatesEx after 40 changed VMs at 40,000 only
            # after ~100 s of its own work (govmomi re-collects every filter for every change):
            # the exporter's default timeouts meet it, the heartbeat keeps the mirror (issue 19).
            + (f"    request_timeout: {REQUEST_TIMEOUT}\n" if REQUEST_TIMEOUT else "")
        )
        env = dict(os.environ, BENCH_VCENTER_PASSWORD=PASSWORD, **(extra_env or {}))
        before = sim.stats()
        sim_cpu = cpu_seconds(sim.proc.pid)
        started = time.monotonic()
        started_unix = time.time()
        # The perf source (host I/O counters, bench/hostio.py) is off: its requests would share
        # the cold start's window with the inventory's, which the baselines do not send.
        self.proc = subprocess.Popen(
            [str(EXPORTER), f"--config.file={config}", "--no-collector.hostio",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--log.level={LOG_LEVEL}"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc, 30)
        status, headers, body, _ = get(self.port, "/metrics", GZIP_HEADERS)
        self.cold_scrape_seconds = time.monotonic() - started
        text = text_of(headers, body)
        if status != 200 or metric(text, "vsphere_up", 'vcenter="bench"') != 1:
            raise Failure(f"the exporter's first scrape is not up (HTTP {status}); see {self.log}")
        self.inventory_seconds = sync_seconds(text)
        # The mirror publishes its first sync with the time it completed.
        self.start_to_data_seconds = metric(
            text, "vsphere_source_last_update_timestamp_seconds", 'source="inventory"'
        ) - started_unix
        self.cold_stats = delta(before, sim.stats())
        self.cold_simulator_cpu = cpu_seconds(sim.proc.pid) - sim_cpu
        self.cold_cpu = cpu_seconds(self.proc.pid)
        self.cold_rss = proc_status(self.proc.pid)
        self.page_text_bytes = len(text.encode())
        self.page_gzip_bytes = len(body)
        log(f"  exporter: complete data {self.start_to_data_seconds:.2f} s after start "
            f"(window {self.inventory_seconds:.2f} s), first scrape "
            f"{self.cold_scrape_seconds:.2f} s after start, VmHWM "
            f"{self.cold_rss.get('VmHWM', 0) / 2**20:.0f} MiB, CPU {self.cold_cpu:.2f} s")

    def syncs(self):
        """'mirror in sync' lines logged so far (each is a full retrieval)."""
        return len(re.findall(r'msg="mirror in sync', self.log.read_text()))

    def slow_waits(self):
        """Update waits answered after their bound while vCenter answered the heartbeat."""
        _, headers, body, _ = get(self.port, "/metrics", GZIP_HEADERS)
        return metric(text_of(headers, body), "vsphere_slow_update_waits_total",
                      'vcenter="bench"') or 0

    def inventory_metric(self):
        _, headers, body, _ = get(self.port, "/metrics", GZIP_HEADERS)
        return sync_seconds(text_of(headers, body))

    def stop(self):
        stop(self.proc)
        self.stopped = time.monotonic()


# A stopped exporter's last WaitForUpdatesEx is answered (and counted by /_stats) only when its
# maxWaitSeconds run out: traffic windows start this long after the last stop.
WAIT_DRAIN_SECONDS = 32


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def scrape_latency(exporter, n):
    """n scrapes on one kept-alive connection, as Prometheus does, to the last byte."""
    conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=60)
    times = []
    headers = {"Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "30"}
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200:
                raise Failure(f"scrape: HTTP {response.status}")
    finally:
        conn.close()
    return {
        "n": n,
        "p50_ms": percentile(times, 50) * 1e3,
        "p99_ms": percentile(times, 99) * 1e3,
        "max_ms": max(times) * 1e3,
    }


SNAPSHOT_LINES = re.compile(rb"^vsphere_vm_snapshot.*$", re.M)
SNAPSHOT_COUNTS = re.compile(rb"^vsphere_vm_snapshots\{[^}]*\} ([0-9.e+]+)$", re.M)


def page_facts(exporter):
    """(latency s, hash of the snapshot series, sum of vsphere_vm_snapshots) of one gzip scrape.
    The snapshot series change only with the inventory (the status lines change with every
    confirming wait), so a scrape that sees them change is the one that rendered them anew."""
    _, headers, body, took = get(exporter.port, "/metrics", GZIP_HEADERS)
    if headers.get("Content-Encoding", headers.get("content-encoding")) == "gzip":
        body = gzip.decompress(body)
    series = hash(b"\n".join(SNAPSHOT_LINES.findall(body)))
    snapshots = sum(float(v) for v in SNAPSHOT_COUNTS.findall(body))
    return took, series, round(snapshots)


def traffic_window(sim, exporter, seconds, churn, max_seconds):
    # churn: the fraction of VMs to change at the start, or None.
    """SOAP traffic from now for `seconds`. With churn, 1 % of the VMs change a snapshot at the
    start, and the window lasts until the mirror has every change (the sum of
    vsphere_vm_snapshots reaches what the churn made it), at least `seconds`, at most
    `max_seconds`: the traffic one churn causes, which is the traffic per minute at one churn a
    minute. Scrapes every few seconds show when the changes arrived and what a scrape that
    renders anew costs."""
    syncs = exporter.syncs()
    slow = exporter.slow_waits()
    inventory = exporter.inventory_metric()
    interval = max(2.0, exporter.page_text_bytes / 10e6)
    _, last, snapshots = page_facts(exporter)
    before = sim.stats()
    sim_cpu = cpu_seconds(sim.proc.pid)
    exp_cpu = cpu_seconds(exporter.proc.pid)
    started = time.monotonic()
    answer, expected = None, None
    if churn:
        answer = sim.control({"op": "churn", "fraction": churn})
        if answer is None:
            return None
        expected = snapshots + answer.get("created", 0) + answer.get("children", 0) - answer.get(
            "removed", 0)
    rerender_ms, first_seen, all_seen = [], None, None
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= max_seconds or (elapsed >= seconds and (not churn or all_seen is not None)):
            break
        took, vm_series, snapshots = page_facts(exporter)
        now = time.monotonic() - started
        if vm_series != last:
            rerender_ms.append(took * 1e3)
            first_seen = first_seen if first_seen is not None else now
        last = vm_series
        if churn and all_seen is None and snapshots == expected:
            all_seen = now
        time.sleep(max(0.0, interval - (time.monotonic() - started) % interval))
    elapsed = time.monotonic() - started
    traffic = delta(before, sim.stats())
    changed = (answer or {}).get("changed") or None
    return {
        "seconds": elapsed,
        "churn_fraction": churn,
        "churn_answer": answer,
        "bytes_per_changed_vm": traffic["bytes"] / changed if changed else None,
        "requests": traffic["requests"],
        "bytes": traffic["bytes"],
        "requests_per_min": traffic["requests"] * 60.0 / elapsed,
        "bytes_per_min": traffic["bytes"] * 60.0 / elapsed,
        "by_method": traffic["by_method"],
        "full_retrievals": exporter.syncs() - syncs,
        "slow_waits": exporter.slow_waits() - slow,
        "inventory_metric_changed": exporter.inventory_metric() != inventory,
        "collectors_created": traffic["by_method"].get("CreatePropertyCollector", 0),
        "first_change_seen_after_seconds": first_seen,
        "all_changes_seen_after_seconds": all_seen,
        "converged": all_seen is not None if churn else None,
        "rerendering_scrapes": len(rerender_ms),
        "rerendering_scrape_max_ms": max(rerender_ms) if rerender_ms else None,
        "simulator_cpu_seconds": cpu_seconds(sim.proc.pid) - sim_cpu,
        "exporter_cpu_seconds": cpu_seconds(exporter.proc.pid) - exp_cpu,
    }


SNAPSHOT_IDS = re.compile(rb'^vsphere_vm_snapshot_create_timestamp_seconds\{[^}]*snapshot_id="([^"]+)"', re.M)
ONE_VM_CHANGES = int(os.environ.get("BENCH_ONE_VM_CHANGES", "5"))


def one_vm_change(sim, exporter, warm_p50_ms, n=ONE_VM_CHANGES):
    """The first gzip scrape after one VM changed (one snapshot renamed through POST /_control
    rename_snapshot), n times: the scrape that first shows the new name is the one that
    rendered the change. Scrapes poll on one kept-alive connection, as Prometheus does; their
    latency is to the last byte. The figure is the median over the warm scrape p50."""
    _, headers, body, _ = get(exporter.port, "/metrics", GZIP_HEADERS)
    if headers.get("Content-Encoding", headers.get("content-encoding")) == "gzip":
        body = gzip.decompress(body)
    snapshots = SNAPSHOT_IDS.findall(body)
    if not snapshots:
        raise Failure("one-VM change: no snapshot on the page")
    conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=900)
    first_ms, seen_after, render_ms = [], [], []
    try:
        for i in range(n):
            snapshot = snapshots[(i * 7919) % len(snapshots)].decode()
            name = f"bench-one-vm-{i}-{time.time_ns()}"
            sim.settle()
            if sim.control({"op": "rename_snapshot", "snapshot": snapshot, "name": name}) is None:
                return None
            changed = time.monotonic()
            while True:
                started = time.perf_counter()
                conn.request("GET", "/metrics", headers=GZIP_HEADERS)
                response = conn.getresponse()
                body = response.read()
                took = time.perf_counter() - started
                if response.status != 200:
                    raise Failure(f"one-VM change: scrape: HTTP {response.status}")
                text = gzip.decompress(body)
                if name.encode() in text:
                    first_ms.append(took * 1e3)
                    seen_after.append(time.monotonic() - changed)
                    render_ms.append(collectors_ms(text))
                    break
                if time.monotonic() - changed > 300:
                    raise Failure(f"one-VM change: {name} not on the page after 300 s")
                time.sleep(0.05)
            log(f"  one-VM change {i}: first scrape {first_ms[-1]:.1f} ms, "
                f"seen after {seen_after[-1]:.1f} s, collectors {render_ms[-1]:.1f} ms")
    finally:
        conn.close()
    median = statistics.median(first_ms)
    render = statistics.median(render_ms)
    return {"first_scrape_ms": first_ms, "seen_after_seconds": seen_after,
            "median_ms": median, "ratio_to_warm_p50": median / warm_p50_ms,
            "collectors_ms": render_ms, "collectors_median_ms": render,
            "collectors_ratio_to_warm_p50": render / warm_p50_ms}


COLLECTOR_SECONDS = re.compile(rb'^vsphere_collector_duration_seconds\{[^}]*\} (\S+)$', re.M)


def collectors_ms(text):
    """The collectors' time of the render a page came from (the sum of its
    vsphere_collector_duration_seconds): since the exporter renders a change ahead of the
    scrape, this is the change's rendering cost, which the scrape no longer shows."""
    return sum(float(v) for v in COLLECTOR_SECONDS.findall(text)) * 1e3


# --- the Python vmware-exporter --------------------------------------------------------------


def peer(sim, sim_port):
    """vmware-exporter 0.18.4 with collect_only = snapshots + vmguests. It takes a host name
    only (pyVmomi's SmartConnect, port 443), so the simulator listens on 443 when it can; if it
    could not, the port is handed to SmartConnect by a two-line launcher (same program)."""
    port = free_port()
    env = dict(
        os.environ,
        VSPHERE_HOST="127.0.0.1", VSPHERE_USER=USER, VSPHERE_PASSWORD=PASSWORD,
        VSPHERE_IGNORE_SSL="True", VSPHERE_COLLECT_VMS="False",
        VSPHERE_COLLECT_DATASTORES="False", VSPHERE_COLLECT_HOSTS="False",
        VSPHERE_COLLECT_SNAPSHOTS="True", VSPHERE_COLLECT_VMGUESTS="True",
    )
    args = [str(PEER), "-a", "127.0.0.1", "-p", str(port)]
    if sim_port != 443:
        launcher = (
            "import sys, functools; from pyVim import connect; "
            f"connect.SmartConnect = functools.partial(connect.SmartConnect, port={sim_port}); "
            "from vmware_exporter.vmware_exporter import main; sys.exit(main(sys.argv[1:]))"
        )
        args = [str(PEER.parent / "python"), "-c", launcher] + args[1:]
    logf = sim.dir / "vmware_exporter.log"
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=logf.open("w"),
                            stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, 60)
        scrapes = []
        for i in range(1 + PEER_WARM_SCRAPES):
            before = sim.stats()
            status, headers, body, took = get(port, "/metrics", {"Accept-Encoding": "gzip"})
            text = text_of(headers, body)
            if status != 200 or "vmware_vm_snapshots" not in text:
                raise Failure(f"vmware_exporter scrape {i}: HTTP {status}; see {logf}")
            traffic = delta(before, sim.stats())
            scrapes.append({"seconds": took, "requests": traffic["requests"],
                            "bytes": traffic["bytes"]})
            log(f"  vmware_exporter scrape {i}: {took:.2f} s, {traffic['requests']} requests, "
                f"{traffic['bytes'] / 1e6:.1f} MB")
        rss = proc_status(proc.pid)
        return {
            "cold_seconds": scrapes[0]["seconds"],
            "warm_seconds": statistics.median(s["seconds"] for s in scrapes[1:]),
            "scrapes": scrapes,
            "series": sum(1 for line in text.splitlines() if line and line[0] != "#"),
            "peak_rss_bytes": rss.get("VmHWM"),
            "cpu_seconds": cpu_seconds(proc.pid),
            "launcher": sim_port != 443,
        }
    finally:
        stop(proc)


# --- one size --------------------------------------------------------------------------------


def run_size(vms):
    with_peer = vms == PEER_SIZE and PEER.exists()
    sim_port = 443 if with_peer and can_bind(443) else 0
    sim = Simulator(vms, sim_port)
    result = {
        "vms": vms,
        "snapshot_vms": sim.snapshot_vms,
        "simulator_start_seconds": sim.start_seconds,
        "simulator_rss_bytes": proc_status(sim.proc.pid).get("VmRSS"),
    }
    exporter = None
    measure_backup_cost = vms == BACKUP_COST_SIZE and BACKUP_COST.exists()
    try:
        if BACKUP_COST_ONLY:
            if measure_backup_cost:
                result["backup_cost"] = backup_cost(sim)
            return result
        wires, floors, colds = [], [], []
        alternatives = {mode: [] for mode in ALTERNATIVES}
        for i in range(COLD_RUNS):
            if exporter:
                exporter.stop()
            sim.settle()
            wires.append(wire_only(sim))
            sim.settle()
            floors.append(wire_only(sim, "floor"))
            for mode in ALTERNATIVES:
                sim.settle()
                alternatives[mode].append(wire_only(sim, mode))
            sim.settle()
            exporter = Exporter(sim, i)
            colds.append(exporter)
        wire_s = statistics.median(w["window_seconds"] for w in wires)
        exp_s = statistics.median(e.inventory_seconds for e in colds)
        wire_data = statistics.median(w["start_to_data_seconds"] for w in wires)
        floor_s = statistics.median(f["window_seconds"] for f in floors)
        exp_data = statistics.median(e.start_to_data_seconds for e in colds)
        result["cold"] = {
            "wire_start_to_data_seconds": [w["start_to_data_seconds"] for w in wires],
            "exporter_start_to_data_seconds": [e.start_to_data_seconds for e in colds],
            "floor_seconds": [f["window_seconds"] for f in floors],
            "floor_response_bytes": floors[-1]["window_response_bytes"],
            "floor_start_to_data_seconds": [f["start_to_data_seconds"] for f in floors],
            "alternatives": {
                mode: {
                    "start_to_data_seconds": [r["start_to_data_seconds"] for r in runs],
                    "window_seconds": [r["window_seconds"] for r in runs],
                }
                for mode, runs in alternatives.items()
            },
            "wire_waiting_seconds": [w["waiting_seconds"] for w in wires],
            "wire_transfer_seconds": [w["transfer_seconds"] for w in wires],
            "start_to_data_overhead": exp_data / wire_data,
            "floor_ratio": exp_data / floor_s,
            "wire_floor_ratio": wire_data / floor_s,
            "wire_window_seconds": [w["window_seconds"] for w in wires],
            "wire_total_seconds": [w["total_seconds"] for w in wires],
            "wire_cpu_seconds": [w["cpu_seconds"] for w in wires],
            "wire_simulator_cpu_seconds": [w["simulator_cpu_seconds"] for w in wires],
            "wire_requests": wires[-1]["requests"],
            "wire_response_bytes": wires[-1]["response_bytes"],
            "wire_stats": wires[-1]["stats"],
            "exporter_inventory_seconds": [e.inventory_seconds for e in colds],
            "exporter_first_scrape_seconds": [e.cold_scrape_seconds for e in colds],
            "exporter_cpu_seconds": [e.cold_cpu for e in colds],
            "exporter_simulator_cpu_seconds": [e.cold_simulator_cpu for e in colds],
            "exporter_stats": colds[-1].cold_stats,
            "exporter_peak_rss_bytes": [e.cold_rss.get("VmHWM") for e in colds],
            "wire_seconds": wire_s,
            "wire_inventory_wait_seconds": statistics.median(
                w["inventory_wait_seconds"] for w in wires),
            "exporter_seconds": exp_s,
            "overhead": exp_s / wire_s,
            "end_to_end_overhead": statistics.median(e.cold_scrape_seconds for e in colds)
            / statistics.median(w["total_seconds"] for w in wires),
        }
        result["page"] = {"text_bytes": exporter.page_text_bytes,
                          "gzip_bytes": exporter.page_gzip_bytes}
        if COLD_ONLY:
            result["exporter_peak_rss_bytes"] = proc_status(exporter.proc.pid).get("VmHWM")
            exporter.stop()
            exporter = None
            if measure_backup_cost:
                result["backup_cost"] = backup_cost(sim)
            return result
        log(f"  {SCRAPES} warm scrapes")
        result["warm"] = scrape_latency(exporter, SCRAPES)
        log(f"  one-VM changes ({ONE_VM_CHANGES})")
        result["one_vm_change"] = one_vm_change(sim, exporter, result["warm"]["p50_ms"])
        if len(colds) > 1:
            time.sleep(max(0.0, colds[-2].stopped + WAIT_DRAIN_SECONDS - time.monotonic()))
        sim.settle()
        log(f"  steady state, no change, {STEADY_SECONDS:.0f} s")
        result["steady"] = traffic_window(sim, exporter, STEADY_SECONDS, None, STEADY_SECONDS)
        fraction = CHURN.get(vms, 0.01)
        log(f"  steady state, {fraction:.1%} churn, until the mirror has it "
            f"(at least {STEADY_SECONDS:.0f} s, at most {CHURN_MAX_SECONDS:.0f} s)")
        result["churn"] = traffic_window(sim, exporter, STEADY_SECONDS, fraction,
                                         CHURN_MAX_SECONDS)
        if result["churn"] is None:
            log("  the simulator has no POST /_control churn yet: row left empty")
        else:
            log(f"  churn: {result['churn']['churn_answer']}, all in the mirror after "
                f"{result['churn']['all_changes_seen_after_seconds']} s, "
                f"simulator CPU {result['churn']['simulator_cpu_seconds']:.0f} s")
            sim.settle()
            larger = fraction * CHURN_LARGER
            log(f"  steady state, {larger:.1%} churn, until the mirror has it")
            result["churn_larger"] = traffic_window(sim, exporter, STEADY_SECONDS, larger,
                                                    CHURN_MAX_SECONDS)
            log(f"  churn: {result['churn_larger']['churn_answer']}, all in the mirror after "
                f"{result['churn_larger']['all_changes_seen_after_seconds']} s, full "
                f"retrievals {result['churn_larger']['full_retrievals']}, slow update waits "
                f"{result['churn_larger']['slow_waits']}")
        result["exporter_peak_rss_bytes"] = proc_status(exporter.proc.pid).get("VmHWM")
        result["exporter_cpu_seconds_total"] = cpu_seconds(exporter.proc.pid)
        exporter.stop()
        exporter = None
        if with_peer:
            result["settle_before_peer_seconds"] = sim.settle()
            result["peer"] = peer(sim, int(sim.hostport.rsplit(":", 1)[1]))
            result["peer"]["ours_cold_seconds"] = statistics.median(
                e.cold_scrape_seconds for e in colds)
        if measure_backup_cost:
            result["backup_cost"] = backup_cost(sim)
        result["simulator_peak_rss_bytes"] = proc_status(sim.proc.pid).get("VmHWM")
    finally:
        if exporter:
            exporter.stop()
        sim.stop()
    return result


# --- the report ------------------------------------------------------------------------------


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    def version(args):
        try:
            return subprocess.run(args, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "rustc": version(["rustc", "--version"]),
        "go": version(["go", "version"]),
        "python": platform.python_version(),
        "revision": version(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def cpu_per_changed_vm(r, key):
    """The exporter's CPU seconds a churn cost per changed VM, over what the same time without
    change costs (the steady window's rate; both windows scrape the same way)."""
    w, steady = r[key], r["steady"]
    idle = steady["exporter_cpu_seconds"] / steady["seconds"] * w["seconds"]
    return max(0.0, w["exporter_cpu_seconds"] - idle) / w["churn_answer"]["changed"]


def cpu_per_hour_at_one_percent(r):
    """Exporter CPU seconds an hour when 1 % of the VMs change every minute: the steady rate
    plus 60 × (VMs / 100) × the larger churn's cost per changed VM."""
    steady = r["steady"]["exporter_cpu_seconds"] / r["steady"]["seconds"] * 3600
    return steady + 60 * r["vms"] / 100 * cpu_per_changed_vm(r, "churn_larger")


def mark(ok):
    return "" if ok is None else ("met" if ok else "MISSED")


def fmt_bytes(n):
    if n is None:
        return "n/a"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def table(results, info):
    """Rows of (figure, value per size..., target, verdict)."""
    sizes = [r["vms"] for r in results]
    by = {r["vms"]: r for r in results}
    rows = []

    def row(name, values, target="", verdict=""):
        rows.append([name] + values + [target, verdict])

    def each(f):
        out = []
        for v in sizes:
            try:
                out.append(f(by[v]))
            except (KeyError, TypeError):
                out.append("n/a")
        return out

    row("VMs with snapshots", each(lambda r: f"{r['snapshot_vms']:,}"))
    def spread(values):
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    row(f"cold, start to complete data: wire-only client, s (median of {COLD_RUNS}, range)",
        each(lambda r: spread(r["cold"]["wire_start_to_data_seconds"])))
    row(f"cold, start to complete data: exporter, s (median of {COLD_RUNS}, range)",
        each(lambda r: spread(r["cold"]["exporter_start_to_data_seconds"])))
    row(f"floor: one RetrievePropertiesEx of the VM paths, s (median of {COLD_RUNS}, range)",
        each(lambda r: spread(r["cold"]["floor_seconds"])))
    ok = [r["cold"]["start_to_data_overhead"] <= TARGETS["overhead"] for r in results]
    row("1. cold, start to complete data: exporter / wire-only",
        each(lambda r: f"{r['cold']['start_to_data_overhead']:.2f}"), "<= 1.15", mark(all(ok)))
    ok = [r["cold"]["floor_ratio"] <= TARGETS["floor"] for r in results]
    row("   cold, start to complete data: exporter / floor",
        each(lambda r: f"{r['cold']['floor_ratio']:.2f}"), "<= 1.5 (aim)", mark(all(ok)))
    row("   wire-only client / floor (the protocol's share)",
        each(lambda r: f"{r['cold']['wire_floor_ratio']:.2f}"))
    for mode in sorted({m for r in results for m in r["cold"].get("alternatives", {})}):
        row(f"   wire-only, {mode}: start to complete data, s / floor", each(
            lambda r, mode=mode: f"{statistics.median(r['cold']['alternatives'][mode]['start_to_data_seconds']):.2f} / "
            f"{statistics.median(r['cold']['alternatives'][mode]['start_to_data_seconds']) / statistics.median(r['cold']['floor_seconds']):.2f}"))
    row("   window (first wait to complete): exporter / wire-only, s",
        each(lambda r: f"{r['cold']['exporter_seconds']:.2f} / {r['cold']['wire_seconds']:.2f} "
             f"= {r['cold']['overhead']:.2f}"))
    row("   of which: inventory answer / ListView answer (wire-only), s", each(
        lambda r: f"{r['cold']['wire_inventory_wait_seconds']:.2f} / "
        f"{r['cold']['wire_seconds'] - r['cold']['wire_inventory_wait_seconds']:.2f}"))
    row("   of which: simulator building answers / transfer (wire-only), s", each(
        lambda r: f"{statistics.median(r['cold']['wire_waiting_seconds']):.2f} / "
        f"{statistics.median(r['cold']['wire_transfer_seconds']):.2f}"))
    row("   end to end: start to first scrape / wire total",
        each(lambda r: f"{r['cold']['end_to_end_overhead']:.2f}"))
    row("   cold bytes from vCenter (floor)", each(
        lambda r: f"{fmt_bytes(r['cold']['wire_response_bytes'])} "
        f"({fmt_bytes(r['cold']['floor_response_bytes'])})"))
    row("   CPU s in cold: exporter / wire-only",
        each(lambda r: f"{statistics.median(r['cold']['exporter_cpu_seconds']):.2f} / "
             f"{statistics.median(r['cold']['wire_cpu_seconds']):.2f}"))
    row("2. warm scrape p50, ms", each(lambda r: f"{r['warm']['p50_ms']:.1f}"))
    p99_ok = [r["warm"]["p99_ms"] <= TARGETS["p99_ms"].get(r["vms"], float("inf"))
              for r in results if "warm" in r]
    row(f"   warm scrape p99, ms ({SCRAPES} scrapes)", each(lambda r: f"{r['warm']['p99_ms']:.1f}"),
        "5k <= 50, 40k <= 250", mark(all(p99_ok) if p99_ok else None))
    row("   page size gzip / text", each(
        lambda r: f"{fmt_bytes(r['page']['gzip_bytes'])} / {fmt_bytes(r['page']['text_bytes'])}"))
    one_ok = [r["one_vm_change"]["ratio_to_warm_p50"] <= TARGETS["one_vm_change"]
              for r in results if r.get("one_vm_change")]
    row(f"   first scrape after a one-VM change / warm p50, gzip (median of {ONE_VM_CHANGES})",
        each(lambda r: f"{r['one_vm_change']['ratio_to_warm_p50']:.1f}x "
             f"({r['one_vm_change']['median_ms']:.1f} ms)"),
        "<= 5x", mark(all(one_ok) if one_ok else None))
    row("   its render ahead of the scrape: collectors' time / warm p50 (median)",
        each(lambda r: f"{r['one_vm_change']['collectors_ratio_to_warm_p50']:.1f}x "
             f"({r['one_vm_change']['collectors_median_ms']:.1f} ms)"))
    row("   scrape that renders anew (after a change), max ms",
        each(lambda r: f"{r['churn']['rerendering_scrape_max_ms']:.0f}"))
    def peak(r):
        return max(r["cold"]["exporter_peak_rss_bytes"] + [r["exporter_peak_rss_bytes"]])

    rss = {r["vms"]: peak(r) for r in results}
    rss_ok = None if 40000 not in rss else rss[40000] / 1e6 <= TARGETS["rss_mb_40k"]
    row("3. exporter peak RSS (VmHWM), highest of all runs", each(lambda r: fmt_bytes(peak(r))),
        "40k <= 300 MB", mark(rss_ok))
    row("   cold start + first scrape (median of runs)", each(
        lambda r: fmt_bytes(statistics.median(r["cold"]["exporter_peak_rss_bytes"]))))
    row("   the exporter that stayed, after scrapes and churn", each(
        lambda r: fmt_bytes(r["exporter_peak_rss_bytes"])))
    row("4. steady, no change: requests / min",
        each(lambda r: f"{r['steady']['requests_per_min']:.1f}"))
    row("   steady, no change: bytes / min", each(lambda r: fmt_bytes(r["steady"]["bytes_per_min"])))
    steady_ok = [r["steady"]["full_retrievals"] == 0 and r["steady"]["collectors_created"] == 0
                 for r in results if "steady" in r]
    row("   steady, no change: full retrievals",
        each(lambda r: str(r["steady"]["full_retrievals"])), "0",
        mark(all(steady_ok) if steady_ok else None))
    row("   churn: VMs changed at once (share of VMs)", each(
        lambda r: f"{r['churn']['churn_answer']['changed']} ({r['churn']['churn_fraction']:.1%})"))
    row("   churn: requests / bytes until all in the mirror", each(
        lambda r: f"{r['churn']['requests']} / {fmt_bytes(r['churn']['bytes'])}"))
    row("   churn: bytes per changed VM", each(
        lambda r: fmt_bytes(r["churn"]["bytes_per_changed_vm"])))
    row("   at 1 % a minute: bytes / min (share of cold bytes)", each(
        lambda r: f"{fmt_bytes(r['churn']['bytes_per_changed_vm'] * r['vms'] / 100)} "
        f"({r['churn']['bytes_per_changed_vm'] * r['vms'] / 100 / r['cold']['wire_response_bytes']:.1%})"
        + ("" if r["churn"]["churn_fraction"] == 0.01 else " extrapolated")))
    churn_ok = None
    if all(r.get("churn") for r in results):
        churn_ok = all(r["churn"]["full_retrievals"] == 0 and r["churn"]["collectors_created"] == 0
                       for r in results)
    row("   churn: full retrievals", each(lambda r: str(r["churn"]["full_retrievals"])),
        "0, bytes ~ changes", mark(churn_ok))
    row("   churn: first / all changes in the mirror after, s", each(
        lambda r: f"{r['churn']['first_change_seen_after_seconds']:.1f} / "
        + (f"{r['churn']['all_changes_seen_after_seconds']:.1f}"
           if r['churn']['converged'] else f"not in {r['churn']['seconds']:.0f}")))
    row("   churn: simulator CPU s to serve it", each(
        lambda r: f"{r['churn']['simulator_cpu_seconds']:.0f}"))
    larger = [r for r in results if r.get("churn_larger")]
    if larger and len(larger) == len(results):
        row("   larger churn: VMs changed / full retrievals / slow update waits", each(
            lambda r: f"{r['churn_larger']['churn_answer']['changed']} / "
            f"{r['churn_larger']['full_retrievals']} / {r['churn_larger']['slow_waits']}"),
            "retrievals 0", mark(all(r["churn_larger"]["full_retrievals"] == 0 for r in larger)))
        row("   larger churn: all changes in the mirror after, s", each(
            lambda r: f"{r['churn_larger']['all_changes_seen_after_seconds']:.1f}"
            if r["churn_larger"]["converged"] else f"not in {r['churn_larger']['seconds']:.0f}"))
        row("   exporter CPU ms per changed VM (churn / larger churn)", each(
            lambda r: f"{cpu_per_changed_vm(r, 'churn') * 1e3:.1f} / "
            f"{cpu_per_changed_vm(r, 'churn_larger') * 1e3:.1f}"), "~ equal (proportional)")
        row("   exporter CPU s per hour at 1 % of VMs a minute (steady + changes)", each(
            lambda r: f"{cpu_per_hour_at_one_percent(r):.0f}"), "measured")
    if 5000 in by and 40000 in by:
        a, b = by[5000], by[40000]
        t = b["cold"]["exporter_seconds"] / a["cold"]["exporter_seconds"]
        m = peak(b) / peak(a)
        w = b["cold"]["wire_seconds"] / a["cold"]["wire_seconds"]
        rows.append(["5. growth 40k/5k: cold time (wire-only: %.1f)" % w, f"{t:.1f}", "",
                     "<= 8 (linear)", mark(t <= 8)])
        rows.append(["   growth 40k/5k: peak RSS", f"{m:.1f}", "", "<= 8 (linear)", mark(m <= 8)])
    peer_r = by.get(PEER_SIZE, {}).get("peer")
    if peer_r:
        ours = by[PEER_SIZE]
        cold_ratio = peer_r["cold_seconds"] / peer_r["ours_cold_seconds"]
        warm_ratio = peer_r["warm_seconds"] / (ours["warm"]["p50_ms"] / 1e3)
        rss_ratio = peer_r["peak_rss_bytes"] / peak(ours)
        col = sizes.index(PEER_SIZE)
        def peer_row(name, value, target="", verdict=""):
            values = [""] * len(sizes)
            values[col] = value
            row(name, values, target, verdict)
        peer_row("6. vmware-exporter 0.18.4: cold scrape, s", f"{peer_r['cold_seconds']:.2f}")
        peer_row("   vmware-exporter: warm scrape (median), s", f"{peer_r['warm_seconds']:.2f}")
        peer_row("   vmware-exporter: peak RSS", fmt_bytes(peer_r["peak_rss_bytes"]))
        peer_row("   vmware-exporter: bytes from vCenter per scrape",
                 fmt_bytes(statistics.median(s["bytes"] for s in peer_r["scrapes"])))
        peer_row("   ours: cold (start to first scrape), s", f"{peer_r['ours_cold_seconds']:.2f}")
        peer_row("   cold: vmware-exporter / ours", f"{cold_ratio:.1f}x", ">= 3x",
                 mark(cold_ratio >= TARGETS["peer_cold"]))
        peer_row("   warm: vmware-exporter / ours (p50)", f"{warm_ratio:.0f}x", ">= 50x",
                 mark(warm_ratio >= TARGETS["peer_warm"]))
        peer_row("   peak RSS: vmware-exporter / ours", f"{rss_ratio:.1f}x")
    header = ["figure"] + [f"{v:,} VMs" for v in sizes] + ["target", ""]
    return header, rows


def backup_table(results):
    """Rows of (what, bytes) of the backup checks' cost, from the size it was measured at."""
    r = next((r["backup_cost"] for r in results if "backup_cost" in r), None)
    if r is None:
        return None
    vms = r["vms"]
    per_vm = r["vm_backup_paths_added_bytes"] / vms if vms else 0
    rows = [
        ["the VM properties of the inventory before the checks (full retrieval)",
         f"{r['vm_base_bytes']:,}"],
        ["added by customValue, config.annotation, config.changeTrackingEnabled, "
         "guest.guestFamily, datastore",
         f"+{r['vm_backup_paths_added_bytes']:,} "
         f"(+{r['vm_backup_paths_added_bytes'] / r['vm_base_bytes']:.0%}; {per_vm:,.0f} B a VM)"],
        [f"config.extraConfig of the {r['windows_vms']:,} Windows guests (the fallback; a "
         "ListView of their own)", f"{r['extra_config_windows_only_bytes']:,}"],
        ["config.extraConfig of all VMs, which the exporter does not read",
         f"+{r['extra_config_all_vms_added_bytes']:,}"],
        ["datastore summary.* and info", f"{r['datastore_backup_paths_bytes']:,}"],
        ["event history read back, per event",
         f"{r['history_bytes_per_event']:,} ({r['history_events_read']:,} events: "
         f"{r['history_bytes']:,})"],
        ["event follower idle: an empty WaitForUpdatesEx / a ReadNextEvents after the history",
         f"{r['idle_wait_bytes']:,} + {r['idle_read_next_bytes']:,}"],
        ["event follower: the first latestPage (10 events)", f"{r['latest_page_first_bytes']:,}"],
        ["the whole measurement: simulator CPU s / wall s",
         f"{r['simulator_cpu_seconds']:.0f} / {r['seconds']:.0f}"],
    ]
    return [f"backup checks at {vms:,} VMs", "bytes"], rows


def render(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if r is header:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(header, rows, info):
    out = md_table(header, rows)
    m = (f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB RAM, "
         f"Linux {info['kernel']}; {info['rustc']}; {info['go']}; Python {info['python']}; "
         f"exporter at {info['revision']}; {info['date']}.")
    return m + "\n\n" + "\n".join(out) + "\n"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in r) + " |")
    return out


def report(results, info):
    """The tables (the main one unless only the backup checks' cost was measured), as text
    for the terminal and as markdown for results.md."""
    texts, mds = [], []
    if not BACKUP_COST_ONLY and any("cold" in r for r in results):
        header, rows = table(results, info)
        texts.append(render(header, rows))
        mds.append(markdown(header, rows, info))
    backup = backup_table(results)
    if backup:
        texts.append(render(*backup))
        mds.append("\n".join(md_table(*backup)) + "\n")
    return "\n\n".join(texts), "\n".join(mds)


def main():
    if sys.argv[1:] == ["--table"]:
        # The table of the last run again, from its results (after a change to the table).
        saved = json.loads((WORK / "results.json").read_text())
        text, md = report(saved["results"], saved["machine"])
        (WORK / "results.md").write_text(md)
        print(text)
        return
    for path, how in ((VCSIM, "make tests/vcsim/vcsim"), (EXPORTER, "cargo build --release"),
                      (WIRE_ONLY, "cargo build --release --example wire_only")):
        if not path.exists():
            sys.exit(f"{path} is missing: {how} (make bench does it)")
    if not BACKUP_COST.exists():
        log(f"{BACKUP_COST} is missing: the backup checks' cost is skipped "
            "(cargo build --release --example backup_cost; make bench does it)")
    if not PEER.exists():
        log(f"{PEER} is missing: the vmware-exporter comparison is skipped (make bench installs it)")
    WORK.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = []
    started = time.monotonic()
    for vms in SIZES:
        log(f"--- {vms:,} VMs")
        results.append(run_size(vms))
        (WORK / "results.json").write_text(json.dumps(
            {"machine": info, "results": results}, indent=2, default=str))
    text, md = report(results, info)
    (WORK / "results.md").write_text(md)
    print()
    print(text)
    print()
    print(f"{info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB; "
          f"{(time.monotonic() - started) / 60:.1f} min. Details: {WORK}/results.json, "
          f"table: {WORK}/results.md")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        sys.exit(f"bench: {e}")
