//! The one-shot `report` command: start the configured vCenters' targets exactly as the
//! server does, wait for each mirror's first full retrieval (or its first failure), write the
//! report, stop the mirrors and log out. For sites that want the list by mail from cron or a
//! systemd timer rather than through Alertmanager.
//!
//! Exit status 0 when every vCenter was read; otherwise 1, with one line per vCenter that could
//! not be read (or one line saying what else failed) on stderr. The report of the vCenters that
//! were read is written either way, naming the ones that were not.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Format, Report};
use crate::config::Config;
use crate::exporter::Exporter;

/// The longest the command waits for a first full retrieval. Every SOAP call has its own
/// timeout (`request_timeout`), so a mirror settles long before this unless vCenter trickles.
pub const FIRST_SYNC_LIMIT: Duration = Duration::from_secs(600);

/// What the command was asked for.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ReportFlags {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Only this configured vCenter (no other is contacted).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,

    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs the command; prints its own errors (one line each) and returns the exit status.
pub async fn run(config_file: &Path, flags: &ReportFlags) -> ExitCode {
    match report(config_file, flags).await {
        Ok(failed) if failed.is_empty() => ExitCode::SUCCESS,
        Ok(failed) => {
            for line in failed {
                eprintln!("vsphere_backup_exporter report: {line}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("vsphere_backup_exporter report: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the report; the vCenters that could not be read, as lines to print.
async fn report(config_file: &Path, flags: &ReportFlags) -> anyhow::Result<Vec<String>> {
    let mut config = Config::load(config_file).context("cannot load the configuration")?;
    if let Some(target) = &flags.target {
        if config.vcenter(target).is_none() {
            bail!("--target {target:?} is not a configured vCenter name");
        }
        config.vcenters.retain(|v| &v.name == target);
    }
    // The server's way: build (contacting nothing), start the sources, read each mirror once
    // it has tried its first full retrieval, stop and log out.
    let exporter =
        Exporter::build(Arc::new(config)).context("cannot set up the vCenter clients")?;
    exporter.start();
    let inputs = Report::inputs(&exporter, None, FIRST_SYNC_LIMIT).await;
    exporter.shutdown().await;
    let inputs = inputs.context("no vCenter configured")?;
    let format = flags.format;
    let (report, body) = tokio::task::spawn_blocking(move || {
        let report = inputs.build();
        let body = report.render(format);
        (report, body)
    })
    .await
    .context("the report task failed")?;
    let body = body?;
    match &flags.output {
        Some(path) => std::fs::write(path, &body)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&body)
                .and_then(|()| stdout.flush())
                .context("cannot write to standard output")?;
        }
    }
    Ok(report
        .failed()
        .map(|vc| {
            let error = vc.error.as_deref().unwrap_or("not in sync");
            // The mirror's errors already start with "vCenter NAME: ".
            let prefix = format!("vCenter {}: ", vc.name);
            let reason = error.strip_prefix(&prefix).unwrap_or(error);
            format!("could not read vCenter {}: {reason}", vc.name)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Command, Flags};

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(
            std::iter::once("vsphere_backup_exporter").chain(args.iter().copied()),
        )
    }

    #[test]
    fn report_takes_its_flags_and_the_global_ones_after_the_command() {
        let flags = parse(&[
            "report",
            "--config.file=/etc/x.yml",
            "--format=csv",
            "--target",
            "vc01",
            "--output=/tmp/r.csv",
            "--log.level=debug",
        ])
        .expect("flags");
        assert_eq!(flags.config_file, Path::new("/etc/x.yml"));
        assert_eq!(
            flags.command,
            Some(Command::Report(ReportFlags {
                format: Format::Csv,
                target: Some("vc01".to_owned()),
                output: Some(PathBuf::from("/tmp/r.csv")),
            }))
        );
        let defaults = parse(&["report"]).expect("flags");
        assert_eq!(
            defaults.command,
            Some(Command::Report(ReportFlags {
                format: Format::Text,
                target: None,
                output: None,
            }))
        );
        assert!(parse(&["report", "--format=xml"]).is_err());
        assert_eq!(parse(&[]).expect("flags").command, None);
    }

    #[tokio::test]
    async fn an_unknown_target_fails_before_anything_is_contacted() {
        let flags = ReportFlags {
            format: Format::Text,
            target: Some("nope".to_owned()),
            output: None,
        };
        let error = report(Path::new("tests/config_cases/good.yml"), &flags)
            .await
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            error.as_deref(),
            Some("--target \"nope\" is not a configured vCenter name")
        );
    }
}
