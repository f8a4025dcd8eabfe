//! How fast the exporter reads recorded WaitForUpdatesEx answers, against quick-xml's bare
//! tokenizer on the same bytes: the parse cost of a cold start, without the network.
//!
//! ```sh
//! WIRE_ONLY_DUMP=DIR cargo run --release --example wire_only -- URL USER PASS CAFILE FACTS
//! cargo run --release --example parse_bench -- DIR/wait-*.xml
//! ```
//!
//! For each file it prints MB/s of: quick-xml's `Reader` and `NsReader` reading every event
//! and doing nothing with it, and `properties::read_updates` applying every update to an
//! inventory (what the mirror does on a cold start), best of 3 runs
//! (`PARSE_BENCH_RUNS`), or only some (`PARSE_BENCH_ONLY=read_updates`). Not part of
//! `make bench`.

use std::io::BufReader;
use std::time::Instant;

use anyhow::{Context, Result};
use quick_xml::events::Event;
use quick_xml::{NsReader, Reader};
use vsphere_backup_exporter::vsphere::model::Inventory;
use vsphere_backup_exporter::vsphere::properties;
use vsphere_backup_exporter::vsphere::xml::Limits;

/// The read buffer of the counters below. The exporter itself reads a streamed answer chunk
/// by chunk where the chunks lie (`vsphere::client::ChannelReader`), with no buffer of its own.
const BUFFER: usize = 64 * 1024;

fn tokens(bytes: &[u8]) -> Result<usize> {
    let mut reader = Reader::from_reader(BufReader::with_capacity(BUFFER, bytes));
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf)? {
            Event::Eof => return Ok(n),
            _ => n += 1,
        }
    }
}

fn slice_tokens(bytes: &[u8]) -> Result<usize> {
    let mut reader = Reader::from_reader(bytes);
    let mut n = 0;
    loop {
        match reader.read_event()? {
            Event::Eof => return Ok(n),
            _ => n += 1,
        }
    }
}

fn ns_tokens(bytes: &[u8]) -> Result<usize> {
    let mut reader = NsReader::from_reader(BufReader::with_capacity(BUFFER, bytes));
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf)? {
            Event::Eof => return Ok(n),
            _ => n += 1,
        }
    }
}

fn decode(bytes: &[u8]) -> Result<usize> {
    let mut inv = Inventory::default();
    let mut n = 0;
    properties::read_updates(
        BufReader::with_capacity(BUFFER, bytes),
        &Limits::default(),
        |_, update| {
            n += 1;
            let _ = inv.apply_changes(&update.obj, update.changes);
            Ok(())
        },
    )?;
    std::hint::black_box(&inv);
    Ok(n)
}

/// CPU time of this thread, in seconds (`/proc/thread-self/schedstat`): on a busy machine it
/// moves less than the wall clock.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Best of `runs` runs: (wall seconds, CPU seconds, items).
fn best_of(runs: usize, bytes: &[u8], f: fn(&[u8]) -> Result<usize>) -> Result<(f64, f64, usize)> {
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    let mut count = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let cpu_started = cpu_seconds();
        count = f(bytes)?;
        cpu = cpu.min(cpu_seconds() - cpu_started);
        wall = wall.min(started.elapsed().as_secs_f64());
    }
    Ok((wall, cpu, count))
}

fn main() -> Result<()> {
    // PARSE_BENCH_ONLY=decode: only the exporter's decoder (for a profile).
    let only = std::env::var("PARSE_BENCH_ONLY").ok();
    // PARSE_BENCH_RUNS=1: one run each (under valgrind, say).
    let runs = std::env::var("PARSE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).with_context(|| path.clone())?;
        let mb = bytes.len() as f64 / 1e6;
        println!("{path}: {mb:.1} MB");
        for (name, f) in [
            (
                "quick-xml Reader, events only",
                tokens as fn(&[u8]) -> Result<usize>,
            ),
            ("quick-xml NsReader, events only", ns_tokens),
            ("quick-xml Reader on a slice", slice_tokens),
            ("read_updates into an Inventory", decode),
        ] {
            if only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            let (wall, cpu, count) = best_of(runs, &bytes, f)?;
            println!(
                "  {name:<34} {wall:>7.3} s {cpu:>7.3} s CPU {:>6.0} MB/s of CPU  ({count} items)",
                mb / cpu
            );
        }
    }
    Ok(())
}
