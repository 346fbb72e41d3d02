//! GC workloads that run entirely on the tricolor heap.
//!
//! The benchmark programs (binary-trees, GCBench) write only deterministic
//! text to their output stream (no timings, no addresses, no sizes that
//! depend on the implementation), so their output can be compared byte for
//! byte with another implementation of the same program (Go, Java, another
//! Rust collector). Timings and memory statistics are the caller's business
//! (see [`crate::report`]).
//!
//! The exception is [`churn`], a measurement workload: its output is what
//! its mutator threads measured (throughput, the pin/repin latencies they
//! observed), which it also hands to the report.

pub mod binary_trees;
pub mod churn;
pub mod gcbench;

/// A workload the `tricolor run` command knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// The name used on the command line (`tricolor run <name>`).
    pub name: &'static str,
    /// One line describing the workload.
    pub about: &'static str,
}

/// Every workload, in the order `tricolor run --list` prints them.
pub const WORKLOADS: &[WorkloadInfo] = &[
    WorkloadInfo {
        name: "binary-trees",
        about: "The Computer Language Benchmarks Game binary-trees (single-threaded), every node on the tricolor heap",
    },
    WorkloadInfo {
        name: "gcbench",
        about: "Hans Boehm's GCBench: top-down and bottom-up trees next to a long-lived tree and array",
    },
    WorkloadInfo {
        name: "churn",
        about: "Threads replace random entries (small cyclic graphs) of a large live table; reports ops/s and mutator-observed pin/repin latency",
    },
];

/// The text printed by `tricolor run --list` and `tricolor list`: one line per
/// workload, `name  description`.
pub fn list_text() -> String {
    let width = WORKLOADS.iter().map(|w| w.name.len()).max().unwrap_or(0);
    let mut s = String::new();
    for w in WORKLOADS {
        s.push_str(&format!("{:<width$}  {}\n", w.name, w.about));
    }
    s
}
