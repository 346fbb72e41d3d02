//! # tricolor
//!
//! Go's memory-management runtime for Rust: a tracing, non-moving mark-sweep
//! garbage collector for values shared between threads, with Go's allocator
//! shape (size classes, spans, per-thread caches), Go's tuning (GOGC) and
//! Go's statistics (`MemStats`).
//!
//! ```
//! use tricolor::{Member, Root, Trace};
//!
//! #[derive(Trace)]
//! struct Node { value: i64, left: Member<Node>, right: Member<Node> }
//!
//! impl Node {
//!     fn leaf(value: i64) -> Node { Node { value, left: Member::null(), right: Member::null() } }
//! }
//!
//! let root: Root<Node> = Root::new(Node::leaf(1));  // 'static, Send + Sync
//! let g = tricolor::pin();                           // a guard
//! let child = g.alloc(Node::leaf(2));                // Gc<'_, Node>: Copy, valid while g lives
//! root.left.store(&g, Some(child));                  // an edge store
//! child.right.store(&g, Some(root.get(&g)));         // a cycle
//! assert_eq!(root.left.load(&g).unwrap().value, 2);
//! drop(g);                                           // a quiescent point
//! tricolor::gc();                                    // runtime.GC()
//! assert_eq!(root.left.load(&tricolor::pin()).unwrap().value, 2);
//! ```
//!
//! Three pointer kinds, one job each (see `docs/design/`):
//! - [`Root<T>`]: an off-heap handle that keeps an object alive;
//! - [`Gc<'g, T>`]: a copyable pointer valid while a [`Guard`] lives;
//! - [`Member<T>`] and [`GcVec<T>`]: edges inside managed objects.
//!
//! Beside them, Go's runtime services: [`Weak<T>`] (`weak.Pointer`),
//! [`add_cleanup`] (`runtime.AddCleanup`), [`Pool<T>`] (`sync.Pool`);
//! tuning with [`set_gc_percent`] and [`set_memory_limit`]; observability
//! with [`read_mem_stats`], [`metrics`] (`runtime/metrics`, Prometheus),
//! [`profile`] (pprof heap profiles) and [`alloc::Tracking`] (the same for
//! plain Rust allocations).
//!
//! Soundness rests on the invariants named in `docs/design/DESIGN.md`
//! (INV-TRACE, INV-GUARD, INV-ROOT, INV-SWEEP, ...) and in
//! `docs/design/core-api.md` (INV-SEAL, INV-HEAPPTR, INV-CACHE); every
//! `unsafe` block cites the one it relies on.

#![warn(missing_docs)]

extern crate self as tricolor;

// Public API.
pub mod alloc;
mod gctrace;
mod gcvec;
mod member;
pub mod metrics;
mod pool;
pub mod profile;
mod root;
mod specials;
mod stats;
mod thread;
mod trace;

// The runtime.
mod cache;
mod collector;
mod cpu;
mod heap;
mod object;
mod options;
mod pacer;
// The full pacer (Go's gcControllerState and CPU limiter), tested by
// simulation; `pacer` feeds it and publishes its decisions.
mod pacer_model;
mod scavenger;
mod sizeclass;
mod sweep;
mod sys;

pub use cache::AllocError;
pub use collector::gc;
pub use gctrace::set_gctrace;
pub use gcvec::GcVec;
pub use member::{Gc, Member};
pub use options::{OptionSpec, OPTIONS};
pub use pool::{Pool, Pooled};
pub use root::Root;
pub use scavenger::free_os_memory;
pub use specials::{
    add_cleanup, cleanup_panics, cleanups_run, keep_alive, run_cleanups, Cleanup, Weak,
};
pub use stats::{read_mem_stats, MemStats, SizeClassStats, BLOCKED_BUCKETS, NUM_SIZE_CLASSES};
pub use thread::{pin, Guard};
pub use trace::{Trace, Tracer};
/// `#[derive(Trace)]`: see the `tricolor-derive` crate.
pub use tricolor_derive::Trace;

/// Sets the GOGC percentage and returns the previous one (Go's
/// `debug.SetGCPercent`). A negative value turns automatic collection off;
/// `gc()` still collects.
pub fn set_gc_percent(percent: i32) -> i32 {
    options::init();
    pacer::set_gc_percent(percent)
}

/// Sets a soft limit on the memory the heap maps (heap spans and their
/// metadata), in bytes, and returns the previous one (Go's
/// `debug.SetMemoryLimit`). `u64::MAX` means no limit (the default). Near
/// the limit the heap goal shrinks to fit under it, so cycles run more
/// often; the limit is soft: a live heap larger than it is never freed.
///
/// When [`alloc::Tracking`] is the global allocator, the bytes it counts
/// live (`String`s, `Vec`s and other plain Rust allocations, including
/// those GC objects own) count against the limit too, as Go's limit counts
/// all the memory its runtime manages: the heap goal leaves room for them.
/// (What `malloc` itself keeps beyond the requested sizes is not counted.)
pub fn set_memory_limit(bytes: u64) -> u64 {
    options::init();
    pacer::set_memory_limit(bytes)
}

#[cfg(test)]
mod tests;
