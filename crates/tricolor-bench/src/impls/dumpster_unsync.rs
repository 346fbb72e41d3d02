//! `dumpster`: the `dumpster` crate's thread-local `dumpster::unsync::Gc`:
//! reference counting plus a cycle detector that periodically scans the
//! objects whose count was decremented without reaching zero. An object
//! whose count drops to zero is freed immediately, like `Rc`. binary-trees
//! uses immutable `Gc<TreeNode>` nodes; GCBench needs mutation, so it uses
//! `Gc<RefCell<Node>>`.

use std::cell::RefCell;

use dumpster::unsync::Gc;
use dumpster::Trace;

/// binary-trees node: two child pointers, both `None` for a leaf.
#[derive(Trace)]
struct TreeNode {
    left: Option<Gc<TreeNode>>,
    right: Option<Gc<TreeNode>>,
}

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Trace)]
struct Node {
    left: Option<Gc<RefCell<Node>>>,
    right: Option<Gc<RefCell<Node>>>,
    i: i32,
    j: i32,
}

shared_pointer_workloads! {
    pointer: Gc,
    cell: RefCell,
    tree: TreeNode,
    node: Node,
    after_tree: || {},
}
