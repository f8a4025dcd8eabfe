//! The structure of every Grafana dashboard: importable from grafana.com (`__inputs`) and by
//! file provisioning, the datasource/vcenter/cluster variables, unique panel ids and titles,
//! a grid without overlaps, and the datasource variable behind every query. Whether the queries
//! return data is the end-to-end test's business.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::{dashboards, panels, queries, read};

const DATASOURCE: &str = "${datasource}";

#[test]
fn every_dashboard_is_importable_and_has_the_datasource_vcenter_and_cluster_variables() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: title"
        );
        assert_eq!(
            d["id"],
            Json::Null,
            "{file}: a fixed id breaks provisioning and import"
        );
        let inputs = d["__inputs"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: __inputs"));
        assert!(
            inputs
                .iter()
                .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"),
            "{file}: no Prometheus datasource input"
        );
        let input = inputs[0]["name"].as_str().unwrap();
        let vars = d["templating"]["list"].as_array().expect("templating");
        let var = |name: &str| {
            vars.iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{file}: no variable {name}"))
        };
        let ds = var("datasource");
        assert_eq!(ds["type"], "datasource", "{file}");
        assert_eq!(ds["query"], "prometheus", "{file}");
        assert_eq!(
            ds["current"]["value"].as_str(),
            Some(format!("${{{input}}}").as_str()),
            "{file}: the datasource variable defaults to the imported input"
        );
        for name in ["vcenter", "cluster"] {
            let v = var(name);
            assert_eq!(v["type"], "query", "{file}: {name}");
            assert_eq!(v["datasource"]["uid"], DATASOURCE, "{file}: {name}");
            assert_eq!(v["multi"], true, "{file}: {name}");
            assert_eq!(v["includeAll"], true, "{file}: {name}");
        }
        assert!(
            var("cluster")["definition"]
                .as_str()
                .unwrap()
                .contains("$vcenter"),
            "{file}: the cluster list does not follow the vCenter"
        );
    }
}

/// What is wrong with a dashboard's panels: duplicate ids or titles, a panel without a
/// description, a cell outside the 24-column grid or overlapping another.
fn grid_problems(d: &Json) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut cells: Vec<(String, i64, i64, i64, i64)> = Vec::new();
    for panel in panels(d) {
        let title = panel["title"].as_str().unwrap_or("").to_string();
        match panel["id"].as_i64() {
            Some(id) if !ids.insert(id) => problems.push(format!("panel id {id} used twice")),
            Some(_) => {}
            None => problems.push(format!("{title:?} has no integer id")),
        }
        if title.is_empty() {
            problems.push(format!("panel {} has no title", panel["id"]));
        }
        if panel["type"] != "row" {
            if !titles.insert(title.clone()) {
                problems.push(format!("two panels titled {title:?}"));
            }
            if panel["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{title:?} has no description"));
            }
        }
        let g = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
        if x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > 24 {
            problems.push(format!("{title:?} lies outside the 24-column grid: {g}"));
        }
        for (other, ox, oy, ow, oh) in &cells {
            let apart = x + w <= *ox || *ox + ow <= x || y + h <= *oy || *oy + oh <= y;
            if !apart {
                problems.push(format!("{title:?} overlaps {other:?}"));
            }
        }
        cells.push((title, x, y, w, h));
    }
    problems
}

#[test]
fn panel_ids_and_titles_are_unique_and_the_grid_has_no_overlap() {
    for (file, d) in dashboards() {
        let problems = grid_problems(&d);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
}

#[test]
fn grid_check_finds_overlaps_duplicate_ids_and_cells_off_the_grid() {
    let panel = |id: i64, title: &str, x: i64, y: i64, w: i64| {
        serde_json::json!({"id": id, "type": "stat", "title": title, "description": "d",
            "gridPos": {"x": x, "y": y, "w": w, "h": 4}})
    };
    let d = serde_json::json!({"panels": [
        panel(1, "a", 0, 0, 12),
        panel(2, "b", 6, 2, 12),
        panel(2, "c", 12, 10, 12),
        panel(3, "d", 20, 20, 6),
    ]});
    assert_eq!(
        grid_problems(&d),
        [
            "\"b\" overlaps \"a\"",
            "panel id 2 used twice",
            "\"d\" lies outside the 24-column grid: {\"h\":4,\"w\":6,\"x\":20,\"y\":20}",
        ]
    );
}

#[test]
fn every_query_panel_variable_and_annotation_uses_the_datasource_variable() {
    for (file, d) in dashboards() {
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or("?");
            let targets = panel["targets"].as_array();
            if panel["type"] == "row" {
                assert!(
                    targets.is_none_or(|t| t.is_empty()),
                    "{file}: row {title:?}"
                );
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], DATASOURCE, "{file}: {title:?}");
            let targets = targets.unwrap_or_else(|| panic!("{file}: {title:?} has no query"));
            assert!(!targets.is_empty(), "{file}: {title:?} has no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], DATASOURCE, "{file}: {title:?}");
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{file}");
            }
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            if a["builtIn"] == 1 {
                continue;
            }
            assert_eq!(a["datasource"]["uid"], DATASOURCE, "{file}: annotation {a}");
        }
        // No datasource anywhere else: every reference is the variable (or Grafana's own).
        let mut refs = Vec::new();
        collect_datasource_uids(&d, &mut refs);
        for uid in refs {
            assert!(
                uid == DATASOURCE || uid == "-- Grafana --",
                "{file}: a hard-coded datasource {uid:?}"
            );
        }
        // Every query that reads a vCenter's series filters on the vCenter variable.
        for q in queries(&d) {
            let global =
                q.expr.contains("vsphere_backup_blackout_active") && !q.expr.contains("vcenter");
            assert!(
                global || q.expr.contains("$vcenter") || q.owner.ends_with("variable vcenter"),
                "{}: {} ignores $vcenter",
                q.owner,
                q.expr
            );
        }
    }
}

fn collect_datasource_uids(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(map) => {
            for (key, value) in map {
                if key == "datasource"
                    && let Some(uid) = value["uid"].as_str()
                {
                    out.push(uid.to_string());
                }
                collect_datasource_uids(value, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_datasource_uids(i, out)),
        _ => {}
    }
}

#[test]
fn provisioning_example_points_grafana_at_the_dashboards() {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("dashboards/provisioning.example.yml")).expect("YAML");
    assert_eq!(doc["apiVersion"].as_u64(), Some(1));
    let provider = &doc["providers"][0];
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert!(provider["options"]["path"].as_str().is_some());
}
