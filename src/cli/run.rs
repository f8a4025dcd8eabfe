//! The life of the serving process: load and build everything (contacting nothing), bind
//! the listen address, only then start following the vCenters, serve until SIGINT or SIGTERM,
//! and shut down within a bound.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tracing::info;

use super::flags::Flags;
use crate::config::Config;
use crate::exporter::Exporter;
use crate::reload::Reloader;
use crate::server::{self, ExporterSlot, ServerOptions, Web};
use crate::webconfig::WebConfig;

/// `--config.check`: the same checks as a start (configuration, credentials, CA files, the
/// exporter built), contacting no vCenter and listening nowhere; the verdict on stdout, or the
/// error on stderr.
pub(super) async fn check_config(flags: &Flags) -> ExitCode {
    match load(flags).and_then(|loaded| Ok((loaded, load_web(flags)?))) {
        Ok(((config, _), _)) => {
            let names: Vec<&str> = config.vcenters.iter().map(|v| v.name.as_str()).collect();
            let count = match names.len() {
                1 => "1 vCenter".to_owned(),
                n => format!("{n} vCenters"),
            };
            println!(
                "{}: configuration OK ({count}: {})",
                flags.config_file.display(),
                names.join(", ")
            );
            if let Some(path) = &flags.web_config_file {
                println!("{}: web configuration OK", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The web config (`--web.config.file`) built and checked, TLS files included; plain HTTP
/// without it. Contacts nothing.
fn load_web(flags: &Flags) -> anyhow::Result<Web> {
    let Some(path) = &flags.web_config_file else {
        return Ok(Web::plain());
    };
    let config = WebConfig::load(path).context("cannot load the web configuration")?;
    Web::new(&config).with_context(|| format!("web configuration {}", path.display()))
}

/// Everything a start needs before listening: configuration, exporter built. Contacts nothing.
pub(super) fn load(flags: &Flags) -> anyhow::Result<(Arc<Config>, Arc<Exporter>)> {
    if !flags.config_file.exists() {
        bail!(
            "the configuration file {} does not exist; give its path with --config.file",
            flags.config_file.display()
        );
    }
    let mut config = Config::load(&flags.config_file).context("cannot load the configuration")?;
    config.disabled_collectors = flags.disabled_collectors.clone();
    let config = Arc::new(config);
    let exporter =
        Exporter::build(Arc::clone(&config)).context("cannot set up the vCenter clients")?;
    Ok((config, Arc::new(exporter)))
}

/// Builds everything, binds, then starts following the vCenters and serves until a signal.
pub(super) async fn run(flags: Flags) -> anyhow::Result<()> {
    info!(
        version = crate::VERSION,
        revision = crate::REVISION,
        "Starting vsphere_backup_exporter"
    );
    // Taken first: from here on a SIGHUP reloads rather than ends the process.
    let hangups = hangup_signals();
    let (config, exporter) = load(&flags)?;
    let web = Arc::new(load_web(&flags)?);
    info!(
        file = %flags.config_file.display(),
        vcenters = config.vcenters.len(),
        "Loaded configuration"
    );
    let listener = server::bind(&flags.listen_address)
        .await
        .with_context(|| format!("cannot listen on {}", flags.listen_address))?;
    let address = listener
        .local_addr()
        .context("cannot read the listen address")?;
    // Only now that the address is ours do the sources contact vCenter.
    exporter.start();
    info!(
        address = %address,
        telemetry_path = flags.telemetry_path,
        tls = web.is_tls(),
        basic_auth = web.has_auth(),
        "Listening"
    );
    let exporters = ExporterSlot::new(Arc::clone(&exporter));
    let reloader = Arc::new(
        Reloader::new(
            flags.config_file.clone(),
            flags.web_config_file.clone(),
            Arc::clone(&exporters),
            Arc::clone(&web),
        )
        .context("cannot set up reloading")?,
    );
    let hangups = tokio::spawn(reload_on_hangup(hangups, Arc::clone(&reloader)));
    let options = ServerOptions {
        telemetry_path: flags.telemetry_path,
        web,
        reload: Some(reloader),
        ..ServerOptions::default()
    };
    server::serve_slot(listener, Arc::clone(&exporters), options, shutdown_signal())
        .await
        .context("HTTP server failed")?;
    hangups.abort();
    // The exporter in service now: the last reload's, if any.
    exporters.current().shutdown().await;
    info!("Stopped");
    Ok(())
}

/// SIGHUP as a stream, taken at once: by default it would end the process.
#[cfg(unix)]
fn hangup_signals() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::warn!(err = %error, "cannot take SIGHUP; it would stop the exporter");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Option<()> {
    None
}

/// Reloads the configuration on every SIGHUP (`systemctl reload`); a failure is logged by the
/// reload and the running configuration stays.
#[cfg(unix)]
async fn reload_on_hangup(hangups: Option<tokio::signal::unix::Signal>, reloader: Arc<Reloader>) {
    let Some(mut hangups) = hangups else {
        return;
    };
    while hangups.recv().await.is_some() {
        info!("SIGHUP received: reloading the configuration");
        let _ = reloader.reload().await;
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_hangups: Option<()>, _reloader: Arc<Reloader>) {}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(err = %error, "cannot wait for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::warn!(err = %error, "cannot wait for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let signal = tokio::select! {
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    };
    info!(signal, "Shutting down gracefully");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(
            std::iter::once("vsphere_backup_exporter").chain(args.iter().copied()),
        )
    }

    #[test]
    fn config_check_exits_0_on_a_good_file_and_1_on_a_bad_one() {
        // `check_config` rather than `main_with`, which would install a global subscriber.
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let check = |file: &str| {
            let flags = parse(&["--config.check", "--config.file", file]).expect("flags");
            runtime.block_on(check_config(&flags))
        };
        assert_eq!(check("tests/config_cases/good.yml"), ExitCode::SUCCESS);
        assert_eq!(
            check("tests/config_cases/no-such-file.yml"),
            ExitCode::FAILURE
        );
    }

    /// A config whose vCenter is a listener of the test's own, and that listener: whatever
    /// connects to it can be seen.
    fn config_pointing_at_a_listener() -> (tempfile::TempDir, std::net::TcpListener) {
        let vcenter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        vcenter.set_nonblocking(true).expect("nonblocking");
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!(
            "vcenters:\n  - name: vc01\n    url: http://{}/sdk\n    username: u\n    password: p\n",
            vcenter.local_addr().expect("addr")
        );
        std::fs::write(dir.path().join("c.yml"), yaml).expect("write");
        (dir, vcenter)
    }

    fn saw_a_connection(listener: &std::net::TcpListener) -> bool {
        // The exporter would connect at once; a moment more covers a slow machine.
        std::thread::sleep(std::time::Duration::from_millis(300));
        listener.accept().is_ok()
    }

    #[test]
    fn config_check_contacts_no_vcenter() {
        let (dir, vcenter) = config_pointing_at_a_listener();
        let file = dir.path().join("c.yml");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let flags = parse(&[
            "--config.check",
            "--config.file",
            file.to_str().expect("path"),
        ])
        .expect("flags");
        assert_eq!(runtime.block_on(check_config(&flags)), ExitCode::SUCCESS);
        assert!(
            !saw_a_connection(&vcenter),
            "--config.check connected to the vCenter"
        );
    }

    #[test]
    fn a_missing_config_file_is_named_with_the_flag_to_fix_it() {
        let flags = parse(&["--config.file=/nonexistent/x.yml"]).expect("flags");
        let error = load(&flags)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert_eq!(
            error,
            "the configuration file /nonexistent/x.yml does not exist; give its path with --config.file"
        );
    }

    #[test]
    fn config_check_also_checks_the_web_config_file() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("web.yml");
        std::fs::write(
            &good,
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .expect("write");
        let bad = dir.path().join("bad-web.yml");
        std::fs::write(
            &bad,
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: k\n",
        )
        .expect("write");
        let check = |web: &std::path::Path| {
            let flags = parse(&[
                "--config.check",
                "--config.file=tests/config_cases/good.yml",
                &format!("--web.config.file={}", web.display()),
            ])
            .expect("flags");
            runtime.block_on(check_config(&flags))
        };
        assert_eq!(check(&good), ExitCode::SUCCESS);
        assert_eq!(check(&bad), ExitCode::FAILURE);
        assert_eq!(check(&dir.path().join("absent.yml")), ExitCode::FAILURE);
    }

    #[test]
    fn start_fails_with_one_message_when_the_port_is_taken() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let taken = runtime.block_on(server::bind("127.0.0.1:0")).expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let (dir, vcenter) = config_pointing_at_a_listener();
        let file = format!("--config.file={}", dir.path().join("c.yml").display());
        let flags = parse(&[&file, &format!("--web.listen-address={address}")]).expect("flags");
        let error = runtime.block_on(run(flags)).err().map(|e| format!("{e:#}"));
        let error = error.unwrap_or_default();
        assert!(
            error.starts_with(&format!("cannot listen on {address}: ")),
            "{error}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
        assert!(
            !saw_a_connection(&vcenter),
            "a failed start connected to the vCenter"
        );
    }
}
