//! Host I/O: what saturates a host while backups run — its disks, datastores, storage adapters
//! and NICs — from the `perf` source's counters, next to the backups (same host labels as the
//! backup metrics). Values are converted to base units here, in [`to_base_unit`] only.
//!
//! Series exist for connected hosts the perf source has read. A counter the vCenter lacks has no
//! series (the source logged it once). Datastores are named from the inventory by the volume id
//! the counters carry; a volume the inventory does not know keeps its id as `datastore_name`
//! and an empty `datastore_id`.
//!
//! Cardinality per host: 6 host series, 4 per datastore it mounts, 4 per physical NIC, 4 per
//! storage adapter (a typical host: 40 to 80).

use std::collections::HashMap;

use super::catalogue::{
    HOST_ADAPTER_READ_BYTES, HOST_ADAPTER_READ_LATENCY, HOST_ADAPTER_WRITE_BYTES,
    HOST_ADAPTER_WRITE_LATENCY, HOST_CPU_USAGE, HOST_DATASTORE_READ_BYTES,
    HOST_DATASTORE_READ_LATENCY, HOST_DATASTORE_WRITE_BYTES, HOST_DATASTORE_WRITE_LATENCY,
    HOST_DISK_MAX_LATENCY, HOST_DISK_READ, HOST_DISK_WRITE, HOST_NETWORK_DROPPED,
    HOST_NETWORK_RECEIVE, HOST_NETWORK_TRANSMIT, HOST_PERF_SAMPLE_TIMESTAMP, MetricSpec,
};
use super::{CollectError, Collector, Context, Sink};
use crate::source::INVENTORY;
use crate::source::perf::PERF;
use crate::vsphere::perf::{HOST_COUNTERS, datastore_instance};
use crate::vsphere::perf_poll::HostIo;

pub struct HostIoCollector;

/// A counter value in vCenter's unit (`unitInfo.key`) in Prometheus' base unit: KBps → bytes
/// per second (×1024), ms → seconds, percent (vCenter sends hundredths: 10000 = 100 %) → a 0–1
/// ratio, counts as they are. `None` for a unit the exporter does not know how to convert.
pub fn to_base_unit(unit: &str, value: f64) -> Option<f64> {
    match unit {
        "kiloBytesPerSecond" => Some(value * 1024.0),
        "millisecond" => Some(value / 1000.0),
        "percent" => Some(value / 10_000.0),
        "number" => Some(value),
        _ => None,
    }
}

/// What a counter's instance adds to the host labels.
#[derive(Clone, Copy)]
enum Extra {
    None,
    Datastore,
    Nic,
    NicDirection(&'static str),
    Adapter,
}

/// The metric of each counter of [`HOST_COUNTERS`], by name.
fn metric_of(counter: &str) -> Option<(&'static MetricSpec, Extra)> {
    Some(match counter {
        "cpu.usage.average" => (&HOST_CPU_USAGE, Extra::None),
        "disk.read.average" => (&HOST_DISK_READ, Extra::None),
        "disk.write.average" => (&HOST_DISK_WRITE, Extra::None),
        "disk.maxTotalLatency.latest" => (&HOST_DISK_MAX_LATENCY, Extra::None),
        "datastore.totalReadLatency.average" => (&HOST_DATASTORE_READ_LATENCY, Extra::Datastore),
        "datastore.totalWriteLatency.average" => (&HOST_DATASTORE_WRITE_LATENCY, Extra::Datastore),
        "datastore.read.average" => (&HOST_DATASTORE_READ_BYTES, Extra::Datastore),
        "datastore.write.average" => (&HOST_DATASTORE_WRITE_BYTES, Extra::Datastore),
        "net.bytesRx.average" => (&HOST_NETWORK_RECEIVE, Extra::Nic),
        "net.bytesTx.average" => (&HOST_NETWORK_TRANSMIT, Extra::Nic),
        "net.droppedRx.summation" => (&HOST_NETWORK_DROPPED, Extra::NicDirection("receive")),
        "net.droppedTx.summation" => (&HOST_NETWORK_DROPPED, Extra::NicDirection("transmit")),
        "storageAdapter.totalReadLatency.average" => (&HOST_ADAPTER_READ_LATENCY, Extra::Adapter),
        "storageAdapter.totalWriteLatency.average" => (&HOST_ADAPTER_WRITE_LATENCY, Extra::Adapter),
        "storageAdapter.read.average" => (&HOST_ADAPTER_READ_BYTES, Extra::Adapter),
        "storageAdapter.write.average" => (&HOST_ADAPTER_WRITE_BYTES, Extra::Adapter),
        _ => return None,
    })
}

impl Collector for HostIoCollector {
    fn name(&self) -> &'static str {
        "hostio"
    }

    fn reads(&self) -> &'static [&'static str] {
        &[INVENTORY, PERF]
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let Some(io) = ctx.source::<HostIo>(PERF) else {
            return Ok(());
        };
        let inventory = ctx.inventory;
        let datastores: HashMap<&str, (&str, &str)> = inventory
            .datastores
            .values()
            .filter_map(|d| {
                Some((
                    datastore_instance(&d.url)?,
                    (d.id.as_str(), d.name.as_str()),
                ))
            })
            .collect();
        for (host_id, samples) in &io.hosts {
            let Some(host) = inventory.hosts.get(host_id) else {
                continue;
            };
            let at = inventory.host_placement(host);
            let base = [host.id.as_str(), at.host_name, at.cluster_name];
            if let Some(t) = samples.newest_sample {
                out.gauge(&HOST_PERF_SAMPLE_TIMESTAMP, &base, t as f64);
            }
            for (index, instance, raw) in &samples.values {
                let Some(counter) = HOST_COUNTERS.get(*index) else {
                    continue;
                };
                let Some((spec, extra)) = metric_of(counter.name) else {
                    continue;
                };
                let unit = io.counters.get(*index).and_then(|c| c.as_ref());
                let Some(value) = unit.and_then(|c| to_base_unit(&c.unit, *raw)) else {
                    continue;
                };
                let [id, name, cluster] = base;
                match extra {
                    Extra::None => out.gauge(spec, &base, value),
                    Extra::Datastore => {
                        let (ds_id, ds_name) = datastores
                            .get(instance.as_str())
                            .copied()
                            .unwrap_or(("", instance.as_str()));
                        out.gauge(spec, &[id, name, cluster, ds_id, ds_name], value);
                    }
                    Extra::Nic | Extra::Adapter => {
                        out.gauge(spec, &[id, name, cluster, instance], value)
                    }
                    Extra::NicDirection(direction) => {
                        out.gauge(spec, &[id, name, cluster, instance, direction], value)
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::collector::test_support::{config, run_with, samples, value};
    use crate::source::{Erased, SourceStatus};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{Datastore, Host};
    use crate::vsphere::perf::CounterInfo;
    use crate::vsphere::perf_poll::HostSamples;

    #[test]
    fn conversions_to_base_units() {
        assert_eq!(
            to_base_unit("kiloBytesPerSecond", 1000.0),
            Some(1_024_000.0)
        );
        assert_eq!(to_base_unit("millisecond", 25.0), Some(0.025));
        assert_eq!(to_base_unit("percent", 4_250.0), Some(0.425));
        assert_eq!(to_base_unit("number", 12.0), Some(12.0));
        assert_eq!(to_base_unit("megaHertz", 1.0), None);
    }

    #[test]
    fn every_host_counter_has_a_metric() {
        for c in HOST_COUNTERS {
            assert!(metric_of(c.name).is_some(), "{}", c.name);
        }
    }

    fn index(name: &str) -> usize {
        HOST_COUNTERS.iter().position(|c| c.name == name).unwrap()
    }

    fn io() -> HostIo {
        let mut counters = vec![None; HOST_COUNTERS.len()];
        let mut set = |name: &str, key, unit: &str| {
            counters[index(name)] = Some(CounterInfo {
                key,
                name: name.into(),
                unit: unit.into(),
            })
        };
        set("disk.read.average", 130, "kiloBytesPerSecond");
        set("datastore.totalWriteLatency.average", 188, "millisecond");
        set("net.droppedTx.summation", 532, "number");
        set("cpu.usage.average", 2, "percent");
        set("storageAdapter.read.average", 164, "furlongs"); // a unit it cannot convert
        let values = vec![
            (index("cpu.usage.average"), String::new(), 2_500.0),
            (index("disk.read.average"), String::new(), 2_000.0),
            (
                index("datastore.totalWriteLatency.average"),
                "vol-a".into(),
                41.0,
            ),
            (
                index("datastore.totalWriteLatency.average"),
                "vol-unknown".into(),
                7.0,
            ),
            (index("net.droppedTx.summation"), "vmnic1".into(), 12.0),
            (index("storageAdapter.read.average"), "vmhba0".into(), 9.0),
            (index("disk.write.average"), String::new(), 5.0), // counter not resolved
        ];
        let mut hosts = BTreeMap::new();
        hosts.insert(
            "host-1".to_string(),
            HostSamples {
                newest_sample: Some(1_795_608_000),
                values,
            },
        );
        hosts.insert("host-gone".to_string(), HostSamples::default());
        HostIo { counters, hosts }
    }

    fn inventory() -> Inventory {
        let mut inv = Inventory::default();
        inv.hosts.insert(
            "host-1".into(),
            Host {
                id: "host-1".into(),
                name: "esx1".into(),
                connection_state: "connected".into(),
                ..Default::default()
            },
        );
        inv.datastores.insert(
            "datastore-9".into(),
            Datastore {
                id: "datastore-9".into(),
                name: "san-01".into(),
                url: "ds:///vmfs/volumes/vol-a/".into(),
                ..Default::default()
            },
        );
        inv
    }

    #[test]
    fn host_counters_become_base_unit_series_with_datastore_names() {
        let sources = [Erased {
            name: PERF,
            version: 1,
            value: Some(Arc::new(io())),
            status: SourceStatus::default(),
        }];
        let out = run_with(&inventory(), &config(), &sources);
        let host = [
            ("host_id", "host-1"),
            ("host_name", "esx1"),
            ("cluster_name", ""),
        ];
        assert_eq!(
            value(&out, "vsphere_host_disk_read_bytes_per_second", &host),
            Some(2_048_000.0)
        );
        assert_eq!(
            value(&out, "vsphere_host_cpu_usage_ratio", &host),
            Some(0.25)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_host_datastore_write_latency_seconds",
                &[
                    ("datastore_id", "datastore-9"),
                    ("datastore_name", "san-01")
                ]
            ),
            Some(0.041)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_host_datastore_write_latency_seconds",
                &[("datastore_id", ""), ("datastore_name", "vol-unknown")]
            ),
            Some(0.007)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_host_network_dropped_packets",
                &[("nic", "vmnic1"), ("direction", "transmit")]
            ),
            Some(12.0)
        );
        assert_eq!(
            value(&out, "vsphere_host_perf_sample_timestamp_seconds", &host),
            Some(1_795_608_000.0)
        );
        assert!(samples(&out, "vsphere_host_storage_adapter_read_bytes_per_second").is_empty());
        assert!(samples(&out, "vsphere_host_disk_write_bytes_per_second").is_empty());
        // A host the inventory no longer has gets nothing.
        let series = out.iter().filter(|s| s.name.starts_with("vsphere_host_"));
        assert!(series.clone().all(|s| s.labels["host_id"] == "host-1"));
        assert_eq!(
            series.count(),
            6 + 3 + 1,
            "hostio's 6, the hosts collector's 3 and the stagger collector's backup snapshots"
        );
    }
}
