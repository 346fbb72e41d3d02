//! Churn stress, in-process at a moderate size: 4 threads replace random
//! ring-shaped subgraphs (whole rings in a rooted `GcVec`, or a ring's tail
//! through an edge store) of a shared live graph while collections run (GOGC
//! 25 plus explicit `gc()` calls from a thread with no guard). Every ring
//! read is intact; after `gc()` every replaced node was dropped exactly once
//! and no live one was, and dropping the table frees everything. The
//! workload is `tests/common/churn.rs`, shared with
//! `examples/churn_stress.rs`, which runs it at over a million live objects.
//!
//! One `#[test]` in this file: the final counts are exact and need the heap
//! to themselves.

#[path = "common/churn.rs"]
mod churn;
mod common;

use common::scaled;

/// Replacing random subgraphs on 4 threads under collection never frees or corrupts live nodes; gc() frees exactly the replaced ones.
#[test]
fn four_threads_replace_random_subgraphs_under_collection() {
    let cfg = churn::Config {
        entries: scaled(50_000, 20_000),
        ops: scaled(6_000_000, 1_000_000),
        threads: 4,
        seed: 0xc4_0e11,
        explicit_gcs: 3,
        gc_percent: 25,
    };
    let summary = churn::run(&cfg);
    assert_eq!(summary.live, cfg.entries * churn::RING);
    assert_eq!(summary.replaced_rings + summary.replaced_tails, cfg.ops);
    println!("{}", summary.line(&cfg));
}
