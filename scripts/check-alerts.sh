#!/usr/bin/env bash
# `make check-alerts`: Prometheus's and Alertmanager's own checks of alerts/, and the dashboards
# against their generator. The Rust tests (tests/it/mixin/) check the rest: conventions, runbook,
# the digest template, dashboard structure, and everything end to end in a real Prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool check rules alerts/vsphere_backup_alerts.yml
promtool test rules alerts/tests/*.yml
amtool check-config alerts/alertmanager.example.yml
python3 dashboards/generate.py --check
echo "check-alerts: ok"
