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
//! Shared fields: `SWEEPGEN` (the collector, with the world stopped; read
//! by pinned threads, ordered by the stop's restart); the sets (one mutex per
//! class, [`LARGE`], [`DROP_QUEUE`]); `ACTIVE` (incremented under the set's
//! lock that the span was popped from, decremented after the sweep, SeqCst);
//! `SWEPT_LIVE` (bytes of live objects the sweeps found: the cycle's marked
//! heap, for the pacer).

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};

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
/// thread and left for the collector thread.
static DROP_QUEUE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Sweeps in progress on allocating threads.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Live bytes found by this generation's sweeps.
static SWEPT_LIVE: AtomicU64 = AtomicU64::new(0);

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
}

/// Sweeps unswept spans of class `sc` for an allocating thread, until one
/// has free slots (returned, owned by the caller) or the budget is spent.
#[cold]
pub(crate) fn sweep_for_alloc(sc: usize) -> Option<&'static SpanMeta> {
    let u = swept() ^ 1;
    for _ in 0..ALLOC_BUDGET {
        let p = {
            let mut c = lock(&CENTRAL[sc]);
            let p = c.partial[u].pop().or_else(|| c.full[u].pop())?;
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
        if found.is_some() {
            return found;
        }
    }
    None
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

/// The collector thread's sweep, right after the stop: sweeps every unswept
/// span and waits for the sweeps of allocating threads, so that the
/// generation is complete. Returns the live bytes the generation's sweeps
/// found (the marked heap). Runs `Drop`s: the caller sets `IN_COLLECTOR`.
pub(crate) fn finish() -> u64 {
    let u = swept() ^ 1;
    loop {
        for c in CENTRAL.iter() {
            loop {
                let p = {
                    let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                    match c.full[u].pop().or_else(|| c.partial[u].pop()) {
                        Some(p) => p,
                        None => break,
                    }
                };
                sweep_and_file(p);
            }
        }
        loop {
            let Some(p) = lock(&LARGE)[u].pop() else {
                break;
            };
            sweep_large(span(p));
        }
        let queued = std::mem::take(&mut *lock(&DROP_QUEUE));
        for &p in &queued {
            sweep_and_file(p);
        }
        // Every set was seen empty after the pops above; a sweep that an
        // allocating thread started before that is counted in ACTIVE (it
        // incremented it under the set's lock), and anything it queued is
        // visible once ACTIVE reads 0.
        if queued.is_empty() && ACTIVE.load(SeqCst) == 0 && lock(&DROP_QUEUE).is_empty() {
            return SWEPT_LIVE.load(Relaxed);
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
