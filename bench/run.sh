#!/usr/bin/env bash
# `make bench`: builds what the benchmark runs (the exporter and the wire-only client in release
# mode; the simulator is built by make), installs the Python vmware-exporter it compares with
# into target/bench/venv, then runs bench/bench.py, which prints the tables. ~12 min on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin vsphere_backup_exporter --example wire_only --example backup_cost --example follower_burst

venv=target/bench/venv
# vmware-exporter 0.18.4 (2022-10) as it ran then: newer Twisted breaks it, and the pyVmomi pip
# picks today (9.x) no longer brings `requests`, which it imports; 7.0.3 is the pyVmomi of its
# time.
peer=(vmware-exporter==0.18.4 Twisted==22.10.0 pyvmomi==7.0.3)
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2
    exit 1
  }
fi
# Pinned versions already installed are not looked up again: a second run costs a second.
"$venv/bin/pip" install --quiet --disable-pip-version-check "${peer[@]}"

exec python3 bench/bench.py "$@"
