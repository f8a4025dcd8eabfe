#!/usr/bin/env bash
# `make test-manifests` (part of `make test`, ~5 s): the Kubernetes manifests under deploy/.
#   1. deploy/kubernetes/base/prometheusrule.yaml is what deploy/kubernetes/generate.py makes of
#      alerts/vsphere_backup_alerts.yml;
#   2. `kubectl kustomize` renders deploy/kubernetes and deploy/kubernetes/many-vcenters;
#   3. every rendered object passes its schema, strictly, and the objects fit together
#      (scripts/validate-manifests.py: which schemas, which checks);
#   4. each exporter's configuration, as the ConfigMap and the Secret mount it, passes the
#      binary's --config.check.
# The rendered manifests stay in target/manifests/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/manifests-venv
OUT=target/manifests

fail() {
    echo "test-manifests: FAIL: $*" >&2
    exit 1
}

command -v kubectl >/dev/null ||
    fail "kubectl is missing (it renders the manifests with its built-in kustomize; Debian's kubernetes-client is too old for them)"
[ -x "$VENV/bin/python" ] || fail "$VENV is missing (make deps makes it)"

python3 deploy/kubernetes/generate.py --check || fail "the PrometheusRule is not the rule file's"

rm -rf "$OUT"
mkdir -p "$OUT"
rendered=()
for dir in deploy/kubernetes deploy/kubernetes/many-vcenters; do
    file=$OUT/$(basename "$dir").yaml
    kubectl kustomize "$dir" >"$file" 2>"$OUT/kustomize.log" ||
        fail "kubectl kustomize $dir: $(cat "$OUT/kustomize.log")"
    rendered+=("$file")
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
"$VENV/bin/python" scripts/validate-manifests.py "$version" "$OUT/config" "${rendered[@]}" ||
    fail "the rendered manifests do not validate (above)"

cargo build --quiet --bin vsphere_backup_exporter
for config in "$OUT"/config/*/config.yml; do
    target/debug/vsphere_backup_exporter --config.check --config.file="$config" >"$OUT/check.log" 2>&1 ||
        fail "--config.check of $(basename "$(dirname "$config")")'s configuration: $(cat "$OUT/check.log")"
done
echo "test-manifests: OK: $(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p' | sed 's/^/kustomize /')" \
    "rendered ${#rendered[@]} kustomizations; schemas: kubernetes-validate 1.37.0 (Kubernetes 1.30 and 1.37, strict)," \
    "prometheus-operator 0.80.1 CRDs (cloudcoil models, strict); configurations pass --config.check"
