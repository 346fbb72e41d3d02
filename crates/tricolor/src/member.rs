//! Pointers into the heap: `Gc<'g, T>` (a guard-scoped pointer) and
//! `Member<T>` (an edge: a pointer slot inside a managed object).
//!
//! `Gc<'g, T>` is one word, `Copy`, free to dereference: it borrows the
//! guard `'g` (INV-GUARD), so the object cannot be freed while it lives.
//!
//! `Member<T>` is an atomic slot. Reading it needs a guard (the result lives
//! as long as the guard); writing it runs the write barrier: while marking,
//! the old and the new target are shaded (Go's hybrid barrier, INV-BARRIER);
//! otherwise it costs one relaxed load and a branch.
//!
//! INV-SEAL: a `Member` constructed outside the heap carries the `UNSEALED`
//! tag bit. Allocation clears it on every `Member` the new value's `Trace`
//! reaches. `load` on an unsealed `Member` panics: such a `Member` is not
//! traced by anyone, so after a quiescent point its target may be gone. A
//! sealed `Member` lives inside a managed object, which never moves and is
//! only ever handed out by shared reference, so it stays sealed.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

use crate::collector::write_barrier;
use std::sync::Arc;

use crate::trace::{Trace, Tracer, UNSEALED};
use crate::{Guard, Root};

/// A pointer to a managed object, valid while the guard `'g` lives.
///
/// `Copy`, one word, dereferences to `T`. Turn it into a [`Root`] with
/// [`Gc::root`] to keep the object beyond the guard.
pub struct Gc<'g, T> {
    ptr: NonNull<T>,
    _guard: PhantomData<&'g T>,
}

// SAFETY: a Gc is a shared reference for 'g (the pinning thread's guard keeps
// the object alive for 'g wherever the Gc goes): `&T`'s rules apply.
unsafe impl<T: Sync> Send for Gc<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Gc<'_, T> {}

impl<T> Clone for Gc<'_, T> {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Gc<'_, T> {}

impl<'g, T> Gc<'g, T> {
    #[inline(always)]
    pub(crate) fn from_value_ptr(v: usize) -> Self {
        Gc {
            // SAFETY: value pointers of objects are never null.
            ptr: unsafe { NonNull::new_unchecked(v as *mut T) },
            _guard: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn as_non_null(self) -> NonNull<T> {
        self.ptr
    }

    /// The object, borrowed for the guard's whole lifetime.
    #[inline(always)]
    pub fn get(self) -> &'g T {
        // SAFETY: INV-GUARD: the guard 'g prevents the object from being
        // freed, and objects are never moved.
        unsafe { &*self.ptr.as_ptr() }
    }

    /// Whether two pointers point to the same object.
    #[inline(always)]
    pub fn ptr_eq(a: Gc<'_, T>, b: Gc<'_, T>) -> bool {
        a.ptr == b.ptr
    }

    /// The object's address (for identity and debugging only).
    #[inline(always)]
    pub fn as_ptr(self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Trace + Send + 'static> Gc<'_, T> {
    /// Roots the object: the returned handle keeps it alive beyond the guard.
    pub fn root(self) -> Root<T> {
        Root::from_gc(self)
    }
}

impl<T> std::ops::Deref for Gc<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Gc<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gc").field(&**self).finish()
    }
}

/// A nullable edge from one managed object to another: an atomic pointer
/// slot.
///
/// Build values with [`Member::new`]/[`Member::null`], read with
/// [`Member::load`], write with [`Member::store`]. Reading or writing needs
/// a guard. `Member` is only useful inside a managed object: loading a
/// `Member` that was never allocated into the heap panics (nothing traces
/// it, so its target could be freed under it).
pub struct Member<T> {
    slot: AtomicUsize,
    _owns: PhantomData<Arc<T>>,
}

#[inline(always)]
fn raw<T>(v: Option<Gc<'_, T>>) -> usize {
    v.map_or(0, |g| g.ptr.as_ptr() as usize)
}

impl<T> Member<T> {
    /// An empty edge.
    #[inline]
    pub const fn null() -> Self {
        Member {
            slot: AtomicUsize::new(UNSEALED),
            _owns: PhantomData,
        }
    }

    /// An edge to `target` (or empty).
    #[inline]
    pub fn new(target: Option<Gc<'_, T>>) -> Self {
        Member {
            slot: AtomicUsize::new(raw(target) | UNSEALED),
            _owns: PhantomData,
        }
    }

    /// Reads the edge. The result lives as long as `guard`.
    ///
    /// # Panics
    /// If this `Member` is not inside a managed object (it was never
    /// allocated with its containing value).
    #[inline]
    pub fn load<'g>(&self, _guard: &'g Guard) -> Option<Gc<'g, T>> {
        let v = self.slot.load(Acquire);
        if v & UNSEALED != 0 {
            unsealed();
        }
        NonNull::new(v as *mut T).map(|ptr| Gc {
            ptr,
            _guard: PhantomData,
        })
    }

    /// Writes the edge.
    #[inline]
    pub fn store<'g>(&self, guard: &'g Guard, target: Option<Gc<'g, T>>) {
        let old = self.slot.load(Relaxed);
        let new = raw(target);
        // An unsealed slot's old value is not an edge (and may be stale).
        let old_edge = if old & UNSEALED != 0 { 0 } else { old };
        write_barrier(guard, old_edge, new);
        self.slot.store(new | (old & UNSEALED), Release);
    }

    /// Writes the edge and returns its previous target.
    ///
    /// # Panics
    /// As [`Member::load`].
    #[inline]
    pub fn swap<'g>(&self, guard: &'g Guard, target: Option<Gc<'g, T>>) -> Option<Gc<'g, T>> {
        let old = self.slot.load(Relaxed);
        if old & UNSEALED != 0 {
            unsealed();
        }
        let new = raw(target);
        let prev = self.slot.swap(new, AcqRel);
        write_barrier(guard, prev, new);
        NonNull::new(prev as *mut T).map(|ptr| Gc {
            ptr,
            _guard: PhantomData,
        })
    }

    /// Whether the edge is empty. Needs no guard.
    #[inline]
    pub fn is_null(&self) -> bool {
        self.slot.load(Relaxed) & !UNSEALED == 0
    }
}

#[cold]
#[inline(never)]
pub(crate) fn unsealed() -> ! {
    panic!(
        "tricolor: a Member or GcVec was read outside the heap; edges can only be read once \
         the value holding them has been allocated (Guard::alloc / Root::new)"
    )
}

impl<T> Default for Member<T> {
    fn default() -> Self {
        Member::null()
    }
}

impl<'g, T> From<Gc<'g, T>> for Member<T> {
    fn from(gc: Gc<'g, T>) -> Self {
        Member::new(Some(gc))
    }
}

impl<T> std::fmt::Debug for Member<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.slot.load(Relaxed) & !UNSEALED;
        if v == 0 {
            f.write_str("Member(null)")
        } else {
            write!(f, "Member({v:#x})")
        }
    }
}

// SAFETY: reports its one edge.
unsafe impl<T> Trace for Member<T> {
    const NEEDS_TRACE: bool = true;
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.edge(&self.slot)
    }
}
