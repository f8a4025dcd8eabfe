#!/usr/bin/env bash
# `make demo`: starts the vCenter simulator with the demo inventory (a 3-day-old leftover Veeam
# snapshot, a 3-deep chain, a VM needing consolidation, outdated Tools), then the exporter
# against it, and prints the URL to scrape. Ctrl-C stops both.
set -euo pipefail
port=${1:-10169}
dir=target/demo
mkdir -p "$dir"
rm -f "$dir/vcsim.out"

tests/vcsim/vcsim -scenario demo -listen 127.0.0.1:0 -cert-out "$dir/vcsim.pem" \
  -facts "$dir/facts.json" > "$dir/vcsim.out" 2> "$dir/vcsim.log" < <(sleep infinity) &
sim=$!
trap 'kill $sim 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 600); do
  grep -q '^VCSIM_URL=' "$dir/vcsim.out" 2>/dev/null && break
  kill -0 $sim 2>/dev/null || { cat "$dir/vcsim.log" >&2; exit 1; }
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

echo
echo "vCenter simulator: $url"
echo "Exporter:          http://localhost:$port/metrics   (one vCenter: http://localhost:$port/probe?target=demo)"
echo "Try:               curl -s localhost:$port/metrics | grep -E '^vsphere_vm_snapshot|^vsphere_vm_tools|^vsphere_up'"
echo "Ctrl-C stops both."
echo
DEMO_VCENTER_PASSWORD=pass target/debug/vsphere_backup_exporter \
  --config.file="$dir/config.yml" --web.listen-address=":$port"
