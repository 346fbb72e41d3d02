//! The collector: concurrent marking, termination by handshake rounds, one
//! stop of a few microseconds, concurrent sweeping.
//!
//! A background thread (`tricolor-gc`, started on first use) runs cycles
//! when the heap reaches its goal (an allocating thread wakes it) or when
//! `gc()` asks. A cycle, in steps (DESIGN.md section 4; the argument for
//! each step is in docs/design/core-api.md, "The collector as built"):
//! 1. Arm: set `MARKING` (barriers shade), then handshake: every thread
//!    passes a quiescent point, so none can still be running a store that
//!    read "barrier off", and none holds a pointer it loaded before the arm.
//!    Then set `BLACK`: new objects are born marked (INV-BLACK).
//! 2. Roots: mark every root slot, while mutators run (roots created or
//!    dropped meanwhile are shaded by the root barrier).
//! 3. Drain the grey stack (an explicit work list with a prefetch FIFO,
//!    never recursion), taking in the grey buffers that mutators publish at
//!    quiescent points. With fewer than four CPUs the collector thread is
//!    Go's fractional worker: it marks in 0.5 ms bursts within its share of
//!    a CPU while every CPU has a pinned mutator ([`fractional_rest`]).
//! 4. Terminate ([`terminate`]): handshake rounds until one is clean (no
//!    thread shaded anything that needs scanning, nothing was published).
//! 5. Stop the world for a few microseconds: release the thread caches,
//!    disarm, start a new sweep generation, restart. (A stop that cannot
//!    complete within a bounded wait is undone and retried, so a pinned
//!    thread waiting for another never deadlocks the two.)
//! 6. Sweep ([`crate::sweep`]), concurrently with mutators that sweep too
//!    when they need a span; `Drop`s of dead values run here, on this
//!    thread (INV-SWEEP: only unmarked objects are freed; panics are caught
//!    and reported). Then pace the next cycle.
//!
//! Marking sets bits with `fetch_or` (mutators shade concurrently); an
//! object is pushed by whoever set its bit, so it is scanned once.
//! While user `Drop` code runs (step 6), the collector thread's
//! `IN_COLLECTOR` flag makes any use of the heap panic with a clear message
//! (INV-NODROP: a `Drop` cannot get a guard, so it cannot read an edge).
//!
//! Shared state: `GRAY` (a lock-free stack: mutators push buffers at
//! quiescent points and when one fills, the collector takes them all); each thread's `dirty` flag (the thread sets it, SeqCst,
//! when it shades; the collector clears and reads it around a round);
//! `CONTROL` (mutex + condvar: cycle requests and completions, for `gc()`
//! and the worker).

use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Condvar, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::heap::{self, meta_of, slot_index};
use crate::object::header;
use crate::pacer;
use crate::stats::CYCLES;
use crate::thread::{self, ThreadState, BLACK, FLAGS, IN_COLLECTOR, MARKING, THREADS};
use crate::trace::{Mode, Tracer};
use crate::Guard;

/// Held for a whole cycle; holds the grey stack between cycles (its memory
/// is reused).
static CYCLE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Sets the mark bit of the object at value pointer `v`. `None` if it was
/// already marked; otherwise whether it must be scanned (not noscan).
#[inline(always)]
fn set_mark(v: usize) -> Option<bool> {
    // SAFETY: INV-HEAPPTR: `v` is a value pointer handed out by the allocator
    // (edges and roots only ever hold those).
    let m = unsafe { meta_of(v) };
    let i = slot_index(m, v);
    let w = &m.mark_bits[i >> 6];
    let bit = 1u64 << (i & 63);
    if w.load(Relaxed) & bit != 0 || w.fetch_or(bit, Relaxed) & bit != 0 {
        return None;
    }
    Some(!m.noscan())
}

/// Marks the object at value pointer `v`; queues it if it must be scanned.
#[inline(always)]
pub(crate) fn mark(t: &mut Tracer, v: usize) {
    debug_assert!(t.mode == Mode::Mark);
    if set_mark(v) == Some(true) {
        t.stack.push(v);
    }
}

/// Marks a freshly allocated object (INV-BLACK: born black while marking).
#[inline]
pub(crate) fn mark_new(v: usize) {
    let _ = set_mark(v);
}

/// Shades `v` (if non-null) for a mutator: marks it and queues it in the
/// thread's grey buffer.
#[inline]
pub(crate) fn shade(ts: &ThreadState, v: usize) {
    if v != 0 && set_mark(v) == Some(true) {
        ts.push_gray(v);
    }
}

/// The write barrier (INV-BARRIER): while marking, shade the old and the
/// new target of an edge store. Otherwise a relaxed load and a branch.
#[inline(always)]
pub(crate) fn write_barrier(g: &Guard, old: usize, new: usize) {
    if thread::marking() {
        barrier_slow(g.ts(), old, new);
    }
}

#[cold]
#[inline(never)]
fn barrier_slow(ts: &ThreadState, old: usize, new: usize) {
    shade(ts, old);
    shade(ts, new);
}

/// Capacity of a mutator's grey buffer: it is published when full. 112
/// entries (896 bytes) keep its allocation in glibc's small-request range:
/// a request of 1 KiB or more makes `malloc` first consolidate every free
/// fast-bin chunk of the arena, and right after a sweep freed millions of
/// `String`s that took a mutator's quiescent point 9-31 ms (measured on
/// `churn`, when publishing allocated 2 KiB buffers).
pub(crate) const GRAY_BUF: usize = 112;

/// One published grey buffer: a node of the [`GRAY`] stack.
struct GrayNode {
    next: *mut GrayNode,
    objects: Vec<usize>,
}

// SAFETY: `next` is a link of the `GRAY` stack, owned with the node: a
// node is reachable from one thread at a time (the publisher until its
// CAS, then the stack, then the collector that swapped the stack out),
// and a node in `FREE_NODES` has `next` null.
unsafe impl Send for GrayNode {}

/// Objects shaded by mutators, published at their quiescent points: a
/// lock-free (Treiber) stack of buffers. Mutators push with a CAS; the
/// collector takes the whole stack with one swap and never pops a single
/// node, so there is no ABA problem and no node is freed while another
/// thread can read it. A lock here made a mutator's quiescent point wait
/// whenever the collector was preempted while holding it (measured on
/// `churn`: repins of 1.7 and 2.5 ms spent in the lock).
static GRAY: AtomicPtr<GrayNode> = AtomicPtr::new(std::ptr::null_mut());

/// Drained nodes, each with an empty buffer of capacity [`GRAY_BUF`], for
/// mutators to publish with. A mutator only `try_lock`s it (it never
/// waits: on contention it allocates a node), the collector returns nodes
/// under the lock.
#[allow(
    clippy::vec_box,
    reason = "the boxes are the nodes, reused as they are"
)]
static FREE_NODES: Mutex<Vec<Box<GrayNode>>> = Mutex::new(Vec::new());
/// Most nodes kept in [`FREE_NODES`].
const FREE_NODES_MAX: usize = 4096;

/// Publishes (and empties) a mutator's grey buffer, which keeps its
/// capacity. Never waits.
pub(crate) fn publish_gray(buf: &mut Vec<usize>) {
    let mut node = FREE_NODES
        .try_lock()
        .ok()
        .and_then(|mut f| f.pop())
        .unwrap_or_else(|| {
            Box::new(GrayNode {
                next: std::ptr::null_mut(),
                objects: Vec::with_capacity(GRAY_BUF),
            })
        });
    std::mem::swap(&mut node.objects, buf);
    let node = Box::into_raw(node);
    let mut head = GRAY.load(Relaxed);
    loop {
        // SAFETY: `node` is ours until the CAS below publishes it.
        unsafe { (*node).next = head };
        // SeqCst: the push is ordered before this thread's next `state`
        // swap, which a handshake reads (see `terminate`).
        match GRAY.compare_exchange_weak(head, node, SeqCst, Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// Moves every published grey object onto `into`.
fn take_gray_published(into: &mut Vec<usize>) {
    let mut p = GRAY.swap(std::ptr::null_mut(), SeqCst);
    let mut free = Vec::new();
    while !p.is_null() {
        // SAFETY: the swap took the whole stack: every node on it was
        // made by `Box::into_raw` in `publish_gray` and is now ours alone.
        let mut node = unsafe { Box::from_raw(p) };
        into.append(&mut node.objects);
        p = std::mem::replace(&mut node.next, std::ptr::null_mut());
        if node.objects.capacity() == GRAY_BUF {
            free.push(node);
        }
    }
    if !free.is_empty() {
        let mut f = FREE_NODES.lock().unwrap_or_else(|e| e.into_inner());
        let room = FREE_NODES_MAX.saturating_sub(f.len());
        free.truncate(room);
        f.append(&mut free);
    }
}

/// Whether some grey buffer is published and not taken.
fn gray_published() -> bool {
    !GRAY.load(SeqCst).is_null()
}

/// Drains the grey stack, the shared work pool and the published grey
/// buffers until all are empty and no helper (mark worker or assist) holds
/// work taken from the pool.
fn drain_all(t: &mut Tracer) {
    loop {
        drain(t, u64::MAX);
        if let Some(c) = POOL.take(false, false) {
            POOL.unpack(c, &mut t.stack);
            continue;
        }
        if gray_published() {
            take_gray_published(&mut t.stack);
            continue;
        }
        if POOL.wait_idle() {
            return;
        }
    }
}

/// Grey objects per chunk of the shared work pool.
const CHUNK: usize = 256;

/// The shared work pool: chunks of grey objects that mark workers and
/// assists take, and that whoever marks gives to when its own stack is
/// large and the pool is low (work sharing, as Go's `work.full`).
///
/// `busy` counts helpers (workers, assists) holding work taken from the
/// pool; they give back what they do not finish before decrementing it.
/// So "pool empty, then `busy` = 0, then pool still empty" means no grey
/// object is held by any helper (`wait_idle`).
struct Pool {
    chunks: Mutex<Work>,
    /// Entries in `chunks` (read without the lock to decide whether to share).
    len: AtomicUsize,
    busy: AtomicUsize,
    /// Signalled when chunks arrive or a helper finishes.
    changed: Condvar,
}

/// The pool's work: chunks of grey objects, and single large grey objects
/// that an assist put back rather than scan (only the collector thread and
/// mark workers take those, see [`ASSIST_MAX_OBJECT`]).
struct Work {
    chunks: Vec<Vec<usize>>,
    big: Vec<usize>,
    /// Emptied chunk buffers, reused by whoever makes a chunk: an assist
    /// runs on a mutator, and a `malloc` of 1 KiB or more there can take
    /// tens of milliseconds (see [`GRAY_BUF`]; measured: assists of
    /// 17-54 ms, almost all of it in the 2 KiB allocation of their stack).
    spares: Vec<Vec<usize>>,
}

impl Work {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.big.is_empty()
    }

    fn len(&self) -> usize {
        self.chunks.len() + self.big.len()
    }

    /// A chunk of work; for an assist, never a large object.
    fn pop(&mut self, for_assist: bool) -> Option<Vec<usize>> {
        if !for_assist {
            if let Some(v) = self.big.pop() {
                return Some(vec![v]);
            }
        }
        self.chunks.pop()
    }
}

/// Most spare chunk buffers the pool keeps.
const SPARES_MAX: usize = 64;

/// Largest object (bytes) an assist scans. Scanning an object cannot be
/// cut short, and a large array of edges (a `GcVec` of a million slots:
/// 8 MiB of edges, each a likely cache miss) takes tens of milliseconds,
/// which an allocating thread would see as a pause: it goes back to the
/// pool for the background workers. (Go splits such objects into 128 KiB
/// oblets instead; this is the same bound for assists.)
const ASSIST_MAX_OBJECT: u64 = 128 << 10;

static POOL: Pool = Pool {
    chunks: Mutex::new(Work {
        chunks: Vec::new(),
        big: Vec::new(),
        spares: Vec::new(),
    }),
    len: AtomicUsize::new(0),
    busy: AtomicUsize::new(0),
    changed: Condvar::new(),
};

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Work> {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a chunk; a helper (`as_helper`) is counted busy until `done`.
    /// An assist (`for_assist`) takes no large object.
    fn take(&self, as_helper: bool, for_assist: bool) -> Option<Vec<usize>> {
        if self.len.load(Relaxed) == 0 {
            return None;
        }
        let mut c = self.lock();
        let chunk = c.pop(for_assist)?;
        self.len.store(c.len(), Relaxed);
        if as_helper {
            self.busy.fetch_add(1, SeqCst);
        }
        Some(chunk)
    }

    fn put(&self, chunk: Vec<usize>) {
        let mut c = self.lock();
        c.chunks.push(chunk);
        self.len.store(c.len(), Relaxed);
        self.changed.notify_all();
    }

    /// Gives back a large grey object an assist will not scan.
    fn put_big(&self, v: usize) {
        let mut c = self.lock();
        c.big.push(v);
        self.len.store(c.len(), Relaxed);
        self.changed.notify_all();
    }

    /// A helper is done: gives back what is left of its work, then stops
    /// counting as busy.
    fn done(&self, leftover: &mut Vec<usize>) {
        if !leftover.is_empty() {
            let mut chunk = self.spare();
            chunk.append(leftover);
            self.put(chunk);
        }
        let _c = self.lock();
        self.busy.fetch_sub(1, SeqCst);
        self.changed.notify_all();
    }

    /// Waits until helpers are idle; true if the pool is then empty too.
    fn wait_idle(&self) -> bool {
        let mut c = self.lock();
        while c.is_empty() && self.busy.load(SeqCst) > 0 {
            c = self.changed.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        c.is_empty()
    }

    /// Moves the top of a large stack to the pool when the pool is low.
    #[inline]
    fn share(&self, stack: &mut Vec<usize>) {
        if stack.len() >= 2 * CHUNK && self.len.load(Relaxed) < 2 {
            let from = stack.len() - CHUNK;
            let mut chunk = self.spare();
            chunk.extend_from_slice(&stack[from..]);
            stack.truncate(from);
            self.put(chunk);
        }
    }

    /// An empty chunk buffer: a spare one if any (allocated outside the
    /// lock otherwise).
    fn spare(&self) -> Vec<usize> {
        let spare = self.lock().spares.pop();
        spare.unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Moves a taken chunk's objects onto `stack` and keeps its buffer as
    /// a spare (`stack` keeps its own capacity: no allocation once it is
    /// large enough).
    fn unpack(&self, mut chunk: Vec<usize>, stack: &mut Vec<usize>) {
        stack.extend_from_slice(&chunk);
        chunk.clear();
        let mut c = self.lock();
        if c.spares.len() < SPARES_MAX {
            c.spares.push(chunk);
        }
    }
}

/// Total scan work (bytes scanned) this cycle, by everyone; `pacer` reads it.
static SCAN_WORK: AtomicU64 = AtomicU64::new(0);

/// Scan work between two progress reports to the pacer.
const REPORT_BYTES: u64 = 256 << 10;

/// Reports scan work done since `t.reported` (revises the assist ratio).
fn report_progress(t: &mut Tracer, background: bool) {
    let delta = t.scanned - t.reported;
    if delta == 0 {
        return;
    }
    t.reported = t.scanned;
    let total = SCAN_WORK.fetch_add(delta, Relaxed) + delta;
    pacer::mark_progress(total, if background { delta } else { 0 });
}

/// Background mark workers beyond the collector thread (Go's dedicated
/// workers: 25% of the CPUs; `TRICOLOR_DEBUG=gcmarkworkers=N` overrides).
fn extra_workers() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        crate::options::gcmarkworkers().unwrap_or_else(|| {
            crate::pacer_model::worker_plan(pacer::procs())
                .0
                .saturating_sub(1) as usize
        })
    })
}

/// The collector thread's share of one CPU while it marks, when it is Go's
/// *fractional* worker: with fewer than four CPUs, Go's 25% background goal
/// is less than one whole CPU (`worker_plan`: no dedicated worker, and a
/// fractional goal per CPU), e.g. half a CPU on two. `None`: it marks
/// full-time (a dedicated worker).
fn fractional_share() -> Option<f64> {
    static SHARE: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *SHARE.get_or_init(|| {
        if crate::options::gcmarkworkers().is_some() {
            return None;
        }
        fractional_share_for(pacer::procs())
    })
}

/// [`fractional_share`] on `procs` CPUs.
fn fractional_share_for(procs: u32) -> Option<f64> {
    let (dedicated, fractional) = crate::pacer_model::worker_plan(procs);
    (dedicated == 0).then(|| (fractional * f64::from(procs.max(1))).clamp(0.05, 1.0))
}

/// How long the fractional worker marks before it checks its share.
const FRACTIONAL_BURST: std::time::Duration = std::time::Duration::from_micros(500);

thread_local! {
    /// When the fractional worker's current burst of marking began.
    static BURST: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Called by background marking every [`CHUNK`] objects. As Go's
/// fractional worker, the collector thread marks in bursts of
/// [`FRACTIONAL_BURST`] and then sleeps long enough to keep to its share of
/// a CPU — but only while at least as many mutators are pinned as there are
/// CPUs: with a CPU to spare it marks on (Go's idle worker), and also while
/// the memory limit sets the heap goal (a slower mark would take the heap
/// past it; measured: 1.3-1.6x a 256 MiB limit instead of 1.1x).
///
/// Why: with every CPU busy, a collector that marks without pause takes a
/// mutator's CPU for a whole scheduler slice (4 ms here) at each tick; in
/// bursts it gives it back after 0.5 ms.
#[inline]
fn fractional_rest() {
    if let Some(share) = fractional_share() {
        fractional_rest_slow(share);
    }
}

#[cold]
fn fractional_rest_slow(share: f64) {
    let now = Instant::now();
    let start = BURST.with(|b| {
        let start = b.get().unwrap_or(now);
        b.set(Some(start));
        start
    });
    let ran = now - start;
    if ran < FRACTIONAL_BURST || pacer::memory_limited() {
        return;
    }
    // Never in a stop (no mutator runs; and the collector holds `THREADS`
    // there, in the stop-the-world mode while it marks): `try_lock` fails
    // then, as when anyone else holds the list.
    let pinned = match THREADS.try_lock() {
        Ok(threads) if thread::FLAGS.load(Relaxed) & thread::STW == 0 => {
            threads.iter().filter(|t| t.pinned()).count()
        }
        _ => 0,
    };
    if pinned >= pacer::procs() as usize {
        std::thread::sleep(ran.mul_f64((1.0 - share) / share).min(FRACTIONAL_BURST * 4));
    }
    BURST.with(|b| b.set(Some(Instant::now())));
}

/// Whether mark workers may take work (between a cycle's roots and its stop).
static WORKERS_ON: AtomicBool = AtomicBool::new(false);

/// Starts the extra mark workers once.
fn ensure_mark_workers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for i in 0..extra_workers() {
            std::thread::Builder::new()
                .name(format!("tricolor-mark-{i}"))
                .spawn(mark_worker)
                .expect("tricolor: cannot start a mark worker thread");
        }
    });
}

/// A mark worker: takes chunks from the pool while marking is on, scans
/// them (sharing back when its stack grows), and sleeps otherwise. It is
/// not a mutator: it never pins, and the objects it scans are marked, so
/// none is freed before the cycle's stop, which waits for it (`wait_idle`).
fn mark_worker() {
    let mut t = Tracer::new(Mode::Mark);
    loop {
        let chunk = {
            let mut c = POOL.lock();
            loop {
                if WORKERS_ON.load(SeqCst) {
                    if let Some(chunk) = c.pop(false) {
                        POOL.len.store(c.len(), Relaxed);
                        POOL.busy.fetch_add(1, SeqCst);
                        break chunk;
                    }
                }
                c = POOL.changed.wait(c).unwrap_or_else(|e| e.into_inner());
            }
        };
        let cpu = crate::cpu::ThreadTimer::start();
        POOL.unpack(chunk, &mut t.stack);
        loop {
            drain(&mut t, u64::MAX);
            match POOL.take(false, false) {
                Some(c) => POOL.unpack(c, &mut t.stack),
                None => break,
            }
        }
        report_progress(&mut t, true);
        // Before `done`: once the collector sees the pool idle, this
        // batch's time is counted.
        crate::cpu::add_worker(cpu.elapsed());
        POOL.done(&mut t.stack);
    }
}

/// A mutator's assist: scan work it owes for allocating while marking
/// (Go's `gcAssistAlloc`), taken from the shared pool. Never waits: with no
/// work in the pool it returns (a pinned thread never waits for the
/// collector). Runs in the allocation slow path; `Trace` implementations
/// never allocate or block (INV-TRACE), so scanning cannot re-enter it.
///
/// Returns the time the assist took (ns, wall clock; 0 if it found no
/// work), which it has also added to the assist CPU class.
#[cold]
pub(crate) fn assist(work: u64) -> u64 {
    let Some(chunk) = POOL.take(true, true) else {
        return 0;
    };
    // Wall time, from the vDSO clock: reading this thread's CPU clock is a
    // system call whose scheduler bookkeeping (`update_curr`) often ends the
    // thread's time slice right there, so on a busy machine an assist that
    // scanned for tens of microseconds lasted a scheduler tick (measured on
    // `churn`: 2-5 ms inside the clock read, 26-86 us of CPU). Go times its
    // assists with `nanotime` too.
    let start = Instant::now();
    let mut t = Tracer::new(Mode::Mark);
    // This thread's stack from its last assist, with its capacity.
    t.stack = ASSIST_STACK.try_with(Cell::take).unwrap_or_default();
    POOL.unpack(chunk, &mut t.stack);
    loop {
        drain(&mut t, work);
        if t.scanned >= work {
            break;
        }
        match POOL.take(false, true) {
            Some(c) => POOL.unpack(c, &mut t.stack),
            None => break,
        }
    }
    report_progress(&mut t, false);
    // Before `done`, as the mark workers do.
    let ns = start.elapsed().as_nanos() as u64;
    crate::cpu::add_assist(ns);
    POOL.done(&mut t.stack);
    let stack = std::mem::take(&mut t.stack);
    let _ = ASSIST_STACK.try_with(|s| s.set(stack));
    // The assist marked objects other threads may now load: the termination
    // round that sees this thread's next quiescent point must not pass.
    thread::set_dirty();
    ns
}

thread_local! {
    /// A mutator's assist stack, kept between assists for its capacity
    /// (see `Work::spares`).
    static ASSIST_STACK: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
}

/// Objects in flight between prefetch and scan.
const PREFETCH: usize = 8;

/// Scans grey objects until none is left or `t.scanned` reaches `budget`
/// (what is not scanned then stays on the stack). With a finite budget (an
/// assist) it also stops when the collector waits for threads.
///
/// Popping an object and reading its header right away stalls on a cache
/// miss for nearly every object of a large heap. So popped objects pass
/// through a small FIFO: the header is prefetched on entry and read
/// `PREFETCH` objects later (Cher, Hosking and Vijaykumar's prefetch-on-grey
/// buffer, as in Boehm's collector). Every `CHUNK` objects the stack is
/// offered to the shared pool and progress is reported to the pacer.
fn drain(t: &mut Tracer, budget: u64) {
    let mut ring = [0usize; PREFETCH];
    let (mut head, mut count) = (0usize, 0usize);
    let mut n = 0usize;
    loop {
        while count < PREFETCH {
            let Some(v) = t.stack.pop() else { break };
            prefetch(v - 8);
            ring[(head + count) % PREFETCH] = v;
            count += 1;
        }
        if count == 0 {
            return;
        }
        let v = ring[head];
        head = (head + 1) % PREFETCH;
        count -= 1;
        // SAFETY: `v` was marked, so it is an allocated object (INV-HEAPPTR).
        let size = u64::from(unsafe { meta_of(v) }.elem_size.load(Relaxed));
        if budget != u64::MAX && size > ASSIST_MAX_OBJECT {
            // An assist leaves a large object to the background workers.
            POOL.put_big(v);
            continue;
        }
        // SAFETY: `v` was marked, so it is an allocated object whose header
        // was written at allocation (INV-HEAPPTR).
        let info = unsafe { header(v) };
        // SAFETY: `v` is a live object of the type `info` describes.
        unsafe { (info.trace)(v as *const u8, t) };
        t.scanned += size;
        n += 1;
        if n & (CHUNK - 1) == 0 {
            if budget == u64::MAX {
                fractional_rest();
            }
            POOL.share(&mut t.stack);
            if t.scanned - t.reported >= REPORT_BYTES {
                // Assists (a finite budget) earn no background credit.
                report_progress(t, budget == u64::MAX);
            }
            // An assist (a finite budget) also yields to a handshake or a
            // stop: its thread is pinned, so scanning on would hold up the
            // collector, and every other thread with it (Go's assists are
            // preemptible for the same reason). The debt left is forgiven.
            if t.scanned >= budget
                || (budget != u64::MAX
                    && thread::FLAGS.load(Relaxed) & (thread::STW | thread::WAITING) != 0)
            {
                for i in 0..count {
                    t.stack.push(ring[(head + i) % PREFETCH]);
                }
                return;
            }
        }
    }
}

#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Why a cycle runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The heap reached its goal.
    Heap,
    /// `gc()`.
    Forced,
}

/// Cycle requests and completions.
struct Control {
    requested: u64,
    completed: u64,
    running: bool,
}

static CONTROL: Mutex<Control> = Mutex::new(Control {
    requested: 0,
    completed: 0,
    running: false,
});
static CONTROL_CV: Condvar = Condvar::new();

fn control() -> std::sync::MutexGuard<'static, Control> {
    CONTROL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the collector thread once.
fn ensure_worker() {
    static WORKER: std::sync::Once = std::sync::Once::new();
    WORKER.call_once(|| {
        std::thread::Builder::new()
            .name("tricolor-gc".into())
            .spawn(worker)
            .expect("tricolor: cannot start the collector thread");
    });
}

/// Wakes the collector: the heap reached its goal (`GC_PENDING` is set).
#[cold]
pub(crate) fn wake() {
    ensure_worker();
    let _c = control();
    CONTROL_CV.notify_all();
}

fn worker() {
    loop {
        let reason = {
            let mut c = control();
            let reason = loop {
                if c.requested > c.completed {
                    break Reason::Forced;
                }
                if pacer::GC_PENDING.load(Relaxed) {
                    break Reason::Heap;
                }
                c = CONTROL_CV.wait(c).unwrap_or_else(|e| e.into_inner());
            };
            c.running = true;
            reason
        };
        cycle(reason);
        let mut c = control();
        c.completed += 1;
        c.running = false;
        CONTROL_CV.notify_all();
    }
}

/// Runs a garbage collection and blocks until it is complete, sweep and
/// `Drop`s included (Go's `runtime.GC`): statistics read right after it
/// are exact. If a cycle is running, waits for it and then runs a full one.
///
/// # Panics
/// If the calling thread holds a guard: a cycle needs every thread to pass
/// a quiescent point, so it could never finish.
pub fn gc() {
    crate::options::init();
    if IN_COLLECTOR.with(|c| c.get()) {
        panic!("tricolor::gc() called from a `Drop` run by the collector");
    }
    if thread::is_pinned() {
        panic!(
            "tricolor::gc() called while this thread holds a Guard; drop every guard of the \
             thread first (a collection needs every thread at a quiescent point)"
        );
    }
    ensure_worker();
    let mut c = control();
    let target = c.completed + 1 + c.running as u64;
    c.requested = c.requested.max(target);
    CONTROL_CV.notify_all();
    while c.completed < target {
        c = CONTROL_CV.wait(c).unwrap_or_else(|e| e.into_inner());
    }
}

fn snapshot() -> Vec<std::sync::Arc<ThreadState>> {
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// One cycle, on the collector thread.
fn cycle(reason: Reason) {
    let mut stack = CYCLE.lock().unwrap_or_else(|e| e.into_inner());
    let threads = snapshot();
    if threads.iter().any(|t| t.exited.load(Relaxed) && t.pinned()) {
        warn_leaked_guard();
        pacer::GC_PENDING.store(false, Relaxed);
        return;
    }
    // The previous cycle swept every span before it returned (`sweep::finish`):
    // every mark bit is clear.
    let start = Instant::now();
    let cpu = CycleCpu::start();
    let before = pacer::HEAP_LIVE.load(Relaxed);
    BURST.with(|b| b.set(None));
    let collector_milli = fractional_share().map_or(1000, |s| (s * 1000.0) as u64);
    pacer::cycle_start(before, collector_milli + 1000 * extra_workers() as u64);
    SCAN_WORK.store(0, Relaxed);
    if crate::options::gcstoptheworld() {
        drop(threads);
        return cycle_stopped(reason, &mut stack, start, cpu, before);
    }

    // 1. Arm. The handshake's snapshot of the registry is taken after
    // `MARKING` is set: a thread that registers later takes the registry
    // lock after the flag was set, so its first pin reads it; a snapshot
    // taken before would miss a thread registering in between, whose
    // in-flight unbarriered store the handshake must wait out (found by the
    // loom model `registration_snapshot_after_arm_is_safe`).
    FLAGS.fetch_or(MARKING, SeqCst);
    thread::handshake(&snapshot());
    // Allocation turns black only now: before the handshake, a thread still
    // pinned with barriers off could store a white object into a black new
    // one, which no scan would ever look at (INV-BLACK).
    FLAGS.fetch_or(BLACK, SeqCst);

    // 2-3. Roots, concurrent drain (with the mark workers and assists),
    // termination by handshake rounds.
    let mut tracer = Tracer::new(Mode::Mark);
    tracer.stack = std::mem::take(&mut *stack);
    ensure_mark_workers();
    WORKERS_ON.store(true, SeqCst);
    crate::root::mark_roots(&mut tracer);
    let roots = Instant::now();
    let mut cpu = cpu.roots_done();
    terminate(&mut tracer);
    WORKERS_ON.store(false, SeqCst);
    pacer::mark_done();
    let mark_end = Instant::now();

    // 4. The stop: no marking work is left (a clean termination round
    // proved it); release the thread caches, disarm, start a new sweep
    // generation. A stop that does not complete in time is undone and
    // retried after another termination, with growing patience: a pinned
    // thread may be waiting (join, channel) for a thread that is blocked by
    // the stop in `pin`, and no stop could ever complete then.
    let mut patience = std::time::Duration::from_millis(2);
    let mut given_up_ns = 0u64;
    let (threads, stw) = loop {
        let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        // The pause starts with the request: from now on a thread that pins waits.
        let requested = Instant::now();
        cpu.mark_paused();
        if thread::try_stop_the_world(&threads, patience) {
            for t in threads.iter() {
                // SAFETY: the world is stopped: no mutator touches its grey buffer.
                unsafe { t.take_gray(&mut tracer.stack) };
            }
            take_gray_published(&mut tracer.stack);
            // Empty after a clean round (docs/design/core-api.md,
            // "Termination"), unless a weak upgrade shaded an object the
            // mark had not reached since (the keep-alive barrier): then the
            // world restarts and marking goes on, so the stop stays short.
            if tracer.stack.is_empty() {
                break (threads, requested);
            }
        }
        given_up_ns += requested.elapsed().as_nanos() as u64;
        cpu.mark_resumed();
        thread::start_the_world(threads);
        WORKERS_ON.store(true, SeqCst);
        terminate(&mut tracer);
        WORKERS_ON.store(false, SeqCst);
        patience = (patience * 2).min(std::time::Duration::from_millis(64));
    };
    if crate::options::gccheckmark() {
        checkmark();
    }
    // Marking is complete: clear weak pointers to unmarked objects and
    // queue their cleanups, before any sweep of the new generation.
    crate::specials::at_stop();
    for t in threads.iter() {
        // SAFETY: the world is stopped: no mutator touches its cache.
        unsafe { t.release_cache() };
    }
    FLAGS.fetch_and(!(MARKING | BLACK), SeqCst);
    crate::sweep::new_generation();
    let peak = pacer::HEAP_LIVE.load(Relaxed);
    let pause = stw.elapsed().as_nanos() as u64;
    thread::start_the_world(threads);
    let sweep_cpu = crate::cpu::ThreadTimer::start();
    crate::specials::hand_over();
    *stack = std::mem::take(&mut tracer.stack);

    let restarted = Instant::now();

    // 5. Sweep, concurrently with the mutators (which sweep too, when they
    // need a span). `Drop`s of dead values run here.
    IN_COLLECTOR.with(|c| c.set(true));
    let live = crate::sweep::finish();
    IN_COLLECTOR.with(|c| c.set(false));
    cpu.sweep_ns = sweep_cpu.elapsed();
    finish_cycle(
        reason,
        Times {
            start,
            roots,
            mark_end,
            restarted,
            pause,
            given_up_ns,
        },
        cpu,
        before,
        live,
        peak,
        tracer.scanned,
    );
}

/// When a cycle's phases ended.
struct Times {
    start: Instant,
    roots: Instant,
    mark_end: Instant,
    restarted: Instant,
    /// The stop, from request to restart.
    pause: u64,
    /// Stops given up and retried.
    given_up_ns: u64,
}

/// The collector thread's CPU time in a cycle (ns, its own CPU clock), and
/// the assist and mark-worker counters at the cycle's start (`crate::cpu`).
struct CycleCpu {
    /// Assist and mark-worker CPU time before the cycle.
    assist0: u64,
    workers0: u64,
    /// Arm handshake and roots.
    roots_ns: u64,
    /// Concurrent mark and termination after the roots.
    mark_ns: u64,
    /// From the restart to the end of the sweep.
    sweep_ns: u64,
    /// Start of the marking segment in progress (thread CPU clock), or
    /// `None` while the collector is stopping the world.
    segment: Option<u64>,
}

impl CycleCpu {
    fn start() -> Self {
        let (assist0, workers0) = crate::cpu::assist_and_workers();
        CycleCpu {
            assist0,
            workers0,
            roots_ns: 0,
            mark_ns: 0,
            sweep_ns: 0,
            segment: Some(crate::cpu::thread_cpu_ns()),
        }
    }

    /// The roots are marked: what the cycle took so far is phase 1.
    fn roots_done(mut self) -> Self {
        let now = crate::cpu::thread_cpu_ns();
        self.roots_ns = now.saturating_sub(self.segment.unwrap_or(now));
        self.segment = Some(now);
        self
    }

    /// A stop is requested: marking time ends (the stop counts as pause).
    fn mark_paused(&mut self) {
        if let Some(s) = self.segment.take() {
            self.mark_ns += crate::cpu::thread_cpu_ns().saturating_sub(s);
        }
    }

    /// A stop was given up: marking goes on.
    fn mark_resumed(&mut self) {
        self.segment = Some(crate::cpu::thread_cpu_ns());
    }
}

/// Paces the next cycle, records the cycle's statistics, wakes the scavenger.
fn finish_cycle(
    reason: Reason,
    t: Times,
    mut cpu: CycleCpu,
    before: u64,
    live: u64,
    peak: u64,
    scanned: u64,
) {
    let Times {
        start,
        roots,
        mark_end,
        restarted,
        pause,
        given_up_ns,
    } = t;
    let goal = pacer::NEXT_GC.load(Relaxed);
    cpu.mark_paused();
    let procs = u64::from(pacer::procs());
    let (assist1, workers1) = crate::cpu::assist_and_workers();
    let assist_ns = assist1.saturating_sub(cpu.assist0);
    let workers_ns = workers1.saturating_sub(cpu.workers0);
    crate::cpu::add_cycle(
        cpu.roots_ns + cpu.mark_ns,
        (pause + given_up_ns).saturating_mul(procs),
        cpu.sweep_ns,
    );
    let (sys, idle) = heap::page_stats();
    pacer::cycle_end(pacer::Measured {
        marked: live,
        peak,
        scanned,
        mark_ns: (mark_end - start).as_nanos() as u64,
        mapped: sys + heap::meta_bytes(),
        free: idle,
        forced: reason == Reason::Forced,
        pause_ns: pause + given_up_ns,
    });

    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = {
        let mut c = CYCLES.lock().unwrap_or_else(|e| e.into_inner());
        let i = c.num_gc as usize % 256;
        c.pause_ns[i] = pause;
        c.pause_end[i] = end;
        c.pause_total_ns += pause + given_up_ns;
        c.num_gc += 1;
        if reason == Reason::Forced {
            c.num_forced_gc += 1;
        }
        c.last_gc = end;
        c.heap_live = live;
        c.heap_scan = scanned;
        c.record_pause(pause);
        c.num_gc
    };
    crate::scavenger::wake();
    crate::pool::on_gc_cycle();
    let since = |t: Instant| {
        crate::stats::START
            .get()
            .map_or(0, |s| t.saturating_duration_since(*s).as_nanos() as u64)
    };
    crate::gctrace::cycle_done(&crate::gctrace::Cycle {
        n,
        start_ns: since(start),
        roots_ns: (roots - start).as_nanos() as u64,
        mark_ns: (mark_end - roots).as_nanos() as u64,
        stop_ns: pause,
        sweep_ns: restarted.elapsed().as_nanos() as u64,
        roots_cpu_ns: cpu.roots_ns,
        assist_cpu_ns: assist_ns,
        background_cpu_ns: cpu.mark_ns + workers_ns,
        stop_cpu_ns: pause.saturating_mul(procs),
        sweep_cpu_ns: cpu.sweep_ns,
        workers: 1 + extra_workers() as u64,
        heap_before: before,
        heap_peak: peak,
        heap_live: live,
        goal,
        forced: reason == Reason::Forced,
    });
}

/// Go's `GODEBUG=gcstoptheworld=1`: the whole cycle with the world stopped
/// (mark and sweep), the baseline the concurrent collector is measured
/// against. Marking needs no barrier then, and no thread holds a pointer.
///
/// CPU: the collector's time before the stop (handshakes between given-up
/// stops) is dedicated mark time; the stop, mark and sweep included, is
/// pause time (wall time times the CPUs).
fn cycle_stopped(
    reason: Reason,
    stack: &mut Vec<usize>,
    start: Instant,
    mut cpu: CycleCpu,
    before: u64,
) {
    let mut given_up_ns = 0u64;
    let (threads, stw) = loop {
        let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        let requested = Instant::now();
        cpu.mark_paused();
        if thread::try_stop_the_world(&threads, std::time::Duration::from_millis(2)) {
            break (threads, requested);
        }
        given_up_ns += requested.elapsed().as_nanos() as u64;
        cpu.mark_resumed();
        thread::start_the_world(threads);
        thread::handshake(&snapshot());
    };
    let mut tracer = Tracer::new(Mode::Mark);
    tracer.stack = std::mem::take(stack);
    crate::root::mark_roots(&mut tracer);
    let roots = Instant::now();
    drain_all(&mut tracer);
    pacer::mark_done();
    let mark_end = Instant::now();
    if crate::options::gccheckmark() {
        checkmark();
    }
    crate::specials::at_stop();
    for t in threads.iter() {
        // SAFETY: the world is stopped: no mutator touches its cache.
        unsafe { t.release_cache() };
    }
    crate::sweep::new_generation();
    let peak = pacer::HEAP_LIVE.load(Relaxed);
    IN_COLLECTOR.with(|c| c.set(true));
    let live = crate::sweep::finish();
    IN_COLLECTOR.with(|c| c.set(false));
    let pause = stw.elapsed().as_nanos() as u64;
    thread::start_the_world(threads);
    crate::specials::hand_over();
    *stack = std::mem::take(&mut tracer.stack);
    let restarted = Instant::now();
    finish_cycle(
        reason,
        Times {
            start,
            roots,
            mark_end,
            restarted,
            pause,
            given_up_ns,
        },
        cpu,
        before,
        live,
        peak,
        tracer.scanned,
    );
}

/// Ends marking without stopping anyone: drains, then runs handshake
/// rounds until one is clean, i.e. in a whole round no thread shaded an
/// object that must be scanned (its `dirty` flag stayed clear) and no grey
/// work was published. Then the heap is closed: every object reachable from
/// a root is marked and scanned, no thread holds a white object, and none
/// can obtain one (see docs/design/core-api.md, "Termination", for the
/// argument; the loom models check it).
fn terminate(t: &mut Tracer) {
    loop {
        drain_all(t);
        let threads = snapshot();
        for th in &threads {
            th.dirty.store(false, SeqCst);
        }
        thread::handshake(&threads);
        let clean = !gray_published() && !threads.iter().any(|th| th.dirty.load(SeqCst));
        if clean {
            return;
        }
    }
}

fn warn_leaked_guard() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "tricolor: a thread exited while holding a Guard (leaked with mem::forget or kept in \
             a thread-local); its pointers must stay valid, so garbage collection is disabled \
             from now on"
        )
    });
}

/// The checkmark (Go's `gccheckmark`, `TRICOLOR_DEBUG=gccheckmark=1`):
/// with the world stopped after the final drain, walk everything reachable
/// from the roots again (a separate visited set, no mark bits touched) and
/// return the first reachable object the concurrent mark left unmarked.
/// Every thread is unpinned then, so roots and edges are all there is.
fn checkmark_find_unmarked() -> Option<usize> {
    let mut roots = Vec::new();
    crate::root::for_each_root(|v| roots.push(v));
    checkmark_find_unmarked_from(roots)
}

/// The checkmark walk from the given objects. The caller keeps them and
/// everything they reach allocated (the world stopped, or a guard held).
pub(crate) fn checkmark_find_unmarked_from(roots: Vec<usize>) -> Option<usize> {
    let mut seen = std::collections::HashSet::new();
    let mut t = Tracer::new(Mode::Check);
    t.stack = roots;
    while let Some(v) = t.stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if !is_marked(v) {
            return Some(v);
        }
        // SAFETY: `v` is reachable, hence allocated (INV-HEAPPTR).
        if !unsafe { meta_of(v) }.noscan() {
            // SAFETY: as above; its header was written at allocation.
            let info = unsafe { header(v) };
            // SAFETY: `v` is a live object of the type `info` describes.
            unsafe { (info.trace)(v as *const u8, &mut t) };
        }
    }
    None
}

/// Runs the checkmark and aborts the process on a miss: freeing a reachable
/// object would be undefined behaviour, so nothing may continue.
fn checkmark() {
    if let Some(v) = checkmark_find_unmarked() {
        // SAFETY: `v` is reachable, hence allocated (INV-HEAPPTR).
        let name = (unsafe { header(v) }.name)();
        eprintln!(
            "tricolor: gccheckmark: the object at {v:#x} (a `{name}`) is reachable from a root \
             but the concurrent mark did not mark it; aborting before the sweep frees it"
        );
        std::process::abort();
    }
}

/// Marked state of the object at value pointer `v`.
pub(crate) fn is_marked(v: usize) -> bool {
    // SAFETY: callers pass value pointers of allocated objects (INV-HEAPPTR).
    let m = unsafe { meta_of(v) };
    let i = slot_index(m, v);
    m.mark_bits[i >> 6].load(Relaxed) & (1 << (i & 63)) != 0
}

#[cfg(test)]
mod tests {
    use super::fractional_share_for;

    /// Go's plan: below four CPUs the 25% goal is not a whole CPU, and the
    /// collector thread marks for that share of one; from four on it is a
    /// dedicated, full-time worker.
    #[test]
    fn fractional_share_follows_go_worker_plan() {
        assert_eq!(fractional_share_for(1), Some(0.25));
        assert_eq!(fractional_share_for(2), Some(0.5));
        assert_eq!(fractional_share_for(3), Some(0.75));
        assert_eq!(fractional_share_for(4), None);
        assert_eq!(fractional_share_for(8), None);
    }
}
