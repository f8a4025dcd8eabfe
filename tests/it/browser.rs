//! Headless Chromium for a test, driven through WebDriver: Debian's `chromedriver` on a port the
//! OS picks (`--port=0`, read back from its log), `chromium --headless` with a fresh profile, and
//! a fantoccini client. The browser runs without network access beyond 127.0.0.1 in practice:
//! background networking, component updates and sync are off.
//!
//! Call [`Browser::close`] before asserting, so a failed assertion leaves no browser behind;
//! dropping the handle kills chromedriver either way.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

/// A chromedriver process and a browser session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// The flags of a browser that makes no connection of its own and keeps nothing.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
];

impl Browser {
    /// Starts chromedriver and opens a Chromium session.
    pub async fn start() -> Browser {
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is missing: run `make test` (or scripts/install-deps.sh) first");
        let port = read_port(&mut driver);
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chromium(), "args": args}),
        );
        // An alert stays open for the test to find rather than being dismissed by the driver.
        capabilities.insert("unhandledPromptBehavior".into(), "ignore".into());
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(client) => client,
            Err(error) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("no Chromium session: {error}");
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

/// Debian's Chromium, or what `CHROMIUM` names.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// The port from chromedriver's `ChromeDriver was started successfully on port N.`
fn read_port(driver: &mut Child) -> u16 {
    let stdout = driver.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').parse::<u16>().ok());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) if port != 0 => port,
        other => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not say which port it listens on: {other:?}");
        }
    }
}
