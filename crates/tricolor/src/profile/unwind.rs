//! Stack capture for the heap profiler: the return addresses of the current
//! thread's stack, taken for every sampled allocation.
//!
//! What: [`capture`] fills a buffer with the instruction pointer of its own
//! frame followed by the return addresses of its callers, leaf first (the
//! profiler drops its own leading frames by name when it symbolizes). It
//! runs inside the global allocator, once per sampled allocation (one per
//! 512 KiB allocated by default), so its cost is a direct part of the
//! profiler's overhead: the system unwinder (libgcc's `_Unwind_Backtrace`)
//! looks each frame's FDE up and interprets its CFI program anew, about
//! 1,400 instructions a frame, 4 µs a sample in the tracking allocator's
//! benchmark.
//!
//! Algorithm, on Linux x86-64 (elsewhere: the `backtrace` crate, i.e. the
//! system unwinder):
//! 1. Modules: the first capture, and every capture after the dynamic
//!    loader's counts of loaded and unloaded objects (`dlpi_adds`,
//!    `dlpi_subs`) changed, lists the loaded objects with `dl_iterate_phdr`
//!    and gives each one's executable range and a *copy* of its
//!    `.eh_frame_hdr` and `.eh_frame` to a `framehop` unwinder (a DWARF CFI
//!    unwinder with a cache of unwind rules keyed by address). Copies, so
//!    that an object unloaded later leaves no dangling reference behind:
//!    stale rules can only produce a wrong frame, never an invalid read
//!    (step 3). The copies are mappings of their own (`sys::Mapped`), not
//!    `malloc` blocks: hundreds of KiB of long-lived data in the middle of
//!    the program's heap changed how glibc reused its free chunks, and the
//!    tracking allocator would have counted them as the program's.
//! 2. Registers: one `asm!` block reads the instruction pointer, stack
//!    pointer and frame pointer of `walk` itself, consistently.
//! 3. Walk: framehop computes each caller's registers from the cached rule
//!    of the return address (a few ns a frame once the cache is warm, and it
//!    is for a program's few hot allocation sites). Every stack word it
//!    reads is checked to lie in `[sp, top)`, the live part of this thread's
//!    stack (its mapping from `pthread_getattr_np`, cached per thread): a
//!    read outside ends the walk, so a wrong rule cannot fault. A thread
//!    whose `sp` is outside its mapping (on a coroutine's or a signal
//!    stack) is left to the system unwinder.
//! 4. A walk that yields fewer than two frames (no unwind information found
//!    for our own code: a static binary, an unusual linker) is redone by the
//!    system unwinder.
//!
//! Shared state: `STATE` (the unwinder, its rule cache and the loader
//! counts it was built at) under one mutex, held for the whole walk; only
//! sampling threads take it. The stack bounds are a thread-local of the
//! profiler's `Local` (const-initialised, no destructor).

use super::MAX_DEPTH;

/// Fills `buf` with this thread's stack, leaf first; returns the number of
/// frames written.
pub(super) fn capture(buf: &mut [usize; MAX_DEPTH]) -> usize {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let n = fast::capture(buf);
        if n >= 2 {
            return n;
        }
    }
    capture_system(buf)
}

/// [`capture`] by the system unwinder.
pub(super) fn capture_system(buf: &mut [usize; MAX_DEPTH]) -> usize {
    let mut n = 0;
    // `trace_unsynchronized` is unsafe only because some platforms'
    // unwinders (Windows' dbghelp) are not thread-safe; on the Unix targets
    // tricolor supports it is the libgcc/libunwind unwinder, which is.
    // SAFETY: a thread-safe unwinder (above); the closure only stores
    // addresses: it does not allocate or panic.
    unsafe {
        backtrace::trace_unsynchronized(|f| {
            let ip = f.ip() as usize;
            if ip == 0 {
                return false; // the end of the stack
            }
            buf[n] = ip;
            n += 1;
            n < MAX_DEPTH
        })
    };
    n
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod fast {
    use std::ffi::{c_int, c_void, CStr};
    use std::mem::MaybeUninit;
    use std::sync::{Mutex, PoisonError};

    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};

    use super::super::{LOCAL, MAX_DEPTH};
    use crate::sys::Mapped;

    struct State {
        unwinder: UnwinderX86_64<Mapped>,
        cache: CacheX86_64,
        /// The loader's (`dlpi_adds`, `dlpi_subs`) when `unwinder` was built.
        loaded: (u64, u64),
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    pub(super) fn capture(buf: &mut [usize; MAX_DEPTH]) -> usize {
        let Some(stack) = stack_bounds() else {
            return 0;
        };
        let mut g = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        let loaded = loader_counts();
        if g.as_ref().is_none_or(|s| s.loaded != loaded) {
            *g = Some(State {
                unwinder: modules(),
                cache: CacheX86_64::new(),
                loaded,
            });
        }
        let Some(s) = g.as_mut() else { return 0 };
        walk(&s.unwinder, &mut s.cache, stack, buf)
    }

    /// The walk of step 3, from `walk`'s own frame; 0 frames if this
    /// thread runs on a stack other than its own (a coroutine's, a signal
    /// stack): the caller then uses the system unwinder.
    #[inline(never)]
    fn walk(
        unwinder: &UnwinderX86_64<Mapped>,
        cache: &mut CacheX86_64,
        (base, top): (u64, u64),
        buf: &mut [usize; MAX_DEPTH],
    ) -> usize {
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers into outputs; no memory access, no
        // stack change (`nostack`), flags untouched (`preserves_flags`).
        unsafe {
            std::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags),
            )
        };
        if sp < base || sp >= top {
            return 0;
        }
        let mut read = |addr: u64| {
            if addr < sp || addr > top.saturating_sub(8) {
                return Err(());
            }
            // `[sp, top)` is the live part of this thread's stack (`top` the
            // end of its mapping, `sp` this frame's stack pointer, checked
            // above to lie in it). A wrong rule may ask for any address.
            // SAFETY: in `[sp, top)`: mapped, readable, and not written while
            // this thread is in here (its callers are suspended in calls);
            // the read is unaligned-tolerant.
            Ok(unsafe { (addr as *const u64).read_unaligned() })
        };
        let mut frames =
            unwinder.iter_frames(ip, UnwindRegsX86_64::new(ip, sp, bp), cache, &mut read);
        let mut n = 0;
        while let Ok(Some(f)) = frames.next() {
            buf[n] = f.address() as usize;
            n += 1;
            if n == MAX_DEPTH {
                break;
            }
        }
        n
    }

    /// This thread's stack mapping, `[base, top)` (cached per thread).
    fn stack_bounds() -> Option<(u64, u64)> {
        let cached = LOCAL.try_with(|l| l.stack.get()).ok()?;
        if cached.1 != 0 {
            return Some(cached);
        }
        let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
        // glibc allocates here with its own malloc, not the Rust global
        // allocator: this does not re-enter the tracking allocator.
        // SAFETY: `pthread_getattr_np` initialises `attr` when it returns
        // 0; only then is it read and destroyed.
        let bounds = unsafe {
            if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
                return None;
            }
            let (mut addr, mut size) = (std::ptr::null_mut::<c_void>(), 0usize);
            let r = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
            libc::pthread_attr_destroy(attr.as_mut_ptr());
            if r != 0 {
                return None;
            }
            (addr as u64, (addr as u64).checked_add(size as u64)?)
        };
        let _ = LOCAL.try_with(|l| l.stack.set(bounds));
        Some(bounds)
    }

    /// The loader's counts the module list was last built at.
    #[cfg(test)]
    pub(super) fn loaded_at() -> Option<(u64, u64)> {
        STATE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|s| s.loaded)
    }

    /// Calls `f` on each loaded object (`dl_iterate_phdr`, with the loader
    /// lock held) until it returns false.
    fn each_object<F: FnMut(&libc::dl_phdr_info) -> bool>(mut f: F) {
        unsafe extern "C" fn call<F: FnMut(&libc::dl_phdr_info) -> bool>(
            info: *mut libc::dl_phdr_info,
            _size: usize,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: `dl_iterate_phdr` passes a valid `info` for the call;
            // `data` is `each_object`'s `f`, borrowed by nothing else then.
            let (info, f) = unsafe { (&*info, &mut *(data as *mut F)) };
            c_int::from(!f(info))
        }
        // SAFETY: `call::<F>` matches the callback type; `data` is `f`, which
        // outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(call::<F>), &mut f as *mut F as *mut c_void) };
    }

    /// The loader's counts of objects loaded and unloaded so far (the same
    /// in every entry: the first one is enough).
    fn loader_counts() -> (u64, u64) {
        let mut counts = (0u64, 0u64);
        each_object(|info| {
            counts = (info.dlpi_adds, info.dlpi_subs);
            false
        });
        counts
    }

    /// An unwinder over every loaded object with unwind information (step 1).
    fn modules() -> UnwinderX86_64<Mapped> {
        let mut u = UnwinderX86_64::new();
        each_object(|info| {
            // SAFETY: an entry `dl_iterate_phdr` passed, during its call.
            if let Some(m) = unsafe { module(info) } {
                u.add_module(m);
            }
            true
        });
        u
    }

    /// One loaded object as a framehop module, with copies of its unwind
    /// sections; `None` if it has none that this reader understands.
    ///
    /// # Safety
    /// `info` is an entry `dl_iterate_phdr` passed, during its call.
    unsafe fn module(info: &libc::dl_phdr_info) -> Option<Module<Mapped>> {
        if info.dlpi_phdr.is_null() {
            return None;
        }
        // SAFETY: the loader's program headers of this object (the
        // function's contract).
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let bias = info.dlpi_addr;
        let text = phdrs
            .iter()
            .find(|p| p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_X != 0)
            .map(|p| p.p_vaddr..p.p_vaddr + p.p_memsz)?;
        let hdr = phdrs
            .iter()
            .find(|p| p.p_type == libc::PT_GNU_EH_FRAME)
            .map(|p| p.p_vaddr..p.p_vaddr + p.p_memsz)?;
        // The loaded segment holding `.eh_frame_hdr` bounds what is read.
        let in_segment = |v: u64, len: u64| {
            phdrs.iter().any(|p| {
                p.p_type == libc::PT_LOAD
                    && p.p_vaddr <= v
                    && v.checked_add(len)
                        .is_some_and(|e| e <= p.p_vaddr + p.p_filesz)
            })
        };
        if hdr.end - hdr.start < 8 || !in_segment(hdr.start, hdr.end - hdr.start) {
            return None;
        }
        // SAFETY: `hdr` lies in a loaded segment's file-backed part (checked
        // above), mapped while the loader lock is held.
        let hdr_data = Mapped::copy_of(unsafe {
            std::slice::from_raw_parts(
                (bias + hdr.start) as *const u8,
                (hdr.end - hdr.start) as usize,
            )
        })
        .ok()?;
        // `.eh_frame_hdr`: version 1, then `eh_frame_ptr` encoded as
        // pc-relative sdata4 (0x1b: what GNU ld, gold, lld and mold write).
        if hdr_data[0] != 1 || hdr_data[1] != 0x1b {
            return None;
        }
        let rel = i32::from_le_bytes(hdr_data[4..8].try_into().ok()?) as i64;
        let eh = (hdr.start as i64 + 4 + rel) as u64;
        // `.eh_frame` has no length in the headers: take the rest of its
        // segment (the entries are self-delimiting).
        let seg_end = phdrs
            .iter()
            .find(|p| p.p_type == libc::PT_LOAD && p.p_vaddr <= eh && eh < p.p_vaddr + p.p_filesz)
            .map(|p| p.p_vaddr + p.p_filesz)?;
        // SAFETY: `[eh, seg_end)` is the file-backed part of a loaded
        // segment, mapped while the loader lock is held.
        let eh_data = Mapped::copy_of(unsafe {
            std::slice::from_raw_parts((bias + eh) as *const u8, (seg_end - eh) as usize)
        })
        .ok()?;
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned
            // by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }
                .to_string_lossy()
                .into_owned()
        };
        let sections = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: Some(text.clone()),
            eh_frame_svma: Some(eh..seg_end),
            eh_frame: Some(eh_data),
            eh_frame_hdr_svma: Some(hdr),
            eh_frame_hdr: Some(hdr_data),
            text: None,
            stubs_svma: None,
            stub_helper_svma: None,
            got_svma: None,
            unwind_info: None,
            debug_frame: None,
            text_segment_svma: None,
            text_segment: None,
        };
        Some(Module::new(
            name,
            bias + text.start..bias + text.end,
            bias,
            sections,
        ))
    }
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[inline(never)]
    fn both() -> (Vec<usize>, Vec<usize>) {
        let mut a = [0; MAX_DEPTH];
        let mut b = [0; MAX_DEPTH];
        let n = std::hint::black_box(capture(&mut a));
        let m = std::hint::black_box(capture_system(&mut b));
        (a[..n].to_vec(), b[..m].to_vec())
    }

    /// The walk finds the same callers as the system unwinder: beyond the
    /// leading frames that differ (the unwinders' own, and the two call
    /// sites in `both`), the stacks are equal.
    #[test]
    fn capture_matches_the_system_unwinder() {
        assert_same_callers();
    }

    /// Loading and unloading a shared object changes the loader's counts:
    /// the next capture rebuilds its module list, and still walks right.
    #[test]
    fn capture_follows_objects_loaded_and_unloaded() {
        let loaded = || {
            let mut buf = [0; MAX_DEPTH];
            capture(&mut buf);
            fast::loaded_at()
        };
        let before = loaded();
        // SAFETY: a NUL-terminated name; libresolv has no constructor that
        // matters here, and nothing of it is used before the dlclose.
        let h = unsafe { libc::dlopen(c"libresolv.so.2".as_ptr(), libc::RTLD_NOW) };
        assert!(!h.is_null(), "libresolv.so.2 (part of glibc) did not load");
        let opened = loaded();
        assert_ne!(opened, before, "the module list was not rebuilt");
        assert_same_callers();
        // SAFETY: the handle of the dlopen above, closed once.
        unsafe { libc::dlclose(h) };
        assert_ne!(loaded(), opened, "the module list was not rebuilt");
        assert_same_callers();
    }

    fn assert_same_callers() {
        let (fast, system) = both();
        let common = fast
            .iter()
            .rev()
            .zip(system.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        // `walk`, `fast::capture` and `capture` (unless inlined), and `both`.
        assert!(
            common >= 2 && common + 4 >= fast.len(),
            "common suffix {common}\nfast {fast:x?}\nsystem {system:x?}"
        );
    }
}
