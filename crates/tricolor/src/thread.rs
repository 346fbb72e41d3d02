//! Mutator threads: registration, pinning (guards) and stopping the world.
//!
//! What: every thread that touches the heap registers a [`ThreadState`] on
//! first use and unregisters when it exits (returning its cache and root
//! slots). A [`Guard`] pins the thread: while any guard lives, the thread may
//! hold unrooted pointers (`Gc<'g, T>`), so no cycle may pass it.
//!
//! The protocol (DESIGN.md section 4). Each thread publishes one word,
//! `state = epoch << 1 | pinned`; the collector publishes `FLAGS`
//! (`STW | WAITING | MARKING`) and `EPOCH`.
//! 1. Pin (outermost guard): read `EPOCH` (Acquire), `state.swap(epoch<<1|1,
//!    SeqCst)`, then read `FLAGS` (SeqCst). If a stop is requested, unpin,
//!    wait until it is over, retry; if a handshake waits, wake it.
//! 2. Unpin (outermost guard drop) is a quiescent point: flush this
//!    thread's grey buffer (objects its barrier shaded), `state.swap(epoch<<1,
//!    SeqCst)`, then if the collector waits, wake it.
//! 3. Handshake: the collector bumps `EPOCH`, sets `WAITING`, and waits until
//!    every thread of its snapshot is unpinned or pinned at the new epoch,
//!    i.e. has passed a quiescent point since the bump. Dekker's pattern
//!    (SeqCst on both sides) guarantees that either the collector sees the
//!    thread pinned at an old epoch (and waits for its next quiescent point,
//!    which will wake it), or the thread's next pin reads the new epoch.
//!    `MARKING` is set before the bump, so a thread pinned at the new epoch
//!    runs its barrier (INV-BARRIER).
//! 4. Stop the world (a few microseconds at the end of marking): set `STW`,
//!    wait until no thread of the registry is pinned; new pins park until
//!    the restart, and measure how long (`MemStats::blocked_hist`).
//!
//! Invariants: INV-GUARD (a `Gc<'g, T>` borrows its guard; `repin` takes
//! `&mut Guard`; `Guard` is `!Send`), so while the world is stopped no
//! mutator holds an unrooted pointer. Threads that are not pinned never hold
//! a stop up.
//!
//! Waiting. The collector thread alone waits for mutators: in a handshake
//! it polls the threads (`park_timeout`, from [`HANDSHAKE_POLL`] doubling
//! to [`HANDSHAKE_POLL_MAX`]), and no
//! mutator wakes it — a wake-up lets the collector preempt the waker, which
//! then waits a scheduler tick (milliseconds, with every CPU busy) inside
//! its `repin`. In a stop it `park`s, and a mutator that finds `STW` set
//! after its swap `unpark`s it (no lock: the park token keeps a wake-up
//! that comes first); that mutator is blocked by the stop anyway. Threads
//! blocked by a stop park, listed in `PARK`; the restart wakes one, each
//! thread that leaves wakes the next ([`Parked`]: the relay), and the
//! collector sleeps until all have run ([`let_blocked_run`]), so that each
//! wake-up finds an idle CPU.
//!
//! Shared fields: `state` (owner writes, collector reads, SeqCst); `dirty`
//! (owner sets when it shades, collector clears and reads, SeqCst);
//! `cache`/`roots`/`gray` (owner while pinned, collector while the world is
//! stopped — the swap/load pairs above order the two); `depth` (owner only);
//! `exited` (owner at exit, collector reads); `PARK` (mutex: blocked
//! threads list themselves and take their relay turn, the collector bumps
//! `restarts` with `STW` cleared); `BLOCKED` (blocked threads `fetch_add`
//! and `fetch_sub`, SeqCst; the collector reads it).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicBool, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, SeqCst},
};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cache::{self, AllocError, ThreadCache};
use crate::object::Layout;
use crate::trace::{Mode, Trace, Tracer};
use crate::Gc;

/// A registered mutator thread.
pub(crate) struct ThreadState {
    /// `epoch << 1 | pinned`.
    pub(crate) state: AtomicU64,
    /// The thread exited while a guard was still alive (a leaked guard).
    pub(crate) exited: AtomicBool,
    depth: Cell<usize>,
    pub(crate) cache: UnsafeCell<ThreadCache>,
    /// Free root slots owned by this thread (addresses of `RootSlot`s).
    pub(crate) roots: UnsafeCell<Vec<usize>>,
    /// Objects this thread's barrier shaded, not yet handed to the collector.
    gray: UnsafeCell<Vec<usize>>,
    /// Set (SeqCst) when this thread shades an object that must be scanned;
    /// cleared by the collector at the start of each termination round.
    pub(crate) dirty: AtomicBool,
}

// SAFETY: `depth`, `cache` and `roots` are touched only by the owning thread,
// or by the collector while the world is stopped (see the module comment);
// `pinned`/`exited` are atomics.
unsafe impl Sync for ThreadState {}
// SAFETY: as above; the raw span pointers in the cache are plain addresses of
// process-global metadata.
unsafe impl Send for ThreadState {}

impl ThreadState {
    fn new() -> Self {
        ThreadState {
            state: AtomicU64::new(0),
            exited: AtomicBool::new(false),
            depth: Cell::new(0),
            cache: UnsafeCell::new(ThreadCache::new()),
            roots: UnsafeCell::new(Vec::new()),
            gray: UnsafeCell::new(Vec::with_capacity(crate::collector::GRAY_BUF)),
            dirty: AtomicBool::new(false),
        }
    }

    /// Whether the thread is pinned.
    pub(crate) fn pinned(&self) -> bool {
        self.state.load(SeqCst) & 1 != 0
    }

    /// Records an object this thread's barrier shaded (grey work the
    /// collector has not seen: the termination round must not pass).
    #[inline]
    pub(crate) fn push_gray(&self, v: usize) {
        // SAFETY: the owner thread, pinned (barriers run under a guard);
        // the collector reads `gray` only with the world stopped.
        let gray = unsafe { &mut *self.gray.get() };
        gray.push(v);
        self.dirty.store(true, SeqCst);
        if gray.len() >= crate::collector::GRAY_BUF {
            crate::collector::publish_gray(gray);
        }
    }

    fn flush_gray(&self) {
        // SAFETY: as in push_gray.
        let gray = unsafe { &mut *self.gray.get() };
        if !gray.is_empty() {
            crate::collector::publish_gray(gray);
        }
    }

    /// Hands this thread's grey buffer to the collector.
    ///
    /// # Safety
    /// The world is stopped.
    pub(crate) unsafe fn take_gray(&self, into: &mut Vec<usize>) {
        // SAFETY: by the contract, the owner is not running heap code.
        into.append(unsafe { &mut *self.gray.get() });
    }

    #[inline]
    fn pin_outer(&self) {
        if IN_COLLECTOR.get() {
            collector_reentry();
        }
        let e = EPOCH.load(Acquire);
        self.state.swap(e << 1 | 1, SeqCst);
        if FLAGS.load(SeqCst) & (STW | WAITING) != 0 {
            self.pin_slow();
        }
    }

    #[inline]
    fn unpin_outer(&self) {
        self.flush_gray();
        self.state.swap(EPOCH.load(Acquire) << 1, SeqCst);
        if FLAGS.load(SeqCst) & STW != 0 {
            notify_collector();
        }
    }

    #[cold]
    fn pin_slow(&self) {
        if FLAGS.load(SeqCst) & STW != 0 {
            self.wait_for_world();
        }
    }

    #[cold]
    fn wait_for_world(&self) {
        let since = std::time::Instant::now();
        let _record = RecordBlocked(since);
        loop {
            self.state.swap(EPOCH.load(Acquire) << 1, SeqCst);
            BLOCKED.fetch_add(1, SeqCst);
            // One wake-up for both: the stop may wait for this thread to
            // unpin, and it bounds its wait while a thread is blocked.
            notify_collector();
            park_until_restart();
            BLOCKED.fetch_sub(1, SeqCst);
            self.state.swap(EPOCH.load(Acquire) << 1 | 1, SeqCst);
            if FLAGS.load(SeqCst) & STW == 0 {
                return;
            }
        }
    }

    /// Gives this thread's cached spans back to their span sets.
    ///
    /// # Safety
    /// The caller is the owner thread, not pinned, or the collector with the
    /// world stopped (no one else touches `cache`).
    pub(crate) unsafe fn release_cache(&self) {
        // SAFETY: exclusive access by the caller's contract.
        unsafe { (*self.cache.get()).release() };
    }
}

/// Registered threads. Lock order: collector lock → `THREADS` → others.
pub(crate) static THREADS: Mutex<Vec<Arc<ThreadState>>> = Mutex::new(Vec::new());
/// Collector flags, one word so that one SeqCst load reads them all.
pub(crate) static FLAGS: AtomicU8 = AtomicU8::new(0);
/// A stop of the world is requested or in progress.
pub(crate) const STW: u8 = 1;
/// The collector waits for threads (a handshake or a stop).
pub(crate) const WAITING: u8 = 2;
/// Marking is in progress: barriers shade.
pub(crate) const MARKING: u8 = 4;
/// Allocation is black (set once the arm handshake is complete).
pub(crate) const BLACK: u8 = 8;
/// Handshake epoch.
pub(crate) static EPOCH: AtomicU64 = AtomicU64::new(1);

/// Whether barriers must shade (INV-BARRIER).
#[inline(always)]
pub(crate) fn marking() -> bool {
    FLAGS.load(Relaxed) & MARKING != 0
}

/// Whether allocation must be black (INV-BLACK).
#[inline(always)]
pub(crate) fn alloc_black() -> bool {
    FLAGS.load(Relaxed) & BLACK != 0
}
/// The threads a stop blocked, and the relay that wakes them after it.
///
/// Why a relay: waking every blocked thread at once (a condition variable's
/// `notify_all`) from the collector, which is still running, let the
/// kernel queue a woken thread behind a busy one on a CPU, where it waited
/// for a scheduler tick (milliseconds; an idle CPU does not take over a
/// thread that ran a moment ago). So the restart wakes one thread, and
/// goes to sleep ([`let_blocked_run`]); each thread that leaves wakes the
/// next, at a moment when a CPU is free for it.
struct Parked {
    /// Restarts so far: a thread blocked by a stop leaves when it changes.
    restarts: u64,
    /// Threads blocked by the current stop.
    waiting: Vec<std::thread::Thread>,
    /// Threads blocked by a finished stop and not woken yet. Every entry
    /// is a thread inside [`park_until_restart`], so each thread that
    /// leaves can pass the relay on and none is left parked.
    relay: Vec<std::thread::Thread>,
}

/// Guards [`Parked`].
static PARK: Mutex<Parked> = Mutex::new(Parked {
    restarts: 0,
    waiting: Vec::new(),
    relay: Vec::new(),
});
/// How soon a handshake first looks again at the threads it waits for; the
/// interval doubles up to [`HANDSHAKE_POLL_MAX`] (a thread that stays pinned
/// long costs the collector few wake-ups).
const HANDSHAKE_POLL: std::time::Duration = std::time::Duration::from_micros(50);
const HANDSHAKE_POLL_MAX: std::time::Duration = std::time::Duration::from_micros(200);
/// The thread that waits for mutators in handshakes and stops (the
/// collector thread). Mutators wake it with `unpark`: the wait is
/// `park`, whose token makes a wake-up that comes before it count.
static WAITER: std::sync::OnceLock<std::thread::Thread> = std::sync::OnceLock::new();

const DEAD: usize = 1;

thread_local! {
    /// This thread's state: null = not registered yet, DEAD = exited.
    static CURRENT: Cell<*const ThreadState> = const { Cell::new(std::ptr::null()) };
    /// Owns the registration; its destructor unregisters the thread.
    static HANDLE: Handle = const { Handle(RefCell::new(None)) };
    /// This thread is running a collection (sweep drops run user code).
    pub(crate) static IN_COLLECTOR: Cell<bool> = const { Cell::new(false) };
}

struct Handle(RefCell<Option<Arc<ThreadState>>>);

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(ts) = self.0.borrow_mut().take() else {
            return;
        };
        CURRENT.with(|c| c.set(DEAD as *const ThreadState));
        if ts.depth.get() > 0 {
            // A guard outlives the thread (it was leaked, or lives in another
            // thread-local). Its pointers stay valid only if no cycle ever
            // passes: keep the state registered and pinned, forever.
            ts.exited.store(true, SeqCst);
            std::mem::forget(ts);
            return;
        }
        unregister(&ts);
    }
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks the registry for a thread registering or exiting. The collector
/// holds the lock while it stops the world; a thread waiting for it counts
/// as blocked by the stop (see `try_stop_the_world`), so that a pinned
/// thread joining it cannot deadlock with the collector.
fn lock_registry() -> MutexGuard<'static, Vec<Arc<ThreadState>>> {
    if let Ok(g) = THREADS.try_lock() {
        return g;
    }
    let _record = RecordBlocked(std::time::Instant::now());
    BLOCKED.fetch_add(1, SeqCst);
    notify_collector();
    let g = lock(&THREADS);
    BLOCKED.fetch_sub(1, SeqCst);
    g
}

/// Records, when dropped, the interval since `.0` as time a mutator was
/// blocked by the collector (`MemStats::blocked_hist`).
struct RecordBlocked(std::time::Instant);

impl Drop for RecordBlocked {
    fn drop(&mut self) {
        crate::stats::BLOCKED.record(self.0.elapsed().as_nanos() as u64);
    }
}

/// Wakes the collector if it waits for threads (lock-free: a thread that
/// wakes it never waits for it).
fn notify_collector() {
    if let Some(t) = WAITER.get() {
        t.unpark();
    }
}

/// Records the calling thread as the one that waits in [`handshake`] and
/// [`try_stop_the_world`] (the collector thread; they are only called
/// there). It is set before the waiter publishes `WAITING` or `STW`, so a
/// mutator that reads either flag finds it.
fn set_waiter() {
    let me = WAITER.get_or_init(std::thread::current);
    debug_assert_eq!(me.id(), std::thread::current().id());
}

fn unregister(ts: &Arc<ThreadState>) {
    let mut threads = lock_registry();
    ts.flush_gray();
    // SAFETY: the owner is exiting and not pinned; it holds THREADS, so the
    // world is not stopped and the collector does not touch its cache.
    unsafe { ts.release_cache() };
    // SAFETY: as above: `roots` is the owner's.
    crate::root::give_back(std::mem::take(unsafe { &mut *ts.roots.get() }));
    threads.retain(|t| !Arc::ptr_eq(t, ts));
}

#[cold]
#[inline(never)]
fn collector_reentry() -> ! {
    panic!(
        "tricolor: the heap was used from a `Drop` run by the collector; a managed value's \
         `Drop` must not pin, allocate or create roots (use `add_cleanup` for finalisation)"
    )
}

/// Registers the calling thread; null if its thread-locals are gone.
#[cold]
fn register() -> *const ThreadState {
    if IN_COLLECTOR.try_with(|c| c.get()).unwrap_or(false) {
        collector_reentry();
    }
    crate::options::init();
    let ts = Arc::new(ThreadState::new());
    let ok = HANDLE
        .try_with(|h| *h.0.borrow_mut() = Some(ts.clone()))
        .is_ok();
    if !ok {
        return std::ptr::null();
    }
    lock_registry().push(ts.clone());
    let p = Arc::as_ptr(&ts);
    CURRENT.with(|c| c.set(p));
    p
}

/// The calling thread's state, registering it on first use; null if the
/// thread is exiting (its thread-locals are destroyed).
#[inline]
fn current() -> *const ThreadState {
    let p = CURRENT
        .try_with(|c| c.get())
        .unwrap_or(DEAD as *const ThreadState);
    if (p as usize) > DEAD {
        return p;
    }
    if p as usize == DEAD {
        return std::ptr::null();
    }
    register()
}

/// Sets the calling thread's `dirty` flag (it made grey work the collector
/// has not seen: an assist).
pub(crate) fn set_dirty() {
    let p = CURRENT.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    if (p as usize) > DEAD {
        // SAFETY: a registered thread's state lives while its HANDLE does.
        unsafe { &*p }.dirty.store(true, SeqCst);
    }
}

/// Whether the calling thread holds a guard.
pub(crate) fn is_pinned() -> bool {
    let p = CURRENT.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    // SAFETY: a registered thread's state lives while its HANDLE does.
    (p as usize) > DEAD && unsafe { (*p).depth.get() } > 0
}

/// Waits until every thread of `threads` has passed a quiescent point
/// (or is unpinned). Never blocks a mutator.
pub(crate) fn handshake(threads: &[Arc<ThreadState>]) {
    set_waiter();
    let e = EPOCH.fetch_add(1, SeqCst) + 1;
    FLAGS.fetch_or(WAITING, SeqCst);
    let mut poll = HANDSHAKE_POLL;
    while !threads.iter().all(|t| {
        let s = t.state.load(SeqCst);
        s & 1 == 0 || s >> 1 >= e
    }) {
        std::thread::park_timeout(poll);
        poll = (poll * 2).min(HANDSHAKE_POLL_MAX);
    }
    FLAGS.fetch_and(!WAITING, SeqCst);
}

/// Threads waiting in `pin` for the world to restart.
static BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// Tries to stop the world: returns true when every thread in `threads` is
/// unpinned (new pins then wait until [`start_the_world`]). Returns false
/// when some thread has been blocked in `pin` by this stop for `patience`
/// while others stay pinned: a pinned thread may be waiting (a join, a
/// channel) for the blocked one, and only restarting lets both go on. The
/// caller must then restart the world. While nobody is blocked, waiting
/// costs no one anything, so it is not bounded.
pub(crate) fn try_stop_the_world(
    threads: &[Arc<ThreadState>],
    patience: std::time::Duration,
) -> bool {
    set_waiter();
    FLAGS.fetch_or(STW, SeqCst);
    let mut blocked_since: Option<std::time::Instant> = None;
    while threads.iter().any(|t| t.pinned()) {
        if BLOCKED.load(SeqCst) == 0 {
            blocked_since = None;
            std::thread::park();
            continue;
        }
        let since = *blocked_since.get_or_insert_with(std::time::Instant::now);
        let waited = since.elapsed();
        if waited >= patience {
            return false;
        }
        std::thread::park_timeout(patience - waited);
    }
    true
}

/// Restarts the world: wakes the first thread the stop blocked, which
/// starts the relay that wakes the others (see [`Parked`]), releases the
/// thread list the stop held, and stays off the CPU until the blocked
/// threads have run ([`let_blocked_run`]).
pub(crate) fn start_the_world(threads: MutexGuard<'static, Vec<Arc<ThreadState>>>) {
    let first = {
        let mut p = lock(&PARK);
        FLAGS.fetch_and(!STW, SeqCst);
        p.restarts = p.restarts.wrapping_add(1);
        let mut stopped = std::mem::take(&mut p.waiting);
        let first = stopped.pop();
        p.relay.append(&mut stopped);
        first
    };
    if let Some(t) = first {
        t.unpark();
    }
    drop(threads);
    let_blocked_run();
}

/// Sleeps until a stop is over (if one is in progress), then passes the
/// relay on: wakes the next thread still parked by a finished stop.
fn park_until_restart() {
    let next = {
        let mut p = lock(&PARK);
        if FLAGS.load(SeqCst) & STW == 0 {
            return;
        }
        let stop = p.restarts;
        let me = std::thread::current();
        p.waiting.push(me.clone());
        while p.restarts == stop {
            drop(p);
            std::thread::park();
            p = lock(&PARK);
        }
        // A spurious wake-up may have let this thread out before its turn:
        // it leaves the relay, so that every entry left is a parked thread.
        p.relay.retain(|t| t.id() != me.id());
        p.relay.pop()
    };
    if let Some(t) = next {
        t.unpark();
    }
}

/// The longest the collector stays off the CPU after a restart, waiting
/// for the threads the stop blocked to run ([`let_blocked_run`]).
const RESTART_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(1);
/// How often it looks meanwhile.
const RESTART_POLL: std::time::Duration = std::time::Duration::from_micros(20);

/// The end of a restart: sleeps until every thread the
/// stop blocked has run again (`BLOCKED` is zero), for at most
/// [`RESTART_WAIT_MAX`]. A scheduling measure, not synchronisation:
/// nothing depends on it for correctness. While the collector sleeps its
/// CPU is idle, so the relay's wake-ups land on a free CPU instead of
/// queueing behind a busy thread for a scheduler tick (milliseconds).
fn let_blocked_run() {
    let since = std::time::Instant::now();
    while BLOCKED.load(SeqCst) != 0 && since.elapsed() < RESTART_WAIT_MAX {
        std::thread::park_timeout(RESTART_POLL);
    }
}

/// Pins the calling thread: returns a guard that lets it read and allocate
/// managed objects.
///
/// While any guard of a thread lives, no collection cycle completes past
/// that thread, so `Gc<'g, T>` pointers borrowed from the guard stay valid.
/// Pins nest; only the outermost one costs anything (two atomic swaps for
/// the pair). Long-running code should call [`Guard::repin`] at loop heads,
/// or drop the guard now and then, so that collections can run.
///
/// ```
/// use tricolor::{Member, Trace};
/// #[derive(Trace)]
/// struct Pair { a: i64, next: Member<Pair> }
///
/// let g = tricolor::pin();
/// let p = g.alloc(Pair { a: 1, next: Member::null() });
/// let q = g.alloc(Pair { a: 2, next: Member::new(Some(p)) });
/// assert_eq!(q.next.load(&g).unwrap().a, 1);
/// ```
#[inline]
pub fn pin() -> Guard {
    let p = current();
    if p.is_null() {
        return Guard::temporary();
    }
    // SAFETY: a registered thread's state lives while its HANDLE does, which
    // outlives every guard of the thread (Handle::drop keeps it otherwise).
    let ts = unsafe { &*p };
    let d = ts.depth.get();
    if d == 0 {
        ts.pin_outer();
    }
    ts.depth.set(d + 1);
    Guard {
        // SAFETY: `p` is non-null.
        ts: unsafe { NonNull::new_unchecked(p as *mut ThreadState) },
        owned: None,
        _not_send: PhantomData,
    }
}

/// A pinned scope of a thread: `Gc<'g, T>` pointers live while it does.
///
/// Not `Send`: the pin belongs to the thread that made it.
pub struct Guard {
    ts: NonNull<ThreadState>,
    /// Set for a guard made while the thread's thread-locals are being
    /// destroyed: it carries its own, temporary registration.
    owned: Option<Arc<ThreadState>>,
    _not_send: PhantomData<*mut ()>,
}

impl Guard {
    #[cold]
    fn temporary() -> Guard {
        if IN_COLLECTOR.try_with(|c| c.get()).unwrap_or(false) {
            collector_reentry();
        }
        let ts = Arc::new(ThreadState::new());
        lock_registry().push(ts.clone());
        ts.pin_outer();
        ts.depth.set(1);
        Guard {
            ts: NonNull::from(&*ts),
            owned: Some(ts),
            _not_send: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn ts(&self) -> &ThreadState {
        // SAFETY: the state outlives the guard (see `pin`).
        unsafe { self.ts.as_ref() }
    }

    /// Passes a quiescent point if a collection is waiting for one, then
    /// pins again. Call it at the head of long loops that hold a guard.
    ///
    /// It takes `&mut self`, so no `Gc` borrowed from this guard can be
    /// alive across it. When other guards of this thread are alive (nested
    /// pins), it does nothing: they may still hold pointers. When no
    /// collection is waiting it costs two relaxed loads.
    #[inline]
    pub fn repin(&mut self) {
        if FLAGS.load(Relaxed) & (STW | WAITING) != 0 {
            self.repin_slow();
        }
    }

    /// Runs `f` with this thread offline: unpinned, so that a blocking call
    /// (I/O, a lock, a channel, a join) never holds up a collection, then
    /// pins again. It takes `&mut self`, so no `Gc` of this guard is alive
    /// across it; `f` may pin on its own.
    ///
    /// With other guards of this thread alive (nested pins) the thread
    /// cannot go offline (they may hold pointers): `f` then runs pinned.
    ///
    /// ```
    /// let mut g = tricolor::pin();
    /// let n = g.offline(|| std::thread::spawn(|| 42).join().unwrap());
    /// assert_eq!(n, 42);
    /// ```
    pub fn offline<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let ts = self.ts();
        if ts.depth.get() != 1 {
            return f();
        }
        struct Repin<'a>(&'a ThreadState);
        impl Drop for Repin<'_> {
            fn drop(&mut self) {
                self.0.pin_outer();
                self.0.depth.set(1);
            }
        }
        ts.depth.set(0);
        ts.unpin_outer();
        let _repin = Repin(ts);
        f()
    }

    #[cold]
    fn repin_slow(&mut self) {
        let ts = self.ts();
        if ts.depth.get() == 1 {
            ts.unpin_outer();
            ts.pin_outer();
        }
    }

    /// Allocates `value` in the heap and returns a pointer valid while this
    /// guard lives. Panics if the OS refuses memory; see [`Guard::try_alloc`].
    #[inline]
    pub fn alloc<T: Trace + Send + 'static>(&self, value: T) -> Gc<'_, T> {
        match self.try_alloc(value) {
            Ok(gc) => gc,
            Err(e) => alloc_failed(e),
        }
    }

    /// Like [`Guard::alloc`], but returns an error instead of panicking when
    /// the OS refuses memory or the object is larger than an arena.
    #[inline]
    pub fn try_alloc<T: Trace + Send + 'static>(&self, value: T) -> Result<Gc<'_, T>, AllocError> {
        let ts = self.ts();
        let slot = if Layout::<T>::CLASS != 0 {
            // SAFETY: the owner thread, pinned; nothing else uses the cache
            // now and allocation does not re-enter it.
            unsafe { (*ts.cache.get()).alloc_small(Layout::<T>::SPAN_CLASS)? }
        } else {
            cache::alloc_large(Layout::<T>::BYTES, !T::NEEDS_TRACE)?
        };
        // SAFETY: `slot` is a fresh slot of at least Layout::<T>::BYTES bytes,
        // aligned to Layout::<T>::ALIGN, owned by this thread until the
        // pointer escapes.
        let v = unsafe { init_object::<T>(ts, slot, value) };
        Ok(Gc::from_value_ptr(v))
    }

    /// Allocates an internal object of `bytes` value bytes described by
    /// `info`, with scan spans; returns its value pointer. The value is
    /// uninitialised: the caller initialises it before unpinning.
    pub(crate) fn alloc_dyn(
        &self,
        bytes: usize,
        info: &'static crate::object::TypeInfo,
    ) -> Result<usize, AllocError> {
        let total = bytes + 8;
        let class = crate::sizeclass::class_for(total, 8);
        let slot = if class != 0 && total <= crate::sizeclass::MAX_SMALL {
            // SAFETY: as in try_alloc.
            unsafe { (*self.ts().cache.get()).alloc_small(class << 1)? }
        } else {
            cache::alloc_large(total, false)?
        };
        // SAFETY: fresh slot with room for the header.
        unsafe { *(slot as *mut &'static crate::object::TypeInfo) = info };
        if alloc_black() {
            crate::collector::mark_new(slot + 8);
        }
        Ok(slot + 8)
    }
}

/// Writes the header(s) and value of a fresh object; seals its edges.
///
/// # Safety
/// `slot` is a fresh, exclusively owned slot laid out for `T`.
#[inline(always)]
unsafe fn init_object<T: Trace + 'static>(ts: &ThreadState, slot: usize, value: T) -> usize {
    let off = Layout::<T>::VALUE_OFFSET;
    let v = slot + off;
    // SAFETY: the slot holds the header(s) and value (caller's contract).
    unsafe {
        *((v - 8) as *mut &'static crate::object::TypeInfo) = Layout::<T>::INFO;
        if off > 8 {
            *(slot as *mut &'static crate::object::TypeInfo) = Layout::<T>::INFO;
        }
        std::ptr::write(v as *mut T, value);
    }
    if std::mem::needs_drop::<T>() {
        // SAFETY: `slot` is in a span of a mapped arena (INV-HEAPPTR).
        unsafe { crate::heap::meta_of(slot) }
            .has_drop
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if alloc_black() {
        // INV-BLACK: born marked; the edges it is born with count as stores.
        crate::collector::mark_new(v);
        if T::NEEDS_TRACE {
            let mut t = Tracer::new(Mode::SealShade);
            // SAFETY: just initialised.
            unsafe { (*(v as *const T)).trace(&mut t) };
            for x in t.stack.drain(..) {
                crate::collector::shade(ts, x);
            }
        }
    } else if T::NEEDS_TRACE {
        // INV-SEAL: edges born inside a managed object become loadable.
        let mut t = Tracer::new(Mode::Seal);
        // SAFETY: just initialised.
        unsafe { (*(v as *const T)).trace(&mut t) };
    }
    v
}

#[cold]
#[inline(never)]
fn alloc_failed(e: AllocError) -> ! {
    panic!("{e}")
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        let ts = self.ts();
        let d = ts.depth.get() - 1;
        ts.depth.set(d);
        if d == 0 {
            ts.unpin_outer();
            if let Some(owned) = self.owned.take() {
                unregister(&owned);
            }
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("depth", &self.ts().depth.get())
            .finish()
    }
}
