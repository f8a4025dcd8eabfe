//! ESXi hosts as the inventory mirror shows them: metadata (`vsphere_host_info`), how vCenter
//! reaches them (`vsphere_host_connection_state`) and maintenance mode. It reads the mirror
//! only, so hosts are reported even while the host I/O counters are off or failing; the
//! `hostio` collector adds the counters of the connected ones.
//!
//! Cardinality: one series per host for each metric (vCenter's limit is 2,500 hosts).

use super::catalogue::{HOST_CONNECTION_STATE, HOST_IN_MAINTENANCE, HOST_INFO};
use super::{CollectError, Collector, Context, Sink};

pub struct Hosts;

impl Collector for Hosts {
    fn name(&self) -> &'static str {
        "hosts"
    }

    fn collect(&self, ctx: &Context<'_>, out: &mut Sink) -> Result<(), CollectError> {
        let inventory = ctx.inventory;
        for host in inventory.hosts.values() {
            let at = inventory.host_placement(host);
            let labels = [host.id.as_str(), at.host_name, at.cluster_name];
            out.gauge(
                &HOST_INFO,
                &[
                    labels[0],
                    labels[1],
                    labels[2],
                    at.datacenter_name,
                    &host.version,
                    &host.build,
                ],
                1.0,
            );
            if !host.connection_state.is_empty() {
                out.gauge(
                    &HOST_CONNECTION_STATE,
                    &[labels[0], labels[1], labels[2], &host.connection_state],
                    1.0,
                );
            }
            out.gauge(
                &HOST_IN_MAINTENANCE,
                &labels,
                f64::from(u8::from(host.in_maintenance)),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::collector::test_support::{config, run, samples, value};
    use crate::vsphere::Inventory;
    use crate::vsphere::model::{ComputeResource, Datacenter, Folder, Host, MoRef};

    #[test]
    fn every_host_has_info_state_and_maintenance_with_its_cluster() {
        let mut inv = Inventory::default();
        inv.datacenters.insert(
            "datacenter-2".into(),
            Datacenter {
                id: "datacenter-2".into(),
                name: "DC0".into(),
            },
        );
        inv.folders.insert(
            "group-h4".into(),
            Folder {
                id: "group-h4".into(),
                name: "host".into(),
                parent: Some(MoRef::new("Datacenter", "datacenter-2")),
            },
        );
        inv.compute_resources.insert(
            "domain-c7".into(),
            ComputeResource {
                id: "domain-c7".into(),
                name: "prod".into(),
                is_cluster: true,
                parent: Some(MoRef::new("Folder", "group-h4")),
            },
        );
        for (id, state, maintenance) in [
            ("host-1", "connected", false),
            ("host-2", "connected", true),
            ("host-3", "disconnected", false),
            ("host-4", "", false),
        ] {
            inv.hosts.insert(
                id.into(),
                Host {
                    id: id.into(),
                    name: format!("esx-{id}"),
                    parent: Some(MoRef::new("ClusterComputeResource", "domain-c7")),
                    connection_state: state.into(),
                    in_maintenance: maintenance,
                    version: "8.0.3".into(),
                    build: "24022510".into(),
                },
            );
        }
        let out = run(&inv, &config());
        assert_eq!(samples(&out, "vsphere_host_info").len(), 4);
        assert_eq!(
            value(
                &out,
                "vsphere_host_info",
                &[
                    ("host_id", "host-2"),
                    ("host_name", "esx-host-2"),
                    ("cluster_name", "prod"),
                    ("datacenter_name", "DC0"),
                    ("version", "8.0.3"),
                    ("build", "24022510"),
                ]
            ),
            Some(1.0)
        );
        let state = samples(&out, "vsphere_host_connection_state");
        assert_eq!(state.len(), 3, "no series without a known state");
        assert_eq!(
            value(
                &out,
                "vsphere_host_connection_state",
                &[("host_id", "host-3"), ("state", "disconnected")]
            ),
            Some(1.0)
        );
        let maintenance = |id| value(&out, "vsphere_host_in_maintenance", &[("host_id", id)]);
        assert_eq!(
            (maintenance("host-1"), maintenance("host-2")),
            (Some(0.0), Some(1.0))
        );
    }
}
