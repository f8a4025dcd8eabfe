//! Running govmomi's vCenter simulator (`tests/vcsim`, our Go program) for a test: build it
//! once if needed, start a scenario on 127.0.0.1, read its URL and the facts it wrote, and
//! stop it when the handle drops (closing its stdin stops it too if the test process dies).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// What the simulator program created, as it wrote it to its facts file.
#[derive(Debug, Clone, Deserialize)]
pub struct Facts {
    pub username: String,
    pub password: String,
    pub vms: Vec<VmFacts>,
    #[serde(default)]
    pub hosts: Vec<HostFacts>,
    pub perf: Option<PerfFacts>,
    /// The backup checks' facts (golden, demo, backup scenarios).
    #[serde(default)]
    pub datastores: Vec<DatastoreFacts>,
    #[serde(default)]
    pub snapshot_task_events: Vec<TaskCountFacts>,
    /// Every snapshot task's duration in the window, by operation and result.
    #[serde(default)]
    pub snapshot_task_durations: Vec<TaskDurationFacts>,
    /// The backup accounts the facts assume as `last_backup_event_users`.
    #[serde(default)]
    pub backup_event_users: Vec<String>,
    /// vSphere tags on VMs (pitfalls), served by the REST API; see tests/vcsim/tags.go.
    #[serde(default)]
    pub tags: Vec<TagFacts>,
    /// The root folder's triggeredAlarmState (pitfalls), see tests/vcsim/alarms.go.
    #[serde(default)]
    pub alarms: Vec<AlarmFacts>,
}

/// One vSphere tag on one VM.
#[derive(Debug, Clone, Deserialize)]
pub struct TagFacts {
    pub vm_id: String,
    pub vm_name: String,
    pub category: String,
    pub tag: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskDurationFacts {
    pub operation: String,
    pub result: String,
    pub seconds: Vec<f64>,
}

/// A VM's last snapshot task of one operation, with how long it ran.
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotDurationFacts {
    pub operation: String,
    pub result: String,
    pub seconds: f64,
}

/// One AlarmState of the root folder.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmFacts {
    pub entity_type: String,
    pub entity_id: String,
    pub entity_name: String,
    pub alarm_id: String,
    /// Empty for an alarm no Alarm object has.
    pub alarm_name: String,
    pub status: String,
    pub acknowledged: bool,
    /// Yellow or red.
    pub triggered: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatastoreFacts {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub fs_type: String,
    pub extent_disks: Vec<String>,
    pub capacity_bytes: i64,
    pub free_bytes: i64,
    pub uncommitted_bytes: i64,
    pub accessible: bool,
    pub backup_snapshots: u64,
    pub snapshot_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostFacts {
    pub id: String,
    pub name: String,
    pub cluster_name: String,
    pub datacenter_name: String,
    pub connection_state: String,
    pub in_maintenance: bool,
    pub version: String,
    pub build: String,
    pub datastores: Vec<HostDatastoreFacts>,
    pub nics: Vec<String>,
    pub storage_adapters: Vec<String>,
    /// VMs on the host holding a backup product's snapshot.
    #[serde(default)]
    pub backup_snapshots: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HostDatastoreFacts {
    pub id: String,
    pub name: String,
    pub instance: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PerfFacts {
    pub counter_shift: i32,
    pub dropped_counter: String,
    pub max_query_metrics: usize,
    pub counter_ids: std::collections::BTreeMap<String, i32>,
}

/// The simulator's task shims (`/_stats` "tasks", tests/vcsim/tasks.go).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskStats {
    /// Task objects made.
    pub seen: u64,
    /// Task objects removed after they ended (`-task-retention`).
    pub dropped: u64,
    pub collectors_created: u64,
    pub read_next_tasks_calls: u64,
    pub task_infos_read: u64,
}

/// The simulator's QueryPerf counts (`/_stats` "perf").
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PerfStats {
    pub query_perf_requests: u64,
    pub query_perf_metrics: u64,
    pub max_metrics_per_request: usize,
    pub over_limit: u64,
    pub unconnected_host_specs: u64,
    pub limit: usize,
}

/// What the simulator's PerformanceManager sent (`/_perf/served`): every QueryPerf answer it
/// still keeps, entity by entity in the order they went out, and what QueryAvailablePerfMetric
/// last listed per host.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PerfServed {
    pub answers: Vec<ServedAnswer>,
    /// Older answers no longer kept (the simulator keeps the newest few thousand).
    pub dropped: u64,
    /// Per host id, the metric ids listed.
    pub available: std::collections::BTreeMap<String, Vec<ServedMetricId>>,
}

/// One entity's part of one QueryPerf answer, as it went out on the wire.
#[derive(Debug, Clone, Deserialize)]
pub struct ServedAnswer {
    /// The request's number (1 for the first QueryPerf the simulator answered).
    pub request: u64,
    pub entity: String,
    /// The spec's startTime, Unix seconds.
    pub start_time: Option<i64>,
    pub max_sample: i32,
    /// The samples' times (Unix seconds) in the answer's order.
    pub timestamps: Vec<i64>,
    pub series: Vec<ServedSeries>,
}

/// One series of an answer: its values in the answer's order, as the wire carried them (the
/// shipped simulator leaves zeros out, so there may be fewer than timestamps).
#[derive(Debug, Clone, Deserialize)]
pub struct ServedSeries {
    /// `group.name.rollup`.
    pub counter: String,
    pub instance: String,
    pub values: Vec<i64>,
}

/// One metric id QueryAvailablePerfMetric listed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct ServedMetricId {
    pub counter: String,
    pub instance: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskCountFacts {
    pub operation: String,
    pub result: String,
    pub count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LastBackupFacts {
    pub source: String,
    pub timestamp_seconds: f64,
    pub parse_error: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotTaskFacts {
    pub operation: String,
    pub result: String,
    pub last_timestamp_seconds: f64,
    pub user_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VmFacts {
    pub id: String,
    pub name: String,
    pub host_name: String,
    pub cluster_name: String,
    pub datacenter_name: String,
    pub guest_id: String,
    pub power_state: String,
    pub template: bool,
    pub disk_capacity_bytes: u64,
    pub consolidation_needed: bool,
    pub tools_version_status2: String,
    pub tools_running_status: String,
    pub snapshot_count: u64,
    pub snapshot_chain_depth: u64,
    pub snapshot_total_size_bytes: u64,
    pub snapshots: Vec<SnapshotFacts>,
    #[serde(default)]
    pub custom_values: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub cbt_enabled: bool,
    #[serde(default)]
    pub disk_enable_uuid: String,
    #[serde(default)]
    pub windows: bool,
    #[serde(default)]
    pub backup_consistency: String,
    #[serde(default)]
    pub last_backup: Vec<LastBackupFacts>,
    #[serde(default)]
    pub snapshot_tasks: Vec<SnapshotTaskFacts>,
    #[serde(default)]
    pub snapshot_task_durations: Vec<SnapshotDurationFacts>,
    /// The newest successful removal by a backup account; 0 when none.
    #[serde(default)]
    pub last_backup_from_events: f64,
    #[serde(default)]
    pub disk_changed_with_snapshots: u64,
    #[serde(default)]
    pub reconfigured_with_snapshots: u64,
    /// The device checks (tests/vcsim/devices.go): disks a snapshot skips, by device key.
    #[serde(default)]
    pub disks_not_snapshotted: Vec<DiskNotSnapshottedFacts>,
    /// Disks attached from another VM's directory (multi-writer ones left out).
    #[serde(default)]
    pub foreign_disks: Vec<ForeignDiskFacts>,
    /// Devices or settings that block snapshots, by reason (only reasons above 0).
    #[serde(default)]
    pub snapshot_blockers: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub phantom_snapshot_disks: u64,
    #[serde(default)]
    pub snapshot_current_missing: bool,
    #[serde(default)]
    pub cbt_inactive_disks: u64,
    /// `runtime.question`'s text, empty without one.
    #[serde(default)]
    pub question: String,
    #[serde(default)]
    pub connection_state: String,
}

/// A disk no snapshot captures, and why.
#[derive(Debug, Clone, Deserialize)]
pub struct DiskNotSnapshottedFacts {
    pub disk_file: String,
    pub reason: String,
}

/// A disk attached to a VM whose file lies in another VM's directory.
#[derive(Debug, Clone, Deserialize)]
pub struct ForeignDiskFacts {
    pub disk_file: String,
    pub owner_vm_id: String,
    pub owner_vm_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotFacts {
    pub id: String,
    pub name: String,
    pub description: String,
    pub parent_id: String,
    pub create_time_seconds: f64,
    pub quiesced: bool,
    pub size_bytes: u64,
    /// The datastore of the snapshot's `.vmsn` file.
    pub datastore_name: String,
    /// The user of the create task matched to it.
    #[serde(default)]
    pub created_by: String,
}

/// A running simulator.
pub struct Vcsim {
    child: Child,
    /// Held open: the simulator exits (cleaning up after itself) when its stdin closes.
    stdin: Option<ChildStdin>,
    pub url: String,
    pub facts: Facts,
    /// The simulator's certificate, to trust as the vCenter's CA.
    pub cert: PathBuf,
    _dir: tempfile::TempDir,
}

static BUILD: Mutex<()> = Mutex::new(());

/// The simulator binary, built with Debian's Go and govmomi when it is missing or older than
/// its sources.
pub fn binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vcsim");
    let bin = dir.join("vcsim");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if is_fresh(&dir, &bin) {
        return bin;
    }
    let status = Command::new("go")
        .args(["build", "-o", "vcsim", "."])
        .current_dir(&dir)
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .status()
        .expect("go is missing: run `make test` (or scripts/install-deps.sh) first");
    assert!(status.success(), "building tests/vcsim failed");
    bin
}

fn is_fresh(dir: &Path, bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "go"))
        .all(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t <= built)
        })
}

impl Vcsim {
    /// Starts a scenario (`args` are the program's flags, e.g. `["-scenario", "golden"]`).
    pub fn start(args: &[&str]) -> Vcsim {
        Self::start_on("127.0.0.1:0", args)
    }

    /// Starts a scenario on a listening socket the test bound itself (a test that needs the
    /// address known before the simulator runs): the socket is handed over, never released,
    /// so no other process can take the port in between.
    pub fn start_on_listener(listener: std::net::TcpListener, args: &[&str]) -> Vcsim {
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd();
        // Rust opens sockets close-on-exec; this one must reach the simulator.
        // SAFETY: fcntl on a descriptor this function owns, with valid arguments.
        let cleared = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        assert_eq!(cleared, 0, "clearing FD_CLOEXEC on the listener");
        let sim = Self::start_on(&format!("fd:{fd}"), args);
        // The simulator has its own copy now.
        drop(listener);
        sim
    }

    /// Starts a scenario on a given address (`fd:N` for an inherited listening socket).
    pub fn start_on(listen: &str, args: &[&str]) -> Vcsim {
        let dir = tempfile::tempdir().unwrap();
        let facts_path = dir.path().join("facts.json");
        let cert = dir.path().join("vcsim.pem");
        let mut command = Command::new(binary());
        command
            .args(["-listen", listen])
            .arg("-facts")
            .arg(&facts_path);
        // `-tls=false` serves plain HTTP (the fault proxy's upstream), with no certificate.
        if !args.contains(&"-tls=false") {
            command.arg("-cert-out").arg(&cert);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the simulator");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("VCSIM_URL=") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the simulator did not print VCSIM_URL");
        let facts: Facts = serde_json::from_slice(&std::fs::read(&facts_path).unwrap())
            .expect("reading the simulator's facts");
        Vcsim {
            child,
            stdin: Some(stdin),
            url,
            facts,
            cert,
            _dir: dir,
        }
    }

    /// The simulator's base URL and an HTTPS client trusting its certificate.
    /// The simulator's base URL (without `/sdk`) and an HTTP client that trusts it, for
    /// [`Vcsim::control_with`] from a task of its own.
    pub fn http(&self) -> (String, reqwest::Client) {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if self.url.starts_with("https:") {
            let pem = std::fs::read(&self.cert).unwrap();
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
        }
        let client = builder.build().unwrap();
        (self.url.trim_end_matches("/sdk").to_string(), client)
    }

    /// The simulator's request counters (`/_stats`): SOAP calls by method.
    pub async fn stats(&self) -> Stats {
        let (base, client) = self.http();
        client
            .get(format!("{base}/_stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).expect("/_stats JSON"))
            .unwrap()
    }

    /// Every QueryPerf answer the simulator sent (and still keeps), as it went out.
    pub async fn served(&self) -> PerfServed {
        let (base, client) = self.http();
        let body = client
            .get(format!("{base}/_perf/served"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&body).expect("/_perf/served JSON")
    }

    /// Changes the simulator's inventory at run time (`POST /_control`, see tests/vcsim/README):
    /// the change goes through the simulator's own update path, so WaitForUpdatesEx reports it.
    pub async fn control(&self, command: serde_json::Value) -> serde_json::Value {
        let (base, client) = self.http();
        Self::control_with(&base, &client, command).await
    }

    /// [`Vcsim::control`] with the base URL and client of [`Vcsim::http`].
    pub async fn control_with(
        base: &str,
        client: &reqwest::Client,
        command: serde_json::Value,
    ) -> serde_json::Value {
        let response = client
            .post(format!("{base}/_control"))
            .body(command.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "control {command}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    }

    /// A config entry for this simulator, trusting its certificate.
    pub fn vcenter(&self, name: &str) -> vsphere_backup_exporter::config::VcenterConfig {
        let mut vc =
            crate::support::vcenter(name, &self.url, &self.facts.username, &self.facts.password);
        if self.url.starts_with("https:") {
            vc.tls.ca_file = Some(self.cert.clone());
        }
        vc
    }

    /// Stops the simulator: closing its stdin lets it clean up and exit; a kill only if it
    /// has not within five seconds.
    fn shut_down(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    pub requests: std::collections::BTreeMap<String, u64>,
    /// Answer bytes by method (REST requests as `REST <method> <path>`).
    #[serde(default)]
    pub response_bytes: std::collections::BTreeMap<String, u64>,
    /// Live sessions (every user's).
    pub sessions: i64,
    #[serde(default)]
    pub perf: PerfStats,
    #[serde(default)]
    pub tasks: TaskStats,
}

impl Stats {
    pub fn count(&self, method: &str) -> u64 {
        self.requests.get(method).copied().unwrap_or(0)
    }
}
