#!/bin/sh
# make fuzz: runs each cargo-fuzz target (fuzz/) for SECONDS (default 300), built as cargo fuzz
# builds by default (release, AddressSanitizer).
# make test (--smoke): a short run of each target, built without a sanitizer in the dev profile
# (fuzz/target/<triple>/debug, apart from make fuzz's build): about 3 minutes to build on a
# 2-core machine where the release build with AddressSanitizer takes 8; our code has no
# `unsafe` (the library forbids it), so what the short run looks for is a panic, which it finds
# either way.
# Both need the nightly toolchain and cargo-fuzz, which make deps installs where rustup can
# fetch nightly. Where it cannot, --smoke says NOT RUN and the proptest twins of the targets
# (tests/it/bad_input.rs, run by make test) are what checks bad input.
# Crashes are left in fuzz/artifacts/<target>/; each one found becomes a case in
# tests/it/bad_input.rs.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-300}
mode=${2:-}
if ! RUSTUP_AUTO_INSTALL=0 rustup run nightly rustc --version >/dev/null 2>&1; then
    if [ "$mode" = --smoke ]; then
        echo "fuzz: NOT RUN: no nightly toolchain here and rustup could not install it (make deps tries); the proptest twins in tests/it/bad_input.rs ran"
        exit 0
    fi
    echo "fuzz: needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "$mode" = --smoke ]; then
        echo "fuzz: NOT RUN: cargo-fuzz is not installed (make deps installs it); the proptest twins in tests/it/bad_input.rs ran"
        exit 0
    fi
    cargo install cargo-fuzz --locked
fi
build=""
if [ "$mode" = --smoke ]; then
    build="--dev --sanitizer none"
    echo "fuzz: building the targets (dev profile, no sanitizer), then ${seconds} s each"
fi
mkdir -p fuzz/corpus/soap_response fuzz/corpus/config
# shellcheck disable=SC2086 # $build is a list of flags
cargo +nightly fuzz run $build soap_response fuzz/corpus/soap_response tests/fixtures/vcenter -- -max_total_time="$seconds" -max_len=65536
# shellcheck disable=SC2086
cargo +nightly fuzz run $build config fuzz/corpus/config tests/config_cases -- -max_total_time="$seconds" -max_len=4096
