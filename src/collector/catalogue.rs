//! Every metric the exporter serves, declared once: name, type, labels, help. Collectors emit
//! through these specs, the metrics table of docs/metrics.md is checked against them, and the
//! golden test proves the real output carries exactly these names and labels.

/// The Prometheus metric type of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Ever-growing, named `_total`.
    Counter,
    /// A cumulative histogram: `_bucket{le}`, `_sum` and `_count` series under one name, the
    /// `le` label after the spec's own.
    Histogram,
}

/// One metric's declaration. `labels` lists every label name in output order; `vcenter` is
/// always first and is filled in by the [`super::Sink`].
#[derive(Debug)]
pub struct MetricSpec {
    /// The spec's position in [`ALL`], which is its position in the output.
    pub index: usize,
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

const fn gauge(
    index: usize,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        index,
        name,
        help,
        kind: Kind::Gauge,
        labels,
    }
}

const fn counter(
    index: usize,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        index,
        name,
        help,
        kind: Kind::Counter,
        labels,
    }
}

const fn histogram(
    index: usize,
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        index,
        name,
        help,
        kind: Kind::Histogram,
        labels,
    }
}

const VM: &[&str] = &["vcenter", "vm_id", "vm_name"];
const SNAPSHOT: &[&str] = &[
    "vcenter",
    "vm_id",
    "vm_name",
    "snapshot_id",
    "snapshot_name",
    "backup_product",
];

pub const UP: MetricSpec = gauge(
    0,
    "vsphere_up",
    &["vcenter"],
    "1 if the exporter's copy of this vCenter's inventory is current (its last full read succeeded and changes are flowing), else 0. While 0, the vCenter's other metrics are absent, not stale.",
);
pub const SOURCE_UP: MetricSpec = gauge(
    1,
    "vsphere_source_up",
    &["vcenter", "source"],
    "1 if what the exporter follows of this vCenter through a source (inventory, events, perf) is current, else 0.",
);
pub const SOURCE_LAST_UPDATE: MetricSpec = gauge(
    2,
    "vsphere_source_last_update_timestamp_seconds",
    &["vcenter", "source"],
    "When a source last received a change from this vCenter or confirmed it had none (Unix time); the source's metrics are as of then.",
);
pub const SOURCE_SYNC_DURATION: MetricSpec = gauge(
    3,
    "vsphere_source_sync_duration_seconds",
    &["vcenter", "source"],
    "How long a source's last full read of this vCenter took (for the inventory: the full retrieval at start or after a failure).",
);
pub const COLLECTOR_DURATION: MetricSpec = gauge(
    4,
    "vsphere_collector_duration_seconds",
    &["vcenter", "collector"],
    "How long a collector took to turn what the exporter holds of this vCenter into metrics, the last time it ran (it runs when its sources change, not on every scrape).",
);
pub const COLLECTOR_SUCCESS: MetricSpec = gauge(
    5,
    "vsphere_collector_success",
    &["vcenter", "collector"],
    "1 if a collector's last run for this vCenter succeeded, else 0 (its metrics are then absent).",
);
pub const LOGIN_ATTEMPTS: MetricSpec = counter(
    6,
    "vsphere_login_attempts_total",
    &["vcenter", "result"],
    "Logins to this vCenter tried by the exporter, by result: success, invalid_login (wrong user or password; the exporter then waits login_retry_interval before trying again) or error.",
);
pub const RESYNCS: MetricSpec = counter(
    7,
    "vsphere_resyncs_total",
    &["vcenter", "reason"],
    "Times the exporter stopped following this vCenter's changes and started again with a full read, by reason.",
);
pub const CALL_ERRORS: MetricSpec = counter(
    8,
    "vsphere_call_errors_total",
    &["vcenter", "call", "kind"],
    "Failed calls to this vCenter by SOAP method and kind of failure (timeout, connect, http, fault, malformed, too_large, transport).",
);

pub const VM_INFO: MetricSpec = gauge(
    9,
    "vsphere_vm_info",
    &[
        "vcenter",
        "vm_id",
        "vm_name",
        "host_name",
        "cluster_name",
        "datacenter_name",
        "guest_id",
        "power_state",
        "template",
    ],
    "Virtual machine metadata; always 1.",
);
pub const VM_DISK_CAPACITY: MetricSpec = gauge(
    10,
    "vsphere_vm_disk_capacity_bytes",
    VM,
    "Sum of the capacities of the virtual machine's virtual disks; only for virtual machines that have snapshots.",
);
pub const VM_CONSOLIDATION_NEEDED: MetricSpec = gauge(
    11,
    "vsphere_vm_consolidation_needed",
    VM,
    "1 if vCenter reports that the virtual machine's disks need consolidation (runtime.consolidationNeeded).",
);

pub const VM_SNAPSHOTS: MetricSpec = gauge(
    12,
    "vsphere_vm_snapshots",
    VM,
    "Number of snapshots in the virtual machine's whole snapshot tree.",
);
pub const VM_SNAPSHOT_CHAIN_DEPTH: MetricSpec = gauge(
    13,
    "vsphere_vm_snapshot_chain_depth",
    VM,
    "Snapshots on the deepest branch of the virtual machine's snapshot tree (0 without snapshots).",
);
pub const VM_SNAPSHOT_TOTAL_SIZE: MetricSpec = gauge(
    14,
    "vsphere_vm_snapshot_total_size_bytes",
    VM,
    "Sum of the sizes of the virtual machine's snapshots (see vsphere_vm_snapshot_size_bytes).",
);
pub const SNAPSHOT_CREATE_TIMESTAMP: MetricSpec = gauge(
    15,
    "vsphere_vm_snapshot_create_timestamp_seconds",
    SNAPSHOT,
    "When the snapshot was taken (createTime), in seconds since the Unix epoch.",
);
pub const SNAPSHOT_SIZE: MetricSpec = gauge(
    16,
    "vsphere_vm_snapshot_size_bytes",
    SNAPSHOT,
    "Size of the snapshot as govmomi and PowerCLI compute it: its .vmsn file plus the delta disks it added over its parent; the current snapshot also counts the running delta that grows on top of it.",
);
pub const SNAPSHOT_QUIESCED: MetricSpec = gauge(
    17,
    "vsphere_vm_snapshot_quiesced",
    SNAPSHOT,
    "1 if the guest file system was quiesced when the snapshot was taken, else 0.",
);

pub const VM_TOOLS_VERSION_STATUS: MetricSpec = gauge(
    18,
    "vsphere_vm_tools_version_status",
    &["vcenter", "vm_id", "vm_name", "status"],
    "VMware Tools version status of the virtual machine (guest.toolsVersionStatus2 as the status label); always 1.",
);
pub const VM_TOOLS_RUNNING: MetricSpec = gauge(
    19,
    "vsphere_vm_tools_running",
    VM,
    "1 if VMware Tools are running in the guest (guestToolsRunning or guestToolsExecutingScripts), else 0.",
);

const HOST: &[&str] = &["vcenter", "host_id", "host_name", "cluster_name"];
const HOST_DATASTORE: &[&str] = &[
    "vcenter",
    "host_id",
    "host_name",
    "cluster_name",
    "datastore_id",
    "datastore_name",
];
const HOST_NIC: &[&str] = &["vcenter", "host_id", "host_name", "cluster_name", "nic"];
const HOST_ADAPTER: &[&str] = &["vcenter", "host_id", "host_name", "cluster_name", "adapter"];

pub const HOST_INFO: MetricSpec = gauge(
    20,
    "vsphere_host_info",
    &[
        "vcenter",
        "host_id",
        "host_name",
        "cluster_name",
        "datacenter_name",
        "version",
        "build",
    ],
    "ESXi host metadata (version and build from summary.config.product); always 1.",
);
pub const HOST_CONNECTION_STATE: MetricSpec = gauge(
    21,
    "vsphere_host_connection_state",
    &["vcenter", "host_id", "host_name", "cluster_name", "state"],
    "How vCenter reaches the host (state: connected, disconnected or notResponding); always 1. Only connected hosts report I/O counters.",
);
pub const HOST_IN_MAINTENANCE: MetricSpec = gauge(
    22,
    "vsphere_host_in_maintenance",
    HOST,
    "1 if the host is in maintenance mode, else 0.",
);
pub const HOST_DISK_READ: MetricSpec = gauge(
    23,
    "vsphere_host_disk_read_bytes_per_second",
    HOST,
    "Bytes per second the host read from all its disks, averaged over the samples since the previous read (disk.read.average).",
);
pub const HOST_DISK_WRITE: MetricSpec = gauge(
    24,
    "vsphere_host_disk_write_bytes_per_second",
    HOST,
    "Bytes per second the host wrote to all its disks, averaged over the samples since the previous read (disk.write.average).",
);
pub const HOST_DISK_MAX_LATENCY: MetricSpec = gauge(
    25,
    "vsphere_host_disk_max_latency_seconds",
    HOST,
    "Highest disk latency of any disk of the host (guest-visible: device plus kernel), the worst sample since the previous read (disk.maxTotalLatency.latest).",
);
pub const HOST_DATASTORE_READ_LATENCY: MetricSpec = gauge(
    26,
    "vsphere_host_datastore_read_latency_seconds",
    HOST_DATASTORE,
    "Average time a read from the datastore took on this host, the worst sample since the previous read (datastore.totalReadLatency.average).",
);
pub const HOST_DATASTORE_WRITE_LATENCY: MetricSpec = gauge(
    27,
    "vsphere_host_datastore_write_latency_seconds",
    HOST_DATASTORE,
    "Average time a write to the datastore took on this host, the worst sample since the previous read (datastore.totalWriteLatency.average).",
);
pub const HOST_DATASTORE_READ_BYTES: MetricSpec = gauge(
    28,
    "vsphere_host_datastore_read_bytes_per_second",
    HOST_DATASTORE,
    "Bytes per second the host read from the datastore, averaged over the samples since the previous read (datastore.read.average).",
);
pub const HOST_DATASTORE_WRITE_BYTES: MetricSpec = gauge(
    29,
    "vsphere_host_datastore_write_bytes_per_second",
    HOST_DATASTORE,
    "Bytes per second the host wrote to the datastore, averaged over the samples since the previous read (datastore.write.average).",
);
pub const HOST_NETWORK_RECEIVE: MetricSpec = gauge(
    30,
    "vsphere_host_network_receive_bytes_per_second",
    HOST_NIC,
    "Bytes per second the physical NIC received, averaged over the samples since the previous read (net.bytesRx.average).",
);
pub const HOST_NETWORK_TRANSMIT: MetricSpec = gauge(
    31,
    "vsphere_host_network_transmit_bytes_per_second",
    HOST_NIC,
    "Bytes per second the physical NIC sent, averaged over the samples since the previous read (net.bytesTx.average).",
);
pub const HOST_NETWORK_DROPPED: MetricSpec = gauge(
    32,
    "vsphere_host_network_dropped_packets",
    &[
        "vcenter",
        "host_id",
        "host_name",
        "cluster_name",
        "nic",
        "direction",
    ],
    "Packets the physical NIC dropped (direction: receive or transmit) in the samples since the previous read (net.droppedRx/droppedTx.summation).",
);
pub const HOST_ADAPTER_READ_LATENCY: MetricSpec = gauge(
    33,
    "vsphere_host_storage_adapter_read_latency_seconds",
    HOST_ADAPTER,
    "Average time a read through the storage adapter took, the worst sample since the previous read (storageAdapter.totalReadLatency.average).",
);
pub const HOST_ADAPTER_WRITE_LATENCY: MetricSpec = gauge(
    34,
    "vsphere_host_storage_adapter_write_latency_seconds",
    HOST_ADAPTER,
    "Average time a write through the storage adapter took, the worst sample since the previous read (storageAdapter.totalWriteLatency.average).",
);
pub const HOST_ADAPTER_READ_BYTES: MetricSpec = gauge(
    35,
    "vsphere_host_storage_adapter_read_bytes_per_second",
    HOST_ADAPTER,
    "Bytes per second read through the storage adapter, averaged over the samples since the previous read (storageAdapter.read.average).",
);
pub const HOST_ADAPTER_WRITE_BYTES: MetricSpec = gauge(
    36,
    "vsphere_host_storage_adapter_write_bytes_per_second",
    HOST_ADAPTER,
    "Bytes per second written through the storage adapter, averaged over the samples since the previous read (storageAdapter.write.average).",
);
pub const HOST_CPU_USAGE: MetricSpec = gauge(
    37,
    "vsphere_host_cpu_usage_ratio",
    HOST,
    "Share of the host's CPU capacity in use (0 to 1), averaged over the samples since the previous read (cpu.usage.average).",
);
pub const HOST_PERF_SAMPLE_TIMESTAMP: MetricSpec = gauge(
    38,
    "vsphere_host_perf_sample_timestamp_seconds",
    HOST,
    "Time of the newest performance sample read for the host (Unix time). It stops moving when the host's counters are stale, while a quiet host's keeps up.",
);

// The backup checks (issue 8): last backup, snapshot task history, stagger, datastores,
// consistency, blackout windows.
const DATASTORE: &[&str] = &["vcenter", "datastore_id", "datastore_name"];
const VM_OPERATION_RESULT: &[&str] = &["vcenter", "vm_id", "vm_name", "operation", "result"];

pub const VM_LAST_BACKUP_TIMESTAMP: MetricSpec = gauge(
    39,
    "vsphere_vm_last_backup_timestamp_seconds",
    &["vcenter", "vm_id", "vm_name", "source"],
    "The newest last successful backup a backup product recorded in the virtual machine's custom attributes or notes, by source (last_backup_sources); with source events, the newest successful snapshot removal a backup account (last_backup_event_users) ran on it. In seconds since the Unix epoch.",
);
pub const VM_LAST_BACKUP_PARSE_ERROR: MetricSpec = gauge(
    40,
    "vsphere_vm_last_backup_parse_error",
    &["vcenter", "vm_id", "vm_name", "source"],
    "1 if a value or notes line of this source is present on the virtual machine and does not parse as a time, 0 if it parsed.",
);
pub const VM_SNAPSHOT_TASK_LAST_TIMESTAMP: MetricSpec = gauge(
    41,
    "vsphere_vm_snapshot_task_last_timestamp_seconds",
    VM_OPERATION_RESULT,
    "When the virtual machine's last snapshot task or event of this operation (create, remove, consolidate) and result (success, error) ended, from vCenter's event history.",
);
pub const VM_SNAPSHOT_TASK_LAST_USER: MetricSpec = gauge(
    42,
    "vsphere_vm_snapshot_task_last_user_info",
    &[
        "vcenter",
        "vm_id",
        "vm_name",
        "operation",
        "result",
        "user_name",
    ],
    "The user who ran the virtual machine's last snapshot task of this operation and result (empty for events vCenter posts itself); always 1.",
);
pub const SNAPSHOT_TASK_EVENTS: MetricSpec = counter(
    43,
    "vsphere_snapshot_task_events_total",
    &["vcenter", "operation", "result"],
    "Snapshot and consolidation tasks and events of this vCenter seen by the exporter (the read-back window at start included), by operation and result; a consolidateDisks task and the consolidation event vCenter posts for it count once.",
);
pub const VM_SNAPSHOT_INFO: MetricSpec = gauge(
    44,
    "vsphere_vm_snapshot_info",
    &[
        "vcenter",
        "vm_id",
        "vm_name",
        "snapshot_id",
        "created_by",
        "description",
    ],
    "A snapshot, the user whose create task made it (empty when the event history no longer holds the task) and its description; always 1.",
);
pub const VM_DISK_CHANGED_WITH_SNAPSHOTS: MetricSpec = counter(
    45,
    "vsphere_vm_disk_changed_with_snapshots_total",
    VM,
    "Reconfigurations that changed a virtual disk's capacity while the virtual machine held a snapshot (VmReconfiguredEvent), seen by the exporter; for VMs with snapshots or a count.",
);
pub const VM_RECONFIGURED_WITH_SNAPSHOTS: MetricSpec = counter(
    46,
    "vsphere_vm_reconfigured_with_snapshots_total",
    VM,
    "Reconfigurations of any kind while the virtual machine held a snapshot (VmReconfiguredEvent), seen by the exporter; for VMs with snapshots or a count.",
);
pub const HOST_BACKUP_SNAPSHOTS: MetricSpec = gauge(
    47,
    "vsphere_host_backup_snapshots",
    &["vcenter", "host_id", "host_name", "cluster_name"],
    "Virtual machines on this host that hold a backup product's snapshot now (0 for none).",
);
pub const DATASTORE_BACKUP_SNAPSHOTS: MetricSpec = gauge(
    48,
    "vsphere_datastore_backup_snapshots",
    DATASTORE,
    "Virtual machines with files on this datastore that hold a backup product's snapshot now (0 for none).",
);
pub const DATASTORE_INFO: MetricSpec = gauge(
    49,
    "vsphere_datastore_info",
    &[
        "vcenter",
        "datastore_id",
        "datastore_name",
        "datastore_type",
        "extent_disks",
    ],
    "Datastore metadata: summary.type as datastore_type, and the LUNs behind a VMFS datastore (info.vmfs.extent diskName) joined by commas; always 1.",
);
pub const DATASTORE_CAPACITY: MetricSpec = gauge(
    50,
    "vsphere_datastore_capacity_bytes",
    DATASTORE,
    "Capacity of the datastore (summary.capacity).",
);
pub const DATASTORE_FREE: MetricSpec = gauge(
    51,
    "vsphere_datastore_free_bytes",
    DATASTORE,
    "Free space of the datastore (summary.freeSpace).",
);
pub const DATASTORE_UNCOMMITTED: MetricSpec = gauge(
    52,
    "vsphere_datastore_uncommitted_bytes",
    DATASTORE,
    "Space thin-provisioned disks on the datastore may still take (summary.uncommitted).",
);
pub const DATASTORE_ACCESSIBLE: MetricSpec = gauge(
    53,
    "vsphere_datastore_accessible",
    DATASTORE,
    "1 if the datastore is accessible (summary.accessible), else 0.",
);
pub const DATASTORE_SNAPSHOT_BYTES: MetricSpec = gauge(
    54,
    "vsphere_datastore_snapshot_bytes",
    DATASTORE,
    "Bytes of snapshot files (delta disks, .vmsn, .vmem) on the datastore, over every virtual machine with snapshots.",
);
pub const VM_BACKUP_CONSISTENCY: MetricSpec = gauge(
    55,
    "vsphere_vm_backup_consistency",
    &["vcenter", "vm_id", "vm_name", "level"],
    "The best consistency a backup of the virtual machine can get now (level application, filesystem, crash, or none where a snapshot is impossible: see vsphere_vm_snapshot_blockers); always 1.",
);
pub const VM_BACKUP_CONSISTENCY_REQUIRED: MetricSpec = gauge(
    56,
    "vsphere_vm_backup_consistency_required",
    &["vcenter", "vm_id", "vm_name", "level"],
    "The consistency the custom attribute named by consistency_required_attribute asks for (level application, filesystem, crash, or invalid when it says something else); always 1.",
);
pub const VM_CBT_ENABLED: MetricSpec = gauge(
    57,
    "vsphere_vm_cbt_enabled",
    VM,
    "1 if changed block tracking is enabled (config.changeTrackingEnabled), else 0.",
);
pub const BLACKOUT_ACTIVE: MetricSpec = gauge(
    58,
    "vsphere_backup_blackout_active",
    &["window"],
    "1 while the configured blackout window is open (its cron start less than its duration ago), else 0. Exporter-level: no vcenter label.",
);
pub const BLACKOUT_NEXT_START: MetricSpec = gauge(
    59,
    "vsphere_backup_blackout_next_start_timestamp_seconds",
    &["window"],
    "When the configured blackout window next opens (Unix time). Exporter-level: no vcenter label.",
);
pub const SLOW_UPDATE_WAITS: MetricSpec = counter(
    60,
    "vsphere_slow_update_waits_total",
    &["vcenter"],
    "Update waits (WaitForUpdatesEx) this vCenter did not answer within their wait plus 8 s; the exporter followed them on while vCenter answered a heartbeat every 5 s, instead of starting over with a full read. A rising count is a loaded vCenter.",
);
pub const VM_SNAPSHOT_TASK_LAST_DURATION: MetricSpec = gauge(
    61,
    "vsphere_vm_snapshot_task_last_duration_seconds",
    VM_OPERATION_RESULT,
    "How long the virtual machine's last snapshot task of this operation (create, remove, consolidate) ran, from its start to its completion, in seconds; result is how that task ended (success, error). A long removal is the VM stunned while its delta is merged.",
);
pub const SNAPSHOT_TASK_DURATION: MetricSpec = histogram(
    62,
    "vsphere_snapshot_task_duration_seconds",
    &["vcenter", "operation", "result"],
    "How long snapshot tasks ran, from start to completion, by operation (create, remove, consolidate) and result (success, error); each task counted once when it ends.",
);
pub const VM_TAG_INFO: MetricSpec = gauge(
    63,
    "vsphere_vm_tag_info",
    &["vcenter", "vm_id", "vm_name", "category", "tag"],
    "A vSphere tag on the virtual machine, for the categories named in tag_info_categories only; always 1.",
);
pub const VM_BACKUP_POLICY_TAGS: MetricSpec = gauge(
    64,
    "vsphere_vm_backup_policy_tags",
    VM,
    "The number of vSphere tags of the categories named in backup_policy_categories on the virtual machine (templates left out); 0 means no backup policy that selects by tag covers it.",
);

// The disk checks (the `disks` collector; the last two are the `vm` collector's, the current
// snapshot the `snapshots` collector's). Cardinality: `reason` takes 3 values (disks not
// snapshotted) or 4 (blockers), and series exist only where the count is above 0, so at most a
// few per VM with such disks; `vsphere_vm_foreign_disk_info` has one series per foreign disk
// and owner (`disk_file` is a datastore path, `[ds] dir/name.vmdk`): leftovers, few and
// transient, never one per disk of the inventory.
pub const VM_DISKS_NOT_SNAPSHOTTED: MetricSpec = gauge(
    65,
    "vsphere_vm_disks_not_snapshotted",
    &["vcenter", "vm_id", "vm_name", "reason"],
    "The virtual machine's virtual disks that a snapshot does not capture, so no image-level backup through the snapshot API holds them, by reason: independent_persistent, independent_nonpersistent or physical_rdm (a physical-mode raw device mapping, whatever its disk mode); only where above 0.",
);
pub const VM_FOREIGN_DISK_INFO: MetricSpec = gauge(
    66,
    "vsphere_vm_foreign_disk_info",
    &[
        "vcenter",
        "vm_id",
        "vm_name",
        "disk_file",
        "owner_vm_id",
        "owner_vm_name",
    ],
    "A virtual disk attached to this virtual machine that belongs to another one (its file lies in the owner's directory, or both list it), as a backup proxy leaves a hot-added disk it did not give back; multi-writer disks are left out; always 1.",
);
pub const VM_SNAPSHOT_BLOCKERS: MetricSpec = gauge(
    67,
    "vsphere_vm_snapshot_blockers",
    &["vcenter", "vm_id", "vm_name", "reason"],
    "Devices or settings that make a snapshot of the virtual machine impossible, so no image-level backup runs, by reason: scsi_bus_sharing (SCSI controllers with bus sharing), multi_writer_disk, pci_passthrough (DirectPath I/O, vGPU) or fault_tolerance; only where above 0.",
);
pub const VM_PHANTOM_SNAPSHOT_DISKS: MetricSpec = gauge(
    68,
    "vsphere_vm_phantom_snapshot_disks",
    VM,
    "Virtual disks running on a snapshot delta (a parent backing in the disk's own directory, or a name-000001.vmdk file) while the virtual machine has no snapshot: a chain vCenter no longer shows; only where above 0.",
);
pub const VM_SNAPSHOT_CURRENT_MISSING: MetricSpec = gauge(
    69,
    "vsphere_vm_snapshot_current_missing",
    VM,
    "1 while the virtual machine has snapshots but none is current (snapshot.currentSnapshot unset, which vCenter also does for a moment while a snapshot is taken or removed), else 0; only for virtual machines with snapshots.",
);
pub const VM_CBT_INACTIVE_DISKS: MetricSpec = gauge(
    70,
    "vsphere_vm_cbt_inactive_disks",
    VM,
    "Virtual disks without a change id on a virtual machine with changed block tracking on: CBT starts at the next stun/unstun (snapshot, power cycle), until then every incremental backup reads the whole disk; independent disks, physical-mode RDMs and multi-writer disks are left out; only where above 0.",
);
pub const VM_QUESTION_PENDING: MetricSpec = gauge(
    71,
    "vsphere_vm_question_pending",
    VM,
    "1 while the virtual machine waits on a question (runtime.question, such as no more space for a virtual disk) and is paused until someone answers it; only where 1.",
);
pub const VM_CONNECTION_STATE: MetricSpec = gauge(
    72,
    "vsphere_vm_connection_state",
    &["vcenter", "vm_id", "vm_name", "state"],
    "1 for a virtual machine vCenter holds but is not connected to (runtime.connectionState disconnected, orphaned, inaccessible or invalid); connected virtual machines have no series.",
);
pub const ALARM_TRIGGERED: MetricSpec = gauge(
    73,
    "vsphere_alarm_triggered",
    &[
        "vcenter",
        "entity_type",
        "entity_id",
        "entity_name",
        "alarm_id",
        "alarm_name",
        "status",
        "acknowledged",
    ],
    "An alarm vCenter has triggered on an entity (the root folder's triggeredAlarmState); always 1. status is yellow or red (gray and green states are not triggered alarms); acknowledged is true or false; alarm_name is Alarm.info.name, empty while it cannot be read; entity_name is empty for an entity the inventory does not hold.",
);

/// Every spec of a vCenter's metrics, in output order.
pub const ALL: &[&MetricSpec] = &[
    &UP,
    &SOURCE_UP,
    &SOURCE_LAST_UPDATE,
    &SOURCE_SYNC_DURATION,
    &COLLECTOR_DURATION,
    &COLLECTOR_SUCCESS,
    &LOGIN_ATTEMPTS,
    &RESYNCS,
    &CALL_ERRORS,
    &VM_INFO,
    &VM_DISK_CAPACITY,
    &VM_CONSOLIDATION_NEEDED,
    &VM_SNAPSHOTS,
    &VM_SNAPSHOT_CHAIN_DEPTH,
    &VM_SNAPSHOT_TOTAL_SIZE,
    &SNAPSHOT_CREATE_TIMESTAMP,
    &SNAPSHOT_SIZE,
    &SNAPSHOT_QUIESCED,
    &VM_TOOLS_VERSION_STATUS,
    &VM_TOOLS_RUNNING,
    &HOST_INFO,
    &HOST_CONNECTION_STATE,
    &HOST_IN_MAINTENANCE,
    &HOST_DISK_READ,
    &HOST_DISK_WRITE,
    &HOST_DISK_MAX_LATENCY,
    &HOST_DATASTORE_READ_LATENCY,
    &HOST_DATASTORE_WRITE_LATENCY,
    &HOST_DATASTORE_READ_BYTES,
    &HOST_DATASTORE_WRITE_BYTES,
    &HOST_NETWORK_RECEIVE,
    &HOST_NETWORK_TRANSMIT,
    &HOST_NETWORK_DROPPED,
    &HOST_ADAPTER_READ_LATENCY,
    &HOST_ADAPTER_WRITE_LATENCY,
    &HOST_ADAPTER_READ_BYTES,
    &HOST_ADAPTER_WRITE_BYTES,
    &HOST_CPU_USAGE,
    &HOST_PERF_SAMPLE_TIMESTAMP,
    &VM_LAST_BACKUP_TIMESTAMP,
    &VM_LAST_BACKUP_PARSE_ERROR,
    &VM_SNAPSHOT_TASK_LAST_TIMESTAMP,
    &VM_SNAPSHOT_TASK_LAST_USER,
    &SNAPSHOT_TASK_EVENTS,
    &VM_SNAPSHOT_INFO,
    &VM_DISK_CHANGED_WITH_SNAPSHOTS,
    &VM_RECONFIGURED_WITH_SNAPSHOTS,
    &HOST_BACKUP_SNAPSHOTS,
    &DATASTORE_BACKUP_SNAPSHOTS,
    &DATASTORE_INFO,
    &DATASTORE_CAPACITY,
    &DATASTORE_FREE,
    &DATASTORE_UNCOMMITTED,
    &DATASTORE_ACCESSIBLE,
    &DATASTORE_SNAPSHOT_BYTES,
    &VM_BACKUP_CONSISTENCY,
    &VM_BACKUP_CONSISTENCY_REQUIRED,
    &VM_CBT_ENABLED,
    &BLACKOUT_ACTIVE,
    &BLACKOUT_NEXT_START,
    &SLOW_UPDATE_WAITS,
    &VM_SNAPSHOT_TASK_LAST_DURATION,
    &SNAPSHOT_TASK_DURATION,
    &VM_TAG_INFO,
    &VM_BACKUP_POLICY_TAGS,
    &VM_DISKS_NOT_SNAPSHOTTED,
    &VM_FOREIGN_DISK_INFO,
    &VM_SNAPSHOT_BLOCKERS,
    &VM_PHANTOM_SNAPSHOT_DISKS,
    &VM_SNAPSHOT_CURRENT_MISSING,
    &VM_CBT_INACTIVE_DISKS,
    &VM_QUESTION_PENDING,
    &VM_CONNECTION_STATE,
    &ALARM_TRIGGERED,
];

/// The exporter's own metric (not per vCenter), served by `/metrics` only.
pub const BUILD_INFO_NAME: &str = "vsphere_backup_exporter_build_info";
/// The exporter's own reload metrics (see [`crate::reload`]), as Prometheus names its own.
pub const RELOAD_SUCCESSFUL_NAME: &str = "vsphere_backup_exporter_config_last_reload_successful";
pub const RELOAD_SUCCESS_TIMESTAMP_NAME: &str =
    "vsphere_backup_exporter_config_last_reload_success_timestamp_seconds";
/// Every metric of the exporter's own that docs/metrics.md lists besides [`ALL`].
pub const OWN: [&str; 3] = [
    BUILD_INFO_NAME,
    RELOAD_SUCCESSFUL_NAME,
    RELOAD_SUCCESS_TIMESTAMP_NAME,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_positions_in_all() {
        for (i, spec) in ALL.iter().enumerate() {
            assert_eq!(spec.index, i, "{}", spec.name);
        }
    }

    #[test]
    fn counters_end_in_total_and_gauges_do_not() {
        for spec in ALL {
            let total = spec.name.ends_with("_total");
            assert_eq!(total, spec.kind == Kind::Counter, "{}", spec.name);
        }
    }

    /// A histogram's series add `_bucket`, `_sum` and `_count` and the `le` label themselves.
    #[test]
    fn histograms_name_no_series_suffix_or_le_label() {
        for spec in ALL.iter().filter(|s| s.kind == Kind::Histogram) {
            for suffix in ["_bucket", "_sum", "_count"] {
                assert!(!spec.name.ends_with(suffix), "{}", spec.name);
            }
            assert!(!spec.labels.contains(&"le"), "{}", spec.name);
        }
    }

    /// The metrics table of docs/metrics.md lists exactly the catalogue, with the same labels.
    #[test]
    fn docs_metrics_table_matches_the_catalogue() {
        let doc = include_str!("../../docs/metrics.md");
        let rows: Vec<(String, String)> = doc
            .lines()
            .filter(|l| l.starts_with("| `vsphere_"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_string(), cells[2].to_string())
            })
            .collect();
        for spec in ALL {
            let row = rows.iter().find(|(name, _)| name == spec.name);
            let Some((_, labels)) = row else {
                panic!("{} is missing from the table of docs/metrics.md", spec.name);
            };
            assert_eq!(*labels, spec.labels.join(", "), "{}", spec.name);
        }
        for (name, _) in &rows {
            assert!(
                OWN.contains(&name.as_str()) || ALL.iter().any(|s| s.name == name),
                "docs/metrics.md lists {name}, which the exporter does not serve"
            );
        }
    }
}
