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
use std::hint::black_box;
use std::io::{self, Write};

use bacon_rajan_cc::{collect_cycles, Cc, Trace, Tracer};

use crate::workload::{binary_trees as bt, gcbench as gcb};

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

fn bottom_up_tree(depth: u32) -> Cc<TreeNode> {
    if depth == 0 {
        Cc::new(TreeNode {
            left: None,
            right: None,
        })
    } else {
        let left = bottom_up_tree(depth - 1);
        let right = bottom_up_tree(depth - 1);
        Cc::new(TreeNode {
            left: Some(left),
            right: Some(right),
        })
    }
}

fn check(node: &TreeNode) -> u64 {
    1 + node.left.as_deref().map_or(0, check) + node.right.as_deref().map_or(0, check)
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    {
        let stretch = bottom_up_tree(depth + 1);
        bt::stretch_line(out, depth + 1, check(&stretch))?;
    }
    collect_cycles();
    let long_lived = bottom_up_tree(depth);
    for (iterations, d) in bt::phases(depth) {
        let mut total = 0;
        for _ in 0..iterations {
            let tree = bottom_up_tree(d);
            total += check(&tree);
            drop(tree);
            collect_cycles();
        }
        bt::trees_line(out, iterations, d, total)?;
    }
    bt::long_lived_line(out, depth, check(&long_lived))
}

type NodeRef = Cc<RefCell<Node>>;

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Default)]
struct Node {
    left: Option<NodeRef>,
    right: Option<NodeRef>,
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

fn new_node() -> NodeRef {
    Cc::new(RefCell::new(Node::default()))
}

/// Builds a tree top down, assigning children to the older node.
fn populate(depth: i32, node: &NodeRef) {
    if depth <= 0 {
        return;
    }
    let depth = depth - 1;
    node.borrow_mut().left = Some(new_node());
    node.borrow_mut().right = Some(new_node());
    let node = node.borrow();
    if let Some(left) = &node.left {
        populate(depth, left);
    }
    if let Some(right) = &node.right {
        populate(depth, right);
    }
}

/// Builds a tree bottom up.
fn make_tree(depth: i32) -> NodeRef {
    if depth <= 0 {
        new_node()
    } else {
        let left = make_tree(depth - 1);
        let right = make_tree(depth - 1);
        Cc::new(RefCell::new(Node {
            left: Some(left),
            right: Some(right),
            i: 0,
            j: 0,
        }))
    }
}

fn count(node: &NodeRef) -> u64 {
    let node = node.borrow();
    1 + node.left.as_ref().map_or(0, count) + node.right.as_ref().map_or(0, count)
}

fn time_construction(depth: i32, out: &mut dyn Write) -> io::Result<()> {
    gcb::creating_line(out, depth)?;
    for _ in 0..gcb::num_iters(depth) {
        let temp = new_node();
        populate(depth, &temp);
        black_box(&temp);
        drop(temp);
        collect_cycles();
    }
    for _ in 0..gcb::num_iters(depth) {
        let temp = make_tree(depth);
        black_box(&temp);
        drop(temp);
        collect_cycles();
    }
    Ok(())
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcb::header(out)?;
    {
        let temp = make_tree(gcb::STRETCH_TREE_DEPTH);
        black_box(&temp);
    }
    collect_cycles();
    gcb::long_lived_tree_line(out)?;
    let long_lived = new_node();
    populate(gcb::LONG_LIVED_TREE_DEPTH, &long_lived);
    gcb::array_line(out)?;
    let array = gcb::long_lived_array();
    for d in gcb::depths() {
        time_construction(d, out)?;
    }
    gcb::final_line(out, count(&long_lived), &array)
}
