//! GC workloads that run entirely on the tricolor heap.
//!
//! Every workload writes only deterministic text to its output stream (no
//! timings, no addresses, no sizes that depend on the implementation), so its
//! output can be compared byte for byte with another implementation of the
//! same program (Go, Java, another Rust collector). Timings and memory
//! statistics are the caller's business (see [`crate::report`]).

pub mod binary_trees;
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
