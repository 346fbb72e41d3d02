//! Hans Boehm's GCBench (after John Ellis and Pete Kovac), on the tricolor
//! heap.
//!
//! The program, as in the Java original:
//!
//! 1. stretch the heap with a bottom-up tree of `stretch_tree_depth`;
//! 2. build a long-lived tree of `long_lived_tree_depth` top-down
//!    (`Populate`: every edge is a store into an older, existing node, which
//!    exercises the write barrier) and a long-lived array of `array_size`
//!    doubles, half of it filled with `1.0 / i`;
//! 3. for each depth `d` in `(min_tree_depth..=max_tree_depth).step_by(2)`,
//!    build `NumIters(d) = 2 * TreeSize(stretch) / TreeSize(d)` trees
//!    top-down, then as many bottom-up, each becoming garbage at once;
//! 4. check that the long-lived tree and array survived.
//!
//! Only deterministic lines are printed: the original's lines without the
//! timings, the memory diagnostics and the "live storage" estimate (which
//! depends on the node size of the implementation). With the classic
//! parameters the output is:
//!
//! ```text
//! Garbage Collector Test
//!  Stretching memory with a binary tree of depth 18
//!  Creating a long-lived binary tree of depth 16
//!  Creating a long-lived array of 500000 doubles
//! Creating 33824 trees of depth 4
//! Creating 8256 trees of depth 6
//! Creating 2052 trees of depth 8
//! Creating 512 trees of depth 10
//! Creating 128 trees of depth 12
//! Creating 32 trees of depth 14
//! Creating 8 trees of depth 16
//! Completed
//! ```
//!
//! (`Failed` replaces `Completed` if the long-lived data did not survive.)
//! The nodes and the array are all managed objects: the array is a
//! `Box<[f64]>` allocated through [`Root::new`].

use std::io::{self, Write};

use tricolor::{Gc, Guard, Member, Root, Trace};

/// A GCBench node: two edges and two unused integers (`i`, `j`), as in the
/// original.
#[derive(Trace)]
pub struct Node {
    left: Member<Node>,
    right: Member<Node>,
    i: i32,
    j: i32,
}

impl Node {
    /// A node with both edges null.
    fn leaf() -> Node {
        Node {
            left: Member::null(),
            right: Member::null(),
            i: 0,
            j: 0,
        }
    }
}

/// The sizes GCBench runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcBenchParams {
    /// Depth of the tree that stretches the heap (`kStretchTreeDepth`); also
    /// scales the number of iterations per depth.
    pub stretch_tree_depth: u32,
    /// Depth of the long-lived tree (`kLongLivedTreeDepth`).
    pub long_lived_tree_depth: u32,
    /// Number of doubles in the long-lived array (`kArraySize`); at least 2.
    pub array_size: usize,
    /// Depth of the smallest short-lived trees (`kMinTreeDepth`).
    pub min_tree_depth: u32,
    /// Depth of the largest short-lived trees (`kMaxTreeDepth`).
    pub max_tree_depth: u32,
}

impl Default for GcBenchParams {
    /// The classic parameters: 18, 16, 500000, 4, 16.
    fn default() -> Self {
        GcBenchParams {
            stretch_tree_depth: 18,
            long_lived_tree_depth: 16,
            array_size: 500_000,
            min_tree_depth: 4,
            max_tree_depth: 16,
        }
    }
}

impl GcBenchParams {
    /// A small parameter set for tests (runs in milliseconds): 10, 8, 4000,
    /// 4, 8.
    pub fn small() -> Self {
        GcBenchParams {
            stretch_tree_depth: 10,
            long_lived_tree_depth: 8,
            array_size: 4000,
            min_tree_depth: 4,
            max_tree_depth: 8,
        }
    }

    /// The depths of the short-lived trees, in the order they are built.
    pub fn depths(&self) -> impl Iterator<Item = u32> {
        (self.min_tree_depth..=self.max_tree_depth).step_by(2)
    }

    /// `NumIters(depth)`: how many trees of `depth` are built top-down (and
    /// as many bottom-up).
    pub fn num_iters(&self, depth: u32) -> u64 {
        2 * tree_size(self.stretch_tree_depth) / tree_size(depth)
    }

    /// Checks that the parameters make sense, with a message saying why not.
    pub fn validate(&self) -> Result<(), String> {
        const MAX: u32 = 30;
        for (name, d) in [
            ("stretch_tree_depth", self.stretch_tree_depth),
            ("long_lived_tree_depth", self.long_lived_tree_depth),
            ("max_tree_depth", self.max_tree_depth),
        ] {
            if d > MAX {
                return Err(format!(
                    "GCBench {name} {d} is too large (the maximum is {MAX})"
                ));
            }
        }
        if self.min_tree_depth > self.max_tree_depth {
            return Err(format!(
                "GCBench min_tree_depth {} is above max_tree_depth {}",
                self.min_tree_depth, self.max_tree_depth
            ));
        }
        if self.array_size < 2 {
            return Err(format!(
                "GCBench array_size {} is too small (the minimum is 2)",
                self.array_size
            ));
        }
        Ok(())
    }

    /// The whole output [`run_with`] prints for these parameters.
    pub fn expected_output(&self) -> String {
        let mut s = String::new();
        s.push_str("Garbage Collector Test\n");
        s.push_str(&format!(
            " Stretching memory with a binary tree of depth {}\n",
            self.stretch_tree_depth
        ));
        s.push_str(&format!(
            " Creating a long-lived binary tree of depth {}\n",
            self.long_lived_tree_depth
        ));
        s.push_str(&format!(
            " Creating a long-lived array of {} doubles\n",
            self.array_size
        ));
        for d in self.depths() {
            s.push_str(&format!(
                "Creating {} trees of depth {d}\n",
                self.num_iters(d)
            ));
        }
        s.push_str("Completed\n");
        s
    }
}

/// `TreeSize(depth)`: the number of nodes of a perfect tree of `depth`.
pub fn tree_size(depth: u32) -> u64 {
    (1u64 << (depth + 1)) - 1
}

/// Builds a tree top-down below `node`: allocates both children, stores
/// them into `node` (an existing, possibly older object), then recurses.
pub fn populate<'g>(g: &'g Guard, depth: u32, node: Gc<'g, Node>) {
    if depth == 0 {
        return;
    }
    let left = g.alloc(Node::leaf());
    let right = g.alloc(Node::leaf());
    node.left.store(g, Some(left));
    node.right.store(g, Some(right));
    populate(g, depth - 1, left);
    populate(g, depth - 1, right);
}

/// Builds a tree bottom-up: children first, then the parent holding them.
pub fn make_tree<'g>(g: &'g Guard, depth: u32) -> Gc<'g, Node> {
    if depth == 0 {
        return g.alloc(Node::leaf());
    }
    let left = make_tree(g, depth - 1);
    let right = make_tree(g, depth - 1);
    g.alloc(Node {
        left: Member::new(Some(left)),
        right: Member::new(Some(right)),
        i: 0,
        j: 0,
    })
}

/// Counts the nodes of a tree (used to check the long-lived tree); `None` if
/// some node's payload (`i`, `j`, never written) is not zero any more.
fn count_nodes(g: &Guard, node: &Node) -> Option<u64> {
    if node.i != 0 || node.j != 0 {
        return None;
    }
    let mut n = 1;
    if let Some(l) = node.left.load(g) {
        n += count_nodes(g, &l)?;
    }
    if let Some(r) = node.right.load(g) {
        n += count_nodes(g, &r)?;
    }
    Some(n)
}

/// `TimeConstruction(depth)` without the timing: `NumIters(depth)` trees
/// top-down, then as many bottom-up, one guard per tree.
fn construct(params: &GcBenchParams, depth: u32, out: &mut dyn Write) -> io::Result<()> {
    let iters = params.num_iters(depth);
    writeln!(out, "Creating {iters} trees of depth {depth}")?;
    let mut g = tricolor::pin();
    for _ in 0..iters {
        let temp = g.alloc(Node::leaf());
        populate(&g, depth, temp);
        g.repin();
    }
    for _ in 0..iters {
        let temp = make_tree(&g, depth);
        std::hint::black_box(temp);
        g.repin();
    }
    Ok(())
}

/// Runs the classic GCBench ([`GcBenchParams::default`]).
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    run_with(&GcBenchParams::default(), out)
}

/// Runs GCBench with `params`, writing the lines shown in the module docs.
///
/// Fails with [`io::ErrorKind::InvalidInput`] if the parameters do not
/// validate, and with the writer's error if writing fails.
pub fn run_with(params: &GcBenchParams, out: &mut dyn Write) -> io::Result<()> {
    params
        .validate()
        .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;

    writeln!(out, "Garbage Collector Test")?;
    writeln!(
        out,
        " Stretching memory with a binary tree of depth {}",
        params.stretch_tree_depth
    )?;
    {
        let g = tricolor::pin();
        std::hint::black_box(make_tree(&g, params.stretch_tree_depth));
    }

    writeln!(
        out,
        " Creating a long-lived binary tree of depth {}",
        params.long_lived_tree_depth
    )?;
    let long_lived: Root<Node> = Root::new(Node::leaf());
    {
        let g = tricolor::pin();
        populate(&g, params.long_lived_tree_depth, long_lived.get(&g));
    }

    writeln!(
        out,
        " Creating a long-lived array of {} doubles",
        params.array_size
    )?;
    // Filled before it is allocated: a managed object is immutable through
    // shared references, and the array holds plain data only.
    let mut data = vec![0.0f64; params.array_size];
    for (i, x) in data.iter_mut().take(params.array_size / 2).enumerate() {
        *x = 1.0 / i as f64;
    }
    let array: Root<Box<[f64]>> = Root::new(data.into_boxed_slice());

    for d in params.depths() {
        construct(params, d, out)?;
    }

    let probe = 1000.min(params.array_size / 2 - 1);
    let tree_ok = {
        let g = tricolor::pin();
        count_nodes(&g, &long_lived.get(&g)) == Some(tree_size(params.long_lived_tree_depth))
    };
    let array_ok = array[probe] == 1.0 / probe as f64;
    if tree_ok && array_ok {
        writeln!(out, "Completed")?;
    } else {
        writeln!(out, "Failed")?;
    }
    Ok(())
}
