//! Loom models of the concurrent-mark protocol (DESIGN.md section 4,
//! core-api.md "The collector as built", "Termination").
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p tricolor --test loom_protocol -- --test-threads=1`
//! (the separate target directory keeps the flag change from rebuilding the
//! normal one; one test at a time is faster than two on a 2-core machine,
//! loom's executions are system-call heavy). Without `--cfg loom` this file
//! is empty. Each model states its preemption bound; `LOOM_MAX_PREEMPTIONS=N`
//! overrides it. A model that fails panics with the interleaving it found:
//! each thread's protocol steps in loom's execution order (a load may still
//! return an older value than the last store listed before it, as the
//! memory model allows when no happens-before edge orders the two).
//!
//! # What is modelled
//!
//! The models do not call the crate: they re-implement, with loom's atomics,
//! the parts of the protocol that threads share, line by line and with the
//! real code's orderings:
//! - `thread.rs`: each mutator's `state = epoch << 1 | pinned` word and
//!   `dirty` flag, `FLAGS` (`STW | WAITING | MARKING | BLACK`) and `EPOCH`;
//!   `pin_outer` (Acquire load of `EPOCH`, SeqCst swap of `state`, SeqCst
//!   load of `FLAGS`, the slow path), `unpin_outer` (publish the grey
//!   buffer, SeqCst swap, SeqCst load of `FLAGS`, wake the collector),
//!   `wait_for_world`, `handshake` (bump `EPOCH`, set `WAITING`, wait until
//!   every thread of the snapshot is unpinned or pinned at the new epoch),
//!   `stop_the_world` and `start_the_world`. In a stop the collector waits
//!   with loom's `park` and a mutator that sees `STW` wakes it with
//!   `unpark` (`WAITER`, the collector's handle, is set before any flag is
//!   published, as in the real code); a handshake polls (the real code's
//!   `park_timeout`; here `yield_now`, which lets loom run the others
//!   first); `PARK` is a loom `Mutex` over the blocked threads and the
//!   restart relay (the restart wakes one blocked thread, each thread that
//!   leaves wakes the next), and after each restart the collector waits
//!   until `BLOCKED` is zero (the real `let_blocked_run`, here without its
//!   1 ms bound). So a lost wake-up shows up as a deadlock that loom
//!   reports.
//! - `collector.rs`: `set_mark` (a Relaxed load, then a Relaxed `fetch_or`:
//!   whoever sets the bit queues the object), `shade` (queue in the thread's
//!   grey buffer, set its `dirty` flag with SeqCst), the write barrier (a
//!   Relaxed load of `FLAGS`; shade the old and the new target), black
//!   allocation (a Relaxed load of `FLAGS`; with `BLACK`, mark the new object
//!   without queueing it and shade the edges it is born with), `drain` with
//!   its 8-entry FIFO (it decides the scan order, and so which interleavings
//!   exist), `drain_all` (drain, then take the published grey buffers from
//!   the lock-free `GRAY` stack, until both are empty), `terminate` (rounds: clear
//!   every `dirty` flag, handshake, end if `GRAY` is empty and no thread is
//!   dirty, else drain and repeat) and `cycle` (set `MARKING`, snapshot
//!   `THREADS`, handshake, set `BLACK`, mark roots, drain, terminate, stop
//!   the world holding `THREADS`, take every thread's grey buffer, disarm,
//!   sweep, restart).
//! - `member.rs`: `Member::load` (Acquire) and `Member::store` (Relaxed load
//!   of the old value, barrier, Release store).
//! - `root.rs`: root creation (Release store of the slot, then shade the
//!   target if marking) and root drop (AcqRel swap to null, then shade the
//!   old target if marking); `mark_roots` (Acquire loads of every slot, all
//!   before the first object is scanned).
//!
//! The heap is a handful of named objects, each with two edge slots
//! (`AtomicUsize`, holding `object + 1`, 0 for null); mark bits and the
//! allocated set are bits of an `AtomicU64`. A thread's grey buffer (a `Vec`
//! in an `UnsafeCell` in the real code, owned by the thread while it is
//! pinned and by the collector while the world is stopped) is an `AtomicU64`
//! bit set accessed with separate Relaxed loads and stores, so the model,
//! like the real code, sees its contents only through the happens-before
//! edges the protocol provides. One collector (the loom main thread) runs
//! one cycle; one mutator thread runs a short script, starting at any point
//! of the cycle.
//!
//! # What is checked
//!
//! - At the stop (every thread unpinned): no grey work is left, not in the
//!   collector's stack, not in a thread's buffer, not in `GRAY`. The stop of
//!   the real code only releases caches and flips the sweep generation (it
//!   drains what it finds, but a correct termination leaves nothing, and a
//!   debug assertion says so), so grey work found here means termination
//!   ended too early.
//! - At the sweep: every object reachable from the root slots through edges
//!   is marked, i.e. the sweep frees no reachable object (INV-SWEEP). The
//!   checker reads roots and edges with `fetch_add(0)`, which in loom always
//!   returns the newest value (checker only, not part of the protocol).
//! - After the mutator is joined: no object the sweep freed is reachable in
//!   the final heap (this also catches a mutator that kept a freed object in
//!   a local across a broken stop and stored it afterwards).
//!
//! A violation panics with a message starting `SAFETY VIOLATION`. Loom also
//! fails a model that deadlocks, so every passing model also shows that no
//! wake-up is lost for its script.
//!
//! # The models
//!
//! - Model 1, `arm_*` (bound 4): the arm handshake against a racing edge store. The
//!   collector runs a whole cycle from the unarmed state; the mutator pins
//!   (before the arm, during the handshake, after it, or during the stop),
//!   loads X from A's edge, deletes that edge, stores X into B, unpins. A
//!   and B are rooted. The dangerous case is a store whose barrier read
//!   "not marking" and whose slot write lands after the collector scanned
//!   B: the handshake must wait for it.
//! - Model 1b, `arm_black_*` (bound 3): black allocation against the arm: the
//!   mutator takes X out of A, allocates N, stores X into N and N into B.
//! - Model 2, `termination_*` (bound 3): stores racing the termination rounds. The
//!   cycle starts armed; A -> X -> Y, A and B rooted. The mutator moves X
//!   from A (maybe not yet scanned) to B (maybe already scanned), allocates
//!   N and stores it into B; or holds X in a local, deletes A's edge and
//!   allocates N born with an edge to X. Y is reachable only through X, so
//!   X must be shaded *and* scanned before a round ends clean.
//! - Model 3, `roots_*` (bound 3): root creation and drop racing the root scan.
//!   Create: the mutator loads X (reachable only through A's edge), roots
//!   it, deletes the edge, allocates N and roots it. Drop: X is rooted only;
//!   the mutator stores it into A's edge, unpins, then drops the root (the
//!   drop pins on its own, as `Root::drop` does). Clone then drop: X moves
//!   from one root slot to another (`Root::clone`, then drop the original).
//! - Model 5, `weak_*` (bound 4): a weak upgrade racing weak clearing
//!   (`specials.rs`). X is reachable only through a weak cell, X -> Y. The
//!   mutator upgrades (pin, read the cell, root what it names, unpin) while
//!   the collector runs a cycle whose stop clears the cell if X is unmarked.
//!   An upgrade after termination shades X (root creation is the keep-alive
//!   barrier); the stop finds that grey work and restarts instead of
//!   clearing and sweeping, as the real code does. Only this model lets the
//!   stop find grey work; the others assert it never does. Checked too: a
//!   cell not cleared never names a freed object. Controls: no keep-alive
//!   barrier; a stop that ignores the grey work.
//! - Model 4, `registration_*` (bound 4): as model 1, but the mutator registers (its
//!   first pin) while the cycle starts. `cycle` once snapshot `THREADS`
//!   *before* setting `MARKING`, so a thread that registered and pinned in
//!   between read no `MARKING`, and the arm handshake did not wait for it;
//!   loom found the lost object, and the control
//!   `registration_snapshot_before_arm_loses_an_object` keeps it found. A
//!   thread that registers after the snapshot locked `THREADS` after
//!   `MARKING` was set, so its pin reads it.
//! - Model 6, `restart_*` (bound 3): the restart relay. Two mutators pin and
//!   unpin while the collector stops and restarts the world twice (no
//!   marking): both may be blocked by one stop, and the second is woken by
//!   the first, possibly after the next stop has begun. Every thread must
//!   run again; the control without the relay leaves one parked.
//!
//! # Controls and findings
//!
//! Each model comes with negative controls: the model with part of the
//! protocol removed or reordered (see `Faults`), which loom must fail
//! (`#[should_panic(expected = "SAFETY VIOLATION")]`): no handshake; no
//! store->load order in pin (found with one preemption: the bug needs stale
//! reads, not a schedule); no barrier; `BLACK` before `MARKING`; a round
//! that ignores `GRAY`; publishing the grey buffer after the unpin swap; no
//! insertion half; no root barriers. `arm_unpin_without_wakeup_deadlocks` is
//! a liveness control: without the wake-up at unpin while a stop waits,
//! loom reports a deadlock (a handshake polls, so it needs none).
//!
//! Some removals are not bugs for these scripts, and the models say so by
//! passing (tests named `*_redundant_*`, `*_is_safe_*`, `*_needs_no_*`):
//! - Each half of the edge barrier alone keeps a move safe; the deletion
//!   half alone covers a move of an existing object; the insertion half
//!   alone is Dijkstra's barrier, which is sound here because the cycle
//!   ends in a stop where every thread is unpinned, so no local survives
//!   termination. The real code keeps both halves (Go's hybrid barrier):
//!   the deletion half is what lets the design later end a cycle without
//!   any stop, and it costs one load on a path that already loads `FLAGS`.
//! - `BLACK` before the arm handshake is safe, because `BLACK` and
//!   `MARKING` are bits of one word (see that test). The real code sets it
//!   after the handshake anyway, so no object is born black before every
//!   thread is known to run the barrier, which keeps the argument local.
//! - The `dirty` flags are redundant with one mutator and the collector as
//!   the only drainer: a thread pinned at the old epoch publishes its
//!   buffer before the handshake passes it (so `GRAY` is not empty), and a
//!   thread pinned at the new epoch can only reach objects the drain before
//!   the round already marked. The flags exist for what the model leaves
//!   out: background mark workers and assists that take published grey
//!   work from the pool while a round runs (so `GRAY` can look empty while
//!   the work is still being scanned; an assist sets its thread's `dirty`
//!   flag), and a second mutator pinned at the new epoch that shades an
//!   object reachable only through a grey object in another thread's
//!   buffer. A model with a worker and two mutators does not finish in CI
//!   time; the churn stress test under checkmark covers those schedules in
//!   the real code.
//! - Moving an object from a root into the heap needs no barrier, because
//!   every root slot is read before any object is scanned; either root
//!   barrier alone covers a move between roots.
//!
//! # Where the model departs from the real code
//!
//! - Loom treats SeqCst loads and stores as AcqRel (loom's README, tokio-rs
//!   loom issue 180): it would let both sides of Dekker's pattern read the
//!   old value. The one thing the protocol takes from SeqCst beyond AcqRel is
//!   that store->load order, so the model keeps the real orderings and adds
//!   a `fence(SeqCst)` between each SeqCst write and the SeqCst load of the
//!   other word that follows it (pin, unpin, `wait_for_world`, handshake,
//!   stop); loom supports SeqCst fences. A loom SeqCst fence is stronger
//!   than C++'s (it joins the views of all fenced threads), so the models
//!   may miss a bug that needs the weaker semantics.
//! - Loom does not explore every load-buffering behaviour of Relaxed
//!   accesses (loom's README), and the preemption bound limits the explored
//!   schedules: a passing model is evidence, not proof.
//! - The collector takes `PARK` with `try_lock` and `yield_now` (see
//!   `start_the_world`), because of how loom treats an `unpark` of a thread
//!   blocked on a mutex; an `unpark` of a yielding loom thread is not kept
//!   for its next `park`, which can only make a model deadlock, not pass.
//! - Root slots are fixed words (the pool and the per-thread free lists are
//!   thread-local bookkeeping); nested pins are not modelled (only the
//!   outermost pin does anything in the real code); the grey buffer's
//!   publication at 256 entries, thread exit, `Guard::repin`,
//!   `Member::swap`, `GcVec`, the work pool, mark workers, assists and the
//!   leaked-guard check are not modelled.

#![cfg(loom)]

use loom::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst},
};
use loom::sync::{Arc, Mutex};
use loom::thread;
use std::mem::ManuallyDrop;

/// A stop of the world is requested or in progress.
const STW: u8 = 1;
/// The collector waits for threads (a handshake or a stop).
const WAITING: u8 = 2;
/// Marking is in progress: barriers shade.
const MARKING: u8 = 4;
/// Allocation is black (set once the arm handshake is complete).
const BLACK: u8 = 8;

/// Edge slots per object.
const EDGES: usize = 2;
/// A reference: `object + 1`, 0 for null.
type Ref = usize;

const fn r(o: usize) -> Ref {
    o + 1
}

/// Parts of the protocol a control removes or changes. All `false` is the
/// protocol as specified.
#[derive(Clone, Copy, Default, Debug)]
struct Faults {
    /// `pin_outer` without store->load order between publishing `state`
    /// and reading `FLAGS` (as a Release store and an Acquire load would
    /// be, or the real SeqCst pair as loom reads it without a fence).
    pin_no_fence: bool,
    /// The collector does not run the arm handshake.
    no_handshake: bool,
    /// The write barrier does not shade the old target.
    no_deletion: bool,
    /// The write barrier does not shade the new target.
    no_insertion: bool,
    /// Root creation does not shade its target.
    no_root_create_barrier: bool,
    /// Root drop does not shade its old target.
    no_root_drop_barrier: bool,
    /// The stop ignores grey work a weak upgrade made after termination
    /// (clears weak pointers and sweeps anyway) instead of restarting.
    no_stop_retry: bool,
    /// `unpin_outer` publishes the grey buffer after the `state` swap.
    flush_after_unpin: bool,
    /// `unpin_outer` never wakes the collector (a liveness control).
    unpin_no_wakeup: bool,
    /// The first version of `cycle`: snapshot the thread list before
    /// setting `MARKING` (model 4).
    snapshot_before_arm: bool,
    /// `BLACK` is set right after `MARKING`, before the arm handshake.
    black_before_handshake: bool,
    /// `BLACK` is set before `MARKING`.
    black_before_marking: bool,
    /// A termination round ignores the threads' `dirty` flags.
    ignore_dirty: bool,
    /// A termination round ignores the published grey buffers (`GRAY`).
    ignore_gray: bool,
    /// A thread leaving `park_until_restart` does not wake the next one of
    /// the relay (a liveness control, model 6).
    no_relay: bool,
}

/// The initial heap of a model.
struct Setup {
    /// Object names (for the interleaving a violation prints), numbered
    /// from 0.
    names: &'static [&'static str],
    /// Objects allocated at the start (the others are free slots that the
    /// mutator may allocate).
    allocated: &'static [usize],
    /// `(from, slot, to)`: initial edges.
    edges: &'static [(usize, usize, usize)],
    /// Initial root slots (`None`: an empty slot the mutator may take).
    roots: &'static [Option<usize>],
    /// The cycle starts right after the arm handshake (`MARKING` set,
    /// `EPOCH` bumped; its first step is setting `BLACK`) instead of
    /// running it.
    armed: bool,
    /// The mutator is registered before the cycle starts (else its script
    /// registers it).
    registered: bool,
    /// The object a weak cell points to at the start (model 5); a setup
    /// with a weak cell lets the stop find grey work and restart, as the
    /// real code does (an upgrade after termination shades).
    weak: Option<usize>,
}

/// `Parked`: the threads a stop blocked, and the restart relay.
struct Parked {
    restarts: u64,
    waiting: Vec<thread::Thread>,
    relay: Vec<thread::Thread>,
}

/// A registered mutator thread (`ThreadState`).
struct Mutator {
    /// `epoch << 1 | pinned`.
    state: AtomicU64,
    /// The grey buffer: objects this thread's barrier shaded, not yet
    /// published. Plain (non-atomic) data in the real code, hence separate
    /// Relaxed loads and stores here.
    gray: AtomicU64,
    /// Set (SeqCst) by every successful shade; cleared by the collector at
    /// the start of each termination round.
    dirty: AtomicBool,
}

/// Everything threads share: the collector's words, the parking lot, the
/// published grey buffers, the thread list and the heap.
struct World {
    faults: Faults,
    flags: AtomicU8,
    epoch: AtomicU64,
    /// `PARK`: the threads a stop blocked, and the restart relay.
    park: Mutex<Parked>,
    /// `BLOCKED`: threads inside `wait_for_world`.
    blocked: AtomicUsize,
    /// `WAITER`: the collector thread, which parks; set when its cycle
    /// starts, before it publishes any flag (the real `OnceLock`'s
    /// Release/Acquire is this mutex's).
    waiter: Mutex<Option<thread::Thread>>,
    /// `GRAY`: published grey buffers (a bit set of objects). The real
    /// code's lock-free stack: a push is one SeqCst CAS (here a SeqCst
    /// `fetch_or`), the collector takes all with one SeqCst swap.
    gray: AtomicU64,
    /// `THREADS`.
    threads: Mutex<Vec<Arc<Mutator>>>,
    edges: Vec<[AtomicUsize; EDGES]>,
    marks: AtomicU64,
    allocated: AtomicU64,
    roots: Vec<AtomicUsize>,
    /// A weak cell (`specials.rs`): the target's `Ref`, 0 once cleared.
    weak: AtomicUsize,
    /// The setup has a weak cell: grey work at the stop restarts the world.
    retry_allowed: bool,
    names: &'static [&'static str],
    /// What each thread did, in loom's execution order (not part of the
    /// model: a plain `std` mutex, never held across a loom operation).
    trace: std::sync::Mutex<Vec<String>>,
}

fn bits(set: u64) -> Vec<usize> {
    (0..64).filter(|i| set & (1 << i) != 0).collect()
}

impl World {
    fn new(setup: &Setup, faults: Faults) -> World {
        let edges: Vec<[AtomicUsize; EDGES]> = (0..setup.names.len())
            .map(|_| [AtomicUsize::new(0), AtomicUsize::new(0)])
            .collect();
        for &(from, slot, to) in setup.edges {
            edges[from][slot].store(r(to), Relaxed);
        }
        World {
            faults,
            flags: AtomicU8::new(if setup.armed { MARKING } else { 0 }),
            epoch: AtomicU64::new(if setup.armed { 2 } else { 1 }),
            park: Mutex::new(Parked {
                restarts: 0,
                waiting: Vec::new(),
                relay: Vec::new(),
            }),
            blocked: AtomicUsize::new(0),
            waiter: Mutex::new(None),
            gray: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            edges,
            marks: AtomicU64::new(0),
            allocated: AtomicU64::new(setup.allocated.iter().fold(0, |s, &o| s | 1 << o)),
            roots: setup
                .roots
                .iter()
                .map(|o| AtomicUsize::new(o.map_or(0, r)))
                .collect(),
            names: setup.names,
            weak: AtomicUsize::new(setup.weak.map_or(0, r)),
            retry_allowed: setup.weak.is_some(),
            trace: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Records an event of the collector (`C`) or the mutator (`M`).
    fn log(&self, who: char, what: String) {
        self.trace.lock().unwrap().push(format!("{who}: {what}"));
    }

    fn name(&self, v: Ref) -> &'static str {
        if v == 0 {
            "null"
        } else {
            self.names[v - 1]
        }
    }

    fn set_names(&self, set: u64) -> String {
        let names: Vec<&str> = bits(set).into_iter().map(|o| self.names[o]).collect();
        format!("{{{}}}", names.join(", "))
    }

    fn interleaving(&self) -> String {
        self.trace.lock().unwrap().join("\n  ")
    }

    /// Stands in for the store->load order of a SeqCst write followed by a
    /// SeqCst load (see the module comment).
    fn sc_fence(&self) {
        fence(SeqCst);
    }

    // ---- thread.rs: the mutator side ------------------------------------

    /// `register`: the thread joins `THREADS` (its first pin does this).
    fn register(&self, t: &Arc<Mutator>) {
        self.threads.lock().unwrap().push(t.clone());
        self.log('M', "registers".into());
    }

    /// `pin_outer`.
    fn pin(&self, t: &Mutator) {
        let e = self.epoch.load(Acquire);
        t.state.swap(e << 1 | 1, SeqCst);
        if !self.faults.pin_no_fence {
            self.sc_fence();
        }
        let f = self.flags.load(SeqCst);
        self.log('M', format!("pins at epoch {e}, reads FLAGS {f:#b}"));
        if f & (STW | WAITING) != 0 {
            self.pin_slow(t);
        }
    }

    /// `unpin_outer`.
    fn unpin(&self, t: &Mutator) {
        if !self.faults.flush_after_unpin {
            self.flush_gray(t);
        }
        t.state.swap(self.epoch.load(Acquire) << 1, SeqCst);
        self.log('M', "unpins".into());
        self.sc_fence();
        if self.flags.load(SeqCst) & STW != 0 && !self.faults.unpin_no_wakeup {
            self.notify_collector();
        }
        if self.faults.flush_after_unpin {
            self.flush_gray(t);
        }
    }

    fn pin_slow(&self, t: &Mutator) {
        if self.flags.load(SeqCst) & STW != 0 {
            self.wait_for_world(t);
        }
    }

    fn wait_for_world(&self, t: &Mutator) {
        loop {
            t.state.swap(self.epoch.load(Acquire) << 1, SeqCst);
            self.blocked.fetch_add(1, SeqCst);
            self.notify_collector();
            self.log('M', "waits for the world".into());
            self.park_until_restart();
            self.blocked.fetch_sub(1, SeqCst);
            t.state.swap(self.epoch.load(Acquire) << 1 | 1, SeqCst);
            self.sc_fence();
            if self.flags.load(SeqCst) & STW == 0 {
                return;
            }
        }
    }

    /// `park_until_restart`: list this thread, park until `restarts`
    /// changes, then pass the relay on.
    fn park_until_restart(&self) {
        let next = {
            let mut p = self.park.lock().unwrap();
            if self.flags.load(SeqCst) & STW == 0 {
                return;
            }
            let stop = p.restarts;
            let me = thread::current();
            p.waiting.push(me.clone());
            while p.restarts == stop {
                drop(p);
                thread::park();
                p = self.park.lock().unwrap();
            }
            p.relay.retain(|t| t.id() != me.id());
            if self.faults.no_relay {
                None
            } else {
                p.relay.pop()
            }
        };
        if let Some(t) = next {
            self.log('M', "passes the relay on".into());
            t.unpark();
        }
    }

    fn notify_collector(&self) {
        if let Some(t) = &*self.waiter.lock().unwrap() {
            t.unpark();
        }
    }

    /// `push_gray` (the 256-entry early publication is never reached here).
    fn push_gray(&self, t: &Mutator, o: usize) {
        let b = t.gray.load(Relaxed);
        t.gray.store(b | 1 << o, Relaxed);
    }

    /// `flush_gray` + `publish_gray`.
    fn flush_gray(&self, t: &Mutator) {
        if t.gray.load(Relaxed) != 0 {
            let b = t.gray.load(Relaxed);
            self.gray.fetch_or(b, SeqCst);
            t.gray.store(0, Relaxed);
            self.log('M', format!("publishes grey {}", self.set_names(b)));
        }
    }

    // ---- collector.rs: marking and the write barrier ----------------------

    /// `set_mark`: whether this call set the bit.
    fn set_mark(&self, o: usize) -> bool {
        let bit = 1u64 << o;
        !(self.marks.load(Relaxed) & bit != 0 || self.marks.fetch_or(bit, Relaxed) & bit != 0)
    }

    /// `thread::marking`.
    fn marking(&self) -> bool {
        self.flags.load(Relaxed) & MARKING != 0
    }

    /// `shade`: whoever sets the bit queues the object and marks its thread
    /// dirty.
    fn shade(&self, t: &Mutator, v: Ref) {
        if v != 0 && self.set_mark(v - 1) {
            self.push_gray(t, v - 1);
            t.dirty.store(true, SeqCst);
            self.log('M', format!("shades {} (dirty)", self.name(v)));
        }
    }

    // ---- member.rs and root.rs: the mutator's heap operations -------------

    /// `Member::load`.
    fn load(&self, obj: usize, slot: usize) -> Ref {
        let v = self.edges[obj][slot].load(Acquire);
        self.log(
            'M',
            format!("loads {}.{slot} -> {}", self.names[obj], self.name(v)),
        );
        v
    }

    /// `Member::store` with `write_barrier`.
    fn store(&self, t: &Mutator, obj: usize, slot: usize, new: Ref) {
        let old = self.edges[obj][slot].load(Relaxed);
        let marking = self.marking();
        if marking {
            if !self.faults.no_deletion {
                self.shade(t, old);
            }
            if !self.faults.no_insertion {
                self.shade(t, new);
            }
        }
        self.log(
            'M',
            format!(
                "barrier of {}.{slot} := {} reads marking = {marking}",
                self.names[obj],
                self.name(new)
            ),
        );
        self.edges[obj][slot].store(new, Release);
        self.log(
            'M',
            format!(
                "stores {}.{slot} := {} (was {})",
                self.names[obj],
                self.name(new),
                self.name(old)
            ),
        );
    }

    /// `alloc_dyn`: the object is initialised with the edges it is born
    /// with (published later by the Release store that makes it reachable),
    /// then, if `FLAGS` (Relaxed) has `BLACK`, marked without being queued
    /// (`mark_new`) and its born edges shaded as if stored (INV-BLACK);
    /// else it is white.
    fn alloc(&self, t: &Mutator, o: usize, born: &[Ref]) -> Ref {
        for (slot, &v) in born.iter().enumerate() {
            self.edges[o][slot].store(v, Relaxed);
        }
        self.allocated.fetch_or(1 << o, Relaxed);
        let black = self.flags.load(Relaxed) & BLACK != 0;
        let born_names: Vec<&str> = born.iter().map(|&v| self.name(v)).collect();
        self.log(
            'M',
            format!(
                "allocates {} ({}), born with [{}]",
                self.names[o],
                if black { "black" } else { "white" },
                born_names.join(", ")
            ),
        );
        if black {
            self.set_mark(o);
            for &v in born {
                self.shade(t, v);
            }
        }
        r(o)
    }

    /// `root::create` (under the caller's pin: the nested pin is free).
    fn root_create(&self, t: &Mutator, slot: usize, v: Ref) {
        self.roots[slot].store(v, Release);
        let marking = self.marking();
        if marking && !self.faults.no_root_create_barrier {
            self.shade(t, v);
        }
        self.log(
            'M',
            format!(
                "roots {} in slot {slot} (marking = {marking})",
                self.name(v)
            ),
        );
    }

    /// `root::release` (under the caller's pin).
    fn root_release(&self, t: &Mutator, slot: usize) {
        let old = self.roots[slot].swap(0, AcqRel);
        let marking = self.marking();
        if marking && !self.faults.no_root_drop_barrier {
            self.shade(t, old);
        }
        self.log(
            'M',
            format!(
                "drops the root of {} in slot {slot} (marking = {marking})",
                self.name(old)
            ),
        );
    }

    // ---- the collector ----------------------------------------------------

    fn snapshot(&self) -> Vec<Arc<Mutator>> {
        let threads = self.threads.lock().unwrap().clone();
        self.log(
            'C',
            format!("snapshots THREADS: {} thread(s)", threads.len()),
        );
        threads
    }

    /// `thread::handshake`.
    fn handshake(&self, threads: &[Arc<Mutator>]) {
        let e = self.epoch.fetch_add(1, SeqCst) + 1;
        self.flags.fetch_or(WAITING, SeqCst);
        self.sc_fence();
        while !threads.iter().all(|t| {
            let s = t.state.load(SeqCst);
            s & 1 == 0 || s >> 1 >= e
        }) {
            thread::yield_now();
        }
        self.flags.fetch_and(!WAITING, SeqCst);
        self.log('C', format!("handshake to epoch {e} complete"));
    }

    /// `thread::stop_the_world`.
    fn stop_the_world(&self, threads: &[Arc<Mutator>]) {
        self.flags.fetch_or(STW, SeqCst);
        self.sc_fence();
        while threads.iter().any(|t| t.state.load(SeqCst) & 1 != 0) {
            thread::park();
        }
        self.log('C', "world stopped".into());
    }

    /// `thread::start_the_world`: the restart; its end, `let_blocked_run`,
    /// is the method below, called once `THREADS` is released (as the real
    /// one does), without its time bound: here it waits until every blocked
    /// thread has run, which is what the relay must guarantee.
    fn start_the_world(&self) {
        let first = {
            // `try_lock` and yield, not `lock`: a mutator may `unpark` the
            // collector meanwhile, and loom makes a thread blocked on a
            // mutex runnable when it is unparked (then panics: "expected
            // to be able to acquire lock"); std keeps the token instead.
            let mut p = loop {
                match self.park.try_lock() {
                    Ok(p) => break p,
                    Err(_) => thread::yield_now(),
                }
            };
            self.flags.fetch_and(!STW, SeqCst);
            p.restarts += 1;
            let mut stopped = std::mem::take(&mut p.waiting);
            let first = stopped.pop();
            p.relay.append(&mut stopped);
            first
        };
        self.log('C', "world restarted".into());
        if let Some(t) = first {
            t.unpark();
        }
    }

    fn let_blocked_run(&self) {
        while self.blocked.load(SeqCst) != 0 {
            thread::yield_now();
        }
        self.log('C', "every blocked thread has run".into());
    }

    /// `FLAGS.fetch_or(BLACK, SeqCst)`.
    fn set_black(&self) {
        self.flags.fetch_or(BLACK, SeqCst);
        self.log('C', "sets BLACK".into());
    }

    /// `collector::mark`.
    fn mark(&self, stack: &mut Vec<usize>, o: usize) {
        if self.set_mark(o) {
            stack.push(o);
        }
    }

    /// `root::mark_roots`.
    fn mark_roots(&self, stack: &mut Vec<usize>) {
        for (i, s) in self.roots.iter().enumerate() {
            let v = s.load(Acquire);
            self.log('C', format!("reads root slot {i} -> {}", self.name(v)));
            if v != 0 {
                self.mark(stack, v - 1);
            }
        }
    }

    /// `collector::drain`, with the same prefetch FIFO (it decides the scan
    /// order).
    fn drain(&self, stack: &mut Vec<usize>) {
        const PREFETCH: usize = 8;
        let mut ring = [0usize; PREFETCH];
        let (mut head, mut count) = (0usize, 0usize);
        loop {
            while count < PREFETCH {
                let Some(v) = stack.pop() else { break };
                ring[(head + count) % PREFETCH] = v;
                count += 1;
            }
            if count == 0 {
                return;
            }
            let v = ring[head];
            head = (head + 1) % PREFETCH;
            count -= 1;
            // `Tracer::edge` in mark mode.
            let mut seen = Vec::new();
            for slot in &self.edges[v] {
                let e = slot.load(Acquire);
                seen.push(self.name(e));
                if e != 0 {
                    self.mark(stack, e - 1);
                }
            }
            self.log(
                'C',
                format!("scans {}: edges {}", self.names[v], seen.join(", ")),
            );
        }
    }

    /// `collector::drain_all`.
    fn drain_all(&self, stack: &mut Vec<usize>) {
        loop {
            self.drain(stack);
            if self.gray.load(SeqCst) == 0 {
                return;
            }
            let g = self.gray.swap(0, SeqCst);
            stack.extend(bits(g));
            self.log('C', format!("takes published grey {}", self.set_names(g)));
        }
    }

    /// Termination by handshake rounds: repeats until a round in which no
    /// thread shaded anything (no `dirty` flag) and nothing was published
    /// (`GRAY` empty).
    fn terminate(&self, stack: &mut Vec<usize>) {
        loop {
            let threads = self.snapshot();
            for t in &threads {
                t.dirty.store(false, SeqCst);
            }
            self.log('C', "clears the dirty flags".into());
            self.handshake(&threads);
            let gray_empty = self.gray.load(SeqCst) == 0;
            let dirty = threads.iter().any(|t| t.dirty.load(SeqCst));
            let clean =
                (gray_empty || self.faults.ignore_gray) && (!dirty || self.faults.ignore_dirty);
            self.log(
                'C',
                format!(
                    "round: GRAY empty = {gray_empty}, dirty = {dirty}: {}",
                    if clean {
                        "clean, terminates"
                    } else {
                        "drains again"
                    }
                ),
            );
            if clean {
                return;
            }
            self.drain_all(stack);
        }
    }

    /// Objects reachable from the root slots, read with `fetch_add(0)`
    /// (always the newest value in loom): the checker's view of the heap.
    fn reachable_now(&self) -> u64 {
        self.reachable(|a| a.fetch_add(0, Relaxed))
    }

    fn reachable(&self, read: impl Fn(&AtomicUsize) -> Ref) -> u64 {
        let mut seen = 0u64;
        let mut todo: Vec<usize> = self
            .roots
            .iter()
            .map(&read)
            .filter(|&v| v != 0)
            .map(|v| v - 1)
            .collect();
        while let Some(o) = todo.pop() {
            if seen & 1 << o != 0 {
                continue;
            }
            seen |= 1 << o;
            for slot in &self.edges[o] {
                let v = read(slot);
                if v != 0 {
                    todo.push(v - 1);
                }
            }
        }
        seen
    }

    /// The world is stopped: takes every thread's grey buffer (`take_gray`)
    /// and `GRAY`, and returns what is left to scan. Without a weak cell in
    /// the setup it checks that nothing is: termination must be exact, the
    /// stop drains nothing.
    fn take_grey_left(&self, stack: &[usize], threads: &[Arc<Mutator>]) -> u64 {
        let mut left = stack.iter().fold(0u64, |s, &o| s | 1 << o);
        for t in threads {
            // `take_gray`: the owner is unpinned.
            let b = t.gray.load(Relaxed);
            t.gray.store(0, Relaxed);
            self.log(
                'C',
                format!("takes the thread's grey buffer {}", self.set_names(b)),
            );
            left |= b;
        }
        left |= self.gray.swap(0, SeqCst);
        assert!(
            left == 0 || self.retry_allowed,
            "SAFETY VIOLATION: grey work left at the stop: {} (marked: {}); interleaving:\n  {}",
            self.set_names(left),
            self.set_names(self.marks.load(Relaxed)),
            self.interleaving()
        );
        left
    }

    /// `specials::at_stop`: clears the weak cell if its target is unmarked.
    fn clear_weak(&self) {
        let v = self.weak.load(Relaxed);
        if v != 0 && self.marks.load(Relaxed) & 1 << (v - 1) == 0 {
            self.weak.store(0, Release);
            self.log('C', format!("clears the weak pointer to {}", self.name(v)));
        }
    }

    /// `Weak::upgrade`: pin, read the cell, root what it names (root
    /// creation shades while marking: the keep-alive barrier), unpin.
    fn upgrade(&self, t: &Mutator, slot: usize) -> Ref {
        self.pin(t);
        let v = self.weak.load(Acquire);
        self.log('M', format!("upgrade reads {}", self.name(v)));
        if v != 0 {
            self.root_create(t, slot, v);
        }
        self.unpin(t);
        v
    }

    /// The sweep, with the check: every reachable object is marked. Returns
    /// the freed objects.
    fn sweep(&self) -> u64 {
        let marks = self.marks.load(Relaxed);
        let lost = self.reachable_now() & !marks;
        assert!(
            lost == 0,
            "SAFETY VIOLATION: reachable objects {} are unmarked at the sweep (marked: {}); \
             interleaving:\n  {}",
            self.set_names(lost),
            self.set_names(marks),
            self.interleaving()
        );
        let allocated = self.allocated.load(Relaxed);
        let freed = allocated & !marks;
        self.allocated.store(allocated & marks, Relaxed);
        self.marks.store(0, Relaxed);
        freed
    }

    /// `collector::cycle`: returns the objects the sweep freed.
    fn cycle(&self, armed: bool) -> u64 {
        *self.waiter.lock().unwrap() = Some(thread::current());
        let f = self.faults;
        if !armed {
            // 1. Arm: set `MARKING`, snapshot the thread list, handshake.
            let mut threads = Vec::new();
            if f.snapshot_before_arm {
                threads = self.snapshot();
            }
            if f.black_before_marking {
                self.set_black();
            }
            self.flags.fetch_or(MARKING, SeqCst);
            self.log('C', "sets MARKING".into());
            if f.black_before_handshake {
                self.set_black();
            }
            if !f.snapshot_before_arm {
                threads = self.snapshot();
            }
            if !f.no_handshake {
                self.handshake(&threads);
            }
        }
        // Black allocation from now on.
        if !(f.black_before_marking || f.black_before_handshake) {
            self.set_black();
        }
        // 2-3. Roots and concurrent drain.
        let mut stack = Vec::new();
        self.mark_roots(&mut stack);
        self.drain_all(&mut stack);
        // 4. Terminate by handshake rounds.
        self.terminate(&mut stack);
        // 5. Stop the world (THREADS held): no marking work is left, unless
        // a weak upgrade shaded after termination: then restart, drain,
        // terminate again and stop again.
        loop {
            let threads = self.threads.lock().unwrap();
            self.stop_the_world(&threads);
            let left = self.take_grey_left(&stack, &threads);
            if left != 0 && !f.no_stop_retry {
                self.log('C', "grey work at the stop: restarts".into());
                self.start_the_world();
                drop(threads);
                self.let_blocked_run();
                stack.extend(bits(left));
                self.drain_all(&mut stack);
                self.terminate(&mut stack);
                continue;
            }
            self.clear_weak();
            self.flags.fetch_and(!(MARKING | BLACK), SeqCst);
            let freed = self.sweep();
            self.start_the_world();
            drop(threads);
            self.let_blocked_run();
            return freed;
        }
    }

    /// After the mutator is joined: nothing the sweep freed is reachable,
    /// and a weak cell that was not cleared names an object not freed.
    fn final_check(&self, freed: u64) {
        let w = self.weak.load(Acquire);
        assert!(
            w == 0 || freed & 1 << (w - 1) == 0,
            "SAFETY VIOLATION: the weak pointer names {}, which the sweep freed; interleaving:\n  {}",
            self.name(w),
            self.interleaving()
        );
        let reach = self.reachable(|a| a.load(Acquire));
        assert!(
            reach & freed == 0,
            "SAFETY VIOLATION: objects {} were freed by the sweep but are reachable after the \
             cycle; interleaving:\n  {}",
            self.set_names(reach & freed),
            self.interleaving()
        );
    }
}

type Script = fn(&World, &Arc<Mutator>);

/// Explores `model` with loom at preemption bound `bound` (unless
/// `LOOM_MAX_PREEMPTIONS` sets one), and reports how it went.
fn check(name: &str, bound: usize, model: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    let report = Report {
        name: name.to_owned(),
        bound: b.preemption_bound,
        start: std::time::Instant::now(),
        runs: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    };
    let runs = report.runs.clone();
    b.check(move || {
        runs.fetch_add(1, Relaxed);
        model();
    });
}

/// Runs one model: the collector thread runs a cycle while a mutator (loom's
/// main thread) runs `script`.
fn run(name: &str, bound: usize, setup: &'static Setup, faults: Faults, script: Script) {
    check(name, bound, move || {
        // Nothing loom owns is dropped if the script unwinds (a deadlock
        // that loom reports while the collector is blocked): dropping it
        // during that unwind runs loom operations, which aborts the process.
        let w = ManuallyDrop::new(Arc::new(World::new(setup, faults)));
        let t = ManuallyDrop::new(Arc::new(Mutator {
            state: AtomicU64::new(if setup.armed { 1 << 1 } else { 0 }),
            gray: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        }));
        if setup.registered {
            w.register(&t);
        }
        // The collector runs on a spawned thread and the script on loom's
        // main thread: the collector is unparked, and loom's `join` must
        // not run on a thread that was (tokio-rs/loom#249).
        let w2 = Arc::clone(&w);
        let h = ManuallyDrop::new(thread::spawn(move || w2.cycle(setup.armed)));
        script(&w, &t);
        let freed = ManuallyDrop::into_inner(h).join().unwrap();
        w.final_check(freed);
        drop(ManuallyDrop::into_inner(t));
        drop(ManuallyDrop::into_inner(w));
    });
}

/// Prints a model's bound, executions and time when it ends (also when it
/// fails: `--nocapture` shows how soon loom found a violation).
struct Report {
    name: String,
    bound: Option<usize>,
    start: std::time::Instant,
    runs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Report {
    fn drop(&mut self) {
        eprintln!(
            "{}: preemption bound {:?}, {} executions{}, {:.1?}",
            self.name,
            self.bound,
            self.runs.load(Relaxed),
            if std::thread::panicking() {
                " (failed)"
            } else {
                ""
            },
            self.start.elapsed()
        );
    }
}

// ---- Model 1: the arm handshake against a racing edge store ---------------

const A: usize = 0;
const B: usize = 1;

/// A and B rooted; A.0 -> X.
static ARM: Setup = Setup {
    names: &["A", "B", "X"],
    allocated: &[0, 1, 2],
    edges: &[(A, 0, 2)],
    roots: &[Some(A), Some(B)],
    armed: false,
    registered: true,
    weak: None,
};

/// Preemption bound of model 1 (and model 4).
const ARM_BOUND: usize = 4;

/// Move X from A to B in one pin: load, delete, insert.
fn move_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.store(t, A, 0, 0);
    w.store(t, B, 0, x);
    w.unpin(t);
}

/// The handshake waits out a pinned thread whose store read "not marking".
#[test]
fn arm_handshake_vs_store() {
    run("arm", ARM_BOUND, &ARM, Faults::default(), move_script);
}

/// Negative control: no arm handshake.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn arm_without_handshake_fails() {
    let f = Faults {
        no_handshake: true,
        ..Faults::default()
    };
    run("arm/no handshake", ARM_BOUND, &ARM, f, move_script);
}

/// Negative control: pin publishes `state` and reads `FLAGS` with no
/// store->load order, so the collector can see the thread unpinned while
/// the thread sees no `MARKING`. The bug needs stale reads, not a schedule:
/// one preemption finds it quickly.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn arm_pin_without_store_load_order_fails() {
    let f = Faults {
        pin_no_fence: true,
        ..Faults::default()
    };
    run("arm/pin without fence", 1, &ARM, f, move_script);
}

/// Finding: the insertion half alone keeps the arm safe for this script
/// (X is stored into B, so the insertion half shades it).
#[test]
fn arm_deletion_half_redundant_for_a_move() {
    let f = Faults {
        no_deletion: true,
        ..Faults::default()
    };
    run("arm/no deletion half", ARM_BOUND, &ARM, f, move_script);
}

/// Finding: the deletion half alone keeps the arm safe for this script
/// (X is shaded when A's edge to it is deleted).
#[test]
fn arm_insertion_half_redundant_for_a_move() {
    let f = Faults {
        no_insertion: true,
        ..Faults::default()
    };
    run("arm/no insertion half", ARM_BOUND, &ARM, f, move_script);
}

/// Liveness control.
#[test]
#[should_panic(expected = "deadlock")]
fn arm_unpin_without_wakeup_deadlocks() {
    let f = Faults {
        unpin_no_wakeup: true,
        ..Faults::default()
    };
    run("arm/unpin without wake-up", ARM_BOUND, &ARM, f, move_script);
}

/// Negative control: no barrier at all.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn arm_without_barrier_fails() {
    let f = Faults {
        no_deletion: true,
        no_insertion: true,
        ..Faults::default()
    };
    run("arm/no barrier", ARM_BOUND, &ARM, f, move_script);
}

// ---- Model 1b: black allocation against the arm ----------------------------

const N1: usize = 3;

/// A and B rooted; A.0 -> X; N a free slot.
static ARM_ALLOC: Setup = Setup {
    names: &["A", "B", "X", "N"],
    allocated: &[0, 1, 2],
    edges: &[(A, 0, 2)],
    roots: &[Some(A), Some(B)],
    armed: false,
    registered: true,
    weak: None,
};

const ALLOC_BOUND: usize = 3;

/// Take X out of A, allocate N, store X into N, N into B.
fn alloc_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.store(t, A, 0, 0);
    let n = w.alloc(t, N1, &[]);
    w.store(t, N1, 0, x);
    w.store(t, B, 0, n);
    w.unpin(t);
}

#[test]
fn arm_black_allocation_vs_store() {
    run(
        "arm/alloc",
        ALLOC_BOUND,
        &ARM_ALLOC,
        Faults::default(),
        alloc_script,
    );
}

/// Finding: setting `BLACK` before the arm handshake is safe here, because
/// `BLACK` and `MARKING` are bits of one word: a thread whose allocation
/// read `BLACK` reads `MARKING` in every later barrier (coherence), so it
/// never stores into a black object without shading. The real code sets
/// `BLACK` after the handshake anyway (see the module comment).
#[test]
fn arm_black_before_handshake_is_safe_one_flags_word() {
    let f = Faults {
        black_before_handshake: true,
        ..Faults::default()
    };
    run(
        "arm/alloc, BLACK before the handshake",
        ALLOC_BOUND,
        &ARM_ALLOC,
        f,
        alloc_script,
    );
}

/// Negative control: `BLACK` before `MARKING`: a thread allocates N black,
/// then stores X into it with the barrier off; nothing scans N.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn arm_black_before_marking_fails() {
    let f = Faults {
        black_before_marking: true,
        ..Faults::default()
    };
    run(
        "arm/alloc, BLACK before MARKING",
        ALLOC_BOUND,
        &ARM_ALLOC,
        f,
        alloc_script,
    );
}

// ---- Model 2: termination with a store racing the rounds ------------------

const X2: usize = 2;
const N2: usize = 4;

/// A and B rooted; A.0 -> X -> Y; N is a free slot. Starts armed.
static TERM: Setup = Setup {
    names: &["A", "B", "X", "Y", "N"],
    allocated: &[0, 1, 2, 3],
    edges: &[(A, 0, X2), (X2, 0, 3)],
    roots: &[Some(A), Some(B)],
    armed: true,
    registered: true,
    weak: None,
};

/// Preemption bound of model 2.
const TERM_BOUND: usize = 3;

/// Move X from A into B (insert, then delete), allocate N and store it into B.
fn term_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.store(t, B, 0, x);
    w.store(t, A, 0, 0);
    let n = w.alloc(t, N2, &[]);
    w.store(t, B, 1, n);
    w.unpin(t);
}

/// Hold X in a local: take it out of A, then allocate N born with an edge
/// to X and store N into B.
fn hold_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.store(t, A, 0, 0);
    let n = w.alloc(t, N2, &[x]);
    w.store(t, B, 0, n);
    w.unpin(t);
}

#[test]
fn termination_vs_store() {
    run(
        "termination",
        TERM_BOUND,
        &TERM,
        Faults::default(),
        term_script,
    );
}

#[test]
fn termination_vs_held_local() {
    run(
        "termination/hold",
        TERM_BOUND,
        &TERM,
        Faults::default(),
        hold_script,
    );
}

/// Finding: with one mutator and the collector as the only drainer, the
/// `dirty` flags are redundant: see the module comment.
#[test]
fn termination_dirty_redundant_with_one_mutator() {
    let f = Faults {
        ignore_dirty: true,
        ..Faults::default()
    };
    run(
        "termination/ignore dirty",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

/// Negative control: a round that ignores `GRAY` ends while the grey
/// buffer the handshake made the mutator publish is unscanned.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_ignore_gray_fails() {
    let f = Faults {
        ignore_gray: true,
        ..Faults::default()
    };
    run("termination/ignore GRAY", TERM_BOUND, &TERM, f, term_script);
}

/// Finding: with the stop at the end (every thread unpinned, no local
/// survives) the insertion half alone is enough for this script.
#[test]
fn termination_deletion_half_redundant_for_a_move() {
    let f = Faults {
        no_deletion: true,
        ..Faults::default()
    };
    run(
        "termination/no deletion half",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

/// Negative control: the grey buffer is published after the unpin swap, so
/// the handshake can pass the thread before its shades are visible.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_late_flush_fails() {
    let f = Faults {
        flush_after_unpin: true,
        ..Faults::default()
    };
    run(
        "termination/flush after unpin",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

/// Negative control: no insertion half: an object stored into an already
/// scanned one is never shaded.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_without_insertion_half_fails() {
    let f = Faults {
        no_insertion: true,
        ..Faults::default()
    };
    run(
        "termination/no insertion half",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

// ---- Model 3: root creation and drop racing the root scan -----------------

const X3: usize = 1;
const N3: usize = 2;

/// Preemption bound of model 3.
const ROOTS_BOUND: usize = 3;

/// A rooted (slot 0), A.0 -> X; root slots 1 and 2 free; N a free slot.
static ROOTS_CREATE: Setup = Setup {
    names: &["A", "X", "N"],
    allocated: &[A, X3],
    edges: &[(A, 0, X3)],
    roots: &[Some(A), None, None],
    armed: false,
    registered: true,
    weak: None,
};

/// Root X (loaded from A), delete A's edge; allocate N and root it.
fn create_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.root_create(t, 1, x);
    w.store(t, A, 0, 0);
    let n = w.alloc(t, N3, &[]);
    w.root_create(t, 2, n);
    w.unpin(t);
}

#[test]
fn roots_create_vs_root_scan() {
    run(
        "roots/create",
        ROOTS_BOUND,
        &ROOTS_CREATE,
        Faults::default(),
        create_script,
    );
}

/// Negative control: root creation does not shade.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn roots_create_without_barrier_fails() {
    let f = Faults {
        no_root_create_barrier: true,
        ..Faults::default()
    };
    run(
        "roots/create, no barrier",
        ROOTS_BOUND,
        &ROOTS_CREATE,
        f,
        create_script,
    );
}

/// A rooted (slot 0), A.0 empty; X rooted only (slot 1).
static ROOTS_DROP: Setup = Setup {
    names: &["A", "X"],
    allocated: &[A, X3],
    edges: &[],
    roots: &[Some(A), Some(X3)],
    armed: false,
    registered: true,
    weak: None,
};

/// Store X (from its root) into A, unpin, then drop the root (`Root::drop`
/// pins on its own).
fn drop_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    w.store(t, A, 0, r(X3));
    w.unpin(t);
    w.pin(t);
    w.root_release(t, 1);
    w.unpin(t);
}

#[test]
fn roots_drop_vs_root_scan() {
    run(
        "roots/drop",
        ROOTS_BOUND,
        &ROOTS_DROP,
        Faults::default(),
        drop_script,
    );
}

/// Finding: moving an object from a root into the heap needs no barrier,
/// because every root slot is read before any object is scanned.
#[test]
fn roots_drop_to_heap_needs_no_barrier_roots_are_read_first() {
    let f = Faults {
        no_root_drop_barrier: true,
        no_insertion: true,
        no_deletion: true,
        ..Faults::default()
    };
    run(
        "roots/drop, no barriers",
        ROOTS_BOUND,
        &ROOTS_DROP,
        f,
        drop_script,
    );
}

/// X rooted in slot 1 only; slot 0 free.
static ROOTS_MOVE: Setup = Setup {
    names: &["X"],
    allocated: &[0],
    edges: &[],
    roots: &[None, Some(0)],
    armed: false,
    registered: true,
    weak: None,
};

/// `Root::clone` (into slot 0, which the scan reads first), then drop the
/// original (slot 1); each pins on its own.
fn move_root_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    w.root_create(t, 0, r(0));
    w.unpin(t);
    w.pin(t);
    w.root_release(t, 1);
    w.unpin(t);
}

#[test]
fn roots_clone_then_drop_vs_root_scan() {
    run(
        "roots/clone then drop",
        ROOTS_BOUND,
        &ROOTS_MOVE,
        Faults::default(),
        move_root_script,
    );
}

/// Finding: either root barrier alone covers a move between roots.
#[test]
fn roots_drop_barrier_redundant_with_create_barrier() {
    let f = Faults {
        no_root_drop_barrier: true,
        ..Faults::default()
    };
    run(
        "roots/clone then drop, no drop barrier",
        ROOTS_BOUND,
        &ROOTS_MOVE,
        f,
        move_root_script,
    );
}

/// Negative control: neither root barrier.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn roots_move_without_root_barriers_fails() {
    let f = Faults {
        no_root_create_barrier: true,
        no_root_drop_barrier: true,
        ..Faults::default()
    };
    run(
        "roots/clone then drop, no root barriers",
        ROOTS_BOUND,
        &ROOTS_MOVE,
        f,
        move_root_script,
    );
}

// ---- Model 4: a thread registering between the snapshot and the arm -------

/// As model 1, but the mutator registers in its script (its first pin).
static REGISTER: Setup = Setup {
    names: &["A", "B", "X"],
    allocated: &[0, 1, 2],
    edges: &[(A, 0, 2)],
    roots: &[Some(A), Some(B)],
    armed: false,
    registered: false,
    weak: None,
};

fn register_move_script(w: &World, t: &Arc<Mutator>) {
    w.register(t);
    move_script(w, t);
}

#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn registration_snapshot_before_arm_loses_an_object() {
    let f = Faults {
        snapshot_before_arm: true,
        ..Faults::default()
    };
    run(
        "registration/snapshot before arm",
        ARM_BOUND,
        &REGISTER,
        f,
        register_move_script,
    );
}

#[test]
fn registration_snapshot_after_arm_is_safe() {
    run(
        "registration/snapshot after arm",
        ARM_BOUND,
        &REGISTER,
        Faults::default(),
        register_move_script,
    );
}

// ---- Model 5: a weak upgrade racing weak clearing ---------------------------

/// X is reachable only through a weak cell; X.0 -> Y. Root slot 0 is free.
static WEAK: Setup = Setup {
    names: &["X", "Y"],
    allocated: &[0, 1],
    edges: &[(0, 0, 1)],
    roots: &[None],
    armed: false,
    registered: true,
    weak: Some(0),
};

/// Preemption bound of model 5.
const WEAK_BOUND: usize = 4;

/// Upgrade the weak pointer into root slot 0.
fn upgrade_script(w: &World, t: &Arc<Mutator>) {
    w.upgrade(t, 0);
}

/// An upgrade either fails (the cell was cleared) or keeps X and Y alive:
/// the upgrade's root creation shades X, and a stop that finds that grey
/// work restarts instead of clearing and sweeping.
#[test]
fn weak_upgrade_vs_clearing() {
    run(
        "weak/upgrade",
        WEAK_BOUND,
        &WEAK,
        Faults::default(),
        upgrade_script,
    );
}

/// Negative control: no keep-alive barrier (root creation does not shade):
/// an upgrade after the root scan roots X, which the mark never reaches.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn weak_upgrade_without_keep_alive_fails() {
    let f = Faults {
        no_root_create_barrier: true,
        ..Faults::default()
    };
    run("weak/no keep-alive", WEAK_BOUND, &WEAK, f, upgrade_script);
}

/// Negative control: the stop ignores the grey X an upgrade shaded after
/// termination: X is marked but never scanned, so Y is swept while
/// reachable.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn weak_stop_without_retry_fails() {
    let f = Faults {
        no_stop_retry: true,
        ..Faults::default()
    };
    run(
        "weak/no retry at the stop",
        WEAK_BOUND,
        &WEAK,
        f,
        upgrade_script,
    );
}

// ---- Model 6: the restart relay ---------------------------------------------

/// Preemption bound of model 6.
const RELAY_BOUND: usize = 3;

/// Model 6: two mutators pin and unpin while the collector stops and
/// restarts the world twice, then waits until every thread the stop
/// blocked has run (`let_blocked_run`, without its time bound). Both
/// mutators may be blocked by one stop, so one of them is woken by the
/// other (the relay), possibly after a second stop has begun. Loom fails
/// the model if any thread stays parked.
fn run_relay(name: &str, faults: Faults) {
    check(name, RELAY_BOUND, move || {
        let w = ManuallyDrop::new(Arc::new(World::new(&ARM, faults)));
        // Loom's main thread only joins: it is never unparked
        // (tokio-rs/loom#249), and nothing loom owns is dropped if a
        // deadlock unwinds it.
        let spawn = |f: Box<dyn FnOnce(&World) + Send>| {
            let w = Arc::clone(&w);
            ManuallyDrop::new(thread::spawn(move || f(&w)))
        };
        let collector = spawn(Box::new(|w: &World| {
            *w.waiter.lock().unwrap() = Some(thread::current());
            for _ in 0..2 {
                let threads = w.threads.lock().unwrap();
                w.stop_the_world(&threads);
                w.start_the_world();
                drop(threads);
                w.let_blocked_run();
            }
        }));
        let mutators: Vec<_> = (0..2)
            .map(|_| {
                let t = Arc::new(Mutator {
                    state: AtomicU64::new(0),
                    gray: AtomicU64::new(0),
                    dirty: AtomicBool::new(false),
                });
                w.register(&t);
                spawn(Box::new(move |w: &World| {
                    w.pin(&t);
                    w.unpin(&t);
                }))
            })
            .collect();
        for m in mutators {
            ManuallyDrop::into_inner(m).join().unwrap();
        }
        ManuallyDrop::into_inner(collector).join().unwrap();
        assert_eq!(w.blocked.load(SeqCst), 0);
        drop(ManuallyDrop::into_inner(w));
    });
}

/// Every thread a stop blocked runs again, whoever wakes it.
#[test]
fn restart_relay_wakes_every_blocked_thread() {
    run_relay("restart relay", Faults::default());
}

/// Liveness control: without passing the relay on, a second thread blocked
/// by the same stop is never woken, and the collector waits for it forever
/// (loom stops the spin at its branch limit).
#[test]
#[should_panic(expected = "maximum number of branches")]
fn restart_without_relay_leaves_a_thread_parked() {
    let f = Faults {
        no_relay: true,
        ..Faults::default()
    };
    run_relay("restart/no relay", f);
}
