//! The Computer Language Benchmarks Game `binary-trees`, single-threaded, with
//! every tree node allocated on the tricolor heap.
//!
//! The program and its output follow the Benchmarks Game's Rust program
//! (`check` is the number of nodes in a tree):
//!
//! ```text
//! stretch tree of depth {N+1}\t check: {nodes}
//! {iterations}\t trees of depth {d}\t check: {nodes}
//! long lived tree of depth {N}\t check: {nodes}
//! ```
//!
//! with `N = max(MIN_DEPTH + 2, depth)`, `d` running over
//! `(MIN_DEPTH..=N).step_by(2)` and `iterations = 1 << (N - d + MIN_DEPTH)`.
//!
//! Trees are built bottom-up (children first, then `Guard::alloc` of the
//! parent with both edges set). One guard is held per tree: a short-lived tree
//! is only reachable from the stack while its guard pins the thread; between
//! two trees the guard is re-pinned, which is the quiescent point that lets a
//! collection cycle make progress and free the previous tree. The long-lived
//! tree is held by a [`Root`] across all of that.

use std::io::{self, Write};

use tricolor::{Gc, Guard, Member, Root, Trace};

/// The smallest tree depth of the iterated trees (the program's `min_depth`).
pub const MIN_DEPTH: u32 = 4;

/// The largest depth [`run`] accepts. A tree of depth 30 already has 2^31 - 1
/// nodes (about 48 GiB of nodes for the stretch tree alone); beyond it the
/// node counts no longer fit the arithmetic of the original program.
pub const MAX_DEPTH: u32 = 30;

/// A tree node: two nullable edges, nothing else (a leaf has both null).
#[derive(Trace)]
pub struct Node {
    left: Member<Node>,
    right: Member<Node>,
}

/// Builds a perfect binary tree of `depth` bottom-up; depth 0 is one leaf.
pub fn bottom_up_tree<'g>(g: &'g Guard, depth: u32) -> Gc<'g, Node> {
    if depth == 0 {
        return g.alloc(Node {
            left: Member::null(),
            right: Member::null(),
        });
    }
    let left = bottom_up_tree(g, depth - 1);
    let right = bottom_up_tree(g, depth - 1);
    g.alloc(Node {
        left: Member::new(Some(left)),
        right: Member::new(Some(right)),
    })
}

/// Walks a tree and counts its nodes (the program's `check`).
pub fn item_check(g: &Guard, node: &Node) -> u64 {
    let mut n = 1;
    if let Some(l) = node.left.load(g) {
        n += item_check(g, &l);
    }
    if let Some(r) = node.right.load(g) {
        n += item_check(g, &r);
    }
    n
}

/// The depth the program really uses for the argument `depth`:
/// `max(MIN_DEPTH + 2, depth)`.
pub fn effective_depth(depth: u32) -> u32 {
    depth.max(MIN_DEPTH + 2)
}

/// The number of nodes [`run`] allocates for `depth` (every tree, including
/// the stretch and the long-lived tree).
pub fn nodes_allocated(depth: u32) -> u64 {
    let n = effective_depth(depth);
    let size = |d: u32| (1u64 << (d + 1)) - 1;
    let mut total = size(n + 1) + size(n);
    for d in (MIN_DEPTH..=n).step_by(2) {
        total += (1u64 << (n - d + MIN_DEPTH)) * size(d);
    }
    total
}

/// Runs binary-trees for `depth` and writes the program's output to `out`.
///
/// Fails with [`io::ErrorKind::InvalidInput`] if `depth` is above
/// [`MAX_DEPTH`], and with the writer's error if writing fails.
pub fn run(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("binary-trees depth {depth} is too large (the maximum is {MAX_DEPTH})"),
        ));
    }
    let max_depth = effective_depth(depth);

    // Stretch the heap: one big tree, checked, then dropped with its guard.
    {
        let stretch_depth = max_depth + 1;
        let check = {
            let g = tricolor::pin();
            let tree = bottom_up_tree(&g, stretch_depth);
            item_check(&g, &tree)
        };
        writeln!(
            out,
            "stretch tree of depth {stretch_depth}\t check: {check}"
        )?;
    }

    // The long-lived tree outlives every guard: a Root holds it.
    let long_lived: Root<Node> = {
        let g = tricolor::pin();
        let tree = bottom_up_tree(&g, max_depth);
        tree.root()
    };

    for d in (MIN_DEPTH..=max_depth).step_by(2) {
        let iterations = 1u64 << (max_depth - d + MIN_DEPTH);
        let mut check = 0;
        {
            let mut g = tricolor::pin();
            for _ in 0..iterations {
                let tree = bottom_up_tree(&g, d);
                check += item_check(&g, &tree);
                // A quiescent point: the tree just checked is garbage now.
                g.repin();
            }
        }
        writeln!(out, "{iterations}\t trees of depth {d}\t check: {check}")?;
    }

    let check = {
        let g = tricolor::pin();
        item_check(&g, &long_lived.get(&g))
    };
    writeln!(out, "long lived tree of depth {max_depth}\t check: {check}")?;
    Ok(())
}
