//! `GcVec<T>`: a growable vector of edges, safe to read while it grows.
//!
//! What: the Go slice model. Elements live in a *buffer*, itself a managed
//! object (`cap` followed by `cap` edge slots). Growing allocates a bigger
//! buffer, copies the edges and publishes it; a reader that still holds the
//! old buffer keeps reading valid (if stale) memory, because the old buffer
//! is freed only by the collector, once nothing can reach it.
//!
//! Protocol: `push` and `pop` serialise on an internal mutex; `set` and the
//! readers take no lock. `shape` is a sequence count of the changes that
//! `set` must not race with: it is odd while `push` replaces the buffer or
//! `pop` shortens the vector.
//! - push: if full, `shape += 1`, a SeqCst fence, copy the slots, publish
//!   the grown buffer (`buf.store(Release)`), `shape += 1` (Release); write
//!   the slot (shading what it held: see below); then
//!   `len.store(len + 1, Release)`.
//! - pop: `shape += 1`, a SeqCst fence, `len.store(len - 1)`, swap the last
//!   slot to null, `shape += 1` (Release).
//! - set(i): `s = shape` (Acquire; odd: take the slow path); check
//!   `i < len`; store into the buffer's slot i with the write barrier, as
//!   `Member::store` does; a SeqCst fence; reload `shape`. Unchanged:
//!   done. Changed: redo the set under the mutex (the slow path). This is
//!   Dekker's pattern with a fence on each side: if the reload sees `s`,
//!   the change's fence comes after set's in the SeqCst order, so its copy
//!   or swap of the slot sees the value; if not, the store may have gone to a
//!   buffer just replaced (harmless: the old buffer is garbage, and shaded),
//!   or to a slot `pop` just emptied. Such a *stray* store leaves a value
//!   at or past `len`; the slow path, under the mutex, nulls the slot again
//!   (shading the value) if `i` is still past `len` in the same buffer, and
//!   panics as a `set` after the `pop`. If the slot no longer holds the
//!   value, the `pop` returned it: the `set` came first and is done.
//! - get(i): `len.load(Acquire)`; if `i < len`, `buf.load(Acquire)` — a
//!   buffer at least as new as the one `len` was published with, so
//!   `cap >= len` — then the slot (Acquire).
//!
//! Invariants: `len <= cap(buf)`; slots at and past `len` are null, except
//! for a stray store whose `set` has not yet reached its slow path (so
//! `push` shades the value it overwrites instead of assuming null, and the
//! collector, which traces every slot of a buffer, keeps a stray value
//! alive until then); the `buf` slot follows INV-SEAL like a `Member` (a
//! `GcVec` built outside the heap cannot be read). The collector traces a
//! buffer's every slot (nulls cost a load each), never taking the mutex
//! (INV-TRACE). The loom model `gcvec_set_*` checks the protocol.

use std::marker::PhantomData;
use std::sync::atomic::{
    fence, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};

use crate::collector::write_barrier;
use std::sync::{Arc, Mutex};

use crate::member::unsealed;
use crate::object::TypeInfo;
use crate::trace::{Trace, Tracer, UNSEALED};
use crate::{Gc, Guard};

/// A growable vector of nullable edges to `T`, readable without locks while
/// other threads push to it.
///
/// ```
/// use tricolor::{GcVec, Root, Trace};
/// #[derive(Trace)]
/// struct Leaf(u32);
/// #[derive(Trace)]
/// struct Bag { items: GcVec<Leaf> }
///
/// let bag = Root::new(Bag { items: GcVec::new() });
/// let g = tricolor::pin();
/// for i in 0..10 {
///     bag.items.push(&g, Some(g.alloc(Leaf(i))));
/// }
/// assert_eq!(bag.items.len(), 10);
/// assert_eq!(bag.items.get(&g, 3).unwrap().0, 3);
/// ```
pub struct GcVec<T> {
    buf: AtomicUsize,
    len: AtomicUsize,
    /// Odd while a buffer is replaced or the vector shortened (see the
    /// module comment); written under `write`.
    shape: AtomicUsize,
    write: Mutex<()>,
    _owns: PhantomData<Arc<T>>,
}

/// Trace function of buffers: `cap`, then `cap` slots.
///
/// # Safety
/// `p` is the value pointer of a live buffer.
unsafe fn trace_buf(p: *const u8, t: &mut Tracer) {
    // SAFETY: a buffer starts with its capacity, then that many slots.
    unsafe {
        let cap = *(p as *const usize);
        let slots = (p as *const AtomicUsize).add(1);
        for i in 0..cap {
            t.edge(&*slots.add(i));
        }
    }
}

static BUF_INFO: TypeInfo = TypeInfo {
    trace: trace_buf,
    drop: None,
    value_offset: 8,
    name: || "tricolor::GcVec buffer",
};

/// # Safety
/// `b` is the value pointer of a live buffer (INV-GUARD holds it).
unsafe fn buf_slots<'a>(b: usize) -> &'a [AtomicUsize] {
    // SAFETY: layout of a buffer (see trace_buf).
    unsafe {
        let cap = *(b as *const usize);
        std::slice::from_raw_parts((b as *const AtomicUsize).add(1), cap)
    }
}

impl<T> GcVec<T> {
    /// An empty vector (allocates nothing).
    pub const fn new() -> Self {
        GcVec {
            buf: AtomicUsize::new(UNSEALED),
            len: AtomicUsize::new(0),
            shape: AtomicUsize::new(0),
            write: Mutex::new(()),
            _owns: PhantomData,
        }
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len.load(Acquire)
    }

    /// Whether the vector is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn buffer(&self) -> usize {
        let b = self.buf.load(Acquire);
        if b & UNSEALED != 0 {
            unsealed();
        }
        b
    }

    /// Element `i`: `None` if `i >= len()` or the element is empty.
    ///
    /// # Panics
    /// If this vector is not inside a managed object: a `GcVec` is filled
    /// after the value holding it is allocated (its buffers are managed
    /// objects that only a traced vector keeps alive). The same holds for
    /// [`GcVec::set`], [`GcVec::push`] and [`GcVec::pop`].
    #[inline]
    pub fn get<'g>(&self, _guard: &'g Guard, i: usize) -> Option<Gc<'g, T>> {
        let len = self.len.load(Acquire);
        let b = self.buffer();
        if i >= len || b == 0 {
            return None;
        }
        // SAFETY: `b` was loaded under the guard from a sealed GcVec: it is a
        // live buffer with cap >= len > i (protocol above).
        let v = unsafe { buf_slots(b) }[i].load(Acquire);
        (v != 0).then(|| Gc::from_value_ptr(v))
    }

    /// Iterates over the elements present when each is read.
    pub fn iter<'a, 'g>(&'a self, guard: &'g Guard) -> impl Iterator<Item = Option<Gc<'g, T>>> + 'a
    where
        'g: 'a,
        T: 'g,
    {
        let n = self.len();
        (0..n).map_while(move |i| {
            if i < self.len() {
                Some(self.get(guard, i))
            } else {
                None
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces element `i`. Takes no lock unless a `push` that grows the
    /// vector or a `pop` runs at the same time.
    ///
    /// # Panics
    /// If `i >= len()`.
    #[inline]
    pub fn set<'g>(&self, guard: &'g Guard, i: usize, value: Option<Gc<'g, T>>) {
        let new = raw(value);
        let shape = self.shape.load(Acquire);
        if shape & 1 != 0 {
            return self.set_slow(guard, i, new, None);
        }
        let len = self.len.load(Acquire);
        assert!(
            i < len,
            "GcVec::set: index {i} out of range for length {len}"
        );
        let b = self.buffer();
        // SAFETY: `b` was loaded after `len`, under the guard, from a
        // sealed vector: a live buffer with cap >= len > i (the readers'
        // protocol; buffers never shrink).
        let slot = &unsafe { buf_slots(b) }[i];
        write_barrier(guard, slot.load(Relaxed), new);
        slot.store(new, Release);
        fence(SeqCst);
        if self.shape.load(Relaxed) != shape {
            self.set_slow(guard, i, new, Some(b));
        }
    }

    /// `set` under the mutex: after a fast path that raced a change of
    /// shape (`stray`: the buffer it stored into), or instead of it.
    #[cold]
    #[inline(never)]
    fn set_slow(&self, guard: &Guard, i: usize, new: usize, stray: Option<usize>) {
        let _w = self.lock();
        let len = self.len.load(Relaxed);
        let b = self.buffer();
        if stray == Some(b) && i >= len {
            // A `pop` took the slot. If the fast path's store landed after
            // it, null the slot again (the invariant), shading the value,
            // and fail as a `set` after the `pop`; if the pop took the
            // value, the `set` came first and is done.
            // SAFETY: live buffer (the guard holds it) of cap > i: the fast
            // path stored into slot i.
            let v = unsafe { buf_slots(b) }[i].swap(0, Relaxed);
            write_barrier(guard, v, 0);
            if v != new {
                return;
            }
        }
        assert!(
            i < len,
            "GcVec::set: index {i} out of range for length {len}"
        );
        // SAFETY: live buffer with cap >= len (writers hold the lock).
        let slot = &unsafe { buf_slots(b) }[i];
        write_barrier(guard, slot.load(Relaxed), new);
        slot.store(new, Release);
    }

    /// Runs a change of shape (see the module comment) with `shape` odd.
    fn reshape<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shape.fetch_add(1, Relaxed);
        fence(SeqCst);
        let r = f();
        self.shape.fetch_add(1, Release);
        r
    }

    /// Appends an element.
    ///
    /// # Panics
    /// If this vector is not inside a managed object (see [`GcVec::get`]).
    pub fn push<'g>(&self, guard: &'g Guard, value: Option<Gc<'g, T>>) {
        let _w = self.lock();
        let len = self.len.load(Relaxed);
        let mut b = self.buffer();
        let cap = if b == 0 {
            0
        } else {
            // SAFETY: a non-null buffer of a sealed vector is live (reachable
            // from this vector, which the guard keeps reachable).
            unsafe { buf_slots(b) }.len()
        };
        if len == cap {
            let new_cap = (cap * 2).max(4);
            let nb = guard
                .alloc_dyn(8 * (new_cap + 1), &BUF_INFO)
                .unwrap_or_else(|e| panic!("{e}"));
            self.reshape(|| {
                // The copy follows the fence of `reshape` (module comment).
                // SAFETY: fresh buffer of new_cap + 1 words, exclusively ours
                // until published below; the old one is live (as above).
                unsafe {
                    *(nb as *mut usize) = new_cap;
                    let dst = (nb as *mut AtomicUsize).add(1);
                    for i in 0..new_cap {
                        let v = if i < len {
                            buf_slots(b)[i].load(Acquire)
                        } else {
                            0
                        };
                        dst.add(i).write(AtomicUsize::new(v));
                    }
                }
                write_barrier(guard, b, nb);
                self.buf.store(nb, Release);
            });
            b = nb;
        }
        // SAFETY: live buffer with cap > len.
        let slot = &unsafe { buf_slots(b) }[len];
        let new = raw(value);
        // The slot is null unless a racing `set` left a stray value there.
        write_barrier(guard, slot.load(Acquire), new);
        slot.store(new, Release);
        self.len.store(len + 1, Release);
    }

    /// Removes and returns the last element (`None` if empty; `Some(None)`
    /// if the last element was empty).
    pub fn pop<'g>(&self, guard: &'g Guard) -> Option<Option<Gc<'g, T>>> {
        let _w = self.lock();
        let len = self.len.load(Relaxed);
        if len == 0 {
            return None;
        }
        let b = self.buffer();
        let v = self.reshape(|| {
            self.len.store(len - 1, Release);
            // SAFETY: live buffer with cap >= len.
            let slots = unsafe { buf_slots(b) };
            slots[len - 1].swap(0, Acquire)
        });
        write_barrier(guard, v, 0);
        Some((v != 0).then(|| Gc::from_value_ptr(v)))
    }
}

fn raw<T>(v: Option<Gc<'_, T>>) -> usize {
    v.map_or(0, |g| g.as_ptr() as usize)
}

impl<T> Default for GcVec<T> {
    fn default() -> Self {
        GcVec::new()
    }
}

impl<T> std::fmt::Debug for GcVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcVec").field("len", &self.len()).finish()
    }
}

// SAFETY: reports its buffer, whose TypeInfo reports every element.
unsafe impl<T> Trace for GcVec<T> {
    const NEEDS_TRACE: bool = true;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        t.edge(&self.buf)
    }
}
