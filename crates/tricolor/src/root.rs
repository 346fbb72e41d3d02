//! Roots: `Root<T>`, the off-heap handle that keeps an object alive.
//!
//! What: a `Root` is two words: the object's value pointer and a *root
//! slot*, a word in a global slab that the collector scans (INV-ROOT: an
//! object with a live `Root` is marked in every cycle).
//!
//! Each `Root` owns its slot exclusively: `clone` takes a new slot, `drop`
//! clears its slot. So cloning and dropping never touch a shared counter or
//! the object's header, only thread-local free lists (per-thread root
//! tables, as cppgc's persistent regions):
//! 1. create: pin (waits out a stop of the world), pop a slot from the
//!    thread's free list (refilled 64 at a time from the global pool), store
//!    the object pointer, unpin;
//! 2. drop: pin, store null, push the slot on the thread's free list
//!    (handing half back to the pool past 512), unpin;
//! 3. the collector, with the world stopped, marks every non-null slot of
//!    every chunk.
//!
//! The collector scans the slots while mutators run. Root creation shades
//! the target and root drop shades the old target while marking
//! (INV-BARRIER), so an object moved between a root and the heap, or
//! between two roots, is never missed by a scan that raced the move.
//!
//! Shared fields: slot words (atomics; written by the Root's owner while
//! pinned, read by the collector); the pool (mutex).

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicUsize,
    Ordering::{AcqRel, Acquire, Release},
};
use std::sync::{Arc, Mutex};

use crate::thread::pin;
use crate::trace::{Trace, Tracer};
use crate::{Gc, Guard};

/// A word the collector scans: a value pointer or 0.
pub(crate) struct RootSlot {
    obj: AtomicUsize,
}

const CHUNK: usize = 512;

struct Pool {
    chunks: Vec<Box<[RootSlot; CHUNK]>>,
    free: Vec<usize>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    chunks: Vec::new(),
    free: Vec::new(),
});

fn lock_pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Returns free slots to the global pool (a thread exits).
pub(crate) fn give_back(slots: Vec<usize>) {
    if !slots.is_empty() {
        lock_pool().free.extend(slots);
    }
}

#[cold]
fn refill(local: &mut Vec<usize>) {
    let mut p = lock_pool();
    if p.free.len() < 64 {
        let chunk: Box<[RootSlot; CHUNK]> = Box::new(
            [const {
                RootSlot {
                    obj: AtomicUsize::new(0),
                }
            }; CHUNK],
        );
        let base = chunk.as_ptr() as usize;
        p.free
            .extend((0..CHUNK).map(|i| base + i * std::mem::size_of::<RootSlot>()));
        p.chunks.push(chunk);
    }
    let at = p.free.len() - 64;
    local.extend(p.free.drain(at..));
}

/// Takes a slot holding `value` (a value pointer).
fn create(value: usize) -> NonNull<RootSlot> {
    let g = pin();
    // SAFETY: the owner thread, pinned; `roots` is not borrowed elsewhere
    // (root operations do not nest).
    let local = unsafe { &mut *g.ts().roots.get() };
    if local.is_empty() {
        refill(local);
    }
    let slot = local.pop().expect("refilled");
    // SAFETY: slots live in chunks that are never freed.
    let s = unsafe { &*(slot as *const RootSlot) };
    s.obj.store(value, Release);
    if crate::thread::marking() {
        // INV-BARRIER: root creation shades its target.
        crate::collector::shade(g.ts(), value);
    }
    drop(g);
    // SAFETY: a slot address is non-null.
    unsafe { NonNull::new_unchecked(slot as *mut RootSlot) }
}

fn release(slot: NonNull<RootSlot>) {
    let g = pin();
    // SAFETY: slots live in never-freed chunks; this Root owns the slot.
    let old = unsafe { slot.as_ref() }.obj.swap(0, AcqRel);
    if crate::thread::marking() {
        // INV-BARRIER: root drop shades its old target.
        crate::collector::shade(g.ts(), old);
    }
    // SAFETY: as in `create`.
    let local = unsafe { &mut *g.ts().roots.get() };
    local.push(slot.as_ptr() as usize);
    if local.len() > 512 {
        let rest = local.split_off(256);
        give_back(rest);
    }
}

/// Marks every rooted object (concurrently with mutators: see the root barrier).
pub(crate) fn mark_roots(t: &mut Tracer) {
    for_each_root(|v| crate::collector::mark(t, v));
}

/// Calls `f` on every rooted object (value pointer).
pub(crate) fn for_each_root(mut f: impl FnMut(usize)) {
    let p = lock_pool();
    for chunk in &p.chunks {
        for s in chunk.iter() {
            let v = s.obj.load(Acquire);
            if v != 0 {
                f(v);
            }
        }
    }
}

/// An off-heap handle that keeps a managed object alive: Rc-like, but
/// `'static`, and `Send + Sync` when `T` is.
///
/// Create one with [`Root::new`] (no guard needed) or [`Gc::root`]. Store it
/// anywhere: a `Vec`, a `HashMap`, a static, another thread. It dereferences
/// to `T`; [`Root::get`] gives a `Gc<'g, T>` for a guard.
///
/// A `Root` cannot be stored inside a managed object (it is not `Trace`): a
/// root inside the heap would keep its cycle alive forever. Use `Member<T>`.
pub struct Root<T: Trace + Send + 'static> {
    ptr: NonNull<T>,
    slot: NonNull<RootSlot>,
    _owns: PhantomData<Arc<T>>,
}

// SAFETY: a Root gives `&T` on any thread that holds it and keeps the object
// alive from any thread; that is `Arc<T>`'s contract: Send + Sync need
// `T: Send + Sync`.
unsafe impl<T: Trace + Send + Sync + 'static> Send for Root<T> {}
// SAFETY: as above.
unsafe impl<T: Trace + Send + Sync + 'static> Sync for Root<T> {}

impl<T: Trace + Send + 'static> Root<T> {
    /// Allocates `value` in the heap and roots it.
    pub fn new(value: T) -> Root<T> {
        let g = pin();
        let gc = g.alloc(value);
        Root::from_gc(gc)
    }

    /// Roots the object `gc` points to.
    pub fn from_gc(gc: Gc<'_, T>) -> Root<T> {
        let ptr = gc.as_non_null();
        Root {
            ptr,
            slot: create(ptr.as_ptr() as usize),
            _owns: PhantomData,
        }
    }

    /// A pointer to the object, valid while `guard` lives.
    #[inline]
    pub fn get<'g>(&self, _guard: &'g Guard) -> Gc<'g, T> {
        Gc::from_value_ptr(self.ptr.as_ptr() as usize)
    }

    /// Whether two roots point to the same object.
    #[inline]
    pub fn ptr_eq(a: &Root<T>, b: &Root<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The object's address (for identity and debugging only).
    #[inline]
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Trace + Send + 'static> std::ops::Deref for Root<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: INV-ROOT: the object is marked in every cycle while this
        // root's slot holds it, so it is not freed while `self` lives.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Trace + Send + 'static> Clone for Root<T> {
    fn clone(&self) -> Self {
        Root {
            ptr: self.ptr,
            slot: create(self.ptr.as_ptr() as usize),
            _owns: PhantomData,
        }
    }
}

impl<T: Trace + Send + 'static> Drop for Root<T> {
    fn drop(&mut self) {
        release(self.slot);
    }
}

impl<'g, T: Trace + Send + 'static> From<Gc<'g, T>> for Root<T> {
    fn from(gc: Gc<'g, T>) -> Self {
        Root::from_gc(gc)
    }
}

impl<T: Trace + Send + std::fmt::Debug + 'static> std::fmt::Debug for Root<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Root").field(&**self).finish()
    }
}
