//! The `vsphere_backup_exporter` binary: everything lives in the library; see [`cli::main`].

use vsphere_backup_exporter::cli;

fn main() -> std::process::ExitCode {
    bound_malloc_retention();
    cli::main()
}

/// Keeps glibc's malloc from holding what a resync frees beside what it allocates. By default
/// each thread that allocates under contention gets an arena of its own (up to 8 a core), and
/// memory freed in one arena serves only the threads of that arena; the threshold above which
/// an allocation gets its own mapping rises to the size of each such block freed. So the old
/// inventory and renders a resync frees stayed in the arenas of the threads that built them
/// while the new ones were built in others: at 40,000 VMs the peak after a resync was 277 to
/// 425 MB in five runs against 250 MB for the cold start. With one arena and a fixed 256 KiB
/// threshold it is the cold start's (253 and 256 MB in two runs; docs/performance.md). The
/// exporter's threads allocate little at once (one mirror, one render at a time), so one arena
/// costs no measurable time. `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the environment
/// is the admin's choice and is left alone.
fn bound_malloc_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 1),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 256 * 1024),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt changes a tuning value of the C allocator and takes plain
            // integers; it is called before any other thread exists.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}
