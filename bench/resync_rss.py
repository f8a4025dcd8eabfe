"""The exporter's memory across a full retrieval provoked while it runs (not part of make bench).

Starts the simulator (scale scenario, VMS VMs, default 40,000) and the release exporter as
make bench does, scrapes 20 times with gzip and 20 times without, makes the simulator forget
every session (`drop_sessions`: the mirror logs in again and retrieves everything), waits for
the new full retrieval, scrapes 5 more times, and prints VmHWM and VmRSS (MiB) after each step.
SCRAPE_DURING=1 scrapes every second while the resync runs; MALLOC_* variables are passed to
the exporter. docs/performance.md (Memory) has the runs that led to the allocator settings.

    VMS=40000 python3 bench/resync_rss.py
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import GZIP_HEADERS, Exporter, Simulator, get, proc_status  # noqa: E402

vms = int(os.environ.get("VMS", "40000"))
env = {k: v for k, v in os.environ.items()
       if k in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
sim = Simulator(vms, 0)
try:
    sim.settle()
    exporter = Exporter(sim, "resync-rss", env)

    def memory():
        status = proc_status(exporter.proc.pid)
        return {k: round(status[k] / 2**20) for k in ("VmHWM", "VmRSS") if k in status}

    print("cold", memory(), flush=True)
    for _ in range(20):
        get(exporter.port, "/metrics", GZIP_HEADERS)
        get(exporter.port, "/metrics")
    print("after 40 scrapes (20 without gzip)", memory(), flush=True)
    retrievals = exporter.syncs()
    print("drop_sessions", sim.control({"op": "drop_sessions"}), flush=True)
    started = time.monotonic()
    while exporter.syncs() == retrievals:
        if time.monotonic() - started > 600:
            sys.exit("no full retrieval within 600 s")
        if os.environ.get("SCRAPE_DURING") == "1":
            get(exporter.port, "/metrics", GZIP_HEADERS)
        time.sleep(1)
    print(f"in sync again after {time.monotonic() - started:.1f} s", memory(), flush=True)
    for _ in range(5):
        get(exporter.port, "/metrics", GZIP_HEADERS)
    print("after 5 more scrapes", memory(), flush=True)
    exporter.stop()
finally:
    sim.stop()
