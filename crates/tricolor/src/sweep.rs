//! Lazy sweeping: sweep generations, span sets, the background sweeper and
//! sweeping on allocation (Go's `mgcsweep.go` and `mcentral.go`).
//!
//! What: after a cycle's marking ends, the dead objects of every span are
//! freed *after* the world restarts, by the collector thread in the
//! background and by allocating threads that need a span, instead of in
//! the stop.
//!
//! Sweep generations. `SWEEPGEN` grows by 2 at each cycle's stop (the only
//! time no thread is pinned and no thread cache holds a span). Every in-use
//! span that no cache holds is in exactly one *span set* of its class
//! ([`Central`]): partial (has free slots) or full, and swept or unswept.
//! Sets are indexed by the parity of `SWEEPGEN / 2`: the swept sets of one
//! generation are, unchanged, the unswept sets of the next, so the stop
//! turns every span into an unswept one by adding 2 to a counter (Go's
//! `partial[sweepgen/2%2]`). Large objects have one pair of sets.
//!
//! The algorithm, for a popped unswept span (the popper owns it
//! exclusively: INV-SWEEP's "only unmarked objects are freed" holds because
//! marking is over and no cache allocates from it):
//! 1. per bitmap word, `dead = alloc & !mark`; run the `Drop`s of the dead
//!    (background sweeper only); `alloc = mark; mark = 0`;
//! 2. no live object: return the span to the page heap; otherwise push it
//!    on the swept partial or full set of its class, or hand it to the
//!    allocating thread that swept it.
//!
//! Who sweeps: the collector thread, right after the stop, sweeps every
//! span (it runs the `Drop`s of dead values, with `IN_COLLECTOR` set so a
//! `Drop` that touches the heap panics clearly, INV-NODROP); an allocating
//! thread whose class has no swept partial span sweeps unswept spans of
//! its class first (a small budget), so the heap does not grow while garbage
//! waits to be swept. A mutator never runs user code in the allocator: a
//! span that may hold values with a `Drop` goes to [`DROP_QUEUE`] for the
//! collector thread. The cycle ends (and the next one may start) only when
//! every set of the old generation is empty and no sweep is in progress
//! ([`ACTIVE`]).
//!
//! Under the memory limit (issue 3). Queued `Drop` spans used to wait until
//! the collector thread had swept every class, while the thread that queued
//! them took a fresh span at once: during every sweep the heap grew by a few
//! spans per thread, and since random replacement leaves a live object in
//! nearly every span, those spans never became free again; with `churn`
//! (1M entries, 240 MiB limit) about 8 fresh spans per cycle, all taken
//! during the sweep and each after 16 queued `Drop` spans, ratcheted the
//! heap to 1.25x the limit. So now:
//! - the collector thread sweeps queued spans first: it checks the queue
//!   after every span it sweeps ([`QUEUED`]); a queued span stays listed
//!   until it is filed, and each span swept bumps `progress` and wakes
//!   waiters ([`SWEPT`]);
//! - a thread that would take a fresh span while the heap is at its memory
//!   limit (`pacer::at_memory_limit`) and the collector's sweep is in
//!   progress with spans of its class queued waits for them instead
//!   ([`wait_for_sweeper`], Go's "sweep before you grow"), counted as assist
//!   time and as time blocked by the collector. No deadlock: the sweep never
//!   handshakes or stops the world (it runs after the stop, and the next
//!   cycle starts only after it), `ACTIVE` is never held while waiting, a
//!   waiter never waits outside a sweep, and the wait is bounded by
//!   [`PATIENCE`] without progress (a `Drop` blocked on a lock the waiter
//!   holds delays it, then the thread grows the heap as before, and no one
//!   waits again until the collector progresses).
//!
//! Shared fields: `SWEEPGEN` (the collector, with the world stopped; read
//! by pinned threads, ordered by the stop's restart); the sets (one mutex per
//! class, [`LARGE`], [`DROP_QUEUE`]); `ACTIVE` (incremented under the set's
//! lock that the span was popped from, decremented after the sweep, SeqCst);
//! `SWEPT_LIVE` (bytes of live objects the sweeps found: the cycle's marked
//! heap, for the pacer); in [`DROP_QUEUE`] also `sweeping`, `progress`,
//! `stuck_at` and `waiters` (mirrored without the lock by [`SWEEPING`] and
//! [`QUEUED`], hints only). `DROP_QUEUE` is a leaf lock: nothing else is
//! taken while it is held.

use std::collections::VecDeque;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::heap::{self, kind, SpanMeta};
use crate::object::TypeInfo;
use crate::sizeclass::NUM_SPAN_CLASSES;
use crate::stats::{BY_SIZE, COUNTERS};

/// The sweep generation: +2 at each cycle's stop.
static SWEEPGEN: AtomicU32 = AtomicU32::new(0);

/// Spans of one class that no cache holds, by generation parity.
pub(crate) struct Central {
    partial: [Vec<usize>; 2],
    full: [Vec<usize>; 2],
}

/// The span sets of every span class.
static CENTRAL: [Mutex<Central>; NUM_SPAN_CLASSES] = [const {
    Mutex::new(Central {
        partial: [Vec::new(), Vec::new()],
        full: [Vec::new(), Vec::new()],
    })
}; NUM_SPAN_CLASSES];

/// Large objects' spans, by generation parity.
static LARGE: Mutex<[Vec<usize>; 2]> = Mutex::new([Vec::new(), Vec::new()]);

/// Unswept spans that may hold values with a `Drop`, popped by an allocating
/// thread and left for the collector thread, and the collector's progress,
/// which allocating threads over the memory limit wait on ([`SWEPT`]).
static DROP_QUEUE: Mutex<DropQueue> = Mutex::new(DropQueue {
    spans: VecDeque::new(),
    sweeping: false,
    progress: 0,
    stuck_at: u64::MAX,
    waiters: 0,
});

/// Signalled (with [`DROP_QUEUE`] held) when the collector thread has swept
/// a span and when its sweep ends.
static SWEPT: Condvar = Condvar::new();

/// Spans in `DROP_QUEUE.spans` (a mirror the collector reads without the
/// lock, after each span it sweeps, to give the queue priority).
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Guarded by [`DROP_QUEUE`].
struct DropQueue {
    /// Queued spans, oldest first. Only the collector thread removes them,
    /// and only after sweeping them: a span stays listed while it is swept,
    /// so a waiter that sees a span of its class listed knows a swept span
    /// of that class is coming.
    spans: VecDeque<usize>,
    /// The collector thread's sweep of this generation is in progress (set
    /// by `new_generation` in the stop, cleared at the end of `finish`).
    sweeping: bool,
    /// Spans the collector thread has swept (ever).
    progress: u64,
    /// `progress` when a waiter last gave up for want of progress (a `Drop`
    /// blocked the collector thread): no one waits again until it moves.
    stuck_at: u64,
    /// Allocating threads waiting on [`SWEPT`].
    waiters: usize,
}

impl DropQueue {
    /// Wakes the threads waiting for the collector's progress, if any.
    fn notify(&self) {
        if self.waiters > 0 {
            SWEPT.notify_all();
        }
    }

    /// Whether a queued span has span class `sc`.
    fn has_class(&self, sc: usize) -> bool {
        self.spans
            .iter()
            .any(|&p| span(p).spanclass.load(Relaxed) as usize == sc)
    }

    fn push(&mut self, p: usize) {
        self.spans.push_back(p);
        QUEUED.store(self.spans.len(), Relaxed);
    }
}

/// How long an allocating thread waits for the collector thread's sweep to
/// make progress (sweep any span) before it gives up and grows the heap: a
/// bound, so that a `Drop` blocked on a lock the waiting thread holds delays
/// it instead of deadlocking the two. Waits normally end much sooner, when a
/// swept span of the class arrives or the sweep ends.
const PATIENCE: Duration = Duration::from_millis(10);

/// Sweeps in progress on allocating threads.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Live bytes found by this generation's sweeps.
static SWEPT_LIVE: AtomicU64 = AtomicU64::new(0);

/// The collector thread's sweep is in progress (a mirror of
/// `DROP_QUEUE.sweeping`, read without the lock by allocating threads).
static SWEEPING: AtomicBool = AtomicBool::new(false);

/// Unswept spans an allocating thread sweeps before it takes a fresh one.
const ALLOC_BUDGET: usize = 16;

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Index of this generation's swept sets.
#[inline]
fn swept() -> usize {
    (SWEEPGEN.load(Relaxed) >> 1) as usize & 1
}

/// `m` as the set entry it is stored as.
fn entry(m: &'static SpanMeta) -> usize {
    m as *const SpanMeta as usize
}

/// The span of a set entry.
fn span(p: usize) -> &'static SpanMeta {
    // SAFETY: set entries are metadata addresses of in-use spans (pushed by
    // their owner); SpanMeta records live as long as the process (arenas are
    // never unmapped), and popping an entry makes the popper its owner.
    unsafe { &*(p as *const SpanMeta) }
}

/// Takes a swept span of class `sc` with free slots, if there is one.
/// The caller (a thread cache) owns it from now on (INV-CACHE).
pub(crate) fn take_partial(sc: usize) -> Option<&'static SpanMeta> {
    let s = swept();
    lock(&CENTRAL[sc]).partial[s].pop().map(span)
}

/// Gives back a span a thread cache held: on the swept partial set if it
/// has free slots (`partial`), else on the swept full set.
pub(crate) fn release(sc: usize, m: &'static SpanMeta, partial: bool) {
    let s = swept();
    let mut c = lock(&CENTRAL[sc]);
    if partial {
        c.partial[s].push(entry(m));
    } else {
        c.full[s].push(entry(m));
    }
}

/// Records a new large object's span (swept in this generation).
pub(crate) fn add_large(m: &'static SpanMeta) {
    let s = swept();
    lock(&LARGE)[s].push(entry(m));
}

/// Starts a new sweep generation: every span becomes unswept. Called with
/// the world stopped, after every thread cache gave its spans back.
pub(crate) fn new_generation() {
    SWEEPGEN.fetch_add(2, Relaxed);
    SWEPT_LIVE.store(0, Relaxed);
    SWEEPING.store(true, Relaxed);
    lock(&DROP_QUEUE).sweeping = true;
}

/// What [`sweep_for_alloc`] did.
pub(crate) enum AllocSweep {
    /// A swept span with free slots, now owned by the caller.
    Found(&'static SpanMeta),
    /// Spans were popped (swept, or queued for the collector thread), none
    /// with free slots for the caller.
    Worked,
    /// The class has no unswept span left.
    Empty,
}

/// Sweeps unswept spans of class `sc` for an allocating thread, until one
/// has free slots (returned, owned by the caller) or the budget is spent.
/// Spans that may hold values with a `Drop` are queued for the collector
/// thread, never swept here (no user code in the allocator).
#[cold]
pub(crate) fn sweep_for_alloc(sc: usize) -> AllocSweep {
    let u = swept() ^ 1;
    for i in 0..ALLOC_BUDGET {
        let p = {
            let mut c = lock(&CENTRAL[sc]);
            let Some(p) = c.partial[u].pop().or_else(|| c.full[u].pop()) else {
                return if i == 0 {
                    AllocSweep::Empty
                } else {
                    AllocSweep::Worked
                };
            };
            ACTIVE.fetch_add(1, SeqCst);
            p
        };
        let m = span(p);
        let found = if m.has_drop.load(Relaxed) {
            lock(&DROP_QUEUE).push(p);
            None
        } else {
            match sweep_small(m, false) {
                Outcome::Partial => Some(m),
                Outcome::Full => {
                    release(sc, m, false);
                    None
                }
                Outcome::Freed => None,
            }
        };
        ACTIVE.fetch_sub(1, SeqCst);
        if let Some(m) = found {
            return AllocSweep::Found(m);
        }
    }
    AllocSweep::Worked
}

/// Called by an allocating thread that found no swept span of class `sc`
/// with free slots and no unswept one to sweep itself, before it takes a
/// fresh span from the page heap. If the heap is at its memory limit
/// (`over_limit`) and the collector thread's sweep is in progress with
/// spans of this class queued for it (they hold values with a `Drop`),
/// waits for that sweep instead of growing the heap, and returns a swept
/// span with free slots (owned by the caller) once one is filed.
///
/// The wait is bounded: it ends when the sweep ends, when no span of the
/// class is left queued, or when the collector thread swept nothing for
/// [`PATIENCE`] (a `Drop` it runs may be blocked on a lock this thread
/// holds); after such a give-up no thread waits until the collector makes
/// progress again. It never waits outside the collector's sweep, which
/// neither handshakes nor stops the world (the cycle's stop is over and the
/// next cycle starts only after it), so a waiting thread, though pinned,
/// holds no collector step up. The time waited is counted as assist time
/// and as time the mutator was blocked by the collector.
#[cold]
pub(crate) fn wait_for_sweeper(
    sc: usize,
    over_limit: impl Fn() -> bool,
) -> Option<&'static SpanMeta> {
    if !SWEEPING.load(Relaxed) || !over_limit() {
        return None;
    }
    let mut waited: Option<Instant> = None;
    let found = loop {
        let seen = {
            let q = lock(&DROP_QUEUE);
            if !q.sweeping || q.progress == q.stuck_at {
                break None;
            }
            q.progress
        };
        if let Some(m) = take_partial(sc) {
            break Some(m);
        }
        match sweep_for_alloc(sc) {
            AllocSweep::Found(m) => break Some(m),
            AllocSweep::Worked => continue,
            AllocSweep::Empty => {}
        }
        let mut q = lock(&DROP_QUEUE);
        if !q.sweeping {
            break None;
        }
        if q.progress != seen {
            continue;
        }
        if !q.has_class(sc) {
            break None;
        }
        waited.get_or_insert_with(Instant::now);
        q.waiters += 1;
        let (mut q, timeout) = SWEPT
            .wait_timeout(q, PATIENCE)
            .unwrap_or_else(|e| e.into_inner());
        q.waiters -= 1;
        if timeout.timed_out() && q.progress == seen {
            q.stuck_at = seen;
            break None;
        }
    };
    if let Some(t) = waited {
        let ns = t.elapsed().as_nanos() as u64;
        crate::pacer::add_assist_time(ns);
        crate::stats::BLOCKED.record(ns);
    }
    found
}

/// What a sweep left of a small span.
enum Outcome {
    /// No live object: the span went back to the page heap.
    Freed,
    /// Some free slots.
    Partial,
    /// Every slot live.
    Full,
}

/// Sweeps one small span the caller owns. `drops`: run the `Drop`s of dead
/// values (the collector thread only; callers pass false only for spans
/// without `has_drop`).
fn sweep_small(m: &'static SpanMeta, drops: bool) -> Outcome {
    let size = m.elem_size.load(Relaxed) as usize;
    let start = m.start();
    let (mut live, mut dead_n) = (0u64, 0u64);
    if crate::profile::span_sampled(start) {
        crate::profile::sweep_small_frees(m, start, size);
    }
    for w in 0..m.nwords() {
        let alloc = m.alloc_bits[w].load(Relaxed);
        let mark = m.mark_bits[w].load(Relaxed);
        let mut dead = alloc & !mark;
        dead_n += dead.count_ones() as u64;
        live += mark.count_ones() as u64;
        if drops {
            while dead != 0 {
                let i = w * 64 + dead.trailing_zeros() as usize;
                dead &= dead - 1;
                drop_object(start + i * size);
            }
        }
        m.alloc_bits[w].store(mark, Relaxed);
        m.mark_bits[w].store(0, Relaxed);
    }
    COUNTERS.frees.fetch_add(dead_n, Relaxed);
    let class = m.spanclass.load(Relaxed) as usize >> 1;
    BY_SIZE.frees[class].fetch_add(dead_n, Relaxed);
    COUNTERS
        .freed_bytes
        .fetch_add(dead_n * size as u64, Relaxed);
    SWEPT_LIVE.fetch_add(live * size as u64, Relaxed);
    if live == 0 {
        heap::free_span(m);
        Outcome::Freed
    } else if live < m.nelems.load(Relaxed) as u64 {
        Outcome::Partial
    } else {
        Outcome::Full
    }
}

/// Sweeps one large object's span the caller owns (the collector thread).
fn sweep_large(m: &'static SpanMeta) {
    let size = m.elem_size.load(Relaxed) as u64;
    if m.mark_bits[0].load(Relaxed) & 1 != 0 {
        m.mark_bits[0].store(0, Relaxed);
        SWEPT_LIVE.fetch_add(size, Relaxed);
        add_large(m);
        return;
    }
    if m.has_drop.load(Relaxed) {
        drop_object(m.start());
    }
    if crate::profile::span_sampled(m.start()) {
        crate::profile::sweep_large_free(m.start());
    }
    COUNTERS.frees.fetch_add(1, Relaxed);
    COUNTERS.freed_bytes.fetch_add(size, Relaxed);
    heap::free_span(m);
}

/// Sweeps a small span on the collector thread and files it.
fn sweep_and_file(p: usize) {
    let m = span(p);
    debug_assert_eq!(m.kind.load(Relaxed), kind::SMALL);
    let sc = m.spanclass.load(Relaxed) as usize;
    match sweep_small(m, true) {
        Outcome::Freed => {}
        Outcome::Partial => release(sc, m, true),
        Outcome::Full => release(sc, m, false),
    }
}

/// Records that the collector thread swept a span and wakes threads waiting
/// for its progress.
fn progressed() {
    let mut q = lock(&DROP_QUEUE);
    q.progress += 1;
    q.notify();
}

/// Sweeps every span queued for the collector thread (oldest first), each
/// left listed until it is filed. Returns how many it swept.
fn sweep_queue() -> usize {
    let mut n = 0;
    loop {
        let Some(p) = lock(&DROP_QUEUE).spans.front().copied() else {
            return n;
        };
        sweep_and_file(p);
        let mut q = lock(&DROP_QUEUE);
        let front = q.spans.pop_front();
        debug_assert_eq!(
            front,
            Some(p),
            "only the collector thread removes queued spans"
        );
        QUEUED.store(q.spans.len(), Relaxed);
        q.progress += 1;
        q.notify();
        n += 1;
    }
}

/// The collector thread's sweep, right after the stop: sweeps every unswept
/// span and waits for the sweeps of allocating threads, so that the
/// generation is complete. Returns the live bytes the generation's sweeps
/// found (the marked heap). Runs `Drop`s: the caller sets `IN_COLLECTOR`.
///
/// Spans that allocating threads queued (they hold values with a `Drop`
/// and a thread needed a span of their class) are swept first, as soon as
/// they are queued: after every span, the queue is checked.
pub(crate) fn finish() -> u64 {
    let u = swept() ^ 1;
    loop {
        for c in CENTRAL.iter() {
            loop {
                if QUEUED.load(Relaxed) != 0 {
                    sweep_queue();
                }
                let p = {
                    let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                    match c.full[u].pop().or_else(|| c.partial[u].pop()) {
                        Some(p) => p,
                        None => break,
                    }
                };
                sweep_and_file(p);
                progressed();
            }
        }
        loop {
            let Some(p) = lock(&LARGE)[u].pop() else {
                break;
            };
            sweep_large(span(p));
            progressed();
        }
        let queued = sweep_queue();
        // Every set was seen empty after the pops above; a sweep that an
        // allocating thread started before that is counted in ACTIVE (it
        // incremented it under the set's lock), and anything it queued is
        // visible once ACTIVE reads 0.
        if queued == 0 && ACTIVE.load(SeqCst) == 0 {
            let mut q = lock(&DROP_QUEUE);
            if q.spans.is_empty() {
                q.sweeping = false;
                SWEEPING.store(false, Relaxed);
                q.notify();
                return SWEPT_LIVE.load(Relaxed);
            }
        }
        std::thread::yield_now();
    }
}

/// Runs the `Drop` of the dead object in the slot at `slot`, if its type has one.
fn drop_object(slot: usize) {
    // SAFETY: `slot` is an allocated, unmarked slot: its first word is the
    // object's TypeInfo (written at allocation), and nothing can reach the
    // object any more (INV-SWEEP), so dropping it once here is sound.
    let info: &'static TypeInfo = unsafe { *(slot as *const &'static TypeInfo) };
    if let Some(d) = info.drop {
        let v = slot + info.value_offset;
        // SAFETY: as above; the value is dropped exactly once, then its slot
        // is freed.
        let r = std::panic::catch_unwind(|| unsafe { d(v as *mut u8) });
        if r.is_err() {
            eprintln!(
                "tricolor: the Drop of a collected `{}` panicked; the panic was caught and the \
                 object freed",
                (info.name)()
            );
        }
    }
}
