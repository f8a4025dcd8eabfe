#!/bin/sh
# make fuzz: runs each cargo-fuzz target (fuzz/) for SECONDS (default 300). With
# --if-available (make test) it runs only when the targets are already built (by an earlier
# `make fuzz`), and says so when it skips: building every dependency with sanitizer coverage
# takes more than 15 minutes on a shared 2-core machine, more than all of `make test` may.
# `make fuzz` installs cargo-fuzz if it is missing.
# Crashes are left in fuzz/artifacts/<target>/; each one found becomes a case in
# tests/it/bad_input.rs.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-300}
optional=${2:-}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    if [ "$optional" = --if-available ]; then
        echo "fuzz: no nightly toolchain, skipped (the proptest twins in tests/it/bad_input.rs ran)"
        exit 0
    fi
    echo "fuzz: needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "$optional" = --if-available ]; then
        echo "fuzz: cargo-fuzz not installed, skipped (make fuzz installs it)"
        exit 0
    fi
    cargo install cargo-fuzz --locked
fi
built=fuzz/target/x86_64-unknown-linux-gnu/release
if [ "$optional" = --if-available ] && ! { [ -x "$built/soap_response" ] && [ -x "$built/config" ]; }; then
    echo "fuzz: targets not built yet, skipped (make fuzz builds them; the proptest twins in tests/it/bad_input.rs ran)"
    exit 0
fi
mkdir -p fuzz/corpus/soap_response fuzz/corpus/config
cargo +nightly fuzz run soap_response fuzz/corpus/soap_response tests/fixtures/vcenter -- -max_total_time="$seconds" -max_len=65536
cargo +nightly fuzz run config fuzz/corpus/config tests/config_cases -- -max_total_time="$seconds" -max_len=4096
