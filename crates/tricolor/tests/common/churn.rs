//! The churn stress workload shared by `tests/churn_stress.rs` and
//! `examples/churn_stress.rs` (each includes this file with `#[path]`, next
//! to `tests/common/mod.rs` as `crate::common`).
//!
//! What it checks: a shared live graph of many small cyclic subgraphs,
//! replaced at random by several threads while collections run (the pacer
//! plus explicit `gc()` calls from a thread holding no guard), never loses
//! or corrupts a reachable object, and frees every replaced one exactly once.
//!
//! The graph: one rooted [`Table`] whose [`GcVec`] holds `entries` slots;
//! slot `i` always holds an *entry*, a ring of [`RING`] nodes
//! (`head -> n1 -> n2 -> head`), every node carrying its slot (`key`), the
//! id of its ring's head, a checksum of its own id, a payload `String` (its
//! id in decimal) and a [`DropFlag`] (so every node has a `Drop`, which
//! records the drop of that id). Ids are unique over the run.
//!
//! The run: `threads` mutators each perform their share of `ops`
//! operations, re-pinning ([`Guard::repin`]) every [`BATCH`] operations.
//! An operation picks a slot with a per-thread xorshift64* generator seeded
//! from `seed`, then either builds a fresh ring and stores it over the slot
//! ([`GcVec::set`]; the old ring becomes a garbage cycle), or, one time in
//! four, replaces the tail of the slot's current ring (a fresh
//! `n1 -> n2 -> head` stored into `head.next`, an edge store into an old
//! object). One operation in [`VERIFY_ONE_IN`] also reads a random slot and
//! verifies its ring (key, head id, ids, checksums, payloads, drop flags
//! still clear, and the ring closes after exactly [`RING`] steps). The main
//! thread, holding no guard, calls `tricolor::gc()` `explicit_gcs` times,
//! spread over the run by the mutators' progress (a condition variable, no
//! sleeps).
//!
//! At the end (every mutator joined): every slot is verified and its ring's
//! ids recorded; after `gc()`, every node id ever allocated was dropped
//! exactly once if it is not in a slot's ring and never if it is, the drop
//! count is `allocated - live`, and `heap_objects` is the live nodes plus the
//! table and its slot buffer. Then the table is dropped and after `gc()`
//! everything has been dropped once and the heap is empty.
//!
//! [`run`] may be called once per process: the drop flags and id counter
//! are statics, and the final counts need the heap to themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{mix, DROPS};
use tricolor::{Gc, GcVec, Guard, Member, Root, Trace};

/// Nodes per entry (the ring's length).
pub const RING: u64 = 3;
/// Operations per guard: each mutator re-pins after this many.
pub const BATCH: u64 = 64;
/// One operation in `VERIFY_ONE_IN` also reads and verifies a random slot.
pub const VERIFY_ONE_IN: u64 = 4;
/// One operation in `TAIL_ONE_IN` replaces a ring's tail instead of the
/// whole ring.
pub const TAIL_ONE_IN: u64 = 4;

/// The sizes and knobs of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Slots in the table; the live graph is `entries * RING` nodes.
    pub entries: u64,
    /// Operations over all mutator threads.
    pub ops: u64,
    /// Mutator threads.
    pub threads: u64,
    /// Seed of the mutators' generators.
    pub seed: u64,
    /// Explicit `gc()` calls made by the main thread during the run.
    pub explicit_gcs: u64,
    /// GOGC for the run (`tricolor::set_gc_percent`).
    pub gc_percent: i32,
}

impl Config {
    /// The number of operations thread `t` performs.
    pub fn ops_of_thread(&self, t: u64) -> u64 {
        self.ops / self.threads + u64::from(t < self.ops % self.threads)
    }
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Nodes allocated over the whole run (fill included).
    pub allocated: u64,
    /// Live nodes at the end (`entries * RING`).
    pub live: u64,
    /// Slots read and verified by the mutators during the run.
    pub reads: u64,
    /// Whole-ring replacements.
    pub replaced_rings: u64,
    /// Tail replacements.
    pub replaced_tails: u64,
    /// Cycles completed during the mutator phase.
    pub cycles: u32,
    /// Of which forced by `gc()`.
    pub forced_cycles: u32,
    /// Cycles completed over the whole run.
    pub total_cycles: u32,
    /// Time to build the initial graph.
    pub fill: Duration,
    /// Time of the mutator phase.
    pub churn: Duration,
    /// Time of the final checks (three collections included).
    pub check: Duration,
}

impl Summary {
    /// The one-line summary.
    pub fn line(&self, cfg: &Config) -> String {
        format!(
            "churn_stress ok: seed {:#x}, {} entries ({} live nodes), {} ops on {} threads \
             ({} rings and {} tails replaced, {} reads verified), {} nodes allocated, \
             {} cycles during the churn ({} forced), {} in all; \
             fill {:.2} s, churn {:.2} s, check {:.2} s",
            cfg.seed,
            cfg.entries,
            self.live,
            cfg.ops,
            cfg.threads,
            self.replaced_rings,
            self.replaced_tails,
            self.reads,
            self.allocated,
            self.cycles,
            self.forced_cycles,
            self.total_cycles,
            self.fill.as_secs_f64(),
            self.churn.as_secs_f64(),
            self.check.as_secs_f64(),
        )
    }
}

/// Node ids handed out so far (ids index `FLAGS`).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Per node id: how many times it was dropped.
static FLAGS: OnceLock<Box<[AtomicU8]>> = OnceLock::new();
/// Set when a `Drop` saw an id outside `FLAGS` (a `Drop` must not panic).
static BAD_DROP: AtomicBool = AtomicBool::new(false);

fn flags() -> &'static [AtomicU8] {
    FLAGS.get().expect("churn: flags initialised by run()")
}

/// Records the drop of node `.0` in `FLAGS`, and counts it in [`DROPS`].
#[derive(Trace)]
pub struct DropFlag(u64);

impl Drop for DropFlag {
    fn drop(&mut self) {
        match FLAGS.get().and_then(|f| f.get(self.0 as usize)) {
            Some(flag) => {
                flag.fetch_add(1, Relaxed);
            }
            None => BAD_DROP.store(true, Relaxed),
        }
        DROPS.fetch_add(1, Relaxed);
    }
}

/// A node of an entry ring.
#[derive(Trace)]
pub struct Node {
    /// Unique over the run.
    pub id: u64,
    /// The slot this node's ring was built for.
    pub key: u64,
    /// The id of the ring's head (the node the slot points to).
    pub head: u64,
    /// `mix(id)`.
    pub check: u64,
    /// `id` in decimal.
    pub payload: String,
    /// The next node of the ring.
    pub next: Member<Node>,
    /// Records this node's drop.
    pub flag: DropFlag,
}

/// The rooted table of slots.
#[derive(Trace)]
pub struct Table {
    /// Slot `i` holds a ring with key `i`.
    pub slots: GcVec<Node>,
}

/// A xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    /// The generator of thread `t` for `seed` (never zero).
    pub fn new(seed: u64, t: u64) -> Rng {
        Rng(mix(seed ^ mix(t)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

fn new_node<'g>(
    g: &'g Guard,
    key: u64,
    head: Option<u64>,
    next: Option<Gc<'g, Node>>,
) -> Gc<'g, Node> {
    let id = NEXT_ID.fetch_add(1, Relaxed);
    assert!(
        (id as usize) < flags().len(),
        "churn: more nodes allocated than the flag table was sized for"
    );
    g.alloc(Node {
        id,
        key,
        head: head.unwrap_or(id),
        check: mix(id),
        payload: id.to_string(),
        next: Member::new(next),
        flag: DropFlag(id),
    })
}

/// Builds a tail for the ring of `head`: `RING - 1` fresh nodes, the last
/// one pointing to `head`; returns the first.
fn build_tail<'g>(g: &'g Guard, head: Gc<'g, Node>) -> Gc<'g, Node> {
    let mut first = head;
    for _ in 1..RING {
        first = new_node(g, head.key, Some(head.id), Some(first));
    }
    first
}

/// Builds a fresh ring for slot `key`; returns its head.
fn build_ring<'g>(g: &'g Guard, key: u64) -> Gc<'g, Node> {
    let head = new_node(g, key, None, None);
    let tail = build_tail(g, head);
    head.next.store(g, Some(tail));
    head
}

/// Checks one node of the ring of slot `key` headed by node `head`.
fn verify_node(n: &Node, key: u64, head: u64) -> Result<(), String> {
    let id = n.id;
    if n.key != key {
        return Err(format!("node {id} has key {}", n.key));
    }
    if n.head != head {
        return Err(format!("node {id} belongs to head {}, not {head}", n.head));
    }
    if n.check != mix(id) {
        return Err(format!("node {id} has checksum {:#x}", n.check));
    }
    if n.payload != id.to_string() {
        return Err(format!("node {id} has payload {:?}", n.payload.as_str()));
    }
    if n.flag.0 != id {
        return Err(format!("node {id} has drop flag {}", n.flag.0));
    }
    match flags().get(id as usize).map(|f| f.load(Relaxed)) {
        Some(0) => Ok(()),
        Some(k) => Err(format!("node {id} is reachable but was dropped {k} times")),
        None => Err(format!("node {id} was never allocated")),
    }
}

/// Checks the ring read from slot `key` and calls `each` with every node id
/// (head first).
fn verify_ring(
    g: &Guard,
    head: Gc<'_, Node>,
    key: u64,
    mut each: impl FnMut(u64),
) -> Result<(), String> {
    if head.head != head.id {
        return Err(format!(
            "the slot holds node {}, not a ring head (its head is {})",
            head.id, head.head
        ));
    }
    let mut cur = head;
    for step in 0..RING {
        verify_node(&cur, key, head.id)?;
        each(cur.id);
        cur = match cur.next.load(g) {
            Some(n) => n,
            None => return Err(format!("node {} (step {step}) has a null next", cur.id)),
        };
        if step + 1 < RING && Gc::ptr_eq(cur, head) {
            return Err(format!(
                "the ring of head {} closes after {} nodes",
                head.id,
                step + 1
            ));
        }
    }
    if !Gc::ptr_eq(cur, head) {
        return Err(format!(
            "the ring of head {} does not close after {RING} nodes (reached node {})",
            head.id, cur.id
        ));
    }
    Ok(())
}

/// Reads slot `i` and verifies its ring; panics naming the slot and the seed.
fn check_slot(g: &Guard, table: &Table, i: u64, seed: u64, each: impl FnMut(u64)) {
    let Some(head) = table.slots.get(g, i as usize) else {
        panic!("churn (seed {seed:#x}): slot {i} is empty");
    };
    if let Err(what) = verify_ring(g, head, i, each) {
        panic!("churn (seed {seed:#x}): slot {i} is corrupted: {what}");
    }
}

/// The mutators' progress, for the main thread's explicit collections.
struct Progress {
    state: Mutex<(u64, u64)>, // (operations done, mutators finished)
    cv: Condvar,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, (u64, u64)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, ops: u64) {
        self.lock().0 += ops;
        self.cv.notify_all();
    }
}

/// Marks the mutator finished (also when it panics), and sets `stop` if it
/// panicked, so the others end early.
struct Finished<'a> {
    progress: &'a Progress,
    stop: &'a AtomicBool,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stop.store(true, Relaxed);
        }
        self.progress.lock().1 += 1;
        self.progress.cv.notify_all();
    }
}

/// What one mutator did: (reads, whole rings replaced, tails replaced).
type Counts = (u64, u64, u64);

fn mutator(table: &Table, cfg: &Config, t: u64, progress: &Progress, stop: &AtomicBool) -> Counts {
    let _finished = Finished { progress, stop };
    let mut rng = Rng::new(cfg.seed, t);
    let ops = cfg.ops_of_thread(t);
    let (mut reads, mut rings, mut tails) = (0, 0, 0);
    let mut g = tricolor::pin();
    let mut done = 0;
    while done < ops && !stop.load(Relaxed) {
        let n = BATCH.min(ops - done);
        for _ in 0..n {
            let i = rng.below(cfg.entries);
            if rng.below(TAIL_ONE_IN) == 0 {
                // Replace the tail of the current ring: an edge store into
                // an old object; the old tail becomes garbage.
                let head = table
                    .slots
                    .get(&g, i as usize)
                    .unwrap_or_else(|| panic!("churn (seed {:#x}): slot {i} is empty", cfg.seed));
                let tail = build_tail(&g, head);
                head.next.store(&g, Some(tail));
                tails += 1;
            } else {
                table.slots.set(&g, i as usize, Some(build_ring(&g, i)));
                rings += 1;
            }
            if rng.below(VERIFY_ONE_IN) == 0 {
                check_slot(&g, table, rng.below(cfg.entries), cfg.seed, |_| {});
                reads += 1;
            }
        }
        done += n;
        g.repin();
        progress.add(n);
    }
    drop(g);
    (reads, rings, tails)
}

/// Runs the workload with `cfg`; panics (naming the seed) on any violation.
/// Call it at most once per process.
pub fn run(cfg: &Config) -> Summary {
    assert!(
        cfg.entries > 0 && cfg.threads > 0,
        "churn: empty config {cfg:?}"
    );
    let seed = cfg.seed;
    let capacity = (cfg.entries + cfg.ops) * RING;
    FLAGS
        .set((0..capacity).map(|_| AtomicU8::new(0)).collect())
        .unwrap_or_else(|_| panic!("churn: run() called twice in one process"));
    tricolor::set_gc_percent(cfg.gc_percent);

    // The table is allocated empty, then filled (a GcVec can only be used
    // once the object holding it is on the heap).
    let t0 = Instant::now();
    let table: Root<Table> = Root::new(Table {
        slots: GcVec::new(),
    });
    {
        let mut g = tricolor::pin();
        for i in 0..cfg.entries {
            table.slots.push(&g, Some(build_ring(&g, i)));
            if i % BATCH == BATCH - 1 {
                g.repin();
            }
        }
    }
    let fill = t0.elapsed();

    // The churn. This thread holds no guard: it makes the explicit
    // collections, each once the mutators are past the next milestone.
    let before = tricolor::read_mem_stats();
    let t1 = Instant::now();
    let progress = Progress {
        state: Mutex::new((0, 0)),
        cv: Condvar::new(),
    };
    let stop = AtomicBool::new(false);
    let counts: Vec<Counts> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let (table, progress, stop) = (&*table, &progress, &stop);
                std::thread::Builder::new()
                    .name(format!("churn-{t}"))
                    .spawn_scoped(s, move || mutator(table, cfg, t, progress, stop))
                    .unwrap_or_else(|e| panic!("churn: cannot start mutator {t}: {e}"))
            })
            .collect();
        for k in 1..=cfg.explicit_gcs {
            let milestone = cfg.ops * k / (cfg.explicit_gcs + 1);
            {
                let mut p = progress.lock();
                while p.0 < milestone && p.1 < cfg.threads {
                    p = progress.cv.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            }
            if stop.load(Relaxed) {
                break; // a mutator panicked: the join below reports it
            }
            tricolor::gc();
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let churn = t1.elapsed();
    let after = tricolor::read_mem_stats();
    let cycles = after.num_gc - before.num_gc;
    let forced_cycles = after.num_forced_gc - before.num_forced_gc;
    assert!(
        u64::from(forced_cycles) >= cfg.explicit_gcs,
        "churn (seed {seed:#x}): {} explicit gc() calls but {forced_cycles} forced cycles",
        cfg.explicit_gcs
    );

    // Quiesced: verify every slot, recording the live ids.
    let t2 = Instant::now();
    let allocated = NEXT_ID.load(Relaxed);
    let mut live_ids = vec![false; allocated as usize];
    let mut live = 0u64;
    {
        let mut g = tricolor::pin();
        for i in 0..cfg.entries {
            check_slot(&g, &table, i, seed, |id| {
                assert!(
                    !std::mem::replace(&mut live_ids[id as usize], true),
                    "churn (seed {seed:#x}): node {id} is in two rings"
                );
                live += 1;
            });
            if i % 1024 == 1023 {
                g.repin();
            }
        }
    }
    assert_eq!(live, cfg.entries * RING);

    tricolor::gc();
    assert!(
        !BAD_DROP.load(Relaxed),
        "churn (seed {seed:#x}): a Drop saw an id that was never allocated"
    );
    let (mut twice, mut early, mut leaked) = (Vec::new(), Vec::new(), Vec::new());
    let mut dropped = 0;
    for (id, flag) in flags()[..allocated as usize].iter().enumerate() {
        let n = flag.load(Relaxed);
        dropped += u64::from(n);
        if n > 1 {
            twice.push(id);
        } else if live_ids[id] && n != 0 {
            early.push(id);
        } else if !live_ids[id] && n == 0 {
            leaked.push(id);
        }
    }
    if !(twice.is_empty() && early.is_empty() && leaked.is_empty()) {
        let first = |v: &Vec<usize>| format!("{} (first: {:?})", v.len(), &v[..v.len().min(10)]);
        panic!(
            "churn (seed {seed:#x}): after gc(): nodes dropped more than once: {}; \
             live nodes dropped: {}; replaced nodes not dropped: {}",
            first(&twice),
            first(&early),
            first(&leaked)
        );
    }
    assert_eq!(
        dropped,
        allocated - live,
        "churn (seed {seed:#x}): drops != allocated - live"
    );
    assert_eq!(
        DROPS.load(Relaxed),
        dropped,
        "churn (seed {seed:#x}): the drop counter disagrees with the flags"
    );
    let heap_objects = tricolor::read_mem_stats().heap_objects;
    assert_eq!(
        heap_objects,
        live + 2,
        "churn (seed {seed:#x}): heap_objects after gc() is not the live nodes plus the table and its buffer"
    );

    // Everything goes.
    drop(table);
    tricolor::gc();
    let stats = tricolor::read_mem_stats();
    assert_eq!(
        DROPS.load(Relaxed),
        allocated,
        "churn (seed {seed:#x}): not everything dropped once the table is gone"
    );
    if let Some(id) = flags()[..allocated as usize]
        .iter()
        .position(|f| f.load(Relaxed) != 1)
    {
        panic!(
            "churn (seed {seed:#x}): node {id} dropped {} times in all",
            flags()[id].load(Relaxed)
        );
    }
    assert_eq!(
        stats.heap_objects, 0,
        "churn (seed {seed:#x}): objects left on an empty heap"
    );
    let check = t2.elapsed();

    Summary {
        allocated,
        live,
        reads: counts.iter().map(|c| c.0).sum(),
        replaced_rings: counts.iter().map(|c| c.1).sum(),
        replaced_tails: counts.iter().map(|c| c.2).sum(),
        cycles,
        forced_cycles,
        total_cycles: stats.num_gc,
        fill,
        churn,
        check,
    }
}
