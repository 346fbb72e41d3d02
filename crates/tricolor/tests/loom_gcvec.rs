//! Loom model of `GcVec::set` without a lock (`gcvec.rs`, module comment):
//! a `set` racing a `push` that replaces the buffer, or a `pop` that empties
//! the slot.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p tricolor --test loom_gcvec`
//! (without `--cfg loom` this file is empty).
//!
//! The protocol is Dekker's (a store, then a load of the other side's
//! variable, on both sides) with SeqCst fences: loom models `fence(SeqCst)`
//! exactly but treats SeqCst loads and stores as Acquire/Release, so a
//! version with SeqCst accesses instead of fences fails here although the
//! C++ model allows it.
//!
//! As `loom_protocol.rs` does, the model re-implements the protocol with
//! loom's atomics, line by line and with the real code's orderings: `shape`
//! (the sequence count, odd during a change), `len`, `buf` (here an index
//! into two fixed buffers: the one in use and the one a grow publishes) and
//! the writers' mutex. Values are small integers; the write barrier is left
//! out (it does not order anything `set` relies on). Checked after both
//! threads finish:
//! - set vs grow: the set's value is in the buffer in use (no lost update);
//! - set vs pop: the vector is empty and every slot of the buffer in use is
//!   null (no stray store left behind), and the set either happened before
//!   the pop (it returned `Ok` and the pop returned its value) or after it
//!   (it found the index out of range and the pop returned the old value).
//!
//! Each model has a control that drops one step of the protocol and must
//! fail.
//!
//! One difference from the real code: the fast path's store is a `swap`
//! here. With a plain store, loom 0.7 produced an execution that C++'s
//! write-read coherence rules out: the pop's swap read the value from
//! before the set's store, and the set's own later swap (in the slow path)
//! read the pop's null instead of its own store, which the pop's swap
//! would then have had to read. The swap stores the same value, and its
//! read is not used.
#![cfg(loom)]

use loom::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use loom::sync::atomic::{fence, AtomicUsize};
use loom::sync::{Arc, Mutex};

/// Capacity of each of the two buffers.
const CAP: usize = 2;

struct Vec2 {
    /// Index of the buffer in use.
    buf: AtomicUsize,
    len: AtomicUsize,
    shape: AtomicUsize,
    write: Mutex<()>,
    bufs: [[AtomicUsize; CAP]; 2],
}

/// Which steps `set` takes: the real protocol, or a control without one.
#[derive(Clone, Copy, PartialEq)]
enum Set {
    Real,
    /// No reload of `shape` after the store: a store into a buffer being
    /// copied is lost.
    NoRecheck,
    /// No nulling of a stray slot in the slow path.
    NoStrayCleanup,
}

impl Vec2 {
    /// Buffer 0 in use, holding `items`.
    fn new(items: &[usize]) -> Self {
        let v = Vec2 {
            buf: AtomicUsize::new(0),
            len: AtomicUsize::new(items.len()),
            shape: AtomicUsize::new(0),
            write: Mutex::new(()),
            bufs: Default::default(),
        };
        for (i, &x) in items.iter().enumerate() {
            v.bufs[0][i].store(x, Relaxed);
        }
        v
    }

    fn slot(&self, b: usize, i: usize) -> &AtomicUsize {
        &self.bufs[b][i]
    }

    /// `GcVec::set`; `Err` for an index out of range (the real code panics).
    fn set(&self, i: usize, new: usize, how: Set) -> Result<(), ()> {
        let shape = self.shape.load(Acquire);
        if shape & 1 != 0 {
            return self.set_slow(i, new, None, how);
        }
        let len = self.len.load(Acquire);
        if i >= len {
            return Err(());
        }
        let b = self.buf.load(Acquire);
        // The real code stores (Release); see the module comment.
        self.slot(b, i).swap(new, Release);
        fence(SeqCst);
        if how != Set::NoRecheck && self.shape.load(Relaxed) != shape {
            return self.set_slow(i, new, Some(b), how);
        }
        Ok(())
    }

    fn set_slow(&self, i: usize, new: usize, stray: Option<usize>, how: Set) -> Result<(), ()> {
        let _w = self.write.lock().unwrap();
        let len = self.len.load(Relaxed);
        let b = self.buf.load(Acquire);
        if stray == Some(b) && i >= len {
            let v = if how == Set::NoStrayCleanup {
                self.slot(b, i).load(Relaxed)
            } else {
                self.slot(b, i).swap(0, Relaxed)
            };
            if v != new {
                // The pop took the value: the set came first.
                return Ok(());
            }
        }
        if i >= len {
            return Err(());
        }
        self.slot(b, i).store(new, Release);
        Ok(())
    }

    fn reshape<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shape.fetch_add(1, Relaxed);
        fence(SeqCst);
        let r = f();
        self.shape.fetch_add(1, Release);
        r
    }

    /// `GcVec::push` into a full buffer 0: copy to buffer 1, publish it,
    /// then write the new element.
    fn push_grow(&self, x: usize) {
        let _w = self.write.lock().unwrap();
        let len = self.len.load(Relaxed);
        assert_eq!(len, 1, "the model grows from a full buffer of one");
        self.reshape(|| {
            for i in 0..len {
                let v = self.slot(0, i).load(Acquire);
                self.slot(1, i).store(v, Relaxed);
            }
            self.buf.store(1, Release);
        });
        self.slot(1, len).load(Acquire); // the barrier's old value
        self.slot(1, len).store(x, Release);
        self.len.store(len + 1, Release);
    }

    /// `GcVec::pop`.
    fn pop(&self) -> Option<usize> {
        let _w = self.write.lock().unwrap();
        let len = self.len.load(Relaxed);
        if len == 0 {
            return None;
        }
        let b = self.buf.load(Acquire);
        Some(self.reshape(|| {
            self.len.store(len - 1, Release);
            self.slot(b, len - 1).swap(0, Acquire)
        }))
    }
}

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    b.check(f);
}

/// A vector of one element in a full buffer (capacity 1 is modelled by
/// growing at length 1): thread A sets element 0 to 7 while thread B pushes
/// 9, which replaces the buffer.
fn set_vs_grow(how: Set) {
    model(3, move || {
        let v = Arc::new(Vec2::new(&[5]));
        let v2 = v.clone();
        let b = loom::thread::spawn(move || v2.push_grow(9));
        assert_eq!(v.set(0, 7, how), Ok(()));
        b.join().unwrap();
        let cur = v.buf.load(Acquire);
        assert_eq!(cur, 1);
        assert_eq!(v.len.load(Acquire), 2);
        assert_eq!(v.slot(cur, 0).load(Acquire), 7, "the set was lost");
        assert_eq!(v.slot(cur, 1).load(Acquire), 9);
    });
}

/// A vector of one element: thread A sets element 0 to 7 while thread B
/// pops it.
fn set_vs_pop(how: Set) {
    model(3, move || {
        let v = Arc::new(Vec2::new(&[5]));
        let v2 = v.clone();
        let b = loom::thread::spawn(move || v2.pop());
        let set = v.set(0, 7, how);
        let popped = b.join().unwrap();
        match set {
            Ok(()) => assert_eq!(popped, Some(7), "set succeeded but pop missed it"),
            Err(()) => assert_eq!(popped, Some(5), "set found the index gone, pop missed 5"),
        }
        assert_eq!(v.len.load(Acquire), 0);
        let cur = v.buf.load(Acquire);
        for i in 0..CAP {
            assert_eq!(v.slot(cur, i).load(Acquire), 0, "a stray value past len");
        }
    });
}

#[test]
fn gcvec_set_vs_grow() {
    set_vs_grow(Set::Real);
}

#[test]
#[should_panic(expected = "the set was lost")]
fn gcvec_set_without_recheck_vs_grow_fails() {
    set_vs_grow(Set::NoRecheck);
}

#[test]
fn gcvec_set_vs_pop() {
    set_vs_pop(Set::Real);
}

#[test]
#[should_panic(expected = "stray value past len")]
fn gcvec_set_without_stray_cleanup_vs_pop_fails() {
    set_vs_pop(Set::NoStrayCleanup);
}
