//! The collector: one cycle of mark and sweep.
//!
//! This first collector stops the world (every registered thread at a
//! quiescent point) and marks on the collecting thread; its API and
//! invariants are the concurrent ones (DESIGN.md section 4), so the
//! concurrent collector changes this module, not user code.
//!
//! A cycle, in steps:
//! 1. Serialise with other collectors (`CYCLE` lock), take the thread
//!    registry, stop the world ([`crate::thread::stop_the_world`]).
//! 2. Flush every thread cache: commit the slots taken from partial words,
//!    so `alloc_bits` describe every allocated object.
//! 3. Mark: every root slot, then drain the grey stack — an explicit work
//!    list, never recursion (a ten-million-node list marks in constant
//!    native stack). Marking an object sets its bit in its span's
//!    `mark_bits`; objects in noscan spans are never pushed (never read).
//! 4. Sweep every in-use span: `dead = alloc & !mark`; run the `Drop` of dead
//!    values in spans that may hold such values (catching panics: they are
//!    reported, never unwound through the collector); `alloc = mark`,
//!    `mark = 0`; empty spans go back to the page heap, partial ones to the
//!    central lists (INV-SWEEP: only unmarked objects are freed).
//! 5. Pace the next cycle from the marked bytes, record the pause, restart
//!    the world.
//!
//! While user `Drop` code runs (step 4), the thread's `IN_COLLECTOR` flag
//! makes any use of the heap panic with a clear message (INV-NODROP: a
//! `Drop` cannot get a guard, so it cannot read an edge to a freed object).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::heap::{self, kind, meta_of, slot_index, SpanMeta, CENTRAL};
use crate::object::{header, TypeInfo};
use crate::pacer;
use crate::stats::{COUNTERS, CYCLES};
use crate::thread::{self, IN_COLLECTOR, THREADS};
use crate::trace::{Mode, Tracer};

/// Held for a whole cycle; holds the grey stack between cycles (its memory
/// is reused).
static CYCLE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Marks the object at value pointer `v`; queues it if it must be scanned.
#[inline(always)]
pub(crate) fn mark(t: &mut Tracer, v: usize) {
    debug_assert!(t.mode == Mode::Mark);
    // SAFETY: INV-HEAPPTR: `v` is a value pointer handed out by the allocator
    // (edges and roots only ever hold those).
    let m = unsafe { meta_of(v) };
    let i = slot_index(m, v);
    let w = &m.mark_bits[i >> 6];
    let bit = 1u64 << (i & 63);
    let old = w.load(Relaxed);
    if old & bit == 0 {
        w.store(old | bit, Relaxed);
        if !m.noscan() {
            t.stack.push(v);
        }
    }
}

/// Objects in flight between prefetch and scan.
const PREFETCH: usize = 8;

/// Scans grey objects until none is left.
///
/// Popping an object and reading its header right away stalls on a cache
/// miss for nearly every object of a large heap. So popped objects pass
/// through a small FIFO: the header is prefetched on entry and read
/// `PREFETCH` objects later (Cher, Hosking and Vijaykumar's prefetch-on-grey
/// buffer, as in Boehm's collector).
fn drain(t: &mut Tracer) {
    let mut ring = [0usize; PREFETCH];
    let (mut head, mut count) = (0usize, 0usize);
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
        // SAFETY: `v` was marked, so it is an allocated object whose header
        // was written at allocation (INV-HEAPPTR).
        let info = unsafe { header(v) };
        // SAFETY: `v` is a live object of the type `info` describes.
        unsafe { (info.trace)(v as *const u8, t) };
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

/// Runs a cycle if one is still pending (called at quiescent points).
#[cold]
pub(crate) fn collect_pending() {
    collect(Reason::Heap);
}

/// Runs a garbage collection and blocks until it is complete, sweep and
/// `Drop`s included (Go's `runtime.GC`): statistics read right after it
/// are exact.
///
/// # Panics
/// If the calling thread holds a guard: a cycle needs every thread at a
/// quiescent point, so it could never finish.
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
    collect(Reason::Forced);
}

fn collect(reason: Reason) {
    let mut stack = CYCLE.lock().unwrap_or_else(|e| e.into_inner());
    if reason == Reason::Heap && !pacer::GC_PENDING.load(Relaxed) {
        return; // another thread ran it
    }
    let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    if threads
        .iter()
        .any(|t| t.exited.load(Relaxed) && t.pinned.load(Relaxed))
    {
        warn_leaked_guard();
        pacer::GC_PENDING.store(false, Relaxed);
        return;
    }
    let start = Instant::now();
    IN_COLLECTOR.with(|c| c.set(true));
    thread::stop_the_world(&threads);

    for t in threads.iter() {
        // SAFETY: the world is stopped: no mutator touches its cache.
        unsafe { t.flush(false) };
    }

    let mut tracer = Tracer::new(Mode::Mark);
    tracer.stack = std::mem::take(&mut *stack);
    crate::root::mark_roots(&mut tracer);
    drain(&mut tracer);
    *stack = std::mem::take(&mut tracer.stack);

    let before = pacer::HEAP_LIVE.load(Relaxed);
    let live = sweep();
    pacer::HEAP_MARKED.store(live, Relaxed);
    pacer::HEAP_LIVE.store(live, Relaxed);
    pacer::GC_PENDING.store(false, Relaxed);
    pacer::update_goal();

    let pause = start.elapsed().as_nanos() as u64;
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    {
        let mut c = CYCLES.lock().unwrap_or_else(|e| e.into_inner());
        let i = c.num_gc as usize % 256;
        c.pause_ns[i] = pause;
        c.pause_end[i] = end;
        c.pause_total_ns += pause;
        c.gc_cpu_ns += pause;
        c.num_gc += 1;
        if reason == Reason::Forced {
            c.num_forced_gc += 1;
        }
        c.last_gc = end;
    }
    thread::start_the_world();
    IN_COLLECTOR.with(|c| c.set(false));
    if crate::options::gctrace() {
        let n = CYCLES.lock().unwrap_or_else(|e| e.into_inner()).num_gc;
        eprintln!(
            "gc {n} @{:.3}s: {:.3} ms stw, {}->{} MB, {} MB goal{}",
            crate::stats::START
                .get()
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or(0.0),
            pause as f64 / 1e6,
            before >> 20,
            live >> 20,
            pacer::NEXT_GC.load(Relaxed) >> 20,
            if reason == Reason::Forced {
                " (forced)"
            } else {
                ""
            }
        );
    }
    drop(threads);
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

/// Sweeps every in-use span; returns the live bytes.
fn sweep() -> u64 {
    for c in CENTRAL.iter() {
        c.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    let mut live_bytes = 0u64;
    let (mut freed, mut freed_bytes) = (0u64, 0u64);
    heap::for_each_span(|m| {
        let (live, dead, size) = if m.kind.load(Relaxed) == kind::SMALL {
            sweep_small(m)
        } else {
            sweep_large(m)
        };
        live_bytes += live * size;
        freed += dead;
        freed_bytes += dead * size;
    });
    COUNTERS.frees.fetch_add(freed, Relaxed);
    COUNTERS.freed_bytes.fetch_add(freed_bytes, Relaxed);
    live_bytes
}

/// Sweeps one small span: (live objects, freed objects, slot size).
fn sweep_small(m: &'static SpanMeta) -> (u64, u64, u64) {
    let size = m.elem_size.load(Relaxed) as usize;
    let start = m.start();
    let drops = m.has_drop.load(Relaxed);
    let (mut live, mut dead_n) = (0u64, 0u64);
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
    let nelems = m.nelems.load(Relaxed) as u64;
    if live == 0 {
        heap::free_span(m);
    } else if live < nelems {
        let sc = m.spanclass.load(Relaxed) as usize;
        CENTRAL[sc]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(m as *const _ as usize);
    }
    (live, dead_n, size as u64)
}

/// Sweeps one large object's span: (live, freed, bytes).
fn sweep_large(m: &'static SpanMeta) -> (u64, u64, u64) {
    let size = m.elem_size.load(Relaxed) as u64;
    if m.mark_bits[0].load(Relaxed) & 1 != 0 {
        m.mark_bits[0].store(0, Relaxed);
        return (1, 0, size);
    }
    if m.has_drop.load(Relaxed) {
        drop_object(m.start());
    }
    heap::free_span(m);
    (0, 1, size)
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

/// Marked state of the object at value pointer `v` (for tests).
#[cfg(test)]
pub(crate) fn is_marked(v: usize) -> bool {
    // SAFETY: test helper on live objects.
    let m = unsafe { meta_of(v) };
    let i = slot_index(m, v);
    m.mark_bits[i >> 6].load(Relaxed) & (1 << (i & 63)) != 0
}
