//! `box`: plain `Option<Box<Node>>` trees, freed by `Drop` as soon as they go
//! out of scope. The baseline every other implementation is compared with:
//! one `malloc` per node, one `free` per node, no collector.

use std::hint::black_box;
use std::io::{self, Write};

use crate::workload::{binary_trees as bt, gcbench as gcb};

/// binary-trees node: two child pointers, both `None` for a leaf.
struct TreeNode {
    left: Option<Box<TreeNode>>,
    right: Option<Box<TreeNode>>,
}

fn bottom_up_tree(depth: u32) -> Box<TreeNode> {
    if depth == 0 {
        Box::new(TreeNode {
            left: None,
            right: None,
        })
    } else {
        Box::new(TreeNode {
            left: Some(bottom_up_tree(depth - 1)),
            right: Some(bottom_up_tree(depth - 1)),
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
    let long_lived = bottom_up_tree(depth);
    for (iterations, d) in bt::phases(depth) {
        let mut total = 0;
        for _ in 0..iterations {
            let tree = bottom_up_tree(d);
            total += check(&tree);
        }
        bt::trees_line(out, iterations, d, total)?;
    }
    bt::long_lived_line(out, depth, check(&long_lived))
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

/// Builds a tree top down, assigning children to the older node.
fn populate(depth: i32, node: &mut Node) {
    if depth <= 0 {
        return;
    }
    let depth = depth - 1;
    node.left = Some(Box::default());
    node.right = Some(Box::default());
    if let Some(left) = node.left.as_deref_mut() {
        populate(depth, left);
    }
    if let Some(right) = node.right.as_deref_mut() {
        populate(depth, right);
    }
}

/// Builds a tree bottom up.
fn make_tree(depth: i32) -> Box<Node> {
    if depth <= 0 {
        Box::default()
    } else {
        Box::new(Node {
            left: Some(make_tree(depth - 1)),
            right: Some(make_tree(depth - 1)),
            i: 0,
            j: 0,
        })
    }
}

fn count(node: &Node) -> u64 {
    1 + node.left.as_deref().map_or(0, count) + node.right.as_deref().map_or(0, count)
}

fn time_construction(depth: i32, out: &mut dyn Write) -> io::Result<()> {
    gcb::creating_line(out, depth)?;
    for _ in 0..gcb::num_iters(depth) {
        let mut temp = Box::<Node>::default();
        populate(depth, &mut temp);
        black_box(&temp);
    }
    for _ in 0..gcb::num_iters(depth) {
        let temp = make_tree(depth);
        black_box(&temp);
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
    gcb::long_lived_tree_line(out)?;
    let mut long_lived = Box::<Node>::default();
    populate(gcb::LONG_LIVED_TREE_DEPTH, &mut long_lived);
    gcb::array_line(out)?;
    let array = gcb::long_lived_array();
    for d in gcb::depths() {
        time_construction(d, out)?;
    }
    gcb::final_line(out, count(&long_lived), &array)
}
