#!/usr/bin/env python3
"""`make bench`, host I/O part: the perf source at vCenter's limit of 2,500 hosts.

It starts the simulator (tests/vcsim, scale scenario: 5 datacenters × 10 clusters × 50 hosts,
one VM per host, 1 % of the hosts disconnected and 1 % in maintenance), then:

1. the exporter with `--no-collector.hostio` (no perf source): RSS once in sync, and the latency
   of warm gzip scrapes of /metrics: the baseline;
2. the exporter with host I/O on (`perf_interval` 20 s, the defaults otherwise): its first full
   cycle (counter catalogue, QueryAvailablePerfMetric of every connected host, QueryPerf of every
   metric) and its second (QueryPerf only), each with its time (the source's
   `vsphere_source_sync_duration_seconds`), the QueryPerf requests against the fewest the
   vCenter's metric limit allows (from the simulator's counts: metrics asked / limit), the bytes
   the simulator sent; the exporter's added RSS after both; the same warm scrapes, taken while
   cycles run.

Targets (issue 9): a cycle well within the 20 s interval, requests within 10 % of the minimum,
scrapes as fast as without it. A missed target is marked, not an exit status; it exits non-zero
only when something could not be measured.

Environment: BENCH_HOSTIO_DATACENTERS (5), BENCH_HOSTIO_CLUSTERS (10), BENCH_HOSTIO_HOSTS (50 per
cluster), BENCH_HOSTIO_SCRAPES (100). Writes target/bench/hostio.{json,md}. Stdlib only; the
helpers are bench.py's.
"""

import json
import math
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
        args = [str(B.EXPORTER), f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--log.level={B.LOG_LEVEL}"]
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


def perf_status(text):
    """(last update, sync seconds, up) of the perf source on a page."""
    label = 'source="perf"'
    return (B.metric(text, "vsphere_source_last_update_timestamp_seconds", label),
            B.metric(text, "vsphere_source_sync_duration_seconds", label),
            B.metric(text, "vsphere_source_up", label))


def sampled_hosts(text):
    return len(re.findall(r"^vsphere_host_perf_sample_timestamp_seconds\{", text, re.M))


def cycle_figures(before, after):
    """What the simulator saw between two /_stats answers."""
    requests = lambda m: after["requests"].get(m, 0) - before["requests"].get(m, 0)  # noqa: E731
    sent = lambda m: after["response_bytes"].get(m, 0) - before["response_bytes"].get(m, 0)  # noqa: E731
    perf_before, perf_after = before["perf"], after["perf"]
    metrics = perf_after["query_perf_metrics"] - perf_before["query_perf_metrics"]
    limit = perf_after["limit"]
    return {
        "query_perf": requests("QueryPerf"),
        "min_query_perf": math.ceil(metrics / limit) if limit else 1,
        "metrics": metrics,
        "limit": limit,
        "max_metrics_per_request": perf_after["max_metrics_per_request"],
        "over_limit": perf_after["over_limit"] - perf_before["over_limit"],
        "unconnected_host_specs": perf_after["unconnected_host_specs"]
        - perf_before["unconnected_host_specs"],
        "available": requests("QueryAvailablePerfMetric"),
        "bytes": sent("QueryPerf") + sent("QueryAvailablePerfMetric"),
        "query_perf_bytes": sent("QueryPerf"),
    }


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

        B.log("host I/O on: first and second cycle")
        before = sim.stats()
        ex = Exporter(sim, hostio=True)
        text = ex.wait(lambda t: sampled_hosts(t) >= sim.connected and perf_status(t)[2] == 1,
                       600, "through its first perf cycle")
        first_update, first_seconds, _ = perf_status(text)
        after_first = sim.stats()
        results["first"] = dict(cycle_figures(before, after_first), seconds=first_seconds)
        results["series"] = sum(1 for line in text.splitlines() if line.startswith("vsphere_host_"))
        # Scrapes while the second cycle runs, then the second cycle itself.
        results["hostio_scrapes"] = B.scrape_latency(ex, SCRAPES)
        cpu = B.cpu_seconds(ex.proc.pid)
        text = ex.wait(lambda t: (perf_status(t)[0] or 0) > first_update, 120, "through a second cycle")
        _, second_seconds, up = perf_status(text)
        results["second"] = dict(cycle_figures(after_first, sim.stats()), seconds=second_seconds,
                                 up=up)
        results["second_cpu_seconds"] = B.cpu_seconds(ex.proc.pid) - cpu
        results["hostio_rss"] = ex.rss()
        ex.stop()
    finally:
        sim.stop()
    return results


def table(r):
    mib = lambda n: n / 2**20  # noqa: E731
    rows = []

    def row(name, value, target="", ok=None):
        rows.append((name, value, target, "" if ok is None else B.mark(ok)))

    for key, label in (("first", "first cycle (catalogue, instances, samples)"),
                       ("second", "second cycle (samples only)")):
        c = r[key]
        row(f"{label}: time", f"{c['seconds']:.2f} s", "well within 20 s", c["seconds"] < INTERVAL / 2)
        ratio = c["query_perf"] / c["min_query_perf"]
        row(f"{label}: QueryPerf requests", f"{c['query_perf']} for {c['metrics']} metrics "
            f"(minimum {c['min_query_perf']} at {c['limit']} a request, ×{ratio:.2f})",
            "≤ ×1.10 the minimum", ratio <= 1.10)
        row(f"{label}: largest request", f"{c['max_metrics_per_request']} metrics, "
            f"{c['over_limit']} refused", f"≤ {c['limit']}",
            c["max_metrics_per_request"] <= c["limit"] and c["over_limit"] == 0)
        row(f"{label}: QueryAvailablePerfMetric", str(c["available"]),
            f"{r['connected']} in the first, 0 after")
        row(f"{label}: bytes received", f"{c['bytes'] / 1e6:.1f} MB "
            f"(QueryPerf {c['query_perf_bytes'] / 1e6:.1f} MB)")
        row(f"{label}: specs for unconnected hosts", str(c["unconnected_host_specs"]), "0",
            c["unconnected_host_specs"] == 0)
    row("exporter CPU in the second cycle", f"{r['second_cpu_seconds']:.2f} s")
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
