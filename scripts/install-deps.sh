#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a bare Debian machine: Go and govmomi (for
# the vCenter simulator under tests/vcsim), Prometheus (promtool, and the server the alert tests
# run), Alertmanager (amtool), python3 (the dashboards' generator), and Chromium with
# chromedriver (the snapshot report's browser test). Idempotent: installed
# packages are left alone, so a second run costs a second.
set -euo pipefail

packages=(golang-go golang-github-vmware-govmomi-dev prometheus prometheus-alertmanager python3 chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # The prometheus packages start servers through their service units; none is wanted here,
  # so policy-rc.d refuses service starts during the install. A policy the machine already
  # has is put back afterwards.
  saved=""
  if [ -e /usr/sbin/policy-rc.d ]; then
    saved=$(mktemp)
    $sudo cp -p /usr/sbin/policy-rc.d "$saved"
  fi
  restore() {
    if [ -n "$saved" ]; then $sudo cp -p "$saved" /usr/sbin/policy-rc.d; rm -f "$saved"; else $sudo rm -f /usr/sbin/policy-rc.d; fi
  }
  trap restore EXIT
  $sudo sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  restore
  trap - EXIT
fi

command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt >/dev/null 2>&1 || true
