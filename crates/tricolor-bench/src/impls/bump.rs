//! `bumpalo`: nodes bump-allocated in a [`bumpalo::Bump`] arena, one arena per
//! tree, and the arena is `reset` (not freed) once the tree is dead, so its
//! memory is reused for the next tree.
//!
//! This is the "arena limit": no per-node free, no collector, no header per
//! object. It is not a general-purpose memory manager (it only works because
//! every tree dies all at once), but it bounds what any allocator can do here.

use std::hint::black_box;
use std::io::{self, Write};

use bumpalo::Bump;

use crate::workload::{binary_trees as bt, gcbench as gcb};

/// binary-trees node: two child references, both `None` for a leaf.
struct TreeNode<'a> {
    left: Option<&'a TreeNode<'a>>,
    right: Option<&'a TreeNode<'a>>,
}

fn bottom_up_tree(arena: &Bump, depth: u32) -> &TreeNode<'_> {
    if depth == 0 {
        arena.alloc(TreeNode {
            left: None,
            right: None,
        })
    } else {
        let left = bottom_up_tree(arena, depth - 1);
        let right = bottom_up_tree(arena, depth - 1);
        arena.alloc(TreeNode {
            left: Some(left),
            right: Some(right),
        })
    }
}

fn check(node: &TreeNode<'_>) -> u64 {
    1 + node.left.map_or(0, check) + node.right.map_or(0, check)
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    {
        let arena = Bump::new();
        let stretch = bottom_up_tree(&arena, depth + 1);
        bt::stretch_line(out, depth + 1, check(stretch))?;
    }
    let long_lived_arena = Bump::new();
    let long_lived = bottom_up_tree(&long_lived_arena, depth);
    let mut arena = Bump::new();
    for (iterations, d) in bt::phases(depth) {
        let mut total = 0;
        for _ in 0..iterations {
            total += check(bottom_up_tree(&arena, d));
            arena.reset();
        }
        bt::trees_line(out, iterations, d, total)?;
    }
    bt::long_lived_line(out, depth, check(long_lived))
}

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Default)]
struct Node<'a> {
    left: Option<&'a mut Node<'a>>,
    right: Option<&'a mut Node<'a>>,
    #[allow(dead_code)]
    i: i32,
    #[allow(dead_code)]
    j: i32,
}

/// Builds a tree top down, assigning children to the older node.
fn populate<'a>(arena: &'a Bump, depth: i32, node: &mut Node<'a>) {
    if depth <= 0 {
        return;
    }
    let depth = depth - 1;
    node.left = Some(arena.alloc(Node::default()));
    node.right = Some(arena.alloc(Node::default()));
    if let Some(left) = node.left.as_deref_mut() {
        populate(arena, depth, left);
    }
    if let Some(right) = node.right.as_deref_mut() {
        populate(arena, depth, right);
    }
}

/// Builds a tree bottom up.
fn make_tree(arena: &Bump, depth: i32) -> &mut Node<'_> {
    if depth <= 0 {
        arena.alloc(Node::default())
    } else {
        let left = make_tree(arena, depth - 1);
        let right = make_tree(arena, depth - 1);
        arena.alloc(Node {
            left: Some(left),
            right: Some(right),
            i: 0,
            j: 0,
        })
    }
}

fn count(node: &Node<'_>) -> u64 {
    1 + node.left.as_deref().map_or(0, count) + node.right.as_deref().map_or(0, count)
}

fn time_construction(arena: &mut Bump, depth: i32, out: &mut dyn Write) -> io::Result<()> {
    gcb::creating_line(out, depth)?;
    for _ in 0..gcb::num_iters(depth) {
        let temp = arena.alloc(Node::default());
        populate(arena, depth, temp);
        black_box(temp);
        arena.reset();
    }
    for _ in 0..gcb::num_iters(depth) {
        black_box(make_tree(arena, depth));
        arena.reset();
    }
    Ok(())
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcb::header(out)?;
    {
        let arena = Bump::new();
        black_box(make_tree(&arena, gcb::STRETCH_TREE_DEPTH));
    }
    gcb::long_lived_tree_line(out)?;
    let long_lived_arena = Bump::new();
    let long_lived = long_lived_arena.alloc(Node::default());
    populate(&long_lived_arena, gcb::LONG_LIVED_TREE_DEPTH, long_lived);
    gcb::array_line(out)?;
    let array = gcb::long_lived_array();
    let mut arena = Bump::new();
    for d in gcb::depths() {
        time_construction(&mut arena, d, out)?;
    }
    gcb::final_line(out, count(long_lived), &array)
}
