//! `gc-arena`: the `gc-arena` crate (kyren; used by Ruffle and piccolo): an
//! incremental, non-moving mark-and-sweep collector over a closed arena.
//! Pointers (`Gc<'gc, T>`, plain `Copy` pointers) are branded with the
//! lifetime of one `Arena::mutate` call and the only root is the arena's root
//! object, so no collection can happen *during* `mutate`: the program builds
//! each tree inside one `mutate` call and then pays the allocation debt with
//! `Arena::collect_debt` between calls, once the debt exceeds a small
//! granularity (the crate's intended pattern, as in its author's Lua VM
//! piccolo, which collects between interpreter steps). binary-trees uses immutable
//! `Gc<'gc, TreeNode>` nodes; GCBench needs mutation, so it uses
//! `Gc<'gc, RefLock<Node>>`, whose `borrow_mut` runs the write barrier.

use std::hint::black_box;
use std::io::{self, Write};

use gc_arena::{Arena, Collect, Gc, Mutation, RefLock, Rootable};

use crate::workload::gcbench::{make_tree, top_down_tree, TopDown};
use crate::workload::{
    binary_trees as bt, bottom_up_tree, count, gcbench as gcb, Children, TreeRef,
};

/// Allocation debt below which `collect_debt` is not called: the crate's docs
/// advise a minimum unit of work, and its author's VM (piccolo) uses 1024.
const COLLECTOR_GRANULARITY: f64 = 1024.0;

/// Pays the allocation debt once it exceeds [`COLLECTOR_GRANULARITY`].
fn collect<R>(arena: &mut Arena<R>)
where
    R: for<'a> Rootable<'a>,
    for<'a> gc_arena::arena::Root<'a, R>: Collect<'a>,
{
    if arena.metrics().allocation_debt() > COLLECTOR_GRANULARITY {
        arena.collect_debt();
    }
}

/// binary-trees node: two child pointers, both `None` for a leaf.
#[derive(Collect)]
#[collect(no_drop)]
struct TreeNode<'gc> {
    left: Option<Tree<'gc>>,
    right: Option<Tree<'gc>>,
}

type Tree<'gc> = Gc<'gc, TreeNode<'gc>>;

impl Children for TreeNode<'_> {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left.as_deref(), self.right.as_deref())
    }
}

impl<'gc> TreeRef for Tree<'gc> {
    type Ctx = &'gc Mutation<'gc>;

    fn new_node(mc: &'gc Mutation<'gc>, left: Option<Self>, right: Option<Self>) -> Self {
        Gc::new(mc, TreeNode { left, right })
    }
}

/// The arena of binary-trees: its root holds the long-lived tree once it
/// exists. Each tree is built (and checked) in one `mutate` call.
type TreesArena = Arena<Rootable![Option<Tree<'_>>]>;

impl bt::Trees for TreesArena {
    /// In the root.
    type LongLived = ();

    fn short_lived(&mut self, depth: u32) -> u64 {
        let check = self.mutate(|mc, _| count(&*bottom_up_tree::<Tree>(mc, depth)));
        collect(self);
        check
    }

    fn long_lived(&mut self, depth: u32) {
        self.mutate_root(|mc, root| *root = Some(bottom_up_tree(mc, depth)));
        collect(self);
    }

    fn check_long_lived(&mut self, (): &()) -> u64 {
        self.mutate(|_, root| root.map_or(0, |tree| count(&*tree)))
    }
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    bt::run(&mut TreesArena::new(|_| None), depth, out)
}

type NodeRef<'gc> = Gc<'gc, RefLock<Node<'gc>>>;

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Collect)]
#[collect(no_drop)]
struct Node<'gc> {
    left: Option<NodeRef<'gc>>,
    right: Option<NodeRef<'gc>>,
    i: i32,
    j: i32,
}

impl Children for RefLock<Node<'_>> {
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        let node = self.borrow();
        f(node.left.as_deref(), node.right.as_deref())
    }
}

impl<'gc> TreeRef for NodeRef<'gc> {
    type Ctx = &'gc Mutation<'gc>;

    fn new_node(mc: &'gc Mutation<'gc>, left: Option<Self>, right: Option<Self>) -> Self {
        Gc::new(
            mc,
            RefLock::new(Node {
                left,
                right,
                i: 0,
                j: 0,
            }),
        )
    }
}

/// Child edges are written through the write barrier of
/// `RefLock::borrow_mut`.
impl<'gc> TopDown for NodeRef<'gc> {
    type Handle<'n>
        = NodeRef<'gc>
    where
        Self: 'n;

    fn handle(&mut self) -> Self {
        *self
    }

    fn add_children(mc: &'gc Mutation<'gc>, node: Self, f: impl FnOnce(Self, Self)) {
        let left = NodeRef::new_node(mc, None, None);
        node.borrow_mut(mc).left = Some(left);
        let right = NodeRef::new_node(mc, None, None);
        node.borrow_mut(mc).right = Some(right);
        f(left, right);
    }
}

/// The arena of GCBench: its root holds the long-lived tree once it exists.
/// Each tree is built in one `mutate` call.
type GcBenchArena = Arena<Rootable![Option<NodeRef<'_>>]>;

impl gcb::Heap for GcBenchArena {
    /// In the root.
    type LongLived = ();

    fn top_down(&mut self, depth: i32) {
        self.mutate(|mc, _| {
            black_box(top_down_tree::<NodeRef>(mc, depth));
        });
        collect(self);
    }

    fn bottom_up(&mut self, depth: i32) {
        self.mutate(|mc, _| {
            black_box(make_tree::<NodeRef>(mc, depth));
        });
        collect(self);
    }

    fn long_lived(&mut self, depth: i32) {
        self.mutate_root(|mc, root| *root = Some(top_down_tree(mc, depth)));
        collect(self);
    }

    fn count_long_lived(&mut self, (): &()) -> u64 {
        self.mutate(|_, root| root.map_or(0, |tree| count(&*tree)))
    }
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcb::run(&mut GcBenchArena::new(|_| None), out)
}
