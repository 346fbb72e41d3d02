//! Loom models of the concurrent-mark protocol (DESIGN.md section 4,
//! core-api.md "The collector as built").
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release -p tricolor --test loom_protocol`
//! (the separate target directory keeps the flag change from rebuilding the
//! normal one). Without `--cfg loom` this file is empty. Each model states
//! its preemption bound; `LOOM_MAX_PREEMPTIONS=N` overrides it. A model
//! that fails panics with the interleaving it found: each thread's protocol
//! steps in loom's execution order (a load may still return an older value
//! than the last store listed before it, as the memory model allows when no
//! happens-before edge orders the two).
//!
//! # What is modelled
//!
//! The models do not call the crate: they re-implement, with loom's atomics,
//! the parts of the protocol that threads share, line by line and with the
//! real code's orderings:
//! - `thread.rs`: each mutator's `state = epoch << 1 | pinned` word,
//!   `FLAGS` (`STW | WAITING | MARKING`) and `EPOCH`; `pin_outer` (Acquire
//!   load of `EPOCH`, SeqCst swap of `state`, SeqCst load of `FLAGS`, the
//!   slow path), `unpin_outer` (flush the grey buffer, SeqCst swap, SeqCst
//!   load of `FLAGS`, wake the collector), `wait_for_world`, `handshake`
//!   (bump `EPOCH`, set `WAITING`, wait until every thread of the snapshot is
//!   unpinned or pinned at the new epoch), `stop_the_world` and
//!   `start_the_world`. `PARK`, `COLLECTOR_WAIT` and `RESUME` are a loom
//!   `Mutex` and two `Condvar`s, as in the real code (no spin-waiting), so a
//!   lost wake-up shows up as a deadlock that loom reports.
//! - `collector.rs`: `set_mark` (a Relaxed load, then a Relaxed `fetch_or`:
//!   whoever sets the bit queues the object), `shade`, the write barrier (a
//!   Relaxed load of `FLAGS`; shade the old and the new target), `drain` with
//!   its 8-entry FIFO (it decides the scan order, and so which interleavings
//!   exist), `drain_all` (drain, then take the published grey buffers under
//!   the `GRAY` mutex, until both are empty) and `cycle` (snapshot `THREADS`,
//!   set `MARKING`, handshake, mark roots, drain, stop the world holding
//!   `THREADS`, take every thread's grey buffer, drain, disarm, sweep,
//!   restart).
//! - `member.rs`: `Member::load` (Acquire) and `Member::store` (Relaxed load
//!   of the old value, barrier, Release store).
//! - `root.rs`: root creation (Release store of the slot, then shade the
//!   target if marking) and root drop (AcqRel swap to null, then shade the
//!   old target if marking); `mark_roots` (Acquire loads of every slot, all
//!   before the first object is scanned).
//!
//! The heap is a handful of named objects, each with two edge slots
//! (`AtomicUsize`, holding `object + 1`, 0 for null); mark bits and the
//! allocated set are bits of an `AtomicU64`; allocation is white, as in the
//! cycle as built. A thread's grey buffer (a `Vec` in an `UnsafeCell` in the
//! real code, owned by the thread while it is pinned and by the collector
//! while the world is stopped) is an `AtomicU64` bit set accessed with
//! separate Relaxed loads and stores, so the model, like the real code, sees
//! its contents only through the happens-before edges the protocol
//! provides. One collector (the loom main thread) runs one cycle; one
//! mutator thread runs a short script, starting at any point of the cycle.
//!
//! # What is checked
//!
//! At the sweep (world stopped, so no thread is pinned and none holds an
//! object in a local): every object reachable from the root slots through
//! edges is marked, i.e. the sweep frees no reachable object (INV-SWEEP).
//! The checker reads roots and edges with `fetch_add(0)`, which in loom
//! always returns the newest value (checker only, not part of the protocol).
//! After the mutator is joined: no object the sweep freed is reachable in
//! the final heap (this also catches a mutator that kept a freed object in
//! a local across a broken stop and stored it afterwards). A violation
//! panics with a message starting `SAFETY VIOLATION`. Loom also fails a
//! model that deadlocks, so every passing model also shows that no wake-up
//! is lost for its script.
//!
//! # The models
//!
//! 1. `arm_*` (bound 4): the arm handshake against a racing edge store. The
//!    collector runs a whole cycle from the unarmed state; the mutator pins
//!    (before the arm, during the handshake, after it, or during the stop),
//!    loads X from A's edge, deletes that edge, stores X into B, unpins. A
//!    and B are rooted. The dangerous case is a store whose barrier read
//!    "not marking" and whose slot write lands after the collector scanned
//!    B: the handshake must wait for it.
//! 2. `termination_*` (bound 5): a store racing the final round. The cycle
//!    starts armed (handshake done); A -> X -> Y, A and B rooted. The mutator
//!    moves X from A (maybe not yet scanned) to B (maybe already scanned),
//!    allocates N (white) and stores it into B, while the collector drains,
//!    stops the world and drains what the stop collected. Y is reachable
//!    only through X, so X must be shaded *and* scanned: its grey-buffer
//!    entry must reach the final drain.
//! 3. `roots_*` (bound 3): root creation and drop racing the root scan.
//!    Create: the mutator loads X (reachable only through A's edge), roots
//!    it, deletes the edge, allocates N and roots it. Drop: X is rooted only;
//!    the mutator stores it into A's edge, unpins, then drops the root (the
//!    drop pins on its own, as `Root::drop` does). Clone then drop: X moves
//!    from one root slot to another (`Root::clone`, then drop the original).
//! 4. `registration_*` (bound 4): as model 1, but the mutator registers (its
//!    first pin) while the cycle starts. `cycle` used to snapshot `THREADS`
//!    *before* setting `MARKING`, so a thread that registered and pinned in
//!    between read no `MARKING`, and the arm handshake did not wait for it.
//!    Loom found the lost object (`registration_snapshot_before_arm_loses_an_object`,
//!    kept as a negative control); one interleaving, sequentially consistent:
//!    C snapshots `THREADS` (empty); M registers, pins, reads `FLAGS` = 0,
//!    loads X from A, deletes A's edge (barrier off), runs the barrier of
//!    `B := X` (off) and is preempted before the slot write; C sets
//!    `MARKING`, the handshake has no thread to wait for, C marks A and B
//!    and scans B (empty); M writes `B := X`; C scans A (empty); M unpins; C
//!    stops the world and sweeps X, which B points to. The real code now
//!    takes the snapshot after setting `MARKING`, which closes the window
//!    (`registration_snapshot_after_arm_is_safe`): a thread that registers
//!    after the snapshot locked `THREADS` after `MARKING` was set, so its
//!    pin reads it.
//!
//! # Controls
//!
//! Each model comes with negative controls: the model with part of the
//! protocol removed or reordered (see `Faults`), which loom must fail
//! (`#[should_panic(expected = "SAFETY VIOLATION")]`): no handshake; no
//! store->load order in pin (found with one preemption: the bug needs stale
//! reads, not a schedule); no barrier; the final drain skipping `GRAY`;
//! publishing the grey buffer after the unpin swap *and* no `take_gray`; no
//! insertion half (a white object stored into a scanned one); no root
//! barriers. `arm_unpin_without_wakeup_deadlocks` is a liveness control:
//! without the wake-up at unpin, loom reports a deadlock.
//!
//! Some removals are not bugs in this design, and the models say so by
//! passing (tests named `*_redundant_*`, `*_covered_by_*`,
//! `*_needs_no_barrier_*`). With the cycle ending in a stop where every
//! thread is unpinned, and allocation white: each half of the edge barrier
//! alone keeps these scripts safe (the insertion half is Dijkstra's barrier,
//! sound when no thread keeps a local across termination; the deletion half
//! alone covers a move of an existing object); either root barrier alone
//! covers a move between roots; moving an object from a root into the heap
//! needs no barrier at all, because every root slot is read before any
//! object is scanned; publishing the grey buffer late is covered by
//! `take_gray` at the stop. The deletion half and the root-drop barrier
//! become necessary once termination is a handshake (issue 3).
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
//! - Root slots are fixed words (the pool and the per-thread free lists are
//!   thread-local bookkeeping); nested pins are not modelled (only the
//!   outermost pin does anything in the real code); the grey buffer's
//!   publication at 256 entries, thread exit, `Guard::repin`,
//!   `Member::swap`, `GcVec`, black allocation and the leaked-guard check
//!   are not modelled.

#![cfg(loom)]

use loom::sync::atomic::{
    fence, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst},
};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A stop of the world is requested or in progress.
const STW: u8 = 1;
/// The collector waits for threads (a handshake or a stop).
const WAITING: u8 = 2;
/// Marking is in progress: barriers shade.
const MARKING: u8 = 4;

/// Edge slots per object.
const EDGES: usize = 2;
/// A reference: `object + 1`, 0 for null.
type Ref = usize;

const fn r(o: usize) -> Ref {
    o + 1
}

/// Parts of the protocol a negative control removes or changes. All `false`
/// is the protocol as built.
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
    /// `unpin_outer` publishes the grey buffer after the `state` swap.
    flush_after_unpin: bool,
    /// The final drain (world stopped) ignores the published grey buffers.
    final_skips_gray: bool,
    /// The stop does not take the threads' unpublished grey buffers.
    no_take_gray: bool,
    /// `unpin_outer` never wakes the collector (a liveness control).
    unpin_no_wakeup: bool,
    /// The proposed fix for model 4: snapshot the thread list after setting
    /// `MARKING` (the real code snapshots before).
    snapshot_after_arm: bool,
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
    /// The cycle starts after the arm handshake (`MARKING` set, `EPOCH`
    /// bumped) instead of running it.
    armed: bool,
    /// The mutator is registered before the cycle starts (else its script
    /// registers it).
    registered: bool,
}

/// A registered mutator thread (`ThreadState`).
struct Mutator {
    /// `epoch << 1 | pinned`.
    state: AtomicU64,
    /// The grey buffer: objects this thread's barrier shaded, not yet
    /// published. Plain (non-atomic) data in the real code, hence separate
    /// Relaxed loads and stores here.
    gray: AtomicU64,
}

/// Everything threads share: the collector's words, the parking lot, the
/// published grey buffers, the thread list and the heap.
struct World {
    faults: Faults,
    flags: AtomicU8,
    epoch: AtomicU64,
    /// `PARK`, `COLLECTOR_WAIT`, `RESUME`.
    park: Mutex<()>,
    collector_wait: Condvar,
    resume: Condvar,
    /// `GRAY`: published grey buffers (a bit set of objects).
    gray: Mutex<u64>,
    /// `THREADS`.
    threads: Mutex<Vec<Arc<Mutator>>>,
    edges: Vec<[AtomicUsize; EDGES]>,
    marks: AtomicU64,
    allocated: AtomicU64,
    roots: Vec<AtomicUsize>,
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
            park: Mutex::new(()),
            collector_wait: Condvar::new(),
            resume: Condvar::new(),
            gray: Mutex::new(0),
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
        if self.flags.load(SeqCst) & (STW | WAITING) != 0 && !self.faults.unpin_no_wakeup {
            self.notify_collector();
        }
        if self.faults.flush_after_unpin {
            self.flush_gray(t);
        }
    }

    fn pin_slow(&self, t: &Mutator) {
        if self.flags.load(SeqCst) & STW != 0 {
            self.wait_for_world(t);
        } else {
            // We may be the thread a handshake waits for.
            self.notify_collector();
        }
    }

    fn wait_for_world(&self, t: &Mutator) {
        loop {
            t.state.swap(self.epoch.load(Acquire) << 1, SeqCst);
            self.notify_collector();
            self.log('M', "waits for the world".into());
            {
                let mut g = self.park.lock().unwrap();
                while self.flags.load(SeqCst) & STW != 0 {
                    g = self.resume.wait(g).unwrap();
                }
            }
            t.state.swap(self.epoch.load(Acquire) << 1 | 1, SeqCst);
            self.sc_fence();
            if self.flags.load(SeqCst) & STW == 0 {
                return;
            }
        }
    }

    fn notify_collector(&self) {
        let _g = self.park.lock().unwrap();
        self.collector_wait.notify_all();
    }

    /// `push_gray` (the 256-entry early publication is never reached here).
    fn push_gray(&self, t: &Mutator, o: usize) {
        let b = t.gray.load(Relaxed);
        t.gray.store(b | 1 << o, Relaxed);
    }

    /// `flush_gray` + `publish_gray`.
    fn flush_gray(&self, t: &Mutator) {
        if t.gray.load(Relaxed) != 0 {
            let mut g = self.gray.lock().unwrap();
            let b = t.gray.load(Relaxed);
            *g |= b;
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

    /// `shade`.
    fn shade(&self, t: &Mutator, v: Ref) {
        if v != 0 && self.set_mark(v - 1) {
            self.push_gray(t, v - 1);
            self.log('M', format!("shades {}", self.name(v)));
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

    /// Allocation: white (the cycle as built never sets `BLACK`).
    fn alloc(&self, o: usize) -> Ref {
        self.allocated.fetch_or(1 << o, Relaxed);
        self.log('M', format!("allocates {} (white)", self.names[o]));
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
        {
            let mut g = self.park.lock().unwrap();
            while !threads.iter().all(|t| {
                let s = t.state.load(SeqCst);
                s & 1 == 0 || s >> 1 >= e
            }) {
                g = self.collector_wait.wait(g).unwrap();
            }
        }
        self.flags.fetch_and(!WAITING, SeqCst);
        self.log('C', format!("handshake to epoch {e} complete"));
    }

    /// `thread::stop_the_world`.
    fn stop_the_world(&self, threads: &[Arc<Mutator>]) {
        self.flags.fetch_or(STW, SeqCst);
        self.sc_fence();
        let mut g = self.park.lock().unwrap();
        while threads.iter().any(|t| t.state.load(SeqCst) & 1 != 0) {
            g = self.collector_wait.wait(g).unwrap();
        }
        self.log('C', "world stopped".into());
    }

    /// `thread::start_the_world`.
    fn start_the_world(&self) {
        let _g = self.park.lock().unwrap();
        self.flags.fetch_and(!STW, SeqCst);
        self.resume.notify_all();
        self.log('C', "world restarted".into());
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
            let mut g = self.gray.lock().unwrap();
            if *g == 0 {
                return;
            }
            stack.extend(bits(*g));
            self.log('C', format!("takes published grey {}", self.set_names(*g)));
            *g = 0;
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
        if !armed {
            // 1. Arm. The real code snapshots the thread list first.
            let mut threads = Vec::new();
            if !self.faults.snapshot_after_arm {
                threads = self.snapshot();
            }
            self.flags.fetch_or(MARKING, SeqCst);
            self.log('C', "sets MARKING".into());
            if self.faults.snapshot_after_arm {
                threads = self.snapshot();
            }
            if !self.faults.no_handshake {
                self.handshake(&threads);
            }
        }
        // 2-3. Roots and concurrent drain.
        let mut stack = Vec::new();
        self.mark_roots(&mut stack);
        self.drain_all(&mut stack);
        // 4. Terminate and sweep with the world stopped (THREADS held).
        let threads = self.threads.lock().unwrap();
        self.stop_the_world(&threads);
        if !self.faults.no_take_gray {
            for t in threads.iter() {
                // `take_gray`: the owner is unpinned.
                let b = t.gray.load(Relaxed);
                stack.extend(bits(b));
                t.gray.store(0, Relaxed);
                self.log(
                    'C',
                    format!("takes the thread's grey buffer {}", self.set_names(b)),
                );
            }
        }
        if self.faults.final_skips_gray {
            self.drain(&mut stack);
        } else {
            self.drain_all(&mut stack);
        }
        self.flags.fetch_and(!MARKING, SeqCst);
        let freed = self.sweep();
        self.start_the_world();
        drop(threads);
        freed
    }

    /// After the mutator is joined: nothing the sweep freed is reachable.
    fn final_check(&self, freed: u64) {
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

/// Runs one model: the collector (loom's main thread) runs a cycle while a
/// mutator thread runs `script`.
fn run(name: &str, bound: usize, setup: &'static Setup, faults: Faults, script: Script) {
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
        let w = Arc::new(World::new(setup, faults));
        let t = Arc::new(Mutator {
            state: AtomicU64::new(if setup.armed { 1 << 1 } else { 0 }),
            gray: AtomicU64::new(0),
        });
        if setup.registered {
            w.register(&t);
        }
        let (w2, t2) = (w.clone(), t.clone());
        let h = thread::spawn(move || script(&w2, &t2));
        let freed = w.cycle(setup.armed);
        h.join().unwrap();
        w.final_check(freed);
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
/// one preemption finds it in well under a second (with the model's bound
/// loom searches for some 400,000 executions first).
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn arm_pin_without_store_load_order_fails() {
    let f = Faults {
        pin_no_fence: true,
        ..Faults::default()
    };
    run("arm/pin without fence", 1, &ARM, f, move_script);
}

/// Not a bug in this design: without the deletion half, the insertion half
/// still shades X (no thread keeps a local across the final stop).
#[test]
fn arm_deletion_half_redundant_with_stop_termination() {
    let f = Faults {
        no_deletion: true,
        ..Faults::default()
    };
    run("arm/no deletion half", ARM_BOUND, &ARM, f, move_script);
}

/// Not a bug in this design either: without the insertion half, the
/// deletion half shades X before it leaves A.
#[test]
fn arm_insertion_half_redundant_for_a_move() {
    let f = Faults {
        no_insertion: true,
        ..Faults::default()
    };
    run("arm/no insertion half", ARM_BOUND, &ARM, f, move_script);
}

/// Liveness control: the condvar model has teeth. If unpin did not wake
/// the collector, a handshake or stop that found the thread pinned would
/// sleep forever, and loom reports the deadlock (the protocol as built
/// never deadlocks in any model).
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

// ---- Model 2: termination with a store racing the final round -------------

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
};

/// Preemption bound of model 2.
const TERM_BOUND: usize = 5;

/// Move X from A into B (insert, then delete), allocate N and store it into B.
fn term_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.store(t, B, 0, x);
    w.store(t, A, 0, 0);
    let n = w.alloc(N2);
    w.store(t, B, 1, n);
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

/// Negative control: the final drain ignores the grey buffers published at
/// unpin after the concurrent drain's last look (X shaded, never scanned:
/// Y is lost).
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_final_drain_skipping_gray_fails() {
    let f = Faults {
        final_skips_gray: true,
        ..Faults::default()
    };
    run(
        "termination/final skips GRAY",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

/// Not a bug in the model: unpin publishing its grey buffer after the
/// `state` swap is covered by `take_gray` at the stop (the buffer moves to
/// `GRAY` under the `GRAY` lock, so the collector finds it in one place or
/// the other). In the real code it would be a data race on the buffer's
/// `Vec`, which a model built from atomics cannot show.
#[test]
fn termination_late_flush_covered_by_take_gray() {
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

/// Negative control: unpin publishes after the swap and the stop does not
/// take the threads' buffers: the stop completes before X reaches `GRAY`.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_late_flush_without_take_gray_fails() {
    let f = Faults {
        flush_after_unpin: true,
        no_take_gray: true,
        ..Faults::default()
    };
    run(
        "termination/flush after unpin, no take_gray",
        TERM_BOUND,
        &TERM,
        f,
        term_script,
    );
}

/// Negative control: no insertion half (N is white and only in B).
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

/// Negative control: the stop's Dekker pair broken on the pin side (bound 1,
/// as in model 1).
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn termination_pin_without_store_load_order_fails() {
    let f = Faults {
        pin_no_fence: true,
        ..Faults::default()
    };
    run("termination/pin without fence", 1, &TERM, f, term_script);
}

/// Not a bug in this design: the insertion half shades X.
#[test]
fn termination_deletion_half_redundant_with_stop_termination() {
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
};

/// Root X (loaded from A), delete A's edge; allocate N and root it.
fn create_script(w: &World, t: &Arc<Mutator>) {
    w.pin(t);
    let x = w.load(A, 0);
    w.root_create(t, 1, x);
    w.store(t, A, 0, 0);
    let n = w.alloc(N3);
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

/// Negative control: root creation does not shade (N, white, is only in a
/// root slot the scan already passed).
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

/// Not a bug in this design, and the negative control that loom could not
/// fail: moving an object from a root into the heap needs no barrier at all,
/// because `mark_roots` reads every slot before the first object is scanned.
/// If the scan reads X's slot after the drop, the store into A (earlier in
/// the mutator, published by the drop's AcqRel swap) is visible when A is
/// scanned.
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

/// Not a bug in this design: either root barrier alone covers a move
/// between roots; here the creation barrier does.
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

/// Negative control: neither root barrier. The scan reads the new slot
/// before the clone and the old one after the drop.
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
};

fn register_move_script(w: &World, t: &Arc<Mutator>) {
    w.register(t);
    move_script(w, t);
}

/// Negative control, and the bug loom found in the first version of
/// `cycle`: snapshotting `THREADS` before setting `MARKING` lets a thread
/// that registers and pins in between escape the arm handshake, and its
/// in-flight store is lost. Passes because loom finds it.
#[test]
#[should_panic(expected = "SAFETY VIOLATION")]
fn registration_snapshot_before_arm_loses_an_object() {
    run(
        "registration/snapshot before arm",
        ARM_BOUND,
        &REGISTER,
        Faults::default(),
        register_move_script,
    );
}

/// The real code's order: snapshot after setting `MARKING`. A thread that
/// registers after the snapshot took `THREADS` after the collector set
/// `MARKING`, so its pin reads `MARKING`.
#[test]
fn registration_snapshot_after_arm_is_safe() {
    let f = Faults {
        snapshot_after_arm: true,
        ..Faults::default()
    };
    run(
        "registration/snapshot after arm",
        ARM_BOUND,
        &REGISTER,
        f,
        register_move_script,
    );
}
