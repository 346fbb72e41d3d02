//! Weak pointers, cleanups and `keep_alive` (Go's `weak.Pointer`,
//! `runtime.AddCleanup` and `runtime.KeepAlive`).
//!
//! What: records attached to objects that the collector looks at once
//! marking is complete (Go calls them "specials"):
//! - a weak cell: a word holding an object's value pointer, or 0 once the
//!   object was found unreachable. Every [`Weak<T>`] shares one cell (an
//!   `Arc`); the registry holds one more reference;
//! - a cleanup: an object's value pointer and a boxed `FnOnce()` (the user's
//!   function applied to its argument), to run once the object is found
//!   unreachable.
//!
//! Algorithm:
//! 1. `downgrade` allocates a cell holding the target and pushes it on
//!    `WEAKS`; `add_cleanup` pushes a record on `CLEANUPS`. Both with the
//!    caller pinned, so the target is allocated (INV-GUARD or INV-ROOT).
//! 2. `upgrade` pins, loads the cell and, if it is not 0, roots the target
//!    (`Root::from_gc`). Root creation shades while marking (INV-BARRIER),
//!    which is the keep-alive barrier: an upgrade that races marking either
//!    sees 0 or makes the object reachable, so it is marked.
//! 3. At the cycle's stop (world stopped, marking complete: no grey work
//!    anywhere, every reachable object marked), before any sweep of the new
//!    generation, [`at_stop`] clears every cell whose target is unmarked,
//!    drops cells no `Weak` uses any more, and moves the cleanups of
//!    unmarked targets (unless cancelled) to the run queue.
//! 4. After the restart, the collector hands the queued cleanups to the
//!    cleanup thread (`tricolor-cleanup`), which runs them one by one, each
//!    under `catch_unwind`: a panicking cleanup is reported on stderr and
//!    counted ([`cleanup_panics`]), and the next ones still run.
//!
//! Invariants:
//! - INV-WEAK: a cell holds either 0 or the value pointer of an allocated
//!   object. A target is freed only by the sweep of a generation in whose
//!   stop it was unmarked, and that stop cleared the cell first; the stop
//!   and an `upgrade` (pinned) never overlap, so an upgrade that reads a
//!   non-zero cell reads an allocated object, and roots it before it unpins.
//! - An upgrade during marking after termination ended shades an object the
//!   mark did not reach: the stop finds that grey work in the thread's
//!   buffer and does not stop then (the collector restarts the world and
//!   terminates again), so the stop that processes specials always sees a
//!   complete mark (`collector::cycle`).
//! - A cleanup never receives its object (no resurrection): the closure
//!   owns only its argument. An argument that holds a `Root` to the object
//!   keeps it alive, and the cleanup never runs (as in Go).
//!
//! Shared fields: `WEAKS` and `CLEANUPS` (mutexes; pushed by mutators,
//! rewritten by the collector at the stop); cell words (atomics; written by
//! the collector at the stop, read by pinned mutators); `RUN` (mutex and
//! condition variable: the collector pushes, the cleanup thread pops).
//! The work at the stop is proportional to the number of weak cells and
//! cleanups alive: a program with very many of them pays for it in pause
//! time (Go sweeps them per span instead; see core-api.md).

use std::marker::PhantomData;
use std::sync::atomic::{
    AtomicBool, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::collector::is_marked;
use crate::thread::pin;
use crate::trace::{Trace, Tracer};
use crate::{Gc, Guard, Root};

struct WeakCell {
    target: AtomicUsize,
}

static WEAKS: Mutex<Vec<Arc<WeakCell>>> = Mutex::new(Vec::new());

struct CleanupRecord {
    target: usize,
    cancelled: Arc<AtomicBool>,
    run: Box<dyn FnOnce() + Send>,
}

static CLEANUPS: Mutex<Vec<CleanupRecord>> = Mutex::new(Vec::new());

/// Cleanups due, waiting for the cleanup thread.
static RUN: Mutex<Vec<Box<dyn FnOnce() + Send>>> = Mutex::new(Vec::new());
static RUN_CV: Condvar = Condvar::new();
/// Cleanups queued at a stop, not yet handed to the cleanup thread.
static DUE: Mutex<Vec<Box<dyn FnOnce() + Send>>> = Mutex::new(Vec::new());
static PANICS: AtomicU64 = AtomicU64::new(0);
static RAN: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A weak pointer to a managed object (Go's `weak.Pointer`): it does not
/// keep the object alive, and [`upgrade`](Weak::upgrade) gives a [`Root`]
/// while the object is reachable and `None` once the collector found it
/// unreachable.
///
/// The pointer is cleared atomically when a cycle finds its target
/// unreachable, before the target is swept. A `Weak` may live outside the
/// heap or inside managed objects (it is a weak edge: tracing ignores it).
///
/// ```
/// use tricolor::{Root, Weak};
///
/// let strong = Root::new(String::from("cached"));
/// let weak: Weak<String> = Root::downgrade(&strong);
/// assert_eq!(weak.upgrade().as_deref().map(|s| s.as_str()), Some("cached"));
/// drop(strong);
/// tricolor::gc();
/// assert!(weak.upgrade().is_none());
/// ```
pub struct Weak<T: Trace + Send + 'static> {
    cell: Arc<WeakCell>,
    _t: PhantomData<Root<T>>,
}

// SAFETY: a Weak hands out `Root<T>`s on whatever thread holds it, so it is
// Send and Sync exactly when `Root<T>` is (`T: Send + Sync`).
unsafe impl<T: Trace + Send + Sync + 'static> Send for Weak<T> {}
// SAFETY: as above.
unsafe impl<T: Trace + Send + Sync + 'static> Sync for Weak<T> {}

impl<T: Trace + Send + 'static> Weak<T> {
    fn new(v: usize) -> Weak<T> {
        let cell = Arc::new(WeakCell {
            target: AtomicUsize::new(v),
        });
        lock(&WEAKS).push(cell.clone());
        Weak {
            cell,
            _t: PhantomData,
        }
    }

    /// A strong handle to the object, or `None` if a collection found it
    /// unreachable. While marking, an upgrade keeps the object alive for the
    /// cycle in progress (the keep-alive barrier).
    pub fn upgrade(&self) -> Option<Root<T>> {
        let g = pin();
        self.upgrade_in(&g).map(Root::from_gc)
    }

    /// As [`upgrade`](Weak::upgrade), with the caller's guard: a `Gc` valid
    /// while `guard` lives (no root slot is taken).
    pub fn upgrade_in<'g>(&self, guard: &'g Guard) -> Option<Gc<'g, T>> {
        let v = self.cell.target.load(Acquire);
        if v == 0 {
            return None;
        }
        if crate::thread::marking() {
            // The keep-alive barrier (INV-BARRIER): the object may be
            // reachable only through this cell now.
            crate::collector::shade(guard.ts(), v);
        }
        // INV-WEAK: a non-zero cell read while pinned names an allocated
        // object, and the guard keeps it so for 'g.
        Some(Gc::from_value_ptr(v))
    }

    /// Whether the target was found unreachable (the pointer is cleared).
    pub fn is_cleared(&self) -> bool {
        self.cell.target.load(Relaxed) == 0
    }

    /// Whether two weak pointers point to the same object (both cleared
    /// counts as equal only if they share their cell).
    pub fn ptr_eq(a: &Weak<T>, b: &Weak<T>) -> bool {
        Arc::ptr_eq(&a.cell, &b.cell) || {
            let (x, y) = (a.cell.target.load(Relaxed), b.cell.target.load(Relaxed));
            x != 0 && x == y
        }
    }
}

impl<T: Trace + Send + 'static> Clone for Weak<T> {
    fn clone(&self) -> Self {
        Weak {
            cell: self.cell.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Trace + Send + 'static> std::fmt::Debug for Weak<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_cleared() {
            f.write_str("Weak(cleared)")
        } else {
            f.write_str("Weak(..)")
        }
    }
}

// SAFETY: a weak edge is not an edge: the collector must not mark through
// it, so tracing reports nothing (INV-TRACE is about `Member`/`GcVec`
// fields; a `Weak` holds neither). It needs no scan.
unsafe impl<T: Trace + Send + 'static> Trace for Weak<T> {
    const NEEDS_TRACE: bool = false;
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}

impl<T: Trace + Send + 'static> Root<T> {
    /// A weak pointer to the object (Go's `weak.Make`).
    pub fn downgrade(this: &Root<T>) -> Weak<T> {
        Weak::new(this.as_ptr() as usize)
    }
}

impl<T: Trace + Send + 'static> Gc<'_, T> {
    /// A weak pointer to the object (Go's `weak.Make`).
    pub fn downgrade(self) -> Weak<T> {
        Weak::new(self.as_ptr() as usize)
    }
}

/// A registered cleanup (Go's `runtime.Cleanup`): [`stop`](Cleanup::stop)
/// cancels it.
#[derive(Clone, Debug)]
pub struct Cleanup {
    cancelled: Arc<AtomicBool>,
}

impl Cleanup {
    /// Cancels the cleanup if it has not been queued to run yet.
    pub fn stop(&self) {
        self.cancelled.store(true, Relaxed);
    }
}

/// Runs `f(arg)` on the cleanup thread once a collection finds the object
/// of `root` unreachable (Go 1.24's `runtime.AddCleanup`).
///
/// `f` never receives the object (no resurrection). If `arg` (or `f`)
/// keeps the object reachable, for example through a `Root`, the object
/// is never unreachable and `f` never runs. Cleanups of objects that
/// become unreachable together (a cycle) all run, in no particular order.
/// A cleanup may allocate and use the heap; if it panics, the panic is
/// reported on stderr and counted ([`cleanup_panics`]), and later cleanups
/// still run. A cleanup that blocks delays the ones after it.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let obj = tricolor::Root::new(7u64);
/// tricolor::add_cleanup(&obj, done.clone(), |d| d.store(true, Ordering::SeqCst));
/// drop(obj);
/// tricolor::gc();
/// tricolor::run_cleanups();
/// assert!(done.load(Ordering::SeqCst));
/// ```
pub fn add_cleanup<T, A, F>(root: &Root<T>, arg: A, f: F) -> Cleanup
where
    T: Trace + Send + 'static,
    A: Send + 'static,
    F: FnOnce(A) + Send + 'static,
{
    crate::options::init();
    let cancelled = Arc::new(AtomicBool::new(false));
    lock(&CLEANUPS).push(CleanupRecord {
        target: root.as_ptr() as usize,
        cancelled: cancelled.clone(),
        run: Box::new(move || f(arg)),
    });
    Cleanup { cancelled }
}

/// Keeps `x` (and whatever it keeps alive) reachable up to this call (Go's
/// `runtime.KeepAlive`): for example a `Root` whose object has a cleanup
/// that must not run before a use of some resource it guards is over.
#[inline]
pub fn keep_alive<T: ?Sized>(x: &T) {
    std::hint::black_box(x);
}

/// Waits until every cleanup queued by the collections completed so far
/// has run (a test and shutdown aid; Go has no equivalent).
pub fn run_cleanups() {
    hand_over();
    let mut q = lock(&RUN);
    while !q.is_empty() || BUSY.load(Acquire) {
        q = RUN_DONE.wait(q).unwrap_or_else(|e| e.into_inner());
    }
}

/// Cleanups that panicked so far.
pub fn cleanup_panics() -> u64 {
    PANICS.load(Relaxed)
}

/// Cleanups run so far (panicked ones included).
pub fn cleanups_run() -> u64 {
    RAN.load(Relaxed)
}

static BUSY: AtomicBool = AtomicBool::new(false);
static RUN_DONE: Condvar = Condvar::new();

/// The collector, with the world stopped and marking complete: clears the
/// weak cells of unmarked targets and queues the cleanups of unmarked
/// targets. Runs no user code (queued closures are only moved).
pub(crate) fn at_stop() {
    {
        let mut w = lock(&WEAKS);
        w.retain(|c| {
            let v = c.target.load(Relaxed);
            // INV-WEAK: a non-zero cell names an allocated object.
            if v != 0 && !is_marked(v) {
                c.target.store(0, Release);
            }
            Arc::strong_count(c) > 1
        });
    }
    let mut c = lock(&CLEANUPS);
    if c.is_empty() {
        return;
    }
    let mut due = lock(&DUE);
    let mut i = 0;
    while i < c.len() {
        let r = &c[i];
        if r.cancelled.load(Relaxed) {
            // Dropped after the restart (its closure may own anything).
            due.push(Box::new(drop_later(c.swap_remove(i))));
        } else if !is_marked(r.target) {
            let r = c.swap_remove(i);
            due.push(r.run);
        } else {
            i += 1;
        }
    }
}

/// A cancelled record, dropped on the cleanup thread instead of run.
fn drop_later(r: CleanupRecord) -> impl FnOnce() + Send {
    move || {
        RAN.fetch_sub(1, Relaxed);
        drop(r)
    }
}

/// The collector, after the restart: gives due cleanups to the cleanup
/// thread (starting it the first time).
pub(crate) fn hand_over() {
    let due = std::mem::take(&mut *lock(&DUE));
    if due.is_empty() {
        return;
    }
    static START: std::sync::Once = std::sync::Once::new();
    START.call_once(|| {
        std::thread::Builder::new()
            .name("tricolor-cleanup".into())
            .spawn(cleanup_thread)
            .expect("tricolor: cannot start the cleanup thread");
    });
    lock(&RUN).extend(due);
    RUN_CV.notify_all();
}

fn cleanup_thread() {
    loop {
        let f = {
            let mut q = lock(&RUN);
            loop {
                if !q.is_empty() {
                    BUSY.store(true, Release);
                    break q.remove(0);
                }
                q = RUN_CV.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        RAN.fetch_add(1, Relaxed);
        if let Err(e) = r {
            PANICS.fetch_add(1, Relaxed);
            let msg = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".into());
            eprintln!("tricolor: a cleanup panicked: {msg}");
        }
        let q = lock(&RUN);
        if q.is_empty() {
            BUSY.store(false, Release);
        }
        drop(q);
        RUN_DONE.notify_all();
    }
}
