#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests (the output of `kubectl kustomize`): each object against
its schema, then how the objects fit together. Run by scripts/test-manifests.sh with the Python
of the virtualenv `make deps` makes (kubernetes-validate, cloudcoil-models-prometheus-operator).

Schemas, strict (a field the schema does not name is an error, as `kubectl apply` refuses it):
- built-in kinds: kubernetes-validate's JSON schemas of Kubernetes 1.30 and 1.37, `-strict`;
- the Prometheus Operator's kinds (ServiceMonitor, Probe, PrometheusRule): JSON schemas from the
  pydantic models that cloudcoil-models-prometheus-operator generates from the operator's CRDs,
  with `additionalProperties: false` on every object that lists its properties. A kind with no
  schema is an error, not a warning.

How they fit: the image's tag is Cargo.toml's version; the exporter runs as 65534 with a
read-only root, no capabilities and the probes on /-/ready and /-/healthy; the projected volume's
ConfigMap and Secret exist, the ConfigMap holds config.yml, and every password_file is a key of
the Secret mounted beside it (and every key is one); each Deployment has a Service of its own
that the ServiceMonitor or the Probe scrapes, a Probe's prober URL names that Service and its
targets are the vCenters of that exporter's config; the job of each scrape is one the alerts'
`job=~"…"` matchers select (VSphereExporterDown); the PrometheusRule's groups are those of
alerts/vsphere_backup_alerts.yml. For each Deployment it writes OUT/<name>/config.yml, its
password_file paths pointing at copies of the Secret's keys, for `--config.check`.

usage: validate-manifests.py VERSION OUT RENDERED.yaml...
"""

import base64
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from cloudcoil.models.prometheus_operator import v1 as monitoring_v1

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "alerts" / "vsphere_backup_alerts.yml"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
MONITORING_KINDS = {"ServiceMonitor", "Probe", "PrometheusRule"}
CONFIG_DIR = "/etc/vsphere_backup_exporter"

errors = []


def error(where, message):
    errors.append(f"{where}: {message}")


def strict(schema):
    """The schema with additionalProperties: false wherever properties are listed and nothing
    else is said about others. Walks the schema keywords only, so a field that happens to be
    called `properties` is not taken for the keyword."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if key in out:
            out[key] = strict(out[key])
    if "$defs" in out:
        out["$defs"] = {k: strict(v) for k, v in out["$defs"].items()}
    return out


MONITORING_VALIDATORS = {
    kind: jsonschema.Draft202012Validator(
        strict(getattr(monitoring_v1, kind).model_json_schema(by_alias=True))
    )
    for kind in MONITORING_KINDS
}


def check_schema(obj, where):
    kind = obj.get("kind")
    if kind in MONITORING_KINDS:
        if obj.get("apiVersion") != "monitoring.coreos.com/v1":
            error(where, f"apiVersion {obj.get('apiVersion')}, expected monitoring.coreos.com/v1")
            return
        for e in MONITORING_VALIDATORS[kind].iter_errors(obj):
            path = ".".join(str(p) for p in e.absolute_path)
            error(where, f"schema (prometheus-operator CRD): {path}: {e.message[:300]}")
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            error(where, f"schema (Kubernetes {version}, strict): {path}: {e.message[:300]}")
        except kubernetes_validate.SchemaNotFoundError:
            error(where, f"no schema for {obj.get('apiVersion')} {kind} in Kubernetes {version}")


def key(obj):
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_deployment(dep, objects, version, out):
    name = key(dep)[2]
    ns = key(dep)[1]
    where = f"Deployment {name}"
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    c = containers.get("exporter")
    if c is None:
        error(where, "no container named exporter")
        return None
    image_tag = c["image"].rsplit(":", 1)[-1] if ":" in c["image"].rsplit("/", 1)[-1] else ""
    if image_tag != version:
        error(where, f"image {c['image']}: the tag is not Cargo.toml's version {version}")
    pod_sc = spec.get("securityContext", {})
    sc = c.get("securityContext", {})
    for ok, what in [
        (pod_sc.get("runAsNonRoot") is True, "pod runAsNonRoot: true"),
        (pod_sc.get("runAsUser") == 65534, "pod runAsUser: 65534"),
        (sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true"),
        (sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false"),
        (sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities: drop [ALL]"),
        (c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/-/ready", "readinessProbe on /-/ready"),
        (c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/-/healthy", "livenessProbe on /-/healthy"),
        (c.get("resources", {}).get("limits", {}).get("memory") is not None, "a memory limit"),
        (c.get("resources", {}).get("requests", {}).get("memory") is not None, "a memory request"),
    ]:
        if not ok:
            error(where, f"lacks {what}")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if ports.get("http") != 10169:
        error(where, f"container port http is {ports.get('http')}, expected 10169")

    # The configuration directory: config.yml from the ConfigMap, password files from the Secret.
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == CONFIG_DIR]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if len(mounts) != 1 or "projected" not in volumes.get(mounts[0]["name"], {}):
        error(where, f"no projected volume mounted at {CONFIG_DIR}")
        return None
    config_text, secret_files = None, {}
    for source in volumes[mounts[0]["name"]]["projected"]["sources"]:
        if "configMap" in source:
            cm = objects.get(("ConfigMap", ns, source["configMap"]["name"]))
            if cm is None:
                error(where, f"mounts ConfigMap {source['configMap']['name']}, which is not rendered")
                continue
            config_text = cm.get("data", {}).get("config.yml")
        if "secret" in source:
            secret = objects.get(("Secret", ns, source["secret"]["name"]))
            if secret is None:
                error(where, f"mounts Secret {source['secret']['name']}, which is not rendered")
                continue
            secret_files.update({k: base64.b64decode(v) for k, v in secret.get("data", {}).items()})
            secret_files.update({k: v.encode() for k, v in secret.get("stringData", {}).items()})
    if config_text is None:
        error(where, f"no config.yml in the ConfigMap mounted at {CONFIG_DIR}")
        return None
    config = yaml.safe_load(config_text)
    vcenters = [v["name"] for v in config.get("vcenters", [])]
    used = set()
    check_dir = out / name
    check_dir.mkdir(parents=True, exist_ok=True)
    for v in config.get("vcenters", []):
        path = v.get("password_file", "")
        file = path[len(CONFIG_DIR) + 1:] if path.startswith(CONFIG_DIR + "/") else None
        if file not in secret_files:
            error(where, f"vCenter {v['name']}: password_file {path!r} is not a key of the mounted Secret")
            continue
        used.add(file)
        (check_dir / file).write_bytes(secret_files[file])
        (check_dir / file).chmod(0o600)
        v["password_file"] = str((check_dir / file).resolve())
    for unused in sorted(set(secret_files) - used):
        error(where, f"the Secret's key {unused} is no vCenter's password_file")
    (check_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    # Its Service: selects its pods and no other Deployment's.
    services = [
        o for k, o in objects.items()
        if k[0] == "Service" and k[1] == ns and selects(o["spec"].get("selector"), pod["metadata"]["labels"])
    ]
    if len(services) != 1:
        error(where, f"{len(services)} Services select its pods, expected 1")
        return None
    svc = services[0]
    for k, other in objects.items():
        if k[0] == "Deployment" and other is not dep and selects(
            svc["spec"]["selector"], other["spec"]["template"]["metadata"]["labels"]
        ):
            error(f"Service {svc['metadata']['name']}", f"also selects the pods of Deployment {k[2]}")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    if svc_ports.get("http", {}).get("targetPort") not in ("http", 10169):
        error(f"Service {svc['metadata']['name']}", "port http does not target the container port http")
    return svc, vcenters


def job_of(kind, obj):
    """The job label Prometheus gives the scrape, as the Prometheus Operator sets it."""
    if kind == "Probe":
        return obj["spec"].get("jobName") or f"probe/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    job = None
    for endpoint in obj["spec"]["endpoints"]:
        for r in endpoint.get("relabelings", []):
            if r.get("targetLabel") == "job" and r.get("action", "replace") == "replace" and not r.get("sourceLabels"):
                job = r.get("replacement")
    return job or "<the Service's name>"


def check_job(where, job):
    """The alerts that name a job (VSphereExporterDown) must see this scrape's."""
    for pattern in sorted(set(re.findall(r'job=~?"([^"]+)"', RULES.read_text()))):
        if not re.fullmatch(pattern, job):
            error(where, f"job {job!r} is not the alerts' job=~{pattern!r}")


def check_scrapes(svc, vcenters, objects):
    """The vCenters behind svc are scraped once: by a ServiceMonitor on /metrics or one Probe."""
    ns, name = svc["metadata"].get("namespace", ""), svc["metadata"]["name"]
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    scrapes = []
    for k, o in objects.items():
        if k[0] == "ServiceMonitor" and selects(o["spec"]["selector"].get("matchLabels"), svc["metadata"].get("labels", {})):
            if [e.get("port") for e in o["spec"]["endpoints"]] != ["http"]:
                error(f"ServiceMonitor {k[2]}", "expected one endpoint, port http")
            check_job(f"ServiceMonitor {k[2]}", job_of("ServiceMonitor", o))
            scrapes.append(f"ServiceMonitor {k[2]}")
        if k[0] == "Probe" and o["spec"]["prober"]["url"] == f"{name}.{ns}.svc:{port}":
            if o["spec"]["prober"].get("path") != "/probe":
                error(f"Probe {k[2]}", "prober path is not /probe")
            targets = o["spec"]["targets"]["staticConfig"]["static"]
            if sorted(targets) != sorted(vcenters):
                error(f"Probe {k[2]}", f"targets {targets} are not the exporter's vCenters {vcenters}")
            check_job(f"Probe {k[2]}", job_of("Probe", o))
            scrapes.append(f"Probe {k[2]}")
    if len(scrapes) != 1:
        error(f"Service {name}", f"scraped by {scrapes or 'nothing'}, expected exactly one ServiceMonitor or Probe")
    return scrapes


def squeeze(value):
    """The value with every run of whitespace in its strings made one space. kustomize reads YAML
    with go-yaml, which takes a folded scalar's more-indented lines with a blank line before them
    that PyYAML does not see (`expr: >-` in the rule file); PromQL and the annotations' templates
    do not care, so the rules compare equal without it."""
    if isinstance(value, dict):
        return {k: squeeze(v) for k, v in value.items()}
    if isinstance(value, list):
        return [squeeze(v) for v in value]
    return " ".join(value.split()) if isinstance(value, str) else value


def check_file(path, version, out):
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    objects = {}
    for obj in docs:
        where = f"{path}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        check_schema(obj, where)
        objects[key(obj)] = obj
    deployments = [o for k, o in objects.items() if k[0] == "Deployment"]
    if not deployments:
        error(path, "no Deployment")
    scraping = set()
    for dep in deployments:
        found = check_deployment(dep, objects, version, out)
        if found:
            scraping.update(check_scrapes(*found, objects))
    for k, o in objects.items():
        if k[0] in ("ServiceMonitor", "Probe") and f"{k[0]} {k[2]}" not in scraping:
            error(f"{path}: {k[0]} {k[2]}", "scrapes no exporter's Service (a Probe's prober URL is NAME.NAMESPACE.svc:PORT)")
    rules = [o for k, o in objects.items() if k[0] == "PrometheusRule"]
    if len(rules) != 1:
        error(path, f"{len(rules)} PrometheusRules, expected 1 (the alerts loaded once)")
    expected = squeeze(yaml.safe_load(RULES.read_text())["groups"])
    for rule in rules:
        if squeeze(rule["spec"]["groups"]) != expected:
            error(f"{path}: PrometheusRule {rule['metadata']['name']}",
                  "its groups differ from alerts/vsphere_backup_alerts.yml (python3 deploy/kubernetes/generate.py)")
    kinds = sorted({k[0] for k in objects})
    print(f"validate-manifests: {path}: {len(objects)} objects ({', '.join(kinds)})")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    version, out = sys.argv[1], Path(sys.argv[2])
    for path in sys.argv[3:]:
        check_file(path, version, out)
    for e in errors:
        print(f"validate-manifests: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
