//! Object layout and per-type information.
//!
//! Every object is a slot laid out as
//!
//! ```text
//!  slot start                          value pointer (what Gc/Member/Root hold)
//!  |  [padding to align - 8]  [header: &'static TypeInfo]  [value: T]
//! ```
//!
//! For types aligned to 8 bytes or less there is no padding: the header is
//! the slot's first word. For over-aligned types the first word of the slot
//! repeats the header, so the sweeper (which walks slots) and the marker
//! (which follows value pointers) both find the `TypeInfo` in one load.
//!
//! A `TypeInfo` is a `'static` constant per Rust type (or per internal
//! dynamically sized kind, such as `GcVec` buffers): how to trace a value,
//! how to drop it, its name for diagnostics.

use crate::sizeclass::{class_for, MAX_SMALL};
use crate::trace::{Trace, Tracer};
use std::marker::PhantomData;

/// How the runtime handles one kind of object.
pub(crate) struct TypeInfo {
    /// Visits the edges of the value at the given value pointer.
    pub trace: unsafe fn(*const u8, &mut Tracer),
    /// Drops the value in place, if its type needs it.
    pub drop: Option<unsafe fn(*mut u8)>,
    /// Bytes from slot start to the value.
    pub value_offset: usize,
    /// Type name, for diagnostics and profiles.
    pub name: fn() -> &'static str,
}

/// Compile-time layout of objects of type `T`.
pub(crate) struct Layout<T>(PhantomData<T>);

impl<T: Trace + 'static> Layout<T> {
    /// Alignment of slots holding a `T` (at least the header's).
    pub const ALIGN: usize = if std::mem::align_of::<T>() > 8 {
        std::mem::align_of::<T>()
    } else {
        8
    };
    /// Offset of the value from the slot start.
    pub const VALUE_OFFSET: usize = Self::ALIGN;
    /// Bytes the slot must hold.
    pub const BYTES: usize = Self::VALUE_OFFSET + std::mem::size_of::<T>();
    /// Size class, or 0 for a large object.
    pub const CLASS: usize = if Self::BYTES <= MAX_SMALL {
        class_for(Self::BYTES, Self::ALIGN)
    } else {
        0
    };
    /// Span class (`class << 1 | noscan`).
    pub const SPAN_CLASS: usize = Self::CLASS << 1 | (!T::NEEDS_TRACE) as usize;
    /// The type's `TypeInfo`.
    pub const INFO: &'static TypeInfo = &TypeInfo {
        trace: trace_erased::<T>,
        drop: if std::mem::needs_drop::<T>() {
            Some(drop_erased::<T>)
        } else {
            None
        },
        value_offset: Self::VALUE_OFFSET,
        name: std::any::type_name::<T>,
    };
}

/// # Safety
/// `p` is the value pointer of a live object of type `T` (INV-SWEEP: the
/// collector only traces marked, hence unfreed, objects).
unsafe fn trace_erased<T: Trace>(p: *const u8, t: &mut Tracer) {
    // SAFETY: by the contract above, `p` points at an initialised `T`.
    unsafe { (*p.cast::<T>()).trace(t) }
}

/// # Safety
/// `p` is the value pointer of a dead object of type `T`, dropped only once
/// (INV-SWEEP: the sweeper visits each dead slot once, then frees it).
unsafe fn drop_erased<T>(p: *mut u8) {
    // SAFETY: by the contract above.
    unsafe { std::ptr::drop_in_place(p.cast::<T>()) }
}

/// The header word of the object whose value is at `value`.
///
/// # Safety
/// `value` is the value pointer of an allocated object (INV-HEAPPTR).
#[inline(always)]
pub(crate) unsafe fn header(value: usize) -> &'static TypeInfo {
    // SAFETY: the allocator writes the header word right below every value
    // before the pointer escapes.
    unsafe { *((value - 8) as *const &'static TypeInfo) }
}
