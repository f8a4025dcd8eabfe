//! The `vsphere_backup_exporter` binary: everything lives in the library; see [`cli::main`].

use vsphere_backup_exporter::cli;

/// mimalloc rather than the system allocator: reading a vCenter's inventory makes millions of
/// small, short-lived allocations (one per XML element), which glibc's malloc serves slower
/// and leaves fragmented across threads (measured with `make bench`, see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
