//! Helpers shared by the integration tests (`drops.rs`, `gcvec.rs`,
//! `threads.rs`, `deep_list.rs`) and the `stress` example: drop tracking
//! (a log of drops by tag and id, or a plain count), the checksum mix, and
//! workload sizes for release and debug builds.
//!
//! Each test binary compiles its own copy (`mod common;`), so the statics
//! here are per binary, as they were when each file had its own.

// Each binary uses only some of these helpers, and would warn about the rest.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tricolor::Trace;

/// `(tag, id) -> number of drops`.
static LOG: Mutex<BTreeMap<(u32, u64), u32>> = Mutex::new(BTreeMap::new());

/// The drop log (usable even after a test panicked while holding it).
fn log() -> MutexGuard<'static, BTreeMap<(u32, u64), u32>> {
    LOG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Plain data whose `Drop` records `(tag, id)` in the drop log.
///
/// Tests that may run concurrently in one process (`cargo test`) use
/// distinct tags: each counts only the drops of its own.
#[derive(Trace)]
pub struct Tracked {
    pub tag: u32,
    pub id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        *log().entry((self.tag, self.id)).or_insert(0) += 1;
    }
}

/// The drops of `tag`, by id.
pub fn dropped(tag: u32) -> BTreeMap<u64, u32> {
    log()
        .range((tag, 0)..=(tag, u64::MAX))
        .map(|(&(_, id), &n)| (id, n))
        .collect()
}

/// Whether the object `(tag, id)` has been dropped.
pub fn was_dropped(tag: u32, id: u64) -> bool {
    log().contains_key(&(tag, id))
}

/// Panics unless the objects of `tag` dropped so far are exactly `ids`, each
/// dropped once.
pub fn assert_dropped_exactly(tag: u32, ids: impl IntoIterator<Item = u64>) {
    let want: BTreeMap<u64, u32> = ids.into_iter().map(|id| (id, 1)).collect();
    let got = dropped(tag);
    if got != want {
        // At most 20 ids of each kind.
        let twice: Vec<_> = got.iter().filter(|(_, &n)| n > 1).take(20).collect();
        let early: Vec<_> = got
            .keys()
            .filter(|id| !want.contains_key(id))
            .take(20)
            .collect();
        let leaked: Vec<_> = want
            .keys()
            .filter(|id| !got.contains_key(id))
            .take(20)
            .collect();
        panic!(
            "tag {tag}: dropped {} objects ({} expected); dropped more than once: {twice:?}; \
             dropped while reachable: {early:?}; unreachable but not dropped: {leaked:?}",
            got.len(),
            want.len(),
        );
    }
}

/// Drops counted: every [`Counted`], and whatever a test's own drop types
/// add.
pub static DROPS: AtomicU64 = AtomicU64::new(0);

/// Counts drops in [`DROPS`] (zero-sized plain data with a `Drop`).
#[derive(Trace)]
pub struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The number of drops counted in [`DROPS`] so far.
pub fn drops() -> u64 {
    DROPS.load(Ordering::Relaxed)
}

/// The splitmix64 finaliser: node checksums are `mix(id)`.
pub fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `release` in optimised builds, `debug` in builds with debug assertions
/// (where the collector and the checks run some 10-30x slower).
pub fn scaled(release: u64, debug: u64) -> u64 {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}
