#!/bin/sh
# make reliability: runs the fault-injection suite (tests/it/faults) one fault at a time and
# writes its table to docs/reliability.md. The suite's tests also run in `make test`; this
# target only adds the table. Exits with the suite's status after writing what it measured.
set -u
cd "$(dirname "$0")/.."
rows=target/tmp/reliability
rm -rf "$rows"
status=0
cargo test --test it -- faults:: --test-threads=1 || status=$?
out=docs/reliability.md
# The sections written by hand (from "## HTTP limits" on) are kept as they are.
kept=$(mktemp)
sed -n '/^## HTTP limits/,$p' "$out" > "$kept" 2>/dev/null || true
{
    echo "# Reliability: the fault-injection suite"
    echo
    echo "Written by \`make reliability\` on $(date -u +%Y-%m-%d) at revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown); suite status: $([ $status -eq 0 ] && echo passed || echo FAILED)."
    echo
    echo "The exporter binary follows the simulator's golden scenario through a proxy (tests/it/faults) with"
    echo "\`connect_timeout: 1s\` and \`request_timeout: 2s\`; the proxy injects each fault, the simulator renames a snapshot"
    echo "meanwhile (the change the recovery must show), and the fault is kept 4 s after \`vsphere_up\` went to 0."
    echo "*To up 0*: from the fault to the first scrape with \`vsphere_up 0\`. *To recovery*: from the end of the fault"
    echo "to the first scrape with \`vsphere_up 1\` and the change. *Peak RSS*: the process' \`VmHWM\` over the fault."
    echo "*Warnings*: warn/error log lines for the incident (one is wanted)."
    echo
    echo "| fault | to up 0 | to recovery | peak RSS | warnings |"
    echo "| --- | --- | --- | --- | --- |"
    cat "$rows"/*.md 2>/dev/null | sort
    echo
    echo "Bounds the suite asserts at these settings: \`vsphere_up\` 0 within 5 s (a hang: 8 s, the update wait's"
    echo "2 s, 0.5 s, then a heartbeat unanswered for 2 s, and slack; a 1 GB body: 10 s); recovery within 10 s (session expiry and restart: 5 s);"
    echo "peak RSS under 100 MB with \`max_response_size: 16MiB\`; exactly one warning per incident; every scrape HTTP 200;"
    echo "no panic; the password (a distinctive value, logs at debug level) in no log line, page or error."
    echo "At the default settings (row \"default timeouts\") a hung vCenter must show within 45 s (the 30 s wait, 2 s,"
    echo "then a heartbeat that gets no answer within 5 s: 37 s) and recover within 75 s: the retry sent while it hung"
    echo "ends only at its 60 s request timeout. Other"
    echo "faults show on the failing call; recovery then takes at most the backoff step in force when the fault ends"
    echo "(0.5 s doubling to 30 s), and an expired session logs in again at once."
    echo
    cat "$rows"/*.note 2>/dev/null
    if [ -s "$kept" ]; then
        echo
        cat "$kept"
    fi
} > "$out"
rm -f "$kept"
echo "wrote $out"
exit $status
