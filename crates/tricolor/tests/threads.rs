//! Multi-threaded stress: 4 threads share one graph (a root table of
//! K = 1024 slots, each holding a short node chain) and mutate it at random
//! (edge stores, allocations, cycles, root creation and drops, roots handed
//! between threads) while collections run (`set_gc_percent(10)` plus explicit
//! `gc()` calls from one thread between its guards).
//!
//! Every node carries a checksum of its id; every read checks it, and that
//! the node was never dropped. At the end, with every thread joined: every
//! reachable node is intact, and after `gc()` the number of drops equals
//! allocated minus reachable, each node dropped at most once.
//!
//! `TRICOLOR_STRESS_OPS` sets the total number of operations (all threads).
//! The default is 1,000,000 in release builds and 200,000 in debug builds:
//! an unoptimised build runs the collector and the checks some 10-30x
//! slower, and the debug run must stay well under a minute on 2 shared
//! cores; CI runs the full count with `--release`.
//!
//! One `#[test]` in this file: the final counts are exact and need the heap
//! to themselves.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use common::{drops, mix, scaled, DROPS};
use tricolor::{Gc, Guard, Member, Root, Trace};

/// Slots in the shared table.
const K: usize = 1024;
/// Mutator threads.
const THREADS: usize = 4;
/// Longest chain a push extends (longer ones are truncated instead).
const MAX_CHAIN: usize = 8;
/// Steps a walk takes at most (chains may contain cycles).
const WALK: usize = 16;
/// Roots a thread keeps at most.
const LOCAL_ROOTS: usize = 32;
/// Operations between `repin()`s.
const REPIN_EVERY: u64 = 100;
/// Operations of thread 0 between explicit `gc()` calls.
const GC_EVERY: u64 = 5_000;
/// Most nodes one operation allocates.
const MAX_ALLOCS_PER_OP: u64 = 2;

fn total_ops() -> u64 {
    std::env::var("TRICOLOR_STRESS_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(scaled(1_000_000, 200_000))
}

/// Ids handed out so far (ids are indices into `FLAGS`).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Per id: how many times it was dropped.
static FLAGS: OnceLock<Box<[AtomicU8]>> = OnceLock::new();
/// Set when a `Drop` saw an id outside `FLAGS` (it must not panic itself).
static BAD_DROP: AtomicBool = AtomicBool::new(false);

fn flags() -> &'static [AtomicU8] {
    FLAGS.get().expect("flags initialised by the test")
}

/// Records the drop of node `0` (plain data: may implement `Drop`), and
/// counts it in the total, [`DROPS`].
#[derive(Trace)]
struct DropFlag(u64);

impl Drop for DropFlag {
    fn drop(&mut self) {
        match FLAGS.get().and_then(|f| f.get(self.0 as usize)) {
            Some(flag) => {
                flag.fetch_add(1, Ordering::Relaxed);
            }
            None => BAD_DROP.store(true, Ordering::Relaxed),
        }
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    /// Empty for most nodes, the id in hex for every fourth.
    payload: String,
    /// Bumped by readers: shared mutable plain data.
    hits: AtomicU64,
    next: Member<Node>,
    flag: DropFlag,
}

#[derive(Trace)]
struct Table {
    slots: [Member<Node>; K],
}

fn new_node<'g>(g: &'g Guard, next: Option<Gc<'g, Node>>) -> Gc<'g, Node> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    assert!(
        (id as usize) < flags().len(),
        "more allocations than the flag table was sized for"
    );
    let payload = if id.is_multiple_of(4) {
        format!("{id:x}")
    } else {
        String::new()
    };
    g.alloc(Node {
        id,
        check: mix(id),
        payload,
        hits: AtomicU64::new(0),
        next: Member::new(next),
        flag: DropFlag(id),
    })
}

/// Panics unless `n` is a live, intact node.
fn verify(n: &Node) {
    assert_eq!(n.check, mix(n.id), "node {} corrupted", n.id);
    if n.id.is_multiple_of(4) {
        assert_eq!(n.payload, format!("{:x}", n.id), "payload corrupted");
    } else {
        assert!(n.payload.is_empty(), "payload corrupted");
    }
    assert_eq!(n.flag.0, n.id, "drop flag of node {} corrupted", n.id);
    let flag = flags()[n.id as usize].load(Ordering::Relaxed);
    assert_eq!(flag, 0, "node {} reachable but dropped {flag} times", n.id);
}

/// The `depth`-th node of a chain (0 = head), or the last one reached.
fn nth<'g>(g: &'g Guard, head: Gc<'g, Node>, depth: usize) -> Gc<'g, Node> {
    let mut cur = head;
    for _ in 0..depth {
        match cur.next.load(g) {
            Some(n) => cur = n,
            None => break,
        }
    }
    cur
}

/// Walks (at most `WALK` steps), verifying every node; returns the length.
fn walk(g: &Guard, head: Option<Gc<'_, Node>>) -> usize {
    let mut len = 0;
    let mut cur = head;
    while let Some(n) = cur {
        verify(&n);
        n.hits.fetch_add(1, Ordering::Relaxed);
        len += 1;
        if len == WALK {
            break;
        }
        cur = n.next.load(g);
    }
    len
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Roots handed between threads.
static POOL: Mutex<Vec<Root<Node>>> = Mutex::new(Vec::new());

fn pool_put(r: Root<Node>) -> Option<Root<Node>> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < 64 {
        pool.push(r);
        None
    } else {
        // Swap: the caller drops the old one outside the lock.
        Some(std::mem::replace(&mut pool[0], r))
    }
}

fn pool_take() -> Option<Root<Node>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).pop()
}

/// One mutator thread; returns the roots it still holds.
fn mutator(t: usize, table: Root<Table>, ops: u64) -> Vec<Root<Node>> {
    let mut rng = Rng(0x5eed_0000 + t as u64);
    let mut roots: Vec<Root<Node>> = Vec::new();
    let mut guard = tricolor::pin();
    for op in 0..ops {
        if op % REPIN_EVERY == 0 {
            guard.repin();
        }
        if t == 0 && op % GC_EVERY == GC_EVERY - 1 {
            drop(guard);
            tricolor::gc();
            guard = tricolor::pin();
        }
        let g = &guard;
        // Through the root's `Deref` (the table is rooted).
        let slots = &table.slots;
        let i = rng.below(K as u64) as usize;
        let slot = &slots[i];
        match rng.below(100) {
            // Read a chain.
            0..=29 => {
                walk(g, slot.load(g));
            }
            // Push a node onto a chain (born with an edge), or truncate it.
            30..=49 => {
                let head = slot.load(g);
                if walk(g, head) >= MAX_CHAIN {
                    let n = nth(g, head.unwrap(), rng.below(4) as usize);
                    n.next.store(g, None);
                } else {
                    slot.store(g, Some(new_node(g, head)));
                }
            }
            // Truncate a chain.
            50..=57 => match slot.load(g) {
                Some(head) if rng.below(2) == 0 => {
                    nth(g, head, rng.below(3) as usize).next.store(g, None);
                }
                _ => slot.store(g, None),
            },
            // Share a chain between two slots.
            58..=67 => {
                let j = rng.below(K as u64) as usize;
                let old = slots[j].swap(g, slot.load(g));
                if let Some(old) = old {
                    verify(&old);
                }
            }
            // Link a chain's node to another chain's head (cycles happen).
            68..=72 => {
                if let Some(head) = slot.load(g) {
                    let n = nth(g, head, rng.below(MAX_CHAIN as u64) as usize);
                    let j = rng.below(K as u64) as usize;
                    n.next.store(g, slots[j].load(g));
                }
            }
            // Root a node.
            73..=80 => {
                if let Some(head) = slot.load(g) {
                    let n = nth(g, head, rng.below(3) as usize);
                    let r = if rng.below(2) == 0 {
                        n.root()
                    } else {
                        Root::from(n)
                    };
                    assert_eq!(r.id, n.id);
                    roots.push(r);
                    if roots.len() > LOCAL_ROOTS {
                        let k = rng.below(roots.len() as u64) as usize;
                        drop(roots.swap_remove(k));
                    }
                }
            }
            // Drop a root, or hand one to another thread.
            81..=86 => {
                if !roots.is_empty() {
                    let k = rng.below(roots.len() as u64) as usize;
                    let r = roots.swap_remove(k);
                    verify(&r);
                    if rng.below(2) == 0 {
                        drop(pool_put(r));
                    } else {
                        drop(r);
                    }
                }
            }
            // Take a root another thread handed over, or clone one.
            87..=90 => {
                if let Some(r) = pool_take() {
                    verify(&r);
                    roots.push(r);
                } else if let Some(r) = roots.last() {
                    let c = r.clone();
                    roots.push(c);
                }
                if roots.len() > LOCAL_ROOTS {
                    drop(roots.swap_remove(0));
                }
            }
            // Put a rooted node back into the table (it may have been
            // unlinked: only the root kept it alive).
            91..=94 => {
                if !roots.is_empty() {
                    let k = rng.below(roots.len() as u64) as usize;
                    let n = roots[k].get(g);
                    verify(&n);
                    walk(g, Some(n));
                    slot.store(g, Some(n));
                }
            }
            // Garbage, possibly pointing into the live graph.
            _ => {
                let n = new_node(g, slot.load(g));
                let m = new_node(g, Some(n));
                verify(&m);
            }
        }
    }
    drop(guard);
    roots
}

/// Racing mutators and collections never free or corrupt live nodes; gc() frees exactly the rest.
#[test]
fn four_threads_mutate_shared_graph_under_collection() {
    let ops = total_ops();
    let capacity = ops * MAX_ALLOCS_PER_OP + 16;
    FLAGS
        .set((0..capacity).map(|_| AtomicU8::new(0)).collect())
        .unwrap_or_else(|_| panic!("flags initialised twice"));
    tricolor::set_gc_percent(10);
    let num_gc_before = tricolor::read_mem_stats().num_gc;

    let table = Root::new(Table {
        slots: std::array::from_fn(|_| Member::null()),
    });
    let per_thread = ops / THREADS as u64;
    let mut roots: Vec<Root<Node>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let table = table.clone();
                s.spawn(move || mutator(t, table, per_thread))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("mutator panicked"))
            .collect()
    });
    roots.extend(std::mem::take(
        &mut *POOL.lock().unwrap_or_else(|e| e.into_inner()),
    ));
    assert!(
        tricolor::read_mem_stats().num_gc >= num_gc_before + (per_thread / GC_EVERY) as u32,
        "explicit collections not counted"
    );

    // Quiesced: every thread is joined. Count what is reachable.
    let reachable = {
        let g = tricolor::pin();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack: Vec<Gc<'_, Node>> = Vec::new();
        for slot in &table.get(&g).slots {
            stack.extend(slot.load(&g));
        }
        stack.extend(roots.iter().map(|r| r.get(&g)));
        while let Some(n) = stack.pop() {
            if seen.insert(n.id) {
                verify(&n);
                stack.extend(n.next.load(&g));
            }
        }
        seen
    };
    tricolor::gc();
    let allocated = NEXT_ID.load(Ordering::Relaxed);
    assert!(
        !BAD_DROP.load(Ordering::Relaxed),
        "a drop saw an unknown id"
    );
    let mut dropped = 0u64;
    for (id, flag) in flags()[..allocated as usize].iter().enumerate() {
        let n = flag.load(Ordering::Relaxed);
        assert!(n <= 1, "node {id} dropped {n} times");
        if reachable.contains(&(id as u64)) {
            assert_eq!(n, 0, "reachable node {id} dropped");
        } else {
            assert_eq!(n, 1, "unreachable node {id} not freed by gc()");
        }
        dropped += u64::from(n);
    }
    assert_eq!(drops(), dropped);
    assert_eq!(dropped, allocated - reachable.len() as u64);
    let stats = tricolor::read_mem_stats();
    // The nodes plus the table.
    assert_eq!(stats.heap_objects, reachable.len() as u64 + 1);

    // Everything goes.
    drop(roots);
    drop(table);
    tricolor::gc();
    assert_eq!(drops(), allocated);
    assert!(flags()[..allocated as usize]
        .iter()
        .all(|f| f.load(Ordering::Relaxed) == 1));
    assert_eq!(tricolor::read_mem_stats().heap_objects, 0);
}
