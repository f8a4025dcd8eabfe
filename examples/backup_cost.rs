//! What the backup checks add to the traffic with vCenter, measured against the simulator's
//! `scale` scenario (which carries their inputs at realistic rates): the bytes of the VM
//! properties they add to every VM, of `config.extraConfig` read for Windows guests only (the
//! fallback where vCenter refuses the keyed path) and for every VM (what reading it whole would
//! cost), of the datastore properties, and of the event follower: the history read per event
//! and an idle round (a `latestPage` wait that ends empty and a `ReadNextEvents` with nothing).
//! Also what the disk checks cost: `config.hardware.device` for every VM (the `disks`
//! collector on) against the VMs with snapshots only (off), and one VM's device list, which is
//! what a change of it sends (vCenter sends the whole value of the path asked for).
//!
//! ```sh
//! tests/vcsim/vcsim -scenario scale -vms 40000 -snapshot-vms 13334 -cert-out ca.pem -facts f.json
//! cargo run --release --example backup_cost -- URL USER PASS CAFILE
//! ```
//!
//! Prints one JSON object. The requests are the crate's own envelopes
//! ([`vsphere_backup_exporter::vsphere::soap`], [`vsphere_backup_exporter::vsphere::events`]).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use vsphere_backup_exporter::backup::history::EVENT_TYPE_IDS;
use vsphere_backup_exporter::config::Secret;
use vsphere_backup_exporter::vsphere::client::{ClientOptions, Session, TlsOptions};
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::properties::backup::EXTRA_CONFIG_PATH;
use vsphere_backup_exporter::vsphere::properties::{OTHER_PROPERTIES, Scope, VM_PROPERTIES};
use vsphere_backup_exporter::vsphere::soap::{self, PropertySpec};
use vsphere_backup_exporter::vsphere::xml::{self, Node};
use vsphere_backup_exporter::vsphere::{Client, events};

/// The device list's path, read for every VM while the `disks` collector is on.
const DEVICES_PATH: &str = "config.hardware.device";
/// VMs whose device list is read one at a time for the cost of a one-VM change.
const ONE_VM_SAMPLE: usize = 50;

/// Bytes and objects of one paged retrieval.
#[derive(Default)]
struct Retrieved {
    bytes: usize,
    objects: Vec<Node>,
}

async fn retrieve(
    client: &Client,
    session: &Session,
    body: String,
    keep_objects: bool,
) -> Result<Retrieved> {
    let pc = &session.content.property_collector;
    let mut out = Retrieved::default();
    let (mut call, mut body) = ("RetrievePropertiesEx", body);
    loop {
        let bytes = client.call(call, session, body).await?;
        out.bytes += bytes.len();
        let token = xml::read_retrieve_result(&bytes[..], &client.limits(), |cur| {
            if keep_objects {
                out.objects.push(cur.node()?);
            } else {
                cur.skip()?;
            }
            Ok(())
        })
        .map_err(|e| anyhow!("{call}: {e}"))?;
        let Some(token) = token else {
            return Ok(out);
        };
        call = "ContinueRetrievePropertiesEx";
        body = soap::continue_retrieve_properties_ex(pc, &token);
    }
}

async fn view_of(client: &Client, session: &Session, kind: &str) -> Result<MoRef> {
    let sc = &session.content;
    let body = soap::create_container_view(&sc.view_manager, &sc.root_folder, &[kind]);
    let bytes = client.call("CreateContainerView", session, body).await?;
    xml::read_returnval(&bytes)?
        .moref()
        .ok_or_else(|| anyhow!("CreateContainerView: no view"))
}

async fn view_bytes(
    client: &Client,
    session: &Session,
    view: &MoRef,
    kind: &'static str,
    paths: &[&'static str],
) -> Result<Retrieved> {
    let specs = [PropertySpec {
        kind,
        paths: paths.to_vec(),
    }];
    let body = soap::retrieve_properties_ex(
        &session.content.property_collector,
        view,
        &specs,
        Some(1000),
    );
    let keep = paths == ["config.guestId"] || paths == ["snapshot"];
    retrieve(client, session, body, keep).await
}

fn moref_text(bytes: &[u8], call: &str) -> Result<MoRef> {
    xml::read_returnval(bytes)?
        .moref()
        .ok_or_else(|| anyhow!("{call}: no object"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, password, ca_file] = a.as_slice() else {
        bail!("usage: backup_cost URL USER PASS CAFILE");
    };
    let client = Client::new(&ClientOptions {
        name: "bench".into(),
        url: url.parse().context("URL")?,
        username: user.clone(),
        password: Secret::new(password),
        tls: TlsOptions {
            ca_file: Some(ca_file.into()),
            insecure_skip_verify: false,
        },
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(600),
        login_retry_interval: Duration::from_secs(600),
        max_response_size: 4 << 30,
        max_value_size: vsphere_backup_exporter::vsphere::xml::DEFAULT_MAX_TEXT_BYTES as u64,
    })?;
    let session = client.session().await?;
    let vms = view_of(&client, &session, "VirtualMachine").await?;

    // The inventory's VM paths for every VM, without and with the backup checks' (the keyed
    // disk.EnableUUID aside: the simulator refuses it).
    let every_vm = VM_PROPERTIES.iter().filter(|p| p.scope == Scope::EveryVm);
    let vm_paths: Vec<&str> = every_vm
        .clone()
        .filter(|p| !p.property.is_backup_check())
        .map(|p| p.path)
        .collect();
    let with_backup: Vec<&str> = every_vm.map(|p| p.path).collect();
    let backup_datastore_paths: Vec<&str> = OTHER_PROPERTIES
        .iter()
        .filter(|p| p.kind == "Datastore" && p.property.is_backup_check())
        .map(|p| p.path)
        .collect();
    let base = view_bytes(&client, &session, &vms, "VirtualMachine", &vm_paths).await?;
    let added = view_bytes(&client, &session, &vms, "VirtualMachine", &with_backup).await?;
    let with_extra = [&vm_paths[..], &[EXTRA_CONFIG_PATH]].concat();
    let all_extra = view_bytes(&client, &session, &vms, "VirtualMachine", &with_extra).await?;
    let guests = view_bytes(
        &client,
        &session,
        &vms,
        "VirtualMachine",
        &["config.guestId"],
    )
    .await?;
    let windows: Vec<MoRef> = guests
        .objects
        .iter()
        .filter(|o| {
            o.children_named("propSet")
                .any(|p| p.child("val").is_some_and(|v| v.text.starts_with("win")))
        })
        .filter_map(|o| o.child("obj").and_then(Node::moref))
        .collect();
    let mut windows_extra = 0usize;
    let extra_specs = [PropertySpec {
        kind: "VirtualMachine",
        paths: vec![EXTRA_CONFIG_PATH],
    }];
    for chunk in windows.chunks(1000) {
        let body =
            soap::retrieve_properties_of(&session.content.property_collector, chunk, &extra_specs);
        windows_extra += retrieve(&client, &session, body, false).await?.bytes;
    }
    // The devices: for every VM, against the VMs with snapshots only (through the same
    // per-object retrieval the ListView's filter amounts to), and one VM's list at a time.
    let with_devices = [&vm_paths[..], &[DEVICES_PATH]].concat();
    let every_devices =
        view_bytes(&client, &session, &vms, "VirtualMachine", &with_devices).await?;
    let snapshots = view_bytes(&client, &session, &vms, "VirtualMachine", &["snapshot"]).await?;
    let snapshot_vms: Vec<MoRef> = snapshots
        .objects
        .iter()
        .filter(|o| o.children_named("propSet").next().is_some())
        .filter_map(|o| o.child("obj").and_then(Node::moref))
        .collect();
    let device_specs = [PropertySpec {
        kind: "VirtualMachine",
        paths: vec![DEVICES_PATH],
    }];
    let mut snapshot_vm_devices = 0usize;
    for chunk in snapshot_vms.chunks(1000) {
        let body =
            soap::retrieve_properties_of(&session.content.property_collector, chunk, &device_specs);
        snapshot_vm_devices += retrieve(&client, &session, body, false).await?.bytes;
    }
    // One VM's devices, as a change of the property sends them: the answer for that VM alone,
    // less the same answer for its name (the envelope), over the first VMs of the view.
    let name_specs = [PropertySpec {
        kind: "VirtualMachine",
        paths: vec!["name"],
    }];
    let mut one_vm: Vec<usize> = Vec::new();
    for vm in guests
        .objects
        .iter()
        .filter_map(|o| o.child("obj").and_then(Node::moref))
        .take(ONE_VM_SAMPLE)
    {
        let pc = &session.content.property_collector;
        let one = std::slice::from_ref(&vm);
        let devices = retrieve(
            &client,
            &session,
            soap::retrieve_properties_of(pc, one, &device_specs),
            false,
        )
        .await?;
        let name = retrieve(
            &client,
            &session,
            soap::retrieve_properties_of(pc, one, &name_specs),
            false,
        )
        .await?;
        one_vm.push(devices.bytes.saturating_sub(name.bytes));
    }
    one_vm.sort_unstable();
    let datastores = view_of(&client, &session, "Datastore").await?;
    let ds = view_bytes(
        &client,
        &session,
        &datastores,
        "Datastore",
        &backup_datastore_paths,
    )
    .await?;

    // The event follower: the history read back, then an idle round.
    let manager = session
        .content
        .event_manager
        .clone()
        .ok_or_else(|| anyhow!("no EventManager"))?;
    let body =
        events::create_collector_for_events(&manager, EVENT_TYPE_IDS, "1970-01-01T00:00:00Z");
    let collector = moref_text(
        &client
            .call("CreateCollectorForEvents", &session, body)
            .await?,
        "CreateCollectorForEvents",
    )?;
    client
        .call(
            "SetCollectorPageSize",
            &session,
            events::set_collector_page_size(&collector, 1000),
        )
        .await?;
    client
        .call(
            "RewindCollector",
            &session,
            events::rewind_collector(&collector),
        )
        .await?;
    let (mut history_bytes, mut history_events) = (0usize, 0usize);
    loop {
        let bytes = client
            .call(
                "ReadNextEvents",
                &session,
                events::read_next_events(&collector, 1000),
            )
            .await?;
        let page = events::read_events(&bytes)?;
        if page.is_empty() {
            break;
        }
        history_bytes += bytes.len();
        history_events += page.len();
    }
    client
        .call(
            "SetCollectorPageSize",
            &session,
            events::set_collector_page_size(&collector, 10),
        )
        .await?;
    let idle_read = client
        .call(
            "ReadNextEvents",
            &session,
            events::read_next_events(&collector, 1000),
        )
        .await?
        .len();
    let body = soap::create_property_collector(&session.content.property_collector);
    let pc = moref_text(
        &client
            .call("CreatePropertyCollector", &session, body)
            .await?,
        "CreatePropertyCollector",
    )?;
    let body = events::create_object_filter(&pc, &collector, "EventHistoryCollector", "latestPage");
    client.call("CreateFilter", &session, body).await?;
    let first = client
        .call(
            "WaitForUpdatesEx",
            &session,
            soap::wait_for_updates_ex(&pc, "", 1, 100),
        )
        .await?;
    let text = String::from_utf8_lossy(&first);
    let version = text
        .split("<version>")
        .nth(1)
        .and_then(|v| v.split("</version>").next())
        .unwrap_or("")
        .to_string();
    let idle_wait = client
        .call(
            "WaitForUpdatesEx",
            &session,
            soap::wait_for_updates_ex(&pc, &version, 1, 100),
        )
        .await?
        .len();
    client
        .call(
            "DestroyPropertyCollector",
            &session,
            soap::destroy_property_collector(&pc),
        )
        .await?;
    client
        .call(
            "DestroyCollector",
            &session,
            events::destroy_collector(&collector),
        )
        .await?;
    client.logout(Duration::from_secs(10)).await;

    let vm_count = guests.objects.len();
    println!(
        "{}",
        serde_json::json!({
            "vms": vm_count,
            "windows_vms": windows.len(),
            "vm_base_bytes": base.bytes,
            "vm_backup_paths_added_bytes": added.bytes.saturating_sub(base.bytes),
            "extra_config_all_vms_added_bytes": all_extra.bytes.saturating_sub(base.bytes),
            "extra_config_windows_only_bytes": windows_extra,
            "datastore_backup_paths_bytes": ds.bytes,
            "vms_with_snapshots": snapshot_vms.len(),
            "devices_every_vm_added_bytes": every_devices.bytes.saturating_sub(base.bytes),
            "devices_snapshot_vms_only_bytes": snapshot_vm_devices,
            "one_vm_devices_bytes_min": one_vm.first().copied().unwrap_or(0),
            "one_vm_devices_bytes_median": one_vm.get(one_vm.len() / 2).copied().unwrap_or(0),
            "one_vm_devices_bytes_max": one_vm.last().copied().unwrap_or(0),
            "history_events_read": history_events,
            "history_bytes": history_bytes,
            "history_bytes_per_event": history_bytes.checked_div(history_events).unwrap_or(0),
            "latest_page_first_bytes": first.len(),
            "idle_wait_bytes": idle_wait,
            "idle_read_next_bytes": idle_read,
        })
    );
    Ok(())
}
