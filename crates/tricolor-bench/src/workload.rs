//! The two workloads' parameters and output format, shared by every implementation.
//!
//! Every implementation writes its lines through the helpers here, so that a
//! difference in output can only come from a difference in the *values*
//! (node counts), never from formatting. [`expected_output`] computes the
//! correct output from closed formulas; the harness checks the `Box`
//! implementation against it.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// Which benchmark program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The Computer Language Benchmarks Game `binary-trees` program.
    BinaryTrees,
    /// Hans Boehm's GCBench (Ellis, Kovac, Boehm).
    GcBench,
}

impl Workload {
    /// Every workload, in the order `--workload all` runs them.
    pub const ALL: [Workload; 2] = [Workload::BinaryTrees, Workload::GcBench];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::BinaryTrees => "binary-trees",
            Workload::GcBench => "gcbench",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload `{s}` (expected binary-trees or gcbench)"))
    }
}

/// The correct output of `workload` (`depth` is only used by binary-trees).
pub fn expected_output(workload: Workload, depth: u32) -> String {
    let mut out = Vec::new();
    let result = match workload {
        Workload::BinaryTrees => {
            binary_trees::write_expected(binary_trees::effective_depth(depth), &mut out)
        }
        Workload::GcBench => gcbench::write_expected(&mut out),
    };
    result.expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("output is ASCII")
}

/// Parameters and output lines of binary-trees.
pub mod binary_trees {
    use super::{io, Write};

    /// The benchmark's default maximum depth.
    pub const DEFAULT_DEPTH: u32 = 21;
    /// The smallest depth of the short-lived trees.
    pub const MIN_DEPTH: u32 = 4;
    /// The largest accepted `--depth`: beyond it the stretch tree alone does
    /// not fit in memory anyway.
    pub const MAX_DEPTH: u32 = 28;

    /// The depth the program really uses for the argument `depth`:
    /// `max(MIN_DEPTH + 2, depth)`, as in the Benchmarks Game programs (and
    /// in `tricolor_cli::workloads::binary_trees`).
    pub fn effective_depth(depth: u32) -> u32 {
        depth.max(MIN_DEPTH + 2)
    }

    /// Number of nodes of a perfect tree of `depth` (a leaf has depth 0).
    pub fn tree_nodes(depth: u32) -> u64 {
        (1u64 << (depth + 1)) - 1
    }

    /// The `(iterations, depth)` pairs of the short-lived tree phase for a
    /// maximum depth of `max_depth`: depths 4, 6, … up to `max_depth`, with
    /// `1 << (max_depth - depth + 4)` trees each.
    pub fn phases(max_depth: u32) -> impl Iterator<Item = (u64, u32)> {
        (MIN_DEPTH..=max_depth)
            .step_by(2)
            .map(move |d| (1u64 << (max_depth - d + MIN_DEPTH), d))
    }

    /// `stretch tree of depth {depth}\t check: {check}`
    pub fn stretch_line(out: &mut dyn Write, depth: u32, check: u64) -> io::Result<()> {
        writeln!(out, "stretch tree of depth {depth}\t check: {check}")
    }

    /// `{iterations}\t trees of depth {depth}\t check: {check}`
    pub fn trees_line(
        out: &mut dyn Write,
        iterations: u64,
        depth: u32,
        check: u64,
    ) -> io::Result<()> {
        writeln!(
            out,
            "{iterations}\t trees of depth {depth}\t check: {check}"
        )
    }

    /// `long lived tree of depth {depth}\t check: {check}`
    pub fn long_lived_line(out: &mut dyn Write, depth: u32, check: u64) -> io::Result<()> {
        writeln!(out, "long lived tree of depth {depth}\t check: {check}")
    }

    /// Writes the correct output for `max_depth`, computed from formulas.
    pub fn write_expected(max_depth: u32, out: &mut dyn Write) -> io::Result<()> {
        stretch_line(out, max_depth + 1, tree_nodes(max_depth + 1))?;
        for (iterations, d) in phases(max_depth) {
            trees_line(out, iterations, d, iterations * tree_nodes(d))?;
        }
        long_lived_line(out, max_depth, tree_nodes(max_depth))
    }
}

/// Parameters and output lines of GCBench.
///
/// The constants are those of the classic `GCBench.java` / `GCBench.c`. The
/// original prints timings; since outputs are compared across
/// implementations, the timing and diagnostics lines are left out, and the
/// last line is `Completed` if the long-lived tree (which must survive every
/// collection) still has all its nodes and `array[1000]` is still `1/1000`,
/// `Failed` otherwise (the original only printed `Failed`). This is the same
/// output as `tricolor_cli::workloads::gcbench`.
pub mod gcbench {
    use super::{io, Write};

    /// Depth of the tree that stretches the heap at the start.
    pub const STRETCH_TREE_DEPTH: i32 = 18;
    /// Depth of the tree that stays alive for the whole run.
    pub const LONG_LIVED_TREE_DEPTH: i32 = 16;
    /// Length of the long-lived `f64` array (the first half is filled).
    pub const ARRAY_SIZE: usize = 500_000;
    /// Smallest depth of the short-lived trees.
    pub const MIN_TREE_DEPTH: i32 = 4;
    /// Largest depth of the short-lived trees.
    pub const MAX_TREE_DEPTH: i32 = 16;

    /// `TreeSize(i)`: nodes of a perfect tree of depth `i`.
    pub fn tree_size(i: i32) -> u64 {
        (1u64 << (i + 1)) - 1
    }

    /// `NumIters(i) = 2 * TreeSize(kStretchTreeDepth) / TreeSize(i)`.
    pub fn num_iters(i: i32) -> u64 {
        2 * tree_size(STRETCH_TREE_DEPTH) / tree_size(i)
    }

    /// The depths of the short-lived trees: 4, 6, …, 16.
    pub fn depths() -> impl Iterator<Item = i32> {
        (MIN_TREE_DEPTH..=MAX_TREE_DEPTH).step_by(2)
    }

    /// Allocates the long-lived array and fills its first half with `1/i`,
    /// as GCBench does (`array[0]` is `inf`).
    pub fn long_lived_array() -> Vec<f64> {
        let mut array = vec![0.0f64; ARRAY_SIZE];
        for (i, x) in array.iter_mut().enumerate().take(ARRAY_SIZE / 2) {
            *x = 1.0 / i as f64;
        }
        std::hint::black_box(&mut array);
        array
    }

    /// The header lines, printed before anything is allocated.
    pub fn header(out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Garbage Collector Test")?;
        writeln!(
            out,
            " Stretching memory with a binary tree of depth {STRETCH_TREE_DEPTH}"
        )
    }

    /// Printed after the stretch tree is dropped, before the long-lived tree
    /// is built.
    pub fn long_lived_tree_line(out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            " Creating a long-lived binary tree of depth {LONG_LIVED_TREE_DEPTH}"
        )
    }

    /// Printed before the long-lived array is allocated.
    pub fn array_line(out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, " Creating a long-lived array of {ARRAY_SIZE} doubles")
    }

    /// `Creating {NumIters(depth)} trees of depth {depth}`, printed before
    /// the top-down then bottom-up construction of that many trees.
    pub fn creating_line(out: &mut dyn Write, depth: i32) -> io::Result<()> {
        writeln!(out, "Creating {} trees of depth {depth}", num_iters(depth))
    }

    /// The closing line: `Completed` if the long-lived tree still has
    /// `TreeSize(kLongLivedTreeDepth)` nodes and `array[1000]` is still
    /// `1/1000`, `Failed` otherwise.
    pub fn final_line(out: &mut dyn Write, long_lived_nodes: u64, array: &[f64]) -> io::Result<()> {
        if long_lived_nodes == tree_size(LONG_LIVED_TREE_DEPTH) && array[1000] == 1.0 / 1000.0 {
            writeln!(out, "Completed")
        } else {
            writeln!(out, "Failed")
        }
    }

    /// Writes the correct output, computed from formulas.
    pub fn write_expected(out: &mut dyn Write) -> io::Result<()> {
        header(out)?;
        long_lived_tree_line(out)?;
        array_line(out)?;
        for d in depths() {
            creating_line(out, d)?;
        }
        writeln!(out, "Completed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_trees_expected_depth_10() {
        // The Benchmarks Game's reference output for N = 10.
        let expected = "stretch tree of depth 11\t check: 4095\n\
                        1024\t trees of depth 4\t check: 31744\n\
                        256\t trees of depth 6\t check: 32512\n\
                        64\t trees of depth 8\t check: 32704\n\
                        16\t trees of depth 10\t check: 32752\n\
                        long lived tree of depth 10\t check: 2047\n";
        assert_eq!(expected_output(Workload::BinaryTrees, 10), expected);
        // Depths below 6 run at 6.
        assert_eq!(
            expected_output(Workload::BinaryTrees, 4),
            expected_output(Workload::BinaryTrees, 6)
        );
    }

    #[test]
    fn gcbench_iterations_match_the_original() {
        let iters: Vec<u64> = gcbench::depths().map(gcbench::num_iters).collect();
        assert_eq!(iters, [33824, 8256, 2052, 512, 128, 32, 8]);
        let out = expected_output(Workload::GcBench, 0);
        assert!(
            out.ends_with("Creating 8 trees of depth 16\nCompleted\n"),
            "{out}"
        );
    }
}
