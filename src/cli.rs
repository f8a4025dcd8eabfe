//! The program: Prometheus-style flags (`--config.file`, `--web.listen-address`, …), logging
//! (logfmt or JSON on stderr), and the life of the process: load the configuration, build the
//! exporter, serve until SIGINT or SIGTERM, shut down gracefully. It is the top of the binary,
//! so it alone turns errors into `anyhow` chains, one log line and an exit code.
//!
//! It does not parse the configuration (see [`crate::config`]) nor answer HTTP (see
//! [`crate::server`]).

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, info};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::Config;
use crate::exporter::Exporter;
use crate::server::{self, ServerOptions};

/// The default listen address. The exporters' range of the Prometheus "default port
/// allocations" wiki (9100-9999) is fully allocated, 9272 included (the Python
/// vmware_exporter); allocations now go on above 10000. 10169 must be registered there before
/// the first release.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10169";

/// The default configuration file, in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "vsphere_backup_exporter.yml";

/// A Prometheus exporter for VMware vSphere snapshot and backup health.
#[derive(Debug, Parser)]
#[command(name = "vsphere_backup_exporter", disable_version_flag = true)]
pub struct Flags {
    /// Configuration file: the vCenters to scrape and their credentials.
    #[arg(long = "config.file", value_name = "PATH", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,

    /// Validate the configuration file (credentials and CA files included), then exit.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Address to listen on: ":PORT" for every interface, "host:port" or "[ipv6]:port".
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,

    /// Path under which to expose the metrics of every vCenter.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics",
        value_parser = parse_telemetry_path
    )]
    pub telemetry_path: String,

    /// Web configuration file (exporter-toolkit format) for TLS and basic auth; not supported yet.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// Show the version and exit.
    #[arg(long)]
    pub version: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn level(self) -> Level {
        match self {
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Info => Level::INFO,
            LogLevel::Warn => Level::WARN,
            LogLevel::Error => Level::ERROR,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

fn parse_telemetry_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("must start with '/'".to_owned());
    }
    if matches!(path, "/probe" | "/-/healthy" | "/-/ready") {
        return Err(format!("{path} is taken by another endpoint"));
    }
    Ok(path.to_owned())
}

/// `vsphere_backup_exporter, version X (revision: Y)`, like Prometheus' `--version`.
pub fn version_line() -> String {
    format!(
        "vsphere_backup_exporter, version {} (revision: {})",
        crate::VERSION,
        crate::REVISION
    )
}

/// The program's entry point (see `src/main.rs`).
pub fn main() -> ExitCode {
    main_with(std::env::args_os())
}

/// [`main`] with the given command line (its first item is the program name).
pub fn main_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let flags = match Flags::try_parse_from(args) {
        Ok(flags) => flags,
        Err(error) => {
            // --help is an "error" clap prints to stdout; a bad flag goes to stderr.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if flags.version {
        println!("{}", version_line());
        return ExitCode::SUCCESS;
    }
    init_logging(flags.log_level, flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(err = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    if flags.config_check {
        return runtime.block_on(check_config(&flags));
    }
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = format!("{error:#}");
            tracing::error!(err = error.as_str(), "Exiting with an error");
            ExitCode::FAILURE
        }
    }
}

/// `--config.check`: the same checks as a start, without listening; the verdict on stdout,
/// or the error on stderr.
async fn check_config(flags: &Flags) -> ExitCode {
    match load(flags) {
        Ok((config, _)) => {
            let names: Vec<&str> = config.vcenters.iter().map(|v| v.name.as_str()).collect();
            println!(
                "{}: configuration OK ({} vCenters: {})",
                flags.config_file.display(),
                names.len(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything a start needs before listening: supported flags, configuration, exporter.
fn load(flags: &Flags) -> anyhow::Result<(Arc<Config>, Arc<Exporter>)> {
    if let Some(path) = &flags.web_config_file {
        bail!(
            "--web.config.file {}: not supported yet (TLS and basic auth come in a later release)",
            path.display()
        );
    }
    let config =
        Arc::new(Config::load(&flags.config_file).context("cannot load the configuration")?);
    let exporter =
        Exporter::new(Arc::clone(&config)).context("cannot set up the vCenter clients")?;
    Ok((config, Arc::new(exporter)))
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    info!(
        version = crate::VERSION,
        revision = crate::REVISION,
        "Starting vsphere_backup_exporter"
    );
    let (config, exporter) = load(&flags)?;
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
    info!(address = %address, telemetry_path = flags.telemetry_path, "Listening");
    let options = ServerOptions {
        telemetry_path: flags.telemetry_path,
        ..ServerOptions::default()
    };
    server::serve(listener, Arc::clone(&exporter), options, shutdown_signal())
        .await
        .context("HTTP server failed")?;
    exporter.shutdown().await;
    info!("Stopped");
    Ok(())
}

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

/// Installs the global subscriber: one line per event on stderr, spans left out.
fn init_logging(level: LogLevel, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level.level())
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A subscriber already installed (tests calling `main_with` twice) keeps logging.
    let _ = match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// `time=… level=info target=… msg="…" key=value …`, as Prometheus' own logfmt logs.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(&logfmt_line(jiff::Timestamp::now(), event))
    }
}

fn logfmt_line(time: jiff::Timestamp, event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut fields = LogfmtFields::default();
    event.record(&mut fields);
    // Records of the `log` crate (from dependencies) carry their real target in `log.target`.
    let target = fields.log_target.as_deref().unwrap_or(meta.target());
    let mut line = format!(
        "time={time:.3} level={} target={}",
        meta.level().as_str().to_ascii_lowercase(),
        logfmt_value(target)
    );
    if let Some(message) = &fields.message {
        let _ = write!(line, " msg={}", logfmt_value(message));
    }
    line.push_str(&fields.rest);
    line.push('\n');
    line
}

#[derive(Default)]
struct LogfmtFields {
    message: Option<String>,
    log_target: Option<String>,
    /// The other fields, each as ` key=value`.
    rest: String,
}

impl LogfmtFields {
    fn push(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "log.target" => self.log_target = Some(value.to_owned()),
            // The `log` bridge's module, file and line: noise in an exporter's logs.
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.rest, " {name}={}", logfmt_value(value));
            }
        }
    }
}

impl Visit for LogfmtFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and messages arrive here; their Debug is their Display.
        self.push(field, &format!("{value:?}"));
    }
}

/// A logfmt value: bare when it is a simple token, else quoted with `"` `\` and controls escaped.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && !c.is_control());
    if bare {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:04x}}}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::layer::SubscriberExt;

    use std::path::Path;

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(
            std::iter::once("vsphere_backup_exporter").chain(args.iter().copied()),
        )
    }

    #[test]
    fn flags_have_prometheus_style_defaults() {
        let flags = parse(&[]).expect("no flags");
        assert_eq!(flags.config_file, Path::new(DEFAULT_CONFIG_FILE));
        assert!(!flags.config_check);
        assert_eq!(flags.listen_address, ":10169");
        assert_eq!(flags.telemetry_path, "/metrics");
        assert_eq!(flags.web_config_file, None);
        assert_eq!(flags.log_level, LogLevel::Info);
        assert_eq!(flags.log_format, LogFormat::Logfmt);
        assert!(!flags.version);
    }

    #[test]
    fn flags_take_dotted_long_names_with_or_without_equals() {
        let flags = parse(&[
            "--config.file=/etc/x.yml",
            "--config.check",
            "--web.listen-address",
            "127.0.0.1:9999",
            "--web.telemetry-path=/m",
            "--web.config.file=web.yml",
            "--log.level=debug",
            "--log.format",
            "json",
        ])
        .expect("flags");
        assert_eq!(flags.config_file, Path::new("/etc/x.yml"));
        assert!(flags.config_check);
        assert_eq!(flags.listen_address, "127.0.0.1:9999");
        assert_eq!(flags.telemetry_path, "/m");
        assert_eq!(flags.web_config_file.as_deref(), Some(Path::new("web.yml")));
        assert_eq!(flags.log_level, LogLevel::Debug);
        assert_eq!(flags.log_format, LogFormat::Json);
    }

    #[test]
    fn flags_reject_bad_values() {
        for args in [
            &["--log.level=trace"][..],
            &["--log.format=text"],
            &["--web.telemetry-path=metrics"],
            &["--web.telemetry-path=/probe"],
            &["--unknown"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn version_line_names_version_and_revision() {
        assert_eq!(
            version_line(),
            format!(
                "vsphere_backup_exporter, version {} (revision: {})",
                env!("CARGO_PKG_VERSION"),
                crate::REVISION
            )
        );
    }

    #[test]
    fn main_with_version_exits_0() {
        assert_eq!(
            main_with(["vsphere_backup_exporter", "--version"]),
            ExitCode::SUCCESS
        );
    }

    #[test]
    fn main_with_bad_flag_exits_1() {
        assert_eq!(
            main_with(["vsphere_backup_exporter", "--nope"]),
            ExitCode::FAILURE
        );
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

    #[test]
    fn web_config_file_fails_clearly_as_not_supported_yet() {
        let flags = parse(&[
            "--config.file=tests/config_cases/good.yml",
            "--web.config.file=w.yml",
        ])
        .expect("flags");
        let error = load(&flags)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert_eq!(
            error,
            "--web.config.file w.yml: not supported yet (TLS and basic auth come in a later release)"
        );
    }

    #[test]
    fn start_fails_with_one_message_when_the_port_is_taken() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let taken = runtime.block_on(server::bind("127.0.0.1:0")).expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let flags = parse(&[
            "--config.file=tests/config_cases/good.yml",
            &format!("--web.listen-address={address}"),
        ])
        .expect("flags");
        let error = runtime.block_on(run(flags)).err().map(|e| format!("{e:#}"));
        let error = error.unwrap_or_default();
        assert!(
            error.starts_with(&format!("cannot listen on {address}: ")),
            "{error}"
        );
    }

    #[test]
    fn logfmt_value_quotes_only_when_needed() {
        let cases = [
            ("vc01", "vc01"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("bell\u{7}", "\"bell\\u{0007}\""),
        ];
        for (value, want) in cases {
            assert_eq!(logfmt_value(value), want, "{value:?}");
        }
    }

    /// Captures the logfmt lines of the events emitted by `emit`.
    fn capture_logfmt(emit: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut buffer) = self.0.lock() {
                    buffer.extend_from_slice(bytes);
                }
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(Logfmt)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn logfmt_writes_one_line_per_event_with_fields() {
        let output = capture_logfmt(|| {
            let error = std::io::Error::other("connection refused");
            tracing::warn!(vcenter = "vc01", attempts = 3, up = false, err = %error, "collection failed");
        });
        let line = output.strip_suffix('\n').unwrap_or(&output);
        assert!(!line.contains('\n'), "{output}");
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert!(time.starts_with("time=") && time.ends_with('Z'), "{time}");
        assert_eq!(
            rest,
            "level=warn target=vsphere_backup_exporter::cli::tests msg=\"collection failed\" \
             vcenter=vc01 attempts=3 up=false err=\"connection refused\""
        );
    }
}
