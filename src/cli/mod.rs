//! The program: flags ([`flags`]), logging ([`logging`]) and the run loop ([`run`]). It is the
//! top of the binary, so it alone turns errors into `anyhow` chains, one log line and an exit
//! code.
//!
//! It does not parse the configuration (see [`crate::config`]) nor answer HTTP (see
//! [`crate::server`]).

mod flags;
mod logging;
mod run;

use std::ffi::OsString;
use std::process::ExitCode;

pub use flags::{Command, DEFAULT_CONFIG_FILE, DEFAULT_LISTEN_ADDRESS, Flags, LogFormat, LogLevel};

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
    let flags = match flags::parse_from(args) {
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
    // The report command's stderr is mailed by cron: only errors, unless asked for more.
    let log_level = match (&flags.command, flags.log_level) {
        (Some(Command::Report(_)), LogLevel::Info) => LogLevel::Error,
        (_, level) => level,
    };
    logging::init_logging(log_level, flags.log_format);
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
        return runtime.block_on(run::check_config(&flags));
    }
    if let Some(Command::Report(report)) = &flags.command {
        return runtime.block_on(crate::report::command::run(&flags.config_file, report));
    }
    match runtime.block_on(run::run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = format!("{error:#}");
            tracing::error!(err = error.as_str(), "Exiting with an error");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
