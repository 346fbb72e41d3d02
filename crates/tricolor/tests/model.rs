//! Model-based property test: random operation sequences (allocations, edge
//! stores, root creation and drops, collections, work on other threads) run
//! against the real heap and a reachability oracle (see `model_common`).
//!
//! `PROPTEST_CASES` sets the number of cases (default 256, up to 200 operations
//! each).

mod model_common;

use model_common::{config, ops, run_case, Op};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config())]

    /// Every oracle-reachable node stays alive and intact; each `gc()` frees exactly the rest.
    #[test]
    fn heap_matches_reachability_oracle(ops in ops()) {
        run_case(&ops, false);
    }
}

/// A fixed sequence (cycles, re-rooting, a spawned thread, collections) matches the oracle.
#[test]
fn fixed_sequence_matches_oracle() {
    let alloc = |value, attach, init| Op::Alloc {
        value,
        attach,
        init,
    };
    let ops = vec![
        alloc(1, None, [None; 3]),
        alloc(2, Some((0, 0)), [Some(0), None, None]),
        alloc(3, Some((1, 1)), [None, Some(1), None]),
        Op::StoreEdge {
            from: 2,
            slot: 2,
            to: Some(0),
        },
        Op::Collect,
        Op::CreateRoot { from: 2 },
        Op::DropRoot { i: 0 },
        Op::Collect,
        Op::SpawnThread {
            ops: vec![
                alloc(4, Some((0, 0)), [None; 3]),
                Op::Garbage {
                    count: 5,
                    to: Some(0),
                },
                Op::CloneRoot { i: 0 },
            ],
            keep_pinned: true,
        },
        Op::Collect,
        Op::StoreEdge {
            from: 0,
            slot: 0,
            to: None,
        },
        Op::DropRoot { i: 0 },
        Op::Collect,
        Op::DropRoot { i: 0 },
        Op::Collect,
    ];
    run_case(&ops, false);
}
