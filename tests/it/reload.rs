//! Reloading the configuration against the vCenter simulator: `POST /-/reload` in process
//! (unchanged targets keep their session, added ones start, removed ones log out; a bad
//! configuration is refused whole; a scrape in flight finishes with the configuration it began
//! with), and SIGHUP to the real binary, the web configuration included.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vsphere_backup_exporter::config::Config;
use vsphere_backup_exporter::exporter::{Exporter, Target};
use vsphere_backup_exporter::reload::Reloader;
use vsphere_backup_exporter::server::{self, ExporterSlot, ServerOptions, Web};
use vsphere_backup_exporter::vsphere::soap::{self, PropertySpec};

use crate::support::{find, parse, value};
use crate::vcsim::Vcsim;

const SUCCESSFUL: &str = "vsphere_backup_exporter_config_last_reload_successful";
const SUCCESS_TIME: &str = "vsphere_backup_exporter_config_last_reload_success_timestamp_seconds";

/// A configuration directory: the config file, the password file, and the YAML of vCenters.
struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    fn new() -> ConfigDir {
        ConfigDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Writes a configuration with one entry per `(name, url, ca_file)`; the simulator's
    /// password is in a file of mode 600 beside it.
    fn write(&self, sim: &Vcsim, vcenters: &[(&str, &str, Option<&Path>)]) {
        let password = self.dir.path().join("vc.password");
        std::fs::write(&password, &sim.facts.password).unwrap();
        set_mode_600(&password);
        let mut yaml = String::from("vcenters:\n");
        for (name, url, ca_file) in vcenters {
            yaml.push_str(&format!(
                "  - name: {name}\n    url: {url}\n    username: {}\n    password_file: vc.password\n    connect_timeout: 2s\n",
                sim.facts.username
            ));
            if let Some(ca) = ca_file {
                yaml.push_str(&format!("    tls: {{ca_file: {}}}\n", ca.display()));
            }
        }
        self.write_text(&yaml);
    }

    fn write_text(&self, yaml: &str) {
        std::fs::write(self.file(), yaml).unwrap();
    }
}

fn set_mode_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The exporter served as the program serves it: from a slot a [`Reloader`] swaps.
struct Running {
    base: String,
    exporters: Arc<ExporterSlot>,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_reloadable(config_file: &Path) -> Running {
    let config = Arc::new(Config::load(config_file).unwrap());
    let exporter = Arc::new(Exporter::build(config).unwrap());
    let exporters = ExporterSlot::new(Arc::clone(&exporter));
    let web = Arc::new(Web::plain());
    let reloader =
        Reloader::new(config_file.to_owned(), None, exporters.clone(), web.clone()).unwrap();
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    exporter.start();
    let options = ServerOptions {
        web,
        reload: Some(Arc::new(reloader)),
        ..ServerOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let slot = exporters.clone();
    tokio::spawn(async move {
        let _ = server::serve_slot(listener, slot, options, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        base,
        exporters,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        _stop: stop,
    }
}

impl Running {
    async fn send(&self, method: reqwest::Method, path: &str) -> (u16, String) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn reload(&self) -> (u16, String) {
        self.send(reqwest::Method::POST, "/-/reload").await
    }

    async fn metrics(&self) -> String {
        let (status, body) = self.send(reqwest::Method::GET, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    fn target(&self, name: &str) -> Arc<Target> {
        let exporter = self.exporters.current();
        let target = exporter.targets().iter().find(|t| t.name() == name);
        target
            .cloned()
            .unwrap_or_else(|| panic!("no target {name}"))
    }

    /// Scrapes until `vsphere_up{vcenter=name}` is 1 (the first sync can take a moment).
    async fn wait_up(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.metrics().await;
            let samples = parse(&page);
            if !find(&samples, "vsphere_up", &[("vcenter", name)]).is_empty()
                && value(&samples, "vsphere_up", &[("vcenter", name)]) == 1.0
            {
                return page;
            }
            assert!(Instant::now() < deadline, "{name} never came up:\n{page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A call in `session` that vCenter answers only while the session is logged in.
async fn call_in_session(
    target: &Target,
    session: &vsphere_backup_exporter::vsphere::client::Session,
) -> Result<(), String> {
    let body = soap::retrieve_properties_of(
        &session.content.property_collector,
        std::slice::from_ref(&session.content.root_folder),
        &[PropertySpec {
            kind: "Folder",
            paths: vec!["name"],
        }],
    );
    target
        .client()
        .call("RetrievePropertiesEx", session, body)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_targets_starts_added_ones_and_logs_out_removed_ones() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let dir = ConfigDir::new();
    let ca = Some(sim.cert.as_path());
    dir.write(&sim, &[("vc01", &sim.url, ca)]);
    let running = serve_reloadable(&dir.file()).await;
    running.wait_up("vc01").await;
    let vc01 = running.target("vc01");
    let logins = vc01.client().logins();
    assert_eq!(logins, 1);

    dir.write(&sim, &[("vc01", &sim.url, ca), ("vc02", &sim.url, ca)]);
    assert_eq!(
        running.reload().await,
        (200, "Configuration reloaded\n".to_owned())
    );
    let page = running.wait_up("vc02").await;
    assert!(
        Arc::ptr_eq(&vc01, &running.target("vc01")),
        "vc01 was rebuilt"
    );
    assert_eq!(vc01.client().logins(), logins, "vc01 logged in again");
    let samples = parse(&page);
    assert_eq!(value(&samples, SUCCESSFUL, &[]), 1.0);

    let vc02 = running.target("vc02");
    let session = vc02.client().session().await.unwrap();
    call_in_session(&vc02, &session).await.unwrap();
    dir.write(&sim, &[("vc01", &sim.url, ca)]);
    assert_eq!(running.reload().await.0, 200);
    let samples = parse(&running.metrics().await);
    assert!(find(&samples, "vsphere_up", &[("vcenter", "vc02")]).is_empty());
    assert_eq!(value(&samples, "vsphere_up", &[("vcenter", "vc01")]), 1.0);
    let error = call_in_session(&vc02, &session)
        .await
        .err()
        .unwrap_or_default();
    assert!(
        error.contains("NotAuthenticated"),
        "vc02's session is alive: {error:?}"
    );
    assert_eq!(vc01.client().logins(), logins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_whole_with_500_the_old_one_stays_and_nothing_is_contacted() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let dir = ConfigDir::new();
    let ca = Some(sim.cert.as_path());
    dir.write(&sim, &[("vc01", &sim.url, ca)]);
    let running = serve_reloadable(&dir.file()).await;
    let samples = parse(&running.wait_up("vc01").await);
    assert_eq!(value(&samples, SUCCESSFUL, &[]), 1.0);
    let loaded_at = value(&samples, SUCCESS_TIME, &[]);
    let before = running.exporters.current();

    // A new vCenter that would be contacted, and a broken key further down: nothing of it may
    // start, not even the part that was fine.
    let watcher = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    watcher.set_nonblocking(true).unwrap();
    let watched = format!("http://{}/sdk", watcher.local_addr().unwrap());
    dir.write(&sim, &[("vc01", &sim.url, ca), ("vc03", &watched, None)]);
    let text = std::fs::read_to_string(dir.file()).unwrap();
    dir.write_text(&format!(
        "{text}backup_snapshot_patterns:\n  - {{product: x, regex: \"(\"}}\n"
    ));
    let (status, body) = running.reload().await;
    assert_eq!(status, 500);
    let file = dir.file().display().to_string();
    assert!(
        body.starts_with(&format!(
            "failed to reload the configuration: cannot load the configuration: {file}:"
        )) && body.contains("backup_snapshot_patterns[0].regex: invalid regex"),
        "{body}"
    );
    assert!(Arc::ptr_eq(&before, &running.exporters.current()));
    let samples = parse(&running.metrics().await);
    assert_eq!(value(&samples, SUCCESSFUL, &[]), 0.0);
    assert_eq!(value(&samples, SUCCESS_TIME, &[]), loaded_at);
    assert_eq!(value(&samples, "vsphere_up", &[("vcenter", "vc01")]), 1.0);
    assert!(find(&samples, "vsphere_up", &[("vcenter", "vc03")]).is_empty());

    // A CA file that is gone is refused too: the build is checked whole before the swap.
    let missing = dir.dir.path().join("gone.pem");
    dir.write(
        &sim,
        &[("vc01", &sim.url, ca), ("vc03", &watched, Some(&missing))],
    );
    let (status, body) = running.reload().await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("vcenters[1].tls.ca_file: cannot read"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        watcher.accept().is_err(),
        "a refused configuration contacted its vCenter"
    );

    let (status, body) = running.send(reqwest::Method::GET, "/-/reload").await;
    assert_eq!(status, 405, "{body}");

    dir.write(&sim, &[("vc01", &sim.url, ca)]);
    assert_eq!(running.reload().await.0, 200);
    let samples = parse(&running.metrics().await);
    assert_eq!(value(&samples, SUCCESSFUL, &[]), 1.0);
    assert!(value(&samples, SUCCESS_TIME, &[]) > loaded_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_in_flight_completes_with_the_config_it_started_with() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    // A vCenter that accepts connections and never answers: a scrape waits on its first sync.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/sdk", silent.local_addr().unwrap());
    let dir = ConfigDir::new();
    dir.write(&sim, &[("silent", &silent_url, None)]);
    let running = Arc::new(serve_reloadable(&dir.file()).await);

    let scraping = Arc::clone(&running);
    let in_flight = tokio::spawn(async move {
        let response = scraping
            .http
            .get(format!("{}/metrics", scraping.base))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "3")
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !in_flight.is_finished(),
        "the scrape did not wait; the test proves nothing"
    );
    // The reload stops the silent target's mirror, which ends the scrape's wait.
    dir.write(&sim, &[("vc01", &sim.url, Some(sim.cert.as_path()))]);
    assert_eq!(running.reload().await.0, 200);

    let old = parse(&in_flight.await.unwrap());
    assert!(!find(&old, "vsphere_up", &[("vcenter", "silent")]).is_empty());
    assert!(find(&old, "vsphere_up", &[("vcenter", "vc01")]).is_empty());
    let new = parse(&running.wait_up("vc01").await);
    assert!(find(&new, "vsphere_up", &[("vcenter", "silent")]).is_empty());
    drop(silent);
}

/// The real binary, its stderr read on a thread; SIGTERM and reaped when dropped.
struct Program {
    child: Child,
    base: String,
}

impl Program {
    fn start(args: &[String]) -> Program {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vsphere_backup_exporter"))
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(" address=").nth(1) {
                    let address = rest.split(' ').next().unwrap_or_default().to_owned();
                    let _ = tx.send(address);
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the exporter logged no listen address");
        Program {
            child,
            base: address,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}

/// GETs `url` until `check` accepts the status and body, for at most 30 seconds.
async fn poll(
    http: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    check: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = http.get(url);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        if check(status, &body) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "{url}: {status}\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_the_web_config_of_the_running_binary() {
    let sim = Vcsim::start(&["-scenario", "golden"]);
    let dir = ConfigDir::new();
    let ca = Some(sim.cert.as_path());
    dir.write(&sim, &[("vc01", &sim.url, ca)]);
    let web = dir.dir.path().join("web.yml");
    std::fs::write(&web, "").unwrap();
    let program = Program::start(&[
        format!("--config.file={}", dir.file().display()),
        format!("--web.config.file={}", web.display()),
    ]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let metrics = format!("http://{}/metrics", program.base);
    let up = |name: &'static str| {
        move |status: u16, body: &str| {
            let samples = parse(body);
            status == 200
                && !find(&samples, "vsphere_up", &[("vcenter", name)]).is_empty()
                && value(&samples, "vsphere_up", &[("vcenter", name)]) == 1.0
        }
    };
    poll(&http, &metrics, None, up("vc01")).await;

    dir.write(&sim, &[("vc01", &sim.url, ca), ("vc02", &sim.url, ca)]);
    let hash = bcrypt::hash("scrape", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    program.signal(libc::SIGHUP);
    poll(&http, &metrics, None, |status, _| status == 401).await;
    let (_, page) = poll(&http, &metrics, Some(("prometheus", "scrape")), up("vc02")).await;
    assert_eq!(value(&parse(&page), SUCCESSFUL, &[]), 1.0);

    // A broken web config is refused: the old one (with its users) stays, and so does the process.
    std::fs::write(&web, "basic_auth_users: [\n").unwrap();
    program.signal(libc::SIGHUP);
    let (_, page) = poll(
        &http,
        &metrics,
        Some(("prometheus", "scrape")),
        |status, body| status == 200 && body.contains(&format!("{SUCCESSFUL} 0")),
    )
    .await;
    assert_eq!(
        value(&parse(&page), "vsphere_up", &[("vcenter", "vc02")]),
        1.0
    );
    let (status, _) = poll(&http, &metrics, None, |_, _| true).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_htpasswd_line_in_the_web_config_is_refused_without_the_hash_in_the_answer() {
    // No vCenter is needed: the one configured listens nowhere, and nothing is contacted.
    let dir = ConfigDir::new();
    dir.write_text(
        "vcenters:\n  - name: vc01\n    url: http://127.0.0.1:1/sdk\n    username: u\n    password: p\n",
    );
    let web_file = dir.dir.path().join("web.yml");
    std::fs::write(&web_file, "").unwrap();
    let config = Arc::new(Config::load(&dir.file()).unwrap());
    let exporters = ExporterSlot::new(Arc::new(Exporter::build(config).unwrap()));
    let web = Arc::new(Web::plain());
    let reloader = Reloader::new(
        dir.file(),
        Some(web_file.clone()),
        exporters.clone(),
        web.clone(),
    )
    .unwrap();
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = ServerOptions {
        web,
        reload: Some(Arc::new(reloader)),
        ..ServerOptions::default()
    };
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve_slot(listener, exporters, options, async {
        let _ = stopped.await;
    }));
    // `htpasswd -nB prometheus` pasted after the key, as one line.
    let hash = bcrypt::hash("scrape", 4).unwrap();
    std::fs::write(&web_file, format!("basic_auth_users: prometheus:{hash}\n")).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body,
        format!(
            "failed to reload the configuration: cannot load the web configuration: {}:1:19: basic_auth_users: invalid type: string of 71 characters, expected a map\n",
            web_file.display()
        )
    );
    assert!(!body.contains(&hash[7..]), "{body}");
}
