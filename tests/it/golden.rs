//! The whole output for the fixed `golden` scenario against a committed file
//! (`tests/golden/golden.prom`; `UPDATE_GOLDEN=1` rewrites it), and Prometheus' own linter
//! (`promtool check metrics`) on the full `/metrics` page.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::tz::TimeZone;
use vsphere_backup_exporter::backup::blackout::Window;
use vsphere_backup_exporter::config::{BackupConfig, EventsConfig, OwnerLabel};

use crate::vcsim::Vcsim;
use crate::{serve, serve_with};

/// Durations, the update time, the host I/O samples (the simulator's values follow the
/// clock) and the blackout series (the clock itself) differ from run to run; the rest of the
/// scenario, host I/O series included, is fixed.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| {
            let volatile = [
                "vsphere_collector_duration_seconds{",
                "vsphere_source_last_update_timestamp_seconds{",
                "vsphere_source_sync_duration_seconds{",
                "vsphere_backup_blackout_active{",
                "vsphere_backup_blackout_next_start_timestamp_seconds{",
            ];
            let fixed_host_series = [
                "vsphere_host_info{",
                "vsphere_host_connection_state{",
                "vsphere_host_in_maintenance{",
                "vsphere_host_backup_snapshots{",
            ];
            let host_io = line.starts_with("vsphere_host_")
                && !fixed_host_series.iter().any(|f| line.starts_with(f));
            // The simulator names a datastore by its directory, which differs from run to run
            // (vCenter: datastore-12).
            let line = &mask_label(line, "datastore_id");
            if host_io || volatile.iter().any(|v| line.starts_with(v)) {
                let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
                format!("{series} <varies>")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The line with the value of label `name` replaced by `<sim>`.
fn mask_label(line: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let Some(start) = line.find(&key).map(|i| i + key.len()) else {
        return line.to_string();
    };
    let end = line[start..].find('"').map_or(line.len(), |i| start + i);
    format!("{}<sim>{}", &line[..start], &line[end..])
}

/// The backup checks as the golden output shows them: owner labels, a required-consistency
/// attribute, a blackout window, and a read-back window that reaches golden's fixed 2026 dates.
pub fn golden_backup() -> BackupConfig {
    let owner_labels = ["owner", "team"]
        .iter()
        .map(|a| OwnerLabel {
            attribute: a.to_string(),
            label: a.to_string(),
        })
        .collect();
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let payroll = Window::new(
        "payroll",
        "0 1 * * 1",
        Duration::from_secs(3 * 3600),
        berlin,
    );
    let defaults = BackupConfig::default();
    BackupConfig {
        owner_labels,
        consistency_required_attribute: Some("backup-consistency".into()),
        blackout_windows: vec![payroll.unwrap()],
        events: EventsConfig {
            read_back: Duration::from_secs(20 * 365 * 86_400),
            ..defaults.events.clone()
        },
        ..defaults
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_scenario_output_matches_the_committed_file() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let served = serve_with(vec![sim.vcenter("vc01")], golden_backup()).await;
    // The host I/O counters and the event history come on their own cadence: wait for both.
    let page = served
        .scrape_until("/probe?target=vc01", Duration::from_secs(60), |p| {
            p.contains("vsphere_host_perf_sample_timestamp_seconds{")
                && p.contains("vsphere_source_up{vcenter=\"vc01\",source=\"events\"} 1\n")
        })
        .await;
    let got = normalize(&page);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/golden.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(10)
            .map(|(w, g)| format!("- {w}\n+ {g}"))
            .collect();
        panic!(
            "output differs from {} ({} lines want, {} got); first differences:\n{}\n(UPDATE_GOLDEN=1 rewrites it)",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_check_metrics_finds_no_problem_in_the_full_page() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let page = served.scrape("/metrics").await;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: run `make test` (or scripts/install-deps.sh) first");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(page.contains("vsphere_backup_exporter_build_info{"));
    assert!(page.contains("process_resident_memory_bytes"));
}
