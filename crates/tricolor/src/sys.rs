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
