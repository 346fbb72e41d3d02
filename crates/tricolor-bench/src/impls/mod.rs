//! The implementations, one module each, all with the same two entry points:
//! `binary_trees(depth, out)` and `gcbench(out)`. The programs are written
//! once in [`crate::workload`]; a module holds only its node types and the
//! hooks that differ: allocation, child edges, where trees live and when
//! they are collected.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::workload::binary_trees::effective_depth;
use crate::workload::Workload;

/// The workload hooks and entry points of the implementations whose
/// pointers are shared handles and whose GCBench nodes sit in a
/// `RefCell`-like cell (rust-gc's and dumpster's `Gc`, bacon_rajan_cc's
/// `Cc`): the same code for all three, but for the names of their types.
///
/// `$tree` is the binary-trees node and `$node` the GCBench node (structs
/// with `left` and `right` fields of type `Option<$ptr<$tree>>` and
/// `Option<$ptr<$cell<$node>>>`, plus `i: i32` and `j: i32` for `$node`);
/// their trees are [`Owned`](crate::workload::Owned) values, and
/// `$after_tree` is called after each short-lived tree is dropped. Expands
/// to the `binary_trees` and `gcbench` entry points of the module.
macro_rules! shared_pointer_workloads {
    (
        pointer: $ptr:ident,
        cell: $cell:ident,
        tree: $tree:ident,
        node: $node:ident,
        after_tree: $after_tree:expr $(,)?
    ) => {
        impl $crate::workload::Children for $tree {
            fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
                f(self.left.as_deref(), self.right.as_deref())
            }
        }

        impl $crate::workload::TreeRef for $ptr<$tree> {
            type Ctx = ();

            fn new_node((): (), left: Option<Self>, right: Option<Self>) -> Self {
                $ptr::new($tree { left, right })
            }
        }

        impl $crate::workload::Children for $cell<$node> {
            fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
                let node = self.borrow();
                f(node.left.as_deref(), node.right.as_deref())
            }
        }

        impl $crate::workload::TreeRef for $ptr<$cell<$node>> {
            type Ctx = ();

            fn new_node((): (), left: Option<Self>, right: Option<Self>) -> Self {
                $ptr::new($cell::new($node {
                    left,
                    right,
                    i: 0,
                    j: 0,
                }))
            }
        }

        /// Child edges are written through `borrow_mut`, and read back
        /// through `borrow` (no pointer is cloned).
        impl $crate::workload::gcbench::TopDown for $ptr<$cell<$node>> {
            type Handle<'n> = &'n Self;

            fn handle(&mut self) -> &Self {
                self
            }

            fn add_children((): (), node: &Self, f: impl FnOnce(&Self, &Self)) {
                use $crate::workload::TreeRef;
                node.borrow_mut().left = Some(Self::new_node((), None, None));
                node.borrow_mut().right = Some(Self::new_node((), None, None));
                let node = node.borrow();
                if let (Some(left), Some(right)) = (&node.left, &node.right) {
                    f(left, right);
                }
            }
        }

        /// Runs binary-trees with maximum depth `depth`.
        pub fn binary_trees(depth: u32, out: &mut dyn std::io::Write) -> std::io::Result<()> {
            let mut trees = $crate::workload::Owned::<$ptr<$tree>, _>::new((), $after_tree);
            $crate::workload::binary_trees::run(&mut trees, depth, out)
        }

        /// Runs GCBench.
        pub fn gcbench(out: &mut dyn std::io::Write) -> std::io::Result<()> {
            let mut heap = $crate::workload::Owned::<$ptr<$cell<$node>>, _>::new((), $after_tree);
            $crate::workload::gcbench::run(&mut heap, out)
        }
    };
}

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

    /// Runs `workload` with every implementation and checks its output.
    fn assert_every_impl_matches_expected_output(workload: Workload, depth: u32) {
        for imp in Impl::ALL {
            let mut out = Vec::new();
            imp.run(workload, depth, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected_output(workload, depth),
                "{imp}"
            );
        }
    }

    /// Every implementation prints the expected output at a small depth.
    #[test]
    fn every_impl_matches_expected_output_on_binary_trees() {
        assert_every_impl_matches_expected_output(Workload::BinaryTrees, 8);
    }

    /// GCBench has fixed, large sizes: run with
    /// `cargo test --release -p tricolor-bench -- --ignored`.
    #[test]
    #[ignore = "slow in debug builds"]
    fn every_impl_matches_expected_output_on_gcbench() {
        assert_every_impl_matches_expected_output(Workload::GcBench, 0);
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
