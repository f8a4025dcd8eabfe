//! The README's first command: `make demo` (scripts/demo.sh) starts the simulator and the
//! exporter, names in its banner where to scrape once the exporter listens, serves the demo
//! inventory, and Ctrl-C (SIGINT) stops both.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{parse, value};

/// The URL after `label` in the banner line that starts with it.
fn url_after(lines: &[String], label: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// True while something accepts connections at `url`'s host and port.
fn listening(url: &str) -> bool {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .replace("localhost", "127.0.0.1");
    std::net::TcpStream::connect_timeout(
        &authority.parse().expect("host:port"),
        Duration::from_millis(500),
    )
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_serves_the_demo_inventory_and_sigint_stops_simulator_and_exporter() {
    crate::vcsim::binary();
    let repo = env!("CARGO_MANIFEST_DIR");
    // Port 0: any free port; the banner names the one the exporter got.
    let mut command = Command::new("scripts/demo.sh");
    command
        .arg("0")
        .current_dir(repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // A terminal's Ctrl-C reaches the script with SIGINT at its default. When the test itself
    // runs with SIGINT ignored (make test started in the background by a non-interactive shell),
    // the script would inherit that, and bash cannot trap a signal ignored on entry.
    // SAFETY: signal(2) between fork and exec, async-signal-safe, on the child only.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut demo = command.spawn().expect("scripts/demo.sh");
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !banner.iter().any(|l: &String| l.starts_with("Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => banner.push(line),
            Err(_) => panic!("no banner within 60 s: {banner:?}"),
        }
    }
    let simulator = url_after(&banner, "vCenter simulator:").expect("simulator URL");
    let metrics = url_after(&banner, "Exporter:").expect("exporter URL");
    assert!(
        !metrics.contains(":0/"),
        "the banner names the real port: {metrics}"
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let body = match http.get(&metrics).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let samples = parse(&body);
        let up = samples
            .iter()
            .any(|s| s.name == "vsphere_up" && s.value == 1.0);
        if up || Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        value(&samples, "vsphere_up", &[("vcenter", "demo")]),
        1.0,
        "the demo's vCenter is up"
    );
    let leftover = samples.iter().any(|s| {
        s.name == "vsphere_vm_snapshot_create_timestamp_seconds"
            && s.labels.get("snapshot_name").map(String::as_str)
                == Some("VEEAM BACKUP TEMPORARY SNAPSHOT")
    });
    assert!(leftover, "the demo's leftover Veeam snapshot is served");

    // Ctrl-C: SIGINT to the script; it stops both and exits.
    let pid = i32::try_from(demo.id()).unwrap();
    // SAFETY: kill(2) on the script's own process id, a plain signal send.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while demo.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!listening(&metrics), "the exporter still listens");
    assert!(!listening(&simulator), "the simulator still listens");
}
