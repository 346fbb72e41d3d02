//! The model shared by `model.rs` and `model_heap_objects.rs`: random
//! operation sequences against the real heap and a reachability oracle.
//!
//! The oracle mirrors every node allocated in one proptest case (its payload
//! and its three edges) and the multiset of roots. After every operation the
//! real heap is walked from every `Root` with a fresh guard and compared with
//! the oracle, node by node and edge by edge; after every collection the set
//! of dropped ids must be exactly the set of allocated ids the oracle cannot
//! reach (everything unreachable is freed, each exactly once, nothing
//! reachable ever is).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use proptest::prelude::*;
use tricolor::{Gc, Guard, Member, Root, Trace};

/// Edges per node.
pub const SLOTS: usize = 3;

/// Ids are unique across the whole process, so cases never mix up.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many times each id was dropped (by the sweeper).
static DROPPED: Mutex<BTreeMap<u64, u32>> = Mutex::new(BTreeMap::new());

/// Plain data with its own `Drop`: records that the node holding it was
/// dropped. Never calls into tricolor (it runs inside the sweeper).
#[derive(Trace)]
pub struct DropCount(u64);

impl Drop for DropCount {
    fn drop(&mut self) {
        let mut dropped = DROPPED.lock().unwrap_or_else(|e| e.into_inner());
        *dropped.entry(self.0).or_insert(0) += 1;
    }
}

/// A node of the random graph.
#[derive(Trace)]
pub struct N {
    id: u64,
    payload: String,
    edges: [Member<N>; SLOTS],
    drop: DropCount,
}

/// One operation. Node operands are indices into the oracle's current list of
/// reachable nodes (taken modulo its length), so every generated sequence is
/// meaningful and shrinks well.
#[derive(Clone, Debug)]
pub enum Op {
    /// Allocate a node (born with `init` edges to reachable nodes) and store
    /// it into `attach = (node, slot)`, or make it a root if `attach` is
    /// `None` (through `Root::new` when `value` is odd).
    Alloc {
        value: u32,
        attach: Option<(u16, u8)>,
        init: [Option<u16>; SLOTS],
    },
    /// `from.edges[slot] = to` (or null).
    StoreEdge {
        from: u16,
        slot: u8,
        to: Option<u16>,
    },
    /// Drop one root.
    DropRoot { i: u16 },
    /// Create a root for a reachable node (`Gc::root` or `Root::from`).
    CreateRoot { from: u16 },
    /// Clone an existing root.
    CloneRoot { i: u16 },
    /// Allocate `count` nodes and drop them at once (their edges may point
    /// at reachable nodes).
    Garbage { count: u8, to: Option<u16> },
    /// `repin()` the long-lived guard, if any.
    Repin,
    /// Drop the long-lived guard.
    Unpin,
    /// Drop every guard and `tricolor::gc()`; then check the dropped set.
    Collect,
    /// Run `ops` on a new thread (with its own guard) and join it; the main
    /// thread keeps its guard during the run if `keep_pinned`.
    SpawnThread { ops: Vec<Op>, keep_pinned: bool },
}

fn node_index() -> impl Strategy<Value = u16> {
    any::<u16>()
}

fn slot() -> impl Strategy<Value = u8> {
    0..SLOTS as u8
}

/// Operations that may run on any thread.
fn leaf_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            any::<u32>(),
            proptest::option::weighted(0.8, (node_index(), slot())),
            proptest::array::uniform3(proptest::option::weighted(0.3, node_index())),
        )
            .prop_map(|(value, attach, init)| Op::Alloc { value, attach, init }),
        5 => (node_index(), slot(), proptest::option::weighted(0.75, node_index()))
            .prop_map(|(from, slot, to)| Op::StoreEdge { from, slot, to }),
        2 => any::<u16>().prop_map(|i| Op::DropRoot { i }),
        2 => node_index().prop_map(|from| Op::CreateRoot { from }),
        1 => any::<u16>().prop_map(|i| Op::CloneRoot { i }),
        1 => (1..8u8, proptest::option::of(node_index()))
            .prop_map(|(count, to)| Op::Garbage { count, to }),
    ]
}

/// Any operation.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => leaf_op(),
        1 => Just(Op::Repin),
        1 => Just(Op::Unpin),
        3 => Just(Op::Collect),
        1 => (proptest::collection::vec(leaf_op(), 1..12), any::<bool>())
            .prop_map(|(ops, keep_pinned)| Op::SpawnThread { ops, keep_pinned }),
    ]
}

/// A whole case: up to 200 operations.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..200)
}

/// The proptest configuration: `PROPTEST_CASES` (default 256) cases.
pub fn config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    proptest::test_runner::Config {
        cases,
        // Shrinking re-runs whole cases; keep a failing run bounded.
        max_shrink_iters: 2_000,
        ..proptest::test_runner::Config::default()
    }
}

/// What the oracle knows about one node.
#[derive(Clone, Debug)]
struct ONode {
    payload: String,
    edges: [Option<u64>; SLOTS],
}

/// The real roots and the oracle, moved together between threads.
pub struct Model {
    roots: Vec<Root<N>>,
    /// `oracle_roots[i]` is the id `roots[i]` points at.
    oracle_roots: Vec<u64>,
    /// Every node allocated in this case, reachable or not.
    nodes: HashMap<u64, ONode>,
    /// Number of `Collect` operations run (for the heap_objects check).
    pub collections: usize,
}

fn payload_for(id: u64, value: u32) -> String {
    // Lengths 0..=40 after the prefix; value 0 gives an empty string, which
    // owns no heap memory at all.
    if value.is_multiple_of(17) {
        return String::new();
    }
    let mut s = format!("n{id}:");
    for i in 0..(value % 41) {
        s.push(char::from(b'a' + ((id as u32 + i) % 26) as u8));
    }
    s
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Model {
            roots: Vec::new(),
            oracle_roots: Vec::new(),
            nodes: HashMap::new(),
            collections: 0,
        }
    }

    /// Oracle-reachable ids, in a deterministic order (BFS from the roots in
    /// order, edges in slot order).
    pub fn reachable(&self) -> Vec<u64> {
        let mut seen = BTreeSet::new();
        let mut order = Vec::new();
        let mut queue: VecDeque<u64> = VecDeque::new();
        for &r in &self.oracle_roots {
            if seen.insert(r) {
                queue.push_back(r);
                order.push(r);
            }
        }
        while let Some(id) = queue.pop_front() {
            for e in self.nodes[&id].edges.iter().flatten() {
                if seen.insert(*e) {
                    queue.push_back(*e);
                    order.push(*e);
                }
            }
        }
        order
    }

    /// Walks the real heap from every root and compares it with the oracle:
    /// every reachable node has its id and payload, every edge points at the
    /// node the oracle says (or is null), no reachable node was ever dropped.
    /// Returns the reachable nodes by id.
    pub fn check<'g>(&self, g: &'g Guard) -> HashMap<u64, Gc<'g, N>> {
        assert_eq!(self.roots.len(), self.oracle_roots.len());
        let mut found: HashMap<u64, Gc<'g, N>> = HashMap::new();
        let mut queue: VecDeque<Gc<'g, N>> = VecDeque::new();
        for (root, &want) in self.roots.iter().zip(&self.oracle_roots) {
            // Through `Deref` and through `get`.
            assert_eq!(root.id, want, "root points at the wrong node");
            let gc = root.get(g);
            assert_eq!(gc.id, want, "Root::get returns the wrong node");
            if found.insert(want, gc).is_none() {
                queue.push_back(gc);
            }
        }
        while let Some(n) = queue.pop_front() {
            let o = self
                .nodes
                .get(&n.id)
                .unwrap_or_else(|| panic!("heap reaches unknown id {}", n.id));
            assert_eq!(n.payload, o.payload, "payload of node {} changed", n.id);
            assert_eq!(n.drop.0, n.id, "drop counter of node {} changed", n.id);
            for (slot, (edge, want)) in n.edges.iter().zip(&o.edges).enumerate() {
                let got = edge.load(g);
                assert_eq!(
                    got.map(|t| t.id),
                    *want,
                    "edge {slot} of node {} differs from the oracle",
                    n.id
                );
                assert_eq!(edge.is_null(), want.is_none());
                if let Some(t) = got {
                    match found.get(&t.id) {
                        Some(prev) => assert!(
                            Gc::ptr_eq(*prev, t),
                            "two distinct heap objects carry id {}",
                            t.id
                        ),
                        None => {
                            found.insert(t.id, t);
                            queue.push_back(t);
                        }
                    }
                }
            }
        }
        let reachable = self.reachable();
        assert_eq!(
            found.len(),
            reachable.len(),
            "the heap and the oracle reach different node sets"
        );
        let dropped = DROPPED.lock().unwrap_or_else(|e| e.into_inner());
        for id in &reachable {
            assert!(found.contains_key(id), "reachable node {id} not found");
            assert!(
                !dropped.contains_key(id),
                "reachable node {id} was dropped (freed while live)"
            );
        }
        for id in self.nodes.keys() {
            if let Some(&n) = dropped.get(id) {
                assert_eq!(n, 1, "node {id} dropped {n} times");
            }
        }
        found
    }

    /// After a collection with no guard held anywhere: the dropped ids of
    /// this case are exactly its unreachable ids.
    pub fn check_after_collect(&self) {
        let reachable: BTreeSet<u64> = self.reachable().into_iter().collect();
        let unreachable: BTreeSet<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| !reachable.contains(id))
            .collect();
        let dropped: BTreeMap<u64, u32> = {
            let all = DROPPED.lock().unwrap_or_else(|e| e.into_inner());
            self.nodes
                .keys()
                .filter_map(|id| all.get(id).map(|&n| (*id, n)))
                .collect()
        };
        for (id, n) in &dropped {
            assert_eq!(*n, 1, "node {id} dropped {n} times");
        }
        let dropped_ids: BTreeSet<u64> = dropped.keys().copied().collect();
        let leaked: Vec<_> = unreachable.difference(&dropped_ids).collect();
        let early: Vec<_> = dropped_ids.difference(&unreachable).collect();
        assert!(
            leaked.is_empty(),
            "unreachable nodes not freed by gc(): {leaked:?}"
        );
        assert!(early.is_empty(), "reachable nodes were freed: {early:?}");
    }

    /// Number of oracle-reachable nodes.
    pub fn reachable_count(&self) -> usize {
        self.reachable().len()
    }

    fn pick(list: &[u64], i: u16) -> Option<u64> {
        if list.is_empty() {
            None
        } else {
            Some(list[i as usize % list.len()])
        }
    }

    fn alloc_node<'g>(
        &mut self,
        g: &'g Guard,
        value: u32,
        init: [Option<u64>; SLOTS],
        live: &HashMap<u64, Gc<'g, N>>,
        as_root_new: bool,
    ) -> (u64, Gc<'g, N>, Option<Root<N>>) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let payload = payload_for(id, value);
        let edges = init.map(|e| Member::new(e.map(|id| live[&id])));
        let node = N {
            id,
            payload: payload.clone(),
            edges,
            drop: DropCount(id),
        };
        self.nodes.insert(
            id,
            ONode {
                payload,
                edges: init,
            },
        );
        if as_root_new {
            let root = Root::new(node);
            let gc = root.get(g);
            (id, gc, Some(root))
        } else {
            (id, g.alloc(node), None)
        }
    }

    /// Applies one operation (not `Collect`, `Repin`, `Unpin` or
    /// `SpawnThread`, which the driver handles) under guard `g`.
    pub fn apply(&mut self, g: &Guard, op: &Op) {
        let reachable = self.reachable();
        let live = self.check(g);
        match *op {
            Op::Alloc {
                value,
                attach,
                init,
            } => {
                let init = init.map(|i| i.and_then(|i| Self::pick(&reachable, i)));
                let target = attach.and_then(|(from, slot)| {
                    Self::pick(&reachable, from).map(|from| (from, slot as usize))
                });
                let as_root_new = target.is_none() && value % 2 == 1;
                let (id, gc, root) = self.alloc_node(g, value, init, &live, as_root_new);
                match (target, root) {
                    (Some((from, slot)), _) => {
                        live[&from].edges[slot].store(g, Some(gc));
                        self.nodes.get_mut(&from).unwrap().edges[slot] = Some(id);
                    }
                    (None, Some(root)) => {
                        self.roots.push(root);
                        self.oracle_roots.push(id);
                    }
                    (None, None) => {
                        self.roots.push(gc.root());
                        self.oracle_roots.push(id);
                    }
                }
            }
            Op::StoreEdge { from, slot, to } => {
                if let Some(from) = Self::pick(&reachable, from) {
                    let to = to.and_then(|t| Self::pick(&reachable, t));
                    let slot = slot as usize;
                    let member = &live[&from].edges[slot];
                    if from % 3 == 0 {
                        // `swap` returns the previous target.
                        let old = member.swap(g, to.map(|t| live[&t]));
                        assert_eq!(old.map(|o| o.id), self.nodes[&from].edges[slot]);
                    } else {
                        member.store(g, to.map(|t| live[&t]));
                    }
                    self.nodes.get_mut(&from).unwrap().edges[slot] = to;
                }
            }
            Op::DropRoot { i } => {
                if !self.roots.is_empty() {
                    let i = i as usize % self.roots.len();
                    drop(self.roots.remove(i));
                    self.oracle_roots.remove(i);
                }
            }
            Op::CreateRoot { from } => {
                if let Some(id) = Self::pick(&reachable, from) {
                    let gc = live[&id];
                    let root = if from % 2 == 0 {
                        gc.root()
                    } else {
                        Root::from(gc)
                    };
                    assert!(Gc::ptr_eq(root.get(g), gc));
                    self.roots.push(root);
                    self.oracle_roots.push(id);
                }
            }
            Op::CloneRoot { i } => {
                if !self.roots.is_empty() {
                    let i = i as usize % self.roots.len();
                    let root = self.roots[i].clone();
                    assert!(Root::ptr_eq(&root, &self.roots[i]));
                    self.roots.push(root);
                    self.oracle_roots.push(self.oracle_roots[i]);
                }
            }
            Op::Garbage { count, to } => {
                let to = to.and_then(|t| Self::pick(&reachable, t));
                for k in 0..count {
                    let init = [to, None, to];
                    let (_, gc, _) = self.alloc_node(g, u32::from(k) * 7 + 1, init, &live, false);
                    assert_eq!(gc.edges[0].load(g).map(|t| t.id), to);
                }
            }
            Op::Repin | Op::Unpin | Op::Collect | Op::SpawnThread { .. } => {
                unreachable!("handled by the driver")
            }
        }
    }
}

/// Runs one case: applies `ops`, checking the heap against the oracle after
/// each with a fresh guard, and the freed set after each `Collect`. If
/// `exact_heap_objects`, also checks `heap_objects` after each `Collect`
/// (only valid when nothing else in the process uses the heap).
pub fn run_case(ops: &[Op], exact_heap_objects: bool) {
    let mut model = Model::new();
    let mut guard: Option<Guard> = None;
    for op in ops {
        match op {
            Op::Repin => {
                if let Some(g) = guard.as_mut() {
                    g.repin();
                }
            }
            Op::Unpin => guard = None,
            Op::Collect => {
                guard = None;
                tricolor::gc();
                model.collections += 1;
                model.check_after_collect();
                if exact_heap_objects {
                    let stats = tricolor::read_mem_stats();
                    assert_eq!(
                        stats.heap_objects,
                        model.reachable_count() as u64,
                        "heap_objects after gc() must equal the number of reachable objects"
                    );
                    assert_eq!(stats.heap_objects, stats.mallocs - stats.frees);
                }
            }
            Op::SpawnThread { ops, keep_pinned } => {
                if !keep_pinned {
                    guard = None;
                }
                std::thread::scope(|s| {
                    let model = &mut model;
                    s.spawn(move || {
                        for (k, op) in ops.iter().enumerate() {
                            // Alternate between one guard per op and a
                            // fresh guard each op.
                            let g = tricolor::pin();
                            model.apply(&g, op);
                            if k % 2 == 0 {
                                drop(g);
                                let g = tricolor::pin();
                                model.check(&g);
                            } else {
                                model.check(&g);
                            }
                        }
                    })
                    .join()
                    .expect("spawned thread panicked");
                });
            }
            op => {
                let g = guard.get_or_insert_with(tricolor::pin);
                model.apply(g, op);
            }
        }
        // After every op, with a fresh (possibly nested) guard.
        let g = tricolor::pin();
        model.check(&g);
    }
    drop(guard);
}
