//! The snapshot report against the simulator's `report` scenario (one VM per backup risk, two
//! snapshots with hostile names): `/report.csv` and `/report.json` field by field against the
//! facts, the page in headless Chromium (row count, sorting, filtering, the hostile names shown
//! as text and never run), and the `report` command in each format and with a vCenter it
//! cannot reach.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::Browser;
use crate::serve;
use crate::simulator::expected_product;
use crate::vcsim::{Facts, SnapshotFacts, Vcsim, VmFacts};

const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const IMAGE_NAME: &str = "\"><img src=x onerror=\"window.__xss=1\">";

/// One snapshot of the facts with its VM and its depth in the tree.
struct Expected<'a> {
    vm: &'a VmFacts,
    snap: &'a SnapshotFacts,
    depth: usize,
}

fn expected(facts: &Facts) -> BTreeMap<&str, Expected<'_>> {
    let mut out = BTreeMap::new();
    for vm in &facts.vms {
        for snap in &vm.snapshots {
            let mut depth = 1;
            let mut parent = snap.parent_id.as_str();
            while let Some(p) = vm.snapshots.iter().find(|s| s.id == parent) {
                depth += 1;
                parent = p.parent_id.as_str();
            }
            out.insert(snap.id.as_str(), Expected { vm, snap, depth });
        }
    }
    out
}

fn rfc3339(seconds: f64) -> String {
    jiff::Timestamp::from_second(seconds as i64)
        .unwrap()
        .to_string()
}

/// The newest last backup any source read on the VM, as the report writes it (milliseconds).
fn last_backup(vm: &VmFacts) -> String {
    vm.last_backup
        .iter()
        .map(|r| r.timestamp_seconds)
        .filter(|t| *t > 0.0)
        .max_by(f64::total_cmp)
        .map(|t| {
            jiff::Timestamp::from_millisecond((t * 1000.0).round() as i64)
                .unwrap()
                .to_string()
        })
        .unwrap_or_default()
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A row as text fields by name (a CSV record, or a JSON object with its values as CSV writes
/// them), checked field by field against the facts. `before`/`after` bound the report's time.
fn assert_row(row: &BTreeMap<String, String>, facts: &Facts, before: f64, after: f64) {
    let all = expected(facts);
    let id = row["snapshot_id"].as_str();
    let Expected { vm, snap, depth } = all.get(id).unwrap_or_else(|| panic!("{id}: not a fact"));
    let want = [
        ("vcenter", "vc01".to_owned()),
        ("datacenter_name", vm.datacenter_name.clone()),
        ("cluster_name", vm.cluster_name.clone()),
        ("host_name", vm.host_name.clone()),
        ("datastore_name", snap.datastore_name.clone()),
        ("vm_id", vm.id.clone()),
        ("vm_name", vm.name.clone()),
        ("snapshot_name", snap.name.clone()),
        ("description", snap.description.clone()),
        ("backup_product", expected_product(&snap.name).to_owned()),
        ("created", rfc3339(snap.create_time_seconds)),
        ("created_by", snap.created_by.clone()),
        ("size_bytes", snap.size_bytes.to_string()),
        ("quiesced", snap.quiesced.to_string()),
        ("depth", depth.to_string()),
        ("consolidation_needed", vm.consolidation_needed.to_string()),
        ("last_backup", last_backup(vm)),
        ("disks_not_snapshotted", disks_not_snapshotted(vm)),
        ("foreign_disks", foreign_disks(vm)),
    ];
    for (field, value) in want {
        assert_eq!(row[field], value, "{id}: {field}");
    }
    let age: f64 = row["age_seconds"].parse().unwrap();
    let (low, high) = (
        (before - snap.create_time_seconds).floor(),
        (after - snap.create_time_seconds).floor(),
    );
    assert!(
        low <= age && age <= high,
        "{id}: age {age} not in {low}..{high}"
    );
    let share: f64 = row["disk_share"].parse().unwrap();
    let want_share = snap.size_bytes as f64 / vm.disk_capacity_bytes as f64;
    assert!(
        (share - want_share).abs() <= want_share * 1e-12,
        "{id}: disk_share {share} != {want_share}"
    );
}

/// The VM's disks no snapshot captures as the rows write them: `reason file`, by `; `.
pub fn disks_not_snapshotted(vm: &VmFacts) -> String {
    vm.disks_not_snapshotted
        .iter()
        .map(|d| format!("{} {}", d.reason, d.disk_file))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The disks the VM holds from another VM as the rows write them: `file of owner (id)`.
pub fn foreign_disks(vm: &VmFacts) -> String {
    vm.foreign_disks
        .iter()
        .map(|d| format!("{} of {} ({})", d.disk_file, d.owner_vm_name, d.owner_vm_id))
        .collect::<Vec<_>>()
        .join("; ")
}

fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

pub fn json_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let value: Value = serde_json::from_str(text).unwrap();
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .collect()
}

const FIELDS: [&str; 22] = [
    "vcenter",
    "datacenter_name",
    "cluster_name",
    "host_name",
    "datastore_name",
    "vm_id",
    "vm_name",
    "snapshot_id",
    "snapshot_name",
    "description",
    "backup_product",
    "created",
    "age_seconds",
    "created_by",
    "size_bytes",
    "disk_share",
    "quiesced",
    "depth",
    "consolidation_needed",
    "last_backup",
    "disks_not_snapshotted",
    "foreign_disks",
];

pub fn assert_rows(rows: &[BTreeMap<String, String>], facts: &Facts, before: f64, after: f64) {
    assert_eq!(rows.len(), expected(facts).len(), "one row per snapshot");
    for row in rows {
        assert_eq!(row.keys().collect::<Vec<_>>().len(), FIELDS.len());
        assert_row(row, facts, before, after);
    }
    let ids: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["snapshot_id"].as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "each snapshot once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_csv_and_json_equal_the_facts_field_by_field() {
    let sim = Vcsim::start(&["-scenario", "report"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let before = unix_now();
    let (status, csv) = served.get("/report.csv").await;
    let (json_status, json) = served.get("/report.json?target=vc01").await;
    let after = unix_now();
    assert_eq!((status, json_status), (200, 200), "{csv}\n{json}");
    let header = csv.lines().next().unwrap();
    assert_eq!(header, FIELDS.join(","));
    let csv_rows = csv_rows(&csv);
    assert_rows(&csv_rows, &sim.facts, before, after);
    let json_rows = json_rows(&json);
    assert_rows(&json_rows, &sim.facts, before, after);
    let hostile: Vec<&str> = csv_rows
        .iter()
        .map(|r| r["snapshot_name"].as_str())
        .filter(|n| *n == SCRIPT_NAME || *n == IMAGE_NAME)
        .collect();
    assert_eq!(hostile.len(), 2, "both hostile names, unchanged");
    let (unknown, body) = served.get("/report.json?target=vc02").await;
    assert_eq!(unknown, 400, "{body}");
}

/// What the page showed, read before the browser is closed and anything is asserted.
#[derive(Debug)]
struct Seen {
    rows: usize,
    shown_count: String,
    oldest_first: String,
    youngest_first: String,
    filtered: Vec<String>,
    filtered_shown: String,
    snapshot_names: Vec<String>,
    xss: Value,
    alert: Option<String>,
    images: u64,
    scripts: u64,
    risk_counts: Vec<String>,
    /// The text of the question risk line (`#risk-question_pending`).
    question_line: String,
    screenshot: Vec<u8>,
}

async fn look_at_the_page(browser: &Browser, url: &str, vm_name: &str) -> Seen {
    let c = &browser.client;
    c.goto(url).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#snapshots tbody"))
        .await
        .unwrap();
    let js = |script: &'static str| async move { c.execute(script, vec![]).await.unwrap() };
    let rows = js("return document.querySelectorAll('#snapshots tbody tr').length;").await;
    let shown_count = js("return document.getElementById('shown').textContent;").await;
    let first_id = "return document.querySelector('#snapshots tbody tr').dataset.snapshotId;";
    let age_header = c
        .find(Locator::XPath("//th/button[text()='Age']"))
        .await
        .unwrap();
    age_header.click().await.unwrap();
    let oldest_first = js(first_id).await;
    age_header.click().await.unwrap();
    let youngest_first = js(first_id).await;
    let snapshot_names = js("return Array.from(document.querySelectorAll('#snapshots tbody tr'), r => r.cells[6].textContent);").await;
    let filter = c.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys(vm_name).await.unwrap();
    let filtered = js("return Array.from(document.querySelectorAll('#snapshots tbody tr'), r => r.hidden ? null : r.dataset.snapshotId).filter(x => x);").await;
    let filtered_shown = js("return document.getElementById('shown').textContent;").await;
    let xss = js("return typeof window.__xss === 'undefined' ? null : window.__xss;").await;
    let alert = c.get_alert_text().await.ok();
    let images = js("return document.querySelectorAll('img').length;").await;
    let scripts = js("return document.querySelectorAll('script').length;").await;
    let risk_counts =
        js("return Array.from(document.querySelectorAll('ul.risks .count'), e => e.textContent);")
            .await;
    let question_line =
        js("return document.getElementById('risk-question_pending').textContent;").await;
    // The whole list, for the screenshot.
    js("const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); return 0;").await;
    let screenshot = c.screenshot().await.unwrap();
    let strings = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    Seen {
        rows: rows.as_u64().unwrap() as usize,
        shown_count: shown_count.as_str().unwrap().to_owned(),
        oldest_first: oldest_first.as_str().unwrap().to_owned(),
        youngest_first: youngest_first.as_str().unwrap().to_owned(),
        filtered: strings(filtered),
        filtered_shown: filtered_shown.as_str().unwrap().to_owned(),
        snapshot_names: strings(snapshot_names),
        xss,
        alert,
        images: images.as_u64().unwrap(),
        scripts: scripts.as_u64().unwrap(),
        risk_counts: strings(risk_counts),
        question_line: question_line.as_str().unwrap_or_default().to_owned(),
        screenshot,
    }
}

/// `target/test-output/`, made if missing.
fn test_output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_in_headless_chromium_sorts_filters_and_shows_hostile_names_as_text() {
    let started = Instant::now();
    let sim = Vcsim::start(&["-scenario", "report"]);
    let served = serve(vec![sim.vcenter("vc01")]).await;
    let facts = &sim.facts;
    let snapshots: Vec<&SnapshotFacts> = facts.vms.iter().flat_map(|v| &v.snapshots).collect();
    // The chain VM on the standalone host: its name matches no other VM's.
    let chain = facts.vms.iter().find(|v| v.snapshots.len() == 3).unwrap();
    let browser = Browser::start().await;
    let seen = look_at_the_page(&browser, &format!("{}/report", served.base), &chain.name).await;
    browser.close().await;
    let screenshot = test_output_dir().join("report.png");
    std::fs::write(&screenshot, &seen.screenshot).unwrap();

    assert_eq!(seen.rows, snapshots.len(), "one row per snapshot");
    assert_eq!(seen.shown_count, snapshots.len().to_string());
    let by_age = |pick: fn(f64, f64) -> bool| {
        let mut best = snapshots[0];
        for s in &snapshots {
            if pick(s.create_time_seconds, best.create_time_seconds) {
                best = s;
            }
        }
        best.id.clone()
    };
    assert_eq!(
        seen.oldest_first,
        by_age(|a, b| a < b),
        "first click on Age: oldest first"
    );
    assert_eq!(
        seen.youngest_first,
        by_age(|a, b| a > b),
        "second click: youngest first"
    );
    let mut want: Vec<String> = chain.snapshots.iter().map(|s| s.id.clone()).collect();
    let mut filtered = seen.filtered.clone();
    want.sort();
    filtered.sort();
    assert_eq!(
        filtered, want,
        "filtering by {} leaves its rows",
        chain.name
    );
    assert_eq!(seen.filtered_shown, want.len().to_string());
    for name in [SCRIPT_NAME, IMAGE_NAME] {
        assert!(
            seen.snapshot_names.iter().any(|n| n == name),
            "{name} not shown as text: {:?}",
            seen.snapshot_names
        );
    }
    assert_eq!(seen.xss, Value::Null, "the image's onerror ran");
    assert_eq!(seen.alert, None, "an alert is open");
    assert_eq!(
        seen.images, 0,
        "an <img> from a snapshot name is in the page"
    );
    assert_eq!(seen.scripts, 1, "only the page's own script");
    // Leftover backup, old snapshots, consolidation, Tools: one VM or two snapshots each; then
    // the device checks (docs/report.md's order), of which only the question is in the scenario.
    assert_eq!(
        seen.risk_counts,
        ["1", "2", "1", "1", "0", "0", "0", "0", "0", "0", "1", "0"]
    );
    // The paused VM, with the question's text as vCenter has it.
    let asking = facts.vms.iter().find(|v| !v.question.is_empty()).unwrap();
    assert_eq!(
        seen.question_line,
        format!(
            "1 VMs paused on a question: {}: {}",
            asking.name, asking.question
        )
    );
    assert!(
        seen.screenshot.starts_with(b"\x89PNG"),
        "{}",
        screenshot.display()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the browser test took {took:?}"
    );
}

/// A configuration file for the simulator as `vc01`, and `extra` YAML vCenters after it.
fn config_file(dir: &Path, sim: &Vcsim, extra: &str) -> PathBuf {
    let password = dir.join("vc01.password");
    std::fs::write(&password, &sim.facts.password).unwrap();
    let yaml = format!(
        "vcenters:\n  - name: vc01\n    url: {}\n    username: {}\n    password_file: {}\n    tls:\n      ca_file: {}\n{extra}",
        sim.url,
        sim.facts.username,
        password.display(),
        sim.cert.display()
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs the binary's `report` command off the async workers.
async fn run_report(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_vsphere_backup_exporter"))
            .arg("report")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_command_writes_each_format_and_exits_0() {
    let sim = Vcsim::start(&["-scenario", "report"]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &sim, "");
    let config_arg = format!("--config.file={}", config.display());
    let count = expected(&sim.facts).len();
    for format in ["text", "csv", "html", "json"] {
        let output_file = dir.path().join(format!("report.{format}"));
        let before = unix_now();
        // text and csv to stdout, html and json to --output.
        let to_file = matches!(format, "html" | "json");
        let mut args = vec![config_arg.clone(), format!("--format={format}")];
        if to_file {
            args.push(format!("--output={}", output_file.display()));
        }
        let out = run_report(args).await;
        let after = unix_now();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert_eq!(stderr, "", "{format}: nothing on stderr");
        let body = if to_file {
            assert!(out.stdout.is_empty(), "{format}: stdout used");
            std::fs::read_to_string(&output_file).unwrap()
        } else {
            String::from_utf8(out.stdout).unwrap()
        };
        match format {
            "csv" => assert_rows(&csv_rows(&body), &sim.facts, before, after),
            "json" => assert_rows(&json_rows(&body), &sim.facts, before, after),
            "html" => {
                assert_eq!(body.matches("<tr").count(), count + 1, "header + rows");
                assert!(!body.contains(SCRIPT_NAME) && !body.contains("<img"));
                assert!(body.contains("vCenter <strong>vc01</strong>: as of "));
            }
            _ => {
                let table: Vec<&str> = body
                    .lines()
                    .skip_while(|l| !l.contains("VCENTER"))
                    .skip(1)
                    .collect();
                assert_eq!(table.len(), count, "{body}");
                for vm in sim.facts.vms.iter().filter(|v| !v.snapshots.is_empty()) {
                    let lines = table.iter().filter(|l| l.contains(&vm.name)).count();
                    assert_eq!(lines, vm.snapshots.len(), "{}: {body}", vm.name);
                }
                assert!(body.contains("\nSnapshots older than 72h: 2 ("), "{body}");
                assert!(
                    body.contains("VMs whose disks need consolidation: 1 ("),
                    "{body}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_command_with_an_unreachable_vcenter_exits_1_with_one_line_and_reports_the_rest() {
    let sim = Vcsim::start(&["-scenario", "report"]);
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    let unreachable = "  - name: vc02\n    url: http://127.0.0.1:1/sdk\n    username: u\n    password_env: VC02_PASSWORD\n";
    let config = config_file(dir.path(), &sim, unreachable);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_vsphere_backup_exporter"))
            .args(["report", "--format=csv"])
            .arg(format!("--config.file={}", config.display()))
            .env("VC02_PASSWORD", "hunter2")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("vsphere_backup_exporter report: could not read vCenter vc02: "),
        "{stderr}"
    );
    assert!(lines[0].contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
    // vc01 was read: its rows are written all the same.
    let rows = csv_rows(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(rows.len(), expected(&sim.facts).len());
    assert!(rows.iter().all(|r| r["vcenter"] == "vc01"));
}
