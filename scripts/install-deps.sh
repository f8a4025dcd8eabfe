#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a bare Debian machine: Go and govmomi (for
# the vCenter simulator under tests/vcsim), Prometheus (promtool, and the server the alert tests
# run), Alertmanager (amtool), python3 (the dashboards' generator), and Chromium with
# chromedriver (the snapshot report's browser test), systemd (systemd-analyze checks the
# package's unit), rpm, and the packagers cargo-deb and cargo-generate-rpm (compiled once by
# cargo: ~10 minutes on 2 cores, the first time only), and the Kubernetes manifests' validators
# (PyPI, in a virtualenv under target/). With the argument `image` (make image, make
# test-image), also podman, musl-tools and the Rust target x86_64-unknown-linux-musl.
# Idempotent: what is installed is left alone, so a second run costs a second.
set -euo pipefail

packages=(golang-go golang-github-vmware-govmomi-dev prometheus prometheus-alertmanager python3 python3-venv chromium chromium-driver systemd rpm)
[ "${1:-}" != image ] || packages+=(podman musl-tools ca-certificates)
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

# The package tests of `make test` build the .deb and the .rpm.
for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool with cargo (once; about 5 minutes)" >&2
    cargo install "$tool" --locked --quiet
  fi
done

has_toolchain() { RUSTUP_AUTO_INSTALL=0 rustup run "$1" rustc --version >/dev/null 2>&1; }

# install_toolchain NAME WHAT-SAYS-SO: installs a Rust toolchain with rustup where it is missing.
# Some machines reach no rustup server: then the make target that needs it says it did not run.
install_toolchain() {
  has_toolchain "$1" && return 0
  echo "installing Rust $1 with rustup" >&2
  rustup toolchain install "$1" --profile minimal >/dev/null 2>&1 ||
    echo "rustup could not install Rust $1 here; $2 will say so" >&2
}

# `make msrv` (part of `make test`) type-checks with Cargo.toml's rust-version.
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$(dirname "$0")/../Cargo.toml")
[ -z "$msrv" ] || install_toolchain "$msrv" "make msrv"

# The short cargo-fuzz run of `make test` needs the nightly toolchain and cargo-fuzz.
install_toolchain nightly "make test's fuzz step"
if has_toolchain nightly && ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz with cargo (once; about 2 minutes)" >&2
  cargo install cargo-fuzz --locked --quiet
fi

# `make image`: the static binary's target; aws-lc-sys compiles its C with musl-gcc (musl-tools).
if [ "${1:-}" = image ] && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "adding the Rust target x86_64-unknown-linux-musl with rustup" >&2
  rustup target add x86_64-unknown-linux-musl >/dev/null
fi

# The manifests' check of `make test` (scripts/test-manifests.sh): kubernetes-validate (built-in
# kinds' schemas) and the Prometheus Operator's models (its CRDs' schemas), pinned, in a
# virtualenv of their own; remade when the pins change.
venv="$(dirname "$0")/../target/manifests-venv"
requirements="kubernetes-validate==1.37.0 cloudcoil==0.6.0 cloudcoil-models-prometheus-operator==0.80.1.0"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "installing the manifests' validators with pip into target/manifests-venv (once; ~30 s)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" >"$venv/requirements"
fi
