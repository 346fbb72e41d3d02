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

use crate::workload::{binary_trees as bt, gcbench as gcb};

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
    left: Option<Gc<'gc, TreeNode<'gc>>>,
    right: Option<Gc<'gc, TreeNode<'gc>>>,
}

fn bottom_up_tree<'gc>(mc: &Mutation<'gc>, depth: u32) -> Gc<'gc, TreeNode<'gc>> {
    if depth == 0 {
        Gc::new(
            mc,
            TreeNode {
                left: None,
                right: None,
            },
        )
    } else {
        let left = bottom_up_tree(mc, depth - 1);
        let right = bottom_up_tree(mc, depth - 1);
        Gc::new(
            mc,
            TreeNode {
                left: Some(left),
                right: Some(right),
            },
        )
    }
}

fn check(node: Gc<'_, TreeNode<'_>>) -> u64 {
    1 + node.left.map_or(0, check) + node.right.map_or(0, check)
}

/// Runs binary-trees with maximum depth `depth`.
pub fn binary_trees(depth: u32, out: &mut dyn Write) -> io::Result<()> {
    // The root holds the long-lived tree once it exists.
    let mut arena = Arena::<Rootable![Option<Gc<'_, TreeNode<'_>>>]>::new(|_| None);
    let stretch = arena.mutate(|mc, _| check(bottom_up_tree(mc, depth + 1)));
    collect(&mut arena);
    bt::stretch_line(out, depth + 1, stretch)?;
    arena.mutate_root(|mc, root| *root = Some(bottom_up_tree(mc, depth)));
    collect(&mut arena);
    for (iterations, d) in bt::phases(depth) {
        let mut total = 0;
        for _ in 0..iterations {
            total += arena.mutate(|mc, _| check(bottom_up_tree(mc, d)));
            collect(&mut arena);
        }
        bt::trees_line(out, iterations, d, total)?;
    }
    let long_lived = arena.mutate(|_, root| root.map_or(0, check));
    bt::long_lived_line(out, depth, long_lived)
}

type NodeRef<'gc> = Gc<'gc, RefLock<Node<'gc>>>;

/// GCBench node: left/right pointers and two unused `i32` fields.
#[derive(Collect, Default)]
#[collect(no_drop)]
struct Node<'gc> {
    left: Option<NodeRef<'gc>>,
    right: Option<NodeRef<'gc>>,
    i: i32,
    j: i32,
}

fn new_node<'gc>(mc: &Mutation<'gc>) -> NodeRef<'gc> {
    Gc::new(mc, RefLock::new(Node::default()))
}

/// Builds a tree top down, assigning children to the older node (through the
/// write barrier of `RefLock::borrow_mut`).
fn populate<'gc>(mc: &Mutation<'gc>, depth: i32, node: NodeRef<'gc>) {
    if depth <= 0 {
        return;
    }
    let depth = depth - 1;
    let left = new_node(mc);
    node.borrow_mut(mc).left = Some(left);
    let right = new_node(mc);
    node.borrow_mut(mc).right = Some(right);
    populate(mc, depth, left);
    populate(mc, depth, right);
}

/// Builds a tree bottom up.
fn make_tree<'gc>(mc: &Mutation<'gc>, depth: i32) -> NodeRef<'gc> {
    if depth <= 0 {
        new_node(mc)
    } else {
        let left = make_tree(mc, depth - 1);
        let right = make_tree(mc, depth - 1);
        Gc::new(
            mc,
            RefLock::new(Node {
                left: Some(left),
                right: Some(right),
                i: 0,
                j: 0,
            }),
        )
    }
}

fn count(node: NodeRef<'_>) -> u64 {
    let node = node.borrow();
    1 + node.left.map_or(0, count) + node.right.map_or(0, count)
}

type GcBenchArena = Arena<Rootable![Option<NodeRef<'_>>]>;

fn time_construction(arena: &mut GcBenchArena, depth: i32, out: &mut dyn Write) -> io::Result<()> {
    gcb::creating_line(out, depth)?;
    for _ in 0..gcb::num_iters(depth) {
        arena.mutate(|mc, _| {
            let temp = new_node(mc);
            populate(mc, depth, temp);
            black_box(temp);
        });
        collect(arena);
    }
    for _ in 0..gcb::num_iters(depth) {
        arena.mutate(|mc, _| {
            black_box(make_tree(mc, depth));
        });
        collect(arena);
    }
    Ok(())
}

/// Runs GCBench.
pub fn gcbench(out: &mut dyn Write) -> io::Result<()> {
    gcb::header(out)?;
    // The root holds the long-lived tree once it exists.
    let mut arena = GcBenchArena::new(|_| None);
    arena.mutate(|mc, _| {
        black_box(make_tree(mc, gcb::STRETCH_TREE_DEPTH));
    });
    collect(&mut arena);
    gcb::long_lived_tree_line(out)?;
    arena.mutate_root(|mc, root| {
        let long_lived = new_node(mc);
        populate(mc, gcb::LONG_LIVED_TREE_DEPTH, long_lived);
        *root = Some(long_lived);
    });
    collect(&mut arena);
    gcb::array_line(out)?;
    let array = gcb::long_lived_array();
    for d in gcb::depths() {
        time_construction(&mut arena, d, out)?;
    }
    let long_lived = arena.mutate(|_, root| root.map_or(0, count));
    gcb::final_line(out, long_lived, &array)
}
