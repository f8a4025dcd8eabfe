//! The monitoring mixin: alert rules (`alerts/`), Grafana dashboards (`dashboards/`), the
//! Alertmanager example and the runbook, checked as code.
//!
//! - `alerts`: the rules' conventions, thresholds table, runbook anchors and docs/alerts.md rows;
//!   `promtool check/test rules`; `amtool check-config`, routing, and the digest template
//!   rendered by `amtool`.
//! - `dashboards`: each dashboard's structure (ids, grid, variables, datasource everywhere).
//! - `end_to_end`: a real Prometheus scraping the exporter that follows the simulator's
//!   `pitfalls` scenario, evaluating the rules; every alert and every panel query checked there.
//!
//! This module owns the readers shared by those: the rule file, the dashboards and the queries
//! they hold, and the metric names a PromQL expression uses. It does not run anything.

mod alerts;
mod dashboards;
mod end_to_end;
mod prometheus;
mod recording_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn read(path: &str) -> String {
    let full = repo(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The rule file.
pub const RULES: &str = "alerts/vsphere_backup_alerts.yml";

/// One alerting rule of the rule file.
#[derive(Debug, Clone)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    pub labels: Yaml,
    pub annotations: Yaml,
}

impl Rule {
    pub fn severity(&self) -> &str {
        self.labels["severity"].as_str().unwrap_or("")
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).and_then(Yaml::as_str)
    }
}

/// Every alerting rule, in file order.
pub fn rules() -> Vec<Rule> {
    let doc: Yaml = serde_yaml_ng::from_str(&read(RULES)).expect("the rule file is YAML");
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let Some(alert) = rule.get("alert").and_then(Yaml::as_str) else {
                continue;
            };
            out.push(Rule {
                alert: alert.to_string(),
                expr: rule["expr"].as_str().expect("expr").to_string(),
                labels: rule.get("labels").cloned().unwrap_or(Yaml::Null),
                annotations: rule.get("annotations").cloned().unwrap_or(Yaml::Null),
            });
        }
    }
    out
}

/// The distinct alert names, in file order.
pub fn alert_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for rule in rules() {
        if !names.contains(&rule.alert) {
            names.push(rule.alert);
        }
    }
    names
}

/// The dashboards: file name and parsed JSON.
pub fn dashboards() -> Vec<(String, Json)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .expect("dashboards/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/*.json");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, json)
        })
        .collect()
}

/// Every panel of a dashboard, rows' nested panels included.
pub fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

/// One PromQL query a dashboard runs, named so that a failure says where it is.
#[derive(Debug, Clone)]
pub struct Query {
    /// `<dashboard uid>: <panel title>`, `<uid>: variable <name>` or `<uid>: annotation <name>`:
    /// the unit that counts as proven or not.
    pub owner: String,
    pub expr: String,
    /// Instant (tables, stats, variables) or over a range (graphs, annotations).
    pub instant: bool,
    /// A target of a table panel (whose targets Grafana merges into rows by their labels).
    pub table: bool,
}

/// Every query of a dashboard: panel targets, query variables (label_values(m, l) as
/// `count by (l) (m)`) and annotation queries.
pub fn queries(dashboard: &Json) -> Vec<Query> {
    let uid = dashboard["uid"].as_str().unwrap_or("?");
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("?");
        let table = panel["type"] == "table";
        let instant_panel = table || panel["type"] == "stat";
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("").to_string();
            let instant = instant_panel || target["instant"] == Json::Bool(true);
            out.push(Query {
                owner: format!("{uid}: {title}"),
                expr,
                instant,
                table,
            });
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("?");
        let definition = var["definition"].as_str().unwrap_or("");
        out.push(Query {
            owner: format!("{uid}: variable {name}"),
            expr: label_values_as_query(definition)
                .unwrap_or_else(|| panic!("{uid}: variable {name}: not label_values(m, l)")),
            instant: true,
            table: false,
        });
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(expr) = annotation["expr"].as_str() else {
            continue;
        };
        let name = annotation["name"].as_str().unwrap_or("?");
        out.push(Query {
            owner: format!("{uid}: annotation {name}"),
            expr: expr.to_string(),
            instant: false,
            table: false,
        });
    }
    out
}

/// `label_values(metric{sel}, label)` → `count by (label) (metric{sel})`.
fn label_values_as_query(definition: &str) -> Option<String> {
    let inner = definition
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (series, label) = inner.rsplit_once(',')?;
    Some(format!("count by ({}) ({})", label.trim(), series.trim()))
}

/// The dashboard variables as a test substitutes them: the two vCenters of the end-to-end test
/// (a multi-value selection, as Grafana writes it for a regex matcher) and "All" otherwise.
pub fn substitute_variables(expr: &str) -> String {
    expr.replace("$vcenter", "(vc01|vc-down)")
        .replace("$cluster", ".*")
        .replace("$host", ".*")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

/// The metric names a PromQL expression selects: `vsphere_*` identifiers and `up`, outside
/// string literals (label values such as `job=~"vsphere_backup.*"` are not metrics).
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut bare = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                bare.push(' ');
            }
            None if c == '"' || c == '\'' || c == '`' => {
                quote = Some(c);
                bare.push(' ');
            }
            None => bare.push(c),
        }
    }
    let mut names: Vec<String> = Vec::new();
    for word in bare.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        let is_metric = word.starts_with("vsphere_") || word == "up";
        if is_metric && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
    }
    names
}

/// Runs a command and returns its stdout; panics with its output when it fails or is missing.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (run `make test` or scripts/install-deps.sh to install it)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn metric_names_skip_string_literals_and_functions() {
    let expr = r#"up{job=~"vsphere_backup.*"} == 0 or absent(up{job=~"vsphere_backup.*"})
        and on(vcenter) label_replace(vsphere_vm_info{vm_name='vsphere_x'}, "a", "$1", "b", "(.*)")
        + vsphere_up"#;
    assert_eq!(metric_names(expr), ["up", "vsphere_vm_info", "vsphere_up"]);
}

#[test]
fn label_values_become_a_count_by_the_label() {
    assert_eq!(
        label_values_as_query(
            r#"label_values(vsphere_vm_info{vcenter=~"$vcenter"}, cluster_name)"#
        )
        .as_deref(),
        Some(r#"count by (cluster_name) (vsphere_vm_info{vcenter=~"$vcenter"})"#)
    );
    assert_eq!(label_values_as_query("query_result(up)"), None);
}
