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

use crate::workload::gcbench::{make_tree, top_down_tree, TopDown};
use crate::workload::{
    binary_trees as bt, bottom_up_tree, count, gcbench as gcb, Children, TreeRef,
};

/// The arenas, for both workloads: the long-lived tree has its own, borrowed
/// from the caller; the short-lived trees share `arena`, reset after each.
struct Arenas<'l> {
    long_lived: &'l Bump,
    arena: Bump,
}

impl<'l> Arenas<'l> {
    fn new(long_lived: &'l Bump) -> Self {
        Arenas {
            long_lived,
            arena: Bump::new(),
        }
    }
}

/// binary-trees node: two child references, both `None` for a leaf.
struct TreeNode<'a> {
    left: Option<&'a TreeNode<'a>>,
    right: Option<&'a TreeNode<'a>>,
}

impl Children for TreeNode<'_> {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left, self.right)
    }
}

impl<'a> TreeRef for &'a TreeNode<'a> {
    type Ctx = &'a Bump;

    fn new_node(arena: &'a Bump, left: Option<Self>, right: Option<Self>) -> Self {
        arena.alloc(TreeNode { left, right })
    }
}

impl<'l> bt::Trees for Arenas<'l> {
    type LongLived = &'l TreeNode<'l>;

    /// The stretch tree gets an arena of its own, freed with it.
    fn stretch(&mut self, depth: u32) -> u64 {
        let arena = Bump::new();
        count(bottom_up_tree::<&TreeNode>(&arena, depth))
    }

    fn short_lived(&mut self, depth: u32) -> u64 {
        let check = count(bottom_up_tree::<&TreeNode>(&self.arena, depth));
        self.arena.reset();
        check
    }

    fn long_lived(&mut self, depth: u32) -> Self::LongLived {
        bottom_up_tree(self.long_lived, depth)
    }

    fn check_long_lived(&mut self, tree: &Self::LongLived) -> u64 {
        count(*tree)
    }
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    let long_lived = Bump::new();
    bt::run(&mut Arenas::new(&long_lived), depth, out)
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

impl Children for Node<'_> {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left.as_deref(), self.right.as_deref())
    }
}

impl<'a> TreeRef for &'a mut Node<'a> {
    type Ctx = &'a Bump;

    fn new_node(arena: &'a Bump, left: Option<Self>, right: Option<Self>) -> Self {
        arena.alloc(Node {
            left,
            right,
            i: 0,
            j: 0,
        })
    }
}

impl<'a> TopDown for &'a mut Node<'a> {
    type Handle<'n>
        = &'n mut Node<'a>
    where
        Self: 'n;

    fn handle(&mut self) -> &mut Node<'a> {
        self
    }

    fn add_children(
        arena: &'a Bump,
        node: &mut Node<'a>,
        f: impl FnOnce(&mut Node<'a>, &mut Node<'a>),
    ) {
        node.left = Some(arena.alloc(Node::default()));
        node.right = Some(arena.alloc(Node::default()));
        if let (Some(left), Some(right)) = (node.left.as_deref_mut(), node.right.as_deref_mut()) {
            f(left, right);
        }
    }
}

impl<'l> gcb::Heap for Arenas<'l> {
    type LongLived = &'l mut Node<'l>;

    /// The stretch tree gets an arena of its own, freed with it.
    fn stretch(&mut self, depth: i32) {
        let arena = Bump::new();
        black_box(make_tree::<&mut Node>(&arena, depth));
    }

    fn top_down(&mut self, depth: i32) {
        black_box(top_down_tree::<&mut Node>(&self.arena, depth));
        self.arena.reset();
    }

    fn bottom_up(&mut self, depth: i32) {
        black_box(make_tree::<&mut Node>(&self.arena, depth));
        self.arena.reset();
    }

    fn long_lived(&mut self, depth: i32) -> Self::LongLived {
        top_down_tree(self.long_lived, depth)
    }

    fn count_long_lived(&mut self, tree: &Self::LongLived) -> u64 {
        count(&**tree)
    }
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    let long_lived = Bump::new();
    gcb::run(&mut Arenas::new(&long_lived), out)
}
