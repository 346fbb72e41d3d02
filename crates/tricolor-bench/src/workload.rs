//! The two workloads, shared by every implementation: their parameters,
//! output format, driver loops and tree algorithms.
//!
//! Every implementation writes its lines through the helpers here, so that a
//! difference in output can only come from a difference in the *values*
//! (node counts), never from formatting. [`expected_output`] computes the
//! correct output from closed formulas; the harness checks the `Box`
//! implementation against it.
//!
//! The programs themselves are written once, generically: the driver loops
//! are [`binary_trees::run`] and [`gcbench::run`], the tree construction and
//! counting are [`bottom_up_tree`], [`gcbench::populate`] and [`count`]. An
//! implementation supplies its node types and what really differs from one
//! memory manager to the next, through traits: allocation and the child
//! edges ([`TreeRef`], [`Children`], [`gcbench::TopDown`]), and where trees
//! live and when they are collected ([`binary_trees::Trees`],
//! [`gcbench::Heap`], or [`Owned`] for trees that are ordinary values).
//! Everything is generic, so each implementation's hot loops are
//! monomorphised for its own types: no dynamic dispatch per node or per tree.

use std::fmt;
use std::hint::black_box;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::ops::Deref;
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

/// A tree node whose two children can be borrowed: what [`count`] needs.
pub trait Children {
    /// Calls `f` with the node's left and right children (`None` where there
    /// is none), borrowed for the call (through the node's cell, if it is
    /// behind one).
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R;
}

/// The number of nodes of the tree below (and including) `node`:
/// binary-trees' check, and the count of GCBench's last line.
pub fn count<N: Children + ?Sized>(node: &N) -> u64 {
    node.with_children(|left, right| 1 + left.map_or(0, count) + right.map_or(0, count))
}

/// A pointer to a tree node as one implementation allocates it (a `Box`, a
/// `Gc`, a `Cc`, a reference into an arena), with the node's constructor.
pub trait TreeRef: Deref<Target: Children> + Sized {
    /// What allocation needs: `()`, the arena, or gc-arena's `&Mutation`.
    type Ctx: Copy;

    /// Allocates a node with these children (a GCBench node also gets zero
    /// `i` and `j`).
    fn new_node(ctx: Self::Ctx, left: Option<Self>, right: Option<Self>) -> Self;
}

/// Builds a perfect tree of `depth` (a leaf has depth 0) bottom up, both
/// children before their parent: binary-trees' `bottom_up_tree` and GCBench's
/// `MakeTree`.
pub fn bottom_up_tree<R: TreeRef>(ctx: R::Ctx, depth: u32) -> R {
    if depth == 0 {
        R::new_node(ctx, None, None)
    } else {
        let left = bottom_up_tree(ctx, depth - 1);
        let right = bottom_up_tree(ctx, depth - 1);
        R::new_node(ctx, Some(left), Some(right))
    }
}

/// Trees that are ordinary values (`Box`, `Gc`, `Cc`), for both workloads:
/// a tree is allocated with [`TreeRef::new_node`] in the context `ctx`, freed
/// when its last pointer is dropped (at once, or by a later collection), and
/// `after_tree` is called each time a short-lived tree has been dropped (a
/// program using a cycle collector would collect there).
pub struct Owned<R: TreeRef, F> {
    ctx: R::Ctx,
    after_tree: F,
    tree: PhantomData<R>,
}

impl<R: TreeRef, F: FnMut()> Owned<R, F> {
    /// Trees of type `R`, allocated in `ctx`, with `after_tree` called after
    /// each short-lived tree is dropped.
    pub fn new(ctx: R::Ctx, after_tree: F) -> Self {
        Owned {
            ctx,
            after_tree,
            tree: PhantomData,
        }
    }

    /// Drops `tree` (after hiding it from the optimizer), then calls
    /// `after_tree`.
    fn discard(&mut self, tree: R) {
        black_box(&tree);
        drop(tree);
        (self.after_tree)();
    }
}

impl<R: TreeRef, F: FnMut()> binary_trees::Trees for Owned<R, F> {
    type LongLived = R;

    fn short_lived(&mut self, depth: u32) -> u64 {
        let tree: R = bottom_up_tree(self.ctx, depth);
        let check = count(&*tree);
        drop(tree);
        (self.after_tree)();
        check
    }

    fn long_lived(&mut self, depth: u32) -> R {
        bottom_up_tree(self.ctx, depth)
    }

    fn check_long_lived(&mut self, tree: &R) -> u64 {
        count(&**tree)
    }
}

impl<R: gcbench::TopDown, F: FnMut()> gcbench::Heap for Owned<R, F> {
    type LongLived = R;

    fn top_down(&mut self, depth: i32) {
        let temp = gcbench::top_down_tree(self.ctx, depth);
        self.discard(temp);
    }

    fn bottom_up(&mut self, depth: i32) {
        let temp = gcbench::make_tree(self.ctx, depth);
        self.discard(temp);
    }

    fn long_lived(&mut self, depth: i32) -> R {
        gcbench::top_down_tree(self.ctx, depth)
    }

    fn count_long_lived(&mut self, tree: &R) -> u64 {
        count(&**tree)
    }
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

    /// Where binary-trees' trees live and when they are freed, on one
    /// implementation; [`run`] does the rest. Trees are built with
    /// [`bottom_up_tree`](super::bottom_up_tree) and checked with
    /// [`count`](super::count).
    pub trait Trees {
        /// The long-lived tree (`()` if the implementation keeps it
        /// elsewhere, as gc-arena does in its root).
        type LongLived;

        /// Builds the stretch tree of `depth`, lets it die and returns its
        /// check. By default, like any short-lived tree.
        fn stretch(&mut self, depth: u32) -> u64 {
            self.short_lived(depth)
        }

        /// Builds a tree of `depth`, lets it die (collecting, where the
        /// implementation does so after each tree) and returns its check.
        fn short_lived(&mut self, depth: u32) -> u64;

        /// Builds the long-lived tree of `depth`.
        fn long_lived(&mut self, depth: u32) -> Self::LongLived;

        /// The check of the long-lived tree.
        fn check_long_lived(&mut self, tree: &Self::LongLived) -> u64;
    }

    /// Runs binary-trees with maximum depth `depth` (already
    /// [`effective_depth`]) on `trees`: a stretch tree of `depth + 1`, a
    /// long-lived tree of `depth`, then the [`phases`] of short-lived trees.
    pub fn run(trees: &mut impl Trees, depth: u32, out: &mut dyn Write) -> io::Result<()> {
        let check = trees.stretch(depth + 1);
        stretch_line(out, depth + 1, check)?;
        let long_lived = trees.long_lived(depth);
        for (iterations, d) in phases(depth) {
            let mut total = 0;
            for _ in 0..iterations {
                total += trees.short_lived(d);
            }
            trees_line(out, iterations, d, total)?;
        }
        let check = trees.check_long_lived(&long_lived);
        long_lived_line(out, depth, check)
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
    use super::{bottom_up_tree, io, TreeRef, Write};

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

    /// A GCBench node pointer whose trees can also be built top down, by
    /// [`populate`]: the allocation of a node's children and the writes of
    /// its child edges.
    pub trait TopDown: TreeRef {
        /// What [`populate`] works on: `&mut` the node where the parent owns
        /// its children (`Box`, bumpalo), `&` the pointer for shared
        /// pointers, the pointer itself where it is `Copy` (gc-arena).
        type Handle<'n>
        where
            Self: 'n;

        /// The handle of the node `self` points to.
        fn handle(&mut self) -> Self::Handle<'_>;

        /// Allocates a new empty node and stores it as the left child of
        /// `node`, then the same for the right child, then calls `f` with
        /// the two children.
        fn add_children(
            ctx: Self::Ctx,
            node: Self::Handle<'_>,
            f: impl FnOnce(Self::Handle<'_>, Self::Handle<'_>),
        );
    }

    /// GCBench's `Populate`: builds a tree of `depth` below `node` top down,
    /// assigning the children to the older node, so every node is allocated
    /// before its children.
    pub fn populate<R: TopDown>(ctx: R::Ctx, depth: i32, node: R::Handle<'_>) {
        if depth <= 0 {
            return;
        }
        // `move`: the closure holds `ctx` and `depth` by value, not by
        // reference to this frame, so the call for the right child is a tail
        // call that compiles to a loop, as in a directly recursive `Populate`.
        R::add_children(ctx, node, move |left, right| {
            populate::<R>(ctx, depth - 1, left);
            populate::<R>(ctx, depth - 1, right);
        });
    }

    /// A new node with a tree of `depth` [`populate`]d below it.
    pub fn top_down_tree<R: TopDown>(ctx: R::Ctx, depth: i32) -> R {
        let mut root = R::new_node(ctx, None, None);
        populate::<R>(ctx, depth, root.handle());
        root
    }

    /// GCBench's `MakeTree`: a tree of `depth` built bottom up (a single
    /// node if `depth <= 0`).
    pub fn make_tree<R: TreeRef>(ctx: R::Ctx, depth: i32) -> R {
        bottom_up_tree(ctx, u32::try_from(depth).unwrap_or(0))
    }

    /// Where GCBench's trees live and when they are freed, on one
    /// implementation; [`run`] does the rest.
    pub trait Heap {
        /// The long-lived tree (`()` if the implementation keeps it
        /// elsewhere, as gc-arena does in its root).
        type LongLived;

        /// Builds the stretch tree of `depth` ([`make_tree`]) and lets it
        /// die. By default, like any temporary tree built bottom up.
        fn stretch(&mut self, depth: i32) {
            self.bottom_up(depth);
        }

        /// Builds a temporary tree of `depth` with [`top_down_tree`] and lets
        /// it die (collecting, where the implementation does so after each
        /// tree).
        fn top_down(&mut self, depth: i32);

        /// Builds a temporary tree of `depth` with [`make_tree`] and lets it
        /// die (collecting, where the implementation does so after each
        /// tree).
        fn bottom_up(&mut self, depth: i32);

        /// Builds the long-lived tree of `depth` with [`top_down_tree`].
        fn long_lived(&mut self, depth: i32) -> Self::LongLived;

        /// The number of nodes of the long-lived tree.
        fn count_long_lived(&mut self, tree: &Self::LongLived) -> u64;
    }

    /// Runs GCBench on `heap`: the stretch tree, the long-lived tree and
    /// array, then for each of the [`depths`] `NumIters(depth)` trees built
    /// top down and as many built bottom up (`TimeConstruction`).
    pub fn run(heap: &mut impl Heap, out: &mut dyn Write) -> io::Result<()> {
        header(out)?;
        heap.stretch(STRETCH_TREE_DEPTH);
        long_lived_tree_line(out)?;
        let long_lived = heap.long_lived(LONG_LIVED_TREE_DEPTH);
        array_line(out)?;
        let array = long_lived_array();
        for depth in depths() {
            creating_line(out, depth)?;
            for _ in 0..num_iters(depth) {
                heap.top_down(depth);
            }
            for _ in 0..num_iters(depth) {
                heap.bottom_up(depth);
            }
        }
        let nodes = heap.count_long_lived(&long_lived);
        final_line(out, nodes, &array)
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
