//! Operating-system memory: reserving aligned arenas with `mmap`.
//!
//! The heap is made of arenas of [`ARENA_BYTES`], each aligned to its size so
//! that an object's arena, span and span metadata are found from its address
//! by masking and shifting, without a lookup table. An arena is mapped
//! read-write with `MAP_NORESERVE`: pages the program never touches cost no
//! physical memory.

use std::io;

/// log2 of the arena size.
pub(crate) const ARENA_SHIFT: usize = 26;
/// Bytes in an arena (64 MiB).
pub(crate) const ARENA_BYTES: usize = 1 << ARENA_SHIFT;

/// Maps a fresh, zeroed, `ARENA_BYTES`-aligned arena.
pub(crate) fn map_arena() -> io::Result<usize> {
    let len = ARENA_BYTES * 2;
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let start = p as usize;
    let aligned = (start + ARENA_BYTES - 1) & !(ARENA_BYTES - 1);
    let head = aligned - start;
    let tail = len - head - ARENA_BYTES;
    // SAFETY: both ranges lie inside the mapping made above and are not the
    // aligned arena we keep; nothing references them.
    unsafe {
        if head > 0 {
            libc::munmap(start as *mut libc::c_void, head);
        }
        if tail > 0 {
            libc::munmap((aligned + ARENA_BYTES) as *mut libc::c_void, tail);
        }
    }
    Ok(aligned)
}

/// Bytes copied into a private anonymous mapping of their own: runtime
/// data kept out of the program's `malloc` heap (the heap profiler's copies
/// of unwind sections: large, long-lived blocks in the middle of the
/// program's heap would change how its allocator reuses memory, and
/// [`crate::alloc::Tracking`] would count them as the program's).
#[cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    allow(dead_code, reason = "only the x86-64 stack walk uses it")
)]
pub(crate) struct Mapped {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapped` owns its mapping and only hands out shared access to
// bytes that are never written after `copy_of`.
unsafe impl Send for Mapped {}
// SAFETY: as for `Send`: the bytes are immutable.
unsafe impl Sync for Mapped {}

#[cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    allow(dead_code, reason = "only the x86-64 stack walk uses it")
)]
impl Mapped {
    /// A fresh mapping holding a copy of `src`.
    pub(crate) fn copy_of(src: &[u8]) -> io::Result<Mapped> {
        let len = src.len().max(1);
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        // SAFETY: the new mapping is `len >= src.len()` writable bytes that
        // nothing else references; `src` cannot overlap a mapping made just
        // now.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), src.len()) };
        Ok(Mapped {
            ptr,
            len: src.len(),
        })
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is the start of a live mapping of at least `len`
        // initialised bytes, owned by `self` and never written again.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made by `copy_of` (length `len.max(1)`),
        // owned by `self`: nothing references it after the drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len.max(1)) };
    }
}
