//! `gc`: the `gc` crate (rust-gc, Manishearth): a thread-local, non-moving,
//! stop-the-world mark-and-sweep collector. `Gc<T>` handles on the Rust stack
//! are roots (tracked with a root count per object); a collection starts on
//! allocation once the heap exceeds a threshold that grows with the live
//! size. binary-trees uses immutable `Gc<TreeNode>` nodes; GCBench needs
//! mutation (top-down construction), so it uses `Gc<GcCell<Node>>`.

use gc::{Finalize, Gc, GcCell, Trace};

/// binary-trees node: two child pointers, both `None` for a leaf.
#[derive(Trace, Finalize)]
struct TreeNode {
    left: Option<Gc<TreeNode>>,
    right: Option<Gc<TreeNode>>,
}

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Trace, Finalize)]
struct Node {
    left: Option<Gc<GcCell<Node>>>,
    right: Option<Gc<GcCell<Node>>>,
    i: i32,
    j: i32,
}

shared_pointer_workloads! {
    pointer: Gc,
    cell: GcCell,
    tree: TreeNode,
    node: Node,
    after_tree: || {},
}
