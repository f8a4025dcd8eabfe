//! What the shard size of the per-VM render cache (`collector::shards`) costs and gives, on a
//! made-up inventory: for each size, the first render of every VM (text and gzip), the render
//! after one VM changed (its shard, gzipped), the gzip size of the page's per-VM part as
//! members against one stream of the same text, and the number of chunks the page is made of.
//!
//! ```sh
//! cargo run --release --example shard_sizes -- 40000 64,128,256,512,1024
//! ```
//!
//! A third of the VMs have a snapshot tree of three; best of 5 runs of the one-VM change. Not
//! part of `make bench`; its figures are in docs/performance.md.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use vsphere_backup_exporter::collector::shards::{Chunk, Families, ShardJob, VmShards};
use vsphere_backup_exporter::collector::{COLLECTORS, Collector, Context, Part, render_chunks};
use vsphere_backup_exporter::config::Config;
use vsphere_backup_exporter::vsphere::model::{
    Host, Inventory, LayoutEx, LayoutFile, SnapshotInfo, SnapshotTree, Vm,
};

fn inventory(vms: usize) -> Inventory {
    let mut inv = Inventory::default();
    for h in 0..vms / 16 {
        let id = format!("host-{h}");
        inv.hosts.insert(
            id.clone(),
            Host {
                id,
                name: format!("esx{h:05}.example.com"),
                ..Default::default()
            },
        );
    }
    for n in 0..vms {
        let vm = make_vm(n, vms);
        inv.vms.insert(vm.id.clone(), Arc::new(vm));
    }
    inv
}

fn make_vm(n: usize, vms: usize) -> Vm {
    let tree = |i: usize, children| SnapshotTree {
        snapshot: format!("snapshot-{n}-{i}"),
        name: format!("nightly {i}"),
        create_time_seconds: 1_795_000_000.0 + (n * 7 + i) as f64,
        child_snapshot_list: children,
        ..Default::default()
    };
    let snapshot = n.is_multiple_of(3).then(|| SnapshotInfo {
        current_snapshot: Some(format!("snapshot-{n}-2")),
        root_snapshot_list: vec![tree(0, vec![tree(1, vec![tree(2, vec![])])])],
    });
    Vm {
        id: format!("vm-{n}"),
        name: format!("app{n:06}-{}", ["web", "db", "cache"][n % 3]),
        host: Some(format!("host-{}", n % (vms / 16).max(1))),
        power_state: "poweredOn".into(),
        guest_id: "rhel8_64Guest".into(),
        tools_version_status2: Some("guestToolsCurrent".into()),
        tools_running_status: Some("guestToolsRunning".into()),
        snapshot,
        layout_ex: Some(LayoutEx {
            file: vec![LayoutFile {
                key: 1,
                name: format!("[ds0] app{n}/app{n}.vmdk"),
                file_type: "diskDescriptor".into(),
                size: 512,
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn per_vm() -> Vec<&'static dyn Collector> {
    COLLECTORS.iter().copied().filter(|c| c.per_vm()).collect()
}

fn update(shards: &mut VmShards, inv: &Inventory, config: &Config) -> Vec<Arc<Chunk>> {
    let ctx = Context {
        vcenter: "vc01",
        config,
        inventory: inv,
        now: 1_800_000_000.0,
        sources: &[],
        part: Part::All,
    };
    let jobs: Vec<ShardJob<'_>> = per_vm()
        .into_iter()
        .map(|collector| ShardJob {
            collector,
            key: vec![1],
        })
        .collect();
    let families: Vec<Families> = shards
        .update(&ctx, &jobs, &[])
        .into_iter()
        .map(|(families, _)| families)
        .collect();
    render_chunks(&families.iter().collect::<Vec<_>>())
}

fn gzip_all(chunks: &[Arc<Chunk>]) -> usize {
    chunks.iter().map(|c| c.gzipped().len()).sum()
}

fn one_stream(chunks: &[Arc<Chunk>]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for segment in chunks.iter().flat_map(|c| c.segments()) {
        encoder.write_all(&segment)?;
    }
    Ok(encoder.finish()?.len())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let vms: usize = args.get(1).map_or("40000", |s| s.as_str()).parse()?;
    let sizes: Vec<usize> = args
        .get(2)
        .map_or("64,128,256,512,1024", |s| s.as_str())
        .split(',')
        .map(|s| s.parse().context("a shard size"))
        .collect::<Result<_>>()?;
    let config = Config::default();
    let inv = inventory(vms);
    println!(
        "{vms} VMs; size: chunks, first render ms (text + gzip), text MB, gzip members MB / one stream MB, one-VM change ms (render + gzip, best of 5)"
    );
    for size in sizes {
        let mut shards = VmShards::with_shard_vms(size);
        let started = Instant::now();
        let chunks = update(&mut shards, &inv, &config);
        let members = gzip_all(&chunks);
        let first = started.elapsed().as_secs_f64() * 1e3;
        let text: usize = chunks
            .iter()
            .flat_map(|c| c.segments())
            .map(|s| s.len())
            .sum();
        let stream = one_stream(&chunks)?;
        let mut best = f64::MAX;
        let mut current = inv.clone();
        for round in 0..5 {
            let mut next = current.clone();
            let id = format!("vm-{}", (round * 7919) % vms);
            if let Some(vm) = next.vms.get_mut(&id) {
                Arc::make_mut(vm).name.push('x');
            }
            let started = Instant::now();
            let chunks = update(&mut shards, &next, &config);
            gzip_all(&chunks);
            best = best.min(started.elapsed().as_secs_f64() * 1e3);
            current = next;
        }
        println!(
            "{size:>5}: {:>6} chunks, {first:>7.0} ms, {:.1} MB, {:.2} / {:.2} MB ({:+.1} %), {best:.2} ms",
            chunks.len(),
            text as f64 / 1e6,
            members as f64 / 1e6,
            stream as f64 / 1e6,
            (members as f64 / stream as f64 - 1.0) * 100.0,
        );
    }
    Ok(())
}
