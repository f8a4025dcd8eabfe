//! The command line: Prometheus-style long flags (`--config.file`, `--web.listen-address`, …).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use tracing::Level;

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
    #[arg(long = "config.file", value_name = "PATH", default_value = DEFAULT_CONFIG_FILE, global = true)]
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

    /// Web configuration file (exporter-toolkit format): TLS, basic auth and response headers.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,

    /// Show the version and exit.
    #[arg(long)]
    pub version: bool,

    /// Without a command, the exporter serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Read every configured vCenter once, write the snapshot report and exit: 0 when every
    /// vCenter was read, else 1 with one line per vCenter that was not.
    Report(crate::report::command::ReportFlags),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn level(self) -> Level {
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
    if matches!(path, "/probe" | "/-/healthy" | "/-/ready" | "/-/reload") {
        return Err(format!("{path} is taken by another endpoint"));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
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
}
