//! The `tricolor` binary: see `tricolor --help`. All logic is in the library.

/// Plain Rust allocations are counted too: heap profiles show their sites,
/// and a memory limit (`TRICOLOR_MEMLIMIT`) covers them, so that it bounds
/// the workloads' whole heap (churn's entries own `String`s).
#[global_allocator]
static ALLOC: tricolor::alloc::Tracking = tricolor::alloc::Tracking::new();

fn main() -> std::process::ExitCode {
    tricolor_cli::cli::main()
}
