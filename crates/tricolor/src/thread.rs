//! Mutator threads: registration, pinning (guards) and stopping the world.
//!
//! What: every thread that touches the heap registers a [`ThreadState`] on
//! first use and unregisters when it exits (returning its cache and root
//! slots). A [`Guard`] pins the thread: while any guard lives, the thread may
//! hold unrooted pointers (`Gc<'g, T>`), so no cycle may pass it.
//!
//! The protocol (this first collector stops the world; the concurrent one
//! replaces step 2's wait for "unpinned" with handshakes, not the API):
//! 1. Pin (outermost guard): `pinned.swap(true, SeqCst)`, then read `STW`.
//!    If a stop is requested, unpin, wait until it is over, retry.
//! 2. The collector sets `STW` (SeqCst), then waits until every registered
//!    thread reads unpinned. This is Dekker's pattern: with both sides
//!    sequentially consistent, either the collector sees the thread pinned
//!    (and waits) or the thread sees `STW` (and backs off). Never both miss.
//! 3. Unpin (outermost guard drop): `pinned.swap(false, SeqCst)`, then if
//!    `STW` is set, wake the collector; if a cycle is pending, run it here
//!    (this is a quiescent point).
//! 4. The collector clears `STW` and wakes waiting threads.
//!
//! Invariants: INV-GUARD (a `Gc<'g, T>` borrows its guard; `repin` takes
//! `&mut Guard`; `Guard` is `!Send`), so while the world is stopped no
//! mutator holds an unrooted pointer. Threads that are not pinned never hold
//! a stop up.
//!
//! Shared fields: `pinned` (owner writes, collector reads, SeqCst);
//! `cache`/`roots` (owner while pinned, collector while the world is stopped
//! — the swap/load pairs above order the two); `depth` (owner only);
//! `exited` (owner at exit, collector reads).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::cache::{self, AllocError, ThreadCache};
use crate::object::Layout;
use crate::trace::{Mode, Trace, Tracer};
use crate::Gc;

/// A registered mutator thread.
pub(crate) struct ThreadState {
    pub(crate) pinned: AtomicBool,
    /// The thread exited while a guard was still alive (a leaked guard).
    pub(crate) exited: AtomicBool,
    depth: Cell<usize>,
    pub(crate) cache: UnsafeCell<ThreadCache>,
    /// Free root slots owned by this thread (addresses of `RootSlot`s).
    pub(crate) roots: UnsafeCell<Vec<usize>>,
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
            pinned: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            depth: Cell::new(0),
            cache: UnsafeCell::new(ThreadCache::new()),
            roots: UnsafeCell::new(Vec::new()),
        }
    }

    #[inline]
    fn pin_outer(&self) {
        if IN_COLLECTOR.get() {
            collector_reentry();
        }
        self.pinned.swap(true, SeqCst);
        if STW.load(SeqCst) {
            self.wait_for_world();
        }
    }

    #[inline]
    fn unpin_outer(&self) {
        self.pinned.swap(false, SeqCst);
        if STW.load(SeqCst) {
            notify_collector();
        }
        if crate::pacer::GC_PENDING.load(std::sync::atomic::Ordering::Relaxed) {
            crate::collector::collect_pending();
        }
    }

    #[cold]
    fn wait_for_world(&self) {
        loop {
            self.pinned.swap(false, SeqCst);
            notify_collector();
            {
                let mut g = lock(&PARK);
                while STW.load(SeqCst) {
                    g = RESUME.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            self.pinned.swap(true, SeqCst);
            if !STW.load(SeqCst) {
                return;
            }
        }
    }

    /// Commits (and with `release`, returns) this thread's cached spans and
    /// root slots.
    ///
    /// # Safety
    /// The caller is the owner thread, not pinned, or the collector with the
    /// world stopped (no one else touches `cache`/`roots`).
    pub(crate) unsafe fn flush(&self, release: bool) {
        // SAFETY: exclusive access by the caller's contract.
        unsafe { (*self.cache.get()).flush(release) };
        if release {
            // SAFETY: as above.
            let roots = unsafe { &mut *self.roots.get() };
            crate::root::give_back(std::mem::take(roots));
        }
    }
}

/// Registered threads. Lock order: collector lock → `THREADS` → others.
pub(crate) static THREADS: Mutex<Vec<Arc<ThreadState>>> = Mutex::new(Vec::new());
/// A stop of the world is requested or in progress.
pub(crate) static STW: AtomicBool = AtomicBool::new(false);
static PARK: Mutex<()> = Mutex::new(());
/// The collector waits here for threads to unpin.
static COLLECTOR_WAIT: Condvar = Condvar::new();
/// Threads wait here for the world to restart.
static RESUME: Condvar = Condvar::new();

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

fn notify_collector() {
    let _g = lock(&PARK);
    COLLECTOR_WAIT.notify_all();
}

fn unregister(ts: &Arc<ThreadState>) {
    let mut threads = lock(&THREADS);
    // SAFETY: the owner is exiting, not pinned, and holds THREADS, so no
    // collector is running.
    unsafe { ts.flush(true) };
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
    lock(&THREADS).push(ts.clone());
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

/// Whether the calling thread holds a guard.
pub(crate) fn is_pinned() -> bool {
    let p = CURRENT.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    // SAFETY: a registered thread's state lives while its HANDLE does.
    (p as usize) > DEAD && unsafe { (*p).depth.get() } > 0
}

/// Stops the world: returns when every thread in `threads` is unpinned.
/// New pins wait until [`start_the_world`].
pub(crate) fn stop_the_world(threads: &[Arc<ThreadState>]) {
    STW.store(true, SeqCst);
    let mut g = lock(&PARK);
    while threads.iter().any(|t| t.pinned.load(SeqCst)) {
        g = COLLECTOR_WAIT.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// Restarts the world.
pub(crate) fn start_the_world() {
    let _g = lock(&PARK);
    STW.store(false, SeqCst);
    RESUME.notify_all();
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
        lock(&THREADS).push(ts.clone());
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
        use std::sync::atomic::Ordering::Relaxed;
        if STW.load(Relaxed) || crate::pacer::GC_PENDING.load(Relaxed) {
            self.repin_slow();
        }
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
        let v = unsafe { init_object::<T>(slot, value) };
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
        Ok(slot + 8)
    }
}

/// Writes the header(s) and value of a fresh object; seals its edges.
///
/// # Safety
/// `slot` is a fresh, exclusively owned slot laid out for `T`.
#[inline(always)]
unsafe fn init_object<T: Trace + 'static>(slot: usize, value: T) -> usize {
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
    if T::NEEDS_TRACE {
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
