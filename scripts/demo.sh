#!/usr/bin/env bash
# `make demo`: starts the vCenter simulator with the demo inventory (a 3-day-old leftover Veeam
# snapshot, a 3-deep chain, a VM needing consolidation, outdated Tools), then the exporter
# against it, and prints the URL to scrape once the exporter listens. Ctrl-C stops both and
# leaves no process behind.
set -euo pipefail
port=${1:-10169}   # 0: any free port (the banner names it)
dir=target/demo
mkdir -p "$dir"
rm -f "$dir/vcsim.out" "$dir/exporter.log"

sim=""
exporter=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$exporter" ] && kill "$exporter" 2>/dev/null
  [ -n "$sim" ] && kill "$sim" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Its stdin is /dev/null, so it must not take the end of stdin for a stop.
tests/vcsim/vcsim -scenario demo -listen 127.0.0.1:0 -cert-out "$dir/vcsim.pem" \
  -facts "$dir/facts.json" -exit-on-stdin-eof=false > "$dir/vcsim.out" 2> "$dir/vcsim.log" < /dev/null &
sim=$!

for _ in $(seq 1 600); do
  grep -q '^VCSIM_URL=' "$dir/vcsim.out" 2>/dev/null && break
  kill -0 "$sim" 2>/dev/null || { cat "$dir/vcsim.log" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^VCSIM_URL=//p' "$dir/vcsim.out")

cat > "$dir/config.yml" <<YAML
# Written by make demo: the exporter against the local vCenter simulator.
vcenters:
  - name: demo
    url: $url
    username: user
    password_env: DEMO_VCENTER_PASSWORD
    tls:
      ca_file: vcsim.pem
YAML

DEMO_VCENTER_PASSWORD=pass target/debug/vsphere_backup_exporter \
  --config.file="$dir/config.yml" --web.listen-address=":$port" 2> >(tee "$dir/exporter.log" >&2) &
exporter=$!

# The banner only once the exporter listens; a port in use ends the demo with its one line.
for _ in $(seq 1 100); do
  grep -q 'msg=Listening' "$dir/exporter.log" 2>/dev/null && break
  if ! kill -0 "$exporter" 2>/dev/null; then
    echo "The exporter did not start (is port $port in use? try: make demo DEMO_PORT=10170)" >&2
    exit 1
  fi
  sleep 0.1
done
# The port the exporter listens on (port 0 asks for any free one).
port=$(sed -n 's/.*msg=Listening address=[^ ]*:\([0-9]*\) .*/\1/p' "$dir/exporter.log" | head -n 1)

cat <<BANNER

vCenter simulator: $url
Exporter:          http://localhost:$port/metrics   (one vCenter: http://localhost:$port/probe?target=demo)
Try:               curl -s localhost:$port/metrics | grep -E '^vsphere_vm_snapshot|^vsphere_vm_tools|^vsphere_up'
Ctrl-C stops both.

BANNER
wait "$exporter"
