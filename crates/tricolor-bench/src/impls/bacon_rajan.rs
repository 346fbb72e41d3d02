//! `bacon_rajan_cc`: the `bacon_rajan_cc` crate's `Cc<T>`: reference counting
//! plus Bacon and Rajan's synchronous cycle collector ("Concurrent Cycle
//! Collection in Reference Counted Systems", 2001, the synchronous variant),
//! run explicitly with `collect_cycles()`. An object whose count drops to
//! zero is freed immediately; objects whose count is decremented to a
//! non-zero value are buffered as possible cycle roots. The program calls
//! `collect_cycles()` after every tree, as a program using the crate would at
//! its safe points. binary-trees uses immutable `Cc<TreeNode>` nodes; GCBench
//! needs mutation, so it uses `Cc<RefCell<Node>>`.

use std::cell::RefCell;

use bacon_rajan_cc::{collect_cycles, Cc, Trace, Tracer};

/// binary-trees node: two child pointers, both `None` for a leaf.
struct TreeNode {
    left: Option<Cc<TreeNode>>,
    right: Option<Cc<TreeNode>>,
}

impl Trace for TreeNode {
    fn trace(&self, tracer: &mut Tracer) {
        self.left.trace(tracer);
        self.right.trace(tracer);
    }
}

/// GCBench node: left/right pointers and two unused `i32` fields.
struct Node {
    left: Option<Cc<RefCell<Node>>>,
    right: Option<Cc<RefCell<Node>>>,
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        self.left.trace(tracer);
        self.right.trace(tracer);
    }
}

shared_pointer_workloads! {
    pointer: Cc,
    cell: RefCell,
    tree: TreeNode,
    node: Node,
    after_tree: collect_cycles,
}
