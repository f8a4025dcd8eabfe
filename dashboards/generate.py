#!/usr/bin/env python3
"""Writes the Grafana dashboards of vsphere_backup_exporter (dashboards/*.json).

The JSON files are the product (import them, or provision them); this script is how they are
made, so that layout, ids and datasource references stay consistent. Edit here, then run
`python3 dashboards/generate.py`; `--check` exits 1 when a committed file differs from what the
script writes (`make check-alerts` runs it).

Every query filters on the dashboard variables: `$vcenter`, and `$cluster` where the metric can
be tied to a cluster (VM metrics through vsphere_vm_info, host metrics by their cluster_name).
Thresholds repeat those of alerts/vsphere_backup_alerts.yml (see the table at its top).
"""

import json
import sys
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}
V = 'vcenter=~"$vcenter"'
HOST = 'vcenter=~"$vcenter", cluster_name=~"$cluster", host_name=~"$host"'
TOOLS_OUTDATED = "guestToolsNeedUpgrade|guestToolsTooOld|guestToolsBlacklisted|guestToolsSupportedOld"


def vms(expr):
    """Keeps the VM series of expr whose VM is in the selected vCenters and clusters."""
    return f'({expr}) and on(vcenter, vm_id) vsphere_vm_info{{{V}, cluster_name=~"$cluster"}}'


def consistency_below_required():
    rank = lambda m: (
        f'(1 * ({m}{{{V}, level="crash"}} == 1) or 2 * ({m}{{{V}, level="filesystem"}} == 1)'
        f' or 3 * ({m}{{{V}, level="application"}} == 1))'
    )
    return (
        f"{rank('vsphere_vm_backup_consistency')} < on(vcenter, vm_id) group_left(required_level) "
        f"label_replace({rank('vsphere_vm_backup_consistency_required')}, "
        '"required_level", "$1", "level", "(.*)")'
    )


# The pitfalls, each as "how many now": the overview's stats and its graphs over time.
PITFALLS = [
    ("Leftover backup snapshots", "Backup-product snapshots older than 6 h (VSphereBackupSnapshotLeftover).",
     "count(" + vms(f'time() - vsphere_vm_snapshot_create_timestamp_seconds{{{V}, backup_product!=""}} > 6 * 3600') + ")"),
    ("Snapshots older than 3 days", "Any snapshot older than 3 days (VSphereSnapshotOld).",
     "count(" + vms(f"time() - vsphere_vm_snapshot_create_timestamp_seconds{{{V}}} > 3 * 86400") + ")"),
    ("VMs needing consolidation", "VMs whose disks need consolidation (VSphereConsolidationNeeded).",
     "count(" + vms(f"vsphere_vm_consolidation_needed{{{V}}} == 1") + ")"),
    ("VMs with outdated Tools", "Tools NeedUpgrade, TooOld, Blacklisted or SupportedOld (VSphereToolsOutdated).",
     "count(" + vms(f'vsphere_vm_tools_version_status{{{V}, status=~"{TOOLS_OUTDATED}"}}') + ")"),
    ("VMs below required consistency", "VMs that cannot get the backup consistency they require (VSphereConsistencyBelowRequired).",
     "count(" + vms(consistency_below_required()) + ")"),
    ("Hosts with concurrent backups", "Hosts with more than one VM holding a backup snapshot (VSphereConcurrentBackupsOnHost).",
     f'count(vsphere_host_backup_snapshots{{{V}, cluster_name=~"$cluster"}} > 1)'),
    ("VMs with missing backups", "VMs whose last backup is older than 26 h (VSphereBackupMissing).",
     "count(" + vms(f"time() - max by (vcenter, vm_id) (vsphere_vm_last_backup_timestamp_seconds{{{V}}}) > 26 * 3600") + ")"),
    ("Failed snapshot tasks (1 h)", "VMs with a snapshot task that failed in the last hour (VSphereSnapshotTaskFailed).",
     "count(" + vms(f'time() - vsphere_vm_snapshot_task_last_timestamp_seconds{{{V}, result="error"}} < 3600') + ")"),
]

HEALTH = [
    ("vCenters in sync", "vCenters whose inventory the exporter follows (vsphere_up = 1).",
     f"sum(vsphere_up{{{V}}})", "none"),
    ("vCenters out of sync", "vCenters the exporter cannot follow: their metrics are absent (VSphereCollectionFailing).",
     f"count(vsphere_up{{{V}}} == 0)", "none"),
    ("Inventory age", "How long ago the exporter's mirror of the vCenter was last updated or confirmed (VSphereInventoryStale).",
     f'max(time() - vsphere_source_last_update_timestamp_seconds{{{V}, source="inventory"}})', "s"),
    ("Snapshots", "Snapshots in the selected vCenters and clusters.",
     "count(" + vms(f"vsphere_vm_snapshot_create_timestamp_seconds{{{V}}}") + ")", "none"),
    ("Snapshot bytes", "Bytes held by all snapshots.",
     "sum(" + vms(f"vsphere_vm_snapshot_total_size_bytes{{{V}}}") + ")", "bytes"),
    ("VMs with Tools not running", "Powered-on VMs whose installed Tools do not run (VSphereToolsNotRunning).",
     "count(" + vms(
         f"vsphere_vm_tools_running{{{V}}} == 0 and on(vcenter, vm_id) vsphere_vm_info{{{V}, power_state=\"poweredOn\"}}"
         f" unless on(vcenter, vm_id) vsphere_vm_tools_version_status{{{V}, status=\"guestToolsNotInstalled\"}}") + ")", "none"),
    ("VMs without Tools", "VMs (not templates) without VMware Tools (VSphereToolsNotInstalled).",
     "count(" + vms(f'vsphere_vm_tools_version_status{{{V}, status="guestToolsNotInstalled"}} and on(vcenter, vm_id) vsphere_vm_info{{{V}, template="false"}}') + ")", "none"),
    ("Datastores with concurrent backups", "Datastores with more than one VM holding a backup snapshot (VSphereConcurrentBackupsOnDatastore).",
     f"count(vsphere_datastore_backup_snapshots{{{V}}} > 1)", "none"),
]


# The device checks, one table each on the overview: the VMs each alert would name.
DEVICE_TABLES = [
    ("Disks not in backups", "Disks that no snapshot captures, so no image-level backup holds them: independent disks and physical RDMs (VSphereDiskNotInBackups fires for powered-on VMs).",
     f"vsphere_vm_disks_not_snapshotted{{{V}}} > 0", {"reason": "Reason", "Value": "Disks"}),
    ("Foreign disks held", "Disks attached to a VM (usually a backup proxy) whose file is another VM's disk; multi-writer disks left out (VSphereBackupProxyHoldsForeignDisk).",
     f"vsphere_vm_foreign_disk_info{{{V}}} == 1", {"disk_file": "Disk file", "owner_vm_name": "Owner", "owner_vm_id": "Owner id"}),
    ("VMs that cannot be snapshotted", "SCSI bus sharing, multi-writer disks, PCI passthrough or Fault Tolerance: no snapshot, no image-level backup (VSphereVMCannotBeSnapshotted).",
     f"vsphere_vm_snapshot_blockers{{{V}}} > 0", {"reason": "Reason", "Value": "Count"}),
    ("Phantom snapshots", "Disks running on a delta while the VM has no snapshot (VSphereVMPhantomSnapshot; VMs needing consolidation are VSphereConsolidationNeeded's).",
     f"vsphere_vm_phantom_snapshot_disks{{{V}}} > 0", {"Value": "Disks on a delta"}),
    ("Snapshots without current", "VMs with snapshots but no current snapshot (VSphereSnapshotWithoutCurrent, after 15 min).",
     f"vsphere_vm_snapshot_current_missing{{{V}}} == 1", {}),
    ("CBT not tracking", "Disks without a change id on VMs with changed block tracking on: incrementals read them whole (VSphereCBTInactive, after 24 h).",
     f"vsphere_vm_cbt_inactive_disks{{{V}}} > 0", {"Value": "Disks"}),
    ("VMs waiting on a question", "VMs paused until someone answers a question; the report shows its text (VSphereVMQuestionPending).",
     f"vsphere_vm_question_pending{{{V}}} == 1", {}),
    ("VMs not connected", "VMs whose connection state is not connected: inaccessible, orphaned, invalid (VSphereVMInaccessible) or disconnected with their host.",
     f"vsphere_vm_connection_state{{{V}}} == 1", {"state": "State"}),
]


class Layout:
    """Places panels left to right in rows of 24 columns and numbers them."""

    def __init__(self):
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def row(self, title):
        self.newline()
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.newline()

    def newline(self):
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel = {"id": self.next_id, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}, **panel}
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        self.panels.append(panel)
        return panel


def target(expr, ref="A", legend="", instant=False, table=False):
    t = {"datasource": DS, "expr": expr, "refId": ref}
    if legend:
        t["legendFormat"] = legend
    if instant or table:
        t["instant"] = True
        t["range"] = False
    if table:
        t["format"] = "table"
    return t


def stat(title, description, expr, unit="none", thresholds=None):
    steps = thresholds or [{"color": "green", "value": None}, {"color": "orange", "value": 1}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, instant=True)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "noValue": "0",
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "center",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value",
        },
    }


def timeseries(title, description, targets, unit="none", overrides=None, stack=False, draw="line"):
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": draw,
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": False,
                    "stacking": {"mode": "normal" if stack else "none"},
                },
            },
            "overrides": overrides or [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def backups_overlay(ref):
    """A right-axis bar series of the VMs in backup, for the I/O panels."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [
            {"id": "unit", "value": "none"},
            {"id": "custom.axisPlacement", "value": "right"},
            {"id": "custom.axisLabel", "value": "VMs in backup"},
            {"id": "custom.drawStyle", "value": "bars"},
            {"id": "custom.fillOpacity", "value": 30},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "orange"}},
        ],
    }


def table(title, description, targets, rename, units, hide=("Time", "job", "instance", "__name__"), sort=None):
    overrides = [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": unit}]}
        for name, unit in units.items()
    ]
    if len(targets) > 1:
        # The merge transformation joins rows whose labels are equal; a metric name would keep
        # the queries' rows apart.
        targets = [{**t, "expr": f"max without () ({t['expr']})"} for t in targets]
    panel = {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {h: True for h in hide},
                "renameByName": rename,
                "indexByName": {name: i for i, name in enumerate(rename)},
            }},
        ],
        "fieldConfig": {"defaults": {"custom": {"filterable": True}}, "overrides": overrides},
        "options": {"showHeader": True, "footer": {"show": False}},
    }
    if sort:
        panel["options"]["sortBy"] = [{"displayName": sort, "desc": True}]
    return panel


def query_variable(name, label, query, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*",
        "current": {},
        "sort": 1,
        "hide": 0,
    }


def variables(extra=()):
    return {"list": [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        },
        query_variable("vcenter", "vCenter", "label_values(vsphere_up, vcenter)"),
        query_variable("cluster", "Cluster", f'label_values(vsphere_vm_info{{{V}}}, cluster_name)'),
        *extra,
    ]}


def dashboard(uid, title, description, layout, templating, annotations=()):
    panel_types = sorted({p["type"] for p in layout.panels if p["type"] != "row"})
    return {
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes vsphere_backup_exporter",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            *({"type": "panel", "id": t, "name": t, "version": ""} for t in panel_types),
        ],
        "annotations": {"list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            *annotations,
        ]},
        "description": description,
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [{
            "type": "dashboards", "tags": ["vsphere-backup"], "asDropdown": True,
            "title": "vSphere backup", "includeVars": True, "keepTime": True,
        }],
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["vsphere-backup", "vsphere"],
        "templating": templating,
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
    }


def overview():
    lay = Layout()
    lay.row("Backup pitfalls now")
    for title, description, expr in PITFALLS:
        lay.add(stat(title, description, expr), 3, 4)
    lay.row("Exporter and inventory")
    for title, description, expr, unit in HEALTH:
        steps = None
        if title == "vCenters in sync":
            steps = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
        elif title == "Inventory age":
            steps = [{"color": "green", "value": None}, {"color": "orange", "value": 600}]
        elif title in ("Snapshots", "Snapshot bytes"):
            steps = [{"color": "blue", "value": None}]
        lay.add(stat(title, description, expr, unit, steps), 3, 4)
    lay.row("Pitfalls over time")
    for title, description, expr in PITFALLS:
        lay.add(timeseries(f"{title} over time", description, [target(expr, legend="count")]), 6, 6)
    lay.row("Top 10")
    lay.add(table(
        "Oldest snapshots", "The ten oldest snapshots.",
        [target("topk(10, " + vms(f"time() - vsphere_vm_snapshot_create_timestamp_seconds{{{V}}}") + ")", table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "snapshot_name": "Snapshot", "backup_product": "Product", "Value": "Age"},
        {"Age": "s"}, hide=("Time", "job", "instance", "vm_id", "snapshot_id"), sort="Age"), 12, 8)
    lay.add(table(
        "Largest snapshot totals", "The ten VMs whose snapshots hold the most bytes.",
        [target("topk(10, " + vms(f"vsphere_vm_snapshot_total_size_bytes{{{V}}} > 0") + ")", table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "Value": "Snapshot bytes"},
        {"Snapshot bytes": "bytes"}, hide=("Time", "job", "instance", "vm_id"), sort="Snapshot bytes"), 12, 8)
    lay.add(table(
        "Snapshots' share of disk capacity", "The ten VMs whose snapshots hold the largest share of their disks' capacity (VSphereSnapshotLarge: 10 % / 25 %).",
        [target("topk(10, " + vms(f"vsphere_vm_snapshot_total_size_bytes{{{V}}} / (vsphere_vm_disk_capacity_bytes{{{V}}} > 0)") + ")", table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "Value": "Share"},
        {"Share": "percentunit"}, hide=("Time", "job", "instance", "vm_id"), sort="Share"), 12, 8)
    lay.add(table(
        "Longest without backup", "The ten VMs whose last recorded backup is oldest (VSphereBackupMissing: 26 h).",
        [target("topk(10, " + vms(f"time() - max by (vcenter, vm_id, vm_name) (vsphere_vm_last_backup_timestamp_seconds{{{V}}})") + ")", table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "Value": "Since last backup"},
        {"Since last backup": "s"}, hide=("Time", "job", "instance", "vm_id"), sort="Since last backup"), 12, 8)
    lay.add(table(
        "VMs with Tools problems", "VMs whose Tools block quiescing: outdated or not installed (VSphereToolsOutdated, VSphereToolsNotInstalled).",
        [target(vms(f'vsphere_vm_tools_version_status{{{V}, status=~"{TOOLS_OUTDATED}|guestToolsNotInstalled"}}'), table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "status": "Tools"},
        {}, hide=("Time", "job", "instance", "vm_id", "Value", "__name__")), 12, 8)
    lay.add(table(
        "Failed snapshot tasks (24 h)", "Snapshot create, remove and consolidate tasks that failed in the last 24 h (VSphereSnapshotTaskFailed).",
        [target(vms(f'time() - vsphere_vm_snapshot_task_last_timestamp_seconds{{{V}, result="error"}} < 86400'), table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "operation": "Operation", "Value": "Ago"},
        {"Ago": "s"}, hide=("Time", "job", "instance", "vm_id", "result")), 12, 8)
    lay.add(table(
        "VMs not in a backup policy", "Powered-on VMs without a tag of the categories named in backup_policy_categories: no backup job that selects VMs by tag covers them (VSphereVMNotInBackupPolicy, after 1 h). Empty when backup_policy_categories is not set.",
        [target(vms(f'vsphere_vm_backup_policy_tags{{{V}}} == 0 and on(vcenter, vm_id) vsphere_vm_info{{{V}, power_state="poweredOn"}}'), table=True)],
        {"vcenter": "vCenter", "vm_name": "VM"},
        {}, hide=("Time", "job", "instance", "vm_id", "Value", "__name__")), 12, 8)
    lay.add(table(
        "vCenter alarms", "The alarms vCenter has triggered (yellow or red), on every entity of the selected vCenters, from the root folder's triggeredAlarmState. Red, unacknowledged consolidation and snapshot alarms raise VSphereAlarmRed. An empty alarm name: the exporter could not read it.",
        [target(f"vsphere_alarm_triggered{{{V}}}", table=True)],
        {"vcenter": "vCenter", "status": "Status", "alarm_name": "Alarm", "entity_type": "Type",
         "entity_name": "Entity", "acknowledged": "Acknowledged"},
        {}, hide=("Time", "job", "instance", "entity_id", "alarm_id", "Value", "__name__")), 12, 8)
    lay.row("Disks and devices")
    for title, description, metric, columns in DEVICE_TABLES:
        rename = {"vcenter": "vCenter", "vm_name": "VM", **columns}
        hide = ("Time", "job", "instance", "vm_id", "__name__") + (() if "Value" in columns else ("Value",))
        lay.add(table(title, description, [target(vms(metric), table=True)], rename,
                      {}, hide=hide), 12, 8)
    return dashboard(
        "vsphere-backup-risk", "vSphere backup risk overview",
        "Every backup pitfall vsphere_backup_exporter measures: how many now, over time, and the worst cases.",
        lay, variables())


def snapshots():
    lay = Layout()
    lay.row("Snapshots now")
    lay.add(stat("Snapshots", "Snapshots in the selected vCenters and clusters.",
                 "count(" + vms(f"vsphere_vm_snapshot_create_timestamp_seconds{{{V}}}") + ")",
                 thresholds=[{"color": "blue", "value": None}]), 4, 4)
    lay.add(stat("Backup snapshots", "Snapshots a backup product made (by name).",
                 "count(" + vms(f'vsphere_vm_snapshot_create_timestamp_seconds{{{V}, backup_product!=""}}') + ")",
                 thresholds=[{"color": "blue", "value": None}]), 4, 4)
    lay.add(stat("VMs with snapshots", "VMs that hold at least one snapshot.",
                 "count(" + vms(f"vsphere_vm_snapshots{{{V}}} > 0") + ")",
                 thresholds=[{"color": "blue", "value": None}]), 4, 4)
    lay.add(stat("Snapshot bytes", "Bytes held by all snapshots.",
                 "sum(" + vms(f"vsphere_vm_snapshot_total_size_bytes{{{V}}}") + ")", "bytes",
                 thresholds=[{"color": "blue", "value": None}]), 4, 4)
    lay.add(stat("Quiesced", "Share of snapshots taken with the guest quiesced.",
                 "avg(" + vms(f"vsphere_vm_snapshot_quiesced{{{V}}}") + ")", "percentunit",
                 thresholds=[{"color": "blue", "value": None}]), 4, 4)
    lay.add(stat("Deepest chain", "The most snapshots on one branch of a VM's tree (VSphereSnapshotChainDeep: over 3).",
                 "max(" + vms(f"vsphere_vm_snapshot_chain_depth{{{V}}}") + ")",
                 thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 4}]), 4, 4)
    lay.row("Every snapshot")
    per_snapshot = lambda metric: vms(f"{metric}{{{V}}}")
    lay.add(table(
        "Every snapshot", "Every snapshot with its VM, backup product, age, size, quiescing and the depth of the VM's snapshot chain.",
        [
            target("time() - " + per_snapshot("vsphere_vm_snapshot_create_timestamp_seconds"), "A", table=True),
            target(per_snapshot("vsphere_vm_snapshot_size_bytes"), "B", table=True),
            target(per_snapshot("vsphere_vm_snapshot_quiesced"), "C", table=True),
            target(f"0 * vsphere_vm_snapshot_size_bytes{{{V}}} + on(vcenter, vm_id) group_left() "
                   + vms(f"vsphere_vm_snapshot_chain_depth{{{V}}}"), "D", table=True),
        ],
        {"vcenter": "vCenter", "vm_name": "VM", "snapshot_name": "Snapshot", "backup_product": "Product",
         "Value #A": "Age", "Value #B": "Size", "Value #C": "Quiesced", "Value #D": "Chain depth"},
        {"Age": "s", "Size": "bytes", "Quiesced": "bool_yes_no"},
        hide=("Time", "job", "instance", "vm_id", "snapshot_id"), sort="Age"), 24, 12)
    lay.row("Over time")
    lay.add(timeseries("Snapshot count per vCenter", "Snapshots per vCenter.",
                       [target("count by (vcenter) (" + vms(f"vsphere_vm_snapshot_create_timestamp_seconds{{{V}}}") + ")", legend="{{vcenter}}")]), 12, 8)
    lay.add(timeseries("Snapshot bytes per vCenter", "Bytes held by snapshots per vCenter.",
                       [target("sum by (vcenter) (" + vms(f"vsphere_vm_snapshot_total_size_bytes{{{V}}}") + ")", legend="{{vcenter}}")], "bytes"), 12, 8)
    lay.add(timeseries("Snapshot bytes per datastore", "Bytes of snapshot files (delta disks, .vmsn) per datastore.",
                       [target(f"vsphere_datastore_snapshot_bytes{{{V}}}", legend="{{datastore_name}}")], "bytes"), 12, 8)
    lay.add(timeseries("Backup snapshots per datastore", "VMs with disks on the datastore that hold a backup snapshot (VSphereConcurrentBackupsOnDatastore: over 1).",
                       [target(f"vsphere_datastore_backup_snapshots{{{V}}}", legend="{{datastore_name}}")]), 12, 8)
    lay.add(timeseries("Datastore free space and snapshot bytes", "Free space of each datastore beside the bytes its snapshot files hold (VSphereDatastoreLowSpace, VSphereDatastoreFillingWithSnapshots).",
                       [target(f"vsphere_datastore_free_bytes{{{V}}}", "A", legend="{{datastore_name}} free"),
                        target(f"vsphere_datastore_snapshot_bytes{{{V}}}", "B", legend="{{datastore_name}} snapshots")], "bytes"), 24, 8)
    lay.row("VMs with snapshots")
    per_vm = lambda expr: vms(expr)
    lay.add(table(
        "Every VM with snapshots", "Every VM that holds snapshots: how many, how deep, how large, and whether its disks need consolidation.",
        [
            target(per_vm(f"vsphere_vm_snapshots{{{V}}} > 0"), "A", table=True),
            target(per_vm(f"vsphere_vm_snapshot_chain_depth{{{V}}} > 0"), "B", table=True),
            target(per_vm(f"vsphere_vm_snapshot_total_size_bytes{{{V}}} and on(vcenter, vm_id) vsphere_vm_snapshots{{{V}}} > 0"), "C", table=True),
            target(per_vm(f"vsphere_vm_snapshot_total_size_bytes{{{V}}} / (vsphere_vm_disk_capacity_bytes{{{V}}} > 0)"), "D", table=True),
            target(per_vm(f"vsphere_vm_consolidation_needed{{{V}}} and on(vcenter, vm_id) vsphere_vm_snapshots{{{V}}} > 0"), "E", table=True),
        ],
        {"vcenter": "vCenter", "vm_name": "VM", "Value #A": "Snapshots", "Value #B": "Chain depth",
         "Value #C": "Snapshot bytes", "Value #D": "Share of disks", "Value #E": "Consolidation needed"},
        {"Snapshot bytes": "bytes", "Share of disks": "percentunit", "Consolidation needed": "bool_yes_no"},
        hide=("Time", "job", "instance", "vm_id"), sort="Snapshot bytes"), 24, 10)
    lay.row("Snapshot task durations")
    quantile = lambda q: target(
        f"histogram_quantile({q}, sum by (le, operation) (rate(vsphere_snapshot_task_duration_seconds_bucket{{{V}, result=\"success\"}}[$__rate_interval])))",
        f"Q{int(q * 100)}", legend=f"{{{{operation}}}} p{int(q * 100)}")
    lay.add(timeseries(
        "Snapshot task durations", "How long successful snapshot tasks ran, by operation: the median and the 90th percentile of the tasks that ended in each interval, from the histogram vsphere_snapshot_task_duration_seconds (buckets 1 s to 4 h). Removals that grow longer mean deltas that grow: backups hold their snapshots longer, or VMs write more.",
        [quantile(0.5), quantile(0.9)], "s"), 12, 8)
    lay.add(table(
        "Slowest last removals", "The ten VMs whose last snapshot removal ran longest, and how it ended (VSphereSnapshotRemovalSlow: over 30 minutes).",
        [target("topk(10, " + vms(f'vsphere_vm_snapshot_task_last_duration_seconds{{{V}, operation="remove"}}') + ")", table=True)],
        {"vcenter": "vCenter", "vm_name": "VM", "result": "Result", "Value": "Duration"},
        {"Duration": "s"}, hide=("Time", "job", "instance", "vm_id", "operation"), sort="Duration"), 12, 8)
    return dashboard(
        "vsphere-snapshots", "vSphere snapshots",
        "Every VM snapshot vsphere_backup_exporter sees, and the datastore space they take.",
        lay, variables())


def host_io():
    lay = Layout()
    backups = lambda ref: target(f"sum(vsphere_host_backup_snapshots{{{HOST}}})", ref, legend="VMs in backup")
    lay.row("Backups and blackout windows")
    lay.add(timeseries("VMs in backup per host", "VMs on each host that hold a backup snapshot now (VSphereConcurrentBackupsOnHost: over 1).",
                       [target(f"vsphere_host_backup_snapshots{{{HOST}}}", legend="{{host_name}}")], draw="bars", stack=True), 12, 7)
    lay.add(timeseries("Blackout windows", "1 while a configured blackout window is active (VSphereBackupDuringBlackout).",
                       [target("max by (window) (vsphere_backup_blackout_active)", legend="{{window}}")]), 12, 7)
    lay.row("Disks")
    lay.add(timeseries("Disk latency (max)", "disk.maxTotalLatency.latest per host, with the VMs in backup on the right axis (VSphereHostDiskLatencyHighDuringBackup: over 30 ms).",
                       [target(f"vsphere_host_disk_max_latency_seconds{{{HOST}}}", "A", legend="{{host_name}}"), backups("B")],
                       "s", [backups_overlay("B")]), 12, 8)
    lay.add(timeseries("Disk throughput", "disk.read/write.average per host.",
                       [target(f"vsphere_host_disk_read_bytes_per_second{{{HOST}}}", "A", legend="{{host_name}} read"),
                        target(f"vsphere_host_disk_write_bytes_per_second{{{HOST}}}", "B", legend="{{host_name}} write")], "Bps"), 12, 8)
    lay.row("Datastores")
    lay.add(timeseries("Datastore read latency", "datastore.totalReadLatency.average per host and datastore (VSphereDatastoreLatencyHigh: over 30 ms).",
                       [target(f"vsphere_host_datastore_read_latency_seconds{{{HOST}}}", "A", legend="{{host_name}} {{datastore_name}}"), backups("B")],
                       "s", [backups_overlay("B")]), 12, 8)
    lay.add(timeseries("Datastore write latency", "datastore.totalWriteLatency.average per host and datastore (VSphereDatastoreLatencyHigh: over 30 ms).",
                       [target(f"vsphere_host_datastore_write_latency_seconds{{{HOST}}}", "A", legend="{{host_name}} {{datastore_name}}"), backups("B")],
                       "s", [backups_overlay("B")]), 12, 8)
    lay.add(timeseries("Datastore throughput", "Bytes read and written per host and datastore.",
                       [target(f"vsphere_host_datastore_read_bytes_per_second{{{HOST}}}", "A", legend="{{host_name}} {{datastore_name}} read"),
                        target(f"vsphere_host_datastore_write_bytes_per_second{{{HOST}}}", "B", legend="{{host_name}} {{datastore_name}} write")], "Bps"), 24, 8)
    lay.row("Network")
    lay.add(timeseries("NIC throughput", "net.bytesRx/bytesTx.average per vmnic.",
                       [target(f"vsphere_host_network_receive_bytes_per_second{{{HOST}}}", "A", legend="{{host_name}} {{nic}} rx"),
                        target(f"vsphere_host_network_transmit_bytes_per_second{{{HOST}}}", "B", legend="{{host_name}} {{nic}} tx")], "Bps"), 12, 8)
    lay.add(timeseries("NIC dropped packets", "net.droppedRx/droppedTx.summation per vmnic and sample window, with the VMs in backup (VSphereHostNetworkDropsDuringBackup).",
                       [target(f"vsphere_host_network_dropped_packets{{{HOST}}}", "A", legend="{{host_name}} {{nic}} {{direction}}"), backups("B")],
                       "none", [backups_overlay("B")]), 12, 8)
    lay.row("Storage adapters (HBA)")
    lay.add(timeseries("HBA latency", "storageAdapter.totalRead/WriteLatency.average per vmhba, with the VMs in backup.",
                       [target(f"vsphere_host_storage_adapter_read_latency_seconds{{{HOST}}}", "A", legend="{{host_name}} {{adapter}} read"),
                        target(f"vsphere_host_storage_adapter_write_latency_seconds{{{HOST}}}", "B", legend="{{host_name}} {{adapter}} write"),
                        backups("C")], "s", [backups_overlay("C")]), 12, 8)
    lay.add(timeseries("HBA throughput", "storageAdapter.read/write.average per vmhba.",
                       [target(f"vsphere_host_storage_adapter_read_bytes_per_second{{{HOST}}}", "A", legend="{{host_name}} {{adapter}} read"),
                        target(f"vsphere_host_storage_adapter_write_bytes_per_second{{{HOST}}}", "B", legend="{{host_name}} {{adapter}} write")], "Bps"), 12, 8)
    lay.row("Context")
    lay.add(timeseries("CPU usage", "cpu.usage.average per host, for context.",
                       [target(f"vsphere_host_cpu_usage_ratio{{{HOST}}}", legend="{{host_name}}")], "percentunit"), 12, 8)
    lay.add(timeseries("Age of the newest performance sample", "How old each host's newest sample is: stale counters, not quiet hosts, when this grows.",
                       [target(f"time() - vsphere_host_perf_sample_timestamp_seconds{{{HOST}}}", legend="{{host_name}}")], "s"), 12, 8)
    lay.add(table(
        "Hosts", "Connection state and maintenance mode of each host (disconnected hosts are not queried).",
        [target(f"vsphere_host_connection_state{{{HOST}}}", "A", table=True),
         target(f"vsphere_host_in_maintenance{{{HOST}}} * on(vcenter, host_id) group_left(state) "
                f"vsphere_host_connection_state{{{HOST}}}", "B", table=True)],
        {"vcenter": "vCenter", "cluster_name": "Cluster", "host_name": "Host", "state": "Connection", "Value #B": "In maintenance"},
        {"In maintenance": "bool_yes_no"}, hide=("Time", "job", "instance", "host_id", "Value #A")), 24, 8)
    host = query_variable("host", "Host", f'label_values(vsphere_host_info{{{V}, cluster_name=~"$cluster"}}, host_name)')
    annotations = [
        {
            "name": "Blackout windows",
            "datasource": DS,
            "enable": True,
            "iconColor": "red",
            "expr": "max by (window) (vsphere_backup_blackout_active) == 1",
            "step": "1m",
            "titleFormat": "Blackout window",
            "textFormat": "{{window}}",
            "tagKeys": "window",
        },
        {
            "name": "Backups running",
            "datasource": DS,
            "enable": True,
            "iconColor": "orange",
            "expr": f"sum(vsphere_host_backup_snapshots{{{HOST}}}) > 0",
            "step": "1m",
            "titleFormat": "VMs in backup",
            "textFormat": "",
            "tagKeys": "",
        },
    ]
    return dashboard(
        "vsphere-host-io", "vSphere host I/O during backups",
        "Disk, datastore, NIC and HBA latency and throughput per host, next to the backups that load them and the blackout windows.",
        lay, variables([host]), annotations)


DASHBOARDS = {
    "vsphere-backup-risk.json": overview,
    "vsphere-snapshots.json": snapshots,
    "vsphere-host-io.json": host_io,
}


def main():
    check = "--check" in sys.argv[1:]
    here = Path(__file__).resolve().parent
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        path = here / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"dashboards differ from dashboards/generate.py: {', '.join(stale)} "
              "(run python3 dashboards/generate.py)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
