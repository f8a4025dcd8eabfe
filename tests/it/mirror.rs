//! The mirror stays exactly what a fresh full retrieval would give, through a series of changes
//! made in the simulator while the exporter follows it, and after a forced fallback.

use std::time::{Duration, Instant};

use serde_json::json;

use vsphere_backup_exporter::vsphere::{Client, Inventory};

use crate::serve;
use crate::vcsim::Vcsim;

/// Polls until the mirror equals a fresh full retrieval (updates take a moment to arrive);
/// panics with the first difference after `limit`.
async fn assert_mirror_converges(served: &crate::Served, fresh: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let truth = crate::oracle::retrieve_inventory(fresh)
            .await
            .expect("fresh retrieval");
        let published = served.target().mirror().unwrap().feed().latest();
        let mirror: Inventory = published.value.as_deref().cloned().unwrap_or_default();
        if published.status.synced && mirror == truth {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: the mirror differs from a fresh retrieval (in sync: {}, error: {:?}): {}",
                published.status.synced,
                published.status.error,
                first_difference(&mirror, &truth)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn full_retrievals(served: &crate::Served) -> u64 {
    served
        .target()
        .mirror()
        .unwrap()
        .counters()
        .full_retrievals()
}

fn first_difference(mirror: &Inventory, truth: &Inventory) -> String {
    for (id, vm) in &truth.vms {
        match mirror.vms.get(id) {
            None => return format!("{id} missing from the mirror"),
            Some(m) if m != vm => return format!("{id}: mirror {m:?}\n  truth {vm:?}"),
            _ => {}
        }
    }
    if let Some(extra) = mirror.vms.keys().find(|id| !truth.vms.contains_key(*id)) {
        return format!("{extra} only in the mirror");
    }
    if mirror.hosts != truth.hosts {
        return "hosts differ".into();
    }
    "non-VM objects differ".into()
}

fn vm_with(inv: &Inventory, snapshots: bool) -> &str {
    inv.vms
        .values()
        .find(|v| v.has_snapshots() == snapshots && !v.template)
        .map(|v| v.id.as_str())
        .expect("a VM of that kind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_equals_a_fresh_retrieval_after_each_change_and_after_a_forced_fallback() {
    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "300", "-snapshot-vms", "60"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let fresh = Client::new(&(&sim.vcenter("fresh")).into()).unwrap();
    let first = served
        .target()
        .mirror()
        .unwrap()
        .feed()
        .settled(Duration::from_secs(60))
        .await;
    assert!(first.status.synced, "{:?}", first.status.error);
    assert_mirror_converges(&served, &fresh, "initial").await;

    let start = crate::oracle::retrieve_inventory(&fresh).await.unwrap();
    let bare = vm_with(&start, false).to_string();
    let snapped = vm_with(&start, true).to_string();
    let snapshot = start.vms[&snapped].snapshots()[0].tree.snapshot.clone();
    let other_host = start
        .hosts
        .keys()
        .find(|h| Some(*h) != start.vms[&bare].host.as_ref())
        .unwrap()
        .clone();

    let changes = [
        (
            "snapshot created on a VM without snapshots",
            json!({"op": "create_snapshot", "vm": bare, "name": "VEEAM BACKUP TEMPORARY SNAPSHOT", "quiesce": true}),
        ),
        (
            "child snapshot created",
            json!({"op": "create_snapshot", "vm": snapped, "name": "nightly", "quiesce": false}),
        ),
        (
            "snapshot renamed",
            json!({"op": "rename_snapshot", "snapshot": snapshot, "name": "renamed by the test"}),
        ),
        (
            "Tools status changed",
            json!({"op": "set_tools", "vm": bare, "status": "guestToolsNeedUpgrade", "running": "guestToolsNotRunning"}),
        ),
        (
            "VM moved to another host",
            json!({"op": "move_vm", "vm": bare, "host": other_host}),
        ),
        ("VM added", json!({"op": "add_vm", "name": "added-by-test"})),
        (
            "all snapshots of a VM removed",
            json!({"op": "remove_all_snapshots", "vm": bare}),
        ),
        (
            "snapshot removed",
            json!({"op": "remove_snapshot", "snapshot": snapshot}),
        ),
        ("VM removed", json!({"op": "remove_vm", "vm": snapped})),
    ];
    for (what, command) in changes {
        sim.control(command).await;
        assert_mirror_converges(&served, &fresh, what).await;
    }
    let state_before = full_retrievals(&served);
    assert_eq!(state_before, 1, "no change needed a full retrieval");

    // Forced fallback: vCenter forgets every session; the mirror notices, logs in again and
    // resynchronizes, and follows later changes.
    sim.control(json!({"op": "drop_sessions"})).await;
    sim.control(json!({"op": "create_snapshot", "vm": vm_with(&start, false), "name": "after fallback", "quiesce": false})).await;
    let fresh = Client::new(&(&sim.vcenter("fresh2")).into()).unwrap();
    assert_mirror_converges(&served, &fresh, "after a forced fallback").await;
    let retrievals = full_retrievals(&served);
    assert!(
        retrievals >= 2,
        "the mirror fell back to a full retrieval ({retrievals})"
    );
    assert!(served.target().client().logins() >= 2);
}

/// A mirror that loses vCenter frees its rendered pages at once, not at the next scrape: the
/// full retrieval that follows (at 40,000 VMs some 80 MB of renders otherwise held beside it)
/// finds them gone, though nothing scraped in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sync_frees_the_rendered_pages_before_any_scrape() {
    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "60", "-snapshot-vms", "20"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let text = served.scrape_when_synced("vc01", "inventory", 60).await;
    assert!(text.contains("vsphere_vm_snapshots{"), "{text}");
    served.scrape("/probe?target=vc01").await;
    let held = served.exporter().cached_bytes().await;
    assert!(
        held > 10_000,
        "renders cached after two scrapes: {held} bytes"
    );

    // vCenter goes away: the mirror's update wait breaks and it stays out of sync.
    drop(sim);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let published = served.target().mirror().unwrap().feed().latest();
        let held = served.exporter().cached_bytes().await;
        if published.value.is_none() && held == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "out of sync: {}, still held: {held} bytes",
            published.value.is_none()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A change is rendered, gzip included, when the mirror publishes it, before any scrape asks
/// (issue 19): the page's cached part reaches the version with the change while nothing
/// scrapes, and the scrape after it shows the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_rendered_when_it_comes_not_when_a_scrape_asks() {
    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "60", "-snapshot-vms", "20"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    served.scrape_when_synced("vc01", "inventory", 60).await;
    let feed = served.target().mirror().unwrap().feed().clone();
    let start = feed.latest().value.clone().unwrap();
    let snapped = vm_with(&start, true).to_owned();
    let snapshot = start.vms[&snapped].snapshots()[0].tree.snapshot.clone();
    let name = "renamed while nothing scrapes";
    sim.control(json!({"op": "rename_snapshot", "snapshot": snapshot, "name": name}))
        .await;

    let renamed = |inv: &Inventory| {
        inv.vms[&snapped]
            .snapshots()
            .iter()
            .any(|s| s.tree.name == name)
    };
    let version = async {
        loop {
            let published = feed.latest();
            if published.value.as_deref().is_some_and(renamed) {
                return published.version;
            }
            assert!(
                feed.moved_from(published.version).await,
                "the mirror stopped"
            );
        }
    };
    let version = tokio::time::timeout(Duration::from_secs(60), version)
        .await
        .expect("the mirror saw the rename within 60 s");
    tokio::time::timeout(
        Duration::from_secs(60),
        served.exporter().rendered_from(&[version]),
    )
    .await
    .unwrap_or_else(|_| panic!("version {version} not rendered within 60 s without a scrape"));
    let text = served.scrape("/metrics").await;
    assert!(text.contains(name), "the scrape shows the change");
}

/// The devices are read for every VM by default, and for the VMs with snapshots only when the
/// disk checks are off (`--no-collector.disks` gives the mirror `DeviceScope::VmsWithSnapshots`):
/// the mirror's requests follow the choice, against the simulator's real PropertyCollector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_read_for_every_vm_or_for_vms_with_snapshots_only_as_chosen() {
    use std::sync::Arc;
    use vsphere_backup_exporter::vsphere::mirror::{Mirror, MirrorOptions};
    use vsphere_backup_exporter::vsphere::properties::DeviceScope;

    let sim = Vcsim::start(&["-scenario", "scale", "-vms", "40", "-snapshot-vms", "10"]);
    let client = Arc::new(Client::new(&(&sim.vcenter("vc01")).into()).unwrap());
    for devices in [DeviceScope::EveryVm, DeviceScope::VmsWithSnapshots] {
        let mirror = Mirror::start_with(client.clone(), MirrorOptions { devices });
        let inventory = tokio::time::timeout(Duration::from_secs(60), mirror.feed().value())
            .await
            .unwrap_or_else(|_| panic!("{devices:?}: never in sync within 60 s"));
        let (with, without): (Vec<_>, Vec<_>) =
            inventory.vms.values().partition(|vm| vm.has_snapshots());
        assert_eq!(with.len(), 10);
        assert!(
            with.iter().all(|vm| !vm.devices.disks.is_empty()),
            "{devices:?}: a VM with snapshots without its disks"
        );
        let read = without
            .iter()
            .filter(|vm| !vm.devices.disks.is_empty())
            .count();
        match devices {
            DeviceScope::EveryVm => assert_eq!(read, without.len(), "every VM's disks"),
            DeviceScope::VmsWithSnapshots => assert_eq!(read, 0, "no VM without snapshots"),
        }
        mirror.stop();
    }
}
