//! `tricolor`: this project's collector, through the workloads of the
//! `tricolor-cli` crate (`tricolor_cli::workloads::{binary_trees, gcbench}`),
//! so that the benchmark measures exactly the code that `tricolor run` runs.
//! Those workloads print the same lines as the modules here (checked by the
//! harness); unlike the others, the GCBench array lives on the tricolor heap.

use std::io::{self, Write};

use tricolor_cli::workloads::{binary_trees, gcbench};

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    binary_trees::run(depth, out)
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcbench::run(out)
}
