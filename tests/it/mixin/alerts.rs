//! The alert rules as code: naming and annotation conventions, the thresholds table, the
//! promtool unit tests' coverage (each alert firing with exact labels and annotations, and
//! quiet), the runbook and docs/alerts.md, the Alertmanager example's routing, and its digest
//! template rendered by amtool. `make check-alerts` runs promtool and amtool's own checks.

use std::collections::BTreeSet;

use regex::Regex;
use serde_yaml_ng::Value as Yaml;

use super::{RULES, alert_names, read, repo, rules, run};

/// Snapshot alerts: the daily digest's.
const DIGEST_ALERTS: &[&str] = &[
    "VSphereBackupSnapshotLeftover",
    "VSphereSnapshotOld",
    "VSphereSnapshotLarge",
    "VSphereSnapshotChainDeep",
];

/// Alerts whose result has no `vcenter` label (a scrape target, a blackout window).
const WITHOUT_VCENTER: &[&str] = &["VSphereExporterDown", "VSphereBackupDuringBlackout"];

#[test]
fn every_alert_is_named_labelled_and_annotated_by_the_conventions() {
    // CamelCase words, and the acronyms vSphere writes in capitals (VM, CBT) as words.
    let name = Regex::new(r"^VSphere(?:VM|CBT|[A-Z][a-z0-9]+)+[A-Z][a-z0-9]+$").unwrap();
    let all = rules();
    assert!(all.len() >= 28, "only {} alerting rules", all.len());
    for rule in &all {
        let what = format!("{} ({})", rule.alert, rule.severity());
        assert!(name.is_match(&rule.alert), "{what}: not CamelCase VSphere…");
        assert!(
            ["critical", "warning", "info"].contains(&rule.severity()),
            "{what}: severity"
        );
        for key in ["summary", "description", "runbook_url"] {
            let value = rule.annotation(key).unwrap_or("");
            assert!(!value.trim().is_empty(), "{what}: no {key}");
        }
        let description = rule.annotation("description").unwrap();
        assert!(
            description.contains("{{"),
            "{what}: description not templated"
        );
        if !WITHOUT_VCENTER.contains(&rule.alert.as_str()) {
            assert!(
                description.contains("$labels.vcenter"),
                "{what}: the description does not name the vCenter"
            );
        }
        if rule.expr.contains("vsphere_vm_") && !WITHOUT_VCENTER.contains(&rule.alert.as_str()) {
            assert!(
                description.contains("$labels.vm_name"),
                "{what}: a VM alert whose description does not name the VM"
            );
        }
        let anchor = format!("#{}", rule.alert.to_lowercase());
        assert!(
            rule.annotation("runbook_url")
                .unwrap()
                .starts_with("https://")
                && rule.annotation("runbook_url").unwrap().ends_with(&anchor),
            "{what}: runbook_url does not end with {anchor}"
        );
    }
    // Two rules of one alert differ in severity, never in anything else's meaning.
    let mut seen = BTreeSet::new();
    for rule in &all {
        assert!(
            seen.insert((rule.alert.clone(), rule.severity().to_string())),
            "{} has two {} rules",
            rule.alert,
            rule.severity()
        );
    }
}

#[test]
fn snapshot_alerts_describe_snapshot_age_and_size_in_human_units() {
    for rule in rules()
        .iter()
        .filter(|r| DIGEST_ALERTS.contains(&r.alert.as_str()))
    {
        let what = format!("{} ({})", rule.alert, rule.severity());
        let age = rule.annotation("age").unwrap_or("");
        let size = rule.annotation("size").unwrap_or("");
        assert!(age.contains("humanizeDuration"), "{what}: age annotation");
        assert!(size.contains("humanize1024"), "{what}: size annotation");
        let description = rule.annotation("description").unwrap();
        assert!(description.contains("humanize1024"), "{what}: no size");
        if rule.expr.contains("create_timestamp") {
            assert!(description.contains("$labels.snapshot_name"), "{what}");
            assert!(description.contains("humanizeDuration"), "{what}: no age");
        }
    }
}

/// One line of the thresholds table at the top of the rule file.
struct Threshold {
    alert: String,
    severity: String,
    fragment: String,
}

fn thresholds() -> Vec<Threshold> {
    let text = read(RULES);
    let begin = text
        .find("# thresholds:begin")
        .expect("thresholds:begin marker");
    let end = text
        .find("# thresholds:end")
        .expect("thresholds:end marker");
    let line = Regex::new(r"^#\s+(VSphere\w+)\s+(critical|warning|info)\s+`([^`]+)`\s+\S").unwrap();
    text[begin..end]
        .lines()
        .skip(1)
        .map(|l| {
            let c = line
                .captures(l)
                .unwrap_or_else(|| panic!("thresholds table: cannot read {l:?}"));
            Threshold {
                alert: c[1].to_string(),
                severity: c[2].to_string(),
                fragment: c[3].to_string(),
            }
        })
        .collect()
}

#[test]
fn thresholds_table_matches_the_expressions_and_covers_every_threshold() {
    let all = rules();
    let table = thresholds();
    for t in &table {
        let rule = all
            .iter()
            .find(|r| r.alert == t.alert && r.severity() == t.severity)
            .unwrap_or_else(|| panic!("thresholds table: no {} {} rule", t.alert, t.severity));
        assert!(
            rule.expr.contains(&t.fragment),
            "thresholds table says {} {} uses `{}`; its expression is:\n{}",
            t.alert,
            t.severity,
            t.fragment,
            rule.expr
        );
    }
    // A comparison with a number (not a 0/1 flag test with ==) is a threshold: it is listed.
    let comparison = Regex::new(r"(?:>=?|<=?)\s*[0-9]").unwrap();
    for rule in &all {
        if comparison.is_match(&rule.expr) {
            assert!(
                table
                    .iter()
                    .any(|t| t.alert == rule.alert && t.severity == rule.severity()),
                "{} ({}) compares with a number but is not in the thresholds table",
                rule.alert,
                rule.severity()
            );
        }
    }
}

#[test]
fn runbook_has_exactly_one_section_per_alert() {
    let runbook = read("docs/runbook.md");
    let sections: Vec<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let names = alert_names();
    for name in &names {
        let count = sections.iter().filter(|s| *s == name).count();
        assert_eq!(count, 1, "docs/runbook.md: {count} sections `## {name}`");
    }
    for section in &sections {
        assert!(
            names.iter().any(|n| n == section),
            "docs/runbook.md: section `## {section}` names no alert"
        );
    }
}

#[test]
fn docs_alert_table_has_a_row_per_alert() {
    let doc = read("docs/alerts.md");
    for name in alert_names() {
        let row = format!("| `{name}` |");
        assert_eq!(
            doc.matches(&row).count(),
            1,
            "docs/alerts.md: want exactly one alert table row starting {row}"
        );
    }
}

/// Every promtool unit test file with its parsed YAML.
fn unit_tests() -> Vec<(String, Yaml)> {
    let mut files: Vec<_> = std::fs::read_dir(repo("alerts/tests"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let doc = serde_yaml_ng::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), doc)
        })
        .collect()
}

#[test]
fn every_alert_has_promtool_tests_firing_with_exact_annotations_and_staying_quiet() {
    let mut firing: BTreeSet<(String, String)> = BTreeSet::new();
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    for (file, doc) in unit_tests() {
        let rule_files = doc["rule_files"].as_sequence().expect("rule_files");
        assert!(
            rule_files
                .iter()
                .any(|f| f.as_str() == Some("../vsphere_backup_alerts.yml")),
            "{file}: does not test the rule file"
        );
        for test in doc["tests"].as_sequence().expect("tests") {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let alert = case["alertname"].as_str().expect("alertname").to_string();
                let expected = case["exp_alerts"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                if expected.is_empty() {
                    quiet.insert(alert);
                    continue;
                }
                for exp in &expected {
                    let labels = &exp["exp_labels"];
                    assert_eq!(labels["alertname"].as_str(), Some(alert.as_str()), "{file}");
                    let severity = labels["severity"].as_str().expect("exp_labels.severity");
                    for key in ["summary", "description", "runbook_url"] {
                        assert!(
                            exp["exp_annotations"].get(key).is_some(),
                            "{file}: {alert} fires without its exact {key}"
                        );
                    }
                    firing.insert((alert.clone(), severity.to_string()));
                }
            }
        }
    }
    for rule in rules() {
        assert!(
            firing.contains(&(rule.alert.clone(), rule.severity().to_string())),
            "alerts/tests: no test where {} fires with severity {}",
            rule.alert,
            rule.severity()
        );
        assert!(
            quiet.contains(&rule.alert),
            "alerts/tests: no test where {} does not fire",
            rule.alert
        );
    }
}

#[test]
fn alertmanager_example_sends_snapshot_alerts_as_a_daily_digest_per_vcenter() {
    let config: Yaml =
        serde_yaml_ng::from_str(&read("alerts/alertmanager.example.yml")).expect("YAML");
    let digest = config["route"]["routes"]
        .as_sequence()
        .expect("routes")
        .iter()
        .find(|r| r["receiver"] == "vsphere-snapshot-digest")
        .expect("a route to vsphere-snapshot-digest");
    assert_eq!(
        digest["group_by"],
        serde_yaml_ng::from_str::<Yaml>("[vcenter]").unwrap()
    );
    assert_eq!(digest["group_interval"].as_str(), Some("24h"));
    assert_eq!(digest["repeat_interval"].as_str(), Some("24h"));
    let receiver = config["receivers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "vsphere-snapshot-digest")
        .expect("the digest receiver");
    let email = &receiver["email_configs"][0];
    assert!(email["to"].as_str().is_some_and(|to| to.contains('@')));
    assert!(
        email["html"]
            .as_str()
            .unwrap()
            .contains("vsphere.snapshot.digest.html")
    );

    // Where amtool routes each alert of the rule file.
    let file = repo("alerts/alertmanager.example.yml");
    let file = file.to_str().unwrap();
    for rule in rules() {
        let want = if DIGEST_ALERTS.contains(&rule.alert.as_str()) {
            "vsphere-snapshot-digest"
        } else {
            "vsphere-backup-ops"
        };
        let got = run(
            "amtool",
            &[
                "config",
                "routes",
                "test",
                "--config.file",
                file,
                &format!("alertname={}", rule.alert),
                &format!("severity={}", rule.severity()),
                "vcenter=vc01",
            ],
        );
        assert_eq!(got.trim(), want, "{} ({})", rule.alert, rule.severity());
    }
}

/// Renders a template of alerts/vsphere_backup.tmpl with amtool.
pub fn render(template: &str, kind: &str, data: &std::path::Path) -> String {
    let glob = repo("alerts/vsphere_backup.tmpl");
    run(
        "amtool",
        &[
            "template",
            "render",
            &format!("--template.glob={}", glob.display()),
            &format!("--template.type={kind}"),
            &format!("--template.data={}", data.display()),
            &format!("--template.text={{{{ template \"{template}\" . }}}}"),
        ],
    )
}

/// The sample's alerts: (VM, snapshot or None, age, size).
fn sample_alerts(data: &serde_json::Value) -> Vec<(String, Option<String>, String, String)> {
    data["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["vm_name"].as_str().unwrap().to_string(),
                a["labels"]["snapshot_name"].as_str().map(str::to_string),
                a["annotations"]["age"].as_str().unwrap().to_string(),
                a["annotations"]["size"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Checks that each alert has one line (text) or table row (HTML) holding its VM, snapshot,
/// age and size; `escape` turns a label into what the output must hold.
pub fn assert_digest_lists(
    output: &str,
    alerts: &[(String, Option<String>, String, String)],
    escape: fn(&str) -> String,
) {
    for (vm, snapshot, age, size) in alerts {
        let vm_cell = escape(vm);
        let found = output.lines().any(|line| {
            line.contains(&vm_cell)
                && snapshot.as_ref().is_none_or(|s| line.contains(&escape(s)))
                && line.contains(age.as_str())
                && line.contains(size.as_str())
        });
        assert!(
            found,
            "no line lists VM {vm}, snapshot {snapshot:?}, age {age}, size {size}:\n{output}"
        );
    }
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[test]
fn digest_template_renders_one_line_per_snapshot_with_vm_name_age_and_size() {
    let data_path = repo("alerts/tests/digest_sample.json");
    let data: serde_json::Value =
        serde_json::from_str(&read("alerts/tests/digest_sample.json")).expect("digest_sample.json");
    let alerts = sample_alerts(&data);
    assert_eq!(alerts.len(), 3);

    let text = render("vsphere.snapshot.digest.text", "text", &data_path);
    assert!(text.contains("vCenter vc01: 3"), "{text}");
    assert_digest_lists(&text, &alerts, str::to_string);

    let html = render("vsphere.snapshot.digest.html", "html", &data_path);
    assert_digest_lists(&html, &alerts, html_escape);
    assert!(
        html.contains("before &lt;patch&gt; &amp; reboot") && !html.contains("<patch>"),
        "a snapshot name is not escaped in HTML:\n{html}"
    );

    let subject = render("vsphere.snapshot.digest.subject", "text", &data_path);
    assert_eq!(
        subject.trim(),
        "[vSphere snapshots] vCenter vc01: 3 snapshot problems"
    );
}
