#!/usr/bin/env bash
# Where the exporter's cold start spends its CPU: starts the simulator at N VMs (a third with
# snapshots, as make bench), runs the release exporter under `perf record` until its mirror is in
# sync plus one scrape, and prints the hottest functions (self time, then with callees).
#
#   bench/profile.sh [VMS]        # default 40000; needs perf (linux-perf) and make bench's builds
#
# Output: target/bench/profile-VMS/{perf.data,report.txt,self.txt,children.txt}. Not part of
# make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
vms=${1:-40000}
dir=target/bench/profile-$vms
mkdir -p "$dir"
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
[ -x target/release/vsphere_backup_exporter ] || cargo build --release --bin vsphere_backup_exporter

rm -f "$dir/vcsim.out"
tests/vcsim/vcsim -scenario scale -vms "$vms" -snapshot-vms $(( (vms + 2) / 3 )) -seed 1 \
  -now 2026-11-23T10:00:00Z -listen 127.0.0.1:0 -cert-out "$dir/vcsim.pem" \
  -facts "$dir/facts.json" > "$dir/vcsim.out" 2> "$dir/vcsim.log" < <(sleep infinity) &
sim=$!
exporter=
cleanup() {
  [ -n "$exporter" ] && kill "$exporter" 2>/dev/null
  kill "$sim" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
until grep -q '^VCSIM_URL=' "$dir/vcsim.out" 2>/dev/null; do
  kill -0 "$sim" 2>/dev/null || { cat "$dir/vcsim.log" >&2; exit 1; }
  sleep 0.2
done
url=$(sed -n 's/^VCSIM_URL=//p' "$dir/vcsim.out")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/exporter.yml" <<YAML
vcenters:
  - name: bench
    url: $url
    username: user
    password_env: BENCH_VCENTER_PASSWORD
    tls:
      ca_file: vcsim.pem
YAML

BENCH_VCENTER_PASSWORD=pass perf record -F 999 --call-graph dwarf,16384 -o "$dir/perf.data" -- \
  target/release/vsphere_backup_exporter --config.file="$dir/exporter.yml" \
  --web.listen-address="127.0.0.1:$port" > "$dir/exporter.log" 2>&1 &
exporter=$!
until grep -q 'msg="mirror in sync' "$dir/exporter.log" 2>/dev/null; do
  kill -0 "$exporter" 2>/dev/null || { cat "$dir/exporter.log" >&2; exit 1; }
  sleep 0.2
done
curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" > /dev/null
grep 'msg="mirror in sync' "$dir/exporter.log"
# perf writes its data when the exporter stops.
kill -INT "$exporter"
wait "$exporter" || true
exporter=

# Whole reports first: `head` on perf's pipe would end the script (pipefail) with SIGPIPE.
perf report -i "$dir/perf.data" --stdio --no-children --sort symbol -g none 2>/dev/null \
  | grep -v -e '^#' -e '^$' > "$dir/self.txt"
perf report -i "$dir/perf.data" --stdio --children --sort symbol -g none 2>/dev/null \
  | grep -v -e '^#' -e '^$' > "$dir/children.txt"
{
  echo "== self time"
  sed -n 1,40p "$dir/self.txt"
  echo
  echo "== with callees"
  sed -n 1,60p "$dir/children.txt"
} > "$dir/report.txt"
cat "$dir/report.txt"
