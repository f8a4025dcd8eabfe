//! A real Prometheus (Debian's `/usr/bin/prometheus`) for a test: its own temporary directory,
//! configuration and rule files, listening on 127.0.0.1 on a port it picks itself (`:0`; the
//! address is read back from its log line "Listening on"), so no port is chosen before it is
//! bound. Stopped when dropped. Also the few HTTP API calls the tests make.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    pub base: String,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// Where the binary is; Debian installs it here.
const BINARY: &str = "prometheus";

impl Prometheus {
    /// Starts Prometheus with `config` (YAML; `RULES_DIR` in it is replaced by the directory
    /// holding `rule_files`, each written under its given name) and waits until it is ready.
    pub async fn start(config: &str, rule_files: &[(&str, String)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in rule_files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let config_path = dir.path().join("prometheus.yml");
        let config = config.replace("RULES_DIR", dir.path().to_str().unwrap());
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(BINARY)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--log.level=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus is missing: run `make test` (or scripts/install-deps.sh) first");
        let log = Arc::new(Mutex::new(Vec::new()));
        let address = listening_address(child.stderr.take().unwrap(), log.clone());
        let base = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => format!("http://{address}"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Prometheus did not log its address:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let prometheus = Prometheus {
            child,
            base,
            http: reqwest::Client::new(),
            log,
            _dir: dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self.http.get(format!("{}/-/ready", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// GET an API path with query parameters; the `data` of a successful answer, or the error
    /// Prometheus gave.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Json, String> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let response = self
            .http
            .get(format!("{}{path}?{query}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let body: Json = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query's result vector (or matrix/scalar as returned).
    pub async fn query(&self, expr: &str) -> Result<Vec<Json>, String> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await?;
        Ok(result_list(&data))
    }

    /// A range query over the last `seconds`, one step a second.
    pub async fn query_range(&self, expr: &str, seconds: u64) -> Result<Vec<Json>, String> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let start = (end - seconds as i64).to_string();
        let end = end.to_string();
        let data = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", "1"),
                ],
            )
            .await?;
        Ok(result_list(&data))
    }

    /// The active (pending and firing) alerts.
    pub async fn alerts(&self) -> Vec<Json> {
        let data = self
            .api("/api/v1/alerts", &[])
            .await
            .unwrap_or_else(|e| panic!("/api/v1/alerts: {e}"));
        data["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The rule groups as Prometheus loaded them (with each rule's health and last error).
    pub async fn rules(&self) -> Vec<Json> {
        let data = self
            .api("/api/v1/rules", &[])
            .await
            .unwrap_or_else(|e| panic!("/api/v1/rules: {e}"));
        data["groups"].as_array().cloned().unwrap_or_default()
    }
}

fn result_list(data: &Json) -> Vec<Json> {
    match &data["result"] {
        Json::Array(items) => items.clone(),
        Json::Null => Vec::new(),
        scalar => vec![scalar.clone()],
    }
}

/// Reads Prometheus's log, keeping it, and sends the address of its "Listening on" line.
fn listening_address(
    stderr: std::process::ChildStderr,
    log: Arc<Mutex<Vec<String>>>,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("msg=\"Listening on\"")
                && let Some(address) = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("address="))
            {
                let _ = tx.send(address.to_string());
            }
            log.lock().unwrap().push(line);
        }
    });
    rx
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rule file with every `for:` shortened to `for_` (a test cannot wait minutes); nothing
/// else changes.
pub fn rules_with_short_for(path: &Path, for_: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut changed = 0;
    for group in doc["groups"].as_sequence_mut().unwrap() {
        for rule in group["rules"].as_sequence_mut().unwrap() {
            if let Some(map) = rule.as_mapping_mut()
                && map.contains_key("for")
            {
                map.insert("for".into(), for_.into());
                changed += 1;
            }
        }
    }
    assert!(changed > 0, "no `for:` found in {}", path.display());
    serde_yaml_ng::to_string(&doc).unwrap()
}
