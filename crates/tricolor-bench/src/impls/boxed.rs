//! `box`: plain `Option<Box<Node>>` trees, freed by `Drop` as soon as they go
//! out of scope. The baseline every other implementation is compared with:
//! one `malloc` per node, one `free` per node, no collector.

use std::io::{self, Write};

use crate::workload::gcbench::TopDown;
use crate::workload::{binary_trees as bt, gcbench as gcb, Children, Owned, TreeRef};

/// binary-trees node: two child pointers, both `None` for a leaf.
struct TreeNode {
    left: Option<Box<TreeNode>>,
    right: Option<Box<TreeNode>>,
}

impl Children for TreeNode {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left.as_deref(), self.right.as_deref())
    }
}

impl TreeRef for Box<TreeNode> {
    type Ctx = ();

    fn new_node((): (), left: Option<Self>, right: Option<Self>) -> Self {
        Box::new(TreeNode { left, right })
    }
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    bt::run(&mut Owned::<Box<TreeNode>, _>::new((), || {}), depth, out)
}

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Default)]
struct Node {
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

impl Children for Node {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left.as_deref(), self.right.as_deref())
    }
}

impl TreeRef for Box<Node> {
    type Ctx = ();

    fn new_node((): (), left: Option<Self>, right: Option<Self>) -> Self {
        Box::new(Node {
            left,
            right,
            i: 0,
            j: 0,
        })
    }
}

impl TopDown for Box<Node> {
    type Handle<'n> = &'n mut Node;

    fn handle(&mut self) -> &mut Node {
        self
    }

    fn add_children((): (), node: &mut Node, f: impl FnOnce(&mut Node, &mut Node)) {
        node.left = Some(Box::default());
        node.right = Some(Box::default());
        if let (Some(left), Some(right)) = (node.left.as_deref_mut(), node.right.as_deref_mut()) {
            f(left, right);
        }
    }
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcb::run(&mut Owned::<Box<Node>, _>::new((), || {}), out)
}
