#!/usr/bin/env python3
"""`make bench`, host I/O part: the perf source at vCenter's limit of 2,500 hosts.

It starts the simulator (tests/vcsim, scale scenario: 5 datacenters × 10 clusters × 50 hosts,
one VM per host, 1 % of the hosts disconnected and 1 % in maintenance), then:

1. the exporter with `--no-collector.hostio` (no perf source): RSS once in sync, and the latency
   of warm gzip scrapes of /metrics: the baseline;
2. the exporter with host I/O on (`perf_interval` 20 s, the defaults otherwise), from its own
   per-cycle debug lines ("perf: cycle done"): the discovery of every connected host's
   instances (QueryAvailablePerfMetric, once per session, at most half an interval a cycle: how
   many cycles and bytes it took, and when every host had samples), then one full cycle (every
   connected host queried): its time, its QueryPerf requests against the fewest the metric limit
   allows, the bytes received; from the simulator, that no request went over the limit and no
   unconnected host was asked; the exporter's added RSS; the same warm scrapes, taken while
   cycles run.

Targets (issue 9): a cycle well within the 20 s interval, requests within 10 % of the minimum,
scrapes as fast as without it. A missed target is marked, not an exit status; it exits non-zero
only when something could not be measured.

Environment: BENCH_HOSTIO_DATACENTERS (5), BENCH_HOSTIO_CLUSTERS (10), BENCH_HOSTIO_HOSTS (50 per
cluster), BENCH_HOSTIO_SCRAPES (100). Writes target/bench/hostio.{json,md}. Stdlib only; the
helpers are bench.py's.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (the shared helpers of make bench)

DATACENTERS = int(os.environ.get("BENCH_HOSTIO_DATACENTERS", "5"))
CLUSTERS = int(os.environ.get("BENCH_HOSTIO_CLUSTERS", "10"))
HOSTS_PER_CLUSTER = int(os.environ.get("BENCH_HOSTIO_HOSTS", "50"))
SCRAPES = int(os.environ.get("BENCH_HOSTIO_SCRAPES", "100"))
HOSTS = DATACENTERS * CLUSTERS * HOSTS_PER_CLUSTER
OFF_HOSTS = max(1, HOSTS // 100)
INTERVAL = 20.0
WORK = B.WORK / "hostio"


class HostSimulator(B.Simulator):
    """bench.Simulator's life cycle, with thousands of hosts instead of many VMs."""

    def __init__(self, port):
        self.vms = HOSTS
        self.snapshot_vms = HOSTS // 10
        self.dir = WORK
        self.dir.mkdir(parents=True, exist_ok=True)
        self.facts = self.dir / "facts.json"
        self.ca = self.dir / "vcsim.pem"
        out = self.dir / "vcsim.out"
        out.unlink(missing_ok=True)
        args = [
            str(B.VCSIM), "-scenario", "scale", "-vms", str(HOSTS),
            "-snapshot-vms", str(self.snapshot_vms), "-datacenters", str(DATACENTERS),
            "-clusters", str(CLUSTERS), "-hosts-per-cluster", str(HOSTS_PER_CLUSTER),
            "-standalone-hosts", "0", "-disconnected-hosts", str(OFF_HOSTS),
            "-maintenance-hosts", str(OFF_HOSTS), "-seed", "1", "-now", B.SIM_NOW,
            "-listen", f"127.0.0.1:{port}", "-facts", str(self.facts), "-cert-out", str(self.ca),
        ]
        started = time.monotonic()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=out.open("w"),
            stderr=(self.dir / "vcsim.log").open("w"),
        )
        while True:
            if self.proc.poll() is not None:
                raise B.Failure(f"vcsim exited with {self.proc.returncode}; see {self.dir}/vcsim.log")
            m = re.search(r"^VCSIM_URL=(\S+)", out.read_text(), re.M)
            if m:
                break
            time.sleep(0.2)
        self.start_seconds = time.monotonic() - started
        self.url = m.group(1)
        self.hostport = self.url.split("//", 1)[1].split("/", 1)[0]
        self.ssl = B.ssl.create_default_context(cafile=str(self.ca))
        facts = json.loads(self.facts.read_text())
        self.connected = sum(1 for h in facts["hosts"] if h["connection_state"] == "connected")
        B.log(f"simulator: {len(facts['hosts'])} hosts ({self.connected} connected) at "
              f"{self.url} after {self.start_seconds:.0f} s")


class Exporter:
    """The exporter on the simulator, with or without the host I/O collector."""

    def __init__(self, sim, hostio):
        self.port = B.free_port()
        tag = "hostio" if hostio else "baseline"
        self.log = sim.dir / f"exporter-{tag}.log"
        config = sim.dir / "exporter.yml"
        config.write_text(
            "vcenters:\n"
            "  - name: bench\n"
            f"    url: {sim.url}\n"
            f"    username: {B.USER}\n"
            "    password_env: BENCH_VCENTER_PASSWORD\n"
            "    tls:\n"
            f"      ca_file: {sim.ca}\n"
            f"    perf_interval: {int(INTERVAL)}s\n"
        )
        # Debug: the perf source logs what each cycle did ("perf: cycle done").
        args = [str(B.EXPORTER), f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=debug"]
        if not hostio:
            args.append("--no-collector.hostio")
        self.proc = subprocess.Popen(
            args, env=dict(os.environ, BENCH_VCENTER_PASSWORD=B.PASSWORD),
            stdin=subprocess.DEVNULL, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        B.wait_port(self.port, self.proc, 30)
        self.wait(lambda t: B.metric(t, "vsphere_up", 'vcenter="bench"') == 1, 600, "in sync")

    def page(self):
        status, headers, body, _ = B.get(self.port, "/metrics", B.GZIP_HEADERS)
        if status != 200:
            raise B.Failure(f"scrape: HTTP {status}")
        return B.text_of(headers, body)

    def wait(self, done, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            text = self.page()
            if done(text):
                return text
            time.sleep(0.25)
        raise B.Failure(f"exporter not {what} after {limit} s; see {self.log}")

    def rss(self):
        return B.proc_status(self.proc.pid)

    def stop(self):
        B.stop(self.proc)


CYCLE_LINE = re.compile(r'msg="perf: cycle done"(.*)$', re.M)


def cycles(log_path):
    """The exporter's "perf: cycle done" lines, as dicts of numbers."""
    out = []
    for m in CYCLE_LINE.finditer(log_path.read_text()):
        fields = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
        out.append({k: float(v) for k, v in fields.items() if re.fullmatch(r"[0-9.e+-]+", v)})
    return out


def sampled_hosts(text):
    return len(re.findall(r"^vsphere_host_perf_sample_timestamp_seconds\{", text, re.M))


def wait_cycles(ex, done, limit, what):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = cycles(ex.log)
        if done(seen):
            return seen
        time.sleep(0.5)
    raise B.Failure(f"exporter not {what} after {limit} s; see {ex.log}")


def run():
    WORK.mkdir(parents=True, exist_ok=True)
    sim = HostSimulator(B.free_port())
    results = {"hosts": HOSTS, "connected": sim.connected, "simulator_start_seconds": sim.start_seconds}
    try:
        B.log("baseline: the exporter with --no-collector.hostio")
        base = Exporter(sim, hostio=False)
        sim.settle()
        results["baseline_rss"] = base.rss()
        results["baseline_scrapes"] = B.scrape_latency(base, SCRAPES)
        base.stop()

        B.log("host I/O on: discovery, then a full cycle")
        before = sim.stats()
        started = time.monotonic()
        ex = Exporter(sim, hostio=True)
        ex.wait(lambda t: sampled_hosts(t) >= sim.connected, 900, "sampling every connected host")
        results["all_sampled_seconds"] = time.monotonic() - started
        # A full cycle: every connected host asked, no discovery left.
        full = lambda c: c.get("discovery", 1) == 0 and c.get("discovery_pending", 1) == 0  # noqa: E731
        seen = wait_cycles(ex, lambda cs: any(full(c) for c in cs), 300, "through a full cycle")
        first_full = next(i for i, c in enumerate(seen) if full(c))
        results["discovery"] = {
            "cycles": first_full,
            "requests": sum(c.get("discovery", 0) for c in seen[:first_full]),
            "bytes": sum(c.get("discovery_bytes", 0) for c in seen[:first_full]),
            "cycle_seconds": [c.get("seconds", 0) for c in seen[:first_full]],
        }
        results["full"] = seen[first_full]
        results["hostio_scrapes"] = B.scrape_latency(ex, SCRAPES)
        text = ex.page()
        results["series"] = sum(1 for line in text.splitlines() if line.startswith("vsphere_host_"))
        cpu = B.cpu_seconds(ex.proc.pid)
        count = len(cycles(ex.log))
        seen = wait_cycles(ex, lambda cs: len(cs) > count, 120, "through one more cycle")
        results["another"] = seen[-1]
        results["another_cpu_seconds"] = B.cpu_seconds(ex.proc.pid) - cpu
        results["hostio_rss"] = ex.rss()
        after = sim.stats()
        results["simulator"] = {
            "max_metrics_per_request": after["perf"]["max_metrics_per_request"],
            "limit": after["perf"]["limit"],
            "over_limit": after["perf"]["over_limit"] - before["perf"]["over_limit"],
            "unconnected_host_specs": after["perf"]["unconnected_host_specs"]
            - before["perf"]["unconnected_host_specs"],
            "query_available": after["requests"].get("QueryAvailablePerfMetric", 0)
            - before["requests"].get("QueryAvailablePerfMetric", 0),
        }
        ex.stop()
    finally:
        sim.stop()
    return results


def table(r):
    mib = lambda n: n / 2**20  # noqa: E731
    rows = []

    def row(name, value, target="", ok=None):
        rows.append((name, value, target, "" if ok is None else B.mark(ok)))

    d, sim = r["discovery"], r["simulator"]
    row("discovery (QueryAvailablePerfMetric, once a session)",
        f"{d['requests']:.0f} hosts in {d['cycles']} cycles of "
        + ", ".join(f"{s:.1f}" for s in d["cycle_seconds"]) + " s",
        f"{r['connected']} hosts; each cycle within 20 s",
        d["requests"] == r["connected"] and all(s < INTERVAL for s in d["cycle_seconds"]))
    row("discovery: bytes received", f"{d['bytes'] / 1e6:.0f} MB")
    row("every connected host sampled after", f"{r['all_sampled_seconds']:.0f} s from start")
    for key, label in (("full", "full cycle"), ("another", "next cycle")):
        c = r[key]
        row(f"{label}: time", f"{c['seconds']:.2f} s for {c['hosts']:.0f} hosts",
            "well within 20 s", c["seconds"] < INTERVAL / 2)
        ratio = c["requests"] / c["min_requests"] if c["min_requests"] else float("inf")
        row(f"{label}: QueryPerf requests", f"{c['requests']:.0f} for {c['metrics']:.0f} metrics "
            f"(minimum {c['min_requests']:.0f}, ×{ratio:.2f})", "≤ ×1.10 the minimum",
            ratio <= 1.10)
        row(f"{label}: bytes received", f"{c['bytes'] / 1e6:.1f} MB")
    row("largest QueryPerf (simulator)", f"{sim['max_metrics_per_request']} metrics, "
        f"{sim['over_limit']} refused", f"≤ {sim['limit']}",
        sim["max_metrics_per_request"] <= sim["limit"] and sim["over_limit"] == 0)
    row("specs for unconnected hosts (simulator)", str(sim["unconnected_host_specs"]), "0",
        sim["unconnected_host_specs"] == 0)
    row("exporter CPU over the next cycle", f"{r['another_cpu_seconds']:.2f} s")
    row("host series on /metrics", str(r["series"]))
    added = r["hostio_rss"].get("VmRSS", 0) - r["baseline_rss"].get("VmRSS", 0)
    row("added RSS (VmRSS with host I/O − without)",
        f"{mib(added):.0f} MiB ({mib(r['baseline_rss'].get('VmRSS', 0)):.0f} → "
        f"{mib(r['hostio_rss'].get('VmRSS', 0)):.0f} MiB; VmHWM "
        f"{mib(r['hostio_rss'].get('VmHWM', 0)):.0f} MiB)")
    b, h = r["baseline_scrapes"], r["hostio_scrapes"]
    row("warm scrape p50 / p99 without host I/O", f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms")
    row("warm scrape p50 / p99 with host I/O, cycles running",
        f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} ms", "as fast as without",
        h["p99_ms"] <= max(2 * b["p99_ms"], b["p99_ms"] + 20))
    return rows


def main():
    started = time.monotonic()
    try:
        results = run()
    except B.Failure as e:
        B.log(f"FAILED: {e}")
        return 1
    rows = table(results)
    header = ("figure", "value", "target", "")
    print(B.render(header, rows))
    (WORK / "hostio.json").write_text(json.dumps(results, indent=2) + "\n")
    (WORK / "hostio.md").write_text(
        f"Host I/O at {HOSTS:,} hosts ({results['connected']:,} connected). "
        + B.markdown(header, rows, B.machine()))
    B.log(f"done in {(time.monotonic() - started) / 60:.1f} min; {WORK}/hostio.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
