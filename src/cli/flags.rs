//! The command line: Prometheus-style long flags (`--config.file`, `--web.listen-address`, …),
//! and node_exporter's `--collector.<name>` / `--no-collector.<name>` for every collector of
//! [`crate::collector::COLLECTORS`], made from that table (see [`parse_from`]).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};
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

    /// Collectors turned off with `--no-collector.<name>` (filled by [`parse_from`]).
    #[arg(skip)]
    pub disabled_collectors: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Read every configured vCenter once, write the snapshot report and exit: 0 when every
    /// vCenter was read, else 1 with one line per vCenter that was not.
    Report(crate::report::command::ReportFlags),
}

/// Parses the command line: the flags of [`Flags`], plus `--collector.<name>` and
/// `--no-collector.<name>` for every collector (all are on by default; of the two, the last one
/// given wins, as with node_exporter's).
pub fn parse_from(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Flags, clap::Error> {
    let names: Vec<&str> = crate::collector::COLLECTORS
        .iter()
        .map(|c| c.name())
        .collect();
    let mut command = Flags::command();
    for name in &names {
        let (on, off) = (format!("collector.{name}"), format!("no-collector.{name}"));
        command = command
            .arg(
                Arg::new(on.clone())
                    .long(on.clone())
                    .action(ArgAction::SetTrue)
                    .overrides_with(off.clone())
                    .help(format!("Enable the {name} collector (default: enabled).")),
            )
            .arg(
                Arg::new(off.clone())
                    .long(off)
                    .action(ArgAction::SetTrue)
                    .overrides_with(on)
                    .help(format!("Disable the {name} collector.")),
            );
    }
    let matches = command.try_get_matches_from(args)?;
    let mut flags = Flags::from_arg_matches(&matches)?;
    flags.disabled_collectors = names
        .iter()
        .filter(|name| matches.get_flag(&format!("no-collector.{name}")))
        .map(|name| name.to_string())
        .collect();
    Ok(flags)
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
        parse_from(std::iter::once("vsphere_backup_exporter").chain(args.iter().copied()))
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
    fn every_collector_has_an_on_and_an_off_flag_and_the_last_wins() {
        assert!(parse(&[]).unwrap().disabled_collectors.is_empty());
        let flags = parse(&["--no-collector.hostio", "--no-collector.tools"]).unwrap();
        let off: Vec<&str> = flags
            .disabled_collectors
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(off, ["hostio", "tools"]);
        let flags = parse(&["--no-collector.hostio", "--collector.hostio"]).unwrap();
        assert!(flags.disabled_collectors.is_empty());
        let flags = parse(&["--collector.hostio", "--no-collector.hostio"]).unwrap();
        assert!(flags.disabled_collectors.contains("hostio"));
        for collector in crate::collector::COLLECTORS {
            let name = collector.name();
            let flags = parse(&[&format!("--no-collector.{name}")]).unwrap();
            assert!(flags.disabled_collectors.contains(name), "{name}");
            assert!(parse(&[&format!("--collector.{name}")]).is_ok(), "{name}");
        }
        assert!(parse(&["--no-collector.nope"]).is_err());
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
