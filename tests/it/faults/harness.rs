//! The suite's environment: the simulator (plain HTTP, a distinctive password), the fault proxy
//! in front of it, the exporter binary configured against the proxy with short timeouts, its
//! log lines as it writes them, and one run of one fault with what was observed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use vsphere_backup_exporter::vsphere::{Client, Inventory};

use super::proxy::{Fault, Proxy};
use crate::support::{Sample, find, parse, value};
use crate::vcsim::Vcsim;

/// The vCenter password: distinctive, so a leak anywhere is found by a plain search.
pub const PASSWORD: &str = "Pw-7c1e4b9a-never-LOGGED";
const USERNAME: &str = "svc-backup-monitor";
/// The exporter's timeouts in the suite (the defaults are 10 s and 60 s).
const CONNECT_TIMEOUT: &str = "1s";
const REQUEST_TIMEOUT: &str = "2s";
/// The largest answer read whole, and the longest text node of a streamed one (default 256MiB).
const MAX_RESPONSE_SIZE: &str = "16MiB";
/// Peak resident memory allowed while a fault lasts: the exporter holds a 7-VM inventory
/// (about 20 MB resident) and may read up to `MAX_RESPONSE_SIZE` of one answer.
const RSS_LIMIT_BYTES: u64 = 100 << 20;

/// How soon a hung vCenter must show as `vsphere_up 0` at the suite's settings: the update
/// wait (2 s with a 2 s request timeout), 0.5 s, then a heartbeat unanswered for 2 s (37 s at
/// the defaults, which `fault_hang_at_default_settings` holds to the 45 s), plus scrape
/// slack.
pub fn hang_bound() -> Duration {
    Duration::from_secs(8)
}

/// What a test does to the vCenter.
#[derive(Debug, Clone)]
pub enum Injected {
    Proxy(Fault),
    /// The proxy answers with a redirect to a port of the test's own.
    Redirect,
    /// The simulator forgets every session.
    SessionExpiry,
    /// The simulator stops and starts again on the same port (a new process: sessions, views and
    /// collectors are gone, the inventory is as at start).
    Restart,
}

/// The exporter binary, its address and the lines it logged.
pub struct ExporterProcess {
    child: Child,
    pub base: String,
    logs: Arc<Mutex<Vec<(Instant, String)>>>,
    http: reqwest::Client,
}

impl ExporterProcess {
    fn start(config: &std::path::Path) -> ExporterProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vsphere_backup_exporter"))
            .arg("--config.file")
            .arg(config)
            .args(["--web.listen-address=127.0.0.1:0", "--log.level=debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the exporter binary");
        let stderr = child.stderr.take().unwrap();
        let logs: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("msg=Listening")
                    && let Some(addr) = line.split("address=").nth(1)
                {
                    let _ = tx.send(addr.split(' ').next().unwrap_or("").to_string());
                }
                lines.lock().unwrap().push((Instant::now(), line));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the exporter did not log its listen address");
        ExporterProcess {
            child,
            base: format!("http://{addr}"),
            logs,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        match self.http.get(format!("{}{path}", self.base)).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, format!("no answer: {e}")),
        }
    }

    pub fn lines_since(&self, t: Instant) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs (neither gone nor a zombie).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with(['R', 'S', 'D']))
            })
            .unwrap_or(false)
    }

    /// Resets the kernel's peak-RSS mark of the process (Linux `clear_refs`, value 5).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// The process' peak resident memory since the last reset (`VmHWM`).
    pub fn peak_rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Sends a signal; how long the process took to exit (None: still running after `limit`).
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<Duration> {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
        while sent.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of the test's own that counts the connections it gets (a redirect target).
struct Listener {
    addr: String,
    connections: Arc<Mutex<usize>>,
}

impl Listener {
    async fn start() -> Listener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections: Arc<Mutex<usize>> = Arc::default();
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
            }
        });
        Listener { addr, connections }
    }
}

/// Simulator, proxy and exporter for one run.
pub struct Env {
    sim: Mutex<Option<Vcsim>>,
    sim_addr: String,
    pub proxy: Proxy,
    pub exporter: ExporterProcess,
    redirect: Listener,
    /// The snapshot renamed during each fault (golden's Veeam snapshot), and its name now.
    snapshot: String,
    snapshot_name: Mutex<String>,
    _dir: tempfile::TempDir,
}

fn sim_args() -> Vec<&'static str> {
    vec![
        "-scenario",
        "golden",
        "-tls=false",
        "-username",
        USERNAME,
        "-password",
        PASSWORD,
    ]
}

impl Env {
    /// The suite's exporter: short timeouts (1 s connect, 2 s request).
    pub async fn start() -> Env {
        Self::start_with(&format!(
            "    connect_timeout: {CONNECT_TIMEOUT}\n    request_timeout: {REQUEST_TIMEOUT}\n"
        ))
        .await
    }

    /// An exporter with the default timeouts (10 s connect, 60 s request).
    pub async fn start_with_default_timeouts() -> Env {
        Self::start_with("").await
    }

    /// `timeouts`: lines of the vCenter entry's settings.
    async fn start_with(timeouts: &str) -> Env {
        let sim = tokio::task::spawn_blocking(|| Vcsim::start(&sim_args()))
            .await
            .unwrap();
        let upstream = sim.url.trim_end_matches("/sdk").to_string();
        let sim_addr = upstream.trim_start_matches("http://").to_string();
        let snapshot = sim
            .facts
            .vms
            .iter()
            .flat_map(|v| &v.snapshots)
            .find(|s| s.name == "VEEAM BACKUP TEMPORARY SNAPSHOT")
            .map(|s| s.id.clone())
            .expect("golden has a Veeam snapshot");
        let proxy = Proxy::start(&upstream).await;
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("vc01.password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let config = dir.path().join("config.yml");
        let mut file = std::fs::File::create(&config).unwrap();
        write!(
            file,
            "vcenters:\n  - name: vc01\n    url: {}\n    username: {USERNAME}\n    password_file: {}\n{timeouts}    max_response_size: {MAX_RESPONSE_SIZE}\n",
            proxy.url,
            password_file.display()
        )
        .unwrap();
        let exporter = ExporterProcess::start(&config);
        Env {
            sim: Mutex::new(Some(sim)),
            sim_addr,
            proxy,
            exporter,
            redirect: Listener::start().await,
            snapshot,
            snapshot_name: Mutex::new("VEEAM BACKUP TEMPORARY SNAPSHOT".into()),
            _dir: dir,
        }
    }

    pub async fn control(&self, command: serde_json::Value) {
        let sim = self.sim.lock().unwrap().take().expect("the simulator runs");
        sim.control(command).await;
        *self.sim.lock().unwrap() = Some(sim);
    }

    pub async fn rename_snapshot(&self, name: &str) {
        self.control(json!({"op": "rename_snapshot", "snapshot": self.snapshot, "name": name}))
            .await;
    }

    pub async fn stats(&self) -> crate::vcsim::Stats {
        let sim = self.sim.lock().unwrap().take().expect("the simulator runs");
        let stats = sim.stats().await;
        *self.sim.lock().unwrap() = Some(sim);
        stats
    }

    async fn stop_sim(&self) {
        let sim = self.sim.lock().unwrap().take();
        tokio::task::spawn_blocking(move || drop(sim))
            .await
            .unwrap();
    }

    async fn start_sim_again(&self) {
        let addr = self.sim_addr.clone();
        let sim = tokio::task::spawn_blocking(move || Vcsim::start_on(&addr, &sim_args()))
            .await
            .unwrap();
        *self.sim.lock().unwrap() = Some(sim);
    }

    /// A fresh full retrieval straight from the simulator (the oracle), logged out after.
    async fn truth(&self) -> Inventory {
        let config = {
            let sim = self.sim.lock().unwrap();
            sim.as_ref().expect("the simulator runs").vcenter("oracle")
        };
        let client = Client::new(&(&config).into()).unwrap();
        let inventory = crate::oracle::retrieve_inventory(&client)
            .await
            .expect("oracle retrieval");
        client.logout(Duration::from_secs(5)).await;
        inventory
    }

    /// Scrapes until `vsphere_up` is 1 and the snapshot carries `name`.
    pub async fn wait_current(&self, name: &str, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            let (status, body) = self.exporter.get("/metrics").await;
            if status == 200 && up(&body) == Some(true) && snapshot_named(&body, name) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// One fault: inject, change something, watch, lift, watch the recovery.
    pub async fn run(&self, name: &str, injected: Injected, hold: Duration) -> Outcome {
        let mut out = Outcome::new(name);
        let current = self.snapshot_name.lock().unwrap().clone();
        assert!(
            self.wait_current(&current, Duration::from_secs(60))
                .await
                .is_some(),
            "{name}: the exporter never synced before the fault"
        );
        let marker = format!("changed during {name}");
        let t0 = Instant::now();
        self.exporter.reset_peak_rss();
        match &injected {
            Injected::Proxy(fault) => self.proxy.set(fault.clone()),
            Injected::Redirect => self.proxy.set(Fault::Redirect(format!(
                "http://{}/sdk",
                self.redirect.addr
            ))),
            Injected::SessionExpiry => self.control(json!({"op": "drop_sessions"})).await,
            Injected::Restart => self.stop_sim().await,
        }
        if !matches!(injected, Injected::Restart) {
            // The change answers the wait under way, which the fault then hits.
            self.control(
                json!({"op": "rename_snapshot", "snapshot": self.snapshot, "name": marker}),
            )
            .await;
        }
        let watch_limit = Duration::from_secs(60);
        let mut down_at = None;
        let mut recovered_early = None;
        while t0.elapsed() < watch_limit {
            let body = self.scrape_checked(&mut out).await;
            if up(&body) == Some(false) && down_at.is_none() {
                down_at = Some(t0.elapsed());
            }
            if matches!(injected, Injected::SessionExpiry)
                && up(&body) == Some(true)
                && snapshot_named(&body, &marker)
            {
                recovered_early = Some(t0.elapsed());
                break;
            }
            if down_at.is_some_and(|d| t0.elapsed() >= d + hold) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.down = down_at;
        match &injected {
            Injected::Proxy(_) | Injected::Redirect => self.proxy.set(Fault::None),
            Injected::SessionExpiry => {}
            Injected::Restart => {
                self.start_sim_again().await;
                self.control(
                    json!({"op": "rename_snapshot", "snapshot": self.snapshot, "name": marker}),
                )
                .await;
            }
        }
        let t1 = Instant::now();
        // A call in flight when vCenter stopped answering ends only at its request timeout
        // (60 s by default), so recovery is watched for longer than that.
        let recovery_limit = Duration::from_secs(100);
        out.recovered = match recovered_early {
            Some(at) => Some(at),
            None => loop {
                let body = self.scrape_checked(&mut out).await;
                if up(&body) == Some(true) && snapshot_named(&body, &marker) {
                    break Some(t1.elapsed());
                }
                if t1.elapsed() > recovery_limit {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            },
        };
        out.peak_rss_bytes = self.exporter.peak_rss_bytes();
        *self.snapshot_name.lock().unwrap() = marker.clone();
        if out.recovered.is_some() {
            let body = self.scrape_checked(&mut out).await;
            let samples = parse(&body);
            out.data_mismatch = compare(&samples, &self.truth().await);
            out.error_kinds = find(&samples, "vsphere_call_errors_total", &[])
                .iter()
                .filter(|s| s.value > 0.0)
                .map(|s| s.labels.get("kind").cloned().unwrap_or_default())
                .collect();
        }
        for page in ["/", "/probe?target=vc01", "/probe?target=nope", "/-/ready"] {
            let (_, body) = self.exporter.get(page).await;
            if body.contains(PASSWORD) {
                out.leaks.push(format!("page {page}"));
            }
        }
        let lines = self.exporter.lines_since(t0);
        out.log = lines
            .iter()
            .filter(|l| l.contains("vsphere_backup_exporter") || l.contains("vcenter="))
            .take(60)
            .cloned()
            .collect();
        out.warnings = lines
            .iter()
            .filter(|l| l.contains("level=warn") || l.contains("level=error"))
            .cloned()
            .collect();
        out.panics = lines
            .iter()
            .filter(|l| l.contains("panicked"))
            .cloned()
            .collect();
        out.leaks.extend(
            lines
                .iter()
                .filter(|l| l.contains(PASSWORD))
                .map(|l| format!("log line {l}")),
        );
        out.redirect_connections = *self.redirect.connections.lock().unwrap();
        out.huge_sent = self.proxy.huge_sent();
        out.alive = self.exporter.alive();
        out
    }

    async fn scrape_checked(&self, out: &mut Outcome) -> String {
        let (status, body) = self.exporter.get("/metrics").await;
        out.scrapes += 1;
        if status != 200 {
            out.bad_statuses.push(format!("{status}: {body}"));
        }
        if body.contains(PASSWORD) {
            out.leaks.push("/metrics".into());
        }
        body
    }
}

pub fn up(body: &str) -> Option<bool> {
    let samples = parse(body);
    let found = find(&samples, "vsphere_up", &[("vcenter", "vc01")]);
    found.first().map(|s| s.value == 1.0)
}

pub fn snapshot_named(body: &str, name: &str) -> bool {
    let samples = parse(body);
    !find(
        &samples,
        "vsphere_vm_snapshot_create_timestamp_seconds",
        &[("snapshot_name", name)],
    )
    .is_empty()
}

/// The scrape's VMs and snapshots against a fresh full retrieval; the first difference.
fn compare(samples: &[Sample], truth: &Inventory) -> Option<String> {
    if value(samples, "vsphere_up", &[("vcenter", "vc01")]) != 1.0 {
        return Some("vsphere_up is not 1".into());
    }
    let label = |s: &Sample, k: &str| s.labels.get(k).cloned().unwrap_or_default();
    let vms: BTreeSet<(String, String)> = find(samples, "vsphere_vm_info", &[])
        .iter()
        .map(|s| (label(s, "vm_id"), label(s, "vm_name")))
        .collect();
    let want_vms: BTreeSet<(String, String)> = truth
        .vms
        .values()
        .map(|v| (v.id.clone(), v.name.clone()))
        .collect();
    if vms != want_vms {
        return Some(format!("VMs {vms:?}, want {want_vms:?}"));
    }
    let snapshots: BTreeSet<(String, String, String)> =
        find(samples, "vsphere_vm_snapshot_create_timestamp_seconds", &[])
            .iter()
            .map(|s| {
                (
                    label(s, "vm_id"),
                    label(s, "snapshot_id"),
                    label(s, "snapshot_name"),
                )
            })
            .collect();
    let want_snapshots: BTreeSet<(String, String, String)> = truth
        .vms
        .values()
        .flat_map(|v| {
            v.snapshots()
                .into_iter()
                .map(|s| (v.id.clone(), s.tree.snapshot.clone(), s.tree.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    (snapshots != want_snapshots)
        .then(|| format!("snapshots {snapshots:?}, want {want_snapshots:?}"))
}

/// A note for docs/reliability.md, kept under target/tmp/reliability beside the rows.
pub fn write_note(name: &str, text: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.note")), text);
}

/// What one fault run observed.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    /// From the fault to the first scrape with `vsphere_up 0`.
    pub down: Option<Duration>,
    /// From the end of the fault to the first scrape with `vsphere_up 1` and the change.
    pub recovered: Option<Duration>,
    pub peak_rss_bytes: u64,
    pub scrapes: usize,
    pub bad_statuses: Vec<String>,
    pub warnings: Vec<String>,
    pub panics: Vec<String>,
    pub leaks: Vec<String>,
    pub data_mismatch: Option<String>,
    pub redirect_connections: usize,
    pub huge_sent: u64,
    pub alive: bool,
    /// The exporter's own log lines from the fault on (the first 60), shown on failure.
    pub log: Vec<String>,
    /// The `kind`s of `vsphere_call_errors_total` after recovery.
    pub error_kinds: BTreeSet<String>,
}

impl Outcome {
    fn new(name: &str) -> Outcome {
        Outcome {
            name: name.to_string(),
            down: None,
            recovered: None,
            peak_rss_bytes: 0,
            scrapes: 0,
            bad_statuses: Vec::new(),
            warnings: Vec::new(),
            panics: Vec::new(),
            leaks: Vec::new(),
            data_mismatch: None,
            redirect_connections: 0,
            huge_sent: 0,
            alive: false,
            log: Vec::new(),
            error_kinds: BTreeSet::new(),
        }
    }

    /// The figures as one row of docs/reliability.md, kept under target/tmp/reliability.
    pub fn write_row(&self) {
        let seconds = |d: Option<Duration>| {
            d.map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
        };
        let row = format!(
            "| {} | {} | {} | {:.0} MB | {} |\n",
            self.name,
            seconds(self.down),
            seconds(self.recovered),
            self.peak_rss_bytes as f64 / 1e6,
            self.warnings.len(),
        );
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
        let _ = std::fs::create_dir_all(&dir);
        let file: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = std::fs::write(dir.join(format!("{file}.md")), row);
    }

    /// Every property the suite demands of a fault, all failures reported at once; `kind` is
    /// the `vsphere_call_errors_total` kind the fault must be counted as ("" for none).
    pub fn assert_holds(&self, down_within: Duration, recover_within: Duration, kind: &str) {
        let mut failures = Vec::new();
        if !kind.is_empty() && !self.error_kinds.contains(kind) {
            failures.push(format!(
                "vsphere_call_errors_total kinds {:?}, want {kind:?} among them",
                self.error_kinds
            ));
        }
        if down_within > Duration::ZERO {
            match self.down {
                Some(d) if d <= down_within => {}
                other => failures.push(format!(
                    "vsphere_up 0 after {other:?}, want within {down_within:?}"
                )),
            }
        }
        match self.recovered {
            Some(d) if d <= recover_within => {}
            other => failures.push(format!(
                "recovered after {other:?}, want within {recover_within:?}"
            )),
        }
        if !self.bad_statuses.is_empty() {
            failures.push(format!("scrapes not 200: {:?}", self.bad_statuses));
        }
        let want_warnings = if down_within > Duration::ZERO {
            1..=1
        } else {
            0..=1
        };
        if !want_warnings.contains(&self.warnings.len()) {
            failures.push(format!(
                "{} warning lines for one incident, want {want_warnings:?}:\n  {}",
                self.warnings.len(),
                self.warnings.join("\n  ")
            ));
        }
        if !self.alive {
            failures.push("the exporter died".into());
        }
        if !self.panics.is_empty() || !self.leaks.is_empty() {
            failures.push(format!(
                "panics {:?}, password in {:?}",
                self.panics, self.leaks
            ));
        }
        if let Some(m) = &self.data_mismatch {
            failures.push(format!("data after recovery: {m}"));
        }
        if self.peak_rss_bytes > RSS_LIMIT_BYTES {
            failures.push(format!("peak RSS {} MB", self.peak_rss_bytes >> 20));
        }
        if self.redirect_connections > 0 {
            failures.push("the redirect target was contacted".into());
        }
        assert!(
            failures.is_empty(),
            "{} ({} scrapes):\n- {}\nexporter log from the fault on:\n  {}",
            self.name,
            self.scrapes,
            failures.join("\n- "),
            self.log.join("\n  ")
        );
    }
}
