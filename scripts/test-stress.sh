#!/usr/bin/env bash
# make test-stress: the unit and integration tests (what `make test` runs with `cargo test`),
# RUNS times with one core kept busy, then RUNS times without (default 5 each), each run as
# it is: a failed test is never retried, it is a defect to fix. Not part of `make test`
# (about 5 minutes a run on a 2-core machine).
#
# The load is a busy loop in a process of its own (stress-ng's `--cpu 1` does the same; a
# shell loop needs no package), started before a run and killed after it. Each run's output
# goes to target/test-stress/<loaded|idle>-<n>.log; the last line sums up, and the exit code
# is non-zero when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
out=target/test-stress
mkdir -p "$out"

# Built once, outside the timed runs, so every run tests the same binaries.
cargo test --lib --tests --no-run --quiet || exit 1

busy=""
stop_load() {
    if [ -n "$busy" ]; then
        kill "$busy" 2>/dev/null
        wait "$busy" 2>/dev/null
        busy=""
    fi
}
trap stop_load EXIT INT TERM

# run_suite KIND N: one run; prints a line and returns its exit code.
run_suite() {
    local kind=$1 n=$2 log="$out/$1-$2.log" started code
    started=$(date +%s)
    if [ "$kind" = loaded ]; then
        sh -c 'while :; do :; done' &
        busy=$!
    fi
    cargo test --lib --tests >"$log" 2>&1
    code=$?
    stop_load
    local summary
    summary=$(grep -E '^test result:' "$log" | awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed", p, f}')
    echo "test-stress: $kind run $n: exit $code, $summary, $(($(date +%s) - started)) s ($log)"
    if [ "$code" -ne 0 ]; then
        grep -E '^(test .* FAILED|failures:|    [a-z_:]+$)' "$log" | sed 's/^/    /' | head -20
    fi
    return "$code"
}

loaded_ok=0
idle_ok=0
for n in $(seq 1 "$runs"); do
    run_suite loaded "$n" && loaded_ok=$((loaded_ok + 1))
done
for n in $(seq 1 "$runs"); do
    run_suite idle "$n" && idle_ok=$((idle_ok + 1))
done
echo "test-stress: with one core busy $loaded_ok/$runs runs passed, without load $idle_ok/$runs runs passed"
[ "$loaded_ok" -eq "$runs" ] && [ "$idle_ok" -eq "$runs" ]
