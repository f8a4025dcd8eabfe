//! The `vsphere_backup_exporter` binary: everything lives in the library; see [`cli::main`].

use vsphere_backup_exporter::cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
