//! The implementations, one module each, all with the same two entry points:
//! `binary_trees(depth, out)` and `gcbench(out)`.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::workload::binary_trees::effective_depth;
use crate::workload::Workload;

pub mod arena_gc;
pub mod bacon_rajan;
pub mod boxed;
pub mod bump;
pub mod dumpster_unsync;
// `gc_derive` 0.5.0 (the latest) expands `#[derive(Trace, Finalize)]` into
// impls inside an anonymous `const`, which rustc's `non_local_definitions`
// lint flags; the expansion is otherwise fine.
#[allow(non_local_definitions)]
pub mod rust_gc;
pub mod tricolor_rt;

/// One memory-management strategy under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// `Option<Box<Node>>`, freed by `Drop`: the baseline.
    Box,
    /// `bumpalo` arena per tree, reset after each tree.
    Bumpalo,
    /// The `gc` crate (rust-gc).
    Gc,
    /// The `gc-arena` crate.
    GcArena,
    /// The `dumpster` crate, `unsync` flavour.
    Dumpster,
    /// The `bacon_rajan_cc` crate.
    BaconRajanCc,
    /// This project's collector, via `tricolor-cli`'s workloads.
    Tricolor,
}

impl Impl {
    /// Every implementation, in report order (the baseline first).
    pub const ALL: [Impl; 7] = [
        Impl::Box,
        Impl::Bumpalo,
        Impl::Gc,
        Impl::GcArena,
        Impl::Dumpster,
        Impl::BaconRajanCc,
        Impl::Tricolor,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Box => "box",
            Impl::Bumpalo => "bumpalo",
            Impl::Gc => "gc",
            Impl::GcArena => "gc-arena",
            Impl::Dumpster => "dumpster",
            Impl::BaconRajanCc => "bacon_rajan_cc",
            Impl::Tricolor => "tricolor",
        }
    }

    /// Runs `workload` with this implementation, writing its output to `out`.
    /// binary-trees runs at [`effective_depth`]`(depth)`.
    pub fn run(self, workload: Workload, depth: u32, out: &mut dyn Write) -> io::Result<()> {
        // `tricolor_cli`'s workload applies the same rule itself.
        let depth = effective_depth(depth);
        match workload {
            Workload::BinaryTrees => match self {
                Impl::Box => boxed::binary_trees(depth, out),
                Impl::Bumpalo => bump::binary_trees(depth, out),
                Impl::Gc => rust_gc::binary_trees(depth, out),
                Impl::GcArena => arena_gc::binary_trees(depth, out),
                Impl::Dumpster => dumpster_unsync::binary_trees(depth, out),
                Impl::BaconRajanCc => bacon_rajan::binary_trees(depth, out),
                Impl::Tricolor => tricolor_rt::binary_trees(depth, out),
            },
            Workload::GcBench => match self {
                Impl::Box => boxed::gcbench(out),
                Impl::Bumpalo => bump::gcbench(out),
                Impl::Gc => rust_gc::gcbench(out),
                Impl::GcArena => arena_gc::gcbench(out),
                Impl::Dumpster => dumpster_unsync::gcbench(out),
                Impl::BaconRajanCc => bacon_rajan::gcbench(out),
                Impl::Tricolor => tricolor_rt::gcbench(out),
            },
        }
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Impl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // Accept the crate spellings too (`gc_arena`, `bacon-rajan-cc`).
        let normalized = s.replace('_', "-");
        Impl::ALL
            .into_iter()
            .find(|i| i.name().replace('_', "-") == normalized)
            .ok_or_else(|| {
                let names: Vec<_> = Impl::ALL.iter().map(|i| i.name()).collect();
                format!(
                    "unknown implementation `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::expected_output;

    /// Every implementation prints the expected output at a small depth.
    #[test]
    fn every_impl_matches_expected_output_on_binary_trees() {
        for imp in Impl::ALL {
            let mut out = Vec::new();
            imp.run(Workload::BinaryTrees, 8, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected_output(Workload::BinaryTrees, 8),
                "{imp}"
            );
        }
    }

    /// GCBench has fixed, large sizes: run with
    /// `cargo test --release -p tricolor-bench -- --ignored`.
    #[test]
    #[ignore = "slow in debug builds"]
    fn every_impl_matches_expected_output_on_gcbench() {
        for imp in Impl::ALL {
            let mut out = Vec::new();
            imp.run(Workload::GcBench, 0, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected_output(Workload::GcBench, 0),
                "{imp}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for imp in Impl::ALL {
            assert_eq!(imp.name().parse::<Impl>(), Ok(imp));
        }
        assert_eq!("gc_arena".parse::<Impl>(), Ok(Impl::GcArena));
        assert_eq!("bacon-rajan-cc".parse::<Impl>(), Ok(Impl::BaconRajanCc));
    }
}
