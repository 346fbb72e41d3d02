//! The `Trace` trait: how the collector finds the edges inside a value.
//!
//! A managed value reports every edge (`Member`, `GcVec`) it contains by
//! calling `Trace::trace` on each field; the `Tracer` it passes along decides
//! what happens at an edge (mark its target, seal it at allocation, ...).
//! `#[derive(Trace)]` writes the impl for user types.
//!
//! INV-TRACE: `trace` visits every `Member` and GC-aware container reachable
//! inside the value, reads them only atomically, never allocates, never
//! blocks on a lock a mutator may hold, and may run on another thread while
//! mutators run. Plain data (no edges) sets `NEEDS_TRACE = false`; the
//! collector then never scans objects of that type ("noscan" spans).
//!
//! Containers that are not GC-aware (`Vec`, `Box`, `HashMap`, ...) may hold
//! edges only because a managed value is never handed out mutably: their
//! contents are fixed once the value is allocated, and each `Member` in them
//! is itself an atomic slot.

use std::sync::atomic::AtomicUsize;

/// A type the collector can scan for edges.
///
/// Derive it (`#[derive(Trace)]`) rather than implementing it by hand.
///
/// # Safety
///
/// An implementation must uphold INV-TRACE: `trace` calls `Trace::trace` on
/// every field that can contain a `Member` or `GcVec` (missing one lets the
/// collector free an object that is still reachable), never allocates in the
/// tricolor heap, never blocks, and `NEEDS_TRACE` is `true` whenever the type
/// can contain an edge.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Trace`, so it cannot be stored in the tricolor heap",
    label = "not `Trace`",
    note = "derive it with `#[derive(Trace)]`, or use plain data (numbers, String, Vec<u8>, atomics)",
    note = "a `Root<T>` can never be stored in the heap (it would keep cycles alive): use `Member<T>`"
)]
pub unsafe trait Trace {
    /// Whether a value of this type can contain edges. `false` makes its
    /// objects "noscan": the collector never reads them.
    const NEEDS_TRACE: bool = true;

    /// Reports every edge inside `self` to `tracer`, by calling
    /// `Trace::trace(&field, tracer)` on each field.
    fn trace(&self, tracer: &mut Tracer);
}

/// What the collector does at each edge; passed through `Trace::trace`.
///
/// It has no public methods: user code only hands it on to fields.
pub struct Tracer {
    pub(crate) mode: Mode,
    /// Grey objects (value pointers) still to scan, in mark mode.
    pub(crate) stack: Vec<usize>,
    /// Bytes of objects scanned (the pacer's scan work).
    pub(crate) scanned: u64,
    /// Part of `scanned` already reported to the pacer.
    pub(crate) reported: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Marking: set the mark bit of each target, queue unscanned ones.
    Mark,
    /// Allocation: clear the "unsealed" tag of each `Member` (INV-SEAL).
    Seal,
    /// Allocation while marking: seal, and collect each target in `stack`
    /// so that the allocator can shade it (INV-BLACK).
    SealShade,
    /// Checkmark: collect every target in `stack`, marking nothing.
    Check,
}

/// Tag bit of a `Member` slot that is not (yet) inside a managed object.
pub(crate) const UNSEALED: usize = 1;

impl Tracer {
    pub(crate) fn new(mode: Mode) -> Self {
        Tracer {
            mode,
            stack: Vec::new(),
            scanned: 0,
            reported: 0,
        }
    }

    /// Visits one edge slot (a `Member`'s or a `GcVec` buffer's).
    #[inline(always)]
    pub(crate) fn edge(&mut self, slot: &AtomicUsize) {
        use std::sync::atomic::Ordering::Acquire;
        match self.mode {
            Mode::Mark => {
                let v = slot.load(Acquire) & !UNSEALED;
                if v != 0 {
                    crate::collector::mark(self, v);
                }
            }
            Mode::Seal => {
                // A plain access lets the compiler fold it into the value's
                // initialising store.
                // SAFETY: seal mode runs only in `init_object`, on an object
                // not yet published to any thread or the collector: no race.
                unsafe { *slot.as_ptr() &= !UNSEALED };
            }
            Mode::Check => {
                let v = slot.load(Acquire) & !UNSEALED;
                if v != 0 {
                    self.stack.push(v);
                }
            }
            Mode::SealShade => {
                // SAFETY: as for Seal.
                let v = unsafe {
                    *slot.as_ptr() &= !UNSEALED;
                    *slot.as_ptr()
                };
                if v != 0 {
                    self.stack.push(v);
                }
            }
        }
    }
}

macro_rules! plain {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: holds no edges (INV-TRACE holds trivially).
        unsafe impl Trace for $t {
            const NEEDS_TRACE: bool = false;
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )* };
}

plain!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    str,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::path::PathBuf,
    std::ffi::OsString,
    std::ffi::CString,
    std::sync::atomic::AtomicBool,
    std::sync::atomic::AtomicU8,
    std::sync::atomic::AtomicU16,
    std::sync::atomic::AtomicU32,
    std::sync::atomic::AtomicU64,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicI8,
    std::sync::atomic::AtomicI16,
    std::sync::atomic::AtomicI32,
    std::sync::atomic::AtomicI64,
    std::sync::atomic::AtomicIsize,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::fs::File,
);

// SAFETY: a `PhantomData` holds nothing.
unsafe impl<T: ?Sized> Trace for std::marker::PhantomData<T> {
    const NEEDS_TRACE: bool = false;
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}

/// Interior-mutable plain data: allowed only when the contents hold no edges
/// (checked at compile time when the type is allocated), because a mutator
/// could swap an edge out from under a concurrent marker.
macro_rules! plain_cell {
    ($($c:ident),*) => { $(
        // SAFETY: NEEDS_TRACE asserts the contents are plain data, so there
        // is nothing to visit.
        unsafe impl<T: Trace + ?Sized> Trace for $c<T> {
            const NEEDS_TRACE: bool = {
                assert!(!T::NEEDS_TRACE, "interior-mutable containers in the heap may only hold plain data: use Member/GcVec for edges");
                false
            };
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )* };
}
use std::cell::{Cell, RefCell};
use std::sync::{Mutex, RwLock};
plain_cell!(Cell, RefCell, Mutex, RwLock);

// SAFETY: visits the element.
unsafe impl<T: Trace + ?Sized> Trace for Box<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        (**self).trace(t)
    }
}

// SAFETY: visits every element.
unsafe impl<T: Trace> Trace for [T] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if T::NEEDS_TRACE {
            for x in self {
                x.trace(t)
            }
        }
    }
}

// SAFETY: visits every element.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        self.as_slice().trace(t)
    }
}

// SAFETY: visits every element.
unsafe impl<T: Trace> Trace for Vec<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        self.as_slice().trace(t)
    }
}

// SAFETY: visits every element.
unsafe impl<T: Trace> Trace for std::collections::VecDeque<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        if T::NEEDS_TRACE {
            self.iter().for_each(|x| x.trace(t))
        }
    }
}

// SAFETY: visits the element if present.
unsafe impl<T: Trace> Trace for Option<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if let Some(x) = self {
            x.trace(t)
        }
    }
}

// SAFETY: visits the value in either arm.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE || E::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        match self {
            Ok(x) => x.trace(t),
            Err(e) => e.trace(t),
        }
    }
}

// SAFETY: visits every key and value.
unsafe impl<K: Trace, V: Trace, S> Trace for std::collections::HashMap<K, V, S> {
    const NEEDS_TRACE: bool = K::NEEDS_TRACE || V::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        if Self::NEEDS_TRACE {
            for (k, v) in self {
                k.trace(t);
                v.trace(t);
            }
        }
    }
}

// SAFETY: visits every element.
unsafe impl<K: Trace, S> Trace for std::collections::HashSet<K, S> {
    const NEEDS_TRACE: bool = K::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        if Self::NEEDS_TRACE {
            self.iter().for_each(|k| k.trace(t))
        }
    }
}

// SAFETY: visits every key and value.
unsafe impl<K: Trace, V: Trace> Trace for std::collections::BTreeMap<K, V> {
    const NEEDS_TRACE: bool = K::NEEDS_TRACE || V::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        if Self::NEEDS_TRACE {
            for (k, v) in self {
                k.trace(t);
                v.trace(t);
            }
        }
    }
}

// SAFETY: visits every element.
unsafe impl<K: Trace> Trace for std::collections::BTreeSet<K> {
    const NEEDS_TRACE: bool = K::NEEDS_TRACE;
    fn trace(&self, t: &mut Tracer) {
        if Self::NEEDS_TRACE {
            self.iter().for_each(|k| k.trace(t))
        }
    }
}

macro_rules! tuple {
    ($($n:ident . $i:tt),+) => {
        // SAFETY: visits every component.
        unsafe impl<$($n: Trace),+> Trace for ($($n,)+) {
            const NEEDS_TRACE: bool = false $(|| $n::NEEDS_TRACE)+;
            #[inline]
            fn trace(&self, t: &mut Tracer) {
                $(self.$i.trace(t);)+
            }
        }
    };
}
tuple!(A.0);
tuple!(A.0, B.1);
tuple!(A.0, B.1, C.2);
tuple!(A.0, B.1, C.2, D.3);
tuple!(A.0, B.1, C.2, D.3, E.4);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
