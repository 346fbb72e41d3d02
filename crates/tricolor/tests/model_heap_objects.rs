//! The model test of `model.rs`, with one more exact check that needs a
//! process of its own: after every `gc()`, `read_mem_stats().heap_objects`
//! equals the number of objects reachable in the oracle. One `#[test]` in
//! this file, so no other test shares its heap.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).

mod model_common;

use model_common::{config, ops, run_case};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    /// After every `gc()`, `heap_objects` equals the oracle's reachable count (and model.rs holds).
    #[test]
    fn heap_objects_equals_reachable_after_gc(ops in ops()) {
        run_case(&ops, true);
    }
}
