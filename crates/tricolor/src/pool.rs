//! `Pool<T>`: Go's `sync.Pool`, a cache of reusable values that the
//! collector empties over two cycles.
//!
//! # What
//!
//! A [`Pool`] keeps values that were put back so that `get` can return one
//! instead of calling the pool's `new` function. It is a cache, not a free
//! list: any value in it may be dropped at any time, and Go's lifetime rule
//! holds: a value put into the pool and not taken again is dropped within
//! two collection cycles (primary cache -> victim cache -> dropped), so a
//! pool never pins memory across more than two cycles. The pool works in
//! programs that never allocate a GC object: then no cycle runs (unless
//! `gc()` is called) and the pool simply keeps its values.
//!
//! # Algorithm
//!
//! Like Go's per-P `poolLocal { private, shared }`, with threads for Ps:
//!
//! 1. **Private slot.** Each thread has, per pool, one private slot holding
//!    at most one value and the epoch at which it was put (`Local<T>`). The
//!    slots live in a thread-local `Locals` (a `Vec` indexed by the pool's
//!    `index`, each entry tagged with the pool's unique `id`, so a reused
//!    index never hands out a dead pool's value). `put` fills the empty
//!    private slot, `get` empties it: no shared write, no lock, no atomic
//!    read-modify-write (the fast path, [`Pool::get_raw`] and [`Pool::put`]).
//! 2. **Shared shards.** Otherwise `put` pushes on the pool's shard of this
//!    thread (`2 x CPUs` shards of `Mutex<Shard { primary, victim }>`, a
//!    thread picks its shard once, round-robin); `get` pops its own shard's
//!    primary, then steals from the other shards' primaries, then takes from
//!    the victims (own shard first), then calls `new`.
//! 3. **The epoch.** A global `POOL_EPOCH` counts collection cycles. At the
//!    end of each cycle the collector calls [`on_gc_cycle`], which bumps it
//!    and rotates every live pool's shards: the old victim is taken out, the
//!    primary becomes the victim, the primary starts empty. The taken values
//!    are dropped after every pool lock is released, on the collector thread
//!    (the world is running; `IN_COLLECTOR` is set, as for the sweep's
//!    `Drop`s, so a `Drop` that uses the heap or calls `gc()` panics with a
//!    clear message instead of deadlocking; panics are caught and reported).
//! 4. **Private slots age lazily.** The collector cannot touch another
//!    thread's private slots. Each thread remembers the epoch it last saw
//!    (`Locals::seen`); the first pool operation of a thread after a cycle
//!    (the fast path checks `seen == POOL_EPOCH`) takes the slow path, which
//!    drops private values put two or more epochs ago, keeps the ones put one
//!    epoch ago as victims (a `get` still returns them) and drops the entries
//!    of pools that were dropped meanwhile.
//! 5. **Thread exit.** The thread-local destructor hands each private value
//!    back to its pool's shard (to the primary or the victim by its age, or
//!    drops it if it is two or more epochs old or the pool is gone).
//! 6. **Pool drop.** `Drop for Pool` marks the pool dead, drains its shards
//!    and the dropping thread's private slot, and drops those values on the
//!    dropping thread. Private values of the pool in other threads are
//!    dropped at those threads' next pool operation after a cycle, or at
//!    their exit.
//!
//! # The lifetime argument ("at most two cycles")
//!
//! - Shared values: a value pushed during epoch `e` is in a primary; the
//!   rotation at the end of cycle `e+1` (which makes the epoch `e+1`) moves
//!   it to a victim, the one at the end of cycle `e+2` takes it out and drops
//!   it. Rotation happens under the shard's lock, so a value is in exactly
//!   one place; pushes and pops after a rotation see the new primary.
//! - Private values: a value put by a thread that had seen epoch `e` is
//!   stamped `e` (the global epoch is `>= e`, so the stamp is never younger
//!   than the truth, only older: values may be dropped early, never late).
//!   At that thread's next pool operation with `POOL_EPOCH >= e + 2` it is
//!   dropped before anything else happens. **Difference from Go:** Go clears
//!   every P's private slot at the stop of the world (`poolCleanup`); here a
//!   thread that stops using pools keeps at most one value per pool in its
//!   private slots until its next pool operation or its exit. Values there
//!   are at most one per (thread, pool).
//! - `gc()` returns after `finish_cycle`, so after `gc()` the calling thread
//!   sees the new epoch (the completion counter is read under the `CONTROL`
//!   mutex, after the collector bumped the epoch): `put(x); gc(); get()`
//!   returns `x` from the victim, and `put(x); gc(); gc(); get()` calls
//!   `new`.
//!
//! # Shared state and its synchronisation
//!
//! - `POOL_EPOCH`: written by the collector thread only (`fetch_add` in
//!   `on_gc_cycle`), read `Relaxed` by every pool operation (a read-mostly
//!   cache line: one miss per cycle per thread).
//! - `Shard { primary, victim }`: under the shard's `Mutex`; written by any
//!   thread's slow path, by the rotation and by `Drop for Pool`. Next to it,
//!   `primary_len` and `victim_len` are stored under the lock and read
//!   `Relaxed` without it, to skip empty shards: a `get` may then miss a
//!   value being pushed (and call `new`: a pool may always miss), and the
//!   rotation may skip a shard whose first push is racing with it (that
//!   value counts as pushed after the rotation, and still leaves within two
//!   cycles of its push). A push that happens-before the cycle (e.g. before
//!   the `gc()` call that requests it) is always seen.
//! - `Inner::alive`: set false by `Drop for Pool` *before* it drains the
//!   shards under their locks; a thread-exit push checks it under the shard
//!   lock, so nothing enters a shard after the drain and the last `Arc` of
//!   `Inner` (perhaps dropped by the collector) holds no user value. The
//!   `new` closure lives in `Pool`, so it is dropped by the pool's owner.
//! - `POOLS` (registry of `Weak` pools, for the rotation), `FREE_INDEXES`:
//!   mutexes, taken on `Pool::new`/`drop` and once per cycle; no user code
//!   runs under them.
//! - Statistics (`pool_stats`): `POOLS_ALIVE`, `SHARED_PRIMARY`,
//!   `SHARED_VICTIM` are `Relaxed` counters updated under the shard locks
//!   (so approximate only while a rotation runs); each thread's
//!   `ThreadCounts` is written by its own thread (`Relaxed` load and store,
//!   no read-modify-write) and read by `pool_stats`.
//!
//! INV-POOL-ID: pool ids are unique (never reused) and an entry with a
//! pool's id holds a `Local<T>` of that pool's `T` (only `with_private`
//! makes entries, with its own id). The fast path relies on it to cast a
//! slot to `Local<T>` after one id compare (the one `unsafe` block here:
//! `Entry::local`; a `dyn Any` downcast costs a virtual call, about a
//! tenth of a get+put); the slow path downcasts. A `RefCell` guards slots
//! against re-entrance (a `new` or a `Drop` that uses a pool): user code
//! never runs while the `RefCell` is borrowed, and if it is borrowed anyway
//! (or the thread-local is gone, during thread exit) the operation falls back
//! to the shared shards.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// Collection cycles seen by pools (bumped by `on_gc_cycle`).
static POOL_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Unique pool ids (never reused).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Thread-local slot indexes: the next fresh one, and the freed ones.
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);
static FREE_INDEXES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Every pool, for the rotation.
static POOLS: Mutex<Vec<Weak<dyn Rotate>>> = Mutex::new(Vec::new());
/// Statistics.
static POOLS_ALIVE: AtomicUsize = AtomicUsize::new(0);
static SHARED_PRIMARY: AtomicIsize = AtomicIsize::new(0);
static SHARED_VICTIM: AtomicIsize = AtomicIsize::new(0);
static THREAD_COUNTS: Mutex<Vec<Arc<ThreadCounts>>> = Mutex::new(Vec::new());
/// Round-robin shard choice of threads.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn shard_count() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Approximate sizes of all pools, for the metrics registry
/// (`/sync/pool/...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    /// Pools alive (created and not dropped).
    pub pools: u64,
    /// Values in primary caches: put since the last cycle (shared shards,
    /// and private slots of threads that have seen the last cycle).
    pub primary: u64,
    /// Values in victim caches: put before the last cycle, still reusable,
    /// plus values of idle threads' private slots that wait for their
    /// thread's lazy drop (see the module docs).
    pub victim: u64,
}

/// Returns approximate pool sizes: the number of pools alive, of values in
/// primary caches and of values in victim caches (see [`PoolStats`]).
///
/// Cheap: three counter loads plus one pass over the threads that used a
/// pool (three loads each), under one mutex that pool fast paths never
/// take. The counts are exact when no pool operation or cycle is running;
/// otherwise each may be off by the operations in flight. It never blocks
/// on user code.
pub(crate) fn pool_stats() -> PoolStats {
    let now = POOL_EPOCH.load(Relaxed);
    let (mut primary, mut victim) = (
        SHARED_PRIMARY.load(Relaxed).max(0) as u64,
        SHARED_VICTIM.load(Relaxed).max(0) as u64,
    );
    {
        let mut threads = lock(&THREAD_COUNTS);
        threads.retain(|c| Arc::strong_count(c) > 1);
        for c in threads.iter() {
            // (Never negative; read as signed in case of a bug, not to
            // report 2^64.)
            let (p, v) = (
                (c.primary.load(Relaxed) as isize).max(0) as u64,
                (c.victim.load(Relaxed) as isize).max(0) as u64,
            );
            if c.seen.load(Relaxed) == now {
                primary += p;
                victim += v;
            } else {
                victim += p + v;
            }
        }
    }
    PoolStats {
        pools: POOLS_ALIVE.load(Relaxed) as u64,
        primary,
        victim,
    }
}

/// The collection-cycle hook, called by the collector thread at the end of
/// every cycle (`finish_cycle`: after the sweep, the world running): bumps
/// the epoch and rotates every pool's shards (primary -> victim, old victim
/// dropped). The dropped values are dropped after all pool locks are
/// released, with `IN_COLLECTOR` set; a panic in their `Drop` is caught and
/// reported.
pub(crate) fn on_gc_cycle() {
    POOL_EPOCH.fetch_add(1, Relaxed);
    let pools: Vec<Arc<dyn Rotate>> = {
        let mut pools = lock(&POOLS);
        pools.retain(|w| w.strong_count() > 0);
        pools.iter().filter_map(Weak::upgrade).collect()
    };
    let garbage: Vec<Box<dyn Send>> = pools.iter().filter_map(|p| p.rotate()).collect();
    if garbage.is_empty() {
        return;
    }
    let prev = crate::thread::IN_COLLECTOR.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(garbage)));
    crate::thread::IN_COLLECTOR.with(|c| c.set(prev));
    if result.is_err() {
        eprintln!("tricolor: a `Drop` of a pooled value panicked at the end of a cycle (ignored)");
    }
}

/// A pool, seen by the rotation.
trait Rotate: Send + Sync {
    /// Rotates the shards; returns the old victims, if any.
    fn rotate(&self) -> Option<Box<dyn Send>>;
}

/// One shard of a pool's shared cache.
struct Shard<T> {
    primary: Vec<T>,
    victim: Vec<T>,
}

/// A shard, its lock, and its lengths readable without the lock (written
/// under it), so that a `get` skips empty shards without locking them.
#[repr(align(128))]
struct ShardCell<T> {
    shard: Mutex<Shard<T>>,
    primary_len: AtomicUsize,
    victim_len: AtomicUsize,
}

impl<T> ShardCell<T> {
    /// Records the lengths (under the lock).
    fn set_lens(&self, s: &Shard<T>) {
        self.primary_len.store(s.primary.len(), Relaxed);
        self.victim_len.store(s.victim.len(), Relaxed);
    }
}

/// The part of a pool the registry and the private slots point to.
struct Inner<T> {
    /// False once the `Pool` is dropped (see the module docs).
    alive: AtomicBool,
    shards: Box<[ShardCell<T>]>,
}

impl<T: Send + 'static> Rotate for Inner<T> {
    fn rotate(&self) -> Option<Box<dyn Send>> {
        let mut old = Vec::new();
        for c in self.shards.iter() {
            if c.primary_len.load(Relaxed) == 0 && c.victim_len.load(Relaxed) == 0 {
                continue;
            }
            let mut s = lock(&c.shard);
            let dead = std::mem::take(&mut s.victim);
            s.victim = std::mem::take(&mut s.primary);
            c.set_lens(&s);
            let moved = s.victim.len() as isize;
            SHARED_PRIMARY.fetch_sub(moved, Relaxed);
            SHARED_VICTIM.fetch_add(moved - dead.len() as isize, Relaxed);
            if !dead.is_empty() {
                old.push(dead);
            }
        }
        (!old.is_empty()).then(|| Box::new(old) as Box<dyn Send>)
    }
}

impl<T> Inner<T> {
    /// Pushes `x` on shard `i`'s primary (or victim); gives it back if the
    /// pool is dropped.
    fn push(&self, i: usize, x: T, victim: bool) -> Result<(), T> {
        let c = &self.shards[i % self.shards.len()];
        let mut s = lock(&c.shard);
        if !self.alive.load(Relaxed) {
            return Err(x);
        }
        if victim {
            s.victim.push(x);
            SHARED_VICTIM.fetch_add(1, Relaxed);
        } else {
            s.primary.push(x);
            SHARED_PRIMARY.fetch_add(1, Relaxed);
        }
        c.set_lens(&s);
        Ok(())
    }

    /// Go's `getSlow` after the private slot: own primary, others'
    /// primaries, then the victims.
    fn pop(&self, i: usize) -> Option<T> {
        let n = self.shards.len();
        for victim in [false, true] {
            for k in 0..n {
                let c = &self.shards[(i + k) % n];
                let len = if victim {
                    &c.victim_len
                } else {
                    &c.primary_len
                };
                if len.load(Relaxed) == 0 {
                    continue; // Empty (or being filled: a miss is allowed).
                }
                let mut s = lock(&c.shard);
                let x = if victim {
                    s.victim.pop()
                } else {
                    s.primary.pop()
                };
                c.set_lens(&s);
                if let Some(x) = x {
                    let total = if victim {
                        &SHARED_VICTIM
                    } else {
                        &SHARED_PRIMARY
                    };
                    total.fetch_sub(1, Relaxed);
                    return Some(x);
                }
            }
        }
        None
    }
}

/// Per-thread pool counters, written by their thread only (cache-line
/// aligned: two threads' counters never share a line).
#[derive(Default)]
#[repr(align(128))]
struct ThreadCounts {
    /// The epoch the thread last saw.
    seen: AtomicU64,
    /// Private values stamped `seen`.
    primary: AtomicUsize,
    /// Private values stamped earlier.
    victim: AtomicUsize,
}

impl ThreadCounts {
    /// One private value stamped `epoch` left (the thread saw `seen`).
    #[inline]
    fn forget(&self, epoch: u64, seen: u64) {
        let c = if epoch == seen {
            &self.primary
        } else {
            &self.victim
        };
        c.store(c.load(Relaxed).wrapping_sub(1), Relaxed);
    }
}

/// A thread's private slot for one pool (cache-line aligned: two threads'
/// slots never share a line).
#[repr(align(128))]
struct Local<T> {
    item: Option<T>,
    /// The epoch `item` was put at.
    epoch: u64,
    inner: Weak<Inner<T>>,
    shard: usize,
}

/// `Local<T>`, type-erased (`&mut dyn Slot` upcasts to `&mut dyn Any`).
trait Slot: Any {
    /// The epoch of the held value, if any.
    fn held(&self) -> Option<u64>;
    /// Whether the pool is dropped.
    fn dead(&self) -> bool;
    /// Takes out the held value if it is two or more epochs old at `now`.
    fn expire(&mut self, now: u64) -> Option<Box<dyn Any>>;
}

impl<T: Send + 'static> Slot for Local<T> {
    fn held(&self) -> Option<u64> {
        self.item.as_ref().map(|_| self.epoch)
    }
    fn dead(&self) -> bool {
        self.inner.strong_count() == 0
    }
    fn expire(&mut self, now: u64) -> Option<Box<dyn Any>> {
        if now.saturating_sub(self.epoch) < 2 {
            return None;
        }
        self.item.take().map(|x| Box::new(x) as Box<dyn Any>)
    }
}

impl<T> Drop for Local<T> {
    /// Thread exit (or a dead pool's entry): back to the shard, by age.
    fn drop(&mut self) {
        let Some(x) = self.item.take() else { return };
        let age = POOL_EPOCH.load(Relaxed).saturating_sub(self.epoch);
        if age < 2 {
            if let Some(inner) = self.inner.upgrade() {
                let _ = inner.push(self.shard, x, age == 1);
            }
        }
    }
}

/// One entry of a thread's private slots.
struct Entry {
    /// The pool's unique id (indexes are reused).
    id: u64,
    slot: Box<dyn Slot>,
}

impl Entry {
    /// The slot as the `Local<T>` of pool `id`, if this entry is that
    /// pool's. The fast path's check: one compare, no virtual call.
    #[inline(always)]
    fn local<T: Send + 'static>(&mut self, id: u64) -> Option<&mut Local<T>> {
        if self.id != id {
            return None;
        }
        debug_assert!((&mut *self.slot as &mut dyn Any).is::<Local<T>>());
        // Pool ids are unique (taken from `NEXT_ID`, never reused), each pool
        // has one `T`, and only `with_private` makes entries, with its own
        // pool's id and a `Local<T>` of that `T`.
        let p: *mut dyn Slot = &mut *self.slot;
        // SAFETY: INV-POOL-ID: an entry with this id holds a `Local<T>`; the
        // reference keeps the borrow of `self`.
        let local = unsafe { &mut *p.cast::<Local<T>>() };
        Some(local)
    }
}

/// A thread's private slots of all pools.
struct Locals {
    /// The epoch this thread last saw.
    seen: u64,
    /// This thread's shard (any pool).
    shard: usize,
    counts: Option<Arc<ThreadCounts>>,
    /// Indexed by `Pool::index`.
    entries: Vec<Option<Entry>>,
}

impl Drop for Locals {
    fn drop(&mut self) {
        if let Some(c) = &self.counts {
            c.primary.store(0, Relaxed);
            c.victim.store(0, Relaxed);
        }
        // The entries drop next: `Drop for Local` returns their values.
    }
}

thread_local! {
    static LOCALS: RefCell<Locals> = const {
        RefCell::new(Locals { seen: 0, shard: usize::MAX, counts: None, entries: Vec::new() })
    };
}

/// Go's `sync.Pool`: a thread-safe cache of reusable values of type `T`,
/// emptied by the collector over two cycles.
///
/// [`get`](Pool::get) returns a value from the pool, or a new one made by
/// the function given to [`Pool::new`]; the [`Pooled`] guard puts it back
/// when dropped. Each thread has a private slot per pool (the fast path:
/// no lock, no shared write), and the pool has sharded shared caches behind
/// it. Go's lifetime rule holds: a value that stays in the pool is dropped
/// within two collection cycles (see below for an idle thread's private
/// slot). A value taken from the pool is in whatever state the last user left
/// it in: reset it yourself.
///
/// ```
/// use tricolor::Pool;
///
/// let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096));
/// {
///     let mut buf = pool.get();   // a Pooled<Vec<u8>>: derefs to the Vec
///     buf.clear();
///     buf.extend_from_slice(b"hello");
///     assert_eq!(&buf[..], b"hello");
/// }                               // back in the pool
/// let buf = pool.get_raw();       // the same Vec, owned
/// assert!(buf.capacity() >= 4096);
/// pool.put(buf);                  // back again
///
/// // Go's lifetime rule: a value not taken survives one cycle (as a
/// // victim) and is dropped at the second.
/// tricolor::gc();
/// assert_eq!(pool.get_raw(), b"hello");
/// ```
///
/// Lifetimes, precisely: values in the shared caches are moved to the
/// victim cache at the end of the next cycle and dropped (on the collector
/// thread) at the end of the one after. A thread's private value is checked
/// lazily, by that thread: it is dropped at the thread's first pool
/// operation after its second cycle, or when the thread exits (Go clears
/// them during its stop-the-world instead). Dropping the `Pool` drops the
/// values in its shared caches and in the dropping thread's private slot at
/// once, other threads' private values of it lazily. `Pool` works whether or
/// not the program uses the garbage-collected heap; without cycles, values
/// just stay pooled.
pub struct Pool<T: Send + 'static> {
    inner: Arc<Inner<T>>,
    new: Box<dyn Fn() -> T + Send + Sync>,
    /// Unique, never reused.
    id: u64,
    /// Index in the thread-local slots, reused after the pool is dropped.
    index: usize,
}

impl<T: Send + 'static> Pool<T> {
    /// Makes an empty pool; `new` makes a value when the pool has none (Go's
    /// `Pool.New`).
    ///
    /// ```
    /// let pool = tricolor::Pool::new(String::new);
    /// assert_eq!(*pool.get(), "");
    /// ```
    pub fn new(new: impl Fn() -> T + Send + Sync + 'static) -> Pool<T> {
        let shards = (0..shard_count())
            .map(|_| ShardCell {
                shard: Mutex::new(Shard {
                    primary: Vec::new(),
                    victim: Vec::new(),
                }),
                primary_len: AtomicUsize::new(0),
                victim_len: AtomicUsize::new(0),
            })
            .collect();
        let inner = Arc::new(Inner {
            alive: AtomicBool::new(true),
            shards,
        });
        let weak: Weak<dyn Rotate> = Arc::downgrade(&inner) as Weak<dyn Rotate>;
        lock(&POOLS).push(weak);
        POOLS_ALIVE.fetch_add(1, Relaxed);
        let index = lock(&FREE_INDEXES)
            .pop()
            .unwrap_or_else(|| NEXT_INDEX.fetch_add(1, Relaxed));
        Pool {
            inner,
            new: Box::new(new),
            id: NEXT_ID.fetch_add(1, Relaxed),
            index,
        }
    }

    /// Takes a value from the pool (or makes one with `new`) in a guard
    /// that puts it back when dropped.
    ///
    /// ```
    /// let pool = tricolor::Pool::new(|| 7);
    /// let mut v = pool.get();
    /// *v += 1;
    /// drop(v);                        // back in the pool
    /// assert_eq!(pool.get_raw(), 8);
    /// ```
    #[inline]
    pub fn get(&self) -> Pooled<'_, T> {
        let mut p = Pooled {
            pool: self,
            value: None,
        };
        self.take_private(&mut p.value);
        if p.value.is_none() {
            p.value = Some(self.get_slow());
        }
        p
    }

    /// Takes a value from the pool, or makes one with `new` (Go's
    /// `Pool.Get`); it is not returned to the pool unless [`put`](Pool::put).
    ///
    /// ```
    /// let pool = tricolor::Pool::new(|| 0u32);
    /// pool.put(5);
    /// assert_eq!(pool.get_raw(), 5);
    /// assert_eq!(pool.get_raw(), 0);  // empty: made by `new`
    /// ```
    #[inline]
    pub fn get_raw(&self) -> T {
        let mut x = None;
        self.take_private(&mut x);
        match x {
            Some(x) => x,
            None => self.get_slow(),
        }
    }

    /// Puts a value into the pool (Go's `Pool.Put`).
    ///
    /// ```
    /// let pool = tricolor::Pool::new(Vec::<u8>::new);
    /// pool.put(vec![1, 2, 3]);
    /// assert_eq!(pool.get_raw(), [1, 2, 3]);
    /// ```
    #[inline]
    pub fn put(&self, x: T) {
        self.put_option(&mut Some(x));
    }

    /// `put` of the value in `x`, if any (one move fewer for `Pooled`).
    #[inline]
    fn put_option(&self, x: &mut Option<T>) {
        self.put_private(x);
        if let Some(x) = x.take() {
            self.put_slow(x);
        }
    }

    /// The fast path's lookup: runs `f` on this thread's private slot of
    /// this pool, with the epoch the thread saw and its counters, if the
    /// thread-local is available and not borrowed, the thread is up to date
    /// with the epoch, and the slot exists. Otherwise does nothing (the
    /// caller falls back to the shared shards).
    #[inline(always)]
    fn with_fast_slot(&self, f: impl FnOnce(&mut Local<T>, u64, Option<&ThreadCounts>)) {
        let _ = LOCALS.try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return;
            };
            let Locals {
                seen,
                counts,
                entries,
                ..
            } = &mut *l;
            if *seen != POOL_EPOCH.load(Relaxed) {
                return;
            }
            let Some(Some(e)) = entries.get_mut(self.index) else {
                return;
            };
            if let Some(local) = e.local::<T>(self.id) {
                f(local, *seen, counts.as_deref());
            }
        });
    }

    /// The fast `get`: moves this thread's private value into `out` (which
    /// is `None`), if the thread is up to date with the epoch and the slot
    /// is full.
    #[inline]
    fn take_private(&self, out: &mut Option<T>) {
        self.with_fast_slot(|local, seen, counts| {
            if local.item.is_none() {
                return;
            }
            std::mem::swap(out, &mut local.item); // `out` is None.
            if let Some(c) = counts {
                c.forget(local.epoch, seen);
            }
        });
    }

    /// The fast `put`: moves `x` into this thread's empty private slot,
    /// leaving `None` (or leaves it where it is).
    #[inline]
    fn put_private(&self, x: &mut Option<T>) {
        self.with_fast_slot(|local, seen, counts| {
            if local.item.is_some() {
                return;
            }
            std::mem::swap(x, &mut local.item); // `local.item` was None.
            local.epoch = seen;
            if let Some(c) = counts {
                c.primary.store(c.primary.load(Relaxed) + 1, Relaxed);
            }
        });
    }

    /// Brings this thread's slots up to date (drops expired values and dead
    /// pools' entries, after releasing the borrow), makes this pool's entry,
    /// then runs `f` on it. Returns `f`'s result (None if the thread-local
    /// is unavailable) and this thread's shard.
    fn with_private<R>(
        &self,
        f: impl FnOnce(&mut Local<T>, &ThreadCounts, u64) -> R,
    ) -> (Option<R>, usize) {
        let mut garbage: Vec<Box<dyn Any>> = Vec::new();
        let mut dead: Vec<Entry> = Vec::new();
        let r = LOCALS.try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            let l = &mut *l;
            let counts = l
                .counts
                .get_or_insert_with(|| {
                    let c = Arc::new(ThreadCounts::default());
                    lock(&THREAD_COUNTS).push(c.clone());
                    c
                })
                .clone();
            if l.shard == usize::MAX {
                l.shard = NEXT_SHARD.fetch_add(1, Relaxed) % shard_count();
            }
            let now = POOL_EPOCH.load(Relaxed);
            if l.seen != now {
                let mut held = 0;
                for e in l.entries.iter_mut() {
                    if e.as_ref().is_some_and(|e| e.slot.dead()) {
                        dead.extend(e.take());
                    } else if let Some(e) = e {
                        garbage.extend(e.slot.expire(now));
                        held += e.slot.held().is_some() as usize;
                    }
                }
                l.seen = now;
                counts.seen.store(now, Relaxed);
                counts.primary.store(0, Relaxed);
                counts.victim.store(held, Relaxed);
            }
            if l.entries.len() <= self.index {
                l.entries.resize_with(self.index + 1, || None);
            }
            let e = &mut l.entries[self.index];
            if e.as_ref().is_some_and(|e| e.id != self.id) {
                if let Some(old) = e.take() {
                    if let Some(ep) = old.slot.held() {
                        counts.forget(ep, now);
                    }
                    dead.push(old);
                }
            }
            let e = e.get_or_insert_with(|| Entry {
                id: self.id,
                slot: Box::new(Local::<T> {
                    item: None,
                    epoch: now,
                    inner: Arc::downgrade(&self.inner),
                    shard: l.shard,
                }),
            });
            let local = (&mut *e.slot as &mut dyn Any).downcast_mut::<Local<T>>()?;
            Some((f(local, &counts, now), l.shard))
        });
        // User `Drop`s run here, with no borrow held.
        drop(garbage);
        drop(dead);
        match r {
            Ok(Some((r, shard))) => (Some(r), shard),
            _ => (None, 0),
        }
    }

    #[cold]
    fn get_slow(&self) -> T {
        let (x, shard) = self.with_private(|local, counts, seen| {
            let x = local.item.take()?;
            counts.forget(local.epoch, seen);
            Some(x)
        });
        if let Some(x) = x.flatten() {
            return x;
        }
        match self.inner.pop(shard) {
            Some(x) => x,
            None => (self.new)(),
        }
    }

    #[cold]
    fn put_slow(&self, x: T) {
        let mut x = Some(x);
        let (_, shard) = self.with_private(|local, counts, seen| {
            if local.item.is_none() {
                local.item = x.take();
                local.epoch = seen;
                counts
                    .primary
                    .store(counts.primary.load(Relaxed) + 1, Relaxed);
            }
        });
        if let Some(x) = x {
            // Cannot fail: the pool is alive while `&self` is.
            let _ = self.inner.push(shard, x, false);
        }
    }
}

impl<T: Send + 'static> Drop for Pool<T> {
    fn drop(&mut self) {
        self.inner.alive.store(false, Relaxed);
        let mut held: Vec<Vec<T>> = Vec::new();
        for c in self.inner.shards.iter() {
            let mut s = lock(&c.shard);
            SHARED_PRIMARY.fetch_sub(s.primary.len() as isize, Relaxed);
            SHARED_VICTIM.fetch_sub(s.victim.len() as isize, Relaxed);
            held.push(std::mem::take(&mut s.primary));
            held.push(std::mem::take(&mut s.victim));
            c.set_lens(&s);
        }
        let mine = LOCALS
            .try_with(|l| {
                let mut l = l.try_borrow_mut().ok()?;
                let l = &mut *l;
                let e = l.entries.get_mut(self.index)?;
                if e.as_ref()?.id != self.id {
                    return None;
                }
                let e = e.take()?;
                if let (Some(c), Some(ep)) = (&l.counts, e.slot.held()) {
                    c.forget(ep, l.seen);
                }
                Some(e)
            })
            .ok()
            .flatten();
        lock(&FREE_INDEXES).push(self.index);
        POOLS_ALIVE.fetch_sub(1, Relaxed);
        // User `Drop`s, no lock held; `Drop for Local` finds the pool dead
        // and drops its value.
        drop(mine);
        drop(held);
    }
}

impl<T: Send + 'static> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A value taken from a [`Pool`] by [`Pool::get`]: derefs to `T` and puts
/// the value back into the pool when dropped.
///
/// ```
/// let pool = tricolor::Pool::new(|| String::from("x"));
/// let mut s = pool.get();
/// s.push('y');                         // DerefMut
/// assert_eq!(s.len(), 2);              // Deref
/// let owned: String = s.into_inner();  // keep it: not returned
/// assert_eq!(owned, "xy");
/// ```
pub struct Pooled<'a, T: Send + 'static> {
    pool: &'a Pool<T>,
    /// Some until dropped or `into_inner`.
    value: Option<T>,
}

impl<T: Send + 'static> Pooled<'_, T> {
    /// Takes the value out for good: it is not returned to the pool.
    pub fn into_inner(mut self) -> T {
        self.value
            .take()
            .expect("Pooled holds its value until dropped")
    }
}

impl<T: Send + 'static> Deref for Pooled<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("Pooled holds its value until dropped")
    }
}

impl<T: Send + 'static> DerefMut for Pooled<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("Pooled holds its value until dropped")
    }
}

impl<T: Send + 'static> Drop for Pooled<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.pool.put_option(&mut self.value);
    }
}

impl<T: Send + fmt::Debug + 'static> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pooled").field(&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_pools_and_values() {
        let before = pool_stats();
        let pool = Pool::new(|| 0u64);
        pool.put(1);
        pool.put(2); // private slot full: a shard
        let s = pool_stats();
        assert!(s.pools > before.pools || s.pools >= 1);
        assert!(s.primary + s.victim >= 2);
        assert_eq!(pool.get_raw() + pool.get_raw(), 3);
        drop(pool);
    }
}
